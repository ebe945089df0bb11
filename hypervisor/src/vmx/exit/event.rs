//! The vendor-neutral exit events and their decoding from a raw VMX exit.

use super::{
    ApicAccessQualification, ApicAccessType, CrAccessQualification, CrAccessType,
    EptViolationQualification, ExitInterruptionInfo, ExitReason, ExitReasonField, Gpr,
    InterruptionType, IoQualification, apic_write_offset,
};
use crate::mm::addr::GuestPhysAddr;

/// The VMCS values and guest registers the VMX backend reads after an exit,
/// everything [`decode`] needs. Fields an exit does not define may hold
/// anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawExit {
    /// The exit-reason field (§25.9.1).
    pub reason: u32,
    /// The exit qualification (§28.2.1).
    pub qualification: u64,
    /// The guest-physical-address field (EPT violations and
    /// misconfigurations).
    pub guest_physical: u64,
    /// The VM-exit instruction length.
    pub instruction_len: u32,
    /// The VM-exit interruption-information field (Table 25-19).
    pub interruption_info: u32,
    /// The VM-exit interruption error code.
    pub interruption_error: u32,
    /// Guest RAX.
    pub rax: u64,
    /// Guest RCX.
    pub rcx: u64,
    /// Guest RDX.
    pub rdx: u64,
}

/// How a guest memory access that faulted was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MemoryAccess {
    /// A data read.
    pub read: bool,
    /// A data write.
    pub write: bool,
    /// An instruction fetch.
    pub execute: bool,
}

/// What a control-register access did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrAccessKind {
    /// MOV to CRn from `gpr`.
    MovTo {
        /// The source register.
        gpr: Gpr,
    },
    /// MOV from CRn to `gpr`.
    MovFrom {
        /// The destination register.
        gpr: Gpr,
    },
    /// CLTS (clears CR0.TS).
    Clts,
    /// LMSW with `source` (the low 16 bits to load into CR0).
    Lmsw {
        /// The source operand.
        source: u16,
    },
}

/// A guest exit, in terms every backend (VMX today, SVM later) can produce
/// and the hypervisor core handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitEvent {
    /// CPUID with EAX = `leaf`, ECX = `subleaf`.
    Cpuid {
        /// EAX.
        leaf: u32,
        /// ECX.
        subleaf: u32,
    },
    /// RDMSR of ECX.
    MsrRead {
        /// The MSR.
        msr: u32,
    },
    /// WRMSR of EDX:EAX to ECX.
    MsrWrite {
        /// The MSR.
        msr: u32,
        /// EDX:EAX.
        value: u64,
    },
    /// IN from `port` of `size` bytes (1, 2 or 4), into AL/AX/EAX.
    IoIn {
        /// The port.
        port: u16,
        /// The access size in bytes.
        size: u8,
    },
    /// OUT of the low `size` bytes of `value` (EAX) to `port`.
    IoOut {
        /// The port.
        port: u16,
        /// The access size in bytes.
        size: u8,
        /// AL, AX or EAX, zero-extended.
        value: u32,
    },
    /// INS or OUTS: the handler emulates the instruction (addresses come
    /// from RSI/RDI, the count from RCX when `rep`).
    IoString {
        /// The port.
        port: u16,
        /// The element size in bytes.
        size: u8,
        /// INS (else OUTS).
        input: bool,
        /// REP prefix.
        rep: bool,
    },
    /// MOV to/from a control register, CLTS or LMSW.
    CrAccess {
        /// The control register (0, 3, 4 or 8; 0 for CLTS and LMSW).
        cr: u8,
        /// What was done.
        access: CrAccessKind,
    },
    /// XSETBV: EDX:EAX into XCR[ECX].
    Xsetbv {
        /// ECX, the extended control register.
        xcr: u32,
        /// EDX:EAX.
        value: u64,
    },
    /// An EPT violation at `gpa`.
    EptViolation {
        /// The guest-physical address accessed.
        gpa: GuestPhysAddr,
        /// How it was accessed.
        access: MemoryAccess,
    },
    /// An EPT misconfiguration at `gpa` (a bug in the hypervisor's tables).
    EptMisconfig {
        /// The guest-physical address accessed.
        gpa: GuestPhysAddr,
    },
    /// VMCALL: operation in RAX (the caller reads the other registers).
    Hypercall,
    /// HLT.
    Hlt,
    /// A physical interrupt arrived; `vector` is known when the interrupt
    /// was acknowledged on exit.
    ExternalInterrupt {
        /// The vector, if acknowledged.
        vector: Option<u8>,
    },
    /// A physical NMI arrived.
    Nmi,
    /// A guest exception intercepted through the exception bitmap.
    Exception {
        /// The vector.
        vector: u8,
        /// The error code, if the exception pushed one.
        error_code: Option<u32>,
    },
    /// The guest can take an interrupt now.
    InterruptWindow,
    /// The guest can take an NMI now.
    NmiWindow,
    /// The preemption timer expired.
    PreemptionTimer,
    /// The guest triple-faulted (shutdown).
    TripleFault,
    /// An INIT signal arrived for this vCPU.
    InitSignal,
    /// A start-up IPI arrived (wait-for-SIPI state); execution starts at
    /// `vector << 12`.
    Sipi {
        /// The SIPI vector.
        vector: u8,
    },
    /// A trap-like write to virtual-APIC register `offset` (the new value is
    /// on the virtual-APIC page).
    ApicWrite {
        /// The register offset.
        offset: u16,
    },
    /// A fault-like linear access to the APIC-access page at `offset`
    /// during instruction execution; the handler emulates the instruction.
    ApicAccess {
        /// The offset in the page.
        offset: u16,
        /// A write (else a read).
        write: bool,
    },
    /// EOI of `vector`, which is set in the EOI-exit bitmap.
    EoiInduced {
        /// The vector.
        vector: u8,
    },
    /// INVD or WBINVD/WBNOINVD.
    CacheFlush,
    /// PAUSE (PAUSE-loop exiting).
    Pause,
    /// A VMX instruction other than VMCALL (VMXON, VMREAD, INVEPT, …):
    /// the guest gets #UD.
    VmxInstruction {
        /// Which one.
        reason: ExitReason,
    },
    /// VM entry failed (bit 31 of the exit reason): invalid guest state,
    /// MSR loading or a machine check. The guest never ran.
    EntryFailure {
        /// The basic exit reason.
        reason: u16,
        /// The exit qualification (for MSR loading: the failing entry's
        /// index, 1-based).
        qualification: u64,
    },
    /// Anything else: the raw values, for logging.
    Unknown {
        /// The raw exit.
        raw: RawExit,
    },
}

/// EDX:EAX as one 64-bit value.
const fn edx_eax(raw: &RawExit) -> u64 {
    ((raw.rdx & 0xFFFF_FFFF) << 32) | (raw.rax & 0xFFFF_FFFF)
}

/// Translates a raw VMX exit into an [`ExitEvent`] (pure: reads only
/// `raw`).
pub fn decode(raw: &RawExit) -> ExitEvent {
    let field = ExitReasonField(raw.reason);
    if field.entry_failure() {
        return ExitEvent::EntryFailure {
            reason: field.basic(),
            qualification: raw.qualification,
        };
    }
    let Some(reason) = field.reason() else {
        return ExitEvent::Unknown { raw: *raw };
    };
    let q = raw.qualification;
    match reason {
        ExitReason::ExceptionOrNmi => decode_exception(raw),
        ExitReason::ExternalInterrupt => {
            let info = ExitInterruptionInfo(raw.interruption_info);
            ExitEvent::ExternalInterrupt {
                vector: info.valid().then_some(info.vector()),
            }
        }
        ExitReason::TripleFault => ExitEvent::TripleFault,
        ExitReason::InitSignal => ExitEvent::InitSignal,
        // §28.2.1: bits 7:0 of the qualification hold the SIPI vector.
        ExitReason::StartupIpi => ExitEvent::Sipi { vector: q as u8 },
        ExitReason::InterruptWindow => ExitEvent::InterruptWindow,
        ExitReason::NmiWindow => ExitEvent::NmiWindow,
        ExitReason::Cpuid => ExitEvent::Cpuid {
            leaf: raw.rax as u32,
            subleaf: raw.rcx as u32,
        },
        ExitReason::Hlt => ExitEvent::Hlt,
        ExitReason::Invd | ExitReason::Wbinvd => ExitEvent::CacheFlush,
        ExitReason::Vmcall => ExitEvent::Hypercall,
        ExitReason::Vmclear
        | ExitReason::Vmlaunch
        | ExitReason::Vmptrld
        | ExitReason::Vmptrst
        | ExitReason::Vmread
        | ExitReason::Vmresume
        | ExitReason::Vmwrite
        | ExitReason::Vmxoff
        | ExitReason::Vmxon
        | ExitReason::Invept
        | ExitReason::Invvpid
        | ExitReason::Vmfunc => ExitEvent::VmxInstruction { reason },
        ExitReason::ControlRegisterAccess => decode_cr(CrAccessQualification(q)),
        ExitReason::IoInstruction => decode_io(IoQualification(q), raw),
        ExitReason::Rdmsr => ExitEvent::MsrRead {
            msr: raw.rcx as u32,
        },
        ExitReason::Wrmsr => ExitEvent::MsrWrite {
            msr: raw.rcx as u32,
            value: edx_eax(raw),
        },
        ExitReason::Pause => ExitEvent::Pause,
        ExitReason::ApicAccess => {
            let qual = ApicAccessQualification(q);
            match qual.access_type() {
                ApicAccessType::LinearRead => ExitEvent::ApicAccess {
                    offset: qual.offset(),
                    write: false,
                },
                ApicAccessType::LinearWrite => ExitEvent::ApicAccess {
                    offset: qual.offset(),
                    write: true,
                },
                _ => ExitEvent::Unknown { raw: *raw },
            }
        }
        // §28.2.1: bits 7:0 of the qualification hold the vector.
        ExitReason::VirtualizedEoi => ExitEvent::EoiInduced { vector: q as u8 },
        ExitReason::EptViolation => {
            let qual = EptViolationQualification(q);
            ExitEvent::EptViolation {
                gpa: GuestPhysAddr::new(raw.guest_physical),
                access: MemoryAccess {
                    read: qual.read(),
                    write: qual.write(),
                    execute: qual.fetch(),
                },
            }
        }
        ExitReason::EptMisconfiguration => ExitEvent::EptMisconfig {
            gpa: GuestPhysAddr::new(raw.guest_physical),
        },
        ExitReason::PreemptionTimerExpired => ExitEvent::PreemptionTimer,
        ExitReason::Xsetbv => ExitEvent::Xsetbv {
            xcr: raw.rcx as u32,
            value: edx_eax(raw),
        },
        ExitReason::ApicWrite => ExitEvent::ApicWrite {
            offset: apic_write_offset(q),
        },
        _ => ExitEvent::Unknown { raw: *raw },
    }
}

/// Exit reason 0: an NMI or an intercepted exception (Table 25-19).
fn decode_exception(raw: &RawExit) -> ExitEvent {
    let info = ExitInterruptionInfo(raw.interruption_info);
    if !info.valid() {
        return ExitEvent::Unknown { raw: *raw };
    }
    match info.interruption_type() {
        InterruptionType::Nmi => ExitEvent::Nmi,
        InterruptionType::HardwareException
        | InterruptionType::SoftwareException
        | InterruptionType::PrivilegedSoftwareException => ExitEvent::Exception {
            vector: info.vector(),
            error_code: info.error_code_valid().then_some(raw.interruption_error),
        },
        _ => ExitEvent::Unknown { raw: *raw },
    }
}

/// Exit reason 28 (Table 28-3).
fn decode_cr(qual: CrAccessQualification) -> ExitEvent {
    let access = match qual.access_type() {
        CrAccessType::MovToCr => CrAccessKind::MovTo { gpr: qual.gpr() },
        CrAccessType::MovFromCr => CrAccessKind::MovFrom { gpr: qual.gpr() },
        CrAccessType::Clts => CrAccessKind::Clts,
        CrAccessType::Lmsw => CrAccessKind::Lmsw {
            source: qual.lmsw_source(),
        },
    };
    ExitEvent::CrAccess {
        cr: qual.cr(),
        access,
    }
}

/// Exit reason 30 (Table 28-5).
fn decode_io(qual: IoQualification, raw: &RawExit) -> ExitEvent {
    let (port, size) = (qual.port(), qual.size());
    if qual.is_string() {
        ExitEvent::IoString {
            port,
            size,
            input: qual.is_in(),
            rep: qual.is_rep(),
        }
    } else if qual.is_in() {
        ExitEvent::IoIn { port, size }
    } else {
        let mask = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        };
        ExitEvent::IoOut {
            port,
            size,
            value: (raw.rax & mask) as u32,
        }
    }
}
