// SPDX-License-Identifier: GPL-2.0
/*
 * session_race_test: GET_SESSION (open to every user) against a VMM that
 * adds blocks at the same time.  The dump reads a session's blocks without
 * the session's lock, so ADD_BLOCK must publish a block before it counts
 * it; before that was so, a dump between the two stores dereferenced a
 * NULL block (an oops holding the global session mutex).
 *
 * One thread opens /dev/rdmamig, adds RDMAMIG_MAX_BLOCKS one-page blocks,
 * closes it and starts again; the others dump every session in a loop.
 * Each dump of our sessions must be one snapshot: BLOCK_BYTES equal to
 * BLOCKS pages.  An oops fails the run in the testbed (the console is
 * checked); the count/bytes check fails here.
 *
 *   RDMAMIG_RACE_SECONDS   how long to run (default 20)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include <linux/rdmamig.h>

#include "kselftest_harness.h"

#define NBLOCKS		64	/* RDMAMIG_MAX_BLOCKS */
#define NDUMPERS	2

static atomic_bool stop;
static long page;

struct dumper {
	pthread_t thr;
	int family;
	pid_t pid;
	long dumps, seen, mismatches, errors;
	unsigned int bad_n;
	unsigned long long bad_bytes;
};

static int session_cb(struct nl_msg *msg, void *arg)
{
	struct dumper *d = arg;
	struct nlattr *tb[RDMAMIG_ATTR_MAX + 1];
	unsigned long long bytes;
	unsigned int n;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, RDMAMIG_ATTR_MAX, NULL) < 0)
		return NL_SKIP;
	if (!tb[RDMAMIG_ATTR_OWNER_PID] || !tb[RDMAMIG_ATTR_BLOCKS] ||
	    !tb[RDMAMIG_ATTR_BLOCK_BYTES])
		return NL_SKIP;
	if ((pid_t)nla_get_u32(tb[RDMAMIG_ATTR_OWNER_PID]) != d->pid)
		return NL_SKIP;
	n = nla_get_u32(tb[RDMAMIG_ATTR_BLOCKS]);
	bytes = nla_get_u64(tb[RDMAMIG_ATTR_BLOCK_BYTES]);
	d->seen++;
	if (bytes != (unsigned long long)n * page) {
		if (!d->mismatches++) {
			d->bad_n = n;
			d->bad_bytes = bytes;
		}
	}
	return NL_OK;
}

static void *dump_loop(void *arg)
{
	struct dumper *d = arg;
	struct nl_sock *sk = nl_socket_alloc();

	if (!sk || genl_connect(sk)) {
		d->errors++;
		return NULL;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, session_cb, d);
	while (!atomic_load(&stop)) {
		if (genl_send_simple(sk, d->family, RDMAMIG_CMD_GET_SESSION,
				     RDMAMIG_GENL_VERSION, NLM_F_DUMP) < 0 ||
		    nl_recvmsgs_default(sk) < 0)
			d->errors++;
		d->dumps++;
	}
	nl_socket_free(sk);
	return NULL;
}

TEST(add_blocks_while_dumping)
{
	struct dumper d[NDUMPERS] = {};
	long seconds = 20, rounds = 0, added = 0, mismatches = 0, seen = 0;
	const char *env = getenv("RDMAMIG_RACE_SECONDS");
	struct nl_sock *sk;
	struct timespec t0, now;
	char *mem;
	int family, i;

	if (env)
		seconds = atol(env);
	page = sysconf(_SC_PAGESIZE);
	if (access("/dev/rdmamig", R_OK | W_OK))
		SKIP(return, "no /dev/rdmamig: module not loaded?");
	sk = nl_socket_alloc();
	ASSERT_NE(NULL, sk);
	ASSERT_EQ(0, genl_connect(sk));
	family = genl_ctrl_resolve(sk, RDMAMIG_GENL_NAME);
	nl_socket_free(sk);
	if (family < 0)
		SKIP(return, "no \"%s\" family", RDMAMIG_GENL_NAME);

	mem = mmap(NULL, NBLOCKS * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, mem);

	for (i = 0; i < NDUMPERS; i++) {
		d[i].family = family;
		d[i].pid = getpid();
		ASSERT_EQ(0, pthread_create(&d[i].thr, NULL, dump_loop, &d[i]));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int fd = open("/dev/rdmamig", O_RDWR);

		ASSERT_LE(0, fd);
		for (i = 0; i < NBLOCKS; i++) {
			struct rdmamig_block b = {
				.size = sizeof(b),
				.addr = (unsigned long)(mem + i * page),
				.length = page,
			};

			snprintf(b.name, sizeof(b.name), "b%d", i);
			ASSERT_EQ(0, ioctl(fd, RDMAMIG_IOC_ADD_BLOCK, &b))
				TH_LOG("ADD_BLOCK %d: %s", i, strerror(errno));
			added++;
		}
		close(fd);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < seconds);
	atomic_store(&stop, true);

	for (i = 0; i < NDUMPERS; i++) {
		pthread_join(d[i].thr, NULL);
		TH_LOG("dumper %d: %ld dumps, %ld of our sessions seen, %ld errors, "
		       "%ld inconsistent", i, d[i].dumps, d[i].seen, d[i].errors,
		       d[i].mismatches);
		if (d[i].mismatches)
			TH_LOG("dumper %d: first inconsistent dump: %u blocks, %llu bytes",
			       i, d[i].bad_n, d[i].bad_bytes);
		EXPECT_EQ(0, d[i].errors);
		mismatches += d[i].mismatches;
		seen += d[i].seen;
	}
	TH_LOG("%ld sessions, %ld blocks added in %ld s", rounds, added, seconds);
	EXPECT_LT(0, seen) TH_LOG("the dumps never saw a session of ours");
	EXPECT_EQ(0, mismatches) TH_LOG("a dump's BLOCK_BYTES did not match its BLOCKS");
	munmap(mem, NBLOCKS * page);
}

TEST_HARNESS_MAIN
