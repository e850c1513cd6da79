/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Peer authentication (auth.c).
 */
#ifndef _RDMAMIG_AUTH_H
#define _RDMAMIG_AUTH_H

#include "session.h"

int rdmamig_auth_set_secret(struct rdmamig_session *sess, const u8 *key,
			    u32 len);
void rdmamig_auth_free(struct rdmamig_session *sess);
bool rdmamig_auth_required(struct rdmamig_session *sess);
void rdmamig_auth_challenge(struct rdmamig_cm_priv *p);
int rdmamig_auth_dst_mac(struct rdmamig_session *sess, u8 mac[RDMAMIG_MAC_SIZE]);
int rdmamig_auth_check_dst(struct rdmamig_session *sess,
			   const u8 mac[RDMAMIG_MAC_SIZE]);
int rdmamig_auth_send_proof(struct rdmamig_session *sess);
void rdmamig_auth_dst_handle(struct rdmamig_session *sess, u16 type,
			     const struct rdmamig_cmd_auth *cmd);

#endif /* _RDMAMIG_AUTH_H */
