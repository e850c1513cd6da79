// SPDX-License-Identifier: GPL-2.0
/*
 * Data channels: extra RC queue pairs the source stripes its RDMA WRITEs
 * over, so that the work of moving memory spreads over several queues and
 * CPUs (a software device such as rxe runs every QP's requester and
 * responder as a task of its own; a real HCA spreads QPs over its engines
 * and completion vectors).
 *
 * Channel 0 is the rdma_cm connection: control messages and data.  The
 * extra channels 1..N-1 are plain verbs QPs connected by hand, not rdma_cm
 * connections of their own as in nvme-rdma, because:
 *  - they are born after channel 0 is established and the peer proved the
 *    secret, and are described only over that connection: they inherit its
 *    authentication, where a listener accepting "channel" connections would
 *    need tokens, and state to match them to a session, and new ways to be
 *    refused;
 *  - they share channel 0's PD, so every rkey the destination hands out is
 *    valid on all of them and nothing in the key protocol changes;
 *  - they take channel 0's path as it is (rdma_init_qp_attr() on its
 *    cm_id: AV, MTU, timeouts, retry counts); only QP numbers and PSNs are
 *    their own.
 *
 * The count is negotiated in the private data (struct rdmamig_cm_ext):
 * the source offers its channels parameter, the destination grants
 * min(offer, its own).  With more than one granted, the source sends
 * CHANNELS_REQUEST ({channel, qpn, psn} of each of its extra QPs, in INIT)
 * right after AUTH; the destination creates its twins, brings them to RTS
 * and answers with CHANNELS_RESULT; the source brings its own to RTS.  The
 * destination posts nothing on them: they only take WRITEs.
 *
 * Teardown (rdmamig_session_teardown()): a failure moves every channel to
 * the error state (rdmamig_chan_stop(), from the failure work) so that
 * writes in flight on them flush at once, as rdma_disconnect() does for
 * channel 0; then rdmamig_conn_drain() drains each connected channel and
 * rdmamig_conn_destroy() destroys them all before the PD.
 */
#include "rdmamig.h"

#include <linux/random.h>
#include <linux/slab.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "proto.h"
#include "session.h"
#include "chan.h"
#include "cm.h"
#include "ctrl.h"

#define CHAN_WAIT	(30 * HZ)
#define PSN_MASK	0xffffff

static void chan_qp_event(struct ib_event *ev, void *ctx)
{
	struct rdmamig_chan *c = ctx;

	switch (ev->event) {
	case IB_EVENT_COMM_EST:
	case IB_EVENT_SQ_DRAINED:
	case IB_EVENT_QP_LAST_WQE_REACHED:
		return;
	default:
		rdmamig_session_fail(c->sess, -EIO, false, "channel %u: %s",
				     c->index, ib_event_msg(ev->event));
	}
}

/* A channel's CQ and QP, moved to INIT; undone by rdmamig_chan_destroy(). */
static int create_one(struct rdmamig_session *sess, u32 index)
{
	struct rdmamig_chan *c = &sess->conn.chans[index];
	struct ib_device *dev = sess->conn.pd->device;
	struct ib_qp_init_attr attr = {};
	struct ib_qp_attr qa = {};
	int mask, ret;

	c->sess = sess;
	c->index = index;
	c->sq_depth = RDMAMIG_SQ_DEPTH;
	c->sq_avail = RDMAMIG_SQ_DEPTH;
	c->psn = get_random_u32() & PSN_MASK;
	/* Flushed WRs complete even when unsignaled: room for all of them. */
	c->cq = ib_alloc_cq(dev, c, RDMAMIG_SQ_DEPTH * 2 + 2,
			    index % max(dev->num_comp_vectors, 1),
			    IB_POLL_SOFTIRQ);
	if (IS_ERR(c->cq)) {
		ret = PTR_ERR(c->cq);
		c->cq = NULL;
		return ret;
	}
	attr.event_handler = chan_qp_event;
	attr.qp_context = c;
	attr.send_cq = c->cq;
	attr.recv_cq = c->cq;
	attr.qp_type = IB_QPT_RC;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.port_num = sess->conn.port_num;
	attr.cap.max_send_wr = RDMAMIG_SQ_DEPTH + 1;	/* + drain */
	attr.cap.max_recv_wr = 1;			/* the drain's */
	attr.cap.max_send_sge = min_t(u32, dev->attrs.max_send_sge, 32);
	attr.cap.max_recv_sge = 1;
	attr.cap.max_rdma_ctxs = RDMAMIG_RW_CTXS;
	c->qp = ib_create_qp(sess->conn.pd, &attr);
	if (IS_ERR(c->qp)) {
		ret = PTR_ERR(c->qp);
		c->qp = NULL;
		return ret;
	}
	qa.qp_state = IB_QPS_INIT;
	ret = rdma_init_qp_attr(sess->conn.cm_id, &qa, &mask);
	if (ret)
		return ret;
	return ib_modify_qp(c->qp, &qa, mask);
}

/* INIT -> RTR -> RTS towards the peer's twin, on channel 0's path. */
static int connect_one(struct rdmamig_session *sess, struct rdmamig_chan *c)
{
	struct ib_qp_attr qa = {};
	int mask, ret;

	qa.qp_state = IB_QPS_RTR;
	ret = rdma_init_qp_attr(sess->conn.cm_id, &qa, &mask);
	if (ret)
		return ret;
	qa.dest_qp_num = c->peer_qpn;
	qa.rq_psn = c->peer_psn;
	ret = ib_modify_qp(c->qp, &qa, mask);
	if (ret)
		return ret;
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IB_QPS_RTS;
	ret = rdma_init_qp_attr(sess->conn.cm_id, &qa, &mask);
	if (ret)
		return ret;
	qa.sq_psn = c->psn;
	ret = ib_modify_qp(c->qp, &qa, mask);
	if (ret)
		return ret;
	c->connected = true;
	return 0;
}

static void describe(struct rdmamig_session *sess,
		     struct rdmamig_cmd_channel *cmds, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		struct rdmamig_chan *c = &sess->conn.chans[i + 1];

		cmds[i].channel = cpu_to_be32(c->index);
		cmds[i].qpn = cpu_to_be32(c->qp->qp_num);
		cmds[i].psn = cpu_to_be32(c->psn);
		cmds[i].reserved = 0;
	}
}

/* Checks the peer's list for @n extra channels.  Return: NULL or why not. */
static const char *check_peer(struct rdmamig_session *sess,
			      const struct rdmamig_cmd_channel *cmds,
			      u32 repeat, u32 n)
{
	u32 i;

	if (repeat != n)
		return "wrong number of channels";
	for (i = 0; i < n; i++) {
		if (be32_to_cpu(cmds[i].channel) != i + 1)
			return "channels out of order";
		if (be32_to_cpu(cmds[i].qpn) & ~PSN_MASK ||
		    be32_to_cpu(cmds[i].psn) & ~PSN_MASK)
			return "queue pair number or PSN over 24 bits";
		if (cmds[i].reserved)
			return "reserved field not zero";
	}
	return NULL;
}

static void take_peer(struct rdmamig_session *sess,
		      const struct rdmamig_cmd_channel *cmds, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		sess->conn.chans[i + 1].peer_qpn = be32_to_cpu(cmds[i].qpn);
		sess->conn.chans[i + 1].peer_psn = be32_to_cpu(cmds[i].psn);
	}
}

static void publish(struct rdmamig_session *sess, u32 nchan)
{
	spin_lock_irq(&sess->slock);
	sess->conn.chan_exchanged = true;
	WRITE_ONCE(sess->conn.nchan, nchan);
	spin_unlock_irq(&sess->slock);
	wake_up_all(&sess->wait);
}

/* Pairs with the release in the CHANNELS_RESULT handler. */
static bool exchanged(struct rdmamig_session *sess)
{
	return smp_load_acquire(&sess->conn.chan_exchanged);
}

/**
 * rdmamig_chan_connect() - source: bring up the granted extra channels
 * @sess: a source session whose channel 0 is established and authenticated
 *
 * On failure the QPs made so far stay for rdmamig_conn_destroy().
 * Return: 0 (also with a single channel), or an errno; the session failed.
 */
int rdmamig_chan_connect(struct rdmamig_session *sess)
{
	u32 n = sess->conn.chan_granted, i;
	struct rdmamig_cmd_channel *cmds;
	int ret = 0;

	lockdep_assert_held(&sess->lock);
	if (n <= 1)
		return 0;
	cmds = kcalloc(n - 1, sizeof(*cmds), GFP_KERNEL);
	if (!cmds)
		return -ENOMEM;
	for (i = 1; i < n; i++) {
		ret = create_one(sess, i);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "channel %u: creating its queue pair failed (%d)",
					     i, ret);
			goto out;
		}
	}
	describe(sess, cmds, n - 1);
	spin_lock_irq(&sess->slock);
	sess->conn.chan_requested = true;
	spin_unlock_irq(&sess->slock);
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_CHANNELS_REQUEST, n - 1, cmds,
				(n - 1) * sizeof(*cmds));
	if (!ret)
		ret = rdmamig_session_wait(sess, exchanged, CHAN_WAIT);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "destination did not connect the data channels");
		goto out;
	}
	for (i = 1; i < n; i++) {
		ret = connect_one(sess, &sess->conn.chans[i]);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "channel %u: connecting its queue pair failed (%d)",
					     i, ret);
			goto out;
		}
	}
	spin_lock_irq(&sess->slock);
	WRITE_ONCE(sess->conn.nchan, n);
	spin_unlock_irq(&sess->slock);
	sess_info(sess, "striping over %u channels\n", n);
out:
	kfree(cmds);
	return ret;
}

/*
 * CHANNELS_REQUEST, destination: the source's extra QPs; make ours and
 * connect both ways.  In the ordered work, before the RAM blocks.
 */
void rdmamig_chan_dst_request(struct rdmamig_session *sess, const void *payload,
			      u32 repeat, u32 len)
{
	const struct rdmamig_cmd_channel *cmds = payload;
	u32 n = sess->conn.chan_granted, i;
	struct rdmamig_cmd_channel *res;
	const char *why;
	int ret;

	if (n <= 1 || READ_ONCE(sess->conn.chan_exchanged)) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "channels requested, none were granted or they exist already");
		return;
	}
	why = check_peer(sess, cmds, repeat, n - 1);
	if (why) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "bad channels request (%u granted): %s", n, why);
		return;
	}
	res = kcalloc(n - 1, sizeof(*res), GFP_KERNEL);
	if (!res) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return;
	}
	take_peer(sess, cmds, n - 1);
	for (i = 1; i < n; i++) {
		ret = create_one(sess, i) ?: connect_one(sess, &sess->conn.chans[i]);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "channel %u: destination could not set up its queue pair (%d)",
					     i, ret);
			goto out;
		}
	}
	describe(sess, res, n - 1);
	/* Connected before the answer: the source may write at once. */
	publish(sess, n);
	rdmamig_ctrl_send(sess, RDMAMIG_MSG_CHANNELS_RESULT, n - 1, res,
			  (n - 1) * sizeof(*res));
out:
	kfree(res);
}

/* CHANNELS_RESULT, source: the destination's twins, connected. */
void rdmamig_chan_src_result(struct rdmamig_session *sess, const void *payload,
			     u32 repeat, u32 len)
{
	const struct rdmamig_cmd_channel *cmds = payload;
	const char *why;

	if (!READ_ONCE(sess->conn.chan_requested) || READ_ONCE(sess->conn.chan_exchanged)) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "channels result nobody asked for");
		return;
	}
	why = check_peer(sess, cmds, repeat, sess->conn.chan_granted - 1);
	if (why) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "bad channels result: %s", why);
		return;
	}
	take_peer(sess, cmds, sess->conn.chan_granted - 1);
	/*
	 * @nchan follows once our side is connected too.  Released after the
	 * peer's QP numbers: exchanged()'s acquire lets the waiting connect
	 * read them.
	 */
	spin_lock_irq(&sess->slock);
	smp_store_release(&sess->conn.chan_exchanged, true);
	spin_unlock_irq(&sess->slock);
	wake_up_all(&sess->wait);
}

/*
 * The session failed: flush the writes in flight on the extra channels now
 * (rdma_disconnect() does it for channel 0), so that nobody waits for them
 * to time out against a peer that is gone.  From the failure work, which
 * teardown flushes before it destroys anything.
 */
void rdmamig_chan_stop(struct rdmamig_session *sess)
{
	struct ib_qp_attr qa = { .qp_state = IB_QPS_ERR };
	u32 i, n;

	spin_lock_irq(&sess->slock);
	n = sess->conn.nchan;
	spin_unlock_irq(&sess->slock);
	for (i = 1; i < n; i++)
		if (sess->conn.chans[i].qp)
			ib_modify_qp(sess->conn.chans[i].qp, &qa, IB_QP_STATE);
}

/* Teardown (rdmamig_conn_destroy()): after the drain, before the PD goes. */
void rdmamig_chan_destroy(struct rdmamig_session *sess)
{
	u32 i;

	for (i = 1; i < RDMAMIG_CHANNELS_MAX; i++) {
		struct rdmamig_chan *c = &sess->conn.chans[i];

		if (c->qp)
			ib_destroy_qp(c->qp);
		if (c->cq)
			ib_free_cq(c->cq);
		c->qp = NULL;
		c->cq = NULL;
		c->connected = false;
	}
	/* @nchan stays: the statistics report what the session used. */
}
