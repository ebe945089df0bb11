//! A set of byte addresses kept as sorted, disjoint, non-adjacent half-open
//! intervals, and a first-fit search in it. The memory plan and the boot
//! structure placement are both set arithmetic over such sets.

use alloc::vec::Vec;

/// Sorted, disjoint, non-touching `[start, end)` intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    spans: Vec<(u64, u64)>,
}

/// Which end of the allowed window a search favours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prefer {
    /// The lowest address that fits.
    Low,
    /// The highest address that fits.
    High,
}

impl RangeSet {
    /// The empty set.
    pub(crate) const fn new() -> Self {
        Self { spans: Vec::new() }
    }

    /// The intervals, ascending.
    pub(crate) fn spans(&self) -> &[(u64, u64)] {
        &self.spans
    }

    /// Total bytes.
    pub(crate) fn total(&self) -> u64 {
        self.spans.iter().map(|&(s, e)| e - s).sum()
    }

    /// Adds `[start, end)` (ignored if empty).
    pub(crate) fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.spans.len() + 1);
        for &(a, b) in &self.spans {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        let at = kept.partition_point(|&(a, _)| a < s);
        kept.insert(at, (s, e));
        self.spans = kept;
    }

    /// Removes `[start, end)`.
    pub(crate) fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut kept = Vec::with_capacity(self.spans.len() + 1);
        for &(a, b) in &self.spans {
            if b <= start || a >= end {
                kept.push((a, b));
                continue;
            }
            if a < start {
                kept.push((a, start));
            }
            if b > end {
                kept.push((end, b));
            }
        }
        self.spans = kept;
    }

    /// Removes every byte of `other`.
    pub(crate) fn remove_set(&mut self, other: &RangeSet) {
        for &(s, e) in &other.spans {
            self.remove(s, e);
        }
    }

    /// Whether every byte of `[start, end)` is in the set.
    pub(crate) fn contains_range(&self, start: u64, end: u64) -> bool {
        start >= end || self.spans.iter().any(|&(a, b)| a <= start && end <= b)
    }

    /// Keeps only the bytes inside whole `align`-sized blocks (shrinks each
    /// interval inwards to `align`, a power of two).
    pub(crate) fn shrink_to(&mut self, align: u64) {
        let mut kept = Vec::with_capacity(self.spans.len());
        for &(a, b) in &self.spans {
            let Some(s) = a.checked_add(align - 1).map(|v| v & !(align - 1)) else {
                continue;
            };
            let e = b & !(align - 1);
            if s < e {
                kept.push((s, e));
            }
        }
        self.spans = kept;
    }

    /// An `align`-aligned address `a` with `[a, a + size)` inside the set and
    /// inside `[lo, hi)`, favouring one end; `None` if there is none.
    pub(crate) fn find_fit(
        &self,
        size: u64,
        align: u64,
        lo: u64,
        hi: u64,
        prefer: Prefer,
    ) -> Option<u64> {
        let align = align.max(1);
        if !align.is_power_of_two() || size == 0 {
            return None;
        }
        let fit_in = |a: u64, b: u64| -> Option<u64> {
            let (a, b) = (a.max(lo), b.min(hi));
            let first = a.checked_add(align - 1)? & !(align - 1);
            let last_start = b.checked_sub(size)? & !(align - 1);
            if first > last_start || first.checked_add(size)? > b {
                return None;
            }
            Some(if prefer == Prefer::Low {
                first
            } else {
                last_start
            })
        };
        match prefer {
            Prefer::Low => self.spans.iter().find_map(|&(a, b)| fit_in(a, b)),
            Prefer::High => self.spans.iter().rev().find_map(|&(a, b)| fit_in(a, b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_merges_and_remove_splits() {
        let mut s = RangeSet::new();
        s.add(10, 20);
        s.add(30, 40);
        s.add(20, 30);
        assert_eq!(s.spans(), &[(10, 40)]);
        s.remove(15, 25);
        assert_eq!(s.spans(), &[(10, 15), (25, 40)]);
        assert_eq!(s.total(), 20);
        assert!(s.contains_range(26, 40));
        assert!(!s.contains_range(14, 26));
        s.add(0, 5);
        assert_eq!(s.spans(), &[(0, 5), (10, 15), (25, 40)]);
    }

    #[test]
    fn shrink_and_fit() {
        let mut s = RangeSet::new();
        s.add(0x800, 0x5800);
        s.shrink_to(0x1000);
        assert_eq!(s.spans(), &[(0x1000, 0x5000)]);
        assert_eq!(
            s.find_fit(0x1000, 0x1000, 0, u64::MAX, Prefer::Low),
            Some(0x1000)
        );
        assert_eq!(
            s.find_fit(0x1000, 0x1000, 0, u64::MAX, Prefer::High),
            Some(0x4000)
        );
        assert_eq!(
            s.find_fit(0x1000, 0x1000, 0, 0x3800, Prefer::High),
            Some(0x2000)
        );
        assert_eq!(s.find_fit(0x5000, 0x1000, 0, u64::MAX, Prefer::Low), None);
        assert_eq!(
            s.find_fit(0x100, 0x2000, 0x1800, u64::MAX, Prefer::Low),
            Some(0x2000)
        );
    }
}
