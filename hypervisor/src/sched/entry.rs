//! The scheduler's record of each domain and each vCPU.

use super::cap::Budget;
use super::cpuset::CpuSet;
use super::credit::Credit;
use super::types::{Cap, Ticks, Weight};

/// A domain's parameters and budget.
#[derive(Debug, Clone)]
pub(crate) struct DomainEntry {
    pub(crate) weight: Weight,
    pub(crate) cap: Cap,
    pub(crate) paused: bool,
    /// Meaningful only with a cap.
    pub(crate) budget: Budget,
}

impl DomainEntry {
    /// Whether its vCPUs may not be picked for lack of budget.
    pub(crate) fn out_of_budget(&self) -> bool {
        self.cap.is_capped() && self.budget.exhausted()
    }
}

/// A vCPU's scheduling state.
#[derive(Debug, Clone)]
pub(crate) struct VcpuEntry {
    /// Hard affinity, within the machine's CPUs (never empty).
    pub(crate) affinity: CpuSet,
    /// The CPU whose queue it belongs to.
    pub(crate) home: usize,
    /// The CPU running it, if any (then `home` is that CPU).
    pub(crate) running_on: Option<usize>,
    /// Halted (or never started).
    pub(crate) blocked: bool,
    /// Woken for a device interrupt: picked first on its CPU, once.
    pub(crate) urgent: bool,
    pub(crate) credit: Credit,
    /// Remainder of the last burn (see `credit::burn`).
    pub(crate) burn_rem: u64,
    /// CPU time given in all.
    pub(crate) cpu_time: Ticks,
    /// When it last ran (to break ties between equal credits).
    pub(crate) last_ran: Ticks,
    /// The unused part of the cap chunk it holds, and the period it is from.
    pub(crate) reserved: Ticks,
    pub(crate) reserved_period: Option<u64>,
}

impl VcpuEntry {
    /// A new vCPU: blocked (like a vCPU waiting for its start-up IPI), with
    /// a full allotment of credit.
    pub(crate) fn new(affinity: CpuSet, home: usize, credit: Credit) -> Self {
        Self {
            affinity,
            home,
            running_on: None,
            blocked: true,
            urgent: false,
            credit,
            burn_rem: 0,
            cpu_time: Ticks::ZERO,
            last_ran: Ticks::ZERO,
            reserved: Ticks::ZERO,
            reserved_period: None,
        }
    }
}
