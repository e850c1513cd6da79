// SPDX-License-Identifier: GPL-2.0
/*
 * Pacing of channel 0's RDMA WRITEs, so that its control messages are
 * not stuck behind them.
 *
 * Channel 0 is the rdma_cm QP, which carries the control messages too,
 * and a QP sends in order: a KEEPALIVE posted behind a window of WRITEs
 * leaves only once all of them are on the wire.  The send-queue slots
 * kept for control messages (SQ_CTRL_RESERVE, ctrl.c) do not help with
 * that.  On a slow link (netem at 4 Mbit/s; the debug kernel's 1-3 MB/s
 * under TCG) two windows of 16 MiB took far longer than two keepalive
 * intervals and a second, and the destination, which sees no completion
 * for our WRITEs, failed a healthy migration as "peer silent".
 *
 * So while a keepalive is negotiated, channel 0 holds no more bytes of
 * WRITEs than it moves in a quarter of the interval, by the rate its own
 * completions show; one write at a time until that rate is known, and
 * always at least one.  That alone did not bound a KEEPALIVE's wait: it
 * still waited for a whole write, a run of up to a 1 MiB chunk, which a
 * slow link takes longer than two intervals and a second to move (4.2 s
 * at 2 Mbit/s; at 4 Mbit/s, 2.1 s, and the write was retransmitted too:
 * see below).  So channel 0's writes are also cut to half of that
 * budget, and to PACE_MIN_BYTES until the rate is known
 * (rdmamig_pace_max_pages()): a KEEPALIVE then waits for a quarter of an
 * interval, or for one write of PACE_MIN_BYTES where that is longer.  On
 * a fast link the budget is far above a chunk, so nothing is cut and
 * this costs nothing; with the keepalive off (the default) nothing is
 * paced or cut.
 *
 * Cutting the writes also keeps the RC retransmission timer from firing
 * on a slow link.  rxe asks for an ACK every RXE_MAX_PKT_PER_ACK (64)
 * packets and at a message's last, and keeps up to 64 packets of a QP in
 * the qdisc: at MTU 4096 that is 256 KiB between ACKs, 0.5 s at 4 Mbit/s.
 * Since Linux 6.2 (fb4907f48725, "RDMA/cma: Change RoCE packet life time
 * from 18 to 16") rdma_cm gives a RoCE QP an ACK timeout of 4.096 us << 17,
 * 0.54 s, where 6.1 had 2.1 s: on 6.12 a 1 MiB write at 4 Mbit/s timed
 * out and went back 128 packets, a second more of the link, and the
 * KEEPALIVE behind it came too late.  A write of half the budget asks for
 * its ACK after an eighth of an interval of link time (for a keepalive up
 * to 4 s: beyond, rxe's 64 packets come first).
 *
 * The extra channels carry no control message and are not paced.  All of
 * this is under sess->slock: completions arrive in softirq context.
 */
#include "rdmamig.h"

#include "session.h"
#include "pace.h"

/* The smallest piece channel 0's writes are cut to: 16 KiB, 4 packets. */
#define PACE_MIN_BYTES	((u64)RDMAMIG_PACE_MIN_PAGES << PAGE_SHIFT)

static bool paced(struct rdmamig_session *sess, u32 ch)
{
	return ch == 0 && READ_ONCE(sess->conn.keepalive_ms);
}

/*
 * Rate samples span at least a quarter interval of busy time, the time
 * the budget is meant to take: two writes or more.
 */
static u64 span_ns(struct rdmamig_session *sess)
{
	return (u64)sess->conn.keepalive_ms * NSEC_PER_MSEC / 4;
}

/* Bytes channel 0 may hold in flight; 0: one write at a time. */
static u64 pace_budget(struct rdmamig_session *sess)
{
	return div_u64(sess->conn.pace.rate * sess->conn.keepalive_ms, 4 * MSEC_PER_SEC);
}

/**
 * rdmamig_pace_max_pages() - the most pages one write on @ch may carry
 * @sess: a connected source session
 * @ch: the channel the write goes to
 *
 * Half of channel 0's budget, so that two writes keep the link busy, but
 * no less than RDMAMIG_PACE_MIN_PAGES (all there is until the rate is
 * known); U32_MAX on a channel that is not paced.
 */
u32 rdmamig_pace_max_pages(struct rdmamig_session *sess, u32 ch)
{
	unsigned long flags;
	u64 bytes;

	if (!paced(sess, ch))
		return U32_MAX;
	spin_lock_irqsave(&sess->slock, flags);
	bytes = pace_budget(sess) / 2;
	spin_unlock_irqrestore(&sess->slock, flags);
	return min_t(u64, max_t(u64, bytes, PACE_MIN_BYTES) >> PAGE_SHIFT, U32_MAX);
}

static bool pace_try(struct rdmamig_session *sess, u64 bytes)
{
	struct rdmamig_pace *p = &sess->conn.pace;
	unsigned long flags;
	bool ok;

	spin_lock_irqsave(&sess->slock, flags);
	ok = !p->inflight || p->inflight + bytes <= pace_budget(sess);
	if (ok) {
		if (!p->inflight) {
			/* Idle until now: a new span of busy time. */
			p->span_start = ktime_get();
			p->span_bytes = 0;
			p->span_idle = true;
		}
		p->inflight += bytes;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
	return ok;
}

/* The wait's condition: the session ended, or @bytes were taken. */
static bool pace_ready(struct rdmamig_session *sess, u64 bytes, bool *taken)
{
	if (rdmamig_session_dead(sess))
		return true;
	*taken = pace_try(sess, bytes);
	return *taken;
}

/**
 * rdmamig_pace_take() - wait until channel @ch may take @bytes more
 * @sess: a connected source session
 * @ch: the channel the write goes to
 * @bytes: what it writes
 * @timeout: in jiffies, for the channel to make room
 *
 * Return: 0, the session's error, or -ETIMEDOUT.  After 0,
 * rdmamig_pace_done() must follow the write's completion, or
 * rdmamig_pace_undo() a failure to post it.
 */
int rdmamig_pace_take(struct rdmamig_session *sess, u32 ch, u64 bytes,
		      unsigned long timeout)
{
	bool taken = false;

	if (!paced(sess, ch))
		return 0;
	if (!wait_event_timeout(sess->conn.tx_wait, pace_ready(sess, bytes, &taken),
				timeout))
		return -ETIMEDOUT;
	if (!taken) {
		/* Dead before there was room. */
		return rdmamig_session_error(sess);
	}
	return 0;
}

static void pace_sub(struct rdmamig_pace *p, u64 bytes)
{
	p->inflight -= min(p->inflight, bytes);
}

/* The write of @bytes on @ch was not posted after all. */
void rdmamig_pace_undo(struct rdmamig_session *sess, u32 ch, u64 bytes)
{
	unsigned long flags;

	if (!paced(sess, ch))
		return;
	spin_lock_irqsave(&sess->slock, flags);
	pace_sub(&sess->conn.pace, bytes);
	spin_unlock_irqrestore(&sess->slock, flags);
	wake_up_all(&sess->conn.tx_wait);
}

/*
 * A write of @bytes on @ch completed (the caller wakes tx_wait).  The rate
 * is sampled over busy spans of span_ns() or more, or over a shorter one
 * that began and ended with the channel idle, so that every byte of it
 * was posted and completed within it.  Completions often come in bursts
 * (one ACK for several writes), so a short span that began with writes
 * in flight says nothing: two writes completed 3 ms apart at 4 Mbit/s
 * (on 6.12), and a sample over those 3 ms, forty times the link's rate,
 * let the next writes grow to 600 KiB, which the KEEPALIVE behind them
 * waited for past the peer's deadline.
 */
void rdmamig_pace_done(struct rdmamig_session *sess, u32 ch, u64 bytes)
{
	struct rdmamig_pace *p = &sess->conn.pace;
	unsigned long flags;
	s64 ns;
	u64 sample;

	if (!paced(sess, ch))
		return;
	spin_lock_irqsave(&sess->slock, flags);
	pace_sub(p, bytes);
	p->span_bytes += bytes;
	ns = ktime_to_ns(ktime_sub(ktime_get(), p->span_start));
	if (ns > 0 && (ns >= span_ns(sess) || (!p->inflight && p->span_idle))) {
		sample = div64_u64(p->span_bytes * NSEC_PER_SEC, ns);
		/* Weight 1/4: one slow span (a retransmission) halves nothing. */
		p->rate = p->rate ? (3 * p->rate + sample) / 4 : sample;
		p->span_start = ktime_get();
		p->span_bytes = 0;
		p->span_idle = false;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
}
