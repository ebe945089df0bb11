//! vCPU state (ABI 1.1): the boot vCPU's entry state,
//! [`crate::Op::VcpuSetEntry`].
//!
//! The toolstack lays the guest's kernel and boot structures out in the
//! domain's memory ([`crate::Op::DomainCopyIn`]) and then says where and how
//! vCPU 0 enters it, in one of the two boot protocols Linux offers a loader
//! without firmware.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, StructLayout, struct_layout};
use crate::status::Status;

/// The number of [`VcpuMode::Pvh`] (usable as a `match` pattern on
/// [`VcpuEntry::mode`]).
pub const VCPU_MODE_PVH: u32 = 1;

/// The number of [`VcpuMode::Linux64`].
pub const VCPU_MODE_LINUX64: u32 = 2;

/// The boot protocol a vCPU enters its kernel with (stable numbers; 0 is
/// never valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum VcpuMode {
    /// The Xen PVH boot ABI (Xen `docs/misc/pvh.pandoc`, "Initial state"):
    /// 32-bit protected mode, paging off, CS a flat 4 GiB 32-bit
    /// execute/read segment with selector 0x10, DS/ES/SS/FS/GS flat 4 GiB
    /// read/write with selector 0x18, TR a 32-bit TSS with base 0 and limit
    /// 0x67, CR0 = PE | ET, CR4 = 0, EFLAGS with IF, TF and VM clear, EBX =
    /// the `hvm_start_info` GPA. `rip`, `rbx`, `gdt_base + gdt_limit` must lie
    /// below 4 GiB; `cr3` must be 0 (paging is off).
    Pvh = VCPU_MODE_PVH,
    /// The Linux x86 64-bit boot protocol (Linux
    /// `Documentation/arch/x86/boot.rst`, "64-bit Boot Protocol"): long mode,
    /// paging on with CR3 = `cr3` (identity page tables the caller placed in
    /// guest memory), a GDT at `gdt_base` with `__BOOT_CS` (0x10, 64-bit
    /// code) and `__BOOT_DS` (0x18, flat data), CS = 0x10, DS/ES/SS = 0x18,
    /// interrupts off, RSI = the `boot_params` GPA.
    Linux64 = VCPU_MODE_LINUX64,
}

impl VcpuMode {
    /// Every mode.
    pub const ALL: [Self; 2] = [Self::Pvh, Self::Linux64];

    /// C macro name.
    #[must_use]
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Pvh => "OXEN_VCPU_MODE_PVH",
            Self::Linux64 => "OXEN_VCPU_MODE_LINUX64",
        }
    }

    /// A one-line description for the C header.
    #[must_use]
    pub const fn doc(self) -> &'static str {
        match self {
            Self::Pvh => "Xen PVH boot ABI: 32-bit, paging off, EBX = hvm_start_info",
            Self::Linux64 => "Linux 64-bit boot protocol: long mode, CR3, RSI = boot_params",
        }
    }
}

impl TryFrom<u32> for VcpuMode {
    type Error = u32;

    fn try_from(raw: u32) -> Result<Self, u32> {
        Self::ALL.into_iter().find(|m| *m as u32 == raw).ok_or(raw)
    }
}

/// The only vCPU [`crate::Op::VcpuSetEntry`] accepts: the boot vCPU. The
/// others start when the guest sends them INIT and start-up IPIs.
pub const BOOT_VCPU: u32 = 0;

/// The selector of the boot code segment in both modes (`__BOOT_CS`).
pub const BOOT_CS: u16 = 0x10;

/// The selector of the boot data segments in both modes (`__BOOT_DS`).
pub const BOOT_DS: u16 = 0x18;

/// Argument of [`crate::Op::VcpuSetEntry`], passed by guest-physical address
/// in RDX: the registers vCPU 0 starts with. Registers not named here start
/// as the mode ([`VcpuMode`]) says, general-purpose ones at 0.
///
/// In both modes GDTR is loaded from `gdt_base`/`gdt_limit` and the segment
/// registers' hidden parts are loaded flat as the mode says; the GDT the
/// caller places there must hold matching descriptors at [`BOOT_CS`] and
/// [`BOOT_DS`], for when the guest reloads a selector before installing its
/// own GDT.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuEntry {
    /// A [`VcpuMode`] number.
    pub mode: u32,
    /// Must be 0.
    pub reserved: u32,
    /// The entry point: the PVH note's address, or the 64-bit entry (load
    /// address + 0x200).
    pub rip: u64,
    /// The stack pointer (neither protocol needs one: 0).
    pub rsp: u64,
    /// RBX: the `hvm_start_info` GPA in PVH mode.
    pub rbx: u64,
    /// RSI: the `boot_params` GPA in Linux64 mode.
    pub rsi: u64,
    /// CR3: the PML4's GPA in Linux64 mode; 0 in PVH mode.
    pub cr3: u64,
    /// GDTR base: the GPA of the boot GDT.
    pub gdt_base: u64,
    /// GDTR limit (at most 0xFFFF: GDTR's limit has 16 bits).
    pub gdt_limit: u32,
    /// Must be 0.
    pub reserved2: u32,
}

crate::assert_layout!(VcpuEntry, size = 64, {
    mode: 0,
    reserved: 4,
    rip: 8,
    rsp: 16,
    rbx: 24,
    rsi: 32,
    cr3: 40,
    gdt_base: 48,
    gdt_limit: 56,
    reserved2: 60,
});

impl VcpuEntry {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        VcpuEntry,
        "oxen_vcpu_entry",
        "Argument of OXEN_OP_VCPU_SET_ENTRY (by guest-physical address in RDX).",
        [
            mode: CType::U32 => "OXEN_VCPU_MODE_*",
            reserved: CType::U32 => "must be 0",
            rip: CType::U64 => "entry point",
            rsp: CType::U64 => "stack pointer (0: neither protocol needs one)",
            rbx: CType::U64 => "PVH: hvm_start_info GPA",
            rsi: CType::U64 => "LINUX64: boot_params GPA",
            cr3: CType::U64 => "LINUX64: PML4 GPA (identity tables); PVH: 0",
            gdt_base: CType::U64 => "GDTR base: the boot GDT (0x10 code, 0x18 data)",
            gdt_limit: CType::U32 => "GDTR limit, at most 0xffff",
            reserved2: CType::U32 => "must be 0",
        ]
    );

    /// The decoded mode, or the raw number if this crate does not know it.
    ///
    /// # Errors
    ///
    /// Returns the raw number when it names no [`VcpuMode`].
    pub fn mode(&self) -> Result<VcpuMode, u32> {
        VcpuMode::try_from(self.mode)
    }

    /// The checks that follow from the ABI alone: a known mode, reserved
    /// fields 0, a 16-bit GDT limit; in PVH mode (32-bit, paging off)
    /// `rip`, `rbx` and the whole GDT below 4 GiB and `cr3` 0. (Whether the
    /// addresses lie in the domain's RAM is the hypervisor's to check.)
    ///
    /// # Errors
    ///
    /// [`Status::InvalidArgument`] for the first failed check.
    pub fn validate(&self) -> Result<(), Status> {
        let mode = self.mode().map_err(|_| Status::InvalidArgument)?;
        if self.reserved != 0 || self.reserved2 != 0 || self.gdt_limit > 0xffff {
            return Err(Status::InvalidArgument);
        }
        if mode == VcpuMode::Pvh {
            const FOUR_GIB: u64 = 1 << 32;
            let gdt_end = self.gdt_base.saturating_add(u64::from(self.gdt_limit));
            if self.rip >= FOUR_GIB || self.rbx >= FOUR_GIB || gdt_end >= FOUR_GIB || self.cr3 != 0
            {
                return Err(Status::InvalidArgument);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvh() -> VcpuEntry {
        VcpuEntry {
            mode: VcpuMode::Pvh as u32,
            rip: 0x100_0000,
            rbx: 0x1000,
            gdt_base: 0x1040,
            gdt_limit: 31,
            ..VcpuEntry::default()
        }
    }

    #[test]
    fn modes_round_trip() {
        for m in VcpuMode::ALL {
            assert_eq!(VcpuMode::try_from(m as u32), Ok(m));
        }
        assert_eq!(VcpuMode::try_from(0), Err(0));
        assert_eq!((VcpuMode::Pvh as u32, VcpuMode::Linux64 as u32), (1, 2));
    }

    #[test]
    fn valid_entries_pass() {
        assert_eq!(pvh().validate(), Ok(()));
        let linux = VcpuEntry {
            mode: VcpuMode::Linux64 as u32,
            rip: 0x1_0000_0200,
            rsi: 0x7000,
            cr3: 0x9000,
            gdt_base: 0x8000,
            gdt_limit: 31,
            ..VcpuEntry::default()
        };
        assert_eq!(linux.validate(), Ok(()));
    }

    #[test]
    fn invalid_entries_are_refused() {
        let ok = pvh();
        for bad in [
            VcpuEntry { mode: 0, ..ok },
            VcpuEntry { mode: 3, ..ok },
            VcpuEntry { reserved: 1, ..ok },
            VcpuEntry { reserved2: 1, ..ok },
            VcpuEntry {
                gdt_limit: 0x1_0000,
                ..ok
            },
            VcpuEntry { rip: 1 << 32, ..ok },
            VcpuEntry { rbx: 1 << 32, ..ok },
            VcpuEntry {
                gdt_base: 0xffff_fff0,
                ..ok
            },
            VcpuEntry { cr3: 0x9000, ..ok },
        ] {
            assert_eq!(bad.validate(), Err(Status::InvalidArgument), "{bad:?}");
        }
    }
}
