#!/bin/sh
# /init of the notify initramfs (scenario notify): the hypervisor's
# notification device and poll() on /dev/hvctl, end to end. Prints:
#
#   OXEN-NOTIFY: userspace up
#   pci| DEVICE vendor V device D class C      (every PCI function Linux found)
#   OXEN-NOTIFY: notification device: DEVICE (vendor V device D class C) | NOT found
#   kmsg| ...                                  (the kernel's hvctl lines)
#   OXEN-NOTIFY: driver of DEVICE: NAME
#   irq| ...                                   (hvctl's line of /proc/interrupts)
#   OXEN-NOTIFY: hvctl interrupts before: N
#   OXEN-NOTIFY: quiet wait timed out: yes|NO
#   OXEN-NOTIFY: create woke the waiter: yes|NO (events: ...)
#   OXEN-NOTIFY: destroy woke the waiter: yes|NO (events: ...)
#   OXEN-NOTIFY: monitor sleeps in: WCHAN
#   OXEN-NOTIFY: guest power-off woke the waiter: yes|NO (events: ...)
#   OXEN-NOTIFY: monitor saw the shutdown: yes|NO
#   OXEN-NOTIFY: hvctl interrupts after: M (went up: yes|NO)
#   OXEN-NOTIFY: done
#
# with the commands' output as LABEL| lines (see run in common.sh), then
# powers off with `poweroff -f`.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /lib/oxen/common.sh
OXEN_TAG="OXEN-NOTIFY: "

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /var/log
echo "OXEN-NOTIFY: userspace up"

# What Linux enumerated, before any driver of ours: the sysfs view lspci
# reads.
found=
for dev in /sys/bus/pci/devices/*; do
    [ -e "$dev/vendor" ] || continue
    name=${dev##*/}
    vendor=$(cat "$dev/vendor")
    device=$(cat "$dev/device")
    class=$(cat "$dev/class")
    echo "pci| $name vendor $vendor device $device class $class"
    # The IDs of dom0-abi's NOTIFY_PCI_VENDOR_ID / NOTIFY_PCI_DEVICE_ID.
    if [ "$vendor" = 0x4f58 ] && [ "$device" = 0x0001 ]; then
        found=$name
        found_desc="vendor $vendor device $device class $class"
    fi
done
if [ -n "$found" ]; then
    echo "OXEN-NOTIFY: notification device: $found ($found_desc)"
else
    echo "OXEN-NOTIFY: notification device: NOT found"
fi

if insmod /lib/modules/hvctl.ko; then
    echo "OXEN-NOTIFY: hvctl loaded"
else
    echo "OXEN-NOTIFY: hvctl NOT loaded"
fi
dmesg | grep 'hvctl' | sed 's/^/kmsg| /'
driver=none
if [ -n "$found" ] && [ -e "/sys/bus/pci/devices/$found/driver" ]; then
    driver=$(ls -l "/sys/bus/pci/devices/$found/driver" | sed "s%.*/%%")
fi
echo "OXEN-NOTIFY: driver of ${found:-the device}: $driver"

# hvctl's interrupt: its /proc/interrupts line and the sum of its per-CPU
# counts.
irq_count() {
    awk '/hvctl/ { n = 0; for (i = 2; i <= NF; i++) { if ($i ~ /^[0-9]+$/) n += $i; else break } print n }' /proc/interrupts | head -n 1
}
grep hvctl /proc/interrupts | sed 's/^/irq| /'
before=$(irq_count)
echo "OXEN-NOTIFY: hvctl interrupts before: ${before:-none}"

# Nothing happens: the wait times out (exit status 1).
run quiet xl-rs wait-event --timeout 3
if [ "$status" -eq 1 ] && grep -q 'no hypervisor event within 3 s' /tmp/quiet.out; then
    echo "OXEN-NOTIFY: quiet wait timed out: yes"
else
    echo "OXEN-NOTIFY: quiet wait timed out: NO (exit $status)"
fi

# start_waiter LABEL: xl-rs wait-event in the background, returned once it
# has /dev/hvctl open (events count from then on).
start_waiter() {
    xl-rs wait-event --timeout 120 > "/tmp/$1.out" 2>&1 &
    waiter=$!
    for _ in $(seq 1 100); do
        ls -l "/proc/$waiter/fd" 2>/dev/null | grep -q hvctl && return
        sleep 0.1
    done
    echo "OXEN-NOTIFY: waiter $1 never opened /dev/hvctl"
}

# finish_waiter LABEL WHAT EVENT: waits for it and says whether EVENT
# woke it.
finish_waiter() {
    wait "$waiter"
    st=$?
    sed "s/^/$1| /" "/tmp/$1.out"
    events=$(sed -n 's/^events *: //p' "/tmp/$1.out")
    case " $events " in
        *" $3 "*) echo "OXEN-NOTIFY: $2 woke the waiter: yes (events: $events; exit $st)" ;;
        *) echo "OXEN-NOTIFY: $2 woke the waiter: NO (events: $events; exit $st)" ;;
    esac
}

start_waiter ev-create
run create xl-rs create -p -e /etc/oxen/tiny.cfg
finish_waiter ev-create create domain-created

start_waiter ev-destroy
run destroy xl-rs destroy tiny
finish_waiter ev-destroy destroy domain-destroyed

# The guest powers itself off; the background monitor xl-rs create leaves
# (on_poweroff = "preserve") sleeps in poll() until then.
run create2 xl-rs create /etc/oxen/tiny.cfg
run console xl-rs console --until 'OXEN-DOMU: tick 1' --timeout 120 tiny
monitor=$(ps | awk '/_monitor/ && !/awk/ { print $1; exit }')
sleep 1
echo "OXEN-NOTIFY: monitor sleeps in: $(cat "/proc/$monitor/wchan" 2>/dev/null || echo unknown)"
start_waiter ev-shutdown
printf q | xl-rs console --until 'OXEN-DOMU: powering off' --timeout 60 tiny > /tmp/quit.out 2>&1
finish_waiter ev-shutdown "guest power-off" domain-shutdown
saw=NO
for _ in $(seq 1 20); do
    if grep -q 'shut down' /var/log/xl-rs/domain-*.log 2>/dev/null; then
        saw=yes
        break
    fi
    sleep 0.5
done
sed 's/^/monitor| /' /var/log/xl-rs/domain-*.log 2>/dev/null
echo "OXEN-NOTIFY: monitor saw the shutdown: $saw"
run destroy2 xl-rs destroy tiny

grep hvctl /proc/interrupts | sed 's/^/irq| /'
after=$(irq_count)
if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; then
    echo "OXEN-NOTIFY: hvctl interrupts after: $after (went up: yes)"
else
    echo "OXEN-NOTIFY: hvctl interrupts after: ${after:-none} (went up: NO)"
fi

echo "OXEN-NOTIFY: done"
drain_console
poweroff -f
