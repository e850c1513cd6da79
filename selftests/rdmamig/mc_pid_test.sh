#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Micro-checkpointing of a process by pid: rdmamigctl protect (the
# primary, here) and rdmamigctl standby (the backup, with a stopped twin
# of the workload; on the peer VM in pair), netlink sessions over the
# processes' memory, MC_EPOCH reading the stopped process's pages.
#
#   1. rejections: protect against an incoming that does not allow
#      checkpointing fails (exit 1, "does not allow checkpointing") and the
#      workload runs on; standby into a running process fails (exit 1)
#   2. ended: 20 epochs at --mc-delay 50 of a workload dirtying 1 MB/s;
#      protect ends them (COMPLETE): it took and had acknowledged 20, its
#      JSON has 20 epochs numbered 1 to 20, each with its checksum; the
#      standby committed 20, did not fail over, leaves its twin stopped,
#      and its memory has epoch 20's checksum; the workload runs on; the
#      monitor saw the epochs acknowledged (events "mc")
#   3. primary killed: protect and the workload killed (SIGKILL) after 5
#      epochs or more: the standby fails over (exit 0, failover true), its
#      twin's memory has the checksum protect printed for the epoch the
#      standby committed last, and the twin runs on from the workload's
#      heartbeat at that epoch
#   4. (pair) link cut: VM B, the standby's, drops every packet (as lib.sh
#      cut_link, from a script run there) after 5 epochs, both ends with a
#      1000 ms keepalive: for the standby the primary died at that instant.
#      Its keepalive finds the primary silent, it fails over with the
#      checksum of the epoch it holds, and the twin runs; the time from
#      the cut to the twin running, by VM B's clock, is printed (a figure,
#      not a check: tc takes seconds on a busy TCG host); protect
#      exits 1 saying the backup is lost, and the workload runs on here
#      (split brain: rdmamig has no fencing, rdmamigctl.rst says so)
#   5. no session is left on either side
#
# Loop topology: both ends in this VM (no link cut: rxe loops packets back
# before any qdisc).  Pair topology: the twin and the standby on the peer.
source "$(dirname "$0")/lib.sh"
require_root

WORKLOAD=${RDMAMIG_WORKLOAD:-$TOP/tools/rdmamig-workload/rdmamig-workload}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
SIZE=32			# MiB
RATE=1			# MB/s: epochs of ~12 pages at 50 ms
KA=1000			# ms, the keepalive of the link cut
KA_SLACK_MS=${RDMAMIG_KA_SLACK_MS:-500}
TIMEOUT=${RDMAMIG_MC_TIMEOUT:-120}

source "$(dirname "$0")/procmig_lib.sh"
procmig_setup mc_pid "$WORKLOAD" "$RDMAMIGCTL"

link_cut=
# shellcheck disable=SC2317 # called from the trap
procmig_cleanup_hook()
{
	[ -n "$link_cut" ] && on_peer bash "$dir/cut.sh" off
}

# cut.sh on|off, run on VM B: lib.sh's cut_link there (one tc process),
# and when the cut was written to that tc and when it exited
# (CLOCK_REALTIME, us, bash's own clock) in cut.at.  The tc is started
# first on a FIFO and has answered a first command, so that its start
# (seconds under TCG on a busy host) is not in the figure: it runs each
# command as the line arrives.
write_cut_script()
{
	cat >"$dir/cut.sh" <<-EOF
	dev=$RDMAMIG_NETDEV
	if [ "\$1" = off ]; then
		tc -batch - <<-TC
		qdisc del dev \$dev ingress
		qdisc del dev \$dev root
		TC
	else
		fifo=\$(mktemp -u /tmp/cut.XXXXXX)
		mkfifo "\$fifo"
		stdbuf -oL tc -batch "\$fifo" >"\$fifo.out" 2>&1 &
		exec 3>"\$fifo"
		# Ready once it answered a first command.
		echo "qdisc show dev lo" >&3
		while [ ! -s "\$fifo.out" ]; do sleep 0.05; done
		t0=\$EPOCHREALTIME
		printf '%s\\n' "qdisc add dev \$dev handle ffff: ingress" \\
			"filter add dev \$dev parent ffff: matchall action drop" \\
			"qdisc replace dev \$dev root netem loss 100%" >&3
		exec 3>&-
		wait
		t1=\$EPOCHREALTIME
		rm -f "\$fifo" "\$fifo.out"
		echo "\${t0/./} \${t1/./}" >"$dir/cut.at"
	fi
	EOF
}

# sum_of FILE EPOCH: the checksum protect printed for EPOCH.
sum_of()
{
	sed -n "s/^epoch $2: checksum \(0x[0-9a-f]*\)$/\1/p" "$dir/$1" | tail -n 1
}

sessions_left()
{
	"$RDMAMIGCTL" -j session list 2>/dev/null | jq 'length' 2>/dev/null
}

ktap_plan 13
diag "topology $topology, standby at $DEST_ADDR, workload $SIZE MiB at $RATE MB/s"

# ---- 1. rejections -------------------------------------------------------------

start_source w1 "$RATE" || diag "the workload did not start"

t="protect against an incoming: exit 1, 'does not allow checkpointing', workload runs"
rm -f "$dir/inc1.port"
if start_twin inc1.twin "$SIZE" &&
   peer_bg inc1 "$RDMAMIGCTL" incoming --pid "$twin_pid" --no-auth --timeout 60 \
	--port-file "$dir/inc1.port" "rdma:$DEST_ADDR:0" &&
   wait_for 60 test -s "$dir/inc1.port"; then
	"$RDMAMIGCTL" protect --pid "$src_pid" --no-auth --retry 10 \
		"rdma:$DEST_ADDR:$(<"$dir/inc1.port")" >"$dir/p1.out" 2>"$dir/p1.err"
	rc=$?
	peer_wait inc1
	if [ $rc = 1 ] && grep -q "does not allow checkpointing" "$dir/p1.err" &&
	   [ "$(state "$src_pid")" != T ]; then
		ktap_ok "$t"
	else
		diag "exit $rc, workload state $(state "$src_pid")"; show p1.out p1.err
		ktap_fail "$t"
	fi
else
	diag "the incoming did not start"; show inc1.out inc1.err
	ktap_fail "$t"
fi
on_peer kill -KILL "$twin_pid" 2>/dev/null
peer_wait inc1.twin

t="standby into a running process: exit 1, 'is not stopped'"
"$RDMAMIGCTL" standby --pid "$src_pid" --no-auth "rdma:$LOCAL_ADDR:0" \
	>"$dir/sb1.out" 2>"$dir/sb1.err"
rc=$?
if [ $rc = 1 ] && grep -q "is not stopped" "$dir/sb1.err"; then
	ktap_ok "$t"
else
	diag "exit $rc"; show sb1.out sb1.err
	ktap_fail "$t"
fi

# ---- 2. 20 epochs, then the end -------------------------------------------

name=ended
"$RDMAMIGCTL" -j monitor mc --timeout "$TIMEOUT" >"$dir/monitor.out" 2>&1 &
mon_pid=$!
local_pids+=("$mon_pid")
if start_standby "$name" --no-auth; then
	"$RDMAMIGCTL" -j protect --pid "$src_pid" --no-auth --checksum --mc-delay 50 \
		--epochs 20 "rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err"
	p_rc=$?
	peer_wait "$name.sb"
	s_rc=$?
else
	p_rc=- s_rc=-
fi
kill "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
diag "$name: protect exit $p_rc: epochs $(jget "$name.p" .mc_epochs)," \
	"acked $(jget "$name.p" .mc_acked), pause p50 $(jget "$name.p" .pause_us_p50) us" \
	"p99 $(jget "$name.p" .pause_us_p99) us, ack max $(jget "$name.p" .ack_us_max) us;" \
	"standby exit $s_rc: committed $(jget "$name.sb.out" .mc_epochs)," \
	"failover $(jget "$name.sb.out" .failover)"

t="$name: protect took 20 epochs, numbered 1 to 20, all acknowledged"
if [ "$p_rc" = 0 ] && [ "$(jget "$name.p" .mc_epochs)" = 20 ] &&
   [ "$(jget "$name.p" .mc_acked)" = 20 ] &&
   [ "$(jget "$name.p" '[.epochs[].epoch] | map(tostring) | join(" ")')" = "$(seq -s ' ' 1 20)" ]; then
	ktap_ok "$t"
else
	show "$name.p" "$name.p.err"
	ktap_fail "$t"
fi

t="$name: the standby committed 20, no failover, twin left stopped"
if [ "$s_rc" = 0 ] && [ "$(jget "$name.sb.out" .mc_epochs)" = 20 ] &&
   [ "$(jget "$name.sb.out" .failover)" = false ] &&
   [ "$(peer_state "$twin_pid")" = T ]; then
	ktap_ok "$t"
else
	diag "twin state $(peer_state "$twin_pid")"; show "$name.sb.out" "$name.sb.err"
	ktap_fail "$t"
fi

p_sum=$(jget "$name.p" '.epochs[] | select(.epoch == 20) | .checksum')
s_sum=$(jget "$name.sb.out" .checksum)
diag "$name: epoch 20's checksum $p_sum, the standby's memory $s_sum"
ktap_result "$name: the standby's memory is epoch 20's (checksums)" \
	test -n "$p_sum" -a "$p_sum" = "$s_sum"

ktap_result "$name: the workload runs on" test "$(state "$src_pid")" != T

mc_events=$(jq -s '[.[] | select(.event == "mc" and .role == "source")] | length' \
	"$dir/monitor.out" 2>/dev/null)
ktap_result "$name: the monitor saw the source's epochs acknowledged ($mc_events events)" \
	test "${mc_events:-0}" -ge 1
on_peer kill -KILL "$twin_pid" 2>/dev/null
peer_wait "$name.twin"

# ---- 3. the primary killed --------------------------------------------------

name=killed
if start_standby "$name" --no-auth; then
	"$RDMAMIGCTL" protect --pid "$src_pid" --no-auth --checksum --mc-delay 50 \
		"rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err" &
	prot_pid=$!
	local_pids+=("$prot_pid")
	wait_for "$TIMEOUT" epochs_printed "$name.p" 5 || diag "$name: no 5 epochs"
	# Anywhere in an epoch: a random part of it later.
	sleep "0.0$((RANDOM % 50))"
	kill -KILL "$prot_pid" "$src_pid"
	wait "$prot_pid" "$src_pid" 2>/dev/null
	peer_wait "$name.sb"
	s_rc=$?
else
	s_rc=-
fi
e=$(jget "$name.sb.out" .mc_epochs)
p_sum=$(sum_of "$name.p" "$e")
s_sum=$(jget "$name.sb.out" .checksum)
diag "$name: protect printed $(grep -c pages "$dir/$name.p") epochs; standby exit $s_rc," \
	"failover $(jget "$name.sb.out" .failover) at epoch $e (${s_sum:-?}; the primary's" \
	"${p_sum:-?}), reason \"$(jget "$name.sb.out" .reason)\", seen" \
	"$(jget "$name.sb.out" .lost_ms) ms after its last commit, twin continued" \
	"$(jget "$name.sb.out" .cont_ms) ms later"

t="$name: the standby fails over at an epoch of 5 or more"
if [ "$s_rc" = 0 ] && [ "$(jget "$name.sb.out" .failover)" = true ] &&
   [ "${e:-0}" -ge 5 ] 2>/dev/null; then
	ktap_ok "$t"
else
	show "$name.sb.out" "$name.sb.err" "$name.p.err"
	ktap_fail "$t"
fi
ktap_result "$name: the twin's memory is that epoch's (checksums)" \
	test -n "$p_sum" -a "$p_sum" = "$s_sum"
ktap_result "$name: the twin runs on from the workload's heartbeat" \
	wait_for 30 twin_runs "$name"
on_peer kill -KILL "$twin_pid" 2>/dev/null
peer_wait "$name.twin"

# ---- 4. the link cut (pair) ---------------------------------------------------

name=cut
if [ "$topology" != pair ]; then
	ktap_skip "$name: pair topology only (rxe loops packets back before any qdisc)"
	ktap_skip "$name: pair topology only"
else
	start_source w2 "$RATE" || diag "the second workload did not start"
	if start_standby "$name" --no-auth --keepalive "$KA"; then
		"$RDMAMIGCTL" protect --pid "$src_pid" --no-auth --checksum --mc-delay 50 \
			--keepalive "$KA" "rdma:$DEST_ADDR:$port" >"$dir/$name.p" 2>"$dir/$name.p.err" &
		prot_pid=$!
		local_pids+=("$prot_pid")
		wait_for "$TIMEOUT" epochs_printed "$name.p" 5 || diag "$name: no 5 epochs"
		write_cut_script
		# Loaded now: a request_module() under TCG takes seconds.
		on_peer modprobe -a sch_ingress cls_matchall act_gact sch_netem
		link_cut=1
		on_peer bash "$dir/cut.sh" on
		wait "$prot_pid"
		p_rc=$?
		peer_wait "$name.sb"
		s_rc=$?
		on_peer bash "$dir/cut.sh" off
		link_cut=
		pair_link_ready 30 || diag "$name: the link did not come back"
	else
		p_rc=- s_rc=-
	fi
	e=$(jget "$name.sb.out" .mc_epochs)
	p_sum=$(sum_of "$name.p" "$e")
	s_sum=$(jget "$name.sb.out" .checksum)
	# The cut happened between the write to tc and its exit: timed from the
	# write, the figures are at most that long.
	read -r tc_t0 cut_at < "$dir/cut.at" 2>/dev/null
	lost_at=$(jget "$name.sb.out" .lost_at_us)
	cont_ms=$(jget "$name.sb.out" .cont_ms)
	if [[ "$cut_at" =~ ^[0-9]+$ ]] && [[ "$lost_at" =~ ^[0-9]+$ ]] && [[ "$cont_ms" =~ ^[0-9]+$ ]]; then
		seen_ms=$(((lost_at - tc_t0) / 1000))
		failover_ms=$((seen_ms + cont_ms))
		tc_ms=$(((cut_at - tc_t0) / 1000))
	else
		seen_ms=- failover_ms=- tc_ms=-
	fi
	bound=$((2 * KA + 1000 + KA_SLACK_MS))
	diag "$name: standby exit $s_rc, failover $(jget "$name.sb.out" .failover) at epoch" \
		"$e, reason \"$(jget "$name.sb.out" .reason)\"; from the cut: failure seen after" \
		"$seen_ms ms, twin continued after $failover_ms ms (bound $bound ms; tc exited $tc_ms ms after the write; its checksum" \
		"took $(jget "$name.sb.out" .checksum_ms) ms more); protect exit $p_rc:" \
		"$(tail -n 1 "$dir/$name.p.err")"
	# The time is a figure, not a check: tc's own commands take seconds
	# on a busy TCG host.
	t="$name: the standby's keepalive finds the primary silent, it fails over at that epoch's checksum, the twin runs"
	if [ "$s_rc" = 0 ] && [ "$(jget "$name.sb.out" .failover)" = true ] &&
	   jget "$name.sb.out" .reason | grep -q "peer silent" &&
	   [ -n "$p_sum" ] && [ "$p_sum" = "$s_sum" ] &&
	   wait_for 30 twin_runs "$name"; then
		ktap_ok "$t"
	else
		show "$name.sb.out" "$name.sb.err" "$name.p.err"
		ktap_fail "$t"
	fi
	t="$name: protect says the backup is lost (exit 1), the workload runs on"
	if [ "$p_rc" = 1 ] && grep -q "backup is lost" "$dir/$name.p.err" &&
	   [ "$(state "$src_pid")" != T ]; then
		ktap_ok "$t"
	else
		diag "workload state $(state "$src_pid")"; show "$name.p.err"
		ktap_fail "$t"
	fi
	kill -KILL "$src_pid" 2>/dev/null
	on_peer kill -KILL "$twin_pid" 2>/dev/null
	peer_wait "$name.twin"
fi

# ---- 5. nothing left ----------------------------------------------------------

left_here=$(sessions_left)
left_peer=$(on_peer "$RDMAMIGCTL" -j session list 2>/dev/null | jq 'length' 2>/dev/null)
ktap_result "no session left here ($left_here) or on the standby's side ($left_peer)" \
	test "$left_here" = 0 -a "$left_peer" = 0

ktap_finish
