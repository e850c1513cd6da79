#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Post-copy of a process by pid: rdmamigctl migrate --postcopy into an
# unmodified stopped twin served by rdmamigctl incoming --postcopy
# (ptrace-injected userfaultfd, netlink FETCH, UFFDIO_COPY).
#
#   1. the netlink commands' refusals (nl_raw, one socket that owns its
#      sessions): FETCH with an unaligned or oversized staging buffer,
#      FETCH and OWED on a destination that is not in post-copy, FETCH
#      at an address outside the blocks, POSTCOPY on a destination and
#      on an unconnected source, ROUND with POSTCOPY and FINAL,
#      POSTCOPY_RESUME from a session that does not exist; each
#      with its extended-ACK text, and the session still there after
#   2. a 64 MiB rdmamig-workload writing as fast as it can (faster than
#      the link moves pages) switches to post-copy by itself
#      (--postcopy=auto --max-rounds 8): round 3 would be no smaller
#      than round 2 (all pages, both), so it switches in its place, after
#      2 pre-copy rounds; both ends succeed; the checksum of the source
#      (stopped since the switch) equals that of the twin's memory at the
#      switch (incoming keeps a copy: the pages it had, and each page
#      FETCH brought); pages were owed; every owed page was fetched
#      exactly once (fetched_twice 0, fault + sweep pages = owed, none
#      placed twice or never), all of them discarded in the twin first;
#      the source is left stopped; the twin carries on from the source's
#      heartbeat and advances
#   3. the source's rdmamigctl killed (SIGKILL) in post-copy (a writer
#      at 20 MB/s: its owed pages scattered, the twin drops its memory
#      whole in one injected madvise call and incoming writes back what
#      was not owed): its
#      socket closes, its session goes and the connection with it; the
#      destination's FETCH fails, incoming kills the twin (its missing
#      pages can no longer come) and exits 1 saying so; the source
#      process stays stopped
#   4. migrate --postcopy against an incoming without --postcopy: the
#      source refuses before the first round, saying why, and its
#      process keeps running; the twin stays stopped
#   5. (pair only: rxe loopback bypasses the NIC's qdisc) the link cut
#      for CUT_S (5) seconds in post-copy (tc on this VM's NIC, as
#      postcopy_fail_test.sh does), a 1000 ms keepalive and
#      --resume-wait 60 at both ends: both sessions fail, the twin's
#      faults wait, the source reconnects and resumes (netlink
#      POSTCOPY_RESUME) and the destination resumes before listening
#      again; both ends exit 0, the checksums are equal, nothing was
#      fetched twice, one resume on each side
#   6. --resume-wait does not outlast a cancel: the source's session
#      cancelled in post-copy (rdmamigctl session cancel; a 20 MB/s
#      writer, as in 3), --resume-wait 60 here and 5 at the destination:
#      migrate exits 1 at once without reconnecting, its process left
#      stopped; the destination waits its 5 s for a resume that does not
#      come, then kills the twin and exits 1
#
# Loop topology: both ends in this VM.  Pair topology: the twin and
# rdmamigctl incoming run on the peer VM ($RDMAMIG_PEER), the source here.
source "$(dirname "$0")/lib.sh"
require_root

here=$(cd "$(dirname "$0")" && pwd)
NL_RAW=$here/nl_raw
WORKLOAD=${RDMAMIG_WORKLOAD:-$TOP/tools/rdmamig-workload/rdmamig-workload}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
SIZE=64			# MiB
BASE=0x7e0000000000	# the workload's region
REGION=anon@$BASE	# as rdmamigctl names it
FAST=1000		# MB/s: as fast as the workload can write
CUT_RATE=20		# MB/s: owed pages scattered, the window dropped whole
DEV=${RDMAMIG_NETDEV:-}	# case 5 cuts this VM's NIC
CUT_S=${RDMAMIG_CUT_S:-5}
KA=1000			# keepalive, ms
# Times scale with RDMAMIG_MIGRATE_TIMEOUT (120 s by default; the debug
# kernel's 1200 makes every wait 10 times longer: its pair round 1 of 64
# MiB took 80 s, past the fixed 60 s waits).
X=$(( ${RDMAMIG_MIGRATE_TIMEOUT:-120} / 120 ))
[ "$X" -ge 1 ] || X=1

source "$(dirname "$0")/procmig_lib.sh"
procmig_setup postcopy_pid "$WORKLOAD" "$RDMAMIGCTL" "$NL_RAW"
# incoming --postcopy makes the twin call userfaultfd(2): a kernel without
# CONFIG_USERFAULTFD (the debug kernel's tinyconfig once) cannot run it.
require_userfaultfd

# shellcheck disable=SC2317 # called through wait_for
peer_gone()
{
	local st
	st=$(peer_state "$1")
	[ "$st" = Z ] || [ "$st" = - ]
}

# shellcheck disable=SC2317 # called from the trap
procmig_cleanup_hook()
{
	[ "$topology" = pair ] && [ -n "$DEV" ] && clear_qdiscs
}

clear_qdiscs()
{
	tc qdisc del dev "$DEV" root 2>/dev/null
	tc qdisc del dev "$DEV" ingress 2>/dev/null
}

# cut_link on|off: lib.sh.

# shellcheck disable=SC2317 # called through wait_for
exited()
{
	! kill -0 "$1" 2>/dev/null
}

ktap_plan 22
diag "topology $topology, destination $DEST_ADDR, workload $SIZE MiB"

# ---- 1. The netlink commands' refusals ---------------------------------------

# raw_case NAME WANT REQUEST...: the line nl_raw prints for the request
# before last matches WANT (an extended regular expression), and the
# last one (get-session of the same session, where there is one) is
# answered: the refusal changed nothing.
raw_case()
{
	local name=$1 want=$2 out
	shift 2
	out=$("$NL_RAW" "$@" 3<>"/proc/$local_twin/mem" 2>&1)
	if [ "$(sed -n '$p' <<<"$out")" = "ok 1" ] &&
	   grep -Eq -- "$want" <<<"$(tail -n 2 <<<"$out" | head -n 1)"; then
		ktap_ok "$name"
	else
		diag "nl_raw: $(tr '\n' '|' <<<"$out")"
		ktap_fail "$name"
	fi
}

# A local stopped twin to build sessions over (mem-fd=3 is its memory).
"$WORKLOAD" --twin --size "$SIZE" --rate 1 --pid-file "$dir/local.pid" \
	>"$dir/local.out" 2>&1 &
local_pids+=($!)
wait_for 30 test -s "$dir/local.pid"
local_twin=$(cat "$dir/local.pid" 2>/dev/null)
local_twin=${local_twin:-0}
wait_for 30 grep -q '^State:.*T' "/proc/$local_twin/status" 2>/dev/null

BLOCK=block=$REGION,$BASE,$((SIZE << 20))
dest_session=(new-session "target-pid=$local_twin" mem-fd=3 role=2 "secret-file=$RDMAMIG_SECRET_FILE" "$BLOCK")
src_session=(new-session "target-pid=$local_twin" mem-fd=3 role=1 "secret-file=$RDMAMIG_SECRET_FILE" "$BLOCK")
check_alive=(-- get-session session-id=@)

raw_case "FETCH: an unaligned staging buffer is refused, naming BUF" \
	'^error -22 .*extack "BUF must be page-aligned" offset' \
	"${dest_session[@]}" -- fetch session-id=@ "addr=$BASE" buf=0x10001 \
	buf-len=4096 "${check_alive[@]}"
raw_case "FETCH: a staging buffer over 1 MiB is refused" \
	'^error -22 .*extack "BUF_LEN must be a page multiple, 1 MiB at most"' \
	"${dest_session[@]}" -- fetch session-id=@ "addr=$BASE" buf=0x10000 \
	buf-len=$((2 << 20)) "${check_alive[@]}"
raw_case "FETCH on a destination not in post-copy: ENOTCONN, says so" \
	'^error -107 .*extack "the session is not in post-copy \(not switched yet, or over\)"' \
	"${dest_session[@]}" -- fetch session-id=@ "addr=$BASE" buf=0x10000 \
	buf-len=4096 "${check_alive[@]}"
raw_case "OWED on a destination not in post-copy: ENOTCONN, says so" \
	'^error -107 .*extack "the session is not in post-copy' \
	"${dest_session[@]}" -- owed session-id=@ block-index=0 first-page=0 \
	npages=64 buf=0x10000 "${check_alive[@]}"
raw_case "FETCH at an address outside the blocks is refused, naming ADDR" \
	'^error -14 .*extack "ADDR is in none of the session.s blocks"' \
	"${dest_session[@]}" -- fetch session-id=@ addr=0x1000 buf=0x10000 \
	buf-len=4096 "${check_alive[@]}"
t="POSTCOPY_RESUME from the session itself or from none is refused, naming RESUME_FROM"
out=$("$NL_RAW" "${dest_session[@]}" -- postcopy-resume session-id=@ resume-from=@ \
	-- postcopy-resume session-id=@ resume-from=4294967295 "${check_alive[@]}" \
	3<>"/proc/$local_twin/mem" 2>&1)
if grep -q '^error -22 .*extack "a session cannot resume from itself" offset' <<<"$out" &&
   grep -q '^error -2 .*extack "no session with this id" offset' <<<"$out" &&
   [ "$(sed -n '$p' <<<"$out")" = "ok 1" ]; then
	ktap_ok "$t"
else
	diag "nl_raw: $(tr '\n' '|' <<<"$out")"
	ktap_fail "$t"
fi
t="POSTCOPY: refused on a destination and on an unconnected source"
out1=$("$NL_RAW" "${dest_session[@]}" -- postcopy session-id=@ 3<>"/proc/$local_twin/mem" 2>&1)
out2=$("$NL_RAW" "${src_session[@]}" -- postcopy session-id=@ \
	-- round session-id=@ block-index=0 first-page=0 bitmap=0100000000000000 flags=3 \
	3<>"/proc/$local_twin/mem" 2>&1)
if grep -q 'extack "a destination session cannot connect or send"' <<<"$out1" &&
   grep -q '^error -107 .*extack "the session is not connected"' <<<"$out2" &&
   grep -q '^error -22 .*extack "POSTCOPY and FINAL exclude each other"' <<<"$out2"; then
	ktap_ok "$t; ROUND with POSTCOPY and FINAL too"
else
	diag "destination: $(tr '\n' '|' <<<"$out1") source: $(tr '\n' '|' <<<"$out2")"
	ktap_fail "$t; ROUND with POSTCOPY and FINAL too"
fi

# ---- 2. The migration ----------------------------------------------------------

src_rc=125 dst_rc=125
rm -f "$dir/run.port"
if start_source run.source "$FAST" && start_twin run.twin "$SIZE" &&
   peer_bg inc_run "$RDMAMIGCTL" -j incoming --pid "$twin_pid" --postcopy --checksum \
	--timeout $((60 * X)) --port-file "$dir/run.port" "rdma:$DEST_ADDR:0" &&
   wait_for $((60 * X)) test -s "$dir/run.port"; then
	"$RDMAMIGCTL" -j migrate --pid "$src_pid" --postcopy=auto --max-rounds 8 --checksum \
		"rdma:$DEST_ADDR:$(<"$dir/run.port")" >"$dir/run.src" 2>"$dir/run.src.err"
	src_rc=$?
	peer_wait inc_run
	dst_rc=$?
else
	diag "the source, the twin or its incoming did not start"
	show inc_run.out inc_run.err
fi

src_sum=$(jget run.src .checksum)
dst_sum=$(jget inc_run.out .checksum)
owed=$(jget inc_run.out .postcopy_owed)
src_owed=$(jget run.src .postcopy_owed)
fault_pages=$(jget inc_run.out .postcopy_fault_pages)
sweep_pages=$(jget inc_run.out .postcopy_sweep_pages)
twice=$(jget inc_run.out .postcopy_fetched_twice)
diag "run: source exit $src_rc, destination exit $dst_rc; rounds $(jget run.src .rounds)," \
	"total $(jget run.src .total_ms) ms, downtime $(jget run.src .postcopy_downtime_us) us," \
	"all read $(jget run.src .postcopy_ms) ms after the switch"
diag "run: owed $src_owed/$owed (source/destination), faults $(jget inc_run.out .postcopy_faults)" \
	"($fault_pages pages, $(jget inc_run.out .fault_msgs) fault messages," \
	"$(jget inc_run.out .zero_filled) zero-filled), sweep $sweep_pages pages, fetched twice $twice," \
	"discarded $(jget inc_run.out .discarded) in $(jget inc_run.out .discard_calls) calls, $(jget inc_run.out .restored) restored (twin continued $(jget inc_run.out .cont_us) us after the switch was seen), placed twice $(jget inc_run.out .placed_twice)," \
	"unplaced $(jget inc_run.out .unplaced)"
diag "run: checksums source $src_sum destination $dst_sum"
[ "$src_rc/$dst_rc" = 0/0 ] || show run.src run.src.err inc_run.out inc_run.err

t="migrate --postcopy=auto: both ends succeed, the twin's memory at the switch equals the source's"
if [ "$src_rc/$dst_rc" = 0/0 ] && [[ "$src_sum" =~ ^0x[0-9a-f]{16}$ ]] &&
   [ "$src_sum" = "$dst_sum" ] && [ "$(jget run.src .postcopy)" = true ] &&
   [ "$(jget inc_run.out .postcopy)" = true ]; then
	ktap_ok "$t"
else
	ktap_fail "$t"
fi
rounds=$(jget run.src .rounds)
# The module counts the rounds sent: the switch is none (its pages are owed).
ktap_result "--postcopy=auto switched when rounds stopped shrinking: after $rounds pre-copy rounds, not max-rounds 8" \
	test "${rounds:-0}" -ge 2 -a "${rounds:-99}" -le 6 2>/dev/null
ktap_result "pages were owed at the switch, the same count at both ends ($owed)" \
	test "${owed:-0}" -gt 0 -a "$owed" = "$src_owed" 2>/dev/null
ktap_result "every owed page fetched once: fetched_twice 0, fault + sweep pages = owed" \
	test "$twice" = 0 -a "$((fault_pages + sweep_pages))" = "${owed:-x}" 2>/dev/null
ktap_result "every owed page discarded in the twin, placed once, none left" \
	test "$(jget inc_run.out '[.discarded, .placed_twice, .unplaced] | map(tostring) | join(" ")')" = "$owed 0 0"

t="the source is left stopped; the twin carries on from its heartbeat and advances"
from=$(awk '$1 == "twin:" { print $5 }' "$dir/run.twin.hb" 2>/dev/null)
src_last=$(hb_last run.source.hb)
diag "run: source's last heartbeat $src_last, twin continued from ${from:-?}"
if [ "$src_rc" = 0 ] && [ "$(state "$src_pid")" = T ] &&
   [[ "$from" =~ ^[0-9]+$ ]] && [ "$from" -ge "$src_last" ] &&
   [ "$from" -le $((src_last + 1)) ] &&
   wait_for 10 hb_beyond run.twin.hb $((from + 2)); then
	ktap_ok "$t"
else
	diag "source state $(state "$src_pid"), twin state $(peer_state "$twin_pid")"
	show run.twin.hb
	ktap_fail "$t"
fi
ktap_result "the twin is no longer traced" \
	test "$(on_peer awk '/^TracerPid:/ { print $2 }' "/proc/$twin_pid/status")" = 0
kill_twin run.twin "$twin_pid"
kill -KILL "$src_pid" 2>/dev/null
wait "$src_pid" 2>/dev/null

# ---- 3. The source gone in post-copy -----------------------------------------

t1="source killed in post-copy: incoming exits 1 and kills the twin, saying why"
t2="source killed in post-copy: the source process stays stopped"
rm -f "$dir/cut.port"
if start_source cut.source "$CUT_RATE" && start_twin cut.twin "$SIZE" &&
   peer_bg inc_cut "$RDMAMIGCTL" incoming --pid "$twin_pid" --postcopy \
	--timeout $((60 * X)) --port-file "$dir/cut.port" "rdma:$DEST_ADDR:0" &&
   wait_for $((60 * X)) test -s "$dir/cut.port"; then
	"$RDMAMIGCTL" migrate --pid "$src_pid" --postcopy=1 \
		"rdma:$DEST_ADDR:$(<"$dir/cut.port")" >"$dir/cut.src" 2>"$dir/cut.src.err" &
	mig=$!
	local_pids+=("$mig")
	wait_for $((60 * X)) grep -q "post-copy switch" "$dir/cut.src"
	sleep 0.3
	kill -KILL "$mig" 2>/dev/null
	wait "$mig" 2>/dev/null
	peer_wait inc_cut
	drc=$?
	diag "cut: $(grep '^post-copy:' "$dir/inc_cut.out")"
	diag "cut: destination exit $drc: $(tr '\n' ' ' <"$dir/inc_cut.err")"
	if grep -q "^migration completed" "$dir/cut.src" ||
	   grep -q "^migration completed" "$dir/inc_cut.out"; then
		ktap_skip "$t1" "post-copy ended before the kill"
		ktap_skip "$t2" "post-copy ended before the kill"
	else
		if [ "$drc" = 1 ] &&
		   grep -q "pid $twin_pid killed: it ran in post-copy" "$dir/inc_cut.err" &&
		   wait_for 10 peer_gone "$twin_pid"; then
			ktap_ok "$t1"
		else
			diag "twin state $(peer_state "$twin_pid")"
			show cut.src inc_cut.out inc_cut.err
			ktap_fail "$t1"
		fi
		ktap_result "$t2" test "$(state "$src_pid")" = T
	fi
else
	diag "the source, the twin or its incoming did not start"
	ktap_fail "$t1"
	ktap_fail "$t2"
fi
kill_twin cut.twin "$twin_pid"
kill -KILL "$src_pid" 2>/dev/null
wait "$src_pid" 2>/dev/null

# ---- 4. A destination that does not allow post-copy --------------------------

t1="migrate --postcopy to an incoming without it: refused before the first round, the process runs on"
t2="... and the twin stays stopped"
rm -f "$dir/no.port"
if start_source no.source 6 && start_twin no.twin "$SIZE" &&
   peer_bg inc_no "$RDMAMIGCTL" incoming --pid "$twin_pid" --timeout $((60 * X)) \
	--port-file "$dir/no.port" "rdma:$DEST_ADDR:0" &&
   wait_for $((60 * X)) test -s "$dir/no.port"; then
	"$RDMAMIGCTL" migrate --pid "$src_pid" --postcopy \
		"rdma:$DEST_ADDR:$(<"$dir/no.port")" >"$dir/no.src" 2>"$dir/no.src.err"
	rc=$?
	peer_wait inc_no
	drc=$?
	diag "no: source exit $rc: $(tr '\n' ' ' <"$dir/no.src.err")"
	diag "no: destination exit $drc: $(tr '\n' ' ' <"$dir/inc_no.err")"
	if [ $rc = 1 ] && grep -q "the destination does not allow post-copy" "$dir/no.src.err" &&
	   ! grep -q '^round' "$dir/no.src" && [ "$(state "$src_pid")" != T ]; then
		ktap_ok "$t1"
	else
		show no.src no.src.err
		ktap_fail "$t1"
	fi
	ktap_result "$t2" test "$(peer_state "$twin_pid")" = T
else
	diag "the source, the twin or its incoming did not start"
	ktap_fail "$t1"
	ktap_fail "$t2"
fi
kill_twin no.twin "$twin_pid"

# ---- 5. A cut link in post-copy, resumed (pair) ------------------------------

t1="resume: a ${CUT_S} s link cut in post-copy, resumed (--resume-wait): both exit 0, checksums equal"
t2="resume: one resume on each side, nothing fetched twice, every owed page placed once"
if [ "$topology" != pair ]; then
	ktap_skip "$t1" "pair topology only (rxe loopback bypasses the NIC's qdisc: no cut)"
	ktap_skip "$t2" "pair topology only (rxe loopback bypasses the NIC's qdisc: no cut)"
elif [ -z "$DEV" ] || ! command -v tc >/dev/null || ! modprobe sch_netem; then
	ktap_skip "$t1" "no \$RDMAMIG_NETDEV, tc or sch_netem"
	ktap_skip "$t2" "no \$RDMAMIG_NETDEV, tc or sch_netem"
else
	clear_qdiscs
	src_rc=125 dst_rc=125
	rm -f "$dir/res.port"
	t0=$SECONDS
	if start_source res.source "$FAST" && start_twin res.twin "$SIZE" &&
	   peer_bg inc_res "$RDMAMIGCTL" -j incoming --pid "$twin_pid" --postcopy --checksum \
		--keepalive $KA --resume-wait 60 --timeout $((60 * X)) --port-file "$dir/res.port" \
		"rdma:$DEST_ADDR:0" &&
	   wait_for $((60 * X)) test -s "$dir/res.port"; then
		timeout $((150 * X)) "$RDMAMIGCTL" migrate --pid "$src_pid" --postcopy=auto --max-rounds 8 \
			--checksum --keepalive $KA --resume-wait 60 \
			"rdma:$DEST_ADDR:$(<"$dir/res.port")" >"$dir/res.src" 2>"$dir/res.src.err" &
		mig=$!
		local_pids+=("$mig")
		wait_for $((60 * X)) grep -q "post-copy switch" "$dir/res.src"
		sleep 0.5
		if grep -q "^migration completed" "$dir/res.src"; then
			diag "resume: post-copy ended before the cut"
		fi
		cut_link on || diag "resume: cannot cut the link with tc"
		diag "resume: this VM cut off $((SECONDS - t0)) s into the case"
		sleep "$CUT_S"
		cut_link off || diag "resume: cannot restore the link"
		wait_for $((150 * X)) exited "$mig"
		wait "$mig" 2>/dev/null
		src_rc=$?
		peer_wait inc_res
		dst_rc=$?
	else
		diag "the source, the twin or its incoming did not start"
		show inc_res.out inc_res.err
	fi
	clear_qdiscs
	src_sum=$(awk '$1 == "checksum" { print $2 }' "$dir/res.src" 2>/dev/null)
	dst_sum=$(jget inc_res.out .checksum)
	diag "resume: source exit $src_rc, destination exit $dst_rc, $((SECONDS - t0)) s;" \
		"source: $(grep -E '^migrate: post-copy|resumed' "$dir/res.src.err" "$dir/res.src" 2>/dev/null | tr '\n' ' ')"
	diag "resume: destination: $(grep -E 'post-copy' "$dir/inc_res.err" 2>/dev/null | tr '\n' ' ')"
	diag "resume: owed $(jget inc_res.out .postcopy_owed), resumes $(jget inc_res.out .resumes)," \
		"held faults $(jget inc_res.out .held_faults), faults $(jget inc_res.out .postcopy_fault_pages)" \
		"+ sweep $(jget inc_res.out .postcopy_sweep_pages) pages, fetched twice" \
		"$(jget inc_res.out .postcopy_fetched_twice), placed twice $(jget inc_res.out .placed_twice)," \
		"unplaced $(jget inc_res.out .unplaced); checksums $src_sum $dst_sum"
	if [ "$src_rc/$dst_rc" = 0/0 ] && [[ "$src_sum" =~ ^0x[0-9a-f]{16}$ ]] &&
	   [ "$src_sum" = "$dst_sum" ]; then
		ktap_ok "$t1"
	else
		show res.src res.src.err inc_res.out inc_res.err
		ktap_fail "$t1"
	fi
	ktap_result "$t2" test "$(jget inc_res.out '[.resumes, .postcopy_fetched_twice, .placed_twice, .unplaced] | map(tostring) | join(" ")')/$(grep -c '^  post-copy resumed 1 times' "$dir/res.src" 2>/dev/null)" = "1 0 0 0/1"
	kill_twin res.twin "$twin_pid"
	kill -KILL "$src_pid" 2>/dev/null
	wait "$src_pid" 2>/dev/null
fi

# ---- 6. A cancel is not resumed ----------------------------------------------

t1="cancel in post-copy with --resume-wait: migrate exits 1 without reconnecting, its process stopped"
t2="... the destination gives up after its --resume-wait 5, kills the twin, exits 1"
rm -f "$dir/can.port"
if start_source can.source "$CUT_RATE" && start_twin can.twin "$SIZE" &&
   peer_bg inc_can "$RDMAMIGCTL" incoming --pid "$twin_pid" --postcopy --resume-wait 5 \
	--timeout $((60 * X)) --port-file "$dir/can.port" "rdma:$DEST_ADDR:0" &&
   wait_for $((60 * X)) test -s "$dir/can.port"; then
	timeout $((120 * X)) "$RDMAMIGCTL" migrate --pid "$src_pid" --postcopy=1 --resume-wait 60 \
		"rdma:$DEST_ADDR:$(<"$dir/can.port")" >"$dir/can.src" 2>"$dir/can.src.err" &
	mig=$!
	local_pids+=("$mig")
	wait_for $((60 * X)) grep -q "post-copy switch" "$dir/can.src"
	sid=$("$RDMAMIGCTL" -j session list 2>/dev/null |
		jq -r '.[] | select(.role == "source" and .state == "postcopy") | .id' | head -n 1)
	t_can=$SECONDS
	"$RDMAMIGCTL" session cancel "${sid:-none}" || diag "cancel: cannot cancel session '$sid'"
	wait_for $((60 * X)) exited "$mig"
	wait "$mig" 2>/dev/null
	rc=$?
	src_s=$((SECONDS - t_can))
	peer_wait inc_can
	drc=$?
	dst_s=$((SECONDS - t_can))
	diag "cancel: session $sid; source exit $rc after $src_s s: $(tr '\n' ' ' <"$dir/can.src.err")"
	diag "cancel: destination exit $drc after $dst_s s: $(tr '\n' ' ' <"$dir/inc_can.err")"
	if grep -q "^migration completed" "$dir/can.src" ||
	   grep -q "^migration completed" "$dir/inc_can.out"; then
		ktap_skip "$t1" "post-copy ended before the cancel"
		ktap_skip "$t2" "post-copy ended before the cancel"
	else
		if [ "$rc" = 1 ] && ! grep -q "reconnecting" "$dir/can.src.err" &&
		   grep -q "pid $src_pid was left stopped" "$dir/can.src.err" &&
		   [ "$(state "$src_pid")" = T ]; then
			ktap_ok "$t1"
		else
			show can.src can.src.err
			ktap_fail "$t1"
		fi
		if [ "$drc" = 1 ] && grep -q "waiting up to 5 s" "$dir/inc_can.err" &&
		   grep -q "pid $twin_pid killed" "$dir/inc_can.err" &&
		   wait_for 10 peer_gone "$twin_pid"; then
			ktap_ok "$t2"
		else
			show inc_can.out inc_can.err
			ktap_fail "$t2"
		fi
	fi
else
	diag "the source, the twin or its incoming did not start"
	ktap_fail "$t1"
	ktap_fail "$t2"
fi
kill_twin can.twin "$twin_pid"
kill -KILL "$src_pid" 2>/dev/null
wait "$src_pid" 2>/dev/null

ktap_finish
