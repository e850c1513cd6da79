/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: system calls a stopped process makes on our behalf
 * (incoming --postcopy), through ptrace(2).
 *
 * Functions returning int return an exit code (RM_EXIT_*) and have
 * printed an error message when it is not RM_EXIT_OK.
 */
#ifndef RDMAMIGCTL_INJECT_H
#define RDMAMIGCTL_INJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct pm_inject {
	pid_t pid;
	bool attached;
	uint64_t insn;			/* a syscall instruction in its text */
	int pending_sig;		/* a signal that arrived meanwhile */
#ifdef __x86_64__
	struct user_regs_struct saved;	/* its registers when we came */
#endif
};

/*
 * Seize the stopped process @pid (PTRACE_SEIZE, PTRACE_INTERRUPT) and
 * find a syscall instruction in its vDSO (or its libc).  It stays
 * stopped: it runs only our system calls until pm_inject_detach().
 */
int pm_inject_attach(struct pm_inject *in, pid_t pid);
/*
 * The system call @nr with @a's six arguments, made by the process;
 * its return value (a negative errno on failure) in *@result.  Its
 * registers are put back afterwards.
 */
int pm_inject_syscall(struct pm_inject *in, long nr, const uint64_t a[6],
		      long *result);
/* Let it go: it is stopped as it was (group stop), the signal kept. */
void pm_inject_detach(struct pm_inject *in);

#endif /* RDMAMIGCTL_INJECT_H */
