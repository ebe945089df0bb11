//! The APIC timer (SDM §12.5.4): one-shot, periodic and TSC-deadline modes
//! against an abstract clock, the guest's TSC.
//!
//! In one-shot and periodic mode the counter decrements at the bus frequency
//! divided by the divide configuration. Rather than ticking, we keep an
//! *anchor* TSC and the number of counts from the anchor to the next expiry.
//! A periodic timer adds the initial count at each expiry without moving the
//! anchor, so rounding never accumulates: the k-th expiry is exactly
//! `anchor + ceil(k * initial * divide * tsc_khz / bus_khz)`.

use super::regs;
use super::state::VLapic;
use super::{Action, Actions, ApicMode};

/// LVT timer mode (bits 18:17, SDM §12.5.4, Figure 12-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

impl TimerMode {
    /// Decodes LVT timer bits 18:17. The reserved encoding 11b behaves as
    /// one-shot here.
    fn of(lvt: u32) -> Self {
        match (lvt >> regs::LVT_TIMER_MODE_SHIFT) & 3 {
            1 => Self::Periodic,
            2 => Self::TscDeadline,
            _ => Self::OneShot,
        }
    }
}

/// The timer's position in time (the programmed values live in the
/// register file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TimerState {
    /// One-shot/periodic: counting down.
    armed: bool,
    /// TSC from which counts are measured.
    anchor: u64,
    /// Counts from `anchor` to the next expiry.
    counts_to_expiry: u128,
    /// TSC-deadline mode: the armed deadline, 0 when disarmed.
    tsc_deadline: u64,
}

/// The divisor encoded by the divide configuration register: bits 3, 1:0
/// (SDM §12.5.4, Figure 12-10): 000b → 2, 001b → 4, …, 110b → 128, 111b → 1.
fn divisor(dcr: u32) -> u128 {
    let code = ((dcr >> 1) & 0b100) | (dcr & 0b11);
    if code == 0b111 { 1 } else { 2 << code }
}

impl VLapic {
    pub(super) fn timer_mode(&self) -> TimerMode {
        TimerMode::of(self.regs.get(regs::LVT_TIMER))
    }

    fn divisor(&self) -> u128 {
        divisor(self.regs.get(regs::TIMER_DIVIDE))
    }

    /// TSC ticks for `counts` timer counts, rounded up.
    fn tsc_for_counts(&self, counts: u128) -> u128 {
        let num = counts * self.divisor() * u128::from(self.cfg.tsc_khz);
        num.div_ceil(u128::from(self.cfg.bus_khz))
    }

    /// Whole timer counts in `ticks` TSC ticks, rounded down.
    fn counts_in_tsc(&self, ticks: u64) -> u128 {
        u128::from(ticks) * u128::from(self.cfg.bus_khz)
            / (u128::from(self.cfg.tsc_khz) * self.divisor())
    }

    fn expiry(&self) -> u64 {
        let at = u128::from(self.timer.anchor) + self.tsc_for_counts(self.timer.counts_to_expiry);
        u64::try_from(at).unwrap_or(u64::MAX)
    }

    /// When [`Self::on_time`] must next be called, in guest TSC ticks; `None`
    /// when the timer is stopped. (It is returned even when the LVT entry is
    /// masked: a masked timer still counts and re-arms.)
    pub fn next_timer_deadline(&self) -> Option<u64> {
        match self.timer_mode() {
            TimerMode::TscDeadline => {
                (self.timer.tsc_deadline != 0).then_some(self.timer.tsc_deadline)
            }
            _ => self.timer.armed.then(|| self.expiry()),
        }
    }

    /// Advances the timer to `now`. If it expired, it fires: its vector is
    /// made pending unless the LVT entry is masked, and it is returned if so.
    /// A periodic timer re-arms from its previous expiry (no drift); periods
    /// missed entirely merge into this one interrupt. A one-shot timer stops
    /// with current count 0; a TSC deadline disarms and reads 0 (SDM
    /// §12.5.4.1).
    pub fn on_time(&mut self, now: u64) -> Option<u8> {
        match self.timer_mode() {
            TimerMode::TscDeadline => {
                if self.timer.tsc_deadline == 0 || now < self.timer.tsc_deadline {
                    return None;
                }
                self.timer.tsc_deadline = 0;
            }
            mode => {
                if !self.timer.armed || now < self.expiry() {
                    return None;
                }
                let initial = u128::from(self.regs.get(regs::TIMER_INITIAL));
                if mode == TimerMode::Periodic && initial != 0 {
                    let elapsed = self.counts_in_tsc(now - self.timer.anchor);
                    let missed = (elapsed - self.timer.counts_to_expiry) / initial;
                    self.timer.counts_to_expiry += (missed + 1) * initial;
                } else {
                    self.timer.armed = false;
                }
            }
        }
        self.fire_timer()
    }

    fn fire_timer(&mut self) -> Option<u8> {
        let lvt = self.regs.get(regs::LVT_TIMER);
        if lvt & regs::LVT_MASKED != 0 {
            return None;
        }
        let vector = lvt as u8;
        matches!(
            self.accept_interrupt(vector, false),
            super::Acceptance::Accepted | super::Acceptance::AlreadyPending
        )
        .then_some(vector)
    }

    /// The current-count register at `now` (SDM §12.5.4): the counts left
    /// until the next expiry; 0 when stopped or in TSC-deadline mode.
    pub fn timer_current_count(&self, now: u64) -> u32 {
        if !self.timer.armed || self.timer_mode() == TimerMode::TscDeadline {
            return 0;
        }
        let elapsed = self.counts_in_tsc(now.saturating_sub(self.timer.anchor));
        let to_expiry = self.timer.counts_to_expiry;
        if elapsed < to_expiry {
            // Bounded by the initial count, which is a u32.
            return (to_expiry - elapsed).min(u128::from(u32::MAX)) as u32;
        }
        // Expired, but `on_time` has not been called yet.
        let initial = u128::from(self.regs.get(regs::TIMER_INITIAL));
        if self.timer_mode() == TimerMode::Periodic && initial != 0 {
            (initial - (elapsed - to_expiry) % initial) as u32
        } else {
            0
        }
    }

    /// A write of the initial-count register: (re)starts the count-down from
    /// `value` at `now`, or stops the timer if `value` is 0. Ignored in
    /// TSC-deadline mode (SDM §12.5.4.1).
    pub(super) fn write_timer_initial(&mut self, value: u32, now: u64) -> Actions {
        if self.timer_mode() == TimerMode::TscDeadline {
            return Actions::none();
        }
        self.on_time(now);
        self.regs.set(regs::TIMER_INITIAL, value);
        self.timer.armed = value != 0;
        self.timer.anchor = now;
        self.timer.counts_to_expiry = u128::from(value);
        timer_changed()
    }

    /// A write of the divide configuration: a running count-down keeps its
    /// current count and continues at the new rate.
    pub(super) fn write_timer_divide(&mut self, value: u32, now: u64) -> Actions {
        self.on_time(now);
        let remaining = self.timer_current_count(now);
        self.regs.set(regs::TIMER_DIVIDE, value & 0b1011);
        if self.timer.armed {
            self.timer.anchor = now;
            self.timer.counts_to_expiry = u128::from(remaining);
        }
        timer_changed()
    }

    /// A write of the LVT timer entry (already masked to its writable bits).
    /// Switching between TSC-deadline mode and the other modes disarms the
    /// timer (SDM §12.5.4.1); one-shot ↔ periodic takes effect at the next
    /// expiry.
    pub(super) fn write_lvt_timer(&mut self, value: u32, now: u64) -> Actions {
        self.on_time(now);
        let old = self.timer_mode();
        self.regs.set(regs::LVT_TIMER, value);
        let new = self.timer_mode();
        if (old == TimerMode::TscDeadline) != (new == TimerMode::TscDeadline) {
            self.regs.set(regs::TIMER_INITIAL, 0);
            self.timer = TimerState::default();
        }
        timer_changed()
    }

    /// RDMSR IA32_TSC_DEADLINE: the armed deadline, 0 if disarmed or not in
    /// TSC-deadline mode.
    pub fn tsc_deadline_read(&self) -> u64 {
        if self.timer_mode() == TimerMode::TscDeadline {
            self.timer.tsc_deadline
        } else {
            0
        }
    }

    /// WRMSR IA32_TSC_DEADLINE (SDM §12.5.4.1): arms the timer for TSC
    /// `value` (0 disarms); a deadline already past fires at once. Ignored
    /// unless the APIC is enabled and in TSC-deadline mode.
    pub fn tsc_deadline_write(&mut self, value: u64, now: u64) -> Actions {
        if self.mode() == ApicMode::Disabled || self.timer_mode() != TimerMode::TscDeadline {
            return Actions::none();
        }
        self.timer.tsc_deadline = value;
        self.on_time(now);
        timer_changed()
    }
}

fn timer_changed() -> Actions {
    let mut actions = Actions::none();
    actions.push(Action::TimerChanged);
    actions
}

#[cfg(test)]
mod tests {
    use super::divisor;

    #[test]
    fn divide_configuration_encoding() {
        let expect = [(0b0000, 2), (0b0001, 4), (0b0010, 8), (0b0011, 16)];
        for (dcr, div) in expect {
            assert_eq!(divisor(dcr), div);
        }
        let expect = [(0b1000, 32), (0b1001, 64), (0b1010, 128), (0b1011, 1)];
        for (dcr, div) in expect {
            assert_eq!(divisor(dcr), div);
        }
    }
}
