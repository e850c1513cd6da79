/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl: generic netlink socket wrapper on libnl-genl-3.
 */
#ifndef RDMAMIGCTL_NL_H
#define RDMAMIGCTL_NL_H

#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#define RM_NL_ATTR_MAX		255
#define RM_NL_EXTACK_LEN	256

struct rm_nl {
	struct nl_sock *sk;		/* NULL while closed */
	const char *name;		/* of the family */
	int family;			/* resolved family id */
	uint8_t version;		/* family version put in requests */
	int maxattr;
	const struct nla_policy *policy;	/* for the replies */
	uint64_t admin_cmds;		/* bit n: command n needs CAP_NET_ADMIN */

	/* The outcome of the last request. */
	int err;			/* 0 or -errno from the kernel */
	char extack[RM_NL_EXTACK_LEN];	/* the kernel's message, or "" */
	int miss_type;			/* missing attribute, or -1 */
};

/*
 * Called with the attributes of every reply message; tb[] has maxattr + 1
 * entries, validated against the policy.  Returns 0 to go on, or an exit
 * code (RM_EXIT_*) to stop, having said why on stderr.
 */
typedef int (*rm_nl_cb_t)(struct nlattr **tb, void *arg);

/*
 * All functions returning int return an exit code (RM_EXIT_*) and have
 * printed an error message when it is not RM_EXIT_OK.
 */
int rm_nl_open(struct rm_nl *nl);
int rm_nl_open_family(struct rm_nl *nl, const char *name, uint8_t version,
		      int maxattr, const struct nla_policy *policy);
void rm_nl_close(struct rm_nl *nl);

/* Build a request; add attributes with nla_put_*(), then rm_nl_send(). */
struct nl_msg *rm_nl_msg(struct rm_nl *nl, uint8_t cmd, int flags);
/* Send the request (freeing it) and feed the replies to cb. */
int rm_nl_send(struct rm_nl *nl, struct nl_msg *msg, const char *what,
	       rm_nl_cb_t cb, void *arg);

/* A request without attributes: doit (one reply) or dumpit (many). */
int rm_nl_doit(struct rm_nl *nl, uint8_t cmd, const char *what,
	       rm_nl_cb_t cb, void *arg);
int rm_nl_dump(struct rm_nl *nl, uint8_t cmd, const char *what,
	       rm_nl_cb_t cb, void *arg);

/*
 * Notifications: join a multicast group of the family; from then on the
 * socket only receives.  Whenever rm_nl_fd() is readable, rm_nl_events()
 * reads what came and hands each notification of the family to cb, with
 * its command.  The callback returns 0 or an exit code, as above.
 */
typedef int (*rm_nl_event_cb_t)(uint8_t cmd, struct nlattr **tb, void *arg);

int rm_nl_subscribe(struct rm_nl *nl, const char *group);
int rm_nl_fd(const struct rm_nl *nl);
int rm_nl_events(struct rm_nl *nl, rm_nl_event_cb_t cb, void *arg);

#endif /* RDMAMIGCTL_NL_H */
