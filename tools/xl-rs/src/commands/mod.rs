//! Running subcommands against a [`Hypervisor`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use dom0_abi::domain::DomainState;
use dom0_abi::info::VMX_FEATURES;
use dom0_abi::layout::flag_names;
use dom0_abi::{ABI_VERSION, AbiVersion, DomainInfo, HvInfo, PAGE_SIZE, ShutdownReason};

use crate::builder::BuildError;
use crate::cli::{Cli, Command};
use crate::config::ConfigError;
use crate::device::{DeviceError, HostFacts, Hypervisor, Opener};

pub mod console;
pub mod control;
mod create;
pub mod events;
pub mod monitor;
pub mod sched;

/// Errors of xl-rs commands.
#[derive(Debug, thiserror::Error)]
pub enum XlError {
    /// A configuration error; displays as `FILE:LINE:COL: message`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reaching or using the hypervisor failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// No domain has this name or id.
    #[error("domain `{0}` not found")]
    NoSuchDomain(String),
    /// A file the configuration names could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    ReadFile {
        /// `kernel` or `ramdisk`.
        what: &'static str,
        /// The path, as the configuration gives it.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The guest could not be laid out.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The operation is not for dom0.
    #[error("cannot {action} Domain-0: it is the control domain")]
    Dom0 {
        /// What was asked.
        action: &'static str,
    },
    /// A domain of that name exists already.
    #[error("a domain called `{0}` already exists; destroy it or choose another name")]
    DomainExists(String),
    /// The domain would not fit in the free memory.
    #[error(
        "memory = {memory_mib} (MiB) is more than the hypervisor has free ({free_mib} MiB); lower memory or destroy other domains"
    )]
    NotEnoughMemory {
        /// What the configuration asks for.
        memory_mib: u64,
        /// What is free.
        free_mib: u64,
    },
    /// Building a created domain failed; it was destroyed again.
    #[error("building domain `{name}` failed, so it was destroyed: {source}")]
    BuildFailed {
        /// The domain.
        name: String,
        /// The cause.
        source: DeviceError,
    },
    /// The terminal could not be set up for `console`.
    #[error("cannot put the terminal in raw mode: {0}")]
    Terminal(std::io::Error),
    /// `console --until` did not see its pattern in time.
    #[error("no console output matched /{pattern}/ within {} s", timeout.as_secs_f64())]
    ConsoleTimeout {
        /// The pattern.
        pattern: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The domain ended before `console --until` saw its pattern.
    #[error("domain `{domain}` {how} before its console output matched /{pattern}/")]
    ConsoleEnded {
        /// The domain.
        domain: String,
        /// `shut down` or `was destroyed`.
        how: &'static str,
        /// The pattern.
        pattern: String,
    },
    /// `wait-event --timeout` saw no event.
    #[error("no hypervisor event within {} s", timeout.as_secs_f64())]
    EventTimeout {
        /// The time allowed.
        timeout: Duration,
    },
    /// A scheduling command's argument is wrong.
    #[error(transparent)]
    SchedArg(#[from] sched::SchedArgError),
    /// Applying the configuration's scheduling settings to a created
    /// domain failed; it was destroyed again.
    #[error(
        "setting the scheduling parameters of domain `{name}` (weight, cap, cpus) failed, so it was destroyed: {source}"
    )]
    SchedFailed {
        /// The domain.
        name: String,
        /// The cause.
        source: DeviceError,
    },
    /// A `cap` above what the machine's CPUs allow.
    #[error("cap = {cap} is more than the machine's {cpus} CPUs allow (at most {}); lower cap", 100 * u64::from(*cpus))]
    CapTooBig {
        /// What the configuration asks for.
        cap: u32,
        /// Physical CPUs.
        cpus: u32,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs one command; normal output goes to `out`, warnings to `err`.
///
/// # Errors
///
/// What went wrong, phrased for the user.
pub fn run(
    cli: Cli,
    opener: &dyn Opener,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), XlError> {
    match cli.command {
        Command::Create(args) => create::create(&args, opener, out, err),
        Command::List {
            long,
            json,
            domains,
        } => list(&mut *connect(opener)?, long || json, &domains, out),
        Command::Info => info(&mut *connect(opener)?, &opener.host_facts(), out),
        Command::Dmesg { clear } => {
            let log = connect(opener)?.log_read(clear)?;
            out.write_all(&log.text)?;
            if log.dropped > 0 {
                writeln!(
                    err,
                    "xl-rs: {} bytes of older log text were lost to ring wrap",
                    log.dropped
                )?;
            }
            Ok(())
        }
        Command::Destroy { domain } => control::destroy(opener, &domain),
        Command::Shutdown { domain, wait } => {
            control::shutdown(opener, &domain, ShutdownReason::Poweroff, wait, err)
        }
        Command::Reboot { domain, wait } => {
            control::shutdown(opener, &domain, ShutdownReason::Reboot, wait, err)
        }
        Command::Pause { domain } => control::pause(opener, &domain, true),
        Command::Unpause { domain } => control::pause(opener, &domain, false),
        Command::Console(args) => console::attach_by_name(opener, &args, out),
        Command::WaitEvent { timeout } => events::wait_event(opener, timeout, out, err),
        Command::Monitor {
            domid,
            file,
            overrides,
        } => monitor::run_monitor(opener, domid, &file, &overrides, err),
        Command::VcpuList { domains } => sched::vcpu_list(opener, &domains, out),
        Command::VcpuPin {
            domain,
            vcpu,
            cpus,
            soft,
        } => sched::vcpu_pin(opener, &domain, &vcpu, &cpus, soft.as_deref()),
        Command::SchedCredit2 {
            domain,
            weight,
            cap,
        } => sched::sched_credit2(opener, domain.as_deref(), weight, cap, out),
    }
}

/// The ABI version the domain-lifecycle operations need.
pub const LIFECYCLE_ABI: AbiVersion = AbiVersion::new(1, 1);

/// Opens the device, negotiates the ABI and checks that the hypervisor
/// provides `needed` (the version that introduced what `what` does).
fn connect_for(
    opener: &dyn Opener,
    needed: AbiVersion,
    what: &str,
) -> Result<Box<dyn Hypervisor>, XlError> {
    let mut hv = opener.open()?;
    let theirs = hv.negotiate()?;
    if !ABI_VERSION.compatible_with(theirs) {
        return Err(DeviceError::AbiMismatch {
            ours: ABI_VERSION,
            theirs,
        }
        .into());
    }
    if !theirs.provides(needed) {
        return Err(DeviceError::AbiTooOld {
            what: what.to_owned(),
            needed,
            theirs,
        }
        .into());
    }
    Ok(hv)
}

/// The domain `wanted` names: a domain id if it is a number, else a name
/// (names are never all digits).
fn resolve(hv: &mut dyn Hypervisor, wanted: &str) -> Result<DomainInfo, XlError> {
    hv.domain_list()?
        .into_iter()
        .find(|d| matches_any(d, std::slice::from_ref(&wanted.to_owned())))
        .ok_or_else(|| XlError::NoSuchDomain(wanted.to_owned()))
}

/// How a domain is named in messages: `name` (id).
fn display_name(info: &DomainInfo) -> String {
    format!("`{}` ({})", info.name_str().unwrap_or("?"), info.domid)
}

/// Opens the device and negotiates the ABI (any minor version).
fn connect(opener: &dyn Opener) -> Result<Box<dyn Hypervisor>, XlError> {
    connect_for(opener, AbiVersion::new(ABI_VERSION.major, 0), "")
}

/// Mebibytes in `pages` pages.
#[must_use]
pub fn pages_to_mib(pages: u64) -> u64 {
    pages.saturating_mul(PAGE_SIZE) >> 20
}

/// `xl list`'s six state letters (`r b p s c d`, `-` when not set).
#[must_use]
pub fn state_letters(info: &DomainInfo) -> String {
    let mut letters = *b"------";
    match info.state() {
        Ok(DomainState::Running) => letters[0] = b'r',
        Ok(DomainState::Blocked) => letters[1] = b'b',
        Ok(DomainState::Paused) => letters[2] = b'p',
        Ok(DomainState::Shutdown) => {
            if ShutdownReason::try_from(info.shutdown_reason) == Ok(ShutdownReason::Crash) {
                letters[4] = b'c';
            } else {
                letters[3] = b's';
            }
        }
        Ok(DomainState::Dying) => letters[5] = b'd',
        Err(_) => return "??????".to_owned(),
    }
    String::from_utf8_lossy(&letters).into_owned()
}

fn matches_any(info: &DomainInfo, wanted: &[String]) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            w.parse::<u32>().map_or_else(
                |_| info.name_str() == Some(w.as_str()),
                |id| id == info.domid,
            )
        })
}

fn list(
    hv: &mut dyn Hypervisor,
    json: bool,
    wanted: &[String],
    out: &mut dyn Write,
) -> Result<(), XlError> {
    let domains = hv.domain_list()?;
    for w in wanted {
        if !domains
            .iter()
            .any(|d| matches_any(d, std::slice::from_ref(w)))
        {
            return Err(XlError::NoSuchDomain(w.clone()));
        }
    }
    let shown: Vec<&DomainInfo> = domains.iter().filter(|d| matches_any(d, wanted)).collect();
    if json {
        let records: Vec<serde_json::Value> = shown
            .iter()
            .map(|d| {
                serde_json::json!({
                    "domid": d.domid,
                    "name": d.name_str().unwrap_or("?"),
                    "state": state_letters(d),
                    "memory_kib": d.memory_pages * PAGE_SIZE / 1024,
                    "max_memory_kib": d.max_memory_pages * PAGE_SIZE / 1024,
                    "vcpus": d.vcpus,
                    "max_vcpus": d.max_vcpus,
                    "cpu_time_ns": d.cpu_time_ns,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&records).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<40} {:>5} {:>5} {:>5}     State   Time(s)",
        "Name", "ID", "Mem", "VCPUs"
    )?;
    for d in shown {
        writeln!(
            out,
            "{:<40} {:>5} {:>5} {:>5}     {}  {:>8.1}",
            d.name_str().unwrap_or("?"),
            d.domid,
            pages_to_mib(d.memory_pages),
            d.vcpus,
            state_letters(d),
            d.cpu_time_ns as f64 / 1e9,
        )?;
    }
    Ok(())
}

/// Width of the key column of `info`: xl's (`host` and 19 spaces).
pub const INFO_KEY_WIDTH: usize = 23;

/// `xl info`: `key : value` lines, the dom0 kernel's first, as xl prints
/// them, then the hypervisor's.
fn info(hv: &mut dyn Hypervisor, host: &HostFacts, out: &mut dyn Write) -> Result<(), XlError> {
    let i: HvInfo = hv.hv_info()?;
    let features: Vec<&str> = flag_names(VMX_FEATURES, i.vmx_features).collect();
    let rows: [(&str, String); 17] = [
        ("host", host.host.clone()),
        ("release", host.release.clone()),
        ("version", host.version.clone()),
        ("machine", host.machine.clone()),
        ("nr_cpus", i.cpu_count.to_string()),
        ("tsc_khz", i.tsc_khz.to_string()),
        ("vmx_features", features.join(" ")),
        ("total_memory", pages_to_mib(i.total_pages).to_string()),
        ("free_memory", pages_to_mib(i.free_pages).to_string()),
        // Not in xl: the exact count, to check that a domain gave back
        // every page.
        ("free_pages", i.free_pages.to_string()),
        ("dom0_memory", pages_to_mib(i.dom0_pages).to_string()),
        (
            "hypervisor_version",
            i.version_str().unwrap_or("?").to_owned(),
        ),
        ("abi_version", format!("{}.{}", i.abi_major, i.abi_minor)),
        ("pagesize", PAGE_SIZE.to_string()),
        ("uptime_s", format!("{:.1}", i.uptime_ns as f64 / 1e9)),
        ("xl_rs_version", env!("CARGO_PKG_VERSION").to_owned()),
        ("xl_rs_abi_version", ABI_VERSION.to_string()),
    ];
    for (key, value) in rows {
        writeln!(out, "{key:<INFO_KEY_WIDTH$}: {value}")?;
    }
    Ok(())
}
