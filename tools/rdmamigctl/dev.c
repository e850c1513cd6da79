// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl dev: the RDMA devices the rdmamig module sees.
 */
#include <stdio.h>
#include <string.h>

#include <linux/rdmamig.h>

#include "print.h"
#include "rdmamigctl.h"

struct dev_show {
	const char *name;	/* only this device, or NULL for all */
	bool found;
};

/* Like iproute2's rdma tool: 16-bit groups, most significant first. */
static void dev_guid_str(uint64_t guid, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%04x:%04x:%04x",
		 (unsigned int)(guid >> 48) & 0xffff,
		 (unsigned int)(guid >> 32) & 0xffff,
		 (unsigned int)(guid >> 16) & 0xffff,
		 (unsigned int)guid & 0xffff);
}

static int dev_print(struct nlattr **tb, void *arg)
{
	struct dev_show *ds = arg;
	char guid[sizeof("xxxx:xxxx:xxxx:xxxx")];
	const char *name;

	if (!tb[RDMAMIG_ATTR_DEV_INDEX] || !tb[RDMAMIG_ATTR_DEV_NAME]) {
		rm_err("cannot list the RDMA devices: incomplete reply from the kernel");
		return RM_EXIT_ERR;
	}
	name = nla_get_string(tb[RDMAMIG_ATTR_DEV_NAME]);
	if (ds->name && strcmp(ds->name, name))
		return RM_EXIT_OK;
	ds->found = true;

	pr_open_object(NULL);
	pr_u32("index", "%u: ", nla_get_u32(tb[RDMAMIG_ATTR_DEV_INDEX]));
	pr_string("name", "%s:", name);
	if (tb[RDMAMIG_ATTR_DEV_NODE_GUID]) {
		dev_guid_str(nla_get_u64(tb[RDMAMIG_ATTR_DEV_NODE_GUID]),
			     guid, sizeof(guid));
		pr_string("node_guid", " node_guid %s", guid);
	}
	if (tb[RDMAMIG_ATTR_DEV_PORTS])
		pr_u32("ports", " ports %u",
		       nla_get_u32(tb[RDMAMIG_ATTR_DEV_PORTS]));
	pr_text("\n");
	pr_close_object();
	return RM_EXIT_OK;
}

static int dev_show(struct rm *rm)
{
	struct dev_show ds = { 0 };
	int ret;

	if (rm_arg(rm)) {
		ds.name = rm_arg(rm);
		rm_shift(rm);
	}
	ret = rm_no_more_args(rm, "dev");
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;

	pr_open_array(NULL);
	ret = rm_nl_dump(&rm->nl, RDMAMIG_CMD_GET_DEV,
			 "cannot list the RDMA devices", dev_print, &ds);
	if (ret)
		return ret;
	pr_close_array();

	if (ds.name && !ds.found) {
		rm_err("no RDMA device '%s' is known to rdmamig", ds.name);
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int dev_help(struct rm *rm)
{
	(void)rm;
	fputs("Usage: rdmamigctl [-j | -p] dev [show [DEV]]\n"
	      "       rdmamigctl dev help\n"
	      "\n"
	      "List the RDMA devices the rdmamig module sees, one per line:\n"
	      "    INDEX: NAME: node_guid XXXX:XXXX:XXXX:XXXX ports N\n"
	      "With DEV, only the device of that name (it is an error if there\n"
	      "is none).\n"
	      "\n"
	      "JSON: an array of {\"index\": NUMBER, \"name\": STRING,\n"
	      "                   \"node_guid\": STRING, \"ports\": NUMBER}\n",
	      stdout);
	return RM_EXIT_OK;
}

static const struct rm_cmd dev_cmds[] = {
	{ .name = "show",	.fn = dev_show },
	{ .name = "help",	.fn = dev_help },
	{ .name = NULL },
};

int cmd_dev(struct rm *rm)
{
	return rm_dispatch(rm, "dev", dev_cmds);
}
