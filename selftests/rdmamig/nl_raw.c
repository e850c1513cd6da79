// SPDX-License-Identifier: GPL-2.0
/*
 * nl_raw: send one request of the rdmamig generic-netlink family, with
 * exactly the attributes given, and print what the kernel answered.  For
 * the requests rdmamigctl never makes (an attribute a command does not
 * take, a wrong type, ...), so the kernel's checks can be tested directly.
 *
 *   nl_raw [--dump] CMD [ATTR=VALUE]... [-- CMD [ATTR=VALUE]...]...
 *
 * CMD: get-version, get-dev, get-session, set-session, cancel-session,
 * get-defaults, set-defaults, new-session, listen, accept, connect,
 * round, end-round, complete, postcopy, fetch, owed, postcopy-resume,
 * or a number.  ATTR:
 * session-id, caps, max-bandwidth, max-registered, keepalive-ms,
 * downtime-limit-ms, max-rounds, auth (0 required, 1 off), target-pid,
 * mem-fd, role, port, host, timeout-ms, secret (hex bytes), secret-file
 * (a file's bytes, as SECRET), block-index, first-page, bitmap (hex),
 * flags, addr, buf, buf-len, runs, nruns, npages, resume-from, block
 * (NAME,ADDR,LEN: a nested BLOCK), or TYPE:NUMBER with TYPE one of u8,
 * u32, u64, str, hex (e.g. u32:9=1).
 *
 * The requests ("--" between them) are sent one after the other on one
 * socket, and nl_raw exits after the last answer: a session NEW_SESSION
 * made is gone with it (it belongs to the socket).  "session-id=@" (and
 * "resume-from=@") is
 * the SESSION_ID of the last reply that had one (a session this socket
 * made, and so may drive).  mem-fd is a descriptor of nl_raw's own, e.g.
 * "mem-fd=3 3<>/proc/PID/mem".
 *
 * Prints one line per request:
 *   ok REPLIES                                  the request succeeded
 *   error ERRNO (TEXT) extack "MSG" [offset N] [missing ATTR]
 * and exits 0 when the kernel answered, 1 when it could not be asked,
 * 2 for a bad command line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include <linux/rdmamig.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static const struct {
	const char *name;
	int cmd;
} cmds[] = {
	{ "get-version", RDMAMIG_CMD_GET_VERSION },
	{ "get-dev", RDMAMIG_CMD_GET_DEV },
	{ "get-session", RDMAMIG_CMD_GET_SESSION },
	{ "set-session", RDMAMIG_CMD_SET_SESSION },
	{ "cancel-session", RDMAMIG_CMD_CANCEL_SESSION },
	{ "get-defaults", RDMAMIG_CMD_GET_DEFAULTS },
	{ "set-defaults", RDMAMIG_CMD_SET_DEFAULTS },
	{ "new-session", RDMAMIG_CMD_NEW_SESSION },
	{ "listen", RDMAMIG_CMD_LISTEN },
	{ "accept", RDMAMIG_CMD_ACCEPT },
	{ "connect", RDMAMIG_CMD_CONNECT },
	{ "round", RDMAMIG_CMD_ROUND },
	{ "end-round", RDMAMIG_CMD_END_ROUND },
	{ "complete", RDMAMIG_CMD_COMPLETE },
	{ "postcopy", RDMAMIG_CMD_POSTCOPY },
	{ "fetch", RDMAMIG_CMD_FETCH },
	{ "owed", RDMAMIG_CMD_OWED },
	{ "postcopy-resume", RDMAMIG_CMD_POSTCOPY_RESUME },
};

enum type { T_U8, T_U32, T_U64, T_STR, T_HEX, T_FILE, T_BLOCK };

static const struct {
	const char *name;
	int attr;
	enum type type;
} attrs[] = {
	{ "session-id", RDMAMIG_ATTR_SESSION_ID, T_U32 },
	{ "caps", RDMAMIG_ATTR_CAPS, T_U64 },
	{ "max-bandwidth", RDMAMIG_ATTR_MAX_BANDWIDTH, T_U64 },
	{ "max-registered", RDMAMIG_ATTR_MAX_REGISTERED, T_U64 },
	{ "keepalive-ms", RDMAMIG_ATTR_KEEPALIVE_MS, T_U32 },
	{ "downtime-limit-ms", RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, T_U32 },
	{ "max-rounds", RDMAMIG_ATTR_MAX_ROUNDS, T_U32 },
	{ "auth", RDMAMIG_ATTR_AUTH, T_U32 },
	{ "target-pid", RDMAMIG_ATTR_TARGET_PID, T_U32 },
	{ "mem-fd", RDMAMIG_ATTR_MEM_FD, T_U32 },
	{ "role", RDMAMIG_ATTR_ROLE, T_U32 },
	{ "port", RDMAMIG_ATTR_PORT, T_U32 },
	{ "host", RDMAMIG_ATTR_HOST, T_STR },
	{ "timeout-ms", RDMAMIG_ATTR_TIMEOUT_MS, T_U32 },
	{ "secret", RDMAMIG_ATTR_SECRET, T_HEX },
	{ "secret-file", RDMAMIG_ATTR_SECRET, T_FILE },
	{ "block-index", RDMAMIG_ATTR_BLOCK_INDEX, T_U32 },
	{ "first-page", RDMAMIG_ATTR_FIRST_PAGE, T_U64 },
	{ "bitmap", RDMAMIG_ATTR_BITMAP, T_HEX },
	{ "flags", RDMAMIG_ATTR_FLAGS, T_U32 },
	{ "addr", RDMAMIG_ATTR_ADDR, T_U64 },
	{ "buf", RDMAMIG_ATTR_BUF, T_U64 },
	{ "buf-len", RDMAMIG_ATTR_BUF_LEN, T_U64 },
	{ "runs", RDMAMIG_ATTR_RUNS, T_U64 },
	{ "nruns", RDMAMIG_ATTR_NRUNS, T_U32 },
	{ "npages", RDMAMIG_ATTR_NPAGES, T_U64 },
	{ "resume-from", RDMAMIG_ATTR_RESUME_FROM, T_U32 },
	{ "block", RDMAMIG_ATTR_BLOCK, T_BLOCK },
};

/* The SESSION_ID of the last reply that had one: "session-id=@". */
static long last_session = -1;

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct result {
	bool done;
	int error;
	int replies;
	char extack[256];
	long offset;		/* of the bad attribute in the request, or -1 */
	long missing;		/* missing attribute type, or -1 */
};

static void usage(void)
{
	fprintf(stderr, "usage: nl_raw [--dump] CMD [ATTR=VALUE]...\n");
	exit(2);
}

static int lookup_cmd(const char *s)
{
	char *end;
	size_t i;
	long v;

	for (i = 0; i < N(cmds); i++)
		if (!strcmp(cmds[i].name, s))
			return cmds[i].cmd;
	v = strtol(s, &end, 0);
	if (*end || v < 0 || v > 255)
		usage();
	return (int)v;
}

static int put_attr(struct nl_msg *msg, const char *arg)
{
	const char *eq = strchr(arg, '='), *val;
	enum type type = T_U32;
	unsigned long long v;
	char name[64], *end;
	int attr = -1;
	size_t i;

	if (!eq || (size_t)(eq - arg) >= sizeof(name))
		usage();
	memcpy(name, arg, eq - arg);
	name[eq - arg] = '\0';
	val = eq + 1;
	for (i = 0; i < N(attrs); i++)
		if (!strcmp(attrs[i].name, name)) {
			attr = attrs[i].attr;
			type = attrs[i].type;
		}
	if (attr < 0) {
		char *colon = strchr(name, ':');

		if (!colon)
			usage();
		*colon = '\0';
		if (!strcmp(name, "u8"))
			type = T_U8;
		else if (!strcmp(name, "u32"))
			type = T_U32;
		else if (!strcmp(name, "u64"))
			type = T_U64;
		else if (!strcmp(name, "str"))
			type = T_STR;
		else if (!strcmp(name, "hex"))
			type = T_HEX;
		else
			usage();
		attr = (int)strtol(colon + 1, &end, 0);
		if (*end || attr <= 0 || attr > 0x3fff)
			usage();
	}
	if (type == T_STR)
		return nla_put_string(msg, attr, val);
	if (type == T_BLOCK) {
		char bname[64];
		unsigned long long baddr, blen;
		struct nlattr *nest;

		if (sscanf(val, "%63[^,],%lli,%lli", bname, &baddr, &blen) != 3)
			usage();
		nest = nla_nest_start(msg, attr);
		if (!nest || nla_put_string(msg, RDMAMIG_ATTR_BLOCK_NAME, bname) ||
		    nla_put_u64(msg, RDMAMIG_ATTR_BLOCK_ADDR, baddr) ||
		    nla_put_u64(msg, RDMAMIG_ATTR_BLOCK_LEN, blen))
			return -1;
		return nla_nest_end(msg, nest);
	}
	if ((attr == RDMAMIG_ATTR_SESSION_ID || attr == RDMAMIG_ATTR_RESUME_FROM) &&
	    !strcmp(val, "@")) {
		if (last_session < 0) {
			fprintf(stderr, "nl_raw: session-id=@ before a reply with a session\n");
			exit(2);
		}
		return nla_put_u32(msg, attr, (uint32_t)last_session);
	}
	if (type == T_HEX || type == T_FILE) {
		unsigned char buf[4096];
		size_t n = 0;

		if (type == T_FILE) {
			FILE *f = fopen(val, "rb");

			if (!f) {
				fprintf(stderr, "nl_raw: %s: %s\n", val, strerror(errno));
				exit(1);
			}
			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
		} else {
			/* Any even number of hex digits, none for an empty one. */
			for (; val[0] && val[1] && n < sizeof(buf); val += 2) {
				unsigned int byte;

				if (!isxdigit((unsigned char)val[0]) ||
				    !isxdigit((unsigned char)val[1]) ||
				    sscanf(val, "%2x", &byte) != 1)
					usage();
				buf[n++] = byte;
			}
			if (*val)
				usage();
		}
		return nla_put(msg, attr, n, buf);
	}
	v = strtoull(val, &end, 0);
	if (*end || !*val)
		usage();
	switch (type) {
	case T_U8:
		return nla_put_u8(msg, attr, (uint8_t)v);
	case T_U32:
		return nla_put_u32(msg, attr, (uint32_t)v);
	default:
		return nla_put_u64(msg, attr, v);
	}
}

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[RDMAMIG_ATTR_MAX + 1];
	struct result *r = arg;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, RDMAMIG_ATTR_MAX, NULL) == 0 &&
	    tb[RDMAMIG_ATTR_SESSION_ID])
		last_session = nla_get_u32(tb[RDMAMIG_ATTR_SESSION_ID]);
	r->replies++;
	return NL_OK;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct result *r = arg;
	int err;

	memcpy(&err, nlmsg_data(nlmsg_hdr(msg)), sizeof(err));
	if (err < 0)
		r->error = err;
	r->done = true;
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	struct result *r = arg;

	(void)msg;
	r->done = true;
	return NL_STOP;
}

/* The extended ACK after the error (NETLINK_CAP_ACK: no echo between). */
static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	static struct nla_policy policy[NLMSGERR_ATTR_MAX + 1] = {
		[NLMSGERR_ATTR_MSG] = { .type = NLA_STRING },
		[NLMSGERR_ATTR_OFFS] = { .type = NLA_U32 },
		[NLMSGERR_ATTR_MISS_TYPE] = { .type = NLA_U32 },
	};
	struct nlmsghdr *nlh = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	struct result *r = arg;
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*e));

	(void)nla;
	r->error = e->error;
	r->done = true;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || nlh->nlmsg_len <= off)
		return NL_STOP;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)nlh + off),
		      nlh->nlmsg_len - off, policy) < 0)
		return NL_STOP;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(r->extack, sizeof(r->extack), "%s",
			 nla_get_string(tb[NLMSGERR_ATTR_MSG]));
	if (tb[NLMSGERR_ATTR_OFFS])
		r->offset = nla_get_u32(tb[NLMSGERR_ATTR_OFFS]);
	if (tb[NLMSGERR_ATTR_MISS_TYPE])
		r->missing = nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]);
	return NL_STOP;
}

/* One request, argv[0] its command; prints its line.  0, or 1 if not asked. */
static int request(struct nl_sock *sk, int family, int flags, int argc, char **argv)
{
	struct result r = { .offset = -1, .missing = -1 };
	struct nl_msg *msg;
	struct nl_cb *cb;
	int i, err;

	msg = nlmsg_alloc();
	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, flags,
				 lookup_cmd(argv[0]), RDMAMIG_GENL_VERSION)) {
		fprintf(stderr, "nl_raw: out of memory\n");
		return 1;
	}
	for (i = 1; i < argc; i++)
		if (put_attr(msg, argv[i]) < 0) {
			fprintf(stderr, "nl_raw: message too long\n");
			return 1;
		}

	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb ||
	    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &r) ||
	    nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &r) ||
	    nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &r) ||
	    nl_cb_err(cb, NL_CB_CUSTOM, on_error, &r)) {
		fprintf(stderr, "nl_raw: out of memory\n");
		return 1;
	}
	err = nl_send_auto(sk, msg);
	if (err < 0) {
		fprintf(stderr, "nl_raw: send: %s\n", nl_geterror(err));
		return 1;
	}
	while (!r.done) {
		err = nl_recvmsgs(sk, cb);
		if (err < 0 && !r.done) {
			fprintf(stderr, "nl_raw: receive: %s\n", nl_geterror(err));
			return 1;
		}
	}

	if (!r.error) {
		printf("ok %d\n", r.replies);
	} else {
		printf("error %d (%s) extack \"%s\"", r.error, strerror(-r.error),
		       r.extack);
		if (r.offset >= 0)
			printf(" offset %ld", r.offset);
		if (r.missing >= 0)
			printf(" missing %ld", r.missing);
		printf("\n");
	}
	fflush(stdout);
	nl_cb_put(cb);
	nlmsg_free(msg);
	return 0;
}

int main(int argc, char **argv)
{
	struct nl_sock *sk;
	int one = 1, family, flags = NLM_F_ACK, i = 1, end;

	if (i < argc && !strcmp(argv[i], "--dump")) {
		flags = NLM_F_DUMP;
		i++;
	}
	if (i >= argc)
		usage();

	sk = nl_socket_alloc();
	if (!sk || genl_connect(sk) < 0) {
		fprintf(stderr, "nl_raw: cannot open a generic netlink socket\n");
		return 1;
	}
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one,
		   sizeof(one));
	family = genl_ctrl_resolve(sk, RDMAMIG_GENL_NAME);
	if (family < 0) {
		fprintf(stderr, "nl_raw: no %s family: %s\n", RDMAMIG_GENL_NAME,
			nl_geterror(family));
		return 1;
	}
	nl_socket_disable_auto_ack(sk);

	for (; i < argc; i = end + 1) {
		for (end = i; end < argc && strcmp(argv[end], "--"); end++)
			;
		if (end == i)
			usage();
		if (request(sk, family, flags, end - i, argv + i))
			return 1;
		/* Only the first request may be a dump. */
		flags = NLM_F_ACK;
	}
	nl_socket_free(sk);
	return 0;
}
