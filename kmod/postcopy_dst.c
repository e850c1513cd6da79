// SPDX-License-Identifier: GPL-2.0
/*
 * Post-copy, destination side (postcopy.h).  POSTCOPY_CHUNKS tells us
 * where the source exposed each chunk's owed pages; POSTCOPY_RUN that it
 * named them all: our registrations go (the VMM is about to discard the
 * pages they pin), the device-state stream ends, the VMM is told
 * (RDMAMIG_EVENT_POSTCOPY) and runs.
 *
 * From then on the VMM's threads call RDMAMIG_IOC_FETCH, in parallel:
 * for a fault (the page and the owed ones after it in its chunk, up to
 * the "fault_window" parameter) or for the sweep (the next run of owed
 * pages after the last fault).  Each call claims its pages (clears them
 * in @todo under the lock: no page is read twice), reads them with RDMA
 * READ into the caller's buffer, and returns; the VMM places them with
 * UFFDIO_COPY, which wakes the faulting thread.  A chunk read whole is
 * released (POSTCOPY_RELEASE); the last page read ends the session
 * (POSTCOPY_END) and completes it.
 *
 * A failed READ, or a failed session, puts the claimed pages back: the
 * memory here is incomplete, and the session's reason says so.
 */
#include "rdmamig.h"

#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "ctrl.h"
#include "hostile.h"
#include "mode.h"
#include "msg.h"
#include "postcopy.h"
#include "precopy_dst.h"
#include "xfer.h"

/*
 * 1 page: measured with make bench's post-copy cases (256 MiB all owed,
 * 6.1 loop, 2026-12-07), a fault was served in 0.21-0.22 ms at the
 * median with 4 KiB, 0.32-0.35 ms with 8 KiB and 0.48-0.58 ms with 16
 * KiB, for the same total time: the sweep, which starts next to the last
 * fault, brings the neighbours soon anyway.
 */
static unsigned int fault_window = 1;
static bool faults_first = true;
module_param(faults_first, bool, 0644);
MODULE_PARM_DESC(faults_first, "post-copy: a sweep step waits while a fault is being read (default: on)");
module_param(fault_window, uint, 0644);
MODULE_PARM_DESC(fault_window, "post-copy: pages fetched for a fault, the faulting one and the owed ones after it (1-256, default 1)");

static u32 window_pages(void)
{
	return clamp_t(u32, READ_ONCE(fault_window), 1, RDMAMIG_CHUNK_PAGES);
}

/* ---- the switch (rx work) --------------------------------------------- */

/*
 * Set the owed pages of @b's chunk @c, which @map names, in @pc's maps.
 * After a resume some are here already (@got): they are not to be
 * fetched, and count as fetched.  Return: the pages still to fetch.
 */
static u32 owe_chunk(struct rdmamig_postcopy *pc, u32 bi, u32 c,
		     const unsigned long *map, u32 nbits)
{
	u64 base = (u64)c * RDMAMIG_CHUNK_PAGES;
	unsigned long bit;
	u32 left = 0;

	for_each_set_bit(bit, map, nbits) {
		__set_bit(base + bit, pc->owed[bi]);
		if (test_bit(base + bit, pc->got[bi])) {
			pc->fetched++;
			pc->renamed_read++;
			continue;
		}
		__set_bit(base + bit, pc->todo[bi]);
		left++;
	}
	return left;
}

/*
 * A POSTCOPY_OWED or POSTCOPY_CHUNKS command's chunk and map, checked.
 * Return: the block, or NULL after failing the session.
 */
static struct rdmamig_block_ram *check_pages(struct rdmamig_session *sess,
					     const struct rdmamig_cmd_pages *cmd,
					     u32 *c, unsigned long *map)
{
	struct rdmamig_cmd_chunk id = { cmd->block, cmd->chunk };
	struct rdmamig_block_ram *b;

	b = rdmamig_precopy_dst_chunk(sess, &id, c);
	if (!b)
		return NULL;
	rdmamig_precopy_dst_map(cmd, map);
	if (!rdmamig_precopy_dst_map_ok(sess, b, *c, map, "post-copy"))
		return NULL;
	if (rdmamig_postcopy_alloc_block(sess, b->index)) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return NULL;
	}
	return b;
}

/*
 * POSTCOPY_OWED: the pages the source owes, chunk by chunk.  The first
 * one switches us to post-copy's handlers: no pre-copy message is taken
 * after it.
 */
void rdmamig_postcopy_dst_owed_msg(struct rdmamig_session *sess,
				   const void *payload, u32 n, u32 len)
{
	const struct rdmamig_cmd_pages *cmds = payload;
	struct rdmamig_postcopy *pc = &sess->pc;
	DECLARE_BITMAP(map, RDMAMIG_CHUNK_PAGES);
	u32 i;

	if (!rdmamig_postcopy_negotiated(sess) || pc->active) {
		rdmamig_session_fail(sess, -EPROTO, true, "unexpected post-copy owed pages%s",
				     pc->active ? ": running already" : "");
		return;
	}
	rdmamig_mode_switch(sess, &rdmamig_postcopy_dst_ops);
	for (i = 0; i < n; i++) {
		struct rdmamig_pc_chunk *pch;
		struct rdmamig_block_ram *b;
		u32 c;

		b = check_pages(sess, &cmds[i], &c, map);
		if (!b)
			return;
		pch = &pc->chunks[b->index][c];
		if (pch->named) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "post-copy names '%s' chunk %u twice", b->name, c);
			return;
		}
		pch->named = true;
		pch->left = owe_chunk(pc, b->index, c, map, rdmamig_chunk_pages(b, c));
		pc->owed_pages += bitmap_weight(map, RDMAMIG_CHUNK_PAGES);
		pc->owed_chunks++;
	}
}

/* The map POSTCOPY_OWED named for @b's chunk @c: is it @map? */
static bool same_map(struct rdmamig_postcopy *pc, struct rdmamig_block_ram *b,
		     u32 c, const unsigned long *map)
{
	DECLARE_BITMAP(owed, RDMAMIG_CHUNK_PAGES);

	bitmap_zero(owed, RDMAMIG_CHUNK_PAGES);
	bitmap_copy(owed, pc->owed[b->index] + c * (RDMAMIG_CHUNK_PAGES / BITS_PER_LONG),
		    rdmamig_chunk_pages(b, c));
	return bitmap_equal(owed, map, RDMAMIG_CHUNK_PAGES);
}

/*
 * POSTCOPY_CHUNKS, after POSTCOPY_RUN: where the source registered a
 * chunk's owed pages.  A FETCH waiting for the key goes on.
 */
static void dst_chunks(struct rdmamig_session *sess, const void *payload,
		       u32 n, u32 len)
{
	const struct rdmamig_cmd_read *cmds = payload;
	struct rdmamig_postcopy *pc = &sess->pc;
	DECLARE_BITMAP(map, RDMAMIG_CHUNK_PAGES);
	u32 i;

	/* Keys still on their way when the last page was read. */
	if (READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED)
		return;
	for (i = 0; i < n; i++) {
		struct rdmamig_pc_chunk *pch;
		struct rdmamig_block_ram *b;
		u64 raddr, end;
		u32 c, np;

		b = check_pages(sess, &cmds[i].pages, &c, map);
		if (!b)
			return;
		pch = &pc->chunks[b->index][c];
		np = bitmap_weight(map, RDMAMIG_CHUNK_PAGES);
		raddr = be64_to_cpu(cmds[i].addr);
		if (!pc->active || !pch->named || pch->keyed || cmds[i].reserved ||
		    !same_map(pc, b, c, map) ||
		    check_add_overflow(raddr, (u64)np << PAGE_SHIFT, &end)) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "post-copy key of '%s' chunk %u: %s", b->name, c,
					     !pc->active ? "before the run" :
					     !pch->named ? "not owed" :
					     pch->keyed ? "given twice" :
					     cmds[i].reserved ? "reserved field" :
					     !same_map(pc, b, c, map) ? "not the owed pages" :
					     "bad remote address");
			return;
		}
		spin_lock_irq(&pc->lock);
		pch->raddr = raddr;
		pch->rkey = be32_to_cpu(cmds[i].rkey);
		pch->keyed = true;
		spin_unlock_irq(&pc->lock);
	}
	wake_up_all(&sess->wait);
}

static void dst_finish(struct rdmamig_session *sess);

/*
 * POSTCOPY_RUN: every owed page is named; run.  In pre-copy's tables too:
 * a source that owes nothing sends no POSTCOPY_CHUNKS first.
 */
void rdmamig_postcopy_dst_run(struct rdmamig_session *sess, const void *payload,
			      u32 repeat, u32 len)
{
	const struct rdmamig_cmd_postcopy *cmd = payload;
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_POSTCOPY };
	bool moved;

	if (!rdmamig_postcopy_negotiated(sess) || pc->active) {
		rdmamig_session_fail(sess, -EPROTO, true, "unexpected post-copy run%s",
				     pc->active ? ": running already" : "");
		return;
	}
	rdmamig_mode_switch(sess, &rdmamig_postcopy_dst_ops);
	if (!rdmamig_postcopy_counts_ok(sess, cmd, "run"))
		return;
	/* Our registrations pin pages the VMM is about to discard. */
	cancel_work_sync(&sess->pinall_work);
	mutex_lock(&sess->reg_mutex);
	rdmamig_blocks_unregister(sess);
	mutex_unlock(&sess->reg_mutex);

	spin_lock_irq(&sess->slock);
	moved = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_POSTCOPY);
	if (moved) {
		sess->stream_eof = true;	/* the device state before the switch */
		sess->t_final = ktime_get();
	}
	spin_unlock_irq(&sess->slock);
	if (!moved)
		return;
	spin_lock_irq(&pc->lock);
	pc->active = true;
	pc->unclaimed = pc->owed_pages - pc->fetched;	/* see owe_chunk() */
	pc->t_switch = ktime_get();
	spin_unlock_irq(&pc->lock);

	ev.pages = pc->owed_pages;
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	sess_info(sess, "post-copy: running; the source owes %llu pages in %llu chunks\n",
		  pc->owed_pages, pc->owed_chunks);
	if (!pc->unclaimed) {	/* nothing owed, or all fetched before a resume */
		spin_lock_irq(&pc->lock);
		pc->done = true;
		pc->t_done = pc->t_switch;
		spin_unlock_irq(&pc->lock);
		dst_finish(sess);
	}
}

/* ---- the end ------------------------------------------------------------ */

/*
 * Every owed page is read: complete, then tell the source, which releases
 * its memory.  Completed first, as pre-copy's destination does: a cancel
 * that came first stands, and the source, without its END, keeps its
 * memory.
 */
static void dst_finish(struct rdmamig_session *sess)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_COMPLETED };
	struct rdmamig_cmd_postcopy end = {
		.chunks = cpu_to_be64(pc->owed_chunks),
		.pages = cpu_to_be64(pc->owed_pages),
	};
	bool done;
	int ret;

	spin_lock_irq(&sess->slock);
	done = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_COMPLETED);
	if (done)
		sess->t_end = ktime_get();
	spin_unlock_irq(&sess->slock);
	if (!done)
		return;
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_POSTCOPY_END, 1, &end, sizeof(end));
	if (ret)
		sess_warn_rl(sess, "post-copy end not sent (%d): the source keeps its memory\n",
			     ret);
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	sess_info(sess, "post-copy completed: %llu pages, %llu for %llu faults, %llu by the sweep\n",
		  pc->owed_pages, pc->fault_pages, pc->faults, pc->sweep_pages);
}

/* ---- RDMAMIG_IOC_FETCH ---------------------------------------------------- */

/* The run one FETCH reads: @n pages from page @page of block @bi. */
struct fetch_run {
	u32 bi;
	u64 page;
	u32 n;
};

/*
 * Claim the owed pages from @page on, at most @max, within its chunk.
 * Under @pc->lock.
 */
static void claim(struct rdmamig_postcopy *pc, struct fetch_run *run,
		  struct rdmamig_block_ram *b, u64 page, u32 max)
{
	u64 chunk_end = min_t(u64, round_down(page, RDMAMIG_CHUNK_PAGES) +
				   RDMAMIG_CHUNK_PAGES, b->length >> PAGE_SHIFT);
	u64 end = min(chunk_end, page + max);
	u64 p = page;

	while (p < end && test_bit(p, pc->todo[b->index]))
		__clear_bit(p++, pc->todo[b->index]);
	run->bi = b->index;
	run->page = page;
	run->n = p - page;
	pc->unclaimed -= run->n;
	pc->hint_block = b->index;
	pc->hint_page = p;
}

/* The block holding @addr, or NULL. */
static struct rdmamig_block_ram *block_of(struct rdmamig_session *sess, u64 addr)
{
	u32 i;

	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		if (addr >= b->addr && addr - b->addr < b->length)
			return b;
	}
	return NULL;
}

/* A fault at @addr: its run, empty when another call has its page. */
static int claim_fault(struct rdmamig_session *sess, u64 addr, u32 max,
		       struct fetch_run *run)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_block_ram *b = block_of(sess, addr);
	u64 page;

	if (!b)
		return -EFAULT;
	page = (addr - b->addr) >> PAGE_SHIFT;
	if (!pc->owed[b->index] || !test_bit(page, pc->owed[b->index]))
		return -ENOENT;
	claim(pc, run, b, page, max);
	return 0;
}

/* The sweep: the next owed page from the hint on, around every block. */
static void claim_sweep(struct rdmamig_session *sess, u32 max,
			struct fetch_run *run)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	u32 k, bi;

	run->n = 0;
	for (k = 0; k <= sess->nblocks && pc->unclaimed; k++) {
		struct rdmamig_block_ram *b;
		u64 npages, from, p;

		bi = (pc->hint_block + k) % sess->nblocks;
		b = sess->blocks[bi];
		if (!pc->todo[bi])
			continue;
		npages = b->length >> PAGE_SHIFT;
		/* The hint's block from the hint, and last from its start. */
		from = k == 0 ? min(pc->hint_page, npages) : 0;
		p = find_next_bit(pc->todo[bi], npages, from);
		if (p < npages) {
			claim(pc, run, b, p, max);
			return;
		}
	}
}

/* Pages of the chunk's owed ones before @page: where it is remotely. */
static u64 owed_rank(struct rdmamig_postcopy *pc, u32 bi, u64 page)
{
	u64 first = round_down(page, RDMAMIG_CHUNK_PAGES);

	return bitmap_weight(pc->owed[bi] + first / BITS_PER_LONG, page - first);
}

static bool key_or_end(struct rdmamig_session *sess,
		       const struct rdmamig_pc_chunk *pch)
{
	return READ_ONCE(pch->keyed) || rdmamig_session_dead(sess) ||
	       rdmamig_session_closing(sess);
}

/*
 * The source sends the chunks' keys as it registers them, after the run
 * began: wait for @run's, and ask for it first (POSTCOPY_WANT, once a
 * chunk), so that a fault waits for one registration, not for all those
 * ahead of it.
 */
static int wait_key(struct rdmamig_session *sess, const struct fetch_run *run)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	u32 c = run->page / RDMAMIG_CHUNK_PAGES;
	struct rdmamig_pc_chunk *pch = &pc->chunks[run->bi][c];
	struct rdmamig_cmd_chunk cmd = { cpu_to_be32(run->bi), cpu_to_be32(c) };
	bool keyed, want;
	int ret;

	spin_lock_irq(&pc->lock);
	keyed = pch->keyed;
	want = !keyed && !pch->wanted;
	if (want)
		pch->wanted = true;
	spin_unlock_irq(&pc->lock);
	if (keyed)
		return 0;
	if (want) {
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_POSTCOPY_WANT, 1, &cmd, sizeof(cmd));
		if (ret) {
			spin_lock_irq(&pc->lock);
			pch->wanted = false;
			spin_unlock_irq(&pc->lock);
			return ret;
		}
	}
	ret = wait_event_interruptible(sess->wait, key_or_end(sess, pch));
	if (ret)
		return ret;
	spin_lock_irq(&pc->lock);
	keyed = pch->keyed;
	spin_unlock_irq(&pc->lock);
	return keyed ? 0 : rdmamig_session_error(sess) ?: -ESHUTDOWN;
}

/* The runs one FETCH reads, back to back in the caller's buffer. */
struct fetch_req {
	struct fetch_run runs[RDMAMIG_FETCH_RUNS_MAX];
	u32 nruns;
	u32 npages;
};

/*
 * Pin the pages @req's runs are read into, for the READs' time only: the
 * caller's @buf, back to back, or with @in_place each run's own pages in
 * its block (the block's owner's memory, as the pre-copy rounds pin it).
 */
static int pin_targets(struct rdmamig_session *sess, const struct fetch_req *req,
		       u64 buf, bool in_place, struct page **pages)
{
	u32 i, at = 0;
	int got, ret = 0;

	if (!in_place) {
		got = pin_user_pages_fast(buf, req->npages, FOLL_WRITE, pages);
		if (got == req->npages)
			return 0;
		if (got > 0)
			unpin_user_pages(pages, got);
		return got < 0 ? got : -EFAULT;
	}
	for (i = 0; i < req->nruns && !ret; i++) {
		const struct fetch_run *run = &req->runs[i];

		ret = rdmamig_pin_range(sess, sess->blocks[run->bi]->addr +
					((u64)run->page << PAGE_SHIFT),
					run->n, FOLL_WRITE, pages + at);
		if (!ret)
			at += run->n;
	}
	if (ret && at)
		unpin_user_pages(pages, at);
	return ret;
}

/* Read @req's runs into the pages pin_targets() gives. */
static int read_runs(struct rdmamig_session *sess, const struct fetch_req *req,
		     u64 buf, bool in_place, bool fault)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_xfer_batch batch = {};
	struct page **pages;
	u32 i, at = 0, maxio = 0;
	int ret;

	pages = kcalloc(req->npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	ret = pin_targets(sess, req, buf, in_place, pages);
	if (ret) {
		kfree(pages);
		return ret;
	}
	for (i = 0; i < req->nruns; i++)
		maxio += rdmamig_xfer_ios(sess, req->runs[i].n);
	ret = rdmamig_xfer_batch_start(sess, &batch, RDMAMIG_XFER_READ, maxio);
	if (!ret) {
		rdmamig_xfer_batch_urgent(sess, &batch, fault);
		for (i = 0; i < req->nruns && !ret; i++) {
			const struct fetch_run *run = &req->runs[i];
			const struct rdmamig_pc_chunk *pch =
				&pc->chunks[run->bi][run->page / RDMAMIG_CHUNK_PAGES];
			u64 raddr = pch->raddr +
				    (owed_rank(pc, run->bi, run->page) << PAGE_SHIFT);

			ret = rdmamig_xfer_post(sess, &batch, pages + at, run->n,
						rdmamig_hostile_read_addr(sess, raddr),
						pch->rkey);
			at += run->n;
		}
		rdmamig_xfer_finish_reads(sess, &batch);
	}
	/* A READ that failed failed the session. */
	ret = ret ?: rdmamig_session_error(sess);
	unpin_user_pages_dirty_lock(pages, req->npages, true);
	kfree(pages);
	return ret;
}

/*
 * @run is read: count it.  Return: whether its chunk is read whole, and
 * set @done when it was the last of all.
 */
static bool account(struct rdmamig_session *sess, const struct fetch_run *run,
		    bool fault, bool *done)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_pc_chunk *pch =
		&pc->chunks[run->bi][run->page / RDMAMIG_CHUNK_PAGES];
	bool whole;
	u32 i;

	spin_lock_irq(&pc->lock);
	for (i = 0; i < run->n; i++)
		if (__test_and_set_bit(run->page + i, pc->got[run->bi]))
			pc->fetched_twice++;
	pch->left -= run->n;
	whole = !pch->left;
	pc->fetched += run->n;
	if (fault) {
		pc->faults++;
		pc->fault_pages += run->n;
	} else {
		pc->sweep_pages += run->n;
	}
	*done = pc->fetched == pc->owed_pages && !pc->done;
	if (*done) {
		pc->done = true;
		pc->t_done = ktime_get();
	}
	spin_unlock_irq(&pc->lock);
	return whole;
}

/* Give back what a failed call claimed: it is still owed. */
static void unclaim(struct rdmamig_postcopy *pc, const struct fetch_run *run)
{
	spin_lock_irq(&pc->lock);
	bitmap_set(pc->todo[run->bi], run->page, run->n);
	pc->unclaimed += run->n;
	spin_unlock_irq(&pc->lock);
}

static bool no_fault_reading(struct rdmamig_session *sess)
{
	return !READ_ONCE(sess->pc.faults_inflight) || READ_ONCE(sess->pc.stopped) ||
	       rdmamig_session_dead(sess) || rdmamig_session_closing(sess);
}

/*
 * A sweep step gives way to the faults being read: their READs would
 * otherwise wait behind its own (a chunk, on a soft-RoCE device a few
 * milliseconds).  Bounded: a stream of faults delays the sweep, never
 * stops it.
 */
static void sweep_yield(struct rdmamig_session *sess)
{
	if (READ_ONCE(faults_first))
		wait_event_timeout(sess->pc.fault_wq, no_fault_reading(sess),
				   msecs_to_jiffies(20));
}

/*
 * Post-copy running: 0.  Before the switch, on the source, or after a
 * failure: the session's error, else -ENOTCONN.
 */
static int fetch_allowed(struct rdmamig_session *sess)
{
	struct rdmamig_postcopy *pc = &sess->pc;

	if (pc->active && !pc->stopped && !rdmamig_session_dead(sess))
		return 0;
	return rdmamig_session_error(sess) ?: -ENOTCONN;
}

/**
 * rdmamig_postcopy_dst_fetch() - RDMAMIG_IOC_FETCH
 * @sess: the destination
 * @f: the request (see uapi); @f->start, @npages and @remaining are set
 *
 * Runs without the session's lock, in parallel with other calls.
 * Return: 0, or -EINVAL, -EFAULT, -ENOENT, -ENOTCONN, the session's error.
 */
int rdmamig_postcopy_dst_fetch(struct rdmamig_session *sess,
			       struct rdmamig_fetch *f)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	bool fault = !(f->flags & RDMAMIG_FETCH_SWEEP);
	bool in_place = f->flags & RDMAMIG_FETCH_IN_PLACE;
	struct rdmamig_cmd_chunk *released = NULL;
	struct rdmamig_fetch_run *out = NULL;
	ktime_t t0 = ktime_get();
	struct fetch_req *req;
	u32 i, max, maxruns, nrel = 0;
	bool done = false;
	int ret;

	if (f->flags & ~(RDMAMIG_FETCH_SWEEP | RDMAMIG_FETCH_IN_PLACE) ||
	    (in_place ? f->buf : !f->buf || !PAGE_ALIGNED(f->buf)) ||
	    !f->buf_len || !PAGE_ALIGNED(f->buf_len) || f->buf_len > RDMAMIG_FETCH_MAX ||
	    f->reserved || (f->runs && (fault || !f->nruns)) ||
	    f->nruns > RDMAMIG_FETCH_RUNS_MAX)
		return -EINVAL;
	if (sess->role != RDMAMIG_ROLE_DEST)
		return -ENOTCONN;
	max = f->buf_len >> PAGE_SHIFT;
	maxruns = f->runs ? f->nruns : 1;
	if (fault)
		max = min(max, window_pages());
	else
		sweep_yield(sess);
	f->start = 0;
	f->npages = 0;
	f->nruns = 0;
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;

	down_read(&pc->rwsem);
	spin_lock_irq(&pc->lock);
	ret = fetch_allowed(sess);
	/*
	 * After the last page was read too: a page never owed is ENOENT,
	 * one read already 0 pages (some may not be placed yet).
	 */
	if (!ret && fault) {
		ret = claim_fault(sess, f->addr, max, &req->runs[0]);
		req->nruns = req->runs[0].n ? 1 : 0;
	} else if (!ret && !pc->done) {
		while (req->nruns < maxruns && req->npages < max) {
			claim_sweep(sess, max - req->npages, &req->runs[req->nruns]);
			if (!req->runs[req->nruns].n)
				break;
			req->npages += req->runs[req->nruns++].n;
		}
	}
	if (fault && req->nruns) {
		req->npages = req->runs[0].n;
		pc->faults_inflight++;
	}
	f->remaining = pc->unclaimed;
	spin_unlock_irq(&pc->lock);
	if (ret || !req->nruns)
		goto out;

	for (i = 0; i < req->nruns && !ret; i++)
		ret = wait_key(sess, &req->runs[i]);
	ret = ret ?: read_runs(sess, req, f->buf, in_place, fault);
	if (fault) {
		spin_lock_irq(&pc->lock);
		pc->faults_inflight--;
		spin_unlock_irq(&pc->lock);
		wake_up_all(&pc->fault_wq);
	}
	/* Where each run belongs, told before the pages count as read. */
	if (!ret && f->runs) {
		out = kcalloc(req->nruns, sizeof(*out), GFP_KERNEL);
		ret = out ? 0 : -ENOMEM;
		for (i = 0; i < req->nruns && out; i++) {
			const struct fetch_run *run = &req->runs[i];

			out[i].start = sess->blocks[run->bi]->addr + (run->page << PAGE_SHIFT);
			out[i].npages = run->n;
		}
		if (out && copy_to_user(u64_to_user_ptr(f->runs), out,
					req->nruns * sizeof(*out)))
			ret = -EFAULT;
	}
	released = kcalloc(req->nruns, sizeof(*released), GFP_KERNEL);
	if (!ret && !released)
		ret = -ENOMEM;
	if (ret) {
		for (i = 0; i < req->nruns; i++)
			unclaim(pc, &req->runs[i]);
		goto out;
	}
	for (i = 0; i < req->nruns; i++) {
		const struct fetch_run *run = &req->runs[i];
		bool last = false;

		if (account(sess, run, fault, &last)) {
			released[nrel].block = cpu_to_be32(run->bi);
			released[nrel++].chunk = cpu_to_be32(run->page / RDMAMIG_CHUNK_PAGES);
		}
		done |= last;
	}
	f->start = sess->blocks[req->runs[0].bi]->addr + (req->runs[0].page << PAGE_SHIFT);
	f->npages = req->npages;
	if (fault)
		rdmamig_postcopy_fault_time(sess, ktime_us_delta(ktime_get(), t0));
	/* The pages are in the caller's buffer: the call succeeded. */
	if (out)
		f->nruns = req->nruns;
	if (nrel && rdmamig_ctrl_send(sess, RDMAMIG_MSG_POSTCOPY_RELEASE, nrel, released,
				      nrel * sizeof(*released)))
		sess_warn_rl(sess, "post-copy release not sent\n");
	if (done)
		dst_finish(sess);
out:
	up_read(&pc->rwsem);
	kfree(released);
	kfree(out);
	kfree(req);
	return ret;
}

/**
 * rdmamig_postcopy_dst_owed() - RDMAMIG_IOC_OWED
 * @sess: the destination, in post-copy
 * @r: block, page range and the user's bitmap to fill
 *
 * Return: 0, or -EINVAL, -EFAULT, -ENOTCONN, the session's error.
 */
int rdmamig_postcopy_dst_owed(struct rdmamig_session *sess,
			      const struct rdmamig_round *r)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	size_t bytes;
	u64 end, bit;
	u64 *words;
	int ret;

	if (r->flags || r->reserved || r->block >= READ_ONCE(sess->nblocks) ||
	    !r->npages || check_add_overflow(r->first_page, r->npages, &end) ||
	    end > sess->blocks[r->block]->length >> PAGE_SHIFT)
		return -EINVAL;
	if (sess->role != RDMAMIG_ROLE_DEST)
		return -ENOTCONN;
	bytes = DIV_ROUND_UP(r->npages, 64) * sizeof(u64);
	words = kvzalloc(bytes, GFP_KERNEL);
	if (!words)
		return -ENOMEM;
	down_read(&pc->rwsem);
	spin_lock_irq(&pc->lock);
	ret = fetch_allowed(sess);
	spin_unlock_irq(&pc->lock);
	/* @owed does not change once active. */
	if (!ret && pc->owed[r->block]) {
		bit = r->first_page;
		for_each_set_bit_from(bit, pc->owed[r->block], end)
			words[(bit - r->first_page) / 64] |= 1ULL << ((bit - r->first_page) % 64);
	}
	up_read(&pc->rwsem);
	if (!ret && copy_to_user(u64_to_user_ptr(r->bitmap), words, bytes))
		ret = -EFAULT;
	kvfree(words);
	return ret;
}

static const struct rdmamig_msg_handler postcopy_dst_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_POSTCOPY_OWED]	= { rdmamig_postcopy_dst_owed_msg, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_POSTCOPY_RUN]	= { rdmamig_postcopy_dst_run, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_POSTCOPY_CHUNKS]	= { dst_chunks, RDMAMIG_PHASE_RUN | RDMAMIG_PHASE_DONE },
};

const struct rdmamig_mode_ops rdmamig_postcopy_dst_ops = {
	.name		= "post-copy destination",
	.msgs		= postcopy_dst_msgs,
};
