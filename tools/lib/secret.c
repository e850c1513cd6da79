// SPDX-License-Identifier: GPL-2.0
/*
 * The secret file: raw bytes, e.g. "head -c 32 /dev/urandom > FILE".
 * Every byte counts, a trailing newline too, so both ends must use the
 * same file (or copies of it); there is no text encoding to disagree on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secret.h"

int secret_load(const char *path, struct secret *s, char *err, size_t errlen)
{
	uint8_t buf[RDMAMIG_SECRET_MAX + 1];
	size_t got = 0;
	ssize_t n;
	int fd;

	memset(s, 0, sizeof(*s));
	if (!path)
		path = getenv(SECRET_FILE_ENV);
	if (!path || !*path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "secret file %s: %s", path, strerror(errno));
		return -1;
	}
	/* One byte more than allowed tells "too long" from "just right". */
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "secret file %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (!n)
			break;
		got += n;
	}
	close(fd);
	if (got < RDMAMIG_SECRET_MIN || got > RDMAMIG_SECRET_MAX) {
		snprintf(err, errlen,
			 "secret file %s: %s %d bytes (a secret is %d to %d bytes)",
			 path, got < RDMAMIG_SECRET_MIN ? "has fewer than" : "has more than",
			 got < RDMAMIG_SECRET_MIN ? RDMAMIG_SECRET_MIN : RDMAMIG_SECRET_MAX,
			 RDMAMIG_SECRET_MIN, RDMAMIG_SECRET_MAX);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	memcpy(s->key, buf, got);
	s->len = got;
	explicit_bzero(buf, sizeof(buf));
	return 1;
}

void secret_wipe(struct secret *s)
{
	explicit_bzero(s, sizeof(*s));
}
