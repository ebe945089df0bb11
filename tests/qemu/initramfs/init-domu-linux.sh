#!/bin/sh
# /init of the domu-linux initramfs (scenario domu-lifecycle): Debian's own
# kernel as a guest domain, driven from dom0 with xl-rs
# (/etc/oxen/linux.cfg: /guests/vmlinux, 256 MiB, one vCPU, its own
# initramfs /guests/domu-initramfs.cpio, whose /init is
# init-domu-guest.sh). Prints, on the console:
#
#   OXEN-DOMU-TEST: userspace up / free pages before: N
#   OXEN-DOMU-TEST: $ COMMAND / LABEL| output / LABEL exit N   (see run)
#   OXEN-DOMU-TEST: guest booted: yes|NO
#   OXEN-DOMU-TEST: paused: no output for 3 s: yes|NO (N bytes)
#   OXEN-DOMU-TEST: unpaused: progress again: yes|NO
#   OXEN-DOMU-TEST: console input reaches the guest: yes|NO
#   OXEN-DOMU-TEST: shutdown -w: guest powered itself off: yes|NO (state S)
#   OXEN-DOMU-TEST: free pages after destroy: N (same|DIFFERENT)
#   OXEN-DOMU-TEST: reboot -w: guest went down for a reboot: yes|NO (state S)
#   OXEN-DOMU-TEST: created again and destroyed: free pages N (same|DIFFERENT)
#   OXEN-DOMU-TEST: done

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /lib/oxen/common.sh
OXEN_TAG="OXEN-DOMU-TEST: "

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The same image serves scenarios domu-churn, domu-smp and sched-fair.
case " $(cat /proc/cmdline) " in
    *" oxen.test=churn "*) exec /bin/sh /lib/oxen/domu-churn.sh ;;
    *" oxen.test=smp "*) exec /bin/sh /lib/oxen/domu-smp.sh ;;
    *" oxen.test=sched "*) exec /bin/sh /lib/oxen/sched-fair.sh ;;
esac
echo "OXEN-DOMU-TEST: userspace up"
insmod /lib/modules/hvctl.ko || echo "OXEN-DOMU-TEST: FAIL: hvctl did not load"

# free_pages, free_pages_back_to, same, state_of: common.sh.
before=$(free_pages)
echo "OXEN-DOMU-TEST: free pages before: $before"

run create xl-rs create -e /etc/oxen/linux.cfg
run list xl-rs list
run boot xl-rs console --until 'OXEN-DOMU-LINUX: alive 2' --timeout 600 linux
if grep -q 'OXEN-DOMU-LINUX: userspace up' /tmp/boot.out; then
    echo "OXEN-DOMU-TEST: guest booted: yes"
else
    echo "OXEN-DOMU-TEST: guest booted: NO"
fi
run list1 xl-rs list

run pause xl-rs pause linux
xl-rs console --timeout 1 linux > /dev/null 2>&1
sleep 3
xl-rs console --timeout 1 linux > /tmp/paused.out 2>&1
paused_bytes=$(wc -c < /tmp/paused.out)
if [ "$paused_bytes" -eq 0 ]; then
    echo "OXEN-DOMU-TEST: paused: no output for 3 s: yes"
else
    echo "OXEN-DOMU-TEST: paused: no output for 3 s: NO ($paused_bytes bytes)"
fi
run unpause xl-rs unpause linux
run console2 xl-rs console --until 'OXEN-DOMU-LINUX: alive [0-9]+' --timeout 60 linux
if grep -q 'OXEN-DOMU-LINUX: alive' /tmp/console2.out; then
    echo "OXEN-DOMU-TEST: unpaused: progress again: yes"
else
    echo "OXEN-DOMU-TEST: unpaused: progress again: NO"
fi

# A line: the guest's console is a tty in canonical mode.
printf 'hello-domu\n' | xl-rs console --until 'OXEN-DOMU-LINUX: read hello-domu' --timeout 60 linux > /tmp/input.out 2>&1
if grep -q 'OXEN-DOMU-LINUX: read hello-domu' /tmp/input.out; then
    echo "OXEN-DOMU-TEST: console input reaches the guest: yes"
else
    echo "OXEN-DOMU-TEST: console input reaches the guest: NO"
fi

# The power button: the guest's own power-off ends it.
run shutdown timeout 120 xl-rs shutdown -w linux
# Its last words: the console of a domain that is down gives what it holds.
run after_shutdown xl-rs console --timeout 5 linux
run list2 xl-rs list
state=$(state_of linux)
if grep -q 'has shut down (poweroff)' /tmp/shutdown.out; then
    echo "OXEN-DOMU-TEST: shutdown -w: guest powered itself off: yes (state $state)"
else
    echo "OXEN-DOMU-TEST: shutdown -w: guest powered itself off: NO (state $state)"
fi
run destroy xl-rs destroy linux
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-TEST: free pages after destroy: $after ($(same "$before" "$after"))"

# Again, asked to reboot (no monitor with -e, so it stays down with the
# reason), then destroyed.
run create2 xl-rs create -e /etc/oxen/linux.cfg
run boot2 xl-rs console --until 'OXEN-DOMU-LINUX: alive 1' --timeout 600 linux
run reboot timeout 120 xl-rs reboot -w linux
state=$(state_of linux)
if grep -q 'has shut down (reboot)' /tmp/reboot.out; then
    echo "OXEN-DOMU-TEST: reboot -w: guest went down for a reboot: yes (state $state)"
else
    echo "OXEN-DOMU-TEST: reboot -w: guest went down for a reboot: NO (state $state)"
fi
run destroy2 xl-rs destroy linux
again=$(free_pages_back_to "$before")
echo "OXEN-DOMU-TEST: created again and destroyed: free pages $again ($(same "$before" "$again"))"

run dmesg xl-rs dmesg
echo "OXEN-DOMU-TEST: done"
drain_console
poweroff -f
while :; do sleep 1000; done
