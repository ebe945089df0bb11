use super::*;
use std::vec;
use std::vec::Vec;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn blob(start: u64, len: u64) -> GuestRange {
    GuestRange {
        start: GuestPhysAddr::new(start),
        end: GuestPhysAddr::new(start + len),
    }
}

/// The map as (start, end, e820 type) for easy comparison.
fn spans(map: &[E820Entry]) -> Vec<(u64, u64, u32)> {
    map.iter()
        .map(|e| (e.addr.as_u64(), e.end(), e.kind.as_raw()))
        .collect()
}

#[test]
fn small_domain_with_tables_in_the_bios_area() {
    let map = domu_e820(ByteSize::mib(512), blob(0xE_0000, 0x2A0)).unwrap();
    assert_eq!(
        spans(&map),
        vec![
            (0, 0xA_0000, 1),
            (0xA_0000, 0xE_0000, 2),
            (0xE_0000, 0xE_1000, 3),
            (0xE_1000, 0x10_0000, 2),
            (0x10_0000, 512 * MIB, 1),
        ]
    );
}

#[test]
fn large_domain_continues_above_4_gib() {
    let memory = ByteSize::new(5 * GIB);
    let ranges = guest_ram_ranges(memory).unwrap();
    assert_eq!(ranges, vec![blob(0, 3 * GIB), blob(4 * GIB, 2 * GIB)]);
    let map = domu_e820(memory, blob(0xE_0000, 0x100)).unwrap();
    assert_eq!(
        map.last()
            .map(|e| (e.addr.as_u64(), e.end(), e.kind.as_raw())),
        Some((4 * GIB, 6 * GIB, 1))
    );
    assert_eq!(
        map[map.len() - 2].end(),
        3 * GIB,
        "RAM stops at 3 GiB, MMIO hole follows"
    );
}

#[test]
fn exactly_3_gib_has_no_high_range() {
    assert_eq!(
        guest_ram_ranges(ByteSize::new(3 * GIB)).unwrap(),
        vec![blob(0, 3 * GIB)]
    );
}

#[test]
fn ram_ranges_add_up_to_the_memory_size() {
    for m in [
        2 * MIB,
        64 * MIB,
        3 * GIB - 4096,
        3 * GIB,
        3 * GIB + 4096,
        17 * GIB,
    ] {
        let total: u64 = guest_ram_ranges(ByteSize::new(m))
            .unwrap()
            .iter()
            .map(|r| r.size().as_u64())
            .sum();
        assert_eq!(total, m);
    }
}

#[test]
fn tables_in_ordinary_ram_take_whole_pages() {
    // Unaligned, straddling a page boundary.
    let map = domu_e820(ByteSize::mib(64), blob(0x20_0FF0, 0x20)).unwrap();
    assert_eq!(
        spans(&map),
        vec![
            (0, 0xA_0000, 1),
            (0xA_0000, 0x10_0000, 2),
            (0x10_0000, 0x20_0000, 1),
            (0x20_0000, 0x20_2000, 3),
            (0x20_2000, 64 * MIB, 1),
        ]
    );
}

#[test]
fn map_is_sorted_disjoint_and_merged() {
    for (m, b) in [
        (64 * MIB, blob(0xE_0000, 64)),
        (5 * GIB, blob(4 * GIB + 0x1234, 3000)),
    ] {
        let map = domu_e820(ByteSize::new(m), b).unwrap();
        for w in map.windows(2) {
            assert!(w[0].end() <= w[1].addr.as_u64(), "sorted and disjoint");
            assert!(
                !(w[0].end() == w[1].addr.as_u64() && w[0].kind == w[1].kind),
                "merged"
            );
        }
        assert!(map.iter().all(|e| e.size.as_u64() > 0));
        let ram: u64 = map
            .iter()
            .filter(|e| e.kind == MemoryKind::Usable)
            .map(|e| e.size.as_u64())
            .sum();
        assert!(ram < m, "the hole and the tables are not RAM");
    }
}

#[test]
fn bad_requests_are_refused() {
    assert_eq!(
        guest_ram_ranges(ByteSize::mib(1)),
        Err(DomuError::MemoryTooSmall {
            memory: ByteSize::mib(1),
            min: MIN_MEMORY
        })
    );
    assert_eq!(
        guest_ram_ranges(ByteSize::new(64 * MIB + 1)),
        Err(DomuError::MemoryNotPageAligned {
            memory: ByteSize::new(64 * MIB + 1)
        })
    );
    let outside = |b: GuestRange| {
        assert_eq!(
            domu_e820(ByteSize::mib(64), b),
            Err(DomuError::AcpiBlobOutsideRam {
                start: b.start,
                end: b.end
            })
        );
    };
    outside(blob(64 * MIB, 0x100)); // past the end of RAM
    outside(blob(64 * MIB - 0x80, 0x100)); // straddling the end
    outside(blob(0xFEC0_0000, 0x100)); // the MMIO hole
    outside(blob(0xE_0000, 0)); // empty
}

#[test]
fn default_blob_address_fits_the_tables() {
    use crate::domu::acpi_tables::{DomuPlatform, build_acpi_tables};
    let p = DomuPlatform::new((0..255).collect());
    let tables = build_acpi_tables(&p, ACPI_BLOB_DEFAULT_GPA).unwrap();
    assert!(
        tables.range().end.as_u64() <= LEGACY_HOLE.1,
        "stays in the BIOS area"
    );
    let map = domu_e820(ByteSize::mib(256), tables.range()).unwrap();
    assert!(map.iter().any(|e| e.kind == MemoryKind::AcpiReclaimable
        && e.addr.as_u64() <= tables.rsdp.as_u64()
        && tables.range().end.as_u64() <= e.end()));
}
