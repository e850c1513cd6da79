// SPDX-License-Identifier: GPL-2.0
/*
 * Device state: an ordered byte stream over the control channel, like
 * QEMU's QEMUFile over RDMA.  write() on the source sends DEVICE_STATE
 * messages; the destination queues them (at most RDMAMIG_STREAM_MAX bytes
 * unread: a flooding peer fails the session) for read(), which returns 0
 * once the migration completed and the queue is empty.
 */
#include "rdmamig.h"

#include <linux/slab.h>
#include <linux/uaccess.h>

#include "proto.h"
#include "session.h"
#include "ctrl.h"
#include "stream.h"

ssize_t rdmamig_stream_write(struct rdmamig_session *sess,
			     const char __user *buf, size_t len)
{
	size_t done = 0;
	void *chunk;
	int ret = 0;

	lockdep_assert_held(&sess->lock);
	/* After post-copy's switch too: the destination runs already. */
	if (sess->role != RDMAMIG_ROLE_SOURCE || !READ_ONCE(sess->peer_ready) ||
	    READ_ONCE(sess->state) == RDMAMIG_STATE_COMPLETED ||
	    READ_ONCE(sess->state) == RDMAMIG_STATE_POSTCOPY)
		return rdmamig_session_error(sess) ?: -ENOTCONN;
	if (!len)
		return 0;
	chunk = kmalloc(RDMAMIG_MSG_PAYLOAD, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	while (done < len) {
		u32 n = min_t(size_t, len - done, RDMAMIG_MSG_PAYLOAD);

		if (copy_from_user(chunk, buf + done, n)) {
			ret = -EFAULT;
			break;
		}
		ret = rdmamig_ctrl_send(sess, RDMAMIG_MSG_DEVICE_STATE, 1, chunk, n);
		if (ret)
			break;
		done += n;
		spin_lock_irq(&sess->slock);
		sess->stats.device_state_bytes += n;
		spin_unlock_irq(&sess->slock);
	}
	kfree(chunk);
	return done ?: ret;
}

/* Destination, from the control-channel work. */
int rdmamig_stream_queue(struct rdmamig_session *sess, const void *data, u32 len)
{
	struct rdmamig_stream_node *n;
	bool flood;

	spin_lock_irq(&sess->slock);
	flood = sess->stream_bytes + len > RDMAMIG_STREAM_MAX;
	spin_unlock_irq(&sess->slock);
	if (flood) {
		rdmamig_session_fail(sess, -ENOBUFS, true,
				     "device-state flood: over %u bytes unread",
				     RDMAMIG_STREAM_MAX);
		return -ENOBUFS;
	}
	n = kmalloc(struct_size(n, data, len), GFP_KERNEL);
	if (!n) {
		rdmamig_session_fail(sess, -ENOMEM, true, "out of memory");
		return -ENOMEM;
	}
	n->len = len;
	n->off = 0;
	memcpy(n->data, data, len);
	spin_lock_irq(&sess->slock);
	list_add_tail(&n->list, &sess->stream);
	sess->stream_bytes += len;
	sess->stats.device_state_bytes += len;
	spin_unlock_irq(&sess->slock);
	wake_up_all(&sess->wait);
	return 0;
}

static bool stream_readable(struct rdmamig_session *sess)
{
	return !list_empty(&sess->stream) || READ_ONCE(sess->stream_eof) ||
	       rdmamig_session_dead(sess);
}

ssize_t rdmamig_stream_read(struct rdmamig_session *sess, char __user *buf,
			    size_t len, bool nonblock)
{
	struct rdmamig_stream_node *n;
	size_t done = 0;
	int ret;

	lockdep_assert_held(&sess->lock);
	if (sess->role != RDMAMIG_ROLE_DEST)
		return -EINVAL;
	while (done < len) {
		u32 take;

		spin_lock_irq(&sess->slock);
		n = list_first_entry_or_null(&sess->stream,
					     struct rdmamig_stream_node, list);
		if (n)
			list_del(&n->list);
		spin_unlock_irq(&sess->slock);
		if (!n) {
			if (done)
				break;
			if (READ_ONCE(sess->stream_eof))
				return 0;
			ret = rdmamig_session_error(sess);
			if (ret)
				return ret;
			if (nonblock)
				return -EAGAIN;
			ret = wait_event_interruptible(sess->wait,
						       stream_readable(sess));
			if (ret)
				return ret;
			continue;
		}
		take = min_t(size_t, len - done, n->len - n->off);
		if (copy_to_user(buf + done, n->data + n->off, take)) {
			take = 0;
			ret = -EFAULT;
		} else {
			ret = 0;
		}
		n->off += take;
		done += take;
		spin_lock_irq(&sess->slock);
		sess->stream_bytes -= take;
		if (n->off < n->len)
			list_add(&n->list, &sess->stream);
		spin_unlock_irq(&sess->slock);
		if (n->off == n->len)
			kfree(n);
		if (ret)
			return done ?: ret;
	}
	return done;
}

/**
 * rdmamig_stream_replace() - make @nodes the whole unread stream
 * @sess: a checkpointing backup, from its rx work
 * @nodes: struct rdmamig_stream_node, @len bytes in all; taken
 * @len: their bytes
 *
 * A backup keeps the device state of its last committed epoch only
 * (mc_dst.c): what is unread of the one before goes.  A read() that
 * holds a node off the list while it copies puts it back in front.
 */
void rdmamig_stream_replace(struct rdmamig_session *sess,
			    struct list_head *nodes, u32 len)
{
	struct rdmamig_stream_node *n, *tmp;
	LIST_HEAD(old);

	spin_lock_irq(&sess->slock);
	list_splice_init(&sess->stream, &old);
	list_for_each_entry(n, &old, list)
		sess->stream_bytes -= n->len - n->off;
	list_splice_tail_init(nodes, &sess->stream);
	sess->stream_bytes += len;
	sess->stats.device_state_bytes += len;
	spin_unlock_irq(&sess->slock);
	list_for_each_entry_safe(n, tmp, &old, list)
		kfree(n);
	wake_up_all(&sess->wait);
}

void rdmamig_stream_free(struct rdmamig_session *sess)
{
	struct rdmamig_stream_node *n, *tmp;

	list_for_each_entry_safe(n, tmp, &sess->stream, list)
		kfree(n);
	INIT_LIST_HEAD(&sess->stream);
	sess->stream_bytes = 0;
}
