// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's face: /dev/rdmamig.  One open() is one migration session,
 * tied to the file: closing it cancels and frees the session.  Argument
 * structs are extensible (Documentation/process/botching-up-ioctls.rst):
 * their first field is their size, read with copy_struct_from_user().
 */
#include "rdmamig.h"

#include <linux/fs.h>
#include <linux/file.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/rdmamig.h>

#include "chardev.h"
#include "proto.h"
#include "session.h"
#include "auth.h"
#include "block.h"
#include "postcopy.h"
#include "cm.h"
#include "stream.h"
#include "mode.h"

/* Smallest size accepted for each struct: its first published version. */
#define PARAMS_SIZE_VER0	offsetofend(struct rdmamig_params, wire_version)
#define BLOCK_SIZE_VER0		sizeof(struct rdmamig_block)
#define ADDR_SIZE_VER0		sizeof(struct rdmamig_addr)
#define ROUND_SIZE_VER0		sizeof(struct rdmamig_round)
#define EVENT_SIZE_VER0		sizeof(struct rdmamig_event)
#define STATS_SIZE_VER0		offsetofend(struct rdmamig_stats, reason)
#define SECRET_SIZE_VER0	sizeof(struct rdmamig_secret)
#define FETCH_SIZE_VER0		offsetofend(struct rdmamig_fetch, remaining)
#define MC_EPOCH_SIZE_VER0	sizeof(struct rdmamig_mc_epoch)

/* Copy in an extensible struct; @ver0 is the smallest size we accept. */
static int copy_in(void *k, size_t ksize, void __user *u, size_t ver0)
{
	u32 usize;

	if (get_user(usize, (u32 __user *)u))
		return -EFAULT;
	if (usize < ver0 || usize > PAGE_SIZE)
		return -EINVAL;
	return copy_struct_from_user(k, ksize, u, usize);
}

/* Copy out as much of @k as the caller's struct holds. */
static int copy_out(void __user *u, void *k, size_t ksize, size_t ver0)
{
	u32 usize;

	if (get_user(usize, (u32 __user *)u))
		return -EFAULT;
	if (usize < ver0)
		return -EINVAL;
	*(u32 *)k = min_t(u32, usize, ksize);
	if (copy_to_user(u, k, min_t(size_t, usize, ksize)))
		return -EFAULT;
	return 0;
}

static int set_params(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_params p;
	int ret;

	ret = copy_in(&p, sizeof(p), u, PARAMS_SIZE_VER0);
	if (ret)
		return ret;
	ret = rdmamig_params_check(&p, READ_ONCE(sess->state) != RDMAMIG_STATE_NONE);
	if (ret)
		return ret;
	rdmamig_params_apply(&sess->params, &p);
	return 0;
}

static int get_params(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_params p = sess->params;

	p.mask = RDMAMIG_PARAM_ALL;
	return copy_out(u, &p, sizeof(p), PARAMS_SIZE_VER0);
}

static int set_secret(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_secret *sec;
	int ret;

	/* Off the stack, and wiped: it holds the key. */
	sec = kzalloc(sizeof(*sec), GFP_KERNEL);
	if (!sec)
		return -ENOMEM;
	ret = copy_in(sec, sizeof(*sec), u, SECRET_SIZE_VER0);
	if (!ret)
		ret = rdmamig_auth_set_secret(sess, sec->key, sec->len);
	kfree_sensitive(sec);
	return ret;
}

static int add_block(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_block b;
	int ret;

	ret = copy_in(&b, sizeof(b), u, BLOCK_SIZE_VER0);
	if (ret)
		return ret;
	/* An unwritable answer fails the call before anything changes. */
	if (put_user(0U, &((struct rdmamig_block __user *)u)->index))
		return -EFAULT;
	ret = rdmamig_block_add(sess, &b);
	if (ret)
		return ret;
	return put_user(b.index, &((struct rdmamig_block __user *)u)->index);
}

static int listen_or_connect(struct rdmamig_session *sess, void __user *u,
			     bool listen)
{
	struct rdmamig_addr a;
	int ret;

	ret = copy_in(&a, sizeof(a), u, ADDR_SIZE_VER0);
	if (ret)
		return ret;
	if (!listen) {
		/* A destination's post-copy state was resumed here. */
		if (sess->pc.resumed)
			return -EINVAL;
		return rdmamig_cm_connect(sess, &a);
	}
	/* An unwritable answer fails the call before anything changes. */
	if (put_user(a.port, &((struct rdmamig_addr __user *)u)->port))
		return -EFAULT;
	ret = rdmamig_cm_listen(sess, &a);
	if (ret)
		return ret;
	return put_user(a.port, &((struct rdmamig_addr __user *)u)->port);
}

/* Bitmaps cover at most one block: 1 TiB of 4 KiB pages, 32 MiB of bits. */
static int send_round(struct rdmamig_session *sess, void __user *u)
{
	unsigned long *bitmap;
	struct rdmamig_round r;
	int ret;

	ret = copy_in(&r, sizeof(r), u, ROUND_SIZE_VER0);
	if (ret)
		return ret;
	if (!r.npages || r.npages > (1ULL << 40) >> PAGE_SHIFT)
		return -EINVAL;
	bitmap = vmemdup_user(u64_to_user_ptr(r.bitmap),
			      DIV_ROUND_UP(r.npages, 64) * sizeof(u64));
	if (IS_ERR(bitmap))
		return PTR_ERR(bitmap);
	if (r.flags & RDMAMIG_ROUND_POSTCOPY)
		ret = rdmamig_postcopy_src_owe(sess, &r, bitmap);
	else
		ret = rdmamig_mode_send_round(sess, &r, bitmap);
	kvfree(bitmap);
	return ret;
}

/* RDMAMIG_IOC_FETCH: post-copy's fault and sweep calls, without @lock. */
static int fetch(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_fetch f;
	int ret;

	ret = copy_in(&f, sizeof(f), u, FETCH_SIZE_VER0);
	if (ret)
		return ret;
	ret = rdmamig_postcopy_dst_fetch(sess, &f);
	if (ret)
		return ret;
	return copy_out(u, &f, sizeof(f), FETCH_SIZE_VER0);
}

/*
 * RDMAMIG_IOC_MC_EPOCH: the plain fields here, the rounds and bitmaps
 * (arrays in the caller's memory) in mc_src.c, which copies them.
 */
static int mc_epoch(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_mc_epoch e;
	int ret;

	ret = copy_in(&e, sizeof(e), u, MC_EPOCH_SIZE_VER0);
	if (ret)
		return ret;
	if (e.flags || e.reserved || e.nrounds > RDMAMIG_MC_ROUNDS_MAX ||
	    e.state_len > RDMAMIG_MC_STATE_MAX || e.epoch || e.pages ||
	    e.snapshot_us || e.wait_us || e.staging_pages)
		return -EINVAL;
	ret = rdmamig_mode_mc_epoch(sess, &e);
	if (ret)
		return ret;
	return copy_out(u, &e, sizeof(e), MC_EPOCH_SIZE_VER0);
}

static const struct file_operations rdmamig_fops;

/*
 * RDMAMIG_IOC_POSTCOPY_RESUME: @fd is another open /dev/rdmamig, held
 * for the call; postcopy.c checks the two sessions make a pair.
 */
static int postcopy_resume(struct rdmamig_session *sess, unsigned long fd)
{
	struct file *file;
	int ret;

	if (fd > INT_MAX)
		return -EBADF;
	file = fget(fd);
	if (!file)
		return -EBADF;
	ret = file->f_op == &rdmamig_fops ?
	      rdmamig_postcopy_resume(sess, file->private_data) : -EINVAL;
	fput(file);
	return ret;
}

/* RDMAMIG_IOC_OWED: without @lock, as FETCH, whose callers use it. */
static int owed(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_round r;
	int ret;

	ret = copy_in(&r, sizeof(r), u, ROUND_SIZE_VER0);
	if (ret)
		return ret;
	return rdmamig_postcopy_dst_owed(sess, &r);
}

static int wait_event_ioctl(struct rdmamig_session *sess, struct file *file,
			    void __user *u)
{
	struct rdmamig_event ev;
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)u))
		return -EFAULT;
	if (usize < EVENT_SIZE_VER0)
		return -EINVAL;
	ret = rdmamig_session_pop_event(sess, &ev, file->f_flags & O_NONBLOCK);
	if (ret)
		return ret;
	ret = copy_out(u, &ev, sizeof(ev), EVENT_SIZE_VER0);
	/* Not delivered: the event stays first in line. */
	if (ret)
		rdmamig_session_unpop_event(sess, &ev);
	return ret;
}

static int get_stats(struct rdmamig_session *sess, void __user *u)
{
	struct rdmamig_stats *st;
	int ret;

	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	rdmamig_session_get_stats(sess, st);
	ret = copy_out(u, st, sizeof(*st), STATS_SIZE_VER0);
	kfree(st);
	return ret;
}

static int rdmamig_open(struct inode *inode, struct file *file)
{
	struct rdmamig_session *sess;

	if (!current->mm)
		return -EINVAL;
	sess = rdmamig_session_create(current->mm);
	if (IS_ERR(sess))
		return PTR_ERR(sess);
	file->private_data = sess;
	return nonseekable_open(inode, file);
}

static int rdmamig_release(struct inode *inode, struct file *file)
{
	rdmamig_session_destroy(file->private_data);
	return 0;
}

static long rdmamig_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct rdmamig_session *sess = file->private_data;
	void __user *u = (void __user *)arg;
	long ret;

	/*
	 * Structs grow at their end, and with them the size _IOW() encodes:
	 * match type and number only, the size field inside tells the rest.
	 */
	if (_IOC_TYPE(cmd) != RDMAMIG_IOC_MAGIC)
		return -ENOTTY;
	cmd = _IOC_NR(cmd);

	/* These never wait for the session lock: they must work while
	 * another thread of the VMM blocks in CONNECT, ACCEPT or a round. */
	switch (cmd) {
	case _IOC_NR(RDMAMIG_IOC_WAIT_EVENT):
		return wait_event_ioctl(sess, file, u);
	case _IOC_NR(RDMAMIG_IOC_GET_STATS):
		return get_stats(sess, u);
	case _IOC_NR(RDMAMIG_IOC_CANCEL):
		rdmamig_session_cancel(sess);
		return 0;
	case _IOC_NR(RDMAMIG_IOC_FETCH):
		return fetch(sess, u);
	case _IOC_NR(RDMAMIG_IOC_OWED):
		return owed(sess, u);
	}

	if (mutex_lock_interruptible(&sess->lock))
		return -ERESTARTSYS;
	switch (cmd) {
	case _IOC_NR(RDMAMIG_IOC_SET_PARAMS):
		ret = set_params(sess, u);
		break;
	case _IOC_NR(RDMAMIG_IOC_GET_PARAMS):
		ret = get_params(sess, u);
		break;
	case _IOC_NR(RDMAMIG_IOC_ADD_BLOCK):
		ret = add_block(sess, u);
		break;
	case _IOC_NR(RDMAMIG_IOC_SET_SECRET):
		ret = set_secret(sess, u);
		break;
	case _IOC_NR(RDMAMIG_IOC_LISTEN):
		ret = listen_or_connect(sess, u, true);
		break;
	case _IOC_NR(RDMAMIG_IOC_ACCEPT):
		ret = rdmamig_cm_accept(sess, arg);
		break;
	case _IOC_NR(RDMAMIG_IOC_CONNECT):
		ret = listen_or_connect(sess, u, false);
		break;
	case _IOC_NR(RDMAMIG_IOC_SEND_ROUND):
		ret = send_round(sess, u);
		break;
	case _IOC_NR(RDMAMIG_IOC_END_ROUND):
		ret = rdmamig_mode_end_round(sess);
		break;
	case _IOC_NR(RDMAMIG_IOC_COMPLETE):
		ret = rdmamig_mode_complete(sess);
		break;
	case _IOC_NR(RDMAMIG_IOC_POSTCOPY):
		ret = rdmamig_postcopy_src_switch(sess);
		break;
	case _IOC_NR(RDMAMIG_IOC_POSTCOPY_RESUME):
		ret = postcopy_resume(sess, arg);
		break;
	case _IOC_NR(RDMAMIG_IOC_MC_EPOCH):
		ret = mc_epoch(sess, u);
		break;
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&sess->lock);
	return ret;
}

static ssize_t rdmamig_read(struct file *file, char __user *buf, size_t len,
			    loff_t *ppos)
{
	struct rdmamig_session *sess = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&sess->lock))
		return -ERESTARTSYS;
	ret = rdmamig_stream_read(sess, buf, len, file->f_flags & O_NONBLOCK);
	mutex_unlock(&sess->lock);
	return ret;
}

static ssize_t rdmamig_write(struct file *file, const char __user *buf,
			     size_t len, loff_t *ppos)
{
	struct rdmamig_session *sess = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&sess->lock))
		return -ERESTARTSYS;
	/* Checkpointing: the state goes with each epoch (MC_EPOCH), whole. */
	if (sess->role == RDMAMIG_ROLE_SOURCE && (sess->caps & RDMAMIG_WIRE_CAP_MC))
		ret = -EINVAL;
	else
		ret = rdmamig_stream_write(sess, buf, len);
	mutex_unlock(&sess->lock);
	return ret;
}

static __poll_t rdmamig_poll(struct file *file, poll_table *wait)
{
	struct rdmamig_session *sess = file->private_data;
	__poll_t mask = 0;
	unsigned long flags;

	poll_wait(file, &sess->wait, wait);
	spin_lock_irqsave(&sess->slock, flags);
	if (!list_empty(&sess->events) || !list_empty(&sess->stream) ||
	    sess->stream_eof)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (sess->state == RDMAMIG_STATE_FAILED ||
	    sess->state == RDMAMIG_STATE_CANCELLED)
		mask |= EPOLLERR;
	spin_unlock_irqrestore(&sess->slock, flags);
	return mask;
}

static const struct file_operations rdmamig_fops = {
	.owner = THIS_MODULE,
	.open = rdmamig_open,
	.release = rdmamig_release,
	.unlocked_ioctl = rdmamig_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.read = rdmamig_read,
	.write = rdmamig_write,
	.poll = rdmamig_poll,
};

/*
 * A fixed minor, so that /dev/rdmamig can exist before the module is
 * loaded: depmod lists it in modules.devname from the devname alias,
 * kmod static-nodes has it created at boot, and the first open() loads
 * the module through char-major-10-247.  247 is in the range that
 * Documentation/admin-guide/devices.txt reserves for local use
 * (243-254): no in-tree driver has it and the dynamic allocator never
 * hands it out.  Another out-of-tree driver may have picked it too (ZFS
 * took 249): misc_register() then fails and so does the module's load,
 * loudly, rather than leave /dev/rdmamig to the wrong driver.  See
 * Documentation/uapi.rst, "Loading the module".
 */
#define RDMAMIG_MINOR	247
MODULE_ALIAS_MISCDEV(RDMAMIG_MINOR);
MODULE_ALIAS("devname:" RDMAMIG_DEVICE_NAME);

/* 0600: a session can pin and expose memory; a udev rule may widen it. */
static struct miscdevice rdmamig_misc = {
	.minor = RDMAMIG_MINOR,
	.name = RDMAMIG_DEVICE_NAME,
	.fops = &rdmamig_fops,
	.mode = 0600,
};

int __init rdmamig_chardev_init(void)
{
	int ret = misc_register(&rdmamig_misc);

	if (ret == -EBUSY)
		pr_err("misc minor %d is taken by another driver (/proc/misc)\n",
		       RDMAMIG_MINOR);
	return ret;
}

void rdmamig_chardev_exit(void)
{
	misc_deregister(&rdmamig_misc);
}
