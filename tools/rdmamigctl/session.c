// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl session: the migration sessions of the rdmamig module, those
 * of VMMs (/dev/rdmamig) and those created over netlink alike: list them,
 * show one, tune a running one, cancel one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rdmamig.h>

#include "attrs.h"
#include "print.h"
#include "rdmamigctl.h"

/* The whole session as JSON members; text only for "show ID". */
static int session_print_detail(struct nlattr **tb)
{
	struct nlattr *ptb[RDMAMIG_ATTR_MAX + 1];
	struct nlattr *a;
	char buf[ATTR_BUF_LEN];

	pr_u32("owner_pid", "    owner pid %u", tb[RDMAMIG_ATTR_OWNER_PID] ?
	       nla_get_u32(tb[RDMAMIG_ATTR_OWNER_PID]) : 0);
	if ((a = tb[RDMAMIG_ATTR_TARGET_PID]))
		pr_u32("target_pid", " target pid %u", nla_get_u32(a));
	pr_text("\n");
	if ((a = tb[RDMAMIG_ATTR_LOCAL_ADDR]))
		pr_string("local_addr", NULL, nla_get_string(a));
	if ((a = tb[RDMAMIG_ATTR_PEER_ADDR]))
		pr_string("peer_addr", NULL, nla_get_string(a));
	pr_text("    local %s peer %s\n",
		tb[RDMAMIG_ATTR_LOCAL_ADDR] &&
		*nla_get_string(tb[RDMAMIG_ATTR_LOCAL_ADDR]) ?
		nla_get_string(tb[RDMAMIG_ATTR_LOCAL_ADDR]) : "-",
		tb[RDMAMIG_ATTR_PEER_ADDR] &&
		*nla_get_string(tb[RDMAMIG_ATTR_PEER_ADDR]) ?
		nla_get_string(tb[RDMAMIG_ATTR_PEER_ADDR]) : "-");

	pr_text("   ");
	if ((a = tb[RDMAMIG_ATTR_BLOCKS]))
		pr_u32("blocks", " blocks %u", nla_get_u32(a));
	if ((a = tb[RDMAMIG_ATTR_BLOCK_BYTES])) {
		pr_u64("block_bytes", NULL, nla_get_u64(a));
		pr_text(" (%s)", attr_fmt_size(buf, sizeof(buf), nla_get_u64(a)));
	}
	if ((a = tb[RDMAMIG_ATTR_CAPS]))
		attr_print_caps("caps", nla_get_u64(a));
	pr_text("\n");

	if ((a = tb[RDMAMIG_ATTR_PARAMS])) {
		if (attr_nest_params(ptb, a))
			return -1;
		pr_open_object("params");
		pr_text("    params:");
		if (ptb[RDMAMIG_ATTR_CAPS])
			attr_print_caps("caps", nla_get_u64(ptb[RDMAMIG_ATTR_CAPS]));
		attr_print_params(ptb, " ", " ");
		pr_text("\n");
		pr_close_object();
	}
	if ((a = tb[RDMAMIG_ATTR_STATS])) {
		pr_text("    stats:");
		if (attr_print_stats(a, "\n          ", true))
			return -1;
		pr_text("\n");
	}
	return 0;
}

/* An optional error and reason: text after what is on the line. */
static void session_print_failure(struct nlattr **tb)
{
	struct nlattr *a;

	if ((a = tb[RDMAMIG_ATTR_ERROR]))
		attr_print_error((int32_t)nla_get_u32(a));
	if ((a = tb[RDMAMIG_ATTR_REASON])) {
		pr_string("reason", NULL, nla_get_string(a));
		if (*nla_get_string(a))
			pr_text(" reason \"%s\"", nla_get_string(a));
	}
}

struct session_show {
	bool detail;	/* "show ID": every attribute, on several lines */
	bool got;
};

/* One session: a line of the list, or all of it. */
static int session_print(struct nlattr **tb, void *arg)
{
	struct session_show *ss = arg;
	struct nlattr *a, *stb[RDMAMIG_STAT_MAX + 1];
	char bytes[ATTR_BUF_LEN], tput[ATTR_BUF_LEN];
	uint64_t rounds = 0, nbytes = 0, rate = 0;

	if (!tb[RDMAMIG_ATTR_SESSION_ID] || !tb[RDMAMIG_ATTR_ROLE] ||
	    !tb[RDMAMIG_ATTR_STATE]) {
		rm_err("cannot show the sessions: incomplete reply from the kernel");
		return RM_EXIT_ERR;
	}
	if (ss->detail && ss->got)
		return RM_EXIT_OK;	/* one reply is all we asked for */
	ss->got = true;

	pr_open_object(NULL);
	pr_u32("id", ss->detail ? "session %u:" : "%u:",
	       nla_get_u32(tb[RDMAMIG_ATTR_SESSION_ID]));
	pr_string("role", " %s", attr_role_name(nla_get_u32(tb[RDMAMIG_ATTR_ROLE])));
	pr_string("state", " %s",
		  attr_state_name(nla_get_u32(tb[RDMAMIG_ATTR_STATE])));
	if (ss->detail) {
		session_print_failure(tb);
		pr_text("\n");
		if (session_print_detail(tb)) {
			rm_err("cannot show the session: malformed reply from the kernel");
			return RM_EXIT_ERR;
		}
		pr_close_object();
		return RM_EXIT_OK;
	}

	/* The list: the same JSON, a digest in text. */
	a = tb[RDMAMIG_ATTR_STATS];
	if (a && !attr_nest_stats(stb, a)) {
		if (stb[RDMAMIG_STAT_ROUNDS])
			rounds = nla_get_u64(stb[RDMAMIG_STAT_ROUNDS]);
		if (stb[RDMAMIG_STAT_BYTES])
			nbytes = nla_get_u64(stb[RDMAMIG_STAT_BYTES]);
		if (stb[RDMAMIG_STAT_THROUGHPUT])
			rate = nla_get_u64(stb[RDMAMIG_STAT_THROUGHPUT]);
	}
	if ((a = tb[RDMAMIG_ATTR_TARGET_PID]))
		pr_text(" pid %u", nla_get_u32(a));
	pr_text(" %s -> %s",
		tb[RDMAMIG_ATTR_LOCAL_ADDR] &&
		*nla_get_string(tb[RDMAMIG_ATTR_LOCAL_ADDR]) ?
		nla_get_string(tb[RDMAMIG_ATTR_LOCAL_ADDR]) : "-",
		tb[RDMAMIG_ATTR_PEER_ADDR] &&
		*nla_get_string(tb[RDMAMIG_ATTR_PEER_ADDR]) ?
		nla_get_string(tb[RDMAMIG_ATTR_PEER_ADDR]) : "-");
	pr_text(" rounds %llu bytes %s throughput %s",
		(unsigned long long)rounds,
		attr_fmt_size(bytes, sizeof(bytes), nbytes),
		attr_fmt_mbps(tput, sizeof(tput), rate));
	if (pr_json()) {
		session_print_failure(tb);
		if (session_print_detail(tb)) {
			rm_err("cannot list the sessions: malformed reply from the kernel");
			return RM_EXIT_ERR;
		}
	} else if (tb[RDMAMIG_ATTR_REASON] &&
		   *nla_get_string(tb[RDMAMIG_ATTR_REASON])) {
		pr_text(" reason \"%s\"", nla_get_string(tb[RDMAMIG_ATTR_REASON]));
	}
	pr_text("\n");
	pr_close_object();
	return RM_EXIT_OK;
}

/* ID on the command line; a usage error if it is not one. */
static int session_id(struct rm *rm, const char *verb, uint32_t *id)
{
	const char *word = rm_arg(rm);

	if (!word)
		return rm_usage_err("session", "%s: no session ID given", verb);
	if (attr_parse_u32(word, id))
		return rm_usage_err("session", "invalid session ID '%s'", word);
	rm_shift(rm);
	return RM_EXIT_OK;
}

/* A request about session id, with room for more attributes. */
static struct nl_msg *session_msg(struct rm *rm, uint8_t cmd, uint32_t id)
{
	struct nl_msg *msg = rm_nl_msg(&rm->nl, cmd, NLM_F_ACK);

	if (msg && nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, id) < 0) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return NULL;
	}
	return msg;
}

static int session_list(struct rm *rm)
{
	struct session_show ss = { 0 };
	int ret;

	ret = rm_no_more_args(rm, "session");
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	pr_open_array(NULL);
	ret = rm_nl_dump(&rm->nl, RDMAMIG_CMD_GET_SESSION,
			 "cannot list the sessions", session_print, &ss);
	if (ret)
		return ret;
	pr_close_array();
	return RM_EXIT_OK;
}

static int session_show(struct rm *rm)
{
	struct session_show ss = { .detail = true };
	struct nl_msg *msg;
	char what[64];
	uint32_t id;
	int ret;

	if (!rm_arg(rm))
		return session_list(rm);
	ret = session_id(rm, "show", &id);
	if (ret)
		return ret;
	ret = rm_no_more_args(rm, "session");
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	msg = session_msg(rm, RDMAMIG_CMD_GET_SESSION, id);
	if (!msg)
		return RM_EXIT_ERR;
	snprintf(what, sizeof(what), "cannot show session %u", id);
	ret = rm_nl_send(&rm->nl, msg, what, session_print, &ss);
	if (ret)
		return ret;
	if (!ss.got) {
		rm_err("%s: no reply from the kernel", what);
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int session_set(struct rm *rm)
{
	struct attr_set set = { 0 };
	struct nl_msg *msg;
	char what[64];
	uint32_t id;
	int ret;

	ret = session_id(rm, "set", &id);
	if (ret)
		return ret;
	ret = attr_read_params(rm, "session", &set);
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	msg = session_msg(rm, RDMAMIG_CMD_SET_SESSION, id);
	if (!msg)
		return RM_EXIT_ERR;
	ret = attr_put(msg, &set, 0);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	snprintf(what, sizeof(what), "cannot set session %u", id);
	return rm_nl_send(&rm->nl, msg, what, NULL, NULL);
}

static int session_cancel(struct rm *rm)
{
	struct nl_msg *msg;
	char what[64];
	uint32_t id;
	int ret;

	ret = session_id(rm, "cancel", &id);
	if (ret)
		return ret;
	ret = rm_no_more_args(rm, "session");
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	msg = session_msg(rm, RDMAMIG_CMD_CANCEL_SESSION, id);
	if (!msg)
		return RM_EXIT_ERR;
	snprintf(what, sizeof(what), "cannot cancel session %u", id);
	return rm_nl_send(&rm->nl, msg, what, NULL, NULL);
}

static int session_help(struct rm *rm)
{
	(void)rm;
	fputs("Usage: rdmamigctl [-j | -p] session [list]\n"
	      "       rdmamigctl [-j | -p] session show [ID]\n"
	      "       rdmamigctl session set ID PARAM VALUE [PARAM VALUE]...\n"
	      "       rdmamigctl session cancel ID\n"
	      "       rdmamigctl session help\n"
	      "\n"
	      "The migration sessions of the rdmamig module, one per line:\n"
	      "    ID: ROLE STATE pid PID LOCAL -> PEER rounds N bytes SIZE\n"
	      "        throughput RATE [reason \"WHY\"]\n"
	      "show ID shows every detail of one: owner and target process,\n"
	      "addresses, RAM blocks, negotiated capabilities, error, parameters\n"
	      "and statistics.\n"
	      "\n"
	      "set changes parameters of a running session (needs CAP_NET_ADMIN):\n"
	      "    max-bandwidth RATE    bytes/s on the data path: N, Nk, Nm, Ng\n"
	      "                          (bytes, powers of 1000) or Nkbit, Nmbit,\n"
	      "                          Ngbit (bits); 0 or unlimited: no limit\n"
	      "    downtime-limit MS     converge below this downtime (ms)\n"
	      "    max-rounds N          then stop iterating anyway\n"
	      "The other parameters (see 'rdmamigctl param help') are fixed once\n"
	      "a session started; the kernel refuses them.\n"
	      "\n"
	      "cancel cancels a session, whoever drives it (needs CAP_NET_ADMIN).\n"
	      "\n"
	      "ROLE: source, dest.  STATE: none, setup, connected, active,\n"
	      "postcopy, completed, failed, cancelled.\n"
	      "\n"
	      "JSON: list: an array of the objects show prints; show:\n"
	      "  {\"id\", \"role\", \"state\", \"error\", \"error_text\", \"reason\",\n"
	      "   \"owner_pid\", \"target_pid\", \"local_addr\", \"peer_addr\",\n"
	      "   \"blocks\", \"block_bytes\", \"caps\": [NAME...],\n"
	      "   \"params\": {\"caps\", \"max_bandwidth\", \"max_registered\",\n"
	      "              \"keepalive_ms\", \"downtime_limit_ms\", \"max_rounds\"},\n"
	      "   \"stats\": {\"bytes\", \"pages\", \"zero_pages\", \"rounds\",\n"
	      "             \"throughput\", \"chunks_registered\",\n"
	      "             \"chunks_unregistered\", \"registered_bytes\",\n"
	      "             \"device_state_bytes\", \"zero_skipped\", \"setup_ms\",\n"
	      "             \"total_ms\", \"downtime_ms\", \"channels\", \"scan_ms\",\n"
	      "             \"keys_wait_ms\", \"writes_wait_ms\", \"register_ms\",\n"
	      "             \"zero_ms\", \"postcopy_owed\", \"postcopy_ms\",\n"
	      "             \"postcopy_faults\", \"postcopy_fault_pages\",\n"
	      "             \"postcopy_sweep_pages\", \"postcopy_fetched_twice\",\n"
	      "             \"fault_us_p50\", \"fault_us_p99\", \"fault_us_max\",\n"
	      "             \"postcopy_downtime_us\"}}\n"
	      "  sizes in bytes, rates in bytes/s, times in ms, error a negative\n"
	      "  errno (0: none).\n",
	      stdout);
	return RM_EXIT_OK;
}

static const struct rm_cmd session_cmds[] = {
	{ .name = "list",	.fn = session_list },
	{ .name = "show",	.fn = session_show },
	{ .name = "set",	.fn = session_set },
	{ .name = "cancel",	.fn = session_cancel },
	{ .name = "help",	.fn = session_help },
	{ .name = NULL },
};

int cmd_session(struct rm *rm)
{
	return rm_dispatch(rm, "session", session_cmds);
}
