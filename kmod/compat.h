/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference rdmamig depends on lives here, so the
 * core files read like code for one kernel.  Supported: Linux 6.1 LTS
 * (Debian 12) and Linux 6.12 (bookworm-backports).
 */
#ifndef _RDMAMIG_COMPAT_H
#define _RDMAMIG_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>

/*
 * pin_user_pages_remote() lost its vmas argument in 6.5.  With
 * FOLL_LONGTERM the caller holds mmap_read_lock and passes locked == NULL.
 */
static inline long rdmamig_pin_remote(struct mm_struct *mm, unsigned long start,
				      unsigned long nr_pages, unsigned int gup_flags,
				      struct page **pages)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL, NULL);
#else
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL);
#endif
}

#endif /* _RDMAMIG_COMPAT_H */
