/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Control messages: the wire format of each type, and their dispatch to
 * the handlers of the session's mode (msg.c).
 */
#ifndef _RDMAMIG_MSG_H
#define _RDMAMIG_MSG_H

#include "session.h"

/*
 * When a handler may run, as the phases of a session.  A message outside
 * its handler's phases, or with no handler in this mode, fails the
 * session: "unexpected message type".
 */
#define RDMAMIG_PHASE_SETUP	BIT(0)	/* before the RAM blocks are agreed */
#define RDMAMIG_PHASE_RUN	BIT(1)	/* after, until completed */
#define RDMAMIG_PHASE_DONE	BIT(2)	/* completed */
#define RDMAMIG_PHASE_AGREED	(RDMAMIG_PHASE_RUN | RDMAMIG_PHASE_DONE)
#define RDMAMIG_PHASE_ANY	(RDMAMIG_PHASE_SETUP | RDMAMIG_PHASE_AGREED)

/*
 * @handle gets the payload after the header checks: @repeat commands of
 * the type's size (one for the single-command types), @len bytes.
 */
struct rdmamig_msg_handler {
	void (*handle)(struct rdmamig_session *sess, const void *payload,
		       u32 repeat, u32 len);
	u8 phases;
};

const char *rdmamig_msg_check(const void *data, u32 byte_len, u16 *type,
			      u32 *repeat, u32 *len);
bool rdmamig_msg_is_ctrl(u16 type);
void rdmamig_msg_dispatch(struct rdmamig_session *sess, u16 type, u32 repeat,
			  const void *payload, u32 len);

#endif /* _RDMAMIG_MSG_H */
