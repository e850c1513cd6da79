#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# rdmamig.ko loads and unloads cleanly, many times, with no leak: the
# references it takes on ib_core and rdma_cm return to where they were,
# and unreclaimable slab does not grow.
source "$(dirname "$0")/lib.sh"
require_root

CYCLES=${CYCLES:-50}
ktap_plan 5

rmmod rdmamig 2>/dev/null
ib_core_ref=$(module_refcnt ib_core)
slab_before=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)

fail=
for i in $(seq "$CYCLES"); do
	if ! module_load; then
		fail="load $i failed"
		break
	fi
	if ! rmmod rdmamig; then
		fail="unload $i failed"
		break
	fi
done
if [ -z "$fail" ]; then
	ktap_ok "load and unload $CYCLES times"
else
	diag "$fail"
	ktap_fail "load and unload $CYCLES times"
fi

ktap_result "module gone after unload" test ! -e /sys/module/rdmamig
ktap_result "device node gone after unload" test ! -e /dev/rdmamig

now=$(module_refcnt ib_core)
diag "ib_core refcnt before $ib_core_ref after $now"
ktap_result "ib_core references returned" test "$now" = "$ib_core_ref"

# Let RCU-freed objects go before measuring.
sleep 1
slab_after=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
growth=$((slab_after - slab_before))
diag "unreclaimable slab grew by $growth KiB over $CYCLES cycles"
ktap_result "no slab growth over 1 MiB" test "$growth" -lt 1024

module_load
ktap_finish
