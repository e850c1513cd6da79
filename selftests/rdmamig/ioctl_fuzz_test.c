// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl_fuzz_test: random and boundary arguments for every ioctl number of
 * /dev/rdmamig (uapi/linux/rdmamig.h), and read/write/poll, on sessions in
 * every state a single machine can reach: none (with and without blocks),
 * listening, failed, cancelled, and - over rxe at $RDMAMIG_LOCAL_ADDR, a
 * source and a destination of this process connected to each other -
 * connected, active and completed.
 *
 * Every call must return success or an errno the module documents or
 * passes on (see errno_ok()), or the error its failed session reports;
 * anything else (EIO out of nowhere, 512, a positive return) fails the
 * test, with the call and the iteration.  The last test checks that a
 * fresh session still works end to end, and each test that nothing stays
 * pinned and the module's reference count is back where it was.
 *
 * Besides the random calls, a few deterministic cases pin down what the
 * fuzzing found: hosts with a ":port" tail, EFAULT after a side effect,
 * an event lost to an unwritable WAIT_EVENT argument, and CANCEL waiting
 * for a round asleep in the bandwidth limit.
 *
 * Sessions get the test secret (test_secret.h) when opened - some of the
 * pool's fresh ones not, and SET_SECRET and SET_PARAMS' auth are fuzzed
 * too - so LISTEN and CONNECT may answer ENOKEY; the pair holds one key
 * and must report RDMAMIG_CAP_AUTH on both ends once connected.
 *
 * Never connects out: LISTEN only at $RDMAMIG_LOCAL_ADDR port 0 (garbage
 * hosts are built so that the kernel refuses them, or from documentation
 * addresses), CONNECT only to TEST-NET/documentation addresses with at
 * most 100 ms, or to this process's own listener; ACCEPT at most 100 ms.
 *
 * Environment:
 *   RDMAMIG_FUZZ_SEED   PRNG seed (default below); printed by every test
 *   RDMAMIG_FUZZ_ITERS  calls per ioctl number in "each_number"; the other
 *                       tests scale with it (default 2000)
 *   RDMAMIG_LOCAL_ADDR  the testbed's address; without it the tests that
 *                       need RDMA listen nowhere or skip
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"
#include "test_fuzz.h"
#include "test_secret.h"

#define DEV_PATH "/dev/" RDMAMIG_DEVICE_NAME
#define PG 4096UL

static uint64_t any64(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x1001,
		0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL,
		1ULL << 40, (1ULL << 40) + 1, INT64_MAX, (uint64_t)INT64_MIN,
		UINT64_MAX, UINT64_MAX - 0xfff, UINT64_MAX - 1,
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

/* ---- accounting ------------------------------------------------------- */

#define NERR 4096

enum {
	OP_READ = 0x14,		/* 0x00..0x13: ioctl numbers of magic 0xd7 */
	OP_WRITE,
	OP_POLL,
	OP_SEEKMAP,		/* pread, pwrite, lseek, mmap */
	OP_MAGIC,		/* ioctls of other magics */
	NOPS
};

static const char *const opname[NOPS] = {
	"ioctl 0x00", "SET_PARAMS", "GET_PARAMS", "ADD_BLOCK", "LISTEN",
	"ACCEPT", "CONNECT", "SEND_ROUND", "END_ROUND", "COMPLETE", "CANCEL",
	"WAIT_EVENT", "GET_STATS", "SET_SECRET", "POSTCOPY", "FETCH", "OWED",
	"POSTCOPY_RESUME", "MC_EPOCH", "ioctl 0x13", "read", "write", "poll",
	"pread/lseek/mmap",
	"other magics",
};

struct tally {
	unsigned long calls, ok, sess_err;
	uint64_t ns;			/* time spent in the calls */
	unsigned long err[NERR];
};

static struct tally tally[NOPS];
static unsigned long nbad, iter;
static char badlog[24][320];
static pthread_mutex_t tally_lock = PTHREAD_MUTEX_INITIALIZER;
static bool threaded;

static void tally_reset(void)
{
	memset(tally, 0, sizeof(tally));
	nbad = 0;
	iter = 0;
}

/*
 * What the module may answer: its own errnos (uapi/linux/rdmamig.h,
 * chardev.c, block.c, cm.c, mode.c, precopy_src.c, stream.c, auth.c:
 * ENOKEY for LISTEN or CONNECT without the secret authentication
 * requires; postcopy_src.c: EOPNOTSUPP for post-copy's calls on a
 * session that did not negotiate it; EBADF for POSTCOPY_RESUME's
 * argument that is no descriptor), what rdma_cm
 * and the address parser pass on, EINTR from our own timers, and from
 * the VFS ESPIPE (non-seekable) and ENODEV (no mmap).  Not EACCES: both
 * ends of every connection here hold the same key.
 */
static bool errno_ok(int e)
{
	switch (e) {
	case EINVAL: case EFAULT: case E2BIG: case EBUSY: case ENOTCONN: case ENOKEY:
	case ENOTTY: case ENOSPC: case EEXIST: case ENOMEM: case ETIMEDOUT:
	case EAGAIN: case EINTR: case ECANCELED: case ENODEV: case EADDRINUSE:
	case EADDRNOTAVAIL: case EAFNOSUPPORT: case ENOENT: case ERANGE:
	case EHOSTUNREACH: case ENETUNREACH: case ECONNREFUSED: case ESPIPE:
	case EOPNOTSUPP: case EBADF:
		return true;
	}
	return false;
}

static const char *ename(int e)
{
	const char *n = e > 0 ? strerrorname_np(e) : NULL;
	static __thread char buf[16];

	if (n)
		return n;
	snprintf(buf, sizeof(buf), "%d", e);
	return buf;
}

static int get_stats(int fd, struct rdmamig_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ioctl(fd, RDMAMIG_IOC_GET_STATS, st);
}

static bool terminal(uint32_t state)
{
	return state == RDMAMIG_STATE_FAILED || state == RDMAMIG_STATE_CANCELLED ||
	       state == RDMAMIG_STATE_COMPLETED;
}

/*
 * A failed or cancelled session answers with its error: accepted when the
 * session reports exactly that one (EPROTO excepted: both ends are this
 * module, a protocol error between them is a bug).
 */
static bool is_session_error(int fd, int e)
{
	struct rdmamig_stats st;

	if (fd < 0 || e == EPROTO || get_stats(fd, &st))
		return false;
	return (st.state == RDMAMIG_STATE_FAILED ||
		st.state == RDMAMIG_STATE_CANCELLED) && st.error == -e;
}

static void bad(const char *fmt, ...)
{
	va_list ap;
	char *line;

	pthread_mutex_lock(&tally_lock);
	if (nbad < ARRAY_LEN(badlog)) {
		line = badlog[nbad];
		va_start(ap, fmt);
		vsnprintf(line, sizeof(badlog[0]), fmt, ap);
		va_end(ap);
	}
	nbad++;
	pthread_mutex_unlock(&tally_lock);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void add_time(int op, uint64_t t0)
{
	__atomic_fetch_add(&tally[op].ns, now_ns() - t0, __ATOMIC_RELAXED);
}

static void count(unsigned long *c)
{
	if (threaded)
		__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
	else
		(*c)++;
}

/*
 * Account one call: @ret and @err as the call left them, @okmax the
 * largest success value, @fd the session for the failed-session
 * exemption.  The context is formatted only for a failure.
 */
__attribute__((format(printf, 6, 7)))
static void account(int op, long ret, int err, long okmax, int fd,
		    const char *fmt, ...)
{
	struct tally *t = &tally[op];
	char ctx[200];
	va_list ap;

	count(&t->calls);
	if (ret >= 0 && ret <= okmax) {
		count(&t->ok);
		return;
	}
	if (ret == -1 && err > 0 && err < NERR) {
		count(&t->err[err]);
		if (errno_ok(err))
			return;
		if (is_session_error(fd, err)) {
			count(&t->sess_err);
			return;
		}
	}
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	bad("iter %lu: %s returned %ld, errno %d (%s): %s", iter, opname[op],
	    ret, ret == -1 ? err : 0, ret == -1 ? ename(err) : "-", ctx);
}

/* Exactly @want (0: success), e.g. ENOTTY for a number nobody knows. */
__attribute__((format(printf, 5, 6)))
static void expect_exact(int op, long ret, int err, int want, const char *fmt, ...)
{
	struct tally *t = &tally[op];
	char ctx[200];
	va_list ap;

	count(&t->calls);
	if (ret == 0)
		count(&t->ok);
	else if (ret == -1 && err > 0 && err < NERR)
		count(&t->err[err]);
	if ((!want && ret == 0) || (want && ret == -1 && err == want))
		return;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	bad("iter %lu: %s returned %ld errno %s, expected %s: %s", iter,
	    opname[op], ret, ret == -1 ? ename(err) : "-",
	    want ? ename(want) : "success", ctx);
}

/* One line per operation with its errno set; the failures; a verdict. */
static bool tally_report(struct __test_metadata *_metadata)
{
	char line[1024];
	unsigned long i;
	int op, e, n;

	for (op = 0; op < NOPS; op++) {
		struct tally *t = &tally[op];

		if (!t->calls)
			continue;
		n = snprintf(line, sizeof(line), "%-16s %6lu calls %6.2f s: ok %lu",
			     opname[op], t->calls, t->ns / 1e9, t->ok);
		for (e = 1; e < NERR && n < (int)sizeof(line) - 40; e++)
			if (t->err[e])
				n += snprintf(line + n, sizeof(line) - n, ", %s %lu",
					      ename(e), t->err[e]);
		if (t->sess_err)
			snprintf(line + n, sizeof(line) - n, " (%lu as the session's error)",
				 t->sess_err);
		TH_LOG("%s", line);
	}
	for (i = 0; i < nbad && i < ARRAY_LEN(badlog); i++)
		TH_LOG("UNEXPECTED %s", badlog[i]);
	if (nbad > ARRAY_LEN(badlog))
		TH_LOG("... and %lu more", nbad - ARRAY_LEN(badlog));
	return nbad == 0;
}

/* ---- memory the arguments live in ------------------------------------- */

#define ARG_ROOM	(2 * PG)	/* read-write, a PROT_NONE page after */
#define BLK_PAGES	96		/* 0..79 rw, 80..87 PROT_NONE, 88..95 unmapped */
#define BLK_RW		80
#define BIG_LEN		(32UL << 20)	/* the largest bitmap SEND_ROUND takes */

static struct {
	uint8_t *rw, *none;	/* argument structs */
	uint8_t *bm;		/* bitmaps and read/write buffers, ARG_ROOM */
	uint8_t *ro;		/* one read-only page */
	uint8_t *unmapped;
	uint8_t *blk;		/* RAM blocks */
	uint8_t *big;		/* BIG_LEN of read-only zero pages */
	uint8_t tmpl[ARG_ROOM];
} A;

static void *map(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static bool arenas_init(void)
{
	uint8_t *p;

	p = map(ARG_ROOM + PG, PROT_READ | PROT_WRITE);
	if (!p || mprotect(p + ARG_ROOM, PG, PROT_NONE))
		return false;
	A.rw = p;
	A.none = p + ARG_ROOM;
	p = map(ARG_ROOM + PG, PROT_READ | PROT_WRITE);
	if (!p || mprotect(p + ARG_ROOM, PG, PROT_NONE))
		return false;
	A.bm = p;
	A.ro = map(PG, PROT_READ);
	A.unmapped = map(PG, PROT_READ);
	if (!A.ro || !A.unmapped || munmap(A.unmapped, PG))
		return false;
	p = map(BLK_PAGES * PG, PROT_READ | PROT_WRITE);
	if (!p || mprotect(p + BLK_RW * PG, 8 * PG, PROT_NONE) ||
	    munmap(p + (BLK_RW + 8) * PG, 8 * PG))
		return false;
	A.blk = p;
	A.big = map(BIG_LEN, PROT_READ);
	return A.big != NULL;
}

enum place {
	PL_OK, PL_MISALIGN, PL_STRADDLE, PL_RO, PL_NONE, PL_UNMAPPED, PL_NULL,
	PL_KERNEL, PL_LOW, PL_NONCANON,
};

static const char *const plname[] = {
	"ok", "misaligned", "straddling PROT_NONE", "read-only", "PROT_NONE",
	"unmapped", "NULL", "kernel", "low", "non-canonical",
};

static uint64_t kernel_ptr(void)
{
	static const uint64_t v[] = {
		0xffff888000000000ULL, 0xffffffff81000000ULL, 0xffffc90000000000ULL,
		0xffffea0000000000ULL, 0xffffffffff600000ULL, 0xfffffffffffff000ULL,
		0xffffffffffffffffULL, 0xffff800000000000ULL,
	};

	return PICK(v) + (chance(20) ? rn(PG) : 0);
}

static uint64_t noncanon_ptr(void)
{
	static const uint64_t v[] = {
		0x0000800000000000ULL, 0x00007ffffffff000ULL, 0x00007fffffffffffULL,
		0x8000000000000000ULL, 0x7fffffffffffffffULL, 0x0000fffffffff000ULL,
	};

	return PICK(v);
}

static enum place pick_place(void)
{
	unsigned int r = rn(100);

	if (r < 62)
		return PL_OK;
	if (r < 67)
		return PL_MISALIGN;
	if (r < 75)
		return PL_STRADDLE;
	if (r < 80)
		return PL_RO;
	if (r < 84)
		return PL_NONE;
	if (r < 87)
		return PL_UNMAPPED;
	if (r < 90)
		return PL_NULL;
	if (r < 95)
		return PL_KERNEL;
	if (r < 97)
		return PL_LOW;
	return PL_NONCANON;
}

/*
 * Put the first @len bytes of A.tmpl where @pl says; return the pointer.
 * @len is what the kernel will look at (the struct's claimed size).
 */
static uint64_t place(enum place pl, size_t len)
{
	size_t k, off;

	if (len > ARG_ROOM)
		len = ARG_ROOM;
	switch (pl) {
	case PL_OK:
		memcpy(A.rw, A.tmpl, ARG_ROOM);
		return (uintptr_t)A.rw;
	case PL_MISALIGN:
		off = 1 + rn(7);
		memcpy(A.rw + off, A.tmpl, ARG_ROOM - off);
		return (uintptr_t)(A.rw + off);
	case PL_STRADDLE:
		/* Mostly with the size field readable, to get further in. */
		if (len <= 4)
			k = 1 + rn(len ? len : 1);
		else
			k = chance(80) ? 4 + rn(len - 4) : 1 + rn(3);
		memcpy(A.rw + ARG_ROOM - k, A.tmpl, k);
		return (uintptr_t)(A.rw + ARG_ROOM - k);
	case PL_RO:
		/* Threads share the page: only one thread may flip it. */
		if (!threaded && mprotect(A.ro, PG, PROT_READ | PROT_WRITE) == 0) {
			memcpy(A.ro, A.tmpl, len < PG ? len : PG);
			mprotect(A.ro, PG, PROT_READ);
		}
		return (uintptr_t)A.ro;
	case PL_NONE:
		return (uintptr_t)A.none + (chance(20) ? rn(PG) : 0);
	case PL_UNMAPPED:
		return (uintptr_t)A.unmapped + (chance(20) ? rn(PG) : 0);
	case PL_NULL:
		return 0;
	case PL_KERNEL:
		return kernel_ptr();
	case PL_LOW:
		return 1 + rn(0x10000);
	case PL_NONCANON:
		return noncanon_ptr();
	}
	return 0;
}

/* A size field: mostly right, often at an edge. */
static uint32_t pick_size(uint32_t ver0, uint32_t full)
{
	const uint32_t odd[] = {
		0, 1, 4, 8, ver0 - 1, ver0, full - 1, full, full + 1, full + 8,
		PG - 1, PG, PG + 1, 2 * PG, 0x7fffffff, 0x80000000, 0xffffffff,
	};

	if (chance(55))
		return full;
	if (chance(15))
		return ver0;
	if (chance(15))
		return rn(PG + 64);
	return PICK(odd);
}

/* Start a template of claimed size @usize: zeroes, maybe a dirty tail. */
static void tmpl_start(uint32_t usize, uint32_t full)
{
	memset(A.tmpl, 0, sizeof(A.tmpl));
	if (usize > full && usize <= PG && chance(30))
		A.tmpl[full + rn(usize - full)] = 1 + rn(255);
}

/* ---- sessions --------------------------------------------------------- */

struct fs {
	int fd;
	bool nonblock;
	unsigned int names;	/* block name counter */
	bool live;		/* a connected pair: keep the data path sane */
	uint32_t nblocks;	/* blocks of a pair, for rounds */
	uint64_t bpages[4];
};

/* A session with the test secret, so that it may listen and connect. */
static int dev_open(bool nonblock)
{
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));

	if (fd >= 0 && set_test_secret(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One without: LISTEN and CONNECT answer ENOKEY (unless auth goes off). */
static int dev_open_nokey(bool nonblock)
{
	return open(DEV_PATH, O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
}

static void fs_close(struct fs *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static bool fs_open_key(struct fs *s, bool key)
{
	memset(s, 0, sizeof(*s));
	s->nonblock = chance(50);
	s->fd = key ? dev_open(s->nonblock) : dev_open_nokey(s->nonblock);
	return s->fd >= 0;
}

static bool fs_open(struct fs *s)
{
	return fs_open_key(s, true);
}

/* ---- signals: EINTR for waits that would block ------------------------ */

static volatile sig_atomic_t guard_on, guard_fired;

static void on_alarm(int sig)
{
	(void)sig;
	if (guard_on)
		guard_fired = 1;
}

static void timer_ms(unsigned int ms, unsigned int interval_ms)
{
	struct itimerval it = {
		.it_value = { ms / 1000, (ms % 1000) * 1000 },
		.it_interval = { interval_ms / 1000, (interval_ms % 1000) * 1000 },
	};

	setitimer(ITIMER_REAL, &it, NULL);
}

/* Interrupt a wait after a few ms, again and again until disarmed. */
static void tick_start(void)
{
	guard_on = 0;
	timer_ms(1 + rn(4), 5);
}

/* A call that must not take long: an EINTR from this one is a hang. */
static void guard_start(unsigned int sec)
{
	guard_fired = 0;
	guard_on = 1;
	timer_ms(sec * 1000, 1000);
}

static void timer_stop(void)
{
	timer_ms(0, 0);
	guard_on = 0;
}

static void signals_init(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART: waits end in EINTR */
	signal(SIGPIPE, SIG_IGN);
}

/* ---- hosts ------------------------------------------------------------ */

/*
 * Hosts for LISTEN and CONNECT.  Garbage is built to be refused by the
 * module's own checks (a character outside its two alphabets, no NUL,
 * empty) or, when it is structured, from documentation addresses
 * (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) so that
 * whatever the parser makes of it reaches nobody.
 */
enum host_kind {
	H_GARBAGE,	/* a character the module refuses */
	H_NO_NUL,	/* 64 characters, no NUL */
	H_EMPTY,
	H_CURATED,	/* structured garbage around documentation addresses */
	H_TESTNET,	/* a documentation address: CONNECT fails in time */
	H_LOCAL,	/* $RDMAMIG_LOCAL_ADDR: LISTEN only */
	H_LOCAL_SUFFIX,	/* the local address with a ":port" or "%scope" tail */
};

static const char *const curated_hosts[] = {
	"192.0.2", "192.0.2.1.1", "192.0.2.256", "192..0.2.1", ".192.0.2.1",
	"192.0.2.1.", "1920.0.2.1", "192.0.2.1:", "192.0.2.1:1", "192.0.2.1:80:",
	"192.0.2.1%1", "192.0.2.01", "0192.0.2.1", "::ffff:192.0.2",
	"::ffff:192.0.2.1.5", "::ffff:192.0.2.1", "2001:db8::1::2", "2001:db8:::1",
	"2001:db8::12345", "2001:db8:1:2:3:4:5:6:7", "2001:db8::1%",
	"2001:db8::1%99999", "2001:db8::1%4294967296", "2001:db8::1%%1",
	":2001:db8::1", "2001:db8::1:", "2001:db8::192.0.2.1.1",
	"2001:0db8:0000:0000:0000:0000:0000:0000:0001",
	"2001:db8:ffff:ffff:ffff:ffff:ffff:fffff", "2001:db8::", "2001:DB8::A",
	"%", ":", ".", "::::", ":::", "...", "%%%", "2001:db8::1%eth0",
	"198.51.100.1:65536", "203.0.113.9.", "198.51.100.",
};

static const char *const testnet_hosts[] = {
	"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "192.0.2.254",
};

static void gen_host(char *h, enum host_kind k)
{
	static const char ok_chars[] = "0123456789abcdefABCDEF:.%";
	static const char bad_chars[] = "gGxXzZ -_/[]@#!~,;\t\n\x01\x7f\x80\xff";
	size_t n, i, j;

	memset(h, 0, RDMAMIG_HOST_MAX);
	switch (k) {
	case H_GARBAGE:
		n = 1 + rn(RDMAMIG_HOST_MAX - 1);
		for (i = 0; i < n; i++)
			h[i] = ok_chars[rn(sizeof(ok_chars) - 1)];
		for (j = 0; j <= rn(3); j++)
			h[rn(n)] = bad_chars[rn(sizeof(bad_chars) - 1)];
		break;
	case H_NO_NUL:
		for (i = 0; i < RDMAMIG_HOST_MAX; i++)
			h[i] = chance(90) ? ok_chars[rn(sizeof(ok_chars) - 1)] :
					    (char)(1 + rn(255));
		break;
	case H_EMPTY:
		break;
	case H_CURATED:
		strcpy(h, PICK(curated_hosts));
		break;
	case H_TESTNET:
		strcpy(h, PICK(testnet_hosts));
		break;
	case H_LOCAL:
		strcpy(h, cfg_addr);
		break;
	case H_LOCAL_SUFFIX:
		snprintf(h, RDMAMIG_HOST_MAX, "%s%s", cfg_addr,
			 PICK(((const char *const[]){ ":1", ":", ":0", "%1", ":65535", "::" })));
		break;
	}
}

/* Might the kernel's parser accept it? (Then it must be harmless.) */
static bool host_may_parse(enum host_kind k)
{
	return k == H_CURATED || k == H_TESTNET || k == H_LOCAL || k == H_LOCAL_SUFFIX;
}

/* ---- building and making one call ------------------------------------- */

/* The last call's argument, for the failure message. */
static __thread struct {
	unsigned long cmd;
	uint64_t arg;
	uint32_t usize;
	enum place pl;
} last;

struct ctx {
	struct fs *s;
	unsigned int connects;		/* CONNECTs that could start, so far */
	unsigned int max_connects;
};

/* The ioctl number as the VMM builds it, or with any direction and size. */
static unsigned long cmd_for(unsigned int nr, unsigned long official)
{
	if (chance(75))
		return official;
	return _IOC(rn(4), RDMAMIG_IOC_MAGIC, nr, rn(1U << _IOC_SIZEBITS));
}

static const unsigned long official_cmd[0x14] = {
	[0x00] = _IO(RDMAMIG_IOC_MAGIC, 0x00),
	[0x01] = RDMAMIG_IOC_SET_PARAMS,
	[0x02] = RDMAMIG_IOC_GET_PARAMS,
	[0x03] = RDMAMIG_IOC_ADD_BLOCK,
	[0x04] = RDMAMIG_IOC_LISTEN,
	[0x05] = RDMAMIG_IOC_ACCEPT,
	[0x06] = RDMAMIG_IOC_CONNECT,
	[0x07] = RDMAMIG_IOC_SEND_ROUND,
	[0x08] = RDMAMIG_IOC_END_ROUND,
	[0x09] = RDMAMIG_IOC_COMPLETE,
	[0x0a] = RDMAMIG_IOC_CANCEL,
	[0x0b] = RDMAMIG_IOC_WAIT_EVENT,
	[0x0c] = RDMAMIG_IOC_GET_STATS,
	[0x0d] = RDMAMIG_IOC_SET_SECRET,
	[0x0e] = RDMAMIG_IOC_POSTCOPY,
	[0x0f] = RDMAMIG_IOC_FETCH,
	[0x10] = RDMAMIG_IOC_OWED,
	[0x11] = RDMAMIG_IOC_POSTCOPY_RESUME,
	[0x12] = RDMAMIG_IOC_MC_EPOCH,
	[0x13] = _IOWR(RDMAMIG_IOC_MAGIC, 0x13, struct rdmamig_stats),
};

static void gen_params(struct rdmamig_params *p, bool live)
{
	static const uint32_t ka[] = { 0, 1, 99, 100, 101, 1000, 60000, 60001, UINT32_MAX };
	static const uint32_t wv[] = { 0, 1, 2, 255, 256, UINT32_MAX };

	p->mask = chance(75) ? rn(RDMAMIG_PARAM_ALL + 1) : any32();
	p->caps = chance(75) ? (chance(50) ? 0 : RDMAMIG_CAP_PIN_ALL) : any64();
	p->max_bandwidth = any64();
	p->max_registered = chance(50) ? (1 + rn(128)) << 20 : any64();
	p->keepalive_ms = chance(70) ? PICK(ka) : any32();
	p->wire_version = chance(70) ? PICK(wv) : any32();
	p->downtime_limit_ms = any32();
	p->max_rounds = chance(20) ? 0 : any32();
	/* REQUIRED, OFF, one past, anything; reserved mostly zero. */
	p->auth = chance(85) ? rn(3) : any32();
	p->reserved = chance(90) ? 0 : any32();
	/* A connected source honours the bandwidth: none of 1 byte/s here. */
	if (live && p->max_bandwidth && p->max_bandwidth < (1ULL << 32))
		p->max_bandwidth = chance(50) ? 0 : UINT64_MAX;
}

static void gen_block(struct fs *s, struct rdmamig_block *b)
{
	static const uint64_t odd_addr[] = {
		0, PG, 0x10000, 0x00007ffffffff000ULL, 0x0000800000000000ULL,
		0x00007fffffffe000ULL, 0xfffffffffffff000ULL, 0xffff888000000000ULL,
		0x8000000000000000ULL,
	};
	static const uint64_t odd_len[] = {
		0, 1, PG - 1, PG + 1, 1ULL << 40, (1ULL << 40) + PG, (1ULL << 40) - PG,
		UINT64_MAX & ~(PG - 1), 0x0000800000000000ULL, 2 * PG, 1ULL << 32,
	};
	size_t n, i;

	b->flags = chance(90) ? 0 : any32();
	b->reserved = chance(90) ? 0 : any32();
	b->index = any32();
	if (chance(75))
		b->addr = (uintptr_t)A.blk + rn(BLK_PAGES) * PG;
	else if (chance(50))
		b->addr = (uintptr_t)A.blk + rn(BLK_PAGES * PG);
	else
		b->addr = chance(50) ? PICK(odd_addr) : any64();
	if (chance(75))
		b->length = (1 + rn(chance(80) ? 4 : BLK_PAGES)) * PG;
	else
		b->length = chance(60) ? PICK(odd_len) : any64();

	switch (rn(12)) {
	case 0:		/* no NUL */
		memset(b->name, 'a' + rn(26), sizeof(b->name));
		break;
	case 1:		/* a byte that is not graphic */
		snprintf(b->name, sizeof(b->name), "blk%u", s->names++);
		b->name[rn(strlen(b->name))] = PICK(((const char[]){ ' ', '\t', 1, 0x7f, (char)0x80, (char)0xff }));
		break;
	case 2:		/* empty */
		break;
	case 3:		/* the longest allowed */
		memset(b->name, 'a' + rn(26), sizeof(b->name) - 1);
		break;
	case 4:		/* random bytes */
		n = rn(sizeof(b->name) + 1);
		for (i = 0; i < n && i < sizeof(b->name); i++)
			b->name[i] = (char)r64();
		break;
	case 5:		/* a name used before, likely */
		snprintf(b->name, sizeof(b->name), "blk%u", (unsigned int)rn(s->names + 1));
		break;
	default:
		snprintf(b->name, sizeof(b->name), "blk%u", s->names++);
	}
}

static void gen_round(struct fs *s, struct rdmamig_round *r)
{
	static const uint64_t np[] = {
		0, 1, 63, 64, 65, 4096, 65536, 65537, (1ULL << 28) + 1,
		UINT64_MAX, 1ULL << 40,
	};
	uint64_t bp = 16;

	r->flags = chance(80) ? (chance(60) ? 0 : RDMAMIG_ROUND_FINAL) : any32();
	r->reserved = chance(90) ? 0 : any32();
	if (s->live && chance(85)) {
		/* Mostly right, to reach the data path of a connected source. */
		r->block = rn(s->nblocks + (chance(90) ? 0 : 2));
		bp = r->block < s->nblocks ? s->bpages[r->block] : 16;
		r->first_page = chance(90) ? rn(bp) : PICK(np);
		r->npages = chance(90) ? 1 + rn(bp - (r->first_page < bp ? r->first_page : 0)) :
					 PICK(np);
	} else {
		r->block = chance(70) ? rn(4) : any32();
		r->first_page = chance(60) ? rn(64) : any64();
		r->npages = chance(50) ? 1 + rn(bp * 4) : PICK(np);
		/* The largest bitmap taken: 32 MiB allocated; costly, so rare. */
		if (rn(1000) < 5)
			r->npages = 1ULL << 28;
	}
	/* The bitmap: random bits in a buffer that fits, or anywhere. */
	if (r->npages && r->npages <= ARG_ROOM * 8 && chance(80)) {
		size_t bytes = (r->npages + 63) / 64 * 8, i;

		for (i = 0; i < bytes; i += 8) {
			uint64_t w = chance(20) ? UINT64_MAX : chance(20) ? 0 : r64();

			memcpy(A.bm + ARG_ROOM - ((bytes + 7) & ~7UL) + i, &w, 8);
		}
		/* At the end of the buffer: one more word runs into PROT_NONE. */
		r->bitmap = (uintptr_t)(A.bm + ARG_ROOM - ((bytes + 7) & ~7UL));
		if (chance(5))
			r->bitmap += 8;
	} else if (r->npages > ARG_ROOM * 8 && r->npages <= (1ULL << 28) && chance(20)) {
		r->bitmap = (uintptr_t)A.big;	/* 32 MiB of zero pages at most */
	} else {
		r->bitmap = place(pick_place(), 8);
	}
}

/*
 * RDMAMIG_IOC_FETCH: mostly good arguments (a fault in a block, or the
 * sweep, into a page-aligned buffer), else anything.  None of the fuzz's
 * sessions is ever in post-copy, so nothing is read.
 */
static void gen_fetch(struct rdmamig_fetch *f)
{
	static const uint64_t lens[] = {
		0, 1, PG - 1, PG, PG + 1, 2 * PG, 16 * PG, RDMAMIG_FETCH_MAX,
		RDMAMIG_FETCH_MAX + PG, RDMAMIG_FETCH_MAX - 1, UINT64_MAX & ~(PG - 1),
	};

	f->flags = chance(80) ? (chance(50) ? 0 : RDMAMIG_FETCH_SWEEP) : any32();
	if (chance(70))
		f->addr = (uintptr_t)A.blk + rn(BLK_PAGES * PG);
	else
		f->addr = any64();
	if (chance(70))
		f->buf = (uintptr_t)A.bm;
	else if (chance(50))
		f->buf = place(pick_place(), 0);
	else
		f->buf = any64();
	f->buf_len = chance(70) ? PICK(lens) : any64();
	f->start = any64();
	f->npages = any64();
	f->remaining = any64();
}

static bool may_block_accept(int fd)
{
	struct rdmamig_stats st;

	/* A listener waits: only short timeouts for it. */
	return get_stats(fd, &st) ||
	       (st.role == RDMAMIG_ROLE_DEST && !terminal(st.state));
}

/*
 * One call of ioctl number @nr (magic 0xd7) with a random argument on
 * @c->s.  Returns the ioctl's return value.
 */
static long fuzz_ioctl(struct ctx *c, unsigned int nr)
{
	struct fs *s = c->s;
	unsigned long cmd = cmd_for(nr, official_cmd[nr]);
	enum place pl = pick_place();
	uint64_t arg = 0;
	uint32_t usize = 0;
	long ret;
	int err;
	bool blocking = false;

	switch (nr) {
	case 0x01: {	/* SET_PARAMS */
		struct rdmamig_params p = {};

		usize = pick_size(offsetof(struct rdmamig_params, downtime_limit_ms),
				  sizeof(p));
		tmpl_start(usize, sizeof(p));
		gen_params(&p, s->live);
		p.size = usize;
		memcpy(A.tmpl, &p, sizeof(p));
		arg = place(pl, usize);
		break;
	}
	case 0x02:	/* GET_PARAMS */
	case 0x0b:	/* WAIT_EVENT */
	case 0x0c: {	/* GET_STATS */
		uint32_t full = nr == 0x02 ? sizeof(struct rdmamig_params) :
				nr == 0x0b ? sizeof(struct rdmamig_event) :
					     sizeof(struct rdmamig_stats);
		uint32_t v0 = nr == 0x02 ? offsetof(struct rdmamig_params, downtime_limit_ms) :
				full;
		size_t i;

		usize = pick_size(v0, full);
		memset(A.tmpl, 0, sizeof(A.tmpl));
		for (i = 4; i < full && chance(50); i += 8)
			A.tmpl[i] = (uint8_t)r64();
		memcpy(A.tmpl, &usize, 4);
		arg = place(pl, usize);
		blocking = nr == 0x0b && !s->nonblock;
		break;
	}
	case 0x03: {	/* ADD_BLOCK */
		struct rdmamig_block b = {};

		usize = pick_size(sizeof(b), sizeof(b));
		tmpl_start(usize, sizeof(b));
		gen_block(s, &b);
		b.size = usize;
		memcpy(A.tmpl, &b, sizeof(b));
		arg = place(pl, usize);
		break;
	}
	case 0x04:	/* LISTEN */
	case 0x06: {	/* CONNECT */
		struct rdmamig_addr a = {};
		enum host_kind hk;
		unsigned int r = rn(100);
		struct rdmamig_stats st;

		usize = pick_size(sizeof(a), sizeof(a));
		tmpl_start(usize, sizeof(a));
		if (r < 35)
			hk = H_GARBAGE;
		else if (r < 45)
			hk = H_NO_NUL;
		else if (r < 50)
			hk = H_EMPTY;
		else if (r < 75)
			hk = H_CURATED;
		else if (nr == 0x06 || !cfg_addr)
			hk = H_TESTNET;
		else
			hk = r < 95 ? H_LOCAL : H_LOCAL_SUFFIX;
		gen_host(a.host, hk);
		a.flags = chance(92) ? 0 : any32();
		a.reserved = chance(92) ? 0 : (uint16_t)any32();
		a.port = (uint16_t)any32();
		a.timeout_ms = any32();
		if (nr == 0x04 && host_may_parse(hk))
			a.port = 0;		/* listen nowhere but port 0 */
		if (nr == 0x06 && host_may_parse(hk)) {
			/* At most 100 ms, never 0 (30 s), or refused outright. */
			a.timeout_ms = chance(85) ? 1 + rn(100) : 0x80000000U + rn(0x7fffffff);
			/* Connecting costs up to the timeout: only so many. */
			if (a.timeout_ms <= INT_MAX && !get_stats(s->fd, &st) &&
			    st.state == RDMAMIG_STATE_NONE && ++c->connects > c->max_connects) {
				gen_host(a.host, H_GARBAGE);
			}
		}
		a.size = usize;
		memcpy(A.tmpl, &a, sizeof(a));
		arg = place(pl, usize);
		break;
	}
	case 0x0d: {	/* SET_SECRET */
		struct rdmamig_secret sec = {};
		static const uint32_t lens[] = {
			0, 1, 15, RDMAMIG_SECRET_MIN, 17, 32, 63, RDMAMIG_SECRET_MAX, 65,
			128, PG, UINT32_MAX, 0x80000000U,
		};
		size_t i;

		usize = pick_size(sizeof(sec), sizeof(sec));
		tmpl_start(usize, sizeof(sec));
		sec.len = chance(50) ? RDMAMIG_SECRET_MIN + rn(RDMAMIG_SECRET_MAX -
							 RDMAMIG_SECRET_MIN + 1) :
			  chance(80) ? PICK(lens) : any32();
		/* Mostly the test key, else random bytes (never read back). */
		if (chance(50))
			test_secret(sec.key);
		else
			for (i = 0; i < sizeof(sec.key); i++)
				sec.key[i] = (uint8_t)r64();
		sec.size = usize;
		memcpy(A.tmpl, &sec, sizeof(sec));
		arg = place(pl, usize);
		break;
	}
	case 0x05:	/* ACCEPT: the argument is the timeout */
		/* Threads: another one may make it a listener meanwhile. */
		if (threaded || may_block_accept(s->fd))
			arg = chance(85) ? 1 + rn(chance(99) ? 2 : 100) :
					   (uint64_t)INT_MAX + 1 + rn(UINT32_MAX);
		else
			arg = any64();
		break;
	case 0x07:	/* SEND_ROUND */
	case 0x10: {	/* OWED: the same struct, flags must be 0 */
		struct rdmamig_round r = {};

		usize = pick_size(sizeof(r), sizeof(r));
		gen_round(s, &r);
		if (nr == 0x10)
			r.flags = chance(80) ? 0 : any32();
		tmpl_start(usize, sizeof(r));
		r.size = usize;
		memcpy(A.tmpl, &r, sizeof(r));
		arg = place(pl, usize);
		break;
	}
	case 0x0f: {	/* FETCH */
		struct rdmamig_fetch f = {};

		usize = pick_size(sizeof(f), sizeof(f));
		gen_fetch(&f);
		tmpl_start(usize, sizeof(f));
		f.size = usize;
		memcpy(A.tmpl, &f, sizeof(f));
		arg = place(pl, usize);
		break;
	}
	case 0x11:	/* POSTCOPY_RESUME: a descriptor, often one of ours */
		arg = chance(60) ? rn(64) : chance(50) ? (uint64_t)-1 : any64();
		break;
	case 0x12: {	/* MC_EPOCH: never negotiated here, so never taken */
		struct rdmamig_mc_epoch e = {};

		usize = pick_size(sizeof(e), sizeof(e));
		e.flags = chance(80) ? 0 : any32();
		e.rounds = chance(50) ? 0 : any64();
		e.nrounds = chance(50) ? rn(3) : any32();
		e.state = chance(50) ? 0 : any64();
		e.state_len = chance(50) ? rn(4096) : any64();
		if (chance(10))
			e.epoch = any64();
		tmpl_start(usize, sizeof(e));
		e.size = usize;
		memcpy(A.tmpl, &e, sizeof(e));
		arg = place(pl, usize);
		break;
	}
	default:	/* no argument, or a number nobody knows */
		arg = chance(50) ? any64() : place(pl, 64);
	}

	last.cmd = cmd;
	last.arg = arg;
	last.usize = usize;
	last.pl = pl;
	if (blocking)
		tick_start();
	ret = ioctl(s->fd, cmd, arg);
	err = errno;
	if (blocking)
		timer_stop();
	errno = err;
	return ret;
}

static void call_ioctl(struct ctx *c, unsigned int nr)
{
	long ret;
	int err;

	uint64_t t0 = now_ns();

	iter++;
	ret = fuzz_ioctl(c, nr);
	err = errno;
	add_time(nr, t0);
	if (nr == 0x00 || nr > 0x12)
		expect_exact(nr, ret, err, ENOTTY, "cmd %#lx", last.cmd);
	else if (nr == 0x0a)
		expect_exact(nr, ret, err, 0, "cmd %#lx", last.cmd);
	else
		account(nr, ret, err, 0, c->s->fd, "cmd %#lx arg %#llx (%s) size %u fd %d%s",
			last.cmd, (unsigned long long)last.arg, plname[last.pl],
			last.usize, c->s->fd, c->s->nonblock ? " O_NONBLOCK" : "");
}

/* ---- read, write, poll and the rest ----------------------------------- */

static uint64_t io_buf(size_t len, bool *ours)
{
	enum place pl = pick_place();

	*ours = false;
	switch (pl) {
	case PL_OK:
	case PL_MISALIGN:
		*ours = true;
		/* The end of A.bm: a longer transfer runs into PROT_NONE. */
		return (uintptr_t)A.bm + (len < ARG_ROOM ? ARG_ROOM - len : 0) -
		       (pl == PL_MISALIGN && len < ARG_ROOM - 8 ? 1 + rn(7) : 0);
	case PL_STRADDLE:
		return (uintptr_t)A.bm + ARG_ROOM - 1 - rn(len < ARG_ROOM ? len + 1 : ARG_ROOM);
	case PL_RO:
		return (uintptr_t)A.ro;
	case PL_NONE:
		return (uintptr_t)A.none;
	default:
		return place(pl, 0);
	}
}

static size_t io_len(bool live_write)
{
	static const size_t v[] = {
		0, 1, 7, 8, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20,
		SSIZE_MAX, SIZE_MAX, (size_t)INT_MAX + 1,
	};
	size_t n = chance(50) ? rn(ARG_ROOM + 16) : PICK(v);

	/* A connected source really sends it: keep that small. */
	if (live_write && n > 3 * 65536)
		n = rn(3 * 65536);
	return n;
}

static unsigned long bytes_written, bytes_read;

static void call_read(struct fs *s)
{
	size_t len = io_len(false);
	bool ours;
	uint64_t buf = io_buf(len, &ours);
	ssize_t ret;
	int err;

	iter++;
	uint64_t t0 = now_ns();

	if (!s->nonblock)
		tick_start();
	ret = read(s->fd, (void *)(uintptr_t)buf, len);
	err = errno;
	if (!s->nonblock)
		timer_stop();
	add_time(OP_READ, t0);
	if (ret > 0)
		bytes_read += ret;
	account(OP_READ, ret, err, len > SSIZE_MAX ? SSIZE_MAX : (long)len, s->fd,
		"read(%d, %#llx, %zu)", s->fd, (unsigned long long)buf, len);
}

static void call_write(struct fs *s)
{
	size_t len = io_len(s->live);
	bool ours;
	uint64_t buf = io_buf(len, &ours);
	ssize_t ret;
	int err;

	iter++;
	uint64_t t0 = now_ns();

	if (s->live)
		guard_start(20);
	ret = write(s->fd, (void *)(uintptr_t)buf, len);
	err = errno;
	if (s->live)
		timer_stop();
	add_time(OP_WRITE, t0);
	if (guard_fired)
		bad("iter %lu: write(%zu) on a connected source took over 20 s", iter, len);
	if (ret > 0)
		bytes_written += ret;
	account(OP_WRITE, ret, err, len > SSIZE_MAX ? SSIZE_MAX : (long)len, s->fd,
		"write(%d, %#llx, %zu)", s->fd, (unsigned long long)buf, len);
}

static void call_poll(struct fs *s)
{
	struct pollfd p = { .fd = s->fd, .events = (short)r64() };
	int ret, err;

	iter++;
	ret = poll(&p, 1, chance(90) ? 0 : 1 + rn(5));
	err = errno;
	account(OP_POLL, ret, err, 1, -1, "poll(%d, events %#x)", s->fd,
		(unsigned short)p.events);
	if (ret == 1 && (p.revents & ~(POLLIN | POLLRDNORM | POLLERR)))
		bad("iter %lu: poll revents %#x", iter, (unsigned short)p.revents);
}

static void call_seekmap(struct fs *s)
{
	long ret;
	void *m;
	int err;

	iter++;
	switch (rn(4)) {
	case 0:
		ret = pread(s->fd, A.bm, 1 + rn(64), any64() & INT64_MAX);
		err = errno;
		expect_exact(OP_SEEKMAP, ret, err, ESPIPE, "pread");
		break;
	case 1:
		ret = pwrite(s->fd, A.bm, 1 + rn(64), any64() & INT64_MAX);
		err = errno;
		expect_exact(OP_SEEKMAP, ret, err, ESPIPE, "pwrite");
		break;
	case 2:
		ret = lseek(s->fd, any64() & INT64_MAX, rn(3));
		err = errno;
		expect_exact(OP_SEEKMAP, ret, err, ESPIPE, "lseek");
		break;
	default:
		m = mmap(NULL, PG * (1 + rn(4)), PROT_READ | (chance(50) ? PROT_WRITE : 0),
			 MAP_SHARED, s->fd, 0);
		err = errno;
		if (m != MAP_FAILED) {
			bad("iter %lu: mmap of /dev/rdmamig succeeded", iter);
			munmap(m, PG);
		}
		expect_exact(OP_SEEKMAP, m == MAP_FAILED ? -1 : 0, err, ENODEV, "mmap");
	}
}

/* ---- leaks ------------------------------------------------------------ */

/* mm->pinned_vm of this process, in kB (VmPin). */
static long vm_pinned_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
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

/* ---- the fixture ------------------------------------------------------ */

#define NPOOL 5

FIXTURE(fuzz) {
	bool no_dev;
	struct fs pool[NPOOL];
	long refcnt0;
	struct timespec t0;
};

FIXTURE_SETUP(fuzz)
{
	int i, fd;

	cfg_load();
	signals_init();
	tally_reset();
	for (i = 0; i < NPOOL; i++)
		self->pool[i].fd = -1;
	fd = dev_open(false);
	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO)) {
		self->no_dev = true;
		SKIP(return, "%s: %s (module not loaded?)", DEV_PATH, strerror(errno));
	}
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", DEV_PATH, strerror(errno));
	close(fd);
	ASSERT_TRUE(arenas_init()) TH_LOG("mmap: %s", strerror(errno));
	self->refcnt0 = module_refcnt();
	seed_for(_metadata->name, 0);
	clock_gettime(CLOCK_MONOTONIC, &self->t0);
	TH_LOG("seed %#llx (RDMAMIG_FUZZ_SEED), iterations %lu (RDMAMIG_FUZZ_ITERS), "
	       "local address %s", (unsigned long long)cfg_seed, cfg_iters,
	       cfg_addr ?: "none");
}

FIXTURE_TEARDOWN(fuzz)
{
	int i;

	for (i = 0; i < NPOOL; i++)
		fs_close(&self->pool[i]);
}

/* The harness (6.1) runs a test even when its setup skipped: check here. */
#define NEED_DEV() do {							\
	if (self->no_dev)						\
		SKIP(return, "no %s", DEV_PATH);			\
} while (0)

static double secs_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Close everything; nothing stays pinned, no module reference is left. */
static void check_released(struct __test_metadata *_metadata,
			   FIXTURE_DATA(fuzz) *self)
{
	long pinned, refs;
	int i;

	for (i = 0; i < NPOOL; i++)
		fs_close(&self->pool[i]);
	pinned = vm_pinned_kb();
	refs = module_refcnt();
	EXPECT_EQ(0, pinned) TH_LOG("VmPin %ld kB after closing every session", pinned);
	if (self->refcnt0 >= 0)
		EXPECT_EQ(self->refcnt0, refs)
			TH_LOG("module refcnt %ld, was %ld before", refs, self->refcnt0);
	TH_LOG("%lu calls in %.1f s", iter, secs_since(&self->t0));
}

/* ---- pool shaping: move sessions between states ------------------------ */

/* A valid block of the arena's read-write part, maybe overlapping. */
static int add_good_block(struct fs *s)
{
	struct rdmamig_block b = { .size = sizeof(b) };

	b.addr = (uintptr_t)A.blk + rn(BLK_RW - 4) * PG;
	b.length = (1 + rn(4)) * PG;
	snprintf(b.name, sizeof(b.name), "blk%u", s->names++);
	return ioctl(s->fd, RDMAMIG_IOC_ADD_BLOCK, &b);
}

static int listen_local(int fd, uint16_t *port)
{
	struct rdmamig_addr a = { .size = sizeof(a) };

	if (!cfg_addr)
		return -1;
	strcpy(a.host, cfg_addr);
	if (ioctl(fd, RDMAMIG_IOC_LISTEN, &a))
		return -1;
	if (port)
		*port = a.port;
	return 0;
}

/* Before a call: now and then reopen, add, listen, cancel, or toggle. */
static void shape(struct __test_metadata *_metadata, struct fs *s)
{
	unsigned int r = rn(1000);
	int fl;

	if (s->fd < 0 || r < 15) {
		fs_close(s);
		/* Some without a secret: LISTEN and CONNECT say ENOKEY. */
		ASSERT_TRUE(fs_open_key(s, chance(85))) TH_LOG("open: %s", strerror(errno));
		/* Fresh sessions: some with blocks, some listening already. */
		if (chance(60))
			for (fl = rn(4); fl >= 0; fl--)
				add_good_block(s);
		if (chance(25))
			listen_local(s->fd, NULL);
	} else if (r < 60) {
		add_good_block(s);
	} else if (r < 70) {
		listen_local(s->fd, NULL);
	} else if (r < 75) {
		ioctl(s->fd, RDMAMIG_IOC_CANCEL);
	} else if (r < 85) {
		s->nonblock = !s->nonblock;
		fl = fcntl(s->fd, F_GETFL);
		fcntl(s->fd, F_SETFL, s->nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
	}
}

/* ---- the tests -------------------------------------------------------- */

/* Other magics, and 0xd7's unused numbers: ENOTTY, and nothing changes. */
TEST_F_TIMEOUT(fuzz, unknown_numbers, 120)
{
	/* Not 0x00 ('FIBMAP', 'FIGETBSZ'), 'X', 'f', 'T', 0x94: the VFS's. */
	static const unsigned int magics[] = { 0xd6, 0xd8, 0x01, 0x57, 0xee, 0xff, 0x7f };
	struct rdmamig_stats st;
	struct fs *s = &self->pool[0];
	unsigned long n, i;
	unsigned int m, nr;
	long ret;
	int err;

	NEED_DEV();
	ASSERT_TRUE(fs_open(s));
	ASSERT_EQ(0, add_good_block(s));
	n = cfg_iters / 8 + 1;
	for (m = 0; m < ARRAY_LEN(magics); m++)
		for (nr = 0; nr <= 0x13; nr++)
			for (i = 0; i < n; i++) {
				unsigned long cmd = _IOC(rn(4), magics[m], chance(90) ? nr : rn(256),
							 rn(1U << _IOC_SIZEBITS));

				iter++;
				ret = ioctl(s->fd, cmd, chance(50) ? any64() : place(pick_place(), 64));
				err = errno;
				expect_exact(OP_MAGIC, ret, err, ENOTTY, "cmd %#lx", cmd);
			}
	for (nr = 0; nr <= 0x13; nr++) {
		if (nr && nr <= 0x12)
			continue;
		for (i = 0; i < n * 4; i++) {
			unsigned long cmd = chance(50) ? official_cmd[nr] :
					    _IOC(rn(4), RDMAMIG_IOC_MAGIC, nr, rn(1U << _IOC_SIZEBITS));

			iter++;
			ret = ioctl(s->fd, cmd, chance(50) ? any64() : place(pick_place(), 64));
			err = errno;
			expect_exact(nr, ret, err, ENOTTY, "cmd %#lx", cmd);
		}
	}
	ASSERT_EQ(0, get_stats(s->fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, st.state);
	EXPECT_EQ(0, st.error);
	EXPECT_TRUE(tally_report(_metadata));
	check_released(_metadata, self);
}

/*
 * Every number 0x00..0x13 in turn, cfg_iters calls each, on a pool of
 * sessions moved between none, none with blocks, listening, failed and
 * cancelled as it goes.
 */
TEST_F_TIMEOUT(fuzz, each_number, 300)
{
	struct ctx c = { .max_connects = 4 + cfg_iters / 100 };
	unsigned long i;
	unsigned int nr;

	NEED_DEV();
	for (nr = 0; nr <= 0x13; nr++) {
		for (i = 0; i < cfg_iters; i++) {
			c.s = &self->pool[rn(NPOOL)];
			shape(_metadata, c.s);
			call_ioctl(&c, nr);
		}
	}
	TH_LOG("%u CONNECTs could start (documentation addresses, <= 100 ms)",
	       c.connects < c.max_connects ? c.connects : c.max_connects);
	EXPECT_TRUE(tally_report(_metadata));
	check_released(_metadata, self);
}

/* read, write, poll (and pread, lseek, mmap) in every state of the pool. */
TEST_F_TIMEOUT(fuzz, file_ops, 300)
{
	unsigned long i;
	struct fs *s;

	NEED_DEV();
	for (i = 0; i < cfg_iters * 4; i++) {
		s = &self->pool[rn(NPOOL)];
		shape(_metadata, s);
		switch (rn(10)) {
		case 0: case 1: case 2:
			call_read(s);
			break;
		case 3: case 4: case 5:
			call_write(s);
			break;
		case 6: case 7:
			call_poll(s);
			break;
		default:
			call_seekmap(s);
		}
	}
	EXPECT_TRUE(tally_report(_metadata));
	check_released(_metadata, self);
}

/* ---- a connected pair ------------------------------------------------- */

#define NO_RDMA(e) ((e) == EADDRNOTAVAIL || (e) == ENODEV || (e) == ENETUNREACH)

static uint64_t pattern(uint64_t i)
{
	uint64_t z = i * 0x9e3779b97f4a7c15ULL + 0x1234567;

	z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
	return z ^ (z >> 29);
}

enum pair_kind {
	PAIR_PLAIN,		/* dynamic registration */
	PAIR_PIN_ALL,
	PAIR_SRC_HOLE,		/* a PROT_NONE page in the source's block */
	PAIR_DST_HOLE,		/* ... in the destination's */
	PAIR_CLOSE_DST,		/* the destination goes away mid-way */
	PAIR_CANCEL_SRC,	/* the source cancels mid-way */
	NPAIR_KINDS
};

static const char *const pair_name[] = {
	"plain", "pin-all", "source hole", "destination hole",
	"destination closes", "source cancels",
};

struct pair {
	struct fs src, dst;
	uint8_t *smem, *dmem;	/* one mapping each, blocks side by side */
	uint64_t len;		/* bytes per side */
	bool may_complete;	/* the fuzz may COMPLETE the source */
};

static int pair_add_blocks(struct fs *s, uint8_t *mem, const uint64_t *pages,
			   uint32_t n)
{
	struct rdmamig_block b = { .size = sizeof(b) };
	uint64_t off = 0;
	uint32_t i;

	for (i = 0; i < n; i++) {
		b.addr = (uintptr_t)mem + off;
		b.length = pages[i] * PG;
		snprintf(b.name, sizeof(b.name), "ram%u", i);
		if (ioctl(s->fd, RDMAMIG_IOC_ADD_BLOCK, &b))
			return -1;
		s->bpages[i] = pages[i];
		off += b.length;
	}
	s->nblocks = n;
	return 0;
}

/* Set up a pair of @kind; 0, or -1 with errno (the skip reasons too). */
static int pair_start(struct pair *p, enum pair_kind kind)
{
	uint64_t pages[4], i, total = 0;
	struct rdmamig_params prm = { .size = sizeof(prm), .mask = RDMAMIG_PARAM_CAPS,
				      .caps = RDMAMIG_CAP_PIN_ALL };
	struct rdmamig_addr a = { .size = sizeof(a), .timeout_ms = 20000 };
	uint32_t n = 1 + rn(3);
	uint16_t port;
	int ret, err;

	memset(p, 0, sizeof(*p));
	p->src.fd = p->dst.fd = -1;
	for (i = 0; i < n; i++) {
		pages[i] = 1 + rn(chance(30) ? 320 : 48);
		total += pages[i];
	}
	p->len = total * PG;
	p->smem = map(p->len, PROT_READ | PROT_WRITE);
	p->dmem = map(p->len, PROT_READ | PROT_WRITE);
	if (!p->smem || !p->dmem)
		return -1;
	for (i = 0; i < p->len / 8; i++)	/* some zero pages too */
		((uint64_t *)p->smem)[i] = (i / (PG / 8)) % 5 == 3 ? 0 : pattern(i);
	if (kind == PAIR_SRC_HOLE)
		mprotect(p->smem + rn(total) * PG, PG, PROT_NONE);
	if (kind == PAIR_DST_HOLE)
		mprotect(p->dmem + rn(total) * PG, PG, PROT_NONE);

	p->src.fd = dev_open(false);
	p->dst.nonblock = chance(50);
	p->dst.fd = dev_open(p->dst.nonblock);
	if (p->src.fd < 0 || p->dst.fd < 0)
		return -1;
	p->src.live = p->dst.live = true;
	if (kind == PAIR_PIN_ALL &&
	    (ioctl(p->src.fd, RDMAMIG_IOC_SET_PARAMS, &prm) ||
	     ioctl(p->dst.fd, RDMAMIG_IOC_SET_PARAMS, &prm)))
		return -1;
	if (pair_add_blocks(&p->src, p->smem, pages, n) ||
	    pair_add_blocks(&p->dst, p->dmem, pages, n))
		return -1;
	if (listen_local(p->dst.fd, &port))
		return -1;
	strcpy(a.host, cfg_addr);
	a.port = port;
	/* Our own listener: a real connection, which may take a while under TCG. */
	guard_start(30);
	ret = ioctl(p->src.fd, RDMAMIG_IOC_CONNECT, &a);
	err = errno;
	timer_stop();
	if (guard_fired)
		bad("CONNECT to our own listener took over 30 s");
	if (!ret) {
		struct rdmamig_stats st, dt;

		/* Both hold the test key: each proved it to the other. */
		if (get_stats(p->src.fd, &st) || get_stats(p->dst.fd, &dt) ||
		    !(st.caps & RDMAMIG_CAP_AUTH) || !(dt.caps & RDMAMIG_CAP_AUTH))
			bad("pair %s: connected without RDMAMIG_CAP_AUTH: caps %#llx / %#llx",
			    pair_name[kind], (unsigned long long)st.caps,
			    (unsigned long long)dt.caps);
	}
	errno = err;
	return ret;
}

static void pair_stop(struct pair *p)
{
	fs_close(&p->src);
	fs_close(&p->dst);
	if (p->smem)
		munmap(p->smem, p->len);
	if (p->dmem)
		munmap(p->dmem, p->len);
}

/*
 * One random operation on either side of a pair.  Rounds, END_ROUND and
 * COMPLETE really move data; each is guarded against a hang.
 */
static void pair_op(struct ctx *c, struct pair *p)
{
	struct fs *s = chance(60) ? &p->src : &p->dst;
	static const unsigned int nrs[] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x07, 0x07, 0x07, 0x08,
		0x08, 0x09, 0x0b, 0x0b, 0x0c, 0x0c, 0x00, 0x0d, 0x0e, 0x0f, 0x10,
		0x11, 0x12, 0x13,
	};
	unsigned int r = rn(100), nr;

	if (s->fd < 0)
		return;
	c->s = s;
	if (r < 12) {
		call_read(s);
	} else if (r < 24) {
		call_write(s);
	} else if (r < 30) {
		call_poll(s);
	} else {
		nr = PICK(nrs);
		/* COMPLETE ends the data path: not too early, not always. */
		if (nr == 0x09 && s == &p->src && (!p->may_complete || chance(85)))
			nr = 0x08;
		guard_start(20);
		call_ioctl(c, nr);
		timer_stop();
		if (guard_fired)
			bad("iter %lu: %s took over 20 s on a %s", iter, opname[nr],
			    s == &p->src ? "source" : "destination");
	}
}

/* Send everything, complete, and compare: the pair still migrates. */
static void pair_finish(struct __test_metadata *_metadata, struct pair *p)
{
	uint64_t bits[(320 * 3 + 63) / 64 + 1];
	struct rdmamig_round r = { .size = sizeof(r), .flags = RDMAMIG_ROUND_FINAL };
	struct rdmamig_stats st;
	static const char state[] = "the device state, last";
	char buf[4096];
	ssize_t n;
	uint32_t b;
	int ret = 0, fl;

	memset(bits, 0xff, sizeof(bits));
	r.bitmap = (uintptr_t)bits;
	guard_start(60);
	for (b = 0; b < p->src.nblocks && !ret; b++) {
		r.block = b;
		r.npages = p->src.bpages[b];
		ret = ioctl(p->src.fd, RDMAMIG_IOC_SEND_ROUND, &r);
	}
	if (!ret)
		ret = ioctl(p->src.fd, RDMAMIG_IOC_END_ROUND);
	if (!ret && write(p->src.fd, state, sizeof(state)) == sizeof(state))
		bytes_written += sizeof(state);
	if (!ret)
		ret = ioctl(p->src.fd, RDMAMIG_IOC_COMPLETE);
	timer_stop();
	EXPECT_EQ(0, guard_fired) TH_LOG("the final round hangs");
	get_stats(p->src.fd, &st);
	EXPECT_EQ(0, ret) TH_LOG("final round: %s, state %u, reason \"%s\"",
				 strerror(errno), st.state, st.reason);
	if (ret)
		return;
	/* The destination: the rest of the stream, then end of file. */
	fl = fcntl(p->dst.fd, F_GETFL);
	fcntl(p->dst.fd, F_SETFL, fl & ~O_NONBLOCK);
	guard_start(20);
	while ((n = read(p->dst.fd, buf, sizeof(buf))) > 0)
		bytes_read += n;
	timer_stop();
	EXPECT_EQ(0, n) TH_LOG("destination read: %s", strerror(errno));
	EXPECT_EQ(bytes_written, bytes_read) TH_LOG("device-state bytes lost or made up");
	EXPECT_EQ(0, memcmp(p->smem, p->dmem, p->len)) TH_LOG("memory differs");
	ASSERT_EQ(0, get_stats(p->dst.fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state) TH_LOG("%s", st.reason);
}

/*
 * A source and a destination of this process, connected over rxe at
 * $RDMAMIG_LOCAL_ADDR; fuzzed from both sides while connected, active,
 * failing, failed, cancelled and completed.
 */
/* The session's state once it is terminal, or after @ms. */
static uint32_t settle(int fd, struct rdmamig_stats *st, unsigned int ms)
{
	unsigned int waited = 0;

	for (;;) {
		if (get_stats(fd, st))
			return RDMAMIG_STATE_NONE;
		if (terminal(st->state) || waited >= ms)
			return st->state;
		usleep(20000);
		waited += 20;
	}
}

/* A full final round over the hole: both ends must fail, and say so. */
static void pair_hole(struct __test_metadata *_metadata, struct pair *p,
		      enum pair_kind kind)
{
	uint64_t bits[(320 * 3 + 63) / 64 + 1];
	struct rdmamig_round r = { .size = sizeof(r), .flags = RDMAMIG_ROUND_FINAL };
	struct rdmamig_stats st, dt;
	uint32_t b;
	int ret = 0, err = 0;

	memset(bits, 0xff, sizeof(bits));
	r.bitmap = (uintptr_t)bits;
	guard_start(60);
	for (b = 0; b < p->src.nblocks && !ret; b++) {
		r.block = b;
		r.npages = p->src.bpages[b];
		ret = ioctl(p->src.fd, RDMAMIG_IOC_SEND_ROUND, &r);
	}
	if (!ret)
		ret = ioctl(p->src.fd, RDMAMIG_IOC_END_ROUND);
	err = errno;
	timer_stop();
	EXPECT_EQ(0, guard_fired) TH_LOG("a round over a hole hangs");
	EXPECT_EQ(-1, ret) TH_LOG("a round over a PROT_NONE page succeeded");
	settle(p->src.fd, &st, 5000);
	settle(p->dst.fd, &dt, 5000);
	TH_LOG("pair %s: round over the hole: %s; source %u %d \"%s\", destination %u %d \"%s\"",
	       pair_name[kind], ret ? ename(err) : "ok", st.state, st.error, st.reason,
	       dt.state, dt.error, dt.reason);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, st.state);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, dt.state);
}

/*
 * A source and a destination of this process, connected over rxe at
 * $RDMAMIG_LOCAL_ADDR; fuzzed from both sides while connected, active,
 * failing, failed, cancelled and completed.  Then, by kind: the pair
 * still migrates (memory and device state compared), a round over a hole
 * fails both ends, a closed destination fails the source, a cancelled
 * source fails the destination.
 */
TEST_F_TIMEOUT(fuzz, connected, 600)
{
	struct ctx c = { .max_connects = 0 };
	unsigned long ops = cfg_iters / 4 + 10, i;
	struct rdmamig_stats st, dt;
	unsigned int kind;
	struct pair p;

	NEED_DEV();
	if (!cfg_addr)
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set (no testbed)");
	for (kind = 0; kind < NPAIR_KINDS; kind++) {
		bool connected;

		bytes_written = bytes_read = 0;
		connected = !pair_start(&p, kind);
		p.may_complete = kind == PAIR_CLOSE_DST || kind == PAIR_CANCEL_SRC;
		if (!connected) {
			int err = errno;

			if (kind == 0 && p.dst.fd >= 0 && NO_RDMA(err)) {
				pair_stop(&p);
				SKIP(return, "no RDMA at %s: %s", cfg_addr, strerror(err));
			}
			get_stats(p.src.fd, &st);
			TH_LOG("pair %s: CONNECT: %s, reason \"%s\"", pair_name[kind],
			       strerror(err), st.reason);
			bad("pair %s: CONNECT to our own listener: %s (%s)", pair_name[kind],
			    ename(err), st.reason);
		}
		for (i = 0; i < ops; i++) {
			if (i == ops / 2 && kind == PAIR_CLOSE_DST)
				fs_close(&p.dst);
			if (i == ops / 2 && kind == PAIR_CANCEL_SRC)
				ioctl(p.src.fd, RDMAMIG_IOC_CANCEL);
			pair_op(&c, &p);
		}
		get_stats(p.src.fd, &st);
		memset(&dt, 0, sizeof(dt));
		if (p.dst.fd >= 0)
			get_stats(p.dst.fd, &dt);
		TH_LOG("pair %s, %u blocks, %llu pages: source state %u (%s), "
		       "destination state %u (%s), %llu rounds",
		       pair_name[kind], p.src.nblocks, (unsigned long long)(p.len / PG),
		       st.state, st.reason, dt.state, dt.reason,
		       (unsigned long long)st.rounds);
		if (st.error == -EPROTO || dt.error == -EPROTO)
			bad("pair %s: protocol error between two rdmamig ends: \"%s\" / \"%s\"",
			    pair_name[kind], st.reason, dt.reason);
		if (!connected) {
			pair_stop(&p);
			continue;
		}
		switch (kind) {
		case PAIR_PLAIN:
		case PAIR_PIN_ALL:
			/* Nothing the fuzz did may have broken the pair. */
			if (terminal(st.state) || terminal(dt.state))
				bad("pair %s: ended during the fuzz: \"%s\" / \"%s\"",
				    pair_name[kind], st.reason, dt.reason);
			else
				pair_finish(_metadata, &p);
			break;
		case PAIR_SRC_HOLE:
		case PAIR_DST_HOLE:
			if (!terminal(st.state))
				pair_hole(_metadata, &p, kind);
			break;
		case PAIR_CLOSE_DST:
			/* The source learns of it, whatever it was doing. */
			EXPECT_TRUE(terminal(settle(p.src.fd, &st, 5000)))
				TH_LOG("source state %u after its destination closed", st.state);
			break;
		case PAIR_CANCEL_SRC:
			EXPECT_TRUE(terminal(settle(p.dst.fd, &dt, 5000)))
				TH_LOG("destination state %u after its source cancelled", dt.state);
			break;
		}
		pair_stop(&p);
	}
	EXPECT_TRUE(tally_report(_metadata));
	check_released(_metadata, self);
}

/* ---- threads ---------------------------------------------------------- */

struct thr {
	FIXTURE_DATA(fuzz) *self;
	unsigned int id;
	unsigned long n;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct ctx c = { .max_connects = 2 };
	static const unsigned int nrs[] = {
		0x01, 0x02, 0x03, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
		0x0b, 0x0c, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
	};
	unsigned long i;
	struct fs *s;

	seed_for("threads", t->id + 1);
	for (i = 0; i < t->n; i++) {
		s = &t->self->pool[rn(NPOOL)];
		c.s = s;
		switch (rn(8)) {
		case 0:
			add_good_block(s);
			break;
		case 1:
			if (chance(30))
				listen_local(s->fd, NULL);
			break;
		case 2:
			call_poll(s);
			break;
		case 3:
			call_read(s);
			break;
		default:
			call_ioctl(&c, PICK(nrs));
		}
	}
	return NULL;
}

/*
 * Threads on shared sessions (O_NONBLOCK, never closed under them):
 * CANCEL against LISTEN, ADD_BLOCK, ACCEPT and GET_STATS, and so on.
 */
TEST_F_TIMEOUT(fuzz, threads, 300)
{
	struct thr t[4];
	pthread_t tid[4];
	unsigned int i, round;

	NEED_DEV();
	/* The arenas are shared: argument contents may race, as in a VMM. */
	threaded = true;
	for (round = 0; round < 4; round++) {
		for (i = 0; i < NPOOL; i++) {
			fs_close(&self->pool[i]);
			self->pool[i].nonblock = true;
			self->pool[i].fd = dev_open(true);
			ASSERT_LE(0, self->pool[i].fd);
			if (chance(70))
				add_good_block(&self->pool[i]);
		}
		for (i = 0; i < 4; i++) {
			t[i] = (struct thr){ .self = self, .id = round * 4 + i,
					     .n = cfg_iters / 2 + 1 };
			ASSERT_EQ(0, pthread_create(&tid[i], NULL, thr_main, &t[i]));
		}
		for (i = 0; i < 4; i++)
			pthread_join(tid[i], NULL);
	}
	threaded = false;
	EXPECT_TRUE(tally_report(_metadata));
	check_released(_metadata, self);
}

/* ---- deterministic checks of what the fuzzing showed ------------------ */

/*
 * "An address literal only: no port suffix, no name, no garbage" (cm.c),
 * "not an address literal: EINVAL" (Documentation/uapi.rst): an IPv4
 * host with a ":..." tail is refused with EINVAL, not parsed up to the
 * colon.  LISTEN at our own address, port 0; CONNECT to a documentation
 * address for at most 50 ms.  (An IPv6 "%scope" tail may be there, so
 * those are only logged: the kernel ignores it on a global address.)
 */
TEST_F(fuzz, ipv4_port_tail_refused)
{
	static const char *const tails[] = { ":1", ":", ":0", ":80:", ":65536", ":x" };
	static const char *const v6[] = { "2001:db8::1%1", "2001:db8::1%", "2001:db8::1%99999" };
	struct rdmamig_addr a;
	struct fs *s = &self->pool[0];
	unsigned int i, accepted = 0;
	bool listen, v4;
	int ret, err;

	NEED_DEV();
	for (i = 0; i < ARRAY_LEN(tails) + 2 * ARRAY_LEN(v6) + 1; i++) {
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.timeout_ms = 50;
		v4 = true;
		listen = true;
		if (i < ARRAY_LEN(tails)) {
			if (!cfg_addr)
				continue;
			snprintf(a.host, sizeof(a.host), "%s%s", cfg_addr, tails[i]);
		} else if (i < ARRAY_LEN(tails) + 2 * ARRAY_LEN(v6)) {
			snprintf(a.host, sizeof(a.host), "%s",
				 v6[(i - ARRAY_LEN(tails)) % ARRAY_LEN(v6)]);
			listen = i < ARRAY_LEN(tails) + ARRAY_LEN(v6);
			v4 = false;
		} else {
			strcpy(a.host, "192.0.2.1:1");
			listen = false;
		}
		ASSERT_TRUE(fs_open(s));
		ASSERT_EQ(0, add_good_block(s));
		ret = ioctl(s->fd, listen ? RDMAMIG_IOC_LISTEN : RDMAMIG_IOC_CONNECT, &a);
		err = errno;
		if (ret != -1 || err != EINVAL) {
			accepted += v4;
			TH_LOG("%s%s \"%s\": %s%s", v4 ? "" : "note: ",
			       listen ? "LISTEN" : "CONNECT", a.host,
			       ret ? strerror(err) : "accepted",
			       ret ? " (parsed up to the tail, not EINVAL)" : "");
		}
		fs_close(s);
	}
	EXPECT_EQ(0U, accepted) TH_LOG("IPv4 hosts with a \":...\" tail are not refused");
	check_released(_metadata, self);
}

/*
 * "An unreadable or unwritable argument gives EFAULT" - and then nothing
 * happened: ADD_BLOCK and LISTEN whose struct is read-only (the kernel
 * reads it, but cannot write back the index or the port) must not have
 * added the block or started listening; WAIT_EVENT that cannot write the
 * event must not have consumed it.
 */
TEST_F(fuzz, efault_changes_nothing)
{
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)A.blk, .length = PG, .name = "ro",
	};
	struct rdmamig_addr a = { .size = sizeof(a) };
	struct rdmamig_event ev = { .size = sizeof(ev) };
	struct rdmamig_stats st;
	struct pollfd pfd;
	struct fs *s = &self->pool[0];
	int ret, err;

	NEED_DEV();
	/* ADD_BLOCK */
	ASSERT_TRUE(fs_open(s));
	ASSERT_EQ(0, mprotect(A.ro, PG, PROT_READ | PROT_WRITE));
	memcpy(A.ro, &b, sizeof(b));
	ASSERT_EQ(0, mprotect(A.ro, PG, PROT_READ));
	ret = ioctl(s->fd, RDMAMIG_IOC_ADD_BLOCK, A.ro);
	err = errno;
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EFAULT, err);
	b.addr += PG;
	ret = ioctl(s->fd, RDMAMIG_IOC_ADD_BLOCK, &b);
	err = errno;
	EXPECT_EQ(0, ret) TH_LOG("ADD_BLOCK \"ro\" after its EFAULT: %s: the block "
				 "was added though the call failed", strerror(err));
	fs_close(s);

	/* LISTEN */
	if (cfg_addr) {
		ASSERT_TRUE(fs_open(s));
		ASSERT_EQ(0, add_good_block(s));
		strcpy(a.host, cfg_addr);
		ASSERT_EQ(0, mprotect(A.ro, PG, PROT_READ | PROT_WRITE));
		memcpy(A.ro, &a, sizeof(a));
		ASSERT_EQ(0, mprotect(A.ro, PG, PROT_READ));
		ret = ioctl(s->fd, RDMAMIG_IOC_LISTEN, A.ro);
		err = errno;
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EFAULT, err);
		ASSERT_EQ(0, get_stats(s->fd, &st));
		EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, st.state)
			TH_LOG("LISTEN failed with %s, yet the session listens (state %u, "
			       "role %u) on a port nobody was told", ename(err), st.state,
			       st.role);
		fs_close(s);
	}

	/* WAIT_EVENT: the cancellation queues one (session.c). */
	s->fd = dev_open(true);
	ASSERT_LE(0, s->fd);
	ASSERT_EQ(0, ioctl(s->fd, RDMAMIG_IOC_CANCEL));
	pfd = (struct pollfd){ .fd = s->fd, .events = POLLIN };
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
		/* size readable, the rest is PROT_NONE */
		memcpy(A.rw + ARG_ROOM - 4, &ev.size, 4);
		ret = ioctl(s->fd, RDMAMIG_IOC_WAIT_EVENT, A.rw + ARG_ROOM - 4);
		err = errno;
		EXPECT_EQ(-1, ret);
		EXPECT_EQ(EFAULT, err);
		ret = ioctl(s->fd, RDMAMIG_IOC_WAIT_EVENT, &ev);
		EXPECT_EQ(0, ret) TH_LOG("WAIT_EVENT failed with %s and took the event "
					 "with it: now %s", ename(err), strerror(errno));
	} else {
		TH_LOG("note: no event after CANCEL (Documentation/uapi.rst says none)");
	}
	fs_close(s);
	check_released(_metadata, self);
}

/*
 * "CANCEL ... works while another thread blocks in a round"
 * (Documentation/uapi.rst): also when the round sleeps in the bandwidth
 * limit.  Two runs at 68 bytes/s: the second waits a minute to start.
 * CANCEL must not wait that minute out (nor must netlink CANCEL_SESSION,
 * which would hold the session list meanwhile).  A signal ends the wait
 * in any case, so the test does not hang.
 */
static int throttle_src;
static volatile int throttle_round_done, throttle_cancel_done;
static int throttle_round_ret, throttle_round_err;

static void on_usr1(int sig)
{
	(void)sig;
}

static void *throttle_sender(void *arg)
{
	uint64_t bits = 0x5;	/* pages 0 and 2: two runs */
	struct rdmamig_round r = {
		.size = sizeof(r), .npages = 4, .bitmap = (uintptr_t)&bits,
	};

	(void)arg;
	throttle_round_ret = ioctl(throttle_src, RDMAMIG_IOC_SEND_ROUND, &r);
	throttle_round_err = errno;
	throttle_round_done = 1;
	return NULL;
}

static void *throttle_canceller(void *arg)
{
	(void)arg;
	ioctl(throttle_src, RDMAMIG_IOC_CANCEL);
	throttle_cancel_done = 1;
	return NULL;
}

TEST_F_TIMEOUT(fuzz, cancel_wakes_throttled_round, 120)
{
	struct rdmamig_params prm = {
		.size = sizeof(prm), .mask = RDMAMIG_PARAM_MAX_BANDWIDTH,
		.max_bandwidth = 68,
	};
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct rdmamig_addr a = { .size = sizeof(a), .timeout_ms = 20000 };
	struct fs *src = &self->pool[0], *dst = &self->pool[1];
	uint64_t pages = 4;
	struct timespec t0;
	pthread_t ts, tc;
	uint16_t port;
	double waited;
	uint8_t *mem;

	NEED_DEV();
	if (!cfg_addr)
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set (no testbed)");
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	mem = map(8 * PG, PROT_READ | PROT_WRITE);
	ASSERT_NE(NULL, mem);
	memset(mem, 0x5a, 8 * PG);
	src->fd = dev_open(false);
	dst->fd = dev_open(false);
	ASSERT_LE(0, src->fd);
	ASSERT_LE(0, dst->fd);
	ASSERT_EQ(0, pair_add_blocks(src, mem, &pages, 1));
	ASSERT_EQ(0, pair_add_blocks(dst, mem + 4 * PG, &pages, 1));
	if (listen_local(dst->fd, &port) && NO_RDMA(errno))
		SKIP(return, "no RDMA at %s: %s", cfg_addr, strerror(errno));
	strcpy(a.host, cfg_addr);
	a.port = port;
	ASSERT_EQ(0, ioctl(src->fd, RDMAMIG_IOC_CONNECT, &a)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, ioctl(src->fd, RDMAMIG_IOC_SET_PARAMS, &prm));

	throttle_src = src->fd;
	throttle_round_done = throttle_cancel_done = 0;
	ASSERT_EQ(0, pthread_create(&ts, NULL, throttle_sender, NULL));
	usleep(500 * 1000);		/* in the second run's wait by now */
	EXPECT_EQ(0, throttle_round_done);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, pthread_create(&tc, NULL, throttle_canceller, NULL));
	while (!throttle_cancel_done && secs_since(&t0) < 5)
		usleep(10000);
	waited = secs_since(&t0);
	EXPECT_TRUE(throttle_cancel_done)
		TH_LOG("CANCEL still blocked after %.1f s: it waits for the round's "
		       "bandwidth sleep to end (round %s)", waited,
		       throttle_round_done ? "done" : "still sleeping");
	/* End the sleep either way, then everything must come back. */
	if (!throttle_round_done)
		pthread_kill(ts, SIGUSR1);
	pthread_join(ts, NULL);
	pthread_join(tc, NULL);
	EXPECT_EQ(-1, throttle_round_ret);
	TH_LOG("CANCEL returned after %.1f s; SEND_ROUND: %s", waited,
	       throttle_round_ret ? ename(throttle_round_err) : "ok");
	fs_close(src);
	fs_close(dst);
	munmap(mem, 8 * PG);
	check_released(_metadata, self);
}

/* ---- after all that ---------------------------------------------------- */

/* Last: a fresh session still works: a block, LISTEN at port 0, SETUP. */
TEST_F(fuzz, fresh_session_works)
{
	struct rdmamig_params prm = { .size = sizeof(prm) };
	struct rdmamig_stats st;
	struct fs *s = &self->pool[0];
	uint16_t port = 0;
	uint32_t index = 99;
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)A.blk, .length = 4 * PG,
		.name = "ram0",
	};

	NEED_DEV();
	ASSERT_TRUE(fs_open(s)) TH_LOG("open: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(s->fd, RDMAMIG_IOC_GET_PARAMS, &prm)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ((uint32_t)RDMAMIG_PROTO_VERSION, prm.wire_version);
	ASSERT_EQ(0, ioctl(s->fd, RDMAMIG_IOC_ADD_BLOCK, &b)) TH_LOG("%s", strerror(errno));
	index = b.index;
	EXPECT_EQ(0U, index);
	ASSERT_EQ(0, get_stats(s->fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, st.state);
	if (!cfg_addr) {
		check_released(_metadata, self);
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set: not listening");
	}
	ASSERT_EQ(0, listen_local(s->fd, &port)) TH_LOG("LISTEN at %s: %s", cfg_addr,
						      strerror(errno));
	EXPECT_NE(0, port);
	ASSERT_EQ(0, get_stats(s->fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_SETUP, st.state);
	EXPECT_EQ((uint32_t)RDMAMIG_ROLE_DEST, st.role);
	EXPECT_EQ(0, st.error);
	TH_LOG("listening at %s port %u", cfg_addr, port);
	check_released(_metadata, self);
}

TEST_HARNESS_MAIN
