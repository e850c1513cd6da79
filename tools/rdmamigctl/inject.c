// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: system calls made by a stopped process on our behalf.
 *
 * incoming --postcopy needs a userfaultfd of the twin's address space,
 * and the twin's owed pages dropped (MADV_DONTNEED): both only the twin
 * itself can do (userfaultfd(2) acts on the caller's mm, and
 * process_madvise(2) does not take MADV_DONTNEED).  So the twin makes
 * those calls, steered with ptrace(2) the way CRIU's compel steers its
 * parasite:
 *
 *   PTRACE_SEIZE, PTRACE_INTERRUPT     a ptrace stop (the twin was in a
 *                                      group stop: it stays stopped)
 *   PTRACE_GETREGS                     its registers, kept
 *   per call: PTRACE_SETREGS           the instruction pointer at a
 *                                      "syscall" instruction of its vDSO,
 *                                      the number and the arguments
 *             PTRACE_SINGLESTEP        the one instruction: the kernel
 *                                      reports the step at the system
 *                                      call's exit, before user mode
 *             PTRACE_GETREGS           the result, in rax
 *             PTRACE_SETREGS           its own registers back
 *   PTRACE_DETACH                      it goes back into its group stop
 *
 * orig_rax is -1 in the registers we set, so that the kernel restarts no
 * system call of ours; the kept registers, orig_rax included, restart
 * whatever the twin was in when it stopped, as they would have.
 *
 * x86-64 only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "inject.h"
#include "rdmamigctl.h"

#ifdef __x86_64__

#define SCAN_MAX	(64 << 10)	/* bytes of a mapping searched */

/* A "syscall" (0f 05) in [@start, @end) of @pid's memory, or 0. */
static uint64_t find_syscall_in(int mem, uint64_t start, uint64_t end)
{
	static uint8_t buf[SCAN_MAX];
	ssize_t n;
	size_t i;

	if (end - start > SCAN_MAX)
		end = start + SCAN_MAX;
	n = pread(mem, buf, end - start, start);
	for (i = 0; n > 1 && i < (size_t)n - 1; i++)
		if (buf[i] == 0x0f && buf[i + 1] == 0x05)
			return start + i;
	return 0;
}

/*
 * The vDSO has syscall instructions (its fallbacks), at an address the
 * process cannot have unmapped by accident; failing that, any executable
 * mapping of the process.
 */
static uint64_t find_syscall(pid_t pid)
{
	char path[64], line[512], perms[8], name[256];
	uint64_t start, end, at = 0;
	FILE *maps;
	int mem, pass;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	for (pass = 0; maps && pass < 2 && !at; pass++) {
		rewind(maps);
		while (!at && fgets(line, sizeof(line), maps)) {
			name[0] = '\0';
			if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %255s",
				   &start, &end, perms, name) < 3 || perms[2] != 'x')
				continue;
			if (pass == 0 ? !strcmp(name, "[vdso]") : !!strcmp(name, "[vsyscall]"))
				at = find_syscall_in(mem, start, end);
		}
	}
	if (maps)
		fclose(maps);
	close(mem);
	return at;
}

/* Wait for the next stop; a signal meant for the process is kept. */
static int wait_stop(struct pm_inject *in)
{
	int status;

	for (;;) {
		if (waitpid(in->pid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -ESRCH;
		if (!WIFSTOPPED(status))
			continue;
		/* Neither our step's trap nor a ptrace event: the process's. */
		if (WSTOPSIG(status) != SIGTRAP && !(status >> 16))
			in->pending_sig = WSTOPSIG(status);
		return 0;
	}
}

int pm_inject_attach(struct pm_inject *in, pid_t pid)
{
	int err;

	memset(in, 0, sizeof(*in));
	in->pid = pid;
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL)) {
		err = errno;
		rm_err("incoming: cannot trace pid %d (ptrace: %s)%s", (int)pid,
		       strerror(err), err == EPERM ?
		       ": traced already, or no right to (root, CAP_SYS_PTRACE, "
		       "kernel.yama.ptrace_scope)" : "");
		return RM_EXIT_ERR;
	}
	in->attached = true;
	err = ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) ? errno : -wait_stop(in);
	if (!err && ptrace(PTRACE_GETREGS, pid, NULL, &in->saved))
		err = errno;
	if (err) {
		rm_err("incoming: cannot stop pid %d under ptrace: %s", (int)pid,
		       strerror(err));
		pm_inject_detach(in);
		return RM_EXIT_ERR;
	}
	in->insn = find_syscall(pid);
	if (!in->insn) {
		rm_err("incoming: no syscall instruction found in pid %d's vDSO or text",
		       (int)pid);
		pm_inject_detach(in);
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

int pm_inject_syscall(struct pm_inject *in, long nr, const uint64_t a[6],
		      long *result)
{
	struct user_regs_struct regs = in->saved;
	int err = 0, steps;

	regs.rip = in->insn;
	regs.rax = nr;
	regs.orig_rax = -1;
	regs.rdi = a[0];
	regs.rsi = a[1];
	regs.rdx = a[2];
	regs.r10 = a[3];
	regs.r8 = a[4];
	regs.r9 = a[5];
	if (ptrace(PTRACE_SETREGS, in->pid, NULL, &regs)) {
		err = errno;
		goto fail;
	}
	/*
	 * A stop before the instruction ran (a ptrace event, a signal for
	 * the process) leaves the instruction pointer on it: step again.
	 */
	for (steps = 0; steps < 16; steps++) {
		if (ptrace(PTRACE_SINGLESTEP, in->pid, NULL, NULL)) {
			err = errno;
			goto fail;
		}
		err = -wait_stop(in);
		if (err || ptrace(PTRACE_GETREGS, in->pid, NULL, &regs)) {
			err = err ?: errno;
			goto fail;
		}
		if (regs.rip != in->insn)
			break;
	}
	if (regs.rip != in->insn + 2) {
		rm_err("incoming: system call %ld in pid %d: stopped at %#llx, not after "
		       "the syscall instruction at %#" PRIx64, nr, (int)in->pid,
		       (unsigned long long)regs.rip, in->insn);
		ptrace(PTRACE_SETREGS, in->pid, NULL, &in->saved);
		return RM_EXIT_ERR;
	}
	*result = (long)regs.rax;
	if (ptrace(PTRACE_SETREGS, in->pid, NULL, &in->saved)) {
		err = errno;
		goto fail;
	}
	return RM_EXIT_OK;
fail:
	rm_err("incoming: system call %ld in pid %d: ptrace: %s", nr, (int)in->pid,
	       strerror(err));
	return RM_EXIT_ERR;
}

void pm_inject_detach(struct pm_inject *in)
{
	if (!in->attached)
		return;
	in->attached = false;
	ptrace(PTRACE_DETACH, in->pid, NULL, (void *)(long)in->pending_sig);
}

#else /* !__x86_64__ */

int pm_inject_attach(struct pm_inject *in, pid_t pid)
{
	memset(in, 0, sizeof(*in));
	(void)pid;
	rm_err("incoming: --postcopy is implemented for x86-64 only");
	return RM_EXIT_ERR;
}

int pm_inject_syscall(struct pm_inject *in, long nr, const uint64_t a[6],
		      long *result)
{
	(void)in, (void)nr, (void)a, (void)result;
	return RM_EXIT_ERR;
}

void pm_inject_detach(struct pm_inject *in)
{
	(void)in;
}

#endif
