// SPDX-License-Identifier: GPL-2.0
/*
 * The choice of a session's mode, and the calls the VMM makes into it
 * (SEND_ROUND, END_ROUND, COMPLETE by ioctl or netlink).
 */
#include "rdmamig.h"

#include "session.h"
#include "mode.h"
#include "postcopy.h"
#include "mc.h"

/* Works of every mode exist from creation on: teardown cancels them. */
void rdmamig_mode_init(struct rdmamig_session *sess)
{
	INIT_WORK(&sess->pinall_work, rdmamig_precopy_dst_pinall_work);
	rdmamig_postcopy_init(sess);
	rdmamig_mc_init(sess);
}

/*
 * From the CM handler once the capabilities are known: the source when
 * the destination accepted, the destination before it accepts.  Nothing
 * of the peer's is dispatched before (no message arrives before the
 * connection is established); a destination whose accept failed
 * chooses again for the next source.
 */
void rdmamig_mode_select(struct rdmamig_session *sess)
{
	const struct rdmamig_mode_ops *ops;

	if (sess->caps & RDMAMIG_WIRE_CAP_MC)
		ops = sess->role == RDMAMIG_ROLE_SOURCE ? &rdmamig_mc_src_ops :
							  &rdmamig_mc_dst_ops;
	else if (sess->caps & RDMAMIG_WIRE_CAP_PULL)
		ops = sess->role == RDMAMIG_ROLE_SOURCE ? &rdmamig_pull_src_ops :
							  &rdmamig_pull_dst_ops;
	else
		ops = sess->role == RDMAMIG_ROLE_SOURCE ? &rdmamig_precopy_src_ops :
							  &rdmamig_precopy_dst_ops;
	/* Pairs with rdmamig_mode_ops(): the rx work sees the table whole. */
	smp_store_release(&sess->ops, ops);
}

/*
 * Post-copy's switch: from the VMM's thread (source) or the rx work
 * (destination), once nothing of the old mode is in flight.
 */
void rdmamig_mode_switch(struct rdmamig_session *sess,
			 const struct rdmamig_mode_ops *ops)
{
	smp_store_release(&sess->ops, ops);
}

static int not_this_side(struct rdmamig_session *sess)
{
	return rdmamig_session_error(sess) ?: -ENOTCONN;
}

int rdmamig_mode_start(struct rdmamig_session *sess)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);

	return ops && ops->start ? ops->start(sess) : 0;
}

int rdmamig_mode_send_round(struct rdmamig_session *sess,
			    struct rdmamig_round *r, const unsigned long *bitmap)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);

	lockdep_assert_held(&sess->lock);
	if (!ops || !ops->send_round)
		return not_this_side(sess);
	return ops->send_round(sess, r, bitmap);
}

int rdmamig_mode_end_round(struct rdmamig_session *sess)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);

	lockdep_assert_held(&sess->lock);
	if (!ops || !ops->end_round)
		return not_this_side(sess);
	return ops->end_round(sess);
}

int rdmamig_mode_complete(struct rdmamig_session *sess)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);

	lockdep_assert_held(&sess->lock);
	if (!ops || !ops->complete)
		return not_this_side(sess);
	return ops->complete(sess);
}

/* The checkpointing primary's; ENOTCONN before, EOPNOTSUPP without it. */
int rdmamig_mode_mc_epoch(struct rdmamig_session *sess, struct rdmamig_mc_epoch *e)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);

	lockdep_assert_held(&sess->lock);
	if (!ops || !ops->mc_epoch)
		return rdmamig_session_error(sess) ?: (ops ? -EOPNOTSUPP : -ENOTCONN);
	return ops->mc_epoch(sess, e);
}

/* Teardown, with @closing set: nothing queues the mode's works again. */
void rdmamig_mode_stop(struct rdmamig_session *sess)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);

	if (ops && ops->stop)
		ops->stop(sess);
	/* The pin-all registrations post on channel 0: end them first. */
	cancel_work_sync(&sess->pinall_work);
	rdmamig_postcopy_stop(sess);
}

/* At destroy, after teardown: what the modes kept for the session. */
void rdmamig_mode_free(struct rdmamig_session *sess)
{
	rdmamig_mc_free(sess);
}
