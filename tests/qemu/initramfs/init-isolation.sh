#!/bin/sh
# /init of the dom0-isolation initramfs (scenario dom0-isolation).
#
# Built into target/assets/initramfs-isolation.cpio by xtask
# (xtask/src/assets/) with Debian's busybox-static and /bin/oxen-memprobe
# (oxen-memprobe.c beside this script, gcc -static).
#
# The hypervisor gives dom0 an e820 map in which all host RAM that is not
# dom0's (the hypervisor's own memory and the free pool) is reserved, and maps
# each such page in dom0's EPT to one read-only page of all-ones; with its
# `canary` option it plants OXEN-CANARY- records there first. oxen-memprobe
# finds those reserved ranges in /sys/firmware/memmap (the e820 map dom0 was
# given), reads every byte of them through /dev/mem (mmap) looking for bytes
# that are not 0xff and for the canary, and tries writes into a few pages of
# each (an 8-byte store, a 4 KiB memcpy, a 64-byte pwrite) that must not stick.
# Lines printed (ranges hexadecimal, END exclusive):
#
#   OXEN-ISOLATION: userspace up
#   OXEN-ISOLATION: iomem: START-END : Reserved     dom0 kernel's view (/proc/iomem)
#   OXEN-ISOLATION: memmap: ... / range ... / skip ...   what the probe takes
#   OXEN-ISOLATION: read START-END: B bytes, N not 0xff, canary absent | CANARY SEEN (K hits)
#   OXEN-ISOLATION: write START-END: W writes dropped | WRITE STUCK at ADDR (...)
#   OXEN-ISOLATION: error: ...                       open, mmap, pwrite or a fault
#   OXEN-ISOLATION: PASS: R ranges, B bytes read, all 0xff, W writes dropped
#   OXEN-ISOLATION: FAIL: <why>
#   OXEN-ISOLATION: dom0 alive after probing (uptime S s, CPUs online 0-1)
#
# The last is printed only if dom0 still reads /proc/uptime, forks and execs,
# and moves 16 MiB through a pipe after the probe. Then it powers off.
#
# An `error:` line means dom0's own kernel said no, which proves nothing about
# the hypervisor: the scenario fails on it. What dom0's kernel lets through:
#   - CONFIG_STRICT_DEVMEM=y (Debian): System RAM above 1 MiB is refused, so
#     the probe only touches ranges that are reserved in dom0's e820 map;
#     reserved ranges are allowed. Below 1 MiB /dev/mem shows the real BIOS
#     areas, so the probe starts at 1 MiB.
#   - CONFIG_IO_STRICT_DEVMEM=y (Debian): busy resources are refused too, and
#     a reserved e820 range that starts below 1 MiB is marked busy as a whole;
#     pass `iomem=relaxed` on dom0's command line to lift that.
#   - read() and write() of /dev/mem stop at the end of dom0's highest RAM
#     ("Bad address" beyond it); mmap has no such limit. The probe reads and
#     stores through mmap, and its pwrite test runs only below that end.
# So the scenario's dom0 command line is:
#   console=ttyS0 loglevel=4 iomem=relaxed
# A WRITE STUCK is undone (the old bytes written back) after it is seen.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-ISOLATION: userspace up"

# The top-level reserved ranges as dom0's kernel sees them.
grep ' : Reserved$' /proc/iomem | grep -v '^ ' | while read -r line; do
    echo "OXEN-ISOLATION: iomem: $line"
done

if [ -x /bin/oxen-memprobe ]; then
    /bin/oxen-memprobe
    status=$?
    # 0 is PASS and 1 FAIL, each with its own line; anything else (a signal)
    # left no verdict.
    if [ "$status" -gt 1 ]; then
        echo "OXEN-ISOLATION: FAIL: oxen-memprobe ended with status $status"
    fi
else
    echo "OXEN-ISOLATION: FAIL: no /bin/oxen-memprobe in the initramfs"
fi

# Is dom0 still well? Read the clock, fork and exec, move data through a pipe.
uptime=
read -r uptime idle < /proc/uptime
cpus=$(cat /sys/devices/system/cpu/online 2> /dev/null)
moved=$(dd if=/dev/zero bs=1048576 count=16 2> /dev/null | wc -c)
if [ -n "$uptime" ] && [ -n "$cpus" ] && [ "$moved" = 16777216 ]; then
    echo "OXEN-ISOLATION: dom0 alive after probing (uptime $uptime s, CPUs online $cpus)"
else
    echo "OXEN-ISOLATION: FAIL: dom0 unwell after probing (uptime '$uptime', CPUs online '$cpus', pipe moved '$moved' bytes)"
fi

# oxen.end=reboot on the kernel command line: end with a reboot instead of
# a power-off (the scenario checks that dom0's reset restarts the machine).
sleep 1
if grep -q 'oxen\.end=reboot' /proc/cmdline; then
    echo "OXEN-ISOLATION: rebooting"
    reboot -f
else
    poweroff -f
fi
echo "OXEN-ISOLATION: poweroff/reboot failed"
while :; do sleep 1000; done
