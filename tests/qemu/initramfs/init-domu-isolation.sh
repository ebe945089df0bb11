#!/bin/sh
# /init of the domu-isolation initramfs (scenario domu-isolation): what a
# guest domain cannot do, driven from dom0 with xl-rs.
#
# 1. A guest that triple-faults (/etc/oxen/crash.cfg: tiny-pvh.elf with
#    extra = "triple-fault") is created with its monitor and on_crash =
#    "destroy": the domain disappears and its pages come back; created
#    again with on_crash=preserve: it stays, crashed (`c` in `xl-rs
#    list`), its console shows its last words, destroy gives the pages back.
#    The same guest in its "hypercalls" mode then issues every operation
#    of the hypercall ABI from its kernel: all must be refused.
# 2. dom0 writes a marker (OXEN-DOM0-SECRET-<random>) at the start of each
#    page of 64-page files of its own (ramfs, so in RAM) until one page
#    lies above 256 MiB (oxen-domuprobe where gives its physical address);
#    it creates the Linux guest of
#    /etc/oxen/probe.cfg with both on its command line; the guest
#    (init-domu-probe.sh) probes memory, MSRs, ports and hypercalls, and
#    its lines come through `xl-rs console` (printed as `probe| ...`).
#    dom0 then checks its marker, that it is alive, that the hypervisor
#    answers, destroys the guest and gets every page back.
#
# Lines (prefix OXEN-DOMU-ISOL:):
#
#   userspace up / free pages before: N
#   $ COMMAND / LABEL| output / LABEL exit N          (see `run`)
#   crash: on_crash=destroy: domain gone: yes|NO (after S s)
#   crash: free pages after on_crash=destroy: N (same|DIFFERENT)
#   crash: on_crash=preserve: state ----c-: yes|NO (state S)
#   crash: its console shows the triple fault coming: yes|NO
#   crash: free pages after destroy: N (same|DIFFERENT)
#   hypercalls from a guest kernel: R of N refused with NOT_PERMITTED: yes|NO
#   hypercalls: free pages after destroy: N (same|DIFFERENT)
#   marker at 0x... (TEXT, in file N of 64 pages)
#   probe: guest finished: yes|NO
#   dom0's marker intact: yes|NO
#   dom0 alive after the guests: yes|NO (...)
#   free pages after destroy: N (same|DIFFERENT)
#   done

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
. /lib/oxen/common.sh
OXEN_TAG="OXEN-DOMU-ISOL: "

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "OXEN-DOMU-ISOL: userspace up"
insmod /lib/modules/hvctl.ko || echo "OXEN-DOMU-ISOL: FAIL: hvctl did not load"

before=$(free_pages)
echo "OXEN-DOMU-ISOL: free pages before: $before"

# --- 1. A guest that triple-faults, on_crash = "destroy", then "preserve".
run crash1 xl-rs create /etc/oxen/crash.cfg
gone=NO
for i in $(seq 1 120); do
    if [ -z "$(state_of crashy)" ]; then
        gone=yes
        break
    fi
    sleep 0.5
done
echo "OXEN-DOMU-ISOL: crash: on_crash=destroy: domain gone: $gone (after $((i / 2)) s)"
for log in /var/log/xl-rs/domain-*.log; do
    [ -e "$log" ] && sed "s/^/monitor| /" "$log"
done
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-ISOL: crash: free pages after on_crash=destroy: $after ($(same "$before" "$after"))"

run crash2 xl-rs create /etc/oxen/crash.cfg 'on_crash="preserve"'
state=
for _ in $(seq 1 120); do
    state=$(state_of crashy)
    case "$state" in *c*) break ;; esac
    sleep 0.5
done
run list1 xl-rs list
case "$state" in
    ----c-) echo "OXEN-DOMU-ISOL: crash: on_crash=preserve: state ----c-: yes" ;;
    *) echo "OXEN-DOMU-ISOL: crash: on_crash=preserve: state ----c-: NO (state $state)" ;;
esac
run console1 xl-rs console --timeout 5 crashy
if grep -q 'OXEN-DOMU: triple-faulting now' /tmp/console1.out; then
    echo "OXEN-DOMU-ISOL: crash: its console shows the triple fault coming: yes"
else
    echo "OXEN-DOMU-ISOL: crash: its console shows the triple fault coming: NO"
fi
run destroy1 xl-rs destroy crashy
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-ISOL: crash: free pages after destroy: $after ($(same "$before" "$after"))"

# --- The control hypercalls from a guest's kernel: the tiny guest in its
# "hypercalls" mode issues every operation of the ABI with VMCALL at CPL 0
# (dom0 as the target where one takes a domain) and prints the statuses.
run hcall xl-rs create -e /etc/oxen/crash.cfg 'name="hcall"' 'extra="hypercalls console=ttyS0"'
run hcalls xl-rs console --until 'OXEN-DOMU: hypercalls done' --timeout 60 hcall
calls=$(grep -c 'OXEN-DOMU: hypercall 0000' /tmp/hcalls.out)
refused=$(grep -c 'OXEN-DOMU: hypercall 0000.... -> ffffffff' /tmp/hcalls.out)
if [ "$calls" -gt 0 ] && [ "$calls" = "$refused" ]; then
    echo "OXEN-DOMU-ISOL: hypercalls from a guest kernel: $refused of $calls refused with NOT_PERMITTED: yes"
else
    echo "OXEN-DOMU-ISOL: hypercalls from a guest kernel: $refused of $calls refused with NOT_PERMITTED: NO"
fi
run destroy3 xl-rs destroy hcall
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-ISOL: hypercalls: free pages after destroy: $after ($(same "$before" "$after"))"

# --- 2. The probing Linux guest.
# Files of 64 pages, each page starting with the marker (the rest dots),
# until one page lies above 256 MiB: below it, the same numbers are the
# guest's own RAM as guest-physical addresses.
secret="OXEN-DOM0-SECRET-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
{ printf '%s' "$secret"; head -c $((4096 - ${#secret})) /dev/zero | tr '\0' .; } > /tmp/marker1
for n in 2 4 8 16 32 64; do
    cat /tmp/marker$((n / 2)) /tmp/marker$((n / 2)) > /tmp/marker$n
done
where=
files=0
while [ -z "$where" ] && [ $files -lt 64 ]; do
    files=$((files + 1))
    cp /tmp/marker64 /tmp/secret.$files
    where=$(oxen-domuprobe where /tmp/secret.$files 0x10000000 2> /dev/null)
done
echo "OXEN-DOMU-ISOL: marker at ${where:-?} ($secret, in file $files of 64 pages)"

run create xl-rs create -e /etc/oxen/probe.cfg "extra+=\" oxen.target=$where oxen.marker=$secret\""
xl-rs console --until 'OXEN-DOMU-PROBE: done' --timeout 700 probe > /tmp/probe.out 2>&1
echo "OXEN-DOMU-ISOL: probe console exit $?"
grep -E 'OXEN-DOMU-PROBE|^(kmsg|insmod)\|' /tmp/probe.out | tr -d '\r' | sed 's/^/probe| /'
if grep -q 'OXEN-DOMU-PROBE: done' /tmp/probe.out; then
    echo "OXEN-DOMU-ISOL: probe: guest finished: yes"
else
    echo "OXEN-DOMU-ISOL: probe: guest finished: NO"
    tail -n 30 /tmp/probe.out | sed 's/^/probe-tail| /'
fi
state=
for _ in $(seq 1 60); do
    state=$(state_of probe)
    case "$state" in *s*) break ;; esac
    sleep 0.5
done
run list2 xl-rs list

intact=yes
for i in $(seq 1 $files); do
    cmp -s /tmp/secret.$i /tmp/marker64 || intact=NO
done
if [ $intact = yes ] && [ -n "$where" ] && [ "$(oxen-domuprobe where /tmp/secret.$files 0x10000000)" = "$where" ]; then
    echo "OXEN-DOMU-ISOL: dom0's marker intact: yes ($files file(s) of 64 pages, the page at $where unmoved)"
else
    echo "OXEN-DOMU-ISOL: dom0's marker intact: NO (files intact: $intact, page at ${where:-?})"
fi
t1=$(cut -d' ' -f1 /proc/uptime)
echo ping | cat > /tmp/pipe.out
sleep 1
t2=$(cut -d' ' -f1 /proc/uptime)
if [ "$(cat /tmp/pipe.out)" = ping ] && [ "$t1" != "$t2" ]; then
    echo "OXEN-DOMU-ISOL: dom0 alive after the guests: yes (uptime $t1 then $t2)"
else
    echo "OXEN-DOMU-ISOL: dom0 alive after the guests: NO"
fi
run destroy2 xl-rs destroy probe
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-ISOL: free pages after destroy: $after ($(same "$before" "$after"))"
run info xl-rs info
xl-rs dmesg | grep -E 'triple fault|unbacked|shut down|destroyed|refused' | sed 's/^/dmesg| /'
echo "OXEN-DOMU-ISOL: done"
drain_console
poweroff -f
while :; do sleep 1000; done
