// SPDX-License-Identifier: GPL-2.0
/*
 * The transfer engine: moves a run of local pages to (RDMA WRITE) or from
 * (RDMA READ) a chunk of the peer's memory it registered, through
 * rdma_rw, and tells when the batch the run belongs to is done.  What to
 * move, and when, is the modes' business (precopy_src.c writes the dirty
 * pages of a round; the destination of a pull would read the pages it
 * misses); the engine owns the ways of moving: one context per run,
 * channels in turn, pacing under a keepalive (pace.c), max-bandwidth,
 * send-queue slots (ctrl.c), and completions.
 */
#include "rdmamig.h"

#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <rdma/rw.h>

#include "session.h"
#include "chan.h"
#include "conn.h"
#include "ctrl.h"
#include "pace.h"
#include "xfer.h"

/*
 * Off by default: in the QEMU testbed (rxe under TCG, THP on) it moved no
 * faster than whole chunks, and zero-heavy memory slower, because the
 * destination then pins run by run (Documentation/performance.rst).
 */
static bool sparse;
module_param(sparse, bool, 0644);
MODULE_PARM_DESC(sparse, "dynamic registration exposes only the pages a window writes, one RDMA WRITE per chunk (default: off: whole chunks, one WRITE per run of pages)");

/* Offer (source) or grant (destination) RDMAMIG_WIRE_CAP_SPARSE? */
bool rdmamig_xfer_sparse(void)
{
	return READ_ONCE(sparse);
}

/* One RDMA WRITE or READ of a run of pages. */
struct rdmamig_xfer_io {
	struct ib_cqe cqe;	/* the last WR's, signaled */
	struct ib_cqe err_cqe;	/* the others': they complete only on error */
	struct rdmamig_session *sess;
	struct rdmamig_xfer_batch *batch;
	struct rdma_rw_ctx ctx;
	struct sg_table sgt;
	struct ib_qp *qp;	/* of channel @ch: the context is bound to it */
	u32 ch;
	int nwr;
	u64 bytes;
	bool posted;
};

static enum dma_data_direction dma_dir(const struct rdmamig_xfer_batch *batch)
{
	return batch->dir == RDMAMIG_XFER_WRITE ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
}

static const char *dir_name(const struct rdmamig_xfer_batch *batch)
{
	return batch->dir == RDMAMIG_XFER_WRITE ? "RDMA WRITE" : "RDMA READ";
}

/*
 * A signal ended a sleep of the data path: fail the session (the peer is
 * told), because what was moved of a round or a handshake cannot be
 * resumed by calling again.  The VMM sees EINTR.
 */
int rdmamig_xfer_interrupted(struct rdmamig_session *sess, const char *during)
{
	rdmamig_session_fail(sess, -EINTR, true, "interrupted by a signal %s",
			     during);
	return -EINTR;
}

/**
 * rdmamig_xfer_batch_start() - ready @batch for up to @maxio transfers
 * @sess: the session
 * @batch: zeroed, or finished
 * @dir: which way every transfer of the batch goes
 * @maxio: rdmamig_xfer_ios() summed over the runs to post
 *
 * Return: 0 or -ENOMEM.
 */
int rdmamig_xfer_batch_start(struct rdmamig_session *sess,
			     struct rdmamig_xfer_batch *batch,
			     enum rdmamig_xfer_dir dir, u32 maxio)
{
	batch->dir = dir;
	batch->failed = false;
	batch->nio = 0;
	batch->ios = kvcalloc(maxio, sizeof(*batch->ios), GFP_KERNEL);
	if (!batch->ios)
		return -ENOMEM;
	batch->maxio = maxio;
	return 0;
}

/**
 * rdmamig_xfer_batch_urgent() - make @batch one of post-copy's fetches
 * @sess: the session
 * @batch: started, nothing posted yet
 * @fault: for a fault, or for the sweep
 *
 * A fault's READs go on channel 0 and the sweep's on the others, when
 * there are others: a fault then waits for no sweep READ queued ahead of
 * it on its queue pair.  With one channel both share it.
 */
void rdmamig_xfer_batch_urgent(struct rdmamig_session *sess,
			       struct rdmamig_xfer_batch *batch, bool fault)
{
	u32 nchan = max_t(u32, READ_ONCE(sess->conn.nchan), 1);

	batch->urgent = true;
	batch->ch_first = (fault || nchan == 1) ? 0 : 1;
	batch->ch_count = (fault || nchan == 1) ? 1 : nchan - 1;
}

/* Transfers rdmamig_xfer_post() may make of @npages: see pace.c. */
u32 rdmamig_xfer_ios(struct rdmamig_session *sess, u32 npages)
{
	return READ_ONCE(sess->conn.keepalive_ms) ?
	       DIV_ROUND_UP(npages, RDMAMIG_PACE_MIN_PAGES) : 1;
}

static void io_failed(struct rdmamig_xfer_io *io, struct ib_wc *wc)
{
	WRITE_ONCE(io->batch->failed, true);
	if (wc->status != IB_WC_WR_FLUSH_ERR)
		rdmamig_session_fail(io->sess, -EIO, false,
				     "%s failed on channel %u: %s",
				     dir_name(io->batch), io->ch,
				     ib_wc_status_msg(wc->status));
}

static void io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rdmamig_xfer_io *io = container_of(wc->wr_cqe, struct rdmamig_xfer_io, cqe);
	struct rdmamig_session *sess = io->sess;

	rdmamig_pace_done(sess, io->ch, io->bytes);
	rdmamig_sq_put(sess, io->ch, io->nwr);
	if (wc->status != IB_WC_SUCCESS)
		io_failed(io, wc);
	atomic_dec(&io->batch->inflight);
	wake_up_all(&sess->conn.tx_wait);
}

/*
 * An unsignaled WR of a transfer (rdma_rw splits one past the device's
 * max_read_sge or max_send_sge into several, and signals the last only)
 * completes only when it failed: the QP then goes to the error state and
 * the last WR is flushed.  Without a handler of its own the completion
 * would be dropped by the CQ core (a NULL wr_cqe), and the flush would be
 * all we saw.  The last WR's io_done() accounts for the slots and pacing.
 */
static void io_err_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rdmamig_xfer_io *io = container_of(wc->wr_cqe, struct rdmamig_xfer_io, err_cqe);

	if (wc->status != IB_WC_SUCCESS)
		io_failed(io, wc);
}

/**
 * rdmamig_xfer_throttle() - hold the data path to max-bandwidth
 * @sess: the session
 *
 * Measured from the round's start.  A cancel or failure ends the sleep:
 * it must not wait out the limit, which SET_SESSION may lower to 1 B/s
 * while the round's windows are pinned.  So does a signal, which fails
 * the session.
 * Return: 0, or -EINTR.
 */
int rdmamig_xfer_throttle(struct rdmamig_session *sess)
{
	u64 bw = READ_ONCE(sess->params.max_bandwidth);	/* SET_SESSION */
	s64 ahead_ns;

	if (!bw)
		return 0;
	/* Past 18 GB a round, round_bytes * NSEC_PER_SEC wraps. */
	ahead_ns = min_t(u64, rdmamig_mul_div_sat(sess->round_bytes, NSEC_PER_SEC, bw),
			 S64_MAX) -
		   ktime_to_ns(ktime_sub(ktime_get(), sess->round_start));
	if (ahead_ns <= 0)
		return 0;
	if (wait_event_interruptible_timeout(sess->wait, rdmamig_session_dead(sess),
					     nsecs_to_jiffies(ahead_ns) ?: 1) < 0)
		return rdmamig_xfer_interrupted(sess, "while held to max-bandwidth");
	return 0;
}

/*
 * Move @n pages between @pages and @raddr of the peer's key @rkey, or the
 * first of them only: under a keepalive, channel 0's transfers are cut
 * to rdmamig_pace_max_pages() (pace.c), and rdmamig_xfer_post() posts the
 * rest.
 *
 * Transfers go round-robin over the channels (for a bulk round, one run
 * is one chunk: chunk i goes to channel i % channels).  RC orders them
 * only within one QP, and nothing needs more: every message whose
 * meaning depends on earlier transfers being done is sent only after
 * their completions arrived, whatever channel they went on (the modes
 * wait with rdmamig_xfer_finish()).  An RC WRITE completes once the peer
 * acknowledged it; a READ once its data is here.
 *
 * Return: the pages posted, or a negative errno.
 */
static int post_one(struct rdmamig_session *sess, struct rdmamig_xfer_io *io,
		    struct page **pages, u32 n, u64 raddr, u32 rkey)
{
	struct rdmamig_xfer_batch *batch = io->batch;
	u32 nchan = max_t(u32, READ_ONCE(sess->conn.nchan), 1);
	struct ib_send_wr *first, *wr;
	int ret;

	if (batch->urgent) {
		io->ch = batch->ch_first + batch->nio % batch->ch_count;
	} else {
		io->ch = sess->next_chan++ % nchan;
		ret = rdmamig_xfer_throttle(sess);
		if (ret)
			return ret;
	}
	io->qp = rdmamig_conn_qp(&sess->conn, io->ch);
	n = min(n, rdmamig_pace_max_pages(sess, io->ch));
	ret = sg_alloc_table_from_pages(&io->sgt, pages, n, 0,
					(unsigned long)n << PAGE_SHIFT, GFP_KERNEL);
	if (ret)
		return ret;
	ret = rdma_rw_ctx_init(&io->ctx, io->qp, sess->conn.port_num, io->sgt.sgl,
			       io->sgt.orig_nents, 0, raddr, rkey, dma_dir(batch));
	if (ret < 0) {
		sg_free_table(&io->sgt);
		return ret;
	}
	io->nwr = ret;
	io->bytes = (u64)n << PAGE_SHIFT;
	io->sess = sess;
	io->cqe.done = io_done;
	io->err_cqe.done = io_err_done;
	ret = rdmamig_pace_take(sess, io->ch, io->bytes, RDMAMIG_XFER_WAIT);
	if (ret)
		goto err_ctx;
	ret = rdmamig_sq_take(sess, io->ch, io->nwr);
	if (ret)
		goto err_pace;
	atomic_inc(&batch->inflight);
	first = rdma_rw_ctx_wrs(&io->ctx, io->qp, sess->conn.port_num, &io->cqe, NULL);
	for (wr = first; wr; wr = wr->next)
		if (!wr->wr_cqe)
			wr->wr_cqe = &io->err_cqe;
	ret = ib_post_send(io->qp, first, NULL);
	if (ret) {
		atomic_dec(&batch->inflight);
		rdmamig_sq_put(sess, io->ch, io->nwr);
		goto err_pace;
	}
	io->posted = true;
	if (!batch->urgent) {
		sess->round_pages += n;
		sess->round_bytes += io->bytes;
	}
	return n;

err_pace:
	rdmamig_pace_undo(sess, io->ch, io->bytes);
err_ctx:
	rdma_rw_ctx_destroy(&io->ctx, io->qp, sess->conn.port_num, io->sgt.sgl,
			    io->sgt.orig_nents, dma_dir(batch));
	sg_free_table(&io->sgt);
	return ret;
}

/**
 * rdmamig_xfer_post() - move @n pages between @pages and @raddr
 * @sess: a connected session; called by one thread at a time
 * @batch: started, with room for rdmamig_xfer_ios(@n) more transfers
 * @pages: pinned until rdmamig_xfer_finish()
 * @n: pages
 * @raddr: in the peer's registration of @rkey
 * @rkey: the peer's key
 *
 * Posts as many transfers as pacing cuts the run into; they complete on
 * their own.  Return: 0 or a negative errno (the session's, often).
 */
int rdmamig_xfer_post(struct rdmamig_session *sess,
		      struct rdmamig_xfer_batch *batch, struct page **pages,
		      u32 n, u64 raddr, u32 rkey)
{
	struct rdmamig_xfer_io *io;
	int ret;

	while (n) {
		if (WARN_ON_ONCE(batch->nio >= batch->maxio))
			return -EOVERFLOW;
		io = &batch->ios[batch->nio++];
		io->batch = batch;
		ret = post_one(sess, io, pages, n, raddr, rkey);
		if (ret < 0)
			return ret;
		pages += ret;
		raddr += (u64)ret << PAGE_SHIFT;
		n -= ret;
	}
	return 0;
}

static bool batch_idle(struct rdmamig_xfer_batch *batch)
{
	return atomic_read(&batch->inflight) == 0;
}

/**
 * rdmamig_xfer_finish() - wait for every transfer of @batch, release them
 * @sess: the session
 * @batch: started or not
 *
 * Transfers posted before a failure are waited for too: their pages stay
 * pinned and DMA-mapped until the QP is done with them.  That wait always
 * ends, with no help from the peer: every posted transfer completes,
 * done, failed once the transport's retries ran out (retry_count 7), or
 * flushed when its QP enters the error state, which the disconnect of a
 * failed or cancelled session (ctrl_fail_work()) does at once.  A signal
 * fails the session, so that the flush ends the wait without the peer.
 * The caller looks at the session's error afterwards.
 */
void rdmamig_xfer_finish(struct rdmamig_session *sess,
			 struct rdmamig_xfer_batch *batch)
{
	ktime_t t0 = ktime_get();
	u32 i;

	if (wait_event_interruptible(sess->conn.tx_wait, batch_idle(batch)))
		rdmamig_xfer_interrupted(sess, batch->dir == RDMAMIG_XFER_WRITE ?
					 "waiting for RDMA WRITEs to complete" :
					 "waiting for RDMA READs to complete");
	wait_event(sess->conn.tx_wait, batch_idle(batch));
	rdmamig_time_add(&sess->writes_wait_ns, t0);
	/*
	 * A flushed transfer moved nothing: never count it as done.  Its
	 * cause failed the session already, unless only the flush was
	 * seen (a peer's QP that failed without telling us).
	 */
	if (READ_ONCE(batch->failed))
		rdmamig_session_fail(sess, -EIO, false, "an %s was flushed: its queue pair failed",
				     dir_name(batch));
	for (i = 0; i < batch->nio; i++) {
		struct rdmamig_xfer_io *io = &batch->ios[i];

		if (!io->posted)
			continue;
		rdma_rw_ctx_destroy(&io->ctx, io->qp, sess->conn.port_num,
				    io->sgt.sgl, io->sgt.orig_nents, dma_dir(batch));
		sg_free_table(&io->sgt);
	}
	kvfree(batch->ios);
	batch->ios = NULL;
	batch->nio = 0;
	batch->maxio = 0;
}

/**
 * rdmamig_xfer_finish_reads() - rdmamig_xfer_finish() for a reader
 * @sess: the session
 * @batch: READs posted
 *
 * After a failure, READs in flight end only once the queue pairs are in
 * the error state, which the failure work does; but a reader may run in
 * the ordered work that work waits behind (pull_dst.c), or hold what
 * teardown waits for (post-copy's fetches).  Move them there ourselves,
 * as the failure work would: rdma_disconnect() once more is harmless.
 * Without that, the wait would last until the transport gave up on a
 * vanished peer.
 */
void rdmamig_xfer_finish_reads(struct rdmamig_session *sess,
			       struct rdmamig_xfer_batch *batch)
{
	ktime_t t0 = ktime_get();

	wait_event(sess->conn.tx_wait, batch_idle(batch) ||
				       rdmamig_session_dead(sess) ||
				       rdmamig_session_closing(sess));
	/* rdmamig_xfer_finish() adds what it waits on top. */
	rdmamig_time_add(&sess->writes_wait_ns, t0);
	if (!batch_idle(batch)) {
		if (sess->conn.cm_id)
			rdma_disconnect(sess->conn.cm_id);
		rdmamig_chan_stop(sess);
	}
	rdmamig_xfer_finish(sess, batch);
}
