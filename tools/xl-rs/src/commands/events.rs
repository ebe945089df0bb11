//! `xl-rs wait-event [--timeout SECONDS]`: sleeps until the hypervisor
//! raises an event (ABI 1.2: a domain created, shut down or destroyed, a
//! warning or error in its log) and prints what arrived.
//!
//! The wait is `poll(2)` on `/dev/hvctl`, woken by the notification
//! device's interrupt. Only events raised after the device was opened
//! count. Where the driver has no notification device (an ECAM-only
//! machine, see `docs/architecture.md`) it reads the events every
//! [`FALLBACK_POLL`] instead, and says so on stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use dom0_abi::AbiVersion;
use dom0_abi::event::event_names;

use super::{XlError, connect_for};
use crate::device::{EventWait, Events, Hypervisor, Opener};

/// The ABI version that brought events.
pub const EVENTS_ABI: AbiVersion = AbiVersion::new(1, 2);

/// How often events are read when there is no interrupt to wait for.
pub const FALLBACK_POLL: Duration = Duration::from_millis(500);

/// Waits for the next events on an open device: `Ok(Some)` with them,
/// `Ok(None)` at the deadline. `fallback` is called (once) when there is
/// no notification interrupt and the wait polls instead.
///
/// # Errors
///
/// Any device error.
pub fn next_events(
    hv: &mut dyn Hypervisor,
    timeout: Option<Duration>,
    fallback: &mut dyn FnMut(),
) -> Result<Option<Events>, XlError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut events = hv.event_read(false)?;
    let mut polling = !events.notify;
    let mut told = false;
    while events.pending == 0 {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Ok(None),
            },
            None => None,
        };
        if !polling && hv.wait_events(left)? == EventWait::Unsupported {
            polling = true;
        }
        if polling {
            if !told {
                fallback();
                told = true;
            }
            std::thread::sleep(left.map_or(FALLBACK_POLL, |l| l.min(FALLBACK_POLL)));
        }
        events = hv.event_read(false)?;
    }
    Ok(Some(events))
}

/// Prints `events` as `key : value` lines.
///
/// # Errors
///
/// When the output cannot be written.
pub fn print_events(events: &Events, out: &mut dyn Write) -> std::io::Result<()> {
    let names: Vec<&str> = event_names(events.pending).collect();
    writeln!(out, "events     : {}", names.join(" "))?;
    writeln!(out, "pending    : {:#x}", events.pending)?;
    writeln!(out, "raised     : {}", events.raised)?;
    writeln!(out, "interrupts : {}", events.interrupts)?;
    writeln!(out, "handled    : {}", events.handled)?;
    writeln!(
        out,
        "notify     : {}",
        if events.notify { "yes" } else { "no" }
    )
}

/// `wait-event`.
pub(super) fn wait_event(
    opener: &dyn Opener,
    timeout: Option<Duration>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), XlError> {
    let mut hv = connect_for(opener, EVENTS_ABI, "waiting for hypervisor events")?;
    let mut fallback = || {
        let _ = writeln!(
            err,
            "xl-rs: warning: the hvctl driver has no notification device, so events are read every {} ms instead of waking on their interrupt",
            FALLBACK_POLL.as_millis()
        );
    };
    match next_events(&mut *hv, timeout, &mut fallback)? {
        Some(events) => Ok(print_events(&events, out)?),
        None => Err(XlError::EventTimeout {
            timeout: timeout.unwrap_or_default(),
        }),
    }
}
