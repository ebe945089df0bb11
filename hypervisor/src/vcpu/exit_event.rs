//! Why a guest stopped running, in vendor-neutral terms. A backend turns its
//! exit information into an [`ExitEvent`] (VT-x today, with the pure
//! [`crate::vmx::exit::decode()`]); the handling is written against these
//! events and the pure policies beside this module ([`super::msr_policy`],
//! [`super::io_policy`]), so an SVM backend would add a decoder of its own
//! rather than new handling (see `docs/architecture.md`, "What an AMD SVM
//! backend would touch").

use crate::vmx::exit::Gpr;

/// A port I/O access (IN/OUT/INS/OUTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoAccess {
    /// The port.
    pub port: u16,
    /// Bytes: 1, 2 or 4.
    pub size: u8,
    /// IN (true) or OUT.
    pub input: bool,
    /// INS/OUTS (a string instruction).
    pub string: bool,
}

/// What a control-register access did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrAccess {
    /// MOV to CRn from a register.
    Write {
        /// 0, 3, 4 or 8.
        cr: u8,
        /// The source register.
        gpr: Gpr,
    },
    /// MOV from CRn to a register.
    Read {
        /// 0, 3, 4 or 8.
        cr: u8,
        /// The destination register.
        gpr: Gpr,
    },
    /// CLTS.
    Clts,
    /// LMSW with this source (bits 3:0 are used).
    Lmsw {
        /// The source operand.
        source: u16,
    },
}

/// Why the guest exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitEvent {
    /// CPUID (leaf in EAX, subleaf in ECX).
    Cpuid,
    /// RDMSR (MSR in ECX).
    Rdmsr,
    /// WRMSR (MSR in ECX, value in EDX:EAX).
    Wrmsr,
    /// Port I/O on a trapped port.
    Io(IoAccess),
    /// A control-register access the backend intercepts.
    Cr(CrAccess),
    /// XSETBV (XCR index in ECX, value in EDX:EAX).
    Xsetbv,
    /// HLT.
    Hlt,
    /// An instruction that needs no action here: PAUSE, INVD, WBINVD,
    /// MONITOR, MWAIT (treated as a no-op).
    Skip,
    /// The hypercall instruction (VMCALL).
    Hypercall,
    /// A virtualization instruction the guest may not use (nested VMX,
    /// GETSEC): #UD, as on a CPU without it.
    Unsupported,
    /// A physical interrupt arrived while the guest ran (acknowledged: its
    /// vector, when the hardware reports one).
    ExternalInterrupt {
        /// The vector.
        vector: Option<u8>,
    },
    /// A physical NMI arrived while the guest ran.
    Nmi,
    /// The single-step trap (#DB) the hypervisor intercepts.
    DebugTrap,
    /// Any other intercepted exception.
    Exception {
        /// The vector.
        vector: u8,
    },
    /// A guest-physical access the second-level tables refused.
    NestedPageFault {
        /// The address.
        gpa: u64,
        /// It was a write.
        write: bool,
        /// It was an instruction fetch.
        fetch: bool,
        /// It was the CPU's walk of the guest's own page tables, not the
        /// access the instruction made.
        paging_structure: bool,
        /// It happened while an event (interrupt, exception) was being
        /// delivered: reading the IDT, pushing on the stack.
        during_delivery: bool,
    },
    /// The second-level tables themselves are malformed.
    NestedPageMisconfig {
        /// The address.
        gpa: u64,
    },
    /// The guest wrote a virtual-APIC register that needs emulation
    /// (trap-like: the value is in the virtual-APIC page).
    ApicWrite {
        /// The register's offset.
        offset: u32,
    },
    /// The guest's EOI of a vector the hypervisor asked to hear about.
    VirtualizedEoi {
        /// The vector.
        vector: u8,
    },
    /// An access to the APIC page that needs instruction emulation.
    ApicAccess {
        /// The offset in the page.
        offset: u16,
        /// The hardware's access-type code.
        kind: u8,
    },
    /// The guest triple-faulted.
    TripleFault,
    /// The backend's timer for time slices and guest timers ran out.
    TimerExpired,
    /// The guest became able to take an interrupt (an interrupt window or
    /// a TPR drop the backend asked for).
    InterruptWindow,
    /// A physical INIT or start-up IPI reached the CPU while the guest ran.
    InitOrSipi,
    /// The entry failed with the guest state or MSR loading at fault.
    EntryFailed {
        /// The backend's basic reason number.
        reason: u16,
        /// Its qualification.
        qualification: u64,
    },
    /// A reason this hypervisor does not handle.
    Unhandled {
        /// The backend's basic reason number.
        reason: u16,
    },
}
