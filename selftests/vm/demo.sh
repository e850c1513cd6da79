#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job, run in VM A of the pair topology by `make demo`: the live
# migration of a running process from VM A to VM B over soft-RoCE.
#
#   VM A  rdmamig-workload: 256 MiB, writing random pages at DEMO_RATE MB/s
#         (about 10% of the link), a heartbeat every second
#   VM B  its twin (--twin): the same layout, stopped before touching it
#   VM B  rdmamigctl incoming --pid TWIN --checksum rdma:B:PORT
#   VM A  rdmamigctl migrate --pid SOURCE --checksum rdma:B:PORT
#
# The source's checksum (stopped, after the final round) must equal the
# twin's (before it is continued), and the twin must run on: its
# heartbeat carries on from the source's count and advances.  Exits
# non-zero if anything differs.
#
#   DEMO_SIZE_MB (256)  DEMO_RATE (2, MB/s)  DEMO_PORT (18515)
#   DEMO_PIN_ALL (1: the destination registers all of the twin's memory up
#   front, so that no round waits for registrations; 0: dynamic
#   registration of at most max-registered bytes, 64 MiB by default)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
ctl=$top/tools/rdmamigctl/rdmamigctl
workload=$top/tools/rdmamig-workload/rdmamig-workload
size=${DEMO_SIZE_MB:-256}
rate=${DEMO_RATE:-2}
port=${DEMO_PORT:-18515}
pin=()
[ "${DEMO_PIN_ALL:-1}" = 1 ] && pin=(--pin-all)

[ -n "${RDMAMIG_PEER:-}" ] || { echo "demo: needs the pair topology" >&2; exit 2; }
for prog in "$ctl" "$workload"; do
	[ -x "$prog" ] || { echo "demo: $prog not built (make tools)" >&2; exit 2; }
done
ulimit -l unlimited
dir=$RDMAMIG_OUT/demo		# both VMs see it
rm -rf "$dir"
mkdir -p "$dir"

src_pid='' twin_pid='' twin_id='' inc_id=''
# shellcheck disable=SC2317 # called from the trap
cleanup() {
	set +e
	[ -n "$src_pid" ] && kill -KILL "$src_pid" 2>/dev/null && wait "$src_pid" 2>/dev/null
	# Not killed (no kill(1) on VM B?): do not wait for it forever.
	[ -n "$twin_pid" ] && { "$RDMAMIG_PEER" kill -KILL "$twin_pid" 2>/dev/null || twin_id=; }
	[ -n "$inc_id" ] && "$RDMAMIG_PEER" --kill "$inc_id" >/dev/null 2>&1
	[ -n "$twin_id" ] && "$RDMAMIG_PEER" --wait "$twin_id" >/dev/null 2>&1
	return 0
}
trap cleanup EXIT

# until SECONDS CMD...: poll CMD every 0.1 s.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

last_beat() {
	awk '$1 == "heartbeat" { n = $2 } END { print n + 0 }' "$1" 2>/dev/null
}

# shellcheck disable=SC2317 # called through until_ok
beyond() {
	[ "$(last_beat "$1")" -gt "$2" ]
}

echo "== rdmamig demo: live migration of a running process, VM A -> VM B"
echo "   source $RDMAMIG_LOCAL_ADDR (VM A) -> destination $RDMAMIG_PEER_ADDR (VM B), soft-RoCE over MTU 9000"

# The source, running and dirtying its memory.
"$workload" --size "$size" --rate "$rate" --seed 42 --pid-file "$dir/source.pid" \
	--heartbeat "$dir/source.hb" >"$dir/source.out" 2>&1 &
src_pid=$!
until_ok 120 grep -q heartbeat "$dir/source.hb" ||
	{ echo "demo: the workload did not start" >&2; exit 1; }
echo "   VM A: workload pid $src_pid, $size MiB at 0x7e0000000000, writing $rate MB/s of random pages"

# Its twin on VM B, stopped before it touches its memory, and the
# destination listening for it.
twin_id=$("$RDMAMIG_PEER" --bg "$workload" --twin --size "$size" --rate "$rate" \
	--pid-file "$dir/twin.pid" --heartbeat "$dir/twin.hb")
until_ok 60 test -s "$dir/twin.pid" || { echo "demo: the twin did not start" >&2; exit 1; }
twin_pid=$(<"$dir/twin.pid")
"$RDMAMIG_PEER" timeout 30 bash -c \
	"until grep -q '^State:.*T' /proc/$twin_pid/status; do sleep 0.1; done" ||
	{ echo "demo: the twin did not stop" >&2; exit 1; }
echo "   VM B: twin pid $twin_pid, stopped, same layout"
inc_id=$("$RDMAMIG_PEER" --bg "$ctl" incoming --pid "$twin_pid" --checksum "${pin[@]}" \
	"rdma:$RDMAMIG_PEER_ADDR:$port")

# The migration; migrate retries while VM B does not listen yet.
echo
echo "== VM A: rdmamigctl migrate --pid $src_pid --checksum ${pin[*]}${pin:+ }rdma:$RDMAMIG_PEER_ADDR:$port"
rc=0
"$ctl" migrate --pid "$src_pid" --checksum "${pin[@]}" "rdma:$RDMAMIG_PEER_ADDR:$port" |
	tee "$dir/migrate.txt" | sed 's/^/   /' || rc=1
echo
echo "== VM B: rdmamigctl incoming --pid $twin_pid --checksum ${pin[*]}${pin:+ }rdma:$RDMAMIG_PEER_ADDR:$port"
"$RDMAMIG_PEER" --wait "$inc_id" >"$dir/incoming.txt" 2>&1 || rc=1
inc_id=''
sed 's/^/   /' "$dir/incoming.txt"

# The verdict.
src_sum=$(awk '$1 == "checksum" { print $2 }' "$dir/migrate.txt")
dst_sum=$(awk '$1 == "checksum" { print $2 }' "$dir/incoming.txt")
src_last=$(last_beat "$dir/source.hb")
from=$(awk '$1 == "twin:" { print $5 }' "$dir/twin.hb" 2>/dev/null)
beats=''
if [[ "$from" =~ ^[0-9]+$ ]] && until_ok 10 beyond "$dir/twin.hb" $((from + 2)); then
	beats=$(last_beat "$dir/twin.hb")
fi
src_state=$(cut -d' ' -f3 "/proc/$src_pid/stat" 2>/dev/null || echo gone)
bulk=$(awk '$1 == "round" && $2 == "1:" { print $9 }' "$dir/migrate.txt")
# What the workload really wrote, from its heartbeats: MB/s.
dirty=$(awk '$1 == "heartbeat" { if (!n++) { b0 = $2; p0 = $4 } b1 = $2; p1 = $4 }
	END { if (b1 > b0) printf "%.1f", (p1 - p0) * 4096 / (b1 - b0) / 1e6 }' "$dir/source.hb")

echo
echo "== result"
sed -n 's/^  \(total time\|downtime\|throughput\|rounds\|pages sent\|zero pages\)/   \1/p' \
	"$dir/migrate.txt"
echo "   dirty rate           ${dirty:-?} MB/s (DEMO_RATE $rate)${bulk:+${dirty:+, $(awk -v r="$dirty" -v b="$bulk" 'BEGIN { printf "%.0f%% of the bulk round'"'"'s %s MB/s", 100 * r / b, b }')}}"
echo "   source checksum      ${src_sum:-none} (VM A pid $src_pid, stopped after the final round: state $src_state)"
echo "   destination checksum ${dst_sum:-none} (VM B pid $twin_pid, before SIGCONT)"
echo "   twin heartbeat       source stopped at ${src_last:-?}, twin continued from ${from:-?}, now ${beats:-not advancing}"

fail=()
[ $rc = 0 ] || fail+=("a side of the migration failed")
[ -n "$src_sum" ] && [ "$src_sum" = "$dst_sum" ] || fail+=("the checksums differ")
[ -n "$beats" ] || fail+=("the twin does not run on")
[[ "$from" =~ ^[0-9]+$ ]] && [ "$from" -ge "$src_last" ] || fail+=("the twin did not carry on from the source's state")
[ "$src_state" = T ] || fail+=("the source is not stopped")
echo
if [ ${#fail[@]} = 0 ]; then
	echo "== PASS: the process moved to VM B with identical memory and runs on there"
	exit 0
fi
for f in "${fail[@]}"; do
	echo "== FAIL: $f"
done
exit 1
