// SPDX-License-Identifier: GPL-2.0
/*
 * udp_probe ADDR PORT INTERVAL_MS: the client of rdmamig-workload --udp,
 * for mc_netbuf_test.sh.  Sends "seq K T" (T: CLOCK_MONOTONIC, us) every
 * INTERVAL_MS until SIGTERM or SIGINT, and prints every answer as it
 * comes, one line each, flushed at once, so that whatever kills the
 * server finds on stdout all the client saw:
 *
 *	value N latency_us L
 *
 * N is the server's count of answers ("reply N seq K T"), L the time
 * from the request to its answer.  At the end: "sent S received R".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sigaction act = { .sa_handler = on_signal };
	uint64_t sent = 0, received = 0, next, interval_us;
	char buf[128];
	int fd;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    atoi(argv[2]) <= 0 || atoi(argv[2]) > 65535 || atoi(argv[3]) <= 0) {
		fprintf(stderr, "usage: udp_probe ADDR PORT INTERVAL_MS\n");
		return 2;
	}
	sa.sin_port = htons(atoi(argv[2]));
	interval_us = (uint64_t)atoi(argv[3]) * 1000;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("udp_probe: socket");
		return 1;
	}
	next = now_us();
	while (!stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t t = now_us(), n, seq, t0;
		int len;

		if (t >= next) {
			len = snprintf(buf, sizeof(buf), "seq %" PRIu64 " %" PRIu64, sent, t);
			/* Refused while nothing listens: counted as sent all the same. */
			send(fd, buf, len, 0);
			sent++;
			next += interval_us;
			if (next < t)
				next = t + interval_us;
			continue;
		}
		if (poll(&pfd, 1, (int)((next - t + 999) / 1000)) <= 0)
			continue;
		len = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		if (sscanf(buf, "reply %" SCNu64 " seq %" SCNu64 " %" SCNu64, &n, &seq, &t0) != 3)
			continue;
		received++;
		printf("value %" PRIu64 " latency_us %" PRIu64 "\n", n, now_us() - t0);
	}
	printf("sent %" PRIu64 " received %" PRIu64 "\n", sent, received);
	return 0;
}
