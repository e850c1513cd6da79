// SPDX-License-Identifier: GPL-2.0
/*
 * Control messages, one table per concern, as netlink.c has one for its
 * commands:
 *  - msg_formats[]: the wire format of each type (command size, whether
 *    it repeats, whether the control channel consumes it itself); every
 *    header is checked against it before anything acts on the message;
 *  - the mode's handlers (struct rdmamig_mode_ops.msgs, in the mode's own
 *    file): which of this side's functions acts on a type, and in which
 *    phases of the session.  A type this role never receives has none.
 *
 * A new message: its format here, its handler in the table of each mode
 * that takes it, its meaning in Documentation/protocol.rst.
 */
#include "rdmamig.h"

#include "proto.h"
#include "session.h"
#include "auth.h"
#include "mode.h"
#include "msg.h"

#define SIZE_NONE	0	/* no payload */
#define SIZE_BYTES	(-1)	/* one command of any length: device state */

struct msg_format {
	int size;		/* of one command; SIZE_NONE or SIZE_BYTES */
	bool single;		/* repeat must be 1 */
	bool ctrl;		/* consumed by the control channel (ctrl.c) */
};

static const struct msg_format msg_formats[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_ERROR]		= { sizeof(struct rdmamig_cmd_error), true, true },
	[RDMAMIG_MSG_READY]		= { SIZE_NONE, false, true },
	[RDMAMIG_MSG_KEEPALIVE]		= { SIZE_NONE, false, true },
	[RDMAMIG_MSG_DEVICE_STATE]	= { SIZE_BYTES },
	[RDMAMIG_MSG_RAM_BLOCKS_REQUEST] = { sizeof(struct rdmamig_cmd_block) },
	[RDMAMIG_MSG_RAM_BLOCKS_RESULT]	= { sizeof(struct rdmamig_cmd_blocks_result), true },
	[RDMAMIG_MSG_COMPRESS]		= { sizeof(struct rdmamig_cmd_compress) },
	[RDMAMIG_MSG_REGISTER_REQUEST]	= { sizeof(struct rdmamig_cmd_chunk) },
	[RDMAMIG_MSG_REGISTER_PAGES_REQUEST] = { sizeof(struct rdmamig_cmd_pages) },
	[RDMAMIG_MSG_REGISTER_RESULT]	= { sizeof(struct rdmamig_cmd_key) },
	[RDMAMIG_MSG_REGISTER_FINISHED]	= { sizeof(struct rdmamig_cmd_round), true },
	[RDMAMIG_MSG_UNREGISTER_REQUEST] = { sizeof(struct rdmamig_cmd_chunk) },
	[RDMAMIG_MSG_UNREGISTER_FINISHED] = { sizeof(struct rdmamig_cmd_chunk) },
	[RDMAMIG_MSG_ACK]		= { sizeof(struct rdmamig_cmd_round), true },
	[RDMAMIG_MSG_COMPLETE]		= { sizeof(struct rdmamig_cmd_round), true },
	[RDMAMIG_MSG_BARRIER]		= { sizeof(struct rdmamig_cmd_round), true },
	[RDMAMIG_MSG_AUTH]		= { sizeof(struct rdmamig_cmd_auth), true },
	[RDMAMIG_MSG_CHANNELS_REQUEST]	= { sizeof(struct rdmamig_cmd_channel) },
	[RDMAMIG_MSG_CHANNELS_RESULT]	= { sizeof(struct rdmamig_cmd_channel) },
	[RDMAMIG_MSG_READ_REQUEST]	= { sizeof(struct rdmamig_cmd_read) },
	[RDMAMIG_MSG_READ_DONE]		= { sizeof(struct rdmamig_cmd_chunk) },
	[RDMAMIG_MSG_POSTCOPY_CHUNKS]	= { sizeof(struct rdmamig_cmd_read) },
	[RDMAMIG_MSG_POSTCOPY_RUN]	= { sizeof(struct rdmamig_cmd_postcopy), true },
	[RDMAMIG_MSG_POSTCOPY_RELEASE]	= { sizeof(struct rdmamig_cmd_chunk) },
	[RDMAMIG_MSG_POSTCOPY_END]	= { sizeof(struct rdmamig_cmd_postcopy), true },
	[RDMAMIG_MSG_POSTCOPY_OWED]	= { sizeof(struct rdmamig_cmd_pages) },
	[RDMAMIG_MSG_POSTCOPY_WANT]	= { sizeof(struct rdmamig_cmd_chunk) },
	[RDMAMIG_MSG_MC_STAGING_REQUEST] = { sizeof(struct rdmamig_cmd_mc_staging), true },
	[RDMAMIG_MSG_MC_STAGING_RESULT]	= { sizeof(struct rdmamig_cmd_key) },
	[RDMAMIG_MSG_MC_RUNS]		= { sizeof(struct rdmamig_cmd_mc_run) },
	[RDMAMIG_MSG_MC_EPOCH_END]	= { sizeof(struct rdmamig_cmd_mc_epoch), true },
	[RDMAMIG_MSG_MC_ACK]		= { sizeof(struct rdmamig_cmd_mc_epoch), true },
};

static const struct msg_format *format(u16 type)
{
	const struct msg_format *f;

	if (type >= __RDMAMIG_MSG_MAX)
		return NULL;
	f = &msg_formats[type];
	return f->size || f->ctrl ? f : NULL;	/* a hole: unknown */
}

/**
 * rdmamig_msg_check() - header checks common to every type
 * @data: the message as received
 * @byte_len: bytes received
 * @type: set to the header's type
 * @repeat: set to its command count
 * @len: set to its payload length
 *
 * Return: NULL, or what is wrong.
 */
const char *rdmamig_msg_check(const void *data, u32 byte_len, u16 *type,
			      u32 *repeat, u32 *len)
{
	const struct rdmamig_msg_hdr *hdr = data;
	const struct msg_format *f;

	if (byte_len < sizeof(*hdr))
		return "message shorter than its header";
	*len = be32_to_cpu(hdr->len);
	*type = be16_to_cpu(hdr->type);
	*repeat = be32_to_cpu(hdr->repeat);
	if (*len != byte_len - sizeof(*hdr))
		return "length field does not match the message";
	if (hdr->reserved)
		return "reserved header field not zero";
	if (*repeat > RDMAMIG_MAX_REPEAT)
		return "repeat over 4096";
	f = format(*type);
	if (!f)
		return "unknown message type";
	if (f->size == SIZE_BYTES)
		return (*repeat == 1 && *len) ? NULL : "bad device-state message";
	if (f->size == SIZE_NONE)
		return (*repeat || *len) ? "payload in a message without one" : NULL;
	if (!*repeat || (u64)*repeat * f->size != *len)
		return "length does not match repeat count";
	if (*repeat != 1 && f->single)
		return "repeat must be 1 for this type";
	return NULL;
}

/* READY, KEEPALIVE, ERROR: the control channel's own (a checked @type). */
bool rdmamig_msg_is_ctrl(u16 type)
{
	return msg_formats[type].ctrl;
}

static u8 phase(struct rdmamig_session *sess)
{
	if (!rdmamig_peer_ready(sess))
		return RDMAMIG_PHASE_SETUP;
	if (READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED)
		return RDMAMIG_PHASE_DONE;
	return RDMAMIG_PHASE_RUN;
}

/**
 * rdmamig_msg_dispatch() - act on one checked control message
 * @sess: the session
 * @type: message type; the header was checked by rdmamig_msg_check()
 * @repeat: number of commands, consistent with @len
 * @payload: the commands
 * @len: bytes of @payload
 *
 * Runs in the session's ordered work, so messages act in the order sent.
 * A destination that asked for authentication takes nothing but the
 * source's AUTH first.  A message the mode, role or phase does not allow
 * fails the session.
 */
void rdmamig_msg_dispatch(struct rdmamig_session *sess, u16 type, u32 repeat,
			  const void *payload, u32 len)
{
	const struct rdmamig_mode_ops *ops = rdmamig_mode_ops(sess);
	const struct rdmamig_msg_handler *h = ops ? &ops->msgs[type] : NULL;
	u8 now = phase(sess);

	if (READ_ONCE(sess->auth_pending)) {
		rdmamig_auth_dst_handle(sess, type, payload);
		return;
	}
	if (h && h->handle && (h->phases & now)) {
		h->handle(sess, payload, repeat, len);
		return;
	}
	rdmamig_session_fail(sess, -EPROTO, true,
			     "unexpected message type %u %s", type,
			     now == RDMAMIG_PHASE_SETUP ? "before the RAM blocks" :
							  "for this side");
}
