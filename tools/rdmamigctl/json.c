// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: a small streaming JSON writer (RFC 8259).
 *
 * Misuse (a value without a key inside an object, unbalanced containers,
 * nesting deeper than JSON_MAX_DEPTH) is a bug in the caller and asserts.
 * Write errors are left in the FILE for the caller's ferror().
 */
#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "json.h"

#define JSON_INDENT	"    "

void json_init(struct json *j, FILE *f, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->pretty = pretty;
}

/*
 * Length of the well-formed UTF-8 sequence at s (Unicode 15, table 3-7:
 * no overlong forms, no surrogates, nothing above U+10FFFF), 0 if none.
 * Never reads past a NUL.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;	/* range of the second byte */
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static const char *json_escape(unsigned char c)
{
	switch (c) {
	case '"':	return "\\\"";
	case '\\':	return "\\\\";
	case '\b':	return "\\b";
	case '\f':	return "\\f";
	case '\n':	return "\\n";
	case '\r':	return "\\r";
	case '\t':	return "\\t";
	default:	return NULL;
	}
}

static void json_write_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	const char *esc;
	size_t n;

	putc('"', f);
	while (*s) {
		esc = json_escape(*s);
		if (esc) {
			fputs(esc, f);
			n = 1;
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s);
			n = 1;
		} else {
			n = utf8_len(s);
			if (n)
				fwrite(s, 1, n, f);
			else
				fputs("\\ufffd", f);	/* skip one bad byte */
		}
		s += n ? n : 1;
	}
	putc('"', f);
}

static void json_newline(struct json *j)
{
	int i;

	if (!j->pretty)
		return;
	putc('\n', j->f);
	for (i = 0; i < j->depth; i++)
		fputs(JSON_INDENT, j->f);
}

/* Before a member of the innermost container: the comma and the indent. */
static void json_member(struct json *j)
{
	if (j->depth == 0)
		return;
	if (!j->empty[j->depth])
		putc(',', j->f);
	j->empty[j->depth] = false;
	json_newline(j);
}

static void json_value_begin(struct json *j)
{
	if (j->key) {
		j->key = false;
		return;
	}
	assert(!j->object[j->depth]);	/* a value in an object needs a key */
	json_member(j);
}

static void json_value_end(struct json *j)
{
	if (j->depth == 0)
		putc('\n', j->f);
}

void json_key(struct json *j, const char *key)
{
	assert(j->depth > 0 && j->object[j->depth] && !j->key);
	json_member(j);
	json_write_string(j->f, key);
	fputs(j->pretty ? ": " : ":", j->f);
	j->key = true;
}

static void json_begin(struct json *j, bool object)
{
	json_value_begin(j);
	assert(j->depth < JSON_MAX_DEPTH);
	j->depth++;
	j->empty[j->depth] = true;
	j->object[j->depth] = object;
	putc(object ? '{' : '[', j->f);
}

static void json_end(struct json *j, bool object)
{
	bool empty;

	assert(j->depth > 0 && j->object[j->depth] == object && !j->key);
	empty = j->empty[j->depth];
	j->depth--;
	if (!empty)
		json_newline(j);
	putc(object ? '}' : ']', j->f);
	json_value_end(j);
}

void json_begin_object(struct json *j)
{
	json_begin(j, true);
}

void json_end_object(struct json *j)
{
	json_end(j, true);
}

void json_begin_array(struct json *j)
{
	json_begin(j, false);
}

void json_end_array(struct json *j)
{
	json_end(j, false);
}

void json_string(struct json *j, const char *s)
{
	json_value_begin(j);
	json_write_string(j->f, s);
	json_value_end(j);
}

void json_uint(struct json *j, uint64_t v)
{
	json_value_begin(j);
	fprintf(j->f, "%" PRIu64, v);
	json_value_end(j);
}

void json_int(struct json *j, int64_t v)
{
	json_value_begin(j);
	fprintf(j->f, "%" PRId64, v);
	json_value_end(j);
}

void json_bool(struct json *j, bool v)
{
	json_value_begin(j);
	fputs(v ? "true" : "false", j->f);
	json_value_end(j);
}

void json_null(struct json *j)
{
	json_value_begin(j);
	fputs("null", j->f);
	json_value_end(j);
}
