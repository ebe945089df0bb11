//! A lock-free set of interrupt vectors, shared between CPUs: a vCPU's
//! mailbox ([`crate::domains::mailbox`]) and a physical CPU's pending
//! device interrupts.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

/// A lock-free set of the 256 interrupt vectors.
#[derive(Debug)]
pub struct VectorSet([AtomicU64; 4]);

impl Default for VectorSet {
    fn default() -> Self {
        Self::new()
    }
}

impl VectorSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; 4])
    }
    /// Adds `v`.
    pub fn set(&self, v: u8) {
        self.0[usize::from(v / 64)].fetch_or(1 << (v % 64), Ordering::AcqRel);
    }
    /// Removes and returns the highest vector, if any.
    pub fn take_highest(&self) -> Option<u8> {
        for i in (0..4).rev() {
            loop {
                let word = self.0[i].load(Ordering::Acquire);
                if word == 0 {
                    break;
                }
                let bit = 63 - word.leading_zeros();
                if self.0[i]
                    .compare_exchange(
                        word,
                        word & !(1 << bit),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    return Some((i as u32 * 64 + bit) as u8);
                }
            }
        }
        None
    }
    /// Whether `v` is in the set.
    pub fn contains(&self, v: u8) -> bool {
        self.0[usize::from(v / 64)].load(Ordering::Acquire) & (1 << (v % 64)) != 0
    }
    /// The four 64-bit words (vector v is bit v % 64 of word v / 64).
    pub fn words(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.0[i].load(Ordering::Acquire))
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| w.load(Ordering::Acquire) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::VectorSet;

    #[test]
    fn takes_the_highest_first() {
        let s = VectorSet::new();
        assert!(s.is_empty());
        for v in [0x20, 0xFF, 0x41, 0] {
            s.set(v);
        }
        assert!(s.contains(0x41) && !s.contains(0x42));
        assert_eq!(s.words()[3], 1 << 63);
        let order: Vec<u8> = core::iter::from_fn(|| s.take_highest()).collect();
        assert_eq!(order, [0xFF, 0x41, 0x20, 0]);
        assert!(s.is_empty());
    }
}
