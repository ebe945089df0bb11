#!/bin/sh
# /init of the probing Linux guest's own initramfs (scenario
# domu-isolation): Debian's kernel runs as a domU and, as root, tries to
# reach what is not its own with /bin/oxen-domuprobe (oxen-domuprobe.c):
# physical memory outside its RAM through /dev/mem (its command line has
# iomem=relaxed; dom0 passes where its marker page lives and the marker
# itself as oxen.target= and oxen.marker=), MSRs through /dev/cpu/0/msr
# (msr.ko), ports with iopl(3), a VMCALL from user space, and the control
# hypercalls from its kernel (loading hvctl.ko, which negotiates the ABI
# with a VERSION hypercall). Then it shows it still works and powers off.
#
#   OXEN-DOMU-PROBE: userspace up
#   OXEN-DOMU-PROBE: ...                   the probe's own lines
#   OXEN-DOMU-PROBE: hvctl: insmod exit N  and kmsg| lines of the kernel
#   OXEN-DOMU-PROBE: domU alive after probing: uptime S
#   OXEN-DOMU-PROBE: done

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-DOMU-PROBE: userspace up"

target=
marker=
for word in $(cat /proc/cmdline); do
    case "$word" in
        oxen.target=*) target=${word#oxen.target=} ;;
        oxen.marker=*) marker=${word#oxen.marker=} ;;
    esac
done
echo "OXEN-DOMU-PROBE: dom0's marker page at ${target:-?}"

oxen-domuprobe mem -w ${target:+-t "$target"} ${marker:+-s "$marker"}
echo "OXEN-DOMU-PROBE: mem exit $?"

if insmod /lib/modules/msr.ko; then
    oxen-domuprobe msr
    echo "OXEN-DOMU-PROBE: msr exit $?"
else
    echo "OXEN-DOMU-PROBE: error: msr.ko did not load"
fi

oxen-domuprobe io
echo "OXEN-DOMU-PROBE: io exit $?"

oxen-domuprobe vmcall
echo "OXEN-DOMU-PROBE: vmcall exit $?"

# The control hypercalls from the guest's kernel: hvctl.ko asks for the
# ABI version at load time, and must be refused.
insmod /lib/modules/hvctl.ko > /tmp/hvctl.out 2>&1
status=$?
sed 's/^/insmod| /' /tmp/hvctl.out
dmesg | grep 'hvctl' | sed 's/^/kmsg| /'
echo "OXEN-DOMU-PROBE: hvctl: insmod exit $status"
if [ -e /dev/hvctl ]; then
    echo "OXEN-DOMU-PROBE: hvctl: /dev/hvctl EXISTS"
fi

# Still a working machine: time goes on, fork and a pipe work.
a=$(cut -d' ' -f1 /proc/uptime)
sleep 1
b=$(echo "$a" | cat)
c=$(cut -d' ' -f1 /proc/uptime)
echo "OXEN-DOMU-PROBE: domU alive after probing: uptime $b then $c"
echo "OXEN-DOMU-PROBE: done"
sleep 2
poweroff -f
while :; do sleep 1000; done
