use dom0_abi::VcpuMode;
use hypervisor::boot::multiboot2::MemoryKind;

use super::*;
use crate::testing::{FAKE_KERNEL_PADDR, fake_bzimage, fake_pvh_vmlinux};

fn request<'a>(kernel: &'a [u8], ramdisk: Option<&'a [u8]>, memory_mib: u64) -> BuildRequest<'a> {
    BuildRequest {
        kernel_path: "/boot/vmlinux",
        kernel,
        ramdisk,
        cmdline: "console=ttyS0 root=/dev/ram0",
        memory_mib,
        vcpus: 2,
    }
}

fn piece<'g>(guest: &'g GuestImage<'_>, what: &str) -> &'g Piece<'g> {
    guest
        .pieces
        .iter()
        .find(|p| p.what == what)
        .unwrap_or_else(|| panic!("no {what} in {:?}", guest.pieces))
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap())
}

#[test]
fn pvh_vmlinux_is_laid_out_with_start_info() {
    let kernel = fake_pvh_vmlinux(&[0x90; 0x3000], 0x1_0000, 0x40);
    let initrd = vec![0xA5u8; 0x2_1000];
    let guest = build(&request(&kernel, Some(&initrd), 128)).unwrap();
    assert_eq!(guest.protocol, BootProtocol::Pvh);
    assert_eq!(guest.memory_pages, 128 * 256);

    // The kernel's bytes at its physical address, borrowed from the file.
    let seg = piece(&guest, "kernel segment");
    assert_eq!(seg.gpa, FAKE_KERNEL_PADDR);
    assert_eq!(seg.bytes.len(), 0x3000);
    assert!(matches!(seg.bytes, Cow::Borrowed(_)));

    // The entry: PVH mode, RIP at the note, EBX at the start info.
    let e = guest.entry;
    assert_eq!(e.mode(), Ok(VcpuMode::Pvh));
    assert_eq!(e.rip, FAKE_KERNEL_PADDR + 0x40);
    assert_eq!(e.validate(), Ok(()));
    let block = piece(&guest, "PVH boot block");
    assert_eq!(e.rbx, block.gpa);
    assert!(
        block.gpa >= 0x1000 && block.gpa < 0x9_F000,
        "{:#x}",
        block.gpa
    );
    assert!(e.gdt_base > block.gpa && e.gdt_limit == 31);

    // hvm_start_info v1 (Xen start_info.h): magic, version, one module
    // (the initrd), the command line, the RSDP, the memory map.
    let si = &block.bytes;
    assert_eq!(u32_at(si, 0), 0x336E_C578);
    assert_eq!(u32_at(si, 4), 1);
    assert_eq!(u32_at(si, 12), 1);
    assert_eq!(u64_at(si, 32), guest.rsdp);
    assert_eq!(guest.rsdp, 0xE_0000);
    let off = |gpa: u64| (gpa - block.gpa) as usize;
    let cmdline = off(u64_at(si, 24));
    assert_eq!(
        &si[cmdline..cmdline + 29],
        b"console=ttyS0 root=/dev/ram0\0"
    );
    let initrd_piece = piece(&guest, "initrd");
    let module = off(u64_at(si, 16));
    assert_eq!(u64_at(si, module), initrd_piece.gpa);
    assert_eq!(u64_at(si, module + 8), 0x2_1000);
    assert!(initrd_piece.gpa.is_multiple_of(4096));
    assert!(initrd_piece.gpa + 0x2_1000 <= 128 << 20);
    let memmap = off(u64_at(si, 40));
    let entries = u32_at(si, 48) as usize;
    assert_eq!(entries, guest.e820.len());
    for (i, e) in guest.e820.iter().enumerate() {
        let at = memmap + 24 * i;
        assert_eq!(u64_at(si, at), e.addr.as_u64());
        assert_eq!(u64_at(si, at + 8), e.size.as_u64());
        assert_eq!(u32_at(si, at + 16), e.kind.as_raw());
    }
}

#[test]
fn memory_map_has_low_ram_acpi_and_high_ram() {
    let kernel = fake_pvh_vmlinux(&[0x90; 64], 0, 0);
    let guest = build(&request(&kernel, None, 64)).unwrap();
    let map: Vec<(u64, u64, MemoryKind)> = guest
        .e820
        .iter()
        .map(|e| (e.addr.as_u64(), e.end(), e.kind))
        .collect();
    assert_eq!(map[0], (0, 0xA_0000, MemoryKind::Usable));
    assert_eq!(
        map.last().unwrap(),
        &(0x10_0000, 64 << 20, MemoryKind::Usable)
    );
    // The ACPI tables are reserved as ACPI (type 3), inside the legacy hole.
    let acpi = piece(&guest, "ACPI tables");
    assert!(map.iter().any(|&(s, e, k)| k == MemoryKind::AcpiReclaimable
        && s <= acpi.gpa
        && acpi.gpa + acpi.bytes.len() as u64 <= e));
    assert_eq!(&acpi.bytes[..8], b"RSD PTR ");
    // Nothing is copied into reserved memory except the ACPI tables.
    for p in &guest.pieces {
        let end = p.gpa + p.bytes.len() as u64;
        let covered = map.iter().any(|&(s, e, k)| {
            s <= p.gpa && end <= e && (k == MemoryKind::Usable || p.what == "ACPI tables")
        });
        assert!(covered, "{p:?} is not in RAM");
    }
}

#[test]
fn bzimage_uses_the_64_bit_protocol() {
    let kernel = fake_bzimage(&[0xCC; 0x4000], 0x80_0000);
    let initrd = vec![7u8; 5000];
    let guest = build(&BuildRequest {
        kernel_path: "/boot/vmlinuz",
        ..request(&kernel, Some(&initrd), 256)
    })
    .unwrap();
    assert_eq!(guest.protocol, BootProtocol::Linux64);
    let e = guest.entry;
    assert_eq!(e.mode(), Ok(VcpuMode::Linux64));
    assert_eq!(e.validate(), Ok(()));
    let pm = piece(&guest, "protected-mode kernel");
    assert_eq!(pm.gpa, FAKE_KERNEL_PADDR);
    assert_eq!(pm.bytes.len(), 0x4000);
    assert_eq!(e.rip, FAKE_KERNEL_PADDR + 0x200);
    let block = piece(&guest, "boot_params block");
    assert_eq!(e.rsi, block.gpa);
    assert!(e.cr3 > block.gpa && e.cr3.is_multiple_of(4096));
    let zp = &block.bytes;
    // boot_params: loader type, the initrd, the RSDP (protocol 2.14+), e820.
    assert_eq!(zp[0x210], 0xFF);
    let initrd_piece = piece(&guest, "initrd");
    assert_eq!(u64::from(u32_at(zp, 0x218)), initrd_piece.gpa);
    assert_eq!(u32_at(zp, 0x21C), 5000);
    assert_eq!(u64_at(zp, 0x70), 0xE_0000);
    assert_eq!(usize::from(zp[0x1E8]), guest.e820.len());
}

#[test]
fn kernel_problems_name_the_file() {
    let err = build(&request(b"#!/bin/sh\necho not a kernel\n", None, 64)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernel /boot/vmlinux: not a Linux kernel: neither an ELF vmlinux nor a bzImage"
    );
    let mut no_note = fake_pvh_vmlinux(&[0x90; 64], 0, 0);
    no_note[64 + 56] = 0; // the PT_NOTE becomes PT_NULL
    let err = build(&request(&no_note, None, 64)).unwrap_err();
    assert!(err.to_string().contains("has no PVH entry note"), "{err}");
    let kernel = fake_pvh_vmlinux(&[0x90; 64], 0, 0);
    let err = build(&request(&kernel[..100], None, 64)).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn memory_too_small_for_the_kernel_or_initrd() {
    // The kernel sits at 16 MiB: 8 MiB of RAM cannot hold it.
    let kernel = fake_pvh_vmlinux(&[0x90; 64], 0x10_0000, 0);
    let err = build(&request(&kernel, None, 8)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernel /boot/vmlinux must be loaded at 0x1000000..0x1100040, which is not all RAM \
         of a domain with memory = 8 (MiB); raise memory"
    );
    let initrd = vec![0u8; 40 << 20];
    let err = build(&request(&kernel, Some(&initrd), 48)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no room for the initrd (40 MiB) in a domain with memory = 48"),
        "{err}"
    );
    let bz = fake_bzimage(&[0xCC; 0x4000], 0x80_0000);
    let err = build(&request(&bz, None, 16)).unwrap_err();
    assert!(err.to_string().contains("raise memory"), "{err}");
}

#[test]
fn memory_above_3_gib_is_refused() {
    let kernel = fake_pvh_vmlinux(&[0x90; 64], 0, 0);
    assert!(build(&request(&kernel, None, 3072)).is_ok());
    let err = build(&request(&kernel, None, 3073)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "memory = 3073 (MiB) is more than a domU can have yet (3072 MiB): RAM above 4 GiB \
         is not supported; lower memory"
    );
}

#[test]
fn command_line_limits() {
    let bz = fake_bzimage(&[0xCC; 0x4000], 0x80_0000);
    let long = "x".repeat(3000);
    let err = build(&BuildRequest {
        cmdline: &long,
        ..request(&bz, None, 64)
    })
    .unwrap_err();
    assert_eq!(
        err,
        BuildError::CmdlineTooLong {
            len: 3000,
            max: 2047
        }
    );
    let err = build(&BuildRequest {
        cmdline: "a\0b",
        ..request(&bz, None, 64)
    })
    .unwrap_err();
    assert_eq!(err, BuildError::CmdlineHasNul);
}

#[test]
fn acpi_tables_list_every_vcpu() {
    let kernel = fake_pvh_vmlinux(&[0x90; 64], 0, 0);
    let one = build(&BuildRequest {
        vcpus: 1,
        ..request(&kernel, None, 64)
    })
    .unwrap();
    let four = build(&BuildRequest {
        vcpus: 4,
        ..request(&kernel, None, 64)
    })
    .unwrap();
    // Each vCPU adds one processor entry to the MADT ("APIC", its length
    // at +4).
    let madt_len = |g: &GuestImage<'_>| {
        let acpi = &piece(g, "ACPI tables").bytes;
        let at = acpi.windows(4).position(|w| w == b"APIC").expect("a MADT");
        u32_at(acpi, at + 4)
    };
    assert_eq!(madt_len(&four) - madt_len(&one), 3 * 8);
}
