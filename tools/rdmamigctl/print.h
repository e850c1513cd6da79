/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: one printer for text and JSON.
 *
 * Objects describe each field once, with its JSON key and its text
 * format; -j picks which of the two is used:
 *
 *	pr_u32("index", "%u: ", index);		text "0: ", JSON "index":0
 *	pr_string("name", NULL, name);		JSON only
 *	pr_text("\n");				text only
 *
 * A NULL key writes a value without a key (a member of an array).
 * Containers (pr_open_object() ...) only exist in JSON; in text they
 * print nothing.
 *
 * Output is buffered and reaches stdout with pr_commit() only, so a
 * command that fails prints nothing on stdout, never half a JSON
 * document.  Long-running commands commit as they go.
 */
#ifndef RDMAMIGCTL_PRINT_H
#define RDMAMIGCTL_PRINT_H

#include <stdbool.h>
#include <stdint.h>

void pr_init(bool json, bool pretty);
bool pr_json(void);

void pr_open_object(const char *key);
void pr_close_object(void);
void pr_open_array(const char *key);
void pr_close_array(void);

void pr_string(const char *key, const char *fmt, const char *val);
void pr_u32(const char *key, const char *fmt, uint32_t val);
void pr_u64(const char *key, const char *fmt, uint64_t val);
void pr_s64(const char *key, const char *fmt, int64_t val);
/* JSON true or false; text fmt gets "on" or "off". */
void pr_bool(const char *key, const char *fmt, bool val);
void pr_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write what was printed so far to stdout; returns an exit code. */
int pr_commit(void);
/* Drop what was not committed. */
void pr_discard(void);

#endif /* RDMAMIGCTL_PRINT_H */
