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
 * with its place), hashed block by block.  The source keeps the page
 * hashes as it writes (b->hash); the backup computes them.
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

/* ---- the primary's guest: a thread writing pages -------------------- */

struct guest {
	pthread_t thread;
	pthread_mutex_t lock;		/* held by whoever may write RAM */
	atomic_bool pausing;		/* the main thread wants the lock */
	bool stop;
	struct guest_ram *ram;
	struct rng rng;
	uint64_t rate;			/* pages per second */
	uint64_t written;
};

static void *guest_run(void *arg)
{
	struct guest *g = arg;
	uint64_t t0 = now_us(), due, spent;
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
		due = g->rate ? g->written * 1000000 / g->rate : 0;
		spent = now_us() - t0;
		if (due > spent)
			usleep(due - spent > 10000 ? 10000 : due - spent);
	}
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
};

/* MC_ACKED events, in order, without waiting. */
static void drain_acks(int fd, struct mc_src_run *m)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct rdmamig_event ev;

	while (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev))
			return;
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

int run_source_mc(const struct vmm_opts *o)
{
	struct guest g = { .lock = PTHREAD_MUTEX_INITIALIZER, .rate = o->mc_rate };
	struct mc_src_run m = { 0 };
	struct guest_ram ram = { 0 };
	struct rng r = { .s = o->seed };
	struct rdmamig_mc_epoch e;
	struct round_stat rs;
	struct rdmamig_stats st;
	uint64_t n, p, dirty, digest, t0, pause, wake;
	bool guest_on = false;
	char extra[1024];
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
	for (i = 0; o->zero_layout == ZERO_REGIONS && i < ram.nblocks; i++)
		for (p = 0; p < ram.blocks[i].npages; p++)
			ram.blocks[i].hash[p] = page_hash(&ram.blocks[i], p);

	fd = source_connect(o, &ram);
	if (fd < 0)
		goto out;
	if (session_stats(fd, &st) || !(st.caps & RDMAMIG_CAP_MC)) {
		fprintf(stderr, "rdmamig-vmm: source: the backup does not allow "
			"micro-checkpointing\n");
		goto out;
	}
	/* The first full copy: one pre-copy round of everything written. */
	if (source_round(fd, o, &ram, 1, false, &rs))
		goto out;
	if (o->mc_bad_calls)
		bad_calls(fd, &ram, &m);

	g.ram = &ram;
	g.rng.s = o->seed ^ 0x9e3779b97f4a7c15ULL;
	if (pthread_create(&g.thread, NULL, guest_run, &g)) {
		fprintf(stderr, "rdmamig-vmm: source: no guest thread\n");
		goto out;
	}
	guest_on = true;
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
		drain_acks(fd, &m);
		/* A slow link: the next epoch starts when this call returned. */
		if (now_us() > wake)
			wake = now_us();
	}
	g.stop = true;
	pthread_join(g.thread, NULL);
	guest_on = false;
	if (ioctl(fd, RDMAMIG_IOC_COMPLETE)) {
		session_fail(fd, o, "COMPLETE", errno);
		goto out;
	}
	drain_acks(fd, &m);
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
	snprintf(extra + len, sizeof(extra) - len, "]");
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
	ret = m.problem[0] ? EXIT_VERIFY : 0;
out:
	if (guest_on) {
		g.stop = true;
		pthread_join(g.thread, NULL);
	}
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

int run_dest_mc(const struct vmm_opts *o)
{
	struct guest_ram ram = { 0 };
	struct rdmamig_stats st;
	struct rdmamig_event ev;
	struct mc_state hdr = { 0 };
	struct pollfd pfd;
	uint64_t last = 0, commits = 0, digest;
	uint16_t port = o->port;
	bool completed = false, failed = false, cancelled = false, fill_ok = false;
	bool have_state;
	char problem[160] = "", reason[2 * RDMAMIG_REASON_MAX];
	int fd, ret = EXIT_MIGRATION, err = 0;

	if (ram_alloc(&ram, o->nblocks, o->size_mib, false, o->memfd))
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
	digest = ram_digest(&ram, true);
	json_string(reason, sizeof(reason), st.reason);
	if (o->json)
		printf("{\"ok\":%s,\"role\":\"dest\",\"mc\":true,\"completed\":%s"
		       ",\"cancelled\":%s"
		       ",\"error\":%d,\"reason\":%s,\"caps\":%" PRIu64
		       ",\"mc_committed\":%" PRIu64 ",\"mc_commit_events\":%" PRIu64
		       ",\"mc_discarded\":%" PRIu64 ",\"mc_pages\":%" PRIu64
		       ",\"mc_bytes\":%" PRIu64 ",\"digest\":\"%016" PRIx64 "\""
		       ",\"state_epoch\":%" PRIu64 ",\"state_digest\":\"%016" PRIx64 "\""
		       ",\"state_ok\":%s,\"consistent\":%s,\"problem\":\"%s\"}\n",
		       completed && !problem[0] ? "true" : "false",
		       completed ? "true" : "false", cancelled ? "true" : "false", err,
		       reason, (uint64_t)st.caps,
		       (uint64_t)st.mc_epochs, commits, (uint64_t)st.mc_discarded,
		       (uint64_t)st.mc_pages, (uint64_t)st.mc_bytes, digest,
		       have_state ? hdr.epoch : 0, have_state ? hdr.digest : 0,
		       fill_ok ? "true" : "false",
		       have_state && fill_ok && hdr.epoch == st.mc_epochs &&
		       hdr.digest == digest ? "true" : "false", problem);
	else
		printf("backup: %s, %" PRIu64 " epochs committed (%" PRIu64
		       " discarded unfinished), RAM digest %016" PRIx64
		       ", the committed epoch's state says epoch %" PRIu64 " digest %016"
		       PRIx64 "%s\n", completed ? "completed" : "ended",
		       (uint64_t)st.mc_epochs, (uint64_t)st.mc_discarded, digest,
		       hdr.epoch, hdr.digest, problem[0] ? problem : "");
	fflush(stdout);
	if (st.mc_epochs && (!have_state || !fill_ok || hdr.epoch != st.mc_epochs ||
			     hdr.digest != digest))
		ret = EXIT_VERIFY;
	else if (completed && !problem[0])
		ret = 0;
out:
	close(fd);
out_ram:
	ram_free(&ram);
	return ret;
}
