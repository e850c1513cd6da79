/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamig-vmm: an example VMM for the /dev/rdmamig API.
 *
 * The "guest" is a set of anonymous memory blocks filled with
 * pseudo-random data; the "devices" are pseudo-random device-state
 * records.  The source migrates both to the destination, which checks
 * that every page and every record arrived intact.
 */
#ifndef RDMAMIG_VMM_H
#define RDMAMIG_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/rdmamig.h>

/* ---- options (main.c) ---------------------------------------------- */

/* Where the source's zero pages are (--zero-layout); see ram_fill(). */
enum zero_layout {
	ZERO_HOLES,			/* runs of 1..15 pages, written as zeros */
	ZERO_REGIONS,			/* 2 MiB regions never written */
};

struct vmm_opts {
	bool source;			/* source or dest subcommand */
	char host[RDMAMIG_HOST_MAX];	/* --connect / --listen HOST */
	uint16_t port;			/* ... :PORT */
	const char *port_file;		/* dest: --port-file */
	unsigned int nblocks;		/* --blocks */
	uint64_t size_mib;		/* --size */
	unsigned int zero_pct;		/* source: --zero-holes */
	enum zero_layout zero_layout;	/* source: --zero-layout */
	bool prefill;			/* dest: --prefill (tests) */
	bool memfd;			/* --memfd: shared memory, two mappings */
	unsigned int rounds;		/* source: --rounds after the bulk one */
	unsigned int redirty_pct;	/* source: --redirty */
	bool pin_all;			/* --pin-all */
	bool pull;			/* --pull */
	uint64_t max_bandwidth;		/* source: --max-bandwidth (0: none) */
	uint64_t max_registered;	/* --max-registered (0: default) */
	uint64_t keepalive_ms;		/* --keepalive (0: off) */
	unsigned int channels;		/* --channels, passed as given */
	bool channels_set;
	uint64_t seed;			/* source: --seed */
	unsigned int timeout_s;		/* connect/accept/idle timeout */
	unsigned int retry_s;		/* source: --retry on ECONNREFUSED */
	bool json;			/* --json */
	const char *secret_file;	/* --secret-file (NULL: $RDMAMIG_SECRET_FILE) */
	bool no_auth;			/* --no-auth */
	const char *stop_at;		/* source: --stop-at POINT (tests) */
	bool postcopy;			/* --postcopy: want (source) / allow (dest) */
	unsigned int postcopy_rounds;	/* source: pre-copy rounds before the switch */
	bool postcopy_auto;		/* source: --postcopy=auto: when rounds stop
					   shrinking, postcopy_rounds at most */
	uint64_t guest_writes;		/* dest: --guest-writes, during post-copy */
	uint64_t fault_buf;		/* dest: --fetch-window FAULT (bytes) */
	uint64_t sweep_buf;		/* dest: --fetch-window ...,SWEEP (bytes) */
	unsigned int resume_wait_s;	/* --resume-wait: post-copy resume (0: off) */
	const char *timeline;		/* dest: --timeline FILE (post-copy) */
	unsigned int sweep_threads;	/* dest: --sweep-threads (post-copy) */
	unsigned int sweep_nice;	/* dest: --sweep-nice (post-copy) */
	bool mc;			/* --mc: micro-checkpointing (mc.c) */
	unsigned int mc_delay_ms;	/* source: --mc-delay */
	unsigned int mc_epochs;		/* source: --mc-epochs */
	uint64_t mc_rate;		/* --mc-rate, pages/s */
	unsigned int mc_run_ms;		/* --mc-run-ms: the guest after failover
					   or after losing the backup */
	bool mc_failover;		/* dest: --mc-failover (default) */
	unsigned int mc_exit_after;	/* source: --mc-exit-after (tests) */
	bool mc_bad_calls;		/* source: --mc-bad-calls (tests) */
	unsigned int mc_cancel_after;	/* dest: --mc-cancel-after (tests) */
};

/* ---- guest RAM (ram.c) ---------------------------------------------- */

/*
 * Blocks start on a 2 MiB boundary, the size of a huge page (x86-64,
 * arm64 with 4 KiB pages): a 2 MiB region of a block is then one PMD, which
 * transparent huge pages can back as a whole, as in a VMM's guest RAM.
 */
#define RAM_ALIGN	(2ULL << 20)

struct ram_block {
	char name[RDMAMIG_BLOCK_NAME_MAX];
	uint8_t *mem;			/* registered with the module (ADD_BLOCK),
					   RAM_ALIGN-aligned */
	/*
	 * What the guest touches: @mem itself (anonymous memory), or with
	 * --memfd a second mapping of the same memfd, which post-copy
	 * registers for MINOR faults while the module reads into @mem.
	 */
	uint8_t *view;
	uint64_t npages;
	uint32_t index;			/* from RDMAMIG_IOC_ADD_BLOCK */
	uint64_t *dirty;		/* source: dirty bitmap, 1 bit a page */
	uint64_t *hash;			/* source: current hash of each page */
};

struct guest_ram {
	unsigned int nblocks;
	struct ram_block *blocks;
	uint64_t total_pages;
	uint64_t seed;
};

struct rng {
	uint64_t s;
};

extern size_t page_size;

uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n);
void rng_fill(struct rng *r, void *buf, size_t len);

uint64_t hash64(const void *buf, size_t len, uint64_t seed);
uint64_t page_hash(const struct ram_block *b, uint64_t page);
uint64_t page_hash_of(const struct ram_block *b, uint64_t page, const void *data);

int ram_alloc(struct guest_ram *ram, unsigned int nblocks, uint64_t size_mib,
	      bool track, bool memfd);
void ram_free(struct guest_ram *ram);
int ram_fill(struct guest_ram *ram, struct rng *r, unsigned int zero_pct,
	     enum zero_layout layout);
void ram_prefill(struct guest_ram *ram);
uint64_t ram_redirty(struct guest_ram *ram, struct rng *r,
		     unsigned int redirty_pct, unsigned int zero_pct);
uint64_t ram_dirty_count(const struct ram_block *b);
void ram_clear_dirty(struct guest_ram *ram);

static inline bool bit_test(const uint64_t *map, uint64_t i)
{
	return map[i / 64] & (1ULL << (i % 64));
}

static inline void bit_set(uint64_t *map, uint64_t i)
{
	map[i / 64] |= 1ULL << (i % 64);
}

/* ---- device-state records (devstate.c) ------------------------------ */

#define DS_MAGIC	0x53564d52u	/* "RMVS" */
#define DS_ROUND	1		/* pseudo-random state after a round */
#define DS_HASHES	2		/* final: a hash of every page */

/* Each record is this header followed by 'length' bytes of payload. */
struct ds_header {
	uint32_t magic;
	uint32_t type;			/* DS_ROUND or DS_HASHES */
	uint64_t round;			/* round the record follows */
	uint64_t length;		/* payload bytes */
	uint64_t checksum;		/* hash64() of the payload */
};

/* Destination side: reassembles and checks the stream. */
struct ds_parser {
	uint8_t *buf;
	size_t len, cap;
	uint64_t next_round;		/* round the next DS_ROUND must carry */
	uint64_t records;
	uint64_t bytes;
	uint64_t *hashes;		/* payload of the DS_HASHES record */
	uint64_t nhashes;
	bool done;			/* DS_HASHES seen */
	char error[160];		/* first problem found */
};

int ds_write_round(int fd, struct rng *r, uint64_t round);
int ds_write_hashes(int fd, const struct guest_ram *ram, uint64_t round);
void ds_parser_init(struct ds_parser *p);
void ds_parser_free(struct ds_parser *p);
int ds_feed(struct ds_parser *p, const void *data, size_t len);
int ds_finish(struct ds_parser *p, const struct guest_ram *ram);

/* ---- destination post-copy (postcopy.c) ------------------------------ */

struct postcopy;

struct postcopy *postcopy_prepare(const struct vmm_opts *o);
int postcopy_start(struct postcopy *pc, int fd, struct guest_ram *ram,
		   const uint64_t *hashes, uint64_t event_pages);
void postcopy_set_completed(struct postcopy *pc);
void postcopy_resumed(struct postcopy *pc, int fd, uint64_t event_pages);
void postcopy_detach(struct postcopy *pc);
uint64_t postcopy_missing(const struct postcopy *pc, uint64_t *owed);
int postcopy_finish(struct postcopy *pc, bool failed);
bool postcopy_started(const struct postcopy *pc);
const uint64_t *postcopy_expected(const struct postcopy *pc);
const char *postcopy_problem(const struct postcopy *pc);
void postcopy_report(const struct postcopy *pc, bool json, char *out, size_t size);
int postcopy_write_timeline(const struct postcopy *pc, const char *path);
void postcopy_free(struct postcopy *pc);

/* ---- session helpers (session.c) ------------------------------------ */

struct round_stat {
	uint64_t round;
	uint64_t pages_dirty;		/* pages the VMM put in the bitmaps */
	uint64_t pages, zero_pages, bytes;	/* from GET_STATS deltas */
	uint64_t throughput;		/* stats.throughput after END_ROUND */
	uint64_t wall_us;		/* first SEND_ROUND to END_ROUND */
};

int session_open(const struct vmm_opts *o, struct guest_ram *ram);
int session_stats(int fd, struct rdmamig_stats *st);
void session_fail(int fd, const struct vmm_opts *o, const char *op, int err);
void print_summary(const struct vmm_opts *o, const struct rdmamig_stats *st,
		   const struct round_stat *rs, unsigned int nrs,
		   const char *extra_json);
uint64_t now_us(void);
void stop_point(const struct vmm_opts *o, const char *point);
int write_all(int fd, const void *buf, size_t len);
void json_string(char *out, size_t size, const char *s);

/* ---- the two roles --------------------------------------------------- */

int run_source(const struct vmm_opts *o);
int run_dest(const struct vmm_opts *o);
int source_connect(const struct vmm_opts *o, struct guest_ram *ram);
int source_round(int fd, const struct vmm_opts *o, struct guest_ram *ram,
		 uint64_t round, bool final, struct round_stat *rs);
int dest_accept(int fd, const struct vmm_opts *o, uint16_t *port,
		unsigned int timeout_s);
void page_write(struct ram_block *b, uint64_t page, struct rng *r, bool zero);

/* ---- micro-checkpointing (mc.c) --------------------------------------- */

int run_source_mc(const struct vmm_opts *o);
int run_dest_mc(const struct vmm_opts *o);

/* Exit codes. */
#define EXIT_MIGRATION	1	/* an ioctl or the session failed */
#define EXIT_USAGE	2
#define EXIT_VERIFY	3	/* destination: data or records differ */

#endif
