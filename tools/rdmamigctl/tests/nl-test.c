// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of rdmamigctl's netlink wrapper (nl.c) against a generic netlink
 * family every kernel has: the controller, "nlctrl".  It exercises what
 * the rdmamig family cannot on a host without the module: doit and dumpit
 * requests, errors of both, the kernel's extended ACK, a callback that
 * stops a dump, and a family that does not exist.
 *
 * The error messages the wrapper prints on stderr are expected.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include <netlink/genl/genl.h>

#include "rdmamigctl.h"
#include "nl.h"

static const struct nla_policy ctrl_policy[CTRL_ATTR_MAX + 1] = {
	[CTRL_ATTR_FAMILY_ID]	= { .type = NLA_U16 },
	[CTRL_ATTR_FAMILY_NAME]	= { .type = NLA_STRING },
	[CTRL_ATTR_VERSION]	= { .type = NLA_U32 },
};

static int failures, count;

static void check(int ok, const char *what)
{
	count++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what);
	fflush(stdout);
	if (!ok)
		failures++;
}

struct families {
	int seen;
	int ctrl_id;		/* id of "nlctrl", or -1 */
	int stop_after;		/* stop the dump after so many, if > 0 */
};

static int family_cb(struct nlattr **tb, void *arg)
{
	struct families *f = arg;

	if (!tb[CTRL_ATTR_FAMILY_NAME] || !tb[CTRL_ATTR_FAMILY_ID])
		return RM_EXIT_ERR;
	f->seen++;
	if (!strcmp(nla_get_string(tb[CTRL_ATTR_FAMILY_NAME]), "nlctrl"))
		f->ctrl_id = nla_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (f->stop_after && f->seen >= f->stop_after)
		return RM_EXIT_USAGE;	/* any exit code stops */
	return RM_EXIT_OK;
}

/*
 * CTRL_CMD_GETFAMILY doit for the family of that name or, without one,
 * with a family id too short (1 byte instead of 2) to pass the policy.
 */
static int getfamily(struct rm_nl *nl, const char *name, struct families *f)
{
	struct nl_msg *msg = rm_nl_msg(nl, CTRL_CMD_GETFAMILY, NLM_F_ACK);
	int err;

	if (!msg)
		return RM_EXIT_ERR;
	if (name)
		err = nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, name);
	else
		err = nla_put_u8(msg, CTRL_ATTR_FAMILY_ID, GENL_ID_CTRL);
	if (err < 0) {
		nlmsg_free(msg);
		return RM_EXIT_ERR;
	}
	return rm_nl_send(nl, msg, "getfamily", family_cb, f);
}

static void test_requests(struct rm_nl *nl)
{
	struct families f = { .ctrl_id = -1 };
	int ret, zero = 0;

	ret = getfamily(nl, "nlctrl", &f);
	check(ret == RM_EXIT_OK && f.seen == 1 && f.ctrl_id == GENL_ID_CTRL,
	      "doit: one reply, parsed");

	f = (struct families){ .ctrl_id = -1 };
	ret = rm_nl_dump(nl, CTRL_CMD_GETFAMILY, "dump", family_cb, &f);
	check(ret == RM_EXIT_OK && f.seen > 1 && f.ctrl_id == GENL_ID_CTRL,
	      "dumpit: every family, nlctrl among them");

	f = (struct families){ .ctrl_id = -1 };
	ret = getfamily(nl, "no-such-family", &f);
	check(ret == RM_EXIT_ERR && nl->err == -ENOENT && f.seen == 0,
	      "doit error: ENOENT");

	f = (struct families){ .ctrl_id = -1 };
	ret = getfamily(nl, NULL, &f);
	check(ret == RM_EXIT_ERR && nl->err == -ERANGE,
	      "doit error: attribute failing the policy is ERANGE");
	check(nl->extack[0] != '\0', "doit error: extended ACK message");
	printf("# extack: '%s'\n", nl->extack);

	/* The same, with the request echoed in front of the extended ACK. */
	if (setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		       &zero, sizeof(zero)) == 0) {
		f = (struct families){ .ctrl_id = -1 };
		ret = getfamily(nl, NULL, &f);
		check(ret == RM_EXIT_ERR && nl->err == -ERANGE &&
		      nl->extack[0] != '\0',
		      "doit error: extended ACK after an uncapped echo");
	} else {
		check(0, "clear NETLINK_CAP_ACK");
	}

	ret = rm_nl_dump(nl, CTRL_CMD_GETPOLICY, "policy dump", NULL, NULL);
	check(ret == RM_EXIT_ERR && nl->err == -EINVAL,
	      "dumpit error: EINVAL");
	printf("# extack: '%s'\n", nl->extack);

	f = (struct families){ .ctrl_id = -1, .stop_after = 1 };
	ret = rm_nl_dump(nl, CTRL_CMD_GETFAMILY, "dump", family_cb, &f);
	check(ret == RM_EXIT_USAGE && f.seen == 1,
	      "a callback's exit code stops a dump");

	f = (struct families){ .ctrl_id = -1 };
	ret = getfamily(nl, "nlctrl", &f);
	check(ret == RM_EXIT_OK && f.seen == 1 && f.ctrl_id == GENL_ID_CTRL,
	      "the socket works after a stopped dump");
}

int main(void)
{
	struct rm_nl nl;
	int ret;

	ret = rm_nl_open_family(&nl, "no-such-family", 1, 0, NULL);
	check(ret == RM_EXIT_NOMOD && !nl.sk, "missing family: exit code 3");

	ret = rm_nl_open_family(&nl, "nlctrl", 2, CTRL_ATTR_MAX, ctrl_policy);
	check(ret == RM_EXIT_OK && nl.sk, "open nlctrl");
	if (ret == RM_EXIT_OK)
		test_requests(&nl);
	rm_nl_close(&nl);
	rm_nl_close(&nl);
	check(!nl.sk, "close, twice");

	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
