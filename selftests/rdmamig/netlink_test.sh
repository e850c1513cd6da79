#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The device node and the generic-netlink family exist while the module
# is loaded, and the family answers with the module's version.
source "$(dirname "$0")/lib.sh"
require_root
module_load

ktap_plan 5

ktap_result "/dev/rdmamig is a character device" test -c /dev/rdmamig
mode=$(stat -c %a /dev/rdmamig)
diag "/dev/rdmamig mode $mode"
ktap_result "/dev/rdmamig mode is 0600" test "$mode" = 600

family_listed()
{
	# genl ctrl list (iproute2) names every registered family.
	genl ctrl get name rdmamig >/dev/null 2>&1
}
ktap_result "genetlink family rdmamig registered" family_listed

json=$("$RDMAMIGCTL" -j version)
diag "rdmamigctl -j version: $json"
module_version=$(cat /sys/module/rdmamig/version)
ktap_result "version reports the module's version" \
	test "$(jq -r .module <<<"$json")" = "$module_version"
ktap_result "version reports protocol 1" \
	test "$(jq -r .protocol <<<"$json")" = 1

ktap_finish
