/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: another process's memory, for migrate and incoming.
 *
 * The blocks a migration moves (from /proc/PID/maps or given by hand),
 * the hash both ends print of them (from /proc/PID/mem), stopping and
 * continuing the process, and its soft-dirty bits (/proc/PID/pagemap and
 * /proc/PID/clear_refs).
 *
 * Functions returning int return an exit code (RM_EXIT_*) and have
 * printed an error message when it is not RM_EXIT_OK, unless said
 * otherwise.
 */
#ifndef RDMAMIGCTL_PROCMEM_H
#define RDMAMIGCTL_PROCMEM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/rdmamig.h>

#include "secret.h"

#define PM_PAGE_SIZE	4096ULL
#define PM_MIN_BLOCK	(1ULL << 20)	/* automatic selection: at least 1 MiB */
#define PM_MAX_BLOCKS	64		/* the module's limit per session */

struct pm_block {
	char name[RDMAMIG_BLOCK_NAME_MAX];
	uint64_t addr;
	uint64_t len;
	uint64_t npages;
	uint64_t *dirty;	/* migrate: one bit per page */
	uint64_t ndirty;	/* bits set in dirty */
};

struct pm_blocks {
	struct pm_block b[PM_MAX_BLOCKS];
	unsigned int n;
	uint64_t bytes;		/* sum of the lengths */
};

/*
 * --region ADDR+LEN: ADDR in any base strtoull() takes, LEN likewise with
 * an optional K, M or G (binary) suffix.  Returns false if malformed.
 */
bool pm_parse_region(const char *arg, uint64_t *addr, uint64_t *len);
bool pm_parse_uint(const char *s, uint64_t max, uint64_t *v);
/* Add a block named "anon@0x<addr>"; a usage error when it cannot be. */
int pm_add_region(struct pm_blocks *bl, const char *object, uint64_t addr,
		  uint64_t len);
/*
 * Without regions: every private, writable, anonymous mapping of @pid
 * (adjacent ones merged) of at least PM_MIN_BLOCK.
 */
int pm_select(struct pm_blocks *bl, pid_t pid, const char *what);
void pm_free(struct pm_blocks *bl);

/* 'R', 'S', 'T', ... of /proc/PID/stat, or 0 (errno set) when unreadable. */
char pm_state(pid_t pid);
/* Does /proc/PID exist? */
bool pm_exists(pid_t pid);
/*
 * SIGSTOP, then wait until every thread is stopped (state T or t).
 * Returns 0 or -errno (-ETIMEDOUT after @timeout_ms); prints nothing.
 */
int pm_stop(pid_t pid, unsigned int timeout_ms);
int pm_cont(pid_t pid);		/* 0 or -errno; prints nothing */

/* Auto-converge (throttle.c): the process stopped PCT % of the time. */
#define PM_THROTTLE_FIRST	20	/* percent, as QEMU's cpu-throttle-initial */
#define PM_THROTTLE_STEP	10	/* as its cpu-throttle-increment */
#define PM_THROTTLE_MAX		99
struct pm_throttle {
	pid_t target;
	pid_t child;		/* the duty cycle; 0: none */
};
/* Start throttling @target at @pct % (0: not at all).  0 or RM_EXIT_ERR. */
int pm_throttle_start(struct pm_throttle *t, pid_t target, unsigned int pct);
/* Stop it, leaving the process continued: 0 or -errno of the SIGCONT. */
int pm_throttle_stop(struct pm_throttle *t);

/* open(/proc/PID/@file, @flags): the fd, or -1 with a message. */
int pm_open(pid_t pid, const char *file, int flags, const char *what);
/* Write "4" to /proc/PID/clear_refs: clear the soft-dirty bits. */
int pm_clear_soft_dirty(pid_t pid);
/*
 * The soft-dirty bit (55) of each page of each block, from the pagemap
 * fd, into b->dirty and b->ndirty (allocated on first use); returns
 * RM_EXIT_OK and the total in *total.
 */
int pm_read_dirty(int pagemap, struct pm_blocks *bl, uint64_t *total);
/* Every page of every block dirty (the bulk round). */
int pm_set_all_dirty(struct pm_blocks *bl, uint64_t *total);

/* XXH64, streaming; the digest of the same bytes is the same however fed. */
struct pm_xxh64 {
	uint64_t v[4];
	uint64_t total;
	uint8_t mem[32];
	unsigned int memsize;
	uint64_t seed;
};

void pm_xxh64_init(struct pm_xxh64 *s, uint64_t seed);
void pm_xxh64_update(struct pm_xxh64 *s, const void *data, size_t len);
uint64_t pm_xxh64_digest(const struct pm_xxh64 *s);

/*
 * The checksum of a process's memory: XXH64 (seed 0) of the bytes of
 * every block, in block order, read from the /proc/PID/mem fd.
 */
int pm_checksum(int mem, const struct pm_blocks *bl, uint64_t *sum);

/*
 * SIGINT, SIGTERM and SIGHUP set pm_interrupted (to the signal) instead
 * of ending the program, so that it can put the process back in order;
 * a blocking request is cut short by the signal.
 */
extern volatile sig_atomic_t pm_interrupted;
void pm_catch_signals(void);
/* RM_EXIT_ERR once interrupted (saying so, the first time), else RM_EXIT_OK. */
int pm_check_interrupted(const char *what);

/* Microseconds of CLOCK_MONOTONIC. */
uint64_t pm_now_us(void);
/* Microseconds of CLOCK_REALTIME: to compare with another program's. */
uint64_t pm_realtime_us(void);

/* ---- Sessions over a process's memory (netlink) ---------------------- */

struct rm;

/* The usage error for what getopt_long() returned (':' or '?'). */
int pm_bad_option(const char *object, int c, char **argv);


/* "rdma:HOST:PORT" ("rdma:[V6ADDR]:PORT"); false if malformed. */
bool pm_parse_target(const char *arg, char *host, size_t hostlen,
		     uint16_t *port);

/* Optional param attrs of NEW_SESSION, and the secret. */
struct pm_params {
	bool has_downtime_limit, has_max_rounds, has_max_bandwidth, has_caps;
	bool has_channels, has_keepalive;
	bool no_auth;			/* --no-auth: AUTH off */
	const char *secret_file;	/* --secret-file */
	struct secret secret;		/* len 0: none */
	uint64_t caps;			/* RDMAMIG_CAP_*: wanted or allowed */
	uint32_t downtime_limit_ms;
	uint32_t max_rounds;
	uint64_t max_bandwidth;		/* bytes/s, 0: no limit */
	uint32_t channels;		/* offered or allowed; the kernel checks */
	uint32_t keepalive_ms;		/* 0: off; the kernel checks */
};

/*
 * After the options: read --secret-file (or $RDMAMIG_SECRET_FILE) into
 * @p->secret, unless --no-auth.  Return: RM_EXIT_OK or an exit status
 * after saying what is wrong.
 */
int pm_load_secret(struct pm_params *p, const char *object);

/* What GET_SESSION says about a session. */
struct pm_session {
	uint32_t state;			/* enum rdmamig_state */
	int32_t error;
	char reason[RDMAMIG_REASON_MAX];
	char peer[64];
	uint64_t caps;			/* negotiated */
	uint64_t st[RDMAMIG_STAT_MAX + 1];	/* RDMAMIG_STAT_* */
	uint32_t downtime_limit_ms;	/* the session's params */
	uint32_t max_rounds;
	uint64_t max_bandwidth;
};

/*
 * NEW_SESSION over @pid's memory (@mem: its /proc/PID/mem, read-write)
 * with @bl's blocks; the session belongs to rm->nl's socket.
 */
int pm_session_new(struct rm *rm, pid_t pid, int mem, uint32_t role,
		   const struct pm_blocks *bl, const struct pm_params *p,
		   uint32_t *id);
int pm_session_get(struct rm *rm, uint32_t id, struct pm_session *s);
/* @cmd with SESSION_ID only (END_ROUND, COMPLETE, CANCEL_SESSION, ...). */
int pm_session_cmd(struct rm *rm, uint32_t id, uint8_t cmd, const char *what);
const char *pm_state_name(uint32_t state);

#endif /* RDMAMIGCTL_PROCMEM_H */
