/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The device-state stream (stream.c).
 */
#ifndef _RDMAMIG_STREAM_H
#define _RDMAMIG_STREAM_H

#include "session.h"

ssize_t rdmamig_stream_write(struct rdmamig_session *sess,
			     const char __user *buf, size_t len);
ssize_t rdmamig_stream_read(struct rdmamig_session *sess, char __user *buf,
			    size_t len, bool nonblock);
int rdmamig_stream_queue(struct rdmamig_session *sess, const void *data,
			 u32 len);
void rdmamig_stream_replace(struct rdmamig_session *sess,
			    struct list_head *nodes, u32 len);
void rdmamig_stream_free(struct rdmamig_session *sess);

#endif /* _RDMAMIG_STREAM_H */
