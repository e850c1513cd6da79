#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest-init.sh - PID 1 of an rdmamig test guest
#
# The initramfs (mkinitramfs.sh) switch_roots here with the host's / as a
# read-only 9p lower layer under a tmpfs overlay, and everything mounted
# (/proc, /sys, /dev, /run, /tmp, /lib/modules, /mnt/out), so this is the
# host's bash running from the repository.  vm.sh passes the configuration
# on the kernel command line as rdmamig_vm.KEY=VALUE (not rdmamig.KEY:
# modprobe would hand those to the rdmamig module as parameters):
#
#   name=a|b      which VM this is; role=main|peer: run the command or serve
#                 the peer requests; topo=loop|pair
#   addr=IP/LEN   address of eth0; peer=IP  the other end's address
#   mtu=N         MTU of eth0
#   ko=PATH       module to insmod once rxe0 is up; noload=1 skips that
#
# The scratch directory of the run is the 9p share "out", mounted on
# /mnt/out and shared by both VMs of a pair:
#
#   cmd.sh        written by vm.sh: cd to the caller's cwd, exec the command
#   NAME.started  the command (main) or the agent (peer) has started
#   NAME.rc       exit status of the command (main) or of the agent (peer)
#   NAME.errors   problems of the harness itself (setup, module unload, taint)
#   dmesg-NAME.txt, kmemleak-NAME.txt   collected before power-off (the
#                 latter only with a kmemleak kernel, and only if it
#                 reports something: see kmemleak_check())
#   peer/         requests from VM A to VM B, see peer_agent() and ./peer
#
# The command's stdout and stderr go to the virtio serial port
# "rdmamig.out", which vm.sh streams to its stdout; the kernel and this
# script log to the console (ttyS0), which vm.sh saves as vm-NAME.log.
# Whatever happens, the guest powers off at the end.  Under TCG each exec
# of a host binary costs tens of milliseconds, so this script avoids forks
# where a builtin will do.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
# No "set -e" or "set -u": PID 1 must never exit (the kernel would panic);
# every path ends in poweroff_now.

vmdir=${0%/*}		# an absolute path: rdmamig_vm.init=
out=/mnt/out
state=/run/rdmamig-vm

exec </dev/null >/dev/console 2>&1
mkdir -p "$state/peer"
mkfifo "$state/nap"
exec {napfd}<>"$state/nap"

declare -A cfg=([name]=a [role]=main [topo]=loop [mtu]=1500)
for arg in $(</proc/cmdline); do
	case "$arg" in
	rdmamig_vm.*=*)
		key=${arg%%=*}
		cfg[${key#rdmamig_vm.}]=${arg#*=}
		;;
	esac
done
name=${cfg[name]}

# Messages go to the kernel log, so they have timestamps, sit among the
# kernel's in vm-NAME.log and dmesg-NAME.txt (printk.devkmsg=on is set).
log() {
	echo "rdmamig-vm: $*" > /dev/kmsg
}

# A problem of the harness: logged, and recorded for vm.sh to fail the run.
error() {
	log "error: $*"
	[ -d "$out" ] && echo "$*" >> "$out/$name.errors"
	[ -n "${port:-}" ] && echo "rdmamig-vm ($name): error: $*" > "$port"
	return 0
}

# Sleep without a fork (forks are slow under TCG): a read timing out on a
# FIFO nobody writes to.
nap() {
	read -r -t "$1" -u "$napfd" _
}

poweroff_now() {
	sync
	echo o > /proc/sysrq-trigger
	while :; do
		nap 60
	done
}

# Wait up to $2 seconds for the condition "$1" (evaluated) to hold.
wait_for() {
	local cond=$1 i
	for ((i = 0; i < $2 * 20; i++)); do
		eval "$cond" && return 0
		nap 0.05
	done
	eval "$cond"
}

# The guest's address on eth0, and rxe0 on top of it.
setup_rdma() {
	local state_file=/sys/class/infiniband/rxe0/ports/1/state

	# One modprobe and one ip for all: each exec counts under TCG.
	modprobe -a virtio_net virtio_console rdma_rxe rdma_cm ib_uverbs rdma_ucm ||
		{ error "cannot load the virtio and RDMA modules"; return 1; }
	wait_for '[ -e /sys/class/net/eth0 ]' 10 || { error "no eth0"; return 1; }
	ip -batch - <<-EOF || { error "cannot configure eth0"; return 1; }
	link set lo up
	link set eth0 mtu ${cfg[mtu]}
	addr add ${cfg[addr]} dev eth0
	link set eth0 up
	EOF
	rdma link add rxe0 type rxe netdev eth0 ||
		{ error "rdma link add rxe0 failed"; return 1; }
	if ! wait_for "[[ \$(<$state_file) == *ACTIVE* ]]" 30; then
		error "rxe0 port not ACTIVE: $(<$state_file)"
		return 1
	fi
	log "rxe0 is ACTIVE on eth0 ${cfg[addr]} mtu ${cfg[mtu]}"
}

load_module() {
	[ -n "${cfg[ko]:-}" ] && [ "${cfg[noload]:-0}" != 1 ] || return 0
	if ! insmod "${cfg[ko]}"; then
		error "insmod ${cfg[ko]} failed"
		return 1
	fi
	log "loaded ${cfg[ko]}"
}

export_env() {
	local addr=${cfg[addr]%/*}

	export RDMAMIG_TOPOLOGY=${cfg[topo]}
	export RDMAMIG_VM=$name
	export RDMAMIG_KVER
	RDMAMIG_KVER=$(</proc/sys/kernel/osrelease)
	export RDMAMIG_KO=${cfg[ko]:-}
	export RDMAMIG_IBDEV=rxe0
	export RDMAMIG_NETDEV=eth0
	export RDMAMIG_LOCAL_ADDR=$addr
	export RDMAMIG_PEER_ADDR=${cfg[peer]:-$addr}
	export RDMAMIG_OUT=$out
	# The tools read the secret from this file (vm.sh writes it).
	export RDMAMIG_SECRET_FILE=$out/secret
	export RDMAMIG_PEER=
	if [ "${cfg[topo]}" = pair ] && [ "${cfg[role]}" = main ]; then
		RDMAMIG_PEER=$vmdir/peer
	fi
	# RDMA registrations pin memory.
	ulimit -l unlimited
}

# Atomically, so that a poller never reads an empty file.
put() {
	echo "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"
}

# VM A's channel for the command's output: the virtio serial port named
# rdmamig.out (there is no udev for the /dev/virtio-ports/ link).
set_port() {
	local f

	[ "${cfg[role]}" = main ] || return 0
	for f in /sys/class/virtio-ports/*/name; do
		[ "$(<"$f")" = rdmamig.out ] || continue
		f=${f%/name}
		port=/dev/${f##*/}
		return 0
	done
	error "no virtio serial port rdmamig.out"
	return 1
}

last_line() {
	local line last=

	while IFS= read -r line; do
		last=$line
	done < "$1"
	echo "$last"
}

run_command() {
	local rc

	if [ "${cfg[topo]}" = pair ]; then
		log "waiting for the peer VM"
		until [ -e "$out/peer/ready" ]; do
			if [ -e "$out/peer/dead" ]; then
				error "the peer VM failed to come up (see vm-b.log)"
				return 1
			fi
			nap 0.05
		done
	fi

	put "$out/$name.started" "$(</proc/uptime)"
	log "running: $(last_line "$out/cmd.sh")"
	bash "$out/cmd.sh" </dev/null >"$port" 2>&1 {napfd}<&-
	rc=$?
	put "$out/$name.rc" "$rc"
	log "command exited with status $rc"
}

# One request from VM A: run in its own session so that --kill reaches
# everything it started; rc.ID appears (atomically) once it is done.
peer_run() {
	local id=$1 dir=$out/peer pid rc

	setsid bash "$dir/run/$id" </dev/null >"$dir/out.$id" 2>"$dir/err.$id" \
		{napfd}<&- &
	pid=$!
	echo "$pid" > "$state/peer/$id.pid"
	wait "$pid"
	rc=$?
	rm -f "$state/peer/$id.pid"
	echo "$rc" > "$dir/tmp/rc.$id"
	mv -f "$dir/tmp/rc.$id" "$dir/rc.$id"
}

# VM B serves the requests ./peer (in VM A) drops into $out/peer/req/,
# until $out/peer/stop appears.  Requests run concurrently (peer --bg).
peer_agent() {
	local dir=$out/peer f id sig pidf

	put "$out/$name.started" "$(</proc/uptime)"
	touch "$dir/ready"
	log "peer agent ready"
	until [ -e "$dir/stop" ]; do
		for f in "$dir"/req/*; do
			[ -e "$f" ] || continue
			id=${f##*/}
			mv -f "$f" "$dir/run/$id" || continue
			log "peer request $id: $(last_line "$dir/run/$id")"
			peer_run "$id" &
		done
		for f in "$dir"/kill/*; do
			[ -e "$f" ] || continue
			id=${f##*/}
			pidf=$state/peer/$id.pid
			if [ -e "$pidf" ]; then
				sig=$(<"$f")
				kill -s "${sig:-TERM}" -- "-$(<"$pidf")" 2>/dev/null
			elif [ ! -e "$dir/rc.$id" ]; then
				continue	# not started yet: retry next round
			fi
			rm -f "$f"
		done
		nap 0.05
	done

	# Whatever is still running was left behind by the test.
	for f in "$state"/peer/*.pid; do
		[ -e "$f" ] || continue
		id=${f##*/}
		log "peer request ${id%.pid} still running at stop, killing it"
		kill -TERM -- "-$(<"$f")" 2>/dev/null
	done
	# shellcheck disable=SC2016 # wait_for evaluates it
	wait_for '! compgen -G "$state/peer/*.pid" >/dev/null' 5 ||
		for f in "$state"/peer/*.pid; do
			kill -KILL -- "-$(<"$f")" 2>/dev/null
		done
	wait
	put "$out/$name.rc" 0
}

# Kernels with kmemleak (the debug kernel, scripts/debug-kernel.sh): what
# the boot and the RDMA set-up leave behind is the kernel's business, so
# forget it (clear) before the module is loaded; every leak reported later
# was allocated while the test ran.  The kernel has no scan timer
# (DEBUG_KMEMLEAK_AUTO_SCAN=n): the harness scans at the end, in teardown.
kmemleak=/sys/kernel/debug/kmemleak
kmemleak_clear() {
	[ -w "$kmemleak" ] || return 0
	echo clear > "$kmemleak"
	log "kmemleak: cleared the boot's suspects"
}

# Scan, let grace periods and deferred frees run, scan again (an object
# younger than 5 s is never reported), then append what kmemleak lists to
# kmemleak-NAME.txt, headed by $1, and clear it so that a later check
# only shows new leaks.  Any report fails the run (vm.sh).
kmemleak_check() {
	local report

	[ -w "$kmemleak" ] || return 0
	echo scan > "$kmemleak"
	nap 5
	echo scan > "$kmemleak"
	report=$(<"$kmemleak")
	[ -n "$report" ] || { log "kmemleak: nothing $1"; return 0; }
	{
		echo "# kmemleak report $1"
		echo "$report"
	} >> "$out/kmemleak-$name.txt"
	echo clear > "$kmemleak"
	error "kmemleak reports leaks $1 (kmemleak-$name.txt)"
}

# Checks that only make sense once the test is over.
teardown() {
	local mod tainted flags="" bit
	local -A taint_bits=([4]=M [5]=B [7]=D [9]=W [14]=L)

	# Like a shutdown: whatever the test left running goes first, so that
	# only a real reference leak keeps the module from unloading.
	kill -TERM -1 2>/dev/null && nap 0.5
	kill -KILL -1 2>/dev/null
	wait
	if [ -n "${cfg[ko]:-}" ]; then
		mod=${cfg[ko]##*/}
		mod=${mod%.ko}
		mod=${mod//-/_}
		if [ -d "/sys/module/$mod" ]; then
			# While the module is loaded, its frames in the leak
			# backtraces resolve to symbols; after rmmod they are bare
			# addresses, which its .text address (logged) explains.
			kmemleak_check "with $mod loaded"
			[ -w "$kmemleak" ] &&
				log "$mod .text at $(<"/sys/module/$mod/sections/.text")"
			rmmod "$mod" ||
				error "rmmod $mod failed after the test (module still in use?)"
		fi
	fi
	kmemleak_check "at the end"
	# Warnings, oopses, lockups, bad pages and machine checks taint the
	# kernel even when their messages got lost.
	tainted=$(</proc/sys/kernel/tainted)
	for bit in "${!taint_bits[@]}"; do
		((tainted & (1 << bit))) && flags+=${taint_bits[$bit]}
	done
	[ -n "$flags" ] && error "kernel tainted $flags ($tainted)"
	dmesg > "$out/dmesg-$name.txt"
}

main() {
	local uptime

	port=
	echo "vm-$name" > /proc/sys/kernel/hostname
	if ! setup_rdma || ! set_port || ! kmemleak_clear || ! load_module; then
		[ "${cfg[role]}" = peer ] && touch "$out/peer/dead"
		teardown
		return
	fi
	export_env
	read -r uptime _ < /proc/uptime
	log "up after $uptime s"

	if [ "${cfg[role]}" = main ]; then
		run_command
		[ "${cfg[topo]}" = pair ] && touch "$out/peer/stop"
	else
		peer_agent
	fi
	teardown
}

main
log "powering off"
poweroff_now
