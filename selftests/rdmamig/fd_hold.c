// SPDX-License-Identifier: GPL-2.0
/*
 * fd_hold: take a copy of another process's file descriptor (pidfd_getfd)
 * and keep it open until killed, so that the file outlives that process.
 * A /dev/rdmamig session lives as long as its file: with a copy held, the
 * session of a VMM that exited can still be inspected.
 *
 *   fd_hold PID FD
 *
 * Prints "held" once it has the copy, then waits for a signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int main(int argc, char **argv)
{
	int pidfd, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: fd_hold PID FD\n");
		return 2;
	}
	pidfd = syscall(SYS_pidfd_open, atoi(argv[1]), 0);
	if (pidfd < 0) {
		perror("fd_hold: pidfd_open");
		return 1;
	}
	fd = syscall(SYS_pidfd_getfd, pidfd, atoi(argv[2]), 0);
	if (fd < 0) {
		perror("fd_hold: pidfd_getfd");
		return 1;
	}
	close(pidfd);
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
}
