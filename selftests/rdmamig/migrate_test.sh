#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Whole live migrations with the example VMM (tools/rdmamig-vmm): the
# destination checks every page against the source's hashes and every
# device-state record, and the source's statistics must add up.
#
#   1. 256 MiB in 4 blocks, ~10% zero pages, bulk + 3 rounds re-dirtying
#      5% of the pages, dynamic registration
#   2. the same with all RAM pinned up front (--pin-all), to a
#      destination whose RAM is not fresh (--prefill: a pattern in every
#      page), so that every zero page must be sent and cleared there; the
#      zero pages in untouched 2 MiB regions (--zero-layout regions: the
#      source finds them as the huge zero page)
#   (1 and 3 go to a fresh destination, RDMAMIG_BLOCK_FRESH: the bulk
#   round's zero pages are not sent at all, stats.zero_skipped)
#   3. the same as 1 with sparse registration (module parameter sparse=1
#      on the source, which then offers CAP_SPARSE; the destination's
#      decides whether it is granted, so in pair it is set there too)
#   5. pull (--pull at both ends, RDMAMIG_CAP_PULL): the same as 1, but
#      every round read by the destination with RDMA READ from pages the
#      source registered; the destination registers nothing
#   6. pull asked by both ends together with pin-all, to a prefilled
#      destination: pull is granted, pin-all is not (pull registers on
#      the source, window by window), every zero page cleared
#   7. pull asked by the source only (a destination that does not allow
#      it, as an old one): the source writes, as in 1
#   4. 64 MiB at --max-bandwidth 20 MB/s: the bulk round's throughput
#      (stats.throughput) within 5% of it (with a lower limit when the
#      guests cannot reach 25 MB/s without one); never above it, and
#      below it only if the link itself, measured again without a limit,
#      no longer reaches it (a busy host: then skipped)
#
# Loop topology: both ends in this VM, at $RDMAMIG_LOCAL_ADDR.  Pair
# topology: the destination runs on the peer VM ($RDMAMIG_PEER --bg/--wait)
# and the source connects to $RDMAMIG_PEER_ADDR.
#
# RDMAMIG_MIGRATE_CASES="dynamic pinall sparse pull pullpin pullold bandwidth"
# picks cases (the rest
# are skipped); RDMAMIG_VMM names another VMM binary.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vmm_lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
TIMEOUT=${RDMAMIG_MIGRATE_TIMEOUT:-120}
BW=20000000		# bytes/s: "20 MB/s", unless the link is slower
BW_TOLERANCE=${RDMAMIG_BW_TOLERANCE:-5}	# percent

topology=${RDMAMIG_TOPOLOGY:-loop}
require_vmm_testbed

tmp=$(mktemp -d)
dest_pid=
SPARSE=/sys/module/rdmamig/parameters/sparse
cleanup()
{
	[ -n "$dest_pid" ] && kill "$dest_pid" 2>/dev/null
	[ -w "$SPARSE" ] && echo 0 > "$SPARSE"
	[ "$topology" = pair ] && "$RDMAMIG_PEER" sh -c "echo 0 > $SPARSE" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 14
diag "topology $topology, vmm $VMM"

# Pinning (--pin-all, and dynamic mode's registrations) counts against
# RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.
ulimit -l unlimited 2>/dev/null || diag "ulimit -l unlimited: not permitted"

# The summary line of a VMM's output (--json prints one JSON object).
json_of()
{
	grep '^{' "$1" 2>/dev/null | tail -n 1
}

# jget FILE JQ-EXPR
jget()
{
	json_of "$1" | jq -r "$2" 2>/dev/null
}

# migrate NAME DEST-ARGS... -- SOURCE-ARGS...: one migration; its outputs
# are in $tmp/NAME.src and $tmp/NAME.dst, its exit statuses in src_rc and
# dst_rc.
migrate()
{
	local name=$1 dargs=() sargs=() host=$LOCAL_ADDR
	shift
	split_dest_args "$@"
	src_rc=1 dst_rc=1
	if ! start_dest "$name" "${dargs[@]}"; then
		diag "$name: destination did not start"
		wait_dest "$name" 1
		dst_rc=$?
		return
	fi
	[ $topology = pair ] && host=$RDMAMIG_PEER_ADDR
	"$VMM" source --connect "$host:$dest_port" --timeout "$TIMEOUT" \
		--json "${sargs[@]}" >"$tmp/$name.src" 2>&1
	src_rc=$?
	wait_dest "$name" $((src_rc == 0 ? TIMEOUT : 10))
	dst_rc=$?
}

# migrated NAME: both ends succeeded and the destination verified it all.
migrated()
{
	local name=$1 ok=0
	[ "$src_rc" = 0 ] || { diag "$name: source exited $src_rc"; ok=1; }
	[ "$dst_rc" = 0 ] || { diag "$name: destination exited $dst_rc"; ok=1; }
	[ "$(jget "$tmp/$name.dst" .verified)" = true ] ||
		{ diag "$name: destination did not verify the data"; ok=1; }
	[ $ok = 0 ] || show_output "$name"
	return $ok
}

# pages_add_up NAME: the source's counters against the pages it put in
# its bitmaps, the destination's against the source's, and each end
# authenticated by the other; sets scaps and dcaps, the negotiated caps.
pages_add_up()
{
	local name=$1 s=$tmp/$1.src d=$tmp/$1.dst ok=0
	local pages zero dirty bytes rounds dpages dzero
	pages=$(jget "$s" .pages)
	zero=$(jget "$s" .zero_pages)
	dirty=$(jget "$s" .pages_dirty)
	bytes=$(jget "$s" .bytes)
	rounds=$(jget "$s" .rounds)
	scaps=$(jget "$s" .caps)
	dpages=$(jget "$d" .pages)
	dzero=$(jget "$d" .zero_pages)
	dcaps=$(jget "$d" .caps)
	diag "$name: source pages $pages zero_pages $zero (dirty pages sent $dirty)" \
		"bytes $bytes rounds $rounds caps $scaps;" \
		"dest pages $dpages zero_pages $dzero caps $dcaps"
	diag "$name: source setup $(jget "$s" .setup_ms) ms total" \
		"$(jget "$s" .total_ms) ms downtime $(jget "$s" .downtime_ms) ms," \
		"rounds MB/s: $(jget "$s" '[.round_stats[].throughput / 1e6 | floor] | join(" ")')"
	[[ "$pages" =~ ^[0-9]+$ && "$zero" =~ ^[0-9]+$ && "$dirty" =~ ^[0-9]+$ ]] ||
		{ diag "$name: no source statistics"; show_output "$name"; return 1; }
	[ "$zero" -gt 0 ] || { diag "$name: no zero pages"; ok=1; }
	[ $((pages + zero)) -eq "$dirty" ] ||
		{ diag "$name: pages + zero_pages != pages sent"; ok=1; }
	[ "$bytes" = $((pages * 4096)) ] ||
		{ diag "$name: bytes != pages * 4096"; ok=1; }
	[ "$rounds" = 4 ] || { diag "$name: $rounds rounds, not 4"; ok=1; }
	[ "$dpages" = "$pages" ] && [ "$dzero" = "$zero" ] ||
		{ diag "$name: destination counted other pages"; ok=1; }
	# RDMAMIG_CAP_AUTH: each end proved the testbed's secret to the other.
	[ $((scaps & 2)) = 2 ] && [ $((dcaps & 2)) = 2 ] ||
		{ diag "$name: caps $scaps/$dcaps: peer not authenticated"; ok=1; }
	return $ok
}

# stats_add_up NAME PIN-ALL(0|1) SPARSE(0|1) FRESH(0|1): pages_add_up,
# the capabilities negotiated, and the checks of a push migration.
stats_add_up()
{
	local name=$1 pin=$2 sparse=$3 fresh=$4 ok=0 scaps dcaps
	pages_add_up "$name" || ok=1
	[[ "$scaps$dcaps" =~ ^[0-9]+$ ]] || return 1
	[ $((scaps & 1)) = "$pin" ] && [ $((dcaps & 1)) = "$pin" ] ||
		{ diag "$name: negotiated caps $scaps/$dcaps, pin-all wanted: $pin"; ok=1; }
	# RDMAMIG_CAP_SPARSE: dynamic registration of just the pages written.
	[ $((scaps >> 2 & 1)) = "$sparse" ] && [ $((dcaps >> 2 & 1)) = "$sparse" ] ||
		{ diag "$name: caps $scaps/$dcaps, sparse registration wanted: $sparse"; ok=1; }
	zero_skipped "$name" "$fresh" || ok=1
	keys_invalidated "$name" "$pin" || ok=1
	time_accounted "$name" "$pin" "$fresh" || ok=1
	return $ok
}

# zero_skipped NAME FRESH: to a fresh destination every zero page of the
# bulk round is skipped (nothing was written there yet), and a page the
# guest zeroed after it was sent is not (later rounds: COMPRESS); to a
# destination whose memory holds something, nothing is skipped.
zero_skipped()
{
	local s=$tmp/$1.src skipped zero bulk
	skipped=$(jget "$s" .zero_skipped)
	zero=$(jget "$s" .zero_pages)
	bulk=$(jget "$s" '.round_stats[0].zero_pages')
	diag "$1: zero pages $zero, bulk round's $bulk, not sent $skipped"
	[[ "$skipped$zero$bulk" =~ ^[0-9]+$ ]] ||
		{ diag "$1: no zero_skipped statistics"; return 1; }
	if [ "$2" = 0 ]; then
		[ "$skipped" = 0 ] ||
			{ diag "$1: zero pages skipped, but the destination is not fresh"; return 1; }
		return 0
	fi
	[ "$bulk" -gt 0 ] && [ "$skipped" -ge "$bulk" ] ||
		{ diag "$1: fresh destination, but the bulk round's zero pages were sent"; return 1; }
	[ "$skipped" -lt "$zero" ] ||
		{ diag "$1: every zero page skipped, also those sent with data before"; return 1; }
}

# time_accounted NAME PIN-ALL FRESH: where the time went (struct
# rdmamig_stats *_ms).  The source's three steps run one after the other
# in one thread, so they add up to no more than its total; each step this
# migration has took time: pages scanned, writes waited for, keys waited
# for (dynamic only: pin-all keys are asked for once, from memory
# registered already or being registered), chunks registered and, unless
# the destination is fresh (then only the few pages zeroed after they
# were sent are cleared), zero pages cleared at the destination.
time_accounted()
{
	local s=$tmp/$1.src d=$tmp/$1.dst scan keys writes total reg zero
	scan=$(jget "$s" .scan_ms)
	keys=$(jget "$s" .keys_wait_ms)
	writes=$(jget "$s" .writes_wait_ms)
	total=$(jget "$s" .total_ms)
	reg=$(jget "$d" .register_ms)
	zero=$(jget "$d" .zero_ms)
	diag "$1: source scan $scan ms, keys wait $keys ms, writes wait $writes ms" \
		"(total $total ms); destination register $reg ms, zero $zero ms"
	[[ "$scan$keys$writes$total$reg$zero" =~ ^[0-9]+$ ]] ||
		{ diag "$1: no time statistics"; return 1; }
	[ $((scan + keys + writes)) -le "$total" ] ||
		{ diag "$1: the source's steps add up to more than its total"; return 1; }
	[ "$scan" -gt 0 ] && [ "$writes" -gt 0 ] && [ "$reg" -gt 0 ] ||
		{ diag "$1: a step took no time"; return 1; }
	[ "$3" = 1 ] || [ "$zero" -gt 0 ] ||
		{ diag "$1: zero pages sent, but clearing them took no time"; return 1; }
	[ "$2" = 1 ] || [ "$keys" -gt 0 ] ||
		{ diag "$1: dynamic registration, but no wait for keys"; return 1; }
}

# keys_invalidated NAME PIN-ALL: with dynamic registration the destination
# deregisters every chunk at the end of each round (a key is good for one
# round), so every registration has its deregistration and the re-dirtied
# rounds register again; with pin-all nothing is deregistered before the
# end.
keys_invalidated()
{
	local d=$tmp/$1.dst reg unreg chunks=256	# 256 MiB in 1 MiB chunks
	reg=$(jget "$d" .chunks_registered)
	unreg=$(jget "$d" .chunks_unregistered)
	diag "$1: destination chunks registered $reg, deregistered $unreg"
	[[ "$reg" =~ ^[0-9]+$ && "$unreg" =~ ^[0-9]+$ ]] || return 1
	if [ "$2" = 1 ]; then
		[ "$reg" = "$chunks" ] && [ "$unreg" = 0 ]
	else
		[ "$reg" = "$unreg" ] && [ "$reg" -gt "$chunks" ]
	fi
}

# pull_stats NAME FRESH: a pull migration's counters.  The pages add up
# as in push (pages_add_up; the destination refused the round unless the
# pages it read were the source's count, which its statistics then
# show); both ends
# have RDMAMIG_CAP_PULL (8) and neither pin-all nor sparse; the source
# registered chunks for reading and deregistered every one of them; the
# destination registered nothing (so nothing was written into it: the
# pages were read) and waited for its reads.
pull_stats()
{
	local name=$1 fresh=$2 s=$tmp/$1.src d=$tmp/$1.dst ok=0 scaps dcaps
	local sreg sunreg dreg dwait
	pages_add_up "$name" || ok=1
	sreg=$(jget "$s" .chunks_registered)
	sunreg=$(jget "$s" .chunks_unregistered)
	dreg=$(jget "$d" .chunks_registered)
	dwait=$(jget "$d" .writes_wait_ms)
	diag "$name: source chunks registered $sreg, deregistered $sunreg;" \
		"destination chunks registered $dreg, waited $dwait ms for its reads"
	[[ "$scaps$dcaps$sreg$sunreg$dreg$dwait" =~ ^[0-9]+$ ]] ||
		{ diag "$name: no statistics"; show_output "$name"; return 1; }
	[ $((scaps & 8)) = 8 ] && [ $((dcaps & 8)) = 8 ] ||
		{ diag "$name: caps $scaps/$dcaps: pull not negotiated"; ok=1; }
	[ $((scaps & 5)) = 0 ] && [ $((dcaps & 5)) = 0 ] ||
		{ diag "$name: caps $scaps/$dcaps: pin-all or sparse with pull"; ok=1; }
	[ "$sreg" -ge 256 ] && [ "$sreg" = "$sunreg" ] ||
		{ diag "$name: source registered $sreg chunks for reading, deregistered $sunreg"; ok=1; }
	[ "$dreg" = 0 ] || { diag "$name: the destination registered $dreg chunks"; ok=1; }
	[ "$dwait" -gt 0 ] || { diag "$name: the destination never waited for a read"; ok=1; }
	zero_skipped "$name" "$fresh" || ok=1
	return $ok
}

# Bulk round's throughput within BW_TOLERANCE % of the limit.
bandwidth_held()
{
	local s=$tmp/$1.src tput wall
	tput=$(jget "$s" '.round_stats[0].throughput')
	wall=$(jget "$s" '.round_stats[0] | if .wall_us > 0 then (.bytes / .wall_us * 1e6 | floor) else 0 end')
	diag "$1: bulk round stats.throughput $tput B/s, wall-clock $wall B/s, limit $BW B/s"
	[[ "$tput" =~ ^[0-9]+$ ]] || return 1
	[ $((tput * 100)) -ge $((BW * (100 - BW_TOLERANCE))) ] &&
		[ $((tput * 100)) -le $((BW * (100 + BW_TOLERANCE))) ]
}

# under_limit NAME: the bulk round did not exceed the limit (+ tolerance).
under_limit()
{
	local tput
	tput=$(jget "$tmp/$1.src" '.round_stats[0].throughput')
	[[ "$tput" =~ ^[0-9]+$ ]] && [ $((tput * 100)) -le $((BW * (100 + BW_TOLERANCE))) ]
}

# selected CASE: in $RDMAMIG_MIGRATE_CASES (default: all), for debugging
# one case; the others are reported skipped.
selected()
{
	[[ " ${RDMAMIG_MIGRATE_CASES:-dynamic pinall sparse pull pullpin pullold bandwidth} " == *" $1 "* ]]
}

skip_case()
{
	ktap_skip "$1" "not in RDMAMIG_MIGRATE_CASES"
	ktap_skip "$2" "not in RDMAMIG_MIGRATE_CASES"
}

RAM=(--blocks 4 --size 256)
ROUNDS=(--zero-holes 10 --rounds 3 --redirty 5)

t1="dynamic: 256 MiB migrated, pages and device state verified"
t2="dynamic: statistics add up"
if selected dynamic; then
	migrate dynamic "${RAM[@]}" -- "${RAM[@]}" "${ROUNDS[@]}" --seed 1
	ktap_result "$t1" migrated dynamic
	ktap_result "$t2" stats_add_up dynamic 0 0 1
else
	skip_case "$t1" "$t2"
fi

t1="pin-all: 256 MiB migrated to a prefilled destination, pages and device state verified"
t2="pin-all: statistics add up, pin-all negotiated, no zero page skipped"
if selected pinall; then
	migrate pinall "${RAM[@]}" --pin-all --prefill -- "${RAM[@]}" "${ROUNDS[@]}" --pin-all --seed 2 \
		--zero-layout regions
	ktap_result "$t1" migrated pinall
	ktap_result "$t2" stats_add_up pinall 1 0 0
else
	skip_case "$t1" "$t2"
fi

# Both ends must allow it: the source offers, the destination grants.
# Each chunk's pages are then registered alone and written in one WRITE.
t1="sparse (sparse=1): 256 MiB migrated, pages and device state verified"
t2="sparse: statistics add up, sparse registration negotiated"
set_sparse()
{
	echo "$1" > "$SPARSE"
	[ "$topology" = pair ] && "$RDMAMIG_PEER" sh -c "echo $1 > $SPARSE"
	return 0
}
if selected sparse && [ -w "$SPARSE" ]; then
	set_sparse 1
	migrate sparse "${RAM[@]}" -- "${RAM[@]}" "${ROUNDS[@]}" --seed 4
	set_sparse 0
	ktap_result "$t1" migrated sparse
	ktap_result "$t2" stats_add_up sparse 0 1 1
elif selected sparse; then
	ktap_skip "$t1" "no $SPARSE"
	ktap_skip "$t2" "no $SPARSE"
else
	skip_case "$t1" "$t2"
fi

# Pull: both ends must allow it (params.caps RDMAMIG_CAP_PULL).
t1="pull: 256 MiB read by the destination, pages and device state verified"
t2="pull: statistics add up, pull negotiated, the destination registered nothing"
if selected pull; then
	migrate pull "${RAM[@]}" --pull -- "${RAM[@]}" "${ROUNDS[@]}" --pull --seed 5
	ktap_result "$t1" migrated pull
	ktap_result "$t2" pull_stats pull 1
else
	skip_case "$t1" "$t2"
fi

# Pull and pin-all both asked and allowed: pull is granted, pin-all not.
t1="pull with pin-all asked: 256 MiB read into a prefilled destination, verified"
t2="pull with pin-all asked: pull granted, pin-all not, no zero page skipped"
if selected pullpin; then
	migrate pullpin "${RAM[@]}" --pull --pin-all --prefill -- "${RAM[@]}" "${ROUNDS[@]}" \
		--pull --pin-all --seed 6 --zero-layout regions
	ktap_result "$t1" migrated pullpin
	ktap_result "$t2" pull_stats pullpin 0
else
	skip_case "$t1" "$t2"
fi

# A destination that does not allow pull (as one that predates it): the
# source asked, is refused, and writes as in the dynamic case.
t1="pull refused by the destination: 256 MiB written instead, verified"
t2="pull refused: push statistics add up, pull not negotiated"
pull_refused()
{
	stats_add_up pullold 0 0 1 || return 1
	[ $(($(jget "$tmp/pullold.src" .caps) & 8)) = 0 ] &&
		[ $(($(jget "$tmp/pullold.dst" .caps) & 8)) = 0 ]
}
if selected pullold; then
	migrate pullold "${RAM[@]}" -- "${RAM[@]}" "${ROUNDS[@]}" --pull --seed 7
	ktap_result "$t1" migrated pullold
	ktap_result "$t2" pull_refused
else
	skip_case "$t1" "$t2"
fi

# The limiter can only be held to a rate the link exceeds: 64 MiB without
# a limit first.  A TCG guest on a busy host may not even reach 20 MB/s;
# the limit is then half of what it reached.
t1="max-bandwidth: 64 MiB migrated, verified"
t2="max-bandwidth: bulk round within $BW_TOLERANCE% of the limit"
if selected bandwidth; then
	BW_RAM=(--blocks 4 --size 64)
	BW_ARGS=(--zero-holes 0 --rounds 1 --redirty 1 --seed 3)
	migrate unlimited "${BW_RAM[@]}" -- "${BW_RAM[@]}" "${BW_ARGS[@]}"
	free=$(jget "$tmp/unlimited.src" '.round_stats[0].throughput')
	[[ "$free" =~ ^[0-9]+$ ]] || free=0
	if [ "$free" -lt $((BW * 5 / 4)) ]; then
		BW=$((free / 2 / 1000000 * 1000000))
		[ "$BW" -ge 1000000 ] || BW=1000000
	fi
	diag "bandwidth: without a limit $free B/s; limit $BW B/s"
	BW_FREE=("${BW_ARGS[@]}")
	BW_ARGS+=(--max-bandwidth "$BW")
	migrate bandwidth "${BW_RAM[@]}" -- "${BW_RAM[@]}" "${BW_ARGS[@]}"
	ktap_result "$t1" migrated bandwidth
	# A busy host slows TCG guests for seconds at a time: one more try
	# before calling the limiter wrong.
	if bandwidth_held bandwidth; then
		ktap_ok "$t2"
	elif [ "$src_rc" = 0 ]; then
		diag "bandwidth: off the limit, measuring once more"
		migrate bandwidth2 "${BW_RAM[@]}" -- "${BW_RAM[@]}" "${BW_ARGS[@]}"
		if bandwidth_held bandwidth2; then
			ktap_ok "$t2"
		elif ! under_limit bandwidth2; then
			ktap_fail "$t2"
		else
			# Below the limit is the link's doing if, unlimited, it
			# cannot reach the limit any more either.
			migrate unlimited2 "${BW_RAM[@]}" -- "${BW_RAM[@]}" "${BW_FREE[@]}"
			free=$(jget "$tmp/unlimited2.src" '.round_stats[0].throughput')
			diag "bandwidth: without a limit now $free B/s"
			if [[ "$free" =~ ^[0-9]+$ ]] &&
			   [ $((free * 100)) -lt $((BW * (100 + BW_TOLERANCE))) ]; then
				ktap_skip "$t2" "the link itself fell below the limit (host busy)"
			else
				ktap_fail "$t2"
			fi
		fi
	else
		ktap_fail "$t2"
	fi
else
	skip_case "$t1" "$t2"
fi

ktap_finish
