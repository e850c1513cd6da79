// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-checkpointing, the backup (destination) side (mc.h has the whole
 * picture).  The first full copy is pre-copy's, with its handlers.  The
 * staging is kernel pages of ours, registered for the primary's RDMA
 * WRITEs for the whole session, as large as the primary asks and our
 * bound (mc_staging_mb) allows, charged to the owner's RLIMIT_MEMLOCK
 * as pinned memory is.  An epoch lands there; MC_RUNS say where each
 * staged page belongs, DEVICE_STATE is held aside, and MC_EPOCH_END
 * makes us check it (page count, state length, XXH64 over both) and
 * only then copy it into the RAM blocks, take its device state as the
 * stream's, and answer MC_ACK.  Until then the RAM is the last committed
 * epoch: an epoch cut short by a failure is dropped whole.
 *
 * Everything here runs in the session's ordered rx work, one message at
 * a time, so the state in struct rdmamig_mc needs no lock of its own;
 * what the statistics show is copied into sess->stats under @slock.
 */
#include "rdmamig.h"

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/xxhash.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "mc.h"
#include "mode.h"
#include "msg.h"
#include "precopy_dst.h"
#include "stream.h"

static void staging_free(struct rdmamig_session *sess)
{
	struct rdmamig_mc *mc = &sess->mc;
	u32 i;

	if (mc->staging) {
		/* Deregistered with the blocks, before the PD (conn.c). */
		for (i = 0; i < mc->staging->nchunks; i++)
			WARN_ON_ONCE(mc->staging->dst[i].mr);
		kvfree(mc->staging->dst);
		kfree(mc->staging);
		mc->staging = NULL;
	}
	if (mc->spages) {
		for (i = 0; i < mc->staging_pages; i++)
			if (mc->spages[i])
				__free_page(mc->spages[i]);
		kvfree(mc->spages);
		mc->spages = NULL;
		rdmamig_pin_unaccount(sess, mc->staging_pages);
	}
	mc->staging_pages = 0;
}

static void epoch_drop(struct rdmamig_mc *mc)
{
	struct rdmamig_stream_node *n, *tmp;

	list_for_each_entry_safe(n, tmp, &mc->state, list)
		kfree(n);
	INIT_LIST_HEAD(&mc->state);
	mc->state_len = 0;
	mc->nruns = 0;
	mc->run_pages = 0;
	WRITE_ONCE(mc->begun, false);
}

/*
 * Bytes of the staging registered, counted in stats.registered_bytes but
 * not against max-registered, which bounds the RAM's registrations.
 * Under @reg_mutex or in the rx work, which registers the staging.
 */
u64 rdmamig_mc_dst_staging_bytes(struct rdmamig_session *sess)
{
	struct rdmamig_block_ram *b = sess->mc.staging;
	u64 bytes = 0;
	u32 i;

	for (i = 0; b && i < b->nchunks; i++)
		bytes += (u64)b->dst[i].npages << PAGE_SHIFT;
	return bytes;
}

/* At destroy, after teardown: the rx work and the connection are gone. */
void rdmamig_mc_dst_free(struct rdmamig_session *sess)
{
	struct rdmamig_mc *mc = &sess->mc;

	epoch_drop(mc);
	kvfree(mc->runs);
	mc->runs = NULL;
	staging_free(sess);
}

/*
 * @nchunks chunks of zeroed pages (a run the primary names but did not
 * write reads as zero, never as old kernel memory), each registered for
 * the primary's RDMA WRITEs.
 */
static int staging_alloc(struct rdmamig_session *sess, u32 nchunks)
{
	struct rdmamig_mc *mc = &sess->mc;
	u32 npages = nchunks * RDMAMIG_CHUNK_PAGES;
	struct rdmamig_block_ram *b;
	u32 i;
	int ret;

	mc->spages = kvcalloc(npages, sizeof(*mc->spages), GFP_KERNEL);
	if (!mc->spages)
		return -ENOMEM;
	/* Pinned for the session as much as the owner's pages: charged so. */
	ret = rdmamig_pin_account(sess, npages);
	if (ret) {
		kvfree(mc->spages);
		mc->spages = NULL;
		return ret;
	}
	mc->staging_pages = npages;
	mc->runs = kvcalloc(npages, sizeof(*mc->runs), GFP_KERNEL);
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!mc->runs || !b) {
		kfree(b);
		return -ENOMEM;
	}
	/* Not one of sess->blocks: a chunk array for block.c to register. */
	strscpy(b->name, "mc-staging", sizeof(b->name));
	b->length = (u64)nchunks << RDMAMIG_CHUNK_SHIFT;
	b->nchunks = nchunks;
	b->dst = kvcalloc(nchunks, sizeof(*b->dst), GFP_KERNEL);
	if (!b->dst) {
		kfree(b);
		return -ENOMEM;
	}
	mc->staging = b;
	for (i = 0; i < npages; i++) {
		mc->spages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!mc->spages[i])
			return -ENOMEM;
		if (!(i % RDMAMIG_CHUNK_PAGES))
			cond_resched();
	}
	for (i = 0; i < nchunks; i++) {
		ret = rdmamig_chunk_register_pinned(sess, b, i,
						    mc->spages + i * RDMAMIG_CHUNK_PAGES,
						    RDMAMIG_CHUNK_PAGES,
						    IB_ACCESS_REMOTE_WRITE);
		if (ret)
			return ret;
	}
	return 0;
}

/* MC_STAGING_REQUEST: once; the most we grant is our own bound. */
static void mc_dst_staging(struct rdmamig_session *sess, const void *payload,
			   u32 repeat, u32 len)
{
	const struct rdmamig_cmd_mc_staging *req = payload;
	struct rdmamig_mc *mc = &sess->mc;
	u64 pages = be64_to_cpu(req->pages);
	struct rdmamig_cmd_key *keys;
	u32 nchunks, i;
	int ret;

	if (mc->staging_done || req->reserved[0] || req->reserved[1] ||
	    req->reserved[2] || !pages || pages % RDMAMIG_CHUNK_PAGES) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "bad staging request (%llu pages)", pages);
		return;
	}
	mc->staging_done = true;
	nchunks = min_t(u64, pages, rdmamig_mc_staging_pages()) / RDMAMIG_CHUNK_PAGES;
	ret = staging_alloc(sess, nchunks);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "no staging of %u MiB for checkpoints (%d)",
				     nchunks, ret);
		return;
	}
	keys = kvcalloc(nchunks, sizeof(*keys), GFP_KERNEL);
	if (!keys) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return;
	}
	for (i = 0; i < nchunks; i++) {
		struct ib_mr *mr = mc->staging->dst[i].mr;

		keys[i].chunk = cpu_to_be32(i);
		keys[i].addr = cpu_to_be64(mr->iova);
		keys[i].rkey = cpu_to_be32(mr->rkey);
	}
	/* After the REG_MRs on the same queue pair: they execute first. */
	rdmamig_ctrl_send(sess, RDMAMIG_MSG_MC_STAGING_RESULT, nchunks, keys,
			  nchunks * sizeof(*keys));
	kvfree(keys);
}

/* MC_RUNS: where the staged pages of the epoch belong, in staging order. */
static void mc_dst_runs(struct rdmamig_session *sess, const void *payload,
			u32 n, u32 len)
{
	const struct rdmamig_cmd_mc_run *cmds = payload;
	struct rdmamig_mc *mc = &sess->mc;
	u32 i;

	if (!mc->staging) {
		rdmamig_session_fail(sess, -EPROTO, true, "epoch pages before the staging");
		return;
	}
	for (i = 0; i < n; i++) {
		u32 block = be32_to_cpu(cmds[i].block);
		u32 np = be32_to_cpu(cmds[i].npages);
		u64 first = be64_to_cpu(cmds[i].first_page);
		u64 bpages;

		if (block >= sess->nblocks || !np) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "epoch %llu: bad run (block %u, %u pages)",
					     mc->committed + 1, block, np);
			return;
		}
		bpages = sess->blocks[block]->length >> PAGE_SHIFT;
		if (first >= bpages || np > bpages - first ||
		    np > mc->staging_pages - mc->run_pages) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "epoch %llu: run of %u pages at page %llu of '%s' is outside the block or the staging",
					     mc->committed + 1, np, first,
					     sess->blocks[block]->name);
			return;
		}
		/* Each run has a page at least: @runs has room for all. */
		mc->runs[mc->nruns].block = block;
		mc->runs[mc->nruns].npages = np;
		mc->runs[mc->nruns].first_page = first;
		mc->nruns++;
		mc->run_pages += np;
	}
	WRITE_ONCE(mc->begun, true);
}

/* DEVICE_STATE: before the staging, pre-copy's stream; then the epoch's. */
static void mc_dst_device_state(struct rdmamig_session *sess,
				const void *payload, u32 repeat, u32 len)
{
	struct rdmamig_mc *mc = &sess->mc;
	struct rdmamig_stream_node *n;

	if (!mc->staging) {
		rdmamig_precopy_dst_device_state(sess, payload, repeat, len);
		return;
	}
	if (len > RDMAMIG_MC_STATE_MAX - mc->state_len) {
		rdmamig_session_fail(sess, -ENOBUFS, true,
				     "epoch %llu: device state over %u bytes",
				     mc->committed + 1, RDMAMIG_MC_STATE_MAX);
		return;
	}
	n = kmalloc(struct_size(n, data, len), GFP_KERNEL);
	if (!n) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return;
	}
	n->len = len;
	n->off = 0;
	memcpy(n->data, payload, len);
	list_add_tail(&n->list, &mc->state);
	mc->state_len += len;
	WRITE_ONCE(mc->begun, true);
}

static u64 staged_csum(struct rdmamig_mc *mc, u64 epoch, u64 pages)
{
	struct rdmamig_stream_node *n;
	struct xxh64_state st;
	u64 i;

	xxh64_reset(&st, epoch);
	for (i = 0; i < pages; i++) {
		void *p = kmap_local_page(mc->spages[i]);

		xxh64_update(&st, p, PAGE_SIZE);
		kunmap_local(p);
		if (!(i % RDMAMIG_CHUNK_PAGES))
			cond_resched();
	}
	list_for_each_entry(n, &mc->state, list)
		xxh64_update(&st, n->data, n->len);
	return xxh64_digest(&st);
}

/*
 * Copy the staged pages into the blocks, run by run, the owner's mm
 * borrowed once.  Not stopped by a failure or teardown (which waits for
 * this work): every page is here already, and stopping half-way would
 * leave the RAM a mixture of two epochs.  It is bounded by the staging.
 */
static int epoch_apply(struct rdmamig_session *sess)
{
	struct rdmamig_mc *mc = &sess->mc;
	u64 slot = 0;
	int ret, way;
	u32 r;

	ret = rdmamig_owner_enter(sess, &way);
	if (ret)
		return ret;
	for (r = 0; r < mc->nruns && !ret; r++) {
		const struct rdmamig_mc_run *run = &mc->runs[r];
		struct rdmamig_block_ram *b = sess->blocks[run->block];

		ret = rdmamig_owner_copy(sess, way,
					 b->addr + (run->first_page << PAGE_SHIFT),
					 mc->spages + slot, run->npages);
		slot += run->npages;
		if (!(r % 64))
			cond_resched();
	}
	rdmamig_owner_leave(sess, way);
	return ret;
}

/* MC_EPOCH_END: check the epoch whole, apply it, commit, acknowledge. */
static void mc_dst_epoch_end(struct rdmamig_session *sess, const void *payload,
			     u32 repeat, u32 len)
{
	const struct rdmamig_cmd_mc_epoch *cmd = payload;
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_MC_COMMITTED };
	struct rdmamig_mc *mc = &sess->mc;
	u64 epoch = be64_to_cpu(cmd->epoch);
	u64 pages = be64_to_cpu(cmd->pages);
	u64 state_bytes = be64_to_cpu(cmd->state_bytes);
	struct rdmamig_cmd_mc_epoch ack = *cmd;
	LIST_HEAD(state);
	int ret;

	if (!mc->staging) {
		rdmamig_session_fail(sess, -EPROTO, true, "epoch end before the staging");
		return;
	}
	if (epoch != mc->committed + 1) {
		rdmamig_session_fail(sess, -EPROTO, true, "epoch %llu ended, expected %llu",
				     epoch, mc->committed + 1);
		return;
	}
	if (pages != mc->run_pages || state_bytes != mc->state_len) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "epoch %llu: %llu pages and %llu state bytes announced, %llu and %u arrived",
				     epoch, pages, state_bytes, mc->run_pages,
				     mc->state_len);
		return;
	}
	if (staged_csum(mc, epoch, pages) != be64_to_cpu(cmd->csum)) {
		rdmamig_session_fail(sess, -EBADMSG, true,
				     "epoch %llu: checksum mismatch, not applied", epoch);
		return;
	}
	ret = epoch_apply(sess);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "epoch %llu applied in part (%d): RAM is no committed epoch",
				     epoch, ret);
		return;
	}

	list_splice_init(&mc->state, &state);
	rdmamig_stream_replace(sess, &state, mc->state_len);
	spin_lock_irq(&sess->slock);
	WRITE_ONCE(mc->committed, epoch);
	sess->stats.mc_epochs = epoch;
	sess->stats.mc_acked = epoch;
	sess->stats.mc_pages += pages;
	sess->stats.mc_bytes += (pages << PAGE_SHIFT) + state_bytes;
	sess->stats.mc_last_pages = pages;
	if (sess->state == RDMAMIG_STATE_CONNECTED)
		rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_ACTIVE);
	spin_unlock_irq(&sess->slock);
	epoch_drop(mc);

	ev.round = epoch;
	ev.pages = pages;
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_MC);
	rdmamig_ctrl_send(sess, RDMAMIG_MSG_MC_ACK, 1, &ack, sizeof(ack));
}

/* Teardown: say what a failure cut short; the RAM stays the last epoch. */
static void mc_dst_stop(struct rdmamig_session *sess)
{
	struct rdmamig_mc *mc = &sess->mc;

	/* The rx work may still run: it is stopped after the modes. */
	if (READ_ONCE(mc->begun) && rdmamig_session_dead(sess))
		sess_info(sess, "checkpoint epoch %llu discarded unfinished; memory is epoch %llu\n",
			  READ_ONCE(mc->committed) + 1, READ_ONCE(mc->committed));
}

/* The epoch that was arriving when the session ended, if any. */
void rdmamig_mc_get_stats(struct rdmamig_session *sess, struct rdmamig_stats *st)
{
	struct rdmamig_mc *mc = &sess->mc;

	if (st->role == RDMAMIG_ROLE_DEST && READ_ONCE(mc->begun) &&
	    (st->state == RDMAMIG_STATE_FAILED || st->state == RDMAMIG_STATE_CANCELLED))
		st->mc_discarded = READ_ONCE(mc->committed) + 1;
}

static const struct rdmamig_msg_handler mc_dst_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_RAM_BLOCKS_REQUEST] = { rdmamig_precopy_dst_blocks, RDMAMIG_PHASE_ANY },
	[RDMAMIG_MSG_CHANNELS_REQUEST]	= { rdmamig_chan_dst_request, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_REGISTER_REQUEST]	= { rdmamig_precopy_dst_register_request, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_REGISTER_PAGES_REQUEST] = { rdmamig_precopy_dst_register_pages_request,
						 RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_UNREGISTER_REQUEST] = { rdmamig_precopy_dst_unregister, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_COMPRESS]		= { rdmamig_precopy_dst_compress, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_DEVICE_STATE]	= { mc_dst_device_state, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_BARRIER]		= { rdmamig_precopy_dst_barrier, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_REGISTER_FINISHED]	= { rdmamig_precopy_dst_round_end, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_COMPLETE]		= { rdmamig_precopy_dst_complete, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_MC_STAGING_REQUEST] = { mc_dst_staging, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_MC_RUNS]		= { mc_dst_runs, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_MC_EPOCH_END]	= { mc_dst_epoch_end, RDMAMIG_PHASE_RUN },
};

const struct rdmamig_mode_ops rdmamig_mc_dst_ops = {
	.name		= "checkpoint destination",
	.msgs		= mc_dst_msgs,
	.stop		= mc_dst_stop,
};
