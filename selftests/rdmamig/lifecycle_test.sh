#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module lifetime against sessions, and many migrations in a row:
#  - rmmod is refused while a /dev/rdmamig session or a netlink session
#    (rdmamigctl incoming) is open, and works once they are gone;
#  - N migrations (RDMAMIG_LOOPS, 30) leave unreclaimable slab, locked
#    memory and the module's and ib_core's reference counts where they
#    started.
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
WORKLOAD=$TOP/tools/rdmamig-workload/rdmamig-workload
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
LOOPS=${RDMAMIG_LOOPS:-30}

[ -x "$VMM" ] || { echo "1..0 # SKIP $VMM not built"; exit $KSFT_SKIP; }
if [ "${RDMAMIG_TOPOLOGY:-loop}" != loop ]; then
	echo "1..0 # SKIP runs in the loop topology"
	exit $KSFT_SKIP
fi
module_load
ulimit -l unlimited
tmp=$(mktemp -d)
pids=()
cleanup()
{
	kill -9 "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	module_load
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 7

"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 4 --timeout 60 \
	> /dev/null 2>&1 &
vpid=$!
pids+=("$vpid")
wait_for 10 test -s "$tmp/port"
ktap_result "rmmod refused while a /dev/rdmamig session is open" \
	bash -c '! rmmod rdmamig 2>/dev/null'
kill "$vpid"; wait "$vpid" 2>/dev/null

if [ -x "$WORKLOAD" ]; then
	"$WORKLOAD" --size 4 --rate 0 --twin --pid-file "$tmp/twin" > /dev/null 2>&1 &
	pids+=($!)
	wait_for 10 test -s "$tmp/twin"
	twin=$(cat "$tmp/twin")
	"$RDMAMIGCTL" incoming --pid "$twin" --timeout 60 "rdma:$ADDR:0" \
		> /dev/null 2>&1 &
	ipid=$!
	pids+=("$ipid")
	session_up() { "$RDMAMIGCTL" -j session list | jq -e 'length > 0' >/dev/null; }
	wait_for 10 session_up
	ktap_result "rmmod refused while a netlink session is open" \
		bash -c '! rmmod rdmamig 2>/dev/null'
	kill "$ipid"; wait "$ipid" 2>/dev/null
else
	ktap_skip "rmmod refused while a netlink session is open" "no workload"
fi
no_session() { "$RDMAMIGCTL" -j session list | jq -e 'length == 0' >/dev/null; }
wait_for 10 no_session
ktap_result "rmmod works once every session is gone" rmmod rdmamig
module_load

slab_before=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
ref_before=$(module_refcnt rdmamig)
ibref_before=$(module_refcnt ib_core)
failed=0
for i in $(seq "$LOOPS"); do
	rm -f "$tmp/port"
	"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 4 --blocks 2 \
		--timeout 30 > /dev/null 2>&1 &
	dpid=$!
	wait_for 10 test -s "$tmp/port"
	"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 4 --blocks 2 \
		--rounds 1 --timeout 30 > /dev/null 2>&1 || failed=$((failed + 1))
	wait "$dpid" || failed=$((failed + 1))
done
ktap_result "$LOOPS migrations in a row succeed" test "$failed" -eq 0
sleep 1
slab_after=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
diag "unreclaimable slab $slab_before -> $slab_after kB over $LOOPS migrations"
ktap_result "unreclaimable slab grew by less than 2 MiB" \
	test $((slab_after - slab_before)) -lt 2048
ktap_result "module references back to $ref_before" \
	test "$(module_refcnt rdmamig)" = "$ref_before"
ktap_result "ib_core references back to $ibref_before, no memory locked" \
	bash -c "test '$(module_refcnt ib_core)' = '$ibref_before' &&
		 test \$(awk '/^Mlocked:/ {print \$2}' /proc/meminfo) -lt 1024"
ktap_finish
