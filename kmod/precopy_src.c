// SPDX-License-Identifier: GPL-2.0
/*
 * Pre-copy, source side: the RAM blocks offered, then rounds of dirty
 * pages, each merged into runs per 1 MiB chunk; zero pages sent as
 * COMPRESS commands, the rest written by the engine (xfer.c) with RDMA
 * WRITE straight from the pinned pages into the chunks the destination
 * registered and keyed for us; END_ROUND and COMPLETE acknowledged by
 * the destination.  Its half of the control messages is the table at
 * the bottom; precopy_dst.c is the other side.  The round loop serves
 * pull mode too (pull_src.c), with another struct rdmamig_src_mover
 * (precopy_src.h): what is done with a full window.
 *
 * Everything runs in the VMM's thread (ioctl or netlink, @lock held)
 * but the message handlers, which run in the session's ordered work and
 * only record what the destination answered, for that thread to see.
 */
#include "rdmamig.h"

#include <linux/highmem.h>
#include <linux/slab.h>

#include "hostile.h"
#include "proto.h"
#include "session.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "mode.h"
#include "msg.h"
#include "precopy_src.h"
#include "xfer.h"

static bool connected(struct rdmamig_session *sess)
{
	enum rdmamig_state s = READ_ONCE(sess->state);

	return s == RDMAMIG_STATE_CONNECTED || s == RDMAMIG_STATE_ACTIVE;
}

/* ---- ACK-requesting messages ------------------------------------------- */

static bool acked(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->acks_got) >= READ_ONCE(sess->ack_seq);
}

/* Send @type with a fresh sequence number and wait for its ACK. */
static int send_and_wait_ack(struct rdmamig_session *sess,
			     enum rdmamig_msg_type type, u64 round, u64 pages,
			     u64 zero_pages)
{
	struct rdmamig_cmd_round cmd = {
		.seq = cpu_to_be64(sess->ack_seq + 1),
		.round = cpu_to_be64(round),
		.pages = cpu_to_be64(pages),
		.zero_pages = cpu_to_be64(zero_pages),
	};
	int ret;

	WRITE_ONCE(sess->ack_seq, sess->ack_seq + 1);
	ret = rdmamig_ctrl_send(sess, type, 1, &cmd, sizeof(cmd));
	if (ret == -ERESTARTSYS)	/* its sequence number is spent */
		return rdmamig_xfer_interrupted(sess, "waiting to send a message");
	if (ret)
		return ret;
	ret = rdmamig_session_wait(sess, acked, RDMAMIG_XFER_WAIT);
	if (ret == -ERESTARTSYS)
		ret = rdmamig_xfer_interrupted(sess, "waiting for the destination's acknowledgement");
	return ret;
}

/**
 * rdmamig_precopy_src_start() - tell the destination our RAM layout
 * @sess: a source session whose connection is established
 *
 * Return: 0 once the destination agreed (and, with pin-all, registered
 * everything), or the error it or the connection reported.
 */
int rdmamig_precopy_src_start(struct rdmamig_session *sess)
{
	struct rdmamig_cmd_block *cmds;
	u32 i;
	int ret;

	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		b->src = kvcalloc(b->nchunks, sizeof(*b->src), GFP_KERNEL);
		if (!b->src)
			return -ENOMEM;
	}
	cmds = kcalloc(sess->nblocks, sizeof(*cmds), GFP_KERNEL);
	if (!cmds)
		return -ENOMEM;
	for (i = 0; i < sess->nblocks; i++) {
		cmds[i].length = cpu_to_be64(sess->blocks[i]->length);
		cmds[i].index = cpu_to_be32(i);
		strscpy(cmds[i].name, sess->blocks[i]->name, sizeof(cmds[i].name));
	}
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_RAM_BLOCKS_REQUEST,
				sess->nblocks, cmds, sess->nblocks * sizeof(*cmds));
	kfree(cmds);
	if (ret == -ERESTARTSYS)
		return rdmamig_xfer_interrupted(sess, "waiting to send the RAM blocks");
	if (ret)
		return ret;
	ret = rdmamig_session_wait(sess, rdmamig_peer_ready, RDMAMIG_XFER_WAIT);
	if (ret == -ERESTARTSYS)
		ret = rdmamig_xfer_interrupted(sess, "waiting for the destination to accept the RAM blocks");
	return ret;
}

/**
 * rdmamig_precopy_src_memlock_check() - can the source pin its smallest windows?
 * @sess: a source session; its owner's limit was just captured
 *
 * A round pins two windows (one is scanned while the other's writes are
 * in flight) of at least one 1 MiB chunk each, charged to the owner's
 * RLIMIT_MEMLOCK; see window_chunks().
 *
 * Return: 0, or -ENOMEM with the reason naming the limit and the bytes.
 */
int rdmamig_precopy_src_memlock_check(struct rdmamig_session *sess)
{
	return rdmamig_memlock_check(sess, 2 * RDMAMIG_CHUNK_SIZE);
}

/* ---- Source: keys ------------------------------------------------------- */

static bool keys_arrived(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->keys_pending) == 0;
}

static bool in_window(struct xfer_window *w, struct rdmamig_src_chunk *sc)
{
	u32 i;

	if (!w)
		return false;
	for (i = 0; i < w->n; i++)
		if (&w->chunks[i].b->src[w->chunks[i].chunk] == sc)
			return true;
	return false;
}

/*
 * Dynamic registration keeps at most max-registered bytes exposed on the
 * destination: before asking for @need new chunks, ask it to drop the
 * least recently used ones outside both windows.  The destination handles
 * messages in order, so the unregistration is done before the new
 * registrations are.
 */
static int make_room(struct rdmamig_session *sess, struct xfer_window *w,
		     struct xfer_window *busy, u32 need,
		     struct rdmamig_cmd_chunk *cmds)
{
	u32 max = max_t(u64, sess->params.max_registered >> RDMAMIG_CHUNK_SHIFT, 1);
	struct rdmamig_src_chunk *sc, *tmp;
	unsigned long flags;
	u32 n = 0, i, j;

	if (sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL)
		return 0;
	list_for_each_entry_safe(sc, tmp, &sess->lru, lru) {
		if (sess->registered_chunks - n + need <= max)
			break;
		if (in_window(w, sc) || in_window(busy, sc))
			continue;
		/* Find the chunk's block and index for the command. */
		for (i = 0; i < sess->nblocks; i++) {
			struct rdmamig_block_ram *b = sess->blocks[i];

			if (sc >= b->src && sc < b->src + b->nchunks) {
				j = sc - b->src;
				cmds[n].block = cpu_to_be32(i);
				cmds[n].chunk = cpu_to_be32(j);
				break;
			}
		}
		sc->registered = false;
		list_del_init(&sc->lru);
		n++;
	}
	if (!n)
		return 0;
	sess->registered_chunks -= n;
	sess->unreg_pending += n;
	spin_lock_irqsave(&sess->slock, flags);
	sess->stats.chunks_unregistered += n;
	spin_unlock_irqrestore(&sess->slock, flags);
	return rdmamig_ctrl_send(sess, RDMAMIG_MSG_UNREGISTER_REQUEST, n, cmds,
				 n * sizeof(*cmds));
}

static bool sparse_keys(struct rdmamig_session *sess)
{
	return (sess->caps & (RDMAMIG_WIRE_CAP_SPARSE | RDMAMIG_WIRE_CAP_PIN_ALL)) ==
	       RDMAMIG_WIRE_CAP_SPARSE;
}

/* The chunk's pages to write (or, pull, to read), as a command's map. */
void rdmamig_precopy_src_map(struct xfer_chunk *xc, struct rdmamig_cmd_pages *cmd)
{
	DECLARE_BITMAP(map, RDMAMIG_CHUNK_PAGES);
	u64 words[RDMAMIG_PAGE_MAP_WORDS];
	u32 r, i;

	bitmap_zero(map, RDMAMIG_CHUNK_PAGES);
	for (r = 0; r < xc->nruns; r++)
		bitmap_set(map, xc->first + xc->run_start[r], xc->run_len[r]);
	bitmap_to_arr64(words, map, RDMAMIG_CHUNK_PAGES);
	cmd->block = cpu_to_be32(xc->b->index);
	cmd->chunk = cpu_to_be32(xc->chunk);
	for (i = 0; i < RDMAMIG_PAGE_MAP_WORDS; i++)
		cmd->map[i] = cpu_to_be64(words[i]);
}

/*
 * Keys for the chunks of @w; @busy is the window still being written.
 *
 * Whole-chunk keys are reused while they last (to the end of the round);
 * a sparse key covers the pages of one window only, so every chunk with
 * pages to write is asked for again (the destination then replaces its
 * registration: our writes to the old one are complete).
 */
static int get_keys(struct rdmamig_session *sess, struct xfer_window *w,
		    struct xfer_window *busy)
{
	struct rdmamig_cmd_pages *pcmds = NULL;
	struct rdmamig_cmd_chunk *cmds;
	bool sparse = sparse_keys(sess);
	unsigned long flags;
	u32 i, n = 0, fresh = 0;
	int ret = -ENOMEM;

	/* Room for the window's requests and for make_room()'s. */
	cmds = kcalloc(RDMAMIG_MAX_REPEAT, sizeof(*cmds), GFP_KERNEL);
	if (sparse)
		pcmds = kcalloc(XFER_WINDOW_CHUNKS, sizeof(*pcmds), GFP_KERNEL);
	if (!cmds || (sparse && !pcmds))
		goto out;
	for (i = 0; i < w->n; i++) {
		struct xfer_chunk *xc = &w->chunks[i];
		struct rdmamig_src_chunk *sc = &xc->b->src[xc->chunk];

		xc->asked = false;
		if (!xc->nruns)
			continue;
		/* The hostile source's stale key is kept, to be tried. */
		if (sc->registered && (!sparse || rdmamig_hostile_keeps_keys(sess))) {
			list_move_tail(&sc->lru, &sess->lru);
			continue;
		}
		if (sparse)
			rdmamig_precopy_src_map(xc, &pcmds[n]);
		cmds[n].block = cpu_to_be32(xc->b->index);
		cmds[n].chunk = cpu_to_be32(xc->chunk);
		n++;
		fresh += !sc->registered;
		xc->asked = true;
		sc->pending = true;
	}
	ret = 0;
	if (!n)
		goto out;
	ret = make_room(sess, w, busy, fresh, cmds + n);
	if (ret)
		goto out;
	spin_lock_irqsave(&sess->slock, flags);
	sess->keys_pending += n;
	spin_unlock_irqrestore(&sess->slock, flags);
	if (sparse)
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_REGISTER_PAGES_REQUEST, n,
					pcmds, n * sizeof(*pcmds));
	else
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_REGISTER_REQUEST, n, cmds,
					n * sizeof(*cmds));
	if (!ret) {
		ktime_t t0 = ktime_get();

		ret = rdmamig_session_wait(sess, keys_arrived, RDMAMIG_XFER_WAIT);
		rdmamig_time_add(&sess->keys_wait_ns, t0);
		if (ret == -ERESTARTSYS)
			ret = rdmamig_xfer_interrupted(sess, "waiting for the destination's keys");
	}
	if (ret)
		goto out;
	/* Only this thread touches the LRU list. */
	for (i = 0; i < w->n; i++) {
		struct xfer_chunk *xc = &w->chunks[i];
		struct rdmamig_src_chunk *sc = &xc->b->src[xc->chunk];

		if (!xc->asked)
			continue;
		if (sc->registered) {
			list_move_tail(&sc->lru, &sess->lru);
		} else {
			sc->registered = true;
			list_add_tail(&sc->lru, &sess->lru);
			sess->registered_chunks++;
		}
		spin_lock_irqsave(&sess->slock, flags);
		sess->stats.chunks_registered++;
		spin_unlock_irqrestore(&sess->slock, flags);
	}
out:
	kfree(pcmds);
	kfree(cmds);
	return ret;
}

/* REGISTER_RESULT: keys for the chunks get_keys() asked for. */
void rdmamig_precopy_src_register_result(struct rdmamig_session *sess,
					 const void *payload, u32 n, u32 len)
{
	const struct rdmamig_cmd_key *k = payload;
	unsigned long flags;
	u32 i;

	for (i = 0; i < n; i++) {
		u32 bi = be32_to_cpu(k[i].block), ci = be32_to_cpu(k[i].chunk);
		struct rdmamig_src_chunk *sc;

		if (bi >= sess->nblocks || ci >= sess->blocks[bi]->nchunks) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "register result for block %u chunk %u, which does not exist",
					     bi, ci);
			return;
		}
		sc = &sess->blocks[bi]->src[ci];
		spin_lock_irqsave(&sess->slock, flags);
		if (!sess->keys_pending || !sc->pending) {
			spin_unlock_irqrestore(&sess->slock, flags);
			rdmamig_session_fail(sess, -EPROTO, true,
					     "register result for block %u chunk %u, which nobody asked for",
					     bi, ci);
			return;
		}
		sc->raddr = be64_to_cpu(k[i].addr);
		sc->rkey = be32_to_cpu(k[i].rkey);
		sc->pending = false;
		sess->keys_pending--;
		spin_unlock_irqrestore(&sess->slock, flags);
	}
	wake_up_all(&sess->wait);
}

/*
 * RAM_BLOCKS_RESULT: the destination agreed to our blocks and says which
 * of them read as zero where we have not written.  A fresh block gets a
 * bitmap of the pages we wrote; without memory for it, the block's zero
 * pages are all sent, as to any destination.
 * Return: 0, or -EPROTO after failing the session.
 */
static int src_blocks_result(struct rdmamig_session *sess,
			     const struct rdmamig_cmd_blocks_result *res)
{
	static_assert(RDMAMIG_MAX_BLOCKS <= 64);
	u64 fresh = be64_to_cpu(res->fresh);
	u32 i;

	if (sess->nblocks < 64 && fresh >> sess->nblocks) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "destination says block %u is fresh, but there are %u blocks",
				     fls64(fresh) - 1, sess->nblocks);
		return -EPROTO;
	}
	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		if (!(fresh & BIT_ULL(i)))
			continue;
		b->sent = kvzalloc(BITS_TO_LONGS(b->length >> PAGE_SHIFT) *
				   sizeof(long), GFP_KERNEL);
		if (!b->sent)
			sess_info(sess, "no memory to track block %s: its zero pages are all sent\n",
				  b->name);
	}
	return 0;
}

/* ---- Source: scanning and writing ---------------------------------------- */

static bool page_is_zero(struct page *page)
{
	void *p = kmap_local_page(page);
	bool zero = !memchr_inv(p, 0, PAGE_SIZE);

	kunmap_local(p);
	return zero;
}

/* Every page of @folio reads as zero now. */
static bool folio_is_zero(struct folio *folio)
{
	long i;

	for (i = 0; i < folio_nr_pages(folio); i++)
		if (!page_is_zero(folio_page(folio, i)))
			return false;
	return true;
}

/*
 * Is this dirty page zero?  Memory a guest never touched is mapped, once
 * the scan has faulted it in for reading, as the shared zero page, or
 * with transparent huge pages as the huge zero page: one 2 MiB folio
 * behind every untouched 2 MiB of the block.  Reading all of it page by
 * page took a quarter of the CPU a 90%-zero migration spends outside the
 * RDMA device (loop, perf).  So a large folio found zero throughout is
 * remembered, with a reference that keeps it from being freed and its
 * memory from being reused as another folio, and its pages need no
 * reading after that.  That a page of it is written meanwhile does not
 * matter: any write after the VMM took its bitmap is in the next one.
 * A folio found not zero throughout is remembered too, without a
 * reference (a stale pointer there only costs a check), so that a huge
 * page of data with runs of zero pages is read once, not once per run.
 * Folios over PMD size (hugetlb) are read page by page: verifying one
 * whole could cost far more than the pages that are dirty in it.
 */
static bool dirty_page_is_zero(struct xfer_round *w, struct page *page)
{
	struct folio *folio = page_folio(page);

	if (folio == w->zero_folio || is_zero_pfn(page_to_pfn(page)))
		return true;
	if (!page_is_zero(page))
		return false;
	if (!folio_test_large(folio) || folio == w->mixed_folio ||
	    folio_nr_pages(folio) > PMD_SIZE / PAGE_SIZE)
		return true;
	if (!folio_is_zero(folio)) {
		w->mixed_folio = folio;
		return true;
	}
	if (w->zero_folio)
		folio_put(w->zero_folio);
	folio_get(folio);
	w->zero_folio = folio;
	return true;
}

static int flush_zero(struct rdmamig_session *sess, struct xfer_round *w)
{
	int ret;

	if (!w->nzero)
		return 0;
	ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_COMPRESS, w->nzero, w->zero,
				w->nzero * sizeof(w->zero[0]));
	w->nzero = 0;
	w->zero_sent = true;
	return ret;
}

static int add_zero(struct rdmamig_session *sess, struct xfer_round *w,
		    struct rdmamig_block_ram *b, u64 page, u32 n)
{
	struct rdmamig_cmd_compress *z;

	/* A command stays within one chunk: the destination's bound. */
	if (w->nzero && page % RDMAMIG_CHUNK_PAGES) {
		z = &w->zero[w->nzero - 1];
		if (be32_to_cpu(z->block) == b->index &&
		    (be64_to_cpu(z->offset) >> PAGE_SHIFT) + be32_to_cpu(z->npages) == page) {
			be32_add_cpu(&z->npages, n);
			return 0;
		}
	}
	if (w->nzero == ARRAY_SIZE(w->zero)) {
		int ret = flush_zero(sess, w);

		if (ret)
			return ret;
	}
	z = &w->zero[w->nzero++];
	z->block = cpu_to_be32(b->index);
	z->npages = cpu_to_be32(n);
	z->offset = cpu_to_be64(page << PAGE_SHIFT);
	return 0;
}

/*
 * A dirty page found zero: COMPRESS, unless the destination's block is
 * fresh and we never wrote the page there (then it reads zero already,
 * and the destination need not even look at it).
 */
static int send_zero(struct rdmamig_session *sess, struct xfer_round *w,
		     struct rdmamig_block_ram *b, u64 page)
{
	sess->round_zero_pages++;
	if (b->sent && !test_bit(page, b->sent)) {
		sess->round_zero_skipped++;
		return 0;
	}
	return add_zero(sess, w, b, page, 1);
}

/*
 * Pinning a chunk's dirty pages run by run costs a call into GUP per run
 * (a VMA lookup, a page-table walk from the top); pinning its dirty span
 * in one call costs every clean page between the runs too.  A run is
 * taken to cost as much as PIN_RUN_PAGES pages.  Scattered pages (the
 * rounds after the bulk one) are then pinned run by run: with 4.5% of a
 * 256 MiB workload dirty at random, the span pinned nearly all of its
 * 65536 pages in every round, for some 3000 to send.
 */
#define PIN_RUN_PAGES	8

/*
 * Pin the dirty pages of one chunk and sort them: zero pages become
 * COMPRESS commands, the others runs to write.  @first and @last (dirty,
 * relative to the chunk) bound them.  @xc->pages holds either the whole
 * span from @first (one pin), or only the dirty pages, back to back (one
 * pin per run); a run's pages are contiguous in it either way.
 *
 * The pins last until the window's writes complete, which a key wait
 * (up to RDMAMIG_XFER_WAIT) or max-bandwidth can make long: they are long-term
 * (FOLL_LONGTERM moves pages out of ZONE_MOVABLE and CMA first) and
 * charged to the owner's RLIMIT_MEMLOCK, as the destination's are, until
 * release_chunk().
 */
static int scan_chunk(struct rdmamig_session *sess, struct xfer_round *w,
		      struct xfer_chunk *xc, const unsigned long *bitmap,
		      u64 bit0, u32 first, u32 last)
{
	u64 cbase = (u64)xc->chunk * RDMAMIG_CHUNK_PAGES;
	unsigned long lo = cbase + first - bit0, hi = cbase + last + 1 - bit0;
	unsigned long b, e;
	u32 i, k, run = 0, span = last - first + 1, ndirty = 0, nruns = 0, n;
	bool packed, in_run = false;
	long ret;

	xc->npinned = 0;
	b = lo;
	for_each_set_bitrange_from(b, e, bitmap, hi) {
		ndirty += e - b;
		nruns++;
	}
	packed = ndirty + nruns * PIN_RUN_PAGES < span;
	xc->first = first;
	n = packed ? ndirty : span;
	ret = rdmamig_pin_account(sess, n);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "memlock limit %llu bytes reached pinning '%s' chunk %u (pinned %llu)",
				     (u64)sess->memlock_pages << PAGE_SHIFT, xc->b->name,
				     xc->chunk,
				     (u64)atomic64_read(&sess->mm->pinned_vm) << PAGE_SHIFT);
		return ret;
	}
	if (packed)
		ret = rdmamig_pin_bits(sess, xc->b->addr + (bit0 << PAGE_SHIFT),
				       bitmap, lo, hi, FOLL_LONGTERM, xc->pages);
	else
		ret = rdmamig_pin_range(sess, xc->b->addr +
					((cbase + first) << PAGE_SHIFT),
					span, FOLL_LONGTERM, xc->pages);
	if (ret < 0) {
		rdmamig_pin_unaccount(sess, n);
		return ret;
	}
	xc->npinned = n;
	xc->nruns = 0;
	for (i = 0, k = 0; i < span; i++) {
		bool dirty = test_bit(lo + i, bitmap);

		if (!dirty) {
			in_run = false;
			k += !packed;
			continue;
		}
		if (dirty_page_is_zero(w, xc->pages[k])) {
			ret = send_zero(sess, w, xc->b, cbase + first + i);
			if (ret)
				return ret;
			in_run = false;
			k++;
			continue;
		}
		if (xc->b->sent)
			__set_bit(cbase + first + i, xc->b->sent);
		if (!in_run) {
			run = xc->nruns++;
			xc->run_start[run] = i;
			xc->run_page[run] = k;
			xc->run_len[run] = 0;
		}
		xc->run_len[run]++;
		in_run = true;
		k++;
	}
	return 0;
}

/* Unpin what scan_chunk() pinned, and give back its charge. */
void rdmamig_precopy_src_release(struct rdmamig_session *sess, struct xfer_chunk *xc)
{
	unpin_user_pages(xc->pages, xc->npinned);
	rdmamig_pin_unaccount(sess, xc->npinned);
	xc->npinned = 0;
}

/*
 * The pages of @xc's runs, back to back in @packed (as a sparse
 * registration lays them out).  Return: how many.
 */
u32 rdmamig_precopy_src_pack(struct xfer_chunk *xc, struct page **packed)
{
	u32 r, n = 0;

	for (r = 0; r < xc->nruns; r++) {
		memcpy(packed + n, xc->pages + xc->run_page[r],
		       xc->run_len[r] * sizeof(*packed));
		n += xc->run_len[r];
	}
	return n;
}

/* A chunk's sparse registration: its runs, back to back. */
static int post_sparse(struct rdmamig_session *sess, struct xfer_chunk *xc,
		       struct page **packed, struct xfer_window *w)
{
	struct rdmamig_src_chunk *sc = &xc->b->src[xc->chunk];
	u32 n = rdmamig_precopy_src_pack(xc, packed);

	return rdmamig_xfer_post(sess, &w->io, packed, n, sc->raddr, sc->rkey);
}

/* A run into a whole-chunk registration. */
static int post_run(struct rdmamig_session *sess, struct xfer_chunk *xc,
		    u32 run, struct xfer_window *w)
{
	struct rdmamig_src_chunk *sc = &xc->b->src[xc->chunk];
	u32 start = xc->run_start[run];
	u64 roff = (u64)(xc->first + start) << PAGE_SHIFT;

	return rdmamig_xfer_post(sess, &w->io, xc->pages + xc->run_page[run],
				 xc->run_len[run], sc->raddr + roff, sc->rkey);
}

/*
 * Post every run of the window; its writes then complete on their own.
 * @packed: scratch for post_sparse().
 */
static int post_window(struct rdmamig_session *sess, struct xfer_window *w,
		       struct page **packed)
{
	bool sparse = sparse_keys(sess);
	u32 i, r, total = 0;
	int ret;

	for (i = 0; i < w->n; i++) {
		struct xfer_chunk *xc = &w->chunks[i];
		u32 n = 0;

		for (r = 0; r < xc->nruns; r++) {
			if (sparse)
				n += xc->run_len[r];
			else
				total += rdmamig_xfer_ios(sess, xc->run_len[r]);
		}
		if (n)
			total += rdmamig_xfer_ios(sess, n);
	}
	if (!total)
		return 0;
	ret = rdmamig_xfer_batch_start(sess, &w->io, RDMAMIG_XFER_WRITE, total);
	for (i = 0; i < w->n && !ret; i++) {
		struct xfer_chunk *xc = &w->chunks[i];

		if (sparse && xc->nruns) {
			ret = post_sparse(sess, xc, packed, w);
			continue;
		}
		for (r = 0; r < xc->nruns && !ret; r++)
			ret = post_run(sess, xc, r, w);
	}
	return ret;
}

/*
 * Wait for the window's writes to be placed (an RC WRITE completes once
 * the destination acknowledged it; rdmamig_xfer_finish() says why that
 * wait always ends), then unpin its chunks.
 */
static int finish_window(struct rdmamig_session *sess, struct xfer_window *w)
{
	u32 i;

	rdmamig_xfer_finish(sess, &w->io);
	for (i = 0; i < w->n; i++)
		rdmamig_precopy_src_release(sess, &w->chunks[i]);
	w->n = 0;
	return rdmamig_session_error(sess);
}

/*
 * Chunks per window the owner's RLIMIT_MEMLOCK leaves room for.  A round
 * holds two windows pinned at most (the next one is scanned while the
 * last one's writes are in flight), whether or not their registrations
 * overlap, and a chunk pins at most RDMAMIG_CHUNK_PAGES.
 */
u32 rdmamig_precopy_src_memlock_chunks(struct rdmamig_session *sess)
{
	u64 have = atomic64_read(&sess->mm->pinned_vm);

	if (sess->ipc_lock)
		return XFER_WINDOW_CHUNKS;
	if (have >= sess->memlock_pages)
		return 0;
	return min_t(u64, div64_u64(sess->memlock_pages - have, 2 * RDMAMIG_CHUNK_PAGES),
		     XFER_WINDOW_CHUNKS);
}

/*
 * Chunks per window, and whether two windows may be registered at once.
 * 0: not even one chunk per window fits in the memlock limit.
 */
static u32 window_chunks(struct rdmamig_session *sess, bool *overlap)
{
	u64 max = sess->params.max_registered >> RDMAMIG_CHUNK_SHIFT;
	u32 n;

	if (sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL) {
		*overlap = true;
		n = XFER_WINDOW_CHUNKS;
	} else {
		*overlap = max >= 2;
		n = clamp_t(u64, *overlap ? max / 2 : 1, 1, XFER_WINDOW_CHUNKS);
	}
	return min(n, rdmamig_precopy_src_memlock_chunks(sess));
}

/* Push: keys for the window, then its writes. */
static int push_send(struct rdmamig_session *sess, struct xfer_window *w,
		     struct xfer_window *busy, struct xfer_round *x)
{
	return get_keys(sess, w, busy) ?: post_window(sess, w, x->packed);
}

static const struct rdmamig_src_mover push_mover = {
	.send		= push_send,
	.retire		= finish_window,
	.window_chunks	= window_chunks,
};

/**
 * rdmamig_precopy_src_round() - send one block's dirty pages
 * @sess: a connected source session
 * @r: the round request, validated here
 * @bitmap: @r->npages bits, in kernel memory
 * @mv: how a window's pages move: written by us (push), read by the
 *	destination (pull_src.c)
 *
 * Return: 0 once every page is written or queued as COMPRESS (the round's
 * END_ROUND confirms placement), or a negative errno.
 */
int rdmamig_precopy_src_round(struct rdmamig_session *sess,
			      struct rdmamig_round *r, const unsigned long *bitmap,
			      const struct rdmamig_src_mover *mv)
{
	struct xfer_window *cur, *prev = NULL;
	struct rdmamig_block_ram *b;
	struct xfer_round *x;
	u64 bpages, end, c, c0, c1;
	bool overlap;
	u32 wmax;
	int ret = 0;

	lockdep_assert_held(&sess->lock);
	if (!connected(sess))
		return rdmamig_session_error(sess) ?: -ENOTCONN;
	if (r->flags & ~RDMAMIG_ROUND_FINAL || r->reserved)
		return -EINVAL;
	if (r->block >= sess->nblocks)
		return -EINVAL;
	b = sess->blocks[r->block];
	bpages = b->length >> PAGE_SHIFT;
	if (!r->npages || check_add_overflow(r->first_page, r->npages, &end) ||
	    end > bpages)
		return -EINVAL;

	wmax = mv->window_chunks(sess, &overlap);
	if (!wmax) {
		/* Pinned elsewhere in the owner's mm since CONNECT checked. */
		rdmamig_session_fail(sess, -ENOMEM, true,
				     "memlock limit %llu bytes too low: %llu bytes needed (already pinned %llu)",
				     (u64)sess->memlock_pages << PAGE_SHIFT,
				     (u64)2 * RDMAMIG_CHUNK_SIZE,
				     (u64)atomic64_read(&sess->mm->pinned_vm) << PAGE_SHIFT);
		return -ENOMEM;
	}
	x = kvzalloc(sizeof(*x), GFP_KERNEL);
	if (!x)
		return -ENOMEM;
	cur = &x->win[0];

	if (!sess->round_start)
		sess->round_start = ktime_get();
	spin_lock_irq(&sess->slock);
	if ((r->flags & RDMAMIG_ROUND_FINAL) && !sess->t_final)
		sess->t_final = ktime_get();
	if (sess->state == RDMAMIG_STATE_CONNECTED)
		rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_ACTIVE);
	spin_unlock_irq(&sess->slock);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);

	c0 = r->first_page / RDMAMIG_CHUNK_PAGES;
	c1 = (end - 1) / RDMAMIG_CHUNK_PAGES;
	for (c = c0; c <= c1 && !ret; c++) {
		u64 lo = max(c * RDMAMIG_CHUNK_PAGES, r->first_page);
		u64 hi = min((c + 1) * RDMAMIG_CHUNK_PAGES, end);
		u64 first, last;
		struct xfer_chunk *xc;

		first = find_next_bit(bitmap, hi - r->first_page, lo - r->first_page);
		if (first < hi - r->first_page) {
			ktime_t t0 = ktime_get();

			last = find_last_bit(bitmap, hi - r->first_page);
			xc = &cur->chunks[cur->n++];
			xc->b = b;
			xc->chunk = c;
			ret = scan_chunk(sess, x, xc, bitmap, r->first_page,
					 first + r->first_page - c * RDMAMIG_CHUNK_PAGES,
					 last + r->first_page - c * RDMAMIG_CHUNK_PAGES);
			/*
			 * Only zero pages: no key, no write, no place in the
			 * window.  Windows then fill with chunks that carry
			 * data, and in mostly-zero memory the scan of the
			 * next one overlaps a full window of writes instead
			 * of a chunk or two.
			 */
			if (!ret && !xc->nruns) {
				rdmamig_precopy_src_release(sess, xc);
				cur->n--;
			}
			rdmamig_time_add(&sess->scan_ns, t0);
		}
		if (ret || (cur->n < wmax && c < c1))
			continue;
		/*
		 * Window full: key and post it, then retire the previous one
		 * (whose writes ran while this one was scanned).  Without room
		 * for two windows' registrations, retire it first.
		 */
		if (prev && !overlap) {
			ret = mv->retire(sess, prev);
			prev = NULL;
		}
		if (!ret)
			ret = mv->send(sess, cur, prev, x);
		if (prev) {
			int err = mv->retire(sess, prev);

			ret = ret ?: err;
		}
		prev = cur;
		cur = cur == &x->win[0] ? &x->win[1] : &x->win[0];
		cond_resched();
	}
	if (prev) {
		int err = mv->retire(sess, prev);

		ret = ret ?: err;
	}
	mv->retire(sess, cur);	/* chunks scanned before a failure */
	/*
	 * rdmamig_xfer_throttle() runs before each write, so the last
	 * one's bytes have not been paid for yet: without this a round of
	 * one write (a sparse chunk) would not be limited at all.
	 */
	if (!ret)
		ret = rdmamig_xfer_throttle(sess) ?: rdmamig_session_error(sess);
	/*
	 * A page the VMM sends again later in this round must not be zeroed
	 * after its new content lands: COMPRESS is applied before we go on.
	 */
	if (!ret)
		ret = flush_zero(sess, x);
	if (!ret && x->zero_sent)
		ret = send_and_wait_ack(sess, RDMAMIG_MSG_BARRIER, 0, 0, 0);
	if (x->zero_folio)
		folio_put(x->zero_folio);
	kvfree(x);
	if (ret && !rdmamig_session_dead(sess))
		rdmamig_session_fail(sess, ret, true, "sending block %s failed",
				     b->name);
	/* Not restarted: the session failed.  Its error, EINTR, is told. */
	return ret == -ERESTARTSYS ? -EINTR : ret;
}

int rdmamig_precopy_src_send_round(struct rdmamig_session *sess,
				   struct rdmamig_round *r,
				   const unsigned long *bitmap)
{
	return rdmamig_precopy_src_round(sess, r, bitmap, &push_mover);
}

/*
 * Dynamic registration: the destination invalidated every key of the
 * round when it placed it (see dst_invalidate_round()); ask afresh next
 * round.  Pin-all keys live until the session ends.
 */
static void forget_keys(struct rdmamig_session *sess)
{
	struct rdmamig_src_chunk *sc, *tmp;
	unsigned long flags;
	u32 n = 0;

	if ((sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL) ||
	    rdmamig_hostile_keeps_keys(sess))
		return;
	list_for_each_entry_safe(sc, tmp, &sess->lru, lru) {
		sc->registered = false;
		list_del_init(&sc->lru);
		n++;
	}
	sess->registered_chunks = 0;
	spin_lock_irqsave(&sess->slock, flags);
	sess->stats.chunks_unregistered += n;
	spin_unlock_irqrestore(&sess->slock, flags);
}

/**
 * rdmamig_precopy_src_end_round() - end the round once the destination placed it
 * @sess: a connected source session
 *
 * Return: 0 after the destination acknowledged the round, or an errno.
 */
int rdmamig_precopy_src_end_round(struct rdmamig_session *sess)
{
	ktime_t now;
	u64 ns, rate;
	int ret;

	lockdep_assert_held(&sess->lock);
	if (!connected(sess))
		return rdmamig_session_error(sess) ?: -ENOTCONN;
	ret = send_and_wait_ack(sess, RDMAMIG_MSG_REGISTER_FINISHED,
				sess->stats.rounds + 1, sess->round_pages,
				sess->round_zero_pages);
	if (ret) {
		rdmamig_session_fail(sess, ret, true, "round %llu not acknowledged",
				     sess->stats.rounds + 1);
		return ret;
	}

	now = ktime_get();
	ns = sess->round_start ? ktime_to_ns(ktime_sub(now, sess->round_start)) : 0;
	/* Past 18 GB a round, round_bytes * NSEC_PER_SEC wraps. */
	rate = ns ? rdmamig_mul_div_sat(sess->round_bytes, NSEC_PER_SEC, ns) : 0;
	spin_lock_irq(&sess->slock);
	sess->stats.rounds++;
	sess->stats.pages += sess->round_pages;
	sess->stats.zero_pages += sess->round_zero_pages;
	sess->stats.zero_skipped += sess->round_zero_skipped;
	sess->stats.bytes += sess->round_bytes;
	sess->stats.throughput = rate;
	spin_unlock_irq(&sess->slock);
	sess->round_pages = 0;
	sess->round_zero_pages = 0;
	sess->round_zero_skipped = 0;
	sess->round_bytes = 0;
	sess->round_start = 0;
	forget_keys(sess);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_ROUND);
	return 0;
}

/* Everything is sent; the destination confirms and we are done. */
int rdmamig_precopy_src_complete(struct rdmamig_session *sess)
{
	bool done;
	int ret;

	lockdep_assert_held(&sess->lock);
	if (!connected(sess))
		return rdmamig_session_error(sess) ?: -ENOTCONN;
	if (sess->round_start)
		return -EBUSY;	/* a round is open: end it first */
	ret = send_and_wait_ack(sess, RDMAMIG_MSG_COMPLETE, sess->stats.rounds,
				sess->stats.pages, sess->stats.zero_pages);
	if (ret) {
		rdmamig_session_fail(sess, ret, true, "completion not acknowledged");
		return ret;
	}
	/* A cancel or failure that came first stands: no success over it. */
	spin_lock_irq(&sess->slock);
	done = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_COMPLETED);
	if (done) {
		sess->t_end = ktime_get();
		if (!sess->t_final)
			sess->t_final = sess->t_end;
	}
	spin_unlock_irq(&sess->slock);
	if (!done)
		return rdmamig_session_error(sess) ?: -EINVAL;
	wake_up_all(&sess->wait);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	sess_info(sess, "migration completed: %llu rounds, %llu pages, %llu zero pages\n",
		  sess->stats.rounds, sess->stats.pages, sess->stats.zero_pages);
	return 0;
}

/* ACK: of the last BARRIER, REGISTER_FINISHED or COMPLETE, in order. */
void rdmamig_precopy_src_ack(struct rdmamig_session *sess, const void *payload,
			     u32 repeat, u32 len)
{
	const struct rdmamig_cmd_round *cmd = payload;
	u64 seq = be64_to_cpu(cmd->seq);

	if (seq != READ_ONCE(sess->acks_got) + 1 || seq > READ_ONCE(sess->ack_seq)) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "ACK for sequence %llu out of order", seq);
		return;
	}
	WRITE_ONCE(sess->acks_got, seq);
	wake_up_all(&sess->wait);
}

/* UNREGISTER_FINISHED: make_room()'s chunks are no longer exposed. */
void rdmamig_precopy_src_unregistered(struct rdmamig_session *sess,
				      const void *payload, u32 n, u32 len)
{
	if (n > sess->unreg_pending) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "unregister confirmation nobody asked for");
		return;
	}
	sess->unreg_pending -= n;
}

/* RAM_BLOCKS_RESULT: the destination agreed; rounds may flow. */
void rdmamig_precopy_src_blocks_agreed(struct rdmamig_session *sess,
				       const void *payload, u32 repeat, u32 len)
{
	if (!src_blocks_result(sess, payload))
		rdmamig_session_mark_ready(sess);
}

static const struct rdmamig_msg_handler src_msgs[__RDMAMIG_MSG_MAX] = {
	[RDMAMIG_MSG_RAM_BLOCKS_RESULT]	= { rdmamig_precopy_src_blocks_agreed, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_CHANNELS_RESULT]	= { rdmamig_chan_src_result, RDMAMIG_PHASE_SETUP },
	[RDMAMIG_MSG_REGISTER_RESULT]	= { rdmamig_precopy_src_register_result, RDMAMIG_PHASE_AGREED },
	[RDMAMIG_MSG_UNREGISTER_FINISHED] = { rdmamig_precopy_src_unregistered, RDMAMIG_PHASE_AGREED },
	[RDMAMIG_MSG_ACK]		= { rdmamig_precopy_src_ack, RDMAMIG_PHASE_AGREED },
};

const struct rdmamig_mode_ops rdmamig_precopy_src_ops = {
	.name		= "precopy source",
	.msgs		= src_msgs,
	.start		= rdmamig_precopy_src_start,
	.send_round	= rdmamig_precopy_src_send_round,
	.end_round	= rdmamig_precopy_src_end_round,
	.complete	= rdmamig_precopy_src_complete,
};
