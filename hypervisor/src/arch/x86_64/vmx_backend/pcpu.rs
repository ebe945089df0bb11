//! What a physical CPU does with its vCPUs: run one for a slice, and when
//! every vCPU it holds is halted, wait (interrupts on) until one has
//! something to do.

use core::arch::asm;

use super::{SliceEnd, StopReason, Vcpu};
use crate::arch::x86_64::{cpu, idt, lapic};
use crate::logger;

/// A time slice: 10 ms of TSC ticks.
pub fn slice_ticks() -> u64 {
    logger::tsc_khz().max(1000) * 10
}

/// Waits, interrupts enabled, for the next interrupt; with `deadline` (a TSC
/// value) the physical APIC timer makes sure one comes by then.
pub fn wait_for_interrupt(deadline: Option<u64>, apic_khz: u64) {
    if let Some(d) = deadline {
        let now = cpu::rdtsc();
        if d <= now {
            return;
        }
        let khz = logger::tsc_khz().max(1);
        let count = (u128::from(d - now) * u128::from(apic_khz.max(1)) / u128::from(khz)).clamp(1, u128::from(u32::MAX)) as u32;
        lapic::start_timer(idt::VECTOR_TIMER, lapic::TimerMode::OneShot, count);
    }
    // sti; hlt as one sequence: the interrupt shadow of STI covers HLT, so an
    // interrupt that arrived after the caller last looked still wakes us.
    // SAFETY: the IDT handles every vector (device vectors are queued for
    // dom0, hypervisor vectors acknowledged); interrupts go off again at once.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Runs `v` (its VMCS current on this CPU) until it stops for good.
pub fn run_one(v: &mut Vcpu) -> StopReason {
    loop {
        if !v.wants_to_run() {
            wait_for_interrupt(v.wake_deadline(), v.domain.apic_khz);
            continue;
        }
        match v.run_slice(slice_ticks()) {
            SliceEnd::Blocked | SliceEnd::Preempted => {}
            SliceEnd::Stopped(reason) => return reason,
        }
    }
}
