/*
 * oxen-bench: micro-benchmarks run inside a guest (dom0 or a domU) under the
 * Oxen hypervisor. Prints, in TSC ticks per operation (median of batches):
 *
 *   OXEN-BENCH: cpuid-ticks: N     CPUID leaf 0: a VM exit, its handling
 *                                  and the return to the guest
 *   OXEN-BENCH: getppid-ticks: N   a getppid system call (no exit), for scale
 *
 * `oxen-bench hypercall` measures instead, in dom0 with the hvctl driver
 * loaded (TSC ticks per call, median of HC_BATCHES batches of HC_PER_BATCH):
 *
 *   OXEN-BENCH: hypercall-ticks: N   the VERSION ioctl of /dev/hvctl: the
 *                                    cheapest control hypercall from dom0
 *                                    userspace (system call, the driver's
 *                                    bounce page, VMCALL exit, dispatch, and
 *                                    back)
 *   OXEN-BENCH: raw-hypercall-ticks: N   the RAW ioctl with operation 0
 *                                    (refused at once with INVALID_OPERATION:
 *                                    system call, VMCALL exit and back, no
 *                                    allocation in the driver), for the split
 *   OXEN-BENCH: getppid-ticks: N     a getppid system call measured the same
 *                                    way, for scale
 *   OXEN-BENCH: enotty-ioctl-ticks: N   an ioctl /dev/hvctl does not know
 *                                    (ENOTTY): Linux's ioctl path alone
 *
 * `oxen-bench time LABEL COMMAND [ARG...]` runs COMMAND (its output
 * goes where oxen-bench's goes) and then prints how long it took, from
 * before its fork to after its exit, and how it ended:
 *
 *   OXEN-BENCH: LABEL-ticks: N exit S
 *
 * (the scenario domu-churn times `xl-rs create` and `xl-rs destroy` so).
 *
 * A mode of its own rather than automatic on /dev/hvctl: its getppid line
 * uses other batch sizes than the default mode's, and the two must not meet
 * in one log.
 *
 * Under Bochs with `clock: sync=none` one TSC tick is about one emulated
 * instruction, so these numbers repeat across runs and hosts.
 * Built statically by xtask (gcc -static -O2) into the dom0 initramfs images.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../dom0-abi/include/oxen_abi.h"

#define BATCHES 15
#define PER_BATCH 200
#define HC_BATCHES 64
#define HC_PER_BATCH 32

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid0(void)
{
    uint32_t a = 0, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}

static int cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static uint64_t median_of(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof v[0], cmp);
    return v[n / 2];
}

static uint64_t median(uint64_t *v)
{
    return median_of(v, BATCHES);
}

/* Ticks per call minus the empty loop's, never below 0. */
static uint64_t net(uint64_t ticks, uint64_t loop)
{
    return ticks > loop ? ticks - loop : 0;
}

static int bench_hypercall(void)
{
    static uint64_t empty[HC_BATCHES], version[HC_BATCHES], raw[HC_BATCHES], sys[HC_BATCHES],
        notty[HC_BATCHES];
    struct oxen_version_args args;
    struct oxen_ioctl_raw req;
    unsigned long failures = 0;
    int fd = open(OXEN_HVCTL_DEVICE, O_RDWR);

    if (fd < 0) {
        printf("OXEN-BENCH: hypercall: cannot open %s: %s\n", OXEN_HVCTL_DEVICE, strerror(errno));
        return 1;
    }
    memset(&args, 0, sizeof args);
    args.caller_major = OXEN_ABI_VERSION_MAJOR;
    args.caller_minor = OXEN_ABI_VERSION_MINOR;
    if (ioctl(fd, OXEN_IOCTL_VERSION, &args) != 0) {
        printf("OXEN-BENCH: hypercall: the VERSION ioctl fails: %s\n", strerror(errno));
        return 1;
    }
    /* Operation 0 is never valid: refused before any argument is looked at.
     * The arguments are u64::MAX anyway, never an address in dom0's RAM. */
    memset(&req, 0, sizeof req);
    req.arg1 = req.arg2 = req.arg3 = req.arg4 = req.arg5 = UINT64_MAX;
    for (int b = 0; b < HC_BATCHES; b++) {
        uint64_t t0 = rdtsc();
        for (int i = 0; i < HC_PER_BATCH; i++)
            __asm__ volatile("" ::: "memory");
        uint64_t t1 = rdtsc();
        for (int i = 0; i < HC_PER_BATCH; i++)
            failures += ioctl(fd, OXEN_IOCTL_VERSION, &args) != 0;
        uint64_t t2 = rdtsc();
        for (int i = 0; i < HC_PER_BATCH; i++) {
            req.op = 0;
            failures += ioctl(fd, OXEN_IOCTL_RAW, &req) != 0 ||
                        req.status != OXEN_STATUS_INVALID_OPERATION;
        }
        uint64_t t3 = rdtsc();
        for (int i = 0; i < HC_PER_BATCH; i++)
            syscall(SYS_getppid);
        uint64_t t4 = rdtsc();
        /* An ioctl the driver does not know: Linux's ioctl path and the
         * driver's switch, no hypercall. */
        for (int i = 0; i < HC_PER_BATCH; i++)
            failures += ioctl(fd, 0, NULL) != -1 || errno != ENOTTY;
        uint64_t t5 = rdtsc();
        notty[b] = (t5 - t4) / HC_PER_BATCH;
        empty[b] = (t1 - t0) / HC_PER_BATCH;
        version[b] = (t2 - t1) / HC_PER_BATCH;
        raw[b] = (t3 - t2) / HC_PER_BATCH;
        sys[b] = (t4 - t3) / HC_PER_BATCH;
    }
    close(fd);
    if (failures) {
        printf("OXEN-BENCH: hypercall: %lu of %d calls failed\n", failures,
               2 * HC_BATCHES * HC_PER_BATCH);
        return 1;
    }
    uint64_t loop = median_of(empty, HC_BATCHES);
    printf("OXEN-BENCH: hypercall-ticks: %llu\n",
           (unsigned long long)net(median_of(version, HC_BATCHES), loop));
    printf("OXEN-BENCH: raw-hypercall-ticks: %llu\n",
           (unsigned long long)net(median_of(raw, HC_BATCHES), loop));
    printf("OXEN-BENCH: getppid-ticks: %llu\n",
           (unsigned long long)net(median_of(sys, HC_BATCHES), loop));
    printf("OXEN-BENCH: enotty-ioctl-ticks: %llu\n",
           (unsigned long long)net(median_of(notty, HC_BATCHES), loop));
    fflush(stdout);
    return 0;
}

/* `time LABEL COMMAND...`: runs COMMAND, prints its duration in ticks. */
static int bench_time(const char *label, char **command)
{
    fflush(stdout);
    uint64_t t0 = rdtsc();
    pid_t pid = fork();
    if (pid < 0) {
        perror("oxen-bench: fork");
        return 2;
    }
    if (pid == 0) {
        execvp(command[0], command);
        fprintf(stderr, "oxen-bench: %s: %s\n", command[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("oxen-bench: waitpid");
            return 2;
        }
    }
    uint64_t t1 = rdtsc();
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("OXEN-BENCH: %s-ticks: %llu exit %d\n", label, (unsigned long long)(t1 - t0), code);
    fflush(stdout);
    return code;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "hypercall") == 0)
        return bench_hypercall();
    if (argc >= 4 && strcmp(argv[1], "time") == 0)
        return bench_time(argv[2], &argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: oxen-bench [hypercall | time LABEL COMMAND [ARG...]]\n");
        return 2;
    }
    uint64_t cpuid[BATCHES], sys[BATCHES], empty[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        uint64_t t0 = rdtsc();
        for (int i = 0; i < PER_BATCH; i++)
            __asm__ volatile("" ::: "memory");
        uint64_t t1 = rdtsc();
        for (int i = 0; i < PER_BATCH; i++)
            cpuid0();
        uint64_t t2 = rdtsc();
        for (int i = 0; i < PER_BATCH; i++)
            syscall(SYS_getppid);
        uint64_t t3 = rdtsc();
        empty[b] = (t1 - t0) / PER_BATCH;
        cpuid[b] = (t2 - t1) / PER_BATCH;
        sys[b] = (t3 - t2) / PER_BATCH;
    }
    uint64_t loop = median(empty);
    printf("OXEN-BENCH: cpuid-ticks: %llu\n", (unsigned long long)(median(cpuid) - loop));
    printf("OXEN-BENCH: getppid-ticks: %llu\n", (unsigned long long)(median(sys) - loop));
    fflush(stdout);
    return 0;
}
