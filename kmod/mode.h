/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Modes and roles (mode.c): what a session does with its connection,
 * chosen once from its role and the negotiated capabilities.  Each
 * mode-and-role is one file and one ops table: precopy_src.c,
 * precopy_dst.c, pull_src.c, pull_dst.c (pre-copy rounds read by the
 * destination, RDMAMIG_WIRE_CAP_PULL).  A new mode adds its files, its capability bit and a
 * line in rdmamig_mode_select().  Post-copy (postcopy_src.c,
 * postcopy_dst.c) is a phase that any of them may end with: the switch
 * replaces the ops with its own (rdmamig_mode_switch()).  Micro-
 * checkpointing (mc_src.c, mc_dst.c, RDMAMIG_WIRE_CAP_MC) is a mode of
 * its own whose first full copy is pre-copy's.
 */
#ifndef _RDMAMIG_MODE_H
#define _RDMAMIG_MODE_H

#include "session.h"

struct rdmamig_msg_handler;

/*
 * Every function but the handlers is called by the VMM's thread with
 * @lock held; a NULL one is refused as not this side's (ENOTCONN).
 */
struct rdmamig_mode_ops {
	const char *name;
	/* Control messages this side takes, by type (msg.h). */
	const struct rdmamig_msg_handler *msgs;
	/* Connected and authenticated: what the source does before rounds. */
	int (*start)(struct rdmamig_session *sess);
	int (*send_round)(struct rdmamig_session *sess, struct rdmamig_round *r,
			  const unsigned long *bitmap);
	int (*end_round)(struct rdmamig_session *sess);
	int (*complete)(struct rdmamig_session *sess);
	/* Micro-checkpointing's primary: RDMAMIG_IOC_MC_EPOCH. */
	int (*mc_epoch)(struct rdmamig_session *sess, struct rdmamig_mc_epoch *e);
	/* Teardown, before the connection stops: end the mode's own works. */
	void (*stop)(struct rdmamig_session *sess);
};

extern const struct rdmamig_mode_ops rdmamig_precopy_src_ops;
extern const struct rdmamig_mode_ops rdmamig_precopy_dst_ops;
extern const struct rdmamig_mode_ops rdmamig_pull_src_ops;
extern const struct rdmamig_mode_ops rdmamig_pull_dst_ops;
extern const struct rdmamig_mode_ops rdmamig_postcopy_src_ops;
extern const struct rdmamig_mode_ops rdmamig_postcopy_dst_ops;
extern const struct rdmamig_mode_ops rdmamig_mc_src_ops;
extern const struct rdmamig_mode_ops rdmamig_mc_dst_ops;

/* Set once the connection is made (cm.c), read by the rx work. */
static inline const struct rdmamig_mode_ops *
rdmamig_mode_ops(struct rdmamig_session *sess)
{
	/* Pairs with the release in rdmamig_mode_select(). */
	return smp_load_acquire(&sess->ops);
}

void rdmamig_mode_init(struct rdmamig_session *sess);
void rdmamig_mode_select(struct rdmamig_session *sess);
void rdmamig_mode_switch(struct rdmamig_session *sess,
			 const struct rdmamig_mode_ops *ops);
int rdmamig_mode_start(struct rdmamig_session *sess);
int rdmamig_mode_send_round(struct rdmamig_session *sess,
			    struct rdmamig_round *r, const unsigned long *bitmap);
int rdmamig_mode_end_round(struct rdmamig_session *sess);
int rdmamig_mode_complete(struct rdmamig_session *sess);
int rdmamig_mode_mc_epoch(struct rdmamig_session *sess, struct rdmamig_mc_epoch *e);
void rdmamig_mode_stop(struct rdmamig_session *sess);
void rdmamig_mode_free(struct rdmamig_session *sess);

/* Mode-specific, before a mode is chosen. */
int rdmamig_precopy_src_memlock_check(struct rdmamig_session *sess);
void rdmamig_precopy_dst_pinall_work(struct work_struct *work);

#endif /* _RDMAMIG_MODE_H */
