// SPDX-License-Identifier: GPL-2.0
/*
 * Pull mode, destination side (RDMAMIG_WIRE_CAP_PULL): instead of
 * registering chunks for the source's writes, we read what the source
 * registered for us.  A READ_REQUEST names, per chunk, the pages to read
 * and where they are on the source (back to back under one key); each
 * command is checked, the pages of our chunk pinned writable, read with
 * the engine (xfer.c, RDMA READ), unpinned dirty, and READ_DONE sent.
 * Every other message is pre-copy's (precopy_dst.c): blocks, COMPRESS,
 * device state, BARRIER, the end of a round (checked here first against
 * the pages we read), COMPLETE.  pull_src.c is the other side.
 *
 * The reads run in the session's ordered rx work, one READ_REQUEST at a
 * time (a window of the source, 16 MiB at most): messages behind it wait,
 * and since they all act in order anyway, only a keepalive's arrival is
 * late, which last_rx records at the completion, not in the work.  A
 * work of its own would let the next request's pins overlap this one's
 * reads; that is for a later step.
 */
#include "rdmamig.h"

#include <linux/mm.h>
#include <linux/slab.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "mode.h"
#include "msg.h"
#include "postcopy.h"
#include "precopy_dst.h"
#include "xfer.h"

/* One command of a READ_REQUEST, checked, and our pages for it. */
struct pull_read {
	struct rdmamig_block_ram *b;
	u32 chunk;
	u32 npages;
	u64 raddr;
	u32 rkey;
	struct page **pages;	/* @npages, pinned once @pinned */
	bool pinned;
};

/*
 * Check one command: its chunk exists, its map names pages of it, its
 * reserved field is zero and its remote span does not wrap.
 * Return: true, or false after failing the session.
 */
static bool check_read(struct rdmamig_session *sess,
		       const struct rdmamig_cmd_read *cmd, struct pull_read *rd,
		       unsigned long *map)
{
	struct rdmamig_cmd_chunk id = { cmd->pages.block, cmd->pages.chunk };
	u64 end;

	rd->b = rdmamig_precopy_dst_chunk(sess, &id, &rd->chunk);
	if (!rd->b)
		return false;
	rdmamig_precopy_dst_map(&cmd->pages, map);
	if (!rdmamig_precopy_dst_map_ok(sess, rd->b, rd->chunk, map, "read"))
		return false;
	rd->npages = bitmap_weight(map, RDMAMIG_CHUNK_PAGES);
	rd->raddr = be64_to_cpu(cmd->addr);
	rd->rkey = be32_to_cpu(cmd->rkey);
	if (cmd->reserved ||
	    check_add_overflow(rd->raddr, (u64)rd->npages << PAGE_SHIFT, &end)) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "read of '%s' chunk %u: bad %s", rd->b->name,
				     rd->chunk, cmd->reserved ? "reserved field" :
							       "remote address");
		return false;
	}
	return true;
}

/*
 * Our pages of the chunk that @map names, back to back, as the source
 * laid its out: pinned writable and long-term, charged to the owner's
 * memlock limit as our registrations are in push mode.
 */
static int pin_read(struct rdmamig_session *sess, struct pull_read *rd,
		    const unsigned long *map)
{
	u64 base = rd->b->addr + ((u64)rd->chunk << RDMAMIG_CHUNK_SHIFT);
	long got;
	int ret;

	rd->pages = kvcalloc(rd->npages, sizeof(*rd->pages), GFP_KERNEL);
	if (!rd->pages)
		return -ENOMEM;
	ret = rdmamig_pin_account(sess, rd->npages);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "memlock limit reached pinning '%s' chunk %u to read it",
				     rd->b->name, rd->chunk);
		return ret;
	}
	got = rdmamig_pin_bits(sess, base, map, 0, RDMAMIG_CHUNK_PAGES,
			       FOLL_WRITE | FOLL_LONGTERM, rd->pages);
	if (got < 0) {
		rdmamig_pin_unaccount(sess, rd->npages);
		rdmamig_session_fail(sess, got, true,
				     "pinning '%s' chunk %u to read it failed (%ld)",
				     rd->b->name, rd->chunk, got);
		return got;
	}
	rd->pinned = true;
	return 0;
}

static void unpin_read(struct rdmamig_session *sess, struct pull_read *rd)
{
	if (rd->pinned) {
		/* Dirty even after a failure: a READ may have landed. */
		unpin_user_pages_dirty_lock(rd->pages, rd->npages, true);
		rdmamig_pin_unaccount(sess, rd->npages);
	}
	kvfree(rd->pages);
}

/* READ_REQUEST: read the pages the source names; answer READ_DONE. */
static void pull_read_request(struct rdmamig_session *sess, const void *payload,
			      u32 n, u32 len)
{
	const struct rdmamig_cmd_read *cmds = payload;
	struct rdmamig_xfer_batch batch = {};
	DECLARE_BITMAP(map, RDMAMIG_CHUNK_PAGES);
	struct rdmamig_cmd_chunk *done = NULL;
	struct pull_read *rds;
	u32 i, maxio = 0;
	int ret = 0;

	if (n > RDMAMIG_MAX_READ) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "read request of %u chunks: at most %u at once",
				     n, RDMAMIG_MAX_READ);
		return;
	}
	if (!rdmamig_precopy_dst_distinct(sess, cmds, sizeof(*cmds), n, "read request"))
		return;
	rds = kcalloc(n, sizeof(*rds), GFP_KERNEL);
	done = kcalloc(n, sizeof(*done), GFP_KERNEL);
	if (!rds || !done) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		goto out;
	}
	/* Every command checked before anything is pinned or read. */
	for (i = 0; i < n; i++) {
		if (!check_read(sess, &cmds[i], &rds[i], map))
			goto out;
		maxio += rdmamig_xfer_ios(sess, rds[i].npages);
		done[i].block = cmds[i].pages.block;
		done[i].chunk = cmds[i].pages.chunk;
	}
	/* The source's max-bandwidth paces it; ours, if set, our reads. */
	if (!sess->round_start)
		sess->round_start = ktime_get();
	for (i = 0; i < n && !ret; i++) {
		rdmamig_precopy_dst_map(&cmds[i].pages, map);
		ret = pin_read(sess, &rds[i], map);
	}
	if (!ret)
		ret = rdmamig_xfer_batch_start(sess, &batch, RDMAMIG_XFER_READ, maxio);
	for (i = 0; i < n && !ret; i++)
		ret = rdmamig_xfer_post(sess, &batch, rds[i].pages, rds[i].npages,
					rds[i].raddr, rds[i].rkey);
	if (batch.ios)
		rdmamig_xfer_finish_reads(sess, &batch);
	if (ret && !rdmamig_session_dead(sess))
		rdmamig_session_fail(sess, ret, true, "reading from the source failed (%d)",
				     ret);
	/*
	 * The pages read are ours from here on; a failure of any READ
	 * failed the session, and no READ_DONE then tells the source its
	 * window is placed: the round is never acknowledged.
	 */
	for (i = 0; i < n; i++)
		unpin_read(sess, &rds[i]);
	if (rdmamig_session_dead(sess))
		goto out;
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_READ_DONE, n, done,
				n * sizeof(*done));
	if (ret)
		rdmamig_session_fail(sess, ret, false,
				     "sending read done failed (%d)", ret);
out:
	kfree(done);
	kfree(rds);
}

/*
 * REGISTER_FINISHED: the source's count of the round's pages must be what
 * we read, so that the statistics (taken from it, as in push mode) say
 * what moved; then the round ends as in pre-copy.
 */
static void pull_round_end(struct rdmamig_session *sess, const void *payload,
			   u32 repeat, u32 len)
{
	const struct rdmamig_cmd_round *cmd = payload;
	u64 pages = be64_to_cpu(cmd->pages);

	if (pages != sess->round_pages) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "round %llu: source says %llu pages moved, we read %llu",
				     be64_to_cpu(cmd->round), pages, sess->round_pages);
		return;
	}
	sess->round_pages = 0;
	sess->round_bytes = 0;
	sess->round_start = 0;
	rdmamig_precopy_dst_round_end(sess, payload, repeat, len);
}

static const struct rdmamig_msg_handler pull_dst_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_RAM_BLOCKS_REQUEST] = { rdmamig_precopy_dst_blocks, RDMAMIG_PHASE_ANY },
	[RDMAMIG_MSG_CHANNELS_REQUEST]	= { rdmamig_chan_dst_request, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_READ_REQUEST]	= { pull_read_request, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_COMPRESS]		= { rdmamig_precopy_dst_compress, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_DEVICE_STATE]	= { rdmamig_precopy_dst_device_state, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_BARRIER]		= { rdmamig_precopy_dst_barrier, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_REGISTER_FINISHED]	= { pull_round_end, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_COMPLETE]		= { rdmamig_precopy_dst_complete, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_POSTCOPY_OWED]	= { rdmamig_postcopy_dst_owed_msg, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_POSTCOPY_RUN]	= { rdmamig_postcopy_dst_run, RDMAMIG_PHASE_RUN },
};

const struct rdmamig_mode_ops rdmamig_pull_dst_ops = {
	.name		= "pull destination",
	.msgs		= pull_dst_msgs,
};
