// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl protect: the epochs of a checkpointing primary.
 *
 * After the bulk round (migrate.c), every --mc-delay ms:
 *   SIGSTOP, and wait until every thread stopped;
 *   read the soft-dirty bits (the pages written since the last epoch,
 *   or since the bulk round's clear), then clear them;
 *   MC_EPOCH: the module copies those pages into its snapshot and
 *   returns; it sends the snapshot to the backup in the background;
 *   SIGCONT.
 * The process is stopped from SIGSTOP to SIGCONT: that is the epoch's
 * pause.  The backup applies an epoch only whole, so its twin is always
 * the process as it was at some epoch's SIGSTOP.
 *
 * Reading and clearing the bits are two steps; the process is stopped
 * between them, so no write falls between (as migrate's rounds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attrs.h"
#include "print.h"
#include "protect.h"
#include "rdmamigctl.h"

#define PROT_STOP_MS	10000	/* to wait for the process to stop */

int protect_help(void)
{
	fputs("Usage: rdmamigctl [-j | -p] protect --pid PID [OPTIONS] rdma:HOST:PORT\n"
	      "       rdmamigctl protect help\n"
	      "\n"
	      "Protect the running process PID with a standby twin on HOST, where\n"
	      "'rdmamigctl standby' listens on PORT: micro-checkpointing.  A bulk round\n"
	      "copies every page, and pre-copy rounds what the process wrote meanwhile\n"
	      "until it would fit an epoch (half the module's mc_staging_mb, at most 10\n"
	      "rounds); then, every --mc-delay ms, the process is stopped, the\n"
	      "pages it wrote since the last epoch (soft-dirty bits) are copied by the\n"
	      "module, and it runs on while the epoch goes to the backup, which applies\n"
	      "each epoch only whole.  If this host dies, the standby continues its\n"
	      "twin from the last epoch it committed.  Runs until --epochs, SIGINT or\n"
	      "SIGTERM (then the backup is told that protection ended, and its twin\n"
	      "stays stopped), or the process's exit.  If the backup is lost, the\n"
	      "process runs on unprotected and the exit status is 1.  Never end this\n"
	      "command with SIGKILL: the backup would take it for a dead host and run\n"
	      "its twin beside the process.\n"
	      "\n"
	      "Options:\n"
	      "  --pid PID              the process to protect (needs ptrace rights)\n"
	      "  --mc-delay MS          the epoch's length, 10 to 60000 ms (100)\n"
	      "  --epochs N             end protection after N epochs (default: run\n"
	      "                         until interrupted)\n"
	      "  --region ADDR+LEN      protect this range (repeatable; LEN may end in\n"
	      "                         K, M or G); default: every private writable\n"
	      "                         anonymous mapping of 1 MiB or more\n"
	      "  --net-buffer IFACE     output commit: the process's packets out of\n"
	      "                         IFACE (in its network namespace) wait in a plug\n"
	      "                         qdisc until the backup acknowledged their epoch;\n"
	      "                         IFACE's root qdisc is replaced meanwhile\n"
	      "  --checksum             print the XXH64 of the memory at every epoch\n"
	      "                         (read with the process stopped: for tests)\n"
	      "  --retry SEC            retry a refused connection for SEC s (30)\n"
	      "  --timeout SEC          timeout of one connection attempt (30)\n"
	      "  --max-bandwidth RATE   bytes/s, may end in K, M or G (x1000); 0: none\n"
	      "  --secret-file FILE     the secret both ends share (as for migrate);\n"
	      "                         required unless --no-auth\n"
	      "  --no-auth              without peer authentication (the standby must\n"
	      "                         say --no-auth too)\n"
	      "  --channels N           stripe the bulk round over N queue pairs, 1 to 8\n"
	      "  --keepalive MS         0 (off) or 100 to 60000 ms (default: the\n"
	      "                         module's): the standby declares this host dead\n"
	      "                         after two intervals of silence\n"
	      "\n"
	      "An epoch larger than the standby's staging (module parameter\n"
	      "mc_staging_mb) ends the protection: shorten --mc-delay or raise it.\n"
	      "Prints a line per epoch and a summary.  JSON: one object: pid, host,\n"
	      "port, blocks, round_stats (the bulk round), mc_delay_ms, state, epochs\n"
	      "[{epoch, pages, pause_us, snapshot_us, wait_us, ack_us, checksum}],\n"
	      "mc_epochs, mc_acked, span_us, pause_us_p50, pause_us_p99, pause_us_max,\n"
	      "ack_us_max, ack_us_last, mc_pages, mc_bytes, net_buffer, net_segments,\n"
	      "net_released, net_merged (with --net-buffer), unprotected, exited,\n"
	      "reason.  With --net-buffer, the packets held are let out when\n"
	      "protection ends or the backup is lost; a killed rdmamigctl leaves them\n"
	      "held: 'tc qdisc del dev IFACE root' in the process's namespace.\n"
	      "Exit status 1 if protection failed or the backup was lost: the process\n"
	      "runs on here in both cases.\n",
	      stdout);
	return RM_EXIT_OK;
}

static int prot_epoch_reply(struct nlattr **tb, void *arg)
{
	struct prot_epoch *e = arg;

	if (!tb[RDMAMIG_ATTR_EPOCH] || !tb[RDMAMIG_ATTR_NPAGES] ||
	    !tb[RDMAMIG_ATTR_SNAPSHOT_US] || !tb[RDMAMIG_ATTR_WAIT_US]) {
		rm_err("protect: an MC_EPOCH answer without its attributes");
		return RM_EXIT_ERR;
	}
	e->epoch = nla_get_u64(tb[RDMAMIG_ATTR_EPOCH]);
	e->pages = nla_get_u64(tb[RDMAMIG_ATTR_NPAGES]);
	e->snapshot_us = nla_get_u64(tb[RDMAMIG_ATTR_SNAPSHOT_US]);
	e->wait_us = nla_get_u64(tb[RDMAMIG_ATTR_WAIT_US]);
	return RM_EXIT_OK;
}

/* MC_EPOCH over the blocks' dirty bitmaps (the process stopped). */
static int prot_take(struct prot *p, struct prot_epoch *e)
{
	struct rdmamig_round r[PM_MAX_BLOCKS];
	unsigned int i, n = 0;
	struct nl_msg *msg;

	for (i = 0; i < p->bl->n; i++) {
		const struct pm_block *b = &p->bl->b[i];

		if (!b->ndirty)
			continue;
		memset(&r[n], 0, sizeof(r[n]));
		r[n].size = sizeof(r[n]);
		r[n].block = i;
		r[n].npages = b->npages;
		r[n].bitmap = (uintptr_t)b->dirty;
		n++;
	}
	msg = rm_nl_msg(&p->rm->nl, RDMAMIG_CMD_MC_EPOCH, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, p->id) ||
	    (n && (nla_put_u64(msg, RDMAMIG_ATTR_ROUNDS, (uintptr_t)r) ||
		   nla_put_u32(msg, RDMAMIG_ATTR_NROUNDS, n)))) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	return rm_nl_send(&p->rm->nl, msg, "protect: cannot take an epoch",
			  prot_epoch_reply, e);
}

static struct prot_epoch *prot_new_epoch(struct prot *p)
{
	struct prot_epoch *e;

	e = realloc(p->ep, (p->nep + 1) * sizeof(*e));
	if (!e) {
		rm_err("out of memory");
		return NULL;
	}
	p->ep = e;
	e = &p->ep[p->nep];
	memset(e, 0, sizeof(*e));
	return e;
}

/*
 * An epoch failed: is the session gone (the backup lost), or only this
 * epoch refused (too large for the staging, ...), the session alive?
 */
static void prot_check_lost(struct prot *p)
{
	struct pm_session s;

	if (pm_session_get(p->rm, p->id, &s))
		return;
	if (s.state == RDMAMIG_STATE_FAILED || s.state == RDMAMIG_STATE_CANCELLED) {
		p->lost = true;
		snprintf(p->reason, sizeof(p->reason), "%s",
			 s.reason[0] ? s.reason : strerror(-s.error));
	}
}

/*
 * --net-buffer at an epoch's stop: if a segment still waits for its
 * acknowledgement (the event may be late, or lost to a full socket), ask
 * the session how far the backup got; then close this epoch's packets.
 */
static int prot_close_output(struct prot *p, uint64_t epoch)
{
	struct pm_session s;
	int ret;

	if (p->nb.closed && !pm_session_get(p->rm, p->id, &s)) {
		ret = netbuf_acked(&p->nb, s.st[RDMAMIG_STAT_MC_ACKED]);
		if (ret)
			return RM_EXIT_ERR;
	}
	return netbuf_epoch(&p->nb, epoch) ? RM_EXIT_ERR : RM_EXIT_OK;
}

/* One epoch: stop, read and clear the bits, MC_EPOCH, continue. */
static int prot_epoch(struct prot *p)
{
	struct prot_epoch *e = prot_new_epoch(p);
	uint64_t t0, ndirty;
	int err, ret;

	if (!e)
		return RM_EXIT_ERR;
	t0 = pm_now_us();
	err = pm_stop(p->pid, PROT_STOP_MS);
	if (err == -ESRCH) {
		p->exited = true;
		return RM_EXIT_OK;
	}
	if (err) {
		pm_cont(p->pid);
		rm_err("protect: cannot stop pid %d: %s", (int)p->pid, strerror(-err));
		return RM_EXIT_ERR;
	}
	ret = pm_read_dirty(p->pagemap, p->bl, &ndirty) ?:
	      pm_clear_soft_dirty(p->pid);
	/*
	 * --checksum: out before the epoch is taken, so that whoever kills
	 * us right after it knows what the backup may commit.
	 */
	if (!ret && p->checksum) {
		ret = pm_checksum(p->mem, p->bl, &e->checksum);
		pr_text("epoch %u: checksum %#018" PRIx64 "\n", p->nep + 1, e->checksum);
		if (!ret && !pr_json())
			ret = pr_commit();
	}
	ret = ret ?: prot_take(p, e);
	/* Still stopped: what it sent until now belongs to this epoch. */
	if (!ret && p->net_buffer)
		ret = prot_close_output(p, e->epoch);
	err = pm_cont(p->pid);
	e->pause_us = pm_now_us() - t0;
	if (ret) {
		prot_check_lost(p);
		return ret;
	}
	if (err == -ESRCH) {
		p->exited = true;	/* killed while stopped: the epoch counts */
	} else if (err) {
		rm_err("protect: cannot continue pid %d: %s", (int)p->pid, strerror(-err));
		return RM_EXIT_ERR;
	}
	e->t_us = t0;
	p->nep++;
	pr_text("epoch %" PRIu64 ": %" PRIu64 " pages, process stopped %.2f ms "
		"(snapshot %.2f ms)\n", e->epoch, e->pages, e->pause_us / 1e3,
		e->snapshot_us / 1e3);
	return pr_json() ? RM_EXIT_OK : pr_commit();
}

/*
 * EVENT_MC of our session: the backup acknowledged an epoch.  Its time
 * from snapshot to acknowledgement (STAT_MC_ACK_US_LAST) is that epoch's;
 * an epoch whose event was lost (the group overflowed) keeps none.
 */
static int prot_event(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct nlattr *st[RDMAMIG_STAT_MAX + 1];
	struct prot *p = arg;
	uint64_t acked;
	unsigned int i;

	if (cmd != RDMAMIG_CMD_EVENT_MC || !tb[RDMAMIG_ATTR_SESSION_ID] ||
	    nla_get_u32(tb[RDMAMIG_ATTR_SESSION_ID]) != p->id ||
	    !tb[RDMAMIG_ATTR_STATS] || attr_nest_stats(st, tb[RDMAMIG_ATTR_STATS]) ||
	    !st[RDMAMIG_STAT_MC_ACKED] || !st[RDMAMIG_STAT_MC_ACK_US_LAST])
		return RM_EXIT_OK;
	acked = nla_get_u64(st[RDMAMIG_STAT_MC_ACKED]);
	/* Said on stderr; the next stop asks the session again. */
	if (p->net_buffer)
		netbuf_acked(&p->nb, acked);
	for (i = p->nep; i-- > 0;) {
		if (p->ep[i].epoch == acked) {
			p->ep[i].ack_us = nla_get_u64(st[RDMAMIG_STAT_MC_ACK_US_LAST]);
			break;
		}
	}
	return RM_EXIT_OK;
}

/*
 * Until @when (CLOCK_MONOTONIC, us), take the acknowledgements as they
 * come; false once interrupted.
 */
static bool prot_wait_until(struct prot *p, uint64_t when)
{
	struct pollfd pfd = { .fd = p->events.sk ? rm_nl_fd(&p->events) : -1,
			      .events = POLLIN };
	uint64_t now;

	while (!pm_interrupted && (now = pm_now_us()) < when) {
		uint64_t us = when - now > 100000 ? 100000 : when - now;

		if (poll(&pfd, 1, (us + 999) / 1000) == 1 && (pfd.revents & POLLIN) &&
		    rm_nl_events(&p->events, prot_event, p))
			pfd.fd = -1;	/* said why; the epochs go on without */
	}
	return !pm_interrupted;
}

int prot_run(struct prot *p)
{
	uint64_t next;
	int ret;

	/* Without the events, the epochs have no acknowledgement times. */
	if (rm_nl_open(&p->events) ||
	    rm_nl_subscribe(&p->events, RDMAMIG_MCGRP_EVENTS))
		rm_nl_close(&p->events);
	/*
	 * From the first epoch on, the process's packets wait for the
	 * backup; before it, the backup had nothing to fail over to.
	 */
	if (p->net_buffer && netbuf_plug(&p->nb))
		return RM_EXIT_ERR;
	next = pm_now_us();
	while (!p->max_epochs || p->nep < p->max_epochs) {
		next += (uint64_t)p->delay_ms * 1000;
		if (!prot_wait_until(p, next))
			break;
		ret = prot_epoch(p);
		if (ret || p->exited)
			return ret;
		/* A slow epoch: the next one is a whole delay after it. */
		if (pm_now_us() > next)
			next = pm_now_us();
	}
	return RM_EXIT_OK;
}

/* After COMPLETE, every epoch is acknowledged: the last events. */
void prot_drain_events(struct prot *p)
{
	if (p->events.sk)
		prot_wait_until(p, pm_now_us() + 50000);
	rm_nl_close(&p->events);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The epochs' pauses, sorted (NULL without epochs or memory): the
 * summary's percentiles are read from one sort.
 */
static uint64_t *prot_sorted_pauses(const struct prot *p)
{
	uint64_t *v;
	unsigned int i;

	if (!p->nep)
		return NULL;
	v = malloc(p->nep * sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < p->nep; i++)
		v[i] = p->ep[i].pause_us;
	qsort(v, p->nep, sizeof(*v), cmp_u64);
	return v;
}

/* The @pct percentile of @n sorted values (nearest rank); 0 if none. */
static uint64_t pct_of(const uint64_t *v, unsigned int n, unsigned int pct)
{
	return v && n ? v[(n * pct + 99) / 100 - 1] : 0;
}

void prot_print_summary(const struct prot *p, const struct pm_session *s)
{
	const uint64_t *st = s->st;
	uint64_t span_us = p->nep > 1 ? p->ep[p->nep - 1].t_us - p->ep[0].t_us : 0;
	uint64_t *pauses = prot_sorted_pauses(p);
	char buf[32];
	unsigned int i;

	pr_open_array("epochs");
	for (i = 0; i < p->nep; i++) {
		const struct prot_epoch *e = &p->ep[i];

		pr_open_object(NULL);
		pr_u64("epoch", NULL, e->epoch);
		pr_u64("pages", NULL, e->pages);
		pr_u64("pause_us", NULL, e->pause_us);
		pr_u64("snapshot_us", NULL, e->snapshot_us);
		pr_u64("wait_us", NULL, e->wait_us);
		if (e->ack_us)
			pr_u64("ack_us", NULL, e->ack_us);
		if (p->checksum) {
			snprintf(buf, sizeof(buf), "%#018" PRIx64, e->checksum);
			pr_string("checksum", NULL, buf);
		}
		pr_close_object();
	}
	pr_close_array();
	pr_u64("mc_epochs", "  epochs       %llu taken", st[RDMAMIG_STAT_MC_EPOCHS]);
	pr_u64("mc_acked", ", %llu acknowledged by the backup", st[RDMAMIG_STAT_MC_ACKED]);
	pr_u64("span_us", NULL, span_us);
	pr_text(" (%.1f/s)\n", span_us ? (p->nep - 1) * 1e6 / span_us : 0.0);
	pr_u64("pause_us_p50", "  pause        median %llu us", pct_of(pauses, p->nep, 50));
	pr_u64("pause_us_p99", ", p99 %llu us", pct_of(pauses, p->nep, 99));
	pr_u64("pause_us_max", ", max %llu us\n", pct_of(pauses, p->nep, 100));
	free(pauses);
	pr_u64("ack_us_max", "  acknowledged at most %llu us after the snapshot",
	       st[RDMAMIG_STAT_MC_ACK_US_MAX]);
	pr_u64("ack_us_last", " (last %llu us)\n", st[RDMAMIG_STAT_MC_ACK_US_LAST]);
	pr_u64("mc_pages", "  sent         %llu pages", st[RDMAMIG_STAT_MC_PAGES]);
	pr_u64("mc_bytes", " (%llu bytes) in epochs\n", st[RDMAMIG_STAT_MC_BYTES]);
	if (p->net_buffer) {
		pr_string("net_buffer", "  output       held on %s until acknowledged", p->net_buffer);
		pr_u64("net_segments", ": %llu segments closed", p->nb.segments);
		pr_u64("net_released", ", %llu released", p->nb.released);
		pr_u64("net_merged", ", %llu stops merged into the next\n", p->nb.merged);
	}
	pr_bool("unprotected", NULL, p->lost);
	pr_bool("exited", NULL, p->exited);
	pr_string("reason", NULL, p->reason);
}

void prot_release_output(struct prot *p)
{
	netbuf_close(&p->nb);
}

void prot_free(struct prot *p)
{
	netbuf_close(&p->nb);
	rm_nl_close(&p->events);
	free(p->ep);
	p->ep = NULL;
	p->nep = 0;
}
