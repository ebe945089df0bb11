//! VMX control-field bits, the capability-MSR adjustment rule, and guest
//! segment access rights.
//!
//! - Pin-based controls: SDM Vol. 3C §25.6.1, Table 25-5.
//! - Primary processor-based controls: §25.6.2, Table 25-6.
//! - Secondary processor-based controls: §25.6.2, Table 25-7.
//! - VM-exit controls: §25.7.1, Table 25-13.
//! - VM-entry controls: §25.8.1, Table 25-15.
//! - Allowed settings: Vol. 3D Appendix A.3-A.5 (capability MSRs) and A.2
//!   ("default1" bits).
//! - Access rights: §25.4.1, Table 25-2.

use core::fmt;

use bitflags::bitflags;

#[cfg(test)]
mod tests;

bitflags! {
    /// Pin-based VM-execution controls (SDM Vol. 3C Table 25-5).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct PinBased: u32 {
        /// Bit 0: external interrupts cause VM exits.
        const EXTERNAL_INTERRUPT_EXITING = 1 << 0;
        /// Bit 3: NMIs cause VM exits.
        const NMI_EXITING = 1 << 3;
        /// Bit 5: virtual NMIs (needs NMI exiting).
        const VIRTUAL_NMIS = 1 << 5;
        /// Bit 6: activate the VMX-preemption timer.
        const PREEMPTION_TIMER = 1 << 6;
        /// Bit 7: process posted interrupts.
        const POSTED_INTERRUPTS = 1 << 7;
    }
}

bitflags! {
    /// Primary processor-based VM-execution controls (SDM Vol. 3C Table 25-6).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ProcBased: u32 {
        /// Bit 2: exit at the start of any instruction with RFLAGS.IF = 1 and
        /// no blocking by STI or MOV SS.
        const INTERRUPT_WINDOW_EXITING = 1 << 2;
        /// Bit 3: use TSC offsetting.
        const USE_TSC_OFFSETTING = 1 << 3;
        /// Bit 7: HLT causes a VM exit.
        const HLT_EXITING = 1 << 7;
        /// Bit 9: INVLPG causes a VM exit.
        const INVLPG_EXITING = 1 << 9;
        /// Bit 10: MWAIT causes a VM exit.
        const MWAIT_EXITING = 1 << 10;
        /// Bit 11: RDPMC causes a VM exit.
        const RDPMC_EXITING = 1 << 11;
        /// Bit 12: RDTSC/RDTSCP cause VM exits.
        const RDTSC_EXITING = 1 << 12;
        /// Bit 15: MOV to CR3 exits unless the value is a CR3 target.
        const CR3_LOAD_EXITING = 1 << 15;
        /// Bit 16: MOV from CR3 exits.
        const CR3_STORE_EXITING = 1 << 16;
        /// Bit 17: activate the tertiary controls.
        const ACTIVATE_TERTIARY_CONTROLS = 1 << 17;
        /// Bit 19: MOV to CR8 exits.
        const CR8_LOAD_EXITING = 1 << 19;
        /// Bit 20: MOV from CR8 exits.
        const CR8_STORE_EXITING = 1 << 20;
        /// Bit 21: use the TPR shadow (virtual-APIC page).
        const USE_TPR_SHADOW = 1 << 21;
        /// Bit 22: exit when virtual NMIs are unblocked.
        const NMI_WINDOW_EXITING = 1 << 22;
        /// Bit 23: MOV DR exits.
        const MOV_DR_EXITING = 1 << 23;
        /// Bit 24: every I/O instruction exits (ignored with I/O bitmaps).
        const UNCONDITIONAL_IO_EXITING = 1 << 24;
        /// Bit 25: use I/O bitmaps A and B.
        const USE_IO_BITMAPS = 1 << 25;
        /// Bit 27: monitor trap flag.
        const MONITOR_TRAP_FLAG = 1 << 27;
        /// Bit 28: use the MSR bitmaps.
        const USE_MSR_BITMAPS = 1 << 28;
        /// Bit 29: MONITOR causes a VM exit.
        const MONITOR_EXITING = 1 << 29;
        /// Bit 30: PAUSE causes a VM exit.
        const PAUSE_EXITING = 1 << 30;
        /// Bit 31: activate the secondary controls.
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }
}

bitflags! {
    /// Secondary processor-based VM-execution controls (SDM Vol. 3C Table 25-7).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ProcBased2: u32 {
        /// Bit 0: accesses to the APIC-access page are virtualized.
        const VIRTUALIZE_APIC_ACCESSES = 1 << 0;
        /// Bit 1: enable EPT.
        const ENABLE_EPT = 1 << 1;
        /// Bit 2: LGDT, LIDT, LLDT, LTR, SGDT, SIDT, SLDT, STR exit.
        const DESCRIPTOR_TABLE_EXITING = 1 << 2;
        /// Bit 3: RDTSCP does not #UD.
        const ENABLE_RDTSCP = 1 << 3;
        /// Bit 4: virtualize x2APIC mode.
        const VIRTUALIZE_X2APIC_MODE = 1 << 4;
        /// Bit 5: enable VPID.
        const ENABLE_VPID = 1 << 5;
        /// Bit 6: WBINVD/WBNOINVD exit.
        const WBINVD_EXITING = 1 << 6;
        /// Bit 7: unrestricted guest (real mode and unpaged protected mode).
        const UNRESTRICTED_GUEST = 1 << 7;
        /// Bit 8: APIC-register virtualization.
        const APIC_REGISTER_VIRTUALIZATION = 1 << 8;
        /// Bit 9: virtual-interrupt delivery.
        const VIRTUAL_INTERRUPT_DELIVERY = 1 << 9;
        /// Bit 10: PAUSE-loop exiting.
        const PAUSE_LOOP_EXITING = 1 << 10;
        /// Bit 11: RDRAND exits.
        const RDRAND_EXITING = 1 << 11;
        /// Bit 12: INVPCID does not #UD.
        const ENABLE_INVPCID = 1 << 12;
        /// Bit 13: enable VM functions.
        const ENABLE_VM_FUNCTIONS = 1 << 13;
        /// Bit 14: VMCS shadowing.
        const VMCS_SHADOWING = 1 << 14;
        /// Bit 15: ENCLS exiting.
        const ENCLS_EXITING = 1 << 15;
        /// Bit 16: RDSEED exits.
        const RDSEED_EXITING = 1 << 16;
        /// Bit 17: page-modification logging.
        const ENABLE_PML = 1 << 17;
        /// Bit 18: EPT violations may cause #VE.
        const EPT_VIOLATION_VE = 1 << 18;
        /// Bit 19: conceal VMX from Intel PT.
        const CONCEAL_VMX_FROM_PT = 1 << 19;
        /// Bit 20: XSAVES/XRSTORS do not #UD.
        const ENABLE_XSAVES_XRSTORS = 1 << 20;
        /// Bit 21: PASID translation.
        const PASID_TRANSLATION = 1 << 21;
        /// Bit 22: mode-based execute control for EPT.
        const MODE_BASED_EPT_EXECUTE = 1 << 22;
        /// Bit 23: sub-page write permissions for EPT.
        const SUB_PAGE_WRITE_PERMISSIONS = 1 << 23;
        /// Bit 24: Intel PT uses guest-physical addresses.
        const PT_USES_GUEST_PHYSICAL = 1 << 24;
        /// Bit 25: use TSC scaling.
        const USE_TSC_SCALING = 1 << 25;
        /// Bit 26: enable user wait and pause (TPAUSE, UMONITOR, UMWAIT).
        const ENABLE_USER_WAIT_PAUSE = 1 << 26;
        /// Bit 27: enable PCONFIG.
        const ENABLE_PCONFIG = 1 << 27;
        /// Bit 28: ENCLV exiting.
        const ENCLV_EXITING = 1 << 28;
        /// Bit 30: VMM bus-lock detection.
        const BUS_LOCK_DETECTION = 1 << 30;
        /// Bit 31: instruction timeout (notify VM exits).
        const INSTRUCTION_TIMEOUT = 1 << 31;
    }
}

bitflags! {
    /// Primary VM-exit controls (SDM Vol. 3C Table 25-13).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ExitControls: u32 {
        /// Bit 2: save DR7 and IA32_DEBUGCTL.
        const SAVE_DEBUG_CONTROLS = 1 << 2;
        /// Bit 9: host address-space size (the host runs in 64-bit mode).
        const HOST_ADDRESS_SPACE_SIZE = 1 << 9;
        /// Bit 12: load IA32_PERF_GLOBAL_CTRL.
        const LOAD_IA32_PERF_GLOBAL_CTRL = 1 << 12;
        /// Bit 15: acknowledge the interrupt on exit (vector in the exit
        /// interruption information).
        const ACK_INTERRUPT_ON_EXIT = 1 << 15;
        /// Bit 18: save guest IA32_PAT.
        const SAVE_IA32_PAT = 1 << 18;
        /// Bit 19: load host IA32_PAT.
        const LOAD_IA32_PAT = 1 << 19;
        /// Bit 20: save guest IA32_EFER.
        const SAVE_IA32_EFER = 1 << 20;
        /// Bit 21: load host IA32_EFER.
        const LOAD_IA32_EFER = 1 << 21;
        /// Bit 22: save the VMX-preemption timer value.
        const SAVE_PREEMPTION_TIMER = 1 << 22;
        /// Bit 23: clear IA32_BNDCFGS.
        const CLEAR_IA32_BNDCFGS = 1 << 23;
        /// Bit 24: conceal VM exits from Intel PT.
        const CONCEAL_VMX_FROM_PT = 1 << 24;
        /// Bit 25: clear IA32_RTIT_CTL.
        const CLEAR_IA32_RTIT_CTL = 1 << 25;
        /// Bit 26: clear IA32_LBR_CTL.
        const CLEAR_IA32_LBR_CTL = 1 << 26;
        /// Bit 28: load host CET state.
        const LOAD_CET_STATE = 1 << 28;
        /// Bit 29: load host PKRS.
        const LOAD_PKRS = 1 << 29;
        /// Bit 31: activate the secondary VM-exit controls.
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }
}

bitflags! {
    /// VM-entry controls (SDM Vol. 3C Table 25-15).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct EntryControls: u32 {
        /// Bit 2: load DR7 and IA32_DEBUGCTL.
        const LOAD_DEBUG_CONTROLS = 1 << 2;
        /// Bit 9: the guest is in IA-32e mode after entry (must equal the
        /// guest's IA32_EFER.LMA).
        const IA32E_MODE_GUEST = 1 << 9;
        /// Bit 10: entry to SMM.
        const ENTRY_TO_SMM = 1 << 10;
        /// Bit 11: deactivate the dual-monitor treatment.
        const DEACTIVATE_DUAL_MONITOR = 1 << 11;
        /// Bit 13: load guest IA32_PERF_GLOBAL_CTRL.
        const LOAD_IA32_PERF_GLOBAL_CTRL = 1 << 13;
        /// Bit 14: load guest IA32_PAT.
        const LOAD_IA32_PAT = 1 << 14;
        /// Bit 15: load guest IA32_EFER.
        const LOAD_IA32_EFER = 1 << 15;
        /// Bit 16: load guest IA32_BNDCFGS.
        const LOAD_IA32_BNDCFGS = 1 << 16;
        /// Bit 17: conceal VM entries from Intel PT.
        const CONCEAL_VMX_FROM_PT = 1 << 17;
        /// Bit 18: load guest IA32_RTIT_CTL.
        const LOAD_IA32_RTIT_CTL = 1 << 18;
        /// Bit 20: load guest CET state.
        const LOAD_CET_STATE = 1 << 20;
        /// Bit 21: load guest IA32_LBR_CTL.
        const LOAD_IA32_LBR_CTL = 1 << 21;
        /// Bit 22: load guest PKRS.
        const LOAD_PKRS = 1 << 22;
    }
}

/// The "default1" class (SDM Vol. 3D §A.2): bits reported as must-be-one by
/// the non-TRUE capability MSRs. Most are reserved; a few are real controls
/// (CR3-load/CR3-store exiting, save/load debug controls). With the TRUE MSRs
/// (IA32_VMX_BASIC bit 55) the real ones, and possibly others, may be
/// cleared; without them all must stay set.
pub mod default1 {
    /// Pin-based: bits 1, 2, 4.
    pub const PIN_BASED: u32 = 0x0000_0016;
    /// Primary processor-based: bits 1, 4-6, 8, 13-16, 26.
    pub const PROC_BASED: u32 = 0x0401_E172;
    /// VM-exit: bits 0-8, 10, 11, 13, 14, 16, 17.
    pub const EXIT: u32 = 0x0003_6DFF;
    /// VM-entry: bits 0-8, 12.
    pub const ENTRY: u32 = 0x0000_11FF;
}

/// Control bits the CPU cannot give: the caller wanted them set, and the
/// capability MSR does not allow them to be 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported {
    /// The wanted bits whose allowed-1 setting is 0.
    pub missing_bits: u32,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VMX control bits {:#010x} are not supported by this CPU",
            self.missing_bits
        )
    }
}

/// The bits that must be 1: bits 31:0 of a control capability MSR (the
/// "allowed 0-settings": a 1 there means the control may not be 0), SDM
/// Vol. 3D §A.3.1.
pub const fn must_be_one(capability_msr: u64) -> u32 {
    capability_msr as u32
}

/// The bits that may be 1: bits 63:32 of a control capability MSR (the
/// "allowed 1-settings"), SDM Vol. 3D §A.3.1.
pub const fn may_be_one(capability_msr: u64) -> u32 {
    (capability_msr >> 32) as u32
}

/// The control value to write for `desired`: every must-be-one bit added,
/// or the wanted bits the CPU does not allow (SDM Vol. 3D §A.3-A.5). Nothing
/// is dropped silently: a wanted bit that may not be 1 is an error.
///
/// Use the TRUE capability MSR where IA32_VMX_BASIC bit 55 says it exists,
/// and otherwise the ordinary one (whose low half contains the default1
/// bits).
pub const fn adjust(desired: u32, capability_msr: u64) -> Result<u32, Unsupported> {
    let missing = desired & !may_be_one(capability_msr);
    if missing != 0 {
        return Err(Unsupported {
            missing_bits: missing,
        });
    }
    Ok(desired | must_be_one(capability_msr))
}

/// [`adjust`] for `wanted` plus whichever of `optional` the CPU allows; the
/// optional bits it does not allow are left out (for features the
/// hypervisor uses when present, such as the preemption timer).
pub const fn adjust_with_optional(
    wanted: u32,
    optional: u32,
    capability_msr: u64,
) -> Result<u32, Unsupported> {
    adjust(
        wanted | (optional & may_be_one(capability_msr)),
        capability_msr,
    )
}

/// Guest segment access rights, the VMCS format (SDM Vol. 3C §25.4.1,
/// Table 25-2 "Format of Access Rights"):
///
/// | bits  | meaning                                                 |
/// |-------|---------------------------------------------------------|
/// | 3:0   | segment type                                            |
/// | 4     | S: descriptor type (0 = system, 1 = code or data)       |
/// | 6:5   | DPL                                                     |
/// | 7     | P: present                                              |
/// | 11:8  | reserved                                                |
/// | 12    | AVL                                                     |
/// | 13    | L: 64-bit mode active (CS only)                         |
/// | 14    | D/B: default operation size (0 = 16-bit, 1 = 32-bit)    |
/// | 15    | G: granularity (limit in 4 KiB units)                   |
/// | 16    | segment unusable (0 = usable)                           |
/// | 31:17 | reserved                                                |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccessRights(u32);

/// Code and data segment types (SDM Vol. 3A §3.4.5.1, Table 3-1) and the
/// system types used by the VMCS (Table 3-2), for [`AccessRights::new`].
pub mod segment_type {
    /// Data, read/write, accessed.
    pub const DATA_RW_ACCESSED: u8 = 0x3;
    /// Code, execute/read, accessed.
    pub const CODE_XR_ACCESSED: u8 = 0xB;
    /// System: LDT.
    pub const LDT: u8 = 0x2;
    /// System: 16-bit TSS (busy).
    pub const TSS16_BUSY: u8 = 0x3;
    /// System: 32-bit TSS, or 64-bit TSS in IA-32e mode (busy).
    pub const TSS_BUSY: u8 = 0xB;
}

impl AccessRights {
    /// Bit 4: S, code or data segment.
    pub const CODE_OR_DATA: u32 = 1 << 4;
    /// Bit 7: P, present.
    pub const PRESENT: u32 = 1 << 7;
    /// Bit 12: AVL.
    pub const AVL: u32 = 1 << 12;
    /// Bit 13: L, 64-bit code segment.
    pub const LONG_MODE: u32 = 1 << 13;
    /// Bit 14: D/B, 32-bit default size.
    pub const DEFAULT_BIG: u32 = 1 << 14;
    /// Bit 15: G, 4 KiB granularity.
    pub const GRANULARITY: u32 = 1 << 15;
    /// Bit 16: the segment is unusable.
    pub const UNUSABLE_BIT: u32 = 1 << 16;
    /// The bits that are not reserved (11:8 and 31:17 are).
    pub const VALID_MASK: u32 = 0x0001_F0FF;

    /// Real-mode code segment (CS after reset under unrestricted guest):
    /// execute/read accessed, present, DPL 0, 16-bit, byte granular.
    pub const REAL_MODE_CODE: Self = Self::code_data(segment_type::CODE_XR_ACCESSED, 0);
    /// Real-mode data segment (DS, ES, FS, GS, SS after reset):
    /// read/write accessed, present, DPL 0, 16-bit, byte granular.
    pub const REAL_MODE_DATA: Self = Self::code_data(segment_type::DATA_RW_ACCESSED, 0);
    /// 32-bit flat code: execute/read accessed, present, D = 1, G = 1.
    pub const FLAT32_CODE: Self = Self::code_data(
        segment_type::CODE_XR_ACCESSED,
        Self::DEFAULT_BIG | Self::GRANULARITY,
    );
    /// 32-bit flat data (also the data segments of a 64-bit guest):
    /// read/write accessed, present, B = 1, G = 1.
    pub const FLAT32_DATA: Self = Self::code_data(
        segment_type::DATA_RW_ACCESSED,
        Self::DEFAULT_BIG | Self::GRANULARITY,
    );
    /// 64-bit code: execute/read accessed, present, L = 1, D = 0, G = 1.
    pub const CODE64: Self = Self::code_data(
        segment_type::CODE_XR_ACCESSED,
        Self::LONG_MODE | Self::GRANULARITY,
    );
    /// TR holding a busy 32-bit TSS (64-bit TSS in IA-32e mode): the only
    /// TR type VM entry accepts for an IA-32e guest (§27.3.1.2).
    pub const TR_BUSY_TSS: Self = Self(segment_type::TSS_BUSY as u32 | Self::PRESENT);
    /// TR holding a busy 16-bit TSS (allowed outside IA-32e mode).
    pub const TR_BUSY_TSS16: Self = Self(segment_type::TSS16_BUSY as u32 | Self::PRESENT);
    /// An unusable segment (LDTR when there is no LDT; null data selectors).
    pub const UNUSABLE: Self = Self(Self::UNUSABLE_BIT);

    /// A present DPL-0 code or data segment of `ty` with `extra` bits.
    const fn code_data(ty: u8, extra: u32) -> Self {
        Self((ty as u32 & 0xF) | Self::CODE_OR_DATA | Self::PRESENT | extra)
    }

    /// Access rights from their parts (Table 25-2). `ty` is truncated to 4
    /// bits and `dpl` to 2.
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    pub const fn new(
        ty: u8,
        code_or_data: bool,
        dpl: u8,
        present: bool,
        avl: bool,
        long_mode: bool,
        default_big: bool,
        granularity: bool,
    ) -> Self {
        const fn bit(on: bool, b: u32) -> u32 {
            if on { b } else { 0 }
        }
        Self(
            (ty as u32 & 0xF)
                | bit(code_or_data, Self::CODE_OR_DATA)
                | ((dpl as u32 & 3) << 5)
                | bit(present, Self::PRESENT)
                | bit(avl, Self::AVL)
                | bit(long_mode, Self::LONG_MODE)
                | bit(default_big, Self::DEFAULT_BIG)
                | bit(granularity, Self::GRANULARITY),
        )
    }

    /// The access rights of a GDT/LDT segment descriptor (SDM Vol. 3A
    /// §3.4.5, Figure 3-8): descriptor bits 47:40 become bits 7:0 and bits
    /// 55:52 become bits 15:12. A descriptor that is not present is unusable.
    pub const fn from_descriptor(descriptor: u64) -> Self {
        let low = ((descriptor >> 40) & 0xFF) as u32;
        let high = ((descriptor >> 52) & 0xF) as u32;
        let rights = low | (high << 12);
        if rights & Self::PRESENT == 0 {
            Self(rights | Self::UNUSABLE_BIT)
        } else {
            Self(rights)
        }
    }

    /// Wraps a raw VMCS access-rights value.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The value to write to a `Guest…AccessRights` field.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Bits 3:0: the segment type.
    pub const fn segment_type(self) -> u8 {
        (self.0 & 0xF) as u8
    }

    /// Bit 4: code or data (rather than system) segment.
    pub const fn is_code_or_data(self) -> bool {
        self.0 & Self::CODE_OR_DATA != 0
    }

    /// Bits 6:5: the descriptor privilege level.
    pub const fn dpl(self) -> u8 {
        ((self.0 >> 5) & 3) as u8
    }

    /// Bit 7: present.
    pub const fn is_present(self) -> bool {
        self.0 & Self::PRESENT != 0
    }

    /// Bit 13: 64-bit code segment.
    pub const fn is_long_mode(self) -> bool {
        self.0 & Self::LONG_MODE != 0
    }

    /// Bit 14: 32-bit default operation size.
    pub const fn is_default_big(self) -> bool {
        self.0 & Self::DEFAULT_BIG != 0
    }

    /// Bit 15: 4 KiB granularity.
    pub const fn is_page_granular(self) -> bool {
        self.0 & Self::GRANULARITY != 0
    }

    /// Bit 16: unusable.
    pub const fn is_unusable(self) -> bool {
        self.0 & Self::UNUSABLE_BIT != 0
    }

    /// The same rights marked unusable.
    pub const fn unusable(self) -> Self {
        Self(self.0 | Self::UNUSABLE_BIT)
    }
}
