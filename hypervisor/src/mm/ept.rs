//! Extended page tables (Intel SDM Vol. 3C §29.3 "The Extended Page Table
//! Mechanism (EPT)"): the entry format for the generic walker of
//! [`crate::mm::page_table`], the EPT pointer, and the identity-map builder
//! for dom0.
//!
//! The structure is the same 4-level, 512-entries-per-table walk as x86-64
//! paging over 48-bit guest-physical addresses (§29.3.2 "EPT Translation
//! Mechanism"), with different entry bits (Tables 29-1 to 29-6):
//!
//! | bits  | every entry | leaf (PTE, 2 MiB PDE, 1 GiB PDPTE) |
//! |-------|-------------|------------------------------------|
//! | 0     | R: reads allowed | same |
//! | 1     | W: writes allowed | same |
//! | 2     | X: instruction fetches allowed | same |
//! | 5:3   | reserved (0) | memory type (UC 0, WC 1, WT 4, WP 5, WB 6) |
//! | 6     | reserved (0) | ignore PAT |
//! | 7     | 0 = points to a table | 1 = large page (PDE, PDPTE); ignored in a PTE |
//! | 8     | accessed (with A/D enabled) | same |
//! | 9     | ignored | dirty (with A/D enabled) |
//! | 10    | user-mode execute (mode-based execute control), else ignored | same |
//! | 51:12 | next table's address | page address (51:21 for 2 MiB, 51:30 for 1 GiB) |
//!
//! An entry is not present when bits 2:0 are all 0. Write without read is a
//! misconfiguration (§29.3.3.1), so every mapping made here is readable.

use crate::mm::addr::{HostPhysAddr, PhysRange};
use crate::mm::page_table::{EntryFormat, Level, MapError, MapFlags, PageTable, TableMemory};

pub use crate::mm::page_table::MemoryType as EptMemoryType;

#[cfg(test)]
mod tests;

/// The EPT entry format (SDM Vol. 3C Tables 29-1 to 29-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ept;

impl Ept {
    /// Bit 0: read access.
    pub const READ: u64 = 1 << 0;
    /// Bit 1: write access.
    pub const WRITE: u64 = 1 << 1;
    /// Bit 2: execute access (supervisor-mode execute with mode-based
    /// execute control).
    pub const EXECUTE: u64 = 1 << 2;
    /// Bits 5:3 of a leaf: the memory type.
    pub const MEMORY_TYPE_SHIFT: u32 = 3;
    /// Mask of the memory-type field.
    pub const MEMORY_TYPE_MASK: u64 = 7 << Self::MEMORY_TYPE_SHIFT;
    /// Bit 6 of a leaf: ignore the guest PAT.
    pub const IGNORE_PAT: u64 = 1 << 6;
    /// Bit 7 of a PDE or PDPTE: maps a 2 MiB or 1 GiB page.
    pub const LARGE_PAGE: u64 = 1 << 7;
    /// Bit 8: accessed (when EPTP bit 6 enables A/D flags).
    pub const ACCESSED: u64 = 1 << 8;
    /// Bit 9 of a leaf: dirty (when EPTP bit 6 enables A/D flags).
    pub const DIRTY: u64 = 1 << 9;
    /// Bit 10: user-mode execute (mode-based execute control only;
    /// ignored otherwise).
    pub const USER_EXECUTE: u64 = 1 << 10;
    /// Bits 51:12: the physical address.
    pub const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;
    /// Guest-physical addresses translated by a 4-level EPT are below 2^48
    /// (§29.3.2).
    pub const INPUT_LIMIT: u64 = 1 << 48;
}

impl EntryFormat for Ept {
    /// R, W and X (and user-mode execute, in case mode-based execute
    /// control is enabled) so that the leaf alone decides; bits 7:3 must be
    /// 0 in a non-leaf entry (Tables 29-1, 29-3, 29-5).
    fn table_entry(table: HostPhysAddr) -> u64 {
        (table.as_u64() & Self::ADDRESS_MASK)
            | Self::READ
            | Self::WRITE
            | Self::EXECUTE
            | Self::USER_EXECUTE
    }

    /// Always readable. The memory type is `flags.memory_type`, or UC when
    /// `cache_disable` is set, or else WT when `write_through` is set; the
    /// guest PAT is honoured (bit 6 clear), so a guest can still make a
    /// range WC on top of UC or WB. `user` and `global` have no EPT meaning.
    fn leaf_entry(phys: HostPhysAddr, level: Level, flags: MapFlags) -> u64 {
        let memory_type = if flags.cache_disable {
            EptMemoryType::Uncacheable
        } else if flags.write_through {
            EptMemoryType::WriteThrough
        } else {
            flags.memory_type
        };
        let bit = |on: bool, bit: u64| if on { bit } else { 0 };
        (phys.as_u64() & Self::ADDRESS_MASK)
            | Self::READ
            | bit(flags.writable, Self::WRITE)
            | bit(flags.executable, Self::EXECUTE | Self::USER_EXECUTE)
            | (u64::from(memory_type.bits()) << Self::MEMORY_TYPE_SHIFT)
            | bit(level != Level::Pt, Self::LARGE_PAGE)
    }

    /// Present when any of R, W, X is set (§29.3.2: "If bits 2:0 are all 0,
    /// the entry is not present").
    fn is_present(entry: u64) -> bool {
        entry & (Self::READ | Self::WRITE | Self::EXECUTE) != 0
    }

    fn is_leaf(entry: u64, level: Level) -> bool {
        Self::is_present(entry)
            && match level {
                Level::Pt => true,
                Level::Pd | Level::Pdpt => entry & Self::LARGE_PAGE != 0,
                Level::Pml4 => false,
            }
    }

    fn address(entry: u64) -> HostPhysAddr {
        HostPhysAddr::new(entry & Self::ADDRESS_MASK)
    }

    /// Writable and executable from bits 1 and 2; the memory type from bits
    /// 5:3 (reported in `memory_type`, never as `cache_disable` or
    /// `write_through`; a reserved encoding, which this module never writes,
    /// reads as UC).
    fn flags(entry: u64) -> MapFlags {
        let bits = ((entry & Self::MEMORY_TYPE_MASK) >> Self::MEMORY_TYPE_SHIFT) as u8;
        MapFlags {
            writable: entry & Self::WRITE != 0,
            executable: entry & Self::EXECUTE != 0,
            memory_type: EptMemoryType::from_bits(bits).unwrap_or(EptMemoryType::Uncacheable),
            ..MapFlags::default()
        }
    }

    fn valid_input_range(first: u64, last: u64) -> bool {
        first <= last && last < Self::INPUT_LIMIT
    }
}

/// The permissions of an EPT mapping. Every mapping is readable: write-only
/// is a misconfiguration, and execute-only needs a CPU capability
/// (IA32_VMX_EPT_VPID_CAP bit 0) that the hypervisor does not rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EptPerms {
    /// R.
    Read,
    /// R + W (device memory, data).
    ReadWrite,
    /// R + X.
    ReadExecute,
    /// R + W + X (ordinary guest RAM).
    ReadWriteExecute,
}

impl EptPerms {
    /// The mapping flags for these permissions and `memory_type`.
    pub fn flags(self, memory_type: EptMemoryType) -> MapFlags {
        MapFlags {
            writable: matches!(self, Self::ReadWrite | Self::ReadWriteExecute),
            executable: matches!(self, Self::ReadExecute | Self::ReadWriteExecute),
            memory_type,
            ..MapFlags::default()
        }
    }
}

/// The paging-structure memory type in an EPT pointer (§25.6.11: only UC and
/// WB are allowed, as IA32_VMX_EPT_VPID_CAP bits 8 and 14 report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EptpMemoryType {
    /// 0: uncacheable.
    Uncacheable,
    /// 6: write-back.
    WriteBack,
}

/// An EPT pointer, the value of the VMCS EPTP field (SDM Vol. 3C §25.6.11,
/// Table 25-9 "Format of Extended-Page-Table Pointer"):
///
/// | bits  | meaning |
/// |-------|---------|
/// | 2:0   | memory type of the EPT paging structures (0 UC, 6 WB) |
/// | 5:3   | page-walk length - 1 (3 for a 4-level walk) |
/// | 6     | enable accessed and dirty flags |
/// | 7     | enable supervisor shadow-stack access rights |
/// | 11:8  | reserved |
/// | 51:12 | PML4 table address |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eptp(u64);

impl Eptp {
    /// Bit 6: accessed and dirty flags enabled.
    pub const ACCESSED_DIRTY: u64 = 1 << 6;
    /// The 4-level walk, encoded as length - 1 in bits 5:3.
    pub const WALK_LENGTH_4: u64 = 3 << 3;

    /// A 4-level, write-back EPT rooted at `pml4` (4 KiB aligned), without
    /// accessed/dirty flags.
    pub const fn new(pml4: HostPhysAddr) -> Self {
        Self::with(pml4, EptpMemoryType::WriteBack, false)
    }

    /// A 4-level EPT rooted at `pml4` with the paging structures' memory
    /// type and the A/D enable chosen (A/D needs IA32_VMX_EPT_VPID_CAP bit
    /// 21).
    pub const fn with(
        pml4: HostPhysAddr,
        memory_type: EptpMemoryType,
        accessed_dirty: bool,
    ) -> Self {
        let mt = match memory_type {
            EptpMemoryType::Uncacheable => 0,
            EptpMemoryType::WriteBack => 6,
        };
        let ad = if accessed_dirty {
            Self::ACCESSED_DIRTY
        } else {
            0
        };
        Self((pml4.as_u64() & Ept::ADDRESS_MASK) | Self::WALK_LENGTH_4 | ad | mt)
    }

    /// The EPTP of `table`.
    pub fn of(table: &PageTable<Ept>) -> Self {
        Self::new(table.root())
    }

    /// The raw value for VMWRITE and INVEPT.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Bits 2:0: the paging structures' memory type.
    pub const fn memory_type(self) -> u8 {
        (self.0 & 7) as u8
    }

    /// Bits 5:3 plus one: the page-walk length.
    pub const fn walk_length(self) -> u8 {
        ((self.0 >> 3) & 7) as u8 + 1
    }

    /// Bit 6: accessed and dirty flags enabled.
    pub const fn accessed_dirty(self) -> bool {
        self.0 & Self::ACCESSED_DIRTY != 0
    }

    /// Bits 51:12: the PML4 table.
    pub const fn root(self) -> HostPhysAddr {
        HostPhysAddr::new(self.0 & Ept::ADDRESS_MASK)
    }
}

/// Why [`map_identity`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityMapError {
    /// Which entry of `ranges` failed. The entries before it are mapped.
    pub index: usize,
    /// What went wrong with it.
    pub error: MapError,
}

impl core::fmt::Display for IdentityMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "identity range {}: {}", self.index, self.error)
    }
}

/// Maps each range guest-physical == host-physical with its memory type and
/// permissions, using 1 GiB pages (when `allow_1g`: IA32_VMX_EPT_VPID_CAP bit
/// 17) and 2 MiB pages wherever a range covers a whole aligned one, and
/// 4 KiB pages elsewhere. Ranges must be 4 KiB aligned, below 2^48, and
/// disjoint from each other and from what is mapped already; empty ranges
/// are skipped.
pub fn map_identity(
    pt: &mut PageTable<Ept>,
    mem: &mut impl TableMemory,
    ranges: &[(PhysRange, EptMemoryType, EptPerms)],
    allow_1g: bool,
) -> Result<(), IdentityMapError> {
    for (index, &(range, memory_type, perms)) in ranges.iter().enumerate() {
        pt.map(
            mem,
            range.start.as_u64(),
            range.start,
            range.size(),
            perms.flags(memory_type),
            allow_1g,
        )
        .map_err(|error| IdentityMapError { index, error })?;
    }
    Ok(())
}
