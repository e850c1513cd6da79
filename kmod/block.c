// SPDX-License-Identifier: GPL-2.0
/*
 * RAM blocks: validation, long-term pinning with memlock accounting, and
 * the destination's per-chunk registration (FRWR).
 *
 * Pins are accounted as the RDMA core accounts user memory (ib_umem_get):
 * to mm->pinned_vm, against RLIMIT_MEMLOCK unless the owner has
 * CAP_IPC_LOCK.  Owner credentials are captured by the ioctl that starts
 * the session, because pinning itself runs in a work item.
 */
#include "rdmamig.h"

#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/highmem.h>
#include <linux/kthread.h>

#include "compat.h"
#include "proto.h"
#include "session.h"
#include "block.h"
#include "cm.h"
#include "ctrl.h"

/* No single block larger than this (1 TiB); chunk indexes fit a u32. */
#define RDMAMIG_BLOCK_MAX	(1ULL << 40)

static bool name_valid(const char *name)
{
	size_t len = strnlen(name, RDMAMIG_BLOCK_NAME_MAX);
	size_t i;

	if (!len || len == RDMAMIG_BLOCK_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isgraph(name[i]))
			return false;
	return true;
}

/* The whole range is mapped in the caller's address space. */
static bool range_mapped(struct mm_struct *mm, u64 start, u64 end)
{
	struct vm_area_struct *vma;
	bool ok = true;

	if (!mmget_not_zero(mm))
		return false;
	mmap_read_lock(mm);
	while (start < end) {
		vma = find_vma(mm, start);
		if (!vma || vma->vm_start > start ||
		    (vma->vm_flags & (VM_IO | VM_PFNMAP))) {
			ok = false;
			break;
		}
		start = vma->vm_end;
	}
	mmap_read_unlock(mm);
	mmput(mm);
	return ok;
}

/**
 * rdmamig_block_add() - add a RAM block from the caller's address space
 * @sess: the session, before it listens or connects
 * @ub: the block as the VMM gave it; @ub->index is filled in
 *
 * Return: 0, -EINVAL for a malformed or overlapping block, -EEXIST for a
 * duplicate name, -EFAULT when the range is not mapped, -ENOSPC when the
 * session has RDMAMIG_MAX_BLOCKS blocks, -EBUSY once connecting started.
 */
int rdmamig_block_add(struct rdmamig_session *sess, struct rdmamig_block *ub)
{
	struct rdmamig_block_ram *b;
	u64 end;
	u32 i;

	lockdep_assert_held(&sess->lock);

	if (READ_ONCE(sess->state) != RDMAMIG_STATE_NONE)
		return -EBUSY;
	if ((ub->flags & ~RDMAMIG_BLOCK_FLAGS_ALL) || ub->reserved ||
	    !name_valid(ub->name))
		return -EINVAL;
	if (!ub->length || !PAGE_ALIGNED(ub->addr) || !PAGE_ALIGNED(ub->length) ||
	    ub->length > RDMAMIG_BLOCK_MAX ||
	    check_add_overflow(ub->addr, ub->length, &end) || end > TASK_SIZE)
		return -EINVAL;
	if (sess->nblocks == RDMAMIG_MAX_BLOCKS)
		return -ENOSPC;
	for (i = 0; i < sess->nblocks; i++) {
		b = sess->blocks[i];
		if (!strcmp(b->name, ub->name))
			return -EEXIST;
		if (ub->addr < b->addr + b->length && b->addr < end)
			return -EINVAL;
	}
	if (!range_mapped(sess->mm, ub->addr, end))
		return -EFAULT;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	strscpy(b->name, ub->name, sizeof(b->name));
	b->addr = ub->addr;
	b->length = ub->length;
	b->flags = ub->flags;
	b->index = sess->nblocks;
	b->nchunks = DIV_ROUND_UP(ub->length, RDMAMIG_CHUNK_SIZE);
	/*
	 * GET_SESSION reads the blocks without sess->lock (any user, any
	 * time from open()): the block is published before it is counted,
	 * and counted with release so that a reader's acquire sees it.
	 */
	sess->blocks[b->index] = b;
	smp_store_release(&sess->nblocks, b->index + 1);
	ub->index = b->index;
	return 0;
}

/**
 * rdmamig_blocks_bytes() - total length of a session's blocks
 * @sess: the session; its lock need not be held
 * @nblocks: if not NULL, the number of blocks summed
 *
 * Blocks are only added (under sess->lock, published by
 * rdmamig_block_add()) until the session is destroyed, which unlinks it
 * from the session list before freeing them: a reader holding the list
 * mutex or sess->lock sees @nblocks valid blocks.
 *
 * Return: the sum of the lengths of the first @nblocks blocks.
 */
u64 rdmamig_blocks_bytes(struct rdmamig_session *sess, u32 *nblocks)
{
	u32 i, n = smp_load_acquire(&sess->nblocks);
	u64 sum = 0;

	for (i = 0; i < n; i++)
		sum += sess->blocks[i]->length;
	if (nblocks)
		*nblocks = n;
	return sum;
}

/**
 * rdmamig_memlock_check() - will pinning @bytes stay within the limit?
 * @sess: the session; its owner's limit was captured by the caller
 * @bytes: bytes this session will hold pinned at most
 *
 * Return: 0, or -ENOMEM with the reason set to the bytes and the limit.
 */
int rdmamig_memlock_check(struct rdmamig_session *sess, u64 bytes)
{
	u64 pages = bytes >> PAGE_SHIFT;
	u64 have = atomic64_read(&sess->mm->pinned_vm);
	char reason[RDMAMIG_REASON_MAX];
	unsigned long flags;

	if (sess->ipc_lock || pages + have <= sess->memlock_pages)
		return 0;
	snprintf(reason, sizeof(reason),
		 "memlock limit %llu bytes too low: %llu bytes needed (already pinned %llu)",
		 (u64)sess->memlock_pages << PAGE_SHIFT, bytes, have << PAGE_SHIFT);
	/* GET_SESSION reads the reason under the spinlock, at any time. */
	spin_lock_irqsave(&sess->slock, flags);
	strscpy(sess->reason, reason, sizeof(sess->reason));
	spin_unlock_irqrestore(&sess->slock, flags);
	return -ENOMEM;
}

/**
 * rdmamig_pin_account() - charge @npages about to be pinned long-term
 * @sess: the session; its owner's limit was captured at LISTEN or CONNECT
 * @npages: pages
 *
 * Both roles charge their long-term pins here before they pin, and give
 * them back with rdmamig_pin_unaccount() where they unpin.
 * Return: 0, or -ENOMEM when the owner's mm would pin more than its
 * RLIMIT_MEMLOCK (unless it has CAP_IPC_LOCK); nothing is charged then.
 */
int rdmamig_pin_account(struct rdmamig_session *sess, unsigned long npages)
{
	u64 now = atomic64_add_return(npages, &sess->mm->pinned_vm);

	if (!sess->ipc_lock && now > sess->memlock_pages) {
		atomic64_sub(npages, &sess->mm->pinned_vm);
		return -ENOMEM;
	}
	atomic64_add(npages, &sess->pinned_pages);
	return 0;
}

void rdmamig_pin_unaccount(struct rdmamig_session *sess, unsigned long npages)
{
	atomic64_sub(npages, &sess->mm->pinned_vm);
	atomic64_sub(npages, &sess->pinned_pages);
}

/*
 * How the owner's pages are pinned, by who pins them:
 *  - its own thread (the VMM in an ioctl): GUP-fast, which walks the page
 *    tables without the mmap lock and takes a huge page's subpages at
 *    once;
 *  - a kernel thread (the destination's works): the same, on the owner's
 *    mm borrowed with kthread_use_mm();
 *  - another process (rdmamigctl driving a migration by pid): the locked,
 *    page-by-page walk of pin_user_pages_remote().
 * Under TCG with transparent huge pages, 256 MiB took 2 ms to pin the
 * first way and 3.8 s the last (the source's scan, Linux 6.1).
 */
enum pin_way { PIN_OWN = RDMAMIG_PIN_OWN, PIN_BORROWED, PIN_REMOTE };

static int pin_begin(struct rdmamig_session *sess, enum pin_way *way)
{
	if (current->mm == sess->mm) {
		*way = PIN_OWN;
		return 0;
	}
	/* The owner may have exited (its mm is only grabbed). */
	if (!mmget_not_zero(sess->mm))
		return -ESRCH;
	if ((current->flags & PF_KTHREAD) && !current->mm) {
		*way = PIN_BORROWED;
		kthread_use_mm(sess->mm);
	} else {
		*way = PIN_REMOTE;
		mmap_read_lock(sess->mm);
	}
	return 0;
}

static void pin_end(struct rdmamig_session *sess, enum pin_way way)
{
	if (way == PIN_OWN)
		return;
	if (way == PIN_BORROWED)
		kthread_unuse_mm(sess->mm);
	else
		mmap_read_unlock(sess->mm);
	mmput(sess->mm);
}

/* Pin @npages from @addr, all or nothing, between pin_begin() and pin_end(). */
static int pin_pages(struct rdmamig_session *sess, enum pin_way way, u64 addr,
		     unsigned long npages, unsigned int gup_flags,
		     struct page **pages)
{
	unsigned long done = 0;
	long got = 0;

	while (done < npages) {
		u64 at = addr + (done << PAGE_SHIFT);
		unsigned long n = min_t(unsigned long, npages - done, INT_MAX);

		if (way == PIN_REMOTE)
			got = rdmamig_pin_remote(sess->mm, at, n, gup_flags,
						 pages + done);
		else
			got = pin_user_pages_fast(at, n, gup_flags, pages + done);
		if (got <= 0)
			break;
		done += got;
	}
	if (done == npages)
		return 0;
	unpin_user_pages(pages, done);
	return got < 0 ? got : -EFAULT;
}

/* Pin @npages of the owner's memory from @addr, all or nothing. */
int rdmamig_pin_range(struct rdmamig_session *sess, u64 addr,
		     unsigned long npages, unsigned int gup_flags,
		     struct page **pages)
{
	enum pin_way way;
	int ret;

	ret = pin_begin(sess, &way);
	if (ret)
		return ret;
	ret = pin_pages(sess, way, addr, npages, gup_flags, pages);
	pin_end(sess, way);
	return ret;
}

/**
 * rdmamig_owner_enter() - reach the owner's memory for a while
 * @sess: the session
 * @way: set to how (pass it to the calls below)
 *
 * For a caller that copies many short runs into the owner's memory (the
 * checkpointing backup's commit): the mm is borrowed (or its lock taken)
 * once, not once per run, which under TCG cost more than the copies.
 * Return: 0, or -ESRCH when the owner exited.
 */
int rdmamig_owner_enter(struct rdmamig_session *sess, int *way)
{
	enum pin_way w;
	int ret = pin_begin(sess, &w);

	*way = w;
	return ret;
}

void rdmamig_owner_leave(struct rdmamig_session *sess, int way)
{
	pin_end(sess, way);
}

#define COPY_BATCH	64

/*
 * Copy @npages between the owner's memory at @addr and kernel pages,
 * pinning the owner's a batch at a time: written through the kernel's
 * mapping and dirtied (@to_owner), or read.
 */
static int owner_xfer(struct rdmamig_session *sess, int way, u64 addr,
		      struct page **kpages, u32 npages, bool to_owner)
{
	struct page *pages[COPY_BATCH];
	u32 done = 0, i, n;
	int ret;

	while (done < npages) {
		n = min_t(u32, npages - done, COPY_BATCH);
		ret = pin_pages(sess, way, addr + ((u64)done << PAGE_SHIFT), n,
				to_owner ? FOLL_WRITE : 0, pages);
		if (ret)
			return ret;
		for (i = 0; i < n; i++) {
			if (to_owner)
				copy_highpage(pages[i], kpages[done + i]);
			else
				copy_highpage(kpages[done + i], pages[i]);
		}
		unpin_user_pages_dirty_lock(pages, n, to_owner);
		done += n;
	}
	return 0;
}

/**
 * rdmamig_owner_copy() - copy pages of ours into the owner's memory
 * @sess: the session, between rdmamig_owner_enter() and _leave()
 * @way: from rdmamig_owner_enter()
 * @addr: the owner's address of the first page, page-aligned
 * @src: @npages kernel pages
 * @npages: pages to copy
 *
 * The owner's pages are pinned writable a batch at a time, written
 * through the kernel's mapping, dirtied and released.
 * Return: 0 or a negative errno (-EFAULT: not mapped writable).
 */
int rdmamig_owner_copy(struct rdmamig_session *sess, int way, u64 addr,
		       struct page **src, u32 npages)
{
	return owner_xfer(sess, way, addr, src, npages, true);
}

/**
 * rdmamig_owner_read() - copy the owner's memory into pages of ours
 * @sess: the session, between rdmamig_owner_enter() and _leave()
 * @way: from rdmamig_owner_enter()
 * @addr: the owner's address of the first page, page-aligned
 * @dst: @npages kernel pages
 * @npages: pages to copy
 *
 * For a caller in another process (rdmamigctl taking a checkpoint of a
 * process by pid), which cannot copy_from_user() the owner's pages.
 * Return: 0 or a negative errno (-EFAULT: not mapped).
 */
int rdmamig_owner_read(struct rdmamig_session *sess, int way, u64 addr,
		       struct page **dst, u32 npages)
{
	return owner_xfer(sess, way, addr, dst, npages, false);
}

static void reg_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rdmamig_session *sess =
		container_of(wc->wr_cqe, struct rdmamig_session, conn.reg_cqe);

	rdmamig_sq_put(sess, 0, 1);
	if (wc->status != IB_WC_SUCCESS && wc->status != IB_WC_WR_FLUSH_ERR)
		rdmamig_session_fail(sess, -EIO, true, "memory registration failed: %s",
				     ib_wc_status_msg(wc->status));
}

/* Pages of @chunk in @b: RDMAMIG_CHUNK_PAGES but for a short last chunk. */
u32 rdmamig_chunk_pages(struct rdmamig_block_ram *b, u32 chunk)
{
	u64 off = (u64)chunk << RDMAMIG_CHUNK_SHIFT;

	return min_t(u64, RDMAMIG_CHUNK_SIZE, b->length - off) >> PAGE_SHIFT;
}

/**
 * rdmamig_pin_bits() - pin the pages a bitmap names, back to back
 * @sess: the session whose owner's memory it is
 * @base: the address of the page of bit 0
 * @map: the bitmap
 * @start: the first bit to look at
 * @end: one past the last
 * @gup_flags: FOLL_ flags for every pin
 * @pages: one entry per set bit in [@start, @end), in bit order
 *
 * The runs of set bits are pinned in one pin_begin() (one hold of the
 * mmap lock, if it is taken), all or nothing.
 * Return: the pages pinned, or a negative errno (-ESRCH: the owner
 * exited).
 */
long rdmamig_pin_bits(struct rdmamig_session *sess, u64 base,
		      const unsigned long *map, unsigned long start,
		      unsigned long end, unsigned int gup_flags,
		      struct page **pages)
{
	enum pin_way way;
	unsigned long b, e;
	long done = 0;
	int ret;

	ret = pin_begin(sess, &way);
	if (ret)
		return ret;
	b = start;
	for_each_set_bitrange_from(b, e, map, end) {
		ret = pin_pages(sess, way, base + ((u64)b << PAGE_SHIFT), e - b,
				gup_flags, pages + done);
		if (ret) {
			unpin_user_pages(pages, done);
			break;
		}
		done += e - b;
	}
	pin_end(sess, way);
	return ret ?: done;
}

/*
 * Pin the pages of the chunk at @base that @map names (all @nbits pages
 * without a map) into @pages, in order, writable and long-term.
 */
static int pin_map(struct rdmamig_session *sess, u64 base, u32 nbits,
		   const unsigned long *map, struct page **pages)
{
	const unsigned int flags = FOLL_WRITE | FOLL_LONGTERM;
	long ret;

	if (!map)
		return rdmamig_pin_range(sess, base, nbits, flags, pages);
	ret = rdmamig_pin_bits(sess, base, map, 0, nbits, flags, pages);
	return ret < 0 ? ret : 0;
}

/*
 * Register @c->pages (@npages of a chunk, pinned) for the peer: DMA-map them,
 * map an FRWR MR over them and post IB_WR_REG_MR.  Return: 0, or a
 * negative errno with nothing mapped or allocated but @c->pages.
 */
static int reg_pages(struct rdmamig_session *sess, struct rdmamig_dst_chunk *c,
		     unsigned int npages, int access)
{
	struct ib_device *dev = sess->conn.pd->device;
	struct ib_reg_wr reg = {};
	unsigned long flags;
	int ret, n;

	ret = sg_alloc_table_from_pages(&c->sgt, c->pages, npages, 0,
					(unsigned long)npages << PAGE_SHIFT,
					GFP_KERNEL);
	if (ret)
		return ret;
	n = ib_dma_map_sg(dev, c->sgt.sgl, c->sgt.orig_nents, DMA_BIDIRECTIONAL);
	if (!n) {
		ret = -EIO;
		goto err_free_sgt;
	}
	c->sgt.nents = n;

	/*
	 * One page list entry to spare: rxe in Linux 6.1 (rxe_mr_copy())
	 * steps to the next map after copying the last page of a full one,
	 * reading one map pointer past its array when a WRITE ends on the
	 * last page of a 1 MiB chunk (256 entries: one map).  KASAN in the
	 * debug kernel caught it; the spare entry gives it a second map.
	 */
	c->mr = ib_alloc_mr(sess->conn.pd, IB_MR_TYPE_MEM_REG, npages + 1);
	if (IS_ERR(c->mr)) {
		ret = PTR_ERR(c->mr);
		c->mr = NULL;
		goto err_unmap;
	}
	ret = ib_map_mr_sg(c->mr, c->sgt.sgl, n, NULL, PAGE_SIZE);
	if (ret != n) {
		ret = ret < 0 ? ret : -EINVAL;
		goto err_mr;
	}
	ib_update_fast_reg_key(c->mr, ib_inc_rkey(c->mr->rkey));

	/* Signaled, so that pin-all's burst of registrations frees its slots. */
	ret = rdmamig_sq_take(sess, 0, 1);
	if (ret)
		goto err_mr;
	sess->conn.reg_cqe.done = reg_done;
	reg.wr.opcode = IB_WR_REG_MR;
	reg.wr.wr_cqe = &sess->conn.reg_cqe;
	reg.wr.send_flags = IB_SEND_SIGNALED;
	reg.mr = c->mr;
	reg.key = c->mr->rkey;
	reg.access = IB_ACCESS_LOCAL_WRITE | access;
	ret = ib_post_send(sess->conn.chans[0].qp, &reg.wr, NULL);
	if (ret) {
		rdmamig_sq_put(sess, 0, 1);
		goto err_mr;
	}

	c->npages = npages;
	spin_lock_irqsave(&sess->slock, flags);
	sess->stats.chunks_registered++;
	sess->stats.registered_bytes += (u64)npages << PAGE_SHIFT;
	spin_unlock_irqrestore(&sess->slock, flags);
	return 0;

err_mr:
	ib_dereg_mr(c->mr);
	c->mr = NULL;
err_unmap:
	ib_dma_unmap_sg(dev, c->sgt.sgl, c->sgt.orig_nents, DMA_BIDIRECTIONAL);
err_free_sgt:
	sg_free_table(&c->sgt);
	return ret;
}

/**
 * rdmamig_chunk_register() - pin and register one chunk for the peer
 * @sess: destination session with a PD and QP
 * @b: the block
 * @chunk: index of the chunk in @b
 * @map: the pages of the chunk to expose (REGISTER_PAGES_REQUEST, checked
 *	by the caller: not empty, none beyond the chunk), or NULL for all
 * @access: what the peer may do through the key: IB_ACCESS_REMOTE_WRITE
 *	(pre-copy's destination); a source pulled from registers pages it
 *	pinned itself, with rdmamig_chunk_register_pinned()
 *
 * With a map, the pages it names are laid out back to back in the
 * registration, in chunk order; no other page of the chunk is pinned or
 * reachable through the key.  A chunk registered already is registered
 * again only for a map (the source asks anew for each run of pages it
 * sends; its writes to the old registration are complete).
 *
 * Posts IB_WR_REG_MR; a SEND posted after it on the same QP (the
 * REGISTER_RESULT) executes after the registration.
 *
 * Return: 0, or a negative errno; nothing stays pinned on failure.
 */
int rdmamig_chunk_register(struct rdmamig_session *sess,
			   struct rdmamig_block_ram *b, u32 chunk,
			   const unsigned long *map, int access)
{
	struct rdmamig_dst_chunk *c = &b->dst[chunk];
	u64 off = (u64)chunk << RDMAMIG_CHUNK_SHIFT;
	u32 nbits = rdmamig_chunk_pages(b, chunk);
	unsigned int npages;
	ktime_t t0;
	int ret;

	if (c->mr && !map)
		return 0;
	t0 = ktime_get();
	rdmamig_chunk_unregister(sess, b, chunk);
	npages = map ? bitmap_weight(map, nbits) : nbits;

	c->pages = kvcalloc(npages, sizeof(*c->pages), GFP_KERNEL);
	if (!c->pages)
		return -ENOMEM;
	ret = rdmamig_pin_account(sess, npages);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "memlock limit reached registering %s chunk %u",
				     b->name, chunk);
		goto err_free_pages;
	}
	ret = pin_map(sess, b->addr + off, nbits, map, c->pages);
	if (ret)
		goto err_unaccount;
	ret = reg_pages(sess, c, npages, access);
	if (ret)
		goto err_unpin;
	c->own_pins = true;
	rdmamig_time_add(&sess->register_ns, t0);
	return 0;

err_unpin:
	unpin_user_pages(c->pages, npages);
err_unaccount:
	rdmamig_pin_unaccount(sess, npages);
err_free_pages:
	kvfree(c->pages);
	c->pages = NULL;
	return ret;
}

/**
 * rdmamig_chunk_register_pinned() - register pages the caller pinned
 * @sess: a session with a PD and QP
 * @b: the block
 * @chunk: index of the chunk in @b
 * @pages: @npages pages of the chunk, pinned by the caller until
 *	rdmamig_chunk_unregister() returned; laid out back to back in the
 *	registration, in the order given
 * @npages: 1 to RDMAMIG_CHUNK_PAGES
 * @access: IB_ACCESS_REMOTE_READ: a pull source, whose scan pinned the
 *	pages already (read-only, charged to its memlock limit once)
 *
 * The registration neither pins nor unpins: its unregistration leaves the
 * pages pinned, clean, to their owner.
 * Return: 0 or a negative errno.
 */
int rdmamig_chunk_register_pinned(struct rdmamig_session *sess,
				  struct rdmamig_block_ram *b, u32 chunk,
				  struct page **pages, unsigned int npages,
				  int access)
{
	struct rdmamig_dst_chunk *c = &b->dst[chunk];
	ktime_t t0 = ktime_get();
	int ret;

	rdmamig_chunk_unregister(sess, b, chunk);
	c->pages = pages;
	ret = reg_pages(sess, c, npages, access);
	if (ret) {
		c->pages = NULL;
		return ret;
	}
	c->own_pins = false;
	c->pages = NULL;	/* the caller's; the MR has what it needs */
	rdmamig_time_add(&sess->register_ns, t0);
	return 0;
}

/*
 * Deregistering invalidates the rkey: a late RDMA WRITE to the chunk fails
 * on the peer's QP instead of landing.  Called after the QP is drained at
 * teardown, or on UNREGISTER_REQUEST when the source has no write in
 * flight to the chunk.
 */
void rdmamig_chunk_unregister(struct rdmamig_session *sess,
			    struct rdmamig_block_ram *b, u32 chunk)
{
	struct rdmamig_dst_chunk *c = &b->dst[chunk];
	unsigned long flags;

	if (!c->mr)
		return;
	ib_dereg_mr(c->mr);
	c->mr = NULL;
	ib_dma_unmap_sg(sess->conn.pd->device, c->sgt.sgl, c->sgt.orig_nents,
			DMA_BIDIRECTIONAL);
	sg_free_table(&c->sgt);
	if (c->own_pins) {
		unpin_user_pages_dirty_lock(c->pages, c->npages, true);
		rdmamig_pin_unaccount(sess, c->npages);
		kvfree(c->pages);
	}
	c->pages = NULL;
	spin_lock_irqsave(&sess->slock, flags);
	sess->stats.chunks_unregistered++;
	sess->stats.registered_bytes -= (u64)c->npages << PAGE_SHIFT;
	spin_unlock_irqrestore(&sess->slock, flags);
	c->npages = 0;
}

#define ZERO_BATCH	64

/* Pin @n pages from @addr writable, clear them, let go. */
static int clear_range(struct rdmamig_session *sess, u64 addr, u32 n,
		       struct page **pages)
{
	int ret, i;

	ret = rdmamig_pin_range(sess, addr, n, FOLL_WRITE, pages);
	if (ret)
		return ret;
	for (i = 0; i < n; i++)
		clear_highpage(pages[i]);
	unpin_user_pages_dirty_lock(pages, n, true);
	return 0;
}

/**
 * rdmamig_dst_zero() - fill pages of a block with zeroes (COMPRESS)
 * @sess: destination session
 * @b: the block; @offset and @npages were checked against it
 * @offset: page-aligned byte offset
 * @npages: pages to clear
 *
 * Pages the process never wrote map the shared zero page: they read as
 * zero already, and pinning them for reading allocates nothing.  Only the
 * runs of pages with a page of their own are pinned writable and cleared,
 * which keeps a mostly-zero guest from being faulted in whole.
 *
 * Return: 0 or a negative errno.
 */
int rdmamig_dst_zero(struct rdmamig_session *sess, struct rdmamig_block_ram *b,
		     u64 offset, u32 npages)
{
	struct page *pages[ZERO_BATCH];
	bool own[ZERO_BATCH];
	u32 done = 0;
	int ret, i, j;

	while (done < npages) {
		u32 n = min_t(u32, npages - done, ZERO_BATCH);
		u64 addr = b->addr + offset + ((u64)done << PAGE_SHIFT);

		/* Teardown waits for this work: let it in between batches. */
		if (rdmamig_session_closing(sess))
			return -ESHUTDOWN;
		if (rdmamig_session_dead(sess))
			return rdmamig_session_error(sess);
		ret = rdmamig_pin_range(sess, addr, n, 0, pages);
		if (ret)
			return ret;
		for (i = 0; i < n; i++)
			own[i] = !is_zero_pfn(page_to_pfn(pages[i]));
		unpin_user_pages(pages, n);

		for (i = 0; i < n; i = j) {
			for (j = i; j < n && own[j] == own[i]; j++)
				;
			if (!own[i])
				continue;
			/* @pages is free again: only @own is read from here. */
			ret = clear_range(sess, addr + ((u64)i << PAGE_SHIFT),
					  j - i, pages);
			if (ret)
				return ret;
		}
		done += n;
		cond_resched();
	}
	return 0;
}

/*
 * Teardown: every chunk's registration, before the PD goes (conn.c);
 * the checkpointing backup's staging (mc_dst.c) with them.
 */
void rdmamig_blocks_unregister(struct rdmamig_session *sess)
{
	struct rdmamig_block_ram *staging = sess->mc.staging;
	u32 i, c;

	if (staging)
		for (c = 0; c < staging->nchunks; c++)
			rdmamig_chunk_unregister(sess, staging, c);

	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		if (b->dst)
			for (c = 0; c < b->nchunks; c++)
				rdmamig_chunk_unregister(sess, b, c);
	}
}

void rdmamig_blocks_free(struct rdmamig_session *sess)
{
	u32 i, c;

	for (i = 0; i < sess->nblocks; i++) {
		struct rdmamig_block_ram *b = sess->blocks[i];

		/* Registrations went before the PD: rdmamig_conn_destroy(). */
		if (b->dst)
			for (c = 0; c < b->nchunks; c++)
				WARN_ON_ONCE(b->dst[c].mr);
		kvfree(b->dst);
		kvfree(b->src);
		kvfree(b->sent);
		kfree(b);
		sess->blocks[i] = NULL;
	}
	sess->nblocks = 0;
}
