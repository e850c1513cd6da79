// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl monitor: the rdmamig module's events as they happen.  It
 * joins the family's multicast group "events" and prints every state
 * change (EVENT_STATE) and every end of a round (EVENT_ROUND), one line
 * each (one JSON object with -j), until it is interrupted, --count events
 * were printed or --timeout seconds passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <linux/rdmamig.h>

#include "attrs.h"
#include "print.h"
#include "rdmamigctl.h"

#define MON_STATE	(1U << 0)
#define MON_ROUND	(1U << 1)
#define MON_MC		(1U << 2)

struct monitor {
	unsigned int events;	/* MON_*: what to print */
	uint32_t count;		/* stop after so many; 0: never */
	uint32_t timeout_s;	/* give up after so long; 0: never */
	uint32_t seen;		/* printed so far */
};

static volatile sig_atomic_t monitor_stop;

/* The clock of the timestamps (tests set their own). */
static int (*monitor_clock)(clockid_t clk, struct timespec *ts) = clock_gettime;

static void monitor_signal(int sig)
{
	(void)sig;
	monitor_stop = 1;
}

/* Local time with milliseconds, ISO 8601: 2025-01-31T12:34:56.789+0100 */
static void monitor_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char date[32], zone[16];

	monitor_clock(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm);
	snprintf(buf, len, "%s.%03ld%s", date, ts.tv_nsec / 1000000, zone);
}

static int monitor_print(uint8_t cmd, struct nlattr **tb)
{
	char now[64];
	struct nlattr *a;

	monitor_time(now, sizeof(now));
	pr_open_object(NULL);
	pr_string("time", "%s", now);
	pr_string("event", NULL, cmd == RDMAMIG_CMD_EVENT_STATE ? "state" :
				 cmd == RDMAMIG_CMD_EVENT_ROUND ? "round" : "mc");
	pr_u32("id", " session %u", nla_get_u32(tb[RDMAMIG_ATTR_SESSION_ID]));
	pr_string("role", " %s", attr_role_name(nla_get_u32(tb[RDMAMIG_ATTR_ROLE])));
	if ((a = tb[RDMAMIG_ATTR_STATE]))
		pr_string("state", cmd == RDMAMIG_CMD_EVENT_STATE ? " state %s" : NULL,
			  attr_state_name(nla_get_u32(a)));
	if (cmd != RDMAMIG_CMD_EVENT_STATE) {
		pr_text(cmd == RDMAMIG_CMD_EVENT_ROUND ? " round" : " epoch");
		if ((a = tb[RDMAMIG_ATTR_CAPS]))
			attr_print_caps("caps", nla_get_u64(a));
		/* An epoch's line has the checkpointing figures too. */
		if ((a = tb[RDMAMIG_ATTR_STATS]) &&
		    attr_print_stats(a, "", cmd == RDMAMIG_CMD_EVENT_MC)) {
			rm_err("malformed event from the kernel");
			return RM_EXIT_ERR;
		}
	}
	if ((a = tb[RDMAMIG_ATTR_ERROR]))
		attr_print_error((int32_t)nla_get_u32(a));
	if ((a = tb[RDMAMIG_ATTR_REASON])) {
		pr_string("reason", NULL, nla_get_string(a));
		if (*nla_get_string(a))
			pr_text(" reason \"%s\"", nla_get_string(a));
	}
	pr_text("\n");
	pr_close_object();
	/* Out at once: whoever reads it waits for it. */
	return pr_commit();
}

static int monitor_event(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct monitor *m = arg;
	unsigned int type;
	int ret;

	if (m->count && m->seen >= m->count)
		return RM_EXIT_OK;	/* done: the rest of the batch is not ours */
	if (cmd == RDMAMIG_CMD_EVENT_STATE)
		type = MON_STATE;
	else if (cmd == RDMAMIG_CMD_EVENT_ROUND)
		type = MON_ROUND;
	else if (cmd == RDMAMIG_CMD_EVENT_MC)
		type = MON_MC;
	else
		return RM_EXIT_OK;	/* a newer module's */
	if (!(m->events & type))
		return RM_EXIT_OK;
	if (!tb[RDMAMIG_ATTR_SESSION_ID] || !tb[RDMAMIG_ATTR_ROLE]) {
		rm_err("incomplete event from the kernel");
		return RM_EXIT_ERR;
	}
	ret = monitor_print(cmd, tb);
	if (ret)
		return ret;
	m->seen++;
	return RM_EXIT_OK;
}

static int monitor_help(struct rm *rm);

/* The option getopt_long() refused, as the user wrote it. */
static int monitor_bad_option(int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char opt[3] = "-?";

	if (optopt && strncmp(arg, "--", 2)) {
		opt[1] = (char)optopt;
		arg = opt;
	}
	if (c == ':')
		return rm_usage_err("monitor", "option '%s' needs a value", arg);
	return rm_usage_err("monitor", "invalid option '%s'", arg);
}

/*
 * Options anywhere among the words (main() leaves them all to us, -j and
 * -p after "monitor" too), then the event types.  -1: help was printed.
 */
static int monitor_args(struct rm *rm, struct monitor *m)
{
	enum { OPT_COUNT = 256, OPT_TIMEOUT };
	static const struct option opts[] = {
		{ "count",	required_argument,	NULL, OPT_COUNT },
		{ "timeout",	required_argument,	NULL, OPT_TIMEOUT },
		{ "json",	no_argument,		NULL, 'j' },
		{ "pretty",	no_argument,		NULL, 'p' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 },
	};
	static const struct rm_cmd types[] = {
		{ .name = "all" },
		{ .name = "state" },
		{ .name = "round" },
		{ .name = "mc" },
		{ .name = "help" },
		{ .name = NULL },
	};
	const struct rm_cmd *t;
	uint32_t *v;
	int c, nmatch;

	/* The object's word stands in for argv[0]. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(rm->argc + 1, rm->argv - 1, ":jph", opts,
				NULL)) != -1) {
		switch (c) {
		case OPT_COUNT:
		case OPT_TIMEOUT:
			v = c == OPT_COUNT ? &m->count : &m->timeout_s;
			if (attr_parse_u32(optarg, v) || !*v)
				return rm_usage_err("monitor",
						    "invalid --%s '%s': expected a number from 1",
						    c == OPT_COUNT ? "count" : "timeout",
						    optarg);
			break;
		case 'j':
			rm->json = true;
			break;
		case 'p':
			rm->json = rm->pretty = true;
			break;
		case 'h':
			return monitor_help(rm) ?: -1;
		default:
			return monitor_bad_option(c, rm->argv - 1);
		}
	}
	/* getopt_long() moved the other words behind the options. */
	rm->argv += optind - 1;
	rm->argc -= optind - 1;

	for (; rm_arg(rm); rm_shift(rm)) {
		t = rm_lookup(types, rm_arg(rm), &nmatch);
		if (!t)
			return rm_usage_err("monitor", "unknown event type '%s'",
					    rm_arg(rm));
		if (t == &types[4])
			return monitor_help(rm) ?: -1;
		m->events |= t == &types[0] ? MON_STATE | MON_ROUND | MON_MC :
			     t == &types[1] ? MON_STATE :
			     t == &types[2] ? MON_ROUND : MON_MC;
	}
	if (!m->events)
		m->events = MON_STATE | MON_ROUND | MON_MC;
	pr_init(rm->json, rm->pretty);
	return RM_EXIT_OK;
}

/* The time left until deadline, or false if there is none left. */
static bool monitor_left(const struct timespec *deadline, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = deadline->tv_sec - now.tv_sec;
	left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_nsec += 1000000000L;
		left->tv_sec--;
	}
	return left->tv_sec >= 0;
}

/*
 * Wait for the events with the signals that end the monitor blocked but
 * in ppoll(), so that none comes between the check and the wait.
 */
static int monitor_loop(struct rm *rm, struct monitor *m, const sigset_t *wait_mask)
{
	struct pollfd pfd = { .fd = rm_nl_fd(&rm->nl), .events = POLLIN };
	struct timespec deadline, left;
	int n, ret;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += m->timeout_s;
	while (!m->count || m->seen < m->count) {
		if (monitor_stop)
			return RM_EXIT_OK;
		if (m->timeout_s && !monitor_left(&deadline, &left)) {
			if (!m->count)
				return RM_EXIT_OK;
			rm_err("monitor: %u of %u events after %u s", m->seen,
			       m->count, m->timeout_s);
			return RM_EXIT_ERR;
		}
		n = ppoll(&pfd, 1, m->timeout_s ? &left : NULL, wait_mask);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rm_err("monitor: cannot wait for events: %s", strerror(errno));
			return RM_EXIT_ERR;
		}
		if (n == 0)
			continue;
		ret = rm_nl_events(&rm->nl, monitor_event, m);
		if (ret)
			return ret;
	}
	return RM_EXIT_OK;
}

static int monitor_run(struct rm *rm)
{
	struct monitor m = { 0 };
	struct sigaction sa = { .sa_handler = monitor_signal };
	sigset_t block, orig;
	int ret;

	ret = monitor_args(rm, &m);
	if (ret)
		return ret < 0 ? RM_EXIT_OK : ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	ret = rm_nl_subscribe(&rm->nl, RDMAMIG_MCGRP_EVENTS);
	if (ret)
		return ret;
	/* Readers of a pipe see each event as it comes. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigdelset(&orig, SIGINT);
	sigdelset(&orig, SIGTERM);

	ret = monitor_loop(rm, &m, &orig);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return ret;
}

static int monitor_help(struct rm *rm)
{
	(void)rm;
	fputs("Usage: rdmamigctl [-j | -p] monitor [all | state | round | mc]...\n"
	      "                  [--count N] [--timeout SEC]\n"
	      "       rdmamigctl monitor help\n"
	      "\n"
	      "Print the events of the rdmamig module's sessions as they happen,\n"
	      "one line each, until interrupted (SIGINT, SIGTERM: exit status 0):\n"
	      "    TIME session ID ROLE state STATE [error ERRNO (TEXT)] [reason \"WHY\"]\n"
	      "    TIME session ID ROLE round caps CAPS bytes SIZE pages N zero-pages N\n"
	      "        rounds N throughput RATE\n"
	      "    TIME session ID ROLE epoch caps CAPS ... (the same statistics,\n"
	      "        with the checkpointing ones: mc-epochs, mc-acked, ...)\n"
	      "TIME is the local time, ISO 8601 with milliseconds.\n"
	      "    state           state changes only\n"
	      "    round           ends of rounds only\n"
	      "    mc              checkpointing epochs only: acknowledged by the\n"
	      "                    backup (source), committed (destination)\n"
	      "    all             all three (the default)\n"
	      "    --count N       exit after N events (status 0)\n"
	      "    --timeout SEC   exit after SEC seconds: status 1 if --count\n"
	      "                    events were not seen by then, else 0\n"
	      "Any user may monitor.\n"
	      "\n"
	      "JSON: one object per line:\n"
	      "  {\"time\": STRING, \"event\": \"state\" | \"round\" | \"mc\",\n"
	      "   \"id\": NUMBER, \"role\": STRING, \"state\": STRING, \"caps\": [NAME...]\n"
	      "   (round, mc), \"stats\": {...} (round, mc: as in session show),\n"
	      "   \"error\": ERRNO,\n"
	      "   \"error_text\": STRING (if error), \"reason\": STRING}\n",
	      stdout);
	return RM_EXIT_OK;
}

int cmd_monitor(struct rm *rm)
{
	return monitor_run(rm);
}
