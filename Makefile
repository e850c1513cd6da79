# SPDX-License-Identifier: GPL-2.0
#
# rdmamig top-level Makefile.
#
#   make deps            install packages and fetch the guest kernel (idempotent)
#   make                 rdmamig.ko for the guest kernel, rdmamigctl, selftests
#   make KDIR=/lib/modules/$(uname -r)/build module    build for your own kernel
#   make demo            the main job: a live migration between two QEMU VMs
#   make check           run the kselftests in the QEMU testbed (both topologies)
#   make check SERIES=6.12                             ... on Linux 6.12
#   make check-all       ... on Linux 6.1 and 6.12
#   make debug-kernel    build the debug kernel (KASAN, lockdep, kmemleak, ...)
#   make check-debug     the kselftests on it, panic_on_warn=1 (slow: run it
#                        before closing an issue that touches kmod/)
#   make bench           rdmamig against the link's limit, loop and pair
#   make bench TOPOLOGIES=loop                         ... loop only
#   make install         install module (into /lib/modules/$(KVER)/extra) and tool
#
# SERIES picks the Debian kernel series of the testbed (6.1 or 6.12); KVER
# is its ABI as scripts/deps.sh resolves it, KDIR its kbuild tree.

SERIES ?= 6.1
ifeq ($(origin KDIR),undefined)
KVER ?= $(shell scripts/deps.sh --kver $(SERIES))
KDIR := /lib/modules/$(KVER)/build
else
KVER ?= $(shell $(MAKE) -s -C $(KDIR) kernelrelease 2>/dev/null)
endif
MODDIR := build/mod-$(KVER)
KO := $(MODDIR)/rdmamig.ko
TOPOLOGIES ?= loop pair
PREFIX ?= /usr/local
DESTDIR ?=

export KVER

.PHONY: all deps module tools selftests check check-all debug-kernel check-debug \
	demo bench install clean help

all: module tools selftests

help:
	@sed -n '3,21s/^# \{0,1\}//p' Makefile

deps:
	scripts/deps.sh $(SERIES)

$(KDIR)/Makefile:
	scripts/deps.sh $(SERIES)

# kbuild writes its objects beside the sources; a symlink tree per kernel
# keeps the 6.1 and 6.12 builds apart.
module: | $(KDIR)/Makefile
	@mkdir -p $(MODDIR)
	@cp -rsf $(CURDIR)/kmod $(CURDIR)/uapi $(MODDIR)/
	@ln -sf $(CURDIR)/Kbuild $(MODDIR)/Kbuild
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(MODDIR) modules

tools:
	$(MAKE) -C tools/rdmamigctl
	$(MAKE) -C tools/rdmamig-vmm
	$(MAKE) -C tools/rdmamig-workload

selftests:
	$(MAKE) -C selftests/rdmamig

# Each target does its own set-up, so they work on a fresh machine.
# A topology's suite takes 8-12 min on an idle 2-core host and twice that
# on a busy one; two topologies at this bound stay inside CI's 90 minutes.
CHECK_TIMEOUT ?= 1800
check:
	scripts/deps.sh $(SERIES)
	$(MAKE) all
	selftests/vm/check.sh -k $(KVER) -m $(CURDIR)/$(KO) -t "$(TOPOLOGIES)" -T $(CHECK_TIMEOUT)

# Both kernels, both topologies; the last line sums them.
check-all:
	scripts/deps.sh 6.1 6.12
	selftests/vm/check-all.sh "$(TOPOLOGIES)"

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
		-m $(CURDIR)/build/mod-$(DEBUG_KVER)/rdmamig.ko -t "$(TOPOLOGIES)"

# The benchmark against the link's own limit (Documentation/performance.rst),
# one run per topology of $(TOPOLOGIES), then one report over them all.
# make bench TOPOLOGIES=loop: the loop run only.  The loop guest holds
# both ends of a 2 GiB migration, hence its memory.
BENCH_MEM_loop := 6144
BENCH_MEM_pair := 2048
bench:
	scripts/deps.sh $(SERIES)
	$(MAKE) all
	@for p in gnuplot:gnuplot-nox iperf3:iperf3; do \
		command -v $${p%%:*} >/dev/null && continue; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $${p#*:} >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $${p#*:} >/dev/null; } || exit 1; \
	done
	@rc=0; for t in $(TOPOLOGIES); do \
		mem=$(BENCH_MEM_loop); [ $$t = pair ] && mem=$(BENCH_MEM_pair); \
		selftests/vm/vm.sh -k $(KVER) -t $$t -M $$mem -T 3000 -m $(CURDIR)/$(KO) \
			-o $(CURDIR)/build/logs/bench-$$t -- selftests/vm/bench.sh || rc=1; \
	done; \
	scripts/bench-report.sh build/bench $(foreach t,$(TOPOLOGIES),build/logs/bench-$(t)/out/bench.jsonl) && exit $$rc

# The main job: a live migration between two VMs (selftests/vm/demo.sh).
demo:
	scripts/deps.sh $(SERIES)
	$(MAKE) all
	selftests/vm/vm.sh -k $(KVER) -t pair -m $(CURDIR)/$(KO) -o $(CURDIR)/build/logs/demo -- selftests/vm/demo.sh

install: module tools
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(MODDIR) INSTALL_MOD_DIR=extra modules_install
	$(MAKE) -C tools/rdmamigctl install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

clean:
	rm -rf build/mod-* build/selftests
	$(MAKE) -C tools/rdmamigctl clean
	$(MAKE) -C selftests/rdmamig clean
