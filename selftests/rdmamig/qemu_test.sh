#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# qemu_test.sh: QEMU migrates a guest through /dev/rdmamig (the
# rdmamig:HOST:PORT transport of tools/qemu/), VM A to VM B in the pair
# topology (both ends in VM A in loop).  Not in the default list: it
# needs the patched QEMU (tools/qemu/check.sh builds it) and its time.
#
#   1. a paused guest (-S, no kernel) with 256 MiB of random RAM in a
#      shared memory-backend-file: the destination's RAM file is
#      byte-identical to the source's (sha256), query-migrate says
#      completed on both sides, with the module's figures; again with
#      rdma-pin-all (the module's RDMAMIG_CAP_PIN_ALL)
#   2. nothing listens: migrate fails, the source guest runs on, and
#      query-migrate says failed and why
#   3. the destination has another secret: authentication fails, likewise
#   4. the destination QEMU is killed mid-migration: likewise
#   5. that running guest (its BIOS; no kernel) migrated to the end: it
#      runs on the destination
#
# QEMU is $RDMAMIG_QEMU, default build/qemu/qemu-system-x86_64.
source "$(dirname "$0")/lib.sh"

QEMU=${RDMAMIG_QEMU:-$TOP/build/qemu/qemu-system-x86_64}
QMP="/usr/bin/python3 $TOP/selftests/rdmamig/qmp.py"
PORT=18650
RAM_MB=256
topology=${RDMAMIG_TOPOLOGY:-loop}
dir=/tmp/rdmamig-qemu-test

require_root
if [ ! -x "$QEMU" ]; then
	echo "1..0 # SKIP no QEMU with rdmamig at $QEMU (tools/qemu/build.sh)"
	exit $KSFT_SKIP
fi
module_load || { echo "1..0 # SKIP cannot load rdmamig"; exit $KSFT_SKIP; }

source "$(dirname "$0")/procmig_lib.sh"

dst_addr=$RDMAMIG_PEER_ADDR

cleanup()
{
	local n
	for n in "${!bg_pid[@]}"; do
		[ "$topology" = pair ] && "$RDMAMIG_PEER" --kill "${bg_pid[$n]}" KILL 2>/dev/null
		[ "$topology" = pair ] || kill -KILL "${bg_pid[$n]}" 2>/dev/null
	done
	[ -n "${src_pid:-}" ] && kill -KILL "$src_pid" 2>/dev/null
	rm -rf "$dir"
	on_peer rm -rf "$dir" 2>/dev/null
}
trap cleanup EXIT

mkdir -p "$dir"
on_peer mkdir -p "$dir"

# qemu_cmd NAME RAMFILE [ARGS...]: a guest with RAMFILE as its RAM (shared,
# so that the file is what the guest's memory holds), QMP on $dir/NAME.qmp.
qemu_cmd()
{
	local name=$1 ram=$2
	shift 2
	echo "$QEMU" -L /usr/share/seabios -L /usr/share/qemu \
		-M pc -accel tcg,tb-size=32 -m ${RAM_MB}M -nodefaults \
		-display none -serial none -monitor none \
		-object memory-backend-file,id=mem0,size=${RAM_MB}M,mem-path=$ram,share=on \
		-machine memory-backend=mem0 \
		-object secret,id=rsec,file=$RDMAMIG_SECRET_FILE,format=raw \
		-qmp unix:$dir/$name.qmp,server=on,wait=off "$@"
}

# dst_start NAME URI-OPTIONS [ARGS...]: the destination QEMU, on the peer.
dst_start()
{
	local name=$1 opts=$2
	shift 2
	rm -f "$dir/$name.ram"
	# shellcheck disable=SC2046
	peer_bg "$name" $(qemu_cmd "$name" "$dir/$name.ram" \
		-incoming "rdmamig:$dst_addr:$PORT$opts" "$@") || return 1
	on_peer $QMP "$dir/$name.qmp" --wait-ready 60
}

# src_start NAME RAMFILE [ARGS...]: the source QEMU, here; sets src_pid.
src_start()
{
	local name=$1 ram=$2
	shift 2
	# shellcheck disable=SC2046
	$(qemu_cmd "$name" "$ram" "$@") >"$dir/$name.out" 2>&1 &
	src_pid=$!
	$QMP "$dir/$name.qmp" --wait-ready 60
}

src_stop()
{
	$QMP "$dir/$1.qmp" quit >/dev/null 2>&1
	wait "$src_pid" 2>/dev/null
	src_pid=
}

dst_stop()
{
	on_peer $QMP "$dir/$1.qmp" quit >/dev/null 2>&1
	peer_wait "$1"
}

migrate()
{
	$QMP "$dir/$1.qmp" migrate "{\"uri\": \"rdmamig:$dst_addr:$PORT$2\"}"
}

# show NAME FILE: a JSON answer as diagnostics.
show()
{
	diag "$1: $(cat "$2" 2>/dev/null)"
}

# status_is FILE STATUS: query-migrate's answer in FILE says STATUS.
status_is()
{
	[ "$(jq -r .status "$1" 2>/dev/null)" = "$2" ]
}

# error_says FILE REGEX: its error-desc matches.
error_says()
{
	jq -r '."error-desc" // ""' "$1" 2>/dev/null | grep -qiE "$2"
}

# running NAME: the source guest runs.
running()
{
	[ "$($QMP "$dir/$1.qmp" query-status | jq -r .status)" = running ]
}

ktap_plan 19

# paused NAME CAPABILITY: a paused guest's 256 MiB of random RAM, migrated
# with CAPABILITY (migrate-set-capabilities) on, if not "none".
paused()
{
	local name=$1 cap=$2 ok=1 t0 pages normal zero rounds dst_sum

	head -c ${RAM_MB}M /dev/urandom > "$dir/src.ram"
	src_sum=$(sha256sum "$dir/src.ram" | cut -d' ' -f1)
	dst_start dst ",secret=rsec" -S || ok=0
	# Each round of the module, timed, in the source's log.
	src_start src "$dir/src.ram" -S -msg timestamp=on -trace 'rdmamig_round*' || ok=0
	if [ "$cap" != none ]; then
		$QMP "$dir/src.qmp" migrate-set-capabilities \
			"{\"capabilities\": [{\"capability\": \"$cap\", \"state\": true}]}" \
			>/dev/null || ok=0
	fi
	if [ $ok = 1 ]; then
		t0=$SECONDS
		migrate src ",secret=rsec" >/dev/null || ok=0
		$QMP "$dir/src.qmp" --wait-migration 600 > "$dir/src.mig" || ok=0
		on_peer $QMP "$dir/dst.qmp" --wait-migration 120 > "$dir/dst.mig" || ok=0
		diag "$name: migrated in $((SECONDS - t0)) s"
	fi
	show "$name: source query-migrate" "$dir/src.mig"
	show "$name: destination query-migrate" "$dir/dst.mig"
	ktap_result "$name: source query-migrate says completed" \
		status_is "$dir/src.mig" completed
	ktap_result "$name: destination query-migrate says completed" \
		status_is "$dir/dst.mig" completed
	pages=$((RAM_MB * 256))
	normal=$(jq -r '.ram.normal // 0' "$dir/src.mig" 2>/dev/null)
	zero=$(jq -r '.ram.duplicate // 0' "$dir/src.mig" 2>/dev/null)
	diag "$name: module figures: $normal pages, $zero zero pages, $(jq -c '{"total-time", "setup-time", downtime, transferred: .ram.transferred, mbps: .ram.mbps}' "$dir/src.mig" 2>/dev/null)"
	ktap_result "$name: the module's pages cover the guest's RAM" \
		test "$((normal + zero))" -ge "$pages"
	src_stop src
	dst_stop dst
	rounds=$(grep -c ':rdmamig_round ' "$dir/src.out")
	diag "$name: $rounds rounds; first, second and last:"
	grep ':rdmamig_round ' "$dir/src.out" | sed -n '1p;2p;$p' |
		while read -r l; do diag "  $l"; done
	dst_sum=$(on_peer sha256sum "$dir/dst.ram" | cut -d' ' -f1)
	diag "$name: sha256 source $src_sum destination $dst_sum"
	ktap_result "$name: destination RAM file equals the source's (sha256)" \
		test -n "$dst_sum" -a "$src_sum" = "$dst_sum"
	ktap_result "$name: source RAM file unchanged" \
		test "$(sha256sum "$dir/src.ram" | cut -d' ' -f1)" = "$src_sum"
	rm -f "$dir/src.ram"
	on_peer rm -f "$dir/dst.ram"
}

# 1. A paused guest, dynamic registration, then with rdma-pin-all.
paused "paused guest" none
paused "paused guest, rdma-pin-all" rdma-pin-all

# 2. Nothing listens: a running source guest stays running.
src_start src2 "$dir/src2.ram" || true
migrate src2 ",secret=rsec" >/dev/null 2>"$dir/src2.err"
$QMP "$dir/src2.qmp" --wait-migration 60 > "$dir/src2.mig"
show "no destination: query-migrate" "$dir/src2.mig"
ktap_result "no destination: query-migrate says failed, refused" \
	eval 'status_is "$dir/src2.mig" failed && error_says "$dir/src2.mig" "refused"'
ktap_result "no destination: the source guest runs on" running src2

# 3. Another secret: authentication fails.
on_peer sh -c "head -c 32 /dev/urandom > $dir/other.secret"
dst_start dst3 ",secret=osec" -S \
	-object secret,id=osec,file=$dir/other.secret,format=raw || true
migrate src2 ",secret=rsec" >/dev/null 2>"$dir/src3.err"
$QMP "$dir/src2.qmp" --wait-migration 60 > "$dir/src3.mig"
show "wrong secret: query-migrate" "$dir/src3.mig"
ktap_result "wrong secret: query-migrate says failed, authentication" \
	eval 'status_is "$dir/src3.mig" failed && error_says "$dir/src3.mig" "permission|authenticat|secret|EACCES"'
ktap_result "wrong secret: the source guest runs on" running src2
dst_stop dst3 || true

# 4. The destination QEMU dies mid-migration (1 MiB/s: 256 s at full length).
dst_start dst4 ",secret=rsec" -S || true
$QMP "$dir/src2.qmp" migrate-set-parameters '{"max-bandwidth": 1048576}' >/dev/null
migrate src2 ",secret=rsec" >/dev/null
for i in $(seq 1 100); do
	$QMP "$dir/src2.qmp" query-migrate > "$dir/src4.mig"
	# 1024 pages moved (most of a fresh guest's are zero: no bytes).
	[ "$(jq -r '(.ram.normal // 0) + (.ram.duplicate // 0)' "$dir/src4.mig")" -ge 1024 ] && break
	sleep 0.3
done
show "before the kill: query-migrate" "$dir/src4.mig"
ktap_result "destination killed: migration was active" status_is "$dir/src4.mig" active
if [ "$topology" = pair ]; then
	"$RDMAMIG_PEER" --kill "${bg_pid[dst4]}" KILL
else
	kill -KILL "${bg_pid[dst4]}"
fi
peer_wait dst4
$QMP "$dir/src2.qmp" --wait-migration 180 > "$dir/src4.mig"
show "destination killed: query-migrate" "$dir/src4.mig"
ktap_result "destination killed: query-migrate says failed and why" \
	eval 'status_is "$dir/src4.mig" failed && error_says "$dir/src4.mig" "rdmamig: .*:"'
ktap_result "destination killed: the source guest runs on" running src2

# 5. The same guest, running (its BIOS), migrated for good: it runs on
# the destination, and the source is left in postmigrate.
dst_start dst5 ",secret=rsec" || true
$QMP "$dir/src2.qmp" migrate-set-parameters '{"max-bandwidth": 134217728}' >/dev/null
migrate src2 ",secret=rsec" >/dev/null
$QMP "$dir/src2.qmp" --wait-migration 300 > "$dir/src5.mig"
on_peer $QMP "$dir/dst5.qmp" --wait-migration 60 > "$dir/dst5.mig"
show "running guest: source query-migrate" "$dir/src5.mig"
ktap_result "running guest: completed on both sides" \
	eval 'status_is "$dir/src5.mig" completed && status_is "$dir/dst5.mig" completed'
st=$(on_peer $QMP "$dir/dst5.qmp" query-status | jq -r .status)
diag "running guest: destination $st, source $($QMP "$dir/src2.qmp" query-status | jq -r .status)"
ktap_result "running guest: it runs on the destination" test "$st" = running
src_stop src2
dst_stop dst5

ktap_finish
