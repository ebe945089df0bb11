#!/bin/sh
# /init of the xl-info initramfs (scenario xl-info): dom0's control path end
# to end. Loads the hvctl driver (/lib/modules/hvctl.ko), runs xl-rs as root
# and as an unprivileged user, and checks that what xl-rs reports agrees with
# the hypervisor's own log, read back through `xl-rs dmesg`.
#
# Built into target/assets/initramfs-xl-info.cpio by xtask
# (xtask/src/assets/hvctl.rs: hvctl.ko for Debian's kernel, xl-rs for
# x86_64-unknown-linux-musl, oxen-runas from oxen-runas.c). Prints, on the
# console:
#
#   OXEN-XL: userspace up
#   OXEN-XL: hvctl loaded: /dev/hvctl crw------- 0 0   or   hvctl NOT loaded ...
#   kmsg| ...                       the kernel's lines about hvctl
#   OXEN-XL: $ COMMAND              then its output, each line prefixed
#   LABEL| ...                      (version|, info|, list|, list-l|, dmesg|,
#   OXEN-XL: LABEL exit N           nonroot|), then its exit status
#   OXEN-XL: hypervisor version agrees: X.Y.Z (log) = ... (xl-rs info)
#   OXEN-XL: nr_cpus agrees: N
#   OXEN-XL: tsc_khz agrees: N
#   OXEN-XL: dom0 memory agrees: N MiB
#   OXEN-XL: dmesg -c cleared the ring: N lines before, M after
#   OXEN-XL: non-root refused: yes
#   OXEN-XL: powering off
#
# A check that fails prints "... DISAGREES" or "... NO" instead (the scenario
# then misses its pattern). Then powers off with `poweroff -f`.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
# run and drain_console (tests/qemu/initramfs/common.sh); run's lines
# start with OXEN_TAG.
. /lib/oxen/common.sh
OXEN_TAG="OXEN-XL: "

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Debian's kernel has CONFIG_DEVTMPFS_MOUNT off: mount it ourselves.
mount -t devtmpfs devtmpfs /dev

echo "OXEN-XL: userspace up"

# The value of KEY in `xl-rs info` output (`key : value` lines).
info_value() {
    sed -n "s/^$1 *: *//p" /tmp/info.out | head -n 1
}

# The first x.y.z in the argument.
version_of() {
    echo "$1" | grep -o '[0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*' | head -n 1
}

if insmod /lib/modules/hvctl.ko 2> /tmp/insmod.out && [ -c /dev/hvctl ]; then
    echo "OXEN-XL: hvctl loaded: /dev/hvctl $(ls -ln /dev/hvctl | awk '{ print $1, $3, $4 }')"
else
    echo "OXEN-XL: hvctl NOT loaded: $(cat /tmp/insmod.out)"
fi
dmesg | grep 'hvctl' | sed 's/^/kmsg| /'

run version xl-rs --version
run info xl-rs info
run list xl-rs list
run list-l xl-rs list -l
run dmesg xl-rs dmesg
dmesg_lines=$(wc -l < /tmp/dmesg.out)

# What xl-rs reports against the hypervisor's own log lines.
log_version=$(version_of "$(grep -o 'Oxen hypervisor v[0-9.]*' /tmp/dmesg.out | head -n 1)")
info_version=$(version_of "$(info_value hypervisor_version)")
if [ -n "$log_version" ] && [ "$log_version" = "$info_version" ]; then
    echo "OXEN-XL: hypervisor version agrees: $log_version (log) = $(info_value hypervisor_version) (xl-rs info)"
else
    echo "OXEN-XL: hypervisor version DISAGREES: log '$log_version', xl-rs info '$(info_value hypervisor_version)'"
fi

log_cpus=$(sed -n 's/.*all \([0-9][0-9]*\) CPUs in VMX root operation.*/\1/p' /tmp/dmesg.out | head -n 1)
info_cpus=$(info_value nr_cpus)
if [ -n "$log_cpus" ] && [ "$log_cpus" = "$info_cpus" ]; then
    echo "OXEN-XL: nr_cpus agrees: $info_cpus"
else
    echo "OXEN-XL: nr_cpus DISAGREES: log '$log_cpus', xl-rs info '$info_cpus'"
fi

# "TSC: 64.001 MHz (measured ...)" in kHz; a rounding difference of 1 kHz
# is allowed.
log_tsc=$(sed -n 's/.*TSC: \([0-9.]*\) MHz.*/\1/p' /tmp/dmesg.out | head -n 1 |
    awk '{ if ($1 != "") printf "%d", $1 * 1000 + 0.5 }')
info_tsc=$(info_value tsc_khz)
if [ -n "$log_tsc" ] && [ -n "$info_tsc" ] &&
    [ $((info_tsc - log_tsc)) -ge -1 ] && [ $((info_tsc - log_tsc)) -le 1 ]; then
    echo "OXEN-XL: tsc_khz agrees: $info_tsc"
else
    echo "OXEN-XL: tsc_khz DISAGREES: log '$log_tsc', xl-rs info '$info_tsc'"
fi

# "dom0: 512 MiB of RAM in 3 ranges" against info's dom0_memory and the
# Mem column of Domain-0 in `xl-rs list`.
log_mem=$(sed -n 's/.*dom0: \([0-9][0-9]*\) MiB of RAM.*/\1/p' /tmp/dmesg.out | head -n 1)
info_mem=$(info_value dom0_memory)
list_mem=$(awk '$1 == "Domain-0" && $2 == "0" { print $3 }' /tmp/list.out)
if [ -n "$log_mem" ] && [ "$log_mem" = "$info_mem" ] && [ "$log_mem" = "$list_mem" ]; then
    echo "OXEN-XL: dom0 memory agrees: $log_mem MiB"
else
    echo "OXEN-XL: dom0 memory DISAGREES: log '$log_mem', xl-rs info '$info_mem', xl-rs list '$list_mem'"
fi

# dmesg -c reads, then clears: a read after it holds only newer lines.
xl-rs dmesg -c > /dev/null 2>&1
after=$(xl-rs dmesg 2>/dev/null | wc -l)
if [ "$dmesg_lines" -gt 0 ] && [ "$after" -lt "$dmesg_lines" ]; then
    echo "OXEN-XL: dmesg -c cleared the ring: $dmesg_lines lines before, $after after"
else
    echo "OXEN-XL: dmesg -c did NOT clear the ring: $dmesg_lines lines before, $after after"
fi

# An unprivileged user (uid 65534, "nobody") must get a clear refusal.
run nonroot oxen-runas 65534 /bin/xl-rs list
if [ $status -ne 0 ] &&
    grep -q 'permission denied opening /dev/hvctl: xl-rs must run as root' /tmp/nonroot.out; then
    echo "OXEN-XL: non-root refused: yes"
else
    echo "OXEN-XL: non-root refused: NO"
fi

# The console drains slowly and `poweroff -f` drops what is still queued:
# wait for it (drain_console, /lib/oxen/common.sh).
drain_console
echo "OXEN-XL: powering off"
drain_console
poweroff -f
# Not reached unless power-off failed; init must not exit (that panics).
echo "OXEN-XL: poweroff failed"
while :; do sleep 1000; done
