use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

const MIB: u64 = 1 << 20;

fn region(start: u64, end: u64, kind: MemoryKind) -> MemoryRegion {
    MemoryRegion {
        range: range(start, end),
        kind,
    }
}

fn range(start: u64, end: u64) -> PhysRange {
    PhysRange::new(HostPhysAddr::new(start), HostPhysAddr::new(end))
}

fn mem(size: u64) -> Option<Dom0Mem> {
    Some(Dom0Mem {
        size: ByteSize::new(size),
        max: None,
    })
}

/// A PC with 1 GiB: BIOS map as SeaBIOS reports it.
fn pc_1g() -> Vec<MemoryRegion> {
    vec![
        region(0, 0x9_FC00, MemoryKind::Usable),
        region(0x9_FC00, 0xA_0000, MemoryKind::Reserved),
        region(0xF_0000, 0x10_0000, MemoryKind::Reserved),
        region(0x10_0000, 0x3FFE_0000, MemoryKind::Usable),
        region(0x3FFE_0000, 0x3FFF_0000, MemoryKind::AcpiReclaimable),
        region(0x3FFF_0000, 0x4000_0000, MemoryKind::AcpiNvs),
        region(0xFFFC_0000, 0x1_0000_0000, MemoryKind::Reserved),
    ]
}

/// The hypervisor image, then the modules.
fn hv_reserved() -> Vec<PhysRange> {
    vec![range(0x10_0000, 0x40_0000), range(0x40_0000, 0x80_0000)]
}

fn e(start: u64, end: u64, kind: MemoryKind) -> E820Entry {
    E820Entry {
        addr: GuestPhysAddr::new(start),
        size: ByteSize::new(end - start),
        kind,
    }
}

#[test]
fn explicit_size_takes_low_memory_first() {
    let plan = plan_dom0_memory(&pc_1g(), &hv_reserved(), mem(256 * MIB), &[]).unwrap();
    assert_eq!(plan.granted(), ByteSize::mib(256));
    assert_eq!(plan.shortfall(), ByteSize::ZERO);
    let low = 0x9_F000;
    assert_eq!(
        plan.ranges(),
        &[range(0, low), range(0x80_0000, 0x80_0000 + 256 * MIB - low)]
    );
}

#[test]
fn e820_of_a_pc() {
    let host = pc_1g();
    let plan = plan_dom0_memory(&host, &hv_reserved(), mem(256 * MIB), &[]).unwrap();
    let map = dom0_e820(&host, &plan).unwrap();
    let ram_end = 0x80_0000 + 256 * MIB - 0x9_F000;
    assert_eq!(
        map,
        vec![
            e(0, 0x9_F000, MemoryKind::Usable),
            // The partial page of low RAM, the EBDA, the legacy hole, the hypervisor.
            e(0x9_F000, 0x80_0000, MemoryKind::Reserved),
            e(0x80_0000, ram_end, MemoryKind::Usable),
            // The free pool and the reserve.
            e(ram_end, 0x3FFE_0000, MemoryKind::Reserved),
            e(0x3FFE_0000, 0x3FFF_0000, MemoryKind::AcpiReclaimable),
            e(0x3FFF_0000, 0x4000_0000, MemoryKind::AcpiNvs),
            e(0xFFFC_0000, 0x1_0000_0000, MemoryKind::Reserved),
        ]
    );
    assert_eq!(
        map[0].to_bytes(),
        [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0xF0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0
        ]
    );
}

#[test]
fn default_rule() {
    assert_eq!(default_dom0_size(ByteSize::mib(968)), ByteSize::mib(512));
    assert_eq!(default_dom0_size(ByteSize::mib(2048)), ByteSize::mib(1024));
    assert_eq!(
        default_dom0_size(ByteSize::mib(24 * 1024)),
        ByteSize::mib(4096)
    );
    assert_eq!(default_dom0_size(ByteSize::mib(100)), ByteSize::mib(100));
    assert_eq!(
        default_dom0_size(ByteSize::new(5 * 4096 + 7)),
        ByteSize::new(5 * 4096)
    );
    assert_eq!(default_dom0_size(ByteSize::ZERO), ByteSize::ZERO);

    let plan = plan_dom0_memory(&pc_1g(), &hv_reserved(), None, &[]).unwrap();
    assert_eq!(plan.granted(), ByteSize::mib(512));
    assert_eq!(plan.requested(), ByteSize::mib(512));
}

#[test]
fn too_much_is_clamped_and_reported() {
    let plan = plan_dom0_memory(&pc_1g(), &hv_reserved(), mem(2048 * MIB), &[]).unwrap();
    let free = plan.free_before().as_u64();
    assert_eq!(plan.granted().as_u64(), free - HYPERVISOR_RESERVE.as_u64());
    assert_eq!(
        plan.shortfall().as_u64(),
        2048 * MIB - plan.granted().as_u64()
    );
    let left: u64 = plan
        .remaining_free(&pc_1g(), &hv_reserved())
        .iter()
        .map(|r| r.size().as_u64())
        .sum();
    assert_eq!(left, HYPERVISOR_RESERVE.as_u64());
}

#[test]
fn sizes_round_up_to_pages() {
    let plan = plan_dom0_memory(&pc_1g(), &hv_reserved(), mem(64 * MIB + 1), &[]).unwrap();
    assert_eq!(plan.granted().as_u64(), 64 * MIB + 4096);
}

#[test]
fn required_ranges_are_included() {
    let kernel = range(0x100_0000, 0x100_0000 + 40 * MIB + 123);
    let plan = plan_dom0_memory(&pc_1g(), &hv_reserved(), mem(128 * MIB), &[kernel]).unwrap();
    assert_eq!(plan.granted(), ByteSize::mib(128));
    assert!(plan.contains(&kernel));
    assert!(plan.contains(&range(0, 0x9_F000)));
    // More required than requested: dom0 still gets the kernel's range.
    let plan = plan_dom0_memory(&pc_1g(), &hv_reserved(), mem(16 * MIB), &[kernel]).unwrap();
    assert!(plan.contains(&kernel));
    assert_eq!(plan.granted().as_u64(), 40 * MIB + 4096);
}

#[test]
fn required_range_on_a_module_is_an_error() {
    let kernel = range(0x70_0000, 0x90_0000);
    let err = plan_dom0_memory(&pc_1g(), &hv_reserved(), None, &[kernel]).unwrap_err();
    assert_eq!(err, Dom0Error::RequiredRangeUnavailable { range: kernel });
    assert!(alloc::format!("{err}").contains("0x700000..0x900000"));
}

#[test]
fn nothing_free_is_an_error() {
    let host = [region(0x10_0000, 0x200_0000, MemoryKind::Usable)];
    let err = plan_dom0_memory(&host, &[range(0, 0x200_0000)], None, &[]).unwrap_err();
    assert_eq!(
        err,
        Dom0Error::NoRamForDom0 {
            free: ByteSize::ZERO
        }
    );
}

#[test]
fn overlapping_host_entries_are_read_conservatively() {
    let host = [
        region(0, 0x800_0000, MemoryKind::Usable),
        region(0x400_0000, 0x400_1800, MemoryKind::AcpiNvs),
    ];
    let plan = plan_dom0_memory(&host, &[], mem(0x800_0000), &[]).unwrap();
    assert!(
        plan.ranges()
            .iter()
            .all(|r| !r.overlaps(&range(0x400_0000, 0x400_2000)))
    );
    let map = dom0_e820(&host, &plan).unwrap();
    assert!(map.contains(&e(0x400_0000, 0x400_1800, MemoryKind::AcpiNvs)));
    // The rest of the NVS entry's last page is RAM nobody may use: reserved.
    assert!(map.contains(&e(0x400_1800, 0x400_2000, MemoryKind::Reserved)));
}

#[test]
fn fragmented_map_is_refused_past_128_entries() {
    let mut host = vec![
        region(0, 0x9_F000, MemoryKind::Usable),
        region(0x200_0000, 0x800_0000, MemoryKind::Usable),
    ];
    for i in 0..200u64 {
        let kind = if i % 2 == 0 {
            MemoryKind::AcpiNvs
        } else {
            MemoryKind::AcpiReclaimable
        };
        host.push(region(
            0x100_0000 + i * 0x1000,
            0x100_1000 + i * 0x1000,
            kind,
        ));
    }
    let plan = plan_dom0_memory(&host, &[], None, &[]).unwrap();
    assert_eq!(
        dom0_e820(&host, &plan).unwrap_err(),
        Dom0Error::TooManyE820Entries { count: 204 }
    );
}

// ---------------------------------------------------------------------------
// Properties over arbitrary host maps.

const SPAN: u64 = 64 * MIB;

fn kind() -> impl Strategy<Value = MemoryKind> {
    prop_oneof![
        4 => Just(MemoryKind::Usable),
        1 => Just(MemoryKind::Reserved),
        1 => Just(MemoryKind::AcpiReclaimable),
        1 => Just(MemoryKind::AcpiNvs),
        1 => Just(MemoryKind::Defective),
        1 => (6u32..20).prop_map(MemoryKind::Other),
    ]
}

fn any_range() -> impl Strategy<Value = PhysRange> {
    (0..SPAN, 1..SPAN / 4).prop_map(|(s, len)| range(s, s + len))
}

/// What the e820 map says about one byte.
fn kind_at(map: &[E820Entry], addr: u64) -> Option<MemoryKind> {
    map.iter()
        .find(|x| x.addr.as_u64() <= addr && addr < x.end())
        .map(|x| x.kind)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn plan_and_map_invariants(
        host in proptest::collection::vec((any_range(), kind()), 1..10),
        reserved in proptest::collection::vec(any_range(), 0..4),
        size in proptest::option::of(1..SPAN),
        probes in proptest::collection::vec(0..SPAN + MIB, 64),
    ) {
        let host: Vec<MemoryRegion> = host.into_iter().map(|(range, kind)| MemoryRegion { range, kind }).collect();
        let dom0_mem = size.map(|s| Dom0Mem { size: ByteSize::new(s), max: None });
        let Ok(plan) = plan_dom0_memory(&host, &reserved, dom0_mem, &[]) else {
            return Ok(());
        };

        // Accounting balances to the page.
        let sum: u64 = plan.ranges().iter().map(|r| r.size().as_u64()).sum();
        prop_assert_eq!(sum, plan.granted().as_u64());
        let left: u64 = plan.remaining_free(&host, &reserved).iter().map(|r| r.size().as_u64()).sum();
        prop_assert_eq!(sum + left, plan.free_before().as_u64());
        let grantable = plan.free_before().as_u64().saturating_sub(HYPERVISOR_RESERVE.as_u64());
        prop_assert_eq!(sum, plan.requested().as_u64().min(grantable));
        prop_assert!(plan.requested().as_u64() % PAGE_SIZE == 0);

        // Sorted, disjoint, page-aligned; never reserved, never non-RAM, never the legacy hole.
        for w in plan.ranges().windows(2) {
            prop_assert!(w[0].end < w[1].start);
        }
        for r in plan.ranges() {
            prop_assert!(r.start.is_aligned(PAGE_SIZE) && r.end.is_aligned(PAGE_SIZE) && !r.is_empty());
            prop_assert!(!reserved.iter().any(|x| x.overlaps(r)));
            prop_assert!(!host.iter().any(|x| x.kind != MemoryKind::Usable && x.range.overlaps(r)));
            prop_assert!(!r.overlaps(&range(LEGACY_HOLE.0, LEGACY_HOLE.1)));
        }

        let map = dom0_e820(&host, &plan).unwrap();
        for x in &map {
            prop_assert!(x.size.as_u64() > 0);
        }
        for w in map.windows(2) {
            prop_assert!(w[0].end() <= w[1].addr.as_u64());
            prop_assert!(!(w[0].end() == w[1].addr.as_u64() && w[0].kind == w[1].kind), "unmerged {:?}", w);
        }
        let ram: u64 = map.iter().filter(|x| x.kind == MemoryKind::Usable).map(|x| x.size.as_u64()).sum();
        prop_assert_eq!(ram, plan.granted().as_u64());

        for a in probes {
            let got = kind_at(&map, a);
            let in_dom0 = plan.contains(&range(a, a + 1));
            prop_assert_eq!(got == Some(MemoryKind::Usable), in_dom0, "addr {:#x}", a);
            let in_host = host.iter().any(|x| x.range.contains(HostPhysAddr::new(a)));
            let legacy = (LEGACY_HOLE.0..LEGACY_HOLE.1).contains(&a);
            if !in_dom0 && !legacy {
                // Outside dom0: non-RAM keeps a host type, RAM is reserved, holes stay holes.
                prop_assert_eq!(got.is_some(), in_host, "addr {:#x}", a);
                if let Some(k) = got {
                    prop_assert!(host.iter().any(|x| x.range.contains(HostPhysAddr::new(a))
                        && (x.kind == k || (x.kind == MemoryKind::Usable && k == MemoryKind::Reserved))));
                }
            }
            if legacy {
                prop_assert_eq!(got, Some(MemoryKind::Reserved));
            }
        }
    }
}
