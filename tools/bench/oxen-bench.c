/*
 * oxen-bench: micro-benchmarks run inside a guest (dom0 or a domU) under the
 * Oxen hypervisor. Prints, in TSC ticks per operation (median of batches):
 *
 *   OXEN-BENCH: cpuid-ticks: N     CPUID leaf 0: a VM exit, its handling
 *                                  and the return to the guest
 *   OXEN-BENCH: getppid-ticks: N   a getppid system call (no exit), for scale
 *
 * Under Bochs with `clock: sync=none` one TSC tick is about one emulated
 * instruction, so these numbers repeat across runs and hosts.
 * Built statically by xtask (gcc -static -O2) into the dom0 initramfs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BATCHES 15
#define PER_BATCH 200

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

static uint64_t median(uint64_t *v)
{
    qsort(v, BATCHES, sizeof v[0], cmp);
    return v[BATCHES / 2];
}

int main(void)
{
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
