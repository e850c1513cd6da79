#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the rdmamig debug kernel: Debian's linux-source-6.1 with KASAN,
# lockdep, DEBUG_ATOMIC_SLEEP, kmemleak, DEBUG_OBJECTS and DEBUG_LIST, on a
# config trimmed to what the QEMU testbed needs (scripts/debug-kernel.config).
#
#   scripts/debug-kernel.sh            build and install it (idempotent)
#   scripts/debug-kernel.sh --kver     print its release (e.g. 6.1.192-rdmamig-debug)
#   scripts/debug-kernel.sh --kdir     print its kbuild tree (for make module KDIR=)
#
# The source is unpacked into build/debug-kernel/src and built there; the
# kernel is installed into build/kernels/<release>/ with the layout
# scripts/deps.sh gives the Debian kernels, so that
# `selftests/vm/vm.sh -k <release>` boots it:
#
#   root/boot/vmlinuz-<release>, root/boot/config-<release>
#   root/lib/modules/<release>/    modules_install output, depmod'ed, with
#                                  build -> build/debug-kernel/src
#   vmlinuz -> root/boot/vmlinuz-<release>, .done
#
# A second run only checks: the kernel is rebuilt when the config fragment
# or the source package changed, or with --rebuild (an incremental make).
# JOBS=N overrides the make parallelism (default: CPUs + 1).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
frag=$top/scripts/debug-kernel.config
base=$top/build/debug-kernel
src=$base/src
kernels=$top/build/kernels
tarball=/usr/src/linux-source-6.1.tar.xz

PACKAGES=(
	build-essential bc flex bison libelf-dev libssl-dev kmod cpio xz-utils
	linux-source-6.1
)

note() {
	echo "debug-kernel: $*" >&2
}

die() {
	note "$*"
	exit 1
}

APT_WHO=debug-kernel
source "$top/scripts/apt.sh"

kmake() {
	# LOCALVERSION= (set, empty) keeps setlocalversion from adding "+".
	make -C "$src" -s LOCALVERSION= "$@"
}

# What the build depends on besides the tree: the fragment and the source
# package.  Stored in the tree; a change means reconfigure and rebuild.
stamp() {
	{
		sha256sum "$frag" | cut -d' ' -f1
		dpkg-query -W -f='${Version}\n' linux-source-6.1
	} | sha256sum | cut -c1-16
}

unpack() {
	[ -e "$src/.unpacked" ] &&
		[ "$(<"$src/.unpacked")" = "$(dpkg-query -W -f='${Version}' linux-source-6.1)" ] &&
		return 0
	note "unpacking $tarball into $src"
	rm -rf "$src"
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1
	dpkg-query -W -f='${Version}' linux-source-6.1 > "$src/.unpacked"
}

# Every line of the fragment holds in the tree's .config (quiet: 1 if not;
# --say: each line that does not, as a note).
fragment_holds() {
	local line sym want got bad=0

	[ -e "$src/.config" ] || return 1
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			sym=${BASH_REMATCH[1]} want=$line
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			sym=${BASH_REMATCH[1]} want=$line
		else
			continue
		fi
		got=$(grep -E "^($sym=|# $sym is not set)" "$src/.config" || true)
		# Not in .config at all: its dependencies are off, so it is off.
		[ -n "$got" ] || got="# $sym is not set"
		if [ "$got" != "$want" ]; then
			[ "${1:-}" = --say ] && note "config: wanted '$want', got '$got'"
			bad=1
		fi
	done < "$frag"
	[ "$bad" = 0 ]
}

# tinyconfig, the fragment, olddefconfig; then every line of the fragment
# must have survived, or a dependency is missing from it.
configure() {
	note "configuring (tinyconfig + $(basename "$frag"))"
	kmake tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$frag" \
		> "$base/merge_config.log" 2>&1 || die "merge_config.sh failed: see $base/merge_config.log"
	kmake olddefconfig >/dev/null
	fragment_holds --say || die "the config fragment does not hold (missing dependencies?)"
}

build() {
	local jobs=${JOBS:-$(($(nproc) + 1))} t0

	t0=$SECONDS
	note "make -j$jobs bzImage modules (takes a while)"
	kmake -j"$jobs" bzImage modules
	note "built in $((SECONDS - t0)) s"
}

install_kernel() {
	local rel=$1 dir=$kernels/$1

	note "installing into $dir"
	rm -rf "$dir"
	mkdir -p "$dir/root/boot"
	cp "$src/arch/x86/boot/bzImage" "$dir/root/boot/vmlinuz-$rel"
	cp "$src/.config" "$dir/root/boot/config-$rel"
	cp "$src/System.map" "$dir/root/boot/System.map-$rel"
	# modules_install runs depmod -b on the tree.
	kmake INSTALL_MOD_PATH="$dir/root" modules_install >/dev/null
	ln -sfn "$src" "$dir/root/lib/modules/$rel/build"
	ln -sfn "root/boot/vmlinuz-$rel" "$dir/vmlinuz"
	stamp > "$dir/.done"
}

case "${1:-}" in
--kver)
	# The release follows from the source and the fragment alone.
	if [ -e "$src/.unpacked" ]; then
		mk=$(head -n 5 "$src/Makefile")
	else
		mk=$(tar -xJOf "$tarball" linux-source-6.1/Makefile 2>/dev/null | head -n 5) || true
	fi
	v=$(awk -F' *= *' '/^VERSION/ { v = $2 } /^PATCHLEVEL/ { p = $2 }
		/^SUBLEVEL/ { s = $2 } END { if (s != "") print v "." p "." s }' <<<"$mk")
	l=$(sed -n 's/^CONFIG_LOCALVERSION="\(.*\)"$/\1/p' "$frag")
	[ -n "$v" ] || die "cannot read the version from $tarball (run $0 first)"
	echo "$v$l"
	exit 0
	;;
--kdir)
	echo "$src"
	exit 0
	;;
--rebuild) rebuild=1 ;;
'') rebuild= ;;
*) sed -n '7,10s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac

apt_install "${PACKAGES[@]}"
unpack
rel=$("$0" --kver)
# The stamps say which fragment the tree was configured with; the .config
# itself must still say so (one put back by hand once did not, and a
# kernel without CONFIG_USERFAULTFD passed for up to date).
if [ -z "$rebuild" ] && [ -e "$kernels/$rel/.done" ] &&
   [ "$(<"$kernels/$rel/.done")" = "$(stamp)" ] && fragment_holds &&
   cmp -s "$src/.config" "$kernels/$rel/root/boot/config-$rel"; then
	note "$rel is up to date in $kernels/$rel"
	exit 0
fi
if [ ! -e "$src/.config" ] || [ ! -e "$src/.rdmamig-stamp" ] ||
   [ "$(<"$src/.rdmamig-stamp")" != "$(stamp)" ] || ! fragment_holds; then
	configure
	stamp > "$src/.rdmamig-stamp"
fi
build
[ "$(kmake kernelrelease)" = "$rel" ] ||
	die "built $(kmake kernelrelease), expected $rel"
install_kernel "$rel"
note "$rel ready: selftests/vm/vm.sh -k $rel, make module KDIR=$src"
