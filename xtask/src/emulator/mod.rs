//! Emulators that boot the ISO: which one this host offers, and starting and
//! stopping it.
//!
//! The hypervisor needs VT-x. QEMU gives real VT-x only with KVM on a host
//! whose `kvm_intel` module has nested virtualization on; otherwise Bochs,
//! which emulates VT-x with EPT in software, is the one that can run it. QEMU
//! with TCG has no VT-x and serves the "no VT-x" path (see TESTING-FACTS).

mod bochs;
mod qemu;

pub use bochs::IPS as BOCHS_IPS;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::deps;
use crate::signal;
use crate::watch::{Chunk, Follower, Pattern};

/// How often the serial log and the emulator are looked at.
const POLL: Duration = Duration::from_millis(200);

/// An emulator as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmulatorArg {
    /// QEMU with KVM when the host has nested VT-x, otherwise Bochs.
    Best,
    /// Bochs (VT-x emulated in software).
    Bochs,
    /// QEMU: with KVM when the host has nested VT-x, otherwise TCG (no VT-x).
    Qemu,
}

impl EmulatorArg {
    /// The emulator this resolves to on this host.
    pub fn resolve(self) -> Emulator {
        match (self, host_has_nested_vmx()) {
            (Self::Best | Self::Qemu, true) => Emulator::QemuKvm,
            (Self::Best | Self::Bochs, false) | (Self::Bochs, true) => Emulator::Bochs,
            (Self::Qemu, false) => Emulator::QemuTcg,
        }
    }
}

/// A concrete emulator setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulator {
    /// Bochs 2.7, CPU model `corei7_skylake_x` (VT-x with EPT).
    Bochs,
    /// QEMU with TCG and the `qemu64` CPU: no VT-x.
    QemuTcg,
    /// QEMU with KVM and `-cpu host` on a host with nested VT-x.
    QemuKvm,
}

impl Emulator {
    /// A short name for messages and log files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bochs => "bochs",
            Self::QemuTcg => "qemu-tcg",
            Self::QemuKvm => "qemu-kvm",
        }
    }

    /// The Debian packages it needs.
    pub fn packages(self) -> &'static [&'static str] {
        match self {
            Self::Bochs => deps::BOCHS,
            Self::QemuTcg | Self::QemuKvm => deps::QEMU,
        }
    }

    /// True when the guest sees VT-x.
    pub fn has_vmx(self) -> bool {
        self != Self::QemuTcg
    }
}

/// True when QEMU can give guests VT-x here: `/dev/kvm` exists and
/// `kvm_intel` was loaded with `nested=1`.
pub fn host_has_nested_vmx() -> bool {
    Path::new("/dev/kvm").exists()
        && std::fs::read_to_string("/sys/module/kvm_intel/parameters/nested")
            .is_ok_and(|text| nested_enabled(&text))
}

/// Parses `/sys/module/kvm_intel/parameters/nested` (`Y`/`N`, or `1`/`0` on
/// older kernels).
fn nested_enabled(text: &str) -> bool {
    matches!(text.trim(), "Y" | "y" | "1")
}

/// One emulated machine and where its files go.
#[derive(Debug, Clone)]
pub struct Machine {
    pub emulator: Emulator,
    pub cpus: u32,
    pub memory_mib: u32,
    pub iso: PathBuf,
    /// Directory for the serial log and the emulator's own files.
    pub dir: PathBuf,
    /// Base name of those files (`NAME.log` is the serial log).
    pub name: String,
    /// Bochs only: serve COM1 on this local TCP port instead of writing it
    /// to a file, so that input can be typed (see [`SerialInput`]); what the
    /// machine prints still lands in the serial log.
    pub serial_socket: Option<u16>,
}

/// Bytes typed on the serial console once a line of its output matches.
#[derive(Debug, Clone)]
pub struct SerialInput {
    /// Typed after the first line matching this (after the previous input).
    pub after: Pattern,
    /// What is typed.
    pub send: Vec<u8>,
}

/// A local TCP port that was free a moment ago and that this process has not
/// handed out before (scenarios run side by side each need their own).
pub fn free_port() -> Result<u16> {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..64 {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free local port")?;
        let port = listener.local_addr()?.port();
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    bail!("cannot find a free local port that was not given out already")
}

/// Connects to the emulator's serial socket (it listens once started) and
/// copies everything it sends into `log`. Returns the stream for typing.
fn connect_serial(port: u16, log: &Path, running: &mut Running) -> Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(stream) => break stream,
            Err(e) => {
                if running.try_wait()?.is_some() || Instant::now() >= deadline {
                    return Err(e).with_context(|| {
                        format!("the emulator's serial port (localhost:{port}) never accepted")
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let mut reader = stream.try_clone()?;
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    Ok(stream)
}

impl Machine {
    /// The COM1 log.
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// The emulator's own log (Bochs' `log:` file, QEMU's output).
    pub fn emulator_log(&self) -> PathBuf {
        let kind = if self.emulator == Emulator::Bochs {
            "bochs"
        } else {
            "qemu"
        };
        self.dir.join(format!("{}.{kind}.log", self.name))
    }

    /// Where the emulator's stdout and stderr go (the emulator log for QEMU).
    pub fn output_log(&self) -> PathBuf {
        if self.emulator == Emulator::Bochs {
            self.file("bochs.out")
        } else {
            self.emulator_log()
        }
    }

    fn file(&self, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", self.name))
    }
}

/// A started emulator. Dropping it kills the emulator.
#[derive(Debug)]
pub struct Running {
    child: Child,
    exited: Option<ExitStatus>,
    serial: Option<TcpStream>,
}

/// Starts the emulator, its serial log empty.
pub fn launch(machine: &Machine) -> Result<Running> {
    std::fs::create_dir_all(&machine.dir)
        .with_context(|| format!("cannot create {}", machine.dir.display()))?;
    File::create(machine.serial_log())
        .with_context(|| format!("cannot create {}", machine.serial_log().display()))?;
    let mut command = match machine.emulator {
        Emulator::Bochs => bochs::command(machine)?,
        Emulator::QemuTcg | Emulator::QemuKvm => qemu::command(machine),
    };
    let output = machine.output_log();
    let output =
        File::create(&output).with_context(|| format!("cannot create {}", output.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output);
    signal::isolate(&mut command);
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut running = Running {
        child,
        exited: None,
        serial: None,
    };
    if let Some(port) = machine.serial_socket {
        running.serial = Some(connect_serial(port, &machine.serial_log(), &mut running)?);
    }
    Ok(running)
}

impl Running {
    /// The emulator's exit status, once it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .context("cannot wait for the emulator")?;
        }
        Ok(self.exited)
    }

    /// Types `bytes` on the serial console (a machine with a serial socket).
    pub fn type_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let stream = self
            .serial
            .as_mut()
            .context("this machine's serial console takes no input")?;
        stream
            .write_all(bytes)
            .context("cannot type on the serial console")
    }

    /// Kills the emulator (SIGKILL to its own process id) and reaps it.
    pub fn kill(&mut self) -> Result<()> {
        if self.try_wait()?.is_none() {
            // `Child::kill` signals exactly this child's pid, nothing else.
            self.child.kill().context("cannot kill the emulator")?;
            self.exited = Some(self.child.wait().context("cannot wait for the emulator")?);
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// How a supervised run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The emulator exited by itself.
    Exited(ExitStatus),
    /// The observer stopped the run, for this reason.
    Stopped(String),
    /// The time limit passed; the emulator was killed.
    TimedOut,
    /// Ctrl-C or SIGTERM; the emulator was killed.
    Interrupted,
}

/// Boots the machine and shows each new piece of its serial log to `observe`
/// (every ~200 ms) until the emulator exits, `observe` returns a reason to
/// stop, the time limit passes, or the user interrupts; `inputs` are typed
/// in order as their lines appear. The emulator is killed, by its own
/// process id, in every case but the first.
pub fn supervise(
    machine: &Machine,
    timeout: Option<Duration>,
    inputs: &[SerialInput],
    mut observe: impl FnMut(&Chunk) -> Option<String>,
) -> Result<Outcome> {
    let mut running = launch(machine)?;
    let mut follower = Follower::new(machine.serial_log());
    let started = Instant::now();
    let mut next_input = 0;
    loop {
        // Look at the exit status first, so that a final read sees it all.
        let exited = running.try_wait()?;
        let chunk = follower.poll(exited.is_some())?;
        for line in &chunk.lines {
            if let Some(input) = inputs.get(next_input)
                && input.after.is_match(line)
            {
                running.type_bytes(&input.send)?;
                next_input += 1;
            }
        }
        if let Some(reason) = observe(&chunk) {
            running.kill()?;
            return Ok(Outcome::Stopped(reason));
        }
        if let Some(status) = exited {
            return Ok(Outcome::Exited(status));
        }
        if signal::interrupted() {
            running.kill()?;
            return Ok(Outcome::Interrupted);
        }
        if timeout.is_some_and(|limit| started.elapsed() >= limit) {
            // A machine whose console takes input is asked for the state
            // of its vCPUs first (the hypervisor's debug key 'r'), so that
            // the log says where a hung guest was.
            if running.serial.is_some() {
                let _ = running.type_bytes(b"\x01\x01\x01r");
                std::thread::sleep(Duration::from_secs(5));
                let _ = observe(&follower.poll(false)?);
            }
            running.kill()?;
            return Ok(Outcome::TimedOut);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_nested_parameter() {
        assert!(nested_enabled("Y\n"));
        assert!(nested_enabled("1\n"));
        assert!(!nested_enabled("N\n"));
        assert!(!nested_enabled("0"));
        assert!(!nested_enabled(""));
    }

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let mut ports: Vec<u16> = (0..32).map(|_| free_port().expect("a port")).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 32);
    }

    #[test]
    fn tcg_has_no_vmx() {
        assert!(!Emulator::QemuTcg.has_vmx());
        assert!(Emulator::Bochs.has_vmx());
        assert_eq!(EmulatorArg::Bochs.resolve(), Emulator::Bochs);
    }
}
