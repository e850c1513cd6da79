// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: FETCH from several threads through one netlink socket
 * (incoming --postcopy's fault and sweep threads, postcopy.c).
 *
 * Only the socket that created a session may drive it, so both threads
 * use the session's.  A generic-netlink request runs in the sender's
 * context, within its sendmsg(): each thread sends its own request (the
 * family has parallel_ops: the two FETCHes run side by side in the
 * kernel, each reading pages into its caller's buffer), and the answer
 * is queued on the socket before sendmsg() returns.  Whoever then reads
 * the socket first, under the lock, files each answer by its sequence
 * number into the slot of the thread that asked; nobody waits there.
 *
 * The requests ask for no ACK: a FETCH is answered by its reply or by
 * an error, one message either way.  Their sequence numbers start above
 * libnl's, so that a stray answer is never taken for another request's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <netlink/genl/genl.h>

#include <linux/rdmamig.h>

#include "fetch.h"

#define FETCH_SEQ_BASE	0x80000000u

void fetch_init(struct fetch_sock *fs, struct rm_nl *nl, uint32_t id)
{
	memset(fs, 0, sizeof(*fs));
	fs->nl = nl;
	fs->id = id;
	pthread_mutex_init(&fs->lock, NULL);
}

static void parse_error(struct nlmsghdr *nlh, struct fetch_answer *a)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*e));

	a->err = e->error;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || nlh->nlmsg_len <= off ||
	    nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)nlh + off),
		      nlh->nlmsg_len - off, NULL) < 0 || !tb[NLMSGERR_ATTR_MSG])
		return;
	snprintf(a->why, sizeof(a->why), "%.*s", nla_len(tb[NLMSGERR_ATTR_MSG]),
		 (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
}

static void parse_reply(struct nlmsghdr *nlh, struct fetch_answer *a)
{
	struct nlattr *tb[RDMAMIG_ATTR_MAX + 1];

	if (genlmsg_parse(nlh, 0, tb, RDMAMIG_ATTR_MAX, NULL) < 0 ||
	    !tb[RDMAMIG_ATTR_START] || !tb[RDMAMIG_ATTR_NPAGES] ||
	    !tb[RDMAMIG_ATTR_REMAINING]) {
		a->err = -EPROTO;
		snprintf(a->why, sizeof(a->why), "a FETCH answer without its attributes");
		return;
	}
	a->start = nla_get_u64(tb[RDMAMIG_ATTR_START]);
	a->npages = nla_get_u64(tb[RDMAMIG_ATTR_NPAGES]);
	a->remaining = nla_get_u64(tb[RDMAMIG_ATTR_REMAINING]);
	if (tb[RDMAMIG_ATTR_NRUNS])
		a->nruns = nla_get_u32(tb[RDMAMIG_ATTR_NRUNS]);
}

/*
 * Read the socket until @me's answer is in its slot, filing the other
 * thread's on the way.  Called with the lock; the answer was queued
 * before our sendmsg() returned, so nothing here waits.
 */
static int collect(struct fetch_sock *fs, struct fetch_slot *me, int fd)
{
	uint8_t buf[sizeof(me->buf)];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	unsigned int i;
	ssize_t n;

	while (!me->ready) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ENOMSG : -errno;
		if ((size_t)n < NLMSG_HDRLEN || nlh->nlmsg_len > (size_t)n)
			continue;
		for (i = 0; i < FETCH_SLOTS; i++) {
			struct fetch_slot *s = &fs->slot[i];

			if (!s->ready && s->seq == nlh->nlmsg_seq) {
				memcpy(s->buf, buf, n);
				s->len = n;
				s->ready = true;
			}
		}
	}
	return 0;
}

void fetch(struct fetch_sock *fs, int which, uint64_t addr, uint8_t *buf,
	   size_t len, struct rdmamig_fetch_run *runs, uint32_t nruns,
	   struct fetch_answer *a)
{
	struct fetch_slot *me = &fs->slot[which];
	int fd = nl_socket_get_fd(fs->nl->sk), err;
	struct nlmsghdr *nlh;
	struct nl_msg *msg;
	uint32_t seq;

	memset(a, 0, sizeof(*a));
	msg = nlmsg_alloc();
	if (!msg || !genlmsg_put(msg, 0, 0, fs->nl->family, 0, NLM_F_REQUEST,
				 RDMAMIG_CMD_FETCH, fs->nl->version) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, fs->id) ||
	    (!runs && nla_put_u64(msg, RDMAMIG_ATTR_ADDR, addr)) ||
	    (runs && nla_put_u32(msg, RDMAMIG_ATTR_FLAGS, RDMAMIG_FETCH_SWEEP)) ||
	    nla_put_u64(msg, RDMAMIG_ATTR_BUF, (uintptr_t)buf) ||
	    nla_put_u64(msg, RDMAMIG_ATTR_BUF_LEN, len) ||
	    (runs && (nla_put_u64(msg, RDMAMIG_ATTR_RUNS, (uintptr_t)runs) ||
		      nla_put_u32(msg, RDMAMIG_ATTR_NRUNS, nruns)))) {
		nlmsg_free(msg);
		a->err = -ENOMEM;
		return;
	}
	nlh = nlmsg_hdr(msg);
	pthread_mutex_lock(&fs->lock);
	seq = FETCH_SEQ_BASE + fs->next_seq++;
	me->seq = seq;
	me->ready = false;
	pthread_mutex_unlock(&fs->lock);
	nlh->nlmsg_seq = seq;

	/* The kernel does the FETCH in here, beside the other thread's. */
	if (send(fd, nlh, nlh->nlmsg_len, 0) < 0) {
		a->err = -errno;
		snprintf(a->why, sizeof(a->why), "cannot send the request");
		nlmsg_free(msg);
		return;
	}
	nlmsg_free(msg);
	pthread_mutex_lock(&fs->lock);
	err = collect(fs, me, fd);
	if (!err) {
		nlh = (struct nlmsghdr *)me->buf;
		if (nlh->nlmsg_type == NLMSG_ERROR)
			parse_error(nlh, a);
		else
			parse_reply(nlh, a);
	}
	me->ready = false;
	me->seq = 0;
	pthread_mutex_unlock(&fs->lock);
	if (err) {
		a->err = err;
		snprintf(a->why, sizeof(a->why), "no answer on the netlink socket");
	}
}
