#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build.sh - QEMU with the rdmamig migration transport, for the testbed.
#
#   tools/qemu/build.sh            fetch (once), patch, build, install
#   tools/qemu/build.sh --fetch    only fetch Debian's QEMU source
#   tools/qemu/build.sh --check    scripts/checkpatch.pl over the series
#
# Takes Debian bookworm's QEMU 7.2 source package (apt-get source, with a
# deb-src entry derived from the machine's own bookworm entries), applies
# tools/qemu/patches/*.patch in order, and builds qemu-system-x86_64 only
# (TCG, no UI, no slirp, no docs, no tools) into build/qemu/.
#
# The cache ($RDMAMIG_QEMU_CACHE, default build/qemu-cache; it may live
# outside the clone) keeps the downloaded source package and one build
# per series: the key is the sha256 of the source version, the patches,
# the module's uapi header they include (-I uapi/) and the configure
# flags.  A second run with the same key only checks that build/qemu/
# holds its binary.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tools/qemu
cache=${RDMAMIG_QEMU_CACHE:-$top/build/qemu-cache}
out=$top/build/qemu
jobs=${RDMAMIG_QEMU_JOBS:-2}

# What the testbed needs: one target, TCG, no display, no network
# back-end but the ones in the tree, no guest agent or tools.
CONFIGURE_FLAGS=(
	--target-list=x86_64-softmmu
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
	--enable-tcg --disable-kvm --disable-xen
	--disable-docs --disable-tools --disable-guest-agent
	--disable-gtk --disable-sdl --disable-vnc --disable-spice
	--disable-opengl --disable-virglrenderer --disable-curses
	--disable-slirp --disable-vde --disable-l2tpv3
	--disable-gnutls --disable-nettle --disable-gcrypt
	--disable-libusb --disable-usb-redir --disable-smartcard
	--disable-rbd --disable-glusterfs --disable-libiscsi --disable-libnfs
	--disable-curl --disable-libssh --disable-capstone
	--disable-alsa --disable-pa --disable-jack --disable-oss
	--disable-sndio --disable-brlapi --disable-vte
	--disable-seccomp --disable-cap-ng --disable-attr
	--disable-linux-io-uring --disable-linux-aio --disable-libudev
	--disable-rdma --disable-pvrdma --disable-vhost-user
	--disable-vhost-user-blk-server --disable-vduse-blk-export
	--disable-bpf --disable-libpmem --disable-libdaxctl
	--disable-werror --disable-debug-info
)

# Build dependencies, from Debian.  virtfs needs libattr/libcap-ng: off.
BUILD_DEPS=(
	build-essential pkg-config python3 ninja-build meson
	libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev
	dpkg-dev
)

APT_WHO=qemu
source "$top/scripts/apt.sh"

# Debian's python3 and meson, whatever else comes first in PATH.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "qemu: $*" >&2; }

# A deb-src entry for every bookworm suite the machine has a deb entry
# for, on the same mirror (apt's own view of its sources, whatever their
# format).  bookworm-backports is left out: its QEMU is not 7.2.
enable_deb_src() {
	local f=/etc/apt/sources.list.d/rdmamig-qemu-src.sources entries
	apt-get indextargets --format '$(RELEASE) $(TARGET_OF)' 2>/dev/null |
		grep -qx 'bookworm deb-src' && return 0
	entries=$(apt-get indextargets --format '$(RELEASE) $(TARGET_OF) $(REPO_URI)' 2>/dev/null |
		awk '$2 == "deb" && ($1 == "bookworm" || $1 == "bookworm-updates" ||
		     $1 == "bookworm-security") { print $3, $1 }' | sort -u)
	if [ -z "$entries" ]; then
		say "no bookworm entry in the apt sources to take the mirror from"
		exit 1
	fi
	say "adding deb-src entries ($f)"
	echo "$entries" | while read -r uri suite; do
		printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n%s\n\n' \
			"$uri" "$suite" 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
	done > "$f"
	apt_updated=
}

# The newest 7.2 source version the archive has (not backports' 10.x).
src_version() {
	{ apt-cache showsrc qemu 2>/dev/null || true; } | awk '/^Version: 1:7\.2[+~]/ { print $2 }' |
		sort -V | tail -n 1 || true
}

# Debian's source package, downloaded once into $cache/src/<version>/.
fetch_source() {
	local v
	v=$(src_version)
	if [ -z "$v" ]; then
		enable_deb_src
		apt_update
		v=$(src_version)
	fi
	[ -n "$v" ] || { say "no QEMU 7.2 source package in the archive"; exit 1; }
	version=$v
	srcdir=$cache/src/$v
	if [ ! -e "$srcdir/.done" ]; then
		say "downloading qemu $v source"
		rm -rf "$srcdir"
		mkdir -p "$srcdir"
		(cd "$srcdir" && apt-get source --download-only -qq "qemu=$v" >&2)
		touch "$srcdir/.done"
	fi
}

series_key() {
	{
		echo "$version"
		printf '%s\n' "${CONFIGURE_FLAGS[@]}"
		cat "$here"/patches/*.patch "$top/uapi/linux/rdmamig.h"
	} | sha256sum | cut -c1-16
}

# A fresh tree: Debian's source with Debian's patches, then ours.
unpack() {
	local tree=$1 p
	rm -rf "$tree"
	dpkg-source --no-check -x "$srcdir"/qemu_*.dsc "$tree" >/dev/null
	for p in "$here"/patches/*.patch; do
		patch -d "$tree" -p1 --quiet --forward < "$p" ||
			{ say "$(basename "$p") does not apply"; exit 1; }
	done
}

checkpatch() {
	local tree=$cache/checkpatch rc=0 p
	fetch_source
	rm -rf "$tree"
	dpkg-source --no-check -x "$srcdir"/qemu_*.dsc "$tree" >/dev/null
	for p in "$here"/patches/*.patch; do
		(cd "$tree" && ./scripts/checkpatch.pl --no-signoff "$p") || rc=1
	done
	return $rc
}

build() {
	local key dir
	fetch_source
	key=$(series_key)
	dir=$cache/build-$key
	if [ -e "$dir/.done" ]; then
		say "cached build $key (qemu $version)"
	else
		apt_install "${BUILD_DEPS[@]}"
		say "building qemu $version with the rdmamig series ($key)"
		rm -rf "$dir"
		mkdir -p "$dir"
		unpack "$dir/src"
		mkdir -p "$dir/obj"
		(cd "$dir/obj" && nice -n 10 ../src/configure --prefix="$dir/inst" \
			--extra-cflags="-I$top/uapi" "${CONFIGURE_FLAGS[@]}" >"$dir/configure.log" 2>&1) ||
			{ tail -n 30 "$dir/configure.log" >&2; exit 1; }
		(cd "$dir/obj" && nice -n 10 make -j"$jobs" qemu-system-x86_64 >"$dir/make.log" 2>&1) ||
			{ grep -E 'error|Error' "$dir/make.log" | head -n 30 >&2; exit 1; }
		mkdir -p "$dir/bin"
		cp "$dir/obj/qemu-system-x86_64" "$dir/bin/"
		rm -rf "$dir/src" "$dir/obj"
		touch "$dir/.done"
	fi
	# A copy, not a link: the testbed's guests see the host's files, but
	# not its /tmp, where the cache may be.
	mkdir -p "$out"
	cmp -s "$dir/bin/qemu-system-x86_64" "$out/qemu-system-x86_64" ||
		cp "$dir/bin/qemu-system-x86_64" "$out/qemu-system-x86_64"
	echo "qemu $version, series $key" > "$out/version"
}

case "${1:-}" in
--fetch) fetch_source ;;
--check) checkpatch ;;
"") build ;;
*) echo "usage: $0 [--fetch|--check]" >&2; exit 2 ;;
esac
