# SPDX-License-Identifier: GPL-2.0
#
# apt.sh - sourced by the set-up scripts (deps.sh, deb.sh,
# debug-kernel.sh): install Debian packages that are missing.
#
#   APT_WHO=deps; source scripts/apt.sh
#   apt_install PKG...    install those not installed yet
#   apt_update            apt-get update, once per run
#
# apt_install tries the lists as they are first, and updates them and
# tries again only if that fails: a machine whose lists are old updates
# once, one whose lists are current not at all.  Messages go to stderr,
# prefixed "$APT_WHO:".  INITRD=No: the 6.12 headers pull in the host's
# own image of that kernel, whose initramfs nobody boots (the testbed
# makes its own).

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	echo "$APT_WHO: apt-get update" >&2
	apt-get update -qq >&2
	apt_updated=1
}

apt_get_install() {
	DEBIAN_FRONTEND=noninteractive INITRD=No apt-get install -y -qq \
		--no-install-recommends "$@" >&2
}

apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "$APT_WHO: missing packages ${missing[*]}: run as root" >&2
		exit 1
	fi
	echo "$APT_WHO: installing ${missing[*]}" >&2
	apt_get_install "${missing[@]}" 2>/dev/null && return 0
	apt_update
	apt_get_install "${missing[@]}"
}
