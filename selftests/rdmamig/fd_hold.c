// SPDX-License-Identifier: GPL-2.0
/*
 * fd_hold: take a copy of another process's file descriptor (pidfd_getfd)
 * and keep it open until killed, so that the file outlives that process.
 * A /dev/rdmamig session lives as long as its file: with a copy held, the
 * session of a VMM that exited can still be inspected.
 *
 *   fd_hold PID FD
 *   fd_hold --cancel PID FD
 *
 * Prints "held" once it has the copy, then waits for a signal.
 *
 * With --cancel, calls RDMAMIG_IOC_CANCEL on the copy (the session is the
 * file's, whoever holds it), prints "cancel=RET state=S error=E
 * reason=TEXT" from RDMAMIG_IOC_GET_STATS right after, and exits 0 if
 * CANCEL returned 0.  Closing the copy leaves the session to its owner.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static int cancel(int fd)
{
	struct rdmamig_stats st = { .size = sizeof(st) };
	int ret = ioctl(fd, RDMAMIG_IOC_CANCEL);
	int err = errno;

	if (ioctl(fd, RDMAMIG_IOC_GET_STATS, &st)) {
		perror("fd_hold: GET_STATS");
		return 1;
	}
	st.reason[sizeof(st.reason) - 1] = 0;
	printf("cancel=%d%s%s state=%u error=%d reason=%s\n", ret,
	       ret ? "/" : "", ret ? strerror(err) : "", st.state, st.error,
	       st.reason);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	int pidfd, fd, do_cancel = argc == 4 && !strcmp(argv[1], "--cancel");

	if (argc != 3 && !do_cancel) {
		fprintf(stderr, "usage: fd_hold [--cancel] PID FD\n");
		return 2;
	}
	pidfd = syscall(SYS_pidfd_open, atoi(argv[argc - 2]), 0);
	if (pidfd < 0) {
		perror("fd_hold: pidfd_open");
		return 1;
	}
	fd = syscall(SYS_pidfd_getfd, pidfd, atoi(argv[argc - 1]), 0);
	if (fd < 0) {
		perror("fd_hold: pidfd_getfd");
		return 1;
	}
	close(pidfd);
	if (do_cancel)
		return cancel(fd);
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
}
