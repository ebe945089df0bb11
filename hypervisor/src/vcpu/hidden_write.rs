//! Bookkeeping for writes to memory a guest must not see.
//!
//! dom0's EPT maps every page of the hypervisor's memory and of the free pool
//! to one read-only page of all-ones, so reads there give `0xFF` without an
//! exit. A write faults (EPT violation, SDM Vol. 3C §29.3.3.2) and gives no
//! instruction length, so the backend lets the instruction complete instead
//! of decoding it: it points the faulting page at a scratch page (writable,
//! also all-ones), sets RFLAGS.TF and intercepts #DB, and when the single-step
//! trap arrives (SDM Vol. 3A §18.3.1.4) it puts the read-only mapping back and
//! refills the scratch page. The write lands in the scratch page and changes
//! nothing anybody can see. This module decides, per fault and per trap, what
//! the backend does; it holds no hardware state.
//!
//! While the step runs the guest's RFLAGS.IF is clear, so no interrupt is
//! delivered before the store executes: an interrupt taken there would push
//! TF into the interrupted context's frame, and a task switched out with it
//! would take the trap later, anywhere, leaving the step unfinished (the
//! page pointed at the scratch page and the other vCPUs retrying their
//! writes). If the vCPU still leaves the instruction without the trap (the
//! store itself faulted in the guest), its next exit finds RIP moved and
//! [`WriteSteps::abandon`] ends the step.

/// RFLAGS.TF (SDM Vol. 1 §3.4.3.3).
pub const RFLAGS_TF: u64 = 1 << 8;
/// RFLAGS.IF (SDM Vol. 1 §3.4.3.3).
pub const RFLAGS_IF: u64 = 1 << 9;

/// Pages one single step may touch: an access that crosses a page boundary
/// faults once per page before it completes.
pub const MAX_STEP_PAGES: usize = 4;

/// What the backend does about a write fault on a hidden page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Start a step: point the page at the scratch page, set TF, intercept
    /// #DB, and record the guest's own TF.
    Start,
    /// This vCPU's step faulted on one more page: point it at the scratch
    /// page too.
    Extend,
    /// Another vCPU is stepping: flush this CPU's EPT translations and enter
    /// again; the write faults again until that step ends.
    Retry,
    /// The instruction touched more pages than a step allows: stop the
    /// guest.
    TooManyPages,
}

/// The step in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The vCPU stepping.
    pub vcpu: usize,
    /// Guest-physical page addresses pointed at the scratch page.
    pages: [u64; MAX_STEP_PAGES],
    count: usize,
    /// The guest's RFLAGS.TF before the step.
    pub guest_tf: bool,
    /// The guest's RFLAGS.IF before the step (cleared while it runs).
    pub guest_if: bool,
    /// Where the writing instruction is.
    pub rip: u64,
}

impl Step {
    /// The pages to point back at the all-ones page.
    pub fn pages(&self) -> &[u64] {
        &self.pages[..self.count]
    }
}

/// The state shared by a domain's vCPUs.
#[derive(Debug, Default)]
pub struct WriteSteps {
    active: Option<Step>,
    dropped: u64,
}

impl WriteSteps {
    /// An idle tracker.
    pub const fn new() -> Self {
        Self {
            active: None,
            dropped: 0,
        }
    }

    /// vCPU `vcpu` faulted writing the hidden page at `page` (4 KiB
    /// aligned) at `rip` with RFLAGS = `rflags`.
    pub fn begin(&mut self, vcpu: usize, page: u64, rip: u64, rflags: u64) -> Begin {
        match &mut self.active {
            None => {
                let mut pages = [0; MAX_STEP_PAGES];
                pages[0] = page;
                let guest_tf = rflags & RFLAGS_TF != 0;
                let guest_if = rflags & RFLAGS_IF != 0;
                self.active = Some(Step {
                    vcpu,
                    pages,
                    count: 1,
                    guest_tf,
                    guest_if,
                    rip,
                });
                self.dropped += 1;
                Begin::Start
            }
            Some(step) if step.vcpu == vcpu => {
                if step.pages().contains(&page) {
                    // The mapping is in place; a stale translation on this
                    // CPU faulted. Flush and go again.
                    return Begin::Retry;
                }
                if step.count == MAX_STEP_PAGES {
                    return Begin::TooManyPages;
                }
                step.pages[step.count] = page;
                step.count += 1;
                Begin::Extend
            }
            Some(_) => Begin::Retry,
        }
    }

    /// A #DB trap arrived on `vcpu`: the step it finishes, if it is one.
    pub fn finish(&mut self, vcpu: usize) -> Option<Step> {
        match self.active {
            Some(step) if step.vcpu == vcpu => self.active.take(),
            _ => None,
        }
    }

    /// vCPU `vcpu` left the VM at `rip` without the trap: if it is stepping
    /// and RIP moved off the writing instruction, the step is over without
    /// its trap (the store faulted in the guest, which now runs its
    /// handler): the step, to undo. A step still at its instruction goes on.
    pub fn abandon(&mut self, vcpu: usize, rip: u64) -> Option<Step> {
        match self.active {
            Some(step) if step.vcpu == vcpu && step.rip != rip => self.active.take(),
            _ => None,
        }
    }

    /// Whether `vcpu` is stepping.
    pub fn is_stepping(&self, vcpu: usize) -> bool {
        self.active.is_some_and(|s| s.vcpu == vcpu)
    }

    /// Writes dropped so far (one per step).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the latest dropped write deserves a log line: the first
    /// eight, then one in every 1024.
    pub fn should_log(&self) -> bool {
        self.dropped <= 8 || self.dropped.is_multiple_of(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IF: u64 = RFLAGS_IF | 2;
    const TF: u64 = RFLAGS_TF | 2;

    #[test]
    fn a_step_starts_extends_and_finishes() {
        let mut w = WriteSteps::new();
        assert_eq!(w.begin(0, 0x5000, 0x10, IF), Begin::Start);
        assert!(w.is_stepping(0));
        assert_eq!(w.begin(0, 0x6000, 0x10, IF), Begin::Extend);
        assert_eq!(w.begin(0, 0x6000, 0x10, IF), Begin::Retry);
        let step = w.finish(0).unwrap();
        assert_eq!(step.pages(), [0x5000, 0x6000]);
        assert!(!step.guest_tf);
        assert!(step.guest_if);
        assert_eq!(step.rip, 0x10);
        assert!(!w.is_stepping(0));
        assert_eq!(w.finish(0), None);
        assert_eq!(w.dropped(), 1);
    }

    #[test]
    fn other_vcpus_wait_and_foreign_traps_are_not_ours() {
        let mut w = WriteSteps::new();
        assert_eq!(w.begin(1, 0x5000, 0x10, TF), Begin::Start);
        assert_eq!(w.begin(0, 0x5000, 0x10, IF), Begin::Retry);
        assert_eq!(w.begin(0, 0x9000, 0x20, IF), Begin::Retry);
        assert_eq!(w.finish(0), None, "a #DB on vCPU0 is the guest's own");
        let step = w.finish(1).unwrap();
        assert!(step.guest_tf);
        assert!(!step.guest_if);
        assert_eq!(w.begin(0, 0x9000, 0x20, IF), Begin::Start);
    }

    #[test]
    fn too_many_pages_is_refused() {
        let mut w = WriteSteps::new();
        assert_eq!(w.begin(0, 0, 0x10, 0), Begin::Start);
        for i in 1..MAX_STEP_PAGES as u64 {
            assert_eq!(w.begin(0, i << 12, 0x10, 0), Begin::Extend);
        }
        assert_eq!(w.begin(0, 0x10_0000, 0x10, 0), Begin::TooManyPages);
    }

    #[test]
    fn logging_is_rate_limited() {
        let mut w = WriteSteps::new();
        let mut logged = 0;
        for _ in 0..4096 {
            w.begin(0, 0x1000, 0x10, IF);
            if w.should_log() {
                logged += 1;
            }
            w.finish(0);
        }
        assert_eq!(w.dropped(), 4096);
        // 1..=8, then 1024, 2048, 3072, 4096.
        assert_eq!(logged, 12);
    }

    #[test]
    fn a_step_whose_instruction_faulted_is_abandoned() {
        let mut w = WriteSteps::new();
        assert_eq!(w.begin(0, 0x5000, 0x10, IF), Begin::Start);
        assert_eq!(w.abandon(1, 0x99), None, "not vCPU1's step");
        assert_eq!(w.abandon(0, 0x10), None, "still at the store");
        assert!(w.is_stepping(0));
        let step = w.abandon(0, 0xffff_8000_0000_1000).unwrap();
        assert_eq!(step.pages(), [0x5000]);
        assert!(!w.is_stepping(0));
        assert_eq!(
            w.begin(1, 0x5000, 0x10, IF),
            Begin::Start,
            "the others go on"
        );
    }
}
