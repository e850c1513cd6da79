// SPDX-License-Identifier: GPL-2.0
/*
 * Post-copy, source side (postcopy.h).  The VMM stopped its workload and
 * named the pages it still owes with SEND_ROUND(RDMAMIG_ROUND_POSTCOPY)
 * (rdmamig_postcopy_src_owe()); RDMAMIG_IOC_POSTCOPY
 * (rdmamig_postcopy_src_switch()) registers them for RDMA READ, chunk by
 * chunk and only them (the pages of each chunk back to back, as pull
 * mode lays them out), names them in POSTCOPY_CHUNKS, and sends
 * POSTCOPY_RUN.  The destination reads each page once, releases each
 * chunk when it has read all of it (POSTCOPY_RELEASE: we deregister and
 * unpin it) and ends with POSTCOPY_END, when COMPLETE returns.
 *
 * The registrations are the blocks' own (b->dst[], block.c), so that a
 * teardown at any point releases them with the connection.
 */
#include "rdmamig.h"

#include <linux/bitmap.h>
#include <linux/slab.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "ctrl.h"
#include "mode.h"
#include "msg.h"
#include "postcopy.h"
#include "xfer.h"

static bool connected(struct rdmamig_session *sess)
{
	enum rdmamig_state s = READ_ONCE(sess->state);

	return s == RDMAMIG_STATE_CONNECTED || s == RDMAMIG_STATE_ACTIVE;
}

/* Checks common to the VMM's two calls.  Return: 0 or the errno. */
static int switch_allowed(struct rdmamig_session *sess)
{
	lockdep_assert_held(&sess->lock);
	if (sess->role != RDMAMIG_ROLE_SOURCE || !connected(sess))
		return rdmamig_session_error(sess) ?: -ENOTCONN;
	if (!rdmamig_postcopy_negotiated(sess))
		return -EOPNOTSUPP;
	if (sess->round_start)
		return -EBUSY;		/* a pre-copy round is open: end it */
	return 0;
}

/**
 * rdmamig_postcopy_src_owe() - SEND_ROUND with RDMAMIG_ROUND_POSTCOPY
 * @sess: the source, connected, with post-copy negotiated
 * @r: the round's block and page range (checked here)
 * @bitmap: the pages of @r the destination lacks
 *
 * Only records them: nothing moves before the switch.  The first call
 * starts the downtime, as a final round does.
 * Return: 0, or -EINVAL, -EOPNOTSUPP, -EBUSY, -ENOTCONN, -ENOMEM.
 */
int rdmamig_postcopy_src_owe(struct rdmamig_session *sess,
			     const struct rdmamig_round *r,
			     const unsigned long *bitmap)
{
	struct rdmamig_block_ram *b;
	unsigned long bit;
	u64 end;
	int ret;

	if (r->flags != RDMAMIG_ROUND_POSTCOPY || r->reserved ||
	    r->block >= sess->nblocks)
		return -EINVAL;
	ret = switch_allowed(sess);
	if (ret)
		return ret;
	b = sess->blocks[r->block];
	if (!r->npages || check_add_overflow(r->first_page, r->npages, &end) ||
	    end > b->length >> PAGE_SHIFT)
		return -EINVAL;
	ret = rdmamig_postcopy_alloc_block(sess, r->block);
	if (ret)
		return ret;
	for_each_set_bit(bit, bitmap, r->npages)
		__set_bit(r->first_page + bit, sess->pc.owed[r->block]);

	spin_lock_irq(&sess->slock);
	if (!sess->t_final)
		sess->t_final = ktime_get();
	if (sess->state == RDMAMIG_STATE_CONNECTED)
		rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_ACTIVE);
	spin_unlock_irq(&sess->slock);
	spin_lock_irq(&sess->pc.lock);
	if (!sess->pc.t_stop)
		sess->pc.t_stop = ktime_get();
	spin_unlock_irq(&sess->pc.lock);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	return 0;
}

/* The owed pages of @b's chunk @c, as a bitmap of the chunk. */
static unsigned long *chunk_map(struct rdmamig_session *sess, u32 i, u32 c)
{
	return sess->pc.owed[i] + c * (RDMAMIG_CHUNK_PAGES / BITS_PER_LONG);
}

static void fill_map(struct rdmamig_cmd_pages *cmd, u32 i, u32 c,
		     const unsigned long *map, u32 nbits)
{
	u64 words[RDMAMIG_PAGE_MAP_WORDS] = {};
	u32 w;

	bitmap_to_arr64(words, map, nbits);
	cmd->block = cpu_to_be32(i);
	cmd->chunk = cpu_to_be32(c);
	for (w = 0; w < RDMAMIG_PAGE_MAP_WORDS; w++)
		cmd->map[w] = cpu_to_be64(words[w]);
}

/*
 * Commands gathered for one message, sent when full or when flushed.
 * @size is one command's.
 */
struct cmd_batch {
	enum rdmamig_msg_type type;
	void *cmds;
	size_t size;
	u32 n, max;
};

static int batch_flush(struct rdmamig_session *sess, struct cmd_batch *cb)
{
	int ret = 0;

	if (cb->n)
		ret = rdmamig_ctrl_send(sess, cb->type, cb->n, cb->cmds, cb->n * cb->size);
	cb->n = 0;
	return ret;
}

static void *batch_next(struct cmd_batch *cb)
{
	return cb->cmds + cb->n++ * cb->size;
}

static int batch_init(struct cmd_batch *cb, enum rdmamig_msg_type type,
		      size_t size)
{
	cb->type = type;
	cb->size = size;
	cb->n = 0;
	cb->max = RDMAMIG_MSG_PAYLOAD / size;
	cb->cmds = kvcalloc(cb->max, size, GFP_KERNEL);
	return cb->cmds ? 0 : -ENOMEM;
}

/*
 * The switch's first step, in the downtime: name every chunk's owed pages
 * (POSTCOPY_OWED: maps only, nothing pinned yet) and count them.
 */
static int name_owed(struct rdmamig_session *sess)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct cmd_batch cb;
	u32 i, c;
	int ret;

	ret = batch_init(&cb, RDMAMIG_MSG_POSTCOPY_OWED, sizeof(struct rdmamig_cmd_pages));
	if (ret)
		return ret;
	for (i = 0; i < sess->nblocks && !ret; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		if (!pc->owed[i])
			continue;
		/* Owed until the destination releases it. */
		bitmap_copy(pc->todo[i], pc->owed[i], b->length >> PAGE_SHIFT);
		for (c = 0; c < b->nchunks && !ret; c++) {
			u32 nbits = rdmamig_chunk_pages(b, c);
			unsigned long *map = chunk_map(sess, i, c);
			u32 np = bitmap_weight(map, nbits);

			if (!np)
				continue;
			fill_map(batch_next(&cb), i, c, map, nbits);
			pc->owed_pages += np;
			pc->owed_chunks++;
			if (cb.n == cb.max)
				ret = batch_flush(sess, &cb);
		}
	}
	if (!ret)
		ret = batch_flush(sess, &cb);
	kvfree(cb.cmds);
	return ret;
}

/*
 * The next chunk to register: one the destination asked for first
 * (POSTCOPY_WANT: a fault waits for it), else the next in order after
 * @*bi, @*c.  Return: false when every owed chunk has its key.
 */
static bool next_chunk(struct rdmamig_session *sess, u32 *bi, u32 *c)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	bool found = false;

	spin_lock_irq(&pc->lock);
	while (pc->want_head != pc->want_tail && !found) {
		u32 k = pc->want_head++ % RDMAMIG_PC_WANT_MAX;

		*bi = pc->wants[k].block;
		*c = pc->wants[k].chunk;
		found = !test_bit(*c, pc->keyed[*bi]);
	}
	spin_unlock_irq(&pc->lock);
	if (found)
		return true;
	for (; *bi < sess->nblocks; (*bi)++, *c = 0) {
		struct rdmamig_block_ram *b = sess->blocks[*bi];

		if (!pc->owed[*bi])
			continue;
		for (; *c < b->nchunks; (*c)++)
			if (!test_bit(*c, pc->keyed[*bi]) &&
			    !bitmap_empty(chunk_map(sess, *bi, *c), rdmamig_chunk_pages(b, *c)))
				return true;
	}
	return false;
}

/*
 * The switch's last step, the destination running: register each owed
 * chunk for RDMA READ (its owed pages back to back) and send its key,
 * those asked for first.  A key goes out at once when a fault may wait
 * for it, else with up to KEYS_PER_MSG others.
 */
#define KEYS_PER_MSG	16

static int expose_owed(struct rdmamig_session *sess)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	u32 i, bi = 0, c = 0, wb, wc;
	struct cmd_batch cb;
	int ret;

	ret = batch_init(&cb, RDMAMIG_MSG_POSTCOPY_CHUNKS, sizeof(struct rdmamig_cmd_read));
	if (ret)
		return ret;
	for (i = 0; i < sess->nblocks && !ret; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		if (pc->owed[i] && !b->dst) {
			b->dst = kvcalloc(b->nchunks, sizeof(*b->dst), GFP_KERNEL);
			if (!b->dst)
				ret = -ENOMEM;
		}
	}
	/* Until every key is out, or the destination read it all anyway. */
	while (!ret && !rdmamig_session_dead(sess) &&
	       READ_ONCE(sess->state) != RDMAMIG_STATE_COMPLETED) {
		struct rdmamig_block_ram *b;
		struct rdmamig_cmd_read *cmd;
		bool asked;

		wb = bi;
		wc = c;
		if (!next_chunk(sess, &wb, &wc))
			break;
		asked = wb != bi || wc != c;
		if (!asked) {		/* in order: go on after it next time */
			bi = wb;
			c = wc + 1;
		}
		b = sess->blocks[wb];
		/* The rx work releases chunks meanwhile (src_release()). */
		mutex_lock(&sess->reg_mutex);
		ret = rdmamig_chunk_register(sess, b, wc, chunk_map(sess, wb, wc),
					     IB_ACCESS_REMOTE_READ);
		mutex_unlock(&sess->reg_mutex);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "registering '%s' chunk %u for post-copy failed (%d)",
					     b->name, wc, ret);
			break;
		}
		spin_lock_irq(&pc->lock);
		__set_bit(wc, pc->keyed[wb]);
		spin_unlock_irq(&pc->lock);
		cmd = batch_next(&cb);
		fill_map(&cmd->pages, wb, wc, chunk_map(sess, wb, wc),
			 rdmamig_chunk_pages(b, wc));
		cmd->addr = cpu_to_be64(b->dst[wc].mr->iova);
		cmd->rkey = cpu_to_be32(b->dst[wc].mr->rkey);
		cmd->reserved = 0;
		if (asked || cb.n == KEYS_PER_MSG ||
		    READ_ONCE(pc->want_head) != READ_ONCE(pc->want_tail))
			ret = batch_flush(sess, &cb);
	}
	if (!ret)
		ret = batch_flush(sess, &cb);
	kvfree(cb.cmds);
	return ret ?: rdmamig_session_error(sess);
}

/**
 * rdmamig_postcopy_src_switch() - RDMAMIG_IOC_POSTCOPY
 * @sess: the source, connected, post-copy negotiated, no round open
 *
 * Names the owed pages and lets the destination run at once (the
 * downtime ends there), then registers them and sends their keys, those
 * the destination's faults ask for first.  A failure before
 * POSTCOPY_RUN fails the session with the destination not running: the
 * workload may resume here; after it, see Documentation/protocol.rst.
 * Return: 0 once every key is sent, or a negative errno.
 */
int rdmamig_postcopy_src_switch(struct rdmamig_session *sess)
{
	struct rdmamig_postcopy *pc = &sess->pc;
	struct rdmamig_cmd_postcopy run = {};
	bool moved;
	u32 i;
	int ret;

	ret = switch_allowed(sess);
	if (ret)
		return ret;
	for (i = 0; i < sess->nblocks && !ret; i++) {
		if (!pc->owed[i])
			continue;
		pc->keyed[i] = bitmap_zalloc(sess->blocks[i]->nchunks, GFP_KERNEL);
		if (!pc->keyed[i])
			ret = -ENOMEM;
	}
	ret = ret ?: name_owed(sess);
	if (ret == -ERESTARTSYS)
		return rdmamig_xfer_interrupted(sess, "switching to post-copy");
	if (ret) {
		rdmamig_session_fail(sess, ret, true, "switching to post-copy failed (%d)",
				     ret);
		return ret;
	}

	spin_lock_irq(&sess->slock);
	if (!sess->t_final)
		sess->t_final = ktime_get();
	moved = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_POSTCOPY);
	spin_unlock_irq(&sess->slock);
	if (!moved)	/* cancelled or failed meanwhile */
		return rdmamig_session_error(sess) ?: -ECANCELED;
	spin_lock_irq(&pc->lock);
	pc->active = true;
	if (!pc->t_stop)	/* after a resume, or nothing owed by name */
		pc->t_stop = sess->t_final;
	spin_unlock_irq(&pc->lock);
	/* Before POSTCOPY_RUN: the answers to it are post-copy's. */
	rdmamig_mode_switch(sess, &rdmamig_postcopy_src_ops);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);

	run.chunks = cpu_to_be64(pc->owed_chunks);
	run.pages = cpu_to_be64(pc->owed_pages);
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_POSTCOPY_RUN, 1, &run, sizeof(run));
	spin_lock_irq(&pc->lock);
	pc->t_switch = ktime_get();	/* the downtime's end */
	spin_unlock_irq(&pc->lock);
	if (!ret) {
		sess_info(sess, "post-copy: %llu pages in %llu chunks owed; the destination runs\n",
			  pc->owed_pages, pc->owed_chunks);
		ret = expose_owed(sess);
	}
	if (ret == -ERESTARTSYS)
		return rdmamig_xfer_interrupted(sess, "switching to post-copy");
	if (ret && !rdmamig_session_dead(sess))
		rdmamig_session_fail(sess, ret, true, "post-copy: exposing the owed pages failed (%d)",
				     ret);
	return ret;
}

/*
 * POSTCOPY_WANT: a fault of the destination waits for these chunks' keys.
 * Queued for expose_owed(); one already keyed, or a full queue, is
 * skipped (its key comes in order anyway).
 */
static void src_want(struct rdmamig_session *sess, const void *payload,
		     u32 n, u32 len)
{
	const struct rdmamig_cmd_chunk *cmds = payload;
	struct rdmamig_postcopy *pc = &sess->pc;
	u32 i;

	if (READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED)
		return;
	for (i = 0; i < n; i++) {
		u32 bi = be32_to_cpu(cmds[i].block), ci = be32_to_cpu(cmds[i].chunk);

		if (bi >= sess->nblocks || ci >= sess->blocks[bi]->nchunks ||
		    !pc->owed[bi] ||
		    bitmap_empty(chunk_map(sess, bi, ci), rdmamig_chunk_pages(sess->blocks[bi], ci))) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "post-copy wants block %u chunk %u, which is not owed",
					     bi, ci);
			return;
		}
		spin_lock_irq(&pc->lock);
		if (!test_bit(ci, pc->keyed[bi]) &&
		    pc->want_tail - pc->want_head < RDMAMIG_PC_WANT_MAX) {
			pc->wants[pc->want_tail % RDMAMIG_PC_WANT_MAX].block = bi;
			pc->wants[pc->want_tail % RDMAMIG_PC_WANT_MAX].chunk = ci;
			pc->want_tail++;
		}
		spin_unlock_irq(&pc->lock);
	}
}

/* The chunk a RELEASE names, exposed by us; NULL after failing. */
static struct rdmamig_block_ram *released_chunk(struct rdmamig_session *sess,
						const struct rdmamig_cmd_chunk *cmd,
						u32 *chunk)
{
	u32 bi = be32_to_cpu(cmd->block), ci = be32_to_cpu(cmd->chunk);
	struct rdmamig_block_ram *b;

	if (bi >= sess->nblocks || !sess->pc.owed[bi] ||
	    ci >= sess->blocks[bi]->nchunks || !sess->blocks[bi]->dst ||
	    !sess->blocks[bi]->dst[ci].mr) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "post-copy release of block %u chunk %u, which is not exposed",
				     bi, ci);
		return NULL;
	}
	b = sess->blocks[bi];
	*chunk = ci;
	return b;
}

/*
 * POSTCOPY_RELEASE: the destination read these chunks.  Deregistering
 * revokes the key before the pages are unpinned.  After completion every
 * chunk is released already: a RELEASE that crossed the END is dropped.
 */
static void src_release(struct rdmamig_session *sess, const void *payload,
			u32 n, u32 len)
{
	const struct rdmamig_cmd_chunk *cmds = payload;
	struct rdmamig_block_ram *b;
	u32 i, c;

	if (READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED)
		return;
	for (i = 0; i < n; i++) {
		b = released_chunk(sess, &cmds[i], &c);
		if (!b)
			return;
		mutex_lock(&sess->reg_mutex);
		rdmamig_chunk_unregister(sess, b, c);
		mutex_unlock(&sess->reg_mutex);
		spin_lock_irq(&sess->pc.lock);
		bitmap_clear(sess->pc.todo[b->index], c * RDMAMIG_CHUNK_PAGES,
			     rdmamig_chunk_pages(b, c));
		sess->pc.released++;
		spin_unlock_irq(&sess->pc.lock);
	}
}

/* POSTCOPY_END: every owed page is read; release the rest and complete. */
static void src_end(struct rdmamig_session *sess, const void *payload,
		    u32 repeat, u32 len)
{
	const struct rdmamig_cmd_postcopy *cmd = payload;
	struct rdmamig_postcopy *pc = &sess->pc;
	bool done;

	if (!rdmamig_postcopy_counts_ok(sess, cmd, "end"))
		return;
	spin_lock_irq(&pc->lock);
	pc->done = true;
	pc->t_done = ktime_get();
	spin_unlock_irq(&pc->lock);
	spin_lock_irq(&sess->slock);
	done = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_COMPLETED);
	if (done)
		sess->t_end = ktime_get();
	spin_unlock_irq(&sess->slock);
	if (!done)
		return;
	wake_up_all(&sess->wait);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	sess_info(sess, "post-copy completed: the destination read %llu pages\n",
		  pc->owed_pages);
}

static bool src_completed(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED;
}

/*
 * COMPLETE after the switch: wait for POSTCOPY_END, however long the
 * destination takes.  A signal leaves the session as it is: neither side
 * has all the memory, so only a cancel may give up.
 */
static int src_complete(struct rdmamig_session *sess)
{
	int ret = rdmamig_session_wait(sess, src_completed, MAX_SCHEDULE_TIMEOUT);

	if (ret)
		return ret;
	/*
	 * Here, not in src_end(): this thread's RDMAMIG_IOC_POSTCOPY, which
	 * registers, has returned.  The memory is the VMM's to free now.
	 */
	mutex_lock(&sess->reg_mutex);
	rdmamig_blocks_unregister(sess);
	mutex_unlock(&sess->reg_mutex);
	sess_info(sess, "post-copy: our memory is released\n");
	return 0;
}

static const struct rdmamig_msg_handler postcopy_src_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_POSTCOPY_WANT]	= { src_want, RDMAMIG_PHASE_RUN | RDMAMIG_PHASE_DONE },
	[RDMAMIG_MSG_POSTCOPY_RELEASE]	= { src_release, RDMAMIG_PHASE_RUN | RDMAMIG_PHASE_DONE },
	[RDMAMIG_MSG_POSTCOPY_END]	= { src_end, RDMAMIG_PHASE_RUN },
};

const struct rdmamig_mode_ops rdmamig_postcopy_src_ops = {
	.name		= "post-copy source",
	.msgs		= postcopy_src_msgs,
	.complete	= src_complete,
};
