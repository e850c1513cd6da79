#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Post-copy when something fails after the switch, with the example VMM
# (tools/rdmamig-vmm --postcopy) at both ends; see "If the link fails
# during post-copy" in Documentation/protocol.rst and
# RDMAMIG_IOC_POSTCOPY_RESUME in Documentation/uapi.rst.
#
#   1. resume (pair only): 256 MiB, every page owed (21-27 s of post-copy
#      in pair), a 1000 ms keepalive and --resume-wait 60 at both ends.
#      Once the source's session is in post-copy (and 2 s more), VM A is
#      cut off for CUT_S (5) seconds (tc, as netem_test.sh does: netem
#      loss 100% on its NIC's egress, a matchall drop on its ingress).
#      Both sessions fail (ETIMEDOUT, "peer silent"); the destination's
#      guest waits in its faults, its VMM opens a new session, hands it
#      the failed one (POSTCOPY_RESUME) and listens on the same port; the
#      source reconnects once the link is back, resumes, switches again
#      and completes.  Asserted: both VMMs exit 0, the destination
#      verified every page (the guest's writes included), one resume on
#      each side, nothing fetched twice (postcopy_fetched_twice 0),
#      nothing placed twice, nothing left unplaced; the new session owed
#      fewer pages than the first (what was fetched before stays).  The
#      timeline (cut to failure by the kernel's clock, failure to
#      reconnection and to the new switch by the source's) is printed.
#   2. source killed: 256 MiB all owed, the source SIGKILLed in
#      post-copy; the destination (--resume-wait 10) finds
#      no source to resume with and gives up within the wait plus 30 s:
#      exit 1, its output says the memory is INCOMPLETE and how many
#      owed pages are missing (more than 0)
#   3. cancels, by netlink (rdmamigctl session cancel), at each post-copy
#      state:
#        switch:src   the source stopped (--stop-at final) with the owed
#                     pages named, before RDMAMIG_IOC_POSTCOPY
#        pc:src       the source's session in post-copy (COMPLETE waits)
#        pc:dst       the destination's session in post-copy
#      The cancelled side ends with ECANCELED (errno 125) and does not
#      resume (--resume-wait is given to both); the other side fails
#      (it may try to resume, for --resume-wait 5 s, and gives up); no
#      VMM runs longer than its bound; a destination that ran its guest
#      says the memory is incomplete.
#
# Loop topology: case 1 is skipped (rxe hands a local address's packets
# to its own receive path: no qdisc sees them, a link cannot be cut).
# RDMAMIG_PCFAIL_CASES="resume srckill switch:src pc:src pc:dst" picks;
# by default a pair run leaves the cancels (3) to the loop run, unless
# RDMAMIG_CHECK_FULL=1 (make check-full).
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
DEV=$RDMAMIG_NETDEV
KA=1000
CUT_S=${RDMAMIG_CUT_S:-5}
# The VMMs' --timeout and this test's waits: the debug kernel needs more.
TIMEOUT=${RDMAMIG_MIGRATE_TIMEOUT:-120}
ECANCELED=125

[ -x "$VMM" ] || { echo "1..0 # SKIP $VMM not built"; exit $KSFT_SKIP; }
[ -x "$RDMAMIGCTL" ] || { echo "1..0 # SKIP $RDMAMIGCTL not built"; exit $KSFT_SKIP; }
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit $KSFT_SKIP; }
topology=${RDMAMIG_TOPOLOGY:-loop}
if [ $topology = pair ] && [ -z "${RDMAMIG_PEER:-}" ]; then
	echo "1..0 # SKIP pair topology without \$RDMAMIG_PEER"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }
require_userfaultfd
ulimit -l unlimited 2>/dev/null

tmp=$(mktemp -d)
dest_pid= dest_id= src_pid=
clear_qdiscs()
{
	tc qdisc del dev "$DEV" root 2>/dev/null
	tc qdisc del dev "$DEV" ingress 2>/dev/null
}
cleanup()
{
	[ $topology = pair ] && clear_qdiscs
	[ -n "$src_pid" ] && kill -9 "$src_pid" 2>/dev/null
	[ -n "$dest_pid" ] && kill -9 "$dest_pid" 2>/dev/null
	if [ -n "$dest_id" ]; then
		"$RDMAMIG_PEER" --kill "$dest_id" KILL >/dev/null 2>&1
		"$RDMAMIG_PEER" --wait "$dest_id" >/dev/null 2>&1
	fi
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 9
diag "topology $topology, vmm $VMM"

jget()
{
	grep '^{' "$1" 2>/dev/null | tail -n 1 | jq -r "$2" 2>/dev/null
}

show()
{
	local f
	for f in "$tmp/$1.src" "$tmp/$1.dst"; do
		[ -f "$f" ] && grep -v '^{' "$f" | sed "s|^|# ${f##*/}: |" | cut -c1-300
		[ -f "$f" ] && grep '^{' "$f" | sed "s|^|# ${f##*/}: |" | cut -c1-600
	done
}

ms_since()
{
	local now=$EPOCHREALTIME
	echo $(((${now/./} - ${1/./}) / 1000))
}

exited()
{
	! kill -0 "$1" 2>/dev/null
}

# on_dest CMD...: run CMD where the destination runs.
on_dest()
{
	if [ $topology = pair ]; then
		"$RDMAMIG_PEER" "$@"
	else
		"$@"
	fi
}

# session_id ROLE [PID [STATE]]: the id of the session of ROLE (owned by
# PID unless 0), from rdmamigctl on the VM that runs it: the one in STATE
# when given, else any that has not failed.  A previous case's
# destination may still be exiting beside this one's: by state, not by
# order (a pair run cancelled such a session, id 0, as it went).
session_id()
{
	local role=$1 pid=${2:-0} state=${3:-} list
	if [ "$role" = dest ]; then
		list=$(on_dest "$RDMAMIGCTL" -j session list 2>/dev/null)
	else
		list=$("$RDMAMIGCTL" -j session list 2>/dev/null)
	fi
	jq -e --arg role "$role" --argjson pid "$pid" --arg state "$state" \
		'first(.[] | select(.role == $role and ($pid == 0 or .owner_pid == $pid) and
		  (if $state != "" then .state == $state
		   else .state != "failed" and .state != "cancelled" end)) | .id)' <<<"$list"
}

# in_postcopy ROLE [PID]: a session of ROLE is in post-copy.
in_postcopy()
{
	local role=$1 pid=${2:-0} list
	if [ "$role" = dest ]; then
		list=$(on_dest "$RDMAMIGCTL" -j session list 2>/dev/null)
	else
		list=$("$RDMAMIGCTL" -j session list 2>/dev/null)
	fi
	jq -e --arg role "$role" --argjson pid "$pid" \
		'any(.[]; .role == $role and ($pid == 0 or .owner_pid == $pid) and
		  .state == "postcopy")' >/dev/null <<<"$list"
}

# start_dest NAME ARGS...: the destination, on a port it picks.
start_dest()
{
	local name=$1 pf
	shift
	if [ $topology = pair ]; then
		pf=$RDMAMIG_OUT/${0##*/}.$name.port
		rm -f "$pf"
		dest_id=$("$RDMAMIG_PEER" --bg "$VMM" dest \
			--listen "$RDMAMIG_PEER_ADDR:0" --port-file "$pf" \
			--timeout "$TIMEOUT" --json "$@") || return 1
		wait_for 60 test -s "$pf"
		dest_host=$RDMAMIG_PEER_ADDR
	else
		pf=$tmp/$name.port
		"$VMM" dest --listen "$LOCAL_ADDR:0" --port-file "$pf" \
			--timeout "$TIMEOUT" --json "$@" >"$tmp/$name.dst" 2>&1 &
		dest_pid=$!
		wait_for 60 test -s "$pf"
		dest_host=$LOCAL_ADDR
	fi
	dest_port=$(cat "$pf" 2>/dev/null)
	rm -f "$pf"
	[ -n "$dest_port" ]
}

# wait_dest NAME SECONDS: dst_rc, or "hung" when the destination did not
# end within SECONDS (it is killed then); dst_s its seconds from t_case.
wait_dest()
{
	local name=$1 bound=$2 t0=$SECONDS
	if [ $topology = pair ]; then
		( sleep "$bound"; "$RDMAMIG_PEER" --kill "$dest_id" KILL >/dev/null 2>&1 ) &
		local killer=$!
		"$RDMAMIG_PEER" --wait "$dest_id" >"$tmp/$name.dst" 2>&1
		dst_rc=$?
		if exited "$killer"; then
			dst_rc=hung
		else
			kill "$killer" 2>/dev/null
		fi
		wait "$killer" 2>/dev/null
		dest_id=
	else
		if wait_for "$bound" exited "$dest_pid"; then
			wait "$dest_pid"
			dst_rc=$?
		else
			kill -9 "$dest_pid"
			wait "$dest_pid" 2>/dev/null
			dst_rc=hung
		fi
		dest_pid=
	fi
	dst_s=$((SECONDS - t0))
}

# wait_src SECONDS: src_rc, or "hung" (killed).
wait_src()
{
	if wait_for "$1" exited "$src_pid"; then
		wait "$src_pid"
		src_rc=$?
	else
		kill -9 "$src_pid"
		wait "$src_pid" 2>/dev/null
		src_rc=hung
	fi
	src_pid=
}

# The cancels do not depend on the link: a pair run leaves them to the
# loop run (250 s of a pair run), but in make check-full.
default_cases="resume srckill switch:src pc:src pc:dst"
[ "$topology" = pair ] && [ "${RDMAMIG_CHECK_FULL:-}" != 1 ] && default_cases="resume srckill"
selected()
{
	[[ " ${RDMAMIG_PCFAIL_CASES:-$default_cases} " == *" $1 "* ]]
}

RAM=(--blocks 4 --size 256)
SRC_PC=(--postcopy=1 --redirty 100 --zero-holes 10)

# cut_link on|off: lib.sh.

# kmsg_ms MARK: ms by the kernel's clock from MARK to the module's next
# "session N: failed:" line ("-" if either is missing).
kmsg_ms()
{
	dmesg | awk -v mark="$1" '
		{ s = $0; sub(/^\[ */, "", s); ts = s + 0 }
		index($0, mark) { t0 = ts; t1 = "" }
		t0 != "" && t1 == "" && /rdmamig: session [0-9]+: failed: / { t1 = ts }
		END { if (t0 == "" || t1 == "") print "-"; else printf "%d\n", (t1 - t0) * 1000 }'
}

# ---- 1. a cut link in post-copy, resumed --------------------------------------

t1="resume: a ${CUT_S} s link cut in post-copy, resumed: both exit 0, every page verified"
t2="resume: one resume each side, nothing fetched or placed twice, no more pages owed after"
resume_ok()
{
	[ "$src_rc" = 0 ] && [ "$dst_rc" = 0 ] &&
		[ "$(jget "$tmp/resume.dst" .verified)" = true ]
}
# The source learns what was read only from whole chunks released
# (POSTCOPY_RELEASE): pages read from a chunk not finished before the cut
# are owed again, and the destination, which has them, does not read
# them twice.  So fewer are owed after only when a chunk was finished (a
# debug-kernel run cut before any was: 2,072 pages placed, none released).
resume_stats()
{
	local s=$tmp/resume.src d=$tmp/resume.dst
	[ "$(jget "$s" .resumes)" = 1 ] && [ "$(jget "$d" .resumes)" = 1 ] &&
		[ "$(jget "$d" .postcopy_fetched_twice)" = 0 ] &&
		[ "$(jget "$d" .placed_twice)" = 0 ] &&
		[ "$(jget "$d" .unplaced)" = 0 ] &&
		[ "$(jget "$d" .placed_not_owed)" = 0 ] &&
		[ "$(jget "$d" .guest_reads_bad)" = 0 ] &&
		[ "$(jget "$s" .postcopy_owed)" -le "$(jget "$s" .first_postcopy_owed)" ]
}
if ! selected resume; then
	ktap_skip "$t1" "not in RDMAMIG_PCFAIL_CASES"
	ktap_skip "$t2" "not in RDMAMIG_PCFAIL_CASES"
elif [ $topology != pair ]; then
	ktap_skip "$t1" "pair topology only (rxe loopback bypasses the NIC's qdisc: no cut)"
	ktap_skip "$t2" "pair topology only (rxe loopback bypasses the NIC's qdisc: no cut)"
elif ! command -v tc >/dev/null || ! modprobe sch_netem; then
	ktap_skip "$t1" "no tc or sch_netem"
	ktap_skip "$t2" "no tc or sch_netem"
else
	clear_qdiscs
	src_rc=- dst_rc=-
	if start_dest resume "${RAM[@]}" --postcopy --keepalive $KA --resume-wait 60; then
		"$VMM" source --connect "$dest_host:$dest_port" "${RAM[@]}" "${SRC_PC[@]}" \
			--seed 21 --keepalive $KA --resume-wait 60 --timeout "$TIMEOUT" \
			--json >"$tmp/resume.src" 2>&1 &
		src_pid=$!
		wait_for "$TIMEOUT" in_postcopy source "$src_pid" ||
			diag "resume: the source is not in post-copy after $TIMEOUT s"
		sleep 2
		t_cut=$EPOCHREALTIME
		cut_link on || diag "resume: cannot cut the link with tc"
		echo "rdmamig-test: post-copy cut" > /dev/kmsg
		diag "resume: VM A cut off (tc took $(ms_since "$t_cut") ms)"
		sleep "$CUT_S"
		cut_link off || diag "resume: cannot restore the link"
		diag "resume: link back $(ms_since "$t_cut") ms after the cut"
		wait_src 300
		wait_dest resume 120
		fail_ms=$(kmsg_ms "rdmamig-test: post-copy cut")
	fi
	clear_qdiscs
	s=$tmp/resume.src d=$tmp/resume.dst
	diag "resume: source exit $src_rc, destination exit $dst_rc; the source's" \
		"session failed $fail_ms ms after the cut (kernel clock), errno" \
		"$(jget "$s" .resume_errno); reconnected $(( $(jget "$s" .resume_reconnect_us) / 1000 )) ms" \
		"and switched again $(( $(jget "$s" .resume_us) / 1000 )) ms after the failure"
	diag "resume: owed $(jget "$s" .first_postcopy_owed) at the switch," \
		"$(jget "$s" .postcopy_owed) still owed at the resume (fetched before:" \
		"$(( $(jget "$s" .first_postcopy_owed) - $(jget "$s" .postcopy_owed) )));" \
		"destination: resumes $(jget "$d" .resumes), faults kept $(jget "$d" .faults_kept)," \
		"placed before the resume $(jget "$d" .placed_before_resume) (resumed" \
		"$(jget "$d" .resume_after_ms) ms after the switch)," \
		"new event pages $(jget "$d" .resume_event_pages), faults $(jget "$d" .postcopy_fault_pages)" \
		"+ sweep $(jget "$d" .postcopy_sweep_pages) pages, owed $(jget "$d" .postcopy_owed)," \
		"fetched twice $(jget "$d" .postcopy_fetched_twice), placed twice $(jget "$d" .placed_twice)," \
		"unplaced $(jget "$d" .unplaced), postcopy_ms $(jget "$d" .postcopy_ms)," \
		"VMM switch to end $(jget "$d" .postcopy_wall_ms) ms"
	resume_ok && resume_stats || show resume
	ktap_result "$t1" resume_ok
	ktap_result "$t2" resume_stats
fi

# ---- 2. the source killed in post-copy ---------------------------------------

t1="source killed in post-copy: the destination gives up within its wait, exit 1"
t2="source killed in post-copy: the destination says the memory is incomplete (pages missing)"
killed_rc()
{
	[ "$dst_rc" = 1 ]
}
killed_incomplete()
{
	local d=$tmp/srckill.dst m
	m=$(jget "$d" .missing_pages)
	[ "$(jget "$d" .incomplete)" = true ] && [[ "$m" =~ ^[0-9]+$ ]] && [ "$m" -gt 0 ] &&
		grep -q "INCOMPLETE" "$d"
}
if selected srckill; then
	src_rc=- dst_rc=-
	pair_link_ready 20 || diag "srckill: the link to VM B is not back"
	if start_dest srckill "${RAM[@]}" --postcopy --resume-wait 10; then
		"$VMM" source --connect "$dest_host:$dest_port" "${RAM[@]}" "${SRC_PC[@]}" \
			--seed 22 --timeout "$TIMEOUT" --json \
			>"$tmp/srckill.src" 2>&1 &
		src_pid=$!
		wait_for "$TIMEOUT" in_postcopy source "$src_pid" ||
			diag "srckill: the source is not in post-copy after 120 s"
		kill -9 "$src_pid"
		wait "$src_pid" 2>/dev/null
		src_pid=
		wait_dest srckill 40
	fi
	d=$tmp/srckill.dst
	diag "srckill: destination exit $dst_rc after $dst_s s: errno $(jget "$d" .errno)" \
		"($(jget "$d" .reason)), missing $(jget "$d" .missing_pages) of" \
		"$(jget "$d" .owed_named) owed pages, resumes $(jget "$d" .resumes)"
	killed_rc && killed_incomplete || show srckill
	ktap_result "$t1" killed_rc
	ktap_result "$t2" killed_incomplete
else
	ktap_skip "$t1" "not in RDMAMIG_PCFAIL_CASES"
	ktap_skip "$t2" "not in RDMAMIG_PCFAIL_CASES"
fi

# ---- 3. cancels at each post-copy state --------------------------------------

# No keepalive here, nor for the killed source (the disconnect tells the
# destination): only the cut needs one, and a 1000 ms keepalive has been
# seen to fail a healthy bulk round on a loaded host (netem_test.sh).

# cancel_case POINT:WHO
cancel_case()
{
	local point=${1%:*} who=${1#*:} name=cancel_${1/:/_} id stop=() s d
	local cancelled other ok=0 nosweep=()
	src_rc=- dst_rc=- cancel_out=
	[ "$point" = switch ] && stop=(--stop-at final)
	# In post-copy, no sweep: only the guest's faults fetch, so the
	# post-copy cannot end by itself before the cancel reaches it (a CI
	# pair run's sweep finished all 65536 pages first, and the cancel
	# found a completed session).
	[ "$point" = pc ] && nosweep=(--sweep-threads 0)
	pair_link_ready 20 || diag "$name: the link to VM B is not back"
	start_dest "$name" "${RAM[@]}" --postcopy --resume-wait 5 "${nosweep[@]}" ||
		{ diag "$name: destination did not start"; return 1; }
	"$VMM" source --connect "$dest_host:$dest_port" "${RAM[@]}" "${SRC_PC[@]}" \
		--seed 23 --resume-wait 5 --timeout "$TIMEOUT" --json \
		"${stop[@]}" >"$tmp/$name.src" 2>&1 &
	src_pid=$!
	if [ "$point" = switch ]; then
		wait_for "$TIMEOUT" stopped_proc "$src_pid" || diag "$name: the source did not stop"
		id=$(session_id source "$src_pid")
	elif [ "$who" = src ]; then
		wait_for "$TIMEOUT" in_postcopy source "$src_pid" || diag "$name: no post-copy"
		id=$(session_id source "$src_pid" postcopy)
	else
		wait_for "$TIMEOUT" in_postcopy dest || diag "$name: no post-copy at the destination"
		id=$(session_id dest 0 postcopy)
	fi
	if [ "$who" = src ]; then
		cancel_out=$("$RDMAMIGCTL" session cancel "$id" 2>&1)
	else
		cancel_out=$(on_dest "$RDMAMIGCTL" session cancel "$id" 2>&1)
	fi
	diag "$name: cancelled session $id: $cancel_out"
	[ "$point" = switch ] && kill -CONT "$src_pid"
	wait_src 60
	wait_dest "$name" 60
	s=$tmp/$name.src d=$tmp/$name.dst
	if [ "$who" = src ]; then cancelled=$s other=$d; else cancelled=$d other=$s; fi
	diag "$name: source exit $src_rc (errno $(jget "$s" .errno), $(jget "$s" .op)," \
		"$(jget "$s" .reason)); destination exit $dst_rc after $dst_s s (errno" \
		"$(jget "$d" .errno), $(jget "$d" .op), incomplete $(jget "$d" .incomplete)," \
		"missing $(jget "$d" .missing_pages), resumes $(jget "$d" .resumes))"
	[ "$src_rc" = 1 ] || { diag "$name: source exit $src_rc, not 1"; ok=1; }
	[ "$dst_rc" = 1 ] || { diag "$name: destination exit $dst_rc, not 1"; ok=1; }
	# The cancelled side says ECANCELED somewhere in its output (JSON lines).
	grep '^{' "$cancelled" | jq -e "select(.errno == $ECANCELED)" >/dev/null 2>&1 ||
		{ diag "$name: the cancelled side never reported ECANCELED"; ok=1; }
	if [ "$who" = src ] && [ "$(jget "$s" .op)" = "CONNECT (resume)" ]; then
		diag "$name: the cancelled source tried to resume"; ok=1
	fi
	# A destination whose guest ran says what it lacks.
	if [ "$point" != switch ] && [ "$(jget "$d" .incomplete)" != true ]; then
		diag "$name: the destination did not say its memory is incomplete"; ok=1
	fi
	[ $ok = 0 ] || show "$name"
	return $ok
}

stopped_proc()
{
	local st
	read -r _ _ st _ 2>/dev/null < "/proc/$1/stat" && [ "$st" = T ]
}

for c in switch:src pc:src pc:dst; do
	t="cancel $c: the cancelled side ECANCELED, the other fails, nothing hangs"
	case $c in
	switch:src) t="$t (source during the switch)" ;;
	pc:src) t="$t (source in post-copy)" ;;
	pc:dst) t="$t (destination in post-copy)" ;;
	esac
	if selected "$c"; then
		ktap_result "$t" cancel_case "$c"
	elif [ -z "${RDMAMIG_PCFAIL_CASES:-}" ]; then
		ktap_skip "$t" "the loop run's (make check-full runs it in pair too)"
	else
		ktap_skip "$t" "not in RDMAMIG_PCFAIL_CASES"
	fi
done

# Nothing left behind: no session, and the module unloads.
t="afterwards: no session left"
no_sessions()
{
	local n
	n=$("$RDMAMIGCTL" -j session list 2>/dev/null | jq length)
	[ "$n" = 0 ] || { diag "sessions left here: $n"; return 1; }
	if [ $topology = pair ]; then
		n=$("$RDMAMIG_PEER" "$RDMAMIGCTL" -j session list 2>/dev/null | jq length)
		[ "$n" = 0 ] || { diag "sessions left on VM B: $n"; return 1; }
	fi
}
ktap_result "$t" wait_for 10 no_sessions
ktap_result "afterwards: the module unloads and loads again" \
	eval 'rmmod rdmamig && module_load'
ktap_finish
