// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl capability and param: the defaults the rdmamig module gives
 * every new session (GET_DEFAULTS, SET_DEFAULTS).  Capabilities are the
 * bits of RDMAMIG_ATTR_CAPS, the rest are parameters; QEMU keeps them
 * apart the same way (migrate_set_capability, migrate_set_parameter).
 */
#include <stdio.h>

#include <linux/rdmamig.h>

#include "attrs.h"
#include "print.h"
#include "rdmamigctl.h"

struct defaults {
	bool got;
	uint64_t caps;
	bool caps_only;		/* print the capabilities, not the parameters */
	bool quiet;		/* only read them */
};

static int defaults_print(struct nlattr **tb, void *arg)
{
	struct defaults *d = arg;

	if (d->got)
		return RM_EXIT_OK;	/* one reply is all we asked for */
	if (!tb[RDMAMIG_ATTR_CAPS]) {
		rm_err("cannot get the defaults: incomplete reply from the kernel");
		return RM_EXIT_ERR;
	}
	d->got = true;
	d->caps = nla_get_u64(tb[RDMAMIG_ATTR_CAPS]);
	if (d->quiet)
		return RM_EXIT_OK;

	pr_open_object(NULL);
	if (d->caps_only) {
		pr_bool("pin_all", "pin-all %s\n",
			d->caps & RDMAMIG_CAP_PIN_ALL);
		pr_bool("pull", "pull %s\n", d->caps & RDMAMIG_CAP_PULL);
	} else {
		attr_print_params(tb, "", "\n");
		pr_text("\n");
	}
	pr_close_object();
	return RM_EXIT_OK;
}

static int defaults_get(struct rm *rm, struct defaults *d)
{
	int ret;

	ret = rm_nl_doit(&rm->nl, RDMAMIG_CMD_GET_DEFAULTS,
			 "cannot get the defaults", defaults_print, d);
	if (ret)
		return ret;
	if (!d->got) {
		rm_err("cannot get the defaults: no reply from the kernel");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

static int defaults_show(struct rm *rm, const char *object, bool caps_only)
{
	struct defaults d = { .caps_only = caps_only };
	int ret;

	ret = rm_no_more_args(rm, object);
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	return defaults_get(rm, &d);
}

/* SET_DEFAULTS with the NAME VALUE pairs left on the command line. */
static int defaults_set(struct rm *rm, const char *object, bool caps)
{
	struct defaults d = { .quiet = true };
	struct attr_set set = { 0 };
	struct nl_msg *msg;
	int ret;

	if (caps)
		ret = attr_read_caps(rm, object, &set);
	else
		ret = attr_read_params(rm, object, &set);
	if (ret)
		return ret;
	ret = rm_connect(rm);
	if (ret)
		return ret;
	/* The capabilities are one bitmask: change only those named. */
	if (caps) {
		ret = defaults_get(rm, &d);
		if (ret)
			return ret;
	}
	msg = rm_nl_msg(&rm->nl, RDMAMIG_CMD_SET_DEFAULTS, NLM_F_ACK);
	if (!msg)
		return RM_EXIT_ERR;
	ret = attr_put(msg, &set, d.caps);
	if (ret) {
		nlmsg_free(msg);
		return ret;
	}
	return rm_nl_send(&rm->nl, msg, "cannot set the defaults", NULL, NULL);
}

/* ---- capability -------------------------------------------------------- */

static int cap_show(struct rm *rm)
{
	return defaults_show(rm, "capability", true);
}

static int cap_set(struct rm *rm)
{
	return defaults_set(rm, "capability", true);
}

static int cap_help(struct rm *rm)
{
	(void)rm;
	fputs("Usage: rdmamigctl [-j | -p] capability [show]\n"
	      "       rdmamigctl capability set CAPABILITY on|off [CAPABILITY on|off]...\n"
	      "       rdmamigctl capability help\n"
	      "\n"
	      "The capabilities new sessions start with, one per line:\n"
	      "    pin-all on|off    register all RAM up front (source: wanted,\n"
	      "                      destination: allowed) instead of chunks on\n"
	      "                      demand; QEMU's name rdma-pin-all works too\n"
	      "    pull on|off       pre-copy rounds read by the destination with\n"
	      "                      RDMA READ (source: wanted, destination:\n"
	      "                      allowed) instead of written by the source\n"
	      "A session uses a capability if both ends have it; a VMM may\n"
	      "change its own.  set needs CAP_NET_ADMIN.\n"
	      "\n"
	      "JSON: {\"pin_all\": BOOLEAN, \"pull\": BOOLEAN}\n",
	      stdout);
	return RM_EXIT_OK;
}

static const struct rm_cmd cap_cmds[] = {
	{ .name = "show",	.fn = cap_show },
	{ .name = "set",	.fn = cap_set },
	{ .name = "help",	.fn = cap_help },
	{ .name = NULL },
};

int cmd_capability(struct rm *rm)
{
	return rm_dispatch(rm, "capability", cap_cmds);
}

/* ---- param ----------------------------------------------------------------- */

static int param_show(struct rm *rm)
{
	return defaults_show(rm, "param", false);
}

static int param_set(struct rm *rm)
{
	return defaults_set(rm, "param", false);
}

static int param_help(struct rm *rm)
{
	(void)rm;
	fputs("Usage: rdmamigctl [-j | -p] param [show]\n"
	      "       rdmamigctl param set PARAM VALUE [PARAM VALUE]...\n"
	      "       rdmamigctl param help\n"
	      "\n"
	      "The parameters new sessions start with, one per line:\n"
	      "    max-bandwidth RATE    bytes/s on the data path: N, Nk, Nm, Ng\n"
	      "                          (bytes, powers of 1000) or Nkbit, Nmbit,\n"
	      "                          Ngbit (bits); 0 or unlimited: no limit\n"
	      "    max-registered SIZE   bytes registered at once without pin-all:\n"
	      "                          N, Nk, Nm, Ng (KiB, MiB, GiB); at least 1m\n"
	      "    keepalive MS          keepalive interval: off (0) or 100 to\n"
	      "                          60000 ms\n"
	      "    downtime-limit MS     for orchestrators: converge below this\n"
	      "    max-rounds N          for orchestrators: then stop anyway\n"
	      "    auth required|off     peer authentication with the session's\n"
	      "                          secret (HMAC-SHA256); off lets sessions\n"
	      "                          run without a secret, with peers that are\n"
	      "                          off too (Documentation/security.rst)\n"
	      "    channels N            queue pairs to stripe memory over, 1 to\n"
	      "                          8: a source offers N, a destination\n"
	      "                          grants at most N\n"
	      "Times take a unit too: 500ms, 2s.  A VMM may change its own\n"
	      "session's; 'rdmamigctl session set' changes a running one.  set\n"
	      "needs CAP_NET_ADMIN.\n"
	      "\n"
	      "JSON: {\"max_bandwidth\": BYTES/S, \"max_registered\": BYTES,\n"
	      "       \"keepalive_ms\": MS, \"downtime_limit_ms\": MS,\n"
	      "       \"max_rounds\": NUMBER, \"auth\": \"required\" or \"off\",\n"
	      "       \"channels\": NUMBER}\n",
	      stdout);
	return RM_EXIT_OK;
}

static const struct rm_cmd param_cmds[] = {
	{ .name = "show",	.fn = param_show },
	{ .name = "set",	.fn = param_set },
	{ .name = "help",	.fn = param_help },
	{ .name = NULL },
};

int cmd_param(struct rm *rm)
{
	return rm_dispatch(rm, "param", param_cmds);
}
