#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The module tracks RDMA devices through its ib_client: rxe0 is listed,
# disappears when its link is deleted, and comes back when re-added.
source "$(dirname "$0")/lib.sh"
require_root
module_load

ktap_plan 5

dev_listed()
{
	"$RDMAMIGCTL" -j dev | jq -e --arg d "$1" 'any(.[]; .name == $d)' >/dev/null
}

dev_unlisted()
{
	! dev_listed "$1"
}

json=$("$RDMAMIGCTL" -j dev)
diag "rdmamigctl -j dev: $json"
is_array() { jq -e 'type == "array"' <<<"$1" >/dev/null; }
ktap_result "dev -j is a JSON array" is_array "$json"
ktap_result "$RDMAMIG_IBDEV listed" dev_listed "$RDMAMIG_IBDEV"

rdma link delete "$RDMAMIG_IBDEV"
ktap_result "$RDMAMIG_IBDEV gone after rdma link delete" \
	wait_for 5 dev_unlisted "$RDMAMIG_IBDEV"

rdma link add "$RDMAMIG_IBDEV" type rxe netdev "$RDMAMIG_NETDEV"
ktap_result "$RDMAMIG_IBDEV back after rdma link add" \
	wait_for 5 dev_listed "$RDMAMIG_IBDEV"

port_active()
{
	rdma link show "$RDMAMIG_IBDEV/1" | grep -q 'state ACTIVE'
}
ktap_result "$RDMAMIG_IBDEV port active again" wait_for 10 port_active

ktap_finish
