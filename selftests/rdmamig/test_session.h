/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers the ioctl selftests share: reading a session's stats and
 * parameters, building an address, checking that a refused ioctl left the
 * session as it was, and reading what this process has pinned.
 */
#ifndef RDMAMIG_TEST_SESSION_H
#define RDMAMIG_TEST_SESSION_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/rdmamig.h>

static inline int get_stats(int fd, struct rdmamig_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ioctl(fd, RDMAMIG_IOC_GET_STATS, st);
}

static inline int get_params(int fd, struct rdmamig_params *p)
{
	memset(p, 0, sizeof(*p));
	p->size = sizeof(*p);
	return ioctl(fd, RDMAMIG_IOC_GET_PARAMS, p);
}

static inline struct rdmamig_addr make_addr(const char *host, uint16_t port,
					    uint32_t timeout_ms)
{
	struct rdmamig_addr a = {
		.size = sizeof(a), .port = port, .timeout_ms = timeout_ms,
	};

	strncpy(a.host, host, sizeof(a.host) - 1);
	return a;
}

/* The state a failed ioctl must leave alone. */
struct snapshot {
	struct rdmamig_params params;
	uint32_t state, role;
	int32_t error;
	uint64_t caps;
};

static inline void snap(int fd, struct snapshot *s)
{
	struct rdmamig_stats st;

	memset(s, 0, sizeof(*s));
	get_params(fd, &s->params);
	get_stats(fd, &st);
	s->state = st.state;
	s->role = st.role;
	s->error = st.error;
	s->caps = st.caps;
}

static inline bool unchanged(int fd, const struct snapshot *before)
{
	struct snapshot now;

	snap(fd, &now);
	return !memcmp(&now, before, sizeof(now));
}

/* This process's mm->pinned_vm, in KiB ("VmPin" of /proc/self/status). */
static inline long vm_pin_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#endif /* RDMAMIG_TEST_SESSION_H */
