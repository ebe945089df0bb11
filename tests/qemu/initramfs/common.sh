# Shell functions shared by the dom0 initramfs scripts (init-*.sh). xtask
# puts this file into every image as /lib/oxen/common.sh; a script uses it
# with `. /lib/oxen/common.sh`. Plain POSIX sh for busybox.

# The prefix of the lines `run` prints; each script sets its own.
OXEN_TAG="OXEN: "

# run LABEL COMMAND...: runs COMMAND, prints "${OXEN_TAG}$ COMMAND", then its
# output (stdout and stderr) with each line prefixed "LABEL| ", then
# "${OXEN_TAG}LABEL exit N". The output stays in /tmp/LABEL.out; the exit
# status is returned and left in $status.
run() {
    label=$1
    shift
    echo "${OXEN_TAG}\$ $*"
    "$@" > "/tmp/$label.out" 2>&1
    status=$?
    sed "s/^/$label| /" "/tmp/$label.out"
    echo "${OXEN_TAG}$label exit $status"
    return $status
}

# drain_console: returns once ttyS0 has sent what is queued. The console
# drains slowly (about 1 KB per emulated second under Bochs and the
# hypervisor) and `poweroff -f` drops what is still queued, so the scripts
# call this before they power off: it waits until ttyS0's transmit count
# (the `tx:` field of /proc/tty/driver/serial) stops growing for a second,
# at most two minutes; without the counter it waits 3 s.
drain_console() {
    last=
    for _ in $(seq 1 120); do
        now=$(sed -n 's/^0: .* tx:\([0-9]*\).*/\1/p' /proc/tty/driver/serial 2>/dev/null)
        if [ -z "$now" ]; then
            sleep 3 # no counter to watch
            return
        fi
        [ "$now" = "$last" ] && return
        last=$now
        sleep 1
    done
}

# --- For the domU scenarios (init-domu.sh, init-domu-linux.sh) ---

# The free pages the hypervisor reports (xl-rs info's free_pages line).
free_pages() {
    xl-rs info | sed -n 's/^free_pages *: *//p' | head -n 1
}

# Waits (at most ~30 s) until the free pages are back to $1; prints them.
free_pages_back_to() {
    for _ in $(seq 1 60); do
        now=$(free_pages)
        [ "$now" = "$1" ] && break
        sleep 0.5
    done
    echo "$now"
}

# same|DIFFERENT for two numbers.
same() {
    if [ -n "$1" ] && [ "$1" = "$2" ]; then echo same; else echo DIFFERENT; fi
}

# The state letters column of `xl-rs list` for domain $1.
state_of() {
    xl-rs list | awk -v n="$1" '$1 == n { print $5 }'
}
