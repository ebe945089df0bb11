//! Format detection, error messages, and the whole builder sequence on a
//! synthetic machine.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::bzimage::{self, BzImage, BzPlacementRequest};
use super::fixtures::{self, BzFields};
use super::memory::{dom0_e820, plan_dom0_memory};
use super::page_tables::IdentityPageSize;
use super::pvh::{self, PvhKernel, PvhPlacementRequest};
use super::*;
use crate::boot::multiboot2::{MemoryKind, MemoryRegion};
use crate::cmdline::Dom0Mem;

#[test]
fn detects_formats() {
    assert_eq!(
        KernelFormat::detect(&fixtures::vmlinux()),
        Ok(KernelFormat::ElfVmlinux)
    );
    assert_eq!(
        KernelFormat::detect(&fixtures::bzimage(&BzFields::default())),
        Ok(KernelFormat::BzImage)
    );
    assert_eq!(
        KernelFormat::detect(b""),
        Err(Dom0Error::UnknownKernelFormat)
    );
    assert_eq!(
        KernelFormat::detect(&[0u8; 4096]),
        Err(Dom0Error::UnknownKernelFormat)
    );
    // A gzip file (an initrd given first by mistake).
    assert_eq!(
        KernelFormat::detect(&[0x1F, 0x8B, 8, 0, 0, 0]),
        Err(Dom0Error::UnknownKernelFormat)
    );
}

#[test]
fn messages_say_what_to_do() {
    let unknown = Dom0Error::UnknownKernelFormat.to_string();
    assert!(
        unknown.starts_with(
            "dom0 kernel module is neither an ELF vmlinux with a PVH note nor a bzImage"
        )
    );
    assert!(Dom0Error::NoPvhEntry.to_string().contains("CONFIG_PVH=y"));
    assert!(
        Dom0Error::BzImageTooOld { version: 0x020A }
            .to_string()
            .contains("protocol 2.10")
    );
    assert!(
        Dom0Error::CmdlineTooLong {
            len: 3000,
            max: 2047
        }
        .to_string()
        .contains("at most 2047")
    );
    let no_room = Dom0Error::NoRoom {
        what: "initrd",
        size: ByteSize::mib(30),
    }
    .to_string();
    assert_eq!(
        no_room,
        "no room in dom0's memory for the initrd (30 MiB); raise dom0_mem="
    );
    assert!(
        Dom0Error::Truncated {
            what: "ELF header",
            file_len: 12
        }
        .to_string()
        .contains("12 bytes")
    );
}

#[test]
fn guest_range_conversions() {
    let g = GuestRange::from_start_size(0x1000, 0x2000).unwrap();
    let h = g.identity_host();
    assert_eq!((h.start.as_u64(), h.end.as_u64()), (0x1000, 0x3000));
    assert_eq!(GuestRange::from_identity_host(&h), g);
    assert_eq!(GuestRange::from_start_size(u64::MAX, 2), None);
}

fn machine() -> Vec<MemoryRegion> {
    let r = |s: u64, e: u64, kind| MemoryRegion {
        range: PhysRange::new(HostPhysAddr::new(s), HostPhysAddr::new(e)),
        kind,
    };
    vec![
        r(0, 0x9_FC00, MemoryKind::Usable),
        r(0xF_0000, 0x10_0000, MemoryKind::Reserved),
        r(0x10_0000, 0x3FFE_0000, MemoryKind::Usable),
        r(0x3FFE_0000, 0x4000_0000, MemoryKind::AcpiReclaimable),
    ]
}

fn hypervisor() -> Vec<PhysRange> {
    // Image at 2 MiB, the kernel module high, the initrd module above it.
    [
        (0x20_0000, 0x60_0000),
        (0x3000_0000, 0x3100_0000),
        (0x3100_0000, 0x3200_0000),
    ]
    .iter()
    .map(|&(s, e)| PhysRange::new(HostPhysAddr::new(s), HostPhysAddr::new(e)))
    .collect()
}

/// The sequence the hypervisor runs, for a PVH kernel.
#[test]
fn pvh_end_to_end() {
    let image = fixtures::vmlinux();
    assert_eq!(KernelFormat::detect(&image), Ok(KernelFormat::ElfVmlinux));
    let kernel = PvhKernel::parse(&image).unwrap();
    let dom0_mem = Some(Dom0Mem {
        size: ByteSize::mib(256),
        max: None,
    });
    let mem = plan_dom0_memory(
        &machine(),
        &hypervisor(),
        dom0_mem,
        &kernel.required_ranges(),
    )
    .unwrap();
    assert_eq!(mem.granted(), ByteSize::mib(256));
    let e820 = dom0_e820(&machine(), &mem).unwrap();
    let cmdline = b"console=ttyS0 dom0";
    let load = kernel.load_ranges();
    let req = PvhPlacementRequest {
        dom0_ram: mem.ranges(),
        kernel: &load,
        memmap_entries: e820.len(),
        cmdline_len: cmdline.len(),
        initrd_size: Some(ByteSize::mib(16)),
    };
    let layout = pvh::place_pvh(&req).unwrap();
    for piece in [layout.block, layout.initrd.unwrap()].iter().chain(&load) {
        assert!(mem.contains(&piece.identity_host()), "{piece:?}");
        assert!(
            !hypervisor()
                .iter()
                .any(|h| h.overlaps(&piece.identity_host()))
        );
    }
    let block = pvh::build_pvh_boot_block(&layout, &e820, cmdline, None).unwrap();
    assert_eq!(block.len() as u64, layout.block.size().as_u64());
    let state = pvh::pvh_entry_state(&kernel, &layout);
    assert_eq!(state.rbx, layout.start_info.as_u64());
}

/// The same for a bzImage.
#[test]
fn bzimage_end_to_end() {
    let image = fixtures::bzimage(&BzFields::default());
    assert_eq!(KernelFormat::detect(&image), Ok(KernelFormat::BzImage));
    let bz = BzImage::parse(&image).unwrap();
    let required: Vec<PhysRange> = bz.required_range().into_iter().collect();
    let mem = plan_dom0_memory(&machine(), &hypervisor(), None, &required).unwrap();
    assert_eq!(mem.granted(), ByteSize::mib(512));
    let e820 = dom0_e820(&machine(), &mem).unwrap();
    let req = BzPlacementRequest {
        dom0_ram: mem.ranges(),
        cmdline_len: 5,
        initrd_size: Some(ByteSize::mib(16)),
        page_size: IdentityPageSize::Size2MiB,
    };
    let layout = bzimage::place_bzimage(&bz, &req).unwrap();
    for piece in [layout.kernel, layout.block, layout.initrd.unwrap()] {
        assert!(mem.contains(&piece.identity_host()), "{piece:?}");
    }
    let block = bzimage::build_bz_boot_block(&bz, &layout, &e820, b"quiet", None).unwrap();
    assert_eq!(block[0x1E8] as usize, e820.len());
    assert_eq!(
        bzimage::bz_entry_state(&layout).rip,
        layout.kernel.start.as_u64() + 0x200
    );
}

proptest! {
    #[test]
    fn detect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = KernelFormat::detect(&bytes);
    }
}
