/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: the destination's side of post-copy (incoming --postcopy):
 * the twin's page faults served with FETCH and UFFDIO_COPY.
 *
 * Functions returning int return an exit code (RM_EXIT_*) and have
 * printed an error message when it is not RM_EXIT_OK.
 */
#ifndef RDMAMIGCTL_POSTCOPY_H
#define RDMAMIGCTL_POSTCOPY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fetch.h"
#include "inject.h"
#include "procmem.h"

struct rm;

struct pc_dest {
	struct rm *rm;
	pid_t pid;
	const struct pm_blocks *bl;
	int mem;			/* the twin's /proc/PID/mem */
	uint32_t id;			/* the session */
	bool checksum;			/* keep a copy: the memory at the switch */
	bool cont;			/* continue the twin (else only the sweep) */
	unsigned int resume_wait_s;	/* --resume-wait: a failure is waited out */

	struct pm_inject inj;
	int uffd;			/* the twin's, ours by pidfd_getfd(2) */
	bool user_only;			/* UFFD_USER_MODE_ONLY was needed */
	int stopfd;			/* eventfd: the fault thread ends */
	bool continued;			/* the twin runs on partial memory */

	uint64_t *owed[PM_MAX_BLOCKS];	/* OWED's bitmaps */
	uint64_t *placed[PM_MAX_BLOCKS];	/* set (atomically) when placed */
	uint8_t *shadow[PM_MAX_BLOCKS];	/* --checksum: the switch's memory */
	uint8_t *fault_buf, *sweep_buf;
	uint8_t *window;		/* pages kept while their window is dropped */

	struct fetch_sock fetch;		/* FETCH from the two threads */

	pthread_t fault_th, sweep_th;
	bool fault_on, sweep_on;
	volatile int stop;
	volatile int sweep_done;
	pthread_mutex_t lock;
	char problem[256];		/* the first thing that went wrong */

	/*
	 * --resume-wait: a FETCH the link failed sets @failed; no FETCH
	 * starts then (the threads park in pc_fetch()) and, once none is in
	 * flight (@busy 0), the socket is the main thread's, to resume.  The
	 * fault thread keeps the fault it could not serve and asks for it
	 * again, first, on the new session.
	 */
	pthread_cond_t cond;		/* @failed, @busy changed (with @lock) */
	int failed;			/* a FETCH failed: -errno */
	int busy;			/* FETCHes in flight */
	unsigned int resumes;
	uint64_t held_faults;		/* faults served after a resume */

	/* Counters (__atomic builtins). */
	uint64_t owed_pages, discarded, discard_calls, restored;
	uint64_t fault_msgs, fault_pages, sweep_pages, zero_filled;
	uint64_t placed_twice, not_owed, unplaced;
	uint64_t t_switch_us, t_cont_us, t_done_us;
};

/*
 * Before LISTEN: seize the stopped twin and make it create a
 * userfaultfd, which we take; fails early, with the source still running.
 */
int pc_dest_prepare(struct pc_dest *pc, struct rm *rm, pid_t pid, int mem,
		    const struct pm_blocks *bl);
/*
 * The session @id is in post-copy: owed pages, register, discard,
 * continue the twin (if @pc->cont), start serving its faults and the
 * sweep.
 */
int pc_dest_switch(struct pc_dest *pc, uint32_t id);
/*
 * Until every page is there.  *@sum: with @pc->checksum, the XXH64 of
 * the memory at the switch.
 */
int pc_dest_wait(struct pc_dest *pc, uint64_t *sum);
/*
 * pc_dest_wait()'s answer with --resume-wait when a FETCH failed: no
 * FETCH is in flight, pc->failed says why; resume a new session and
 * call pc_dest_resumed() (or give up: pc_dest_abort()).
 */
#define PC_DEST_FAILED	100
/* The new session @id took the failed one's place: the threads go on. */
void pc_dest_resumed(struct pc_dest *pc, uint32_t id);
/*
 * After a failure: a twin continued on partial memory is killed (its
 * missing pages would read as zero once the userfaultfd is gone).
 * Returns whether it was.  Then everything is released.
 */
bool pc_dest_abort(struct pc_dest *pc);
void pc_dest_free(struct pc_dest *pc);

#endif /* RDMAMIGCTL_POSTCOPY_H */
