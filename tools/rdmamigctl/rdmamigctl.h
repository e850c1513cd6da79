/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: administration tool of rdmamig.
 *
 * Shared declarations: the exit codes, the state passed to every command,
 * the table-driven dispatcher and the objects' entry points.
 *
 * Adding an object: write OBJECT.c with an "int cmd_OBJECT(struct rm *rm)"
 * that dispatches its verbs through rm_dispatch(), declare it below and
 * add one line to the object table in main.c.
 */
#ifndef RDMAMIGCTL_H
#define RDMAMIGCTL_H

#include <stdbool.h>

#include "nl.h"

/* Exit codes; documented in --help and in rdmamigctl(8). */
enum {
	RM_EXIT_OK	= 0,	/* success */
	RM_EXIT_ERR	= 1,	/* the kernel or the operation failed */
	RM_EXIT_USAGE	= 2,	/* bad command line */
	RM_EXIT_NOMOD	= 3,	/* the rdmamig module is not loaded */
};

/* State of one invocation. */
struct rm {
	int argc;		/* words left on the command line ... */
	char **argv;		/* ... argv[0] is the current one */
	bool json;		/* -j: print JSON */
	bool pretty;		/* -p: indent JSON */
	struct rm_nl nl;	/* opened on demand by rm_connect() */
};

/*
 * One entry of a dispatch table (objects, or the verbs of an object).
 * Tables end with an entry whose name is NULL.  For verbs, the first
 * entry is what runs when no verb is given.
 */
struct rm_cmd {
	const char *name;
	int (*fn)(struct rm *rm);
	const char *summary;	/* one line for "rdmamigctl help"; objects */
};

/* Words of the command line. */
static inline const char *rm_arg(const struct rm *rm)
{
	return rm->argc > 0 ? rm->argv[0] : NULL;
}

static inline void rm_shift(struct rm *rm)
{
	if (rm->argc > 0) {
		rm->argc--;
		rm->argv++;
	}
}

const struct rm_cmd *rm_lookup(const struct rm_cmd *cmds, const char *word,
			       int *nmatch);
int rm_dispatch(struct rm *rm, const char *object, const struct rm_cmd *cmds);
int rm_no_more_args(const struct rm *rm, const char *object);
int rm_connect(struct rm *rm);

/* Messages on stderr, prefixed with "rdmamigctl: ". */
void rm_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rm_usage_err(const char *object, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

extern const char rm_tool_version[];

/* Objects. */
int cmd_dev(struct rm *rm);
int cmd_version(struct rm *rm);
int cmd_session(struct rm *rm);
int cmd_capability(struct rm *rm);
int cmd_param(struct rm *rm);
int cmd_monitor(struct rm *rm);
int cmd_migrate(struct rm *rm);
int cmd_incoming(struct rm *rm);
int cmd_protect(struct rm *rm);
int cmd_standby(struct rm *rm);

#endif /* RDMAMIGCTL_H */
