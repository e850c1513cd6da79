// SPDX-License-Identifier: GPL-2.0
/*
 * netlink_fuzz_test: random requests to the "rdmamig" generic-netlink
 * family (uapi/linux/rdmamig.h, kmod/netlink.c), as root: every command
 * 0..21 with attribute sets built from its policy and then mutated (wrong
 * types and lengths, unknown types, truncated attributes, nested garbage
 * in BLOCK, strings without NUL, huge SESSION_ID, NLA_F_* flag bits),
 * random genl reserved bits and versions, NLM_F_DUMP on do-only commands,
 * and wholly random attributes of up to 64 KiB.  NEW_SESSION gets fds of
 * /proc/PID/mem (our own, a helper child's) with random blocks, so
 * sessions are made, driven and destroyed when their socket closes; and
 * bogus fds.  It mostly gets a SECRET (authentication is required by
 * default; lengths around the 16..64 bytes the policy takes) and now and
 * then AUTH (REQUIRED, OFF, 2, anything), as do the other param-taking
 * commands.
 *
 * Each request must end in an ACK, a reply and an ACK, or a dump's DONE,
 * within 10 s (a socket receive timeout; a signal guards the send, in
 * which a doit runs), with an errno from errno_ok().  The fuzzing runs in
 * a child; the test then restores the module-wide defaults it changed,
 * checks that no session of the child is left and no module reference,
 * and that the family still answers GET_VERSION.
 *
 * Never listens anywhere but $RDMAMIG_LOCAL_ADDR port 0; CONNECT only to
 * documentation addresses (192.0.2.0/24, ...) with at most 100 ms, and
 * ACCEPT at most 100 ms: every request is checked for that before it is
 * sent, whatever the mutations made of it.
 *
 * Environment: RDMAMIG_FUZZ_SEED (printed), RDMAMIG_FUZZ_ITERS (requests
 * per command, default below), RDMAMIG_LOCAL_ADDR.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"
#include "test_fuzz.h"
#include "test_secret.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define PG 4096UL
#define NCMD		24		/* commands 0..23 are fuzzed */
#define NERR		4096
#define RECV_TIMEOUT_S	10

static uint64_t any64(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x1001,
		0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
		1ULL << 40, (1ULL << 40) + 1, INT64_MAX, (uint64_t)INT64_MIN,
		UINT64_MAX, UINT64_MAX - 0xfff, 1 << 20, (1 << 20) - 1,
	};

	switch (rn(4)) {
	case 0:
		return r64();
	case 1:
		return r64() >> rn(64);
	default:
		return PICK(v);
	}
}

static uint32_t any32(void)
{
	return chance(50) ? (uint32_t)any64() : (uint32_t)(any64() >> 32);
}

/* ---- results, shared between the fuzzing child and the test ----------- */

struct nltally {
	unsigned long calls, ok, replies, dumps;
	unsigned long err[NERR];
	unsigned long no_extack[NERR];	/* refusals without a message */
	uint64_t ns;
};

static struct shared {
	struct nltally t[NCMD + 1];	/* [NCMD]: commands above 23 */
	unsigned long nbad, iter, sessions, listens, connects_started;
	pid_t helper;			/* the child's helper, for the checks */
	unsigned long send_err[NERR];
	char badlog[24][360];
} *SH;

static const char *const cmdname[NCMD + 1] = {
	"UNSPEC", "GET_VERSION", "GET_DEV", "GET_SESSION", "SET_SESSION",
	"CANCEL_SESSION", "GET_DEFAULTS", "SET_DEFAULTS", "NEW_SESSION", "LISTEN",
	"ACCEPT", "CONNECT", "ROUND", "END_ROUND", "COMPLETE", "EVENT_STATE",
	"EVENT_ROUND", "POSTCOPY", "FETCH", "OWED", "POSTCOPY_RESUME", "MC_EPOCH",
	"EVENT_MC", "cmd 23", "cmd 24..255",
};

/*
 * What the family may answer: the genetlink and attribute-policy errors
 * (EINVAL, ERANGE, EOPNOTSUPP, EPERM, EMSGSIZE), the module's own (ENOENT,
 * ESRCH, EBADF, EBUSY, ENOTCONN, E2BIG, ENOSPC, EEXIST, EFAULT; ENOKEY for
 * NEW_SESSION without a SECRET, or LISTEN/CONNECT of a file's session
 * without one, while authentication is required), and what
 * the driving commands pass on from a session that CANCEL_SESSION ended
 * (ECANCELED), that ACCEPT waited for in vain (ETIMEDOUT), or that tried
 * a documentation address (ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL,
 * EAFNOSUPPORT).
 */
static bool errno_ok(int e)
{
	switch (e) {
	case ENOKEY:
	case EINVAL: case ENOENT: case EPERM: case EOPNOTSUPP: case ERANGE:
	case EMSGSIZE: case ESRCH: case EBADF: case EBUSY: case ENOTCONN:
	case E2BIG: case ENOSPC: case EEXIST: case EFAULT:
	case ECANCELED: case ETIMEDOUT: case ENETUNREACH: case EHOSTUNREACH:
	case EADDRNOTAVAIL: case EAFNOSUPPORT:
		return true;
	}
	return false;
}

static const char *ename(int e)
{
	const char *n = e > 0 ? strerrorname_np(e) : NULL;
	static char buf[16];

	if (n)
		return n;
	snprintf(buf, sizeof(buf), "%d", e);
	return buf;
}

__attribute__((format(printf, 1, 2)))
static void bad(const char *fmt, ...)
{
	va_list ap;

	if (SH->nbad < ARRAY_LEN(SH->badlog)) {
		va_start(ap, fmt);
		vsnprintf(SH->badlog[SH->nbad], sizeof(SH->badlog[0]), fmt, ap);
		va_end(ap);
	}
	SH->nbad++;
}

static bool report(struct __test_metadata *_metadata)
{
	char line[1200];
	unsigned long i;
	int c, e, n;

	for (c = 0; c <= NCMD; c++) {
		struct nltally *t = &SH->t[c];
		unsigned long noext = 0;

		if (!t->calls)
			continue;
		n = snprintf(line, sizeof(line), "%-14s %5lu requests %5.2f s: ok %lu",
			     cmdname[c], t->calls, t->ns / 1e9, t->ok);
		if (t->replies)
			n += snprintf(line + n, sizeof(line) - n, " (%lu replies)", t->replies);
		if (t->dumps)
			n += snprintf(line + n, sizeof(line) - n, ", %lu dumps", t->dumps);
		for (e = 1; e < NERR && n < (int)sizeof(line) - 60; e++) {
			if (!t->err[e])
				continue;
			n += snprintf(line + n, sizeof(line) - n, ", %s %lu", ename(e), t->err[e]);
			if (t->no_extack[e])
				n += snprintf(line + n, sizeof(line) - n, " (%lu without extack)",
					      t->no_extack[e]);
			noext += t->no_extack[e];
		}
		(void)noext;
		TH_LOG("%s", line);
	}
	for (e = 1; e < NERR; e++)
		if (SH->send_err[e])
			TH_LOG("send() failed with %s %lu times", ename(e), SH->send_err[e]);
	TH_LOG("%lu sessions made, %lu listened, %lu CONNECTs started (documentation "
	       "addresses), %lu requests", SH->sessions, SH->listens,
	       SH->connects_started, SH->iter);
	for (i = 0; i < SH->nbad && i < ARRAY_LEN(SH->badlog); i++)
		TH_LOG("UNEXPECTED %s", SH->badlog[i]);
	if (SH->nbad > ARRAY_LEN(SH->badlog))
		TH_LOG("... and %lu more", SH->nbad - ARRAY_LEN(SH->badlog));
	return SH->nbad == 0;
}

/* ---- sockets ----------------------------------------------------------- */

struct nls {
	struct nl_sock *sk;
	int fd;
	uint32_t seq;
	unsigned int n;			/* sessions it owns */
	uint32_t id[128];
	uint8_t role[128];
};

static int family = -1;

static bool nls_open(struct nls *s, bool cap_ack)
{
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_S };
	int one = 1, big = 4 << 20;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->sk = nl_socket_alloc();
	if (!s->sk)
		return false;
	if (genl_connect(s->sk) < 0) {
		nl_socket_free(s->sk);
		s->sk = NULL;
		return false;
	}
	s->fd = nl_socket_get_fd(s->sk);
	setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (cap_ack)
		setsockopt(s->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	s->seq = 1 + rn(1000);
	return true;
}

static void nls_close(struct nls *s)
{
	if (s->sk)
		nl_socket_free(s->sk);	/* closes: its sessions go */
	s->sk = NULL;
	s->fd = -1;
	s->n = 0;
}

/* ---- building a request: a list of attributes, then bytes ------------- */

#define MAXA	160
#define POOL	(200 * 1024)
#define MSG_MAX	(140 * 1024)

struct attr {
	uint16_t type;		/* with NLA_F_* bits */
	uint32_t len;		/* payload bytes */
	uint32_t off;		/* in pool */
	int lenfix;		/* != 0: nla_len as written (garbage) */
};

struct msgb {
	unsigned int n;
	struct attr a[MAXA];
	uint32_t used;
	uint8_t pool[POOL];
};

static bool add(struct msgb *m, uint16_t type, const void *data, uint32_t len)
{
	if (m->n >= MAXA || m->used + len > POOL || len > 0xffff - NLA_HDRLEN)
		return false;
	m->a[m->n] = (struct attr){ .type = type, .len = len, .off = m->used };
	if (data)
		memcpy(m->pool + m->used, data, len);
	else
		for (uint32_t i = 0; i < len; i++)
			m->pool[m->used + i] = (uint8_t)r64();
	m->used += len;
	m->n++;
	return true;
}

static void add_u32(struct msgb *m, uint16_t type, uint32_t v)
{
	add(m, type, &v, 4);
}

static void add_u64(struct msgb *m, uint16_t type, uint64_t v)
{
	add(m, type, &v, 8);
}

static void add_str(struct msgb *m, uint16_t type, const char *s)
{
	add(m, type, s, strlen(s) + 1);
}

/* Bytes of the attributes, at most @cap. */
static uint32_t serialize(const struct msgb *m, uint8_t *out, uint32_t cap)
{
	uint32_t off = 0;
	unsigned int i;

	for (i = 0; i < m->n; i++) {
		const struct attr *a = &m->a[i];
		uint32_t total = NLA_ALIGN(NLA_HDRLEN + a->len);
		struct nlattr nla;

		if (off + total > cap)
			break;
		nla.nla_len = a->lenfix ? (uint16_t)a->lenfix : NLA_HDRLEN + a->len;
		nla.nla_type = a->type;
		memcpy(out + off, &nla, sizeof(nla));
		memcpy(out + off + NLA_HDRLEN, m->pool + a->off, a->len);
		memset(out + off + NLA_HDRLEN + a->len, 0, total - NLA_HDRLEN - a->len);
		off += total;
	}
	return off;
}

/* A nested attribute from @sub. */
static void add_nest(struct msgb *m, uint16_t type, const struct msgb *sub)
{
	static uint8_t buf[70000];
	uint32_t n = serialize(sub, buf, 0xffff - NLA_HDRLEN);

	add(m, type, buf, n);
}

/* ---- hosts (see ioctl_fuzz_test.c) ------------------------------------- */

static const char *const curated_hosts[] = {
	"192.0.2", "192.0.2.1.1", "192.0.2.256", "192..0.2.1", ".192.0.2.1",
	"192.0.2.1.", "1920.0.2.1", "192.0.2.1:", "192.0.2.1:1", "192.0.2.1%1",
	"::ffff:192.0.2", "::ffff:192.0.2.1.5", "::ffff:192.0.2.1",
	"2001:db8::1::2", "2001:db8:::1", "2001:db8::12345",
	"2001:db8:1:2:3:4:5:6:7", "2001:db8::1%", "2001:db8::1%99999",
	":2001:db8::1", "2001:db8::1:", "2001:db8::", "%", ":", ".", "::::",
};

static const char *const testnet_hosts[] = {
	"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1",
};

/* A string the module's parser refuses: a character not in its alphabets. */
static void garbage_host(char *h, size_t cap)
{
	static const char ok[] = "0123456789abcdefABCDEF:.%";
	static const char no[] = "gxz -_/[]@#!~,;\t\x01\x7f\x80\xff";
	size_t n = 1 + rn(cap - 1), i;

	for (i = 0; i < n; i++)
		h[i] = ok[rn(sizeof(ok) - 1)];
	h[n] = 0;
	h[rn(n)] = no[rn(sizeof(no) - 1)];
}

/* The part before the NUL could be an address literal. */
static bool may_parse(const uint8_t *p, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len && p[i]; i++)
		if (!strchr("0123456789abcdefABCDEF:.%", p[i]))
			return false;
	return i > 0;
}

/* ---- the fuzzing child's world ------------------------------------------ */

#define BLK_PAGES 96	/* 0..79 rw, 80..87 PROT_NONE, 88..95 unmapped */

static struct world {
	pid_t self, helper;
	int mem_self, mem_helper;	/* /proc/PID/mem, read-write */
	int bogus[8];			/* fds that are not that */
	uint8_t *blk;
	int dev;			/* a /dev/rdmamig session: file-owned */
	uint32_t dev_id;
	bool have_dev_id;
	struct nls s[2];		/* requests */
	struct nls ev;			/* subscribed to "events" */
	unsigned int names;
} W;

static uint32_t pick_session_id(struct nls *s)
{
	struct nls *o = &W.s[rn(2)];

	switch (rn(10)) {
	case 0: case 1: case 2: case 3: case 4:
		if (s->n)
			return s->id[rn(s->n)];
		/* fall through */
	case 5:
		if (o->n)
			return o->id[rn(o->n)];	/* maybe another socket's */
		/* fall through */
	case 6:
		if (W.have_dev_id)
			return W.dev_id;		/* a file's */
		/* fall through */
	default:	/* nobody's: ids are small, these are not */
		return PICK(((const uint32_t[]){ 0xffffffff, 0x7fffffff, 0x80000000,
						 0x100000, 0xfffffffe }));
	}
}

static void gen_params(struct msgb *m)
{
	if (chance(50))
		add_u64(m, RDMAMIG_ATTR_CAPS, chance(70) ? rn(2) : any64());
	if (chance(50))
		add_u64(m, RDMAMIG_ATTR_MAX_BANDWIDTH, any64());
	if (chance(50))
		add_u64(m, RDMAMIG_ATTR_MAX_REGISTERED, chance(60) ? (1 + rn(256)) << 20 : any64());
	if (chance(50))
		add_u32(m, RDMAMIG_ATTR_KEEPALIVE_MS,
			chance(60) ? PICK(((const uint32_t[]){ 0, 99, 100, 1000, 60000, 60001 })) :
				     any32());
	if (chance(50))
		add_u32(m, RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, any32());
	if (chance(50))
		add_u32(m, RDMAMIG_ATTR_MAX_ROUNDS, chance(20) ? 0 : any32());
	/* Mostly not: it is refused once started, and OFF makes keys moot. */
	if (chance(20))
		add_u32(m, RDMAMIG_ATTR_AUTH,
			chance(80) ? PICK(((const uint32_t[]){ RDMAMIG_AUTH_REQUIRED,
							       RDMAMIG_AUTH_OFF, 2 })) :
				     any32());
}

/* SECRET: the test key, or random bytes, of a length around 16..64. */
static void gen_secret(struct msgb *m)
{
	static const uint32_t lens[] = {
		0, 1, 15, RDMAMIG_SECRET_MIN, 17, 32, 63, RDMAMIG_SECRET_MAX, 65, 200,
	};
	uint8_t key[RDMAMIG_SECRET_MAX];
	uint32_t len;

	if (chance(40)) {
		len = test_secret(key);
		add(m, RDMAMIG_ATTR_SECRET, key, len);
		return;
	}
	len = chance(50) ? PICK(lens) :
	      chance(80) ? RDMAMIG_SECRET_MIN + rn(RDMAMIG_SECRET_MAX - RDMAMIG_SECRET_MIN + 1) :
			   rn(1024);
	add(m, RDMAMIG_ATTR_SECRET, NULL, len);
}

static void gen_block(struct msgb *m)
{
	static struct msgb sub;
	char name[RDMAMIG_BLOCK_NAME_MAX + 8];
	unsigned int i, n;

	sub.n = 0;
	sub.used = 0;
	if (chance(5)) {		/* nested garbage */
		for (n = rn(6), i = 0; i < n; i++)
			add(&sub, rn(RDMAMIG_ATTR_MAX + 6) | (chance(10) ? NLA_F_NESTED : 0),
			    NULL, rn(chance(90) ? 16 : 2000));
	} else {
		if (chance(95)) {
			switch (rn(10)) {
			case 0:	/* no NUL */
				memset(name, 'a' + rn(26), 8);
				add(&sub, RDMAMIG_ATTR_BLOCK_NAME, name, 8);
				break;
			case 1:	/* too long */
				memset(name, 'b', RDMAMIG_BLOCK_NAME_MAX);
				name[RDMAMIG_BLOCK_NAME_MAX] = 0;
				add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, name);
				break;
			case 2:	/* not graphic */
				snprintf(name, sizeof(name), "b %u\x01", W.names++);
				add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, name);
				break;
			case 3:	/* empty */
				add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, "");
				break;
			case 4:	/* a duplicate, maybe */
				snprintf(name, sizeof(name), "blk%u", (unsigned int)rn(4));
				add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, name);
				break;
			default:
				snprintf(name, sizeof(name), "blk%u", W.names++);
				add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, name);
			}
		}
		if (chance(95))
			add_u64(&sub, RDMAMIG_ATTR_BLOCK_ADDR,
				chance(80) ? (uintptr_t)W.blk + rn(BLK_PAGES) * PG :
				chance(50) ? (uintptr_t)W.blk + rn(BLK_PAGES * PG) : any64());
		if (chance(95))
			add_u64(&sub, RDMAMIG_ATTR_BLOCK_LEN,
				chance(80) ? (1 + rn(chance(80) ? 4 : BLK_PAGES)) * PG : any64());
		if (chance(5))
			add(&sub, rn(RDMAMIG_ATTR_MAX + 6), NULL, rn(12));
	}
	add_nest(m, RDMAMIG_ATTR_BLOCK | (chance(95) ? NLA_F_NESTED : 0), &sub);
}

static void gen_host_attr(struct msgb *m, int cmd)
{
	char h[RDMAMIG_HOST_MAX + 16];
	unsigned int r = rn(100);

	if (r < 30) {
		garbage_host(h, RDMAMIG_HOST_MAX);
		add_str(m, RDMAMIG_ATTR_HOST, h);
	} else if (r < 38) {		/* no NUL */
		memset(h, '1', RDMAMIG_HOST_MAX);
		add(m, RDMAMIG_ATTR_HOST, h, 1 + rn(RDMAMIG_HOST_MAX));
	} else if (r < 43) {		/* longer than the policy takes */
		memset(h, '2', RDMAMIG_HOST_MAX + 8);
		h[RDMAMIG_HOST_MAX + 8] = 0;
		add_str(m, RDMAMIG_ATTR_HOST, h);
	} else if (r < 48) {
		add_str(m, RDMAMIG_ATTR_HOST, "");
	} else if (r < 70) {
		add_str(m, RDMAMIG_ATTR_HOST, PICK(curated_hosts));
	} else if (cmd == RDMAMIG_CMD_LISTEN && cfg_addr) {
		if (r < 95) {
			add_str(m, RDMAMIG_ATTR_HOST, cfg_addr);
		} else {
			snprintf(h, sizeof(h), "%s:1", cfg_addr);
			add_str(m, RDMAMIG_ATTR_HOST, h);
		}
	} else {
		add_str(m, RDMAMIG_ATTR_HOST, PICK(testnet_hosts));
	}
}

/* ACCEPT and CONNECT: at most 100 ms, mostly 1 or 2. */
static uint32_t short_timeout(void)
{
	return 1 + rn(chance(95) ? 2 : 100);
}

/* The attributes a command takes, with random values. */
static void gen_cmd(struct msgb *m, int cmd, struct nls *s)
{
	unsigned int i, n;

	switch (cmd) {
	case RDMAMIG_CMD_GET_SESSION:
	case RDMAMIG_CMD_CANCEL_SESSION:
	case RDMAMIG_CMD_END_ROUND:
	case RDMAMIG_CMD_COMPLETE:
		if (chance(90))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		break;
	case RDMAMIG_CMD_SET_SESSION:
		if (chance(90))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		gen_params(m);
		break;
	case RDMAMIG_CMD_SET_DEFAULTS:
		gen_params(m);
		break;
	case RDMAMIG_CMD_NEW_SESSION: {
		unsigned int r = rn(10);

		/* TARGET_PID and MEM_FD: ours, the helper's, crossed, bogus. */
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_TARGET_PID,
				r < 4 ? (uint32_t)W.self : r < 8 ? (uint32_t)W.helper :
				chance(50) ? (uint32_t)(r == 8 ? W.helper : W.self) :
				PICK(((const uint32_t[]){ 0, 1, 2, 0x7fffffff, 0xffffffff, 99999 })));
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_MEM_FD,
				r < 4 ? W.mem_self : r < 8 ? W.mem_helper :
				r == 8 ? W.mem_self : W.bogus[rn(ARRAY_LEN(W.bogus))]);
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_ROLE, chance(85) ? 1 + rn(2) : any32());
		n = chance(90) ? rn(5) : rn(70);
		for (i = 0; i < n; i++)
			gen_block(m);
		if (chance(85))
			gen_secret(m);
		if (chance(30))
			gen_params(m);
		break;
	}
	case RDMAMIG_CMD_LISTEN:
	case RDMAMIG_CMD_CONNECT:
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		if (chance(95))
			gen_host_attr(m, cmd);
		if (chance(80))
			add_u32(m, RDMAMIG_ATTR_PORT, chance(60) ? 0 : any32());
		if (chance(80))
			add_u32(m, RDMAMIG_ATTR_TIMEOUT_MS, short_timeout());
		break;
	case RDMAMIG_CMD_ACCEPT:
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		add_u32(m, RDMAMIG_ATTR_TIMEOUT_MS, short_timeout());
		break;
	case RDMAMIG_CMD_ROUND:
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		if (chance(90))
			add_u32(m, RDMAMIG_ATTR_BLOCK_INDEX, chance(80) ? rn(5) : any32());
		if (chance(90))
			add_u64(m, RDMAMIG_ATTR_FIRST_PAGE, chance(80) ? rn(100) : any64());
		if (chance(90))
			add(m, RDMAMIG_ATTR_BITMAP, NULL,
			    chance(70) ? 8 * (1 + rn(16)) : rn(chance(90) ? 600 : 65531));
		if (chance(50))
			add_u32(m, RDMAMIG_ATTR_FLAGS, chance(70) ? rn(4) : any32());
		break;
	case RDMAMIG_CMD_POSTCOPY:
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		break;
	case RDMAMIG_CMD_POSTCOPY_RESUME:
		/* No session of ours fails in post-copy: every pair is refused. */
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_RESUME_FROM, pick_session_id(s));
		break;
	case RDMAMIG_CMD_MC_EPOCH:
		/* Pointers anywhere: no session of ours ever checkpoints. */
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		if (chance(70))
			add_u64(m, RDMAMIG_ATTR_ROUNDS, any64());
		if (chance(70))
			add_u32(m, RDMAMIG_ATTR_NROUNDS, chance(70) ? rn(2000) : any32());
		if (chance(50))
			add_u64(m, RDMAMIG_ATTR_BUF, any64());
		if (chance(50))
			add_u64(m, RDMAMIG_ATTR_BUF_LEN, chance(70) ? rn(1 << 25) : any64());
		break;
	case RDMAMIG_CMD_FETCH:
	case RDMAMIG_CMD_OWED:
		/* Buffers anywhere: no session of ours ever reaches post-copy. */
		if (chance(95))
			add_u32(m, RDMAMIG_ATTR_SESSION_ID, pick_session_id(s));
		if (chance(70))
			add_u32(m, RDMAMIG_ATTR_FLAGS, chance(70) ? rn(2) : any32());
		if (chance(70))
			add_u64(m, RDMAMIG_ATTR_ADDR, chance(50) ? 0x7e0000000000ULL : any64());
		if (chance(90))
			add_u64(m, RDMAMIG_ATTR_BUF, chance(50) ? PG * rn(1000) : any64());
		if (chance(90))
			add_u64(m, RDMAMIG_ATTR_BUF_LEN, chance(70) ? PG * rn(300) : any64());
		if (chance(30))
			add_u64(m, RDMAMIG_ATTR_RUNS, any64());
		if (chance(30))
			add_u32(m, RDMAMIG_ATTR_NRUNS, chance(70) ? rn(70) : any32());
		if (chance(50))
			add_u32(m, RDMAMIG_ATTR_BLOCK_INDEX, chance(80) ? rn(5) : any32());
		if (chance(50))
			add_u64(m, RDMAMIG_ATTR_FIRST_PAGE, chance(80) ? rn(100) : any64());
		if (chance(50))
			add_u64(m, RDMAMIG_ATTR_NPAGES, chance(80) ? rn(20000) : any64());
		break;
	default:	/* GET_VERSION, GET_DEV, GET_DEFAULTS, the unused ones */
		break;
	}
}

/* One of our own sessions of @role (0: any), or none. */
static bool own_session(struct nls *s, uint8_t role, uint32_t *id)
{
	unsigned int i, start, n = s->n;

	if (!n)
		return false;
	start = rn(n);
	for (i = 0; i < n; i++) {
		unsigned int k = (start + i) % n;

		if (!role || s->role[k] == role) {
			*id = s->id[k];
			return true;
		}
	}
	return false;
}

/*
 * A request that is right in every detail, to move our own sessions
 * along (made, listening, failed to connect, cancelled) so that the
 * fuzzed ones meet them in every state.  Returns false if @cmd has
 * nothing to act on yet.
 */
static bool gen_valid(struct msgb *m, int cmd, struct nls *s, uint8_t *role)
{
	char name[32];
	uint32_t id, off = 0, i, n;
	bool helper = chance(50);

	switch (cmd) {
	case RDMAMIG_CMD_NEW_SESSION:
		*role = 1 + rn(2);
		add_u32(m, RDMAMIG_ATTR_TARGET_PID, helper ? W.helper : W.self);
		add_u32(m, RDMAMIG_ATTR_MEM_FD, helper ? W.mem_helper : W.mem_self);
		add_u32(m, RDMAMIG_ATTR_ROLE, *role);
		for (n = 1 + rn(4), i = 0; i < n; i++) {
			static struct msgb sub;
			uint32_t len = 1 + rn(8);

			sub.n = 0;
			sub.used = 0;
			snprintf(name, sizeof(name), "v%u", W.names++);
			add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, name);
			add_u64(&sub, RDMAMIG_ATTR_BLOCK_ADDR, (uintptr_t)W.blk + off * PG);
			add_u64(&sub, RDMAMIG_ATTR_BLOCK_LEN, len * PG);
			add_nest(m, RDMAMIG_ATTR_BLOCK | NLA_F_NESTED, &sub);
			off += len;
		}
		if (chance(30))
			add_u64(m, RDMAMIG_ATTR_CAPS, rn(2));
		if (chance(30))
			add_u32(m, RDMAMIG_ATTR_KEEPALIVE_MS, chance(50) ? 0 : 1000);
		/* A good secret, or authentication explicitly off. */
		if (chance(85)) {
			uint8_t key[RDMAMIG_SECRET_MAX];
			uint32_t len = test_secret(key);

			if (chance(50))
				add(m, RDMAMIG_ATTR_SECRET, key, len);
			else
				add(m, RDMAMIG_ATTR_SECRET, NULL, RDMAMIG_SECRET_MIN +
				    rn(RDMAMIG_SECRET_MAX - RDMAMIG_SECRET_MIN + 1));
			if (chance(10))
				add_u32(m, RDMAMIG_ATTR_AUTH, RDMAMIG_AUTH_REQUIRED);
		} else {
			add_u32(m, RDMAMIG_ATTR_AUTH, RDMAMIG_AUTH_OFF);
		}
		return true;
	case RDMAMIG_CMD_LISTEN:
		if (!cfg_addr || !own_session(s, 2, &id))
			return false;
		add_u32(m, RDMAMIG_ATTR_SESSION_ID, id);
		add_str(m, RDMAMIG_ATTR_HOST, cfg_addr);
		add_u32(m, RDMAMIG_ATTR_PORT, 0);
		return true;
	case RDMAMIG_CMD_ACCEPT:
		if (!own_session(s, 2, &id))
			return false;
		add_u32(m, RDMAMIG_ATTR_SESSION_ID, id);
		add_u32(m, RDMAMIG_ATTR_TIMEOUT_MS, short_timeout());
		return true;
	case RDMAMIG_CMD_CONNECT:
		if (!own_session(s, 1, &id))
			return false;
		add_u32(m, RDMAMIG_ATTR_SESSION_ID, id);
		add_str(m, RDMAMIG_ATTR_HOST, PICK(testnet_hosts));
		add_u32(m, RDMAMIG_ATTR_PORT, 1 + rn(65535));
		add_u32(m, RDMAMIG_ATTR_TIMEOUT_MS, 1 + rn(100));
		return true;
	case RDMAMIG_CMD_ROUND:
		if (!own_session(s, 1, &id))
			return false;
		add_u32(m, RDMAMIG_ATTR_SESSION_ID, id);
		add_u32(m, RDMAMIG_ATTR_BLOCK_INDEX, 0);
		add_u64(m, RDMAMIG_ATTR_FIRST_PAGE, 0);
		add(m, RDMAMIG_ATTR_BITMAP, NULL, 8);
		return true;
	case RDMAMIG_CMD_SET_SESSION:
		if (!own_session(s, 0, &id))
			return false;
		add_u32(m, RDMAMIG_ATTR_SESSION_ID, id);
		add_u64(m, RDMAMIG_ATTR_MAX_BANDWIDTH, rn(2) << 30);
		return true;
	default:	/* CANCEL_SESSION, END_ROUND, COMPLETE, GET_SESSION */
		if (!own_session(s, 0, &id))
			return false;
		add_u32(m, RDMAMIG_ATTR_SESSION_ID, id);
		return true;
	}
}

/* Any attribute, any length: type 0..ATTR_MAX+5, up to 64 KiB. */
static void add_random(struct msgb *m)
{
	uint16_t type = rn(RDMAMIG_ATTR_MAX + 6);
	uint32_t len;

	if (chance(10))
		type |= chance(50) ? NLA_F_NESTED : NLA_F_NET_BYTEORDER;
	switch (rn(8)) {
	case 0:
		len = 0;
		break;
	case 1:
		len = PICK(((const uint32_t[]){ 1, 2, 3, 5, 7, 9, 12, 16 }));
		break;
	case 2:
		len = 4;
		break;
	case 3:
		len = 8;
		break;
	case 4:
		len = chance(90) ? rn(1024) : 0xffff - NLA_HDRLEN - rn(64);
		break;
	default:
		len = rn(80);
	}
	add(m, type, NULL, len);
}

static void mutate(struct msgb *m)
{
	unsigned int k, i, nm = 1 + rn(3);

	for (k = 0; k < nm; k++) {
		i = m->n ? rn(m->n) : 0;
		switch (rn(9)) {
		case 0:		/* another type */
			if (m->n)
				m->a[i].type = rn(RDMAMIG_ATTR_MAX + 6);
			break;
		case 1:		/* shorter */
			if (m->n && m->a[i].len)
				m->a[i].len = rn(m->a[i].len);
			break;
		case 2:		/* longer */
			if (m->n)
				add(m, m->a[i].type, NULL, m->a[i].len + 1 + rn(chance(90) ? 12 : 60000));
			break;
		case 3:		/* a flag bit */
			if (m->n)
				m->a[i].type ^= chance(50) ? NLA_F_NESTED : NLA_F_NET_BYTEORDER;
			break;
		case 4:		/* twice */
			if (m->n)
				add(m, m->a[i].type, m->pool + m->a[i].off, m->a[i].len);
			break;
		case 5:		/* gone */
			if (m->n) {
				memmove(&m->a[i], &m->a[i + 1], (m->n - i - 1) * sizeof(m->a[0]));
				m->n--;
			}
			break;
		case 6:		/* a header that lies: truncated */
			if (m->n)
				m->a[i].lenfix = chance(50) ? (int)rn(NLA_HDRLEN) :
					(int)(NLA_HDRLEN + m->a[i].len + 1 +
					      rn(chance(80) ? 16 : 0xffff));
			break;
		default:
			add_random(m);
		}
	}
}

/*
 * The guarantees, whatever the mutations did: ACCEPT and CONNECT wait
 * at most 100 ms; CONNECT reaches only documentation addresses; LISTEN
 * only binds port 0 with a host that could be an address.
 */
static void make_safe(struct msgb *m, int cmd)
{
	bool timeout = false, parses = false;
	unsigned int i;
	uint32_t v;

	for (i = 0; i < m->n; i++) {
		struct attr *a = &m->a[i];
		uint16_t t = a->type & NLA_TYPE_MASK;
		uint8_t *p = m->pool + a->off;

		if (t == RDMAMIG_ATTR_TIMEOUT_MS && a->len >= 4) {
			memcpy(&v, p, 4);
			if (!v || v > 100) {
				v = short_timeout();
				memcpy(p, &v, 4);
			}
			timeout = true;
		}
		if (t == RDMAMIG_ATTR_HOST && may_parse(p, a->len)) {
			const char *h = cmd == RDMAMIG_CMD_CONNECT ? PICK(testnet_hosts) :
					cfg_addr && chance(70) ? cfg_addr : PICK(curated_hosts);

			if (a->len > strlen(h)) {
				memset(p, 0, a->len);
				memcpy(p, h, strlen(h));
			} else {	/* too short for it: make it garbage */
				p[0] = 'x';
			}
			parses = true;
		}
	}
	if ((cmd == RDMAMIG_CMD_ACCEPT || cmd == RDMAMIG_CMD_CONNECT) && !timeout)
		add_u32(m, RDMAMIG_ATTR_TIMEOUT_MS, short_timeout());
	if (cmd == RDMAMIG_CMD_LISTEN && parses)
		for (i = 0; i < m->n; i++)
			if ((m->a[i].type & NLA_TYPE_MASK) == RDMAMIG_ATTR_PORT && m->a[i].len >= 4)
				memset(m->pool + m->a[i].off, 0, 4);
}

/* ---- sending, receiving --------------------------------------------------- */

struct result {
	bool done, timeout, dump;
	int error;			/* 0: ACK, DONE; >0: errno */
	bool extack_msg;
	unsigned int replies;
	bool has_id, has_port;
	uint32_t id, port;
};

static volatile sig_atomic_t guard_fired;

static void on_alarm(int sig)
{
	(void)sig;
	guard_fired = 1;
}

static void guard(unsigned int sec)
{
	struct itimerval it = { .it_value = { sec, 0 }, .it_interval = { sec ? 1 : 0, 0 } };

	if (sec)
		guard_fired = 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void parse_reply(struct nlmsghdr *nlh, struct result *r)
{
	int rem = nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	struct nlattr *a = (struct nlattr *)((uint8_t *)NLMSG_DATA(nlh) + GENL_HDRLEN);

	for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (struct nlattr *)((uint8_t *)a + NLA_ALIGN(a->nla_len))) {
		uint16_t t = a->nla_type & NLA_TYPE_MASK;

		if (t == RDMAMIG_ATTR_SESSION_ID && a->nla_len == NLA_HDRLEN + 4) {
			memcpy(&r->id, (uint8_t *)a + NLA_HDRLEN, 4);
			r->has_id = true;
		}
		if (t == RDMAMIG_ATTR_PORT && a->nla_len == NLA_HDRLEN + 4) {
			memcpy(&r->port, (uint8_t *)a + NLA_HDRLEN, 4);
			r->has_port = true;
		}
	}
}

static bool has_extack_msg(struct nlmsghdr *nlh, bool cap_ack_guess)
{
	struct nlmsgerr *e = NLMSG_DATA(nlh);
	uint32_t off;
	int rem;
	struct nlattr *a;

	(void)cap_ack_guess;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return false;
	off = NLMSG_HDRLEN + sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	rem = (int)nlh->nlmsg_len - (int)off;
	a = (struct nlattr *)((uint8_t *)nlh + off);
	for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (struct nlattr *)((uint8_t *)a + NLA_ALIGN(a->nla_len)))
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG ||
		    (a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_OFFS ||
		    (a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MISS_TYPE)
			return true;
	return false;
}

static uint8_t txbuf[MSG_MAX], rxbuf[1 << 20];

/*
 * Send one request and read until its end: ACK or error, or a dump's
 * DONE, or a reply when no ACK was asked for.
 */
static int txrx(struct nls *s, int cmd, uint16_t flags, uint8_t version,
		uint8_t reserved, const struct msgb *m, int hdr_short,
		struct result *r)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)txbuf;
	struct genlmsghdr *g = NLMSG_DATA(nlh);
	uint32_t len, seq = ++s->seq;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	r->dump = (flags & NLM_F_DUMP) == NLM_F_DUMP;
	len = NLMSG_HDRLEN + GENL_HDRLEN;
	len += serialize(m, txbuf + len, sizeof(txbuf) - len);
	if (hdr_short >= 0)	/* not even a whole genl header */
		len = NLMSG_HDRLEN + hdr_short;
	nlh->nlmsg_len = len;
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 0;
	g->cmd = cmd;
	g->version = version;
	g->reserved = reserved;

	guard(RECV_TIMEOUT_S + 5);
	n = send(s->fd, txbuf, len, 0);
	guard(0);
	if (guard_fired)
		bad("iter %lu: %s: the request ran for over %d s", SH->iter, cmdname[cmd],
		    RECV_TIMEOUT_S + 5);
	if (n < 0)
		return -errno;

	while (!r->done) {
		struct nlmsghdr *h;

		n = recv(s->fd, rxbuf, sizeof(rxbuf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				r->timeout = true;
			else
				bad("iter %lu: %s: recv: %s", SH->iter, cmdname[cmd], ename(errno));
			return 0;
		}
		for (h = (struct nlmsghdr *)rxbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;	/* not ours (a dump's tail, an event) */
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				r->error = -e->error;
				r->extack_msg = has_extack_msg(h, false);
				r->done = true;
			} else if (h->nlmsg_type == NLMSG_DONE) {
				int err = 0;

				if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
					memcpy(&err, NLMSG_DATA(h), sizeof(int));
				r->error = -err;
				r->done = true;
			} else {
				r->replies++;
				if (h->nlmsg_type == family)
					parse_reply(h, r);
				/* A doit's reply without an ACK asked for ends it. */
				if (!(flags & NLM_F_ACK) && !(h->nlmsg_flags & NLM_F_MULTI))
					r->done = true;
			}
		}
	}
	return 0;
}

/* Drain the events socket: its overflows are fine. */
static void drain_events(void)
{
	while (W.ev.fd >= 0 && recv(W.ev.fd, rxbuf, sizeof(rxbuf), MSG_DONTWAIT) > 0)
		;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

/* One fuzzed (or, @valid, right) request of @cmd on @s, checked and counted. */
static void one_request(int cmd, struct nls *s, bool valid)
{
	static struct msgb m;
	struct nltally *t = &SH->t[cmd < NCMD ? cmd : NCMD];
	uint16_t flags = NLM_F_REQUEST | NLM_F_ACK;
	uint8_t version = RDMAMIG_GENL_VERSION, reserved = 0;
	int hdr_short = -1, ret, k = rn(100);
	struct result r;
	uint8_t role = 0;
	uint64_t t0;

	SH->iter++;
	m.n = 0;
	m.used = 0;
	if (valid) {
		if (!gen_valid(&m, cmd, s, &role))
			return;
	} else if (k < 40) {
		gen_cmd(&m, cmd, s);
	} else if (k < 85) {
		gen_cmd(&m, cmd, s);
		mutate(&m);
	} else {
		unsigned int n = rn(8);

		while (n--)
			add_random(&m);
	}
	make_safe(&m, cmd);

	if (valid)
		;
	else if (chance(12))
		flags = NLM_F_REQUEST | NLM_F_DUMP | (chance(20) ? NLM_F_ACK : 0);
	if (!valid && chance(4))
		flags |= 1U << (4 + rn(12));		/* a reserved or odd bit */
	if (!valid && chance(2))	/* not a request: only ACKed, so ask for it */
		flags = (flags & ~NLM_F_REQUEST) | NLM_F_ACK;
	if (!valid && chance(5))
		version = (uint8_t)r64();
	if (!valid && chance(5))
		reserved = 1 + rn(0xffff);
	if (!valid && chance(2))
		hdr_short = rn(GENL_HDRLEN);

	t0 = now_ns();
	ret = txrx(s, cmd, flags, version, reserved, &m, hdr_short, &r);
	t->ns += now_ns() - t0;
	t->calls++;
	if (ret < 0) {
		/* Only a message too big for the socket may be refused here. */
		SH->send_err[-ret < NERR ? -ret : 0]++;
		if (-ret != EMSGSIZE && -ret != ENOBUFS)
			bad("iter %lu: %s: send: %s", SH->iter, cmdname[cmd], ename(-ret));
		return;
	}
	if (r.timeout) {
		bad("iter %lu: %s: no answer within %d s (flags %#x)", SH->iter,
		    cmdname[cmd], RECV_TIMEOUT_S, flags);
		return;
	}
	t->replies += r.replies;
	t->dumps += r.dump && !r.error;
	if (!r.error) {
		t->ok++;
	} else if (r.error > 0 && r.error < NERR) {
		t->err[r.error]++;
		if (!r.extack_msg)
			t->no_extack[r.error]++;
		if (!errno_ok(r.error))
			bad("iter %lu: %s answered %s (flags %#x, %u attributes)", SH->iter,
			    cmdname[cmd], ename(r.error), flags, m.n);
	} else {
		bad("iter %lu: %s answered error %d", SH->iter, cmdname[cmd], -r.error);
	}

	/* Keep track of what we own. */
	if (!r.error && cmd == RDMAMIG_CMD_NEW_SESSION && r.has_id && s->n < ARRAY_LEN(s->id)) {
		s->id[s->n] = r.id;
		s->role[s->n] = role;
		s->n++;
		SH->sessions++;
	}
	if (!r.error && cmd == RDMAMIG_CMD_LISTEN && r.has_port)
		SH->listens++;
	if (cmd == RDMAMIG_CMD_CONNECT && r.error &&
	    (r.error == ENETUNREACH || r.error == EHOSTUNREACH || r.error == ETIMEDOUT))
		SH->connects_started++;
}

/* ---- the child that fuzzes ---------------------------------------------- */

static int open_mem(pid_t pid, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	return open(path, flags | O_CLOEXEC);
}

/* DOWNTIME_LIMIT_MS in a GET_SESSION message's PARAMS nest. */
static uint32_t downtime_of(const uint8_t *p, int rem)
{
	const struct nlattr *a = (const struct nlattr *)p;
	uint32_t v = 0;

	for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (const struct nlattr *)((const uint8_t *)a + NLA_ALIGN(a->nla_len)))
		if ((a->nla_type & NLA_TYPE_MASK) == RDMAMIG_ATTR_DOWNTIME_LIMIT_MS &&
		    a->nla_len == NLA_HDRLEN + 4)
			memcpy(&v, (const uint8_t *)a + NLA_HDRLEN, 4);
	return v;
}

/*
 * The id of our /dev/rdmamig session: /dev/rdmamig does not tell it, so
 * the session is marked with a downtime limit nobody else uses.
 */
static bool find_dev_id(struct nls *s, uint32_t marker, uint32_t *id)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)txbuf;
	struct genlmsghdr *g = NLMSG_DATA(nlh);
	bool found = false, done = false;
	ssize_t n;

	nlh->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN;
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++s->seq;
	nlh->nlmsg_pid = 0;
	memset(g, 0, sizeof(*g));
	g->cmd = RDMAMIG_CMD_GET_SESSION;
	g->version = RDMAMIG_GENL_VERSION;
	if (send(s->fd, txbuf, nlh->nlmsg_len, 0) < 0)
		return false;
	while (!done && (n = recv(s->fd, rxbuf, sizeof(rxbuf), 0)) > 0) {
		struct nlmsghdr *h;

		for (h = (struct nlmsghdr *)rxbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			int rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
			struct nlattr *a;
			uint32_t sid = 0, owner = 0, downtime = 0;

			if (h->nlmsg_seq != s->seq)
				continue;	/* an event */
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			a = (struct nlattr *)((uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN);
			for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
			       a->nla_len <= rem;
			     rem -= NLA_ALIGN(a->nla_len),
			     a = (struct nlattr *)((uint8_t *)a + NLA_ALIGN(a->nla_len))) {
				if ((a->nla_type & NLA_TYPE_MASK) == RDMAMIG_ATTR_SESSION_ID)
					memcpy(&sid, (uint8_t *)a + NLA_HDRLEN, 4);
				if ((a->nla_type & NLA_TYPE_MASK) == RDMAMIG_ATTR_OWNER_PID)
					memcpy(&owner, (uint8_t *)a + NLA_HDRLEN, 4);
				if ((a->nla_type & NLA_TYPE_MASK) == RDMAMIG_ATTR_PARAMS)
					downtime = downtime_of((uint8_t *)a + NLA_HDRLEN,
							       a->nla_len - NLA_HDRLEN);
			}
			if (owner == (uint32_t)getpid() && downtime == marker) {
				*id = sid;
				found = true;
			}
		}
	}
	return found;
}

/* A file-owned session, for netlink to poke at (EPERM, CANCEL_SESSION). */
static void dev_session(void)
{
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)W.blk, .length = PG, .name = "dev",
	};
	static uint32_t marker = 0x5eed0000;
	struct rdmamig_params p = {
		.size = sizeof(p), .mask = RDMAMIG_PARAM_DOWNTIME_LIMIT,
		.downtime_limit_ms = ++marker,
	};

	if (W.dev >= 0)
		close(W.dev);
	W.have_dev_id = false;
	W.dev = open("/dev/" RDMAMIG_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (W.dev < 0)
		return;
	/* So that churn() can make it listen; now and then without one. */
	if (chance(90))
		set_test_secret(W.dev);
	ioctl(W.dev, RDMAMIG_IOC_ADD_BLOCK, &b);
	if (ioctl(W.dev, RDMAMIG_IOC_SET_PARAMS, &p) == 0)
		W.have_dev_id = find_dev_id(&W.ev, marker, &W.dev_id);
}

static bool world_init(void)
{
	static const char *const others[] = {
		"/proc/self/maps", "/proc/self/status", "/dev/null",
	};
	unsigned int i;
	uint8_t *p;
	int grp;

	memset(&W, 0, sizeof(W));
	W.dev = -1;
	W.self = getpid();
	p = mmap(NULL, BLK_PAGES * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + 80 * PG, 8 * PG, PROT_NONE) ||
	    munmap(p + 88 * PG, 8 * PG))
		return false;
	W.blk = p;
	/* The helper: another process with the same layout, that waits. */
	W.helper = fork();
	if (W.helper < 0)
		return false;
	SH->helper = W.helper;
	if (W.helper == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* Never the one that keeps the test's output open. */
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		for (;;)
			pause();
	}
	W.mem_self = open_mem(W.self, O_RDWR);
	W.mem_helper = open_mem(W.helper, O_RDWR);
	if (W.mem_self < 0 || W.mem_helper < 0)
		return false;
	/* Not /proc/PID/mem read-write: the module must refuse them. */
	W.bogus[0] = open_mem(W.self, O_RDONLY);
	for (i = 0; i < ARRAY_LEN(others); i++)
		W.bogus[1 + i] = open(others[i], O_RDONLY | O_CLOEXEC);
	W.bogus[4] = -1;
	W.bogus[5] = 0x7fffffff;
	W.bogus[6] = 0;
	W.bogus[7] = 999;
	if (!nls_open(&W.s[0], chance(50)) || !nls_open(&W.s[1], chance(50)) ||
	    !nls_open(&W.ev, true))
		return false;
	grp = genl_ctrl_resolve_grp(W.ev.sk, RDMAMIG_GENL_NAME, RDMAMIG_MCGRP_EVENTS);
	if (grp >= 0)
		nl_socket_add_membership(W.ev.sk, grp);
	dev_session();
	return true;
}

static void world_exit(void)
{
	nls_close(&W.s[0]);
	nls_close(&W.s[1]);
	nls_close(&W.ev);
	if (W.dev >= 0)
		close(W.dev);
	if (kill(W.helper, SIGKILL) == 0)
		waitpid(W.helper, NULL, 0);
}

/* Now and then: a new socket (its sessions go), a new file session. */
static void churn(void)
{
	unsigned int r = rn(1000), i;

	if (r < 8) {
		i = rn(2);
		nls_close(&W.s[i]);
		if (!nls_open(&W.s[i], chance(50)))
			bad("cannot open a netlink socket again");
	} else if (r < 11) {
		dev_session();
	} else if (r < 14 && W.have_dev_id && cfg_addr) {
		/* Make the file's session a listener, for ACCEPT from netlink. */
		struct rdmamig_addr a = { .size = sizeof(a) };

		strcpy(a.host, cfg_addr);
		ioctl(W.dev, RDMAMIG_IOC_LISTEN, &a);
	}
	if ((r & 15) == 0)
		drain_events();
}

static void fuzz_all(void)
{
	unsigned long i;
	int cmd;

	static const int moves[] = {
		RDMAMIG_CMD_NEW_SESSION, RDMAMIG_CMD_NEW_SESSION, RDMAMIG_CMD_NEW_SESSION,
		RDMAMIG_CMD_NEW_SESSION, RDMAMIG_CMD_LISTEN, RDMAMIG_CMD_LISTEN,
		RDMAMIG_CMD_CONNECT, RDMAMIG_CMD_ACCEPT, RDMAMIG_CMD_ROUND,
		RDMAMIG_CMD_CANCEL_SESSION, RDMAMIG_CMD_SET_SESSION, RDMAMIG_CMD_END_ROUND,
	};

	for (cmd = 0; cmd < NCMD; cmd++)
		for (i = 0; i < cfg_iters; i++) {
			churn();
			/* Our sessions move on meanwhile. */
			if (chance(10))
				one_request(PICK(moves), &W.s[chance(75) ? 0 : 1], true);
			one_request(cmd, &W.s[chance(75) ? 0 : 1], false);
		}
	/* Numbers nobody uses. */
	for (i = 0; i < cfg_iters / 4 + 1; i++)
		one_request(NCMD + rn(256 - NCMD), &W.s[0], false);
}

/* ---- the parent: defaults, what is left, GET_VERSION ----------------------- */

struct defaults {
	bool valid, has_auth;
	uint64_t caps, bw, reg;
	uint32_t ka, dt, rounds, auth;
};

/* A plain request on a fresh socket, for the parent's checks. */
static int request(int cmd, uint16_t flags, struct msgb *m, struct result *r,
		   void (*each)(struct nlmsghdr *h, void *arg), void *arg)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)txbuf;
	struct genlmsghdr *g = NLMSG_DATA(nlh);
	struct nls s;
	uint32_t len;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (!nls_open(&s, true))
		return -1;
	len = NLMSG_HDRLEN + GENL_HDRLEN;
	if (m)
		len += serialize(m, txbuf + len, sizeof(txbuf) - len);
	nlh->nlmsg_len = len;
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = ++s.seq;
	nlh->nlmsg_pid = 0;
	memset(g, 0, sizeof(*g));
	g->cmd = cmd;
	g->version = RDMAMIG_GENL_VERSION;
	if (send(s.fd, txbuf, len, 0) < 0) {
		nls_close(&s);
		return -1;
	}
	while (!r->done) {
		struct nlmsghdr *h;

		n = recv(s.fd, rxbuf, sizeof(rxbuf), 0);
		if (n <= 0) {
			r->timeout = true;
			break;
		}
		for (h = (struct nlmsghdr *)rxbuf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				r->error = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
				r->done = true;
			} else if (h->nlmsg_type == NLMSG_DONE) {
				r->done = true;
			} else {
				r->replies++;
				if (each)
					each(h, arg);
			}
		}
	}
	nls_close(&s);
	return r->timeout ? -1 : 0;
}

static void each_attr(struct nlmsghdr *h,
		      void (*fn)(uint16_t type, const uint8_t *p, uint16_t len, void *arg),
		      void *arg)
{
	int rem = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	struct nlattr *a = (struct nlattr *)((uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN);

	for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (struct nlattr *)((uint8_t *)a + NLA_ALIGN(a->nla_len)))
		fn(a->nla_type & NLA_TYPE_MASK, (uint8_t *)a + NLA_HDRLEN,
		   a->nla_len - NLA_HDRLEN, arg);
}

static void defaults_attr(uint16_t t, const uint8_t *p, uint16_t len, void *arg)
{
	struct defaults *d = arg;

	if (len == 8 && t == RDMAMIG_ATTR_CAPS)
		memcpy(&d->caps, p, 8);
	if (len == 8 && t == RDMAMIG_ATTR_MAX_BANDWIDTH)
		memcpy(&d->bw, p, 8);
	if (len == 8 && t == RDMAMIG_ATTR_MAX_REGISTERED)
		memcpy(&d->reg, p, 8);
	if (len == 4 && t == RDMAMIG_ATTR_KEEPALIVE_MS)
		memcpy(&d->ka, p, 4);
	if (len == 4 && t == RDMAMIG_ATTR_DOWNTIME_LIMIT_MS)
		memcpy(&d->dt, p, 4);
	if (len == 4 && t == RDMAMIG_ATTR_MAX_ROUNDS)
		memcpy(&d->rounds, p, 4);
	if (len == 4 && t == RDMAMIG_ATTR_AUTH) {
		memcpy(&d->auth, p, 4);
		d->has_auth = true;
	}
}

static void defaults_msg(struct nlmsghdr *h, void *arg)
{
	((struct defaults *)arg)->valid = true;
	each_attr(h, defaults_attr, arg);
}

static bool get_defaults(struct defaults *d)
{
	struct result r;

	memset(d, 0, sizeof(*d));
	return !request(RDMAMIG_CMD_GET_DEFAULTS, NLM_F_REQUEST | NLM_F_ACK, NULL, &r,
			defaults_msg, d) && !r.error && d->valid;
}

static bool set_defaults(const struct defaults *d)
{
	static struct msgb m;
	struct result r;

	m.n = 0;
	m.used = 0;
	add_u64(&m, RDMAMIG_ATTR_CAPS, d->caps);
	add_u64(&m, RDMAMIG_ATTR_MAX_BANDWIDTH, d->bw);
	add_u64(&m, RDMAMIG_ATTR_MAX_REGISTERED, d->reg);
	add_u32(&m, RDMAMIG_ATTR_KEEPALIVE_MS, d->ka);
	add_u32(&m, RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, d->dt);
	add_u32(&m, RDMAMIG_ATTR_MAX_ROUNDS, d->rounds);
	add_u32(&m, RDMAMIG_ATTR_AUTH, d->auth);
	return !request(RDMAMIG_CMD_SET_DEFAULTS, NLM_F_REQUEST | NLM_F_ACK, &m, &r,
			NULL, NULL) && !r.error;
}

struct version {
	char text[64];
	uint32_t proto;
	bool has_text, has_proto;
};

static void version_attr(uint16_t t, const uint8_t *p, uint16_t len, void *arg)
{
	struct version *v = arg;

	if (t == RDMAMIG_ATTR_VERSION && len && len < sizeof(v->text) && !p[len - 1]) {
		memcpy(v->text, p, len);
		v->has_text = true;
	}
	if (t == RDMAMIG_ATTR_PROTO_VERSION && len == 4) {
		memcpy(&v->proto, p, 4);
		v->has_proto = true;
	}
}

static void version_msg(struct nlmsghdr *h, void *arg)
{
	each_attr(h, version_attr, arg);
}

struct leftover {
	uint32_t id, owner, target;
	unsigned int n;			/* sessions of the pids below */
	pid_t pids[2];
	char list[256];
};

static void session_attr(uint16_t t, const uint8_t *p, uint16_t len, void *arg)
{
	struct leftover *l = arg;

	if (len != 4)
		return;
	if (t == RDMAMIG_ATTR_SESSION_ID)
		memcpy(&l->id, p, 4);
	if (t == RDMAMIG_ATTR_OWNER_PID)
		memcpy(&l->owner, p, 4);
	if (t == RDMAMIG_ATTR_TARGET_PID)
		memcpy(&l->target, p, 4);
}

static void session_msg(struct nlmsghdr *h, void *arg)
{
	struct leftover *l = arg;
	size_t n = strlen(l->list);

	bool left;

	l->id = l->owner = l->target = 0;
	each_attr(h, session_attr, arg);
	if (l->pids[0] > 0)
		left = (pid_t)l->owner == l->pids[0] || (pid_t)l->owner == l->pids[1] ||
		       (pid_t)l->target == l->pids[0] || (pid_t)l->target == l->pids[1];
	else	/* any session whose owner is gone */
		left = l->owner && kill(l->owner, 0) && errno == ESRCH;
	if (left) {
		l->n++;
		snprintf(l->list + n, sizeof(l->list) - n, " %u (owner %u, target %u)",
			 l->id, l->owner, l->target);
	}
}

static long module_refcnt(void)
{
	long n = -1;
	FILE *f = fopen("/sys/module/rdmamig/refcnt", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

FIXTURE(nl) {
	bool skip;
	struct defaults saved;
	long refcnt0;
};

FIXTURE_SETUP(nl)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct nls s;

	cfg_load();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	ASSERT_NE(MAP_FAILED, SH);
	memset(SH, 0, sizeof(*SH));
	if (geteuid() != 0) {
		self->skip = true;
		SKIP(return, "needs root");
	}
	if (!nls_open(&s, true)) {
		self->skip = true;
		SKIP(return, "no generic netlink socket");
	}
	family = genl_ctrl_resolve(s.sk, RDMAMIG_GENL_NAME);
	nls_close(&s);
	if (family < 0) {
		self->skip = true;
		SKIP(return, "no \"%s\" family: module not loaded?", RDMAMIG_GENL_NAME);
	}
	ASSERT_TRUE(get_defaults(&self->saved)) TH_LOG("GET_DEFAULTS failed");
	/* The reply's params have AUTH, which the fuzz may turn off. */
	ASSERT_TRUE(self->saved.has_auth) TH_LOG("GET_DEFAULTS without AUTH");
	ASSERT_GE((uint32_t)RDMAMIG_AUTH_OFF, self->saved.auth);
	self->refcnt0 = module_refcnt();
	seed_for(_metadata->name, 0);
	TH_LOG("seed %#llx (RDMAMIG_FUZZ_SEED), %lu requests per command "
	       "(RDMAMIG_FUZZ_ITERS), local address %s", (unsigned long long)cfg_seed,
	       cfg_iters, cfg_addr ?: "none");
}

FIXTURE_TEARDOWN(nl)
{
	struct defaults now;

	/* Whatever happened: the module's defaults as they were. */
	if (!self->skip && self->saved.valid) {
		EXPECT_TRUE(set_defaults(&self->saved)) TH_LOG("restoring the defaults failed");
		EXPECT_TRUE(get_defaults(&now));
		EXPECT_EQ(0, memcmp(&now, &self->saved, sizeof(now)));
	}
	munmap(SH, sizeof(*SH));
}

#define NEED_FAMILY() do {						\
	if (self->skip)							\
		SKIP(return, "no family or not root");			\
} while (0)

/* Run @fn in a child; its crash is a failure.  Returns its pid. */
static pid_t run_child(struct __test_metadata *_metadata, void (*fn)(void),
		       unsigned int limit_s)
{
	int status = 0, waited = 0;
	pid_t pid = fork(), w;

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn();
		_exit(0);
	}
	EXPECT_LT(0, pid);
	if (pid < 0)
		return pid;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && waited < (int)limit_s * 10) {
		usleep(100000);
		waited++;
	}
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		EXPECT_TRUE(false) TH_LOG("the fuzzing child still ran after %u s", limit_s);
		return pid;
	}
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("the fuzzing child died: status %#x%s", status,
		       WIFSIGNALED(status) ? " (signal)" : "");
	/* Its helper too, whatever became of the child. */
	if (SH->helper > 0)
		kill(SH->helper, SIGKILL);
	return pid;
}

/* What the module keeps of a child must be gone with it. */
static void check_after(struct __test_metadata *_metadata, FIXTURE_DATA(nl) *self,
			pid_t child, pid_t helper)
{
	struct leftover l = { .pids = { child, helper } };
	struct version v = {};
	struct result r;
	long refs;

	ASSERT_EQ(0, request(RDMAMIG_CMD_GET_VERSION, NLM_F_REQUEST | NLM_F_ACK, NULL, &r,
			     version_msg, &v)) TH_LOG("GET_VERSION: no answer");
	EXPECT_EQ(0, r.error) TH_LOG("GET_VERSION: %s", ename(r.error));
	EXPECT_TRUE(v.has_text);
	EXPECT_EQ((uint32_t)RDMAMIG_PROTO_VERSION, v.proto);
	TH_LOG("GET_VERSION afterwards: \"%s\", protocol %u", v.text, v.proto);
	ASSERT_EQ(0, request(RDMAMIG_CMD_GET_SESSION, NLM_F_REQUEST | NLM_F_DUMP, NULL, &r,
			     session_msg, &l));
	EXPECT_EQ(0U, l.n) TH_LOG("sessions left of a dead process:%s", l.list);
	refs = module_refcnt();
	if (self->refcnt0 >= 0)
		EXPECT_EQ(self->refcnt0, refs)
			TH_LOG("module refcnt %ld, was %ld", refs, self->refcnt0);
}

static void child_each_command(void)
{
	seed_for("each_command", 0);
	if (!world_init()) {
		bad("setting up: %s", strerror(errno));
		_exit(1);
	}
	SH->iter = 0;
	fuzz_all();
	world_exit();
}

/*
 * Every command 0..21, RDMAMIG_FUZZ_ITERS requests each, then numbers
 * 22..255; sessions made and dropped with their sockets as it goes.
 */
TEST_F_TIMEOUT(nl, each_command, 600)
{
	struct timespec t0, t1;
	pid_t child, helper;

	NEED_FAMILY();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	child = run_child(_metadata, child_each_command, 300);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	helper = SH->helper;
	EXPECT_TRUE(report(_metadata));
	TH_LOG("%.1f s", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	check_after(_metadata, self, child, helper);
}

/* ---- without CAP_NET_ADMIN --------------------------------------------- */

static void child_unprivileged(void)
{
	static const int admin[] = {
		RDMAMIG_CMD_SET_SESSION, RDMAMIG_CMD_CANCEL_SESSION,
		RDMAMIG_CMD_SET_DEFAULTS, RDMAMIG_CMD_NEW_SESSION, RDMAMIG_CMD_LISTEN,
		RDMAMIG_CMD_ACCEPT, RDMAMIG_CMD_CONNECT, RDMAMIG_CMD_ROUND,
		RDMAMIG_CMD_END_ROUND, RDMAMIG_CMD_COMPLETE,
	};
	static struct msgb m;
	struct result r;
	unsigned long i;
	unsigned int k;
	struct nls s;

	seed_for("unprivileged", 0);
	if (!world_init()) {
		bad("setting up: %s", strerror(errno));
		_exit(1);
	}
	/* Ours, while we may still kill it. */
	kill(W.helper, SIGKILL);
	waitpid(W.helper, NULL, 0);
	/* The socket was opened as root: the sender's rights count too. */
	if (!nls_open(&s, true) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534)) {
		bad("dropping privileges: %s", strerror(errno));
		_exit(1);
	}
	for (i = 0; i < cfg_iters / 10 + 1; i++) {
		for (k = 0; k < ARRAY_LEN(admin); k++) {
			m.n = 0;
			m.used = 0;
			gen_cmd(&m, admin[k], &s);
			make_safe(&m, admin[k]);
			SH->iter++;
			SH->t[admin[k]].calls++;
			if (txrx(&s, admin[k], NLM_F_REQUEST | NLM_F_ACK, 1, 0, &m, -1, &r) ||
			    r.timeout) {
				bad("%s: no answer", cmdname[admin[k]]);
				continue;
			}
			if (r.error > 0 && r.error < NERR)
				SH->t[admin[k]].err[r.error]++;
			else
				SH->t[admin[k]].ok++;
			/* Refused before its attributes are looked at. */
			if (r.error != EPERM)
				bad("%s without CAP_NET_ADMIN: %s", cmdname[admin[k]],
				    r.error ? ename(r.error) : "accepted");
		}
		/* What anyone may ask. */
		m.n = 0;
		m.used = 0;
		SH->iter++;
		SH->t[RDMAMIG_CMD_GET_VERSION].calls++;
		if (txrx(&s, RDMAMIG_CMD_GET_VERSION, NLM_F_REQUEST | NLM_F_ACK, 1, 0, &m, -1, &r) ||
		    r.timeout || r.error)
			bad("GET_VERSION without CAP_NET_ADMIN: %s", ename(r.error));
		else
			SH->t[RDMAMIG_CMD_GET_VERSION].ok++;
		SH->t[RDMAMIG_CMD_GET_DEFAULTS].calls++;
		if (txrx(&s, RDMAMIG_CMD_GET_DEFAULTS, NLM_F_REQUEST | NLM_F_ACK, 1, 0, &m, -1, &r) ||
		    r.timeout || r.error)
			bad("GET_DEFAULTS without CAP_NET_ADMIN: %s", ename(r.error));
		else
			SH->t[RDMAMIG_CMD_GET_DEFAULTS].ok++;
		SH->t[RDMAMIG_CMD_GET_SESSION].calls++;
		if (txrx(&s, RDMAMIG_CMD_GET_SESSION, NLM_F_REQUEST | NLM_F_DUMP, 1, 0, &m, -1, &r) ||
		    r.timeout || r.error)
			bad("GET_SESSION dump without CAP_NET_ADMIN: %s", ename(r.error));
		else
			SH->t[RDMAMIG_CMD_GET_SESSION].ok++;
	}
	nls_close(&s);
	world_exit();
}

/* Every admin command is EPERM without CAP_NET_ADMIN; the rest answer. */
TEST_F_TIMEOUT(nl, unprivileged, 300)
{
	pid_t child, helper;

	NEED_FAMILY();
	child = run_child(_metadata, child_unprivileged, 120);
	helper = SH->helper;
	EXPECT_TRUE(report(_metadata));
	check_after(_metadata, self, child, helper);
}

/* ---- NEW_SESSION and authentication, deterministically ------------------ */

static void secret_case(struct __test_metadata *_metadata, const char *what,
			int want, int auth_default, int auth, int secret_len)
{
	static struct msgb m, sub;
	uint8_t key[512];
	struct result r;
	struct nls s;
	int memfd;

	memfd = open_mem(getpid(), O_RDWR);
	ASSERT_LE(0, memfd);
	if (auth_default >= 0) {
		m.n = 0;
		m.used = 0;
		add_u32(&m, RDMAMIG_ATTR_AUTH, auth_default);
		ASSERT_EQ(0, request(RDMAMIG_CMD_SET_DEFAULTS, NLM_F_REQUEST | NLM_F_ACK,
				     &m, &r, NULL, NULL));
		ASSERT_EQ(0, r.error) TH_LOG("SET_DEFAULTS AUTH=%d: %s", auth_default,
					     ename(r.error));
	}
	m.n = 0;
	m.used = 0;
	sub.n = 0;
	sub.used = 0;
	add_u32(&m, RDMAMIG_ATTR_TARGET_PID, getpid());
	add_u32(&m, RDMAMIG_ATTR_MEM_FD, memfd);
	add_u32(&m, RDMAMIG_ATTR_ROLE, RDMAMIG_ROLE_DEST);
	add_str(&sub, RDMAMIG_ATTR_BLOCK_NAME, "ram0");
	add_u64(&sub, RDMAMIG_ATTR_BLOCK_ADDR, (uintptr_t)W.blk);
	add_u64(&sub, RDMAMIG_ATTR_BLOCK_LEN, 4 * PG);
	add_nest(&m, RDMAMIG_ATTR_BLOCK | NLA_F_NESTED, &sub);
	if (auth >= 0)
		add_u32(&m, RDMAMIG_ATTR_AUTH, auth);
	if (secret_len >= 0) {
		memset(key, 0x42, sizeof(key));
		add(&m, RDMAMIG_ATTR_SECRET, key, secret_len);
	}
	/* A socket of its own: closing it destroys a session it made. */
	ASSERT_TRUE(nls_open(&s, true));
	ASSERT_EQ(0, txrx(&s, RDMAMIG_CMD_NEW_SESSION, NLM_F_REQUEST | NLM_F_ACK,
			  RDMAMIG_GENL_VERSION, 0, &m, -1, &r));
	nls_close(&s);
	close(memfd);
	ASSERT_FALSE(r.timeout) TH_LOG("%s: no answer", what);
	TH_LOG("NEW_SESSION %s: %s%s", what, r.error ? ename(r.error) : "ok",
	       r.error && !r.extack_msg ? " (no extack)" : "");
	EXPECT_EQ(want, r.error) TH_LOG("%s: %s, expected %s", what, ename(r.error),
					want ? ename(want) : "success");
	if (want) {
		EXPECT_TRUE(r.extack_msg) TH_LOG("%s: refused without an extack message", what);
	} else {
		EXPECT_TRUE(r.has_id) TH_LOG("%s: no SESSION_ID", what);
	}
}

/*
 * NEW_SESSION needs a SECRET of 16..64 bytes while authentication is
 * required (by AUTH or the defaults): ENOKEY without one, the policy's
 * ERANGE for a length or an AUTH out of range, each with a message.
 * The fixture's teardown restores the defaults.
 */
TEST_F(nl, new_session_secret)
{
	struct defaults d;
	uint8_t *p;

	NEED_FAMILY();
	p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 1, 4 * PG);
	W.blk = p;
	secret_case(_metadata, "no SECRET, defaults require auth", ENOKEY,
		    RDMAMIG_AUTH_REQUIRED, -1, -1);
	ASSERT_TRUE(get_defaults(&d));
	EXPECT_TRUE(d.has_auth);
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_REQUIRED, d.auth);
	secret_case(_metadata, "no SECRET, AUTH=REQUIRED", ENOKEY, -1,
		    RDMAMIG_AUTH_REQUIRED, -1);
	secret_case(_metadata, "SECRET of 0 bytes", ERANGE, -1, -1, 0);
	secret_case(_metadata, "SECRET of 15 bytes", ERANGE, -1, -1, RDMAMIG_SECRET_MIN - 1);
	secret_case(_metadata, "SECRET of 65 bytes", ERANGE, -1, -1, RDMAMIG_SECRET_MAX + 1);
	secret_case(_metadata, "SECRET of 16 bytes", 0, -1, -1, RDMAMIG_SECRET_MIN);
	secret_case(_metadata, "SECRET of 64 bytes", 0, -1, -1, RDMAMIG_SECRET_MAX);
	secret_case(_metadata, "AUTH=OFF, no SECRET", 0, -1, RDMAMIG_AUTH_OFF, -1);
	secret_case(_metadata, "AUTH=2", ERANGE, -1, 2, RDMAMIG_SECRET_MIN);
	secret_case(_metadata, "AUTH=0x7fffffff", ERANGE, -1, 0x7fffffff, RDMAMIG_SECRET_MIN);
	/* Defaults off: no SECRET needed, unless the request asks for auth. */
	secret_case(_metadata, "no SECRET, defaults off", 0, RDMAMIG_AUTH_OFF, -1, -1);
	ASSERT_TRUE(get_defaults(&d));
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_OFF, d.auth);
	secret_case(_metadata, "no SECRET, defaults off, AUTH=REQUIRED", ENOKEY, -1,
		    RDMAMIG_AUTH_REQUIRED, -1);
	secret_case(_metadata, "SECRET of 32 bytes, defaults off", 0, -1, -1, 32);
	munmap(p, 4 * PG);
	W.blk = NULL;
}

/* Last: the family answers, and no session is left of a dead process. */
TEST_F(nl, still_answers)
{
	NEED_FAMILY();
	check_after(_metadata, self, -1, -1);
}

TEST_HARNESS_MAIN
