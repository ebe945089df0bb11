//! `cargo xtask`: build, image, boot and test the Oxen hypervisor.
//!
//! Every step a developer or CI takes goes through here, so that the commands
//! in `docs/testing.md` are the whole story: `build` (the bare-metal ELF, its
//! multiboot2 header checked on the host), `iso` (a GRUB rescue ISO), `run`
//! (boot it in the best emulator this host offers), `test` (host tests, then
//! the emulator scenarios of `tests/qemu/scenarios/`), `soak` (one
//! scenario many times, counted), `demo` (dom0 booted
//! for a look) and `bench` (measurements written to `docs/benchmarks.md`).

mod assets;
mod bench;
mod bench_domu;
mod bench_exits;
mod build;
mod demo;
mod deps;
mod emulator;
mod iso;
mod lints;
mod run;
mod scenario;
mod signal;
mod soak;
mod test;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::emulator::EmulatorArg;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, image, run and test the Oxen hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the hypervisor ELF for bare metal and check its multiboot2 header.
    Build {
        /// Build the unoptimised `dev` profile instead of `release`.
        #[arg(long)]
        debug: bool,
    },
    /// Build a GRUB ISO (`target/iso/NAME.iso`) holding the hypervisor and modules.
    Iso {
        /// The hypervisor's command line.
        #[arg(long, default_value = iso::DEFAULT_CMDLINE)]
        cmdline: String,
        /// A multiboot2 module: `PATH` or `PATH:ARGS` (repeatable); a PATH of
        /// `@dom0-vmlinux`, `@dom0-bzimage`, `@initramfs-dom0-boot`,
        /// `@initramfs-isolation`, `@initramfs-xl-info` or
        /// `@initramfs-hypercall-abuse` names a generated asset.
        #[arg(long = "module", value_name = "PATH[:ARGS]")]
        modules: Vec<String>,
        /// The ISO's file name, without `.iso`.
        #[arg(long, default_value = "oxen")]
        name: String,
    },
    /// Boot the hypervisor in an emulator with the serial console on this terminal.
    Run {
        /// `bochs`, `qemu` (KVM with nested VT-x if the host has it, else TCG) or `best`.
        #[arg(long, default_value = "best")]
        emulator: EmulatorArg,
        /// Number of emulated CPUs.
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        /// Guest RAM in MiB.
        #[arg(long, default_value_t = 1024)]
        memory: u32,
        /// The hypervisor's command line.
        #[arg(long, default_value = iso::DEFAULT_CMDLINE)]
        cmdline: String,
        /// A multiboot2 module: `PATH` or `PATH:ARGS` (repeatable); a PATH of
        /// `@dom0-vmlinux`, `@dom0-bzimage`, `@initramfs-dom0-boot`,
        /// `@initramfs-isolation`, `@initramfs-xl-info` or
        /// `@initramfs-hypercall-abuse` names a generated asset.
        #[arg(long = "module", value_name = "PATH[:ARGS]")]
        modules: Vec<String>,
        /// Stop the emulator after this many seconds (default: run until it exits).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Run the host tests, then the emulator scenarios; ends with `N passed, N failed`.
    Test {
        /// Run only these scenarios (`host-tests` names the host tests).
        names: Vec<String>,
        /// Run the host tests only.
        #[arg(long)]
        host_only: bool,
        /// How many emulators run at once (default: one per host CPU).
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// Run one scenario many times and count the passes (for rare hangs;
    /// every run keeps its log under target/soak/NAME/).
    Soak {
        /// The scenario's name (as in tests/qemu/scenarios/NAME.toml).
        name: String,
        /// How many runs.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// How many emulators run at once (default: one per host CPU).
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// Measure under Bochs and write the results to docs/benchmarks.md.
    Bench {
        /// `dom0-boot`: dom0's kernel to userspace under the hypervisor vs bare;
        /// `hypercall`: the VERSION ioctl's round trip from dom0 userspace.
        #[arg(value_enum)]
        which: bench::Bench,
    },
    /// Install what is missing, build, and boot the hypervisor with Debian's
    /// kernel as dom0 (as the dom0-boot scenario does) for a look.
    Demo {
        /// Stop the emulator after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Boot the hypervisor alone, without dom0.
        #[arg(long)]
        no_dom0: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    signal::install();
    let result = match cli.command {
        Command::Build { debug } => build::build(debug).map(|_| true),
        Command::Iso {
            cmdline,
            modules,
            name,
        } => iso_command(&cmdline, &modules, &name),
        Command::Run {
            emulator,
            cpus,
            memory,
            cmdline,
            modules,
            timeout,
        } => run::run(&run::RunOptions {
            emulator,
            cpus,
            memory,
            cmdline,
            modules,
            timeout,
        }),
        Command::Test {
            names,
            host_only,
            jobs,
        } => test::test(&names, host_only, jobs),
        Command::Soak { name, runs, jobs } => soak::soak(&name, runs, jobs),
        Command::Bench { which } => bench::bench(which),
        Command::Demo { timeout, no_dom0 } => demo::demo(timeout, !no_dom0),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask iso`: build the hypervisor, then the ISO.
fn iso_command(cmdline: &str, modules: &[String], name: &str) -> anyhow::Result<bool> {
    deps::ensure(deps::ISO)?;
    let spec = iso::IsoSpec::from_args(cmdline, modules)?;
    let elf = build::build(false)?;
    let iso = iso::make_iso(&elf.path, &spec, name)?;
    println!("iso: {}", iso.display());
    Ok(true)
}

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or(manifest_dir.clone(), PathBuf::from)
}

/// `target/` under the workspace root (or `CARGO_TARGET_DIR` when set).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}
