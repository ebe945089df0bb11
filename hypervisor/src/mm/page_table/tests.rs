use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// Tables in a hash map keyed by made-up physical addresses, with an optional
/// limit on how many may be allocated.
#[derive(Debug, Default)]
struct FakeMemory {
    tables: HashMap<u64, Box<[u64; ENTRIES_PER_TABLE]>>,
    next: u64,
    limit: Option<usize>,
}

impl FakeMemory {
    fn new() -> Self {
        Self {
            next: 0x10_0000,
            ..Self::default()
        }
    }

    fn with_limit(limit: usize) -> Self {
        Self {
            limit: Some(limit),
            ..Self::new()
        }
    }
}

impl TableMemory for FakeMemory {
    fn alloc_table(&mut self) -> Option<HostPhysAddr> {
        if self.limit.is_some_and(|limit| self.tables.len() >= limit) {
            return None;
        }
        let addr = self.next;
        self.next += KIB4;
        self.tables.insert(addr, Box::new([0; ENTRIES_PER_TABLE]));
        Some(HostPhysAddr::new(addr))
    }

    fn read(&self, table: HostPhysAddr, index: usize) -> u64 {
        self.tables[&table.as_u64()][index]
    }

    fn write(&mut self, table: HostPhysAddr, index: usize, value: u64) {
        self.tables
            .get_mut(&table.as_u64())
            .expect("write to a table never allocated")[index] = value;
    }
}

fn rw() -> MapFlags {
    MapFlags {
        writable: true,
        ..MapFlags::default()
    }
}

fn setup() -> (FakeMemory, PageTable<X86Paging>) {
    let mut mem = FakeMemory::new();
    let table = PageTable::new(&mut mem).unwrap();
    (mem, table)
}

fn hpa(a: u64) -> HostPhysAddr {
    HostPhysAddr::new(a)
}

fn size(s: u64) -> ByteSize {
    ByteSize::new(s)
}

#[test]
fn levels() {
    assert_eq!(Level::Pt.page_size(), KIB4);
    assert_eq!(Level::Pd.page_size(), MIB2);
    assert_eq!(Level::Pdpt.page_size(), GIB);
    assert_eq!(Level::Pml4.page_size(), 512 * GIB);
    let addr = 0xffff_8123_4567_8000u64;
    assert_eq!(Level::Pml4.index(addr), 0x102);
    assert_eq!(Level::Pdpt.index(addr), 0x8d);
    assert_eq!(Level::Pd.index(addr), 0x2b);
    assert_eq!(Level::Pt.index(addr), 0x78);
    assert_eq!(Level::Pt.lower(), None);
    assert_eq!(Level::Pml4.lower(), Some(Level::Pdpt));
}

#[test]
fn x86_entry_bits() {
    // SDM Vol. 3A Table 4-20: a PTE with every attribute.
    let all = MapFlags {
        writable: true,
        executable: true,
        user: true,
        global: true,
        cache_disable: true,
        write_through: true,
        ..MapFlags::default()
    };
    assert_eq!(
        X86Paging::leaf_entry(hpa(0x1234_5000), Level::Pt, all),
        0x1234_511f
    );
    // Default flags: present, XD.
    assert_eq!(
        X86Paging::leaf_entry(hpa(0x20_0000), Level::Pd, MapFlags::default()),
        0x8000_0000_0020_0081
    );
    assert_eq!(X86Paging::table_entry(hpa(0xabc_d000)), 0xabc_d007);
    for flags in [
        all,
        MapFlags::default(),
        rw(),
        MapFlags {
            user: true,
            ..MapFlags::default()
        },
    ] {
        for level in [Level::Pt, Level::Pd, Level::Pdpt] {
            let entry = X86Paging::leaf_entry(hpa(0x4000_0000), level, flags);
            assert_eq!(X86Paging::flags(entry), flags);
            assert!(X86Paging::is_leaf(entry, level));
            assert_eq!(X86Paging::address(entry), hpa(0x4000_0000));
        }
    }
    assert!(!X86Paging::is_leaf(
        X86Paging::table_entry(hpa(0x1000)),
        Level::Pd
    ));
    assert!(!X86Paging::is_present(0x8000_0000_0000_0002));
}

#[test]
fn canonical_ranges() {
    assert!(X86Paging::valid_input_range(0, 0x7fff_ffff_ffff));
    assert!(X86Paging::valid_input_range(
        0xffff_8000_0000_0000,
        u64::MAX
    ));
    assert!(!X86Paging::valid_input_range(
        0x7fff_ffff_f000,
        0xffff_8000_0000_0fff
    ));
    assert!(!X86Paging::valid_input_range(
        0x8000_0000_0000,
        0x8000_0000_0000
    ));
    assert!(!X86Paging::valid_input_range(0x1000, 0));
}

#[test]
fn maps_4k_pages() {
    let (mut mem, mut pt) = setup();
    pt.map(
        &mut mem,
        0x40_1000,
        hpa(0x9000),
        size(3 * KIB4),
        rw(),
        false,
    )
    .unwrap();
    assert_eq!(
        pt.translate(&mem, 0x40_1000),
        Some((hpa(0x9000), rw(), Level::Pt))
    );
    assert_eq!(
        pt.translate(&mem, 0x40_3fff),
        Some((hpa(0xbfff), rw(), Level::Pt))
    );
    assert_eq!(pt.translate(&mem, 0x40_4000), None);
    assert_eq!(pt.translate(&mem, 0x40_0fff), None);
    // PML4, PDPT, PD, PT.
    assert_eq!(mem.tables.len(), 4);
}

#[test]
fn uses_large_pages_when_aligned() {
    let (mut mem, mut pt) = setup();
    // [2M - 4K, 4G + 2M + 4K) → phys at the same offsets + 8G.
    let virt = MIB2 - KIB4;
    let len = 4 * GIB + 2 * KIB4 + MIB2;
    pt.map(&mut mem, virt, hpa(8 * GIB + virt), size(len), rw(), true)
        .unwrap();
    let level = |v: u64| pt.translate(&mem, v).unwrap().2;
    assert_eq!(level(virt), Level::Pt);
    assert_eq!(level(MIB2), Level::Pd);
    assert_eq!(level(GIB - 1), Level::Pd);
    assert_eq!(level(GIB), Level::Pdpt);
    assert_eq!(level(4 * GIB - 1), Level::Pdpt);
    assert_eq!(level(4 * GIB), Level::Pd);
    assert_eq!(level(4 * GIB + MIB2), Level::Pd);
    assert_eq!(level(4 * GIB + 2 * MIB2), Level::Pt);
    assert_eq!(
        pt.translate(&mem, 3 * GIB + 0x1234).unwrap().0,
        hpa(11 * GIB + 0x1234)
    );
    assert_eq!(pt.translate(&mem, virt + len), None);

    // Without allow_1g, 2 MiB pages only.
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0, hpa(0), size(4 * GIB), rw(), false)
        .unwrap();
    assert_eq!(pt.translate(&mem, GIB).unwrap().2, Level::Pd);
    // PML4, PDPT, 4 PDs.
    assert_eq!(mem.tables.len(), 6);

    // Identity map of 512 GiB with 1 GiB pages: two tables.
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0, hpa(0), size(512 * GIB), rw(), true)
        .unwrap();
    assert_eq!(mem.tables.len(), 2);
}

#[test]
fn misaligned_physical_offset_falls_back_to_small_pages() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, MIB2, hpa(MIB2 + KIB4), size(MIB2), rw(), true)
        .unwrap();
    assert_eq!(
        pt.translate(&mem, MIB2).unwrap(),
        (hpa(MIB2 + KIB4), rw(), Level::Pt)
    );
}

#[test]
fn upper_half_and_the_very_top() {
    let (mut mem, mut pt) = setup();
    let kernel = 0xffff_ffff_8000_0000;
    let code = MapFlags {
        executable: true,
        global: true,
        ..MapFlags::default()
    };
    pt.map(&mut mem, kernel, hpa(0), size(2 * GIB), code, true)
        .unwrap();
    assert_eq!(
        pt.translate(&mem, kernel + 0x1234),
        Some((hpa(0x1234), code, Level::Pdpt))
    );
    assert_eq!(
        pt.translate(&mem, u64::MAX),
        Some((hpa(2 * GIB - 1), code, Level::Pdpt))
    );
    assert_eq!(pt.translate(&mem, 0x8000_0000_0000), None);

    let (mut mem, mut pt) = setup();
    pt.map(
        &mut mem,
        u64::MAX - KIB4 + 1,
        hpa(0x5000),
        size(KIB4),
        rw(),
        false,
    )
    .unwrap();
    assert_eq!(pt.translate(&mem, u64::MAX).unwrap().0, hpa(0x5fff));
}

#[test]
fn overlaps_are_refused_and_change_nothing() {
    let (mut mem, mut pt) = setup();
    pt.map(
        &mut mem,
        2 * MIB2 + KIB4,
        hpa(0x1000),
        size(KIB4),
        rw(),
        false,
    )
    .unwrap();
    let tables = mem.tables.len();
    // Same page again.
    assert_eq!(
        pt.map(
            &mut mem,
            2 * MIB2 + KIB4,
            hpa(0x7000),
            size(KIB4),
            rw(),
            false
        ),
        Err(MapError::Overlap {
            virt: 2 * MIB2 + KIB4
        })
    );
    // A larger range that contains it, starting in unmapped space.
    assert_eq!(
        pt.map(&mut mem, 0, hpa(0), size(4 * MIB2), rw(), true),
        Err(MapError::Overlap {
            virt: 2 * MIB2 + KIB4
        })
    );
    assert_eq!(
        pt.translate(&mem, 0),
        None,
        "nothing mapped before the conflict"
    );
    assert_eq!(mem.tables.len(), tables, "no table allocated");

    // A 4 KiB page inside an existing 2 MiB page, and a 1 GiB page over it.
    pt.map(&mut mem, 8 * MIB2, hpa(0), size(MIB2), rw(), false)
        .unwrap();
    assert_eq!(
        pt.map(
            &mut mem,
            8 * MIB2 + 5 * KIB4,
            hpa(0),
            size(KIB4),
            rw(),
            false
        ),
        Err(MapError::Overlap {
            virt: 8 * MIB2 + 5 * KIB4
        })
    );
    assert_eq!(
        pt.map(&mut mem, 0, hpa(0), size(GIB), rw(), true),
        Err(MapError::Overlap {
            virt: 2 * MIB2 + KIB4
        })
    );
    // Neighbours are fine.
    pt.map(&mut mem, 2 * MIB2, hpa(0), size(KIB4), rw(), false)
        .unwrap();
    pt.map(&mut mem, 9 * MIB2, hpa(0), size(MIB2), rw(), false)
        .unwrap();
}

#[test]
fn an_existing_empty_table_is_reused_not_replaced() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0, hpa(0x1000), size(KIB4), rw(), false)
        .unwrap();
    // Unmap by hand: find the PT and clear its entry.
    let pdpt = X86Paging::address(mem.read(pt.root(), 0));
    let pd = X86Paging::address(mem.read(pdpt, 0));
    let table = X86Paging::address(mem.read(pd, 0));
    mem.write(table, 0, 0);
    pt.map(&mut mem, 0, hpa(0), size(MIB2), rw(), true).unwrap();
    assert_eq!(
        pt.translate(&mem, 0x1000).unwrap(),
        (hpa(0x1000), rw(), Level::Pt)
    );
    assert_eq!(mem.tables.len(), 4);
}

#[test]
fn bad_requests() {
    let (mut mem, mut pt) = setup();
    let mut map = |virt, phys, len| pt.map(&mut mem, virt, hpa(phys), size(len), rw(), true);
    assert_eq!(map(0x800, 0, KIB4), Err(MapError::Misaligned));
    assert_eq!(map(0, 0x800, KIB4), Err(MapError::Misaligned));
    assert_eq!(map(0, 0, 100), Err(MapError::Misaligned));
    assert_eq!(
        map(u64::MAX - KIB4 + 1, 0, 2 * KIB4),
        Err(MapError::Overflow)
    );
    assert_eq!(
        map(0, u64::MAX - KIB4 + 1, 2 * KIB4),
        Err(MapError::Overflow)
    );
    assert_eq!(
        map(0, (1 << 52) - KIB4, 2 * KIB4),
        Err(MapError::PhysTooLarge)
    );
    assert_eq!(
        map(0x8000_0000_0000, 0, KIB4),
        Err(MapError::InvalidAddress)
    );
    assert_eq!(
        map(0x7fff_ffff_f000, 0, 2 * KIB4),
        Err(MapError::InvalidAddress)
    );
    assert_eq!(map(0x1000, 0, 0), Ok(()));
    assert_eq!(mem.tables.len(), 1);
    assert_eq!(pt.translate(&mem, 0xffff_0000_0000_0000), None);
}

#[test]
fn out_of_table_memory() {
    let mut mem = FakeMemory::with_limit(0);
    assert_eq!(
        PageTable::<X86Paging>::new(&mut mem).unwrap_err(),
        MapError::OutOfMemory
    );
    let mut mem = FakeMemory::with_limit(3);
    let mut pt = PageTable::<X86Paging>::new(&mut mem).unwrap();
    assert_eq!(
        pt.map(&mut mem, 0, hpa(0), size(KIB4), rw(), false),
        Err(MapError::OutOfMemory)
    );
    // Two tables were enough for a 2 MiB page.
    let mut mem = FakeMemory::with_limit(3);
    let mut pt = PageTable::<X86Paging>::new(&mut mem).unwrap();
    pt.map(&mut mem, 0, hpa(0), size(MIB2), rw(), false)
        .unwrap();
}

#[test]
fn display_and_debug() {
    assert_eq!(
        MapError::Overlap { virt: 0x1000 }.to_string(),
        "address 0x1000 is already mapped"
    );
    for e in [
        MapError::OutOfMemory,
        MapError::Misaligned,
        MapError::Overflow,
        MapError::InvalidAddress,
        MapError::PhysTooLarge,
    ] {
        assert!(e.to_string().len() > 20);
    }
    let (_, pt) = setup();
    assert!(format!("{pt:?}").contains("X86Paging"));
}

// ---- property: random non-overlapping mappings translate back ----

#[derive(Debug, Clone)]
struct Region {
    virt: u64,
    phys: u64,
    len: u64,
}

/// Regions laid out one after another with gaps; each aligned to 4 KiB, 2 MiB
/// or 1 GiB (virtual and physical alike), with sizes kept such that 4 KiB
/// pages stay few.
fn regions() -> impl Strategy<Value = (Vec<Region>, bool)> {
    let one = (
        0usize..3,
        0u64..64,
        0u64..3,
        0u64..3,
        0u64..4,
        1u64..1 << 20,
        0u64..16,
    );
    (
        proptest::collection::vec(one, 1..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(specs, allow_1g, upper)| {
            let mut cursor: u64 = if upper { 0xffff_8000_0000_0000 } else { 0 };
            let mut out = Vec::new();
            for (class, pages, mibs2, gibs, gap_gibs, phys_slot, gap_pages) in specs {
                let align = [KIB4, MIB2, GIB][class];
                let (mibs2, gibs) = if class == 0 {
                    (mibs2.min(1), 0)
                } else {
                    (mibs2, gibs)
                };
                let len = (pages * KIB4 + mibs2 * MIB2 + gibs * GIB).max(KIB4);
                let start = (cursor + gap_gibs * GIB + gap_pages * KIB4).next_multiple_of(align);
                let phys = (phys_slot * align) % (1 << 46);
                out.push(Region {
                    virt: start,
                    phys,
                    len,
                });
                cursor = start + len;
            }
            (out, allow_1g)
        })
}

/// The level a mapping of `region` must use at `addr`: the largest page whose
/// aligned window around `addr` lies inside the region with the same offset
/// on both sides.
fn expected_level(region: &Region, addr: u64, allow_1g: bool) -> Level {
    for level in [Level::Pdpt, Level::Pd] {
        if level == Level::Pdpt && !allow_1g {
            continue;
        }
        let span = level.page_size();
        let window = addr & !(span - 1);
        let inside = window >= region.virt && window - region.virt + span <= region.len;
        if inside && region.virt.wrapping_sub(region.phys).is_multiple_of(span) {
            return level;
        }
    }
    Level::Pt
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_mappings_translate_back(
        (regions, allow_1g) in regions(),
        probes in proptest::collection::vec(any::<prop::sample::Index>(), 8),
    ) {
        let (mut mem, mut pt) = setup();
        for (i, region) in regions.iter().enumerate() {
            let flags = MapFlags { writable: i % 2 == 0, executable: i % 3 == 0, ..MapFlags::default() };
            pt.map(&mut mem, region.virt, hpa(region.phys), size(region.len), flags, allow_1g).unwrap();
        }
        for (i, region) in regions.iter().enumerate() {
            let flags = MapFlags { writable: i % 2 == 0, executable: i % 3 == 0, ..MapFlags::default() };
            let mut addrs = vec![region.virt, region.virt + region.len - 1];
            addrs.extend(probes.iter().map(|p| region.virt + p.index(region.len as usize) as u64));
            for addr in addrs {
                let (phys, got_flags, level) = pt.translate(&mem, addr).unwrap();
                prop_assert_eq!(phys.as_u64(), region.phys + (addr - region.virt));
                prop_assert_eq!(got_flags, flags);
                prop_assert_eq!(level, expected_level(region, addr, allow_1g), "at {:#x}", addr);
            }
            // Just outside, unless a neighbour starts right there.
            let after = region.virt + region.len;
            if !regions.iter().any(|r| r.virt == after) {
                prop_assert_eq!(pt.translate(&mem, after), None);
            }
            // Mapping any page of it again is refused.
            let again = pt.map(&mut mem, region.virt, hpa(0), size(KIB4), flags, allow_1g);
            prop_assert_eq!(again, Err(MapError::Overlap { virt: region.virt }));
        }
    }
}

#[test]
fn repeated_mapping_points_every_page_at_one_frame() {
    let (mut mem, mut pt) = setup();
    let frame = hpa(0x7000);
    // 2 MiB + 8 KiB, 2 MiB aligned: still 4 KiB leaves only.
    let start = 0x4000_0000;
    pt.map_repeated(&mut mem, start, frame, size(0x20_2000), MapFlags::default())
        .unwrap();
    for addr in [start, start + 0x1234, start + 0x1F_F000, start + 0x20_1FFF] {
        let (phys, flags, level) = pt.translate(&mem, addr).unwrap();
        assert_eq!(level, Level::Pt, "at {addr:#x}");
        assert_eq!(phys, hpa(0x7000 + (addr & 0xFFF)), "at {addr:#x}");
        assert!(!flags.writable);
    }
    assert!(pt.translate(&mem, start + 0x20_2000).is_none());
    // Overlaps are refused as for `map`.
    assert_eq!(
        pt.map_repeated(&mut mem, start + 0x1000, frame, size(0x1000), rw()),
        Err(MapError::Overlap {
            virt: start + 0x1000
        })
    );
    assert_eq!(
        pt.map_repeated(&mut mem, start, hpa(0x7001), size(0x1000), rw()),
        Err(MapError::Misaligned)
    );
}

#[test]
fn remap_4k_replaces_one_leaf_and_returns_the_old_one() {
    let (mut mem, mut pt) = setup();
    let ones = hpa(0x7000);
    pt.map_repeated(&mut mem, 0x10_0000, ones, size(0x4000), MapFlags::default())
        .unwrap();
    let (old, old_flags) = pt.remap_4k(&mut mem, 0x10_1000, hpa(0x9000), rw()).unwrap();
    assert_eq!((old, old_flags.writable), (ones, false));
    let (phys, flags, _) = pt.translate(&mem, 0x10_1008).unwrap();
    assert_eq!((phys, flags.writable), (hpa(0x9008), true));
    // Neighbours keep the shared frame.
    assert_eq!(pt.translate(&mem, 0x10_2000).unwrap().0, ones);
    // Put back.
    pt.remap_4k(&mut mem, 0x10_1000, old, old_flags).unwrap();
    assert_eq!(pt.translate(&mem, 0x10_1000).unwrap().0, ones);
    // Not mapped, or mapped by a large page: refused.
    assert_eq!(
        pt.remap_4k(&mut mem, 0x20_0000, ones, rw()),
        Err(MapError::NotA4KiBLeaf { virt: 0x20_0000 })
    );
    pt.map(
        &mut mem,
        0x4000_0000,
        hpa(0x4000_0000),
        size(0x20_0000),
        rw(),
        false,
    )
    .unwrap();
    assert_eq!(
        pt.remap_4k(&mut mem, 0x4000_1000, ones, rw()),
        Err(MapError::NotA4KiBLeaf { virt: 0x4000_1000 })
    );
}
