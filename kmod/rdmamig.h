/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Module-wide definitions shared by every rdmamig source file.
 */
#ifndef _RDMAMIG_H
#define _RDMAMIG_H

#ifndef pr_fmt
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#endif

#include <linux/printk.h>

#define RDMAMIG_VERSION "0.1.0"

#endif /* _RDMAMIG_H */
