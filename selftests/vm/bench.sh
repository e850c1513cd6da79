#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark, run in the loop testbed by `make bench`: the link's own
# limit (perftest's ib_write_bw over rdma_cm, 1 MiB messages) and rdmamig
# migrations on the same rxe device in the same run.  Each result is one
# JSON line in $RDMAMIG_OUT/bench.jsonl; scripts/bench-report.sh turns them
# into a table, bench.json and a chart.  CPU is the whole guest's busy time
# (both ends share it in loop), from /proc/stat.
#
#   BENCH_SIZE_MB (256)  BENCH_ZERO_MB (1024)  BENCH_SIZES ("64 128 256 512")
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
vmm=$top/tools/rdmamig-vmm/rdmamig-vmm
addr=$RDMAMIG_LOCAL_ADDR
out=$RDMAMIG_OUT/bench.jsonl
size=${BENCH_SIZE_MB:-256}
zero=${BENCH_ZERO_MB:-1024}
sizes=${BENCH_SIZES:-64 128 256 512}
ulimit -l unlimited
: > "$out"

busy_ticks()
{
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

# emit NAME JSON-FIELDS...: one result line
emit()
{
	local name=$1
	shift
	echo "{\"name\":\"$name\",$*}" | tee -a "$out"
}

link_limit()
{
	local qps=$1 log t0 t1 bw
	log=$(mktemp)
	timeout 300 ib_write_bw -R -d "$RDMAMIG_IBDEV" -s 1048576 -n 400 \
		-q "$qps" -F >/dev/null 2>&1 &
	# The server may take a while to listen on a loaded host: retry.
	for _ in $(seq 30); do
		sleep 1
		t0=$(busy_ticks)
		timeout 300 ib_write_bw -R -d "$RDMAMIG_IBDEV" -s 1048576 -n 400 \
			-q "$qps" -F "$addr" >"$log" 2>&1 && break
	done
	t1=$(busy_ticks)
	wait
	# The result line: bytes iterations BW-peak BW-average MsgRate (MB/s).
	bw=$(awk '$1 == 1048576 { print $4 }' "$log" | tail -n 1)
	rm -f "$log"
	emit "ib_write_bw_q$qps" "\"mbs\":${bw:-0},\"cpu_ticks\":$((t1 - t0)),\"bytes\":$((400 * 1048576 * qps))"
}

# migrate NAME SIZE_MB ZERO_PCT [source options...]
migrate()
{
	local name=$1 mb=$2 holes=$3 pf t0 t1 src dst
	shift 3
	pf=$(mktemp -u)
	"$vmm" dest --listen "$addr:0" --port-file "$pf" --size "$mb" --blocks 1 \
		--pin-all --json --timeout 300 >"$pf.dst" 2>&1 &
	for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.1; done
	t0=$(busy_ticks)
	src=$("$vmm" source --connect "$addr:$(cat "$pf")" --size "$mb" --blocks 1 \
		--zero-holes "$holes" --rounds 0 --json --timeout 300 "$@" 2>&1 | tail -n 1)
	t1=$(busy_ticks)
	wait
	dst=$(tail -n 1 "$pf.dst")
	rm -f "$pf" "$pf.dst"
	if ! jq -e .ok <<<"$src" >/dev/null 2>&1; then
		echo "# bench: $name failed: $src / $dst" >&2
		emit "$name" "\"failed\":true"
		return
	fi
	emit "$name" "\"size_mb\":$mb,\"zero_pct\":$holes,\"cpu_ticks\":$((t1 - t0)),\"source\":$src"
}

echo "# hz $(getconf CLK_TCK), $(nproc) vCPUs, rxe MTU $(cat /sys/class/net/$RDMAMIG_NETDEV/mtu)"
link_limit 1
migrate pin_all "$size" 0 --pin-all
migrate dynamic "$size" 0
link_limit 2
migrate zero90 "$zero" 90
migrate random_big "$zero" 0 --pin-all
for s in $sizes; do
	migrate "size_$s" "$s" 0 --pin-all
done
link_limit 1
