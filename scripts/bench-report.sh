#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-report.sh JSONL OUTDIR: the figures of selftests/vm/bench.sh as a
# table (stdout and OUTDIR/bench.txt), OUTDIR/bench.json, and a chart
# OUTDIR/bench.png (gnuplot).  Every throughput is also given as a ratio
# to the link limit measured in the same run (ib_write_bw, 1 QP; the mean
# of its runs before and after the migrations).
set -euo pipefail

in=$1
outdir=$2
mkdir -p "$outdir"

jq -s '
  def mbs: (.source.throughput // 0) / 1e6;
  def link: ([.[] | select(.name == "ib_write_bw_q1") | .mbs] | add / length);
  link as $link |
  {
    link_mbs: $link,
    link_q2_mbs: ([.[] | select(.name == "ib_write_bw_q2") | .mbs] | first),
    perftest_cpu_s_per_gib: ([.[] | select(.name == "ib_write_bw_q1") |
        (.cpu_ticks / 100) / (.bytes / 1073741824)] | add / length),
    results: [ .[] | select(.source) | {
        name, size_mb, zero_pct,
        data_mbs: mbs,
        data_ratio: (mbs / $link),
        total_s: (.source.total_ms / 1000),
        setup_s: (.source.setup_ms / 1000),
        total_ratio: ((.size_mb * 1048576 / 1e6) / (.source.total_ms / 1000) / $link),
        cpu_s_per_gib: ((.cpu_ticks / 100) / (.size_mb / 1024)),
        s_per_gib: ((.source.total_ms / 1000) / (.size_mb / 1024))
      } ]
  }' "$in" > "$outdir/bench.json"

{
	jq -r '"link limit (ib_write_bw, 1 QP, 1 MiB): \(.link_mbs) MB/s;  2 QPs: \(.link_q2_mbs) MB/s;  perftest CPU \(.perftest_cpu_s_per_gib * 100 | floor / 100) s/GiB (both ends)"' "$outdir/bench.json"
	echo
	printf '%-12s %7s %5s %9s %7s %8s %7s %7s %9s %8s\n' case MiB zero% data-MB/s ratio total-s setup-s ratio CPU-s/GiB s/GiB
	jq -r '.results[] | [.name, .size_mb, .zero_pct, (.data_mbs*10|floor/10), (.data_ratio*100|floor/100), (.total_s*100|floor/100), (.setup_s*100|floor/100), (.total_ratio*100|floor/100), (.cpu_s_per_gib*100|floor/100), (.s_per_gib*100|floor/100)] | @tsv' "$outdir/bench.json" |
		awk -F'\t' '{ printf "%-12s %7s %5s %9s %7s %8s %7s %7s %9s %8s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10 }'
	zr=$(jq -r '([.results[] | select(.name=="random_big") | .total_s] | first) / ([.results[] | select(.name=="zero90") | .total_s] | first)' "$outdir/bench.json")
	echo
	echo "1 GiB at 90% zero pages migrates ${zr}x faster than 1 GiB of random data"
} | tee "$outdir/bench.txt"

if command -v gnuplot >/dev/null; then
	jq -r '"link \(.link_mbs)", (.results[] | select(.name|test("^(pin_all|dynamic|random_big)$")) | "\(.name) \(.data_mbs)")' \
		"$outdir/bench.json" > "$outdir/bars.dat"
	gnuplot <<-GP
	set terminal pngcairo size 800,450 noenhanced
	set output "$outdir/bench.png"
	set title "rdmamig data-phase throughput against the link (ib_write_bw), same run"
	set ylabel "MB/s"
	set style fill solid 0.6
	set boxwidth 0.6
	set yrange [0:*]
	unset key
	plot "$outdir/bars.dat" using 0:2:xtic(1) with boxes
	GP
fi
