//! CPUID and XSETBV: what the guest sees of the processor's features
//! ([`crate::vcpu::cpuid`] decides) and the XCR0 it may load.

use super::{advance, edx_eax, inject_gp};
use crate::vcpu::backend::ExitContext;
use crate::vcpu::cpuid::{CpuidContext, guest_cpuid, xcr0_valid};
use crate::vmx::exit::Gpr;

/// CPUID.1:ECX bit 24, the TSC-deadline timer (SDM Vol. 3A §11.5.4.1).
const CPUID1_ECX_TSC_DEADLINE: u32 = 1 << 24;

/// CPUID: leaf EAX, subleaf ECX, answered in EAX..EDX.
pub fn cpuid(cx: &mut impl ExitContext) {
    let leaf = cx.gpr(Gpr::Rax) as u32;
    let sub = cx.gpr(Gpr::Rcx) as u32;
    let host = cx.host_cpuid(leaf, sub);
    let ctx = CpuidContext {
        tsc_khz: cx.tsc_khz(),
        apic_khz: cx.apic_khz(),
        apic_id: cx.apic_id(),
        guest_osxsave: cx.osxsave(),
        vcpus: cx.domu_vcpus(),
    };
    let mut r = guest_cpuid(leaf, sub, host, &ctx);
    if leaf == 1 {
        // The vLAPIC implements it.
        r[2] |= CPUID1_ECX_TSC_DEADLINE;
    }
    for (gpr, value) in [Gpr::Rax, Gpr::Rbx, Gpr::Rcx, Gpr::Rdx].into_iter().zip(r) {
        cx.set_gpr(gpr, u64::from(value));
    }
    advance(cx);
}

/// XSETBV: XCR[ECX] = EDX:EAX. Only XCR0 exists, with the features the
/// guest was shown (SDM Vol. 2D XSETBV); anything else is #GP(0).
pub fn xsetbv(cx: &mut impl ExitContext) {
    let index = cx.gpr(Gpr::Rcx) as u32;
    let value = edx_eax(cx);
    let host = cx.xcr0_supported();
    if index != 0 || !xcr0_valid(value, host) || !cx.set_xcr0(value) {
        inject_gp(cx);
        return;
    }
    advance(cx);
}
