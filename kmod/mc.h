/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Micro-checkpointing (RDMAMIG_WIRE_CAP_MC): after a first full copy by
 * pre-copy rounds, the source (the primary) takes epochs.  At the end of
 * each, its VMM stops the guest and calls RDMAMIG_IOC_MC_EPOCH with the
 * pages dirtied since the last one and the device state; the module
 * copies them into pages of its own (the snapshot) and returns, and the
 * guest runs on while a work sends the snapshot: RDMA WRITEs into the
 * destination's (the backup's) staging, then MC_RUNS, DEVICE_STATE and
 * MC_EPOCH_END.  The backup checks the epoch whole (page count, device
 * state length, XXH64) and only then copies it from staging into its
 * RAM and answers MC_ACK: its memory is always a committed epoch.
 *
 * mc_src.c is the primary, mc_dst.c the backup; both are pre-copy for
 * the first full copy (precopy_src.c and precopy_dst.c's handlers).
 */
#ifndef _RDMAMIG_MC_H
#define _RDMAMIG_MC_H

#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>

struct rdmamig_session;
struct rdmamig_mc_epoch;
struct rdmamig_stats;
struct rdmamig_block_ram;
struct rdmamig_cmd_mc_run;

/* Where the backup's staging chunk @i is, for RDMA WRITE. */
struct rdmamig_mc_key {
	u64 raddr;
	u32 rkey;
};

/* Backup: where a run of staged pages belongs (MC_RUNS, checked). */
struct rdmamig_mc_run {
	u32 block;
	u32 npages;
	u64 first_page;
};

/* The primary's copy of one epoch, immutable once queued. */
struct rdmamig_mc_snap {
	u64 epoch;
	u32 npages;
	struct page **pages;		/* staging order */
	struct rdmamig_cmd_mc_run *runs;	/* wire order, big-endian */
	u32 nruns;
	void *state;			/* device state */
	u32 state_len;
	ktime_t t_taken;
};

/*
 * Embedded in the session.  Locking:
 *  - primary: @keys and @staging_pages are set once by the VMM's thread
 *    in CONNECT (@lock), before any epoch; @queued and @sending change
 *    under the session's @slock: the VMM's thread (MC_EPOCH, @lock held)
 *    fills @queued, the work moves it to @sending and frees it once
 *    acknowledged.  @taken is the VMM thread's (@lock), @acked the rx
 *    work's (MC_ACK), read with READ_ONCE.  The work never takes @lock:
 *    MC_EPOCH may hold it while waiting for the work.
 *  - backup: everything is the rx work's (messages act one at a time
 *    in its ordered work); the counters the statistics read are in
 *    sess->stats under @slock.  Teardown frees it all once that work and
 *    the connection are gone (rdmamig_mc_free()).
 */
struct rdmamig_mc {
	u32 staging_pages;		/* the backup's staging, granted */
	/* Primary. */
	struct work_struct work;	/* sends @sending, then @queued */
	struct rdmamig_mc_key *keys;	/* one per staging chunk */
	u32 nkeys;
	u32 chunks_asked;		/* MC_STAGING_REQUEST sent for these */
	struct rdmamig_mc_snap *queued;
	struct rdmamig_mc_snap *sending;
	u64 taken;
	u64 acked;
	spinlock_t pool_lock;		/* @pool: the VMM's thread and the work */
	struct list_head pool;		/* free snapshot pages, for reuse */
	u32 npool;			/* at most @staging_pages */
	/* Backup. */
	struct rdmamig_block_ram *staging;	/* registered chunks (block.c) */
	struct page **spages;		/* @staging_pages kernel pages */
	bool staging_done;		/* MC_STAGING_REQUEST handled */
	struct rdmamig_mc_run *runs;	/* this epoch's; room for a page each */
	u32 nruns;
	u64 run_pages;
	struct list_head state;		/* this epoch's device state */
	u32 state_len;
	u64 committed;
	bool begun;			/* something of epoch @committed + 1 came */
};

u32 rdmamig_mc_staging_pages(void);
void rdmamig_mc_init(struct rdmamig_session *sess);
void rdmamig_mc_free(struct rdmamig_session *sess);
void rdmamig_mc_dst_free(struct rdmamig_session *sess);
u64 rdmamig_mc_dst_staging_bytes(struct rdmamig_session *sess);
void rdmamig_mc_get_stats(struct rdmamig_session *sess, struct rdmamig_stats *st);

#endif /* _RDMAMIG_MC_H */
