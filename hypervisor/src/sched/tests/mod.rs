//! Host tests of the scheduling policy: one test per rule (`rules.rs`,
//! `accounting.rs`), the pieces (`parts.rs`), properties over simulated
//! machines (`properties.rs`, driving `sim.rs`), and random request sequences
//! (`requests.rs`).

mod accounting;
mod parts;
mod properties;
mod requests;
mod rules;
mod sim;

use super::*;

/// Ticks per millisecond in the unit tests (1 tick = 1 µs keeps numbers
/// readable; a real TSC runs at millions of ticks per millisecond).
pub const TPMS: u64 = 1000;

/// `ms` milliseconds.
pub const fn ms(ms: u64) -> Ticks {
    Ticks(ms * TPMS)
}

/// `us` microseconds.
pub const fn us(us: u64) -> Ticks {
    Ticks(us * TPMS / 1000)
}

/// A scheduler for `cpus` CPUs with the default lengths.
pub fn sched(cpus: usize) -> Scheduler {
    Scheduler::new(SchedConfig::new(cpus, TPMS)).unwrap()
}

/// vCPU `i` of domain `d`.
pub const fn v(d: u32, i: u32) -> VcpuRef {
    VcpuRef::new(d, i)
}

/// Adds domain `d` with the given weight and cap, and vCPUs `0..n` with
/// affinity `aff`, each woken at time 0 as it is added.
pub fn domain(s: &mut Scheduler, d: u32, weight: u32, cap: u32, n: u32, aff: CpuSet) {
    s.add_domain(DomainId(d)).unwrap();
    s.set_weight(DomainId(d), weight).unwrap();
    s.set_cap(DomainId(d), cap).unwrap();
    for i in 0..n {
        s.add_vcpu(v(d, i), aff).unwrap();
        s.wake(v(d, i), Ticks(0), false).unwrap();
    }
}
