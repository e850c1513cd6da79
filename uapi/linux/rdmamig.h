/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rdmamig: live migration of a process's or a virtual machine's memory
 * over RDMA, done in the kernel.
 *
 * Two faces:
 *
 *   /dev/rdmamig   the VMM's face: one open() is one migration session,
 *                  driven with the ioctls below (see Documentation/uapi.rst).
 *
 *   genetlink family "rdmamig" (RDMAMIG_GENL_NAME, version
 *                  RDMAMIG_GENL_VERSION): the administrator's face, used by
 *                  rdmamigctl (see Documentation/netlink.rst).
 *
 * Netlink commands and their attributes ("admin": needs CAP_NET_ADMIN):
 *
 *   GET_VERSION     doit
 *     reply: VERSION string, PROTO_VERSION u32
 *
 *   GET_DEV         dumpit; one message per RDMA device
 *     reply: DEV_INDEX u32, DEV_NAME string, DEV_NODE_GUID u64 (host
 *            order), DEV_PORTS u32
 *
 *   GET_SESSION     doit with SESSION_ID, or dumpit for all sessions
 *     reply: SESSION_ID u32, ROLE u32 (enum rdmamig_role), STATE u32
 *            (enum rdmamig_state), OWNER_PID u32 (who opened it),
 *            TARGET_PID u32 (whose memory), LOCAL_ADDR / PEER_ADDR string,
 *            CAPS u64 (negotiated), PARAMS nested {param attrs},
 *            STATS nested {STAT_* u64}, ERROR s32, REASON string,
 *            BLOCKS u32 (count), BLOCK_BYTES u64
 *
 *   SET_SESSION     doit, admin: SESSION_ID and any of MAX_BANDWIDTH,
 *                   DOWNTIME_LIMIT_MS (changeable while running)
 *
 *   CANCEL_SESSION  doit, admin: SESSION_ID
 *
 *   GET_DEFAULTS    doit; reply: the param attrs applied to new sessions
 *   SET_DEFAULTS    doit, admin: any param attrs
 *     param attrs: CAPS u64, MAX_BANDWIDTH u64 (bytes/s), MAX_REGISTERED
 *                  u64 (bytes), KEEPALIVE_MS u32, DOWNTIME_LIMIT_MS u32,
 *                  MAX_ROUNDS u32, AUTH u32 (enum rdmamig_auth),
 *                  CHANNELS u32 (1..RDMAMIG_CHANNELS_MAX)
 *
 *   NEW_SESSION     doit, admin: a session over another process's memory
 *     request: TARGET_PID u32, MEM_FD u32: an fd of /proc/TARGET_PID/mem
 *              opened read-write, which proves ptrace-attach rights the
 *              way process_vm_writev() checks them; ROLE u32,
 *              BLOCK nested, repeated: {BLOCK_NAME string, BLOCK_ADDR u64,
 *              BLOCK_LEN u64}; SECRET binary (16-64 bytes; needed
 *              unless AUTH is OFF); optional param attrs
 *     reply:   SESSION_ID u32
 *     The session belongs to the netlink socket that created it: only that
 *     socket drives it, and it is cancelled when the socket closes.
 *
 *   The owner drives its session with (all doit, SESSION_ID required):
 *   LISTEN          HOST string, PORT u32 (0: any); reply: PORT u32
 *   ACCEPT          TIMEOUT_MS u32 (optional)
 *   CONNECT         HOST string, PORT u32, TIMEOUT_MS u32 (optional)
 *   ROUND           BLOCK_INDEX u32, FIRST_PAGE u64, BITMAP binary (u64
 *                   words, bit i = page FIRST_PAGE + i), FLAGS u32
 *                   (RDMAMIG_ROUND_*; RDMAMIG_ROUND_POSTCOPY: the pages
 *                   are owed, as with SEND_ROUND)
 *   END_ROUND       -
 *   COMPLETE        -
 *   POSTCOPY        - (source: as RDMAMIG_IOC_POSTCOPY)
 *   FETCH           destination, in post-copy, as RDMAMIG_IOC_FETCH:
 *                   FLAGS u32 (RDMAMIG_FETCH_*), ADDR u64 (a fault: the
 *                   address in the target's block), BUF u64 and BUF_LEN
 *                   u64 (the staging buffer, in the caller's memory),
 *                   RUNS u64 and NRUNS u32 (sweep, optional: the caller's
 *                   struct rdmamig_fetch_run array)
 *     reply: START u64, NPAGES u64, REMAINING u64, NRUNS u32 (with RUNS)
 *   OWED            destination, in post-copy, as RDMAMIG_IOC_OWED:
 *                   BLOCK_INDEX u32, FIRST_PAGE u64, NPAGES u64, BUF u64
 *                   (the caller's bitmap: u64 words, NPAGES bits)
 *   POSTCOPY_RESUME as RDMAMIG_IOC_POSTCOPY_RESUME: RESUME_FROM u32, the
 *                   id of a session of the same socket, role and blocks
 *                   that failed in post-copy; SESSION_ID takes over its
 *                   state (source: after CONNECT, then POSTCOPY again;
 *                   destination: before LISTEN)
 *   MC_EPOCH        source, with RDMAMIG_CAP_MC, as RDMAMIG_IOC_MC_EPOCH:
 *                   ROUNDS u64 and NROUNDS u32 (the caller's struct
 *                   rdmamig_round array, bitmaps in the caller's memory;
 *                   NROUNDS may be 0), BUF u64 and BUF_LEN u64 (the
 *                   device state, in the caller's memory; optional).  The
 *                   pages are the target's, which the caller has stopped.
 *     reply: EPOCH u64, NPAGES u64, SNAPSHOT_US u64, WAIT_US u64,
 *            STAGING_PAGES u64
 *
 * Multicast group "events" (RDMAMIG_MCGRP_EVENTS):
 *   EVENT_STATE     SESSION_ID, ROLE, STATE, ERROR, REASON: a state change
 *   EVENT_ROUND     SESSION_ID, ROLE, STATS nested: the end of a round
 *   EVENT_MC        SESSION_ID, ROLE, STATS nested: an epoch acknowledged
 *                   (source: STAT_MC_ACKED) or committed (destination:
 *                   STAT_MC_EPOCHS)
 *
 * Every attribute is checked against a per-command policy; a request with
 * an attribute its command does not take is refused, and every refusal
 * carries an extended-ACK message naming the attribute.
 */
#ifndef _UAPI_LINUX_RDMAMIG_H
#define _UAPI_LINUX_RDMAMIG_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define RDMAMIG_DEVICE_NAME	"rdmamig"
#define RDMAMIG_GENL_NAME	"rdmamig"
#define RDMAMIG_GENL_VERSION	1

/* Version of the wire protocol described in Documentation/protocol.rst. */
#define RDMAMIG_PROTO_VERSION	1

enum rdmamig_cmd {
	RDMAMIG_CMD_UNSPEC,
	RDMAMIG_CMD_GET_VERSION,
	RDMAMIG_CMD_GET_DEV,
	RDMAMIG_CMD_GET_SESSION,
	RDMAMIG_CMD_SET_SESSION,
	RDMAMIG_CMD_CANCEL_SESSION,
	RDMAMIG_CMD_GET_DEFAULTS,
	RDMAMIG_CMD_SET_DEFAULTS,
	RDMAMIG_CMD_NEW_SESSION,
	RDMAMIG_CMD_LISTEN,
	RDMAMIG_CMD_ACCEPT,
	RDMAMIG_CMD_CONNECT,
	RDMAMIG_CMD_ROUND,
	RDMAMIG_CMD_END_ROUND,
	RDMAMIG_CMD_COMPLETE,
	RDMAMIG_CMD_EVENT_STATE,	/* notification */
	RDMAMIG_CMD_EVENT_ROUND,	/* notification */
	RDMAMIG_CMD_POSTCOPY,
	RDMAMIG_CMD_FETCH,
	RDMAMIG_CMD_OWED,
	RDMAMIG_CMD_POSTCOPY_RESUME,
	RDMAMIG_CMD_MC_EPOCH,
	RDMAMIG_CMD_EVENT_MC,		/* notification */

	__RDMAMIG_CMD_MAX,
	RDMAMIG_CMD_MAX = __RDMAMIG_CMD_MAX - 1
};

enum rdmamig_attr {
	RDMAMIG_ATTR_UNSPEC,
	RDMAMIG_ATTR_PAD,
	RDMAMIG_ATTR_VERSION,		/* string */
	RDMAMIG_ATTR_PROTO_VERSION,	/* u32 */
	RDMAMIG_ATTR_DEV_INDEX,		/* u32 */
	RDMAMIG_ATTR_DEV_NAME,		/* string */
	RDMAMIG_ATTR_DEV_NODE_GUID,	/* u64 */
	RDMAMIG_ATTR_DEV_PORTS,		/* u32 */
	RDMAMIG_ATTR_SESSION_ID,	/* u32 */
	RDMAMIG_ATTR_ROLE,		/* u32, enum rdmamig_role */
	RDMAMIG_ATTR_STATE,		/* u32, enum rdmamig_state */
	RDMAMIG_ATTR_OWNER_PID,		/* u32 */
	RDMAMIG_ATTR_TARGET_PID,	/* u32 */
	RDMAMIG_ATTR_LOCAL_ADDR,	/* string */
	RDMAMIG_ATTR_PEER_ADDR,		/* string */
	RDMAMIG_ATTR_CAPS,		/* u64, RDMAMIG_CAP_* */
	RDMAMIG_ATTR_MAX_BANDWIDTH,	/* u64, bytes per second */
	RDMAMIG_ATTR_MAX_REGISTERED,	/* u64, bytes */
	RDMAMIG_ATTR_KEEPALIVE_MS,	/* u32 */
	RDMAMIG_ATTR_DOWNTIME_LIMIT_MS,	/* u32 */
	RDMAMIG_ATTR_MAX_ROUNDS,	/* u32 */
	RDMAMIG_ATTR_PARAMS,		/* nested param attrs */
	RDMAMIG_ATTR_STATS,		/* nested RDMAMIG_STAT_* */
	RDMAMIG_ATTR_ERROR,		/* s32, negative errno */
	RDMAMIG_ATTR_REASON,		/* string */
	RDMAMIG_ATTR_BLOCKS,		/* u32 */
	RDMAMIG_ATTR_BLOCK_BYTES,	/* u64 */
	RDMAMIG_ATTR_BLOCK,		/* nested, repeated */
	RDMAMIG_ATTR_BLOCK_NAME,	/* string */
	RDMAMIG_ATTR_BLOCK_ADDR,	/* u64 */
	RDMAMIG_ATTR_BLOCK_LEN,		/* u64 */
	RDMAMIG_ATTR_BLOCK_INDEX,	/* u32 */
	RDMAMIG_ATTR_HOST,		/* string */
	RDMAMIG_ATTR_PORT,		/* u32 */
	RDMAMIG_ATTR_TIMEOUT_MS,	/* u32 */
	RDMAMIG_ATTR_FIRST_PAGE,	/* u64 */
	RDMAMIG_ATTR_BITMAP,		/* binary, u64 words */
	RDMAMIG_ATTR_FLAGS,		/* u32 */
	RDMAMIG_ATTR_MEM_FD,		/* u32, fd of /proc/PID/mem */
	RDMAMIG_ATTR_AUTH,		/* u32, enum rdmamig_auth */
	RDMAMIG_ATTR_SECRET,		/* binary, 16 to 64 bytes */
	RDMAMIG_ATTR_CHANNELS,		/* u32, queue pairs to stripe over */
	RDMAMIG_ATTR_ADDR,		/* u64, an address in a block (the target's) */
	RDMAMIG_ATTR_BUF,		/* u64, an address in the caller's memory */
	RDMAMIG_ATTR_BUF_LEN,		/* u64, bytes */
	RDMAMIG_ATTR_RUNS,		/* u64, the caller's rdmamig_fetch_run[] */
	RDMAMIG_ATTR_NRUNS,		/* u32 */
	RDMAMIG_ATTR_NPAGES,		/* u64 */
	RDMAMIG_ATTR_START,		/* u64, an address in a block */
	RDMAMIG_ATTR_REMAINING,		/* u64, pages */
	RDMAMIG_ATTR_RESUME_FROM,	/* u32, a session id */
	RDMAMIG_ATTR_ROUNDS,		/* u64, the caller's rdmamig_round[] */
	RDMAMIG_ATTR_NROUNDS,		/* u32 */
	RDMAMIG_ATTR_EPOCH,		/* u64 */
	RDMAMIG_ATTR_SNAPSHOT_US,	/* u64 */
	RDMAMIG_ATTR_WAIT_US,		/* u64 */
	RDMAMIG_ATTR_STAGING_PAGES,	/* u64 */

	__RDMAMIG_ATTR_MAX,
	RDMAMIG_ATTR_MAX = __RDMAMIG_ATTR_MAX - 1
};

/* Inside RDMAMIG_ATTR_STATS; all u64 (struct rdmamig_stats). */
enum rdmamig_stat {
	RDMAMIG_STAT_UNSPEC,
	RDMAMIG_STAT_PAD,
	RDMAMIG_STAT_BYTES,
	RDMAMIG_STAT_PAGES,
	RDMAMIG_STAT_ZERO_PAGES,
	RDMAMIG_STAT_ROUNDS,
	RDMAMIG_STAT_CHUNKS_REGISTERED,
	RDMAMIG_STAT_CHUNKS_UNREGISTERED,
	RDMAMIG_STAT_REGISTERED_BYTES,
	RDMAMIG_STAT_DEVICE_STATE_BYTES,
	RDMAMIG_STAT_THROUGHPUT,
	RDMAMIG_STAT_SETUP_MS,
	RDMAMIG_STAT_TOTAL_MS,
	RDMAMIG_STAT_DOWNTIME_MS,
	RDMAMIG_STAT_CHANNELS,		/* negotiated channels */
	RDMAMIG_STAT_SCAN_MS,		/* see struct rdmamig_stats */
	RDMAMIG_STAT_KEYS_WAIT_MS,
	RDMAMIG_STAT_WRITES_WAIT_MS,
	RDMAMIG_STAT_REGISTER_MS,
	RDMAMIG_STAT_ZERO_MS,
	RDMAMIG_STAT_ZERO_SKIPPED,
	RDMAMIG_STAT_POSTCOPY_OWED,	/* post-copy, see struct rdmamig_stats */
	RDMAMIG_STAT_POSTCOPY_MS,
	RDMAMIG_STAT_POSTCOPY_FAULTS,
	RDMAMIG_STAT_POSTCOPY_FAULT_PAGES,
	RDMAMIG_STAT_POSTCOPY_SWEEP_PAGES,
	RDMAMIG_STAT_POSTCOPY_FETCHED_TWICE,
	RDMAMIG_STAT_FAULT_US_P50,
	RDMAMIG_STAT_FAULT_US_P99,
	RDMAMIG_STAT_FAULT_US_MAX,
	RDMAMIG_STAT_POSTCOPY_DOWNTIME_US,
	RDMAMIG_STAT_MC_EPOCHS,		/* micro-checkpointing, see struct rdmamig_stats */
	RDMAMIG_STAT_MC_ACKED,
	RDMAMIG_STAT_MC_PAGES,
	RDMAMIG_STAT_MC_BYTES,
	RDMAMIG_STAT_MC_LAST_PAGES,
	RDMAMIG_STAT_MC_PAUSE_US_LAST,
	RDMAMIG_STAT_MC_PAUSE_US_MAX,
	RDMAMIG_STAT_MC_PAUSE_US_TOTAL,
	RDMAMIG_STAT_MC_ACK_US_LAST,
	RDMAMIG_STAT_MC_ACK_US_MAX,
	RDMAMIG_STAT_MC_DISCARDED,

	__RDMAMIG_STAT_MAX,
	RDMAMIG_STAT_MAX = __RDMAMIG_STAT_MAX - 1
};

#define RDMAMIG_MCGRP_EVENTS	"events"


/*
 * ---------------------------------------------------------------------
 * The VMM API: ioctls on /dev/rdmamig (Documentation/uapi.rst).
 *
 * Every struct begins with __u32 size, set by the caller to sizeof() of
 * the struct it was built with; the kernel accepts any size from the
 * struct's first version on (larger ones with the unknown tail zero, else
 * -E2BIG).  Unknown flags and non-zero reserved fields give -EINVAL.
 * Pointers are passed as __u64.  The kernel dispatches on the ioctl's
 * type and number only, so the size encoded in the number may grow with
 * the struct without breaking older callers.
 * ---------------------------------------------------------------------
 */

/* Capabilities, negotiated with the peer in the rdma_cm private data. */
#define RDMAMIG_CAP_PIN_ALL	(1ULL << 0)	/* register all RAM up front */
/*
 * Pull mode: the destination moves the pre-copy rounds with RDMA READ from
 * pages the source registered for it, instead of the source writing them
 * (Documentation/protocol.rst, "Pull mode").  Wanted by the source,
 * allowed by the destination; with it, pin-all and sparse are not
 * granted (the source registers what each window dirtied).
 */
#define RDMAMIG_CAP_PULL	(1ULL << 3)
/*
 * Post-copy: the source may end the migration with RDMAMIG_IOC_POSTCOPY
 * instead of a final round.  The destination runs at once and fetches,
 * with RDMA READ, the pages the source still owes it
 * (Documentation/protocol.rst, "Post-copy").  Wanted by the source,
 * allowed by the destination; works with push and pull rounds before it.
 */
#define RDMAMIG_CAP_POSTCOPY	(1ULL << 4)
/*
 * Micro-checkpointing: after a first full copy, the source takes epochs
 * (RDMAMIG_IOC_MC_EPOCH): a local snapshot of the pages dirtied since
 * the last one and of the device state, sent in the background while
 * the guest runs on.  The destination, the backup, receives each epoch
 * into staging and applies it to its RAM only once it is whole and
 * verified: its memory is always some acknowledged epoch
 * (Documentation/protocol.rst, "Micro-checkpointing").  Wanted by the
 * source, allowed by the destination; excludes pull and post-copy.
 */
#define RDMAMIG_CAP_MC		(1ULL << 5)
#define RDMAMIG_CAPS_ALL	(RDMAMIG_CAP_PIN_ALL | RDMAMIG_CAP_PULL | \
				 RDMAMIG_CAP_POSTCOPY | RDMAMIG_CAP_MC)
/*
 * Reported only (rdmamig_stats.caps, the session's CAPS attribute): the
 * peer proved it knows the session's secret.  Authentication is not a
 * capability one asks for; rdmamig_params.auth controls it.
 */
#define RDMAMIG_CAP_AUTH	(1ULL << 1)
/*
 * Reported only: dynamic registration exposes just the pages each window
 * writes (the module parameter "sparse" of both ends, off by default).
 */
#define RDMAMIG_CAP_SPARSE	(1ULL << 2)

/* rdmamig_params.mask: which fields RDMAMIG_IOC_SET_PARAMS changes. */
#define RDMAMIG_PARAM_CAPS		(1U << 0)
#define RDMAMIG_PARAM_MAX_BANDWIDTH	(1U << 1)
#define RDMAMIG_PARAM_MAX_REGISTERED	(1U << 2)
#define RDMAMIG_PARAM_KEEPALIVE		(1U << 3)
#define RDMAMIG_PARAM_WIRE_VERSION	(1U << 4)
#define RDMAMIG_PARAM_DOWNTIME_LIMIT	(1U << 5)
#define RDMAMIG_PARAM_MAX_ROUNDS	(1U << 6)
#define RDMAMIG_PARAM_AUTH		(1U << 7)
#define RDMAMIG_PARAM_CHANNELS		(1U << 8)
#define RDMAMIG_PARAM_ALL		((1U << 9) - 1)

/* rdmamig_params.channels: queue pairs a session stripes its writes over. */
#define RDMAMIG_CHANNELS_MAX		8

/*
 * rdmamig_params.auth.  REQUIRED (the default): both ends must hold the
 * same secret (RDMAMIG_IOC_SET_SECRET or the SECRET attribute) and prove
 * it with HMAC-SHA256 before any block layout or key crosses the wire; a
 * peer that does not is refused.  OFF: no authentication, and a peer that
 * requires it refuses us.  Documentation/security.rst explains both.
 */
enum rdmamig_auth {
	RDMAMIG_AUTH_REQUIRED,
	RDMAMIG_AUTH_OFF,
};

struct rdmamig_params {
	__u32 size;
	__u32 mask;		/* RDMAMIG_PARAM_*: fields to set */
	__u64 caps;		/* RDMAMIG_CAP_* wanted (source) or allowed (dest) */
	__u64 max_bandwidth;	/* bytes per second on the data path; 0: no limit */
	__u64 max_registered;	/* bytes registered at once, dynamic mode */
	__u32 keepalive_ms;	/* keepalive interval; 0: off */
	__u32 wire_version;	/* protocol version to offer (for tests) */
	__u32 downtime_limit_ms; /* for orchestrators: converge below this */
	__u32 max_rounds;	/* for orchestrators: then stop anyway */
	__u32 auth;		/* enum rdmamig_auth */
	__u32 reserved;		/* must be 0 */
	/*
	 * Queue pairs, 1..RDMAMIG_CHANNELS_MAX: the source offers this many,
	 * the destination grants at most this many.
	 */
	__u32 channels;
	__u32 reserved2;	/* must be 0 */
};

#define RDMAMIG_SECRET_MIN	16
#define RDMAMIG_SECRET_MAX	64

/*
 * The session's shared secret, set before LISTEN or CONNECT.  It can be
 * replaced until then and is never read back.
 */
struct rdmamig_secret {
	__u32 size;
	__u32 len;		/* bytes of @key used: SECRET_MIN..SECRET_MAX */
	__u8 key[RDMAMIG_SECRET_MAX];
};

#define RDMAMIG_BLOCK_NAME_MAX	64

/* A RAM block: page-aligned range of the caller's address space. */
/*
 * rdmamig_block.flags.  FRESH, on a destination: the block reads as zero
 * (the VMM mapped it anonymous and has not written it).  The source is
 * told, and then sends no zero page it has not written in this session:
 * the destination neither clears nor faults in memory that is zero
 * already.  A source's blocks ignore the flag.
 */
#define RDMAMIG_BLOCK_FRESH	(1U << 0)
#define RDMAMIG_BLOCK_FLAGS_ALL	(RDMAMIG_BLOCK_FRESH)

struct rdmamig_block {
	__u32 size;
	__u32 flags;		/* RDMAMIG_BLOCK_*; others must be 0 */
	__u64 addr;		/* start, page-aligned */
	__u64 length;		/* bytes, page-aligned, non-zero */
	char name[RDMAMIG_BLOCK_NAME_MAX];	/* NUL-terminated, unique */
	__u32 index;		/* out: block index for RDMAMIG_IOC_SEND_ROUND */
	__u32 reserved;
};

#define RDMAMIG_HOST_MAX	64

/* Where to listen (destination) or connect (source). */
struct rdmamig_addr {
	__u32 size;
	__u32 flags;		/* must be 0 */
	char host[RDMAMIG_HOST_MAX];	/* IPv4 or IPv6 literal, NUL-terminated */
	__u16 port;		/* listen: 0 picks one; written back */
	__u16 reserved;
	__u32 timeout_ms;	/* connect/accept: 0 means 30 s */
};

#define RDMAMIG_ROUND_FINAL	(1U << 0)	/* the VMM stopped the guest */
/*
 * Post-copy (source): the pages are owed, not sent.  The VMM stopped the
 * guest and names every page the destination does not have yet (all of
 * them if no round was sent); RDMAMIG_IOC_POSTCOPY exposes them.
 */
#define RDMAMIG_ROUND_POSTCOPY	(1U << 1)

/* One block's dirty pages for the current round (source). */
struct rdmamig_round {
	__u32 size;
	__u32 flags;		/* RDMAMIG_ROUND_* */
	__u32 block;		/* index from RDMAMIG_IOC_ADD_BLOCK */
	__u32 reserved;
	__u64 first_page;	/* page of the block that bit 0 describes */
	__u64 npages;		/* bits in the bitmap */
	__u64 bitmap;		/* pointer to (npages + 63) / 64 __u64 words */
};

enum rdmamig_event_type {
	RDMAMIG_EVENT_NONE,
	RDMAMIG_EVENT_CONNECTED,	/* peer connected, blocks checked */
	RDMAMIG_EVENT_ROUND_DONE,	/* destination: a round is placed */
	RDMAMIG_EVENT_COMPLETED,	/* migration complete */
	RDMAMIG_EVENT_FAILED,		/* session failed; see error */
	/*
	 * Destination: the source switched to post-copy and every device-
	 * state byte before the switch is readable.  @pages: pages owed.
	 * Run the guest; fetch what it lacks with RDMAMIG_IOC_FETCH.
	 */
	RDMAMIG_EVENT_POSTCOPY,
	/*
	 * Micro-checkpointing.  Source: the backup acknowledged epoch
	 * @round (@pages: its pages); the snapshot is freed.  Backup: epoch
	 * @round is applied to the RAM and its device state readable.
	 */
	RDMAMIG_EVENT_MC_ACKED,
	RDMAMIG_EVENT_MC_COMMITTED,
};

struct rdmamig_event {
	__u32 size;
	__u32 type;		/* enum rdmamig_event_type */
	__u64 round;		/* ROUND_DONE: round number, from 1 */
	__u64 pages;		/* ROUND_DONE: pages written in the round */
	__u64 zero_pages;	/* ROUND_DONE: zero pages in the round */
	__s32 error;		/* FAILED: negative errno */
	__u32 reserved;
};

enum rdmamig_role {
	RDMAMIG_ROLE_NONE,
	RDMAMIG_ROLE_SOURCE,
	RDMAMIG_ROLE_DEST,
};

enum rdmamig_state {
	RDMAMIG_STATE_NONE,
	RDMAMIG_STATE_SETUP,
	RDMAMIG_STATE_CONNECTED,
	RDMAMIG_STATE_ACTIVE,
	RDMAMIG_STATE_COMPLETED,
	RDMAMIG_STATE_FAILED,
	RDMAMIG_STATE_CANCELLED,
	RDMAMIG_STATE_POSTCOPY,		/* the destination runs, pages owed */
};

#define RDMAMIG_REASON_MAX	128

struct rdmamig_stats {
	__u32 size;
	__u32 state;		/* enum rdmamig_state */
	__u32 role;		/* enum rdmamig_role */
	__s32 error;		/* negative errno once failed */
	__u64 caps;		/* negotiated capabilities */
	__u64 bytes;		/* bytes written with RDMA (source) */
	__u64 pages;		/* normal pages sent or received */
	__u64 zero_pages;	/* zero pages: not transferred, see zero_skipped */
	__u64 rounds;		/* rounds ended */
	__u64 chunks_registered;
	__u64 chunks_unregistered;
	__u64 registered_bytes;	/* registered now (destination) */
	__u64 device_state_bytes; /* device-state bytes sent or received */
	__u64 throughput;	/* bytes per second of the last round */
	__u64 setup_ms;		/* connect to ready for the first round */
	__u64 total_ms;		/* connect to completion (or now) */
	__u64 downtime_ms;	/* first final round to completion */
	__u32 wire_version;	/* negotiated protocol version */
	__u32 reserved;
	char reason[RDMAMIG_REASON_MAX];	/* why the session failed */
	__u32 channels;		/* negotiated queue pairs; 0 before connecting */
	__u32 reserved2;
	/*
	 * Where the time went: wall-clock ms spent in each step, summed over
	 * the session; each side fills in its own.
	 */
	__u64 scan_ms;		/* source: pinning dirty pages, finding zero pages */
	__u64 keys_wait_ms;	/* source: waiting for the destination's keys */
	__u64 writes_wait_ms;	/* source: waiting for RDMA WRITEs to complete */
	__u64 register_ms;	/* destination: pinning and registering chunks */
	__u64 zero_ms;		/* destination: clearing the pages of COMPRESS */
	/*
	 * Source: zero pages (counted in @zero_pages too) not sent at all,
	 * because the destination's block is RDMAMIG_BLOCK_FRESH and this
	 * session never wrote the page there.
	 */
	__u64 zero_skipped;
	/*
	 * Post-copy, both sides: pages owed at the switch, and the time from
	 * the switch to the last page fetched.  Destination: pages fetched
	 * for a fault (with the window around it) and by the sweep, pages
	 * read from the source more than once (0 unless something is wrong),
	 * and the service time of RDMAMIG_IOC_FETCH for faults: from the
	 * call to the pages in the caller's buffer.
	 */
	__u64 postcopy_owed;
	__u64 postcopy_ms;
	__u64 postcopy_faults;		/* RDMAMIG_IOC_FETCH calls for a fault */
	__u64 postcopy_fault_pages;
	__u64 postcopy_sweep_pages;
	__u64 postcopy_fetched_twice;
	__u64 fault_us_p50;
	__u64 fault_us_p99;
	__u64 fault_us_max;
	/*
	 * Source: the guest's downtime in post-copy, in microseconds: from
	 * the first RDMAMIG_ROUND_POSTCOPY (the guest stopped) to the
	 * POSTCOPY_RUN that lets the destination run (posted).
	 */
	__u64 postcopy_downtime_us;
	/*
	 * Micro-checkpointing (RDMAMIG_CAP_MC).  Source: epochs taken, and
	 * of them acknowledged by the backup; pages and bytes (pages and
	 * device state) of the epochs taken; the pause of each epoch (the
	 * snapshot RDMAMIG_IOC_MC_EPOCH took, a wait for room not counted);
	 * the time from a snapshot to its acknowledgement.  Backup: epochs
	 * committed (@mc_acked the same), their pages and bytes, and
	 * @mc_discarded: the epoch that was arriving when the session ended
	 * and was thrown away (0: none had begun).
	 */
	__u64 mc_epochs;
	__u64 mc_acked;
	__u64 mc_pages;
	__u64 mc_bytes;
	__u64 mc_last_pages;		/* pages of the last epoch */
	__u64 mc_pause_us_last;
	__u64 mc_pause_us_max;
	__u64 mc_pause_us_total;
	__u64 mc_ack_us_last;
	__u64 mc_ack_us_max;
	__u64 mc_discarded;
};

/*
 * RDMAMIG_IOC_MC_EPOCH (source, with RDMAMIG_CAP_MC granted): the guest
 * is stopped; take the epoch's snapshot and return, so that the VMM
 * resumes the guest at once.  @rounds names the pages dirtied since the
 * last epoch (or since the last pre-copy round, for the first), one
 * struct rdmamig_round per block range (its @size this header's, its
 * @flags 0; a page named twice is copied twice), and @state the device
 * state at this point.  The module copies both into memory of its own
 * and sends them to the backup in the background.
 *
 * At most one epoch waits to be sent while another is on its way: a
 * call that finds one waiting blocks until it left (@wait_us; the guest
 * waits too).  An epoch with more pages than the backup's staging
 * (@staging_pages, out) fails with ENOSPC and takes nothing: shorten
 * the epoch, or make the staging larger (module parameter mc_staging_mb
 * on both hosts).
 */
#define RDMAMIG_MC_STATE_MAX	(16U << 20)	/* device state of one epoch */
#define RDMAMIG_MC_ROUNDS_MAX	1024		/* rdmamig_round per epoch */

struct rdmamig_mc_epoch {
	__u32 size;
	__u32 flags;		/* must be 0 */
	__u64 rounds;		/* pointer to struct rdmamig_round[@nrounds] */
	__u32 nrounds;		/* 0..RDMAMIG_MC_ROUNDS_MAX */
	__u32 reserved;		/* must be 0 */
	__u64 state;		/* pointer to @state_len bytes of device state */
	__u64 state_len;	/* 0..RDMAMIG_MC_STATE_MAX */
	__u64 epoch;		/* out: the epoch's number, from 1 */
	__u64 pages;		/* out: pages in the snapshot */
	__u64 snapshot_us;	/* out: time spent taking the snapshot */
	__u64 wait_us;		/* out: time spent waiting for room first */
	__u64 staging_pages;	/* out: the backup's staging, in pages */
};

/*
 * RDMAMIG_IOC_FETCH (destination, in post-copy): read pages the source
 * owes into @buf, for the caller to place (UFFDIO_COPY from @buf to
 * @start, @npages pages).  One call per fault, or per sweep step.
 *
 * A fault (no flag): the page at @addr, and the owed pages that follow
 * it in the same chunk, up to @buf_len and the module parameter
 * "fault_window".  @npages is 0 when the page is fetched already, or
 * being fetched by another call (whose placing wakes the faulting
 * thread); ENOENT when the page was never owed (the source sent it before
 * the switch: it is there unless the VMM discarded it).
 *
 * RDMAMIG_FETCH_SWEEP: @addr is ignored; the module picks the next run of
 * owed pages, nearest the last fault first.  @npages 0 with @remaining 0:
 * every page is fetched (some may still be in other callers' buffers).
 *
 * @buf: page-aligned, @buf_len a multiple of the page size, up to
 * RDMAMIG_FETCH_MAX.  Calls may run in parallel (a fault thread and a
 * sweep thread): no page is read twice.
 *
 * RDMAMIG_FETCH_IN_PLACE (with or without SWEEP): the pages are read
 * straight into the block's own memory where they belong, not into
 * @buf, which must be 0 (@buf_len still bounds the pages).  For shared
 * memory (memfd, shmem) that the block maps at its address while the
 * guest sees it through a second mapping registered for userfaultfd's
 * MINOR faults: the VMM then maps the pages read with UFFDIO_CONTINUE,
 * with no copy.  The block's own mapping must not be registered for
 * MISSING faults: pinning its pages would fault into the userfaultfd.
 */
#define RDMAMIG_FETCH_SWEEP	(1U << 0)
#define RDMAMIG_FETCH_IN_PLACE	(1U << 1)
#define RDMAMIG_FETCH_MAX	(1U << 20)	/* one chunk */

struct rdmamig_fetch {
	__u32 size;
	__u32 flags;		/* RDMAMIG_FETCH_* */
	__u64 addr;		/* fault: an address in a block */
	__u64 buf;		/* staging buffer, page-aligned */
	__u64 buf_len;		/* bytes, a page multiple */
	__u64 start;		/* out: where the first page of @buf belongs */
	__u64 npages;		/* out: pages in @buf (all runs) */
	__u64 remaining;	/* out: pages owed and not yet fetched */
	/*
	 * Sweep, optional: room for @nruns runs at @runs.  The sweep then
	 * fills @buf with up to @nruns runs of owed pages, back to back, and
	 * says where each belongs; @nruns is set to the runs filled.  0: one
	 * run, @start and @npages (a fault is always one run).
	 */
	__u64 runs;		/* pointer to struct rdmamig_fetch_run[@nruns] */
	__u32 nruns;
	__u32 reserved;		/* must be 0 */
};

/* One run of a sweep's buffer: @npages pages that belong at @start. */
struct rdmamig_fetch_run {
	__u64 start;
	__u64 npages;
};

#define RDMAMIG_FETCH_RUNS_MAX	64

#define RDMAMIG_IOC_MAGIC	0xd7

#define RDMAMIG_IOC_SET_PARAMS	_IOW(RDMAMIG_IOC_MAGIC, 0x01, struct rdmamig_params)
#define RDMAMIG_IOC_GET_PARAMS	_IOWR(RDMAMIG_IOC_MAGIC, 0x02, struct rdmamig_params)
#define RDMAMIG_IOC_ADD_BLOCK	_IOWR(RDMAMIG_IOC_MAGIC, 0x03, struct rdmamig_block)
#define RDMAMIG_IOC_LISTEN	_IOWR(RDMAMIG_IOC_MAGIC, 0x04, struct rdmamig_addr)
#define RDMAMIG_IOC_ACCEPT	_IO(RDMAMIG_IOC_MAGIC, 0x05)	/* arg: timeout ms */
#define RDMAMIG_IOC_CONNECT	_IOW(RDMAMIG_IOC_MAGIC, 0x06, struct rdmamig_addr)
#define RDMAMIG_IOC_SEND_ROUND	_IOW(RDMAMIG_IOC_MAGIC, 0x07, struct rdmamig_round)
#define RDMAMIG_IOC_END_ROUND	_IO(RDMAMIG_IOC_MAGIC, 0x08)
#define RDMAMIG_IOC_COMPLETE	_IO(RDMAMIG_IOC_MAGIC, 0x09)
#define RDMAMIG_IOC_CANCEL	_IO(RDMAMIG_IOC_MAGIC, 0x0a)
#define RDMAMIG_IOC_WAIT_EVENT	_IOWR(RDMAMIG_IOC_MAGIC, 0x0b, struct rdmamig_event)
#define RDMAMIG_IOC_GET_STATS	_IOWR(RDMAMIG_IOC_MAGIC, 0x0c, struct rdmamig_stats)
#define RDMAMIG_IOC_SET_SECRET	_IOW(RDMAMIG_IOC_MAGIC, 0x0d, struct rdmamig_secret)
/*
 * Source: switch to post-copy.  The guest is stopped, the owed pages were
 * named with RDMAMIG_ROUND_POSTCOPY and the device state written; they
 * are exposed to the destination, which runs from then on.  Then
 * RDMAMIG_IOC_COMPLETE waits until the destination has fetched every
 * page; our pages are released (unpinned) by then and may be freed.
 */
#define RDMAMIG_IOC_POSTCOPY	_IO(RDMAMIG_IOC_MAGIC, 0x0e)
/* Destination, in post-copy: see struct rdmamig_fetch. */
#define RDMAMIG_IOC_FETCH	_IOWR(RDMAMIG_IOC_MAGIC, 0x0f, struct rdmamig_fetch)
/*
 * Destination, in post-copy: the owed pages of a block range, written to
 * rdmamig_round.bitmap (flags must be 0).  The VMM discards them
 * (MADV_DONTNEED) so that the guest's first touch faults.
 */
#define RDMAMIG_IOC_OWED	_IOW(RDMAMIG_IOC_MAGIC, 0x10, struct rdmamig_round)
/*
 * Post-copy resume over a new connection (arg: the descriptor of the
 * session that failed in post-copy; Documentation/uapi.rst): the new
 * session of the same role and blocks takes over what the old one owed
 * (source) or had fetched (destination).  Source: after CONNECT, before
 * RDMAMIG_IOC_POSTCOPY.  Destination: before LISTEN.
 */
#define RDMAMIG_IOC_POSTCOPY_RESUME _IO(RDMAMIG_IOC_MAGIC, 0x11)
/* Source, micro-checkpointing: see struct rdmamig_mc_epoch. */
#define RDMAMIG_IOC_MC_EPOCH	_IOWR(RDMAMIG_IOC_MAGIC, 0x12, struct rdmamig_mc_epoch)

#endif /* _UAPI_LINUX_RDMAMIG_H */
