// SPDX-License-Identifier: GPL-2.0
/*
 * rdmamigctl: the values of the rdmamig family's attributes (see attrs.h).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/rdmamig.h>

#include "attrs.h"
#include "print.h"

/* ---- Numbers with units ------------------------------------------------ */

struct unit {
	const char *name;	/* suffix, case-insensitive */
	uint64_t mul, div;	/* value = number * mul / div */
};

#define K1	1000ULL
#define M1	1000000ULL
#define G1	1000000000ULL
#define T1	1000000000000ULL

static const struct unit rate_units[] = {
	{ "", 1, 1 },		{ "bps", 1, 1 },
	{ "k", K1, 1 },		{ "kb", K1, 1 },	{ "kbps", K1, 1 },
	{ "m", M1, 1 },		{ "mb", M1, 1 },	{ "mbps", M1, 1 },
	{ "g", G1, 1 },		{ "gb", G1, 1 },	{ "gbps", G1, 1 },
	{ "t", T1, 1 },		{ "tb", T1, 1 },	{ "tbps", T1, 1 },
	{ "bit", 1, 8 },	{ "kbit", K1, 8 },	{ "mbit", M1, 8 },
	{ "gbit", G1, 8 },	{ "tbit", T1, 8 },
	{ NULL, 0, 0 },
};

static const struct unit size_units[] = {
	{ "", 1, 1 },		{ "b", 1, 1 },
	{ "k", 1ULL << 10, 1 },	{ "kb", 1ULL << 10, 1 },  { "kib", 1ULL << 10, 1 },
	{ "m", 1ULL << 20, 1 },	{ "mb", 1ULL << 20, 1 },  { "mib", 1ULL << 20, 1 },
	{ "g", 1ULL << 30, 1 },	{ "gb", 1ULL << 30, 1 },  { "gib", 1ULL << 30, 1 },
	{ "t", 1ULL << 40, 1 },	{ "tb", 1ULL << 40, 1 },  { "tib", 1ULL << 40, 1 },
	{ NULL, 0, 0 },
};

static const struct unit plain_units[] = {
	{ "", 1, 1 },
	{ NULL, 0, 0 },
};

static const struct unit ms_units[] = {
	{ "", 1, 1 },		{ "ms", 1, 1 },		{ "s", 1000, 1 },
	{ NULL, 0, 0 },
};

#define FRAC_DIGITS	6
#define FRAC_SCALE	1000000ULL

/*
 * DIGITS[.DIGITS][UNIT] into *v, rounded to the nearest integer; a
 * non-zero number must not round to 0.  Up to FRAC_DIGITS decimals.
 */
static int parse_scaled(const char *s, const struct unit *units, uint64_t max,
			uint64_t *v)
{
	unsigned __int128 mant, num, den;
	unsigned long long ipart;
	uint64_t frac = 0, scale = FRAC_SCALE;
	const struct unit *u;
	const char *p;
	char *end;
	int digits = 0;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	ipart = strtoull(s, &end, 10);
	if (errno)
		return -1;
	p = end;
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++) {
			if (++digits > FRAC_DIGITS)
				return -1;
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
		if (!digits)
			return -1;
		while (digits++ < FRAC_DIGITS)
			frac *= 10;
	}
	for (u = units; u->name; u++)
		if (!strcasecmp(p, u->name))
			break;
	if (!u->name)
		return -1;

	mant = (unsigned __int128)ipart * scale + frac;
	num = mant * u->mul;
	den = (unsigned __int128)scale * u->div;
	num = (num + den / 2) / den;
	if (num > max || (!num && mant))
		return -1;
	*v = (uint64_t)num;
	return 0;
}

int attr_parse_u32(const char *s, uint32_t *v)
{
	uint64_t n;

	if (strchr(s, '.') || parse_scaled(s, plain_units, UINT32_MAX, &n))
		return -1;
	*v = (uint32_t)n;
	return 0;
}

int attr_parse_rate(const char *s, uint64_t *v)
{
	char buf[64];
	size_t len = strlen(s);

	if (!strcmp(s, "unlimited") || !strcmp(s, "none")) {
		*v = 0;
		return 0;
	}
	/* "20MB/s" is "20MB". */
	if (len > 2 && len < sizeof(buf) && !strcmp(s + len - 2, "/s")) {
		memcpy(buf, s, len - 2);
		buf[len - 2] = '\0';
		s = buf;
	}
	return parse_scaled(s, rate_units, UINT64_MAX, v);
}

int attr_parse_size(const char *s, uint64_t *v)
{
	return parse_scaled(s, size_units, UINT64_MAX, v);
}

int attr_parse_ms(const char *s, uint32_t *v)
{
	uint64_t n;

	if (parse_scaled(s, ms_units, UINT32_MAX, &n))
		return -1;
	*v = (uint32_t)n;
	return 0;
}

int attr_parse_on_off(const char *s, bool *v)
{
	if (!strcmp(s, "on") || !strcmp(s, "true")) {
		*v = true;
		return 0;
	}
	if (!strcmp(s, "off") || !strcmp(s, "false")) {
		*v = false;
		return 0;
	}
	return -1;
}

/* ---- Text for people ---------------------------------------------------- */

/* value / unit with one decimal, or whole when it divides. */
static void fmt_scaled(char *buf, size_t len, uint64_t value, uint64_t unit,
		       const char *name)
{
	if (value % unit == 0)
		snprintf(buf, len, "%" PRIu64 "%s", value / unit, name);
	else
		snprintf(buf, len, "%.1f%s", (double)value / (double)unit, name);
}

char *attr_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	unsigned int i = 0;

	while (i + 1 < sizeof(names) / sizeof(names[0]) &&
	       bytes >= 1ULL << (10 * (i + 1)))
		i++;
	fmt_scaled(buf, len, bytes, 1ULL << (10 * i), names[i]);
	return buf;
}

char *attr_fmt_rate(char *buf, size_t len, uint64_t bytes_per_s)
{
	static const char *const names[] = { "B/s", "kB/s", "MB/s", "GB/s",
					     "TB/s" };
	uint64_t unit = 1;
	unsigned int i = 0;

	if (!bytes_per_s) {
		snprintf(buf, len, "unlimited");
		return buf;
	}
	while (i + 1 < sizeof(names) / sizeof(names[0]) &&
	       bytes_per_s >= unit * 1000) {
		unit *= 1000;
		i++;
	}
	fmt_scaled(buf, len, bytes_per_s, unit, names[i]);
	return buf;
}

char *attr_fmt_mbps(char *buf, size_t len, uint64_t bytes_per_s)
{
	snprintf(buf, len, "%.1fMB/s", (double)bytes_per_s / 1e6);
	return buf;
}

static const char *enum_name(const char *const *names, size_t n, uint32_t v,
			     char *buf, size_t len)
{
	if (v < n && names[v])
		return names[v];
	snprintf(buf, len, "unknown-%u", v);
	return buf;
}

const char *attr_role_name(uint32_t role)
{
	static const char *const names[] = {
		[RDMAMIG_ROLE_NONE] = "none",
		[RDMAMIG_ROLE_SOURCE] = "source",
		[RDMAMIG_ROLE_DEST] = "dest",
	};
	static char buf[ATTR_BUF_LEN];

	return enum_name(names, sizeof(names) / sizeof(names[0]), role, buf,
			 sizeof(buf));
}

const char *attr_state_name(uint32_t state)
{
	static const char *const names[] = {
		[RDMAMIG_STATE_NONE] = "none",
		[RDMAMIG_STATE_SETUP] = "setup",
		[RDMAMIG_STATE_CONNECTED] = "connected",
		[RDMAMIG_STATE_ACTIVE] = "active",
		[RDMAMIG_STATE_COMPLETED] = "completed",
		[RDMAMIG_STATE_FAILED] = "failed",
		[RDMAMIG_STATE_CANCELLED] = "cancelled",
		[RDMAMIG_STATE_POSTCOPY] = "postcopy",
	};
	static char buf[ATTR_BUF_LEN];

	return enum_name(names, sizeof(names) / sizeof(names[0]), state, buf,
			 sizeof(buf));
}

/* ---- Parameters on the command line --------------------------------- */

enum param_kind { P_RATE, P_SIZE, P_MS, P_MS_OFF, P_U32, P_AUTH };

struct param {
	const char *name;
	int attr;
	enum param_kind kind;
	const char *what;	/* what VALUE must be, for errors */
};

/* The spelling in Documentation/rdmamigctl.rst first, aliases after. */
static const struct param params[] = {
	{ "max-bandwidth", RDMAMIG_ATTR_MAX_BANDWIDTH, P_RATE,
	  "a rate such as 40g, 100mbit or unlimited" },
	{ "max-registered", RDMAMIG_ATTR_MAX_REGISTERED, P_SIZE,
	  "a size such as 256m or 1g" },
	{ "keepalive", RDMAMIG_ATTR_KEEPALIVE_MS, P_MS_OFF,
	  "milliseconds, or off" },
	{ "keepalive-ms", RDMAMIG_ATTR_KEEPALIVE_MS, P_MS_OFF,
	  "milliseconds, or off" },
	{ "downtime-limit", RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, P_MS,
	  "milliseconds" },
	{ "downtime-limit-ms", RDMAMIG_ATTR_DOWNTIME_LIMIT_MS, P_MS,
	  "milliseconds" },
	{ "max-rounds", RDMAMIG_ATTR_MAX_ROUNDS, P_U32, "a number" },
	{ "auth", RDMAMIG_ATTR_AUTH, P_AUTH, "required or off" },
	{ "channels", RDMAMIG_ATTR_CHANNELS, P_U32, "a number from 1 to 8" },
	{ NULL, 0, 0, NULL },
};

/*
 * Capability names; the bit is the index.  Those in SET_CAPS can be set;
 * "auth" (the peer proved the secret; param auth) and "sparse" (module
 * parameter sparse of both ends) are only reported, as "mc" (micro-
 * checkpointing, only through /dev/rdmamig so far).
 */
static const char *const cap_names[] = { "pin-all", "auth", "sparse", "pull", "postcopy",
					 "mc" };
#define SET_CAPS (RDMAMIG_CAP_PIN_ALL | RDMAMIG_CAP_PULL)
#define NCAP_NAMES (sizeof(cap_names) / sizeof(cap_names[0]))

/* "max_bandwidth" is "max-bandwidth"; "rdma-pin-all" is QEMU's name. */
static void normalize(const char *word, char *buf, size_t len)
{
	size_t i;

	if (!strncmp(word, "rdma-", 5) || !strncmp(word, "rdma_", 5))
		word += 5;
	for (i = 0; word[i] && i + 1 < len; i++)
		buf[i] = word[i] == '_' ? '-' : word[i];
	buf[i] = '\0';
}

/* Exact name, or a prefix of names that all mean the same attribute. */
static const struct param *param_lookup(const char *word)
{
	const struct param *p, *found = NULL;
	char name[64];
	size_t len;

	normalize(word, name, sizeof(name));
	len = strlen(name);
	if (!len)
		return NULL;
	for (p = params; p->name; p++) {
		if (!strcmp(p->name, name))
			return p;
		if (strncmp(p->name, name, len))
			continue;
		if (found && found->attr != p->attr)
			return NULL;	/* ambiguous */
		found = p;
	}
	return found;
}

static int cap_lookup(const char *word)
{
	char name[64];
	size_t i;

	normalize(word, name, sizeof(name));
	for (i = 0; i < NCAP_NAMES; i++)
		if ((SET_CAPS & (1ULL << i)) && !strcmp(cap_names[i], name))
			return (int)i;
	return -1;
}

static int read_param(const char *object, struct attr_set *set,
		      const struct param *p, const char *value)
{
	uint64_t v64 = 0;
	uint32_t v32 = 0;
	int bad;

	switch (p->kind) {
	case P_RATE:
		bad = attr_parse_rate(value, &v64);
		break;
	case P_SIZE:
		bad = attr_parse_size(value, &v64);
		break;
	case P_MS_OFF:
		if (!strcmp(value, "off")) {
			bad = 0;
			break;
		}
		/* fall through */
	case P_MS:
		bad = attr_parse_ms(value, &v32);
		v64 = v32;
		break;
	case P_AUTH:
		bad = strcmp(value, "required") && strcmp(value, "off");
		v64 = strcmp(value, "off") ? RDMAMIG_AUTH_REQUIRED : RDMAMIG_AUTH_OFF;
		break;
	default:
		bad = attr_parse_u32(value, &v32);
		v64 = v32;
		break;
	}
	if (bad)
		return rm_usage_err(object, "invalid %s '%s': expected %s",
				    p->name, value, p->what);
	set->value[p->attr] = v64;
	return RM_EXIT_OK;
}

/* The current word and the next as NAME VALUE; NULL if there is none. */
static const char *pair_value(struct rm *rm, const char *object,
			      const char *name)
{
	const char *value;

	rm_shift(rm);
	value = rm_arg(rm);
	if (!value) {
		rm_usage_err(object, "%s needs a value", name);
		return NULL;
	}
	rm_shift(rm);
	return value;
}

int attr_read_params(struct rm *rm, const char *object, struct attr_set *set)
{
	const struct param *p;
	const char *name, *value;
	int ret;

	if (!rm_arg(rm))
		return rm_usage_err(object, "no parameter given");
	while ((name = rm_arg(rm))) {
		p = param_lookup(name);
		if (!p)
			return rm_usage_err(object, "unknown parameter '%s'", name);
		if (set->given & (1ULL << p->attr))
			return rm_usage_err(object, "%s given twice", p->name);
		value = pair_value(rm, object, name);
		if (!value)
			return RM_EXIT_USAGE;
		ret = read_param(object, set, p, value);
		if (ret)
			return ret;
		set->given |= 1ULL << p->attr;
	}
	return RM_EXIT_OK;
}

int attr_read_caps(struct rm *rm, const char *object, struct attr_set *set)
{
	const char *name, *value;
	uint64_t bit;
	bool on;
	int i;

	if (!rm_arg(rm))
		return rm_usage_err(object, "no capability given");
	while ((name = rm_arg(rm))) {
		i = cap_lookup(name);
		if (i < 0)
			return rm_usage_err(object, "unknown capability '%s'", name);
		bit = 1ULL << i;
		if ((set->caps_on | set->caps_off) & bit)
			return rm_usage_err(object, "%s given twice", cap_names[i]);
		value = pair_value(rm, object, name);
		if (!value)
			return RM_EXIT_USAGE;
		if (attr_parse_on_off(value, &on))
			return rm_usage_err(object, "invalid %s '%s': expected on or off",
					    cap_names[i], value);
		if (on)
			set->caps_on |= bit;
		else
			set->caps_off |= bit;
	}
	set->given |= 1ULL << RDMAMIG_ATTR_CAPS;
	return RM_EXIT_OK;
}

int attr_put(struct nl_msg *msg, const struct attr_set *set, uint64_t caps)
{
	const struct param *p;
	uint64_t done = 0;
	int err = 0;

	if (set->given & (1ULL << RDMAMIG_ATTR_CAPS))
		err = nla_put_u64(msg, RDMAMIG_ATTR_CAPS,
				  (caps | set->caps_on) & ~set->caps_off);
	for (p = params; p->name && err >= 0; p++) {
		if (!(set->given & ~done & (1ULL << p->attr)))
			continue;
		done |= 1ULL << p->attr;
		if (p->kind == P_RATE || p->kind == P_SIZE)
			err = nla_put_u64(msg, p->attr, set->value[p->attr]);
		else
			err = nla_put_u32(msg, p->attr, (uint32_t)set->value[p->attr]);
	}
	if (err < 0) {
		rm_err("cannot build a netlink request: out of memory");
		return RM_EXIT_ERR;
	}
	return RM_EXIT_OK;
}

/* ---- Nested attributes ---------------------------------------------------- */

int attr_nest_params(struct nlattr **tb, const struct nlattr *nest)
{
	static const struct nla_policy policy[RDMAMIG_ATTR_MAX + 1] = {
		[RDMAMIG_ATTR_CAPS]		= { .type = NLA_U64 },
		[RDMAMIG_ATTR_MAX_BANDWIDTH]	= { .type = NLA_U64 },
		[RDMAMIG_ATTR_MAX_REGISTERED]	= { .type = NLA_U64 },
		[RDMAMIG_ATTR_KEEPALIVE_MS]	= { .type = NLA_U32 },
		[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS] = { .type = NLA_U32 },
		[RDMAMIG_ATTR_MAX_ROUNDS]	= { .type = NLA_U32 },
		[RDMAMIG_ATTR_AUTH]		= { .type = NLA_U32 },
		[RDMAMIG_ATTR_CHANNELS]		= { .type = NLA_U32 },
	};

	return nla_parse_nested(tb, RDMAMIG_ATTR_MAX, (struct nlattr *)nest,
				policy) < 0 ? -1 : 0;
}

int attr_nest_stats(struct nlattr **tb, const struct nlattr *nest)
{
	static struct nla_policy policy[RDMAMIG_STAT_MAX + 1];
	int i;

	for (i = 1; i <= RDMAMIG_STAT_MAX; i++)
		policy[i].type = NLA_U64;
	policy[RDMAMIG_STAT_PAD].type = NLA_UNSPEC;
	return nla_parse_nested(tb, RDMAMIG_STAT_MAX, (struct nlattr *)nest,
				policy) < 0 ? -1 : 0;
}

/* ---- Printers -------------------------------------------------------------- */

void attr_print_caps(const char *key, uint64_t caps)
{
	const char *sep = "";
	char other[ATTR_BUF_LEN];
	size_t i;

	pr_text(" %s", key);
	pr_open_array(key);
	for (i = 0; i < NCAP_NAMES; i++) {
		if (!(caps & (1ULL << i)))
			continue;
		pr_string(NULL, NULL, cap_names[i]);
		pr_text("%s%s", *sep ? "," : " ", cap_names[i]);
		sep = ",";
	}
	caps &= ~((1ULL << NCAP_NAMES) - 1);
	if (caps) {
		/* Bits this rdmamigctl has no name for. */
		snprintf(other, sizeof(other), "0x%" PRIx64, caps);
		pr_string(NULL, NULL, other);
		pr_text("%s%s", *sep ? "," : " ", other);
		sep = ",";
	}
	if (!*sep)
		pr_text(" none");
	pr_close_array();
}

void attr_print_error(int32_t err)
{
	const char *name = NULL;

	pr_s64("error", NULL, err);
	if (!err)
		return;
	pr_string("error_text", NULL, strerror(-err));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	name = strerrorname_np(-err);
#endif
	if (name)
		pr_text(" error %s (%s)", name, strerror(-err));
	else
		pr_text(" error %d (%s)", (int)err, strerror(-err));
}

void attr_print_params(struct nlattr **tb, const char *lead, const char *sep)
{
	const char *pre = lead;	/* before the next word */
	char buf[ATTR_BUF_LEN];
	struct nlattr *a;

	if ((a = tb[RDMAMIG_ATTR_MAX_BANDWIDTH])) {
		pr_u64("max_bandwidth", NULL, nla_get_u64(a));
		pr_text("%smax-bandwidth %s", pre,
			attr_fmt_rate(buf, sizeof(buf), nla_get_u64(a)));
		pre = sep;
	}
	if ((a = tb[RDMAMIG_ATTR_MAX_REGISTERED])) {
		pr_u64("max_registered", NULL, nla_get_u64(a));
		pr_text("%smax-registered %s", pre,
			attr_fmt_size(buf, sizeof(buf), nla_get_u64(a)));
		pre = sep;
	}
	if ((a = tb[RDMAMIG_ATTR_KEEPALIVE_MS])) {
		pr_u32("keepalive_ms", NULL, nla_get_u32(a));
		if (nla_get_u32(a))
			pr_text("%skeepalive %ums", pre, nla_get_u32(a));
		else
			pr_text("%skeepalive off", pre);
		pre = sep;
	}
	if ((a = tb[RDMAMIG_ATTR_DOWNTIME_LIMIT_MS])) {
		pr_u32("downtime_limit_ms", NULL, nla_get_u32(a));
		pr_text("%sdowntime-limit %ums", pre, nla_get_u32(a));
		pre = sep;
	}
	if ((a = tb[RDMAMIG_ATTR_MAX_ROUNDS])) {
		pr_u32("max_rounds", NULL, nla_get_u32(a));
		pr_text("%smax-rounds %u", pre, nla_get_u32(a));
		pre = sep;
	}
	if ((a = tb[RDMAMIG_ATTR_AUTH])) {
		const char *v = nla_get_u32(a) == RDMAMIG_AUTH_OFF ? "off" : "required";

		pr_string("auth", NULL, v);
		pr_text("%sauth %s", pre, v);
		pre = sep;
	}
	if ((a = tb[RDMAMIG_ATTR_CHANNELS])) {
		pr_u32("channels", NULL, nla_get_u32(a));
		pr_text("%schannels %u", pre, nla_get_u32(a));
	}
}

enum stat_kind { S_NUM, S_SIZE, S_MBPS, S_MS };

static const struct stat_field {
	int attr;
	const char *key;	/* JSON */
	const char *name;	/* text */
	enum stat_kind kind;
	int line;		/* text: lines 0 (always), 1 to 3 */
} stat_fields[] = {
	{ RDMAMIG_STAT_BYTES, "bytes", "bytes", S_SIZE, 0 },
	{ RDMAMIG_STAT_PAGES, "pages", "pages", S_NUM, 0 },
	{ RDMAMIG_STAT_ZERO_PAGES, "zero_pages", "zero-pages", S_NUM, 0 },
	{ RDMAMIG_STAT_ROUNDS, "rounds", "rounds", S_NUM, 0 },
	{ RDMAMIG_STAT_THROUGHPUT, "throughput", "throughput", S_MBPS, 0 },
	{ RDMAMIG_STAT_CHUNKS_REGISTERED, "chunks_registered",
	  "chunks-registered", S_NUM, 1 },
	{ RDMAMIG_STAT_CHUNKS_UNREGISTERED, "chunks_unregistered",
	  "chunks-unregistered", S_NUM, 1 },
	{ RDMAMIG_STAT_REGISTERED_BYTES, "registered_bytes", "registered",
	  S_SIZE, 1 },
	{ RDMAMIG_STAT_DEVICE_STATE_BYTES, "device_state_bytes",
	  "device-state", S_SIZE, 1 },
	{ RDMAMIG_STAT_ZERO_SKIPPED, "zero_skipped", "zero-skipped", S_NUM, 1 },
	{ RDMAMIG_STAT_SETUP_MS, "setup_ms", "setup", S_MS, 2 },
	{ RDMAMIG_STAT_TOTAL_MS, "total_ms", "total", S_MS, 2 },
	{ RDMAMIG_STAT_DOWNTIME_MS, "downtime_ms", "downtime", S_MS, 2 },
	{ RDMAMIG_STAT_CHANNELS, "channels", "channels", S_NUM, 2 },
	/* Where the time went (Documentation/uapi.rst, struct rdmamig_stats). */
	{ RDMAMIG_STAT_SCAN_MS, "scan_ms", "scan", S_MS, 3 },
	{ RDMAMIG_STAT_KEYS_WAIT_MS, "keys_wait_ms", "keys-wait", S_MS, 3 },
	{ RDMAMIG_STAT_WRITES_WAIT_MS, "writes_wait_ms", "writes-wait", S_MS, 3 },
	{ RDMAMIG_STAT_REGISTER_MS, "register_ms", "register", S_MS, 3 },
	{ RDMAMIG_STAT_ZERO_MS, "zero_ms", "zero", S_MS, 3 },
	/* Post-copy (both sides; the fault figures are the destination's). */
	{ RDMAMIG_STAT_POSTCOPY_OWED, "postcopy_owed", "postcopy-owed", S_NUM, 4 },
	{ RDMAMIG_STAT_POSTCOPY_MS, "postcopy_ms", "postcopy", S_MS, 4 },
	{ RDMAMIG_STAT_POSTCOPY_FAULTS, "postcopy_faults", "faults", S_NUM, 4 },
	{ RDMAMIG_STAT_POSTCOPY_FAULT_PAGES, "postcopy_fault_pages", "fault-pages",
	  S_NUM, 4 },
	{ RDMAMIG_STAT_POSTCOPY_SWEEP_PAGES, "postcopy_sweep_pages", "sweep-pages",
	  S_NUM, 4 },
	{ RDMAMIG_STAT_POSTCOPY_FETCHED_TWICE, "postcopy_fetched_twice",
	  "fetched-twice", S_NUM, 4 },
	{ RDMAMIG_STAT_FAULT_US_P50, "fault_us_p50", "fault-us-p50", S_NUM, 4 },
	{ RDMAMIG_STAT_FAULT_US_P99, "fault_us_p99", "fault-us-p99", S_NUM, 4 },
	{ RDMAMIG_STAT_FAULT_US_MAX, "fault_us_max", "fault-us-max", S_NUM, 4 },
	{ RDMAMIG_STAT_POSTCOPY_DOWNTIME_US, "postcopy_downtime_us", "postcopy-downtime-us",
	  S_NUM, 4 },
	/* Micro-checkpointing (Documentation/uapi.rst, struct rdmamig_stats). */
	{ RDMAMIG_STAT_MC_EPOCHS, "mc_epochs", "epochs", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_ACKED, "mc_acked", "acked", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_PAGES, "mc_pages", "epoch-pages", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_BYTES, "mc_bytes", "epoch-bytes", S_SIZE, 5 },
	{ RDMAMIG_STAT_MC_LAST_PAGES, "mc_last_pages", "last-pages", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_PAUSE_US_LAST, "mc_pause_us_last", "pause-us-last", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_PAUSE_US_MAX, "mc_pause_us_max", "pause-us-max", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_PAUSE_US_TOTAL, "mc_pause_us_total", "pause-us-total", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_ACK_US_LAST, "mc_ack_us_last", "ack-us-last", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_ACK_US_MAX, "mc_ack_us_max", "ack-us-max", S_NUM, 5 },
	{ RDMAMIG_STAT_MC_DISCARDED, "mc_discarded", "discarded", S_NUM, 5 },
};

int attr_print_stats(const struct nlattr *nest, const char *sep, bool all)
{
	struct nlattr *tb[RDMAMIG_STAT_MAX + 1];
	char buf[ATTR_BUF_LEN];
	const struct stat_field *f;
	size_t i;
	int line = 0;
	uint64_t v;

	if (attr_nest_stats(tb, nest))
		return -1;

	pr_open_object("stats");
	for (i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		f = &stat_fields[i];
		if (!tb[f->attr])
			continue;
		v = nla_get_u64(tb[f->attr]);
		pr_u64(f->key, NULL, v);
		if (f->line && !all)
			continue;
		/* Post-copy's line only for a session that switched. */
		if (f->line == 4 && (!tb[RDMAMIG_STAT_POSTCOPY_OWED] ||
				     !nla_get_u64(tb[RDMAMIG_STAT_POSTCOPY_OWED])))
			continue;
		/* Checkpointing's only for a session that took epochs. */
		if (f->line == 5 && (!tb[RDMAMIG_STAT_MC_EPOCHS] ||
				     !nla_get_u64(tb[RDMAMIG_STAT_MC_EPOCHS])))
			continue;
		if (f->line != line) {
			pr_text("%s", sep);
			line = f->line;
		}
		switch (f->kind) {
		case S_SIZE:
			pr_text(" %s %s", f->name, attr_fmt_size(buf, sizeof(buf), v));
			break;
		case S_MBPS:
			pr_text(" %s %s", f->name, attr_fmt_mbps(buf, sizeof(buf), v));
			break;
		case S_MS:
			pr_text(" %s %" PRIu64 "ms", f->name, v);
			break;
		default:
			pr_text(" %s %" PRIu64, f->name, v);
			break;
		}
	}
	pr_close_object();
	return 0;
}
