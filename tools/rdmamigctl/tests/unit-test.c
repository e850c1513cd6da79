// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of rdmamigctl's JSON writer and command lookup.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
	json_tests();
	lookup_tests();
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
