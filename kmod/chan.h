/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The extra data channels (chan.c).
 */
#ifndef _RDMAMIG_CHAN_H
#define _RDMAMIG_CHAN_H

#include "session.h"

int rdmamig_chan_connect(struct rdmamig_session *sess);
void rdmamig_chan_dst_request(struct rdmamig_session *sess, const void *payload,
			      u32 repeat, u32 len);
void rdmamig_chan_src_result(struct rdmamig_session *sess, const void *payload,
			     u32 repeat, u32 len);
void rdmamig_chan_stop(struct rdmamig_session *sess);
void rdmamig_chan_destroy(struct rdmamig_session *sess);

#endif /* _RDMAMIG_CHAN_H */
