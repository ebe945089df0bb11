use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::boot::multiboot2::MemoryKind;
use crate::dom0::fixtures::{self, FixtureNote, Seg};
use crate::mm::addr::HostPhysAddr;

const MIB: u64 = 1 << 20;

fn ram(spans: &[(u64, u64)]) -> Vec<PhysRange> {
    spans
        .iter()
        .map(|&(s, e)| PhysRange::new(HostPhysAddr::new(s), HostPhysAddr::new(e)))
        .collect()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn parses_a_vmlinux() {
    let image = fixtures::vmlinux();
    let k = PvhKernel::parse(&image).unwrap();
    assert_eq!(k.entry(), GuestPhysAddr::new(0x100_0100));
    let segs = k.elf().segments();
    assert_eq!(segs.len(), 2);
    assert_eq!(
        (segs[0].paddr.as_u64(), segs[0].file_size, segs[0].mem_size),
        (0x100_0000, 0x3000, 0x3000)
    );
    assert_eq!(
        (segs[1].paddr.as_u64(), segs[1].file_size, segs[1].mem_size),
        (0x100_4000, 0x800, 0x2_0000)
    );
    assert!(segs[1].file_bytes(&image).iter().all(|&b| b == 0xAB));
    assert_eq!(segs[1].file_bytes(&image).len(), 0x800);
    assert_eq!(k.required_ranges(), ram(&[(0x100_0000, 0x102_4000)]));
    assert_eq!(
        k.load_ranges(),
        [GuestRange::from_start_size(0x100_0000, 0x2_4000).unwrap()]
    );
    let notes: Vec<_> = k.elf().notes().collect();
    assert_eq!(notes.len(), 2);
    assert_eq!(
        (notes[0].name, notes[0].note_type, notes[0].desc),
        (&b"GNU"[..], 3, &[1u8, 2, 3, 4, 5][..])
    );
}

#[test]
fn missing_or_bad_notes() {
    let text = Seg {
        paddr: 0x100_0000,
        data: vec![0; 0x1000],
        mem_size: 0x1000,
    };
    let no_note = fixtures::elf(core::slice::from_ref(&text), &[]);
    assert_eq!(
        PvhKernel::parse(&no_note).unwrap_err(),
        Dom0Error::NoPvhEntry
    );
    let other = fixtures::elf(
        core::slice::from_ref(&text),
        &[FixtureNote {
            name: b"Linux",
            note_type: 18,
            desc: vec![0; 4],
        }],
    );
    assert_eq!(PvhKernel::parse(&other).unwrap_err(), Dom0Error::NoPvhEntry);
    let outside = fixtures::elf(
        core::slice::from_ref(&text),
        &[fixtures::pvh_note(0x200_0000)],
    );
    assert!(matches!(
        PvhKernel::parse(&outside),
        Err(Dom0Error::BadElf { .. })
    ));
    let odd = fixtures::elf(
        core::slice::from_ref(&text),
        &[FixtureNote {
            name: b"Xen",
            note_type: 18,
            desc: vec![0; 3],
        }],
    );
    assert!(matches!(
        PvhKernel::parse(&odd),
        Err(Dom0Error::BadElf { .. })
    ));
    let wide = fixtures::elf(
        &[text],
        &[FixtureNote {
            name: b"Xen",
            note_type: 18,
            desc: 0x100_0010u64.to_le_bytes().to_vec(),
        }],
    );
    assert_eq!(
        PvhKernel::parse(&wide).unwrap().entry().as_u64(),
        0x100_0010
    );
}

#[test]
fn rejects_bad_headers() {
    let good = fixtures::vmlinux();
    let mutate = |off: usize, value: u8| {
        let mut b = good.clone();
        b[off] = value;
        PvhKernel::parse(&b).unwrap_err()
    };
    assert!(matches!(mutate(4, 1), Dom0Error::BadElf { .. })); // ELFCLASS32
    assert!(matches!(mutate(5, 2), Dom0Error::BadElf { .. })); // big-endian
    assert!(matches!(mutate(18, 3), Dom0Error::BadElf { .. })); // EM_386
    assert!(matches!(mutate(16, 3), Dom0Error::BadElf { .. })); // ET_DYN
    assert!(matches!(mutate(54, 32), Dom0Error::BadElf { .. })); // e_phentsize
    assert!(matches!(mutate(39, 0x7F), Dom0Error::Truncated { .. })); // e_phoff past the file
    assert!(matches!(
        PvhKernel::parse(&good[..40]),
        Err(Dom0Error::Truncated { .. })
    ));
    assert!(matches!(
        PvhKernel::parse(&good[..300]),
        Err(Dom0Error::Truncated { .. })
    ));
    // p_filesz > p_memsz in the first program header.
    let mut b = good.clone();
    b[64 + 40..64 + 48].copy_from_slice(&0x10u64.to_le_bytes());
    assert!(matches!(
        PvhKernel::parse(&b),
        Err(Dom0Error::BadElf { .. })
    ));
}

#[test]
fn rejects_overlapping_and_high_segments() {
    let a = Seg {
        paddr: 0x100_0000,
        data: vec![0; 0x100],
        mem_size: 0x2000,
    };
    let b = Seg {
        paddr: 0x100_1000,
        data: vec![0; 0x100],
        mem_size: 0x100,
    };
    let img = fixtures::elf(&[a.clone(), b], &[fixtures::pvh_note(0x100_0000)]);
    assert!(matches!(
        PvhKernel::parse(&img),
        Err(Dom0Error::BadElf { .. })
    ));
    let high = Seg {
        paddr: 0xFFFF_F000,
        data: vec![],
        mem_size: 0x2000,
    };
    let img = fixtures::elf(&[a, high], &[fixtures::pvh_note(0x100_0000)]);
    assert!(matches!(
        PvhKernel::parse(&img),
        Err(Dom0Error::BadElf { .. })
    ));
}

#[test]
fn structure_layouts() {
    let info = StartInfo {
        flags: 0x11,
        nr_modules: 1,
        modlist_paddr: 0x1111,
        cmdline_paddr: 0x2222,
        rsdp_paddr: 0xF_5A20,
        memmap_paddr: 0x3333,
        memmap_entries: 7,
    };
    let b = info.to_bytes();
    assert_eq!(b.len(), 56);
    assert_eq!(&b[0..4], &[0x78, 0xC5, 0x6E, 0x33]);
    assert_eq!(u32_at(&b, 4), 1);
    assert_eq!(u32_at(&b, 8), 0x11);
    assert_eq!(u32_at(&b, 12), 1);
    assert_eq!(u64_at(&b, 16), 0x1111);
    assert_eq!(u64_at(&b, 24), 0x2222);
    assert_eq!(u64_at(&b, 32), 0xF_5A20);
    assert_eq!(u64_at(&b, 40), 0x3333);
    assert_eq!(u32_at(&b, 48), 7);
    assert_eq!(u32_at(&b, 52), 0);

    let m = ModlistEntry {
        paddr: 0x3000_0000,
        size: 0x12_3456,
        cmdline_paddr: 0,
    }
    .to_bytes();
    assert_eq!(
        (u64_at(&m, 0), u64_at(&m, 8), u64_at(&m, 16), u64_at(&m, 24)),
        (0x3000_0000, 0x12_3456, 0, 0)
    );

    let e = E820Entry {
        addr: GuestPhysAddr::new(0x10_0000),
        size: ByteSize::mib(3),
        kind: MemoryKind::AcpiNvs,
    };
    let m = memmap_entry_bytes(&e);
    assert_eq!(
        (u64_at(&m, 0), u64_at(&m, 8), u32_at(&m, 16), u32_at(&m, 20)),
        (0x10_0000, 3 * MIB, 4, 0)
    );
}

fn e820_sample() -> Vec<E820Entry> {
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
            size: ByteSize::mib(255),
            kind: MemoryKind::Usable,
        },
    ]
}

#[test]
fn places_and_builds_the_boot_block() {
    let image = fixtures::vmlinux();
    let k = PvhKernel::parse(&image).unwrap();
    let dom0 = ram(&[(0, 0x9_F000), (0x10_0000, 0x1000_0000)]);
    let cmdline = b"console=ttyS0 quiet";
    let kernel = k.load_ranges();
    let e820 = e820_sample();
    let req = PvhPlacementRequest {
        dom0_ram: &dom0,
        kernel: &kernel,
        memmap_entries: e820.len(),
        cmdline_len: cmdline.len(),
        initrd_size: Some(ByteSize::new(5 * MIB + 3)),
    };
    let layout = place_pvh(&req).unwrap();
    assert_eq!(layout.block.start.as_u64(), 0x1000);
    assert_eq!(layout.block.size().as_u64(), 0x1000);
    let initrd = layout.initrd.unwrap();
    assert_eq!(initrd.start.as_u64(), 0x1000_0000 - 5 * MIB - 0x1000);
    assert_eq!(initrd.size().as_u64(), 5 * MIB + 3);
    assert!(initrd.start.is_aligned(PAGE_SIZE));
    assert!(initrd.end.as_u64() <= 0x1000_0000);

    let block =
        build_pvh_boot_block(&layout, &e820, cmdline, Some(GuestPhysAddr::new(0xF_5A20))).unwrap();
    let off = |a: GuestPhysAddr| (a.as_u64() - layout.block.start.as_u64()) as usize;
    let si = &block[off(layout.start_info)..];
    assert_eq!(u32_at(si, 0), XEN_HVM_START_MAGIC_VALUE);
    assert_eq!(u32_at(si, 12), 1);
    assert_eq!(u64_at(si, 16), layout.modlist.as_u64());
    assert_eq!(u64_at(si, 24), layout.cmdline.as_u64());
    assert_eq!(u64_at(si, 32), 0xF_5A20);
    assert_eq!(u64_at(si, 40), layout.memmap.as_u64());
    assert_eq!(u32_at(si, 48), 3);
    let ml = &block[off(layout.modlist)..];
    assert_eq!(
        (u64_at(ml, 0), u64_at(ml, 8)),
        (initrd.start.as_u64(), 5 * MIB + 3)
    );
    let mm = &block[off(layout.memmap) + 24..];
    assert_eq!(
        (u64_at(mm, 0), u64_at(mm, 8), u32_at(mm, 16)),
        (0x9_F000, 0x6_1000, 2)
    );
    let c = off(layout.cmdline);
    assert_eq!(&block[c..c + cmdline.len() + 1], b"console=ttyS0 quiet\0");
    assert_eq!(
        &block[off(layout.gdt) + 16..off(layout.gdt) + 24],
        &0x00CF_9B00_0000_FFFFu64.to_le_bytes()
    );

    let state = pvh_entry_state(&k, &layout);
    assert_eq!(
        (state.rip, state.rbx),
        (0x100_0100, layout.start_info.as_u64())
    );
    assert_eq!(state.gdtr_base, layout.gdt.as_u64());

    // Mismatched inputs are refused.
    assert!(build_pvh_boot_block(&layout, &e820[..2], cmdline, None).is_err());
    assert!(build_pvh_boot_block(&layout, &e820, b"console=ttyS0\0quiet", None).is_err());
}

#[test]
fn without_initrd_or_low_memory() {
    let dom0 = ram(&[(0x100_0000, 0x400_0000)]);
    let kernel = [GuestRange::from_start_size(0x100_0000, 0x80_0000).unwrap()];
    let req = PvhPlacementRequest {
        dom0_ram: &dom0,
        kernel: &kernel,
        memmap_entries: 128,
        cmdline_len: 3000,
        initrd_size: None,
    };
    let layout = place_pvh(&req).unwrap();
    assert_eq!(layout.block.start.as_u64(), 0x180_0000);
    assert_eq!(layout.block.size().as_u64(), 0x2000);
    assert_eq!(layout.initrd, None);
    let e820: Vec<E820Entry> = (0..128u64)
        .map(|i| E820Entry {
            addr: GuestPhysAddr::new(i << 20),
            size: ByteSize::mib(1),
            kind: MemoryKind::Reserved,
        })
        .collect();
    let block = build_pvh_boot_block(&layout, &e820, &[b'x'; 3000], None).unwrap();
    assert_eq!((u32_at(&block, 12), u64_at(&block, 16)), (0, 0));
}

#[test]
fn no_room_is_an_error() {
    let dom0 = ram(&[(0x100_0000, 0x180_0000)]);
    let kernel = [GuestRange::from_start_size(0x100_0000, 0x80_0000).unwrap()];
    let req = PvhPlacementRequest {
        dom0_ram: &dom0,
        kernel: &kernel,
        memmap_entries: 3,
        cmdline_len: 10,
        initrd_size: None,
    };
    assert!(matches!(
        place_pvh(&req),
        Err(Dom0Error::NoRoom {
            what: "PVH start info block",
            ..
        })
    ));
    let dom0 = ram(&[(0x1000, 0x2000), (0x100_0000, 0x180_0000)]);
    let req = PvhPlacementRequest {
        initrd_size: Some(ByteSize::mib(1)),
        dom0_ram: &dom0,
        ..req
    };
    assert!(matches!(
        place_pvh(&req),
        Err(Dom0Error::NoRoom { what: "initrd", .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = PvhKernel::parse(&bytes);
    }

    /// A valid image with bytes flipped and the tail cut never panics, and
    /// whatever parses keeps its segments inside the file.
    #[test]
    fn mutated_images_never_panic(
        flips in proptest::collection::vec((0usize..0x4000, any::<u8>()), 0..12),
        cut in 0usize..0x4000,
    ) {
        let mut image = fixtures::vmlinux();
        for (at, v) in flips {
            let len = image.len();
            image[at % len] = v;
        }
        image.truncate(cut.max(1).min(image.len()));
        if let Ok(k) = PvhKernel::parse(&image) {
            for s in k.elf().segments() {
                prop_assert_eq!(s.file_bytes(&image).len() as u64, s.file_size);
                prop_assert!(s.file_size <= s.mem_size);
            }
            let e = k.entry();
            prop_assert!(k.load_ranges().iter().any(|r| r.start <= e && e < r.end));
        }
    }

    /// Placement keeps everything in dom0's RAM, apart, and off the kernel.
    #[test]
    fn placement_is_disjoint(
        low_end in 0u64..0xA0,
        high_mib in 17u64..64,
        entries in 1usize..128,
        cmdline_len in 0usize..5000,
        initrd in proptest::option::of(1u64..(8 * MIB)),
    ) {
        let mut spans = vec![(0x10_0000, high_mib * MIB)];
        if low_end > 1 {
            spans.insert(0, (0, low_end << 12));
        }
        let dom0 = ram(&spans);
        let kernel = [GuestRange::from_start_size(0x100_0000, 0x40_0000).unwrap()];
        let req = PvhPlacementRequest {
            dom0_ram: &dom0, kernel: &kernel, memmap_entries: entries, cmdline_len,
            initrd_size: initrd.map(ByteSize::new),
        };
        let Ok(layout) = place_pvh(&req) else { return Ok(()); };
        let mut pieces = vec![layout.block];
        pieces.extend(layout.initrd);
        for p in &pieces {
            prop_assert!(dom0.iter().any(|r| r.start.as_u64() <= p.start.as_u64() && p.end.as_u64() <= r.end.as_u64()));
            prop_assert!(!p.overlaps(&kernel[0]));
            prop_assert!(p.start.as_u64() >= 0x1000);
        }
        if let Some(i) = layout.initrd {
            prop_assert!(!i.overlaps(&layout.block));
        }
        prop_assert!(layout.block.end.as_u64() <= 1 << 30);
        let used = layout.cmdline.as_u64() + cmdline_len as u64 + 1;
        prop_assert!(used <= layout.block.end.as_u64());
    }
}
