/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hostile peer of the selftests (hostile.c): one hook per injection
 * point, in connection set-up (cm.c), the send path (ctrl.c) and key
 * management (precopy_src.c, precopy_dst.c).
 *
 * Built only with CONFIG_RDMAMIG_FAULT_INJECTION, which the top-level
 * Makefile passes to kbuild for the testbed's module.  Its parameter lets
 * root arm the next session of any user, which has no place in a module
 * that ships: DKMS and make install build without it, and the hooks below
 * are then empty inlines, so the module has neither the parameter nor any
 * of the code.
 */
#ifndef _RDMAMIG_HOSTILE_H
#define _RDMAMIG_HOSTILE_H

#include <linux/types.h>

struct rdmamig_msg_hdr;
struct rdmamig_session;

#ifdef CONFIG_RDMAMIG_FAULT_INJECTION
void rdmamig_hostile_arm(struct rdmamig_session *sess);
void rdmamig_hostile_mangle(struct rdmamig_session *sess,
			    struct rdmamig_msg_hdr *hdr, u32 *sge_len);
bool rdmamig_hostile_keeps_keys(struct rdmamig_session *sess);
u32 rdmamig_hostile_keepalive(struct rdmamig_session *sess, u32 ms);
int rdmamig_hostile_accept(struct rdmamig_session *sess);
int rdmamig_hostile_conn_create(struct rdmamig_session *sess);
int rdmamig_hostile_flood(struct rdmamig_session *sess);
u64 rdmamig_hostile_read_addr(struct rdmamig_session *sess, u64 raddr);
#else
static inline void rdmamig_hostile_arm(struct rdmamig_session *sess)
{
}

static inline void rdmamig_hostile_mangle(struct rdmamig_session *sess,
					  struct rdmamig_msg_hdr *hdr,
					  u32 *sge_len)
{
}

static inline bool rdmamig_hostile_keeps_keys(struct rdmamig_session *sess)
{
	return false;
}

static inline u32 rdmamig_hostile_keepalive(struct rdmamig_session *sess,
					    u32 ms)
{
	return ms;
}

static inline int rdmamig_hostile_accept(struct rdmamig_session *sess)
{
	return 0;
}

static inline int rdmamig_hostile_conn_create(struct rdmamig_session *sess)
{
	return 0;
}

static inline int rdmamig_hostile_flood(struct rdmamig_session *sess)
{
	return 0;
}

static inline u64 rdmamig_hostile_read_addr(struct rdmamig_session *sess,
					    u64 raddr)
{
	return raddr;
}
#endif

#endif /* _RDMAMIG_HOSTILE_H */
