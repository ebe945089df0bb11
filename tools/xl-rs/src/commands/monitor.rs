//! The domain monitor: applies `on_poweroff`, `on_reboot` and `on_crash`
//! when a domain shuts down, as xl's background process does.
//!
//! The hypervisor only records that a guest powered off, rebooted or
//! crashed (state `SHUTDOWN` and its reason); what happens next is the
//! toolstack's decision. `create` therefore leaves a process behind
//! (`xl-rs _monitor --domid N FILE [key=value...]`, its own process group,
//! stdin and stdout closed, stderr appended to
//! `/var/log/xl-rs/domain-ID.log`)
//! that looks at the domain whenever the hypervisor raises an event (it
//! sleeps in `poll(2)` on `/dev/hvctl`, ABI 1.2, and looks at least every
//! [`EVENT_WAIT_MAX`] anyway) or, where there is no notification device
//! (an older hypervisor or driver, an ECAM-only machine), every
//! [`MONITOR_POLL`]; once the domain is shut down:
//!
//! - `destroy`: destroys it, and ends;
//! - `restart`: destroys it and builds it again from the same
//!   configuration (the kernel and ramdisk files are read again), then
//!   watches the new domain;
//! - `preserve`: leaves it shut down, and ends.
//!
//! It also ends when the domain is destroyed by someone else. `create -e`
//! leaves no monitor; `create -F` runs it in the foreground.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dom0_abi::ShutdownReason;

use super::control::{Down, down_state, idle, reason_word};
use super::create::{load_config, start};
use super::{LIFECYCLE_ABI, XlError, connect_for};
use crate::config::{DomainConfig, ShutdownAction};
use crate::device::{Hypervisor, Opener};

/// How often the monitor looks at its domain without event notification.
pub const MONITOR_POLL: Duration = Duration::from_millis(500);

pub use super::control::EVENT_WAIT_MAX;

/// The hidden subcommand the monitor process runs.
pub const MONITOR_SUBCOMMAND: &str = "_monitor";

/// Where monitors write what they do (one file per domain name).
pub const MONITOR_LOG_DIR: &str = "/var/log/xl-rs";

/// What a monitor process is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRequest {
    /// The domain to watch.
    pub domid: u32,
    /// Its configuration file.
    pub file: PathBuf,
    /// The `key=value` overrides it was created with.
    pub overrides: Vec<String>,
}

impl MonitorRequest {
    /// The monitor process's arguments (after the program name).
    #[must_use]
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            MONITOR_SUBCOMMAND.into(),
            "--domid".into(),
            self.domid.to_string().into(),
            self.file.clone().into(),
        ];
        args.extend(self.overrides.iter().map(OsString::from));
        args
    }
}

/// Starts `xl-rs _monitor ...` in the background: this executable again,
/// in a process group of its own (a Ctrl-C at the terminal does not reach
/// it), stdin and stdout closed, stderr appended to
/// `/var/log/xl-rs/<domain id>.log` when that can be opened.
///
/// # Errors
///
/// When the process cannot be started.
pub fn spawn_background(request: &MonitorRequest) -> io::Result<()> {
    use std::os::unix::process::CommandExt as _;

    // /proc/self/exe, or argv[0] where /proc is not mounted.
    let exe = std::env::current_exe()
        .or_else(|e| std::env::args_os().next().map(PathBuf::from).ok_or(e))?;
    let log = std::fs::create_dir_all(MONITOR_LOG_DIR)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(MONITOR_LOG_DIR).join(format!("domain-{}.log", request.domid)))
        })
        .map_or_else(|_| Stdio::null(), Stdio::from);
    // The child is not waited for: when this process exits it is adopted
    // (and reaped) by init, as xl's daemonized monitor is.
    let _child = Command::new(exe)
        .args(request.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()?;
    Ok(())
}

/// How watching a domain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It shut down for this reason and was destroyed (`destroy`).
    Destroyed(ShutdownReason),
    /// It shut down for this reason and was left so (`preserve`).
    Preserved(ShutdownReason),
    /// Someone else destroyed it.
    Gone,
}

/// The configured action for a shutdown `reason` (a shutdown without a
/// reason counts as a power-off).
#[must_use]
pub fn action_for(domain: &DomainConfig, reason: ShutdownReason) -> ShutdownAction {
    match reason {
        ShutdownReason::Reboot => domain.on_reboot,
        ShutdownReason::Crash => domain.on_crash,
        ShutdownReason::Poweroff | ShutdownReason::None => domain.on_poweroff,
    }
}

fn action_word(action: ShutdownAction) -> &'static str {
    match action {
        ShutdownAction::Destroy => "destroy",
        ShutdownAction::Restart => "restart",
        ShutdownAction::Preserve => "preserve",
    }
}

/// Watches `domid` (created from `domain`, read from `file`) whenever the
/// hypervisor raises an event, or every `poll` without events, and applies
/// the shutdown actions until one ends the watch. Each step is logged to
/// `log`.
///
/// # Errors
///
/// A device error, or a failed restart.
pub fn watch(
    hv: &mut dyn Hypervisor,
    mut domid: u32,
    domain: &DomainConfig,
    file: &str,
    log: &mut dyn Write,
    poll: Duration,
) -> Result<Outcome, XlError> {
    let mut notify = true;
    loop {
        let reason = match down_state(hv, domid)? {
            None => {
                idle(hv, poll, &mut notify);
                continue;
            }
            Some(Down::Gone) => {
                writeln!(log, "domain `{}` ({domid}) was destroyed", domain.name)?;
                return Ok(Outcome::Gone);
            }
            Some(Down::ShutDown(reason)) => reason,
        };
        let action = action_for(domain, reason);
        let key = match reason {
            ShutdownReason::Reboot => "on_reboot",
            ShutdownReason::Crash => "on_crash",
            _ => "on_poweroff",
        };
        writeln!(
            log,
            "domain `{}` ({domid}) shut down ({}): {key} = \"{}\"",
            domain.name,
            reason_word(reason),
            action_word(action)
        )?;
        match action {
            ShutdownAction::Preserve => return Ok(Outcome::Preserved(reason)),
            ShutdownAction::Destroy => {
                hv.domain_destroy(domid)?;
                return Ok(Outcome::Destroyed(reason));
            }
            ShutdownAction::Restart => {
                hv.domain_destroy(domid)?;
                domid = start(hv, domain, file, false)?.domid;
                writeln!(log, "domain `{}` restarted as id {domid}", domain.name)?;
            }
        }
    }
}

/// `_monitor --domid N FILE [key=value...]`: the process `create` leaves
/// behind.
pub(super) fn run_monitor(
    opener: &dyn Opener,
    domid: u32,
    file: &Path,
    overrides: &[String],
    err: &mut dyn Write,
) -> Result<(), XlError> {
    let (domain, _) = load_config(file, overrides)?;
    let mut hv = connect_for(opener, LIFECYCLE_ABI, "monitoring a domain")?;
    // The id must still be the domain this configuration created.
    let info = hv.domain_info(domid)?;
    if info.name_str() != Some(domain.name.as_str()) {
        return Err(XlError::NoSuchDomain(format!("{} ({domid})", domain.name)));
    }
    let name = file.display().to_string();
    watch(&mut *hv, domid, &domain, &name, err, MONITOR_POLL)?;
    Ok(())
}
