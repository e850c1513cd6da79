// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/rdmamig basics: the node opens, each open is independent, an
 * ioctl the module does not know is refused with ENOTTY, and SET_SECRET
 * (authentication is required by default) is known.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"
#include "test_secret.h"

#define DEV_PATH "/dev/" RDMAMIG_DEVICE_NAME

TEST(node_is_root_only)
{
	struct stat st;

	ASSERT_EQ(0, stat(DEV_PATH, &st)) TH_LOG("stat %s: %s", DEV_PATH, strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 0777);
	EXPECT_EQ(0, st.st_uid);
}

TEST(open_many)
{
	int fds[16], i;

	for (i = 0; i < 16; i++) {
		fds[i] = open(DEV_PATH, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fds[i]) TH_LOG("open %d: %s", i, strerror(errno));
	}
	for (i = 0; i < 16; i++)
		EXPECT_EQ(0, close(fds[i]));
}

TEST(unknown_ioctl)
{
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, ioctl(fd, _IO(0xee, 0x7f), 0));
	EXPECT_EQ(ENOTTY, errno);
	/* The first number after the last one the module knows. */
	EXPECT_EQ(-1, ioctl(fd, _IO(RDMAMIG_IOC_MAGIC, 0x0e), 0));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

/* SET_SECRET (0x0d) is known: a fresh session takes the test key. */
TEST(set_secret_known)
{
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, set_test_secret(fd)) TH_LOG("SET_SECRET: %s", strerror(errno));
	/* And replaceable until the session starts. */
	EXPECT_EQ(0, set_test_secret(fd)) TH_LOG("SET_SECRET again: %s", strerror(errno));
	close(fd);
}

TEST_HARNESS_MAIN
