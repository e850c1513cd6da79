#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Peer authentication as an administrator meets it, with rdmamigctl
# migrate / incoming of a running rdmamig-workload (both ends in this VM):
#
#   1. the default is auth required (param show)
#   2. a secret file of 15 bytes, and --secret-file with --no-auth, are
#      refused before anything starts, naming the problem
#   3. no secret at all: incoming is refused (ENOKEY) with the kernel's
#      message
#   4. different secrets: migrate fails naming the failed authentication,
#      the process keeps running with its memory untouched (its heartbeat
#      goes on), incoming fails and its twin stays stopped
#   5. the same secret: the migration completes, both ends report the
#      peer authenticated (caps bit RDMAMIG_CAP_AUTH)
#   6. param auth off: sessions run without a secret (both ends), and a
#      bad value of auth is refused; the default is restored after
#
# The wire-level cases (a source that skips or botches the answer) are in
# hostile_test.sh, the ioctl-level ones in migrate_errors_test.
source "$(dirname "$0")/lib.sh"
require_root

WORKLOAD=${RDMAMIG_WORKLOAD:-$TOP/tools/rdmamig-workload/rdmamig-workload}
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
REGION=anon@0x7e0000000000

for prog in "$WORKLOAD" "$RDMAMIGCTL"; do
	[ -x "$prog" ] || { echo "1..0 # SKIP $prog not built (make tools)"; exit $KSFT_SKIP; }
done
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit $KSFT_SKIP; }
if [ "${RDMAMIG_TOPOLOGY:-loop}" != loop ]; then
	echo "1..0 # SKIP runs in the loop topology (both ends here)"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }
ulimit -l unlimited

dir=$(mktemp -d)
pids=()
cleanup()
{
	reap "${pids[@]}"
	"$RDMAMIGCTL" param set auth required 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

(umask 077
 head -c 32 /dev/urandom > "$dir/a"
 head -c 32 /dev/urandom > "$dir/b"
 head -c 15 /dev/urandom > "$dir/short")

state()
{
	cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null || echo -
}

hb_last()
{
	awk '$1 == "heartbeat" { n = $2 } END { print n + 0 }' "$1" 2>/dev/null
}

hb_beyond()
{
	[ "$(hb_last "$1")" -gt "$2" ]
}

# reap PID...: kill and collect, without the shell's "Killed" notice.
reap()
{
	local p
	for p in "$@"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	return 0
}

show()
{
	local f
	for f in "$@"; do
		[ -s "$dir/$f" ] && sed "s|^|# $f: |" "$dir/$f"
	done
	return 0
}

# start_source NAME: a 16 MiB workload dirtying 1 MB/s; sets src_pid.
start_source()
{
	"$WORKLOAD" --size 16 --rate 1 --seed $$ --heartbeat "$dir/$1.hb" \
		>"$dir/$1.wl" 2>&1 &
	src_pid=$!
	pids+=("$src_pid")
	wait_for 30 grep -q heartbeat "$dir/$1.hb"
}

# start_twin NAME: its stopped twin; sets twin_pid.
start_twin()
{
	"$WORKLOAD" --twin --size 16 --rate 1 --pid-file "$dir/$1.pid" \
		--heartbeat "$dir/$1.hb" >"$dir/$1.wl" 2>&1 &
	twin_pid=$!
	pids+=("$twin_pid")
	wait_for 30 test -s "$dir/$1.pid" &&
		wait_for 30 grep -q '^State:.*T' "/proc/$twin_pid/status"
}

# incoming NAME ARGS...: rdmamigctl incoming into a new twin, in the
# background; sets inc_pid and port.
incoming()
{
	local name=$1
	shift
	start_twin "$name.twin" || return 1
	rm -f "$dir/$name.port"
	"$RDMAMIGCTL" -j incoming --pid "$twin_pid" --timeout 30 \
		--port-file "$dir/$name.port" "$@" "rdma:$ADDR:0" \
		>"$dir/$name.inc" 2>"$dir/$name.inc.err" &
	inc_pid=$!
	pids+=("$inc_pid")
	wait_for 30 test -s "$dir/$name.port" && port=$(<"$dir/$name.port")
}

ktap_plan 10

# 1
t="the default is auth required"
auth=$("$RDMAMIGCTL" -j param show | jq -r .auth)
ktap_result "$t" test "$auth" = required

# 2
start_source src || diag "the source workload did not start"
t="a 15-byte secret file is refused, naming the file and the size"
"$RDMAMIGCTL" migrate --pid "$src_pid" --secret-file "$dir/short" \
	"rdma:$ADDR:1" >"$dir/short.out" 2>"$dir/short.err"
rc=$?
if [ $rc = 1 ] && grep -q "$dir/short: has fewer than 16 bytes" "$dir/short.err"; then
	ktap_ok "$t"
else
	diag "exit $rc"; show short.err
	ktap_fail "$t"
fi

t="--secret-file with --no-auth is a usage error"
"$RDMAMIGCTL" incoming --pid 1 --secret-file "$dir/a" --no-auth \
	"rdma:$ADDR:0" >/dev/null 2>"$dir/both.err"
rc=$?
if [ $rc = 2 ] && grep -q "exclude each other" "$dir/both.err"; then
	ktap_ok "$t"
else
	diag "exit $rc"; show both.err
	ktap_fail "$t"
fi

# 3
t="no secret: incoming refused with the kernel's message"
start_twin nokey.twin
env -u RDMAMIG_SECRET_FILE "$RDMAMIGCTL" incoming --pid "$twin_pid" \
	--timeout 5 "rdma:$ADDR:0" >"$dir/nokey.out" 2>"$dir/nokey.err"
rc=$?
if [ $rc = 1 ] && grep -q "no SECRET was given" "$dir/nokey.err"; then
	ktap_ok "$t"
else
	diag "exit $rc"; show nokey.out nokey.err
	ktap_fail "$t"
fi
reap "$twin_pid"

# 4
t1="different secrets: migrate fails naming the authentication, the process runs on"
t2="different secrets: incoming fails, its twin stays stopped"
if incoming wrong --secret-file "$dir/a"; then
	"$RDMAMIGCTL" migrate --pid "$src_pid" --secret-file "$dir/b" \
		"rdma:$ADDR:$port" >"$dir/wrong.out" 2>"$dir/wrong.err"
	rc=$?
	wait "$inc_pid"
	drc=$?
	hb=$(hb_last "$dir/src.hb")
	diag "source: $(tr '\n' ' ' <"$dir/wrong.err")"
	diag "destination: $(tr '\n' ' ' <"$dir/wrong.inc.err")"
	if [ $rc = 1 ] && grep -q "failed authentication" "$dir/wrong.err" &&
	   [ "$(state "$src_pid")" != T ] && wait_for 5 hb_beyond "$dir/src.hb" "$hb"; then
		ktap_ok "$t1"
	else
		diag "exit $rc, source state $(state "$src_pid")"; show wrong.out wrong.err
		ktap_fail "$t1"
	fi
	if [ $drc = 1 ] && grep -qi "authenticat" "$dir/wrong.inc.err" &&
	   [ "$(state "$twin_pid")" = T ]; then
		ktap_ok "$t2"
	else
		diag "exit $drc, twin state $(state "$twin_pid")"; show wrong.inc wrong.inc.err
		ktap_fail "$t2"
	fi
	reap "$twin_pid"
else
	show wrong.inc.err
	ktap_fail "$t1"
	ktap_fail "$t2"
fi

# 5
t1="same secret: the migration completes"
t2="same secret: both ends report the peer authenticated"
if incoming same --secret-file "$dir/a" --no-cont; then
	"$RDMAMIGCTL" -j migrate --pid "$src_pid" --secret-file "$dir/a" --after kill \
		"rdma:$ADDR:$port" >"$dir/same.out" 2>"$dir/same.err"
	rc=$?
	wait "$inc_pid"
	drc=$?
	ktap_result "$t1" test "$rc/$drc/$(jq -r .state "$dir/same.out")" = 0/0/completed
	scaps=$(jq -r .caps "$dir/same.out")
	dcaps=$(jq -r .caps "$dir/same.inc")
	diag "caps: source $scaps destination $dcaps"
	ktap_result "$t2" test "$(( ${scaps:-0} & 2 ))/$(( ${dcaps:-0} & 2 ))" = 2/2
	reap "$twin_pid" "$src_pid"
else
	show same.inc.err
	ktap_fail "$t1"
	ktap_fail "$t2"
fi

# 6
t="param auth off: a migration without any secret, caps without auth"
if "$RDMAMIGCTL" param set auth off && start_source off &&
   RDMAMIG_SECRET_FILE= incoming off --no-cont; then
	RDMAMIG_SECRET_FILE= "$RDMAMIGCTL" -j migrate --pid "$src_pid" --after kill \
		"rdma:$ADDR:$port" >"$dir/off.out" 2>"$dir/off.err"
	rc=$?
	wait "$inc_pid"
	drc=$?
	scaps=$(jq -r .caps "$dir/off.out")
	if [ "$rc/$drc" = 0/0 ] && [ $(( ${scaps:-2} & 2 )) = 0 ]; then
		ktap_ok "$t"
	else
		diag "exit $rc/$drc caps $scaps"; show off.err off.inc.err
		ktap_fail "$t"
	fi
	reap "$twin_pid" "$src_pid"
else
	ktap_fail "$t"
fi
"$RDMAMIGCTL" param set auth required

t="param auth maybe: refused, naming the values"
"$RDMAMIGCTL" param set auth maybe >/dev/null 2>"$dir/maybe.err"
rc=$?
if [ $rc = 2 ] && grep -q "required or off" "$dir/maybe.err" &&
   [ "$("$RDMAMIGCTL" -j param show | jq -r .auth)" = required ]; then
	ktap_ok "$t"
else
	diag "exit $rc"; show maybe.err
	ktap_fail "$t"
fi

ktap_finish
