/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RAM blocks, pinning with memlock accounting, the registrations of
 * chunks for the peer (block.c).
 */
#ifndef _RDMAMIG_BLOCK_H
#define _RDMAMIG_BLOCK_H

#include "session.h"

int rdmamig_block_add(struct rdmamig_session *sess, struct rdmamig_block *ub);
void rdmamig_blocks_unregister(struct rdmamig_session *sess);
void rdmamig_blocks_free(struct rdmamig_session *sess);
int rdmamig_memlock_check(struct rdmamig_session *sess, u64 bytes);
int rdmamig_pin_account(struct rdmamig_session *sess, unsigned long npages);
void rdmamig_pin_unaccount(struct rdmamig_session *sess, unsigned long npages);
u32 rdmamig_chunk_pages(struct rdmamig_block_ram *b, u32 chunk);
int rdmamig_chunk_register(struct rdmamig_session *sess,
			   struct rdmamig_block_ram *b, u32 chunk,
			   const unsigned long *map, int access);
int rdmamig_chunk_register_pinned(struct rdmamig_session *sess,
				  struct rdmamig_block_ram *b, u32 chunk,
				  struct page **pages, unsigned int npages,
				  int access);
void rdmamig_chunk_unregister(struct rdmamig_session *sess,
			    struct rdmamig_block_ram *b, u32 chunk);
int rdmamig_dst_zero(struct rdmamig_session *sess, struct rdmamig_block_ram *b,
		     u64 offset, u32 npages);
#define RDMAMIG_PIN_OWN	0	/* rdmamig_owner_enter(): the owner itself */
int rdmamig_owner_enter(struct rdmamig_session *sess, int *way);
void rdmamig_owner_leave(struct rdmamig_session *sess, int way);
int rdmamig_owner_copy(struct rdmamig_session *sess, int way, u64 addr,
		       struct page **src, u32 npages);
int rdmamig_owner_read(struct rdmamig_session *sess, int way, u64 addr,
		       struct page **dst, u32 npages);
int rdmamig_pin_range(struct rdmamig_session *sess, u64 addr,
		      unsigned long npages, unsigned int gup_flags,
		      struct page **pages);
long rdmamig_pin_bits(struct rdmamig_session *sess, u64 base,
		      const unsigned long *map, unsigned long start,
		      unsigned long end, unsigned int gup_flags,
		      struct page **pages);
u64 rdmamig_blocks_bytes(struct rdmamig_session *sess, u32 *nblocks);

#endif /* _RDMAMIG_BLOCK_H */
