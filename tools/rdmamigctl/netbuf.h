/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdmamigctl protect --net-buffer IFACE: output commit.  The process's
 * outbound packets on IFACE wait in a plug qdisc (net/sched/sch_plug.c)
 * until the backup acknowledged an epoch at or after the one they were
 * sent in, as Remus does: a failover then never takes back what the
 * world has seen.
 */
#ifndef RDMAMIGCTL_NETBUF_H
#define RDMAMIGCTL_NETBUF_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct nl_sock;
struct rtnl_qdisc;

/*
 * sch_plug counts two segments of its queue, the current one and the
 * last closed one (TCQ_PLUG_BUFFER closes the current one; a second
 * BUFFER before the RELEASE_ONE of the first would merge their counts
 * and release packets early).  So at most one closed segment waits: an
 * epoch's stop closes the current segment only if none waits, else the
 * packets of that epoch stay in the current one and go out with a later
 * epoch's acknowledgement - later than they could, never earlier.
 */
struct netbuf {
	struct nl_sock *sk;	/* NETLINK_ROUTE, in the process's namespace */
	struct rtnl_qdisc *q;	/* our plug, the root qdisc of ifname */
	char ifname[IFNAMSIZ];
	int ifindex;
	unsigned int limit;	/* bytes the plug holds; beyond, it drops */
	uint64_t closed;	/* the waiting segment ends at this epoch; 0: none */
	uint64_t segments;	/* closed so far */
	uint64_t released;	/* released by an acknowledgement */
	uint64_t merged;	/* stops that found a segment waiting */
	bool plugged;
};

/*
 * Find IFACE in the network namespace of @pid (nothing changes yet); an
 * error is said on stderr.
 */
int netbuf_open(struct netbuf *nb, const char *ifname, pid_t pid);
/* Install the plug as IFACE's root qdisc: from now on, its packets wait. */
int netbuf_plug(struct netbuf *nb);
/* The process is stopped at epoch @epoch's end: close its segment if none waits. */
int netbuf_epoch(struct netbuf *nb, uint64_t epoch);
/* The backup acknowledged every epoch up to @acked: release what that covers. */
int netbuf_acked(struct netbuf *nb, uint64_t acked);
/*
 * Let everything out and remove the plug (the kernel's default qdisc
 * comes back): protection ended, or the backup is lost.
 */
void netbuf_close(struct netbuf *nb);

#endif /* RDMAMIGCTL_NETBUF_H */
