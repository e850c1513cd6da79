/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The transfer engine (xfer.c): runs of local pages moved to or from a
 * chunk the peer registered, by RDMA WRITE or READ, striped over the
 * channels, paced, held to max-bandwidth, with its own completions.
 * The modes (precopy_src.c, precopy_dst.c, ...) decide what moves; the
 * engine only moves it.
 */
#ifndef _RDMAMIG_XFER_H
#define _RDMAMIG_XFER_H

#include <linux/math64.h>

#include "session.h"

#define RDMAMIG_XFER_WAIT	(120 * HZ)	/* for the peer's answers */

enum rdmamig_xfer_dir {
	RDMAMIG_XFER_WRITE,	/* local pages -> the peer's chunk */
	RDMAMIG_XFER_READ,	/* the peer's chunk -> local pages */
};

struct rdmamig_xfer_io;

/*
 * Transfers posted together and waited for together: the caller keeps
 * the pages pinned until rdmamig_xfer_finish() returned.
 */
struct rdmamig_xfer_batch {
	enum rdmamig_xfer_dir dir;
	struct rdmamig_xfer_io *ios;
	u32 nio, maxio;
	atomic_t inflight;	/* posted, not completed */
	bool failed;		/* a transfer completed in error or flushed */
	/*
	 * Post-copy's fetches (rdmamig_xfer_batch_urgent()): not held to
	 * max-bandwidth, not counted in the round, and posted from several
	 * threads at once, each batch on the channels it names.
	 */
	bool urgent;
	u32 ch_first, ch_count;
};

int rdmamig_xfer_batch_start(struct rdmamig_session *sess,
			     struct rdmamig_xfer_batch *batch,
			     enum rdmamig_xfer_dir dir, u32 maxio);
u32 rdmamig_xfer_ios(struct rdmamig_session *sess, u32 npages);
int rdmamig_xfer_post(struct rdmamig_session *sess,
		      struct rdmamig_xfer_batch *batch, struct page **pages,
		      u32 n, u64 raddr, u32 rkey);
void rdmamig_xfer_batch_urgent(struct rdmamig_session *sess,
			       struct rdmamig_xfer_batch *batch, bool fault);
void rdmamig_xfer_finish(struct rdmamig_session *sess,
			 struct rdmamig_xfer_batch *batch);
void rdmamig_xfer_finish_reads(struct rdmamig_session *sess,
			       struct rdmamig_xfer_batch *batch);
int rdmamig_xfer_throttle(struct rdmamig_session *sess);
int rdmamig_xfer_interrupted(struct rdmamig_session *sess, const char *during);
bool rdmamig_xfer_sparse(void);

/*
 * @a * @b / @c (@c not 0), or U64_MAX where that does not fit: on x86-64
 * mul_u64_u64_div_u64() is one divq, which traps on a quotient too wide.
 * (@a / @c + 1) * @b bounds the quotient from above.
 */
static inline u64 rdmamig_mul_div_sat(u64 a, u64 b, u64 c)
{
	if (div64_u64(a, c) >= div64_u64(U64_MAX, b))
		return U64_MAX;
	return mul_u64_u64_div_u64(a, b, c);
}

#endif /* _RDMAMIG_XFER_H */
