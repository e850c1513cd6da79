#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A hostile peer: with the module parameter "hostile" set, the next source
# session (for mode 17, destination) spoils one control message
# (kmod/hostile.c, built in only with CONFIG_RDMAMIG_FAULT_INJECTION: the
# testbed's module has it, one from DKMS or make install does not, and
# the test is then skipped).  For every mode the
# destination must refuse the message with an error naming the problem,
# fail, tell the source (which fails too), and leave no oops behind; the
# harness then checks that the module unloads.  Both ends run in this VM.
#
# Modes 12 and 13 are a source that skips or botches the authentication:
# the destination refuses it before it acts on anything else.  Mode 14 is
# a source that keeps last round's keys (dynamic registration): the
# destination invalidated them when the round ended, so the stale write
# must fail with a remote access error, on the source.  Modes marked
# "/sparse" run with sparse registration on (module parameter sparse=1):
# REGISTER_PAGES_REQUEST instead of REGISTER_REQUEST; mode 16 registers
# one page fewer than the source then writes: the write past the
# registered pages must fail the same way.  Mode 17 is a hostile
# destination: its RAM_BLOCKS_RESULT calls a block past the last fresh;
# the source must refuse it before it sends any data.  Mode 18 names one
# chunk 2731 times in a REGISTER_REQUEST: under the header's 4096, but its
# REGISTER_RESULT (24 bytes a key) would not fit one message; refused
# before anything is registered (it used to reach a WARN and leave the
# source waiting for its keys).  Modes 19 and 20 put a keepalive of
# 2^32 - 1 ms in the rdma_cm private data, offered by the source (the
# destination rejects the request and keeps listening until its timeout)
# or chosen by the destination (the source fails the session).  Mode 21
# names the first chunk of a REGISTER_REQUEST (or, sparse, a
# REGISTER_PAGES_REQUEST) once more at its end: refused, as the source
# never asks for a chunk twice at once and a repeat would be registered
# again outside what the request seems to ask for.  Modes marked "/pull"
# run in pull mode (--pull at both ends): the spoiled message is then a
# READ_REQUEST, whose commands begin as REGISTER_PAGES_REQUEST's (block,
# chunk, page map): a chunk that does not exist (5, 6), a map of no page
# (15) and a chunk named twice (21) are refused before anything is pinned
# or read; a map one page short (16) is read as asked, and the round's
# end, whose page count is one more than what was read, is refused.
# Modes marked "/pc" end in post-copy with no round before it (--postcopy
# at both ends, --postcopy=0 at the source): the spoiled message is then
# the switch's POSTCOPY_CHUNKS (5, 6: a chunk that does not exist; 15: a
# map of no page; 16: a map one page short, which the POSTCOPY_RUN's
# count then contradicts; 21: a chunk named twice), all refused before
# the destination runs.  Modes 26 to 28 are a hostile post-copy
# destination: it releases a chunk of block 999 (26) or ends one page
# short (28), which the source refuses, or reads one chunk past what the
# source exposed (27), which the source's device refuses: the READ fails
# with a remote access error.  In 26 and 28 the destination may have
# everything when the source's error arrives: only its exit without a
# crash is asserted.  Modes marked "/mc" run micro-checkpointing (--mc at
# both ends, the backup with --no-mc-failover --json): epoch 3 ends with
# a checksum off by one bit (29) or as epoch 4 (30), and the backup
# refuses it; epoch 1's first run names a page far past its block (31),
# refused before any page is applied; the backup acknowledges epoch 3 as
# epoch 4 (32), and the primary refuses.  Each /mc case also checks that
# the backup's RAM is exactly the last epoch it committed (2, 2, none, 3:
# the digest the primary put in that epoch's device state).
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
PARAM=/sys/module/rdmamig/parameters/hostile
SPARSE=/sys/module/rdmamig/parameters/sparse

# mode: what the destination's reason must contain
# mode:source:...: what the source's must contain instead
# mode/sparse:...: the same with sparse registration
# mode/pull:...: the same in pull mode
# mode/pc:...: the same ending in post-copy, no round before it
# mode/mc:...: the same in micro-checkpointing (MC_COMMITTED: the epoch the
# backup must hold)
declare -A MC_COMMITTED=([29]=2 [30]=2 [31]=0 [32]=3)
CASES=(
	"1:length field does not match"
	"2:shorter than its header"
	"3:unknown message type"
	"4:repeat over 4096"
	"5:does not exist"
	"6:does not exist"
	"7:outside block"
	"8:outside block"
	"9:expected round 1"
	"10:more than it has"
	"11:reserved header field"
	"12:before it authenticated"
	"13:failed authentication"
	"14:source:remote access error"
	"15/sparse:register of no pages"
	"16/sparse:source:remote access error"
	"1/sparse:length field does not match"
	"5/sparse:does not exist"
	"6/sparse:does not exist"
	"14/sparse:source:remote access error"
	"17:source:is fresh, but there are 2 blocks"
	"18:keys would not fit one message"
	"19:source:destination refused: not an rdmamig peer"
	"20:source:destination chose a keepalive of 4294967295 ms"
	"21:twice in one register request"
	"21/sparse:twice in one register request"
	"5/pull:does not exist"
	"6/pull:does not exist"
	"15/pull:read of no pages"
	"16/pull:we read"
	"21/pull:twice in one read request"
	"5/pc:does not exist"
	"6/pc:does not exist"
	"15/pc:post-copy of no pages"
	"16/pc:post-copy run for"
	"21/pc:twice"
	"26/pc:source:which is not exposed"
	"27/pc:remote access error"
	"28/pc:source:post-copy end for"
	"29/mc:checksum mismatch, not applied"
	"30/mc:ended, expected 3"
	"31/mc:outside the block or the staging"
	"32/mc:source:which is not in flight"
)

# RDMAMIG_HOSTILE_MODES="19 20/sparse": run only those cases.
if [ -n "${RDMAMIG_HOSTILE_MODES:-}" ]; then
	sel=()
	for c in "${CASES[@]}"; do
		for m in $RDMAMIG_HOSTILE_MODES; do
			[ "${c%%:*}" = "$m" ] && sel+=("$c")
		done
	done
	CASES=("${sel[@]}")
fi

[ -x "$VMM" ] || { echo "1..0 # SKIP $VMM not built"; exit $KSFT_SKIP; }
# Post-copy's cases need userfaultfd at the destination (CONFIG_USERFAULTFD).
if ! have_userfaultfd; then
	sel=()
	for c in "${CASES[@]}"; do
		case ${c%%:*} in
		*/pc) ;;
		*) sel+=("$c") ;;
		esac
	done
	echo "# no userfaultfd in this kernel: the /pc cases are left out"
	CASES=("${sel[@]}")
fi
if [ "${RDMAMIG_TOPOLOGY:-loop}" != loop ]; then
	echo "1..0 # SKIP the hostile peer runs in the loop topology"
	exit $KSFT_SKIP
fi
module_load
if module_loaded && [ ! -e "$PARAM" ]; then
	echo "1..0 # SKIP rdmamig.ko has no hostile peer: built without CONFIG_RDMAMIG_FAULT_INJECTION (make module builds it in)"
	exit $KSFT_SKIP
fi
[ -w "$PARAM" ] && [ -w "$SPARSE" ] ||
	{ echo "1..0 # SKIP no $PARAM or $SPARSE"; exit $KSFT_SKIP; }
ulimit -l unlimited

tmp=$(mktemp -d)
cleanup()
{
	echo 0 > "$PARAM"
	echo 0 > "$SPARSE"
	rm -rf "$tmp"
}
trap cleanup EXIT

n_mc=0
for c in "${CASES[@]}"; do
	[[ ${c%%:*} == */mc ]] && n_mc=$((n_mc + 1))
done
ktap_plan $(( ${#CASES[@]} * 2 + n_mc ))

for c in "${CASES[@]}"; do
	mode=${c%%:*}
	want=${c#*:}
	num=${mode%/*}
	sparse=0
	pull=()
	src_opts=(--rounds 1 --redirty 20)
	dst_opts=()
	case $mode in
	*/sparse) sparse=1 ;;
	*/pull) pull=(--pull) ;;
	*/pc) pull=(--postcopy); src_opts=() ;;
	*/mc) src_opts=(--mc --mc-delay 50 --mc-epochs 10 --mc-rate 1000)
	      dst_opts=(--mc --no-mc-failover --json) ;;
	esac
	echo $sparse > "$SPARSE"
	side=dest
	if [ "${want%%:*}" = source ]; then
		side=src
		want=${want#source:}
	fi
	rm -f "$tmp/port"
	# --prefill: not fresh, so the bulk round's zero pages go out as
	# COMPRESS too (the COMPRESS modes mangle the first one).
	"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 8 --blocks 2 \
		--prefill --timeout 30 "${pull[@]}" "${dst_opts[@]}" > "$tmp/dest" 2>&1 &
	dpid=$!
	wait_for 10 test -s "$tmp/port"
	echo "$num" > "$PARAM"
	"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 8 --blocks 2 \
		--zero-holes 30 "${src_opts[@]}" --timeout 30 "${pull[@]/#--postcopy/--postcopy=0}" > "$tmp/src" 2>&1
	src_rc=$?
	echo 0 > "$PARAM"
	wait "$dpid"
	dst_rc=$?
	diag "mode $mode: dest rc $dst_rc: $(grep -i -m1 'reason\|fail' "$tmp/dest")"
	diag "mode $mode: source rc $src_rc: $(grep -i -m1 'reason\|fail' "$tmp/src")"
	if [ $side = dest ]; then
		if [ $dst_rc -ne 0 ] && grep -q -- "$want" "$tmp/dest"; then
			ktap_ok "mode $mode: destination refuses: $want"
		else
			ktap_fail "mode $mode: destination refuses: $want"
		fi
		if [[ $mode == */mc ]]; then
			# A primary that lost its backup runs on (exit 0) and says so.
			ktap_result "mode $mode: source loses its backup" grep -q "backup lost" "$tmp/src"
		else
			ktap_result "mode $mode: source fails too" test $src_rc -ne 0
		fi
	else
		if { [ $src_rc -ne 0 ] || [[ $mode == */mc ]]; } && grep -q -- "$want" "$tmp/src"; then
			ktap_ok "mode $mode: source fails: $want"
		else
			sed 's/^/# source: /' "$tmp/src"
			ktap_fail "mode $mode: source fails: $want"
		fi
		case $num in
		26|28) ktap_result "mode $mode: destination exits without a crash" test $dst_rc -le 1 ;;
		*) ktap_result "mode $mode: destination fails too" test $dst_rc -ne 0 ;;
		esac
	fi
	if [[ $mode == */mc ]]; then
		want_epoch=${MC_COMMITTED[$num]}
		got=$(jq -r 'select(.role == "dest") | "\(.mc_committed) \(.consistent)"' \
			"$tmp/dest" 2>/dev/null | tail -n 1)
		diag "mode $mode: the backup committed ${got% *}, its RAM is that epoch: ${got#* }"
		if [ "$want_epoch" = 0 ]; then
			ktap_result "mode $mode: the backup committed no epoch" test "${got% *}" = 0
		else
			ktap_result "mode $mode: the backup's RAM is epoch $want_epoch, whole" \
				test "$got" = "$want_epoch true"
		fi
	fi
done

ktap_finish
