#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check-fresh.sh [--no-lists] [COMMAND...] - the README's commands on a
# fresh Debian 12, as a new user runs them.
#
# Builds a Debian 12 root with `debootstrap --variant=minbase
# --include=git,make,ca-certificates bookworm` from the mirror this machine
# uses, gives it this machine's Debian apt sources (bookworm,
# bookworm-updates, bookworm-security: whatever it has) and proxy settings
# but keeps the package lists debootstrap left, which hold the bookworm
# suite only: they name the kernel of the last point release, older than
# bookworm-security's, just as a machine's lists from its install day do.
# With --no-lists the root has no lists at all.  Then it clones the
# committed main of this repository into the root and runs each COMMAND
# there (default: `make demo` and `make check`, the README's two), in
# a private mount namespace with /proc, /sys and /dev bound.
#
# RDMAMIG_FRESH_REF clones another commit instead of main (to see an old
# one fail).
#
# Prints each command's status and time; the last line is the last
# command's own `N passed, N failed, N skipped` (or one failure when a
# command failed without one).  The root and its logs stay in
# build/fresh/ for a look afterwards; the next run starts anew.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
work=$top/build/fresh
root=$work/root
lists=debootstrap
if [ "${1:-}" = --no-lists ]; then
	lists=none
	shift
fi
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=("make demo" "make check")

[ "$(id -u)" = 0 ] || { echo "check-fresh: run as root (debootstrap, chroot)" >&2; exit 1; }
if [ -z "${RDMAMIG_FRESH_NS:-}" ]; then
	# Mounts made inside vanish with the namespace, however this ends.
	exec env RDMAMIG_FRESH_NS=1 unshare --mount --propagation private "$top/scripts/check-fresh.sh" \
		$([ $lists = none ] && echo --no-lists) "${commands[@]}"
fi

note() {
	echo "check-fresh: $*"
}

APT_WHO=check-fresh
source "$top/scripts/apt.sh"
apt_install debootstrap

# The Debian mirror this machine uses for bookworm, as apt sees it.
mirror=$(apt-get indextargets --format '$(RELEASE) $(TARGET_OF) $(REPO_URI)' |
	awk '$1 == "bookworm" && $2 == "deb" { print $3; exit }')
[ -n "$mirror" ] || { echo "check-fresh: no bookworm entry in this machine's apt sources" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
t0=$SECONDS
note "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase --include=git,make,ca-certificates bookworm \
	"$root" "$mirror" > "$work/debootstrap.log" 2>&1 ||
	{ tail -n 20 "$work/debootstrap.log"; echo "check-fresh: debootstrap failed" >&2; exit 1; }
note "root ready in $((SECONDS - t0)) s"

# This machine's Debian sources, one-line and deb822 alike, but not what
# rdmamig's own scripts added (deps.sh's backports entry): the root must
# find its way there by itself.  Third-party entries are left out; their
# keyrings are not in the root.
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	grep -E '^[[:space:]]*deb(-src)?[[:space:]].*[[:space:]]bookworm' "$f" \
		>> "$root/etc/apt/sources.list" || true
done
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	case $(basename "$f") in rdmamig-*) continue ;; esac
	awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)Suites:[^\n]*bookworm/' "$f" \
		> "$root/etc/apt/sources.list.d/$(basename "$f")"
done
for f in /etc/apt/apt.conf.d/*; do
	grep -qis 'proxy' "$f" && cp "$f" "$root/etc/apt/apt.conf.d/"
done
if [ $lists = none ]; then
	rm -rf "$root/var/lib/apt/lists"/*
	note "package lists: none"
else
	note "package lists: debootstrap's ($(ls "$root/var/lib/apt/lists" | grep -c Packages || true) Packages file(s))"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

git clone -q --no-local "$top" "$root/root/rdmamig"
git -C "$root/root/rdmamig" checkout -q "${RDMAMIG_FRESH_REF:-main}"
note "cloned ${RDMAMIG_FRESH_REF:-main} at $(git -C "$root/root/rdmamig" log -1 --format='%h %s')"

mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/dev/shm"
mount -t tmpfs tmpfs "$root/tmp"

summary='' results=()
for cmd in "${commands[@]}"; do
	log=$work/$(echo "$cmd" | tr -c 'A-Za-z0-9\n' '-').log
	note "running '$cmd' (log: $log)"
	t0=$SECONDS rc=0
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/bash -c "cd /root/rdmamig && $cmd" > "$log" 2>&1 || rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
	results+=("'$cmd': exit $rc in $((SECONDS - t0)) s${line:+: $line}")
	if [ $rc -ne 0 ]; then
		tail -n 30 "$log"
		summary=${line:-0 passed, 1 failed, 0 skipped}
		break
	fi
	summary=${line:-1 passed, 0 failed, 0 skipped}
done
for r in "${results[@]}"; do
	note "$r"
done
echo "$summary"
[[ $summary =~ \ 0\ failed ]]
