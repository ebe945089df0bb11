//! A builder for 4-level x86-64 translation structures (Intel SDM Vol. 3A
//! §4.5 "4-Level Paging and 5-Level Paging"): PML4 → PDPT → PD → PT, 512
//! eight-byte entries per 4 KiB table, 4 KiB pages at the PT level, 2 MiB
//! pages at the PD level and 1 GiB pages at the PDPT level.
//!
//! The walker is generic over the entry format ([`EntryFormat`]) so that the
//! same code builds the hypervisor's own page tables ([`X86Paging`]) and,
//! later, EPT tables (SDM Vol. 3C, "The Extended Page Table Mechanism (EPT)"),
//! which have the same shape: a 4-level, 9-bits-per-level walk over 48-bit
//! input addresses, with large pages marked by bit 7.
//!
//! It is pure: the tables live wherever [`TableMemory`] says, and it only
//! asks that memory for zeroed tables and for reads and writes of entries.
//! On the bare-metal target the memory is the frame allocator plus the direct
//! map; on the host, the tests use a map of fake tables.

use core::fmt;
use core::marker::PhantomData;

use crate::mm::addr::{ByteSize, HostPhysAddr, PAGE_SIZE};

#[cfg(test)]
mod tests;

/// Entries in one table (SDM Vol. 3A §4.5: "a 4-KByte naturally aligned
/// PML4 table ... comprises 512 64-bit entries").
pub const ENTRIES_PER_TABLE: usize = 512;

/// A level of the 4-level walk, named by the table it indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table: its entries map 4 KiB pages (bits 20:12 of the address).
    Pt,
    /// Page directory: its entries map 2 MiB pages or point to a PT (bits 29:21).
    Pd,
    /// Page-directory-pointer table: 1 GiB pages or a PD (bits 38:30).
    Pdpt,
    /// PML4: its entries always point to a PDPT (bits 47:39).
    Pml4,
}

impl Level {
    /// The lowest address bit that this level's index does not cover.
    pub const fn shift(self) -> u32 {
        match self {
            Self::Pt => 12,
            Self::Pd => 21,
            Self::Pdpt => 30,
            Self::Pml4 => 39,
        }
    }

    /// How much address space one entry of this level covers (the page size
    /// for a leaf: 4 KiB, 2 MiB, 1 GiB; 512 GiB for a PML4 entry).
    pub const fn page_size(self) -> u64 {
        1 << self.shift()
    }

    /// The entry index for `addr` in a table of this level.
    pub const fn index(self, addr: u64) -> usize {
        ((addr >> self.shift()) as usize) & (ENTRIES_PER_TABLE - 1)
    }

    /// The level below; `None` for the PT.
    pub const fn lower(self) -> Option<Level> {
        match self {
            Self::Pt => None,
            Self::Pd => Some(Self::Pt),
            Self::Pdpt => Some(Self::Pd),
            Self::Pml4 => Some(Self::Pdpt),
        }
    }
}

/// An architectural memory type, with the encoding shared by the MTRRs, the
/// PAT and EPT leaf entries (SDM Vol. 3A §12.3 "Methods of Caching
/// Available", Table 12-8 "Memory Types That Can Be Encoded in MTRRs";
/// Vol. 3C §29.3.7 "EPT and Memory Typing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum MemoryType {
    /// UC, uncacheable (0): MMIO.
    Uncacheable = 0,
    /// WC, write combining (1): frame buffers.
    WriteCombining = 1,
    /// WT, write-through (4).
    WriteThrough = 4,
    /// WP, write-protected (5).
    WriteProtected = 5,
    /// WB, write-back (6): ordinary RAM.
    #[default]
    WriteBack = 6,
}

impl MemoryType {
    /// The 3-bit encoding.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// The type with encoding `bits`; `None` for the reserved values 2, 3
    /// and 7 and anything wider than 3 bits.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::Uncacheable),
            1 => Some(Self::WriteCombining),
            4 => Some(Self::WriteThrough),
            5 => Some(Self::WriteProtected),
            6 => Some(Self::WriteBack),
            _ => None,
        }
    }
}

/// Access and caching attributes of a mapping. All `false` (the default) is
/// a present, read-only, non-executable, supervisor, write-back mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MapFlags {
    /// Writes allowed.
    pub writable: bool,
    /// Instruction fetches allowed.
    pub executable: bool,
    /// Accessible from CPL 3 (for EPT: ignored).
    pub user: bool,
    /// Kept in the TLB across CR3 loads (for EPT: ignored).
    pub global: bool,
    /// Uncached (x86: PCD; EPT: memory type UC).
    pub cache_disable: bool,
    /// Write-through (x86: PWT; EPT: memory type WT).
    pub write_through: bool,
    /// Memory type, for formats whose leaves encode one (EPT; overridden by
    /// `cache_disable` and then `write_through` when those are set). x86
    /// paging ignores it: its caching comes from PCD/PWT and the PAT.
    /// Defaults to write-back.
    pub memory_type: MemoryType,
}

/// How entries of one kind of translation structure encode a table pointer
/// or a mapping. Implemented by [`X86Paging`] and by the EPT format
/// [`crate::mm::ept::Ept`] (present = any of R/W/X in bits 2:0, large page =
/// bit 7, memory type in bits 5:3 of a leaf).
pub trait EntryFormat {
    /// The physical address width the format can express: bits 51:12 hold
    /// the address in both formats (SDM Vol. 3A §4.5 "M = MAXPHYADDR", at most
    /// 52).
    const MAX_PHYS_BITS: u32 = 52;

    /// An entry pointing to a lower-level table at `table`, granting every
    /// permission so that the leaf entry alone decides.
    fn table_entry(table: HostPhysAddr) -> u64;
    /// A leaf entry mapping a page of `level`'s size at `phys` (aligned to
    /// it). `level` is never [`Level::Pml4`].
    fn leaf_entry(phys: HostPhysAddr, level: Level, flags: MapFlags) -> u64;
    /// Whether the entry maps or points to anything.
    fn is_present(entry: u64) -> bool;
    /// Whether a present entry at `level` maps a page (rather than pointing
    /// to a table).
    fn is_leaf(entry: u64, level: Level) -> bool;
    /// The address in bits 51:12. For a large-page leaf the caller aligns it
    /// down to the page size (in x86 large pages bit 12 is the PAT bit).
    fn address(entry: u64) -> HostPhysAddr;
    /// The attributes of a leaf entry.
    fn flags(entry: u64) -> MapFlags;
    /// Whether every input address from `first` to `last` (inclusive) can be
    /// translated by this format.
    fn valid_input_range(first: u64, last: u64) -> bool;
}

/// Ordinary x86-64 4-level paging entries (SDM Vol. 3A §4.5, Tables 4-15 to
/// 4-20: formats of PML4E, PDPTE, PDE and PTE).
///
/// `executable: false` sets the XD bit (63), which is reserved, and faults,
/// unless IA32_EFER.NXE = 1 (§4.1.1): the boot code must set NXE before
/// loading tables built with non-executable mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct X86Paging;

impl X86Paging {
    /// Bit 0, P: present.
    pub const PRESENT: u64 = 1 << 0;
    /// Bit 1, R/W: writes allowed.
    pub const WRITABLE: u64 = 1 << 1;
    /// Bit 2, U/S: user-mode accesses allowed.
    pub const USER: u64 = 1 << 2;
    /// Bit 3, PWT: page-level write-through.
    pub const WRITE_THROUGH: u64 = 1 << 3;
    /// Bit 4, PCD: page-level cache disable.
    pub const CACHE_DISABLE: u64 = 1 << 4;
    /// Bit 7 of a PDE or PDPTE, PS: the entry maps a 2 MiB or 1 GiB page.
    pub const PAGE_SIZE: u64 = 1 << 7;
    /// Bit 8 of a leaf, G: global translation.
    pub const GLOBAL: u64 = 1 << 8;
    /// Bit 63, XD: instruction fetches not allowed (needs IA32_EFER.NXE).
    pub const EXECUTE_DISABLE: u64 = 1 << 63;
    /// Bits 51:12: the physical address.
    pub const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;
}

/// Whether `addr` is canonical for 48-bit linear addresses: bits 63:47 all
/// equal (SDM Vol. 3A §3.3.7.1 "Canonical Addressing").
const fn is_canonical(addr: u64) -> bool {
    (((addr << 16) as i64) >> 16) as u64 == addr
}

impl EntryFormat for X86Paging {
    fn table_entry(table: HostPhysAddr) -> u64 {
        (table.as_u64() & Self::ADDRESS_MASK) | Self::PRESENT | Self::WRITABLE | Self::USER
    }

    fn leaf_entry(phys: HostPhysAddr, level: Level, flags: MapFlags) -> u64 {
        let bit = |on: bool, bit: u64| if on { bit } else { 0 };
        (phys.as_u64() & Self::ADDRESS_MASK)
            | Self::PRESENT
            | bit(flags.writable, Self::WRITABLE)
            | bit(flags.user, Self::USER)
            | bit(flags.write_through, Self::WRITE_THROUGH)
            | bit(flags.cache_disable, Self::CACHE_DISABLE)
            | bit(level != Level::Pt, Self::PAGE_SIZE)
            | bit(flags.global, Self::GLOBAL)
            | bit(!flags.executable, Self::EXECUTE_DISABLE)
    }

    fn is_present(entry: u64) -> bool {
        entry & Self::PRESENT != 0
    }

    fn is_leaf(entry: u64, level: Level) -> bool {
        Self::is_present(entry)
            && match level {
                Level::Pt => true,
                // Bit 7 (PS) of a PDE or PDPTE; it is reserved in a PML4E.
                Level::Pd | Level::Pdpt => entry & Self::PAGE_SIZE != 0,
                Level::Pml4 => false,
            }
    }

    fn address(entry: u64) -> HostPhysAddr {
        HostPhysAddr::new(entry & Self::ADDRESS_MASK)
    }

    fn flags(entry: u64) -> MapFlags {
        let has = |bit: u64| entry & bit != 0;
        MapFlags {
            writable: has(Self::WRITABLE),
            executable: !has(Self::EXECUTE_DISABLE),
            user: has(Self::USER),
            global: has(Self::GLOBAL),
            cache_disable: has(Self::CACHE_DISABLE),
            write_through: has(Self::WRITE_THROUGH),
            memory_type: MemoryType::WriteBack,
        }
    }

    /// Both ends canonical and in the same half: a range may not run across
    /// the non-canonical hole between 2^47 and 2^64 - 2^47.
    fn valid_input_range(first: u64, last: u64) -> bool {
        is_canonical(first) && is_canonical(last) && (first >> 47) == (last >> 47) && first <= last
    }
}

/// Where the tables live: a source of zeroed 4 KiB tables and access to their
/// entries by the tables' physical addresses.
pub trait TableMemory {
    /// A new, zeroed, 4 KiB aligned table; `None` when memory is exhausted.
    fn alloc_table(&mut self) -> Option<HostPhysAddr>;
    /// Entry `index` (below 512) of the table at `table`.
    fn read(&self, table: HostPhysAddr, index: usize) -> u64;
    /// Sets entry `index` (below 512) of the table at `table`.
    fn write(&mut self, table: HostPhysAddr, index: usize, value: u64);
}

/// Why a mapping was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// [`TableMemory::alloc_table`] failed. The mappings made before the
    /// failure stay, and so do the tables created for them.
    OutOfMemory,
    /// The input address, the physical address or the size is not a multiple
    /// of 4 KiB.
    Misaligned,
    /// The input or the physical range runs past 2^64.
    Overflow,
    /// The input range is not translatable by the format (for x86: not
    /// canonical, or running across the non-canonical hole).
    InvalidAddress,
    /// The physical range reaches beyond what the format can express.
    PhysTooLarge,
    /// Part of the input range is mapped already; nothing was changed.
    Overlap {
        /// The first input address found mapped.
        virt: u64,
    },
    /// The address is not mapped by a 4 KiB page (absent, or inside a large
    /// page), so its 4 KiB leaf cannot be replaced.
    NotA4KiBLeaf {
        /// The input address.
        virt: u64,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory => f.write_str("out of memory for page tables"),
            Self::Misaligned => {
                f.write_str("mapping not 4 KiB aligned (address, physical address or size)")
            }
            Self::Overflow => f.write_str("mapping runs past the end of the address space"),
            Self::InvalidAddress => {
                f.write_str("mapping outside the translatable (canonical) address range")
            }
            Self::PhysTooLarge => {
                f.write_str("physical address beyond what the page-table format can express")
            }
            Self::Overlap { virt } => write!(f, "address {virt:#x} is already mapped"),
            Self::NotA4KiBLeaf { virt } => {
                write!(f, "address {virt:#x} is not mapped by a 4 KiB page")
            }
        }
    }
}

/// A 4-level translation structure of format `F`, rooted at a PML4 table.
pub struct PageTable<F: EntryFormat> {
    root: HostPhysAddr,
    format: PhantomData<fn() -> F>,
}

impl<F: EntryFormat> fmt::Debug for PageTable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTable")
            .field("format", &core::any::type_name::<F>())
            .field("root", &self.root)
            .finish()
    }
}

impl<F: EntryFormat> PageTable<F> {
    /// An empty structure: one zeroed PML4 table.
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        let root = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
        Ok(Self {
            root,
            format: PhantomData,
        })
    }

    /// The PML4 table's physical address (for CR3, or the EPT pointer).
    pub fn root(&self) -> HostPhysAddr {
        self.root
    }

    /// Maps `[virt, virt + size)` to `[phys, phys + size)` with `flags`, using
    /// 1 GiB pages where `allow_1g` and both addresses are 1 GiB aligned over
    /// a whole gigabyte, 2 MiB pages likewise, and 4 KiB pages elsewhere.
    ///
    /// Refuses unaligned inputs, ranges past 2^64, input addresses the format
    /// cannot translate, and any overlap with an existing mapping: the whole
    /// range is checked before anything is written, so an overlap changes
    /// nothing. A size of zero maps nothing.
    pub fn map(
        &mut self,
        mem: &mut impl TableMemory,
        virt: u64,
        phys: HostPhysAddr,
        size: ByteSize,
        flags: MapFlags,
        allow_1g: bool,
    ) -> Result<(), MapError> {
        let request = Request {
            flags,
            allow_1g,
            repeat: false,
        };
        self.map_checked(mem, virt, phys, size.as_u64(), size.as_u64(), request)
    }

    /// Maps every 4 KiB page of `[virt, virt + size)` to the single 4 KiB
    /// frame `frame` with `flags`, using 4 KiB leaves only: one page seen
    /// through a whole range (for instance a read-only page of all-ones
    /// standing in for memory a guest must not see). Checked like [`Self::map`]:
    /// an overlap changes nothing.
    pub fn map_repeated(
        &mut self,
        mem: &mut impl TableMemory,
        virt: u64,
        frame: HostPhysAddr,
        size: ByteSize,
        flags: MapFlags,
    ) -> Result<(), MapError> {
        let request = Request {
            flags,
            allow_1g: false,
            repeat: true,
        };
        self.map_checked(mem, virt, frame, size.as_u64(), PAGE_SIZE, request)
    }

    /// The checks and the walk shared by [`Self::map`] and
    /// [`Self::map_repeated`]: `phys_span` bytes of physical memory from
    /// `phys` are used (all of `size`, or one page repeated).
    fn map_checked(
        &mut self,
        mem: &mut impl TableMemory,
        virt: u64,
        phys: HostPhysAddr,
        size: u64,
        phys_span: u64,
        request: Request,
    ) -> Result<(), MapError> {
        if size == 0 {
            return Ok(());
        }
        if !virt.is_multiple_of(PAGE_SIZE)
            || !phys.is_aligned(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
        {
            return Err(MapError::Misaligned);
        }
        let last = virt.checked_add(size - 1).ok_or(MapError::Overflow)?;
        let phys_end = phys
            .as_u64()
            .checked_add(phys_span)
            .ok_or(MapError::Overflow)?;
        if F::MAX_PHYS_BITS < 64 && phys_end > 1 << F::MAX_PHYS_BITS {
            return Err(MapError::PhysTooLarge);
        }
        if !F::valid_input_range(virt, last) {
            return Err(MapError::InvalidAddress);
        }
        check_unmapped::<F>(mem, self.root, Level::Pml4, virt, size)?;
        map_in::<F>(
            mem,
            self.root,
            Level::Pml4,
            virt,
            phys.as_u64(),
            size,
            request,
        )
    }

    /// Replaces the 4 KiB leaf that maps `virt` by one mapping `phys` with
    /// `flags`, and returns what it mapped before. The caller flushes the
    /// TLBs that may hold the old translation.
    pub fn remap_4k(
        &mut self,
        mem: &mut impl TableMemory,
        virt: u64,
        phys: HostPhysAddr,
        flags: MapFlags,
    ) -> Result<(HostPhysAddr, MapFlags), MapError> {
        if !phys.is_aligned(PAGE_SIZE) {
            return Err(MapError::Misaligned);
        }
        if !F::valid_input_range(virt, virt) {
            return Err(MapError::InvalidAddress);
        }
        let mut table = self.root;
        let mut level = Level::Pml4;
        loop {
            let index = level.index(virt);
            let entry = mem.read(table, index);
            if !F::is_present(entry) {
                return Err(MapError::NotA4KiBLeaf { virt });
            }
            if level == Level::Pt {
                mem.write(table, index, F::leaf_entry(phys, level, flags));
                return Ok((F::address(entry), F::flags(entry)));
            }
            if F::is_leaf(entry, level) {
                return Err(MapError::NotA4KiBLeaf { virt });
            }
            table = F::address(entry);
            level = level.lower().ok_or(MapError::NotA4KiBLeaf { virt })?;
        }
    }

    /// Where `virt` leads: the physical address, the leaf's attributes and the
    /// level of the leaf (the page size). `None` if it is not mapped or not a
    /// valid input address.
    pub fn translate(
        &self,
        mem: &impl TableMemory,
        virt: u64,
    ) -> Option<(HostPhysAddr, MapFlags, Level)> {
        if !F::valid_input_range(virt, virt) {
            return None;
        }
        let mut table = self.root;
        let mut level = Level::Pml4;
        loop {
            let entry = mem.read(table, level.index(virt));
            if !F::is_present(entry) {
                return None;
            }
            if F::is_leaf(entry, level) {
                let span = level.page_size();
                let base = F::address(entry).align_down(span).as_u64();
                return Some((
                    HostPhysAddr::new(base | (virt & (span - 1))),
                    F::flags(entry),
                    level,
                ));
            }
            level = level.lower()?;
            table = F::address(entry);
        }
    }
}

/// The parts of a map request that stay the same all the way down.
#[derive(Debug, Clone, Copy)]
struct Request {
    flags: MapFlags,
    allow_1g: bool,
    /// Every page maps the same 4 KiB frame (4 KiB leaves only).
    repeat: bool,
}

/// One step of a walk over `[virt, virt + remaining)` inside a table of
/// `level`: the entry index, and how much of the range falls under that
/// entry, and whether it covers the entry's whole span.
fn step(level: Level, virt: u64, remaining: u64) -> (usize, u64, bool) {
    let span = level.page_size();
    let offset = virt & (span - 1);
    let chunk = remaining.min(span - offset);
    (level.index(virt), chunk, offset == 0 && chunk == span)
}

/// Fails with [`MapError::Overlap`] if anything in `[virt, virt + remaining)`
/// is mapped under the table at `table` (of `level`). Writes nothing.
fn check_unmapped<F: EntryFormat>(
    mem: &impl TableMemory,
    table: HostPhysAddr,
    level: Level,
    mut virt: u64,
    mut remaining: u64,
) -> Result<(), MapError> {
    while remaining > 0 {
        let (index, chunk, _) = step(level, virt, remaining);
        let entry = mem.read(table, index);
        if F::is_present(entry) {
            match level.lower() {
                Some(lower) if !F::is_leaf(entry, level) => {
                    check_unmapped::<F>(mem, F::address(entry), lower, virt, chunk)?;
                }
                _ => return Err(MapError::Overlap { virt }),
            }
        }
        // Wraps to 0 only after the last chunk of a range ending at 2^64.
        virt = virt.wrapping_add(chunk);
        remaining -= chunk;
    }
    Ok(())
}

/// Maps `[virt, virt + remaining)` to `phys` under the table at `table` (of
/// `level`), which `check_unmapped` has found free. Where a lower table
/// exists already it is used, even if a large page would otherwise fit.
fn map_in<F: EntryFormat>(
    mem: &mut impl TableMemory,
    table: HostPhysAddr,
    level: Level,
    mut virt: u64,
    mut phys: u64,
    mut remaining: u64,
    request: Request,
) -> Result<(), MapError> {
    while remaining > 0 {
        let (index, chunk, whole) = step(level, virt, remaining);
        let leaf_allowed = match level {
            Level::Pt => true,
            Level::Pd => !request.repeat,
            Level::Pdpt => request.allow_1g && !request.repeat,
            Level::Pml4 => false,
        };
        let entry = mem.read(table, index);
        let present = F::is_present(entry);
        if !present && leaf_allowed && whole && phys.is_multiple_of(level.page_size()) {
            mem.write(
                table,
                index,
                F::leaf_entry(HostPhysAddr::new(phys), level, request.flags),
            );
        } else {
            // A PT chunk is always whole and aligned, so only levels with a
            // lower one get here; and `check_unmapped` ruled out leaves.
            let Some(lower) = level.lower() else {
                return Err(MapError::Overlap { virt });
            };
            if present && F::is_leaf(entry, level) {
                return Err(MapError::Overlap { virt });
            }
            let next = if present {
                F::address(entry)
            } else {
                let new = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                mem.write(table, index, F::table_entry(new));
                new
            };
            map_in::<F>(mem, next, lower, virt, phys, chunk, request)?;
        }
        virt = virt.wrapping_add(chunk);
        if !request.repeat {
            phys += chunk;
        }
        remaining -= chunk;
    }
    Ok(())
}
