#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# rdmamigctl's command line: help, usage errors and exit codes.  Without
# the rdmamig module, the commands that need it must fail with exit code 3
# and one line; with it, they must succeed (and print valid JSON, if
# python3 is there to tell).
#
#   tests/cli-test.sh [PATH-TO-RDMAMIGCTL]

RDMAMIGCTL=${1:-./rdmamigctl}
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
n=0 failed=0

# t WANT_EXIT STDOUT_REGEX STDERR_REGEX ARGS...  ("" matches empty output,
# "*" any stdout)
t() {
	want=$1 outre=$2 errre=$3
	shift 3
	n=$((n + 1))
	"$RDMAMIGCTL" "$@" >"$out" 2>"$err"
	rc=$?
	why=
	[ "$rc" = "$want" ] || why="exit $rc, not $want"
	if [ -z "$outre" ]; then
		[ -s "$out" ] && why="$why; stdout not empty"
	elif [ "$outre" != "*" ]; then
		grep -Eq -- "$outre" "$out" || why="$why; stdout !~ /$outre/"
	fi
	if [ -z "$errre" ]; then
		[ -s "$err" ] && why="$why; stderr not empty"
	else
		grep -Eq -- "$errre" "$err" || why="$why; stderr !~ /$errre/"
	fi
	if [ -z "$why" ]; then
		echo "ok $n - rdmamigctl $*"
	else
		echo "not ok $n - rdmamigctl $*: ${why#; }"
		sed 's/^/#   out: /' "$out"
		sed 's/^/#   err: /' "$err"
		failed=$((failed + 1))
	fi
}

usage='^Usage: rdmamigctl \[OPTIONS\] OBJECT'
dev_usage='^Usage: rdmamigctl \[-j \| -p\] dev'
ver_usage='^Usage: rdmamigctl \[-j \| -p\] version'
sess_usage='^Usage: rdmamigctl \[-j \| -p\] session'
cap_usage='^Usage: rdmamigctl \[-j \| -p\] capability'
param_usage='^Usage: rdmamigctl \[-j \| -p\] param'
mon_usage='^Usage: rdmamigctl \[-j \| -p\] monitor'

# Help and version: no module needed, exit 0, stdout only.
t 0 "$usage" "" --help
t 0 "$usage" "" -h
t 0 "$usage" "" help
t 0 "$usage" "" h
t 0 "$usage" "" help help
t 0 "$usage" "" -j help
t 0 "$dev_usage" "" dev help
t 0 "$dev_usage" "" help dev
t 0 "$dev_usage" "" -h dev
t 0 "$dev_usage" "" d h
t 0 "$ver_usage" "" version help
t 0 "$ver_usage" "" help v
t 0 "$sess_usage" "" session help
t 0 "$sess_usage" "" help session
t 0 "$sess_usage" "" se h
t 0 "$cap_usage" "" capability help
t 0 "$cap_usage" "" c h
t 0 "$param_usage" "" param help
t 0 "$param_usage" "" -h param
t 0 "$mon_usage" "" monitor help
t 0 "$mon_usage" "" monitor --help
t 0 "$mon_usage" "" monitor --count 3 h
t 0 "$mon_usage" "" help monitor
t 0 '^rdmamigctl [0-9a-z.-]+$' "" -V
t 0 '^rdmamigctl [0-9a-z.-]+$' "" --version
t 0 '^rdmamigctl [0-9a-z.-]+$' "" --vers dev

# Usage errors: exit 2, a message naming the word, a hint.
t 2 "" "no object given" 
t 2 "" "no object given" -j
t 2 "" "unknown object 'foo'" foo
t 2 "" "Try 'rdmamigctl help'" foo
t 2 "" "unknown dev command 'foo'" dev foo
t 2 "" "Try 'rdmamigctl dev help'" dev foo
t 2 "" "unknown version command 'x'" version x
t 2 "" "unexpected argument 'b'" dev show a b
t 2 "" "unexpected argument 'x'" version show x
t 2 "" "unknown object 'nope'" help nope
t 2 "" "invalid option '-x'" -x dev
t 2 "" "invalid option '-x'" -jx dev
t 2 "" "invalid option '--bogus'" --bogus
t 2 "" "invalid option '--json=1'" --json=1 dev
t 2 "" "unknown session command 'foo'" session foo
t 2 "" "ambiguous session command 's', could be: show, set" session s
t 2 "" "invalid session ID 'x'" session show x
t 2 "" "invalid session ID '1x'" session show 1x
t 2 "" "unexpected argument '2'" session show 1 2
t 2 "" "set: no session ID given" session set
t 2 "" "no parameter given" session set 1
t 2 "" "max-bandwidth needs a value" session set 1 max-bandwidth
t 2 "" "invalid max-bandwidth '10x': expected a rate" session set 1 max-bandwidth 10x
t 2 "" "invalid max-bandwidth '1bit'" session set 1 max-bandwidth 1bit
t 2 "" "unknown parameter 'bogus'" session set 1 bogus 1
t 2 "" "unknown parameter 'max'" session set 1 max 1
t 2 "" "max-bandwidth given twice" session set 1 max-bandwidth 1 max_b 2
t 2 "" "cancel: no session ID given" session cancel
t 2 "" "unexpected argument 'x'" session cancel 1 x
t 2 "" "no parameter given" param set
t 2 "" "invalid keepalive '1x'" param set keepalive 1x
t 2 "" "invalid max-registered '1mbit'" param set max-registered 1mbit
t 2 "" "invalid max-rounds '1.5'" param set max-rounds 1.5
t 2 "" "unexpected argument 'x'" param show x
t 2 "" "no capability given" capability set
t 2 "" "invalid pin-all 'maybe': expected on or off" capability set pin-all maybe
t 2 "" "unknown capability 'foo'" capability set foo on
t 2 "" "pin-all given twice" capability set pin-all on rdma-pin-all off
t 2 "" "invalid pull 'maybe': expected on or off" capability set pull maybe
t 2 "" "pull given twice" capability set pull on pull off
t 2 "" "unknown capability 'sparse'" capability set sparse on
t 2 "" "invalid --count '0'" monitor --count 0
# Post-copy's options: rounds before the switch (1 or more), a bare flag
# for incoming; parsed before anything needs the module.
t 0 '--postcopy\[=N\]' "" migrate help
t 0 '--postcopy  ' "" incoming help
t 2 "" "bad --postcopy '0' \(rounds before the switch, 1 or more, or 'auto'\)" \
	migrate --pid 1 --postcopy=0 rdma:h:1
t 2 "" "bad --postcopy 'x'" migrate --pid 1 --postcopy=x rdma:h:1
t 2 "" "bad --postcopy '100001'" migrate --pid 1 --postcopy=100001 rdma:h:1
t 2 "" "invalid option '--postcopy=1'" incoming --pid 1 --postcopy=1 rdma:h:0
t 2 "" "no --pid given" migrate --postcopy=2 rdma:h:1
t 2 "" "no --pid given" migrate --postcopy=auto rdma:h:1
t 2 "" "no --pid given" incoming --postcopy rdma:h:0
t 0 '--resume-wait SEC' "" migrate help
t 0 '--resume-wait SEC' "" incoming help
t 0 '--keepalive MS' "" incoming help
t 2 "" "--resume-wait is for --postcopy" migrate --pid 1 --resume-wait 5 rdma:h:1
t 2 "" "--resume-wait is for --postcopy" incoming --pid 1 --resume-wait 5 rdma:h:0
t 2 "" "bad --resume-wait '0'" migrate --pid 1 --postcopy --resume-wait 0 rdma:h:1
t 2 "" "bad --resume-wait 'x'" incoming --pid 1 --postcopy --resume-wait x rdma:h:0
t 2 "" "bad --keepalive '60001'" migrate --pid 1 --keepalive 60001 rdma:h:1
# protect and standby: migrate's and incoming's parsers, checkpointing's
# options, and each other's options refused by name.
t 0 '^Usage: rdmamigctl \[-j \| -p\] protect' "" protect help
t 0 '^Usage: rdmamigctl \[-j \| -p\] standby' "" standby help
t 0 '--mc-delay MS' "" help protect
t 0 'mc +checkpointing epochs only' "" monitor help
t 2 "" "--mc-delay is an option of rdmamigctl protect only" \
	migrate --pid 1 --mc-delay 50 rdma:h:1
t 2 "" "--epochs is an option of rdmamigctl protect only" \
	migrate --pid 1 --epochs 5 rdma:h:1
t 2 "" "--postcopy is an option of rdmamigctl migrate only" \
	protect --pid 1 --postcopy rdma:h:1
t 2 "" "--after is an option of rdmamigctl migrate only" \
	protect --pid 1 --after kill rdma:h:1
t 2 "" "--pull is an option of rdmamigctl incoming only" \
	standby --pid 1 --pull rdma:h:0
t 2 "" "bad --mc-delay '9' \(10 to 60000 ms\)" protect --pid 1 --mc-delay 9 rdma:h:1
t 2 "" "bad --mc-delay '60001'" protect --pid 1 --mc-delay 60001 rdma:h:1
t 2 "" "bad --epochs '0'" protect --pid 1 --epochs 0 rdma:h:1
t 0 '--net-buffer IFACE' "" help protect
t 2 "" "--net-buffer is an option of rdmamigctl protect only" \
	migrate --pid 1 --net-buffer eth0 rdma:h:1
t 2 "" "bad --net-buffer '' \(an interface name\)" protect --pid 1 --net-buffer '' rdma:h:1
t 2 "" "bad --net-buffer 'a/b'" protect --pid 1 --net-buffer a/b rdma:h:1
t 2 "" "bad --net-buffer 'sixteen-chars-xx'" protect --pid 1 --net-buffer sixteen-chars-xx rdma:h:1
t 2 "" "no --pid given" protect rdma:h:1
t 2 "" "no address given" standby --pid 1
t 2 "" "Try 'rdmamigctl protect help'" protect --bogus
t 2 "" "invalid --timeout 'x'" monitor --timeout x
t 2 "" "option '--count' needs a value" monitor --count
t 2 "" "invalid option '--bogus'" monitor --bogus
t 2 "" "unknown event type 'foo'" monitor foo
t 2 "" "Try 'rdmamigctl monitor help'" monitor foo

# The commands that need the module.
if [ -d /sys/module/rdmamig ]; then
	t 0 "*" "" dev
	t 0 '^rdmamigctl ' "" version
	t 0 "*" "" dev show
	t 0 "*" "" session
	t 0 '^\[' "" -j dev
	t 0 '^\{' "" -j version
	t 0 '^\[' "" dev -j
	t 1 "" "no RDMA device 'no-such-dev'" dev show no-such-dev
	t 0 '^\[' "" -j session
	t 0 '^\[' "" session list -j
	t 0 '^\{"max_bandwidth":' "" -j param
	t 0 '^\{"pin_all":(true|false),"pull":(true|false)\}$' "" -j capability
	t 0 '^max-bandwidth ' "" param show
	t 0 '^pin-all (on|off)$' "" capability show
	t 1 "" "cannot show session 4294967295: No such file or directory \(kernel: no session" \
		session show 4294967295
	if command -v python3 >/dev/null; then
		for args in "-j dev" "-p dev" "-j version" "-p version" \
			    "-j session" "-p session" "-j param" "-p capability"; do
			n=$((n + 1))
			# shellcheck disable=SC2086
			if "$RDMAMIGCTL" $args | python3 -m json.tool >/dev/null; then
				echo "ok $n - rdmamigctl $args: valid JSON"
			else
				echo "not ok $n - rdmamigctl $args: valid JSON"
				failed=$((failed + 1))
			fi
		done
	fi
else
	notloaded='^rdmamigctl: the rdmamig kernel module is not loaded \(run: modprobe rdmamig\)$'
	for args in "dev" "dev show" "d s" "-j dev" "dev -j" "-p dev" \
		    "dev show rxe0" "version" "-j version" "session" \
		    "-j session list" "session show 1" "session set 1 max-b 1g" \
		    "session cancel 1" "capability" "capability set pin-all on" \
		    "param" "param set max-bandwidth 1" "monitor" \
		    "monitor -j --count 1 --timeout 1"; do
		# shellcheck disable=SC2086
		t 3 "" "$notloaded" $args
		n=$((n + 1))
		if [ "$(wc -l <"$err")" = 1 ]; then
			echo "ok $n - rdmamigctl $args: one line on stderr"
		else
			echo "not ok $n - rdmamigctl $args: one line on stderr"
			failed=$((failed + 1))
		fi
	done
fi

# Output that cannot be written is an error.
if [ -w /dev/full ]; then
	n=$((n + 1))
	if "$RDMAMIGCTL" help >/dev/full 2>"$err"; then
		echo "not ok $n - rdmamigctl help >/dev/full: exit 0"
		failed=$((failed + 1))
	elif grep -q "cannot write to standard output" "$err"; then
		echo "ok $n - rdmamigctl help >/dev/full"
	else
		echo "not ok $n - rdmamigctl help >/dev/full: no message"
		failed=$((failed + 1))
	fi
fi

echo "1..$n"
[ "$failed" = 0 ]
