use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::mm::addr::ByteSize;
use crate::mm::page_table::{ENTRIES_PER_TABLE, X86Paging};

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// Tables in a hash map keyed by made-up physical addresses.
#[derive(Debug, Default)]
struct FakeTables {
    tables: HashMap<u64, Box<[u64; ENTRIES_PER_TABLE]>>,
    next: u64,
}

impl FakeTables {
    fn new() -> Self {
        Self {
            next: 0x7000_0000_0000,
            ..Self::default()
        }
    }
}

impl TableMemory for FakeTables {
    fn alloc_table(&mut self) -> Option<HostPhysAddr> {
        let addr = self.next;
        self.next += KIB4;
        self.tables.insert(addr, Box::new([0; ENTRIES_PER_TABLE]));
        Some(HostPhysAddr::new(addr))
    }

    fn read(&self, table: HostPhysAddr, index: usize) -> u64 {
        self.tables[&table.as_u64()][index]
    }

    fn write(&mut self, table: HostPhysAddr, index: usize, value: u64) {
        self.tables.get_mut(&table.as_u64()).expect("unknown table")[index] = value;
    }
}

fn hpa(a: u64) -> HostPhysAddr {
    HostPhysAddr::new(a)
}

fn range(start: u64, end: u64) -> PhysRange {
    PhysRange::new(hpa(start), hpa(end))
}

fn setup() -> (FakeTables, PageTable<Ept>) {
    let mut mem = FakeTables::new();
    let pt = PageTable::new(&mut mem).unwrap();
    (mem, pt)
}

const ALL_TYPES: [EptMemoryType; 5] = [
    EptMemoryType::Uncacheable,
    EptMemoryType::WriteCombining,
    EptMemoryType::WriteThrough,
    EptMemoryType::WriteProtected,
    EptMemoryType::WriteBack,
];

const ALL_PERMS: [EptPerms; 4] = [
    EptPerms::Read,
    EptPerms::ReadWrite,
    EptPerms::ReadExecute,
    EptPerms::ReadWriteExecute,
];

#[test]
fn memory_type_encodings() {
    // SDM Vol. 3C §29.3.7 / Vol. 3A Table 12-8.
    let bits: Vec<u8> = ALL_TYPES.iter().map(|t| t.bits()).collect();
    assert_eq!(bits, [0, 1, 4, 5, 6]);
    for t in ALL_TYPES {
        assert_eq!(EptMemoryType::from_bits(t.bits()), Some(t));
    }
    for reserved in [2, 3, 7, 8] {
        assert_eq!(EptMemoryType::from_bits(reserved), None);
    }
    assert_eq!(EptMemoryType::default(), EptMemoryType::WriteBack);
    assert_eq!(MapFlags::default().memory_type, EptMemoryType::WriteBack);
}

#[test]
fn entry_bits() {
    let rwx_wb = EptPerms::ReadWriteExecute.flags(EptMemoryType::WriteBack);
    // 4 KiB RWX WB: R|W|X, user-execute (bit 10), type 6 in bits 5:3.
    assert_eq!(
        Ept::leaf_entry(hpa(0x1234_5000), Level::Pt, rwx_wb),
        0x1234_5437
    );
    // 2 MiB: bit 7 as well.
    assert_eq!(
        Ept::leaf_entry(hpa(0x20_0000), Level::Pd, rwx_wb),
        0x20_04B7
    );
    // 1 GiB read/write UC (MMIO).
    let rw_uc = EptPerms::ReadWrite.flags(EptMemoryType::Uncacheable);
    assert_eq!(
        Ept::leaf_entry(hpa(0x4000_0000), Level::Pdpt, rw_uc),
        0x4000_0083
    );
    // Read-only WC.
    let r_wc = EptPerms::Read.flags(EptMemoryType::WriteCombining);
    assert_eq!(
        Ept::leaf_entry(hpa(0xE000_0000), Level::Pt, r_wc),
        0xE000_0009
    );
    // A table pointer: R|W|X|user-execute, bits 7:3 clear.
    assert_eq!(Ept::table_entry(hpa(0xABC_D000)), 0xABC_D407);
    assert_eq!(Ept::table_entry(hpa(0xABC_D000)) & 0xF8, 0);
}

#[test]
fn legacy_cache_flags_select_memory_types() {
    let uc = MapFlags {
        cache_disable: true,
        ..MapFlags::default()
    };
    let wt = MapFlags {
        write_through: true,
        ..MapFlags::default()
    };
    let mt = |f| (Ept::leaf_entry(hpa(0), Level::Pt, f) >> 3) & 7;
    assert_eq!(mt(uc), 0);
    assert_eq!(mt(wt), 4);
    assert_eq!(mt(MapFlags::default()), 6);
    // x86 paging ignores the memory-type field.
    let x86_uc = MapFlags {
        memory_type: EptMemoryType::Uncacheable,
        ..MapFlags::default()
    };
    assert_eq!(
        X86Paging::leaf_entry(hpa(0), Level::Pt, x86_uc),
        X86Paging::leaf_entry(hpa(0), Level::Pt, MapFlags::default())
    );
}

#[test]
fn flags_round_trip_at_every_level() {
    for t in ALL_TYPES {
        for p in ALL_PERMS {
            let flags = p.flags(t);
            for level in [Level::Pt, Level::Pd, Level::Pdpt] {
                let entry = Ept::leaf_entry(hpa(0x4000_0000), level, flags);
                assert!(Ept::is_present(entry));
                assert!(Ept::is_leaf(entry, level));
                assert_eq!(Ept::flags(entry), flags, "{t:?} {p:?} {level:?}");
                assert_eq!(Ept::address(entry), hpa(0x4000_0000));
            }
        }
    }
}

#[test]
fn presence_and_leaves() {
    assert!(!Ept::is_present(0));
    // Memory type and large-page bits alone do not make an entry present.
    assert!(!Ept::is_present(0x1234_5000 | 0xF8));
    assert!(Ept::is_present(Ept::EXECUTE));
    let table = Ept::table_entry(hpa(0x5000));
    assert!(!Ept::is_leaf(table, Level::Pd));
    assert!(!Ept::is_leaf(table, Level::Pdpt));
    assert!(Ept::is_leaf(table, Level::Pt));
    assert!(!Ept::is_leaf(table | Ept::LARGE_PAGE, Level::Pml4));
}

#[test]
fn input_addresses_stop_at_2_pow_48() {
    assert!(Ept::valid_input_range(0, (1 << 48) - 1));
    assert!(!Ept::valid_input_range(0, 1 << 48));
    assert!(!Ept::valid_input_range(5, 4));
    let (mut mem, mut pt) = setup();
    let err = map_identity(
        &mut pt,
        &mut mem,
        &[(
            range((1 << 48) - KIB4, (1 << 48) + KIB4),
            EptMemoryType::WriteBack,
            EptPerms::Read,
        )],
        true,
    );
    assert_eq!(
        err,
        Err(IdentityMapError {
            index: 0,
            error: MapError::InvalidAddress
        })
    );
}

#[test]
fn eptp_format() {
    // WB (6), walk length 4 (3 << 3), no A/D.
    let eptp = Eptp::new(hpa(0x1234_5000));
    assert_eq!(eptp.as_u64(), 0x1234_501E);
    assert_eq!(eptp.memory_type(), 6);
    assert_eq!(eptp.walk_length(), 4);
    assert!(!eptp.accessed_dirty());
    assert_eq!(eptp.root(), hpa(0x1234_5000));
    let ad = Eptp::with(hpa(0x1234_5000), EptpMemoryType::WriteBack, true);
    assert_eq!(ad.as_u64(), 0x1234_505E);
    assert!(ad.accessed_dirty());
    let uc = Eptp::with(hpa(0x1234_5000), EptpMemoryType::Uncacheable, false);
    assert_eq!(uc.as_u64(), 0x1234_5018);
    let (_, pt) = setup();
    assert_eq!(Eptp::of(&pt).root(), pt.root());
}

/// A dom0-like layout: low RAM, a hole, RAM up to 3 GiB minus a hole for the
/// hypervisor, MMIO below 4 GiB, RAM above 4 GiB.
fn dom0_layout() -> Vec<(PhysRange, EptMemoryType, EptPerms)> {
    use EptMemoryType::{Uncacheable, WriteBack};
    use EptPerms::{ReadWrite, ReadWriteExecute};
    vec![
        (range(0, 0xA_0000), WriteBack, ReadWriteExecute),
        (range(0x10_0000, 0x8000_0000), WriteBack, ReadWriteExecute),
        // 0x8000_0000..0x8040_0000: hypervisor, unmapped.
        (range(0x8040_0000, 0xC000_0000), WriteBack, ReadWriteExecute),
        (range(0xFEC0_0000, 0xFEC0_1000), Uncacheable, ReadWrite),
        (range(0xFEE0_0000, 0xFEE0_1000), Uncacheable, ReadWrite),
        (
            range(0x1_0000_0000, 0x3_0020_0000),
            WriteBack,
            ReadWriteExecute,
        ),
        (
            range(
                0x3_0000_0000 + 3 * MIB2,
                0x3_0000_0000 + 3 * MIB2 + 5 * KIB4,
            ),
            EptMemoryType::WriteCombining,
            ReadWrite,
        ),
    ]
}

#[test]
fn identity_map_uses_large_pages() {
    let (mut mem, mut pt) = setup();
    map_identity(&mut pt, &mut mem, &dom0_layout(), true).unwrap();
    let at = |a: u64| pt.translate(&mem, a);
    let level = |a: u64| at(a).unwrap().2;
    // First 2 MiB: split around the legacy hole, 4 KiB pages.
    assert_eq!(level(0), Level::Pt);
    assert_eq!(level(0x9_F000), Level::Pt);
    assert_eq!(at(0xA_0000), None);
    assert_eq!(at(0xF_F000), None);
    assert_eq!(level(0x10_0000), Level::Pt);
    // 2 MiB .. 1 GiB: 2 MiB pages; 1 GiB .. 2 GiB: one 1 GiB page.
    assert_eq!(level(MIB2), Level::Pd);
    assert_eq!(level(GIB - 1), Level::Pd);
    assert_eq!(level(GIB), Level::Pdpt);
    assert_eq!(level(2 * GIB - 1), Level::Pdpt);
    // The hypervisor's 4 MiB are a hole; the rest of that gigabyte is 2 MiB pages.
    assert_eq!(at(2 * GIB), None);
    assert_eq!(at(2 * GIB + 0x3F_FFFF), None);
    assert_eq!(level(2 * GIB + 0x40_0000), Level::Pd);
    // MMIO pages and the holes around them.
    let (phys, flags, lvl) = at(0xFEE0_0300).unwrap();
    assert_eq!((phys, lvl), (hpa(0xFEE0_0300), Level::Pt));
    assert_eq!(flags, EptPerms::ReadWrite.flags(EptMemoryType::Uncacheable));
    assert_eq!(at(0xFEE0_1000), None);
    assert_eq!(at(0xFEB0_0000), None);
    // 4 GiB .. 12 GiB: 1 GiB pages; the 2 MiB tail: one 2 MiB page.
    assert_eq!(level(4 * GIB), Level::Pdpt);
    assert_eq!(level(12 * GIB - 1), Level::Pdpt);
    assert_eq!(level(12 * GIB), Level::Pd);
    assert_eq!(at(12 * GIB + MIB2), None);
    // The WC range: 4 KiB pages.
    let (_, flags, lvl) = at(12 * GIB + 3 * MIB2 + 0x4FFF).unwrap();
    assert_eq!(lvl, Level::Pt);
    assert_eq!(flags.memory_type, EptMemoryType::WriteCombining);
    assert_eq!(at(12 * GIB + 3 * MIB2 + 0x5000), None);
    // Tables: PML4, PDPT, PDs for GiB 0, 2, 3 and 12, PTs for MiB 0,
    // 0xFEC, 0xFEE and 12 GiB + 6 MiB. 12 GiB of RAM in 13 tables.
    assert_eq!(mem.tables.len(), 1 + 1 + 4 + 4);
}

#[test]
fn identity_map_round_trips() {
    let (mut mem, mut pt) = setup();
    let layout = dom0_layout();
    map_identity(&mut pt, &mut mem, &layout, true).unwrap();
    for &(r, t, p) in &layout {
        let (start, end) = (r.start.as_u64(), r.end.as_u64());
        let step = ((end - start) / 97).max(1);
        let mut addr = start;
        while addr < end {
            let (phys, flags, _) = pt.translate(&mem, addr).unwrap();
            assert_eq!(phys, hpa(addr));
            assert_eq!(flags, p.flags(t));
            addr += step;
        }
        let (phys, _, _) = pt.translate(&mem, end - 1).unwrap();
        assert_eq!(phys, hpa(end - 1));
    }
}

#[test]
fn without_1g_pages_uses_2m_pages() {
    let (mut mem, mut pt) = setup();
    let ram = [(
        range(0, 4 * GIB),
        EptMemoryType::WriteBack,
        EptPerms::ReadWriteExecute,
    )];
    map_identity(&mut pt, &mut mem, &ram, false).unwrap();
    assert_eq!(pt.translate(&mem, GIB).unwrap().2, Level::Pd);
    assert_eq!(pt.translate(&mem, 4 * GIB - 1).unwrap().0, hpa(4 * GIB - 1));
    // PML4, PDPT, four PDs.
    assert_eq!(mem.tables.len(), 6);
    let (mut mem, mut pt) = setup();
    map_identity(&mut pt, &mut mem, &ram, true).unwrap();
    assert_eq!(mem.tables.len(), 2);
}

#[test]
fn identity_map_errors_name_the_range() {
    let (mut mem, mut pt) = setup();
    let wb = EptMemoryType::WriteBack;
    let rw = EptPerms::ReadWrite;
    let bad = [
        (range(0, MIB2), wb, rw),
        (range(MIB2, MIB2), wb, rw), // empty: skipped
        (range(MIB2 + 0x800, 2 * MIB2), wb, rw),
    ];
    assert_eq!(
        map_identity(&mut pt, &mut mem, &bad, true),
        Err(IdentityMapError {
            index: 2,
            error: MapError::Misaligned
        })
    );
    let overlap = [(range(MIB2 - KIB4, MIB2 + KIB4), wb, rw)];
    let err = map_identity(&mut pt, &mut mem, &overlap, true).unwrap_err();
    assert_eq!(err.error, MapError::Overlap { virt: MIB2 - KIB4 });
    assert_eq!(
        err.to_string(),
        "identity range 0: address 0x1ff000 is already mapped"
    );
    // Nothing of the refused range was mapped.
    assert_eq!(pt.translate(&mem, MIB2), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random disjoint ranges (in 4 KiB units, biased to large alignments)
    /// map identically, with their own attributes, and nothing between them.
    #[test]
    fn random_identity_maps_translate_back(
        pieces in prop::collection::vec((0u64..3, 1u64..1200, 0u64..4, 0usize..5, 0usize..4), 1..8),
    ) {
        let mut ranges = Vec::new();
        let mut cursor = 0u64;
        for (gap_kind, len, len_kind, t, p) in pieces {
            let unit = [KIB4, MIB2, GIB][gap_kind as usize];
            let start = (cursor + unit).div_ceil(unit) * unit;
            let len = len * [KIB4, KIB4 * 7, MIB2, MIB2 / 2][len_kind as usize];
            ranges.push((range(start, start + len), ALL_TYPES[t], ALL_PERMS[p]));
            cursor = start + len;
        }
        let (mut mem, mut pt) = setup();
        map_identity(&mut pt, &mut mem, &ranges, true).unwrap();
        let mut previous_end = 0;
        for &(r, t, p) in &ranges {
            let (start, end) = (r.start.as_u64(), r.end.as_u64());
            for addr in [start, start + (end - start) / 2, end - 1] {
                let (phys, flags, level) = pt.translate(&mem, addr).unwrap();
                prop_assert_eq!(phys, hpa(addr));
                prop_assert_eq!(flags, p.flags(t));
                // A leaf never reaches outside its range.
                let page = level.page_size();
                prop_assert!(addr / page * page >= start && (addr / page + 1) * page <= end);
            }
            if start > previous_end {
                prop_assert_eq!(pt.translate(&mem, start - 1), None);
            }
            previous_end = end;
        }
        let _ = ByteSize::ZERO;
    }
}
