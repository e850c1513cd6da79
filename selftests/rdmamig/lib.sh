#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for rdmamig's shell kselftests: KTAP output, skipping,
# and the testbed's environment (selftests/vm/guest-init.sh exports it).

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RDMAMIGCTL=${RDMAMIGCTL:-$TOP/tools/rdmamigctl/rdmamigctl}
RDMAMIG_IBDEV=${RDMAMIG_IBDEV:-rxe0}
RDMAMIG_NETDEV=${RDMAMIG_NETDEV:-eth0}

# Peer authentication is required by default: rdmamig-vmm and rdmamigctl
# read the secret from this file.  The testbed gives both VMs one; run by
# hand, a test makes its own.
if [ -z "${RDMAMIG_SECRET_FILE:-}" ] || [ ! -s "$RDMAMIG_SECRET_FILE" ]; then
	RDMAMIG_SECRET_FILE=${TMPDIR:-/tmp}/rdmamig-selftest-secret
	[ -s "$RDMAMIG_SECRET_FILE" ] ||
		(umask 077 && head -c 32 /dev/urandom > "$RDMAMIG_SECRET_FILE")
fi
export RDMAMIG_SECRET_FILE

ktap_n=0
ktap_failed=0

ktap_plan()
{
	echo "TAP version 13"
	echo "1..$1"
}

ktap_ok()
{
	ktap_n=$((ktap_n + 1))
	echo "ok $ktap_n $*"
}

ktap_fail()
{
	ktap_n=$((ktap_n + 1))
	ktap_failed=$((ktap_failed + 1))
	echo "not ok $ktap_n $*"
}

ktap_skip()
{
	ktap_n=$((ktap_n + 1))
	echo "ok $ktap_n $1 # SKIP ${2:-}"
}

# ktap_result NAME CMD...: one test case from a command's exit status.
ktap_result()
{
	local name=$1
	shift
	if "$@"; then
		ktap_ok "$name"
	else
		ktap_fail "$name"
	fi
}

ktap_finish()
{
	[ "$ktap_failed" -eq 0 ] && exit $KSFT_PASS
	exit $KSFT_FAIL
}

diag()
{
	echo "# $*"
}

require_root()
{
	if [ "$(id -u)" != 0 ]; then
		echo "1..0 # SKIP needs root"
		exit $KSFT_SKIP
	fi
}

module_loaded()
{
	[ -d /sys/module/rdmamig ]
}

# Load the module under test: the testbed passes its path in RDMAMIG_KO.
module_load()
{
	module_loaded && return 0
	if [ -n "${RDMAMIG_KO:-}" ]; then
		insmod "$RDMAMIG_KO"
	else
		modprobe rdmamig
	fi
}

# Module reference count as the kernel reports it ("-" when unloaded).
module_refcnt()
{
	cat "/sys/module/$1/refcnt" 2>/dev/null || echo -
}

# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for()
{
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# peer_answers_arp: VM B answers ARP now.  The testbed has no ping: the
# neighbour entry is dropped, a UDP datagram (to the discard port) makes
# the kernel ask again, and only B's reply makes the entry REACHABLE.
peer_answers_arp()
{
	local dev=$RDMAMIG_NETDEV i
	ip neigh del "$RDMAMIG_PEER_ADDR" dev "$dev" 2>/dev/null
	echo probe 2>/dev/null >"/dev/udp/$RDMAMIG_PEER_ADDR/9"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		ip neigh show to "$RDMAMIG_PEER_ADDR" dev "$dev" | grep -q REACHABLE && return 0
		sleep 0.1
	done
	return 1
}

# pair_link_ready SECONDS: in the pair topology, VM B answers ARP within
# SECONDS.  If it does not, prints as diagnostics what each side's kernel
# says about the link (qdiscs, counters, neighbours, the last kernel
# messages) and returns 1: a test that cut the link can then tell a link
# that did not come back from a defect of its own.  True in loop.
pair_link_ready()
{
	local bound=$1 dev=$RDMAMIG_NETDEV
	[ "${RDMAMIG_TOPOLOGY:-loop}" = pair ] || return 0
	wait_for "$bound" peer_answers_arp && return 0
	diag "VM B ($RDMAMIG_PEER_ADDR) does not answer ARP after $bound s; VM A:"
	{
		tc -s qdisc show dev "$dev"
		ip -s link show dev "$dev"
		ip neigh show dev "$dev"
		dmesg | tail -n 15
	} 2>&1 | sed 's/^/#   A: /'
	"$RDMAMIG_PEER" sh -c "ip -s link show dev $dev; ip neigh show dev $dev; dmesg | tail -n 15" \
		2>&1 | sed 's/^/#   B: /'
	return 1
}

# cut_link on|off: this VM drops everything on $RDMAMIG_NETDEV, both ways
# (an ingress matchall drop, and netem losing 100% at the root), or stops
# dropping.  One tc process: under TCG an exec takes a second or more, the
# commands in it milliseconds.  Not named cut: a test's show() pipes
# through cut(1), and a function of that name ran there instead, cutting
# VM A off for every case after a failed one (netem_test.sh, once).
cut_link()
{
	local dev=$RDMAMIG_NETDEV
	if [ "$1" = off ]; then
		tc -batch - <<-EOF
		qdisc del dev $dev ingress
		qdisc del dev $dev root
		EOF
	else
		tc -batch - <<-EOF
		qdisc add dev $dev handle ffff: ingress
		filter add dev $dev parent ffff: matchall action drop
		qdisc replace dev $dev root netem loss 100%
		EOF
	fi
}

# have_userfaultfd: this kernel has userfaultfd(2) (CONFIG_USERFAULTFD; its
# sysctl exists only then).  The debug kernel's tinyconfig once lacked it.
have_userfaultfd()
{
	[ -e /proc/sys/vm/unprivileged_userfaultfd ]
}

# require_userfaultfd: skip the whole test without it: the post-copy
# destination cannot take a fault.
require_userfaultfd()
{
	have_userfaultfd && return 0
	echo "1..0 # SKIP this kernel has no userfaultfd (CONFIG_USERFAULTFD)"
	exit "$KSFT_SKIP"
}

# require_vmm_testbed: the tests that drive rdmamig-vmm ($VMM) skip the
# whole file (KTAP plan 1..0) unless it is built, a pair run has its peer
# and the module loads.
require_vmm_testbed()
{
	if [ ! -x "$VMM" ]; then
		echo "1..0 # SKIP $VMM not built (make -C tools/rdmamig-vmm)"
		exit $KSFT_SKIP
	fi
	if [ "${RDMAMIG_TOPOLOGY:-loop}" = pair ] && [ -z "${RDMAMIG_PEER:-}" ]; then
		echo "1..0 # SKIP pair topology without \$RDMAMIG_PEER"
		exit $KSFT_SKIP
	fi
	module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }
}
