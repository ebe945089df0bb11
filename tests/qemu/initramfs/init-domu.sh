#!/bin/sh
# /init of the domu initramfs (scenario domu-basic): a guest domain's
# lifecycle driven from dom0 with xl-rs, on the smallest guest there is
# (/guests/tiny-pvh.elf, tests/qemu/guests/tiny-pvh.S: prints a hello line,
# then "tick N" lines, and powers itself off when it reads 'q' on its
# console). Prints, on the console:
#
#   OXEN-DOMU-TEST: userspace up
#   OXEN-DOMU-TEST: free pages before: N
#   OXEN-DOMU-TEST: $ COMMAND / LABEL| output / LABEL exit N   (see run)
#   OXEN-DOMU-TEST: console shows the guest: yes|NO
#   OXEN-DOMU-TEST: paused: no output for 3 s: yes|NO (N bytes)
#   OXEN-DOMU-TEST: unpaused: progress again: yes|NO
#   OXEN-DOMU-TEST: guest powered itself off: yes|NO (state S)
#   OXEN-DOMU-TEST: free pages after destroy: N (same|DIFFERENT)
#   OXEN-DOMU-TEST: churn: 10 create/destroy cycles, free pages N (same|DIFFERENT)
#   OXEN-DOMU-TEST: done
#
# then powers off with `poweroff -f`.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /lib/oxen/common.sh
OXEN_TAG="OXEN-DOMU-TEST: "

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-DOMU-TEST: userspace up"

if ! insmod /lib/modules/hvctl.ko; then
    echo "OXEN-DOMU-TEST: FAIL: hvctl did not load"
fi

# free_pages, free_pages_back_to, same, state_of: common.sh.
before=$(free_pages)
echo "OXEN-DOMU-TEST: free pages before: $before"

run create xl-rs create /etc/oxen/tiny.cfg
run list xl-rs list
run console1 xl-rs console --until 'OXEN-DOMU: tick 2' --timeout 120 tiny
if grep -q 'OXEN-DOMU: hello from domain' /tmp/console1.out && grep -q 'OXEN-DOMU: tick 2' /tmp/console1.out; then
    echo "OXEN-DOMU-TEST: console shows the guest: yes"
else
    echo "OXEN-DOMU-TEST: console shows the guest: NO"
fi

run pause xl-rs pause tiny
# What was printed before the pause went out; now nothing may come.
xl-rs console --timeout 1 tiny > /dev/null 2>&1
sleep 3
xl-rs console --timeout 1 tiny > /tmp/paused.out 2>&1
paused_bytes=$(wc -c < /tmp/paused.out)
if [ "$paused_bytes" -eq 0 ]; then
    echo "OXEN-DOMU-TEST: paused: no output for 3 s: yes"
else
    echo "OXEN-DOMU-TEST: paused: no output for 3 s: NO ($paused_bytes bytes)"
fi

run unpause xl-rs unpause tiny
run console2 xl-rs console --until 'OXEN-DOMU: tick [0-9]+' --timeout 120 tiny
if grep -q 'OXEN-DOMU: tick' /tmp/console2.out; then
    echo "OXEN-DOMU-TEST: unpaused: progress again: yes"
else
    echo "OXEN-DOMU-TEST: unpaused: progress again: NO"
fi

# The guest's own power-off: it reads 'q' from its console.
printf q | xl-rs console --until 'OXEN-DOMU: powering off' --timeout 60 tiny > /tmp/quit.out 2>&1
state=
for _ in $(seq 1 40); do
    state=$(state_of tiny)
    case "$state" in *s*) break ;; esac
    sleep 0.5
done
run list2 xl-rs list
case "$state" in
    *s*) echo "OXEN-DOMU-TEST: guest powered itself off: yes (state $state)" ;;
    *) echo "OXEN-DOMU-TEST: guest powered itself off: NO (state $state)" ;;
esac

run destroy xl-rs destroy tiny
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-TEST: free pages after destroy: $after ($(same "$before" "$after"))"

# Churn: create (running) and destroy, ten times.
for i in $(seq 1 10); do
    xl-rs create /etc/oxen/tiny.cfg > /tmp/churn.out 2>&1 || { echo "churn| create $i failed:"; cat /tmp/churn.out; }
    xl-rs destroy tiny > /tmp/churn.out 2>&1 || { echo "churn| destroy $i failed:"; cat /tmp/churn.out; }
done
churned=$(free_pages_back_to "$before")
echo "OXEN-DOMU-TEST: churn: 10 create/destroy cycles, free pages $churned ($(same "$before" "$churned"))"

run dmesg xl-rs dmesg
echo "OXEN-DOMU-TEST: done"
drain_console
poweroff -f
echo "OXEN-DOMU-TEST: poweroff failed"
while :; do sleep 1000; done
