# SPDX-License-Identifier: GPL-2.0
#
# The example VMM (tools/rdmamig-vmm) at both ends of a migration, for
# the tests that drive it (migrate_test.sh, channels_test.sh); sourced
# after lib.sh.  The caller sets VMM, TIMEOUT (the VMMs' --timeout),
# LOCAL_ADDR, topology (loop or pair) and tmp (a scratch directory); the
# destination's output goes to $tmp/NAME.dst, the source's, by the
# caller, to $tmp/NAME.src.

port_ready()
{
	[ -s "$1" ] || ! kill -0 "$2" 2>/dev/null
}

# start_dest NAME ARGS...: the destination, in the background, on a port
# it picks; sets dest_port from its --port-file (in pair topology on the
# share both VMs mount, $RDMAMIG_OUT).
start_dest()
{
	local name=$1 pf
	shift
	if [ $topology = pair ]; then
		pf=$RDMAMIG_OUT/${0##*/}.$name.port
		rm -f "$pf"
		dest_id=$("$RDMAMIG_PEER" --bg "$VMM" dest \
			--listen "$RDMAMIG_PEER_ADDR:0" --port-file "$pf" \
			--timeout "$TIMEOUT" --json "$@") || return 1
		wait_for 60 test -s "$pf"
	else
		pf=$tmp/$name.port
		"$VMM" dest --listen "$LOCAL_ADDR:0" --port-file "$pf" \
			--timeout "$TIMEOUT" --json "$@" >"$tmp/$name.dst" 2>&1 &
		dest_pid=$!
		wait_for 60 port_ready "$pf" "$dest_pid"
	fi
	dest_port=$(cat "$pf" 2>/dev/null)
	rm -f "$pf"
	[ -n "$dest_port" ]
}

dest_gone()
{
	! kill -0 "$dest_pid" 2>/dev/null
}

# wait_dest NAME GRACE: the destination's exit status (its output in
# NAME.dst); killed after GRACE seconds (a destination whose source gave
# up would wait for its accept timeout).
wait_dest()
{
	local name=$1 grace=$2 rc
	if [ $topology = pair ]; then
		if [ "$grace" -lt "$TIMEOUT" ]; then
			sleep "$grace"
			"$RDMAMIG_PEER" --kill "$dest_id" >/dev/null 2>&1
		fi
		"$RDMAMIG_PEER" --wait "$dest_id" >"$tmp/$name.dst" 2>&1
		return
	fi
	wait_for "$grace" dest_gone || kill "$dest_pid"
	wait "$dest_pid"
	rc=$?
	dest_pid=
	return $rc
}

show_output()
{
	local f
	for f in "$tmp/$1.src" "$tmp/$1.dst"; do
		[ -f "$f" ] && sed "s|^|# ${f##*/}: |" "$f"
	done
}

# split_dest_args DEST-ARGS... -- SOURCE-ARGS...: into the caller's
# arrays dargs and sargs (declare them local there).
split_dest_args()
{
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		dargs+=("$1")
		shift
	done
	if [ $# -gt 0 ]; then
		shift
	fi
	sargs=("$@")
}
