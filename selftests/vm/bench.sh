#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark, run in VM A of the loop or pair testbed by `make bench`:
# the link's own limit and rdmamig migrations on the same rxe device in
# the same run.  Each result is one JSON line in $RDMAMIG_OUT/bench.jsonl;
# scripts/bench-report.sh turns them into a table, bench.json and a chart.
#
#   link limit    perftest's ib_write_bw over rdma_cm, 1 MiB messages, with
#                 1, 2 and 4 QPs (the same bytes each); iperf3, a TCP stream
#                 for reference (pair: over the virtio link; loop: the
#                 kernel routes a local address over lo, as rxe loops its
#                 own traffic back inside the driver)
#   bulk          the example VMM (tools/rdmamig-vmm), one block, one round:
#                 pin-all and dynamic, sizes 64 MiB - 2 GiB (with the
#                 module's default data channels), and pin-all over 1, 2
#                 and 4 channels beside ib_write_bw -q 1, 2, 4
#   zero90        the same, BENCH_ZERO_MB (1 GiB) with 90% zero pages, to a
#                 fresh destination (RDMAMIG_BLOCK_FRESH: none of them is
#                 sent), in untouched 2 MiB regions (--zero-layout regions:
#                 never written, as a guest leaves memory it never used);
#                 zero90_sparse the same with sparse registration;
#                 zero90_holes the worst case, reported beside it: runs of
#                 1 to 15 zero pages written as zeros amid random ones
#                 (--zero-layout holes, the VMM's default); zero90 and
#                 zero90_holes run BENCH_ZERO_RUNS times (3), the report
#                 takes the median
#   pull          the same as pin_all, the destination reading (--pull),
#                 beside ib_read_bw (read_1)
#   post-copy     postcopy_0, postcopy_1: the example VMM's source rewrites
#                 its whole memory every round (--redirty 100, faster than
#                 any link) and switches to post-copy after 0 or 1 rounds;
#                 precopy_final the same workload ended by pre-copy (its
#                 final round moves the whole memory, guest stopped);
#                 lat_read, ib_read_lat of 4 KiB: what a fault's READ costs
#                 the link itself
#   dirty25/50    rdmamigctl migrate/incoming (--pin-all, --auto-converge) of an
#                 rdmamig-workload that keeps writing random pages at 25% and
#                 50% of the ib_write_bw figure measured first in this run;
#                 per-round pages and times (migrate -j round_stats) and the
#                 ends of the rounds as `rdmamigctl -j monitor` saw them
#   mc_100/50/25  checkpointing: rdmamigctl protect of a BENCH_MC_MB (256)
#                 MiB rdmamig-workload writing BENCH_MC_RATE (5) MB/s into a
#                 standby, BENCH_MC_S (10) s of epochs every 100, 50 or 25
#                 ms: each epoch's pause and time to acknowledgement, and
#                 the workload's pages written per second while protected
#                 against the same workload's before protect began
#
# CPU is busy time from /proc/stat (user+nice+system+irq+softirq): in loop
# the whole guest's (both ends share it), in pair each VM's.  Kernel
# memory is the peak, during the case, of what /proc/meminfo shows the
# kernel holding (MemTotal - MemFree - AnonPages - Cached - Buffers -
# SReclaimable - PageTables: slab, vmalloc, raw pages, stacks) over its
# value before the case; in loop both ends together, in pair each VM.
#
# Authentication: a random secret in the share both VMs see, named by
# RDMAMIG_SECRET_FILE for every tool started here and on the peer.
#
#   BENCH_CASES         the cases, in order (default per topology, below)
#   BENCH_SIZE_MB (256) BENCH_ZERO_MB (1024: the zero90 cases)
#   BENCH_ZERO_RUNS (3: runs of zero90 and zero90_holes)  BENCH_SIZES
#   ("64 128 256 512 1024 2048")  BENCH_BW_ITERS (400: 1 MiB writes per QP
#   and ib_write_bw run)
#   BENCH_IPERF_S (10)  BENCH_DIRTY_MB (256)  BENCH_DOWNTIME_MS (300)
#   BENCH_PC_RUNS (3: runs of each post-copy case; TCG's figures vary by
#   half from run to run, the report gives each)  BENCH_PC_DEST_OPTS
#   (more rdmamig-vmm dest options for the post-copy cases, to compare)
#   BENCH_AUTO_CONVERGE (1; empty: dirty cases without --auto-converge)
#   BENCH_MC_MB (256)  BENCH_MC_RATE (5)  BENCH_MC_S (10)
#   BENCH_LAT_ITERS (2000: ib_read_lat)  BENCH_PC_GUEST_WRITES (512: pages
#   the post-copy destination's guest thread touches)
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
self=$top/selftests/vm/bench.sh
vmm=$top/tools/rdmamig-vmm/rdmamig-vmm
ctl=$top/tools/rdmamigctl/rdmamigctl
workload=$top/tools/rdmamig-workload/rdmamig-workload

# ---- Kernel memory -----------------------------------------------------------

# kmem_now: kB the kernel holds (not user pages, page cache or page
# tables), then kB of unreclaimable slab and of vmalloc, in kmem_k,
# kmem_slab and kmem_vmalloc.  Shell builtins only: a fork per sample
# would show in the figures.
kmem_now()
{
	local k v total=0 free=0 other=0
	while read -r k v _; do
		case $k in
		MemTotal:) total=$v ;;
		MemFree:) free=$v ;;
		AnonPages: | Cached: | Buffers: | SReclaimable: | PageTables:) other=$((other + v)) ;;
		SUnreclaim:) kmem_slab=$v ;;
		VmallocUsed:) kmem_vmalloc=$v ;;
		esac
	done </proc/meminfo
	kmem_k=$((total - free - other))
}

# --kmem-sample FILE: sample every 0.2 s until FILE.stop exists, then
# write "BASE PEAK" (kB) of kmem_k, kmem_slab and kmem_vmalloc (six
# numbers) to FILE.  Runs here or on the peer.
if [ "${1:-}" = --kmem-sample ]; then
	file=$2
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	exec {nap}<>"$fifo"
	rm -f "$fifo"
	kmem_now
	b0=$kmem_k b1=$kmem_slab b2=$kmem_vmalloc
	p0=$b0 p1=$b1 p2=$b2
	: >"$file.started"
	while :; do
		kmem_now
		((kmem_k > p0)) && p0=$kmem_k
		((kmem_slab > p1)) && p1=$kmem_slab
		((kmem_vmalloc > p2)) && p2=$kmem_vmalloc
		[ -e "$file.stop" ] && break
		read -r -t 0.2 -u "$nap" _
	done
	echo "$b0 $p0 $b1 $p1 $b2 $p2" >"$file.tmp"
	mv -f "$file.tmp" "$file"
	exit 0
fi

topo=${RDMAMIG_TOPOLOGY:-loop}
addr=$RDMAMIG_LOCAL_ADDR
out=$RDMAMIG_OUT/bench.jsonl
dir=$RDMAMIG_OUT/bench		# both VMs see it
size=${BENCH_SIZE_MB:-256}
zero=${BENCH_ZERO_MB:-1024}
zero_runs=${BENCH_ZERO_RUNS:-3}
pc_runs=${BENCH_PC_RUNS:-3}
sizes=${BENCH_SIZES:-64 128 256 512 1024 2048}
dirty_mb=${BENCH_DIRTY_MB:-256}
downtime=${BENCH_DOWNTIME_MS:-300}
auto_converge=${BENCH_AUTO_CONVERGE-1}	# empty: the dirty cases without it
iperf_s=${BENCH_IPERF_S:-10}
bw_iters=${BENCH_BW_ITERS:-400}
lat_iters=${BENCH_LAT_ITERS:-2000}
pc_guest_writes=${BENCH_PC_GUEST_WRITES:-512}
mc_mb=${BENCH_MC_MB:-256}
mc_rate=${BENCH_MC_RATE:-5}
mc_s=${BENCH_MC_S:-10}
dest_opts=
if [ "$topo" = pair ]; then
	[ -n "${RDMAMIG_PEER:-}" ] || { echo "bench: pair without \$RDMAMIG_PEER" >&2; exit 2; }
	dest=$RDMAMIG_PEER_ADDR
	cases=${BENCH_CASES:-link_1 read_1 iperf3 lat_read pin_all pull precopy_final postcopy_0 postcopy_1 dirty_25 dirty_50 dirty_200 mc_100 mc_50 mc_25 link_2 link_4 link_1}
else
	dest=$addr
	cases=${BENCH_CASES:-link_1 read_1 iperf3 lat_read pin_all pull precopy_final postcopy_0 postcopy_1 dynamic dynamic_sparse dirty_25 dirty_50 mc_100 mc_50 mc_25 link_2 chan_1 chan_2 chan_4 link_4 zero90 zero90_holes zero90_sparse sizes link_1}
fi
ulimit -l unlimited
rm -rf "$dir"
mkdir -p "$dir"
: >"$out"

head -c 32 /dev/urandom >"$dir/secret"
chmod 600 "$dir/secret"
export RDMAMIG_SECRET_FILE=$dir/secret

# ---- Running things on the destination side -----------------------------------

# Loop: here.  Pair: on VM B, whose environment is its own: the secret is
# passed on explicitly.
declare -A bg=()

on_dest()
{
	if [ "$topo" = pair ]; then
		"$RDMAMIG_PEER" env RDMAMIG_SECRET_FILE="$RDMAMIG_SECRET_FILE" "$@"
	else
		"$@"
	fi
}

# dest_bg NAME CMD...: start CMD on the destination side.
dest_bg()
{
	local name=$1
	shift
	if [ "$topo" = pair ]; then
		bg[$name]=$("$RDMAMIG_PEER" --bg env RDMAMIG_SECRET_FILE="$RDMAMIG_SECRET_FILE" "$@")
	else
		"$@" >"$dir/$name.bg.out" 2>"$dir/$name.bg.err" &
		bg[$name]=$!
	fi
}

# dest_wait NAME: its status; its stdout in $dir/NAME.bg.out, its stderr
# in $dir/NAME.bg.err.  Not in a subshell: wait needs the parent.
dest_wait()
{
	local name=$1 rc
	[ -n "${bg[$name]:-}" ] || return 125
	if [ "$topo" = pair ]; then
		"$RDMAMIG_PEER" --wait "${bg[$name]}" >"$dir/$name.bg.out" 2>"$dir/$name.bg.err"
		rc=$?
	else
		wait "${bg[$name]}"
		rc=$?
	fi
	unset "bg[$name]"
	return $rc
}

busy_ticks()
{
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

dest_ticks()
{
	if [ "$topo" = pair ]; then
		# shellcheck disable=SC2016 # awk's, on the peer
		"$RDMAMIG_PEER" awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
	else
		echo 0
	fi
}

# until_ok SECONDS CMD...: poll CMD every 0.1 s.
until_ok()
{
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# CPU and kernel memory of a case, on both sides:
#   measure_start NAME ... measure_stop -> $measured (JSON fields)
measure_start()
{
	mname=$1
	rm -f "$dir/kmem-$mname".*
	"$self" --kmem-sample "$dir/kmem-$mname.src" &
	ksrc_pid=$!
	if [ "$topo" = pair ]; then
		dest_bg "kmem-$mname" "$self" --kmem-sample "$dir/kmem-$mname.dst"
		until_ok 30 test -e "$dir/kmem-$mname.dst.started"
	fi
	until_ok 30 test -e "$dir/kmem-$mname.src.started"
	dt0=$(dest_ticks)
	t0=$(busy_ticks)
}

measure_stop()
{
	local t1 dt1 ks kd
	t1=$(busy_ticks)
	dt1=$(dest_ticks)
	touch "$dir/kmem-$mname.src.stop" "$dir/kmem-$mname.dst.stop"
	wait "$ksrc_pid"
	ks=$(awk '{ printf "{\"kb\":%d,\"slab_kb\":%d,\"vmalloc_kb\":%d}", $2 - $1, $4 - $3, $6 - $5 }' \
		"$dir/kmem-$mname.src" 2>/dev/null)
	measured="\"cpu_ticks\":$((t1 - t0 + dt1 - dt0))"
	if [ "$topo" = loop ]; then
		measured+=",\"kmem\":${ks:-null}"
	else
		dest_wait "kmem-$mname"
		kd=$(awk '{ printf "{\"kb\":%d,\"slab_kb\":%d,\"vmalloc_kb\":%d}", $2 - $1, $4 - $3, $6 - $5 }' \
			"$dir/kmem-$mname.dst" 2>/dev/null)
		measured+=",\"cpu_src_ticks\":$((t1 - t0)),\"cpu_dst_ticks\":$((dt1 - dt0))"
		measured+=",\"kmem_src\":${ks:-null},\"kmem_dst\":${kd:-null}"
	fi
}

# emit NAME JSON-FIELDS...: one result line
emit()
{
	local name=$1
	shift
	echo "{\"name\":\"$name\",\"topology\":\"$topo\",$*}" | tee -a "$out"
}

# ---- The cases -----------------------------------------------------------------

link1=''	# MB/s of the first ib_write_bw run, 1 QP: the dirty rates' base

link_limit()
{
	# 400 iterations per QP.  perftest calibrates its cycle counter
	# against the clock first; on a loaded TCG host that may fail
	# ("Correlation coefficient r^2 < 0.9") and it then reports 0 MB/s:
	# try again, up to 3 times.  wall_mbs is the bytes over the client's
	# run as timed here, connection set-up included.  OP: write
	# (ib_write_bw, the default) or read (ib_read_bw: pull's limit).
	local qps=$1 op=${2:-write} iters=$bw_iters log bw='' attempt ts te wall tool name
	tool=ib_${op}_bw
	name=${tool}_q$qps
	log=$(mktemp)
	for attempt in 1 2 3; do
		dest_bg "$tool" timeout 900 "$tool" -R -d "$RDMAMIG_IBDEV" -s 1048576 \
			-n "$iters" -q "$qps" -F
		measure_start "$name"
		# The server may take a while to listen on a loaded host: retry.
		for _ in $(seq 30); do
			sleep 1
			ts=$(date +%s.%N)
			timeout 900 "$tool" -R -d "$RDMAMIG_IBDEV" -s 1048576 -n "$iters" \
				-q "$qps" -F "$dest" >"$log" 2>&1 && break
		done
		te=$(date +%s.%N)
		measure_stop
		dest_wait "$tool"
		# The result line: bytes iterations BW-peak BW-average MsgRate (MB/s).
		bw=$(awk '$1 == 1048576 { print $4 }' "$log" | tail -n 1)
		cp -f "$log" "$dir/$name.$(date +%s).txt"
		awk -v b="${bw:-0}" 'BEGIN { exit !(b > 0) }' && break
		echo "# bench: $tool -q $qps reported ${bw:-nothing} MB/s: $(grep -m 1 -i 'correlation' "$log")" >&2
	done
	rm -f "$log"
	wall=$(awk -v s="$ts" -v e="$te" -v b=$((iters * qps * 1048576)) 'BEGIN { printf "%.2f", b / (e - s) / 1e6 }')
	[ "$op" = write ] && [ "$qps" = 1 ] && [ -z "$link1" ] &&
		awk -v b="${bw:-0}" 'BEGIN { exit !(b > 0) }' && link1=$bw
	emit "$name" "\"qps\":$qps,\"mbs\":${bw:-0},\"wall_mbs\":$wall,\"attempts\":$attempt,$measured,\"bytes\":$((iters * qps * 1048576))"
}

# read_latency: perftest's ib_read_lat of 4 KiB, the link's own time for
# what a post-copy fault reads (one page); the typical (median) and 99th
# percentile in microseconds.
read_latency()
{
	local log lat='' attempt
	log=$dir/ib_read_lat.txt
	for attempt in 1 2 3; do
		dest_bg ib_read_lat timeout 300 ib_read_lat -R -d "$RDMAMIG_IBDEV" -s 4096 -n "$lat_iters" -F
		for _ in $(seq 30); do
			sleep 1
			timeout 300 ib_read_lat -R -d "$RDMAMIG_IBDEV" -s 4096 -n "$lat_iters" -F \
				"$dest" >"$log" 2>&1 && break
		done
		dest_wait ib_read_lat
		# bytes iterations t_min t_max t_typical t_avg t_stdev p99 p99.9
		lat=$(awk '$1 == 4096 && NF >= 9 { printf "\"min_us\":%s,\"median_us\":%s,\"avg_us\":%s,\"p99_us\":%s,\"p999_us\":%s,\"max_us\":%s", $3, $5, $6, $8, $9, $4 }' "$log")
		[ -n "$lat" ] && break
		echo "# bench: ib_read_lat gave nothing: $(grep -m 1 -i 'correlation\|error' "$log")" >&2
	done
	emit ib_read_lat "\"bytes\":4096,\"iters\":$lat_iters,\"attempts\":$attempt,${lat:-\"failed\":true}"
}

iperf()
{
	local log res
	log=$dir/iperf3.json
	dest_bg iperf3 timeout 120 iperf3 -s -1
	measure_start iperf3
	for _ in $(seq 30); do
		sleep 1
		timeout 120 iperf3 -c "$dest" -t "$iperf_s" -J >"$log" 2>&1 && break
	done
	measure_stop
	dest_wait iperf3
	res=$(jq -c '{mbs: (.end.sum_received.bits_per_second / 8 / 1e6),
		bytes: .end.sum_received.bytes, retransmits: .end.sum_sent.retransmits,
		mss: .start.tcp_mss_default}' "$log" 2>/dev/null)
	if [ -z "$res" ]; then
		echo "# bench: iperf3 failed: $(head -c 500 "$log")" >&2
		emit iperf3 "\"failed\":true"
		return
	fi
	emit iperf3 "\"iperf3\":$res,$measured,\"mbs\":$(jq .mbs <<<"$res"),\"bytes\":$(jq .bytes <<<"$res")"
}

# migrate NAME SIZE_MB ZERO_PCT [source options...]: the example VMM
migrate()
{
	local name=$1 mb=$2 holes=$3 pf src dst
	shift 3
	pf=$dir/$name.port
	rm -f "$pf"
	# The destination allows pin-all and every channel count: the
	# source's options (or the module's defaults) decide.
	dest_bg vmm "$vmm" dest --listen "$dest:0" --port-file "$pf" --size "$mb" --blocks 1 \
		--pin-all --channels 8 --json --timeout 300 ${dest_opts:+$dest_opts}
	until_ok 60 test -s "$pf"
	measure_start "$name"
	src=$("$vmm" source --connect "$dest:$(cat "$pf")" --size "$mb" --blocks 1 \
		--zero-holes "$holes" --rounds 0 --json --timeout 300 "$@" 2>&1 | tail -n 1)
	measure_stop
	dest_wait vmm
	dst=$(tail -n 1 "$dir/vmm.bg.out")
	if ! jq -e .ok <<<"$src" >/dev/null 2>&1; then
		echo "# bench: $name failed: $src / $dst" >&2
		emit "$name" "\"failed\":true"
		return
	fi
	jq -e .ok <<<"$dst" >/dev/null 2>&1 || dst=null
	emit "$name" "\"size_mb\":$mb,\"zero_pct\":$holes,$measured,\"source\":$src,\"dest\":$dst"
}

# postcopy NAME N: the source rewrites all its memory at every round
# (--redirty 100: faster than any link), so pre-copy never converges;
# after N rounds (0: none) it switches to post-copy, and the destination's
# guest thread touches pages while the rest is swept.  precopy_final is
# the pre-copy answer to the same workload: the whole memory in the final
# round, with the guest stopped.
postcopy()
{
	# The destination writes each placing's time (/mnt/out is shared by
	# both VMs and kept on the host): bench-report.sh's post-copy chart.
	dest_opts="--postcopy --guest-writes $pc_guest_writes --timeline $RDMAMIG_OUT/$1.timeline ${BENCH_PC_DEST_OPTS:-}" \
		migrate "$1" "$size" 0 --postcopy="$2" --redirty 100
}

# sparse CASE: CASE with sparse registration (module parameter sparse=1
# on both ends), for comparison.
sparse()
{
	local p=/sys/module/rdmamig/parameters/sparse
	echo 1 > "$p"
	on_dest sh -c "echo 1 > $p"
	case $1 in
	dynamic) migrate dynamic_sparse "$size" 0 ;;
	zero90) migrate zero90_sparse "$zero" 90 --zero-layout regions ;;
	*) echo "# bench: no sparse variant of $1" >&2 ;;
	esac
	echo 0 > "$p"
	on_dest sh -c "echo 0 > $p"
}

# workloads NAME MB RATE: rdmamig-workload here, writing RATE MB/s to MB
# MiB (src_pid; its heartbeats in NAME.src.hb), and its twin on the
# destination, stopped (twin_pid), for rdmamigctl to move between them.
workloads()
{
	local name=$1 mb=$2 rate=$3
	"$workload" --size "$mb" --rate "$rate" --seed 7 --pid-file "$dir/$name.src.pid" \
		--heartbeat "$dir/$name.src.hb" >"$dir/$name.src.out" 2>&1 &
	src_pid=$!
	until_ok 300 grep -qs heartbeat "$dir/$name.src.hb" ||
		{ echo "# bench: $name: the workload did not start" >&2; }
	dest_bg twin "$workload" --twin --size "$mb" --rate "$rate" \
		--pid-file "$dir/$name.twin.pid" --heartbeat "$dir/$name.twin.hb"
	until_ok 60 test -s "$dir/$name.twin.pid"
	twin_pid=$(<"$dir/$name.twin.pid")
	on_dest timeout 30 bash -c \
		"until grep -q '^State:.*T' /proc/$twin_pid/status; do sleep 0.1; done"
}

# workloads_stop: both killed and reaped.
workloads_stop()
{
	kill -KILL "$src_pid" 2>/dev/null
	wait "$src_pid" 2>/dev/null
	on_dest kill -KILL "$twin_pid" 2>/dev/null
	{ dest_wait twin; } 2>/dev/null
}

# dirty NAME PCT: a live migration of a workload that writes random pages
# at PCT% of the link limit measured first in this run.
dirty()
{
	local name=$1 pct=$2 rate src_pid twin_pid port mon_pid rc=0 dirty_mbs
	if [ -z "$link1" ]; then
		echo "# bench: $name needs the link limit first" >&2
		emit "$name" "\"failed\":true"
		return
	fi
	rate=$(awk -v l="$link1" -v p="$pct" 'BEGIN { printf "%.2f", l * p / 100 }')
	rm -f "$dir/$name".*
	workloads "$name" "$dirty_mb" "$rate"
	dest_bg incoming "$ctl" -j incoming --pid "$twin_pid" --checksum --pin-all \
		--timeout 300 --port-file "$dir/$name.port" "rdma:$dest:0"
	until_ok 60 test -s "$dir/$name.port"
	port=$(<"$dir/$name.port")
	# The source's events, with their times: the ends of the rounds.
	"$ctl" -j monitor all >"$dir/$name.monitor" 2>&1 &
	mon_pid=$!
	sleep 0.5
	measure_start "$name"
	"$ctl" -j migrate --pid "$src_pid" --checksum --pin-all --downtime-limit "$downtime" \
		${auto_converge:+--auto-converge} "rdma:$dest:$port" >"$dir/$name.migrate" 2>"$dir/$name.migrate.err" || rc=$?
	measure_stop
	dest_wait incoming || { [ "$rc" = 0 ] && rc=1; }
	cp "$dir/incoming.bg.out" "$dir/$name.incoming"
	sleep 0.3
	kill "$mon_pid" 2>/dev/null
	wait "$mon_pid" 2>/dev/null
	workloads_stop
	# What the workload really wrote, from its heartbeats: MB/s.
	dirty_mbs=$(awk '$1 == "heartbeat" { if (!n++) { b0 = $2; p0 = $4 } b1 = $2; p1 = $4 }
		END { if (b1 > b0) printf "%.2f", (p1 - p0) * 4096 / (b1 - b0) / 1e6; else print "null" }' \
		"$dir/$name.src.hb")
	if ! jq -e . "$dir/$name.migrate" >/dev/null 2>&1; then
		echo "# bench: $name failed (rc $rc): $(head -c 500 "$dir/$name.migrate.err")" >&2
		emit "$name" "\"failed\":true,\"pct\":$pct"
		return
	fi
	jq -e . "$dir/$name.incoming" >/dev/null 2>&1 || echo null >"$dir/$name.incoming"
	emit "$name" "$(jq -c -n --argjson pct "$pct" --argjson rate "$rate" \
		--argjson link "$link1" --argjson dirty "$dirty_mbs" --argjson size "$dirty_mb" \
		--argjson rc "$rc" --argjson limit "$downtime" \
		--slurpfile mig "$dir/$name.migrate" --slurpfile inc "$dir/$name.incoming" \
		--rawfile mon "$dir/$name.monitor" '{
			pct: $pct, rate_mbs: $rate, link_mbs: $link, dirty_mbs: $dirty,
			size_mb: $size, exit: $rc, downtime_limit_ms: $limit,
			checksum_ok: ($mig[0].checksum != null and
				      $mig[0].checksum == $inc[0].checksum),
			migrate: $mig[0], incoming: $inc[0],
			monitor: [$mon | split("\n")[] | select(startswith("{")) |
				  fromjson? | select(.role == "source")]
		}' | sed 's/^{//; s/}$//'),$measured"
}

# pps HBFILE FIRST LAST: pages the workload wrote per second between its
# heartbeats FIRST and LAST (their counts), from its heartbeat file.
pps()
{
	awk -v a="$2" -v b="$3" '$1 == "heartbeat" && $2 == a { p0 = $4 }
		$1 == "heartbeat" && $2 == b { p1 = $4 }
		END { if (b > a && p1 != "") printf "%.1f", (p1 - p0) / (b - a); else print "null" }' "$1"
}

hb_now()
{
	awk '$1 == "heartbeat" { n = $2 } END { print n + 0 }' "$1"
}

# mc NAME DELAY: rdmamigctl protect, an epoch every DELAY ms, of a workload
# that first runs unprotected for as long as the epochs will last.
mc()
{
	local name=$1 delay=$2 epochs src_pid twin_pid port rc=0 hb0 hb1 hb2 base prot
	epochs=$((mc_s * 1000 / delay))
	rm -f "$dir/$name".*
	workloads "$name" "$mc_mb" "$mc_rate"
	hb0=$(hb_now "$dir/$name.src.hb")
	dest_bg standby "$ctl" -j standby --pid "$twin_pid" --timeout 300 \
		--port-file "$dir/$name.port" "rdma:$dest:0"
	until_ok 60 test -s "$dir/$name.port"
	port=$(<"$dir/$name.port")
	# Unprotected, for as long as the epochs will take.
	sleep "$mc_s"
	hb1=$(hb_now "$dir/$name.src.hb")
	measure_start "$name"
	"$ctl" -j protect --pid "$src_pid" --mc-delay "$delay" --epochs "$epochs" \
		"rdma:$dest:$port" >"$dir/$name.protect" 2>"$dir/$name.protect.err" || rc=$?
	measure_stop
	hb2=$(hb_now "$dir/$name.src.hb")
	dest_wait standby || { [ "$rc" = 0 ] && rc=1; }
	cp "$dir/standby.bg.out" "$dir/$name.standby"
	workloads_stop
	base=$(pps "$dir/$name.src.hb" "$hb0" "$hb1")
	# The epochs' seconds: the last mc_s heartbeats of the protection.
	prot=$(pps "$dir/$name.src.hb" $((hb2 > hb1 + mc_s ? hb2 - mc_s : hb1)) "$hb2")
	if [ "$rc" != 0 ] || ! jq -e '.epochs | length > 0' "$dir/$name.protect" >/dev/null 2>&1; then
		echo "# bench: $name failed (rc $rc): $(head -c 500 "$dir/$name.protect.err")" >&2
		emit "$name" "\"failed\":true,\"mc_delay_ms\":$delay"
		return
	fi
	jq -e . "$dir/$name.standby" >/dev/null 2>&1 || echo null >"$dir/$name.standby"
	emit "$name" "$(jq -c -n --argjson delay "$delay" --argjson rate "$mc_rate" \
		--argjson size "$mc_mb" --argjson rc "$rc" --argjson base "$base" \
		--argjson prot "$prot" --slurpfile p "$dir/$name.protect" \
		--slurpfile s "$dir/$name.standby" '{
			mc_delay_ms: $delay, rate_mbs: $rate, size_mb: $size, exit: $rc,
			unprotected_pps: $base, protected_pps: $prot,
			protect: $p[0], standby: $s[0]
		}' | sed 's/^{//; s/}$//'),$measured"
}

echo "# $topo, hz $(getconf CLK_TCK), $(nproc) vCPUs, rxe MTU $(cat "/sys/class/net/$RDMAMIG_NETDEV/mtu"), $(awk '/^MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB"
for c in $cases; do
	echo "# $(date +%T) $c" >&2
	case $c in
	link_*) link_limit "${c#link_}" ;;
	read_*) link_limit "${c#read_}" read ;;
	lat_read) read_latency ;;
	pull) migrate pull "$size" 0 --pin-all --pull ;;
	postcopy_*) for _ in $(seq "$pc_runs"); do postcopy "$c" "${c#postcopy_}"; done ;;
	precopy_final) migrate precopy_final "$size" 0 --pin-all --rounds 2 --redirty 100 ;;
	iperf3) iperf ;;
	pin_all) migrate pin_all "$size" 0 --pin-all ;;
	dynamic) migrate dynamic "$size" 0 ;;
	chan_*) migrate "$c" "$size" 0 --pin-all --channels "${c#chan_}" ;;
	zero90) for _ in $(seq "$zero_runs"); do migrate zero90 "$zero" 90 --zero-layout regions; done ;;
	zero90_holes) for _ in $(seq "$zero_runs"); do migrate zero90_holes "$zero" 90; done ;;
	*_sparse) sparse "${c%_sparse}" ;;
	sizes) for s in $sizes; do migrate "size_$s" "$s" 0 --pin-all; done ;;
	dirty_*) dirty "$c" "${c#dirty_}" ;;
	mc_*) mc "$c" "${c#mc_}" ;;
	*) echo "# bench: unknown case $c" >&2 ;;
	esac
done
echo "# $(date +%T) done" >&2
