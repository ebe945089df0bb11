//! `destroy`, `pause`, `unpause`, `shutdown [-w]` and `reboot [-w]`.

use std::io::Write;
use std::time::Duration;

use dom0_abi::domain::{DOM0_ID, DomainState};
use dom0_abi::{DomainInfo, ShutdownReason, Status};

use super::{LIFECYCLE_ABI, XlError, connect_for, display_name, resolve};
use crate::device::{EventWait, Hypervisor, Opener};

/// How often `-w` looks at the domain (there is no event notification yet).
pub const WAIT_POLL: Duration = Duration::from_millis(100);

/// Refuses dom0 for `action`.
pub(super) fn refuse_dom0(info: &DomainInfo, action: &'static str) -> Result<(), XlError> {
    if info.domid == DOM0_ID {
        return Err(XlError::Dom0 { action });
    }
    Ok(())
}

/// `destroy NAME|ID`.
pub(super) fn destroy(opener: &dyn Opener, domain: &str) -> Result<(), XlError> {
    let mut hv = connect_for(opener, LIFECYCLE_ABI, "destroying a domain")?;
    let d = resolve(&mut *hv, domain)?;
    refuse_dom0(&d, "destroy")?;
    hv.domain_destroy(d.domid)?;
    Ok(())
}

/// `pause NAME|ID` (`pause`) or `unpause NAME|ID`.
pub(super) fn pause(opener: &dyn Opener, domain: &str, pause: bool) -> Result<(), XlError> {
    let (what, action) = if pause {
        ("pausing a domain", "pause")
    } else {
        ("unpausing a domain", "unpause")
    };
    let mut hv = connect_for(opener, LIFECYCLE_ABI, what)?;
    let d = resolve(&mut *hv, domain)?;
    refuse_dom0(&d, action)?;
    if pause {
        hv.domain_pause(d.domid)?;
    } else {
        hv.domain_unpause(d.domid)?;
    }
    Ok(())
}

/// `shutdown [-w] NAME|ID` (`Poweroff`) or `reboot [-w] NAME|ID` (`Reboot`):
/// asks the guest (an ACPI power-button press or reboot request) and, with
/// `wait`, waits until it has gone down.
pub(super) fn shutdown(
    opener: &dyn Opener,
    domain: &str,
    reason: ShutdownReason,
    wait: bool,
    err: &mut dyn Write,
) -> Result<(), XlError> {
    let (what, action) = match reason {
        ShutdownReason::Reboot => ("rebooting a domain", "reboot"),
        _ => ("shutting down a domain", "shut down"),
    };
    let mut hv = connect_for(opener, LIFECYCLE_ABI, what)?;
    let d = resolve(&mut *hv, domain)?;
    refuse_dom0(&d, action)?;
    hv.domain_shutdown(d.domid, reason)?;
    if !wait {
        return Ok(());
    }
    writeln!(err, "Waiting for domain {} to {action}", display_name(&d))?;
    let message = match wait_until_down(&mut *hv, d.domid, WAIT_POLL)? {
        Down::ShutDown(r) => format!(
            "Domain {} has shut down ({})",
            display_name(&d),
            reason_word(r)
        ),
        Down::Gone => match resolve(&mut *hv, d.name_str().unwrap_or("")) {
            // A monitor applied on_reboot = "restart".
            Ok(again) if reason == ShutdownReason::Reboot => {
                format!(
                    "Domain {} has rebooted as {}",
                    display_name(&d),
                    display_name(&again)
                )
            }
            _ => format!("Domain {} has been destroyed", display_name(&d)),
        },
    };
    writeln!(err, "{message}")?;
    Ok(())
}

/// How a domain went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// It is in state `SHUTDOWN` with this reason.
    ShutDown(ShutdownReason),
    /// It no longer exists (destroyed, for example by a monitor acting on
    /// `on_poweroff`).
    Gone,
}

/// The longest a wait for a domain's change sleeps on events before it
/// looks at the domain anyway.
pub const EVENT_WAIT_MAX: Duration = Duration::from_secs(10);

/// Sleeps until something may have happened to a domain: a hypervisor
/// event (ABI 1.2; taken, so the next wait sleeps again) or
/// [`EVENT_WAIT_MAX`]; without event support (`notify` turns false at the
/// first sign of that: an older hypervisor or driver, no notification
/// device) for `poll`.
pub fn idle(hv: &mut dyn Hypervisor, poll: Duration, notify: &mut bool) {
    if *notify {
        match hv.wait_events(Some(EVENT_WAIT_MAX)) {
            // An old driver without poll() reports readable at once: the
            // read that fails tells.
            Ok(EventWait::Ready) if hv.event_read(false).is_ok() => return,
            Ok(EventWait::TimedOut) => return,
            _ => *notify = false,
        }
    }
    std::thread::sleep(poll);
}

/// Waits until the domain is shut down or gone: on hypervisor events, or
/// looking every `poll` without them ([`idle`]).
///
/// # Errors
///
/// A device error other than `NoSuchDomain`.
pub fn wait_until_down(
    hv: &mut dyn Hypervisor,
    domid: u32,
    poll: Duration,
) -> Result<Down, XlError> {
    let mut notify = true;
    loop {
        if let Some(down) = down_state(hv, domid)? {
            return Ok(down);
        }
        idle(hv, poll, &mut notify);
    }
}

/// Whether the domain is down, and how; `None` while it runs or is paused.
///
/// # Errors
///
/// A device error other than `NoSuchDomain`.
pub fn down_state(hv: &mut dyn Hypervisor, domid: u32) -> Result<Option<Down>, XlError> {
    match hv.domain_info(domid) {
        Err(e) if e.status() == Some(Status::NoSuchDomain) => Ok(Some(Down::Gone)),
        Err(e) => Err(e.into()),
        Ok(info) => Ok(match info.state() {
            Ok(DomainState::Shutdown) => Some(Down::ShutDown(
                ShutdownReason::try_from(info.shutdown_reason).unwrap_or(ShutdownReason::None),
            )),
            Ok(DomainState::Dying) => Some(Down::Gone),
            _ => None,
        }),
    }
}

/// The word for a shutdown reason in messages.
#[must_use]
pub fn reason_word(reason: ShutdownReason) -> &'static str {
    match reason {
        ShutdownReason::None => "no reason given",
        ShutdownReason::Poweroff => "poweroff",
        ShutdownReason::Reboot => "reboot",
        ShutdownReason::Crash => "crash",
    }
}
