/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pre-copy destination (precopy_dst.c): the handlers and checks that the
 * pull destination (pull_dst.c) shares, every message but the source's
 * registrations being the same in both.
 */
#ifndef _RDMAMIG_PRECOPY_DST_H
#define _RDMAMIG_PRECOPY_DST_H

#include "session.h"

struct rdmamig_block_ram *rdmamig_precopy_dst_chunk(struct rdmamig_session *sess,
						    const struct rdmamig_cmd_chunk *cmd,
						    u32 *chunk);
bool rdmamig_precopy_dst_map_ok(struct rdmamig_session *sess,
				struct rdmamig_block_ram *b, u32 chunk,
				const unsigned long *map, const char *what);
void rdmamig_precopy_dst_map(const struct rdmamig_cmd_pages *cmd,
			     unsigned long *map);
bool rdmamig_precopy_dst_distinct(struct rdmamig_session *sess, const void *cmds,
				  size_t size, u32 n, const char *what);

/* Message handlers (struct rdmamig_msg_handler). */
void rdmamig_precopy_dst_blocks(struct rdmamig_session *sess, const void *payload,
				u32 n, u32 len);
void rdmamig_precopy_dst_compress(struct rdmamig_session *sess, const void *payload,
				  u32 n, u32 len);
void rdmamig_precopy_dst_round_end(struct rdmamig_session *sess, const void *payload,
				   u32 repeat, u32 len);
void rdmamig_precopy_dst_complete(struct rdmamig_session *sess, const void *payload,
				  u32 repeat, u32 len);
void rdmamig_precopy_dst_barrier(struct rdmamig_session *sess, const void *payload,
				 u32 repeat, u32 len);
void rdmamig_precopy_dst_register_request(struct rdmamig_session *sess,
					  const void *payload, u32 n, u32 len);
void rdmamig_precopy_dst_register_pages_request(struct rdmamig_session *sess,
						const void *payload, u32 n, u32 len);
void rdmamig_precopy_dst_unregister(struct rdmamig_session *sess,
				    const void *payload, u32 n, u32 len);
void rdmamig_precopy_dst_device_state(struct rdmamig_session *sess,
				      const void *payload, u32 repeat, u32 len);

#endif /* _RDMAMIG_PRECOPY_DST_H */
