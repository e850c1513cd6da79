#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# deb.sh - build the Debian packages rdmamig-dkms and rdmamigctl (make deb)
#
#   scripts/deb.sh [--force] [--binaries KVER]
#
# Copies the module's sources (Kbuild, dkms.conf, kmod/, uapi/), the
# tool's (tools/rdmamigctl, tools/lib, Documentation/rdmamigctl.rst) and
# packaging/debian/ as debian/ into a scratch tree build/deb/rdmamig-VERSION/,
# runs dpkg-buildpackage -b -us -uc in it, then lintian on the result.
# The packages, .buildinfo, .changes and lintian.txt end up in build/deb/.
#
# VERSION is dkms.conf's PACKAGE_VERSION; the module's RDMAMIG_VERSION
# (kmod/rdmamig.h) and packaging/debian/changelog's first entry must say
# the same, or nothing is built.
#
# Installs with apt-get what the build needs (the Build-Depends of
# packaging/debian/control, and lintian), and dkms and man-db, which the
# packages' test in the testbed guest takes from the host's / (the guest
# has no network): selftests/rdmamig/deb_install_test.sh.  Needs root.
#
# The packages are not rebuilt if none of their sources changed since the
# last build (a hash in build/deb/.inputs); --force rebuilds them anyway.
# RDMAMIG_LINTIAN=0 skips lintian; its errors otherwise fail the build.
#
# For that test it also packs the kbuild tree of each testbed kernel
# (build/kernels/KVER, with its headers in /usr/src) into one tar file,
# build/deb/kbuild/KVER.tar: the guest reads the host's files over 9p,
# where every lookup costs a round trip to QEMU, and gcc's include search
# made of them ten of the fourteen minutes DKMS took to build the module
# under TCG; copying the tree file by file cost as much.  The test
# unpacks the tar file into tmpfs and mounts it over the same paths.
#
# --binaries KVER (make check, for its first kernel): DKMS also builds the
# module from the rdmamig-dkms package for KVER on the host, in a DKMS
# tree of its own (the host's /var/lib/dkms is not touched but for the
# signing key DKMS makes once), and keeps it as a binaries-only DKMS
# tarball, build/deb/dkms/rdmamig-VERSION-KVER.dkms.tar.gz.
# deb_install_test.sh puts it where the package's postinst looks for one
# (dkms ldtarball), so the guest installs the host's build instead of
# compiling: the same gcc, headers and sources (the guest's / is the
# host's), 50 s natively instead of 11 minutes under TCG, which CI's
# 90 minutes cannot spare.  RDMAMIG_DEB_GUEST_BUILD=1 (make check-full)
# has the guest compile.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/deb
force= binaries=()
while [ $# -gt 0 ]; do
	case $1 in
	--force) force=1 ;;
	--binaries) [ $# -ge 2 ] || { echo "deb: --binaries needs a KVER" >&2; exit 2; }
		binaries+=("$2"); shift ;;
	*) echo "usage: scripts/deb.sh [--force] [--binaries KVER]" >&2; exit 2 ;;
	esac
	shift
done

die() {
	echo "deb: $*" >&2
	exit 1
}

# What goes into the packages, relative to the top of the tree.
SOURCES=(Kbuild dkms.conf kmod uapi tools/rdmamigctl tools/lib
	Documentation/rdmamigctl.rst)
PACKAGING=(packaging/debian packaging/rdmamigctl.bash-completion scripts/deb.sh)

[ "$(id -u)" = 0 ] || die "run as root (apt-get)"
cd "$top"

# ---- The version ------------------------------------------------------------

version=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' dkms.conf)
modver=$(sed -n 's/^#define RDMAMIG_VERSION[[:space:]]*"\(.*\)"$/\1/p' kmod/rdmamig.h)
debver=$(sed -n '1s/^rdmamig (\([^)]*\)).*/\1/p' packaging/debian/changelog)
[ -n "$version" ] || die "no PACKAGE_VERSION in dkms.conf"
[ "$modver" = "$version" ] ||
	die "dkms.conf says $version, kmod/rdmamig.h's RDMAMIG_VERSION '$modver'"
[ "${debver%-*}" = "$version" ] ||
	die "packaging/debian/changelog's first entry is $debver, not $version: add one (dch -v $version)"

# ---- The testbed kernels' kbuild trees ---------------------------------------

# kbuild_tar KVER: build/deb/kbuild/KVER.tar, of /usr/src/linux-headers-KVER,
# the -common tree its Makefile includes and the linux-kbuild tree its
# scripts link to; the other architectures' headers are left out.
kbuild_tar() {
	local kver=$1 h=/usr/src/linux-headers-$1 common kbuild tar a
	local -a dirs excl=()

	tar=$out/kbuild/$kver.tar
	[ -f "$h/Makefile" ] || return 0
	common=$(sed -n 's|^include \(/.*\)/Makefile$|\1|p' "$h/Makefile")
	kbuild=$(dirname "$(readlink -f "$h/scripts")")
	dirs=("$h" ${common:+"$common"} "$kbuild")
	for a in "$h/Makefile" "${dirs[@]}"; do
		[ "$tar" -nt "$a" ] || { rm -f "$tar"; break; }
	done
	[ -f "$tar" ] && return 0
	for a in "${common:-$h}"/arch/*/; do
		a=${a%/}
		[ "${a##*/}" = x86 ] || excl+=("--exclude=${a#/}")
	done
	mkdir -p "$out/kbuild"
	tar -C / -cf "$tar.tmp" "${excl[@]}" "${dirs[@]#/}"
	mv "$tar.tmp" "$tar"
	echo "deb: build/deb/kbuild/$kver.tar for deb_install_test.sh" >&2
}

# dkms_binaries KVER: build/deb/dkms/rdmamig-VERSION-KVER.dkms.tar.gz, DKMS's
# build of the rdmamig-dkms package for KVER, binaries only (see above).
dkms_binaries() {
	local kver=$1 deb=$out/rdmamig-dkms_${debver}_all.deb tmp tgz made
	local -a opts

	tgz=$out/dkms/rdmamig-$version-$kver.dkms.tar.gz
	[ -f "/usr/src/linux-headers-$kver/Makefile" ] ||
		die "--binaries $kver: no /usr/src/linux-headers-$kver (scripts/deps.sh)"
	[ -f "$tgz" ] && [ "$tgz" -nt "$deb" ] && [ "$tgz" -nt "/usr/src/linux-headers-$kver/Makefile" ] &&
		return 0
	tmp=$(mktemp -d)
	mkdir "$tmp/tree"
	opts=(-m rdmamig -v "$version" -k "$kver" --sourcetree "$tmp/root/usr/src"
	      --dkmstree "$tmp/tree" --kernelsourcedir "/usr/src/linux-headers-$kver")
	echo "deb: DKMS builds rdmamig $version for $kver on the host (build/deb/dkms/)" >&2
	if ! { dpkg-deb -x "$deb" "$tmp/root" &&
	       dkms add -m rdmamig -v "$version" --sourcetree "$tmp/root/usr/src" --dkmstree "$tmp/tree" &&
	       dkms build "${opts[@]}" && dkms mktarball "${opts[@]}" --binaries-only; } > "$tmp/dkms.log" 2>&1; then
		tail -n 30 "$tmp/dkms.log" >&2
		find "$tmp/tree" -name make.log -exec tail -n 30 {} \; >&2
		rm -rf "$tmp"
		die "DKMS could not build rdmamig $version for $kver"
	fi
	made=$(find "$tmp/tree/rdmamig/$version/tarball" -name '*.dkms.tar.gz' | head -n 1)
	mkdir -p "$out/dkms"
	mv "$made" "$tgz"
	rm -rf "$tmp"
}

# What deb_install_test.sh takes besides the packages: every testbed
# kernel's kbuild tree, and the host's DKMS builds asked for.
test_inputs() {
	local k

	for k in "$top"/build/kernels/*/; do
		k=${k%/}
		kbuild_tar "${k##*/}"
	done
	for k in "${binaries[@]}"; do
		dkms_binaries "$k"
	done
}

# ---- Up to date? ------------------------------------------------------------

# The files to copy: those git knows and those it does not ignore, or
# everything if this is no git work tree (then the build products of
# tools/rdmamigctl go with 'make clean' in the copy).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	list_files() {
		git ls-files -z --cached --others --exclude-standard -- "$@" |
			while IFS= read -r -d '' f; do
				[ -f "$f" ] && printf '%s\0' "$f"
			done
	}
else
	list_files() {
		find "$@" -type f -print0
	}
fi

inputs=$({ list_files "${SOURCES[@]}" "${PACKAGING[@]}" | sort -z |
	xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)
debs=("$out/rdmamig-dkms_${debver}_all.deb" "$out/rdmamigctl_${debver}_"*.deb)
if [ -z "$force" ] && [ -f "$out/.inputs" ] && [ "$(<"$out/.inputs")" = "$inputs" ] &&
   [ -f "${debs[0]}" ] && [ -f "${debs[1]}" ]; then
	echo "deb: build/deb/ is up to date: ${debs[*]##*/}"
	test_inputs
	exit 0
fi

# ---- Build dependencies -------------------------------------------------------

APT_WHO=deb
source "$top/scripts/apt.sh"

# The tools around the build; dkms and man-db for the test in the guest.
apt_install build-essential dpkg-dev lintian dkms man-db

# ---- The scratch tree -------------------------------------------------------

rm -rf "$out"
mkdir -p "$out"
src=$out/rdmamig-$version
mkdir -p "$src"
list_files "${SOURCES[@]}" | xargs -0 cp --parents -p -t "$src"
cp -rp packaging/debian "$src/debian"
cp -p packaging/rdmamigctl.bash-completion "$src/debian/rdmamigctl.bash-completion"
[ -e "$top/.git" ] || make -s -C "$src/tools/rdmamigctl" clean

# The Build-Depends of debian/control, the Debian way; an update of the
# package lists only if that fails (they may be stale).
if ! dpkg-checkbuilddeps "$src/debian/control" 2>/dev/null; then
	echo "deb: installing the build dependencies" >&2
	(cd "$src" && DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq \
		--no-install-recommends ./ >&2) ||
		{ apt_update; (cd "$src" && DEBIAN_FRONTEND=noninteractive \
			apt-get build-dep -y -qq --no-install-recommends ./ >&2); }
fi

# ---- Build ------------------------------------------------------------------

echo "deb: building rdmamig $debver in build/deb/${src##*/}" >&2
(cd "$src" && dpkg-buildpackage -b -us -uc) > "$out/build.log" 2>&1 || {
	tail -n 40 "$out/build.log" >&2
	die "dpkg-buildpackage failed (build/deb/build.log)"
}

changes=$(ls "$out"/rdmamig_"${debver}"_*.changes)
ls -1 "$out"/*.deb
if [ "${RDMAMIG_LINTIAN:-1}" != 0 ]; then
	echo "deb: lintian ${changes##*/}" >&2
	rc=0
	lintian --fail-on error "$changes" > "$out/lintian.txt" 2>&1 || rc=$?
	# Running as root is what this script does; that is not the packages'.
	grep -v 'running with root privileges' "$out/lintian.txt" >&2 || true
	[ $rc -eq 0 ] || die "lintian found errors (build/deb/lintian.txt)"
fi
test_inputs
echo "$inputs" > "$out/.inputs"
