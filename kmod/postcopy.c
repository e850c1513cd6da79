// SPDX-License-Identifier: GPL-2.0
/*
 * Post-copy, what both sides keep (postcopy.h): the owed pages, the
 * statistics and the end of it all at teardown.  The source's switch is
 * postcopy_src.c, the destination's fetches postcopy_dst.c.
 */
#include "rdmamig.h"

#include <linux/log2.h>
#include <linux/slab.h>

#include "proto.h"
#include "session.h"
#include "postcopy.h"

static_assert(RDMAMIG_CAP_POSTCOPY == RDMAMIG_WIRE_CAP_POSTCOPY);

void rdmamig_postcopy_init(struct rdmamig_session *sess)
{
	init_rwsem(&sess->pc.rwsem);
	spin_lock_init(&sess->pc.lock);
	init_waitqueue_head(&sess->pc.fault_wq);
}

bool rdmamig_postcopy_negotiated(struct rdmamig_session *sess)
{
	return sess->caps & RDMAMIG_WIRE_CAP_POSTCOPY;
}

/*
 * Block @i's bitmaps and, on the destination, its chunks.  Called before
 * @active is set: nobody reads them yet.
 */
int rdmamig_postcopy_alloc_block(struct rdmamig_session *sess, u32 i)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_block_ram *b = sess->blocks[i];
	unsigned long nbits = b->length >> PAGE_SHIFT;

	/* Each only if missing: a call that failed half-way may be retried. */
	if (!pc->owed[i])
		pc->owed[i] = bitmap_zalloc(nbits, GFP_KERNEL);
	if (!pc->todo[i])
		pc->todo[i] = bitmap_zalloc(nbits, GFP_KERNEL);
	if (!pc->owed[i] || !pc->todo[i])
		return -ENOMEM;	/* rdmamig_postcopy_stop() frees them */
	if (sess->role == RDMAMIG_ROLE_SOURCE)
		return 0;
	if (!pc->got[i])
		pc->got[i] = bitmap_zalloc(nbits, GFP_KERNEL);
	if (!pc->chunks[i])
		pc->chunks[i] = kvcalloc(b->nchunks, sizeof(*pc->chunks[i]), GFP_KERNEL);
	if (!pc->got[i] || !pc->chunks[i])
		return -ENOMEM;
	return 0;
}

/*
 * Teardown, before the connection stops: wait for the FETCH and OWED
 * calls in progress (they end once the session is closing: see
 * postcopy_dst.c), and free what they used.  The source's registrations
 * of owed pages are among the blocks' and go with the connection.
 */
void rdmamig_postcopy_stop(struct rdmamig_session *sess)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	u32 i;

	/* A FETCH waiting for a key or a fault gives up: @closing is set. */
	wake_up_all(&sess->wait);
	wake_up_all(&pc->fault_wq);
	down_write(&pc->rwsem);
	spin_lock_irq(&pc->lock);
	pc->stopped = true;
	spin_unlock_irq(&pc->lock);
	up_write(&pc->rwsem);
	wake_up_all(&pc->fault_wq);

	for (i = 0; i < RDMAMIG_MAX_BLOCKS; i++) {
		bitmap_free(pc->owed[i]);
		bitmap_free(pc->todo[i]);
		bitmap_free(pc->got[i]);
		bitmap_free(pc->keyed[i]);
		kvfree(pc->chunks[i]);
		pc->owed[i] = NULL;
		pc->todo[i] = NULL;
		pc->got[i] = NULL;
		pc->keyed[i] = NULL;
		pc->chunks[i] = NULL;
	}
}

/*
 * POSTCOPY_RUN and POSTCOPY_END carry the switch's counts: they must be
 * ours.  Return: true, or false after failing the session.
 */
bool rdmamig_postcopy_counts_ok(struct rdmamig_session *sess,
				const struct rdmamig_cmd_postcopy *cmd, const char *what)
{
	struct rdmamig_postcopy *pc = &sess->pc;

	if (be64_to_cpu(cmd->pages) == pc->owed_pages &&
	    be64_to_cpu(cmd->chunks) == pc->owed_chunks &&
	    !cmd->reserved[0] && !cmd->reserved[1])
		return true;
	rdmamig_session_fail(sess, -EPROTO, true,
			     "post-copy %s for %llu pages in %llu chunks, %llu in %llu are owed",
			     what, be64_to_cpu(cmd->pages), be64_to_cpu(cmd->chunks),
			     pc->owed_pages, pc->owed_chunks);
	return false;
}

/* Bucket of @us: its power of two, then which eighth of it. */
static u32 hist_bucket(u64 us)
{
	u32 log, sub;

	if (us < RDMAMIG_PC_HIST_SUB)
		return us;
	log = ilog2(us);
	sub = (us >> (log - 3)) & (RDMAMIG_PC_HIST_SUB - 1);
	return min_t(u32, (log - 2) * RDMAMIG_PC_HIST_SUB + sub,
		     RDMAMIG_PC_HIST_BUCKETS - 1);
}

/* The least value of bucket @i, the inverse of hist_bucket(). */
static u64 hist_value(u32 i)
{
	u32 log = i / RDMAMIG_PC_HIST_SUB + 2, sub = i % RDMAMIG_PC_HIST_SUB;

	if (i < RDMAMIG_PC_HIST_SUB)
		return i;
	return (1ULL << log) + ((u64)sub << (log - 3));
}

/* One fault served in @us microseconds. */
void rdmamig_postcopy_fault_time(struct rdmamig_session *sess, u64 us)
{
	struct rdmamig_postcopy *pc = &sess->pc;

	spin_lock_irq(&pc->lock);
	pc->hist[hist_bucket(us)]++;
	pc->fault_us_max = max(pc->fault_us_max, us);
	spin_unlock_irq(&pc->lock);
}

/*
 * The @pct percentile of the recorded service times: the bucket's upper
 * end (the next bucket's least value), never above the maximum seen.
 */
static u64 percentile(const struct rdmamig_postcopy *pc, u64 n, u32 pct)
{
	u64 rank = DIV_ROUND_UP_ULL(n * pct, 100), seen = 0;
	u32 i;

	for (i = 0; i < RDMAMIG_PC_HIST_BUCKETS; i++) {
		seen += pc->hist[i];
		if (seen >= rank)
			return min(hist_value(i + 1), pc->fault_us_max);
	}
	return pc->fault_us_max;
}

static u64 ms_since(ktime_t t0, ktime_t t1)
{
	return t0 ? ktime_ms_delta(t1 ?: ktime_get(), t0) : 0;
}

void rdmamig_postcopy_get_stats(struct rdmamig_session *sess,
				struct rdmamig_stats *st)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	unsigned long flags;
	u64 n = 0;
	u32 i;

	/* From a notification too, in a completion's softirq. */
	spin_lock_irqsave(&pc->lock, flags);
	st->postcopy_owed = pc->owed_pages + pc->resumed_read - pc->renamed_read;
	st->postcopy_ms = ms_since(pc->t_switch, pc->t_done);
	st->postcopy_faults = pc->faults;
	st->postcopy_fault_pages = pc->fault_pages;
	st->postcopy_sweep_pages = pc->sweep_pages;
	st->postcopy_fetched_twice = pc->fetched_twice;
	for (i = 0; i < RDMAMIG_PC_HIST_BUCKETS; i++)
		n += pc->hist[i];
	if (n) {
		st->fault_us_p50 = percentile(pc, n, 50);
		st->fault_us_p99 = percentile(pc, n, 99);
		st->fault_us_max = pc->fault_us_max;
	}
	if (pc->t_stop && pc->t_switch)
		st->postcopy_downtime_us = ktime_us_delta(pc->t_switch, pc->t_stop);
	spin_unlock_irqrestore(&pc->lock, flags);
}

/* The same blocks, in the same order: names and lengths. */
static bool same_blocks(struct rdmamig_session *a, struct rdmamig_session *b)
{
	u32 i;

	if (a->nblocks != b->nblocks)
		return false;
	for (i = 0; i < a->nblocks; i++)
		if (a->blocks[i]->length != b->blocks[i]->length ||
		    strcmp(a->blocks[i]->name, b->blocks[i]->name))
			return false;
	return true;
}

/*
 * Take @old's per-block bitmaps: the source's pages still owed (its
 * @todo) become our @owed; the destination's pages read (@got) stay
 * read, and its counters go on.  @old keeps nothing.
 */
static int take_over(struct rdmamig_session *sess, struct rdmamig_session *old)
{
	struct rdmamig_postcopy *pc = &sess->pc, *opc = &old->pc;
	u32 i;
	int ret;

	for (i = 0; i < sess->nblocks; i++) {
		if (!opc->owed[i])
			continue;
		ret = rdmamig_postcopy_alloc_block(sess, i);
		if (ret)
			return ret;
		/* A session resumed that failed before its switch: its owed. */
		if (old->role == RDMAMIG_ROLE_SOURCE) {
			bitmap_copy(pc->owed[i], opc->active ? opc->todo[i] : opc->owed[i],
				    sess->blocks[i]->length >> PAGE_SHIFT);
		} else {
			swap(pc->got[i], opc->got[i]);
		}
	}
	spin_lock_irq(&pc->lock);
	pc->resumed = true;
	if (old->role == RDMAMIG_ROLE_DEST) {
		pc->resumed_read = opc->fault_pages + opc->sweep_pages;
		pc->faults = opc->faults;
		pc->fault_pages = opc->fault_pages;
		pc->sweep_pages = opc->sweep_pages;
		pc->fetched_twice = opc->fetched_twice;
		pc->fault_us_max = opc->fault_us_max;
		memcpy(pc->hist, opc->hist, sizeof(pc->hist));
	}
	spin_unlock_irq(&pc->lock);
	return 0;
}

/**
 * rdmamig_postcopy_resume() - RDMAMIG_IOC_POSTCOPY_RESUME
 * @sess: a new session, its blocks added; a source connected (with
 *	post-copy) and not switched, a destination not listening yet (it
 *	may then only LISTEN: CONNECT refuses it)
 * @old: a session of the same role and blocks that failed in post-copy
 *
 * The old session's state moves here under its @rwsem: a FETCH of the
 * old session in progress ends first, and later ones find it stopped.
 * Return: 0, or -EINVAL (not such a pair), -EBUSY (@sess too far on),
 * -EOPNOTSUPP (post-copy not negotiated), -ENOMEM.
 */
int rdmamig_postcopy_resume(struct rdmamig_session *sess,
			    struct rdmamig_session *old)
{
	enum rdmamig_state st = READ_ONCE(sess->state);
	int ret;

	lockdep_assert_held(&sess->lock);
	if (old == sess || READ_ONCE(old->state) != RDMAMIG_STATE_FAILED ||
	    !same_blocks(sess, old))
		return -EINVAL;
	if (old->role == RDMAMIG_ROLE_SOURCE) {
		if (sess->role != RDMAMIG_ROLE_SOURCE)
			return -EINVAL;
		if (st != RDMAMIG_STATE_CONNECTED)
			return rdmamig_session_error(sess) ?: -EBUSY;
		if (!rdmamig_postcopy_negotiated(sess))
			return -EOPNOTSUPP;
	} else {
		/* Before LISTEN: no source can have connected yet. */
		if (sess->role != RDMAMIG_ROLE_NONE)
			return sess->role == RDMAMIG_ROLE_DEST ? -EBUSY : -EINVAL;
	}
	if (sess->pc.resumed)
		return -EBUSY;

	down_write(&old->pc.rwsem);
	/*
	 * Never switched nor resumed itself, taken over already, or torn
	 * down: nothing to take.  One resumed that failed again before its
	 * own switch still holds what it took.
	 */
	if ((!old->pc.active && !old->pc.resumed) || old->pc.taken || old->pc.stopped) {
		ret = -EINVAL;
		goto out;
	}
	ret = take_over(sess, old);
	if (!ret) {
		spin_lock_irq(&old->pc.lock);
		old->pc.active = false;
		old->pc.taken = true;
		spin_unlock_irq(&old->pc.lock);
	}
out:
	up_write(&old->pc.rwsem);
	return ret;
}
