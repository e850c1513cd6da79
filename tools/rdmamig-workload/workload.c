// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamig-workload: a process whose memory 'rdmamigctl migrate' moves.
 *
 *   rdmamig-workload --size MIB --rate MBPS [--addr ADDR] [--twin]
 *                    [--seed S] [--zero-pct N] [--heartbeat FILE]
 *                    [--pid-file FILE] [--udp PORT]
 *
 * Maps MIB MiB of anonymous memory at ADDR (MAP_FIXED_NOREPLACE), so that
 * a twin started the same way on another host has the same layout; fills
 * it with pseudo-random data, N% of the pages zero; then writes random
 * pages with random data at MBPS MB/s (10^6 bytes) forever, and prints a
 * heartbeat line every second:
 *
 *   heartbeat N pages_written W
 *
 * The state of the loop (the counters and the random generator) lives in
 * the first page of the region, so it migrates with the memory.  --twin
 * maps the region and stops itself (SIGSTOP) before touching it; once
 * 'rdmamigctl incoming' filled it and continued it, the twin runs the
 * same loop from the migrated state: its heartbeats carry on from the
 * source's count, which proves the memory arrived and the twin runs.
 *
 * The first line on stdout is "pid PID" (or the pid goes to --pid-file,
 * written whole and renamed); heartbeats go to stdout, line-buffered, or
 * are appended to --heartbeat FILE.
 *
 * --udp PORT: it also answers every datagram to UDP PORT (any address)
 * with "reply N TAG", N counting the datagrams answered since the start, kept
 * in the first page, TAG the datagram's first 32 bytes: a server whose
 * state a checkpoint holds, so that a
 * client can tell whether a failover took back a reply it saw
 * (selftests/rdmamig/mc_netbuf_test.sh).  A twin answers once continued.
 *
 * Transparent huge pages are disabled for the region (MADV_NOHUGEPAGE):
 * soft-dirty tracking would otherwise dirty 2 MiB per write.
 *
 * Exit status: 0 never (it runs until killed), 1 on an error, 2 on a bad
 * command line, 3 when a twin was continued without migrated state.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE		4096UL
#define MAGIC		0x444c4b524f574d52ULL	/* "RMWORKLD" */
#define TICK_NS		10000000L		/* write every 10 ms */
#define DEFAULT_ADDR	0x7e0000000000UL

/* Page 0 of the region: everything the loop needs, so it migrates. */
struct state {
	uint64_t magic;
	uint64_t npages;	/* of the region, this page included */
	uint64_t seed;
	uint64_t rng;		/* xorshift64* */
	uint64_t heartbeat;	/* heartbeats printed */
	uint64_t pages_written;	/* by the loop, since the start */
	uint64_t rate_bps;	/* bytes per second */
	uint64_t zero_pct;
	uint64_t replies;	/* --udp: datagrams answered */
};

static struct {
	uint64_t size_mib;
	double rate_mbps;
	uintptr_t addr;
	int twin;
	uint64_t seed;
	unsigned int zero_pct;
	const char *heartbeat;
	const char *pid_file;
	unsigned int udp_port;
} opt = {
	.size_mib = 256,
	.addr = DEFAULT_ADDR,
	.seed = 1,
	.zero_pct = 10,
};

static int hb_fd = STDOUT_FILENO;
static int udp_fd = -1;

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("rdmamig-workload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(int status)
{
	fputs("Usage: rdmamig-workload --size MIB --rate MBPS [--addr ADDR] [--twin]\n"
	      "                        [--seed S] [--zero-pct N] [--heartbeat FILE]\n"
	      "                        [--pid-file FILE] [--udp PORT]\n"
	      "\n"
	      "Map MIB MiB at ADDR (default 0x7e0000000000), fill them (N% zero pages,\n"
	      "default 10) and write random pages at MBPS MB/s forever, printing\n"
	      "\"heartbeat N pages_written W\" every second.  --twin: map the region and\n"
	      "stop (SIGSTOP) before touching it; once continued with migrated memory,\n"
	      "carry on from the migrated state.  --udp PORT: answer each datagram to\n"
	      "PORT with \"reply N TAG\", N counting the answers (kept in the region),\n"
	      "TAG the datagram's first 32 bytes.\n",
	      status ? stderr : stdout);
	exit(status);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void fill_page(struct state *st, uint64_t *page, int zero)
{
	unsigned int i;

	if (zero) {
		memset(page, 0, PAGE);
		return;
	}
	for (i = 0; i < PAGE / sizeof(uint64_t); i++)
		page[i] = rng_next(&st->rng);
}

static void *page_at(struct state *st, uint64_t n)
{
	return (char *)st + n * PAGE;
}

static void say(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write() per line: a reader never sees half of one. */
	if (write(fd, line, n) != n && fd != STDOUT_FILENO)
		die("cannot write the heartbeat: %s", strerror(errno));
}

static void write_pid(void)
{
	char tmp[4096];
	FILE *f;

	if (!opt.pid_file) {
		say(STDOUT_FILENO, "pid %d\n", (int)getpid());
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt.pid_file);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) ||
	    rename(tmp, opt.pid_file))
		die("cannot write %s: %s", opt.pid_file, strerror(errno));
}

static void udp_open(void)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(opt.udp_port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};

	udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (udp_fd < 0 || bind(udp_fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("cannot bind UDP port %u: %s", opt.udp_port, strerror(errno));
}

/* Answer the datagrams waiting, each with the count of answers so far. */
static void udp_serve(struct state *st)
{
	struct sockaddr_storage from;
	char buf[32], reply[64];
	socklen_t flen;
	int n;

	for (;;) {
		flen = sizeof(from);
		n = recvfrom(udp_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		st->replies++;
		/* The request's own words after the count: the client's tag. */
		n = snprintf(reply, sizeof(reply), "reply %" PRIu64 " %.*s", st->replies,
			     (int)(n > 0 ? n : 0), buf);
		sendto(udp_fd, reply, n, 0, (struct sockaddr *)&from, flen);
	}
}

/* Sleep a tick, or less to answer datagrams as they come. */
static void tick(struct state *st)
{
	struct timespec ts = { .tv_nsec = TICK_NS };
	struct pollfd pfd = { .fd = udp_fd, .events = POLLIN };
	uint64_t end = now_ns() + TICK_NS, t;

	if (udp_fd < 0) {
		nanosleep(&ts, NULL);
		return;
	}
	while ((t = now_ns()) < end) {
		if (poll(&pfd, 1, (int)((end - t + 999999) / 1000000)) > 0)
			udp_serve(st);
	}
}

/* Write random pages at the rate and beat every second, forever. */
static void run(struct state *st)
{
	uint64_t npages = st->npages, t0 = now_ns(), next_hb = t0 + 1000000000ULL;
	uint64_t done = 0, due, per_s = st->rate_bps / PAGE;

	for (;;) {
		uint64_t t = now_ns();

		due = (uint64_t)((double)(t - t0) * st->rate_bps / 1e9 / PAGE);
		/* After a stop, no burst: at most a second behind. */
		if (due > done + per_s)
			done = due - per_s;
		for (; done < due && npages > 1; done++) {
			uint64_t n = 1 + rng_next(&st->rng) % (npages - 1);

			fill_page(st, page_at(st, n), 0);
			st->pages_written++;
		}
		if (t >= next_hb) {
			st->heartbeat++;
			say(hb_fd, "heartbeat %" PRIu64 " pages_written %" PRIu64 "\n",
			    st->heartbeat, st->pages_written);
			next_hb += 1000000000ULL;
			if (next_hb < t)
				next_hb = t + 1000000000ULL;
		}
		tick(st);
	}
}

static void parse(int argc, char **argv)
{
	enum { O_SIZE = 256, O_RATE, O_ADDR, O_TWIN, O_SEED, O_ZERO, O_HB, O_PID, O_UDP };
	static const struct option opts[] = {
		{ "size",	required_argument, NULL, O_SIZE },
		{ "rate",	required_argument, NULL, O_RATE },
		{ "addr",	required_argument, NULL, O_ADDR },
		{ "twin",	no_argument,	   NULL, O_TWIN },
		{ "seed",	required_argument, NULL, O_SEED },
		{ "zero-pct",	required_argument, NULL, O_ZERO },
		{ "heartbeat",	required_argument, NULL, O_HB },
		{ "pid-file",	required_argument, NULL, O_PID },
		{ "udp",	required_argument, NULL, O_UDP },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL,		0,		   NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		errno = 0;
		end = NULL;
		switch (c) {
		case O_SIZE:
			opt.size_mib = strtoull(optarg, &end, 0);
			if (!opt.size_mib || opt.size_mib > (1ULL << 20))
				end = NULL;
			break;
		case O_RATE:
			opt.rate_mbps = strtod(optarg, &end);
			if (opt.rate_mbps < 0 || opt.rate_mbps > 1e5)
				end = NULL;
			break;
		case O_ADDR:
			opt.addr = strtoull(optarg, &end, 0);
			if (opt.addr % PAGE)
				end = NULL;
			break;
		case O_TWIN:
			opt.twin = 1;
			continue;
		case O_SEED:
			opt.seed = strtoull(optarg, &end, 0);
			break;
		case O_ZERO:
			opt.zero_pct = strtoul(optarg, &end, 0);
			if (opt.zero_pct > 100)
				end = NULL;
			break;
		case O_HB:
			opt.heartbeat = optarg;
			continue;
		case O_PID:
			opt.pid_file = optarg;
			continue;
		case O_UDP:
			opt.udp_port = strtoul(optarg, &end, 0);
			if (!opt.udp_port || opt.udp_port > 65535)
				end = NULL;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
		if (errno || !end || end == optarg || *end) {
			fprintf(stderr, "rdmamig-workload: bad value '%s'\n", optarg);
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
}

int main(int argc, char **argv)
{
	uint64_t len, i;
	struct state *st;
	void *p;

	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	len = opt.size_mib << 20;
	p = mmap((void *)opt.addr, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		die("cannot map %" PRIu64 " MiB at %#lx: %s", opt.size_mib,
		    (unsigned long)opt.addr, strerror(errno));
	if (p != (void *)opt.addr)
		die("the kernel mapped the region at %p, not at %#lx", p,
		    (unsigned long)opt.addr);
	if (madvise(p, len, MADV_NOHUGEPAGE))
		die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	st = p;
	if (opt.heartbeat) {
		hb_fd = open(opt.heartbeat, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
			     O_CLOEXEC, 0644);
		if (hb_fd < 0)
			die("cannot open %s: %s", opt.heartbeat, strerror(errno));
	}
	write_pid();

	if (opt.twin) {
		/* Untouched until the migration filled it, then continued. */
		raise(SIGSTOP);
		if (st->magic != MAGIC || st->npages != len / PAGE) {
			fprintf(stderr, "rdmamig-workload: twin continued without "
				"migrated state in its memory\n");
			return 3;
		}
		say(hb_fd, "twin: continuing from heartbeat %" PRIu64
		    " pages_written %" PRIu64 " replies %" PRIu64 "\n", st->heartbeat,
		    st->pages_written, st->replies);
		if (opt.udp_port)
			udp_open();
		run(st);
	}

	st->magic = MAGIC;
	st->npages = len / PAGE;
	st->seed = opt.seed;
	st->rng = opt.seed * 0x9E3779B97F4A7C15ULL + 1;
	st->rate_bps = opt.rate_mbps * 1e6;
	st->zero_pct = opt.zero_pct;
	for (i = 1; i < st->npages; i++)
		fill_page(st, page_at(st, i), rng_next(&st->rng) % 100 < st->zero_pct);
	if (opt.udp_port)
		udp_open();
	run(st);
	return 0;
}
