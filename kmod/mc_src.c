// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-checkpointing, the primary (source) side (mc.h has the whole
 * picture).  The first full copy is pre-copy's, unchanged; then every
 * RDMAMIG_IOC_MC_EPOCH copies the epoch's dirty pages and device state
 * into pages of the module (the snapshot) while the guest is stopped,
 * and returns.  mc_work() sends the snapshot while the guest runs: its
 * pages by RDMA WRITE into the backup's staging, back to back, then
 * where they belong (MC_RUNS), the device state (DEVICE_STATE) and
 * MC_EPOCH_END with a checksum, and waits for MC_ACK before it takes the
 * next one: the staging holds one epoch at a time.
 *
 * The snapshot lives in kernel pages charged to the VMM's memory cgroup
 * (GFP_KERNEL_ACCOUNT), not in a buffer the VMM registers: the VMM
 * cannot touch it while it is on the wire, and there is nothing to
 * check about its layout.  Two at most exist: the one being sent and
 * the one taken next.  Neither is bigger than the backup's staging, nor
 * is the pool of free pages kept for them.
 */
#include "rdmamig.h"

#include <linux/highmem.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xxhash.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "mc.h"
#include "mode.h"
#include "msg.h"
#include "precopy_src.h"
#include "xfer.h"

/*
 * The staging, in MiB: what a primary asks for and what a backup grants
 * at most (the smaller wins).  One epoch's pages must fit it.  2048 MiB
 * of chunk keys still fit one MC_STAGING_RESULT (2730 keys).
 */
static unsigned int mc_staging_mb = 64;
module_param(mc_staging_mb, uint, 0644);
MODULE_PARM_DESC(mc_staging_mb, "micro-checkpointing: staging of one epoch, MiB, 1 to 2048 (default 64); asked for by the primary, bounded by the backup");

#define MC_STAGING_MB_MAX	2048

/* In whole chunks: the staging is registered chunk by chunk. */
u32 rdmamig_mc_staging_pages(void)
{
	u32 mb = clamp_t(u32, READ_ONCE(mc_staging_mb), 1, MC_STAGING_MB_MAX);

	return (mb << 20) >> PAGE_SHIFT;
}

/*
 * The pages of acknowledged snapshots are kept for the next ones, as
 * many as the staging holds: allocating (and charging) a page costs more
 * than copying it, and the copy happens while the guest is stopped.
 */
static struct page *pool_get(struct rdmamig_mc *mc)
{
	struct page *pg;

	spin_lock(&mc->pool_lock);
	pg = list_first_entry_or_null(&mc->pool, struct page, lru);
	if (pg) {
		list_del(&pg->lru);
		mc->npool--;
	}
	spin_unlock(&mc->pool_lock);
	return pg ?: alloc_page(GFP_KERNEL_ACCOUNT);
}

static void pool_put(struct rdmamig_mc *mc, struct page *pg)
{
	spin_lock(&mc->pool_lock);
	if (mc->npool < mc->staging_pages) {
		list_add(&pg->lru, &mc->pool);
		mc->npool++;
		pg = NULL;
	}
	spin_unlock(&mc->pool_lock);
	if (pg)
		__free_page(pg);
}

static void snap_free(struct rdmamig_mc *mc, struct rdmamig_mc_snap *s)
{
	u32 i;

	if (!s)
		return;
	for (i = 0; s->pages && i < s->npages; i++)
		if (s->pages[i])
			pool_put(mc, s->pages[i]);
	kvfree(s->pages);
	kvfree(s->runs);
	kvfree(s->state);
	kfree(s);
}

/* ---- connection: the backup's staging ------------------------------- */

static bool staging_known(struct rdmamig_session *sess)
{
	/* Pairs with the release in mc_staging_result(). */
	return smp_load_acquire(&sess->mc.nkeys) != 0;
}

/*
 * CONNECT: pre-copy's RAM blocks, then the staging, so that the first
 * epoch knows its bound.
 */
static int mc_src_start(struct rdmamig_session *sess)
{
	struct rdmamig_cmd_mc_staging req = {};
	int ret;

	ret = rdmamig_precopy_src_start(sess);
	if (ret)
		return ret;
	req.pages = cpu_to_be64(rdmamig_mc_staging_pages());
	/* Before the send: the answer may come before it returns. */
	WRITE_ONCE(sess->mc.chunks_asked,
		   rdmamig_mc_staging_pages() / RDMAMIG_CHUNK_PAGES);
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_MC_STAGING_REQUEST, 1, &req,
				sizeof(req));
	if (ret == -ERESTARTSYS)
		return rdmamig_xfer_interrupted(sess, "waiting to ask for the staging");
	if (ret)
		return ret;
	ret = rdmamig_session_wait(sess, staging_known, RDMAMIG_XFER_WAIT);
	if (ret == -ERESTARTSYS)
		return rdmamig_xfer_interrupted(sess, "waiting for the backup's staging");
	if (ret == -ETIMEDOUT)
		rdmamig_session_fail(sess, ret, true, "the backup set up no staging");
	return ret;
}

/* MC_STAGING_RESULT: one key per chunk, in order. */
static void mc_staging_result(struct rdmamig_session *sess, const void *payload,
			      u32 n, u32 len)
{
	const struct rdmamig_cmd_key *k = payload;
	struct rdmamig_mc *mc = &sess->mc;
	struct rdmamig_mc_key *keys;
	u32 i;

	/* At most what we asked for; fewer is the backup's bound. */
	if (!READ_ONCE(mc->chunks_asked) || mc->nkeys || n > mc->chunks_asked) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "staging keys nobody asked for (%u chunks)", n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (be32_to_cpu(k[i].block) || be32_to_cpu(k[i].chunk) != i ||
		    k[i].reserved) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "staging key %u malformed", i);
			return;
		}
	}
	keys = kvcalloc(n, sizeof(*keys), GFP_KERNEL);
	if (!keys) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		keys[i].raddr = be64_to_cpu(k[i].addr);
		keys[i].rkey = be32_to_cpu(k[i].rkey);
	}
	mc->keys = keys;
	mc->staging_pages = n * RDMAMIG_CHUNK_PAGES;
	/* Pairs with staging_known(): @keys is whole before it is used. */
	smp_store_release(&mc->nkeys, n);
	wake_up_all(&sess->wait);
}

/* ---- the epoch's snapshot (the VMM's thread, guest stopped) --------- */

static bool mc_room(struct rdmamig_session *sess)
{
	return !READ_ONCE(sess->mc.queued);
}

static bool connected(struct rdmamig_session *sess)
{
	enum rdmamig_state s = READ_ONCE(sess->state);

	return s == RDMAMIG_STATE_CONNECTED || s == RDMAMIG_STATE_ACTIVE;
}

/* The rounds (fixed-size elements) and their bitmaps, checked. */
struct mc_dirty {
	struct rdmamig_round *rounds;
	unsigned long **bitmaps;
	u32 n;
	u64 pages;		/* bits set */
	u64 runs;		/* runs of set bits */
};

static void dirty_free(struct mc_dirty *d)
{
	u32 i;

	for (i = 0; d->bitmaps && i < d->n; i++)
		kvfree(d->bitmaps[i]);
	kvfree(d->bitmaps);
	kvfree(d->rounds);
}

static int dirty_get(struct rdmamig_session *sess, const struct rdmamig_mc_epoch *e,
		     struct mc_dirty *d)
{
	u64 total = 0, all = 0;
	u32 i;

	d->n = e->nrounds;
	if (!d->n)
		return 0;
	d->rounds = vmemdup_user(u64_to_user_ptr(e->rounds),
				 array_size(d->n, sizeof(*d->rounds)));
	if (IS_ERR(d->rounds)) {
		int ret = PTR_ERR(d->rounds);

		d->rounds = NULL;
		return ret;
	}
	d->bitmaps = kvcalloc(d->n, sizeof(*d->bitmaps), GFP_KERNEL);
	if (!d->bitmaps)
		return -ENOMEM;
	for (i = 0; i < sess->nblocks; i++)
		all += sess->blocks[i]->length >> PAGE_SHIFT;
	for (i = 0; i < d->n; i++) {
		const struct rdmamig_round *r = &d->rounds[i];
		struct rdmamig_block_ram *b;
		unsigned long s, end;
		u64 bpages;

		/* An array: every element is this kernel's struct, whole. */
		if (r->size != sizeof(*r) || r->flags || r->reserved ||
		    r->block >= sess->nblocks || !r->npages)
			return -EINVAL;
		b = sess->blocks[r->block];
		bpages = b->length >> PAGE_SHIFT;
		if (r->first_page >= bpages || r->npages > bpages - r->first_page)
			return -EINVAL;
		/* Bitmaps no larger in all than the blocks' own. */
		total += r->npages;
		if (total > all)
			return -EINVAL;
		d->bitmaps[i] = vmemdup_user(u64_to_user_ptr(r->bitmap),
					     DIV_ROUND_UP(r->npages, 64) * sizeof(u64));
		if (IS_ERR(d->bitmaps[i])) {
			int ret = PTR_ERR(d->bitmaps[i]);

			d->bitmaps[i] = NULL;
			return ret;
		}
		s = 0;
		for_each_set_bitrange_from(s, end, d->bitmaps[i], r->npages) {
			d->pages += end - s;
			d->runs++;
		}
	}
	return 0;
}

/*
 * One run of @n pages from @addr into pages from the pool.  The VMM's
 * own pages (a session of /dev/rdmamig: current->mm is the session's)
 * are read with copy_from_user(), no pin needed; a process's, for
 * rdmamigctl (a netlink session by pid, the process stopped), through
 * rdmamig_owner_read(), which pins them a batch at a time.
 */
static int run_copy(struct rdmamig_session *sess, int way, u64 addr,
		    struct page **pages, u32 n)
{
	u32 k;

	for (k = 0; k < n; k++) {
		pages[k] = pool_get(&sess->mc);
		if (!pages[k])
			return -ENOMEM;
	}
	if (way != RDMAMIG_PIN_OWN)
		return rdmamig_owner_read(sess, way, addr, pages, n);
	for (k = 0; k < n; k++)
		if (copy_from_user(page_address(pages[k]),
				   u64_to_user_ptr(addr + ((u64)k << PAGE_SHIFT)),
				   PAGE_SIZE))
			return -EFAULT;
	return 0;
}

/* Copy the named pages into pages of ours, and note where each run belongs. */
static int snap_fill(struct rdmamig_session *sess, struct rdmamig_mc_snap *s,
		     const struct mc_dirty *d)
{
	u32 i, slot = 0;
	int way, ret;

	ret = rdmamig_owner_enter(sess, &way);
	if (ret)
		return ret;
	for (i = 0; i < d->n && !ret; i++) {
		const struct rdmamig_round *r = &d->rounds[i];
		struct rdmamig_block_ram *b = sess->blocks[r->block];
		unsigned long p = 0, end;

		for_each_set_bitrange_from(p, end, d->bitmaps[i], r->npages) {
			struct rdmamig_cmd_mc_run *run = &s->runs[s->nruns++];

			run->block = cpu_to_be32(r->block);
			run->npages = cpu_to_be32(end - p);
			run->first_page = cpu_to_be64(r->first_page + p);
			ret = run_copy(sess, way,
				       b->addr + ((r->first_page + p) << PAGE_SHIFT),
				       s->pages + slot, end - p);
			if (ret)
				break;
			slot += end - p;
			cond_resched();
		}
	}
	rdmamig_owner_leave(sess, way);
	return ret;
}

/**
 * mc_src_epoch() - RDMAMIG_IOC_MC_EPOCH: take the snapshot, queue it
 * @sess: a primary session, @lock held, by the VMM's thread
 * @e: the call's argument, its plain fields checked by chardev.c
 *
 * Takes nothing on failure: no epoch number is spent, and the session
 * goes on (the snapshot only exists in this call until it is queued).
 *
 * Return: 0; -EINVAL for a bad round, -ENOSPC when the epoch is larger
 * than the backup's staging, -EFAULT, -ENOMEM, -EBUSY with a pre-copy
 * round open, the session's error, or -ERESTARTSYS (nothing done).
 */
static int mc_src_epoch(struct rdmamig_session *sess, struct rdmamig_mc_epoch *e)
{
	struct rdmamig_mc *mc = &sess->mc;
	struct rdmamig_mc_snap *s = NULL;
	struct mc_dirty d = {};
	ktime_t t0 = ktime_get(), t1;
	u64 pause_us;
	int ret;

	lockdep_assert_held(&sess->lock);
	/* A VMM's forked child; a session by pid reads its process's pages. */
	if (current->mm != sess->mm && !sess->nl_portid)
		return -EINVAL;
	if (!connected(sess) || !staging_known(sess))
		return rdmamig_session_error(sess) ?: -ENOTCONN;
	/* The work uses the round's fields once epochs flow. */
	if (!mc->taken && sess->round_start)
		return -EBUSY;	/* a pre-copy round is open: end it first */

	ret = dirty_get(sess, e, &d);
	if (ret)
		goto out;
	if (d.pages > mc->staging_pages) {
		ret = -ENOSPC;
		goto out;
	}
	/* The one before waits to be sent: the guest stays stopped. */
	ret = rdmamig_session_wait(sess, mc_room, MAX_SCHEDULE_TIMEOUT);
	if (ret)
		goto out;
	t1 = ktime_get();

	ret = -ENOMEM;
	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		goto out;
	s->npages = d.pages;
	s->pages = kvcalloc(max_t(u64, d.pages, 1), sizeof(*s->pages),
			    GFP_KERNEL_ACCOUNT);
	s->runs = kvcalloc(max_t(u64, d.runs, 1), sizeof(*s->runs),
			   GFP_KERNEL_ACCOUNT);
	if (!s->pages || !s->runs)
		goto out;
	if (e->state_len) {
		s->state = kvmalloc(e->state_len, GFP_KERNEL_ACCOUNT);
		if (!s->state)
			goto out;
		ret = -EFAULT;
		if (copy_from_user(s->state, u64_to_user_ptr(e->state), e->state_len))
			goto out;
		s->state_len = e->state_len;
	}
	ret = snap_fill(sess, s, &d);
	if (ret)
		goto out;

	s->t_taken = ktime_get();
	/* The checks and the copies, not the wait: what the snapshot costs. */
	pause_us = ktime_us_delta(s->t_taken, t0) - ktime_us_delta(t1, t0);
	s->epoch = mc->taken + 1;
	spin_lock_irq(&sess->slock);
	mc->taken = s->epoch;
	mc->queued = s;
	sess->stats.mc_epochs = s->epoch;
	sess->stats.mc_pages += s->npages;
	sess->stats.mc_bytes += ((u64)s->npages << PAGE_SHIFT) + s->state_len;
	sess->stats.mc_last_pages = s->npages;
	sess->stats.mc_pause_us_last = pause_us;
	sess->stats.mc_pause_us_max = max(sess->stats.mc_pause_us_max, pause_us);
	sess->stats.mc_pause_us_total += pause_us;
	sess->stats.device_state_bytes += s->state_len;
	if (sess->state == RDMAMIG_STATE_CONNECTED)
		rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_ACTIVE);
	spin_unlock_irq(&sess->slock);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	/* Teardown cancels it; a snapshot it never sent is freed then. */
	rdmamig_session_queue_work(sess, system_unbound_wq, &mc->work);

	e->epoch = s->epoch;
	e->pages = s->npages;
	e->snapshot_us = pause_us;
	e->wait_us = ktime_us_delta(t1, t0);
	e->staging_pages = mc->staging_pages;
	s = NULL;
out:
	snap_free(mc, s);
	dirty_free(&d);
	return ret;
}

/* ---- sending, in the background ------------------------------------- */

static bool mc_acked(struct rdmamig_session *sess)
{
	struct rdmamig_mc_snap *s = READ_ONCE(sess->mc.sending);

	return !s || READ_ONCE(sess->mc.acked) >= s->epoch;
}

static u64 snap_csum(const struct rdmamig_mc_snap *s)
{
	struct xxh64_state st;
	u32 i;

	xxh64_reset(&st, s->epoch);
	for (i = 0; i < s->npages; i++) {
		void *p = kmap_local_page(s->pages[i]);

		xxh64_update(&st, p, PAGE_SIZE);
		kunmap_local(p);
	}
	if (s->state_len)
		xxh64_update(&st, s->state, s->state_len);
	return xxh64_digest(&st);
}

/* The pages into the staging, chunk after chunk, all at once. */
static int mc_write_pages(struct rdmamig_session *sess,
			  struct rdmamig_mc_snap *s, u64 *csum)
{
	struct rdmamig_mc *mc = &sess->mc;
	struct rdmamig_xfer_batch batch = {};
	u32 nchunks = DIV_ROUND_UP(s->npages, RDMAMIG_CHUNK_PAGES);
	u32 i, maxio = 0;
	int ret;

	for (i = 0; i < nchunks; i++)
		maxio += rdmamig_xfer_ios(sess, min_t(u32, RDMAMIG_CHUNK_PAGES,
						      s->npages - i * RDMAMIG_CHUNK_PAGES));
	ret = rdmamig_xfer_batch_start(sess, &batch, RDMAMIG_XFER_WRITE, maxio);
	if (ret)
		return ret;
	/* max-bandwidth holds each epoch from its start (xfer.c). */
	sess->round_start = ktime_get();
	sess->round_bytes = 0;
	sess->round_pages = 0;
	for (i = 0; i < nchunks && !ret; i++) {
		u32 first = i * RDMAMIG_CHUNK_PAGES;

		ret = rdmamig_xfer_post(sess, &batch, s->pages + first,
					min_t(u32, RDMAMIG_CHUNK_PAGES, s->npages - first),
					mc->keys[i].raddr, mc->keys[i].rkey);
	}
	/* While the writes fly. */
	if (!ret)
		*csum = snap_csum(s);
	/*
	 * Waits for every write posted, also after a failure: the pages
	 * stay DMA-mapped until then.  A work has no signal to end the wait
	 * with; this one disconnects a failed session's queue pairs itself.
	 */
	rdmamig_xfer_finish_reads(sess, &batch);
	sess->round_start = 0;
	sess->round_bytes = 0;
	sess->round_pages = 0;
	return ret ?: rdmamig_session_error(sess);
}

static int mc_send(struct rdmamig_session *sess, struct rdmamig_mc_snap *s)
{
	const u32 per_msg = RDMAMIG_MSG_PAYLOAD / sizeof(struct rdmamig_cmd_mc_run);
	struct rdmamig_cmd_mc_epoch end = {};
	u64 csum = 0;
	u32 i, n;
	int ret;

	if (s->npages) {
		ret = mc_write_pages(sess, s, &csum);
		if (ret)
			return ret;
	} else {
		csum = snap_csum(s);
	}
	/* Sent only once every write completed: the runs name placed pages. */
	for (i = 0; i < s->nruns; i += n) {
		n = min(per_msg, s->nruns - i);
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_MC_RUNS, n, &s->runs[i],
					n * sizeof(*s->runs));
		if (ret)
			return ret;
	}
	for (i = 0; i < s->state_len; i += n) {
		n = min_t(u32, RDMAMIG_MSG_PAYLOAD, s->state_len - i);
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_DEVICE_STATE, 1,
					s->state + i, n);
		if (ret)
			return ret;
	}
	end.epoch = cpu_to_be64(s->epoch);
	end.pages = cpu_to_be64(s->npages);
	end.state_bytes = cpu_to_be64(s->state_len);
	end.csum = cpu_to_be64(csum);
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_MC_EPOCH_END, 1, &end, sizeof(end));
	if (ret)
		return ret;
	ret = rdmamig_session_wait(sess, mc_acked, RDMAMIG_XFER_WAIT);
	if (ret == -ETIMEDOUT)
		rdmamig_session_fail(sess, ret, true, "epoch %llu not acknowledged",
				     s->epoch);
	return ret;
}

/*
 * One snapshot after the other, each acknowledged before the next (the
 * backup's staging holds one).  Never takes @lock: MC_EPOCH and
 * COMPLETE wait for this work while holding it.  Teardown cancels it
 * after failing the session, which ends every wait here.
 */
static void mc_work(struct work_struct *work)
{
	struct rdmamig_session *sess = container_of(work, struct rdmamig_session,
						    mc.work);
	struct rdmamig_mc *mc = &sess->mc;
	struct rdmamig_mc_snap *s;
	int ret;

	for (;;) {
		spin_lock_irq(&sess->slock);
		s = mc->queued;
		mc->queued = NULL;
		mc->sending = s;
		spin_unlock_irq(&sess->slock);
		if (!s)
			return;
		wake_up_all(&sess->wait);	/* room for the next epoch */
		ret = mc_send(sess, s);
		if (ret && !rdmamig_session_dead(sess))
			rdmamig_session_fail(sess, ret, true, "sending epoch %llu failed",
					     s->epoch);
		spin_lock_irq(&sess->slock);
		mc->sending = NULL;
		spin_unlock_irq(&sess->slock);
		snap_free(mc, s);
		wake_up_all(&sess->wait);	/* COMPLETE waits for none in flight */
		if (ret)
			return;
	}
}

/* MC_ACK: the backup applied the epoch in flight. */
static void mc_ack(struct rdmamig_session *sess, const void *payload, u32 repeat,
		   u32 len)
{
	const struct rdmamig_cmd_mc_epoch *cmd = payload;
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_MC_ACKED };
	struct rdmamig_mc *mc = &sess->mc;
	u64 epoch = be64_to_cpu(cmd->epoch);
	struct rdmamig_mc_snap *s;
	bool ok;

	spin_lock_irq(&sess->slock);
	s = mc->sending;
	ok = s && epoch == s->epoch && epoch == mc->acked + 1 &&
	     be64_to_cpu(cmd->pages) == s->npages;
	if (ok) {
		u64 us = ktime_us_delta(ktime_get(), s->t_taken);

		WRITE_ONCE(mc->acked, epoch);
		sess->stats.mc_acked = epoch;
		sess->stats.mc_ack_us_last = us;
		sess->stats.mc_ack_us_max = max(sess->stats.mc_ack_us_max, us);
		ev.round = epoch;
		ev.pages = s->npages;
	}
	spin_unlock_irq(&sess->slock);
	if (!ok) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "acknowledgement of epoch %llu, which is not in flight",
				     epoch);
		return;
	}
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_MC);
	wake_up_all(&sess->wait);
}

/* ---- the rest of the VMM's calls ------------------------------------ */

static bool mc_idle(struct rdmamig_session *sess)
{
	return !READ_ONCE(sess->mc.queued) && !READ_ONCE(sess->mc.sending);
}

/* Pre-copy's rounds make the first full copy, before any epoch. */
static int mc_src_send_round(struct rdmamig_session *sess,
			     struct rdmamig_round *r, const unsigned long *bitmap)
{
	if (sess->mc.taken)
		return -EBUSY;
	return rdmamig_precopy_src_send_round(sess, r, bitmap);
}

static int mc_src_end_round(struct rdmamig_session *sess)
{
	if (sess->mc.taken)
		return -EBUSY;
	return rdmamig_precopy_src_end_round(sess);
}

/* Every epoch acknowledged, then pre-copy's COMPLETE. */
static int mc_src_complete(struct rdmamig_session *sess)
{
	int ret;

	ret = rdmamig_session_wait(sess, mc_idle, MAX_SCHEDULE_TIMEOUT);
	if (ret)
		return ret;
	return rdmamig_precopy_src_complete(sess);
}

static void mc_src_stop(struct rdmamig_session *sess)
{
	cancel_work_sync(&sess->mc.work);
}

static const struct rdmamig_msg_handler mc_src_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_RAM_BLOCKS_RESULT]	= { rdmamig_precopy_src_blocks_agreed, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_CHANNELS_RESULT]	= { rdmamig_chan_src_result, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_REGISTER_RESULT]	= { rdmamig_precopy_src_register_result,
					    RDMAMIG_PHASE_AGREED },
	[RDMAMIG_MSG_UNREGISTER_FINISHED] = { rdmamig_precopy_src_unregistered,
					      RDMAMIG_PHASE_AGREED },
	[RDMAMIG_MSG_ACK]		= { rdmamig_precopy_src_ack, RDMAMIG_PHASE_AGREED },
	[RDMAMIG_MSG_MC_STAGING_RESULT]	= { mc_staging_result, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_MC_ACK]		= { mc_ack, RDMAMIG_PHASE_RUN },
};

const struct rdmamig_mode_ops rdmamig_mc_src_ops = {
	.name		= "checkpoint source",
	.msgs		= mc_src_msgs,
	.start		= mc_src_start,
	.send_round	= mc_src_send_round,
	.end_round	= mc_src_end_round,
	.complete	= mc_src_complete,
	.mc_epoch	= mc_src_epoch,
	.stop		= mc_src_stop,
};

/* Works exist from creation on: teardown cancels them (mode.c). */
void rdmamig_mc_init(struct rdmamig_session *sess)
{
	INIT_WORK(&sess->mc.work, mc_work);
	INIT_LIST_HEAD(&sess->mc.state);
	spin_lock_init(&sess->mc.pool_lock);
	INIT_LIST_HEAD(&sess->mc.pool);
}

/* Both roles, at destroy: after teardown, nothing uses any of it. */
void rdmamig_mc_free(struct rdmamig_session *sess)
{
	struct rdmamig_mc *mc = &sess->mc;

	struct page *pg, *tmp;

	snap_free(mc, mc->queued);
	snap_free(mc, mc->sending);
	mc->queued = NULL;
	mc->sending = NULL;
	list_for_each_entry_safe(pg, tmp, &mc->pool, lru)
		__free_page(pg);
	INIT_LIST_HEAD(&mc->pool);
	mc->npool = 0;
	kvfree(mc->keys);
	mc->keys = NULL;
	rdmamig_mc_dst_free(sess);
}
