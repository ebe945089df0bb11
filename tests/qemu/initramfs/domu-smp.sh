#!/bin/sh
# Scenario domu-smp (`oxen.test=smp` on dom0's command line; run by
# init-domu-linux.sh): Debian's kernel as a guest with four vCPUs on the
# two-CPU machine. The guest starts its application processors itself
# (INIT and start-up IPIs through its virtual APIC), must see four CPUs in
# /proc/cpuinfo, and runs a job pinned to each of them; `xl-rs vcpu-list`
# shows the four vCPUs with their CPU time growing; `xl-rs vcpu-pin` moves
# vCPU 3 to CPU 1 (and vcpu-list shows it there and only allowed there);
# destroy gives every page back. Prints:
#
#   OXEN-DOMU-SMP: userspace up / free pages before: N
#   OXEN-DOMU-SMP: guest sees 4 CPUs: yes|NO (...)
#   OXEN-DOMU-SMP: job on every CPU: yes|NO (...)
#   OXEN-DOMU-SMP: vcpu-list shows 4 vCPUs: yes|NO (N)
#   OXEN-DOMU-SMP: CPU time grew on every vCPU: yes|NO (...)
#   OXEN-DOMU-SMP: vcpu-pin moved vCPU 3 to CPU 1: yes|NO (...)
#   OXEN-DOMU-SMP: free pages after destroy: N (same|DIFFERENT)
#   OXEN-DOMU-SMP: done

. /lib/oxen/common.sh
OXEN_TAG="OXEN-DOMU-SMP: "
echo "OXEN-DOMU-SMP: userspace up"
insmod /lib/modules/hvctl.ko || echo "OXEN-DOMU-SMP: FAIL: hvctl did not load"
before=$(free_pages)
echo "OXEN-DOMU-SMP: free pages before: $before"

sed -e 's/^vcpus = .*/vcpus = 4/' -e 's/^name = .*/name = "smp"/' \
    /etc/oxen/linux.cfg > /etc/oxen/smp.cfg
run create xl-rs create -e /etc/oxen/smp.cfg
run boot xl-rs console --until 'OXEN-DOMU-LINUX: alive 1' --timeout 800 smp
seen=$(sed -n 's/.*OXEN-DOMU-LINUX: \/proc\/cpuinfo processors: \([0-9]*\).*/\1/p' /tmp/boot.out | head -n 1)
if [ "$seen" = 4 ]; then
    echo "OXEN-DOMU-SMP: guest sees 4 CPUs: yes"
else
    echo "OXEN-DOMU-SMP: guest sees 4 CPUs: NO (${seen:-none})"
fi

# vCPU times, one "VCPU TIME" line per vCPU of `smp` (xl-rs vcpu-list's
# columns: Name ID VCPU CPU State Time(s) Affinity).
times_of() {
    awk '$1 == "smp" { print $3, $6 }' "$1"
}
run vcpus1 xl-rs vcpu-list smp
printf 'smp-job\n' | xl-rs console --until 'OXEN-DOMU-LINUX: smp job: [0-9]+ of [0-9]+' --timeout 600 smp > /tmp/job.out 2>&1
sed 's/^/job| /' /tmp/job.out
if grep -q 'OXEN-DOMU-LINUX: smp job: 4 of 4 CPUs' /tmp/job.out; then
    echo "OXEN-DOMU-SMP: job on every CPU: yes"
else
    echo "OXEN-DOMU-SMP: job on every CPU: NO ($(grep -o 'smp job: .*' /tmp/job.out))"
fi
run vcpus2 xl-rs vcpu-list smp
rows=$(times_of /tmp/vcpus2.out | wc -l)
if [ "$rows" = 4 ]; then
    echo "OXEN-DOMU-SMP: vcpu-list shows 4 vCPUs: yes"
else
    echo "OXEN-DOMU-SMP: vcpu-list shows 4 vCPUs: NO ($rows)"
fi
times_of /tmp/vcpus1.out > /tmp/t1
times_of /tmp/vcpus2.out > /tmp/t2
grew=$(awk 'NR == FNR { t[$1] = $2; next } ($1 in t) && $2 > t[$1] { n++ } END { print n + 0 }' /tmp/t1 /tmp/t2)
if [ "$grew" = 4 ]; then
    echo "OXEN-DOMU-SMP: CPU time grew on every vCPU: yes"
else
    echo "OXEN-DOMU-SMP: CPU time grew on every vCPU: NO ($grew of 4: $(tr '\n' ' ' < /tmp/t1)-> $(tr '\n' ' ' < /tmp/t2))"
fi

# Pin vCPU 3 to CPU 1, make it run (another job), and look.
run pin xl-rs vcpu-pin smp 3 1
printf 'smp-job\n' | xl-rs console --until 'OXEN-DOMU-LINUX: smp job: [0-9]+ of [0-9]+' --timeout 600 smp > /tmp/job2.out 2>&1
run vcpus3 xl-rs vcpu-list smp
where=$(awk '$1 == "smp" && $3 == 3 { print $4, $7 }' /tmp/vcpus3.out)
if [ "$where" = "1 1" ]; then
    echo "OXEN-DOMU-SMP: vcpu-pin moved vCPU 3 to CPU 1: yes"
else
    echo "OXEN-DOMU-SMP: vcpu-pin moved vCPU 3 to CPU 1: NO (CPU and affinity: ${where:-none})"
fi
grep -q 'smp job: 4 of 4 CPUs' /tmp/job2.out || echo "OXEN-DOMU-SMP: FAIL: the job after vcpu-pin: $(grep -o 'smp job: .*' /tmp/job2.out)"

run destroy xl-rs destroy smp
after=$(free_pages_back_to "$before")
echo "OXEN-DOMU-SMP: free pages after destroy: $after ($(same "$before" "$after"))"
run dmesg xl-rs dmesg
echo "OXEN-DOMU-SMP: done"
drain_console
poweroff -f
while :; do sleep 1000; done
