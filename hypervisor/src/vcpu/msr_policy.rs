//! Which MSRs a guest reads and writes through the hypervisor, and what
//! happens (the MSR bitmap sends only these here; everything else runs on
//! the hardware). MSR numbers: SDM Vol. 4 Table 2-2.

/// IA32_APIC_BASE.
pub const MSR_APIC_BASE: u32 = 0x1B;
/// IA32_FEATURE_CONTROL.
pub const MSR_FEATURE_CONTROL: u32 = 0x3A;
/// IA32_BIOS_UPDT_TRIG (microcode update).
pub const MSR_BIOS_UPDT_TRIG: u32 = 0x79;
/// IA32_TSC_DEADLINE.
pub const MSR_TSC_DEADLINE: u32 = 0x6E0;
/// IA32_EFER.
pub const MSR_EFER: u32 = 0xC000_0080;
/// IA32_TIME_STAMP_COUNTER.
pub const MSR_TSC: u32 = 0x10;
/// IA32_PLATFORM_ID.
pub const MSR_PLATFORM_ID: u32 = 0x17;
/// IA32_TSC_ADJUST.
pub const MSR_TSC_ADJUST: u32 = 0x3B;
/// IA32_BIOS_SIGN_ID (microcode revision).
pub const MSR_BIOS_SIGN_ID: u32 = 0x8B;
/// IA32_MTRRCAP.
pub const MSR_MTRR_CAP: u32 = 0xFE;
/// IA32_MISC_ENABLE.
pub const MSR_MISC_ENABLE: u32 = 0x1A0;
/// IA32_DEBUGCTL.
pub const MSR_DEBUGCTL: u32 = 0x1D9;
/// IA32_MTRR_DEF_TYPE.
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2FF;
/// IA32_MCG_CAP, IA32_MCG_STATUS, IA32_MCG_CTL: machine-check globals.
pub const MSR_MCG: core::ops::RangeInclusive<u32> = 0x179..=0x17B;
/// The x2APIC register range (SDM Vol. 3A §12.12.1.2).
pub const X2APIC_MSRS: core::ops::RangeInclusive<u32> = 0x800..=0x8FF;
/// The VMX capability MSRs (IA32_VMX_BASIC .. IA32_VMX_VMFUNC).
pub const VMX_MSRS: core::ops::RangeInclusive<u32> = 0x480..=0x491;

/// EFER bits a guest may set: SCE, LME, LMA (kept by the hypervisor), NXE,
/// FFXSR, TCE.
const EFER_WRITABLE: u64 = 1 | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15);

/// What a RDMSR does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAction {
    /// The virtual APIC's base register.
    ApicBase,
    /// The virtual APIC's TSC deadline.
    TscDeadline,
    /// A virtual x2APIC register.
    X2Apic,
    /// The guest's EFER (VMCS guest state).
    Efer,
    /// The time-stamp counter.
    Tsc,
    /// This constant.
    Value(u64),
    /// #GP(0), as for an MSR the CPU does not have.
    Fault,
}

/// What a WRMSR does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    /// The virtual APIC's base register.
    ApicBase,
    /// The virtual APIC's TSC deadline.
    TscDeadline,
    /// A virtual x2APIC register.
    X2Apic,
    /// EFER with these bits (LMA is the hypervisor's: the caller keeps it).
    Efer(u64),
    /// Accepted and dropped: MTRRs and microcode updates belong to the
    /// hypervisor, which owns the memory types and the CPU (as Xen does for
    /// its guests).
    Ignore,
    /// #GP(0).
    Fault,
}

fn is_mtrr(msr: u32) -> bool {
    matches!(msr, 0x200..=0x21F | 0x250 | 0x258 | 0x259 | 0x268..=0x26F | 0x2FF)
}

/// RDMSR of `msr`.
pub fn read(msr: u32) -> ReadAction {
    match msr {
        MSR_APIC_BASE => ReadAction::ApicBase,
        // Locked with VMX off: no nested virtualization.
        MSR_FEATURE_CONTROL => ReadAction::Value(1),
        MSR_TSC_DEADLINE => ReadAction::TscDeadline,
        m if X2APIC_MSRS.contains(&m) => ReadAction::X2Apic,
        MSR_EFER => ReadAction::Efer,
        // What a domU (whose bitmap traps every MSR) reads during early
        // boot, before it has an IDT to take a #GP (dom0 reads the real
        // ones: its bitmap passes them through).
        MSR_TSC => ReadAction::Tsc,
        // Fast strings on; branch trace and PEBS unavailable; XD not
        // disabled; MONITOR/MWAIT off (SDM Vol. 4 Table 2-2).
        MSR_MISC_ENABLE => ReadAction::Value((1 << 0) | (1 << 11) | (1 << 12)),
        // No microcode revision or platform id to report; no TSC
        // adjustment; no MTRRs (capabilities 0, default type disabled); no
        // debug features on.
        MSR_PLATFORM_ID | MSR_BIOS_SIGN_ID | MSR_TSC_ADJUST | MSR_MTRR_CAP | MSR_MTRR_DEF_TYPE
        | MSR_DEBUGCTL => ReadAction::Value(0),
        // Machine checks belong to the hypervisor and dom0: a domU sees a
        // machine-check architecture with no banks and nothing pending
        // (Linux requires the MSRs once CPUID says MCA).
        m if MSR_MCG.contains(&m) => ReadAction::Value(0),
        _ => ReadAction::Fault,
    }
}

/// EFER.LME (bit 8) and EFER.LMA (bit 10).
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// The EFER a WRMSR of `value` leaves when it holds `current` and paging is
/// on or off, or `None` for #GP: reserved bits set, or LME changed while
/// paging is on (SDM Vol. 3A §10.8.5; the next VM entry would fail its
/// guest-state checks, §27.3.1.1, if it were let through). LMA is the
/// CPU's: the value written is ignored and `current`'s kept.
pub fn efer_after_write(current: u64, value: u64, paging: bool) -> Option<u64> {
    if value & !EFER_WRITABLE != 0 || (paging && (value ^ current) & EFER_LME != 0) {
        return None;
    }
    Some((value & !EFER_LMA) | (current & EFER_LMA))
}

/// WRMSR of `value` to `msr`.
pub fn write(msr: u32, value: u64) -> WriteAction {
    match msr {
        MSR_APIC_BASE => WriteAction::ApicBase,
        MSR_TSC_DEADLINE => WriteAction::TscDeadline,
        m if X2APIC_MSRS.contains(&m) => WriteAction::X2Apic,
        MSR_EFER if value & !EFER_WRITABLE == 0 => WriteAction::Efer(value),
        MSR_BIOS_UPDT_TRIG => WriteAction::Ignore,
        // A domU's view of these is fixed (see `read`); writes are dropped.
        MSR_TSC | MSR_MISC_ENABLE | MSR_BIOS_SIGN_ID | MSR_TSC_ADJUST | MSR_DEBUGCTL => {
            WriteAction::Ignore
        }
        m if MSR_MCG.contains(&m) => WriteAction::Ignore,
        m if is_mtrr(m) => WriteAction::Ignore,
        _ => WriteAction::Fault,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn efer_lme_is_fixed_while_paging_is_on() {
        let long = 0xD01; // SCE, LME, LMA, NXE
        // Clearing LME with paging on: #GP (the guest would fail VM entry).
        assert_eq!(efer_after_write(long, long & !(1 << 8), true), None);
        // Setting LME with paging on: #GP too.
        assert_eq!(efer_after_write(0x001, 0x101, true), None);
        // Other bits may change; LMA stays the CPU's.
        assert_eq!(efer_after_write(long, 0x101, true), Some(0x501));
        assert_eq!(efer_after_write(0x000, 0x500, false), Some(0x100));
        // Paging off: LME may go either way.
        assert_eq!(efer_after_write(0x100, 0x000, false), Some(0x000));
        // Reserved bits: #GP whatever the mode.
        assert_eq!(efer_after_write(0, 1 << 12, false), None);
    }
    use super::*;

    #[test]
    fn reads() {
        assert_eq!(read(MSR_APIC_BASE), ReadAction::ApicBase);
        assert_eq!(read(MSR_FEATURE_CONTROL), ReadAction::Value(1));
        assert_eq!(read(0x830), ReadAction::X2Apic);
        assert_eq!(read(MSR_EFER), ReadAction::Efer);
        assert_eq!(read(MSR_TSC), ReadAction::Tsc);
        assert_eq!(read(MSR_MISC_ENABLE), ReadAction::Value(0x1801));
        assert_eq!(read(MSR_MTRR_CAP), ReadAction::Value(0));
        assert_eq!(read(0x17A), ReadAction::Value(0));
        assert_eq!(write(0x17A, 0), WriteAction::Ignore);
        assert_eq!(write(MSR_MISC_ENABLE, 1), WriteAction::Ignore);
        for m in VMX_MSRS {
            assert_eq!(read(m), ReadAction::Fault, "{m:#x}");
        }
        assert_eq!(read(0xC001_1029), ReadAction::Fault);
    }

    #[test]
    fn writes() {
        assert_eq!(write(MSR_EFER, 0xD01), WriteAction::Efer(0xD01));
        assert_eq!(
            write(MSR_EFER, 1 << 12),
            WriteAction::Fault,
            "SVME is not ours to give"
        );
        assert_eq!(write(0x200, 6), WriteAction::Ignore);
        assert_eq!(write(0x2FF, 0xC06), WriteAction::Ignore);
        assert_eq!(write(MSR_BIOS_UPDT_TRIG, 0x1000), WriteAction::Ignore);
        assert_eq!(write(MSR_FEATURE_CONTROL, 5), WriteAction::Fault);
        assert_eq!(write(0x480, 0), WriteAction::Fault);
        assert_eq!(write(0x80B, 0), WriteAction::X2Apic);
    }
}
