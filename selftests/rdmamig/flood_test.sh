#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A peer that keeps the destination busy, and a connection whose making
# or accept fails; all with the hostile peer (kmod/hostile.c), loop
# topology.
#
# flood (hostile mode 22): once the RAM blocks are agreed, the source
# sends 12 COMPRESS messages of 4095 commands, each one whole 1 MiB chunk
# of the destination's 64 MiB (written with 0xa5 first, so every page is
# cleared): valid messages, some 4 GiB of zeroing each, 5 s in the loop
# testbed.  While the destination's rx work is at it:
#   - a session list by an unprivileged user, started during a
#     CANCEL_SESSION of the destination (rdmamigctl session cancel),
#     returns within 3 s: the cancel does not wait under the global
#     session mutex (before: 4.9 s, the rest of the message);
#   - the cancel returns within 4 s: teardown stops the zeroing between
#     two batches of 64 pages (before: 5.8 s, the message's end);
#     both limits three times that on the debug kernel;
#   - the destination VMM, told by its blocked call, exits within 10 s
#     with the reason "cancelled".
#
# blocks (hostile mode 24): the same with each command a whole block,
# 64 MiB: the destination refuses the first message ("crosses a chunk
# boundary") and its VMM exits within 15 s.  Before COMPRESS was bounded
# by a chunk, each such message was 256 GiB of zeroing: the destination
# could not be cancelled or closed for hours.
#
# accept (hostile mode 23): the destination fails its first connection
# after making its resources and posting its receives, as when rdma_accept()
# fails (a source's REJ overtaking our REP): the source is refused with
# "could not set up the connection", the destination keeps listening, and
# a second source then migrates to it with every page checked.  The
# debug kernel (KASAN) checks that nothing touched the freed buffers.
#
# conn (hostile mode 25): the same when making the connection itself
# fails, at its last step (channel 0 made, its receives posted): the
# unwinding of rdmamig_conn_create(), not the caller's, frees it all.
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
PARAM=/sys/module/rdmamig/parameters/hostile
HOSTILE_COMPRESS_FLOOD=22
HOSTILE_ACCEPT_FAIL=23
HOSTILE_COMPRESS_BLOCKS=24
HOSTILE_CONN_FAIL=25

for prog in "$VMM" "$RDMAMIGCTL"; do
	[ -x "$prog" ] || { echo "1..0 # SKIP $prog not built"; exit $KSFT_SKIP; }
done
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit $KSFT_SKIP; }
if [ "${RDMAMIG_TOPOLOGY:-loop}" != loop ]; then
	echo "1..0 # SKIP runs in the loop topology"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit $KSFT_SKIP; }
[ -w "$PARAM" ] || {
	echo "1..0 # SKIP rdmamig.ko has no hostile peer (built without CONFIG_RDMAMIG_FAULT_INJECTION)"
	exit $KSFT_SKIP
}
ulimit -l unlimited
tmp=$(mktemp -d)
pids=()
cleanup()
{
	echo 0 > "$PARAM"
	kill -9 "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 10

# The time limits are for Debian's kernels; the debug kernel (KASAN,
# lockdep) runs everything some three times slower.
slow=1
case $(uname -r) in *debug*) slow=3 ;; esac
LIST_MS=$((3000 * slow))
CANCEL_MS=$((4000 * slow))

# Milliseconds since the epoch, without forking (exec is slow under TCG).
now_ms()
{
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# PID exited (a zombie until waited for: its files are closed by then).
gone()
{
	local _p _c st
	read -r _p _c st _ 2>/dev/null < "/proc/$1/stat" || return 0
	[ "$st" = Z ]
}

session_of()
{
	"$RDMAMIGCTL" -j session list 2>/dev/null |
		jq -e --argjson pid "$1" 'first(.[] | select(.owner_pid == $pid) | .id)'
}

zeroing()
{
	dmesg | grep -q "hostile mode $HOSTILE_COMPRESS_FLOOD: sent" &&
		session_of "$dpid" > /dev/null
}

# ---- flood ----------------------------------------------------------------
"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 64 --blocks 1 \
	--prefill --timeout 300 > "$tmp/dest" 2>&1 &
dpid=$!
pids+=("$dpid")
wait_for 20 test -s "$tmp/port"
echo $HOSTILE_COMPRESS_FLOOD > "$PARAM"
"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 64 --blocks 1 \
	--rounds 0 --timeout 300 > "$tmp/src" 2>&1 &
spid=$!
pids+=("$spid")
wait_for 60 zeroing
echo 0 > "$PARAM"
id=$(session_of "$dpid")
diag "destination session ${id:-none}; $(dmesg | grep -m1 'hostile mode 22: sent')"
sleep 2		# well into the zeroing

t0=$(now_ms)
"$RDMAMIGCTL" session cancel "$id" > "$tmp/cancel" 2>&1 &
cpid=$!
sleep 0.5
t1=$(now_ms)
timeout 60 setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$RDMAMIGCTL" session list > "$tmp/list" 2>&1
lrc=$?
list_ms=$(($(now_ms) - t1))
ktap_result "flood: an unprivileged session list is not held by the cancel (rc $lrc, $list_ms ms)" \
	test "$lrc" = 0 -a "$list_ms" -lt "$LIST_MS"
wait_for 60 gone "$cpid"
wait "$cpid"
crc=$?
cancel_ms=$(($(now_ms) - t0))
diag "cancel: rc $crc: $(tr '\n' ' ' < "$tmp/cancel")"
ktap_result "flood: CANCEL_SESSION of a flooded destination returns in time ($cancel_ms ms, limit $CANCEL_MS)" \
	test "$crc" = 0 -a "$cancel_ms" -lt "$CANCEL_MS"
# The destination VMM learns of the cancel from its blocked call and
# exits; killed if it does not within 10 s.
t0=$(now_ms)
wait_for 10 gone "$dpid" || kill -9 "$dpid"
wait_for 60 gone "$dpid"
gone_ms=$(($(now_ms) - t0))
wait "$dpid"
diag "destination: $(grep -i -m1 'reason\|fail' "$tmp/dest")"
ktap_result "flood: the destination VMM is told of the cancel and exits within 10 s ($gone_ms ms)" \
	eval "[ $gone_ms -lt 10000 ] && grep -q 'reason: cancelled' '$tmp/dest'"
wait "$spid" 2>/dev/null
diag "source: $(grep -i -m1 'reason\|fail' "$tmp/src")"

# refused_then_migrates NAME MODE: the destination fails its first
# connection in hostile MODE; the source is refused, the destination
# keeps listening, and a second source migrates with every page checked.
refused_then_migrates() {
	local name=$1 mode=$2 rc src_rc dst_rc

	rm -f "$tmp/port"
	"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 16 --blocks 2 \
		--timeout 120 > "$tmp/$name-dest" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	wait_for 20 test -s "$tmp/port"
	echo "$mode" > "$PARAM"
	"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 16 --blocks 2 \
		--rounds 1 --timeout 60 > "$tmp/$name-src1" 2>&1
	rc=$?
	echo 0 > "$PARAM"
	diag "first source: rc $rc: $(grep -i -m1 'reason\|fail' "$tmp/$name-src1")"
	ktap_result "$name: the first source is refused: could not set up the connection" \
		eval "[ $rc -ne 0 ] && grep -q 'could not set up the connection' '$tmp/$name-src1'"
	ktap_result "$name: the destination still listens" kill -0 "$dpid"
	"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 16 --blocks 2 \
		--rounds 1 --timeout 60 > "$tmp/$name-src2" 2>&1
	src_rc=$?
	wait "$dpid"
	dst_rc=$?
	diag "second source rc $src_rc, destination rc $dst_rc: $(grep -i -m1 'verified\|reason\|fail' "$tmp/$name-dest")"
	ktap_result "$name: a second source then migrates, every page checked" \
		test "$src_rc/$dst_rc" = 0/0
}

# ---- accept and conn -------------------------------------------------------
refused_then_migrates accept $HOSTILE_ACCEPT_FAIL
refused_then_migrates conn $HOSTILE_CONN_FAIL

# ---- blocks (last: before the fix, it wedged the destination) ------------
rm -f "$tmp/port"
"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 64 --blocks 1 \
	--prefill --timeout 120 > "$tmp/dest3" 2>&1 &
dpid=$!
pids+=("$dpid")
wait_for 20 test -s "$tmp/port"
echo $HOSTILE_COMPRESS_BLOCKS > "$PARAM"
"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 64 --blocks 1 \
	--rounds 0 --timeout 60 > "$tmp/src3" 2>&1 &
spid=$!
pids+=("$spid")
wait_for 30 eval "dmesg | grep -q 'hostile mode $HOSTILE_COMPRESS_BLOCKS: sent'"
echo 0 > "$PARAM"
wait_for 15 gone "$dpid"
diag "destination: $(grep -i -m1 'reason\|fail' "$tmp/dest3")"
ktap_result "blocks: a COMPRESS of a whole block is refused at once" \
	eval "gone $dpid && grep -q 'crosses a chunk boundary' '$tmp/dest3'"

ktap_finish
