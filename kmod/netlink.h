/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _RDMAMIG_NETLINK_H
#define _RDMAMIG_NETLINK_H

int rdmamig_netlink_init(void);
void rdmamig_netlink_exit(void);

#endif /* _RDMAMIG_NETLINK_H */
