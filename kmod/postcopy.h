/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Post-copy (RDMAMIG_WIRE_CAP_POSTCOPY): the phase a session of any
 * pre-copy mode may end with.  The source stops its workload, names the
 * pages it still owes (RDMAMIG_ROUND_POSTCOPY) and switches
 * (RDMAMIG_IOC_POSTCOPY): it registers them for RDMA READ and tells the
 * destination where they are.  The destination runs at once; its VMM
 * fetches what the guest touches, then everything else, one
 * RDMAMIG_IOC_FETCH at a time, and places the pages with userfaultfd.
 *
 * postcopy_src.c is the source, postcopy_dst.c the destination,
 * postcopy.c what both keep: this state, its statistics and its end.
 */
#ifndef _RDMAMIG_POSTCOPY_H
#define _RDMAMIG_POSTCOPY_H

#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>

struct rdmamig_session;
struct rdmamig_round;
struct rdmamig_fetch;
struct rdmamig_stats;
struct rdmamig_cmd_postcopy;

/* Destination: where the source put a chunk's owed pages. */
struct rdmamig_pc_chunk {
	u64 raddr;		/* the first owed page, back to back from it */
	u32 rkey;
	u16 left;		/* owed pages not yet read */
	bool named;		/* POSTCOPY_OWED named it */
	bool keyed;		/* POSTCOPY_CHUNKS gave its key (@lock) */
	bool wanted;		/* POSTCOPY_WANT sent for it (@lock) */
};

/* Source: chunks whose keys a fault of the destination waits for. */
#define RDMAMIG_PC_WANT_MAX	64

struct rdmamig_pc_want {
	u32 block;
	u32 chunk;
};

/*
 * Fault service times in microseconds, on a logarithmic scale: 8 buckets
 * per power of two (12.5 % wide), enough for a percentile.
 */
#define RDMAMIG_PC_HIST_SUB	8
#define RDMAMIG_PC_HIST_BUCKETS	(40 * RDMAMIG_PC_HIST_SUB)

/*
 * Embedded in the session.  Locking:
 *  - @rwsem: every FETCH and OWED holds it for reading while it uses the
 *    connection and the arrays below; rdmamig_postcopy_stop() (teardown)
 *    takes it for writing, so that nothing uses them once it returned.
 *    FETCH runs without the session's @lock: the destination VMM's
 *    threads fetch in parallel while another blocks in read().
 *  - @lock (spinlock, taken with interrupts off: the statistics are read
 *    from a notification in a completion's softirq too) protects the
 *    bitmaps, the chunks and the counters.
 *  - The arrays are allocated by the rx work (destination) or the VMM's
 *    thread under @lock (source) before @active is set, freed only by
 *    rdmamig_postcopy_stop().
 */
struct rdmamig_postcopy {
	struct rw_semaphore rwsem;
	spinlock_t lock;
	bool active;		/* switched: the arrays are complete */
	bool stopped;		/* teardown: nothing may use them */
	bool done;		/* every owed page is read */
	bool resumed;		/* took over a failed session's state */
	bool taken;		/* its state was taken over: it has none */

	/* Per block: the pages owed at the switch (both sides). */
	unsigned long *owed[RDMAMIG_MAX_BLOCKS];
	/*
	 * Per block, destination: owed and not yet claimed by a FETCH;
	 * source: owed and not yet released by the destination.
	 */
	unsigned long *todo[RDMAMIG_MAX_BLOCKS];
	/* Destination, per block: read from the source at least once. */
	unsigned long *got[RDMAMIG_MAX_BLOCKS];
	/* Destination, per block and chunk. */
	struct rdmamig_pc_chunk *chunks[RDMAMIG_MAX_BLOCKS];
	/* Source, per block: the chunks whose keys were sent. */
	unsigned long *keyed[RDMAMIG_MAX_BLOCKS];
	/* Source: POSTCOPY_WANT's chunks, a ring (@lock). */
	struct rdmamig_pc_want wants[RDMAMIG_PC_WANT_MAX];
	u32 want_head, want_tail;

	u64 owed_pages;		/* at the switch */
	u64 owed_chunks;
	u64 unclaimed;		/* destination: bits set in @todo */
	u64 fetched;		/* destination: pages read */
	u64 released;		/* source: chunks the destination released */
	/*
	 * Destination after a resume: pages the sessions before read (the
	 * carried fault and sweep counts), and of them those this switch
	 * named again (counted as read at POSTCOPY_OWED): the statistics'
	 * owed pages are the first switch's.
	 */
	u64 resumed_read;
	u64 renamed_read;
	ktime_t t_stop;		/* source: the first owed page named */
	ktime_t t_switch;	/* POSTCOPY_RUN sent (source), received */
	ktime_t t_done;

	/*
	 * Destination: fault calls between their claim and their pages in
	 * the buffer; a sweep call waits until there are none (@fault_wq),
	 * so that a fault's READs do not queue behind the sweep's.
	 */
	u32 faults_inflight;
	wait_queue_head_t fault_wq;

	/* Where the sweep looks next: after the last fault. */
	u32 hint_block;
	u64 hint_page;

	u64 faults;
	u64 fault_pages;
	u64 sweep_pages;
	u64 fetched_twice;
	u64 fault_us_max;
	u32 hist[RDMAMIG_PC_HIST_BUCKETS];
};

/* postcopy.c */
void rdmamig_postcopy_init(struct rdmamig_session *sess);
void rdmamig_postcopy_stop(struct rdmamig_session *sess);
int rdmamig_postcopy_alloc_block(struct rdmamig_session *sess, u32 i);
void rdmamig_postcopy_get_stats(struct rdmamig_session *sess,
				struct rdmamig_stats *st);
void rdmamig_postcopy_fault_time(struct rdmamig_session *sess, u64 us);
bool rdmamig_postcopy_negotiated(struct rdmamig_session *sess);
bool rdmamig_postcopy_counts_ok(struct rdmamig_session *sess,
				const struct rdmamig_cmd_postcopy *cmd, const char *what);

int rdmamig_postcopy_resume(struct rdmamig_session *sess,
			    struct rdmamig_session *old);

/* postcopy_src.c */
int rdmamig_postcopy_src_owe(struct rdmamig_session *sess,
			     const struct rdmamig_round *r,
			     const unsigned long *bitmap);
int rdmamig_postcopy_src_switch(struct rdmamig_session *sess);

/* postcopy_dst.c */
void rdmamig_postcopy_dst_owed_msg(struct rdmamig_session *sess,
				   const void *payload, u32 n, u32 len);
void rdmamig_postcopy_dst_run(struct rdmamig_session *sess, const void *payload,
			      u32 repeat, u32 len);
int rdmamig_postcopy_dst_fetch(struct rdmamig_session *sess,
			       struct rdmamig_fetch *f);
int rdmamig_postcopy_dst_owed(struct rdmamig_session *sess,
			      const struct rdmamig_round *r);

#endif /* _RDMAMIG_POSTCOPY_H */
