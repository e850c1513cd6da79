/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A migration session: one per open of /dev/rdmamig.
 *
 * Locking:
 *  - @lock (mutex) serialises everything that changes the session's
 *    configuration or RDMA resources: the VMM's ioctls and read/write, and
 *    teardown.  Blocking ioctls hold it while they wait; every such wait
 *    also ends when the session fails, so teardown (which fails the session
 *    first) always gets the mutex.
 *  - @slock (spinlock, taken from completion handlers in softirq) protects
 *    state, error, events, the device-state queue, credits, the lists
 *    of control buffers and the counters in @stats (which
 *    rdmamig_session_get_stats() copies under it).
 *  - The CM event handler and the control-channel work never take @lock.
 *
 * Lifetime: the owner (a file, or the netlink socket that created it)
 * holds the reference rdmamig_session_create() returns, and drops it in
 * rdmamig_session_destroy(), which first takes the session off the global
 * list and tears it down.  Whoever finds a session on the list and must
 * leave the list mutex before using it (a netlink CANCEL, device removal,
 * a netlink request of the owner) takes a reference of its own under the
 * mutex: the memory then outlives the owner, and nothing but the struct
 * is left by then.  CM handlers, completions and works hold none: they
 * are all stopped by rdmamig_session_teardown() (see the order there)
 * before the owner lets go.
 */
#ifndef _RDMAMIG_SESSION_H
#define _RDMAMIG_SESSION_H

#include <crypto/hash.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/ktime.h>
#include <linux/rdmamig.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "proto.h"
#include "conn.h"

#define RDMAMIG_MAX_BLOCKS	64

#include "postcopy.h"
#include "mc.h"
#define RDMAMIG_STREAM_MAX	(64 << 20) /* device state queued, destination */

struct rdmamig_session;

/*
 * A registered 1 MiB chunk of a block: the destination's, for the
 * source's writes; in pull mode the source's, for the destination's
 * reads (b->dst is then the source's own array: the name says what the
 * registration is for in push mode, exposing memory to the peer).
 */
struct rdmamig_dst_chunk {
	struct ib_mr *mr;
	struct page **pages;
	struct sg_table sgt;
	unsigned int npages;
	bool own_pins;		/* @pages pinned and charged for the MR */
};

/* Source: what the destination told us about a chunk. */
struct rdmamig_src_chunk {
	struct list_head lru;	/* registered chunks, oldest first */
	u64 raddr;
	u32 rkey;
	bool pending;		/* asked for, no REGISTER_RESULT yet */
	bool registered;	/* key valid; on the LRU list */
};

struct rdmamig_block_ram {
	char name[RDMAMIG_BLOCK_NAME_MAX];
	u64 addr;
	u64 length;
	u32 index;
	u32 nchunks;
	u32 flags;			/* RDMAMIG_BLOCK_* from ADD_BLOCK */
	struct rdmamig_dst_chunk *dst;	/* destination; pull: source */
	struct rdmamig_src_chunk *src;	/* source only */
	/*
	 * Source, when the destination's block is fresh: one bit per page
	 * this session may have made non-zero there (a page it wrote with
	 * RDMA).  A zero page whose bit is clear is zero at the destination
	 * already and is not sent.  NULL: every zero page is sent.
	 * Touched only by the thread sending rounds (@lock), after the
	 * RAM blocks were agreed on.
	 */
	unsigned long *sent;
};

struct rdmamig_event_node {
	struct list_head list;
	struct rdmamig_event ev;
};

struct rdmamig_stream_node {
	struct list_head list;
	u32 len;
	u32 off;		/* bytes already read */
	u8 data[];
};

struct rdmamig_session {
	struct kref ref;
	struct mutex lock;
	spinlock_t slock;
	struct list_head list;		/* on the global session list */
	u32 id;
	/*
	 * Netlink owner: its port id, and the socket itself, held, because
	 * a port id is free for another socket to bind before the closing
	 * one's NETLINK_URELEASE arrives.  0 and NULL: owned by a file.
	 */
	u32 nl_portid;
	struct sock *nl_sk;
	struct net *nl_net;		/* with @nl_portid */
	pid_t owner_pid;		/* tgid that created the session */
	pid_t target_pid;		/* tgid whose memory moves */
	enum rdmamig_role nl_role;	/* role NEW_SESSION asked for */
	char local_addr[64];		/* "addr:port", once known */
	char peer_addr[64];
	enum rdmamig_state notified;	/* last state announced, @slock */

	/* Under @slock. */
	enum rdmamig_state state;	/* changed by session.c's table only */
	enum rdmamig_role role;
	int error;
	char reason[RDMAMIG_REASON_MAX];
	bool peer_ready;		/* blocks exchanged and checked */
	bool accepted;			/* ACCEPT returned 0 once, @lock */
	bool completing;		/* destination saw COMPLETE */
	struct list_head events;
	unsigned int nevents;
	struct list_head stream;	/* device state, destination */
	size_t stream_bytes;
	bool stream_eof;
	wait_queue_head_t wait;		/* anything under @slock changed */

	/* Configuration, under @lock. */
	struct rdmamig_params params;
	struct rdmamig_block_ram *blocks[RDMAMIG_MAX_BLOCKS];
	u32 nblocks;
	struct mm_struct *mm;		/* owner's mm, mmgrab()bed */
	unsigned long memlock_pages;	/* owner's RLIMIT_MEMLOCK, in pages */
	bool ipc_lock;			/* owner has CAP_IPC_LOCK */
	atomic64_t pinned_pages;	/* long-term pins accounted to mm */

	/* Negotiated. */
	u32 caps;
	/* Mode and role (mode.c), set once connected; rdmamig_mode_ops(). */
	const struct rdmamig_mode_ops *ops;
	u32 wire_version;

	/* Authentication (auth.c). */
	struct crypto_shash *auth_tfm;	/* keyed with the secret; @lock */
	struct rdmamig_cm_priv auth_req;	/* private data both sides saw */
	struct rdmamig_cm_priv auth_rep;
	bool auth_pending;		/* destination: AUTH not seen yet */
	bool authenticated;		/* the peer proved the secret, @slock */

	/* The device in use, for device removal; under @slock. */
	struct ib_device *ibdev;
	struct rdma_cm_id *listen_id;	/* destination, until it accepts */
	/*
	 * Teardown began (set under @slock): the CM handler idles, no work
	 * is queued (rdmamig_session_queue_work()), the control work handles
	 * no more messages and long loops over a peer's commands stop.
	 */
	bool closing;
	int cm_status;			/* 1: established, <0: failed; @slock */
	/* PD, queue pairs, control channel and their works (conn.c). */
	struct rdmamig_conn conn;
	/*
	 * Destination: the chunks' registrations (block.c) change under
	 * @reg_mutex: the rx work registers what the source asks for while
	 * @pinall_work registers every chunk of a pin-all session.  Neither
	 * takes @lock (teardown holds it while it cancels both).
	 */
	struct mutex reg_mutex;
	struct work_struct pinall_work;
	/* Post-copy, both sides (postcopy.h has its locking). */
	struct rdmamig_postcopy pc;
	/* Micro-checkpointing, both sides (mc.h has its locking). */
	struct rdmamig_mc mc;
#ifdef CONFIG_RDMAMIG_FAULT_INJECTION
	int hostile;			/* selftests: see hostile.c */
#endif

	/* Source data path (precopy_src.c, xfer.c). */
	u32 next_chan;			/* where the next run goes */
	int send_error;			/* first failed RDMA WRITE status */
	struct list_head lru;		/* registered chunks, oldest first */
	u32 registered_chunks;
	u64 keys_pending;		/* REGISTER_RESULTs awaited */
	u64 unreg_pending;
	u64 ack_seq;			/* last ACK-requesting message sent */
	u64 acks_got;			/* last sequence the peer ACKed */
	u64 round_pages;
	u64 round_zero_pages;
	u64 round_zero_skipped;		/* of those, not sent (fresh block) */
	u64 round_bytes;
	ktime_t round_start;
	/*
	 * Pull source (pull_src.c): chunks named in READ_REQUESTs, and
	 * confirmed by READ_DONE (under @slock); the count the VMM's thread
	 * waits for.  The destination answers in order.
	 */
	u64 reads_sent;
	u64 reads_done;
	u64 reads_target;

	/* Statistics (struct rdmamig_stats fields), under @slock. */
	struct rdmamig_stats stats;
	ktime_t t_start;
	ktime_t t_setup;
	ktime_t t_final;
	ktime_t t_end;

	/*
	 * Where the time went (the *_ms statistics), in ns.  Each is added
	 * to by one context at a time: the source's data path (@lock), or
	 * the destination's registrations (@reg_mutex) and rx work; read
	 * with READ_ONCE.
	 */
	u64 scan_ns;
	u64 keys_wait_ns;
	u64 writes_wait_ns;
	u64 register_ns;
	u64 zero_ns;
};

/* The RAM blocks were exchanged and agreed on: rounds may flow. */
static inline bool rdmamig_peer_ready(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->peer_ready);
}

/* Add the time since @t0 to one of the session's *_ns counters. */
static inline void rdmamig_time_add(u64 *ns, ktime_t t0)
{
	WRITE_ONCE(*ns, *ns + ktime_to_ns(ktime_sub(ktime_get(), t0)));
}

#define sess_info(s, fmt, ...) \
	pr_info("session %u: " fmt, (s)->id, ##__VA_ARGS__)
#define sess_warn_rl(s, fmt, ...) \
	pr_warn_ratelimited("session %u: " fmt, (s)->id, ##__VA_ARGS__)

/* How sessions report to the faces, without calling them directly. */
enum rdmamig_notify {
	RDMAMIG_NOTIFY_STATE,		/* the state changed */
	RDMAMIG_NOTIFY_ROUND,		/* a round ended */
	RDMAMIG_NOTIFY_MC,		/* an epoch acknowledged or committed */
};

struct rdmamig_session *rdmamig_session_create(struct mm_struct *mm);
void rdmamig_session_get(struct rdmamig_session *sess);
void rdmamig_session_put(struct rdmamig_session *sess);
bool rdmamig_session_queue_work(struct rdmamig_session *sess,
				struct workqueue_struct *wq,
				struct work_struct *work);
bool rdmamig_session_queue_delayed(struct rdmamig_session *sess,
				   struct delayed_work *dwork,
				   unsigned long delay);
bool rdmamig_session_closing(struct rdmamig_session *sess);
void rdmamig_session_set_notifier(void (*fn)(struct rdmamig_session *sess,
					     enum rdmamig_notify what));
void rdmamig_session_notify(struct rdmamig_session *sess,
			    enum rdmamig_notify what);
struct rdmamig_session *rdmamig_session_find(u32 id);
void rdmamig_sessions_lock(void);
void rdmamig_sessions_unlock(void);
int rdmamig_sessions_for_each_from(unsigned long *cursor,
				   int (*fn)(struct rdmamig_session *sess, void *arg),
				   void *arg);
void rdmamig_sessions_destroy_owned(struct net *net, u32 portid);
void rdmamig_defaults_get(struct rdmamig_params *p);
void rdmamig_defaults_set(const struct rdmamig_params *p);
int rdmamig_params_check(const struct rdmamig_params *p, bool started);
void rdmamig_params_apply(struct rdmamig_params *dst,
			  const struct rdmamig_params *src);
void rdmamig_session_destroy(struct rdmamig_session *sess);
void rdmamig_session_teardown(struct rdmamig_session *sess);
void rdmamig_session_cancel(struct rdmamig_session *sess);
void rdmamig_session_fail(struct rdmamig_session *sess, int error,
			  bool notify_peer, const char *fmt, ...) __printf(4, 5);
void rdmamig_session_peer_failed(struct rdmamig_session *sess, int error,
				 const char *text);
bool rdmamig_session_dead(struct rdmamig_session *sess);
int rdmamig_session_error(struct rdmamig_session *sess);
bool rdmamig_session_change_state_locked(struct rdmamig_session *sess,
					 enum rdmamig_state new);
void rdmamig_session_mark_ready(struct rdmamig_session *sess);
void rdmamig_session_push_event(struct rdmamig_session *sess,
				const struct rdmamig_event *ev);
void rdmamig_session_unpop_event(struct rdmamig_session *sess,
				 const struct rdmamig_event *ev);
int rdmamig_session_pop_event(struct rdmamig_session *sess,
			      struct rdmamig_event *ev, bool nonblock);
void rdmamig_session_get_stats(struct rdmamig_session *sess,
			       struct rdmamig_stats *st);
int rdmamig_session_wait(struct rdmamig_session *sess, bool (*cond)(struct rdmamig_session *),
			 unsigned long timeout);
int rdmamig_sessions_init(void);
void rdmamig_sessions_exit(void);

#endif /* _RDMAMIG_SESSION_H */
