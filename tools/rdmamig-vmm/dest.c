// SPDX-License-Identifier: GPL-2.0
/*
 * The destination side:
 *
 *   open /dev/rdmamig, SET_PARAMS, ADD_BLOCK for each RAM block (same
 *   names and lengths as the source's; RDMAMIG_BLOCK_FRESH, as the RAM
 *   is a new anonymous mapping, unless --prefill wrote it)
 *   LISTEN                   port 0 picks a free port, written back
 *   ACCEPT                   a source connected and the blocks matched
 *   until completion:        poll() the fd; WAIT_EVENT for ROUND_DONE,
 *                            COMPLETED or FAILED; read() device state
 *   read() until EOF         the rest of the device state
 *
 * The kernel places the pages itself; the VMM only follows the events
 * and consumes the device state.  Here, at the end, it also checks every
 * page against the hashes the source sent as its final device state.
 *
 * With --postcopy (RDMAMIG_CAP_POSTCOPY allowed) the source may switch
 * instead of sending a final round: RDMAMIG_EVENT_POSTCOPY comes once
 * the device state up to the switch is readable, and the stream ends
 * there.  The guest then runs while its missing pages are fetched on
 * demand (postcopy.c), until COMPLETED.
 *
 * With --resume-wait, a session that fails after the switch (not
 * cancelled) is resumed: the guest's faults wait while a new session is
 * opened with the same blocks, given the failed one
 * (RDMAMIG_IOC_POSTCOPY_RESUME, before LISTEN), listens on the same
 * address and port and accepts the source's new connection; at its
 * RDMAMIG_EVENT_POSTCOPY the threads carry on with it (dest_resume()).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

#define MISMATCHES_SHOWN 10

struct dest_run {
	int fd;
	struct guest_ram *ram;
	struct postcopy *pc;		/* --postcopy: ready before LISTEN */
	struct ds_parser ds;
	uint64_t last_round;		/* from ROUND_DONE events */
	uint64_t ev_pages, ev_zero_pages;
	bool completed, eof;
	bool resuming;			/* a resumed session, before its switch */
	uint16_t port;			/* the port listened on */
	unsigned int resumes;
	int fail_err;			/* the last failure resumed from */
	char fail_reason[RDMAMIG_REASON_MAX];
	char problem[160];		/* first inconsistency in the events */
};

static int write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	/* Written whole and renamed, so a poller never reads half of it. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f))
		return -1;
	return rename(tmp, path);
}

/* LISTEN then ACCEPT: returns 0 once a source connected and matched. */
int dest_accept(int fd, const struct vmm_opts *o, uint16_t *port,
		unsigned int timeout_s)
{
	struct rdmamig_addr a = { .size = sizeof(a), .port = *port };

	memcpy(a.host, o->host, sizeof(a.host));
	if (ioctl(fd, RDMAMIG_IOC_LISTEN, &a)) {
		session_fail(fd, o, "LISTEN", errno);
		return -1;
	}
	if (!o->json)
		fprintf(stderr, "rdmamig-vmm: dest: listening on %s port %u\n",
			a.host, a.port);
	*port = a.port;
	if (o->port_file && write_port_file(o->port_file, a.port)) {
		perror("rdmamig-vmm: port file");
		return -1;
	}
	/* ACCEPT's argument is the timeout in ms, by value. */
	if (ioctl(fd, RDMAMIG_IOC_ACCEPT, (unsigned long)timeout_s * 1000)) {
		session_fail(fd, o, "ACCEPT", errno);
		return -1;
	}
	return 0;
}

static void event_problem(struct dest_run *d, const char *msg, uint64_t round)
{
	if (!d->problem[0])
		snprintf(d->problem, sizeof(d->problem), "%s (event round %" PRIu64
			 ", last %" PRIu64 ")", msg, round, d->last_round);
}

static int drain_data(struct dest_run *d, const struct vmm_opts *o);

/*
 * RDMAMIG_EVENT_POSTCOPY: the source stopped its guest and switched.
 * Everything it wrote to the device-state stream before is readable now
 * and the stream ends there: read it to its end (the hashes of every
 * page at the switch are in it), then run the guest here with
 * userfaultfd (postcopy.c).
 */
static int dest_switch(struct dest_run *d, const struct vmm_opts *o,
		       uint64_t pages)
{
	struct pollfd pfd = { .fd = d->fd, .events = POLLIN };
	const uint64_t *hashes = NULL;
	int n;

	if (!d->pc) {
		event_problem(d, "RDMAMIG_EVENT_POSTCOPY, but post-copy was not allowed", 0);
		return -1;
	}
	while (!d->eof) {
		if (drain_data(d, o))
			return -1;
		if (d->eof)
			break;
		n = poll(&pfd, 1, o->timeout_s * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			session_fail(d->fd, o, "device state after the switch",
				     n ? errno : ETIMEDOUT);
			return -1;
		}
	}
	if (ds_finish(&d->ds, d->ram) == 0)
		hashes = d->ds.hashes + 1 + d->ram->nblocks;
	else if (!o->json)
		fprintf(stderr, "rdmamig-vmm: dest: device state at the switch: %s\n",
			d->ds.error);
	return postcopy_start(d->pc, d->fd, d->ram, hashes, pages);
}

/*
 * RDMAMIG_IOC_WAIT_EVENT on a non-blocking fd: take every pending event
 * (EAGAIN: none left).  Returns -1 when the session failed.
 */
static int drain_events(struct dest_run *d, const struct vmm_opts *o)
{
	struct rdmamig_event ev;

	while (!d->completed) {
		memset(&ev, 0, sizeof(ev));
		ev.size = sizeof(ev);
		if (ioctl(d->fd, RDMAMIG_IOC_WAIT_EVENT, &ev)) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			session_fail(d->fd, o, "WAIT_EVENT", errno);
			return -1;
		}
		switch (ev.type) {
		case RDMAMIG_EVENT_ROUND_DONE:
			/* Rounds are numbered from 1 and end in order. */
			if (ev.round != d->last_round + 1)
				event_problem(d, "ROUND_DONE out of order", ev.round);
			d->last_round = ev.round;
			d->ev_pages += ev.pages;
			d->ev_zero_pages += ev.zero_pages;
			break;
		case RDMAMIG_EVENT_POSTCOPY:
			if (d->resuming) {
				/* The resumed session switched: carry on with it. */
				d->resuming = false;
				postcopy_resumed(d->pc, d->fd, ev.pages);
				break;
			}
			if (postcopy_started(d->pc)) {
				event_problem(d, "RDMAMIG_EVENT_POSTCOPY twice", 0);
				break;
			}
			if (dest_switch(d, o, ev.pages))
				return -1;
			break;
		case RDMAMIG_EVENT_COMPLETED:
			postcopy_set_completed(d->pc);
			d->completed = true;
			break;
		case RDMAMIG_EVENT_FAILED:
			session_fail(d->fd, o, "migration (FAILED event)", -ev.error);
			return -1;
		default:	/* CONNECTED was already reported by ACCEPT */
			break;
		}
	}
	return 0;
}

/* read() the device-state stream: in order, 0 at its end (completion). */
static int drain_data(struct dest_run *d, const struct vmm_opts *o)
{
	static uint8_t buf[1 << 16];
	ssize_t n;

	while (!d->eof) {
		n = read(d->fd, buf, sizeof(buf));
		if (n > 0) {
			/* A bad record is reported at the end; keep the session going. */
			ds_feed(&d->ds, buf, n);
		} else if (n == 0) {
			d->eof = true;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN) {
			return 0;
		} else {
			/* After a failure, read() returns the session's error. */
			session_fail(d->fd, o, "read device state", errno);
			return -1;
		}
	}
	return 0;
}

/*
 * Until COMPLETED and EOF: poll() gives POLLIN whenever an event or
 * device-state data is pending.  EOF comes after the COMPLETED event;
 * should it be seen first, the fd goes back to blocking for the event.
 */
static int dest_follow(struct dest_run *d, const struct vmm_opts *o)
{
	struct pollfd pfd = { .fd = d->fd, .events = POLLIN };
	int flags = fcntl(d->fd, F_GETFL), n;

	if (fcntl(d->fd, F_SETFL, flags | O_NONBLOCK))
		return -1;
	while (!d->completed || !d->eof) {
		if (d->eof && fcntl(d->fd, F_SETFL, flags))
			return -1;
		if (!d->eof) {
			n = poll(&pfd, 1, o->timeout_s * 1000);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				session_fail(d->fd, o, "poll", n ? errno : ETIMEDOUT);
				return -1;
			}
		}
		if (drain_events(d, o) || drain_data(d, o))
			return -1;
	}
	return 0;
}

/* Every page against the source's hash; prints the first differences. */
static uint64_t verify_pages(const struct guest_ram *ram, const uint64_t *hashes)
{
	uint64_t bad = 0, pg;
	unsigned int i;

	for (i = 0; i < ram->nblocks; i++) {
		const struct ram_block *b = &ram->blocks[i];

		for (pg = 0; pg < b->npages; pg++, hashes++) {
			if (page_hash(b, pg) == *hashes)
				continue;
			if (bad++ < MISMATCHES_SHOWN)
				fprintf(stderr, "rdmamig-vmm: dest: %s page %" PRIu64
					" (offset %#" PRIx64 ") differs\n", b->name, pg,
					pg * page_size);
		}
	}
	if (bad > MISMATCHES_SHOWN)
		fprintf(stderr, "rdmamig-vmm: dest: ... %" PRIu64 " pages differ\n", bad);
	return bad;
}

/*
 * The ROUND_DONE events must add up to what the kernel counted.  After a
 * post-copy switch the source wrote one record more than it ended rounds
 * (its device state at the switch), and the owed pages arrive outside
 * any round.
 */
static void check_events(struct dest_run *d, const struct rdmamig_stats *st)
{
	if (postcopy_started(d->pc)) {
		if (d->last_round + 2 != d->ds.next_round)
			event_problem(d, "rounds in events and device state differ",
				      d->ds.next_round - 2);
		return;
	}
	if (d->last_round != d->ds.next_round - 1)
		event_problem(d, "rounds in events and device state differ",
			      d->ds.next_round - 1);
	if (d->last_round != st->rounds)
		event_problem(d, "ROUND_DONE events differ from stats.rounds",
			      st->rounds);
	if (d->ev_pages != st->pages || d->ev_zero_pages != st->zero_pages)
		event_problem(d, "event pages differ from stats pages", 0);
}

static int dest_verify(struct dest_run *d, const struct vmm_opts *o,
		       const struct guest_ram *ram, const struct rdmamig_stats *st)
{
	const uint64_t *expect = postcopy_expected(d->pc);
	uint64_t bad = 0;
	char extra[4096], err[400], pcrep[2048];
	const char *what = "";

	/* After post-copy: the source's hashes as the guest has changed them. */
	if (ds_finish(&d->ds, ram) == 0)
		bad = verify_pages(ram, expect ? expect : d->ds.hashes + 1 + ram->nblocks);
	check_events(d, st);

	if (d->ds.error[0])
		what = d->ds.error;
	else if (d->problem[0])
		what = d->problem;
	else if (*postcopy_problem(d->pc))
		what = postcopy_problem(d->pc);
	if (*what)
		fprintf(stderr, "rdmamig-vmm: dest: %s\n", what);
	json_string(err, sizeof(err), what);
	snprintf(extra, sizeof(extra),
		 "\"verified\":%s,\"total_pages\":%" PRIu64 ",\"bad_pages\":%" PRIu64
		 ",\"records\":%" PRIu64 ",\"event_rounds\":%" PRIu64
		 ",\"event_pages\":%" PRIu64 ",\"event_zero_pages\":%" PRIu64
		 ",\"verify_error\":%s",
		 !bad && !*what ? "true" : "false", ram->total_pages, bad,
		 d->ds.records, d->last_round, d->ev_pages, d->ev_zero_pages, err);
	postcopy_report(d->pc, o->json, pcrep, sizeof(pcrep));
	if (o->json && pcrep[0])
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ",%s", pcrep);
	print_summary(o, st, NULL, 0, extra);
	if (!o->json)
		printf("%s  %s: %" PRIu64 " of %" PRIu64 " pages differ, %" PRIu64
		       " device-state records\n", pcrep, bad || *what ? "FAILED" : "verified",
		       bad, ram->total_pages, d->ds.records);
	return bad || *what ? EXIT_VERIFY : 0;
}

/*
 * The session failed for good after the switch: the guest ran on pages
 * that are not all here.  Say how many are missing (JSON: a last line
 * the tests read).
 */
static void dest_incomplete(struct dest_run *d, const struct vmm_opts *o)
{
	struct rdmamig_stats st;
	uint64_t owed, missing;

	if (!postcopy_started(d->pc))
		return;
	missing = postcopy_missing(d->pc, &owed);
	if (session_stats(d->fd, &st))
		memset(&st, 0, sizeof(st));
	st.reason[RDMAMIG_REASON_MAX - 1] = 0;
	/* A resumed session that no source reached: the failure before it. */
	if (!st.error && d->fail_err) {
		st.error = -d->fail_err;
		memcpy(st.reason, d->fail_reason, sizeof(st.reason));
	}
	fprintf(stderr, "rdmamig-vmm: dest: post-copy failed: guest memory INCOMPLETE,"
		" %" PRIu64 " of %" PRIu64 " owed pages missing (%u resume%s); the guest"
		" must not run on\n", missing, owed, d->resumes, d->resumes == 1 ? "" : "s");
	if (o->json) {
		char reason[2 * RDMAMIG_REASON_MAX + 8];

		json_string(reason, sizeof(reason), st.reason);
		printf("{\"ok\":false,\"role\":\"dest\",\"op\":\"postcopy\","
		       "\"errno\":%d,\"error\":\"%s\",\"reason\":%s,"
		       "\"incomplete\":true,\"missing_pages\":%" PRIu64
		       ",\"owed_named\":%" PRIu64 ",\"resumes\":%u}\n",
		       -st.error, strerror(-st.error), reason, missing, owed,
		       d->resumes);
		fflush(stdout);
	}
}

/*
 * Can the failed session @fd be resumed?  It switched to post-copy, and
 * failed (not cancelled: ECANCELED gives up, as the source's death does).
 */
static bool resumable(struct dest_run *d, const struct vmm_opts *o)
{
	struct rdmamig_stats st;

	if (!o->resume_wait_s || !postcopy_started(d->pc) || d->completed ||
	    d->resumes >= 8)
		return false;
	if (session_stats(d->fd, &st) || st.state != RDMAMIG_STATE_FAILED)
		return false;
	d->fail_err = -st.error;
	memcpy(d->fail_reason, st.reason, sizeof(d->fail_reason));
	d->fail_reason[sizeof(d->fail_reason) - 1] = 0;
	return st.error != -ECANCELED;
}

/*
 * A new session takes over the failed one's post-copy state: the same
 * blocks, RDMAMIG_IOC_POSTCOPY_RESUME before LISTEN, LISTEN on the same
 * address and port (and the port file written again), ACCEPT within
 * --resume-wait.  The guest's threads meanwhile wait in their faults; the
 * new session's RDMAMIG_EVENT_POSTCOPY (dest_follow()) resumes them.
 */
static int dest_resume(struct dest_run *d, const struct vmm_opts *o)
{
	uint64_t t0 = now_us();
	int fd, old = d->fd;

	if (!o->json)
		fprintf(stderr, "rdmamig-vmm: dest: post-copy session failed:"
			" resuming (listening again for %u s)\n", o->resume_wait_s);
	fd = session_open(o, d->ram);
	if (fd < 0)
		return -1;
	if (ioctl(fd, RDMAMIG_IOC_POSTCOPY_RESUME, old)) {
		session_fail(fd, o, "POSTCOPY_RESUME", errno);
		close(fd);
		return -1;
	}
	/*
	 * The old session keeps nothing now but its listening port, which it
	 * holds until closed: close it, to listen on that port again.  A
	 * thread still in a call on it finishes with an error and waits for
	 * the new session like after the failure.
	 */
	postcopy_detach(d->pc);
	close(old);
	d->fd = fd;
	d->resuming = true;
	d->resumes++;
	if (dest_accept(fd, o, &d->port, o->resume_wait_s))
		return -1;
	if (!o->json)
		fprintf(stderr, "rdmamig-vmm: dest: source reconnected %" PRIu64
			" ms after the failure was handled\n", (now_us() - t0) / 1000);
	return 0;
}

int run_dest(const struct vmm_opts *o)
{
	struct guest_ram ram = { 0 };
	struct dest_run d = { .fd = -1, .ram = &ram, .port = o->port };
	struct rdmamig_stats st;
	int ret = EXIT_MIGRATION;

	ds_parser_init(&d.ds);
	if (ram_alloc(&ram, o->nblocks, o->size_mib, false, o->memfd))
		goto out;
	/* Before LISTEN: a destination that cannot run post-copy says so now. */
	if (o->postcopy && !(d.pc = postcopy_prepare(o)))
		goto out;
	/* Before the session: once pages arrive, only the kernel writes RAM. */
	if (o->prefill)
		ram_prefill(&ram);
	d.fd = session_open(o, &ram);
	if (d.fd < 0)
		goto out;
	if (dest_accept(d.fd, o, &d.port, o->timeout_s)) {
		postcopy_finish(d.pc, true);
		goto out;
	}
	while (dest_follow(&d, o)) {
		if (resumable(&d, o) && dest_resume(&d, o) == 0)
			continue;
		postcopy_finish(d.pc, true);
		dest_incomplete(&d, o);
		goto out;
	}
	/* Post-copy: the guest and the threads end, the userfaultfd closes. */
	postcopy_finish(d.pc, false);
	if (o->timeline && postcopy_write_timeline(d.pc, o->timeline))
		fprintf(stderr, "rdmamig-vmm: dest: --timeline %s: %s\n", o->timeline,
			strerror(errno));
	if (session_stats(d.fd, &st)) {
		session_fail(d.fd, o, "GET_STATS", errno);
		goto out;
	}
	ret = dest_verify(&d, o, &ram, &st);
out:
	if (d.fd >= 0)
		close(d.fd);
	postcopy_free(d.pc);
	ds_parser_free(&d.ds);
	ram_free(&ram);
	return ret;
}
