#!/bin/sh
# /init of the hypercall-abuse initramfs (scenario hypercall-abuse, and
# `cargo xtask bench hypercall`): the hypervisor's hypercall checks under
# abuse. Loads the hvctl driver, measures the cheapest control hypercall
# (oxen-bench hypercall), has oxen-hcabuse execute VMCALL at CPL 3 and throw
# 10,000 random and malformed hypercalls through the RAW ioctl, then checks
# that the hypervisor still answers (xl-rs info), that dom0 still works and
# that a non-root user is refused.
#
# Built into target/assets/initramfs-hypercall-abuse.cpio by xtask
# (xtask/src/assets/: hvctl.ko, xl-rs and oxen-runas as for xl-info,
# oxen-bench from tools/bench/oxen-bench.c, oxen-hcabuse from
# oxen-hcabuse.c). Prints, on the console:
#
#   OXEN-ABUSE: userspace up
#   OXEN-ABUSE: hvctl loaded: /dev/hvctl crw------- 0 0   or   hvctl NOT loaded ...
#   OXEN-BENCH: hypercall-ticks: N        from oxen-bench hypercall
#   OXEN-BENCH: raw-hypercall-ticks: N
#   OXEN-BENCH: getppid-ticks: N
#   OXEN-ABUSE: ...                       oxen-hcabuse's lines (see its
#                                         header): user VMCALL, seed, tally,
#                                         "check failed: ..." on a failure
#   OXEN-ABUSE: $ COMMAND, LABEL| ..., OXEN-ABUSE: LABEL exit N
#                                         xl-rs info as root (info|) and as
#                                         uid 65534 (nonroot|)
#   OXEN-ABUSE: dom0 alive: uptime A s -> B s, fork and pipe work
#   OXEN-ABUSE: non-root refused: yes
#   OXEN-ABUSE: PASS: 10000 hypercalls refused, ...   or   FAIL: <what failed>
#   OXEN-ABUSE: powering off
#
# Then powers off with `poweroff -f`, after the console has drained.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
# run and drain_console (tests/qemu/initramfs/common.sh).
. /lib/oxen/common.sh
OXEN_TAG="OXEN-ABUSE: "

COUNT=10000

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Debian's kernel has CONFIG_DEVTMPFS_MOUNT off: mount it ourselves.
mount -t devtmpfs devtmpfs /dev

echo "OXEN-ABUSE: userspace up"
failures=

# fail WHAT: remembers a failed check for the verdict.
fail() {
    failures="${failures:+$failures; }$1"
}

uptime_s() {
    cut -d ' ' -f 1 /proc/uptime
}

if insmod /lib/modules/hvctl.ko 2> /tmp/insmod.out && [ -c /dev/hvctl ]; then
    echo "OXEN-ABUSE: hvctl loaded: /dev/hvctl $(ls -ln /dev/hvctl | awk '{ print $1, $3, $4 }')"
else
    echo "OXEN-ABUSE: hvctl NOT loaded: $(cat /tmp/insmod.out)"
    fail "hvctl not loaded"
fi

# The round trip of the cheapest control hypercall, before the abuse.
oxen-bench hypercall || fail "oxen-bench hypercall exit $?"

uptime_before=$(uptime_s)
# Its failures are "check failed:" or "error:" lines; the checks below run
# after a failure too, so that the log shows what still works.
oxen-hcabuse -n "$COUNT"
abuse=$?
[ $abuse -eq 0 ] || fail "oxen-hcabuse exit $abuse (see its check failed or error lines)"

# The hypervisor still answers xl-rs.
run info xl-rs info
[ $status -eq 0 ] || fail "xl-rs info exit $status"
grep -q '^nr_cpus *: *[1-9]' /tmp/info.out || fail "xl-rs info has no nr_cpus"

# dom0 still works: its clock advances, it forks, a pipe carries data.
sleep 1
uptime_after=$(uptime_s)
piped=$(echo oxen | cat | tr a-z A-Z)
if awk -v a="$uptime_before" -v b="$uptime_after" 'BEGIN { exit !(b > a) }' &&
    [ "$piped" = "OXEN" ]; then
    echo "OXEN-ABUSE: dom0 alive: uptime $uptime_before s -> $uptime_after s, fork and pipe work"
else
    echo "OXEN-ABUSE: dom0 NOT alive: uptime $uptime_before s -> $uptime_after s, pipe gave '$piped'"
    fail "dom0 not alive"
fi

# An unprivileged user (uid 65534, "nobody") must get a clear refusal.
run nonroot oxen-runas 65534 /bin/xl-rs info
if [ $status -ne 0 ] &&
    grep -q 'permission denied opening /dev/hvctl: xl-rs must run as root' /tmp/nonroot.out; then
    echo "OXEN-ABUSE: non-root refused: yes"
else
    echo "OXEN-ABUSE: non-root refused: NO"
    fail "non-root not refused"
fi

if [ -z "$failures" ]; then
    echo "OXEN-ABUSE: PASS: $COUNT hypercalls refused, user VMCALL refused, hypervisor answers, dom0 alive, non-root refused"
else
    echo "OXEN-ABUSE: FAIL: $failures"
fi

drain_console
echo "OXEN-ABUSE: powering off"
drain_console
poweroff -f
# Not reached unless power-off failed; init must not exit (that panics).
echo "OXEN-ABUSE: poweroff failed"
while :; do sleep 1000; done
