//! dom0 initramfs images: busybox-static, the scenario's `/init` from
//! `tests/qemu/initramfs/init-<kind>.sh`, and extra files the caller names.
//!
//! The archive is an uncompressed newc cpio: Linux unpacks one whenever it
//! has `CONFIG_BLK_DEV_INITRD` (`init/initramfs.c` reads the `070701` magic
//! directly; the `CONFIG_RD_*` options only add decompressors), which is
//! checked in the kernel's config. An uncompressed image also spares the
//! emulated CPU a decompression.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use super::cpio::{self, Archive};
use super::{KernelAssets, busybox, debian_kernel};

/// Which scenario the image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitramfsKind {
    /// `dom0-boot` / `dom0-bzimage`: report CPUs, memory, the hypervisor
    /// flag and uptime, then power off.
    Dom0Boot,
    /// `dom0-isolation`: probe dom0's reserved memory through /dev/mem with
    /// `/bin/oxen-memprobe` (all 0xff, no canary, writes dropped), then
    /// power off.
    Isolation,
    /// `xl-info`: load the `hvctl` driver, run `xl-rs info`, `list` and
    /// `dmesg`, check that a non-root user is refused, then power off.
    XlInfo,
    /// `hypercall-abuse` (and `cargo xtask bench hypercall`): load the
    /// `hvctl` driver, measure the VERSION ioctl (`oxen-bench hypercall`),
    /// throw random and malformed hypercalls at the hypervisor
    /// (`oxen-hcabuse`), check it and dom0 still work and that a non-root
    /// user is refused, then power off.
    HypercallAbuse,
    /// `domu-basic`: load the `hvctl` driver and drive a tiny guest domain
    /// through its lifecycle with `xl-rs`, then power off.
    Domu,
    /// `domu-lifecycle`: like `Domu`, with Debian's kernel as the guest.
    DomuLinux,
    /// The Linux guest's own image (inside `DomuLinux`'s): report, print a
    /// heartbeat, echo console lines, power off on its power button.
    DomuGuest,
    /// `notify`: the notification device as dom0 sees it, the `hvctl`
    /// driver bound to it, and `xl-rs wait-event` woken by domain events
    /// of the tiny guest, then power off.
    Notify,
    /// `domu-isolation`: load the `hvctl` driver, crash a tiny guest under
    /// both on_crash policies, then create a Linux guest that probes what
    /// is not its own, and check dom0 and the free pages afterwards.
    DomuIsolation,
    /// The probing Linux guest's own image (inside `DomuIsolation`'s):
    /// `oxen-domuprobe` on memory, MSRs (`msr.ko`), ports, VMCALL, and
    /// `hvctl.ko`, which must be refused.
    DomuProbe,
}

impl InitramfsKind {
    /// The scenario-style name: `dom0-boot`, `isolation`, `xl-info`,
    /// `hypercall-abuse`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dom0Boot => "dom0-boot",
            Self::Isolation => "isolation",
            Self::XlInfo => "xl-info",
            Self::HypercallAbuse => "hypercall-abuse",
            Self::Domu => "domu",
            Self::DomuLinux => "domu-linux",
            Self::DomuGuest => "domu-guest",
            Self::Notify => "notify",
            Self::DomuIsolation => "domu-isolation",
            Self::DomuProbe => "domu-probe",
        }
    }

    /// The `/init` script, relative to the workspace root.
    pub fn script(self) -> PathBuf {
        Path::new("tests/qemu/initramfs").join(format!("init-{}.sh", self.name()))
    }

    /// Kernel modules (file names under `lib/modules/<release>/`) the image
    /// ships in `/lib/modules/`.
    fn modules(self) -> &'static [&'static str] {
        match self {
            // /dev/cpu/N/cpuid, to read the hypervisor's CPUID signature.
            Self::Dom0Boot => &["cpuid.ko"],
            // The ACPI power button's driver and the event device that
            // reports its presses to userspace.
            Self::DomuGuest => &["evdev.ko", "button.ko"],
            // /dev/cpu/N/msr, for the probe's MSR accesses.
            Self::DomuProbe => &["msr.ko"],
            // hvctl.ko is not Debian's: it comes as an extra file.
            Self::Isolation
            | Self::XlInfo
            | Self::HypercallAbuse
            | Self::Domu
            | Self::DomuLinux
            | Self::Notify
            | Self::DomuIsolation => &[],
        }
    }
}

/// The shell functions every image carries for its `/init`
/// (`drain_console`, `run`), relative to the workspace root, and where.
pub const COMMON_SCRIPT: (&str, &str) = ("tests/qemu/initramfs/common.sh", "lib/oxen/common.sh");

/// A file to add to an image: `source` on the host, `dest` in the image
/// (absolute, e.g. `/bin/xl-rs`), permission bits `mode` (e.g. `0o755`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// The file on the host.
    pub source: PathBuf,
    /// Its path in the image.
    pub dest: String,
    /// Its permission bits.
    pub mode: u32,
}

/// The busybox applets the images link in `/bin`: what the init scripts use
/// and a few for looking around by hand.
pub const APPLETS: &[&str] = &[
    "[", "awk", "cat", "cmp", "cp", "cut", "dd", "devmem", "dmesg", "echo", "env", "false", "free",
    "grep", "head", "hexdump", "insmod", "kill", "ln", "ls", "lsmod", "mkdir", "mkfifo", "mknod",
    "mount", "mv", "nproc", "od", "poweroff", "printf", "ps", "reboot", "rm", "rmmod", "sed",
    "seq", "sh", "sleep", "strings", "sync", "tail", "taskset", "tee", "test", "timeout", "tr",
    "true", "umount", "uname", "uptime", "wc", "xxd",
];

/// Builds the initramfs of `kind` at `out` (an uncompressed newc cpio):
/// busybox-static with [`APPLETS`] linked in `/bin`, `/dev/console`,
/// `/dev/null`, the mount points `/dev`, `/proc`, `/sys`, `/tmp`, the kind's
/// modules in `/lib/modules/`, the shared shell functions
/// ([`COMMON_SCRIPT`]) in `/lib/oxen/common.sh`, `/init` from
/// `tests/qemu/initramfs/`, then
/// `extras` (which may replace any of these). Fetches the Debian kernel and
/// busybox when needed. `out` is only rewritten when its bytes change, so its
/// timestamp stays put for callers that cache on it.
pub fn build_initramfs(
    root: &Path,
    kind: InitramfsKind,
    extras: &[ExtraFile],
    out: &Path,
) -> Result<()> {
    let started = std::time::Instant::now();
    let kernel = debian_kernel(root)?;
    check_kernel_config(&kernel)?;
    let busybox = busybox(root)?;
    check_applets(&busybox)?;

    let mut archive = Archive::new();
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "root",
        "etc",
        "lib/modules",
        "lib/oxen",
    ] {
        archive.dir(dir, 0o755)?;
    }
    archive.dir("tmp", 0o1777)?;
    // The kernel opens /dev/console for init's stdin/stdout/stderr before
    // /init runs, so the node must be in the archive (devtmpfs comes later).
    archive.char_dev("dev/console", 0o600, 5, 1)?;
    archive.char_dev("dev/null", 0o666, 1, 3)?;
    archive.file("bin/busybox", 0o755, read(&busybox)?)?;
    for applet in APPLETS {
        archive.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    for module in kind.modules() {
        archive.file(
            &format!("lib/modules/{module}"),
            0o644,
            read(&kernel.module(module)?)?,
        )?;
    }
    let (common_source, common_dest) = COMMON_SCRIPT;
    archive.file(common_dest, 0o644, read(&root.join(common_source))?)?;
    let script_path = root.join(kind.script());
    let script = read(&script_path)?;
    ensure!(
        script.starts_with(b"#!/bin/sh"),
        "{} must start with #!/bin/sh",
        script_path.display()
    );
    archive.file("init", 0o755, script)?;
    let about = format!(
        "kind={}\nkernel={}\nkernel-package={} {}\n",
        kind.name(),
        kernel.release,
        kernel.package,
        kernel.version
    );
    archive.file("etc/oxen-initramfs", 0o644, about.into_bytes())?;
    for extra in extras {
        ensure!(
            extra.dest.starts_with('/'),
            "initramfs destination {:?} must be absolute",
            extra.dest
        );
        archive.file(&extra.dest, extra.mode, read(&extra.source)?)?;
    }

    let bytes = archive.to_bytes();
    let members = cpio::parse(&bytes).context("the archive does not read back")?;
    ensure!(
        members.len() == archive.len(),
        "the archive reads back {} members of {}",
        members.len(),
        archive.len()
    );
    if std::fs::read(out).is_ok_and(|old| old == bytes) {
        eprintln!(
            "assets: {} up to date ({} bytes)",
            out.display(),
            bytes.len()
        );
        return Ok(());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = out.with_extension("partial");
    std::fs::write(&temporary, &bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, out)?;
    eprintln!(
        "assets: built {} ({} initramfs, {} members, {} bytes) in {:.1?}",
        out.display(),
        kind.name(),
        archive.len(),
        bytes.len(),
        started.elapsed()
    );
    Ok(())
}

/// The kernel must unpack an initramfs at all.
fn check_kernel_config(kernel: &KernelAssets) -> Result<()> {
    let options = kernel.config_options()?;
    if options.get("CONFIG_BLK_DEV_INITRD").map(String::as_str) != Some("y") {
        bail!(
            "{} lacks CONFIG_BLK_DEV_INITRD=y: it cannot take an initramfs",
            kernel.config.display()
        );
    }
    Ok(())
}

/// Checks that busybox has every applet of [`APPLETS`] when the binary runs
/// here (it is a static x86-64 Linux binary); says so and goes on when not.
fn check_applets(busybox: &Path) -> Result<()> {
    let output = match Command::new(busybox).arg("--list").output() {
        Ok(output) if output.status.success() => output,
        _ => {
            eprintln!(
                "assets: note: cannot run {} here; applets not checked",
                busybox.display()
            );
            return Ok(());
        }
    };
    let list = String::from_utf8_lossy(&output.stdout);
    let have: Vec<&str> = list.lines().collect();
    let missing: Vec<&str> = APPLETS
        .iter()
        .copied()
        .filter(|a| !have.contains(a))
        .collect();
    ensure!(
        missing.is_empty(),
        "{} lacks the applets {}",
        busybox.display(),
        missing.join(" ")
    );
    Ok(())
}

/// Reads a whole file, naming it on failure.
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
