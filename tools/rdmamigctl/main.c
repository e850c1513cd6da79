// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: administration tool of rdmamig.
 *
 *	rdmamigctl [OPTIONS] OBJECT [COMMAND [ARGUMENTS]]
 *
 * The options, the table of objects and the dispatch to them.  Each
 * object lives in its own file and dispatches its own commands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "print.h"
#include "rdmamigctl.h"

static int cmd_help(struct rm *rm);

static const struct rm_cmd objects[] = {
	{ "dev",	cmd_dev,	"RDMA devices the rdmamig module sees" },
	{ "version",	cmd_version,
	  "versions of rdmamigctl, the module and the wire protocol" },
	{ "session",	cmd_session,	"list, show, tune and cancel migration sessions" },
	{ "capability",	cmd_capability,	"capabilities new sessions start with (pin-all)" },
	{ "param",	cmd_param,	"parameters new sessions start with (bandwidth, ...)" },
	{ "monitor",	cmd_monitor,	"print the sessions' events as they happen" },
	{ "migrate",	cmd_migrate,	"live-migrate a running process's memory to a twin" },
	{ "incoming",	cmd_incoming,	"receive a migrating process's memory into a twin" },
	{ "protect",	cmd_protect,
	  "checkpoint a running process to a standby twin, continuously" },
	{ "standby",	cmd_standby,
	  "keep a twin at the last checkpoint; run it if the primary is lost" },
	{ "help",	cmd_help,	"this help, or the help of OBJECT" },
	{ .name = NULL },
};

static void usage(void)
{
	const struct rm_cmd *c;

	fputs("Usage: rdmamigctl [OPTIONS] OBJECT [COMMAND [ARGUMENTS]]\n"
	      "       rdmamigctl OBJECT help\n"
	      "       rdmamigctl help [OBJECT]\n"
	      "\n"
	      "Administer rdmamig, the kernel module that live-migrates the memory\n"
	      "of a process or a virtual machine over RDMA.\n"
	      "\n"
	      "Objects:\n", stdout);
	for (c = objects; c->name; c++)
		printf("  %-10s %s\n", c->name, c->summary);
	fputs("\n"
	      "Options:\n"
	      "  -j, --json      print JSON instead of text\n"
	      "  -p, --pretty    print indented JSON (implies -j)\n"
	      "  -V, --version   print the version of rdmamigctl and exit\n"
	      "  -h, --help      print this help (with OBJECT, its help) and exit\n"
	      "\n"
	      "Objects and commands may be abbreviated to a unique prefix; without\n"
	      "a command, an object shows itself.\n"
	      "\n"
	      "Exit status: 0 success, 1 the kernel or the operation failed,\n"
	      "2 usage error, 3 the rdmamig module is not loaded.\n"
	      "\n"
	      "See rdmamigctl(8).\n", stdout);
}

/* help [OBJECT]: "help OBJECT" is "OBJECT help". */
static int cmd_help(struct rm *rm)
{
	static char help_word[] = "help";
	const struct rm_cmd *c;
	char *argv[2];
	int nmatch;

	if (!rm_arg(rm)) {
		usage();
		return RM_EXIT_OK;
	}
	c = rm_lookup(objects, rm_arg(rm), &nmatch);
	if (c && c->fn == cmd_help) {
		usage();
		return RM_EXIT_OK;
	}
	argv[0] = rm->argv[0];
	argv[1] = help_word;
	rm->argv = argv;
	rm->argc = 2;
	return rm_dispatch(rm, NULL, objects);
}

/* The option getopt_long() refused, as the user wrote it. */
static const char *bad_option(char **argv)
{
	static char opt[] = "-?";
	const char *arg = argv[optind - 1];

	if (optopt && strncmp(arg, "--", 2)) {
		opt[1] = (char)optopt;
		return opt;
	}
	return arg;
}

enum action { RUN, SHOW_VERSION, SHOW_HELP };

/*
 * The words getopt_long() may look at: all of them, or, when the object
 * parses options of its own (monitor, migrate, incoming, protect,
 * standby), those before
 * it: the object gets the rest as they are, -j and -p included.
 */
static int global_argc(int argc, char **argv)
{
	const struct rm_cmd *c;
	int i, nmatch;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (argv[i][0] == '-' && argv[i][1])
			continue;
		c = rm_lookup(objects, argv[i], &nmatch);
		if (c && (c->fn == cmd_monitor || c->fn == cmd_migrate ||
			  c->fn == cmd_incoming || c->fn == cmd_protect ||
			  c->fn == cmd_standby))
			return i;
		return argc;
	}
	return argc;
}

static int parse_options(struct rm *rm, int argc, char **argv,
			 enum action *action)
{
	static const struct option opts[] = {
		{ "json",	no_argument,	NULL, 'j' },
		{ "pretty",	no_argument,	NULL, 'p' },
		{ "version",	no_argument,	NULL, 'V' },
		{ "help",	no_argument,	NULL, 'h' },
		{ NULL,		0,		NULL, 0 },
	};
	int c, gargc = global_argc(argc, argv);

	*action = RUN;
	opterr = 0;
	while ((c = getopt_long(gargc, argv, "jpVh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			rm->json = true;
			break;
		case 'p':
			rm->json = true;
			rm->pretty = true;
			break;
		case 'V':
			*action = SHOW_VERSION;
			return RM_EXIT_OK;
		case 'h':
			*action = SHOW_HELP;
			break;
		default:
			return rm_usage_err(NULL, "invalid option '%s'",
					    bad_option(argv));
		}
	}
	rm->argc = argc - optind;
	rm->argv = argv + optind;
	return RM_EXIT_OK;
}

static int run(struct rm *rm)
{
	int ret;

	if (!rm_arg(rm))
		return rm_usage_err(NULL, "no object given");

	pr_init(rm->json, rm->pretty);
	ret = rm_dispatch(rm, NULL, objects);
	if (ret == RM_EXIT_OK)
		ret = pr_commit();
	pr_discard();
	rm_nl_close(&rm->nl);
	return ret;
}

/* Output that could not be written is a failure, unless one is reported. */
static int close_stdout(int ret)
{
	bool bad = ferror(stdout);

	if (fclose(stdout) == 0 && !bad)
		return ret;
	if (ret != RM_EXIT_OK)
		return ret;
	rm_err("cannot write to standard output: %s", strerror(errno));
	return RM_EXIT_ERR;
}

int main(int argc, char **argv)
{
	struct rm rm = { 0 };
	enum action action;
	int ret;

	ret = parse_options(&rm, argc, argv, &action);
	if (ret == RM_EXIT_OK) {
		switch (action) {
		case SHOW_VERSION:
			printf("rdmamigctl %s\n", rm_tool_version);
			break;
		case SHOW_HELP:
			ret = cmd_help(&rm);
			break;
		case RUN:
			ret = run(&rm);
			break;
		}
	}
	return close_stdout(ret);
}
