#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job, run in VM A of the pair topology by `make demo`: a live
# migration of 256 MiB of guest RAM from VM A to VM B over soft-RoCE.
# VM B runs the example VMM as destination; VM A runs it as source,
# re-dirtying memory between rounds and carrying device state.  The
# destination checks every page against the source's final hashes.
#
#   DEMO_SIZE_MB (256)  DEMO_ROUNDS (4)  DEMO_REDIRTY (5, % per round)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
vmm=$top/tools/rdmamig-vmm/rdmamig-vmm
size=${DEMO_SIZE_MB:-256}
rounds=${DEMO_ROUNDS:-4}
redirty=${DEMO_REDIRTY:-5}
port=18515

ulimit -l unlimited
[ -n "${RDMAMIG_PEER:-}" ] || { echo "demo: needs the pair topology" >&2; exit 2; }

echo "== rdmamig demo: $size MiB, 1 bulk + $rounds rounds, $redirty% re-dirtied per round"
echo "== source $RDMAMIG_LOCAL_ADDR (VM A) -> destination $RDMAMIG_PEER_ADDR (VM B), rxe over MTU 9000"
id=$("$RDMAMIG_PEER" --bg bash -c "ulimit -l unlimited; exec $vmm dest --listen $RDMAMIG_PEER_ADDR:$port --size $size --timeout 120")
rc=0
"$vmm" source --connect "$RDMAMIG_PEER_ADDR:$port" --size "$size" \
	--rounds "$rounds" --redirty "$redirty" --retry 30 --timeout 120 || rc=$?
echo "== destination (VM B):"
"$RDMAMIG_PEER" --wait "$id" || rc=$?
if [ $rc -eq 0 ]; then
	echo "== demo: migration complete, destination memory identical to the source"
else
	echo "== demo: FAILED (status $rc)"
fi
exit $rc
