/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The extra data channels (chan.c).
 */
#ifndef _RDMAMIG_CHAN_H
#define _RDMAMIG_CHAN_H

#include "session.h"

int rdmamig_chan_connect(struct rdmamig_session *sess);
void rdmamig_chan_handle(struct rdmamig_session *sess, u16 type, u32 repeat,
			 const struct rdmamig_cmd_channel *cmds);
struct ib_qp *rdmamig_chan_qp(struct rdmamig_session *sess, u32 ch);
void rdmamig_chan_stop(struct rdmamig_session *sess);
void rdmamig_chan_drain(struct rdmamig_session *sess);
void rdmamig_chan_destroy(struct rdmamig_session *sess);

#endif /* _RDMAMIG_CHAN_H */
