#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-report.sh OUTDIR JSONL...: the figures of selftests/vm/bench.sh (one
# JSONL file per topology) as tables (stdout and OUTDIR/bench.txt),
# OUTDIR/bench.json (every figure), and a chart OUTDIR/bench.png (gnuplot):
# throughput of each mode beside the link limit, and the bytes of each
# round against time for the dirtying workloads.  Every figure is also
# given as a ratio to the link limit measured in the same run and
# topology: ib_write_bw, 1 QP, the mean of its runs before and after the
# migrations.  CPU figures assume USER_HZ 100 (bench.sh prints it).
set -euo pipefail

outdir=$1
shift
mkdir -p "$outdir"
files=()
for f in "$@"; do
	if [ -s "$f" ]; then
		files+=("$f")
	else
		echo "bench-report: no results in $f, left out" >&2
	fi
done
[ ${#files[@]} -gt 0 ] || { echo "bench-report: no results" >&2; exit 1; }

cat "${files[@]}" | jq -s '
  def gib: . / 1073741824;
  def r2: . * 100 | round / 100;
  def secs($t): ($t // 0) / 100;
  def round_end_times($mon; $n):
    [$mon[] | select(.event == "round") | .time |
      capture("^(?<s>[^.]+)\\.(?<ms>[0-9]+)") | (.s + "Z" | fromdateiso8601) + (.ms | tonumber) / 1000] as $ends |
    ([$mon[] | .time | capture("^(?<s>[^.]+)\\.(?<ms>[0-9]+)") |
      (.s + "Z" | fromdateiso8601) + (.ms | tonumber) / 1000] | min) as $t0 |
    if ($ends | length) == $n then [$ends[] | . - $t0] else null end;
  group_by(.topology) | map(
    . as $all |
    ([$all[] | select(.name == "ib_write_bw_q1" and .mbs > 0) | .mbs]) as $l1 |
    ($l1 | add / length) as $link |
    # 0: perftest failed to calibrate its clock; none: the case did not end
    def q($n): [$all[] | select(.name == "ib_write_bw_q\($n)") | .mbs] | first | if . == 0 then null else . end;
    def qwall($n): [$all[] | select(.name == "ib_write_bw_q\($n)") | .wall_mbs // empty] | first;
    def cpu_sides: if .cpu_src_ticks then
        {cpu_src_s_per_gib: (secs(.cpu_src_ticks) / ((.size_mb // (.bytes / 1048576)) / 1024)),
         cpu_dst_s_per_gib: (secs(.cpu_dst_ticks) / ((.size_mb // (.bytes / 1048576)) / 1024))}
      else {} end;
    {
      key: $all[0].topology,
      value: {
        link_mbs: $link,
        link_runs_mbs: $l1,
        qps: [1, 2, 4] | map(. as $n | {qps: $n, mbs: q($n), ratio: (if q($n) then q($n) / $link else null end),
                                       wall_mbs: qwall($n)}),
        link_wall_mbs: ([$all[] | select(.name == "ib_write_bw_q1" and .mbs > 0 and .wall_mbs) | .wall_mbs] |
          if length > 0 then add / length else null end),
        iperf3: ([$all[] | select(.name == "iperf3" and (.failed | not)) |
          {mbs, ratio: (.mbs / $link), retransmits: .iperf3.retransmits,
           cpu_s_per_gib: (secs(.cpu_ticks) / (.bytes | gib))}] | first),
        perftest_cpu: ([$all[] | select(.name == "ib_write_bw_q1") |
          {cpu_s_per_gib: (secs(.cpu_ticks) / (.bytes | gib))} +
          (if .cpu_src_ticks then {cpu_src_s_per_gib: (secs(.cpu_src_ticks) / (.bytes | gib)),
                                   cpu_dst_s_per_gib: (secs(.cpu_dst_ticks) / (.bytes | gib))} else {} end)] |
          {cpu_s_per_gib: (map(.cpu_s_per_gib) | add / length),
           cpu_src_s_per_gib: (map(.cpu_src_s_per_gib // empty) | if length > 0 then add / length else null end),
           cpu_dst_s_per_gib: (map(.cpu_dst_s_per_gib // empty) | if length > 0 then add / length else null end)}),
        failed: [$all[] | select(.failed) | .name],
        # Pull and post-copy (bench.sh: read_1, lat_read, pull, precopy_final, postcopy_N)
        read_link_mbs: ([$all[] | select(.name == "ib_read_bw_q1" and .mbs > 0) | .mbs] |
          if length > 0 then add / length else null end),
        read_lat: ([$all[] | select(.name == "ib_read_lat" and (.failed | not))] | first),
        postcopy: [$all[] | select(.source and (.name | test("^(pin_all|pull|precopy_final|postcopy_[0-9]+)$"))) | {
            name, size_mb,
            total_s: (.source.total_ms / 1000),
            data_mbs: ((.source.throughput // 0) / 1e6),
            downtime_ms: (if (.source.postcopy_downtime_us // 0) > 0 then .source.postcopy_downtime_us / 1000
                          else .source.downtime_ms end),
            device_state_bytes: .source.device_state_bytes,
            postcopy_s: (if .dest then (.dest.postcopy_ms // 0) / 1000 else null end),
            owed: (.dest.postcopy_owed // 0), faults: (.dest.postcopy_faults // 0),
            fault_pages: (.dest.postcopy_fault_pages // 0), sweep_pages: (.dest.postcopy_sweep_pages // 0),
            twice: (.dest.postcopy_fetched_twice // 0),
            p50_us: (.dest.fault_us_p50 // 0), p99_us: (.dest.fault_us_p99 // 0), max_us: (.dest.fault_us_max // 0)
          }],
        results: [$all[] | select(.source) |
          ((.source.throughput // 0) / 1e6) as $mbs | {
            name, size_mb, zero_pct,
            # zero pages, and those of them not sent (a fresh destination)
            zero_pages: (.source.zero_pages // null),
            zero_skipped: (.source.zero_skipped // null),
            channels: (.source.channels // null),
            data_mbs: $mbs,
            data_ratio: ($mbs / $link),
            total_s: (.source.total_ms / 1000),
            setup_s: (.source.setup_ms / 1000),
            total_ratio: ((.size_mb * 1048576 / 1e6) / (.source.total_ms / 1000) / $link),
            cpu_s_per_gib: (secs(.cpu_ticks) / (.size_mb / 1024)),
            kmem_mib: (.kmem.kb // null | if . then . / 1024 else null end),
            kmem_slab_mib: (.kmem.slab_kb // null | if . then . / 1024 else null end),
            kmem_vmalloc_mib: (.kmem.vmalloc_kb // null | if . then . / 1024 else null end),
            kmem_mib_per_gib: (if .kmem then (.kmem.kb / 1024) / (.size_mb / 1024) else null end),
            kmem_src_mib_per_gib: (if .kmem_src then (.kmem_src.kb / 1024) / (.size_mb / 1024) else null end),
            kmem_dst_mib_per_gib: (if .kmem_dst then (.kmem_dst.kb / 1024) / (.size_mb / 1024) else null end),
            # what the kernel allocators hold: unreclaimable slab + vmalloc
            kalloc_mib_per_gib: (if .kmem then ((.kmem.slab_kb + .kmem.vmalloc_kb) / 1024) / (.size_mb / 1024) else null end),
            kalloc_src_mib_per_gib: (if .kmem_src then ((.kmem_src.slab_kb + .kmem_src.vmalloc_kb) / 1024) / (.size_mb / 1024) else null end),
            kalloc_dst_mib_per_gib: (if .kmem_dst then ((.kmem_dst.slab_kb + .kmem_dst.vmalloc_kb) / 1024) / (.size_mb / 1024) else null end),
            kmem_src: .kmem_src, kmem_dst: .kmem_dst,
            s_per_gib: ((.source.total_ms / 1000) / (.size_mb / 1024)),
            # where the time went: the counters of the module, in s
            time: {scan_s: ((.source.scan_ms // null) | if . then . / 1000 else null end),
                   keys_wait_s: ((.source.keys_wait_ms // null) | if . then . / 1000 else null end),
                   writes_wait_s: ((.source.writes_wait_ms // null) | if . then . / 1000 else null end),
                   register_s: ((.dest.register_ms // null) | if . then . / 1000 else null end),
                   zero_s: ((.dest.zero_ms // null) | if . then . / 1000 else null end)}
          } + cpu_sides ],
        # kernel memory against the size (pin-all sizes, loop: both ends):
        # least squares, MiB = fixed + per_gib * GiB
        kmem_fit: ([$all[] | select((.name | startswith("size_")) and .kmem) |
            {x: (.size_mb / 1024), y: (.kmem.kb / 1024), s: (.kmem.slab_kb / 1024), v: (.kmem.vmalloc_kb / 1024)}] |
          if length >= 2 then
            length as $n | (map(.x) | add / $n) as $mx |
            (map((.x - $mx) * (.x - $mx)) | add) as $sxx |
            def fit(f): (map(f) | add / $n) as $my |
              (map((.x - $mx) * (f - $my)) | add / $sxx) as $b |
              {per_gib_mib: $b, fixed_mib: ($my - $b * $mx)};
            {points: $n, kernel: fit(.y), slab: fit(.s), vmalloc: fit(.v)}
          else null end),
        # Checkpointing (bench.sh: mc_DELAY), each against the targets
        mc: [$all[] | select(.protect) | .protect as $p |
          def pct($xs; $q): ($xs | sort) as $s | if ($s | length) == 0 then null
            else $s[(($s | length) * $q / 100 | ceil) - 1] end;
          ([$p.epochs[].pause_us]) as $pauses | ([$p.epochs[] | .ack_us // empty]) as $acks |
          {
            name, mc_delay_ms, size_mb, rate_mbs, exit,
            epochs: ($p.epochs | length), acked: $p.mc_acked,
            epochs_per_s: (if $p.span_us > 0 then (($p.epochs | length) - 1) / ($p.span_us / 1e6) else null end),
            pause_ms_p50: (pct($pauses; 50) / 1000), pause_ms_p99: (pct($pauses; 99) / 1000),
            ack_ms_p50: (if ($acks | length) > 0 then pct($acks; 50) / 1000 else null end),
            ack_ms_p99: (if ($acks | length) > 0 then pct($acks; 99) / 1000 else null end),
            pages_per_epoch: (if ($p.epochs | length) > 0 then ($p.mc_pages / ($p.epochs | length)) else null end),
            unprotected_pps, protected_pps,
            slowdown: (if .unprotected_pps and .protected_pps and .unprotected_pps > 0
                       then 1 - .protected_pps / .unprotected_pps else null end),
            per_epoch: [$p.epochs[] | {epoch, pause_ms: (.pause_us / 1000), ack_ms: ((.ack_us // null) | if . then . / 1000 else null end)}]
          }],
        dirty: [$all[] | select(.migrate) | . as $d | .migrate as $m |
          ($m.round_stats | length) as $n |
          round_end_times($d.monitor; $n) as $ends |
          [$m.round_stats[] |
            {round, pages_dirty, pages, zero_pages, bytes,
             mbs: (.throughput / 1e6), wall_s: (.wall_us / 1e6), pause_s: (.pause_us / 1e6),
             throttle_pct: (.throttle_pct // 0)}] as $rs |
          # the end of each round, s since the session started: from the
          # monitor, or setup + the rounds and pauses before (round_stats)
          (reduce $rs[] as $r ([]; . + [(if length > 0 then last else $m.setup_ms / 1000 end) + $r.pause_s + $r.wall_s])) as $cum |
          {
            name, pct, size_mb,
            rate_mbs, dirty_mbs,
            dirty_ratio: ((.dirty_mbs // 0) / $link),
            bulk_mbs: ($m.throughput / 1e6),
            bulk_ratio: ($m.throughput / 1e6 / $link),
            state: $m.state,
            rounds: $m.rounds,
            max_rounds: $m.max_rounds,
            converged: ($m.converged // (($m.state | ascii_downcase) == "completed" and $m.rounds <= $m.max_rounds)),
            throttle_pct: ($m.throttle_pct // 0),
            rate_ratio: (.rate_mbs / $link),
            total_s: ($m.total_ms / 1000),
            setup_s: ($m.setup_ms / 1000),
            total_ratio: ((.size_mb * 1048576 / 1e6) / ($m.total_ms / 1000) / $link),
            downtime_ms: $m.downtime_ms,
            stopped_ms: $m.stopped_ms,
            downtime_limit_ms: $m.downtime_limit_ms,
            downtime_ratio: ($m.downtime_ms / $m.downtime_limit_ms),
            downtime_ok: ($m.downtime_ms <= 1.5 * $m.downtime_limit_ms),
            checksum_ok,
            pages: $m.pages,
            bytes: $m.bytes,
            times_from: (if $ends then "monitor" else "round_stats" end),
            per_round: [range(0; $n) as $i | $rs[$i] |
              . + {t_end_s: (if $ends then $ends[$i] else $cum[$i] end)} |
              . + {t_start_s: (.t_end_s - .wall_s)}]
          }]
      }
    }) | from_entries' > "$outdir/bench.json"

f1() { awk -v v="$1" 'BEGIN { if (v == "null" || v == "") print "-"; else printf "%.1f", v }'; }

# zero_ratio .TOPOLOGY CASE: how many times faster than size_1024 CASE
# migrated, from the median of CASE's runs (the bench runs the zero cases
# several times: each takes a second or two, where one busy moment of the
# host shows), then the runs' totals; nothing without both cases
zero_ratio()
{
	jq -r --arg c "$2" "$1"' | ([.results[] | select(.name=="size_1024") | .total_s] | first) as $r |
		([.results[] | select(.name==$c) | .total_s] | sort) as $z |
		if $r and ($z | length) > 0 then
			"\($r / $z[($z | length) / 2 | floor] * 100 | round / 100)x (median of \($z | length) run\(if ($z | length) > 1 then "s" else "" end): \([$z[] | . * 100 | round / 100 | tostring] | join(", ")) s)"
		else empty end' "$outdir/bench.json"
}

{
for t in $(jq -r 'keys[]' "$outdir/bench.json"); do
	T=".$t"
	echo "== $t topology"
	jq -r "$T"' | "link limit (ib_write_bw, 1 QP, 1 MiB, rdma_cm): \(.link_mbs * 10 | round / 10) MB/s (runs: \(.link_runs_mbs | map(tostring) | join(", ")))"' "$outdir/bench.json"
	jq -r "$T"' | "  QPs:    " + (.qps | map("-q \(.qps) " + (if .mbs then "\(.mbs) MB/s (\(.ratio * 100 | round / 100))" else "- (no figure)" end) +
		(if .wall_mbs then " [wall \(.wall_mbs)]" else "" end)) | join(",  "))' "$outdir/bench.json"
	jq -r "$T"' | if .iperf3 then "  iperf3: TCP \(.iperf3.mbs * 10 | round / 10) MB/s (\(.iperf3.ratio * 100 | round / 100) of the link), CPU \(.iperf3.cpu_s_per_gib * 10 | round / 10) s/GiB" else "  iperf3: -" end' "$outdir/bench.json"
	jq -r "$T"' | .perftest_cpu | "  perftest CPU \(.cpu_s_per_gib * 10 | round / 10) s/GiB (both ends)" + (if .cpu_src_s_per_gib then ", client \(.cpu_src_s_per_gib * 10 | round / 10), server \(.cpu_dst_s_per_gib * 10 | round / 10)" else "" end)' "$outdir/bench.json"
	jq -r "$T"' | if (.failed | length) > 0 then "  FAILED: \(.failed | join(" "))" else empty end' "$outdir/bench.json"
	echo
	printf '%-14s %5s %5s %9s %6s %8s %7s %6s %9s %9s %12s %7s\n' \
		case MiB zero% data-MB/s ratio total-s setup-s ratio CPU-s/GiB src/dst slab+vm/GiB s/GiB
	jq -r "$T"'.results[] | [.name, .size_mb, .zero_pct, (.data_mbs*10|round/10), (.data_ratio*100|round/100),
		(.total_s*100|round/100), (.setup_s*100|round/100), (.total_ratio*100|round/100),
		(.cpu_s_per_gib*10|round/10),
		(if .cpu_src_s_per_gib then "\(.cpu_src_s_per_gib*10|round/10)/\(.cpu_dst_s_per_gib*10|round/10)" else "-" end),
		(if .kalloc_src_mib_per_gib then "\(.kalloc_src_mib_per_gib*10|round/10)/\(.kalloc_dst_mib_per_gib*10|round/10)"
		 elif .kalloc_mib_per_gib then (.kalloc_mib_per_gib*10|round/10) else "-" end),
		(.s_per_gib*100|round/100)] | @tsv' "$outdir/bench.json" |
		awk -F'\t' '{ printf "%-14s %5s %5s %9s %6s %8s %7s %6s %9s %9s %12s %7s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12 }'
	jq -r "$T"' | .kmem_fit // empty | "kernel memory over \(.points) pin-all sizes (least squares, MiB per GiB + fixed MiB): unreclaimable slab \(.slab.per_gib_mib * 10 | round / 10) + \(.slab.fixed_mib * 10 | round / 10), vmalloc \(.vmalloc.per_gib_mib * 10 | round / 10) + \(.vmalloc.fixed_mib * 10 | round / 10); all that meminfo does not show as user or cache \(.kernel.per_gib_mib * 10 | round / 10) + \(.kernel.fixed_mib * 10 | round / 10)"' "$outdir/bench.json"
	zr=$(zero_ratio "$T" zero90)
	[ -z "$zr" ] || echo "1 GiB at 90% zero pages, in untouched 2 MiB regions, migrates ${zr} faster than 1 GiB of random data (size_1024)"
	zw=$(zero_ratio "$T" zero90_sparse)
	[ -z "$zw" ] || echo "  with sparse registration (sparse=1): ${zw}"
	zh=$(zero_ratio "$T" zero90_holes)
	[ -z "$zh" ] || echo "1 GiB at 90% zero pages, in scattered runs of 1-15 pages, migrates ${zh} faster than 1 GiB of random data (size_1024)"
	echo
	# The module's time counters (struct rdmamig_stats *_ms), seconds.
	if [ "$(jq "$T"' | [.results[] | select(.time.scan_s != null)] | length' "$outdir/bench.json")" -gt 0 ]; then
		echo "where the time went (s): source scan, keys wait, writes wait; destination register, zero"
		printf '%-14s %8s %8s %8s %8s %8s %8s %8s
' case total-s setup-s scan keys-wait writes-wait register zero
		jq -r "$T"'.results[] | select(.time.scan_s != null) | [.name, (.total_s*100|round/100),
			(.setup_s*100|round/100), (.time.scan_s*100|round/100), (.time.keys_wait_s*100|round/100),
			(.time.writes_wait_s*100|round/100), ((.time.register_s // 0)*100|round/100),
			((.time.zero_s // 0)*100|round/100)] | @tsv' "$outdir/bench.json" |
			awk -F'\t' '{ printf "%-14s %8s %8s %8s %8s %8s %8s %8s\n", $1,$2,$3,$4,$5,$6,$7,$8 }'
		echo
	fi
	if [ "$(jq "$T.postcopy | length" "$outdir/bench.json")" -gt 1 ]; then
		jq -r "$T"' | "pull and post-copy; RDMA READ link: ib_read_bw \(.read_link_mbs // "-") MB/s" +
			(if .read_lat then ", ib_read_lat 4 KiB median \(.read_lat.median_us) us, p99 \(.read_lat.p99_us) us" else "" end)' "$outdir/bench.json"
		printf '%-14s %8s %9s %11s %10s %7s %6s %11s %11s %15s %5s\n' \
			case total-s data-MB/s downtime-ms postcopy-s owed faults fault-pages sweep-pages p50/p99/max-us twice
		jq -r "$T"'.postcopy[] | [.name, (.total_s*100|round/100), (.data_mbs*10|round/10),
			(.downtime_ms*10|round/10), (if .postcopy_s then (.postcopy_s*100|round/100) else "-" end),
			.owed, .faults, .fault_pages, .sweep_pages, "\(.p50_us)/\(.p99_us)/\(.max_us)", .twice] | @tsv' "$outdir/bench.json" |
			awk -F'\t' '{ printf "%-14s %8s %9s %11s %10s %7s %6s %11s %11s %15s %5s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11 }'
		# The targets of the post-copy issue, each with its measured ratio.
		jq -r "$T"' | . as $v | ([.postcopy[] | select(.name == "pin_all")] | first) as $bulk |
			([.postcopy[] | select(.name == "pull")] | first) as $pull |
			(if $pull and $v.read_link_mbs then "  pull rounds: \($pull.data_mbs*10|round/10) MB/s, \($pull.data_mbs / $v.read_link_mbs * 100 | round / 100) of ib_read_bw" +
			   (if $bulk then " (push, pin_all: \($bulk.data_mbs / $v.link_mbs * 100 | round / 100) of ib_write_bw)" else "" end) else empty end),
			(.postcopy[] | select(.name | startswith("postcopy_")) | . as $p |
			 ($p.device_state_bytes / ($v.link_mbs * 1e6) * 1000) as $ds_ms |
			 "  \($p.name): downtime \($p.downtime_ms*10|round/10) ms, target <= 50 ms + device state \($ds_ms*10|round/10) ms: \(if $p.downtime_ms <= 50 + $ds_ms then "met" else "MISSED" end)",
			 # After N pre-copy rounds of a workload that rewrites it all, the
			 # time to judge is post-copy'"'"'s own: the rounds moved nothing
			 # that stayed (precopy_final is their comparison).
			 (if $p.name == "postcopy_0" then {what: "total", s: $p.total_s}
			  else {what: "after \($p.name | ltrimstr("postcopy_")) pre-copy round(s) (total \($p.total_s*100|round/100) s), post-copy", s: $p.postcopy_s} end) as $j |
			 (if $bulk then "    \($j.what) \($j.s*100|round/100) s = \($j.s / $bulk.total_s * 100 | round / 100)x one bulk round (pin_all \($bulk.total_s*100|round/100) s), target <= 1.2x: \(if $j.s <= 1.2 * $bulk.total_s then "met" else "MISSED" end)" else empty end),
			 (if $v.read_lat and $p.faults > 0 then "    fault p50 \($p.p50_us) us = \($p.p50_us / $v.read_lat.median_us * 10 | round / 10)x ib_read_lat (target <= 3x: \(if $p.p50_us <= 3 * $v.read_lat.median_us then "met" else "MISSED" end)), p99 \($p.p99_us) us = \($p.p99_us / $v.read_lat.p99_us * 10 | round / 10)x (target <= 20x: \(if $p.p99_us <= 20 * $v.read_lat.p99_us then "met" else "MISSED" end))" else empty end)),
			# Several runs of a case (BENCH_PC_RUNS): the medians judged.
			([.postcopy[] | select(.name | startswith("postcopy_"))] | group_by(.name)[] |
			 select(length > 1) | . as $runs | (length / 2 | floor) as $m |
			 ([$runs[] | if .name == "postcopy_0" then .total_s else .postcopy_s end] | sort | .[$m]) as $t | ([$runs[].downtime_ms] | sort | .[$m]) as $d |
			 ([$runs[].p50_us] | sort | .[$m]) as $p50 | ([$runs[].p99_us] | sort | .[$m]) as $p99 |
			 "  \($runs[0].name), median of \($runs | length) runs: downtime \($d*10|round/10) ms" +
			 (if $bulk then ", \(if $runs[0].name == "postcopy_0" then "total" else "post-copy" end) \($t*100|round/100) s = \($t / $bulk.total_s * 100 | round / 100)x bulk (target <= 1.2x: \(if $t <= 1.2 * $bulk.total_s then "met" else "MISSED" end))" else "" end) +
			 (if $v.read_lat and $p50 > 0 then ", fault p50 \($p50 / $v.read_lat.median_us * 10 | round / 10)x (\(if $p50 <= 3 * $v.read_lat.median_us then "met" else "MISSED" end)), p99 \($p99 / $v.read_lat.p99_us * 10 | round / 10)x (\(if $p99 <= 20 * $v.read_lat.p99_us then "met" else "MISSED" end))" else "" end))' "$outdir/bench.json"
		echo
	fi
	if [ "$(jq "$T.mc | length" "$outdir/bench.json")" -gt 0 ]; then
		echo "checkpointing (rdmamigctl protect): epochs, pause, acknowledgement, and the workload's slowdown"
		printf '%-8s %6s %7s %9s %13s %13s %9s %16s\n' \
			case epochs per-s pages/ep pause-ms-p50 pause-ms-p99 ack-ms-p50 slowdown
		jq -r "$T"'.mc[] | [.name, .epochs, (.epochs_per_s // 0 | .*10|round/10),
			(.pages_per_epoch // 0 | round), (.pause_ms_p50*100|round/100), (.pause_ms_p99*100|round/100),
			(if .ack_ms_p50 then (.ack_ms_p50*10|round/10) else "-" end),
			(if .slowdown != null then "\(.slowdown*1000|round/10)%" else "-" end)] | @tsv' "$outdir/bench.json" |
			awk -F'\t' '{ printf "%-8s %6s %7s %9s %13s %13s %9s %16s\n", $1,$2,$3,$4,$5,$6,$7,$8 }'
		# The targets of the checkpointing issue.
		jq -r "$T"'.mc[] | "  \(.name): \(.epochs_per_s // 0 | .*10|round/10) epochs/s (target >= 10: \(if (.epochs_per_s // 0) >= 10 then "met" else "MISSED" end)), median pause \(.pause_ms_p50*100|round/100) ms (target <= 5 ms: \(if .pause_ms_p50 <= 5 then "met" else "MISSED" end)), slowdown \(if .slowdown != null then "\(.slowdown*1000|round/10)%" else "-" end) (target <= 20%: \(if .slowdown != null and .slowdown <= 0.2 then "met" else "MISSED" end))"' "$outdir/bench.json"
		echo
	fi
	if [ "$(jq "$T.dirty | length" "$outdir/bench.json")" -gt 0 ]; then
		printf '%-9s %8s %10s %10s %7s %6s %10s %8s %8s %12s %9s %6s  %s\n' \
			workload rate-r dirty-MB/s "(ratio)" bulk-r rounds converged throttle total-s downtime-ms "(/limit)" sum pages-per-round
		jq -r "$T"'.dirty[] | [.name, "\(.rate_ratio*100|round/100)", "\(.dirty_mbs)", "\(.dirty_ratio*100|round/100)", "\(.bulk_ratio*100|round/100)",
			.rounds, (if .converged then "yes" else "NO" end), "\(.throttle_pct)%", (.total_s*100|round/100),
			"\(.downtime_ms) (\(.downtime_limit_ms))", "\(.downtime_ratio*100|round/100)",
			(if .checksum_ok then "ok" else "DIFF" end),
			(.per_round | map("\(.pages)" + (if .throttle_pct > 0 then "@\(.throttle_pct)%" else "" end)) | join(" "))] | @tsv' "$outdir/bench.json" |
			awk -F'\t' '{ printf "%-9s %8s %10s %10s %7s %6s %10s %8s %8s %12s %9s %6s  %s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13 }'
		echo
		echo "rate-r: the rate the workload was asked for, over the link limit;"
		echo "dirty-MB/s: what it wrote (throttled by --auto-converge: less)"
	fi
done
} | tee "$outdir/bench.txt"

command -v gnuplot >/dev/null || exit 0

# Bars: throughput of each mode, with its ratio to the link limit.
jq -r 'to_entries[] | .key as $t | .value as $v |
  ([{n: "\($t) link (ib_write_bw q1)", mbs: .value.link_mbs, ratio: 1, k: 0}] +
   [.value.qps[] | select(.mbs and .qps > 1) | {n: "\($t) ib_write_bw -q \(.qps)", mbs, ratio, k: 0}] +
   (if .value.iperf3 then [{n: "\($t) iperf3 (TCP\(if $t == "loop" then ", lo" else "" end))", mbs: .value.iperf3.mbs, ratio: .value.iperf3.ratio, k: 1}] else [] end) +
   [.value.results[] | select(.name | test("^(pin_all|dynamic|size_1024|size_2048)$")) |
     {n: "\($t) \(.name)", mbs: .data_mbs, ratio: .data_ratio, k: 2}] +
   [.value.dirty[] | {n: "\($t) \(.name) bulk", mbs: .bulk_mbs, ratio: .bulk_ratio, k: 2}])[] |
  "\"\(.n)\" \(.mbs) \(.ratio * 100 | round / 100) \(.k)"' "$outdir/bench.json" > "$outdir/bars.dat"

# Rounds: one block per workload (a blank line apart): start, end, MB.
: > "$outdir/rounds.dat"
titles=()
while IFS= read -r title; do
	titles+=("$title")
done < <(jq -r 'to_entries[] | .key as $t | .value.dirty[] | "\($t) \(.name) (\(.rounds) rounds, downtime \(.downtime_ms) ms)"' "$outdir/bench.json")
jq -r 'to_entries[] | .value.dirty[] | (.per_round[] | "\(.t_start_s) \(.t_end_s) \(.bytes / 1e6) \(.round)"), "", ""' \
	"$outdir/bench.json" > "$outdir/rounds.dat"

plots=''
for i in "${!titles[@]}"; do
	plots+="${plots:+, }'$outdir/rounds.dat' index $i using 2:3 with linespoints pt 7 title '${titles[$i]}'"
done

gnuplot <<-GP
set terminal pngcairo size 1000,900 noenhanced font ",9"
set output "$outdir/bench.png"
set multiplot layout 2,1
set title "Throughput against the link limit (ib_write_bw, 1 QP), same run; labels: ratio to the link"
set ylabel "MB/s"
set style fill solid 0.6
set boxwidth 0.7
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set xtics rotate by -35 left
set key off
set bmargin 8
set palette defined (0 "#4c72b0", 1 "#8c8c8c", 2 "#dd8452")
unset colorbox
plot "$outdir/bars.dat" using 0:2:4:xtic(1) with boxes lc palette, \
     "" using 0:2:(sprintf("%.2f", \$3)) with labels offset 0,0.7
set title "Dirtying workloads: MB sent per round, at the end of each round"
set xtics norotate
set bmargin
set xlabel "seconds since the session started"
set ylabel "MB in the round (log)"
set logscale y
set yrange [*:*]
set offsets 0, 0, 0, 0
set key top right
${plots:+plot $plots}
unset multiplot
GP
echo "chart: $outdir/bench.png"

# Post-copy over time, from the destination's --timeline files (bench.sh
# writes them beside each topology's bench.jsonl): pages placed so far,
# by the faults and by the sweep; and each fault's service time in the
# VMM (FETCH + placing), with ib_read_lat's median for the same 4 KiB.
: > "$outdir/pc-pages.dat"
: > "$outdir/pc-faults.dat"
pc_titles=()
for f in "$@"; do
	topo=$(basename "$(dirname "$(dirname "$f")")")
	topo=${topo#bench-}
	for tl in "$(dirname "$f")"/postcopy_*.timeline; do
		[ -f "$tl" ] || continue
		pc_titles+=("$topo $(basename "$tl" .timeline)")
		awk '!/^#/ { if ($2 == "fault") fp += $3; else sp += $3
			     print $1 / 1000, fp, sp }
		     END { print ""; print "" }' "$tl" >> "$outdir/pc-pages.dat"
		awk '!/^#/ && $2 == "fault" { print $1 / 1000, $4 / 1000 }
		     END { print ""; print "" }' "$tl" >> "$outdir/pc-faults.dat"
	done
done
if [ ${#pc_titles[@]} -gt 0 ]; then
	lat_ms=$(jq -r '[to_entries[] | .value.read_lat.median_us // empty] | first // empty | . / 1000' \
		"$outdir/bench.json")
	pages_plots='' fault_plots=''
	for i in "${!pc_titles[@]}"; do
		t=${pc_titles[$i]}
		pages_plots+="${pages_plots:+, }'$outdir/pc-pages.dat' index $i using 1:3 with lines lw 2 title '$t: sweep'"
		pages_plots+=", '' index $i using 1:2 with lines dt 2 lw 2 title '$t: faults'"
		fault_plots+="${fault_plots:+, }'$outdir/pc-faults.dat' index $i using 1:2 with points pt 7 ps 0.5 title '$t'"
	done
	[ -n "$lat_ms" ] && fault_plots+=", $lat_ms with lines lw 2 dt 3 lc rgb 'black' title 'ib_read_lat median, 4 KiB'"
	gnuplot <<-GP
	set terminal pngcairo size 1000,800 noenhanced font ",9"
	set output "$outdir/bench-postcopy.png"
	set multiplot layout 2,1
	set title "Post-copy: owed pages placed on the destination since the switch"
	set xlabel "seconds since RDMAMIG_EVENT_POSTCOPY"
	set ylabel "pages (4 KiB)"
	set key top left
	plot $pages_plots
	set title "Post-copy: each fault's service time in the VMM (FETCH + placing)"
	set ylabel "ms (log)"
	set logscale y
	set key top right
	plot $fault_plots
	unset multiplot
	GP
	echo "chart: $outdir/bench-postcopy.png"
fi

# Checkpointing per epoch: the pause (the process stopped) and the time
# from the snapshot to the backup's acknowledgement.
: > "$outdir/mc.dat"
mc_titles=()
while IFS=$'\t' read -r t name; do
	mc_titles+=("$t $name")
	jq -r --arg t "$t" --arg n "$name" '.[$t].mc[] | select(.name == $n) | .per_epoch[] |
		"\(.epoch) \(.pause_ms) \(.ack_ms // "NaN")"' "$outdir/bench.json" >> "$outdir/mc.dat"
	printf '\n\n' >> "$outdir/mc.dat"
done < <(jq -r 'to_entries[] | .key as $t | .value.mc[]? | "\($t)\t\(.name)"' "$outdir/bench.json")
[ ${#mc_titles[@]} -gt 0 ] || exit 0
pause_plots='' ack_plots=''
for i in "${!mc_titles[@]}"; do
	t=${mc_titles[$i]}
	pause_plots+="${pause_plots:+, }'$outdir/mc.dat' index $i using 1:2 with lines lw 1 title '$t'"
	ack_plots+="${ack_plots:+, }'$outdir/mc.dat' index $i using 1:3 with lines lw 1 title '$t'"
done
gnuplot <<-GP
set terminal pngcairo size 1000,800 noenhanced font ",9"
set output "$outdir/bench-mc.png"
set multiplot layout 2,1
set title "Checkpointing: the process stopped at each epoch (pause)"
set xlabel "epoch"
set ylabel "ms (log)"
set logscale y
set key top right
plot $pause_plots, 5 with lines lw 2 dt 3 lc rgb 'black' title 'target: median <= 5 ms'
set title "Checkpointing: from each epoch's snapshot to the backup's acknowledgement"
plot $ack_plots
unset multiplot
GP
echo "chart: $outdir/bench-mc.png"
