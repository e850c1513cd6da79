#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent set-up for building and testing rdmamig on a Debian 12 host.
#
#   scripts/deps.sh [SERIES...]      SERIES is 6.1 (default) and/or 6.12
#   scripts/deps.sh --kver SERIES    print the kernel ABI set up for SERIES
#
# Installs the Debian packages the build, rdmamigctl and the VM testbed
# need, the kbuild headers of the guest kernel (on the host: Debian's
# headers package refers to itself by absolute path), and extracts the
# guest kernel image with its modules into build/kernels/<abi>/ without
# installing it.  Nothing is done twice: a second run only checks.
#
# The kernel of a series is chosen once, when none is set up yet, and
# only after `apt-get update`: package lists as old as a machine's
# install day (or debootstrap's, which hold the bookworm suite but not
# bookworm-security, where kernels are updated) name an ABI older than
# the archive's.  From then on that ABI is the series' kernel, and
# --kver prints it without looking at the lists; remove
# build/kernels/<abi> to move to a newer one.  The Makefile asks --kver
# only after this script has run, so both agree on one kernel.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kernels=$top/build/kernels

# procps: kill(1) and pgrep, which the tests run on the peer VM through
# its agent (exec, no shell builtin); a minbase Debian lacks it.
PACKAGES=(
	build-essential bc kmod cpio xz-utils busybox-static pkg-config procps
	libnl-3-dev libnl-genl-3-dev libnl-route-3-dev
	qemu-system-x86
	rdma-core ibverbs-utils rdmacm-utils perftest iproute2 jq
	linux-source-6.1
)

APT_WHO=deps
source "$top/scripts/apt.sh"

# Linux 6.12 comes from bookworm-backports, on the mirror the machine
# already uses for bookworm (a local mirror or proxy keeps working): apt's
# own view of its sources gives it, whatever their format.
enable_backports() {
	local uri
	apt-get indextargets --format '$(RELEASE)' 2>/dev/null |
		grep -qx 'bookworm-backports' && return 0
	uri=$(apt-get indextargets --format '$(RELEASE) $(TARGET_OF) $(REPO_URI)' 2>/dev/null |
		awk '$1 == "bookworm" && $2 == "deb" { print $3; exit }')
	if [ -z "$uri" ]; then
		echo "deps: no bookworm entry in the apt sources to take the mirror from;" \
			"add bookworm-backports yourself for Linux 6.12" >&2
		exit 1
	fi
	echo "deps: enabling bookworm-backports from $uri for Linux 6.12" >&2
	cat > /etc/apt/sources.list.d/rdmamig-backports.sources <<-EOF
	Types: deb
	URIs: $uri
	Suites: bookworm-backports
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	apt_updated=
}

# The newest kernel ABI of a series that has both headers and an image.
series_regex() {
	case "$1" in
	6.1) echo '6\.1\.0-[0-9]+-amd64' ;;
	6.12) echo '6\.12\.[0-9]+\+deb12-amd64' ;;
	*) echo "deps: unknown kernel series '$1' (use 6.1 or 6.12)" >&2; exit 2 ;;
	esac
}

# The archive's newest ABI of a series, from lists updated in this run,
# into $abi (not printed: a subshell would forget the update).
resolve_abi() {
	local re
	re=$(series_regex "$1")
	[ "$1" = 6.12 ] && enable_backports
	apt_update
	abi=$(apt-cache search --names-only "^linux-headers-$re\$" |
		awk '{print $1}' | sed 's/^linux-headers-//' | sort -V | tail -n 1)
	[ -n "$abi" ] || { echo "deps: no Linux $1 kernel in the archive" >&2; exit 1; }
}

# The newest ABI of a series already set up (image extracted, headers
# installed), if any.
setup_abi() {
	local re d
	re=$(series_regex "$1")
	for d in $(ls -d "$kernels"/* 2>/dev/null | sort -V -r); do
		if [[ $(basename "$d") =~ ^$re$ ]] && [ -e "$d/.done" ] &&
		   [ -e "/lib/modules/$(basename "$d")/build/Makefile" ]; then
			basename "$d"
			return 0
		fi
	done
	return 1
}

fetch_kernel() {
	local abi=$1 dir=$kernels/$1 tmp pkg
	[ -e "$dir/.done" ] && [ -e "/lib/modules/$abi/build/Makefile" ] && return 0
	apt_install "linux-headers-$abi"
	rm -rf "$dir"
	mkdir -p "$dir"
	tmp=$(mktemp -d)
	# The unsigned image has the same bits; either package will do.
	for pkg in "linux-image-$abi-unsigned" "linux-image-$abi"; do
		if (cd "$tmp" && apt-get download -qq "$pkg" >&2 2>/dev/null); then
			break
		fi
		apt_update
		(cd "$tmp" && apt-get download -qq "$pkg" >&2 2>/dev/null) && break
	done
	ls "$tmp"/*.deb >/dev/null 2>&1 || { echo "deps: cannot download linux-image-$abi" >&2; exit 1; }
	echo "deps: extracting $(basename "$tmp"/*.deb) into $dir" >&2
	dpkg-deb -x "$tmp"/*.deb "$dir/root"
	rm -rf "$tmp"
	depmod -b "$dir/root" "$abi"
	ln -sf "root/boot/vmlinuz-$abi" "$dir/vmlinuz"
	touch "$dir/.done"
}

if [ "${1:-}" = --kver ]; then
	setup_abi "${2:-6.1}" && exit 0
	echo "deps: no Linux ${2:-6.1} kernel set up: run scripts/deps.sh ${2:-6.1}" >&2
	exit 1
fi

[ "$(id -u)" = 0 ] || { echo "deps: run as root (apt-get and the testbed need it)" >&2; exit 1; }
apt_install "${PACKAGES[@]}"
for series in "${@:-6.1}"; do
	setup_abi "$series" >/dev/null && continue
	resolve_abi "$series"
	fetch_kernel "$abi"
done
