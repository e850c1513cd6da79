/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pre-copy source rounds (precopy_src.c), shared with pull_src.c: a round
 * is scanned the same way in both (dirty pages pinned chunk by chunk,
 * zero pages sent as COMPRESS, the rest gathered in windows of chunks);
 * what differs is how a window's pages reach the destination, which is a
 * struct rdmamig_src_mover: written by us (push, precopy_src.c), or read
 * by the destination from pages we registered (pull, pull_src.c).
 */
#ifndef _RDMAMIG_PRECOPY_SRC_H
#define _RDMAMIG_PRECOPY_SRC_H

#include "session.h"
#include "xfer.h"

#define XFER_WINDOW_CHUNKS	16	/* chunks pinned and moved at once */

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
	struct rdmamig_xfer_batch io;	/* their writes */
	u64 reads_upto;		/* pull: its READ_REQUEST sent, then reads_sent */
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

/*
 * How a window moves.  Called by the VMM's thread, @lock held, in
 * rdmamig_precopy_src_round(), which keeps at most two windows pinned:
 * the one being sent and, if @overlap, the one before it.
 */
struct rdmamig_src_mover {
	/* Send @w's pages (@busy: the window still in flight, or NULL). */
	int (*send)(struct rdmamig_session *sess, struct xfer_window *w,
		    struct xfer_window *busy, struct xfer_round *x);
	/*
	 * Wait until @w's pages are placed and unpin them (also a window
	 * that was scanned, not sent, after a failure); empties @w.
	 * Return: 0 or the session's error.
	 */
	int (*retire)(struct rdmamig_session *sess, struct xfer_window *w);
	/* Chunks per window (0: none fits the memlock limit); @overlap. */
	u32 (*window_chunks)(struct rdmamig_session *sess, bool *overlap);
};

int rdmamig_precopy_src_round(struct rdmamig_session *sess,
			      struct rdmamig_round *r, const unsigned long *bitmap,
			      const struct rdmamig_src_mover *mv);
int rdmamig_precopy_src_start(struct rdmamig_session *sess);
int rdmamig_precopy_src_end_round(struct rdmamig_session *sess);
int rdmamig_precopy_src_complete(struct rdmamig_session *sess);
int rdmamig_precopy_src_send_round(struct rdmamig_session *sess,
				   struct rdmamig_round *r, const unsigned long *bitmap);
void rdmamig_precopy_src_register_result(struct rdmamig_session *sess,
					 const void *payload, u32 n, u32 len);
void rdmamig_precopy_src_unregistered(struct rdmamig_session *sess,
				      const void *payload, u32 n, u32 len);
void rdmamig_precopy_src_ack(struct rdmamig_session *sess, const void *payload,
			     u32 repeat, u32 len);
void rdmamig_precopy_src_blocks_agreed(struct rdmamig_session *sess,
				       const void *payload, u32 repeat, u32 len);
void rdmamig_precopy_src_release(struct rdmamig_session *sess,
				 struct xfer_chunk *xc);
void rdmamig_precopy_src_map(struct xfer_chunk *xc, struct rdmamig_cmd_pages *cmd);
u32 rdmamig_precopy_src_pack(struct xfer_chunk *xc, struct page **packed);
u32 rdmamig_precopy_src_memlock_chunks(struct rdmamig_session *sess);

#endif /* _RDMAMIG_PRECOPY_SRC_H */
