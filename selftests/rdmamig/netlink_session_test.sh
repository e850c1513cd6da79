#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The administrator's view of sessions over netlink, through rdmamigctl
# (session, param, capability, monitor) and, for the requests rdmamigctl
# never makes, nl_raw:
#
#   - a session the example VMM opens (a destination listening) is listed
#     and shown with its owner; set changes its live parameters, and the
#     kernel refuses the others; cancel cancels it under the VMM, which
#     fails; its file closed, it is gone; an unknown id is refused;
#   - the defaults: set, shown, inherited by new sessions, bad values
#     refused with the kernel's message;
#   - permissions: an unprivileged user may look but not change;
#   - a request with an attribute its command does not take is refused;
#   - monitor sees every state of both ends of a migration.
#
# Everything runs in this VM (both ends at $RDMAMIG_LOCAL_ADDR).  The
# defaults are restored at the end.
source "$(dirname "$0")/lib.sh"
require_root

here=$(cd "$(dirname "$0")" && pwd)
VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
NL_RAW=$here/nl_raw
FD_HOLD=$here/fd_hold
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}

for prog in "$VMM" "$RDMAMIGCTL" "$NL_RAW" "$FD_HOLD"; do
	if [ ! -x "$prog" ]; then
		echo "1..0 # SKIP $prog not built (make)"
		exit $KSFT_SKIP
	fi
done
if ! command -v jq >/dev/null; then
	echo "1..0 # SKIP jq not installed"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }

tmp=$(mktemp -d)
bg_pids=()
saved_params=
saved_pin_all=
saved_pull=

# The defaults as they were, from the saved JSON.
restore_defaults()
{
	[ -n "$saved_params" ] || return 0
	"$RDMAMIGCTL" param set \
		max-bandwidth "$(jq -r .max_bandwidth <<<"$saved_params")" \
		max-registered "$(jq -r .max_registered <<<"$saved_params")" \
		keepalive "$(jq -r .keepalive_ms <<<"$saved_params")" \
		downtime-limit "$(jq -r .downtime_limit_ms <<<"$saved_params")" \
		max-rounds "$(jq -r .max_rounds <<<"$saved_params")" ||
		diag "could not restore the parameters: $saved_params"
	if [ -n "$saved_pin_all" ]; then
		"$RDMAMIGCTL" capability set pin-all \
			"$([ "$saved_pin_all" = true ] && echo on || echo off)" ||
			diag "could not restore pin-all"
	fi
	if [ -n "$saved_pull" ]; then
		"$RDMAMIGCTL" capability set pull \
			"$([ "$saved_pull" = true ] && echo on || echo off)" ||
			diag "could not restore pull"
	fi
}

cleanup()
{
	local p
	for p in "${bg_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	restore_defaults
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 23

saved_params=$("$RDMAMIGCTL" -j param show)
saved_pin_all=$("$RDMAMIGCTL" -j capability show | jq -r .pin_all)
saved_pull=$("$RDMAMIGCTL" -j capability show | jq -r .pull)
diag "defaults: $saved_params, pin_all $saved_pin_all, pull $saved_pull"

port_ready()
{
	[ -s "$1" ] || ! kill -0 "$2" 2>/dev/null
}

# start_dest NAME ARGS...: a destination VMM listening in the background;
# sets vmm_pid and vmm_port, its output goes to $tmp/NAME.out.
start_dest()
{
	local name=$1 pf=$tmp/$1.port
	shift
	"$VMM" dest --listen "$LOCAL_ADDR:0" --port-file "$pf" --size 16 \
		--timeout 120 "$@" >"$tmp/$name.out" 2>&1 &
	vmm_pid=$!
	bg_pids+=("$vmm_pid")
	wait_for 60 port_ready "$pf" "$vmm_pid"
	vmm_port=$(cat "$pf" 2>/dev/null)
	[ -n "$vmm_port" ] || { diag "$name: the VMM did not listen"; sed "s/^/# /" "$tmp/$name.out"; }
}

exited()
{
	! kill -0 "$1" 2>/dev/null
}

stop_vmm()
{
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# The id of the session the process PID opened, from session list.
session_of()
{
	"$RDMAMIGCTL" -j session list |
		jq -e --argjson pid "$1" 'first(.[] | select(.owner_pid == $pid) | .id)'
}

# show ID JQ-EXPR: a value of session show -j.
show()
{
	"$RDMAMIGCTL" -j session show "$1" | jq -r "$2"
}

# expect_fail NAME RC REGEX CMD...: CMD exits with RC and says REGEX on stderr.
expect_fail()
{
	local name=$1 want=$2 re=$3 rc
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	diag "$name: exit $rc: $(head -n 3 "$tmp/err")"
	if [ "$rc" = "$want" ] && grep -Eq -- "$re" "$tmp/err"; then
		ktap_ok "$name"
	else
		ktap_fail "$name (want exit $want and /$re/)"
	fi
}

# ---- A VMM's session: list, show, set, cancel ----------------------------

start_dest a
id=$(session_of "$vmm_pid")
diag "VMM pid $vmm_pid listens on port $vmm_port, session ${id:-none}"
diag "$("$RDMAMIGCTL" session list)"

listed_as_dest_in_setup()
{
	"$RDMAMIGCTL" -j session list | jq -e --argjson id "${id:--1}" \
		'any(.[]; .id == $id and .role == "dest" and .state == "setup")' >/dev/null
}
ktap_result "session list -j: the VMM's session, role dest, state setup" \
	listed_as_dest_in_setup

ktap_result "session show ID -j: target_pid is the VMM's pid" \
	test "$(show "${id:--1}" .target_pid)" = "$vmm_pid"

text_line_ok()
{
	"$RDMAMIGCTL" session list | grep -Eq "^$id: dest setup pid $vmm_pid $LOCAL_ADDR:$vmm_port -> - rounds 0 bytes 0B throughput 0\.0MB/s$"
}
ktap_result "session list: one line with id, role, state, pid, addresses, counters" \
	text_line_ok

"$RDMAMIGCTL" session set "${id:--1}" max-bandwidth 10m
ktap_result "session set ID max-bandwidth 10m: params.max_bandwidth 10000000" \
	test "$(show "${id:--1}" .params.max_bandwidth)" = 10000000

"$RDMAMIGCTL" session set "${id:--1}" downtime-limit 2s max-rounds 7
ktap_result "session set ID downtime-limit 2s max-rounds 7: both changed" \
	test "$(show "${id:--1}" '"\(.params.downtime_limit_ms) \(.params.max_rounds)"')" = "2000 7"

expect_fail "session set ID max-registered 1m: refused, only live params change" 1 \
	'Invalid argument \(kernel: .*only max-bandwidth, downtime-limit and max-rounds' \
	"$RDMAMIGCTL" session set "${id:--1}" max-registered 1m

# A copy of the VMM's /dev/rdmamig fd keeps the session after the VMM exits.
fd=$(for f in /proc/"$vmm_pid"/fd/*; do
	[ "$(readlink "$f")" = /dev/rdmamig ] && echo "${f##*/}" && break
done)
"$FD_HOLD" "$vmm_pid" "${fd:--1}" >"$tmp/hold" 2>&1 &
hold_pid=$!
bg_pids+=("$hold_pid")
wait_for 10 grep -q held "$tmp/hold" || diag "fd_hold: $(cat "$tmp/hold")"

"$RDMAMIGCTL" session cancel "${id:--1}"
cancel_rc=$?
wait_for 20 exited "$vmm_pid"
wait "$vmm_pid"
vmm_rc=$?
diag "cancel: exit $cancel_rc; VMM exit $vmm_rc: $(tail -n 1 "$tmp/a.out")"
cancelled()
{
	[ "$cancel_rc" = 0 ] &&
		[ "$(show "${id:--1}" '"\(.state) \(.error) \(.reason)"')" = "cancelled -125 cancelled" ]
}
ktap_result "session cancel ID: state cancelled, error -ECANCELED, in show" cancelled
ktap_result "session cancel ID: the VMM exits non-zero" test "$vmm_rc" != 0

kill "$hold_pid"
wait "$hold_pid" 2>/dev/null
gone()
{
	! "$RDMAMIGCTL" -j session list | jq -e --argjson id "${id:--1}" \
		'any(.[]; .id == $id)' >/dev/null
}
ktap_result "the session is gone once its file is closed" wait_for 10 gone

expect_fail "session show 99999: no session" 1 'no session' \
	"$RDMAMIGCTL" session show 99999

# ---- Defaults ---------------------------------------------------------------

"$RDMAMIGCTL" param set max-bandwidth 1g
ktap_result "param set max-bandwidth 1g: param show -j max_bandwidth 1000000000" \
	test "$("$RDMAMIGCTL" -j param show | jq -r .max_bandwidth)" = 1000000000

start_dest b
id=$(session_of "$vmm_pid")
ktap_result "a new session inherits max_bandwidth 1000000000" \
	test "$(show "${id:--1}" .params.max_bandwidth)" = 1000000000
stop_vmm "$vmm_pid"
"$RDMAMIGCTL" param set max-bandwidth "$(jq -r .max_bandwidth <<<"$saved_params")"

expect_fail "param set keepalive 5: refused with the kernel's range 100..60000" 1 \
	'kernel: keepalive must be 0 \(off\) or 100 to 60000 ms' \
	"$RDMAMIGCTL" param set keepalive 5

"$RDMAMIGCTL" capability set pin-all on
ktap_result "capability set pin-all on: capability show -j pin_all true" \
	test "$("$RDMAMIGCTL" -j capability show | jq -r .pin_all)" = true
"$RDMAMIGCTL" capability set rdma-pin-all off
ktap_result "capability set rdma-pin-all off (QEMU's name): pin_all false" \
	test "$("$RDMAMIGCTL" -j capability show | jq -r .pin_all)" = false
"$RDMAMIGCTL" capability set pull on
ktap_result "capability set pull on: capability show -j pull true, pin_all unchanged" \
	test "$("$RDMAMIGCTL" -j capability show | jq -r '"\(.pull) \(.pin_all)"')" = "true false"
"$RDMAMIGCTL" capability set pull off
ktap_result "capability set pull off: pull false" \
	test "$("$RDMAMIGCTL" -j capability show | jq -r .pull)" = false

# ---- Permissions --------------------------------------------------------------

# as_nobody CMD...: CMD as user nobody, without any capability.
as_nobody()
{
	if command -v setpriv >/dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
			--bounding-set=-all "$@"
	else
		# shellcheck disable=SC2016 # expanded by the inner shell
		su nobody -s /bin/sh -c '"$0" "$@"' "$@"
	fi
}
expect_fail "unprivileged: param set max-bandwidth 1 fails with EPERM" 1 \
	'Operation not permitted \(needs CAP_NET_ADMIN\)' \
	as_nobody "$RDMAMIGCTL" param set max-bandwidth 1
list_as_nobody()
{
	as_nobody "$RDMAMIGCTL" -j session list | jq -e 'type == "array"' >/dev/null
}
ktap_result "unprivileged: session list works" list_as_nobody

# ---- Attributes a command does not take --------------------------------------

raw=$("$NL_RAW" get-defaults session-id=0)
diag "nl_raw get-defaults session-id=0: $raw"
ktap_result "GET_DEFAULTS with SESSION_ID: EINVAL with an extended-ACK message" \
	grep -Eq '^error -22 \(Invalid argument\) extack "[^"]+"' <<<"$raw"

# ---- monitor ---------------------------------------------------------------------

# The monitor joined the events group: its socket's groups in
# /proc/net/netlink (the first 32 groups only; else a second's grace).
subscribed()
{
	local pid=$1 grp inode f groups
	grp=$(genl ctrl get name rdmamig 2>/dev/null |
		sed -n 's/.*ID-\(0x[0-9a-f]*\) *name: events.*/\1/p')
	if [ -z "$grp" ] || [ $((grp)) -gt 32 ]; then
		sleep 1
		return 0
	fi
	for f in /proc/"$pid"/fd/*; do
		inode=$(readlink "$f" | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
		[ -n "$inode" ] || continue
		groups=$(awk -v inode="$inode" '$10 == inode { print $4 }' /proc/net/netlink)
		[ -n "$groups" ] && (((0x$groups >> (grp - 1)) & 1)) && return 0
	done
	return 1
}

"$RDMAMIGCTL" monitor -j --count 8 --timeout 60 state >"$tmp/monitor" 2>"$tmp/monitor.err" &
mon_pid=$!
bg_pids+=("$mon_pid")
wait_for 10 subscribed "$mon_pid" || diag "monitor did not subscribe in time"

start_dest c --json
"$VMM" source --connect "$LOCAL_ADDR:${vmm_port:-1}" --size 16 --rounds 1 \
	--timeout 60 --json >"$tmp/c.src" 2>&1
src_rc=$?
wait_for 60 exited "$vmm_pid"
wait "$vmm_pid"
dst_rc=$?
wait_for 30 exited "$mon_pid"
kill "$mon_pid" 2>/dev/null
wait "$mon_pid"
mon_rc=$?
diag "migration: source exit $src_rc, destination exit $dst_rc, monitor exit $mon_rc"
sed 's/^/# monitor: /' "$tmp/monitor" "$tmp/monitor.err"

all_states_seen()
{
	local role state
	[ "$src_rc" = 0 ] && [ "$dst_rc" = 0 ] && [ "$mon_rc" = 0 ] || return 1
	for role in source dest; do
		for state in setup connected active completed; do
			jq -es --arg r "$role" --arg s "$state" \
				'any(.[]; .event == "state" and .role == $r and .state == $s)' \
				"$tmp/monitor" >/dev/null ||
				{ diag "no $role $state event"; return 1; }
		done
	done
	# One JSON object per line, each with its time.
	[ "$(jq -c 'select(.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{4}$"))' \
		"$tmp/monitor" | wc -l)" = 8 ]
}
ktap_result "monitor -j --count 8 state: setup, connected, active, completed of both ends" \
	all_states_seen

expect_fail "monitor --count 1 --timeout 1 without events: exit 1" 1 \
	'monitor: 0 of 1 events after 1 s' \
	"$RDMAMIGCTL" monitor --count 1 --timeout 1

"$RDMAMIGCTL" monitor >"$tmp/monitor2" 2>&1 &
mon_pid=$!
wait_for 10 subscribed "$mon_pid"
kill -TERM "$mon_pid"
wait "$mon_pid"
ktap_result "monitor: SIGTERM ends it with exit 0" test $? = 0

ktap_finish
