/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The shared secret of the C selftests.  Peer authentication is required
 * by default (uapi/linux/rdmamig.h, rdmamig_params.auth): a session that
 * listens or connects needs RDMAMIG_IOC_SET_SECRET (or NEW_SESSION's
 * SECRET attribute) first, and both ends of a migration the same one.
 *
 * The key is the content of $RDMAMIG_SECRET_FILE when it is set and holds
 * 16 to 64 bytes (the testbed writes 32 random bytes there, the same in
 * both VMs, for the tools), else a fixed test key.
 */
#ifndef RDMAMIG_TEST_SECRET_H
#define RDMAMIG_TEST_SECRET_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/rdmamig.h>

static uint8_t test_secret_key[RDMAMIG_SECRET_MAX];
static uint32_t test_secret_len;
static pthread_once_t test_secret_once = PTHREAD_ONCE_INIT;

/* Once per process: the file lives on the testbed's share, slow to read. */
static inline void test_secret_load(void)
{
	static const uint8_t fixed[32] = "rdmamig selftest key, not secret";
	uint8_t buf[RDMAMIG_SECRET_MAX + 1];
	const char *path = getenv("RDMAMIG_SECRET_FILE");
	size_t got = 0;
	ssize_t n;
	int fd;

	if (path && *path) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			while (got < sizeof(buf)) {
				n = read(fd, buf + got, sizeof(buf) - got);
				if (n < 0 && errno == EINTR)	/* the fuzzers' timers */
					continue;
				if (n <= 0)
					break;
				got += n;
			}
			close(fd);
		}
	}
	if (got >= RDMAMIG_SECRET_MIN && got <= RDMAMIG_SECRET_MAX) {
		memcpy(test_secret_key, buf, got);
		test_secret_len = got;
	} else {
		memcpy(test_secret_key, fixed, sizeof(fixed));
		test_secret_len = sizeof(fixed);
	}
}

/* The test key into @key (RDMAMIG_SECRET_MAX bytes); returns its length. */
static inline uint32_t test_secret(uint8_t *key)
{
	pthread_once(&test_secret_once, test_secret_load);
	memcpy(key, test_secret_key, test_secret_len);
	return test_secret_len;
}

/* RDMAMIG_IOC_SET_SECRET with @len bytes of @key; the ioctl's result. */
static inline int set_secret_bytes(int fd, const void *key, uint32_t len)
{
	struct rdmamig_secret s = { .size = sizeof(s), .len = len };

	memcpy(s.key, key, len <= sizeof(s.key) ? len : sizeof(s.key));
	return ioctl(fd, RDMAMIG_IOC_SET_SECRET, &s);
}

/* Give session @fd the test key; the ioctl's result. */
static inline int set_test_secret(int fd)
{
	uint8_t key[RDMAMIG_SECRET_MAX];
	uint32_t len = test_secret(key);

	return set_secret_bytes(fd, key, len);
}

#endif /* RDMAMIG_TEST_SECRET_H */
