#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Faults in the middle of a migration (example VMM, 64 MiB throttled to
# 4 MB/s so that there is a middle): the survivor fails with a reason and
# in bounded time, nothing hangs, and the harness then checks that the
# module unloads with no warning.
#
#   loop: destination killed, source killed, rdma link deleted
#   pair: the destination's link cut: the source's keepalive (500 ms) must
#         fail the session with ETIMEDOUT within two intervals and a second
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
TOPO=${RDMAMIG_TOPOLOGY:-loop}
LOCAL=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
SLOW="--size 64 --blocks 2 --zero-holes 0 --rounds 1 --max-bandwidth 4000000"

[ -x "$VMM" ] || { echo "1..0 # SKIP $VMM not built"; exit $KSFT_SKIP; }
module_load
ulimit -l unlimited
tmp=$(mktemp -d)
pids=()
cleanup()
{
	kill -9 "${pids[@]}" 2>/dev/null
	rdma link show "$RDMAMIG_IBDEV" >/dev/null 2>&1 ||
		rdma link add "$RDMAMIG_IBDEV" type rxe netdev "$RDMAMIG_NETDEV"
	rm -rf "$tmp"
}
trap cleanup EXIT

# start_pair NAME [EXTRA-ARGS]: destination and source in this VM; sets
# dpid and spid once the source is sending.
start_pair()
{
	rm -f "$tmp/port"
	"$VMM" dest --listen "$LOCAL:0" --port-file "$tmp/port" $SLOW --timeout 60 \
		> "$tmp/$1.dest" 2>&1 &
	dpid=$!
	wait_for 10 test -s "$tmp/port"
	"$VMM" source --connect "$LOCAL:$(cat "$tmp/port")" $SLOW --timeout 60 \
		> "$tmp/$1.src" 2>&1 &
	spid=$!
	pids+=("$dpid" "$spid")
	sleep 3
}

# ends_within SECONDS PID: the process exits, with a failure, in time
ends_within()
{
	local deadline=$((SECONDS + $1)) rc
	while kill -0 "$2" 2>/dev/null; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
	wait "$2"
	rc=$?
	[ $rc -ne 0 ]
}

reason_of()
{
	grep -o 'reason: [^)]*' "$1" | head -n 1
}

if [ "$TOPO" = loop ]; then
	ktap_plan 7

	start_pair killdest
	kill -9 "$dpid"
	ktap_result "destination killed: source fails within 10 s" ends_within 10 "$spid"
	diag "source: $(reason_of "$tmp/killdest.src")"

	start_pair killsrc
	kill -9 "$spid"
	ktap_result "source killed: destination fails within 10 s" ends_within 10 "$dpid"
	diag "destination: $(reason_of "$tmp/killsrc.dest")"

	start_pair linkdel
	rdma link delete "$RDMAMIG_IBDEV"
	ktap_result "rdma link delete: source fails within 10 s" ends_within 10 "$spid"
	ktap_result "rdma link delete: destination fails within 10 s" ends_within 10 "$dpid"
	diag "source: $(reason_of "$tmp/linkdel.src")"
	ktap_result "the reason names the removed device" \
		grep -q "RDMA device $RDMAMIG_IBDEV removed" "$tmp/linkdel.src" "$tmp/linkdel.dest"
	rdma link add "$RDMAMIG_IBDEV" type rxe netdev "$RDMAMIG_NETDEV"
	port_up() { rdma link show "$RDMAMIG_IBDEV/1" 2>/dev/null | grep -q 'state ACTIVE'; }
	ktap_result "$RDMAMIG_IBDEV back" wait_for 10 port_up

	# Nothing stays pinned once every session is gone.
	locked=$(awk '/^Mlocked:/ {print $2}' /proc/meminfo)
	ktap_result "no pinned pages left (Mlocked ${locked} kB)" test "$locked" -lt 1024
	ktap_finish
fi

[ -n "${RDMAMIG_PEER:-}" ] || { echo "1..0 # SKIP pair without \$RDMAMIG_PEER"; exit $KSFT_SKIP; }
ktap_plan 3
pf=$RDMAMIG_OUT/faults.port
rm -f "$pf"
id=$("$RDMAMIG_PEER" --bg bash -c "ulimit -l unlimited; exec $VMM dest --listen $RDMAMIG_PEER_ADDR:0 --port-file $pf $SLOW --keepalive 500 --timeout 60")
wait_for 20 test -s "$pf"
"$VMM" source --connect "$RDMAMIG_PEER_ADDR:$(cat "$pf")" $SLOW --keepalive 500 \
	--timeout 60 > "$tmp/ka.src" 2>&1 &
spid=$!
pids+=("$spid")
sleep 4
"$RDMAMIG_PEER" ip link set "$RDMAMIG_NETDEV" down
t0=$SECONDS
ktap_result "link cut: source fails within 2 x 500 ms + 1 s (+2 s slack)" ends_within 4 "$spid"
diag "source failed after $((SECONDS - t0)) s: $(reason_of "$tmp/ka.src")"
ktap_result "the source reports the keepalive timeout" grep -q "peer silent" "$tmp/ka.src"
"$RDMAMIG_PEER" --wait "$id" > "$tmp/ka.dest" 2>&1
ktap_result "the destination fails too" test $? -ne 0
diag "destination: $(reason_of "$tmp/ka.dest")"
"$RDMAMIG_PEER" ip link set "$RDMAMIG_NETDEV" up
ktap_finish
