//! Control-register accesses that exit: MOV to CR0/CR3/CR4, MOV from CR3,
//! CLTS and LMSW (SDM Vol. 3C §26.1.3 lists when they do).

use super::{Fatal, advance, inject_gp};
use crate::vcpu::backend::{CR0_PG, CR0_TS, CR4_VMXE, EFER_LMA, EFER_LME, ExitContext, GuestCpu};
use crate::vcpu::exit_event::CrAccess;

/// Carries out `access`; `Err` for one this hypervisor never makes exit.
pub fn cr_access(cx: &mut impl ExitContext, access: CrAccess) -> Result<(), Fatal> {
    match access {
        CrAccess::Write { cr: 0, gpr } => {
            let value = cx.gpr(gpr);
            write_cr0(cx, value);
        }
        CrAccess::Write { cr: 4, gpr } => {
            let value = cx.gpr(gpr);
            // No nested virtualization: CR4.VMXE is refused as on a CPU
            // without VMX.
            if value & CR4_VMXE != 0 {
                inject_gp(cx);
                return Ok(());
            }
            cx.set_cr4(value);
        }
        CrAccess::Write { cr: 3, gpr } => {
            let value = cx.gpr(gpr);
            cx.set_cr3(value);
        }
        CrAccess::Read { cr: 3, gpr } => {
            let value = cx.cr3();
            cx.set_gpr(gpr, value);
        }
        CrAccess::Clts => {
            let cr0 = cx.cr0();
            cx.set_cr0(cr0 & !CR0_TS);
        }
        CrAccess::Lmsw { source } => {
            // LMSW loads bits 3:0; it cannot clear PE (SDM Vol. 2A LMSW).
            let cr0 = cx.cr0();
            let new = (cr0 & !0xE) | u64::from(source & 0xF) | (cr0 & 1);
            write_cr0(cx, new);
        }
        other => {
            log::error!("{}: unexpected CR access {other:?}", cx.name());
            return Err(Fatal);
        }
    }
    advance(cx);
    Ok(())
}

/// A guest write of `value` to CR0; turning paging on or off with EFER.LME
/// set switches IA-32e mode (SDM Vol. 3A §10.8.5), which EFER.LMA mirrors.
pub fn write_cr0(g: &mut impl GuestCpu, value: u64) {
    g.set_cr0(value);
    if let Some(efer) = efer_after_cr0_write(value, g.efer()) {
        g.switch_long_mode(efer);
    }
}

/// EFER after CR0 became `cr0`, if its LMA changes: set when paging turns
/// on with LME set, cleared when paging turns off.
pub fn efer_after_cr0_write(cr0: u64, efer: u64) -> Option<u64> {
    let paging = cr0 & CR0_PG != 0;
    if paging && efer & EFER_LME != 0 && efer & EFER_LMA == 0 {
        Some(efer | EFER_LMA)
    } else if !paging && efer & EFER_LMA != 0 {
        Some(efer & !EFER_LMA)
    } else {
        None
    }
}
