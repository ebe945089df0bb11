//! Debian packages the commands need, installed on demand.
//!
//! Each command names the packages it needs before it needs them; a missing one
//! is installed with apt-get when we are root (progress visible), and otherwise
//! the exact install command is printed and the command fails.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

/// GRUB's BIOS image and `grub-mkrescue` with its ISO tools.
pub const ISO: &[&str] = &["grub-pc-bin", "grub-common", "xorriso", "mtools"];

/// Bochs with its BIOS. `bochs` depends on `bochs-wx | bochs-gui`: listing
/// `bochs-term` (a small `bochs-gui`) keeps apt from pulling in wxWidgets. The
/// VGA BIOS comes from `seabios` (Bochs' own VGABIOS link dangles without the
/// `vgabios` package).
pub const BOCHS: &[&str] = &["bochs", "bochsbios", "bochs-term", "seabios"];

/// What the generated dom0 assets (`@dom0-vmlinux`, ...; `xtask/src/assets/`)
/// need besides apt and dpkg: `xz` to extract vmlinux from Debian's bzImage.
pub const ASSETS: &[&str] = &["xz-utils"];

/// gcc and the static glibc (`libc6-dev`) to build the C programs of the dom0
/// initramfs images (`gcc -static`): `tools/bench/oxen-bench.c`,
/// `tests/qemu/initramfs/oxen-memprobe.c`, `oxen-runas.c` and
/// `oxen-hcabuse.c`; gcc also links
/// xl-rs for `x86_64-unknown-linux-musl`.
pub const GUEST_TOOLS: &[&str] = &["gcc", "libc6-dev"];

/// What building `tools/hvctl` against Debian's kernel headers needs: the
/// kernel's compiler (`gcc-12`, named in the headers' `.kernelvariables`;
/// `linux-headers-*-amd64` depends on it through
/// `linux-compiler-gcc-12-x86`), `make`, and the libraries the prebuilt
/// kbuild programs of `linux-kbuild-6.1` link (`objtool`: libelf1;
/// `sign-file`: libssl3).
pub const HVCTL_MODULE: &[&str] = &["gcc-12", "make", "libelf1", "libssl3"];

/// QEMU for x86 (TCG, or KVM where the host has nested VT-x).
pub const QEMU: &[&str] = &["qemu-system-x86"];

/// Set once `apt-get update` ran in this process.
static UPDATED: AtomicBool = AtomicBool::new(false);

/// Makes sure every package in `packages` is installed.
pub fn ensure(packages: &[&str]) -> Result<()> {
    ensure_all(&[packages])
}

/// Makes sure every package in every list is installed (one apt-get call).
pub fn ensure_all(lists: &[&[&str]]) -> Result<()> {
    if !have_dpkg() {
        eprintln!(
            "note: dpkg-query not found; assuming these are installed: {}",
            lists.concat().join(" ")
        );
        return Ok(());
    }
    let mut missing = Vec::new();
    for package in lists.iter().flat_map(|list| list.iter()) {
        if !missing.contains(package) && !is_installed(package)? {
            missing.push(*package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing packages: {list}\ninstall them with:\n    sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}"
        );
    }
    println!("installing missing packages: {list}");
    if !UPDATED.swap(true, Ordering::SeqCst) {
        apt(&["update"])?;
    }
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)?;
    for package in &missing {
        if !is_installed(package)? {
            bail!("apt-get reported success but {package} is still not installed");
        }
    }
    Ok(())
}

/// Runs apt-get with its output on our terminal.
fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn have_dpkg() -> bool {
    Command::new("dpkg-query")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Asks dpkg whether `package` is installed. An unknown package is not.
pub fn is_installed(package: &str) -> Result<bool> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .context("cannot run dpkg-query")?;
    // dpkg-query exits 1 for a package it has never heard of.
    Ok(output.status.success() && status_is_installed(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses dpkg's `${Status}` ("want flag state", e.g. `install ok installed`).
/// Only the state word counts: `hold ok installed` is installed too, while
/// `deinstall ok config-files` or `install ok half-configured` is not.
fn status_is_installed(status: &str) -> bool {
    let words: Vec<&str> = status.split_whitespace().collect();
    matches!(words.as_slice(), [_, "ok", "installed"])
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpkg_status() {
        assert!(status_is_installed("install ok installed"));
        assert!(status_is_installed("hold ok installed\n"));
        assert!(!status_is_installed("deinstall ok config-files"));
        assert!(!status_is_installed("unknown ok not-installed"));
        assert!(!status_is_installed("install ok half-configured"));
        assert!(!status_is_installed("install reinstreq installed"));
        assert!(!status_is_installed(""));
    }

    #[test]
    fn an_absent_package_is_missing() {
        if !have_dpkg() {
            return; // not a Debian host: nothing to ask
        }
        assert!(!is_installed("oxen-no-such-package-exists").unwrap());
    }

    #[test]
    fn an_essential_package_is_installed() {
        if !have_dpkg() {
            return;
        }
        // dpkg itself is essential on every Debian system.
        assert!(is_installed("dpkg").unwrap());
    }
}
