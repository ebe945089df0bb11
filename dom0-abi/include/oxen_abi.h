/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * oxen_abi.h - the Oxen hypercall ABI, for the dom0 driver.
 *
 * GENERATED from the dom0-abi crate: do not edit. Regenerate with
 *   cargo run -p dom0-abi --features std --bin gen-header
 */
#ifndef OXEN_ABI_H
#define OXEN_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/stddef.h>
#else
#include <stdint.h>
#include <stddef.h>
#endif

/* ---- ABI version ---- */

#define OXEN_ABI_VERSION_MAJOR           1        /* incompatible changes bump this */
#define OXEN_ABI_VERSION_MINOR           3        /* compatible additions bump this */
#define OXEN_PAGE_SIZE                   4096     /* unit of every *_pages field */
#define OXEN_MAX_BUFFER_BYTES            1048576  /* largest buffer any operation accepts */
#define OXEN_HV_VERSION_LEN              32       /* length of oxen_hv_info.version */
#define OXEN_DOMAIN_NAME_LEN             64       /* length of oxen_domain_info.name */
#define OXEN_DOMAIN_NAME_MAX             63       /* longest name OXEN_OP_DOMAIN_CREATE takes (NUL-terminated) */
#define OXEN_DOM0_ID                     0        /* domain id of dom0 */
#define OXEN_CPUID_LEAF                  0x40000000U /* CPUID leaf: EBX, ECX, EDX spell the signature */
#define OXEN_CPUID_SIGNATURE             "OxenOxenOxen" /* 12 bytes, no NUL in CPUID */

/* ---- Operations: VMCALL with the number in RAX, args in RDI, RSI, RDX, R10, R8 ---- */

#define OXEN_OP_VERSION                  0x0100ULL /* negotiate the ABI version; RDI = GPA of struct oxen_version_args */
#define OXEN_OP_HV_INFO                  0x0101ULL /* hypervisor information; RDI = GPA of struct oxen_hv_info, RSI = size */
#define OXEN_OP_LOG_READ                 0x0102ULL /* read the log ring; RDI = GPA of struct oxen_log_read_args */
#define OXEN_OP_DOMAIN_LIST              0x0200ULL /* list domains; RDI = GPA of struct oxen_domain_list_args */
#define OXEN_OP_DOMAIN_INFO              0x0201ULL /* one domain; RDI = domid, RSI = GPA of struct oxen_domain_info */
#define OXEN_OP_DOMAIN_CREATE            0x0300ULL /* 1.1: create a paused domain; RDI = GPA of struct oxen_domain_create_args; returns the domid */
#define OXEN_OP_DOMAIN_DESTROY           0x0301ULL /* 1.1: destroy a domain; RDI = domid */
#define OXEN_OP_DOMAIN_PAUSE             0x0302ULL /* 1.1: pause a domain; RDI = domid */
#define OXEN_OP_DOMAIN_UNPAUSE           0x0303ULL /* 1.1: unpause a domain (the first starts vCPU 0); RDI = domid */
#define OXEN_OP_DOMAIN_SHUTDOWN          0x0304ULL /* 1.1: ask a domain to shut down; RDI = domid, RSI = OXEN_SHUTDOWN_POWEROFF or _REBOOT */
#define OXEN_OP_DOMAIN_COPY_IN           0x0400ULL /* 1.1: copy into a domain that never ran; RDI = domid, RSI = dest GPA, RDX = source GPA, R10 = length; returns bytes copied */
#define OXEN_OP_VCPU_SET_ENTRY           0x0500ULL /* 1.1: vCPU entry state; RDI = domid, RSI = vCPU (0), RDX = GPA of struct oxen_vcpu_entry */
#define OXEN_OP_CONSOLE_READ             0x0600ULL /* 1.1: read console output; RDI = domid, RSI = buffer GPA, RDX = size; returns bytes consumed */
#define OXEN_OP_CONSOLE_WRITE            0x0601ULL /* 1.1: type into the console; RDI = domid, RSI = buffer GPA, RDX = size; returns bytes accepted */
#define OXEN_OP_EVENT_READ               0x0700ULL /* 1.2: read and clear the pending events; RDI = GPA of struct oxen_event_read_args */
#define OXEN_OP_SCHED_GET                0x0800ULL /* 1.3: weight and cap; RDI = domid, RSI = GPA of struct oxen_sched_params */
#define OXEN_OP_SCHED_SET                0x0801ULL /* 1.3: set weight and/or cap; RDI = GPA of struct oxen_sched_params */
#define OXEN_OP_VCPU_LIST                0x0802ULL /* 1.3: list a domain's vCPUs; RDI = GPA of struct oxen_vcpu_list_args; returns records */
#define OXEN_OP_VCPU_SET_AFFINITY        0x0803ULL /* 1.3: hard affinity; RDI = domid, RSI = vCPU, RDX = bitmap of physical CPUs */
/* Wholly reserved operation groups (number = group << 8 | index): */
/*   0x80xx Guest */
/* Groups whose unassigned numbers are reserved for later minor versions:
 * such a number is refused with OXEN_STATUS_NOT_IMPLEMENTED, any other
 * unknown number with OXEN_STATUS_INVALID_OPERATION: */
/*   0x03xx DomainLifecycle */
/*   0x04xx DomainMemory */
/*   0x05xx Vcpu */
/*   0x06xx Console */
/*   0x07xx Event */
/*   0x08xx Sched */
/*   0x80xx Guest */

/* ---- Status codes returned in RAX (>= 0 success, < 0 error) ---- */

#define OXEN_STATUS_OK                   (0LL)    /* success */
#define OXEN_STATUS_NOT_PERMITTED        (-1LL)   /* operation not permitted for this caller */
#define OXEN_STATUS_INVALID_OPERATION    (-2LL)   /* unknown hypercall operation */
#define OXEN_STATUS_INVALID_ARGUMENT     (-3LL)   /* invalid argument */
#define OXEN_STATUS_BAD_ADDRESS          (-4LL)   /* bad guest-physical address */
#define OXEN_STATUS_TOO_BIG              (-5LL)   /* size exceeds the operation's limit */
#define OXEN_STATUS_BUFFER_TOO_SMALL     (-6LL)   /* buffer too small */
#define OXEN_STATUS_NO_SUCH_DOMAIN       (-7LL)   /* no such domain */
#define OXEN_STATUS_NO_MEMORY            (-8LL)   /* hypervisor out of memory */
#define OXEN_STATUS_VERSION_MISMATCH     (-9LL)   /* ABI major version mismatch */
#define OXEN_STATUS_BUSY                 (-10LL)  /* resource busy, try again */
#define OXEN_STATUS_NOT_IMPLEMENTED      (-11LL)  /* operation not implemented by this hypervisor */
#define OXEN_STATUS_BAD_STATE            (-12LL)  /* operation not allowed in the domain's current state */
#define OXEN_STATUS_EXISTS               (-13LL)  /* already exists */

/* ---- Domain states and shutdown reasons ---- */

#define OXEN_DOMAIN_STATE_RUNNING        1        /* Running */
#define OXEN_DOMAIN_STATE_BLOCKED        2        /* Blocked */
#define OXEN_DOMAIN_STATE_PAUSED         3        /* Paused */
#define OXEN_DOMAIN_STATE_SHUTDOWN       4        /* Shutdown */
#define OXEN_DOMAIN_STATE_DYING          5        /* Dying */
#define OXEN_SHUTDOWN_NONE               0        /* None */
#define OXEN_SHUTDOWN_POWEROFF           1        /* Poweroff */
#define OXEN_SHUTDOWN_REBOOT             2        /* Reboot */
#define OXEN_SHUTDOWN_CRASH              3        /* Crash */

/* ---- vCPU entry (OXEN_OP_VCPU_SET_ENTRY) ---- */

#define OXEN_VCPU_MODE_PVH               1        /* Xen PVH boot ABI: 32-bit, paging off, EBX = hvm_start_info */
#define OXEN_VCPU_MODE_LINUX64           2        /* Linux 64-bit boot protocol: long mode, CR3, RSI = boot_params */
#define OXEN_BOOT_VCPU                   0        /* the only vCPU whose entry is set; the others start by INIT/SIPI */
#define OXEN_BOOT_CS                     0x10     /* __BOOT_CS in the boot GDT */
#define OXEN_BOOT_DS                     0x18     /* __BOOT_DS in the boot GDT */

/* ---- Scheduling (1.3): OXEN_OP_SCHED_*, OXEN_OP_VCPU_* ---- */

#define OXEN_WEIGHT_MIN                  1        /* smallest weight */
#define OXEN_WEIGHT_MAX                  65535    /* largest weight */
#define OXEN_WEIGHT_DEFAULT              256      /* weight of a new domain */
#define OXEN_CAP_NONE                    0        /* cap: no cap */
#define OXEN_VCPU_STATE_RUNNING          1        /* Running */
#define OXEN_VCPU_STATE_RUNNABLE         2        /* Runnable */
#define OXEN_VCPU_STATE_BLOCKED          3        /* Blocked */
#define OXEN_VCPU_STATE_PAUSED           4        /* Paused */
#define OXEN_VCPU_STATE_OFFLINE          5        /* Offline */

/* ---- Notification device (1.2): a virtual PCI function dom0's driver binds to ---- */

#define OXEN_NOTIFY_PCI_VENDOR           0x4f58   /* PCI vendor ID: a placeholder, NOT registered with the PCI-SIG */
#define OXEN_NOTIFY_PCI_DEVICE           0x0001   /* PCI device ID */
#define OXEN_NOTIFY_PCI_CLASS            0x0880   /* class 0x08, sub-class 0x80: other system peripheral */

/* ---- Flag bits ---- */

#define OXEN_DOMAIN_FLAG_PRIVILEGED      (1ULL << 0) /* the control domain (dom0) */
#define OXEN_LOG_READ_CLEAR              (1ULL << 0) /* clear the ring after reading */
#define OXEN_VMX_EPT                     (1ULL << 0) /* EPT */
#define OXEN_VMX_EPT_2M                  (1ULL << 1) /* EPT 2 MiB pages */
#define OXEN_VMX_EPT_1G                  (1ULL << 2) /* EPT 1 GiB pages */
#define OXEN_VMX_VPID                    (1ULL << 3) /* VPID */
#define OXEN_VMX_UNRESTRICTED_GUEST      (1ULL << 4) /* unrestricted guest */
#define OXEN_VMX_APIC_REGISTER_VIRT      (1ULL << 5) /* APIC-register virtualization */
#define OXEN_VMX_VIRTUAL_INTR_DELIVERY   (1ULL << 6) /* virtual-interrupt delivery */
#define OXEN_VMX_POSTED_INTERRUPTS       (1ULL << 7) /* posted interrupts */
#define OXEN_VMX_PREEMPTION_TIMER        (1ULL << 8) /* VMX-preemption timer */
#define OXEN_VMX_TPR_SHADOW              (1ULL << 9) /* TPR shadow */
#define OXEN_EVENT_DOMAIN_CREATED        (1ULL << 0) /* a domain was created */
#define OXEN_EVENT_DOMAIN_SHUTDOWN       (1ULL << 1) /* a domain powered off, rebooted or crashed */
#define OXEN_EVENT_DOMAIN_DESTROYED      (1ULL << 2) /* a domain was destroyed */
#define OXEN_EVENT_LOG                   (1ULL << 3) /* a warning or error entered the log ring */
#define OXEN_EVENT_READ_PEEK             (1ULL << 0) /* read the pending events without clearing them */
#define OXEN_EVENT_STATUS_NOTIFY         (1ULL << 0) /* the notification device is bound: poll() wakes on events */
#define OXEN_SCHED_SET_WEIGHT            (1ULL << 0) /* OXEN_OP_SCHED_SET: apply weight (else left unchanged) */
#define OXEN_SCHED_SET_CAP               (1ULL << 1) /* OXEN_OP_SCHED_SET: apply cap (else left unchanged) */

/* ---- Argument and result structures (no padding, little-endian) ---- */

/* Argument of OXEN_OP_VERSION (by guest-physical address in RDI). */
struct oxen_version_args {
    uint16_t caller_major;         /*   0: in: ABI major the caller was built for */
    uint16_t caller_minor;         /*   2: in: ABI minor the caller was built for */
    uint16_t hypervisor_major;     /*   4: out: ABI major of the hypervisor */
    uint16_t hypervisor_minor;     /*   6: out: ABI minor of the hypervisor */
};
_Static_assert(sizeof(struct oxen_version_args) == 8, "struct oxen_version_args must be 8 bytes");
_Static_assert(offsetof(struct oxen_version_args, caller_major) == 0, "oxen_version_args.caller_major at 0");
_Static_assert(offsetof(struct oxen_version_args, caller_minor) == 2, "oxen_version_args.caller_minor at 2");
_Static_assert(offsetof(struct oxen_version_args, hypervisor_major) == 4, "oxen_version_args.hypervisor_major at 4");
_Static_assert(offsetof(struct oxen_version_args, hypervisor_minor) == 6, "oxen_version_args.hypervisor_minor at 6");

/* Result of OXEN_OP_HV_INFO. Memory counts are in 4 KiB pages. */
struct oxen_hv_info {
    uint8_t version[32];           /*   0: version string, UTF-8, NUL-padded */
    uint16_t abi_major;            /*  32: ABI major implemented */
    uint16_t abi_minor;            /*  34: ABI minor implemented */
    uint32_t cpu_count;            /*  36: physical CPUs */
    uint64_t total_pages;          /*  40: pages managed by the hypervisor */
    uint64_t free_pages;           /*  48: pages in the free pool */
    uint64_t dom0_pages;           /*  56: pages given to dom0 */
    uint64_t vmx_features;         /*  64: OXEN_VMX_* bits in use */
    uint64_t tsc_khz;              /*  72: TSC frequency in kHz */
    uint64_t uptime_ns;            /*  80: nanoseconds since boot */
};
_Static_assert(sizeof(struct oxen_hv_info) == 88, "struct oxen_hv_info must be 88 bytes");
_Static_assert(offsetof(struct oxen_hv_info, version) == 0, "oxen_hv_info.version at 0");
_Static_assert(offsetof(struct oxen_hv_info, abi_major) == 32, "oxen_hv_info.abi_major at 32");
_Static_assert(offsetof(struct oxen_hv_info, abi_minor) == 34, "oxen_hv_info.abi_minor at 34");
_Static_assert(offsetof(struct oxen_hv_info, cpu_count) == 36, "oxen_hv_info.cpu_count at 36");
_Static_assert(offsetof(struct oxen_hv_info, total_pages) == 40, "oxen_hv_info.total_pages at 40");
_Static_assert(offsetof(struct oxen_hv_info, free_pages) == 48, "oxen_hv_info.free_pages at 48");
_Static_assert(offsetof(struct oxen_hv_info, dom0_pages) == 56, "oxen_hv_info.dom0_pages at 56");
_Static_assert(offsetof(struct oxen_hv_info, vmx_features) == 64, "oxen_hv_info.vmx_features at 64");
_Static_assert(offsetof(struct oxen_hv_info, tsc_khz) == 72, "oxen_hv_info.tsc_khz at 72");
_Static_assert(offsetof(struct oxen_hv_info, uptime_ns) == 80, "oxen_hv_info.uptime_ns at 80");

/* One domain (OXEN_OP_DOMAIN_INFO, OXEN_OP_DOMAIN_LIST). */
struct oxen_domain_info {
    uint32_t domid;                /*   0: domain id, 0 is dom0 */
    uint32_t state;                /*   4: OXEN_DOMAIN_STATE_* */
    uint32_t flags;                /*   8: OXEN_DOMAIN_FLAG_* bits */
    uint32_t shutdown_reason;      /*  12: OXEN_SHUTDOWN_*, when state is SHUTDOWN */
    uint8_t name[64];              /*  16: name, UTF-8, NUL-padded */
    uint64_t memory_pages;         /*  80: pages allocated */
    uint64_t max_memory_pages;     /*  88: pages the domain may grow to */
    uint32_t vcpus;                /*  96: vCPUs online */
    uint32_t max_vcpus;            /* 100: vCPUs created */
    uint64_t cpu_time_ns;          /* 104: CPU time of all vCPUs, ns */
};
_Static_assert(sizeof(struct oxen_domain_info) == 112, "struct oxen_domain_info must be 112 bytes");
_Static_assert(offsetof(struct oxen_domain_info, domid) == 0, "oxen_domain_info.domid at 0");
_Static_assert(offsetof(struct oxen_domain_info, state) == 4, "oxen_domain_info.state at 4");
_Static_assert(offsetof(struct oxen_domain_info, flags) == 8, "oxen_domain_info.flags at 8");
_Static_assert(offsetof(struct oxen_domain_info, shutdown_reason) == 12, "oxen_domain_info.shutdown_reason at 12");
_Static_assert(offsetof(struct oxen_domain_info, name) == 16, "oxen_domain_info.name at 16");
_Static_assert(offsetof(struct oxen_domain_info, memory_pages) == 80, "oxen_domain_info.memory_pages at 80");
_Static_assert(offsetof(struct oxen_domain_info, max_memory_pages) == 88, "oxen_domain_info.max_memory_pages at 88");
_Static_assert(offsetof(struct oxen_domain_info, vcpus) == 96, "oxen_domain_info.vcpus at 96");
_Static_assert(offsetof(struct oxen_domain_info, max_vcpus) == 100, "oxen_domain_info.max_vcpus at 100");
_Static_assert(offsetof(struct oxen_domain_info, cpu_time_ns) == 104, "oxen_domain_info.cpu_time_ns at 104");

/* Argument of OXEN_OP_DOMAIN_LIST (by guest-physical address in RDI). */
struct oxen_domain_list_args {
    uint64_t buffer_gpa;           /*   0: in: GPA of capacity struct oxen_domain_info */
    uint32_t capacity;             /*   8: in: records the buffer holds */
    uint32_t start_domid;          /*  12: in: smallest domain id to report */
    uint32_t returned;             /*  16: out: records written */
    uint32_t total;                /*  20: out: domains with id >= start_domid */
};
_Static_assert(sizeof(struct oxen_domain_list_args) == 24, "struct oxen_domain_list_args must be 24 bytes");
_Static_assert(offsetof(struct oxen_domain_list_args, buffer_gpa) == 0, "oxen_domain_list_args.buffer_gpa at 0");
_Static_assert(offsetof(struct oxen_domain_list_args, capacity) == 8, "oxen_domain_list_args.capacity at 8");
_Static_assert(offsetof(struct oxen_domain_list_args, start_domid) == 12, "oxen_domain_list_args.start_domid at 12");
_Static_assert(offsetof(struct oxen_domain_list_args, returned) == 16, "oxen_domain_list_args.returned at 16");
_Static_assert(offsetof(struct oxen_domain_list_args, total) == 20, "oxen_domain_list_args.total at 20");

/* Argument of OXEN_OP_LOG_READ (by guest-physical address in RDI). */
struct oxen_log_read_args {
    uint64_t buffer_gpa;           /*   0: in: GPA of the destination buffer */
    uint32_t size;                 /*   8: in: buffer size in bytes */
    uint32_t flags;                /*  12: in: OXEN_LOG_READ_* bits */
    uint32_t returned;             /*  16: out: bytes copied */
    uint32_t dropped;              /*  20: out: bytes lost to ring wrap since the last clear */
};
_Static_assert(sizeof(struct oxen_log_read_args) == 24, "struct oxen_log_read_args must be 24 bytes");
_Static_assert(offsetof(struct oxen_log_read_args, buffer_gpa) == 0, "oxen_log_read_args.buffer_gpa at 0");
_Static_assert(offsetof(struct oxen_log_read_args, size) == 8, "oxen_log_read_args.size at 8");
_Static_assert(offsetof(struct oxen_log_read_args, flags) == 12, "oxen_log_read_args.flags at 12");
_Static_assert(offsetof(struct oxen_log_read_args, returned) == 16, "oxen_log_read_args.returned at 16");
_Static_assert(offsetof(struct oxen_log_read_args, dropped) == 20, "oxen_log_read_args.dropped at 20");

/* Argument of OXEN_OP_DOMAIN_CREATE (by guest-physical address in RDI). */
struct oxen_domain_create_args {
    uint8_t name[64];              /*   0: in: name, UTF-8, NUL-terminated, unique */
    uint64_t memory_pages;         /*  64: in: RAM in 4 KiB pages, not 0 */
    uint32_t vcpus;                /*  72: in: vCPUs, 1 to the physical CPUs */
    uint32_t flags;                /*  76: in: must be 0 */
    uint32_t domid;                /*  80: out: the new domain id (> 0) */
    uint32_t reserved;             /*  84: must be 0 */
};
_Static_assert(sizeof(struct oxen_domain_create_args) == 88, "struct oxen_domain_create_args must be 88 bytes");
_Static_assert(offsetof(struct oxen_domain_create_args, name) == 0, "oxen_domain_create_args.name at 0");
_Static_assert(offsetof(struct oxen_domain_create_args, memory_pages) == 64, "oxen_domain_create_args.memory_pages at 64");
_Static_assert(offsetof(struct oxen_domain_create_args, vcpus) == 72, "oxen_domain_create_args.vcpus at 72");
_Static_assert(offsetof(struct oxen_domain_create_args, flags) == 76, "oxen_domain_create_args.flags at 76");
_Static_assert(offsetof(struct oxen_domain_create_args, domid) == 80, "oxen_domain_create_args.domid at 80");
_Static_assert(offsetof(struct oxen_domain_create_args, reserved) == 84, "oxen_domain_create_args.reserved at 84");

/* Argument of OXEN_OP_VCPU_SET_ENTRY (by guest-physical address in RDX). */
struct oxen_vcpu_entry {
    uint32_t mode;                 /*   0: OXEN_VCPU_MODE_* */
    uint32_t reserved;             /*   4: must be 0 */
    uint64_t rip;                  /*   8: entry point */
    uint64_t rsp;                  /*  16: stack pointer (0: neither protocol needs one) */
    uint64_t rbx;                  /*  24: PVH: hvm_start_info GPA */
    uint64_t rsi;                  /*  32: LINUX64: boot_params GPA */
    uint64_t cr3;                  /*  40: LINUX64: PML4 GPA (identity tables); PVH: 0 */
    uint64_t gdt_base;             /*  48: GDTR base: the boot GDT (0x10 code, 0x18 data) */
    uint32_t gdt_limit;            /*  56: GDTR limit, at most 0xffff */
    uint32_t reserved2;            /*  60: must be 0 */
};
_Static_assert(sizeof(struct oxen_vcpu_entry) == 64, "struct oxen_vcpu_entry must be 64 bytes");
_Static_assert(offsetof(struct oxen_vcpu_entry, mode) == 0, "oxen_vcpu_entry.mode at 0");
_Static_assert(offsetof(struct oxen_vcpu_entry, reserved) == 4, "oxen_vcpu_entry.reserved at 4");
_Static_assert(offsetof(struct oxen_vcpu_entry, rip) == 8, "oxen_vcpu_entry.rip at 8");
_Static_assert(offsetof(struct oxen_vcpu_entry, rsp) == 16, "oxen_vcpu_entry.rsp at 16");
_Static_assert(offsetof(struct oxen_vcpu_entry, rbx) == 24, "oxen_vcpu_entry.rbx at 24");
_Static_assert(offsetof(struct oxen_vcpu_entry, rsi) == 32, "oxen_vcpu_entry.rsi at 32");
_Static_assert(offsetof(struct oxen_vcpu_entry, cr3) == 40, "oxen_vcpu_entry.cr3 at 40");
_Static_assert(offsetof(struct oxen_vcpu_entry, gdt_base) == 48, "oxen_vcpu_entry.gdt_base at 48");
_Static_assert(offsetof(struct oxen_vcpu_entry, gdt_limit) == 56, "oxen_vcpu_entry.gdt_limit at 56");
_Static_assert(offsetof(struct oxen_vcpu_entry, reserved2) == 60, "oxen_vcpu_entry.reserved2 at 60");

/* Argument of OXEN_OP_EVENT_READ (1.2, by guest-physical address in RDI). */
struct oxen_event_read_args {
    uint64_t pending;              /*   0: out: OXEN_EVENT_* bits pending (cleared unless PEEK) */
    uint64_t raised;               /*   8: out: events raised since boot */
    uint64_t interrupts;           /*  16: out: MSIs the notification device sent since boot */
    uint32_t flags;                /*  24: in: OXEN_EVENT_READ_* bits */
    uint32_t reserved;             /*  28: must be 0 */
};
_Static_assert(sizeof(struct oxen_event_read_args) == 32, "struct oxen_event_read_args must be 32 bytes");
_Static_assert(offsetof(struct oxen_event_read_args, pending) == 0, "oxen_event_read_args.pending at 0");
_Static_assert(offsetof(struct oxen_event_read_args, raised) == 8, "oxen_event_read_args.raised at 8");
_Static_assert(offsetof(struct oxen_event_read_args, interrupts) == 16, "oxen_event_read_args.interrupts at 16");
_Static_assert(offsetof(struct oxen_event_read_args, flags) == 24, "oxen_event_read_args.flags at 24");
_Static_assert(offsetof(struct oxen_event_read_args, reserved) == 28, "oxen_event_read_args.reserved at 28");

/* Result of OXEN_OP_SCHED_GET, argument of OXEN_OP_SCHED_SET (1.3). */
struct oxen_sched_params {
    uint32_t domid;                /*   0: domain id, 0 is dom0 */
    uint32_t weight;               /*   4: 1 to 65535 (default 256) */
    uint32_t cap;                  /*   8: percent of one CPU, 0 = none, at most 100 * CPUs */
    uint32_t flags;                /*  12: SET: OXEN_SCHED_SET_* (which to apply); GET: 0 */
};
_Static_assert(sizeof(struct oxen_sched_params) == 16, "struct oxen_sched_params must be 16 bytes");
_Static_assert(offsetof(struct oxen_sched_params, domid) == 0, "oxen_sched_params.domid at 0");
_Static_assert(offsetof(struct oxen_sched_params, weight) == 4, "oxen_sched_params.weight at 4");
_Static_assert(offsetof(struct oxen_sched_params, cap) == 8, "oxen_sched_params.cap at 8");
_Static_assert(offsetof(struct oxen_sched_params, flags) == 12, "oxen_sched_params.flags at 12");

/* One vCPU (OXEN_OP_VCPU_LIST, 1.3). */
struct oxen_vcpu_info {
    uint32_t vcpu;                 /*   0: vCPU index in its domain */
    uint32_t state;                /*   4: OXEN_VCPU_STATE_* */
    uint32_t cpu;                  /*   8: physical CPU it runs on, or last ran on */
    uint32_t reserved;             /*  12: 0 */
    uint64_t cpu_time_ns;          /*  16: CPU time used, ns */
    uint64_t affinity;             /*  24: hard affinity: bit N = physical CPU N */
};
_Static_assert(sizeof(struct oxen_vcpu_info) == 32, "struct oxen_vcpu_info must be 32 bytes");
_Static_assert(offsetof(struct oxen_vcpu_info, vcpu) == 0, "oxen_vcpu_info.vcpu at 0");
_Static_assert(offsetof(struct oxen_vcpu_info, state) == 4, "oxen_vcpu_info.state at 4");
_Static_assert(offsetof(struct oxen_vcpu_info, cpu) == 8, "oxen_vcpu_info.cpu at 8");
_Static_assert(offsetof(struct oxen_vcpu_info, reserved) == 12, "oxen_vcpu_info.reserved at 12");
_Static_assert(offsetof(struct oxen_vcpu_info, cpu_time_ns) == 16, "oxen_vcpu_info.cpu_time_ns at 16");
_Static_assert(offsetof(struct oxen_vcpu_info, affinity) == 24, "oxen_vcpu_info.affinity at 24");

/* Argument of OXEN_OP_VCPU_LIST (by guest-physical address in RDI, 1.3). */
struct oxen_vcpu_list_args {
    uint64_t buffer_gpa;           /*   0: in: GPA of capacity struct oxen_vcpu_info */
    uint32_t domid;                /*   8: in: domain id, 0 is dom0 */
    uint32_t capacity;             /*  12: in: records the buffer holds */
    uint32_t returned;             /*  16: out: records written */
    uint32_t total;                /*  20: out: vCPUs of the domain */
};
_Static_assert(sizeof(struct oxen_vcpu_list_args) == 24, "struct oxen_vcpu_list_args must be 24 bytes");
_Static_assert(offsetof(struct oxen_vcpu_list_args, buffer_gpa) == 0, "oxen_vcpu_list_args.buffer_gpa at 0");
_Static_assert(offsetof(struct oxen_vcpu_list_args, domid) == 8, "oxen_vcpu_list_args.domid at 8");
_Static_assert(offsetof(struct oxen_vcpu_list_args, capacity) == 12, "oxen_vcpu_list_args.capacity at 12");
_Static_assert(offsetof(struct oxen_vcpu_list_args, returned) == 16, "oxen_vcpu_list_args.returned at 16");
_Static_assert(offsetof(struct oxen_vcpu_list_args, total) == 20, "oxen_vcpu_list_args.total at 20");

/* Argument of OXEN_IOCTL_DOMAIN_LIST. */
struct oxen_ioctl_domain_list {
    uint64_t buffer;               /*   0: in: user address of capacity struct oxen_domain_info */
    uint32_t capacity;             /*   8: in: records, at most OXEN_MAX_DOMAIN_LIST_CAPACITY */
    uint32_t start_domid;          /*  12: in: smallest domain id to report */
    uint32_t returned;             /*  16: out: records written */
    uint32_t total;                /*  20: out: domains with id >= start_domid */
};
_Static_assert(sizeof(struct oxen_ioctl_domain_list) == 24, "struct oxen_ioctl_domain_list must be 24 bytes");
_Static_assert(offsetof(struct oxen_ioctl_domain_list, buffer) == 0, "oxen_ioctl_domain_list.buffer at 0");
_Static_assert(offsetof(struct oxen_ioctl_domain_list, capacity) == 8, "oxen_ioctl_domain_list.capacity at 8");
_Static_assert(offsetof(struct oxen_ioctl_domain_list, start_domid) == 12, "oxen_ioctl_domain_list.start_domid at 12");
_Static_assert(offsetof(struct oxen_ioctl_domain_list, returned) == 16, "oxen_ioctl_domain_list.returned at 16");
_Static_assert(offsetof(struct oxen_ioctl_domain_list, total) == 20, "oxen_ioctl_domain_list.total at 20");

/* Argument of OXEN_IOCTL_DOMAIN_INFO. */
struct oxen_ioctl_domain_info {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t reserved;             /*   4: must be 0 */
    struct oxen_domain_info info;  /*   8: out: the domain */
};
_Static_assert(sizeof(struct oxen_ioctl_domain_info) == 120, "struct oxen_ioctl_domain_info must be 120 bytes");
_Static_assert(offsetof(struct oxen_ioctl_domain_info, domid) == 0, "oxen_ioctl_domain_info.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_domain_info, reserved) == 4, "oxen_ioctl_domain_info.reserved at 4");
_Static_assert(offsetof(struct oxen_ioctl_domain_info, info) == 8, "oxen_ioctl_domain_info.info at 8");

/* Argument of OXEN_IOCTL_LOG_READ. */
struct oxen_ioctl_log_read {
    uint64_t buffer;               /*   0: in: user address of the destination buffer */
    uint32_t size;                 /*   8: in: its size, at most OXEN_MAX_BUFFER_BYTES */
    uint32_t flags;                /*  12: in: OXEN_LOG_READ_* bits */
    uint32_t returned;             /*  16: out: bytes copied */
    uint32_t dropped;              /*  20: out: bytes lost to ring wrap since the last clear */
};
_Static_assert(sizeof(struct oxen_ioctl_log_read) == 24, "struct oxen_ioctl_log_read must be 24 bytes");
_Static_assert(offsetof(struct oxen_ioctl_log_read, buffer) == 0, "oxen_ioctl_log_read.buffer at 0");
_Static_assert(offsetof(struct oxen_ioctl_log_read, size) == 8, "oxen_ioctl_log_read.size at 8");
_Static_assert(offsetof(struct oxen_ioctl_log_read, flags) == 12, "oxen_ioctl_log_read.flags at 12");
_Static_assert(offsetof(struct oxen_ioctl_log_read, returned) == 16, "oxen_ioctl_log_read.returned at 16");
_Static_assert(offsetof(struct oxen_ioctl_log_read, dropped) == 20, "oxen_ioctl_log_read.dropped at 20");

/* Argument of OXEN_IOCTL_RAW: registers passed through unchecked. */
struct oxen_ioctl_raw {
    uint64_t op;                   /*   0: in: operation number (RAX) */
    uint64_t arg1;                 /*   8: in: RDI */
    uint64_t arg2;                 /*  16: in: RSI */
    uint64_t arg3;                 /*  24: in: RDX */
    uint64_t arg4;                 /*  32: in: R10 */
    uint64_t arg5;                 /*  40: in: R8 */
    int64_t status;                /*  48: out: RAX after the call */
};
_Static_assert(sizeof(struct oxen_ioctl_raw) == 56, "struct oxen_ioctl_raw must be 56 bytes");
_Static_assert(offsetof(struct oxen_ioctl_raw, op) == 0, "oxen_ioctl_raw.op at 0");
_Static_assert(offsetof(struct oxen_ioctl_raw, arg1) == 8, "oxen_ioctl_raw.arg1 at 8");
_Static_assert(offsetof(struct oxen_ioctl_raw, arg2) == 16, "oxen_ioctl_raw.arg2 at 16");
_Static_assert(offsetof(struct oxen_ioctl_raw, arg3) == 24, "oxen_ioctl_raw.arg3 at 24");
_Static_assert(offsetof(struct oxen_ioctl_raw, arg4) == 32, "oxen_ioctl_raw.arg4 at 32");
_Static_assert(offsetof(struct oxen_ioctl_raw, arg5) == 40, "oxen_ioctl_raw.arg5 at 40");
_Static_assert(offsetof(struct oxen_ioctl_raw, status) == 48, "oxen_ioctl_raw.status at 48");

/* Argument of OXEN_IOCTL_DOMAIN_DESTROY, _PAUSE and _UNPAUSE. */
struct oxen_ioctl_domid {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t reserved;             /*   4: must be 0 */
};
_Static_assert(sizeof(struct oxen_ioctl_domid) == 8, "struct oxen_ioctl_domid must be 8 bytes");
_Static_assert(offsetof(struct oxen_ioctl_domid, domid) == 0, "oxen_ioctl_domid.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_domid, reserved) == 4, "oxen_ioctl_domid.reserved at 4");

/* Argument of OXEN_IOCTL_DOMAIN_SHUTDOWN. */
struct oxen_ioctl_domain_shutdown {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t reason;               /*   4: in: OXEN_SHUTDOWN_POWEROFF or OXEN_SHUTDOWN_REBOOT */
};
_Static_assert(sizeof(struct oxen_ioctl_domain_shutdown) == 8, "struct oxen_ioctl_domain_shutdown must be 8 bytes");
_Static_assert(offsetof(struct oxen_ioctl_domain_shutdown, domid) == 0, "oxen_ioctl_domain_shutdown.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_domain_shutdown, reason) == 4, "oxen_ioctl_domain_shutdown.reason at 4");

/* Argument of OXEN_IOCTL_DOMAIN_COPY_IN. */
struct oxen_ioctl_copy_in {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t reserved;             /*   4: must be 0 */
    uint64_t dest_gpa;             /*   8: in: destination GPA in the domain */
    uint64_t buffer;               /*  16: in: user address of the source */
    uint32_t length;               /*  24: in: bytes, at most OXEN_MAX_BUFFER_BYTES */
    uint32_t copied;               /*  28: out: bytes copied */
};
_Static_assert(sizeof(struct oxen_ioctl_copy_in) == 32, "struct oxen_ioctl_copy_in must be 32 bytes");
_Static_assert(offsetof(struct oxen_ioctl_copy_in, domid) == 0, "oxen_ioctl_copy_in.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_copy_in, reserved) == 4, "oxen_ioctl_copy_in.reserved at 4");
_Static_assert(offsetof(struct oxen_ioctl_copy_in, dest_gpa) == 8, "oxen_ioctl_copy_in.dest_gpa at 8");
_Static_assert(offsetof(struct oxen_ioctl_copy_in, buffer) == 16, "oxen_ioctl_copy_in.buffer at 16");
_Static_assert(offsetof(struct oxen_ioctl_copy_in, length) == 24, "oxen_ioctl_copy_in.length at 24");
_Static_assert(offsetof(struct oxen_ioctl_copy_in, copied) == 28, "oxen_ioctl_copy_in.copied at 28");

/* Argument of OXEN_IOCTL_VCPU_SET_ENTRY. */
struct oxen_ioctl_vcpu_set_entry {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t vcpu;                 /*   4: in: vCPU index (0) */
    struct oxen_vcpu_entry entry;  /*   8: in: the entry state */
};
_Static_assert(sizeof(struct oxen_ioctl_vcpu_set_entry) == 72, "struct oxen_ioctl_vcpu_set_entry must be 72 bytes");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_set_entry, domid) == 0, "oxen_ioctl_vcpu_set_entry.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_set_entry, vcpu) == 4, "oxen_ioctl_vcpu_set_entry.vcpu at 4");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_set_entry, entry) == 8, "oxen_ioctl_vcpu_set_entry.entry at 8");

/* Argument of OXEN_IOCTL_CONSOLE_READ and OXEN_IOCTL_CONSOLE_WRITE. */
struct oxen_ioctl_console {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t size;                 /*   4: in: buffer size, at most OXEN_MAX_BUFFER_BYTES */
    uint64_t buffer;               /*   8: in: user address of the buffer */
    uint32_t returned;             /*  16: out: bytes read, or bytes accepted */
    uint32_t reserved;             /*  20: must be 0 */
};
_Static_assert(sizeof(struct oxen_ioctl_console) == 24, "struct oxen_ioctl_console must be 24 bytes");
_Static_assert(offsetof(struct oxen_ioctl_console, domid) == 0, "oxen_ioctl_console.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_console, size) == 4, "oxen_ioctl_console.size at 4");
_Static_assert(offsetof(struct oxen_ioctl_console, buffer) == 8, "oxen_ioctl_console.buffer at 8");
_Static_assert(offsetof(struct oxen_ioctl_console, returned) == 16, "oxen_ioctl_console.returned at 16");
_Static_assert(offsetof(struct oxen_ioctl_console, reserved) == 20, "oxen_ioctl_console.reserved at 20");

/* Argument of OXEN_IOCTL_EVENT_READ (1.2). */
struct oxen_ioctl_event_read {
    uint64_t pending;              /*   0: out: OXEN_EVENT_* bits pending for this open file */
    uint64_t raised;               /*   8: out: events the hypervisor raised since boot */
    uint64_t interrupts;           /*  16: out: MSIs the notification device sent */
    uint64_t handled;              /*  24: out: notification interrupts the driver handled */
    uint32_t flags;                /*  32: in: OXEN_EVENT_READ_PEEK, or 0 */
    uint32_t status;               /*  36: out: OXEN_EVENT_STATUS_* bits */
};
_Static_assert(sizeof(struct oxen_ioctl_event_read) == 40, "struct oxen_ioctl_event_read must be 40 bytes");
_Static_assert(offsetof(struct oxen_ioctl_event_read, pending) == 0, "oxen_ioctl_event_read.pending at 0");
_Static_assert(offsetof(struct oxen_ioctl_event_read, raised) == 8, "oxen_ioctl_event_read.raised at 8");
_Static_assert(offsetof(struct oxen_ioctl_event_read, interrupts) == 16, "oxen_ioctl_event_read.interrupts at 16");
_Static_assert(offsetof(struct oxen_ioctl_event_read, handled) == 24, "oxen_ioctl_event_read.handled at 24");
_Static_assert(offsetof(struct oxen_ioctl_event_read, flags) == 32, "oxen_ioctl_event_read.flags at 32");
_Static_assert(offsetof(struct oxen_ioctl_event_read, status) == 36, "oxen_ioctl_event_read.status at 36");

/* Argument of OXEN_IOCTL_VCPU_LIST (1.3). */
struct oxen_ioctl_vcpu_list {
    uint64_t buffer;               /*   0: in: user address of capacity struct oxen_vcpu_info */
    uint32_t domid;                /*   8: in: domain id, 0 is dom0 */
    uint32_t capacity;             /*  12: in: records, at most OXEN_MAX_VCPU_LIST_CAPACITY */
    uint32_t returned;             /*  16: out: records written */
    uint32_t total;                /*  20: out: vCPUs of the domain */
};
_Static_assert(sizeof(struct oxen_ioctl_vcpu_list) == 24, "struct oxen_ioctl_vcpu_list must be 24 bytes");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_list, buffer) == 0, "oxen_ioctl_vcpu_list.buffer at 0");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_list, domid) == 8, "oxen_ioctl_vcpu_list.domid at 8");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_list, capacity) == 12, "oxen_ioctl_vcpu_list.capacity at 12");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_list, returned) == 16, "oxen_ioctl_vcpu_list.returned at 16");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_list, total) == 20, "oxen_ioctl_vcpu_list.total at 20");

/* Argument of OXEN_IOCTL_VCPU_SET_AFFINITY (1.3). */
struct oxen_ioctl_vcpu_affinity {
    uint32_t domid;                /*   0: in: domain id */
    uint32_t vcpu;                 /*   4: in: vCPU index */
    uint64_t affinity;             /*   8: in: bit N = physical CPU N */
};
_Static_assert(sizeof(struct oxen_ioctl_vcpu_affinity) == 16, "struct oxen_ioctl_vcpu_affinity must be 16 bytes");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_affinity, domid) == 0, "oxen_ioctl_vcpu_affinity.domid at 0");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_affinity, vcpu) == 4, "oxen_ioctl_vcpu_affinity.vcpu at 4");
_Static_assert(offsetof(struct oxen_ioctl_vcpu_affinity, affinity) == 8, "oxen_ioctl_vcpu_affinity.affinity at 8");

/* ---- /dev/hvctl ioctls (the hvctl driver; Linux _IOC encoding) ---- */

#define OXEN_HVCTL_DEVICE                "/dev/hvctl" /* misc device, mode 0600 */
#define OXEN_IOCTL_MAGIC                 0xde     /* ioctl type byte */
#define OXEN_MAX_DOMAIN_LIST_CAPACITY    9362     /* records per OXEN_IOCTL_DOMAIN_LIST */
#define OXEN_MAX_VCPU_LIST_CAPACITY      32768    /* records per OXEN_IOCTL_VCPU_LIST */
#define OXEN_IOCTL_VERSION               0xc008de00U /* _IOWR(OXEN_IOCTL_MAGIC, 0x00, struct oxen_version_args): OXEN_OP_VERSION; EPROTO on a major mismatch, hypervisor fields filled */
#define OXEN_IOCTL_HV_INFO               0x8058de01U /* _IOR(OXEN_IOCTL_MAGIC, 0x01, struct oxen_hv_info): OXEN_OP_HV_INFO */
#define OXEN_IOCTL_LOG_READ              0xc018de02U /* _IOWR(OXEN_IOCTL_MAGIC, 0x02, struct oxen_ioctl_log_read): OXEN_OP_LOG_READ into a user buffer */
#define OXEN_IOCTL_DOMAIN_LIST           0xc018de03U /* _IOWR(OXEN_IOCTL_MAGIC, 0x03, struct oxen_ioctl_domain_list): OXEN_OP_DOMAIN_LIST into a user array */
#define OXEN_IOCTL_DOMAIN_INFO           0xc078de04U /* _IOWR(OXEN_IOCTL_MAGIC, 0x04, struct oxen_ioctl_domain_info): OXEN_OP_DOMAIN_INFO */
#define OXEN_IOCTL_RAW                   0xc038de05U /* _IOWR(OXEN_IOCTL_MAGIC, 0x05, struct oxen_ioctl_raw): any operation, raw arguments; status out */
#define OXEN_IOCTL_DOMAIN_CREATE         0xc058de06U /* _IOWR(OXEN_IOCTL_MAGIC, 0x06, struct oxen_domain_create_args): OXEN_OP_DOMAIN_CREATE; domid out */
#define OXEN_IOCTL_DOMAIN_DESTROY        0x4008de07U /* _IOW(OXEN_IOCTL_MAGIC, 0x07, struct oxen_ioctl_domid): OXEN_OP_DOMAIN_DESTROY */
#define OXEN_IOCTL_DOMAIN_PAUSE          0x4008de08U /* _IOW(OXEN_IOCTL_MAGIC, 0x08, struct oxen_ioctl_domid): OXEN_OP_DOMAIN_PAUSE */
#define OXEN_IOCTL_DOMAIN_UNPAUSE        0x4008de09U /* _IOW(OXEN_IOCTL_MAGIC, 0x09, struct oxen_ioctl_domid): OXEN_OP_DOMAIN_UNPAUSE */
#define OXEN_IOCTL_DOMAIN_SHUTDOWN       0x4008de0aU /* _IOW(OXEN_IOCTL_MAGIC, 0x0a, struct oxen_ioctl_domain_shutdown): OXEN_OP_DOMAIN_SHUTDOWN */
#define OXEN_IOCTL_DOMAIN_COPY_IN        0xc020de0bU /* _IOWR(OXEN_IOCTL_MAGIC, 0x0b, struct oxen_ioctl_copy_in): OXEN_OP_DOMAIN_COPY_IN from a user buffer */
#define OXEN_IOCTL_VCPU_SET_ENTRY        0x4048de0cU /* _IOW(OXEN_IOCTL_MAGIC, 0x0c, struct oxen_ioctl_vcpu_set_entry): OXEN_OP_VCPU_SET_ENTRY */
#define OXEN_IOCTL_CONSOLE_READ          0xc018de0dU /* _IOWR(OXEN_IOCTL_MAGIC, 0x0d, struct oxen_ioctl_console): OXEN_OP_CONSOLE_READ into a user buffer */
#define OXEN_IOCTL_CONSOLE_WRITE         0xc018de0eU /* _IOWR(OXEN_IOCTL_MAGIC, 0x0e, struct oxen_ioctl_console): OXEN_OP_CONSOLE_WRITE from a user buffer */
#define OXEN_IOCTL_EVENT_READ            0xc028de0fU /* _IOWR(OXEN_IOCTL_MAGIC, 0x0f, struct oxen_ioctl_event_read): this open file's events, gathered with OXEN_OP_EVENT_READ */
#define OXEN_IOCTL_SCHED_GET             0xc010de10U /* _IOWR(OXEN_IOCTL_MAGIC, 0x10, struct oxen_sched_params): OXEN_OP_SCHED_GET of domid */
#define OXEN_IOCTL_SCHED_SET             0x4010de11U /* _IOW(OXEN_IOCTL_MAGIC, 0x11, struct oxen_sched_params): OXEN_OP_SCHED_SET */
#define OXEN_IOCTL_VCPU_LIST             0xc018de12U /* _IOWR(OXEN_IOCTL_MAGIC, 0x12, struct oxen_ioctl_vcpu_list): OXEN_OP_VCPU_LIST into a user array */
#define OXEN_IOCTL_VCPU_SET_AFFINITY     0x4010de13U /* _IOW(OXEN_IOCTL_MAGIC, 0x13, struct oxen_ioctl_vcpu_affinity): OXEN_OP_VCPU_SET_AFFINITY */
#ifdef _IOC
_Static_assert(OXEN_IOCTL_VERSION == _IOWR(OXEN_IOCTL_MAGIC, 0x00, struct oxen_version_args), "OXEN_IOCTL_VERSION");
_Static_assert(OXEN_IOCTL_HV_INFO == _IOR(OXEN_IOCTL_MAGIC, 0x01, struct oxen_hv_info), "OXEN_IOCTL_HV_INFO");
_Static_assert(OXEN_IOCTL_LOG_READ == _IOWR(OXEN_IOCTL_MAGIC, 0x02, struct oxen_ioctl_log_read), "OXEN_IOCTL_LOG_READ");
_Static_assert(OXEN_IOCTL_DOMAIN_LIST == _IOWR(OXEN_IOCTL_MAGIC, 0x03, struct oxen_ioctl_domain_list), "OXEN_IOCTL_DOMAIN_LIST");
_Static_assert(OXEN_IOCTL_DOMAIN_INFO == _IOWR(OXEN_IOCTL_MAGIC, 0x04, struct oxen_ioctl_domain_info), "OXEN_IOCTL_DOMAIN_INFO");
_Static_assert(OXEN_IOCTL_RAW == _IOWR(OXEN_IOCTL_MAGIC, 0x05, struct oxen_ioctl_raw), "OXEN_IOCTL_RAW");
_Static_assert(OXEN_IOCTL_DOMAIN_CREATE == _IOWR(OXEN_IOCTL_MAGIC, 0x06, struct oxen_domain_create_args), "OXEN_IOCTL_DOMAIN_CREATE");
_Static_assert(OXEN_IOCTL_DOMAIN_DESTROY == _IOW(OXEN_IOCTL_MAGIC, 0x07, struct oxen_ioctl_domid), "OXEN_IOCTL_DOMAIN_DESTROY");
_Static_assert(OXEN_IOCTL_DOMAIN_PAUSE == _IOW(OXEN_IOCTL_MAGIC, 0x08, struct oxen_ioctl_domid), "OXEN_IOCTL_DOMAIN_PAUSE");
_Static_assert(OXEN_IOCTL_DOMAIN_UNPAUSE == _IOW(OXEN_IOCTL_MAGIC, 0x09, struct oxen_ioctl_domid), "OXEN_IOCTL_DOMAIN_UNPAUSE");
_Static_assert(OXEN_IOCTL_DOMAIN_SHUTDOWN == _IOW(OXEN_IOCTL_MAGIC, 0x0a, struct oxen_ioctl_domain_shutdown), "OXEN_IOCTL_DOMAIN_SHUTDOWN");
_Static_assert(OXEN_IOCTL_DOMAIN_COPY_IN == _IOWR(OXEN_IOCTL_MAGIC, 0x0b, struct oxen_ioctl_copy_in), "OXEN_IOCTL_DOMAIN_COPY_IN");
_Static_assert(OXEN_IOCTL_VCPU_SET_ENTRY == _IOW(OXEN_IOCTL_MAGIC, 0x0c, struct oxen_ioctl_vcpu_set_entry), "OXEN_IOCTL_VCPU_SET_ENTRY");
_Static_assert(OXEN_IOCTL_CONSOLE_READ == _IOWR(OXEN_IOCTL_MAGIC, 0x0d, struct oxen_ioctl_console), "OXEN_IOCTL_CONSOLE_READ");
_Static_assert(OXEN_IOCTL_CONSOLE_WRITE == _IOWR(OXEN_IOCTL_MAGIC, 0x0e, struct oxen_ioctl_console), "OXEN_IOCTL_CONSOLE_WRITE");
_Static_assert(OXEN_IOCTL_EVENT_READ == _IOWR(OXEN_IOCTL_MAGIC, 0x0f, struct oxen_ioctl_event_read), "OXEN_IOCTL_EVENT_READ");
_Static_assert(OXEN_IOCTL_SCHED_GET == _IOWR(OXEN_IOCTL_MAGIC, 0x10, struct oxen_sched_params), "OXEN_IOCTL_SCHED_GET");
_Static_assert(OXEN_IOCTL_SCHED_SET == _IOW(OXEN_IOCTL_MAGIC, 0x11, struct oxen_sched_params), "OXEN_IOCTL_SCHED_SET");
_Static_assert(OXEN_IOCTL_VCPU_LIST == _IOWR(OXEN_IOCTL_MAGIC, 0x12, struct oxen_ioctl_vcpu_list), "OXEN_IOCTL_VCPU_LIST");
_Static_assert(OXEN_IOCTL_VCPU_SET_AFFINITY == _IOW(OXEN_IOCTL_MAGIC, 0x13, struct oxen_ioctl_vcpu_affinity), "OXEN_IOCTL_VCPU_SET_AFFINITY");
#endif

/* The errno (positive) an ioctl fails with when its hypercall returns
 * status < 0: one per status. Linux x86-64 numbers. */
static inline int oxen_status_errno(int64_t status)
{
    switch (status) {
    case OXEN_STATUS_NOT_PERMITTED: return 1; /* EPERM */
    case OXEN_STATUS_INVALID_OPERATION: return 38; /* ENOSYS */
    case OXEN_STATUS_INVALID_ARGUMENT: return 22; /* EINVAL */
    case OXEN_STATUS_BAD_ADDRESS: return 14; /* EFAULT */
    case OXEN_STATUS_TOO_BIG: return 7; /* E2BIG */
    case OXEN_STATUS_BUFFER_TOO_SMALL: return 105; /* ENOBUFS */
    case OXEN_STATUS_NO_SUCH_DOMAIN: return 3; /* ESRCH */
    case OXEN_STATUS_NO_MEMORY: return 12; /* ENOMEM */
    case OXEN_STATUS_VERSION_MISMATCH: return 71; /* EPROTO */
    case OXEN_STATUS_BUSY: return 16; /* EBUSY */
    case OXEN_STATUS_NOT_IMPLEMENTED: return 95; /* EOPNOTSUPP */
    case OXEN_STATUS_BAD_STATE: return 114; /* EALREADY */
    case OXEN_STATUS_EXISTS: return 17; /* EEXIST */
    default: return 5; /* EIO: a status this ABI version does not define */
    }
}

#endif /* OXEN_ABI_H */
