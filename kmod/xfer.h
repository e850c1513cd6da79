/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The data path and the handling of every control message (xfer.c).
 */
#ifndef _RDMAMIG_XFER_H
#define _RDMAMIG_XFER_H

#include "session.h"

int rdmamig_xfer_send_round(struct rdmamig_session *sess,
			    struct rdmamig_round *r, const unsigned long *bitmap);
int rdmamig_xfer_end_round(struct rdmamig_session *sess);
int rdmamig_xfer_complete(struct rdmamig_session *sess);
int rdmamig_xfer_exchange_blocks(struct rdmamig_session *sess);
int rdmamig_xfer_memlock_check(struct rdmamig_session *sess);
bool rdmamig_xfer_sparse(void);
void rdmamig_xfer_handle(struct rdmamig_session *sess, u16 type, u32 repeat,
			 const void *payload, u32 len);

#endif /* _RDMAMIG_XFER_H */
