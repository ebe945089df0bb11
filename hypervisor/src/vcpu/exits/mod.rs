//! Exit handlers with no vendor in them: they act on a vendor-neutral
//! [`ExitEvent`](crate::vcpu::exit_event::ExitEvent) through the
//! [`GuestCpu`] and [`ExitContext`] traits ([`crate::vcpu::backend`]), so
//! the same code serves VT-x (`arch::x86_64::vmx_backend::exits`) and
//! would serve another backend, and the host tests drive it with a fake
//! vCPU (`tests.rs`).
//!
//! Here: CPUID and XSETBV ([`cpuid`]), control-register accesses ([`cr`]),
//! RDMSR/WRMSR ([`msr`]), HLT, NMI, VMCALL and the instructions refused
//! with #UD. Still in the backend: port I/O (dom0's ports reach the
//! hardware and the notification device; a domU's reach its emulated
//! UART and PM1 block), nested-page faults (a domU's MMIO emulation,
//! dom0's hidden memory), the APIC-virtualization exits and the VM-entry
//! failures.
#![deny(unsafe_code)]

pub mod cpuid;
pub mod cr;
pub mod msr;

#[cfg(test)]
mod tests;

use crate::vcpu::backend::{ExitContext, GuestCpu, vector};
use crate::vmx::exit::Gpr;

/// A handler's verdict that the guest cannot go on (it logged why); the
/// backend stops the vCPU as crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fatal;

/// Moves RIP past the instruction that exited, whose length the exit gave.
pub fn advance(g: &mut impl GuestCpu) {
    let len = g.instruction_len();
    skip(g, len);
}

/// Moves RIP past an instruction of `len` bytes and drops STI/MOV-SS
/// blocking, as completing it would.
pub fn skip(g: &mut impl GuestCpu, len: u64) {
    g.set_rip(g.rip().wrapping_add(len));
    g.clear_interrupt_shadow();
}

/// #GP(0).
pub fn inject_gp(g: &mut impl GuestCpu) {
    g.inject_exception(vector::GENERAL_PROTECTION, Some(0));
}

/// #UD: for an instruction this hypervisor does not offer its guests (VMX
/// instructions: no nested virtualization), as on a CPU without it.
pub fn inject_ud(g: &mut impl GuestCpu) {
    g.inject_exception(vector::INVALID_OPCODE, None);
}

/// HLT: the vCPU waits (the scheduler runs something else) until it has an
/// interrupt to take.
pub fn hlt(cx: &mut impl ExitContext) {
    advance(cx);
    cx.block();
}

/// A physical NMI arrived while the guest ran: dom0 owns the platform and
/// gets it; a domU's is dropped.
pub fn nmi(cx: &mut impl ExitContext) {
    if cx.is_dom0() {
        cx.inject_nmi();
    } else {
        log::warn!("physical NMI while {} ran: dropped", cx.name());
    }
}

/// VMCALL, with the `dom0-abi` calling convention: operation in RAX,
/// arguments in RDI, RSI, RDX, R10, R8, status back in RAX. Only ring 0
/// may call (#UD elsewhere, as for an instruction it cannot use).
pub fn hypercall(cx: &mut impl ExitContext) {
    if cx.cpl() != 0 {
        inject_ud(cx);
        return;
    }
    let args = [Gpr::Rdi, Gpr::Rsi, Gpr::Rdx, Gpr::R10, Gpr::R8].map(|r| cx.gpr(r));
    let op = cx.gpr(Gpr::Rax);
    let status = cx.hypercall(op, args);
    cx.set_gpr(Gpr::Rax, status);
    advance(cx);
}

/// EDX:EAX as one 64-bit value (RDMSR/WRMSR, XSETBV).
fn edx_eax(g: &impl GuestCpu) -> u64 {
    (g.gpr(Gpr::Rdx) << 32) | (g.gpr(Gpr::Rax) & 0xFFFF_FFFF)
}
