// SPDX-License-Identifier: GPL-2.0
/*
 * The data path.  Source: rounds of dirty pages, merged into runs per
 * 1 MiB chunk, zero pages sent as COMPRESS commands, the rest written with
 * RDMA WRITE (rdma_rw) straight from the pinned pages into the chunk the
 * destination registered, at most max-bandwidth bytes per second.
 * Destination: the commands that make that possible, every field checked.
 *
 * Every work request of the data path is posted by post_pages(), with
 * rdma_rw towards a key of the peer's chunk: the pull mode (destination
 * posts RDMA READ from chunks the source exposes) is to reuse the chunk,
 * key and run machinery there with the direction swapped.
 */
#include "rdmamig.h"

#include <linux/highmem.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <rdma/rw.h>

#include "hostile.h"
#include "proto.h"
#include "session.h"
#include "auth.h"
#include "block.h"
#include "chan.h"
#include "ctrl.h"
#include "pace.h"
#include "stream.h"
#include "xfer.h"

#define XFER_WINDOW_CHUNKS	16	/* chunks pinned and written at once */
#define XFER_WAIT		(120 * HZ)

/*
 * Off by default: in the QEMU testbed (rxe under TCG, THP on) it moved no
 * faster than whole chunks, and zero-heavy memory slower, because the
 * destination then pins run by run (Documentation/performance.rst).
 */
static bool sparse;
module_param(sparse, bool, 0644);
MODULE_PARM_DESC(sparse, "dynamic registration exposes only the pages a window writes, one RDMA WRITE per chunk (default: off: whole chunks, one WRITE per run of pages)");

/* Offer (source) or grant (destination) RDMAMIG_WIRE_CAP_SPARSE? */
bool rdmamig_xfer_sparse(void)
{
	return READ_ONCE(sparse);
}

struct xfer_window;

/* One RDMA WRITE of a run of pages within a chunk. */
struct xfer_io {
	struct ib_cqe cqe;
	struct rdmamig_session *sess;
	struct xfer_window *w;
	struct rdma_rw_ctx ctx;
	struct sg_table sgt;
	struct ib_qp *qp;	/* of channel @ch: the context is bound to it */
	u32 ch;
	int nwr;
	u64 bytes;
	bool posted;
};

/* A chunk of the current window: its pinned span and dirty runs. */
struct xfer_chunk {
	struct rdmamig_block_ram *b;
	u32 chunk;
	u32 first;		/* first dirty page, relative to the chunk */
	u32 npinned;
	struct page *pages[RDMAMIG_CHUNK_PAGES];	/* see scan_chunk() */
	u32 nruns;
	u16 run_start[RDMAMIG_CHUNK_PAGES / 2 + 1];	/* relative to @first */
	u16 run_page[RDMAMIG_CHUNK_PAGES / 2 + 1];	/* its first in @pages */
	u16 run_len[RDMAMIG_CHUNK_PAGES / 2 + 1];
	bool asked;		/* in this window's REGISTER_(PAGES_)REQUEST */
};

/*
 * Chunks pinned, keyed and written together.  Two windows alternate so
 * that the next one is scanned while the last one's writes are in flight.
 */
struct xfer_window {
	struct xfer_chunk chunks[XFER_WINDOW_CHUNKS];
	u32 n;
	struct xfer_io *ios;
	u32 nio, maxio;
	atomic_t inflight;	/* posted writes not completed */
};

/* The state of one SEND_ROUND. */
struct xfer_round {
	struct xfer_window win[2];
	struct page *packed[RDMAMIG_CHUNK_PAGES];	/* a sparse chunk's pages */
	struct rdmamig_cmd_compress zero[RDMAMIG_MSG_PAYLOAD /
					 sizeof(struct rdmamig_cmd_compress)];
	u32 nzero;
	bool zero_sent;		/* COMPRESS went out in this SEND_ROUND */
	struct folio *zero_folio;	/* all zero, held: dirty_page_is_zero() */
	const struct folio *mixed_folio; /* not all zero; not held */
};

static bool is_source(struct rdmamig_session *sess)
{
	return sess->role == RDMAMIG_ROLE_SOURCE;
}

static bool connected(struct rdmamig_session *sess)
{
	enum rdmamig_state s = READ_ONCE(sess->state);

	return s == RDMAMIG_STATE_CONNECTED || s == RDMAMIG_STATE_ACTIVE;
}

/*
 * @a * @b / @c (@c not 0), or U64_MAX where that does not fit: on x86-64
 * mul_u64_u64_div_u64() is one divq, which traps on a quotient too wide.
 * (@a / @c + 1) * @b bounds the quotient from above.
 */
static u64 mul_div_sat(u64 a, u64 b, u64 c)
{
	if (div64_u64(a, c) >= div64_u64(U64_MAX, b))
		return U64_MAX;
	return mul_u64_u64_div_u64(a, b, c);
}

/*
 * A signal ended a sleep of the source's data path: fail the session
 * (the peer is told), because what was sent of a round or a handshake
 * cannot be resumed by calling again.  The VMM sees EINTR.
 */
static int interrupted(struct rdmamig_session *sess, const char *during)
{
	rdmamig_session_fail(sess, -EINTR, true, "interrupted by a signal %s",
			     during);
	return -EINTR;
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
		return interrupted(sess, "waiting to send a message");
	if (ret)
		return ret;
	ret = rdmamig_session_wait(sess, acked, XFER_WAIT);
	if (ret == -ERESTARTSYS)
		ret = interrupted(sess, "waiting for the destination's acknowledgement");
	return ret;
}

/* ---- Source: connection set-up ------------------------------------------ */

static void mark_ready(struct rdmamig_session *sess)
{
	struct rdmamig_event ev = { .type = RDMAMIG_EVENT_CONNECTED };
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	sess->peer_ready = true;
	rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_CONNECTED);
	sess->t_setup = ktime_get();
	spin_unlock_irqrestore(&sess->slock, flags);
	rdmamig_session_push_event(sess, &ev);
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	rdmamig_ctrl_start_keepalive(sess);
}

/**
 * rdmamig_xfer_exchange_blocks() - tell the destination our RAM layout
 * @sess: a source session whose connection is established
 *
 * Return: 0 once the destination agreed (and, with pin-all, registered
 * everything), or the error it or the connection reported.
 */
int rdmamig_xfer_exchange_blocks(struct rdmamig_session *sess)
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
		return interrupted(sess, "waiting to send the RAM blocks");
	if (ret)
		return ret;
	ret = rdmamig_session_wait(sess, rdmamig_peer_ready, XFER_WAIT);
	if (ret == -ERESTARTSYS)
		ret = interrupted(sess, "waiting for the destination to accept the RAM blocks");
	return ret;
}

/**
 * rdmamig_xfer_memlock_check() - can the source pin its smallest windows?
 * @sess: a source session; its owner's limit was just captured
 *
 * A round pins two windows (one is scanned while the other's writes are
 * in flight) of at least one 1 MiB chunk each, charged to the owner's
 * RLIMIT_MEMLOCK; see window_chunks().
 *
 * Return: 0, or -ENOMEM with the reason naming the limit and the bytes.
 */
int rdmamig_xfer_memlock_check(struct rdmamig_session *sess)
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

/* The chunk's pages to write, as REGISTER_PAGES_REQUEST's map. */
static void fill_pages_cmd(struct xfer_chunk *xc, struct rdmamig_cmd_pages *cmd)
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
			fill_pages_cmd(xc, &pcmds[n]);
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

		ret = rdmamig_session_wait(sess, keys_arrived, XFER_WAIT);
		rdmamig_time_add(&sess->keys_wait_ns, t0);
		if (ret == -ERESTARTSYS)
			ret = interrupted(sess, "waiting for the destination's keys");
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

static void src_register_result(struct rdmamig_session *sess,
				const struct rdmamig_cmd_key *k, u32 n)
{
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
 * (up to XFER_WAIT) or max-bandwidth can make long: they are long-term
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
static void release_chunk(struct rdmamig_session *sess, struct xfer_chunk *xc)
{
	unpin_user_pages(xc->pages, xc->npinned);
	rdmamig_pin_unaccount(sess, xc->npinned);
	xc->npinned = 0;
}

static void io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct xfer_io *io = container_of(wc->wr_cqe, struct xfer_io, cqe);
	struct rdmamig_session *sess = io->sess;

	rdmamig_pace_done(sess, io->ch, io->bytes);
	rdmamig_sq_put(sess, io->ch, io->nwr);
	if (wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR)
		rdmamig_session_fail(sess, -EIO, false,
				     "RDMA WRITE failed on channel %u: %s",
				     io->ch, ib_wc_status_msg(wc->status));
	atomic_dec(&io->w->inflight);
	wake_up_all(&sess->tx_wait);
}

/*
 * Hold the data path to max-bandwidth, measured from the round's start.
 * A cancel or failure ends the sleep: it must not wait out the limit,
 * which SET_SESSION may lower to 1 B/s while the round's windows are
 * pinned.  So does a signal, which fails the session.
 * Return: 0, or -EINTR.
 */
static int throttle(struct rdmamig_session *sess)
{
	u64 bw = READ_ONCE(sess->params.max_bandwidth);	/* SET_SESSION */
	s64 ahead_ns;

	if (!bw)
		return 0;
	/* Past 18 GB a round, round_bytes * NSEC_PER_SEC wraps. */
	ahead_ns = min_t(u64, mul_div_sat(sess->round_bytes, NSEC_PER_SEC, bw),
			 S64_MAX) -
		   ktime_to_ns(ktime_sub(ktime_get(), sess->round_start));
	if (ahead_ns <= 0)
		return 0;
	if (wait_event_interruptible_timeout(sess->wait, rdmamig_session_dead(sess),
					     nsecs_to_jiffies(ahead_ns) ?: 1) < 0)
		return interrupted(sess, "while held to max-bandwidth");
	return 0;
}

/*
 * Write @n pages with RDMA WRITE to @raddr of the destination's key
 * @rkey: one run of a whole-chunk registration, or every page a sparse
 * registration of the chunk holds; or the first of them only: under a
 * keepalive, channel 0's writes are cut to rdmamig_pace_max_pages()
 * (pace.c), and post_span() posts the rest.
 *
 * Writes go round-robin over the channels (for a bulk round, one run is one
 * chunk: chunk i goes to channel i % channels).  RC orders writes only
 * within one QP, and nothing here needs more: every message whose meaning
 * depends on earlier writes being placed (REGISTER_FINISHED, after which
 * the destination drops the round's keys; BARRIER; COMPLETE; an
 * UNREGISTER_REQUEST, which names only chunks outside the windows in
 * flight) is sent only after the completions of those writes arrived,
 * whatever channel they went on: finish_window() waits for every write of
 * a window, and rdmamig_xfer_send_round() for both windows before it
 * returns.  An RC WRITE completes once the destination acknowledged it.
 *
 * Return: the pages posted, or a negative errno.
 */
static int post_pages(struct rdmamig_session *sess, struct page **pages,
		      u32 n, u64 raddr, u32 rkey, struct xfer_io *io)
{
	u32 nchan = max_t(u32, READ_ONCE(sess->nchan), 1);
	int ret;

	io->ch = sess->next_chan++ % nchan;
	io->qp = rdmamig_chan_qp(sess, io->ch);
	n = min(n, rdmamig_pace_max_pages(sess, io->ch));
	ret = throttle(sess);
	if (ret)
		return ret;
	ret = sg_alloc_table_from_pages(&io->sgt, pages, n, 0,
					(unsigned long)n << PAGE_SHIFT, GFP_KERNEL);
	if (ret)
		return ret;
	ret = rdma_rw_ctx_init(&io->ctx, io->qp, sess->port_num, io->sgt.sgl,
			       io->sgt.orig_nents, 0, raddr, rkey, DMA_TO_DEVICE);
	if (ret < 0) {
		sg_free_table(&io->sgt);
		return ret;
	}
	io->nwr = ret;
	io->bytes = (u64)n << PAGE_SHIFT;
	io->sess = sess;
	io->cqe.done = io_done;
	ret = rdmamig_pace_take(sess, io->ch, io->bytes, XFER_WAIT);
	if (ret)
		goto err_ctx;
	ret = rdmamig_sq_take(sess, io->ch, io->nwr);
	if (ret)
		goto err_pace;
	atomic_inc(&io->w->inflight);
	ret = rdma_rw_ctx_post(&io->ctx, io->qp, sess->port_num, &io->cqe, NULL);
	if (ret) {
		atomic_dec(&io->w->inflight);
		rdmamig_sq_put(sess, io->ch, io->nwr);
		goto err_pace;
	}
	io->posted = true;
	sess->round_pages += n;
	sess->round_bytes += io->bytes;
	return n;

err_pace:
	rdmamig_pace_undo(sess, io->ch, io->bytes);
err_ctx:
	rdma_rw_ctx_destroy(&io->ctx, io->qp, sess->port_num, io->sgt.sgl,
			    io->sgt.orig_nents, DMA_TO_DEVICE);
	sg_free_table(&io->sgt);
	return ret;
}

/* Write @n pages to @raddr, in as many writes as post_pages() makes. */
static int post_span(struct rdmamig_session *sess, struct xfer_window *w,
		     struct page **pages, u32 n, u64 raddr, u32 rkey)
{
	struct xfer_io *io;
	int ret;

	while (n) {
		if (WARN_ON_ONCE(w->nio >= w->maxio))
			return -EOVERFLOW;
		io = &w->ios[w->nio++];
		io->w = w;
		ret = post_pages(sess, pages, n, raddr, rkey, io);
		if (ret < 0)
			return ret;
		pages += ret;
		raddr += (u64)ret << PAGE_SHIFT;
		n -= ret;
	}
	return 0;
}

/* Writes post_span() may make of @n pages: see rdmamig_pace_max_pages(). */
static u32 span_ios(struct rdmamig_session *sess, u32 n)
{
	return READ_ONCE(sess->keepalive_ms) ?
	       DIV_ROUND_UP(n, RDMAMIG_PACE_MIN_PAGES) : 1;
}

/* A chunk's sparse registration: its runs, back to back. */
static int post_sparse(struct rdmamig_session *sess, struct xfer_chunk *xc,
		       struct page **packed, struct xfer_window *w)
{
	struct rdmamig_src_chunk *sc = &xc->b->src[xc->chunk];
	u32 r, n = 0;

	for (r = 0; r < xc->nruns; r++) {
		memcpy(packed + n, xc->pages + xc->run_page[r],
		       xc->run_len[r] * sizeof(*packed));
		n += xc->run_len[r];
	}
	return post_span(sess, w, packed, n, sc->raddr, sc->rkey);
}

/* A run into a whole-chunk registration. */
static int post_run(struct rdmamig_session *sess, struct xfer_chunk *xc,
		    u32 run, struct xfer_window *w)
{
	struct rdmamig_src_chunk *sc = &xc->b->src[xc->chunk];
	u32 start = xc->run_start[run];
	u64 roff = (u64)(xc->first + start) << PAGE_SHIFT;

	return post_span(sess, w, xc->pages + xc->run_page[run], xc->run_len[run],
			 sc->raddr + roff, sc->rkey);
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
	int ret = 0;

	for (i = 0; i < w->n; i++) {
		struct xfer_chunk *xc = &w->chunks[i];
		u32 n = 0;

		for (r = 0; r < xc->nruns; r++) {
			if (sparse)
				n += xc->run_len[r];
			else
				total += span_ios(sess, xc->run_len[r]);
		}
		if (n)
			total += span_ios(sess, n);
	}
	if (!total)
		return 0;
	w->ios = kvcalloc(total, sizeof(*w->ios), GFP_KERNEL);
	if (!w->ios)
		return -ENOMEM;
	w->maxio = total;
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

static bool window_idle(struct xfer_window *w)
{
	return atomic_read(&w->inflight) == 0;
}

/*
 * Wait for the window's writes to be placed (an RC WRITE completes once
 * the destination acknowledged it), then release everything it holds.
 * Writes posted before a failure are waited for too: their pages stay
 * pinned and DMA-mapped until the QP is done with them.  That wait always
 * ends, with no help from the peer: every posted write completes, placed,
 * failed once the transport's retries ran out (retry_count 7), or flushed
 * when its QP enters the error state, which the disconnect of a failed or
 * cancelled session (ctrl_fail_work()) does at once.  A signal fails the
 * session, so that the flush ends the wait without waiting for the peer.
 */
static int finish_window(struct rdmamig_session *sess, struct xfer_window *w)
{
	ktime_t t0 = ktime_get();
	u32 i;

	if (wait_event_interruptible(sess->tx_wait, window_idle(w)))
		interrupted(sess, "waiting for RDMA WRITEs to complete");
	wait_event(sess->tx_wait, window_idle(w));
	rdmamig_time_add(&sess->writes_wait_ns, t0);
	for (i = 0; i < w->nio; i++) {
		if (!w->ios[i].posted)
			continue;
		rdma_rw_ctx_destroy(&w->ios[i].ctx, w->ios[i].qp, sess->port_num,
				    w->ios[i].sgt.sgl, w->ios[i].sgt.orig_nents,
				    DMA_TO_DEVICE);
		sg_free_table(&w->ios[i].sgt);
	}
	kvfree(w->ios);
	w->ios = NULL;
	w->nio = 0;
	for (i = 0; i < w->n; i++)
		release_chunk(sess, &w->chunks[i]);
	w->n = 0;
	return rdmamig_session_error(sess);
}

/*
 * Chunks per window the owner's RLIMIT_MEMLOCK leaves room for.  A round
 * holds two windows pinned at most (the next one is scanned while the
 * last one's writes are in flight), whether or not their registrations
 * overlap, and a chunk pins at most RDMAMIG_CHUNK_PAGES.
 */
static u32 memlock_chunks(struct rdmamig_session *sess)
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
	return min(n, memlock_chunks(sess));
}

/**
 * rdmamig_xfer_send_round() - send one block's dirty pages (source)
 * @sess: a connected source session
 * @r: the round request, validated here
 * @bitmap: @r->npages bits, in kernel memory
 *
 * Return: 0 once every page is written or queued as COMPRESS (the round's
 * END_ROUND confirms placement), or a negative errno.
 */
int rdmamig_xfer_send_round(struct rdmamig_session *sess,
			    struct rdmamig_round *r, const unsigned long *bitmap)
{
	struct xfer_window *cur, *prev = NULL;
	struct rdmamig_block_ram *b;
	struct xfer_round *x;
	u64 bpages, end, c, c0, c1;
	bool overlap;
	u32 wmax;
	int ret = 0;

	lockdep_assert_held(&sess->lock);
	if (!is_source(sess) || !connected(sess))
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

	wmax = window_chunks(sess, &overlap);
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
				release_chunk(sess, xc);
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
			ret = finish_window(sess, prev);
			prev = NULL;
		}
		if (!ret)
			ret = get_keys(sess, cur, prev);
		if (!ret)
			ret = post_window(sess, cur, x->packed);
		if (prev) {
			int err = finish_window(sess, prev);

			ret = ret ?: err;
		}
		prev = cur;
		cur = cur == &x->win[0] ? &x->win[1] : &x->win[0];
		cond_resched();
	}
	if (prev) {
		int err = finish_window(sess, prev);

		ret = ret ?: err;
	}
	finish_window(sess, cur);	/* chunks scanned before a failure */
	/*
	 * throttle() runs before each write, so the last one's bytes have
	 * not been paid for yet: without this a round of one write (a
	 * sparse chunk) would not be limited at all.
	 */
	if (!ret)
		ret = throttle(sess) ?: rdmamig_session_error(sess);
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
 * rdmamig_xfer_end_round() - end the round once the destination placed it
 * @sess: a connected source session
 *
 * Return: 0 after the destination acknowledged the round, or an errno.
 */
int rdmamig_xfer_end_round(struct rdmamig_session *sess)
{
	ktime_t now;
	u64 ns, rate;
	int ret;

	lockdep_assert_held(&sess->lock);
	if (!is_source(sess) || !connected(sess))
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
	rate = ns ? mul_div_sat(sess->round_bytes, NSEC_PER_SEC, ns) : 0;
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

/* Source: everything is sent; the destination confirms and we are done. */
int rdmamig_xfer_complete(struct rdmamig_session *sess)
{
	bool done;
	int ret;

	lockdep_assert_held(&sess->lock);
	if (!is_source(sess) || !connected(sess))
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

/* ---- Destination --------------------------------------------------------- */

static int send_ack(struct rdmamig_session *sess, const struct rdmamig_cmd_round *req)
{
	struct rdmamig_cmd_round ack = *req;

	return rdmamig_ctrl_send(sess, RDMAMIG_MSG_ACK, 1, &ack, sizeof(ack));
}

static void dst_blocks(struct rdmamig_session *sess,
		       const struct rdmamig_cmd_block *cmds, u32 n)
{
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
	mark_ready(sess);
}

/*
 * pin-all, destination: register every chunk of every block, in the order
 * a bulk round asks for them, while the source writes its first windows
 * (registering 256 MiB before answering the RAM blocks took 2.9 s of a
 * 13.2 s migration in loop).  A REGISTER_REQUEST for a chunk not done yet
 * registers it in the rx work; @reg_mutex orders the two, and a chunk is
 * registered once.  Stops at teardown (@closing) or a failure.
 */
void rdmamig_dst_pinall_work(struct work_struct *work)
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
			ret = rdmamig_dst_register(sess, b, c, NULL);
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
static struct rdmamig_block_ram *peer_chunk(struct rdmamig_session *sess,
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

	b = peer_chunk(sess, id, &chunk);
	if (!b)
		return false;
	nbits = rdmamig_chunk_pages(b, chunk);
	if (map) {
		bool none = bitmap_empty(map, nbits);

		if (none || find_next_bit(map, RDMAMIG_CHUNK_PAGES, nbits) <
			    RDMAMIG_CHUNK_PAGES) {
			rdmamig_session_fail(sess, -EPROTO, true,
					     "register of %s pages of '%s' chunk %u (%u pages)",
					     none ? "no" : "nonexistent", b->name, chunk,
					     nbits);
			return false;
		}
	}
	mutex_lock(&sess->reg_mutex);
	/* Our own bound holds whatever the source believes. */
	held = (u64)b->dst[chunk].npages << PAGE_SHIFT;
	need = map ? (u64)bitmap_weight(map, nbits) << PAGE_SHIFT : RDMAMIG_CHUNK_SIZE;
	max = max_t(u64, sess->params.max_registered, RDMAMIG_CHUNK_SIZE);
	if (!(sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL) && (map || !held) &&
	    sess->stats.registered_bytes - held + need > max) {
		mutex_unlock(&sess->reg_mutex);
		rdmamig_session_fail(sess, -ENOSPC, true,
				     "source registered more than max-registered (%llu bytes) of the destination",
				     sess->params.max_registered);
		return false;
	}
	ret = rdmamig_dst_register(sess, b, chunk, map);
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

/*
 * The source asks for the distinct chunks of one window at a time.  A
 * chunk named again in the same request would have its key sent twice,
 * or with sparse keys be pinned and registered again for every repeat
 * (revoking the key just made): up to 2730 registrations a message that
 * the max-registered bound never sees, since each replaces the last.
 * Such a request is refused before anything is registered.
 * Return: true when every chunk is named once; false after failing.
 */
static bool dst_register_distinct(struct rdmamig_session *sess,
				  const struct rdmamig_cmd_chunk *cmds,
				  const struct rdmamig_cmd_pages *pages, u32 n)
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
	for (i = 0; i < n; i++)
		ids[i] = pages ? (u64)be32_to_cpu(pages[i].block) << 32 |
				 be32_to_cpu(pages[i].chunk) :
				 (u64)be32_to_cpu(cmds[i].block) << 32 |
				 be32_to_cpu(cmds[i].chunk);
	sort(ids, n, sizeof(*ids), cmp_u64, NULL);
	for (i = 1; i < n && ok; i++) {
		if (ids[i] != ids[i - 1])
			continue;
		rdmamig_session_fail(sess, -EPROTO, true,
				     "block %u chunk %u named twice in one register request",
				     (u32)(ids[i] >> 32), (u32)ids[i]);
		ok = false;
	}
	kvfree(ids);
	return ok;
}

/* REGISTER_REQUEST (@pages NULL) or REGISTER_PAGES_REQUEST. */
static void dst_register(struct rdmamig_session *sess,
			 const struct rdmamig_cmd_chunk *cmds,
			 const struct rdmamig_cmd_pages *pages, u32 n)
{
	DECLARE_BITMAP(map, RDMAMIG_CHUNK_PAGES);
	struct rdmamig_cmd_key *keys;
	u32 i, w;
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
	if (!dst_register_distinct(sess, cmds, pages, n))
		return;
	keys = kvcalloc(n, sizeof(*keys), GFP_KERNEL);
	if (!keys) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		struct rdmamig_cmd_chunk id;
		u64 words[RDMAMIG_PAGE_MAP_WORDS];

		if (pages) {
			id.block = pages[i].block;
			id.chunk = pages[i].chunk;
			for (w = 0; w < RDMAMIG_PAGE_MAP_WORDS; w++)
				words[w] = be64_to_cpu(pages[i].map[w]);
			bitmap_from_arr64(map, words, RDMAMIG_CHUNK_PAGES);
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

static void dst_unregister(struct rdmamig_session *sess,
			   const struct rdmamig_cmd_chunk *cmds, u32 n)
{
	u32 i, chunk;

	for (i = 0; i < n; i++) {
		struct rdmamig_block_ram *b = peer_chunk(sess, &cmds[i], &chunk);

		if (!b)
			return;
		/* With pin-all the chunk stays registered to the end. */
		if (!(sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL)) {
			mutex_lock(&sess->reg_mutex);
			rdmamig_dst_unregister(sess, b, chunk);
			mutex_unlock(&sess->reg_mutex);
		}
	}
	rdmamig_ctrl_send(sess, RDMAMIG_MSG_UNREGISTER_FINISHED, n, cmds,
			  n * sizeof(*cmds));
}

static void dst_compress(struct rdmamig_session *sess,
			 const struct rdmamig_cmd_compress *z, u32 n)
{
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
			rdmamig_dst_unregister(sess, sess->blocks[i], c);
	mutex_unlock(&sess->reg_mutex);
}

static void dst_round_end(struct rdmamig_session *sess,
			  const struct rdmamig_cmd_round *cmd)
{
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

static void dst_complete(struct rdmamig_session *sess,
			 const struct rdmamig_cmd_round *cmd)
{
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

static void src_ack(struct rdmamig_session *sess, const struct rdmamig_cmd_round *cmd)
{
	u64 seq = be64_to_cpu(cmd->seq);

	if (seq != READ_ONCE(sess->acks_got) + 1 || seq > READ_ONCE(sess->ack_seq)) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "ACK for sequence %llu out of order", seq);
		return;
	}
	WRITE_ONCE(sess->acks_got, seq);
	wake_up_all(&sess->wait);
}

static void src_unregistered(struct rdmamig_session *sess, u32 n)
{
	if (n > sess->unreg_pending) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "unregister confirmation nobody asked for");
		return;
	}
	sess->unreg_pending -= n;
}

/**
 * rdmamig_xfer_handle() - act on one validated control message
 * @sess: the session
 * @type: message type; the header was checked by the control channel
 * @repeat: number of commands, consistent with @len
 * @payload: the commands
 * @len: bytes of @payload
 *
 * Runs in the session's ordered work, so messages act in the order sent.
 * A message the role or state does not allow fails the session.
 */
void rdmamig_xfer_handle(struct rdmamig_session *sess, u16 type, u32 repeat,
			 const void *payload, u32 len)
{
	bool src = is_source(sess);
	bool ready = rdmamig_peer_ready(sess);

	if (src) {
		switch (type) {
		case RDMAMIG_MSG_RAM_BLOCKS_RESULT:
			if (ready)
				break;
			if (!src_blocks_result(sess, payload))
				mark_ready(sess);
			return;
		case RDMAMIG_MSG_REGISTER_RESULT:
			if (!ready)
				break;
			src_register_result(sess, payload, repeat);
			return;
		case RDMAMIG_MSG_UNREGISTER_FINISHED:
			if (!ready)
				break;
			src_unregistered(sess, repeat);
			return;
		case RDMAMIG_MSG_ACK:
			if (!ready)
				break;
			src_ack(sess, payload);
			return;
		case RDMAMIG_MSG_CHANNELS_RESULT:
			if (ready)
				break;
			rdmamig_chan_handle(sess, type, repeat, payload);
			return;
		}
	} else {
		if (READ_ONCE(sess->auth_pending)) {
			rdmamig_auth_dst_handle(sess, type, payload);
			return;
		}
		if (type == RDMAMIG_MSG_RAM_BLOCKS_REQUEST) {
			dst_blocks(sess, payload, repeat);
			return;
		}
		if (type == RDMAMIG_MSG_CHANNELS_REQUEST && !ready) {
			rdmamig_chan_handle(sess, type, repeat, payload);
			return;
		}
		if (ready && READ_ONCE(sess->state) != RDMAMIG_STATE_COMPLETED) {
			switch (type) {
			case RDMAMIG_MSG_REGISTER_REQUEST:
				dst_register(sess, payload, NULL, repeat);
				return;
			case RDMAMIG_MSG_REGISTER_PAGES_REQUEST:
				dst_register(sess, NULL, payload, repeat);
				return;
			case RDMAMIG_MSG_UNREGISTER_REQUEST:
				dst_unregister(sess, payload, repeat);
				return;
			case RDMAMIG_MSG_COMPRESS:
				dst_compress(sess, payload, repeat);
				return;
			case RDMAMIG_MSG_DEVICE_STATE:
				rdmamig_stream_queue(sess, payload, len);
				return;
			case RDMAMIG_MSG_BARRIER:
				send_ack(sess, payload);
				return;
			case RDMAMIG_MSG_REGISTER_FINISHED:
				dst_round_end(sess, payload);
				return;
			case RDMAMIG_MSG_COMPLETE:
				dst_complete(sess, payload);
				return;
			}
		}
	}
	rdmamig_session_fail(sess, -EPROTO, true,
			     "unexpected message type %u %s", type,
			     ready ? "for this side" : "before the RAM blocks");
}
