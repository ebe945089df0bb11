#!/bin/sh
# /init of the dom0-isolation initramfs (scenario dom0-isolation).
#
# Built into target/assets/initramfs-*.cpio by xtask (xtask/src/assets/) with
# Debian's busybox-static.
#
# The kernel command line names the physical ranges to probe:
#
#   oxen.probe=START-END[,START-END...]    hexadecimal (0x optional), END exclusive
#
# e.g. `oxen.probe=0x100000-0x300000,0x3f000000-0x3f800000`. For each range,
# in order, it reads the whole range through /dev/mem with dd, looking for the
# string OXEN-CANARY- that the hypervisor keeps in its own memory and in the
# free pool; then it writes a 32-bit pattern at the first word of the range
# and at one 32 bytes before its end through /dev/mem (busybox devmem, i.e.
# mmap) and reads them back.
# Lines printed (the range as given on the command line):
#
#   OXEN-ISOLATION: userspace up
#   OXEN-ISOLATION: read RANGE: canary absent | CANARY SEEN (N hits)
#   OXEN-ISOLATION: info RANGE: T of W bytes read, N not 0xff
#   OXEN-ISOLATION: read RANGE: unreadable (ERROR)          nothing could be read
#   OXEN-ISOLATION: write RANGE: no effect | WRITE STUCK
#   OXEN-ISOLATION: write RANGE: refused (ERROR)             the dom0 kernel refused
#   OXEN-ISOLATION: error: ...                               bad or missing oxen.probe
#   OXEN-ISOLATION: done
#
# "unreadable" and "refused" prove nothing about the hypervisor: a scenario
# should list them among its fail patterns. What dom0's kernel lets through:
#   - CONFIG_STRICT_DEVMEM=y (Debian): System RAM above 1 MiB is refused, so
#     the ranges must be outside dom0's RAM, i.e. reserved (or absent) in the
#     e820 map the hypervisor gives dom0; reserved ranges are allowed.
#   - CONFIG_IO_STRICT_DEVMEM=y (Debian): ranges a driver claimed are refused
#     too; pass `iomem=relaxed` on dom0's command line to lift that.
#   - read() of /dev/mem (dd) stops at the end of dom0's highest RAM
#     ("Bad address" beyond it); mmap (devmem) has no such limit. Keep read
#     probes below the top of dom0's RAM, or expect a short read.
# So the scenario's dom0 command line is:
#   console=ttyS0 iomem=relaxed oxen.probe=<hypervisor range>,<free pool range>
# A WRITE STUCK is undone (the old value written back) after it is seen.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-ISOLATION: userspace up"

page=4096
canary=OXEN-CANARY-

# The first line of a file, or a default.
first_line() {
    line=
    [ -s "$1" ] && read -r line < "$1"
    echo "${line:-$2}"
}

# The error message in dd's stderr (what is not its record counts).
dd_error() {
    grep -v -e 'records in' -e 'records out' -e 'bytes.*copied' "$1" | head -n 1
}

# probe_read RANGE START END: scan [START, END) for the canary.
probe_read() {
    range=$1 start=$2 end=$3
    first=$((start / page))
    count=$(((end + page - 1) / page - first))
    want=$((count * page))
    rm -f /tmp/all /tmp/nonff
    mkfifo /tmp/all /tmp/nonff
    wc -c < /tmp/all > /tmp/total &
    counter1=$!
    tr -d '\377' < /tmp/nonff | wc -c > /tmp/not_ff &
    counter2=$!
    hits=$(dd if=/dev/mem bs=$page skip=$first count=$count 2> /tmp/dd.err |
        tee /tmp/all /tmp/nonff | strings -n ${#canary} | grep -c "$canary")
    wait $counter1 $counter2
    total=$(first_line /tmp/total 0)
    not_ff=$(first_line /tmp/not_ff 0)
    error=$(dd_error /tmp/dd.err)
    if [ "$total" -eq 0 ]; then
        echo "OXEN-ISOLATION: read $range: unreadable (${error:-no data})"
        return
    fi
    if [ "$hits" -gt 0 ]; then
        echo "OXEN-ISOLATION: read $range: CANARY SEEN ($hits hits)"
    else
        echo "OXEN-ISOLATION: read $range: canary absent"
    fi
    echo "OXEN-ISOLATION: info $range: $total of $want bytes read, $not_ff not 0xff${error:+ ($error)}"
}

# probe_write RANGE START END: write a word at the first 4-byte aligned word
# of [START, END) and at one 32 bytes before its end, and read them back.
# (busybox devmem maps a second page when the offset in the page plus the
# access width *in bits* passes 4096, so the very last word of a range would
# also map the page after it.)
probe_write() {
    range=$1 start=$2 end=$3
    verdict="no effect"
    first_word=$(((start + 3) & ~3))
    last_word=$(((end - 32) & ~3))
    [ "$last_word" -gt "$first_word" ] || last_word=
    for addr in $first_word $last_word; do
        where=$(printf '0x%x' "$addr")
        if ! before=$(devmem "$where" 32 2> /tmp/devmem.err); then
            echo "OXEN-ISOLATION: write $range: refused (read $where: $(first_line /tmp/devmem.err failed))"
            return
        fi
        pattern=0x4e45584f # "OXEN" in memory order
        [ $((before)) -eq $((pattern)) ] && pattern=0x0ce0ba11
        if ! devmem "$where" 32 "$pattern" > /dev/null 2> /tmp/devmem.err; then
            echo "OXEN-ISOLATION: write $range: refused (write $where: $(first_line /tmp/devmem.err failed))"
            return
        fi
        after=$(devmem "$where" 32 2> /dev/null)
        if [ $((after)) -eq $((pattern)) ]; then
            verdict="WRITE STUCK"
            echo "OXEN-ISOLATION: info $range: $where was $before, reads $after after writing $pattern"
            devmem "$where" 32 "$before" > /dev/null 2>&1
        fi
    done
    echo "OXEN-ISOLATION: write $range: $verdict"
}

probes=
for word in $(cat /proc/cmdline); do
    case $word in
        oxen.probe=*) probes=${word#oxen.probe=} ;;
    esac
done

if [ -z "$probes" ]; then
    echo "OXEN-ISOLATION: error: no oxen.probe=START-END,... on the kernel command line"
fi

old_ifs=$IFS
IFS=,
set -- $probes
IFS=$old_ifs
for range in "$@"; do
    # Validate before any arithmetic: a bad expression would end the shell
    # (and with it init: a kernel panic).
    start_hex=${range%%-*}
    start_hex=${start_hex#0[xX]}
    end_hex=${range#*-}
    end_hex=${end_hex#0[xX]}
    case "$range" in *-*) ;; *) start_hex= ;; esac
    case "$start_hex,$end_hex" in
        ,* | *, | *[!0-9a-fA-F,]*)
            echo "OXEN-ISOLATION: error: bad range '$range' (want START-END in hex)"
            continue
            ;;
    esac
    start=$((0x$start_hex))
    end=$((0x$end_hex))
    if [ "$end" -le "$start" ]; then
        echo "OXEN-ISOLATION: error: empty range '$range' (END is exclusive)"
        continue
    fi
    probe_read "$range" "$start" "$end"
    probe_write "$range" "$start" "$end"
done

echo "OXEN-ISOLATION: done"
sleep 1
poweroff -f
echo "OXEN-ISOLATION: poweroff failed"
while :; do sleep 1000; done
