//! `@name` references to generated assets, for scenario `[[modules]]` and the
//! `--module` option of `cargo xtask iso|run`: `@dom0-vmlinux` and friends
//! stand for files that xtask fetches or builds under `target/assets/` (and
//! caches there) rather than files in the tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};

use super::guests::{domu_extras, domu_isolation_extras, domu_linux_extras};
use super::hvctl::{hypercall_abuse_extras, xl_info_extras};
use super::{
    ExtraFile, InitramfsKind, assets_dir, build_initramfs, debian_kernel, debian_vmlinux,
    oxen_bench, oxen_memprobe,
};

/// A generated asset that a module path may name as `@NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamedAsset {
    /// `@dom0-vmlinux`: the ELF vmlinux extracted from Debian's kernel (PVH entry).
    Dom0Vmlinux,
    /// `@dom0-bzimage`: Debian's kernel as shipped (`boot/vmlinuz-<release>`).
    Dom0Bzimage,
    /// `@initramfs-dom0-boot`: the dom0-boot initramfs (`init-dom0-boot.sh`).
    InitramfsDom0Boot,
    /// `@initramfs-isolation`: the isolation initramfs (`init-isolation.sh`).
    InitramfsIsolation,
    /// `@initramfs-xl-info`: the xl-info initramfs (`init-xl-info.sh`) with
    /// `hvctl.ko`, `xl-rs` and `oxen-runas`.
    InitramfsXlInfo,
    /// `@initramfs-hypercall-abuse`: the hypercall-abuse initramfs
    /// (`init-hypercall-abuse.sh`) with what `@initramfs-xl-info` carries,
    /// `oxen-bench` and `oxen-hcabuse`.
    InitramfsHypercallAbuse,
    /// `@initramfs-domu`: the domu initramfs (`init-domu.sh`) with what
    /// `@initramfs-xl-info` carries, the tiny test guest
    /// (`tests/qemu/guests/tiny-pvh.S`) and its xl.cfg.
    InitramfsDomu,
    /// `@initramfs-domu-linux`: the domu-linux initramfs
    /// (`init-domu-linux.sh`) with what `@initramfs-xl-info` carries,
    /// Debian's vmlinux as the guest kernel, the guest's own initramfs
    /// (`init-domu-guest.sh`) and its xl.cfg.
    InitramfsDomuLinux,
    /// `@initramfs-notify`: the notify initramfs (`init-notify.sh`) with
    /// what `@initramfs-domu` carries.
    InitramfsNotify,
    /// `@initramfs-domu-isolation`: the domu-isolation initramfs
    /// (`init-domu-isolation.sh`) with what `@initramfs-xl-info` carries,
    /// `oxen-domuprobe`, the tiny guest and its crashing xl.cfg, Debian's
    /// vmlinux and the probing guest's own initramfs (`init-domu-probe.sh`)
    /// and xl.cfg.
    InitramfsDomuIsolation,
}

impl NamedAsset {
    /// Every asset, in the order of the documentation.
    pub const ALL: [Self; 10] = [
        Self::Dom0Vmlinux,
        Self::Dom0Bzimage,
        Self::InitramfsDom0Boot,
        Self::InitramfsIsolation,
        Self::InitramfsXlInfo,
        Self::InitramfsHypercallAbuse,
        Self::InitramfsDomu,
        Self::InitramfsDomuLinux,
        Self::InitramfsNotify,
        Self::InitramfsDomuIsolation,
    ];

    /// The name after `@`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dom0Vmlinux => "dom0-vmlinux",
            Self::Dom0Bzimage => "dom0-bzimage",
            Self::InitramfsDom0Boot => "initramfs-dom0-boot",
            Self::InitramfsIsolation => "initramfs-isolation",
            Self::InitramfsXlInfo => "initramfs-xl-info",
            Self::InitramfsHypercallAbuse => "initramfs-hypercall-abuse",
            Self::InitramfsDomu => "initramfs-domu",
            Self::InitramfsDomuLinux => "initramfs-domu-linux",
            Self::InitramfsNotify => "initramfs-notify",
            Self::InitramfsDomuIsolation => "initramfs-domu-isolation",
        }
    }

    /// Parses a module path: `Ok(None)` when it does not start with `@`
    /// (a plain file), an error when it names no asset.
    pub fn parse(path: &str) -> Result<Option<Self>> {
        let Some(name) = path.strip_prefix('@') else {
            return Ok(None);
        };
        match Self::ALL.into_iter().find(|asset| asset.name() == name) {
            Some(asset) => Ok(Some(asset)),
            None => {
                let known: Vec<String> = Self::ALL
                    .iter()
                    .map(|asset| format!("@{}", asset.name()))
                    .collect();
                bail!(
                    "no generated asset `{path}`; there are: {}",
                    known.join(" ")
                )
            }
        }
    }

    /// Fetches or builds the asset (cached under `target/assets/`) and
    /// returns its path.
    fn make(self, root: &Path) -> Result<PathBuf> {
        match self {
            Self::Dom0Vmlinux => debian_vmlinux(root).map(|(_, vmlinux, _)| vmlinux),
            Self::Dom0Bzimage => debian_kernel(root).map(|kernel| kernel.bzimage),
            Self::InitramfsXlInfo
            | Self::InitramfsHypercallAbuse
            | Self::InitramfsDomu
            | Self::InitramfsDomuLinux
            | Self::InitramfsNotify
            | Self::InitramfsDomuIsolation => {
                let (kind, extras) = match self {
                    Self::InitramfsXlInfo => (InitramfsKind::XlInfo, xl_info_extras(root)?),
                    Self::InitramfsHypercallAbuse => {
                        (InitramfsKind::HypercallAbuse, hypercall_abuse_extras(root)?)
                    }
                    Self::InitramfsDomu => (InitramfsKind::Domu, domu_extras(root)?),
                    Self::InitramfsNotify => (InitramfsKind::Notify, domu_extras(root)?),
                    Self::InitramfsDomuIsolation => {
                        (InitramfsKind::DomuIsolation, domu_isolation_extras(root)?)
                    }
                    _ => (InitramfsKind::DomuLinux, domu_linux_extras(root)?),
                };
                let out = assets_dir(root).join(format!("initramfs-{}.cpio", kind.name()));
                build_initramfs(root, kind, &extras, &out)?;
                Ok(out)
            }
            Self::InitramfsDom0Boot | Self::InitramfsIsolation => {
                let kind = if self == Self::InitramfsDom0Boot {
                    InitramfsKind::Dom0Boot
                } else {
                    InitramfsKind::Isolation
                };
                let out = assets_dir(root).join(format!("initramfs-{}.cpio", kind.name()));
                // dom0-boot's /init runs the micro-benchmarks when present;
                // the isolation /init runs the memory probe.
                let (source, dest) = match kind {
                    InitramfsKind::Dom0Boot => (oxen_bench(root)?, "/bin/oxen-bench"),
                    InitramfsKind::Isolation => (oxen_memprobe(root)?, "/bin/oxen-memprobe"),
                    _ => {
                        unreachable!("the hvctl images have their own arm")
                    }
                };
                let extras = vec![ExtraFile {
                    source,
                    dest: dest.to_owned(),
                    mode: 0o755,
                }];
                build_initramfs(root, kind, &extras, &out)?;
                Ok(out)
            }
        }
    }
}

impl std::fmt::Display for NamedAsset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{}", self.name())
    }
}

/// Makes each asset at most once per process and remembers the outcome
/// (a failure too, so that every scenario needing it fails the same way).
#[derive(Debug)]
pub struct Resolver {
    root: PathBuf,
    done: BTreeMap<NamedAsset, std::result::Result<PathBuf, String>>,
}

impl Resolver {
    /// A resolver for the workspace at `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            done: BTreeMap::new(),
        }
    }

    /// The path of `asset`, made first if this resolver has not made it yet.
    /// Progress goes to stderr (`assets: ...`).
    pub fn resolve(&mut self, asset: NamedAsset) -> Result<PathBuf> {
        let root = self.root.clone();
        let outcome = self.done.entry(asset).or_insert_with(|| {
            eprintln!("assets: preparing {asset}");
            let started = Instant::now();
            match asset.make(&root) {
                Ok(path) => {
                    let size = std::fs::metadata(&path).map_or(0, |meta| meta.len());
                    eprintln!(
                        "assets: {asset} = {} ({:.1} MB, ready in {:.1} s)",
                        path.display(),
                        size as f64 / 1e6,
                        started.elapsed().as_secs_f64()
                    );
                    Ok(path)
                }
                Err(error) => {
                    eprintln!("assets: cannot prepare {asset}: {error:#}");
                    Err(format!("{error:#}"))
                }
            }
        });
        outcome
            .clone()
            .map_err(|error| anyhow!("cannot prepare {asset}: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for asset in NamedAsset::ALL {
            assert_eq!(NamedAsset::parse(&asset.to_string()).unwrap(), Some(asset));
        }
        assert_eq!(NamedAsset::parse("tests/qemu/cache/vmlinux").unwrap(), None);
        let error = NamedAsset::parse("@dom0-kernel").unwrap_err().to_string();
        assert!(error.contains("@dom0-vmlinux"), "{error}");
    }
}
