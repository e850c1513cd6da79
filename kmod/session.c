// SPDX-License-Identifier: GPL-2.0
/*
 * The session object: state machine, failure, events, statistics, and the
 * global list that device removal walks.
 */
#include "rdmamig.h"

#include <linux/cpumask.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <net/sock.h>

#include "ibdev.h"
#include "proto.h"
#include "session.h"
#include "auth.h"
#include "block.h"
#include "cm.h"
#include "conn.h"
#include "ctrl.h"
#include "mode.h"
#include "stream.h"

static LIST_HEAD(session_list);
static DEFINE_MUTEX(session_list_mutex);	/* protects session_list */
static DEFINE_IDA(session_ida);

#define RDMAMIG_MAX_EVENTS	1024

static void push_event_locked(struct rdmamig_session *sess,
			      const struct rdmamig_event *ev);

/*
 * The state machine: every change of @state goes through
 * rdmamig_session_change_state_locked(), which allows a change only if
 * this table lists it (Documentation/protocol.rst has it as a diagram).
 * A terminal state (no entry) is never left: a cancel that lands first
 * is not overwritten by a completion, nor by a connect going on.  States
 * added later (post-copy, checkpoint epochs) get a row and the arrows
 * into them here, nowhere else.
 */
#define TO(s)	BIT(RDMAMIG_STATE_##s)
#define ENDS	(TO(FAILED) | TO(CANCELLED))
static const u32 state_next[] = {
	[RDMAMIG_STATE_NONE]		= TO(SETUP) | ENDS,
	[RDMAMIG_STATE_SETUP]		= TO(CONNECTED) | ENDS,
	[RDMAMIG_STATE_CONNECTED]	= TO(ACTIVE) | TO(POSTCOPY) | TO(COMPLETED) | ENDS,
	[RDMAMIG_STATE_ACTIVE]		= TO(POSTCOPY) | TO(COMPLETED) | ENDS,
	[RDMAMIG_STATE_POSTCOPY]	= TO(COMPLETED) | ENDS,
	[RDMAMIG_STATE_COMPLETED]	= 0,
	[RDMAMIG_STATE_FAILED]		= 0,
	[RDMAMIG_STATE_CANCELLED]	= 0,
};
#undef ENDS
#undef TO

static bool state_terminal(enum rdmamig_state s)
{
	return s >= ARRAY_SIZE(state_next) || !state_next[s];
}

/**
 * rdmamig_session_change_state_locked() - move to @new if the table allows
 * @sess: the session, @slock held
 * @new: the state to enter
 *
 * Return: whether the state changed.  The caller wakes waiters and tells
 * the faces (rdmamig_session_notify()) after dropping @slock.
 */
bool rdmamig_session_change_state_locked(struct rdmamig_session *sess,
					 enum rdmamig_state new)
{
	enum rdmamig_state old = sess->state;

	lockdep_assert_held(&sess->slock);
	if (old >= ARRAY_SIZE(state_next) || !(state_next[old] & BIT(new)))
		return false;
	sess->state = new;
	return true;
}

/*
 * The RAM blocks were exchanged and agreed on: rounds may flow, the
 * keepalive starts.  From either side's handler of the exchange.
 */
void rdmamig_session_mark_ready(struct rdmamig_session *sess)
{
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_CONNECTED };
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	sess->peer_ready = true;
	rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_CONNECTED);
	sess->t_setup = ktime_get();
	spin_unlock_irqrestore(&sess->slock, flags);
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	rdmamig_ctrl_start_keepalive(sess);
}

static void (*notifier)(struct rdmamig_session *sess, enum rdmamig_notify what);

/* Parameters new sessions start with (netlink SET_DEFAULTS). */
static DEFINE_MUTEX(defaults_mutex);
static struct rdmamig_params defaults = {
	.size = sizeof(struct rdmamig_params),
	.max_registered = 64ULL << 20,
	.wire_version = RDMAMIG_WIRE_VERSION,
	.downtime_limit_ms = 300,
	.max_rounds = 30,
	.channels = 1,		/* see rdmamig_sessions_init() */
};

/*
 * Data channels by default: one per online CPU, at most four.  rxe (and
 * the completion vectors of a hardware HCA) work per QP; on the 2-vCPU
 * testbed a 256 MiB bulk round went from 17.8-20.4 MB/s on one channel to
 * 21.8-24.7 on two, and four were no better; a one-vCPU guest has nothing
 * to spread over (Documentation/performance.rst, "Data channels").
 */
#define DEFAULT_CHANNELS_MAX	4

void rdmamig_defaults_get(struct rdmamig_params *p)
{
	mutex_lock(&defaults_mutex);
	*p = defaults;
	mutex_unlock(&defaults_mutex);
}

void rdmamig_defaults_set(const struct rdmamig_params *p)
{
	mutex_lock(&defaults_mutex);
	rdmamig_params_apply(&defaults, p);
	mutex_unlock(&defaults_mutex);
}

#define KEEPALIVE_MIN_MS	RDMAMIG_KEEPALIVE_MIN_MS
#define KEEPALIVE_MAX_MS	RDMAMIG_KEEPALIVE_MAX_MS

/**
 * rdmamig_params_check() - validate the fields of @p that @p->mask sets
 * @p: new parameters
 * @started: the session left state none; only some fields may change
 *
 * Return: 0, -EINVAL for a bad value, -EBUSY for a field fixed by now.
 */
int rdmamig_params_check(const struct rdmamig_params *p, bool started)
{
	u32 live = RDMAMIG_PARAM_MAX_BANDWIDTH | RDMAMIG_PARAM_DOWNTIME_LIMIT |
		   RDMAMIG_PARAM_MAX_ROUNDS;

	if (p->mask & ~RDMAMIG_PARAM_ALL || p->caps & ~RDMAMIG_CAPS_ALL ||
	    p->reserved || p->reserved2)
		return -EINVAL;
	if ((p->mask & RDMAMIG_PARAM_CHANNELS) &&
	    (!p->channels || p->channels > RDMAMIG_CHANNELS_MAX))
		return -EINVAL;
	if ((p->mask & RDMAMIG_PARAM_AUTH) && p->auth > RDMAMIG_AUTH_OFF)
		return -EINVAL;
	if ((p->mask & RDMAMIG_PARAM_MAX_REGISTERED) &&
	    p->max_registered < RDMAMIG_CHUNK_SIZE)
		return -EINVAL;
	if ((p->mask & RDMAMIG_PARAM_KEEPALIVE) && p->keepalive_ms &&
	    (p->keepalive_ms < KEEPALIVE_MIN_MS || p->keepalive_ms > KEEPALIVE_MAX_MS))
		return -EINVAL;
	if ((p->mask & RDMAMIG_PARAM_WIRE_VERSION) && p->wire_version > U8_MAX)
		return -EINVAL;
	if ((p->mask & RDMAMIG_PARAM_MAX_ROUNDS) && !p->max_rounds)
		return -EINVAL;
	if (started && (p->mask & ~live))
		return -EBUSY;
	return 0;
}

/* Copy the fields @src->mask names; the caller checked them. */
void rdmamig_params_apply(struct rdmamig_params *dst,
			  const struct rdmamig_params *src)
{
	if (src->mask & RDMAMIG_PARAM_CAPS)
		dst->caps = src->caps;
	if (src->mask & RDMAMIG_PARAM_MAX_BANDWIDTH)
		WRITE_ONCE(dst->max_bandwidth, src->max_bandwidth);
	if (src->mask & RDMAMIG_PARAM_MAX_REGISTERED)
		dst->max_registered = src->max_registered;
	if (src->mask & RDMAMIG_PARAM_KEEPALIVE)
		dst->keepalive_ms = src->keepalive_ms;
	if (src->mask & RDMAMIG_PARAM_WIRE_VERSION)
		dst->wire_version = src->wire_version;
	if (src->mask & RDMAMIG_PARAM_DOWNTIME_LIMIT)
		WRITE_ONCE(dst->downtime_limit_ms, src->downtime_limit_ms);
	if (src->mask & RDMAMIG_PARAM_MAX_ROUNDS)
		WRITE_ONCE(dst->max_rounds, src->max_rounds);
	if (src->mask & RDMAMIG_PARAM_AUTH)
		dst->auth = src->auth;
	if (src->mask & RDMAMIG_PARAM_CHANNELS)
		dst->channels = src->channels;
}

/**
 * rdmamig_session_create() - a new session over @mm's memory
 * @mm: the address space the blocks live in; grabbed here
 *
 * Return: the session, on the global list, or an ERR_PTR.
 */
struct rdmamig_session *rdmamig_session_create(struct mm_struct *mm)
{
	struct rdmamig_session *sess;
	int id;

	sess = kzalloc(sizeof(*sess), GFP_KERNEL);
	if (!sess)
		return ERR_PTR(-ENOMEM);
	id = ida_alloc(&session_ida, GFP_KERNEL);
	if (id < 0) {
		kfree(sess);
		return ERR_PTR(id);
	}
	sess->id = id;
	kref_init(&sess->ref);
	mutex_init(&sess->lock);
	mutex_init(&sess->reg_mutex);
	spin_lock_init(&sess->slock);
	INIT_LIST_HEAD(&sess->events);
	INIT_LIST_HEAD(&sess->stream);
	INIT_LIST_HEAD(&sess->lru);
	init_waitqueue_head(&sess->wait);
	atomic64_set(&sess->pinned_pages, 0);
	rdmamig_conn_init(sess);
	rdmamig_mode_init(sess);

	rdmamig_defaults_get(&sess->params);
	sess->params.mask = 0;
	sess->owner_pid = task_tgid_vnr(current);
	sess->target_pid = sess->owner_pid;

	/* Pins are accounted to the mm whose memory moves. */
	sess->mm = mm;
	mmgrab(sess->mm);

	mutex_lock(&session_list_mutex);
	list_add_tail(&sess->list, &session_list);
	mutex_unlock(&session_list_mutex);
	return sess;
}

/*
 * Teardown, in this order: stop, drain, destroy, then free.
 *  1. the caller moved the session to a final state: every waiter
 *     returns and nothing new starts (ioctls check the state);
 *  2. @closing is set: no work is queued from here on, no CM handler
 *     acts, long loops over a peer's commands stop;
 *  3. stop: the listener goes (rdma_destroy_id() waits for its handler)
 *     and the connection's handler idles; the destination's pin-all
 *     registrations, which post, end; every work of the connection ends
 *     (a failure's ERROR still leaves);
 *  4. drain: disconnect, drain every QP: nothing can post any more, so
 *     no completion comes after;
 *  5. destroy: QPs, CQs (no completion handler runs after), then control
 *     buffers, registrations, PD, cm_id; the workqueue last;
 *  6. at destroy, free blocks and queued data; the struct itself goes
 *     with the last reference.
 * Called with @lock held; idempotent.  Every step is another file's, and
 * this one makes no verbs call.
 */
void rdmamig_session_teardown(struct rdmamig_session *sess)
{
	lockdep_assert_held(&sess->lock);

	spin_lock_irq(&sess->slock);
	sess->closing = true;
	spin_unlock_irq(&sess->slock);
	/* A reply of the rx work waiting for a credit gives up. */
	wake_up_all(&sess->conn.tx_wait);

	rdmamig_cm_stop(sess);
	rdmamig_mode_stop(sess);
	rdmamig_conn_stop(sess);

	rdmamig_conn_drain(sess, READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED);

	rdmamig_conn_destroy(sess);
	rdmamig_conn_free_wq(sess);
	spin_lock_irq(&sess->slock);
	sess->ibdev = NULL;
	spin_unlock_irq(&sess->slock);
}

/**
 * rdmamig_session_cancel() - cancel by the owner: ioctl, close, netlink
 * @sess: the session, in any state
 *
 * Does not need @lock to start: a VMM thread blocked in an ioctl holding
 * it is woken first, then the connection is torn down.
 */
void rdmamig_session_cancel(struct rdmamig_session *sess)
{
	unsigned long flags;
	bool changed = false;
	struct rdmamig_event ev = {
		.type = RDMAMIG_EVENT_FAILED,
		.error = -ECANCELED,
	};

	spin_lock_irqsave(&sess->slock, flags);
	if (rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_CANCELLED)) {
		sess->error = -ECANCELED;
		sess->t_end = ktime_get();
		strscpy(sess->reason, "cancelled", sizeof(sess->reason));
		/* A thread blocked in WAIT_EVENT learns of it too. */
		push_event_locked(sess, &ev);
		changed = true;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
	if (changed) {
		wake_up_all(&sess->wait);
		wake_up_all(&sess->conn.tx_wait);
		rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	}
	mutex_lock(&sess->lock);
	rdmamig_session_teardown(sess);
	mutex_unlock(&sess->lock);
}

static void session_release(struct kref *ref)
{
	kfree(container_of(ref, struct rdmamig_session, ref));
}

void rdmamig_session_get(struct rdmamig_session *sess)
{
	kref_get(&sess->ref);
}

/* Any context but atomic; the last reference frees only the struct. */
void rdmamig_session_put(struct rdmamig_session *sess)
{
	kref_put(&sess->ref, session_release);
}

bool rdmamig_session_closing(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->closing);
}

/**
 * rdmamig_session_queue_work() - queue one of the session's works
 * @sess: the session
 * @wq: where; NULL (no ordered queue yet) queues nothing
 * @work: a work of @sess
 *
 * Under @slock, against rdmamig_session_teardown() setting @closing: a work
 * that teardown has cancelled is never queued again.
 * Return: whether it was queued.
 */
bool rdmamig_session_queue_work(struct rdmamig_session *sess,
				struct workqueue_struct *wq,
				struct work_struct *work)
{
	unsigned long flags;
	bool queued = false;

	spin_lock_irqsave(&sess->slock, flags);
	if (!sess->closing && wq)
		queued = queue_work(wq, work);
	spin_unlock_irqrestore(&sess->slock, flags);
	return queued;
}

/* The same for a delayed work, on the system queue. */
bool rdmamig_session_queue_delayed(struct rdmamig_session *sess,
				   struct delayed_work *dwork,
				   unsigned long delay)
{
	unsigned long flags;
	bool queued = false;

	spin_lock_irqsave(&sess->slock, flags);
	if (!sess->closing)
		queued = queue_delayed_work(system_wq, dwork, delay);
	spin_unlock_irqrestore(&sess->slock, flags);
	return queued;
}

/*
 * The owner lets go: off the list, torn down, everything freed but the
 * struct, which the last reference frees.
 */
void rdmamig_session_destroy(struct rdmamig_session *sess)
{
	struct rdmamig_event_node *ev, *tmp;
	bool owned_by_netlink;

	/* Netlink-owned sessions are unlinked by their owner's release. */
	mutex_lock(&session_list_mutex);
	list_del_init(&sess->list);
	mutex_unlock(&session_list_mutex);

	rdmamig_session_cancel(sess);
	mutex_lock(&sess->lock);
	rdmamig_blocks_free(sess);
	rdmamig_mode_free(sess);
	rdmamig_auth_free(sess);
	mutex_unlock(&sess->lock);

	rdmamig_stream_free(sess);
	spin_lock_irq(&sess->slock);
	list_for_each_entry_safe(ev, tmp, &sess->events, list)
		kfree(ev);
	INIT_LIST_HEAD(&sess->events);
	sess->nevents = 0;
	spin_unlock_irq(&sess->slock);
	WARN_ON_ONCE(atomic64_read(&sess->pinned_pages));
	mmdrop(sess->mm);
	ida_free(&session_ida, sess->id);
	owned_by_netlink = sess->nl_sk;
	if (sess->nl_sk)
		sock_put(sess->nl_sk);
	rdmamig_session_put(sess);
	/*
	 * Last: the module reference NEW_SESSION took (see netlink.c).  A
	 * reference still held elsewhere is dropped by code that module
	 * unload waits for (a netlink request, the ib_client's .remove).
	 */
	if (owned_by_netlink)
		module_put(THIS_MODULE);
}

static void push_event_locked(struct rdmamig_session *sess,
			      const struct rdmamig_event *ev)
{
	struct rdmamig_event_node *n;

	lockdep_assert_held(&sess->slock);
	/* A VMM that never reads events must not exhaust memory. */
	if (sess->nevents >= RDMAMIG_MAX_EVENTS)
		return;
	n = kzalloc(sizeof(*n), GFP_ATOMIC);
	if (!n)
		return;
	n->ev = *ev;
	n->ev.size = sizeof(n->ev);
	list_add_tail(&n->list, &sess->events);
	sess->nevents++;
}

void rdmamig_session_push_event(struct rdmamig_session *sess,
				const struct rdmamig_event *ev)
{
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	push_event_locked(sess, ev);
	spin_unlock_irqrestore(&sess->slock, flags);
	wake_up_all(&sess->wait);
}

/* Put back an event the caller could not take, in front of the others. */
void rdmamig_session_unpop_event(struct rdmamig_session *sess,
				 const struct rdmamig_event *ev)
{
	struct rdmamig_event_node *n;
	unsigned long flags;

	n = kzalloc(sizeof(*n), GFP_KERNEL);
	if (!n)
		return;
	n->ev = *ev;
	spin_lock_irqsave(&sess->slock, flags);
	list_add(&n->list, &sess->events);
	sess->nevents++;
	spin_unlock_irqrestore(&sess->slock, flags);
}

static bool event_ready(struct rdmamig_session *sess)
{
	return !list_empty(&sess->events);
}

/**
 * rdmamig_session_pop_event() - take the oldest event
 * @sess: the session
 * @ev: filled with the event
 * @nonblock: return -EAGAIN instead of waiting
 *
 * Return: 0, -EAGAIN, or -ERESTARTSYS when a signal came first.
 */
int rdmamig_session_pop_event(struct rdmamig_session *sess,
			      struct rdmamig_event *ev, bool nonblock)
{
	struct rdmamig_event_node *n;
	unsigned long flags;
	int ret;

	for (;;) {
		spin_lock_irqsave(&sess->slock, flags);
		n = list_first_entry_or_null(&sess->events,
					     struct rdmamig_event_node, list);
		if (n) {
			list_del(&n->list);
			sess->nevents--;
		}
		spin_unlock_irqrestore(&sess->slock, flags);
		if (n) {
			*ev = n->ev;
			kfree(n);
			return 0;
		}
		if (nonblock)
			return -EAGAIN;
		ret = wait_event_interruptible(sess->wait, event_ready(sess));
		if (ret)
			return ret;
	}
}

void rdmamig_session_set_notifier(void (*fn)(struct rdmamig_session *sess,
					     enum rdmamig_notify what))
{
	notifier = fn;
}

/*
 * Tell the faces; state changes are told once per state.  Any context:
 * the notifier must not sleep.
 */
void rdmamig_session_notify(struct rdmamig_session *sess,
			    enum rdmamig_notify what)
{
	unsigned long flags;
	bool tell = true;

	if (what == RDMAMIG_NOTIFY_STATE) {
		spin_lock_irqsave(&sess->slock, flags);
		tell = sess->notified != sess->state;
		sess->notified = sess->state;
		spin_unlock_irqrestore(&sess->slock, flags);
	}
	if (tell && notifier)
		notifier(sess, what);
}

static void fail_locked(struct rdmamig_session *sess, int error,
			bool notify_peer, const char *reason)
{
	struct rdmamig_event ev = {
		.type = RDMAMIG_EVENT_FAILED,
		.error = error,
	};

	lockdep_assert_held(&sess->slock);
	if (!rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_FAILED))
		return;
	sess->error = error;
	sess->t_end = ktime_get();
	strscpy(sess->reason, reason, sizeof(sess->reason));
	sess->conn.fail_notify = notify_peer;
	push_event_locked(sess, &ev);
}

/**
 * rdmamig_session_fail() - fail the session once, with a reason
 * @sess: the session
 * @error: negative errno reported to the VMM
 * @notify_peer: send an ERROR message before disconnecting
 * @fmt: the reason, shown to the VMM and the administrator
 *
 * Any context.  Later failures keep the first reason.  Disconnecting is
 * left to a work item so that this can be called from completions.
 */
void rdmamig_session_fail(struct rdmamig_session *sess, int error,
			  bool notify_peer, const char *fmt, ...)
{
	char reason[RDMAMIG_REASON_MAX];
	unsigned long flags;
	bool first = false;
	va_list args;

	/* A signal ends a wait; it is no error to report to anyone. */
	if (error == -ERESTARTSYS)
		error = -EINTR;
	va_start(args, fmt);
	vsnprintf(reason, sizeof(reason), fmt, args);
	va_end(args);

	spin_lock_irqsave(&sess->slock, flags);
	if (!state_terminal(sess->state)) {
		fail_locked(sess, error, notify_peer, reason);
		first = true;
	}
	spin_unlock_irqrestore(&sess->slock, flags);
	if (!first)
		return;

	sess_warn_rl(sess, "failed: %s (%d)\n", reason, error);
	wake_up_all(&sess->wait);
	wake_up_all(&sess->conn.tx_wait);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	rdmamig_session_queue_work(sess, sess->conn.wq, &sess->conn.fail_work);
}

/* The peer sent ERROR: fail with its reason, without answering. */
void rdmamig_session_peer_failed(struct rdmamig_session *sess, int error,
				 const char *text)
{
	rdmamig_session_fail(sess, error, false, "peer: %s", text);
}

bool rdmamig_session_dead(struct rdmamig_session *sess)
{
	return state_terminal(READ_ONCE(sess->state)) &&
	       READ_ONCE(sess->state) != RDMAMIG_STATE_COMPLETED;
}

/* The error a failed session reports, or 0. */
int rdmamig_session_error(struct rdmamig_session *sess)
{
	unsigned long flags;
	int err = 0;

	spin_lock_irqsave(&sess->slock, flags);
	if (sess->state == RDMAMIG_STATE_FAILED ||
	    sess->state == RDMAMIG_STATE_CANCELLED)
		err = sess->error ?: -EIO;
	spin_unlock_irqrestore(&sess->slock, flags);
	return err;
}

/**
 * rdmamig_session_wait() - wait for a condition or the session's end
 * @sess: the session
 * @cond: evaluated after every wake-up of @sess->wait
 * @timeout: in jiffies
 *
 * Return: 0 when @cond holds, the session's error if it failed first,
 * -ETIMEDOUT, or -ERESTARTSYS on a signal.
 */
int rdmamig_session_wait(struct rdmamig_session *sess,
			 bool (*cond)(struct rdmamig_session *),
			 unsigned long timeout)
{
	long ret;

	ret = wait_event_interruptible_timeout(sess->wait,
			cond(sess) || rdmamig_session_dead(sess), timeout);
	if (ret < 0)
		return ret;
	if (cond(sess))
		return 0;
	if (rdmamig_session_dead(sess))
		return rdmamig_session_error(sess);
	return -ETIMEDOUT;
}

static u64 ms_between(ktime_t a, ktime_t b)
{
	if (!a || !b || ktime_before(b, a))
		return 0;
	return ktime_ms_delta(b, a);
}

void rdmamig_session_get_stats(struct rdmamig_session *sess,
			       struct rdmamig_stats *st)
{
	unsigned long flags;
	ktime_t end;

	spin_lock_irqsave(&sess->slock, flags);
	*st = sess->stats;
	st->size = sizeof(*st);
	st->state = sess->state;
	st->role = sess->role;
	st->error = sess->error;
	/* CAP_AUTH once the peer proved the secret, not when offered. */
	st->caps = (sess->caps & ~RDMAMIG_WIRE_CAP_AUTH) |
		   (sess->authenticated ? RDMAMIG_CAP_AUTH : 0);
	st->wire_version = sess->wire_version;
	st->channels = sess->conn.nchan;
	strscpy(st->reason, sess->reason, sizeof(st->reason));
	end = sess->t_end ?: ktime_get();
	st->setup_ms = ms_between(sess->t_start, sess->t_setup);
	st->total_ms = ms_between(sess->t_start, end);
	st->downtime_ms = sess->t_final ? ms_between(sess->t_final, end) : 0;
	spin_unlock_irqrestore(&sess->slock, flags);
	st->scan_ms = div_u64(READ_ONCE(sess->scan_ns), NSEC_PER_MSEC);
	st->keys_wait_ms = div_u64(READ_ONCE(sess->keys_wait_ns), NSEC_PER_MSEC);
	st->writes_wait_ms = div_u64(READ_ONCE(sess->writes_wait_ns), NSEC_PER_MSEC);
	st->register_ms = div_u64(READ_ONCE(sess->register_ns), NSEC_PER_MSEC);
	st->zero_ms = div_u64(READ_ONCE(sess->zero_ns), NSEC_PER_MSEC);
	rdmamig_postcopy_get_stats(sess, st);
	rdmamig_mc_get_stats(sess, st);
}

/* Holding the list mutex keeps every session on the list alive. */
void rdmamig_sessions_lock(void)
{
	mutex_lock(&session_list_mutex);
}

void rdmamig_sessions_unlock(void)
{
	mutex_unlock(&session_list_mutex);
}

/* Under rdmamig_sessions_lock(). */
struct rdmamig_session *rdmamig_session_find(u32 id)
{
	struct rdmamig_session *sess;

	lockdep_assert_held(&session_list_mutex);
	list_for_each_entry(sess, &session_list, list)
		if (sess->id == id)
			return sess;
	return NULL;
}

/**
 * rdmamig_sessions_for_each_from() - walk sessions for a netlink dump
 * @cursor: the smallest id still to visit; moved past each one visited
 * @fn: called under the list mutex; non-zero stops the walk
 * @arg: for @fn
 *
 * Sessions are visited in id order, so a dump that takes several parts
 * neither skips nor repeats a session that lives throughout, whatever is
 * created or destroyed between the parts.  Quadratic in the number of
 * sessions, which is small.
 *
 * Return: what @fn returned last, or 0.
 */
int rdmamig_sessions_for_each_from(unsigned long *cursor,
				   int (*fn)(struct rdmamig_session *sess, void *arg),
				   void *arg)
{
	struct rdmamig_session *sess, *next;
	int ret = 0;

	mutex_lock(&session_list_mutex);
	for (;;) {
		next = NULL;
		list_for_each_entry(sess, &session_list, list)
			if (sess->id >= *cursor && (!next || sess->id < next->id))
				next = sess;
		if (!next)
			break;
		ret = fn(next, arg);
		if (ret)
			break;
		*cursor = next->id + 1UL;
	}
	mutex_unlock(&session_list_mutex);
	return ret;
}

/*
 * A netlink socket (@net, @portid) closed: its sessions go with it.  A
 * request of that socket cannot be running: the socket stays open until
 * its requests return.  The port id was freed before this notice, and
 * another socket may hold it by now, with sessions of its own: only the
 * sessions of a socket that is dead (orphaned by netlink_release()) go.
 * @portid 0: every netlink-owned session (unload).
 */
void rdmamig_sessions_destroy_owned(struct net *net, u32 portid)
{
	struct rdmamig_session *sess, *tmp;
	LIST_HEAD(owned);

	mutex_lock(&session_list_mutex);
	list_for_each_entry_safe(sess, tmp, &session_list, list)
		if (sess->nl_sk && (!portid || (sess->nl_portid == portid &&
						sock_flag(sess->nl_sk, SOCK_DEAD))) &&
		    (!net || net_eq(sess->nl_net, net)))
			list_move(&sess->list, &owned);
	mutex_unlock(&session_list_mutex);

	list_for_each_entry_safe(sess, tmp, &owned, list)
		rdmamig_session_destroy(sess);
}

/*
 * The ib_client's .remove: fail every session on the device and release
 * its RDMA resources before the device goes.  Session memory stays until
 * its file is closed.
 */
static struct rdmamig_session *next_on_device(struct ib_device *ib)
{
	struct rdmamig_session *sess;

	mutex_lock(&session_list_mutex);
	list_for_each_entry(sess, &session_list, list) {
		unsigned long flags;
		bool match;

		spin_lock_irqsave(&sess->slock, flags);
		match = sess->ibdev == ib;
		spin_unlock_irqrestore(&sess->slock, flags);
		if (match) {
			rdmamig_session_get(sess);
			mutex_unlock(&session_list_mutex);
			return sess;
		}
	}
	mutex_unlock(&session_list_mutex);
	return NULL;
}

/*
 * One session at a time, each with a reference, and the list mutex not
 * held while it is torn down: teardown waits for the session's works,
 * and nobody else's request may wait on that.  Teardown clears @ibdev,
 * so the walk moves on.
 */
static void sessions_device_removed(struct ib_device *ib)
{
	struct rdmamig_session *sess;

	while ((sess = next_on_device(ib))) {
		rdmamig_session_fail(sess, -ENODEV, false,
				     "RDMA device %s removed", dev_name(&ib->dev));
		mutex_lock(&sess->lock);
		rdmamig_session_teardown(sess);
		mutex_unlock(&sess->lock);
		rdmamig_session_put(sess);
	}
}

int rdmamig_sessions_init(void)
{
	defaults.channels = clamp_t(u32, num_online_cpus(), 1, DEFAULT_CHANNELS_MAX);
	rdmamig_ibdev_register_remove_hook(sessions_device_removed);
	return 0;
}

void rdmamig_sessions_exit(void)
{
	/* Every file holds a module reference: no session is left. */
	WARN_ON(!list_empty(&session_list));
}
