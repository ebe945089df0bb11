//! A set of physical CPUs as a 64-bit mask: the hard affinity of a vCPU,
//! and the set of CPUs a scheduling call asks the caller to kick.
//!
//! CPU numbers at or above [`MAX_CPUS`] are simply never members: adding
//! one does nothing and asking for one answers "no", so a bad CPU number in
//! a request can be refused by the caller as an empty set instead of a
//! panic.

/// The most CPUs a set can name.
pub const MAX_CPUS: usize = 64;

/// A set of CPUs 0..64; bit `n` is CPU `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuSet(u64);

impl CpuSet {
    /// No CPU.
    pub const EMPTY: CpuSet = CpuSet(0);

    /// The set whose mask is `bits`.
    pub const fn from_bits(bits: u64) -> Self {
        CpuSet(bits)
    }

    /// The mask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// CPUs `0..n` (all 64 when `n >= 64`).
    pub const fn all(n: usize) -> Self {
        if n >= MAX_CPUS {
            CpuSet(u64::MAX)
        } else {
            CpuSet((1u64 << n) - 1)
        }
    }

    /// Only `cpu` (empty when `cpu` is out of range).
    pub const fn single(cpu: usize) -> Self {
        if cpu < MAX_CPUS {
            CpuSet(1 << cpu)
        } else {
            CpuSet::EMPTY
        }
    }

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.0 & (1 << cpu) != 0
    }

    /// Whether the set has no CPU.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many CPUs it has.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The set with `cpu` added.
    pub const fn with(self, cpu: usize) -> Self {
        CpuSet(self.0 | CpuSet::single(cpu).0)
    }

    /// The set with `cpu` taken out.
    pub const fn without(self, cpu: usize) -> Self {
        CpuSet(self.0 & !CpuSet::single(cpu).0)
    }

    /// Adds `cpu`.
    pub fn insert(&mut self, cpu: usize) {
        *self = self.with(cpu);
    }

    /// The CPUs in both sets.
    pub const fn intersection(self, other: CpuSet) -> Self {
        CpuSet(self.0 & other.0)
    }

    /// The CPUs in either set.
    pub const fn union(self, other: CpuSet) -> Self {
        CpuSet(self.0 | other.0)
    }

    /// The lowest CPU in the set.
    pub const fn first(self) -> Option<usize> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0.trailing_zeros() as usize)
        }
    }

    /// The CPUs in increasing order.
    pub const fn iter(self) -> Iter {
        Iter(self.0)
    }
}

/// The CPUs of a [`CpuSet`], lowest first.
#[derive(Debug, Clone)]
pub struct Iter(u64);

impl Iterator for Iter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let cpu = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(cpu)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.count_ones() as usize;
        (n, Some(n))
    }
}

impl IntoIterator for CpuSet {
    type Item = usize;
    type IntoIter = Iter;

    fn into_iter(self) -> Iter {
        self.iter()
    }
}

impl FromIterator<usize> for CpuSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        iter.into_iter().fold(CpuSet::EMPTY, CpuSet::with)
    }
}
