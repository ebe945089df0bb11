//! The budget of a capped domain: how much CPU time it may still use in the
//! current cap period.
//!
//! Like credit2's caps, the budget is shared by all the domain's vCPUs and
//! handed out in chunks: a CPU about to run a capped vCPU *reserves* a
//! chunk (at most what is left) and comes back when the chunk is used up,
//! so vCPUs running at the same time on several CPUs can never together
//! spend more than the budget. Whatever part of a chunk is not used (the
//! vCPU blocked early) goes back to the pool, unless the period it came from
//! is over. Time used beyond a chunk (a CPU that came back late) is taken
//! from the pool as debt.
//!
//! Periods are aligned on multiples of the period length since tick 0, so
//! every domain and every CPU agree on where one period ends. At each new
//! period the budget grows by the quota (cap × period / 100) but never
//! beyond one quota: unused budget is not saved up, debt is paid back.

use super::types::{Cap, Ticks};

/// A domain's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// CPU time per period; 0 when uncapped.
    quota: u64,
    /// What is left in the current period (negative: debt).
    left: i64,
    /// The index of the current period (`now / period`); `None` until the
    /// first look at the clock after the cap was set.
    period: Option<u64>,
}

impl Budget {
    /// The budget of a domain with `cap` and periods of `period` ticks.
    pub(crate) fn new(cap: Cap, period: Ticks) -> Self {
        let quota = u128::from(cap.percent()) * u128::from(period.0) / 100;
        Self {
            quota: u64::try_from(quota).unwrap_or(u64::MAX),
            left: 0,
            period: None,
        }
    }

    /// Replenishes for the periods that began by `now`. A clock that went
    /// backwards changes nothing.
    pub(crate) fn refill(&mut self, now: Ticks, period: Ticks) {
        let index = now.0 / period.0.max(1);
        let quota = i64::try_from(self.quota).unwrap_or(i64::MAX);
        match self.period {
            None => self.left = quota,
            Some(p) if index > p => {
                let rounds = i64::try_from(index - p).unwrap_or(i64::MAX);
                self.left = self
                    .left
                    .saturating_add(quota.saturating_mul(rounds))
                    .min(quota);
            }
            Some(_) => return,
        }
        self.period = Some(index);
    }

    /// The current period's index.
    pub(crate) fn period(&self) -> Option<u64> {
        self.period
    }

    /// Whether nothing is left to reserve.
    pub(crate) fn exhausted(&self) -> bool {
        self.left <= 0
    }

    /// What is left, debt shown as 0.
    pub(crate) fn left(&self) -> Ticks {
        Ticks(self.left.max(0) as u64)
    }

    /// Takes a chunk of at most `want` ticks from the pool.
    pub(crate) fn reserve(&mut self, want: Ticks) -> Ticks {
        let take = self.left().min(want);
        self.left -= take.0 as i64;
        take
    }

    /// Returns the unused part of a chunk reserved in period `from`; a
    /// chunk from an earlier period is dropped (its period is over).
    pub(crate) fn give_back(&mut self, unused: Ticks, from: Option<u64>) {
        if from.is_some() && from == self.period {
            let unused = i64::try_from(unused.0).unwrap_or(i64::MAX);
            self.left = self.left.saturating_add(unused);
        }
    }

    /// Takes `used` ticks that no chunk covered.
    pub(crate) fn spend(&mut self, used: Ticks) {
        let used = i64::try_from(used.0).unwrap_or(i64::MAX);
        self.left = self.left.saturating_sub(used);
    }
}

/// Where the cap period containing `now` ends.
pub(crate) fn period_end(now: Ticks, period: Ticks) -> Ticks {
    let period = period.0.max(1);
    Ticks((now.0 / period).saturating_add(1).saturating_mul(period))
}
