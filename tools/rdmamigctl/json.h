/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: a small streaming JSON writer.
 *
 * Values are written as they come; the writer inserts the commas, the
 * colons and, when pretty, the newlines and indentation.  Inside an object
 * every value is preceded by json_key().  Each top-level value ends with
 * a newline, so a stream of them is JSON Lines.  Strings are escaped;
 * bytes that are not UTF-8 become U+FFFD, so the output is always valid.
 */
#ifndef RDMAMIGCTL_JSON_H
#define RDMAMIGCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH	16

struct json {
	FILE *f;
	bool pretty;
	int depth;			/* open containers */
	bool key;			/* a key was written, its value is due */
	bool empty[JSON_MAX_DEPTH + 1];	/* container has no member yet */
	bool object[JSON_MAX_DEPTH + 1];	/* container is an object */
};

void json_init(struct json *j, FILE *f, bool pretty);

void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key);

void json_string(struct json *j, const char *s);
void json_uint(struct json *j, uint64_t v);
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

#endif /* RDMAMIGCTL_JSON_H */
