#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check.sh - run the rdmamig selftests in the QEMU testbed
#
#   check.sh -k KVER [-m KO] [-t "loop pair"] [-T SECONDS] [-n] [-F]
#
# For each topology, boots it with vm.sh (logs in build/logs/KVER-TOPO/)
# and runs selftests/rdmamig/run_tests.sh in VM A from the top of the
# repository.  run_tests.sh ends its output with "N passed, N failed,
# N skipped" and writes the same line to $RDMAMIG_OUT/summary.
#
# First the tests of the tools that need no VM (make -C tools/rdmamigctl
# check: option parsing, netlink encoding, output formats), counted from
# their TAP lines.  Then, per topology, the lists of
# selftests/rdmamig/Makefile: the first kernel of a make check runs
# every test in loop (list) and the tests of two hosts in pair
# (list-pair).  -n: a later kernel of the same make check, which repeats
# neither the host's tests nor the tests that run once per check
# (deb_install_test.sh: RDMAMIG_ONCE_PER_CHECK=done reaches the guest),
# and runs the tests of the kernel interfaces that differ (list-later) in
# loop and those of a real link (list-link) in pair.  -F (make
# check-full): every test in both topologies, whatever the kernel.  CI's
# 90 minutes hold make check, not make check-full
# (Documentation/testing.rst).  Prints one line per topology and, as the
# very last line, the total "N passed, N failed, N skipped".  A topology
# whose run went wrong beyond failed tests (a kernel warning or oops, a
# hung or crashed guest, no summary, ...) counts as one more failure, and
# the reason is printed.  Exits non-zero if anything failed.
set -euo pipefail

selfdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$selfdir/../.." && pwd)

usage() {
	sed -n '5,5s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

kver='' ko='' topologies="loop pair" timeout='' host_tests=1 full=
while getopts k:m:t:T:nFh opt; do
	case "$opt" in
	k) kver=$OPTARG ;;
	m) ko=$OPTARG ;;
	t) topologies=$OPTARG ;;
	T) timeout=$OPTARG ;;
	n) host_tests= ;;
	F) full=1 ;;
	*) usage ;;
	esac
done
[ -n "$kver" ] && [ $OPTIND -gt $# ] || usage

cd "$top"
# The tests' time limits reach the guests when set: a debug kernel's
# pair run needs more.  RDMAMIG_TEST_TIMEOUT: seconds per test
# (run_tests.sh's default 900); RDMAMIG_MIGRATE_TIMEOUT: the VMMs'
# --timeout in migrate_test, channels_test and postcopy_test (120);
# RDMAMIG_KA_SLACK_MS: how late a keepalive timer may fire in netem_test
# and vmkill_test (500); RDMAMIG_DEB_GUEST_BUILD=1: deb_install_test.sh
# has DKMS compile in the guest (make check-full).
guest_env=()
for v in RDMAMIG_TEST_TIMEOUT RDMAMIG_MIGRATE_TIMEOUT RDMAMIG_KA_SLACK_MS RDMAMIG_DEB_GUEST_BUILD; do
	[ -z "${!v:-}" ] || guest_env+=("$v=${!v}")
done
[ -n "$host_tests" ] || guest_env+=(RDMAMIG_ONCE_PER_CHECK=done)
# Every case of every test, also those a pair run leaves to the loop run.
[ -z "$full" ] || guest_env+=(RDMAMIG_CHECK_FULL=1)
guest_cmd=(env "${guest_env[@]}" selftests/rdmamig/run_tests.sh)
passed=0 failed=0 skipped=0
lines=()

if [ -n "$host_tests" ]; then
	echo "== host: make -C tools/rdmamigctl check"
	rc=0
	host_out=$(make -s -C tools/rdmamigctl check 2>&1) || rc=$?
	echo "$host_out"
	p=$(grep -E '^ok ' <<<"$host_out" | grep -vc '# SKIP' || true)
	s=$(grep -cE '^ok .*# SKIP' <<<"$host_out" || true)
	f=$(grep -cE '^not ok ' <<<"$host_out" || true)
	line="host: $p passed, $f failed, $s skipped"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		line="host: $p passed, $f failed, $s skipped (make exited with status $rc)"
	fi
	lines+=("$line")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
fi
for topo in $topologies; do
	logdir=build/logs/$kver-$topo
	echo "== $kver $topo (logs in $logdir)"
	# Nothing stale may pass for this run's verdict.
	rm -rf "$logdir/result" "$logdir/out" "$logdir/output-a.txt"
	run_cmd=("${guest_cmd[@]}")
	list=
	if [ -n "$full" ]; then
		[ "$topo" = pair ] && list=list-pair-full
	elif [ -z "$host_tests" ]; then
		list=list-later
		[ "$topo" = pair ] && list=list-link
	fi
	# Without a list, run_tests.sh runs list (loop) or list-pair (pair).
	if [ -n "$list" ]; then
		read -r -a tests <<<"$(make -s -C selftests/rdmamig "$list")"
		run_cmd+=("${tests[@]}")
		echo "== $kver $topo: $list: ${tests[*]}"
	fi
	for attempt in 1 2; do
		rc=0
		"$selfdir/vm.sh" -k "$kver" -t "$topo" ${ko:+-m "$ko"} \
			${timeout:+-T "$timeout"} -o "$logdir" \
			-- "${run_cmd[@]}" || rc=$?
		# Interrupted: stop here (vm.sh has cleaned up).
		((rc > 128 && rc != 255)) && exit "$rc"
		# A guest that died while booting, before our module was in
		# either guest and before any test ran, is booted once more:
		# Debian's 6.12 under multi-threaded TCG was seen to oops on
		# an int3 of its own boot-time code patching (sched_clock_cpu,
		# from misc_register of cpu_latency_qos).  Its log is kept.
		[ "$attempt" = 1 ] && [ "$rc" = 125 ] || break
		! grep -qs 'rdmamig: version' "$logdir"/vm-[ab].log || break
		for f in "$logdir"/vm-[ab].log; do
			mv "$f" "$logdir/boot-failure-${f##*/}"
		done
		echo "== $kver $topo: a guest failed to boot before the module was loaded" \
			"($(grep -m1 '^problem=' "$logdir/result" | cut -c9-200)): booting again once"
		rm -rf "$logdir/result" "$logdir/out" "$logdir/output-a.txt"
	done

	summary=
	[ -f "$logdir/out/summary" ] &&
		summary=$(tail -n 1 "$logdir/out/summary")
	[ -n "$summary" ] || [ ! -f "$logdir/output-a.txt" ] ||
		summary=$(tail -n 1 "$logdir/output-a.txt" | tr -d '\r')
	why=()
	if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} s=${BASH_REMATCH[3]}
	else
		p=0 f=0 s=0
		why+=("no summary line from run_tests.sh")
	fi
	# The problems vm.sh found: kernel reports, hangs, harness errors.
	if [ -f "$logdir/result" ]; then
		while IFS= read -r line; do
			why+=("${line#problem=}")
		done < <(grep '^problem=' "$logdir/result")
	else
		why+=("vm.sh exited with status $rc without a result")
	fi
	# A failing run_tests.sh should have counted its failures.
	if [ ${#why[@]} -eq 0 ] && [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		why+=("run_tests.sh exited with status $rc but reported no failure")
	fi
	line="$topo: $p passed, $f failed, $s skipped"
	if [ ${#why[@]} -gt 0 ]; then
		f=$((f + 1))
		line="$topo: $p passed, $f failed, $s skipped (one for the run itself)"
	fi
	for w in "${why[@]}"; do
		line+=$'\n'"  $topo: $w"
	done
	lines+=("$line")
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done

echo "== $kver summary"
for line in "${lines[@]}"; do
	echo "$line"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
