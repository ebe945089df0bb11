//! Command-line syntax, following `xl`'s subcommands and flags.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::{Parser, Subcommand};

/// `xl-rs --version`: the tool version and the hypercall ABI it speaks.
pub fn version_string() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} (dom0-abi {})",
            env!("CARGO_PKG_VERSION"),
            dom0_abi::ABI_VERSION
        )
    })
}

/// The Oxen toolstack, an `xl` work-alike.
#[derive(Debug, Parser)]
#[command(name = "xl-rs", version = version_string(), about, propagate_version = true)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a domain from an xl.cfg file.
    Create(CreateArgs),
    /// List domains (Name, ID, Mem, VCPUs, State, Time(s)).
    List {
        /// Long listing (machine-readable JSON, like `xl list -l`).
        #[arg(short, long)]
        long: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Only these domains (names or ids).
        domains: Vec<String>,
    },
    /// Hypervisor information.
    Info,
    /// Print the hypervisor's log.
    Dmesg {
        /// Clear the log after printing it.
        #[arg(short, long)]
        clear: bool,
    },
    /// Destroy a domain immediately.
    Destroy {
        /// Domain name or id.
        domain: String,
    },
    /// Ask a domain to shut down (an ACPI power-button press).
    Shutdown {
        /// Wait until the domain has shut down.
        #[arg(short, long)]
        wait: bool,
        /// Domain name or id.
        domain: String,
    },
    /// Ask a domain to reboot.
    Reboot {
        /// Wait until the domain has gone down for its reboot.
        #[arg(short, long)]
        wait: bool,
        /// Domain name or id.
        domain: String,
    },
    /// Pause a domain.
    Pause {
        /// Domain name or id.
        domain: String,
    },
    /// Unpause a domain.
    Unpause {
        /// Domain name or id.
        domain: String,
    },
    /// Attach to a domain's console (Ctrl-] detaches).
    Console(ConsoleArgs),
    /// List the vCPUs of domains (Name, ID, VCPU, CPU, State, Time(s),
    /// hard and soft affinity).
    #[command(name = "vcpu-list")]
    VcpuList {
        /// Only these domains (names or ids).
        domains: Vec<String>,
    },
    /// Set the hard affinity of a domain's vCPUs: the physical CPUs they may
    /// run on.
    #[command(name = "vcpu-pin")]
    VcpuPin {
        /// Domain name or id.
        domain: String,
        /// A vCPU number, or `all`.
        vcpu: String,
        /// CPUs: `all`, or numbers and ranges with `^` exclusions, e.g.
        /// `0-3,5` or `all,^1` (a leading `^1` means all but 1).
        cpus: String,
        /// Soft affinity: only `-` (unchanged) is accepted; Oxen has no
        /// soft affinity.
        soft: Option<String>,
    },
    /// Show or set the credit2 scheduler's weight and cap of domains.
    #[command(name = "sched-credit2", visible_alias = "sched-credit")]
    SchedCredit2 {
        /// The domain (name or id); without it, every domain is listed.
        #[arg(short, long)]
        domain: Option<String>,
        /// Set its weight (1 to 65535; 256 by default).
        #[arg(short, long, requires = "domain")]
        weight: Option<u32>,
        /// Set its cap, in percent of one CPU (0: no cap).
        #[arg(short, long, requires = "domain")]
        cap: Option<u32>,
    },
    /// Wait for the next hypervisor event (a domain created, shut down or
    /// destroyed; a warning or error in the hypervisor's log) and print it.
    /// Exits with status 1 when `--timeout` passes first.
    #[command(name = "wait-event")]
    WaitEvent {
        /// Give up after this many seconds (fractions allowed).
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
        timeout: Option<std::time::Duration>,
    },
    /// The background process `create` leaves to apply on_poweroff,
    /// on_reboot and on_crash (internal).
    #[command(name = "_monitor", hide = true)]
    Monitor {
        /// The domain to watch.
        #[arg(long)]
        domid: u32,
        /// Its configuration file.
        file: PathBuf,
        /// The overrides it was created with.
        overrides: Vec<String>,
    },
}

/// Arguments of `console`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Domain name or id.
    pub domain: String,
    /// Stop (successfully) once the domain's output matches this regular
    /// expression (for scripts; an xl-rs extension).
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub until: Option<regex::bytes::Regex>,
    /// Stop after this many seconds; with `--until`, not matching in time
    /// is an error (an xl-rs extension).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<std::time::Duration>,
}

fn parse_regex(text: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(text).map_err(|e| e.to_string())
}

fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("`{text}` is not a usable number of seconds"))
}

/// Arguments of `create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Attach to the console after creating the domain.
    #[arg(short = 'c')]
    pub console: bool,
    /// Leave the domain paused after creating it.
    #[arg(short = 'p')]
    pub paused: bool,
    /// Leave no monitor behind: nothing applies on_poweroff, on_reboot and
    /// on_crash.
    #[arg(short = 'e', conflicts_with = "foreground")]
    pub no_monitor: bool,
    /// Monitor the domain in the foreground (until it is destroyed or
    /// preserved) instead of in a background process.
    #[arg(short = 'F')]
    pub foreground: bool,
    /// Parse and validate only, and print the resulting configuration as JSON.
    #[arg(short = 'n', long = "dry-run", visible_alias = "dryrun")]
    pub dry_run: bool,
    /// The xl.cfg file.
    pub file: PathBuf,
    /// Settings applied after the file, each a configuration line (`key=value`).
    pub overrides: Vec<String>,
}
