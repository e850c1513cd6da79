// SPDX-License-Identifier: GPL-2.0
/*
 * The control channel: SEND/RECV messages with a header, credit-based
 * flow control, validation of every header, in-order dispatch in a work
 * item, keepalive, and the ERROR-then-disconnect path of a failure.
 *
 * Credits: each side posts RDMAMIG_RX_DEPTH receive buffers and starts
 * with as many credits as the peer posted (rdma_cm private data).  Every
 * message spends one credit and carries in its header the buffers its
 * sender re-posted since its last message.  Ordinary messages need two
 * credits, READY and ERROR one: the last credit is kept for returning
 * credits, so both sides can never wait on each other.  Credits are read
 * in the receive completion, not in the work, so a work blocked sending a
 * reply still sees credits arrive.
 */
#include "rdmamig.h"

#include <linux/slab.h>

#include "hostile.h"
#include "proto.h"
#include "session.h"
#include "chan.h"
#include "ctrl.h"
#include "msg.h"

#define CTRL_SEND_TIMEOUT	(30 * HZ)

static void ctrl_rx_done(struct ib_cq *cq, struct ib_wc *wc);
static void ctrl_tx_done(struct ib_cq *cq, struct ib_wc *wc);
static void rx_error(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *b);

static int alloc_bufs(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *bufs,
		      int n, enum dma_data_direction dir,
		      void (*done)(struct ib_cq *cq, struct ib_wc *wc))
{
	struct ib_device *dev = sess->conn.pd->device;
	int i;

	for (i = 0; i < n; i++) {
		struct rdmamig_ctrl_buf *b = &bufs[i];

		b->sess = sess;
		b->cqe.done = done;
		b->data = kmalloc(RDMAMIG_MSG_SIZE, GFP_KERNEL);
		if (!b->data)
			return -ENOMEM;
		b->dma = ib_dma_map_single(dev, b->data, RDMAMIG_MSG_SIZE, dir);
		if (ib_dma_mapping_error(dev, b->dma)) {
			kfree(b->data);
			b->data = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static void free_bufs(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *bufs,
		      int n, enum dma_data_direction dir)
{
	int i;

	if (!bufs)
		return;
	for (i = 0; i < n; i++) {
		if (!bufs[i].data)
			continue;
		ib_dma_unmap_single(sess->conn.pd->device, bufs[i].dma,
				    RDMAMIG_MSG_SIZE, dir);
		kfree(bufs[i].data);
	}
	kfree(bufs);
}

/* Buffers for both directions; receives are posted by the caller. */
int rdmamig_ctrl_create(struct rdmamig_session *sess)
{
	int i, ret;

	sess->conn.rx = kcalloc(RDMAMIG_RX_DEPTH, sizeof(*sess->conn.rx), GFP_KERNEL);
	sess->conn.tx = kcalloc(RDMAMIG_TX_DEPTH, sizeof(*sess->conn.tx), GFP_KERNEL);
	if (!sess->conn.rx || !sess->conn.tx)
		return -ENOMEM;
	ret = alloc_bufs(sess, sess->conn.rx, RDMAMIG_RX_DEPTH, DMA_FROM_DEVICE,
			 ctrl_rx_done);
	if (ret)
		return ret;
	ret = alloc_bufs(sess, sess->conn.tx, RDMAMIG_TX_DEPTH, DMA_TO_DEVICE,
			 ctrl_tx_done);
	if (ret)
		return ret;
	for (i = 0; i < RDMAMIG_TX_DEPTH; i++)
		list_add_tail(&sess->conn.tx[i].list, &sess->conn.tx_free);
	return 0;
}

/* After the QP is drained: no completion can touch the buffers. */
void rdmamig_ctrl_destroy(struct rdmamig_session *sess)
{
	free_bufs(sess, sess->conn.rx, RDMAMIG_RX_DEPTH, DMA_FROM_DEVICE);
	free_bufs(sess, sess->conn.tx, RDMAMIG_TX_DEPTH, DMA_TO_DEVICE);
	sess->conn.rx = NULL;
	sess->conn.tx = NULL;
	INIT_LIST_HEAD(&sess->conn.tx_free);
	INIT_LIST_HEAD(&sess->conn.rx_queue);
}

static int post_recv(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *b)
{
	struct ib_sge sge = {
		.addr = b->dma,
		.length = RDMAMIG_MSG_SIZE,
		.lkey = sess->conn.pd->local_dma_lkey,
	};
	struct ib_recv_wr wr = {
		.wr_cqe = &b->cqe,
		.sg_list = &sge,
		.num_sge = 1,
	};

	return ib_post_recv(sess->conn.chans[0].qp, &wr, NULL);
}

int rdmamig_ctrl_post_all_recvs(struct rdmamig_session *sess)
{
	int i, ret;

	for (i = 0; i < RDMAMIG_RX_DEPTH; i++) {
		ret = post_recv(sess, &sess->conn.rx[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static bool flushed(struct ib_wc *wc)
{
	return wc->status == IB_WC_WR_FLUSH_ERR;
}

static void ctrl_tx_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rdmamig_ctrl_buf *b =
		container_of(wc->wr_cqe, struct rdmamig_ctrl_buf, cqe);
	struct rdmamig_session *sess = b->sess;
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	list_add_tail(&b->list, &sess->conn.tx_free);
	sess->conn.chans[0].sq_avail++;
	spin_unlock_irqrestore(&sess->slock, flags);
	wake_up_all(&sess->conn.tx_wait);

	if (wc->status != IB_WC_SUCCESS && !flushed(wc))
		rdmamig_session_fail(sess, -EIO, false, "control send failed: %s",
				     ib_wc_status_msg(wc->status));
}

static void ctrl_rx_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rdmamig_ctrl_buf *b =
		container_of(wc->wr_cqe, struct rdmamig_ctrl_buf, cqe);
	struct rdmamig_session *sess = b->sess;
	struct rdmamig_msg_hdr *hdr = b->data;
	unsigned long flags;
	u16 credits = 0;
	bool bad = false;

	if (wc->status != IB_WC_SUCCESS) {
		if (!flushed(wc))
			rdmamig_session_fail(sess, -EIO, false,
					     "control receive failed: %s",
					     ib_wc_status_msg(wc->status));
		return;
	}
	b->byte_len = wc->byte_len;
	ib_dma_sync_single_for_cpu(sess->conn.pd->device, b->dma, RDMAMIG_MSG_SIZE,
				   DMA_FROM_DEVICE);
	if (b->byte_len >= sizeof(*hdr))
		credits = be16_to_cpu(hdr->credits);
	/* Before the buffer is queued: once queued, the work may re-post it. */
	rx_error(sess, b);

	spin_lock_irqsave(&sess->slock, flags);
	/* The peer cannot grant more buffers than it has. */
	if (credits > sess->conn.peer_depth - sess->conn.credits)
		bad = true;
	else
		sess->conn.credits += credits;
	list_add_tail(&b->list, &sess->conn.rx_queue);
	sess->conn.last_rx = jiffies;
	spin_unlock_irqrestore(&sess->slock, flags);

	if (bad)
		rdmamig_session_fail(sess, -EPROTO, true,
				     "peer granted %u credits, more than it has",
				     credits);
	wake_up_all(&sess->conn.tx_wait);
	rdmamig_session_queue_work(sess, sess->conn.wq, &sess->conn.rx_work);
}

/* Take a send buffer, a send-queue slot and a credit, or nothing. */
static struct rdmamig_ctrl_buf *tx_get(struct rdmamig_session *sess,
				       enum rdmamig_msg_type type, u16 *grant)
{
	int reserve = (type == RDMAMIG_MSG_READY ||
		       type == RDMAMIG_MSG_ERROR) ? 1 : 2;
	struct rdmamig_ctrl_buf *b = NULL;
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	if (!list_empty(&sess->conn.tx_free) && sess->conn.chans[0].sq_avail > 0 &&
	    sess->conn.credits >= reserve) {
		b = list_first_entry(&sess->conn.tx_free, struct rdmamig_ctrl_buf,
				     list);
		list_del(&b->list);
		sess->conn.chans[0].sq_avail--;
		sess->conn.credits--;
		*grant = sess->conn.grant;
		sess->conn.grant = 0;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
	return b;
}

static void tx_put_back(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *b,
			u16 grant)
{
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	list_add(&b->list, &sess->conn.tx_free);
	sess->conn.chans[0].sq_avail++;
	sess->conn.credits++;
	sess->conn.grant += grant;
	spin_unlock_irqrestore(&sess->slock, flags);
}

static int post_msg(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *b,
		    enum rdmamig_msg_type type, u32 repeat, const void *payload,
		    u32 len, u16 grant)
{
	struct rdmamig_msg_hdr *hdr = b->data;
	struct ib_sge sge = {
		.addr = b->dma,
		.length = sizeof(*hdr) + len,
		.lkey = sess->conn.pd->local_dma_lkey,
	};
	struct ib_send_wr wr = {
		.wr_cqe = &b->cqe,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IB_WR_SEND,
		.send_flags = IB_SEND_SIGNALED,
	};
	int ret;

	hdr->len = cpu_to_be32(len);
	hdr->type = cpu_to_be16(type);
	hdr->credits = cpu_to_be16(grant);
	hdr->repeat = cpu_to_be32(repeat);
	hdr->reserved = 0;
	if (len)
		memcpy(hdr + 1, payload, len);
	rdmamig_hostile_mangle(sess, hdr, &sge.length);
	/* sge.length: a hostile mode may have made the message longer. */
	ib_dma_sync_single_for_device(sess->conn.pd->device, b->dma,
				      max_t(u32, sge.length, sizeof(*hdr) + len),
				      DMA_TO_DEVICE);
	ret = ib_post_send(sess->conn.chans[0].qp, &wr, NULL);
	if (ret)
		tx_put_back(sess, b, grant);
	return ret;
}

/**
 * rdmamig_ctrl_send() - send one control message, waiting for a credit
 * @sess: a connected session
 * @type: message type
 * @repeat: commands in @payload
 * @payload: the commands, already in wire byte order
 * @len: bytes of @payload, at most RDMAMIG_MSG_PAYLOAD
 *
 * Sleeps, interruptibly.  Return: 0, the session's error if it failed
 * meanwhile, -ERESTARTSYS on a signal (nothing sent), -ESHUTDOWN once
 * teardown began, -ETIMEDOUT if the peer returned no credit for 30 s.
 */
int rdmamig_ctrl_send(struct rdmamig_session *sess, enum rdmamig_msg_type type,
		      u32 repeat, const void *payload, u32 len)
{
	struct rdmamig_ctrl_buf *b = NULL;
	u16 grant = 0;
	long left;
	int ret;

	if (WARN_ON_ONCE(len > RDMAMIG_MSG_PAYLOAD))
		return -EINVAL;
	/*
	 * A completed session is not dead, and its rx work may be waiting
	 * here for a credit when teardown begins: @closing ends the wait.
	 */
	left = wait_event_interruptible_timeout(sess->conn.tx_wait,
				  rdmamig_session_dead(sess) ||
				  rdmamig_session_closing(sess) ||
				  (b = tx_get(sess, type, &grant)),
				  CTRL_SEND_TIMEOUT);
	if (!b && rdmamig_session_closing(sess))
		return rdmamig_session_error(sess) ?: -ESHUTDOWN;
	/*
	 * Only a VMM's thread gets signals (the works never do).  Nothing
	 * was sent: the call can be restarted, and the session goes on;
	 * a caller that had sent part of something fails it itself.
	 */
	if (!b && left < 0)
		return -ERESTARTSYS;
	if (!b) {
		ret = rdmamig_session_error(sess);
		if (!ret) {
			ret = -ETIMEDOUT;
			rdmamig_session_fail(sess, ret, false,
					     "peer returned no credit for %d s",
					     CTRL_SEND_TIMEOUT / HZ);
		}
		return ret;
	}
	if (rdmamig_session_dead(sess) || rdmamig_session_closing(sess)) {
		tx_put_back(sess, b, grant);
		return rdmamig_session_error(sess) ?: -ESHUTDOWN;
	}
	ret = post_msg(sess, b, type, repeat, payload, len, grant);
	if (ret)
		rdmamig_session_fail(sess, ret, false, "posting a send failed");
	return ret;
}

/*
 * Channel 0's slots are shared with the control messages; each extra
 * channel counts its own.  One lock for all: the data path posts from a
 * single thread, completions only add.
 */
static int *sq_slots(struct rdmamig_session *sess, u32 ch)
{
	return &sess->conn.chans[ch].sq_avail;
}

/*
 * Send-queue slots of channel 0 the data path leaves to control messages:
 * one per send buffer and one more, so that a KEEPALIVE or an ERROR never
 * waits behind a window of RDMA WRITEs.  The peer sees no completion for
 * our WRITEs: without its keepalive it would take a busy source for a
 * silent one.
 */
#define SQ_CTRL_RESERVE		(RDMAMIG_TX_DEPTH + 1)

static bool sq_try(struct rdmamig_session *sess, u32 ch, int n)
{
	int need = ch ? n : n + SQ_CTRL_RESERVE;
	unsigned long flags;
	bool ok = false;

	spin_lock_irqsave(&sess->slock, flags);
	if (*sq_slots(sess, ch) >= need) {
		*sq_slots(sess, ch) -= n;
		ok = true;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
	return ok;
}

/**
 * rdmamig_sq_take() - reserve @n send-queue slots for work requests
 * @sess: a connected session
 * @ch: the channel whose queue pair the requests go to
 * @n: work requests about to be posted, signaled or not
 *
 * The slots come back with the completion of the last, signaled WR.
 * Return: 0, or the session's error, or -ETIMEDOUT.
 */
int rdmamig_sq_take(struct rdmamig_session *sess, u32 ch, int n)
{
	bool took = false;

	if (!wait_event_timeout(sess->conn.tx_wait, rdmamig_session_dead(sess) ||
				(took = sq_try(sess, ch, n)), CTRL_SEND_TIMEOUT))
		return -ETIMEDOUT;
	if (rdmamig_session_dead(sess)) {
		/* The slots may have come with the failure: nothing posts them. */
		if (took)
			rdmamig_sq_put(sess, ch, n);
		return rdmamig_session_error(sess);
	}
	return 0;
}

void rdmamig_sq_put(struct rdmamig_session *sess, u32 ch, int n)
{
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	*sq_slots(sess, ch) += n;
	spin_unlock_irqrestore(&sess->slock, flags);
	wake_up_all(&sess->conn.tx_wait);
}

static void rx_one(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *b)
{
	const char *why;
	u32 repeat, len;
	u16 type;

	why = rdmamig_msg_check(b->data, b->byte_len, &type, &repeat, &len);
	if (why) {
		rdmamig_session_fail(sess, -EPROTO, true, "bad message: %s", why);
		return;
	}
	/* READY and KEEPALIVE only return credits; ERROR: ctrl_rx_done(). */
	if (rdmamig_msg_is_ctrl(type))
		return;
	rdmamig_msg_dispatch(sess, type, repeat,
			     b->data + sizeof(struct rdmamig_msg_hdr), len);
}

/*
 * The peer's ERROR is acted on at once, in the completion: its disconnect
 * follows right behind it, and the reason it gives must win over our own
 * "peer disconnected".
 */
static void rx_error(struct rdmamig_session *sess, struct rdmamig_ctrl_buf *b)
{
	struct rdmamig_cmd_error *e = b->data + sizeof(struct rdmamig_msg_hdr);
	char text[sizeof(e->text)];
	u32 repeat, len, err;
	u16 type;

	if (rdmamig_msg_check(b->data, b->byte_len, &type, &repeat, &len) ||
	    type != RDMAMIG_MSG_ERROR)
		return;
	memcpy(text, e->text, sizeof(text));
	text[sizeof(text) - 1] = '\0';
	err = be32_to_cpu(e->error);
	if (!err || err > MAX_ERRNO)
		err = EIO;
	rdmamig_session_peer_failed(sess, -(int)err, text);
}

static void ctrl_rx_work(struct work_struct *work)
{
	struct rdmamig_session *sess =
		container_of(work, struct rdmamig_session, conn.rx_work);
	struct rdmamig_ctrl_buf *b;
	unsigned long flags;
	bool ready;

	for (;;) {
		spin_lock_irqsave(&sess->slock, flags);
		b = list_first_entry_or_null(&sess->conn.rx_queue,
					     struct rdmamig_ctrl_buf, list);
		if (b)
			list_del(&b->list);
		spin_unlock_irqrestore(&sess->slock, flags);
		if (!b)
			break;
		/*
		 * Teardown began: handle nothing more and re-post nothing, so
		 * that after the drain no receive is posted into buffers about
		 * to be freed.  The buffer stays off both lists; it goes with
		 * the others.
		 */
		if (rdmamig_session_closing(sess))
			return;

		if (!rdmamig_session_dead(sess))
			rx_one(sess, b);
		if (rdmamig_session_dead(sess))
			continue;
		if (post_recv(sess, b)) {
			rdmamig_session_fail(sess, -EIO, false,
					     "re-posting a receive failed");
			continue;
		}
		spin_lock_irqsave(&sess->slock, flags);
		sess->conn.grant++;
		spin_unlock_irqrestore(&sess->slock, flags);
		cond_resched();
	}

	spin_lock_irqsave(&sess->slock, flags);
	ready = sess->conn.grant >= RDMAMIG_RX_DEPTH / 2;
	spin_unlock_irqrestore(&sess->slock, flags);
	if (ready && !rdmamig_session_dead(sess) && !rdmamig_session_closing(sess))
		rdmamig_ctrl_send(sess, RDMAMIG_MSG_READY, 0, NULL, 0);
}

/*
 * Tell the peer why we failed, give the ERROR a moment to leave, then
 * disconnect: the peer's QP errors out and its session fails too.
 */
static void ctrl_fail_work(struct work_struct *work)
{
	struct rdmamig_session *sess =
		container_of(work, struct rdmamig_session, conn.fail_work);
	struct rdmamig_cmd_error e = {};
	struct rdmamig_ctrl_buf *b;
	unsigned long flags;
	bool notify;
	u16 grant;

	spin_lock_irqsave(&sess->slock, flags);
	notify = sess->conn.fail_notify;
	e.error = cpu_to_be32(-sess->error);
	strscpy(e.text, sess->reason, sizeof(e.text));
	spin_unlock_irqrestore(&sess->slock, flags);

	if (notify && sess->conn.chans[0].qp) {
		b = tx_get(sess, RDMAMIG_MSG_ERROR, &grant);
		if (b && !post_msg(sess, b, RDMAMIG_MSG_ERROR, 1, &e, sizeof(e), grant))
			wait_event_timeout(sess->conn.tx_wait,
					   READ_ONCE(sess->conn.chans[0].sq_avail) == sess->conn.chans[0].sq_depth,
					   HZ);
	}
	if (sess->conn.cm_id)
		rdma_disconnect(sess->conn.cm_id);
	rdmamig_chan_stop(sess);
}

static void ctrl_keepalive_work(struct work_struct *work)
{
	struct rdmamig_session *sess = container_of(to_delayed_work(work),
				struct rdmamig_session, conn.keepalive_work);
	unsigned long interval = msecs_to_jiffies(sess->conn.keepalive_ms);
	unsigned long deadline, next;
	struct rdmamig_ctrl_buf *b;
	u16 grant;

	if (rdmamig_session_dead(sess) ||
	    READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED)
		return;
	/* Silent for two intervals and a second: the peer is gone. */
	deadline = READ_ONCE(sess->conn.last_rx) + 2 * interval + HZ;
	if (time_after(jiffies, deadline)) {
		rdmamig_session_fail(sess, -ETIMEDOUT, false,
				     "peer silent for over %u ms",
				     2 * sess->conn.keepalive_ms + 1000);
		return;
	}
	/* Never wait here: with no credit, other traffic is flowing. */
	b = tx_get(sess, RDMAMIG_MSG_KEEPALIVE, &grant);
	if (b && post_msg(sess, b, RDMAMIG_MSG_KEEPALIVE, 0, NULL, 0, grant))
		rdmamig_session_fail(sess, -EIO, false, "posting a keepalive failed");
	/* Next send in an interval, but look again right after the deadline. */
	next = min(interval, deadline - jiffies + 1);
	rdmamig_session_queue_delayed(sess, &sess->conn.keepalive_work, next);
}

void rdmamig_ctrl_start_keepalive(struct rdmamig_session *sess)
{
	if (!sess->conn.keepalive_ms)
		return;
	sess->conn.last_rx = jiffies;
	/* Not on the ordered queue: a long registration must not stall it. */
	rdmamig_session_queue_delayed(sess, &sess->conn.keepalive_work,
				      msecs_to_jiffies(sess->conn.keepalive_ms));
}

/*
 * The peer disconnected.  Its ERROR, if it sent one, may still sit in our
 * completion queue behind the CM event: give it a moment to be read, so
 * that the session reports the peer's reason rather than the disconnect.
 */
static void ctrl_disconnect_work(struct work_struct *work)
{
	struct rdmamig_session *sess = container_of(to_delayed_work(work),
				struct rdmamig_session, conn.disconnect_work);

	if (READ_ONCE(sess->state) != RDMAMIG_STATE_COMPLETED)
		rdmamig_session_fail(sess, -ECONNRESET, false, "peer disconnected");
}

void rdmamig_ctrl_peer_disconnected(struct rdmamig_session *sess)
{
	rdmamig_session_queue_delayed(sess, &sess->conn.disconnect_work, HZ / 5);
}

/*
 * Works exist from session creation on, so that every teardown, the
 * second one included, cancels them all; the ordered queue that runs the
 * rx and failure works only once the session starts.
 */
void rdmamig_ctrl_init(struct rdmamig_session *sess)
{
	INIT_WORK(&sess->conn.rx_work, ctrl_rx_work);
	INIT_WORK(&sess->conn.fail_work, ctrl_fail_work);
	INIT_DELAYED_WORK(&sess->conn.keepalive_work, ctrl_keepalive_work);
	INIT_DELAYED_WORK(&sess->conn.disconnect_work, ctrl_disconnect_work);
}
