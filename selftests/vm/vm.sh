#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vm.sh - run a command in the rdmamig QEMU testbed
#
#   vm.sh -k KVER -t loop|pair [-m KO [-n]] [-o LOGDIR] [-T SECONDS]
#         [-c CPUS] [-M MEM_MB] -- CMD [ARGS...]
#
#   -k KVER     guest kernel, as extracted by scripts/deps.sh into
#               build/kernels/KVER
#   -t loop     one VM (2 vCPUs), one rxe device talking to itself
#   -t pair     VMs A and B (1 vCPU each) on a point-to-point link; CMD runs
#               in A and reaches B with $RDMAMIG_PEER (selftests/vm/peer)
#   -m KO       module to insmod (absolute path; the host / is the guest's)
#               once rxe0 is up, and to rmmod once CMD is done
#   -n          do not insmod KO (CMD does), only pass it in $RDMAMIG_KO
#   -o LOGDIR   where the logs go (default: the run's build/vm-runs/ dir)
#   -T SECONDS  give up on the guests after this long (default 1200); a
#               hung guest is asked for its blocked tasks and CPU
#               backtraces (sysrq w, l) before it is killed
#   -c CPUS     vCPUs per VM;  -M MEM_MB  memory per VM (default 2048)
#
# CMD runs as root in VM A, in the caller's working directory, with
# RDMAMIG_TOPOLOGY, RDMAMIG_VM, RDMAMIG_KVER, RDMAMIG_KO, RDMAMIG_IBDEV
# (rxe0), RDMAMIG_NETDEV (eth0), RDMAMIG_LOCAL_ADDR, RDMAMIG_PEER_ADDR,
# RDMAMIG_OUT (/mnt/out, a host directory kept as LOGDIR/out),
# RDMAMIG_SECRET_FILE (a random secret, the same in both VMs) and
# RDMAMIG_PEER in its environment.  In pair, CMD may have VM B killed
# (peer --kill-vm): its QEMU gets SIGKILL, which is then no failure of the
# run (VM B's console log up to then is still checked, VM A's entirely).
# Its stdout and stderr are streamed to
# this script's stdout; vm.sh's own messages go to stderr, prefixed "vm:".
# The guests see the host's files read-only (writes go to a tmpfs overlay)
# at the same paths, except for /tmp, /run, /dev, /proc and /sys, which
# are their own; the repository itself is shown at its path even when it
# lives under /tmp or /run (a CI clone).  CMD, KO and the working
# directory must be inside the repository or outside those trees.
#
# LOGDIR gets vm-a.log (VM A's console: the kernel log and the harness'
# messages), output-a.txt (CMD's output), dmesg-a.txt, likewise for VM B,
# out/ and "result" (status=ok|fail, cmd_rc=, one problem= line per
# problem).  The exit status is CMD's, except:
#   1    CMD succeeded, but a guest logged a kernel warning, BUG, oops,
#        lockdep or kmemleak report, hung task, ... or the harness in the
#        guest failed (module unload, VM B, ...)
#   124  the guests did not finish within the time limit
#   125  CMD never ran or its status is unknown (boot or setup failure)
#
# An oops panics the guest (oops=panic): the run then ends at once instead
# of at the time limit, as a test that oopsed usually hangs.
#
# Environment: RDMAMIG_KVM=1 uses KVM instead of TCG (where KVM works with
# a stock kernel); RDMAMIG_KCMDLINE is appended to the guests' kernel
# command line (e.g. 'dyndbg="module rdmamig +p"', or
# sysctl.kernel.panic_on_oops=0 to carry on after an oops).
set -euo pipefail

selfdir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$selfdir/../.." && pwd)

# Kernel messages that fail a run, wherever they appear.
KERNEL_PROBLEMS='WARNING:|BUG:|kernel BUG at|Oops: |general protection fault|'
KERNEL_PROBLEMS+='scheduling while atomic|INFO: task .* blocked for more than|'
KERNEL_PROBLEMS+='Kernel panic|refcount_t: |list_(add|del) corruption|UBSAN: |'
KERNEL_PROBLEMS+='unreferenced object 0x|suspected memory leak|detected stall'

ADDR_A=10.0.2.15
ADDR_B=10.0.2.16
MTU=9000

usage() {
	sed -n '6,21s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

note() {
	echo "vm: $*" >&2
}

die() {
	note "$*"
	exit 125
}

kver='' topo='' ko='' noload='' logdir='' timeout=1200 cpus='' mem=2048
while getopts k:t:m:no:T:c:M:h opt; do
	case "$opt" in
	k) kver=$OPTARG ;;
	t) topo=$OPTARG ;;
	m) ko=$OPTARG ;;
	n) noload=1 ;;
	o) logdir=$OPTARG ;;
	T) timeout=$OPTARG ;;
	c) cpus=$OPTARG ;;
	M) mem=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
cmd=("$@")

[ -n "$kver" ] && [ ${#cmd[@]} -gt 0 ] || usage
case "$topo" in
loop) cpus=${cpus:-2} ;;
pair) cpus=${cpus:-1} ;;
*) usage ;;
esac
[[ $timeout =~ ^[0-9]+$ && $cpus =~ ^[0-9]+$ && $mem =~ ^[0-9]+$ ]] || usage

# Resolved: build/kernels may be a symlink (a worktree sharing the
# kernels of another), and the guest follows no symlink out of the 9p root.
kroot=$(realpath -m "$top/build/kernels/$kver/root")
kernel=$kroot/boot/vmlinuz-$kver
[ -f "$kernel" ] || die "no guest kernel $kernel (run scripts/deps.sh)"
# Paths go on the kernel command line and in QEMU options.
[[ $top =~ ^[^[:space:],]+$ ]] || die "the repository path must not contain blanks or commas"
if [ -n "$ko" ]; then
	path=$(realpath -e -- "$ko" 2>/dev/null) || die "no module $ko"
	ko=$path
	[[ $ko =~ ^[^[:space:]]+$ ]] || die "the module path must not contain blanks"
fi

bootdir=$top/build/vm-boot
mkdir -p "$bootdir"

# The initramfs only depends on the kernel and on mkinitramfs.sh.
hash=$(sha256sum "$selfdir/mkinitramfs.sh" | cut -c1-12)
initrd=$bootdir/initramfs-$kver-$hash.cpio.gz
if [ ! -f "$initrd" ]; then
	"$selfdir/mkinitramfs.sh" "$kver" "$initrd" || die "cannot build the initramfs"
	find "$bootdir" -name "initramfs-$kver-*.cpio.gz" ! -path "$initrd" -delete
fi

# Under TCG, the BIOS and the decompression of the bzImage take 3 s of
# every boot.  QEMU boots an uncompressed vmlinux straight through its
# PVH entry point, so unpack the bzImage's payload once per kernel.
# Prints the image to boot: the vmlinux, or the bzImage if that fails.
pvh_kernel() {
	local config=$kroot/boot/config-$kver vmlinux=$bootdir/vmlinux-$kver
	local magic unpack off tmp

	[ "$vmlinux" -nt "$kernel" ] && { echo "$vmlinux"; return; }
	if grep -q '^CONFIG_KERNEL_XZ=y' "$config"; then
		magic='\xfd7zXZ\x00' unpack='xz -dcq --single-stream'
	elif grep -q '^CONFIG_KERNEL_ZSTD=y' "$config"; then
		magic='\x28\xb5\x2f\xfd' unpack='zstd -dcq'
	elif grep -q '^CONFIG_KERNEL_GZIP=y' "$config"; then
		magic='\x1f\x8b\x08' unpack='gzip -dcq'
	fi
	if [ -z "${magic:-}" ] || ! grep -q '^CONFIG_PVH=y' "$config"; then
		echo "$kernel"
		return
	fi
	off=$(LC_ALL=C grep -obUaP -m 1 "$magic" "$kernel" | head -n 1 | cut -d: -f1) || true
	tmp=$(mktemp "$vmlinux.XXXXXX")
	# The payload is followed by other data: ignore the complaints.
	tail -c +$((off + 1)) "$kernel" | $unpack > "$tmp" 2>/dev/null || true
	if [ -n "$off" ] && [ "$(head -c 4 "$tmp")" = $'\x7fELF' ]; then
		chmod 644 "$tmp"
		mv -f "$tmp" "$vmlinux"
		echo "$vmlinux"
	else
		rm -f "$tmp"
		echo "$kernel"
	fi
}
kernel=$(pvh_kernel)

# Per-run scratch directory; its out/ is the guests' /mnt/out.
mkdir -p "$top/build/vm-runs"
run=$(mktemp -d "$top/build/vm-runs/$(date +%Y%m%d-%H%M%S)-$topo-XXXXXX")
share=$run/out
mkdir -p "$share"/peer/{req,run,kill,tmp}
# Peer authentication is required by default: one secret for both VMs.
(umask 077 && head -c 32 /dev/urandom > "$share/secret")
if [ -z "$logdir" ]; then
	logdir=$run
else
	mkdir -p "$logdir"
	logdir=$(cd "$logdir" && pwd)
	# Only what an earlier run left: LOGDIR may be shared with other files.
	rm -rf "$logdir/out" "$logdir/result" "$logdir"/{vm,dmesg,kmemleak,output,qemu}-[ab].*
fi

# The command, run by guest-init.sh in VM A; the host's / is the guest's,
# so the caller's directory exists there too.
{
	printf 'cd -- %q || exit 126\n' "$PWD"
	printf 'exec'
	printf ' %q' "${cmd[@]}"
	printf '\n'
} > "$share/cmd.sh"

# shellcheck disable=SC2054 # commas separate QEMU's suboptions
if [ "${RDMAMIG_KVM:-0}" = 1 ]; then
	accel=(-accel kvm -cpu host)
else
	accel=(-accel tcg,thread=multi -cpu max)
fi

declare -A qpid=() stopped=()
tail_pid=
collected=

# qemu_start NAME ROLE ADDR PEER_ADDR NETDEV: start one VM in the background.
qemu_start() {
	local name=$1 role=$2 addr=$3 peer=$4 netdev=$5 append args

	# All of the kernel log on the console (no "quiet": it would hide
	# warnings), kept apart from CMD's output.
	append="console=ttyS0 printk.devkmsg=on log_buf_len=4M"
	append+=" oops=panic panic=-1 sysrq_always_enabled=1"
	append+=" rdmamig_vm.init=$selfdir/guest-init.sh"
	append+=" rdmamig_vm.kmods=$kroot/lib/modules"
	append+=" rdmamig_vm.top=$top"
	append+=" rdmamig_vm.name=$name rdmamig_vm.role=$role"
	append+=" rdmamig_vm.topo=$topo rdmamig_vm.addr=$addr/24"
	append+=" rdmamig_vm.peer=$peer rdmamig_vm.mtu=$MTU"
	[ -n "$ko" ] && append+=" rdmamig_vm.ko=$ko"
	[ -n "$noload" ] && append+=" rdmamig_vm.noload=1"
	append+=" ${RDMAMIG_KCMDLINE:-}"
	# A monitor on a pair of FIFOs, to send sysrq keys to a hung guest.
	mkfifo "$run/mon-$name.in" "$run/mon-$name.out"

	# shellcheck disable=SC2054
	args=(
		-name "rdmamig-$name" -nodefaults -no-user-config
		-display none -no-reboot
		-machine pc "${accel[@]}" -smp "$cpus" -m "$mem"
		-kernel "$kernel" -initrd "$initrd" -append "$append"
		-serial "file:$logdir/vm-$name.log"
		-virtfs local,path=/,mount_tag=rootfs,security_model=none,readonly=on,multidevs=remap
		-virtfs "local,path=$share,mount_tag=out,security_model=none,multidevs=remap"
		-chardev "pipe,id=mon,path=$run/mon-$name" -mon chardev=mon
		-netdev "$netdev"
		-device "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:0$name,host_mtu=$MTU"
	)
	# CMD's output has a channel of its own, away from the kernel's.
	if [ "$role" = main ]; then
		: > "$logdir/output-$name.txt"
		# shellcheck disable=SC2054
		args+=(
			-device virtio-serial-pci
			-chardev "file,id=out,path=$logdir/output-$name.txt"
			-device virtserialport,chardev=out,name=rdmamig.out
		)
	fi
	qemu-system-x86_64 "${args[@]}" </dev/null >"$logdir/qemu-$name.err" 2>&1 &
	qpid[$name]=$!
}

alive() {
	[ -n "${qpid[$1]:-}" ] && kill -0 "${qpid[$1]}" 2>/dev/null
}

# Ask a hung guest's kernel for its blocked tasks and CPU backtraces, on
# its console, through the keyboard: no need for the guest's cooperation.
sysrq_dump() {
	local key
	for key in w l; do
		echo "sendkey alt-sysrq-$key" > "$run/mon-$1.in"
	done
}

stop_vm() {
	local i

	alive "$1" || return 0
	stopped[$1]=1
	kill -TERM "${qpid[$1]}" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	kill -KILL "${qpid[$1]}" 2>/dev/null || true
	wait "${qpid[$1]}" 2>/dev/null || true
}

# Pair: A listens on a free port of the loopback, B connects to it.  The
# port is picked at random, so concurrent runs rarely collide, and A's
# QEMU must be the one listening on it before B may connect.
start_pair() {
	local port try i

	for ((try = 0; try < 10; try++)); do
		port=$(shuf -i 20000-60999 -n 1)
		[ -z "$(ss -Htan "sport = :$port")" ] || continue
		qemu_start a main "$ADDR_A" "$ADDR_B" \
			"socket,id=n0,listen=127.0.0.1:$port"
		for ((i = 0; i < 100; i++)); do
			alive a || break
			if ss -Hltnp "sport = :$port" | grep -q "pid=${qpid[a]},"; then
				qemu_start b peer "$ADDR_B" "$ADDR_A" \
					"socket,id=n0,connect=127.0.0.1:$port"
				return 0
			fi
			sleep 0.05
		done
		stop_vm a
		grep -q 'Address already in use' "$logdir/qemu-a.err" ||
			die "QEMU failed to start: $(cat "$logdir/qemu-a.err")"
	done
	die "no free port for the VM link"
}

# Keep what the guests left in the share, and the logs; drop the rest.
collect() {
	local name f

	[ -z "$collected" ] || return 0
	collected=1
	for name in a b; do
		for f in dmesg kmemleak; do
			[ -e "$share/$f-$name.txt" ] &&
				mv -f "$share/$f-$name.txt" "$logdir/"
		done
		[ -s "$logdir/qemu-$name.err" ] || rm -f "$logdir/qemu-$name.err"
	done
	if [ "$logdir" != "$run" ]; then
		mv "$share" "$logdir/out"
		rm -rf "$run"
	fi
}

# shellcheck disable=SC2317 # called from the traps
cleanup() {
	local name

	for name in "${!qpid[@]}"; do
		stop_vm "$name"
	done
	if [ -n "$tail_pid" ]; then
		kill "$tail_pid" 2>/dev/null || true
		wait "$tail_pid" 2>/dev/null || true
	fi
	collect
}

trap cleanup EXIT
# Re-raise, so that a calling shell (check.sh) stops as well.
trap 'note interrupted; cleanup; trap - INT EXIT; kill -INT $$' INT
trap 'note terminated; cleanup; trap - TERM EXIT; kill -TERM $$' TERM

t0=$(date +%s.%N)
elapsed() {
	echo "$(date +%s.%N) $t0" | awk '{ printf "%.1f", $1 - $2 }'
}

if [ "$topo" = loop ]; then
	# rxe loops its traffic back inside the guest; the NIC only needs to
	# exist, with a backend that reaches nothing.
	qemu_start a main "$ADDR_A" "$ADDR_A" "user,id=n0,restrict=on,ipv6=off"
else
	start_pair
fi
note "$kver $topo: logs in $logdir"

# Stream CMD's output as it comes; tail exits once QEMU A has.
tail -n +1 -f --pid="${qpid[a]}" -s 0.1 "$logdir/output-a.txt" &
tail_pid=$!

problems=()
problem() {
	problems+=("$*")
	note "$*"
}

deadline=$((SECONDS + timeout))
killed_b=
b_grace=
started=
hung=
while :; do
	if [ -z "$started" ] && [ -e "$share/a.started" ]; then
		started=$(elapsed)
		note "command started ${started}s after QEMU was launched"
	fi
	# The test asked for VM B to die (peer --kill-vm): its QEMU is killed
	# like a host losing power; from then on the peer is dead, and that
	# is no problem of the run.  Right before, SysRq-H (help) on VM A's
	# keyboard marks the moment in VM A's kernel log ("sysrq: HELP"), for
	# the test to time what follows by VM A's own clock.
	if [ "$topo" = pair ] && [ -z "$killed_b" ] && [ -e "$share/peer/kill-vm" ]; then
		killed_b=1
		stopped[b]=1
		if alive b; then
			alive a && echo "sendkey alt-sysrq-h" > "$run/mon-a.in"
			kill -KILL "${qpid[b]}" 2>/dev/null || true
			wait "${qpid[b]}" 2>/dev/null || true
			note "killed VM B's QEMU (SIGKILL), as the test asked"
		fi
		touch "$share/peer/dead"
	fi
	if [ "$topo" = pair ] && ! alive b && alive a &&
	   [ ! -e "$share/peer/stop" ] && [ ! -e "$share/peer/dead" ]; then
		# Tell A not to wait for B any more.
		touch "$share/peer/dead"
		problem "VM B stopped before VM A's command was done (see $logdir/vm-b.log)"
	fi
	alive a || alive b || break
	if ((SECONDS >= deadline)); then
		for name in a b; do
			alive "$name" || continue
			hung=1
			problem "VM ${name^^} did not finish within $timeout s, killed it (see $logdir/vm-$name.log)"
			sysrq_dump "$name"
		done
		sleep 3
		for name in a b; do
			stop_vm "$name"
		done
		break
	fi
	# B powers off shortly after A's command is done, or A is gone.
	if ! alive a && alive b; then
		[ -e "$share/peer/stop" ] || touch "$share/peer/stop"
		b_grace=${b_grace:-$((SECONDS + 60))}
		if ((SECONDS >= b_grace)); then
			problem "VM B did not power off after VM A (see $logdir/vm-b.log)"
			stop_vm b
		fi
	fi
	sleep 0.2
done
wait "$tail_pid" 2>/dev/null || true
tail_pid=
note "guests done after $(elapsed)s"

# What the guests say about themselves.
cmd_rc=
[ -s "$share/a.rc" ] && cmd_rc=$(<"$share/a.rc")
for name in a b; do
	[ -e "$logdir/qemu-$name.err" ] && [ -z "${stopped[$name]:-}" ] || continue
	! grep -q 'terminating on signal' "$logdir/qemu-$name.err" ||
		problem "QEMU of VM ${name^^} was killed: $(<"$logdir/qemu-$name.err")"
done
[ -n "$cmd_rc" ] || [ -n "$hung" ] ||
	problem "VM A ended without a command status (boot or setup failure, panic?): see $logdir/vm-a.log"
for name in a b; do
	[ -e "$share/$name.errors" ] || continue
	while IFS= read -r line; do
		problem "VM ${name^^}: $line"
	done < "$share/$name.errors"
done

collect

# And what the kernels say: the console holds everything up to a hang or a
# panic, the dmesg copy what a console may have missed at the end.  The
# harness' own lines (they quote commands) do not count.
scan_kernel_log() {
	awk -v re="$KERNEL_PROBLEMS" '
		/rdmamig-vm: |initramfs: / { next }
		$0 ~ re {
			if (!n++) { sub(/\r$/, ""); first = NR ": " substr($0, 1, 200) }
		}
		END { if (n) print first " (" n " matching lines)" }' "$1"
}
for name in a b; do
	for f in "$logdir/vm-$name.log" "$logdir/dmesg-$name.txt"; do
		[ -e "$f" ] || continue
		hit=$(scan_kernel_log "$f")
		[ -n "$hit" ] || continue
		problem "kernel problem in $f:${hit%%: *}: ${hit#*: }"
		break
	done
done
for f in "$logdir"/kmemleak-[ab].txt; do
	[ -s "$f" ] && problem "kmemleak report in $f"
done
[ -n "$hung" ] && [ -e "$logdir/vm-a.log" ] &&
	{ note "last lines of VM A's console:"; tail -n 15 "$logdir/vm-a.log" | tr -d '\r' | sed 's/^/vm:   /' >&2; }

if [ -n "$hung" ]; then
	rc=124
elif [ -z "$cmd_rc" ]; then
	rc=125
elif [ "$cmd_rc" -eq 0 ] && [ ${#problems[@]} -gt 0 ]; then
	rc=1
else
	rc=$cmd_rc
fi

{
	if [ ${#problems[@]} -eq 0 ] && [ "$rc" -eq 0 ]; then
		echo "status=ok"
	else
		echo "status=fail"
	fi
	echo "cmd_rc=$cmd_rc"
	echo "exit=$rc"
	echo "boot_seconds=$started"
	[ -n "$killed_b" ] && echo "vm_b=killed on request"
	for p in "${problems[@]}"; do
		echo "problem=$p"
	done
} > "$logdir/result"

note "exit status $rc${cmd_rc:+ (command: $cmd_rc)}"
exit "$rc"
