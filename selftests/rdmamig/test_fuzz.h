/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the two fuzzers (ioctl_fuzz_test.c, netlink_fuzz_test.c) share:
 * their configuration from the environment and a seeded PRNG, so that a
 * failing run is reproduced with its seed.
 *
 *   RDMAMIG_FUZZ_SEED    the seed (default 0x72646d6967, "rdmig")
 *   RDMAMIG_FUZZ_ITERS   iterations per test (default 2000)
 *   RDMAMIG_LOCAL_ADDR   an address with an RDMA device (the testbed's)
 */
#ifndef RDMAMIG_TEST_FUZZ_H
#define RDMAMIG_TEST_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rdmamig.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define FUZZ_DEFAULT_SEED	0x72646d6967ULL		/* "rdmig" */
#define FUZZ_DEFAULT_ITERS	2000

static uint64_t cfg_seed = FUZZ_DEFAULT_SEED;
static unsigned long cfg_iters = FUZZ_DEFAULT_ITERS;
static const char *cfg_addr;

static inline void cfg_load(void)
{
	const char *s;

	s = getenv("RDMAMIG_FUZZ_SEED");
	if (s && *s)
		cfg_seed = strtoull(s, NULL, 0);
	s = getenv("RDMAMIG_FUZZ_ITERS");
	if (s && *s && strtoul(s, NULL, 0) > 0)
		cfg_iters = strtoul(s, NULL, 0);
	s = getenv("RDMAMIG_LOCAL_ADDR");
	cfg_addr = s && *s && strlen(s) < RDMAMIG_HOST_MAX - 4 ? s : NULL;
}

/* Per thread: the ioctl fuzzer's threads each draw their own stream. */
static __thread uint64_t rng;

/* splitmix64: small, and the same sequence everywhere for a seed. */
static inline uint64_t r64(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rn(uint64_t n)
{
	return n ? r64() % n : 0;
}

static inline bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

#define PICK(a) ((a)[rn(ARRAY_LEN(a))])

/*
 * Each test (and thread: @salt) has its own stream, so that one
 * reproduces alone.
 */
static inline void seed_for(const char *name, uint64_t salt)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*name)
		h = (h ^ (uint8_t)*name++) * 0x100000001b3ULL;
	rng = cfg_seed ^ h ^ (salt * 0x9e3779b97f4a7c15ULL);
}

#endif /* RDMAMIG_TEST_FUZZ_H */
