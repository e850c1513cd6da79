#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Post-copy migrations (RDMAMIG_CAP_POSTCOPY) with the example VMM
# (tools/rdmamig-vmm --postcopy): the source switches instead of sending
# a final round, the destination runs its guest at once and fetches the
# owed pages on demand (userfaultfd: a fault thread, a sweep thread, and
# a guest thread that reads, checks and rewrites --guest-writes pages
# meanwhile).  The destination then checks every page against the
# source's hashes at the switch, or against what its guest wrote.
#
#   1. all owed: 256 MiB in 4 blocks, the bulk round, then the guest
#      re-dirties 100% of its pages before the switch: every page owed
#   2. two rounds: 256 MiB, the bulk round and one round re-dirtying 5%,
#      then the switch with the 5% dirtied since owed
#   3. no pre-copy (--postcopy=0): 64 MiB, every page owed at once, zero
#      pages in untouched 2 MiB regions included
#   4. refused: a destination that does not allow post-copy gets a final
#      round in the switch's place (64 MiB)
#   5. zero regions: 64 MiB, 30% of it in 2 MiB regions the source never
#      wrote (and, the destination being fresh, never sent: nothing there
#      is in memory), the bulk round, 1% owed at the switch; the guest's
#      touches of the never-written pages fault too, FETCH says ENOENT
#      (never owed) and the VMM maps the zero page (UFFDIO_ZEROPAGE)
#   6. shared memory (--memfd, both ends): 64 MiB in memfds, the bulk
#      round, 30% owed; the destination's guest view is registered for
#      MINOR faults, FETCH reads owed pages in place
#      (RDMAMIG_FETCH_IN_PLACE) and UFFDIO_CONTINUE maps them; pages not
#      owed are mapped as the rounds left them
#   7. automatic switch (--postcopy=auto, --rounds 6, 5% re-dirtied each
#      round): round 2 sends 5% of the pages, round 3 as many, so rounds
#      stopped shrinking: the source switches after round 3, not 6
#
# Statistics asserted for 1-3 and 5: both ends negotiated post-copy; the
# pages owed agree between the source's SEND_ROUNDs,
# RDMAMIG_EVENT_POSTCOPY, RDMAMIG_IOC_OWED and both ends'
# stats.postcopy_owed; owed = pages fetched for faults + pages fetched by
# the sweep, and the VMM placed exactly those (none twice: UFFDIO_COPY
# never met EEXIST, none left); nothing fetched twice; faults served,
# with p50 <= p99 <= max, none 0.
#
# Loop topology: both ends in this VM.  Pair: the destination runs on the
# peer VM.  RDMAMIG_POSTCOPY_CASES="allowed tworounds noprecopy refused
# zeroregions memfd auto" picks cases; RDMAMIG_VMM names another VMM binary.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vmm_lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
TIMEOUT=${RDMAMIG_MIGRATE_TIMEOUT:-120}
GUEST_WRITES=256

topology=${RDMAMIG_TOPOLOGY:-loop}
require_vmm_testbed
# The sysctl exists only with CONFIG_USERFAULTFD (the debug kernel's
# tinyconfig once lacked it): the destination could not take a fault.
require_userfaultfd

tmp=$(mktemp -d)
dest_pid=
cleanup()
{
	[ -n "$dest_pid" ] && kill "$dest_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 14
diag "topology $topology, vmm $VMM"
ulimit -l unlimited 2>/dev/null || diag "ulimit -l unlimited: not permitted"

json_of()
{
	grep '^{' "$1" 2>/dev/null | tail -n 1
}

jget()
{
	json_of "$1" | jq -r "$2" 2>/dev/null
}

# migrate NAME DEST-ARGS... -- SOURCE-ARGS...: as in migrate_test.sh.
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

# migrated NAME: both ends succeeded and the destination verified it all
# (every page, the guest's writes included, and its own post-copy checks).
migrated()
{
	local name=$1 ok=0
	[ "$src_rc" = 0 ] || { diag "$name: source exited $src_rc"; ok=1; }
	[ "$dst_rc" = 0 ] || { diag "$name: destination exited $dst_rc"; ok=1; }
	[ "$(jget "$tmp/$name.dst" .verified)" = true ] ||
		{ diag "$name: destination did not verify the data:" \
			"$(jget "$tmp/$name.dst" .verify_error)"; ok=1; }
	[ $ok = 0 ] || show_output "$name"
	return $ok
}

# check WHAT CONDITION...: one assertion, its failure named.
check()
{
	local what=$1
	shift
	if ! "$@" 2>/dev/null; then
		diag "$name: $what"
		bad=1
	fi
}

# postcopy_stats NAME [OWED [any]]: the counters of a post-copy migration
# (see the header); OWED, when given, is the number of pages owed.  With
# "any", the sweep may have fetched every owed page before the guest
# touched one: no fault on an owed page is then required (a few owed
# pages, two sweep threads: zeroregions' 163 went in 77 ms).
postcopy_stats()
{
	local name=$1 want=${2:-} faults_any=${3:-} s=$tmp/$1.src d=$tmp/$1.dst bad=0 v k
	local -A S D
	for k in caps state postcopy owed_named postcopy_owed postcopy_ms \
		switch_us postcopy_wait_us total_ms downtime_ms total_pages \
		postcopy_downtime_us; do
		S[$k]=$(jget "$s" ".$k")
	done
	for k in caps state postcopy_owed postcopy_ms postcopy_faults \
		postcopy_fault_pages postcopy_sweep_pages postcopy_fetched_twice \
		fault_us_p50 fault_us_p99 fault_us_max postcopy_event_pages \
		owed_named placed_fault placed_sweep placed_twice placed_not_owed \
		unplaced uffd_faults fault_fetch_empty zero_filled guest_writes \
		guest_reads_bad vmm_fault_us_p50 vmm_fault_us_p99 vmm_fault_us_max \
		postcopy_wall_ms sweep_calls total_ms; do
		D[$k]=$(jget "$d" ".$k")
	done
	for k in "${!S[@]}"; do
		[[ "${S[$k]}" =~ ^[0-9]+$|^true$|^false$|^[A-Z]+$ ]] ||
			{ diag "$name: source: no $k in the summary"; show_output "$name"; return 1; }
	done
	for k in "${!D[@]}"; do
		[[ "${D[$k]}" =~ ^[0-9]+$|^[A-Z]+$ ]] ||
			{ diag "$name: destination: no $k in the summary"; show_output "$name"; return 1; }
	done
	diag "$name: owed ${D[postcopy_owed]} of ${S[total_pages]} pages; faults" \
		"${D[postcopy_faults]} (uffd ${D[uffd_faults]}, ${D[fault_fetch_empty]} already" \
		"coming, ${D[zero_filled]} zero-filled) fetched ${D[postcopy_fault_pages]} pages," \
		"sweep ${D[postcopy_sweep_pages]} pages in ${D[sweep_calls]} calls"
	diag "$name: fault service p50/p99/max ${D[fault_us_p50]}/${D[fault_us_p99]}/${D[fault_us_max]} us" \
		"(VMM, with UFFDIO_COPY: ${D[vmm_fault_us_p50]}/${D[vmm_fault_us_p99]}/${D[vmm_fault_us_max]} us);" \
		"postcopy_ms ${D[postcopy_ms]} (source ${S[postcopy_ms]}), VMM switch to end" \
		"${D[postcopy_wall_ms]} ms"
	diag "$name: source: guest stopped for $((S[switch_us] / 1000)) ms at the switch" \
		"(the module: $((S[postcopy_downtime_us] / 1000)) ms to POSTCOPY_RUN)," \
		"COMPLETE waited $((S[postcopy_wait_us] / 1000)) ms; total ${S[total_ms]} ms," \
		"downtime ${S[downtime_ms]} ms; destination total ${D[total_ms]} ms"

	check "source did not switch" [ "${S[postcopy]}" = true ]
	check "caps ${S[caps]}/${D[caps]}: post-copy not negotiated" \
		[ $((S[caps] & 16)) = 16 -a $((D[caps] & 16)) = 16 ]
	check "states ${S[state]}/${D[state]}" [ "${S[state]}${D[state]}" = COMPLETEDCOMPLETED ]
	if [ -n "$want" ]; then
		check "${S[owed_named]} pages owed, not $want" [ "${S[owed_named]}" = "$want" ]
	fi
	check "owed: named ${S[owed_named]}, source stats ${S[postcopy_owed]}, event ${D[postcopy_event_pages]}, OWED ${D[owed_named]}, destination stats ${D[postcopy_owed]}" \
		[ "${S[owed_named]}" = "${S[postcopy_owed]}" -a \
		  "${S[owed_named]}" = "${D[postcopy_event_pages]}" -a \
		  "${S[owed_named]}" = "${D[owed_named]}" -a \
		  "${S[owed_named]}" = "${D[postcopy_owed]}" ]
	check "postcopy_owed != postcopy_fault_pages + postcopy_sweep_pages" \
		[ "${D[postcopy_owed]}" = $((D[postcopy_fault_pages] + D[postcopy_sweep_pages])) ]
	check "postcopy_fetched_twice ${D[postcopy_fetched_twice]}" \
		[ "${D[postcopy_fetched_twice]}" = 0 ]
	check "placed twice ${D[placed_twice]}, not owed ${D[placed_not_owed]}, never placed ${D[unplaced]}" \
		[ "${D[placed_twice]}${D[placed_not_owed]}${D[unplaced]}" = 000 ]
	check "the VMM placed ${D[placed_fault]} + ${D[placed_sweep]} pages, the module fetched ${D[postcopy_fault_pages]} + ${D[postcopy_sweep_pages]}" \
		[ "${D[placed_fault]}" = "${D[postcopy_fault_pages]}" -a \
		  "${D[placed_sweep]}" = "${D[postcopy_sweep_pages]}" ]
	if [ -z "$faults_any" ] || [ "${D[postcopy_faults]}" -gt 0 ]; then
		check "no fault was served" [ "${D[postcopy_faults]}" -gt 0 ]
		check "fault latency p50 ${D[fault_us_p50]} p99 ${D[fault_us_p99]} max ${D[fault_us_max]}: zero, or not ordered" \
			[ "${D[fault_us_p50]}" -gt 0 -a "${D[fault_us_p50]}" -le "${D[fault_us_p99]}" -a \
			  "${D[fault_us_p99]}" -le "${D[fault_us_max]}" ]
	fi
	check "postcopy_ms ${D[postcopy_ms]}" [ "${D[postcopy_ms]}" -gt 0 ]
	# The module's stop (first owed page named to POSTCOPY_RUN posted) is
	# inside the VMM's (guest stopped to POSTCOPY returned).
	check "postcopy_downtime_us ${S[postcopy_downtime_us]}, switch ${S[switch_us]} us" \
		[ "${S[postcopy_downtime_us]}" -gt 0 -a \
		  "${S[postcopy_downtime_us]}" -le "${S[switch_us]}" ]
	check "guest wrote ${D[guest_writes]} pages, read ${D[guest_reads_bad]} wrong" \
		[ "${D[guest_writes]}" = "$GUEST_WRITES" -a "${D[guest_reads_bad]}" = 0 ]
	[ $bad = 0 ] || show_output "$name"
	return $bad
}

selected()
{
	[[ " ${RDMAMIG_POSTCOPY_CASES:-allowed tworounds noprecopy refused zeroregions memfd auto} " == *" $1 "* ]]
}

skip_case()
{
	ktap_skip "$1" "not in RDMAMIG_POSTCOPY_CASES"
	ktap_skip "$2" "not in RDMAMIG_POSTCOPY_CASES"
}

RAM=(--blocks 4 --size 256)
DEST=(--postcopy --guest-writes "$GUEST_WRITES")

t1="all owed: 256 MiB, every page re-dirtied at the switch, guest running, verified"
t2="all owed: every page owed, faults + sweep = owed, nothing fetched or placed twice"
if selected allowed; then
	migrate allowed "${RAM[@]}" "${DEST[@]}" -- "${RAM[@]}" --postcopy=1 --redirty 100 \
		--zero-holes 10 --seed 11
	ktap_result "$t1" migrated allowed
	ktap_result "$t2" postcopy_stats allowed 65536
else
	skip_case "$t1" "$t2"
fi

t1="two rounds: 256 MiB, bulk + 1 round, then the switch, guest running, verified"
t2="two rounds: the pages dirtied since owed, faults + sweep = owed, nothing twice"
if selected tworounds; then
	migrate tworounds "${RAM[@]}" "${DEST[@]}" -- "${RAM[@]}" --postcopy=2 --redirty 5 \
		--zero-holes 10 --seed 12
	ktap_result "$t1" migrated tworounds
	# ram_redirty() picks 5% of the pages, distinct ones.
	ktap_result "$t2" postcopy_stats tworounds 3276
else
	skip_case "$t1" "$t2"
fi

t1="no pre-copy: 64 MiB, every page owed at once (untouched regions too), verified"
t2="no pre-copy: every page owed, faults + sweep = owed, nothing twice"
if selected noprecopy; then
	migrate noprecopy --blocks 4 --size 64 "${DEST[@]}" -- --blocks 4 --size 64 \
		--postcopy=0 --zero-holes 30 --zero-layout regions --seed 13
	ktap_result "$t1" migrated noprecopy
	ktap_result "$t2" postcopy_stats noprecopy 16384
else
	skip_case "$t1" "$t2"
fi

# The destination does not allow it: the source's final round instead.
t1="refused: a destination without --postcopy gets a final round, verified"
t2="refused: post-copy not negotiated, nothing owed, 3 rounds"
refused_stats()
{
	local s=$tmp/refused.src d=$tmp/refused.dst
	diag "refused: caps $(jget "$s" .caps)/$(jget "$d" .caps), rounds" \
		"$(jget "$s" .rounds), switched $(jget "$s" .postcopy)"
	[ $(($(jget "$s" .caps) & 16)) = 0 ] && [ $(($(jget "$d" .caps) & 16)) = 0 ] &&
		[ "$(jget "$s" .postcopy)" = false ] && [ "$(jget "$s" .rounds)" = 3 ] &&
		[ "$(jget "$s" .postcopy_owed)" = 0 ] && [ "$(jget "$d" .postcopy_owed)" = 0 ]
}
if selected refused; then
	migrate refused --blocks 4 --size 64 -- --blocks 4 --size 64 --postcopy=2 --seed 14
	ktap_result "$t1" migrated refused
	ktap_result "$t2" refused_stats
else
	skip_case "$t1" "$t2"
fi

# Pages never written nor owed are not in the destination's memory: the
# guest's touch faults, FETCH says ENOENT, the VMM maps the zero page.
t1="zero regions: 64 MiB, 30% never written, 1% owed, guest running, verified"
t2="zero regions: never-written pages zero-filled on fault (ENOENT), owed ones fetched"
zero_filled()
{
	local z
	postcopy_stats zeroregions 163 any || return 1
	z=$(jget "$tmp/zeroregions.dst" .zero_filled)
	diag "zeroregions: $z pages zero-filled on the guest's faults"
	[[ "$z" =~ ^[0-9]+$ ]] && [ "$z" -gt 0 ]
}
if selected zeroregions; then
	migrate zeroregions --blocks 4 --size 64 "${DEST[@]}" -- --blocks 4 --size 64 \
		--postcopy=1 --redirty 1 --zero-holes 30 --zero-layout regions --seed 15
	ktap_result "$t1" migrated zeroregions
	ktap_result "$t2" zero_filled
else
	skip_case "$t1" "$t2"
fi

# Shared memory: MINOR faults, owed pages read in place, no staging copy.
t1="memfd: 64 MiB of shared memory, 30% owed, MINOR faults, guest running, verified"
t2="memfd: owed pages read in place and mapped (UFFDIO_CONTINUE), the others mapped as they are"
minor_stats()
{
	local d=$tmp/memfd.dst m u
	postcopy_stats memfd 4915 || return 1
	m=$(jget "$d" .memfd) u=$(jget "$d" .mapped_unowed)
	diag "memfd: memfd $m; $u pages not owed mapped on the guest's first touch"
	[ "$m" = true ] && [[ "$u" =~ ^[0-9]+$ ]] && [ "$u" -gt 0 ]
}
if selected memfd; then
	migrate memfd --blocks 4 --size 64 --memfd "${DEST[@]}" -- --blocks 4 --size 64 \
		--memfd --postcopy=1 --redirty 30 --zero-holes 10 --seed 16
	ktap_result "$t1" migrated memfd
	ktap_result "$t2" minor_stats
else
	skip_case "$t1" "$t2"
fi

# The source decides when: rounds 2 and 3 both re-dirty 5% (819 pages).
t1="auto: 64 MiB, 5% re-dirtied a round, --postcopy=auto, verified"
t2="auto: switched after round 3 of at most 6 (rounds stopped shrinking), 819 owed"
auto_stats()
{
	local r
	postcopy_stats auto 819 any || return 1
	r=$(jget "$tmp/auto.src" .rounds)
	diag "auto: the source switched after $r rounds"
	[ "$r" = 3 ]
}
if selected auto; then
	migrate auto --blocks 4 --size 64 "${DEST[@]}" -- --blocks 4 --size 64 \
		--postcopy=auto --rounds 6 --redirty 5 --zero-holes 10 --seed 17
	ktap_result "$t1" migrated auto
	ktap_result "$t2" auto_stats
else
	skip_case "$t1" "$t2"
fi

ktap_finish
