/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Channel 0's writes in flight and their pace under a keepalive (pace.c).
 */
#ifndef _RDMAMIG_PACE_H
#define _RDMAMIG_PACE_H

#include "session.h"

int rdmamig_pace_take(struct rdmamig_session *sess, u32 ch, u64 bytes,
		      unsigned long timeout);
void rdmamig_pace_undo(struct rdmamig_session *sess, u32 ch, u64 bytes);
void rdmamig_pace_done(struct rdmamig_session *sess, u32 ch, u64 bytes);
u32 rdmamig_pace_max_pages(struct rdmamig_session *sess, u32 ch);
/* Under a keepalive, channel 0's writes are cut to no fewer pages (pace.c). */
#define RDMAMIG_PACE_MIN_PAGES	4

#endif /* _RDMAMIG_PACE_H */
