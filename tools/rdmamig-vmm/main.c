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
 *                      [--channels N] [--postcopy[=N]] [--resume-wait SEC]
 *   rdmamig-vmm dest   --listen HOST:PORT [--port-file F] [--blocks N]
 *                      [--size MiB] [--pin-all] [--pull] [--max-registered BYTES]
 *                      [--timeout SEC] [--secret-file F | --no-auth] [--json]
 *                      [--prefill] [--postcopy [--guest-writes N]
 *                      [--fetch-window FAULT[,SWEEP]] [--resume-wait SEC]]
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
 * --postcopy asks (source) for, or allows (destination), post-copy: the
 * source ends with a switch instead of a final round (after N pre-copy
 * rounds; bare --postcopy: --rounds of them), the pages the destination
 * still lacks owed; the destination runs its guest at once and fetches
 * them on demand with userfaultfd(2) (postcopy.c), while a guest thread
 * reads and rewrites --guest-writes pages.  The usage text below and
 * Documentation/rdmamig-vmm.rst say more.
 *
 * Both ends need the same secret (--secret-file, or the file that
 * $RDMAMIG_SECRET_FILE names) unless both say --no-auth.
 *
 * Exit status: 0 success, 1 migration failed (the errno text and the
 * kernel's reason are printed), 2 usage, 3 destination: data or device
 * state differ.  With --mc, 0 too for a backup that failed over and for
 * a primary that lost its backup, once their guest ran on (mc.c).
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
		"       rdmamig-vmm --help\n");
	if (f == stderr) {
		fprintf(f, "Try 'rdmamig-vmm --help' for the options.\n");
		return;
	}
	fprintf(f,
		"\n"
		"An example VMM for /dev/rdmamig and a test tool.  The source fills\n"
		"--size MiB of \"guest RAM\" (--blocks blocks ram0, ram1, ...) with\n"
		"pseudo-random pages and zero pages and migrates it to the destination\n"
		"(same --blocks and --size): a bulk round, then --rounds rounds each\n"
		"after the guest re-dirtied --redirty %% of its pages, the last with the\n"
		"guest stopped; a device-state record after each round and the hash of\n"
		"every page as final device state.  The destination checks them all.\n"
		"\n"
		"Both ends:\n"
		"  --blocks N            RAM blocks (default 4)\n"
		"  --size MiB            total RAM (default 64)\n"
		"  --pin-all             want (source) / allow (dest) pinning all RAM\n"
		"  --pull                want (source) / allow (dest) pull mode: the\n"
		"                        destination reads each round with RDMA READ\n"
		"                        (both ends must say it; else the source writes)\n"
		"  --postcopy            want (source) / allow (dest) post-copy; see below\n"
		"  --memfd               back each RAM block with a memfd (shared memory)\n"
		"                        mapped twice: the mapping registered with the\n"
		"                        module and the guest's view; in post-copy the\n"
		"                        destination then reads owed pages in place and\n"
		"                        maps them with UFFDIO_CONTINUE (MINOR faults),\n"
		"                        with no staging copy\n"
		"  --max-registered B    bytes registered at once, dynamic mode\n"
		"  --keepalive MS        keepalive interval (both ends must set it)\n"
		"  --channels N          queue pairs: offered (source), allowed (dest),\n"
		"                        1 to 8 (default: the kernel's default)\n"
		"  --timeout SEC         connect/accept/idle timeout (default 60); in\n"
		"                        post-copy, also the longest time without progress\n"
		"  --secret-file F       the shared secret: F's bytes, 16 to 64 of them\n"
		"                        (default: the file $RDMAMIG_SECRET_FILE names)\n"
		"  --no-auth             no peer authentication (both ends must say it)\n"
		"  --json                one JSON line as summary\n"
		"  --resume-wait SEC     post-copy: when the session fails after the\n"
		"                        switch (not cancelled), resume it over a new\n"
		"                        connection (RDMAMIG_IOC_POSTCOPY_RESUME): the\n"
		"                        source reconnects to the same address for up\n"
		"                        to SEC s, the destination listens again on the\n"
		"                        same port for SEC s; the guest's faults wait.\n"
		"                        Use with --keepalive to see a cut link\n"
		"\n"
		"Source:\n"
		"  --zero-holes PCT      %% of pages that are zero (default 10)\n"
		"  --zero-layout L       where they are: holes (default): runs of 1-15\n"
		"                        pages written as zeros; regions: 2 MiB regions\n"
		"                        never written (a guest's untouched RAM)\n"
		"  --rounds R            rounds after the bulk one (default 3)\n"
		"  --redirty PCT         pages dirtied before each, and before a post-copy\n"
		"                        switch (default 5; 100: every page)\n"
		"  --postcopy[=N]        end with a switch to post-copy after N pre-copy\n"
		"                        rounds (the bulk one included) instead of a\n"
		"                        final round; N=0: no round at all, every page\n"
		"                        owed; bare --postcopy: N=R, the switch in the\n"
		"                        final round's place; =auto: after the first\n"
		"                        round (the bulk one aside) that dirtied no fewer\n"
		"                        pages than the one before, at most R rounds.\n"
		"                        A destination that does not allow it gets a\n"
		"                        final round after round N\n"
		"  --max-bandwidth B     bytes/s on the data path (pull: the windows\n"
		"                        offered); pull destination: its READs\n"
		"  --seed S              content seed (default 1; the destination's\n"
		"                        guest thread uses it too)\n"
		"  --retry SEC           retry CONNECT refused for SEC s\n"
		"\n"
		"Destination:\n"
		"  --port-file F         write the port listened on to F (with port 0)\n"
		"  --postcopy            allow post-copy; userfaultfd(2) is checked at\n"
		"                        start (root, or vm.unprivileged_userfaultfd=1)\n"
		"  --guest-writes N      post-copy: pages the guest thread reads, checks\n"
		"                        and rewrites while the owed pages arrive, half\n"
		"                        of them among the owed ones (default 256; 0: no\n"
		"                        guest thread)\n"
		"  --fetch-window F[,S]  post-copy: staging buffers of the fault thread\n"
		"                        (F, default 64K) and of the sweep (S, default\n"
		"                        256K), bytes with an optional K or M, page\n"
		"                        multiples up to 1M; a fault fetches the page and\n"
		"                        the owed pages after it in its chunk, as far as\n"
		"                        F and the module's fault_window allow\n"
		"  --sweep-threads N     post-copy: threads sweeping the pages not faulted,\n"
		"                        0 to 8 (default 2), each with its own --fetch-\n"
		"                        window buffer: more READ batches in flight; 0:\n"
		"                        no sweep, only faults fetch, so post-copy ends\n"
		"                        when the guest has touched every owed page (or\n"
		"                        never: for tests and for timing faults alone)\n"
		"  --sweep-nice N        post-copy: the sweep threads' nice value, 0 to\n"
		"                        19 (default 10): the higher, the sooner a fault's\n"
		"                        thread gets a CPU back from them\n"
		"  --timeline FILE       post-copy: write each fault (time, pages, service\n"
		"                        time) and each sweep step (time, pages) to FILE,\n"
		"                        a line each, for charts (make bench)\n"
		"\n"
		"Micro-checkpointing (RDMAMIG_CAP_MC):\n"
		"  --mc                  both ends: the source, after a bulk round, runs\n"
		"                        a guest thread and takes an epoch every\n"
		"                        --mc-delay ms (RDMAMIG_IOC_MC_EPOCH, guest\n"
		"                        stopped only while it runs); the destination\n"
		"                        is the backup, committing each epoch whole\n"
		"  --mc-delay MS         source: epoch length, 10 to 60000 (default 100)\n"
		"  --mc-epochs N         source: epochs, then COMPLETE (default 20)\n"
		"  --mc-rate P           pages the guest writes per second (default\n"
		"                        4000): the primary's, and the backup's after\n"
		"                        failover\n"
		"  --mc-failover         dest (the default with --mc): when the session\n"
		"                        fails (the primary lost: its death, its close,\n"
		"                        a keepalive timeout), and not by its own cancel,\n"
		"                        the backup checks its RAM is the committed epoch\n"
		"                        and runs the guest from it for --mc-run-ms;\n"
		"                        exit 0 when it ran\n"
		"  --no-mc-failover      dest: only check the RAM and exit 1\n"
		"  --mc-run-ms MS        how long the guest runs after failover (dest),\n"
		"                        or unprotected after the backup was lost\n"
		"                        (source; it then exits 0), 10 or more (default\n"
		"                        300)\n"
		"\n"
		"Tests:\n"
		"  --mc-exit-after N     source, --mc: exit at once after epoch N was\n"
		"                        taken (a primary dying mid-epoch)\n"
		"  --mc-bad-calls        source, --mc: before the first epoch, make\n"
		"                        MC_EPOCH calls with bad arguments; each must\n"
		"                        fail with EINVAL and take no epoch\n"
		"  --mc-cancel-after N   dest, --mc: cancel the session (RDMAMIG_IOC_CANCEL)\n"
		"                        as soon as epoch N is committed, the next one\n"
		"                        on its way\n"
		"  --prefill             dest: write 0xa5 to all RAM first and do not\n"
		"                        register it as fresh (zero pages must then be\n"
		"                        cleared, not skipped)\n"
		"  --stop-at POINT       source: stop (SIGSTOP) at POINT: connect (before\n"
		"                        CONNECT), connected (after it), between (after\n"
		"                        round 1), final (before COMPLETE, or before\n"
		"                        POSTCOPY), switched (after POSTCOPY, before\n"
		"                        COMPLETE), completed (after COMPLETE, before close)\n"
		"\n"
		"Post-copy: the source stops its guest, names every page the destination\n"
		"lacks (RDMAMIG_ROUND_POSTCOPY), writes the device state and switches\n"
		"(RDMAMIG_IOC_POSTCOPY).  The destination, on RDMAMIG_EVENT_POSTCOPY,\n"
		"reads the device state to its end, registers its RAM with userfaultfd\n"
		"(missing mode), discards the owed pages (RDMAMIG_IOC_OWED, MADV_DONTNEED)\n"
		"and runs three threads until RDMAMIG_EVENT_COMPLETED: one serving the\n"
		"guest's faults (RDMAMIG_IOC_FETCH at the fault, UFFDIO_COPY), a sweep\n"
		"fetching the rest (RDMAMIG_FETCH_SWEEP), and the guest.  It then checks\n"
		"every page against the source's hashes at the switch, or the guest's own\n"
		"writes, and that no page was placed twice.  The summary adds the\n"
		"kernel's post-copy counters (pages owed, faults, sweep pages, fault\n"
		"service p50/p99/max) and the VMM's own.\n"
		"\n"
		"Exit status: 0 success; 1 the migration failed (the errno text and the\n"
		"kernel's reason are printed); 2 usage; 3 destination: pages, device\n"
		"state or post-copy checks differ.  With --mc, 0 also for a backup\n"
		"that failed over and a primary that lost its backup, the guest having\n"
		"run on (\"failover\" and \"unprotected\" in the JSON summary).\n");
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
	OPT_ZERO_LAYOUT, OPT_PREFILL, OPT_MEMFD, OPT_PULL, OPT_POSTCOPY, OPT_GUEST_WRITES,
	OPT_FETCH_WINDOW, OPT_RESUME_WAIT, OPT_TIMELINE, OPT_SWEEP_THREADS, OPT_SWEEP_NICE,
	OPT_MC, OPT_MC_DELAY, OPT_MC_EPOCHS, OPT_MC_RATE, OPT_MC_EXIT_AFTER,
	OPT_MC_BAD, OPT_MC_CANCEL_AFTER, OPT_MC_RUN_MS, OPT_MC_FAILOVER,
	OPT_NO_MC_FAILOVER,
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
	{ "memfd", no_argument, NULL, OPT_MEMFD },
	{ "postcopy", optional_argument, NULL, OPT_POSTCOPY },
	{ "guest-writes", required_argument, NULL, OPT_GUEST_WRITES },
	{ "fetch-window", required_argument, NULL, OPT_FETCH_WINDOW },
	{ "timeline", required_argument, NULL, OPT_TIMELINE },
	{ "sweep-threads", required_argument, NULL, OPT_SWEEP_THREADS },
	{ "sweep-nice", required_argument, NULL, OPT_SWEEP_NICE },
	{ "resume-wait", required_argument, NULL, OPT_RESUME_WAIT },
	{ "mc", no_argument, NULL, OPT_MC },
	{ "mc-delay", required_argument, NULL, OPT_MC_DELAY },
	{ "mc-epochs", required_argument, NULL, OPT_MC_EPOCHS },
	{ "mc-rate", required_argument, NULL, OPT_MC_RATE },
	{ "mc-exit-after", required_argument, NULL, OPT_MC_EXIT_AFTER },
	{ "mc-bad-calls", no_argument, NULL, OPT_MC_BAD },
	{ "mc-cancel-after", required_argument, NULL, OPT_MC_CANCEL_AFTER },
	{ "mc-run-ms", required_argument, NULL, OPT_MC_RUN_MS },
	{ "mc-failover", no_argument, NULL, OPT_MC_FAILOVER },
	{ "no-mc-failover", no_argument, NULL, OPT_NO_MC_FAILOVER },
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

/* Bytes, with an optional K or M (binary): a page multiple up to 1 MiB. */
static int parse_window(const char *s, uint64_t *v)
{
	uint64_t shift = 0;
	char *end;

	if (!*s || *s == '-')
		return -1;
	*v = strtoull(s, &end, 0);
	if (*end == 'k' || *end == 'K')
		shift = 10, end++;
	else if (*end == 'm' || *end == 'M')
		shift = 20, end++;
	if (*end || *v > RDMAMIG_FETCH_MAX)
		return -1;
	*v <<= shift;
	return !*v || *v % page_size || *v > RDMAMIG_FETCH_MAX ? -1 : 0;
}

static int parse_fetch_window(const char *arg, struct vmm_opts *o)
{
	char buf[64], *comma;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	comma = strchr(buf, ',');
	if (comma) {
		*comma = 0;
		if (parse_window(comma + 1, &o->sweep_buf))
			return -1;
	}
	return parse_window(buf, &o->fault_buf);
}

static int parse_opt(int c, const char *arg, struct vmm_opts *o, bool *addr,
		     bool *pc_rounds)
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
		    strcmp(arg, "switched") && strcmp(arg, "completed"))
			return -1;
		o->stop_at = arg;
		return o->source ? 0 : -1;
	case OPT_PREFILL:
		/* A source's RAM is its content: nothing to prefill there. */
		o->prefill = true;
		return o->source ? -1 : 0;
	case OPT_MEMFD:
		o->memfd = true;
		return 0;
	case OPT_POSTCOPY:
		o->postcopy = true;
		if (!arg)
			return 0;
		/* How many rounds before the switch is the source's choice. */
		*pc_rounds = true;
		if (o->source && !strcmp(arg, "auto")) {
			o->postcopy_auto = true;
			return 0;
		}
		return o->source ? parse_uint(arg, &o->postcopy_rounds, 100000) : -1;
	case OPT_GUEST_WRITES:
		return o->source ? -1 : parse_u64(arg, &o->guest_writes);
	case OPT_FETCH_WINDOW:
		return o->source ? -1 : parse_fetch_window(arg, o);
	case OPT_RESUME_WAIT:
		return parse_uint(arg, &o->resume_wait_s, 3600);
	case OPT_SWEEP_THREADS:
		return o->source ? -1 : parse_uint(arg, &o->sweep_threads, 8);
	case OPT_SWEEP_NICE:
		return o->source ? -1 : parse_uint(arg, &o->sweep_nice, 19);
	case OPT_TIMELINE:
		if (o->source)
			return -1;
		o->timeline = arg;
		return 0;
	case OPT_MC:
		o->mc = true;
		return 0;
	case OPT_MC_DELAY:
		/* QEMU's mc-delay: 100 ms by default, down to 10 ms. */
		if (!o->source || parse_uint(arg, &o->mc_delay_ms, 60000) ||
		    o->mc_delay_ms < 10)
			return -1;
		return 0;
	case OPT_MC_EPOCHS:
		return o->source ? parse_uint(arg, &o->mc_epochs, 1000000) : -1;
	case OPT_MC_RATE:
		/* The backup's guest, after failover, writes at this rate too. */
		return parse_u64(arg, &o->mc_rate);
	case OPT_MC_RUN_MS:
		return parse_uint(arg, &o->mc_run_ms, 3600000) || o->mc_run_ms < 10 ? -1 : 0;
	case OPT_MC_FAILOVER:
	case OPT_NO_MC_FAILOVER:
		o->mc_failover = c == OPT_MC_FAILOVER;
		return o->source ? -1 : 0;
	case OPT_MC_EXIT_AFTER:
		return o->source ? parse_uint(arg, &o->mc_exit_after, 1000000) : -1;
	case OPT_MC_BAD:
		o->mc_bad_calls = true;
		return o->source ? 0 : -1;
	case OPT_MC_CANCEL_AFTER:
		return o->source ? -1 : parse_uint(arg, &o->mc_cancel_after, 1000000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct vmm_opts o = {
		.nblocks = 4, .size_mib = 64, .zero_pct = 10, .rounds = 3,
		.redirty_pct = 5, .seed = 1, .timeout_s = 60,
		.guest_writes = 256, .fault_buf = 64 << 10, .sweep_threads = 2,
		.sweep_nice = 10,
		.sweep_buf = 256 << 10,
		.mc_delay_ms = 100, .mc_epochs = 20, .mc_rate = 4000,
		.mc_run_ms = 300, .mc_failover = true,
	};
	bool addr = false, pc_rounds = false;
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
		if (c == '?' || parse_opt(c, optarg, &o, &addr, &pc_rounds)) {
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
	/*
	 * Bare --postcopy: the switch takes the final round's place; =auto:
	 * as soon as a round does not shrink, --rounds at most.
	 */
	if (o.postcopy && (!pc_rounds || o.postcopy_auto))
		o.postcopy_rounds = o.rounds;
	if (o.mc && (o.postcopy || o.pull)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (o.mc)
		return o.source ? run_source_mc(&o) : run_dest_mc(&o);
	return o.source ? run_source(&o) : run_dest(&o);
}
