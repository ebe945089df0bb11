/*
 * oxen-memprobe: dom0's side of the dom0-isolation scenario. Reads and
 * writes, through /dev/mem, the physical memory that dom0's e820 map marks
 * reserved, i.e. the hypervisor's own memory and the free pool, which the
 * hypervisor maps in dom0's EPT to one read-only page of all-ones. Checks
 * that every byte reads as 0xff, that the canary records the hypervisor
 * planted there (`OXEN-CANARY-...`) are never seen, and that writes do not
 * stick. Built statically by xtask (gcc -static -O2) into the isolation
 * initramfs as /bin/oxen-memprobe; run by init-isolation.sh.
 *
 *   oxen-memprobe [-f FILE] [-m DIR] [-r START-END]... [-n]
 *
 *   -f FILE        the memory to probe (default /dev/mem); an ordinary file
 *                  works too, for testing on the host
 *   -m DIR         the firmware memory map (default /sys/firmware/memmap)
 *   -r START-END   probe this range instead (hexadecimal, 0x optional, END
 *                  exclusive, both 4 KiB aligned; repeatable)
 *   -n             no write tests
 *
 * Ranges: every "Reserved" entry of DIR/N/{start,end,type} (end inclusive
 * there) that ends at or below the end of the highest "System RAM", "ACPI
 * Tables" or "ACPI Non-volatile Storage" entry (firmware and MMIO areas near
 * 4 GiB are left out), clipped to start at 1 MiB (below it /dev/mem shows the
 * real BIOS areas) and shrunk to whole 4 KiB pages.
 *
 * Read test: each range is mapped in 16 MiB chunks (MAP_SHARED, PROT_READ)
 * and every byte is checked; pages that are not all 0xff are searched for the
 * canary string. Write test (not with -n): at five pages per range (first,
 * quarter, middle, three quarters, last), through a PROT_WRITE mapping of
 * FILE opened O_RDWR|O_SYNC (uncached; a cached one where x86 PAT refuses
 * that because the kernel maps the page itself), (a) one volatile 8-byte
 * store, (b) a memcpy of a 4 KiB pattern over the page (vector stores or
 * `rep movs`), (c) a 64-byte pwrite() of FILE (the kernel's own copy; only
 * below the top of dom0's RAM: /dev/mem read/write stop there with EFAULT,
 * which counts as skipped); after each, the page must read back unchanged. A
 * write that sticks is undone.
 *
 * Lines printed (START-END hexadecimal, END exclusive):
 *
 *   OXEN-ISOLATION: memmap: N entries, RAM ends at 0x..., probing reserved ranges in [0x100000, 0x...)
 *   OXEN-ISOLATION: range START-END: N KiB
 *   OXEN-ISOLATION: skip START-END: ... (why)
 *   OXEN-ISOLATION: read START-END: B bytes, N not 0xff, canary absent | CANARY SEEN (K hits)
 *   OXEN-ISOLATION: write START-END: W writes dropped [(P pwrites skipped: ...)]
 *   OXEN-ISOLATION: write START-END: WRITE STUCK at ADDR (which write)
 *   OXEN-ISOLATION: note: ...            an uncached mapping refused, a cached one used
 *   OXEN-ISOLATION: error: ...           open, mmap, pwrite failed, or a fault
 *   OXEN-ISOLATION: PASS: R ranges, B bytes read, all 0xff, W writes dropped
 *   OXEN-ISOLATION: FAIL: <why>
 *
 * Exit status 0 with PASS, 1 with FAIL, 2 for a bad command line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAG "OXEN-ISOLATION: "
#define PAGE 4096UL
#define CHUNK (16UL << 20)
#define LOW_LIMIT 0x100000UL
#define MAX_RANGES 256
#define CANARY "OXEN-CANARY-"
#define CANARY_LEN (sizeof CANARY - 1)
#define WRITE_PAGES 5
#define PWRITE_LEN 64
#define PWRITE_OFFSET 0xc0

struct range {
    uint64_t start, end; /* end exclusive */
};

static const char *file = "/dev/mem";
static const char *memmap_dir = "/sys/firmware/memmap";
static struct range ranges[MAX_RANGES];
static int nranges;
/* The end of the highest System RAM entry (exclusive); 0 when unknown. */
static uint64_t ram_top;
static int errors;

/* A SIGBUS or SIGSEGV while touching a mapping is reported, not fatal. */
static sigjmp_buf fault_jump;
static volatile sig_atomic_t fault_armed;
static void *volatile fault_addr;

static void on_fault(int sig, siginfo_t *info, void *context)
{
    (void)context;
    if (!fault_armed) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    fault_armed = 0;
    fault_addr = info->si_addr;
    siglongjmp(fault_jump, sig);
}

static void compiler_barrier(void)
{
    __asm__ volatile("" ::: "memory");
}

static void print_range(const char *what, const struct range *r)
{
    printf(TAG "%s 0x%" PRIx64 "-0x%" PRIx64, what, r->start, r->end);
}

static void error_open(const struct range *r, const char *what, int err)
{
    printf(TAG "error: 0x%" PRIx64 "-0x%" PRIx64 ": cannot open %s %s: %s\n",
           r->start, r->end, file, what, strerror(err));
    fflush(stdout);
    errors++;
}

static void error_at(const struct range *r, const char *what, uint64_t addr, int err)
{
    printf(TAG "error: 0x%" PRIx64 "-0x%" PRIx64 ": %s at 0x%" PRIx64 ": %s\n",
           r->start, r->end, what, addr, strerror(err));
    fflush(stdout);
    errors++;
}

/* ---- discovering the ranges ------------------------------------------- */

static int read_line(const char *dir, const char *entry, const char *name, char *out, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, entry, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)size, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    out[strcspn(out, "\n")] = 0;
    return 0;
}

static int parse_hex(const char *text, uint64_t *value)
{
    char *end;
    if (!*text)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 16);
    if (errno || *end)
        return -1;
    *value = v;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

struct entry {
    uint64_t start, end; /* end exclusive */
    char type[64];
};

/*
 * Reads the memory map. Sets ram_top; with discover, also fills ranges[]
 * (printing what it takes and skips). Returns -1 when the map is unreadable.
 */
static int read_memmap(int discover)
{
    DIR *dir = opendir(memmap_dir);
    if (!dir) {
        if (discover) {
            printf(TAG "error: cannot read the memory map %s: %s\n", memmap_dir, strerror(errno));
            errors++;
        }
        return -1;
    }
    static struct entry entries[1024];
    int n = 0, bad = 0;
    struct dirent *d;
    while ((d = readdir(dir)) && n < 1024) {
        if (d->d_name[0] < '0' || d->d_name[0] > '9')
            continue;
        char start[64], end[64];
        struct entry *e = &entries[n];
        if (read_line(memmap_dir, d->d_name, "start", start, sizeof start) ||
            read_line(memmap_dir, d->d_name, "end", end, sizeof end) ||
            read_line(memmap_dir, d->d_name, "type", e->type, sizeof e->type) ||
            parse_hex(start, &e->start) || parse_hex(end, &e->end) || e->end < e->start) {
            if (discover)
                printf(TAG "error: unreadable memory map entry %s/%s\n", memmap_dir, d->d_name);
            bad++;
            continue;
        }
        e->end++; /* inclusive there */
        n++;
    }
    closedir(dir);
    if (discover)
        errors += bad;

    uint64_t limit = 0;
    for (int i = 0; i < n; i++) {
        const char *t = entries[i].type;
        if (!strcmp(t, "System RAM") && entries[i].end > ram_top)
            ram_top = entries[i].end;
        if ((!strcmp(t, "System RAM") || !strcmp(t, "ACPI Tables") ||
             !strcmp(t, "ACPI Non-volatile Storage")) &&
            entries[i].end > limit)
            limit = entries[i].end;
    }
    if (!discover)
        return 0;
    printf(TAG "memmap: %d entries, RAM ends at 0x%" PRIx64
               ", probing reserved ranges in [0x%lx, 0x%" PRIx64 ")\n",
           n, ram_top, LOW_LIMIT, limit);
    qsort(entries, n, sizeof entries[0], cmp_range);
    for (int i = 0; i < n; i++) {
        struct range r = {entries[i].start, entries[i].end};
        if (strcmp(entries[i].type, "Reserved"))
            continue;
        if (r.end <= LOW_LIMIT)
            continue; /* the BIOS areas: /dev/mem shows the real ones */
        if (r.end > limit) {
            print_range("skip", &r);
            printf(": reserved above the end of RAM and ACPI (firmware or MMIO)\n");
            continue;
        }
        if (r.start < LOW_LIMIT)
            r.start = LOW_LIMIT;
        r.start = (r.start + PAGE - 1) & ~(PAGE - 1);
        r.end &= ~(PAGE - 1);
        if (r.end <= r.start) {
            print_range("skip", &r);
            printf(": no whole page\n");
            continue;
        }
        if (nranges == MAX_RANGES) {
            print_range("skip", &r);
            printf(": more than %d ranges\n", MAX_RANGES);
            errors++;
            continue;
        }
        ranges[nranges++] = r;
    }
    return 0;
}

static int parse_range_arg(const char *arg, struct range *r)
{
    char start[64];
    const char *dash = strchr(arg, '-');
    if (!dash || (size_t)(dash - arg) >= sizeof start)
        return -1;
    memcpy(start, arg, dash - arg);
    start[dash - arg] = 0;
    const char *s = start, *e = dash + 1;
    if (!strncasecmp(s, "0x", 2))
        s += 2;
    if (!strncasecmp(e, "0x", 2))
        e += 2;
    if (parse_hex(s, &r->start) || parse_hex(e, &r->end))
        return -1;
    if (r->end <= r->start || (r->start | r->end) & (PAGE - 1))
        return -1;
    return 0;
}

/* ---- the read test ---------------------------------------------------- */

static int page_all_ones(const uint64_t *w)
{
    uint64_t acc = ~0ULL;
    for (size_t i = 0; i < PAGE / 8; i += 8)
        acc &= w[i] & w[i + 1] & w[i + 2] & w[i + 3] & w[i + 4] & w[i + 5] & w[i + 6] & w[i + 7];
    return acc == ~0ULL;
}

static uint64_t count_not_ff(const unsigned char *p, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] != 0xff;
    return n;
}

/* Occurrences of the canary starting in [p, p + len), reading up to limit. */
static uint64_t count_canary(const unsigned char *p, size_t len, const unsigned char *limit)
{
    uint64_t hits = 0;
    const unsigned char *at = p;
    while (at < p + len) {
        const unsigned char *found = memmem(at, limit - at, CANARY, CANARY_LEN);
        if (!found || found >= p + len)
            break;
        hits++;
        at = found + 1;
    }
    return hits;
}

/* Checks that `file` holds [0, end) when it is an ordinary file (a mapping
 * beyond its end would fault). */
static int check_size(int fd, const struct range *r)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < r->end) {
        printf(TAG "error: 0x%" PRIx64 "-0x%" PRIx64 ": %s is only 0x%" PRIx64 " bytes long\n",
               r->start, r->end, file, (uint64_t)st.st_size);
        errors++;
        return -1;
    }
    return 0;
}

struct read_result {
    uint64_t bytes, not_ff, hits;
};

static void read_range(const struct range *r, struct read_result *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        error_open(r, "for reading", errno);
        return;
    }
    if (check_size(fd, r)) {
        close(fd);
        return;
    }
    /* The last CANARY_LEN - 1 bytes of the previous chunk and the first of
     * the next: a canary across a chunk boundary. */
    unsigned char seam[2 * (CANARY_LEN - 1)];
    int have_seam = 0;
    static unsigned char *volatile map;
    static volatile uint64_t map_len, map_at;
    map = NULL;
    if (sigsetjmp(fault_jump, 1)) {
        uint64_t at = map_at + (uint64_t)((unsigned char *)fault_addr - map);
        printf(TAG "error: 0x%" PRIx64 "-0x%" PRIx64 ": fault reading 0x%" PRIx64 "\n",
               r->start, r->end, at);
        errors++;
        munmap(map, map_len);
        close(fd);
        return;
    }
    for (uint64_t at = r->start; at < r->end; at += CHUNK) {
        uint64_t len = r->end - at < CHUNK ? r->end - at : CHUNK;
        unsigned char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)at);
        if (p == MAP_FAILED) {
            error_at(r, "mmap for reading", at, errno);
            break;
        }
        map = p;
        map_len = len;
        map_at = at;
        fault_armed = 1;
        if (have_seam) {
            memcpy(seam + CANARY_LEN - 1, p, CANARY_LEN - 1);
            out->hits += count_canary(seam, sizeof seam, seam + sizeof seam);
        }
        for (uint64_t off = 0; off < len; off += PAGE) {
            const unsigned char *page = p + off;
            if (page_all_ones((const uint64_t *)page))
                continue;
            out->not_ff += count_not_ff(page, PAGE);
            out->hits += count_canary(page, PAGE, p + len);
        }
        memcpy(seam, p + len - (CANARY_LEN - 1), CANARY_LEN - 1);
        have_seam = 1;
        fault_armed = 0;
        out->bytes += len;
        munmap(p, len);
        map = NULL;
    }
    close(fd);
}

/* ---- the write test --------------------------------------------------- */

struct write_result {
    int dropped, stuck, pwrite_skipped;
};

/* Compares the page with what it held before a write; undoes a change. */
static int check_page(const struct range *r, uint64_t addr, unsigned char *page,
                      const unsigned char *before, const char *what, struct write_result *out)
{
    compiler_barrier();
    if (memcmp(page, before, PAGE) == 0) {
        out->dropped++;
        return 0;
    }
    size_t i = 0;
    while (page[i] == before[i])
        i++;
    printf(TAG "write 0x%" PRIx64 "-0x%" PRIx64 ": WRITE STUCK at 0x%" PRIx64
               " (%s: reads 0x%02x, was 0x%02x; undone)\n",
           r->start, r->end, addr + i, what, page[i], before[i]);
    fflush(stdout);
    memcpy(page, before, PAGE);
    compiler_barrier();
    out->stuck++;
    return 1;
}

static void write_page(const struct range *r, int fd, int cached_fd, uint64_t addr,
                       struct write_result *out)
{
    static unsigned char before[PAGE], pattern[PAGE], readback[PWRITE_LEN];
    static unsigned char *volatile map;
    map = NULL;
    if (sigsetjmp(fault_jump, 1)) {
        printf(TAG "error: 0x%" PRIx64 "-0x%" PRIx64 ": fault writing the page at 0x%" PRIx64
                   " (at 0x%" PRIx64 ")\n",
               r->start, r->end, addr,
               addr + (uint64_t)((unsigned char *)fault_addr - map));
        errors++;
        if (map)
            munmap(map, PAGE);
        return;
    }
    unsigned char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)addr);
    if (p == MAP_FAILED && errno == EAGAIN && cached_fd >= 0) {
        /* x86 PAT: the kernel already maps the page write-back (say, ACPI
         * tables) and refuses the uncached alias that O_SYNC asks for. */
        printf(TAG "note: 0x%" PRIx64 "-0x%" PRIx64 ": no uncached mapping of 0x%" PRIx64
                   " (memory type conflict), writing through a cached one\n",
               r->start, r->end, addr);
        p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, cached_fd, (off_t)addr);
    }
    if (p == MAP_FAILED) {
        error_at(r, "mmap for writing", addr, errno);
        return;
    }
    map = p;
    fault_armed = 1;
    memcpy(before, p, PAGE);

    /* (a) one 8-byte store. */
    volatile uint64_t *word = (volatile uint64_t *)(p + 0x800);
    uint64_t value = 0x3852572d4e45584fULL; /* "OXEN-WR8" in memory order */
    if (value == *(const uint64_t *)(before + 0x800))
        value = ~value;
    *word = value;
    check_page(r, addr, p, before, "8-byte store", out);

    /* (b) a whole page. */
    for (size_t i = 0; i < PAGE; i++)
        pattern[i] = (unsigned char)(0x21 + (i + addr / PAGE) % 0x5d);
    memcpy(p, pattern, PAGE);
    check_page(r, addr, p, before, "4 KiB memcpy", out);
    fault_armed = 0;

    /* (c) the kernel's write: /dev/mem's write() (copy_from_user). */
    uint64_t at = addr + PWRITE_OFFSET;
    if (ram_top && at + PWRITE_LEN > ram_top) {
        out->pwrite_skipped++;
    } else if (pwrite(fd, pattern, PWRITE_LEN, (off_t)at) != PWRITE_LEN) {
        if (errno == EFAULT)
            out->pwrite_skipped++;
        else
            error_at(r, "pwrite", at, errno);
    } else {
        fault_armed = 1;
        int stuck = check_page(r, addr, p, before, "64-byte pwrite", out);
        fault_armed = 0;
        /* The kernel reads through its own mapping too. */
        if (!stuck && pread(fd, readback, PWRITE_LEN, (off_t)at) == PWRITE_LEN &&
            memcmp(readback, before + PWRITE_OFFSET, PWRITE_LEN) != 0) {
            printf(TAG "write 0x%" PRIx64 "-0x%" PRIx64 ": WRITE STUCK at 0x%" PRIx64
                       " (64-byte pwrite, seen by pread; undone)\n",
                   r->start, r->end, at);
            if (pwrite(fd, before + PWRITE_OFFSET, PWRITE_LEN, (off_t)at) != PWRITE_LEN)
                error_at(r, "pwrite (undoing)", at, errno);
            out->dropped--;
            out->stuck++;
        }
    }
    munmap(p, PAGE);
    map = NULL;
}

static void write_range(const struct range *r, struct write_result *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(file, O_RDWR | O_SYNC);
    if (fd < 0) {
        error_open(r, "for writing", errno);
        return;
    }
    int cached_fd = open(file, O_RDWR);
    if (check_size(fd, r)) {
        close(fd);
        close(cached_fd);
        return;
    }
    uint64_t pages = (r->end - r->start) / PAGE;
    uint64_t done[WRITE_PAGES];
    int ndone = 0;
    for (int i = 0; i < WRITE_PAGES; i++) {
        uint64_t index = (pages - 1) * i / (WRITE_PAGES - 1);
        if (ndone && done[ndone - 1] == index)
            continue;
        done[ndone++] = index;
        write_page(r, fd, cached_fd, r->start + index * PAGE, out);
    }
    close(fd);
    close(cached_fd);
    if (!out->stuck) {
        print_range("write", r);
        printf(": %d writes dropped", out->dropped);
        if (out->pwrite_skipped)
            printf(" (%d pwrites skipped: beyond dom0's RAM, where /dev/mem's write() stops)",
                   out->pwrite_skipped);
        printf("\n");
    }
}

/* ---- main ------------------------------------------------------------- */

static char reasons[512];
static size_t reasons_used;

/* Adds a reason for failing, after a "; " when there are already some. */
__attribute__((format(printf, 1, 2))) static void add_reason(const char *format, ...)
{
    va_list args;
    int n = snprintf(reasons + reasons_used, sizeof reasons - reasons_used, "%s",
                     reasons_used ? "; " : "");
    if (n > 0 && (size_t)n < sizeof reasons - reasons_used)
        reasons_used += n;
    va_start(args, format);
    n = vsnprintf(reasons + reasons_used, sizeof reasons - reasons_used, format, args);
    va_end(args);
    if (n > 0)
        reasons_used += (size_t)n < sizeof reasons - reasons_used ? (size_t)n
                                                                  : sizeof reasons - reasons_used - 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: oxen-memprobe [-f FILE] [-m DIR] [-r START-END]... [-n]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int write_tests = 1, given = 0, opt;
    while ((opt = getopt(argc, argv, "f:m:r:n")) != -1) {
        switch (opt) {
        case 'f':
            file = optarg;
            break;
        case 'm':
            memmap_dir = optarg;
            break;
        case 'r':
            if (nranges == MAX_RANGES || parse_range_arg(optarg, &ranges[nranges])) {
                fprintf(stderr, "oxen-memprobe: bad range %s (want START-END, hexadecimal, "
                                "END exclusive, 4 KiB aligned)\n", optarg);
                usage();
            }
            nranges++;
            given = 1;
            break;
        case 'n':
            write_tests = 0;
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);

    /* With -r the map only tells where dom0's RAM ends (for pwrite). */
    read_memmap(!given);
    if (given)
        qsort(ranges, nranges, sizeof ranges[0], cmp_range);
    for (int i = 0; i < nranges; i++) {
        print_range("range", &ranges[i]);
        printf(": %" PRIu64 " KiB\n", (ranges[i].end - ranges[i].start) / 1024);
    }

    uint64_t bytes = 0, not_ff = 0, hits = 0;
    int dropped = 0, stuck = 0;
    for (int i = 0; i < nranges; i++) {
        const struct range *r = &ranges[i];
        struct read_result rr;
        read_range(r, &rr);
        print_range("read", r);
        printf(": %" PRIu64 " bytes, %" PRIu64 " not 0xff, ", rr.bytes, rr.not_ff);
        if (rr.hits)
            printf("CANARY SEEN (%" PRIu64 " hits)\n", rr.hits);
        else
            printf("canary absent\n");
        bytes += rr.bytes;
        not_ff += rr.not_ff;
        hits += rr.hits;
        if (write_tests) {
            struct write_result wr;
            write_range(r, &wr);
            dropped += wr.dropped;
            stuck += wr.stuck;
        }
    }

    if (!nranges)
        add_reason("no reserved ranges to probe");
    if (hits)
        add_reason("canary seen %" PRIu64 " times", hits);
    if (not_ff)
        add_reason("%" PRIu64 " bytes not 0xff", not_ff);
    if (stuck)
        add_reason("%d write(s) stuck", stuck);
    if (errors)
        add_reason("%d error(s)", errors);
    if (reasons_used) {
        printf(TAG "FAIL: %s\n", reasons);
        return 1;
    }
    printf(TAG "PASS: %d ranges, %" PRIu64 " bytes read, all 0xff, ", nranges, bytes);
    if (write_tests)
        printf("%d writes dropped\n", dropped);
    else
        printf("no writes tried (-n)\n");
    return 0;
}
