#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Packet loss on the RoCE network (pair topology), with tc netem on both
# VMs' NIC ($RDMAMIG_NETDEV, egress), the example VMM at both ends:
#
#   0. no fault, a 1000 ms keepalive: a 64 MiB migration at full speed
#      completes (the keepalive must not fail a healthy session)
#   0b. a slow link, SLOW_RATE (2 Mbit/s) from VM A, and the same keepalive:
#      a 4 MiB block (16 s of writes) completes.  Channel 0 sends in
#      order, so a KEEPALIVE queued behind two windows of WRITEs left 30 s
#      late and the destination took the busy source for a silent one;
#      kmod/pace.c keeps a quarter of an interval in flight, and cuts the
#      writes to fit: one whole 1 MiB write takes 4.2 s at this rate, more
#      than two intervals and a second, on every kernel (at 4 Mbit/s it
#      took 2.1 s and failed only now and then, on 6.12, where rxe
#      retransmitted it: see kmod/pace.c)
#   1. moderate loss, LOSS % (1) each way: an 8 MiB migration (bulk and two
#      rounds) still completes and the destination verifies every page
#      and device-state record (RC retransmission); netem did drop
#      packets (its counters).  Kept small: rxe recovers many losses only
#      by its retransmission timer, so the throughput falls to well under
#      1 MB/s (32 MiB at 2 % took 166 s here)
#   2. a cut link in the middle of a round, with a 1000 ms keepalive at
#      both ends: VM A loses every packet both ways at one instant (netem
#      loss 100 % on its NIC's egress and a matchall drop on its ingress,
#      from one tc process; a request to VM B takes seconds on a busy
#      host, too slow to time the cut by).  The source fails with
#      ETIMEDOUT ("peer silent") within two intervals plus a second of the
#      cut (plus KA_SLACK_MS, 500 ms, for timers running late under TCG),
#      by the kernel's clock: from a mark written to /dev/kmsg once tc is
#      done to the module's "session N: failed: ..." line,
#      and so does the destination (the source's disconnect is lost too;
#      its time is not measured: VM B answers through the agent)
#   3. once the cut is gone, a new migration completes: nothing was left
#      stuck in rxe or in the module
#
# Loop topology: skipped.  There rxe hands packets to a local address
# straight to its own receive path (rxe_loopback()), so they never meet
# eth0's qdisc: 100 % netem loss on eth0 does not slow a loop migration.
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOSS=${RDMAMIG_NETEM_LOSS:-1}	# percent, case 1
KA=1000		# keepalive, ms: see faults_test.sh for why not 500
KA_SLACK_MS=${RDMAMIG_KA_SLACK_MS:-500}
SLOW_RATE=${RDMAMIG_NETEM_RATE:-2mbit}	# case 0b
DEV=$RDMAMIG_NETDEV

[ -x "$VMM" ] || { echo "1..0 # SKIP $VMM not built"; exit $KSFT_SKIP; }
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit $KSFT_SKIP; }
command -v tc >/dev/null || { echo "1..0 # SKIP tc (iproute2) not installed"; exit $KSFT_SKIP; }
if [ "${RDMAMIG_TOPOLOGY:-loop}" != pair ] || [ -z "${RDMAMIG_PEER:-}" ]; then
	echo "1..0 # SKIP pair topology only (rxe loopback bypasses the NIC's qdisc)"
	exit $KSFT_SKIP
fi
if ! modprobe sch_netem || ! "$RDMAMIG_PEER" modprobe sch_netem; then
	echo "1..0 # SKIP no sch_netem module"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }
ulimit -l unlimited

tmp=$(mktemp -d)
dest_id=
# No qdisc of ours on either VM: each case starts from a clean link, so
# that one case's leftovers cannot fail the next.
clear_qdiscs()
{
	tc qdisc del dev "$DEV" root 2>/dev/null
	tc qdisc del dev "$DEV" ingress 2>/dev/null
	"$RDMAMIG_PEER" tc qdisc del dev "$DEV" root >/dev/null 2>&1
}
cleanup()
{
	clear_qdiscs
	if [ -n "$dest_id" ]; then
		"$RDMAMIG_PEER" --kill "$dest_id" KILL >/dev/null 2>&1
		"$RDMAMIG_PEER" --wait "$dest_id" >/dev/null 2>&1
	fi
	kill -9 "${src_pid:-}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 7

# netem LOSS-SPEC|off: on both VMs' NIC (VM B's first).
netem()
{
	if [ "$1" = off ]; then
		"$RDMAMIG_PEER" tc qdisc del dev "$DEV" root &&
			tc qdisc del dev "$DEV" root
	else
		"$RDMAMIG_PEER" tc qdisc replace dev "$DEV" root netem loss "$1" &&
			tc qdisc replace dev "$DEV" root netem loss "$1"
	fi
}

# cut_link on|off: lib.sh.

# Packets netem dropped on a VM: from "tc -s qdisc show".
dropped()
{
	sed -n 's/.*(dropped \([0-9]*\),.*/\1/p' | head -n 1
}

# kmsg_ms MARK: ms by the kernel's clock from the last MARK in the kernel
# log to the first "session N: failed:" of the module after it ("-" if
# either is missing).
kmsg_ms()
{
	dmesg | awk -v mark="$1" '
		{ s = $0; sub(/^\[ */, "", s); ts = s + 0 }
		index($0, mark) { t0 = ts; t1 = "" }
		t0 != "" && t1 == "" && /rdmamig: session [0-9]+: failed: / { t1 = ts }
		END { if (t0 == "" || t1 == "") print "-"; else printf "%d\n", (t1 - t0) * 1000 }'
}

ms_since()
{
	local now=$EPOCHREALTIME
	echo $(((${now/./} - ${1/./}) / 1000))
}

# in_round PID: the session of the VMM PID is in a round (state active).
in_round()
{
	"$RDMAMIGCTL" -j session list 2>/dev/null | jq -e --argjson pid "$1" \
		'any(.[]; .owner_pid == $pid and .state == "active")' >/dev/null
}

jget()
{
	grep '^{' "$1" 2>/dev/null | tail -n 1 | jq -r "$2" 2>/dev/null
}

# start_dest NAME ARGS: the destination on VM B; sets dest_id and port.
start_dest()
{
	local pf=$RDMAMIG_OUT/netem.$1.port
	shift
	rm -f "$pf"
	dest_id=$("$RDMAMIG_PEER" --bg "$VMM" dest --listen "$RDMAMIG_PEER_ADDR:0" \
		--port-file "$pf" --json "$@") || return 1
	wait_for 60 test -s "$pf" || return 1
	port=$(cat "$pf")
}

wait_dest()
{
	"$RDMAMIG_PEER" --wait "$dest_id" > "$tmp/$1.dst" 2>&1
	dst_rc=$?
	dest_id=
}

verified()
{
	[ "$src_rc" = 0 ] && [ "$dst_rc" = 0 ] && [ "$(jget "$tmp/$1.dst" .verified)" = true ]
}

show()
{
	sed "s/^/# $1: /" "$tmp/$1.src" "$tmp/$1.dst" 2>/dev/null | cut -c1-300
}

# ---- 0. no fault, keepalive on ------------------------------------------------

# A healthy migration as fast as rxe goes: the keepalive must not fail it.
ARGS=(--size 64 --blocks 2 --keepalive "$KA")
if start_dest healthy "${ARGS[@]}" --timeout 120; then
	"$VMM" source --connect "$RDMAMIG_PEER_ADDR:$port" "${ARGS[@]}" --rounds 2 \
		--timeout 120 --json > "$tmp/healthy.src" 2>&1
	src_rc=$?
	wait_dest healthy
else
	src_rc=- dst_rc=-
fi
diag "no fault, keepalive $KA ms: source exit $src_rc: $(jget "$tmp/healthy.src" '"\(.state) \(.errno // "") \(.reason // "")"');" \
	"destination exit $dst_rc: $(jget "$tmp/healthy.dst" '"\(.state) \(.errno // "") \(.reason // "")"')"
if ! verified healthy && grep -q "peer silent" "$tmp/healthy.src" "$tmp/healthy.dst"; then
	diag "KERNEL BUG: the keepalive failed a healthy migration.  The source's" \
		"RDMA WRITEs take every send-queue slot (rdmamig_sq_take), so its" \
		"KEEPALIVE (tx_get, kmod/ctrl.c) finds none, and the destination" \
		"sees no message for 2 intervals + 1 s while the data flows"
fi
ktap_result "no fault, keepalive $KA ms: 64 MiB at full speed completes, verified" \
	verified healthy

# ---- 0b. a slow link, keepalive on -----------------------------------------------

# Only VM A's egress is slow: that is where the writes and keepalives go.
ARGS=(--size 4 --blocks 1 --zero-holes 0 --keepalive "$KA")
tc qdisc replace dev "$DEV" root netem rate "$SLOW_RATE" limit 100000
t0=$EPOCHREALTIME
if start_dest slow "${ARGS[@]}" --timeout 300; then
	"$VMM" source --connect "$RDMAMIG_PEER_ADDR:$port" "${ARGS[@]}" --rounds 1 \
		--timeout 300 --json > "$tmp/slow.src" 2>&1
	src_rc=$?
	wait_dest slow
else
	src_rc=- dst_rc=-
fi
took=$(ms_since "$t0")
tc qdisc del dev "$DEV" root
diag "slow link ($SLOW_RATE), keepalive $KA ms: source exit $src_rc, destination exit $dst_rc" \
	"after $took ms; bulk round $(jget "$tmp/slow.src" '.round_stats[0].throughput / 1e3 | floor') kB/s"
verified slow || show slow
if ! verified slow && grep -q "peer silent" "$tmp/slow.src" "$tmp/slow.dst"; then
	diag "KERNEL BUG: the keepalive failed a healthy migration on a slow link." \
		"A KEEPALIVE waits behind channel 0's writes in flight: kmod/pace.c" \
		"must keep them, and each write, under a quarter of an interval"
fi
ktap_result "slow link ($SLOW_RATE), keepalive $KA ms: 4 MiB completes, verified" verified slow

# ---- 1. moderate loss ---------------------------------------------------------

clear_qdiscs

ARGS=(--size 8 --blocks 2)
netem "$LOSS%"
t0=$EPOCHREALTIME
if start_dest loss "${ARGS[@]}" --timeout 300; then
	"$VMM" source --connect "$RDMAMIG_PEER_ADDR:$port" "${ARGS[@]}" --rounds 2 \
		--redirty 5 --timeout 300 --json > "$tmp/loss.src" 2>&1
	src_rc=$?
	wait_dest loss
else
	src_rc=- dst_rc=-
fi
took=$(ms_since "$t0")
drops_a=$(tc -s qdisc show dev "$DEV" | dropped)
drops_b=$("$RDMAMIG_PEER" tc -s qdisc show dev "$DEV" | dropped)
# VM B sends only acknowledgements, a few hundred: at 1 % it may lose none.
netem_b=$("$RDMAMIG_PEER" tc qdisc show dev "$DEV")
netem off
diag "loss $LOSS%: source exit $src_rc, destination exit $dst_rc after $took ms;" \
	"netem dropped $drops_a (VM A) + $drops_b (VM B) packets;" \
	"bulk round $(jget "$tmp/loss.src" '.round_stats[0].throughput / 1e6 | floor') MB/s"
verified loss || show loss
ktap_result "$LOSS% loss each way: 8 MiB migrated, every page and record verified" verified loss
ktap_result "netem dropped data packets ($drops_a on VM A) and ran on VM B too ($drops_b)" \
	test "${drops_a:-0}" -gt 0 -a -n "$(grep -o "loss $LOSS%" <<<"$netem_b")"

# ---- 2. the link cut: 100 % loss --------------------------------------------

clear_qdiscs

SLOW=(--size 64 --blocks 2 --zero-holes 0 --keepalive "$KA")
if start_dest cut "${SLOW[@]}" --timeout 60; then
	# 1 MB/s: see SLOW_PAIR in faults_test.sh.
	"$VMM" source --connect "$RDMAMIG_PEER_ADDR:$port" "${SLOW[@]}" --rounds 1 \
		--max-bandwidth 1000000 --timeout 60 --json > "$tmp/cut.src" 2>&1 &
	src_pid=$!
	wait_for 60 in_round "$src_pid" || diag "the source is not in a round after 60 s"
	sleep 1
	t1=$EPOCHREALTIME
	cut_link on || diag "cannot cut the link with tc"
	# The moment, in the kernel log: from the end of the tc run (its
	# exec took most of the time).
	echo "rdmamig-test: VM A cut off" > /dev/kmsg
	diag "VM A cut off by a tc run of $(ms_since "$t1") ms"
	exited() { ! kill -0 "$1" 2>/dev/null; }
	wait_for 30 exited "$src_pid"
	src_ms=$(kmsg_ms "rdmamig-test: VM A cut off")
	wait "$src_pid"
	src_rc=$?
	src_pid=
	wait_dest cut
	cut_link off
else
	src_rc=- dst_rc=- src_ms=-
fi
bound=$((2 * KA + 1000 + KA_SLACK_MS))
diag "cut: source exit $src_rc after $src_ms ms: $(jget "$tmp/cut.src" '"\(.errno) \(.reason)"');" \
	"destination exit $dst_rc: $(jget "$tmp/cut.dst" '"\(.errno) \(.reason)"')"
src_timed_out()
{
	[ "$src_rc" = 1 ] && [ "$src_ms" != - ] && [ "$src_ms" -le "$bound" ] &&
		[ "$(jget "$tmp/cut.src" .errno)" = 110 ] &&
		jget "$tmp/cut.src" .reason | grep -q "peer silent"
}
# Known kernel bug: ctrl_keepalive_work() (kmod/ctrl.c) looks at the
# silence once an interval, so it may see it up to an interval late.
if [[ $src_ms =~ ^[0-9]+$ ]] && [ "$src_ms" -gt "$bound" ] && [ "$src_ms" -le $((bound + KA)) ]; then
	diag "KERNEL BUG: the silence was seen $((src_ms - bound)) ms after the bound and slack," \
		"within one more interval: the keepalive check runs once an interval" \
		"instead of at the deadline (ctrl_keepalive_work, kmod/ctrl.c)"
fi
ktap_result "100% loss: the source fails with ETIMEDOUT (peer silent) in $src_ms ms (bound $bound)" \
	src_timed_out
dst_timed_out()
{
	[ "$dst_rc" = 1 ] && [ "$(jget "$tmp/cut.dst" .errno)" = 110 ] &&
		jget "$tmp/cut.dst" .reason | grep -q "peer silent"
}
ktap_result "100% loss: the destination fails with ETIMEDOUT (peer silent) too" dst_timed_out

# ---- 3. after the loss --------------------------------------------------------

clear_qdiscs

if start_dest after --size 4 --blocks 2 --timeout 60; then
	"$VMM" source --connect "$RDMAMIG_PEER_ADDR:$port" --size 4 --blocks 2 \
		--rounds 1 --timeout 60 --json > "$tmp/after.src" 2>&1
	src_rc=$?
	wait_dest after
else
	src_rc=- dst_rc=-
fi
verified after || show after
ktap_result "loss gone: a new 4 MiB migration completes, verified" verified after
ktap_finish
