// SPDX-License-Identifier: GPL-2.0
/*
 * Auto-converge for rdmamigctl migrate: slow a process that dirties its
 * memory faster than rounds move it, so that pre-copy converges.  QEMU
 * throttles a guest's vCPUs for the same reason (its auto-converge); a
 * process is throttled here by stopping it for PCT % of every 100 ms
 * (SIGSTOP, SIGCONT), from a child process so that the migration itself
 * never waits for the duty cycle.
 *
 * The child dies with its parent (PR_SET_PDEATHSIG).  It is stopped
 * before the caller reads or clears the dirty bits and before the final
 * round; stopping it continues the process, whatever point of the cycle
 * the child was at.  A process's parent sees the stops and continues as
 * it sees any (SIGCHLD, waitpid() with WUNTRACED).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procmem.h"
#include "rdmamigctl.h"

#define THROTTLE_PERIOD_US	100000

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The child: the duty cycle, until it is killed. */
static void __attribute__((noreturn)) throttle_loop(pid_t target, pid_t parent,
						    unsigned int pct)
{
	long on = (long)THROTTLE_PERIOD_US * pct / 100;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(0);
	for (;;) {
		if (kill(target, SIGSTOP))
			_exit(0);
		sleep_us(on);
		if (kill(target, SIGCONT))
			_exit(0);
		sleep_us(THROTTLE_PERIOD_US - on);
	}
}

int pm_throttle_start(struct pm_throttle *t, pid_t target, unsigned int pct)
{
	pid_t parent = getpid(), child;

	t->child = 0;
	t->target = target;
	if (!pct)
		return 0;
	if (pct > PM_THROTTLE_MAX)
		pct = PM_THROTTLE_MAX;
	child = fork();
	if (child < 0) {
		rm_err("migrate: cannot throttle pid %d: fork: %s", (int)target,
		       strerror(errno));
		return RM_EXIT_ERR;
	}
	if (!child)
		throttle_loop(target, parent, pct);
	t->child = child;
	return 0;
}

int pm_throttle_stop(struct pm_throttle *t)
{
	int status;

	if (!t->child)
		return 0;
	kill(t->child, SIGKILL);
	while (waitpid(t->child, &status, 0) < 0 && errno == EINTR)
		;
	t->child = 0;
	/* It may have died between its SIGSTOP and its SIGCONT. */
	return pm_cont(t->target);
}
