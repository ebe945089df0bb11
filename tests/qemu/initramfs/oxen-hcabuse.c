/*
 * oxen-hcabuse: dom0's side of the hypercall-abuse scenario. Throws random
 * and malformed hypercalls at the hypervisor through the hvctl driver's RAW
 * ioctl (operation and five registers passed through unchecked) and checks
 * that every one is refused with a negative status, the one the ABI
 * (docs/abi.md) documents for it. Built statically by xtask (gcc -static
 * -O2) into the hypercall-abuse initramfs as /bin/oxen-hcabuse; run by
 * init-hypercall-abuse.sh.
 *
 *   oxen-hcabuse [-n COUNT] [-s SEED] [-m DIR] [-i FILE] [-d]
 *
 *   -n COUNT   hypercalls to make (default 10000)
 *   -s SEED    the PRNG seed (decimal or 0x hexadecimal; default from the
 *              TSC); the same seed on the same memory map repeats a run
 *   -m DIR     the firmware memory map (default /sys/firmware/memmap)
 *   -i FILE    the kernel's resource map (default /proc/iomem)
 *   -d         dry run: no device, no VMCALL; print each generated call as
 *              `call N CLASS OP A1 A2 A3 A4 A5 EXPECT SCALARS` (hexadecimal;
 *              EXPECT a bit mask of 1 << -status, SCALARS one of the
 *              arguments that are no address: bit 0 for A1), for tests on
 *              the host
 *
 * 1. A forked child executes VMCALL itself, at CPL 3: the hypervisor must
 *    make it an invalid instruction, so the child dies of SIGILL.
 * 2. COUNT hypercalls through OXEN_IOCTL_RAW, each of one class, chosen
 *    evenly: a random 64-bit operation number, operation 0, a number in a
 *    reserved group (0x03xx to 0x06xx, 0x80xx), an undefined number below
 *    0x10000 (an unused index of group 0x01 or 0x02, or no group), a number above
 *    0xffff (some of them a valid operation plus high bits), and the five
 *    operations of ABI 1.0 with bad guest-physical addresses, huge or tiny
 *    sizes (HV_INFO with 2^40, 2^64-1, 87 bytes, ...) and bad domain ids
 *    (DOMAIN_INFO with 2^33, 2^64-1, ...). When the header defines the
 *    domain operations of ABI 1.1 (OXEN_OP_DOMAIN_CREATE and the others in
 *    groups 0x03 to 0x06), one more class calls them with bad addresses,
 *    domain ids of no domain (never 0, dom0) and bad sizes; the reserved
 *    group class then leaves their numbers out. With ABI 1.2's header the
 *    events operation (OXEN_OP_EVENT_READ, group 0x07) joins that class,
 *    with bad addresses only, and group 0x07 counts as reserved; with 1.3's
 *    the scheduling operations (group 0x08) join it too (domain ids of no
 *    domain, bad addresses, any vCPU number and CPU bitmap), and group 0x08
 *    counts as reserved. Each call must return a negative status; the one
 *    the ABI gives for it is also checked: an unassigned number in groups
 *    0x03 to 0x06 (0x07 from 1.2, 0x08 from 1.3) and 0x80 is NOT_IMPLEMENTED,
 *    elsewhere INVALID_OPERATION. Where a call is wrong in two ways (HV_INFO
 *    with a bad size and a bad address, DOMAIN_INFO with a bad id and a bad
 *    address, the domain operations) any of those refusals is accepted: the
 *    ABI does not order its checks.
 * 3. The hypervisor must still answer: VERSION and HV_INFO through their own
 *    ioctls, its uptime advancing.
 *
 * Every value passed in an argument register is a "bad address", never a
 * guest-physical address in dom0's own RAM (the hypervisor would really
 * write there): except for sizes, domain ids and the like (SCALARS above),
 * each argument is drawn from
 *   - the "Reserved" entries of DIR at or above 1 MiB (the hypervisor's own
 *     memory and the free pool, hidden from dom0),
 *   - the IO-APIC and local APIC pages (0xfec00000, 0xfee00000),
 *   - addresses from the end of the highest entry of DIR up to 2^52,
 *   - addresses from 2^52 up to 2^64 - 1, and a few fixed ones near 2^52,
 *     2^63 and 2^64 (u64::MAX, and addresses whose end wraps around),
 * and a value is used only when it is at or above 1 MiB and the 4 KiB from it
 * (up to 2^64) touch no entry of DIR other than "Reserved" and no
 * "System RAM" of FILE. Without a "System RAM" entry in DIR nothing is
 * generated (exit status 1).
 *
 * Lines printed:
 *
 *   OXEN-ABUSE: user VMCALL refused (SIGILL)
 *   OXEN-ABUSE: memory map: N entries, M RAM ranges, RAM ends at 0x...; bad addresses from R reserved ranges, MMIO, 0x...-2^52, 2^52-2^64
 *   OXEN-ABUSE: seed 0x... (oxen-hcabuse -s 0x... repeats the run)
 *   OXEN-ABUSE: hypervisor before: ABI X.Y, N CPUs, uptime S s
 *   OXEN-ABUSE: N hypercalls in T ms
 *   OXEN-ABUSE: class NAME: N calls: STATUS N, ...
 *   OXEN-ABUSE: tally: STATUS N, ...
 *   OXEN-ABUSE: ACCEPTED: call #I CLASS op=0x... args=... status N      (at most 20)
 *   OXEN-ABUSE: UNEXPECTED: call #I CLASS op=0x... args=... status NAME, the ABI says NAME  (at most 20)
 *   OXEN-ABUSE: storm: N hypercalls refused (seed 0x...), 0 accepted, 0 unexpected
 *   OXEN-ABUSE: hypervisor answers after the storm: ABI X.Y, N CPUs, uptime S s -> S s
 *   OXEN-ABUSE: check failed: <which check, what was seen>
 *   OXEN-ABUSE: error: <why the checks cannot run>   (no memory map, no device)
 *
 * Exit status 0 when every check passed, 1 otherwise, 2 for a bad command
 * line. It prints no verdict of its own: init-hypercall-abuse.sh goes on
 * (the hypervisor and dom0 are checked after a failure too) and prints the
 * scenario's `OXEN-ABUSE: PASS` or `FAIL` line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../../dom0-abi/include/oxen_abi.h"

#define TAG "OXEN-ABUSE: "
#define LOW_LIMIT 0x100000ULL
#define GUARD 4096ULL
#define MAX_RANGES 256
#define MAX_REPORTED 20
#define TOP_52 (1ULL << 52)
/* Statuses -1 to -13 are named; the tally has room for them. */
#define NSTATUS 14

struct range {
    uint64_t start, end; /* [start, end) */
};

/* Where no argument may point: every entry of the memory map that is not
 * "Reserved", and System RAM of /proc/iomem. */
static struct range forbidden[2 * MAX_RANGES];
static int nforbidden;
/* Reserved entries at or above LOW_LIMIT, the pool of hidden addresses. */
static struct range reserved[MAX_RANGES];
static int nreserved;
static int nram, nentries;
/* The end of the highest entry of the memory map or of System RAM. */
static uint64_t top;

static const char *const status_names[NSTATUS] = {
    "OK", "NOT_PERMITTED", "INVALID_OPERATION", "INVALID_ARGUMENT", "BAD_ADDRESS",
    "TOO_BIG", "BUFFER_TOO_SMALL", "NO_SUCH_DOMAIN", "NO_MEMORY", "VERSION_MISMATCH",
    "BUSY", "NOT_IMPLEMENTED", "BAD_STATE", "EXISTS",
};

#define BIT(status) (1u << (unsigned)-(status))

/* ---- PRNG: splitmix64 ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (the bias is irrelevant here). */
static uint64_t below(uint64_t n)
{
    return rnd() % n;
}

static uint64_t pick(const uint64_t *values, size_t n)
{
    return values[below(n)];
}
#define PICK(array) pick(array, sizeof(array) / sizeof(array[0]))

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* ---- The memory map ---- */

static int read_u64(const char *path, uint64_t *value)
{
    FILE *f = fopen(path, "r");
    int ok;

    if (!f)
        return -1;
    ok = fscanf(f, "%" SCNx64, value) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static int read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    char *nl;

    if (!f)
        return -1;
    if (!fgets(buf, (int)size, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    return 0;
}

static void add_forbidden(uint64_t start, uint64_t end)
{
    if (nforbidden < 2 * MAX_RANGES)
        forbidden[nforbidden++] = (struct range){start, end};
    if (end > top)
        top = end;
}

/* Reads DIR/N/{start,end,type}; returns -1 (after an error line) when dom0's
 * RAM cannot be told. */
static int read_memmap(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *entry;
    char path[512], type[128];
    uint64_t start, end;

    if (!d) {
        printf(TAG "error: cannot read %s: %s; no safe addresses without it\n", dir,
               strerror(errno));
        return -1;
    }
    while ((entry = readdir(d))) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "%s/%s/start", dir, entry->d_name);
        if (read_u64(path, &start))
            continue;
        snprintf(path, sizeof path, "%s/%s/end", dir, entry->d_name);
        if (read_u64(path, &end))
            continue;
        snprintf(path, sizeof path, "%s/%s/type", dir, entry->d_name);
        if (read_line(path, type, sizeof type))
            continue;
        if (end < start || end == UINT64_MAX)
            continue;
        nentries++;
        end += 1; /* inclusive there */
        if (strcmp(type, "Reserved") == 0) {
            if (end > top)
                top = end;
            if (end > LOW_LIMIT && nreserved < MAX_RANGES)
                reserved[nreserved++] =
                    (struct range){start < LOW_LIMIT ? LOW_LIMIT : start, end};
            continue;
        }
        if (strcmp(type, "System RAM") == 0)
            nram++;
        add_forbidden(start, end);
    }
    closedir(d);
    if (nram == 0) {
        printf(TAG "error: no System RAM entry in %s: cannot tell dom0's RAM, so no address is known to be safe\n",
               dir);
        return -1;
    }
    return 0;
}

/* Adds the top-level "System RAM" lines of /proc/iomem (a missing file is
 * fine: the memory map already names the RAM). */
static void read_iomem(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[256];
    uint64_t start, end;
    int n;

    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == ' ')
            continue;
        n = 0;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " : %n", &start, &end, &n) == 2 && n > 0 &&
            strncmp(line + n, "System RAM", 10) == 0 && end >= start && end != UINT64_MAX)
            add_forbidden(start, end + 1);
    }
    fclose(f);
}

/* Whether [p, p + GUARD) (up to 2^64) is no place for an argument. */
static int unsafe(uint64_t p)
{
    uint64_t end = p > UINT64_MAX - GUARD ? UINT64_MAX : p + GUARD;

    if (p < LOW_LIMIT)
        return 1;
    for (int i = 0; i < nforbidden; i++)
        if (p < forbidden[i].end && forbidden[i].start < end)
            return 1;
    return 0;
}

/* An address outside dom0's RAM (see the top of the file). */
static uint64_t bad_gpa(void)
{
    static const uint64_t fixed[] = {
        TOP_52 - 4096, TOP_52 - 8, TOP_52 - 1, TOP_52, TOP_52 + 4096,
        1ULL << 63, (1ULL << 63) - 1, 0xfffffffffffff000ULL,
        UINT64_MAX, UINT64_MAX - 7, UINT64_MAX - 87, UINT64_MAX - 111, UINT64_MAX - 3,
    };
    static const uint64_t mmio[] = {0xfec00000ULL, 0xfee00000ULL};
    uint64_t p;

    for (;;) {
        switch (below(6)) {
        case 0: /* hidden memory: the hypervisor's and the free pool */
            if (nreserved == 0)
                continue;
            {
                struct range r = reserved[below((uint64_t)nreserved)];
                p = r.start + below(r.end - r.start);
            }
            break;
        case 1:
            p = PICK(mmio) + below(0x1000);
            break;
        case 2: /* above everything in the map, below 2^52 */
            if (top >= TOP_52)
                continue;
            p = top + below(TOP_52 - top);
            break;
        case 3: /* 2^52 and up */
            p = rnd() | TOP_52;
            break;
        case 4:
            p = PICK(fixed);
            break;
        default: /* page-aligned, above the map */
            if (top >= TOP_52)
                continue;
            p = (top + below(TOP_52 - top)) & ~0xfffULL;
            break;
        }
        /* Unaligned and aligned both: a third are made 8-byte aligned. */
        if (below(3) == 0 && p < UINT64_MAX - 8)
            p &= ~7ULL;
        if (!unsafe(p))
            return p;
    }
}

/* ---- The calls ---- */

/* The operations of the header, for keeping them out of the classes of
 * numbers that name none. */
static const uint64_t known_ops[] = {
    OXEN_OP_VERSION, OXEN_OP_HV_INFO, OXEN_OP_LOG_READ, OXEN_OP_DOMAIN_LIST, OXEN_OP_DOMAIN_INFO,
#ifdef OXEN_OP_DOMAIN_CREATE
    OXEN_OP_DOMAIN_CREATE, OXEN_OP_DOMAIN_DESTROY, OXEN_OP_DOMAIN_PAUSE, OXEN_OP_DOMAIN_UNPAUSE,
    OXEN_OP_DOMAIN_SHUTDOWN, OXEN_OP_DOMAIN_COPY_IN, OXEN_OP_VCPU_SET_ENTRY,
    OXEN_OP_CONSOLE_READ, OXEN_OP_CONSOLE_WRITE,
#endif
#ifdef OXEN_OP_EVENT_READ
    OXEN_OP_EVENT_READ,
#endif
#ifdef OXEN_OP_SCHED_GET
    OXEN_OP_SCHED_GET, OXEN_OP_SCHED_SET, OXEN_OP_VCPU_LIST, OXEN_OP_VCPU_SET_AFFINITY,
#endif
};

/* The last group with numbers reserved for later minor versions before
 * 0x80: 0x06 in ABI 1.1, 0x07 (events) from 1.2, 0x08 (scheduling) from
 * 1.3. */
#if defined(OXEN_OP_SCHED_GET)
#define LAST_OPEN_GROUP 0x08
#elif defined(OXEN_OP_EVENT_READ)
#define LAST_OPEN_GROUP 0x07
#else
#define LAST_OPEN_GROUP 0x06
#endif

#ifdef OXEN_OP_DOMAIN_CREATE
/* The domain operations of ABI 1.1 and which of their arguments are no
 * address (bit 0: RDI): domain ids, vCPU numbers, sizes, reasons. */
static const struct {
    uint64_t op;
    unsigned scalars;
} domain_ops[] = {
    {OXEN_OP_DOMAIN_CREATE, 0},     {OXEN_OP_DOMAIN_DESTROY, 1},
    {OXEN_OP_DOMAIN_PAUSE, 1},      {OXEN_OP_DOMAIN_UNPAUSE, 1},
    {OXEN_OP_DOMAIN_SHUTDOWN, 1 | 2}, {OXEN_OP_DOMAIN_COPY_IN, 1 | 8},
    {OXEN_OP_VCPU_SET_ENTRY, 1 | 2}, {OXEN_OP_CONSOLE_READ, 1 | 4},
    {OXEN_OP_CONSOLE_WRITE, 1 | 4},
#ifdef OXEN_OP_EVENT_READ
    /* 1.2: events; its only argument is an address. */
    {OXEN_OP_EVENT_READ, 0},
#endif
#ifdef OXEN_OP_SCHED_GET
    /* 1.3: scheduling. SCHED_GET: a domain id and a result address;
     * SCHED_SET and VCPU_LIST: an address; VCPU_SET_AFFINITY: a domain
     * id, a vCPU number and a CPU bitmap, no address. */
    {OXEN_OP_SCHED_GET, 1},         {OXEN_OP_SCHED_SET, 0},
    {OXEN_OP_VCPU_LIST, 0},         {OXEN_OP_VCPU_SET_AFFINITY, 1 | 2 | 4},
#endif
};
#endif

enum cls {
    C_RANDOM_OP,
    C_ZERO_OP,
    C_RESERVED_GROUP,
    C_UNDEFINED_OP,
    C_ABOVE_FFFF,
    C_VERSION,
    C_HV_INFO,
    C_LOG_READ,
    C_DOMAIN_LIST,
    C_DOMAIN_INFO,
#ifdef OXEN_OP_DOMAIN_CREATE
    C_DOMAIN_OPS,
#endif
    NCLASSES
};

static const char *const class_names[NCLASSES] = {
    "random-op", "op-0", "reserved-group", "undefined-op", "above-0xffff",
    "VERSION", "HV_INFO", "LOG_READ", "DOMAIN_LIST", "DOMAIN_INFO",
#ifdef OXEN_OP_DOMAIN_CREATE
    "domain-ops",
#endif
};

struct call {
    uint64_t op, arg[5];
    enum cls cls;
    uint32_t expect;  /* BIT(status) of the statuses the ABI allows */
    unsigned scalars; /* bit i: arg[i] is no address */
};

static int valid_op(uint64_t op)
{
    for (size_t i = 0; i < sizeof known_ops / sizeof known_ops[0]; i++)
        if (known_ops[i] == op)
            return 1;
    return 0;
}

/* What docs/abi.md says of a number that is no operation: NOT_IMPLEMENTED in
 * a reserved group, INVALID_OPERATION elsewhere (0 and above 0xffff too). */
static uint32_t expect_invalid(uint64_t op)
{
    uint64_t group = op >> 8;

    if (op <= 0xffff && ((group >= 0x03 && group <= LAST_OPEN_GROUP) || group == 0x80))
        return BIT(OXEN_STATUS_NOT_IMPLEMENTED);
    return BIT(OXEN_STATUS_INVALID_OPERATION);
}

static void make_call(struct call *c)
{
    static const uint64_t reserved_groups[] = {
        0x03, 0x04, 0x05, 0x06,
#ifdef OXEN_OP_EVENT_READ
        0x07,
#endif
#ifdef OXEN_OP_SCHED_GET
        0x08,
#endif
        0x80,
    };
    static const uint64_t huge[] = {
        OXEN_MAX_BUFFER_BYTES + 1, 1ULL << 32, 1ULL << 40, 1ULL << 63, UINT64_MAX,
    };
    static const uint64_t small[] = {0, 1, 8, sizeof(struct oxen_hv_info) - 1};
    static const uint64_t fitting[] = {
        sizeof(struct oxen_hv_info), sizeof(struct oxen_hv_info) + 1, 4096,
        OXEN_MAX_BUFFER_BYTES,
    };
    static const uint64_t domids[] = {
        1, 2, 0x7fff, 0xffffffffULL, 1ULL << 32, 1ULL << 33, 1ULL << 63, UINT64_MAX,
    };

    c->cls = (enum cls)below(NCLASSES);
    c->scalars = 0;
    for (int i = 0; i < 5; i++)
        c->arg[i] = bad_gpa();
    switch (c->cls) {
    case C_RANDOM_OP:
        do
            c->op = rnd();
        while (valid_op(c->op));
        break;
    case C_ZERO_OP:
        c->op = 0;
        break;
    case C_RESERVED_GROUP:
        do
            c->op = PICK(reserved_groups) << 8 | below(0x100);
        while (valid_op(c->op));
        break;
    case C_UNDEFINED_OP:
        /* Unused indices of the groups ABI 1.0 closed, or no group at all
         * (the reserved groups have a class of their own). */
        do {
            switch (below(3)) {
            case 0:
                c->op = 0x0100 | (3 + below(0xfd));
                break;
            case 1:
                c->op = 0x0200 | (2 + below(0xfe));
                break;
            default:
                c->op = 1 + below(0xffff);
                break;
            }
        } while (valid_op(c->op) || c->op == 0 ||
                 expect_invalid(c->op) != BIT(OXEN_STATUS_INVALID_OPERATION));
        break;
    case C_ABOVE_FFFF:
        if (below(2))
            c->op = PICK(known_ops) | (1 + below(0xffffffffffffULL)) << 16;
        else
            c->op = 0x10000 + below(UINT64_MAX - 0x10000);
        break;
    case C_VERSION:
        c->op = OXEN_OP_VERSION;
        break;
    case C_HV_INFO:
        c->op = OXEN_OP_HV_INFO;
        c->scalars = 2;
        switch (below(4)) {
        case 0:
            c->arg[1] = PICK(huge);
            break;
        case 1:
            c->arg[1] = (OXEN_MAX_BUFFER_BYTES + 1) + below(UINT64_MAX - OXEN_MAX_BUFFER_BYTES);
            break;
        case 2:
            c->arg[1] = PICK(small);
            break;
        default:
            c->arg[1] = PICK(fitting);
            break;
        }
        break;
    case C_LOG_READ:
        c->op = OXEN_OP_LOG_READ;
        break;
    case C_DOMAIN_LIST:
        c->op = OXEN_OP_DOMAIN_LIST;
        break;
    case C_DOMAIN_INFO:
        c->op = OXEN_OP_DOMAIN_INFO;
        c->scalars = 1;
        /* dom0's own id, or none: the buffer is bad either way. */
        c->arg[0] = below(4) == 0 ? 0 : below(2) ? PICK(domids) : rnd();
        break;
#ifdef OXEN_OP_DOMAIN_CREATE
    case C_DOMAIN_OPS: {
        static const uint64_t sizes[] = {
            0, 1, 2, 3, 8, 4096, OXEN_MAX_BUFFER_BYTES, OXEN_MAX_BUFFER_BYTES + 1,
            1ULL << 32, 1ULL << 40, UINT64_MAX,
        };
        size_t k = (size_t)below(sizeof domain_ops / sizeof domain_ops[0]);

        c->op = domain_ops[k].op;
        c->scalars = domain_ops[k].scalars;
        /* A domain that does not exist, never dom0 (0): these operations
         * refuse dom0, and nothing here may reach it if one did not. */
        if (c->scalars & 1)
            c->arg[0] = below(2) ? PICK(domids) : rnd() | 1ULL << 32;
        for (int i = 1; i < 5; i++)
            if (c->scalars & (1u << i))
                c->arg[i] = below(4) ? PICK(sizes) : rnd();
        break;
    }
#endif
    default:
        break;
    }

    switch (c->cls) {
    case C_VERSION:
    case C_LOG_READ:
    case C_DOMAIN_LIST:
        c->expect = BIT(OXEN_STATUS_BAD_ADDRESS);
        break;
    case C_HV_INFO:
        c->expect = BIT(OXEN_STATUS_BAD_ADDRESS);
        if (c->arg[1] > OXEN_MAX_BUFFER_BYTES)
            c->expect |= BIT(OXEN_STATUS_TOO_BIG);
        else if (c->arg[1] < sizeof(struct oxen_hv_info))
            c->expect |= BIT(OXEN_STATUS_BUFFER_TOO_SMALL);
        break;
    case C_DOMAIN_INFO:
        c->expect = BIT(OXEN_STATUS_BAD_ADDRESS);
        if (c->arg[0] != OXEN_DOM0_ID)
            c->expect |= BIT(OXEN_STATUS_NO_SUCH_DOMAIN);
        break;
#ifdef OXEN_OP_DOMAIN_CREATE
    case C_DOMAIN_OPS:
        c->expect = BIT(OXEN_STATUS_BAD_ADDRESS) | BIT(OXEN_STATUS_NO_SUCH_DOMAIN) |
                    BIT(OXEN_STATUS_TOO_BIG) | BIT(OXEN_STATUS_INVALID_ARGUMENT);
        break;
#endif
    default:
        c->expect = expect_invalid(c->op);
        break;
    }
}

static const char *status_name(int64_t status, char *buf, size_t size)
{
    if (status <= 0 && status > -NSTATUS)
        return status_names[-status];
    snprintf(buf, size, "%s(%" PRId64 ")", status > 0 ? "POSITIVE" : "UNDEFINED", status);
    return buf;
}

static const char *expect_names(uint32_t mask, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int s = 1; s < NSTATUS; s++)
        if (mask & (1u << s))
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? " or " : "",
                                     status_names[s]);
    return buf;
}

static void describe(const struct call *c, int index, char *buf, size_t size)
{
    snprintf(buf, size,
             "call #%d %s op=0x%" PRIx64 " args=0x%" PRIx64 ",0x%" PRIx64 ",0x%" PRIx64
             ",0x%" PRIx64 ",0x%" PRIx64,
             index, class_names[c->cls], c->op, c->arg[0], c->arg[1], c->arg[2], c->arg[3],
             c->arg[4]);
}

/* ---- The device ---- */

static int hv_query(int fd, struct oxen_version_args *version, struct oxen_hv_info *info)
{
    memset(version, 0, sizeof *version);
    version->caller_major = OXEN_ABI_VERSION_MAJOR;
    version->caller_minor = OXEN_ABI_VERSION_MINOR;
    if (ioctl(fd, OXEN_IOCTL_VERSION, version) != 0)
        return -1;
    memset(info, 0, sizeof *info);
    return ioctl(fd, OXEN_IOCTL_HV_INFO, info) != 0 ? -1 : 0;
}

/* 1: VMCALL at CPL 3 must raise #UD, i.e. SIGILL. */
static int user_vmcall(void)
{
    uint64_t bad = bad_gpa();
    int wstatus;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        printf(TAG "error: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* VERSION with a bad address, in case the hypervisor ran it. */
        uint64_t rax = OXEN_OP_VERSION;
        register uint64_t r10 __asm__("r10") = bad;
        register uint64_t r8 __asm__("r8") = bad;

        signal(SIGILL, SIG_DFL);
        __asm__ volatile("vmcall"
                         : "+a"(rax), "+r"(r10), "+r"(r8)
                         : "D"(bad), "S"(bad), "d"(bad)
                         : "memory", "cc");
        printf(TAG "check failed: user VMCALL at CPL 3 returned to the program with RAX = %" PRId64
                   " (no #UD)\n",
               (int64_t)rax);
        fflush(stdout);
        _exit(3);
    }
    if (waitpid(pid, &wstatus, 0) != pid) {
        printf(TAG "error: waitpid: %s\n", strerror(errno));
        return -1;
    }
    if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGILL) {
        printf(TAG "user VMCALL refused (SIGILL)\n");
        return 0;
    }
    if (WIFSIGNALED(wstatus))
        printf(TAG "check failed: user VMCALL killed the child with signal %d (%s), not SIGILL\n",
               WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    else
        printf(TAG "check failed: user VMCALL: the child exited with status %d instead of dying of SIGILL\n",
               WEXITSTATUS(wstatus));
    return -1;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: oxen-hcabuse [-n COUNT] [-s SEED] [-m DIR] [-i FILE] [-d]\n");
}

int main(int argc, char **argv)
{
    const char *memmap = "/sys/firmware/memmap", *iomem = "/proc/iomem";
    unsigned long count = 10000;
    int dry = 0, have_seed = 0, opt, failed = 0, fd = -1;
    uint64_t seed = 0;
    unsigned long accepted = 0, unexpected = 0, ioctl_errors = 0;
    unsigned long class_calls[NCLASSES] = {0};
    unsigned long class_tally[NCLASSES][NSTATUS + 2];
    unsigned long tally[NSTATUS + 2] = {0}; /* [NSTATUS] undefined, [NSTATUS + 1] >= 0 */
    struct oxen_version_args version;
    struct oxen_hv_info before, after;
    char what[256], name[64], expect[128];
    struct timespec t0;
    char *end;

    memset(class_tally, 0, sizeof class_tally);
    while ((opt = getopt(argc, argv, "n:s:m:i:d")) != -1) {
        switch (opt) {
        case 'n':
            errno = 0;
            count = strtoul(optarg, &end, 0);
            if (errno || *end || count == 0) {
                usage();
                return 2;
            }
            break;
        case 's':
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (errno || *end) {
                usage();
                return 2;
            }
            have_seed = 1;
            break;
        case 'm':
            memmap = optarg;
            break;
        case 'i':
            iomem = optarg;
            break;
        case 'd':
            dry = 1;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!have_seed)
        seed = rdtsc() ^ ((uint64_t)getpid() << 32);
    rng_state = seed;

    if (read_memmap(memmap))
        return 1;
    read_iomem(iomem);

    if (!dry && user_vmcall())
        failed = 1;

    printf(TAG "memory map: %d entries, %d RAM ranges, RAM ends at 0x%" PRIx64
               "; bad addresses from %d reserved ranges, MMIO, 0x%" PRIx64 "-2^52, 2^52-2^64\n",
           nentries, nram, top, nreserved, top);
    printf(TAG "seed 0x%" PRIx64 " (oxen-hcabuse -s 0x%" PRIx64 " repeats the run)\n", seed, seed);

    if (!dry) {
        fd = open(OXEN_HVCTL_DEVICE, O_RDWR);
        if (fd < 0) {
            printf(TAG "error: cannot open %s: %s\n", OXEN_HVCTL_DEVICE, strerror(errno));
            return 1;
        }
        if (hv_query(fd, &version, &before)) {
            printf(TAG "check failed: the hypervisor does not answer before the storm: %s\n",
                   strerror(errno));
            return 1;
        }
        printf(TAG "hypervisor before: ABI %u.%u, %u CPUs, uptime %.3f s\n",
               version.hypervisor_major, version.hypervisor_minor, before.cpu_count,
               (double)before.uptime_ns / 1e9);
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long i = 0; i < count; i++) {
        struct call c;
        struct oxen_ioctl_raw raw;
        int64_t status;
        int slot;

        make_call(&c);
        if (dry) {
            printf("call %lu %s 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64
                   " 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx32 " 0x%x\n",
                   i, class_names[c.cls], c.op, c.arg[0], c.arg[1], c.arg[2], c.arg[3],
                   c.arg[4], c.expect, c.scalars);
            continue;
        }
        memset(&raw, 0, sizeof raw);
        raw.op = c.op;
        raw.arg1 = c.arg[0];
        raw.arg2 = c.arg[1];
        raw.arg3 = c.arg[2];
        raw.arg4 = c.arg[3];
        raw.arg5 = c.arg[4];
        raw.status = 0x5a5a5a5a;
        if (ioctl(fd, OXEN_IOCTL_RAW, &raw) != 0) {
            describe(&c, (int)i, what, sizeof what);
            if (ioctl_errors++ < MAX_REPORTED)
                printf(TAG "ERROR: %s: the RAW ioctl failed: %s\n", what, strerror(errno));
            continue;
        }
        status = raw.status;
        class_calls[c.cls]++;
        slot = status >= 0 ? NSTATUS + 1 : status > -NSTATUS ? (int)-status : NSTATUS;
        tally[slot]++;
        class_tally[c.cls][slot]++;
        if (status >= 0) {
            describe(&c, (int)i, what, sizeof what);
            if (accepted++ < MAX_REPORTED)
                printf(TAG "ACCEPTED: %s status %" PRId64 "\n", what, status);
        } else if (slot == NSTATUS || !(c.expect & (1u << slot))) {
            describe(&c, (int)i, what, sizeof what);
            if (unexpected++ < MAX_REPORTED)
                printf(TAG "UNEXPECTED: %s status %s, the ABI says %s\n", what,
                       status_name(status, name, sizeof name),
                       expect_names(c.expect, expect, sizeof expect));
        }
    }
    if (dry)
        return 0;

    printf(TAG "%lu hypercalls in %.0f ms\n", count, ms_since(&t0));
    for (int k = 0; k < NCLASSES; k++) {
        int used = snprintf(what, sizeof what, TAG "class %s: %lu calls:", class_names[k],
                            class_calls[k]);
        const char *sep = " ";

        for (int s = 0; s < NSTATUS + 2; s++) {
            if (!class_tally[k][s] || used >= (int)sizeof what)
                continue;
            used += snprintf(what + used, sizeof what - (size_t)used, "%s%s %lu", sep,
                             s < NSTATUS ? status_names[s] : s == NSTATUS ? "UNDEFINED" : "ACCEPTED",
                             class_tally[k][s]);
            sep = ", ";
        }
        printf("%s\n", what);
    }
    {
        int used = snprintf(what, sizeof what, TAG "tally:");
        const char *sep = " ";

        for (int s = 0; s < NSTATUS + 2; s++) {
            if (!tally[s] || used >= (int)sizeof what)
                continue;
            used += snprintf(what + used, sizeof what - (size_t)used, "%s%s %lu", sep,
                             s < NSTATUS ? status_names[s] : s == NSTATUS ? "UNDEFINED" : "ACCEPTED",
                             tally[s]);
            sep = ", ";
        }
        printf("%s\n", what);
    }
    if (accepted || unexpected || ioctl_errors) {
        printf(TAG "check failed: of %lu hypercalls (seed 0x%" PRIx64 "), %lu accepted (status >= 0), %lu refused with a status the ABI does not give, %lu RAW ioctls failed\n",
               count, seed, accepted, unexpected, ioctl_errors);
        failed = 1;
    } else {
        printf(TAG "storm: %lu hypercalls refused (seed 0x%" PRIx64 "), 0 accepted, 0 unexpected\n",
               count, seed);
    }

    if (hv_query(fd, &version, &after)) {
        printf(TAG "check failed: the hypervisor does not answer after the storm: %s\n", strerror(errno));
        failed = 1;
    } else if (version.hypervisor_major != OXEN_ABI_VERSION_MAJOR ||
               after.cpu_count != before.cpu_count || after.uptime_ns <= before.uptime_ns) {
        printf(TAG "check failed: the hypervisor answers oddly after the storm: ABI %u.%u, %u CPUs (%u before), uptime %.3f s (%.3f s before)\n",
               version.hypervisor_major, version.hypervisor_minor, after.cpu_count,
               before.cpu_count, (double)after.uptime_ns / 1e9, (double)before.uptime_ns / 1e9);
        failed = 1;
    } else {
        printf(TAG "hypervisor answers after the storm: ABI %u.%u, %u CPUs, uptime %.3f s -> %.3f s\n",
               version.hypervisor_major, version.hypervisor_minor, after.cpu_count,
               (double)before.uptime_ns / 1e9, (double)after.uptime_ns / 1e9);
    }
    close(fd);
    return failed;
}
