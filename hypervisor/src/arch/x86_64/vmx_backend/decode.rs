//! Turns a VT-x exit (the exit-reason field and the VMCS exit-information
//! fields, SDM Vol. 3C §28.2) into a vendor-neutral [`ExitEvent`].

use crate::arch::x86_64::vmcs::read;
use crate::vcpu::exit_event::{CrAccess, ExitEvent, IoAccess};
use crate::vmx::exit::{
    ApicAccessQualification, CrAccessQualification, CrAccessType, EptViolationQualification,
    ExitInterruptionInfo, ExitReason as R, InterruptionType, IoQualification, apic_write_offset,
};
use crate::vmx::fields::{Field32 as F32, Field64 as F64, FieldNat as FN};

/// The event for exit-reason field `raw` of the exit that just happened.
pub fn decode(raw: u32) -> ExitEvent {
    let basic = (raw & 0xFFFF) as u16;
    // Bit 31 of the exit-reason field: the VM entry failed (SDM Vol. 3C
    // §28.2.1, §27.8).
    if raw & (1 << 31) != 0 {
        return ExitEvent::EntryFailed {
            reason: basic,
            qualification: read(FN::ExitQualification),
        };
    }
    let Some(reason) = R::from_basic(basic) else {
        return ExitEvent::Unhandled { reason: basic };
    };
    match reason {
        R::ExceptionOrNmi => {
            let info = ExitInterruptionInfo(read(F32::ExitInterruptionInfo) as u32);
            match (info.interruption_type(), info.vector()) {
                (InterruptionType::Nmi, _) => ExitEvent::Nmi,
                (_, 1) => ExitEvent::DebugTrap,
                (_, vector) => ExitEvent::Exception { vector },
            }
        }
        R::ExternalInterrupt => {
            let info = ExitInterruptionInfo(read(F32::ExitInterruptionInfo) as u32);
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
            let q = CrAccessQualification(read(FN::ExitQualification));
            ExitEvent::Cr(match q.access_type() {
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
            })
        }
        R::IoInstruction => {
            let q = IoQualification(read(FN::ExitQualification));
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
        R::VirtualizedEoi => ExitEvent::VirtualizedEoi {
            vector: (read(FN::ExitQualification) & 0xFF) as u8,
        },
        R::ApicWrite => ExitEvent::ApicWrite {
            offset: u32::from(apic_write_offset(read(FN::ExitQualification))),
        },
        R::ApicAccess => {
            let raw = read(FN::ExitQualification);
            // Bits 15:12: the access type (SDM Vol. 3C Table 28-6).
            ExitEvent::ApicAccess {
                offset: ApicAccessQualification(raw).offset(),
                kind: ((raw >> 12) & 0xF) as u8,
            }
        }
        R::EptViolation => {
            let q = EptViolationQualification(read(FN::ExitQualification));
            // Bits 7 and 8 (SDM Vol. 3C Table 28-7); the IDT-vectoring
            // information is valid when the exit interrupted an event's
            // delivery (§28.2.4).
            ExitEvent::NestedPageFault {
                gpa: read(F64::GuestPhysicalAddress),
                write: q.write(),
                fetch: q.fetch(),
                paging_structure: q.linear_address_valid() && !q.translated_access(),
                during_delivery: read(F32::IdtVectoringInfo) & (1 << 31) != 0,
            }
        }
        R::EptMisconfiguration => ExitEvent::NestedPageMisconfig {
            gpa: read(F64::GuestPhysicalAddress),
        },
        other => ExitEvent::Unhandled {
            reason: other as u16,
        },
    }
}
