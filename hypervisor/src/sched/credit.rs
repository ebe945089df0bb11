//! Credit: how proportional sharing by weight works, as pure arithmetic.
//!
//! The idea is credit2's, in our own terms. Every vCPU holds credit,
//! counted in ticks "at the default weight". While it runs it burns credit
//! at a rate inversely proportional to its domain's weight: at weight 256
//! one tick burns one credit, at 512 half a credit, at 128 two. A CPU runs
//! the ready vCPU with the most credit, so over time each vCPU gets CPU time
//! in proportion to its weight. Burning keeps the division's remainder per
//! vCPU, so no tick is lost to rounding however short the runs are.
//!
//! Credits run down; when the best candidate of a run queue has none left
//! (credit ≤ 0), every vCPU of that queue gets a fresh allotment of
//! [`Credit`] `init` (one slice's worth), see [`after_reset`].

use super::config::SchedConfig;
use super::types::{Ticks, Weight};

/// The weight at which one tick of running burns one credit.
const UNIT_WEIGHT: u128 = Weight::DEFAULT.get() as u128;

/// An amount of credit, in ticks at the default weight; negative is debt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credit(pub i64);

/// The allotment a reset gives: one slice's worth.
pub(crate) fn init(config: &SchedConfig) -> Credit {
    Credit(i64::try_from(config.slice.0).unwrap_or(i64::MAX).max(1))
}

/// Burns `ran` ticks at `weight`, carrying the division's remainder `rem`
/// (which stays below the weight). Returns the credit to take away and the
/// new remainder.
pub(crate) fn burn(ran: Ticks, weight: Weight, rem: u64) -> (i64, u64) {
    let w = u128::from(weight.get());
    let scaled = u128::from(ran.0) * UNIT_WEIGHT + u128::from(rem).min(w - 1);
    let burned = i64::try_from(scaled / w).unwrap_or(i64::MAX);
    (burned, (scaled % w) as u64)
}

/// How long a vCPU at `weight` runs before `credit` is burnt (0 if there is
/// none left), rounded up.
pub(crate) fn runtime_for(credit: Credit, weight: Weight) -> Ticks {
    if credit.0 <= 0 {
        return Ticks::ZERO;
    }
    let ticks = (credit.0 as u128 * u128::from(weight.get())).div_ceil(UNIT_WEIGHT);
    Ticks(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// How many allotments of `init` a queue whose best candidate holds `best`
/// needs so that the best has credit again (0 when it has some).
pub(crate) fn reset_rounds(best: Credit, init: Credit) -> u64 {
    if best.0 > 0 {
        return 0;
    }
    let debt = best.0.unsigned_abs();
    debt / init.0.max(1).unsigned_abs() + 1
}

/// A vCPU's credit after `rounds` resets of its queue.
///
/// One reset adds `init` to what the vCPU holds and clamps the result to
/// `init`: a vCPU in debt (it ran past zero, or a low weight made its last
/// run expensive) keeps the debt and pays it back from the new allotment,
/// which keeps long-run shares exact; a vCPU with credit left (it was
/// blocked, so it did not spend its share) gets no more than one allotment,
/// so sleeping never hoards credit. `rounds` resets at once give the same
/// result as that many single ones: `min(credit + rounds * init, init)`.
pub(crate) fn after_reset(credit: Credit, rounds: u64, init: Credit) -> Credit {
    let sum = i128::from(credit.0) + i128::from(rounds) * i128::from(init.0);
    Credit(i64::try_from(sum.min(i128::from(init.0))).unwrap_or(i64::MIN))
}

/// How long a vCPU holding `credit` may run at once: until its credit is
/// burnt, but at least the rate limit (no one could preempt it earlier
/// anyway) and one tick, and at most a slice.
pub(crate) fn slice_for(credit: Credit, weight: Weight, config: &SchedConfig) -> Ticks {
    runtime_for(credit, weight)
        .max(config.ratelimit)
        .max(Ticks(1))
        .min(config.slice)
}
