// SPDX-License-Identifier: GPL-2.0
/*
 * teardown_race_test: a session torn down while its connection is still
 * busy (issue 14, defect 4).  Teardown must stop everything that can post
 * or queue work (the control rx work re-posting receives, the keepalive,
 * the pin-all registration) before it drains the queue pair and frees
 * what completions point at; these cases put a close or a cancel right
 * where something is still running, over and over:
 *
 *   close_dest_at_completed     the destination closes the moment it sees
 *                               COMPLETED, the source still connected
 *   close_source_after_complete the source closes the moment COMPLETE
 *                               returns, the destination still handling
 *                               the last messages
 *   cancel_races_complete       CANCEL (either end) from another thread
 *                               while the source is in COMPLETE
 *   cancel_races_connect        CANCEL (either end) from another thread
 *                               while the source is in CONNECT (the
 *                               connection request, the RAM blocks)
 *   cancel_then_close           CANCEL, then close: two teardowns
 *   pinall_close                a pin-all destination closed while its
 *                               pin-all work registers a 256 MiB block
 *
 * Both ends live in this process over the loop topology (rxe talking to
 * itself at $RDMAMIG_LOCAL_ADDR), every session with a 100 ms keepalive.
 * Each iteration checks what user space can see: data byte-identical
 * where a migration completed, states and errors coherent (a thread
 * samples GET_STATS of both ends throughout: no session is seen both
 * CANCELLED and COMPLETED; COMPLETE returning 0 means COMPLETED; a
 * cancelled session has no COMPLETED event), every close within 10 s (a
 * watchdog thread fails the test naming the call that hangs).  The
 * memory-safety side is the testbed's: vm.sh fails the run on any KASAN,
 * lockdep, kmemleak or WARN line on the console.
 *
 *   RDMAMIG_TEARDOWN_ITERS    iterations of every case (default: per case)
 *   RDMAMIG_TEARDOWN_SECONDS  but no case longer than this (default 25,
 *                             70 on a kernel whose release ends "-debug")
 *   RDMAMIG_TEARDOWN_SEED     seed of the random delays (printed)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"
#include "test_secret.h"
#include "test_session.h"

#define DEV_PATH	"/dev/" RDMAMIG_DEVICE_NAME
#define PG		4096UL
#define MIB		(1UL << 20)
#define KEEPALIVE_MS	100
#define CLOSE_LIMIT_MS	10000	/* a close longer than this hangs */
#define SMALL_LEN	(2 * MIB)
#define PINALL_LEN	(256 * MIB)
#define STATE_TEXT	"device state of teardown_race_test"

#define NO_RDMA(e) ((e) == EADDRNOTAVAIL || (e) == ENODEV || (e) == ENETUNREACH)

/* ---- time, randomness, the iteration budget ---------------------------- */

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void spin_us(uint64_t us)
{
	uint64_t end = now_us() + us;

	while (now_us() < end)
		;
}

static unsigned int seed;

static uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)(rand_r(&seed) % n) : 0;
}

static unsigned int env_uint(const char *name, unsigned int dflt)
{
	const char *s = getenv(name);

	return s && *s ? (unsigned int)strtoul(s, NULL, 0) : dflt;
}

/* A case runs its iterations, or until its time is up. */
struct budget {
	unsigned int iters;
	uint64_t end_us;
};

static struct budget budget(unsigned int dflt_iters)
{
	struct utsname u;
	unsigned int secs = 25;
	size_t n;

	if (!uname(&u) && (n = strlen(u.release)) > 6 &&
	    !strcmp(u.release + n - 6, "-debug"))
		secs = 70;
	secs = env_uint("RDMAMIG_TEARDOWN_SECONDS", secs);
	return (struct budget){
		.iters = env_uint("RDMAMIG_TEARDOWN_ITERS", dflt_iters),
		.end_us = now_us() + (uint64_t)secs * 1000000,
	};
}

static bool more(const struct budget *b, unsigned int i)
{
	return i < b->iters && (i == 0 || now_us() < b->end_us);
}

/* ---- the watchdog: a call that does not return fails the test ----------- */

#define NWATCH 4
enum { W_MAIN, W_PEER, W_CANCEL };

static struct watch {
	_Atomic uint64_t t0;	/* 0: nothing watched */
	const char *_Atomic what;
	unsigned int limit_ms;
} watches[NWATCH];
static atomic_bool watchdog_stop;
static pthread_t watchdog_thr;

static void watch_begin(int slot, const char *what, unsigned int limit_ms)
{
	watches[slot].limit_ms = limit_ms;
	atomic_store(&watches[slot].what, what);
	atomic_store(&watches[slot].t0, now_us());
}

/* Milliseconds since watch_begin(). */
static uint64_t watch_end(int slot)
{
	uint64_t t0 = atomic_exchange(&watches[slot].t0, 0);

	return (now_us() - t0) / 1000;
}

static void *watchdog_main(void *arg)
{
	int i;

	(void)arg;
	while (!atomic_load(&watchdog_stop)) {
		for (i = 0; i < NWATCH; i++) {
			uint64_t t0 = atomic_load(&watches[i].t0);

			if (t0 && now_us() - t0 > watches[i].limit_ms * 1000ULL) {
				/* The hung thread may keep us from exiting. */
				fprintf(stderr, "# FAIL: %s did not return within %u s (hung in teardown?)\n",
					atomic_load(&watches[i].what),
					watches[i].limit_ms / 1000);
				fflush(stderr);
				_exit(1);
			}
		}
		usleep(100 * 1000);
	}
	return NULL;
}

/* close() under the watchdog; its duration in ms. */
static uint64_t timed_close(int slot, int *fd, const char *what)
{
	uint64_t ms;

	if (*fd < 0)
		return 0;
	watch_begin(slot, what, CLOSE_LIMIT_MS);
	close(*fd);
	ms = watch_end(slot);
	*fd = -1;
	return ms;
}

/* ---- sessions ----------------------------------------------------------- */

static int dev_open(void)
{
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);

	if (fd >= 0 && set_test_secret(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int params(int fd, uint64_t caps)
{
	struct rdmamig_params p = {
		.size = sizeof(p),
		.mask = RDMAMIG_PARAM_CAPS | RDMAMIG_PARAM_KEEPALIVE,
		.caps = caps,
		.keepalive_ms = KEEPALIVE_MS,
	};

	return ioctl(fd, RDMAMIG_IOC_SET_PARAMS, &p);
}

static int add_block(int fd, void *mem, size_t len)
{
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)mem, .length = len,
		.name = "ram0",
	};

	return ioctl(fd, RDMAMIG_IOC_ADD_BLOCK, &b);
}

static uint32_t state_of(int fd)
{
	struct rdmamig_stats st;

	return get_stats(fd, &st) ? (uint32_t)-1 : st.state;
}

static bool terminal(uint32_t s)
{
	return s == RDMAMIG_STATE_COMPLETED || s == RDMAMIG_STATE_FAILED ||
	       s == RDMAMIG_STATE_CANCELLED;
}

/* The state once terminal, or whatever it is after @ms. */
static uint32_t wait_terminal(int fd, unsigned int ms)
{
	uint64_t end = now_us() + ms * 1000ULL;
	uint32_t s;

	while (!terminal(s = state_of(fd)) && now_us() < end)
		usleep(10 * 1000);
	return s;
}

static const char *state_name(uint32_t s)
{
	static const char *const names[] = {
		"NONE", "SETUP", "CONNECTED", "ACTIVE", "COMPLETED", "FAILED",
		"CANCELLED",
	};

	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* Count the events left in the queue, without waiting. */
struct evcount {
	unsigned int completed, failed;
	int32_t fail_error;
};

static struct evcount drain_events(int fd)
{
	struct evcount c = { 0 };
	struct rdmamig_event ev;
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	for (;;) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev))
			break;
		if (ev.type == RDMAMIG_EVENT_COMPLETED)
			c.completed++;
		if (ev.type == RDMAMIG_EVENT_FAILED) {
			if (!c.failed++)
				c.fail_error = ev.error;
		}
	}
	fcntl(fd, F_SETFL, fl);
	return c;
}

/* A source and a destination of one block "ram0", connected to each other. */
struct pair {
	int src, dst;
	uint8_t *smem, *dmem;
	size_t len;
	uint16_t port;
	const char *where;	/* what failed */
};

static int pair_open(struct pair *p, const char *addr, uint64_t caps)
{
	struct rdmamig_addr a = make_addr(addr, 0, 0);

	p->src = p->dst = -1;
	p->where = "open the destination";
	p->dst = dev_open();
	if (p->dst < 0)
		return -1;
	p->where = "destination SET_PARAMS/ADD_BLOCK";
	if (params(p->dst, caps) || add_block(p->dst, p->dmem, p->len))
		return -1;
	p->where = "LISTEN";
	if (ioctl(p->dst, RDMAMIG_IOC_LISTEN, &a))
		return -1;
	p->port = a.port;
	p->where = "open the source";
	p->src = dev_open();
	if (p->src < 0)
		return -1;
	p->where = "source SET_PARAMS/ADD_BLOCK";
	if (params(p->src, caps) || add_block(p->src, p->smem, p->len))
		return -1;
	return 0;
}

static int pair_connect(struct pair *p, const char *addr)
{
	struct rdmamig_addr a = make_addr(addr, p->port, 10000);

	return ioctl(p->src, RDMAMIG_IOC_CONNECT, &a);
}

/* Both closed, each bounded; the longer close in ms. */
static uint64_t pair_close(struct pair *p)
{
	uint64_t a, b;

	/* Either order: the first close tears down a live connection. */
	if (rnd(2)) {
		a = timed_close(W_MAIN, &p->src, "close of the source");
		b = timed_close(W_MAIN, &p->dst, "close of the destination");
	} else {
		b = timed_close(W_MAIN, &p->dst, "close of the destination");
		a = timed_close(W_MAIN, &p->src, "close of the source");
	}
	return a > b ? a : b;
}

/*
 * The session failed because the guest stalled past the keepalive's
 * deadline (2 x 100 ms + 1 s): seen on the debug kernel on a loaded host,
 * both ends "peer silent" at once.  An iteration whose set-up failed so
 * proves nothing about teardown: it is counted and dropped.
 */
static bool silent(int fd)
{
	struct rdmamig_stats st;

	return fd >= 0 && !get_stats(fd, &st) && strstr(st.reason, "peer silent");
}

/* Both ends' states and reasons, for a failure's message. */
static const char *ends(const struct pair *p, char *buf, size_t n)
{
	struct rdmamig_stats a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (p->src >= 0)
		get_stats(p->src, &a);
	if (p->dst >= 0)
		get_stats(p->dst, &b);
	snprintf(buf, n, "source %s \"%s\", destination %s \"%s\"",
		 p->src >= 0 ? state_name(a.state) : "closed", a.reason,
		 p->dst >= 0 ? state_name(b.state) : "closed", b.reason);
	return buf;
}

static void fill(uint8_t *mem, size_t len, uint64_t s)
{
	uint64_t *w = (uint64_t *)mem, i;

	for (i = 0; i < len / 8; i++)
		w[i] = (s + i) * 0x9e3779b97f4a7c15ULL;
}

static int round_of(int fd, uint64_t npages, uint32_t flags, uint64_t *bitmap)
{
	struct rdmamig_round r = {
		.size = sizeof(r), .flags = flags, .npages = npages,
		.bitmap = (uintptr_t)bitmap,
	};

	if (ioctl(fd, RDMAMIG_IOC_SEND_ROUND, &r))
		return -1;
	return ioctl(fd, RDMAMIG_IOC_END_ROUND);
}

/*
 * Everything but COMPLETE: a bulk round, then a final one with 8 pages
 * rewritten and one zeroed meanwhile, then the device state.
 */
static int pair_migrate(struct pair *p, uint64_t s)
{
	uint64_t npages = p->len / PG, bitmap[SMALL_LEN / PG / 64], i;

	if (npages > SMALL_LEN / PG) {
		p->where = "block too large for pair_migrate";
		return -1;
	}
	fill(p->smem, p->len, s);
	memset(p->dmem, 0, p->len);
	memset(bitmap, 0xff, sizeof(bitmap));
	p->where = "bulk round";
	if (round_of(p->src, npages, 0, bitmap))
		return -1;
	memset(bitmap, 0, sizeof(bitmap));
	for (i = 0; i < 8; i++) {
		uint64_t pg = (s * 7 + i * 61) % npages;

		fill(p->smem + pg * PG, PG, s + 1000 + i);
		bitmap[pg / 64] |= 1ULL << (pg % 64);
	}
	memset(p->smem + 3 * PG, 0, PG);
	bitmap[0] |= 1ULL << 3;
	p->where = "final round";
	if (round_of(p->src, npages, RDMAMIG_ROUND_FINAL, bitmap))
		return -1;
	p->where = "device state write";
	if (write(p->src, STATE_TEXT, strlen(STATE_TEXT)) != (ssize_t)strlen(STATE_TEXT))
		return -1;
	return 0;
}

/* ---- threads ------------------------------------------------------------ */

/* Samples GET_STATS of both ends: which states each was ever seen in. */
struct observer {
	pthread_t thr;
	int fd[2];
	atomic_bool stop;
	unsigned int seen[2];	/* bit per enum rdmamig_state */
};

static void *observer_main(void *arg)
{
	struct observer *o = arg;
	int i;

	while (!atomic_load(&o->stop)) {
		for (i = 0; i < 2; i++) {
			uint32_t s = state_of(o->fd[i]);

			if (s < 32)
				o->seen[i] |= 1U << s;
		}
		sched_yield();
	}
	return NULL;
}

static int observer_start(struct observer *o, int src, int dst)
{
	memset(o, 0, sizeof(*o));
	o->fd[0] = src;
	o->fd[1] = dst;
	return pthread_create(&o->thr, NULL, observer_main, o);
}

/* Stop sampling; the last state of each end is sampled too. */
static void observer_stop(struct observer *o)
{
	int i;

	atomic_store(&o->stop, true);
	pthread_join(o->thr, NULL);
	for (i = 0; i < 2; i++)
		o->seen[i] |= 1U << state_of(o->fd[i]);
}

#define SEEN(o, i, st) (((o)->seen[i] >> (st)) & 1)

/* CANCEL on @fd, @delay_us after @go was raised. */
struct canceller {
	pthread_t thr;
	int fd;
	uint64_t delay_us;
	atomic_bool go;
	int ret, err;
	uint64_t ms;
};

static void *canceller_main(void *arg)
{
	struct canceller *c = arg;

	while (!atomic_load(&c->go))
		;
	spin_us(c->delay_us);
	watch_begin(W_CANCEL, "RDMAMIG_IOC_CANCEL", CLOSE_LIMIT_MS);
	c->ret = ioctl(c->fd, RDMAMIG_IOC_CANCEL);
	c->err = c->ret ? errno : 0;
	c->ms = watch_end(W_CANCEL);
	return NULL;
}

static int canceller_start(struct canceller *c, int fd, uint64_t delay_us)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->delay_us = delay_us;
	return pthread_create(&c->thr, NULL, canceller_main, c);
}

/* The destination's VMM: wait for the end, then maybe read, then close. */
struct dest_side {
	pthread_t thr;
	int fd;
	bool read_state;	/* read the device state before closing */
	uint32_t event;		/* COMPLETED or FAILED, 0: WAIT_EVENT failed */
	int32_t ev_error;
	int wait_err;
	uint32_t state;		/* right before the close */
	char buf[128];
	ssize_t got;
	int read_err;
	uint64_t close_ms;
	bool silent;		/* failed for a stall: see silent() */
};

static void *dest_main(void *arg)
{
	struct dest_side *d = arg;
	struct rdmamig_event ev;
	ssize_t n;

	watch_begin(W_PEER, "the destination's WAIT_EVENT", 30000);
	for (;;) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(d->fd, RDMAMIG_IOC_WAIT_EVENT, &ev)) {
			d->wait_err = errno;
			break;
		}
		if (ev.type == RDMAMIG_EVENT_COMPLETED ||
		    ev.type == RDMAMIG_EVENT_FAILED) {
			d->event = ev.type;
			d->ev_error = ev.error;
			break;
		}
	}
	watch_end(W_PEER);
	if (d->read_state && d->event == RDMAMIG_EVENT_COMPLETED) {
		watch_begin(W_PEER, "the destination's read of the device state", 30000);
		while ((n = read(d->fd, d->buf + d->got, sizeof(d->buf) - d->got)) > 0)
			d->got += n;
		d->read_err = n < 0 ? errno : 0;
		watch_end(W_PEER);
	}
	d->state = state_of(d->fd);
	d->silent = silent(d->fd);
	d->close_ms = timed_close(W_PEER, &d->fd, "close of the destination");
	return NULL;
}

/* ---- the fixture -------------------------------------------------------- */

FIXTURE(race) {
	const char *addr;
	uint8_t *smem, *dmem;
	size_t len;
};

FIXTURE_SETUP(race)
{
	self->addr = getenv("RDMAMIG_LOCAL_ADDR");
	self->smem = self->dmem = NULL;
	seed = env_uint("RDMAMIG_TEARDOWN_SEED", (unsigned int)time(NULL) ^ getpid());
	TH_LOG("seed %u (RDMAMIG_TEARDOWN_SEED)", seed);
	atomic_store(&watchdog_stop, false);
	ASSERT_EQ(0, pthread_create(&watchdog_thr, NULL, watchdog_main, NULL));
}

FIXTURE_TEARDOWN(race)
{
	atomic_store(&watchdog_stop, true);
	pthread_join(watchdog_thr, NULL);
	if (self->smem)
		munmap(self->smem, self->len);
	if (self->dmem)
		munmap(self->dmem, self->len);
}

/* The harness (6.1) runs a test even when its setup skipped: check here. */
#define NEED_NET() do {							\
	if (!self->addr || !*self->addr)				\
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set (no testbed)");	\
} while (0)

static void *map_len(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

#define MAP_BOTH(len_) do {						\
	self->len = (len_);						\
	self->smem = map_len(self->len);				\
	self->dmem = map_len(self->len);				\
	ASSERT_NE(NULL, self->smem);					\
	ASSERT_NE(NULL, self->dmem);					\
} while (0)

/*
 * A set-up step before the race: on a stall (silent()) the iteration is
 * dropped, anything else fails the case.
 */
#define SETUP_STEP(expr, what) ({					\
	bool ok_ = !(expr);						\
									\
	if (!ok_) {							\
		int e_ = errno;						\
									\
		if (silent(p.src) || silent(p.dst)) {			\
			stalls++;					\
			pair_close(&p);					\
		} else {						\
			ASSERT_TRUE(ok_) TH_LOG("iteration %u: %s: %s; %s", i, \
						(what), strerror(e_),	\
						ends(&p, why, sizeof(why))); \
		}							\
	}								\
	ok_;								\
})

#define STALLS_LOG() do {						\
	if (stalls)							\
		TH_LOG("%u iterations dropped: the guest stalled past the keepalive's deadline", \
		       stalls);						\
} while (0)

/* Open the pair; skip when rxe is not there. */
#define PAIR_OPEN(p, caps) do {						\
	(p).smem = self->smem;						\
	(p).dmem = self->dmem;						\
	(p).len = self->len;						\
	if (pair_open(&(p), self->addr, (caps))) {			\
		int e_ = errno;						\
									\
		pair_close(&(p));					\
		if (NO_RDMA(e_))					\
			SKIP(return, "no RDMA at %s: %s", self->addr,	\
			     strerror(e_));				\
		ASSERT_EQ(0, e_) TH_LOG("iteration %u: %s: %s", i,	\
					(p).where, strerror(e_));	\
	}								\
} while (0)

/*
 * 1. The destination closes the moment its WAIT_EVENT returns COMPLETED,
 * while the source, keepalive on, is still connected: it may be in
 * COMPLETE, taking the ACK, returning credits with READY.  Before the fix
 * the destination's rx work went on re-posting receives into the buffers
 * teardown was freeing (a completed session is not dead).
 */
TEST_F_TIMEOUT(race, close_dest_at_completed, 240)
{
	struct budget b = budget(80);
	uint64_t max_close = 0;
	struct dest_side d;
	unsigned int stalls = 0;
	struct pair p;
	char why[320];
	unsigned int i;

	NEED_NET();
	MAP_BOTH(SMALL_LEN);
	for (i = 0; more(&b, i); i++) {
		uint64_t ms;
		int mret, merr, cret, cerr;
		uint32_t sst;

		PAIR_OPEN(p, 0);
		if (!SETUP_STEP(pair_connect(&p, self->addr), "CONNECT"))
			continue;
		memset(&d, 0, sizeof(d));
		d.fd = p.dst;
		p.dst = -1;	/* the thread closes it */
		ASSERT_EQ(0, pthread_create(&d.thr, NULL, dest_main, &d));
		mret = pair_migrate(&p, i);
		merr = errno;
		cret = -1;
		cerr = 0;
		if (!mret) {
			watch_begin(W_MAIN, "COMPLETE", 30000);
			cret = ioctl(p.src, RDMAMIG_IOC_COMPLETE);
			cerr = errno;
			watch_end(W_MAIN);
		}
		/* The source keeps its file open a while, then looks. */
		usleep(rnd(300) * 1000);
		pthread_join(d.thr, NULL);
		sst = state_of(p.src);
		if ((mret || cret) && (silent(p.src) || d.silent)) {
			stalls++;
			pair_close(&p);
			continue;
		}
		ms = pair_close(&p);
		ASSERT_EQ(0, mret) TH_LOG("iteration %u: %s: %s", i, p.where, strerror(merr));

		/* The destination acknowledged before it reported COMPLETED. */
		ASSERT_EQ(0, cret) TH_LOG("iteration %u: COMPLETE: %s", i, strerror(cerr));
		ASSERT_EQ(RDMAMIG_STATE_COMPLETED, sst)
			TH_LOG("iteration %u: source %s after the destination closed",
			       i, state_name(sst));
		ASSERT_EQ(RDMAMIG_EVENT_COMPLETED, d.event)
			TH_LOG("iteration %u: destination event %u error %d wait %s",
			       i, d.event, d.ev_error, strerror(d.wait_err));
		ASSERT_EQ(RDMAMIG_STATE_COMPLETED, d.state);
		ASSERT_EQ(0, memcmp(self->smem, self->dmem, self->len))
			TH_LOG("iteration %u: destination memory differs", i);
		ASSERT_GT(CLOSE_LIMIT_MS, d.close_ms);
		if (d.close_ms > max_close)
			max_close = d.close_ms;
		if (ms > max_close)
			max_close = ms;
	}
	STALLS_LOG();
	TH_LOG("%u iterations, longest close %llu ms", i,
	       (unsigned long long)max_close);
}

/*
 * 2. The source closes the moment COMPLETE returned 0; the destination
 * may still be handling the last messages (it entered COMPLETED, then
 * acknowledged COMPLETE) and is then disconnected.  It must report COMPLETED with all the
 * data and the device state, and close.
 */
TEST_F_TIMEOUT(race, close_source_after_complete, 240)
{
	struct budget b = budget(80);
	uint64_t max_close = 0;
	struct dest_side d;
	unsigned int stalls = 0;
	struct pair p;
	char why[320];
	unsigned int i;

	NEED_NET();
	MAP_BOTH(SMALL_LEN);
	for (i = 0; more(&b, i); i++) {
		uint64_t ms;
		int mret, merr, cret, cerr;
		uint32_t sst;

		PAIR_OPEN(p, 0);
		if (!SETUP_STEP(pair_connect(&p, self->addr), "CONNECT"))
			continue;
		memset(&d, 0, sizeof(d));
		d.fd = p.dst;
		d.read_state = true;
		p.dst = -1;
		ASSERT_EQ(0, pthread_create(&d.thr, NULL, dest_main, &d));
		mret = pair_migrate(&p, i);
		merr = errno;
		cret = -1;
		cerr = 0;
		if (!mret) {
			watch_begin(W_MAIN, "COMPLETE", 30000);
			cret = ioctl(p.src, RDMAMIG_IOC_COMPLETE);
			cerr = errno;
			watch_end(W_MAIN);
		}
		sst = state_of(p.src);
		if ((mret || cret) && silent(p.src)) {
			pthread_join(d.thr, NULL);
			stalls++;
			pair_close(&p);
			continue;
		}
		ms = timed_close(W_MAIN, &p.src, "close of the source");
		pthread_join(d.thr, NULL);
		ASSERT_EQ(0, mret) TH_LOG("iteration %u: %s: %s", i, p.where, strerror(merr));

		ASSERT_EQ(0, cret) TH_LOG("iteration %u: COMPLETE: %s", i, strerror(cerr));
		ASSERT_EQ(RDMAMIG_STATE_COMPLETED, sst);
		ASSERT_GT(CLOSE_LIMIT_MS, ms);
		ASSERT_EQ(RDMAMIG_EVENT_COMPLETED, d.event)
			TH_LOG("iteration %u: destination event %u error %d wait %s",
			       i, d.event, d.ev_error, strerror(d.wait_err));
		ASSERT_EQ(RDMAMIG_STATE_COMPLETED, d.state);
		ASSERT_EQ(0, d.read_err) TH_LOG("read: %s", strerror(d.read_err));
		ASSERT_EQ((ssize_t)strlen(STATE_TEXT), d.got);
		ASSERT_EQ(0, memcmp(d.buf, STATE_TEXT, d.got));
		ASSERT_EQ(0, memcmp(self->smem, self->dmem, self->len))
			TH_LOG("iteration %u: destination memory differs", i);
		ASSERT_GT(CLOSE_LIMIT_MS, d.close_ms);
		if (ms > max_close)
			max_close = ms;
		if (d.close_ms > max_close)
			max_close = d.close_ms;
	}
	STALLS_LOG();
	TH_LOG("%u iterations, longest close %llu ms", i,
	       (unsigned long long)max_close);
}

/*
 * After a race with CANCEL, each end (@k: 0 the source, 1 the
 * destination) must be coherent: never seen both CANCELLED and COMPLETED;
 * COMPLETED without a FAILED event (the destination with its one
 * COMPLETED event: the source gets none); in any other state without a
 * COMPLETED event; CANCELLED with -ECANCELED.
 * Return: NULL, or what is wrong, written in @buf.
 */
static const char *incoherent(const struct observer *o, int k, uint32_t s,
			      const struct evcount *e, char *buf, size_t n)
{
	const char *end = k ? "destination" : "source";

	if (SEEN(o, k, RDMAMIG_STATE_CANCELLED) && SEEN(o, k, RDMAMIG_STATE_COMPLETED))
		snprintf(buf, n, "the %s was seen CANCELLED and COMPLETED (now %s)",
			 end, state_name(s));
	else if (s == RDMAMIG_STATE_COMPLETED && e->failed)
		snprintf(buf, n, "the %s is COMPLETED with a FAILED event (error %d)",
			 end, e->fail_error);
	else if (s == RDMAMIG_STATE_COMPLETED && e->completed != (k ? 1U : 0U))
		snprintf(buf, n, "the %s is COMPLETED with %u COMPLETED events",
			 end, e->completed);
	else if (s != RDMAMIG_STATE_COMPLETED && e->completed)
		snprintf(buf, n, "the %s is %s with a COMPLETED event", end,
			 state_name(s));
	else if (s == RDMAMIG_STATE_CANCELLED && e->fail_error != -ECANCELED)
		snprintf(buf, n, "the %s is CANCELLED, its FAILED event says %d",
			 end, e->fail_error);
	else
		return NULL;
	return buf;
}

/*
 * A race that went wrong: logged (the first few), counted, and the loop
 * goes on, so that one run shows how often; the case fails at its end.
 */
#define VIOLATION(fmt, ...) do {					\
	if (nbad++ < 5)							\
		TH_LOG("iteration %u: " fmt, i, ##__VA_ARGS__);		\
} while (0)

/* Both ends' final states and events, checked; into final[]. */
#define CHECK_ENDS() do {						\
	char why_[160];							\
	int k_;								\
									\
	for (k_ = 0; k_ < 2; k_++) {					\
		int fd_ = k_ ? p.dst : p.src;				\
		struct evcount e_;					\
									\
		final[k_] = wait_terminal(fd_, 3000);			\
		e_ = drain_events(fd_);					\
		if (incoherent(&o, k_, final[k_], &e_, why_, sizeof(why_))) \
			VIOLATION("%s", why_);				\
	}								\
} while (0)

/*
 * 3a. CANCEL from another thread while the source is in COMPLETE, of the
 * source (even iterations) or of the destination (odd), at a random
 * moment within about twice the time COMPLETE takes.
 */
TEST_F_TIMEOUT(race, cancel_races_complete, 240)
{
	struct budget b = budget(150);
	unsigned int i, nbad = 0, outcome[2][2] = { { 0 } };	/* [target][completed] */
	uint64_t est_us = 5000, max_close = 0;
	struct canceller c;
	struct observer o;
	unsigned int stalls = 0;
	struct pair p;
	char why[320];

	NEED_NET();
	MAP_BOTH(SMALL_LEN);
	for (i = 0; more(&b, i); i++) {
		int tgt = i % 2, cret, cerr;	/* 0: source, 1: destination */
		const char *tname = tgt ? "destination" : "source";
		uint32_t final[2];
		uint64_t t0, ms;

		PAIR_OPEN(p, 0);
		if (!SETUP_STEP(pair_connect(&p, self->addr), "CONNECT"))
			continue;
		ASSERT_EQ(0, ioctl(p.dst, RDMAMIG_IOC_ACCEPT, 10000UL));
		if (!SETUP_STEP(pair_migrate(&p, i), p.where))
			continue;
		ASSERT_EQ(0, observer_start(&o, p.src, p.dst));
		ASSERT_EQ(0, canceller_start(&c, tgt ? p.dst : p.src,
					     rnd(2 * est_us + 1)));
		watch_begin(W_MAIN, "COMPLETE", 30000);
		t0 = now_us();
		atomic_store(&c.go, true);
		cret = ioctl(p.src, RDMAMIG_IOC_COMPLETE);
		cerr = errno;
		t0 = now_us() - t0;
		watch_end(W_MAIN);
		pthread_join(c.thr, NULL);
		observer_stop(&o);

		ASSERT_EQ(0, c.ret) TH_LOG("CANCEL: %s", strerror(c.err));
		CHECK_ENDS();
		if (!cret && final[0] != RDMAMIG_STATE_COMPLETED)
			VIOLATION("COMPLETE returned 0, the source is %s",
				  state_name(final[0]));
		if (cret && final[0] == RDMAMIG_STATE_COMPLETED)
			VIOLATION("COMPLETE failed (%s), the source is COMPLETED",
				  strerror(cerr));
		if (final[0] == RDMAMIG_STATE_CANCELLED && cerr != ECANCELED)
			VIOLATION("the source is CANCELLED, COMPLETE said %s",
				  strerror(cerr));
		/* The end cancelled is COMPLETED (it was first) or CANCELLED. */
		if (final[tgt] != RDMAMIG_STATE_COMPLETED &&
		    final[tgt] != RDMAMIG_STATE_CANCELLED)
			VIOLATION("the cancelled %s is %s", tname, state_name(final[tgt]));
		/* And the other end stopped too: nothing is left hanging. */
		if (!terminal(final[!tgt]))
			VIOLATION("the %s is %s 3 s after the %s's cancel",
				  tgt ? "source" : "destination",
				  state_name(final[!tgt]), tname);
		if (final[1] == RDMAMIG_STATE_COMPLETED &&
		    memcmp(self->smem, self->dmem, self->len))
			VIOLATION("the destination is COMPLETED, its memory differs");
		ms = pair_close(&p);
		ASSERT_GT(CLOSE_LIMIT_MS, ms);
		if (ms > max_close)
			max_close = ms;
		if (!cret && final[tgt] == RDMAMIG_STATE_COMPLETED)
			est_us = (est_us * 3 + t0) / 4;
		outcome[tgt][final[tgt] == RDMAMIG_STATE_COMPLETED]++;
	}
	STALLS_LOG();
	TH_LOG("%u iterations; source cancelled %u, completed first %u; destination cancelled %u, completed first %u; COMPLETE ~%llu us; longest close %llu ms",
	       i, outcome[0][0], outcome[0][1], outcome[1][0], outcome[1][1],
	       (unsigned long long)est_us, (unsigned long long)max_close);
	ASSERT_EQ(0U, nbad) TH_LOG("%u incoherent outcomes in %u iterations", nbad, i);
}

/*
 * 3b. CANCEL from another thread while the source is in CONNECT: the
 * connection request, the accept (a source that goes away there makes
 * the destination's rdma_accept() fail, with its receives posted), the
 * authentication, the RAM blocks.  Of the source (even iterations) or the
 * destination (odd), at a random moment within 1.5 times what CONNECT
 * takes, or (every other pair of iterations) within its first 300 us.
 */
TEST_F_TIMEOUT(race, cancel_races_connect, 240)
{
	struct budget b = budget(200);
	unsigned int i, nbad = 0, connected[2] = { 0 }, states[2][8] = { { 0 } };
	uint64_t est_us = 20000, max_close = 0;
	struct canceller c;
	struct observer o;
	struct pair p;

	NEED_NET();
	MAP_BOTH(SMALL_LEN);
	for (i = 0; more(&b, i); i++) {
		int tgt = i % 2, ret, err;
		const char *tname = tgt ? "destination" : "source";
		uint32_t final[2];
		uint64_t t0, ms;

		PAIR_OPEN(p, 0);
		ASSERT_EQ(0, observer_start(&o, p.src, p.dst));
		/* Half of them right at the start, where CONNECT checks the state. */
		ASSERT_EQ(0, canceller_start(&c, tgt ? p.dst : p.src,
					     i % 4 < 2 ? rnd(300) :
					     rnd(3 * est_us / 2 + 1)));
		watch_begin(W_MAIN, "CONNECT", 30000);
		t0 = now_us();
		atomic_store(&c.go, true);
		ret = pair_connect(&p, self->addr);
		err = errno;
		t0 = now_us() - t0;
		watch_end(W_MAIN);
		pthread_join(c.thr, NULL);
		observer_stop(&o);

		ASSERT_EQ(0, c.ret) TH_LOG("CANCEL: %s", strerror(c.err));
		CHECK_ENDS();
		if (final[tgt] != RDMAMIG_STATE_CANCELLED)
			VIOLATION("the cancelled %s is %s 3 s later (CONNECT %s)",
				  tname, state_name(final[tgt]),
				  ret ? strerror(err) : "returned 0");
		if (ret && !tgt && err != ECANCELED)
			VIOLATION("the source was cancelled, CONNECT said %s",
				  strerror(err));
		/* Its destination is gone: the source failed. */
		if (tgt && final[0] != RDMAMIG_STATE_FAILED)
			VIOLATION("CONNECT %s, the source is %s 3 s after the destination's cancel",
				  ret ? strerror(err) : "returned 0",
				  state_name(final[0]));
		/* Its source is gone: failed, or listening if it never got through. */
		if (!tgt && final[1] != RDMAMIG_STATE_FAILED &&
		    final[1] != RDMAMIG_STATE_SETUP)
			VIOLATION("CONNECT %s, the destination is %s 3 s after the source's cancel",
				  ret ? strerror(err) : "returned 0",
				  state_name(final[1]));
		ms = pair_close(&p);
		ASSERT_GT(CLOSE_LIMIT_MS, ms);
		if (ms > max_close)
			max_close = ms;
		if (!ret) {
			connected[tgt]++;
			est_us = (est_us * 3 + t0) / 4;
		}
		states[tgt][final[!tgt] & 7]++;
	}
	TH_LOG("%u iterations; CONNECT returned 0 in %u of the source's cancels, %u of the destination's; CONNECT ~%llu us; longest close %llu ms",
	       i, connected[0], connected[1], (unsigned long long)est_us,
	       (unsigned long long)max_close);
	TH_LOG("destination after the source's cancel: SETUP %u, FAILED %u",
	       states[0][RDMAMIG_STATE_SETUP], states[0][RDMAMIG_STATE_FAILED]);
	ASSERT_EQ(0U, nbad) TH_LOG("%u incoherent outcomes in %u iterations", nbad, i);
}

/*
 * 4. Two teardowns: CANCEL, then close, keepalive on, either end: while
 * connected and idle, after a round, or from another thread during a
 * round.  Between the two a random 0-250 ms, across the keepalive's
 * interval: a keepalive queued again after the first teardown would run
 * then, or on freed memory after the close.  Before the fix the second
 * teardown did not cancel the keepalive (the queue was gone by then).
 */
TEST_F_TIMEOUT(race, cancel_then_close, 240)
{
	struct budget b = budget(60);
	uint64_t bitmap[SMALL_LEN / PG / 64], max_close = 0;
	struct canceller c;
	unsigned int stalls = 0;
	struct pair p;
	char why[320];
	unsigned int i;

	NEED_NET();
	MAP_BOTH(SMALL_LEN);
	memset(bitmap, 0xff, sizeof(bitmap));
	for (i = 0; more(&b, i); i++) {
		int tgt = (i / 3) % 2, how = i % 3;
		int fd, other;
		uint32_t s;
		uint64_t ms;

		PAIR_OPEN(p, 0);
		if (!SETUP_STEP(pair_connect(&p, self->addr), "CONNECT"))
			continue;
		ASSERT_EQ(0, ioctl(p.dst, RDMAMIG_IOC_ACCEPT, 10000UL));
		fd = tgt ? p.dst : p.src;
		other = tgt ? p.src : p.dst;
		fill(self->smem, self->len, i);
		if (how == 1 &&
		    !SETUP_STEP(round_of(p.src, self->len / PG, 0, bitmap), "round"))
			continue;
		if (how == 2) {
			ASSERT_EQ(0, canceller_start(&c, fd, rnd(20000)));
			atomic_store(&c.go, true);
			/* The round may finish first, or fail: either is fine. */
			round_of(p.src, self->len / PG, 0, bitmap);
			pthread_join(c.thr, NULL);
			ASSERT_EQ(0, c.ret);
		} else {
			watch_begin(W_MAIN, "RDMAMIG_IOC_CANCEL", CLOSE_LIMIT_MS);
			ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_CANCEL));
			watch_end(W_MAIN);
		}
		s = state_of(fd);
		ASSERT_EQ(RDMAMIG_STATE_CANCELLED, s)
			TH_LOG("iteration %u: %s", i, state_name(s));
		/* Cancelling again changes nothing. */
		ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_CANCEL));
		ASSERT_EQ(RDMAMIG_STATE_CANCELLED, state_of(fd));
		if (!tgt) {
			ASSERT_EQ(-1, ioctl(p.src, RDMAMIG_IOC_COMPLETE));
			ASSERT_EQ(ECANCELED, errno);
		}
		/* The other end learns of it. */
		s = wait_terminal(other, 3000);
		ASSERT_EQ(RDMAMIG_STATE_FAILED, s)
			TH_LOG("iteration %u: the %s is %s 3 s after the cancel",
			       i, tgt ? "source" : "destination", state_name(s));
		usleep(rnd(250) * 1000);
		ms = pair_close(&p);
		ASSERT_GT(CLOSE_LIMIT_MS, ms);
		if (ms > max_close)
			max_close = ms;
	}
	STALLS_LOG();
	TH_LOG("%u iterations, longest close %llu ms", i,
	       (unsigned long long)max_close);
}

/*
 * 5. A pin-all destination closed right after the RAM blocks were
 * exchanged, while its pin-all work registers a 256 MiB block chunk by
 * chunk: the work must stop, the close return within 5 s, the pins go,
 * and the source fail.
 */
TEST_F_TIMEOUT(race, pinall_close, 240)
{
	struct budget b = budget(6);
	uint64_t max_close = 0, nchunks = PINALL_LEN / MIB;
	unsigned int i, midway = 0;
	struct rdmamig_stats st;
	unsigned int stalls = 0;
	struct pair p;
	char why[320];

	NEED_NET();
	MAP_BOTH(PINALL_LEN);
	for (i = 0; more(&b, i); i++) {
		uint64_t ms, regs;
		uint32_t s;
		long kb;

		PAIR_OPEN(p, RDMAMIG_CAP_PIN_ALL);
		if (!SETUP_STEP(pair_connect(&p, self->addr), "CONNECT"))
			continue;
		ASSERT_EQ(0, get_stats(p.dst, &st));
		ASSERT_EQ(RDMAMIG_CAP_PIN_ALL, st.caps & RDMAMIG_CAP_PIN_ALL);
		regs = st.chunks_registered;
		ms = timed_close(W_MAIN, &p.dst, "close of the pin-all destination");
		TH_LOG("iteration %u: %llu of %llu chunks registered at the close, which took %llu ms",
		       i, (unsigned long long)regs, (unsigned long long)nchunks,
		       (unsigned long long)ms);
		ASSERT_GT(5000, ms) TH_LOG("the pin-all work did not stop");
		if (ms > max_close)
			max_close = ms;
		midway += regs < nchunks;
		kb = vm_pin_kb();
		/* The source pins nothing before a round. */
		ASSERT_EQ(0, kb) TH_LOG("VmPin %ld kB after the close", kb);
		s = wait_terminal(p.src, 3000);
		ASSERT_EQ(RDMAMIG_STATE_FAILED, s) TH_LOG("source %s", state_name(s));
		ms = timed_close(W_MAIN, &p.src, "close of the source");
		ASSERT_GT(CLOSE_LIMIT_MS, ms);
		if (ms > max_close)
			max_close = ms;
	}
	STALLS_LOG();
	TH_LOG("%u iterations, %u closed with the registration under way; longest close %llu ms",
	       i, midway, (unsigned long long)max_close);
	if (!midway)
		TH_LOG("warning: the pin-all work was never caught mid-way");
}

TEST_HARNESS_MAIN
