#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A migration over IPv6 (RoCEv2 over an IPv6 GID): both ends in this VM on
# a unique-local address added to the rxe netdev.
source "$(dirname "$0")/lib.sh"
require_root

VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
ADDR6=fd00:7264:6d67::15

[ -x "$VMM" ] || { echo "1..0 # SKIP $VMM not built"; exit $KSFT_SKIP; }
if [ "${RDMAMIG_TOPOLOGY:-loop}" != loop ]; then
	echo "1..0 # SKIP runs in the loop topology"
	exit $KSFT_SKIP
fi
module_load
ulimit -l unlimited
tmp=$(mktemp -d)
cleanup()
{
	ip -6 addr del "$ADDR6/64" dev "$RDMAMIG_NETDEV" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

ktap_plan 3
ip -6 addr add "$ADDR6/64" dev "$RDMAMIG_NETDEV" nodad
# rxe adds a GID for the address once the netdev reports it.
gid_ready()
{
	cat /sys/class/infiniband/"$RDMAMIG_IBDEV"/ports/1/gids/* 2>/dev/null |
		grep -q '^fd00:7264:6d67:'
}
wait_for 10 gid_ready || diag "no GID for $ADDR6 yet"

"$VMM" dest --listen "[$ADDR6]:0" --port-file "$tmp/port" --size 16 --blocks 2 \
	--timeout 60 > "$tmp/dest" 2>&1 &
dpid=$!
ktap_result "destination listens on [$ADDR6]" wait_for 10 test -s "$tmp/port"
"$VMM" source --connect "[$ADDR6]:$(cat "$tmp/port")" --size 16 --blocks 2 \
	--rounds 1 --timeout 60 > "$tmp/src" 2>&1
src_rc=$?
wait "$dpid"
dst_rc=$?
diag "source: $(head -n 1 "$tmp/src")"
ktap_result "source completes over IPv6" test $src_rc -eq 0
ktap_result "destination verifies every page" test $dst_rc -eq 0
ktap_finish
