//! dom0's memory: which host RAM it gets ([`plan_dom0_memory`]) and the e820
//! map it is told about ([`dom0_e820`]).
//!
//! dom0 is identity mapped (guest-physical == host-physical, see
//! ARCHITECTURE.md "Memory"), so its RAM is a set of host ranges, handed out
//! lowest address first: dom0 needs memory below 1 MiB (Linux's real-mode
//! trampoline for starting its APs, the BIOS data areas) and below 4 GiB (for
//! 32-bit DMA), and a host's low memory is exactly what a native kernel would
//! have had.
//!
//! # Default size (no `dom0_mem=`)
//!
//! The hypervisor has no balloon driver in dom0, so whatever dom0 gets at boot
//! is lost to the free pool from which domUs are built. Xen's default (all RAM
//! but a small reserve, then balloon down) does not fit that; instead:
//!
//! `default = min(max(grantable / 2, min(grantable, 512 MiB)), 4 GiB)`
//!
//! where `grantable` is the free RAM (host RAM minus the hypervisor's ranges)
//! minus [`HYPERVISOR_RESERVE`]. Half the machine for dom0 and half for the
//! pool, never less than 512 MiB (what a stock distribution kernel and its
//! initramfs need to reach userspace comfortably) unless the machine has less,
//! and never more than 4 GiB (plenty for a control domain; the rest is
//! better spent on guests). A 1 GiB test machine gives dom0 512 MiB, a 24 GiB
//! server 4 GiB. `dom0_mem=` overrides it.
//!
//! # Explicit size (`dom0_mem=`)
//!
//! dom0 gets `dom0_mem`'s `size`, rounded up to 4 KiB, as long as
//! [`HYPERVISOR_RESERVE`] stays free for the hypervisor's later allocations
//! (dom0's EPT, per-CPU structures); otherwise as much as there is, and
//! [`Dom0Memory::shortfall`] says how much was missing so the caller can warn.
//! `max:` is not used: without a balloon driver dom0 never grows.

use alloc::vec::Vec;

use super::Dom0Error;
use super::ranges::RangeSet;
use crate::boot::multiboot2::{MemoryKind, MemoryRegion};
use crate::cmdline::Dom0Mem;
use crate::mm::addr::{ByteSize, GuestPhysAddr, HostPhysAddr, PAGE_SIZE, PhysRange};

#[cfg(test)]
mod tests;

/// Free RAM always kept out of dom0 for the hypervisor's own later
/// allocations (dom0's EPT tables, VMCS and vLAPIC pages, domU structures).
pub const HYPERVISOR_RESERVE: ByteSize = ByteSize::mib(32);
/// The default never goes below this (unless less RAM is grantable).
pub const DEFAULT_MIN: ByteSize = ByteSize::mib(512);
/// The default never goes above this.
pub const DEFAULT_MAX: ByteSize = ByteSize::mib(4096);

/// The legacy VGA and BIOS ROM area, `[0xA0000, 0x100000)`: never RAM on a
/// PC, always reported reserved (as PC firmware does; Linux also reserves it
/// itself, `arch/x86/kernel/setup.c`, `trim_bios_range`).
pub const LEGACY_HOLE: (u64, u64) = (0xA_0000, 0x10_0000);

/// The most e820 entries `boot_params` holds (`E820_MAX_ENTRIES_ZEROPAGE`,
/// Linux `arch/x86/include/uapi/asm/bootparam.h`; zero-page.rst, 0x2D0).
pub const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;

/// The RAM given to dom0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dom0Memory {
    ranges: Vec<PhysRange>,
    requested: ByteSize,
    granted: ByteSize,
    free: ByteSize,
}

impl Dom0Memory {
    /// dom0's RAM: sorted, disjoint, page-aligned, non-adjacent ranges.
    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
    /// What `dom0_mem=` (or the default rule) asked for, page-rounded.
    pub fn requested(&self) -> ByteSize {
        self.requested
    }
    /// What dom0 got: the sum of [`Self::ranges`].
    pub fn granted(&self) -> ByteSize {
        self.granted
    }
    /// Free RAM (host RAM minus the hypervisor's ranges) before dom0 took its share.
    pub fn free_before(&self) -> ByteSize {
        self.free
    }
    /// How much less than requested dom0 got (zero when it got all of it).
    pub fn shortfall(&self) -> ByteSize {
        ByteSize::new(
            self.requested
                .as_u64()
                .saturating_sub(self.granted.as_u64()),
        )
    }
    /// Whether every byte of `range` is dom0's.
    pub fn contains(&self, range: &PhysRange) -> bool {
        range.is_empty()
            || self
                .ranges
                .iter()
                .any(|r| r.start <= range.start && range.end <= r.end)
    }
    /// The free RAM left after dom0 took its share, given the same inputs as
    /// the plan: the hypervisor's reserve and the domU pool.
    pub fn remaining_free(&self, host: &[MemoryRegion], reserved: &[PhysRange]) -> Vec<PhysRange> {
        let mut free = free_ram(host, reserved);
        for r in &self.ranges {
            free.remove(r.start.as_u64(), r.end.as_u64());
        }
        to_phys_ranges(&free)
    }
}

/// The default dom0 size for `grantable` bytes (see the module docs),
/// rounded down to 4 KiB.
pub fn default_dom0_size(grantable: ByteSize) -> ByteSize {
    let g = grantable.as_u64();
    let size = (g / 2)
        .max(g.min(DEFAULT_MIN.as_u64()))
        .min(DEFAULT_MAX.as_u64());
    ByteSize::new(size & !(PAGE_SIZE - 1))
}

/// Host RAM that nobody uses yet: the usable regions of the host map, minus
/// every non-usable region (a map whose entries overlap is read
/// conservatively), minus the legacy hole, minus `reserved`, cut to whole 4 KiB
/// pages.
fn free_ram(host: &[MemoryRegion], reserved: &[PhysRange]) -> RangeSet {
    let mut free = RangeSet::new();
    for r in host.iter().filter(|r| r.kind == MemoryKind::Usable) {
        free.add(r.range.start.as_u64(), r.range.end.as_u64());
    }
    for r in host.iter().filter(|r| r.kind != MemoryKind::Usable) {
        remove_pages(&mut free, r.range);
    }
    free.remove(LEGACY_HOLE.0, LEGACY_HOLE.1);
    for r in reserved {
        remove_pages(&mut free, *r);
    }
    free.shrink_to(PAGE_SIZE);
    free
}

/// Removes every page `range` touches.
fn remove_pages(set: &mut RangeSet, range: PhysRange) {
    if range.is_empty() {
        return;
    }
    let start = range.start.align_down(PAGE_SIZE).as_u64();
    let end = range
        .end
        .checked_align_up(PAGE_SIZE)
        .map_or(u64::MAX, HostPhysAddr::as_u64);
    set.remove(start, end);
}

fn to_phys_ranges(set: &RangeSet) -> Vec<PhysRange> {
    set.spans()
        .iter()
        .map(|&(s, e)| PhysRange::new(HostPhysAddr::new(s), HostPhysAddr::new(e)))
        .collect()
}

/// Chooses dom0's RAM.
///
/// - `host`: the firmware memory map (multiboot2).
/// - `reserved`: everything the hypervisor already uses: its image, the boot
///   information, the boot modules, its allocations so far. Never given to dom0.
/// - `dom0_mem`: the `dom0_mem=` option; `None` applies [`default_dom0_size`].
/// - `required`: ranges dom0 must own whatever the size (a PVH kernel's load
///   segments, which cannot move); they count towards the size, and dom0 gets
///   them even if they exceed it. An error if one is not free RAM.
///
/// The rest is taken lowest address first.
pub fn plan_dom0_memory(
    host: &[MemoryRegion],
    reserved: &[PhysRange],
    dom0_mem: Option<Dom0Mem>,
    required: &[PhysRange],
) -> Result<Dom0Memory, Dom0Error> {
    let free = free_ram(host, reserved);
    let free_total = free.total();
    let grantable = free_total.saturating_sub(HYPERVISOR_RESERVE.as_u64());
    let requested = match dom0_mem {
        Some(mem) => mem
            .size
            .as_u64()
            .checked_add(PAGE_SIZE - 1)
            .map_or(u64::MAX, |v| v & !(PAGE_SIZE - 1)),
        None => default_dom0_size(ByteSize::new(grantable)).as_u64(),
    };

    let mut chosen = RangeSet::new();
    for r in required.iter().filter(|r| !r.is_empty()) {
        let start = r.start.align_down(PAGE_SIZE).as_u64();
        let end = r
            .end
            .checked_align_up(PAGE_SIZE)
            .map_or(u64::MAX, HostPhysAddr::as_u64);
        if !free.contains_range(start, end) {
            return Err(Dom0Error::RequiredRangeUnavailable { range: *r });
        }
        chosen.add(start, end);
    }

    let target = requested.min(grantable).max(chosen.total());
    let mut rest = free.clone();
    rest.remove_set(&chosen);
    let mut missing = target - chosen.total();
    for &(s, e) in rest.spans() {
        if missing == 0 {
            break;
        }
        let take = (e - s).min(missing);
        chosen.add(s, s + take);
        missing -= take;
    }

    let granted = chosen.total();
    if granted == 0 {
        return Err(Dom0Error::NoRamForDom0 {
            free: ByteSize::new(free_total),
        });
    }
    Ok(Dom0Memory {
        ranges: to_phys_ranges(&chosen),
        requested: ByteSize::new(requested),
        granted: ByteSize::new(granted),
        free: ByteSize::new(free_total),
    })
}

/// One entry of an e820 map (zero-page.rst, `e820_table` at 0x2D0;
/// `struct boot_e820_entry` in bootparam.h: u64 addr, u64 size, u32 type,
/// packed to 20 bytes). Addresses are dom0's guest-physical ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub addr: GuestPhysAddr,
    /// Length in bytes (never zero).
    pub size: ByteSize,
    /// The type; [`MemoryKind::as_raw`] is its e820 number (1 RAM,
    /// 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 unusable, ...).
    pub kind: MemoryKind,
}

/// Size of a `boot_e820_entry` in the zero page.
pub const E820_ENTRY_SIZE: usize = 20;

impl E820Entry {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr.as_u64() + self.size.as_u64()
    }
    /// The 20-byte little-endian `boot_e820_entry` (bootparam.h).
    pub fn to_bytes(&self) -> [u8; E820_ENTRY_SIZE] {
        let mut b = [0u8; E820_ENTRY_SIZE];
        b[0..8].copy_from_slice(&self.addr.as_u64().to_le_bytes());
        b[8..16].copy_from_slice(&self.size.as_u64().to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.as_raw().to_le_bytes());
        b
    }
}

/// A map under construction: sorted, disjoint `(start, end, kind)` spans;
/// painting a span overrides whatever it covers.
struct Painter {
    spans: Vec<(u64, u64, MemoryKind)>,
}

impl Painter {
    fn paint(&mut self, start: u64, end: u64, kind: MemoryKind) {
        if start >= end {
            return;
        }
        let mut out = Vec::with_capacity(self.spans.len() + 2);
        for &(a, b, k) in &self.spans {
            if b <= start || a >= end {
                out.push((a, b, k));
                continue;
            }
            if a < start {
                out.push((a, start, k));
            }
            if b > end {
                out.push((end, b, k));
            }
        }
        let at = out.partition_point(|&(a, _, _)| a < start);
        out.insert(at, (start, end, kind));
        self.spans = out;
    }
}

/// Painting order of host entries: later kinds win where the host map
/// overlaps itself, so ACPI data is never hidden behind a plain reservation.
fn host_priority(kind: MemoryKind) -> u8 {
    match kind {
        MemoryKind::Usable => 0,
        MemoryKind::Reserved | MemoryKind::Other(_) => 1,
        MemoryKind::Defective => 2,
        MemoryKind::AcpiReclaimable => 3,
        MemoryKind::AcpiNvs => 4,
    }
}

/// The e820 map dom0 receives:
/// - dom0's RAM as RAM (type 1);
/// - every non-RAM host range with its own type (reserved, ACPI reclaimable,
///   ACPI NVS, defective, others), so ACPI tables and NVS stay where dom0's
///   ACPI code expects them;
/// - all other host RAM (the hypervisor's and the free pool) as reserved, so
///   dom0 never uses it (and may still read it through `/dev/mem`, where EPT
///   shows it nothing);
/// - `[0xA0000, 0x100000)` reserved, as PC firmware reports it;
/// - holes in the host map stay holes (MMIO).
///
/// Sorted, non-overlapping, adjacent entries of one type merged; an error
/// beyond [`E820_MAX_ENTRIES_ZEROPAGE`] entries.
pub fn dom0_e820(host: &[MemoryRegion], dom0: &Dom0Memory) -> Result<Vec<E820Entry>, Dom0Error> {
    let mut painter = Painter { spans: Vec::new() };
    let mut ordered: Vec<&MemoryRegion> = host.iter().filter(|r| !r.range.is_empty()).collect();
    ordered.sort_by_key(|r| host_priority(r.kind));
    for r in ordered {
        let kind = if r.kind == MemoryKind::Usable {
            MemoryKind::Reserved
        } else {
            r.kind
        };
        painter.paint(r.range.start.as_u64(), r.range.end.as_u64(), kind);
    }
    painter.paint(LEGACY_HOLE.0, LEGACY_HOLE.1, MemoryKind::Reserved);
    for r in dom0.ranges() {
        painter.paint(r.start.as_u64(), r.end.as_u64(), MemoryKind::Usable);
    }

    let mut map: Vec<E820Entry> = Vec::with_capacity(painter.spans.len());
    for (start, end, kind) in painter.spans {
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
    if map.len() > E820_MAX_ENTRIES_ZEROPAGE {
        return Err(Dom0Error::TooManyE820Entries { count: map.len() });
    }
    Ok(map)
}
