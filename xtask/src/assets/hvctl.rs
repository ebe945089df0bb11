//! The dom0 control path for the `@initramfs-xl-info` image: the `hvctl`
//! kernel module (`tools/hvctl/`) built against the pinned Debian kernel's
//! own headers, `xl-rs` linked statically for `x86_64-unknown-linux-musl`,
//! and `oxen-runas` (`tests/qemu/initramfs/oxen-runas.c`), which runs a
//! command as an unprivileged user; the `@initramfs-hypercall-abuse` image
//! adds `oxen-bench` and `oxen-hcabuse` to them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail, ensure};

use super::{
    ExtraFile, assets_dir, debian_kernel, debian_kernel_headers, oxen_bench, static_c_tool,
};
use crate::target_dir;

/// The module's sources (relative to the workspace root) and where the
/// build tree under `target/assets/` holds them: the layout of a DKMS tree
/// (`make -C tools/hvctl dkms-tree`), with the generated ABI header in
/// `include/`.
const MODULE_SOURCES: [(&str, &str); 4] = [
    ("tools/hvctl/hvctl.c", "hvctl.c"),
    ("tools/hvctl/Kbuild", "Kbuild"),
    ("tools/hvctl/Makefile", "Makefile"),
    ("dom0-abi/include/oxen_abi.h", "include/oxen_abi.h"),
];

/// The Rust target xl-rs is built for: static, so it runs on busybox's
/// userland with no C library in the image.
pub const XL_RS_TARGET: &str = "x86_64-unknown-linux-musl";

/// The cargo profile for it (`Cargo.toml`: release, stripped, no debug info).
const XL_RS_PROFILE: &str = "dom0-tools";

/// The files the xl-info initramfs adds to busybox: the module in
/// `/lib/modules/hvctl.ko`, `/bin/xl-rs` and `/bin/oxen-runas`.
pub fn xl_info_extras(root: &Path) -> Result<Vec<ExtraFile>> {
    Ok(vec![
        ExtraFile {
            source: hvctl_module(root)?,
            dest: "/lib/modules/hvctl.ko".to_owned(),
            mode: 0o644,
        },
        ExtraFile {
            source: xl_rs_static(root)?,
            dest: "/bin/xl-rs".to_owned(),
            mode: 0o755,
        },
        ExtraFile {
            source: oxen_runas(root)?,
            dest: "/bin/oxen-runas".to_owned(),
            mode: 0o755,
        },
    ])
}

/// The files the hypercall-abuse initramfs adds to busybox: those of
/// [`xl_info_extras`], `/bin/oxen-bench` (`tools/bench/oxen-bench.c`, run as
/// `oxen-bench hypercall`) and `/bin/oxen-hcabuse`.
pub fn hypercall_abuse_extras(root: &Path) -> Result<Vec<ExtraFile>> {
    let mut extras = xl_info_extras(root)?;
    extras.push(ExtraFile {
        source: oxen_bench(root)?,
        dest: "/bin/oxen-bench".to_owned(),
        mode: 0o755,
    });
    extras.push(ExtraFile {
        source: oxen_hcabuse(root)?,
        dest: "/bin/oxen-hcabuse".to_owned(),
        mode: 0o755,
    });
    Ok(extras)
}

/// `tests/qemu/initramfs/oxen-hcabuse.c`, built into
/// `target/assets/oxen-hcabuse`.
pub fn oxen_hcabuse(root: &Path) -> Result<PathBuf> {
    static_c_tool(root, "tests/qemu/initramfs/oxen-hcabuse.c", "oxen-hcabuse")
}

/// `tests/qemu/initramfs/oxen-runas.c`, built into `target/assets/oxen-runas`.
pub fn oxen_runas(root: &Path) -> Result<PathBuf> {
    static_c_tool(root, "tests/qemu/initramfs/oxen-runas.c", "oxen-runas")
}

/// `hvctl.ko` for the pinned Debian kernel, at
/// `target/assets/hvctl-<release>.ko`. Rebuilt only when a source is newer
/// than it: the sources are copied into `target/assets/hvctl-build/<release>/`
/// and built there with `make -C <headers> M=<that directory> modules`
/// (Debian's headers choose `gcc-12`, the kernel's compiler). A compiler
/// warning fails the build. Installs [`crate::deps::HVCTL_MODULE`] when
/// missing and fetches the headers on first use.
pub fn hvctl_module(root: &Path) -> Result<PathBuf> {
    let kernel = debian_kernel(root)?;
    let out = assets_dir(root).join(format!("hvctl-{}.ko", kernel.release));
    let mut newest_source = SystemTime::UNIX_EPOCH;
    for (source, _) in MODULE_SOURCES {
        let path = root.join(source);
        let modified = std::fs::metadata(&path)
            .and_then(|meta| meta.modified())
            .with_context(|| format!("reading {}", path.display()))?;
        newest_source = newest_source.max(modified);
    }
    let built = std::fs::metadata(&out)
        .and_then(|meta| meta.modified())
        .ok();
    if built.is_some_and(|built| built >= newest_source) {
        return Ok(out);
    }

    let headers = debian_kernel_headers(root, &kernel)?;
    crate::deps::ensure(crate::deps::HVCTL_MODULE)?;
    let dir = assets_dir(root).join("hvctl-build").join(&kernel.release);
    std::fs::create_dir_all(dir.join("include"))?;
    for (source, dest) in MODULE_SOURCES {
        let bytes =
            std::fs::read(root.join(source)).with_context(|| format!("reading {source}"))?;
        let dest = dir.join(dest);
        // Unchanged files keep their timestamps, so kbuild skips them.
        if std::fs::read(&dest).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    eprintln!(
        "assets: building hvctl.ko for {} in {}",
        kernel.release,
        dir.display()
    );
    let output = Command::new("make")
        .arg("-C")
        .arg(&headers.build_dir)
        .arg(format!("M={}", dir.display()))
        .arg("modules")
        .env_remove("MAKEFLAGS")
        .output()
        .context("cannot run make")?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for line in log.lines() {
        eprintln!("assets:   {line}");
    }
    ensure!(
        output.status.success(),
        "building hvctl.ko failed ({})",
        output.status
    );
    let warnings = compiler_warnings(&log);
    if !warnings.is_empty() {
        bail!(
            "building hvctl.ko produced {} warning(s), which this build treats as errors:\n{}",
            warnings.len(),
            warnings.join("\n")
        );
    }
    let module = dir.join("hvctl.ko");
    let bytes = std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
    let vermagic = format!("vermagic={} ", kernel.release);
    ensure!(
        contains(&bytes, vermagic.as_bytes()),
        "{} has no `{vermagic}`: it would not load into {}",
        module.display(),
        kernel.release
    );
    let temporary = out.with_extension("partial");
    std::fs::write(&temporary, &bytes)?;
    std::fs::rename(&temporary, &out)?;
    eprintln!("assets: built {} ({} bytes)", out.display(), bytes.len());
    Ok(out)
}

/// The lines of a kbuild log that report a compiler or objtool warning.
fn compiler_warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains("warning:") || line.contains("error:"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// `xl-rs` for [`XL_RS_TARGET`], profile `dom0-tools`, built by cargo (which
/// rebuilds it only when its sources change) into the target directory.
/// gcc links it ([`crate::deps::GUEST_TOOLS`]).
pub fn xl_rs_static(root: &Path) -> Result<PathBuf> {
    crate::deps::ensure(crate::deps::GUEST_TOOLS)?;
    eprintln!("assets: building xl-rs for {XL_RS_TARGET}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .env("RUSTUP_AUTO_INSTALL", "1")
        .args(["build", "--quiet", "-p", "xl-rs", "--bin", "xl-rs"])
        .args(["--profile", XL_RS_PROFILE, "--target", XL_RS_TARGET])
        .status()
        .context("cannot run cargo")?;
    ensure!(
        status.success(),
        "building xl-rs for {XL_RS_TARGET} failed ({status})"
    );
    let path = target_dir()
        .join(XL_RS_TARGET)
        .join(XL_RS_PROFILE)
        .join("xl-rs");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if elf_interpreter(&bytes)? {
        bail!(
            "{} asks for a dynamic loader (PT_INTERP): it would not run in the initramfs",
            path.display()
        );
    }
    Ok(path)
}

/// Whether an ELF64 little-endian file has a `PT_INTERP` program header
/// (is dynamically linked); an error when it is no such ELF file.
fn elf_interpreter(bytes: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    ensure!(
        bytes.len() >= 64 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1,
        "not an ELF64 little-endian file"
    );
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&bytes[32..40]);
    let phoff = usize::try_from(u64::from_le_bytes(phoff))?;
    let (entry_size, count) = (u16_at(54), u16_at(56));
    for index in 0..count {
        let at = phoff + index * entry_size;
        let Some(header) = bytes.get(at..at + 4) else {
            bail!("program header {index} lies outside the file");
        };
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_found_in_a_kbuild_log() {
        let log = "  CC [M]  /x/hvctl.o\n\
                   /x/hvctl.c:98:34: warning: passing argument 1 discards const\n\
                   Skipping BTF generation for /x/hvctl.ko due to unavailability of vmlinux\n\
                   /x/hvctl.o: warning: objtool: missing int3 after ret\n";
        assert_eq!(compiler_warnings(log).len(), 2);
        assert!(compiler_warnings("  LD [M]  /x/hvctl.ko\n").is_empty());
    }

    #[test]
    fn this_test_binary_is_dynamically_linked() {
        // Rust links test programs on Linux against glibc's loader.
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
            assert!(elf_interpreter(&me).unwrap());
        }
        assert!(elf_interpreter(b"#!/bin/sh\n").is_err());
    }

    /// Builds `@initramfs-xl-info` for real (Debian's kernel and headers,
    /// gcc-12, the musl target) and checks its members.
    /// `cargo test -p xtask -- --ignored --nocapture real_xl_info_initramfs`
    #[test]
    #[ignore = "downloads the Debian kernel headers and builds the module"]
    fn real_xl_info_initramfs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut resolver = super::super::Resolver::new(root);
        let image = resolver
            .resolve(super::super::NamedAsset::InitramfsXlInfo)
            .unwrap();
        let members = super::super::cpio::parse(&std::fs::read(&image).unwrap()).unwrap();
        for wanted in [
            "lib/modules/hvctl.ko",
            "bin/xl-rs",
            "bin/oxen-runas",
            "init",
        ] {
            assert!(
                members.iter().any(|member| member.name == wanted),
                "{} has no {wanted}",
                image.display()
            );
        }
    }

    #[test]
    fn sources_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for (source, _) in MODULE_SOURCES {
            assert!(root.join(source).is_file(), "{source}");
        }
        assert!(root.join("tests/qemu/initramfs/oxen-runas.c").is_file());
        assert!(root.join("tests/qemu/initramfs/oxen-hcabuse.c").is_file());
    }
}
