/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl protect: the epochs of a checkpointing primary (protect.c),
 * run by migrate.c once the first full copy (the bulk round) is placed.
 */
#ifndef RDMAMIGCTL_PROTECT_H
#define RDMAMIGCTL_PROTECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/rdmamig.h>

#include "netbuf.h"
#include "nl.h"
#include "procmem.h"

#define PROT_DELAY_MS		100	/* --mc-delay: the seed's default */
#define PROT_DELAY_MIN_MS	10

/* One epoch, as the primary saw it. */
struct prot_epoch {
	uint64_t epoch;
	uint64_t pages;		/* in the snapshot */
	uint64_t pause_us;	/* the process stopped: SIGSTOP to SIGCONT */
	uint64_t snapshot_us;	/* of which the module's copy */
	uint64_t wait_us;	/* of which waiting for the previous epoch */
	uint64_t checksum;	/* --checksum: of the memory at the epoch */
	uint64_t t_us;		/* when it began (CLOCK_MONOTONIC) */
	uint64_t ack_us;	/* from the snapshot to the backup's ack; 0: unknown */
};

struct prot {
	/* In. */
	struct rm *rm;
	uint32_t id;		/* the session, CONNECTed, bulk round placed */
	pid_t pid;
	struct pm_blocks *bl;
	int pagemap, mem;
	unsigned int delay_ms;	/* --mc-delay */
	uint64_t max_epochs;	/* --epochs; 0: until interrupted */
	bool checksum;		/* --checksum: each epoch's, for the tests */
	const char *net_buffer;	/* --net-buffer IFACE: output commit; NULL: none */
	/* Out. */
	struct netbuf nb;	/* the plug on net_buffer, while protecting */
	struct rm_nl events;	/* the acknowledgements (EVENT_MC) */
	struct prot_epoch *ep;
	unsigned int nep;
	bool lost;		/* the backup is gone: the process runs unprotected */
	bool exited;		/* the process exited: protection ended */
	char reason[RDMAMIG_REASON_MAX];
};

int protect_help(void);

/*
 * Take an epoch every delay_ms until max_epochs, an interrupting signal,
 * the process's exit or the backup's loss; the process runs between
 * epochs and is running when this returns.  RM_EXIT_OK also when the
 * process exited (p->exited); RM_EXIT_ERR when the backup was lost
 * (p->lost, p->reason) or something else failed, said on stderr.
 */
int prot_run(struct prot *p);
/* The acknowledgements still on their way after COMPLETE, then close. */
void prot_drain_events(struct prot *p);
/*
 * --net-buffer: let the held packets out and remove the plug, once every
 * epoch is acknowledged (after COMPLETE) or the backup is lost.
 */
void prot_release_output(struct prot *p);
/* The epochs (JSON: an array) and the session's checkpointing figures. */
void prot_print_summary(const struct prot *p, const struct pm_session *s);
void prot_free(struct prot *p);

#endif /* RDMAMIGCTL_PROTECT_H */
