//! `create [-p] [-c] [-e] [-F] [-n] FILE [key=value...]`: builds a domain
//! from an xl.cfg file.
//!
//! The steps, as xl takes them: parse the configuration; read the kernel
//! and the ramdisk and lay the guest out ([`crate::builder`]; nothing has
//! touched the hypervisor yet, so a bad kernel costs nothing); check the
//! vCPUs and the memory against `HV_INFO`; `DOMAIN_CREATE` (the domain
//! starts paused, its RAM zeroed); `DOMAIN_COPY_IN` every piece of the
//! layout, 1 MiB per hypercall; `VCPU_SET_ENTRY` for vCPU 0; then
//! `DOMAIN_UNPAUSE` unless `-p`. If anything fails after the domain exists,
//! it is destroyed again. Then, as xl does, a monitor is left behind to
//! apply `on_poweroff`/`on_reboot`/`on_crash` ([`super::monitor`]; `-e`:
//! none, `-F`: in the foreground), and with `-c` the console is attached.

use std::io::Write;
use std::path::{Path, PathBuf};

use dom0_abi::vcpu::BOOT_VCPU;
use dom0_abi::{DomainCreateArgs, Status};

use super::monitor::{self, MonitorRequest};
use super::{LIFECYCLE_ABI, XlError, connect_for, pages_to_mib};
use crate::builder::{self, BootProtocol, BuildRequest, GuestImage};
use crate::cli::{ConsoleArgs, CreateArgs};
use crate::config::{self, ConfigError, DomainConfig, DomainType};
use crate::device::{DeviceError, Hypervisor, Opener};
use crate::file_bytes::FileBytes;

pub(super) fn create(
    args: &CreateArgs,
    opener: &dyn Opener,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), XlError> {
    let file = args.file.display().to_string();
    let (domain, warnings) = load_config(&args.file, &args.overrides)?;
    for warning in &warnings {
        writeln!(err, "{warning}")?;
    }
    if args.dry_run {
        let json = serde_json::to_string_pretty(&domain).map_err(std::io::Error::other)?;
        writeln!(out, "{json}")?;
        return Ok(());
    }
    for note in notes(&domain) {
        writeln!(err, "{file}: warning: {note}")?;
    }

    let mut hv = if domain.has_sched_settings() {
        connect_for(
            opener,
            super::sched::SCHED_ABI,
            "creating a domain with weight, cap or cpus",
        )?
    } else {
        connect_for(opener, LIFECYCLE_ABI, "creating a domain")?
    };
    let started = start(&mut *hv, &domain, &file, args.paused)?;
    let domid = started.domid;
    writeln!(
        err,
        "Domain `{}` created with id {domid} ({} MiB, {} vCPU{}, {}){}",
        domain.name,
        domain.memory_mib,
        domain.vcpus,
        if domain.vcpus == 1 { "" } else { "s" },
        started.protocol,
        if args.paused { ", paused" } else { "" }
    )?;
    let request = MonitorRequest {
        domid,
        file: args.file.clone(),
        overrides: args.overrides.clone(),
    };
    if !args.no_monitor && !args.foreground {
        // The domain exists and runs: a monitor that cannot start is a
        // warning, not a failed create.
        if let Err(e) = opener.spawn_monitor(&request) {
            writeln!(
                err,
                "xl-rs: warning: cannot start the monitor of domain `{}`: {e}; \
                 on_poweroff, on_reboot and on_crash will not be applied",
                domain.name
            )?;
        }
    }
    if args.console {
        let console = ConsoleArgs {
            domain: domain.name.clone(),
            until: None,
            timeout: None,
        };
        let mut input = opener.console_input().map_err(XlError::Terminal)?;
        super::console::attach(&mut *hv, domid, &domain.name, &console, &mut *input, out)?;
    }
    if args.foreground {
        monitor::watch(&mut *hv, domid, &domain, &file, err, monitor::MONITOR_POLL)?;
    }
    Ok(())
}

/// Reads and parses a configuration file with its overrides.
pub(super) fn load_config(
    path: &Path,
    overrides: &[String],
) -> Result<(DomainConfig, Vec<config::Warning>), XlError> {
    let bytes = std::fs::read(path).map_err(|source| XlError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    Ok(config::load_bytes(&name, &bytes, overrides)?)
}

/// A domain that [`start`] built.
#[derive(Debug, Clone, Copy)]
pub(super) struct Started {
    /// Its id.
    pub domid: u32,
    /// How its kernel is entered.
    pub protocol: BootProtocol,
}

/// Builds a domain from `domain` (`file` names the configuration in
/// messages) and, unless `paused`, starts it.
pub(super) fn start(
    hv: &mut dyn Hypervisor,
    domain: &DomainConfig,
    file: &str,
    paused: bool,
) -> Result<Started, XlError> {
    let kernel = read_file("kernel", &domain.kernel)?;
    let ramdisk = match &domain.ramdisk {
        Some(path) => Some(read_file("ramdisk", path)?),
        None => None,
    };
    let cmdline = domain.cmdline.clone().unwrap_or_default();
    let guest = builder::build(&BuildRequest {
        kernel_path: &domain.kernel,
        kernel: &kernel,
        ramdisk: ramdisk.as_deref(),
        cmdline: &cmdline,
        memory_mib: domain.memory_mib,
        vcpus: domain.vcpus,
    })?;
    let create_args = DomainCreateArgs::new(&domain.name, guest.memory_pages, domain.vcpus)
        .map_err(|e| ConfigError::whole(file, e.to_string()))?;

    let hv_info = hv.hv_info()?;
    // More vCPUs than CPUs is fine (the scheduler shares the CPUs); the
    // configuration bounds vcpus at 32, as the hypervisor does.
    if let Some(cap) = domain.cap
        && !dom0_abi::sched::cap_valid(cap, hv_info.cpu_count)
    {
        return Err(XlError::CapTooBig {
            cap,
            cpus: hv_info.cpu_count,
        });
    }
    let not_enough_memory = || XlError::NotEnoughMemory {
        memory_mib: domain.memory_mib,
        free_mib: pages_to_mib(hv_info.free_pages),
    };
    if guest.memory_pages > hv_info.free_pages {
        return Err(not_enough_memory());
    }
    let domid = match hv.domain_create(&create_args) {
        Ok(domid) => domid,
        Err(e) => {
            return Err(match e.status() {
                Some(Status::Exists) => XlError::DomainExists(domain.name.clone()),
                Some(Status::NoMemory) => not_enough_memory(),
                _ => e.into(),
            });
        }
    };
    if let Err(source) = apply_sched(hv, domid, domain) {
        let _ = hv.domain_destroy(domid);
        return Err(XlError::SchedFailed {
            name: domain.name.clone(),
            source,
        });
    }
    if let Err(source) = load(hv, domid, &guest, !paused) {
        // Best effort: the error that matters is the one that stopped us.
        let _ = hv.domain_destroy(domid);
        return Err(XlError::BuildFailed {
            name: domain.name.clone(),
            source,
        });
    }
    Ok(Started {
        domid,
        protocol: guest.protocol,
    })
}

/// Applies `weight` and `cap` (one `SCHED_SET`) and `cpus` (a
/// `VCPU_SET_AFFINITY` per vCPU) to a new, paused domain; nothing when the
/// configuration sets none of them.
fn apply_sched(
    hv: &mut dyn Hypervisor,
    domid: u32,
    domain: &DomainConfig,
) -> Result<(), DeviceError> {
    if domain.weight.is_some() || domain.cap.is_some() {
        hv.sched_set(domid, domain.weight, domain.cap)?;
    }
    for (vcpu, set) in (0u32..).zip(domain.cpus.iter().flatten()) {
        hv.vcpu_set_affinity(domid, vcpu, set.0)?;
    }
    Ok(())
}

/// Copies the guest into the new domain, sets vCPU 0's entry and, when
/// `start`, unpauses it.
fn load(
    hv: &mut dyn Hypervisor,
    domid: u32,
    guest: &GuestImage<'_>,
    start: bool,
) -> Result<(), DeviceError> {
    for piece in &guest.pieces {
        hv.copy_in(domid, piece.gpa, &piece.bytes)?;
    }
    hv.vcpu_set_entry(domid, BOOT_VCPU, &guest.entry)?;
    if start {
        hv.domain_unpause(domid)?;
    }
    Ok(())
}

fn read_file(what: &'static str, path: &str) -> Result<FileBytes, XlError> {
    FileBytes::open(Path::new(path)).map_err(|source| XlError::ReadFile {
        what,
        path: PathBuf::from(path),
        source,
    })
}

/// Things about a configuration worth saying before building it.
fn notes(domain: &DomainConfig) -> Vec<String> {
    let mut notes = Vec::new();
    if domain.domain_type == DomainType::Hvm {
        notes.push(
            "type = \"hvm\": Oxen has no guest firmware; the kernel is started directly \
             (PVH entry or Linux 64-bit boot protocol), as for \"pvh\""
                .to_owned(),
        );
    }
    let cmdline = domain.cmdline.as_deref().unwrap_or("");
    if !cmdline
        .split_whitespace()
        .any(|w| w.starts_with("console="))
    {
        notes.push(
            "the kernel command line has no console=: `xl-rs console` shows what the \
             guest writes to its serial port (add extra = \"console=ttyS0\")"
                .to_owned(),
        );
    }
    notes
}
