#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Micro-checkpointing (RDMAMIG_CAP_MC) with the example VMM (rdmamig-vmm
# --mc): after a bulk round, the primary takes an epoch every 50 ms
# (RDMAMIG_IOC_MC_EPOCH) while its guest thread writes pages, and the
# backup commits each one whole.  The primary prints the digest of its
# RAM at every epoch (the hash of every page, as its guest wrote them);
# the backup, at its end, the digest of its own RAM, the epoch its
# statistics say it committed, and what that epoch's device state says
# (epoch and digest, written by the primary when it took it).  Each case
# checks that the backup's RAM is byte-identical to the primary's
# snapshot of the epoch the backup committed last.
#
#   1. commit: 64 MiB, 30 epochs at --mc-rate 4000 pages/s: every epoch
#      acknowledged and committed in order, events and statistics agree
#   2. badcalls: before the first epoch, ten MC_EPOCH calls with a bad
#      argument (flags, reserved, counts, a round outside its block, an
#      out field set, ...) fail with EINVAL and take no epoch; an epoch
#      of all 64 MiB with a 16 MiB staging fails with ENOSPC and takes
#      none; then 10 epochs as in 1, numbered from 1
#   3. exit: the primary exits right after epoch 12 is taken (closing
#      /dev/rdmamig tears the session down with epochs on their way):
#      the backup keeps epoch 10, 11 or 12, whole, and fails over (its
#      guest runs from there; mc_failover_test.sh tests failover)
#   4. kill: the primary killed with SIGKILL while epochs flow
#      (--mc-rate 20000: epochs of ~4 MiB, on the wire most of the time):
#      the same
#   5. cancel: the backup cancels its session as soon as it committed
#      epoch 6: the primary's session fails, and it runs on unprotected;
#      the backup is at epoch 6 (or 7, when that commit was under way:
#      CANCEL waits for it), whole, and does not take over
#
# Loop topology: both ends in this VM.  Pair topology: the backup runs on
# the peer VM ($RDMAMIG_PEER --bg/--wait).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vmm_lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
TIMEOUT=${RDMAMIG_MC_TIMEOUT:-60}
STAGING=/sys/module/rdmamig/parameters/mc_staging_mb
COMMON=(--size 64 --blocks 4 --mc)

topology=${RDMAMIG_TOPOLOGY:-loop}
require_vmm_testbed

tmp=$(mktemp -d)
dest_pid=
src_pid=
cleanup()
{
	[ -n "$src_pid" ] && kill -9 "$src_pid" 2>/dev/null
	[ -n "$dest_pid" ] && kill "$dest_pid" 2>/dev/null
	[ -w "$STAGING" ] && echo 64 > "$STAGING"
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 10
diag "topology $topology, vmm $VMM"
ulimit -l unlimited 2>/dev/null || diag "ulimit -l unlimited: not permitted"

# Under TCG every exec costs up to a second: each output is read with
# one jq.  load NAME sets S_<field> from the primary's summary and
# D_<field> from the backup's (arrays joined with spaces), and digest[N]
# to the digest the primary printed when it took epoch N.
JQ_VARS='to_entries[] | "\($p)\(.key)=\(.value | if type == "array" then map(tostring) | join(" ") elif type == "object" then "" else tostring end | @sh)"'
load()
{
	local f e d
	unset "${!S_@}" "${!D_@}" digest
	declare -g -A digest=()
	for f in src dst; do
		[ -f "$tmp/$1.$f" ] || continue
		eval "$(grep -e '^{"ok"' -e '^{"mc_epoch"' "$tmp/$1.$f" | jq -r --arg p \
			"$([ $f = src ] && echo S_ || echo D_)" \
			'if has("mc_epoch") then "digest[\(.mc_epoch)]=\(.digest)" else '"$JQ_VARS"' end' \
			2>/dev/null)"
	done
}

src_host()
{
	[ $topology = pair ] && echo "$RDMAMIG_PEER_ADDR" || echo "$LOCAL_ADDR"
}
HOST=$(src_host)

# mc_run NAME DEST-ARGS... -- SOURCE-ARGS...: the backup, then the
# primary in the foreground; exit statuses in src_rc and dst_rc, the
# outputs loaded.
mc_run()
{
	local name=$1 dargs=() sargs=()
	shift
	split_dest_args "$@"
	src_rc=1 dst_rc=1
	if ! start_dest "$name" "${COMMON[@]}" "${dargs[@]}"; then
		diag "$name: backup did not start"
		wait_dest "$name" 1
		dst_rc=$?
		load "$name"
		return
	fi
	"$VMM" source --connect "$HOST:$dest_port" --timeout "$TIMEOUT" \
		--json "${COMMON[@]}" --mc-delay 50 "${sargs[@]}" >"$tmp/$name.src" 2>&1
	src_rc=$?
	wait_dest "$name" $((src_rc == 0 ? TIMEOUT : 10))
	dst_rc=$?
	load "$name"
}

# backup_is_epoch NAME MIN MAX: the backup's RAM is whole epoch E, MIN <=
# E <= MAX, byte for byte what the primary had when it took E.
backup_is_epoch()
{
	local name=$1 min=$2 max=$3 e=${D_mc_committed:-} ok=0
	diag "$name: backup committed $e epochs (events ${D_mc_commit_events:-}," \
		"discarded unfinished: ${D_mc_discarded:-}), its state says epoch" \
		"${D_state_epoch:-}, RAM digest ${D_digest:-}; reason: ${D_reason:-}"
	[[ "$e" =~ ^[0-9]+$ ]] || { diag "$name: no backup summary"; show_output "$name"; return 1; }
	[ "$e" -ge "$min" ] && [ "$e" -le "$max" ] ||
		{ diag "$name: backup at epoch $e, not $min..$max"; ok=1; }
	[ "${D_consistent:-}" = true ] ||
		{ diag "$name: backup's RAM is not the epoch its state describes"; ok=1; }
	[ -n "${digest[$e]:-}" ] && [ "${digest[$e]}" = "$D_digest" ] ||
		{ diag "$name: primary's digest of epoch $e: '${digest[$e]:-}', backup's RAM: $D_digest"; ok=1; }
	[ $ok = 0 ] || show_output "$name"
	return $ok
}

# pauses NAME: what the primary measured, for the record.
pauses()
{
	diag "$1: epochs ${S_mc_epochs:-} acked ${S_mc_acked:-}, ${S_mc_epochs_per_s:-}" \
		"epochs/s, pages ${S_mc_pages:-} (${S_mc_dirty:-} dirty), guest stopped avg" \
		"${S_mc_pause_us_avg:-} us max ${S_mc_pause_us_max:-} us (snapshot avg" \
		"${S_mc_snapshot_us_avg:-} us max ${S_mc_snapshot_us_max:-} us), acknowledged" \
		"${S_mc_ack_us_last:-} us after the snapshot (max ${S_mc_ack_us_max:-} us);" \
		"setup ${S_setup_ms:-} ms, total ${S_total_ms:-} ms"
}

# all_acked NAME N: both ends ran N epochs to completion, in order.
all_acked()
{
	local name=$1 n=$2 ok=0
	[ "$src_rc" = 0 ] || { diag "$name: primary exited $src_rc"; ok=1; }
	[ "$dst_rc" = 0 ] || { diag "$name: backup exited $dst_rc"; ok=1; }
	[ "${S_mc_epochs:-}" = "$n" ] && [ "${S_mc_acked:-}" = "$n" ] &&
		[ "${S_mc_acked_events:-}" = "$n" ] ||
		{ diag "$name: primary: epochs, acknowledged, ACKED events not all $n"; ok=1; }
	[ -z "${S_mc_problem:-}" ] || { diag "$name: primary: $S_mc_problem"; ok=1; }
	[ "${D_mc_committed:-}" = "$n" ] && [ "${D_mc_commit_events:-}" = "$n" ] ||
		{ diag "$name: backup: committed or COMMITTED events not $n"; ok=1; }
	[ "$(( ${S_caps:-0} >> 5 & 1 ))" = 1 ] && [ "$(( ${D_caps:-0} >> 5 & 1 ))" = 1 ] ||
		{ diag "$name: RDMAMIG_CAP_MC not negotiated"; ok=1; }
	[ $ok = 0 ] || show_output "$name"
	return $ok
}

# 1. Epochs with commit.
mc_run commit -- --mc-epochs 30 --mc-rate 1000
pauses commit
ktap_result "commit: 30 epochs acknowledged and committed in order" all_acked commit 30
ktap_result "commit: the backup's RAM is the primary's snapshot of epoch 30" \
	backup_is_epoch commit 30 30

# 2. Bad arguments change nothing.
bad_ok()
{
	local ok=0
	diag "badcalls: errnos ${S_bad_errnos:-}, all-RAM epoch ${S_big_errno:-}"
	[ "${S_bad_errnos:-}" = "22 22 22 22 22 22 22 22 22 22" ] ||
		{ diag "badcalls: not EINVAL every time"; ok=1; }
	[ "${S_big_errno:-}" = 28 ] ||
		{ diag "badcalls: an epoch larger than the staging did not fail with ENOSPC"; ok=1; }
	all_acked badcalls 10 || ok=1
	[ ${#digest[@]} = 10 ] && [ -n "${digest[1]:-}" ] ||
		{ diag "badcalls: the first good epoch is not epoch 1"; ok=1; }
	[ $ok = 0 ] || show_output badcalls
	return $ok
}
if [ -w "$STAGING" ]; then
	echo 16 > "$STAGING"	# the primary asks for 16 MiB: less than the RAM
	mc_run badcalls -- --mc-epochs 10 --mc-rate 1000 --mc-bad-calls
	echo 64 > "$STAGING"
	ktap_result "badcalls: EINVAL and ENOSPC, no epoch taken, then 10 epochs" bad_ok
	ktap_result "badcalls: the backup's RAM is the primary's snapshot of epoch 10" \
		backup_is_epoch badcalls 10 10
else
	ktap_skip "badcalls: EINVAL and ENOSPC" "no $STAGING"
	ktap_skip "badcalls: backup's RAM" "no $STAGING"
fi

# 3. The primary exits with epochs on their way.
mc_run exit -- --mc-epochs 30 --mc-rate 20000 --mc-exit-after 12
# The backup fails, and fails over (rdmamig-vmm's default): its guest
# ran from the committed epoch, and it exited 0.
cut_ok()
{
	local name=$1 ok=0
	[ "$dst_rc" = 0 ] || { diag "$name: backup exited $dst_rc, not 0 (failed over)"; ok=1; }
	[ "${D_completed:-}" = false ] ||
		{ diag "$name: backup completed"; ok=1; }
	[ "${D_failover:-}" = true ] && [ "${D_run_consistent:-}" = true ] ||
		{ diag "$name: no failover (${D_failover_skipped:-}), or its guest did not run"; ok=1; }
	return $ok
}
ktap_result "exit: the backup fails when the primary is gone, and takes over" cut_ok exit
ktap_result "exit: the backup keeps epoch 10..12 whole" backup_is_epoch exit 10 12

# 4. The primary killed while epochs flow.
kill_case()
{
	local n
	if ! start_dest kill "${COMMON[@]}"; then
		wait_dest kill 1
		dst_rc=$?
		return
	fi
	"$VMM" source --connect "$HOST:$dest_port" --timeout "$TIMEOUT" \
		--json "${COMMON[@]}" --mc-delay 50 --mc-epochs 1000 --mc-rate 20000 \
		>"$tmp/kill.src" 2>&1 &
	src_pid=$!
	wait_for 90 sh -c "[ \"\$(grep -c '^{\"mc_epoch\"' $tmp/kill.src)\" -ge 8 ] ||
		! kill -0 $src_pid" || diag "kill: fewer than 8 epochs taken"
	kill -9 "$src_pid" 2>/dev/null
	wait "$src_pid" 2>/dev/null
	src_pid=
	wait_dest kill 10
	dst_rc=$?
	load kill
	n=${#digest[@]}
	diag "kill: the primary had taken $n epochs"
	kill_max=$n
	kill_min=$(( kill_max > 2 ? kill_max - 2 : 0 ))
}
kill_case
ktap_result "kill: the backup fails when the primary is killed, and takes over" cut_ok kill
ktap_result "kill: the backup keeps one of the last epochs whole" \
	backup_is_epoch kill "$kill_min" "$kill_max"

# 5. The backup cancels in the middle.
mc_run cancel --mc-cancel-after 6 -- --mc-epochs 30 --mc-rate 20000
# The primary's session fails: it has lost its backup and runs on
# unprotected (exit 0); the backup, which cancelled, does not take over.
cancel_ok()
{
	local ok=0
	[ "$src_rc" = 0 ] && [ "${S_unprotected:-}" = true ] ||
		{ diag "cancel: primary exited $src_rc, unprotected ${S_unprotected:-}"; ok=1; }
	[ "${D_cancelled:-}" = true ] && [ "${D_failover:-}" = false ] ||
		{ diag "cancel: the backup did not cancel, or took over"; ok=1; }
	return $ok
}
ktap_result "cancel: the backup's cancel fails the primary, which runs on unprotected" cancel_ok
ktap_result "cancel: the backup is at epoch 6 or 7, whole" backup_is_epoch cancel 6 7

ktap_finish
