#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Debian packages of build/deb/ (scripts/deb.sh, make deb), installed
# in the guest as an administrator would, and purged:
#  - apt-get installs rdmamig-dkms and rdmamigctl from the files; DKMS
#    builds the module for the running kernel and installs it
#    (dkms status): in make check, the build is the one DKMS made of the
#    same package on the host (scripts/deb.sh --binaries: a binaries-only
#    DKMS tarball, which the package's postinst loads with dkms ldtarball
#    from /usr/share/rdmamig-dkms/), checked to be that very file (or,
#    were DKMS to compress it, to have its srcversion); with
#    RDMAMIG_DEB_GUEST_BUILD=1 (make check-full) or without that tarball,
#    DKMS compiles in the guest, 11 minutes under TCG;
#    modprobe rdmamig loads that module, which has no
#    fault injection (no parameter "hostile", no rdmamig_hostile_*
#    code: the Kbuild option CONFIG_RDMAMIG_FAULT_INJECTION is off);
#  - the installed rdmamigctl lists rxe0 and reports the module's
#    version; man rdmamigctl shows its page; its bash completion
#    completes objects and, from the module, device names;
#    <linux/rdmamig.h> compiles;
#  - on demand: kmod static-nodes lists /dev/rdmamig (c 10:247); with
#    the module unloaded and the node created as systemd-tmpfiles does at
#    boot, an open() of it loads the module, and so does a VMM's
#    (tools/rdmamig-vmm) migration started with the module unloaded;
#  - a process migrates with the installed rdmamigctl (checksums equal);
#  - apt-get purge leaves no rdmamig.ko under /lib/modules, no
#    /usr/src/rdmamig-*, no /var/lib/dkms/rdmamig, none of the packages'
#    files, and no static node at the next boot.
# The testbed's own module (RDMAMIG_KO) is unloaded first and loaded
# again at the end.  The guest's /lib/modules is the host's extraction of
# the guest kernel, read-only and without the build link: the test lays a
# tmpfs overlay on it, with build -> /usr/src/linux-headers-$(uname -r)
# (the host's headers, scripts/deps.sh), and removes it at the end.  The
# guest has no network: dkms and the packages' other dependencies must be
# installed on the host (scripts/deb.sh does).  DKMS compiles from a
# copy of the kernel's kbuild tree in tmpfs (build/deb/kbuild/KVER.tar,
# scripts/deb.sh: see kbuild_tmpfs), and needs /dev/fd, which the
# testbed's /dev lacks.  Loop topology only.
source "$(dirname "$0")/lib.sh"
require_root

DEBDIR=${RDMAMIG_DEB_DIR:-$TOP/build/deb}
VMM=${RDMAMIG_VMM:-$TOP/tools/rdmamig-vmm/rdmamig-vmm}
WORKLOAD=${RDMAMIG_WORKLOAD:-$TOP/tools/rdmamig-workload/rdmamig-workload}
ADDR=${RDMAMIG_LOCAL_ADDR:-10.0.2.15}
CTL=/usr/sbin/rdmamigctl
KVER=$(uname -r)
MINOR=247

skip_all()
{
	echo "1..0 # SKIP $*"
	exit $KSFT_SKIP
}

# DKMS compiles the module in the guest, minutes under TCG: make check
# does it with its first kernel only (selftests/vm/check.sh -n).
[ "${RDMAMIG_ONCE_PER_CHECK:-}" = done ] &&
	skip_all "ran with the first kernel of this make check (run it alone: run_tests.sh deb_install_test.sh)"
debs=("$DEBDIR"/rdmamig-dkms_*_all.deb "$DEBDIR"/rdmamigctl_*_"$(dpkg --print-architecture)".deb)
[ -f "${debs[0]}" ] && [ -f "${debs[1]}" ] ||
	skip_all "no packages in $DEBDIR: run 'make deb' (scripts/deb.sh) first"
[ "${RDMAMIG_TOPOLOGY:-loop}" = loop ] || skip_all "runs in the loop topology"
command -v dkms >/dev/null || skip_all "dkms is not installed on the host (scripts/deb.sh installs it)"
[ -e "/usr/src/linux-headers-$KVER/Makefile" ] ||
	skip_all "no /usr/src/linux-headers-$KVER on the host (scripts/deps.sh)"
for p in "$VMM" "$WORKLOAD"; do
	[ -x "$p" ] || skip_all "$p not built (make tools)"
done
command -v jq >/dev/null || skip_all "jq not installed"
dpkg-query -W -f='${Status}' rdmamig-dkms 2>/dev/null | grep -q 'ok installed' &&
	skip_all "rdmamig-dkms is installed already (on the host?)"

version=$(dpkg-deb -f "${debs[0]}" Version)
version=${version%-*}
# The host's DKMS build of the package for this kernel (scripts/deb.sh
# --binaries), unless the guest is to compile.  The test's own copy of it
# goes in $tmp/host.ko.
binaries=$DEBDIR/dkms/rdmamig-$version-$KVER.dkms.tar.gz
tarball_root=/usr/share/rdmamig-dkms
[ "${RDMAMIG_DEB_GUEST_BUILD:-}" = 1 ] || [ ! -f "$binaries" ] || [ "$binaries" -ot "${debs[0]}" ] && binaries=
tmp=$(mktemp -d)
overlay=/run/deb_install_test
ulimit -l unlimited
pids=()

show()
{
	local f
	for f in "$@"; do
		[ -s "$tmp/$f" ] && tail -n "${SHOW_LINES:-25}" "$tmp/$f" | sed "s|^|# $f: |"
	done
	return 0
}

unload()
{
	module_loaded || return 0
	wait_for 10 rmmod rdmamig 2>/dev/null
}

# /lib/modules writable, with the kernel's build link, for DKMS and depmod.
overlay_modules()
{
	mkdir -p "$overlay/upper" "$overlay/work" &&
	mount -t overlay overlay \
		-o "lowerdir=/lib/modules,upperdir=$overlay/upper,workdir=$overlay/work" \
		/lib/modules || return 1
	[ -e "/lib/modules/$KVER/build" ] ||
		ln -s "/usr/src/linux-headers-$KVER" "/lib/modules/$KVER/build"
}

# The kernel's kbuild tree in tmpfs, over the host's paths: scripts/deb.sh
# packs it into build/deb/kbuild/KVER.tar.  Over 9p, every lookup of gcc's
# include search is a round trip to QEMU: DKMS took 14 minutes instead of
# 4 under TCG.
kbuild_mounts=()
kbuild_tmpfs()
{
	local tar=$DEBDIR/kbuild/$KVER.tar d

	if [ ! -f "$tar" ]; then
		diag "no $tar: DKMS compiles from the host's files over 9p (slow)"
		return 0
	fi
	mkdir -p "$overlay/kbuild" && tar -C "$overlay/kbuild" -xf "$tar" || return 1
	for d in "$overlay"/kbuild/usr/*/*/; do
		d=${d%/}
		d=${d#"$overlay/kbuild"}
		mount --bind "$overlay/kbuild$d" "$d" || return 1
		kbuild_mounts+=("$d")
	done
}

# The links a booted system has in /dev (systemd or udev make them, the
# testbed does not): dkms needs /dev/fd for bash's <(...).
devlinks=()
dev_links()
{
	local l
	for l in fd:/proc/self/fd stdin:/proc/self/fd/0 stdout:/proc/self/fd/1 \
		 stderr:/proc/self/fd/2; do
		[ -e "/dev/${l%%:*}" ] || [ -L "/dev/${l%%:*}" ] && continue
		ln -s "${l#*:}" "/dev/${l%%:*}" && devlinks+=("/dev/${l%%:*}")
	done
}

# apt_run LOG ARGS...: apt-get in a session of its own, waited for so that
# a TERM (run_tests.sh's timeout) runs cleanup at once, which kills it
# with the DKMS build under it.
job=
apt_run()
{
	local log=$1 rc
	shift
	DEBIAN_FRONTEND=noninteractive setsid apt-get -y "$@" >"$log" 2>&1 &
	job=$!
	wait "$job"
	rc=$?
	job=
	return $rc
}

# Everything as it was, the testbed's module loaded again.  Not after a
# TERM: there is no time to purge, and the guest's changes go with it.
terminated=
# shellcheck disable=SC2317 # called from the traps
cleanup()
{
	local d
	[ -n "$job" ] && kill -KILL -- "-$job" 2>/dev/null
	kill -KILL "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	unload
	if [ -z "$terminated" ] &&
	   dpkg-query -W -f='${Status}\n' rdmamig-dkms rdmamigctl 2>/dev/null | grep -q 'ok installed'; then
		apt_run "$tmp/cleanup.log" purge rdmamig-dkms rdmamigctl
	fi
	# The static node: the testbed's module makes its own (devtmpfs).
	[ -c /dev/rdmamig ] && rm -f /dev/rdmamig
	[ -z "$binaries" ] || rm -rf "$tarball_root"
	grep -q " /lib/modules overlay " /proc/mounts && umount -l /lib/modules
	for d in "${kbuild_mounts[@]}"; do
		umount -l "$d"
	done
	rm -rf "$tmp" "$overlay"
	[ ${#devlinks[@]} -eq 0 ] || rm -f "${devlinks[@]}"
	module_load
}
trap cleanup EXIT
trap 'terminated=1; exit 1' TERM INT

ktap_plan 14
diag "packages: ${debs[*]##*/} (version $version), kernel $KVER"
t0=$SECONDS

# ---- Install -----------------------------------------------------------------

unload || diag "cannot unload the testbed's module"
overlay_modules || diag "cannot lay an overlay on /lib/modules"
dev_links
t1=$SECONDS
if [ -n "$binaries" ]; then
	# Where the package's postinst (dh_dkms: common.postinst NAME VERSION
	# /usr/share/NAME-dkms) looks for a binaries-only tarball.
	mkdir -p "$tarball_root" &&
		cp "$binaries" "$tarball_root/rdmamig-$version.dkms.tar.gz" ||
		diag "cannot put the host's build in $tarball_root"
	tar -xzOf "$binaries" --wildcards '*/module/rdmamig.ko' > "$tmp/host.ko"
	diag "the host's DKMS build of the package: ${binaries##*/}, sha256 $(sha256sum < "$tmp/host.ko" | cut -c1-16)"
	how="DKMS installed the host's build of rdmamig/$version for $KVER"
else
	kbuild_tmpfs || diag "cannot unpack the kbuild tree into tmpfs"
	diag "kbuild tree in tmpfs after $((SECONDS - t1)) s: ${kbuild_mounts[*]}"
	how="DKMS built and installed rdmamig/$version for $KVER"
fi
t1=$SECONDS

t="apt-get installs ${debs[0]##*/} and ${debs[1]##*/}"
if apt_run "$tmp/install.log" install --no-install-recommends "${debs[@]}"; then
	diag "installed in $((SECONDS - t1)) s (${binaries:+no }DKMS build${binaries:+ in the guest} included)"
	ktap_ok "$t"
else
	SHOW_LINES=40 show install.log
	ktap_fail "$t"
fi
# The postinst has loaded it: from here, as a user who installed the
# package alone.
[ -z "$binaries" ] || rm -rf "$tarball_root"

t=$how
dkms status >"$tmp/dkms.status" 2>"$tmp/dkms.err"
diag "dkms status: $(tr '\n' ' ' <"$tmp/dkms.status")"
kos=$(find "/lib/modules/$KVER" -name 'rdmamig.ko*' 2>/dev/null)
diag "module files: ${kos//$'\n'/ }"
# The host's build: the very file, or (if DKMS compressed it) the same
# srcversion.
same_build=1
if [ -n "$binaries" ]; then
	if [[ $kos == *.ko ]]; then
		cmp -s "$kos" "$tmp/host.ko" || same_build=
		diag "installed: the host's build, byte for byte: ${same_build:-no}"
	else
		[ "$(modinfo -F srcversion "$kos" 2>/dev/null)" = "$(modinfo -F srcversion "$tmp/host.ko")" ] ||
			same_build=
		diag "installed: the host's build, same srcversion: ${same_build:-no}"
	fi
fi
if grep -q "^rdmamig/$version, $KVER, [^:]*: installed" "$tmp/dkms.status" &&
   [[ $kos == */updates/dkms/rdmamig.ko* ]] && [ -n "$same_build" ]; then
	ktap_ok "$t"
else
	show install.log dkms.err
	for f in /var/lib/dkms/rdmamig/"$version"/build/make.log \
		 /var/lib/dkms/rdmamig/"$version"/"$KVER"/*/log/make.log; do
		[ -f "$f" ] && tail -n 20 "$f" | sed 's/^/# make.log: /'
	done
	ktap_fail "$t"
fi

t="modprobe rdmamig loads DKMS's module, version $version"
if modprobe rdmamig 2>"$tmp/modprobe.err" && module_loaded &&
   [ "$(cat /sys/module/rdmamig/version 2>/dev/null)" = "$version" ] &&
   [[ $(modinfo -n rdmamig 2>/dev/null) == */updates/dkms/* ]]; then
	ktap_ok "$t"
else
	diag "modinfo -n: $(modinfo -n rdmamig 2>&1)"
	show modprobe.err
	ktap_fail "$t"
fi

# The hostile peer of the selftests (kmod/hostile.c) is built only into
# the testbed's module: in a shipped one, root could arm it for the next
# session of any user (Documentation/security.rst).
t="the packaged module has no fault injection: no parameter hostile"
params=$(modinfo -p rdmamig 2>/dev/null | cut -d: -f1 | tr '\n' ' ')
code=$(grep -c ' rdmamig_hostile_' /proc/kallsyms)
diag "modinfo -p: $params; rdmamig_hostile_* symbols: $code"
if module_loaded && [ ! -e /sys/module/rdmamig/parameters/hostile ] &&
   [[ " $params" != *" hostile "* ]] && [ "$code" = 0 ]; then
	ktap_ok "$t"
else
	ktap_fail "$t"
fi

# ---- The tool ------------------------------------------------------------------

t="the installed rdmamigctl lists $RDMAMIG_IBDEV and reports module $version"
if "$CTL" -j dev >"$tmp/dev.json" 2>&1 &&
   jq -e --arg d "$RDMAMIG_IBDEV" 'any(.[]; .name == $d)' "$tmp/dev.json" >/dev/null &&
   [ "$("$CTL" -j version 2>/dev/null | jq -r .module)" = "$version" ]; then
	ktap_ok "$t"
else
	show dev.json
	ktap_fail "$t"
fi

t="man rdmamigctl shows rdmamigctl(8)"
manpath=$(man -w rdmamigctl 2>&1)
if [ "$manpath" = /usr/share/man/man8/rdmamigctl.8.gz ] &&
   MANPAGER=cat MANWIDTH=80 man 8 rdmamigctl >"$tmp/man.txt" 2>&1 &&
   grep -q 'administer rdmamig' "$tmp/man.txt" && grep -q 'OBJECTS AND COMMANDS' "$tmp/man.txt"; then
	ktap_ok "$t"
else
	diag "man -w: $manpath"
	show man.txt
	ktap_fail "$t"
fi

# complete WORD...: what the installed completion offers for the last word.
complete_words()
{
	bash -c 'source /usr/share/bash-completion/completions/rdmamigctl || exit 1
		 COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _rdmamigctl
		 echo "${COMPREPLY[*]}"' complete rdmamigctl "$@" 2>&1
}
t="bash completion: objects, commands, values, and device names from the module"
c1=$(complete_words pa) c2=$(complete_words s "") c3=$(complete_words param set auth "")
c4=$(complete_words dev show "")
diag "completions: 'pa' -> '$c1', 's ' -> '$c2', 'param set auth ' -> '$c3', 'dev show ' -> '$c4'"
ktap_result "$t" test "$c1" = param -a "$c2" = "list show set cancel help" \
	-a "$c3" = "required off" -a "$c4" = "$RDMAMIG_IBDEV"

t="/usr/include/linux/rdmamig.h compiles"
if echo '#include <linux/rdmamig.h>
	int main(void) { return RDMAMIG_IOC_CONNECT != 0 ? 0 : 1; }' |
   cc -Wall -Werror -x c -o "$tmp/hdr" - 2>"$tmp/cc.err"; then
	ktap_ok "$t"
else
	show cc.err
	ktap_fail "$t"
fi

# ---- Loading on demand ---------------------------------------------------------

t="kmod static-nodes: /dev/rdmamig, c 10:$MINOR, mode 0600"
kmod static-nodes --format=tmpfiles --output="$tmp/static-nodes.conf" 2>"$tmp/static.err"
line=$(grep ' /dev/rdmamig ' "$tmp/static-nodes.conf" 2>/dev/null)
diag "static-nodes: $line"
ktap_result "$t" test "$line" = "c! /dev/rdmamig 0600 - - - 10:$MINOR"

# The node as it is at boot: created by systemd-tmpfiles from kmod's list
# (kmod-static-nodes.service, systemd-tmpfiles-setup-dev.service).
static_node()
{
	if command -v systemd-tmpfiles >/dev/null; then
		systemd-tmpfiles --create --boot --prefix=/dev/rdmamig "$tmp/static-nodes.conf"
	else
		mknod -m 0600 /dev/rdmamig c 10 "$MINOR"
	fi
	[ "$(stat -c '%F %t:%T %a' /dev/rdmamig 2>/dev/null)" = "character special file a:f7 600" ]
}
t="unloaded, with the boot's static node: open(/dev/rdmamig) loads the module"
opened=
if unload && [ ! -e /dev/rdmamig ] && static_node && ! module_loaded; then
	# A subshell: the file is closed when it exits.
	(exec 3<>/dev/rdmamig) 2>"$tmp/open.err" && opened=1
fi
if [ -n "$opened" ] && module_loaded; then
	ktap_ok "$t"
else
	diag "node: $(stat -c '%F %t:%T %a' /dev/rdmamig 2>&1), loaded: $(module_refcnt rdmamig)"
	show open.err
	ktap_fail "$t"
fi

t="unloaded: a VMM's migration (4 MiB) loads the module and completes, verified"
if unload && [ -c /dev/rdmamig ] && ! module_loaded; then
	: >"$tmp/port"
	"$VMM" dest --listen "$ADDR:0" --port-file "$tmp/port" --size 4 --blocks 2 \
		--timeout 60 --json >"$tmp/vmm.dst" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	wait_for 60 test -s "$tmp/port"
	"$VMM" source --connect "$ADDR:$(cat "$tmp/port")" --size 4 --blocks 2 \
		--rounds 1 --timeout 60 --json >"$tmp/vmm.src" 2>&1
	src_rc=$?
	wait "$dpid"
	dst_rc=$?
	verified=$(grep '^{' "$tmp/vmm.dst" | tail -n 1 | jq -r .verified 2>/dev/null)
	if [ $src_rc = 0 ] && [ $dst_rc = 0 ] && [ "$verified" = true ] && module_loaded; then
		ktap_ok "$t"
	else
		diag "source exit $src_rc, destination exit $dst_rc, verified $verified"
		show vmm.src vmm.dst
		ktap_fail "$t"
	fi
else
	diag "the module did not unload, or the static node is gone"
	ktap_fail "$t"
fi

# ---- A migration with the installed tool ---------------------------------------

t="rdmamigctl migrate/incoming: a 16 MiB process migrates, checksums equal"
module_loaded || modprobe rdmamig
"$WORKLOAD" --twin --size 16 --rate 1 --pid-file "$tmp/twin.pid" >/dev/null 2>&1 &
pids+=($!)
"$WORKLOAD" --size 16 --rate 1 --seed $$ --pid-file "$tmp/src.pid" \
	--heartbeat "$tmp/src.hb" >/dev/null 2>&1 &
pids+=($!)
# migrate --after kill kills it: no "Killed" from bash.
disown $!
stopped() { grep -q '^State:.*T' "/proc/$(cat "$tmp/twin.pid" 2>/dev/null)/status" 2>/dev/null; }
if wait_for 30 test -s "$tmp/twin.pid" && wait_for 30 stopped &&
   wait_for 30 grep -q heartbeat "$tmp/src.hb"; then
	"$CTL" -j incoming --pid "$(cat "$tmp/twin.pid")" --checksum --timeout 120 \
		--port-file "$tmp/inc.port" "rdma:$ADDR:0" >"$tmp/inc.json" 2>"$tmp/inc.err" &
	ipid=$!
	pids+=("$ipid")
	wait_for 60 test -s "$tmp/inc.port"
	"$CTL" -j migrate --pid "$(cat "$tmp/src.pid")" --checksum --after kill \
		"rdma:$ADDR:$(cat "$tmp/inc.port" 2>/dev/null)" >"$tmp/mig.json" 2>"$tmp/mig.err"
	src_rc=$?
	wait "$ipid"
	dst_rc=$?
	s=$(jq -r .checksum "$tmp/mig.json" 2>/dev/null) d=$(jq -r .checksum "$tmp/inc.json" 2>/dev/null)
	diag "source exit $src_rc, $(jq -r '"rounds \(.rounds), pages \(.pages), total \(.total_ms) ms"' "$tmp/mig.json" 2>/dev/null); destination exit $dst_rc; checksums $s $d"
	if [ $src_rc = 0 ] && [ $dst_rc = 0 ] && [[ $s =~ ^0x[0-9a-f]{16}$ ]] && [ "$s" = "$d" ]; then
		ktap_ok "$t"
	else
		show mig.json mig.err inc.json inc.err
		ktap_fail "$t"
	fi
else
	diag "the workload or its twin did not start"
	ktap_fail "$t"
fi
kill -KILL "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()

# ---- Purge -----------------------------------------------------------------------

t="apt-get purge leaves nothing behind"
unload || diag "cannot unload the module before the purge"
apt_run "$tmp/purge.log" purge rdmamig-dkms rdmamigctl || diag "apt-get purge failed"
left=$( {
	find /lib/modules/ -name 'rdmamig.ko*'
	ls -d /usr/src/rdmamig-* /var/lib/dkms/rdmamig
	ls -d "$CTL" /usr/share/man/man8/rdmamigctl.8* /usr/include/linux/rdmamig.h \
		/usr/share/bash-completion/completions/rdmamigctl /etc/modules-load.d/rdmamig.conf \
		/usr/share/doc/rdmamig-dkms /usr/share/doc/rdmamigctl
	dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' rdmamig-dkms rdmamigctl |
		grep -Ev '^[up]n '
} 2>/dev/null)
if [ -z "$left" ]; then
	ktap_ok "$t"
else
	diag "left behind: ${left//$'\n'/ }"
	show purge.log
	ktap_fail "$t"
fi

t="after the purge: no module for modprobe, no static node at the next boot"
kmod static-nodes --format=devname 2>/dev/null | grep -q '^rdmamig ' && static=yes || static=no
if ! modprobe -n rdmamig 2>/dev/null && [ "$static" = no ]; then
	ktap_ok "$t"
else
	diag "modprobe -n: $(modprobe -n -v rdmamig 2>&1), static node listed: $static"
	ktap_fail "$t"
fi
diag "done in $((SECONDS - t0)) s"
ktap_finish
