//! The register state dom0's first vCPU starts in, as plain data for the
//! VMCS code to load: one constructor per boot protocol.
//!
//! Segment access rights use the VMCS format (Intel SDM Vol. 3C, "Guest
//! Register State", table "Format of Access Rights"): bits 3:0 type, 4 S,
//! 6:5 DPL, 7 P, 12 AVL, 13 L, 14 D/B, 15 G, 16 unusable.
//!
//! The control-register values are what the protocol asks for. The VMCS code
//! must still OR in the bits IA32_VMX_CR0_FIXED0/CR4_FIXED0 force (NE, VMXE;
//! PE and PG are exempt with unrestricted guest) and show the protocol's
//! values through the CR0/CR4 read shadows.

use super::{GuestPhysAddr, put};

/// One segment register, hidden part included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentState {
    /// The visible selector.
    pub selector: u16,
    /// Base address.
    pub base: u64,
    /// Limit in bytes (already scaled by G).
    pub limit: u32,
    /// VMCS access-rights word.
    pub access_rights: u32,
}

/// Access-rights bits (SDM Vol. 3C, "Format of Access Rights").
pub mod ar {
    /// Type: code, execute/read, accessed (0xB).
    pub const TYPE_CODE_RX_ACCESSED: u32 = 0xB;
    /// Type: data, read/write, accessed (0x3).
    pub const TYPE_DATA_RW_ACCESSED: u32 = 0x3;
    /// Type of a system descriptor: 32/64-bit busy TSS (0xB).
    pub const TYPE_TSS_BUSY: u32 = 0xB;
    /// S: code or data (not system) segment.
    pub const S: u32 = 1 << 4;
    /// P: present.
    pub const P: u32 = 1 << 7;
    /// L: 64-bit code segment.
    pub const L: u32 = 1 << 13;
    /// D/B: 32-bit default operation size.
    pub const DB: u32 = 1 << 14;
    /// G: limit in 4 KiB units.
    pub const G: u32 = 1 << 15;
    /// The segment is unusable.
    pub const UNUSABLE: u32 = 1 << 16;
}

impl SegmentState {
    /// A flat 4 GiB 32-bit code segment.
    pub const fn flat_code32(selector: u16) -> Self {
        let access_rights = ar::TYPE_CODE_RX_ACCESSED | ar::S | ar::P | ar::DB | ar::G;
        Self {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            access_rights,
        }
    }
    /// A flat 64-bit code segment (L set, D clear).
    pub const fn flat_code64(selector: u16) -> Self {
        let access_rights = ar::TYPE_CODE_RX_ACCESSED | ar::S | ar::P | ar::L | ar::G;
        Self {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            access_rights,
        }
    }
    /// A flat 4 GiB read/write data segment.
    pub const fn flat_data(selector: u16) -> Self {
        let access_rights = ar::TYPE_DATA_RW_ACCESSED | ar::S | ar::P | ar::DB | ar::G;
        Self {
            selector,
            base: 0,
            limit: 0xFFFF_FFFF,
            access_rights,
        }
    }
    /// The task register both protocols accept: a busy TSS with base 0 and
    /// limit 0x67 (pvh.pandoc asks for exactly this; VM entry needs a usable
    /// TR in any case).
    pub const fn boot_tss() -> Self {
        Self {
            selector: 0,
            base: 0,
            limit: 0x67,
            access_rights: ar::TYPE_TSS_BUSY | ar::P,
        }
    }
    /// An unusable segment (LDTR).
    pub const fn unusable() -> Self {
        Self {
            selector: 0,
            base: 0,
            limit: 0,
            access_rights: ar::UNUSABLE,
        }
    }
}

/// CR0 bits (SDM Vol. 3A, "Control Registers").
pub mod cr0 {
    /// Protected mode.
    pub const PE: u64 = 1 << 0;
    /// Extension type (hard-wired to 1 on every CPU with VMX).
    pub const ET: u64 = 1 << 4;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}
/// CR4.PAE (SDM Vol. 3A, "Control Registers").
pub const CR4_PAE: u64 = 1 << 5;
/// IA32_EFER.LME (SDM Vol. 3A, "IA32_EFER").
pub const EFER_LME: u64 = 1 << 8;
/// IA32_EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS with only the always-one bit 1 set: IF, TF and VM clear.
pub const RFLAGS_BOOT: u64 = 1 << 1;

/// Selector of the boot code segment, `__BOOT_CS` (boot.rst, "64-bit Boot
/// Protocol"; GDT entry 2).
pub const BOOT_CS: u16 = 0x10;
/// Selector of the boot data segment, `__BOOT_DS` (GDT entry 3).
pub const BOOT_DS: u16 = 0x18;
/// Size of the boot GDT: null, unused, code at 0x10, data at 0x18.
pub const BOOT_GDT_SIZE: usize = 32;

/// The boot GDT's bytes: entries 2 (`__BOOT_CS`, 64-bit code if `long_mode`,
/// else 32-bit code) and 3 (`__BOOT_DS`, flat data), as legacy descriptors
/// (SDM Vol. 3A, "Segment Descriptors": limit 15:0, base 23:0, access byte,
/// flags and limit 19:16, base 31:24).
pub fn boot_gdt(long_mode: bool) -> [u8; BOOT_GDT_SIZE] {
    let code: u64 = if long_mode {
        0x00AF_9B00_0000_FFFF
    } else {
        0x00CF_9B00_0000_FFFF
    };
    let data: u64 = 0x00CF_9300_0000_FFFF;
    let mut gdt = [0u8; BOOT_GDT_SIZE];
    put(&mut gdt, usize::from(BOOT_CS), &code.to_le_bytes());
    put(&mut gdt, usize::from(BOOT_DS), &data.to_le_bytes());
    gdt
}

/// The first vCPU's registers at dom0's entry. Registers not named are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    /// Instruction pointer.
    pub rip: u64,
    /// RBX (PVH: the `hvm_start_info` address).
    pub rbx: u64,
    /// RSI (64-bit Linux: the `boot_params` address).
    pub rsi: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR0 as the protocol wants it.
    pub cr0: u64,
    /// CR3 (the identity page tables, 64-bit entry only).
    pub cr3: u64,
    /// CR4 as the protocol wants it.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// Code segment.
    pub cs: SegmentState,
    /// Data segments DS, ES, SS, FS, GS (one state for all five).
    pub data: SegmentState,
    /// Task register.
    pub tr: SegmentState,
    /// LDT register.
    pub ldtr: SegmentState,
    /// GDTR base (where [`boot_gdt`] was written).
    pub gdtr_base: u64,
    /// GDTR limit.
    pub gdtr_limit: u16,
    /// Whether the VM-entry control "IA-32e mode guest" must be set.
    pub ia32e_mode: bool,
}

impl EntryState {
    /// PVH entry (Xen `docs/misc/pvh.pandoc`, "Initial state"): 32-bit
    /// protected mode with paging off, EBX = the `hvm_start_info` address,
    /// CR0 with only PE (and the hard-wired ET) set, CR4 = 0, CS a flat 32-bit
    /// execute/read segment, DS/ES (and here SS/FS/GS) flat read/write, TR a
    /// 32-bit TSS with base 0 and limit 0x67, EFLAGS with IF, TF and VM clear.
    pub fn pvh(entry: GuestPhysAddr, start_info: GuestPhysAddr, gdt: GuestPhysAddr) -> Self {
        Self {
            rip: entry.as_u64(),
            rbx: start_info.as_u64(),
            rsi: 0,
            rflags: RFLAGS_BOOT,
            cr0: cr0::PE | cr0::ET,
            cr3: 0,
            cr4: 0,
            efer: 0,
            cs: SegmentState::flat_code32(BOOT_CS),
            data: SegmentState::flat_data(BOOT_DS),
            tr: SegmentState::boot_tss(),
            ldtr: SegmentState::unusable(),
            gdtr_base: gdt.as_u64(),
            gdtr_limit: (BOOT_GDT_SIZE - 1) as u16,
            ia32e_mode: false,
        }
    }

    /// Linux 64-bit boot protocol entry (boot.rst, "64-bit Boot Protocol"):
    /// long mode with paging on identity tables at `page_tables`, a GDT with
    /// flat `__BOOT_CS` (execute/read) and `__BOOT_DS` (read/write), CS =
    /// `__BOOT_CS`, DS/ES/SS = `__BOOT_DS`, interrupts off, RSI = the
    /// `boot_params` address, RIP = the kernel's load address + 0x200.
    pub fn linux64(
        entry: GuestPhysAddr,
        boot_params: GuestPhysAddr,
        page_tables: GuestPhysAddr,
        gdt: GuestPhysAddr,
    ) -> Self {
        Self {
            rip: entry.as_u64(),
            rbx: 0,
            rsi: boot_params.as_u64(),
            rflags: RFLAGS_BOOT,
            cr0: cr0::PE | cr0::ET | cr0::PG,
            cr3: page_tables.as_u64(),
            cr4: CR4_PAE,
            efer: EFER_LME | EFER_LMA,
            cs: SegmentState::flat_code64(BOOT_CS),
            data: SegmentState::flat_data(BOOT_DS),
            tr: SegmentState::boot_tss(),
            ldtr: SegmentState::unusable(),
            gdtr_base: gdt.as_u64(),
            gdtr_limit: (BOOT_GDT_SIZE - 1) as u16,
            ia32e_mode: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rights_match_the_descriptors() {
        // The access byte (bits 47:40) and flags (55:52) of a descriptor are
        // the VMCS access-rights word's bits 7:0 and 15:12.
        let gdt = boot_gdt(true);
        let desc =
            |sel: u16| u64::from_le_bytes(gdt[sel as usize..sel as usize + 8].try_into().unwrap());
        let ar_of = |d: u64| (((d >> 40) & 0xFF) | (((d >> 52) & 0xF) << 12)) as u32;
        assert_eq!(
            ar_of(desc(BOOT_CS)),
            SegmentState::flat_code64(BOOT_CS).access_rights
        );
        assert_eq!(
            ar_of(desc(BOOT_DS)),
            SegmentState::flat_data(BOOT_DS).access_rights
        );
        let gdt32 = boot_gdt(false);
        let d32 = u64::from_le_bytes(gdt32[16..24].try_into().unwrap());
        assert_eq!(ar_of(d32), SegmentState::flat_code32(BOOT_CS).access_rights);
        assert_eq!(SegmentState::flat_code32(0).access_rights, 0xC09B);
        assert_eq!(SegmentState::flat_data(0).access_rights, 0xC093);
        assert_eq!(SegmentState::flat_code64(0).access_rights, 0xA09B);
        assert_eq!(&gdt[..16], &[0u8; 16]);
    }

    #[test]
    fn pvh_state() {
        let s = EntryState::pvh(
            GuestPhysAddr::new(0x100_0123),
            GuestPhysAddr::new(0x1000),
            GuestPhysAddr::new(0x2000),
        );
        assert_eq!(
            (s.rip, s.rbx, s.cr0, s.cr4, s.efer),
            (0x100_0123, 0x1000, 0x11, 0, 0)
        );
        assert_eq!(s.rflags & (1 << 9 | 1 << 8 | 1 << 17), 0);
        assert_eq!(s.tr.limit, 0x67);
        assert!(!s.ia32e_mode);
    }

    #[test]
    fn linux64_state() {
        let s = EntryState::linux64(
            GuestPhysAddr::new(0x100_0200),
            GuestPhysAddr::new(0x7000),
            GuestPhysAddr::new(0x9000),
            GuestPhysAddr::new(0x8000),
        );
        assert_eq!((s.rip, s.rsi, s.cr3), (0x100_0200, 0x7000, 0x9000));
        assert_eq!((s.cs.selector, s.data.selector), (0x10, 0x18));
        assert_eq!(s.cr0 & cr0::PG, cr0::PG);
        assert_eq!(s.efer, EFER_LME | EFER_LMA);
        assert!(s.ia32e_mode);
    }
}
