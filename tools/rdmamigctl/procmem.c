// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: another process's memory, for migrate and incoming (see
 * procmem.h).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procmem.h"
#include "rdmamigctl.h"

#define PM_SOFT_DIRTY	(1ULL << 55)	/* of a pagemap entry */
#define PM_IO_BYTES	(1U << 20)	/* read in pieces of 1 MiB */

volatile sig_atomic_t pm_interrupted;

static void pm_on_signal(int sig)
{
	pm_interrupted = sig;
}

void pm_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = pm_on_signal };

	/* No SA_RESTART: a request waiting in the kernel returns. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int pm_check_interrupted(const char *what)
{
	static bool said;

	if (!pm_interrupted)
		return RM_EXIT_OK;
	if (!said)
		rm_err("%s: interrupted by signal %d", what, (int)pm_interrupted);
	said = true;
	return RM_EXIT_ERR;
}

/* A decimal number up to @max, nothing else (no sign, no suffix). */
bool pm_parse_uint(const char *s, uint64_t max, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x > max)
		return false;
	*v = x;
	return true;
}

uint64_t pm_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t pm_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Blocks ------------------------------------------------------------ */

static bool parse_size(const char *s, uint64_t *val)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return false;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*val = (uint64_t)v << shift;
	return true;
}

bool pm_parse_region(const char *arg, uint64_t *addr, uint64_t *len)
{
	char buf[64], *plus, *end;

	if (strlen(arg) >= sizeof(buf))
		return false;
	strcpy(buf, arg);
	plus = strchr(buf, '+');
	if (!plus || plus == buf)
		return false;
	*plus = '\0';
	if (!isdigit((unsigned char)buf[0]))
		return false;
	errno = 0;
	*addr = strtoull(buf, &end, 0);
	if (errno || *end)
		return false;
	return parse_size(plus + 1, len);
}

int pm_add_region(struct pm_blocks *bl, const char *object, uint64_t addr,
		  uint64_t len)
{
	struct pm_block *b;
	unsigned int i;

	if (!len || addr % PM_PAGE_SIZE || len % PM_PAGE_SIZE || addr + len < addr)
		return rm_usage_err(object, "region %#" PRIx64 "+%#" PRIx64
				    " is empty or not page-aligned", addr, len);
	for (i = 0; i < bl->n; i++)
		if (addr < bl->b[i].addr + bl->b[i].len && bl->b[i].addr < addr + len)
			return rm_usage_err(object, "region %#" PRIx64 "+%#" PRIx64
					    " overlaps %s", addr, len, bl->b[i].name);
	if (bl->n == PM_MAX_BLOCKS)
		return rm_usage_err(object, "more than %d regions", PM_MAX_BLOCKS);
	b = &bl->b[bl->n++];
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "anon@%#" PRIx64, addr);
	b->addr = addr;
	b->len = len;
	b->npages = len / PM_PAGE_SIZE;
	bl->bytes += len;
	return RM_EXIT_OK;
}

/* A mapping migrate moves: private, read-write, anonymous. */
static bool pm_candidate(const char *perms, unsigned long long inode,
			 const char *path)
{
	if (strncmp(perms, "rw", 2) || perms[3] != 'p' || inode)
		return false;
	/* No file; named anonymous memory (prctl PR_SET_VMA) is anonymous. */
	return !*path || !strncmp(path, "[anon:", 6);
}

static int pm_add_run(struct pm_blocks *bl, pid_t pid, uint64_t start,
		      uint64_t end)
{
	if (end - start < PM_MIN_BLOCK)
		return RM_EXIT_OK;
	if (bl->n == PM_MAX_BLOCKS) {
		rm_err("pid %d has more than %d anonymous mappings of 1 MiB or more: "
		       "name the memory to migrate with --region", (int)pid,
		       PM_MAX_BLOCKS);
		return RM_EXIT_ERR;
	}
	return pm_add_region(bl, NULL, start, end - start);
}

int pm_select(struct pm_blocks *bl, pid_t pid, const char *what)
{
	uint64_t run_start = 0, run_end = 0;
	unsigned long long start, end, off, inode;
	char path[64], perms[8], *line = NULL;
	size_t cap = 0;
	int pos, ret = RM_EXIT_OK;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		rm_err("%s: cannot read the memory map of pid %d: %s", what,
		       (int)pid, errno == ENOENT ? "no such process" : strerror(errno));
		return RM_EXIT_ERR;
	}
	while (getline(&line, &cap, f) > 0) {
		char *p;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%llx-%llx %7s %llx %*x:%*x %llu %n", &start, &end,
			   perms, &off, &inode, &pos) < 5)
			continue;
		p = line + pos;
		if (!pm_candidate(perms, inode, p))
			continue;
		if (run_end && start == run_end) {
			run_end = end;		/* adjacent: one block */
			continue;
		}
		if (run_end) {
			ret = pm_add_run(bl, pid, run_start, run_end);
			if (ret)
				break;
		}
		run_start = start;
		run_end = end;
	}
	if (!ret && run_end)
		ret = pm_add_run(bl, pid, run_start, run_end);
	if (!ret && ferror(f)) {
		rm_err("%s: cannot read the memory map of pid %d: %s", what,
		       (int)pid, strerror(errno));
		ret = RM_EXIT_ERR;
	}
	free(line);
	fclose(f);
	if (!ret && !bl->n) {
		rm_err("%s: pid %d has no private writable anonymous mapping of 1 MiB "
		       "or more: name the memory to migrate with --region", what,
		       (int)pid);
		ret = RM_EXIT_ERR;
	}
	return ret;
}

void pm_free(struct pm_blocks *bl)
{
	unsigned int i;

	for (i = 0; i < bl->n; i++) {
		free(bl->b[i].dirty);
		bl->b[i].dirty = NULL;
	}
}

/* ---- The process ------------------------------------------------------ */

static char pm_stat_state(const char *path)
{
	char buf[512], *p;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "PID (COMM) S ...": COMM may hold anything, the last ')' ends it. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2]) {
		errno = EINVAL;
		return 0;
	}
	return p[2];
}

char pm_state(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return pm_stat_state(path);
}

bool pm_exists(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

static bool pm_is_stopped(char s)
{
	return s == 'T' || s == 't';
}

/* 1: every thread stopped; 0: not yet; -errno: cannot tell. */
static int pm_all_stopped(pid_t pid)
{
	char path[64 + 256];
	struct dirent *de;
	int ret = 1;
	DIR *d;
	char s;

	s = pm_state(pid);
	if (!s)
		return -(errno ?: ESRCH);
	if (s == 'Z' || s == 'X')
		return -ESRCH;
	if (!pm_is_stopped(s))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && ret == 1) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
			 de->d_name);
		s = pm_stat_state(path);
		/* A thread that exited meanwhile does not count. */
		if (s && !pm_is_stopped(s) && s != 'Z' && s != 'X')
			ret = 0;
	}
	closedir(d);
	return ret;
}

int pm_stop(pid_t pid, unsigned int timeout_ms)
{
	uint64_t deadline = pm_now_us() + (uint64_t)timeout_ms * 1000;
	useconds_t nap = 50;
	int ret;

	if (kill(pid, SIGSTOP))
		return -errno;
	for (;;) {
		ret = pm_all_stopped(pid);
		if (ret)
			return ret < 0 ? ret : 0;
		if (pm_now_us() >= deadline)
			return -ETIMEDOUT;
		usleep(nap);
		if (nap < 2000)
			nap *= 2;
	}
}

int pm_cont(pid_t pid)
{
	return kill(pid, SIGCONT) ? -errno : 0;
}

int pm_open(pid_t pid, const char *file, int flags, const char *what)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		rm_err("%s: cannot open %s: %s", what, path,
		       errno == ENOENT ? "no such process" : strerror(errno));
	return fd;
}

int pm_clear_soft_dirty(pid_t pid)
{
	char path[64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "4", 1) != 1)
		err = errno;
	if (fd >= 0)
		close(fd);
	if (err) {
		rm_err("cannot clear the soft-dirty bits of pid %d (%s): %s",
		       (int)pid, path, strerror(err));
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int pm_alloc_dirty(struct pm_block *b)
{
	size_t words = (b->npages + 63) / 64;

	if (!b->dirty) {
		b->dirty = calloc(words, sizeof(uint64_t));
		if (!b->dirty) {
			rm_err("out of memory for the dirty bitmap of %s", b->name);
			return RM_EXIT_ERR;
		}
	} else {
		memset(b->dirty, 0, words * sizeof(uint64_t));
	}
	b->ndirty = 0;
	return RM_EXIT_OK;
}

int pm_set_all_dirty(struct pm_blocks *bl, uint64_t *total)
{
	unsigned int i;
	uint64_t p;

	*total = 0;
	for (i = 0; i < bl->n; i++) {
		struct pm_block *b = &bl->b[i];

		if (pm_alloc_dirty(b))
			return RM_EXIT_ERR;
		for (p = 0; p < b->npages / 64; p++)
			b->dirty[p] = ~0ULL;
		if (b->npages % 64)
			b->dirty[p] = (1ULL << (b->npages % 64)) - 1;
		b->ndirty = b->npages;
		*total += b->npages;
	}
	return RM_EXIT_OK;
}

int pm_read_dirty(int pagemap, struct pm_blocks *bl, uint64_t *total)
{
	const size_t per_read = PM_IO_BYTES / sizeof(uint64_t);
	uint64_t *ent;
	unsigned int i;

	ent = malloc(PM_IO_BYTES);
	if (!ent) {
		rm_err("out of memory for the pagemap");
		return RM_EXIT_ERR;
	}
	*total = 0;
	for (i = 0; i < bl->n; i++) {
		struct pm_block *b = &bl->b[i];
		uint64_t p = 0, k;

		if (pm_alloc_dirty(b))
			goto fail;
		while (p < b->npages) {
			size_t want = b->npages - p < per_read ? b->npages - p : per_read;
			off_t off = (off_t)((b->addr / PM_PAGE_SIZE + p) * sizeof(uint64_t));
			ssize_t got = pread(pagemap, ent, want * sizeof(uint64_t), off);

			if (got <= 0 || got % sizeof(uint64_t)) {
				rm_err("cannot read the pagemap of %s: %s", b->name,
				       got < 0 ? strerror(errno) : "short read");
				goto fail;
			}
			for (k = 0; k < (uint64_t)got / sizeof(uint64_t); k++, p++) {
				if (ent[k] & PM_SOFT_DIRTY) {
					b->dirty[p / 64] |= 1ULL << (p % 64);
					b->ndirty++;
				}
			}
		}
		*total += b->ndirty;
	}
	free(ent);
	return RM_EXIT_OK;
fail:
	free(ent);
	return RM_EXIT_ERR;
}

/* ---- XXH64 ------------------------------------------------------------- */

#define XXH_P1	0x9E3779B185EBCA87ULL
#define XXH_P2	0xC2B2AE3D27D4EB4FULL
#define XXH_P3	0x165667B19E3779F9ULL
#define XXH_P4	0x85EBCA77C2B2AE63ULL
#define XXH_P5	0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t read64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static uint32_t read32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t xxh_round(uint64_t acc, uint64_t input)
{
	acc += input * XXH_P2;
	acc = rotl64(acc, 31);
	return acc * XXH_P1;
}

static uint64_t xxh_merge(uint64_t acc, uint64_t val)
{
	acc ^= xxh_round(0, val);
	return acc * XXH_P1 + XXH_P4;
}

void pm_xxh64_init(struct pm_xxh64 *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->v[0] = seed + XXH_P1 + XXH_P2;
	s->v[1] = seed + XXH_P2;
	s->v[2] = seed;
	s->v[3] = seed - XXH_P1;
}

static void xxh_stripe(struct pm_xxh64 *s, const uint8_t *p)
{
	s->v[0] = xxh_round(s->v[0], read64(p));
	s->v[1] = xxh_round(s->v[1], read64(p + 8));
	s->v[2] = xxh_round(s->v[2], read64(p + 16));
	s->v[3] = xxh_round(s->v[3], read64(p + 24));
}

void pm_xxh64_update(struct pm_xxh64 *s, const void *data, size_t len)
{
	const uint8_t *p = data, *end = p + len;

	s->total += len;
	if (s->memsize + len < 32) {
		memcpy(s->mem + s->memsize, p, len);
		s->memsize += len;
		return;
	}
	if (s->memsize) {
		size_t fill = 32 - s->memsize;

		memcpy(s->mem + s->memsize, p, fill);
		xxh_stripe(s, s->mem);
		p += fill;
		s->memsize = 0;
	}
	while (end - p >= 32) {
		xxh_stripe(s, p);
		p += 32;
	}
	if (p < end) {
		memcpy(s->mem, p, end - p);
		s->memsize = end - p;
	}
}

uint64_t pm_xxh64_digest(const struct pm_xxh64 *s)
{
	const uint8_t *p = s->mem, *end = p + s->memsize;
	uint64_t h;

	if (s->total >= 32) {
		h = rotl64(s->v[0], 1) + rotl64(s->v[1], 7) + rotl64(s->v[2], 12) +
		    rotl64(s->v[3], 18);
		h = xxh_merge(h, s->v[0]);
		h = xxh_merge(h, s->v[1]);
		h = xxh_merge(h, s->v[2]);
		h = xxh_merge(h, s->v[3]);
	} else {
		h = s->seed + XXH_P5;
	}
	h += s->total;
	while (end - p >= 8) {
		h ^= xxh_round(0, read64(p));
		h = rotl64(h, 27) * XXH_P1 + XXH_P4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)read32(p) * XXH_P1;
		h = rotl64(h, 23) * XXH_P2 + XXH_P3;
		p += 4;
	}
	while (p < end) {
		h ^= *p * XXH_P5;
		h = rotl64(h, 11) * XXH_P1;
		p++;
	}
	h ^= h >> 33;
	h *= XXH_P2;
	h ^= h >> 29;
	h *= XXH_P3;
	h ^= h >> 32;
	return h;
}

int pm_checksum(int mem, const struct pm_blocks *bl, uint64_t *sum)
{
	struct pm_xxh64 s;
	unsigned int i;
	uint8_t *buf;

	buf = malloc(PM_IO_BYTES);
	if (!buf) {
		rm_err("out of memory for the checksum");
		return RM_EXIT_ERR;
	}
	pm_xxh64_init(&s, 0);
	for (i = 0; i < bl->n; i++) {
		const struct pm_block *b = &bl->b[i];
		uint64_t off = 0;

		while (off < b->len) {
			size_t want = b->len - off < PM_IO_BYTES ? b->len - off : PM_IO_BYTES;
			ssize_t got = pread(mem, buf, want, (off_t)(b->addr + off));

			if (got <= 0) {
				rm_err("cannot read %s at offset %#" PRIx64 " for the checksum: %s",
				       b->name, off, got < 0 ? strerror(errno) : "end of memory");
				free(buf);
				return RM_EXIT_ERR;
			}
			pm_xxh64_update(&s, buf, got);
			off += got;
		}
	}
	free(buf);
	*sum = pm_xxh64_digest(&s);
	return RM_EXIT_OK;
}

/* ---- Sessions over a process's memory (netlink) ---------------------- */

int pm_bad_option(const char *object, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char opt[3] = "-?";

	if (optopt && strncmp(arg, "--", 2)) {
		opt[1] = (char)optopt;
		arg = opt;
	}
	if (c == ':')
		return rm_usage_err(object, "option '%s' needs a value", arg);
	return rm_usage_err(object, "invalid option '%s'", arg);
}

bool pm_parse_target(const char *arg, char *host, size_t hostlen,
		     uint16_t *port)
{
	const char *h, *colon, *hend;
	unsigned long v;
	char *end;

	if (strncmp(arg, "rdma:", 5))
		return false;
	h = arg + 5;
	if (*h == '[') {
		hend = strchr(++h, ']');
		if (!hend || hend[1] != ':')
			return false;
		colon = hend + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return false;
		hend = colon;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen || !isdigit((unsigned char)colon[1]))
		return false;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno || *end || v > 65535)
		return false;
	memcpy(host, h, hend - h);
	host[hend - h] = '\0';
	*port = v;
	return true;
}

const char *pm_state_name(uint32_t state)
{
	static const char *const names[] = {
		[RDMAMIG_STATE_NONE] = "none",
		[RDMAMIG_STATE_SETUP] = "setup",
		[RDMAMIG_STATE_CONNECTED] = "connected",
		[RDMAMIG_STATE_ACTIVE] = "active",
		[RDMAMIG_STATE_COMPLETED] = "completed",
		[RDMAMIG_STATE_FAILED] = "failed",
		[RDMAMIG_STATE_CANCELLED] = "cancelled",
		[RDMAMIG_STATE_POSTCOPY] = "postcopy",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "unknown";
}

/* Attribute values, checked for length (nl.c's policy does not know them). */
static bool pm_u32(const struct nlattr *a, uint32_t *v)
{
	if (!a || nla_len(a) < (int)sizeof(uint32_t))
		return false;
	*v = nla_get_u32((struct nlattr *)a);
	return true;
}

static bool pm_u64(const struct nlattr *a, uint64_t *v)
{
	if (!a || nla_len(a) < (int)sizeof(uint64_t))
		return false;
	*v = nla_get_u64((struct nlattr *)a);
	return true;
}

static void pm_str(const struct nlattr *a, char *buf, size_t len)
{
	size_t n;

	if (!a)
		return;
	n = strnlen(nla_data(a), nla_len(a));
	if (n >= len)
		n = len - 1;
	memcpy(buf, nla_data(a), n);
	buf[n] = '\0';
}

static int pm_new_reply(struct nlattr **tb, void *arg)
{
	uint32_t *id = arg;

	if (!pm_u32(tb[RDMAMIG_ATTR_SESSION_ID], id)) {
		rm_err("cannot create a session: no session id in the kernel's reply");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

int pm_load_secret(struct pm_params *p, const char *object)
{
	char err[512];

	if (p->no_auth && p->secret_file)
		return rm_usage_err(object, "--secret-file and --no-auth exclude each other");
	if (p->no_auth)
		return RM_EXIT_OK;
	if (secret_load(p->secret_file, &p->secret, err, sizeof(err)) < 0) {
		rm_err("%s: %s", object, err);
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

int pm_session_new(struct rm *rm, pid_t pid, int mem, uint32_t role,
		   const struct pm_blocks *bl, const struct pm_params *p,
		   uint32_t *id)
{
	struct nl_msg *msg;
	struct nlattr *nest;
	unsigned int i;

	/* 64 blocks do not fit the default page-sized message. */
	nlmsg_set_default_size(16384);
	msg = rm_nl_msg(&rm->nl, RDMAMIG_CMD_NEW_SESSION, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	if (nla_put_u32(msg, RDMAMIG_ATTR_TARGET_PID, pid) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_MEM_FD, mem) ||
	    nla_put_u32(msg, RDMAMIG_ATTR_ROLE, role) ||
	    (p && p->has_downtime_limit &&
	     nla_put_u32(msg, RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, p->downtime_limit_ms)) ||
	    (p && p->has_max_rounds &&
	     nla_put_u32(msg, RDMAMIG_ATTR_MAX_ROUNDS, p->max_rounds)) ||
	    (p && p->has_max_bandwidth &&
	     nla_put_u64(msg, RDMAMIG_ATTR_MAX_BANDWIDTH, p->max_bandwidth)) ||
	    (p && p->has_caps && nla_put_u64(msg, RDMAMIG_ATTR_CAPS, p->caps)) ||
	    (p && p->has_channels &&
	     nla_put_u32(msg, RDMAMIG_ATTR_CHANNELS, p->channels)) ||
	    (p && p->has_keepalive &&
	     nla_put_u32(msg, RDMAMIG_ATTR_KEEPALIVE_MS, p->keepalive_ms)) ||
	    (p && p->no_auth &&
	     nla_put_u32(msg, RDMAMIG_ATTR_AUTH, RDMAMIG_AUTH_OFF)) ||
	    (p && p->secret.len &&
	     nla_put(msg, RDMAMIG_ATTR_SECRET, p->secret.len, p->secret.key)))
		goto nomem;
	for (i = 0; i < bl->n; i++) {
		nest = nla_nest_start(msg, RDMAMIG_ATTR_BLOCK | NLA_F_NESTED);
		if (!nest ||
		    nla_put_string(msg, RDMAMIG_ATTR_BLOCK_NAME, bl->b[i].name) ||
		    nla_put_u64(msg, RDMAMIG_ATTR_BLOCK_ADDR, bl->b[i].addr) ||
		    nla_put_u64(msg, RDMAMIG_ATTR_BLOCK_LEN, bl->b[i].len))
			goto nomem;
		nla_nest_end(msg, nest);
	}
	*id = UINT32_MAX;
	return rm_nl_send(&rm->nl, msg, "cannot create a session", pm_new_reply, id);

nomem:
	nlmsg_free(msg);
	rm_err("cannot build the session request: too many blocks");
	return RM_EXIT_ERR;
}

static int pm_get_reply(struct nlattr **tb, void *arg)
{
	struct nlattr *st[RDMAMIG_STAT_MAX + 1], *pa[RDMAMIG_ATTR_MAX + 1];
	struct pm_session *s = arg;
	uint32_t v;
	int i;

	if (!pm_u32(tb[RDMAMIG_ATTR_STATE], &s->state)) {
		rm_err("cannot get the session: no state in the kernel's reply");
		return RM_EXIT_ERR;
	}
	if (pm_u32(tb[RDMAMIG_ATTR_ERROR], &v))
		s->error = (int32_t)v;
	pm_str(tb[RDMAMIG_ATTR_REASON], s->reason, sizeof(s->reason));
	pm_str(tb[RDMAMIG_ATTR_PEER_ADDR], s->peer, sizeof(s->peer));
	pm_u64(tb[RDMAMIG_ATTR_CAPS], &s->caps);
	if (tb[RDMAMIG_ATTR_STATS] &&
	    nla_parse_nested(st, RDMAMIG_STAT_MAX, tb[RDMAMIG_ATTR_STATS], NULL) == 0)
		for (i = RDMAMIG_STAT_BYTES; i <= RDMAMIG_STAT_MAX; i++)
			pm_u64(st[i], &s->st[i]);
	if (tb[RDMAMIG_ATTR_PARAMS] &&
	    nla_parse_nested(pa, RDMAMIG_ATTR_MAX, tb[RDMAMIG_ATTR_PARAMS], NULL) == 0) {
		pm_u32(pa[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS], &s->downtime_limit_ms);
		pm_u32(pa[RDMAMIG_ATTR_MAX_ROUNDS], &s->max_rounds);
		pm_u64(pa[RDMAMIG_ATTR_MAX_BANDWIDTH], &s->max_bandwidth);
	}
	return RM_EXIT_OK;
}

/* A request @cmd naming session @id; NULL (said) without memory. */
static struct nl_msg *pm_session_msg(struct rm *rm, uint8_t cmd, uint32_t id)
{
	struct nl_msg *msg;

	msg = rm_nl_msg(&rm->nl, cmd, NLM_F_ACK);
	if (msg && nla_put_u32(msg, RDMAMIG_ATTR_SESSION_ID, id)) {
		nlmsg_free(msg);
		rm_err("cannot build a netlink request: out of memory");
		msg = NULL;
	}
	return msg;
}

int pm_session_cmd(struct rm *rm, uint32_t id, uint8_t cmd, const char *what)
{
	struct nl_msg *msg = pm_session_msg(rm, cmd, id);

	if (!msg)
		return RM_EXIT_ERR;
	return rm_nl_send(&rm->nl, msg, what, NULL, NULL);
}

int pm_session_get(struct rm *rm, uint32_t id, struct pm_session *s)
{
	struct nl_msg *msg;

	memset(s, 0, sizeof(*s));
	s->state = UINT32_MAX;
	msg = pm_session_msg(rm, RDMAMIG_CMD_GET_SESSION, id);
	if (!msg)
		return RM_EXIT_ERR;
	if (rm_nl_send(&rm->nl, msg, "cannot get the session", pm_get_reply, s))
		return RM_EXIT_ERR;
	if (s->state == UINT32_MAX) {
		rm_err("cannot get the session: no reply from the kernel");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}
