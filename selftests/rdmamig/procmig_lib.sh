# SPDX-License-Identifier: GPL-2.0
#
# procmig_lib.sh: what the tests of a process's migration by pid share
# (process_migrate_test.sh, postcopy_pid_test.sh): running things here or
# on the peer VM, process states, and a stopped twin of the workload.
# The caller sets topology, dir (its scratch directory) and WORKLOAD.

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
