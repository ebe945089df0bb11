//! Memory dom0 must not see (the hypervisor's own and the free pool), as the
//! VT-x backend enforces it: every such page is mapped in dom0's EPT to one
//! read-only page of all-ones; a write faults and is single-stepped into a
//! scratch page (see [`crate::vcpu::hidden_write`] for the scheme and the
//! bookkeeping).

use core::sync::atomic::Ordering;

use super::Vcpu;
use crate::arch::x86_64::paging::IdentityTables;
use crate::arch::x86_64::physmem::fill_frame;
use crate::arch::x86_64::vmcs::{invept_all, read, write};
use crate::mm::addr::{HostPhysAddr, PAGE_SIZE};
use crate::mm::ept::{Ept, EptMemoryType, EptPerms};
use crate::mm::page_table::{Level, MapFlags, PageTable};
use crate::vcpu::backend::GuestCpu;
use crate::vcpu::hidden_write::{Begin, RFLAGS_IF, RFLAGS_TF, Step, WriteSteps};
use crate::vmx::fields::{Field32 as F32, FieldNat as FN};

/// #DB in the exception bitmap (SDM Vol. 3C §25.6.3).
const DB_BIT: u64 = 1 << 1;

/// dom0's hidden memory: its EPT (to change single leaves), the all-ones
/// page every hidden page shows, the scratch page writes go to.
#[derive(Debug)]
pub struct HiddenMemory {
    ept: PageTable<Ept>,
    ones: HostPhysAddr,
    scratch: HostPhysAddr,
    steps: WriteSteps,
}

/// The flags of a hidden page: readable and executable (0xFF bytes decode
/// to an invalid instruction, so a jump there faults in the guest), never
/// writable.
pub fn hidden_flags() -> MapFlags {
    EptPerms::ReadExecute.flags(EptMemoryType::WriteBack)
}

impl HiddenMemory {
    /// Takes over `ept`, in which every hidden page maps `ones` with
    /// [`hidden_flags`]; `ones` and `scratch` are filled with 0xFF here.
    pub fn new(ept: PageTable<Ept>, ones: HostPhysAddr, scratch: HostPhysAddr) -> Self {
        fill_frame(ones, 0xFF);
        fill_frame(scratch, 0xFF);
        Self {
            ept,
            ones,
            scratch,
            steps: WriteSteps::new(),
        }
    }

    /// Writes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.steps.dropped()
    }
}

/// What [`write_fault`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The address is not hidden memory: a real fault.
    NotHidden,
    /// The write goes ahead into the scratch page (or is retried).
    Handled,
    /// One instruction touched more hidden pages than a step allows.
    TooManyPages,
}

/// An EPT violation for a write to `gpa`.
pub fn write_fault(v: &mut Vcpu, gpa: u64) -> Outcome {
    let mut guard = v.domain.hidden.lock();
    let Some(h) = guard.as_mut() else {
        return Outcome::NotHidden;
    };
    let page = gpa & !(PAGE_SIZE - 1);
    let mut mem = IdentityTables;
    match h.ept.translate(&mem, page) {
        Some((phys, _, Level::Pt)) if phys == h.ones || phys == h.scratch => {}
        _ => return Outcome::NotHidden,
    }
    let rflags = read(FN::GuestRflags);
    let rip = read(FN::GuestRip);
    let writable = EptPerms::ReadWrite.flags(EptMemoryType::WriteBack);
    match h.steps.begin(v.index, page, rip, rflags) {
        Begin::Start => {
            if h.ept.remap_4k(&mut mem, page, h.scratch, writable).is_err() {
                let _ = h.steps.finish(v.index);
                return Outcome::NotHidden;
            }
            // TF for the trap; IF clear so that no interrupt is delivered
            // before the store (see `hidden_write`).
            write(FN::GuestRflags, (rflags | RFLAGS_TF) & !RFLAGS_IF);
            v.stepping = true;
            write(F32::ExceptionBitmap, read(F32::ExceptionBitmap) | DB_BIT);
            // VM entry refuses TF with STI/MOV-SS blocking unless a
            // single-step is pending (SDM Vol. 3C §26.3.1.5); let the
            // shadow go: the next instruction is the store, not a HLT.
            let intr = read(F32::GuestInterruptibilityState);
            write(F32::GuestInterruptibilityState, intr & !3);
            if h.steps.should_log() {
                log::warn!(
                    "{} vCPU{}: write to hidden memory at GPA {gpa:#x} dropped (RIP {:#x}; {} so far)",
                    v.domain.label(),
                    v.index,
                    rip,
                    h.steps.dropped()
                );
            }
        }
        Begin::Extend => {
            if h.ept.remap_4k(&mut mem, page, h.scratch, writable).is_err() {
                return Outcome::NotHidden;
            }
        }
        Begin::Retry => {}
        Begin::TooManyPages => return Outcome::TooManyPages,
    }
    invept_all();
    Outcome::Handled
}

/// A #DB exception exit: ends this vCPU's step if one is running. `false`
/// when the trap is not ours (the guest's own debugging).
pub fn debug_trap(v: &mut Vcpu) -> bool {
    let domain = v.domain.clone();
    let mut guard = domain.hidden.lock();
    let Some(h) = guard.as_mut() else {
        return false;
    };
    let Some(step) = h.steps.finish(v.index) else {
        return false;
    };
    end_step(v, h, &step);
    let rflags = read(FN::GuestRflags);
    let rflags = if step.guest_if {
        rflags | RFLAGS_IF
    } else {
        rflags
    };
    if step.guest_tf {
        // The guest was single-stepping itself: its trap is due too.
        write(FN::GuestRflags, rflags);
        v.inject_exception(crate::vcpu::backend::vector::DEBUG, None);
    } else {
        write(FN::GuestRflags, rflags & !RFLAGS_TF);
        write(FN::GuestPendingDebugExceptions, 0);
    }
    true
}

/// Called at any other exit of a stepping vCPU: if it left the writing
/// instruction without the trap (the store faulted in the guest), the step
/// is over; the pages go back to the all-ones page so the other vCPUs'
/// writes proceed. The TF and IF the step set are in the guest's exception
/// frame now, out of reach: the guest's handler returns to the store with
/// them, and the store faults again as a new step (or, if the task is
/// switched out, it takes a stray single-step trap later: logged here).
pub fn check_abandoned(v: &mut Vcpu) {
    let domain = v.domain.clone();
    let mut guard = domain.hidden.lock();
    let Some(h) = guard.as_mut() else {
        v.stepping = false;
        return;
    };
    let rip = read(FN::GuestRip);
    if let Some(step) = h.steps.abandon(v.index, rip) {
        end_step(v, h, &step);
        log::warn!(
            "{} vCPU{}: a write to hidden memory at RIP {:#x} faulted in the guest; step abandoned (now at {rip:#x})",
            v.domain.label(),
            v.index,
            step.rip
        );
    }
}

/// Points a finished step's pages back at the all-ones page, refills the
/// scratch page and stops intercepting #DB.
fn end_step(v: &mut Vcpu, h: &mut HiddenMemory, step: &Step) {
    let mut mem = IdentityTables;
    for &page in step.pages() {
        // Mapped by a 4 KiB leaf when the step began: cannot fail.
        let _ = h.ept.remap_4k(&mut mem, page, h.ones, hidden_flags());
    }
    invept_all();
    // Other CPUs may cache the scratch mapping: they flush before their
    // next entry.
    v.domain.ept_generation.fetch_add(1, Ordering::AcqRel);
    fill_frame(h.scratch, 0xFF);
    write(F32::ExceptionBitmap, read(F32::ExceptionBitmap) & !DB_BIT);
    v.stepping = false;
}
