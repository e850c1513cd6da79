/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The connection to the peer (conn.c): the protection domain, the queue
 * pairs of every channel with their completion queues, the control
 * channel's buffers, credits and works.  One per session, embedded in it;
 * its fields are under the session's @slock unless said otherwise.
 *
 * Channel 0 is the rdma_cm connection; it carries the control messages
 * and data.  Channels 1..nchan-1 only carry data (chan.c).  Every channel
 * is a struct rdmamig_chan, channel 0 included: it only differs in being
 * created on the cm_id (rdma_create_qp()) and in holding the receives.
 */
#ifndef _RDMAMIG_CONN_H
#define _RDMAMIG_CONN_H

#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>
#include <linux/rdmamig.h>

#define RDMAMIG_RX_DEPTH	16	/* receive buffers posted per side */
#define RDMAMIG_TX_DEPTH	8	/* send buffers per side */
#define RDMAMIG_SQ_DEPTH	256	/* send WRs per QP: data and control */
#define RDMAMIG_RW_CTXS		32

struct rdmamig_session;

/* One RC queue pair with its completion queue. */
struct rdmamig_chan {
	struct rdmamig_session *sess;
	u32 index;
	struct ib_cq *cq;
	struct ib_qp *qp;
	u32 psn;		/* extra channels: our first send PSN */
	u32 peer_qpn;		/* from CHANNELS_REQUEST or _RESULT */
	u32 peer_psn;
	/*
	 * Drain before destroying: an extra channel once it reached RTS,
	 * channel 0 from creation (the CM moves it; a drain works in any
	 * state it leaves).
	 */
	bool connected;
	int sq_avail;		/* free send-queue slots, @slock */
	int sq_depth;
};

/* Channel 0's writes in flight and their rate (pace.c), @slock. */
struct rdmamig_pace {
	u64 inflight;		/* bytes posted, not completed */
	u64 rate;		/* bytes/s, 0: not measured yet */
	ktime_t span_start;	/* of the busy span being measured */
	u64 span_bytes;		/* completed in it */
	bool span_idle;		/* it began with nothing in flight */
};

/* One control-channel buffer of RDMAMIG_MSG_SIZE bytes, DMA-mapped. */
struct rdmamig_ctrl_buf {
	struct ib_cqe cqe;
	struct rdmamig_session *sess;
	struct list_head list;	/* tx: free list; rx: queued for the work */
	void *data;
	u64 dma;
	u32 byte_len;		/* rx: bytes received */
};

struct rdmamig_conn {
	struct rdma_cm_id *cm_id;	/* channel 0's; cm.c handles its events */
	struct ib_pd *pd;
	u32 port_num;
	/*
	 * Channels.  @nchan counts channel 0: 1 until the extra ones are
	 * connected; written under @slock, read with READ_ONCE by the data
	 * path and the failure work.
	 */
	u32 nchan;
	struct rdmamig_chan chans[RDMAMIG_CHANNELS_MAX];
	u32 chan_granted;		/* negotiated in the private data */
	bool chan_requested;		/* source sent CHANNELS_REQUEST */
	bool chan_exchanged;		/* CHANNELS_* done */

	/* Control channel (ctrl.c), on channel 0. */
	struct rdmamig_ctrl_buf *rx;
	struct rdmamig_ctrl_buf *tx;
	struct list_head tx_free;
	struct list_head rx_queue;
	int credits;			/* sends the peer can take */
	int peer_depth;			/* receive buffers the peer posted */
	int grant;			/* buffers to return to the peer */
	wait_queue_head_t tx_wait;	/* credits, slots, send buffers */
	struct workqueue_struct *wq;	/* ordered: messages in order */
	struct work_struct rx_work;
	struct work_struct fail_work;
	bool fail_notify;		/* send ERROR to the peer */
	struct delayed_work keepalive_work;
	struct delayed_work disconnect_work;	/* peer left: fail, a bit later */
	unsigned long last_rx;		/* jiffies of the last message */
	u32 keepalive_ms;		/* negotiated; 0: off */

	struct rdmamig_pace pace;	/* channel 0's writes, pace.c */
	struct ib_cqe reg_cqe;		/* completes IB_WR_REG_MR */
};

void rdmamig_conn_init(struct rdmamig_session *sess);
int rdmamig_conn_alloc_wq(struct rdmamig_session *sess);
void rdmamig_conn_free_wq(struct rdmamig_session *sess);
int rdmamig_conn_create(struct rdmamig_session *sess, struct rdma_cm_id *id);
void rdmamig_conn_stop(struct rdmamig_session *sess);
void rdmamig_conn_drain(struct rdmamig_session *sess, bool let_sends_leave);
void rdmamig_conn_destroy(struct rdmamig_session *sess);

/* The QP of channel @ch, below READ_ONCE(conn.nchan). */
static inline struct ib_qp *rdmamig_conn_qp(struct rdmamig_conn *conn, u32 ch)
{
	return conn->chans[ch].qp;
}

#endif /* _RDMAMIG_CONN_H */
