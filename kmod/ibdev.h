/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _RDMAMIG_IBDEV_H
#define _RDMAMIG_IBDEV_H

#include <linux/types.h>
#include <rdma/ib_verbs.h>

struct sk_buff;
struct netlink_callback;

/*
 * The RDMA devices rdmamig can use, tracked by an ib_client.  A device
 * leaves the list in .remove, after every session on it has been failed
 * and has released the device's resources (see rdmamig_ibdev_remove()).
 */
struct rdmamig_ibdev {
	struct list_head list;
	struct ib_device *ib;
};

typedef int (*rdmamig_ibdev_fn)(struct rdmamig_ibdev *dev, void *arg);

int rdmamig_ibdev_init(void);
void rdmamig_ibdev_exit(void);
int rdmamig_ibdev_for_each_from(unsigned int *cursor, rdmamig_ibdev_fn fn,
				void *arg);
void rdmamig_ibdev_register_remove_hook(void (*hook)(struct ib_device *ib));

#endif /* _RDMAMIG_IBDEV_H */
