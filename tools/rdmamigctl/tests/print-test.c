// SPDX-License-Identifier: GPL-2.0
/*
 * What "dev", "version", "session", "capability", "param" and "monitor"
 * print, in text, JSON and pretty JSON, for replies made up here: the
 * output of the paths that need the module.  The objects' files are
 * included to reach their static printers.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dev.c"
#include "../version.c"
#include "../session.c"
#include "../param.c"
#include "../monitor.c"

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
	stdout = mem;	/* for the printers that commit themselves */
	fn();
	if (pr_commit() != RM_EXIT_OK)
		fprintf(saved, "# pr_commit failed\n");
	stdout = saved;
	pr_discard();
	fclose(mem);
	check(!strcmp(buf, want), what, buf, want);
	free(buf);
}

/* ---- Sessions, defaults and events ------------------------------------ */

static void put_or_die(int err)
{
	if (err < 0) {
		fprintf(stderr, "cannot build a reply\n");
		exit(1);
	}
}

static void put_stats(struct nl_msg *msg, uint64_t base)
{
	struct nlattr *nest = nla_nest_start(msg, RDMAMIG_ATTR_STATS);
	int i;

	if (!nest)
		put_or_die(-1);
	/* Every stat: base + its number, 1 MiB for the sizes. */
	for (i = RDMAMIG_STAT_BYTES; i <= RDMAMIG_STAT_MAX; i++)
		put_or_die(nla_put_u64(msg, i, base ? base * 1000 + i : 0));
	nla_nest_end(msg, nest);
}

static void put_params(struct nl_msg *msg, uint64_t caps, uint64_t bw)
{
	put_or_die(nla_put_u64(msg, RDMAMIG_ATTR_CAPS, caps));
	put_or_die(nla_put_u64(msg, RDMAMIG_ATTR_MAX_BANDWIDTH, bw));
	put_or_die(nla_put_u64(msg, RDMAMIG_ATTR_MAX_REGISTERED, 256ULL << 20));
	put_or_die(nla_put_u32(msg, RDMAMIG_ATTR_KEEPALIVE_MS, 0));
	put_or_die(nla_put_u32(msg, RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, 300));
	put_or_die(nla_put_u32(msg, RDMAMIG_ATTR_MAX_ROUNDS, 30));
}

/* A GET_SESSION reply: a fresh destination, or a failed source. */
static void reply_session(struct reply *r, uint32_t id, bool failed)
{
	struct nlattr *nest;

	r->msg = nlmsg_alloc();
	if (!r->msg)
		put_or_die(-1);
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_SESSION_ID, id));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_ROLE,
			       failed ? RDMAMIG_ROLE_SOURCE : RDMAMIG_ROLE_DEST));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_STATE,
			       failed ? RDMAMIG_STATE_FAILED : RDMAMIG_STATE_SETUP));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_ERROR, failed ? -ECONNRESET : 0));
	put_or_die(nla_put_string(r->msg, RDMAMIG_ATTR_REASON,
				  failed ? "peer: \"gone\"" : ""));
	put_or_die(nla_put_u64(r->msg, RDMAMIG_ATTR_CAPS, failed ? 1 : 0));
	put_stats(r->msg, failed ? 1000 : 0);
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_OWNER_PID, 100 + id));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_TARGET_PID, 200 + id));
	put_or_die(nla_put_string(r->msg, RDMAMIG_ATTR_LOCAL_ADDR,
				  failed ? "10.0.2.15:40000" : "10.0.2.16:18515"));
	put_or_die(nla_put_string(r->msg, RDMAMIG_ATTR_PEER_ADDR,
				  failed ? "[fe80::1]:18515" : ""));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_BLOCKS, 4));
	put_or_die(nla_put_u64(r->msg, RDMAMIG_ATTR_BLOCK_BYTES, 64ULL << 20));
	nest = nla_nest_start(r->msg, RDMAMIG_ATTR_PARAMS);
	if (!nest)
		put_or_die(-1);
	put_params(r->msg, failed ? 1 : 0, failed ? 12500000 : 0);
	nla_nest_end(r->msg, nest);
	reply_parse(r);
}

static void reply_defaults(struct reply *r)
{
	r->msg = nlmsg_alloc();
	if (!r->msg)
		put_or_die(-1);
	put_params(r->msg, RDMAMIG_CAP_PIN_ALL, 1000000000);
	reply_parse(r);
}

/* EVENT_STATE (failed or not) or EVENT_ROUND. */
static void reply_event(struct reply *r, uint8_t cmd, bool failed)
{
	r->msg = nlmsg_alloc();
	if (!r->msg)
		put_or_die(-1);
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_SESSION_ID, 3));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_ROLE, RDMAMIG_ROLE_SOURCE));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_STATE, failed ?
			       RDMAMIG_STATE_CANCELLED : RDMAMIG_STATE_ACTIVE));
	put_or_die(nla_put_u32(r->msg, RDMAMIG_ATTR_ERROR, failed ? -ECANCELED : 0));
	put_or_die(nla_put_string(r->msg, RDMAMIG_ATTR_REASON,
				  failed ? "cancelled" : ""));
	if (cmd == RDMAMIG_CMD_EVENT_ROUND) {
		put_or_die(nla_put_u64(r->msg, RDMAMIG_ATTR_CAPS, 0));
		put_stats(r->msg, 2);
	}
	reply_parse(r);
}

static struct reply sess0, sess1, defaults, ev_state, ev_cancel, ev_round;

static void sessions(void)
{
	struct session_show ss = { 0 };

	pr_open_array(NULL);
	session_print(sess0.tb, &ss);
	session_print(sess1.tb, &ss);
	pr_close_array();
}

static void session_detail(void)
{
	struct session_show ss = { .detail = true };

	session_print(sess1.tb, &ss);
}

static void session_fresh(void)
{
	struct session_show ss = { .detail = true };

	session_print(sess0.tb, &ss);
}

static void capabilities(void)
{
	struct defaults d = { .caps_only = true };

	defaults_print(defaults.tb, &d);
}

static void params(void)
{
	struct defaults d = { 0 };

	defaults_print(defaults.tb, &d);
}

static int fake_clock(clockid_t clk, struct timespec *ts)
{
	(void)clk;
	ts->tv_sec = 1700000000;	/* 2023-11-14T22:13:20Z */
	ts->tv_nsec = 123456789;
	return 0;
}

/* monitor_print() commits, as the monitor does: here into the case's output. */
static struct monitor mon = { .events = MON_STATE | MON_ROUND };

static void events(void)
{
	monitor_event(RDMAMIG_CMD_EVENT_STATE, ev_state.tb, &mon);
	monitor_event(RDMAMIG_CMD_EVENT_ROUND, ev_round.tb, &mon);
	monitor_event(RDMAMIG_CMD_EVENT_STATE, ev_cancel.tb, &mon);
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

	reply_session(&sess0, 0, false);
	reply_session(&sess1, 7, true);
	output_case("session list, text", false, false, sessions,
		    "0: dest setup pid 200 10.0.2.16:18515 -> - rounds 0 bytes 0B"
		    " throughput 0.0MB/s\n"
		    "7: source failed pid 207 10.0.2.15:40000 -> [fe80::1]:18515"
		    " rounds 1000005 bytes 976.6KiB throughput 1.0MB/s"
		    " reason \"peer: \"gone\"\"\n");
	output_case("session list, JSON", true, false, sessions,
		    "[{\"id\":0,\"role\":\"dest\",\"state\":\"setup\",\"error\":0,"
		    "\"reason\":\"\",\"owner_pid\":100,\"target_pid\":200,"
		    "\"local_addr\":\"10.0.2.16:18515\",\"peer_addr\":\"\","
		    "\"blocks\":4,\"block_bytes\":67108864,\"caps\":[],"
		    "\"params\":{\"caps\":[],\"max_bandwidth\":0,"
		    "\"max_registered\":268435456,\"keepalive_ms\":0,"
		    "\"downtime_limit_ms\":300,\"max_rounds\":30},"
		    "\"stats\":{\"bytes\":0,\"pages\":0,\"zero_pages\":0,"
		    "\"rounds\":0,\"throughput\":0,\"chunks_registered\":0,"
		    "\"chunks_unregistered\":0,\"registered_bytes\":0,"
		    "\"device_state_bytes\":0,\"zero_skipped\":0,\"setup_ms\":0,\"total_ms\":0,"
		    "\"downtime_ms\":0,\"channels\":0,\"scan_ms\":0,\"keys_wait_ms\":0,"
		    "\"writes_wait_ms\":0,\"register_ms\":0,\"zero_ms\":0,"
		    "\"postcopy_owed\":0,\"postcopy_ms\":0,\"postcopy_faults\":0,"
		    "\"postcopy_fault_pages\":0,\"postcopy_sweep_pages\":0,\"postcopy_fetched_twice\":0,"
		    "\"fault_us_p50\":0,\"fault_us_p99\":0,\"fault_us_max\":0,\"postcopy_downtime_us\":0"
		    ",\"mc_epochs\":0,\"mc_acked\":0,\"mc_pages\":0,\"mc_bytes\":0,\"mc_last_pages\":0,\"mc_pause_us_last\":0,\"mc_pause_us_max\":0,\"mc_pause_us_total\":0,\"mc_ack_us_last\":0,\"mc_ack_us_max\":0,\"mc_discarded\":0}},"
		    "{\"id\":7,\"role\":\"source\",\"state\":\"failed\","
		    "\"error\":-104,\"error_text\":\"Connection reset by peer\","
		    "\"reason\":\"peer: \\\"gone\\\"\",\"owner_pid\":107,"
		    "\"target_pid\":207,\"local_addr\":\"10.0.2.15:40000\","
		    "\"peer_addr\":\"[fe80::1]:18515\",\"blocks\":4,"
		    "\"block_bytes\":67108864,\"caps\":[\"pin-all\"],"
		    "\"params\":{\"caps\":[\"pin-all\"],\"max_bandwidth\":12500000,"
		    "\"max_registered\":268435456,\"keepalive_ms\":0,"
		    "\"downtime_limit_ms\":300,\"max_rounds\":30},"
		    "\"stats\":{\"bytes\":1000002,\"pages\":1000003,"
		    "\"zero_pages\":1000004,\"rounds\":1000005,"
		    "\"throughput\":1000010,\"chunks_registered\":1000006,"
		    "\"chunks_unregistered\":1000007,\"registered_bytes\":1000008,"
		    "\"device_state_bytes\":1000009,\"zero_skipped\":1000020,\"setup_ms\":1000011,"
		    "\"total_ms\":1000012,\"downtime_ms\":1000013,\"channels\":1000014,"
		    "\"scan_ms\":1000015,\"keys_wait_ms\":1000016,\"writes_wait_ms\":1000017,"
		    "\"register_ms\":1000018,\"zero_ms\":1000019,"
		    "\"postcopy_owed\":1000021,\"postcopy_ms\":1000022,\"postcopy_faults\":1000023,"
		    "\"postcopy_fault_pages\":1000024,\"postcopy_sweep_pages\":1000025,\"postcopy_fetched_twice\":1000026,"
		    "\"fault_us_p50\":1000027,\"fault_us_p99\":1000028,\"fault_us_max\":1000029,\"postcopy_downtime_us\":1000030"
		    ",\"mc_epochs\":1000031,\"mc_acked\":1000032,\"mc_pages\":1000033,\"mc_bytes\":1000034,\"mc_last_pages\":1000035,\"mc_pause_us_last\":1000036,\"mc_pause_us_max\":1000037,\"mc_pause_us_total\":1000038,\"mc_ack_us_last\":1000039,\"mc_ack_us_max\":1000040,\"mc_discarded\":1000041}}]\n");
	output_case("session show, text", false, false, session_detail,
		    "session 7: source failed error ECONNRESET (Connection reset by peer)"
		    " reason \"peer: \"gone\"\"\n"
		    "    owner pid 107 target pid 207\n"
		    "    local 10.0.2.15:40000 peer [fe80::1]:18515\n"
		    "    blocks 4 (64MiB) caps pin-all\n"
		    "    params: caps pin-all max-bandwidth 12.5MB/s max-registered 256MiB"
		    " keepalive off downtime-limit 300ms max-rounds 30\n"
		    "    stats: bytes 976.6KiB pages 1000003 zero-pages 1000004"
		    " rounds 1000005 throughput 1.0MB/s\n"
		    "           chunks-registered 1000006 chunks-unregistered 1000007"
		    " registered 976.6KiB device-state 976.6KiB zero-skipped 1000020\n"
		    "           setup 1000011ms total 1000012ms downtime 1000013ms channels 1000014\n"
		    "           scan 1000015ms keys-wait 1000016ms writes-wait 1000017ms"
		    " register 1000018ms zero 1000019ms\n"
		    "           postcopy-owed 1000021 postcopy 1000022ms faults 1000023"
		    " fault-pages 1000024 sweep-pages 1000025 fetched-twice 1000026"
		    " fault-us-p50 1000027 fault-us-p99 1000028 fault-us-max 1000029"
		    " postcopy-downtime-us 1000030\n"
		    "           epochs 1000031 acked 1000032 epoch-pages 1000033 epoch-bytes 976.6KiB last-pages 1000035 pause-us-last 1000036 pause-us-max 1000037 pause-us-total 1000038 ack-us-last 1000039 ack-us-max 1000040 discarded 1000041\n");
	output_case("session show, fresh, text", false, false, session_fresh,
		    "session 0: dest setup\n"
		    "    owner pid 100 target pid 200\n"
		    "    local 10.0.2.16:18515 peer -\n"
		    "    blocks 4 (64MiB) caps none\n"
		    "    params: caps none max-bandwidth unlimited max-registered 256MiB"
		    " keepalive off downtime-limit 300ms max-rounds 30\n"
		    "    stats: bytes 0B pages 0 zero-pages 0 rounds 0 throughput 0.0MB/s\n"
		    "           chunks-registered 0 chunks-unregistered 0 registered 0B"
		    " device-state 0B zero-skipped 0\n"
		    "           setup 0ms total 0ms downtime 0ms channels 0\n"
		    "           scan 0ms keys-wait 0ms writes-wait 0ms register 0ms zero 0ms\n");
	output_case("session show, pretty JSON", true, true, session_fresh,
		    "{\n"
		    "    \"id\": 0,\n"
		    "    \"role\": \"dest\",\n"
		    "    \"state\": \"setup\",\n"
		    "    \"error\": 0,\n"
		    "    \"reason\": \"\",\n"
		    "    \"owner_pid\": 100,\n"
		    "    \"target_pid\": 200,\n"
		    "    \"local_addr\": \"10.0.2.16:18515\",\n"
		    "    \"peer_addr\": \"\",\n"
		    "    \"blocks\": 4,\n"
		    "    \"block_bytes\": 67108864,\n"
		    "    \"caps\": [],\n"
		    "    \"params\": {\n"
		    "        \"caps\": [],\n"
		    "        \"max_bandwidth\": 0,\n"
		    "        \"max_registered\": 268435456,\n"
		    "        \"keepalive_ms\": 0,\n"
		    "        \"downtime_limit_ms\": 300,\n"
		    "        \"max_rounds\": 30\n"
		    "    },\n"
		    "    \"stats\": {\n"
		    "        \"bytes\": 0,\n"
		    "        \"pages\": 0,\n"
		    "        \"zero_pages\": 0,\n"
		    "        \"rounds\": 0,\n"
		    "        \"throughput\": 0,\n"
		    "        \"chunks_registered\": 0,\n"
		    "        \"chunks_unregistered\": 0,\n"
		    "        \"registered_bytes\": 0,\n"
		    "        \"device_state_bytes\": 0,\n"
		    "        \"zero_skipped\": 0,\n"
		    "        \"setup_ms\": 0,\n"
		    "        \"total_ms\": 0,\n"
		    "        \"downtime_ms\": 0,\n"
		    "        \"channels\": 0,\n"
		    "        \"scan_ms\": 0,\n"
		    "        \"keys_wait_ms\": 0,\n"
		    "        \"writes_wait_ms\": 0,\n"
		    "        \"register_ms\": 0,\n"
		    "        \"zero_ms\": 0,\n"
		    "        \"postcopy_owed\": 0,\n"
		    "        \"postcopy_ms\": 0,\n"
		    "        \"postcopy_faults\": 0,\n"
		    "        \"postcopy_fault_pages\": 0,\n"
		    "        \"postcopy_sweep_pages\": 0,\n"
		    "        \"postcopy_fetched_twice\": 0,\n"
		    "        \"fault_us_p50\": 0,\n"
		    "        \"fault_us_p99\": 0,\n"
		    "        \"fault_us_max\": 0,\n"
		    "        \"postcopy_downtime_us\": 0,\n"
		    "        \"mc_epochs\": 0,\n"
		    "        \"mc_acked\": 0,\n"
		    "        \"mc_pages\": 0,\n"
		    "        \"mc_bytes\": 0,\n"
		    "        \"mc_last_pages\": 0,\n"
		    "        \"mc_pause_us_last\": 0,\n"
		    "        \"mc_pause_us_max\": 0,\n"
		    "        \"mc_pause_us_total\": 0,\n"
		    "        \"mc_ack_us_last\": 0,\n"
		    "        \"mc_ack_us_max\": 0,\n"
		    "        \"mc_discarded\": 0\n"
		    "    }\n"
		    "}\n");

	reply_defaults(&defaults);
	output_case("capability show, text", false, false, capabilities,
		    "pin-all on\npull off\n");
	output_case("capability show, JSON", true, false, capabilities,
		    "{\"pin_all\":true,\"pull\":false}\n");
	output_case("param show, text", false, false, params,
		    "max-bandwidth 1GB/s\n"
		    "max-registered 256MiB\n"
		    "keepalive off\n"
		    "downtime-limit 300ms\n"
		    "max-rounds 30\n");
	output_case("param show, JSON", true, false, params,
		    "{\"max_bandwidth\":1000000000,\"max_registered\":268435456,"
		    "\"keepalive_ms\":0,\"downtime_limit_ms\":300,\"max_rounds\":30}\n");

	setenv("TZ", "UTC", 1);
	tzset();
	monitor_clock = fake_clock;
	reply_event(&ev_state, RDMAMIG_CMD_EVENT_STATE, false);
	reply_event(&ev_cancel, RDMAMIG_CMD_EVENT_STATE, true);
	reply_event(&ev_round, RDMAMIG_CMD_EVENT_ROUND, false);
	output_case("monitor, text", false, false, events,
		    "2023-11-14T22:13:20.123+0000 session 3 source state active\n"
		    "2023-11-14T22:13:20.123+0000 session 3 source round caps none"
		    " bytes 2.0KiB pages 2003 zero-pages 2004 rounds 2005"
		    " throughput 0.0MB/s\n"
		    "2023-11-14T22:13:20.123+0000 session 3 source state cancelled"
		    " error ECANCELED (Operation canceled) reason \"cancelled\"\n");
	output_case("monitor, JSON", true, false, events,
		    "{\"time\":\"2023-11-14T22:13:20.123+0000\",\"event\":\"state\","
		    "\"id\":3,\"role\":\"source\",\"state\":\"active\",\"error\":0,"
		    "\"reason\":\"\"}\n"
		    "{\"time\":\"2023-11-14T22:13:20.123+0000\",\"event\":\"round\","
		    "\"id\":3,\"role\":\"source\",\"state\":\"active\",\"caps\":[],"
		    "\"stats\":{\"bytes\":2002,\"pages\":2003,\"zero_pages\":2004,"
		    "\"rounds\":2005,\"throughput\":2010,\"chunks_registered\":2006,"
		    "\"chunks_unregistered\":2007,\"registered_bytes\":2008,"
		    "\"device_state_bytes\":2009,\"zero_skipped\":2020,\"setup_ms\":2011,"
		    "\"total_ms\":2012,"
		    "\"downtime_ms\":2013,\"channels\":2014,\"scan_ms\":2015,"
		    "\"keys_wait_ms\":2016,\"writes_wait_ms\":2017,\"register_ms\":2018,"
		    "\"zero_ms\":2019,"
		    "\"postcopy_owed\":2021,\"postcopy_ms\":2022,\"postcopy_faults\":2023,"
		    "\"postcopy_fault_pages\":2024,\"postcopy_sweep_pages\":2025,\"postcopy_fetched_twice\":2026,"
		    "\"fault_us_p50\":2027,\"fault_us_p99\":2028,\"fault_us_max\":2029,\"postcopy_downtime_us\":2030"
		    ",\"mc_epochs\":2031,\"mc_acked\":2032,\"mc_pages\":2033,\"mc_bytes\":2034,\"mc_last_pages\":2035,\"mc_pause_us_last\":2036,\"mc_pause_us_max\":2037,\"mc_pause_us_total\":2038,\"mc_ack_us_last\":2039,\"mc_ack_us_max\":2040,\"mc_discarded\":2041},\"error\":0,\"reason\":\"\"}\n"
		    "{\"time\":\"2023-11-14T22:13:20.123+0000\",\"event\":\"state\","
		    "\"id\":3,\"role\":\"source\",\"state\":\"cancelled\","
		    "\"error\":-125,\"error_text\":\"Operation canceled\","
		    "\"reason\":\"cancelled\"}\n");
	mon.events = MON_STATE;
	mon.count = 1;
	mon.seen = 0;
	output_case("monitor state --count 1", false, false, events,
		    "2023-11-14T22:13:20.123+0000 session 3 source state active\n");

	nlmsg_free(dev0.msg);
	nlmsg_free(dev1.msg);
	nlmsg_free(ver.msg);
	nlmsg_free(sess0.msg);
	nlmsg_free(sess1.msg);
	nlmsg_free(defaults.msg);
	nlmsg_free(ev_state.msg);
	nlmsg_free(ev_cancel.msg);
	nlmsg_free(ev_round.msg);
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
