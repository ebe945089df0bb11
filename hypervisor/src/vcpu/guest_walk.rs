//! Translating a guest's linear addresses through the guest's own page
//! tables, and fetching the bytes of the instruction at a guest's RIP.
//!
//! An EPT violation (SDM Vol. 3C §29.3.3.2) reports the guest-physical
//! address of the access, but neither the instruction nor its length, so to
//! emulate an MMIO access the hypervisor reads the instruction itself: it
//! translates the code's linear address (CS.base + RIP) the way the guest's
//! MMU did and reads guest memory there.
//!
//! The walk follows SDM Vol. 3A chapter 4 for every paging mode (§4.1.1):
//! none (CR0.PG = 0), 32-bit (§4.3), PAE (§4.4), 4-level and 5-level (§4.5).
//! It is read-only and raises nothing: it checks the present bits and the
//! reserved bits (§4.7, "RSVD"), gathers the access rights on the way
//! (§4.6) and reports them, but sets no accessed or dirty flag (the CPU set
//! them when it ran the instruction) and leaves the decision about a failed
//! walk (inject a #PF, stop the guest) to the caller.
//!
//! Guest memory is reached only through [`GuestPhysRead`], so the walk is
//! tested on the host with a fake memory and never trusts what it reads:
//! every entry is guest data, and no value of an entry, a control register
//! or an address makes it panic.
#![deny(unsafe_code)]

use core::fmt;

use crate::mm::addr::PAGE_SIZE;

/// The longest x86 instruction: 15 bytes (SDM Vol. 2A §2.3.11; a longer one
/// raises #GP, Vol. 3A §6.15 "Interrupt 13").
pub const MAX_INSN_LEN: usize = 15;

/// 4 MiB: a 32-bit paging page-directory entry with PS = 1 (SDM Vol. 3A
/// §4.3).
pub const PSE_PAGE_SIZE: u64 = 4 * 1024 * 1024;

/// Read access to guest-physical memory, supplied by the backend.
pub trait GuestPhysRead {
    /// The 8 bytes at guest-physical `gpa` as a little-endian `u64`, or
    /// `None` when that is not memory the hypervisor can read for the guest
    /// (outside its RAM, MMIO). This module only ever passes 8-byte-aligned
    /// addresses, so a read never crosses a page.
    fn read_u64(&self, gpa: u64) -> Option<u64>;
}

// Control-register bits (SDM Vol. 3A §2.5, §2.2.1).
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

// Paging-structure entry bits (SDM Vol. 3A Tables 4-4 to 4-6, 4-8 to 4-11,
// and the entry formats of §4.5).
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;

/// The guest's paging controls: the values the hardware uses (the VMCS
/// guest-state fields GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_IA32_EFER),
/// not the read shadows the guest sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PagingRegs {
    /// CR0 (PG, bit 31).
    pub cr0: u64,
    /// CR3: the root of the tables.
    pub cr3: u64,
    /// CR4 (PSE, bit 4; PAE, bit 5; LA57, bit 12).
    pub cr4: u64,
    /// IA32_EFER (LMA, bit 10; NXE, bit 11).
    pub efer: u64,
}

/// How the guest translates linear addresses (SDM Vol. 3A §4.1.1, Table
/// 4-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingMode {
    /// CR0.PG = 0: a linear address is the physical address (32 bits).
    None,
    /// CR0.PG = 1, CR4.PAE = 0: two levels of 32-bit entries (§4.3).
    Bits32,
    /// CR0.PG = 1, CR4.PAE = 1, EFER.LMA = 0: four PDPTEs, then two levels
    /// of 64-bit entries (§4.4).
    Pae,
    /// EFER.LMA = 1, CR4.LA57 = 0 (§4.5).
    Level4,
    /// EFER.LMA = 1, CR4.LA57 = 1 (§4.5).
    Level5,
}

impl PagingMode {
    /// The mode the controls select. EFER.LMA implies CR0.PG and CR4.PAE
    /// (VM entry checks it, SDM Vol. 3C §27.3.1.1), so with paging on it
    /// decides before CR4.PAE does.
    pub const fn of(regs: &PagingRegs) -> Self {
        if regs.cr0 & CR0_PG == 0 {
            Self::None
        } else if regs.efer & EFER_LMA != 0 {
            if regs.cr4 & CR4_LA57 != 0 {
                Self::Level5
            } else {
                Self::Level4
            }
        } else if regs.cr4 & CR4_PAE != 0 {
            Self::Pae
        } else {
            Self::Bits32
        }
    }

    /// Whether linear addresses are 64 bits wide (IA-32e modes); otherwise
    /// they are 32 bits and wrap at 4 GiB.
    pub const fn is_long(self) -> bool {
        matches!(self, Self::Level4 | Self::Level5)
    }
}

/// Why a walk failed. Levels count as the SDM's tables do, from the leaf
/// up: 1 = page table, 2 = page directory, 3 = page-directory-pointer table
/// (or PAE's PDPTEs), 4 = PML4, 5 = PML5; level 0 is the page itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// In an IA-32e mode the address is not canonical: its top bits are
    /// not copies of bit 47 (4-level) or bit 56 (5-level) (SDM Vol. 1
    /// §3.3.7.1; the CPU raises #GP or #SS instead of walking).
    NonCanonical {
        /// The linear address.
        linear: u64,
    },
    /// The entry at `level` has P = 0.
    NotPresent {
        /// The level of the entry.
        level: u8,
    },
    /// The entry at `level` sets a reserved bit (SDM Vol. 3A §4.7, a #PF
    /// with RSVD = 1 on hardware).
    Reserved {
        /// The level of the entry.
        level: u8,
        /// The entry.
        entry: u64,
    },
    /// The backend could not read guest-physical `gpa`: an entry of
    /// `level`, or with level 0 the bytes of the page itself.
    Unreadable {
        /// The level being read.
        level: u8,
        /// The address read.
        gpa: u64,
    },
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NonCanonical { linear } => {
                write!(f, "linear address {linear:#x} is not canonical")
            }
            Self::NotPresent { level } => {
                write!(f, "guest {} entry not present", level_name(level))
            }
            Self::Reserved { level, entry } => {
                write!(
                    f,
                    "guest {} entry {entry:#x} sets a reserved bit",
                    level_name(level)
                )
            }
            Self::Unreadable { level, gpa } => write!(
                f,
                "guest-physical {gpa:#x} ({}) is not readable guest memory",
                level_name(level)
            ),
        }
    }
}

/// The SDM's name for a level's table (for messages).
fn level_name(level: u8) -> &'static str {
    match level {
        0 => "page contents",
        1 => "page-table",
        2 => "page-directory",
        3 => "page-directory-pointer-table",
        4 => "PML4",
        _ => "PML5",
    }
}

/// A successful translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The guest-physical address.
    pub gpa: u64,
    /// Bytes mapped by the leaf: 4 KiB, 2 MiB, 4 MiB or 1 GiB (4 KiB
    /// without paging).
    pub page_size: u64,
    /// R/W was 1 at every level (SDM Vol. 3A §4.6; whether a write is
    /// allowed also depends on CPL and CR0.WP).
    pub writable: bool,
    /// U/S was 1 at every level (whether an access is allowed also depends
    /// on CPL, SMEP, SMAP and protection keys).
    pub user: bool,
    /// No level set XD while EFER.NXE = 1.
    pub executable: bool,
}

impl Translation {
    /// Everything allowed: the rights without paging.
    const fn unpaged(gpa: u64) -> Self {
        Self {
            gpa,
            page_size: PAGE_SIZE,
            writable: true,
            user: true,
            executable: true,
        }
    }
}

/// The guest's translation regime: its paging controls plus its physical
/// address width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestPaging {
    regs: PagingRegs,
    mode: PagingMode,
    maxphyaddr: u8,
}

impl GuestPaging {
    /// A regime for `regs`, with `maxphyaddr` the physical-address width
    /// the guest's CPUID reports (leaf 8000_0008H EAX[7:0], SDM Vol. 3A
    /// §4.1.4), clamped to 32..=52. Entry bits from it up to bit 51 are
    /// reserved.
    pub const fn new(regs: PagingRegs, maxphyaddr: u8) -> Self {
        let maxphyaddr = if maxphyaddr < 32 {
            32
        } else if maxphyaddr > 52 {
            52
        } else {
            maxphyaddr
        };
        Self {
            regs,
            mode: PagingMode::of(&regs),
            maxphyaddr,
        }
    }

    /// The paging mode.
    pub const fn mode(&self) -> PagingMode {
        self.mode
    }

    /// Translates `linear` (truncated to 32 bits outside IA-32e modes) the
    /// way the guest's MMU does.
    pub fn translate(
        &self,
        mem: &impl GuestPhysRead,
        linear: u64,
    ) -> Result<Translation, WalkError> {
        match self.mode {
            PagingMode::None => Ok(Translation::unpaged(linear & 0xFFFF_FFFF)),
            PagingMode::Bits32 => self.walk_32bit(mem, linear & 0xFFFF_FFFF),
            PagingMode::Pae => self.walk_pae(mem, linear & 0xFFFF_FFFF),
            PagingMode::Level4 => self.walk_long(mem, linear, 4),
            PagingMode::Level5 => self.walk_long(mem, linear, 5),
        }
    }

    fn nxe(&self) -> bool {
        self.regs.efer & EFER_NXE != 0
    }

    /// Bits M-1:12: the address of a table or a 4 KiB page.
    fn addr_mask(&self) -> u64 {
        ((1u64 << self.maxphyaddr) - 1) & !(PAGE_SIZE - 1)
    }

    /// Bits `top`:M, reserved in 64-bit entries (`top` is 51 for IA-32e
    /// paging, 62 for PAE paging's directories and tables, 63 for PAE's
    /// PDPTEs).
    fn high_reserved(&self, top: u32) -> u64 {
        let upto = if top >= 63 {
            u64::MAX
        } else {
            (1u64 << (top + 1)) - 1
        };
        upto & !((1u64 << self.maxphyaddr) - 1)
    }

    /// 4-level and 5-level paging (SDM Vol. 3A §4.5): 9 bits of the linear
    /// address per level, 64-bit entries; PS = 1 makes a PDPTE a 1 GiB leaf
    /// and a PDE a 2 MiB leaf.
    fn walk_long(
        &self,
        mem: &impl GuestPhysRead,
        linear: u64,
        levels: u8,
    ) -> Result<Translation, WalkError> {
        // Canonical: bits 63:N-1 are equal, N = 48 or 57.
        let width = 12 + 9 * u32::from(levels);
        let top = (linear as i64) >> (width - 1);
        if top != 0 && top != -1 {
            return Err(WalkError::NonCanonical { linear });
        }
        // Bits 51:M in every entry; XD without EFER.NXE (§4.5, the entry
        // format tables).
        let mut common = self.high_reserved(51);
        if !self.nxe() {
            common |= XD;
        }
        let table = self.regs.cr3 & self.addr_mask();
        self.walk_64bit_entries(mem, linear, levels, table, common, Rights::ALL)
    }

    /// PAE paging (SDM Vol. 3A §4.4): CR3 bits 31:5 locate four PDPTEs
    /// (Table 4-8), then a page directory and a page table of 64-bit
    /// entries (Tables 4-9 to 4-11).
    ///
    /// The CPU loads the PDPTEs when CR3 is written (§4.4.1) and VT-x keeps
    /// them in the VMCS (GUEST_PDPTE0..3); this walk reads them from memory,
    /// which differs only if the guest changed them without reloading CR3.
    fn walk_pae(&self, mem: &impl GuestPhysRead, linear: u64) -> Result<Translation, WalkError> {
        let gpa = (self.regs.cr3 & 0xFFFF_FFE0) + ((linear >> 30) & 3) * 8;
        let pdpte = mem
            .read_u64(gpa)
            .ok_or(WalkError::Unreadable { level: 3, gpa })?;
        if pdpte & P == 0 {
            return Err(WalkError::NotPresent { level: 3 });
        }
        // Bits 2:1 and 8:5 and 63:M are reserved in a PDPTE (Table 4-8).
        let reserved = 0b110 | 0b1_1110_0000 | self.high_reserved(63);
        if pdpte & reserved != 0 {
            return Err(WalkError::Reserved {
                level: 3,
                entry: pdpte,
            });
        }
        // PAE's directory and table entries reserve 62:M; 63 is XD.
        let mut common = self.high_reserved(62);
        if !self.nxe() {
            common |= XD;
        }
        let table = pdpte & self.addr_mask();
        // A PDPTE carries no R/W or U/S: the rights start at "all".
        self.walk_64bit_entries(mem, linear, 2, table, common, Rights::ALL)
    }

    /// The levels of 64-bit entries shared by PAE and IA-32e paging, from
    /// `level` down to the leaf. `common` is the reserved mask of every
    /// entry.
    fn walk_64bit_entries(
        &self,
        mem: &impl GuestPhysRead,
        linear: u64,
        mut level: u8,
        mut table: u64,
        common: u64,
        mut rights: Rights,
    ) -> Result<Translation, WalkError> {
        loop {
            let shift = 12 + 9 * u32::from(level - 1);
            let gpa = table + ((linear >> shift) & 0x1FF) * 8;
            let entry = mem
                .read_u64(gpa)
                .ok_or(WalkError::Unreadable { level, gpa })?;
            if entry & P == 0 {
                return Err(WalkError::NotPresent { level });
            }
            let leaf = level == 1 || (entry & PS != 0 && level <= 3);
            let reserved = common
                | match level {
                    // PS is reserved in PML5Es and PML4Es.
                    4 | 5 => PS,
                    // A 1 GiB PDPTE reserves bits 29:13, a 2 MiB PDE bits
                    // 20:13; bit 12 is PAT.
                    3 | 2 if leaf => ((1u64 << shift) - 1) & !((1u64 << 13) - 1),
                    _ => 0,
                };
            if entry & reserved != 0 {
                return Err(WalkError::Reserved { level, entry });
            }
            rights = rights.and(entry, self.nxe());
            if leaf {
                let size = 1u64 << shift;
                let base = entry & self.addr_mask() & !(size - 1);
                return Ok(rights.translation(base | (linear & (size - 1)), size));
            }
            table = entry & self.addr_mask();
            level -= 1;
        }
    }

    /// 32-bit paging (SDM Vol. 3A §4.3): a page directory and a page table
    /// of 32-bit entries (Tables 4-4 to 4-6); with CR4.PSE a PDE with
    /// PS = 1 maps 4 MiB, its bits 20:13 giving physical bits 39:32
    /// (PSE-36, at most 40 address bits).
    fn walk_32bit(&self, mem: &impl GuestPhysRead, linear: u64) -> Result<Translation, WalkError> {
        let pd = self.regs.cr3 & 0xFFFF_F000;
        let pde = read_u32(mem, pd + (linear >> 22) * 4, 2)?;
        if pde & P == 0 {
            return Err(WalkError::NotPresent { level: 2 });
        }
        let rights = Rights::ALL.and(pde, false);
        if pde & PS != 0 && self.regs.cr4 & CR4_PSE != 0 {
            let m = u32::from(self.maxphyaddr).min(40);
            // Bits 21:(M-19) are reserved (Table 4-4).
            let reserved = ((1u64 << 22) - 1) & !((1u64 << (m - 19)) - 1);
            if pde & reserved != 0 {
                return Err(WalkError::Reserved {
                    level: 2,
                    entry: pde,
                });
            }
            let high = (pde >> 13) & ((1u64 << (m - 32)) - 1);
            let base = (pde & 0xFFC0_0000) | (high << 32);
            return Ok(rights.translation(base | (linear & (PSE_PAGE_SIZE - 1)), PSE_PAGE_SIZE));
        }
        let pt = pde & 0xFFFF_F000;
        let pte = read_u32(mem, pt + ((linear >> 12) & 0x3FF) * 4, 1)?;
        if pte & P == 0 {
            return Err(WalkError::NotPresent { level: 1 });
        }
        let base = pte & 0xFFFF_F000;
        Ok(rights
            .and(pte, false)
            .translation(base | (linear & 0xFFF), PAGE_SIZE))
    }
}

/// The 32-bit entry at 4-aligned `gpa`, read as half of an aligned `u64`.
fn read_u32(mem: &impl GuestPhysRead, gpa: u64, level: u8) -> Result<u64, WalkError> {
    let word = mem
        .read_u64(gpa & !7)
        .ok_or(WalkError::Unreadable { level, gpa })?;
    Ok(if gpa & 4 != 0 {
        word >> 32
    } else {
        word & 0xFFFF_FFFF
    })
}

/// Access rights gathered level by level (SDM Vol. 3A §4.6.1: a right is
/// granted only if every level grants it).
#[derive(Debug, Clone, Copy)]
struct Rights {
    writable: bool,
    user: bool,
    executable: bool,
}

impl Rights {
    const ALL: Self = Self {
        writable: true,
        user: true,
        executable: true,
    };

    fn and(self, entry: u64, nxe: bool) -> Self {
        Self {
            writable: self.writable && entry & RW != 0,
            user: self.user && entry & US != 0,
            executable: self.executable && !(nxe && entry & XD != 0),
        }
    }

    fn translation(self, gpa: u64, page_size: u64) -> Translation {
        Translation {
            gpa,
            page_size,
            writable: self.writable,
            user: self.user,
            executable: self.executable,
        }
    }
}

/// Instruction bytes read from guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    bytes: [u8; MAX_INSN_LEN],
    len: u8,
    /// Why fewer bytes than asked for were read: the walk or the read of a
    /// later page failed. The bytes read may still hold the whole
    /// instruction; if the decoder runs out of them, this is the fault the
    /// guest would have taken.
    pub tail: Option<WalkError>,
}

impl Fetched {
    /// The bytes read, in order.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(MAX_INSN_LEN)]
    }
}

/// Reads up to `len` (at most [`MAX_INSN_LEN`]) bytes at linear address
/// `code_linear` (CS.base + RIP). Each 4 KiB page is translated on its own,
/// so an instruction that straddles a page boundary is read from both
/// guest-physical pages wherever they are. Fails only if not even the first
/// byte can be read; a failure on a later page ends the bytes early and is
/// kept in [`Fetched::tail`].
pub fn fetch(
    paging: &GuestPaging,
    mem: &impl GuestPhysRead,
    code_linear: u64,
    len: usize,
) -> Result<Fetched, WalkError> {
    let want = len.min(MAX_INSN_LEN);
    let mut out = Fetched {
        bytes: [0; MAX_INSN_LEN],
        len: 0,
        tail: None,
    };
    let mut done = 0;
    while done < want {
        let linear = code_linear.wrapping_add(done as u64);
        let step = page_chunk(paging, mem, linear, &mut out.bytes[done..want]);
        match step {
            Ok(n) => done += n,
            Err(e) if done == 0 => return Err(e),
            Err(e) => {
                out.tail = Some(e);
                break;
            }
        }
        out.len = done as u8;
    }
    Ok(out)
}

/// Fills `buf` from `linear` up to the end of its 4 KiB page; returns the
/// bytes read (at least one, or an error).
fn page_chunk(
    paging: &GuestPaging,
    mem: &impl GuestPhysRead,
    linear: u64,
    buf: &mut [u8],
) -> Result<usize, WalkError> {
    let t = paging.translate(mem, linear)?;
    let in_page = (PAGE_SIZE - (linear & (PAGE_SIZE - 1))) as usize;
    let n = buf.len().min(in_page);
    let mut word_at = None;
    let mut word = 0;
    for (i, byte) in buf[..n].iter_mut().enumerate() {
        let gpa = t.gpa.wrapping_add(i as u64);
        let aligned = gpa & !7;
        if word_at != Some(aligned) {
            match mem.read_u64(aligned) {
                Some(w) => word = w,
                // Bytes already read from this page are kept.
                None if i > 0 => return Ok(i),
                None => return Err(WalkError::Unreadable { level: 0, gpa }),
            }
            word_at = Some(aligned);
        }
        *byte = (word >> ((gpa & 7) * 8)) as u8;
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
