//! VM-exit statistics: a count per exit reason, per physical CPU.

use core::sync::atomic::{AtomicU64, Ordering};

/// Basic exit reasons fit in 0..=127 (SDM Vol.3D Appendix C).
pub const REASONS: usize = 128;

/// Counters of one CPU.
#[derive(Debug)]
pub struct ExitStats {
    counts: [AtomicU64; REASONS],
    ticks: [AtomicU64; REASONS],
}

impl ExitStats {
    /// All zero.
    pub const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; REASONS],
            ticks: [const { AtomicU64::new(0) }; REASONS],
        }
    }
    /// Counts one exit of `reason` that took `ticks` TSC ticks to handle.
    pub fn record(&self, reason: u32, ticks: u64) {
        let i = (reason as usize).min(REASONS - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.ticks[i].fetch_add(ticks, Ordering::Relaxed);
    }
    /// Non-zero entries: (reason, count, total handling ticks).
    pub fn entries(&self) -> impl Iterator<Item = (u32, u64, u64)> + '_ {
        (0..REASONS).filter_map(|i| {
            let c = self.counts[i].load(Ordering::Relaxed);
            (c != 0).then(|| (i as u32, c, self.ticks[i].load(Ordering::Relaxed)))
        })
    }
    /// Total exits.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Default for ExitStats {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lists() {
        let s = ExitStats::new();
        s.record(10, 100);
        s.record(10, 50);
        s.record(500, 1);
        let e: std::vec::Vec<_> = s.entries().collect();
        assert_eq!(e, std::vec![(10, 2, 150), (127, 1, 1)]);
        assert_eq!(s.total(), 3);
    }
}
