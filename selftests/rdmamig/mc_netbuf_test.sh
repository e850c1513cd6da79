#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Output commit of a checkpointed process: rdmamigctl protect
# --net-buffer IFACE holds the process's outbound packets in a plug qdisc
# (sch_plug) on IFACE, in the process's network namespace, until the
# backup acknowledged the epoch they were sent in.
#
# The protected process is rdmamig-workload --udp, in a network namespace
# of its own behind a veth pair (the way Documentation/rdmamigctl.rst
# gives a process an interface of its own, so that the plug never holds
# rdmamig's RoCE traffic); it answers every datagram with "reply N", N its
# count of answers, kept in its checkpointed memory.  udp_probe, here in
# the test's namespace, asks every 5 ms and logs every answer it gets.
#
#   1. a wrong interface: protect --net-buffer nosuch0 exits 1 naming the
#      interface and the namespace, before any page moves; the workload
#      runs on and nothing was plugged
#   2. held: 20 epochs of 100 ms with --net-buffer: the answers' median
#      latency is an epoch's order (at least 25 ms, four times that of the
#      answers before protection), and none is dropped (the plug's limit
#      is sent: a limit of 0 dropped them all); protect's summary closed and released
#      segments; once it ended, no plug is left and answers come at once
#   3. failover with output commit: protect and the workload killed
#      (SIGKILL) after 8 epochs; the standby fails over, and its twin's
#      count of answers is at least the highest answer the client ever
#      saw: no reply the client saw was taken back
#   4. the same without --net-buffer: the client saw answers beyond the
#      twin's count (the check of 3 can fail: this is what it catches)
#   5. the backup lost (standby killed) under --net-buffer: protect exits
#      1 saying so, the plug is removed and the answers come at once again
#   6. no session is left
#
# Loop topology (the namespace is this VM's; in pair the standby and its
# twin would be on the peer, which changes nothing here).
source "$(dirname "$0")/lib.sh"
require_root

WORKLOAD=${RDMAMIG_WORKLOAD:-$TOP/tools/rdmamig-workload/rdmamig-workload}
PROBE=$(dirname "$(readlink -f "$0")")/udp_probe
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
SIZE=32			# MiB
RATE=1			# MB/s
TIMEOUT=${RDMAMIG_MC_TIMEOUT:-120}
NS=rmnb			# the workload's network namespace
IF_HOST=rmnb-h IF_NS=rmnb-p
ADDR_HOST=10.213.0.1 ADDR_NS=10.213.0.2
PORT=7070

source "$(dirname "$0")/procmig_lib.sh"
procmig_setup mc_netbuf "$WORKLOAD" "$RDMAMIGCTL" "$PROBE"
if [ "$topology" != loop ]; then
	echo "1..0 # SKIP loop topology only"
	exit "$KSFT_SKIP"
fi
# Loaded now: a request_module() under TCG takes seconds.
if ! modprobe sch_plug 2>/dev/null; then
	echo "1..0 # SKIP no sch_plug module"
	exit "$KSFT_SKIP"
fi

# shellcheck disable=SC2317 # called from the trap
procmig_cleanup_hook()
{
	ip netns del "$NS" 2>/dev/null
	ip link del "$IF_HOST" 2>/dev/null
}

in_ns() { ip netns exec "$NS" "$@"; }

# The namespace and its veth pair.
ip netns del "$NS" 2>/dev/null
ip link del "$IF_HOST" 2>/dev/null
if ! { ip netns add "$NS" &&
       ip link add "$IF_HOST" type veth peer name "$IF_NS" netns "$NS" &&
       ip addr add "$ADDR_HOST/30" dev "$IF_HOST" && ip link set "$IF_HOST" up &&
       in_ns ip addr add "$ADDR_NS/30" dev "$IF_NS" && in_ns ip link set "$IF_NS" up &&
       in_ns ip link set lo up; }; then
	echo "1..0 # SKIP cannot make a network namespace with a veth pair"
	exit "$KSFT_SKIP"
fi

# start_server NAME: the workload in the namespace; sets src_pid.
start_server()
{
	local name=$1
	rm -f "$dir/$name.pid" "$dir/$name.hb"
	in_ns "$WORKLOAD" --size "$SIZE" --rate "$RATE" --seed $$ --udp "$PORT" \
		--pid-file "$dir/$name.pid" --heartbeat "$dir/$name.hb" \
		>"$dir/$name.out" 2>&1 &
	local_pids+=($!)
	wait_for 60 grep -qs heartbeat "$dir/$name.hb" || return 1
	src_pid=$(<"$dir/$name.pid")
}

# start_client NAME: udp_probe asking the server every 5 ms; sets cli_pid.
start_client()
{
	"$PROBE" "$ADDR_NS" "$PORT" 5 >"$dir/$1.cli" 2>&1 &
	cli_pid=$!
	local_pids+=("$cli_pid")
}

stop_client()
{
	kill -TERM "$cli_pid" 2>/dev/null
	wait "$cli_pid" 2>/dev/null
}

# lines_now FILE: how many lines it has (a mark in the client's log).
lines_now() { wc -l < "$dir/$1" 2>/dev/null || echo 0; }

# latency_p50 FILE FROM TO: the median latency (us) of the answers logged
# in lines FROM+1 to TO (all after FROM if TO is empty).
latency_p50()
{
	awk -v a="$2" -v b="${3:-0}" 'NR > a && (b == 0 || NR <= b) && $1 == "value" { print $4 }' \
		"$dir/$1" | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : -1 }'
}

# max_value FILE: the highest answer the client saw.
max_value()
{
	awk '$1 == "value" && $2 > m { m = $2 } END { print m + 0 }' "$dir/$1"
}

# twin_replies NAME: the twin's count of answers when it was continued.
twin_replies()
{
	awk '$1 == "twin:" { print $9 }' "$dir/$1.twin.hb" 2>/dev/null
}

plugged() { in_ns tc qdisc show dev "$IF_NS" | grep -q '^qdisc plug'; }

sessions_left() { "$RDMAMIGCTL" -j session list 2>/dev/null | jq 'length' 2>/dev/null; }

# failover NAME NETBUF...: protect (with NETBUF, the --net-buffer option
# or nothing) and the client run until 8 epochs, then protect and the
# server are killed at a random moment of an epoch; the standby fails
# over.  Sets s_rc, seen (the client's highest answer) and kept (the
# twin's count).
failover()
{
	local name=$1
	shift
	seen=- kept=- s_rc=-
	start_server "$name.w" || { diag "$name: the workload did not start"; return 1; }
	start_standby "$name" --no-auth || return 1
	start_client "$name"
	"$RDMAMIGCTL" protect --pid "$src_pid" --no-auth --mc-delay 100 "$@" \
		"rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err" &
	prot_pid=$!
	local_pids+=("$prot_pid")
	wait_for "$TIMEOUT" epochs_printed "$name.p" 8 || diag "$name: no 8 epochs"
	sleep "0.0$((RANDOM % 100))"
	kill -KILL "$prot_pid" "$src_pid"
	wait "$prot_pid" 2>/dev/null
	peer_wait "$name.sb"
	s_rc=$?
	# What was held in the plug stays there: the host is "dead".
	sleep 1
	stop_client
	seen=$(max_value "$name.cli")
	wait_for 30 twin_runs "$name"
	kept=$(twin_replies "$name")
	diag "$name: standby exit $s_rc, failover $(jget "$name.sb.out" .failover) at epoch" \
		"$(jget "$name.sb.out" .mc_epochs); the client saw answers up to $seen, the twin" \
		"counts ${kept:-?}; plug left by the killed protect: $(plugged && echo yes || echo no)"
	on_peer kill -KILL "$twin_pid" 2>/dev/null
	peer_wait "$name.twin"
	in_ns tc qdisc del dev "$IF_NS" root 2>/dev/null
	return 0
}

# failed_over NAME: the check that failover() went as planned.
failed_over()
{
	local t="$1: the standby fails over and its twin runs"
	if [ "$s_rc" = 0 ] && [ "$(jget "$1.sb.out" .failover)" = true ] &&
	   [[ "$kept" =~ ^[0-9]+$ ]]; then
		ktap_ok "$t"
	else
		show "$1.sb.out" "$1.sb.err" "$1.p.err"
		ktap_fail "$t"
	fi
}

ktap_plan 11
diag "workload $SIZE MiB at $RATE MB/s in namespace $NS ($ADDR_NS, $IF_NS), client every 5 ms"

# ---- 1. a wrong interface -------------------------------------------------------

name=badif
start_server "$name.w" || diag "$name: the workload did not start"
t="$name: --net-buffer nosuch0: exit 1, the interface and namespace named, nothing plugged"
if start_standby "$name" --no-auth; then
	"$RDMAMIGCTL" protect --pid "$src_pid" --no-auth --net-buffer nosuch0 \
		"rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err"
	rc=$?
	peer_wait "$name.sb"
	if [ $rc = 1 ] && grep -q "no interface nosuch0 in the network namespace of pid $src_pid" \
		"$dir/$name.p.err" && ! grep -q '^epoch' "$dir/$name.p" &&
	   [ "$(state "$src_pid")" != T ] && ! plugged; then
		ktap_ok "$t"
	else
		diag "exit $rc, workload state $(state "$src_pid")"; show "$name.p" "$name.p.err"
		ktap_fail "$t"
	fi
	on_peer kill -KILL "$twin_pid" 2>/dev/null
	peer_wait "$name.twin"
else
	ktap_fail "$t"
fi

# ---- 2. held, then released -------------------------------------------------------

name=held
t="$name: 20 epochs with --net-buffer: exit 0, segments closed and released"
if start_standby "$name" --no-auth; then
	start_client "$name"
	sleep 2
	mark0=$(lines_now "$name.cli")
	"$RDMAMIGCTL" -j protect --pid "$src_pid" --no-auth --mc-delay 100 --epochs 20 \
		--net-buffer "$IF_NS" "rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err" &
	prot_pid=$!
	local_pids+=("$prot_pid")
	# From the first epoch on, the answers are held.
	wait_for 60 plugged || diag "$name: no plug seen"
	mark1=$(lines_now "$name.cli")
	wait "$prot_pid"
	p_rc=$?
	mark2=$(lines_now "$name.cli")
	peer_wait "$name.sb"
	sleep 2
	stop_client
	base=$(latency_p50 "$name.cli" 0 "$mark0")
	held=$(latency_p50 "$name.cli" "$mark1" "$mark2")
	after=$(latency_p50 "$name.cli" "$mark2")
	diag "$name: protect exit $p_rc, epochs $(jget "$name.p" .mc_epochs), segments" \
		"$(jget "$name.p" .net_segments) closed, $(jget "$name.p" .net_released) released," \
		"$(jget "$name.p" .net_merged) merged; ack p50 of the epochs" \
		"$(jget "$name.p" '[.epochs[].ack_us // empty] | sort | .[length / 2 | floor]') us"
	diag "$name: answers' median latency: before $base us, held $held us, after $after us;" \
		"$(tail -n 1 "$dir/$name.cli")"
	if [ "$p_rc" = 0 ] && [ "$(jget "$name.p" .mc_epochs)" = 20 ] &&
	   [ "$(jget "$name.p" .net_buffer)" = "$IF_NS" ] &&
	   [ "$(jget "$name.p" .net_segments)" -ge 5 ] 2>/dev/null &&
	   [ "$(jget "$name.p" .net_released)" -ge 4 ] 2>/dev/null; then
		ktap_ok "$t"
	else
		show "$name.p" "$name.p.err"
		ktap_fail "$t"
	fi
	# Not < <(...): the testbed has no /dev/fd.
	read -r _ sent _ received <<<"$(tail -n 1 "$dir/$name.cli")"
	ktap_result "$name: answers held, none dropped: median latency $held us >= 25000 and >= 4 x the $base us before; $received of $sent answered" \
		test "$held" -ge 25000 -a "$base" -ge 0 -a "$held" -ge $((4 * base)) \
		-a "${sent:-0}" -gt 0 -a "${received:-0}" -ge $((${sent:-0} - 2))
	ktap_result "$name: once protection ended, no plug and answers at once ($after us < 25000)" \
		eval '! plugged && [ "$after" -ge 0 ] && [ "$after" -lt 25000 ]'
	on_peer kill -KILL "$twin_pid" 2>/dev/null
	peer_wait "$name.twin"
else
	ktap_fail "$t"
	ktap_fail "$name: answers held"
	ktap_fail "$name: released"
fi
kill -KILL "$src_pid" 2>/dev/null

# ---- 3. failover with output commit ------------------------------------------------

name=commit
failover "$name" --net-buffer "$IF_NS"
failed_over "$name"
ktap_result "$name: no answer the client saw is taken back (saw up to $seen, the twin counts $kept)" \
	test "${seen:-0}" -gt 0 -a "${kept:-0}" -ge "${seen:-0}"

# ---- 4. the same without output commit ----------------------------------------------

name=nocommit
failover "$name"
failed_over "$name"
ktap_result "$name: without --net-buffer the client saw answers the failover took back ($seen > $kept)" \
	test "${kept:-0}" -ge 0 -a "${seen:-0}" -gt "${kept:-0}"

# ---- 5. the backup lost ---------------------------------------------------------------

name=lost
start_server "$name.w" || diag "$name: the workload did not start"
t="$name: standby killed: protect exits 1, 'the backup is lost', no plug left, the workload runs"
if start_standby "$name" --no-auth; then
	start_client "$name"
	"$RDMAMIGCTL" protect --pid "$src_pid" --no-auth --mc-delay 100 --net-buffer "$IF_NS" \
		"rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err" &
	prot_pid=$!
	local_pids+=("$prot_pid")
	wait_for "$TIMEOUT" epochs_printed "$name.p" 5 || diag "$name: no 5 epochs"
	on_peer kill -KILL "${bg_pid[$name.sb]}" 2>/dev/null
	wait "$prot_pid"
	p_rc=$?
	peer_wait "$name.sb"
	mark=$(lines_now "$name.cli")
	sleep 2
	stop_client
	after=$(latency_p50 "$name.cli" "$mark")
	diag "$name: protect exit $p_rc: $(tail -n 1 "$dir/$name.p.err"); answers after it: median $after us"
	if [ "$p_rc" = 1 ] && grep -q "the backup is lost" "$dir/$name.p.err" && ! plugged &&
	   [ "$(state "$src_pid")" != T ]; then
		ktap_ok "$t"
	else
		show "$name.p" "$name.p.err"
		ktap_fail "$t"
	fi
	ktap_result "$name: the answers come at once again (median $after us < 25000)" \
		test "$after" -ge 0 -a "$after" -lt 25000
	on_peer kill -KILL "$twin_pid" 2>/dev/null
	peer_wait "$name.twin"
else
	ktap_fail "$t"
	ktap_fail "$name: answers"
fi
kill -KILL "$src_pid" 2>/dev/null

# ---- 6. nothing left ------------------------------------------------------------------

wait_for 10 test "$(sessions_left)" = 0
ktap_result "no session left ($(sessions_left))" test "$(sessions_left)" = 0

ktap_finish
