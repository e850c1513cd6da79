// SPDX-License-Identifier: GPL-2.0
/*
 * owner_race_test: a netlink-owned session belongs to the socket that
 * created it, not to its port id.  netlink_release() frees the port id
 * before it sends NETLINK_URELEASE, so for a moment another socket can
 * bind the closing one's port id while its sessions still exist.  When
 * ownership was the port id, that socket could drive them (and have them
 * freed under its running request), and the notice then destroyed the
 * sessions the new socket had made in the meantime.
 *
 * Each iteration: socket A, bound to port id P, creates a source session
 * X; a thread spins binding socket B to P while A closes; as soon as B
 * holds P it asks for END_ROUND of X and creates a session Y of its own.
 * END_ROUND must be refused as not B's (EPERM) or find X gone (ENOENT);
 * never act on X.  Y must outlive A's release.  B gets in before X is gone
 * (the window this is about) about once in 600 iterations under TCG: the
 * test runs until that happened WANT_HITS times, for at least
 * MIN_ITERATIONS and at most RDMAMIG_RACE_ITERATIONS (default 4000)
 * iterations, and skips if it never happened, having proved nothing.
 * Before ownership was the socket, the first hit failed it (END_ROUND
 * answered ENOTCONN: it acted on X).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"

#define MIN_ITERATIONS	300
#define WANT_HITS	1

static int family;
static int memfd;
static void *block;
static long page;

struct answer {
	int error;		/* 0 or -errno from the kernel */
	uint32_t session;	/* SESSION_ID of a NEW_SESSION reply */
	bool done;		/* the ACK or error came */
};

static int err_cb(struct sockaddr_nl *nla __attribute__((unused)), struct nlmsgerr *e,
		  void *arg)
{
	((struct answer *)arg)->error = e->error;
	((struct answer *)arg)->done = true;
	return NL_STOP;
}

static int ack_cb(struct nl_msg *msg __attribute__((unused)), void *arg)
{
	((struct answer *)arg)->done = true;
	return NL_STOP;
}

static int reply_cb(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[RDMAMIG_ATTR_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, RDMAMIG_ATTR_MAX, NULL) >= 0 &&
	    tb[RDMAMIG_ATTR_SESSION_ID])
		((struct answer *)arg)->session = nla_get_u32(tb[RDMAMIG_ATTR_SESSION_ID]);
	return NL_OK;
}

/* Send @msg on @sk, wait for the answer; the kernel's errno in ->error. */
static struct answer ask(struct nl_sock *sk, struct nl_msg *msg)
{
	struct answer a = { .error = -EIO };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);

	nl_cb_err(cb, NL_CB_CUSTOM, err_cb, &a);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ack_cb, &a);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, reply_cb, &a);
	if (nl_send_auto(sk, msg) >= 0) {
		a.error = 0;
		/* A reply comes first, then the ACK: read until that. */
		while (!a.done)
			if (nl_recvmsgs(sk, cb) < 0) {
				a.error = a.error ?: -EIO;
				break;
			}
	}
	nl_cb_put(cb);
	nlmsg_free(msg);
	return a;
}

static struct nl_msg *request(uint8_t cmd)
{
	struct nl_msg *msg = nlmsg_alloc();

	genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_ACK, cmd,
		    RDMAMIG_GENL_VERSION);
	return msg;
}

/* A source session over our own page, owned by @sk. */
static struct answer new_session(struct nl_sock *sk)
{
	struct nl_msg *msg = request(RDMAMIG_CMD_NEW_SESSION);
	struct nlattr *nest;

	nla_put_u32(msg, RDMAMIG_ATTR_TARGET_PID, getpid());
	nla_put_u32(msg, RDMAMIG_ATTR_MEM_FD, memfd);
	nla_put_u32(msg, RDMAMIG_ATTR_ROLE, RDMAMIG_ROLE_SOURCE);
	nla_put_u32(msg, RDMAMIG_ATTR_AUTH, RDMAMIG_AUTH_OFF);
	nest = nla_nest_start(msg, RDMAMIG_ATTR_BLOCK);
	nla_put_string(msg, RDMAMIG_ATTR_BLOCK_NAME, "ram");
	nla_put_u64(msg, RDMAMIG_ATTR_BLOCK_ADDR, (uintptr_t)block);
	nla_put_u64(msg, RDMAMIG_ATTR_BLOCK_LEN, page);
	nla_nest_end(msg, nest);
	return ask(sk, msg);
}

static struct answer session_cmd(struct nl_sock *sk, uint8_t cmd, uint32_t id)
{
	struct nl_msg *msg = request(cmd);

	nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, id);
	return ask(sk, msg);
}

/* A libnl socket over @fd, a netlink socket bound to @port. */
static struct nl_sock *adopt(int fd, uint32_t port)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (nl_socket_set_fd(sk, NETLINK_GENERIC, fd)) {
		nl_socket_free(sk);
		close(fd);
		return NULL;
	}
	nl_socket_set_local_port(sk, port);
	return sk;
}

/* A socket bound to @port, or NULL while another socket holds it. */
static struct nl_sock *bind_port(uint32_t port)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_pid = port };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

	if (fd < 0)
		return NULL;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return NULL;
	}
	return adopt(fd, port);
}

struct intruder {
	uint32_t port, victim;
	atomic_bool go;
	struct nl_sock *sk;
	struct answer drive, own;
	long tries;
};

/* Bind one socket to the port id the moment it is free: a bind a try. */
static void *intrude(void *arg)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_pid = 0 };
	struct intruder *in = arg;
	struct timespec t0, t;
	int fd, ret;

	sa.nl_pid = in->port;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!atomic_load(&in->go))
		;
	do {
		ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		in->tries++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (ret && errno == EADDRINUSE && t.tv_sec - t0.tv_sec < 10);
	if (ret) {
		close(fd);
		return NULL;
	}
	in->sk = adopt(fd, in->port);
	if (!in->sk)
		return NULL;
	in->drive = session_cmd(in->sk, RDMAMIG_CMD_END_ROUND, in->victim);
	in->own = new_session(in->sk);
	return NULL;
}

FIXTURE(owner) {
	struct nl_sock *probe;
};

FIXTURE_SETUP(owner)
{
	char path[64];

	page = sysconf(_SC_PAGESIZE);
	block = mmap(NULL, page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, block);
	memset(block, 0x5a, page);
	snprintf(path, sizeof(path), "/proc/%d/mem", getpid());
	memfd = open(path, O_RDWR);
	ASSERT_LE(0, memfd);
	self->probe = nl_socket_alloc();
	ASSERT_EQ(0, genl_connect(self->probe));
	family = genl_ctrl_resolve(self->probe, RDMAMIG_GENL_NAME);
	if (family < 0)
		SKIP(return, "the rdmamig family is not registered");
}

FIXTURE_TEARDOWN(owner)
{
	nl_socket_free(self->probe);
	close(memfd);
	munmap(block, page);
}

TEST_F_TIMEOUT(owner, port_reuse, 600)
{
	long iterations = 4000, i, in_window = 0, gone = 0, tries = 0;
	const char *env = getenv("RDMAMIG_RACE_ITERATIONS");

	if (env)
		iterations = atol(env);
	for (i = 0; i < iterations && (i < MIN_ITERATIONS || in_window < WANT_HITS); i++) {
		struct intruder in = { .port = 0x52440000u + (uint32_t)i };
		struct nl_sock *a = bind_port(in.port);
		struct answer x, y;
		pthread_t thr;

		ASSERT_NE(NULL, a) TH_LOG("cannot bind port id 0x%x", in.port);
		x = new_session(a);
		ASSERT_EQ(0, x.error) TH_LOG("NEW_SESSION: %s", strerror(-x.error));
		in.victim = x.session;
		ASSERT_EQ(0, pthread_create(&thr, NULL, intrude, &in));
		atomic_store(&in.go, true);
		nl_socket_free(a);	/* close(): netlink_release() */
		pthread_join(thr, NULL);
		tries += in.tries;

		ASSERT_NE(NULL, in.sk) TH_LOG("port id 0x%x never became free", in.port);
		/* Never acted on: not ours, or gone with its owner. */
		if (in.drive.error != -EPERM && in.drive.error != -ENOENT)
			ASSERT_EQ(-EPERM, in.drive.error)
				TH_LOG("iteration %ld: END_ROUND of the closed socket's session %u by the port id's new socket answered %d (%s): it was driven",
				       i, in.victim, in.drive.error, strerror(-in.drive.error));
		in_window += in.drive.error == -EPERM;
		gone += in.drive.error == -ENOENT;
		ASSERT_EQ(0, in.own.error) TH_LOG("NEW_SESSION on the new socket: %s",
						  strerror(-in.own.error));
		/* A's release is over by now: X is gone (its id may be Y's). */
		usleep(20000);
		x = session_cmd(self->probe, RDMAMIG_CMD_GET_SESSION, in.victim);
		if (in.own.session != in.victim)
			EXPECT_EQ(-ENOENT, x.error)
				TH_LOG("session %u outlived its socket", in.victim);
		y = session_cmd(self->probe, RDMAMIG_CMD_GET_SESSION, in.own.session);
		ASSERT_EQ(0, y.error)
			TH_LOG("iteration %ld: session %u of the port id's new socket was destroyed by the old socket's release",
			       i, in.own.session);
		nl_socket_free(in.sk);
	}
	TH_LOG("%ld iterations: the new socket asked while the old one's session lived %ld times, after it was gone %ld times (%ld binds)",
	       i, in_window, gone, tries);
	/* A run that never hit the window proved nothing. */
	if (!in_window)
		SKIP(return, "the new socket never got in while the old one's session lived");
}

TEST_HARNESS_MAIN
