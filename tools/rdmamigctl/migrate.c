// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl migrate: live-migrate a running process's memory to a twin
 * process on another host (the source side; see incoming.c).
 *
 *   NEW_SESSION (role source) over the blocks, CONNECT (retried while
 *   refused)
 *   bulk round:       clear the soft-dirty bits, send every page
 *   iterative rounds: the pages dirtied meanwhile (soft-dirty), until
 *                     they would go within the downtime limit at the
 *                     last round's throughput, or max-rounds were done
 *   final round:      the process is stopped; the last dirty pages with
 *                     RDMAMIG_ROUND_FINAL, END_ROUND, COMPLETE
 *   --postcopy[=N]:   instead of the final round, the process stopped,
 *                     its dirty pages are named owed (ROUND with
 *                     RDMAMIG_ROUND_POSTCOPY), POSTCOPY lets the twin run
 *                     and COMPLETE returns once it has read them all;
 *                     after N rounds, or where the final round would be;
 *                     =auto: also once a round (the bulk one aside) is no
 *                     smaller than the one before
 *   --auto-converge:  while the dirty set does not halve from one round
 *                     to the next, the process is stopped a growing share
 *                     of the time during the rounds (throttle.c)
 *
 * Reading the soft-dirty bits and clearing them are two steps: a write
 * between them would be lost.  So each iterative round stops the process
 * for that instant (SIGSTOP, read, clear, SIGCONT), as CRIU's pre-dump
 * freezes it; the final round reads them once it is stopped for good.
 * Whatever fails, a process this command stopped is continued, and it
 * keeps running here.
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

#include "attrs.h"
#include "print.h"
#include "procmem.h"
#include "protect.h"
#include "rdmamigctl.h"

/*
 * One ROUND carries up to MIG_PIECE_PAGES dirty pages (16 MiB, the
 * kernel's window) from a bitmap of at most MIG_SPAN_WORDS words (1 GiB
 * of memory in 32 KiB: a netlink attribute holds under 64 KiB).  Each
 * ROUND returns once its writes are placed, so it costs a round trip of
 * its own: counting dirty pages, not memory, sends a scattered final
 * round of 619 pages over 256 MiB in one ROUND instead of 16 (each took
 * 15 ms, most of a 287 ms downtime).
 */
#define MIG_PIECE_PAGES	4096
#define MIG_SPAN_WORDS	4096
#define MIG_STOP_MS	10000	/* to wait for the process to stop */
#define MIG_RETRY_US	200000	/* between refused connection attempts */

enum mig_after { MIG_AFTER_STOP, MIG_AFTER_KILL };

struct mig_round {
	uint64_t round;
	uint64_t pages_dirty;	/* pages in the round's bitmaps */
	uint64_t pages;		/* sent (stats delta) */
	uint64_t zero_pages;
	uint64_t bytes;
	uint64_t throughput;	/* stats.throughput: bytes/s */
	uint64_t wall_us;	/* first ROUND to END_ROUND */
	uint64_t pause_us;	/* the process stopped to read its dirty bits */
	unsigned int throttle_pct; /* auto-converge during the round */
	bool final;
	bool postcopy;		/* the switch instead of the final round */
};

struct mig {
	struct rm *rm;
	const char *object;	/* "migrate" or "protect" */
	bool protect;		/* rdmamigctl protect: epochs after the bulk round */
	uint64_t opts_seen;	/* bit OPT_x - OPT_PID: given */
	struct prot prot;	/* protect: the epochs (protect.c) */
	pid_t pid;
	char host[RDMAMIG_HOST_MAX];
	uint16_t port;
	struct pm_blocks bl;
	struct pm_params params;
	bool checksum;
	unsigned int retry_s;
	unsigned int timeout_s;
	unsigned int resume_wait_s;	/* --resume-wait */
	enum mig_after after;

	int mem, pagemap;
	uint32_t id;
	bool started;		/* a session was created */
	bool was_stopped;	/* stopped before we began: never continue it */
	bool stopped;		/* we stopped it and must continue it on failure */
	bool completed;
	bool progress;		/* draw a progress bar on stderr */
	bool auto_converge;
	bool converged;		/* the final round came by the estimate */
	bool postcopy;		/* --postcopy */
	unsigned int postcopy_rounds;	/* --postcopy=N; 0: the final round's place */
	bool postcopy_auto;	/* --postcopy=auto: when rounds stop shrinking */
	bool switched;		/* POSTCOPY sent: the twin may run */
	unsigned int resumes;	/* post-copy resumed over a new connection */
	unsigned int throttle_pct; /* current auto-converge throttle */
	struct pm_throttle thr;
	uint64_t stop_us;	/* when it was stopped for the final round */
	uint64_t stopped_us;	/* from then to COMPLETE */
	struct mig_round *rounds;
	unsigned int nrounds;
};

/* ---- Options ------------------------------------------------------------ */

static int migrate_help(void)
{
	fputs("Usage: rdmamigctl [-j | -p] migrate --pid PID [OPTIONS] rdma:HOST:PORT\n"
	      "       rdmamigctl migrate help\n"
	      "\n"
	      "Live-migrate the memory of the running process PID to a stopped twin\n"
	      "process on HOST, where 'rdmamigctl incoming' listens on PORT.  Pre-copy:\n"
	      "a bulk round sends every page, iterative rounds send the pages the\n"
	      "process dirtied meanwhile (soft-dirty bits), then the process is stopped\n"
	      "and the last dirty pages go in the final round.  Afterwards it is left\n"
	      "stopped (or killed); if the migration fails, it keeps running here.\n"
	      "\n"
	      "Options:\n"
	      "  --pid PID              the process to migrate (needs ptrace rights)\n"
	      "  --region ADDR+LEN      migrate this range (repeatable; LEN may end in\n"
	      "                         K, M or G); default: every private writable\n"
	      "                         anonymous mapping of 1 MiB or more\n"
	      "  --checksum             print the XXH64 of the memory once stopped\n"
	      "  --retry SEC            retry a refused connection for SEC s (30)\n"
	      "  --timeout SEC          timeout of one connection attempt (30)\n"
	      "  --downtime-limit MS    converge once the dirty pages would take less\n"
	      "                         than MS ms (default: the module's default)\n"
	      "  --max-rounds N         at most N rounds before the final one\n"
	      "                         (default: the module's default)\n"
	      "  --max-bandwidth RATE   bytes/s, may end in K, M or G (x1000); 0: none\n"
	      "  --after stop|kill      what to do with the process afterwards (stop)\n"
	      "  --pin-all              ask the destination to register all of its\n"
	      "                         memory up front (if 'incoming --pin-all' allows)\n"
	      "  --pull                 ask the destination to read each round with\n"
	      "                         RDMA READ from pages registered here, instead\n"
	      "                         of writing them (if 'incoming --pull' allows;\n"
	      "                         otherwise they are written; pull wins over\n"
	      "                         --pin-all when both are granted)\n"
	      "  --secret-file FILE     the secret both ends share: FILE's bytes, 16 to\n"
	      "                         64 of them (head -c 32 /dev/urandom > FILE);\n"
	      "                         default: the file $RDMAMIG_SECRET_FILE names.\n"
	      "                         The destination must prove it (HMAC-SHA256)\n"
	      "                         before any memory layout is revealed;\n"
	      "                         required unless --no-auth\n"
	      "  --no-auth              migrate without peer authentication (the\n"
	      "                         destination must say --no-auth too)\n"
	      "  --channels N           stripe the memory over N queue pairs, 1 to 8\n"
	      "                         (the destination may grant fewer; default:\n"
	      "                         the module's default)\n"
	      "  --postcopy[=N]         end with post-copy instead of a final round (if\n"
	      "                         'incoming --postcopy' allows): the process is\n"
	      "                         stopped, the pages it dirtied since the last\n"
	      "                         round are owed, and the twin runs at once,\n"
	      "                         reading them from here (RDMA READ) as it\n"
	      "                         touches them, the rest in the background; this\n"
	      "                         command returns once it has them all.  The\n"
	      "                         switch comes after N pre-copy rounds (N >= 1,\n"
	      "                         the bulk round counted), or, bare, where the\n"
	      "                         final round would have been (downtime limit\n"
	      "                         or max-rounds).  --postcopy=auto: there, or\n"
	      "                         sooner, after the first round (the bulk one\n"
	      "                         aside) that dirtied no fewer pages than the one\n"
	      "                         before: the process writes as fast as the link\n"
	      "                         moves pages, and more rounds would not shrink\n"
	      "                         what is left.  The downtime is then the time\n"
	      "                         to name the owed pages, whatever their number.\n"
	      "                         If the migration fails after the switch, the\n"
	      "                         process is left stopped: the twin may have run\n"
	      "  --resume-wait SEC      with --postcopy: if the link fails after the\n"
	      "                         switch (not a cancel), a new session connects\n"
	      "                         to the same address again, retrying for up to\n"
	      "                         SEC s, takes the failed one's owed pages and\n"
	      "                         switches again (incoming --resume-wait); the\n"
	      "                         memory stays here until then\n"
	      "  --keepalive MS         the session's keepalive interval: 0 (off) or\n"
	      "                         100 to 60000 ms (default: the module's)\n"
	      "  --auto-converge        when a round's dirty set is more than half the\n"
	      "                         previous one's, stop the process 20% of every\n"
	      "                         100 ms during the next rounds, 10 points more\n"
	      "                         each time again, up to 99% (as QEMU's\n"
	      "                         auto-converge throttles vCPUs)\n"
	      "\n"
	      "Prints a line per round, a progress bar on a terminal, and a summary.\n"
	      "JSON: one object: pid, host, port, state, blocks [{name, addr, length}],\n"
	      "round_stats [{round, pages_dirty, pages, zero_pages, bytes, throughput,\n"
	      "wall_us, pause_us, throttle_pct}], rounds, pages, zero_pages, bytes,\n"
	      "throughput (bulk round, bytes/s), setup_ms, total_ms, downtime_ms,\n"
	      "stopped_ms, converged (the final round came by the downtime estimate,\n"
	      "not by max-rounds), throttle_pct (the highest), checksum, after; with\n"
	      "--postcopy also postcopy (whether it switched), postcopy_owed,\n"
	      "postcopy_ms, postcopy_downtime_us, resumes.  Exit status 1 if the migration\n"
	      "failed: the process then runs on (unless it failed after the switch).\n",
	      stdout);
	return RM_EXIT_OK;
}

static bool is_help(const char *word)
{
	return *word && !strncmp("help", word, strlen(word));
}

enum {
	OPT_PID = 256, OPT_REGION, OPT_CHECKSUM, OPT_RETRY, OPT_TIMEOUT,
	OPT_DOWNTIME, OPT_ROUNDS, OPT_BW, OPT_AFTER, OPT_PIN_ALL, OPT_SECRET_FILE, OPT_NO_AUTH,
	OPT_CHANNELS, OPT_AUTO_CONVERGE, OPT_PULL, OPT_POSTCOPY, OPT_RESUME_WAIT,
	OPT_KEEPALIVE, OPT_MC_DELAY, OPT_EPOCHS, OPT_NET_BUFFER,
};

#define OPT_BIT(o)	(1ULL << ((o) - OPT_PID))
/* Options of migrate only, and of protect only. */
#define MIGRATE_ONLY	(OPT_BIT(OPT_DOWNTIME) | OPT_BIT(OPT_ROUNDS) | OPT_BIT(OPT_AFTER) | \
			 OPT_BIT(OPT_PIN_ALL) | OPT_BIT(OPT_PULL) | OPT_BIT(OPT_POSTCOPY) | \
			 OPT_BIT(OPT_RESUME_WAIT) | OPT_BIT(OPT_AUTO_CONVERGE))
#define PROTECT_ONLY	(OPT_BIT(OPT_MC_DELAY) | OPT_BIT(OPT_EPOCHS) | OPT_BIT(OPT_NET_BUFFER))

static const struct option migrate_options[] = {
	{ "pid",		required_argument, NULL, OPT_PID },
	{ "region",		required_argument, NULL, OPT_REGION },
	{ "checksum",		no_argument,	   NULL, OPT_CHECKSUM },
	{ "retry",		required_argument, NULL, OPT_RETRY },
	{ "timeout",		required_argument, NULL, OPT_TIMEOUT },
	{ "downtime-limit",	required_argument, NULL, OPT_DOWNTIME },
	{ "max-rounds",		required_argument, NULL, OPT_ROUNDS },
	{ "max-bandwidth",	required_argument, NULL, OPT_BW },
	{ "after",		required_argument, NULL, OPT_AFTER },
	{ "pin-all",		no_argument,	   NULL, OPT_PIN_ALL },
	{ "pull",		no_argument,	   NULL, OPT_PULL },
	{ "secret-file",	required_argument, NULL, OPT_SECRET_FILE },
	{ "no-auth",		no_argument,	   NULL, OPT_NO_AUTH },
	{ "channels",		required_argument, NULL, OPT_CHANNELS },
	{ "auto-converge",	no_argument,	   NULL, OPT_AUTO_CONVERGE },
	{ "postcopy",		optional_argument, NULL, OPT_POSTCOPY },
	{ "resume-wait",	required_argument, NULL, OPT_RESUME_WAIT },
	{ "keepalive",	required_argument, NULL, OPT_KEEPALIVE },
	{ "mc-delay",		required_argument, NULL, OPT_MC_DELAY },
	{ "epochs",		required_argument, NULL, OPT_EPOCHS },
	{ "net-buffer",		required_argument, NULL, OPT_NET_BUFFER },
	{ "json",		no_argument,	   NULL, 'j' },
	{ "pretty",		no_argument,	   NULL, 'p' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL,			0,		   NULL, 0 },
};

static int mig_option(struct mig *m, int c, const char *arg)
{
	uint64_t v, addr, len;

	if (c >= OPT_PID)
		m->opts_seen |= OPT_BIT(c);
	switch (c) {
	case OPT_MC_DELAY:
		if (!pm_parse_uint(arg, 60000, &v) || v < PROT_DELAY_MIN_MS)
			return rm_usage_err(m->object, "bad --mc-delay '%s' (%u to 60000 ms)",
					    arg, PROT_DELAY_MIN_MS);
		m->prot.delay_ms = v;
		break;
	case OPT_EPOCHS:
		if (!pm_parse_uint(arg, UINT64_MAX, &v) || !v)
			return rm_usage_err(m->object, "bad --epochs '%s'", arg);
		m->prot.max_epochs = v;
		break;
	case OPT_NET_BUFFER:
		if (!*arg || strlen(arg) >= IFNAMSIZ || strchr(arg, '/'))
			return rm_usage_err(m->object, "bad --net-buffer '%s' (an interface name)",
					    arg);
		m->prot.net_buffer = arg;
		break;
	case OPT_PID:
		if (!pm_parse_uint(arg, INT32_MAX, &v) || !v)
			return rm_usage_err(m->object, "bad pid '%s'", arg);
		m->pid = v;
		break;
	case OPT_REGION:
		if (!pm_parse_region(arg, &addr, &len))
			return rm_usage_err(m->object, "bad region '%s' (ADDR+LEN)", arg);
		return pm_add_region(&m->bl, m->object, addr, len);
	case OPT_CHECKSUM:
		m->checksum = true;
		break;
	case OPT_RETRY:
		if (!pm_parse_uint(arg, 86400, &v))
			return rm_usage_err(m->object, "bad --retry '%s'", arg);
		m->retry_s = v;
		break;
	case OPT_TIMEOUT:
		if (!pm_parse_uint(arg, 3600, &v) || !v)
			return rm_usage_err(m->object, "bad --timeout '%s'", arg);
		m->timeout_s = v;
		break;
	case OPT_DOWNTIME:
		if (!pm_parse_uint(arg, UINT32_MAX, &v))
			return rm_usage_err(m->object, "bad --downtime-limit '%s'", arg);
		m->params.has_downtime_limit = true;
		m->params.downtime_limit_ms = v;
		break;
	case OPT_ROUNDS:
		if (!pm_parse_uint(arg, UINT32_MAX, &v) || !v)
			return rm_usage_err(m->object, "bad --max-rounds '%s'", arg);
		m->params.has_max_rounds = true;
		m->params.max_rounds = v;
		break;
	case OPT_BW:
		if (attr_parse_rate(arg, &v))
			return rm_usage_err(m->object, "bad --max-bandwidth '%s'", arg);
		m->params.has_max_bandwidth = true;
		m->params.max_bandwidth = v;
		break;
	case OPT_PIN_ALL:
		m->params.has_caps = true;
		m->params.caps |= RDMAMIG_CAP_PIN_ALL;
		break;
	case OPT_PULL:
		m->params.has_caps = true;
		m->params.caps |= RDMAMIG_CAP_PULL;
		break;
	case OPT_SECRET_FILE:
		m->params.secret_file = arg;
		break;
	case OPT_NO_AUTH:
		m->params.no_auth = true;
		break;
	case OPT_CHANNELS:
		/* The range is the kernel's to check (1 to 8): its message says so. */
		if (!pm_parse_uint(arg, UINT32_MAX, &v))
			return rm_usage_err(m->object, "bad --channels '%s'", arg);
		m->params.has_channels = true;
		m->params.channels = v;
		break;
	case OPT_AUTO_CONVERGE:
		m->auto_converge = true;
		break;
	case OPT_POSTCOPY:
		m->postcopy_auto = arg && !strcmp(arg, "auto");
		if (arg && !m->postcopy_auto && (!pm_parse_uint(arg, 100000, &v) || !v))
			return rm_usage_err(m->object, "bad --postcopy '%s' (rounds before "
					    "the switch, 1 or more, or 'auto')", arg);
		m->postcopy = true;
		m->postcopy_rounds = arg && !m->postcopy_auto ? v : 0;
		m->params.has_caps = true;
		m->params.caps |= RDMAMIG_CAP_POSTCOPY;
		break;
	case OPT_KEEPALIVE:
		if (!pm_parse_uint(arg, 60000, &v))
			return rm_usage_err(m->object, "bad --keepalive '%s'", arg);
		m->params.has_keepalive = true;
		m->params.keepalive_ms = v;
		break;
	case OPT_RESUME_WAIT:
		if (!pm_parse_uint(arg, 86400, &v) || !v)
			return rm_usage_err(m->object, "bad --resume-wait '%s'", arg);
		m->resume_wait_s = v;
		break;
	case OPT_AFTER:
		if (!strcmp(arg, "stop"))
			m->after = MIG_AFTER_STOP;
		else if (!strcmp(arg, "kill"))
			m->after = MIG_AFTER_KILL;
		else
			return rm_usage_err(m->object, "--after takes stop or kill, not '%s'",
					    arg);
		break;
	}
	return RM_EXIT_OK;
}

/* An option of the other command: name it. */
static int mig_check_options(struct mig *m)
{
	uint64_t wrong = m->opts_seen & (m->protect ? MIGRATE_ONLY : PROTECT_ONLY);
	const struct option *o;

	if (!wrong)
		return RM_EXIT_OK;
	for (o = migrate_options; o->name; o++)
		if (o->val >= OPT_PID && (wrong & OPT_BIT(o->val)))
			break;
	return rm_usage_err(m->object, "--%s is an option of rdmamigctl %s only",
			    o->name ?: "?", m->protect ? "migrate" : "protect");
}

/*
 * Options anywhere among the words (main() leaves them all to us, -j and
 * -p after "migrate" too), and the destination.  -1: help was printed.
 */
static int mig_parse(struct mig *m, struct rm *rm)
{
	int c, ret;

	m->retry_s = 30;
	m->timeout_s = 30;
	m->after = MIG_AFTER_STOP;
	if (rm_arg(rm) && is_help(rm_arg(rm)))
		return (m->protect ? protect_help() : migrate_help()) ?: -1;

	/* The object's word stands in for argv[0]. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(rm->argc + 1, rm->argv - 1, ":jph", migrate_options,
				NULL)) != -1) {
		switch (c) {
		case 'j':
			rm->json = true;
			break;
		case 'p':
			rm->json = rm->pretty = true;
			break;
		case 'h':
			return (m->protect ? protect_help() : migrate_help()) ?: -1;
		case ':':
		case '?':
			return pm_bad_option(m->object, c, rm->argv - 1);
		default:
			ret = mig_option(m, c, optarg);
			if (ret)
				return ret;
		}
	}
	/* getopt_long() moved the other words behind the options. */
	rm->argv += optind - 1;
	rm->argc -= optind - 1;
	if (!rm_arg(rm))
		return rm_usage_err(m->object, "no destination given (rdma:HOST:PORT)");
	if (!pm_parse_target(rm_arg(rm), m->host, sizeof(m->host), &m->port) ||
	    !m->port)
		return rm_usage_err(m->object, "bad destination '%s' (rdma:HOST:PORT)",
				    rm_arg(rm));
	rm_shift(rm);
	ret = rm_no_more_args(rm, m->object);
	if (ret)
		return ret;
	if (!m->pid)
		return rm_usage_err(m->object, "no --pid given");
	ret = mig_check_options(m);
	if (ret)
		return ret;
	if (m->resume_wait_s && !m->postcopy)
		return rm_usage_err(m->object, "--resume-wait is for --postcopy");
	ret = pm_load_secret(&m->params, m->object);
	if (ret)
		return ret;
	pr_init(rm->json, rm->pretty);
	return RM_EXIT_OK;
}

/* ---- The process -------------------------------------------------------- */

static int mig_stop(struct mig *m)
{
	int err;

	if (m->was_stopped)
		return RM_EXIT_OK;
	err = pm_stop(m->pid, MIG_STOP_MS);
	/* Stopped or not, it may have got the signal: continue it on failure. */
	m->stopped = true;
	if (err) {
		rm_err("migrate: cannot stop pid %d: %s", (int)m->pid,
		       err == -ESRCH ? "it exited" : strerror(-err));
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int mig_cont(struct mig *m)
{
	int err;

	if (!m->stopped)
		return RM_EXIT_OK;
	m->stopped = false;
	err = pm_cont(m->pid);
	if (err == -ESRCH)
		return RM_EXIT_ERR;	/* it exited: said where it was noticed */
	if (err) {
		rm_err("migrate: cannot continue pid %d: %s", (int)m->pid, strerror(-err));
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

/* ---- Rounds ------------------------------------------------------------- */

static void mig_progress(const struct mig *m, uint64_t round, uint64_t done,
			 uint64_t total)
{
	char bar[31];
	unsigned int i, fill;

	if (!m->progress)
		return;
	if (done > total)
		done = total;
	if (done == total && !total) {
		fputs("\r\033[K", stderr);
		return;
	}
	fill = total ? done * 30 / total : 30;
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[30] = '\0';
	fprintf(stderr, "\rround %" PRIu64 " [%s] %3u%% %.1f/%.1f MB", round, bar,
		(unsigned int)(total ? done * 100 / total : 100),
		done * PM_PAGE_SIZE / 1e6, total * PM_PAGE_SIZE / 1e6);
	fflush(stderr);
}

/* One ROUND: @nwords bitmap words of block @bi from word @w0. */
static int mig_send_piece(struct mig *m, unsigned int bi, uint64_t w0,
			  uint64_t nwords, const uint64_t *bitmap, uint32_t flags,
			  uint64_t round)
{
	struct nl_msg *msg;
	char what[64 + RDMAMIG_BLOCK_NAME_MAX];

	msg = rm_nl_msg(&m->rm->nl, RDMAMIG_CMD_ROUND, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, m->id) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_BLOCK_INDEX, bi) ||
	    nla_put_u64(msg, RDMAMIG_ATTR_FIRST_PAGE, w0 * 64) ||
	    nla_put(msg, RDMAMIG_ATTR_BITMAP, nwords * sizeof(uint64_t), bitmap) ||
	    (flags && nla_put_u32(msg, RDMAMIG_ATTR_FLAGS, flags))) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	snprintf(what, sizeof(what), "round %" PRIu64 ": cannot send %s", round,
		 m->bl.b[bi].name);
	return rm_nl_send(&m->rm->nl, msg, what, NULL, NULL);
}

static int mig_send_block(struct mig *m, unsigned int bi, uint32_t flags,
			  uint64_t round, uint64_t *done, uint64_t total)
{
	const struct pm_block *b = &m->bl.b[bi];
	uint64_t words = (b->npages + 63) / 64, first, last, end, n;
	int ret;

	for (first = 0; first < words; first = end) {
		/* Only words with dirty pages go, as in rdmamig-vmm. */
		for (; first < words && !b->dirty[first]; first++)
			;
		if (first == words)
			break;
		for (end = first, n = 0; end < words && end - first < MIG_SPAN_WORDS &&
		     n < MIG_PIECE_PAGES; end++)
			n += __builtin_popcountll(b->dirty[end]);
		for (last = end - 1; !b->dirty[last]; last--)
			;
		ret = pm_check_interrupted("migrate") ?:
		      mig_send_piece(m, bi, first, last - first + 1, &b->dirty[first],
				     flags, round);
		if (ret)
			return ret;
		*done += n;
		mig_progress(m, round, *done, total);
	}
	return RM_EXIT_OK;
}

static int mig_end_round(struct mig *m, uint8_t cmd, const char *what)
{
	return pm_session_cmd(m->rm, m->id, cmd, what);
}

static void mig_print_round(const struct mig_round *r)
{
	if (r->postcopy) {
		pr_text("round %" PRIu64 " (post-copy switch, process stopped): %" PRIu64
			" pages owed, the twin runs after %.1f ms\n", r->round,
			r->pages_dirty, r->wall_us / 1e3);
		return;
	}
	pr_text("round %" PRIu64 "%s: %" PRIu64 " dirty pages, %.1f MB sent, "
		"%.1f MB/s, %.2f s", r->round,
		r->final ? " (final, process stopped)" : "", r->pages_dirty,
		r->bytes / 1e6, r->throughput / 1e6, r->wall_us / 1e6);
	if (r->throttle_pct)
		pr_text(", process throttled %u%%", r->throttle_pct);
	pr_text("\n");
}

/*
 * Send the bitmaps of every block as round @r->round; END_ROUND returns
 * once the destination placed all of it.
 */
static int mig_round(struct mig *m, struct mig_round *r, uint64_t ndirty)
{
	uint32_t flags = r->postcopy ? RDMAMIG_ROUND_POSTCOPY :
			 r->final ? RDMAMIG_ROUND_FINAL : 0;
	struct pm_session before, after;
	char what[64];
	uint64_t t0, done = 0;
	unsigned int i;
	int ret;

	r->pages_dirty = ndirty;
	ret = pm_session_get(m->rm, m->id, &before);
	if (ret)
		return ret;
	t0 = pm_now_us();
	for (i = 0; i < m->bl.n; i++) {
		ret = mig_send_block(m, i, flags, r->round, &done, ndirty);
		if (ret)
			return ret;
	}
	/* Owed, not sent: the switch lets the twin run and read them. */
	if (r->postcopy) {
		ret = pm_check_interrupted("migrate");
		/* Whatever POSTCOPY answers, the twin may run from here on. */
		m->switched = !ret;
		ret = ret ?: mig_end_round(m, RDMAMIG_CMD_POSTCOPY,
					   "cannot switch to post-copy");
		mig_progress(m, r->round, 0, 0);
		if (ret)
			return ret;
		r->wall_us = pm_now_us() - t0;
		mig_print_round(r);
		return pr_json() ? RM_EXIT_OK : pr_commit();
	}
	/* A final round without dirty pages still says it is the final one. */
	if (!ndirty && r->final) {
		static const uint64_t none;

		ret = mig_send_piece(m, 0, 0, 1, &none, flags, r->round);
		if (ret)
			return ret;
	}
	snprintf(what, sizeof(what), "round %" PRIu64 " not acknowledged", r->round);
	ret = pm_check_interrupted("migrate") ?:
	      mig_end_round(m, RDMAMIG_CMD_END_ROUND, what);
	mig_progress(m, r->round, 0, 0);
	if (ret)
		return ret;
	r->wall_us = pm_now_us() - t0;
	ret = pm_session_get(m->rm, m->id, &after);
	if (ret)
		return ret;
	r->pages = after.st[RDMAMIG_STAT_PAGES] - before.st[RDMAMIG_STAT_PAGES];
	r->zero_pages = after.st[RDMAMIG_STAT_ZERO_PAGES] -
			before.st[RDMAMIG_STAT_ZERO_PAGES];
	r->bytes = after.st[RDMAMIG_STAT_BYTES] - before.st[RDMAMIG_STAT_BYTES];
	r->throughput = after.st[RDMAMIG_STAT_THROUGHPUT];
	mig_print_round(r);
	return pr_json() ? RM_EXIT_OK : pr_commit();
}

static struct mig_round *mig_new_round(struct mig *m)
{
	struct mig_round *r;

	r = realloc(m->rounds, (m->nrounds + 1) * sizeof(*r));
	if (!r) {
		rm_err("out of memory");
		return NULL;
	}
	m->rounds = r;
	r = &m->rounds[m->nrounds++];
	memset(r, 0, sizeof(*r));
	r->round = m->nrounds;
	return r;
}

/*
 * Auto-converge: a dirty set more than half the previous round's means
 * the process dirties about as fast as rounds move pages; throttle it
 * (more).  A process stopped before we began is never throttled.
 */
static void mig_throttle_more(struct mig *m, uint64_t ndirty, uint64_t prev_dirty)
{
	if (!m->auto_converge || m->was_stopped || ndirty * 2 <= prev_dirty)
		return;
	m->throttle_pct = m->throttle_pct ? m->throttle_pct + PM_THROTTLE_STEP :
			  PM_THROTTLE_FIRST;
	if (m->throttle_pct > PM_THROTTLE_MAX)
		m->throttle_pct = PM_THROTTLE_MAX;
}

/* The process exited while it was throttled. */
static int mig_gone(struct mig *m)
{
	rm_err("migrate: pid %d exited during the migration", (int)m->pid);
	return RM_EXIT_ERR;
}

/*
 * The pre-copy loop.  Before each round after the bulk one, the dirty
 * set is read with the process stopped; if it would go within the
 * downtime limit at the last measured throughput (or max-rounds rounds
 * are done, or nothing is dirty), the process stays stopped and that set
 * is the final round.  The limits are read from the session each time:
 * 'session set' may change them while this runs.
 */
/* Bulk: what is written after the clear is in the next round (or epoch). */
static int mig_bulk_round(struct mig *m)
{
	struct mig_round *r;
	uint64_t ndirty;
	int ret;

	ret = pm_clear_soft_dirty(m->pid) ?: pm_set_all_dirty(&m->bl, &ndirty);
	if (ret)
		return ret;
	r = mig_new_round(m);
	if (!r)
		return RM_EXIT_ERR;
	return mig_round(m, r, ndirty);
}

static int mig_rounds(struct mig *m)
{
	uint64_t ndirty, tput = 0, t0, est_ms, prev_dirty;
	struct pm_session s;
	struct mig_round *r;
	int ret;

	ret = mig_bulk_round(m);
	if (ret)
		return ret;

	for (;;) {
		if (m->rounds[m->nrounds - 1].throughput)
			tput = m->rounds[m->nrounds - 1].throughput;
		prev_dirty = m->rounds[m->nrounds - 1].pages_dirty;
		ret = pm_check_interrupted("migrate") ?: pm_session_get(m->rm, m->id, &s);
		if (ret)
			return ret;
		r = mig_new_round(m);
		if (!r)
			return RM_EXIT_ERR;

		/* The duty cycle must not continue it while its bits are read. */
		if (pm_throttle_stop(&m->thr) == -ESRCH)
			return mig_gone(m);
		t0 = pm_now_us();
		ret = mig_stop(m) ?: pm_read_dirty(m->pagemap, &m->bl, &ndirty);
		if (ret)
			return ret;
		est_ms = tput ? ndirty * PM_PAGE_SIZE * 1000 / tput : UINT64_MAX;
		m->converged = !ndirty || est_ms <= s.downtime_limit_ms;
		r->final = m->converged || m->nrounds > (m->postcopy_rounds ?: s.max_rounds);
		/*
		 * --postcopy=auto: this round would be no smaller than the
		 * last (the bulk round, which is everything, aside): switch now.
		 */
		if (m->postcopy_auto && m->nrounds > 2 && ndirty >= prev_dirty)
			r->final = true;
		/* Nothing to owe: an ordinary final round ends it. */
		r->postcopy = r->final && m->postcopy && ndirty;
		if (r->final) {
			m->stop_us = t0;
		} else {
			mig_throttle_more(m, ndirty, prev_dirty);
			ret = pm_clear_soft_dirty(m->pid) ?: mig_cont(m) ?:
			      pm_throttle_start(&m->thr, m->pid, m->throttle_pct);
			r->pause_us = pm_now_us() - t0;
			r->throttle_pct = m->throttle_pct;
			if (ret)
				return ret;
		}
		ret = mig_round(m, r, ndirty);
		if (ret || r->final)
			return ret;
	}
}

/* --postcopy: the destination must have allowed it, or nothing starts. */
static int mig_check_postcopy(struct mig *m)
{
	struct pm_session s;
	int ret;

	if (!m->postcopy)
		return RM_EXIT_OK;
	ret = pm_session_get(m->rm, m->id, &s);
	if (ret)
		return ret;
	if (!(s.caps & RDMAMIG_CAP_POSTCOPY)) {
		rm_err("migrate: the destination does not allow post-copy "
		       "(run 'rdmamigctl incoming --postcopy' there)");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static void mig_print_rounds_json(const struct mig *m);

/* Pre-copy rounds before the first epoch: at most these. */
#define PROT_CONVERGE_ROUNDS	10

/*
 * Half the staging this module would grant (module parameter
 * mc_staging_mb; the session's is the smaller of both ends'), in pages:
 * what the first epoch may hold, with room to spare.
 */
static uint64_t prot_epoch_pages_max(void)
{
	FILE *f = fopen("/sys/module/rdmamig/parameters/mc_staging_mb", "re");
	unsigned int mb = 64;

	if (f) {
		if (fscanf(f, "%u", &mb) != 1)
			mb = 64;
		fclose(f);
	}
	return (uint64_t)mb * 1048576 / PM_PAGE_SIZE / 2;
}

/*
 * After the bulk round, pre-copy rounds (the process stopped only to
 * read and clear its bits, as migrate's) until what it dirtied since the
 * last one fits an epoch: the first epoch holds everything written during
 * the first copy, which a large process on a slow link makes larger than
 * the backup's staging (ENOSPC).  The bits read when it fits are not
 * cleared: the first epoch reads them again.
 */
static int mig_protect_converge(struct mig *m)
{
	uint64_t max = prot_epoch_pages_max(), ndirty, t0;
	struct mig_round *r;
	unsigned int i;
	int ret;

	for (i = 0; i < PROT_CONVERGE_ROUNDS; i++) {
		t0 = pm_now_us();
		ret = pm_check_interrupted("protect") ?: mig_stop(m) ?:
		      pm_read_dirty(m->pagemap, &m->bl, &ndirty);
		if (ret)
			return ret;
		if (ndirty <= max)
			return mig_cont(m);
		r = mig_new_round(m);
		if (!r)
			return RM_EXIT_ERR;
		ret = pm_clear_soft_dirty(m->pid) ?: mig_cont(m);
		r->pause_us = pm_now_us() - t0;
		ret = ret ?: mig_round(m, r, ndirty);
		if (ret)
			return ret;
	}
	/* Writing faster than the link: the first epoch may still fit. */
	return RM_EXIT_OK;
}

/*
 * protect, once connected: the backup must allow checkpointing; the bulk
 * round, then epochs (protect.c) until --epochs, a signal, the process's
 * exit or the backup's loss.  Unless the backup is lost, COMPLETE tells
 * it that protection ended on purpose, so that it does not fail over.
 */
static int mig_protect(struct mig *m)
{
	struct prot *p = &m->prot;
	struct pm_session s;
	int ret, done;

	ret = pm_session_get(m->rm, m->id, &s);
	if (ret)
		return ret;
	if (!(s.caps & RDMAMIG_CAP_MC)) {
		rm_err("protect: the backup does not allow checkpointing "
		       "(run 'rdmamigctl standby' there)");
		return RM_EXIT_ERR;
	}
	/* A wrong interface is said before any page moves. */
	if (p->net_buffer && netbuf_open(&p->nb, p->net_buffer, m->pid))
		return RM_EXIT_ERR;
	ret = mig_bulk_round(m) ?: mig_protect_converge(m);
	if (ret)
		return ret;
	p->rm = m->rm;
	p->id = m->id;
	p->pid = m->pid;
	p->bl = &m->bl;
	p->pagemap = m->pagemap;
	p->mem = m->mem;
	p->checksum = m->checksum;
	pr_u32("mc_delay_ms", "first full copy placed; an epoch every %u ms\n",
	       p->delay_ms);
	if (!pr_json() && pr_commit())
		return RM_EXIT_ERR;
	ret = prot_run(p);
	if (p->lost) {
		/* Nothing to wait for any more: what the process said goes out. */
		prot_release_output(p);
		rm_err("protect: the backup is lost (%s): pid %d runs on unprotected; "
		       "the last epoch it acknowledged is %" PRIu64, p->reason, (int)m->pid,
		       pm_session_get(m->rm, m->id, &s) ? 0 : s.st[RDMAMIG_STAT_MC_ACKED]);
		return RM_EXIT_ERR;
	}
	done = mig_end_round(m, RDMAMIG_CMD_COMPLETE, "protect: cannot end the protection");
	prot_drain_events(p);
	/* COMPLETE came back: the backup acknowledged every epoch. */
	prot_release_output(p);
	ret = ret ?: done;
	if (ret)
		return ret;
	ret = pm_session_get(m->rm, m->id, &s);
	if (ret)
		return ret;
	m->completed = true;
	pr_string("state", "protection %s", p->exited ? "ended: the process exited" :
		  "ended");
	pr_text("\n");
	mig_print_rounds_json(m);
	prot_print_summary(p, &s);
	return RM_EXIT_OK;
}

/* ---- Session ------------------------------------------------------------ */

/* rm_nl_send() without its error message: the caller reports. */
static int mig_quiet_send(struct rm *rm, struct nl_msg *msg, const char *what)
{
	int saved, null, ret;

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && null >= 0)
		dup2(null, STDERR_FILENO);
	ret = rm_nl_send(&rm->nl, msg, what, NULL, NULL);
	fflush(stderr);
	if (saved >= 0 && null >= 0)
		dup2(saved, STDERR_FILENO);
	if (saved >= 0)
		close(saved);
	if (null >= 0)
		close(null);
	return ret;
}

static int mig_connect_once(struct mig *m, unsigned int timeout_ms)
{
	struct nl_msg *msg;

	msg = rm_nl_msg(&m->rm->nl, RDMAMIG_CMD_CONNECT, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, m->id) ||
	    nla_put_string(msg, RDMAMIG_ATTR_HOST, m->host) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_PORT, m->port) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_TIMEOUT_MS, timeout_ms)) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	return mig_quiet_send(m->rm, msg, "cannot connect");
}

/*
 * A new session, connected.  A refused session is not reused: the socket
 * is closed (which destroys the session) and a new one tries again, until
 * --retry seconds have passed.
 */
static int mig_connect(struct mig *m)
{
	uint64_t deadline = pm_now_us() + (uint64_t)m->retry_s * 1000000;
	struct rm *rm = m->rm;
	int ret;

	for (;;) {
		ret = pm_session_new(rm, m->pid, m->mem, RDMAMIG_ROLE_SOURCE, &m->bl,
				     &m->params, &m->id);
		if (ret)
			return ret;
		m->started = true;
		ret = mig_connect_once(m, m->timeout_s * 1000);
		if (!ret) {
			/* --resume-wait: kept for the sessions that resume. */
			if (!m->resume_wait_s)
				secret_wipe(&m->params.secret);
			return RM_EXIT_OK;
		}
		if (rm->nl.err != -ECONNREFUSED || pm_now_us() >= deadline ||
		    pm_interrupted)
			break;
		rm_nl_close(&rm->nl);
		usleep(MIG_RETRY_US);
		ret = rm_connect(rm);
		if (ret)
			return ret;
	}
	secret_wipe(&m->params.secret);
	if (pm_interrupted)
		return pm_check_interrupted("migrate");
	if (rm->nl.err)
		rm_err("cannot connect to %s port %u: %s%s%s%s", m->host, m->port,
		       strerror(-rm->nl.err), rm->nl.extack[0] ? " (kernel: " : "",
		       rm->nl.extack, rm->nl.extack[0] ? ")" : "");
	else
		rm_err("cannot connect to %s port %u", m->host, m->port);
	return RM_EXIT_ERR;
}

/*
 * --resume-wait: may the failed session be resumed?  Not after a cancel
 * (ours or the operator's), nor before the switch.
 */
static bool mig_may_resume(struct mig *m)
{
	struct pm_session s;

	if (!m->resume_wait_s || !m->switched || pm_interrupted)
		return false;
	if (pm_session_get(m->rm, m->id, &s))
		return false;
	return s.state == RDMAMIG_STATE_FAILED && s.error != -ECANCELED;
}

#define MIG_RESUME_CONNECT_MS	10000	/* one try; the handshake may be slow */

/*
 * The session failed after the switch: a new one on the same socket
 * (POSTCOPY_RESUME needs both to be ours) connects to the same address,
 * for up to --resume-wait seconds, takes the failed one's owed pages,
 * switches again and completes.  The tries that fail stay on the socket,
 * failed, until it closes.
 */
static int mig_resume(struct mig *m, bool *again)
{
	uint64_t deadline = pm_now_us() + (uint64_t)m->resume_wait_s * 1000000;
	unsigned int tmo = m->timeout_s * 1000 < MIG_RESUME_CONNECT_MS ?
			   m->timeout_s * 1000 : MIG_RESUME_CONNECT_MS;
	struct rm *rm = m->rm;
	uint32_t old = m->id;
	struct nl_msg *msg;
	int ret, err;

	*again = false;		/* only a failure after the resume is resumed */
	rm_err("migrate: post-copy failed: reconnecting to %s port %u for up to %u s "
	       "to resume", m->host, m->port, m->resume_wait_s);
	for (;;) {
		ret = pm_check_interrupted("migrate") ?:
		      pm_session_new(rm, m->pid, m->mem, RDMAMIG_ROLE_SOURCE, &m->bl,
				     &m->params, &m->id);
		if (ret)
			return ret;
		if (!mig_connect_once(m, tmo))
			break;
		err = rm->nl.err;
		if (pm_now_us() >= deadline || err == -ECANCELED || err == -EPROTO ||
		    err == -ENOKEY || err == -EACCES || pm_interrupted) {
			rm_err("migrate: cannot reconnect to %s port %u to resume: %s%s%s%s",
			       m->host, m->port, strerror(-err), rm->nl.extack[0] ?
			       " (kernel: " : "", rm->nl.extack, rm->nl.extack[0] ? ")" : "");
			return RM_EXIT_ERR;
		}
		usleep(MIG_RETRY_US);
	}
	msg = rm_nl_msg(&rm->nl, RDMAMIG_CMD_POSTCOPY_RESUME, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, m->id) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_RESUME_FROM, old)) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	ret = rm_nl_send(&rm->nl, msg, "cannot resume post-copy", NULL, NULL) ?:
	      mig_end_round(m, RDMAMIG_CMD_POSTCOPY, "cannot switch to post-copy (resume)");
	if (ret)
		return ret;
	m->resumes++;
	rm_err("migrate: post-copy resumed (session %u takes over session %u)",
	       m->id, old);
	ret = pm_check_interrupted("migrate") ?:
	      mig_end_round(m, RDMAMIG_CMD_COMPLETE, "cannot complete the migration");
	*again = ret != RM_EXIT_OK;
	return ret;
}

/* ---- Output ------------------------------------------------------------- */

static void mig_print_head(const struct mig *m)
{
	unsigned int i;
	char addr[32];

	pr_u32("pid", m->protect ? "protecting pid %u" : "migrating pid %u", m->pid);
	pr_string("host", m->protect ? " with a backup on %s" : " to %s", m->host);
	pr_u32("port", " port %u", m->port);
	pr_text(": %u block%s, %.1f MiB\n", m->bl.n, m->bl.n == 1 ? "" : "s",
		m->bl.bytes / 1048576.0);
	pr_open_array("blocks");
	for (i = 0; i < m->bl.n; i++) {
		pr_open_object(NULL);
		pr_string("name", "  %s", m->bl.b[i].name);
		snprintf(addr, sizeof(addr), "%#" PRIx64, m->bl.b[i].addr);
		pr_string("addr", NULL, addr);
		pr_u64("length", NULL, m->bl.b[i].len);
		pr_text(" %.1f MiB\n", m->bl.b[i].len / 1048576.0);
		pr_close_object();
	}
	pr_close_array();
}

static void mig_print_rounds_json(const struct mig *m)
{
	unsigned int i;

	pr_open_array("round_stats");
	for (i = 0; i < m->nrounds; i++) {
		const struct mig_round *r = &m->rounds[i];

		pr_open_object(NULL);
		pr_u64("round", NULL, r->round);
		pr_u64("pages_dirty", NULL, r->pages_dirty);
		pr_u64("pages", NULL, r->pages);
		pr_u64("zero_pages", NULL, r->zero_pages);
		pr_u64("bytes", NULL, r->bytes);
		pr_u64("throughput", NULL, r->throughput);
		pr_u64("wall_us", NULL, r->wall_us);
		pr_u64("pause_us", NULL, r->pause_us);
		pr_u32("throttle_pct", NULL, r->throttle_pct);
		pr_close_object();
	}
	pr_close_array();
}

static void mig_print_summary(const struct mig *m, const struct pm_session *s,
			      bool have_sum, uint64_t sum)
{
	const uint64_t *st = s->st;
	uint64_t bulk = m->nrounds ? m->rounds[0].throughput : 0;
	char buf[32];

	pr_string("state", "migration %s\n", pm_state_name(s->state));
	pr_u64("total_ms", NULL, st[RDMAMIG_STAT_TOTAL_MS]);
	pr_text("  total time   %.2f s\n", st[RDMAMIG_STAT_TOTAL_MS] / 1e3);
	pr_u64("downtime_ms", "  downtime     %llu ms", st[RDMAMIG_STAT_DOWNTIME_MS]);
	pr_u64("stopped_ms", " (process stopped for %llu ms)\n", m->stopped_us / 1000);
	pr_u64("throughput", NULL, bulk);
	pr_text("  throughput   %.1f MB/s (bulk round), %.1f MB/s overall\n",
		bulk / 1e6, st[RDMAMIG_STAT_TOTAL_MS] ?
		st[RDMAMIG_STAT_BYTES] / 1e3 / st[RDMAMIG_STAT_TOTAL_MS] : 0.0);
	pr_u64("rounds", "  rounds       %llu", st[RDMAMIG_STAT_ROUNDS]);
	pr_bool("converged", NULL, m->converged);
	pr_text(" (%s)\n", m->converged ? "converged" : "max-rounds reached");
	pr_u32("throttle_pct", NULL, m->throttle_pct);
	if (m->throttle_pct)
		pr_text("  throttled    up to %u%% of the time (auto-converge)\n",
			m->throttle_pct);
	pr_u64("pages", "  pages sent   %llu", st[RDMAMIG_STAT_PAGES]);
	pr_u64("bytes", " (%llu bytes)\n", st[RDMAMIG_STAT_BYTES]);
	pr_u64("zero_pages", "  zero pages   %llu\n", st[RDMAMIG_STAT_ZERO_PAGES]);
	pr_u64("caps", NULL, s->caps);
	if (s->caps & RDMAMIG_CAP_PIN_ALL)
		pr_text("  pin-all      the destination registered all memory up front\n");
	if (s->caps & RDMAMIG_CAP_PULL)
		pr_text("  pull         the destination read every round (RDMA READ)\n");
	if (s->caps & RDMAMIG_CAP_AUTH)
		pr_text("  auth         the destination proved the shared secret\n");
	if (m->postcopy) {
		pr_bool("postcopy", NULL, m->switched);
		pr_u64("postcopy_owed", NULL, st[RDMAMIG_STAT_POSTCOPY_OWED]);
		pr_u64("postcopy_ms", NULL, st[RDMAMIG_STAT_POSTCOPY_MS]);
		pr_u64("postcopy_downtime_us", NULL, st[RDMAMIG_STAT_POSTCOPY_DOWNTIME_US]);
		pr_u64("resumes", m->resumes ? "  post-copy resumed %llu times\n" : NULL,
		       m->resumes);
	}
	if (m->switched)
		pr_text("  post-copy    %llu pages owed at the switch, all read %llu ms "
			"later; stopped to running %.1f ms\n",
			(unsigned long long)st[RDMAMIG_STAT_POSTCOPY_OWED],
			(unsigned long long)st[RDMAMIG_STAT_POSTCOPY_MS],
			st[RDMAMIG_STAT_POSTCOPY_DOWNTIME_US] / 1e3);
	pr_u64("setup_ms", NULL, st[RDMAMIG_STAT_SETUP_MS]);
	pr_u64("downtime_limit_ms", NULL, s->downtime_limit_ms);
	pr_u64("max_rounds", NULL, s->max_rounds);
	mig_print_rounds_json(m);
	if (have_sum) {
		snprintf(buf, sizeof(buf), "%#018" PRIx64, sum);
		pr_string("checksum", "checksum %s\n", buf);
	}
	pr_string("after", NULL, m->after == MIG_AFTER_KILL ? "killed" : "stopped");
	pr_text("pid %u %s\n", m->pid,
		m->after == MIG_AFTER_KILL ? "killed" : "left stopped");
}

/* ---- The command -------------------------------------------------------- */

/*
 * After COMPLETE: the process must not have run since its final dirty
 * set was read (bits only accumulate until the next clear).
 */
static int mig_verify_still(struct mig *m, uint64_t final_dirty)
{
	uint64_t now;
	char st = pm_state(m->pid);

	if (st != 'T' && st != 't') {
		rm_err("migrate: pid %d was continued during the final round "
		       "(state %c): the destination may differ", (int)m->pid,
		       st ? st : '?');
		return RM_EXIT_ERR;
	}
	if (pm_read_dirty(m->pagemap, &m->bl, &now))
		return RM_EXIT_ERR;
	if (now > final_dirty) {
		rm_err("migrate: pid %d wrote to its memory during the final round: "
		       "the destination may differ", (int)m->pid);
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int mig_run(struct mig *m)
{
	uint64_t final_dirty, sum = 0;
	bool again = true;
	struct pm_session s;
	char st;
	int ret;

	ret = rm_connect(m->rm);
	if (ret)
		return ret;
	if (!pm_exists(m->pid)) {
		rm_err("%s: no process with pid %d", m->object, (int)m->pid);
		return RM_EXIT_ERR;
	}
	if (!m->bl.n) {
		ret = pm_select(&m->bl, m->pid, m->object);
		if (ret)
			return ret;
	}
	m->mem = pm_open(m->pid, "mem", O_RDWR, m->object);
	if (m->mem < 0)
		return RM_EXIT_ERR;
	m->pagemap = pm_open(m->pid, "pagemap", O_RDONLY, m->object);
	if (m->pagemap < 0)
		return RM_EXIT_ERR;
	st = pm_state(m->pid);
	m->was_stopped = st == 'T' || st == 't';
	m->progress = isatty(STDERR_FILENO);

	pm_catch_signals();
	pr_open_object(NULL);
	mig_print_head(m);
	if (!pr_json() && pr_commit())
		return RM_EXIT_ERR;

	if (m->protect) {
		ret = mig_connect(m) ?: mig_protect(m);
		pr_close_object();
		return ret;
	}
	ret = mig_connect(m) ?: mig_check_postcopy(m) ?: mig_rounds(m);
	if (!ret)
		ret = pm_check_interrupted(m->object) ?:
		      mig_end_round(m, RDMAMIG_CMD_COMPLETE, "cannot complete the migration");
	/* After the switch, a failure (not a cancel) may be resumed. */
	while (ret && again && mig_may_resume(m))
		ret = mig_resume(m, &again);
	if (ret)
		return ret;
	final_dirty = m->rounds[m->nrounds - 1].pages_dirty;
	m->completed = true;
	m->stopped_us = pm_now_us() - m->stop_us;
	ret = pm_session_get(m->rm, m->id, &s);
	if (ret)
		return ret;
	if (m->checksum) {
		ret = pm_checksum(m->mem, &m->bl, &sum);
		if (ret)
			return ret;
	}
	ret = mig_verify_still(m, final_dirty);
	if (ret)
		return ret;
	if (m->after == MIG_AFTER_KILL && kill(m->pid, SIGKILL)) {
		rm_err("migrate: cannot kill pid %d: %s", (int)m->pid, strerror(errno));
		return RM_EXIT_ERR;
	}
	m->stopped = false;	/* it is the destination's now */
	mig_print_summary(m, &s, m->checksum, sum);
	pr_close_object();
	return RM_EXIT_OK;
}

/* What is left of a failed protect: the process runs on, here. */
static void prot_cleanup(struct mig *m, int ret)
{
	if (ret && m->started && pm_exists(m->pid) && !m->prot.lost)
		rm_err("protect: protection failed; pid %d runs on unprotected",
		       (int)m->pid);
}

static int mig_main(struct rm *rm, bool protect)
{
	struct mig m = { .rm = rm, .mem = -1, .pagemap = -1, .protect = protect,
			 .object = protect ? "protect" : "migrate" };
	int ret;

	if (protect) {
		m.prot.delay_ms = PROT_DELAY_MS;
		m.params.has_caps = true;
		m.params.caps |= RDMAMIG_CAP_MC;
	}
	ret = mig_parse(&m, rm);
	if (ret)
		return ret < 0 ? RM_EXIT_OK : ret;
	ret = mig_run(&m);
	/* Continues the process if the duty cycle was running. */
	pm_throttle_stop(&m.thr);
	/* Closing the socket ends the session (cancels it, if unfinished). */
	rm_nl_close(&rm->nl);
	secret_wipe(&m.params.secret);
	if (ret && pm_interrupted)
		pm_check_interrupted(m.object);
	if (protect) {
		prot_cleanup(&m, ret);
	} else if (ret && m.completed) {
		rm_err("migrate: pid %d was left stopped", (int)m.pid);
	} else if (ret && m.switched) {
		rm_err("migrate: pid %d was left stopped: the migration failed after the "
		       "switch to post-copy, and the twin may have run; continue it "
		       "(kill -CONT) only once the twin is gone", (int)m.pid);
	} else if (ret && (m.stopped || (m.started && pm_exists(m.pid)))) {
		/* Failed: the process goes on here, as if nothing happened. */
		if (mig_cont(&m) == RM_EXIT_OK)
			rm_err("migrate: migration failed; pid %d continues on this host",
			       (int)m.pid);
	}
	if (m.mem >= 0)
		close(m.mem);
	if (m.pagemap >= 0)
		close(m.pagemap);
	pm_free(&m.bl);
	free(m.rounds);
	prot_free(&m.prot);
	return ret;
}

int cmd_migrate(struct rm *rm)
{
	return mig_main(rm, false);
}

int cmd_protect(struct rm *rm)
{
	return mig_main(rm, true);
}
