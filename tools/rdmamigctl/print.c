// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: one printer for text and JSON (see print.h).
 *
 * The buffer is an open_memstream(), opened when first written to.
 * Running out of memory for it ends the program, like any allocation
 * failure of a command line tool would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "print.h"
#include "rdmamigctl.h"

static struct {
	bool json;
	struct json jw;
	FILE *out;		/* the buffer, NULL until written to */
	char *buf;
	size_t len;
} pr;

void pr_init(bool json, bool pretty)
{
	pr.json = json;
	json_init(&pr.jw, NULL, pretty);
}

bool pr_json(void)
{
	return pr.json;
}

static FILE *pr_out(void)
{
	if (!pr.out) {
		pr.out = open_memstream(&pr.buf, &pr.len);
		if (!pr.out) {
			rm_err("cannot buffer the output: %s", strerror(errno));
			exit(RM_EXIT_ERR);
		}
		pr.jw.f = pr.out;
	}
	return pr.out;
}

/* JSON: the key of the next value, if any.  Returns the writer. */
static struct json *pr_key(const char *key)
{
	pr_out();
	if (key)
		json_key(&pr.jw, key);
	return &pr.jw;
}

void pr_open_object(const char *key)
{
	if (pr.json)
		json_begin_object(pr_key(key));
}

void pr_close_object(void)
{
	if (pr.json)
		json_end_object(pr_key(NULL));
}

void pr_open_array(const char *key)
{
	if (pr.json)
		json_begin_array(pr_key(key));
}

void pr_close_array(void)
{
	if (pr.json)
		json_end_array(pr_key(NULL));
}

void pr_string(const char *key, const char *fmt, const char *val)
{
	if (pr.json)
		json_string(pr_key(key), val);
	else if (fmt)
		fprintf(pr_out(), fmt, val);
}

void pr_u32(const char *key, const char *fmt, uint32_t val)
{
	if (pr.json)
		json_uint(pr_key(key), val);
	else if (fmt)
		fprintf(pr_out(), fmt, (unsigned int)val);
}

void pr_u64(const char *key, const char *fmt, uint64_t val)
{
	if (pr.json)
		json_uint(pr_key(key), val);
	else if (fmt)
		fprintf(pr_out(), fmt, (unsigned long long)val);
}

void pr_s64(const char *key, const char *fmt, int64_t val)
{
	if (pr.json)
		json_int(pr_key(key), val);
	else if (fmt)
		fprintf(pr_out(), fmt, (long long)val);
}

void pr_bool(const char *key, const char *fmt, bool val)
{
	if (pr.json)
		json_bool(pr_key(key), val);
	else if (fmt)
		fprintf(pr_out(), fmt, val ? "on" : "off");
}

void pr_text(const char *fmt, ...)
{
	va_list ap;

	if (pr.json)
		return;
	va_start(ap, fmt);
	vfprintf(pr_out(), fmt, ap);
	va_end(ap);
}

static void pr_close_buffer(void)
{
	pr.out = NULL;
	pr.jw.f = NULL;
	free(pr.buf);
	pr.buf = NULL;
	pr.len = 0;
}

int pr_commit(void)
{
	int ret = RM_EXIT_OK;
	bool bad;

	if (!pr.out)
		return RM_EXIT_OK;
	bad = ferror(pr.out);
	if (fclose(pr.out) != 0 || bad) {
		rm_err("cannot buffer the output: out of memory");
		ret = RM_EXIT_ERR;
	} else if (fwrite(pr.buf, 1, pr.len, stdout) != pr.len ||
		   fflush(stdout) != 0) {
		rm_err("cannot write to standard output: %s", strerror(errno));
		ret = RM_EXIT_ERR;
	}
	pr_close_buffer();
	return ret;
}

void pr_discard(void)
{
	if (pr.out) {
		fclose(pr.out);
		pr_close_buffer();
	}
	json_init(&pr.jw, NULL, pr.jw.pretty);
}
