#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module lifetime against sessions, and many migrations in a row:
#  - rmmod is refused while a /dev/rdmamig session or a netlink session
#    (rdmamigctl incoming) is open, and works once they are gone;
#  - N migrations (RDMAMIG_LOOPS, 100, 4 MiB each) leave the module's and
#    ib_core's reference counts, the rxe device's RDMA resources (rdma
#    resource: pd, cq, qp, cm_id, mr), the system's pinned pages (FOLL_PIN
#    acquired - released, /proc/vmstat), locked memory and unreclaimable
#    slab where they started.  Slab: SUnreclaim may grow by less than
#    512 KiB from the 10th migration to the last.  The first ten fill the
#    caches (slab pages, rxe's pools, the workqueues' pools); after them a
#    leak grows with the count, while the noise (per-CPU partial slabs,
#    9p and the shell's own allocations) does not: +20 KiB over those 90
#    migrations in a run on 6.1.  512 KiB over 90 migrations catches
#    anything of 6 KiB or more per migration: any of the 64 KiB control
#    buffers (kmalloc_large pages count as SUnreclaim), an 8 KiB slab
#    object, the block tables, a chunk's page array.  The exact counts
#    above catch the smaller objects that own a resource.
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
WORKLOAD=$TOP/tools/rdmamig-workload/rdmamig-workload
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
LOOPS=${RDMAMIG_LOOPS:-100}
WARMUP=10

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

ktap_plan 9

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

slab()
{
	awk '/^SUnreclaim:/ {print $2}' /proc/meminfo
}
foll_pins()
{
	awk '/^nr_foll_pin_acquired/ {a = $2} /^nr_foll_pin_released/ {r = $2}
	     END {print a - r}' /proc/vmstat
}
# pd, cq, qp, cm_id, mr, ... of every RDMA device.
rdma_res()
{
	rdma resource show | sed 's/^[0-9]*: //' | tr -s ' ' | tr '\n' ';'
}

slab_before=$(slab)
ref_before=$(module_refcnt rdmamig)
ibref_before=$(module_refcnt ib_core)
pins_before=$(foll_pins)
res_before=$(rdma_res)
mlocked() { awk '/^Mlocked:/ {print $2}' /proc/meminfo; }
mlocked_before=$(mlocked)
failed=0
t0=$SECONDS
# No exec but the two VMMs in the loop: each costs much under TCG.
for ((i = 1; i <= LOOPS; i++)); do
	: > "$tmp/port"
	"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 4 --blocks 2 \
		--timeout 30 > /dev/null 2>&1 &
	dpid=$!
	wait_for 10 test -s "$tmp/port"
	"$VMM" source --connect "$ADDR:$(<"$tmp/port")" --size 4 --blocks 2 \
		--rounds 1 --timeout 30 > /dev/null 2>&1 || failed=$((failed + 1))
	wait "$dpid" || failed=$((failed + 1))
	[ "$i" = "$WARMUP" ] && slab_warm=$(slab)
done
took=$((SECONDS - t0))
ktap_result "$LOOPS migrations in a row succeed ($took s)" test "$failed" -eq 0
sleep 1
slab_after=$(slab)
diag "unreclaimable slab $slab_before kB, $slab_warm kB after $WARMUP, $slab_after kB after $LOOPS migrations"
ktap_result "unreclaimable slab grew by less than 512 KiB from migration $WARMUP to $LOOPS" \
	test $((slab_after - ${slab_warm:-0})) -lt 512
diag "before -> after $LOOPS migrations: rdmamig refs $ref_before -> $(module_refcnt rdmamig)," \
	"ib_core refs $ibref_before -> $(module_refcnt ib_core)," \
	"FOLL_PIN pages $pins_before -> $(foll_pins), Mlocked $mlocked_before -> $(mlocked) kB"
ktap_result "module references back to $ref_before" \
	test "$(module_refcnt rdmamig)" = "$ref_before"
ktap_result "ib_core references back to $ibref_before, locked memory back to $mlocked_before kB" \
	bash -c "test '$(module_refcnt ib_core)' = '$ibref_before' &&
		 test '$(mlocked)' = '$mlocked_before'"
pins_back() { [ "$(foll_pins)" = "$pins_before" ]; }
wait_for 5 pins_back
ktap_result "pinned pages (FOLL_PIN) back to $pins_before (now $(foll_pins))" pins_back
diag "rdma resources: $res_before -> $(rdma_res)"
ktap_result "the RDMA resources of every device back where they were" \
	test "$(rdma_res)" = "$res_before"
ktap_finish
