//! Which guest-physical ranges dom0's identity EPT maps, and with which
//! memory type: everything below `limit` except the host RAM that is not
//! dom0's (the hypervisor's own memory and the free pool for domUs) and the
//! explicit `holes` (such as the APIC page, which the caller maps elsewhere).
//! RAM and ACPI regions are write-back; firmware-reserved regions and gaps
//! (MMIO: PCI BARs, the IO-APIC, ...) are uncacheable.

use alloc::vec::Vec;

use crate::boot::multiboot2::{MemoryKind, MemoryRegion};
use crate::mm::addr::{HostPhysAddr, PAGE_SIZE, PhysRange};
use crate::mm::page_table::MemoryType;

/// How one address is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Not mapped (explicit holes).
    Unmapped,
    /// Host RAM that is not dom0's: the hypervisor's own memory and the free
    /// pool. Mapped to a stand-in page, never to itself.
    Hidden,
    /// Identity-mapped with this memory type.
    Mapped(MemoryType),
}

fn classify(addr: u64, host: &[MemoryRegion], dom0: &[PhysRange], holes: &[PhysRange]) -> Class {
    let a = HostPhysAddr::new(addr);
    if holes.iter().any(|h| h.contains(a)) {
        return Class::Unmapped;
    }
    if dom0.iter().any(|r| r.contains(a)) {
        return Class::Mapped(MemoryType::WriteBack);
    }
    match host.iter().find(|r| r.range.contains(a)).map(|r| r.kind) {
        Some(MemoryKind::Usable) => Class::Hidden,
        Some(MemoryKind::AcpiReclaimable | MemoryKind::AcpiNvs) => {
            Class::Mapped(MemoryType::WriteBack)
        }
        Some(_) | None => Class::Mapped(MemoryType::Uncacheable),
    }
}

/// Splits `[0, limit)` into page-aligned, sorted, merged ranges of one class.
fn segments(
    host: &[MemoryRegion],
    dom0: &[PhysRange],
    holes: &[PhysRange],
    limit: u64,
) -> Vec<(PhysRange, Class)> {
    // Every boundary where the classification may change.
    let mut points: Vec<u64> = Vec::new();
    points.push(0);
    points.push(limit);
    let mut add = |r: &PhysRange| {
        points.push(r.start.as_u64() & !(PAGE_SIZE - 1));
        points.push(r.end.as_u64().div_ceil(PAGE_SIZE) * PAGE_SIZE);
    };
    host.iter().for_each(|r| add(&r.range));
    dom0.iter().for_each(&mut add);
    holes.iter().for_each(&mut add);
    points.retain(|&p| p <= limit);
    points.sort_unstable();
    points.dedup();
    let mut out: Vec<(PhysRange, Class)> = Vec::new();
    for w in points.windows(2) {
        let (start, end) = (w[0], w[1]);
        if start >= end {
            continue;
        }
        let c = classify(start, host, dom0, holes);
        match out.last_mut() {
            Some((r, lc)) if *lc == c && r.end.as_u64() == start => r.end = HostPhysAddr::new(end),
            _ => out.push((
                PhysRange::new(HostPhysAddr::new(start), HostPhysAddr::new(end)),
                c,
            )),
        }
    }
    out
}

/// The ranges to identity-map below `limit` (page-aligned, sorted, merged).
pub fn dom0_identity_ranges(
    host: &[MemoryRegion],
    dom0: &[PhysRange],
    holes: &[PhysRange],
    limit: u64,
) -> Vec<(PhysRange, MemoryType)> {
    segments(host, dom0, holes, limit)
        .into_iter()
        .filter_map(|(r, c)| match c {
            Class::Mapped(t) => Some((r, t)),
            _ => None,
        })
        .collect()
}

/// The host RAM below `limit` that is not dom0's (hypervisor memory and the
/// free pool), page-aligned, sorted and merged: what dom0's e820 reports as
/// reserved and what dom0 must see only as all-ones.
pub fn dom0_hidden_ranges(
    host: &[MemoryRegion],
    dom0: &[PhysRange],
    holes: &[PhysRange],
    limit: u64,
) -> Vec<PhysRange> {
    segments(host, dom0, holes, limit)
        .into_iter()
        .filter_map(|(r, c)| (c == Class::Hidden).then_some(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u64, b: u64) -> PhysRange {
        PhysRange::new(HostPhysAddr::new(a), HostPhysAddr::new(b))
    }
    fn region(a: u64, b: u64, kind: MemoryKind) -> MemoryRegion {
        MemoryRegion {
            range: r(a, b),
            kind,
        }
    }

    #[test]
    fn hypervisor_ram_is_left_out() {
        let host = [
            region(0, 0x9F000, MemoryKind::Usable),
            region(0xF0000, 0x100000, MemoryKind::Reserved),
            region(0x100000, 0x4000_0000, MemoryKind::Usable),
            region(0x3FFF_0000, 0x4000_0000, MemoryKind::AcpiReclaimable),
        ];
        let host = [
            host[0],
            host[1],
            region(0x100000, 0x3FFF_0000, MemoryKind::Usable),
            host[3],
        ];
        let dom0 = [r(0, 0x9F000), r(0x100000, 0x1000_0000)];
        let apic = [r(0xFEE0_0000, 0xFEE0_1000)];
        let m = dom0_identity_ranges(&host, &dom0, &apic, 1 << 32);
        // dom0 RAM write-back; the gap 0x9F000..0xF0000 and the BIOS area UC.
        assert_eq!(m[0], (r(0, 0x9F000), MemoryType::WriteBack));
        assert_eq!(m[1], (r(0x9F000, 0x100000), MemoryType::Uncacheable));
        assert_eq!(m[2], (r(0x100000, 0x1000_0000), MemoryType::WriteBack));
        // Hypervisor RAM 0x1000_0000..0x3FFF_0000 is absent.
        assert!(
            m.iter()
                .all(|(x, _)| !x.overlaps(&r(0x1000_0000, 0x3FFF_0000)))
        );
        assert_eq!(m[3], (r(0x3FFF_0000, 0x4000_0000), MemoryType::WriteBack));
        assert_eq!(m[4], (r(0x4000_0000, 0xFEE0_0000), MemoryType::Uncacheable));
        assert_eq!(m[5], (r(0xFEE0_1000, 1 << 32), MemoryType::Uncacheable));
        assert_eq!(m.len(), 6);
        // What is absent from the map is exactly the hidden RAM.
        assert_eq!(
            dom0_hidden_ranges(&host, &dom0, &apic, 1 << 32),
            [r(0x1000_0000, 0x3FFF_0000)]
        );
    }

    #[test]
    fn hidden_ranges_skip_holes_and_merge() {
        let host = [
            region(0, 0x10_0000, MemoryKind::Usable),
            region(0x10_0000, 0x80_0000, MemoryKind::Usable),
        ];
        let dom0 = [r(0x20_0000, 0x30_0000)];
        let holes = [r(0x50_0000, 0x50_1000)];
        let h = dom0_hidden_ranges(&host, &dom0, &holes, 0x70_0000);
        assert_eq!(
            h,
            [
                r(0, 0x20_0000),
                r(0x30_0000, 0x50_0000),
                r(0x50_1000, 0x70_0000)
            ]
        );
    }
}
