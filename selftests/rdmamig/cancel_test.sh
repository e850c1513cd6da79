#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Cancel at every state, by netlink (rdmamigctl session cancel ID) and by
# the RDMAMIG_IOC_CANCEL ioctl (fd_hold --cancel: on a copy of the VMM's
# /dev/rdmamig file, the session being the file's), with the example VMM
# at both ends in this VM.  The source stops itself (--stop-at, SIGSTOP
# between two ioctls) where the session must sit still; blocking calls
# (ACCEPT, CONNECT, a round held by --max-bandwidth) are cancelled while
# they wait.  Points, and who is cancelled:
#
#   listen      destination blocked in ACCEPT (state setup)       dest
#   none        source with its blocks, before CONNECT (none)     source
#   connecting  source blocked in CONNECT (setup) to an address
#               whose MAC nobody has (a permanent neighbour entry:
#               the CM request goes nowhere)                      source
#   connected   CONNECT done, no round yet                        both
#   pinall      CONNECT done with pin-all, 512 MiB: the destination
#               is still registering its chunks in the background
#               (rdmamig_dst_pinall_work()), teardown stops it     dest
#   round       in the bulk round (16 MiB at 1 MB/s)              both
#   between     after round 1, before round 2                     both
#   final       after the final round, before COMPLETE            both
#   completed   after COMPLETE, before close                      source
#
# Each case asserts, as Documentation/uapi.rst says: the cancelled side
# ends CANCELLED with ECANCELED (its VMM's JSON: errno 125, state
# "cancelled"; for the ioctl, GET_STATS right after CANCEL says so too),
# a blocked call returns within 10 s (the timeouts are 30 s), a stopped
# VMM holds no pinned pages (VmPin) once cancelled, a connected peer fails
# with ECONNRESET ("peer disconnected"), and once both VMMs are gone the
# system's FOLL_PIN count (/proc/vmstat) is back where it started.  A
# COMPLETED session stays COMPLETED (CANCEL only releases the connection)
# and the destination has verified every page.  At the end: no session
# left, the module's and ib_core's references back where they started,
# and rmmod works.  Loop topology only (the two ends in one VM).
#
# Known kernel bug, reported as such: CONNECT on a session cancelled
# before it gives EBUSY instead of ECANCELED (case "none").
source "$(dirname "$0")/lib.sh"
require_root

here=$(cd "$(dirname "$0")" && pwd)
VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
FD_HOLD=$here/fd_hold
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
# An address on eth0's subnet that nobody answers, with a MAC nobody has.
NOWHERE=${RDMAMIG_NOWHERE_ADDR:-10.0.2.99}
NOWHERE_MAC=02:00:00:00:00:99
ECANCELED=125
ECONNRESET=104

for prog in "$VMM" "$FD_HOLD" "$RDMAMIGCTL"; do
	[ -x "$prog" ] || { echo "1..0 # SKIP $prog not built"; exit $KSFT_SKIP; }
done
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit $KSFT_SKIP; }
if [ "${RDMAMIG_TOPOLOGY:-loop}" != loop ]; then
	echo "1..0 # SKIP runs in the loop topology"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }
ulimit -l unlimited
tmp=$(mktemp -d)
pids=()
cleanup()
{
	ip neigh del "$NOWHERE" dev "$RDMAMIG_NETDEV" 2>/dev/null
	kill -9 "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	module_load
	rm -rf "$tmp"
}
trap cleanup EXIT

CASES=(listen:dst none:src connecting:src connected:src connected:dst
       pinall:dst round:src round:dst between:src between:dst final:src final:dst
       completed:src)
ktap_plan $((2 * ${#CASES[@]} + 4))

# Under TCG every exec costs a good fraction of a second: the helpers
# below read /proc with bash builtins only.
foll_pins()
{
	local k v a=0 r=0
	while read -r k v; do
		case $k in
		nr_foll_pin_acquired) a=$v ;;
		nr_foll_pin_released) r=$v ;;
		esac
	done < /proc/vmstat
	echo $((a - r))
}
ref_before=$(module_refcnt rdmamig)
ibref_before=$(module_refcnt ib_core)
pins_before=$(foll_pins)

# The id of the session the process PID owns.
session_of1()
{
	"$RDMAMIGCTL" -j session list |
		jq -e --argjson pid "$1" 'first(.[] | select(.owner_pid == $pid) | .id)'
}
session_of()
{
	local _
	for _ in 1 2 3; do
		session_of1 "$1" && return 0
		sleep 0.2
	done
	diag "no session of pid $1 in: $("$RDMAMIGCTL" session list 2>&1 | tr '\n' ';')"
	return 1
}

session_active()
{
	"$RDMAMIGCTL" -j session list | jq -e --argjson pid "$1" \
		'any(.[]; .owner_pid == $pid and .state == "active")' \
		>/dev/null
}

vmm_fd()
{
	local f
	for f in /proc/"$1"/fd/*; do
		[ "$f" -ef /dev/rdmamig ] && { echo "${f##*/}"; return 0; }
	done
	return 1
}

stopped()
{
	local st
	read -r _ _ st _ 2>/dev/null < "/proc/$1/stat" && [ "$st" = T ]
}

exited()
{
	! kill -0 "$1" 2>/dev/null
}

vmpin()
{
	local k v
	while read -r k v _; do
		[ "$k" = VmPin: ] && { echo "$v"; return; }
	done 2>/dev/null < "/proc/$1/status"
}

# The VMM's JSON summary or failure line: jload FILE NAME reads, with one
# jq, the fields the checks need into the array NAME.
jload()
{
	local -n _j=$2
	local line
	line=$(grep '^{' "$1" 2>/dev/null | tail -n 1 | jq -r \
		'[(.state // "-" | ascii_downcase), (.errno // "-"), (.verified // "-"),
		  (.reason // "")] | @tsv' 2>/dev/null)
	IFS=$'\t' read -r '_j[state]' '_j[errno]' '_j[verified]' '_j[reason]' <<<"$line"
	: "${_j[state]:=-}" "${_j[errno]:=-}"
}

# wait_rc PID SECONDS: sets rc to PID's exit status, or "hung" (then
# killed).  Not in a $(...): a subshell cannot wait for our children.
wait_rc()
{
	if wait_for "$2" exited "$1"; then
		wait "$1"
		rc=$?
	else
		kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		rc=hung
	fi
}

# cancel METHOD PID: cancel PID's session; sets cancel_out.
cancel()
{
	local id fd
	if [ "$1" = netlink ]; then
		id=$(session_of "$2") || { cancel_out="no session for $2"; return 1; }
		cancel_out=$("$RDMAMIGCTL" session cancel "$id" 2>&1) || return 1
		cancel_out="session $id cancelled"
	else
		fd=$(vmm_fd "$2") || { cancel_out="no /dev/rdmamig fd in $2"; return 1; }
		cancel_out=$("$FD_HOLD" --cancel "$2" "$fd" 2>&1) || return 1
	fi
}

# run_case METHOD POINT WHO
run_case()
{
	local method=$1 point=$2 who=$3 name="$1 $2 $3"
	local f=$tmp/$1.$2.$3 dpid='' spid='' target port src_args stop rc
	local ok=1 why=() pin_before=- pin_after=- drc=- src=- t0 ms
	local expect_state=cancelled expect_errno=$ECANCELED

	[ "$point" = completed ] && expect_state=completed expect_errno=-
	src_args=(--size 4 --blocks 2 --zero-holes 10 --rounds 2 --redirty 5
		  --timeout 30 --json)
	[ "$point" = round ] && src_args=(--size 16 --blocks 2 --zero-holes 0
		--rounds 1 --max-bandwidth 1000000 --timeout 30 --json)
	# 512 chunks, registered at 2 to 10 ms each under TCG: cancelled
	# within the first second, the work is mid-way.
	local pinall=''
	[ "$point" = pinall ] && pinall=1 src_args=(--size 512 --blocks 1 --pin-all
		--zero-holes 0 --rounds 1 --timeout 30 --json)

	if [ "$point" != connecting ]; then
		"$VMM" dest --listen "$ADDR:0" --port-file "$f.port" --timeout 30 --json \
			"${src_args[@]:0:4}" ${pinall:+--pin-all} > "$f.dst" 2>&1 &
		dpid=$!
		pids+=("$dpid")
		wait_for 20 test -s "$f.port" || { ktap_fail "$name: destination listens"; return; }
		port=$(<"$f.port")
	fi
	case $point in
	listen) ;;
	connecting)
		ip neigh replace "$NOWHERE" lladdr "$NOWHERE_MAC" dev "$RDMAMIG_NETDEV" nud permanent
		"$VMM" source --connect "$NOWHERE:18515" "${src_args[@]}" > "$f.src" 2>&1 &
		spid=$!
		sleep 1.5
		;;
	round)
		"$VMM" source --connect "$ADDR:$port" "${src_args[@]}" > "$f.src" 2>&1 &
		spid=$!
		wait_for 20 session_active "$spid" || why+=("the round did not start")
		sleep 0.5
		;;
	*)
		stop=$point
		[ "$point" = none ] && stop=connect
		[ "$point" = pinall ] && stop=connected
		"$VMM" source --connect "$ADDR:$port" "${src_args[@]}" --stop-at "$stop" \
			> "$f.src" 2>&1 &
		spid=$!
		wait_for 20 stopped "$spid" || why+=("the source did not stop at $point")
		;;
	esac
	[ -n "$spid" ] && pids+=("$spid")

	target=$dpid
	[ "$who" = src ] && target=$spid
	if [ "$point" = connecting ] && ! kill -0 "$spid" 2>/dev/null; then
		why+=("CONNECT to $NOWHERE did not block: $(tail -n 1 "$f.src")")
	fi
	pin_before=$(vmpin "$target")
	t0=$(date +%s%N)
	cancel "$method" "$target" || why+=("cancel failed: $cancel_out")
	if [ "$method" = ioctl ] && [ "$point" != completed ] &&
	   ! [[ $cancel_out == "cancel=0 state=6 error=-125 "* ]]; then
		why+=("GET_STATS after CANCEL: $cancel_out")
	fi
	if [ "$method" = ioctl ] && [ "$point" = completed ] &&
	   ! [[ $cancel_out == "cancel=0 state=4 error=0 "* ]]; then
		why+=("GET_STATS after CANCEL of a completed session: $cancel_out")
	fi
	if stopped "$target"; then
		# Torn down: nothing pinned any more, while the VMM still sleeps.
		pin0() { [ "$(vmpin "$1")" = 0 ]; }
		wait_for 5 pin0 "$target" || why+=("VmPin $(vmpin "$target") kB after cancel")
		pin_after=$(vmpin "$target")
	fi
	[ -n "$spid" ] && kill -CONT "$spid" 2>/dev/null

	# The cancelled side.
	if [ "$who" = src ]; then
		wait_rc "$spid" 10
		src=$rc
	else
		wait_rc "$dpid" 10
		drc=$rc
	fi
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$point" = connecting ] && ip neigh del "$NOWHERE" dev "$RDMAMIG_NETDEV"
	# The other side, if it was connected.
	case $point in
	listen | connecting) ;;
	none)
		kill "$dpid" 2>/dev/null
		wait_rc "$dpid" 5
		drc=$rc
		;;
	*)
		if [ "$who" = src ]; then
			wait_rc "$dpid" 15
			drc=$rc
		else
			wait_rc "$spid" 15
			src=$rc
		fi
		;;
	esac

	local mine=$f.src theirs=$f.dst mine_rc=$src their_rc=$drc
	[ "$who" = dst ] && mine=$f.dst theirs=$f.src mine_rc=$drc their_rc=$src
	local -A me=() peer=()
	jload "$mine" me
	jload "$theirs" peer
	if [ "$point" = completed ]; then
		[ "$mine_rc" = 0 ] && [ "${me[state]}" = completed ] ||
			why+=("source: exit $mine_rc, $(tail -n 1 "$mine")")
		[ "$their_rc" = 0 ] && [ "${peer[verified]}" = true ] ||
			why+=("destination: exit $their_rc, not verified: $(tail -n 1 "$theirs")")
	else
		[ "$mine_rc" != 0 ] && [ "$mine_rc" != hung ] &&
			[ "${me[state]}" = "$expect_state" ] &&
			[ "${me[errno]}" = "$expect_errno" ] ||
			why+=("cancelled side: exit $mine_rc, $(tail -n 1 "$mine")")
		case $point in
		listen | connecting | none) ;;
		*)
			[ "$their_rc" != 0 ] && [ "$their_rc" != hung ] &&
				[ "${peer[state]}" = failed ] &&
				[ "${peer[errno]}" = "$ECONNRESET" ] ||
				why+=("peer: exit $their_rc, $(tail -n 1 "$theirs")")
			;;
		esac
	fi
	[ "$ms" -lt 10000 ] || why+=("the cancelled VMM took $ms ms to exit")
	# Every pin of the case released (both VMMs are gone by now).
	pins_back() { [ "$(foll_pins)" = "$pins_before" ]; }
	wait_for 5 pins_back || why+=("FOLL_PIN count $(foll_pins), was $pins_before")
	if [ "$point" = none ] && [ "${me[errno]}" = 16 ]; then
		why+=("KERNEL BUG: CONNECT on a cancelled session gives EBUSY, not ECANCELED" \
		      "(rdmamig_cm_connect() in kmod/cm.c tests the state before the error)")
	fi
	diag "$name: $cancel_out; exited after $ms ms; VmPin $pin_before -> $pin_after kB;" \
		"${me[state]} ${me[errno]} ${me[reason]} / peer ${peer[state]} ${peer[errno]} ${peer[reason]}"
	[ ${#why[@]} -eq 0 ] && ok=0
	for w in "${why[@]}"; do
		diag "$name: $w"
	done
	if [ $ok = 0 ]; then
		ktap_ok "$name"
	else
		ktap_fail "$name"
	fi
}

for method in netlink ioctl; do
	for c in "${CASES[@]}"; do
		run_case "$method" "${c%%:*}" "${c##*:}"
	done
done

no_session() { "$RDMAMIGCTL" -j session list | jq -e 'length == 0' >/dev/null; }
ktap_result "no session left" wait_for 10 no_session
wait_for 5 pins_back
ktap_result "pinned pages (FOLL_PIN) back to $pins_before (now $(foll_pins))" pins_back
ktap_result "module references back to $ref_before, ib_core's to $ibref_before" \
	test "$(module_refcnt rdmamig) $(module_refcnt ib_core)" = "$ref_before $ibref_before"
ktap_result "rmmod rdmamig works" rmmod rdmamig
module_load
ktap_finish
