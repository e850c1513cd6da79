// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM API's error paths (uapi/linux/rdmamig.h): a bad ioctl argument
 * gets the documented errno and changes nothing; a session that cannot
 * go on fails with a reason instead of hanging its peer.
 *
 * The "dev" tests need only /dev/rdmamig.  The "net" tests connect two
 * sessions of this VM to each other over rxe at $RDMAMIG_LOCAL_ADDR (the
 * destination in a forked child reporting over a pipe); they are
 * skipped without that address.
 *
 * Post-copy's calls (RDMAMIG_CAP_POSTCOPY): SEND_ROUND with
 * RDMAMIG_ROUND_POSTCOPY and RDMAMIG_IOC_POSTCOPY refused without the
 * capability negotiated (EOPNOTSUPP, either end's doing) and the session
 * still migrating; RDMAMIG_IOC_FETCH and RDMAMIG_IOC_OWED on a source,
 * on a destination before the switch (ENOTCONN), with bad arguments
 * (EINVAL, EFAULT, ENOENT) in post-copy, and after completion.  The
 * destination here places what it fetches with memcpy(): the userfaultfd
 * side is postcopy_test.sh's, through rdmamig-vmm.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"
#include "test_secret.h"
#include "test_session.h"

#define DEV_PATH "/dev/" RDMAMIG_DEVICE_NAME
#define PG 4096UL
#define MIB (1UL << 20)

/* ---- helpers --------------------------------------------------------- */

/*
 * A session with the test secret: authentication is required by default,
 * and without a secret LISTEN and CONNECT fail with ENOKEY before they
 * look any further (auth_ioctl_test.c checks that).
 */
static int dev_open(int flags)
{
	int fd = open(DEV_PATH, O_RDWR | O_CLOEXEC | flags);

	if (fd >= 0 && set_test_secret(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *map_pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* A mapped-then-unmapped range: certainly not ours. */
static void *unmapped_pages(size_t n)
{
	void *p = map_pages(n);

	if (p)
		munmap(p, n * PG);
	return p;
}

static int add_block(int fd, const void *addr, uint64_t len, const char *name,
		     uint32_t *index)
{
	struct rdmamig_block b = {
		.size = sizeof(b),
		.addr = (uintptr_t)addr,
		.length = len,
	};
	int ret;

	strncpy(b.name, name, sizeof(b.name) - 1);
	ret = ioctl(fd, RDMAMIG_IOC_ADD_BLOCK, &b);
	if (!ret && index)
		*index = b.index;
	return ret;
}

static int set_params(int fd, uint32_t mask, uint64_t caps, uint64_t bw)
{
	struct rdmamig_params p = {
		.size = sizeof(p), .mask = mask, .caps = caps, .max_bandwidth = bw,
	};

	return ioctl(fd, RDMAMIG_IOC_SET_PARAMS, &p);
}

static uint64_t msec_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static uint64_t pattern(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ULL + i + 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill(void *mem, size_t len, uint64_t seed)
{
	uint64_t *w = mem;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = pattern(seed, i);
}

/* Expect pattern(seed) everywhere but page zero_page, which is zero. */
static uint64_t bad_pages(const void *mem, size_t len, uint64_t seed,
			  int64_t zero_page)
{
	const uint64_t *w = mem;
	uint64_t bad = 0, pg, i, want;

	for (pg = 0; pg < len / PG; pg++) {
		for (i = pg * PG / 8; i < (pg + 1) * PG / 8; i++) {
			want = (int64_t)pg == zero_page ? 0 : pattern(seed, i);
			if (w[i] != want) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

/* ---- ioctl argument checks ------------------------------------------- */

FIXTURE(dev) {
	int fd;
	void *mem;		/* 16 pages */
};

FIXTURE_SETUP(dev)
{
	self->fd = dev_open(0);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", DEV_PATH, strerror(errno));
	self->mem = map_pages(16);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->mem)
		munmap(self->mem, 16 * PG);
}

TEST_F(dev, get_stats_in_state_none)
{
	struct rdmamig_stats st;

	ASSERT_EQ(0, get_stats(self->fd, &st)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, st.state);
	EXPECT_EQ((uint32_t)RDMAMIG_ROLE_NONE, st.role);
	EXPECT_EQ(0, st.error);
	EXPECT_EQ(0ULL, st.bytes);
	EXPECT_EQ(0ULL, st.pages);
	EXPECT_EQ(0ULL, st.zero_pages);
	EXPECT_EQ(0ULL, st.rounds);
	EXPECT_EQ(0ULL, st.device_state_bytes);
	EXPECT_EQ(0, st.reason[0]);
}

TEST_F(dev, get_params_defaults)
{
	struct rdmamig_params p;

	ASSERT_EQ(0, get_params(self->fd, &p)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0ULL, p.caps);
	EXPECT_EQ(0ULL, p.max_bandwidth);
	EXPECT_EQ((uint64_t)64 * MIB, (uint64_t)p.max_registered);
	EXPECT_EQ((uint32_t)RDMAMIG_PROTO_VERSION, p.wire_version);
	/* Authentication is required unless turned off. */
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_REQUIRED, p.auth);
	EXPECT_EQ(0U, p.reserved);
	EXPECT_EQ((uint32_t)RDMAMIG_PARAM_ALL, p.mask);
	EXPECT_EQ((uint32_t)sizeof(p), p.size);
}

TEST_F(dev, set_params_unknown_mask_bit)
{
	struct snapshot s;
	uint32_t bits[] = { RDMAMIG_PARAM_ALL + 1, 1U << 31 };
	unsigned int i;

	snap(self->fd, &s);
	for (i = 0; i < 2; i++) {
		/* A valid field with it must not be applied either. */
		EXPECT_EQ(-1, set_params(self->fd, RDMAMIG_PARAM_MAX_BANDWIDTH | bits[i],
					 0, 12345));
		EXPECT_EQ(EINVAL, errno) TH_LOG("mask bit %#x", bits[i]);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
}

TEST_F(dev, set_params_unknown_cap_bit)
{
	struct snapshot s;
	/* CAP_AUTH is reported, never asked for: not in RDMAMIG_CAPS_ALL. */
	uint64_t caps[] = { RDMAMIG_CAPS_ALL << 1, 1ULL << 63 | RDMAMIG_CAP_PIN_ALL,
			    RDMAMIG_CAP_AUTH, RDMAMIG_CAP_AUTH | RDMAMIG_CAP_PIN_ALL };
	unsigned int i;

	snap(self->fd, &s);
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		EXPECT_EQ(-1, set_params(self->fd, RDMAMIG_PARAM_CAPS |
					 RDMAMIG_PARAM_MAX_BANDWIDTH, caps[i], 12345));
		EXPECT_EQ(EINVAL, errno) TH_LOG("caps %#llx", (unsigned long long)caps[i]);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
	/* The known one is fine. */
	EXPECT_EQ(0, set_params(self->fd, RDMAMIG_PARAM_CAPS, RDMAMIG_CAP_PIN_ALL, 0));
}

/* Smaller than the struct's first version (which ended at wire_version). */
TEST_F(dev, set_params_size_too_small)
{
	uint32_t sizes[] = { 0, 4, 8, offsetof(struct rdmamig_params, wire_version) };
	struct rdmamig_params p;
	struct snapshot s;
	unsigned int i;

	snap(self->fd, &s);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.size = sizes[i];
		p.mask = RDMAMIG_PARAM_MAX_BANDWIDTH;
		p.max_bandwidth = 12345;
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &p));
		EXPECT_EQ(EINVAL, errno) TH_LOG("size %u", sizes[i]);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
}

TEST_F(dev, set_params_bigger_struct)
{
	struct {
		struct rdmamig_params p;
		uint64_t tail[2];
	} big;
	struct rdmamig_params p;
	struct snapshot s;

	snap(self->fd, &s);
	memset(&big, 0, sizeof(big));
	big.p.size = sizeof(big);
	big.p.mask = RDMAMIG_PARAM_MAX_BANDWIDTH;
	big.p.max_bandwidth = 777000;
	big.tail[1] = 1;
	/* A newer struct using a field this kernel does not know. */
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &big));
	EXPECT_EQ(E2BIG, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));

	/* A newer struct with its new fields unused is fine. */
	big.tail[1] = 0;
	EXPECT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &big))
		TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_params(self->fd, &p));
	EXPECT_EQ(777000ULL, p.max_bandwidth);
}

TEST_F(dev, set_params_bad_pointer)
{
	struct snapshot s;

	snap(self->fd, &s);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, unmapped_pages(1)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
}

TEST_F(dev, add_block_unaligned)
{
	uint8_t *m = self->mem;
	uint32_t idx = 99;
	struct snapshot s;

	snap(self->fd, &s);
	EXPECT_EQ(-1, add_block(self->fd, m + 1, 4 * PG, "a", NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add_block(self->fd, m + PG / 2, 4 * PG, "a", NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add_block(self->fd, m, 4 * PG + 1, "a", NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, add_block(self->fd, m, 100, "a", NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
	/* Nothing was added: the first good block is index 0. */
	EXPECT_EQ(0, add_block(self->fd, m, 4 * PG, "a", &idx));
	EXPECT_EQ(0U, idx);
}

TEST_F(dev, add_block_zero_length)
{
	uint32_t idx = 99;

	EXPECT_EQ(-1, add_block(self->fd, self->mem, 0, "a", NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, add_block(self->fd, self->mem, PG, "a", &idx));
	EXPECT_EQ(0U, idx);
}

TEST_F(dev, add_block_duplicate_name)
{
	uint8_t *m = self->mem;
	uint32_t idx = 99;

	ASSERT_EQ(0, add_block(self->fd, m, 4 * PG, "ram0", &idx));
	EXPECT_EQ(0U, idx);
	EXPECT_EQ(-1, add_block(self->fd, m + 8 * PG, 4 * PG, "ram0", NULL));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(0, add_block(self->fd, m + 8 * PG, 4 * PG, "ram1", &idx));
	EXPECT_EQ(1U, idx);
}

TEST_F(dev, add_block_name_without_nul)
{
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)self->mem, .length = PG,
	};
	uint32_t idx = 99;

	memset(b.name, 'x', sizeof(b.name));
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_ADD_BLOCK, &b));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, add_block(self->fd, self->mem, PG, "a", &idx));
	EXPECT_EQ(0U, idx);
}

/* Unknown flags are refused; RDMAMIG_BLOCK_FRESH is the one known. */
TEST_F(dev, add_block_flags_and_reserved)
{
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)self->mem, .length = PG,
		.name = "a", .flags = RDMAMIG_BLOCK_FLAGS_ALL + 1,
	};

	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_ADD_BLOCK, &b));
	EXPECT_EQ(EINVAL, errno);
	b.flags = 1U << 31 | RDMAMIG_BLOCK_FRESH;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_ADD_BLOCK, &b));
	EXPECT_EQ(EINVAL, errno);
	b.flags = 0;
	b.reserved = 1;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_ADD_BLOCK, &b));
	EXPECT_EQ(EINVAL, errno);
	/* None of those was added: "a" is still free, and index 0. */
	b.reserved = 0;
	b.flags = RDMAMIG_BLOCK_FRESH;
	b.index = 99;
	EXPECT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_ADD_BLOCK, &b));
	EXPECT_EQ(0U, b.index);
}

TEST_F(dev, add_block_not_mapped)
{
	uint8_t *part = map_pages(2);
	uint32_t idx = 99;

	EXPECT_EQ(-1, add_block(self->fd, unmapped_pages(4), 4 * PG, "a", NULL));
	EXPECT_EQ(EFAULT, errno);
	/* Only the first of the two pages is mapped. */
	ASSERT_NE(NULL, part);
	munmap(part + PG, PG);
	EXPECT_EQ(-1, add_block(self->fd, part, 2 * PG, "a", NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, add_block(self->fd, part, PG, "a", &idx));
	EXPECT_EQ(0U, idx);
	munmap(part, PG);
}

TEST_F(dev, add_block_overlap)
{
	uint8_t *m = self->mem;
	uint32_t idx = 99;

	ASSERT_EQ(0, add_block(self->fd, m + 4 * PG, 4 * PG, "a", NULL));
	EXPECT_EQ(-1, add_block(self->fd, m + 6 * PG, 4 * PG, "b", NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("overlapping the end");
	EXPECT_EQ(-1, add_block(self->fd, m + 2 * PG, 4 * PG, "b", NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("overlapping the start");
	EXPECT_EQ(-1, add_block(self->fd, m + 5 * PG, PG, "b", NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("inside");
	EXPECT_EQ(-1, add_block(self->fd, m, 16 * PG, "b", NULL));
	EXPECT_EQ(EINVAL, errno) TH_LOG("around");
	/* Adjacent is not overlapping. */
	EXPECT_EQ(0, add_block(self->fd, m + 8 * PG, 4 * PG, "b", &idx));
	EXPECT_EQ(1U, idx);
}

TEST_F(dev, add_block_bad_pointer)
{
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_ADD_BLOCK, unmapped_pages(1)));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, rounds_before_connect)
{
	uint64_t bitmap = 1;
	struct rdmamig_round r = {
		.size = sizeof(r), .block = 0, .first_page = 0, .npages = 1,
		.bitmap = (uintptr_t)&bitmap,
	};
	struct snapshot s;
	int pass;

	/* Once without blocks, once with one. */
	for (pass = 0; pass < 2; pass++) {
		if (pass)
			ASSERT_EQ(0, add_block(self->fd, self->mem, 4 * PG, "a", NULL));
		snap(self->fd, &s);
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SEND_ROUND, &r));
		EXPECT_EQ(ENOTCONN, errno);
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_END_ROUND));
		EXPECT_EQ(ENOTCONN, errno);
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_COMPLETE));
		EXPECT_EQ(ENOTCONN, errno);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
}

/*
 * Post-copy's calls on a session that never connected: the argument
 * checks first (EINVAL), then ENOTCONN; nothing changes.
 */
TEST_F(dev, postcopy_calls_before_connect)
{
	uint64_t bitmap = 1, owed[1];
	struct rdmamig_round r = {
		.size = sizeof(r), .flags = RDMAMIG_ROUND_POSTCOPY, .block = 0,
		.npages = 1, .bitmap = (uintptr_t)&bitmap,
	};
	struct rdmamig_round o = {
		.size = sizeof(o), .block = 0, .npages = 4, .bitmap = (uintptr_t)owed,
	};
	struct rdmamig_fetch f = {
		.size = sizeof(f), .addr = (uintptr_t)self->mem,
		.buf = (uintptr_t)self->mem + 8 * PG, .buf_len = 4 * PG,
	};
	struct snapshot s;

	ASSERT_EQ(0, add_block(self->fd, self->mem, 4 * PG, "a", NULL));
	snap(self->fd, &s);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SEND_ROUND, &r));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_POSTCOPY));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_FETCH, &f));
	EXPECT_EQ(ENOTCONN, errno);
	f.flags = RDMAMIG_FETCH_SWEEP;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_FETCH, &f));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_OWED, &o));
	EXPECT_EQ(ENOTCONN, errno);
	/* Bad arguments are refused as such, in any state. */
	f.flags = RDMAMIG_FETCH_IN_PLACE << 1;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_FETCH, &f));
	EXPECT_EQ(EINVAL, errno);
	o.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_OWED, &o));
	EXPECT_EQ(EINVAL, errno);
	r.flags |= RDMAMIG_ROUND_FINAL;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SEND_ROUND, &r));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
}

TEST_F(dev, connect_bad_host)
{
	static const char *const hosts[] = {
		"", "not-an-address", "10.0.2", "10.0.2.15.1", "256.1.1.1",
		"::g", "[::1]",
	};
	struct rdmamig_addr a;
	struct snapshot s;
	unsigned int i;

	ASSERT_EQ(0, add_block(self->fd, self->mem, 4 * PG, "a", NULL));
	snap(self->fd, &s);
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		a = make_addr(hosts[i], 4000, 1000);
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_CONNECT, &a));
		EXPECT_EQ(EINVAL, errno) TH_LOG("host \"%s\"", hosts[i]);
	}
	a = make_addr("", 4000, 1000);
	memset(a.host, '1', sizeof(a.host));	/* no NUL */
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_CONNECT, &a));
	EXPECT_EQ(EINVAL, errno) TH_LOG("host without NUL");
	a = make_addr("127.0.0.1", 4000, 1000);
	a.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_CONNECT, &a));
	EXPECT_EQ(EINVAL, errno) TH_LOG("flags");
	EXPECT_TRUE(unchanged(self->fd, &s));
}

TEST_F(dev, accept_without_listen)
{
	struct snapshot s;

	ASSERT_EQ(0, add_block(self->fd, self->mem, 4 * PG, "a", NULL));
	snap(self->fd, &s);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_ACCEPT, 100UL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
}

TEST_F(dev, close_without_connection)
{
	int fd = dev_open(0);

	/* Fresh, then with a block: close() cancels and frees either. */
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, close(fd));
	fd = dev_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, add_block(fd, self->mem, 16 * PG, "a", NULL));
	EXPECT_EQ(0, close(fd));
	/* The memory is the process's again, and can be registered anew. */
	memset(self->mem, 0x5a, 16 * PG);
	EXPECT_EQ(0, add_block(self->fd, self->mem, 16 * PG, "a", NULL));
}

/* ---- sessions connected over rxe -------------------------------------- */

FIXTURE(net) {
	const char *addr;
	pid_t child;
	int rfd;		/* the child's reports */
};

FIXTURE_SETUP(net)
{
	self->addr = getenv("RDMAMIG_LOCAL_ADDR");
	self->child = -1;
	self->rfd = -1;
}

FIXTURE_TEARDOWN(net)
{
	/* A test that ran as nobody kept root as its saved uid for this. */
	if (geteuid() && (setresuid(0, 0, 0) || setresgid(0, 0, 0)))
		TH_LOG("cannot become root again: %s", strerror(errno));
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	if (self->rfd >= 0)
		close(self->rfd);
}

/* The harness (6.1) runs a test even when its setup skipped: check here. */
#define NEED_NET() do {							\
	if (!self->addr || !*self->addr)				\
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set (no testbed)");	\
} while (0)

/* A listening session at port 0 tells whether rxe is there at all. */
static int listen_on(int fd, const char *host, uint16_t *port)
{
	struct rdmamig_addr a = make_addr(host, 0, 0);

	if (ioctl(fd, RDMAMIG_IOC_LISTEN, &a))
		return -1;
	*port = a.port;
	return 0;
}

#define NO_RDMA(e) ((e) == EADDRNOTAVAIL || (e) == ENODEV || (e) == ENETUNREACH)

TEST_F(net, listen_twice)
{
	void *mem = map_pages(4);
	uint16_t port = 0, port2 = 0;
	struct rdmamig_stats st;
	struct snapshot s;
	int fd;

	NEED_NET();
	fd = dev_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, add_block(fd, mem, 4 * PG, "a", NULL));
	if (listen_on(fd, self->addr, &port) && NO_RDMA(errno))
		SKIP(return, "no RDMA at %s: %s", self->addr, strerror(errno));
	ASSERT_NE(0, port) TH_LOG("LISTEN: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_ROLE_DEST, st.role);
	snap(fd, &s);
	EXPECT_EQ(-1, listen_on(fd, self->addr, &port2));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_TRUE(unchanged(fd, &s));
	close(fd);
}

TEST_F(net, wait_event_nonblock_nothing_pending)
{
	void *mem = map_pages(4);
	struct rdmamig_event ev = { .size = sizeof(ev) };
	struct pollfd pfd;
	uint16_t port;
	int fd;

	NEED_NET();
	fd = dev_open(O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, add_block(fd, mem, 4 * PG, "a", NULL));
	if (listen_on(fd, self->addr, &port) && NO_RDMA(errno))
		SKIP(return, "no RDMA at %s: %s", self->addr, strerror(errno));
	ASSERT_NE(0, port) TH_LOG("LISTEN: %s", strerror(errno));
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev));
	EXPECT_EQ(EAGAIN, errno);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	close(fd);
}

/* -- the destination, in a child ---------------------------------------- */

enum dest_then {
	DEST_FOLLOW,		/* wait for COMPLETED/FAILED, check the data */
	DEST_CLOSE,		/* close the fd close_ms after ACCEPT */
	DEST_POSTCOPY,		/* post-copy's calls, then fetch it all */
};

/*
 * The post-copy tests' pages: the source re-writes these (with seed + 1)
 * after the bulk round and owes them: pages 3, 100-131, 600 and 1023 of a
 * 4 MiB block, in three of its four 1 MiB chunks.  Page 0 is never owed.
 */
#define PC_LEN		(4 * MIB)
#define PC_FAULT	100	/* the first page of the 32-page run */
#define PC_OWED		35

/* The module's post-copy fault window in pages; 0 if it cannot be read. */
static uint64_t module_fault_window(void)
{
	FILE *f = fopen("/sys/module/rdmamig/parameters/fault_window", "r");
	unsigned int w = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%u", &w) != 1)
		w = 0;
	fclose(f);
	/* The fault is at the start of a 32-page run of owed pages. */
	return w > 32 ? 32 : w;
}

static bool bit_set_in(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static bool pc_owed_page(uint64_t pg)
{
	return pg == 3 || (pg >= PC_FAULT && pg < PC_FAULT + 32) || pg == 600 ||
	       pg == 1023;
}

/* The source's memory at the switch: what the destination must hold. */
static uint64_t pc_bad_pages(const uint8_t *mem, uint64_t seed)
{
	uint64_t bad = 0, pg, i;
	const uint64_t *w;

	for (pg = 0; pg < PC_LEN / PG; pg++) {
		w = (const uint64_t *)(mem + pg * PG);
		for (i = 0; i < PG / 8; i++) {
			if (w[i] != pattern(pc_owed_page(pg) ? seed + 1 : seed,
					    pg * PG / 8 + i)) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

/* What the destination child saw of post-copy (DEST_POSTCOPY). */
struct pc_report {
	int before_fetch, before_owed;	/* errnos before the switch */
	uint64_t ev_pages;		/* RDMAMIG_EVENT_POSTCOPY */
	uint64_t owed;			/* bits OWED set */
	int owed_ok;			/* ... exactly the pages owed */
	int e_owed_flags, e_owed_reserved, e_owed_range;
	int e_flags, e_flags_high, e_misaligned, e_len_odd, e_len_zero,
	    e_len_big, e_outside, e_not_owed, e_postcopy, e_send_round,
	    e_inplace_buf;
	uint64_t inplace_pages;		/* the first sweep call's, read in place */
	uint64_t fault_npages, fault_start_ok, refetch_npages;
	uint64_t sweep_pages, sweep_calls;
	int sweep_err;
	uint64_t after_npages, after_remaining, after_fault_npages;
	int after_ret, after_fault_ret;
	uint32_t state_after;
	struct rdmamig_stats st;	/* after completion (reason cut) */
};

struct dest_cfg {
	uint64_t caps;		/* allowed */
	uint64_t len;		/* one block "ram0" */
	uint32_t accept_ms;
	bool as_nobody;		/* RLIMIT_MEMLOCK 1 MiB, uid 65534, after open */
	enum dest_then then;
	uint32_t close_ms;
	uint64_t seed;		/* DEST_FOLLOW: expected content ... */
	int64_t zero_page;	/* ... with this page zero */
	const char *state;	/* ... and this device state */
};

enum { MSG_LISTEN, MSG_ACCEPT, MSG_END };

struct dest_msg {
	int op, ret, err;
	uint16_t port;
	uint32_t state;		/* stats */
	uint64_t caps;
	uint32_t event;		/* MSG_END: COMPLETED or FAILED (or 0) */
	int32_t ev_error;
	int read_err;		/* read() after FAILED */
	uint64_t bad_pages;
	int state_ok;		/* device state as expected, then EOF */
	char reason[RDMAMIG_REASON_MAX];
	struct pc_report pc;	/* DEST_POSTCOPY */
};

static void report(int wfd, int fd, struct dest_msg *m, int op, int ret)
{
	struct rdmamig_stats st;

	m->op = op;
	m->ret = ret;
	m->err = ret ? errno : 0;
	if (fd >= 0 && !get_stats(fd, &st)) {
		m->state = st.state;
		m->caps = st.caps;
		memcpy(m->reason, st.reason, sizeof(m->reason));
		m->reason[sizeof(m->reason) - 1] = 0;
	}
	if (write(wfd, m, sizeof(*m)) != sizeof(*m))
		_exit(1);
}

static void dest_follow(int fd, const struct dest_cfg *c, void *mem,
			struct dest_msg *m)
{
	struct rdmamig_event ev;
	char buf[256];
	size_t got = 0, want = c->state ? strlen(c->state) : 0;
	ssize_t n;

	for (;;) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev)) {
			m->ret = -1;
			m->err = errno;
			return;
		}
		if (ev.type == RDMAMIG_EVENT_COMPLETED ||
		    ev.type == RDMAMIG_EVENT_FAILED)
			break;
	}
	m->event = ev.type;
	m->ev_error = ev.error;
	if (ev.type == RDMAMIG_EVENT_FAILED) {
		m->read_err = read(fd, buf, sizeof(buf)) < 0 ? errno : 0;
		return;
	}
	while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += n;
	m->state_ok = n == 0 && got == want && !memcmp(buf, c->state, want);
	m->bad_pages = bad_pages(mem, c->len, c->seed, c->zero_page);
}

static int errno_of(int ret)
{
	return ret ? errno : 0;
}

static int fetch(int fd, uint32_t flags, uint64_t addr, void *buf, uint64_t len,
		 struct rdmamig_fetch *f)
{
	memset(f, 0, sizeof(*f));
	f->size = sizeof(*f);
	f->flags = flags;
	f->addr = addr;
	f->buf = (uintptr_t)buf;
	f->buf_len = len;
	return ioctl(fd, RDMAMIG_IOC_FETCH, f);
}

static int owed_of(int fd, uint32_t flags, uint32_t reserved, uint64_t first,
		   uint64_t npages, uint64_t *bitmap)
{
	struct rdmamig_round r = {
		.size = sizeof(r), .flags = flags, .reserved = reserved, .block = 0,
		.first_page = first, .npages = npages, .bitmap = (uintptr_t)bitmap,
	};

	return ioctl(fd, RDMAMIG_IOC_OWED, &r);
}

/*
 * DEST_POSTCOPY, after ACCEPT: FETCH and OWED before the switch; at the
 * switch, every bad argument; one fault and its window; the sweep to its
 * end (placing with memcpy); completion; the calls after it.
 */
static void dest_postcopy(int fd, const struct dest_cfg *c, uint8_t *mem,
			  struct dest_msg *m)
{
	static uint64_t owed[PC_LEN / PG / 64];
	struct pc_report *p = &m->pc;
	uint8_t *buf = map_pages(RDMAMIG_FETCH_MAX / PG + 1);
	struct rdmamig_event ev;
	struct rdmamig_fetch f;
	char sbuf[256];
	size_t got = 0, want = c->state ? strlen(c->state) : 0;
	uint64_t pg;
	ssize_t n;
	int ret;

	if (!buf) {
		m->ret = -1;
		m->err = ENOMEM;
		return;
	}
	p->before_fetch = errno_of(fetch(fd, 0, (uintptr_t)mem, buf, PG, &f));
	p->before_owed = errno_of(owed_of(fd, 0, 0, 0, PC_LEN / PG, owed));

	/* Rounds, then the switch. */
	for (;;) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev)) {
			m->ret = -1;
			m->err = errno;
			return;
		}
		if (ev.type == RDMAMIG_EVENT_POSTCOPY ||
		    ev.type == RDMAMIG_EVENT_COMPLETED ||
		    ev.type == RDMAMIG_EVENT_FAILED)
			break;
	}
	m->event = ev.type;
	m->ev_error = ev.error;
	if (ev.type != RDMAMIG_EVENT_POSTCOPY)
		return;
	p->ev_pages = ev.pages;
	/* The device state before the switch, and its end. */
	while ((n = read(fd, sbuf + got, sizeof(sbuf) - got)) > 0)
		got += n;
	m->state_ok = n == 0 && got == want && !memcmp(sbuf, c->state, want);

	p->e_owed_flags = errno_of(owed_of(fd, 1, 0, 0, PC_LEN / PG, owed));
	p->e_owed_reserved = errno_of(owed_of(fd, 0, 1, 0, PC_LEN / PG, owed));
	p->e_owed_range = errno_of(owed_of(fd, 0, 0, 1, PC_LEN / PG, owed));
	memset(owed, 0, sizeof(owed));
	ret = owed_of(fd, 0, 0, 0, PC_LEN / PG, owed);
	p->owed_ok = !ret;
	for (pg = 0; !ret && pg < PC_LEN / PG; pg++) {
		if (bit_set_in(owed, pg))
			p->owed++;
		if (bit_set_in(owed, pg) != pc_owed_page(pg))
			p->owed_ok = 0;
	}

	p->e_flags = errno_of(fetch(fd, RDMAMIG_FETCH_IN_PLACE << 1,
				    (uintptr_t)mem + PC_FAULT * PG, buf, PG, &f));
	p->e_flags_high = errno_of(fetch(fd, RDMAMIG_FETCH_SWEEP | 1U << 31, 0,
					 buf, PG, &f));
	p->e_misaligned = errno_of(fetch(fd, 0, (uintptr_t)mem + PC_FAULT * PG,
					 buf + 8, PG, &f));
	p->e_len_odd = errno_of(fetch(fd, 0, (uintptr_t)mem + PC_FAULT * PG, buf,
				      PG + 512, &f));
	p->e_len_zero = errno_of(fetch(fd, RDMAMIG_FETCH_SWEEP, 0, buf, 0, &f));
	p->e_len_big = errno_of(fetch(fd, RDMAMIG_FETCH_SWEEP, 0, buf,
				      RDMAMIG_FETCH_MAX + PG, &f));
	/* In place: the pages go where they belong, so no buffer is named. */
	p->e_inplace_buf = errno_of(fetch(fd, RDMAMIG_FETCH_IN_PLACE,
					  (uintptr_t)mem + PC_FAULT * PG, buf, PG, &f));
	/* The staging buffer is no RAM block. */
	p->e_outside = errno_of(fetch(fd, 0, (uintptr_t)buf, buf, PG, &f));
	p->e_not_owed = errno_of(fetch(fd, 0, (uintptr_t)mem, buf, PG, &f));
	p->e_postcopy = errno_of(ioctl(fd, RDMAMIG_IOC_POSTCOPY));
	{
		uint64_t one = 1;
		struct rdmamig_round r = {
			.size = sizeof(r), .flags = RDMAMIG_ROUND_POSTCOPY,
			.npages = 1, .bitmap = (uintptr_t)&one,
		};

		p->e_send_round = errno_of(ioctl(fd, RDMAMIG_IOC_SEND_ROUND, &r));
	}

	/* A fault in the middle of the 32-page run: its window comes along. */
	if (!fetch(fd, 0, (uintptr_t)mem + PC_FAULT * PG + 123, buf,
		   RDMAMIG_FETCH_MAX, &f)) {
		p->fault_npages = f.npages;
		p->fault_start_ok = f.start == (uintptr_t)mem + PC_FAULT * PG;
		if (p->fault_start_ok && f.npages <= 32)
			memcpy(mem + PC_FAULT * PG, buf, f.npages * PG);
	}
	/* Fetched already: nothing to place. */
	p->refetch_npages = fetch(fd, 0, (uintptr_t)mem + PC_FAULT * PG, buf, PG, &f) ?
			    UINT64_MAX : f.npages;

	for (;;) {
		/*
		 * The first sweep step reads in place, straight into @mem (not
		 * registered with userfaultfd here): only the final check of
		 * every page sees whether its pages landed right.
		 */
		bool in_place = !p->sweep_calls;

		if (fetch(fd, RDMAMIG_FETCH_SWEEP | (in_place ? RDMAMIG_FETCH_IN_PLACE : 0),
			  0, in_place ? NULL : buf, RDMAMIG_FETCH_MAX, &f)) {
			p->sweep_err = errno;
			break;
		}
		p->sweep_calls++;
		if (!f.npages && !f.remaining)
			break;
		if (!f.npages || f.start < (uintptr_t)mem ||
		    f.start + f.npages * PG > (uintptr_t)mem + PC_LEN) {
			p->sweep_err = EDOM;	/* npages 0 with pages left */
			break;
		}
		if (in_place)
			p->inplace_pages = f.npages;
		else
			memcpy((void *)(uintptr_t)f.start, buf, f.npages * PG);
		p->sweep_pages += f.npages;
	}

	for (;;) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(fd, RDMAMIG_IOC_WAIT_EVENT, &ev)) {
			m->ret = -1;
			m->err = errno;
			return;
		}
		if (ev.type == RDMAMIG_EVENT_COMPLETED || ev.type == RDMAMIG_EVENT_FAILED)
			break;
	}
	m->event = ev.type;
	m->ev_error = ev.error;

	/* After completion: nothing left, for a sweep or a fault. */
	p->after_ret = errno_of(fetch(fd, RDMAMIG_FETCH_SWEEP, 0, buf, PG, &f));
	p->after_npages = f.npages;
	p->after_remaining = f.remaining;
	p->after_fault_ret = errno_of(fetch(fd, 0, (uintptr_t)mem + 600 * PG, buf, PG, &f));
	p->after_fault_npages = f.npages;
	get_stats(fd, &p->st);
	p->state_after = p->st.state;
	m->bad_pages = pc_bad_pages(mem, c->seed);
	munmap(buf, RDMAMIG_FETCH_MAX + PG);
}

static int dest_main(const struct dest_cfg *c, int wfd)
{
	struct rlimit rl = { .rlim_cur = MIB, .rlim_max = MIB };
	struct dest_msg m = { 0 };
	void *mem = map_pages(c->len / PG);
	struct rdmamig_addr a;
	int fd = dev_open(0), ret;

	if (fd < 0 || !mem) {
		report(wfd, -1, &m, MSG_LISTEN, -1);
		return 1;
	}
	/* Unprivileged from here: no CAP_IPC_LOCK, 1 MiB of RLIMIT_MEMLOCK. */
	if (c->as_nobody && (setrlimit(RLIMIT_MEMLOCK, &rl) ||
			     setresgid(65534, 65534, 65534) ||
			     setresuid(65534, 65534, 65534))) {
		report(wfd, fd, &m, MSG_LISTEN, -1);
		return 1;
	}
	/* Changing the effective uid cleared it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ret = c->caps ? set_params(fd, RDMAMIG_PARAM_CAPS, c->caps, 0) : 0;
	if (!ret)
		ret = add_block(fd, mem, c->len, "ram0", NULL);
	if (!ret) {
		a = make_addr(getenv("RDMAMIG_LOCAL_ADDR"), 0, 0);
		ret = ioctl(fd, RDMAMIG_IOC_LISTEN, &a);
		m.port = a.port;
	}
	report(wfd, fd, &m, MSG_LISTEN, ret);
	if (ret)
		return 1;

	ret = ioctl(fd, RDMAMIG_IOC_ACCEPT, (unsigned long)c->accept_ms);
	report(wfd, fd, &m, MSG_ACCEPT, ret);
	if (ret)
		return 1;

	if (c->then == DEST_CLOSE) {
		usleep(c->close_ms * 1000);
		close(fd);
		report(wfd, -1, &m, MSG_END, 0);
		return 0;
	}
	if (c->then == DEST_POSTCOPY) {
		dest_postcopy(fd, c, mem, &m);
		report(wfd, fd, &m, MSG_END, m.ret);
		close(fd);
		return 0;
	}
	dest_follow(fd, c, mem, &m);
	report(wfd, fd, &m, MSG_END, m.ret);
	close(fd);
	return 0;
}

static void start_dest(struct __test_metadata *_metadata,
		       FIXTURE_DATA(net) *self, const struct dest_cfg *c)
{
	int p[2];

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(dest_main(c, p[1]));
	}
	close(p[1]);
	self->rfd = p[0];
}

/* The child's next report, or -1 after timeout_ms. */
static int dest_report(FIXTURE_DATA(net) *self, struct dest_msg *m,
		       int timeout_ms)
{
	struct pollfd pfd = { .fd = self->rfd, .events = POLLIN };

	memset(m, 0, sizeof(*m));
	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	return read(self->rfd, m, sizeof(*m)) == sizeof(*m) ? 0 : -1;
}

/* The child's LISTEN report: its port, or skip when rxe is missing. */
#define DEST_LISTENING(m) do {						\
	ASSERT_EQ(0, dest_report(self, &(m), 10000))			\
		TH_LOG("no LISTEN report from the destination");	\
	ASSERT_EQ((int)MSG_LISTEN, (m).op);					\
	if ((m).ret && NO_RDMA((m).err))				\
		SKIP(return, "no RDMA at %s: %s", self->addr,		\
		     strerror((m).err));				\
	ASSERT_EQ(0, (m).ret) TH_LOG("destination setup: %s (%s)",	\
				     strerror((m).err), (m).reason);	\
} while (0)

/* A source session with one block "ram0" of len bytes at *mem. */
static int source_open(uint64_t caps, uint64_t len, void **mem)
{
	int fd = dev_open(0);

	*mem = map_pages(len / PG);
	if (fd < 0 || !*mem)
		return -1;
	if (caps && set_params(fd, RDMAMIG_PARAM_CAPS, caps, 0))
		return -1;
	if (add_block(fd, *mem, len, "ram0", NULL))
		return -1;
	return fd;
}

static int source_connect(int fd, const char *host, uint16_t port)
{
	struct rdmamig_addr a = make_addr(host, port, 10000);

	return ioctl(fd, RDMAMIG_IOC_CONNECT, &a);
}

static int send_all(int fd, uint64_t npages, uint32_t flags, uint64_t *bitmap)
{
	struct rdmamig_round r = {
		.size = sizeof(r), .flags = flags, .block = 0,
		.first_page = 0, .npages = npages, .bitmap = (uintptr_t)bitmap,
	};

	return ioctl(fd, RDMAMIG_IOC_SEND_ROUND, &r);
}

TEST_F_TIMEOUT(net, block_mismatch, 60)
{
	struct dest_cfg c = { .len = 8 * PG, .accept_ms = 15000 };
	struct rdmamig_stats st;
	struct dest_msg m;
	void *mem;
	int fd;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);

	fd = source_open(0, 16 * PG, &mem);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, source_connect(fd, self->addr, m.port));
	EXPECT_EQ(EPROTO, errno);
	ASSERT_EQ(0, get_stats(fd, &st));
	TH_LOG("source reason: \"%s\"", st.reason);
	EXPECT_NE(NULL, strstr(st.reason, "ram0"));

	ASSERT_EQ(0, dest_report(self, &m, 20000)) TH_LOG("destination hangs");
	EXPECT_EQ((int)MSG_ACCEPT, m.op);
	EXPECT_EQ(-1, m.ret);
	TH_LOG("destination ACCEPT: %s, reason \"%s\"", strerror(m.err), m.reason);
	close(fd);
}

TEST_F_TIMEOUT(net, version_mismatch, 60)
{
	struct dest_cfg c = { .len = 8 * PG, .accept_ms = 5000 };
	struct rdmamig_params p = {
		.size = sizeof(p), .mask = RDMAMIG_PARAM_WIRE_VERSION,
		.wire_version = 0,
	};
	struct rdmamig_stats st;
	struct dest_msg m;
	void *mem;
	int fd;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);

	fd = source_open(0, 8 * PG, &mem);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_SET_PARAMS, &p)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(-1, source_connect(fd, self->addr, m.port));
	EXPECT_EQ(ECONNREFUSED, errno);
	ASSERT_EQ(0, get_stats(fd, &st));
	TH_LOG("source reason: \"%s\"", st.reason);
	EXPECT_NE(NULL, strcasestr(st.reason, "version"));

	/* The destination rejected it; it may fail or wait on: not hang. */
	ASSERT_EQ(0, dest_report(self, &m, 20000)) TH_LOG("destination hangs");
	TH_LOG("destination ACCEPT: %d %s, reason \"%s\"", m.ret,
	       m.ret ? strerror(m.err) : "", m.reason);
	close(fd);
}

/*
 * The source wants pin-all, the destination does not allow it: the
 * session runs in dynamic mode.  Migrated for real, in two rounds, to
 * see the downgraded session works.
 */
TEST_F_TIMEOUT(net, missing_capability_downgrades, 90)
{
	const uint64_t len = 4 * MIB, npages = len / PG;
	const char *state = "device state of the downgrade test";
	struct dest_cfg c = {
		.len = len, .accept_ms = 15000, .then = DEST_FOLLOW,
		.seed = 42, .zero_page = 5, .state = state,
	};
	uint64_t bitmap[npages / 64];
	struct rdmamig_stats st;
	struct dest_msg m;
	uint8_t *mem;
	int fd;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);

	fd = source_open(RDMAMIG_CAP_PIN_ALL, len, (void **)&mem);
	ASSERT_LE(0, fd);
	fill(mem, len, c.seed);
	ASSERT_EQ(0, source_connect(fd, self->addr, m.port))
		TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(0ULL, st.caps & RDMAMIG_CAP_PIN_ALL) TH_LOG("caps %#llx",
							 (unsigned long long)st.caps);
	/* Same test key on both ends: each proved it to the other. */
	EXPECT_EQ(RDMAMIG_CAP_AUTH, st.caps & RDMAMIG_CAP_AUTH);
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ((int)MSG_ACCEPT, m.op);
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s (%s)", strerror(m.err), m.reason);
	EXPECT_EQ(0ULL, m.caps & RDMAMIG_CAP_PIN_ALL);
	EXPECT_EQ(RDMAMIG_CAP_AUTH, m.caps & RDMAMIG_CAP_AUTH);

	memset(bitmap, 0xff, sizeof(bitmap));
	ASSERT_EQ(0, send_all(fd, npages, 0, bitmap)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_END_ROUND)) TH_LOG("%s", strerror(errno));
	memset(mem + c.zero_page * PG, 0, PG);
	memset(bitmap, 0, sizeof(bitmap));
	bitmap[0] = 1ULL << c.zero_page;
	ASSERT_EQ(0, send_all(fd, npages, RDMAMIG_ROUND_FINAL, bitmap));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_END_ROUND)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ((ssize_t)strlen(state), write(fd, state, strlen(state)));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_COMPLETE)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state);
	EXPECT_EQ(2ULL, st.rounds);
	EXPECT_EQ((uint64_t)npages + 1, (uint64_t)(st.pages + st.zero_pages));
	close(fd);

	ASSERT_EQ(0, dest_report(self, &m, 20000)) TH_LOG("destination hangs");
	EXPECT_EQ((int)MSG_END, m.op);
	EXPECT_EQ((uint32_t)RDMAMIG_EVENT_COMPLETED, m.event)
		TH_LOG("event %u error %d (%s)", m.event, m.ev_error, m.reason);
	EXPECT_EQ(0ULL, m.bad_pages);
	EXPECT_TRUE(m.state_ok);
}

/*
 * RLIMIT_MEMLOCK too small for pin-all: an unprivileged destination with
 * 64 MiB to pin and a 1 MiB limit fails at LISTEN or ACCEPT with ENOMEM,
 * its reason naming the limit; the source sees the connection fail.
 */
TEST_F_TIMEOUT(net, memlock_limit, 60)
{
	const uint64_t len = 64 * MIB;
	struct dest_cfg c = {
		.caps = RDMAMIG_CAP_PIN_ALL, .len = len, .accept_ms = 15000,
		.as_nobody = true,
	};
	struct dest_msg m;
	void *mem;
	int fd, ret;

	NEED_NET();
	start_dest(_metadata, self, &c);
	ASSERT_EQ(0, dest_report(self, &m, 10000));
	if (m.ret && NO_RDMA(m.err))
		SKIP(return, "no RDMA at %s: %s", self->addr, strerror(m.err));
	if (m.ret == 0) {
		fd = source_open(RDMAMIG_CAP_PIN_ALL, len, &mem);
		ASSERT_LE(0, fd);
		ret = source_connect(fd, self->addr, m.port);
		EXPECT_EQ(-1, ret);
		TH_LOG("source CONNECT: %s", ret ? strerror(errno) : "connected");
		ASSERT_EQ(0, dest_report(self, &m, 20000)) TH_LOG("destination hangs");
		close(fd);
	}
	TH_LOG("destination %s: %s, reason \"%s\"",
	       m.op == MSG_LISTEN ? "LISTEN" : "ACCEPT", strerror(m.err), m.reason);
	EXPECT_EQ(-1, m.ret);
	EXPECT_EQ(ENOMEM, m.err);
	EXPECT_TRUE(strcasestr(m.reason, "limit") || strcasestr(m.reason, "memlock") ||
		    strstr(m.reason, "1048576"));
}

TEST_F_TIMEOUT(net, close_listening, 60)
{
	struct timespec t0;
	uint16_t port = 0;
	void *mem = map_pages(4), *smem;
	int dfd, fd;

	NEED_NET();
	dfd = dev_open(0);
	ASSERT_LE(0, dfd);
	ASSERT_EQ(0, add_block(dfd, mem, 4 * PG, "ram0", NULL));
	if (listen_on(dfd, self->addr, &port) && NO_RDMA(errno))
		SKIP(return, "no RDMA at %s: %s", self->addr, strerror(errno));
	ASSERT_NE(0, port);
	EXPECT_EQ(0, close(dfd));

	/* Nobody listens there any more. */
	fd = source_open(0, 4 * PG, &smem);
	ASSERT_LE(0, fd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(-1, source_connect(fd, self->addr, port));
	EXPECT_EQ(ECONNREFUSED, errno);
	TH_LOG("CONNECT failed after %llu ms", (unsigned long long)msec_since(&t0));
	close(fd);
}

/*
 * Mid-round: 16 MiB at 4 MB/s keeps the bulk round on the wire for
 * about 4 s, so the closes below land in it.
 */
#define SLOW_LEN	(16 * MIB)
#define SLOW_BW		4000000

static int slow_source(const char *host, uint16_t port, void **mem,
		       uint64_t *bitmap)
{
	int fd = source_open(0, SLOW_LEN, mem);

	if (fd < 0)
		return -1;
	fill(*mem, SLOW_LEN, 7);
	if (set_params(fd, RDMAMIG_PARAM_MAX_BANDWIDTH, 0, SLOW_BW) ||
	    source_connect(fd, host, port))
		return -1;
	memset(bitmap, 0xff, SLOW_LEN / PG / 8);
	return fd;
}

TEST_F_TIMEOUT(net, close_source_mid_round, 60)
{
	struct dest_cfg c = { .len = SLOW_LEN, .accept_ms = 15000, .then = DEST_FOLLOW };
	static uint64_t bitmap[SLOW_LEN / PG / 64];
	struct timespec t0;
	struct dest_msg m;
	void *mem;
	int fd;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = slow_source(self->addr, m.port, &mem, bitmap);
	ASSERT_LE(0, fd) TH_LOG("source: %s", strerror(errno));
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s", strerror(m.err));

	EXPECT_EQ(0, send_all(fd, SLOW_LEN / PG, 0, bitmap)) TH_LOG("%s", strerror(errno));
	usleep(500 * 1000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(0, close(fd));

	ASSERT_EQ(0, dest_report(self, &m, 30000)) TH_LOG("destination hangs");
	TH_LOG("destination: after %llu ms event %u error %d, WAIT_EVENT %s, "
	       "read %s, reason \"%s\"", (unsigned long long)msec_since(&t0),
	       m.event, m.ev_error, m.ret ? strerror(m.err) : "ok",
	       strerror(m.read_err), m.reason);
	EXPECT_TRUE(m.event == RDMAMIG_EVENT_FAILED || m.ret == -1);
	if (m.event == RDMAMIG_EVENT_FAILED) {
		EXPECT_GT(0, m.ev_error);
		/* read() fails with the session's error. */
		EXPECT_EQ(-m.ev_error, m.read_err);
	}
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, m.state);
}

TEST_F_TIMEOUT(net, close_dest_mid_round, 60)
{
	struct dest_cfg c = {
		.len = SLOW_LEN, .accept_ms = 15000, .then = DEST_CLOSE,
		.close_ms = 1000,
	};
	static uint64_t bitmap[SLOW_LEN / PG / 64];
	struct rdmamig_stats st;
	struct timespec t0;
	struct dest_msg m;
	void *mem;
	int fd, ret;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = slow_source(self->addr, m.port, &mem, bitmap);
	ASSERT_LE(0, fd) TH_LOG("source: %s", strerror(errno));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = send_all(fd, SLOW_LEN / PG, 0, bitmap);
	if (!ret)
		ret = ioctl(fd, RDMAMIG_IOC_END_ROUND);
	EXPECT_EQ(-1, ret);
	ASSERT_EQ(0, get_stats(fd, &st));
	TH_LOG("source: round failed after %llu ms: %s, reason \"%s\"",
	       (unsigned long long)msec_since(&t0), strerror(errno), st.reason);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, st.state);
	EXPECT_GT(0, st.error);
	/* And the session stays failed. */
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_COMPLETE));
	close(fd);
}

/* ---- post-copy ------------------------------------------------------------ */

/*
 * Post-copy not negotiated: SEND_ROUND(RDMAMIG_ROUND_POSTCOPY) and
 * RDMAMIG_IOC_POSTCOPY give EOPNOTSUPP and change nothing; the session
 * then migrates as pre-copy, verified.  @src_caps/@dst_caps: what each
 * end asks for or allows.
 */
static void postcopy_refused(struct __test_metadata *_metadata,
			     FIXTURE_DATA(net) *self, uint64_t src_caps,
			     uint64_t dst_caps)
{
	const uint64_t len = 4 * MIB, npages = len / PG;
	const char *state = "device state of a migration without post-copy";
	struct dest_cfg c = {
		.caps = dst_caps, .len = len, .accept_ms = 15000,
		.then = DEST_FOLLOW, .seed = 77, .zero_page = -1, .state = state,
	};
	uint64_t bitmap[npages / 64];
	struct rdmamig_stats st;
	struct dest_msg m;
	struct snapshot s;
	uint8_t *mem;
	int fd;

	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = source_open(src_caps, len, (void **)&mem);
	ASSERT_LE(0, fd);
	fill(mem, len, c.seed);
	ASSERT_EQ(0, source_connect(fd, self->addr, m.port))
		TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s (%s)", strerror(m.err), m.reason);
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(0ULL, st.caps & RDMAMIG_CAP_POSTCOPY);
	EXPECT_EQ(0ULL, m.caps & RDMAMIG_CAP_POSTCOPY);

	memset(bitmap, 0xff, sizeof(bitmap));
	snap(fd, &s);
	EXPECT_EQ(-1, send_all(fd, npages, RDMAMIG_ROUND_POSTCOPY, bitmap));
	EXPECT_EQ(EOPNOTSUPP, errno) TH_LOG("SEND_ROUND(POSTCOPY): %s", strerror(errno));
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_POSTCOPY));
	EXPECT_EQ(EOPNOTSUPP, errno) TH_LOG("POSTCOPY: %s", strerror(errno));
	EXPECT_TRUE(unchanged(fd, &s));

	ASSERT_EQ(0, send_all(fd, npages, RDMAMIG_ROUND_FINAL, bitmap))
		TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_END_ROUND)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ((ssize_t)strlen(state), write(fd, state, strlen(state)));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_COMPLETE)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state);
	EXPECT_EQ(0ULL, st.postcopy_owed);
	close(fd);

	ASSERT_EQ(0, dest_report(self, &m, 20000)) TH_LOG("destination hangs");
	EXPECT_EQ((uint32_t)RDMAMIG_EVENT_COMPLETED, m.event)
		TH_LOG("event %u error %d (%s)", m.event, m.ev_error, m.reason);
	EXPECT_EQ(0ULL, m.bad_pages);
	EXPECT_TRUE(m.state_ok);
}

/* The source does not ask for post-copy; the destination would allow it. */
TEST_F_TIMEOUT(net, postcopy_not_wanted, 90)
{
	NEED_NET();
	postcopy_refused(_metadata, self, 0, RDMAMIG_CAP_POSTCOPY);
}

/* The source asks; the destination does not allow it (as an older one). */
TEST_F_TIMEOUT(net, postcopy_not_allowed, 90)
{
	NEED_NET();
	postcopy_refused(_metadata, self, RDMAMIG_CAP_POSTCOPY, 0);
}

/*
 * A post-copy migration of 4 MiB and every call that must fail on the
 * way: on the source (FETCH, OWED: ENOTCONN; SEND_ROUND(POSTCOPY) inside
 * an open round: EBUSY; with FINAL: EINVAL; POSTCOPY twice: ENOTCONN),
 * on the destination before the switch (ENOTCONN) and in post-copy (see
 * dest_postcopy()).  A bulk round, then the source re-writes the pages
 * pc_owed_page() names and owes them; the destination fetches one fault's
 * window and sweeps the rest, and holds the source's memory in the end.
 */
TEST_F_TIMEOUT(net, postcopy_calls, 120)
{
	const uint64_t npages = PC_LEN / PG;
	const char *state = "device state up to the post-copy switch";
	struct dest_cfg c = {
		.caps = RDMAMIG_CAP_POSTCOPY, .len = PC_LEN, .accept_ms = 15000,
		.then = DEST_POSTCOPY, .seed = 99, .state = state,
	};
	static uint64_t bitmap[PC_LEN / PG / 64], owed[PC_LEN / PG / 64];
	uint8_t *mem, *buf = map_pages(4);
	const struct pc_report *p;
	struct rdmamig_stats st;
	struct rdmamig_fetch f;
	uint64_t window;
	struct rdmamig_round o = {
		.size = sizeof(o), .npages = npages, .bitmap = (uintptr_t)owed,
	};
	struct dest_msg m;
	uint64_t pg;
	int fd;

	NEED_NET();
	ASSERT_NE(NULL, buf);
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = source_open(RDMAMIG_CAP_POSTCOPY, PC_LEN, (void **)&mem);
	ASSERT_LE(0, fd);
	fill(mem, PC_LEN, c.seed);
	ASSERT_EQ(0, source_connect(fd, self->addr, m.port))
		TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s (%s)", strerror(m.err), m.reason);
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ(RDMAMIG_CAP_POSTCOPY, st.caps & RDMAMIG_CAP_POSTCOPY);
	EXPECT_EQ(RDMAMIG_CAP_POSTCOPY, m.caps & RDMAMIG_CAP_POSTCOPY);

	/* A source neither fetches nor is owed. */
	memset(&f, 0, sizeof(f));
	f.size = sizeof(f);
	f.addr = (uintptr_t)mem;
	f.buf = (uintptr_t)buf;
	f.buf_len = PG;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_FETCH, &f));
	EXPECT_EQ(ENOTCONN, errno) TH_LOG("FETCH on a source: %s", strerror(errno));
	f.flags = RDMAMIG_FETCH_SWEEP;
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_FETCH, &f));
	EXPECT_EQ(ENOTCONN, errno) TH_LOG("FETCH (sweep) on a source: %s", strerror(errno));
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_OWED, &o));
	EXPECT_EQ(ENOTCONN, errno) TH_LOG("OWED on a source: %s", strerror(errno));

	/* The bulk round; inside it, no post-copy. */
	memset(bitmap, 0xff, sizeof(bitmap));
	ASSERT_EQ(0, send_all(fd, npages, 0, bitmap)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(-1, send_all(fd, npages, RDMAMIG_ROUND_POSTCOPY, bitmap));
	EXPECT_EQ(EBUSY, errno) TH_LOG("SEND_ROUND(POSTCOPY) in a round: %s",
				       strerror(errno));
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_POSTCOPY));
	EXPECT_EQ(EBUSY, errno) TH_LOG("POSTCOPY in a round: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_END_ROUND)) TH_LOG("%s", strerror(errno));

	/* The guest re-writes the owed pages, then stops. */
	memset(bitmap, 0, sizeof(bitmap));
	for (pg = 0; pg < npages; pg++) {
		if (!pc_owed_page(pg))
			continue;
		for (uint64_t i = 0; i < PG / 8; i++)
			((uint64_t *)(mem + pg * PG))[i] = pattern(c.seed + 1, pg * PG / 8 + i);
		bitmap[pg / 64] |= 1ULL << (pg % 64);
	}
	EXPECT_EQ(-1, send_all(fd, npages, RDMAMIG_ROUND_POSTCOPY | RDMAMIG_ROUND_FINAL,
			       bitmap));
	EXPECT_EQ(EINVAL, errno) TH_LOG("SEND_ROUND(POSTCOPY | FINAL): %s", strerror(errno));
	ASSERT_EQ(0, send_all(fd, npages, RDMAMIG_ROUND_POSTCOPY, bitmap))
		TH_LOG("SEND_ROUND(POSTCOPY): %s", strerror(errno));
	ASSERT_EQ((ssize_t)strlen(state), write(fd, state, strlen(state)));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_POSTCOPY)) TH_LOG("POSTCOPY: %s", strerror(errno));
	EXPECT_EQ(-1, ioctl(fd, RDMAMIG_IOC_POSTCOPY));
	EXPECT_EQ(ENOTCONN, errno) TH_LOG("POSTCOPY twice: %s", strerror(errno));
	EXPECT_EQ(-1, write(fd, "x", 1));
	EXPECT_EQ(ENOTCONN, errno) TH_LOG("device state after the switch: %s",
					  strerror(errno));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_COMPLETE)) TH_LOG("COMPLETE: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state);
	EXPECT_EQ((uint64_t)PC_OWED, (uint64_t)st.postcopy_owed);
	TH_LOG("source: owed %llu, postcopy_ms %llu, reason \"%s\"",
	       (unsigned long long)st.postcopy_owed,
	       (unsigned long long)st.postcopy_ms, st.reason);
	close(fd);

	ASSERT_EQ(0, dest_report(self, &m, 30000)) TH_LOG("destination hangs");
	p = &m.pc;
	window = module_fault_window();
	ASSERT_LT(0ULL, window) TH_LOG("no module parameter fault_window");
	EXPECT_EQ((uint32_t)RDMAMIG_EVENT_COMPLETED, m.event)
		TH_LOG("event %u error %d (%s)", m.event, m.ev_error, m.reason);
	EXPECT_EQ(ENOTCONN, p->before_fetch) TH_LOG("FETCH before the switch: %s",
						    strerror(p->before_fetch));
	EXPECT_EQ(ENOTCONN, p->before_owed) TH_LOG("OWED before the switch: %s",
						   strerror(p->before_owed));
	EXPECT_EQ((uint64_t)PC_OWED, p->ev_pages);
	EXPECT_EQ((uint64_t)PC_OWED, p->owed);
	EXPECT_TRUE(p->owed_ok) TH_LOG("OWED's bitmap is not the pages owed");
	EXPECT_TRUE(m.state_ok) TH_LOG("device state before the switch");
	EXPECT_EQ(EINVAL, p->e_owed_flags) TH_LOG("OWED flags 1: %s", strerror(p->e_owed_flags));
	EXPECT_EQ(EINVAL, p->e_owed_reserved);
	EXPECT_EQ(EINVAL, p->e_owed_range) TH_LOG("OWED past the block: %s",
						 strerror(p->e_owed_range));
	EXPECT_EQ(EINVAL, p->e_flags) TH_LOG("FETCH unknown flag: %s", strerror(p->e_flags));
	EXPECT_EQ(EINVAL, p->e_flags_high);
	EXPECT_EQ(EINVAL, p->e_misaligned) TH_LOG("FETCH misaligned buf: %s",
						 strerror(p->e_misaligned));
	EXPECT_EQ(EINVAL, p->e_len_odd);
	EXPECT_EQ(EINVAL, p->e_len_zero);
	EXPECT_EQ(EINVAL, p->e_len_big);
	EXPECT_EQ(EINVAL, p->e_inplace_buf) TH_LOG("FETCH in place with a buffer: %s",
						  strerror(p->e_inplace_buf));
	EXPECT_LT(0ULL, p->inplace_pages) TH_LOG("the first sweep step read nothing in place");
	EXPECT_EQ(EFAULT, p->e_outside) TH_LOG("FETCH outside the blocks: %s",
					       strerror(p->e_outside));
	EXPECT_EQ(ENOENT, p->e_not_owed) TH_LOG("FETCH of a page never owed: %s",
						strerror(p->e_not_owed));
	EXPECT_EQ(ENOTCONN, p->e_postcopy) TH_LOG("POSTCOPY on a destination: %s",
						  strerror(p->e_postcopy));
	EXPECT_EQ(ENOTCONN, p->e_send_round) TH_LOG("SEND_ROUND(POSTCOPY) on a destination: %s",
						    strerror(p->e_send_round));
	/* The fault's page and the owed pages after it, fault_window of them. */
	EXPECT_TRUE(p->fault_start_ok);
	EXPECT_EQ(window, p->fault_npages);
	EXPECT_EQ(0ULL, p->refetch_npages);
	EXPECT_EQ(0, p->sweep_err) TH_LOG("sweep: %s", strerror(p->sweep_err));
	EXPECT_EQ((uint64_t)PC_OWED - window, p->sweep_pages);
	EXPECT_EQ(0, p->after_ret) TH_LOG("sweep after completion: %s", strerror(p->after_ret));
	EXPECT_EQ(0ULL, p->after_npages);
	EXPECT_EQ(0ULL, p->after_remaining);
	EXPECT_EQ(0, p->after_fault_ret);
	EXPECT_EQ(0ULL, p->after_fault_npages);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, p->state_after);
	EXPECT_EQ((uint64_t)PC_OWED, (uint64_t)p->st.postcopy_owed);
	EXPECT_EQ(1ULL, (uint64_t)p->st.postcopy_faults);
	EXPECT_EQ(window, (uint64_t)p->st.postcopy_fault_pages);
	EXPECT_EQ((uint64_t)PC_OWED - window, (uint64_t)p->st.postcopy_sweep_pages);
	EXPECT_EQ(0ULL, (uint64_t)p->st.postcopy_fetched_twice);
	EXPECT_LT(0ULL, (uint64_t)p->st.fault_us_p50);
	EXPECT_LE(p->st.fault_us_p50, p->st.fault_us_p99);
	EXPECT_LE(p->st.fault_us_p99, p->st.fault_us_max);
	TH_LOG("destination: %llu sweep calls; fault service p50 %llu p99 %llu max %llu us",
	       (unsigned long long)p->sweep_calls, (unsigned long long)p->st.fault_us_p50,
	       (unsigned long long)p->st.fault_us_p99, (unsigned long long)p->st.fault_us_max);
	EXPECT_EQ(0ULL, m.bad_pages);
}

/*
 * The switch with nothing owed (the last round left nothing dirty): the
 * destination gets RDMAMIG_EVENT_POSTCOPY with 0 pages, then COMPLETED
 * at once; the source's COMPLETE returns.
 */
TEST_F_TIMEOUT(net, postcopy_nothing_owed, 90)
{
	const uint64_t npages = PC_LEN / PG;
	const char *state = "device state, nothing owed";
	struct dest_cfg c = {
		.caps = RDMAMIG_CAP_POSTCOPY, .len = PC_LEN, .accept_ms = 15000,
		.then = DEST_POSTCOPY, .seed = 5, .state = state,
	};
	static uint64_t bitmap[PC_LEN / PG / 64];
	struct rdmamig_stats st;
	struct dest_msg m;
	uint8_t *mem;
	uint64_t pg;
	int fd;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = source_open(RDMAMIG_CAP_POSTCOPY, PC_LEN, (void **)&mem);
	ASSERT_LE(0, fd);
	/* What pc_bad_pages() expects, sent in the one round. */
	for (pg = 0; pg < npages; pg++)
		for (uint64_t i = 0; i < PG / 8; i++)
			((uint64_t *)(mem + pg * PG))[i] =
				pattern(pc_owed_page(pg) ? c.seed + 1 : c.seed, pg * PG / 8 + i);
	ASSERT_EQ(0, source_connect(fd, self->addr, m.port))
		TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s (%s)", strerror(m.err), m.reason);
	memset(bitmap, 0xff, sizeof(bitmap));
	ASSERT_EQ(0, send_all(fd, npages, 0, bitmap)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_END_ROUND)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ((ssize_t)strlen(state), write(fd, state, strlen(state)));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_POSTCOPY)) TH_LOG("POSTCOPY: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_COMPLETE)) TH_LOG("COMPLETE: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state);
	EXPECT_EQ(0ULL, st.postcopy_owed);
	close(fd);

	ASSERT_EQ(0, dest_report(self, &m, 30000)) TH_LOG("destination hangs");
	EXPECT_EQ((uint32_t)RDMAMIG_EVENT_COMPLETED, m.event)
		TH_LOG("event %u error %d (%s)", m.event, m.ev_error, m.reason);
	EXPECT_EQ(0ULL, m.pc.ev_pages);
	EXPECT_TRUE(m.state_ok);
	EXPECT_EQ(0ULL, m.pc.sweep_pages);
	EXPECT_EQ(0ULL, (uint64_t)m.pc.st.postcopy_owed);
	EXPECT_EQ(0ULL, m.bad_pages);
}

/* ---- source pins: accounted, bounded, released; signals ---------------- */

/*
 * Become unprivileged as the destination child does, with RLIMIT_MEMLOCK
 * at @limit: uid and gid nobody, no CAP_IPC_LOCK.  Root stays the saved
 * uid, so that the fixture's teardown can kill the root destination.
 */
static int as_nobody(uint64_t limit)
{
	struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setresgid(65534, 65534, 0) ||
	    setresuid(65534, 65534, 0))
		return -1;
	return 0;
}

/* Samples VmPin every 5 ms until told to stop; keeps the highest. */
struct pin_sampler {
	pthread_t th;
	volatile int stop;
	long max_kb;
	unsigned int samples;
};

static void *pin_sampler_main(void *arg)
{
	struct pin_sampler *ps = arg;
	long kb;

	while (!ps->stop) {
		kb = vm_pin_kb();
		if (kb > ps->max_kb)
			ps->max_kb = kb;
		ps->samples++;
		usleep(5000);
	}
	return NULL;
}

/*
 * An unprivileged source whose RLIMIT_MEMLOCK cannot hold one 1 MiB chunk
 * per window (it pins two windows: one scanned while the other is
 * written) is refused at CONNECT with ENOMEM, its reason naming the limit
 * and the bytes it needs.  Before its pins were accounted it connected.
 */
TEST_F_TIMEOUT(net, source_memlock_refused, 60)
{
	struct dest_cfg c = { .len = 4 * MIB, .accept_ms = 3000 };
	struct rdmamig_stats st;
	struct dest_msg m;
	void *mem;
	int fd, ret;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = source_open(0, 4 * MIB, &mem);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, as_nobody(MIB)) TH_LOG("%s", strerror(errno));
	ret = source_connect(fd, self->addr, m.port);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_EQ(0, get_stats(fd, &st));
	TH_LOG("source CONNECT: %s, reason \"%s\"", ret ? strerror(errno) : "connected",
	       st.reason);
	EXPECT_NE(NULL, strstr(st.reason, "memlock limit 1048576 bytes"));
	EXPECT_NE(NULL, strstr(st.reason, "2097152 bytes needed"));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, st.state) TH_LOG("refused before it started");
	close(fd);
	/* The destination gives up waiting; it must not hang. */
	ASSERT_EQ(0, dest_report(self, &m, 20000)) TH_LOG("destination hangs");
}

/*
 * An unprivileged source with Debian's default RLIMIT_MEMLOCK (8 MiB)
 * migrates 32 MiB, more than its usual two windows of 16 chunks: its
 * windows shrink to what the limit holds.  Its pins are charged to its
 * VmPin (mm->pinned_vm) while the round runs, never above the limit, and
 * given back at the end.  Before the fix VmPin stayed 0 on the source.
 */
TEST_F_TIMEOUT(net, source_pins_accounted, 120)
{
	const uint64_t len = 32 * MIB, npages = len / PG, limit = 8 * MIB;
	struct dest_cfg c = {
		.len = len, .accept_ms = 15000, .then = DEST_FOLLOW,
		.seed = 11, .zero_page = -1,
	};
	static uint64_t bitmap[32 * MIB / PG / 64];
	struct pin_sampler ps = { .max_kb = -1 };
	struct rdmamig_stats st;
	struct dest_msg m;
	long before, after;
	uint8_t *mem;
	int fd;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	fd = source_open(0, len, (void **)&mem);
	ASSERT_LE(0, fd);
	fill(mem, len, c.seed);
	/* 16 MB/s: the round takes two seconds or more, to be sampled. */
	ASSERT_EQ(0, set_params(fd, RDMAMIG_PARAM_MAX_BANDWIDTH, 0, 16000000));
	ASSERT_EQ(0, as_nobody(limit)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, source_connect(fd, self->addr, m.port))
		TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s (%s)", strerror(m.err), m.reason);

	before = vm_pin_kb();
	ASSERT_LE(0, before);
	ASSERT_EQ(0, pthread_create(&ps.th, NULL, pin_sampler_main, &ps));
	memset(bitmap, 0xff, sizeof(bitmap));
	EXPECT_EQ(0, send_all(fd, npages, RDMAMIG_ROUND_FINAL, bitmap))
		TH_LOG("SEND_ROUND: %s", strerror(errno));
	ps.stop = 1;
	pthread_join(ps.th, NULL);
	EXPECT_EQ(0, ioctl(fd, RDMAMIG_IOC_END_ROUND)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(0, ioctl(fd, RDMAMIG_IOC_COMPLETE)) TH_LOG("%s", strerror(errno));
	after = vm_pin_kb();
	ASSERT_EQ(0, get_stats(fd, &st));
	TH_LOG("VmPin %ld kB before, at most %ld kB in %u samples, %ld kB after; "
	       "state %u, reason \"%s\"", before, ps.max_kb, ps.samples, after,
	       st.state, st.reason);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state);
	EXPECT_LT(before, ps.max_kb) TH_LOG("the source's pins are not in VmPin");
	EXPECT_GE((long)(limit >> 10), ps.max_kb) TH_LOG("pinned past RLIMIT_MEMLOCK");
	EXPECT_EQ(before, after) TH_LOG("pins not given back");
	close(fd);

	ASSERT_EQ(0, dest_report(self, &m, 30000)) TH_LOG("destination hangs");
	EXPECT_EQ((uint32_t)RDMAMIG_EVENT_COMPLETED, m.event)
		TH_LOG("event %u error %d (%s)", m.event, m.ev_error, m.reason);
	EXPECT_EQ(0ULL, m.bad_pages);
}

struct round_thread {
	pthread_t th;
	int fd;
	uint64_t npages;
	uint64_t *bitmap;
	int ret, err;
	volatile int done;
};

static void *round_main(void *arg)
{
	struct round_thread *rt = arg;

	rt->ret = send_all(rt->fd, rt->npages, 0, rt->bitmap);
	rt->err = errno;
	rt->done = 1;
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
}

/*
 * max-bandwidth set to 1 B/s on a connected session holds its round in
 * the rate limit's sleep, pages pinned.  A signal ends that sleep: the
 * round returns EINTR within two seconds and the session fails with a
 * reason naming the signal (what was sent of the round cannot be
 * resumed), and the pins are given back.  Before the fix the signal was
 * ignored and left pending, and the rest of the round ran unthrottled.
 */
TEST_F_TIMEOUT(net, signal_ends_throttled_round, 90)
{
	struct dest_cfg c = { .len = SLOW_LEN, .accept_ms = 15000, .then = DEST_FOLLOW };
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	static uint64_t bitmap[SLOW_LEN / PG / 64];
	struct round_thread rt = { .npages = SLOW_LEN / PG, .bitmap = bitmap };
	struct rdmamig_stats st;
	struct timespec t0;
	struct dest_msg m;
	uint64_t ms;
	long before, held;
	void *mem;

	NEED_NET();
	start_dest(_metadata, self, &c);
	DEST_LISTENING(m);
	rt.fd = slow_source(self->addr, m.port, &mem, bitmap);
	ASSERT_LE(0, rt.fd) TH_LOG("source: %s", strerror(errno));
	ASSERT_EQ(0, dest_report(self, &m, 20000));
	ASSERT_EQ(0, m.ret) TH_LOG("ACCEPT: %s", strerror(m.err));
	/* On the running session: one write goes, then it sleeps. */
	ASSERT_EQ(0, set_params(rt.fd, RDMAMIG_PARAM_MAX_BANDWIDTH, 0, 1));
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	before = vm_pin_kb();

	ASSERT_EQ(0, pthread_create(&rt.th, NULL, round_main, &rt));
	usleep(1500 * 1000);
	held = vm_pin_kb();
	EXPECT_FALSE(rt.done) TH_LOG("the round at 1 B/s ended: %s",
				     rt.ret ? strerror(rt.err) : "ok");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_kill(rt.th, SIGUSR1);
	while (!rt.done && msec_since(&t0) < 10000)
		usleep(10 * 1000);
	ms = msec_since(&t0);
	if (!rt.done)
		ioctl(rt.fd, RDMAMIG_IOC_CANCEL);	/* not to hang the test */
	pthread_join(rt.th, NULL);
	ASSERT_EQ(0, get_stats(rt.fd, &st));
	TH_LOG("VmPin %ld kB before, %ld kB held; the round returned %d (%s) "
	       "%llu ms after the signal; state %u error %d reason \"%s\"",
	       before, held, rt.ret, rt.ret ? strerror(rt.err) : "ok",
	       (unsigned long long)ms, st.state, st.error, st.reason);
	EXPECT_EQ(-1, rt.ret);
	EXPECT_EQ(EINTR, rt.err);
	EXPECT_GT(2000ULL, ms);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, st.state);
	EXPECT_EQ(-EINTR, st.error);
	EXPECT_NE(NULL, strstr(st.reason, "signal"));
	EXPECT_EQ(before, vm_pin_kb()) TH_LOG("pins not given back");
	close(rt.fd);

	ASSERT_EQ(0, dest_report(self, &m, 30000)) TH_LOG("destination hangs");
	EXPECT_EQ((uint32_t)RDMAMIG_EVENT_FAILED, m.event);
}

TEST_HARNESS_MAIN
