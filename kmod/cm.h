/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Connection management with rdma_cm (cm.c).
 */
#ifndef _RDMAMIG_CM_H
#define _RDMAMIG_CM_H

#include "session.h"

int rdmamig_cm_listen(struct rdmamig_session *sess, struct rdmamig_addr *ua);
int rdmamig_cm_accept(struct rdmamig_session *sess, unsigned long timeout_ms);
int rdmamig_cm_connect(struct rdmamig_session *sess, struct rdmamig_addr *ua);
void rdmamig_cm_stop(struct rdmamig_session *sess);
void rdmamig_cm_release_listener(struct rdmamig_session *sess);

#endif /* _RDMAMIG_CM_H */
