#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Data channels (param channels): migrations striped over several queue
# pairs with the example VMM (every page verified by the destination).
#
#   1. 128 MiB over 4 channels, bulk + 3 rounds: verified, both ends report
#      4 channels
#   2. source offers 4, destination allows 2: both report 2, verified
#   3. channels 0 and 9 refused by SET_PARAMS (ioctl) and by netlink
#      (param set), 8 accepted
#   4. the source killed in the middle of a 4-channel migration: the
#      destination fails, every session is released
#   5. the destination killed in the middle: the source fails with a
#      reason, every session is released
#   6. 4 and 5 again in pull mode (--pull at both ends): the source killed
#      while the destination reads, the destination killed while the
#      source's windows are registered for reading
#
# Loop topology: both ends here, at $RDMAMIG_LOCAL_ADDR.  Pair topology:
# the destination runs on the peer VM ($RDMAMIG_PEER).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vmm_lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
TIMEOUT=${RDMAMIG_MIGRATE_TIMEOUT:-120}

topology=${RDMAMIG_TOPOLOGY:-loop}
require_vmm_testbed

tmp=$(mktemp -d)
dest_pid=
src_pid=
saved_channels=
cleanup()
{
	[ -n "$src_pid" ] && kill "$src_pid" 2>/dev/null
	[ -n "$dest_pid" ] && kill "$dest_pid" 2>/dev/null
	[ -n "$saved_channels" ] &&
		"$RDMAMIGCTL" param set channels "$saved_channels" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 12
diag "topology $topology, vmm $VMM"
ulimit -l unlimited 2>/dev/null || diag "ulimit -l unlimited: not permitted"

jget()
{
	grep '^{' "$1" 2>/dev/null | tail -n 1 | jq -r "$2" 2>/dev/null
}

dest_host()
{
	if [ $topology = pair ]; then
		echo "$RDMAMIG_PEER_ADDR"
	else
		echo "$LOCAL_ADDR"
	fi
}

# migrate NAME DEST-ARGS... -- SOURCE-ARGS...
migrate()
{
	local name=$1 dargs=() sargs=()
	shift
	split_dest_args "$@"
	src_rc=1 dst_rc=1
	if ! start_dest "$name" "${dargs[@]}"; then
		diag "$name: destination did not start"
		wait_dest "$name" 1
		dst_rc=$?
		return
	fi
	"$VMM" source --connect "$(dest_host):$dest_port" --timeout "$TIMEOUT" \
		--json "${sargs[@]}" >"$tmp/$name.src" 2>&1
	src_rc=$?
	wait_dest "$name" $((src_rc == 0 ? TIMEOUT : 10))
	dst_rc=$?
}

# migrated NAME CHANNELS: both ends verified, both used CHANNELS channels.
migrated()
{
	local name=$1 want=$2 ok=0 sc dc
	[ "$src_rc" = 0 ] || { diag "$name: source exited $src_rc"; ok=1; }
	[ "$dst_rc" = 0 ] || { diag "$name: destination exited $dst_rc"; ok=1; }
	[ "$(jget "$tmp/$name.dst" .verified)" = true ] ||
		{ diag "$name: destination did not verify the data"; ok=1; }
	sc=$(jget "$tmp/$name.src" .channels)
	dc=$(jget "$tmp/$name.dst" .channels)
	diag "$name: channels source $sc destination $dc (want $want)," \
		"bulk round $(jget "$tmp/$name.src" '.round_stats[0].throughput / 1e6 | floor') MB/s"
	[ "$sc" = "$want" ] && [ "$dc" = "$want" ] ||
		{ diag "$name: wrong channel count"; ok=1; }
	[ $ok = 0 ] || show_output "$name"
	return $ok
}

t1="4 channels: 128 MiB migrated, every page verified"
t2="4 channels: both ends report 4 channels"
migrate four --blocks 4 --size 128 --channels 4 -- --blocks 4 --size 128 \
	--zero-holes 10 --rounds 3 --redirty 5 --seed 11 --channels 4
if migrated four 4; then
	ktap_ok "$t1"
	ktap_ok "$t2"
else
	ktap_result "$t1" test "$src_rc" = 0 -a "$dst_rc" = 0 -a \
		"$(jget "$tmp/four.dst" .verified)" = true
	ktap_fail "$t2"
fi

t1="negotiation: source offers 4, destination allows 2: 2 used, verified"
migrate down --blocks 2 --size 32 --channels 2 -- --blocks 2 --size 32 \
	--rounds 1 --seed 12 --channels 4
ktap_result "$t1" migrated down 2

# SET_PARAMS refuses before anything connects: no destination needed.
params_refused()
{
	local out
	out=$("$VMM" source --connect "127.0.0.1:1" --timeout 5 --blocks 1 \
		--size 1 --channels "$1" 2>&1)
	[ $? = 1 ] && [[ "$out" == *SET_PARAMS* ]] ||
		{ diag "channels $1: $out"; return 1; }
}
ktap_result "ioctl: SET_PARAMS refuses channels 0" params_refused 0
ktap_result "ioctl: SET_PARAMS refuses channels 9" params_refused 9

nl_channels()
{
	"$RDMAMIGCTL" -j param show | jq -r .channels
}
saved_channels=$(nl_channels)
diag "default channels: $saved_channels"
nl_accepts_8()
{
	"$RDMAMIGCTL" param set channels 8 && [ "$(nl_channels)" = 8 ] &&
		"$RDMAMIGCTL" param set channels "$saved_channels"
}
if [[ "$saved_channels" =~ ^[0-9]+$ ]]; then
	diag "param set channels 9: $("$RDMAMIGCTL" param set channels 9 2>&1)"
	ktap_result "netlink: param set refuses channels 0 and 9, keeps the default" \
		bash -c "! '$RDMAMIGCTL' param set channels 0 2>/dev/null &&
			 ! '$RDMAMIGCTL' param set channels 9 2>/dev/null &&
			 [ \"\$('$RDMAMIGCTL' -j param show | jq -r .channels)\" = '$saved_channels' ]"
	ktap_result "netlink: param set channels 8 accepted and shown" nl_accepts_8
else
	ktap_fail "netlink: param show has no channels ('$saved_channels')"
	saved_channels=
	ktap_fail "netlink: param set channels 8 accepted and shown"
fi

# Killing one end in the middle.  The rate limit keeps the bulk round
# running for several seconds, with writes in flight on all channels.
ref0=$(module_refcnt rdmamig)
released()
{
	[ "$(module_refcnt rdmamig)" = "$ref0" ]
}
SLOW=(--blocks 4 --size 128 --rounds 1 --seed 13 --channels 4
	--max-bandwidth 8000000)

# kill_src NAME TITLE VMM-ARGS...: the source killed after 6 s.
kill_src()
{
	local name=$1 t1=$2 ok=0
	shift 2
	if ! start_dest "$name" --blocks 4 --size 128 --channels 4 "$@"; then
		ktap_fail "$t1"
		return
	fi
	"$VMM" source --connect "$(dest_host):$dest_port" --timeout "$TIMEOUT" \
		--json "${SLOW[@]}" "$@" >"$tmp/$name.src" 2>&1 &
	src_pid=$!
	sleep 6
	kill -9 "$src_pid" 2>/dev/null
	wait "$src_pid" 2>/dev/null
	src_pid=
	wait_dest "$name" 60
	dst_rc=$?
	diag "$name: destination exited $dst_rc: $(jget "$tmp/$name.dst" .reason)"
	[ "$dst_rc" != 0 ] || { diag "$name: destination succeeded"; ok=1; }
	wait_for 30 released || { diag "$name: refcnt $(module_refcnt rdmamig), was $ref0"; ok=1; }
	[ $ok = 0 ] || show_output "$name"
	ktap_result "$t1" test $ok = 0
}

# kill_dst NAME TITLE VMM-ARGS...: the destination killed after 6 s.
kill_dst()
{
	local name=$1 t1=$2 ok=0 start
	shift 2
	if ! start_dest "$name" --blocks 4 --size 128 --channels 4 "$@"; then
		ktap_fail "$t1"
		return
	fi
	"$VMM" source --connect "$(dest_host):$dest_port" --timeout "$TIMEOUT" \
		--json "${SLOW[@]}" "$@" >"$tmp/$name.src" 2>&1 &
	src_pid=$!
	sleep 6
	if [ $topology = pair ]; then
		"$RDMAMIG_PEER" --kill "$dest_id" >/dev/null 2>&1
		"$RDMAMIG_PEER" --wait "$dest_id" >"$tmp/$name.dst" 2>&1
	else
		kill -9 "$dest_pid" 2>/dev/null
		wait "$dest_pid" 2>/dev/null
		dest_pid=
	fi
	start=$SECONDS
	wait "$src_pid"
	src_rc=$?
	src_pid=
	diag "$name: source exited $src_rc after $((SECONDS - start)) s"
	grep -v '^{' "$tmp/$name.src" | sed "s|^|# $name.src: |" | tail -n 3
	[ "$src_rc" = 1 ] || { diag "$name: source exit $src_rc, not 1"; ok=1; }
	[ $((SECONDS - start)) -le 60 ] || { diag "$name: source took too long"; ok=1; }
	wait_for 30 released || { diag "$name: refcnt $(module_refcnt rdmamig), was $ref0"; ok=1; }
	ktap_result "$t1" test $ok = 0
}

kill_src killsrc "source killed mid-migration: destination fails, sessions released"
kill_dst killdst "destination killed mid-migration: source fails, sessions released"
# Pull mode: the destination's READs in flight (on 4 channels) when the
# source goes, the source's windows registered for reading when the
# destination goes (Documentation/protocol.rst, "Pull mode").  The
# destination's own max-bandwidth paces its READs, so that it is reading,
# not waiting for the source's next window, most of the time.
kill_src pullkillsrc "pull: source killed mid-migration: destination fails, sessions released" \
	--pull --max-bandwidth 8000000
kill_dst pullkilldst "pull: destination killed mid-migration: source fails, sessions released" \
	--pull --max-bandwidth 8000000

migrate after --blocks 2 --size 32 --channels 4 -- --blocks 2 --size 32 \
	--rounds 1 --seed 14 --channels 4
ktap_result "4 channels after the kills: 32 MiB migrated, verified" migrated after 4

ktap_finish
