//! Hypervisor events for dom0 (ABI 1.2, `dom0_abi::event`): the mask of
//! pending events and two counters, kept in atomics so that any CPU can
//! raise an event at any time (an exit handler, the logger) without a lock
//! and without a way to fail.
//!
//! Raising an event that is already pending only counts it: the
//! notification device interrupts dom0 when a bit *becomes* pending, and
//! dom0 reads and clears the mask ([`Events::read`]) before it waits again,
//! so every event is either seen by that read or interrupts anew.

use core::sync::atomic::{AtomicU64, Ordering};

use dom0_abi::event::EVENTS_ALL;

/// The pending mask and the counters.
#[derive(Debug)]
pub struct Events {
    pending: AtomicU64,
    raised: AtomicU64,
    interrupts: AtomicU64,
}

/// What [`Events::read`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventSnapshot {
    /// The pending `dom0_abi::event` bits.
    pub pending: u64,
    /// Events raised since boot.
    pub raised: u64,
    /// Notification interrupts sent since boot.
    pub interrupts: u64,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// Nothing pending, nothing counted.
    pub const fn new() -> Self {
        Self {
            pending: AtomicU64::new(0),
            raised: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
        }
    }

    /// Makes `bits` pending (bits the ABI does not define are ignored).
    /// Returns whether one of them was not pending before: then the
    /// notification device should signal.
    pub fn raise(&self, bits: u64) -> bool {
        let bits = bits & EVENTS_ALL;
        if bits == 0 {
            return false;
        }
        self.raised.fetch_add(1, Ordering::Relaxed);
        let before = self.pending.fetch_or(bits, Ordering::AcqRel);
        before & bits != bits
    }

    /// Counts an interrupt sent to dom0.
    pub fn count_interrupt(&self) {
        self.interrupts.fetch_add(1, Ordering::Relaxed);
    }

    /// The pending bits and the counters; with `clear`, the bits returned
    /// are no longer pending (atomically: an event raised meanwhile is
    /// either returned or stays pending).
    pub fn read(&self, clear: bool) -> EventSnapshot {
        let pending = if clear {
            self.pending.swap(0, Ordering::AcqRel)
        } else {
            self.pending.load(Ordering::Acquire)
        };
        EventSnapshot {
            pending,
            raised: self.raised.load(Ordering::Relaxed),
            interrupts: self.interrupts.load(Ordering::Relaxed),
        }
    }
}

/// The hypervisor's events.
pub static EVENTS: Events = Events::new();

#[cfg(test)]
mod tests {
    use super::*;
    use dom0_abi::event::{EVENT_DOMAIN_CREATED, EVENT_DOMAIN_DESTROYED, EVENT_LOG};

    #[test]
    fn only_newly_pending_bits_signal() {
        let e = Events::new();
        assert!(e.raise(EVENT_DOMAIN_CREATED));
        assert!(!e.raise(EVENT_DOMAIN_CREATED), "already pending");
        assert!(e.raise(EVENT_DOMAIN_CREATED | EVENT_LOG), "LOG is new");
        assert!(!e.raise(1 << 40), "undefined bits are ignored");
        assert!(!e.raise(0));
        let s = e.read(false);
        assert_eq!(s.pending, EVENT_DOMAIN_CREATED | EVENT_LOG);
        assert_eq!(s.raised, 3);
        assert_eq!(e.read(true).pending, EVENT_DOMAIN_CREATED | EVENT_LOG);
        assert_eq!(e.read(true).pending, 0);
        assert!(
            e.raise(EVENT_DOMAIN_CREATED),
            "pending again after the read"
        );
        e.count_interrupt();
        assert_eq!(e.read(false).interrupts, 1);
    }

    /// Raises from several threads against a reader that clears: every
    /// bit raised is read exactly when it was newly pending.
    #[test]
    fn concurrent_raises_are_never_lost() {
        let e = std::sync::Arc::new(Events::new());
        let writers: std::vec::Vec<_> = [EVENT_DOMAIN_CREATED, EVENT_DOMAIN_DESTROYED, EVENT_LOG]
            .into_iter()
            .map(|bit| {
                let e = e.clone();
                std::thread::spawn(move || (0..10_000).filter(|_| e.raise(bit)).count())
            })
            .collect();
        let mut seen = 0usize;
        for _ in 0..10_000 {
            seen += e.read(true).pending.count_ones() as usize;
        }
        let signalled: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        seen += e.read(true).pending.count_ones() as usize;
        assert_eq!(seen, signalled, "each newly pending bit is read once");
        assert_eq!(e.read(false).raised, 30_000);
    }
}
