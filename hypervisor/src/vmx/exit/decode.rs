//! The one VT-x exit decoder: the exit-reason field and the VM-exit
//! information fields (SDM Vol. 3C §25.9, §28.2) in, a vendor-neutral
//! [`ExitEvent`] out.
//!
//! Pure: the fields come through [`ExitFields`], so the backend reads each
//! one from the VMCS (one VMREAD each) only when the exit at hand needs it,
//! and the tests hand over plain values in a [`RawExit`].

use super::{
    ApicAccessQualification, CrAccessQualification, CrAccessType, EptViolationQualification,
    ExitInterruptionInfo, ExitReason as R, ExitReasonField, InterruptionType, IoQualification,
    apic_write_offset,
};
use crate::vcpu::exit_event::{CrAccess, ExitEvent, IoAccess};

/// The VM-exit information fields [`decode`] may need besides the exit
/// reason (SDM Vol. 3C §25.9). Each is asked for at most once per decode,
/// and only by the exits it describes.
pub trait ExitFields {
    /// The exit qualification (§28.2.1, Tables 28-1 to 28-7).
    fn qualification(&self) -> u64;
    /// The guest-physical-address field (EPT violations and
    /// misconfigurations, §28.2.1).
    fn guest_physical(&self) -> u64;
    /// The VM-exit interruption-information field (§25.9.2, Table 25-19).
    fn interruption_info(&self) -> u32;
    /// The IDT-vectoring information field (§25.9.3, Table 25-20).
    fn idt_vectoring_info(&self) -> u32;
}

/// The fields as plain values, for the host tests and anything else that
/// already holds a snapshot. Fields an exit does not define may hold
/// anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawExit {
    /// The exit qualification.
    pub qualification: u64,
    /// The guest-physical address.
    pub guest_physical: u64,
    /// The VM-exit interruption information.
    pub interruption_info: u32,
    /// The IDT-vectoring information.
    pub idt_vectoring_info: u32,
}

impl ExitFields for RawExit {
    fn qualification(&self) -> u64 {
        self.qualification
    }

    fn guest_physical(&self) -> u64 {
        self.guest_physical
    }

    fn interruption_info(&self) -> u32 {
        self.interruption_info
    }

    fn idt_vectoring_info(&self) -> u32 {
        self.idt_vectoring_info
    }
}

/// The event for the exit whose exit-reason field (§25.9.1, Table 25-18) is
/// `reason`, asking `fields` for the other values it needs.
pub fn decode(reason: u32, fields: &impl ExitFields) -> ExitEvent {
    let field = ExitReasonField(reason);
    // Bit 31: the VM entry failed (reasons 33, 34, 41; §27.8); the
    // qualification says which MSR-load entry or why (§28.2.1).
    if field.entry_failure() {
        return ExitEvent::EntryFailed {
            reason: field.basic(),
            qualification: fields.qualification(),
        };
    }
    let Some(reason) = field.reason() else {
        return ExitEvent::Unhandled {
            reason: field.basic(),
        };
    };
    match reason {
        R::ExceptionOrNmi => exception_or_nmi(ExitInterruptionInfo(fields.interruption_info())),
        R::ExternalInterrupt => {
            // The vector is there when "acknowledge interrupt on exit" is
            // set (§25.9.2).
            let info = ExitInterruptionInfo(fields.interruption_info());
            ExitEvent::ExternalInterrupt {
                vector: info.valid().then(|| info.vector()),
            }
        }
        R::TripleFault => ExitEvent::TripleFault,
        R::InitSignal | R::StartupIpi => ExitEvent::InitOrSipi,
        R::InterruptWindow | R::TprBelowThreshold => ExitEvent::InterruptWindow,
        R::PreemptionTimerExpired => ExitEvent::TimerExpired,
        R::Cpuid => ExitEvent::Cpuid,
        R::Hlt => ExitEvent::Hlt,
        R::Invd | R::Wbinvd | R::Pause | R::Mwait | R::Monitor => ExitEvent::Skip,
        R::Vmcall => ExitEvent::Hypercall,
        R::Getsec
        | R::Vmclear
        | R::Vmlaunch
        | R::Vmptrld
        | R::Vmptrst
        | R::Vmread
        | R::Vmresume
        | R::Vmwrite
        | R::Vmxoff
        | R::Vmxon
        | R::Invept
        | R::Invvpid
        | R::Vmfunc => ExitEvent::Unsupported,
        R::ControlRegisterAccess => {
            ExitEvent::Cr(cr_access(CrAccessQualification(fields.qualification())))
        }
        R::IoInstruction => {
            let q = IoQualification(fields.qualification());
            ExitEvent::Io(IoAccess {
                port: q.port(),
                size: q.size(),
                input: q.is_in(),
                string: q.is_string(),
            })
        }
        R::Rdmsr => ExitEvent::Rdmsr,
        R::Wrmsr => ExitEvent::Wrmsr,
        R::Xsetbv => ExitEvent::Xsetbv,
        // §28.2.1: bits 7:0 of the qualification hold the vector.
        R::VirtualizedEoi => ExitEvent::VirtualizedEoi {
            vector: fields.qualification() as u8,
        },
        R::ApicWrite => ExitEvent::ApicWrite {
            offset: u32::from(apic_write_offset(fields.qualification())),
        },
        R::ApicAccess => {
            let q = ApicAccessQualification(fields.qualification());
            ExitEvent::ApicAccess {
                offset: q.offset(),
                kind: q.access_type().code(),
            }
        }
        R::EptViolation => {
            let q = EptViolationQualification(fields.qualification());
            ExitEvent::NestedPageFault {
                gpa: fields.guest_physical(),
                write: q.write(),
                fetch: q.fetch(),
                // Bits 7 and 8 (Table 28-7): a valid linear address whose
                // access was not the translated one was a guest
                // paging-structure access.
                paging_structure: q.linear_address_valid() && !q.translated_access(),
                // The IDT-vectoring information is valid when the exit
                // interrupted an event's delivery (§28.2.4).
                during_delivery: ExitInterruptionInfo(fields.idt_vectoring_info()).valid(),
            }
        }
        R::EptMisconfiguration => ExitEvent::NestedPageMisconfig {
            gpa: fields.guest_physical(),
        },
        other => ExitEvent::Unhandled {
            reason: other.number(),
        },
    }
}

/// Exit reason 0 (§25.9.2, Table 25-19): an NMI, the #DB the hypervisor
/// single-steps with, or another intercepted exception.
fn exception_or_nmi(info: ExitInterruptionInfo) -> ExitEvent {
    match (info.interruption_type(), info.vector()) {
        (InterruptionType::Nmi, _) => ExitEvent::Nmi,
        (_, 1) => ExitEvent::DebugTrap,
        (_, vector) => ExitEvent::Exception { vector },
    }
}

/// Exit reason 28 (Table 28-3).
fn cr_access(q: CrAccessQualification) -> CrAccess {
    match q.access_type() {
        CrAccessType::MovToCr => CrAccess::Write {
            cr: q.cr(),
            gpr: q.gpr(),
        },
        CrAccessType::MovFromCr => CrAccess::Read {
            cr: q.cr(),
            gpr: q.gpr(),
        },
        CrAccessType::Clts => CrAccess::Clts,
        CrAccessType::Lmsw => CrAccess::Lmsw {
            source: q.lmsw_source(),
        },
    }
}

#[cfg(test)]
mod tests;
