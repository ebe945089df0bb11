//! The units and names the scheduler speaks in: time in TSC ticks, domain
//! and vCPU identities, weights and caps, what a physical CPU is told to do,
//! what the queries report, and the errors a request can get.
//!
//! Each quantity has its own type so that a weight cannot be passed where a
//! percentage is meant, nor a span of ticks where a CPU number is.

use core::fmt;

use super::cpuset::CpuSet;
use super::credit::Credit;

/// A span or an instant of time in TSC ticks.
///
/// Arithmetic saturates: a time near `u64::MAX` (or one that went backwards)
/// gives a long or an empty span, never an overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ticks(pub u64);

impl Ticks {
    /// No time.
    pub const ZERO: Ticks = Ticks(0);
    /// The instant that never comes: "no deadline".
    pub const NEVER: Ticks = Ticks(u64::MAX);

    /// `self + other`, stopping at [`Ticks::NEVER`].
    pub const fn saturating_add(self, other: Ticks) -> Ticks {
        Ticks(self.0.saturating_add(other.0))
    }

    /// `self - other`, stopping at zero.
    pub const fn saturating_sub(self, other: Ticks) -> Ticks {
        Ticks(self.0.saturating_sub(other.0))
    }
}

/// A domain's id (0 is dom0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u32);

/// One vCPU: its domain and its index within the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcpuRef {
    /// The domain it belongs to.
    pub domain: DomainId,
    /// Its index in the domain (vCPU0, vCPU1, ...).
    pub index: u32,
}

impl VcpuRef {
    /// vCPU `index` of domain `domain`.
    pub const fn new(domain: u32, index: u32) -> Self {
        Self {
            domain: DomainId(domain),
            index,
        }
    }
}

/// A domain's relative share of the CPUs its vCPUs compete for: two
/// CPU-bound vCPUs on one CPU get time in the ratio of their weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u16);

impl Weight {
    /// The weight of a domain nobody configured (as in Xen's toolstack).
    pub const DEFAULT: Weight = Weight(256);

    /// A weight from a request: 1 to 65535.
    pub const fn new(raw: u32) -> Result<Weight, SchedError> {
        if raw == 0 || raw > u16::MAX as u32 {
            return Err(SchedError::BadWeight);
        }
        Ok(Weight(raw as u16))
    }

    /// The value, never 0.
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// The most CPU time a domain may use, in percent of one CPU, over all its
/// vCPUs together; 0 is no cap. 25 is a quarter of one CPU, 150 one and a
/// half CPUs (only reachable with two vCPUs or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cap(u32);

impl Cap {
    /// No cap.
    pub const NONE: Cap = Cap(0);

    /// A cap from a request on a machine of `cpus` CPUs: more than all of
    /// them (`100 * cpus`) could never bind, so it is refused.
    pub const fn new(percent: u32, cpus: usize) -> Result<Cap, SchedError> {
        if percent as u64 > 100 * cpus as u64 {
            return Err(SchedError::BadCap);
        }
        Ok(Cap(percent))
    }

    /// The percentage, 0 for none.
    pub const fn percent(self) -> u32 {
        self.0
    }

    /// Whether there is a cap.
    pub const fn is_capped(self) -> bool {
        self.0 != 0
    }
}

/// What a physical CPU should do next, from [`Scheduler::pick`].
///
/// [`Scheduler::pick`]: super::Scheduler::pick
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The vCPU to run, or `None` to idle.
    pub run: Option<VcpuRef>,
    /// When to call `pick` again at the latest (end of the slice, the cap
    /// budget running out, the rate limit allowing a switch, a cap
    /// replenishment); [`Ticks::NEVER`] when only a kick can change things.
    pub until: Ticks,
    /// Other CPUs that should call `pick` soon (an IPI): work moved to them
    /// or waits that they could take.
    pub kick: CpuSet,
}

/// Where a vCPU stands, as `xl vcpu-list` would show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuState {
    /// On its CPU now.
    Running,
    /// Ready, waiting for its CPU.
    Runnable,
    /// Ready, but its domain's cap budget is spent until the next period.
    Parked,
    /// Halted (or not started yet): uses no CPU and no credit.
    Blocked,
    /// Its domain is paused.
    Paused,
}

/// A vCPU as the queries report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuInfo {
    /// The CPU it runs on, or whose queue it waits (or last ran) on.
    pub cpu: usize,
    /// Its state.
    pub state: VcpuState,
    /// Its credit now (as of the last accounting).
    pub credit: Credit,
    /// CPU time it has been given in all.
    pub cpu_time: Ticks,
    /// The CPUs it may run on (its hard affinity, within the machine).
    pub affinity: CpuSet,
}

/// A domain's scheduling parameters, as `xl sched-credit2` would show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainInfo {
    /// Its weight.
    pub weight: Weight,
    /// Its cap.
    pub cap: Cap,
    /// Whether it is paused.
    pub paused: bool,
    /// How many vCPUs it has.
    pub vcpus: usize,
    /// With a cap: the budget left in the current period (0 when spent or
    /// in debt).
    pub budget_left: Option<Ticks>,
}

/// Why a request was refused. Bad input never panics: it gets one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedError {
    /// No such domain.
    UnknownDomain,
    /// No such vCPU.
    UnknownVcpu,
    /// No such physical CPU.
    UnknownCpu,
    /// The domain exists already.
    DomainExists,
    /// The vCPU exists already.
    VcpuExists,
    /// A weight outside 1..=65535.
    BadWeight,
    /// A cap above 100 % per CPU of the machine.
    BadCap,
    /// An affinity with no CPU of the machine.
    BadAffinity,
    /// A configuration the scheduler cannot work with.
    BadConfig,
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchedError::UnknownDomain => "no such domain",
            SchedError::UnknownVcpu => "no such vCPU",
            SchedError::UnknownCpu => "no such CPU",
            SchedError::DomainExists => "the domain exists already",
            SchedError::VcpuExists => "the vCPU exists already",
            SchedError::BadWeight => "a weight must be 1 to 65535",
            SchedError::BadCap => "a cap may not exceed 100 % per CPU of the machine",
            SchedError::BadAffinity => "the affinity names no CPU of the machine",
            SchedError::BadConfig => "unusable scheduler configuration",
        })
    }
}
