// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl incoming: receive a process's memory into a stopped twin
 * process (the destination side of 'rdmamigctl migrate').
 *
 *   NEW_SESSION (role dest) over the twin's blocks, LISTEN, ACCEPT (the
 *   source connected and its blocks matched ours by name and length)
 *   the kernel places the rounds; we follow them with GET_SESSION every
 *   100 ms until the session completed or failed
 *   then the checksum, if asked, and SIGCONT: the twin runs on with the
 *   source's memory
 *
 * A failed migration leaves the twin stopped: its memory is not whole.
 *
 * --postcopy (postcopy.c): the source may switch to post-copy; then the
 * twin is continued at the switch, its missing pages served as it
 * touches them and swept in the background, and the command returns
 * once every page is there.  A failure after the switch kills the twin,
 * unless --resume-wait: then a new session takes the failed one's place
 * (POSTCOPY_RESUME before LISTEN, on the same port) and the threads go on
 * with it (inc_resume()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "postcopy.h"
#include "print.h"
#include "procmem.h"
#include "rdmamigctl.h"

#define INC_POLL_US	100000
#define INC_RETRY	(-1)	/* inc_resume_try(): not an exit status */

struct inc {
	struct rm *rm;
	const char *object;	/* "incoming" or "standby" */
	bool standby;		/* rdmamigctl standby: checkpoints, failover */
	uint64_t opts_seen;	/* bit OPT_x - OPT_PID: given */
	pid_t pid;
	char host[RDMAMIG_HOST_MAX];
	uint16_t port;
	struct pm_blocks bl;
	bool checksum;
	bool no_cont;
	bool postcopy;
	unsigned int resume_wait_s;	/* --resume-wait */
	struct pm_params params;
	unsigned int timeout_s;
	const char *port_file;

	int mem;
	uint32_t id;
	bool held;		/* the twin is ours to leave stopped */
	bool switched;		/* the session went into post-copy */
	struct pc_dest pc;
	/* standby */
	bool failover;		/* the primary was lost: the twin takes over */
	uint64_t epoch;		/* the last epoch committed */
	uint64_t t_commit_us;	/* when it was seen */
	uint64_t t_lost_us;	/* when the session was seen failed */
	uint64_t t_cont_us;	/* when the twin was continued */
	uint64_t lost_at_us;	/* t_lost_us, CLOCK_REALTIME: to compare with */
	uint64_t sum_us;	/* --checksum's time, before the twin ran */
};

static int incoming_help(void)
{
	fputs("Usage: rdmamigctl [-j | -p] incoming --pid PID [OPTIONS] rdma:HOST:PORT\n"
	      "       rdmamigctl incoming help\n"
	      "\n"
	      "Receive the memory of a process that 'rdmamigctl migrate' sends into\n"
	      "PID, a stopped twin with the same memory layout, listening on the\n"
	      "address HOST and on PORT (0: any, printed).  Once the migration\n"
	      "completed, PID is continued (SIGCONT) and runs on with the source's\n"
	      "memory; if it fails, PID is left stopped.\n"
	      "\n"
	      "Options:\n"
	      "  --pid PID          the stopped twin (needs ptrace rights)\n"
	      "  --region ADDR+LEN  receive into this range (repeatable); default:\n"
	      "                     every private writable anonymous mapping of 1 MiB\n"
	      "                     or more; the source's blocks must match by name\n"
	      "                     (anon@0xADDR) and length\n"
	      "  --checksum         print the XXH64 of the memory before continuing\n"
	      "  --timeout SEC      wait this long for the source to connect (120)\n"
	      "  --port-file FILE   write the port listened on to FILE\n"
	      "  --no-cont          leave PID stopped after the migration\n"
	      "  --pin-all          allow the source to have all of PID's memory\n"
	      "                     registered up front (migrate --pin-all)\n"
	      "  --pull             allow the source to have each round read from it\n"
	      "                     with RDMA READ (migrate --pull), PID's pages\n"
	      "                     pinned only while they are read\n"
	      "  --postcopy         allow the source to end with post-copy (migrate\n"
	      "                     --postcopy): PID is continued at the switch,\n"
	      "                     before its memory is all here, and the pages it\n"
	      "                     lacks are read from the source (RDMA READ) as it\n"
	      "                     touches them, the rest in the background.  PID is\n"
	      "                     seized with ptrace and made to create a\n"
	      "                     userfaultfd(2) before listening, and to drop its\n"
	      "                     owed pages at the switch (madvise MADV_DONTNEED);\n"
	      "                     that userfaultfd() runs with PID's credentials:\n"
	      "                     root, CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1\n"
	      "                     let it serve every fault, otherwise it serves the\n"
	      "                     faults of user mode only, and a system call of\n"
	      "                     PID's into a missing page fails with EFAULT.  The\n"
	      "                     command returns once every page is here.  If\n"
	      "                     post-copy fails after the switch, PID is killed\n"
	      "                     (unless --resume-wait resumes it):\n"
	      "                     its memory can no longer be completed.  With\n"
	      "                     --checksum, a copy of the memory at the switch is\n"
	      "                     kept (as much memory as the blocks; what is not\n"
	      "                     owed is copied before PID continues); with\n"
	      "                     --no-cont, PID stays stopped and only the\n"
	      "                     background sweep fetches\n"
	      "  --resume-wait SEC  with --postcopy: if the link fails after the\n"
	      "                     switch, PID's faults wait and a new session\n"
	      "                     takes the failed one's place, listening on the\n"
	      "                     same port for up to SEC s for the source (migrate\n"
	      "                     --resume-wait) to reconnect; only a cancel or SEC\n"
	      "                     without the source gives up (and kills PID)\n"
	      "  --keepalive MS     the session's keepalive interval: 0 (off) or 100\n"
	      "                     to 60000 ms (default: the module's)\n"
	      "  --secret-file FILE the secret both ends share: FILE's bytes, 16 to\n"
	      "                     64 of them (head -c 32 /dev/urandom > FILE);\n"
	      "                     default: the file $RDMAMIG_SECRET_FILE names.\n"
	      "                     The source must prove it (HMAC-SHA256) before\n"
	      "                     any memory is exposed; required unless --no-auth\n"
	      "  --no-auth          accept a source without authentication (the\n"
	      "                     source must say --no-auth too)\n"
	      "  --channels N       grant the source at most N queue pairs (1 to 8;\n"
	      "                     default: the module's default)\n"
	      "\n"
	      "JSON: one object: pid, host, port, peer, state, blocks [{name, addr,\n"
	      "length}], rounds, pages, zero_pages, bytes, setup_ms, total_ms,\n"
	      "checksum, after (\"continued\", \"stopped\"); after a switch to\n"
	      "post-copy also postcopy (true), postcopy_owed, postcopy_faults,\n"
	      "postcopy_fault_pages, postcopy_sweep_pages, postcopy_fetched_twice,\n"
	      "postcopy_ms (the module's counts), resumes, discarded (pages dropped at the\n"
	      "switch), fault_msgs, zero_filled, placed_twice, unplaced, serve_ms,\n"
	      "cont_us (from seeing the switch to continuing PID), discard_calls\n"
	      "(madvise calls), restored (pages not owed, put back after a\n"
	      "window of scattered owed pages was dropped whole).\n",
	      stdout);
	return RM_EXIT_OK;
}

static int standby_help(void)
{
	fputs("Usage: rdmamigctl [-j | -p] standby --pid PID [OPTIONS] rdma:HOST:PORT\n"
	      "       rdmamigctl standby help\n"
	      "\n"
	      "Keep PID, a stopped twin with the memory layout of a process that\n"
	      "'rdmamigctl protect' checkpoints, at the last checkpoint (epoch) of that\n"
	      "process, listening on the address HOST and on PORT (0: any, printed).\n"
	      "The module applies each epoch only once it has all of it, so PID's\n"
	      "memory is always exactly the process at some epoch.  Then:\n"
	      "  - the primary ends protection (protect --epochs, SIGINT, SIGTERM, or\n"
	      "    the process's exit): PID is left stopped, exit status 0;\n"
	      "  - the primary is lost (its host silent for two keepalive intervals,\n"
	      "    the connection reset, a device removed): failover.  The session is\n"
	      "    cancelled (which waits for an epoch being applied), and PID is\n"
	      "    continued (SIGCONT) from the last epoch committed, exit status 0.\n"
	      "    Lost before its first epoch, PID is left stopped (its memory is no\n"
	      "    checkpoint) and the exit status is 1.\n"
	      "rdmamig has no fencing: if only the link fails, both the process and\n"
	      "PID run.  Give the link a path of its own, and see\n"
	      "Documentation/rdmamigctl.rst.\n"
	      "\n"
	      "Options:\n"
	      "  --pid PID          the stopped twin (needs ptrace rights)\n"
	      "  --region ADDR+LEN  keep this range (repeatable); default: every\n"
	      "                     private writable anonymous mapping of 1 MiB or\n"
	      "                     more; the primary's blocks must match\n"
	      "  --checksum         at the end, print the XXH64 of the memory (before\n"
	      "                     PID is continued; protect --checksum prints\n"
	      "                     each epoch's)\n"
	      "  --timeout SEC      wait this long for the primary to connect (120)\n"
	      "  --port-file FILE   write the port listened on to FILE\n"
	      "  --no-cont          at failover, leave PID stopped\n"
	      "  --keepalive MS     0 (off) or 100 to 60000 ms (default: the module's)\n"
	      "  --secret-file FILE the secret both ends share (as for incoming)\n"
	      "  --no-auth          accept a primary without authentication\n"
	      "  --channels N       grant the primary at most N queue pairs (1 to 8)\n"
	      "\n"
	      "Prints a line per epoch committed.  JSON: one object: pid, host, port,\n"
	      "peer, blocks, state, mc_epochs (committed), mc_discarded (epochs cut\n"
	      "short), mc_pages, mc_bytes, failover, error, reason, checksum,\n"
	      "lost_ms (the failure seen, after the last commit seen), cont_ms (PID\n"
	      "continued, after the failure was seen, --checksum's time left out),\n"
	      "checksum_ms, lost_at_us (the failure seen: CLOCK_REALTIME), after.\n",
	      stdout);
	return RM_EXIT_OK;
}

enum {
	OPT_PID = 256, OPT_REGION, OPT_CHECKSUM, OPT_TIMEOUT, OPT_PORT_FILE,
	OPT_NO_CONT, OPT_PIN_ALL, OPT_SECRET_FILE, OPT_NO_AUTH, OPT_CHANNELS,
	OPT_PULL, OPT_POSTCOPY, OPT_RESUME_WAIT, OPT_KEEPALIVE,
};

#define OPT_BIT(o)	(1ULL << ((o) - OPT_PID))
/* Options of incoming only: standby receives no migration. */
#define INCOMING_ONLY	(OPT_BIT(OPT_PIN_ALL) | OPT_BIT(OPT_PULL) | \
			 OPT_BIT(OPT_POSTCOPY) | OPT_BIT(OPT_RESUME_WAIT))

static const struct option incoming_options[] = {
	{ "pid",	required_argument, NULL, OPT_PID },
	{ "region",	required_argument, NULL, OPT_REGION },
	{ "checksum",	no_argument,	   NULL, OPT_CHECKSUM },
	{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
	{ "port-file",	required_argument, NULL, OPT_PORT_FILE },
	{ "no-cont",	no_argument,	   NULL, OPT_NO_CONT },
	{ "pin-all",	no_argument,	   NULL, OPT_PIN_ALL },
	{ "pull",	no_argument,	   NULL, OPT_PULL },
	{ "postcopy",	no_argument,	   NULL, OPT_POSTCOPY },
	{ "resume-wait", required_argument, NULL, OPT_RESUME_WAIT },
	{ "keepalive",	required_argument, NULL, OPT_KEEPALIVE },
	{ "secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "no-auth",	no_argument,	   NULL, OPT_NO_AUTH },
	{ "channels",	required_argument, NULL, OPT_CHANNELS },
	{ "json",	no_argument,	   NULL, 'j' },
	{ "pretty",	no_argument,	   NULL, 'p' },
	{ "help",	no_argument,	   NULL, 'h' },
	{ NULL,		0,		   NULL, 0 },
};

static int inc_option(struct inc *in, int c, const char *arg)
{
	uint64_t v, addr, len;

	if (c >= OPT_PID)
		in->opts_seen |= OPT_BIT(c);
	switch (c) {
	case OPT_PID:
		if (!pm_parse_uint(arg, INT32_MAX, &v) || !v)
			return rm_usage_err(in->object, "bad pid '%s'", arg);
		in->pid = v;
		break;
	case OPT_REGION:
		if (!pm_parse_region(arg, &addr, &len))
			return rm_usage_err(in->object, "bad region '%s' (ADDR+LEN)", arg);
		return pm_add_region(&in->bl, in->object, addr, len);
	case OPT_CHECKSUM:
		in->checksum = true;
		break;
	case OPT_TIMEOUT:
		if (!pm_parse_uint(arg, 86400, &v) || !v)
			return rm_usage_err(in->object, "bad --timeout '%s'", arg);
		in->timeout_s = v;
		break;
	case OPT_PORT_FILE:
		in->port_file = arg;
		break;
	case OPT_NO_CONT:
		in->no_cont = true;
		break;
	case OPT_PIN_ALL:
		in->params.has_caps = true;
		in->params.caps |= RDMAMIG_CAP_PIN_ALL;
		break;
	case OPT_PULL:
		in->params.has_caps = true;
		in->params.caps |= RDMAMIG_CAP_PULL;
		break;
	case OPT_POSTCOPY:
		in->postcopy = true;
		in->params.has_caps = true;
		in->params.caps |= RDMAMIG_CAP_POSTCOPY;
		break;
	case OPT_KEEPALIVE:
		if (!pm_parse_uint(arg, 60000, &v))
			return rm_usage_err(in->object, "bad --keepalive '%s'", arg);
		in->params.has_keepalive = true;
		in->params.keepalive_ms = v;
		break;
	case OPT_RESUME_WAIT:
		if (!pm_parse_uint(arg, 86400, &v) || !v)
			return rm_usage_err(in->object, "bad --resume-wait '%s'", arg);
		in->resume_wait_s = v;
		break;
	case OPT_SECRET_FILE:
		in->params.secret_file = arg;
		break;
	case OPT_NO_AUTH:
		in->params.no_auth = true;
		break;
	case OPT_CHANNELS:
		if (!pm_parse_uint(arg, UINT32_MAX, &v))
			return rm_usage_err(in->object, "bad --channels '%s'", arg);
		in->params.has_channels = true;
		in->params.channels = v;
		break;
	}
	return RM_EXIT_OK;
}

/*
 * Options anywhere among the words (main() leaves them all to us, -j and
 * -p after in->object too), and the address.  -1: help was printed.
 */
static int inc_parse(struct inc *in, struct rm *rm)
{
	const char *w = rm_arg(rm);
	int c, ret;

	in->timeout_s = 120;
	if (w && *w && !strncmp("help", w, strlen(w)))
		return (in->standby ? standby_help() : incoming_help()) ?: -1;

	/* The object's word stands in for argv[0]. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(rm->argc + 1, rm->argv - 1, ":jph", incoming_options,
				NULL)) != -1) {
		switch (c) {
		case 'j':
			rm->json = true;
			break;
		case 'p':
			rm->json = rm->pretty = true;
			break;
		case 'h':
			return (in->standby ? standby_help() : incoming_help()) ?: -1;
		case ':':
		case '?':
			return pm_bad_option(in->object, c, rm->argv - 1);
		default:
			ret = inc_option(in, c, optarg);
			if (ret)
				return ret;
		}
	}
	/* getopt_long() moved the other words behind the options. */
	rm->argv += optind - 1;
	rm->argc -= optind - 1;
	if (!rm_arg(rm))
		return rm_usage_err(in->object, "no address given (rdma:HOST:PORT)");
	if (!pm_parse_target(rm_arg(rm), in->host, sizeof(in->host), &in->port))
		return rm_usage_err(in->object, "bad address '%s' (rdma:HOST:PORT)",
				    rm_arg(rm));
	rm_shift(rm);
	ret = rm_no_more_args(rm, in->object);
	if (ret)
		return ret;
	if (!in->pid)
		return rm_usage_err(in->object, "no --pid given");
	if (in->standby && (in->opts_seen & INCOMING_ONLY)) {
		const struct option *o;

		for (o = incoming_options; o->name; o++)
			if (o->val >= OPT_PID && (in->opts_seen & INCOMING_ONLY & OPT_BIT(o->val)))
				break;
		return rm_usage_err(in->object, "--%s is an option of rdmamigctl incoming "
				    "only", o->name ?: "?");
	}
	if (in->resume_wait_s && !in->postcopy)
		return rm_usage_err(in->object, "--resume-wait is for --postcopy");
	ret = pm_load_secret(&in->params, in->object);
	if (ret)
		return ret;
	pr_init(rm->json, rm->pretty);
	return RM_EXIT_OK;
}

/* ---- Session ------------------------------------------------------------ */

static int inc_port_reply(struct nlattr **tb, void *arg)
{
	uint16_t *port = arg;

	if (!tb[RDMAMIG_ATTR_PORT] || nla_len(tb[RDMAMIG_ATTR_PORT]) < 4) {
		rm_err("cannot listen: no port in the kernel's reply");
		return RM_EXIT_ERR;
	}
	*port = nla_get_u32(tb[RDMAMIG_ATTR_PORT]);
	return RM_EXIT_OK;
}

static int inc_listen(struct inc *in)
{
	struct nl_msg *msg;
	char what[128];

	msg = rm_nl_msg(&in->rm->nl, RDMAMIG_CMD_LISTEN, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, in->id) ||
	    nla_put_string(msg, RDMAMIG_ATTR_HOST, in->host) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_PORT, in->port))
		goto nomem;
	snprintf(what, sizeof(what), "cannot listen on %s port %u", in->host, in->port);
	return rm_nl_send(&in->rm->nl, msg, what, inc_port_reply, &in->port);
nomem:
	nlmsg_free(msg);
	rm_err("cannot build a netlink request: out of memory");
	return RM_EXIT_ERR;
}

static int inc_accept(struct inc *in, unsigned int timeout_ms)
{
	struct nl_msg *msg;

	msg = rm_nl_msg(&in->rm->nl, RDMAMIG_CMD_ACCEPT, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, in->id) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_TIMEOUT_MS, timeout_ms)) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	return rm_nl_send(&in->rm->nl, msg, "no source connected", NULL, NULL);
}

/* Written whole, then renamed: a poller never reads half of it. */
static int inc_write_port_file(const struct inc *in)
{
	char tmp[4096];
	FILE *f;

	if (!in->port_file)
		return RM_EXIT_OK;
	snprintf(tmp, sizeof(tmp), "%s.tmp", in->port_file);
	f = fopen(tmp, "we");
	if (!f || fprintf(f, "%u\n", in->port) < 0 || fclose(f) ||
	    rename(tmp, in->port_file)) {
		rm_err("incoming: cannot write the port file %s: %s", in->port_file,
		       strerror(errno));
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static bool inc_final(uint32_t state)
{
	return state == RDMAMIG_STATE_COMPLETED || state == RDMAMIG_STATE_FAILED ||
	       state == RDMAMIG_STATE_CANCELLED;
}

/* Where following stops: the end, or the switch to post-copy. */
static bool inc_stop_at(const struct inc *in, uint32_t state)
{
	return inc_final(state) || (in->postcopy && !in->switched &&
				    state == RDMAMIG_STATE_POSTCOPY);
}

/* Until the session completed or failed, a line per round placed. */
static int inc_follow(struct inc *in, struct pm_session *s)
{
	uint64_t rounds = 0, pages = 0, zero = 0;
	int ret;

	for (;;) {
		ret = pm_check_interrupted("incoming") ?:
		      pm_session_get(in->rm, in->id, s);
		if (ret)
			return ret;
		if (s->st[RDMAMIG_STAT_ROUNDS] > rounds) {
			uint64_t r = s->st[RDMAMIG_STAT_ROUNDS];

			if (r == rounds + 1)
				pr_text("round %" PRIu64 ":", r);
			else
				pr_text("rounds %" PRIu64 "-%" PRIu64 ":", rounds + 1, r);
			pr_text(" %" PRIu64 " pages placed, %" PRIu64 " zero pages\n",
				s->st[RDMAMIG_STAT_PAGES] - pages,
				s->st[RDMAMIG_STAT_ZERO_PAGES] - zero);
			if (!pr_json() && pr_commit())
				return RM_EXIT_ERR;
			rounds = r;
			pages = s->st[RDMAMIG_STAT_PAGES];
			zero = s->st[RDMAMIG_STAT_ZERO_PAGES];
		}
		if (inc_stop_at(in, s->state))
			break;
		/* The twin waits from the switch until we see it: look often. */
		usleep(in->postcopy ? INC_POLL_US / 10 : INC_POLL_US);
	}
	if (s->state != RDMAMIG_STATE_COMPLETED &&
	    !(s->state == RDMAMIG_STATE_POSTCOPY && !in->switched)) {
		rm_err("incoming: migration %s: %s", pm_state_name(s->state),
		       s->reason[0] ? s->reason : strerror(-s->error));
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

/*
 * --resume-wait: the session failed under the threads' FETCHes, none of
 * which is in flight now.  A cancel gives up; a failure is resumed by a
 * new session over the same blocks (POSTCOPY_RESUME before LISTEN, on
 * the same port), which the source reconnects to and switches again.
 */
/* POSTCOPY_RESUME: the new session in->id takes over @from. */
static int inc_resume_from(struct inc *in, uint32_t from)
{
	struct nl_msg *msg;

	msg = rm_nl_msg(&in->rm->nl, RDMAMIG_CMD_POSTCOPY_RESUME, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, in->id) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_RESUME_FROM, from)) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	return rm_nl_send(&in->rm->nl, msg, "cannot resume post-copy", NULL, NULL);
}

/*
 * One try: a new session takes over the last one, listens on the same
 * port and accepts the source, which switches it again.  INC_RETRY: this
 * try's session failed before the switch (a source's connection that gave up
 * halfway): the next try takes over from it, which still holds what it
 * took.
 */
static int inc_resume_try(struct inc *in, uint64_t deadline, struct pm_session *s)
{
	uint32_t from = in->id;
	uint64_t now;
	int ret;

	ret = pm_session_new(in->rm, in->pid, in->mem, RDMAMIG_ROLE_DEST, &in->bl,
			     &in->params, &in->id) ?:
	      inc_resume_from(in, from) ?: inc_listen(in);
	if (ret)
		return ret;
	now = pm_now_us();
	ret = inc_accept(in, now < deadline ? (deadline - now) / 1000 + 1 : 1);
	/* The source switches the new session again: then FETCH serves. */
	for (;;) {
		ret = pm_check_interrupted("incoming") ?:
		      pm_session_get(in->rm, in->id, s);
		if (ret)
			return ret;
		if (s->state == RDMAMIG_STATE_POSTCOPY || s->state == RDMAMIG_STATE_COMPLETED)
			return RM_EXIT_OK;
		if (s->state == RDMAMIG_STATE_FAILED && s->error != -ECANCELED &&
		    pm_now_us() < deadline)
			return INC_RETRY;
		if (inc_final(s->state) || pm_now_us() >= deadline) {
			rm_err("incoming: resumed migration %s: %s", pm_state_name(s->state),
			       s->reason[0] ? s->reason : "the source did not switch again");
			return RM_EXIT_ERR;
		}
		usleep(INC_POLL_US / 10);
	}
}

/*
 * --resume-wait: the session failed under the threads' FETCHes, none of
 * which is in flight now.  A cancel gives up; a failure is resumed by a
 * new session over the same blocks (POSTCOPY_RESUME before LISTEN, on
 * the same port), which the source reconnects to and switches again.
 */
static int inc_resume(struct inc *in)
{
	uint64_t deadline = pm_now_us() + (uint64_t)in->resume_wait_s * 1000000;
	struct pm_session s;
	int ret;

	ret = pm_session_get(in->rm, in->id, &s);
	if (ret)
		return ret;
	if (s.state != RDMAMIG_STATE_FAILED || s.error == -ECANCELED) {
		rm_err("incoming: post-copy %s: %s", pm_state_name(s.state),
		       s.reason[0] ? s.reason : strerror(-(s.error ?: in->pc.failed)));
		return RM_EXIT_ERR;
	}
	rm_err("incoming: post-copy failed (%s): waiting up to %u s for the source "
	       "to resume", s.reason[0] ? s.reason : strerror(-s.error), in->resume_wait_s);
	while ((ret = inc_resume_try(in, deadline, &s)) == INC_RETRY) {
		rm_err("incoming: resumed session %u failed (%s): listening again", in->id,
		       s.reason[0] ? s.reason : strerror(-s.error));
		usleep(INC_POLL_US);
	}
	if (ret)
		return ret;
	rm_err("incoming: post-copy resumed from %s", s.peer);
	pc_dest_resumed(&in->pc, in->id);
	return RM_EXIT_OK;
}

/* ---- Output ------------------------------------------------------------- */

static void inc_print_head(const struct inc *in)
{
	unsigned int i;
	char addr[32];

	pr_u32("pid", in->standby ? "standby pid %u" : "incoming pid %u", in->pid);
	pr_text(": %u block%s, %.1f MiB\n", in->bl.n, in->bl.n == 1 ? "" : "s",
		in->bl.bytes / 1048576.0);
	pr_open_array("blocks");
	for (i = 0; i < in->bl.n; i++) {
		pr_open_object(NULL);
		pr_string("name", "  %s", in->bl.b[i].name);
		snprintf(addr, sizeof(addr), "%#" PRIx64, in->bl.b[i].addr);
		pr_string("addr", NULL, addr);
		pr_u64("length", NULL, in->bl.b[i].len);
		pr_text(" %.1f MiB\n", in->bl.b[i].len / 1048576.0);
		pr_close_object();
	}
	pr_close_array();
}

static void inc_print_summary(const struct inc *in, const struct pm_session *s,
			      bool have_sum, uint64_t sum)
{
	const uint64_t *st = s->st;
	char buf[32];

	pr_string("state", "migration %s\n", pm_state_name(s->state));
	pr_u64("total_ms", NULL, st[RDMAMIG_STAT_TOTAL_MS]);
	pr_text("  total time   %.2f s\n", st[RDMAMIG_STAT_TOTAL_MS] / 1e3);
	pr_u64("setup_ms", NULL, st[RDMAMIG_STAT_SETUP_MS]);
	pr_u64("rounds", "  rounds       %llu\n", st[RDMAMIG_STAT_ROUNDS]);
	pr_u64("pages", "  pages        %llu", st[RDMAMIG_STAT_PAGES]);
	pr_u64("bytes", " (%llu bytes)\n", st[RDMAMIG_STAT_BYTES]);
	pr_u64("zero_pages", "  zero pages   %llu\n", st[RDMAMIG_STAT_ZERO_PAGES]);
	pr_u64("caps", NULL, s->caps);
	if (s->caps & RDMAMIG_CAP_PIN_ALL)
		pr_text("  pin-all      all memory was registered up front\n");
	if (s->caps & RDMAMIG_CAP_PULL)
		pr_text("  pull         every round was read from the source (RDMA READ)\n");
	if (s->caps & RDMAMIG_CAP_AUTH)
		pr_text("  auth         the source proved the shared secret\n");
	if (in->switched) {
		const struct pc_dest *pc = &in->pc;

		pr_bool("postcopy", NULL, true);
		pr_u64("postcopy_owed", "  post-copy    %llu pages owed at the switch",
		       st[RDMAMIG_STAT_POSTCOPY_OWED]);
		pr_u64("discarded", " (%llu discarded here)\n", pc->discarded);
		pr_u64("postcopy_faults", "               %llu faults fetched",
		       st[RDMAMIG_STAT_POSTCOPY_FAULTS]);
		pr_u64("postcopy_fault_pages", " %llu pages,",
		       st[RDMAMIG_STAT_POSTCOPY_FAULT_PAGES]);
		pr_u64("postcopy_sweep_pages", " the sweep %llu,",
		       st[RDMAMIG_STAT_POSTCOPY_SWEEP_PAGES]);
		pr_u64("postcopy_fetched_twice", " %llu fetched twice\n",
		       st[RDMAMIG_STAT_POSTCOPY_FETCHED_TWICE]);
		pr_u64("postcopy_ms", "               all here %llu ms after the switch\n",
		       st[RDMAMIG_STAT_POSTCOPY_MS]);
		pr_u64("resumes", "               %llu resumes", pc->resumes);
		pr_u64("held_faults", " (%llu faults held over one)\n", pc->held_faults);
		pr_u64("fault_msgs", NULL, pc->fault_msgs);
		pr_u64("zero_filled", NULL, pc->zero_filled);
		pr_u64("placed_twice", NULL, pc->placed_twice);
		pr_u64("unplaced", NULL, pc->unplaced);
		pr_u64("serve_ms", NULL, (pc->t_done_us - pc->t_switch_us) / 1000);
		pr_u64("cont_us", NULL, pc->t_cont_us - pc->t_switch_us);
		pr_u64("discard_calls", NULL, pc->discard_calls);
		pr_u64("restored", NULL, pc->restored);
	}
	if (have_sum) {
		snprintf(buf, sizeof(buf), "%#018" PRIx64, sum);
		pr_string("checksum", "checksum %s\n", buf);
	}
	pr_string("after", NULL, in->no_cont ? "stopped" : "continued");
	pr_text("pid %u %s\n", in->pid, in->no_cont ? "left stopped" : "continued");
}

/* ---- Standby -------------------------------------------------------------- */

#define SB_POLL_US	10000	/* the failover waits for the next look */

/* Until the session ends, a line per epoch committed. */
static int sb_follow(struct inc *in, struct pm_session *s)
{
	uint64_t e;
	int ret;

	for (;;) {
		ret = pm_check_interrupted(in->object) ?: pm_session_get(in->rm, in->id, s);
		if (ret)
			return ret;
		e = s->st[RDMAMIG_STAT_MC_EPOCHS];
		if (e > in->epoch) {
			in->t_commit_us = pm_now_us();
			if (e == in->epoch + 1)
				pr_text("epoch %" PRIu64 " committed", e);
			else
				pr_text("epochs %" PRIu64 "-%" PRIu64 " committed", in->epoch + 1, e);
			pr_text(" (%" PRIu64 " pages in the last)\n",
				s->st[RDMAMIG_STAT_MC_LAST_PAGES]);
			in->epoch = e;
			if (!pr_json() && pr_commit())
				return RM_EXIT_ERR;
		}
		if (inc_final(s->state))
			return RM_EXIT_OK;
		usleep(SB_POLL_US);
	}
}

/* CANCEL_SESSION: returns once the session is down, a commit under way done. */
static int sb_cancel(struct inc *in)
{
	return pm_session_cmd(in->rm, in->id, RDMAMIG_CMD_CANCEL_SESSION,
			      "standby: cannot end the session");
}

static void sb_print_summary(const struct inc *in, const struct pm_session *lost,
			     const struct pm_session *s, bool have_sum, uint64_t sum)
{
	const uint64_t *st = s->st;
	char buf[32];

	pr_string("state", "protection %s", pm_state_name(lost->state));
	pr_u64("mc_epochs", ": %llu epochs committed", st[RDMAMIG_STAT_MC_EPOCHS]);
	pr_u64("mc_discarded", " (%llu cut short)\n", st[RDMAMIG_STAT_MC_DISCARDED]);
	pr_u64("mc_pages", "  received     %llu pages", st[RDMAMIG_STAT_MC_PAGES]);
	pr_u64("mc_bytes", " (%llu bytes) in epochs\n", st[RDMAMIG_STAT_MC_BYTES]);
	pr_u64("caps", NULL, s->caps);
	pr_bool("failover", NULL, in->failover);
	pr_s64("error", NULL, lost->error);
	pr_string("reason", NULL, lost->reason);
	if (in->failover) {
		pr_text("  failover     the primary is lost: %s\n",
			lost->reason[0] ? lost->reason : strerror(-lost->error));
		pr_u64("lost_ms", "               seen %llu ms after the last epoch committed",
		       (in->t_lost_us - in->t_commit_us) / 1000);
		pr_u64("cont_ms", ", pid continued %llu ms later",
		       in->no_cont ? 0 : (in->t_cont_us - in->t_lost_us - in->sum_us) / 1000);
		pr_text("%s\n", in->sum_us ? " (and the checksum's time)" : "");
		pr_u64("checksum_ms", NULL, in->sum_us / 1000);
		pr_u64("lost_at_us", NULL, in->lost_at_us);
	}
	if (have_sum) {
		snprintf(buf, sizeof(buf), "%#018" PRIx64, sum);
		pr_string("checksum", "checksum %s\n", buf);
	}
	pr_string("after", NULL, in->failover && !in->no_cont ? "continued" : "stopped");
	pr_text("pid %u %s\n", in->pid, in->failover && !in->no_cont ?
		"continued from the last epoch" : "left stopped");
}

/*
 * After ACCEPT: follow the epochs; at the end, leave the twin stopped
 * (protection ended), or fail over (the primary lost).
 */
static int sb_run(struct inc *in)
{
	struct pm_session lost, s;
	uint64_t sum = 0;
	int ret;

	ret = sb_follow(in, &lost);
	if (ret)
		return ret;
	if (lost.state == RDMAMIG_STATE_CANCELLED) {
		rm_err("standby: the session was cancelled here");
		return RM_EXIT_ERR;
	}
	s = lost;
	if (lost.state == RDMAMIG_STATE_FAILED) {
		in->t_lost_us = pm_now_us();
		in->lost_at_us = pm_realtime_us();
		/* An epoch being applied completes first: the twin is whole. */
		ret = sb_cancel(in) ?: pm_session_get(in->rm, in->id, &s);
		if (ret)
			return ret;
		in->epoch = s.st[RDMAMIG_STAT_MC_EPOCHS];
		if (!in->epoch) {
			rm_err("standby: the primary was lost before its first epoch (%s): "
			       "pid %d is no checkpoint", lost.reason[0] ? lost.reason :
			       strerror(-lost.error), (int)in->pid);
			return RM_EXIT_ERR;
		}
		in->failover = true;
	}
	/* Done with the session: its registrations go before the twin runs. */
	rm_nl_close(&in->rm->nl);
	if (in->checksum && in->epoch) {
		uint64_t t0 = pm_now_us();

		ret = pm_checksum(in->mem, &in->bl, &sum);
		if (ret)
			return ret;
		in->sum_us = pm_now_us() - t0;
	}
	if (in->failover && !in->no_cont) {
		if (kill(in->pid, SIGCONT)) {
			rm_err("standby: cannot continue pid %d: %s", (int)in->pid,
			       strerror(errno));
			return RM_EXIT_ERR;
		}
		in->t_cont_us = pm_now_us();
	}
	sb_print_summary(in, &lost, &s, in->checksum && in->epoch, sum);
	return RM_EXIT_OK;
}

/* ---- The command -------------------------------------------------------- */

static int inc_run(struct inc *in)
{
	struct pm_session s;
	uint64_t sum = 0;
	char st;
	int ret;

	ret = rm_connect(in->rm);
	if (ret)
		return ret;
	st = pm_state(in->pid);
	if (!st) {
		rm_err("%s: no process with pid %d", in->object, (int)in->pid);
		return RM_EXIT_ERR;
	}
	if (st != 'T' && st != 't') {
		rm_err("%s: pid %d is not stopped (state %c): migrating into a "
		       "running process would corrupt it; stop it first (kill -STOP)",
		       in->object, (int)in->pid, st);
		return RM_EXIT_ERR;
	}
	in->held = true;
	if (!in->bl.n) {
		ret = pm_select(&in->bl, in->pid, in->object);
		if (ret)
			return ret;
	}
	in->mem = pm_open(in->pid, "mem", O_RDWR, in->object);
	if (in->mem < 0)
		return RM_EXIT_ERR;
	if (in->postcopy) {
		/* Before listening: a refusal leaves the source running. */
		in->pc.checksum = in->checksum;
		in->pc.cont = !in->no_cont;
		in->pc.resume_wait_s = in->resume_wait_s;
		ret = pc_dest_prepare(&in->pc, in->rm, in->pid, in->mem, &in->bl);
		if (ret)
			return ret;
	}

	pm_catch_signals();
	pr_open_object(NULL);
	inc_print_head(in);
	ret = pm_session_new(in->rm, in->pid, in->mem, RDMAMIG_ROLE_DEST, &in->bl,
			     &in->params, &in->id);
	/* The kernel has its copy now (--resume-wait: for the next session). */
	if (!in->resume_wait_s)
		secret_wipe(&in->params.secret);
	ret = ret ?: inc_listen(in);
	if (ret)
		return ret;
	pr_string("host", "listening on %s", in->host);
	pr_u32("port", " port %u\n", in->port);
	ret = inc_write_port_file(in);
	if (!ret && !pr_json())
		ret = pr_commit();
	if (ret)
		return ret;

	ret = inc_accept(in, in->timeout_s * 1000) ?: pm_session_get(in->rm, in->id, &s);
	if (ret)
		return ret;
	pr_string("peer", in->standby ? "primary %s connected\n" :
		  "source %s connected\n", s.peer);
	if (!pr_json() && pr_commit())
		return RM_EXIT_ERR;
	if (in->standby) {
		ret = sb_run(in);
		pr_close_object();
		return ret;
	}
	ret = inc_follow(in, &s);
	if (ret)
		return ret;
	if (s.state == RDMAMIG_STATE_POSTCOPY) {
		in->switched = true;
		ret = pc_dest_switch(&in->pc, in->id);
		if (ret)
			return ret;
		pr_text("post-copy: %" PRIu64 " pages owed, dropped in %" PRIu64
			" madvise calls (%" PRIu64 " pages not owed put back); pid %d %s"
			" %.1f ms after the switch was seen\n",
			in->pc.owed_pages, in->pc.discard_calls, in->pc.restored, (int)in->pid,
			in->no_cont ? "left stopped" : "continued",
			(in->pc.t_cont_us - in->pc.t_switch_us) / 1e3);
		if (!pr_json() && pr_commit())
			return RM_EXIT_ERR;
		while ((ret = pc_dest_wait(&in->pc, &sum)) == PC_DEST_FAILED) {
			ret = inc_resume(in);
			if (ret)
				return ret;
		}
		ret = ret ?: inc_follow(in, &s);
		if (ret)
			return ret;
	}
	/* Not switched: the twin, seized for post-copy, goes back to its stop. */
	if (in->postcopy)
		pc_dest_free(&in->pc);

	/* Done with the session: its registrations go before the twin runs. */
	rm_nl_close(&in->rm->nl);
	if (in->checksum && !in->switched) {
		ret = pm_checksum(in->mem, &in->bl, &sum);
		if (ret)
			return ret;
	}
	if (!in->no_cont && !in->switched && kill(in->pid, SIGCONT)) {
		rm_err("incoming: cannot continue pid %d: %s", (int)in->pid,
		       strerror(errno));
		return RM_EXIT_ERR;
	}
	inc_print_summary(in, &s, in->checksum, sum);
	pr_close_object();
	return RM_EXIT_OK;
}

static int inc_main(struct rm *rm, bool standby)
{
	struct inc in = { .rm = rm, .mem = -1, .standby = standby,
			  .object = standby ? "standby" : "incoming" };
	int ret;

	if (standby) {
		in.params.has_caps = true;
		in.params.caps |= RDMAMIG_CAP_MC;
	}

	ret = inc_parse(&in, rm);
	if (ret)
		return ret < 0 ? RM_EXIT_OK : ret;
	ret = inc_run(&in);
	if (ret && in.postcopy && pc_dest_abort(&in.pc)) {
		rm_err("incoming: pid %d killed: it ran in post-copy, and its memory can "
		       "no longer be completed", (int)in.pid);
		in.held = false;
	}
	pc_dest_free(&in.pc);
	secret_wipe(&in.params.secret);
	rm_nl_close(&rm->nl);
	if (ret && pm_interrupted)
		pm_check_interrupted(in.object);
	if (ret && in.held && pm_exists(in.pid))
		rm_err("%s: pid %d left stopped", in.object, (int)in.pid);
	if (in.mem >= 0)
		close(in.mem);
	return ret;
}

int cmd_incoming(struct rm *rm)
{
	return inc_main(rm, false);
}

int cmd_standby(struct rm *rm)
{
	return inc_main(rm, true);
}
