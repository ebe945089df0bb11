#!/bin/sh
# /init of the Linux guest domain's own initramfs (scenario domu-lifecycle):
# Debian's kernel runs as a domU; this reports what it sees, then prints a
# heartbeat each second (so pausing shows), and powers the domain off when
# it reads 'q' from its console (the emulated 16550, ttyS0).
#
#   OXEN-DOMU-LINUX: userspace up
#   OXEN-DOMU-LINUX: cpus N, memtotal-kb N, hypervisor flag yes|no
#   OXEN-DOMU-LINUX: alive N               one per second
#   OXEN-DOMU-LINUX: powering off          after a 'q'

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-DOMU-LINUX: userspace up"
flag=no
grep -q '^flags.* hypervisor' /proc/cpuinfo && flag=yes
memtotal=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
echo "OXEN-DOMU-LINUX: cpus $(nproc), memtotal-kb $memtotal, hypervisor flag $flag"

# Wait for a 'q' in the background; the foreground prints the heartbeat.
(
    while :; do
        c=$(dd bs=1 count=1 2> /dev/null < /dev/console)
        if [ "$c" = q ]; then
            echo "OXEN-DOMU-LINUX: powering off"
            sleep 1
            poweroff -f
        fi
    done
) &
n=0
while :; do
    n=$((n + 1))
    echo "OXEN-DOMU-LINUX: alive $n"
    sleep 1
done
