// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of rdmamigctl's JSON writer, command lookup, and the values
 * of the command line (attrs.c).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "json.h"
#include "rdmamigctl.h"

static int failures, count;

static void check(int ok, const char *what, const char *got,
		  const char *want)
{
	count++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what);
	if (!ok) {
		failures++;
		if (got)
			printf("#   got:  '%s'\n#   want: '%s'\n", got, want);
	}
}

typedef void (*json_fn)(struct json *j);

static void json_case(const char *what, bool pretty, json_fn fn,
		      const char *want)
{
	struct json j;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		perror("open_memstream");
		exit(1);
	}
	json_init(&j, f, pretty);
	fn(&j);
	if (fclose(f)) {
		perror("fclose");
		exit(1);
	}
	check(!strcmp(buf, want), what, buf, want);
	free(buf);
}

static void devs(struct json *j)
{
	json_begin_array(j);
	json_begin_object(j);
	json_key(j, "index");
	json_uint(j, 0);
	json_key(j, "name");
	json_string(j, "rxe0");
	json_key(j, "node_guid");
	json_string(j, "5054:00ff:fe12:3456");
	json_key(j, "ports");
	json_uint(j, 1);
	json_end_object(j);
	json_begin_object(j);
	json_key(j, "index");
	json_uint(j, 1);
	json_end_object(j);
	json_end_array(j);
}

static void empty(struct json *j)
{
	json_begin_array(j);
	json_end_array(j);
	json_begin_object(j);
	json_key(j, "a");
	json_begin_array(j);
	json_end_array(j);
	json_key(j, "o");
	json_begin_object(j);
	json_end_object(j);
	json_end_object(j);
}

static void scalars(struct json *j)
{
	json_begin_array(j);
	json_uint(j, 18446744073709551615ULL);
	json_int(j, -2147483648LL);
	json_bool(j, true);
	json_bool(j, false);
	json_null(j);
	json_end_array(j);
	json_uint(j, 7);
}

static void escapes(struct json *j)
{
	json_string(j, "q\" b\\ s/ \b\f\n\r\t \x01\x1f\x7f end");
}

static void utf8(struct json *j)
{
	/* é, €, U+1F600; then bad: lone continuation, overlong, surrogate,
	 * above U+10FFFF, truncated sequence at the end. */
	json_string(j, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
		    "\x80 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82");
}

static void json_tests(void)
{
	json_case("compact array of objects", false, devs,
		  "[{\"index\":0,\"name\":\"rxe0\","
		  "\"node_guid\":\"5054:00ff:fe12:3456\",\"ports\":1},"
		  "{\"index\":1}]\n");
	json_case("pretty array of objects", true, devs,
		  "[\n"
		  "    {\n"
		  "        \"index\": 0,\n"
		  "        \"name\": \"rxe0\",\n"
		  "        \"node_guid\": \"5054:00ff:fe12:3456\",\n"
		  "        \"ports\": 1\n"
		  "    },\n"
		  "    {\n"
		  "        \"index\": 1\n"
		  "    }\n"
		  "]\n");
	json_case("empty containers, compact", false, empty,
		  "[]\n{\"a\":[],\"o\":{}}\n");
	json_case("empty containers, pretty", true, empty,
		  "[]\n{\n    \"a\": [],\n    \"o\": {}\n}\n");
	json_case("scalars", false, scalars,
		  "[18446744073709551615,-2147483648,true,false,null]\n7\n");
	json_case("escapes", false, escapes,
		  "\"q\\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f end\"\n");
	json_case("utf-8", false, utf8,
		  "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
		  "\\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd "
		  "\\ufffd\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\"\n");
}

static int nop(struct rm *rm)
{
	(void)rm;
	return 0;
}

static const struct rm_cmd cmds[] = {
	{ .name = "migrate",	.fn = nop },
	{ .name = "monitor",	.fn = nop },
	{ .name = "show",	.fn = nop },
	{ .name = "showall",	.fn = nop },
	{ .name = NULL },
};

static void lookup_case(const char *word, const char *want, int nwant)
{
	const struct rm_cmd *c;
	char what[64];
	int n;

	c = rm_lookup(cmds, word, &n);
	snprintf(what, sizeof(what), "lookup '%s'", word);
	check(n == nwant && (want ? c && !strcmp(c->name, want) : !c),
	      what, c ? c->name : "(none)", want ? want : "(none)");
}

static void lookup_tests(void)
{
	lookup_case("migrate", "migrate", 1);
	lookup_case("mi", "migrate", 1);
	lookup_case("mo", "monitor", 1);
	lookup_case("m", NULL, 2);		/* ambiguous */
	lookup_case("show", "show", 1);		/* exact beats prefix */
	lookup_case("showa", "showall", 1);
	lookup_case("sh", NULL, 2);
	lookup_case("x", NULL, 0);
	lookup_case("", NULL, 0);
	lookup_case("migrates", NULL, 0);
}

#define REFUSED	(UINT64_MAX - 1)	/* no value tested here */

static void value_case(const char *kind, const char *s, uint64_t want)
{
	uint64_t v64 = 12345;
	uint32_t v32 = 12345;
	char what[96], got[32], exp[32];
	bool on = false;
	int bad;

	if (!strcmp(kind, "rate")) {
		bad = attr_parse_rate(s, &v64);
	} else if (!strcmp(kind, "size")) {
		bad = attr_parse_size(s, &v64);
	} else if (!strcmp(kind, "ms")) {
		bad = attr_parse_ms(s, &v32);
		v64 = v32;
	} else if (!strcmp(kind, "u32")) {
		bad = attr_parse_u32(s, &v32);
		v64 = v32;
	} else {
		bad = attr_parse_on_off(s, &on);
		v64 = bad ? 12345 : on;
	}
	snprintf(what, sizeof(what), "%s '%s'", kind, s);
	snprintf(got, sizeof(got), bad ? "refused" : "%llu", (unsigned long long)v64);
	snprintf(exp, sizeof(exp), want == REFUSED ? "refused" : "%llu",
		 (unsigned long long)want);
	/* A refused value leaves the variable alone. */
	check(want == REFUSED ? bad && v64 == 12345 : !bad && v64 == want,
	      what, got, exp);
}

static void value_tests(void)
{
	value_case("rate", "0", 0);
	value_case("rate", "unlimited", 0);
	value_case("rate", "12345", 12345);
	value_case("rate", "40g", 40000000000ULL);
	value_case("rate", "40G", 40000000000ULL);
	value_case("rate", "20m", 20000000);
	value_case("rate", "20MB/s", 20000000);
	value_case("rate", "1.5k", 1500);
	value_case("rate", "2kbps", 2000);
	value_case("rate", "100mbit", 12500000);
	value_case("rate", "10gbit", 1250000000);
	value_case("rate", "8bit", 1);
	value_case("rate", "1bit", REFUSED);		/* rounds to 0 */
	value_case("rate", "12bit", 2);		/* 1.5 rounds up */
	value_case("rate", "18446744073709551615", 18446744073709551615ULL);
	value_case("rate", "18446744073709551616", REFUSED);
	value_case("rate", "18446744073710g", REFUSED);
	value_case("rate", "", REFUSED);
	value_case("rate", "g", REFUSED);
	value_case("rate", "-1", REFUSED);
	value_case("rate", " 1", REFUSED);
	value_case("rate", "1x", REFUSED);
	value_case("rate", "1.", REFUSED);
	value_case("rate", "1.1234567k", REFUSED);
	value_case("size", "1m", 1048576);
	value_case("size", "1M", 1048576);
	value_case("size", "1MiB", 1048576);
	value_case("size", "256k", 262144);
	value_case("size", "2g", 2147483648ULL);
	value_case("size", "1.5k", 1536);
	value_case("size", "4096", 4096);
	value_case("size", "4096b", 4096);
	value_case("size", "1mbit", REFUSED);
	value_case("ms", "300", 300);
	value_case("ms", "300ms", 300);
	value_case("ms", "2s", 2000);
	value_case("ms", "0.5s", 500);
	value_case("ms", "4294967295", 4294967295ULL);
	value_case("ms", "4294967296", REFUSED);
	value_case("ms", "5m", REFUSED);
	value_case("u32", "30", 30);
	value_case("u32", "0", 0);
	value_case("u32", "1.5", REFUSED);
	value_case("u32", "3s", REFUSED);
	value_case("u32", "4294967296", REFUSED);
	value_case("on/off", "on", 1);
	value_case("on/off", "off", 0);
	value_case("on/off", "true", 1);
	value_case("on/off", "yes", REFUSED);
}

static void fmt_case(const char *what, const char *got, const char *want)
{
	check(!strcmp(got, want), what, got, want);
}

static void fmt_tests(void)
{
	char buf[ATTR_BUF_LEN];

	fmt_case("size 0", attr_fmt_size(buf, sizeof(buf), 0), "0B");
	fmt_case("size 1023", attr_fmt_size(buf, sizeof(buf), 1023), "1023B");
	fmt_case("size 1536", attr_fmt_size(buf, sizeof(buf), 1536), "1.5KiB");
	fmt_case("size 64 MiB", attr_fmt_size(buf, sizeof(buf), 64ULL << 20), "64MiB");
	fmt_case("size 3 GiB + 1", attr_fmt_size(buf, sizeof(buf), (3ULL << 30) + 1),
		 "3.0GiB");
	fmt_case("size max", attr_fmt_size(buf, sizeof(buf), UINT64_MAX), "16.0EiB");
	fmt_case("rate 0", attr_fmt_rate(buf, sizeof(buf), 0), "unlimited");
	fmt_case("rate 999", attr_fmt_rate(buf, sizeof(buf), 999), "999B/s");
	fmt_case("rate 12.5 MB/s", attr_fmt_rate(buf, sizeof(buf), 12500000), "12.5MB/s");
	fmt_case("rate 40 GB/s", attr_fmt_rate(buf, sizeof(buf), 40000000000ULL), "40GB/s");
	fmt_case("mbps", attr_fmt_mbps(buf, sizeof(buf), 123456789), "123.5MB/s");
	fmt_case("role dest", attr_role_name(RDMAMIG_ROLE_DEST), "dest");
	fmt_case("role 7", attr_role_name(7), "unknown-7");
	fmt_case("state cancelled", attr_state_name(RDMAMIG_STATE_CANCELLED), "cancelled");
}

int main(void)
{
	json_tests();
	lookup_tests();
	value_tests();
	fmt_tests();
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
