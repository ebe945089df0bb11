#!/bin/sh
# Scenario sched-fair (`oxen.test=sched` on dom0's command line; run by
# init-domu-linux.sh): two CPU-bound guests (the tiny guest spins between its
# console ticks) pinned to CPU 1 with weights 256 and 512 must share it
# 1 : 2 (2.0 +- 0.2) over 10 emulated seconds; then `cap` 25 on the
# heavier one must hold it at 25 % +- 5 % of a CPU over 10 s. Meanwhile a
# heartbeat in dom0 on CPU 1 (20 sleeps of 0.1 s) must keep its period
# within 2x of the idle machine's. Prints:
#
#   OXEN-SCHED: userspace up / free pages before: N
#   OXEN-SCHED: idle heartbeat: N ms
#   OXEN-SCHED: weights 512:256 share ratio R: ok|OFF (A s, B s)
#   OXEN-SCHED: busy heartbeat: N ms: ok|OFF
#   OXEN-SCHED: cap 25: P % of a CPU: ok|OFF (T s in S s)
#   OXEN-SCHED: capped heartbeat: N ms: ok|OFF
#   OXEN-SCHED: free pages after destroy: N (same|DIFFERENT)
#   OXEN-SCHED: done

. /lib/oxen/common.sh
OXEN_TAG="OXEN-SCHED: "
echo "OXEN-SCHED: userspace up"
insmod /lib/modules/hvctl.ko || echo "OXEN-SCHED: FAIL: hvctl did not load"
before=$(free_pages)
echo "OXEN-SCHED: free pages before: $before"

# Emulated seconds since boot, to the hundredth.
now() { read -r up _ < /proc/uptime; echo "$up"; }

# The heartbeat: 20 sleeps of 0.1 s on dom0's vCPU 1 (pinned to CPU 1, the
# CPU the guests contend for); prints the time they took, in ms.
heartbeat() {
    taskset -c 1 sh -c 'read -r a _ < /proc/uptime; for i in $(seq 1 20); do sleep 0.1; done; read -r b _ < /proc/uptime; echo "$a $b"' |
        awk '{ printf "%d\n", ($2 - $1) * 1000 }'
}
idle=$(heartbeat)
echo "OXEN-SCHED: idle heartbeat: $idle ms"

for g in a:256 b:512; do
    name=fair-${g%%:*}
    sed -e "s/^name = .*/name = \"$name\"/" /etc/oxen/tiny.cfg > "/etc/oxen/$name.cfg"
    printf 'weight = %s\ncpus = "1"\n' "${g##*:}" >> "/etc/oxen/$name.cfg"
    run "create-$name" xl-rs create "/etc/oxen/$name.cfg"
done
run sched xl-rs sched-credit2

# A guest's CPU time (s) from xl-rs vcpu-list (column 6 of its vCPU 0 row).
cpu_time() {
    xl-rs vcpu-list "$1" | awk -v n="$1" '$1 == n && $3 == 0 { print $6 }'
}
within() { # VALUE LOW HIGH -> ok|OFF
    awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { print (v >= lo && v <= hi) ? "ok" : "OFF" }'
}

sleep 2
a0=$(cpu_time fair-a); b0=$(cpu_time fair-b); t0=$(now)
heartbeat > /tmp/hb1 &
sleep 10
wait
a1=$(cpu_time fair-a); b1=$(cpu_time fair-b); t1=$(now)
run vcpus1 xl-rs vcpu-list
da=$(awk -v x="$a0" -v y="$a1" 'BEGIN { printf "%.2f", y - x }')
db=$(awk -v x="$b0" -v y="$b1" 'BEGIN { printf "%.2f", y - x }')
ratio=$(awk -v a="$da" -v b="$db" 'BEGIN { printf "%.2f", (a > 0) ? b / a : 0 }')
echo "OXEN-SCHED: weights 512:256 share ratio $ratio: $(within "$ratio" 1.8 2.2) ($da s, $db s in $(awk -v x="$t0" -v y="$t1" 'BEGIN { printf "%.2f", y - x }') s)"
busy=$(cat /tmp/hb1)
echo "OXEN-SCHED: busy heartbeat: $busy ms: $(within "$busy" 0 $((idle * 2)))"

run cap xl-rs sched-credit2 -d fair-b -c 25
sleep 1
b0=$(cpu_time fair-b); t0=$(now)
heartbeat > /tmp/hb2 &
sleep 10
wait
b1=$(cpu_time fair-b); t1=$(now)
run vcpus2 xl-rs vcpu-list
share=$(awk -v x="$b0" -v y="$b1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", (y - x) * 100 / (e - s) }')
echo "OXEN-SCHED: cap 25: $share % of a CPU: $(within "$share" 20 30) ($b0 -> $b1 s, $t0 -> $t1)"
capped=$(cat /tmp/hb2)
echo "OXEN-SCHED: capped heartbeat: $capped ms: $(within "$capped" 0 $((idle * 2)))"
run sched2 xl-rs sched-credit2

run destroy-a xl-rs destroy fair-a
run destroy-b xl-rs destroy fair-b
after=$(free_pages_back_to "$before")
echo "OXEN-SCHED: free pages after destroy: $after ($(same "$before" "$after"))"
echo "OXEN-SCHED: done"
drain_console
poweroff -f
while :; do sleep 1000; done
