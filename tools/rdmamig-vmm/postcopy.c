// SPDX-License-Identifier: GPL-2.0
/*
 * The destination's side of post-copy (RDMAMIG_CAP_POSTCOPY).
 *
 * The source stops its guest, names the pages it still owes with
 * RDMAMIG_ROUND_POSTCOPY, writes its last device state and switches
 * (RDMAMIG_IOC_POSTCOPY).  Here the session then reports
 * RDMAMIG_EVENT_POSTCOPY, the device-state stream ends, and the guest
 * must run on before its memory is all here.  What a VMM does, in order:
 *
 *   at start-up        userfaultfd(2) and UFFDIO_API, to fail before
 *                      LISTEN rather than after the source has stopped
 *   at the event       read the device state to its end; UFFDIO_REGISTER
 *                      every RAM block (MISSING mode); RDMAMIG_IOC_OWED
 *                      for the owed pages of each block; MADV_DONTNEED
 *                      them, so that the guest's first touch faults
 *   then, in threads   a fault thread: each uffd_msg is one
 *                      RDMAMIG_IOC_FETCH at the fault address into a
 *                      staging buffer, placed with UFFDIO_COPY (which
 *                      wakes the guest); a sweep thread: FETCH with
 *                      RDMAMIG_FETCH_SWEEP until nothing is left; and
 *                      the guest itself, here a thread that reads and
 *                      rewrites random pages
 *   at COMPLETED       join them, unregister, close the userfaultfd
 *
 * FETCH reads each owed page once: a fault on a page the sweep holds in
 * its buffer gets npages 0 and the sweep's UFFDIO_COPY wakes the guest.
 * A page that was never owed and never written is not in memory either
 * (a fresh block the source sent no zero page to): FETCH says ENOENT and
 * the fault thread maps the zero page (UFFDIO_ZEROPAGE).
 *
 * Resume (--resume-wait): when the session fails after the switch (the
 * link, the source's machine), the guest's threads stay blocked in their
 * faults and the userfaultfd stays registered.  The fault thread keeps
 * the faults whose FETCH failed; the sweep waits.  dest.c opens a new
 * session, hands it the failed one (RDMAMIG_IOC_POSTCOPY_RESUME) and
 * listens again; at the new session's RDMAMIG_EVENT_POSTCOPY,
 * postcopy_resumed() points the threads at it: the kept faults are
 * served first, then UFFDIO_WAKE over the blocks lets every thread still
 * waiting (on a page a failed sweep FETCH had claimed, say) fault again.
 * Nothing is discarded again: the pages placed stay, and the module
 * neither reads nor names again those the old session read.
 *
 * Shared memory (--memfd): each block is a memfd mapped twice, once for
 * the module (the block's address) and once as the guest's view.  The
 * view is registered for MINOR faults: every page is in the page cache
 * (ram.c allocates them all), so the guest's first touch of any page
 * faults.  A page not owed is mapped at once (UFFDIO_CONTINUE); an owed
 * one is read by FETCH with RDMAMIG_FETCH_IN_PLACE straight into the
 * page cache through the module's mapping, then mapped the same way: no
 * staging buffer, no copy.  The sweep reads in place too.
 *
 * Checks, for the tests: every owed page placed exactly once (EEXIST
 * from UFFDIO_COPY counts as "placed twice"), nothing placed that was
 * not owed, each page the guest reads as the source had it at the switch
 * (or as the guest itself last wrote it); the caller then compares all
 * of RAM with postcopy_expected().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "vmm.h"

#define GUEST_SHOWN	5	/* guest reads that differ, printed */

struct pc_block {
	uint64_t *owed;			/* from RDMAMIG_IOC_OWED */
	uint64_t *placed;		/* set (atomically) once placed */
	uint64_t first_gpage;		/* global index of its page 0 */
};

/* One placing, for --timeline: a fault's or a sweep step's. */
struct pc_step {
	uint64_t t_us;			/* since RDMAMIG_EVENT_POSTCOPY */
	uint32_t pages;
	uint32_t fault_us;		/* a fault's service time; 0: sweep */
};

#define SWEEPERS_MAX	8

/* A sweep thread (--sweep-threads): its own staging buffer. */
struct sweeper {
	struct postcopy *pc;
	uint8_t *buf;
	pthread_t th;
	bool on;
	volatile int exited;
};

struct postcopy {
	const struct vmm_opts *o;
	int fd;				/* the session (atomic: a resume swaps it) */
	int uffd;
	int stopfd;			/* eventfd: the fault thread ends */
	int kickfd;			/* eventfd: resumed, serve the kept faults */
	unsigned int gen;		/* resumes so far (atomic) */
	uint64_t *held;			/* fault thread: faults kept for a resume */
	size_t nheld, capheld;
	uint64_t held_total;		/* faults kept, all in all */
	uint64_t resume_event_pages;	/* the last resume's EVENT_POSTCOPY */
	uint64_t placed_at_resume;	/* pages placed when the first resumed */
	uint64_t t_resume_us;		/* the first resume's EVENT_POSTCOPY */
	struct guest_ram *ram;
	struct pc_block *pb;
	uint64_t *expect;		/* hash of each page, global index */
	bool have_hashes;		/* expect holds the source's hashes */
	uint64_t *owed_list;		/* global indexes, for the guest */
	uint64_t owed;			/* pages OWED named */
	uint64_t event_pages;		/* RDMAMIG_EVENT_POSTCOPY's count */
	uint64_t discarded;		/* pages MADV_DONTNEED dropped */
	size_t fault_len, sweep_len;
	uint8_t *fault_buf;
	struct sweeper sweepers[SWEEPERS_MAX];
	unsigned int nsweepers;

	pthread_t fault_th, guest_th, watch_th;
	bool fault_on, guest_on, watch_on;
	bool started;
	bool ready;			/* owed bitmaps filled, blocks discarded */
	volatile int completed;		/* RDMAMIG_EVENT_COMPLETED seen */
	volatile int stop;		/* failure: sweep and guest stop */
	volatile int watch_stop;
	volatile int sweep_done;	/* npages 0, remaining 0 */
	volatile int guest_done;

	/* Counters, updated with __atomic builtins. */
	uint64_t fault_msgs;		/* uffd page faults read */
	uint64_t fault_fetches;		/* FETCH calls for them */
	uint64_t fault_empty;		/* ... npages 0: placed by another */
	uint64_t fault_empty_not_owed;	/* ... npages 0 for a page not owed */
	uint64_t fault_pages;		/* pages placed by the fault thread */
	uint64_t sweep_calls, sweep_pages, sweep_waits;
	uint64_t placed_twice;		/* UFFDIO_COPY: EEXIST, or set twice */
	uint64_t not_owed;		/* FETCH handed us a page not owed */
	uint64_t zero_filled;		/* ENOENT: UFFDIO_ZEROPAGE */
	uint64_t mapped_unowed;		/* --memfd: not owed, UFFDIO_CONTINUE */
	uint64_t fault_notconn;		/* ENOTCONN on an owed page */
	uint64_t guest_writes, guest_reads_bad;
	uint64_t unplaced;		/* owed, never placed (at the end) */

	/* --timeline: every placing, under @lock. */
	struct pc_step *steps;
	size_t nsteps, capsteps;

	/* Fault service time in the VMM: uffd_msg read to UFFDIO_COPY done. */
	uint32_t *lat_us;
	size_t nlat, caplat;

	uint64_t t_event_us, t_ready_us, t_sweep_us, t_end_us;
	pthread_mutex_t lock;
	char problem[256];		/* the first thing that went wrong */
};

__attribute__((format(printf, 2, 3)))
static void pc_problem(struct postcopy *pc, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&pc->lock);
	if (!pc->problem[0]) {
		snprintf(pc->problem, sizeof(pc->problem), "post-copy: %s", msg);
		if (!pc->o->json)
			fprintf(stderr, "rdmamig-vmm: dest: %s\n", pc->problem);
	}
	pthread_mutex_unlock(&pc->lock);
}

static inline void add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static inline int pc_fd(const struct postcopy *pc)
{
	return __atomic_load_n(&pc->fd, __ATOMIC_ACQUIRE);
}

static inline unsigned int pc_gen(const struct postcopy *pc)
{
	return __atomic_load_n(&pc->gen, __ATOMIC_ACQUIRE);
}

/* Faults and the sweep wait for a resume instead of giving up. */
static inline bool resuming(const struct postcopy *pc)
{
	return pc->o->resume_wait_s && !pc->stop && !pc->completed;
}

/* ---- set-up ------------------------------------------------------------ */

/*
 * userfaultfd(2), non-blocking (the fault thread polls it with its stop
 * eventfd).  Handling faults the kernel itself takes in the range needs
 * privilege (root, or CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1);
 * without it, a descriptor for user-mode faults only is all one gets, and
 * all this VMM needs: only its guest thread touches the memory.
 */
/* --memfd: MINOR faults, pages read in place and mapped with CONTINUE. */
static inline bool minor_mode(const struct postcopy *pc)
{
	return pc->o->memfd;
}

static int uffd_open(const struct vmm_opts *o)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = o->memfd ? UFFD_FEATURE_MINOR_SHMEM : 0,
	};
	int uffd, err;

	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
#ifdef UFFD_USER_MODE_ONLY
	if (uffd < 0 && errno == EPERM)
		uffd = syscall(SYS_userfaultfd,
			       O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
#endif
	if (uffd < 0) {
		err = errno;
		fprintf(stderr, "rdmamig-vmm: dest: --postcopy needs userfaultfd(2): %s%s\n",
			strerror(err),
			err == EPERM ? "; run as root, or allow it to users with "
				       "sysctl vm.unprivileged_userfaultfd=1" :
			err == ENOSYS ? "; this kernel has no CONFIG_USERFAULTFD" : "");
		if (o->json)
			printf("{\"ok\":false,\"role\":\"dest\",\"op\":\"userfaultfd\","
			       "\"errno\":%d,\"error\":\"%s\"}\n", err, strerror(err));
		return -1;
	}
	if (ioctl(uffd, UFFDIO_API, &api)) {
		fprintf(stderr, "rdmamig-vmm: dest: UFFDIO_API: %s%s\n", strerror(errno),
			o->memfd ? " (--memfd needs MINOR faults on shared memory, "
				   "UFFD_FEATURE_MINOR_SHMEM: Linux 5.14)" : "");
		close(uffd);
		return -1;
	}
	return uffd;
}

struct postcopy *postcopy_prepare(const struct vmm_opts *o)
{
	struct postcopy *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->o = o;
	pc->fd = -1;
	pc->stopfd = -1;
	pc->kickfd = -1;
	pthread_mutex_init(&pc->lock, NULL);
	pc->uffd = uffd_open(o);
	if (pc->uffd < 0) {
		free(pc);
		return NULL;
	}
	pc->fault_len = o->fault_buf;
	pc->sweep_len = o->sweep_buf;
	return pc;
}

bool postcopy_started(const struct postcopy *pc)
{
	return pc && pc->started;
}

/*
 * The block and page of @addr: a guest address (in the view: faults) or
 * with @mem a block address (FETCH's answers).  The same with anonymous
 * memory, where the view is the block's mapping.
 */
static struct ram_block *block_at(struct postcopy *pc, uint64_t addr, bool mem,
				  unsigned int *bi, uint64_t *page)
{
	unsigned int i;

	for (i = 0; i < pc->ram->nblocks; i++) {
		struct ram_block *b = &pc->ram->blocks[i];
		uintptr_t start = (uintptr_t)(mem ? b->mem : b->view);

		if (addr >= start && addr < start + b->npages * page_size) {
			*bi = i;
			*page = (addr - start) / page_size;
			return b;
		}
	}
	return NULL;
}

static struct ram_block *block_of(struct postcopy *pc, uint64_t addr,
				  unsigned int *bi, uint64_t *page)
{
	return block_at(pc, addr, false, bi, page);
}

static struct ram_block *gpage_block(struct postcopy *pc, uint64_t gpage,
				     uint64_t *page)
{
	unsigned int i;

	for (i = 0; i + 1 < pc->ram->nblocks; i++)
		if (gpage < pc->pb[i + 1].first_gpage)
			break;
	*page = gpage - pc->pb[i].first_gpage;
	return &pc->ram->blocks[i];
}

/*
 * Each block's owed pages (RDMAMIG_IOC_OWED: struct rdmamig_round with
 * flags 0, the range asked for, a bitmap the kernel fills), then
 * MADV_DONTNEED on each run of them: with the block registered already,
 * the guest's next touch of such a page is a userfault instead of the
 * stale copy the destination may hold from an earlier round.
 */
static int owed_and_discard(struct postcopy *pc)
{
	unsigned int i;
	uint64_t pg, run, n = 0;

	for (i = 0; i < pc->ram->nblocks; i++) {
		struct ram_block *b = &pc->ram->blocks[i];
		struct pc_block *p = &pc->pb[i];
		struct rdmamig_round r = {
			.size = sizeof(r), .flags = 0, .block = b->index,
			.first_page = 0, .npages = b->npages,
			.bitmap = (uintptr_t)p->owed,
		};

		if (ioctl(pc->fd, RDMAMIG_IOC_OWED, &r)) {
			session_fail(pc->fd, pc->o, "OWED", errno);
			return -1;
		}
		/*
		 * Shared memory: dropping the view's page-table entries makes
		 * every page fault (MINOR) and keeps the page cache, which the
		 * pre-copy rounds filled and FETCH reads into.
		 */
		if (minor_mode(pc) &&
		    madvise(b->view, b->npages * page_size, MADV_DONTNEED)) {
			perror("rdmamig-vmm: dest: madvise(MADV_DONTNEED) of the view");
			return -1;
		}
		for (pg = 0; pg < b->npages; pg = run) {
			if (!bit_test(p->owed, pg)) {
				run = pg + 1;
				continue;
			}
			for (run = pg; run < b->npages && bit_test(p->owed, run); run++)
				n++;
			if (!minor_mode(pc) && madvise(b->mem + pg * page_size, (run - pg) * page_size,
				    MADV_DONTNEED)) {
				perror("rdmamig-vmm: dest: madvise(MADV_DONTNEED)");
				return -1;
			}
			pc->discarded += run - pg;
		}
	}
	pc->owed = n;
	return 0;
}

static int uffd_register(struct postcopy *pc)
{
	unsigned int i;

	for (i = 0; i < pc->ram->nblocks; i++) {
		struct ram_block *b = &pc->ram->blocks[i];
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)b->view,
				   .len = b->npages * page_size },
			.mode = minor_mode(pc) ? UFFDIO_REGISTER_MODE_MINOR :
						 UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(pc->uffd, UFFDIO_REGISTER, &reg)) {
			fprintf(stderr, "rdmamig-vmm: dest: UFFDIO_REGISTER %s: %s\n",
				b->name, strerror(errno));
			return -1;
		}
		if (minor_mode(pc) && !(reg.ioctls & (1ULL << _UFFDIO_CONTINUE))) {
			fprintf(stderr, "rdmamig-vmm: dest: %s: no UFFDIO_CONTINUE on "
				"this memory\n", b->name);
			return -1;
		}
		if (!minor_mode(pc) && (!(reg.ioctls & (1ULL << _UFFDIO_COPY)) ||
					!(reg.ioctls & (1ULL << _UFFDIO_ZEROPAGE)))) {
			fprintf(stderr, "rdmamig-vmm: dest: %s: no UFFDIO_COPY or "
				"UFFDIO_ZEROPAGE on this memory\n", b->name);
			return -1;
		}
	}
	return 0;
}

static void uffd_unregister(struct postcopy *pc)
{
	unsigned int i;

	for (i = 0; pc->uffd >= 0 && i < pc->ram->nblocks; i++) {
		struct uffdio_range r = {
			.start = (uintptr_t)pc->ram->blocks[i].view,
			.len = pc->ram->blocks[i].npages * page_size,
		};

		if (ioctl(pc->uffd, UFFDIO_UNREGISTER, &r))
			pc_problem(pc, "UFFDIO_UNREGISTER %s: %s",
				   pc->ram->blocks[i].name, strerror(errno));
	}
}

/* ---- placing pages ----------------------------------------------------- */

static void mark_placed(struct postcopy *pc, unsigned int bi, uint64_t pg,
			uint64_t n)
{
	uint64_t *placed = pc->pb[bi].placed, bit, old;

	for (; n; n--, pg++) {
		bit = 1ULL << (pg % 64);
		old = __atomic_fetch_or(&placed[pg / 64], bit, __ATOMIC_RELAXED);
		if (old & bit) {
			add(&pc->placed_twice, 1);
			pc_problem(pc, "%s page %" PRIu64 " placed twice",
				   pc->ram->blocks[bi].name, pg);
		}
	}
}

/*
 * Map @len bytes of the view at @dst whose pages are in the page cache
 * (--memfd): UFFDIO_CONTINUE.  Returns what UFFDIO_COPY would: 0, or -1
 * with errno and *@done the bytes mapped before it stopped.
 */
static int uffd_continue(struct postcopy *pc, uint64_t dst, uint64_t len,
			 int64_t *done)
{
	struct uffdio_continue c = { .range = { .start = dst, .len = len } };
	int ret = ioctl(pc->uffd, UFFDIO_CONTINUE, &c);

	*done = c.mapped;
	return ret;
}

/*
 * Place @npages pages at @start, the range FETCH returned (a block
 * address): UFFDIO_COPY from @buf, or with --memfd UFFDIO_CONTINUE of
 * the view's same pages, which FETCH read in place.  Either stops early
 * at a page that is there already (EEXIST: counted as placed twice, and
 * skipped) or when the address space is changing (EAGAIN: retried); the
 * ioctl says how far it got.
 */
static int place(struct postcopy *pc, uint64_t start, uint64_t npages,
		 const uint8_t *buf, const char *who)
{
	uint64_t pg, i, off = 0, len = npages * page_size, dst;
	unsigned int bi, again = 0;
	struct ram_block *b = block_at(pc, start, true, &bi, &pg);
	const char *op = minor_mode(pc) ? "UFFDIO_CONTINUE" : "UFFDIO_COPY";
	int64_t done;
	int ret;

	if (!b || start % page_size || pg + npages > b->npages) {
		pc_problem(pc, "%s: FETCH returned %" PRIu64 " pages at %#" PRIx64
			   ", not inside one block", who, npages, start);
		return -1;
	}
	for (i = 0; i < npages; i++) {
		if (!bit_test(pc->pb[bi].owed, pg + i)) {
			add(&pc->not_owed, 1);
			pc_problem(pc, "%s: FETCH returned %s page %" PRIu64
				   ", which OWED did not name", who, b->name, pg + i);
		}
	}
	dst = (uintptr_t)b->view + pg * page_size;
	while (off < len) {
		if (minor_mode(pc)) {
			ret = uffd_continue(pc, dst + off, len - off, &done);
		} else {
			struct uffdio_copy c = {
				.dst = dst + off,
				.src = (uintptr_t)buf + off,
				.len = len - off,
			};

			ret = ioctl(pc->uffd, UFFDIO_COPY, &c);
			done = c.copy;
		}
		if (ret == 0) {
			mark_placed(pc, bi, pg + off / page_size, (len - off) / page_size);
			return 0;
		}
		if (done > 0) {
			mark_placed(pc, bi, pg + off / page_size, done / page_size);
			off += done;
			continue;
		}
		if (errno == EEXIST) {
			add(&pc->placed_twice, 1);
			pc_problem(pc, "%s: %s %s page %" PRIu64
				   ": EEXIST, the page was placed already", who, op,
				   b->name, pg + off / page_size);
			off += page_size;
			continue;
		}
		if ((errno == EAGAIN || errno == EINTR) && ++again < 10000) {
			sched_yield();
			continue;
		}
		pc_problem(pc, "%s: %s %s page %" PRIu64 ": %s", who, op,
			   b->name, pg + off / page_size, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A page not owed: with --memfd it is in the page cache, as the pre-copy
 * rounds left it (or zero); map it.
 */
static void map_unowed(struct postcopy *pc, uint64_t addr)
{
	unsigned int again = 0;
	int64_t done;

	while (uffd_continue(pc, addr, page_size, &done)) {
		if (errno == EEXIST)
			return;		/* there already: the guest was woken */
		if ((errno == EAGAIN || errno == EINTR) && ++again < 10000) {
			sched_yield();
			continue;
		}
		pc_problem(pc, "UFFDIO_CONTINUE %#" PRIx64 ": %s", addr, strerror(errno));
		return;
	}
	add(&pc->mapped_unowed, 1);
}

/* A page that was never owed and never written: it reads as zero. */
static void zero_fill(struct postcopy *pc, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { .start = addr, .len = page_size } };
	unsigned int again = 0;

	if (minor_mode(pc)) {
		map_unowed(pc, addr);
		return;
	}

	while (ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z)) {
		if (errno == EEXIST)
			return;		/* there already: the guest was woken */
		if ((errno == EAGAIN || errno == EINTR) && ++again < 10000) {
			sched_yield();
			continue;
		}
		pc_problem(pc, "UFFDIO_ZEROPAGE %#" PRIx64 ": %s", addr, strerror(errno));
		return;
	}
	add(&pc->zero_filled, 1);
}

static bool is_owed(struct postcopy *pc, uint64_t addr, bool *placed)
{
	unsigned int bi;
	uint64_t pg;

	*placed = false;
	if (!block_of(pc, addr, &bi, &pg))
		return false;
	*placed = __atomic_load_n(&pc->pb[bi].placed[pg / 64], __ATOMIC_RELAXED) &
		  (1ULL << (pg % 64));
	return bit_test(pc->pb[bi].owed, pg);
}

/* ---- the fault thread -------------------------------------------------- */

/* A placing, for --timeline (nothing recorded without it). */
static void record_step(struct postcopy *pc, uint64_t pages, bool fault,
			uint64_t fault_us)
{
	struct pc_step *n;

	if (!pc->o->timeline)
		return;
	pthread_mutex_lock(&pc->lock);
	if (pc->nsteps == pc->capsteps) {
		pc->capsteps = pc->capsteps ? 2 * pc->capsteps : 4096;
		n = realloc(pc->steps, pc->capsteps * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&pc->lock);
			return;
		}
		pc->steps = n;
	}
	pc->steps[pc->nsteps++] = (struct pc_step){
		.t_us = now_us() - pc->t_event_us,
		.pages = pages,
		/* 0 is the sweep's: a fault's is at least 1. */
		.fault_us = !fault ? 0 : fault_us > UINT32_MAX ? UINT32_MAX :
			    fault_us ? fault_us : 1,
	};
	pthread_mutex_unlock(&pc->lock);
}

/*
 * --timeline: a header, then a line per placing in time order:
 * "t_ms fault|sweep pages fault_us" (fault_us "-" for the sweep).
 */
int postcopy_write_timeline(const struct postcopy *pc, const char *path)
{
	FILE *f;
	size_t i;

	if (!pc || !pc->started)
		return 0;
	f = fopen(path, "we");
	if (!f)
		return -1;
	fprintf(f, "# rdmamig-vmm post-copy timeline: %" PRIu64 " pages owed; ms since "
		"RDMAMIG_EVENT_POSTCOPY, kind, pages placed, fault service us\n", pc->owed);
	for (i = 0; i < pc->nsteps; i++) {
		const struct pc_step *s = &pc->steps[i];

		fprintf(f, "%.3f %s %u ", s->t_us / 1000.0,
			s->fault_us ? "fault" : "sweep", s->pages);
		if (s->fault_us)
			fprintf(f, "%u\n", s->fault_us);
		else
			fprintf(f, "-\n");
	}
	return fclose(f) ? -1 : 0;
}

static void record_latency(struct postcopy *pc, uint64_t us)
{
	uint32_t *n;

	if (pc->nlat == pc->caplat) {
		pc->caplat = pc->caplat ? 2 * pc->caplat : 4096;
		n = realloc(pc->lat_us, pc->caplat * sizeof(*n));
		if (!n)
			return;
		pc->lat_us = n;
	}
	pc->lat_us[pc->nlat++] = us > UINT32_MAX ? UINT32_MAX : us;
}

/*
 * One fault: FETCH at its address (page-aligned: the kernel reports
 * faults by page), then place what came.  The window after the faulting
 * page comes along, as far as the buffer and the module's fault_window
 * allow.
 */
/* A fault the session could not serve: kept for the resumed one. */
static void hold_fault(struct postcopy *pc, uint64_t addr)
{
	uint64_t *n;

	if (pc->nheld == pc->capheld) {
		pc->capheld = pc->capheld ? 2 * pc->capheld : 256;
		n = realloc(pc->held, pc->capheld * sizeof(*n));
		if (!n) {
			pc_problem(pc, "no memory to keep a fault");
			return;
		}
		pc->held = n;
	}
	pc->held[pc->nheld++] = addr;
	add(&pc->held_total, 1);
}

static void handle_fault(struct postcopy *pc, uint64_t addr)
{
	struct rdmamig_fetch f;
	uint64_t t0 = now_us();
	bool owed, placed;
	int ret;

	unsigned int bi;
	uint64_t pg, at;

	addr &= ~(uint64_t)(page_size - 1);
	/* --memfd: every first touch faults; most pages need no FETCH. */
	if (minor_mode(pc) && !is_owed(pc, addr, &placed)) {
		map_unowed(pc, addr);
		return;
	}
	/* FETCH takes block addresses: the view's twin in --memfd. */
	at = addr;
	if (minor_mode(pc) && block_of(pc, addr, &bi, &pg))
		at = (uintptr_t)pc->ram->blocks[bi].mem + pg * page_size;
	do {
		memset(&f, 0, sizeof(f));
		f.size = sizeof(f);
		f.addr = at;
		if (minor_mode(pc)) {
			f.flags = RDMAMIG_FETCH_IN_PLACE;
		} else {
			f.buf = (uintptr_t)pc->fault_buf;
		}
		f.buf_len = pc->fault_len;
		ret = ioctl(pc_fd(pc), RDMAMIG_IOC_FETCH, &f);
	} while (ret && errno == EINTR);
	add(&pc->fault_fetches, 1);

	if (ret == 0) {
		if (!f.npages) {
			/*
			 * In another caller's buffer: its UFFDIO_COPY wakes us.
			 * Unless we were never owed the page: once every page is
			 * fetched the module answers so for any address.
			 */
			if (!is_owed(pc, addr, &placed)) {
				add(&pc->fault_empty_not_owed, 1);
				zero_fill(pc, addr);
				return;
			}
			add(&pc->fault_empty, 1);
			return;
		}
		if (f.start != at)
			pc_problem(pc, "fault at %#" PRIx64 ": FETCH returned pages from %#"
				   PRIx64, at, (uint64_t)f.start);
		if (place(pc, f.start, f.npages, pc->fault_buf, "fault") == 0)
			add(&pc->fault_pages, f.npages);
		record_latency(pc, now_us() - t0);
		record_step(pc, f.npages, true, now_us() - t0);
		return;
	}

	owed = is_owed(pc, addr, &placed);
	switch (errno) {
	case ENOENT:
		/* Never owed: sent before the switch, or never written. */
		if (owed)
			pc_problem(pc, "fault at %#" PRIx64 ": FETCH says ENOENT, "
				   "but OWED named the page", addr);
		else
			zero_fill(pc, addr);
		return;
	case ENOTCONN:
		/*
		 * Post-copy is over (or failed: the event loop sees that).  A
		 * page that was not owed is zero; an owed one is in another
		 * caller's buffer, and its placing wakes the guest.
		 */
		if (!owed)
			zero_fill(pc, addr);
		else if (!placed && resuming(pc))
			hold_fault(pc, addr);
		else if (!placed)
			add(&pc->fault_notconn, 1);
		return;
	default:
		/* The session failed: the guest waits for the resume. */
		if (resuming(pc)) {
			hold_fault(pc, addr);
			return;
		}
		if (!pc->stop)
			pc_problem(pc, "FETCH for the fault at %#" PRIx64 ": %s", addr,
				   strerror(errno));
	}
}

/*
 * After a resume: the faults kept, on the new session, then a wake-up of
 * every thread still waiting in the blocks.  A thread whose page is
 * still missing faults again (a new uffd_msg); one whose page was placed
 * meanwhile just goes on.
 */
static void serve_held(struct postcopy *pc)
{
	uint64_t *list = pc->held, v;
	size_t n = pc->nheld, i;
	unsigned int b;

	if (read(pc->kickfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pc_problem(pc, "read the resume eventfd: %s", strerror(errno));
	pc->held = NULL;
	pc->nheld = pc->capheld = 0;
	for (i = 0; i < n; i++)
		handle_fault(pc, list[i]);
	free(list);
	for (b = 0; b < pc->ram->nblocks; b++) {
		struct uffdio_range r = {
			.start = (uintptr_t)pc->ram->blocks[b].view,
			.len = pc->ram->blocks[b].npages * page_size,
		};

		if (ioctl(pc->uffd, UFFDIO_WAKE, &r))
			pc_problem(pc, "UFFDIO_WAKE %s: %s", pc->ram->blocks[b].name,
				   strerror(errno));
	}
}

static void *fault_main(void *arg)
{
	struct postcopy *pc = arg;
	struct pollfd pfd[3] = {
		{ .fd = pc->uffd, .events = POLLIN },
		{ .fd = pc->stopfd, .events = POLLIN },
		{ .fd = pc->kickfd, .events = POLLIN },
	};
	struct uffd_msg msg[16];
	ssize_t n, i;

	for (;;) {
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			pc_problem(pc, "poll userfaultfd: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[2].revents) {
			serve_held(pc);
			continue;
		}
		n = read(pc->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			pc_problem(pc, "read userfaultfd: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			add(&pc->fault_msgs, 1);
			handle_fault(pc, msg[i].arg.pagefault.address);
		}
	}
	return NULL;
}

/* ---- the sweep thread -------------------------------------------------- */

/*
 * The background copy: RDMAMIG_FETCH_SWEEP picks the next run of owed
 * pages (nearest the last fault first).  npages 0 with pages remaining:
 * they are all in the fault thread's hands; wait a little and ask again.
 * npages 0, remaining 0: done.
 */
static void *sweep_main(void *arg)
{
	struct rdmamig_fetch_run runs[RDMAMIG_FETCH_RUNS_MAX];
	struct sweeper *sw = arg;
	struct postcopy *pc = sw->pc;
	struct rdmamig_fetch f;
	unsigned int gen, i;
	uint8_t *src;
	int ret;

	/* Linux's nice is per thread: this one only. */
	if (pc->o->sweep_nice &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)pc->o->sweep_nice))
		pc_problem(pc, "sweep: setpriority: %s", strerror(errno));
	while (!pc->stop) {
		memset(&f, 0, sizeof(f));
		f.size = sizeof(f);
		f.flags = RDMAMIG_FETCH_SWEEP;
		if (minor_mode(pc))
			f.flags |= RDMAMIG_FETCH_IN_PLACE;
		else
			f.buf = (uintptr_t)sw->buf;
		f.buf_len = pc->sweep_len;
		/* Scattered owed pages: many runs a call, read together. */
		f.runs = (uintptr_t)runs;
		f.nruns = RDMAMIG_FETCH_RUNS_MAX;
		gen = pc_gen(pc);
		ret = ioctl(pc_fd(pc), RDMAMIG_IOC_FETCH, &f);
		if (ret && errno == EINTR)
			continue;
		if (ret && errno != ENOENT && resuming(pc)) {
			/* Its pages stay owed: wait for the resumed session. */
			while (pc_gen(pc) == gen && resuming(pc))
				usleep(10 * 1000);
			continue;
		}
		if (ret) {
			if (!pc->stop)
				pc_problem(pc, "sweep: FETCH: %s", strerror(errno));
			break;
		}
		add(&pc->sweep_calls, 1);
		if (f.npages) {
			src = sw->buf;
			for (i = 0; i < f.nruns; i++) {
				if (place(pc, runs[i].start, runs[i].npages, src, "sweep"))
					goto out;
				src += runs[i].npages * page_size;
			}
			add(&pc->sweep_pages, f.npages);
			record_step(pc, f.npages, false, 0);
			continue;
		}
		if (!f.remaining) {
			pc->t_sweep_us = now_us();
			pc->sweep_done = 1;
			break;
		}
		add(&pc->sweep_waits, 1);
		usleep(1000);
	}
out:
	sw->exited = 1;
	return NULL;
}

/* ---- the guest --------------------------------------------------------- */

/*
 * The guest runs on during post-copy: --guest-writes times, it reads a
 * page (faulting it in if it is owed), checks it against what it should
 * hold - the source's hash at the switch, or the hash of what this
 * thread last wrote there - and writes new content.  Half the pages come
 * from the owed ones, as a guest's working set is what it dirtied last;
 * the rest from all of RAM.
 */
static void *guest_main(void *arg)
{
	struct postcopy *pc = arg;
	struct rng r = { .s = pc->o->seed ^ 0x6775657374ULL };	/* "guest" */
	uint64_t i, gpage, pg, h;
	struct ram_block *b;

	for (i = 0; i < pc->o->guest_writes && !pc->stop; i++) {
		if (pc->owed && rng_below(&r, 2))
			gpage = pc->owed_list[rng_below(&r, pc->owed)];
		else
			gpage = rng_below(&r, pc->ram->total_pages);
		b = gpage_block(pc, gpage, &pg);
		h = page_hash_of(b, pg, b->view + pg * page_size);
		if (pc->have_hashes && h != pc->expect[gpage]) {
			if (get(&pc->guest_reads_bad) < GUEST_SHOWN && !pc->o->json)
				fprintf(stderr, "rdmamig-vmm: dest: guest read %s page %"
					PRIu64 ": not what it should hold\n", b->name, pg);
			add(&pc->guest_reads_bad, 1);
		}
		rng_fill(&r, b->view + pg * page_size, page_size);
		pc->expect[gpage] = page_hash_of(b, pg, b->view + pg * page_size);
		add(&pc->guest_writes, 1);
	}
	pc->guest_done = 1;
	return NULL;
}

/* ---- the watchdog ------------------------------------------------------ */

/*
 * Post-copy that stops moving would hang the guest for good: when no
 * page was placed and no event came for --timeout seconds, cancel the
 * session (the event loop then sees FAILED).
 */
static void *watch_main(void *arg)
{
	struct postcopy *pc = arg;
	uint64_t last = 0, now, progress, since = now_us();

	while (!pc->watch_stop && !pc->completed) {
		usleep(100 * 1000);
		progress = get(&pc->fault_pages) + get(&pc->sweep_pages) +
			   get(&pc->zero_filled) + get(&pc->fault_msgs) +
			   get(&pc->sweep_calls) + get(&pc->guest_writes);
		now = now_us();
		if (progress != last) {
			last = progress;
			since = now;
			continue;
		}
		if (now - since > (uint64_t)pc->o->timeout_s * 1000000) {
			pc_problem(pc, "no progress for %u s: cancelling", pc->o->timeout_s);
			ioctl(pc_fd(pc), RDMAMIG_IOC_CANCEL);
			break;
		}
	}
	return NULL;
}

/* ---- start and finish -------------------------------------------------- */

static void *alloc_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int postcopy_start(struct postcopy *pc, int fd, struct guest_ram *ram,
		   const uint64_t *hashes, uint64_t event_pages)
{
	uint64_t n, pg;
	unsigned int i;

	pc->fd = fd;
	pc->ram = ram;
	pc->event_pages = event_pages;
	pc->t_event_us = now_us();
	pc->started = true;
	pc->pb = calloc(ram->nblocks, sizeof(*pc->pb));
	pc->expect = calloc(ram->total_pages, sizeof(*pc->expect));
	pc->fault_buf = alloc_buf(pc->fault_len);
	pc->nsweepers = pc->o->sweep_threads;
	for (i = 0; i < pc->nsweepers; i++) {
		pc->sweepers[i].pc = pc;
		pc->sweepers[i].buf = alloc_buf(pc->sweep_len);
		if (!pc->sweepers[i].buf) {
			perror("rdmamig-vmm: dest: post-copy set-up");
			return -1;
		}
	}
	pc->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pc->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!pc->pb || !pc->expect || !pc->fault_buf ||
	    pc->stopfd < 0 || pc->kickfd < 0) {
		perror("rdmamig-vmm: dest: post-copy set-up");
		return -1;
	}
	if (hashes) {
		memcpy(pc->expect, hashes, ram->total_pages * sizeof(*pc->expect));
		pc->have_hashes = true;
	}
	for (i = 0, n = 0; i < ram->nblocks; i++) {
		uint64_t words = (ram->blocks[i].npages + 63) / 64;

		pc->pb[i].first_gpage = n;
		n += ram->blocks[i].npages;
		pc->pb[i].owed = calloc(words, sizeof(uint64_t));
		pc->pb[i].placed = calloc(words, sizeof(uint64_t));
		if (!pc->pb[i].owed || !pc->pb[i].placed) {
			perror("rdmamig-vmm: dest: post-copy set-up");
			return -1;
		}
	}

	/* Registered before the discard: no touch in between can miss. */
	if (uffd_register(pc) || owed_and_discard(pc))
		return -1;
	pc->owed_list = malloc((pc->owed ? pc->owed : 1) * sizeof(uint64_t));
	if (!pc->owed_list)
		return -1;
	for (i = 0, n = 0; i < ram->nblocks; i++)
		for (pg = 0; pg < ram->blocks[i].npages; pg++)
			if (bit_test(pc->pb[i].owed, pg))
				pc->owed_list[n++] = pc->pb[i].first_gpage + pg;
	pc->ready = true;
	if (pc->owed != event_pages)
		pc_problem(pc, "RDMAMIG_EVENT_POSTCOPY said %" PRIu64 " pages owed, "
			   "OWED named %" PRIu64, event_pages, pc->owed);
	pc->t_ready_us = now_us();

	if (pthread_create(&pc->fault_th, NULL, fault_main, pc))
		return -1;
	pc->fault_on = true;
	if (pthread_create(&pc->watch_th, NULL, watch_main, pc))
		return -1;
	pc->watch_on = true;
	if (pc->o->guest_writes) {
		if (pthread_create(&pc->guest_th, NULL, guest_main, pc))
			return -1;
		pc->guest_on = true;
	} else {
		pc->guest_done = 1;
	}
	/* Several sweeps keep several READ batches on the wire at once. */
	for (i = 0; i < pc->nsweepers; i++) {
		if (pthread_create(&pc->sweepers[i].th, NULL, sweep_main, &pc->sweepers[i]))
			return -1;
		pc->sweepers[i].on = true;
	}
	if (!pc->o->json)
		fprintf(stderr, "rdmamig-vmm: dest: post-copy: %" PRIu64 " pages owed, "
			"guest running (set-up %" PRIu64 " us)\n", pc->owed,
			pc->t_ready_us - pc->t_event_us);
	return 0;
}

void postcopy_set_completed(struct postcopy *pc)
{
	if (pc)
		pc->completed = 1;
}

/*
 * The new session switched (its RDMAMIG_EVENT_POSTCOPY): the threads
 * FETCH on @fd from now on, and the fault thread serves what it kept.
 * Nothing is discarded again.
 */
void postcopy_resumed(struct postcopy *pc, int fd, uint64_t event_pages)
{
	uint64_t one = 1;

	pc->resume_event_pages = event_pages;
	if (!pc_gen(pc)) {
		pc->placed_at_resume = get(&pc->fault_pages) + get(&pc->sweep_pages);
		pc->t_resume_us = now_us();
	}
	__atomic_store_n(&pc->fd, fd, __ATOMIC_RELEASE);
	__atomic_fetch_add(&pc->gen, 1, __ATOMIC_RELEASE);
	if (write(pc->kickfd, &one, sizeof(one)) != sizeof(one))
		pc_problem(pc, "write the resume eventfd: %s", strerror(errno));
	if (!pc->o->json)
		fprintf(stderr, "rdmamig-vmm: dest: post-copy resumed: %" PRIu64
			" pages owed by the new session, %zu faults kept\n",
			event_pages, pc->nheld);
}

/*
 * The failed session is about to be closed (dest_resume()): until the
 * resumed one switches, the threads use no descriptor at all, so that
 * none acts on a number that open() may hand out again (the watchdog's
 * CANCEL least of all).  FETCH then fails with EBADF, and they wait.
 */
void postcopy_detach(struct postcopy *pc)
{
	__atomic_store_n(&pc->fd, -1, __ATOMIC_RELEASE);
}

/* Owed pages never placed (after postcopy_finish()); @owed: all owed. */
uint64_t postcopy_missing(const struct postcopy *pc, uint64_t *owed)
{
	*owed = pc ? pc->owed : 0;
	return pc ? pc->unplaced : 0;
}

/* Wait for @flag to be set, up to @timeout_s; then join. */
static bool join_within(pthread_t th, volatile int *flag, unsigned int timeout_s)
{
	uint64_t deadline = now_us() + (uint64_t)timeout_s * 1000000;

	while (flag && !*flag && now_us() < deadline)
		usleep(2000);
	if (flag && !*flag)
		return false;
	pthread_join(th, NULL);
	return true;
}

/*
 * After COMPLETED (or a failure): the guest and the sweep end, then the
 * fault thread; the blocks are unregistered and the userfaultfd closed,
 * which lets any fault still waiting be served by the kernel as usual.
 * Returns -1 when a thread did not end in time (it is left behind).
 */
int postcopy_finish(struct postcopy *pc, bool failed)
{
	uint64_t one = 1, pg;
	unsigned int i;
	int ret = 0;

	if (!pc || !pc->started)
		return 0;
	if (failed) {
		pc->stop = 1;
		/* A guest waiting on a page that will not come: let it go. */
		uffd_unregister(pc);
	}
	if (pc->guest_on && !join_within(pc->guest_th, &pc->guest_done, pc->o->timeout_s)) {
		pc_problem(pc, "the guest thread did not finish within %u s",
			   pc->o->timeout_s);
		ret = -1;
	}
	pc->guest_on = false;
	for (i = 0; i < pc->nsweepers; i++) {
		struct sweeper *sw = &pc->sweepers[i];

		if (!sw->on)
			continue;
		if (failed) {
			pthread_join(sw->th, NULL);
		} else if (!join_within(sw->th, &sw->exited, pc->o->timeout_s)) {
			pc->stop = 1;
			pc_problem(pc, "the sweep did not finish within %u s",
				   pc->o->timeout_s);
			ret = -1;
		} else if (!pc->sweep_done) {
			pc_problem(pc, "the sweep ended before every page was fetched");
		}
		sw->on = false;
	}
	pc->t_end_us = now_us();
	if (pc->fault_on) {
		if (write(pc->stopfd, &one, sizeof(one)) != sizeof(one))
			ret = -1;
		pthread_join(pc->fault_th, NULL);
		pc->fault_on = false;
	}
	if (pc->watch_on) {
		pc->watch_stop = 1;
		pthread_join(pc->watch_th, NULL);
		pc->watch_on = false;
	}
	if (!failed)
		uffd_unregister(pc);
	close(pc->uffd);
	pc->uffd = -1;

	for (i = 0; pc->ready && i < pc->ram->nblocks; i++)
		for (pg = 0; pg < pc->ram->blocks[i].npages; pg++)
			if (bit_test(pc->pb[i].owed, pg) && !bit_test(pc->pb[i].placed, pg))
				pc->unplaced++;
	if (!failed && pc->unplaced)
		pc_problem(pc, "%" PRIu64 " owed pages were never placed", pc->unplaced);
	if (pc->guest_reads_bad)
		pc_problem(pc, "the guest read %" PRIu64 " pages that differ",
			   pc->guest_reads_bad);
	return ret;
}

const uint64_t *postcopy_expected(const struct postcopy *pc)
{
	return pc && pc->started && pc->have_hashes ? pc->expect : NULL;
}

const char *postcopy_problem(const struct postcopy *pc)
{
	return pc && pc->problem[0] ? pc->problem : "";
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint32_t *v, size_t n, unsigned int p)
{
	return n ? v[(n - 1) * p / 100] : 0;
}

/*
 * What the VMM saw of post-copy, for the summary: as JSON members (to
 * append to the summary object) or as lines of text.  The kernel's own
 * counters are in struct rdmamig_stats and printed with the rest.
 */
void postcopy_report(const struct postcopy *pc, bool json, char *out, size_t size)
{
	uint64_t p50 = 0, p99 = 0, max = 0, wall = 0;
	struct postcopy *m = (struct postcopy *)pc;

	out[0] = 0;
	if (!pc || !pc->started)
		return;
	if (m->nlat) {
		qsort(m->lat_us, m->nlat, sizeof(*m->lat_us), cmp_u32);
		p50 = pct(m->lat_us, m->nlat, 50);
		p99 = pct(m->lat_us, m->nlat, 99);
		max = m->lat_us[m->nlat - 1];
	}
	if (pc->t_end_us > pc->t_event_us)
		wall = (pc->t_end_us - pc->t_event_us) / 1000;
	if (json) {
		snprintf(out, size,
			 "\"postcopy_event_pages\":%" PRIu64 ",\"owed_named\":%" PRIu64
			 ",\"discarded\":%" PRIu64 ",\"setup_us\":%" PRIu64
			 ",\"uffd_faults\":%" PRIu64 ",\"fault_fetches\":%" PRIu64
			 ",\"fault_fetch_empty\":%" PRIu64 ",\"fault_empty_not_owed\":%" PRIu64
			 ",\"placed_fault\":%" PRIu64
			 ",\"placed_sweep\":%" PRIu64 ",\"sweep_calls\":%" PRIu64
			 ",\"sweep_waits\":%" PRIu64 ",\"placed_twice\":%" PRIu64
			 ",\"placed_not_owed\":%" PRIu64 ",\"zero_filled\":%" PRIu64
			 ",\"fault_notconn\":%" PRIu64 ",\"unplaced\":%" PRIu64
			 ",\"guest_writes\":%" PRIu64 ",\"guest_reads_bad\":%" PRIu64
			 ",\"vmm_fault_us_p50\":%" PRIu64 ",\"vmm_fault_us_p99\":%" PRIu64
			 ",\"vmm_fault_us_max\":%" PRIu64 ",\"postcopy_wall_ms\":%" PRIu64
			 ",\"resumes\":%u,\"faults_kept\":%" PRIu64
			 ",\"resume_event_pages\":%" PRIu64
			 ",\"placed_before_resume\":%" PRIu64 ",\"resume_after_ms\":%" PRIu64
			 ",\"memfd\":%s,\"mapped_unowed\":%" PRIu64,
			 pc->event_pages, pc->owed, pc->discarded,
			 pc->t_ready_us - pc->t_event_us, pc->fault_msgs,
			 pc->fault_fetches, pc->fault_empty, pc->fault_empty_not_owed,
			 pc->fault_pages,
			 pc->sweep_pages, pc->sweep_calls, pc->sweep_waits,
			 pc->placed_twice, pc->not_owed, pc->zero_filled,
			 pc->fault_notconn, pc->unplaced, pc->guest_writes,
			 pc->guest_reads_bad, p50, p99, max, wall, pc->gen,
			 pc->held_total, pc->resume_event_pages, pc->placed_at_resume,
			 pc->t_resume_us ? (pc->t_resume_us - pc->t_event_us) / 1000 : 0,
			 minor_mode(pc) ? "true" : "false", pc->mapped_unowed);
		return;
	}
	snprintf(out, size,
		 "  post-copy (VMM): %" PRIu64 " pages owed and discarded (set-up %" PRIu64
		 " us), %" PRIu64 " faults: %" PRIu64 " pages placed, %" PRIu64
		 " already coming, %" PRIu64 " zero-filled; sweep %" PRIu64
		 " pages in %" PRIu64 " calls; placed twice %" PRIu64 ", unplaced %"
		 PRIu64 "\n"
		 "  fault service (FETCH + UFFDIO_COPY): p50 %" PRIu64 " us, p99 %"
		 PRIu64 " us, max %" PRIu64 " us; guest: %" PRIu64 " pages written, %"
		 PRIu64 " bad reads; %" PRIu64 " ms from the switch to the end\n",
		 pc->owed, pc->t_ready_us - pc->t_event_us, pc->fault_msgs,
		 pc->fault_pages, pc->fault_empty, pc->zero_filled, pc->sweep_pages,
		 pc->sweep_calls, pc->placed_twice, pc->unplaced, p50, p99, max,
		 pc->guest_writes, pc->guest_reads_bad, wall);
	if (pc->gen)
		snprintf(out + strlen(out), size - strlen(out),
			 "  resumed %u time%s: %" PRIu64 " faults kept across the failure,"
			 " %" PRIu64 " pages placed before the first resume, %" PRIu64
			 " ms after the switch; %" PRIu64 " pages owed by the last new"
			 " session\n", pc->gen, pc->gen == 1 ? "" : "s", pc->held_total,
			 pc->placed_at_resume, (pc->t_resume_us - pc->t_event_us) / 1000,
			 pc->resume_event_pages);
}

void postcopy_free(struct postcopy *pc)
{
	unsigned int i;

	if (!pc)
		return;
	if (pc->uffd >= 0)
		close(pc->uffd);
	if (pc->stopfd >= 0)
		close(pc->stopfd);
	if (pc->kickfd >= 0)
		close(pc->kickfd);
	free(pc->held);
	for (i = 0; pc->pb && i < pc->ram->nblocks; i++) {
		free(pc->pb[i].owed);
		free(pc->pb[i].placed);
	}
	free(pc->pb);
	free(pc->expect);
	free(pc->owed_list);
	free(pc->lat_us);
	free(pc->steps);
	if (pc->fault_buf)
		munmap(pc->fault_buf, pc->fault_len);
	for (i = 0; i < SWEEPERS_MAX; i++)
		if (pc->sweepers[i].buf)
			munmap(pc->sweepers[i].buf, pc->sweep_len);
	pthread_mutex_destroy(&pc->lock);
	free(pc);
}
