#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Micro-checkpointing's failover and backup loss with the example VMM
# (rdmamig-vmm --mc): cycles of one backup and one primary (8 MiB, an
# epoch every 50 ms, --mc-rate 20000 pages/s: epochs of 3 MiB and more,
# on the wire most of the time: an epoch that waits for the one before
# to be acknowledged grows), a 1000 ms keepalive at both ends, and at
# a random moment once three epochs were taken (0 to 400 ms later; the
# seed is printed, RDMAMIG_MC_SEED repeats it), one of:
#
#   cut      the primary dies silently (pair only): the backup's VM drops
#            every packet both ways (cut_link: 100 % netem loss out, a
#            matchall drop in), so that nothing, not even a disconnect,
#            reaches the backup and its keepalive must find the silence.
#            The cut is made on the backup's VM so that its clock times
#            both the death and the guest's start; on the wire it is the
#            same as a dead primary host.  (SIGSTOP of the primary would
#            silence nothing: the module's keepalive and its epoch work
#            run in the kernel.  SIGKILL closes the session, and the
#            backup learns at once: that is pkill.)  The primary, cut off
#            too, loses its backup the same way and runs on unprotected.
#   pkill    the primary SIGKILLed: its close disconnects the backup
#   kill     the backup SIGKILLed (backup lost, at once)
#   cutkill  the backup's VM silenced (100 % netem loss on its egress),
#            then the backup SIGKILLed (backup lost silently, pair only)
#
# After a primary's death (cut, pkill), each time:
#   - the backup failed over: its RAM is exactly the last epoch it
#     committed (its own digest of every page against the digest the
#     primary put in that epoch's device state, which it checks), and
#     that is the primary's digest for that epoch number (the primary's
#     per-epoch JSON lines); after a cut, the epoch is one the primary
#     had acknowledged, or the next (the MC_ACK lost in the cut);
#   - its guest then ran: pages written, the digest it kept equal to the
#     digest of its pages, and changed; the backup exited 0;
#   - cut: the backup failed with ETIMEDOUT "peer silent", not before
#     the cut, and its guest ran within two keepalive intervals and a
#     second (the kernel's bound for the silence) plus KA_SLACK_MS of
#     the cut (after tc returned), by the backup's VM's clock; pkill: the
#     guest ran within the same bound of the last commit the backup saw
#     (its own failover_ms);
#   - cut: the primary lost its backup: unprotected, with the FAILED
#     event and the reason, its guest ran on, exit 0.  Its error is
#     ETIMEDOUT as a rule; tc cuts the ingress first and the egress
#     next, and a VM that stalls in between (TCG on a busy host) may let
#     the failed backup's disconnection out: "peer disconnected".
# After a backup's loss (kill, cutkill): the primary reports unprotected
# with the FAILED event, the reason (cutkill: ETIMEDOUT "peer silent":
# only the egress is cut there, before the kill, so nothing of the
# backup, not even its close, reaches the primary) and the last epoch
# acknowledged, its guest ran on, it exited 0.
# Then nothing leaks on either VM: no session, the FOLL_PIN count and
# the module's references back, rmmod works.
#
# Pair topology: the backups run on VM B, one after the other, in one
# request (this script with --backup-side), and take their orders from
# files on the share both VMs mount ($RDMAMIG_OUT); the primaries run
# here.  RDMAMIG_MC_DEATHS silent deaths (20), RDMAMIG_MC_KILLS primary
# SIGKILLs (3), then kill and cutkill.  Loop topology: both ends here,
# and no cut (rxe loops local traffic back before the qdisc): 6 pkill
# and a kill.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/vmm_lib.sh"

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
LOCAL_ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
TIMEOUT=${RDMAMIG_MC_TIMEOUT:-60}
KA=1000		# keepalive, ms: see faults_test.sh for why not 500
KA_SLACK_MS=${RDMAMIG_KA_SLACK_MS:-500}
STAGING=/sys/module/rdmamig/parameters/mc_staging_mb
MC=(--size 8 --blocks 2 --mc --keepalive "$KA" --mc-rate 20000 --mc-run-ms 300)

# ---- the backups' side --------------------------------------------------

# nap: 50 ms without an exec (a read that times out on a FIFO of ours).
nap_init()
{
	local fifo
	fifo=$(mktemp -u)
	mkfifo "$fifo" && exec {napfd}<>"$fifo" && rm -f "$fifo"
}

nap()
{
	read -r -t "${1:-0.05}" -u "$napfd" _ || true
}

# put FILE TEXT: FILE appears whole (the other VM polls for it).
put()
{
	echo "$2" > "$1.tmp" && mv "$1.tmp" "$1"
}

# backup_side DIR N DEST-ARGS...: N backups, one after the other, each
# `rdmamig-vmm dest DEST-ARGS --port-file DIR/I.port` (output DIR/I.dst,
# DIR/I.err).  Once DIR/I.go appears it obeys it: cut (this VM drops
# everything, both ways; the times before and after in DIR/I.cut), kill
# (SIGKILL the backup), cutkill (this VM sends nothing, then SIGKILL),
# anything else nothing.  Once the backup exited, and after a cut the
# primary's side wrote DIR/I.uncut, the link is whole again and DIR/I.rc
# has the exit status.  DIR/stop ends it.
backup_side()
{
	local dir=$1 n=$2 i pid order t0 rc
	shift 2
	nap_init
	ulimit -l unlimited 2>/dev/null
	for ((i = 1; i <= n; i++)); do
		[ -e "$dir/stop" ] && break
		"$VMM" dest --port-file "$dir/$i.port" "$@" >"$dir/$i.dst" 2>"$dir/$i.err" &
		pid=$!
		order=
		while kill -0 "$pid" 2>/dev/null && [ ! -e "$dir/$i.go" ] && [ ! -e "$dir/stop" ]; do
			nap
		done
		[ -e "$dir/$i.go" ] && read -r order < "$dir/$i.go"
		t0=$EPOCHREALTIME
		case $order in
		cut) cut_link on ;;
		cutkill) tc qdisc replace dev "$RDMAMIG_NETDEV" root netem loss 100% ;;
		esac
		[[ $order == cut* ]] && put "$dir/$i.cut" "$t0 $EPOCHREALTIME"
		[[ $order == *kill ]] && kill -9 "$pid"
		wait "$pid" 2>/dev/null
		rc=$?
		if [[ $order == cut* ]]; then
			for ((t0 = 0; t0 < 1200; t0++)); do
				[ -e "$dir/$i.uncut" ] || [ -e "$dir/stop" ] && break
				nap
			done
			if [ "$order" = cut ]; then
				cut_link off
			else
				tc qdisc del dev "$RDMAMIG_NETDEV" root
			fi
		fi
		put "$dir/$i.rc" "$rc"
	done
}

if [ "${1:-}" = --backup-side ]; then
	shift
	backup_side "$@"
	exit
fi

# ---- the test (VM A) ------------------------------------------------------

require_root
topology=${RDMAMIG_TOPOLOGY:-loop}
require_vmm_testbed
command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit $KSFT_SKIP; }
if [ "$topology" = pair ]; then
	if ! modprobe sch_netem || ! "$RDMAMIG_PEER" modprobe sch_netem >/dev/null; then
		echo "1..0 # SKIP no sch_netem module"
		exit $KSFT_SKIP
	fi
	HOST=$RDMAMIG_PEER_ADDR
	DEATHS=${RDMAMIG_MC_DEATHS:-20}
	KILLS=${RDMAMIG_MC_KILLS:-3}
else
	HOST=$LOCAL_ADDR
	DEATHS=0
	KILLS=${RDMAMIG_MC_KILLS:-6}
fi
# Not $$: a guest boots the same way every time, and its pids with it.
SEED=${RDMAMIG_MC_SEED:-$((SRANDOM % 100000))}
RANDOM=$SEED

tmp=$(mktemp -d)
if [ "$topology" = pair ]; then
	dir=$RDMAMIG_OUT/mc_failover.$$
else
	dir=$tmp/side
fi
mkdir -p "$dir"
side_id=
side_pid=
src_pid=
saved_staging=$(cat "$STAGING" 2>/dev/null)
cleanup()
{
	[ -n "$src_pid" ] && kill -9 "$src_pid" 2>/dev/null
	touch "$dir/stop"
	if [ -n "$side_id" ]; then
		"$RDMAMIG_PEER" --wait "$side_id" >/dev/null 2>&1
		"$RDMAMIG_PEER" bash -c "tc qdisc del dev $RDMAMIG_NETDEV root;
			tc qdisc del dev $RDMAMIG_NETDEV ingress" >/dev/null 2>&1
	fi
	[ -n "$side_pid" ] && wait "$side_pid" 2>/dev/null
	[ -n "$saved_staging" ] && [ -w "$STAGING" ] && echo "$saved_staging" > "$STAGING"
	rm -rf "$tmp" "$dir"
}
trap cleanup EXIT

ktap_plan 14
diag "topology $topology, $DEATHS silent deaths, $KILLS primary kills, keepalive $KA ms, seed $SEED"
ulimit -l unlimited 2>/dev/null || diag "ulimit -l unlimited: not permitted"
# The primary asks for the staging: 8 MiB holds any epoch of 8 MiB of RAM.
[ -w "$STAGING" ] && echo 8 > "$STAGING"

foll_pins()
{
	awk '/^nr_foll_pin_acquired/ {a = $2} /^nr_foll_pin_released/ {r = $2}
	     END {print a - r}' /proc/vmstat
}
# The leak figures of VM B: sessions, FOLL_PIN count, module references.
PEER_LEAKS="source $TOP/selftests/rdmamig/lib.sh
	echo \$(\"\$RDMAMIGCTL\" -j session list | jq length)
	awk '/^nr_foll_pin_acquired/ {a = \$2} /^nr_foll_pin_released/ {r = \$2} END {print a - r}' /proc/vmstat
	module_refcnt rdmamig"
pins_before=$(foll_pins)
ref_before=$(module_refcnt rdmamig)
[ "$topology" = pair ] && peer_before=$("$RDMAMIG_PEER" bash -c "$PEER_LEAKS" | tr '\n' ' ')

# The cycles' orders, in turn.
orders=()
for ((i = 0; i < DEATHS; i++)); do orders+=(cut); done
for ((i = 0; i < KILLS; i++)); do orders+=(pkill); done
orders+=(kill)
[ "$topology" = pair ] && orders+=(cutkill)
ncycles=${#orders[@]}

DEST_ARGS=(--listen "$HOST:0" --timeout "$TIMEOUT" --json "${MC[@]}")
if [ "$topology" = pair ]; then
	side_id=$("$RDMAMIG_PEER" --bg env RDMAMIG_VMM="$VMM" \
		"$TOP/selftests/rdmamig/mc_failover_test.sh" \
		--backup-side "$dir" "$ncycles" "${DEST_ARGS[@]}")
else
	backup_side "$dir" "$ncycles" "${DEST_ARGS[@]}" &
	side_pid=$!
fi
nap_init

# epochs_taken FILE: the primary's epoch lines so far, in $taken.
epochs_taken()
{
	local l
	taken=0
	while IFS= read -r l; do
		[[ $l == '{"mc_epoch"'* ]] && taken=$((taken + 1))
	done < "$1"
}

# wait_file SECONDS FILE: FILE exists (without a sleep(1) per look).
wait_file()
{
	local i
	for ((i = 0; i < $1 * 20; i++)); do
		[ -e "$2" ] && return 0
		nap
	done
	return 1
}

src_exited()
{
	! kill -0 "$src_pid" 2>/dev/null
}

# cycle I ORDER: one primary against the I-th backup; ORDER is the
# backup side's (cut, kill, cutkill) or pkill (SIGKILL the primary).
declare -A src_rc delay_ms t_kill
cycle()
{
	local i=$1 order=$2 port k
	if ! wait_file 60 "$dir/$i.port"; then
		diag "cycle $i: no backup listening"
		src_rc[$i]=-
		put "$dir/$i.go" none
		wait_file 30 "$dir/$i.rc"
		return
	fi
	read -r port < "$dir/$i.port"
	: > "$tmp/$i.src"
	"$VMM" source --connect "$HOST:$port" --timeout "$TIMEOUT" --json "${MC[@]}" \
		--mc-delay 50 --mc-epochs 100000 >"$tmp/$i.src" 2>"$tmp/$i.err" &
	src_pid=$!
	for ((k = 0; k < 1200; k++)); do
		epochs_taken "$tmp/$i.src"
		[ "$taken" -ge 3 ] || src_exited && break
		nap
	done
	delay_ms[$i]=$((RANDOM % 400))
	nap "$(printf '%d.%03d' $((delay_ms[$i] / 1000)) $((delay_ms[$i] % 1000)))"
	if [ "$order" = pkill ]; then
		t_kill[$i]=$EPOCHREALTIME
		# Reaped at once: bash reports a killed job on stderr otherwise.
		{ kill -9 "$src_pid" && wait "$src_pid"; } 2>/dev/null
	fi
	# The backup side's orders: a primary's SIGKILL is none of its business.
	put "$dir/$i.go" "${order/pkill/none}"
	for ((k = 0; k < 600; k++)); do
		src_exited && break
		nap
	done
	kill -9 "$src_pid" 2>/dev/null
	wait "$src_pid" 2>/dev/null
	src_rc[$i]=$?
	src_pid=
	put "$dir/$i.uncut" 1
	wait_file 60 "$dir/$i.rc" || diag "cycle $i: the backup side did not finish"
}

t0=$SECONDS
for ((i = 1; i <= ncycles; i++)); do
	cycle "$i" "${orders[i - 1]}"
done
t_cycles=$((SECONDS - t0))

# Every output in one jq (an exec costs up to a second under TCG):
# S[I.field] from primary I's summary, D[I.field] from backup I's,
# dg[I.E] the digest primary I printed for epoch E.
declare -A S D dg drc
for ((i = 1; i <= ncycles; i++)); do
	[ -s "$dir/$i.dst" ] && cp "$dir/$i.dst" "$tmp/$i.dst"
	read -r drc[$i] < "$dir/$i.rc" 2>/dev/null || drc[$i]=-
done
eval "$(jq -rR '(input_filename | capture("(?<i>[0-9]+)\\.(?<k>src|dst)$")) as $m
	| (fromjson? // empty) | select(type == "object")
	| if has("mc_epoch") then "dg[\($m.i).\(.mc_epoch)]=\(.digest)"
	  else to_entries[] | select(.value | type != "object" and type != "array")
	    | "\(if $m.k == "src" then "S" else "D" end)[\($m.i).\(.key)]=\(.value | tostring | @sh)"
	  end' "$tmp"/*.src "$tmp"/*.dst 2>/dev/null)"

# Microseconds from $EPOCHREALTIME's "s.us".
us() { echo "${1/./}"; }

show()
{
	local f
	for f in "$tmp/$1.src" "$tmp/$1.err" "$dir/$1.dst" "$dir/$1.err"; do
		[ -s "$f" ] && tail -n 3 "$f" | cut -c1-600 | sed "s|^|# ${f##*/}: |"
	done
}

# backup_took_over I: the backup failed over from its committed epoch E,
# its RAM that epoch and the primary's digest of E; its guest ran.
backup_took_over()
{
	local i=$1 e=${D[$1.mc_committed]:-} ok=0
	[[ $e =~ ^[0-9]+$ ]] && [ "$e" -ge 1 ] ||
		{ diag "cycle $i: backup: no committed epoch (${D[$i.failover_skipped]:-no summary})"; show "$i"; return 1; }
	[ "${D[$i.failover]:-}" = true ] && [ "${D[$i.failover_epoch]:-}" = "$e" ] ||
		{ diag "cycle $i: backup did not fail over from epoch $e: ${D[$i.failover_skipped]:-}"; ok=1; }
	[ "${D[$i.consistent]:-}" = true ] ||
		{ diag "cycle $i: backup's RAM is not the epoch its state describes"; ok=1; }
	[ -n "${dg[$i.$e]:-}" ] && [ "${dg[$i.$e]}" = "${D[$i.digest]:-}" ] ||
		{ diag "cycle $i: primary's digest of epoch $e '${dg[$i.$e]:-}', backup's RAM ${D[$i.digest]:-}"; ok=1; }
	[ "${D[$i.run_consistent]:-}" = true ] && [ "${D[$i.run_pages_written]:-0}" -gt 0 ] ||
		{ diag "cycle $i: the backup's guest did not run consistently (${D[$i.run_pages_written]:-} pages)"; ok=1; }
	[ "${drc[$i]}" = 0 ] || { diag "cycle $i: backup exited ${drc[$i]}"; ok=1; }
	[ $ok = 0 ] || show "$i"
	return $ok
}

# acked_bound I: after a cut the primary lived on: the backup's epoch is
# one it had acknowledged, or the next.
acked_bound()
{
	local i=$1 e=${D[$1.mc_committed]:-x} a=${S[$1.mc_acked]:-x}
	[[ $e$a =~ ^[0-9]+$ ]] && [ "$e" -ge "$a" ] && [ "$e" -le $((a + 1)) ] && return 0
	diag "cycle $i: backup at epoch $e, primary's last acknowledged $a"
	return 1
}

# primary_unprotected I [ERROR]: it lost its backup, ran on and exited 0.
primary_unprotected()
{
	local i=$1 ok=0
	[ "${src_rc[$i]}" = 0 ] || { diag "cycle $i: primary exited ${src_rc[$i]}"; ok=1; }
	[ "${S[$i.unprotected]:-}" = true ] && [ "${S[$i.failed_event]:-}" = true ] &&
		[ -n "${S[$i.unprotected_reason]:-}" ] ||
		{ diag "cycle $i: primary: unprotected ${S[$i.unprotected]:-}, FAILED event ${S[$i.failed_event]:-}, reason '${S[$i.unprotected_reason]:-}'"; ok=1; }
	[ -z "${2:-}" ] || [ "${S[$i.unprotected_error]:-}" = "$2" ] ||
		{ diag "cycle $i: primary's error ${S[$i.unprotected_error]:-}, not $2"; ok=1; }
	[ "${S[$i.unprotected_consistent]:-}" = true ] && [ "${S[$i.unprotected_pages_written]:-0}" -gt 0 ] ||
		{ diag "cycle $i: primary's guest did not run on consistently"; ok=1; }
	[ $ok = 0 ] || show "$i"
	return $ok
}

# Per order, the cycles that pass a check: all_cycles ORDER CHECK ARGS...
all_cycles()
{
	local order=$1 i n=0 bad=0
	shift
	for ((i = 1; i <= ncycles; i++)); do
		[ "${orders[i - 1]}" = "$order" ] || continue
		n=$((n + 1))
		"$@" "$i" || bad=$((bad + 1))
	done
	diag "$order: $((n - bad)) of $n"
	[ "$n" -gt 0 ] && [ $bad = 0 ]
}

with_error() { primary_unprotected "$2" "$1"; }

# cut_timing I: the backup failed by its keepalive, not before the cut,
# and its guest ran within 2 x KA + 1 s (+ slack) of it.
declare -a fo_cut fo_commit
cut_timing()
{
	local i=$1 c0 c1 failed run bound=$((2 * KA + 1000 + KA_SLACK_MS)) ok=0
	read -r c0 c1 < "$dir/$i.cut" 2>/dev/null ||
		{ diag "cycle $i: no cut times"; return 1; }
	failed=${D[$i.failed_at_us]:-0} run=${D[$i.running_at_us]:-0}
	fo_cut+=($(((run - $(us "$c1")) / 1000)))
	fo_commit+=("${D[$i.failover_ms]:-?}")
	diag "cycle $i: cut ${delay_ms[$i]} ms after epoch 3 (tc $((($(us "$c1") - $(us "$c0")) / 1000)) ms)," \
		"done $((($(us "$c1") - ${D[$i.last_commit_at_us]:-0}) / 1000)) ms after the backup's last" \
		"commit (the primary's epochs took ${S[$i.mc_ack_us_last]:-?} us to acknowledge, last)," \
		"backup failed $(((failed - $(us "$c1")) / 1000)) ms and ran" \
		"$(((run - $(us "$c1")) / 1000)) ms after it; from its last commit" \
		"${D[$i.failover_ms]:-?} ms (detect ${D[$i.failover_detect_ms]:-?}, activate" \
		"${D[$i.failover_activate_ms]:-?}); epoch ${D[$i.mc_committed]:-?}" \
		"(primary acked ${S[$i.mc_acked]:-?}, took ${S[$i.mc_epochs]:-?}," \
		"backup discarded ${D[$i.mc_discarded]:-?}); ${D[$i.reason]:-}"
	[ "${D[$i.error]:-}" = 110 ] && [[ ${D[$i.reason]:-} == *"peer silent"* ]] ||
		{ diag "cycle $i: backup's error ${D[$i.error]:-} '${D[$i.reason]:-}', not ETIMEDOUT peer silent"; ok=1; }
	[ "$failed" -ge "$(us "$c0")" ] ||
		{ diag "cycle $i: backup failed before the cut"; ok=1; }
	[ "$run" -gt 0 ] && [ $(((run - $(us "$c1")) / 1000)) -le $bound ] ||
		{ diag "cycle $i: guest ran $(((run - $(us "$c1")) / 1000)) ms after the cut, bound $bound"; ok=1; }
	return $ok
}

# kill_timing I: the guest ran within 2 x KA + 1 s of the backup's last
# commit (the disconnect is seen at once).
kill_timing()
{
	local i=$1 bound=$((2 * KA + 1000 + KA_SLACK_MS)) fo=${D[$1.failover_ms]:-x} msg=
	[ "$topology" = loop ] && [ -n "${t_kill[$i]:-}" ] && [ -n "${D[$i.running_at_us]:-}" ] &&
		msg=", $(((${D[$i.running_at_us]} - $(us "${t_kill[$i]}")) / 1000)) ms after the kill"
	diag "cycle $i: killed ${delay_ms[$i]} ms after epoch 3; backup ran from epoch" \
		"${D[$i.mc_committed]:-?} $fo ms after its last commit$msg (detect" \
		"${D[$i.failover_detect_ms]:-?}, activate ${D[$i.failover_activate_ms]:-?});" \
		"${D[$i.reason]:-}"
	[[ $fo =~ ^[0-9]+$ ]] && [ "$fo" -le $bound ] ||
		{ diag "cycle $i: failover $fo ms, bound $bound"; return 1; }
}

diag "$ncycles cycles in $t_cycles s"
if [ "$DEATHS" -gt 0 ]; then
	ktap_result "cut x $DEATHS: the backup fails over from its committed epoch, the primary's digest of it" \
		all_cycles cut backup_took_over
	ktap_result "cut x $DEATHS: that epoch is one the primary acknowledged, or the next" \
		all_cycles cut acked_bound
	ktap_result "cut x $DEATHS: ETIMEDOUT, not before the cut; guest running within 2 x $KA ms + 1 s (+ $KA_SLACK_MS) of it" \
		all_cycles cut cut_timing
	diag "failover after the cut, ms: ${fo_cut[*]}"
	diag "failover after the last commit (the backup's failover_ms), ms: ${fo_commit[*]}"
	ktap_result "cut x $DEATHS: the primary loses its backup, runs on unprotected, exits 0" \
		all_cycles cut primary_unprotected
	n=0
	for ((i = 1; i <= DEATHS; i++)); do
		[ "${S[$i.unprotected_error]:-}" = -110 ] && n=$((n + 1))
	done
	diag "cut: $n of $DEATHS primaries failed with ETIMEDOUT, the others with" \
		"$(for ((i = 1; i <= DEATHS; i++)); do
			[ "${S[$i.unprotected_error]:-}" = -110 ] || echo -n "${S[$i.unprotected_error]:-?} "
		done)"
else
	for c in "failover from the committed epoch" "acknowledged epoch" "timing" "primary unprotected"; do
		ktap_skip "cut: $c" "loop topology: rxe loops local traffic back before the qdisc"
	done
fi
ktap_result "pkill x $KILLS: the backup fails over from its committed epoch, the primary's digest of it" \
	all_cycles pkill backup_took_over
ktap_result "pkill x $KILLS: guest running within 2 x $KA ms + 1 s (+ $KA_SLACK_MS) of the last commit" \
	all_cycles pkill kill_timing
ktap_result "kill: the primary loses its backup at once, runs on unprotected, exits 0" \
	all_cycles kill primary_unprotected
if [ "$topology" = pair ]; then
	ktap_result "cutkill: the primary loses its backup by keepalive (ETIMEDOUT), runs on unprotected, exits 0" \
		all_cycles cutkill with_error -110
else
	ktap_skip "cutkill: backup lost silently" "loop topology"
fi
for ((i = 1; i <= ncycles; i++)); do
	case ${orders[i - 1]} in kill|cutkill)
		diag "cycle $i (${orders[i - 1]} ${delay_ms[$i]} ms after epoch 3): primary" \
			"${S[$i.unprotected_in]:-?}: error ${S[$i.unprotected_error]:-?}" \
			"'${S[$i.unprotected_reason]:-}', last acknowledged ${S[$i.mc_acked]:-?}" \
			"of ${S[$i.mc_epochs]:-?}, guest stopped ${S[$i.unprotected_pause_us]:-?} us" \
			"in that call, then wrote ${S[$i.unprotected_pages_written]:-?} pages"
	esac
done

# ---- leaks ------------------------------------------------------------
touch "$dir/stop"
if [ -n "$side_id" ]; then
	"$RDMAMIG_PEER" --wait "$side_id" >/dev/null 2>&1
	side_id=
fi
[ -n "$side_pid" ] && wait "$side_pid" 2>/dev/null
side_pid=
no_session() { "$RDMAMIGCTL" -j session list | jq -e 'length == 0' >/dev/null; }
ktap_result "no session left here" wait_for 10 no_session
pins_back() { [ "$(foll_pins)" = "$pins_before" ]; }
ktap_result "FOLL_PIN count back to $pins_before here" wait_for 5 pins_back
ktap_result "module references back to $ref_before here" test "$(module_refcnt rdmamig)" = "$ref_before"
[ -n "$saved_staging" ] && echo "$saved_staging" > "$STAGING"
ktap_result "rmmod rdmamig works here" rmmod rdmamig
module_load
if [ "$topology" = pair ]; then
	peer_after=$("$RDMAMIG_PEER" bash -c "$PEER_LEAKS" | tr '\n' ' ')
	diag "VM B: sessions, FOLL_PIN count, module references: before ${peer_before:-?}, after ${peer_after:-?}"
	peer_clean() { [[ $peer_after =~ ^0\  ]] && [ "${peer_after#0 }" = "${peer_before#* }" ]; }
	ktap_result "VM B: no session, FOLL_PIN count and module references back" peer_clean
	peer_rmmod() { "$RDMAMIG_PEER" bash -c \
		"source $TOP/selftests/rdmamig/lib.sh; rmmod rdmamig && module_load" >/dev/null; }
	ktap_result "VM B: rmmod rdmamig works" peer_rmmod
else
	ktap_skip "VM B: no session, pins and references back" "loop topology"
	ktap_skip "VM B: rmmod rdmamig works" "loop topology"
fi
ktap_finish
