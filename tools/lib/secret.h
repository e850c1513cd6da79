/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The shared secret of a migration, read from a file (rdmamigctl and
 * rdmamig-vmm): see Documentation/security.rst.
 */
#ifndef RDMAMIG_TOOLS_SECRET_H
#define RDMAMIG_TOOLS_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include <linux/rdmamig.h>

/* Where the secret comes from when no option names a file. */
#define SECRET_FILE_ENV	"RDMAMIG_SECRET_FILE"

struct secret {
	uint8_t key[RDMAMIG_SECRET_MAX];
	uint32_t len;
};

/*
 * Read @path, or the file $RDMAMIG_SECRET_FILE names when @path is NULL:
 * its bytes, all of them, are the secret (RDMAMIG_SECRET_MIN to
 * RDMAMIG_SECRET_MAX).  Return: 1 with @s filled, 0 when neither names a
 * file, -1 with @err saying what is wrong.
 */
int secret_load(const char *path, struct secret *s, char *err, size_t errlen);

/* Overwrite @s in a way the compiler keeps. */
void secret_wipe(struct secret *s);

#endif /* RDMAMIG_TOOLS_SECRET_H */
