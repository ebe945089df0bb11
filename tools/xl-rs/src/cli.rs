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
    /// Ask a domain to shut down.
    Shutdown {
        /// Wait until the domain has shut down.
        #[arg(short, long)]
        wait: bool,
        /// Domain name or id.
        domain: String,
    },
    /// Ask a domain to reboot.
    Reboot {
        /// Wait until the domain has rebooted.
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
    Console {
        /// Domain name or id.
        domain: String,
    },
    /// List the vCPUs of domains.
    #[command(name = "vcpu-list")]
    VcpuList {
        /// Only these domains (names or ids).
        domains: Vec<String>,
    },
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
    /// Parse and validate only, and print the resulting configuration as JSON.
    #[arg(short = 'n', long = "dry-run", visible_alias = "dryrun")]
    pub dry_run: bool,
    /// The xl.cfg file.
    pub file: PathBuf,
    /// Settings applied after the file, each a configuration line (`key=value`).
    pub overrides: Vec<String>,
}
