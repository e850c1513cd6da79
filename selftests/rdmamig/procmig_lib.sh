# SPDX-License-Identifier: GPL-2.0
#
# procmig_lib.sh: what the tests of a process's migration by pid share
# (process_migrate_test.sh, postcopy_pid_test.sh, mc_pid_test.sh,
# mc_netbuf_test.sh): their
# set-up and clean-up, running things here or on the peer VM, process
# states, the workload and a stopped twin of it, and reading the outputs.
# The caller sources lib.sh first, sets WORKLOAD, SIZE (MiB) and
# LOCAL_ADDR, and calls procmig_setup, which sets topology, dir (the
# scratch directory) and DEST_ADDR.

declare -A bg_pid=()	# loop: name -> pid; pair: name -> peer request id
local_pids=()

on_peer()
{
	if [ "$topology" = pair ]; then
		"$RDMAMIG_PEER" "$@"
	else
		"$@"
	fi
}

# peer_bg NAME CMD...: start CMD on the peer, its output in $dir/NAME.out
# and $dir/NAME.err once peer_wait collected it.
peer_bg()
{
	local name=$1
	shift
	if [ "$topology" = pair ]; then
		bg_pid[$name]=$("$RDMAMIG_PEER" --bg "$@") || return 1
	else
		"$@" >"$dir/$name.out" 2>"$dir/$name.err" &
		bg_pid[$name]=$!
	fi
}

# peer_wait NAME: its exit status.
peer_wait()
{
	local name=$1 rc
	[ -n "${bg_pid[$name]:-}" ] || return 125
	if [ "$topology" = pair ]; then
		"$RDMAMIG_PEER" --wait "${bg_pid[$name]}" >"$dir/$name.out" 2>"$dir/$name.err"
		rc=$?
	else
		wait "${bg_pid[$name]}" 2>/dev/null
		rc=$?
	fi
	unset "bg_pid[$name]"
	return $rc
}

# state PID / peer_state PID: the process's state letter (R, S, T, ...).
state()
{
	cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null || echo -
}

peer_state()
{
	on_peer cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null || echo -
}

# start_twin NAME SIZE: a twin on the peer, stopped; sets twin_pid.
start_twin()
{
	local name=$1 size=$2
	rm -f "$dir/$name.pid" "$dir/$name.hb"
	peer_bg "$name" "$WORKLOAD" --twin --size "$size" --rate 1 \
		--pid-file "$dir/$name.pid" --heartbeat "$dir/$name.hb" || return 1
	wait_for 60 test -s "$dir/$name.pid" || return 1
	twin_pid=$(<"$dir/$name.pid")
	# It stops itself right after writing its pid.
	on_peer timeout 30 bash -c "until grep -q '^State:.*T' /proc/$twin_pid/status; do sleep 0.1; done"
}

# procmig_setup NAME PROG...: skip the whole test unless every PROG is
# built, jq is installed, a pair run has its peer and the module loads;
# then dir ($RDMAMIG_OUT/NAME.PID in the testbed, which both VMs see),
# DEST_ADDR (where the destination listens), no RLIMIT_MEMLOCK, and the
# clean-up on exit.
procmig_setup()
{
	local name=$1 prog
	shift
	for prog in "$@"; do
		if [ ! -x "$prog" ]; then
			echo "1..0 # SKIP $prog not built (make tools selftests)"
			exit "$KSFT_SKIP"
		fi
	done
	command -v jq >/dev/null || { echo "1..0 # SKIP jq not installed"; exit "$KSFT_SKIP"; }
	topology=${RDMAMIG_TOPOLOGY:-loop}
	if [ "$topology" = pair ] && [ -z "${RDMAMIG_PEER:-}" ]; then
		echo "1..0 # SKIP pair topology without \$RDMAMIG_PEER"
		exit "$KSFT_SKIP"
	fi
	module_load || { echo "1..0 # SKIP rdmamig module does not load"; exit "$KSFT_SKIP"; }
	if [ -n "${RDMAMIG_OUT:-}" ]; then
		dir=$RDMAMIG_OUT/$name.$$
		mkdir -p "$dir"
	else
		dir=$(mktemp -d)
	fi
	if [ "$topology" = pair ]; then
		DEST_ADDR=$RDMAMIG_PEER_ADDR
	else
		DEST_ADDR=$LOCAL_ADDR
	fi
	ulimit -l unlimited 2>/dev/null || diag "ulimit -l unlimited: not permitted"
	trap procmig_cleanup EXIT
}

# The test's own clean-up, run first on exit (a cut link put back, ...).
procmig_cleanup_hook()
{
	:
}

# shellcheck disable=SC2317 # called from the trap
procmig_cleanup()
{
	local name p
	procmig_cleanup_hook
	for p in "${local_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for name in "${!bg_pid[@]}"; do
		if [ "$topology" = pair ]; then
			"$RDMAMIG_PEER" --kill "${bg_pid[$name]}" KILL >/dev/null 2>&1
			"$RDMAMIG_PEER" --wait "${bg_pid[$name]}" >/dev/null 2>&1
		else
			kill -KILL "${bg_pid[$name]}" 2>/dev/null
		fi
	done
	wait 2>/dev/null
	rm -rf "$dir"
}

# start_source NAME RATE: the workload here ($SIZE MiB writing RATE MB/s),
# filled; sets src_pid.  Waits 60 s times X (1 unless the test scales).
start_source()
{
	local name=$1 rate=$2
	rm -f "$dir/$name.pid" "$dir/$name.hb"
	"$WORKLOAD" --size "$SIZE" --rate "$rate" --seed $$ \
		--pid-file "$dir/$name.pid" --heartbeat "$dir/$name.hb" \
		>"$dir/$name.out" 2>&1 &
	src_pid=$!
	local_pids+=("$src_pid")
	wait_for $((60 * ${X:-1})) grep -q heartbeat "$dir/$name.hb"
}

# ---- Checkpointing (mc_pid_test.sh, mc_netbuf_test.sh): they set TIMEOUT.

# start_standby NAME [OPTIONS...]: a twin of SIZE MiB and rdmamigctl
# standby on the peer, listening; sets twin_pid and port.
start_standby()
{
	local name=$1
	shift
	port=
	rm -f "$dir/$name.port"
	start_twin "$name.twin" "$SIZE" || { diag "$name: no twin"; return 1; }
	peer_bg "$name.sb" "$RDMAMIGCTL" -j standby --pid "$twin_pid" --checksum "$@" \
		--timeout "$TIMEOUT" --port-file "$dir/$name.port" "rdma:$DEST_ADDR:0" || return 1
	wait_for 60 test -s "$dir/$name.port" || { diag "$name: standby did not listen"; return 1; }
	port=$(<"$dir/$name.port")
}

# epochs_printed FILE N: protect's text output has N epochs or more.
# shellcheck disable=SC2317 # called through wait_for
epochs_printed()
{
	[ "$(grep -c '^epoch [0-9]*: [0-9]* pages' "$dir/$1" 2>/dev/null)" -ge "$2" ]
}

# twin_runs NAME: the twin's heartbeat file says it continued, and beats.
# shellcheck disable=SC2317 # called through wait_for
twin_runs()
{
	local from
	from=$(awk '$1 == "twin:" { print $5 }' "$dir/$1.twin.hb" 2>/dev/null)
	[[ "$from" =~ ^[0-9]+$ ]] && hb_beyond "$1.twin.hb" "$from"
}

# kill_twin NAME PID: the twin PID started as NAME, killed and reaped.
kill_twin()
{
	[ -n "${bg_pid[$1]:-}" ] || return 0
	on_peer kill -KILL "$2" 2>/dev/null
	peer_wait "$1"
	return 0
}

# show FILE...: the files of dir, as diagnostics.
show()
{
	local f
	for f in "$@"; do
		[ -s "$dir/$f" ] && sed "s|^|# $f: |" "$dir/$f"
	done
	return 0
}

# jget FILE EXPR: a value of the JSON object in FILE (of dir).
jget()
{
	jq -r "$2" "$dir/$1" 2>/dev/null
}

# hb_last FILE: the last heartbeat count; hb_beyond FILE N: it is past N.
hb_last()
{
	awk '$1 == "heartbeat" { n = $2 } END { print n + 0 }' "$dir/$1" 2>/dev/null
}

# shellcheck disable=SC2317 # called through wait_for
hb_beyond()
{
	[ "$(hb_last "$1")" -gt "$2" ]
}
