// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile peer, for the selftests only: with the module parameter
 * "hostile" set to a mode, the next session of the mode's side (the
 * source, but for HOSTILE_FRESH_RANGE) that connects mangles one control
 * message the way the mode says, so that the peer's validation can be
 * tested against a real sender.  0 (the default) is off
 * and costs one branch per message.  Documentation/testing.rst lists the
 * modes and what the receiver must answer.
 *
 * Built only into the testbed's module (CONFIG_RDMAMIG_FAULT_INJECTION,
 * hostile.h): a module without it has no such parameter.
 */
#include "rdmamig.h"

#include <linux/module.h>
#include <linux/slab.h>

#include "hostile.h"
#include "proto.h"
#include "session.h"
#include "block.h"
#include "ctrl.h"

static int hostile;
module_param(hostile, int, 0600);
MODULE_PARM_DESC(hostile, "selftests only: mangle one control message of the next source session (0: off)");

enum hostile_mode {
	HOSTILE_OFF,
	HOSTILE_LENGTH,		/* header length disagrees with the message */
	HOSTILE_TRUNCATED,	/* message shorter than its header */
	HOSTILE_UNKNOWN_TYPE,	/* type 99 */
	HOSTILE_REPEAT,		/* repeat 4097 */
	HOSTILE_BLOCK_INDEX,	/* register a chunk of block 999 */
	HOSTILE_CHUNK_RANGE,	/* register a chunk far beyond the block */
	HOSTILE_COMPRESS_RANGE,	/* zero pages past the end of a block */
	HOSTILE_COMPRESS_UNALIGNED, /* zero pages at an unaligned offset */
	HOSTILE_OUT_OF_ORDER,	/* end round 6 when round 1 is due */
	HOSTILE_CREDITS,	/* grant 1000 credits */
	HOSTILE_RESERVED,	/* non-zero reserved header field */
	HOSTILE_SKIP_AUTH,	/* a KEEPALIVE instead of the AUTH answer */
	HOSTILE_BAD_AUTH,	/* AUTH with one bit of the MAC flipped */
	HOSTILE_STALE_KEYS,	/* keep last round's keys and write with them */
	HOSTILE_PAGES_EMPTY,	/* sparse registration of no page */
	HOSTILE_PAGES_SHORT,	/* register one page fewer than is written */
	HOSTILE_FRESH_RANGE,	/* destination: a block past the last is fresh */
	HOSTILE_REGISTER_MANY,	/* register one chunk 2731 times */
	HOSTILE_KEEPALIVE_OFFER, /* source: offer a keepalive of 2^32 - 1 ms */
	HOSTILE_KEEPALIVE_CHOICE, /* destination: choose 2^32 - 1 ms */
	HOSTILE_REGISTER_TWICE,	/* name the first chunk again at the end */
	HOSTILE_COMPRESS_FLOOD,	/* source: COMPRESS every chunk, 12 x 4095 */
	HOSTILE_ACCEPT_FAIL,	/* destination: fail as if rdma_accept() had */
	HOSTILE_COMPRESS_BLOCKS, /* source: 12 x 4095 COMPRESS of whole blocks */
	HOSTILE_CONN_FAIL,	/* destination: fail making the connection */
	HOSTILE_PC_RELEASE,	/* destination: release a chunk of block 999 */
	HOSTILE_PC_READ_OUTSIDE, /* destination: read past what was exposed */
	HOSTILE_PC_END_SHORT,	/* destination: end post-copy one page short */
	HOSTILE_MC_TORN,	/* source: epoch 3's checksum off by one bit */
	HOSTILE_MC_SKIP,	/* source: end epoch 4 when 3 is due */
	HOSTILE_MC_RUN_RANGE,	/* source: epoch 1's first run far past its block */
	HOSTILE_MC_ACK_UNSENT,	/* destination: acknowledge epoch 4 for 3 */
	HOSTILE_MAX
};

static bool destination_mode(int mode)
{
	return mode == HOSTILE_FRESH_RANGE || mode == HOSTILE_KEEPALIVE_CHOICE ||
	       mode == HOSTILE_ACCEPT_FAIL || mode == HOSTILE_CONN_FAIL ||
	       mode == HOSTILE_PC_RELEASE || mode == HOSTILE_PC_READ_OUTSIDE ||
	       mode == HOSTILE_PC_END_SHORT || mode == HOSTILE_MC_ACK_UNSENT;
}

/*
 * Called when a session connects (source) or accepts a connection
 * (destination): it takes the current mode if the mode is its side's.
 * In the loop topology both ends share the parameter.
 */
void rdmamig_hostile_arm(struct rdmamig_session *sess)
{
	int mode = READ_ONCE(hostile);

	if (mode <= HOSTILE_OFF || mode >= HOSTILE_MAX ||
	    destination_mode(mode) != (sess->role == RDMAMIG_ROLE_DEST))
		mode = 0;
	sess->hostile = mode;
	if (sess->hostile)
		sess_warn_rl(sess, "selftest: hostile mode %d armed\n", mode);
}

static bool wants(int mode, u16 type)
{
	switch (mode) {
	case HOSTILE_COMPRESS_RANGE:
	case HOSTILE_COMPRESS_UNALIGNED:
		return type == RDMAMIG_MSG_COMPRESS;
	case HOSTILE_OUT_OF_ORDER:
		return type == RDMAMIG_MSG_REGISTER_FINISHED;
	case HOSTILE_SKIP_AUTH:
	case HOSTILE_BAD_AUTH:
		return type == RDMAMIG_MSG_AUTH;
	case HOSTILE_STALE_KEYS:
		return false;	/* see rdmamig_hostile_keeps_keys() */
	case HOSTILE_PAGES_EMPTY:
	case HOSTILE_PAGES_SHORT:
	case HOSTILE_REGISTER_TWICE:
		/* READ_REQUEST's commands begin with REGISTER_PAGES_REQUEST's. */
		return type == RDMAMIG_MSG_REGISTER_PAGES_REQUEST ||
		       type == RDMAMIG_MSG_READ_REQUEST ||
		       type == RDMAMIG_MSG_POSTCOPY_OWED ||
		       (mode == HOSTILE_REGISTER_TWICE &&
			type == RDMAMIG_MSG_REGISTER_REQUEST);
	case HOSTILE_PC_RELEASE:
		return type == RDMAMIG_MSG_POSTCOPY_RELEASE;
	case HOSTILE_PC_END_SHORT:
		return type == RDMAMIG_MSG_POSTCOPY_END;
	case HOSTILE_PC_READ_OUTSIDE:
		return false;	/* see rdmamig_hostile_read_addr() */
	case HOSTILE_MC_TORN:
	case HOSTILE_MC_SKIP:
		return type == RDMAMIG_MSG_MC_EPOCH_END;
	case HOSTILE_MC_RUN_RANGE:
		return type == RDMAMIG_MSG_MC_RUNS;
	case HOSTILE_MC_ACK_UNSENT:
		return type == RDMAMIG_MSG_MC_ACK;
	case HOSTILE_FRESH_RANGE:
		return type == RDMAMIG_MSG_RAM_BLOCKS_RESULT;
	case HOSTILE_REGISTER_MANY:
		return type == RDMAMIG_MSG_REGISTER_REQUEST;
	case HOSTILE_KEEPALIVE_OFFER:
	case HOSTILE_KEEPALIVE_CHOICE:
		return false;	/* see rdmamig_hostile_keepalive() */
	case HOSTILE_COMPRESS_FLOOD:
	case HOSTILE_COMPRESS_BLOCKS:
		return false;	/* see rdmamig_hostile_flood() */
	case HOSTILE_ACCEPT_FAIL:
		return false;	/* see rdmamig_hostile_accept() */
	case HOSTILE_CONN_FAIL:
		return false;	/* see rdmamig_hostile_conn_create() */
	default:
		/* All four carry the block and chunk at the same offsets. */
		return type == RDMAMIG_MSG_REGISTER_REQUEST ||
		       type == RDMAMIG_MSG_REGISTER_PAGES_REQUEST ||
		       type == RDMAMIG_MSG_READ_REQUEST ||
		       type == RDMAMIG_MSG_POSTCOPY_OWED;
	}
}

/* Source: keep dynamic keys past their round, so a stale write is tried. */
bool rdmamig_hostile_keeps_keys(struct rdmamig_session *sess)
{
	return unlikely(sess->hostile == HOSTILE_STALE_KEYS);
}

/*
 * The keepalive interval a session puts in its rdma_cm private data:
 * 2^32 - 1 ms, past the 60 s a peer may offer or choose, in mode 19
 * (source) and 20 (destination).  The parameter is read here, not
 * armed: the private data goes out before the session is armed.
 */
u32 rdmamig_hostile_keepalive(struct rdmamig_session *sess, u32 ms)
{
	int mode = READ_ONCE(hostile);

	if ((mode == HOSTILE_KEEPALIVE_OFFER && sess->role == RDMAMIG_ROLE_SOURCE) ||
	    (mode == HOSTILE_KEEPALIVE_CHOICE && sess->role == RDMAMIG_ROLE_DEST)) {
		sess_warn_rl(sess, "selftest: hostile mode %d: keepalive %u ms\n",
			     mode, U32_MAX);
		return U32_MAX;
	}
	return ms;
}

/* Destination, in @mode: fail at this point with @err, saying @what. */
static int dest_fails(struct rdmamig_session *sess, int mode, const char *what,
		      int err)
{
	if (READ_ONCE(hostile) != mode || sess->role != RDMAMIG_ROLE_DEST)
		return 0;
	sess_warn_rl(sess, "selftest: hostile mode %d: failing %s\n", mode, what);
	return err;
}

/*
 * Destination, mode 23: the error path of a failed rdma_accept(), taken
 * after the connection's resources were made and its receives posted, as
 * when the source's REJ overtakes our REP.  The parameter is read here:
 * a destination is armed only once it accepted.
 */
int rdmamig_hostile_accept(struct rdmamig_session *sess)
{
	return dest_fails(sess, HOSTILE_ACCEPT_FAIL, "the accept", -EIO);
}

/*
 * Destination, mode 25: rdmamig_conn_create() fails at its last step,
 * with channel 0 made and its receives posted, so that its own unwinding
 * runs (the receives flushed before their buffers go).  Read from the
 * parameter, like mode 23.
 */
int rdmamig_hostile_conn_create(struct rdmamig_session *sess)
{
	return dest_fails(sess, HOSTILE_CONN_FAIL, "the connection's creation", -ENOMEM);
}

/*
 * Destination, mode 27: the first post-copy READ goes one chunk past the
 * address the source gave, beyond its registration (at most a chunk):
 * the source's device must refuse it.
 */
u64 rdmamig_hostile_read_addr(struct rdmamig_session *sess, u64 raddr)
{
	/* FETCH calls run in parallel: one of them takes the mode. */
	if (likely(READ_ONCE(sess->hostile) != HOSTILE_PC_READ_OUTSIDE) ||
	    cmpxchg(&sess->hostile, HOSTILE_PC_READ_OUTSIDE, 0) != HOSTILE_PC_READ_OUTSIDE)
		return raddr;
	sess_warn_rl(sess, "selftest: hostile mode %d: reading past the exposed pages\n",
		     HOSTILE_PC_READ_OUTSIDE);
	return raddr + RDMAMIG_CHUNK_SIZE;
}

#define FLOOD_MESSAGES	12	/* within the credits: no wait for the peer */

/*
 * Source, once the RAM blocks were agreed, as many COMPRESS messages of
 * 4095 commands as the credits take without waiting: in mode 22 each
 * command one whole chunk, round the blocks' chunks (valid: one message
 * is some 4 GiB of zeroing); in mode 24 each a whole block (hours of
 * zeroing a message, which the destination must refuse).
 */
int rdmamig_hostile_flood(struct rdmamig_session *sess)
{
	struct rdmamig_cmd_compress *z;
	u32 n = RDMAMIG_MSG_PAYLOAD / sizeof(*z), m, i, b = 0, c = 0;
	int mode = sess->hostile, ret = 0;

	if (mode != HOSTILE_COMPRESS_FLOOD && mode != HOSTILE_COMPRESS_BLOCKS)
		return 0;
	sess->hostile = 0;
	z = kvcalloc(n, sizeof(*z), GFP_KERNEL);
	if (!z)
		return -ENOMEM;
	for (m = 0; m < FLOOD_MESSAGES && !ret; m++) {
		for (i = 0; i < n; i++) {
			struct rdmamig_block_ram *blk = sess->blocks[b];

			z[i].block = cpu_to_be32(b);
			z[i].npages = cpu_to_be32(rdmamig_chunk_pages(blk, c));
			z[i].offset = cpu_to_be64((u64)c << RDMAMIG_CHUNK_SHIFT);
			if (mode == HOSTILE_COMPRESS_BLOCKS) {
				z[i].npages = cpu_to_be32(min_t(u64, blk->length >> PAGE_SHIFT,
								U32_MAX));
				z[i].offset = 0;
				b = (b + 1) % sess->nblocks;
			} else if (++c == blk->nchunks) {
				c = 0;
				b = (b + 1) % sess->nblocks;
			}
		}
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_COMPRESS, n, z,
					n * sizeof(*z));
	}
	kvfree(z);
	sess_warn_rl(sess, "selftest: hostile mode %d: sent %u COMPRESS messages\n",
		     mode, m);
	return ret;
}

/* Leave the highest page out of the map; the source still writes it. */
static void drop_last_page(struct rdmamig_cmd_pages *cmd)
{
	int w;

	for (w = RDMAMIG_PAGE_MAP_WORDS - 1; w >= 0; w--) {
		u64 word = be64_to_cpu(cmd->map[w]);

		if (word) {
			cmd->map[w] = cpu_to_be64(word & ~(1ULL << __fls(word)));
			return;
		}
	}
}

/*
 * A well-formed REGISTER_REQUEST (the header check passes: repeat is
 * under 4096) whose REGISTER_RESULT would not fit one message: the first
 * chunk named RDMAMIG_MAX_REGISTER + 1 times.  The buffer holds 64 KiB.
 */
static void register_many(struct rdmamig_msg_hdr *hdr, u32 *sge_len)
{
	struct rdmamig_cmd_chunk *c = (void *)(hdr + 1);
	u32 n = RDMAMIG_MAX_REGISTER + 1, i;

	for (i = 1; i < n; i++)
		c[i] = c[0];
	hdr->repeat = cpu_to_be32(n);
	hdr->len = cpu_to_be32(n * sizeof(*c));
	*sge_len = sizeof(*hdr) + n * sizeof(*c);
}

/*
 * A REGISTER_REQUEST or REGISTER_PAGES_REQUEST that names its first chunk
 * once more, at its end (the buffer holds 64 KiB; a window asks for 16).
 */
static void register_twice(struct rdmamig_msg_hdr *hdr, u32 *sge_len)
{
	u32 n = be32_to_cpu(hdr->repeat), len = be32_to_cpu(hdr->len);
	u8 *p = (u8 *)(hdr + 1);

	memcpy(p + len, p, len / n);
	hdr->repeat = cpu_to_be32(n + 1);
	hdr->len = cpu_to_be32(len + len / n);
	*sge_len += len / n;
}

/**
 * rdmamig_hostile_mangle() - spoil a message about to be posted
 * @sess: the sending session
 * @hdr: the message, header and payload filled in
 * @sge_len: bytes to send; may be cut
 */
void rdmamig_hostile_mangle(struct rdmamig_session *sess,
			    struct rdmamig_msg_hdr *hdr, u32 *sge_len)
{
	int mode = sess->hostile;
	void *payload = hdr + 1;

	if (likely(!mode) || !wants(mode, be16_to_cpu(hdr->type)))
		return;
	/*
	 * The epoch modes spoil epoch 3, so that the backup holds a
	 * committed epoch (2) when it refuses: its RAM must stay that one.
	 */
	if ((mode == HOSTILE_MC_TORN || mode == HOSTILE_MC_SKIP ||
	     mode == HOSTILE_MC_ACK_UNSENT) &&
	    be64_to_cpu(((struct rdmamig_cmd_mc_epoch *)payload)->epoch) < 3)
		return;
	sess->hostile = 0;
	switch (mode) {
	case HOSTILE_LENGTH:
		be32_add_cpu(&hdr->len, 8);
		break;
	case HOSTILE_TRUNCATED:
		*sge_len = 8;
		break;
	case HOSTILE_UNKNOWN_TYPE:
		hdr->type = cpu_to_be16(99);
		break;
	case HOSTILE_REPEAT:
		hdr->repeat = cpu_to_be32(RDMAMIG_MAX_REPEAT + 1);
		break;
	case HOSTILE_BLOCK_INDEX:
		((struct rdmamig_cmd_chunk *)payload)->block = cpu_to_be32(999);
		break;
	case HOSTILE_CHUNK_RANGE:
		((struct rdmamig_cmd_chunk *)payload)->chunk = cpu_to_be32(0x7fffffff);
		break;
	case HOSTILE_COMPRESS_RANGE:
		((struct rdmamig_cmd_compress *)payload)->offset =
			cpu_to_be64(1ULL << 40);
		break;
	case HOSTILE_COMPRESS_UNALIGNED:
		be64_add_cpu(&((struct rdmamig_cmd_compress *)payload)->offset, 1);
		break;
	case HOSTILE_OUT_OF_ORDER:
		be64_add_cpu(&((struct rdmamig_cmd_round *)payload)->round, 5);
		break;
	case HOSTILE_CREDITS:
		hdr->credits = cpu_to_be16(1000);
		break;
	case HOSTILE_RESERVED:
		hdr->reserved = cpu_to_be32(1);
		break;
	case HOSTILE_SKIP_AUTH:
		hdr->type = cpu_to_be16(RDMAMIG_MSG_KEEPALIVE);
		hdr->len = 0;
		hdr->repeat = 0;
		*sge_len = sizeof(*hdr);
		break;
	case HOSTILE_BAD_AUTH:
		((struct rdmamig_cmd_auth *)payload)->mac[0] ^= 1;
		break;
	case HOSTILE_PAGES_EMPTY:
		memset(((struct rdmamig_cmd_pages *)payload)->map, 0,
		       sizeof(((struct rdmamig_cmd_pages *)payload)->map));
		break;
	case HOSTILE_PAGES_SHORT:
		drop_last_page((struct rdmamig_cmd_pages *)payload);
		break;
	case HOSTILE_FRESH_RANGE:
		((struct rdmamig_cmd_blocks_result *)payload)->fresh |=
			cpu_to_be64(1ULL << 63);
		break;
	case HOSTILE_REGISTER_MANY:
		register_many(hdr, sge_len);
		break;
	case HOSTILE_REGISTER_TWICE:
		register_twice(hdr, sge_len);
		break;
	case HOSTILE_PC_RELEASE:
		((struct rdmamig_cmd_chunk *)payload)->block = cpu_to_be32(999);
		break;
	case HOSTILE_PC_END_SHORT:
		be64_add_cpu(&((struct rdmamig_cmd_postcopy *)payload)->pages, -1);
		break;
	case HOSTILE_MC_TORN:
		((struct rdmamig_cmd_mc_epoch *)payload)->csum ^= cpu_to_be64(1);
		break;
	case HOSTILE_MC_SKIP:
	case HOSTILE_MC_ACK_UNSENT:
		be64_add_cpu(&((struct rdmamig_cmd_mc_epoch *)payload)->epoch, 1);
		break;
	case HOSTILE_MC_RUN_RANGE:
		((struct rdmamig_cmd_mc_run *)payload)->first_page = cpu_to_be64(1ULL << 40);
		break;
	}
	sess_warn_rl(sess, "selftest: sent a message spoiled by hostile mode %d\n",
		     mode);
}
