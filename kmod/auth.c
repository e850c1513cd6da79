// SPDX-License-Identifier: GPL-2.0
/*
 * Peer authentication: both ends hold a per-session secret and prove it
 * with HMAC-SHA256 before the source reveals its block layout or the
 * destination any rkey (Documentation/security.rst).
 *
 *   source -> CONNECT_REQUEST  { ..., CAP_AUTH, nonce_s }          = req
 *   dest   -> ACCEPT           { { ..., CAP_AUTH, nonce_d } = rep,
 *                                HMAC(K, "rdmamig dst" || req || rep) }
 *   source    checks that MAC, then
 *   source -> AUTH             { HMAC(K, "rdmamig src" || req || rep) }
 *   dest      checks it before it acts on any other message.
 *
 * Both MACs cover both fresh challenges and the negotiated fields of the
 * 32-byte private data (not the channel count after it: see chan.c), so
 * neither a replayed answer nor a changed capability passes; the two
 * labels keep one side's answer from serving as the other's.  The secret
 * lives only inside the keyed transform, which frees it with
 * kfree_sensitive().
 */
#include "rdmamig.h"

#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <linux/random.h>

#include "proto.h"
#include "session.h"
#include "auth.h"
#include "ctrl.h"

static const char label_dst[] = "rdmamig dst";
static const char label_src[] = "rdmamig src";

/**
 * rdmamig_auth_set_secret() - key the session's HMAC with @key
 * @sess: a session not started yet; caller holds @sess->lock
 * @key: the secret
 * @len: its length, RDMAMIG_SECRET_MIN to RDMAMIG_SECRET_MAX
 *
 * Return: 0, -EINVAL for a bad length, -EBUSY once started, or the
 * crypto API's error (-ENOENT without hmac(sha256) in the kernel).
 */
int rdmamig_auth_set_secret(struct rdmamig_session *sess, const u8 *key,
			    u32 len)
{
	struct crypto_shash *tfm;
	int ret;

	lockdep_assert_held(&sess->lock);
	if (len < RDMAMIG_SECRET_MIN || len > RDMAMIG_SECRET_MAX)
		return -EINVAL;
	if (READ_ONCE(sess->state) != RDMAMIG_STATE_NONE)
		return -EBUSY;
	tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	ret = crypto_shash_setkey(tfm, key, len);
	if (ret) {
		crypto_free_shash(tfm);
		return ret;
	}
	/* Replace the old key only once the new one works. */
	crypto_free_shash(sess->auth_tfm);
	sess->auth_tfm = tfm;
	return 0;
}

void rdmamig_auth_free(struct rdmamig_session *sess)
{
	crypto_free_shash(sess->auth_tfm);
	sess->auth_tfm = NULL;
}

bool rdmamig_auth_required(struct rdmamig_session *sess)
{
	return sess->params.auth == RDMAMIG_AUTH_REQUIRED;
}

/* Fresh challenge into @p; @p is the private data this side sends. */
void rdmamig_auth_challenge(struct rdmamig_cm_priv *p)
{
	get_random_bytes(p->nonce, sizeof(p->nonce));
}

/*
 * HMAC(K, label || req || rep) over the private data both sides saw,
 * saved in @sess->auth_req and @sess->auth_rep.  The transform is only
 * read here, so concurrent digests need no lock: each has its own desc.
 */
static int auth_mac(struct rdmamig_session *sess, const char *label,
		    u8 mac[RDMAMIG_MAC_SIZE])
{
	SHASH_DESC_ON_STACK(desc, sess->auth_tfm);
	int ret;

	desc->tfm = sess->auth_tfm;
	ret = crypto_shash_init(desc) ?:
	      crypto_shash_update(desc, label, strlen(label)) ?:
	      crypto_shash_update(desc, (const u8 *)&sess->auth_req,
				  sizeof(sess->auth_req)) ?:
	      crypto_shash_update(desc, (const u8 *)&sess->auth_rep,
				  sizeof(sess->auth_rep)) ?:
	      crypto_shash_final(desc, mac);
	shash_desc_zero(desc);
	return ret;
}

static int auth_check(struct rdmamig_session *sess, const char *label,
		      const u8 mac[RDMAMIG_MAC_SIZE])
{
	u8 want[RDMAMIG_MAC_SIZE];
	int ret;

	ret = auth_mac(sess, label, want);
	if (!ret && crypto_memneq(want, mac, sizeof(want)))
		ret = -EACCES;
	memzero_explicit(want, sizeof(want));
	return ret;
}

/* Destination: the MAC that goes into ACCEPT. */
int rdmamig_auth_dst_mac(struct rdmamig_session *sess, u8 mac[RDMAMIG_MAC_SIZE])
{
	return auth_mac(sess, label_dst, mac);
}

/* Source: is the destination's MAC right?  0 or -EACCES. */
int rdmamig_auth_check_dst(struct rdmamig_session *sess,
			   const u8 mac[RDMAMIG_MAC_SIZE])
{
	return auth_check(sess, label_dst, mac);
}

/* Source: the answer, sent as the first control message. */
int rdmamig_auth_send_proof(struct rdmamig_session *sess)
{
	struct rdmamig_cmd_auth cmd;
	int ret;

	ret = auth_mac(sess, label_src, cmd.mac);
	if (!ret)
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_AUTH, 1, &cmd, sizeof(cmd));
	memzero_explicit(&cmd, sizeof(cmd));
	return ret;
}

/**
 * rdmamig_auth_dst_handle() - check the source's AUTH, or refuse
 * @sess: a destination that accepted with CAP_AUTH
 * @type: the message that came; only AUTH is acceptable until then
 * @cmd: its payload when @type is AUTH
 *
 * Fails the session with -EACCES and a reason the source hears too.
 */
void rdmamig_auth_dst_handle(struct rdmamig_session *sess, u16 type,
			     const struct rdmamig_cmd_auth *cmd)
{
	int ret;

	if (type != RDMAMIG_MSG_AUTH) {
		rdmamig_session_fail(sess, -EACCES, true,
				     "source from %s sent message type %u before it authenticated",
				     sess->peer_addr, type);
		return;
	}
	ret = auth_check(sess, label_src, cmd->mac);
	if (ret) {
		rdmamig_session_fail(sess, ret, true,
				     "source from %s failed authentication: %s",
				     sess->peer_addr, ret == -EACCES ?
				     "it does not hold this session's secret" :
				     "HMAC computation failed");
		return;
	}
	WRITE_ONCE(sess->auth_pending, false);
	spin_lock_irq(&sess->slock);
	sess->authenticated = true;
	spin_unlock_irq(&sess->slock);
	sess_info(sess, "source %s authenticated\n", sess->peer_addr);
}
