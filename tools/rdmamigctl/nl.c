// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: generic netlink socket wrapper on libnl-genl-3.
 *
 * One socket per invocation, one request at a time.  A request is sent,
 * then replies are read until the request's end: the ACK of a doit
 * (NLM_F_ACK is always asked for) or the NLMSG_DONE of a dump, or an
 * error.  Every reply message is parsed against the family's policy and
 * handed to the caller's callback.  Messages that do not belong to the
 * request (other sequence number, not from the kernel) are skipped.
 *
 * NETLINK_EXT_ACK is enabled, so a failing request comes back with the
 * kernel's explanation, which is printed along with the errno.  The
 * generic netlink core refuses a command that needs CAP_NET_ADMIN without
 * one: for those, EPERM is printed with that hint.
 *
 * A socket may instead join a multicast group and receive notifications
 * (rm_nl_subscribe(), rm_nl_events()), the kernel's messages with
 * sequence number 0.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include <linux/rdmamig.h>

#include "rdmamigctl.h"
#include "nl.h"

/*
 * Every attribute of the rdmamig family, as the replies and notifications
 * carry them (RDMAMIG_ATTR_PARAMS holds attributes of this same space;
 * RDMAMIG_ATTR_STATS those of enum rdmamig_stat, all u64).
 */
static const struct nla_policy rdmamig_policy[RDMAMIG_ATTR_MAX + 1] = {
	[RDMAMIG_ATTR_VERSION]		= { .type = NLA_STRING },
	[RDMAMIG_ATTR_PROTO_VERSION]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_DEV_INDEX]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_DEV_NAME]		= { .type = NLA_STRING },
	[RDMAMIG_ATTR_DEV_NODE_GUID]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_DEV_PORTS]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_SESSION_ID]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_ROLE]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_STATE]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_OWNER_PID]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_TARGET_PID]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_LOCAL_ADDR]	= { .type = NLA_STRING },
	[RDMAMIG_ATTR_PEER_ADDR]	= { .type = NLA_STRING },
	[RDMAMIG_ATTR_CAPS]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_MAX_BANDWIDTH]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_MAX_REGISTERED]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_KEEPALIVE_MS]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS] = { .type = NLA_U32 },
	[RDMAMIG_ATTR_MAX_ROUNDS]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_PARAMS]		= { .type = NLA_NESTED },
	[RDMAMIG_ATTR_STATS]		= { .type = NLA_NESTED },
	[RDMAMIG_ATTR_ERROR]		= { .type = NLA_U32 },	/* s32 */
	[RDMAMIG_ATTR_REASON]		= { .type = NLA_STRING },
	[RDMAMIG_ATTR_BLOCKS]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_BLOCK_BYTES]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_BLOCK]		= { .type = NLA_NESTED },
	[RDMAMIG_ATTR_BLOCK_NAME]	= { .type = NLA_STRING },
	[RDMAMIG_ATTR_BLOCK_ADDR]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_BLOCK_LEN]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_BLOCK_INDEX]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_HOST]		= { .type = NLA_STRING },
	[RDMAMIG_ATTR_PORT]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_TIMEOUT_MS]	= { .type = NLA_U32 },
	[RDMAMIG_ATTR_FIRST_PAGE]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_FLAGS]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_MEM_FD]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_CHANNELS]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_ADDR]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_BUF]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_BUF_LEN]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_RUNS]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_NRUNS]		= { .type = NLA_U32 },
	[RDMAMIG_ATTR_NPAGES]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_START]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_REMAINING]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_EPOCH]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_SNAPSHOT_US]	= { .type = NLA_U64 },
	[RDMAMIG_ATTR_WAIT_US]		= { .type = NLA_U64 },
	[RDMAMIG_ATTR_STAGING_PAGES]	= { .type = NLA_U64 },
};

/* The commands uapi/linux/rdmamig.h marks "admin". */
#define RM_ADMIN(cmd)	(1ULL << RDMAMIG_CMD_##cmd)
static const uint64_t rdmamig_admin_cmds =
	RM_ADMIN(SET_SESSION) | RM_ADMIN(CANCEL_SESSION) |
	RM_ADMIN(SET_DEFAULTS) | RM_ADMIN(NEW_SESSION) | RM_ADMIN(LISTEN) |
	RM_ADMIN(ACCEPT) | RM_ADMIN(CONNECT) | RM_ADMIN(ROUND) |
	RM_ADMIN(END_ROUND) | RM_ADMIN(COMPLETE) | RM_ADMIN(POSTCOPY) |
	RM_ADMIN(FETCH) | RM_ADMIN(OWED) | RM_ADMIN(POSTCOPY_RESUME) |
	RM_ADMIN(MC_EPOCH);

/* One request in flight. */
struct rm_nl_req {
	struct rm_nl *nl;
	uint32_t seq;
	uint8_t cmd;
	const char *what;
	rm_nl_cb_t cb;
	void *arg;
	bool done;
	int ret;		/* exit code, when a reply was refused */
};

/* Best effort: kernels without the option still work, less verbosely. */
static int rm_nl_setsockopt(struct nl_sock *sk, int opt)
{
	int one = 1;

	if (setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, opt, &one,
		       sizeof(one)) == 0 || errno == ENOPROTOOPT)
		return 0;
	return -errno;
}

static int rm_nl_sockopts(struct nl_sock *sk)
{
	int err;

	/* The kernel's error messages, ... */
	err = rm_nl_setsockopt(sk, NETLINK_EXT_ACK);
	if (err)
		return err;
	/* ... without an echo of the request in front of them. */
	return rm_nl_setsockopt(sk, NETLINK_CAP_ACK);
}

static int rm_nl_resolve(struct rm_nl *nl, const char *name)
{
	int id = genl_ctrl_resolve(nl->sk, name);

	if (id == -NLE_OBJ_NOTFOUND) {
		rm_err("the %s kernel module is not loaded (run: modprobe %s)",
		       name, name);
		return RM_EXIT_NOMOD;
	}
	if (id < 0) {
		rm_err("cannot resolve the generic netlink family %s: %s",
		       name, nl_geterror(id));
		return RM_EXIT_ERR;
	}
	nl->family = id;
	return RM_EXIT_OK;
}

int rm_nl_open_family(struct rm_nl *nl, const char *name, uint8_t version,
		      int maxattr, const struct nla_policy *policy)
{
	int err, ret;

	memset(nl, 0, sizeof(*nl));
	nl->name = name;
	nl->version = version;
	nl->maxattr = maxattr;
	nl->policy = policy;
	nl->miss_type = -1;
	if (maxattr > RM_NL_ATTR_MAX) {
		rm_err("internal error: %s has too many attributes", name);
		return RM_EXIT_ERR;
	}

	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		rm_err("cannot allocate a netlink socket: out of memory");
		return RM_EXIT_ERR;
	}
	err = genl_connect(nl->sk);
	if (err < 0) {
		rm_err("cannot open a generic netlink socket: %s",
		       nl_geterror(err));
		ret = RM_EXIT_ERR;
		goto fail;
	}
	err = rm_nl_sockopts(nl->sk);
	if (err) {
		rm_err("cannot set up the netlink socket: %s", strerror(-err));
		ret = RM_EXIT_ERR;
		goto fail;
	}
	/* Let libnl size its buffer for messages of any length. */
	nl_socket_enable_msg_peek(nl->sk);

	ret = rm_nl_resolve(nl, name);
	if (ret)
		goto fail;
	/* From here on, requests say themselves whether they want an ACK. */
	nl_socket_disable_auto_ack(nl->sk);
	return RM_EXIT_OK;

fail:
	rm_nl_close(nl);
	return ret;
}

int rm_nl_open(struct rm_nl *nl)
{
	int ret;

	ret = rm_nl_open_family(nl, RDMAMIG_GENL_NAME, RDMAMIG_GENL_VERSION,
				RDMAMIG_ATTR_MAX, rdmamig_policy);
	nl->admin_cmds = rdmamig_admin_cmds;
	return ret;
}

void rm_nl_close(struct rm_nl *nl)
{
	if (nl->sk) {
		nl_socket_free(nl->sk);
		nl->sk = NULL;
	}
}

/*
 * The extended-ACK attributes of an NLMSG_ERROR or NLMSG_DONE message;
 * hlen is the length of what precedes them in the payload.
 */
static void rm_nl_parse_extack(struct rm_nl *nl, struct nlmsghdr *nlh,
			       size_t hlen)
{
	static const struct nla_policy policy[NLMSGERR_ATTR_MAX + 1] = {
		[NLMSGERR_ATTR_MSG]		= { .type = NLA_STRING },
		[NLMSGERR_ATTR_MISS_TYPE]	= { .type = NLA_U32 },
	};
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hlen);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || nlh->nlmsg_len < off)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)nlh + off),
		      nlh->nlmsg_len - off, policy) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(nl->extack, sizeof(nl->extack), "%s",
			 nla_get_string(tb[NLMSGERR_ATTR_MSG]));
	if (tb[NLMSGERR_ATTR_MISS_TYPE])
		nl->miss_type = nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]);
}

static void rm_nl_error_extack(struct rm_nl *nl, struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = nlmsg_data(nlh);
	size_t hlen = sizeof(*e);

	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		/* The request is echoed between the error and the TLVs. */
		if (e->msg.nlmsg_len < NLMSG_HDRLEN)
			return;
		hlen += e->msg.nlmsg_len - NLMSG_HDRLEN;
	}
	rm_nl_parse_extack(nl, nlh, hlen);
}

/*
 * First look at every message (registered as the sequence check): keep
 * only the kernel's answers to this request, and collect the extended
 * ACK of the message that ends it.
 */
static int rm_nl_check(struct nl_msg *msg, void *arg)
{
	struct rm_nl_req *req = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct sockaddr_nl *src = nlmsg_get_src(msg);

	if (nlh->nlmsg_seq != req->seq || (src && src->nl_pid != 0))
		return NL_SKIP;
	if (nlh->nlmsg_type == NLMSG_ERROR)
		rm_nl_error_extack(req->nl, nlh);
	else if (nlh->nlmsg_type == NLMSG_DONE)
		rm_nl_parse_extack(req->nl, nlh, sizeof(int));
	return NL_OK;
}

static int rm_nl_valid(struct nl_msg *msg, void *arg)
{
	struct rm_nl_req *req = arg;
	struct rm_nl *nl = req->nl;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[RM_NL_ATTR_MAX + 1];
	int err;

	if (nlh->nlmsg_type != nl->family) {
		rm_err("%s: unexpected message type %u from the kernel",
		       req->what, nlh->nlmsg_type);
		req->ret = RM_EXIT_ERR;
		goto stop;
	}
	err = genlmsg_parse(nlh, 0, tb, nl->maxattr, nl->policy);
	if (err < 0) {
		rm_err("%s: malformed reply from the kernel: %s",
		       req->what, nl_geterror(err));
		req->ret = RM_EXIT_ERR;
		goto stop;
	}
	if (req->cb) {
		req->ret = req->cb(tb, req->arg);
		if (req->ret)
			goto stop;
	}
	return NL_OK;

stop:
	req->done = true;
	return NL_STOP;
}

/* NLMSG_DONE ends a dump; its payload is the dump's error, if any. */
static int rm_nl_finish(struct nl_msg *msg, void *arg)
{
	struct rm_nl_req *req = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int err;

	if (nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(err)) {
		memcpy(&err, nlmsg_data(nlh), sizeof(err));
		if (err < 0)
			req->nl->err = err;
	}
	req->done = true;
	return NL_STOP;
}

static int rm_nl_ack(struct nl_msg *msg, void *arg)
{
	struct rm_nl_req *req = arg;

	(void)msg;
	req->done = true;
	return NL_STOP;
}

static int rm_nl_error(struct sockaddr_nl *nla, struct nlmsgerr *e,
		       void *arg)
{
	struct rm_nl_req *req = arg;

	(void)nla;
	req->nl->err = e->error < 0 ? e->error : -e->error;
	req->done = true;
	return NL_STOP;
}

static struct nl_cb *rm_nl_cb_alloc(struct rm_nl_req *req)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);

	if (!cb)
		return NULL;
	if (nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, rm_nl_check, req) ||
	    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, rm_nl_valid, req) ||
	    nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, rm_nl_finish, req) ||
	    nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, rm_nl_ack, req) ||
	    nl_cb_err(cb, NL_CB_CUSTOM, rm_nl_error, req)) {
		nl_cb_put(cb);
		return NULL;
	}
	return cb;
}

/* What the kernel added to the errno, e.g. " (kernel: Unknown device)". */
static void rm_nl_explain(const struct rm_nl *nl, char *buf, size_t len)
{
	buf[0] = '\0';
	if (nl->extack[0] && nl->miss_type >= 0)
		snprintf(buf, len, " (kernel: %s, missing attribute %d)",
			 nl->extack, nl->miss_type);
	else if (nl->extack[0])
		snprintf(buf, len, " (kernel: %s)", nl->extack);
	else if (nl->miss_type >= 0)
		snprintf(buf, len, " (kernel: missing attribute %d)",
			 nl->miss_type);
}

static int rm_nl_report(const struct rm_nl *nl, const char *what, uint8_t cmd)
{
	char why[RM_NL_EXTACK_LEN + 64];

	rm_nl_explain(nl, why, sizeof(why));
	/* The generic netlink core refuses admin commands without a word. */
	if (nl->err == -EPERM && !why[0] && cmd < 64 &&
	    (nl->admin_cmds & (1ULL << cmd)))
		snprintf(why, sizeof(why), " (needs CAP_NET_ADMIN)");
	if (nl->err) {
		rm_err("%s: %s%s", what, strerror(-nl->err), why);
		return RM_EXIT_ERR;
	}
	/* Success may come with a warning. */
	if (nl->extack[0])
		rm_err("warning from the kernel: %s", nl->extack);
	return RM_EXIT_OK;
}

static int rm_nl_wait(struct rm_nl *nl, struct rm_nl_req *req,
		      struct nl_cb *cb)
{
	int err;

	while (!req->done) {
		err = nl_recvmsgs(nl->sk, cb);
		if (err < 0 && !req->done) {
			rm_err("%s: %s", req->what, nl_geterror(err));
			return RM_EXIT_ERR;
		}
	}
	if (req->ret)
		return req->ret;
	return rm_nl_report(nl, req->what, req->cmd);
}

struct nl_msg *rm_nl_msg(struct rm_nl *nl, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg && genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			       flags, cmd, nl->version))
		return msg;
	nlmsg_free(msg);
	rm_err("cannot build a netlink request: out of memory");
	return NULL;
}

int rm_nl_send(struct rm_nl *nl, struct nl_msg *msg, const char *what,
	       rm_nl_cb_t cb, void *arg)
{
	struct rm_nl_req req = {
		.nl = nl, .what = what, .cb = cb, .arg = arg,
	};
	struct nl_cb *nlcb;
	int err, ret;

	nl->err = 0;
	nl->extack[0] = '\0';
	nl->miss_type = -1;

	nlcb = rm_nl_cb_alloc(&req);
	if (!nlcb) {
		rm_err("%s: out of memory", what);
		nlmsg_free(msg);
		return RM_EXIT_ERR;
	}
	err = nl_send_auto(nl->sk, msg);
	if (err < 0) {
		rm_err("%s: cannot send the request: %s", what,
		       nl_geterror(err));
		ret = RM_EXIT_ERR;
	} else {
		req.seq = nlmsg_hdr(msg)->nlmsg_seq;
		req.cmd = genlmsg_hdr(nlmsg_hdr(msg))->cmd;
		ret = rm_nl_wait(nl, &req, nlcb);
	}
	nl_cb_put(nlcb);
	nlmsg_free(msg);
	return ret;
}

int rm_nl_doit(struct rm_nl *nl, uint8_t cmd, const char *what,
	       rm_nl_cb_t cb, void *arg)
{
	struct nl_msg *msg = rm_nl_msg(nl, cmd, NLM_F_ACK);

	if (!msg)
		return RM_EXIT_ERR;
	return rm_nl_send(nl, msg, what, cb, arg);
}

int rm_nl_dump(struct rm_nl *nl, uint8_t cmd, const char *what,
	       rm_nl_cb_t cb, void *arg)
{
	struct nl_msg *msg = rm_nl_msg(nl, cmd, NLM_F_DUMP);

	if (!msg)
		return RM_EXIT_ERR;
	return rm_nl_send(nl, msg, what, cb, arg);
}

/* ---- Notifications ----------------------------------------------------- */

int rm_nl_subscribe(struct rm_nl *nl, const char *group)
{
	int id, err;

	id = genl_ctrl_resolve_grp(nl->sk, nl->name, group);
	if (id < 0) {
		rm_err("cannot resolve the multicast group %s of %s: %s", group,
		       nl->name, nl_geterror(id));
		return RM_EXIT_ERR;
	}
	err = nl_socket_add_membership(nl->sk, id);
	if (err < 0) {
		rm_err("cannot join the multicast group %s of %s: %s", group,
		       nl->name, nl_geterror(err));
		return RM_EXIT_ERR;
	}
	/* Room for bursts: a migration's events come all at once. */
	nl_socket_set_buffer_size(nl->sk, 1 << 20, 0);
	return RM_EXIT_OK;
}

int rm_nl_fd(const struct rm_nl *nl)
{
	return nl_socket_get_fd(nl->sk);
}

struct rm_nl_listen {
	struct rm_nl *nl;
	rm_nl_event_cb_t cb;
	void *arg;
	int ret;
};

/* Notifications come from the kernel, with sequence number 0. */
static int rm_nl_event_check(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct sockaddr_nl *src = nlmsg_get_src(msg);

	(void)arg;
	if (nlh->nlmsg_seq != 0 || (src && src->nl_pid != 0))
		return NL_SKIP;
	return NL_OK;
}

static int rm_nl_event_valid(struct nl_msg *msg, void *arg)
{
	struct rm_nl_listen *l = arg;
	struct rm_nl *nl = l->nl;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[RM_NL_ATTR_MAX + 1];
	int err;

	if (nlh->nlmsg_type != nl->family)
		return NL_SKIP;
	err = genlmsg_parse(nlh, 0, tb, nl->maxattr, nl->policy);
	if (err < 0) {
		rm_err("malformed notification from the kernel: %s",
		       nl_geterror(err));
		l->ret = RM_EXIT_ERR;
		return NL_STOP;
	}
	l->ret = l->cb(genlmsg_hdr(nlh)->cmd, tb, l->arg);
	return l->ret ? NL_STOP : NL_OK;
}

int rm_nl_events(struct rm_nl *nl, rm_nl_event_cb_t cb, void *arg)
{
	struct rm_nl_listen l = { .nl = nl, .cb = cb, .arg = arg };
	struct nl_cb *nlcb = nl_cb_alloc(NL_CB_DEFAULT);
	int err;

	if (!nlcb ||
	    nl_cb_set(nlcb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, rm_nl_event_check, &l) ||
	    nl_cb_set(nlcb, NL_CB_VALID, NL_CB_CUSTOM, rm_nl_event_valid, &l)) {
		nl_cb_put(nlcb);
		rm_err("cannot receive events: out of memory");
		return RM_EXIT_ERR;
	}
	/* One datagram: the caller saw the socket readable. */
	errno = 0;
	err = nl_recvmsgs_report(nl->sk, nlcb);
	nl_cb_put(nlcb);
	if (l.ret)
		return l.ret;
	if (err == -NLE_NOMEM && errno == ENOBUFS) {
		/* The kernel dropped some: say so, and carry on. */
		rm_err("warning: events were lost (the receive buffer overflowed)");
		return RM_EXIT_OK;
	}
	if (err < 0 && err != -NLE_AGAIN) {
		rm_err("cannot receive events: %s", nl_geterror(err));
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}
