//! RDMSR and WRMSR: [`crate::vcpu::msr_policy`] decides what an MSR is;
//! the local APIC's go to the backend's vLAPIC, EFER to the guest state,
//! and a refused one is #GP(0) (SDM Vol. 2B RDMSR/WRMSR).

use super::{advance, edx_eax, inject_gp};
use crate::vcpu::backend::ExitContext;
use crate::vcpu::msr_policy::{self, ReadAction, WriteAction};
use crate::vlapic::ApicFault;
use crate::vmx::exit::Gpr;

/// RDMSR: EDX:EAX = MSR[ECX].
pub fn rdmsr(cx: &mut impl ExitContext) {
    let msr = cx.gpr(Gpr::Rcx) as u32;
    let value = match msr_policy::read(msr) {
        a @ (ReadAction::ApicBase | ReadAction::TscDeadline | ReadAction::X2Apic) => {
            cx.apic_msr_read(msr, a)
        }
        ReadAction::Efer => Some(cx.efer()),
        ReadAction::Tsc => Some(cx.tsc()),
        ReadAction::Value(x) => Some(x),
        ReadAction::Fault => {
            // dom0 reaches only the MSRs its bitmap traps, so an unknown one
            // is worth a line; a domU traps everything and Linux probes many.
            if cx.is_dom0() && !msr_policy::VMX_MSRS.contains(&msr) {
                log::warn!("{}: RDMSR {msr:#x} refused (#GP)", cx.name());
            }
            None
        }
    };
    match value {
        Some(val) => {
            cx.set_gpr(Gpr::Rax, val & 0xFFFF_FFFF);
            cx.set_gpr(Gpr::Rdx, val >> 32);
            advance(cx);
        }
        None => inject_gp(cx),
    }
}

/// WRMSR: MSR[ECX] = EDX:EAX.
pub fn wrmsr(cx: &mut impl ExitContext) {
    let msr = cx.gpr(Gpr::Rcx) as u32;
    let value = edx_eax(cx);
    let now = cx.tsc();
    let result: Result<(), ApicFault> = match msr_policy::write(msr, value) {
        a @ (WriteAction::ApicBase | WriteAction::TscDeadline | WriteAction::X2Apic) => {
            cx.apic_msr_write(msr, a, value, now)
        }
        WriteAction::Efer(value) => {
            let paging = cx.paging_enabled();
            match msr_policy::efer_after_write(cx.efer(), value, paging) {
                Some(efer) => {
                    cx.set_efer(efer);
                    Ok(())
                }
                None => Err(ApicFault::Gp),
            }
        }
        WriteAction::Ignore => Ok(()),
        WriteAction::Fault => Err(ApicFault::Gp),
    };
    match result {
        Ok(()) => advance(cx),
        Err(_) => {
            log::debug!("{}: WRMSR {msr:#x} = {value:#x} refused (#GP)", cx.name());
            inject_gp(cx);
        }
    }
}
