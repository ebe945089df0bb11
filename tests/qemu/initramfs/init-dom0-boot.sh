#!/bin/sh
# /init of the dom0-boot initramfs (scenario dom0-boot, cargo xtask demo and bench).
#
# Built into target/assets/initramfs-*.cpio by xtask (xtask/src/assets/) with
# Debian's busybox-static. Prints, on the console (console=ttyS0 on the kernel
# command line):
#
#   OXEN-DOM0: userspace up
#   OXEN-DOM0: cpus online: N          count of /sys/devices/system/cpu/online
#   OXEN-DOM0: memtotal-kb: N          MemTotal of /proc/meminfo
#   OXEN-DOM0: hypervisor flag: yes|no the "hypervisor" flag in /proc/cpuinfo
#   OXEN-DOM0: uptime: S.SS            /proc/uptime when userspace came up
#   OXEN-DOM0: tsc-khz: N|unknown      the TSC frequency the kernel believes,
#                                      from its log ("tsc: Detected X MHz TSC",
#                                      else "... MHz processor"): /proc/uptime
#                                      counts TSC ticks at this rate, which
#                                      need not be the emulator's (cargo xtask
#                                      bench normalizes with it)
#   OXEN-BENCH: cpuid-ticks: N         from /bin/oxen-bench when the image has
#   OXEN-BENCH: getppid-ticks: N       it (tools/bench/oxen-bench.c)
#   OXEN-DOM0: cpuid-hypervisor: SIG (max leaf 0xN)
#                                      CPUID 0x40000000 through /dev/cpu/0/cpuid
#                                      (cpuid.ko ships in /lib/modules/); non-
#                                      printable bytes show as '.'; "unavailable"
#                                      when the device cannot be read
#   OXEN-DOM0: powering off
#
# then powers off with `poweroff -f` (ACPI S5 from the kernel).

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
# Uptime first, as close to the start of userspace as the shell allows.
read -r up_seconds _ < /proc/uptime
mount -t sysfs sysfs /sys
# Debian's kernel has CONFIG_DEVTMPFS_MOUNT off: mount it ourselves.
mount -t devtmpfs devtmpfs /dev

echo "OXEN-DOM0: userspace up"

# Counts the CPUs of a list like "0-3,5,7-8".
count_cpus() {
    n=0
    old_ifs=$IFS
    IFS=,
    for part in $1; do
        case $part in
            *-*) n=$((n + ${part#*-} - ${part%-*} + 1)) ;;
            ?*) n=$((n + 1)) ;;
        esac
    done
    IFS=$old_ifs
    echo "$n"
}

if [ -r /sys/devices/system/cpu/online ]; then
    cpus=$(count_cpus "$(cat /sys/devices/system/cpu/online)")
else
    cpus=$(nproc)
fi
echo "OXEN-DOM0: cpus online: $cpus"

memtotal=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
echo "OXEN-DOM0: memtotal-kb: $memtotal"

if grep -qw hypervisor /proc/cpuinfo; then
    echo "OXEN-DOM0: hypervisor flag: yes"
else
    echo "OXEN-DOM0: hypervisor flag: no"
fi

echo "OXEN-DOM0: uptime: $up_seconds"

# "tsc: Detected 64.001 MHz TSC" (preferred) or "... MHz processor", in kHz.
tsc_mhz=$(dmesg | sed -n 's/.*tsc: Detected \([0-9]*\.[0-9]*\) MHz TSC.*/\1/p' | head -n 1)
if [ -z "$tsc_mhz" ]; then
    tsc_mhz=$(dmesg | sed -n 's/.*tsc: Detected \([0-9]*\.[0-9]*\) MHz processor.*/\1/p' | head -n 1)
fi
if [ -n "$tsc_mhz" ]; then
    tsc_khz=$(echo "$tsc_mhz" | awk '{ printf "%d", $1 * 1000 + 0.5 }')
else
    tsc_khz=unknown
fi
echo "OXEN-DOM0: tsc-khz: $tsc_khz"

if [ -x /bin/oxen-bench ]; then
    /bin/oxen-bench
fi

# CPUID leaf 0x40000000: /dev/cpu/0/cpuid reads 16 bytes (EAX, EBX, ECX, EDX)
# of the leaf given by the file position, so skip 0x40000000/16 blocks of 16.
insmod /lib/modules/cpuid.ko 2>/dev/null
leaf=$(dd if=/dev/cpu/0/cpuid bs=16 skip=67108864 count=1 2>/dev/null | hexdump -v -e '16/1 "%02x"')
if [ ${#leaf} -eq 32 ]; then
    # EAX is little-endian in the first 4 bytes.
    max_leaf=$(echo "$leaf" | sed 's/^\(..\)\(..\)\(..\)\(..\).*/\4\3\2\1/')
    signature=$(dd if=/dev/cpu/0/cpuid bs=16 skip=67108864 count=1 2>/dev/null |
        dd bs=1 skip=4 count=12 2>/dev/null | tr -c '\040-\176' '.')
    echo "OXEN-DOM0: cpuid-hypervisor: $signature (max leaf 0x$max_leaf)"
else
    echo "OXEN-DOM0: cpuid-hypervisor: unavailable"
fi

# oxen.linger=N on the kernel command line: stay up N more seconds, so that
# a scenario can type on the serial console (the hypervisor's debug keys
# are read from what dom0's UART driver receives).
linger=
for word in $(cat /proc/cmdline); do
    case $word in
        oxen.linger=*) linger=${word#oxen.linger=} ;;
    esac
done
case "$linger" in
    '' | *[!0-9]*) ;;
    *)
        echo "OXEN-DOM0: lingering $linger s for console input"
        sleep "$linger"
        ;;
esac

sleep 1
echo "OXEN-DOM0: powering off"
poweroff -f
# Not reached unless power-off failed; init must not exit (that panics).
echo "OXEN-DOM0: poweroff failed"
while :; do sleep 1000; done
