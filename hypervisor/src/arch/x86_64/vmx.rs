//! Entering VMX root operation on the running CPU (SDM Vol.3C §25.7 "Enabling
//! and Entering VMX Operation") and reading the capability MSRs.

use core::arch::asm;

use super::cpu::{
    self, IA32_FEATURE_CONTROL, IA32_VMX_CR0_FIXED0, IA32_VMX_CR0_FIXED1, IA32_VMX_CR4_FIXED0,
    IA32_VMX_CR4_FIXED1, rdmsr, wrmsr,
};
use crate::vmx::caps::{self, VmxMsrs, msr};

/// Why VMX could not be used on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmxError {
    /// CPUID.1:ECX.VMX[bit 5] is clear: no VT-x, or it is hidden by a hypervisor.
    NotSupported,
    /// IA32_FEATURE_CONTROL is locked with VMX-outside-SMX disabled (firmware setting).
    DisabledByFirmware,
    /// VMXON failed (VMfailInvalid / VMfailValid).
    VmxonFailed,
}

impl core::fmt::Display for VmxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VmxError::NotSupported => {
                write!(
                    f,
                    "the CPU does not report VMX (CPUID.1:ECX bit 5 is clear)"
                )
            }
            VmxError::DisabledByFirmware => write!(
                f,
                "VMX is disabled and locked in IA32_FEATURE_CONTROL: enable \"Intel Virtualization Technology\" in the firmware setup"
            ),
            VmxError::VmxonFailed => write!(f, "VMXON failed"),
        }
    }
}

/// Reads the capability MSRs (only call when `cpu::has_vmx()`), using the
/// TRUE_* forms when IA32_VMX_BASIC says they exist (SDM Vol.3D A.2).
pub fn read_msrs() -> VmxMsrs {
    // Every rdmsr below: CPUID reports VMX, so IA32_VMX_BASIC and the basic
    // control MSRs exist (SDM Vol.3D A.1); the TRUE_*, CTLS2 and EPT_VPID_CAP
    // MSRs are read only when BASIC/CTLS say they exist.
    // SAFETY: see above.
    let basic = unsafe { rdmsr(msr::BASIC) };
    let true_ctls = caps::has_true_controls(basic);
    let pick = |plain: u32, tru: u32| {
        // SAFETY: see above.
        unsafe { rdmsr(if true_ctls { tru } else { plain }) }
    };
    let procbased = pick(msr::PROCBASED, msr::TRUE_PROCBASED);
    let procbased2 = if caps::has_secondary(procbased) {
        // SAFETY: see above.
        unsafe { rdmsr(msr::PROCBASED2) }
    } else {
        0
    };
    let ept_vpid = if caps::has_ept_vpid_cap(procbased2) {
        // SAFETY: see above.
        unsafe { rdmsr(msr::EPT_VPID_CAP) }
    } else {
        0
    };
    VmxMsrs {
        basic,
        pinbased: pick(msr::PINBASED, msr::TRUE_PINBASED),
        procbased,
        exit: pick(msr::EXIT, msr::TRUE_EXIT),
        entry: pick(msr::ENTRY, msr::TRUE_ENTRY),
        // SAFETY: see above.
        misc: unsafe { rdmsr(msr::MISC) },
        procbased2,
        ept_vpid,
    }
}

/// Enables VMX in IA32_FEATURE_CONTROL (locking it if firmware left it
/// unlocked), applies the CR0/CR4 fixed bits (SDM Vol.3D A.7, A.8), and runs
/// VMXON with the zeroed 4 KiB region at `vmxon_region_phys` (identity-mapped).
pub fn enable(vmxon_region_phys: u64, revision: u32) -> Result<(), VmxError> {
    if !cpu::has_vmx() {
        return Err(VmxError::NotSupported);
    }
    // SAFETY: IA32_FEATURE_CONTROL exists on every CPU that reports VMX.
    let fc = unsafe { rdmsr(IA32_FEATURE_CONTROL) };
    const LOCK: u64 = 1;
    const VMX_OUTSIDE_SMX: u64 = 1 << 2;
    if fc & LOCK != 0 {
        if fc & VMX_OUTSIDE_SMX == 0 {
            return Err(VmxError::DisabledByFirmware);
        }
    } else {
        // SAFETY: the MSR is unlocked, so setting enable+lock is permitted.
        unsafe { wrmsr(IA32_FEATURE_CONTROL, fc | LOCK | VMX_OUTSIDE_SMX) };
    }
    // SAFETY: the fixed-bit MSRs exist when VMX does.
    let (c0f0, c0f1, c4f0, c4f1) = unsafe {
        (
            rdmsr(IA32_VMX_CR0_FIXED0),
            rdmsr(IA32_VMX_CR0_FIXED1),
            rdmsr(IA32_VMX_CR4_FIXED0),
            rdmsr(IA32_VMX_CR4_FIXED1),
        )
    };
    let cr0 = (cpu::read_cr0() | c0f0) & c0f1;
    let mut cr4 = ((cpu::read_cr4() | c4f0) & c4f1) | (1 << 13); // CR4.VMXE
    // CR4.OSXSAVE (when the CPU has XSAVE): XSETBV exits are carried out in
    // VMX root for the guest, which needs it (SDM Vol.1 §13.3).
    if cpu::has_xsave() {
        cr4 |= 1 << 18;
    }
    // SAFETY: the fixed bits for a 64-bit CPU with paging on are PE, PG, NE
    // (CR0) and VMXE (CR4): all compatible with the running code.
    unsafe {
        cpu::write_cr0(cr0);
        cpu::write_cr4(cr4);
    }
    // The region starts with the VMCS revision identifier (SDM §25.11.5).
    // SAFETY: the caller gives a 4 KiB-aligned, identity-mapped, otherwise
    // unused frame.
    unsafe { core::ptr::write_volatile(vmxon_region_phys as *mut u32, revision) };
    let failed: u8;
    // SAFETY: VMXON with a valid region pointer; CF/ZF report failure.
    unsafe {
        asm!(
            "vmxon [{0}]",
            "setbe {1}",
            in(reg) &vmxon_region_phys,
            out(reg_byte) failed,
            options(nostack),
        );
    }
    if failed != 0 {
        Err(VmxError::VmxonFailed)
    } else {
        Ok(())
    }
}

/// Leaves VMX operation on this CPU (before power-off or reboot).
pub fn disable() {
    // SAFETY: VMXOFF outside VMX operation raises #UD, so only call it when
    // this CPU entered VMX root (the caller checks per-CPU state).
    unsafe { asm!("vmxoff", options(nostack)) };
    // SAFETY: clearing CR4.VMXE after VMXOFF is valid.
    unsafe { cpu::write_cr4(cpu::read_cr4() & !(1 << 13)) };
}
