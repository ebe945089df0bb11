//! A domU's guest-physical RAM layout ([`guest_ram_ranges`]) and the e820
//! map it is told about ([`domu_e820`]).
//!
//! ```text
//! 0             RAM
//! 0xA0000       reserved: the legacy VGA/BIOS hole (backed, but not RAM
//!               to the guest; the ACPI blob's pages inside it are ACPI)
//! 0x100000      RAM, up to min(memory, 3 GiB)
//! 3 GiB         hole: MMIO (I/O APIC at 0xFEC00000, local APICs at
//!               0xFEE00000, future devices)
//! 4 GiB         RAM: whatever did not fit below 3 GiB
//! ```
//!
//! The domain's `memory` is exactly the guest-physical RAM the hypervisor
//! backs: `[0, min(memory, 3 GiB))` and, above 4 GiB, the rest. The
//! 384 KiB legacy hole is backed too (it is where the ACPI tables go by
//! default, [`ACPI_BLOB_DEFAULT_GPA`]) but reported reserved, as PC firmware
//! does (Linux's PVH entry adds the same reservation itself,
//! `init_pvh_bootparams`).
//!
//! The ACPI blob is reported as type 3, "ACPI" (AddressRangeACPI, ACPI 6.5
//! chapter 15, "System Address Map Interfaces"), rounded out to whole pages
//! so no RAM page is shared with it. Where it overlaps the reserved hole,
//! the ACPI type wins, as it does in Linux's own e820 sanitizer
//! (`e820__update_table`: the larger type of overlapping entries).

use alloc::vec::Vec;

use super::DomuError;
use crate::boot::multiboot2::MemoryKind;
use crate::dom0::GuestRange;
use crate::dom0::memory::{E820Entry, LEGACY_HOLE};
use crate::mm::addr::{ByteSize, GuestPhysAddr, PAGE_SIZE};

#[cfg(test)]
mod tests;

/// RAM below 4 GiB stops here; `[3 GiB, 4 GiB)` is left for MMIO (Cloud
/// Hypervisor's split; Firecracker starts its MMIO gap at 3.25 GiB).
pub const LOW_RAM_LIMIT: u64 = 0xC000_0000;
/// RAM that does not fit below [`LOW_RAM_LIMIT`] continues here.
pub const HIGH_RAM_START: u64 = 1 << 32;
/// The least memory a domU gets: some RAM above 1 MiB is needed for any
/// kernel.
pub const MIN_MEMORY: ByteSize = ByteSize::mib(2);
/// Where the ACPI tables go by default: 0xE0000, in the legacy BIOS area.
/// The PVH entry gets the RSDP's address from `hvm_start_info`, but an RSDP
/// there is also where a kernel scanning for one would look (ACPI 6.5
/// §5.2.5.1), and the area is reserved in the e820 map anyway. 128 KiB is
/// far more than the tables need (under 3 KiB for 255 vCPUs).
pub const ACPI_BLOB_DEFAULT_GPA: GuestPhysAddr = GuestPhysAddr::new(0xE_0000);

/// The guest-physical ranges of a domU with `memory` bytes of RAM: what the
/// hypervisor must back with host memory. At most two ranges, lowest first.
pub fn guest_ram_ranges(memory: ByteSize) -> Result<Vec<GuestRange>, DomuError> {
    let m = memory.as_u64();
    if m < MIN_MEMORY.as_u64() {
        return Err(DomuError::MemoryTooSmall {
            memory,
            min: MIN_MEMORY,
        });
    }
    if !m.is_multiple_of(PAGE_SIZE) {
        return Err(DomuError::MemoryNotPageAligned { memory });
    }
    let low = m.min(LOW_RAM_LIMIT);
    let mut ranges = Vec::with_capacity(2);
    ranges.push(range(0, low));
    if m > low {
        ranges.push(range(HIGH_RAM_START, HIGH_RAM_START + (m - low)));
    }
    Ok(ranges)
}

/// The e820 map of a domU with `memory` bytes of RAM and its ACPI tables at
/// `acpi_blob` (which must lie inside that RAM): RAM as RAM, the legacy hole
/// reserved, the blob's pages ACPI, holes left as holes. Sorted, disjoint,
/// adjacent entries of one type merged.
pub fn domu_e820(memory: ByteSize, acpi_blob: GuestRange) -> Result<Vec<E820Entry>, DomuError> {
    let ram = guest_ram_ranges(memory)?;
    let (blob_start, blob_end) = (acpi_blob.start.as_u64(), acpi_blob.end.as_u64());
    let inside = |r: &GuestRange| r.start.as_u64() <= blob_start && blob_end <= r.end.as_u64();
    if blob_start >= blob_end || !ram.iter().any(inside) {
        return Err(DomuError::AcpiBlobOutsideRam {
            start: acpi_blob.start,
            end: acpi_blob.end,
        });
    }

    let mut spans: Vec<(u64, u64, MemoryKind)> = ram
        .iter()
        .map(|r| (r.start.as_u64(), r.end.as_u64(), MemoryKind::Usable))
        .collect();
    recolor(
        &mut spans,
        LEGACY_HOLE.0,
        LEGACY_HOLE.1,
        MemoryKind::Reserved,
    );
    let page_start = blob_start & !(PAGE_SIZE - 1);
    let page_end = blob_end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    recolor(
        &mut spans,
        page_start,
        page_end,
        MemoryKind::AcpiReclaimable,
    );

    let mut map: Vec<E820Entry> = Vec::with_capacity(spans.len());
    for (start, end, kind) in spans {
        if let Some(last) = map.last_mut()
            && last.kind == kind
            && last.end() == start
        {
            last.size = ByteSize::new(end - last.addr.as_u64());
            continue;
        }
        map.push(E820Entry {
            addr: GuestPhysAddr::new(start),
            size: ByteSize::new(end - start),
            kind,
        });
    }
    Ok(map)
}

fn range(start: u64, end: u64) -> GuestRange {
    GuestRange {
        start: GuestPhysAddr::new(start),
        end: GuestPhysAddr::new(end),
    }
}

/// Gives `kind` to the parts of the sorted, disjoint `spans` that lie in
/// `[start, end)`. Only existing spans change type: a hole stays a hole.
fn recolor(spans: &mut Vec<(u64, u64, MemoryKind)>, start: u64, end: u64, kind: MemoryKind) {
    let mut out = Vec::with_capacity(spans.len() + 2);
    for &(a, b, k) in spans.iter() {
        if b <= start || a >= end {
            out.push((a, b, k));
            continue;
        }
        if a < start {
            out.push((a, start, k));
        }
        out.push((a.max(start), b.min(end), kind));
        if b > end {
            out.push((end, b, k));
        }
    }
    *spans = out;
}
