// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-copy, destination side: every command of the source checked and
 * acted on, in the session's ordered work: the RAM blocks compared with
 * ours, chunks registered for its RDMA WRITEs (dynamic: as asked, up to
 * max-registered; pin-all: all of them, in a work of their own), zero
 * pages cleared, rounds and completion acknowledged once all before
 * them is placed.  The table at the bottom says which message runs what,
 * and when; precopy_src.c is the other side.
 */
#include "rdmamig.h"

#include <linux/slab.h>
#include <linux/sort.h>

#include "proto.h"
#include "session.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "mode.h"
#include "msg.h"
#include "postcopy.h"
#include "precopy_dst.h"
#include "stream.h"

static int send_ack(struct rdmamig_session *sess, const struct rdmamig_cmd_round *req)
{
	struct rdmamig_cmd_round ack = *req;

	return rdmamig_ctrl_send(sess, RDMAMIG_MSG_ACK, 1, &ack, sizeof(ack));
}

/* RAM_BLOCKS_REQUEST: the source's blocks must be ours, name and size. */
void rdmamig_precopy_dst_blocks(struct rdmamig_session *sess, const void *payload,
				u32 n, u32 len)
{
	const struct rdmamig_cmd_block *cmds = payload;
	struct rdmamig_cmd_blocks_result res = {};
	u64 fresh = 0;
	u32 i;

	if (rdmamig_peer_ready(sess)) {
		rdmamig_session_fail(sess, -EPROTO, true, "RAM blocks sent twice");
		return;
	}
	if (n != sess->nblocks) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "source has %u RAM blocks, destination has %u",
				     n, sess->nblocks);
		return;
	}
	for (i = 0; i < n; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];
		char name[RDMAMIG_BLOCK_NAME_MAX];
		u64 len = be64_to_cpu(cmds[i].length);

		memcpy(name, cmds[i].name, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		if (be32_to_cpu(cmds[i].index) != i || cmds[i].reserved) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "RAM block %u has a bad index", i);
			return;
		}
		if (strcmp(name, b->name)) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "RAM block %u is '%s' on the source, '%s' on the destination",
					     i, name, b->name);
			return;
		}
		if (len != b->length) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "RAM block '%s' is %llu bytes on the source, %llu on the destination",
					     name, len, b->length);
			return;
		}
	}
	for (i = 0; i < n; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		b->dst = kvcalloc(b->nchunks, sizeof(*b->dst), GFP_KERNEL);
		if (!b->dst) {
			rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
			return;
		}
		if (b->flags & RDMAMIG_BLOCK_FRESH)
			fresh |= BIT_ULL(i);
	}
	res.fresh = cpu_to_be64(fresh);
	/* pin-all: everything is registered from now on, while data flows. */
	if (sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL)
		rdmamig_session_queue_work(sess, system_unbound_wq, &sess->pinall_work);
	if (rdmamig_ctrl_send(sess, RDMAMIG_MSG_RAM_BLOCKS_RESULT, 1, &res, sizeof(res)))
		return;
	rdmamig_session_mark_ready(sess);
}

/*
 * pin-all, destination: register every chunk of every block, in the order
 * a bulk round asks for them, while the source writes its first windows
 * (registering 256 MiB before answering the RAM blocks took 2.9 s of a
 * 13.2 s migration in loop).  A REGISTER_REQUEST for a chunk not done yet
 * registers it in the rx work; @reg_mutex orders the two, and a chunk is
 * registered once.  Stops at teardown (@closing) or a failure.
 */
void rdmamig_precopy_dst_pinall_work(struct work_struct *work)
{
	struct rdmamig_session *sess = container_of(work, struct rdmamig_session,
						    pinall_work);
	u32 i, c;
	int ret;

	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		for (c = 0; c < b->nchunks; c++) {
			if (READ_ONCE(sess->closing) || rdmamig_session_dead(sess))
				return;
			mutex_lock(&sess->reg_mutex);
			ret = rdmamig_chunk_register(sess, b, c, NULL, IB_ACCESS_REMOTE_WRITE);
			mutex_unlock(&sess->reg_mutex);
			if (ret) {
				rdmamig_session_fail(sess, ret, true,
						     "pin-all: registering '%s' chunk %u failed (%d)",
						     b->name, c, ret);
				return;
			}
			cond_resched();
		}
	}
}

/* Checks a (block, chunk) pair from the peer. */
struct rdmamig_block_ram *rdmamig_precopy_dst_chunk(struct rdmamig_session *sess,
						    const struct rdmamig_cmd_chunk *cmd,
						    u32 *chunk)
{
	u32 bi = be32_to_cpu(cmd->block);

	*chunk = be32_to_cpu(cmd->chunk);
	if (bi >= sess->nblocks || *chunk >= sess->blocks[bi]->nchunks) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "chunk %u of block %u does not exist", *chunk, bi);
		return NULL;
	}
	return sess->blocks[bi];
}

/**
 * rdmamig_precopy_dst_map_ok() - check a page map from the peer
 * @sess: the session
 * @b: the block of the chunk, checked
 * @chunk: the chunk, checked
 * @map: RDMAMIG_CHUNK_PAGES bits
 * @what: the request, for the reason: "register", "read"
 *
 * Return: true if @map names a page and none past the chunk's end;
 * false after failing the session.
 */
bool rdmamig_precopy_dst_map_ok(struct rdmamig_session *sess,
				struct rdmamig_block_ram *b, u32 chunk,
				const unsigned long *map, const char *what)
{
	u32 nbits = rdmamig_chunk_pages(b, chunk);
	bool none = bitmap_empty(map, nbits);

	if (!none && find_next_bit(map, RDMAMIG_CHUNK_PAGES, nbits) >= RDMAMIG_CHUNK_PAGES)
		return true;
	rdmamig_session_fail(sess, -EPROTO, true,
			     "%s of %s pages of '%s' chunk %u (%u pages)", what,
			     none ? "no" : "nonexistent", b->name, chunk, nbits);
	return false;
}

/* The map of a REGISTER_PAGES_REQUEST or READ_REQUEST command. */
void rdmamig_precopy_dst_map(const struct rdmamig_cmd_pages *cmd,
			     unsigned long *map)
{
	u64 words[RDMAMIG_PAGE_MAP_WORDS];
	u32 w;

	for (w = 0; w < RDMAMIG_PAGE_MAP_WORDS; w++)
		words[w] = be64_to_cpu(cmd->map[w]);
	bitmap_from_arr64(map, words, RDMAMIG_CHUNK_PAGES);
}

/*
 * Register one chunk (all of it without @map) and fill in its key.
 * Return: false once the session failed.
 */
static bool dst_register_one(struct rdmamig_session *sess,
			     const struct rdmamig_cmd_chunk *id,
			     const unsigned long *map, struct rdmamig_cmd_key *key)
{
	struct rdmamig_block_ram *b;
	u64 max, held, need;
	u32 chunk, nbits;
	int ret;

	b = rdmamig_precopy_dst_chunk(sess, id, &chunk);
	if (!b)
		return false;
	nbits = rdmamig_chunk_pages(b, chunk);
	if (map && !rdmamig_precopy_dst_map_ok(sess, b, chunk, map, "register"))
		return false;
	mutex_lock(&sess->reg_mutex);
	/* Our own bound holds whatever the source believes. */
	held = (u64)b->dst[chunk].npages << PAGE_SHIFT;
	need = map ? (u64)bitmap_weight(map, nbits) << PAGE_SHIFT : RDMAMIG_CHUNK_SIZE;
	max = max_t(u64, sess->params.max_registered, RDMAMIG_CHUNK_SIZE);
	/* A checkpointing backup's staging has its own bound (mc_dst.c). */
	if (!(sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL) && (map || !held) &&
	    sess->stats.registered_bytes - rdmamig_mc_dst_staging_bytes(sess) -
	    held + need > max) {
		mutex_unlock(&sess->reg_mutex);
		rdmamig_session_fail(sess, -ENOSPC, true,
				     "source registered more than max-registered (%llu bytes) of the destination",
				     sess->params.max_registered);
		return false;
	}
	ret = rdmamig_chunk_register(sess, b, chunk, map, IB_ACCESS_REMOTE_WRITE);
	if (!ret) {
		key->block = id->block;
		key->chunk = id->chunk;
		key->addr = cpu_to_be64(b->dst[chunk].mr->iova);
		key->rkey = cpu_to_be32(b->dst[chunk].mr->rkey);
	}
	mutex_unlock(&sess->reg_mutex);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "registering '%s' chunk %u failed (%d)",
				     b->name, chunk, ret);
		return false;
	}
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/**
 * rdmamig_precopy_dst_distinct() - is every chunk of a request named once?
 * @sess: the session
 * @cmds: @n commands of @size bytes, each starting with a struct
 *	rdmamig_cmd_chunk (REGISTER_REQUEST, REGISTER_PAGES_REQUEST,
 *	READ_REQUEST)
 * @size: bytes of one command
 * @n: commands
 * @what: the request, for the reason: "register request", "read request"
 *
 * The source asks for the distinct chunks of one window at a time.  A
 * chunk named again in the same request would have its key sent twice,
 * or with sparse keys be pinned and registered again for every repeat
 * (revoking the key just made): up to 2730 registrations a message that
 * the max-registered bound never sees, since each replaces the last; in
 * pull mode it would be read twice.  Such a request is refused before
 * anything is registered or read.
 * Return: true when every chunk is named once; false after failing.
 */
bool rdmamig_precopy_dst_distinct(struct rdmamig_session *sess, const void *cmds,
				  size_t size, u32 n, const char *what)
{
	bool ok = true;
	u64 *ids;
	u32 i;

	if (n < 2)
		return true;
	ids = kvmalloc_array(n, sizeof(*ids), GFP_KERNEL);
	if (!ids) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return false;
	}
	for (i = 0; i < n; i++) {
		const struct rdmamig_cmd_chunk *id = cmds + i * size;

		ids[i] = (u64)be32_to_cpu(id->block) << 32 | be32_to_cpu(id->chunk);
	}
	sort(ids, n, sizeof(*ids), cmp_u64, NULL);
	for (i = 1; i < n && ok; i++) {
		if (ids[i] != ids[i - 1])
			continue;
		rdmamig_session_fail(sess, -EPROTO, true,
				     "block %u chunk %u named twice in one %s",
				     (u32)(ids[i] >> 32), (u32)ids[i], what);
		ok = false;
	}
	kvfree(ids);
	return ok;
}

/* REGISTER_REQUEST (@pages NULL) or REGISTER_PAGES_REQUEST. */
static void dst_register_chunks(struct rdmamig_session *sess,
			 const struct rdmamig_cmd_chunk *cmds,
			 const struct rdmamig_cmd_pages *pages, u32 n)
{
	DECLARE_BITMAP(map, RDMAMIG_CHUNK_PAGES);
	struct rdmamig_cmd_key *keys;
	u32 i;
	int ret;

	/* Sparse keys replace registrations: never with pin-all. */
	if (pages && (sess->caps & (RDMAMIG_WIRE_CAP_SPARSE | RDMAMIG_WIRE_CAP_PIN_ALL)) !=
		     RDMAMIG_WIRE_CAP_SPARSE) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "sparse registration was not negotiated");
		return;
	}
	/*
	 * The header check allows 4096 chunks, the reply only 2730 keys:
	 * refuse the request before registering anything, rather than
	 * register chunks whose keys cannot be sent.
	 */
	if (n > RDMAMIG_MAX_REGISTER) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "register request of %u chunks: their keys would not fit one message (at most %zu)",
				     n, RDMAMIG_MAX_REGISTER);
		return;
	}
	if (!rdmamig_precopy_dst_distinct(sess, pages ? (const void *)pages : cmds,
					  pages ? sizeof(*pages) : sizeof(*cmds), n,
					  "register request"))
		return;
	keys = kvcalloc(n, sizeof(*keys), GFP_KERNEL);
	if (!keys) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		struct rdmamig_cmd_chunk id;

		if (pages) {
			id.block = pages[i].block;
			id.chunk = pages[i].chunk;
			rdmamig_precopy_dst_map(&pages[i], map);
		} else {
			id = cmds[i];
		}
		if (!dst_register_one(sess, &id, pages ? map : NULL, &keys[i]))
			goto out;
	}
	/* A source left without its keys would wait for them in vain. */
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_REGISTER_RESULT, n, keys,
				n * sizeof(*keys));
	if (ret)
		rdmamig_session_fail(sess, ret, false,
				     "sending the keys failed (%d)", ret);
out:
	kvfree(keys);
}

/* UNREGISTER_REQUEST: the source's LRU makes room. */
void rdmamig_precopy_dst_unregister(struct rdmamig_session *sess,
				    const void *payload, u32 n, u32 len)
{
	const struct rdmamig_cmd_chunk *cmds = payload;
	u32 i, chunk;

	for (i = 0; i < n; i++) {
		struct rdmamig_block_ram *b = rdmamig_precopy_dst_chunk(sess, &cmds[i], &chunk);

		if (!b)
			return;
		/* With pin-all the chunk stays registered to the end. */
		if (!(sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL)) {
			mutex_lock(&sess->reg_mutex);
			rdmamig_chunk_unregister(sess, b, chunk);
			mutex_unlock(&sess->reg_mutex);
		}
	}
	rdmamig_ctrl_send(sess, RDMAMIG_MSG_UNREGISTER_FINISHED, n, cmds,
			  n * sizeof(*cmds));
}

/* COMPRESS: runs of zero pages, each within one chunk. */
void rdmamig_precopy_dst_compress(struct rdmamig_session *sess, const void *payload,
				  u32 n, u32 len)
{
	const struct rdmamig_cmd_compress *z = payload;
	u32 i;

	for (i = 0; i < n; i++) {
		u32 bi = be32_to_cpu(z[i].block), np = be32_to_cpu(z[i].npages);
		u64 off = be64_to_cpu(z[i].offset), end;
		struct rdmamig_block_ram *b;
		ktime_t t0;
		int ret;

		if (bi >= sess->nblocks) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "compress for block %u, which does not exist", bi);
			return;
		}
		b = sess->blocks[bi];
		if (!np || !PAGE_ALIGNED(off) ||
		    check_add_overflow(off, (u64)np << PAGE_SHIFT, &end) ||
		    end > b->length) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "compress of %u pages at offset %llu is outside block '%s'",
					     np, off, b->name);
			return;
		}
		/*
		 * One chunk at most, as QEMU's COMPRESS: a message then zeroes
		 * at most 4096 chunks, and rdmamig_dst_zero() stops at a
		 * teardown or a failure between its batches.
		 */
		if ((off >> RDMAMIG_CHUNK_SHIFT) != ((end - 1) >> RDMAMIG_CHUNK_SHIFT)) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "compress of %u pages at offset %llu of '%s' crosses a chunk boundary",
					     np, off, b->name);
			return;
		}
		t0 = ktime_get();
		ret = rdmamig_dst_zero(sess, b, off, np);
		rdmamig_time_add(&sess->zero_ns, t0);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "zeroing pages of '%s' failed (%d)", b->name, ret);
			return;
		}
	}
}

/*
 * Dynamic registration: a key is good for the round it was asked for.
 * Every write of the round was placed before REGISTER_FINISHED arrived
 * (RC delivers in order), so deregistering now makes any later or stray
 * write with these keys fail with a remote access error.
 */
static void dst_invalidate_round(struct rdmamig_session *sess)
{
	u32 i, c;

	if (sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL)
		return;
	mutex_lock(&sess->reg_mutex);
	for (i = 0; i < sess->nblocks; i++)
		for (c = 0; c < sess->blocks[i]->nchunks; c++)
			rdmamig_chunk_unregister(sess, sess->blocks[i], c);
	mutex_unlock(&sess->reg_mutex);
}

/* REGISTER_FINISHED: the round is placed. */
void rdmamig_precopy_dst_round_end(struct rdmamig_session *sess, const void *payload,
				   u32 repeat, u32 len)
{
	const struct rdmamig_cmd_round *cmd = payload;
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_ROUND_DONE };
	u64 round = be64_to_cpu(cmd->round);

	if (round != sess->stats.rounds + 1) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "round %llu ended, expected round %llu",
				     round, sess->stats.rounds + 1);
		return;
	}
	ev.round = round;
	ev.pages = be64_to_cpu(cmd->pages);
	ev.zero_pages = be64_to_cpu(cmd->zero_pages);
	spin_lock_irq(&sess->slock);
	sess->stats.rounds = round;
	sess->stats.pages += ev.pages;
	sess->stats.zero_pages += ev.zero_pages;
	sess->stats.bytes += ev.pages << PAGE_SHIFT;
	if (sess->state == RDMAMIG_STATE_CONNECTED)
		rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_ACTIVE);
	spin_unlock_irq(&sess->slock);
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_ROUND);
	dst_invalidate_round(sess);
	send_ack(sess, cmd);
}

/* COMPLETE: the source is done; so are we. */
void rdmamig_precopy_dst_complete(struct rdmamig_session *sess, const void *payload,
				  u32 repeat, u32 len)
{
	const struct rdmamig_cmd_round *cmd = payload;
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_COMPLETED };
	bool done;

	/*
	 * Completed before the ACK goes out: a cancel that came first stands
	 * and the source, unanswered, fails too; one that comes after leaves
	 * the destination completed.  Never the other way round, where the
	 * source would stop its workload for a destination that dropped it.
	 * The event follows the ACK: a VMM that closes on it lets it leave.
	 */
	spin_lock_irq(&sess->slock);
	done = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_COMPLETED);
	if (done) {
		sess->stream_eof = true;
		sess->t_end = ktime_get();
	}
	spin_unlock_irq(&sess->slock);
	if (!done)
		return;
	send_ack(sess, cmd);
	ev.round = sess->stats.rounds;
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	sess_info(sess, "migration completed: %llu rounds, %llu pages, %llu zero pages\n",
		  sess->stats.rounds, sess->stats.pages, sess->stats.zero_pages);
}

void rdmamig_precopy_dst_register_request(struct rdmamig_session *sess,
					  const void *payload, u32 n, u32 len)
{
	dst_register_chunks(sess, payload, NULL, n);
}

void rdmamig_precopy_dst_register_pages_request(struct rdmamig_session *sess,
						const void *payload, u32 n,
						u32 len)
{
	dst_register_chunks(sess, NULL, payload, n);
}

/* BARRIER: everything before it is placed (it came after, in order). */
void rdmamig_precopy_dst_barrier(struct rdmamig_session *sess, const void *payload,
				 u32 repeat, u32 len)
{
	send_ack(sess, payload);
}

void rdmamig_precopy_dst_device_state(struct rdmamig_session *sess,
				      const void *payload, u32 repeat, u32 len)
{
	rdmamig_stream_queue(sess, payload, len);
}

/*
 * RAM_BLOCKS_REQUEST is taken in any phase so that a second one fails
 * with its own reason; everything else of the source's is for a
 * session that agreed on the blocks and is not completed yet.
 */
static const struct rdmamig_msg_handler dst_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_RAM_BLOCKS_REQUEST] = { rdmamig_precopy_dst_blocks, RDMAMIG_PHASE_ANY },
	[RDMAMIG_MSG_CHANNELS_REQUEST]	= { rdmamig_chan_dst_request, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_REGISTER_REQUEST]	= { rdmamig_precopy_dst_register_request, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_REGISTER_PAGES_REQUEST] = { rdmamig_precopy_dst_register_pages_request, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_UNREGISTER_REQUEST] = { rdmamig_precopy_dst_unregister, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_COMPRESS]		= { rdmamig_precopy_dst_compress, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_DEVICE_STATE]	= { rdmamig_precopy_dst_device_state, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_BARRIER]		= { rdmamig_precopy_dst_barrier, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_REGISTER_FINISHED]	= { rdmamig_precopy_dst_round_end, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_COMPLETE]		= { rdmamig_precopy_dst_complete, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_POSTCOPY_OWED]	= { rdmamig_postcopy_dst_owed_msg, RDMAMIG_PHASE_RUN },
	[RDMAMIG_MSG_POSTCOPY_RUN]	= { rdmamig_postcopy_dst_run, RDMAMIG_PHASE_RUN },
};

const struct rdmamig_mode_ops rdmamig_precopy_dst_ops = {
	.name		= "precopy destination",
	.msgs		= dst_msgs,
};
