#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check-all.sh [TOPOLOGIES] - run `make check` on Linux 6.1 and 6.12 and
# sum their results into the last line, `N passed, N failed, N skipped`.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
topos=${1:-loop pair}
passed=0 failed=0 skipped=0
for series in 6.1 6.12; do
	log=$(mktemp)
	make -C "$top" --no-print-directory check SERIES="$series" \
		TOPOLOGIES="$topos" 2>&1 | tee "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "check-all: Linux $series gave no summary: counted as one failure"
		failed=$((failed + 1))
		continue
	fi
	echo "check-all: Linux $series: $line"
	read -r p _ f _ s _ <<<"$(echo "$line" | tr -d ',')"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + ${s:-0}))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
