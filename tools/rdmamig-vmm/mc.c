// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-checkpointing (--mc, RDMAMIG_CAP_MC): the primary keeps a backup
 * that is always a whole, recent epoch of its guest.
 *
 *   source (primary):  CONNECT with RDMAMIG_CAP_MC wanted; a bulk round
 *                      (SEND_ROUND, END_ROUND: the first full copy);
 *                      then the guest thread runs, and every --mc-delay
 *                      ms the guest is stopped for one
 *                      RDMAMIG_IOC_MC_EPOCH (the dirty bitmaps and the
 *                      device state) and resumed when it returns; the
 *                      module sends the epoch meanwhile, and
 *                      RDMAMIG_EVENT_MC_ACKED tells when the backup has
 *                      it.  After --mc-epochs, COMPLETE.
 *   dest (backup):     LISTEN, ACCEPT; RDMAMIG_EVENT_MC_COMMITTED for
 *                      each epoch applied, until COMPLETED or FAILED.
 *                      Then CANCEL (which waits for a commit under way)
 *                      and its RAM is the epoch stats.mc_epochs names,
 *                      whose device state read() returns.
 *
 * Failover (the backup, --mc-failover, the default): when the session
 * FAILED (the primary is lost: its death, its close, a silent link the
 * keepalive caught), and not by the backup's own cancel, the backup
 * checks its RAM against the committed epoch's device state and, if it
 * is that epoch, runs the same guest thread from it for --mc-run-ms,
 * and reports how long it took from the last sign of life it could see
 * (the last MC_COMMITTED event) to the guest's first write.
 *
 * Backup lost (the primary): when an epoch's call or an event says the
 * session FAILED, the primary does not fail: its guest runs on,
 * unprotected, for --mc-run-ms, and it reports the reason and the last
 * epoch acknowledged, then exits 0.
 *
 * The check: the primary's device state of each epoch carries the epoch
 * number and a digest of its RAM at that instant (the hash of every
 * page, kept up to date by the guest thread as it writes); the backup
 * computes the same digest over its own RAM at the end and compares it
 * with the state of the epoch it committed last.  With --json, the
 * primary prints one line per epoch (number, pages, digest, pause) and
 * the backup a summary with its committed epoch and digests, which
 * selftests/rdmamig/mc_test.sh compares.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

#define MC_STATE_MAGIC	0x5453434dU	/* "MCST" */
#define MC_STATE_FILL	8192		/* pseudo-random "device" bytes */
#define RDMAMIG_MAX_BLOCKS_VMM	64	/* the module takes no more */

/* The device state of an epoch: this header, then MC_STATE_FILL bytes. */
struct mc_state {
	uint32_t magic;
	uint32_t fill;
	uint64_t epoch;
	uint64_t digest;		/* ram_digest() at the epoch */
	uint64_t fill_hash;		/* hash64() of the fill */
};

/*
 * A digest of the whole RAM: the hash of every page (page_hash(), salted
 * with its place), hashed block by block.  The guest keeps the page
 * hashes as it writes (b->hash); @compute takes them from the pages.
 */
static uint64_t ram_digest(const struct guest_ram *ram, bool compute)
{
	uint64_t h = 0x6d632d7261ULL;
	unsigned int i;

	for (i = 0; i < ram->nblocks; i++) {
		const struct ram_block *b = &ram->blocks[i];
		uint64_t *tmp = NULL, p;
		const uint64_t *hs = b->hash;

		if (compute) {
			tmp = malloc(b->npages * sizeof(*tmp));
			if (!tmp)
				return 0;
			for (p = 0; p < b->npages; p++)
				tmp[p] = page_hash(b, p);
			hs = tmp;
		}
		h = hash64(hs, b->npages * sizeof(*hs), h);
		free(tmp);
	}
	return h;
}

/* b->hash from the pages, for RAM the guest did not write (tracked). */
static void ram_rehash(struct guest_ram *ram)
{
	unsigned int i;
	uint64_t p;

	for (i = 0; i < ram->nblocks; i++)
		for (p = 0; p < ram->blocks[i].npages; p++)
			ram->blocks[i].hash[p] = page_hash(&ram->blocks[i], p);
}

static uint64_t realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the guest: a thread writing pages (the primary's, or the backup's
 * after failover) ------------------------------------------------------ */

struct guest {
	pthread_t thread;
	pthread_mutex_t lock;		/* held by whoever may write RAM */
	atomic_bool pausing;		/* the main thread wants the lock */
	bool stop;
	bool on;			/* the thread exists */
	struct guest_ram *ram;
	struct rng rng;
	uint64_t rate;			/* pages per second */
	uint64_t written;
	uint64_t t_first;		/* now_us() of its first write */
};

static void *guest_run(void *arg)
{
	struct guest *g = arg;
	uint64_t t0 = now_us(), due, spent, n0 = g->written;
	struct ram_block *b;
	unsigned int i;

	for (;;) {
		/* A pthread mutex is not fair: let a pause in first. */
		while (atomic_load(&g->pausing))
			usleep(100);
		pthread_mutex_lock(&g->lock);
		if (g->stop) {
			pthread_mutex_unlock(&g->lock);
			return NULL;
		}
		if (!g->t_first)
			g->t_first = now_us();
		for (i = 0; i < 8; i++) {
			uint64_t gp = rng_below(&g->rng, g->ram->total_pages), p = gp;
			unsigned int k;

			for (k = 0; k < g->ram->nblocks && p >= g->ram->blocks[k].npages; k++)
				p -= g->ram->blocks[k].npages;
			b = &g->ram->blocks[k];
			page_write(b, p, &g->rng, rng_below(&g->rng, 100) < 10);
			g->written++;
		}
		pthread_mutex_unlock(&g->lock);
		due = g->rate ? (g->written - n0) * 1000000 / g->rate : 0;
		spent = now_us() - t0;
		if (due > spent)
			usleep(due - spent > 10000 ? 10000 : due - spent);
	}
}

/* The guest thread on @ram (tracked: hashes and dirty bits kept). */
static int guest_start(struct guest *g, struct guest_ram *ram, uint64_t rate,
		       uint64_t seed)
{
	g->ram = ram;
	g->rate = rate;
	g->rng.s = seed ^ 0x9e3779b97f4a7c15ULL;
	g->stop = false;
	if (pthread_create(&g->thread, NULL, guest_run, g)) {
		fprintf(stderr, "rdmamig-vmm: no guest thread\n");
		return -1;
	}
	g->on = true;
	return 0;
}

static void guest_stop(struct guest *g)
{
	if (!g->on)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	g->on = false;
}

static void guest_pause(struct guest *g)
{
	atomic_store(&g->pausing, true);
	pthread_mutex_lock(&g->lock);
}

static void guest_resume(struct guest *g)
{
	atomic_store(&g->pausing, false);
	pthread_mutex_unlock(&g->lock);
}

/*
 * The guest runs for @ms on its own (no epoch taken: the primary without
 * a backup, or the backup after failover), then stops.  Return: its RAM
 * is consistent, the digest the guest kept (@digest) being the digest of
 * the pages (recomputed), and it changed from @before.
 */
static bool guest_run_for(struct guest *g, unsigned int ms, uint64_t before,
			  uint64_t *digest)
{
	usleep((useconds_t)ms * 1000);
	guest_stop(g);
	*digest = ram_digest(g->ram, false);
	return g->written && *digest == ram_digest(g->ram, true) && *digest != before;
}

/* ---- the primary ------------------------------------------------------- */

struct mc_src_run {
	uint64_t epochs, acked, last_acked;
	uint64_t pause_us_max, pause_us_total;
	uint64_t dirty_total;
	uint64_t t_first, t_last;	/* first and last epoch taken */
	char problem[160];
	int bad_errnos[16];
	unsigned int nbad;
	int big_errno;
	/* The backup lost: the session's RDMAMIG_EVENT_FAILED. */
	bool failed_event;
	int failed_error;
};

/* MC_ACKED events, in order, and FAILED, without waiting. */
static void drain_events(int fd, struct mc_src_run *m)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct rdmamig_event ev;

	while (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev))
			return;
		if (ev.type == RDMAMIG_EVENT_FAILED) {
			m->failed_event = true;
			m->failed_error = ev.error;
			continue;
		}
		if (ev.type != RDMAMIG_EVENT_MC_ACKED)
			continue;
		if (ev.round != m->last_acked + 1 && !m->problem[0])
			snprintf(m->problem, sizeof(m->problem),
				 "epoch %" PRIu64 " acknowledged after %" PRIu64,
				 (uint64_t)ev.round, m->last_acked);
		m->last_acked = ev.round;
		m->acked++;
	}
}

/* The session FAILED: for a primary, its backup is lost. */
static bool backup_lost(int fd)
{
	struct rdmamig_stats st;

	return !session_stats(fd, &st) && st.state == RDMAMIG_STATE_FAILED;
}

/* One MC_EPOCH with @e as given; returns its errno (0: it succeeded). */
static int epoch_call(int fd, struct rdmamig_mc_epoch *e)
{
	return ioctl(fd, RDMAMIG_IOC_MC_EPOCH, e) ? errno : 0;
}

/*
 * --mc-bad-calls: arguments the kernel must refuse with EINVAL, taking
 * no epoch; then one epoch of every page (ENOSPC when the staging is
 * smaller than the RAM, as the test sets it up).
 */
static void bad_calls(int fd, struct guest_ram *ram, struct mc_src_run *m)
{
	struct ram_block *b0 = &ram->blocks[0];
	uint64_t *ones;
	struct rdmamig_round r[RDMAMIG_MAX_BLOCKS_VMM];
	struct rdmamig_mc_epoch e;
	unsigned int i, k;

	ones = malloc((ram->total_pages + 63) / 64 * sizeof(*ones));
	if (!ones)
		return;
	memset(ones, 0xff, (ram->total_pages + 63) / 64 * sizeof(*ones));
	for (k = 0; k < 10; k++) {
		memset(&e, 0, sizeof(e));
		memset(r, 0, sizeof(r));
		e.size = sizeof(e);
		r[0].size = sizeof(r[0]);
		r[0].block = b0->index;
		r[0].npages = 1;
		r[0].bitmap = (uintptr_t)ones;
		e.rounds = (uintptr_t)r;
		e.nrounds = 1;
		switch (k) {
		case 0: e.flags = 1; break;
		case 1: e.reserved = 1; break;
		case 2: e.nrounds = RDMAMIG_MC_ROUNDS_MAX + 1; break;
		case 3: e.state_len = RDMAMIG_MC_STATE_MAX + 1; break;
		case 4: r[0].block = 999; break;
		case 5: r[0].first_page = b0->npages; break;
		case 6: r[0].npages = b0->npages + 1; break;
		case 7: r[0].flags = RDMAMIG_ROUND_FINAL; break;
		case 8: r[0].size = sizeof(r[0]) - 8; break;
		case 9: e.epoch = 7; break;		/* an out field, set */
		}
		m->bad_errnos[m->nbad++] = epoch_call(fd, &e);
	}
	/* Every page of every block: more than a small staging holds. */
	memset(&e, 0, sizeof(e));
	e.size = sizeof(e);
	for (i = 0; i < ram->nblocks && i < RDMAMIG_MAX_BLOCKS_VMM; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].size = sizeof(r[i]);
		r[i].block = ram->blocks[i].index;
		r[i].npages = ram->blocks[i].npages;
		r[i].bitmap = (uintptr_t)ones;
	}
	e.rounds = (uintptr_t)r;
	e.nrounds = i;
	m->big_errno = epoch_call(fd, &e);
	free(ones);
}

/* One epoch, the guest stopped by the caller.  Return: 0 or errno. */
static int take_epoch(int fd, const struct vmm_opts *o, struct guest_ram *ram,
		      struct rng *r, uint64_t n, struct rdmamig_mc_epoch *e,
		      uint64_t *dirty, uint64_t *digest)
{
	static uint8_t buf[sizeof(struct mc_state) + MC_STATE_FILL];
	struct rdmamig_round rounds[RDMAMIG_MAX_BLOCKS_VMM];
	struct mc_state *st = (struct mc_state *)buf;
	unsigned int i, nr = 0;

	(void)o;
	*dirty = 0;
	for (i = 0; i < ram->nblocks && i < RDMAMIG_MAX_BLOCKS_VMM; i++) {
		struct ram_block *b = &ram->blocks[i];
		uint64_t c = ram_dirty_count(b);

		if (!c)
			continue;
		*dirty += c;
		memset(&rounds[nr], 0, sizeof(rounds[nr]));
		rounds[nr].size = sizeof(rounds[nr]);
		rounds[nr].block = b->index;
		rounds[nr].npages = b->npages;
		rounds[nr].bitmap = (uintptr_t)b->dirty;
		nr++;
	}
	*digest = ram_digest(ram, false);
	rng_fill(r, buf + sizeof(*st), MC_STATE_FILL);
	st->magic = MC_STATE_MAGIC;
	st->fill = MC_STATE_FILL;
	st->epoch = n;
	st->digest = *digest;
	st->fill_hash = hash64(buf + sizeof(*st), MC_STATE_FILL, n);

	memset(e, 0, sizeof(*e));
	e->size = sizeof(*e);
	e->rounds = (uintptr_t)rounds;
	e->nrounds = nr;
	e->state = (uintptr_t)buf;
	e->state_len = sizeof(buf);
	if (ioctl(fd, RDMAMIG_IOC_MC_EPOCH, e))
		return errno;
	/* The module has its copy: the bitmaps start again. */
	ram_clear_dirty(ram);
	return 0;
}

/*
 * The primary's guest after its backup was lost: it runs on, unprotected,
 * for --mc-run-ms; @m and the session's statistics say what was lost.
 */
struct mc_unprotected {
	const char *in;			/* MC_EPOCH, the FAILED event, COMPLETE */
	uint64_t pause_us;		/* the guest stopped in that MC_EPOCH */
	uint64_t written;		/* pages the guest wrote after */
	bool consistent;
};

static void run_unprotected(const struct vmm_opts *o, struct guest *g,
			    struct mc_unprotected *u)
{
	uint64_t before, after, w0;

	guest_pause(g);
	before = ram_digest(g->ram, false);
	w0 = g->written;
	guest_resume(g);
	u->consistent = guest_run_for(g, o->mc_run_ms, before, &after);
	u->written = g->written - w0;
}

/* The summary's fields for a lost backup, after @len bytes of @extra. */
static void unprotected_json(char *extra, size_t size, size_t len,
			       const struct rdmamig_stats *st,
			       const struct mc_src_run *m,
			       const struct mc_unprotected *u,
			       const struct vmm_opts *o)
{
	char reason[2 * RDMAMIG_REASON_MAX + 8];

	if (!u->in) {
		snprintf(extra + len, size - len, ",\"unprotected\":false");
		return;
	}
	json_string(reason, sizeof(reason), st->reason);
	snprintf(extra + len, size - len,
			      ",\"unprotected\":true,\"unprotected_in\":\"%s\""
			      ",\"unprotected_error\":%d,\"unprotected_reason\":%s"
			      ",\"unprotected_pause_us\":%" PRIu64
			      ",\"unprotected_run_ms\":%u"
			      ",\"unprotected_pages_written\":%" PRIu64
			      ",\"unprotected_consistent\":%s"
			      ",\"failed_event\":%s,\"failed_event_error\":%d",
			      u->in, st->error, reason, u->pause_us, o->mc_run_ms,
			      u->written, u->consistent ? "true" : "false",
			      m->failed_event ? "true" : "false", m->failed_error);
}

int run_source_mc(const struct vmm_opts *o)
{
	struct guest g = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct mc_src_run m = { 0 };
	struct mc_unprotected u = { 0 };
	struct guest_ram ram = { 0 };
	struct rng r = { .s = o->seed };
	struct rdmamig_mc_epoch e;
	struct round_stat rs;
	struct rdmamig_stats st;
	uint64_t n, dirty, digest, t0, pause, wake;
	char extra[2048];
	unsigned int i;
	int fd = -1, err, ret = EXIT_MIGRATION;
	size_t len;

	if (ram_alloc(&ram, o->nblocks, o->size_mib, true, o->memfd) ||
	    ram_fill(&ram, &r, o->zero_pct, o->zero_layout))
		goto out;
	/*
	 * The digest covers every page: those ram_fill() left unwritten
	 * (zero regions) need their hash too.
	 */
	if (o->zero_layout == ZERO_REGIONS)
		ram_rehash(&ram);

	fd = source_connect(o, &ram);
	if (fd < 0)
		goto out;
	if (session_stats(fd, &st) || !(st.caps & RDMAMIG_CAP_MC)) {
		fprintf(stderr, "rdmamig-vmm: source: the backup does not allow "
			"micro-checkpointing\n");
		goto out;
	}
	/*
	 * The first full copy: one pre-copy round of everything written.
	 * A failure here is a failed migration: the backup never had a
	 * whole copy, and the guest has not started.
	 */
	if (source_round(fd, o, &ram, 1, false, &rs))
		goto out;
	if (o->mc_bad_calls)
		bad_calls(fd, &ram, &m);

	if (guest_start(&g, &ram, o->mc_rate, o->seed))
		goto out;
	wake = now_us();
	for (n = 1; n <= o->mc_epochs; n++) {
		wake += (uint64_t)o->mc_delay_ms * 1000;
		t0 = now_us();
		if (wake > t0)
			usleep(wake - t0);
		guest_pause(&g);
		t0 = now_us();
		err = take_epoch(fd, o, &ram, &r, n, &e, &dirty, &digest);
		pause = now_us() - t0;
		guest_resume(&g);
		if (err && backup_lost(fd)) {
			u.in = "MC_EPOCH";
			u.pause_us = pause;
			break;
		}
		if (err) {
			session_fail(fd, o, "MC_EPOCH", err);
			goto out;
		}
		if (!m.t_first)
			m.t_first = t0;
		m.t_last = t0;
		m.epochs++;
		m.dirty_total += dirty;
		m.pause_us_total += pause;
		if (pause > m.pause_us_max)
			m.pause_us_max = pause;
		if (o->json) {
			printf("{\"mc_epoch\":%" PRIu64 ",\"pages\":%" PRIu64
			       ",\"digest\":\"%016" PRIx64 "\",\"pause_us\":%" PRIu64
			       ",\"snapshot_us\":%" PRIu64 ",\"wait_us\":%" PRIu64 "}\n",
			       (uint64_t)e.epoch, (uint64_t)e.pages, digest, pause,
			       (uint64_t)e.snapshot_us, (uint64_t)e.wait_us);
			fflush(stdout);
		}
		/* A primary that dies with this epoch on its way. */
		if (o->mc_exit_after && n == o->mc_exit_after)
			_exit(0);
		drain_events(fd, &m);
		if (m.failed_event) {
			u.in = "event";
			break;
		}
		/* A slow link: the next epoch starts when this call returned. */
		if (now_us() > wake)
			wake = now_us();
	}
	/* The guest runs on while COMPLETE waits for the last acknowledgements. */
	if (!u.in && ioctl(fd, RDMAMIG_IOC_COMPLETE)) {
		err = errno;
		if (!backup_lost(fd)) {
			session_fail(fd, o, "COMPLETE", err);
			goto out;
		}
		u.in = "COMPLETE";
	}
	drain_events(fd, &m);
	if (u.in)
		run_unprotected(o, &g, &u);
	guest_stop(&g);
	if (session_stats(fd, &st)) {
		session_fail(fd, o, "GET_STATS", errno);
		goto out;
	}
	len = snprintf(extra, sizeof(extra),
		       "\"mc_epochs\":%" PRIu64 ",\"mc_acked\":%" PRIu64
		       ",\"mc_acked_events\":%" PRIu64 ",\"mc_pages\":%" PRIu64
		       ",\"mc_bytes\":%" PRIu64 ",\"mc_dirty\":%" PRIu64
		       ",\"mc_pause_us_max\":%" PRIu64 ",\"mc_pause_us_avg\":%" PRIu64
		       ",\"mc_snapshot_us_max\":%" PRIu64
		       ",\"mc_snapshot_us_avg\":%" PRIu64
		       ",\"mc_ack_us_max\":%" PRIu64 ",\"mc_ack_us_last\":%" PRIu64
		       ",\"mc_epochs_per_s\":%.2f,\"guest_pages_written\":%" PRIu64
		       ",\"mc_problem\":\"%s\",\"big_errno\":%d,\"bad_errnos\":[",
		       (uint64_t)st.mc_epochs, (uint64_t)st.mc_acked, m.acked,
		       (uint64_t)st.mc_pages, (uint64_t)st.mc_bytes, m.dirty_total,
		       m.pause_us_max, m.epochs ? m.pause_us_total / m.epochs : 0,
		       (uint64_t)st.mc_pause_us_max,
		       st.mc_epochs ? (uint64_t)(st.mc_pause_us_total / st.mc_epochs) : 0,
		       (uint64_t)st.mc_ack_us_max, (uint64_t)st.mc_ack_us_last,
		       m.t_last > m.t_first ?
				(m.epochs - 1) * 1e6 / (double)(m.t_last - m.t_first) : 0.0,
		       g.written, m.problem, m.big_errno);
	for (i = 0; i < m.nbad && len < sizeof(extra) - 16; i++)
		len += snprintf(extra + len, sizeof(extra) - len, "%s%d", i ? "," : "",
				m.bad_errnos[i]);
	len += snprintf(extra + len, sizeof(extra) - len, "]");
	unprotected_json(extra, sizeof(extra), len, &st, &m, &u, o);
	print_summary(o, &st, &rs, 1, extra);
	if (!o->json)
		printf("  checkpointing: %" PRIu64 " epochs, %" PRIu64 " acknowledged,"
		       " pause avg %.2f ms max %.2f ms (the snapshot: avg %.2f ms),"
		       " acknowledged %.1f ms after the snapshot at most\n",
		       (uint64_t)st.mc_epochs, (uint64_t)st.mc_acked,
		       m.epochs ? m.pause_us_total / 1000.0 / m.epochs : 0.0,
		       m.pause_us_max / 1000.0,
		       st.mc_epochs ? st.mc_pause_us_total / 1000.0 / st.mc_epochs : 0.0,
		       st.mc_ack_us_max / 1000.0);
	if (!o->json && u.in)
		printf("  backup lost (%s: %s, error %d) after epoch %" PRIu64
		       " was acknowledged: the guest ran on unprotected for %u ms,"
		       " %" PRIu64 " pages written, %s\n", u.in, st.reason, st.error,
		       (uint64_t)st.mc_acked, o->mc_run_ms, u.written,
		       u.consistent ? "its RAM consistent" : "ITS RAM INCONSISTENT");
	ret = m.problem[0] || (u.in && !u.consistent) ? EXIT_VERIFY : 0;
out:
	guest_stop(&g);
	if (fd >= 0)
		close(fd);
	ram_free(&ram);
	return ret;
}

/* ---- the backup ---------------------------------------------------------- */

/* The committed epoch's device state: read() returns it (and only it). */
static int read_state(int fd, struct mc_state *hdr, bool *fill_ok)
{
	static uint8_t buf[sizeof(struct mc_state) + MC_STATE_FILL + 1];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += n;
	}
	if (got != sizeof(buf) - 1)
		return -1;
	memcpy(hdr, buf, sizeof(*hdr));
	*fill_ok = hdr->magic == MC_STATE_MAGIC && hdr->fill == MC_STATE_FILL &&
		   hash64(buf + sizeof(*hdr), MC_STATE_FILL, hdr->epoch) == hdr->fill_hash;
	return 0;
}

/*
 * The backup after its session FAILED.  Failover: the committed epoch
 * (checked by the caller) runs, from the guest's first write on.  Times
 * by now_us(); the last sign of life is the last MC_COMMITTED event (the
 * backup's VMM sees nothing else of the primary: not its keepalives, nor
 * its RDMA WRITEs into the staging).
 */
struct mc_failover {
	const char *skipped;		/* why there was none, when none */
	uint64_t t_commit;		/* the last MC_COMMITTED event */
	uint64_t t_failed;		/* the FAILED event */
	uint64_t t_running;		/* the guest's first write */
	uint64_t written;
	uint64_t digest;		/* after the run, as the guest kept it */
	bool consistent;		/* ... and as its pages say, changed */
};

static void failover_run(const struct vmm_opts *o, struct guest_ram *ram,
			 uint64_t digest, struct mc_failover *f)
{
	struct guest g = { .lock = PTHREAD_MUTEX_INITIALIZER };

	/* The backup's own seed: not the primary's page contents again. */
	if (guest_start(&g, ram, o->mc_rate, o->seed ^ 0xfa11)) {
		f->skipped = "no guest thread";
		return;
	}
	f->consistent = guest_run_for(&g, o->mc_run_ms, digest, &f->digest);
	f->t_running = g.t_first ? g.t_first : now_us();
	f->written = g.written;
}

static void failover_json(char *out, size_t size, const struct vmm_opts *o,
			  const struct mc_failover *f, uint64_t epoch)
{
	uint64_t off = realtime_us() - now_us();

	if (f->skipped) {
		snprintf(out, size, ",\"failover\":false,\"failover_skipped\":\"%s\"",
			 f->skipped);
		return;
	}
	snprintf(out, size, ",\"failover\":true,\"failover_epoch\":%" PRIu64
		 ",\"failover_from\":\"%s\",\"failover_ms\":%" PRIu64
		 ",\"failover_detect_ms\":%" PRIu64 ",\"failover_activate_ms\":%" PRIu64
		 ",\"last_commit_at_us\":%" PRIu64 ",\"failed_at_us\":%" PRIu64
		 ",\"running_at_us\":%" PRIu64 ",\"run_ms\":%u"
		 ",\"run_pages_written\":%" PRIu64 ",\"run_digest\":\"%016" PRIx64 "\""
		 ",\"run_consistent\":%s", epoch,
		 f->t_commit ? "commit" : "none",
		 f->t_commit ? (f->t_running - f->t_commit) / 1000 : 0,
		 f->t_commit ? (f->t_failed - f->t_commit) / 1000 : 0,
		 (f->t_running - f->t_failed) / 1000,
		 f->t_commit ? f->t_commit + off : 0, f->t_failed + off,
		 f->t_running + off, o->mc_run_ms, f->written, f->digest,
		 f->consistent ? "true" : "false");
}

int run_dest_mc(const struct vmm_opts *o)
{
	struct guest_ram ram = { 0 };
	struct rdmamig_stats st;
	struct rdmamig_event ev;
	struct mc_state hdr = { 0 };
	struct mc_failover f = { 0 };
	struct pollfd pfd;
	uint64_t last = 0, commits = 0, digest;
	uint16_t port = o->port;
	bool completed = false, failed = false, cancelled = false, fill_ok = false;
	bool have_state, consistent;
	char problem[160] = "", reason[2 * RDMAMIG_REASON_MAX], fo[768];
	int fd, ret = EXIT_MIGRATION, err = 0;

	/* Tracked: page hashes for the digest, and for a guest after failover. */
	if (ram_alloc(&ram, o->nblocks, o->size_mib, true, o->memfd))
		goto out_ram;
	if (o->prefill)
		ram_prefill(&ram);
	fd = session_open(o, &ram);
	if (fd < 0)
		goto out_ram;
	if (dest_accept(fd, o, &port, o->timeout_s))
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!completed && !failed && !cancelled) {
		int pr = poll(&pfd, 1, o->timeout_s * 1000);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			snprintf(problem, sizeof(problem), "no event for %u s", o->timeout_s);
			break;
		}
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev))
			continue;
		switch (ev.type) {
		case RDMAMIG_EVENT_MC_COMMITTED:
			f.t_commit = now_us();
			if (ev.round != last + 1 && !problem[0])
				snprintf(problem, sizeof(problem), "epoch %" PRIu64
					 " committed after %" PRIu64, (uint64_t)ev.round, last);
			last = ev.round;
			commits++;
			if (o->mc_cancel_after && last == o->mc_cancel_after)
				cancelled = true;	/* the next epoch is on its way */
			break;
		case RDMAMIG_EVENT_COMPLETED:
			completed = true;
			break;
		case RDMAMIG_EVENT_FAILED:
			f.t_failed = now_us();
			failed = true;
			err = -ev.error;
			break;
		}
	}
	/*
	 * CANCEL tears the session down, waiting for a commit under way:
	 * from here on nothing writes the RAM, and it is the epoch the
	 * statistics name.  After COMPLETED it changes nothing else.
	 */
	ioctl(fd, RDMAMIG_IOC_CANCEL);
	if (session_stats(fd, &st)) {
		session_fail(fd, o, "GET_STATS", errno);
		goto out;
	}
	have_state = st.mc_epochs && read_state(fd, &hdr, &fill_ok) == 0;
	ram_rehash(&ram);
	digest = ram_digest(&ram, false);
	consistent = have_state && fill_ok && hdr.epoch == st.mc_epochs &&
		     hdr.digest == digest;
	/*
	 * Failover: the primary is lost (the session FAILED, not by our
	 * cancel), and the RAM is a whole committed epoch.  Before the first
	 * epoch, it may be a first copy cut short.
	 */
	if (!o->mc_failover)
		f.skipped = "disabled (--no-mc-failover)";
	else if (!failed || err == ECANCELED)
		f.skipped = completed ? "completed" : "the session did not fail";
	else if (!st.mc_epochs)
		f.skipped = "no epoch committed";
	else if (!consistent)
		f.skipped = "the memory is not the committed epoch";
	else
		failover_run(o, &ram, digest, &f);
	failover_json(fo, sizeof(fo), o, &f, st.mc_epochs);
	json_string(reason, sizeof(reason), st.reason);
	if (o->json)
		printf("{\"ok\":%s,\"role\":\"dest\",\"mc\":true,\"completed\":%s"
		       ",\"cancelled\":%s"
		       ",\"error\":%d,\"reason\":%s,\"caps\":%" PRIu64
		       ",\"mc_committed\":%" PRIu64 ",\"mc_commit_events\":%" PRIu64
		       ",\"mc_discarded\":%" PRIu64 ",\"mc_pages\":%" PRIu64
		       ",\"mc_bytes\":%" PRIu64 ",\"digest\":\"%016" PRIx64 "\""
		       ",\"state_epoch\":%" PRIu64 ",\"state_digest\":\"%016" PRIx64 "\""
		       ",\"state_ok\":%s,\"consistent\":%s,\"problem\":\"%s\"%s}\n",
		       (completed || (!f.skipped && f.consistent)) && !problem[0] ?
				"true" : "false",
		       completed ? "true" : "false", cancelled ? "true" : "false", err,
		       reason, (uint64_t)st.caps,
		       (uint64_t)st.mc_epochs, commits, (uint64_t)st.mc_discarded,
		       (uint64_t)st.mc_pages, (uint64_t)st.mc_bytes, digest,
		       have_state ? hdr.epoch : 0, have_state ? hdr.digest : 0,
		       fill_ok ? "true" : "false", consistent ? "true" : "false",
		       problem, fo);
	else
		printf("backup: %s, %" PRIu64 " epochs committed (%" PRIu64
		       " discarded unfinished), RAM digest %016" PRIx64
		       ", the committed epoch's state says epoch %" PRIu64 " digest %016"
		       PRIx64 "%s\n", completed ? "completed" : "ended",
		       (uint64_t)st.mc_epochs, (uint64_t)st.mc_discarded, digest,
		       hdr.epoch, hdr.digest, problem[0] ? problem : "");
	if (!o->json && !f.skipped)
		printf("  failover: epoch %" PRIu64 " running %" PRIu64 " ms after the"
		       " last commit (%" PRIu64 " ms to learn of the failure: %s), the"
		       " guest wrote %" PRIu64 " pages in %u ms, %s\n",
		       (uint64_t)st.mc_epochs, (f.t_running - f.t_commit) / 1000,
		       (f.t_failed - f.t_commit) / 1000, st.reason, f.written,
		       o->mc_run_ms, f.consistent ? "its RAM consistent" :
		       "ITS RAM INCONSISTENT");
	fflush(stdout);
	if (st.mc_epochs && !consistent)
		ret = EXIT_VERIFY;
	else if (!f.skipped)
		ret = f.consistent && !problem[0] ? 0 : EXIT_VERIFY;
	else if (completed && !problem[0])
		ret = 0;
out:
	close(fd);
out_ram:
	ram_free(&ram);
	return ret;
}
