//! The VT-x machine under the neutral homes and loop
//! ([`crate::sched::runner`]): the machine's one [`Homes`], the TSC as the
//! clock, kicks as the `resched` flag plus an IPI. The functions below are what the rest of the backend
//! calls (wakes, domain lifecycle, scheduler parameters).
//!
//! A vCPU's hardware state here is its VMCS: it stays *active* on the last
//! CPU that ran it (SDM Vol. 3C §25.1), and moving it is VMCLEAR there
//! ([`Vcpu::leave_cpu`]) and VMPTRLD plus the per-CPU host state here
//! ([`Vcpu::arrive_here`]).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::Vcpu;
use super::domain::Domain;
use super::setup::EntryState;
use crate::arch::x86_64::{cpu, idt, lapic, percpu};
use crate::sched::runner::{Homes, Machine};
use crate::sched::{CpuSet, SchedError, VcpuInfo};

/// How a vCPU that was never run starts: its entry state, RBX and RSI.
pub type Start = (EntryState, u64, u64);

/// The machine: its CPUs' TSCs, local APICs and per-CPU flags.
#[derive(Debug)]
pub struct Vmx;

/// Every vCPU's home and the scheduler.
pub static HOMES: Homes<Vmx> = Homes::new(Vmx);

impl Machine for Vmx {
    type Vcpu = Vcpu;

    fn now(&self) -> u64 {
        cpu::rdtsc()
    }

    fn ticks_per_ms(&self) -> u64 {
        crate::logger::tsc_khz()
    }

    fn online_cpus(&self) -> usize {
        (0..percpu::MAX_CPUS)
            .take_while(|&i| percpu::get(i).online.load(Ordering::Acquire))
            .count()
    }

    fn this_cpu(&self) -> usize {
        percpu::current_index()
    }

    /// Sets the CPU's flag and sends it an IPI (not to this CPU, which
    /// looks at its flag before it enters).
    fn kick(&self, c: usize) {
        if c >= percpu::MAX_CPUS {
            return;
        }
        percpu::get(c).resched.store(true, Ordering::Release);
        if c != percpu::current_index() {
            self.interrupt(c);
        }
    }

    fn interrupt(&self, c: usize) {
        if c < percpu::MAX_CPUS {
            lapic::send_fixed(
                percpu::get(c).apic_id.load(Ordering::Relaxed),
                idt::VECTOR_IPI,
            );
        }
    }
}

/// The CPUs that run vCPUs (the default affinity of a domU's vCPUs).
pub fn joined() -> CpuSet {
    HOMES.joined()
}

/// Registers a domain's vCPUs (none of them started, the domain paused)
/// with the scheduler, allowed on `affinity`.
pub fn add_domain(domain: &Arc<Domain>, affinity: CpuSet) -> Result<(), SchedError> {
    HOMES.add_domain(domain, affinity)
}

/// Makes vCPU `j` of `domain` runnable ([`Homes::wake`]).
pub fn wake(domain: &Domain, j: usize) {
    HOMES.wake(domain, j);
}

/// Gives a domain's boot vCPU its start and lets the domain run.
pub fn start_domain(domain: &Domain, start: Option<Start>) {
    HOMES.start_domain(domain, start);
}

/// Pauses a domain's vCPUs.
pub fn pause(id: u32) {
    HOMES.pause(id);
}

/// Lets a paused domain's vCPUs run again.
pub fn unpause(id: u32) {
    HOMES.unpause(id);
}

/// A domain stops for good: its vCPUs leave the scheduler, and every CPU
/// frees those it holds.
pub fn domain_stopping(id: u32) {
    HOMES.domain_stopping(id);
}

/// Every vCPU of domain `id` with its scheduler information.
pub fn vcpu_infos(id: u32) -> Option<Vec<(u32, VcpuInfo)>> {
    HOMES.vcpu_infos(id)
}

/// Domain `id`'s weight and cap (percent of one CPU, 0 = none).
pub fn sched_params(id: u32) -> Result<(u32, u32), SchedError> {
    HOMES.sched_params(id)
}

/// Sets domain `id`'s weight and/or cap; nothing changes if either is
/// refused.
pub fn set_sched_params(id: u32, weight: Option<u32>, cap: Option<u32>) -> Result<(), SchedError> {
    HOMES.set_sched_params(id, weight, cap)
}

/// Sets vCPU `vcpu` of domain `id`'s hard affinity to the CPUs of `bits`.
pub fn set_affinity(id: u32, vcpu: u32, bits: u64) -> Result<(), SchedError> {
    HOMES.set_affinity(id, vcpu, bits)
}

/// Whether vCPU `vcpu` of domain `id` was started (it ran, or runs).
pub fn started(id: u32, vcpu: u32) -> bool {
    HOMES.started(id, vcpu)
}
