// SPDX-License-Identifier: GPL-2.0
/*
 * Pull mode, source side (RDMAMIG_WIRE_CAP_PULL): rounds are scanned as in
 * pre-copy (precopy_src.c: dirty pages pinned, zero pages sent as
 * COMPRESS, windows of chunks), but a window is not written by us: its
 * chunks' data pages, pinned by the scan, are registered here for RDMA
 * READ (a sparse registration, the pages back to back) and named to the
 * destination in one READ_REQUEST; the destination reads them and answers
 * READ_DONE, and only then are they deregistered and unpinned.  The rest
 * of the session (blocks, END_ROUND, COMPLETE, BARRIER, ACK) is
 * pre-copy's, unchanged.  pull_dst.c is the other side.
 *
 * The registrations live in b->dst[], the array the destination keeps its
 * own in (block.c registers both): a source pulled from exposes memory as
 * a push destination does.  They never outlive a SEND_ROUND: the window
 * is retired (READ_DONE, or the session's failure) before the call
 * returns, so teardown finds none.
 */
#include "rdmamig.h"

#include <linux/slab.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "mode.h"
#include "msg.h"
#include "precopy_src.h"
#include "xfer.h"

/* The RAM blocks, and room for our registrations of their chunks. */
static int pull_src_start(struct rdmamig_session *sess)
{
	u32 i;

	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		b->dst = kvcalloc(b->nchunks, sizeof(*b->dst), GFP_KERNEL);
		if (!b->dst)
			return -ENOMEM;
	}
	return rdmamig_precopy_src_start(sess);
}

/*
 * Register the data pages of @w's chunks for the destination to read, and
 * name them in one READ_REQUEST.  The scan pinned them (read-only,
 * charged once to the memlock limit); the registration only maps them.
 * @x->packed is scratch: a registration keeps no page array of its own.
 */
static int pull_send(struct rdmamig_session *sess, struct xfer_window *w,
		     struct xfer_window *busy, struct xfer_round *x)
{
	struct rdmamig_cmd_read *cmds;
	u64 pages = 0, upto;
	u32 i, n = 0;
	int ret = 0;

	if (!w->n)
		return 0;
	/*
	 * max-bandwidth: a window is offered once the last one is paid for,
	 * and registered only then, so that no key is out while we wait.
	 */
	ret = rdmamig_xfer_throttle(sess);
	if (ret)
		return ret;
	cmds = kcalloc(XFER_WINDOW_CHUNKS, sizeof(*cmds), GFP_KERNEL);
	if (!cmds)
		return -ENOMEM;
	for (i = 0; i < w->n; i++) {
		struct xfer_chunk *xc = &w->chunks[i];
		struct rdmamig_dst_chunk *c = &xc->b->dst[xc->chunk];
		u32 np;

		if (!xc->nruns)
			continue;
		np = rdmamig_precopy_src_pack(xc, x->packed);
		ret = rdmamig_chunk_register_pinned(sess, xc->b, xc->chunk,
						    x->packed, np,
						    IB_ACCESS_REMOTE_READ);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "registering '%s' chunk %u for reading failed (%d)",
					     xc->b->name, xc->chunk, ret);
			goto out;
		}
		rdmamig_precopy_src_map(xc, &cmds[n].pages);
		cmds[n].addr = cpu_to_be64(c->mr->iova);
		cmds[n].rkey = cpu_to_be32(c->mr->rkey);
		n++;
		pages += np;
	}
	if (!n)
		goto out;
	sess->round_pages += pages;
	sess->round_bytes += pages << PAGE_SHIFT;
	/* Before the send: READ_DONE may come back before it returns. */
	spin_lock_irq(&sess->slock);
	sess->reads_sent += n;
	upto = sess->reads_sent;
	spin_unlock_irq(&sess->slock);
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_READ_REQUEST, n, cmds,
				n * sizeof(*cmds));
	if (!ret)
		w->reads_upto = upto;	/* else no READ_DONE is to be waited for */
	else if (ret == -ERESTARTSYS)
		ret = rdmamig_xfer_interrupted(sess, "waiting to send a read request");
out:
	kfree(cmds);
	return ret;
}

static bool reads_done(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->reads_done) >= sess->reads_target;
}

/*
 * Wait for the READ_DONE of @w (the destination answers in order: once
 * every chunk named up to @w's request is confirmed, @w's are), then
 * deregister its chunks and unpin them.  After a failure nothing is
 * waited for: deregistering revokes the keys, so that no READ still on
 * its way can reach the pages once they are unpinned.
 */
static int pull_retire(struct rdmamig_session *sess, struct xfer_window *w)
{
	ktime_t t0 = ktime_get();
	int ret = 0;
	u32 i;

	if (w->reads_upto) {
		sess->reads_target = w->reads_upto;
		ret = rdmamig_session_wait(sess, reads_done, RDMAMIG_XFER_WAIT);
		if (ret == -ERESTARTSYS)
			ret = rdmamig_xfer_interrupted(sess, "waiting for the destination's reads");
		rdmamig_time_add(&sess->writes_wait_ns, t0);
		w->reads_upto = 0;
	}
	for (i = 0; i < w->n; i++) {
		struct xfer_chunk *xc = &w->chunks[i];

		rdmamig_chunk_unregister(sess, xc->b, xc->chunk);
		rdmamig_precopy_src_release(sess, xc);
	}
	w->n = 0;
	return ret ?: rdmamig_session_error(sess);
}

/*
 * Our registrations count against nothing of the destination's (it has
 * none), so two windows are always in flight, as many chunks each as the
 * memlock limit leaves room for: the scan's pins are all there is.
 */
static u32 pull_window_chunks(struct rdmamig_session *sess, bool *overlap)
{
	*overlap = true;
	return rdmamig_precopy_src_memlock_chunks(sess);
}

static const struct rdmamig_src_mover pull_mover = {
	.send		= pull_send,
	.retire		= pull_retire,
	.window_chunks	= pull_window_chunks,
};

static int pull_send_round(struct rdmamig_session *sess,
			   struct rdmamig_round *r, const unsigned long *bitmap)
{
	return rdmamig_precopy_src_round(sess, r, bitmap, &pull_mover);
}

/*
 * READ_DONE: the chunks of the oldest READ_REQUEST not yet confirmed are
 * read.  More confirmations than chunks named is a protocol error; which
 * chunks they name is not checked beyond their existence: the count is
 * what frees a window, and a destination that lies about what it read
 * also lies in its ACK.
 */
static void pull_read_done(struct rdmamig_session *sess, const void *payload,
			   u32 n, u32 len)
{
	const struct rdmamig_cmd_chunk *cmds = payload;
	u32 i;

	for (i = 0; i < n; i++) {
		u32 bi = be32_to_cpu(cmds[i].block), ci = be32_to_cpu(cmds[i].chunk);

		if (bi >= sess->nblocks || ci >= sess->blocks[bi]->nchunks) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "read done for block %u chunk %u, which does not exist",
					     bi, ci);
			return;
		}
	}
	spin_lock_irq(&sess->slock);
	if (sess->reads_done + n > sess->reads_sent) {
		spin_unlock_irq(&sess->slock);
		rdmamig_session_fail(sess, -EPROTO, true,
				     "read done for %u chunks, but only %llu await it",
				     n, sess->reads_sent - sess->reads_done);
		return;
	}
	WRITE_ONCE(sess->reads_done, sess->reads_done + n);
	spin_unlock_irq(&sess->slock);
	wake_up_all(&sess->wait);
}

static const struct rdmamig_msg_handler pull_src_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_RAM_BLOCKS_RESULT]	= { rdmamig_precopy_src_blocks_agreed, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_CHANNELS_RESULT]	= { rdmamig_chan_src_result, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_READ_DONE]		= { pull_read_done, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_ACK]		= { rdmamig_precopy_src_ack, RDMAMIG_PHASE_AGREED },
};

const struct rdmamig_mode_ops rdmamig_pull_src_ops = {
	.name		= "pull source",
	.msgs		= pull_src_msgs,
	.start		= pull_src_start,
	.send_round	= pull_send_round,
	.end_round	= rdmamig_precopy_src_end_round,
	.complete	= rdmamig_precopy_src_complete,
};
