// SPDX-License-Identifier: GPL-2.0
/*
 * The source side of a migration, in the order a VMM does it:
 *
 *   open /dev/rdmamig, SET_PARAMS, ADD_BLOCK for each RAM block
 *   CONNECT                  the destination checks the blocks match
 *   round 1 (bulk):          SEND_ROUND for every block with all pages,
 *                            END_ROUND, device state
 *   rounds 2..R:             the guest dirtied some pages: SEND_ROUND with
 *                            those, END_ROUND, device state
 *   final round (R + 1):     guest stopped; SEND_ROUND with
 *                            RDMAMIG_ROUND_FINAL, END_ROUND, final device
 *                            state
 *   COMPLETE                 the destination has everything
 *   close
 *
 * With post-copy (RDMAMIG_CAP_POSTCOPY, --postcopy=N) the end differs:
 *
 *   rounds 1..N              as above, none of them final (N may be 0)
 *   the switch:              guest stopped; SEND_ROUND with
 *                            RDMAMIG_ROUND_POSTCOPY for every block, naming
 *                            the pages the destination lacks (all of them
 *                            when N is 0, else those dirtied since round N);
 *                            final device state; RDMAMIG_IOC_POSTCOPY: the
 *                            destination runs the guest from here on
 *   COMPLETE                 returns once the destination has fetched
 *                            every owed page; our memory is free then
 *
 * With --resume-wait, a COMPLETE that fails (not ECANCELED: the link, the
 * destination's machine) is not the end: the destination's guest runs
 * on pages only we have.  Keeping the failed session open (its owed
 * pages stay pinned), a new session connects to the same address, takes
 * the failed one's state (RDMAMIG_IOC_POSTCOPY_RESUME), switches again
 * (RDMAMIG_IOC_POSTCOPY: the pages still owed) and COMPLETEs; then the
 * old one is closed (source_resume()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

/*
 * CONNECT blocks until the destination accepted and checked our blocks.
 * It fails with ECONNREFUSED when the destination refused (or nobody
 * listens yet: --retry opens a new session and tries again), EPROTO
 * when the blocks differ, ENOMEM when RLIMIT_MEMLOCK is too small; the
 * details are in stats.reason.  A failed session is not reused.
 */
int source_connect(const struct vmm_opts *o, struct guest_ram *ram)
{
	uint64_t deadline = now_us() + (uint64_t)o->retry_s * 1000000;
	struct rdmamig_addr a = {
		.size = sizeof(a),
		.port = o->port,
		.timeout_ms = o->timeout_s * 1000,
	};
	int fd, err;

	memcpy(a.host, o->host, sizeof(a.host));
	for (;;) {
		fd = session_open(o, ram);
		if (fd < 0)
			return -1;
		stop_point(o, "connect");
		if (ioctl(fd, RDMAMIG_IOC_CONNECT, &a) == 0) {
			stop_point(o, "connected");
			return fd;
		}
		err = errno;
		if (err != ECONNREFUSED || now_us() >= deadline) {
			session_fail(fd, o, "CONNECT", err);
			close(fd);
			return -1;
		}
		close(fd);
		usleep(200 * 1000);
	}
}

/*
 * One RDMAMIG_IOC_SEND_ROUND: the block's dirty pages as a bitmap in our
 * memory (bit i describes page first_page + i).  The range need not be
 * the whole block; here it is trimmed to the 64-page words that have
 * dirty pages, so a round touching few pages passes a short bitmap.
 * With force, a block with nothing dirty is sent anyway (empty bitmap),
 * which is how a round without dirty pages still carries its flags.
 */
static int send_block(int fd, const struct ram_block *b, uint32_t flags,
		      bool force)
{
	uint64_t words = (b->npages + 63) / 64, first, last, end;
	struct rdmamig_round r = { .size = sizeof(r), .flags = flags };

	for (first = 0; first < words && !b->dirty[first]; first++)
		;
	if (first == words) {
		if (!force)
			return 0;
		first = last = 0;
	} else {
		for (last = words - 1; !b->dirty[last]; last--)
			;
	}
	end = (last + 1) * 64;
	if (end > b->npages)
		end = b->npages;

	r.block = b->index;
	r.first_page = first * 64;
	r.npages = end - first * 64;
	r.bitmap = (uintptr_t)&b->dirty[first];
	return ioctl(fd, RDMAMIG_IOC_SEND_ROUND, &r);
}

/*
 * A round: SEND_ROUND for each block with dirty pages, then END_ROUND,
 * which returns once the destination has placed all of the round's
 * pages.  Zero pages are not transferred: the kernel tells the
 * destination to zero them (stats.zero_pages).  In the final round the
 * guest is stopped; every SEND_ROUND of it carries RDMAMIG_ROUND_FINAL
 * and the downtime (stats.downtime_ms) starts with the first of them.
 */
int source_round(int fd, const struct vmm_opts *o, struct guest_ram *ram,
		 uint64_t round, bool final, struct round_stat *rs)
{
	uint32_t flags = final ? RDMAMIG_ROUND_FINAL : 0;
	struct rdmamig_stats before, after;
	char op[32 + RDMAMIG_BLOCK_NAME_MAX];
	unsigned int i;
	uint64_t t0;

	memset(rs, 0, sizeof(*rs));
	rs->round = round;
	for (i = 0; i < ram->nblocks; i++)
		rs->pages_dirty += ram_dirty_count(&ram->blocks[i]);
	session_stats(fd, &before);

	t0 = now_us();
	for (i = 0; i < ram->nblocks; i++) {
		if (send_block(fd, &ram->blocks[i], flags,
			       i == 0 && rs->pages_dirty == 0)) {
			snprintf(op, sizeof(op), "SEND_ROUND %s round %" PRIu64,
				 ram->blocks[i].name, round);
			session_fail(fd, o, op, errno);
			return -1;
		}
	}
	if (ioctl(fd, RDMAMIG_IOC_END_ROUND)) {
		snprintf(op, sizeof(op), "END_ROUND %" PRIu64, round);
		session_fail(fd, o, op, errno);
		return -1;
	}
	rs->wall_us = now_us() - t0;

	/* The bitmaps may be reused once END_ROUND returned. */
	ram_clear_dirty(ram);
	session_stats(fd, &after);
	rs->pages = after.pages - before.pages;
	rs->zero_pages = after.zero_pages - before.zero_pages;
	rs->bytes = after.bytes - before.bytes;
	rs->throughput = after.throughput;
	return 0;
}

/* CONNECT of a resume: short tries, so that a link still cut is retried. */
#define RESUME_CONNECT_MS	3000
/* What the source saw of a post-copy switch. */
struct switch_stat {
	bool granted;			/* RDMAMIG_CAP_POSTCOPY negotiated */
	bool switched;
	uint64_t owed;			/* pages named with ROUND_POSTCOPY */
	uint64_t switch_us;		/* guest stopped to POSTCOPY returned */
	uint64_t complete_us;		/* COMPLETE: until all was fetched */
	unsigned int resumes;
	uint64_t rounds;		/* pre-copy rounds sent before the switch */
	int fd;				/* the session that completed */
	uint64_t fail_us;		/* first failure: COMPLETE returned, */
	uint64_t reconnect_us;		/* ... to the new CONNECT done, */
	uint64_t resumed_us;		/* ... to the new POSTCOPY done */
	int fail_err;			/* the first failure's errno */
	struct rdmamig_stats old;	/* the first failed session's stats */
};

/* Only a FAILED session (not a cancelled one) can be resumed. */
static bool session_failed(int fd)
{
	struct rdmamig_stats st;

	return session_stats(fd, &st) == 0 && st.state == RDMAMIG_STATE_FAILED;
}

/*
 * Post-copy failed after the switch (@err): a new session to the same
 * destination, retried until it listens again or --resume-wait runs out,
 * takes over the failed one (RDMAMIG_IOC_POSTCOPY_RESUME, after CONNECT)
 * and switches again: RDMAMIG_IOC_POSTCOPY names the pages still owed;
 * no device state is sent again.  The failed session is closed once the
 * new one holds its pages.  On success ss->fd is the new session.
 */
static int source_resume(const struct vmm_opts *o, struct guest_ram *ram,
			 struct switch_stat *ss, int err)
{
	uint64_t t0 = now_us(), deadline = t0 + (uint64_t)o->resume_wait_s * 1000000;
	struct rdmamig_addr a = { .size = sizeof(a), .port = o->port };
	int fd, old = ss->fd, tries = 0;

	memcpy(a.host, o->host, sizeof(a.host));
	a.timeout_ms = o->timeout_s * 1000 < RESUME_CONNECT_MS ?
		       o->timeout_s * 1000 : RESUME_CONNECT_MS;
	if (!ss->resumes) {
		ss->fail_err = err;
		session_stats(old, &ss->old);
	}
	if (!o->json)
		fprintf(stderr, "rdmamig-vmm: source: post-copy failed (%s): reconnecting"
			" for up to %u s to resume\n", strerror(err), o->resume_wait_s);
	/* The tries' failures are expected: only the last one is said. */
	for (;;) {
		fd = session_open(o, ram);
		if (fd < 0)
			return -1;
		tries++;
		if (ioctl(fd, RDMAMIG_IOC_CONNECT, &a) == 0)
			break;
		err = errno;
		if (now_us() >= deadline || err == ECANCELED || err == EPROTO ||
		    err == ENOKEY || err == EACCES) {
			session_fail(fd, o, "CONNECT (resume)", err);
			close(fd);
			return -1;
		}
		close(fd);
		usleep(200 * 1000);
	}
	if (!ss->resumes)
		ss->reconnect_us = now_us() - t0;
	if (ioctl(fd, RDMAMIG_IOC_POSTCOPY_RESUME, old)) {
		session_fail(fd, o, "POSTCOPY_RESUME", errno);
		close(fd);
		return -1;
	}
	if (ioctl(fd, RDMAMIG_IOC_POSTCOPY)) {
		session_fail(fd, o, "POSTCOPY (resume)", errno);
		close(fd);
		return -1;
	}
	if (!ss->resumes)
		ss->resumed_us = now_us() - t0;
	ss->resumes++;
	close(old);		/* its pins and registrations go with it */
	ss->fd = fd;
	if (!o->json)
		fprintf(stderr, "rdmamig-vmm: source: post-copy resumed after %" PRIu64
			" ms (%d connection attempt%s)\n", (now_us() - t0) / 1000, tries,
			tries == 1 ? "" : "s");
	return 0;
}

/*
 * The switch to post-copy, after @rounds pre-copy rounds.  The guest ran
 * during the last round and dirtied memory; then it stops.  Every page
 * the destination lacks is named with RDMAMIG_ROUND_POSTCOPY (one
 * SEND_ROUND per block, as in a round; nothing is sent, the pages are
 * owed), the device state at the switch written, and RDMAMIG_IOC_POSTCOPY
 * exposes the owed pages: the destination runs the guest from then on
 * and fetches them.  COMPLETE waits for the last one.
 */
static int source_switch(int fd, const struct vmm_opts *o, struct guest_ram *ram,
			 struct rng *r, uint64_t rounds, struct switch_stat *ss)
{
	char op[48 + RDMAMIG_BLOCK_NAME_MAX];
	uint64_t t0, owed = 0;
	unsigned int i;

	if (rounds)
		ram_redirty(ram, r, o->redirty_pct, o->zero_pct);
	t0 = now_us();				/* the guest stops */
	for (i = 0; i < ram->nblocks; i++)
		owed += ram_dirty_count(&ram->blocks[i]);
	for (i = 0; i < ram->nblocks; i++) {
		if (send_block(fd, &ram->blocks[i], RDMAMIG_ROUND_POSTCOPY,
			       i == 0 && owed == 0)) {
			snprintf(op, sizeof(op), "SEND_ROUND(POSTCOPY) %s",
				 ram->blocks[i].name);
			session_fail(fd, o, op, errno);
			return -1;
		}
	}
	ram_clear_dirty(ram);
	ss->owed = owed;
	/* Device state at the switch: a record, then every page's hash. */
	if (ds_write_round(fd, r, rounds + 1) ||
	    ds_write_hashes(fd, ram, rounds + 1)) {
		session_fail(fd, o, "write final device state", errno);
		return -1;
	}
	stop_point(o, "final");
	if (ioctl(fd, RDMAMIG_IOC_POSTCOPY)) {
		session_fail(fd, o, "POSTCOPY", errno);
		return -1;
	}
	ss->switched = true;
	ss->switch_us = now_us() - t0;
	if (!o->json)
		fprintf(stderr, "rdmamig-vmm: source: switched to post-copy after %"
			PRIu64 " round%s, %" PRIu64 " pages owed\n", rounds,
			rounds == 1 ? "" : "s", owed);
	stop_point(o, "switched");
	t0 = now_us();
	ss->fd = fd;
	while (ioctl(ss->fd, RDMAMIG_IOC_COMPLETE)) {
		int err = errno;

		/* A signal leaves the session as it is: wait on. */
		if (err == EINTR)
			continue;
		session_fail(ss->fd, o, "COMPLETE", err);
		if (!o->resume_wait_s || err == ECANCELED || ss->resumes >= 8 ||
		    !session_failed(ss->fd) || source_resume(o, ram, ss, err))
			return -1;
	}
	ss->complete_us = now_us() - t0;
	stop_point(o, "completed");
	return 0;
}

/*
 * @rounds pre-copy rounds, then either a final round (pre-copy) or the
 * switch (post-copy, when the destination allowed it).
 */
static int source_migrate(int fd, const struct vmm_opts *o,
			  struct guest_ram *ram, struct rng *r,
			  struct round_stat *rs, uint64_t rounds,
			  struct switch_stat *ss)
{
	uint64_t round, last = ss->granted ? rounds : rounds + 1;

	for (round = 1; round <= last; round++) {
		/* Between rounds the guest runs and dirties memory. */
		if (round > 1)
			ram_redirty(ram, r, o->redirty_pct, o->zero_pct);
		if (source_round(fd, o, ram, round, !ss->granted && round == last,
				 &rs[round - 1]))
			return -1;
		/* Device state may be written at any time after CONNECT. */
		if (ds_write_round(fd, r, round)) {
			session_fail(fd, o, "write device state", errno);
			return -1;
		}
		if (round == 1 && (round < last || ss->granted))
			stop_point(o, "between");
		/*
		 * --postcopy=auto: a round that sent no fewer pages than the
		 * one before shows the guest writes as fast as the link
		 * carries; more rounds would not shrink what is left.
		 */
		if (ss->granted && o->postcopy_auto && round >= 2 && round < last &&
		    rs[round - 1].pages_dirty >= rs[round - 2].pages_dirty) {
			if (!o->json)
				fprintf(stderr, "rdmamig-vmm: source: round %" PRIu64
					" sent %" PRIu64 " pages, round %" PRIu64 " %" PRIu64
					": not shrinking, switching to post-copy\n",
					round - 1, rs[round - 2].pages_dirty, round,
					rs[round - 1].pages_dirty);
			break;
		}
	}
	if (ss->granted) {
		ss->rounds = round > last ? last : round;
		return source_switch(fd, o, ram, r, ss->rounds, ss);
	}
	/* The guest is stopped: its final device state, then COMPLETE. */
	if (ds_write_hashes(fd, ram, last)) {
		session_fail(fd, o, "write final device state", errno);
		return -1;
	}
	stop_point(o, "final");
	if (ioctl(fd, RDMAMIG_IOC_COMPLETE)) {
		session_fail(fd, o, "COMPLETE", errno);
		return -1;
	}
	stop_point(o, "completed");
	return 0;
}

int run_source(const struct vmm_opts *o)
{
	/* Pre-copy rounds before the final round or the switch. */
	uint64_t rounds = o->postcopy ? o->postcopy_rounds : o->rounds, nrs;
	struct round_stat *rs = calloc(rounds + 1, sizeof(*rs));
	struct switch_stat ss = { 0 };
	struct rdmamig_stats st;
	struct guest_ram ram = { 0 };
	struct rng r = { .s = o->seed };
	uint64_t dirty = 0;
	char extra[512];
	unsigned int i;
	int fd, ret = EXIT_MIGRATION;

	if (!rs || ram_alloc(&ram, o->nblocks, o->size_mib, true, o->memfd) ||
	    ram_fill(&ram, &r, o->zero_pct, o->zero_layout))
		goto out;

	fd = source_connect(o, &ram);
	if (fd < 0)
		goto out;
	/*
	 * The destination may not allow post-copy (an older one, or one that
	 * cannot run it): then a final round takes the switch's place.
	 */
	if (o->postcopy && session_stats(fd, &st) == 0) {
		ss.granted = st.caps & RDMAMIG_CAP_POSTCOPY;
		if (!ss.granted && !o->json)
			fprintf(stderr, "rdmamig-vmm: source: the destination does not "
				"allow post-copy: a final round instead\n");
	}
	ss.fd = fd;
	if (source_migrate(fd, o, &ram, &r, rs, rounds, &ss) == 0 &&
	    session_stats(ss.fd, &st) == 0) {
		nrs = ss.granted ? ss.rounds : rounds + 1;
		for (i = 0; i < nrs; i++)
			dirty += rs[i].pages_dirty;
		snprintf(extra, sizeof(extra),
			 "\"pages_dirty\":%" PRIu64 ",\"total_pages\":%" PRIu64
			 ",\"postcopy\":%s,\"owed_named\":%" PRIu64
			 ",\"switch_us\":%" PRIu64 ",\"postcopy_wait_us\":%" PRIu64
			 ",\"resumes\":%u,\"resume_errno\":%d,\"resume_reconnect_us\":%" PRIu64
			 ",\"resume_us\":%" PRIu64 ",\"first_postcopy_owed\":%" PRIu64
			 ",\"first_total_ms\":%" PRIu64,
			 dirty, ram.total_pages, ss.switched ? "true" : "false",
			 ss.owed, ss.switch_us, ss.complete_us, ss.resumes,
			 ss.fail_err, ss.reconnect_us, ss.resumed_us,
			 (uint64_t)ss.old.postcopy_owed, (uint64_t)ss.old.total_ms);
		print_summary(o, &st, rs, nrs, extra);
		if (ss.switched && !o->json)
			printf("  switch: %" PRIu64 " pages owed, guest stopped for %.1f ms"
			       " (SEND_ROUND, device state, POSTCOPY); COMPLETE waited"
			       " %.1f ms for the fetches\n", ss.owed,
			       ss.switch_us / 1000.0, ss.complete_us / 1000.0);
		if (ss.resumes && !o->json)
			printf("  resumed %u time%s: the first session failed (%s, reason:"
			       " %s) after %" PRIu64 " ms; reconnected %.1f ms and switched"
			       " again %.1f ms after the failure, %" PRIu64 " pages owed then\n",
			       ss.resumes, ss.resumes == 1 ? "" : "s", strerror(ss.fail_err),
			       ss.old.reason, (uint64_t)ss.old.total_ms,
			       ss.reconnect_us / 1000.0, ss.resumed_us / 1000.0,
			       (uint64_t)st.postcopy_owed);
		ret = 0;
	}
	/* close() ends the session; after COMPLETE that frees it. */
	close(ss.fd);
	if (ss.fd != fd)
		close(fd);
out:
	ram_free(&ram);
	free(rs);
	return ret;
}
