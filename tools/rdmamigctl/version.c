// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl version: versions of the tool, the module and the protocol.
 */
#include <stdio.h>

#include <linux/rdmamig.h>

#include "print.h"
#include "rdmamigctl.h"

#ifndef RDMAMIGCTL_VERSION
#define RDMAMIGCTL_VERSION "0.1"
#endif

const char rm_tool_version[] = RDMAMIGCTL_VERSION;

static int version_print(struct nlattr **tb, void *arg)
{
	bool *got = arg;

	if (*got)
		return RM_EXIT_OK;	/* one reply is all we asked for */
	if (!tb[RDMAMIG_ATTR_VERSION] || !tb[RDMAMIG_ATTR_PROTO_VERSION]) {
		rm_err("cannot get the module version: incomplete reply from the kernel");
		return RM_EXIT_ERR;
	}
	*got = true;

	pr_open_object(NULL);
	pr_string("tool", "rdmamigctl %s\n", rm_tool_version);
	pr_string("module", "rdmamig module %s",
		  nla_get_string(tb[RDMAMIG_ATTR_VERSION]));
	pr_u32("protocol", ", protocol %u\n",
	       nla_get_u32(tb[RDMAMIG_ATTR_PROTO_VERSION]));
	pr_close_object();
	return RM_EXIT_OK;
}

static int version_show(struct rm *rm)
{
	bool got = false;
	int ret;

	ret = rm_no_more_args(rm, "version");
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	ret = rm_nl_doit(&rm->nl, RDMAMIG_CMD_GET_VERSION,
			 "cannot get the module version", version_print, &got);
	if (ret)
		return ret;
	if (!got) {
		rm_err("cannot get the module version: no reply from the kernel");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int version_help(struct rm *rm)
{
	(void)rm;
	fputs("Usage: rdmamigctl [-j | -p] version [show]\n"
	      "       rdmamigctl version help\n"
	      "\n"
	      "Print the version of rdmamigctl, the version of the loaded rdmamig\n"
	      "module and the version of the migration wire protocol it speaks.\n"
	      "Use 'rdmamigctl -V' for the version of rdmamigctl alone.\n"
	      "\n"
	      "JSON: {\"tool\": STRING, \"module\": STRING, \"protocol\": NUMBER}\n",
	      stdout);
	return RM_EXIT_OK;
}

static const struct rm_cmd version_cmds[] = {
	{ .name = "show",	.fn = version_show },
	{ .name = "help",	.fn = version_help },
	{ .name = NULL },
};

int cmd_version(struct rm *rm)
{
	return rm_dispatch(rm, "version", version_cmds);
}
