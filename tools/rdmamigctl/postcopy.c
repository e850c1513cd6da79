// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl incoming --postcopy: the destination's side of post-copy
 * for a process (rdmamig-vmm's postcopy.c does the same for a VMM's own
 * memory).
 *
 *   before LISTEN     the twin, stopped, is seized with ptrace and made
 *                     to call userfaultfd(O_CLOEXEC | O_NONBLOCK)
 *                     (inject.c); we take the descriptor with
 *                     pidfd_getfd(2), the twin closes its own, UFFDIO_API
 *   at the switch     (the session in RDMAMIG_STATE_POSTCOPY) OWED for
 *                     each block; UFFDIO_REGISTER (MISSING) the blocks;
 *                     the twin calls madvise(MADV_DONTNEED) on each run
 *                     of owed pages, so that its first touch of one
 *                     faults instead of reading an earlier round's copy;
 *                     PTRACE_DETACH, SIGCONT
 *   then, in threads  a fault thread: each fault is one FETCH at its
 *                     address into a staging buffer, placed with
 *                     UFFDIO_COPY (which wakes the twin); a never-owed
 *                     page (ENOENT) is a zero page (UFFDIO_ZEROPAGE); a
 *                     sweep thread: FETCH with RDMAMIG_FETCH_SWEEP until
 *                     nothing is left
 *   at the end        the fault thread finishes what it holds, and the
 *                     userfaultfd is closed: the twin's memory is whole
 *
 * Both threads FETCH through the session's socket (fetch.c).
 *
 * The injected userfaultfd() runs with the twin's credentials: it needs
 * root, CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1; otherwise we
 * fall back to UFFD_USER_MODE_ONLY, and a missing page the twin's
 * kernel touches for it (read(2) into it, say) fails with EFAULT.
 *
 * If post-copy fails after the twin was continued, its missing pages
 * cannot come any more, and would read as zero once the userfaultfd is
 * closed: the twin is killed.  With --resume-wait, a FETCH that fails
 * instead parks the threads (pc_fetch()) until incoming.c resumed the
 * session; the fault that could not be served is asked for again first,
 * then UFFDIO_WAKE over the blocks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include <linux/rdmamig.h>

#include "fetch.h"
#include "postcopy.h"
#include "rdmamigctl.h"

#define PC_FAULT_BUF	(64 << 10)	/* the module's fault window caps it */
#define PC_SWEEP_BUF	RDMAMIG_FETCH_MAX
#define PC_SWEEP_NICE	10
#define PC_WINDOW_PAGES	16384		/* discarded at once: 64 MiB */
#define PC_SCATTER	64		/* pages kept per owed run, below: scattered */

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

__attribute__((format(printf, 2, 3)))
static void pc_problem(struct pc_dest *pc, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&pc->lock);
	if (!pc->problem[0]) {
		va_start(ap, fmt);
		vsnprintf(pc->problem, sizeof(pc->problem), fmt, ap);
		va_end(ap);
	}
	pc->stop = 1;
	pthread_cond_broadcast(&pc->cond);	/* parked threads go */
	pthread_mutex_unlock(&pc->lock);
}

static inline void add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline bool bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] & (1ULL << (i % 64));
}

/* The block of @addr, and its page; NULL outside every block. */
static const struct pm_block *block_of(struct pc_dest *pc, uint64_t addr,
				       unsigned int *bi, uint64_t *page)
{
	unsigned int i;

	for (i = 0; i < pc->bl->n; i++) {
		const struct pm_block *b = &pc->bl->b[i];

		if (addr >= b->addr && addr - b->addr < b->len) {
			*bi = i;
			*page = (addr - b->addr) / PM_PAGE_SIZE;
			return b;
		}
	}
	return NULL;
}

/* ---- The twin's userfaultfd ------------------------------------------- */

static int twin_call(struct pc_dest *pc, long nr, uint64_t a0, uint64_t a1,
		     uint64_t a2, long *res)
{
	const uint64_t a[6] = { a0, a1, a2 };

	return pm_inject_syscall(&pc->inj, nr, a, res);
}

static int register_block(struct pc_dest *pc, const struct pm_block *b)
{
	struct uffdio_register reg = {
		.range = { .start = b->addr, .len = b->len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (ioctl(pc->uffd, UFFDIO_REGISTER, &reg)) {
		rm_err("incoming: --postcopy: UFFDIO_REGISTER %s: %s", b->name,
		       strerror(errno));
		return RM_EXIT_ERR;
	}
	if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)) ||
	    !(reg.ioctls & (1ULL << _UFFDIO_ZEROPAGE))) {
		rm_err("incoming: --postcopy: %s: no UFFDIO_COPY or UFFDIO_ZEROPAGE on "
		       "this memory (anonymous private memory only)", b->name);
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

/*
 * Each block registered and unregistered at once: memory userfaultfd
 * cannot serve is refused now, before listening, and not registered
 * while the session pins and fills it.
 */
static int check_blocks(struct pc_dest *pc)
{
	unsigned int i;
	int ret;

	for (i = 0; i < pc->bl->n; i++) {
		struct uffdio_range r = { .start = pc->bl->b[i].addr,
					  .len = pc->bl->b[i].len };

		ret = register_block(pc, &pc->bl->b[i]);
		if (ret)
			return ret;
		if (ioctl(pc->uffd, UFFDIO_UNREGISTER, &r)) {
			rm_err("incoming: --postcopy: UFFDIO_UNREGISTER %s: %s",
			       pc->bl->b[i].name, strerror(errno));
			return RM_EXIT_ERR;
		}
	}
	return RM_EXIT_OK;
}

int pc_dest_prepare(struct pc_dest *pc, struct rm *rm, pid_t pid, int mem,
		    const struct pm_blocks *bl)
{
	struct uffdio_api api = { .api = UFFD_API };
	long fd, res;
	int pidfd, ret;

	pc->uffd = pc->stopfd = -1;
	pc->rm = rm;
	pc->pid = pid;
	pc->mem = mem;
	pc->bl = bl;
	pthread_mutex_init(&pc->lock, NULL);
	pthread_cond_init(&pc->cond, NULL);

	ret = pm_inject_attach(&pc->inj, pid);
	if (ret)
		return ret;
	ret = twin_call(pc, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, &fd);
	if (!ret && fd == -EPERM) {
		pc->user_only = true;
		ret = twin_call(pc, SYS_userfaultfd,
				O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, &fd);
	}
	if (ret)
		return ret;
	if (fd < 0) {
		rm_err("incoming: --postcopy: userfaultfd(2) in pid %d failed: %s%s",
		       (int)pid, strerror(-fd), fd == -ENOSYS ?
		       " (this kernel has no CONFIG_USERFAULTFD)" : "");
		return RM_EXIT_ERR;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	pc->uffd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	if (pc->uffd < 0)
		rm_err("incoming: --postcopy: cannot take pid %d's userfaultfd (%s): %s",
		       (int)pid, pidfd < 0 ? "pidfd_open" : "pidfd_getfd", strerror(errno));
	if (pidfd >= 0)
		close(pidfd);
	/* Ours is the only one: the twin keeps no descriptor it never opened. */
	ret = twin_call(pc, SYS_close, fd, 0, 0, &res);
	if (ret || pc->uffd < 0)
		return RM_EXIT_ERR;
	if (ioctl(pc->uffd, UFFDIO_API, &api)) {
		rm_err("incoming: --postcopy: UFFDIO_API: %s", strerror(errno));
		return RM_EXIT_ERR;
	}
	ret = check_blocks(pc);
	if (ret)
		return ret;
	pc->stopfd = eventfd(0, EFD_CLOEXEC);
	pc->fault_buf = mmap(NULL, PC_FAULT_BUF, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pc->sweep_buf = mmap(NULL, PC_SWEEP_BUF, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pc->stopfd < 0 || pc->fault_buf == MAP_FAILED || pc->sweep_buf == MAP_FAILED) {
		rm_err("incoming: --postcopy: out of memory");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

/* ---- Placing pages -------------------------------------------------- */

static void mark_placed(struct pc_dest *pc, unsigned int bi, uint64_t pg, uint64_t n)
{
	uint64_t mask, old;

	for (; n; n--, pg++) {
		mask = 1ULL << (pg % 64);
		old = __atomic_fetch_or(&pc->placed[bi][pg / 64], mask, __ATOMIC_RELAXED);
		if (old & mask) {
			add(&pc->placed_twice, 1);
			pc_problem(pc, "%s page %" PRIu64 " placed twice",
				   pc->bl->b[bi].name, pg);
		}
	}
}

/*
 * UFFDIO_COPY @npages pages from @buf to @start, FETCH's range: keep
 * them for the checksum first; a copy may stop early (EAGAIN while the
 * address space changes: go on from where it got).
 */
static int place(struct pc_dest *pc, uint64_t start, uint64_t npages,
		 const uint8_t *buf, const char *who)
{
	uint64_t pg, i, off = 0, len = npages * PM_PAGE_SIZE;
	const struct pm_block *b;
	unsigned int bi, again = 0;

	b = block_of(pc, start, &bi, &pg);
	if (!b || start % PM_PAGE_SIZE || pg + npages > b->npages) {
		pc_problem(pc, "%s: FETCH returned %" PRIu64 " pages at %#" PRIx64
			   ", not inside one block", who, npages, start);
		return -1;
	}
	for (i = 0; i < npages; i++)
		if (!bit(pc->owed[bi], pg + i)) {
			add(&pc->not_owed, 1);
			pc_problem(pc, "%s: FETCH returned %s page %" PRIu64
				   ", which OWED did not name", who, b->name, pg + i);
		}
	if (pc->shadow[bi])
		memcpy(pc->shadow[bi] + pg * PM_PAGE_SIZE, buf, len);
	while (off < len) {
		struct uffdio_copy c = {
			.dst = start + off, .src = (uintptr_t)buf + off, .len = len - off,
		};

		if (ioctl(pc->uffd, UFFDIO_COPY, &c) == 0) {
			mark_placed(pc, bi, pg + off / PM_PAGE_SIZE, (len - off) / PM_PAGE_SIZE);
			return 0;
		}
		if (c.copy > 0) {
			mark_placed(pc, bi, pg + off / PM_PAGE_SIZE, c.copy / PM_PAGE_SIZE);
			off += c.copy;
			continue;
		}
		if (errno == EEXIST) {
			add(&pc->placed_twice, 1);
			pc_problem(pc, "%s: UFFDIO_COPY %s page %" PRIu64 ": there already",
				   who, b->name, (uint64_t)(pg + off / PM_PAGE_SIZE));
			off += PM_PAGE_SIZE;
			continue;
		}
		if ((errno == EAGAIN || errno == EINTR) && ++again < 10000) {
			sched_yield();
			continue;
		}
		pc_problem(pc, "%s: UFFDIO_COPY %s page %" PRIu64 ": %s", who, b->name,
			   (uint64_t)(pg + off / PM_PAGE_SIZE), strerror(errno));
		return -1;
	}
	return 0;
}

/* A page never owed and never written: it reads as zero. */
static void zero_fill(struct pc_dest *pc, uint64_t addr)
{
	struct uffdio_zeropage z = { .range = { .start = addr, .len = PM_PAGE_SIZE } };
	unsigned int again = 0;

	while (ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z)) {
		if (errno == EEXIST)
			return;		/* there already: the twin was woken */
		if ((errno == EAGAIN || errno == EINTR) && ++again < 10000) {
			sched_yield();
			continue;
		}
		pc_problem(pc, "UFFDIO_ZEROPAGE %#" PRIx64 ": %s", addr, strerror(errno));
		return;
	}
	add(&pc->zero_filled, 1);
}

/* ---- The two threads ------------------------------------------------ */

/* Parked threads give up: stopping, or every page is here. */
static bool pc_parked_out(const struct pc_dest *pc)
{
	return pc->stop || pc->sweep_done;
}

/*
 * fetch(), unless a failure is being resumed (--resume-wait): then wait
 * for the new session first.  -1: stopping, nothing fetched.
 */
static int pc_fetch(struct pc_dest *pc, int which, uint64_t addr, uint8_t *buf,
		    size_t len, struct rdmamig_fetch_run *runs, uint32_t nruns,
		    struct fetch_answer *a)
{
	pthread_mutex_lock(&pc->lock);
	while (pc->failed && !pc_parked_out(pc))
		pthread_cond_wait(&pc->cond, &pc->lock);
	if (pc->failed) {
		pthread_mutex_unlock(&pc->lock);
		return -1;
	}
	pc->busy++;
	pthread_mutex_unlock(&pc->lock);
	fetch(&pc->fetch, which, addr, buf, len, runs, nruns, a);
	pthread_mutex_lock(&pc->lock);
	pc->busy--;
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
	return 0;
}

/* --resume-wait: the session failed under a FETCH; the main thread resumes. */
static void pc_fail(struct pc_dest *pc, int err)
{
	pthread_mutex_lock(&pc->lock);
	if (!pc->failed)
		pc->failed = err;
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
}

/* After a resume: wake every thread of the twin still waiting on a page. */
static void wake_blocks(struct pc_dest *pc)
{
	unsigned int i;

	for (i = 0; i < pc->bl->n; i++) {
		struct uffdio_range r = {
			.start = pc->bl->b[i].addr, .len = pc->bl->b[i].len,
		};

		if (ioctl(pc->uffd, UFFDIO_WAKE, &r))
			pc_problem(pc, "UFFDIO_WAKE %s: %s", pc->bl->b[i].name,
				   strerror(errno));
	}
}

static void handle_fault(struct pc_dest *pc, uint64_t addr)
{
	struct fetch_answer a;
	unsigned int bi, resumes;
	uint64_t pg;
	bool owed;

	addr &= ~(PM_PAGE_SIZE - 1);
	if (!block_of(pc, addr, &bi, &pg)) {
		pc_problem(pc, "fault at %#" PRIx64 ", outside every block", addr);
		return;
	}
	owed = bit(pc->owed[bi], pg);
	resumes = pc->resumes;

again:
	if (pc_fetch(pc, FETCH_FAULT, addr, pc->fault_buf, PC_FAULT_BUF, NULL, 0, &a))
		return;
	/*
	 * --resume-wait: the link failed (a page owed, not here, and no
	 * answer): hold the fault, ask again on the new session.
	 */
	if (pc->resume_wait_s && a.err && a.err != -ENOENT && a.err != -EFAULT &&
	    owed && !bit(pc->placed[bi], pg)) {
		pc_fail(pc, a.err);
		goto again;
	}
	if (resumes != pc->resumes) {
		add(&pc->held_faults, 1);
		wake_blocks(pc);
	}
	if (!a.err && a.npages) {
		if (a.start != addr)
			pc_problem(pc, "fault at %#" PRIx64 ": FETCH returned pages from %#"
				   PRIx64, addr, a.start);
		else if (place(pc, a.start, a.npages, pc->fault_buf, "fault") == 0)
			add(&pc->fault_pages, a.npages);
		return;
	}
	/*
	 * npages 0: the page is in the sweep's buffer, and its UFFDIO_COPY
	 * wakes the twin; or it was never owed (and every page is fetched).
	 * ENOENT: never owed.  ENOTCONN: post-copy is over.
	 */
	if ((!a.err || a.err == -ENOENT || a.err == -ENOTCONN) && !owed) {
		zero_fill(pc, addr);
		return;
	}
	if (!a.err || a.err == -ENOTCONN)
		return;
	pc_problem(pc, "FETCH for the fault at %#" PRIx64 ": %s%s%s%s", addr,
		   strerror(-a.err), a.why[0] ? " (kernel: " : "", a.why,
		   a.why[0] ? ")" : "");
}

static void *fault_main(void *arg)
{
	struct pc_dest *pc = arg;
	struct pollfd pfd[2] = {
		{ .fd = pc->uffd, .events = POLLIN },
		{ .fd = pc->stopfd, .events = POLLIN },
	};
	struct uffd_msg msg[16];
	ssize_t n, i;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pc_problem(pc, "poll the userfaultfd: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		n = read(pc->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			pc_problem(pc, "read the userfaultfd: %s", strerror(errno));
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

/*
 * RDMAMIG_FETCH_SWEEP until it says npages 0 and remaining 0.  npages 0
 * with pages remaining: the fault thread holds them; ask again shortly.
 */
static void *sweep_main(void *arg)
{
	struct rdmamig_fetch_run runs[RDMAMIG_FETCH_RUNS_MAX];
	struct pc_dest *pc = arg;
	struct fetch_answer a;
	uint64_t off;
	uint32_t i;

	/*
	 * Background work: niced (this thread only, as Linux's nice is per
	 * thread), so that the fault thread gets a CPU back at once when its
	 * READ completes.  rdmamig-vmm's --sweep-nice has the measurement.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), PC_SWEEP_NICE))
		rm_err("incoming: post-copy: cannot nice the sweep thread: %s",
		       strerror(errno));
	while (!pc->stop) {
		if (pc_fetch(pc, FETCH_SWEEP, 0, pc->sweep_buf, PC_SWEEP_BUF, runs,
			     RDMAMIG_FETCH_RUNS_MAX, &a))
			break;
		if (a.err && pc->resume_wait_s && a.err != -EFAULT) {
			pc_fail(pc, a.err);	/* parks in pc_fetch() */
			continue;
		}
		if (a.err) {
			pc_problem(pc, "sweep: FETCH: %s%s%s%s", strerror(-a.err),
				   a.why[0] ? " (kernel: " : "", a.why, a.why[0] ? ")" : "");
			break;
		}
		if (!a.npages) {
			if (!a.remaining)
				break;
			usleep(1000);
			continue;
		}
		for (i = 0, off = 0; i < a.nruns && !pc->stop; i++) {
			if (place(pc, runs[i].start, runs[i].npages, pc->sweep_buf + off,
				  "sweep"))
				break;
			off += runs[i].npages * PM_PAGE_SIZE;
			add(&pc->sweep_pages, runs[i].npages);
		}
	}
	pthread_mutex_lock(&pc->lock);
	pc->sweep_done = 1;
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
	return NULL;
}

/* ---- At the switch -------------------------------------------------- */

static int owed_block(struct pc_dest *pc, unsigned int i)
{
	const struct pm_block *b = &pc->bl->b[i];
	struct nl_msg *msg;
	char what[64 + RDMAMIG_BLOCK_NAME_MAX];

	msg = rm_nl_msg(&pc->rm->nl, RDMAMIG_CMD_OWED, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, pc->id) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_BLOCK_INDEX, i) ||
	    nla_put_u64(msg, RDMAMIG_ATTR_FIRST_PAGE, 0) ||
	    nla_put_u64(msg, RDMAMIG_ATTR_NPAGES, b->npages) ||
	    nla_put_u64(msg, RDMAMIG_ATTR_BUF, (uintptr_t)pc->owed[i])) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	snprintf(what, sizeof(what), "incoming: the owed pages of %s", b->name);
	return rm_nl_send(&pc->rm->nl, msg, what, NULL, NULL);
}

/*
 * The pages the twin has at the switch, owed pages excepted: those come
 * with FETCH (place() copies them here).  Read with the twin stopped, so
 * this is downtime: as long as it takes to copy what is not owed.
 */
static int read_shadow(struct pc_dest *pc, unsigned int i)
{
	const struct pm_block *b = &pc->bl->b[i];
	uint64_t pg, run, off, end;
	ssize_t n;

	pc->shadow[i] = malloc(b->len);
	if (!pc->shadow[i]) {
		rm_err("incoming: --checksum: no memory for a copy of %s", b->name);
		return RM_EXIT_ERR;
	}
	for (pg = 0; pg < b->npages; pg = run) {
		if (bit(pc->owed[i], pg)) {
			run = pg + 1;
			continue;
		}
		for (run = pg; run < b->npages && !bit(pc->owed[i], run); run++)
			;
		end = run * PM_PAGE_SIZE;
		for (off = pg * PM_PAGE_SIZE; off < end; off += n) {
			n = pread(pc->mem, pc->shadow[i] + off, end - off, b->addr + off);
			if (n <= 0) {
				rm_err("incoming: --checksum: cannot read %s of pid %d: %s",
				       b->name, (int)pc->pid,
				       n ? strerror(errno) : "end of memory");
				return RM_EXIT_ERR;
			}
		}
	}
	return RM_EXIT_OK;
}

/* The twin's madvise(MADV_DONTNEED) of @npages pages of @b from @pg. */
static int twin_dontneed(struct pc_dest *pc, const struct pm_block *b,
			 uint64_t pg, uint64_t npages)
{
	long res;
	int ret;

	ret = twin_call(pc, SYS_madvise, b->addr + pg * PM_PAGE_SIZE,
			npages * PM_PAGE_SIZE, MADV_DONTNEED, &res);
	if (ret)
		return ret;
	if (res) {
		rm_err("incoming: --postcopy: madvise(MADV_DONTNEED) of %s pages %" PRIu64
		       "-%" PRIu64 " in pid %d: %s", b->name, pg, pg + npages - 1,
		       (int)pc->pid, strerror(-res));
		return RM_EXIT_ERR;
	}
	pc->discard_calls++;
	return RM_EXIT_OK;
}

static bool zero_page(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t i;

	for (i = 0; i < PM_PAGE_SIZE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

/*
 * Write @n pages of the window's copy back from @pg (through
 * /proc/PID/mem: the block is not registered yet).  Zero pages stay
 * missing: once registered, a touch faults, FETCH says never owed, and
 * the fault thread maps the zero page.
 */
static int restore_run(struct pc_dest *pc, const struct pm_block *b, uint64_t w,
		       uint64_t pg, uint64_t n)
{
	uint64_t p, end = pg + n, off, len;
	ssize_t done;

	for (p = pg; p < end; ) {
		const uint8_t *src = pc->window + (p - w) * PM_PAGE_SIZE;

		if (zero_page(src)) {
			p++;
			continue;
		}
		for (len = 0; p + len < end &&
		     !zero_page(pc->window + (p + len - w) * PM_PAGE_SIZE); len++)
			;
		for (off = 0; off < len * PM_PAGE_SIZE; off += done) {
			done = pwrite(pc->mem, src + off, len * PM_PAGE_SIZE - off,
				      b->addr + p * PM_PAGE_SIZE + off);
			if (done <= 0) {
				rm_err("incoming: --postcopy: putting back %s page %" PRIu64
				       " of pid %d: %s", b->name,
				       (uint64_t)(p + off / PM_PAGE_SIZE), (int)pc->pid,
				       done ? strerror(errno) : "end of memory");
				return RM_EXIT_ERR;
			}
		}
		pc->restored += len;
		p += len;
	}
	return RM_EXIT_OK;
}

/*
 * Pages [@w, @wend) of block @i, at once: the pages not owed are read
 * (the twin stopped), the twin drops the whole window in one madvise
 * call, and they are written back.
 */
static int discard_window(struct pc_dest *pc, unsigned int i, uint64_t w,
			  uint64_t wend)
{
	const struct pm_block *b = &pc->bl->b[i];
	uint64_t pg, run, off, end;
	ssize_t n;
	int ret;

	if (!pc->window) {
		pc->window = malloc(PC_WINDOW_PAGES * PM_PAGE_SIZE);
		if (!pc->window) {
			rm_err("incoming: --postcopy: out of memory");
			return RM_EXIT_ERR;
		}
	}
	for (pg = w; pg < wend; pg = run) {
		for (run = pg; run < wend && !bit(pc->owed[i], run); run++)
			;
		end = run * PM_PAGE_SIZE;
		for (off = pg * PM_PAGE_SIZE; off < end; off += n) {
			n = pread(pc->mem, pc->window + off - w * PM_PAGE_SIZE, end - off,
				  b->addr + off);
			if (n <= 0) {
				rm_err("incoming: --postcopy: cannot read %s of pid %d: %s",
				       b->name, (int)pc->pid, n ? strerror(errno) : "end of memory");
				return RM_EXIT_ERR;
			}
		}
		for (; run < wend && bit(pc->owed[i], run); run++)
			pc->discarded++;
	}
	ret = twin_dontneed(pc, b, w, wend - w);
	for (pg = w; !ret && pg < wend; pg = run) {
		for (run = pg; run < wend && !bit(pc->owed[i], run); run++)
			;
		if (run > pg)
			ret = restore_run(pc, b, w, pg, run - pg);
		for (; run < wend && bit(pc->owed[i], run); run++)
			;
	}
	return ret;
}

/*
 * The twin drops its owed pages (it holds an earlier round's copy of
 * them): its next touch of one faults.  Each system call it makes for
 * us is a ptrace round trip (about 1 ms under TCG, tens of microseconds
 * on hardware); a window whose owed pages are scattered (on average
 * fewer than PC_SCATTER pages not owed between two runs of them) is
 * dropped whole instead, and what was not owed put back (a copy costs
 * about a microsecond a page).  Before the block is registered: the
 * twin is stopped, and /proc/PID/mem reads and writes its pages without
 * userfaults.
 */
static int discard_block(struct pc_dest *pc, unsigned int i)
{
	const struct pm_block *b = &pc->bl->b[i];
	uint64_t w, wend, pg, run, runs, kept;
	int ret;

	for (w = 0; w < b->npages; w = wend) {
		wend = w + PC_WINDOW_PAGES < b->npages ? w + PC_WINDOW_PAGES : b->npages;
		for (pg = w, runs = 0, kept = 0; pg < wend; pg = run) {
			for (run = pg; run < wend && !bit(pc->owed[i], run); run++)
				kept++;
			if (run < wend)
				runs++;
			for (; run < wend && bit(pc->owed[i], run); run++)
				;
		}
		if (!runs)
			continue;
		if (runs > 1 && kept < runs * PC_SCATTER) {
			ret = discard_window(pc, i, w, wend);
			if (ret)
				return ret;
			continue;
		}
		for (pg = w; pg < wend; pg = run) {
			if (!bit(pc->owed[i], pg)) {
				run = pg + 1;
				continue;
			}
			for (run = pg; run < wend && bit(pc->owed[i], run); run++)
				;
			ret = twin_dontneed(pc, b, pg, run - pg);
			if (ret)
				return ret;
			pc->discarded += run - pg;
		}
	}
	return RM_EXIT_OK;
}

/* Threads that leave the terminal's signals to the main thread. */
static int start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		rm_err("incoming: --postcopy: cannot start a thread: %s", strerror(err));
	return err ? RM_EXIT_ERR : RM_EXIT_OK;
}

static void stop_threads(struct pc_dest *pc)
{
	uint64_t one = 1;

	pthread_mutex_lock(&pc->lock);
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
	if (pc->sweep_on) {
		pc->stop = pc->stop || !pc->sweep_done;
		pthread_mutex_lock(&pc->lock);
		pthread_cond_broadcast(&pc->cond);
		pthread_mutex_unlock(&pc->lock);
		pthread_join(pc->sweep_th, NULL);
		pc->sweep_on = false;
	}
	/* After the sweep: the fault thread finishes the fault it holds. */
	if (pc->fault_on) {
		if (write(pc->stopfd, &one, sizeof(one)) != sizeof(one))
			pc->stop = 1;
		pthread_join(pc->fault_th, NULL);
		pc->fault_on = false;
	}
}

int pc_dest_switch(struct pc_dest *pc, uint32_t id)
{
	unsigned int i;
	uint64_t pg;
	int ret;

	pc->id = id;
	fetch_init(&pc->fetch, &pc->rm->nl, id);
	pc->t_switch_us = pm_now_us();
	for (i = 0; i < pc->bl->n; i++) {
		size_t words = (pc->bl->b[i].npages + 63) / 64;

		pc->owed[i] = calloc(words, sizeof(uint64_t));
		pc->placed[i] = calloc(words, sizeof(uint64_t));
		if (!pc->owed[i] || !pc->placed[i]) {
			rm_err("incoming: --postcopy: out of memory");
			return RM_EXIT_ERR;
		}
		ret = owed_block(pc, i) ?: (pc->checksum ? read_shadow(pc, i) : 0);
		if (ret)
			return ret;
		for (pg = 0; pg < words; pg++)
			pc->owed_pages += __builtin_popcountll(pc->owed[i][pg]);
	}
	for (i = 0; i < pc->bl->n; i++) {
		ret = discard_block(pc, i) ?: register_block(pc, &pc->bl->b[i]);
		if (ret)
			return ret;
	}
	pm_inject_detach(&pc->inj);

	/* From here on the socket is the threads'. */
	ret = start_thread(&pc->fault_th, fault_main, pc);
	if (ret)
		return ret;
	pc->fault_on = true;
	if (pc->cont) {
		if (kill(pc->pid, SIGCONT)) {
			rm_err("incoming: cannot continue pid %d: %s", (int)pc->pid,
			       strerror(errno));
			return RM_EXIT_ERR;
		}
		pc->continued = true;
	}
	pc->t_cont_us = pm_now_us();
	ret = start_thread(&pc->sweep_th, sweep_main, pc);
	if (ret)
		return ret;
	pc->sweep_on = true;
	return RM_EXIT_OK;
}

int pc_dest_wait(struct pc_dest *pc, uint64_t *sum)
{
	struct pm_xxh64 h;
	unsigned int i;
	uint64_t pg;

	while (!pc->sweep_done && !pc->stop) {
		if (pm_interrupted)
			pc_problem(pc, "interrupted");
		if (pc->resume_wait_s && pc->failed && !pc->stop) {
			/* The socket is ours once no FETCH is in flight. */
			pthread_mutex_lock(&pc->lock);
			while (pc->busy)
				pthread_cond_wait(&pc->cond, &pc->lock);
			pthread_mutex_unlock(&pc->lock);
			return PC_DEST_FAILED;
		}
		usleep(20000);
	}
	stop_threads(pc);
	pc->t_done_us = pm_now_us();
	if (pm_interrupted)
		return pm_check_interrupted("incoming");
	if (pc->problem[0]) {
		rm_err("incoming: post-copy: %s", pc->problem);
		return RM_EXIT_ERR;
	}
	for (i = 0; i < pc->bl->n; i++)
		for (pg = 0; pg < pc->bl->b[i].npages; pg++)
			if (bit(pc->owed[i], pg) && !bit(pc->placed[i], pg))
				pc->unplaced++;
	if (pc->unplaced) {
		rm_err("incoming: post-copy: %" PRIu64 " owed pages never placed",
		       pc->unplaced);
		return RM_EXIT_ERR;
	}
	/* Every page is there: faults are ordinary ones again. */
	close(pc->uffd);
	pc->uffd = -1;
	pc->continued = false;
	if (pc->checksum) {
		pm_xxh64_init(&h, 0);
		for (i = 0; i < pc->bl->n; i++)
			pm_xxh64_update(&h, pc->shadow[i], pc->bl->b[i].len);
		*sum = pm_xxh64_digest(&h);
	}
	return RM_EXIT_OK;
}

void pc_dest_resumed(struct pc_dest *pc, uint32_t id)
{
	pthread_mutex_lock(&pc->lock);
	pc->id = id;
	pc->fetch.id = id;
	pc->failed = 0;
	pc->resumes++;
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
}

bool pc_dest_abort(struct pc_dest *pc)
{
	bool killed = false;

	pc->stop = 1;
	if (pc->continued || (pc->fault_on && pc->cont)) {
		/* Before its userfaultfd goes: then it would read zeros. */
		killed = kill(pc->pid, SIGKILL) == 0;
		pc->continued = false;
	}
	stop_threads(pc);
	pm_inject_detach(&pc->inj);
	return killed;
}

void pc_dest_free(struct pc_dest *pc)
{
	unsigned int i;

	if (!pc->rm)
		return;		/* never prepared */
	stop_threads(pc);
	pm_inject_detach(&pc->inj);
	if (pc->uffd >= 0)
		close(pc->uffd);
	if (pc->stopfd >= 0)
		close(pc->stopfd);
	pc->uffd = pc->stopfd = -1;
	free(pc->window);
	pc->window = NULL;
	for (i = 0; i < PM_MAX_BLOCKS; i++) {
		free(pc->owed[i]);
		free(pc->placed[i]);
		free(pc->shadow[i]);
		pc->owed[i] = pc->placed[i] = NULL;
		pc->shadow[i] = NULL;
	}
	if (pc->fault_buf && pc->fault_buf != MAP_FAILED)
		munmap(pc->fault_buf, PC_FAULT_BUF);
	if (pc->sweep_buf && pc->sweep_buf != MAP_FAILED)
		munmap(pc->sweep_buf, PC_SWEEP_BUF);
	pc->fault_buf = pc->sweep_buf = NULL;
}
