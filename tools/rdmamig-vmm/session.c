// SPDX-License-Identifier: GPL-2.0
/*
 * What both roles do with a session: open it, set its parameters,
 * register the RAM blocks, and report its statistics or its failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "secret.h"
#include "vmm.h"

#define DEV_PATH "/dev/" RDMAMIG_DEVICE_NAME

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * For tests (--stop-at): stop between two ioctls, so that the session sits
 * in a known state while the test looks at it or cancels it from outside
 * (rdmamigctl session cancel, or RDMAMIG_IOC_CANCEL on a copy of the fd).
 * SIGCONT carries on with the next ioctl.
 */
void stop_point(const struct vmm_opts *o, const char *point)
{
	if (!o->stop_at || strcmp(o->stop_at, point))
		return;
	fprintf(stderr, "rdmamig-vmm: stopping at %s\n", point);
	fflush(stdout);
	raise(SIGSTOP);
}

/* The device-state stream may take a write() in pieces. */
int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

void json_string(char *out, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 3)
		return;
	out[o++] = '"';
	for (; *s && o + 8 < size; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			o += snprintf(out + o, size - o, "\\%c", c);
		else if (c < 0x20)
			o += snprintf(out + o, size - o, "\\u%04x", c);
		else
			out[o++] = c;
	}
	out[o++] = '"';
	out[o] = 0;
}

static const char *role_name(const struct vmm_opts *o)
{
	return o->source ? "source" : "dest";
}

static const char *state_name(uint32_t state)
{
	static const char *const names[] = {
		[RDMAMIG_STATE_NONE] = "NONE",
		[RDMAMIG_STATE_SETUP] = "SETUP",
		[RDMAMIG_STATE_CONNECTED] = "CONNECTED",
		[RDMAMIG_STATE_ACTIVE] = "ACTIVE",
		[RDMAMIG_STATE_COMPLETED] = "COMPLETED",
		[RDMAMIG_STATE_FAILED] = "FAILED",
		[RDMAMIG_STATE_CANCELLED] = "CANCELLED",
		[RDMAMIG_STATE_POSTCOPY] = "POSTCOPY",
	};

	if (state < sizeof(names) / sizeof(names[0]) && names[state])
		return names[state];
	return "?";
}

/*
 * RDMAMIG_IOC_GET_STATS works in any state, also after a failure: it is
 * where the kernel says why (stats.reason).  Like every rdmamig struct it
 * starts with its size, so old binaries keep working with new kernels.
 */
int session_stats(int fd, struct rdmamig_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ioctl(fd, RDMAMIG_IOC_GET_STATS, st);
}

void session_fail(int fd, const struct vmm_opts *o, const char *op, int err)
{
	struct rdmamig_stats st;
	char reason[2 * RDMAMIG_REASON_MAX + 8], jop[160];

	if (fd < 0 || session_stats(fd, &st))
		memset(&st, 0, sizeof(st));
	st.reason[RDMAMIG_REASON_MAX - 1] = 0;

	if (!o->json) {
		fprintf(stderr, "rdmamig-vmm: %s: %s: %s%s%s%s\n", role_name(o), op,
			strerror(err), st.reason[0] ? " (reason: " : "", st.reason,
			st.reason[0] ? ")" : "");
		if (err == ENOKEY)
			fprintf(stderr, "rdmamig-vmm: peer authentication needs a secret: "
				"--secret-file F or $" SECRET_FILE_ENV ", or --no-auth on both ends\n");
		return;
	}
	json_string(reason, sizeof(reason), st.reason);
	json_string(jop, sizeof(jop), op);
	printf("{\"ok\":false,\"role\":\"%s\",\"op\":%s,\"errno\":%d,"
	       "\"error\":\"%s\",\"reason\":%s,\"state\":\"%s\"}\n",
	       role_name(o), jop, err, strerror(err), reason, state_name(st.state));
	fflush(stdout);
}

/*
 * RDMAMIG_IOC_SET_PARAMS changes only the fields named in .mask, so a
 * VMM sets what it cares about and keeps the kernel's defaults for the
 * rest.  caps is what the source wants and what the destination allows;
 * the session gets the intersection (stats.caps after CONNECT/ACCEPT).
 */
static int session_params(int fd, const struct vmm_opts *o)
{
	struct rdmamig_params p = { .size = sizeof(p) };

	if (o->pin_all) {
		p.mask |= RDMAMIG_PARAM_CAPS;
		p.caps |= RDMAMIG_CAP_PIN_ALL;
	}
	if (o->pull) {
		p.mask |= RDMAMIG_PARAM_CAPS;
		p.caps |= RDMAMIG_CAP_PULL;
	}
	if (o->postcopy) {
		p.mask |= RDMAMIG_PARAM_CAPS;
		p.caps |= RDMAMIG_CAP_POSTCOPY;
	}
	if (o->mc) {
		p.mask |= RDMAMIG_PARAM_CAPS;
		p.caps |= RDMAMIG_CAP_MC;
	}
	if (o->max_bandwidth) {
		p.mask |= RDMAMIG_PARAM_MAX_BANDWIDTH;
		p.max_bandwidth = o->max_bandwidth;
	}
	if (o->max_registered) {
		p.mask |= RDMAMIG_PARAM_MAX_REGISTERED;
		p.max_registered = o->max_registered;
	}
	if (o->keepalive_ms) {
		p.mask |= RDMAMIG_PARAM_KEEPALIVE;
		p.keepalive_ms = o->keepalive_ms;
	}
	if (o->channels_set) {
		/* Unchecked here: the kernel's answer to 0 or 9 is a test. */
		p.mask |= RDMAMIG_PARAM_CHANNELS;
		p.channels = o->channels;
	}
	if (o->no_auth) {
		p.mask |= RDMAMIG_PARAM_AUTH;
		p.auth = RDMAMIG_AUTH_OFF;
	}
	if (!p.mask)
		return 0;
	return ioctl(fd, RDMAMIG_IOC_SET_PARAMS, &p);
}

/*
 * RDMAMIG_IOC_SET_SECRET keys the session's peer authentication; it is
 * write-only.  Without a secret (and without --no-auth) the kernel refuses
 * LISTEN and CONNECT with ENOKEY.  Return: 0, or -1 with errno set (and
 * @err filled for a bad file).
 */
static int session_secret(int fd, const struct vmm_opts *o, char *err,
			  size_t errlen)
{
	struct rdmamig_secret sec = { .size = sizeof(sec) };
	struct secret s;
	int ret;

	err[0] = 0;
	if (o->no_auth)
		return 0;
	ret = secret_load(o->secret_file, &s, err, errlen);
	if (ret <= 0) {
		errno = EINVAL;
		return ret;
	}
	memcpy(sec.key, s.key, s.len);
	sec.len = s.len;
	secret_wipe(&s);
	ret = ioctl(fd, RDMAMIG_IOC_SET_SECRET, &sec);
	explicit_bzero(&sec, sizeof(sec));
	return ret;
}

/*
 * RDMAMIG_IOC_ADD_BLOCK registers one RAM block: a name (the destination
 * must register the same names with the same lengths; the kernel checks
 * at connection time) and a page-aligned range.  The returned index
 * names the block in RDMAMIG_IOC_SEND_ROUND.
 */
static int session_add_block(int fd, struct ram_block *b, uint32_t flags)
{
	struct rdmamig_block blk = {
		.size = sizeof(blk),
		.flags = flags,
		.addr = (uintptr_t)b->mem,
		.length = b->npages * page_size,
	};

	snprintf(blk.name, sizeof(blk.name), "%s", b->name);
	if (ioctl(fd, RDMAMIG_IOC_ADD_BLOCK, &blk))
		return -1;
	b->index = blk.index;
	return 0;
}

/* open() is a new session; returns its fd, or -1 after saying why. */
int session_open(const struct vmm_opts *o, struct guest_ram *ram)
{
	char op[32 + RDMAMIG_BLOCK_NAME_MAX], why[256];
	uint32_t flags = 0;
	unsigned int i;
	int fd, err;

	fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		session_fail(-1, o, "open " DEV_PATH, err);
		return -1;
	}
	if (session_params(fd, o)) {
		err = errno;
		session_fail(fd, o, "SET_PARAMS", err);
		close(fd);
		return -1;
	}
	if (session_secret(fd, o, why, sizeof(why))) {
		err = errno;
		session_fail(fd, o, why[0] ? why : "SET_SECRET", err);
		close(fd);
		return -1;
	}
	/*
	 * The destination's RAM is a fresh anonymous mapping that reads as
	 * zero: the source need not send the zero pages it never wrote there
	 * (RDMAMIG_BLOCK_FRESH).  Not after --prefill wrote to it; and a
	 * source's blocks ignore the flag, so it is not passed there.
	 */
	if (!o->source && !o->prefill)
		flags = RDMAMIG_BLOCK_FRESH;
	for (i = 0; i < ram->nblocks; i++) {
		if (session_add_block(fd, &ram->blocks[i], flags)) {
			err = errno;
			snprintf(op, sizeof(op), "ADD_BLOCK %s", ram->blocks[i].name);
			session_fail(fd, o, op, err);
			close(fd);
			return -1;
		}
	}
	return fd;
}

static double mbs(uint64_t bytes_per_s)
{
	return bytes_per_s / 1e6;
}

static void print_human(const struct vmm_opts *o, const struct rdmamig_stats *st,
			const struct round_stat *rs, unsigned int nrs)
{
	char skipped[48] = "";
	unsigned int i;

	/* Only a source knows which zero pages it did not send. */
	if (o->source || st->zero_skipped)
		snprintf(skipped, sizeof(skipped), " (%" PRIu64 " not sent)",
			 (uint64_t)st->zero_skipped);
	printf("%s: %s: %" PRIu64 " pages + %" PRIu64 " zero pages%s, %" PRIu64
	       " bytes, %" PRIu64 " rounds, %" PRIu64 " device-state bytes\n",
	       role_name(o), state_name(st->state), (uint64_t)st->pages,
	       (uint64_t)st->zero_pages, skipped, (uint64_t)st->bytes,
	       (uint64_t)st->rounds, (uint64_t)st->device_state_bytes);
	printf("  setup %" PRIu64 " ms, total %" PRIu64 " ms, downtime %" PRIu64
	       " ms, last round %.1f MB/s, caps %#" PRIx64 ", wire version %u, %u channel%s\n",
	       (uint64_t)st->setup_ms, (uint64_t)st->total_ms,
	       (uint64_t)st->downtime_ms, mbs(st->throughput), (uint64_t)st->caps,
	       st->wire_version, st->channels, st->channels == 1 ? "" : "s");
	printf("  time: scan %" PRIu64 " ms, keys wait %" PRIu64 " ms, writes wait %"
	       PRIu64 " ms, register %" PRIu64 " ms, zero %" PRIu64 " ms\n",
	       (uint64_t)st->scan_ms, (uint64_t)st->keys_wait_ms,
	       (uint64_t)st->writes_wait_ms, (uint64_t)st->register_ms,
	       (uint64_t)st->zero_ms);
	/* The guest's stop is the source's figure; the fetches the destination's. */
	if (o->source && (st->postcopy_owed || st->postcopy_downtime_us))
		printf("  post-copy: %" PRIu64 " pages owed, guest stopped %.1f ms,"
		       " %" PRIu64 " ms from the switch to the last page\n",
		       (uint64_t)st->postcopy_owed, st->postcopy_downtime_us / 1000.0,
		       (uint64_t)st->postcopy_ms);
	else if (st->postcopy_owed)
		printf("  post-copy: %" PRIu64 " pages owed, %" PRIu64 " ms from the switch"
		       " to the last page; %" PRIu64 " faults fetched %" PRIu64 " pages,"
		       " the sweep %" PRIu64 ", %" PRIu64 " fetched twice; fault service"
		       " p50 %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64 " us\n",
		       (uint64_t)st->postcopy_owed, (uint64_t)st->postcopy_ms,
		       (uint64_t)st->postcopy_faults, (uint64_t)st->postcopy_fault_pages,
		       (uint64_t)st->postcopy_sweep_pages,
		       (uint64_t)st->postcopy_fetched_twice, (uint64_t)st->fault_us_p50,
		       (uint64_t)st->fault_us_p99, (uint64_t)st->fault_us_max);
	for (i = 0; i < nrs; i++)
		printf("  round %" PRIu64 ": %" PRIu64 " dirty, %" PRIu64 " pages, %"
		       PRIu64 " zero, %.1f MB/s (wall %.1f MB/s)\n",
		       rs[i].round, rs[i].pages_dirty, rs[i].pages,
		       rs[i].zero_pages, mbs(rs[i].throughput),
		       rs[i].wall_us ? rs[i].bytes / (double)rs[i].wall_us : 0.0);
}

static void print_json(const struct vmm_opts *o, const struct rdmamig_stats *st,
		       const struct round_stat *rs, unsigned int nrs,
		       const char *extra)
{
	unsigned int i;

	printf("{\"ok\":true,\"role\":\"%s\",\"state\":\"%s\",\"caps\":%" PRIu64
	       ",\"wire_version\":%u,\"channels\":%u,\"pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64
	       ",\"bytes\":%" PRIu64 ",\"rounds\":%" PRIu64
	       ",\"device_state_bytes\":%" PRIu64 ",\"chunks_registered\":%" PRIu64
	       ",\"chunks_unregistered\":%" PRIu64 ",\"setup_ms\":%" PRIu64
	       ",\"total_ms\":%" PRIu64 ",\"downtime_ms\":%" PRIu64
	       ",\"throughput\":%" PRIu64 ",\"throughput_mbs\":%.2f"
	       ",\"scan_ms\":%" PRIu64 ",\"keys_wait_ms\":%" PRIu64
	       ",\"writes_wait_ms\":%" PRIu64 ",\"register_ms\":%" PRIu64
	       ",\"zero_ms\":%" PRIu64 ",\"zero_skipped\":%" PRIu64,
	       role_name(o), state_name(st->state), (uint64_t)st->caps,
	       st->wire_version, st->channels, (uint64_t)st->pages, (uint64_t)st->zero_pages,
	       (uint64_t)st->bytes, (uint64_t)st->rounds,
	       (uint64_t)st->device_state_bytes, (uint64_t)st->chunks_registered,
	       (uint64_t)st->chunks_unregistered, (uint64_t)st->setup_ms,
	       (uint64_t)st->total_ms, (uint64_t)st->downtime_ms,
	       (uint64_t)st->throughput, mbs(st->throughput),
	       (uint64_t)st->scan_ms, (uint64_t)st->keys_wait_ms,
	       (uint64_t)st->writes_wait_ms, (uint64_t)st->register_ms,
	       (uint64_t)st->zero_ms, (uint64_t)st->zero_skipped);
	printf(",\"postcopy_owed\":%" PRIu64 ",\"postcopy_ms\":%" PRIu64
	       ",\"postcopy_faults\":%" PRIu64 ",\"postcopy_fault_pages\":%" PRIu64
	       ",\"postcopy_sweep_pages\":%" PRIu64 ",\"postcopy_fetched_twice\":%" PRIu64
	       ",\"fault_us_p50\":%" PRIu64 ",\"fault_us_p99\":%" PRIu64
	       ",\"fault_us_max\":%" PRIu64 ",\"postcopy_downtime_us\":%" PRIu64,
	       (uint64_t)st->postcopy_owed, (uint64_t)st->postcopy_ms,
	       (uint64_t)st->postcopy_faults, (uint64_t)st->postcopy_fault_pages,
	       (uint64_t)st->postcopy_sweep_pages, (uint64_t)st->postcopy_fetched_twice,
	       (uint64_t)st->fault_us_p50, (uint64_t)st->fault_us_p99,
	       (uint64_t)st->fault_us_max, (uint64_t)st->postcopy_downtime_us);
	printf(",\"round_stats\":[");
	for (i = 0; i < nrs; i++)
		printf("%s{\"round\":%" PRIu64 ",\"pages_dirty\":%" PRIu64
		       ",\"pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64
		       ",\"bytes\":%" PRIu64 ",\"throughput\":%" PRIu64
		       ",\"wall_us\":%" PRIu64 "}", i ? "," : "", rs[i].round,
		       rs[i].pages_dirty, rs[i].pages, rs[i].zero_pages,
		       rs[i].bytes, rs[i].throughput, rs[i].wall_us);
	printf("]%s%s}\n", extra && *extra ? "," : "", extra ? extra : "");
}

/*
 * One summary, from RDMAMIG_IOC_GET_STATS: the kernel's view of the
 * session (the VMM adds what only it knows in rs and extra_json).
 * Throughput is in bytes/s; "MB" is 10^6 bytes.
 */
void print_summary(const struct vmm_opts *o, const struct rdmamig_stats *st,
		   const struct round_stat *rs, unsigned int nrs,
		   const char *extra_json)
{
	if (o->json)
		print_json(o, st, rs, nrs, extra_json);
	else
		print_human(o, st, rs, nrs);
	fflush(stdout);
}
