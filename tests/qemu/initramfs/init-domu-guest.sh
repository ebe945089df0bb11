#!/bin/sh
# /init of the Linux guest domain's own initramfs (scenario domu-lifecycle):
# Debian's kernel runs as a domU; this reports what it sees, then prints a
# heartbeat each second (so pausing shows), answers lines typed on its
# console (the emulated 16550, ttyS0), and powers the domain off when its
# ACPI power button is pressed (`xl-rs shutdown` / `xl-rs reboot`): the
# kernel's ACPI button driver (button.ko) reports KEY_POWER through evdev
# (evdev.ko), as on a server where systemd-logind or acpid would act on it.
#
#   OXEN-DOMU-LINUX: userspace up
#   OXEN-DOMU-LINUX: uptime: S, tsc-mhz: M  the kernel's clock at userspace
#   OXEN-DOMU-LINUX: cpus N, memtotal-kb N, hypervisor flag yes|no
#   OXEN-DOMU-LINUX: power button at /dev/input/eventN | power button: NONE
#   OXEN-DOMU-LINUX: alive N               one per second
#   OXEN-DOMU-LINUX: read LINE             for each line typed on the console
#   OXEN-DOMU-LINUX: smp job: N of M CPUs  after the line "smp-job": one busy
#                                          job pinned to each of its M CPUs,
#                                          N of them finished (domu-smp)
#   OXEN-DOMU-LINUX: power button pressed, powering off

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
# The kernel's uptime at userspace, first (`cargo xtask bench domu-create`
# compares it with the same kernel booted bare).
read -r up_seconds _ < /proc/uptime
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-DOMU-LINUX: userspace up"
tsc_mhz=$(dmesg | sed -n 's/.*tsc: Detected \([0-9]*\.[0-9]*\) MHz.*/\1/p' | head -n 1)
echo "OXEN-DOMU-LINUX: uptime: $up_seconds, tsc-mhz: ${tsc_mhz:-unknown}"
flag=no
grep -q '^flags.* hypervisor' /proc/cpuinfo && flag=yes
memtotal=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
echo "OXEN-DOMU-LINUX: cpus $(nproc), memtotal-kb $memtotal, hypervisor flag $flag"
echo "OXEN-DOMU-LINUX: /proc/cpuinfo processors: $(grep -c '^processor' /proc/cpuinfo)"

insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
button=
for ev in /sys/class/input/event*; do
    [ "$(cat "$ev/device/name" 2> /dev/null)" = "Power Button" ] && button=/dev/input/${ev##*/}
done
if [ -n "$button" ]; then
    echo "OXEN-DOMU-LINUX: power button at $button"
    # One input event (24 bytes on x86-64) is the press.
    (
        dd if="$button" bs=24 count=1 of=/dev/null 2> /dev/null
        echo "OXEN-DOMU-LINUX: power button pressed, powering off"
        sleep 1
        poweroff -f
    ) &
else
    echo "OXEN-DOMU-LINUX: power button: NONE"
fi

# One busy job pinned to each CPU (taskset fails for a CPU that is not
# online); counts those that finished.
smp_job() {
    cpus=$(nproc)
    rm -f /tmp/smp-done
    for i in $(seq 0 $((cpus - 1))); do
        (
            taskset -c "$i" sh -c 'k=0; while [ $k -lt 20000 ]; do k=$((k + 1)); done' &&
                echo "$i" >> /tmp/smp-done
        ) &
    done
    wait
    echo "OXEN-DOMU-LINUX: smp job: $(wc -l < /tmp/smp-done) of $cpus CPUs"
}

# Answer console lines in the background; the foreground prints the
# heartbeat.
(
    while read -r line < /dev/console; do
        echo "OXEN-DOMU-LINUX: read $line"
        [ "$line" = smp-job ] && smp_job
    done
) &
n=0
while :; do
    n=$((n + 1))
    echo "OXEN-DOMU-LINUX: alive $n"
    sleep 1
done
