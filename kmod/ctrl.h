/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The control channel: messages, credits, send-queue slots,
 * keepalive and the failure work (ctrl.c).
 */
#ifndef _RDMAMIG_CTRL_H
#define _RDMAMIG_CTRL_H

#include "session.h"

void rdmamig_ctrl_init(struct rdmamig_session *sess);
int rdmamig_ctrl_create(struct rdmamig_session *sess);
void rdmamig_ctrl_destroy(struct rdmamig_session *sess);
int rdmamig_ctrl_post_all_recvs(struct rdmamig_session *sess);
int rdmamig_ctrl_send(struct rdmamig_session *sess, enum rdmamig_msg_type type,
		      u32 repeat, const void *payload, u32 len);
int rdmamig_sq_take(struct rdmamig_session *sess, u32 ch, int n);
void rdmamig_sq_put(struct rdmamig_session *sess, u32 ch, int n);
void rdmamig_ctrl_start_keepalive(struct rdmamig_session *sess);
void rdmamig_ctrl_peer_disconnected(struct rdmamig_session *sess);

#endif /* _RDMAMIG_CTRL_H */
