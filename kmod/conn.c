// SPDX-License-Identifier: GPL-2.0
/*
 * The connection object: create and destroy, in pairs and in order, what
 * a session holds on the device.  Created by cm.c when a route resolves
 * (source) or a connect request arrives (destination), on the cm_id's
 * device; torn down by rdmamig_session_teardown(), which calls the steps
 * below in its own order: stop the works, drain the queues, destroy.
 *
 *   rdmamig_conn_create()     PD, channel 0's CQ and QP, control buffers,
 *                             receives posted; unwinds itself on failure
 *   rdmamig_conn_stop()       every work of the connection stopped
 *   rdmamig_conn_drain()      disconnected, every channel drained: after
 *                             it no completion comes
 *   rdmamig_conn_destroy()    QPs, then CQs (ib_free_cq() waits for a
 *                             running handler), then what completions
 *                             point at: control buffers, registrations;
 *                             then the PD and the cm_id
 *
 * The ordered workqueue outlives the connection: a destination whose
 * accept failed keeps listening with it, so it goes in
 * rdmamig_conn_free_wq(), last.
 */
#include "rdmamig.h"

#include "session.h"
#include "block.h"
#include "chan.h"
#include "conn.h"
#include "ctrl.h"
#include "hostile.h"

/* Lists, wait queue and works exist from session creation on. */
void rdmamig_conn_init(struct rdmamig_session *sess)
{
	struct rdmamig_conn *conn = &sess->conn;

	INIT_LIST_HEAD(&conn->tx_free);
	INIT_LIST_HEAD(&conn->rx_queue);
	init_waitqueue_head(&conn->tx_wait);
	rdmamig_ctrl_init(sess);
}

int rdmamig_conn_alloc_wq(struct rdmamig_session *sess)
{
	struct workqueue_struct *wq;

	wq = alloc_ordered_workqueue("rdmamig-%u", WQ_MEM_RECLAIM, sess->id);
	if (!wq)
		return -ENOMEM;
	spin_lock_irq(&sess->slock);
	sess->conn.wq = wq;
	spin_unlock_irq(&sess->slock);
	return 0;
}

void rdmamig_conn_free_wq(struct rdmamig_session *sess)
{
	struct workqueue_struct *wq;

	spin_lock_irq(&sess->slock);
	wq = sess->conn.wq;
	sess->conn.wq = NULL;
	spin_unlock_irq(&sess->slock);
	if (wq)
		destroy_workqueue(wq);
}

/* Channel 0: the cm_id's QP, with a CQ shared by sends and receives. */
static int create_chan0(struct rdmamig_session *sess, struct rdma_cm_id *id)
{
	struct rdmamig_chan *c = &sess->conn.chans[0];
	struct ib_device *dev = id->device;
	struct ib_qp_init_attr attr = {};
	int ret;

	c->sess = sess;
	c->index = 0;
	c->sq_depth = RDMAMIG_SQ_DEPTH;
	c->sq_avail = RDMAMIG_SQ_DEPTH;
	/* Flushed WRs complete even when unsignaled: room for all of them. */
	c->cq = ib_alloc_cq(dev, sess,
			    RDMAMIG_SQ_DEPTH * 2 + RDMAMIG_RX_DEPTH + 2, 0,
			    IB_POLL_SOFTIRQ);
	if (IS_ERR(c->cq)) {
		ret = PTR_ERR(c->cq);
		c->cq = NULL;
		return ret;
	}
	attr.send_cq = c->cq;
	attr.recv_cq = c->cq;
	attr.qp_type = IB_QPT_RC;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.port_num = id->port_num;
	attr.cap.max_send_wr = RDMAMIG_SQ_DEPTH + 1;	/* + drain */
	attr.cap.max_recv_wr = RDMAMIG_RX_DEPTH + 1;	/* + drain */
	attr.cap.max_send_sge = min_t(u32, dev->attrs.max_send_sge, 32);
	attr.cap.max_recv_sge = 1;
	attr.cap.max_rdma_ctxs = RDMAMIG_RW_CTXS;
	ret = rdma_create_qp(id, sess->conn.pd, &attr);
	if (ret) {
		ib_free_cq(c->cq);
		c->cq = NULL;
		return ret;
	}
	c->qp = id->qp;
	c->connected = true;
	return 0;
}

/* The caller cleared the cm_id's pointer: the QP is ours to destroy. */
static void destroy_chan0(struct rdmamig_session *sess)
{
	struct rdmamig_chan *c = &sess->conn.chans[0];

	if (c->qp) {
		ib_destroy_qp(c->qp);
		c->qp = NULL;
	}
	if (c->cq) {
		ib_free_cq(c->cq);
		c->cq = NULL;
	}
	c->connected = false;
}

/**
 * rdmamig_conn_create() - the session's resources on @id's device
 * @sess: a session in SETUP
 * @id: channel 0's cm_id, not yet connected
 *
 * From the CM handler.  On failure nothing is left: the caller rejects
 * or fails.  The caller stores @id in conn.cm_id once it keeps it.
 * Return: 0 or a negative errno.
 */
int rdmamig_conn_create(struct rdmamig_session *sess, struct rdma_cm_id *id)
{
	struct rdmamig_conn *conn = &sess->conn;
	unsigned long flags;
	int ret;

	conn->pd = ib_alloc_pd(id->device, 0);
	if (IS_ERR(conn->pd)) {
		ret = PTR_ERR(conn->pd);
		conn->pd = NULL;
		return ret;
	}
	conn->port_num = id->port_num;
	ret = create_chan0(sess, id);
	if (ret)
		goto err_pd;
	ret = rdmamig_ctrl_create(sess);
	if (ret)
		goto err_chan0;
	ret = rdmamig_ctrl_post_all_recvs(sess) ?: rdmamig_hostile_conn_create(sess);
	if (ret)
		goto err_chan0;

	spin_lock_irqsave(&sess->slock, flags);
	sess->ibdev = id->device;
	conn->nchan = 1;
	spin_unlock_irqrestore(&sess->slock, flags);
	return 0;

err_chan0:
	/* Receives posted so far are flushed before their buffers go. */
	id->qp = NULL;
	destroy_chan0(sess);
	rdmamig_ctrl_destroy(sess);
err_pd:
	ib_dealloc_pd(conn->pd);
	conn->pd = NULL;
	return ret;
}

/*
 * Stop every work of the connection.  Teardown set @closing first: none
 * is queued again.  The failure work runs to its end, so that the peer
 * still learns why; the rx work sees @closing and handles nothing more.
 */
void rdmamig_conn_stop(struct rdmamig_session *sess)
{
	struct rdmamig_conn *conn = &sess->conn;

	cancel_delayed_work_sync(&conn->keepalive_work);
	cancel_delayed_work_sync(&conn->disconnect_work);
	flush_work(&conn->fail_work);
	cancel_work_sync(&conn->rx_work);
}

/**
 * rdmamig_conn_drain() - disconnect and drain every channel
 * @sess: the session, its works stopped
 * @let_sends_leave: wait (a second at most) for channel 0's sends to
 *	complete first: a completed destination's last ACK
 *
 * Nothing can post any more; after the drains no completion comes.
 */
void rdmamig_conn_drain(struct rdmamig_session *sess, bool let_sends_leave)
{
	struct rdmamig_conn *conn = &sess->conn;
	struct rdmamig_chan *c0 = &conn->chans[0];
	u32 i;

	if (!c0->qp)
		return;
	if (let_sends_leave)
		wait_event_timeout(conn->tx_wait,
				   READ_ONCE(c0->sq_avail) == c0->sq_depth, HZ);
	if (conn->cm_id)
		rdma_disconnect(conn->cm_id);
	for (i = 0; i < RDMAMIG_CHANNELS_MAX; i++)
		if (conn->chans[i].qp && conn->chans[i].connected)
			ib_drain_qp(conn->chans[i].qp);
}

/*
 * Undo rdmamig_conn_create() and whatever the channels and registrations
 * added, after rdmamig_conn_drain() (or on a QP that never connected):
 * QPs first, then the CQs, whose freeing waits for a running completion
 * handler; only then what completions point at, the control buffers and
 * the registrations; then the PD and the cm_id.  A destination whose
 * accept failed calls it with conn.cm_id still NULL: the CM destroys
 * that id, and the listener stays.
 */
void rdmamig_conn_destroy(struct rdmamig_session *sess)
{
	struct rdmamig_conn *conn = &sess->conn;

	rdmamig_chan_destroy(sess);
	if (conn->cm_id)
		conn->cm_id->qp = NULL;
	destroy_chan0(sess);
	if (conn->pd) {
		rdmamig_ctrl_destroy(sess);
		rdmamig_blocks_unregister(sess);
		ib_dealloc_pd(conn->pd);
		conn->pd = NULL;
	}
	if (conn->cm_id) {
		rdma_destroy_id(conn->cm_id);
		conn->cm_id = NULL;
	}
}
