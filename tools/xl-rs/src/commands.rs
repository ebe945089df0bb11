//! Running subcommands against a [`Hypervisor`].

use std::io::Write;
use std::path::PathBuf;

use dom0_abi::domain::DomainState;
use dom0_abi::info::VMX_FEATURES;
use dom0_abi::layout::flag_names;
use dom0_abi::{ABI_VERSION, DomainInfo, HvInfo, PAGE_SIZE, ShutdownReason};

use crate::cli::{Cli, Command, CreateArgs};
use crate::config::{self, ConfigError};
use crate::device::{DeviceError, HostFacts, Hypervisor, Opener};

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
        Command::Create(args) => create(&args, opener, out, err),
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
        Command::Destroy { domain } => control(opener, &format!("destroying domain `{domain}`")),
        Command::Shutdown { domain, wait } => {
            let how = if wait { " (and waiting)" } else { "" };
            control(opener, &format!("shutting down domain `{domain}`{how}"))
        }
        Command::Reboot { domain, .. } => control(opener, &format!("rebooting domain `{domain}`")),
        Command::Pause { domain } => control(opener, &format!("pausing domain `{domain}`")),
        Command::Unpause { domain } => control(opener, &format!("unpausing domain `{domain}`")),
        Command::Console { domain } => control(
            opener,
            &format!("attaching to the console of domain `{domain}`"),
        ),
        Command::VcpuList { .. } => control(opener, "listing vCPUs"),
    }
}

/// Opens the device and negotiates the ABI.
fn connect(opener: &dyn Opener) -> Result<Box<dyn Hypervisor>, XlError> {
    let mut hv = opener.open()?;
    let theirs = hv.negotiate()?;
    if !ABI_VERSION.compatible_with(theirs) {
        return Err(DeviceError::AbiMismatch {
            ours: ABI_VERSION,
            theirs,
        }
        .into());
    }
    Ok(hv)
}

fn control(opener: &dyn Opener, what: &str) -> Result<(), XlError> {
    connect(opener)?.domain_control(what)?;
    Ok(())
}

fn create(
    args: &CreateArgs,
    opener: &dyn Opener,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), XlError> {
    let bytes = std::fs::read(&args.file).map_err(|source| XlError::ReadConfig {
        path: args.file.clone(),
        source,
    })?;
    let name = args.file.display().to_string();
    let (domain, warnings) = config::load_bytes(&name, &bytes, &args.overrides)?;
    for warning in &warnings {
        writeln!(err, "{warning}")?;
    }
    if args.dry_run {
        let json = serde_json::to_string_pretty(&domain).map_err(std::io::Error::other)?;
        writeln!(out, "{json}")?;
        return Ok(());
    }
    let mut what = format!("creating domain `{}`", domain.name);
    if args.paused {
        what.push_str(" paused");
    }
    if args.console {
        what.push_str(" with its console attached");
    }
    control(opener, &what)
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
    let rows: [(&str, String); 16] = [
        ("host", host.host.clone()),
        ("release", host.release.clone()),
        ("version", host.version.clone()),
        ("machine", host.machine.clone()),
        ("nr_cpus", i.cpu_count.to_string()),
        ("tsc_khz", i.tsc_khz.to_string()),
        ("vmx_features", features.join(" ")),
        ("total_memory", pages_to_mib(i.total_pages).to_string()),
        ("free_memory", pages_to_mib(i.free_pages).to_string()),
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
