// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: messages, and the table-driven dispatch of objects and verbs
 * (exact name, or else a unique prefix of one).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rdmamigctl.h"

static void rm_verr(const char *fmt, va_list ap)
{
	fputs("rdmamigctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void rm_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rm_verr(fmt, ap);
	va_end(ap);
}

static void rm_hint(const char *object)
{
	fprintf(stderr, "Try 'rdmamigctl %s%shelp'.\n",
		object ? object : "", object ? " " : "");
}

/* A usage error: the message, then where to get help.  Returns 2. */
int rm_usage_err(const char *object, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rm_verr(fmt, ap);
	va_end(ap);
	rm_hint(object);
	return RM_EXIT_USAGE;
}

/*
 * The entry of cmds named word, or else the only one word is a prefix
 * of.  *nmatch says how many entries matched (0: none, >1: ambiguous).
 */
const struct rm_cmd *rm_lookup(const struct rm_cmd *cmds, const char *word,
			       int *nmatch)
{
	const struct rm_cmd *c, *found = NULL;
	size_t len = strlen(word);

	*nmatch = 0;
	if (!len)
		return NULL;
	for (c = cmds; c->name; c++) {
		if (!strcmp(c->name, word)) {
			*nmatch = 1;
			return c;
		}
		if (!strncmp(c->name, word, len)) {
			found = c;
			(*nmatch)++;
		}
	}
	return *nmatch == 1 ? found : NULL;
}

static int rm_no_match(const char *object, const struct rm_cmd *cmds,
		       const char *word, int nmatch)
{
	const struct rm_cmd *c;
	const char *sep = "";

	if (nmatch == 0) {
		if (object)
			return rm_usage_err(object, "unknown %s command '%s'",
					    object, word);
		return rm_usage_err(NULL, "unknown object '%s'", word);
	}
	fprintf(stderr, "rdmamigctl: ambiguous %s%s '%s', could be:",
		object ? object : "object", object ? " command" : "", word);
	for (c = cmds; c->name; c++) {
		if (!strncmp(c->name, word, strlen(word))) {
			fprintf(stderr, "%s %s", sep, c->name);
			sep = ",";
		}
	}
	fputc('\n', stderr);
	rm_hint(object);
	return RM_EXIT_USAGE;
}

/*
 * Run the entry of cmds that the current word names, with the words after
 * it; without a word, the first entry.  object is the object whose verbs
 * cmds are, NULL for the table of objects.
 */
int rm_dispatch(struct rm *rm, const char *object, const struct rm_cmd *cmds)
{
	const struct rm_cmd *c;
	const char *word = rm_arg(rm);
	int nmatch;

	if (!word)
		return cmds[0].fn(rm);
	c = rm_lookup(cmds, word, &nmatch);
	if (!c)
		return rm_no_match(object, cmds, word, nmatch);
	rm_shift(rm);
	return c->fn(rm);
}

/* For commands that take no (more) arguments. */
int rm_no_more_args(const struct rm *rm, const char *object)
{
	if (rm->argc > 0)
		return rm_usage_err(object, "unexpected argument '%s'",
				    rm->argv[0]);
	return RM_EXIT_OK;
}

/* Open the netlink socket to the module, once. */
int rm_connect(struct rm *rm)
{
	if (rm->nl.sk)
		return RM_EXIT_OK;
	return rm_nl_open(&rm->nl);
}
