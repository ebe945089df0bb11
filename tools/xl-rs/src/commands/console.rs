//! `console NAME|ID [--until REGEX] [--timeout SECONDS]`: the domain's
//! console (its emulated 16550 UART at 0x3F8) on the terminal.
//!
//! Output is copied to stdout as the guest sends it; what is typed goes to
//! the guest. When stdin is a terminal it is put in raw mode (restored on
//! exit), so Ctrl-C and the like reach the guest; Ctrl-] (0x1D) detaches.
//! When stdin is not a terminal its bytes are still forwarded until it ends
//! (so `printf 'root\n' | xl-rs console g` types a line), and the output
//! keeps streaming after that. The session ends on Ctrl-], when the domain
//! shuts down or is destroyed (after its last output), when `--until`'s
//! pattern appears in the output, or after `--timeout`.
//!
//! The ABI has no event notification yet, so the console is polled: again
//! at once while output flows, every [`IDLE_POLL`] when it is quiet.

use std::io::Write;
use std::time::Duration;

use dom0_abi::Status;
use regex::bytes::Regex;

use super::control::{Down, down_state};
use super::{LIFECYCLE_ABI, XlError, connect_for, resolve};
use crate::cli::ConsoleArgs;
use crate::device::{Hypervisor, Opener};
use crate::terminal::{ConsoleInput, Input};

/// The byte that detaches: Ctrl-] (as `telnet` and `xl console` use).
pub const DETACH: u8 = 0x1D;
/// Bytes asked for per `CONSOLE_READ`.
pub const READ_CHUNK: usize = 4096;
/// How long to wait for input while the console is quiet.
pub const IDLE_POLL: Duration = Duration::from_millis(20);
/// How often the domain's state is looked at.
pub const STATE_POLL: Duration = Duration::from_millis(250);
/// How much recent output `--until` matches against (a match must lie
/// within this many bytes).
pub const UNTIL_WINDOW: usize = 64 << 10;

/// How a console session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Ctrl-] was typed.
    Detached,
    /// The `--until` pattern appeared.
    Matched,
    /// The domain went down (all its output was copied first).
    Down(Down),
    /// `--timeout` passed.
    TimedOut,
}

/// `console NAME|ID`: finds the domain and attaches to it.
pub(super) fn attach_by_name(
    opener: &dyn Opener,
    args: &ConsoleArgs,
    out: &mut dyn Write,
) -> Result<(), XlError> {
    let mut hv = connect_for(opener, LIFECYCLE_ABI, "attaching to a domain's console")?;
    let info = resolve(&mut *hv, &args.domain)?;
    super::control::refuse_dom0(&info, "attach to the console of")?;
    let mut input = opener.console_input().map_err(XlError::Terminal)?;
    attach(&mut *hv, info.domid, &args.domain, args, &mut *input, out)
}

/// Runs a session on `domid` and turns how it ended into a result.
pub(super) fn attach(
    hv: &mut dyn Hypervisor,
    domid: u32,
    domain: &str,
    args: &ConsoleArgs,
    input: &mut dyn ConsoleInput,
    out: &mut dyn Write,
) -> Result<(), XlError> {
    let ended = session(hv, domid, input, out, args.until.as_ref(), args.timeout)?;
    let Some(pattern) = &args.until else {
        return Ok(());
    };
    let pattern = pattern.as_str().to_owned();
    match ended {
        Ended::Detached | Ended::Matched => Ok(()),
        Ended::TimedOut => Err(XlError::ConsoleTimeout {
            pattern,
            timeout: args.timeout.unwrap_or_default(),
        }),
        Ended::Down(down) => Err(XlError::ConsoleEnded {
            domain: domain.to_owned(),
            how: match down {
                Down::ShutDown(_) => "shut down",
                Down::Gone => "was destroyed",
            },
            pattern,
        }),
    }
}

/// Copies the console of `domid` to `out` and `input` to the console until
/// the session ends.
///
/// # Errors
///
/// A device error (other than the domain disappearing), or an I/O error on
/// `out` or the input.
pub fn session(
    hv: &mut dyn Hypervisor,
    domid: u32,
    input: &mut dyn ConsoleInput,
    out: &mut dyn Write,
    until: Option<&Regex>,
    timeout: Option<Duration>,
) -> Result<Ended, XlError> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut seen: Vec<u8> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut down: Option<Down> = None;
    let mut next_state_check = Duration::ZERO;
    loop {
        let n = match hv.console_read(domid, &mut buf) {
            Ok(n) => n,
            Err(e) if e.status() == Some(Status::NoSuchDomain) => {
                return Ok(Ended::Down(Down::Gone));
            }
            Err(e) => return Err(e.into()),
        };
        if n > 0 {
            out.write_all(&buf[..n])?;
            out.flush()?;
            if let Some(re) = until {
                seen.extend_from_slice(&buf[..n]);
                if re.is_match(&seen) {
                    return Ok(Ended::Matched);
                }
                if seen.len() > 2 * UNTIL_WINDOW {
                    seen.drain(..seen.len() - UNTIL_WINDOW);
                }
            }
        } else if let Some(down) = down {
            // Down, and its last output copied.
            return Ok(Ended::Down(down));
        }

        if !pending.is_empty() {
            let taken = hv.console_write(domid, &pending)?;
            pending.drain(..taken);
        }
        let now = input.elapsed();
        if timeout.is_some_and(|t| now >= t) {
            return Ok(Ended::TimedOut);
        }
        if down.is_none() && now >= next_state_check {
            down = down_state(hv, domid)?;
            next_state_check = now + STATE_POLL;
        }
        let wait = if n > 0 || down.is_some() {
            Duration::ZERO
        } else {
            IDLE_POLL
        };
        if let Input::Bytes(bytes) = input.poll_input(wait)? {
            if let Some(at) = bytes.iter().position(|&b| b == DETACH) {
                pending.extend_from_slice(&bytes[..at]);
                if !pending.is_empty() {
                    // Best effort: what the UART takes now.
                    let _ = hv.console_write(domid, &pending);
                }
                return Ok(Ended::Detached);
            }
            pending.extend_from_slice(&bytes);
        }
    }
}
