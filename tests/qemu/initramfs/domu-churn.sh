#!/bin/sh
# dom0's part of scenario domu-churn, which `cargo xtask bench domu-create`
# also runs: started by init-domu-linux.sh when the kernel command line says
# `oxen.test=churn`, with the same image (hvctl.ko, xl-rs, Debian's vmlinux
# and the guest initramfs, /etc/oxen/linux.cfg: 256 MiB, one vCPU).
#
# Cycle 1 is timed with `oxen-bench time` (TSC ticks, from before the fork
# to after the exit): `xl-rs create` returning, then `xl-rs console` until
# the guest's marker (its userspace), then `xl-rs destroy`. Cycles 2-10
# create the guest, let it boot for a while (so destroy meets a running
# kernel at a different point each time), and destroy it. After every
# cycle the free pages must be back to what they were, to the page.
#
#   OXEN-DOMU-CHURN: userspace up / free pages before: N
#   OXEN-BENCH: create-ticks: N exit S       (oxen-bench time, cycle 1)
#   OXEN-BENCH: marker-ticks: N exit S       console until the marker
#   OXEN-BENCH: destroy-ticks: N exit S
#   OXEN-DOMU-CHURN: cycle I: free pages N (same|DIFFERENT)
#   OXEN-DOMU-CHURN: 10 cycles, pages leaked: 0|N
#   OXEN-DOMU-CHURN: done

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /lib/oxen/common.sh
OXEN_TAG="OXEN-DOMU-CHURN: "

echo "OXEN-DOMU-CHURN: userspace up"
insmod /lib/modules/hvctl.ko || echo "OXEN-DOMU-CHURN: FAIL: hvctl did not load"
before=$(free_pages)
echo "OXEN-DOMU-CHURN: free pages before: $before"

CFG=/etc/oxen/linux.cfg
leaked=0
check() {
    now=$(free_pages_back_to "$before")
    verdict=$(same "$before" "$now")
    echo "OXEN-DOMU-CHURN: cycle $1: free pages $now ($verdict)"
    [ "$verdict" = same ] || leaked=$((leaked + 1))
}

# Cycle 1, timed.
oxen-bench time create xl-rs create -e "$CFG"
oxen-bench time marker xl-rs console --until 'OXEN-DOMU-LINUX: uptime: [0-9.]+, tsc-mhz: [0-9.a-z]+[\r\n]' --timeout 600 linux > /tmp/marker.out 2>&1
sed 's/^/marker| /' /tmp/marker.out
oxen-bench time destroy xl-rs destroy linux
check 1

# Cycles 2-10: destroyed while it boots, after 1 s, 2 s, ... of running.
for i in $(seq 2 10); do
    xl-rs create -e "$CFG" > /tmp/create.out 2>&1 || { echo "OXEN-DOMU-CHURN: FAIL: create $i"; cat /tmp/create.out; }
    sleep $((i - 1))
    xl-rs destroy linux || echo "OXEN-DOMU-CHURN: FAIL: destroy $i"
    check "$i"
done
echo "OXEN-DOMU-CHURN: 10 cycles, pages leaked: $leaked"
run list xl-rs list
run dmesg xl-rs dmesg
echo "OXEN-DOMU-CHURN: done"
drain_console
poweroff -f
while :; do sleep 1000; done
