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
 * always at least one.  A KEEPALIVE then waits for a quarter of an
 * interval, or for one write (at most a 1 MiB chunk) where that is longer.
 * On a fast link the limit is far above what two windows hold, so this
 * costs nothing; with the keepalive off (the default) nothing is paced.
 *
 * The extra channels carry no control message and are not paced.  All of
 * this is under sess->slock: completions arrive in softirq context.
 */
#include "rdmamig.h"

#include "session.h"

/* Rate samples span at least this much busy time (coalesced ACKs). */
#define PACE_SPAN_NS	(10 * NSEC_PER_MSEC)

static bool paced(struct rdmamig_session *sess, u32 ch)
{
	return ch == 0 && READ_ONCE(sess->keepalive_ms);
}

/* Bytes channel 0 may hold in flight; 0: one write at a time. */
static u64 pace_budget(struct rdmamig_session *sess)
{
	return div_u64(sess->pace.rate * sess->keepalive_ms, 4 * MSEC_PER_SEC);
}

static bool pace_try(struct rdmamig_session *sess, u64 bytes)
{
	struct rdmamig_pace *p = &sess->pace;
	unsigned long flags;
	bool ok;

	spin_lock_irqsave(&sess->slock, flags);
	ok = !p->inflight || p->inflight + bytes <= pace_budget(sess);
	if (ok) {
		if (!p->inflight) {
			/* Idle until now: a new span of busy time. */
			p->span_start = ktime_get();
			p->span_bytes = 0;
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
	if (!wait_event_timeout(sess->tx_wait, pace_ready(sess, bytes, &taken),
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
	pace_sub(&sess->pace, bytes);
	spin_unlock_irqrestore(&sess->slock, flags);
	wake_up_all(&sess->tx_wait);
}

/*
 * A write of @bytes on @ch completed (the caller wakes tx_wait).  The rate
 * is sampled over busy spans of PACE_SPAN_NS or more, or over a shorter
 * one that ends with the channel idle: completions often come in bursts
 * (one ACK for several writes), so one write's own time says little.
 */
void rdmamig_pace_done(struct rdmamig_session *sess, u32 ch, u64 bytes)
{
	struct rdmamig_pace *p = &sess->pace;
	unsigned long flags;
	s64 ns;
	u64 sample;

	if (!paced(sess, ch))
		return;
	spin_lock_irqsave(&sess->slock, flags);
	pace_sub(p, bytes);
	p->span_bytes += bytes;
	ns = ktime_to_ns(ktime_sub(ktime_get(), p->span_start));
	if (ns > 0 && (ns >= PACE_SPAN_NS || !p->inflight)) {
		sample = div64_u64(p->span_bytes * NSEC_PER_SEC, ns);
		/* Weight 1/4: one slow span (a retransmission) halves nothing. */
		p->rate = p->rate ? (3 * p->rate + sample) / 4 : sample;
		p->span_start = ktime_get();
		p->span_bytes = 0;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
}
