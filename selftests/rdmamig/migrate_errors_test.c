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
