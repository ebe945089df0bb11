//! Starting an ELF `vmlinux` through its PVH entry.
//!
//! References:
//! - Xen `xen/include/public/elfnote.h`: `XEN_ELFNOTE_PHYS32_ENTRY` (18), the
//!   32-bit physical address of the PVH entry, in a note named "Xen".
//! - Xen `xen/include/public/arch-x86/hvm/start_info.h`: the layouts of
//!   `hvm_start_info` (version 1), `hvm_modlist_entry` and
//!   `hvm_memmap_table_entry`; all little-endian.
//! - Xen `docs/misc/pvh.pandoc`: the initial vCPU state ([`EntryState::pvh`]).
//! - Linux `arch/x86/platform/pvh/enlighten.c` (`init_pvh_bootparams`): Linux
//!   reads the memory map, the command line, the RSDP and module 0 (the
//!   initrd) from the start info; with no Xen CPUID leaf it takes the memory
//!   map only from the start info, and needs `memmap_entries` non-zero.
//! - Linux `arch/x86/platform/pvh/head.S`, `arch/x86/kernel/head_64.S`: the
//!   early page tables map only the first 1 GiB, through which Linux reads the
//!   start info and the memory map, so those stay below 1 GiB here.

use alloc::vec;
use alloc::vec::Vec;

use super::elf::ElfImage;
use super::entry::{BOOT_GDT_SIZE, EntryState, boot_gdt};
use super::memory::E820Entry;
use super::ranges::{Prefer, RangeSet};
use super::{Dom0Error, GuestRange, put};
use crate::mm::addr::{ByteSize, GuestPhysAddr, HUGE_PAGE_SIZE, PAGE_SIZE, PhysRange};

/// Note type of the PVH entry point (Xen `elfnote.h`).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Name of Xen's notes.
pub const XEN_NOTE_NAME: &[u8] = b"Xen";
/// `XEN_HVM_START_MAGIC_VALUE` ("xEn3" with the 0x80 bit of the "E" set).
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336E_C578;
/// The `hvm_start_info` version built here: 1 adds the memory map.
pub const START_INFO_VERSION: u32 = 1;

/// Offsets in `hvm_start_info` (start_info.h, the layout diagram).
pub mod start_info {
    /// u32 `magic`.
    pub const MAGIC: usize = 0;
    /// u32 `version`.
    pub const VERSION: usize = 4;
    /// u32 `flags` (SIF_xxx).
    pub const FLAGS: usize = 8;
    /// u32 `nr_modules`.
    pub const NR_MODULES: usize = 12;
    /// u64 `modlist_paddr`.
    pub const MODLIST_PADDR: usize = 16;
    /// u64 `cmdline_paddr`.
    pub const CMDLINE_PADDR: usize = 24;
    /// u64 `rsdp_paddr`.
    pub const RSDP_PADDR: usize = 32;
    /// u64 `memmap_paddr` (version 1).
    pub const MEMMAP_PADDR: usize = 40;
    /// u32 `memmap_entries` (version 1).
    pub const MEMMAP_ENTRIES: usize = 48;
    /// u32 `reserved` (version 1).
    pub const RESERVED: usize = 52;
    /// Size of the structure.
    pub const SIZE: usize = 56;
}

/// Offsets in `hvm_modlist_entry` (start_info.h).
pub mod modlist_entry {
    /// u64 `paddr`.
    pub const PADDR: usize = 0;
    /// u64 `size`.
    pub const SIZE_FIELD: usize = 8;
    /// u64 `cmdline_paddr`.
    pub const CMDLINE_PADDR: usize = 16;
    /// u64 `reserved`.
    pub const RESERVED: usize = 24;
    /// Size of one entry.
    pub const SIZE: usize = 32;
}

/// Offsets in `hvm_memmap_table_entry` (start_info.h).
pub mod memmap_entry {
    /// u64 `addr`.
    pub const ADDR: usize = 0;
    /// u64 `size`.
    pub const SIZE_FIELD: usize = 8;
    /// u32 `type` (the e820 type).
    pub const TYPE: usize = 16;
    /// u32 `reserved`.
    pub const RESERVED: usize = 20;
    /// Size of one entry.
    pub const SIZE: usize = 24;
}

// Each field follows the previous one without a gap, as the header's diagram
// draws them.
const _: () = {
    use start_info as s;
    assert!(s::VERSION == s::MAGIC + 4 && s::FLAGS == s::VERSION + 4);
    assert!(s::NR_MODULES == s::FLAGS + 4 && s::MODLIST_PADDR == s::NR_MODULES + 4);
    assert!(s::CMDLINE_PADDR == s::MODLIST_PADDR + 8 && s::RSDP_PADDR == s::CMDLINE_PADDR + 8);
    assert!(s::MEMMAP_PADDR == s::RSDP_PADDR + 8 && s::MEMMAP_ENTRIES == s::MEMMAP_PADDR + 8);
    assert!(s::RESERVED == s::MEMMAP_ENTRIES + 4 && s::SIZE == s::RESERVED + 4);
    use modlist_entry as m;
    assert!(m::SIZE_FIELD == m::PADDR + 8 && m::CMDLINE_PADDR == m::SIZE_FIELD + 8);
    assert!(m::RESERVED == m::CMDLINE_PADDR + 8 && m::SIZE == m::RESERVED + 8);
    use memmap_entry as e;
    assert!(e::SIZE_FIELD == e::ADDR + 8 && e::TYPE == e::SIZE_FIELD + 8);
    assert!(e::RESERVED == e::TYPE + 4 && e::SIZE == e::RESERVED + 4);
};

/// `hvm_start_info` version 1. Address fields of 0 mean "absent".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartInfo {
    /// SIF_xxx flags; 0 for dom0 of a non-Xen hypervisor.
    pub flags: u32,
    /// Number of `hvm_modlist_entry` at `modlist_paddr`.
    pub nr_modules: u32,
    /// Address of the module list.
    pub modlist_paddr: u64,
    /// Address of the NUL-terminated command line.
    pub cmdline_paddr: u64,
    /// Address of the ACPI RSDP.
    pub rsdp_paddr: u64,
    /// Address of the memory map.
    pub memmap_paddr: u64,
    /// Number of memory map entries.
    pub memmap_entries: u32,
}

impl StartInfo {
    /// The 56 little-endian bytes, magic and version included.
    pub fn to_bytes(&self) -> [u8; start_info::SIZE] {
        let mut b = [0u8; start_info::SIZE];
        put(
            &mut b,
            start_info::MAGIC,
            &XEN_HVM_START_MAGIC_VALUE.to_le_bytes(),
        );
        put(
            &mut b,
            start_info::VERSION,
            &START_INFO_VERSION.to_le_bytes(),
        );
        put(&mut b, start_info::FLAGS, &self.flags.to_le_bytes());
        put(
            &mut b,
            start_info::NR_MODULES,
            &self.nr_modules.to_le_bytes(),
        );
        put(
            &mut b,
            start_info::MODLIST_PADDR,
            &self.modlist_paddr.to_le_bytes(),
        );
        put(
            &mut b,
            start_info::CMDLINE_PADDR,
            &self.cmdline_paddr.to_le_bytes(),
        );
        put(
            &mut b,
            start_info::RSDP_PADDR,
            &self.rsdp_paddr.to_le_bytes(),
        );
        put(
            &mut b,
            start_info::MEMMAP_PADDR,
            &self.memmap_paddr.to_le_bytes(),
        );
        put(
            &mut b,
            start_info::MEMMAP_ENTRIES,
            &self.memmap_entries.to_le_bytes(),
        );
        b
    }
}

/// `hvm_modlist_entry`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModlistEntry {
    /// Address of the module.
    pub paddr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Address of its command line, 0 for none.
    pub cmdline_paddr: u64,
}

impl ModlistEntry {
    /// The 32 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; modlist_entry::SIZE] {
        let mut b = [0u8; modlist_entry::SIZE];
        put(&mut b, modlist_entry::PADDR, &self.paddr.to_le_bytes());
        put(&mut b, modlist_entry::SIZE_FIELD, &self.size.to_le_bytes());
        put(
            &mut b,
            modlist_entry::CMDLINE_PADDR,
            &self.cmdline_paddr.to_le_bytes(),
        );
        b
    }
}

/// One `hvm_memmap_table_entry` for an e820 entry.
pub fn memmap_entry_bytes(entry: &E820Entry) -> [u8; memmap_entry::SIZE] {
    let mut b = [0u8; memmap_entry::SIZE];
    put(
        &mut b,
        memmap_entry::ADDR,
        &entry.addr.as_u64().to_le_bytes(),
    );
    put(
        &mut b,
        memmap_entry::SIZE_FIELD,
        &entry.size.as_u64().to_le_bytes(),
    );
    put(
        &mut b,
        memmap_entry::TYPE,
        &entry.kind.as_raw().to_le_bytes(),
    );
    b
}

/// A `vmlinux` with a PVH entry.
#[derive(Clone, Debug)]
pub struct PvhKernel<'a> {
    elf: ElfImage<'a>,
    entry: GuestPhysAddr,
}

impl<'a> PvhKernel<'a> {
    /// Parses the ELF image and finds its PVH entry note. The entry must lie
    /// in a loaded segment, and every segment below 4 GiB: the entry runs in
    /// 32-bit mode with paging off.
    pub fn parse(image: &'a [u8]) -> Result<Self, Dom0Error> {
        let elf = ElfImage::parse(image)?;
        let note = elf
            .notes()
            .find(|n| n.name == XEN_NOTE_NAME && n.note_type == XEN_ELFNOTE_PHYS32_ENTRY)
            .ok_or(Dom0Error::NoPvhEntry)?;
        // Linux emits a 4-byte value (`.long`); Xen's reader also takes 8.
        let entry = match note.desc.len() {
            4 => u64::from(u32::from_le_bytes(note.desc.try_into().unwrap_or([0; 4]))),
            8 => u64::from_le_bytes(note.desc.try_into().unwrap_or([0; 8])),
            _ => {
                return Err(Dom0Error::BadElf {
                    reason: "the PVH entry note is not 4 or 8 bytes",
                });
            }
        };
        if elf
            .segments()
            .iter()
            .any(|s| s.range().end.as_u64() > 1 << 32)
        {
            return Err(Dom0Error::BadElf {
                reason: "a segment lies above 4 GiB, out of reach of the 32-bit PVH entry",
            });
        }
        let entry = GuestPhysAddr::new(entry);
        if !elf
            .segments()
            .iter()
            .any(|s| s.range().start <= entry && entry < s.range().end)
        {
            return Err(Dom0Error::BadElf {
                reason: "the PVH entry point lies outside the loaded segments",
            });
        }
        Ok(Self { elf, entry })
    }

    /// The 32-bit physical entry address from the note.
    pub fn entry(&self) -> GuestPhysAddr {
        self.entry
    }

    /// The ELF image (its load segments: [`ElfImage::segments`]).
    pub fn elf(&self) -> &ElfImage<'a> {
        &self.elf
    }

    /// The kernel image's memory: one range from the lowest segment's start
    /// to the highest segment's end, gaps included. Linux counts the gaps
    /// between its segments as part of its image (`[_text, _end)`) and later
    /// hands the padding between sections to its page allocator, so they
    /// must be dom0's RAM and hold nothing else.
    pub fn image_range(&self) -> GuestRange {
        let segments = self.elf.segments();
        let start = segments
            .iter()
            .map(|s| s.range().start)
            .min()
            .unwrap_or_default();
        let end = segments
            .iter()
            .map(|s| s.range().end)
            .max()
            .unwrap_or_default();
        GuestRange { start, end }
    }

    /// What dom0 must own ([`super::memory::plan_dom0_memory`]'s
    /// `required`): the [`Self::image_range`], identity mapped.
    pub fn required_ranges(&self) -> Vec<PhysRange> {
        vec![self.image_range().identity_host()]
    }

    /// What boot structures must keep clear of ([`PvhPlacementRequest::kernel`]):
    /// the [`Self::image_range`]. (The bytes to copy are per segment:
    /// [`ElfImage::segments`].)
    pub fn load_ranges(&self) -> Vec<GuestRange> {
        vec![self.image_range()]
    }
}

/// Where the PVH boot structures go. The boot block holds, from its start:
/// the start info, the boot GDT, the module list, the memory map and the
/// command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvhLayout {
    /// The whole boot block (page-aligned, page-rounded).
    pub block: GuestRange,
    /// `hvm_start_info` (EBX at entry).
    pub start_info: GuestPhysAddr,
    /// The boot GDT (GDTR base).
    pub gdt: GuestPhysAddr,
    /// The module list (one entry if there is an initrd).
    pub modlist: GuestPhysAddr,
    /// The memory map.
    pub memmap: GuestPhysAddr,
    /// Memory map entries the block has room for.
    pub memmap_entries: usize,
    /// The command line.
    pub cmdline: GuestPhysAddr,
    /// Command-line bytes the block has room for (without the NUL).
    pub cmdline_len: usize,
    /// Where the initrd goes, if there is one.
    pub initrd: Option<GuestRange>,
}

/// What [`place_pvh`] needs to know.
#[derive(Clone, Copy, Debug)]
pub struct PvhPlacementRequest<'a> {
    /// dom0's RAM.
    pub dom0_ram: &'a [PhysRange],
    /// The kernel's load ranges ([`PvhKernel::load_ranges`]).
    pub kernel: &'a [GuestRange],
    /// Entries of the memory map to pass.
    pub memmap_entries: usize,
    /// Length of the command line without its NUL.
    pub cmdline_len: usize,
    /// Size of the initrd, if any.
    pub initrd_size: Option<ByteSize>,
}

/// Lowest address of a boot block: page 0 stays free (real-mode IVT).
pub(crate) const LOW_FIRST: u64 = 0x1000;
/// End of conventional memory the boot block prefers (below the EBDA).
pub(crate) const LOW_END: u64 = 0x9_F000;

pub(crate) fn page_round(n: u64) -> u64 {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// dom0's RAM as a set, minus `busy` (page-expanded).
pub(crate) fn free_set(dom0_ram: &[PhysRange], busy: &[GuestRange]) -> RangeSet {
    let mut set = RangeSet::new();
    for r in dom0_ram {
        set.add(r.start.as_u64(), r.end.as_u64());
    }
    for b in busy {
        let start = b.start.align_down(PAGE_SIZE).as_u64();
        let end = b
            .end
            .checked_align_up(PAGE_SIZE)
            .map_or(u64::MAX, GuestPhysAddr::as_u64);
        set.remove(start, end);
    }
    set.shrink_to(PAGE_SIZE);
    set
}

/// Places a boot block of `size` bytes: in conventional memory if it fits
/// (Linux keeps the first MiB reserved, so nothing there is reused before it
/// has read the block), else lowest in dom0's RAM below `limit`.
pub(crate) fn place_block(free: &RangeSet, size: u64, limit: u64) -> Option<u64> {
    free.find_fit(size, PAGE_SIZE, LOW_FIRST, LOW_END, Prefer::Low)
        .or_else(|| free.find_fit(size, PAGE_SIZE, LOW_FIRST, limit, Prefer::Low))
}

/// Places the initrd as high as possible below `limit`, page aligned, above 1 MiB.
pub(crate) fn place_initrd(
    free: &RangeSet,
    size: ByteSize,
    limit: u64,
) -> Result<GuestRange, Dom0Error> {
    let at = free
        .find_fit(
            size.as_u64().max(1),
            PAGE_SIZE,
            0x10_0000,
            limit,
            Prefer::High,
        )
        .ok_or(Dom0Error::NoRoom {
            what: "initrd",
            size,
        })?;
    GuestRange::from_start_size(at, size.as_u64()).ok_or(Dom0Error::NoRoom {
        what: "initrd",
        size,
    })
}

/// Chooses addresses for the boot block (below 1 GiB, which Linux's early
/// page tables map) and the initrd (highest page-aligned place below 4 GiB),
/// all in dom0's RAM and clear of the kernel and of each other.
pub fn place_pvh(req: &PvhPlacementRequest<'_>) -> Result<PvhLayout, Dom0Error> {
    let modules = usize::from(req.initrd_size.is_some());
    let modlist_off = 64 + BOOT_GDT_SIZE;
    let memmap_off = modlist_off + modules * modlist_entry::SIZE;
    let cmdline_off = memmap_off + req.memmap_entries * memmap_entry::SIZE;
    let used = cmdline_off as u64 + req.cmdline_len as u64 + 1;
    let size = page_round(used);

    let mut free = free_set(req.dom0_ram, req.kernel);
    let base = place_block(&free, size, HUGE_PAGE_SIZE).ok_or(Dom0Error::NoRoom {
        what: "PVH start info block",
        size: ByteSize::new(size),
    })?;
    free.remove(base, base + size);
    let initrd = match req.initrd_size {
        Some(s) => Some(place_initrd(&free, s, 1 << 32)?),
        None => None,
    };
    let at = |off: usize| GuestPhysAddr::new(base + off as u64);
    Ok(PvhLayout {
        block: GuestRange {
            start: at(0),
            end: GuestPhysAddr::new(base + size),
        },
        start_info: at(0),
        gdt: at(64),
        modlist: at(modlist_off),
        memmap: at(memmap_off),
        memmap_entries: req.memmap_entries,
        cmdline: at(cmdline_off),
        cmdline_len: req.cmdline_len,
        initrd,
    })
}

/// The boot block's bytes, to be copied to `layout.block.start`. `e820` and
/// `cmdline` must be the sizes the layout was made for; `cmdline` must not
/// contain NUL. `rsdp` is the host's ACPI RSDP (ACPI is passed through).
pub fn build_pvh_boot_block(
    layout: &PvhLayout,
    e820: &[E820Entry],
    cmdline: &[u8],
    rsdp: Option<GuestPhysAddr>,
) -> Result<Vec<u8>, Dom0Error> {
    if e820.len() != layout.memmap_entries || cmdline.len() != layout.cmdline_len {
        return Err(Dom0Error::BadAddress {
            reason: "the PVH layout was made for another memory map or command line",
        });
    }
    if cmdline.contains(&0) {
        return Err(Dom0Error::BadAddress {
            reason: "the command line contains a NUL byte",
        });
    }
    let base = layout.block.start.as_u64();
    let off = |a: GuestPhysAddr| (a.as_u64() - base) as usize;
    let mut block = vec![0u8; layout.block.size().as_u64() as usize];
    let info = StartInfo {
        flags: 0,
        nr_modules: u32::from(layout.initrd.is_some()),
        modlist_paddr: if layout.initrd.is_some() {
            layout.modlist.as_u64()
        } else {
            0
        },
        cmdline_paddr: layout.cmdline.as_u64(),
        rsdp_paddr: rsdp.map_or(0, GuestPhysAddr::as_u64),
        memmap_paddr: layout.memmap.as_u64(),
        memmap_entries: e820.len() as u32,
    };
    put(&mut block, off(layout.start_info), &info.to_bytes());
    put(&mut block, off(layout.gdt), &boot_gdt(false));
    if let Some(initrd) = layout.initrd {
        let module = ModlistEntry {
            paddr: initrd.start.as_u64(),
            size: initrd.size().as_u64(),
            cmdline_paddr: 0,
        };
        put(&mut block, off(layout.modlist), &module.to_bytes());
    }
    for (i, e) in e820.iter().enumerate() {
        put(
            &mut block,
            off(layout.memmap) + i * memmap_entry::SIZE,
            &memmap_entry_bytes(e),
        );
    }
    put(&mut block, off(layout.cmdline), cmdline);
    Ok(block)
}

/// The vCPU state at the PVH entry for this kernel and layout.
pub fn pvh_entry_state(kernel: &PvhKernel<'_>, layout: &PvhLayout) -> EntryState {
    EntryState::pvh(kernel.entry(), layout.start_info, layout.gdt)
}

#[cfg(test)]
mod tests;
