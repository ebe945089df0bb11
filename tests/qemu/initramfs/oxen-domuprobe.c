/*
 * oxen-domuprobe: the guest's side of the domu-isolation scenario. It runs
 * as root inside a Linux guest domain (domU) and tries to reach what is not
 * the domain's own: physical memory outside its RAM, MSRs, I/O ports, and
 * the hypervisor's control hypercalls. Built statically by xtask (gcc
 * -static -O2) into the domU's initramfs as /bin/oxen-domuprobe (and into
 * dom0's, for `where`); run by init-domu-probe.sh.
 *
 *   oxen-domuprobe where FILE [MIN]
 *       (dom0) prints the physical address of FILE's first page at or above
 *       MIN (default 0), read from /proc/self/pagemap (root only), as
 *       0x...; dom0 is identity-mapped, so it is the host-physical address
 *       too.
 *   oxen-domuprobe mem [-f FILE] [-m DIR] [-t ADDR] [-s MARKER] [-b BITS] [-w]
 *       reads physical memory outside the domain's own through FILE
 *       (default /dev/mem): every 1 MiB from 1 MiB to 4 GiB and a few
 *       addresses above (4, 8, 16, 64 GiB, the top of the physical address
 *       space: BITS, default from /proc/cpuinfo's "address sizes"), leaving
 *       out each address that an entry of DIR (default
 *       /sys/firmware/memmap; any type: RAM, ACPI, reserved) covers and the
 *       I/O APIC and local APIC pages. At each: the first 64 bytes and the
 *       page's last 8, by 8-byte volatile loads (single MOVs, which the
 *       hypervisor can decode), and all 4096 bytes at ADDR (-t: where dom0
 *       keeps MARKER). Every value must be all-ones or zero, and neither
 *       MARKER (-s) nor the hypervisor's canary `OXEN-CANARY-` may be seen.
 *       With -w: an 8-byte store at every 64 MiB step, at the high
 *       addresses and at 8 offsets of ADDR, each read back: it must not
 *       stick.
 *   oxen-domuprobe msr [-f FILE]
 *       reads and writes MSRs through FILE (default /dev/cpu/0/msr, msr.ko):
 *       IA32_APIC_BASE (relocated, then put back; reserved bits), EFER with
 *       bits no guest may set, SYSENTER_CS and PAT (their own value back:
 *       per-vCPU state), an MTRR and MTRR_DEF_TYPE, the microcode update
 *       trigger, IA32_FEATURE_CONTROL, TSC, MISC_ENABLE, IA32_VMX_BASIC,
 *       an MSR no CPU has. Each line says what happened: `refused (EIO)`
 *       (the CPU, here the hypervisor, raised #GP), or `accepted`, and what
 *       reads back.
 *   oxen-domuprobe io [-r SEED]
 *       iopl(3), then reads and writes ports the domain does not own:
 *       0xCF9 (a value without the reset bit), 0xCF8/0xCFC (PCI
 *       configuration), the PICs, CMOS, COM2 and the ports around COM1,
 *       POST 0x80, and 48 ports drawn at random (SEED) outside the domain's
 *       own devices (its 16550 at 0x3F8-0x3FF, its PM1a block 0x600-0x607,
 *       0x64 and 0xCF9, through which it could end itself).
 *   oxen-domuprobe vmcall
 *       a VMCALL from user space, in a child process: it must die of SIGILL.
 *
 * Lines printed (prefix OXEN-DOMU-PROBE:):
 *
 *   memmap: N entries, own memory ends at 0x..., physical address bits B
 *   read: A addresses outside the domain's memory, B bytes, X not all-ones (Z zero), marker absent|MARKER SEEN, canary absent|CANARY SEEN
 *   target 0x...: 4096 bytes read, X not all-ones
 *   write: W stores at A addresses, all dropped | WRITE STUCK at 0x...
 *   mem PASS | mem FAIL: <why>
 *   msr 0x... NAME: read 0x...|refused (EIO); write 0x...: accepted|refused (EIO); reads back 0x...|refused (EIO)
 *   msr PASS: R refused, I accepted | msr FAIL: <why>
 *   io: in PORT = VALUE ... ; io: out PORT <- VALUE ...
 *   io PASS: N reads all-ones, W writes | io FAIL: <why>
 *   user VMCALL: killed by SIGILL (refused) | user VMCALL: NOT refused (...)
 *   error: ...           open, mmap, iopl failed
 *
 * Exit status 0 when the part passes, 1 when it fails, 2 for a bad
 * command line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG "OXEN-DOMU-PROBE: "
#define PAGE 4096UL
#define MIB (1UL << 20)
#define GIB (1UL << 30)
#define MAX_ENTRIES 128
#define CANARY "OXEN-CANARY-"
#define IOAPIC_PAGE 0xFEC00000UL
#define LAPIC_PAGE 0xFEE00000UL
#define WRITE_PATTERN 0x5a5aa5a5c3c33c3cULL

static int failed;

static void fail(const char *why)
{
	printf(TAG "FAIL: %s\n", why);
	failed = 1;
}

/* ---- mem ---- */

struct entry {
	uint64_t start, end; /* end exclusive */
	char type[48];
};

static int read_hex_file(const char *path, uint64_t *out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fscanf(f, "%" SCNx64, out) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/* Reads DIR/N/{start,end,type}; returns the number of entries or -1. */
static int read_memmap(const char *dir, struct entry *e, int max)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.')
			continue;
		char path[512];
		uint64_t start, end;
		snprintf(path, sizeof path, "%s/%s/start", dir, de->d_name);
		if (read_hex_file(path, &start))
			continue;
		snprintf(path, sizeof path, "%s/%s/end", dir, de->d_name);
		if (read_hex_file(path, &end))
			continue;
		snprintf(path, sizeof path, "%s/%s/type", dir, de->d_name);
		FILE *f = fopen(path, "r");
		e[n].type[0] = 0;
		if (f) {
			if (!fgets(e[n].type, sizeof e[n].type, f))
				e[n].type[0] = 0;
			fclose(f);
			e[n].type[strcspn(e[n].type, "\n")] = 0;
		}
		e[n].start = start;
		e[n].end = end + 1;
		n++;
	}
	closedir(d);
	return n;
}

/* The end of the highest "System RAM" entry: the domain's RAM starts at 0
 * and is contiguous (the builder's layout), so all below it is its own. */
static uint64_t own_end;

/* Whether the page at `a` is the domain's own (below its RAM's end,
 * covered by an entry of any type, or an APIC page). */
static int owned(const struct entry *e, int n, uint64_t a)
{
	if (a < own_end || a < MIB || a == IOAPIC_PAGE || a == LAPIC_PAGE)
		return 1;
	for (int i = 0; i < n; i++)
		if (a + PAGE > e[i].start && a < e[i].end)
			return 1;
	return 0;
}

static int cpu_address_bits(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	int bits = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "address sizes : %d bits physical", &bits) == 1)
			break;
	fclose(f);
	return bits;
}

static sigjmp_buf fault_jump;

static void on_fault(int sig)
{
	siglongjmp(fault_jump, sig);
}

struct mem_stats {
	uint64_t addresses, bytes, not_ones, zero, marker_hits, canary_hits;
};

/* Checks `len` bytes read at `a` (copied out of the mapping already). */
static void judge(struct mem_stats *s, const unsigned char *buf, size_t len,
		  const char *marker, uint64_t a)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v;
		memcpy(&v, buf + i, 8);
		if (v != UINT64_MAX) {
			s->not_ones++;
			if (v == 0)
				s->zero++;
			else if (s->not_ones - s->zero <= 4)
				printf(TAG "data at 0x%" PRIx64 ": 0x%016" PRIx64 "\n", a + i, v);
		}
	}
	s->bytes += len;
	if (marker && *marker && memmem(buf, len, marker, strlen(marker)))
		s->marker_hits++;
	if (memmem(buf, len, CANARY, strlen(CANARY)))
		s->canary_hits++;
}

/* Maps the page at `a` of fd; NULL (and a line) when that is refused. */
static volatile uint64_t *map_page(int fd, uint64_t a, int prot)
{
	void *p = mmap(NULL, PAGE, prot, MAP_SHARED, fd, (off_t)a);
	if (p == MAP_FAILED) {
		printf(TAG "error: mmap of 0x%" PRIx64 ": %s\n", a, strerror(errno));
		failed = 1;
		return NULL;
	}
	return p;
}

/* Reads `count` 8-byte words at `offset` of the page at `a` into buf;
 * -1 on a fault or refusal. */
static int read_words(int fd, uint64_t a, size_t offset, size_t count, unsigned char *buf)
{
	volatile uint64_t *p = map_page(fd, a, PROT_READ);
	if (!p)
		return -1;
	int sig = sigsetjmp(fault_jump, 1);
	if (sig) {
		printf(TAG "error: signal %d reading 0x%" PRIx64 "\n", sig, a + offset);
		failed = 1;
		munmap((void *)p, PAGE);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		uint64_t v = p[offset / 8 + i];
		memcpy(buf + 8 * i, &v, 8);
	}
	munmap((void *)p, PAGE);
	return 0;
}

/* An 8-byte store at `a`, read back; 1 if it stuck. Returns -1 on error. */
static int store_and_check(int fd, uint64_t a)
{
	volatile uint64_t *p = map_page(fd, a & ~(PAGE - 1), PROT_READ | PROT_WRITE);
	if (!p)
		return -1;
	int sig = sigsetjmp(fault_jump, 1);
	if (sig) {
		printf(TAG "error: signal %d writing 0x%" PRIx64 "\n", sig, a);
		failed = 1;
		munmap((void *)p, PAGE);
		return -1;
	}
	size_t i = (a & (PAGE - 1)) / 8;
	uint64_t before = p[i];
	p[i] = WRITE_PATTERN;
	uint64_t after = p[i];
	int stuck = after == WRITE_PATTERN || after != before;
	if (stuck)
		printf(TAG "write: WRITE STUCK at 0x%" PRIx64 " (0x%016" PRIx64 " before, 0x%016" PRIx64 " after)\n",
		       a, before, after);
	munmap((void *)p, PAGE);
	return stuck;
}

static int cmd_mem(int argc, char **argv)
{
	const char *file = "/dev/mem", *dir = "/sys/firmware/memmap", *marker = NULL;
	uint64_t target = 0;
	int bits = 0, writes = 0, opt;
	while ((opt = getopt(argc, argv, "f:m:t:s:b:w")) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 'm': dir = optarg; break;
		case 't': target = strtoull(optarg, NULL, 0) & ~(PAGE - 1); break;
		case 's': marker = optarg; break;
		case 'b': bits = atoi(optarg); break;
		case 'w': writes = 1; break;
		default: return 2;
		}
	}
	static struct entry e[MAX_ENTRIES];
	int n = read_memmap(dir, e, MAX_ENTRIES);
	if (n <= 0) {
		printf(TAG "error: no memory map in %s\n", dir);
		return 1;
	}
	for (int i = 0; i < n; i++)
		if (!strcmp(e[i].type, "System RAM") && e[i].end > own_end)
			own_end = e[i].end;
	if (!bits)
		bits = cpu_address_bits();
	if (bits < 32 || bits > 52)
		bits = 36;
	printf(TAG "memmap: %d entries, own memory ends at 0x%" PRIx64 ", physical address bits %d\n",
	       n, own_end, bits);
	int fd = open(file, O_RDWR | O_SYNC);
	if (fd < 0) {
		printf(TAG "error: open %s: %s\n", file, strerror(errno));
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_fault };
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	/* The addresses: every MiB below 4 GiB, then a few above. */
	static uint64_t addr[4096 + 8];
	int count = 0;
	for (uint64_t a = MIB; a < 4 * GIB; a += MIB)
		if (!owned(e, n, a))
			addr[count++] = a;
	uint64_t top = (1ULL << bits) - MIB;
	uint64_t high[] = { 4 * GIB, 8 * GIB, 16 * GIB, 64 * GIB, top };
	int highs = 0;
	for (size_t i = 0; i < sizeof high / sizeof high[0]; i++)
		if (high[i] >= 4 * GIB && high[i] <= top && !owned(e, n, high[i])) {
			addr[count++] = high[i];
			highs++;
		}

	struct mem_stats s = { 0 };
	unsigned char buf[PAGE];
	for (int i = 0; i < count; i++) {
		if (read_words(fd, addr[i], 0, 8, buf) || read_words(fd, addr[i], PAGE - 8, 1, buf + 64))
			continue;
		s.addresses++;
		judge(&s, buf, 72, marker, addr[i]);
	}
	printf(TAG "read: %" PRIu64 " addresses outside the domain's memory (%d above 4 GiB, up to 0x%" PRIx64
	       "), %" PRIu64 " bytes, %" PRIu64 " not all-ones (%" PRIu64 " zero), marker %s, canary %s\n",
	       s.addresses, highs, top, s.bytes, s.not_ones, s.zero,
	       s.marker_hits ? "SEEN" : "absent", s.canary_hits ? "SEEN" : "absent");
	if (s.not_ones != s.zero)
		fail("data outside the domain's memory");
	if (s.marker_hits)
		fail("dom0's MARKER SEEN");
	if (s.canary_hits)
		fail("the hypervisor's CANARY SEEN");
	if (s.addresses == 0)
		fail("no address probed");

	if (target) {
		if (owned(e, n, target)) {
			printf(TAG "target 0x%" PRIx64 ": inside the domain's own memory, not probed\n", target);
		} else if (!read_words(fd, target, 0, PAGE / 8, buf)) {
			struct mem_stats t = { 0 };
			judge(&t, buf, PAGE, marker, target);
			printf(TAG "target 0x%" PRIx64 ": %" PRIu64 " bytes read, %" PRIu64
			       " not all-ones, marker %s\n",
			       target, t.bytes, t.not_ones, t.marker_hits ? "SEEN" : "absent");
			if (t.not_ones != t.zero || t.marker_hits)
				fail("dom0's page shows through");
		}
	}

	if (writes) {
		int stores = 0, places = 0, stuck = 0;
		for (int i = 0; i < count; i++) {
			if (addr[i] % (64 * MIB) && addr[i] < 4 * GIB)
				continue;
			int r = store_and_check(fd, addr[i]);
			if (r >= 0) {
				stores++;
				places++;
				stuck += r;
			}
		}
		if (target && !owned(e, n, target)) {
			places++;
			for (int k = 0; k < 8; k++) {
				int r = store_and_check(fd, target + k * 512);
				if (r >= 0) {
					stores++;
					stuck += r;
				}
			}
		}
		if (stuck)
			fail("WRITE STUCK outside the domain's memory");
		else
			printf(TAG "write: %d stores at %d addresses, all dropped\n", stores, places);
	}
	close(fd);
	printf(TAG "mem %s\n", failed ? "FAIL" : "PASS");
	return failed;
}

/* ---- msr ---- */

/* 0, or the errno of a refusal (EIO: the RDMSR or WRMSR raised #GP). */
static int msr_read(int fd, uint32_t msr, uint64_t *v)
{
	ssize_t n = pread(fd, v, 8, msr);
	return n == 8 ? 0 : n < 0 ? errno : EIO;
}

static int msr_write(int fd, uint32_t msr, uint64_t v)
{
	ssize_t n = pwrite(fd, &v, 8, msr);
	return n == 8 ? 0 : n < 0 ? errno : EIO;
}

static const char *errname(int e)
{
	switch (e) {
	case EIO: return "EIO";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	default: return strerror(e);
	}
}

enum expect { REFUSED, ACCEPTED, ANY };

static int msr_refused, msr_accepted;

/* One line: what reads, what a write of `value` does, what reads after.
 * `expect` is what the write must do (the hypervisor's MSR policy). */
static void msr_try(int fd, uint32_t msr, const char *name, uint64_t value, enum expect expect)
{
	uint64_t before = 0, after = 0;
	char line[512];
	int n = snprintf(line, sizeof line, "msr 0x%x %s: ", msr, name);
	int r = msr_read(fd, msr, &before);
	n += r ? snprintf(line + n, sizeof line - n, "read refused (%s); ", errname(r))
	       : snprintf(line + n, sizeof line - n, "read 0x%" PRIx64 "; ", before);
	int w = msr_write(fd, msr, value);
	n += w ? snprintf(line + n, sizeof line - n, "write 0x%" PRIx64 " refused (%s); ", value, errname(w))
	       : snprintf(line + n, sizeof line - n, "write 0x%" PRIx64 " accepted; ", value);
	int r2 = msr_read(fd, msr, &after);
	n += r2 ? snprintf(line + n, sizeof line - n, "reads back: refused (%s)", errname(r2))
		: snprintf(line + n, sizeof line - n, "reads back 0x%" PRIx64 "%s", after,
			   w ? "" : after == value ? " (took effect)" : " (ignored)");
	printf(TAG "%s\n", line);
	if (w)
		msr_refused++;
	else
		msr_accepted++;
	if ((expect == REFUSED && !w) || (expect == ACCEPTED && w)) {
		char why[128];
		snprintf(why, sizeof why, "MSR 0x%x: write %s, expected %s", msr, w ? "refused" : "accepted",
			 expect == REFUSED ? "a refusal" : "acceptance");
		fail(why);
	}
}

static int cmd_msr(int argc, char **argv)
{
	const char *file = argc > 2 && !strcmp(argv[1], "-f") ? argv[2] : "/dev/cpu/0/msr";
	int fd = open(file, O_RDWR);
	if (fd < 0) {
		printf(TAG "error: open %s: %s\n", file, strerror(errno));
		return 1;
	}
	uint64_t v;
	/* IA32_APIC_BASE: the domain's own virtual APIC. Moved to another
	 * address (then put back at once), and with a reserved bit. */
	if (!msr_read(fd, 0x1b, &v)) {
		msr_try(fd, 0x1b, "IA32_APIC_BASE relocated", (v & 0xfff) | 0xfed00000, ANY);
		msr_try(fd, 0x1b, "IA32_APIC_BASE restored", v, ACCEPTED);
		msr_try(fd, 0x1b, "IA32_APIC_BASE reserved bit 63", v | (1ULL << 63), REFUSED);
	} else {
		msr_try(fd, 0x1b, "IA32_APIC_BASE", 0xfed00900, ANY);
	}
	/* EFER: SVME (bit 12) and a reserved bit are no guest's to set. */
	if (!msr_read(fd, 0xc0000080, &v)) {
		msr_try(fd, 0xc0000080, "IA32_EFER +SVME", v | (1 << 12), REFUSED);
		msr_try(fd, 0xc0000080, "IA32_EFER +reserved bit 20", v | (1 << 20), REFUSED);
	}
	/* Per-vCPU state the VMCS switches: its own value back. */
	if (!msr_read(fd, 0x174, &v))
		msr_try(fd, 0x174, "IA32_SYSENTER_CS (own value)", v, ACCEPTED);
	if (!msr_read(fd, 0x277, &v))
		msr_try(fd, 0x277, "IA32_PAT (own value)", v, ACCEPTED);
	/* Memory types and microcode belong to the hypervisor. */
	msr_try(fd, 0x200, "IA32_MTRR_PHYSBASE0", 0x6, ANY);
	msr_try(fd, 0x2ff, "IA32_MTRR_DEF_TYPE", 0xc00, ANY);
	msr_try(fd, 0x79, "IA32_BIOS_UPDT_TRIG", 0x100000, ANY);
	msr_try(fd, 0x3a, "IA32_FEATURE_CONTROL", 0x5, REFUSED);
	msr_try(fd, 0x10, "IA32_TIME_STAMP_COUNTER", 0, ANY);
	msr_try(fd, 0x1a0, "IA32_MISC_ENABLE", 0, ANY);
	msr_try(fd, 0x480, "IA32_VMX_BASIC", 0, REFUSED);
	msr_try(fd, 0x12345678, "unknown", 0x1234, REFUSED);
	close(fd);
	printf(TAG "msr %s: %d writes refused, %d accepted\n", failed ? "FAIL" : "PASS", msr_refused,
	       msr_accepted);
	return failed;
}

/* ---- io ---- */

static uint32_t port_in(uint16_t port, int size)
{
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

static void port_out(uint16_t port, int size, uint32_t v)
{
	if (size == 1)
		outb((uint8_t)v, port);
	else if (size == 2)
		outw((uint16_t)v, port);
	else
		outl(v, port);
}

/* Ports whose writes mean something to the domain's own platform. */
static int own_port(unsigned port)
{
	return (port >= 0x3f8 && port <= 0x3ff) || (port >= 0x600 && port <= 0x607) || port == 0x64 ||
	       port == 0xcf9 || (port >= 0xcf8 && port <= 0xcff);
}

static int io_reads, io_ones, io_writes;

static void io_in(uint16_t port, int size, const char *what)
{
	uint32_t v = port_in(port, size);
	uint32_t ones = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	io_reads++;
	if (v == ones)
		io_ones++;
	if (what)
		printf(TAG "io: in 0x%x (%s) = 0x%x%s\n", port, what, v, v == ones ? " (all-ones)" : "");
	else if (v != ones)
		printf(TAG "io: in 0x%x = 0x%x (not all-ones)\n", port, v);
}

static void io_out(uint16_t port, int size, uint32_t v, const char *what)
{
	port_out(port, size, v);
	io_writes++;
	if (what)
		printf(TAG "io: out 0x%x (%s) <- 0x%x\n", port, what, v);
}

static int cmd_io(int argc, char **argv)
{
	uint32_t seed = argc > 2 && !strcmp(argv[1], "-r") ? (uint32_t)strtoul(argv[2], NULL, 0) : 0x0e4a17u;
	if (iopl(3)) {
		printf(TAG "error: iopl(3): %s\n", strerror(errno));
		return 1;
	}
	io_out(0xcf9, 1, 0x02, "reset control, reset bit clear");
	io_in(0xcf9, 1, "reset control");
	io_out(0xcf8, 4, 0x80000000u, "PCI config address: bus 0 device 0 register 0");
	io_in(0xcfc, 4, "PCI config data: host bridge vendor/device");
	io_out(0xcfc, 4, 0xffffffffu, "PCI config data");
	io_out(0xcf8, 4, 0x80000004u, "PCI config address: register 4");
	io_out(0xcfc, 2, 0x0000, "PCI command register: decoding off");
	io_in(0xcfc, 2, "PCI command register");
	io_in(0x21, 1, "master PIC mask");
	io_out(0x21, 1, 0xff, "master PIC: mask all");
	io_out(0xa1, 1, 0xff, "slave PIC: mask all");
	io_out(0x20, 1, 0x11, "master PIC: ICW1 (reinitialise)");
	io_in(0xa1, 1, "slave PIC mask");
	io_out(0x70, 1, 0x8f, "CMOS index 0x0f, NMI off");
	io_out(0x71, 1, 0x0a, "CMOS shutdown status");
	io_out(0x70, 1, 0x00, "CMOS index 0 (seconds)");
	io_in(0x71, 1, "CMOS seconds");
	for (uint16_t p = 0x2f8; p <= 0x2ff; p++)
		io_out(p, 1, 0x80, NULL);
	io_in(0x2fd, 1, "COM2 line status");
	for (uint16_t p = 0x3f0; p <= 0x3f7; p++)
		io_out(p, 1, 0x00, NULL);
	io_in(0x3f7, 1, "below COM1: 0x3f0-0x3f7");
	io_out(0x80, 1, 0xee, "POST code");
	io_in(0x80, 1, "POST code");
	io_in(0x60, 1, "keyboard data");
	int random_ports = 0;
	while (random_ports < 48) {
		seed = seed * 1103515245u + 12345u;
		uint16_t port = (uint16_t)(seed >> 8);
		if (own_port(port))
			continue;
		io_out(port, 1, seed >> 24, NULL);
		io_in(port, 1, NULL);
		random_ports++;
	}
	printf(TAG "io: 48 random ports written and read (seed 0x%x)\n", seed);
	printf(TAG "io %s: %d of %d reads all-ones, %d writes\n", io_ones == io_reads ? "PASS" : "FAIL",
	       io_ones, io_reads, io_writes);
	return io_ones != io_reads;
}

/* ---- vmcall ---- */

static int cmd_vmcall(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* OXEN_OP_VERSION with no argument: a hypercall if it ran. */
		__asm__ volatile("vmcall" : : "a"(0x0100UL), "D"(0UL) : "memory");
		_exit(0);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		printf(TAG "error: fork or wait: %s\n", strerror(errno));
		return 1;
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGILL) {
		printf(TAG "user VMCALL: killed by SIGILL (refused)\n");
		return 0;
	}
	if (WIFSIGNALED(status))
		printf(TAG "user VMCALL: NOT refused as #UD (killed by signal %d)\n", WTERMSIG(status));
	else
		printf(TAG "user VMCALL: NOT refused (exited with %d)\n", WEXITSTATUS(status));
	return 1;
}

/* ---- where ---- */

/* Prints the physical address of the first page of FILE that lies at or
 * above `min` (a domU's own guest-physical range is below its RAM's end, so
 * dom0 picks a page it cannot name as its own). */
static int cmd_where(const char *file, uint64_t min)
{
	int fd = open(file, O_RDONLY);
	off_t size = fd < 0 ? 0 : lseek(fd, 0, SEEK_END);
	if (fd < 0 || size <= 0) {
		fprintf(stderr, "open %s: %s\n", file, fd < 0 ? strerror(errno) : "empty");
		return 1;
	}
	volatile unsigned char *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmap %s: %s\n", file, strerror(errno));
		return 1;
	}
	int pm = open("/proc/self/pagemap", O_RDONLY);
	if (pm < 0) {
		fprintf(stderr, "/proc/self/pagemap: %s\n", strerror(errno));
		return 1;
	}
	for (off_t at = 0; at < size; at += PAGE) {
		(void)p[at];
		uint64_t entry = 0;
		if (pread(pm, &entry, 8, (off_t)(((uintptr_t)p + at) / PAGE * 8)) != 8) {
			fprintf(stderr, "/proc/self/pagemap: %s\n", strerror(errno));
			return 1;
		}
		uint64_t pfn = entry & ((1ULL << 55) - 1);
		if (!(entry >> 63) || !pfn) {
			fprintf(stderr, "%s: page not present or its frame hidden (root needed)\n", file);
			return 1;
		}
		if (pfn * PAGE >= min) {
			printf("0x%" PRIx64 "\n", pfn * PAGE);
			return 0;
		}
	}
	fprintf(stderr, "%s: no page at or above 0x%" PRIx64 "\n", file, min);
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "where") && (argc == 3 || argc == 4))
		return cmd_where(argv[2], argc == 4 ? strtoull(argv[3], NULL, 0) : 0);
	if (!strcmp(argv[1], "mem"))
		return cmd_mem(argc - 1, argv + 1);
	if (!strcmp(argv[1], "msr"))
		return cmd_msr(argc - 1, argv + 1);
	if (!strcmp(argv[1], "io"))
		return cmd_io(argc - 1, argv + 1);
	if (!strcmp(argv[1], "vmcall"))
		return cmd_vmcall();
usage:
	fprintf(stderr, "usage: oxen-domuprobe where FILE [MIN] | mem [-f FILE] [-m DIR] [-t ADDR] [-s MARKER] [-b BITS] [-w]"
			" | msr [-f FILE] | io [-r SEED] | vmcall\n");
	return 2;
}
