use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::boot::multiboot2::MemoryKind;
use crate::dom0::fixtures::{self, BzFields};
use crate::mm::addr::HostPhysAddr;

const MIB: u64 = 1 << 20;

fn ram(spans: &[(u64, u64)]) -> Vec<PhysRange> {
    spans
        .iter()
        .map(|&(s, e)| PhysRange::new(HostPhysAddr::new(s), HostPhysAddr::new(e)))
        .collect()
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn parse_with(f: BzFields) -> Result<(), Dom0Error> {
    let image = fixtures::bzimage(&f);
    BzImage::parse(&image).map(|_| ())
}

#[test]
fn parses_the_header() {
    let image = fixtures::bzimage(&BzFields::default());
    let bz = BzImage::parse(&image).unwrap();
    assert_eq!(bz.version, 0x020F);
    assert_eq!(bz.kernel_offset, 5 * 512);
    assert_eq!(bz.protected_mode_kernel().len(), 0x4000);
    assert_eq!(bz.protected_mode_kernel()[1], 1);
    assert_eq!(
        (bz.kernel_alignment, bz.relocatable, bz.cmdline_size),
        (0x20_0000, true, 2047)
    );
    assert_eq!(
        (bz.pref_address, bz.init_size, bz.header_end),
        (0x100_0000, 0x80_0000, 0x26C)
    );
    assert_eq!(bz.required_range(), None);
    // setup_sects 0 means 4.
    let image = fixtures::bzimage(&BzFields {
        setup_sects: 0,
        ..BzFields::default()
    });
    assert_eq!(BzImage::parse(&image).unwrap().kernel_offset, 5 * 512);
}

#[test]
fn rejects_what_cannot_boot() {
    assert_eq!(
        parse_with(BzFields {
            version: 0x020B,
            ..BzFields::default()
        }),
        Err(Dom0Error::BzImageTooOld { version: 0x020B })
    );
    assert!(matches!(
        parse_with(BzFields {
            xloadflags: 0,
            ..BzFields::default()
        }),
        Err(Dom0Error::BadBzImage { .. })
    ));
    assert!(matches!(
        parse_with(BzFields {
            loadflags: 0,
            ..BzFields::default()
        }),
        Err(Dom0Error::BadBzImage { .. })
    ));
    assert!(matches!(
        parse_with(BzFields {
            kernel_alignment: 0x30_0000,
            ..BzFields::default()
        }),
        Err(Dom0Error::BadBzImage { .. })
    ));
    assert!(matches!(
        parse_with(BzFields {
            init_size: 0x1000,
            ..BzFields::default()
        }),
        Err(Dom0Error::BadBzImage { .. })
    ));
    assert!(matches!(
        parse_with(BzFields {
            kernel_len: 0,
            ..BzFields::default()
        }),
        Err(Dom0Error::Truncated { .. })
    ));
    let image = fixtures::bzimage(&BzFields::default());
    assert!(matches!(
        BzImage::parse(&image[..0x230]),
        Err(Dom0Error::Truncated { .. })
    ));
    let mut bad_jump = image.clone();
    bad_jump[0x201] = 0xA0; // header would run into edd_mbr_sig_buffer
    assert!(matches!(
        BzImage::parse(&bad_jump),
        Err(Dom0Error::BadBzImage { .. })
    ));
    assert!(matches!(
        BzImage::parse(&[0u8; 100]),
        Err(Dom0Error::Truncated { .. })
    ));
    assert!(matches!(
        BzImage::parse(&[0u8; 1000]),
        Err(Dom0Error::BadBzImage { .. })
    ));
}

#[test]
fn load_address() {
    let image = fixtures::bzimage(&BzFields::default());
    let bz = BzImage::parse(&image).unwrap();
    // pref_address free: taken.
    let r = bz
        .choose_load_range(&ram(&[(0x10_0000, 0x1000_0000)]))
        .unwrap();
    assert_eq!(
        (r.start.as_u64(), r.size().as_u64()),
        (0x100_0000, 0x80_0000)
    );
    // pref_address taken: the next kernel_alignment boundary above it that
    // fits, even if there is room below (see `choose_load_range`).
    let r = bz
        .choose_load_range(&ram(&[(0x10_0000, 0x110_0000), (0x130_1000, 0x1000_0000)]))
        .unwrap();
    assert_eq!(r.start.as_u64(), 0x140_0000);
    // Nothing free above pref_address.
    assert!(matches!(
        bz.choose_load_range(&ram(&[(0x10_0000, 0x100_0000)])),
        Err(Dom0Error::NoRoom { .. })
    ));
    // Non-relocatable: pref_address or nothing.
    let image = fixtures::bzimage(&BzFields {
        relocatable: false,
        ..BzFields::default()
    });
    let bz = BzImage::parse(&image).unwrap();
    let needed = bz.required_range().unwrap();
    assert_eq!(
        (needed.start.as_u64(), needed.end.as_u64()),
        (0x100_0000, 0x180_0000)
    );
    assert_eq!(
        bz.choose_load_range(&ram(&[(0x140_0000, 0x1000_0000)])),
        Err(Dom0Error::RequiredRangeUnavailable { range: needed })
    );
}

fn e820() -> Vec<E820Entry> {
    vec![
        E820Entry {
            addr: GuestPhysAddr::new(0),
            size: ByteSize::new(0x9_F000),
            kind: MemoryKind::Usable,
        },
        E820Entry {
            addr: GuestPhysAddr::new(0x9_F000),
            size: ByteSize::new(0x6_1000),
            kind: MemoryKind::Reserved,
        },
        E820Entry {
            addr: GuestPhysAddr::new(0x10_0000),
            size: ByteSize::mib(511),
            kind: MemoryKind::Usable,
        },
        E820Entry {
            addr: GuestPhysAddr::new(0x3FFE_0000),
            size: ByteSize::kib(128),
            kind: MemoryKind::AcpiReclaimable,
        },
    ]
}

#[test]
fn zero_page_and_boot_block() {
    let image = fixtures::bzimage(&BzFields::default());
    let bz = BzImage::parse(&image).unwrap();
    let dom0 = ram(&[(0, 0x9_F000), (0x10_0000, 0x2000_0000)]);
    let cmdline = b"root=/dev/ram0 console=ttyS0";
    let req = BzPlacementRequest {
        dom0_ram: &dom0,
        cmdline_len: cmdline.len(),
        initrd_size: Some(ByteSize::mib(20)),
        page_size: IdentityPageSize::Size2MiB,
    };
    let layout = place_bzimage(&bz, &req).unwrap();
    assert_eq!(layout.kernel.start.as_u64(), 0x100_0000);
    assert_eq!(layout.boot_params.as_u64(), 0x1000);
    assert_eq!(layout.gdt.as_u64(), 0x2000);
    assert_eq!(layout.cmdline.as_u64(), 0x2040);
    assert_eq!(layout.page_tables.as_u64(), 0x3000);
    assert_eq!(layout.block.end.as_u64(), 0x3000 + 6 * 0x1000);
    let initrd = layout.initrd.unwrap();
    assert_eq!(
        (initrd.start.as_u64(), initrd.end.as_u64()),
        (0x2000_0000 - 20 * MIB, 0x2000_0000)
    );

    let rsdp = GuestPhysAddr::new(0xF_5A20);
    let map = e820();
    let zp = build_zero_page(&bz, &layout, &map, Some(rsdp)).unwrap();
    // The setup header, copied, then the loader's fields.
    assert_eq!(&zp[0x202..0x206], b"HdrS");
    assert_eq!(&zp[0x264..0x26C], b"handover");
    assert_eq!(zp[0x26C], 0);
    assert_eq!(zp[0x1F1], 4);
    assert_eq!(zp[0x210], 0xFF);
    assert_eq!(zp[0x211], 0x81);
    assert_eq!(u16_at(&zp, 0x224), 0xDE00);
    assert_eq!(u32_at(&zp, 0x228), 0x2040);
    assert_eq!(u32_at(&zp, 0x0C8), 0);
    assert_eq!(u32_at(&zp, 0x218), initrd.start.as_u64() as u32);
    assert_eq!(u32_at(&zp, 0x21C), 20 << 20);
    assert_eq!((u32_at(&zp, 0x0C0), u32_at(&zp, 0x0C4)), (0, 0));
    assert_eq!(u64_at(&zp, 0x070), 0xF_5A20);
    assert_eq!(zp[0x1E8], 4);
    assert_eq!(zp[0x1EF], 0);
    for (i, e) in map.iter().enumerate() {
        let at = 0x2D0 + 20 * i;
        assert_eq!(
            (u64_at(&zp, at), u64_at(&zp, at + 8), u32_at(&zp, at + 16)),
            (e.addr.as_u64(), e.size.as_u64(), e.kind.as_raw())
        );
    }
    assert_eq!(&zp[0x2D0 + 20 * 4..0x2D0 + 20 * 5], &[0u8; 20]);

    let block = build_bz_boot_block(&bz, &layout, &map, cmdline, Some(rsdp)).unwrap();
    assert_eq!(&block[..ZERO_PAGE_SIZE], &zp[..]);
    assert_eq!(
        &block[0x1040..0x1040 + cmdline.len() + 1],
        b"root=/dev/ram0 console=ttyS0\0"
    );
    assert_eq!(u64_at(&block, 0x1010), 0x00AF_9B00_0000_FFFF);
    // PML4[0] points at the PDPT, one page on.
    assert_eq!(u64_at(&block, 0x2000) & !0xFFF, 0x4000);

    let state = bz_entry_state(&layout);
    assert_eq!(
        (state.rip, state.rsi, state.cr3),
        (0x100_0200, 0x1000, 0x3000)
    );
}

#[test]
fn rsdp_only_from_protocol_2_14() {
    let image = fixtures::bzimage(&BzFields {
        version: 0x020D,
        ..BzFields::default()
    });
    let bz = BzImage::parse(&image).unwrap();
    let dom0 = ram(&[(0, 0x9_F000), (0x10_0000, 0x2000_0000)]);
    let req = BzPlacementRequest {
        dom0_ram: &dom0,
        cmdline_len: 0,
        initrd_size: None,
        page_size: IdentityPageSize::Size1GiB,
    };
    let layout = place_bzimage(&bz, &req).unwrap();
    let zp = build_zero_page(&bz, &layout, &e820(), Some(GuestPhysAddr::new(0xF_5A20))).unwrap();
    assert_eq!(u64_at(&zp, 0x070), 0);
    assert_eq!((u32_at(&zp, 0x218), u32_at(&zp, 0x21C)), (0, 0));
    assert_eq!(layout.block.size().as_u64(), 0x2000 + 0x2000);
}

#[test]
fn errors() {
    let image = fixtures::bzimage(&BzFields {
        cmdline_size: 10,
        ..BzFields::default()
    });
    let bz = BzImage::parse(&image).unwrap();
    let dom0 = ram(&[(0x10_0000, 0x2000_0000)]);
    let req = BzPlacementRequest {
        dom0_ram: &dom0,
        cmdline_len: 11,
        initrd_size: None,
        page_size: IdentityPageSize::Size2MiB,
    };
    assert_eq!(
        place_bzimage(&bz, &req),
        Err(Dom0Error::CmdlineTooLong { len: 11, max: 10 })
    );
    let req = BzPlacementRequest {
        cmdline_len: 10,
        ..req
    };
    let layout = place_bzimage(&bz, &req).unwrap();
    // No conventional memory: the block goes low above 1 MiB, off the kernel.
    assert_eq!(layout.block.start.as_u64(), 0x10_0000);
    let many: Vec<E820Entry> = (0..129u64)
        .map(|i| E820Entry {
            addr: GuestPhysAddr::new(i << 12),
            size: ByteSize::new(4096),
            kind: MemoryKind::Reserved,
        })
        .collect();
    assert_eq!(
        build_zero_page(&bz, &layout, &many, None),
        Err(Dom0Error::TooManyE820Entries { count: 129 })
    );
    assert!(build_bz_boot_block(&bz, &layout, &[], b"0123456789x", None).is_err());
    // An initrd larger than what is left.
    let req = BzPlacementRequest {
        initrd_size: Some(ByteSize::mib(600)),
        ..req
    };
    assert!(matches!(
        place_bzimage(&bz, &req),
        Err(Dom0Error::NoRoom { what: "initrd", .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = BzImage::parse(&bytes);
    }

    /// Header fields set to anything never panic parsing, placement or the
    /// zero page; what is placed stays in dom0's RAM and apart.
    #[test]
    fn arbitrary_header_fields(
        fields in proptest::collection::vec((0x1F1usize..0x270, any::<u8>()), 0..24),
        cut in 0usize..0x2000,
        initrd in proptest::option::of(1u64..(64 * MIB)),
        cmdline_len in 0usize..3000,
    ) {
        let mut image = fixtures::bzimage(&BzFields::default());
        for (at, v) in fields {
            image[at] = v;
        }
        image.truncate(cut.max(1).min(image.len()));
        let Ok(bz) = BzImage::parse(&image) else { return Ok(()); };
        prop_assert!(bz.header_end <= 0x290 && bz.kernel_offset < image.len());
        let dom0 = ram(&[(0, 0x9_F000), (0x10_0000, 0x1000_0000)]);
        let req = BzPlacementRequest {
            dom0_ram: &dom0, cmdline_len, initrd_size: initrd.map(ByteSize::new),
            page_size: IdentityPageSize::Size2MiB,
        };
        let Ok(layout) = place_bzimage(&bz, &req) else { return Ok(()); };
        let mut pieces = vec![layout.kernel, layout.block];
        pieces.extend(layout.initrd);
        for (i, p) in pieces.iter().enumerate() {
            prop_assert!(dom0.iter().any(|r| r.start.as_u64() <= p.start.as_u64() && p.end.as_u64() <= r.end.as_u64()));
            prop_assert!(p.end.as_u64() <= IDENTITY_LIMIT);
            for q in &pieces[i + 1..] {
                prop_assert!(!p.overlaps(q));
            }
        }
        prop_assert!(layout.kernel.size().as_u64() >= bz.protected_mode_kernel().len() as u64);
        let block = build_bz_boot_block(&bz, &layout, &e820(), &vec![b'a'; cmdline_len], None).unwrap();
        prop_assert_eq!(block.len() as u64, layout.block.size().as_u64());
    }
}
