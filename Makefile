# SPDX-License-Identifier: GPL-2.0
#
# rdmamig top-level Makefile.
#
#   make deps            install packages and fetch the guest kernel (idempotent)
#   make                 rdmamig.ko for the guest kernel, rdmamigctl, selftests
#   make KDIR=/lib/modules/$(uname -r)/build module    build for your own kernel
#   make module FAULT_INJECTION=n                      ... without the hostile peer
#   make demo            the main job: a live migration between two QEMU VMs
#   make check           the kselftests in the QEMU testbed, Linux 6.1 and
#                        6.12, both topologies (CI: every test on 6.1 in
#                        loop, a list per kernel and topology elsewhere)
#   make check SERIES=6.12                             ... on Linux 6.12 only
#   make check-full      every test on both kernels in both topologies (2 h 30)
#   make check-fresh     make demo and make check in a fresh debootstrap root
#                        with old package lists (run it when you change the
#                        build, scripts/ or .ci/run)
#   make debug-kernel    build the debug kernel (KASAN, lockdep, kmemleak, ...)
#   make check-debug     the kselftests on it, panic_on_warn=1 (slow: run it
#                        before closing an issue that touches kmod/)
#   make bench           rdmamig against the link's limit, loop and pair
#   make bench TOPOLOGIES=loop                         ... loop only
#   make install         install module (into /lib/modules/$(KVER)/extra, built
#                        without the hostile peer) and tool
#   make deb             Debian packages rdmamig-dkms and rdmamigctl in build/deb/
#   make qemu            QEMU 7.2 with the rdmamig: transport (tools/qemu/),
#                        downloaded and built once, cached by the series' hash
#   make check-qemu      QEMU migrating a guest VM A -> VM B through rdmamig
#
# SERIES picks the Debian kernel series of the testbed (6.1 or 6.12); KVER
# is its ABI, KDIR its kbuild tree.  Given neither KVER nor KDIR, a target
# that builds for or boots the testbed's kernel first runs scripts/deps.sh
# (which updates the package lists before it chooses a kernel), then asks
# it which ABI it set up and runs again in a sub-make with that KVER: one
# kernel, resolved once, after the lists are current.  Resolving it when
# make starts, from lists as old as the machine, named a kernel that
# deps.sh then did not install.
#
# The module of make module (build/mod-<kver>/, what the testbed loads)
# has the hostile peer of the selftests (kmod/hostile.c, Kbuild's
# CONFIG_RDMAMIG_FAULT_INJECTION) unless FAULT_INJECTION=n.  Its
# parameter lets root arm the next session of any user, so make install
# (which builds its own, in build/install-<kver>/) and the DKMS package
# never build it in (Documentation/security.rst).

SERIES ?= 6.1
ifneq ($(origin KDIR),undefined)
KVER ?= $(shell $(MAKE) -s -C $(KDIR) kernelrelease 2>/dev/null)
else ifneq ($(KVER),)
KDIR := /lib/modules/$(KVER)/build
endif
MODDIR := build/mod-$(KVER)
KO := $(MODDIR)/rdmamig.ko
INSTALL_MODDIR := build/install-$(KVER)
FAULT_INJECTION ?= y
TOPOLOGIES ?= loop pair
PREFIX ?= /usr/local
DESTDIR ?=
# make check runs both kernels unless SERIES is given.
CHECK_SERIES := $(if $(filter command line environment,$(origin SERIES)),$(SERIES),6.1 6.12)

.PHONY: all deps module tools selftests check check-all check-full check-kernel check-fresh \
	deb debug-kernel check-debug demo bench install clean help qemu check-qemu

help:
	@sed -n '3,28s/^# \{0,1\}//p' Makefile

deps:
	scripts/deps.sh $(SERIES)

tools:
	$(MAKE) -C tools/rdmamigctl
	$(MAKE) -C tools/rdmamig-vmm
	$(MAKE) -C tools/rdmamig-workload

selftests:
	$(MAKE) -C selftests/rdmamig

# The targets that build for or boot the testbed's kernel.
KERNEL_TARGETS := all module install demo bench check-kernel

ifeq ($(KVER),)
# No kernel named: set it up, then run again with the one deps.sh chose.
$(KERNEL_TARGETS):
	scripts/deps.sh $(SERIES)
	@$(MAKE) --no-print-directory $@ KVER=$$(scripts/deps.sh --kver $(SERIES))
else
all: module tools selftests

# kbuild writes its objects beside the sources; a symlink tree per kernel
# keeps the 6.1 and 6.12 builds apart, and one per kernel for make install
# keeps the module it installs (no fault injection) apart from the
# testbed's.
# $(call build_module,DIR,FAULT_INJECTION): rdmamig.ko in DIR.
define build_module
	@test -e $(KDIR)/Makefile || { echo "no kbuild tree at $(KDIR) (KVER=$(KVER)): run make deps" >&2; exit 1; }
	@mkdir -p $(1)
	@cp -rsf $(CURDIR)/kmod $(CURDIR)/uapi $(1)/
	@ln -sf $(CURDIR)/Kbuild $(1)/Kbuild
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(1) CONFIG_RDMAMIG_FAULT_INJECTION=$(2) modules
endef

module:
	$(call build_module,$(MODDIR),$(FAULT_INJECTION))

# One kernel's suite, both topologies (make check runs it per kernel).
# The bound is per topology run: 6.1's loop run passed 30 min on a busy
# host (2026-12-07), with CI's whole make check at 81 of its 90; in a
# fresh root on an idle host it took 2357 s (2026-12-07 evening), 810 of
# them deb_install_test.sh's DKMS build.
CHECK_TIMEOUT ?= 3300
check-kernel: all
	selftests/vm/check.sh -k $(KVER) -m $(CURDIR)/$(KO) -t "$(TOPOLOGIES)" \
		-T $(CHECK_TIMEOUT) $(CHECK_FLAGS)

install: tools
	$(call build_module,$(INSTALL_MODDIR),n)
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(INSTALL_MODDIR) INSTALL_MOD_DIR=extra modules_install
	$(MAKE) -C tools/rdmamigctl install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

# The benchmark against the link's own limit (Documentation/performance.rst),
# one run per topology of $(TOPOLOGIES), then one report over them all.
# make bench TOPOLOGIES=loop: the loop run only.  The loop guest holds
# both ends of a 2 GiB migration, hence its memory.
BENCH_MEM_loop := 6144
BENCH_MEM_pair := 2048
bench: all
	@bash -c 'APT_WHO=bench; source scripts/apt.sh; apt_install gnuplot-nox iperf3'
	@rc=0; for t in $(TOPOLOGIES); do \
		mem=$(BENCH_MEM_loop); [ $$t = pair ] && mem=$(BENCH_MEM_pair); \
		selftests/vm/vm.sh -k $(KVER) -t $$t -M $$mem -T 3000 -m $(CURDIR)/$(KO) \
			-o $(CURDIR)/build/logs/bench-$$t -- selftests/vm/bench.sh || rc=1; \
	done; \
	scripts/bench-report.sh build/bench $(foreach t,$(TOPOLOGIES),build/logs/bench-$(t)/out/bench.jsonl) && exit $$rc

# The main job: a live migration between two VMs (selftests/vm/demo.sh).
demo: all
	selftests/vm/vm.sh -k $(KVER) -t pair -m $(CURDIR)/$(KO) -o $(CURDIR)/build/logs/demo -- selftests/vm/demo.sh
endif

# Every kernel of CHECK_SERIES (6.1 and 6.12 unless SERIES is given),
# both topologies; the last line sums them.  Each target does its own
# set-up, so it works on a fresh machine.
# deb.sh after deps.sh: it packs the set-up kernels' kbuild trees for
# deb_install_test.sh, which runs with the first kernel only, and has DKMS
# build the package for that kernel on the host (--binaries), which the
# test installs instead of compiling under TCG (make check-full compiles).
check:
	scripts/deps.sh $(CHECK_SERIES)
	scripts/deb.sh --binaries "$$(scripts/deps.sh --kver $(firstword $(CHECK_SERIES)))"
	selftests/vm/check-all.sh "$(CHECK_SERIES)" "$(TOPOLOGIES)"

# Kept for the habit: the same as make check on both kernels.
check-all:
	$(MAKE) --no-print-directory check SERIES="6.1 6.12"

# make check with every test in every run (selftests/vm/check.sh -F), and
# deb_install_test.sh's DKMS build in the guest: about 2 h 30 under TCG,
# beyond CI's 90 minutes.  Run it before closing
# an issue that touches the module or a test's list.
check-full:
	RDMAMIG_CHECK_FULL=1 RDMAMIG_DEB_GUEST_BUILD=1 $(MAKE) --no-print-directory check

# The Debian packages (scripts/deb.sh, packaging/debian/): lintian-clean,
# tested in the testbed by deb_install_test.sh.
deb:
	scripts/deb.sh

# The README's two commands in a fresh Debian 12 root made by debootstrap,
# with this machine's apt sources and the lists debootstrap left
# (scripts/check-fresh.sh, Documentation/testing.rst).
check-fresh:
	scripts/check-fresh.sh

# QEMU with the rdmamig: transport in build/qemu/ (tools/qemu/README);
# RDMAMIG_QEMU_CACHE puts the download and the build outside the clone.
qemu:
	tools/qemu/build.sh

# QEMU migrating a guest through /dev/rdmamig, pair topology
# (tools/qemu/check.sh, selftests/rdmamig/qemu_test.sh).  check.sh sets
# up the kernel (KVER if given), builds module, tools and QEMU, and runs.
check-qemu:
	tools/qemu/check.sh $(KVER)

# The debug kernel (scripts/debug-kernel.sh, Documentation/testing.rst):
# Debian's linux-source-6.1 with KASAN, lockdep, kmemleak, DEBUG_OBJECTS,
# installed under build/kernels/ like the Debian kernels.  Its suite runs
# with panic_on_warn=1, so the first warning, KASAN or lockdep report ends
# a run, and guest-init.sh fails a run on any kmemleak report.  Evaluated
# only when used: --kver needs no build.
DEBUG_KVER = $(shell scripts/debug-kernel.sh --kver)
DEBUG_KDIR = $(CURDIR)/build/debug-kernel/src
DEBUG_TIMEOUT ?= 10800
# Per test: migrate_test.sh alone took 693 s in loop and over 900 s (the
# default) in pair, where each guest has one vCPU.
DEBUG_TEST_TIMEOUT ?= 3600
# The VMMs' own --timeout (migrate_test's 256 MiB took 107 s in pair), and
# the keepalive's slack: this kernel's timers and softirqs run late.
DEBUG_MIGRATE_TIMEOUT ?= 1200
DEBUG_KA_SLACK_MS ?= 3000
# acpi=noirq: under TCG this kernel's ACPI interpreter needs more than
# ACPICA's 30 s loop limit to run QEMU's \_SB.PCI0._PRT, once per PCI
# device; the BIOS' PIR table routes the legacy interrupts instead.
DEBUG_KCMDLINE = panic_on_warn=1 acpi=noirq

debug-kernel:
	scripts/debug-kernel.sh

check-debug: debug-kernel
	scripts/deps.sh $(SERIES)
	$(MAKE) all KDIR=$(DEBUG_KDIR) KVER=$(DEBUG_KVER)
	RDMAMIG_KCMDLINE="$(DEBUG_KCMDLINE) $${RDMAMIG_KCMDLINE:-}" \
		RDMAMIG_TEST_TIMEOUT=$(DEBUG_TEST_TIMEOUT) \
		RDMAMIG_MIGRATE_TIMEOUT=$(DEBUG_MIGRATE_TIMEOUT) \
		RDMAMIG_KA_SLACK_MS=$(DEBUG_KA_SLACK_MS) selftests/vm/check.sh -k $(DEBUG_KVER) -T $(DEBUG_TIMEOUT) \
		-m $(CURDIR)/build/mod-$(DEBUG_KVER)/rdmamig.ko -t "$(TOPOLOGIES)" -F

clean:
	rm -rf build/mod-* build/install-* build/selftests build/deb
	$(MAKE) -C tools/rdmamigctl clean
	$(MAKE) -C selftests/rdmamig clean
