// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/rdmamig basics: the node opens, each open is independent, an
 * ioctl the module does not know is refused with ENOTTY, and SET_SECRET
 * (authentication is required by default) and post-copy's four ioctls
 * are known.
 */
#include <errno.h>
#include <stdint.h>
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
	EXPECT_EQ(-1, ioctl(fd, _IO(RDMAMIG_IOC_MAGIC, 0x13), 0));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

/*
 * POSTCOPY (0x0e), FETCH (0x0f), OWED (0x10) and POSTCOPY_RESUME (0x11)
 * are known: on a session that never connected the first two say
 * ENOTCONN, and RESUME's argument must be a descriptor.
 */
TEST(postcopy_ioctls_known)
{
	static char buf[4096] __attribute__((aligned(4096)));
	struct rdmamig_fetch f = {
		.size = sizeof(f), .buf = (uintptr_t)buf, .buf_len = sizeof(buf),
	};
	uint64_t bitmap;
	struct rdmamig_round r = {
		.size = sizeof(r), .npages = 1, .bitmap = (uintptr_t)&bitmap,
	};
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_POSTCOPY));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_FETCH, &f));
	EXPECT_EQ(ENOTCONN, errno);
	/* No block 0 yet: the arguments are refused first. */
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_OWED, &r));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_POSTCOPY_RESUME, -1));
	EXPECT_EQ(EBADF, errno);
	/* Itself: never a session that failed in post-copy. */
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_POSTCOPY_RESUME, fd));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

/*
 * MC_EPOCH (0x12) is known: its plain fields are checked first (EINVAL),
 * then a well-formed call on a session that never connected says
 * ENOTCONN; a struct shorter than its first version is EINVAL, a longer
 * one with a non-zero tail E2BIG.
 */
TEST(mc_epoch_known)
{
	struct {
		struct rdmamig_mc_epoch e;
		uint64_t tail;
	} big = { .e = { .size = sizeof(big) }, .tail = 1 };
	struct rdmamig_mc_epoch e = { .size = sizeof(e) };
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(ENOTCONN, errno);
	e.flags = 1;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(EINVAL, errno);
	e.flags = 0;
	e.reserved = 1;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(EINVAL, errno);
	e.reserved = 0;
	e.nrounds = RDMAMIG_MC_ROUNDS_MAX + 1;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(EINVAL, errno);
	e.nrounds = 0;
	e.state_len = RDMAMIG_MC_STATE_MAX + 1ULL;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(EINVAL, errno);
	e.state_len = 0;
	e.pages = 1;		/* an out field */
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(EINVAL, errno);
	e.pages = 0;
	e.size = 8;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &e));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_MC_EPOCH, &big));
	EXPECT_EQ(E2BIG, errno);
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
