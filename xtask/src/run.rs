//! `cargo xtask run`: boot the hypervisor with its serial console on this
//! terminal.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use crate::emulator::{self, EmulatorArg, Machine, Outcome};
use crate::iso::{self, IsoSpec};
use crate::watch::EscapeFilter;
use crate::{build, deps, target_dir};

/// What `cargo xtask run` was asked for.
#[derive(Debug)]
pub struct RunOptions {
    pub emulator: EmulatorArg,
    pub cpus: u32,
    pub memory: u32,
    pub cmdline: String,
    pub modules: Vec<String>,
    pub timeout: Option<u64>,
}

pub fn run(options: &RunOptions) -> Result<bool> {
    let emulator = options.emulator.resolve();
    deps::ensure_all(&[deps::ISO, emulator.packages()])?;
    if !emulator.has_vmx() {
        println!(
            "note: QEMU without KVM offers no VT-x: the hypervisor will stop at its VT-x check"
        );
    }
    let spec = IsoSpec::from_args(&options.cmdline, &options.modules)?;
    let hypervisor = build::build(false)?;
    let machine = Machine {
        emulator,
        cpus: options.cpus,
        memory_mib: options.memory,
        iso: iso::make_iso(&hypervisor.path, &spec, "run")?,
        dir: target_dir().join("run"),
        name: "run".to_owned(),
        serial_socket: None,
    };
    let outcome = boot_on_terminal(&machine, options.timeout.map(Duration::from_secs))?;
    println!("\n{}", describe(&outcome));
    Ok(!matches!(outcome, Outcome::Interrupted))
}

/// Boots the machine and copies its serial output to stdout as it comes.
pub fn boot_on_terminal(machine: &Machine, timeout: Option<Duration>) -> Result<Outcome> {
    println!(
        "booting {} on {} ({} CPU(s), {} MiB); serial log {}; Ctrl-C stops the emulator",
        machine.iso.display(),
        machine.emulator.name(),
        machine.cpus,
        machine.memory_mib,
        machine.serial_log().display()
    );
    let mut filter = EscapeFilter::default();
    emulator::supervise(machine, timeout, &[], |chunk| {
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (say, `| head`) must not stop the machine.
        let _ = stdout.write_all(&filter.apply(&chunk.raw));
        let _ = stdout.flush();
        None
    })
}

/// One line on how the run ended.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited(status) => format!("the emulator exited ({status})"),
        Outcome::Stopped(reason) => format!("stopped: {reason}"),
        Outcome::TimedOut => "time limit reached: the emulator was stopped".to_owned(),
        Outcome::Interrupted => "interrupted: the emulator was stopped".to_owned(),
    }
}
