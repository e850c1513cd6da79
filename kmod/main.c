// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamig: live migration of a process's or a virtual machine's memory
 * over RDMA.  This file holds module init and exit only.
 */
#include "rdmamig.h"

#include <linux/module.h>
#include <net/genetlink.h>
#include <linux/rdmamig.h>

#include "chardev.h"
#include "ibdev.h"
#include "netlink.h"
#include "session.h"

static int __init rdmamig_init(void)
{
	int ret;

	ret = rdmamig_sessions_init();
	if (ret)
		return ret;
	ret = rdmamig_ibdev_init();
	if (ret)
		return ret;
	ret = rdmamig_netlink_init();
	if (ret)
		goto err_ibdev;
	/* Last: the device node is the first thing user space can reach. */
	ret = rdmamig_chardev_init();
	if (ret)
		goto err_netlink;

	pr_info("version %s loaded\n", RDMAMIG_VERSION);
	return 0;

err_netlink:
	rdmamig_netlink_exit();
err_ibdev:
	rdmamig_ibdev_exit();
	return ret;
}

static void __exit rdmamig_exit(void)
{
	/* Reverse order: no new session can start once the node is gone. */
	rdmamig_chardev_exit();
	rdmamig_netlink_exit();
	rdmamig_ibdev_exit();
	rdmamig_sessions_exit();
	pr_info("unloaded\n");
}

module_init(rdmamig_init);
module_exit(rdmamig_exit);

MODULE_DESCRIPTION("Live migration of memory over RDMA");
MODULE_AUTHOR("The rdmamig developers");
MODULE_LICENSE("GPL");
MODULE_VERSION(RDMAMIG_VERSION);
MODULE_ALIAS_GENL_FAMILY(RDMAMIG_GENL_NAME);
