// SPDX-License-Identifier: GPL-2.0
/*
 * The "guest RAM": anonymous mappings registered as rdmamig blocks, the
 * pseudo-random content the source puts in them, and the page hashes
 * both sides compare at the end.
 *
 * The kernel only needs each block to be a page-aligned range of the
 * process's address space; anonymous private mappings are what a real
 * VMM would use for guest RAM too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

size_t page_size = 4096;

/* splitmix64: small, fast, and good enough to make pages unique. */
uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

void rng_fill(struct rng *r, void *buf, size_t len)
{
	uint64_t *w = buf, last;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = rng_next(r);
	if (len % 8) {
		last = rng_next(r);
		memcpy((uint8_t *)buf + len - len % 8, &last, len % 8);
	}
}

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	return k ^ (k >> 33);
}

/*
 * A 64-bit hash in the style of MurmurHash3's body (one lane): every
 * word is mixed in with multiplies and rotations, so any changed bit,
 * anywhere, changes the result.  Used for page contents and record
 * checksums.
 */
uint64_t hash64(const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf;
	uint64_t h = seed ^ (len * 0x87c37b91114253d5ULL), k;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&k, p + i, 8);
		k *= 0x87c37b91114253d5ULL;
		k = rotl64(k, 31);
		k *= 0x4cf5ad432745937fULL;
		h ^= k;
		h = rotl64(h, 27) * 5 + 0x52dce729;
	}
	k = 0;
	memcpy(&k, p + i, len - i);
	h ^= k * 0x87c37b91114253d5ULL;
	return fmix64(h);
}

/*
 * The hash of one page, salted with its place: a page landing at the
 * wrong offset or in the wrong block is caught, not only a damaged one.
 * @data is what the page holds (page_size bytes).
 */
uint64_t page_hash_of(const struct ram_block *b, uint64_t page, const void *data)
{
	uint64_t salt = hash64(b->name, strlen(b->name), page);

	return hash64(data, page_size, salt);
}

uint64_t page_hash(const struct ram_block *b, uint64_t page)
{
	return page_hash_of(b, page, b->mem + page * page_size);
}

/*
 * An anonymous mapping of @len bytes that starts on a RAM_ALIGN boundary:
 * map RAM_ALIGN more and unmap what sticks out either side.  mmap() only
 * promises page alignment; without this, a block's 2 MiB regions would
 * straddle huge pages and none could be backed by one.
 */
static void *map_aligned(size_t len)
{
	uint8_t *p, *start;
	size_t head;

	p = mmap(NULL, len + RAM_ALIGN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return p;
	start = (uint8_t *)(((uintptr_t)p + RAM_ALIGN - 1) &
			    ~(uintptr_t)(RAM_ALIGN - 1));
	head = start - p;
	if (head)
		munmap(p, head);
	munmap(start + len, RAM_ALIGN - head);
	return start;
}

/*
 * --memfd: a memfd of @len bytes, every page allocated now (fallocate), so
 * that in post-copy each first touch of the guest's view is a MINOR fault
 * on a page in the page cache, never a MISSING one; mapped shared at @mem
 * and at @view, both RAM_ALIGN-aligned.
 */
static int map_memfd(struct ram_block *b, size_t len)
{
	int fd = memfd_create(b->name, MFD_CLOEXEC);
	uint8_t *at[2];
	int i;

	if (fd < 0) {
		perror("rdmamig-vmm: memfd_create");
		return -1;
	}
	if (ftruncate(fd, len) || fallocate(fd, 0, 0, len)) {
		perror("rdmamig-vmm: --memfd: allocate the memfd");
		close(fd);
		return -1;
	}
	for (i = 0; i < 2; i++) {
		/* An aligned anonymous reservation, replaced by the memfd. */
		at[i] = map_aligned(len);
		if (at[i] != MAP_FAILED &&
		    mmap(at[i], len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, 0) == MAP_FAILED) {
			munmap(at[i], len);
			at[i] = MAP_FAILED;
		}
		if (at[i] == MAP_FAILED) {
			perror("rdmamig-vmm: --memfd: mmap");
			if (i)
				munmap(at[0], len);
			close(fd);
			return -1;
		}
	}
	close(fd);
	b->mem = at[0];
	b->view = at[1];
	return 0;
}

int ram_alloc(struct guest_ram *ram, unsigned int nblocks, uint64_t size_mib,
	      bool track, bool memfd)
{
	uint64_t total = (size_mib << 20) / page_size, per;
	unsigned int i;

	memset(ram, 0, sizeof(*ram));
	if (nblocks == 0 || total / nblocks == 0) {
		fprintf(stderr, "rdmamig-vmm: %llu MiB is too small for %u blocks\n",
			(unsigned long long)size_mib, nblocks);
		return -1;
	}
	ram->blocks = calloc(nblocks, sizeof(*ram->blocks));
	if (!ram->blocks)
		return -1;
	ram->nblocks = nblocks;
	ram->total_pages = total;
	per = total / nblocks;

	for (i = 0; i < nblocks; i++) {
		struct ram_block *b = &ram->blocks[i];

		b->npages = i == nblocks - 1 ? total - per * (nblocks - 1) : per;
		snprintf(b->name, sizeof(b->name), "ram%u", i);
		/* Page-aligned by construction, as ADD_BLOCK requires. */
		if (memfd) {
			if (map_memfd(b, b->npages * page_size))
				return -1;
		} else {
			b->mem = map_aligned(b->npages * page_size);
			if (b->mem == MAP_FAILED) {
				b->mem = NULL;
				perror("rdmamig-vmm: mmap");
				return -1;
			}
			b->view = b->mem;
		}
		if (!track)
			continue;
		b->dirty = calloc((b->npages + 63) / 64, sizeof(uint64_t));
		b->hash = calloc(b->npages, sizeof(uint64_t));
		if (!b->dirty || !b->hash)
			return -1;
	}
	return 0;
}

void ram_free(struct guest_ram *ram)
{
	unsigned int i;

	for (i = 0; ram->blocks && i < ram->nblocks; i++) {
		struct ram_block *b = &ram->blocks[i];

		if (b->view && b->view != b->mem)
			munmap(b->view, b->npages * page_size);
		if (b->mem)
			munmap(b->mem, b->npages * page_size);
		free(b->dirty);
		free(b->hash);
	}
	free(ram->blocks);
	memset(ram, 0, sizeof(*ram));
}

/* New content for a page, zero or random; it is dirty now. */
void page_write(struct ram_block *b, uint64_t page, struct rng *r, bool zero)
{
	uint8_t *p = b->mem + page * page_size;

	if (zero)
		memset(p, 0, page_size);
	else
		rng_fill(r, p, page_size);
	b->hash[page] = page_hash(b, page);
	bit_set(b->dirty, page);
}

/*
 * ZERO_HOLES: random pages with runs of zero pages ("holes", as a guest's
 * freed memory) covering about zero_pct % of each block.  Holes are 1..15
 * pages long (8 on average); at each page outside a hole, one starts with
 * probability q, so the zero share is 8q / (8q + 1 - q) = f for
 * q = f / (8 - 7f), f = zero_pct / 100.  The zeros are written, so every
 * page has memory of its own, and zero pages cut the data into short
 * runs: the worst case, where the source pins and reads every zero page
 * and writes the data in small pieces.
 */
static void fill_holes(struct guest_ram *ram, struct rng *r,
		       unsigned int zero_pct)
{
	const uint64_t one = 1 << 20;
	uint64_t q, hole, pg;
	unsigned int i;
	bool zero;

	q = (uint64_t)zero_pct * one / (800 - 7 * zero_pct);

	for (i = 0; i < ram->nblocks; i++) {
		struct ram_block *b = &ram->blocks[i];

		hole = 0;
		for (pg = 0; pg < b->npages; pg++) {
			if (!hole && q && rng_below(r, one) < q)
				hole = 1 + rng_below(r, 15);
			zero = hole > 0 || zero_pct == 100;
			page_write(b, pg, r, zero);
			if (hole)
				hole--;
		}
	}
}

/*
 * ZERO_REGIONS: RAM as a guest leaves it.  Each block is cut into
 * RAM_ALIGN regions (aligned, as the mapping is; the last may be short),
 * and each region is, with probability zero_pct %, never touched, else
 * filled with random pages.  An untouched region is not written at all:
 * the mapping stays unpopulated there, as memory a guest never touched
 * does in a VMM, and reads as zero.  Its hashes are taken from a buffer of
 * zeros rather than from the mapping: reading it would map the zero page
 * into the page tables now, a fault the module's scan has to take itself
 * with a real guest.
 */
static int fill_regions(struct guest_ram *ram, struct rng *r,
			unsigned int zero_pct)
{
	uint64_t per = RAM_ALIGN / page_size, pg, end;
	unsigned int i;
	uint8_t *zeros;
	bool touch;

	zeros = calloc(1, page_size);
	if (!zeros) {
		perror("rdmamig-vmm: zero page");
		return -1;
	}
	if (!per)
		per = 1;
	for (i = 0; i < ram->nblocks; i++) {
		struct ram_block *b = &ram->blocks[i];

		for (pg = 0; pg < b->npages; pg = end) {
			end = pg + per < b->npages ? pg + per : b->npages;
			touch = rng_below(r, 100) >= zero_pct;
			for (; pg < end; pg++) {
				if (touch) {
					page_write(b, pg, r, false);
					continue;
				}
				b->hash[pg] = page_hash_of(b, pg, zeros);
				bit_set(b->dirty, pg);
			}
		}
	}
	free(zeros);
	return 0;
}

/*
 * Initial content, zero_pct % of it zero pages laid out as @layout says.
 * Everything is marked dirty: the first round is the bulk round, and
 * sends every page, zero or not.
 */
int ram_fill(struct guest_ram *ram, struct rng *r, unsigned int zero_pct,
	     enum zero_layout layout)
{
	if (zero_pct > 100)
		zero_pct = 100;
	if (layout == ZERO_REGIONS)
		return fill_regions(ram, r, zero_pct);
	fill_holes(ram, r, zero_pct);
	return 0;
}

/*
 * Destination, for tests (--prefill): every byte 0xa5 before the session,
 * so that a zero page the destination fails to clear is caught by the
 * final check instead of passing as the zero it read anyway.  The RAM is
 * then not fresh: its blocks go without RDMAMIG_BLOCK_FRESH, and every
 * zero page must be sent and cleared.
 */
void ram_prefill(struct guest_ram *ram)
{
	unsigned int i;

	for (i = 0; i < ram->nblocks; i++)
		memset(ram->blocks[i].mem, 0xa5,
		       ram->blocks[i].npages * page_size);
}

static struct ram_block *ram_locate(struct guest_ram *ram, uint64_t gpage,
				    uint64_t *page)
{
	unsigned int i;

	for (i = 0; i < ram->nblocks; i++) {
		if (gpage < ram->blocks[i].npages)
			break;
		gpage -= ram->blocks[i].npages;
	}
	*page = gpage;
	return &ram->blocks[i];
}

/*
 * What the guest does while a round is on the wire: it writes to
 * redirty_pct % of its pages (distinct pages, spread over all blocks),
 * some of them (zero_pct %) with zeros.  Returns the pages dirtied.
 * At 100 % every page is written, in order (random picks would take
 * ln(pages) times as many tries to find the last ones).
 */
uint64_t ram_redirty(struct guest_ram *ram, struct rng *r,
		     unsigned int redirty_pct, unsigned int zero_pct)
{
	uint64_t want = ram->total_pages * redirty_pct / 100, done = 0, tries;
	uint64_t page;
	struct ram_block *b;
	unsigned int i;

	if (redirty_pct >= 100) {
		for (i = 0; i < ram->nblocks; i++) {
			b = &ram->blocks[i];
			for (page = 0; page < b->npages; page++, done++)
				page_write(b, page, r, rng_below(r, 100) < zero_pct);
		}
		return done;
	}
	if (redirty_pct && !want)
		want = 1;
	for (tries = 0; done < want && tries < 8 * want; tries++) {
		b = ram_locate(ram, rng_below(r, ram->total_pages), &page);
		if (bit_test(b->dirty, page))
			continue;
		page_write(b, page, r, rng_below(r, 100) < zero_pct);
		done++;
	}
	return done;
}

uint64_t ram_dirty_count(const struct ram_block *b)
{
	uint64_t n = 0, w;

	for (w = 0; w < (b->npages + 63) / 64; w++)
		n += __builtin_popcountll(b->dirty[w]);
	return n;
}

void ram_clear_dirty(struct guest_ram *ram)
{
	unsigned int i;

	for (i = 0; i < ram->nblocks; i++)
		memset(ram->blocks[i].dirty, 0,
		       (ram->blocks[i].npages + 63) / 64 * sizeof(uint64_t));
}
