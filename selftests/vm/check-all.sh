#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check-all.sh "SERIES..." ["TOPOLOGIES"] - run the suite on each kernel
# series (6.1, 6.12) in each topology, and sum their results into the last
# line, `N passed, N failed, N skipped`.  make check calls it once
# scripts/deps.sh has set up every series, so --kver names a kernel that
# is there.  The host's own tests (rdmamigctl's) run once, with the first
# kernel.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
series_list=${1:-6.1 6.12}
topos=${2:-loop pair}
# RDMAMIG_CHECK_FULL=1 (make check-full): every test on every kernel, in
# both topologies (check.sh -F).
full_flag=
[ "${RDMAMIG_CHECK_FULL:-}" = 1 ] && full_flag=-F
passed=0 failed=0 skipped=0 flags=$full_flag lines=()
for series in $series_list; do
	t0=$SECONDS
	log=$(mktemp)
	kver=$("$top/scripts/deps.sh" --kver "$series") &&
		make -C "$top" --no-print-directory check-kernel SERIES="$series" \
			KVER="$kver" TOPOLOGIES="$topos" CHECK_FLAGS="$flags" 2>&1 | tee "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	rm -f "$log"
	flags="-n $full_flag"
	if [ -z "$line" ]; then
		lines+=("Linux $series: no summary (build or set-up failed): counted as one failure")
		failed=$((failed + 1))
		continue
	fi
	lines+=("Linux $series (${kver:-?}): $line in $((SECONDS - t0)) s")
	read -r p _ f _ s _ <<<"$(echo "$line" | tr -d ',')"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + ${s:-0}))
done
for line in "${lines[@]}"; do
	echo "check: $line"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
