//! The scheduler's fixed parameters: how many CPUs, how fast the TSC runs,
//! and the lengths of a slice, of the rate limit and of a cap period.

use super::cpuset::MAX_CPUS;
use super::types::{SchedError, Ticks};

/// Parameters fixed when the scheduler is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedConfig {
    /// Physical CPUs, 1 to [`MAX_CPUS`]; CPU numbers are `0..cpus`.
    pub cpus: usize,
    /// TSC ticks per millisecond (the TSC frequency in kHz).
    pub ticks_per_ms: u64,
    /// The longest a vCPU runs before the scheduler looks again.
    pub slice: Ticks,
    /// The least a vCPU runs before another may preempt it (unless it
    /// blocks, its domain is paused or its cap budget runs out). At most
    /// `slice`; 0 turns the limit off.
    pub ratelimit: Ticks,
    /// How often a capped domain's budget is replenished.
    pub cap_period: Ticks,
}

impl SchedConfig {
    /// `cpus` CPUs with a TSC of `ticks_per_ms`, and the usual lengths:
    /// 10 ms slices, a 1 ms rate limit, 10 ms cap periods.
    pub const fn new(cpus: usize, ticks_per_ms: u64) -> Self {
        Self {
            cpus,
            ticks_per_ms,
            slice: Ticks(ticks_per_ms.saturating_mul(10)),
            ratelimit: Ticks(ticks_per_ms),
            cap_period: Ticks(ticks_per_ms.saturating_mul(10)),
        }
    }

    /// `ms` milliseconds in ticks.
    pub const fn ms(&self, ms: u64) -> Ticks {
        Ticks(self.ticks_per_ms.saturating_mul(ms))
    }

    /// Checks the parameters can be worked with: 1 to 64 CPUs, non-empty
    /// slices and periods, a rate limit no longer than a slice, and lengths
    /// small enough that credit (signed, see `credit.rs`) cannot overflow.
    pub const fn validate(&self) -> Result<(), SchedError> {
        const LONGEST: u64 = 1 << 48;
        if self.cpus == 0
            || self.cpus > MAX_CPUS
            || self.slice.0 == 0
            || self.slice.0 > LONGEST
            || self.ratelimit.0 > self.slice.0
            || self.cap_period.0 == 0
            || self.cap_period.0 > LONGEST
        {
            return Err(SchedError::BadConfig);
        }
        Ok(())
    }
}
