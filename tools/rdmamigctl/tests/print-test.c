// SPDX-License-Identifier: GPL-2.0
/*
 * What "dev" and "version" print, in text, JSON and pretty JSON, for
 * replies made up here: the output of the paths that need the module.
 * The objects' files are included to reach their static printers.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dev.c"
#include "../version.c"

static int failures, count;

static void check(int ok, const char *what, const char *got,
		  const char *want)
{
	count++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what);
	if (!ok) {
		failures++;
		printf("#   got:\n%s#   want:\n%s", got, want);
	}
}

/* A made-up reply: its attributes, parsed as nl.c would. */
struct reply {
	struct nl_msg *msg;
	struct nlattr *tb[RDMAMIG_ATTR_MAX + 1];
};

static void reply_parse(struct reply *r)
{
	struct nlmsghdr *nlh = nlmsg_hdr(r->msg);

	if (nla_parse(r->tb, RDMAMIG_ATTR_MAX, nlmsg_attrdata(nlh, 0),
		      nlmsg_attrlen(nlh, 0), NULL) < 0) {
		fprintf(stderr, "nla_parse failed\n");
		exit(1);
	}
}

static void reply_dev(struct reply *r, uint32_t index, const char *name,
		      uint64_t guid, uint32_t ports)
{
	r->msg = nlmsg_alloc();
	if (!r->msg ||
	    nla_put_u32(r->msg, RDMAMIG_ATTR_DEV_INDEX, index) < 0 ||
	    nla_put_string(r->msg, RDMAMIG_ATTR_DEV_NAME, name) < 0 ||
	    nla_put_u64(r->msg, RDMAMIG_ATTR_DEV_NODE_GUID, guid) < 0 ||
	    nla_put_u32(r->msg, RDMAMIG_ATTR_DEV_PORTS, ports) < 0) {
		fprintf(stderr, "cannot build a reply\n");
		exit(1);
	}
	reply_parse(r);
}

static void reply_version(struct reply *r, const char *version,
			  uint32_t proto)
{
	r->msg = nlmsg_alloc();
	if (!r->msg ||
	    nla_put_string(r->msg, RDMAMIG_ATTR_VERSION, version) < 0 ||
	    nla_put_u32(r->msg, RDMAMIG_ATTR_PROTO_VERSION, proto) < 0) {
		fprintf(stderr, "cannot build a reply\n");
		exit(1);
	}
	reply_parse(r);
}

/* Run fn in a mode, committing into a string instead of stdout. */
static void output_case(const char *what, bool json, bool pretty,
			void (*fn)(void), const char *want)
{
	FILE *saved = stdout, *mem;
	char *buf = NULL;
	size_t len = 0;

	mem = open_memstream(&buf, &len);
	if (!mem) {
		perror("open_memstream");
		exit(1);
	}
	pr_init(json, pretty);
	fn();
	stdout = mem;
	if (pr_commit() != RM_EXIT_OK)
		fprintf(saved, "# pr_commit failed\n");
	stdout = saved;
	pr_discard();
	fclose(mem);
	check(!strcmp(buf, want), what, buf, want);
	free(buf);
}

static struct reply dev0, dev1, ver;

static void two_devs(void)
{
	struct dev_show ds = { 0 };

	pr_open_array(NULL);
	dev_print(dev0.tb, &ds);
	dev_print(dev1.tb, &ds);
	pr_close_array();
}

static void one_dev(void)
{
	struct dev_show ds = { .name = "siw_eth0" };

	pr_open_array(NULL);
	dev_print(dev0.tb, &ds);
	dev_print(dev1.tb, &ds);
	pr_close_array();
}

static void no_dev(void)
{
	pr_open_array(NULL);
	pr_close_array();
}

static void version(void)
{
	bool got = false;

	version_print(ver.tb, &got);
}

int main(void)
{
	reply_dev(&dev0, 0, "rxe0", 0x505400fffe123456ULL, 1);
	reply_dev(&dev1, 3, "siw_eth0", 0x0002c90300a1b2c3ULL, 2);
	reply_version(&ver, "0.1.0-\"q\"", 1);

	output_case("dev, text", false, false, two_devs,
		    "0: rxe0: node_guid 5054:00ff:fe12:3456 ports 1\n"
		    "3: siw_eth0: node_guid 0002:c903:00a1:b2c3 ports 2\n");
	output_case("dev, JSON", true, false, two_devs,
		    "[{\"index\":0,\"name\":\"rxe0\","
		    "\"node_guid\":\"5054:00ff:fe12:3456\",\"ports\":1},"
		    "{\"index\":3,\"name\":\"siw_eth0\","
		    "\"node_guid\":\"0002:c903:00a1:b2c3\",\"ports\":2}]\n");
	output_case("dev, pretty JSON", true, true, one_dev,
		    "[\n"
		    "    {\n"
		    "        \"index\": 3,\n"
		    "        \"name\": \"siw_eth0\",\n"
		    "        \"node_guid\": \"0002:c903:00a1:b2c3\",\n"
		    "        \"ports\": 2\n"
		    "    }\n"
		    "]\n");
	output_case("no dev, text", false, false, no_dev, "");
	output_case("no dev, JSON", true, false, no_dev, "[]\n");
	output_case("version, text", false, false, version,
		    "rdmamigctl " RDMAMIGCTL_VERSION "\n"
		    "rdmamig module 0.1.0-\"q\", protocol 1\n");
	output_case("version, JSON", true, false, version,
		    "{\"tool\":\"" RDMAMIGCTL_VERSION "\","
		    "\"module\":\"0.1.0-\\\"q\\\"\",\"protocol\":1}\n");

	nlmsg_free(dev0.msg);
	nlmsg_free(dev1.msg);
	nlmsg_free(ver.msg);
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
