// SPDX-License-Identifier: GPL-2.0
/*
 * connect_hold: open /dev/rdmamig, add one 1 MiB block, CONNECT as a
 * source to HOST PORT, print what CONNECT returned, and keep the file
 * open until killed, so that a session whose connection failed half-way
 * stays with its RDMA resources as a VMM would keep it.
 *
 *   connect_hold HOST PORT [TIMEOUT_MS]
 *
 * Prints "connect=RET errno=E reason=TEXT" and then waits for a signal.
 * Exits 1 if it could not get that far.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/rdmamig.h>

#include "test_secret.h"
#include "test_session.h"

#define SIZE	(1 << 20)

int main(int argc, char **argv)
{
	struct rdmamig_block b = { .size = sizeof(b), .length = SIZE };
	struct rdmamig_addr a;
	struct rdmamig_stats st;
	int fd, ret, err;
	void *mem;

	if (argc < 3) {
		fprintf(stderr, "usage: connect_hold HOST PORT [TIMEOUT_MS]\n");
		return 2;
	}
	fd = open("/dev/rdmamig", O_RDWR);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || mem == MAP_FAILED) {
		perror("connect_hold: open or mmap");
		return 1;
	}
	b.addr = (unsigned long)mem;
	strcpy(b.name, "ram0");
	if (ioctl(fd, RDMAMIG_IOC_ADD_BLOCK, &b) || set_test_secret(fd)) {
		perror("connect_hold: ADD_BLOCK or SET_SECRET");
		return 1;
	}
	a = make_addr(argv[1], atoi(argv[2]), argc > 3 ? atoi(argv[3]) : 10000);
	ret = ioctl(fd, RDMAMIG_IOC_CONNECT, &a);
	err = ret ? errno : 0;
	get_stats(fd, &st);
	printf("connect=%d errno=%d reason=%s\n", ret, err, st.reason);
	fflush(stdout);
	for (;;)
		pause();
}
