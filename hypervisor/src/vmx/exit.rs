//! VM-exit decoding: basic exit reasons, exit qualifications, interruption
//! information, VM-instruction errors, and ([`decode()`]) the translation of
//! a VMX exit into the vendor-neutral
//! [`ExitEvent`](crate::vcpu::exit_event::ExitEvent) the exit handling
//! consumes.
//!
//! Sources (SDM Vol. 3C/3D, editions where chapter 25 is "Virtual Machine
//! Control Structures"):
//! - exit reason format: §25.9.1 "Basic VM-Exit Information", Table 25-18;
//! - basic exit reasons: Vol. 3D Appendix C "VMX Basic Exit Reasons", Table C-1;
//! - exit qualifications: §28.2.1, Tables 28-1 to 28-7;
//! - VM-exit interruption information: §25.9.2, Table 25-19;
//! - VM-entry interruption information: §25.8.3, Table 25-17;
//! - VM-instruction errors: §31.4 "VM Instruction Error Numbers", Table 31-1.
//!
//! Everything here is pure: the decoder asks for the VMCS fields it needs
//! through [`ExitFields`] (the backend answers with VMREADs, the tests with
//! a [`RawExit`]).

use core::fmt;

mod decode;
#[cfg(test)]
mod tests;

pub use decode::{ExitFields, RawExit, decode};

/// Declares [`ExitReason`] with its numbers and names in one list.
macro_rules! exit_reasons {
    ($( $(#[$vmeta:meta])* $variant:ident = $value:literal, $name:literal; )*) => {
        /// A basic exit reason: bits 15:0 of the exit-reason field (SDM Vol.
        /// 3D Appendix C, Table C-1 "Basic Exit Reasons").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ExitReason {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl ExitReason {
            /// Every basic exit reason, by number.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The reason with basic number `basic`; `None` for numbers the
            /// SDM does not assign.
            pub const fn from_basic(basic: u16) -> Option<Self> {
                match basic {
                    $( $value => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The SDM's name for the reason (Table C-1).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                }
            }
        }
    };
}

exit_reasons! {
    /// An exception (exception bitmap) or an NMI (NMI exiting).
    ExceptionOrNmi = 0, "exception or NMI";
    /// An external interrupt (external-interrupt exiting).
    ExternalInterrupt = 1, "external interrupt";
    /// The guest triple-faulted.
    TripleFault = 2, "triple fault";
    /// An INIT signal arrived.
    InitSignal = 3, "INIT signal";
    /// A SIPI arrived in wait-for-SIPI state.
    StartupIpi = 4, "start-up IPI (SIPI)";
    /// An SMI arrived right after an I/O instruction.
    IoSmi = 5, "I/O system-management interrupt";
    /// Any other SMI.
    OtherSmi = 6, "other SMI";
    /// Interrupt-window exiting.
    InterruptWindow = 7, "interrupt window";
    /// NMI-window exiting.
    NmiWindow = 8, "NMI window";
    /// A task switch.
    TaskSwitch = 9, "task switch";
    /// CPUID.
    Cpuid = 10, "CPUID";
    /// GETSEC.
    Getsec = 11, "GETSEC";
    /// HLT.
    Hlt = 12, "HLT";
    /// INVD.
    Invd = 13, "INVD";
    /// INVLPG.
    Invlpg = 14, "INVLPG";
    /// RDPMC.
    Rdpmc = 15, "RDPMC";
    /// RDTSC.
    Rdtsc = 16, "RDTSC";
    /// RSM in SMM.
    Rsm = 17, "RSM";
    /// VMCALL.
    Vmcall = 18, "VMCALL";
    /// VMCLEAR.
    Vmclear = 19, "VMCLEAR";
    /// VMLAUNCH.
    Vmlaunch = 20, "VMLAUNCH";
    /// VMPTRLD.
    Vmptrld = 21, "VMPTRLD";
    /// VMPTRST.
    Vmptrst = 22, "VMPTRST";
    /// VMREAD.
    Vmread = 23, "VMREAD";
    /// VMRESUME.
    Vmresume = 24, "VMRESUME";
    /// VMWRITE.
    Vmwrite = 25, "VMWRITE";
    /// VMXOFF.
    Vmxoff = 26, "VMXOFF";
    /// VMXON.
    Vmxon = 27, "VMXON";
    /// MOV to/from CR, CLTS or LMSW.
    ControlRegisterAccess = 28, "control-register access";
    /// MOV DR.
    MovDr = 29, "MOV DR";
    /// IN, INS, OUT, OUTS.
    IoInstruction = 30, "I/O instruction";
    /// RDMSR.
    Rdmsr = 31, "RDMSR";
    /// WRMSR.
    Wrmsr = 32, "WRMSR";
    /// VM entry failed: invalid guest state.
    EntryFailureGuestState = 33, "VM-entry failure due to invalid guest state";
    /// VM entry failed: MSR loading.
    EntryFailureMsrLoading = 34, "VM-entry failure due to MSR loading";
    /// MWAIT.
    Mwait = 36, "MWAIT";
    /// Monitor trap flag.
    MonitorTrapFlag = 37, "monitor trap flag";
    /// MONITOR.
    Monitor = 39, "MONITOR";
    /// PAUSE (or PAUSE-loop exiting).
    Pause = 40, "PAUSE";
    /// VM entry failed: machine-check event.
    EntryFailureMachineCheck = 41, "VM-entry failure due to machine-check event";
    /// The virtual TPR fell below the TPR threshold.
    TprBelowThreshold = 43, "TPR below threshold";
    /// An access to the APIC-access page.
    ApicAccess = 44, "APIC access";
    /// EOI virtualization for a vector in the EOI-exit bitmap.
    VirtualizedEoi = 45, "virtualized EOI";
    /// LGDT, LIDT, SGDT, SIDT.
    GdtrIdtrAccess = 46, "access to GDTR or IDTR";
    /// LLDT, LTR, SLDT, STR.
    LdtrTrAccess = 47, "access to LDTR or TR";
    /// An EPT violation.
    EptViolation = 48, "EPT violation";
    /// An EPT misconfiguration.
    EptMisconfiguration = 49, "EPT misconfiguration";
    /// INVEPT.
    Invept = 50, "INVEPT";
    /// RDTSCP.
    Rdtscp = 51, "RDTSCP";
    /// The VMX-preemption timer counted down to zero.
    PreemptionTimerExpired = 52, "VMX-preemption timer expired";
    /// INVVPID.
    Invvpid = 53, "INVVPID";
    /// WBINVD or WBNOINVD.
    Wbinvd = 54, "WBINVD or WBNOINVD";
    /// XSETBV.
    Xsetbv = 55, "XSETBV";
    /// A write to a virtualized APIC register that needs emulation.
    ApicWrite = 56, "APIC write";
    /// RDRAND.
    Rdrand = 57, "RDRAND";
    /// INVPCID.
    Invpcid = 58, "INVPCID";
    /// VMFUNC that failed.
    Vmfunc = 59, "VMFUNC";
    /// ENCLS.
    Encls = 60, "ENCLS";
    /// RDSEED.
    Rdseed = 61, "RDSEED";
    /// The page-modification log is full.
    PmlFull = 62, "page-modification log full";
    /// XSAVES.
    Xsaves = 63, "XSAVES";
    /// XRSTORS.
    Xrstors = 64, "XRSTORS";
    /// PCONFIG.
    Pconfig = 65, "PCONFIG";
    /// A sub-page-permission event.
    SppEvent = 66, "SPP-related event";
    /// UMWAIT.
    Umwait = 67, "UMWAIT";
    /// TPAUSE.
    Tpause = 68, "TPAUSE";
    /// LOADIWKEY.
    Loadiwkey = 69, "LOADIWKEY";
    /// ENCLV.
    Enclv = 70, "ENCLV";
    /// ENQCMD PASID translation failure.
    EnqcmdPasidFailure = 72, "ENQCMD PASID translation failure";
    /// ENQCMDS PASID translation failure.
    EnqcmdsPasidFailure = 73, "ENQCMDS PASID translation failure";
    /// A bus lock was asserted (VMM bus-lock detection).
    BusLock = 74, "bus lock";
    /// Instruction timeout (notify VM exit).
    InstructionTimeout = 75, "instruction timeout";
    /// SEAMCALL.
    Seamcall = 76, "SEAMCALL";
    /// TDCALL.
    Tdcall = 77, "TDCALL";
    /// RDMSRLIST.
    Rdmsrlist = 78, "RDMSRLIST";
    /// WRMSRLIST.
    Wrmsrlist = 79, "WRMSRLIST";
    /// URDMSR.
    Urdmsr = 80, "URDMSR";
    /// UWRMSR.
    Uwrmsr = 81, "UWRMSR";
    /// RDMSR with an immediate operand.
    RdmsrImmediate = 84, "RDMSR with immediate";
    /// WRMSRNS with an immediate operand.
    WrmsrImmediate = 85, "WRMSRNS with immediate";
}

impl ExitReason {
    /// The basic reason in bits 15:0 of a raw exit-reason field; `None` for
    /// unassigned numbers. Use [`ExitReasonField`] for the other bits
    /// (notably bit 31, VM-entry failure).
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Self::from_basic(raw as u16)
    }

    /// The basic exit reason number.
    pub const fn number(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

/// The whole 32-bit exit-reason field (SDM Vol. 3C §25.9.1, Table 25-18
/// "Format of Exit Reason").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitReasonField(pub u32);

impl ExitReasonField {
    /// Bits 15:0: the basic exit reason number.
    pub const fn basic(self) -> u16 {
        self.0 as u16
    }

    /// The basic exit reason, if the number is assigned.
    pub const fn reason(self) -> Option<ExitReason> {
        ExitReason::from_basic(self.basic())
    }

    /// Bit 27: the exit happened in enclave mode.
    pub const fn enclave_mode(self) -> bool {
        self.0 & (1 << 27) != 0
    }

    /// Bit 28: a monitor-trap-flag VM exit is pending.
    pub const fn pending_mtf(self) -> bool {
        self.0 & (1 << 28) != 0
    }

    /// Bit 29: the exit came from VMX root operation (SMM monitor only).
    pub const fn from_root_operation(self) -> bool {
        self.0 & (1 << 29) != 0
    }

    /// Bit 31: VM entry failed (reasons 33, 34 and 41); the guest state was
    /// not entered and the exit qualification says why.
    pub const fn entry_failure(self) -> bool {
        self.0 & (1 << 31) != 0
    }
}

impl fmt::Display for ExitReasonField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(reason) => write!(f, "{reason}")?,
            None => write!(f, "unknown exit reason {}", self.basic())?,
        }
        if self.entry_failure() {
            f.write_str(", VM-entry failure")?;
        }
        Ok(())
    }
}

/// A general-purpose register as numbered in exit qualifications and the
/// VM-exit instruction-information field (SDM Vol. 3C Table 28-3, bits
/// 11:8; the same numbering as ModRM/REX: Vol. 2A §2.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Gpr {
    /// 0.
    Rax = 0,
    /// 1.
    Rcx = 1,
    /// 2.
    Rdx = 2,
    /// 3.
    Rbx = 3,
    /// 4 (held in the VMCS guest-state area, not with the other GPRs).
    Rsp = 4,
    /// 5.
    Rbp = 5,
    /// 6.
    Rsi = 6,
    /// 7.
    Rdi = 7,
    /// 8.
    R8 = 8,
    /// 9.
    R9 = 9,
    /// 10.
    R10 = 10,
    /// 11.
    R11 = 11,
    /// 12.
    R12 = 12,
    /// 13.
    R13 = 13,
    /// 14.
    R14 = 14,
    /// 15.
    R15 = 15,
}

impl Gpr {
    /// All sixteen, by number.
    pub const ALL: [Self; 16] = [
        Self::Rax,
        Self::Rcx,
        Self::Rdx,
        Self::Rbx,
        Self::Rsp,
        Self::Rbp,
        Self::Rsi,
        Self::Rdi,
        Self::R8,
        Self::R9,
        Self::R10,
        Self::R11,
        Self::R12,
        Self::R13,
        Self::R14,
        Self::R15,
    ];

    /// The register numbered by the low 4 bits of `n`.
    pub const fn from_index(n: u8) -> Self {
        Self::ALL[(n & 0xF) as usize]
    }

    /// Its number (0-15), usable as an index into a register array.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// What a control-register access exit did (Table 28-3, bits 5:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrAccessType {
    /// 0: MOV to CR.
    MovToCr,
    /// 1: MOV from CR.
    MovFromCr,
    /// 2: CLTS.
    Clts,
    /// 3: LMSW.
    Lmsw,
}

/// Exit qualification for control-register accesses (SDM Vol. 3C Table 28-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrAccessQualification(pub u64);

impl CrAccessQualification {
    /// Bits 3:0: the control register (0 for CLTS and LMSW).
    pub const fn cr(self) -> u8 {
        (self.0 & 0xF) as u8
    }

    /// Bits 5:4: the access type.
    pub const fn access_type(self) -> CrAccessType {
        match (self.0 >> 4) & 3 {
            0 => CrAccessType::MovToCr,
            1 => CrAccessType::MovFromCr,
            2 => CrAccessType::Clts,
            _ => CrAccessType::Lmsw,
        }
    }

    /// Bit 6: the LMSW operand was in memory (else in a register).
    pub const fn lmsw_memory_operand(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Bits 11:8: the GPR of a MOV CR.
    pub const fn gpr(self) -> Gpr {
        Gpr::from_index((self.0 >> 8) as u8)
    }

    /// Bits 31:16: the LMSW source data.
    pub const fn lmsw_source(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

/// Exit qualification for I/O instructions (SDM Vol. 3C Table 28-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IoQualification(pub u64);

impl IoQualification {
    /// Bits 2:0: the access size in bytes (encoded as size - 1: 0, 1, 3).
    pub const fn size(self) -> u8 {
        (self.0 & 7) as u8 + 1
    }

    /// Bit 3: IN/INS (else OUT/OUTS).
    pub const fn is_in(self) -> bool {
        self.0 & (1 << 3) != 0
    }

    /// Bit 4: INS/OUTS.
    pub const fn is_string(self) -> bool {
        self.0 & (1 << 4) != 0
    }

    /// Bit 5: REP prefixed.
    pub const fn is_rep(self) -> bool {
        self.0 & (1 << 5) != 0
    }

    /// Bit 6: the port was an immediate operand (else in DX).
    pub const fn immediate_operand(self) -> bool {
        self.0 & (1 << 6) != 0
    }

    /// Bits 31:16: the port.
    pub const fn port(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

/// Exit qualification for EPT violations (SDM Vol. 3C Table 28-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EptViolationQualification(pub u64);

impl EptViolationQualification {
    const fn bit(self, n: u32) -> bool {
        self.0 & (1 << n) != 0
    }

    /// Bit 0: the access was a data read.
    pub const fn read(self) -> bool {
        self.bit(0)
    }

    /// Bit 1: the access was a data write.
    pub const fn write(self) -> bool {
        self.bit(1)
    }

    /// Bit 2: the access was an instruction fetch.
    pub const fn fetch(self) -> bool {
        self.bit(2)
    }

    /// Bit 3: the translation allowed reads (AND of bit 0 of the EPT
    /// entries walked).
    pub const fn readable(self) -> bool {
        self.bit(3)
    }

    /// Bit 4: the translation allowed writes.
    pub const fn writable(self) -> bool {
        self.bit(4)
    }

    /// Bit 5: the translation allowed instruction fetches (supervisor
    /// fetches with mode-based execute control).
    pub const fn executable(self) -> bool {
        self.bit(5)
    }

    /// Bit 6: user-mode fetches allowed (mode-based execute control only).
    pub const fn user_executable(self) -> bool {
        self.bit(6)
    }

    /// Bit 7: the guest-linear-address field is valid.
    pub const fn linear_address_valid(self) -> bool {
        self.bit(7)
    }

    /// Bit 8 (meaningful when bit 7 is set): the access was to the
    /// translated linear address, not to a guest paging structure.
    pub const fn translated_access(self) -> bool {
        self.bit(8)
    }

    /// Bit 12: NMI unblocking due to IRET (re-block NMIs before
    /// re-entering if the access is retried).
    pub const fn nmi_unblocking(self) -> bool {
        self.bit(12)
    }

    /// The permissions the translation granted, R/W/X in bits 2:0.
    pub const fn permissions(self) -> u8 {
        ((self.0 >> 3) & 7) as u8
    }
}

/// How the guest touched the APIC-access page (SDM Vol. 3C Table 28-6,
/// bits 15:12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApicAccessType {
    /// 0: linear access for a data read during instruction execution.
    LinearRead,
    /// 1: linear access for a data write during instruction execution.
    LinearWrite,
    /// 2: linear access for an instruction fetch.
    LinearFetch,
    /// 3: linear access (read or write) during event delivery.
    LinearEventDelivery,
    /// 10: guest-physical access during event delivery.
    PhysicalEventDelivery,
    /// 15: guest-physical access for an instruction fetch or during
    /// instruction execution.
    PhysicalInstruction,
    /// Any other value (reserved).
    Reserved(u8),
}

impl ApicAccessType {
    /// The number in bits 15:12 of the qualification.
    pub const fn code(self) -> u8 {
        match self {
            Self::LinearRead => 0,
            Self::LinearWrite => 1,
            Self::LinearFetch => 2,
            Self::LinearEventDelivery => 3,
            Self::PhysicalEventDelivery => 10,
            Self::PhysicalInstruction => 15,
            Self::Reserved(code) => code,
        }
    }
}

/// Exit qualification for APIC-access exits (SDM Vol. 3C Table 28-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApicAccessQualification(pub u64);

impl ApicAccessQualification {
    /// Bits 11:0: the offset in the APIC page (linear accesses only).
    pub const fn offset(self) -> u16 {
        (self.0 & 0xFFF) as u16
    }

    /// Bits 15:12: the access type.
    pub const fn access_type(self) -> ApicAccessType {
        match ((self.0 >> 12) & 0xF) as u8 {
            0 => ApicAccessType::LinearRead,
            1 => ApicAccessType::LinearWrite,
            2 => ApicAccessType::LinearFetch,
            3 => ApicAccessType::LinearEventDelivery,
            10 => ApicAccessType::PhysicalEventDelivery,
            15 => ApicAccessType::PhysicalInstruction,
            other => ApicAccessType::Reserved(other),
        }
    }

    /// Bit 16: asynchronous to instruction execution.
    pub const fn asynchronous(self) -> bool {
        self.0 & (1 << 16) != 0
    }
}

/// Exit qualification for APIC-write exits (§28.2.1): bits 11:0 are the
/// offset of the register written on the virtual-APIC page.
pub const fn apic_write_offset(qualification: u64) -> u16 {
    (qualification & 0xFFF) as u16
}

/// Event types in interruption-information fields (Tables 25-17 and 25-19,
/// bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum InterruptionType {
    /// 0: external interrupt.
    ExternalInterrupt = 0,
    /// 1: reserved.
    Reserved = 1,
    /// 2: non-maskable interrupt.
    Nmi = 2,
    /// 3: hardware exception (fault or abort).
    HardwareException = 3,
    /// 4: software interrupt (INT n).
    SoftwareInterrupt = 4,
    /// 5: privileged software exception (INT1).
    PrivilegedSoftwareException = 5,
    /// 6: software exception (INT3, INTO).
    SoftwareException = 6,
    /// 7: other event (pending MTF on VM entry).
    Other = 7,
}

impl InterruptionType {
    /// The type in bits 2:0 of `n`.
    pub const fn from_bits(n: u8) -> Self {
        match n & 7 {
            0 => Self::ExternalInterrupt,
            1 => Self::Reserved,
            2 => Self::Nmi,
            3 => Self::HardwareException,
            4 => Self::SoftwareInterrupt,
            5 => Self::PrivilegedSoftwareException,
            6 => Self::SoftwareException,
            _ => Self::Other,
        }
    }
}

/// The VM-exit interruption-information field (SDM Vol. 3C §25.9.2, Table
/// 25-19); the IDT-vectoring information field has the same layout
/// (Table 25-20) minus bit 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitInterruptionInfo(pub u32);

impl ExitInterruptionInfo {
    /// Bits 7:0: the vector.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// Bits 10:8: the event type.
    pub const fn interruption_type(self) -> InterruptionType {
        InterruptionType::from_bits((self.0 >> 8) as u8)
    }

    /// Bit 11: the exit interruption error code field is valid.
    pub const fn error_code_valid(self) -> bool {
        self.0 & (1 << 11) != 0
    }

    /// Bit 12: NMI unblocking due to IRET.
    pub const fn nmi_unblocking(self) -> bool {
        self.0 & (1 << 12) != 0
    }

    /// Bit 31: the field is valid.
    pub const fn valid(self) -> bool {
        self.0 & (1 << 31) != 0
    }
}

/// Exception vectors that push an error code (SDM Vol. 3A §6.15, Table 6-1):
/// #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP.
pub const fn exception_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21)
}

/// A value for the VM-entry interruption-information field and, when the
/// event has one, the VM-entry exception error code (SDM Vol. 3C §25.8.3,
/// Table 25-17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryInterruption {
    info: u32,
    error_code: Option<u32>,
}

impl EntryInterruption {
    /// Bit 11: deliver an error code.
    const DELIVER_ERROR_CODE: u32 = 1 << 11;
    /// Bit 31: valid.
    const VALID: u32 = 1 << 31;

    const fn event(vector: u8, ty: InterruptionType, error_code: Option<u32>) -> Self {
        let deliver = if error_code.is_some() {
            Self::DELIVER_ERROR_CODE
        } else {
            0
        };
        Self {
            info: vector as u32 | ((ty as u32) << 8) | deliver | Self::VALID,
            error_code,
        }
    }

    /// An external interrupt with `vector`.
    pub const fn external_interrupt(vector: u8) -> Self {
        Self::event(vector, InterruptionType::ExternalInterrupt, None)
    }

    /// An NMI (the vector field must be 2).
    pub const fn nmi() -> Self {
        Self::event(2, InterruptionType::Nmi, None)
    }

    /// A hardware exception with an optional error code. VM entry checks
    /// that an error code is given exactly for the vectors that take one
    /// (when the guest is in protected mode); see
    /// [`EntryInterruption::exception`].
    pub const fn hardware_exception(vector: u8, error_code: Option<u32>) -> Self {
        Self::event(vector, InterruptionType::HardwareException, error_code)
    }

    /// A hardware exception, with `error_code` delivered if and only if the
    /// vector takes one ([`exception_has_error_code`]).
    pub const fn exception(vector: u8, error_code: u32) -> Self {
        let code = if exception_has_error_code(vector) {
            Some(error_code)
        } else {
            None
        };
        Self::hardware_exception(vector, code)
    }

    /// The event whose delivery a VM exit interrupted, to be delivered again
    /// at the next entry (SDM Vol. 3C §28.2.4, "Information for VM Exits
    /// That Occur During Event Delivery"; the VMM re-injects it, §28.2.3):
    /// made from the IDT-vectoring information field and, read only when
    /// the event has one, its error code field; `None` when that information
    /// is not valid. Bit 12 (undefined) and the reserved bits are dropped. A
    /// software interrupt or exception also needs the VM-entry instruction
    /// length ([`Self::needs_instruction_length`]).
    pub fn redelivery(idt_vectoring_info: u32, error_code: impl FnOnce() -> u32) -> Option<Self> {
        if idt_vectoring_info & Self::VALID == 0 {
            return None;
        }
        let info = idt_vectoring_info & (0x7FF | Self::DELIVER_ERROR_CODE | Self::VALID);
        let error_code = (info & Self::DELIVER_ERROR_CODE != 0).then(error_code);
        Some(Self { info, error_code })
    }

    /// Whether the entry must also be given the instruction length: software
    /// interrupts (INT n) and software or privileged software exceptions
    /// (INT3, INTO, INT1), whose return address follows the instruction
    /// (SDM Vol. 3C §25.8.3).
    pub const fn needs_instruction_length(self) -> bool {
        matches!((self.info >> 8) & 7, 4..=6)
    }

    /// The value for the VM-entry interruption-information field.
    pub const fn info(self) -> u32 {
        self.info
    }

    /// The value for the VM-entry exception error code field, if delivered.
    pub const fn error_code(self) -> Option<u32> {
        self.error_code
    }
}

/// A VM-instruction error number (SDM Vol. 3C §31.4, Table 31-1), as read
/// from the VM-instruction error field after VMfailValid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VmInstructionError(pub u32);

impl VmInstructionError {
    /// The SDM's description; "unknown VM-instruction error" for numbers
    /// the SDM does not assign.
    pub const fn message(self) -> &'static str {
        match self.0 {
            1 => "VMCALL executed in VMX root operation",
            2 => "VMCLEAR with invalid physical address",
            3 => "VMCLEAR with VMXON pointer",
            4 => "VMLAUNCH with non-clear VMCS",
            5 => "VMRESUME with non-launched VMCS",
            6 => "VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and VMRESUME)",
            7 => "VM entry with invalid control field(s)",
            8 => "VM entry with invalid host-state field(s)",
            9 => "VMPTRLD with invalid physical address",
            10 => "VMPTRLD with VMXON pointer",
            11 => "VMPTRLD with incorrect VMCS revision identifier",
            12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
            13 => "VMWRITE to read-only VMCS component",
            15 => "VMXON executed in VMX root operation",
            16 => "VM entry with invalid executive-VMCS pointer",
            17 => "VM entry with non-launched executive VMCS",
            18 => "VM entry with executive-VMCS pointer not VMXON pointer",
            19 => "VMCALL with non-clear VMCS",
            20 => "VMCALL with invalid VM-exit control fields",
            22 => "VMCALL with incorrect MSEG revision identifier",
            23 => "VMXOFF under dual-monitor treatment of SMIs and SMM",
            24 => "VMCALL with invalid SMM-monitor features",
            25 => "VM entry with invalid VM-execution control fields in executive VMCS",
            26 => "VM entry with events blocked by MOV SS",
            28 => "invalid operand to INVEPT/INVVPID",
            _ => "unknown VM-instruction error",
        }
    }
}

impl fmt::Display for VmInstructionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VM-instruction error {}: {}", self.0, self.message())
    }
}
