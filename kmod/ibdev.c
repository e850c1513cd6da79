// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA device tracking: an ib_client whose .add and .remove keep the list
 * of devices rdmamig reports and may use.  Sessions do not hold ib_device
 * references of their own; they live on a device only between its .add
 * and .remove, and .remove fails and drains them before it returns (the
 * same contract nvme-rdma relies on).
 */
#include "rdmamig.h"

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#include "ibdev.h"

static LIST_HEAD(ibdev_list);
static DEFINE_MUTEX(ibdev_mutex);	/* protects ibdev_list */
static void (*remove_hook)(struct ib_device *ib);

static int ibdev_add(struct ib_device *ib);
static void ibdev_remove(struct ib_device *ib, void *client_data);

static struct ib_client rdmamig_ib_client = {
	.name = "rdmamig",
	.add = ibdev_add,
	.remove = ibdev_remove,
};

static int ibdev_add(struct ib_device *ib)
{
	struct rdmamig_ibdev *dev;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	dev->ib = ib;

	mutex_lock(&ibdev_mutex);
	list_add_tail(&dev->list, &ibdev_list);
	mutex_unlock(&ibdev_mutex);

	ib_set_client_data(ib, &rdmamig_ib_client, dev);
	pr_info("device %s added\n", dev_name(&ib->dev));
	return 0;
}

static void ibdev_remove(struct ib_device *ib, void *client_data)
{
	struct rdmamig_ibdev *dev = client_data;

	/* Sessions on this device fail and let go of it before we return. */
	if (remove_hook)
		remove_hook(ib);

	mutex_lock(&ibdev_mutex);
	list_del(&dev->list);
	mutex_unlock(&ibdev_mutex);

	pr_info("device %s removed\n", dev_name(&ib->dev));
	kfree(dev);
}

/**
 * rdmamig_ibdev_register_remove_hook() - be told before a device goes away
 * @hook: called from the ib_client's .remove, may sleep
 *
 * Set once at module init, before the ib_client registers.
 */
void rdmamig_ibdev_register_remove_hook(void (*hook)(struct ib_device *ib))
{
	remove_hook = hook;
}

/**
 * rdmamig_ibdev_for_each_from() - walk the devices for a netlink dump
 * @cursor: position to resume from; advanced past each device visited
 * @fn: called under the device-list mutex; a non-zero return stops the walk
 * @arg: passed to @fn
 *
 * Return: what @fn returned last, or 0 when the walk reached the end.
 */
int rdmamig_ibdev_for_each_from(unsigned int *cursor, rdmamig_ibdev_fn fn,
				void *arg)
{
	struct rdmamig_ibdev *dev;
	unsigned int i = 0;
	int ret = 0;

	mutex_lock(&ibdev_mutex);
	list_for_each_entry(dev, &ibdev_list, list) {
		if (i++ < *cursor)
			continue;
		ret = fn(dev, arg);
		if (ret)
			break;
		(*cursor)++;
	}
	mutex_unlock(&ibdev_mutex);
	return ret;
}

int rdmamig_ibdev_init(void)
{
	return ib_register_client(&rdmamig_ib_client);
}

void rdmamig_ibdev_exit(void)
{
	ib_unregister_client(&rdmamig_ib_client);
}
