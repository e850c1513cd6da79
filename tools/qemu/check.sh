#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# tools/qemu/check.sh [KVER]: QEMU migrating a guest through /dev/rdmamig,
# VM A to VM B (selftests/rdmamig/qemu_test.sh, pair topology; each VM
# holds a 256 MiB guest in a tmpfs file beside the QEMU that runs it).
# Builds the module, the tools and the patched QEMU (build.sh, cached)
# first.  make check-qemu runs it; it is not part of make check
# (Documentation/testing.rst says when to run it).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
scripts/deps.sh
kver=${1:-$(scripts/deps.sh --kver)}
make all KVER="$kver"
tools/qemu/build.sh
exec selftests/vm/vm.sh -k "$kver" -t pair -M 1536 -T 1800 \
	-m "$top/build/mod-$kver/rdmamig.ko" -o "$top/build/logs/qemu" \
	-- selftests/rdmamig/run_tests.sh qemu_test.sh
