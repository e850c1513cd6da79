/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _RDMAMIG_CHARDEV_H
#define _RDMAMIG_CHARDEV_H

int rdmamig_chardev_init(void);
void rdmamig_chardev_exit(void);

#endif /* _RDMAMIG_CHARDEV_H */
