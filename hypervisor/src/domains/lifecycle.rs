//! A domain's lifecycle (the states of `dom0_abi::DomainState`):
//!
//! ```text
//!  create ──► Paused (never ran) ──unpause──► Running ◄──pause/unpause──► Paused
//!                  │                            │
//!                  │                    guest powers off / reboots / crashes
//!                  │                            ▼
//!                  └──────────destroy──────► Shutdown(reason) ──destroy──► Dying ──► gone
//! ```
//!
//! Loading (copying an image in, setting the boot vCPU's entry) is only
//! allowed before the first unpause; a domain that shut down stays, with its
//! reason, until it is destroyed (as in Xen, for `xl list` and `shutdown -w`).
//!
//! The toolstack's shutdown request ([`Lifecycle::request`]) reaches the
//! guest as a power-button press, to which a guest can only answer by
//! powering off. A reboot request is remembered, so that the power-off
//! that answers it is reported as a reboot (and `on_reboot` applies), as a
//! Xen guest reports the reason it was asked for.

use dom0_abi::{DomainState, ShutdownReason, Status};

/// The lifecycle of one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    state: DomainState,
    reason: ShutdownReason,
    requested: ShutdownReason,
    ever_ran: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// A domain just created: paused, never run.
    pub const fn new() -> Self {
        Self {
            state: DomainState::Paused,
            reason: ShutdownReason::None,
            requested: ShutdownReason::None,
            ever_ran: false,
        }
    }

    /// The state, as the ABI reports it.
    pub fn state(&self) -> DomainState {
        self.state
    }

    /// Why it shut down (`None` unless the state is `Shutdown`).
    pub fn reason(&self) -> ShutdownReason {
        self.reason
    }

    /// Whether its vCPUs may run now.
    pub fn is_running(&self) -> bool {
        self.state == DomainState::Running
    }

    /// Whether its memory and boot vCPU may still be loaded.
    pub fn is_loadable(&self) -> bool {
        !self.ever_ran && self.state == DomainState::Paused
    }

    /// Whether it ever ran (its vCPUs exist on their CPUs).
    pub fn ever_ran(&self) -> bool {
        self.ever_ran
    }

    /// The toolstack pauses it.
    pub fn pause(&mut self) -> Result<(), Status> {
        match self.state {
            DomainState::Running | DomainState::Blocked | DomainState::Paused => {
                self.state = DomainState::Paused;
                Ok(())
            }
            DomainState::Shutdown | DomainState::Dying => Err(Status::BadState),
        }
    }

    /// The toolstack unpauses it; returns whether this is its first run.
    pub fn unpause(&mut self) -> Result<bool, Status> {
        match self.state {
            DomainState::Paused | DomainState::Running | DomainState::Blocked => {
                self.state = DomainState::Running;
                let first = !self.ever_ran;
                self.ever_ran = true;
                Ok(first)
            }
            DomainState::Shutdown | DomainState::Dying => Err(Status::BadState),
        }
    }

    /// The toolstack asks the guest to power off or reboot (`reason` must be
    /// a request, see `ShutdownReason::is_request`). Refused unless the
    /// guest has run and has not shut down (a paused guest takes the press
    /// when it runs again). The latest request wins.
    pub fn request(&mut self, reason: ShutdownReason) -> Result<(), Status> {
        if !reason.is_request() {
            return Err(Status::InvalidArgument);
        }
        if !self.ever_ran || matches!(self.state, DomainState::Shutdown | DomainState::Dying) {
            return Err(Status::BadState);
        }
        self.requested = reason;
        Ok(())
    }

    /// What the toolstack last asked for (`None`: nothing).
    pub fn requested(&self) -> ShutdownReason {
        self.requested
    }

    /// The guest powered off, rebooted or crashed. The first reason wins. A
    /// power-off that answers a reboot request counts as a reboot.
    pub fn shut_down(&mut self, reason: ShutdownReason) {
        if matches!(self.state, DomainState::Shutdown | DomainState::Dying)
            || reason == ShutdownReason::None
        {
            return;
        }
        self.state = DomainState::Shutdown;
        self.reason =
            if reason == ShutdownReason::Poweroff && self.requested == ShutdownReason::Reboot {
                ShutdownReason::Reboot
            } else {
                reason
            };
    }

    /// The toolstack destroys it: from any state but `Dying`.
    pub fn destroy(&mut self) -> Result<(), Status> {
        if self.state == DomainState::Dying {
            return Err(Status::BadState);
        }
        self.state = DomainState::Dying;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_runs_pauses_and_shuts_down() {
        let mut l = Lifecycle::new();
        assert_eq!(l.state(), DomainState::Paused);
        assert!(l.is_loadable());
        assert_eq!(l.unpause(), Ok(true));
        assert!(!l.is_loadable());
        assert!(l.is_running());
        assert_eq!(l.pause(), Ok(()));
        assert!(!l.is_running());
        assert!(!l.is_loadable(), "it ran once: no more loading");
        assert_eq!(l.unpause(), Ok(false));
        l.shut_down(ShutdownReason::Poweroff);
        l.shut_down(ShutdownReason::Crash);
        assert_eq!(
            (l.state(), l.reason()),
            (DomainState::Shutdown, ShutdownReason::Poweroff)
        );
        assert_eq!(l.unpause(), Err(Status::BadState));
        assert_eq!(l.pause(), Err(Status::BadState));
        assert_eq!(l.destroy(), Ok(()));
        assert_eq!(l.destroy(), Err(Status::BadState));
        l.shut_down(ShutdownReason::Reboot);
        assert_eq!(l.state(), DomainState::Dying);
    }

    #[test]
    fn a_paused_domain_can_be_destroyed_before_it_ran() {
        let mut l = Lifecycle::new();
        assert_eq!(l.destroy(), Ok(()));
        assert!(!l.ever_ran());
    }

    #[test]
    fn a_reboot_request_turns_the_guests_power_off_into_a_reboot() {
        let mut l = Lifecycle::new();
        assert_eq!(
            l.request(ShutdownReason::Reboot),
            Err(Status::BadState),
            "never ran"
        );
        l.unpause().unwrap();
        assert_eq!(
            l.request(ShutdownReason::Crash),
            Err(Status::InvalidArgument)
        );
        assert_eq!(
            l.request(ShutdownReason::None),
            Err(Status::InvalidArgument)
        );
        l.request(ShutdownReason::Reboot).unwrap();
        assert_eq!(l.requested(), ShutdownReason::Reboot);
        l.shut_down(ShutdownReason::Poweroff);
        assert_eq!(
            (l.state(), l.reason()),
            (DomainState::Shutdown, ShutdownReason::Reboot)
        );
        assert_eq!(
            l.request(ShutdownReason::Poweroff),
            Err(Status::BadState),
            "already down"
        );
    }

    #[test]
    fn a_crash_stays_a_crash_and_power_off_requests_change_nothing() {
        let mut l = Lifecycle::new();
        l.unpause().unwrap();
        l.request(ShutdownReason::Reboot).unwrap();
        l.shut_down(ShutdownReason::Crash);
        assert_eq!(l.reason(), ShutdownReason::Crash);
        let mut l = Lifecycle::new();
        l.unpause().unwrap();
        l.pause().unwrap();
        l.request(ShutdownReason::Poweroff).unwrap();
        l.shut_down(ShutdownReason::Poweroff);
        assert_eq!(l.reason(), ShutdownReason::Poweroff);
    }
}
