/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: FETCH (post-copy, destination) from several threads
 * through the one netlink socket that owns the session.
 */
#ifndef RDMAMIGCTL_FETCH_H
#define RDMAMIGCTL_FETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/rdmamig.h>

#include "nl.h"

enum { FETCH_FAULT, FETCH_SWEEP, FETCH_SLOTS };

/* One thread's request in flight, and its answer once read. */
struct fetch_slot {
	uint32_t seq;
	bool ready;
	size_t len;
	uint8_t buf[4096];
};

struct fetch_sock {
	struct rm_nl *nl;		/* the session's socket */
	uint32_t id;			/* the session */
	pthread_mutex_t lock;		/* reading the socket, the slots */
	uint32_t next_seq;
	struct fetch_slot slot[FETCH_SLOTS];
};

struct fetch_answer {
	int err;			/* 0 or -errno */
	char why[256];			/* the kernel's message */
	uint64_t start, npages, remaining;
	uint32_t nruns;
};

void fetch_init(struct fetch_sock *fs, struct rm_nl *nl, uint32_t id);
/*
 * One FETCH from the thread of slot @which: a fault at @addr (@runs
 * NULL), or a sweep with room for @nruns runs at @runs.  The pages land
 * in @buf (@len bytes); the outcome in *@a.
 */
void fetch(struct fetch_sock *fs, int which, uint64_t addr, uint8_t *buf,
	   size_t len, struct rdmamig_fetch_run *runs, uint32_t nruns,
	   struct fetch_answer *a);

#endif /* RDMAMIGCTL_FETCH_H */
