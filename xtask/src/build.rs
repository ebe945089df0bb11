//! `cargo xtask build`: the hypervisor ELF for bare metal, checked on the host.
//!
//! The build uses the custom soft-float target `x86_64-hypervisor.json` with
//! `build-std` (core and alloc), which needs the nightly pinned in
//! `rust-toolchain.toml`. The result must be an ELF64 x86-64 executable with a
//! valid multiboot2 header in its first 32 KiB, or GRUB will not load it; both
//! are checked here so that a broken image fails the build, not a boot.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{target_dir, workspace_root};

/// The custom target, relative to the workspace root.
const TARGET_SPEC: &str = "x86_64-hypervisor.json";

/// The cargo arguments that select the bare-metal hypervisor binary and its
/// target (shared by the build and the bare-metal clippy of `lints.rs`).
pub const BARE_METAL_ARGS: &[&str] = &[
    "-p",
    "hypervisor",
    "--bin",
    "hypervisor",
    "--target",
    TARGET_SPEC,
    "-Zjson-target-spec",
    "-Zbuild-std=core,alloc",
    "-Zbuild-std-features=compiler-builtins-mem",
];

/// A built and checked hypervisor image.
#[derive(Debug)]
pub struct Hypervisor {
    pub path: PathBuf,
}

/// Builds the hypervisor, checks it, and prints its entry point and size.
pub fn build(debug: bool) -> Result<Hypervisor> {
    let profile = if debug { "debug" } else { "release" };
    println!("building the hypervisor ({profile})");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .env("RUSTUP_AUTO_INSTALL", "1")
        .arg("build")
        .args(BARE_METAL_ARGS);
    if !debug {
        command.arg("--release");
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("the hypervisor build failed ({status})");
    }
    let path = target_dir()
        .join("x86_64-hypervisor")
        .join(profile)
        .join("hypervisor");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let elf =
        check_elf(&bytes).with_context(|| format!("{} is not a usable image", path.display()))?;
    let header = hypervisor::boot::multiboot2::find_header(&bytes)
        .map_err(|error| anyhow::anyhow!("{}: bad multiboot2 header: {error:?}", path.display()))?;
    println!(
        "hypervisor: {} (ELF64 x86-64 executable, entry {:#x}, {} bytes = {:.1} MiB)",
        path.display(),
        elf.entry,
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0)
    );
    println!(
        "multiboot2 header: at offset {:#x}, {} bytes, architecture {} (i386 protected mode)",
        header.offset, header.length, header.architecture
    );
    Ok(Hypervisor { path })
}

/// What we need to know from an ELF header.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfInfo {
    pub entry: u64,
}

/// Checks the ELF header (System V gABI, "ELF Header"): 64-bit, little-endian,
/// `ET_EXEC`, `EM_X86_64`; returns the entry point.
pub fn check_elf(bytes: &[u8]) -> Result<ElfInfo> {
    const EHDR_SIZE: usize = 64;
    const ELFCLASS64: u8 = 2;
    const ELFDATA2LSB: u8 = 1;
    const EV_CURRENT: u8 = 1;
    const ET_EXEC: u16 = 2;
    const EM_X86_64: u16 = 62;

    if bytes.len() < EHDR_SIZE {
        bail!("too short for an ELF header ({} bytes)", bytes.len());
    }
    if bytes[..4] != *b"\x7fELF" {
        bail!("no ELF magic");
    }
    if bytes[4] != ELFCLASS64 {
        bail!("not ELF64 (EI_CLASS = {})", bytes[4]);
    }
    if bytes[5] != ELFDATA2LSB {
        bail!("not little-endian (EI_DATA = {})", bytes[5]);
    }
    if bytes[6] != EV_CURRENT {
        bail!("unknown ELF version {}", bytes[6]);
    }
    let u16_at = |offset: usize| u16::from_le_bytes([bytes[offset], bytes[offset + 1]]);
    let e_type = u16_at(16);
    if e_type != ET_EXEC {
        bail!("not a static executable (e_type = {e_type}, want ET_EXEC = {ET_EXEC})");
    }
    let e_machine = u16_at(18);
    if e_machine != EM_X86_64 {
        bail!("not x86-64 (e_machine = {e_machine})");
    }
    let mut entry = [0; 8];
    entry.copy_from_slice(&bytes[24..32]);
    let entry = u64::from_le_bytes(entry);
    if entry == 0 {
        bail!("no entry point");
    }
    Ok(ElfInfo { entry })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, e_type: u16, machine: u16, entry: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = class;
        bytes[5] = 1;
        bytes[6] = 1;
        bytes[16..18].copy_from_slice(&e_type.to_le_bytes());
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes[24..32].copy_from_slice(&entry.to_le_bytes());
        bytes
    }

    #[test]
    fn accepts_an_x86_64_executable() {
        let info = check_elf(&header(2, 2, 62, 0x10_0000)).unwrap();
        assert_eq!(info, ElfInfo { entry: 0x10_0000 });
    }

    #[test]
    fn rejects_what_grub_cannot_boot() {
        assert!(check_elf(b"\x7fELF").is_err());
        assert!(check_elf(&[0; 64]).is_err());
        assert!(check_elf(&header(1, 2, 62, 0x10_0000)).is_err(), "ELF32");
        assert!(check_elf(&header(2, 3, 62, 0x10_0000)).is_err(), "ET_DYN");
        assert!(check_elf(&header(2, 2, 183, 0x10_0000)).is_err(), "aarch64");
        assert!(check_elf(&header(2, 2, 62, 0)).is_err(), "no entry");
    }

    #[test]
    fn refuses_a_position_independent_host_executable() {
        // This test program is ELF64 x86-64 but, as Rust links it on Linux,
        // position independent (ET_DYN): the kind of image the check refuses.
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
            let error = check_elf(&me).unwrap_err().to_string();
            assert!(error.contains("e_type = 3"), "{error}");
        }
    }
}
