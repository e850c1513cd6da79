// SPDX-License-Identifier: GPL-2.0
/*
 * Connection management with rdma_cm: listen and accept (destination),
 * connect (source), version and capability negotiation in the private
 * data, and the RDMA resources of a connection (PD, CQ, QP, control
 * buffers) with their teardown.
 */
#include "rdmamig.h"

#include <linux/inet.h>
#include <linux/slab.h>
#include <rdma/rw.h>
#include <rdma/ib_cm.h>

#include "hostile.h"
#include "proto.h"
#include "session.h"
#include "auth.h"
#include "block.h"
#include "chan.h"
#include "cm.h"
#include "conn.h"
#include "ctrl.h"
#include "mode.h"
#include "xfer.h"

#define CM_TIMEOUT_MS		5000
#define DEFAULT_WAIT_MS		30000

static int cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev);

static void set_cm_status(struct rdmamig_session *sess, int status)
{
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	sess->cm_status = status;
	spin_unlock_irqrestore(&sess->slock, flags);
	wake_up_all(&sess->wait);
}

static void fill_priv(struct rdmamig_session *sess, struct rdmamig_cm_priv *p,
		      u8 version, u32 caps, u32 keepalive_ms, u8 status)
{
	memset(p, 0, sizeof(*p));
	p->magic = cpu_to_be32(RDMAMIG_WIRE_MAGIC);
	p->version = version;
	p->status = status;
	p->credits = cpu_to_be16(RDMAMIG_RX_DEPTH);
	p->caps = cpu_to_be32(caps);
	p->keepalive_ms = cpu_to_be32(keepalive_ms);
}

static bool keepalive_valid(u32 ms)
{
	return !ms || (ms >= RDMAMIG_KEEPALIVE_MIN_MS && ms <= RDMAMIG_KEEPALIVE_MAX_MS);
}

/* The device the session's ids are bound to; see sessions_device_removed(). */
static void set_ibdev(struct rdmamig_session *sess, struct ib_device *dev)
{
	unsigned long flags;

	spin_lock_irqsave(&sess->slock, flags);
	sess->ibdev = dev;
	spin_unlock_irqrestore(&sess->slock, flags);
}

static const char *reject_reason(u8 status)
{
	switch (status) {
	case RDMAMIG_REJ_BAD_MAGIC:
		return "not an rdmamig peer";
	case RDMAMIG_REJ_BAD_VERSION:
		return "no common protocol version";
	case RDMAMIG_REJ_BUSY:
		return "destination session already has a source";
	case RDMAMIG_REJ_NO_RESOURCES:
		return "destination could not set up the connection";
	case RDMAMIG_REJ_AUTH_REQUIRED:
		return "destination requires authentication, the source offered none (give both ends the same secret)";
	default:
		return "unknown reason";
	}
}

static int dst_reject(struct rdma_cm_id *id, struct rdmamig_session *sess,
		      u8 status)
{
	struct rdmamig_cm_priv p;

	fill_priv(sess, &p, RDMAMIG_WIRE_VERSION, 0, 0, status);
	rdma_reject(id, &p, sizeof(p), IB_CM_REJ_CONSUMER_DEFINED);
	sess_warn_rl(sess, "rejected a connection: %s\n", reject_reason(status));
	/* Non-zero: the CM destroys the new id. */
	return -ECONNREFUSED;
}

/*
 * Destination, pull: the RDMA READs we may have outstanding, the least of
 * the source's responder resources (the CM hands them to us as our
 * initiator depth) and what our device can issue.
 */
static u8 read_depth(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	return min_t(u32, ev->param.conn.initiator_depth,
		     id->device->attrs.max_qp_init_rd_atom);
}

/* Destination: a source asks to connect. */
static int dst_connect_request(struct rdmamig_session *sess,
			       struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	const struct rdmamig_cm_priv *req = ev->param.conn.private_data;
	struct rdma_conn_param param = {};
	struct rdmamig_cm_accept acc = {};
	u32 want, allowed, ka, offer = 1;
	u8 version;
	int ret;

	if (sess->conn.cm_id || READ_ONCE(sess->state) != RDMAMIG_STATE_SETUP)
		return dst_reject(id, sess, RDMAMIG_REJ_BUSY);
	if (ev->param.conn.private_data_len < sizeof(*req) ||
	    be32_to_cpu(req->magic) != RDMAMIG_WIRE_MAGIC)
		return dst_reject(id, sess, RDMAMIG_REJ_BAD_MAGIC);
	if (req->version < 1)
		return dst_reject(id, sess, RDMAMIG_REJ_BAD_VERSION);
	/* A newer source speaks our version too: answer with ours. */
	version = min_t(u8, req->version, RDMAMIG_WIRE_VERSION);
	if (be16_to_cpu(req->credits) < 2 ||
	    be16_to_cpu(req->credits) > RDMAMIG_MAX_REPEAT)
		return dst_reject(id, sess, RDMAMIG_REJ_BAD_MAGIC);
	/* Interval arithmetic (deadlines, pacing) assumes at most 60 s. */
	ka = be32_to_cpu(req->keepalive_ms);
	if (!keepalive_valid(ka))
		return dst_reject(id, sess, RDMAMIG_REJ_BAD_MAGIC);

	want = be32_to_cpu(req->caps);
	allowed = sess->params.caps & (RDMAMIG_WIRE_CAP_PIN_ALL | RDMAMIG_WIRE_CAP_PULL |
				       RDMAMIG_WIRE_CAP_POSTCOPY | RDMAMIG_WIRE_CAP_MC);
	if (rdmamig_xfer_sparse())
		allowed |= RDMAMIG_WIRE_CAP_SPARSE;
	/* Refused before anything is allocated: the listener stays. */
	if (rdmamig_auth_required(sess)) {
		if (!(want & RDMAMIG_WIRE_CAP_AUTH))
			return dst_reject(id, sess, RDMAMIG_REJ_AUTH_REQUIRED);
		allowed |= RDMAMIG_WIRE_CAP_AUTH;
	}
	/* Unknown bits and what we do not allow are answered with zero. */
	sess->caps = want & RDMAMIG_WIRE_CAPS_KNOWN & allowed;
	/*
	 * Pull: the source registers what each window dirtied, and we
	 * register nothing, so neither pin-all nor sparse keys (both about
	 * our registrations) mean anything with it.  A source that asks for
	 * pull and pin-all, of a destination that allows both, gets pull:
	 * asking for pull is asking for its way of registering.
	 */
	if (!read_depth(id, ev))		/* no READ could be answered */
		sess->caps &= ~(RDMAMIG_WIRE_CAP_PULL | RDMAMIG_WIRE_CAP_POSTCOPY);
	/*
	 * Checkpointing is a mode of its own (mc_src.c, mc_dst.c), written
	 * by the source into our staging: neither pull nor post-copy, which
	 * end a migration another way, go with it.
	 */
	if (sess->caps & RDMAMIG_WIRE_CAP_MC)
		sess->caps &= ~(RDMAMIG_WIRE_CAP_PULL | RDMAMIG_WIRE_CAP_POSTCOPY);
	if (sess->caps & RDMAMIG_WIRE_CAP_PULL)
		sess->caps &= ~(RDMAMIG_WIRE_CAP_PIN_ALL | RDMAMIG_WIRE_CAP_SPARSE);
	/* Sparse keys are a kind of dynamic registration. */
	if (sess->caps & RDMAMIG_WIRE_CAP_PIN_ALL)
		sess->caps &= ~RDMAMIG_WIRE_CAP_SPARSE;
	if ((want & RDMAMIG_WIRE_CAP_PULL) && !(sess->caps & RDMAMIG_WIRE_CAP_PULL))
		sess_info(sess, "source asked for pull, not allowed here: it writes (push)\n");
	if ((want & RDMAMIG_WIRE_CAP_PIN_ALL) &&
	    !(sess->caps & (RDMAMIG_WIRE_CAP_PIN_ALL | RDMAMIG_WIRE_CAP_PULL)))
		sess_info(sess, "source asked for pin-all, not allowed here: dynamic registration\n");
	if ((want & RDMAMIG_WIRE_CAP_POSTCOPY) && !(sess->caps & RDMAMIG_WIRE_CAP_POSTCOPY))
		sess_info(sess, "source asked for post-copy, not allowed here\n");
	if ((want & RDMAMIG_WIRE_CAP_MC) && !(sess->caps & RDMAMIG_WIRE_CAP_MC))
		sess_info(sess, "source asked for checkpointing, not allowed here\n");
	sess->conn.keepalive_ms = (ka && sess->params.keepalive_ms) ?
			     max(ka, sess->params.keepalive_ms) : 0;
	sess->wire_version = version;
	sess->conn.peer_depth = be16_to_cpu(req->credits);
	sess->conn.credits = sess->conn.peer_depth;
	/*
	 * Channels: at most what we allow.  A source that predates them sent
	 * zeroes there (or nothing): one channel; an offer over the maximum
	 * is an offer of the maximum, like unknown capability bits.
	 */
	if (ev->param.conn.private_data_len >= sizeof(struct rdmamig_cm_request))
		offer = ((const struct rdmamig_cm_request *)req)->ext.channels ?: 1;
	sess->conn.chan_granted = clamp_t(u32, min(offer, sess->params.channels), 1,
				     RDMAMIG_CHANNELS_MAX);

	ret = rdmamig_conn_create(sess, id);
	if (ret)
		goto err;
	rdmamig_mode_select(sess);
	sess->conn.cm_id = id;
	snprintf(sess->peer_addr, sizeof(sess->peer_addr), "%pISpc",
		 &id->route.addr.dst_addr);

	fill_priv(sess, &acc.priv, version, sess->caps,
		  rdmamig_hostile_keepalive(sess, sess->conn.keepalive_ms), 0);
	acc.ext.channels = sess->conn.chan_granted;
	if (sess->caps & RDMAMIG_WIRE_CAP_AUTH) {
		rdmamig_auth_challenge(&acc.priv);
		sess->auth_req = *req;
		sess->auth_rep = acc.priv;
		ret = rdmamig_auth_dst_mac(sess, acc.mac);
		if (ret) {
			sess->conn.cm_id = NULL;
			goto err;
		}
		/* Before the accept: the source's first message checks it. */
		WRITE_ONCE(sess->auth_pending, true);
	}
	rdmamig_hostile_arm(sess);
	param.private_data = &acc;
	param.private_data_len = sizeof(acc);
	/*
	 * Pull and post-copy: we issue RDMA READs, read_depth() at once.
	 * The CM gives the same depth to the source's QPs as responder,
	 * and rdma_init_qp_attr() to the extra channels.  Without either,
	 * 0 as always: no READ is allowed on the connection.
	 */
	if (sess->caps & (RDMAMIG_WIRE_CAP_PULL | RDMAMIG_WIRE_CAP_POSTCOPY))
		param.initiator_depth = read_depth(id, ev);
	param.rnr_retry_count = 7;
	param.retry_count = 7;
	ret = rdmamig_hostile_accept(sess) ?: rdma_accept(id, &param);
	if (ret) {
		sess->conn.cm_id = NULL;
		goto err;
	}
	return 0;

err:
	/*
	 * The QP never connected: only its receives are posted, and they
	 * can only be flushed, which rdmamig_conn_destroy() lets finish (QP,
	 * then CQ) before it frees their buffers (hostile mode 23).  The CM
	 * destroys @id; the listener stays.
	 */
	id->qp = NULL;
	rdmamig_conn_destroy(sess);
	dst_reject(id, sess, RDMAMIG_REJ_NO_RESOURCES);
	return ret;
}

/* Source: the destination accepted; check what it answered. */
static int src_established(struct rdmamig_session *sess,
			   struct rdma_cm_event *ev)
{
	const struct rdmamig_cm_accept *acc = ev->param.conn.private_data;
	const struct rdmamig_cm_priv *rep = &acc->priv;
	u32 caps, asked, granted = 0;
	int ret;

	if (ev->param.conn.private_data_len < offsetof(struct rdmamig_cm_accept, ext) ||
	    be32_to_cpu(rep->magic) != RDMAMIG_WIRE_MAGIC) {
		rdmamig_session_fail(sess, -EPROTO, false,
				     "destination answered without rdmamig private data");
		return -EPROTO;
	}
	if (rep->version < 1 || rep->version > sess->params.wire_version) {
		rdmamig_session_fail(sess, -EPROTO, false,
				     "destination chose protocol version %u, we offered %u",
				     rep->version, sess->params.wire_version);
		return -EPROTO;
	}
	caps = be32_to_cpu(rep->caps);
	asked = be32_to_cpu(sess->auth_req.caps);
	if (caps & ~asked) {
		rdmamig_session_fail(sess, -EPROTO, false,
				     "destination granted capabilities 0x%x we did not ask for",
				     caps);
		return -EPROTO;
	}
	if ((sess->params.caps & RDMAMIG_CAP_PIN_ALL) && !(caps & RDMAMIG_WIRE_CAP_PIN_ALL))
		sess_info(sess, "%s\n", (caps & RDMAMIG_WIRE_CAP_PULL) ?
			  "pull granted, pin-all does not apply" :
			  "destination declined pin-all: dynamic registration");
	if ((sess->params.caps & RDMAMIG_CAP_PULL) && !(caps & RDMAMIG_WIRE_CAP_PULL))
		sess_info(sess, "destination declined pull: we write (push)\n");
	if ((sess->params.caps & RDMAMIG_CAP_POSTCOPY) && !(caps & RDMAMIG_WIRE_CAP_POSTCOPY))
		sess_info(sess, "destination declined post-copy\n");
	if ((sess->params.caps & RDMAMIG_CAP_MC) && !(caps & RDMAMIG_WIRE_CAP_MC))
		sess_info(sess, "destination declined checkpointing\n");
	sess->caps = caps;
	sess->wire_version = rep->version;
	sess->conn.keepalive_ms = be32_to_cpu(rep->keepalive_ms);
	sess->conn.peer_depth = be16_to_cpu(rep->credits);
	if (sess->conn.peer_depth < 2 || sess->conn.peer_depth > RDMAMIG_MAX_REPEAT) {
		rdmamig_session_fail(sess, -EPROTO, false,
				     "destination announced %d receive buffers",
				     sess->conn.peer_depth);
		return -EPROTO;
	}
	sess->conn.credits = sess->conn.peer_depth;
	/* Chosen from our offer: 0 if we offered none, else within range. */
	if (!keepalive_valid(sess->conn.keepalive_ms) ||
	    (sess->conn.keepalive_ms && !be32_to_cpu(sess->auth_req.keepalive_ms))) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "destination chose a keepalive of %u ms",
				     sess->conn.keepalive_ms);
		return -EPROTO;
	}
	/* A destination that predates channels answers zero: one. */
	if (ev->param.conn.private_data_len >= sizeof(*acc))
		granted = acc->ext.channels;
	granted = granted ?: 1;
	if (granted > sess->params.channels) {
		rdmamig_session_fail(sess, -EPROTO, true,
				     "destination granted %u channels, we offered %u",
				     granted, sess->params.channels);
		return -EPROTO;
	}
	sess->conn.chan_granted = granted;
	/* Checked last: with the credits known, the failure reaches the peer. */
	if (rdmamig_auth_required(sess)) {
		if (!(caps & RDMAMIG_WIRE_CAP_AUTH)) {
			rdmamig_session_fail(sess, -EACCES, true,
					     "destination does not authenticate (its authentication is off), this source requires it");
			return -EACCES;
		}
		sess->auth_rep = *rep;
		ret = rdmamig_auth_check_dst(sess, acc->mac);
		if (ret) {
			rdmamig_session_fail(sess, ret, true,
					     "destination %pISpc failed authentication: %s",
					     &sess->conn.cm_id->route.addr.dst_addr,
					     ret == -EACCES ? "it does not hold this session's secret" :
					     "HMAC computation failed");
			return ret;
		}
		spin_lock_irq(&sess->slock);
		sess->authenticated = true;
		spin_unlock_irq(&sess->slock);
	}
	rdmamig_mode_select(sess);
	return 0;
}

static void src_rejected(struct rdmamig_session *sess, struct rdma_cm_id *id,
			 struct rdma_cm_event *ev)
{
	const struct rdmamig_cm_priv *p;
	u8 len = 0;

	p = rdma_consumer_reject_data(id, ev, &len);
	if (p && len >= sizeof(*p) && be32_to_cpu(p->magic) == RDMAMIG_WIRE_MAGIC) {
		if (p->status == RDMAMIG_REJ_AUTH_REQUIRED)
			rdmamig_session_fail(sess, -EACCES, false, "destination refused: %s",
					     reject_reason(p->status));
		else if (p->status == RDMAMIG_REJ_BAD_VERSION)
			rdmamig_session_fail(sess, -ECONNREFUSED, false,
					     "destination refused: no common protocol version (offered %u, it speaks up to %u)",
					     sess->params.wire_version, p->version);
		else
			rdmamig_session_fail(sess, -ECONNREFUSED, false,
					     "destination refused: %s",
					     reject_reason(p->status));
		return;
	}
	rdmamig_session_fail(sess, -ECONNREFUSED, false, "connection refused: %s",
			     rdma_reject_msg(id, ev->status));
}

static int src_route_resolved(struct rdmamig_session *sess,
			      struct rdma_cm_id *id)
{
	struct rdma_conn_param param = {};
	struct rdmamig_cm_request req = {};
	u32 caps;
	int ret;

	ret = rdmamig_conn_create(sess, id);
	if (ret)
		return ret;
	caps = sess->params.caps & (RDMAMIG_WIRE_CAP_PIN_ALL | RDMAMIG_WIRE_CAP_PULL |
				    RDMAMIG_WIRE_CAP_POSTCOPY | RDMAMIG_WIRE_CAP_MC);
	if (rdmamig_auth_required(sess))
		caps |= RDMAMIG_WIRE_CAP_AUTH;
	if (rdmamig_xfer_sparse())
		caps |= RDMAMIG_WIRE_CAP_SPARSE;
	fill_priv(sess, &req.priv, sess->params.wire_version, caps,
		  rdmamig_hostile_keepalive(sess, sess->params.keepalive_ms), 0);
	if (caps & RDMAMIG_WIRE_CAP_AUTH)
		rdmamig_auth_challenge(&req.priv);
	req.ext.channels = sess->params.channels;
	sess->auth_req = req.priv;
	param.private_data = &req;
	param.private_data_len = sizeof(req);
	/*
	 * Offering pull or post-copy: the destination may read from us,
	 * with as many READs outstanding as our device answers at once (0
	 * otherwise, as always: a push connection allows no READ).
	 */
	if (caps & (RDMAMIG_WIRE_CAP_PULL | RDMAMIG_WIRE_CAP_POSTCOPY))
		param.responder_resources = min_t(u32, id->device->attrs.max_qp_rd_atom,
						  U8_MAX);
	param.rnr_retry_count = 7;
	param.retry_count = 7;
	return rdma_connect_locked(id, &param);
}

/*
 * One handler for the listener and the connection.  It never takes
 * sess->lock (the ioctl waiting for it holds it); teardown stops it with
 * sess->closing and rdma_lock_handler().  Return non-zero only for an id
 * the session does not keep: the CM then destroys it.
 */
static int cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct rdmamig_session *sess = id->context;
	int ret;

	if (READ_ONCE(sess->closing)) {
		/* A new id not yet ours is destroyed by the CM. */
		return ev->event == RDMA_CM_EVENT_CONNECT_REQUEST ? -ECONNREFUSED : 0;
	}

	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		return dst_connect_request(sess, id, ev);
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		/*
		 * The id is bound to the device from now on, whatever fails
		 * next: the ib_client's .remove must find the session (rdma_cm
		 * waits for the id's destruction before the device can go).
		 */
		set_ibdev(sess, id->device);
		ret = rdma_resolve_route(id, CM_TIMEOUT_MS);
		if (ret)
			set_cm_status(sess, ret);
		return 0;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		ret = src_route_resolved(sess, id);
		if (ret)
			set_cm_status(sess, ret);
		return 0;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (sess->role == RDMAMIG_ROLE_SOURCE && src_established(sess, ev))
			return 0;
		set_cm_status(sess, 1);
		return 0;
	case RDMA_CM_EVENT_REJECTED:
		/* After ESTABLISHED, a reject is the peer going away. */
		if (READ_ONCE(sess->cm_status) == 1) {
			rdmamig_ctrl_peer_disconnected(sess);
			return 0;
		}
		src_rejected(sess, id, ev);
		set_cm_status(sess, -ECONNREFUSED);
		return 0;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		rdmamig_session_fail(sess, -EHOSTUNREACH, false, "cannot reach peer: %s",
				     rdma_event_msg(ev->event));
		set_cm_status(sess, -EHOSTUNREACH);
		return 0;
	case RDMA_CM_EVENT_DISCONNECTED:
		rdmamig_ctrl_peer_disconnected(sess);
		return 0;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		/* The ib_client's .remove tears the session down. */
		return 0;
	default:
		return 0;
	}
}

static int parse_addr(struct rdmamig_addr *ua, struct sockaddr_storage *ss)
{
	size_t len = strnlen(ua->host, sizeof(ua->host));
	char port[8];

	if (ua->flags || ua->reserved || !len || len == sizeof(ua->host))
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", ua->port);
	/*
	 * An address literal only.  Asked for either family, the parser
	 * takes "192.0.2.1:1" as 192.0.2.1: with a colon it must be IPv6.
	 */
	if (!strchr(ua->host, ':')) {
		if (strspn(ua->host, "0123456789.") != len)
			return -EINVAL;
		return inet_pton_with_scope(&init_net, AF_INET, ua->host, port, ss);
	}
	return inet_pton_with_scope(&init_net, AF_INET6, ua->host, port, ss);
}

/* Capture the owner's pinning rights while we run in its context. */
static void capture_owner(struct rdmamig_session *sess)
{
	sess->memlock_pages = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	sess->ipc_lock = capable(CAP_IPC_LOCK);
}

static int start_session(struct rdmamig_session *sess, enum rdmamig_role role)
{
	unsigned long flags;
	bool started;
	int ret;

	if (!sess->nblocks)
		return -EINVAL;
	if (!sess->conn.wq) {
		ret = rdmamig_conn_alloc_wq(sess);
		if (ret)
			return ret;
	}
	/* A cancel since the caller looked at the state wins. */
	spin_lock_irqsave(&sess->slock, flags);
	started = rdmamig_session_change_state_locked(sess, RDMAMIG_STATE_SETUP);
	if (started) {
		sess->role = role;
		sess->t_start = ktime_get();
	}
	spin_unlock_irqrestore(&sess->slock, flags);
	if (!started)
		return rdmamig_session_error(sess) ?: -EBUSY;
	rdmamig_session_notify(sess, RDMAMIG_NOTIFY_STATE);
	return 0;
}

static unsigned long wait_jiffies(u32 ms)
{
	return msecs_to_jiffies(ms ?: DEFAULT_WAIT_MS);
}

int rdmamig_cm_listen(struct rdmamig_session *sess, struct rdmamig_addr *ua)
{
	struct sockaddr_storage ss;
	struct rdma_cm_id *id;
	unsigned long flags;
	u64 need;
	int ret;

	lockdep_assert_held(&sess->lock);
	/* A cancelled or failed session says so; a started one is busy. */
	if (sess->state != RDMAMIG_STATE_NONE)
		return rdmamig_session_error(sess) ?: -EBUSY;
	ret = parse_addr(ua, &ss);
	if (ret)
		return ret;
	if (!sess->nblocks)
		return -EINVAL;
	if (rdmamig_auth_required(sess) && !sess->auth_tfm)
		return -ENOKEY;

	capture_owner(sess);
	need = (sess->params.caps & RDMAMIG_CAP_PIN_ALL) ?
	       rdmamig_blocks_bytes(sess, NULL) :
	       min(sess->params.max_registered, rdmamig_blocks_bytes(sess, NULL));
	ret = rdmamig_memlock_check(sess, need);
	if (ret)
		return ret;

	id = rdma_create_id(&init_net, cm_handler, sess, RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id))
		return PTR_ERR(id);
	ret = rdma_bind_addr(id, (struct sockaddr *)&ss);
	if (ret)
		goto err_id;
	ret = rdma_listen(id, 1);
	if (ret)
		goto err_id;
	ret = start_session(sess, RDMAMIG_ROLE_DEST);
	if (ret)
		goto err_id;

	if (ss.ss_family == AF_INET6)
		ua->port = ntohs(((struct sockaddr_in6 *)&id->route.addr.src_addr)->sin6_port);
	else
		ua->port = ntohs(((struct sockaddr_in *)&id->route.addr.src_addr)->sin_port);
	spin_lock_irqsave(&sess->slock, flags);
	sess->ibdev = id->device;
	spin_unlock_irqrestore(&sess->slock, flags);
	sess->listen_id = id;
	snprintf(sess->local_addr, sizeof(sess->local_addr), "%pISpc",
		 &id->route.addr.src_addr);
	sess_info(sess, "listening on %s\n", sess->local_addr);
	return 0;

err_id:
	rdma_destroy_id(id);
	return ret;
}

/* Destination: wait until a source connected and its blocks matched. */
int rdmamig_cm_accept(struct rdmamig_session *sess, unsigned long timeout_ms)
{
	int ret;

	lockdep_assert_held(&sess->lock);
	if (!sess->listen_id)
		return rdmamig_session_error(sess) ?: -EINVAL;
	/*
	 * A source may get through before the VMM calls ACCEPT (a fast peer
	 * right after LISTEN): that first ACCEPT still returns 0.
	 */
	if (sess->accepted)
		return -EBUSY;
	if (timeout_ms > INT_MAX)
		return -EINVAL;
	ret = rdmamig_session_wait(sess, rdmamig_peer_ready, wait_jiffies(timeout_ms));
	if (ret == -ETIMEDOUT && sess->conn.cm_id)
		rdmamig_session_fail(sess, ret, true,
				     "source connected but sent no RAM blocks");
	if (!ret)
		sess->accepted = true;
	return ret;
}

static bool cm_settled(struct rdmamig_session *sess)
{
	return READ_ONCE(sess->cm_status) != 0;
}

int rdmamig_cm_connect(struct rdmamig_session *sess, struct rdmamig_addr *ua)
{
	struct sockaddr_storage ss;
	struct rdma_cm_id *id;
	int ret;

	lockdep_assert_held(&sess->lock);
	/* A cancelled or failed session says so; a started one is busy. */
	if (sess->state != RDMAMIG_STATE_NONE)
		return rdmamig_session_error(sess) ?: -EBUSY;
	ret = parse_addr(ua, &ss);
	if (ret)
		return ret;
	if (!sess->nblocks)
		return -EINVAL;
	if (ua->timeout_ms > INT_MAX)
		return -EINVAL;
	if (rdmamig_auth_required(sess) && !sess->auth_tfm)
		return -ENOKEY;
	capture_owner(sess);
	ret = rdmamig_precopy_src_memlock_check(sess);
	if (ret)
		return ret;

	ret = start_session(sess, RDMAMIG_ROLE_SOURCE);
	if (ret)
		return ret;
	id = rdma_create_id(&init_net, cm_handler, sess, RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id)) {
		ret = PTR_ERR(id);
		rdmamig_session_fail(sess, ret, false, "cannot create a CM id");
		return ret;
	}
	sess->conn.cm_id = id;
	ret = rdma_resolve_addr(id, NULL, (struct sockaddr *)&ss, CM_TIMEOUT_MS);
	if (ret) {
		rdmamig_session_fail(sess, ret, false, "cannot resolve %s", ua->host);
		return ret;
	}
	ret = rdmamig_session_wait(sess, cm_settled, wait_jiffies(ua->timeout_ms));
	if (!ret && sess->cm_status < 0)
		ret = rdmamig_session_error(sess) ?: sess->cm_status;
	if (ret) {
		rdmamig_session_fail(sess, ret, false, "connecting to %s port %u failed",
				     ua->host, ua->port);
		return rdmamig_session_error(sess) ?: ret;
	}
	snprintf(sess->local_addr, sizeof(sess->local_addr), "%pISpc",
		 &id->route.addr.src_addr);
	snprintf(sess->peer_addr, sizeof(sess->peer_addr), "%pISpc",
		 &id->route.addr.dst_addr);
	sess_info(sess, "connected to %s\n", sess->peer_addr);
	rdmamig_hostile_arm(sess);
	/* The destination acts on nothing before this answer. */
	if (sess->caps & RDMAMIG_WIRE_CAP_AUTH) {
		ret = rdmamig_auth_send_proof(sess);
		if (ret) {
			rdmamig_session_fail(sess, ret, true, "sending the authentication failed");
			return rdmamig_session_error(sess) ?: ret;
		}
	}
	/* Over the authenticated connection, before any data can flow. */
	ret = rdmamig_chan_connect(sess);
	if (ret)
		return rdmamig_session_error(sess) ?: ret;
	ret = rdmamig_mode_start(sess);
	if (ret)
		rdmamig_session_fail(sess, ret, true, "RAM blocks not accepted");
	else
		ret = rdmamig_hostile_flood(sess);
	return rdmamig_session_error(sess) ?: ret;
}

/*
 * A destination that failed and was taken over (netlink POSTCOPY_RESUME)
 * holds nothing but its listening port until its socket closes: free
 * it, so that the new session may LISTEN on it.
 */
void rdmamig_cm_release_listener(struct rdmamig_session *sess)
{
	lockdep_assert_held(&sess->lock);
	if (sess->listen_id) {
		rdma_destroy_id(sess->listen_id);	/* waits for its handler */
		sess->listen_id = NULL;
	}
}

/*
 * Teardown's first step here: no listener, and the handler of the
 * connection's id idle.  Once the handler lock was taken with @closing
 * set, handlers return at once (cm_handler()).
 */
void rdmamig_cm_stop(struct rdmamig_session *sess)
{
	if (sess->listen_id) {
		rdma_destroy_id(sess->listen_id);	/* waits for its handler */
		sess->listen_id = NULL;
	}
	if (sess->conn.cm_id) {
		rdma_lock_handler(sess->conn.cm_id);
		rdma_unlock_handler(sess->conn.cm_id);
	}
}
