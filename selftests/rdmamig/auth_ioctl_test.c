// SPDX-License-Identifier: GPL-2.0
/*
 * Peer authentication (uapi/linux/rdmamig.h: RDMAMIG_IOC_SET_SECRET,
 * rdmamig_params.auth, RDMAMIG_CAP_AUTH; kmod/auth.c, kmod/cm.c).
 *
 * The "dev" tests need only /dev/rdmamig: SET_SECRET's argument checks
 * (length, size, tail, pointer), the new params fields, and ENOKEY from
 * LISTEN and CONNECT without a secret while authentication is required -
 * each failed call changes nothing.  LISTEN at a documentation address
 * (192.0.2.1) shows whether a session has a key without listening
 * anywhere: without one it fails with ENOKEY before it binds.
 *
 * The "net" tests connect two sessions of this process to each other over
 * rxe at $RDMAMIG_LOCAL_ADDR (skipped without it): the destination
 * listens, a thread waits in its ACCEPT, the source connects from the
 * main thread.  Same key: both ends report RDMAMIG_CAP_AUTH and migrate;
 * different keys, or one end with authentication off: the source's
 * CONNECT fails with EACCES and a reason saying why.  A source refused
 * for offering no authentication does not end the destination's session:
 * it still listens, and a right source then migrates.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"
#include "test_secret.h"
#include "test_session.h"

#define DEV_PATH "/dev/" RDMAMIG_DEVICE_NAME
#define PG 4096UL
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* Listening here never succeeds: only the key check is reached. */
#define NOWHERE "192.0.2.1"

/* ---- helpers --------------------------------------------------------- */

/* A fresh session without a secret. */
static int raw_open(void)
{
	return open(DEV_PATH, O_RDWR | O_CLOEXEC);
}

static void *map_pages(size_t n)
{
	void *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int add_block(int fd, const void *addr, uint64_t len, const char *name)
{
	struct rdmamig_block b = {
		.size = sizeof(b), .addr = (uintptr_t)addr, .length = len,
	};

	strncpy(b.name, name, sizeof(b.name) - 1);
	return ioctl(fd, RDMAMIG_IOC_ADD_BLOCK, &b);
}

static int set_auth(int fd, uint32_t auth)
{
	struct rdmamig_params p = {
		.size = sizeof(p), .mask = RDMAMIG_PARAM_AUTH, .auth = auth,
	};

	return ioctl(fd, RDMAMIG_IOC_SET_PARAMS, &p);
}

/*
 * Has the session a key?  LISTEN at a documentation address: ENOKEY
 * without one (authentication required), else the bind fails.  The
 * session stays in state none either way.  Returns the errno.
 */
static int listen_nowhere(int fd)
{
	struct rdmamig_addr a = make_addr(NOWHERE, 0, 0);

	return ioctl(fd, RDMAMIG_IOC_LISTEN, &a) ? errno : 0;
}

/* ---- SET_SECRET and the params, on /dev/rdmamig alone ------------------ */

FIXTURE(dev) {
	int fd;
	void *mem;		/* 16 pages, block "ram0" of the first 4 */
};

FIXTURE_SETUP(dev)
{
	self->fd = raw_open();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", DEV_PATH, strerror(errno));
	self->mem = map_pages(16);
	ASSERT_NE(NULL, self->mem);
	ASSERT_EQ(0, add_block(self->fd, self->mem, 4 * PG, "ram0"));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->mem)
		munmap(self->mem, 16 * PG);
}

TEST_F(dev, defaults_require_auth)
{
	struct rdmamig_params p;
	struct rdmamig_stats st;

	ASSERT_EQ(0, get_params(self->fd, &p)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_REQUIRED, p.auth);
	EXPECT_EQ(0U, p.reserved);
	EXPECT_NE(0U, p.mask & RDMAMIG_PARAM_AUTH);
	EXPECT_EQ((1U << 9) - 1, (uint32_t)RDMAMIG_PARAM_ALL);
	EXPECT_EQ(0U, p.reserved2);
	EXPECT_GE(p.channels, 1U);
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ(0ULL, st.caps);
	/* CAP_AUTH is reported only, never one to ask for. */
	EXPECT_EQ(0ULL, RDMAMIG_CAP_AUTH & RDMAMIG_CAPS_ALL);
}

TEST_F(dev, secret_bad_length)
{
	static const uint32_t lens[] = {
		0, 1, RDMAMIG_SECRET_MIN - 1, RDMAMIG_SECRET_MAX + 1, 128, 4096,
		0x80000000U, UINT32_MAX,
	};
	uint8_t key[RDMAMIG_SECRET_MAX];
	struct snapshot s;
	unsigned int i;

	memset(key, 0xa5, sizeof(key));
	snap(self->fd, &s);
	for (i = 0; i < ARRAY_LEN(lens); i++) {
		EXPECT_EQ(-1, set_secret_bytes(self->fd, key, lens[i]));
		EXPECT_EQ(EINVAL, errno) TH_LOG("len %u", lens[i]);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
	/* No key came of them. */
	EXPECT_EQ(ENOKEY, listen_nowhere(self->fd));
	EXPECT_TRUE(unchanged(self->fd, &s));
	/* The edges are fine, and a key replaces the one before. */
	EXPECT_EQ(0, set_secret_bytes(self->fd, key, RDMAMIG_SECRET_MIN))
		TH_LOG("len 16: %s", strerror(errno));
	EXPECT_EQ(0, set_secret_bytes(self->fd, key, RDMAMIG_SECRET_MAX))
		TH_LOG("len 64: %s", strerror(errno));
	EXPECT_EQ(0, set_test_secret(self->fd)) TH_LOG("%s", strerror(errno));
	EXPECT_NE(ENOKEY, listen_nowhere(self->fd));
	EXPECT_TRUE(unchanged(self->fd, &s));
}

/* Smaller than the struct (its first version is the whole of it). */
TEST_F(dev, secret_bad_size)
{
	struct {
		struct rdmamig_secret s;
		uint64_t tail[4];
	} big;
	uint32_t sizes[] = {
		0, 4, 8, offsetof(struct rdmamig_secret, key) + 16,
		sizeof(struct rdmamig_secret) - 1,
	};
	struct snapshot s;
	unsigned int i;
	uint8_t *page;

	snap(self->fd, &s);
	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		memset(&big, 0, sizeof(big));
		big.s.size = sizes[i];
		big.s.len = RDMAMIG_SECRET_MIN;
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, &big));
		EXPECT_EQ(EINVAL, errno) TH_LOG("size %u", sizes[i]);
	}
	/* A newer struct using a field this kernel does not know. */
	memset(&big, 0, sizeof(big));
	big.s.size = sizeof(big);
	big.s.len = 32;
	big.tail[3] = 1;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, &big));
	EXPECT_EQ(E2BIG, errno);
	/* Bigger than a page: refused before it is read. */
	page = map_pages(3);
	ASSERT_NE(NULL, page);
	memset(page, 0, 3 * PG);
	((struct rdmamig_secret *)page)->size = PG + 1;
	((struct rdmamig_secret *)page)->len = 32;
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, page));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
	EXPECT_EQ(ENOKEY, listen_nowhere(self->fd)) TH_LOG("a refused SET_SECRET set a key");

	/* A whole page with a zero tail is fine. */
	((struct rdmamig_secret *)page)->size = PG;
	EXPECT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, page)) TH_LOG("%s", strerror(errno));
	munmap(page, 3 * PG);
	/* So is a newer struct with its new fields unused. */
	big.tail[3] = 0;
	EXPECT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, &big)) TH_LOG("%s", strerror(errno));
	EXPECT_NE(ENOKEY, listen_nowhere(self->fd));
	EXPECT_TRUE(unchanged(self->fd, &s));
}

TEST_F(dev, secret_bad_pointer)
{
	struct rdmamig_secret sec = { .size = sizeof(sec), .len = 32 };
	uint8_t *p = map_pages(2), *un = map_pages(1);
	struct snapshot s;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, un);
	munmap(un, PG);
	snap(self->fd, &s);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, un));
	EXPECT_EQ(EFAULT, errno);
	/* The size readable, the key in a PROT_NONE page. */
	ASSERT_EQ(0, mprotect(p + PG, PG, PROT_NONE));
	memcpy(p + PG - 8, &sec, 8);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_SECRET, p + PG - 8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
	EXPECT_EQ(ENOKEY, listen_nowhere(self->fd)) TH_LOG("a failed SET_SECRET set a key");
	munmap(p, 2 * PG);
}

/* Never read back: GET_PARAMS and GET_STATS hold no trace of it. */
TEST_F(dev, secret_not_read_back)
{
	uint8_t key[RDMAMIG_SECRET_MAX], before[2][sizeof(struct rdmamig_stats)];
	struct rdmamig_params p;
	struct rdmamig_stats st;

	memset(key, 0x3c, sizeof(key));
	ASSERT_EQ(0, get_params(self->fd, &p));
	memcpy(before[0], &p, sizeof(p));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	memcpy(before[1], &st, sizeof(st));
	ASSERT_EQ(0, set_secret_bytes(self->fd, key, sizeof(key)));
	ASSERT_EQ(0, get_params(self->fd, &p));
	EXPECT_EQ(0, memcmp(before[0], &p, sizeof(p)));
	ASSERT_EQ(0, get_stats(self->fd, &st));
	st.total_ms = ((struct rdmamig_stats *)before[1])->total_ms;
	EXPECT_EQ(0, memcmp(before[1], &st, sizeof(st)));
	EXPECT_EQ(NULL, memmem(&st, sizeof(st), key, 8));
	EXPECT_EQ(NULL, memmem(&p, sizeof(p), key, 8));
}

TEST_F(dev, listen_connect_without_secret)
{
	struct rdmamig_addr a = make_addr(NOWHERE, 0, 50);
	const char *local = getenv("RDMAMIG_LOCAL_ADDR");
	struct rdmamig_stats st;
	struct snapshot s;

	snap(self->fd, &s);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, s.state);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_LISTEN, &a));
	EXPECT_EQ(ENOKEY, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
	EXPECT_EQ(0, a.port);
	a = make_addr(NOWHERE, 4000, 50);
	EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_CONNECT, &a));
	EXPECT_EQ(ENOKEY, errno);
	EXPECT_TRUE(unchanged(self->fd, &s));
	if (local && *local) {
		/* The real address: still ENOKEY, not listening. */
		a = make_addr(local, 0, 0);
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_LISTEN, &a));
		EXPECT_EQ(ENOKEY, errno);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_NONE, st.state);
	EXPECT_EQ((uint32_t)RDMAMIG_ROLE_NONE, st.role);
	EXPECT_EQ(0, st.error);
	EXPECT_EQ(0, st.reason[0]);

	/* With the key the same session listens. */
	ASSERT_EQ(0, set_test_secret(self->fd)) TH_LOG("%s", strerror(errno));
	if (!local || !*local) {
		EXPECT_NE(ENOKEY, listen_nowhere(self->fd));
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set: not listening");
	}
	a = make_addr(local, 0, 0);
	ASSERT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_LISTEN, &a))
		TH_LOG("LISTEN at %s with the key: %s", local, strerror(errno));
	EXPECT_NE(0, a.port);
	ASSERT_EQ(0, get_stats(self->fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_SETUP, st.state);
	EXPECT_EQ((uint32_t)RDMAMIG_ROLE_DEST, st.role);
}

/* Authentication off: no key needed; on again: ENOKEY again. */
TEST_F(dev, auth_off_needs_no_secret)
{
	struct rdmamig_params p;

	ASSERT_EQ(ENOKEY, listen_nowhere(self->fd));
	ASSERT_EQ(0, set_auth(self->fd, RDMAMIG_AUTH_OFF)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_params(self->fd, &p));
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_OFF, p.auth);
	EXPECT_NE(ENOKEY, listen_nowhere(self->fd));
	ASSERT_EQ(0, set_auth(self->fd, RDMAMIG_AUTH_REQUIRED)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_params(self->fd, &p));
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_REQUIRED, p.auth);
	EXPECT_EQ(ENOKEY, listen_nowhere(self->fd));
}

TEST_F(dev, params_auth_out_of_range)
{
	static const uint32_t bad[] = { 2, 3, 0x100, 0x80000000U, UINT32_MAX };
	struct rdmamig_params p;
	struct snapshot s;
	unsigned int i;

	ASSERT_EQ(0, set_auth(self->fd, RDMAMIG_AUTH_OFF));
	snap(self->fd, &s);
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		/* A valid field with it must not be applied either. */
		p = (struct rdmamig_params){
			.size = sizeof(p),
			.mask = RDMAMIG_PARAM_AUTH | RDMAMIG_PARAM_MAX_BANDWIDTH,
			.auth = bad[i], .max_bandwidth = 12345,
		};
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &p));
		EXPECT_EQ(EINVAL, errno) TH_LOG("auth %u", bad[i]);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
}

TEST_F(dev, params_reserved_nonzero)
{
	static const uint32_t bad[] = { 1, 0x80000000U, UINT32_MAX };
	static const uint32_t masks[] = {
		0, RDMAMIG_PARAM_MAX_BANDWIDTH, RDMAMIG_PARAM_AUTH, RDMAMIG_PARAM_ALL,
	};
	struct rdmamig_params p;
	struct snapshot s;
	unsigned int i, j;

	snap(self->fd, &s);
	for (i = 0; i < ARRAY_LEN(bad); i++)
		for (j = 0; j < ARRAY_LEN(masks); j++) {
			get_params(self->fd, &p);	/* valid values everywhere */
			p.mask = masks[j];
			p.auth = RDMAMIG_AUTH_OFF;
			p.max_bandwidth = 12345;
			p.reserved = bad[i];
			EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &p));
			EXPECT_EQ(EINVAL, errno) TH_LOG("reserved %#x mask %#x", bad[i], masks[j]);
			EXPECT_TRUE(unchanged(self->fd, &s));
		}
	/* The same with reserved zero is fine. */
	get_params(self->fd, &p);
	p.mask = RDMAMIG_PARAM_ALL;
	p.auth = RDMAMIG_AUTH_OFF;
	EXPECT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &p)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_params(self->fd, &p));
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_OFF, p.auth);
}

TEST_F(dev, params_caps_auth_refused)
{
	static const uint64_t caps[] = {
		RDMAMIG_CAP_AUTH, RDMAMIG_CAP_AUTH | RDMAMIG_CAP_PIN_ALL,
	};
	struct rdmamig_params p;
	struct snapshot s;
	unsigned int i;

	snap(self->fd, &s);
	for (i = 0; i < ARRAY_LEN(caps); i++) {
		p = (struct rdmamig_params){
			.size = sizeof(p), .mask = RDMAMIG_PARAM_CAPS | RDMAMIG_PARAM_AUTH,
			.caps = caps[i], .auth = RDMAMIG_AUTH_OFF,
		};
		EXPECT_EQ(-1, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &p));
		EXPECT_EQ(EINVAL, errno) TH_LOG("caps %#llx", (unsigned long long)caps[i]);
		EXPECT_TRUE(unchanged(self->fd, &s));
	}
}

/*
 * A VMM built before auth and reserved existed passes the old, shorter
 * struct: accepted, and GET_PARAMS writes no more than that back.
 */
TEST_F(dev, params_old_size)
{
	const uint32_t old = offsetof(struct rdmamig_params, auth);
	struct {
		struct rdmamig_params p;
		uint8_t canary[16];
	} buf;
	struct rdmamig_params p;

	memset(&buf, 0x5a, sizeof(buf));
	buf.p.size = old;
	ASSERT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_GET_PARAMS, &buf.p)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(old, buf.p.size);
	EXPECT_EQ(0x5a5a5a5aU, buf.p.auth);
	EXPECT_EQ(0x5a5a5a5aU, buf.p.reserved);

	memset(&p, 0, sizeof(p));
	p.auth = 0x77777777;		/* beyond @old: never read */
	p.reserved = 0x77777777;
	p.size = old;
	p.mask = RDMAMIG_PARAM_MAX_BANDWIDTH;
	p.max_bandwidth = 4242;
	EXPECT_EQ(0, ioctl(self->fd, RDMAMIG_IOC_SET_PARAMS, &p)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, get_params(self->fd, &p));
	EXPECT_EQ(4242ULL, p.max_bandwidth);
	EXPECT_EQ((uint32_t)RDMAMIG_AUTH_REQUIRED, p.auth);
}

/* ---- sessions connected over rxe -------------------------------------- */

#define NO_RDMA(e) ((e) == EADDRNOTAVAIL || (e) == ENODEV || (e) == ENETUNREACH)
#define NPAGES	64
#define LEN	(NPAGES * PG)

enum key { KEY_NONE, KEY_TEST, KEY_OTHER };

struct end {
	int fd;
	uint8_t *mem;
};

FIXTURE(net) {
	const char *addr;
	struct end dst, src, src2;
	uint16_t port;
	pthread_t acc;
	bool acc_running;
	int acc_ret, acc_err;
};

FIXTURE_SETUP(net)
{
	self->addr = getenv("RDMAMIG_LOCAL_ADDR");
	self->dst.fd = self->src.fd = self->src2.fd = -1;
}

static void end_close(struct end *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	if (e->mem)
		munmap(e->mem, LEN);
	e->mem = NULL;
}

FIXTURE_TEARDOWN(net)
{
	/* Closing the destination ends a waiting ACCEPT. */
	if (self->acc_running)
		ioctl(self->dst.fd, RDMAMIG_IOC_CANCEL);
	if (self->acc_running)
		pthread_join(self->acc, NULL);
	end_close(&self->src);
	end_close(&self->src2);
	end_close(&self->dst);
}

/* The harness (6.1) runs a test even when its setup skipped: check here. */
#define NEED_NET() do {							\
	if (!self->addr || !*self->addr)				\
		SKIP(return, "RDMAMIG_LOCAL_ADDR not set (no testbed)");	\
} while (0)

/* A session with one block "ram0" of LEN bytes, authenticated as told. */
static int end_open(struct end *e, bool auth, enum key key)
{
	uint8_t other[RDMAMIG_SECRET_MAX];
	uint64_t *w;
	size_t i;

	e->fd = raw_open();
	e->mem = map_pages(NPAGES);
	if (e->fd < 0 || !e->mem)
		return -1;
	w = (uint64_t *)e->mem;
	for (i = 0; i < LEN / 8; i++)
		w[i] = (i * 0x9e3779b97f4a7c15ULL) ^ (uintptr_t)e;
	if (!auth && set_auth(e->fd, RDMAMIG_AUTH_OFF))
		return -1;
	if (key == KEY_TEST && set_test_secret(e->fd))
		return -1;
	if (key == KEY_OTHER) {
		/* The test key with one bit flipped: as long, not the same. */
		uint32_t len = test_secret(other);

		other[len / 2] ^= 0x10;
		if (set_secret_bytes(e->fd, other, len))
			return -1;
	}
	return add_block(e->fd, e->mem, LEN, "ram0");
}

static void *accept_main(void *arg)
{
	FIXTURE_DATA(net) *self = arg;

	self->acc_ret = ioctl(self->dst.fd, RDMAMIG_IOC_ACCEPT, 60000UL);
	self->acc_err = self->acc_ret ? errno : 0;
	return NULL;
}

/* The destination listening, or skip. */
#define DEST_LISTEN_ONLY(auth, key) do {				\
	struct rdmamig_addr _a = make_addr(self->addr, 0, 0);		\
									\
	ASSERT_EQ(0, end_open(&self->dst, auth, key)) TH_LOG("%s", strerror(errno)); \
	if (ioctl(self->dst.fd, RDMAMIG_IOC_LISTEN, &_a) && NO_RDMA(errno))	\
		SKIP(return, "no RDMA at %s: %s", self->addr, strerror(errno));	\
	ASSERT_NE(0, _a.port) TH_LOG("LISTEN: %s", strerror(errno));	\
	self->port = _a.port;						\
} while (0)

/*
 * And a thread in its ACCEPT, which holds the session's lock meanwhile:
 * only GET_STATS, WAIT_EVENT and CANCEL answer until it returns.
 */
#define DEST_LISTENING(auth, key) do {					\
	DEST_LISTEN_ONLY(auth, key);					\
	ASSERT_EQ(0, pthread_create(&self->acc, NULL, accept_main, self)); \
	self->acc_running = true;					\
} while (0)

static int connect_to(struct end *e, const char *host, uint16_t port)
{
	struct rdmamig_addr a = make_addr(host, port, 30000);

	return ioctl(e->fd, RDMAMIG_IOC_CONNECT, &a);
}

static void accept_join(FIXTURE_DATA(net) *self)
{
	pthread_join(self->acc, NULL);
	self->acc_running = false;
}

/*
 * One final round of every page, COMPLETE, and the destination's
 * COMPLETED event; then the memory is compared.  0, or -1 with a reason.
 */
static int migrate(struct end *src, struct end *dst, char *why, size_t n)
{
	uint64_t bitmap[NPAGES / 64];
	struct rdmamig_round r = {
		.size = sizeof(r), .flags = RDMAMIG_ROUND_FINAL, .npages = NPAGES,
		.bitmap = (uintptr_t)bitmap,
	};
	struct rdmamig_event ev;
	struct rdmamig_stats st;

	memset(bitmap, 0xff, sizeof(bitmap));
	if (ioctl(src->fd, RDMAMIG_IOC_SEND_ROUND, &r) ||
	    ioctl(src->fd, RDMAMIG_IOC_END_ROUND) ||
	    ioctl(src->fd, RDMAMIG_IOC_COMPLETE)) {
		get_stats(src->fd, &st);
		snprintf(why, n, "source: %s (%s)", strerror(errno), st.reason);
		return -1;
	}
	do {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(dst->fd, RDMAMIG_IOC_WAIT_EVENT, &ev)) {
			snprintf(why, n, "destination WAIT_EVENT: %s", strerror(errno));
			return -1;
		}
	} while (ev.type != RDMAMIG_EVENT_COMPLETED && ev.type != RDMAMIG_EVENT_FAILED);
	if (ev.type != RDMAMIG_EVENT_COMPLETED) {
		get_stats(dst->fd, &st);
		snprintf(why, n, "destination failed: %d (%s)", ev.error, st.reason);
		return -1;
	}
	if (memcmp(src->mem, dst->mem, LEN)) {
		snprintf(why, n, "memory differs");
		return -1;
	}
	return 0;
}

/* The source connects, the destination's ACCEPT returns: both stats. */
#define CONNECTED_STATS(st, dt) do {						\
	ASSERT_EQ(0, connect_to(&self->src, self->addr, self->port))		\
		TH_LOG("CONNECT: %s", strerror(errno));				\
	accept_join(self);							\
	ASSERT_EQ(0, self->acc_ret) TH_LOG("ACCEPT: %s", strerror(self->acc_err)); \
	ASSERT_EQ(0, get_stats(self->src.fd, &(st)));				\
	ASSERT_EQ(0, get_stats(self->dst.fd, &(dt)));				\
} while (0)

/*
 * A source that gets through before the destination calls ACCEPT (the
 * accept thread of the tests above started late on a loaded host): the
 * first ACCEPT returns 0 at once, only a second one EBUSY.
 */
TEST_F_TIMEOUT(net, accept_after_connect, 120)
{
	NEED_NET();
	DEST_LISTEN_ONLY(true, KEY_TEST);
	ASSERT_EQ(0, end_open(&self->src, true, KEY_TEST));
	ASSERT_EQ(0, connect_to(&self->src, self->addr, self->port))
		TH_LOG("CONNECT: %s", strerror(errno));
	EXPECT_EQ(0, ioctl(self->dst.fd, RDMAMIG_IOC_ACCEPT, 1000UL))
		TH_LOG("late ACCEPT: %s", strerror(errno));
	EXPECT_EQ(-1, ioctl(self->dst.fd, RDMAMIG_IOC_ACCEPT, 1000UL));
	EXPECT_EQ(EBUSY, errno);
}

/* Authentication off on both ends: no key anywhere, no CAP_AUTH. */
TEST_F_TIMEOUT(net, auth_off_both, 120)
{
	struct rdmamig_stats st, dt;
	char why[256];

	NEED_NET();
	DEST_LISTENING(false, KEY_NONE);
	ASSERT_EQ(0, end_open(&self->src, false, KEY_NONE));
	CONNECTED_STATS(st, dt);
	EXPECT_EQ(0ULL, st.caps & RDMAMIG_CAP_AUTH) TH_LOG("caps %#llx", (unsigned long long)st.caps);
	EXPECT_EQ(0ULL, dt.caps & RDMAMIG_CAP_AUTH) TH_LOG("caps %#llx", (unsigned long long)dt.caps);
	EXPECT_EQ(0, migrate(&self->src, &self->dst, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, get_stats(self->src.fd, &st));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, st.state);
	EXPECT_EQ(0ULL, st.caps & RDMAMIG_CAP_AUTH);
}

/* The same key on both ends: each proved it, both report CAP_AUTH. */
TEST_F_TIMEOUT(net, same_key, 120)
{
	struct rdmamig_stats st, dt;
	char why[256];

	NEED_NET();
	DEST_LISTENING(true, KEY_TEST);
	ASSERT_EQ(0, end_open(&self->src, true, KEY_TEST));
	CONNECTED_STATS(st, dt);
	EXPECT_EQ(RDMAMIG_CAP_AUTH, st.caps & RDMAMIG_CAP_AUTH)
		TH_LOG("source caps %#llx", (unsigned long long)st.caps);
	EXPECT_EQ(RDMAMIG_CAP_AUTH, dt.caps & RDMAMIG_CAP_AUTH)
		TH_LOG("destination caps %#llx", (unsigned long long)dt.caps);
	/* Fixed once started, like the key. */
	EXPECT_EQ(-1, set_auth(self->src.fd, RDMAMIG_AUTH_OFF));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, set_test_secret(self->src.fd));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(-1, set_test_secret(self->dst.fd));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(0, migrate(&self->src, &self->dst, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, get_stats(self->dst.fd, &dt));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, dt.state);
	EXPECT_EQ(RDMAMIG_CAP_AUTH, dt.caps & RDMAMIG_CAP_AUTH);
}

/* A listening destination takes no new key and keeps its auth setting. */
TEST_F_TIMEOUT(net, secret_after_listen, 60)
{
	struct snapshot s;

	NEED_NET();
	DEST_LISTEN_ONLY(true, KEY_TEST);
	snap(self->dst.fd, &s);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_SETUP, s.state);
	EXPECT_EQ(-1, set_test_secret(self->dst.fd));
	EXPECT_EQ(EBUSY, errno);
	/* A bad one is refused too, whichever check comes first. */
	EXPECT_EQ(-1, set_secret_bytes(self->dst.fd, "x", 1));
	EXPECT_EQ(-1, set_auth(self->dst.fd, RDMAMIG_AUTH_OFF));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_TRUE(unchanged(self->dst.fd, &s));
}

/*
 * Different keys: the source checks the destination's answer first and
 * fails with EACCES, its reason naming the destination's failure; it
 * tells the destination, whose ACCEPT fails with the peer's reason.
 */
TEST_F_TIMEOUT(net, different_keys, 120)
{
	struct rdmamig_stats st, dt;

	NEED_NET();
	DEST_LISTENING(true, KEY_TEST);
	ASSERT_EQ(0, end_open(&self->src, true, KEY_OTHER));
	EXPECT_EQ(-1, connect_to(&self->src, self->addr, self->port));
	EXPECT_EQ(EACCES, errno) TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(self->src.fd, &st));
	TH_LOG("source: state %u error %d reason \"%s\"", st.state, st.error, st.reason);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, st.state);
	EXPECT_EQ(-EACCES, st.error);
	EXPECT_NE(NULL, strstr(st.reason, "destination"));
	EXPECT_NE(NULL, strstr(st.reason, "failed authentication"));
	EXPECT_EQ(0ULL, st.caps & RDMAMIG_CAP_AUTH);

	accept_join(self);
	ASSERT_EQ(0, get_stats(self->dst.fd, &dt));
	TH_LOG("destination: ACCEPT %s, state %u error %d reason \"%s\"",
	       self->acc_ret ? strerror(self->acc_err) : "ok", dt.state, dt.error,
	       dt.reason);
	EXPECT_EQ(-1, self->acc_ret);
	EXPECT_EQ(EACCES, self->acc_err);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, dt.state);
	EXPECT_EQ(-EACCES, dt.error);
	/* The source's reason, as the peer's. */
	EXPECT_EQ(0, strncmp(dt.reason, "peer: ", 6));
	EXPECT_NE(NULL, strstr(dt.reason, "failed authentication"));
	EXPECT_EQ(0ULL, dt.caps & RDMAMIG_CAP_AUTH);
}

/*
 * A source with authentication off meets a destination that requires
 * it: refused at the connect request (EACCES), before the destination
 * set anything up - it goes on listening, and a source with the key
 * then connects and migrates.
 */
TEST_F_TIMEOUT(net, stranger_refused_dest_listens_on, 180)
{
	struct rdmamig_stats st, dt;
	char why[256];

	NEED_NET();
	DEST_LISTENING(true, KEY_TEST);
	ASSERT_EQ(0, end_open(&self->src, false, KEY_NONE));
	EXPECT_EQ(-1, connect_to(&self->src, self->addr, self->port));
	EXPECT_EQ(EACCES, errno) TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(self->src.fd, &st));
	TH_LOG("stranger: state %u error %d reason \"%s\"", st.state, st.error, st.reason);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, st.state);
	EXPECT_EQ(-EACCES, st.error);
	EXPECT_NE(NULL, strstr(st.reason, "requires authentication"));

	/* The destination did not notice, beyond a log line. */
	ASSERT_EQ(0, get_stats(self->dst.fd, &dt));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_SETUP, dt.state)
		TH_LOG("destination: state %u error %d reason \"%s\"", dt.state, dt.error,
		       dt.reason);
	EXPECT_EQ(0, dt.error);
	EXPECT_EQ(0, dt.reason[0]);
	/* Its ACCEPT still waits. */
	usleep(200 * 1000);
	if (pthread_tryjoin_np(self->acc, NULL) == 0) {
		self->acc_running = false;
		ASSERT_TRUE(false) TH_LOG("the destination's ACCEPT returned after the "
					  "stranger: %s", strerror(self->acc_err));
	}

	/* The right source. */
	ASSERT_EQ(0, end_open(&self->src2, true, KEY_TEST));
	ASSERT_EQ(0, connect_to(&self->src2, self->addr, self->port))
		TH_LOG("CONNECT after the stranger: %s", strerror(errno));
	accept_join(self);
	ASSERT_EQ(0, self->acc_ret) TH_LOG("ACCEPT: %s", strerror(self->acc_err));
	ASSERT_EQ(0, get_stats(self->src2.fd, &st));
	ASSERT_EQ(0, get_stats(self->dst.fd, &dt));
	EXPECT_EQ(RDMAMIG_CAP_AUTH, st.caps & RDMAMIG_CAP_AUTH);
	EXPECT_EQ(RDMAMIG_CAP_AUTH, dt.caps & RDMAMIG_CAP_AUTH);
	EXPECT_EQ(0, migrate(&self->src2, &self->dst, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, get_stats(self->dst.fd, &dt));
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_COMPLETED, dt.state);
}

/*
 * A destination with authentication off meets a source that requires
 * it: the destination accepts without CAP_AUTH, the source refuses it
 * (EACCES) and tells it.
 */
TEST_F_TIMEOUT(net, dest_without_auth_refused, 120)
{
	struct rdmamig_stats st, dt;

	NEED_NET();
	DEST_LISTENING(false, KEY_NONE);
	ASSERT_EQ(0, end_open(&self->src, true, KEY_TEST));
	EXPECT_EQ(-1, connect_to(&self->src, self->addr, self->port));
	EXPECT_EQ(EACCES, errno) TH_LOG("CONNECT: %s", strerror(errno));
	ASSERT_EQ(0, get_stats(self->src.fd, &st));
	TH_LOG("source: state %u error %d reason \"%s\"", st.state, st.error, st.reason);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, st.state);
	EXPECT_EQ(-EACCES, st.error);
	EXPECT_NE(NULL, strstr(st.reason, "does not authenticate"));

	accept_join(self);
	ASSERT_EQ(0, get_stats(self->dst.fd, &dt));
	TH_LOG("destination: ACCEPT %s, state %u error %d reason \"%s\"",
	       self->acc_ret ? strerror(self->acc_err) : "ok", dt.state, dt.error,
	       dt.reason);
	EXPECT_EQ(-1, self->acc_ret);
	EXPECT_EQ(EACCES, self->acc_err);
	EXPECT_EQ((uint32_t)RDMAMIG_STATE_FAILED, dt.state);
	EXPECT_EQ(0, strncmp(dt.reason, "peer: ", 6));
	EXPECT_NE(NULL, strstr(dt.reason, "does not authenticate"));
}

TEST_HARNESS_MAIN
