// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamig-vmm: an example VMM for /dev/rdmamig, and a test tool.
 *
 *   rdmamig-vmm source --connect HOST:PORT [--blocks N] [--size MiB]
 *                      [--zero-holes PCT] [--zero-layout holes|regions]
 *                      [--rounds R] [--redirty PCT]
 *                      [--pin-all] [--pull] [--max-bandwidth BYTES/S]
 *                      [--max-registered BYTES] [--seed S] [--retry SEC]
 *                      [--timeout SEC] [--secret-file F | --no-auth] [--json]
 *                      [--channels N]
 *   rdmamig-vmm dest   --listen HOST:PORT [--port-file F] [--blocks N]
 *                      [--size MiB] [--pin-all] [--pull] [--max-registered BYTES]
 *                      [--timeout SEC] [--secret-file F | --no-auth] [--json]
 *                      [--prefill]
 *
 * The source fills --size MiB of "guest RAM" (--blocks blocks named
 * ram0, ram1, ...) with pseudo-random data and zero pages, and migrates
 * it: a bulk round, then --rounds rounds each after the guest re-dirtied
 * --redirty % of its pages, the last one with the guest stopped
 * (RDMAMIG_ROUND_FINAL), with a device-state record after every round
 * and the hash of every page as final device state.  The destination
 * (same --blocks and --size) checks the records and every page.
 *
 * --zero-holes % of the pages are zero, laid out as --zero-layout says:
 * "holes" (the default), runs of 1 to 15 zero pages written as zeros
 * amid random ones, every page with memory of its own: the worst case;
 * "regions", aligned 2 MiB regions (what a huge page covers) that are
 * never written at all, as a guest leaves memory it never touched: the
 * mapping stays unpopulated there.
 *
 * The destination's RAM is a fresh anonymous mapping, so it registers its
 * blocks as RDMAMIG_BLOCK_FRESH: the source then does not send the zero
 * pages it never wrote there (stats.zero_skipped).  --prefill, for tests,
 * writes 0xa5 to every byte of it first and leaves the flag off, so that
 * every zero page must really be cleared for the check to pass.
 *
 * --pull asks (source) for, or allows (destination), pull mode: each
 * round is read by the destination with RDMA READ from pages the source
 * registered; stats.caps then has RDMAMIG_CAP_PULL on both ends.
 *
 * Both ends need the same secret (--secret-file, or the file that
 * $RDMAMIG_SECRET_FILE names) unless both say --no-auth.
 *
 * Exit status: 0 success, 1 migration failed (the errno text and the
 * kernel's reason are printed), 2 usage, 3 destination: data or device
 * state differ.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rdmamig-vmm source --connect HOST:PORT [options]\n"
		"       rdmamig-vmm dest --listen HOST:PORT [--port-file F] [options]\n"
		"options:\n"
		"  --blocks N            RAM blocks (default 4)\n"
		"  --size MiB            total RAM (default 64)\n"
		"  --zero-holes PCT      source: %% of pages that are zero (default 10)\n"
		"  --zero-layout L       source: where they are: holes (default): runs\n"
		"                        of 1-15 pages written as zeros; regions: 2 MiB\n"
		"                        regions never written (a guest's untouched RAM)\n"
		"  --rounds R            source: rounds after the bulk one (default 3)\n"
		"  --redirty PCT         source: pages dirtied before each (default 5)\n"
		"  --pin-all             want (source) / allow (dest) pinning all RAM\n"
		"  --pull                want (source) / allow (dest) pull mode: the\n"
		"                        destination reads each round with RDMA READ\n"
		"                        (both ends must say it; else the source writes)\n"
		"  --max-bandwidth B     source: bytes/s on the data path (pull: the\n"
		"                        windows offered); pull destination: its READs\n"
		"  --max-registered B    bytes registered at once, dynamic mode\n"
		"  --keepalive MS        keepalive interval (both ends must set it)\n"
		"  --channels N          queue pairs: offered (source), allowed (dest),\n"
		"                        1 to 8 (default: the kernel's default)\n"
		"  --seed S              source: content seed (default 1)\n"
		"  --retry SEC           source: retry CONNECT refused for SEC s\n"
		"  --timeout SEC         connect/accept/idle timeout (default 60)\n"
		"  --secret-file F       the shared secret: F's bytes, 16 to 64 of them\n"
		"                        (default: the file $RDMAMIG_SECRET_FILE names)\n"
		"  --no-auth             no peer authentication (both ends must say it)\n"
		"  --json                one JSON line as summary\n"
		"  --prefill             dest, for tests: write 0xa5 to all RAM first and\n"
		"                        do not register it as fresh (zero pages must then\n"
		"                        be cleared, not skipped)\n"
		"  --stop-at POINT       source, for tests: stop (SIGSTOP) at POINT:\n"
		"                        connect (before CONNECT), connected (after it),\n"
		"                        between (after round 1), final (before COMPLETE),\n"
		"                        completed (after COMPLETE, before close)\n");
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	*v = strtoull(s, &end, 0);
	return *end ? -1 : 0;
}

static int parse_uint(const char *s, unsigned int *v, unsigned int max)
{
	uint64_t x;

	if (parse_u64(s, &x) || x > max)
		return -1;
	*v = x;
	return 0;
}

/* HOST:PORT or [IPV6]:PORT; the kernel parses the address literal. */
static int parse_hostport(const char *s, struct vmm_opts *o)
{
	const char *colon, *host = s;
	size_t len;
	uint64_t port;

	if (*s == '[') {
		colon = strstr(s, "]:");
		host = s + 1;
		len = colon ? (size_t)(colon - host) : 0;
		colon = colon ? colon + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		len = colon ? (size_t)(colon - s) : 0;
	}
	if (!colon || !len || len >= sizeof(o->host) ||
	    parse_u64(colon + 1, &port) || port > 65535)
		return -1;
	memcpy(o->host, host, len);
	o->host[len] = 0;
	o->port = port;
	return 0;
}

enum {
	OPT_CONNECT = 256, OPT_LISTEN, OPT_PORT_FILE, OPT_BLOCKS, OPT_SIZE,
	OPT_ZERO, OPT_ROUNDS, OPT_REDIRTY, OPT_PIN_ALL, OPT_BW, OPT_MAXREG,
	OPT_SEED, OPT_RETRY, OPT_TIMEOUT, OPT_JSON, OPT_HELP, OPT_KEEPALIVE,
	OPT_SECRET_FILE, OPT_NO_AUTH, OPT_CHANNELS, OPT_STOP_AT,
	OPT_ZERO_LAYOUT, OPT_PREFILL, OPT_PULL,
};

static const struct option long_opts[] = {
	{ "connect", required_argument, NULL, OPT_CONNECT },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "blocks", required_argument, NULL, OPT_BLOCKS },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "zero-holes", required_argument, NULL, OPT_ZERO },
	{ "zero-layout", required_argument, NULL, OPT_ZERO_LAYOUT },
	{ "rounds", required_argument, NULL, OPT_ROUNDS },
	{ "redirty", required_argument, NULL, OPT_REDIRTY },
	{ "pin-all", no_argument, NULL, OPT_PIN_ALL },
	{ "pull", no_argument, NULL, OPT_PULL },
	{ "max-bandwidth", required_argument, NULL, OPT_BW },
	{ "max-registered", required_argument, NULL, OPT_MAXREG },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "retry", required_argument, NULL, OPT_RETRY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "no-auth", no_argument, NULL, OPT_NO_AUTH },
	{ "channels", required_argument, NULL, OPT_CHANNELS },
	{ "stop-at", required_argument, NULL, OPT_STOP_AT },
	{ "prefill", no_argument, NULL, OPT_PREFILL },
	{ NULL, 0, NULL, 0 },
};

/* Not long_opts[c - OPT_CONNECT]: the table is not in the enum's order. */
static const char *opt_name(int c)
{
	const struct option *opt;

	for (opt = long_opts; opt->name; opt++)
		if (opt->val == c)
			return opt->name;
	return "?";
}

static int parse_opt(int c, const char *arg, struct vmm_opts *o, bool *addr)
{
	switch (c) {
	case OPT_CONNECT:
	case OPT_LISTEN:
		if ((c == OPT_CONNECT) != o->source)
			return -1;
		*addr = true;
		return parse_hostport(arg, o);
	case OPT_PORT_FILE:
		o->port_file = arg;
		return o->source ? -1 : 0;
	case OPT_BLOCKS:
		return parse_uint(arg, &o->nblocks, 1024);
	case OPT_SIZE:
		return parse_u64(arg, &o->size_mib);
	case OPT_ZERO:
		return parse_uint(arg, &o->zero_pct, 100);
	case OPT_ZERO_LAYOUT:
		/* Ignored by the destination, like the other content options. */
		if (!strcmp(arg, "holes"))
			o->zero_layout = ZERO_HOLES;
		else if (!strcmp(arg, "regions"))
			o->zero_layout = ZERO_REGIONS;
		else
			return -1;
		return 0;
	case OPT_ROUNDS:
		return parse_uint(arg, &o->rounds, 100000);
	case OPT_REDIRTY:
		return parse_uint(arg, &o->redirty_pct, 100);
	case OPT_PULL:
		o->pull = true;
		return 0;
	case OPT_PIN_ALL:
		o->pin_all = true;
		return 0;
	case OPT_BW:
		return parse_u64(arg, &o->max_bandwidth);
	case OPT_MAXREG:
		return parse_u64(arg, &o->max_registered);
	case OPT_KEEPALIVE:
		return parse_u64(arg, &o->keepalive_ms);
	case OPT_SEED:
		return parse_u64(arg, &o->seed);
	case OPT_RETRY:
		return parse_uint(arg, &o->retry_s, 3600);
	case OPT_TIMEOUT:
		return parse_uint(arg, &o->timeout_s, 3600);
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_SECRET_FILE:
		o->secret_file = arg;
		return 0;
	case OPT_NO_AUTH:
		o->no_auth = true;
		return 0;
	case OPT_CHANNELS:
		o->channels_set = true;
		return parse_uint(arg, &o->channels, 1000);
	case OPT_STOP_AT:
		if (strcmp(arg, "connect") && strcmp(arg, "connected") &&
		    strcmp(arg, "between") && strcmp(arg, "final") &&
		    strcmp(arg, "completed"))
			return -1;
		o->stop_at = arg;
		return o->source ? 0 : -1;
	case OPT_PREFILL:
		/* A source's RAM is its content: nothing to prefill there. */
		o->prefill = true;
		return o->source ? -1 : 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct vmm_opts o = {
		.nblocks = 4, .size_mib = 64, .zero_pct = 10, .rounds = 3,
		.redirty_pct = 5, .seed = 1, .timeout_s = 60,
	};
	bool addr = false;
	long ps = sysconf(_SC_PAGESIZE);
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "source") && strcmp(argv[1], "dest")) {
		usage(stderr);
		return EXIT_USAGE;
	}
	o.source = !strcmp(argv[1], "source");
	if (ps > 0)
		page_size = ps;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			return 0;
		}
		if (c == '?' || parse_opt(c, optarg, &o, &addr)) {
			if (c != '?')
				fprintf(stderr, "rdmamig-vmm: bad option --%s %s\n",
					opt_name(c), optarg ? optarg : "");
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || !addr || !o.nblocks || !o.timeout_s ||
	    (o.no_auth && o.secret_file)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return o.source ? run_source(&o) : run_dest(&o);
}
