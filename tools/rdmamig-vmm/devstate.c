// SPDX-License-Identifier: GPL-2.0
/*
 * Device state: what a VMM sends besides RAM (CPU registers, device
 * models...).  rdmamig carries it as one ordered byte stream: the source
 * write()s to the session fd whenever it likes after CONNECT, the
 * destination read()s it in the same order; the stream has no message
 * boundaries of its own, so the VMM frames it.
 *
 * Here it is framed as records (struct ds_header + payload):
 *
 *   DS_ROUND   after each round: pseudo-random bytes of random length,
 *              standing for the devices' state at that point;
 *   DS_HASHES  last, after the final round: the source's hash of every
 *              page of every block, which the destination compares with
 *              its own pages.  Payload: u64 nblocks, u64 npages[nblocks],
 *              u64 hash[total pages] in block order.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm.h"

#define DS_ROUND_MIN	512
#define DS_ROUND_RAND	(64 << 10)
#define DS_MAX_PAYLOAD	(256ULL << 20)

static int ds_write(int fd, uint32_t type, uint64_t round, const void *payload,
		    uint64_t len)
{
	struct ds_header h = {
		.magic = DS_MAGIC,
		.type = type,
		.round = round,
		.length = len,
		.checksum = hash64(payload, len, round),
	};

	/* write() on the session fd appends to the device-state stream. */
	if (write_all(fd, &h, sizeof(h)) || write_all(fd, payload, len))
		return -1;
	return 0;
}

int ds_write_round(int fd, struct rng *r, uint64_t round)
{
	uint64_t len = DS_ROUND_MIN + rng_below(r, DS_ROUND_RAND);
	void *payload = malloc(len);
	int ret;

	if (!payload)
		return -1;
	rng_fill(r, payload, len);
	ret = ds_write(fd, DS_ROUND, round, payload, len);
	free(payload);
	return ret;
}

int ds_write_hashes(int fd, const struct guest_ram *ram, uint64_t round)
{
	uint64_t n = 1 + ram->nblocks + ram->total_pages, *p, *h;
	unsigned int i;
	int ret;

	p = malloc(n * sizeof(*p));
	if (!p)
		return -1;
	p[0] = ram->nblocks;
	h = p + 1 + ram->nblocks;
	for (i = 0; i < ram->nblocks; i++) {
		p[1 + i] = ram->blocks[i].npages;
		memcpy(h, ram->blocks[i].hash, ram->blocks[i].npages * sizeof(*h));
		h += ram->blocks[i].npages;
	}
	ret = ds_write(fd, DS_HASHES, round, p, n * sizeof(*p));
	free(p);
	return ret;
}

void ds_parser_init(struct ds_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->next_round = 1;
}

void ds_parser_free(struct ds_parser *p)
{
	free(p->buf);
	free(p->hashes);
	memset(p, 0, sizeof(*p));
}

__attribute__((format(printf, 2, 3)))
static int ds_error(struct ds_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->error[0]) {
		va_start(ap, fmt);
		vsnprintf(p->error, sizeof(p->error), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int ds_record(struct ds_parser *p, const struct ds_header *h,
		     const uint8_t *payload)
{
	uint64_t n = h->length / 8;

	if (hash64(payload, h->length, h->round) != h->checksum)
		return ds_error(p, "record %llu (round %llu): bad checksum",
				(unsigned long long)p->records,
				(unsigned long long)h->round);
	if (h->type == DS_ROUND) {
		if (h->round != p->next_round)
			return ds_error(p, "record %llu: round %llu, expected %llu",
					(unsigned long long)p->records,
					(unsigned long long)h->round,
					(unsigned long long)p->next_round);
		p->next_round++;
		return 0;
	}
	if (h->round != p->next_round - 1)
		return ds_error(p, "hash record for round %llu after round %llu",
				(unsigned long long)h->round,
				(unsigned long long)p->next_round - 1);
	if (h->length % 8 || n < 1)
		return ds_error(p, "hash record: bad length %llu",
				(unsigned long long)h->length);
	p->hashes = malloc(h->length);
	if (!p->hashes)
		return ds_error(p, "hash record: %s", strerror(ENOMEM));
	memcpy(p->hashes, payload, h->length);
	p->nhashes = n;
	p->done = true;
	return 0;
}

/* Take the next bytes of the stream; check every record completed by them. */
int ds_feed(struct ds_parser *p, const void *data, size_t len)
{
	struct ds_header h;
	size_t off = 0;

	if (p->error[0])
		return -1;
	if (p->len + len > p->cap) {
		size_t cap = p->cap ? p->cap : 1 << 16;
		uint8_t *nb;

		while (cap < p->len + len)
			cap *= 2;
		nb = realloc(p->buf, cap);
		if (!nb)
			return ds_error(p, "%s", strerror(ENOMEM));
		p->buf = nb;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, data, len);
	p->len += len;
	p->bytes += len;

	while (p->len - off >= sizeof(h)) {
		memcpy(&h, p->buf + off, sizeof(h));
		if (h.magic != DS_MAGIC || (h.type != DS_ROUND && h.type != DS_HASHES))
			return ds_error(p, "record %llu: bad magic/type %#x/%u at byte %llu",
					(unsigned long long)p->records, h.magic, h.type,
					(unsigned long long)(p->bytes - p->len + off));
		if (h.length > DS_MAX_PAYLOAD)
			return ds_error(p, "record %llu: length %llu",
					(unsigned long long)p->records,
					(unsigned long long)h.length);
		if (p->done)
			return ds_error(p, "record after the hash record");
		if (p->len - off - sizeof(h) < h.length)
			break;
		if (ds_record(p, &h, p->buf + off + sizeof(h)))
			return -1;
		p->records++;
		off += sizeof(h) + h.length;
	}
	memmove(p->buf, p->buf + off, p->len - off);
	p->len -= off;
	return 0;
}

/* At end of stream: complete, and laid out like our own RAM? */
int ds_finish(struct ds_parser *p, const struct guest_ram *ram)
{
	unsigned int i;

	if (p->error[0])
		return -1;
	if (p->len)
		return ds_error(p, "stream ends inside a record (%zu bytes left)", p->len);
	if (!p->done)
		return ds_error(p, "stream ends without the hash record");
	if (p->hashes[0] != ram->nblocks ||
	    p->nhashes != 1 + ram->nblocks + ram->total_pages)
		return ds_error(p, "hash record: %llu blocks, %llu words; have %u blocks",
				(unsigned long long)p->hashes[0],
				(unsigned long long)p->nhashes, ram->nblocks);
	for (i = 0; i < ram->nblocks; i++)
		if (p->hashes[1 + i] != ram->blocks[i].npages)
			return ds_error(p, "hash record: block %s has %llu pages, not %llu",
					ram->blocks[i].name,
					(unsigned long long)p->hashes[1 + i],
					(unsigned long long)ram->blocks[i].npages);
	return 0;
}
