// SPDX-License-Identifier: GPL-2.0
/*
 * Output commit for rdmamigctl protect (netbuf.h): a plug qdisc driven
 * through libnl-route-3, in the protected process's network namespace.
 *
 * The queue, oldest first:
 *
 *	[released, leaving] [closed: epochs <= closed] [current: since]
 *
 * netbuf_epoch() closes the current segment at an epoch's stop
 * (TCQ_PLUG_BUFFER), netbuf_acked() lets the closed one out once the
 * backup committed its last epoch (TCQ_PLUG_RELEASE_ONE).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/plug.h>
#include <netlink/route/tc.h>

#include "netbuf.h"
#include "rdmamigctl.h"

/* Our root qdisc's handle, "RM:", which the release requests name. */
#define NETBUF_HANDLE	TC_HANDLE(0x524d, 0)
/* Packets the plug holds on a device whose tx_queue_len is 0. */
#define NETBUF_PACKETS	1000

/*
 * A NETLINK_ROUTE socket in @pid's network namespace: a socket stays in
 * the namespace it was made in, so we enter it only for nl_connect().
 */
static int netbuf_socket(struct netbuf *nb, pid_t pid)
{
	char path[64];
	struct stat a, b;
	int self, target, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0 || fstat(self, &a) || fstat(target, &b)) {
		err = -errno;
		rm_err("protect: --net-buffer: cannot open the network namespace of pid %d: %s",
		       (int)pid, strerror(-err));
		goto out;
	}
	nb->sk = nl_socket_alloc();
	if (!nb->sk) {
		err = -ENOMEM;
		rm_err("out of memory");
		goto out;
	}
	if (a.st_ino != b.st_ino && setns(target, CLONE_NEWNET)) {
		err = -errno;
		rm_err("protect: --net-buffer: cannot enter the network namespace of pid %d: %s",
		       (int)pid, strerror(-err));
		goto out;
	}
	err = nl_connect(nb->sk, NETLINK_ROUTE);
	if (a.st_ino != b.st_ino && setns(self, CLONE_NEWNET)) {
		/* Our own namespace: every later connection would be wrong. */
		err = -errno;
		rm_err("protect: cannot return to our network namespace: %s", strerror(-err));
		goto out;
	}
	if (err) {
		rm_err("protect: --net-buffer: rtnetlink: %s", nl_geterror(err));
		err = -EIO;
	}
out:
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return err;
}

/* Send the qdisc as it is now (kind, handle, plug action) as a change. */
static int netbuf_send(struct netbuf *nb, int flags, const char *what)
{
	int err = rtnl_qdisc_add(nb->sk, nb->q, flags);

	if (err < 0) {
		rm_err("protect: --net-buffer %s: %s: %s", nb->ifname, what, nl_geterror(err));
		return -EIO;
	}
	return 0;
}

int netbuf_open(struct netbuf *nb, const char *ifname, pid_t pid)
{
	struct rtnl_link *link = NULL;
	int err;

	memset(nb, 0, sizeof(*nb));
	if (strlen(ifname) >= sizeof(nb->ifname)) {
		rm_err("protect: --net-buffer: interface name '%s' too long (at most %zu characters)",
		       ifname, sizeof(nb->ifname) - 1);
		return -EINVAL;
	}
	snprintf(nb->ifname, sizeof(nb->ifname), "%s", ifname);
	err = netbuf_socket(nb, pid);
	if (err)
		goto fail;
	err = rtnl_link_get_kernel(nb->sk, 0, ifname, &link);
	if (err < 0) {
		rm_err("protect: --net-buffer: no interface %s in the network namespace of pid %d: %s",
		       ifname, (int)pid, nl_geterror(err));
		err = -ENODEV;
		goto fail;
	}
	nb->ifindex = rtnl_link_get_ifindex(link);
	/*
	 * The plug's limit in bytes, which sch_plug takes from the options
	 * we must send (0 would drop every packet): what it would choose
	 * without them, tx_queue_len packets of the MTU and an Ethernet
	 * header, with 1000 packets for a device without a queue (veth).
	 */
	nb->limit = (rtnl_link_get_txqlen(link) ?: NETBUF_PACKETS) *
		    (rtnl_link_get_mtu(link) + 14);
	rtnl_link_put(link);

	nb->q = rtnl_qdisc_alloc();
	if (!nb->q) {
		err = -ENOMEM;
		rm_err("out of memory");
		goto fail;
	}
	rtnl_tc_set_ifindex(TC_CAST(nb->q), nb->ifindex);
	rtnl_tc_set_parent(TC_CAST(nb->q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(nb->q), NETBUF_HANDLE);
	err = rtnl_tc_set_kind(TC_CAST(nb->q), "plug");
	if (err < 0) {
		rm_err("protect: --net-buffer: libnl-route has no plug qdisc: %s", nl_geterror(err));
		err = -EOPNOTSUPP;
		goto fail;
	}
	return 0;
fail:
	netbuf_close(nb);
	return err;
}

int netbuf_plug(struct netbuf *nb)
{
	int err;

	/*
	 * As tc qdisc replace: the interface's root qdisc becomes ours, and
	 * holds packets at once (sch_plug starts throttled).
	 */
	rtnl_qdisc_plug_set_limit(nb->q, nb->limit);
	rtnl_qdisc_plug_buffer(nb->q);
	err = netbuf_send(nb, NLM_F_CREATE | NLM_F_REPLACE,
			  "cannot add a plug qdisc (is sch_plug available?)");
	if (!err)
		nb->plugged = true;
	return err;
}

int netbuf_epoch(struct netbuf *nb, uint64_t epoch)
{
	int err;

	if (!nb->plugged)
		return 0;
	if (nb->closed) {
		nb->merged++;
		return 0;
	}
	rtnl_qdisc_plug_buffer(nb->q);
	err = netbuf_send(nb, 0, "cannot close an epoch's packets");
	if (err)
		return err;
	nb->closed = epoch;
	nb->segments++;
	return 0;
}

int netbuf_acked(struct netbuf *nb, uint64_t acked)
{
	int err;

	if (!nb->plugged || !nb->closed || acked < nb->closed)
		return 0;
	rtnl_qdisc_plug_release_one(nb->q);
	err = netbuf_send(nb, 0, "cannot release an acknowledged epoch's packets");
	if (err)
		return err;
	nb->closed = 0;
	nb->released++;
	return 0;
}

/* Packets in our qdisc now; -1: unknown. */
static long long netbuf_qlen(struct netbuf *nb)
{
	struct nl_cache *cache;
	struct rtnl_qdisc *q;
	long long qlen = -1;

	if (rtnl_qdisc_alloc_cache(nb->sk, &cache) < 0)
		return -1;
	q = rtnl_qdisc_get(cache, nb->ifindex, NETBUF_HANDLE);
	if (q) {
		qlen = rtnl_tc_get_stat(TC_CAST(q), RTNL_TC_QLEN);
		rtnl_qdisc_put(q);
	}
	nl_cache_free(cache);
	return qlen;
}

void netbuf_close(struct netbuf *nb)
{
	int i;

	if (nb->plugged) {
		/*
		 * Everything out first, and gone to the device: deleting the
		 * qdisc drops what it still holds (a second at most).
		 */
		rtnl_qdisc_plug_release_indefinite(nb->q);
		netbuf_send(nb, 0, "cannot release the packets held");
		for (i = 0; i < 100 && netbuf_qlen(nb) > 0; i++)
			usleep(10000);
		if (rtnl_qdisc_delete(nb->sk, nb->q) < 0)
			rm_err("protect: --net-buffer %s: cannot remove the plug qdisc: "
			       "remove it with 'tc qdisc del dev %s root' in the process's namespace",
			       nb->ifname, nb->ifname);
		nb->plugged = false;
	}
	if (nb->q)
		rtnl_qdisc_put(nb->q);
	nb->q = NULL;
	if (nb->sk)
		nl_socket_free(nb->sk);
	nb->sk = NULL;
}
