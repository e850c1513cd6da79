/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamig wire format, protocol version 1 (Documentation/protocol.rst).
 *
 * Every multi-byte field is big-endian (network order), as in QEMU's RDMA
 * migration protocol from which the command set comes.  Structures are
 * packed by construction (naturally aligned, explicit padding); their
 * sizes are checked at build time at the end of this file.
 */
#ifndef _RDMAMIG_PROTO_H
#define _RDMAMIG_PROTO_H

#include <linux/types.h>

#define RDMAMIG_WIRE_MAGIC	0x52444d47	/* "RDMG" */
#define RDMAMIG_WIRE_VERSION	1

/* Capability bits in the private data; same values as RDMAMIG_CAP_*. */
#define RDMAMIG_WIRE_CAP_PIN_ALL	(1U << 0)
#define RDMAMIG_WIRE_CAP_AUTH		(1U << 1)	/* challenge-response */
#define RDMAMIG_WIRE_CAP_SPARSE		(1U << 2)	/* REGISTER_PAGES_REQUEST */
#define RDMAMIG_WIRE_CAP_PULL		(1U << 3)	/* READ_REQUEST, READ_DONE */
#define RDMAMIG_WIRE_CAP_POSTCOPY	(1U << 4)	/* POSTCOPY_* */
#define RDMAMIG_WIRE_CAP_MC		(1U << 5)	/* MC_*: checkpoint epochs */
#define RDMAMIG_WIRE_CAPS_KNOWN		(RDMAMIG_WIRE_CAP_PIN_ALL | RDMAMIG_WIRE_CAP_AUTH | \
					 RDMAMIG_WIRE_CAP_SPARSE | RDMAMIG_WIRE_CAP_PULL | \
					 RDMAMIG_WIRE_CAP_POSTCOPY | RDMAMIG_WIRE_CAP_MC)

/* Why a destination rejected a connection (rdmamig_cm_priv.status). */
enum rdmamig_reject {
	RDMAMIG_REJ_NONE,
	RDMAMIG_REJ_BAD_MAGIC,		/* not an rdmamig peer */
	RDMAMIG_REJ_BAD_VERSION,	/* no common protocol version */
	RDMAMIG_REJ_BUSY,		/* session already has a peer */
	RDMAMIG_REJ_NO_RESOURCES,	/* could not set up the connection */
	RDMAMIG_REJ_AUTH_REQUIRED,	/* source offered no authentication */
};

/*
 * rdma_cm private data of CONNECT_REQUEST and REJECT, and the start of
 * ACCEPT's.  At most 56 bytes fit a connect request on RoCE; this is 32.
 */
struct rdmamig_cm_priv {
	__be32 magic;
	__u8 version;		/* request: highest offered; reply: chosen */
	__u8 status;		/* enum rdmamig_reject, in a REJECT */
	__be16 credits;		/* receive buffers the sender has posted */
	__be32 caps;		/* request: wanted; reply: granted */
	__be32 keepalive_ms;	/* request: offered; reply: chosen, 0 is off */
	__u8 nonce[16];		/* with CAP_AUTH: a fresh random challenge */
};

/* A keepalive interval, offered or chosen, is 0 (off) or within these. */
#define RDMAMIG_KEEPALIVE_MIN_MS	100
#define RDMAMIG_KEEPALIVE_MAX_MS	60000

/*
 * Follows rdmamig_cm_priv in a connect request, and the MAC in ACCEPT.
 * A peer that predates it sends zeroes there (rdma_cm pads private data
 * with zeroes), and zero means one channel: old and new peers still talk.
 * It is outside the HMAC for the same reason; the count is repeated in
 * CHANNELS_REQUEST, over the authenticated connection, and must agree.
 */
struct rdmamig_cm_ext {
	__u8 channels;		/* request: offered; reply: granted; 0 is 1 */
	__u8 reserved[7];	/* zero; ignored on receipt */
};

/* A connect request's private data: 40 of the 56 bytes RoCE allows. */
struct rdmamig_cm_request {
	struct rdmamig_cm_priv priv;
	struct rdmamig_cm_ext ext;
};

#define RDMAMIG_MAC_SIZE	32	/* HMAC-SHA256 */

/*
 * ACCEPT's private data.  With CAP_AUTH granted, @mac is
 * HMAC-SHA256(secret, "rdmamig dst" || request || reply.priv): the
 * destination proves the secret over both challenges, and the source
 * answers with an AUTH message before it sends anything else.
 */
struct rdmamig_cm_accept {
	struct rdmamig_cm_priv priv;
	__u8 mac[RDMAMIG_MAC_SIZE];
	struct rdmamig_cm_ext ext;
};

/* Control messages: one SEND each, a header and an array of commands. */
enum rdmamig_msg_type {
	RDMAMIG_MSG_UNUSED = 1,		/* never valid on the wire */
	RDMAMIG_MSG_ERROR,		/* peer failed: errno and text */
	RDMAMIG_MSG_READY,		/* only returns credits */
	RDMAMIG_MSG_DEVICE_STATE,	/* device-state bytes */
	RDMAMIG_MSG_RAM_BLOCKS_REQUEST,	/* source's block layout */
	RDMAMIG_MSG_RAM_BLOCKS_RESULT,	/* destination agrees */
	RDMAMIG_MSG_COMPRESS,		/* zero these pages */
	RDMAMIG_MSG_REGISTER_REQUEST,	/* expose these chunks */
	RDMAMIG_MSG_REGISTER_RESULT,	/* their rkeys and addresses */
	RDMAMIG_MSG_REGISTER_FINISHED,	/* end of a round */
	RDMAMIG_MSG_UNREGISTER_REQUEST,	/* stop exposing these chunks */
	RDMAMIG_MSG_UNREGISTER_FINISHED, /* done */
	RDMAMIG_MSG_KEEPALIVE,		/* liveness, no payload */
	RDMAMIG_MSG_ACK,		/* round or completion is placed */
	RDMAMIG_MSG_COMPLETE,		/* source is done; end of stream */
	RDMAMIG_MSG_BARRIER,		/* ACK when all before is placed */
	RDMAMIG_MSG_AUTH,		/* source's proof, its first message */
	RDMAMIG_MSG_CHANNELS_REQUEST,	/* source's extra queue pairs */
	RDMAMIG_MSG_CHANNELS_RESULT,	/* destination's, connected */
	RDMAMIG_MSG_REGISTER_PAGES_REQUEST, /* expose these pages of chunks */
	RDMAMIG_MSG_READ_REQUEST,	/* pull: read these pages of ours */
	RDMAMIG_MSG_READ_DONE,		/* pull: they are read */
	RDMAMIG_MSG_POSTCOPY_CHUNKS,	/* post-copy: owed pages, read them */
	RDMAMIG_MSG_POSTCOPY_RUN,	/* post-copy: that was all; run */
	RDMAMIG_MSG_POSTCOPY_RELEASE,	/* post-copy: these chunks are read */
	RDMAMIG_MSG_POSTCOPY_END,	/* post-copy: every page is read */
	RDMAMIG_MSG_POSTCOPY_OWED,	/* post-copy: these pages are owed */
	RDMAMIG_MSG_POSTCOPY_WANT,	/* post-copy: a fault waits for these keys */
	RDMAMIG_MSG_MC_STAGING_REQUEST,	/* checkpointing: set up your staging */
	RDMAMIG_MSG_MC_STAGING_RESULT,	/* its chunks' keys */
	RDMAMIG_MSG_MC_RUNS,		/* where the epoch's staged pages belong */
	RDMAMIG_MSG_MC_EPOCH_END,	/* the epoch is whole: verify, apply */
	RDMAMIG_MSG_MC_ACK,		/* it is applied (committed) */
	__RDMAMIG_MSG_MAX
};

struct rdmamig_msg_hdr {
	__be32 len;		/* bytes of payload after this header */
	__be16 type;		/* enum rdmamig_msg_type */
	__be16 credits;		/* receive buffers returned to the peer */
	__be32 repeat;		/* commands in the payload, all of type */
	__be32 reserved;	/* zero */
};

#define RDMAMIG_MSG_SIZE	(64 * 1024)	/* header and payload */
#define RDMAMIG_MSG_PAYLOAD	(RDMAMIG_MSG_SIZE - sizeof(struct rdmamig_msg_hdr))
#define RDMAMIG_MAX_REPEAT	4096

/* Memory is moved and registered in chunks of this size. */
#define RDMAMIG_CHUNK_SHIFT	20
#define RDMAMIG_CHUNK_SIZE	(1UL << RDMAMIG_CHUNK_SHIFT)
#define RDMAMIG_CHUNK_PAGES	(RDMAMIG_CHUNK_SIZE >> PAGE_SHIFT)

/* ERROR: one command, repeat 1. */
struct rdmamig_cmd_error {
	__be32 error;		/* positive errno */
	__be32 reserved;
	char text[120];		/* NUL-terminated reason */
};

/* RAM_BLOCKS_REQUEST: one per block, repeat = block count. */
struct rdmamig_cmd_block {
	__be64 length;
	__be32 index;
	__be32 reserved;
	char name[64];		/* NUL-terminated */
};

/* COMPRESS: pages to fill with zeroes. */
struct rdmamig_cmd_compress {
	__be32 block;
	__be32 npages;
	__be64 offset;		/* bytes into the block, page-aligned */
};

/* REGISTER_REQUEST and UNREGISTER_REQUEST. */
struct rdmamig_cmd_chunk {
	__be32 block;
	__be32 chunk;		/* index of the 1 MiB chunk in the block */
};

/*
 * REGISTER_PAGES_REQUEST (with CAP_SPARSE, dynamic registration only):
 * expose only the pages of a chunk that @map names, bit i of the map
 * (bit i % 64 of word i / 64) being page i of the chunk.  The destination
 * lays them out back to back: the k-th page named is at addr + k * 4096
 * of the key it returns, so that the source writes them with one RDMA
 * WRITE.  No other page of the chunk is writable through that key.
 */
#define RDMAMIG_PAGE_MAP_WORDS	4	/* 256 bits: one per page of a chunk */

struct rdmamig_cmd_pages {
	__be32 block;
	__be32 chunk;		/* index of the 1 MiB chunk in the block */
	__be64 map[RDMAMIG_PAGE_MAP_WORDS];
};

/* REGISTER_RESULT: same order as the request. */
struct rdmamig_cmd_key {
	__be32 block;
	__be32 chunk;
	__be64 addr;		/* remote address of the chunk's first byte */
	__be32 rkey;
	__be32 reserved;
};

/*
 * The keys of one request go back in one REGISTER_RESULT, so a request
 * names at most this many chunks (2730; the source sends at most 16).
 */
#define RDMAMIG_MAX_REGISTER	(RDMAMIG_MSG_PAYLOAD / sizeof(struct rdmamig_cmd_key))

/*
 * READ_REQUEST (with CAP_PULL): the source registered, for RDMA READ by
 * the destination, the pages of a chunk that @pages.map names, back to
 * back in chunk order from @addr of key @rkey (the layout of
 * REGISTER_PAGES_REQUEST's registration, on the other side).  The
 * destination reads them into the same pages of its chunk, then answers
 * READ_DONE, which echoes the (block, chunk) of every command, in order,
 * as struct rdmamig_cmd_chunk.  At most RDMAMIG_MAX_READ commands: the
 * destination pins all their pages at once (the source sends a window,
 * 16 chunks at most).
 */
struct rdmamig_cmd_read {
	struct rdmamig_cmd_pages pages;	/* block, chunk, map */
	__be64 addr;		/* source's address of the first page named */
	__be32 rkey;
	__be32 reserved;	/* zero */
};

#define RDMAMIG_MAX_READ	64

/*
 * Post-copy (with CAP_POSTCOPY), the source's switch:
 *  - POSTCOPY_OWED: struct rdmamig_cmd_pages, one per chunk with owed
 *    pages (the map names them), each chunk once in the whole switch;
 *  - POSTCOPY_RUN: struct rdmamig_cmd_postcopy, repeat 1: the chunks and
 *    pages named before it.  The destination runs from here on;
 *  - POSTCOPY_CHUNKS: struct rdmamig_cmd_read, after POSTCOPY_RUN, as the
 *    source registers them: where a chunk's owed pages are (its map the
 *    POSTCOPY_OWED one, the pages back to back as for READ_REQUEST);
 *  - POSTCOPY_WANT: struct rdmamig_cmd_chunk, from the destination: a
 *    fault waits for these chunks' keys, register them first;
 *  - POSTCOPY_RELEASE: struct rdmamig_cmd_chunk: the destination read
 *    every owed page of these chunks; the source may release them;
 *  - POSTCOPY_END: struct rdmamig_cmd_postcopy, repeat 1: every owed page
 *    is read (the counts must be the switch's); the source releases all
 *    and completes.  The destination completed before sending it.
 */
struct rdmamig_cmd_postcopy {
	__be64 chunks;
	__be64 pages;
	__be64 reserved[2];	/* zero */
};

/*
 * REGISTER_FINISHED (end of a round), COMPLETE and BARRIER ask for an ACK;
 * the ACK echoes @seq.  Always one command, repeat 1.
 */
struct rdmamig_cmd_round {
	__be64 seq;		/* increases by one with every request */
	__be64 round;
	__be64 pages;		/* pages written (pull: read) with RDMA in the round */
	__be64 zero_pages;	/* zero pages: COMPRESS, or not sent (fresh) */
};

/*
 * RAM_BLOCKS_RESULT: one command, repeat 1, the size of a cmd_round (a
 * destination from before @fresh sent one of those, all zero: no block
 * fresh, which is always safe).  Bit i of @fresh: block i reads as zero
 * wherever the source has not written it in this session, so a zero page
 * the source never sent need not be sent (RDMAMIG_BLOCK_FRESH).
 */
struct rdmamig_cmd_blocks_result {
	__be64 fresh;
	__be64 reserved[3];	/* zero; ignored on receipt */
};

/*
 * AUTH: one command, repeat 1.  @mac is HMAC-SHA256(secret,
 * "rdmamig src" || request || reply.priv); the labels keep either side's
 * answer from serving as the other's.
 */
struct rdmamig_cmd_auth {
	__u8 mac[RDMAMIG_MAC_SIZE];
};

/*
 * CHANNELS_REQUEST and CHANNELS_RESULT: one per extra channel (1 to
 * granted - 1, in order), repeat = granted - 1.  Channel 0 is the rdma_cm
 * connection itself.
 */
struct rdmamig_cmd_channel {
	__be32 channel;		/* 1 .. granted - 1 */
	__be32 qpn;		/* the sender's queue pair, 24 bits */
	__be32 psn;		/* its first send PSN, 24 bits */
	__be32 reserved;	/* zero */
};

/*
 * Micro-checkpointing (with CAP_MC), after the RAM blocks:
 *  - MC_STAGING_REQUEST: struct rdmamig_cmd_mc_staging, repeat 1, once:
 *    the source asks for @pages of staging (a multiple of a chunk);
 *  - MC_STAGING_RESULT: struct rdmamig_cmd_key, one per staging chunk,
 *    in order (@block zero, @chunk its index): the destination's kernel
 *    pages, registered for RDMA WRITE for the whole session.  Fewer
 *    chunks than asked for: what the destination's bound allows;
 *  - then per epoch: RDMA WRITEs of the epoch's pages into staging,
 *    back to back from page 0 of chunk 0; MC_RUNS (struct
 *    rdmamig_cmd_mc_run, repeated) naming, in the same order, where the
 *    staged pages belong; the epoch's device state as DEVICE_STATE; and
 *    MC_EPOCH_END (struct rdmamig_cmd_mc_epoch, repeat 1);
 *  - MC_ACK (struct rdmamig_cmd_mc_epoch, echoing MC_EPOCH_END): the
 *    destination checked the epoch and applied it to its RAM.  The
 *    staging is free for the next epoch from then on.
 */
struct rdmamig_cmd_mc_staging {
	__be64 pages;
	__be64 reserved[3];	/* zero */
};

struct rdmamig_cmd_mc_run {
	__be32 block;
	__be32 npages;		/* at least 1 */
	__be64 first_page;	/* page index in the block */
};

struct rdmamig_cmd_mc_epoch {
	__be64 epoch;		/* from 1, one more each time */
	__be64 pages;		/* staged pages: the sum of MC_RUNS' npages */
	__be64 state_bytes;	/* DEVICE_STATE bytes since the last epoch */
	__be64 csum;		/* XXH64 (seed @epoch) of the pages, then the state */
};

static_assert(sizeof(struct rdmamig_cm_priv) == 32);
static_assert(sizeof(struct rdmamig_cmd_mc_staging) == 32);
static_assert(sizeof(struct rdmamig_cmd_mc_run) == 16);
static_assert(sizeof(struct rdmamig_cmd_mc_epoch) == 32);
static_assert(sizeof(struct rdmamig_cm_ext) == 8);
static_assert(sizeof(struct rdmamig_cm_request) == 40);
static_assert(sizeof(struct rdmamig_cm_accept) == 72);
static_assert(sizeof(struct rdmamig_cmd_channel) == 16);
static_assert(sizeof(struct rdmamig_cmd_auth) == 32);
static_assert(sizeof(struct rdmamig_msg_hdr) == 16);
static_assert(sizeof(struct rdmamig_cmd_error) == 128);
static_assert(sizeof(struct rdmamig_cmd_block) == 80);
static_assert(sizeof(struct rdmamig_cmd_compress) == 16);
static_assert(sizeof(struct rdmamig_cmd_chunk) == 8);
static_assert(sizeof(struct rdmamig_cmd_key) == 24);
static_assert(sizeof(struct rdmamig_cmd_pages) == 40);
static_assert(sizeof(struct rdmamig_cmd_read) == 56);
static_assert(sizeof(struct rdmamig_cmd_round) == 32);
static_assert(sizeof(struct rdmamig_cmd_postcopy) == 32);
static_assert(sizeof(struct rdmamig_cmd_blocks_result) == 32);

#endif /* _RDMAMIG_PROTO_H */
