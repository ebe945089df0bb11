//! Test guests for domU scenarios: `tests/qemu/guests/tiny-pvh.S`, the
//! smallest PVH guest (built with gcc and ld, no libc), and the files of
//! the domu, domu-linux and domu-isolation initramfs images.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use super::hvctl::xl_info_extras;
use super::initramfs::{ExtraFile, InitramfsKind, build_initramfs};
use super::{assets_dir, debian_vmlinux, oxen_domuprobe};

const SOURCE: &str = "tests/qemu/guests/tiny-pvh.S";
const SCRIPT: &str = "tests/qemu/guests/tiny-pvh.ld";
const CONFIG: &str = "tests/qemu/guests/tiny.cfg";

/// `target/assets/tiny-pvh.elf`, rebuilt when its source or linker script
/// is newer.
pub fn tiny_pvh(root: &Path) -> Result<PathBuf> {
    let out = assets_dir(root).join("tiny-pvh.elf");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newest = [SOURCE, SCRIPT]
        .iter()
        .filter_map(|s| modified(&root.join(s)))
        .max();
    if let (Some(built), Some(newest)) = (modified(&out), newest)
        && built >= newest
    {
        return Ok(out);
    }
    crate::deps::ensure(crate::deps::GUEST_TOOLS)?;
    std::fs::create_dir_all(assets_dir(root))?;
    let object = assets_dir(root).join("tiny-pvh.o");
    let run = |cmd: &mut Command, what: &str| -> Result<()> {
        let status = cmd
            .current_dir(root)
            .status()
            .with_context(|| format!("cannot run {what}"))?;
        ensure!(status.success(), "{what} failed ({status})");
        Ok(())
    };
    run(
        Command::new("gcc").args(["-c", SOURCE, "-o"]).arg(&object),
        "gcc -c tiny-pvh.S",
    )?;
    run(
        Command::new("ld")
            .args([
                "-static",
                "-nostdlib",
                "-z",
                "noexecstack",
                "--no-warn-rwx-segments",
                "-T",
                SCRIPT,
                "-o",
            ])
            .arg(&out)
            .arg(&object),
        "ld (tiny-pvh)",
    )?;
    eprintln!("assets: built {}", out.display());
    Ok(out)
}

/// The tiny guest at `/guests/tiny-pvh.elf` and its configuration at
/// `/etc/oxen/tiny.cfg`.
fn tiny_guest_files(root: &Path) -> Result<[ExtraFile; 2]> {
    Ok([
        ExtraFile {
            source: tiny_pvh(root)?,
            dest: "/guests/tiny-pvh.elf".to_owned(),
            mode: 0o644,
        },
        ExtraFile {
            source: root.join(CONFIG),
            dest: "/etc/oxen/tiny.cfg".to_owned(),
            mode: 0o644,
        },
    ])
}

/// The files the domu initramfs adds: those of the xl-info image, the tiny
/// guest at `/guests/tiny-pvh.elf` and its configuration at
/// `/etc/oxen/tiny.cfg`.
pub fn domu_extras(root: &Path) -> Result<Vec<ExtraFile>> {
    let mut extras = xl_info_extras(root)?;
    extras.extend(tiny_guest_files(root)?);
    Ok(extras)
}

/// The Linux guest's own initramfs (`init-domu-guest.sh`), built into
/// `target/assets/initramfs-domu-guest.cpio`.
pub fn domu_guest_initramfs(root: &Path) -> Result<PathBuf> {
    let out = assets_dir(root).join("initramfs-domu-guest.cpio");
    build_initramfs(root, InitramfsKind::DomuGuest, &[], &out)?;
    Ok(out)
}

/// The files the domu-linux initramfs adds: those of the xl-info image,
/// Debian's vmlinux at `/guests/vmlinux`, the guest's own initramfs at
/// `/guests/domu-initramfs.cpio` and its configuration at
/// `/etc/oxen/linux.cfg`; for scenarios domu-churn, domu-smp and
/// sched-fair, their scripts in `/lib/oxen/`, `/bin/oxen-bench`, and the
/// tiny guest with its configuration.
pub fn domu_linux_extras(root: &Path) -> Result<Vec<ExtraFile>> {
    let mut extras = xl_info_extras(root)?;
    let (_, vmlinux, _) = debian_vmlinux(root)?;
    let guest_image = domu_guest_initramfs(root)?;
    extras.push(ExtraFile {
        source: vmlinux,
        dest: "/guests/vmlinux".to_owned(),
        mode: 0o644,
    });
    extras.push(ExtraFile {
        source: guest_image,
        dest: "/guests/domu-initramfs.cpio".to_owned(),
        mode: 0o644,
    });
    extras.push(ExtraFile {
        source: root.join("tests/qemu/guests/linux.cfg"),
        dest: "/etc/oxen/linux.cfg".to_owned(),
        mode: 0o644,
    });
    // Scenarios domu-churn (`oxen.test=churn`), domu-smp (`smp`) and
    // sched-fair (`sched`, with the tiny guest as its CPU-bound guests).
    for script in ["domu-churn.sh", "domu-smp.sh", "sched-fair.sh"] {
        extras.push(ExtraFile {
            source: root.join("tests/qemu/initramfs").join(script),
            dest: format!("/lib/oxen/{script}"),
            mode: 0o755,
        });
    }
    extras.extend(tiny_guest_files(root)?);
    extras.push(ExtraFile {
        source: super::oxen_bench(root)?,
        dest: "/bin/oxen-bench".to_owned(),
        mode: 0o755,
    });
    Ok(extras)
}

/// The files the domu-isolation initramfs adds: those of the xl-info image,
/// `/bin/oxen-domuprobe` (dom0 uses its `where`), the tiny guest at
/// `/guests/tiny-pvh.elf` with `/etc/oxen/crash.cfg` (it triple-faults),
/// Debian's vmlinux at `/guests/vmlinux`, the probing guest's own initramfs
/// (`init-domu-probe.sh` with `oxen-domuprobe`, `hvctl.ko` and `msr.ko`) at
/// `/guests/domu-probe-initramfs.cpio` and its configuration at
/// `/etc/oxen/probe.cfg`.
pub fn domu_isolation_extras(root: &Path) -> Result<Vec<ExtraFile>> {
    let mut extras = xl_info_extras(root)?;
    let probe = oxen_domuprobe(root)?;
    let hvctl = extras
        .iter()
        .find(|e| e.dest == "/lib/modules/hvctl.ko")
        .map(|e| e.source.clone())
        .context("the xl-info files have no hvctl.ko")?;
    let guest_image = assets_dir(root).join("initramfs-domu-probe.cpio");
    let guest_extras = [
        ExtraFile {
            source: probe.clone(),
            dest: "/bin/oxen-domuprobe".to_owned(),
            mode: 0o755,
        },
        ExtraFile {
            source: hvctl,
            dest: "/lib/modules/hvctl.ko".to_owned(),
            mode: 0o644,
        },
    ];
    build_initramfs(root, InitramfsKind::DomuProbe, &guest_extras, &guest_image)?;
    let (_, vmlinux, _) = debian_vmlinux(root)?;
    extras.push(ExtraFile {
        source: probe,
        dest: "/bin/oxen-domuprobe".to_owned(),
        mode: 0o755,
    });
    extras.push(ExtraFile {
        source: tiny_pvh(root)?,
        dest: "/guests/tiny-pvh.elf".to_owned(),
        mode: 0o644,
    });
    extras.push(ExtraFile {
        source: root.join("tests/qemu/guests/crash.cfg"),
        dest: "/etc/oxen/crash.cfg".to_owned(),
        mode: 0o644,
    });
    extras.push(ExtraFile {
        source: vmlinux,
        dest: "/guests/vmlinux".to_owned(),
        mode: 0o644,
    });
    extras.push(ExtraFile {
        source: guest_image,
        dest: "/guests/domu-probe-initramfs.cpio".to_owned(),
        mode: 0o644,
    });
    extras.push(ExtraFile {
        source: root.join("tests/qemu/guests/probe.cfg"),
        dest: "/etc/oxen/probe.cfg".to_owned(),
        mode: 0o644,
    });
    Ok(extras)
}
