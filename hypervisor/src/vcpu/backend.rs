//! What the vendor-neutral exit handlers ([`crate::vcpu::exits`]) need from
//! a virtualization backend, as two traits:
//!
//! - [`GuestCpu`]: the guest's architectural state as the hardware keeps
//!   it (general registers, RIP, RFLAGS, CR0/CR3/CR4, EFER, the interrupt
//!   shadow, the current privilege level), moving past the exiting
//!   instruction and queueing an event for the next entry. The VT-x
//!   backend answers each method with the VMREADs and VMWRITEs it needs,
//!   when it is called: nothing is read ahead on every exit.
//! - [`ExitContext`]: the rest of what a handler asks of the vCPU it runs
//!   for: which domain it belongs to, the physical CPU's TSC, CPUID and
//!   XCR0, its local APIC's MSRs (under VT-x these keep the virtual-APIC
//!   page in step) and the hypercall dispatcher.
//!
//! Register numbering, control-register bits and event vectors are the
//! architecture's (Intel SDM Vol. 3A, AMD APM Vol. 2 agree on them); only
//! how the backend stores them differs.
#![deny(unsafe_code)]

use core::fmt;

use crate::vcpu::msr_policy::{ReadAction, WriteAction};
use crate::vlapic::ApicFault;
use crate::vmx::exit::Gpr;

/// CR0.TS (SDM Vol. 3A §2.5).
pub const CR0_TS: u64 = 1 << 3;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.VMXE (SDM Vol. 3A §2.5).
pub const CR4_VMXE: u64 = 1 << 13;
/// CR4.OSXSAVE.
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// EFER.LME (SDM Vol. 3A §2.2.1).
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;

/// An exception vector (SDM Vol. 3A §6.3.1, Table 6-1).
pub mod vector {
    /// #DB.
    pub const DEBUG: u8 = 1;
    /// #UD.
    pub const INVALID_OPCODE: u8 = 6;
    /// #GP.
    pub const GENERAL_PROTECTION: u8 = 13;
}

/// The guest CPU's architectural state as a backend holds it while the
/// guest is stopped at an exit. Each method may be a hardware access (a
/// VMREAD or VMWRITE under VT-x): callers ask for what they use.
pub trait GuestCpu {
    /// General register `r` (RSP included).
    fn gpr(&self, r: Gpr) -> u64;
    /// Sets general register `r` (RSP included).
    fn set_gpr(&mut self, r: Gpr, value: u64);
    /// RIP.
    fn rip(&self) -> u64;
    /// Sets RIP.
    fn set_rip(&mut self, rip: u64);
    /// RFLAGS.
    fn rflags(&self) -> u64;
    /// The length of the instruction that caused the exit (the handlers
    /// ask only on exits that report it: CPUID, MOV CR, I/O, RDMSR/WRMSR,
    /// XSETBV, HLT, VMCALL).
    fn instruction_len(&self) -> u64;
    /// Drops blocking by STI and by MOV SS (SDM Vol. 3A §6.8.3; VT-x keeps
    /// them in the interruptibility state, Vol. 3C §25.4.2), as completing
    /// an instruction does.
    fn clear_interrupt_shadow(&mut self);
    /// The current privilege level (SS.DPL, SDM Vol. 3A §5.5).
    fn cpl(&self) -> u8;

    /// CR0 as the guest reads it.
    fn cr0(&self) -> u64;
    /// Whether CR0.PG is set; a backend may answer it more cheaply than
    /// [`cr0`](Self::cr0).
    fn paging_enabled(&self) -> bool {
        self.cr0() & CR0_PG != 0
    }
    /// Makes the guest's CR0 `value` (what it reads back); the backend
    /// adds the bits it has to force (VT-x: the fixed bits, with CD and NW
    /// cleared).
    fn set_cr0(&mut self, value: u64);
    /// CR3.
    fn cr3(&self) -> u64;
    /// Sets CR3.
    fn set_cr3(&mut self, value: u64);
    /// CR4 as the guest reads it.
    fn cr4(&self) -> u64;
    /// Whether CR4.OSXSAVE is set; a backend may answer it more cheaply
    /// than [`cr4`](Self::cr4).
    fn osxsave(&self) -> bool {
        self.cr4() & CR4_OSXSAVE != 0
    }
    /// Makes the guest's CR4 `value`, adding the bits the backend forces
    /// (VT-x: VMXE). The caller has refused what the guest may not set.
    fn set_cr4(&mut self, value: u64);
    /// IA32_EFER.
    fn efer(&self) -> u64;
    /// Sets IA32_EFER with LMA unchanged (a WRMSR).
    fn set_efer(&mut self, value: u64);
    /// Paging was turned on or off with EFER.LME set: EFER becomes `efer`,
    /// whose LMA changed, and the guest enters or leaves IA-32e mode (SDM
    /// Vol. 3A §10.8.5; VT-x also needs its "IA-32e mode guest" entry
    /// control to follow, Vol. 3C §26.2.4).
    fn switch_long_mode(&mut self, efer: u64);

    /// Queues hardware exception `vector` (with `error` code if the
    /// exception has one) for the next entry.
    fn inject_exception(&mut self, vector: u8, error: Option<u32>);
    /// Queues an NMI for the next entry.
    fn inject_nmi(&mut self);
}

/// The rest of what the neutral handlers ask of the vCPU they run for.
pub trait ExitContext: GuestCpu {
    /// Names the vCPU in log lines ("dom1 vCPU0").
    type Name: fmt::Display;
    /// Its name.
    fn name(&self) -> Self::Name;
    /// Whether it belongs to dom0 (which owns the platform).
    fn is_dom0(&self) -> bool;
    /// The vCPU count of its domain when that is a domU (whose CPUID shows
    /// that topology); `None` for dom0 (the host's).
    fn domu_vcpus(&self) -> Option<u32>;
    /// Its local APIC's ID.
    fn apic_id(&self) -> u32;
    /// Its local APIC's timer frequency in kHz.
    fn apic_khz(&self) -> u64;

    /// The physical CPU's time-stamp counter.
    fn tsc(&self) -> u64;
    /// The measured TSC frequency in kHz (0: unknown).
    fn tsc_khz(&self) -> u64;
    /// The physical CPU's CPUID leaf `leaf`, subleaf `sub` (EAX..EDX).
    fn host_cpuid(&self, leaf: u32, sub: u32) -> [u32; 4];
    /// The XCR0 bits the physical CPU supports (CPUID 0xD.0 EDX:EAX).
    fn xcr0_supported(&self) -> u64;
    /// Loads XCR0 on the physical CPU (the guest's until the next switch);
    /// `false` if the CPU refused the value.
    fn set_xcr0(&mut self, value: u64) -> bool;

    /// An RDMSR of `msr` that [`crate::vcpu::msr_policy::read`] sent to the
    /// local APIC (`action`: its base, TSC deadline or an x2APIC register);
    /// `None`: #GP.
    fn apic_msr_read(&mut self, msr: u32, action: ReadAction) -> Option<u64>;
    /// A WRMSR of `value` to `msr` that the policy sent to the local APIC,
    /// at TSC `now`; the APIC's consequences (IPIs, timer) are carried out.
    fn apic_msr_write(
        &mut self,
        msr: u32,
        action: WriteAction,
        value: u64,
        now: u64,
    ) -> Result<(), ApicFault>;
    /// Runs hypercall `op` with `args` for this vCPU and returns the status
    /// for RAX ([`crate::hypercall::dispatch`]).
    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> u64;
    /// The vCPU executed HLT: it waits for an interrupt.
    fn block(&mut self);
}
