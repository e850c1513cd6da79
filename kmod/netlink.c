// SPDX-License-Identifier: GPL-2.0
/*
 * The administrator's face: the "rdmamig" generic-netlink family.  The
 * command and attribute tree is documented at the top of
 * uapi/linux/rdmamig.h and in Documentation/netlink.rst.
 *
 * Sessions created here (NEW_SESSION) move another process's memory and
 * belong to the netlink socket that created it: only that socket drives
 * them, and a NETLINK_URELEASE notifier destroys them when it closes.
 * Ownership is the socket itself, not its port id: netlink frees the port
 * id before the notice, and a new socket bound to it must neither drive
 * nor lose the closing one's sessions (session.c).
 *
 * Lookups hold the session-list mutex, which keeps sessions alive.  A
 * request that must wait without it takes a reference (CANCEL_SESSION).
 * The owner's blocking requests (CONNECT, ROUND, ...) need none: only
 * the owner's release destroys such a session, and a socket is not
 * released while one of its requests runs; so the session (and the
 * reason an extended ACK points at) outlives the request.
 */
#include "rdmamig.h"

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/pid.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <linux/rdmamig.h>

#include "ibdev.h"
#include "netlink.h"
#include "proto.h"
#include "session.h"
#include "auth.h"
#include "block.h"
#include "cm.h"
#include "mode.h"
#include "postcopy.h"

static struct genl_family rdmamig_genl_family;

enum { RDMAMIG_MCGRP_EVENTS_ID };

static const struct genl_multicast_group rdmamig_mcgrps[] = {
	[RDMAMIG_MCGRP_EVENTS_ID] = { .name = RDMAMIG_MCGRP_EVENTS },
};

/* ---- Policies: each command accepts only its own attributes ---------- */

#define POLICY_SESSION_ID \
	[RDMAMIG_ATTR_SESSION_ID] = { .type = NLA_U32 }
#define POLICY_PARAMS \
	[RDMAMIG_ATTR_CAPS] = { .type = NLA_U64 }, \
	[RDMAMIG_ATTR_MAX_BANDWIDTH] = { .type = NLA_U64 }, \
	[RDMAMIG_ATTR_MAX_REGISTERED] = { .type = NLA_U64 }, \
	[RDMAMIG_ATTR_KEEPALIVE_MS] = { .type = NLA_U32 }, \
	[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS] = { .type = NLA_U32 }, \
	[RDMAMIG_ATTR_MAX_ROUNDS] = { .type = NLA_U32 }, \
	[RDMAMIG_ATTR_AUTH] = NLA_POLICY_MAX(NLA_U32, RDMAMIG_AUTH_OFF), \
	[RDMAMIG_ATTR_CHANNELS] = NLA_POLICY_RANGE(NLA_U32, 1, RDMAMIG_CHANNELS_MAX)

static const struct nla_policy session_id_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
};

/* Takes every parameter, to say which ones cannot change (nl_set_session). */
static const struct nla_policy set_session_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	POLICY_PARAMS,
};

static const struct nla_policy defaults_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_PARAMS,
};

static const struct nla_policy block_policy[RDMAMIG_ATTR_MAX + 1] = {
	[RDMAMIG_ATTR_BLOCK_NAME] = { .type = NLA_NUL_STRING,
				      .len = RDMAMIG_BLOCK_NAME_MAX - 1 },
	[RDMAMIG_ATTR_BLOCK_ADDR] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_BLOCK_LEN] = { .type = NLA_U64 },
};

static const struct nla_policy new_session_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_PARAMS,
	[RDMAMIG_ATTR_TARGET_PID] = { .type = NLA_U32 },
	[RDMAMIG_ATTR_MEM_FD] = { .type = NLA_U32 },
	[RDMAMIG_ATTR_ROLE] = NLA_POLICY_RANGE(NLA_U32, RDMAMIG_ROLE_SOURCE,
					       RDMAMIG_ROLE_DEST),
	[RDMAMIG_ATTR_BLOCK] = NLA_POLICY_NESTED(block_policy),
	[RDMAMIG_ATTR_SECRET] = NLA_POLICY_RANGE(NLA_BINARY, RDMAMIG_SECRET_MIN,
						 RDMAMIG_SECRET_MAX),
};

/* nla_policy.max is an s16: a u32 port needs a range struct (non-const on 6.1). */
static struct netlink_range_validation port_range = { .max = 65535 };

static const struct nla_policy addr_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	[RDMAMIG_ATTR_HOST] = { .type = NLA_NUL_STRING, .len = RDMAMIG_HOST_MAX - 1 },
	[RDMAMIG_ATTR_PORT] = NLA_POLICY_FULL_RANGE(NLA_U32, &port_range),
	[RDMAMIG_ATTR_TIMEOUT_MS] = { .type = NLA_U32 },
};

static const struct nla_policy round_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	[RDMAMIG_ATTR_BLOCK_INDEX] = { .type = NLA_U32 },
	[RDMAMIG_ATTR_FIRST_PAGE] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_BITMAP] = NLA_POLICY_MIN_LEN(sizeof(u64)),
	[RDMAMIG_ATTR_FLAGS] = NLA_POLICY_MASK(NLA_U32, RDMAMIG_ROUND_FINAL |
					       RDMAMIG_ROUND_POSTCOPY),
};

/* Addresses and lengths are checked by the handlers, with their reasons. */
static const struct nla_policy fetch_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	[RDMAMIG_ATTR_FLAGS] = NLA_POLICY_MASK(NLA_U32, RDMAMIG_FETCH_SWEEP),
	[RDMAMIG_ATTR_ADDR] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_BUF] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_BUF_LEN] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_RUNS] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_NRUNS] = NLA_POLICY_RANGE(NLA_U32, 1, RDMAMIG_FETCH_RUNS_MAX),
};

/* BUF_LEN, the device state's length, is checked by the handler. */
static const struct nla_policy mc_epoch_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	[RDMAMIG_ATTR_ROUNDS] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_NROUNDS] = NLA_POLICY_MAX(NLA_U32, RDMAMIG_MC_ROUNDS_MAX),
	[RDMAMIG_ATTR_BUF] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_BUF_LEN] = { .type = NLA_U64 },
};

static const struct nla_policy resume_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	[RDMAMIG_ATTR_RESUME_FROM] = { .type = NLA_U32 },
};

static const struct nla_policy owed_policy[RDMAMIG_ATTR_MAX + 1] = {
	POLICY_SESSION_ID,
	[RDMAMIG_ATTR_BLOCK_INDEX] = { .type = NLA_U32 },
	[RDMAMIG_ATTR_FIRST_PAGE] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_NPAGES] = { .type = NLA_U64 },
	[RDMAMIG_ATTR_BUF] = { .type = NLA_U64 },
};

/*
 * A required attribute: the missing type goes into the extended ACK
 * (NLMSGERR_ATTR_MISS_TYPE), and a message says so in words.
 */
#define REQUIRE(info, attr) ({						\
	bool __missing = GENL_REQ_ATTR_CHECK(info, attr);		\
									\
	if (__missing)							\
		NL_SET_ERR_MSG((info)->extack, "required attribute missing: " #attr); \
	__missing;							\
})

/* ---- Filling replies ------------------------------------------------- */

static int put_params(struct sk_buff *skb, const struct rdmamig_params *p)
{
	if (nla_put_u64_64bit(skb, RDMAMIG_ATTR_CAPS, p->caps, RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, RDMAMIG_ATTR_MAX_BANDWIDTH, p->max_bandwidth,
			      RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, RDMAMIG_ATTR_MAX_REGISTERED, p->max_registered,
			      RDMAMIG_ATTR_PAD) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_KEEPALIVE_MS, p->keepalive_ms) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, p->downtime_limit_ms) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_MAX_ROUNDS, p->max_rounds) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_AUTH, p->auth) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_CHANNELS, p->channels))
		return -EMSGSIZE;
	return 0;
}

static int put_stats(struct sk_buff *skb, const struct rdmamig_stats *st)
{
	static const struct {
		int attr;
		size_t off;
	} fields[] = {
		{ RDMAMIG_STAT_BYTES, offsetof(struct rdmamig_stats, bytes) },
		{ RDMAMIG_STAT_PAGES, offsetof(struct rdmamig_stats, pages) },
		{ RDMAMIG_STAT_ZERO_PAGES, offsetof(struct rdmamig_stats, zero_pages) },
		{ RDMAMIG_STAT_ROUNDS, offsetof(struct rdmamig_stats, rounds) },
		{ RDMAMIG_STAT_CHUNKS_REGISTERED,
		  offsetof(struct rdmamig_stats, chunks_registered) },
		{ RDMAMIG_STAT_CHUNKS_UNREGISTERED,
		  offsetof(struct rdmamig_stats, chunks_unregistered) },
		{ RDMAMIG_STAT_REGISTERED_BYTES,
		  offsetof(struct rdmamig_stats, registered_bytes) },
		{ RDMAMIG_STAT_DEVICE_STATE_BYTES,
		  offsetof(struct rdmamig_stats, device_state_bytes) },
		{ RDMAMIG_STAT_THROUGHPUT, offsetof(struct rdmamig_stats, throughput) },
		{ RDMAMIG_STAT_SETUP_MS, offsetof(struct rdmamig_stats, setup_ms) },
		{ RDMAMIG_STAT_TOTAL_MS, offsetof(struct rdmamig_stats, total_ms) },
		{ RDMAMIG_STAT_DOWNTIME_MS, offsetof(struct rdmamig_stats, downtime_ms) },
		{ RDMAMIG_STAT_SCAN_MS, offsetof(struct rdmamig_stats, scan_ms) },
		{ RDMAMIG_STAT_KEYS_WAIT_MS, offsetof(struct rdmamig_stats, keys_wait_ms) },
		{ RDMAMIG_STAT_WRITES_WAIT_MS,
		  offsetof(struct rdmamig_stats, writes_wait_ms) },
		{ RDMAMIG_STAT_REGISTER_MS, offsetof(struct rdmamig_stats, register_ms) },
		{ RDMAMIG_STAT_ZERO_MS, offsetof(struct rdmamig_stats, zero_ms) },
		{ RDMAMIG_STAT_ZERO_SKIPPED, offsetof(struct rdmamig_stats, zero_skipped) },
		{ RDMAMIG_STAT_POSTCOPY_OWED, offsetof(struct rdmamig_stats, postcopy_owed) },
		{ RDMAMIG_STAT_POSTCOPY_MS, offsetof(struct rdmamig_stats, postcopy_ms) },
		{ RDMAMIG_STAT_POSTCOPY_FAULTS,
		  offsetof(struct rdmamig_stats, postcopy_faults) },
		{ RDMAMIG_STAT_POSTCOPY_FAULT_PAGES,
		  offsetof(struct rdmamig_stats, postcopy_fault_pages) },
		{ RDMAMIG_STAT_POSTCOPY_SWEEP_PAGES,
		  offsetof(struct rdmamig_stats, postcopy_sweep_pages) },
		{ RDMAMIG_STAT_POSTCOPY_FETCHED_TWICE,
		  offsetof(struct rdmamig_stats, postcopy_fetched_twice) },
		{ RDMAMIG_STAT_FAULT_US_P50, offsetof(struct rdmamig_stats, fault_us_p50) },
		{ RDMAMIG_STAT_FAULT_US_P99, offsetof(struct rdmamig_stats, fault_us_p99) },
		{ RDMAMIG_STAT_FAULT_US_MAX, offsetof(struct rdmamig_stats, fault_us_max) },
		{ RDMAMIG_STAT_POSTCOPY_DOWNTIME_US,
		  offsetof(struct rdmamig_stats, postcopy_downtime_us) },
		{ RDMAMIG_STAT_MC_EPOCHS, offsetof(struct rdmamig_stats, mc_epochs) },
		{ RDMAMIG_STAT_MC_ACKED, offsetof(struct rdmamig_stats, mc_acked) },
		{ RDMAMIG_STAT_MC_PAGES, offsetof(struct rdmamig_stats, mc_pages) },
		{ RDMAMIG_STAT_MC_BYTES, offsetof(struct rdmamig_stats, mc_bytes) },
		{ RDMAMIG_STAT_MC_LAST_PAGES, offsetof(struct rdmamig_stats, mc_last_pages) },
		{ RDMAMIG_STAT_MC_PAUSE_US_LAST,
		  offsetof(struct rdmamig_stats, mc_pause_us_last) },
		{ RDMAMIG_STAT_MC_PAUSE_US_MAX, offsetof(struct rdmamig_stats, mc_pause_us_max) },
		{ RDMAMIG_STAT_MC_PAUSE_US_TOTAL,
		  offsetof(struct rdmamig_stats, mc_pause_us_total) },
		{ RDMAMIG_STAT_MC_ACK_US_LAST, offsetof(struct rdmamig_stats, mc_ack_us_last) },
		{ RDMAMIG_STAT_MC_ACK_US_MAX, offsetof(struct rdmamig_stats, mc_ack_us_max) },
		{ RDMAMIG_STAT_MC_DISCARDED, offsetof(struct rdmamig_stats, mc_discarded) },
	};
	struct nlattr *nest;
	size_t i;

	nest = nla_nest_start(skb, RDMAMIG_ATTR_STATS);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < ARRAY_SIZE(fields); i++)
		if (nla_put_u64_64bit(skb, fields[i].attr,
				      *(const u64 *)((const u8 *)st + fields[i].off),
				      RDMAMIG_STAT_PAD)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
	/* u64 like its siblings, though struct rdmamig_stats holds a u32. */
	if (nla_put_u64_64bit(skb, RDMAMIG_STAT_CHANNELS, st->channels,
			      RDMAMIG_STAT_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/* One session as a message of @cmd; any context (events use GFP_ATOMIC). */
static int fill_session(struct sk_buff *skb, struct rdmamig_session *sess,
			u32 portid, u32 seq, int flags, u8 cmd, gfp_t gfp)
{
	struct rdmamig_stats *st;
	struct nlattr *nest;
	void *hdr;
	int ret = -EMSGSIZE;

	st = kzalloc(sizeof(*st), gfp);
	if (!st)
		return -ENOMEM;
	rdmamig_session_get_stats(sess, st);

	hdr = genlmsg_put(skb, portid, seq, &rdmamig_genl_family, flags, cmd);
	if (!hdr)
		goto out;
	if (nla_put_u32(skb, RDMAMIG_ATTR_SESSION_ID, sess->id) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_ROLE, st->role) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_STATE, st->state) ||
	    nla_put_s32(skb, RDMAMIG_ATTR_ERROR, st->error) ||
	    nla_put_string(skb, RDMAMIG_ATTR_REASON, st->reason))
		goto cancel;
	if (cmd != RDMAMIG_CMD_EVENT_STATE &&
	    (nla_put_u64_64bit(skb, RDMAMIG_ATTR_CAPS, st->caps, RDMAMIG_ATTR_PAD) ||
	     put_stats(skb, st)))
		goto cancel;
	if (cmd == RDMAMIG_CMD_GET_SESSION) {
		u32 nblocks;
		/* One snapshot: blocks may be added while we read them. */
		u64 bytes = rdmamig_blocks_bytes(sess, &nblocks);

		if (nla_put_u32(skb, RDMAMIG_ATTR_OWNER_PID, sess->owner_pid) ||
		    nla_put_u32(skb, RDMAMIG_ATTR_TARGET_PID, sess->target_pid) ||
		    nla_put_string(skb, RDMAMIG_ATTR_LOCAL_ADDR, sess->local_addr) ||
		    nla_put_string(skb, RDMAMIG_ATTR_PEER_ADDR, sess->peer_addr) ||
		    nla_put_u32(skb, RDMAMIG_ATTR_BLOCKS, nblocks) ||
		    nla_put_u64_64bit(skb, RDMAMIG_ATTR_BLOCK_BYTES, bytes,
				      RDMAMIG_ATTR_PAD))
			goto cancel;
		nest = nla_nest_start(skb, RDMAMIG_ATTR_PARAMS);
		if (!nest || put_params(skb, &sess->params))
			goto cancel;
		nla_nest_end(skb, nest);
	}
	genlmsg_end(skb, hdr);
	ret = 0;
	goto out;
cancel:
	genlmsg_cancel(skb, hdr);
out:
	kfree(st);
	return ret;
}

/* ---- Version and devices --------------------------------------------- */

static int nl_get_version(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0,
				RDMAMIG_CMD_GET_VERSION);
	if (!hdr ||
	    nla_put_string(msg, RDMAMIG_ATTR_VERSION, RDMAMIG_VERSION) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_PROTO_VERSION, RDMAMIG_PROTO_VERSION)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

struct dump_ctx {
	struct sk_buff *skb;		/* the reply being filled */
	struct netlink_callback *cb;
};

static int fill_dev(struct rdmamig_ibdev *dev, void *arg)
{
	struct dump_ctx *ctx = arg;
	struct sk_buff *skb = ctx->skb;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(ctx->cb->skb).portid,
			  ctx->cb->nlh->nlmsg_seq, &rdmamig_genl_family,
			  NLM_F_MULTI, RDMAMIG_CMD_GET_DEV);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, RDMAMIG_ATTR_DEV_INDEX, dev->ib->index) ||
	    nla_put_string(skb, RDMAMIG_ATTR_DEV_NAME, dev_name(&dev->ib->dev)) ||
	    nla_put_u64_64bit(skb, RDMAMIG_ATTR_DEV_NODE_GUID,
			      be64_to_cpu(dev->ib->node_guid), RDMAMIG_ATTR_PAD) ||
	    nla_put_u32(skb, RDMAMIG_ATTR_DEV_PORTS, rdma_end_port(dev->ib))) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* A full skb ends this part of a dump; the next call resumes. */
static int dump_result(struct sk_buff *skb, int ret)
{
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ?: skb->len;
}

/* cb->args[0]: index of the next device to report. */
static int nl_dump_dev(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct dump_ctx ctx = { .skb = skb, .cb = cb };
	unsigned int cursor = cb->args[0];
	int ret;

	ret = rdmamig_ibdev_for_each_from(&cursor, fill_dev, &ctx);
	cb->args[0] = cursor;
	return dump_result(skb, ret);
}

/* ---- Sessions: inspect, tune, cancel ---------------------------------- */

static int fill_session_dump(struct rdmamig_session *sess, void *arg)
{
	struct dump_ctx *ctx = arg;

	return fill_session(ctx->skb, sess, NETLINK_CB(ctx->cb->skb).portid,
			    ctx->cb->nlh->nlmsg_seq, NLM_F_MULTI,
			    RDMAMIG_CMD_GET_SESSION, GFP_KERNEL);
}

static int nl_dump_session(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct dump_ctx ctx = { .skb = skb, .cb = cb };
	unsigned long cursor = cb->args[0];
	int ret;

	ret = rdmamig_sessions_for_each_from(&cursor, fill_session_dump, &ctx);
	cb->args[0] = cursor;
	return dump_result(skb, ret);
}

/* Look up SESSION_ID; on success the session-list mutex is held. */
/* The session @type (SESSION_ID or RESUME_FROM) names. */
static struct rdmamig_session *lookup_attr_locked(struct genl_info *info, int type)
{
	struct rdmamig_session *sess;
	u32 id;

	if (REQUIRE(info, type))
		return ERR_PTR(-EINVAL);
	id = nla_get_u32(info->attrs[type]);
	rdmamig_sessions_lock();
	sess = rdmamig_session_find(id);
	if (!sess) {
		rdmamig_sessions_unlock();
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[type],
				    "no session with this id");
		return ERR_PTR(-ENOENT);
	}
	return sess;
}

static struct rdmamig_session *lookup_locked(struct genl_info *info)
{
	return lookup_attr_locked(info, RDMAMIG_ATTR_SESSION_ID);
}

static int nl_get_session(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_session *sess;
	struct sk_buff *msg;
	int ret;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	sess = lookup_locked(info);
	if (IS_ERR(sess)) {
		nlmsg_free(msg);
		return PTR_ERR(sess);
	}
	ret = fill_session(msg, sess, info->snd_portid, info->snd_seq, 0,
			   RDMAMIG_CMD_GET_SESSION, GFP_KERNEL);
	rdmamig_sessions_unlock();
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return genlmsg_reply(msg, info);
}

/*
 * Parameter attributes into @p with @p->mask set; each bad value is
 * refused with a message naming its attribute.
 */
static int parse_params(struct genl_info *info, struct rdmamig_params *p,
			bool started)
{
	struct nlattr **a = info->attrs;
	int ret;

	memset(p, 0, sizeof(*p));
	if (a[RDMAMIG_ATTR_CAPS]) {
		p->caps = nla_get_u64(a[RDMAMIG_ATTR_CAPS]);
		p->mask |= RDMAMIG_PARAM_CAPS;
		if (p->caps & ~RDMAMIG_CAPS_ALL) {
			NL_SET_ERR_MSG_ATTR(info->extack, a[RDMAMIG_ATTR_CAPS],
					    "unknown capability bit");
			return -EINVAL;
		}
	}
	if (a[RDMAMIG_ATTR_MAX_BANDWIDTH]) {
		p->max_bandwidth = nla_get_u64(a[RDMAMIG_ATTR_MAX_BANDWIDTH]);
		p->mask |= RDMAMIG_PARAM_MAX_BANDWIDTH;
	}
	if (a[RDMAMIG_ATTR_MAX_REGISTERED]) {
		p->max_registered = nla_get_u64(a[RDMAMIG_ATTR_MAX_REGISTERED]);
		p->mask |= RDMAMIG_PARAM_MAX_REGISTERED;
		if (p->max_registered < RDMAMIG_CHUNK_SIZE) {
			NL_SET_ERR_MSG_ATTR(info->extack, a[RDMAMIG_ATTR_MAX_REGISTERED],
					    "max-registered below one 1 MiB chunk");
			return -EINVAL;
		}
	}
	if (a[RDMAMIG_ATTR_KEEPALIVE_MS]) {
		p->keepalive_ms = nla_get_u32(a[RDMAMIG_ATTR_KEEPALIVE_MS]);
		p->mask |= RDMAMIG_PARAM_KEEPALIVE;
	}
	if (a[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS]) {
		p->downtime_limit_ms = nla_get_u32(a[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS]);
		p->mask |= RDMAMIG_PARAM_DOWNTIME_LIMIT;
	}
	if (a[RDMAMIG_ATTR_MAX_ROUNDS]) {
		p->max_rounds = nla_get_u32(a[RDMAMIG_ATTR_MAX_ROUNDS]);
		p->mask |= RDMAMIG_PARAM_MAX_ROUNDS;
		if (!p->max_rounds) {
			NL_SET_ERR_MSG_ATTR(info->extack, a[RDMAMIG_ATTR_MAX_ROUNDS],
					    "max-rounds must be at least 1");
			return -EINVAL;
		}
	}
	if (a[RDMAMIG_ATTR_AUTH]) {
		p->auth = nla_get_u32(a[RDMAMIG_ATTR_AUTH]);
		p->mask |= RDMAMIG_PARAM_AUTH;
	}
	if (a[RDMAMIG_ATTR_CHANNELS]) {
		/* The policy bounds it to 1..RDMAMIG_CHANNELS_MAX. */
		p->channels = nla_get_u32(a[RDMAMIG_ATTR_CHANNELS]);
		p->mask |= RDMAMIG_PARAM_CHANNELS;
	}
	ret = rdmamig_params_check(p, started);
	if (ret == -EINVAL && (p->mask & RDMAMIG_PARAM_KEEPALIVE))
		NL_SET_ERR_MSG_ATTR(info->extack, a[RDMAMIG_ATTR_KEEPALIVE_MS],
				    "keepalive must be 0 (off) or 100 to 60000 ms");
	else if (ret == -EBUSY)
		NL_SET_ERR_MSG(info->extack,
			       "only max-bandwidth, downtime-limit and max-rounds change once a session started");
	return ret;
}

static int nl_set_session(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_session *sess;
	struct rdmamig_params p;
	int ret;

	sess = lookup_locked(info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	ret = parse_params(info, &p, true);
	if (ret == -EBUSY)
		ret = -EINVAL;	/* not a state: these never change here */
	if (!ret && !p.mask) {
		NL_SET_ERR_MSG(info->extack, "no parameter to set");
		ret = -EINVAL;
	}
	if (!ret)
		rdmamig_params_apply(&sess->params, &p);
	rdmamig_sessions_unlock();
	return ret;
}

/*
 * Cancelling waits for the session's works to stop, which may take a
 * while: not under the list mutex, which every rdmamig request needs.
 */
static int nl_cancel_session(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_session *sess;

	sess = lookup_locked(info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	rdmamig_session_get(sess);
	rdmamig_sessions_unlock();
	rdmamig_session_cancel(sess);
	rdmamig_session_put(sess);
	return 0;
}

static int nl_get_defaults(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_params p;
	struct sk_buff *msg;
	void *hdr;

	rdmamig_defaults_get(&p);
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0,
				RDMAMIG_CMD_GET_DEFAULTS);
	if (!hdr || put_params(msg, &p)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int nl_set_defaults(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_params p;
	int ret;

	ret = parse_params(info, &p, false);
	if (ret)
		return ret;
	if (!p.mask) {
		NL_SET_ERR_MSG(info->extack, "no parameter to set");
		return -EINVAL;
	}
	rdmamig_defaults_set(&p);
	return 0;
}

/* ---- Sessions over another process's memory ------------------------- */

/*
 * The target's mm, if the caller may ptrace-attach to it.  The kernel does
 * not export its ptrace check to modules, so the caller proves it the way
 * process_vm_writev() would judge it: it opens /proc/PID/mem read-write
 * (mem_open() checks PTRACE_MODE_ATTACH, LSMs included) and passes the fd.
 * That file keeps the mm it checked in ->private_data, which must be the
 * mm of TARGET_PID.
 */
static struct mm_struct *target_mm(struct genl_info *info, pid_t nr, u32 fd)
{
	struct nlattr *attr = info->attrs[RDMAMIG_ATTR_MEM_FD];
	struct mm_struct *mm = ERR_PTR(-EINVAL);
	struct task_struct *task;
	struct file *file;
	struct pid *pid;

	file = fget(fd);
	if (!file) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "MEM_FD is not an open file");
		return ERR_PTR(-EBADF);
	}
	if (file_inode(file)->i_sb->s_magic != PROC_SUPER_MAGIC ||
	    strcmp(file->f_path.dentry->d_name.name, "mem") ||
	    !(file->f_mode & FMODE_WRITE) || !file->private_data) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr,
				    "MEM_FD must be /proc/PID/mem opened read-write");
		goto out;
	}
	pid = find_get_pid(nr);
	task = get_pid_task(pid, PIDTYPE_PID);
	put_pid(pid);
	if (!task) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[RDMAMIG_ATTR_TARGET_PID],
				    "no such process");
		mm = ERR_PTR(-ESRCH);
		goto out;
	}
	mm = get_task_mm(task);
	put_task_struct(task);
	if (!mm) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[RDMAMIG_ATTR_TARGET_PID],
				    "target process has no address space");
		mm = ERR_PTR(-ESRCH);
	} else if (mm != file->private_data) {
		mmput(mm);
		NL_SET_ERR_MSG_ATTR(info->extack, attr,
				    "MEM_FD is not the memory of TARGET_PID");
		mm = ERR_PTR(-EINVAL);
	}
out:
	fput(file);
	return mm;
}

static int add_nl_block(struct rdmamig_session *sess, struct genl_info *info,
			struct nlattr *nest)
{
	struct nlattr *tb[RDMAMIG_ATTR_MAX + 1];
	struct rdmamig_block b = { .size = sizeof(b) };
	int ret;

	ret = nla_parse_nested(tb, RDMAMIG_ATTR_MAX, nest, block_policy,
			       info->extack);
	if (ret)
		return ret;
	if (NL_REQ_ATTR_CHECK(info->extack, nest, tb, RDMAMIG_ATTR_BLOCK_NAME) ||
	    NL_REQ_ATTR_CHECK(info->extack, nest, tb, RDMAMIG_ATTR_BLOCK_ADDR) ||
	    NL_REQ_ATTR_CHECK(info->extack, nest, tb, RDMAMIG_ATTR_BLOCK_LEN)) {
		NL_SET_ERR_MSG(info->extack,
			       "a BLOCK needs BLOCK_NAME, BLOCK_ADDR and BLOCK_LEN");
		return -EINVAL;
	}
	nla_strscpy(b.name, tb[RDMAMIG_ATTR_BLOCK_NAME], sizeof(b.name));
	b.addr = nla_get_u64(tb[RDMAMIG_ATTR_BLOCK_ADDR]);
	b.length = nla_get_u64(tb[RDMAMIG_ATTR_BLOCK_LEN]);
	ret = rdmamig_block_add(sess, &b);
	if (ret == -EEXIST)
		NL_SET_ERR_MSG_ATTR(info->extack, nest, "duplicate block name");
	else if (ret == -EFAULT)
		NL_SET_ERR_MSG_ATTR(info->extack, nest,
				    "block range not mapped in the target");
	else if (ret == -ENOSPC)
		NL_SET_ERR_MSG_ATTR(info->extack, nest, "too many blocks");
	else if (ret)
		NL_SET_ERR_MSG_ATTR(info->extack, nest,
				    "block unaligned, empty, overlapping or badly named");
	return ret;
}

static int nl_new_session(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_session *sess;
	struct rdmamig_params p;
	struct mm_struct *mm;
	struct sk_buff *msg;
	struct nlattr *attr;
	int rem, ret;
	pid_t nr;
	void *hdr;

	if (REQUIRE(info, RDMAMIG_ATTR_TARGET_PID) ||
	    REQUIRE(info, RDMAMIG_ATTR_MEM_FD) ||
	    REQUIRE(info, RDMAMIG_ATTR_ROLE) ||
	    REQUIRE(info, RDMAMIG_ATTR_BLOCK))
		return -EINVAL;
	ret = parse_params(info, &p, false);
	if (ret)
		return ret;
	nr = nla_get_u32(info->attrs[RDMAMIG_ATTR_TARGET_PID]);
	mm = target_mm(info, nr, nla_get_u32(info->attrs[RDMAMIG_ATTR_MEM_FD]));
	if (IS_ERR(mm))
		return PTR_ERR(mm);

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg) {
		mmput(mm);
		return -ENOMEM;
	}
	sess = rdmamig_session_create(mm);
	mmput(mm);
	if (IS_ERR(sess)) {
		nlmsg_free(msg);
		return PTR_ERR(sess);
	}
	sess->target_pid = nr;
	sess->nl_role = nla_get_u32(info->attrs[RDMAMIG_ATTR_ROLE]);
	rdmamig_params_apply(&sess->params, &p);

	mutex_lock(&sess->lock);
	ret = 0;
	if (info->attrs[RDMAMIG_ATTR_SECRET]) {
		ret = rdmamig_auth_set_secret(sess, nla_data(info->attrs[RDMAMIG_ATTR_SECRET]),
					      nla_len(info->attrs[RDMAMIG_ATTR_SECRET]));
		if (ret)
			NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[RDMAMIG_ATTR_SECRET],
					    "cannot key hmac(sha256) with the secret");
	} else if (rdmamig_auth_required(sess)) {
		NL_SET_ERR_MSG(info->extack,
			       "authentication is required and no SECRET was given (or set AUTH off)");
		ret = -ENOKEY;
	}
	nlmsg_for_each_attr(attr, info->nlhdr, GENL_HDRLEN, rem) {
		if (ret)
			break;
		if (nla_type(attr) != RDMAMIG_ATTR_BLOCK)
			continue;
		ret = add_nl_block(sess, info, attr);
		if (ret)
			break;
	}
	mutex_unlock(&sess->lock);
	if (ret)
		goto err;

	hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0,
				RDMAMIG_CMD_NEW_SESSION);
	if (!hdr || nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, sess->id)) {
		ret = -EMSGSIZE;
		goto err;
	}
	genlmsg_end(msg, hdr);
	/*
	 * Owned from here on: closing the socket destroys the session.  Like
	 * an open file, it holds the module: rmmod is refused while it lives.
	 */
	__module_get(THIS_MODULE);
	/* Under the list mutex, where the release notifier looks for owners. */
	rdmamig_sessions_lock();
	sess->nl_net = genl_info_net(info);
	sess->nl_sk = NETLINK_CB(skb).sk;
	sock_hold(sess->nl_sk);
	sess->nl_portid = info->snd_portid;
	rdmamig_sessions_unlock();
	return genlmsg_reply(msg, info);

err:
	nlmsg_free(msg);
	rdmamig_session_destroy(sess);
	return ret;
}

/* The caller's own session @type names. */
static struct rdmamig_session *owned_attr_session(struct sk_buff *skb,
						  struct genl_info *info, int type)
{
	struct rdmamig_session *sess = lookup_attr_locked(info, type);

	if (IS_ERR(sess))
		return sess;
	if (!sess->nl_sk || sess->nl_sk != NETLINK_CB(skb).sk) {
		rdmamig_sessions_unlock();
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[type],
				    "session belongs to another socket or a file");
		return ERR_PTR(-EPERM);
	}
	/* Only our own release frees it: see the top of this file. */
	rdmamig_sessions_unlock();
	return sess;
}

/* The caller's own session, for the requests that drive one. */
static struct rdmamig_session *owned_session(struct sk_buff *skb,
					      struct genl_info *info)
{
	return owned_attr_session(skb, info, RDMAMIG_ATTR_SESSION_ID);
}

static int parse_nl_addr(struct genl_info *info, struct rdmamig_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	if (REQUIRE(info, RDMAMIG_ATTR_HOST))
		return -EINVAL;
	nla_strscpy(a->host, info->attrs[RDMAMIG_ATTR_HOST], sizeof(a->host));
	if (info->attrs[RDMAMIG_ATTR_PORT])
		a->port = nla_get_u32(info->attrs[RDMAMIG_ATTR_PORT]);
	if (info->attrs[RDMAMIG_ATTR_TIMEOUT_MS])
		a->timeout_ms = nla_get_u32(info->attrs[RDMAMIG_ATTR_TIMEOUT_MS]);
	return 0;
}

static int reply_port(struct genl_info *info, u16 port)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0,
				RDMAMIG_CMD_LISTEN);
	if (!hdr || nla_put_u32(msg, RDMAMIG_ATTR_PORT, port)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/*
 * A request a signal interrupted cannot be restarted, and netlink sends
 * no answer at all for -EINTR (netlink_rcv_skb() skips the ACK): report
 * it as ECANCELED, so that the caller is answered.
 */
static int nl_errno(struct genl_info *info, int ret)
{
	if (ret != -ERESTARTSYS && ret != -EINTR)
		return ret;
	NL_SET_ERR_MSG(info->extack, "interrupted by a signal");
	return -ECANCELED;
}

/*
 * A failed request names the session's reason, when it has one.  The
 * extended ACK points at the session's own buffer: the session outlives
 * the ACK, being freed only by this socket's release.
 */
static int session_result(struct genl_info *info, struct rdmamig_session *sess,
			  int ret)
{
	if (ret && sess->reason[0] && info->extack)
		info->extack->_msg = sess->reason;
	return ret;
}

static int nl_drive(struct sk_buff *skb, struct genl_info *info)
{
	u8 cmd = info->genlhdr->cmd;
	struct rdmamig_session *sess;
	struct rdmamig_addr a;
	int ret;

	sess = owned_session(skb, info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	if ((sess->nl_role == RDMAMIG_ROLE_SOURCE) !=
	    (cmd != RDMAMIG_CMD_LISTEN && cmd != RDMAMIG_CMD_ACCEPT)) {
		if (sess->nl_role == RDMAMIG_ROLE_SOURCE)
			NL_SET_ERR_MSG(info->extack,
				       "a source session cannot listen or accept");
		else
			NL_SET_ERR_MSG(info->extack,
				       "a destination session cannot connect or send");
		return -EINVAL;
	}
	if (cmd == RDMAMIG_CMD_LISTEN || cmd == RDMAMIG_CMD_CONNECT) {
		ret = parse_nl_addr(info, &a);
		if (ret)
			return ret;
	}
	if (mutex_lock_interruptible(&sess->lock))
		return nl_errno(info, -EINTR);
	switch (cmd) {
	case RDMAMIG_CMD_LISTEN:
		ret = rdmamig_cm_listen(sess, &a);
		break;
	case RDMAMIG_CMD_ACCEPT:
		ret = rdmamig_cm_accept(sess, info->attrs[RDMAMIG_ATTR_TIMEOUT_MS] ?
					nla_get_u32(info->attrs[RDMAMIG_ATTR_TIMEOUT_MS]) : 0);
		break;
	case RDMAMIG_CMD_CONNECT:
		ret = rdmamig_cm_connect(sess, &a);
		break;
	case RDMAMIG_CMD_END_ROUND:
		ret = rdmamig_mode_end_round(sess);
		break;
	case RDMAMIG_CMD_COMPLETE:
		ret = rdmamig_mode_complete(sess);
		break;
	case RDMAMIG_CMD_POSTCOPY:
		ret = rdmamig_postcopy_src_switch(sess);
		if (ret == -EOPNOTSUPP)
			NL_SET_ERR_MSG(info->extack,
				       "post-copy was not negotiated (CAPS on both ends)");
		else if (ret == -EBUSY)
			NL_SET_ERR_MSG(info->extack,
				       "a pre-copy round is open: END_ROUND first");
		else if (ret == -ENOTCONN)
			NL_SET_ERR_MSG(info->extack, "the session is not connected");
		break;
	default:
		ret = -EOPNOTSUPP;
	}
	mutex_unlock(&sess->lock);
	ret = session_result(info, sess, nl_errno(info, ret));
	if (!ret && cmd == RDMAMIG_CMD_LISTEN)
		return reply_port(info, a.port);
	return ret;
}

static int nl_round(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **at = info->attrs;
	struct rdmamig_session *sess;
	struct rdmamig_round r = { .size = sizeof(r) };
	unsigned long *bitmap;
	int ret;

	if (REQUIRE(info, RDMAMIG_ATTR_BLOCK_INDEX) ||
	    REQUIRE(info, RDMAMIG_ATTR_FIRST_PAGE) ||
	    REQUIRE(info, RDMAMIG_ATTR_BITMAP))
		return -EINVAL;
	sess = owned_session(skb, info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	if (sess->nl_role != RDMAMIG_ROLE_SOURCE) {
		NL_SET_ERR_MSG(info->extack, "a destination session cannot send");
		return -EINVAL;
	}
	r.block = nla_get_u32(at[RDMAMIG_ATTR_BLOCK_INDEX]);
	r.first_page = nla_get_u64(at[RDMAMIG_ATTR_FIRST_PAGE]);
	r.npages = (u64)nla_len(at[RDMAMIG_ATTR_BITMAP]) * BITS_PER_BYTE;
	if (at[RDMAMIG_ATTR_FLAGS])
		r.flags = nla_get_u32(at[RDMAMIG_ATTR_FLAGS]);
	/*
	 * The bitmap may extend past the block's end by padding only.
	 * ADD_BLOCK may run beside us (parallel_ops): the acquire pairs
	 * with rdmamig_block_add()'s release.
	 */
	if (r.block < smp_load_acquire(&sess->nblocks)) {
		u64 bpages = sess->blocks[r.block]->length >> PAGE_SHIFT;

		if (r.first_page < bpages && r.npages > bpages - r.first_page)
			r.npages = bpages - r.first_page;
	}
	/* Copied: attribute data is only 4-byte aligned. */
	bitmap = kvmalloc(round_up(nla_len(at[RDMAMIG_ATTR_BITMAP]), sizeof(long)),
			  GFP_KERNEL);
	if (!bitmap)
		return -ENOMEM;
	memcpy(bitmap, nla_data(at[RDMAMIG_ATTR_BITMAP]),
	       nla_len(at[RDMAMIG_ATTR_BITMAP]));
	if (mutex_lock_interruptible(&sess->lock)) {
		kvfree(bitmap);
		return nl_errno(info, -EINTR);
	}
	/* As SEND_ROUND: owed pages are recorded, the others sent. */
	if (r.flags & RDMAMIG_ROUND_POSTCOPY)
		ret = rdmamig_postcopy_src_owe(sess, &r, bitmap);
	else
		ret = rdmamig_mode_send_round(sess, &r, bitmap);
	mutex_unlock(&sess->lock);
	kvfree(bitmap);
	if (ret == -EINVAL && r.flags == (RDMAMIG_ROUND_POSTCOPY | RDMAMIG_ROUND_FINAL))
		NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_FLAGS],
				    "POSTCOPY and FINAL exclude each other");
	else if (ret == -EINVAL)
		NL_SET_ERR_MSG(info->extack,
			       "block index or page range outside the session's blocks");
	else if (ret == -EOPNOTSUPP)
		NL_SET_ERR_MSG(info->extack,
			       "post-copy was not negotiated (CAPS on both ends)");
	else if (ret == -EBUSY && (r.flags & RDMAMIG_ROUND_POSTCOPY))
		NL_SET_ERR_MSG(info->extack,
			       "a pre-copy round is open: END_ROUND first");
	return session_result(info, sess, nl_errno(info, ret));
}

static int reply_mc_epoch(struct genl_info *info, const struct rdmamig_mc_epoch *e,
			  struct sk_buff *msg)
{
	void *hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0,
				      RDMAMIG_CMD_MC_EPOCH);

	if (!hdr ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_EPOCH, e->epoch, RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_NPAGES, e->pages, RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_SNAPSHOT_US, e->snapshot_us,
			      RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_WAIT_US, e->wait_us, RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_STAGING_PAGES, e->staging_pages,
			      RDMAMIG_ATTR_PAD)) {
		/* Cannot happen with NLMSG_GOODSIZE; the epoch is taken anyway. */
		WARN_ON_ONCE(1);
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/*
 * MC_EPOCH: as RDMAMIG_IOC_MC_EPOCH, for a checkpointing session by pid
 * (rdmamigctl protect).  The rounds, their bitmaps and the device state
 * are in the caller's memory; the pages are the target's, read by
 * mc_src.c while the caller keeps the target stopped.
 */
static int nl_mc_epoch(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_mc_epoch e = { .size = sizeof(e) };
	struct nlattr **at = info->attrs;
	struct rdmamig_session *sess;
	struct sk_buff *msg;
	int ret;

	if (!!at[RDMAMIG_ATTR_ROUNDS] != !!at[RDMAMIG_ATTR_NROUNDS] ||
	    !!at[RDMAMIG_ATTR_BUF] != !!at[RDMAMIG_ATTR_BUF_LEN]) {
		NL_SET_ERR_MSG(info->extack,
			       "ROUNDS and NROUNDS go together, and BUF and BUF_LEN");
		return -EINVAL;
	}
	if (at[RDMAMIG_ATTR_ROUNDS]) {
		e.rounds = nla_get_u64(at[RDMAMIG_ATTR_ROUNDS]);
		e.nrounds = nla_get_u32(at[RDMAMIG_ATTR_NROUNDS]);
	}
	if (at[RDMAMIG_ATTR_BUF]) {
		e.state = nla_get_u64(at[RDMAMIG_ATTR_BUF]);
		e.state_len = nla_get_u64(at[RDMAMIG_ATTR_BUF_LEN]);
		if (e.state_len > RDMAMIG_MC_STATE_MAX) {
			NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_BUF_LEN],
					    "device state of 16 MiB at most");
			return -EINVAL;
		}
	}
	sess = owned_session(skb, info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	if (sess->nl_role != RDMAMIG_ROLE_SOURCE) {
		NL_SET_ERR_MSG(info->extack, "only a source (the primary) takes epochs");
		return -EINVAL;
	}
	/* Allocated first: once the epoch is taken, it is numbered and sent. */
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	if (mutex_lock_interruptible(&sess->lock)) {
		nlmsg_free(msg);
		return nl_errno(info, -EINTR);
	}
	ret = rdmamig_mode_mc_epoch(sess, &e);
	mutex_unlock(&sess->lock);
	if (!ret)
		return reply_mc_epoch(info, &e, msg);
	nlmsg_free(msg);
	if (ret == -EINVAL)
		NL_SET_ERR_MSG(info->extack,
			       "a round outside the session's blocks, or flags set");
	else if (ret == -ENOSPC)
		NL_SET_ERR_MSG(info->extack,
			       "the epoch has more pages than the backup's staging (mc_staging_mb)");
	else if (ret == -EOPNOTSUPP)
		NL_SET_ERR_MSG(info->extack,
			       "checkpointing was not negotiated (CAPS on both ends)");
	else if (ret == -EBUSY)
		NL_SET_ERR_MSG(info->extack, "a pre-copy round is open: END_ROUND first");
	return session_result(info, sess, nl_errno(info, ret));
}

/*
 * POSTCOPY_RESUME: as RDMAMIG_IOC_POSTCOPY_RESUME, both sessions the
 * caller's own.  postcopy.c checks the pair again under the locks; the
 * checks here only name what is wrong.
 */
static int nl_postcopy_resume(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *from = info->attrs[RDMAMIG_ATTR_RESUME_FROM];
	struct rdmamig_session *sess, *old;
	int ret;

	if (REQUIRE(info, RDMAMIG_ATTR_RESUME_FROM))
		return -EINVAL;
	sess = owned_session(skb, info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	old = owned_attr_session(skb, info, RDMAMIG_ATTR_RESUME_FROM);
	if (IS_ERR(old))
		return PTR_ERR(old);
	if (old == sess) {
		NL_SET_ERR_MSG_ATTR(info->extack, from,
				    "a session cannot resume from itself");
		return -EINVAL;
	}
	if (old->nl_role != sess->nl_role) {
		NL_SET_ERR_MSG_ATTR(info->extack, from,
				    "RESUME_FROM is a session of the other role");
		return -EINVAL;
	}
	if (READ_ONCE(old->state) != RDMAMIG_STATE_FAILED) {
		NL_SET_ERR_MSG_ATTR(info->extack, from,
				    "RESUME_FROM names a session that has not failed");
		return -EINVAL;
	}
	if (mutex_lock_interruptible(&sess->lock))
		return nl_errno(info, -EINTR);
	ret = rdmamig_postcopy_resume(sess, old);
	mutex_unlock(&sess->lock);
	/*
	 * The old destination keeps its listening port until the socket
	 * closes (a file's is closed by its VMM): free it for our LISTEN.
	 * Its own lock, not nested in ours: both are sessions' locks.
	 */
	if (!ret && sess->nl_role == RDMAMIG_ROLE_DEST) {
		mutex_lock(&old->lock);
		rdmamig_cm_release_listener(old);
		mutex_unlock(&old->lock);
	}
	if (ret == -EINVAL)
		NL_SET_ERR_MSG_ATTR(info->extack, from,
				    "RESUME_FROM did not fail in post-copy, has other blocks, or was taken over already");
	else if (ret == -EBUSY && sess->nl_role == RDMAMIG_ROLE_SOURCE)
		NL_SET_ERR_MSG(info->extack,
			       "a source resumes once, connected and before POSTCOPY");
	else if (ret == -EBUSY)
		NL_SET_ERR_MSG(info->extack,
			       "a destination resumes once, before LISTEN");
	else if (ret == -EOPNOTSUPP)
		NL_SET_ERR_MSG(info->extack,
			       "post-copy was not negotiated (CAPS on both ends)");
	else if (ret == -ENOMEM)
		NL_SET_ERR_MSG(info->extack, "out of memory for the owed pages' bitmaps");
	return session_result(info, sess, nl_errno(info, ret));
}

/* ---- Post-copy, destination: the faulting side's two calls -------------- */

/*
 * The owner's destination session, for FETCH and OWED.  Like the ioctls
 * they run without the session's lock (postcopy.h): the caller's fault
 * and sweep threads fetch in parallel.
 */
static struct rdmamig_session *postcopy_dst_session(struct sk_buff *skb,
						    struct genl_info *info)
{
	struct rdmamig_session *sess = owned_session(skb, info);

	if (IS_ERR(sess))
		return sess;
	if (sess->nl_role != RDMAMIG_ROLE_DEST) {
		NL_SET_ERR_MSG(info->extack, "FETCH and OWED are for a destination session");
		return ERR_PTR(-EINVAL);
	}
	return sess;
}

/* FETCH and OWED: why the module's own checks refused. */
static int postcopy_dst_result(struct genl_info *info, struct rdmamig_session *sess,
			       int ret)
{
	if (ret == -ENOTCONN && !sess->reason[0])
		NL_SET_ERR_MSG(info->extack,
			       "the session is not in post-copy (not switched yet, or over)");
	else if (ret == -EFAULT)
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[RDMAMIG_ATTR_BUF],
				    "BUF (or RUNS) is not writable memory of the caller");
	return session_result(info, sess, nl_errno(info, ret));
}

/* Is @addr in one of @sess's blocks?  NEW_SESSION added them all. */
static bool in_blocks(struct rdmamig_session *sess, u64 addr)
{
	u32 i, n = smp_load_acquire(&sess->nblocks);

	for (i = 0; i < n; i++)
		if (addr >= sess->blocks[i]->addr &&
		    addr - sess->blocks[i]->addr < sess->blocks[i]->length)
			return true;
	return false;
}

static int nl_fetch(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_fetch f = { .size = sizeof(f) };
	struct nlattr **at = info->attrs;
	struct rdmamig_session *sess;
	struct sk_buff *msg;
	bool sweep;
	void *hdr;
	int ret;

	if (REQUIRE(info, RDMAMIG_ATTR_BUF) || REQUIRE(info, RDMAMIG_ATTR_BUF_LEN))
		return -EINVAL;
	if (at[RDMAMIG_ATTR_FLAGS])
		f.flags = nla_get_u32(at[RDMAMIG_ATTR_FLAGS]);
	sweep = f.flags & RDMAMIG_FETCH_SWEEP;
	f.buf = nla_get_u64(at[RDMAMIG_ATTR_BUF]);
	f.buf_len = nla_get_u64(at[RDMAMIG_ATTR_BUF_LEN]);
	if (!PAGE_ALIGNED(f.buf)) {
		NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_BUF],
				    "BUF must be page-aligned");
		return -EINVAL;
	}
	if (!f.buf_len || !PAGE_ALIGNED(f.buf_len) || f.buf_len > RDMAMIG_FETCH_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_BUF_LEN],
				    "BUF_LEN must be a page multiple, 1 MiB at most");
		return -EINVAL;
	}
	if (!sweep && REQUIRE(info, RDMAMIG_ATTR_ADDR))
		return -EINVAL;
	if (sweep && at[RDMAMIG_ATTR_ADDR]) {
		NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_ADDR],
				    "a sweep takes no ADDR: the module picks the pages");
		return -EINVAL;
	}
	if (!!at[RDMAMIG_ATTR_RUNS] != !!at[RDMAMIG_ATTR_NRUNS] ||
	    (at[RDMAMIG_ATTR_RUNS] && !sweep)) {
		NL_SET_ERR_MSG(info->extack, "RUNS and NRUNS go together, with a sweep only");
		return -EINVAL;
	}
	if (at[RDMAMIG_ATTR_RUNS]) {
		f.runs = nla_get_u64(at[RDMAMIG_ATTR_RUNS]);
		f.nruns = nla_get_u32(at[RDMAMIG_ATTR_NRUNS]);
	}
	sess = postcopy_dst_session(skb, info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	if (!sweep) {
		f.addr = nla_get_u64(at[RDMAMIG_ATTR_ADDR]);
		if (!in_blocks(sess, f.addr)) {
			NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_ADDR],
					    "ADDR is in none of the session's blocks");
			return -EFAULT;
		}
	}
	/*
	 * Allocated first: once FETCH returns, its pages count as read, and
	 * an answer that cannot be built would lose them.
	 */
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	ret = rdmamig_postcopy_dst_fetch(sess, &f);
	if (ret == -ENOENT)
		NL_SET_ERR_MSG_ATTR(info->extack, at[RDMAMIG_ATTR_ADDR],
				    "page never owed: sent before the switch, or never written");
	if (ret) {
		nlmsg_free(msg);
		return postcopy_dst_result(info, sess, ret);
	}
	hdr = genlmsg_put_reply(msg, info, &rdmamig_genl_family, 0, RDMAMIG_CMD_FETCH);
	if (!hdr ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_START, f.start, RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_NPAGES, f.npages, RDMAMIG_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, RDMAMIG_ATTR_REMAINING, f.remaining, RDMAMIG_ATTR_PAD) ||
	    (f.runs && nla_put_u32(msg, RDMAMIG_ATTR_NRUNS, f.nruns))) {
		/* Cannot happen with NLMSG_GOODSIZE: the pages would be lost. */
		WARN_ON_ONCE(1);
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int nl_owed(struct sk_buff *skb, struct genl_info *info)
{
	struct rdmamig_round r = { .size = sizeof(r) };
	struct nlattr **at = info->attrs;
	struct rdmamig_session *sess;
	int ret;

	if (REQUIRE(info, RDMAMIG_ATTR_BLOCK_INDEX) ||
	    REQUIRE(info, RDMAMIG_ATTR_FIRST_PAGE) ||
	    REQUIRE(info, RDMAMIG_ATTR_NPAGES) ||
	    REQUIRE(info, RDMAMIG_ATTR_BUF))
		return -EINVAL;
	sess = postcopy_dst_session(skb, info);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	r.block = nla_get_u32(at[RDMAMIG_ATTR_BLOCK_INDEX]);
	r.first_page = nla_get_u64(at[RDMAMIG_ATTR_FIRST_PAGE]);
	r.npages = nla_get_u64(at[RDMAMIG_ATTR_NPAGES]);
	r.bitmap = nla_get_u64(at[RDMAMIG_ATTR_BUF]);
	ret = rdmamig_postcopy_dst_owed(sess, &r);
	if (ret == -EINVAL)
		NL_SET_ERR_MSG(info->extack,
			       "block index or page range outside the session's blocks");
	return postcopy_dst_result(info, sess, ret);
}

/* ---- Events ------------------------------------------------------------ */

/* From any context, without session locks held. */
static void nl_notify(struct rdmamig_session *sess, enum rdmamig_notify what)
{
	static const u8 cmds[] = {
		[RDMAMIG_NOTIFY_STATE] = RDMAMIG_CMD_EVENT_STATE,
		[RDMAMIG_NOTIFY_ROUND] = RDMAMIG_CMD_EVENT_ROUND,
		[RDMAMIG_NOTIFY_MC] = RDMAMIG_CMD_EVENT_MC,
	};
	u8 cmd = cmds[what];
	struct sk_buff *msg;

	/* Sessions are not tied to a namespace: tell listeners in every one. */
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!msg)
		return;
	if (fill_session(msg, sess, 0, 0, 0, cmd, GFP_ATOMIC)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_multicast_allns(&rdmamig_genl_family, msg, 0,
				RDMAMIG_MCGRP_EVENTS_ID);
}

static int nl_sock_released(struct notifier_block *nb, unsigned long event,
			    void *ptr)
{
	struct netlink_notify *n = ptr;

	if (event == NETLINK_URELEASE && n->protocol == NETLINK_GENERIC && n->portid)
		rdmamig_sessions_destroy_owned(n->net, n->portid);
	return NOTIFY_DONE;
}

static struct notifier_block nl_release_nb = {
	.notifier_call = nl_sock_released,
};

/* ---- The family --------------------------------------------------------- */

#define DRIVE_OP(c, pol)						\
	{ .cmd = (c), .doit = nl_drive, .policy = (pol),		\
	  .maxattr = RDMAMIG_ATTR_MAX, .flags = GENL_ADMIN_PERM }

static const struct genl_ops rdmamig_genl_ops[] = {
	{
		.cmd = RDMAMIG_CMD_GET_VERSION,
		.doit = nl_get_version,
	},
	{
		.cmd = RDMAMIG_CMD_GET_DEV,
		.dumpit = nl_dump_dev,
	},
	{
		.cmd = RDMAMIG_CMD_GET_SESSION,
		.doit = nl_get_session,
		.dumpit = nl_dump_session,
		.policy = session_id_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
	},
	{
		.cmd = RDMAMIG_CMD_SET_SESSION,
		.doit = nl_set_session,
		.policy = set_session_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_CANCEL_SESSION,
		.doit = nl_cancel_session,
		.policy = session_id_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_GET_DEFAULTS,
		.doit = nl_get_defaults,
	},
	{
		.cmd = RDMAMIG_CMD_SET_DEFAULTS,
		.doit = nl_set_defaults,
		.policy = defaults_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_NEW_SESSION,
		.doit = nl_new_session,
		.policy = new_session_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	DRIVE_OP(RDMAMIG_CMD_LISTEN, addr_policy),
	DRIVE_OP(RDMAMIG_CMD_ACCEPT, addr_policy),
	DRIVE_OP(RDMAMIG_CMD_CONNECT, addr_policy),
	DRIVE_OP(RDMAMIG_CMD_END_ROUND, session_id_policy),
	DRIVE_OP(RDMAMIG_CMD_COMPLETE, session_id_policy),
	DRIVE_OP(RDMAMIG_CMD_POSTCOPY, session_id_policy),
	{
		.cmd = RDMAMIG_CMD_FETCH,
		.doit = nl_fetch,
		.policy = fetch_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_OWED,
		.doit = nl_owed,
		.policy = owed_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_POSTCOPY_RESUME,
		.doit = nl_postcopy_resume,
		.policy = resume_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_MC_EPOCH,
		.doit = nl_mc_epoch,
		.policy = mc_epoch_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = RDMAMIG_CMD_ROUND,
		.doit = nl_round,
		.policy = round_policy,
		.maxattr = RDMAMIG_ATTR_MAX,
		.flags = GENL_ADMIN_PERM,
	},
};

static struct genl_family rdmamig_genl_family __ro_after_init = {
	.name = RDMAMIG_GENL_NAME,
	.version = RDMAMIG_GENL_VERSION,
	.maxattr = RDMAMIG_ATTR_MAX,
	.netnsok = true,
	/* Migrations block in CONNECT and ROUND: never under genl_mutex. */
	.parallel_ops = true,
	.module = THIS_MODULE,
	.ops = rdmamig_genl_ops,
	.n_ops = ARRAY_SIZE(rdmamig_genl_ops),
	.mcgrps = rdmamig_mcgrps,
	.n_mcgrps = ARRAY_SIZE(rdmamig_mcgrps),
	/* resv_start_op stays 0: ops without a policy reject every attribute. */
};

int __init rdmamig_netlink_init(void)
{
	int ret;

	ret = netlink_register_notifier(&nl_release_nb);
	if (ret)
		return ret;
	ret = genl_register_family(&rdmamig_genl_family);
	if (ret) {
		netlink_unregister_notifier(&nl_release_nb);
		return ret;
	}
	rdmamig_session_set_notifier(nl_notify);
	return 0;
}

void rdmamig_netlink_exit(void)
{
	rdmamig_session_set_notifier(NULL);
	genl_unregister_family(&rdmamig_genl_family);
	netlink_unregister_notifier(&nl_release_nb);
	/* No socket can drive them any more: free what sockets left. */
	rdmamig_sessions_destroy_owned(NULL, 0);
}
