/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: the values of the rdmamig family's attributes, parsed from
 * the command line and printed through print.h.
 *
 * Units on the command line, as in tc(8) and QEMU:
 *
 *	rates	N (bytes/s), Nk Nm Ng Nt (bytes/s, powers of 1000, also
 *		kbps mbps ...), Nbit Nkbit Nmbit Ngbit Ntbit (bits/s);
 *		"unlimited" is 0
 *	sizes	N (bytes), Nk Nm Ng Nt (KiB MiB GiB TiB, also written kib,
 *		kb, ...)
 *	times	N or Nms (milliseconds), Ns (seconds)
 *
 * N may have up to six decimals ("1.5g"); the result is rounded to a
 * whole number (of bytes/s, bytes or ms), which must not be 0 unless N
 * is.  Values are checked against the range of their attribute only:
 * what the module accepts is up to the module.
 */
#ifndef RDMAMIGCTL_ATTRS_H
#define RDMAMIGCTL_ATTRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <linux/rdmamig.h>

#include "rdmamigctl.h"

/* Parsers: 0 on success, -1 (and *v untouched) for a bad value. */
int attr_parse_u32(const char *s, uint32_t *v);
int attr_parse_rate(const char *s, uint64_t *v);
int attr_parse_size(const char *s, uint64_t *v);
int attr_parse_ms(const char *s, uint32_t *v);
int attr_parse_on_off(const char *s, bool *v);

/* Text for people; each returns buf. */
#define ATTR_BUF_LEN	32
char *attr_fmt_size(char *buf, size_t len, uint64_t bytes);	/* 1.5MiB */
char *attr_fmt_rate(char *buf, size_t len, uint64_t bytes_per_s); /* 20MB/s */
char *attr_fmt_mbps(char *buf, size_t len, uint64_t bytes_per_s); /* 0.5MB/s */

const char *attr_role_name(uint32_t role);
const char *attr_state_name(uint32_t state);

/*
 * Attribute values given on the command line, read before the request
 * they go in can be built (usage errors come before anything else).
 */
struct attr_set {
	uint64_t given;				/* bit n: attribute n */
	uint64_t value[RDMAMIG_ATTR_MAX + 1];
	uint64_t caps_on, caps_off;		/* RDMAMIG_ATTR_CAPS: changes */
};

/*
 * Every "NAME VALUE" pair left on the command line into set: parameters
 * (max-bandwidth RATE, ...), or capabilities (pin-all on|off).  Returns
 * an exit code; a bad pair is a usage error of object.
 */
int attr_read_params(struct rm *rm, const char *object, struct attr_set *set);
int attr_read_caps(struct rm *rm, const char *object, struct attr_set *set);
/* set's attributes into msg; capabilities changed from caps. */
int attr_put(struct nl_msg *msg, const struct attr_set *set, uint64_t caps);

/*
 * Nested attributes of replies into tb[]: RDMAMIG_ATTR_PARAMS (tb has
 * RDMAMIG_ATTR_MAX + 1 entries) and RDMAMIG_ATTR_STATS (RDMAMIG_STAT_MAX
 * + 1).  0, or -1 if the nest is malformed.
 */
int attr_nest_params(struct nlattr **tb, const struct nlattr *nest);
int attr_nest_stats(struct nlattr **tb, const struct nlattr *nest);

/*
 * Printers.  JSON members go in the open object; text words go after
 * what is already on the line, each preceded by a space (unless said).
 */
void attr_print_caps(const char *key, uint64_t caps);	/* " caps pin-all" */
void attr_print_error(int32_t err);	/* " error ECANCELED (...)" if any */
/*
 * The parameter attributes of tb (a message's, or RDMAMIG_ATTR_PARAMS's),
 * each "NAME VALUE" preceded by lead for the first, sep for the others.
 */
void attr_print_params(struct nlattr **tb, const char *lead, const char *sep);
/*
 * The RDMAMIG_ATTR_STATS nest as the object "stats".  Text: bytes, pages,
 * zero-pages, rounds and throughput; with all, two more lines (preceded
 * by sep) for the registrations and the times.  -1 if it is malformed.
 */
int attr_print_stats(const struct nlattr *nest, const char *sep, bool all);

#endif /* RDMAMIGCTL_ATTRS_H */
