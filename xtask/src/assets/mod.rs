//! Inputs for the dom0 scenarios, made from Debian's own packages: the stock
//! Debian 12 kernel (bzImage, its config, System.map and modules), the
//! uncompressed ELF `vmlinux` extracted from it for the PVH boot path, the
//! headers to build our dom0 driver against, and initramfs images with a
//! busybox userland and a scenario's `/init`.
//!
//! Everything is cached under `<root>/target/assets/` (always there, whatever
//! `CARGO_TARGET_DIR` says, so that every build shares one download):
//!
//! | path | what |
//! |---|---|
//! | `debs/` | the downloaded `.deb` files |
//! | `kernel.lock` | the Debian kernel package and version in use |
//! | `kernel/<abi>_<version>/` | the kernel packages unpacked (`boot/`, `lib/modules/`, `usr/src/`) |
//! | `kernel/<abi>_<version>/vmlinux` | the extracted ELF vmlinux |
//! | `busybox.lock`, `busybox/<version>/` | busybox-static |
//!
//! Nothing is installed on the host; apt-get only downloads (`apt-get update`
//! runs once, when apt-cache does not know a package or a download fails).
//! Delete `kernel.lock` to move to the newest Debian kernel.
//!
//! Progress goes to stderr, prefixed `assets:`.

#![allow(
    dead_code,
    reason = "a library for xtask's commands, which need not call every function"
)]

mod bzimage;
#[cfg(test)]
mod c_tool_tests;
mod cpio;
mod debian;
#[cfg(test)]
mod domuprobe_tests;
mod guests;
#[cfg(test)]
mod hcabuse_tests;
mod hvctl;
mod initramfs;
#[cfg(test)]
mod memprobe_tests;
mod named;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

#[allow(unused_imports, reason = "the API for xtask's commands")]
pub use bzimage::VmlinuxInfo;
pub use guests::domu_guest_initramfs;
#[allow(unused_imports, reason = "the API for xtask's commands")]
pub use initramfs::{ExtraFile, InitramfsKind, build_initramfs};
pub use named::{NamedAsset, Resolver};

use debian::{Lock, Pin};

/// The Debian package that always depends on the current kernel image.
const META_PACKAGE: &str = "linux-image-amd64";

/// `<root>/target/assets`.
pub fn assets_dir(root: &Path) -> PathBuf {
    root.join("target").join("assets")
}

/// The Debian kernel, unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelAssets {
    /// Debian's kernel ABI, e.g. `6.1.0-56`.
    pub abi: String,
    /// The kernel release (`uname -r`), e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// The package the image came from, e.g. `linux-image-6.1.0-56-amd64-unsigned`.
    pub package: String,
    /// Its Debian version, e.g. `6.1.192-2` (the headers are pinned to it too).
    pub version: String,
    /// Where the packages were unpacked.
    pub dir: PathBuf,
    /// `boot/vmlinuz-<release>`: the bzImage.
    pub bzimage: PathBuf,
    /// `boot/config-<release>`.
    pub config: PathBuf,
    /// `boot/System.map-<release>`.
    pub system_map: PathBuf,
    /// `lib/modules/<release>/`.
    pub modules_dir: PathBuf,
}

impl KernelAssets {
    /// The paths of `abi` from `package` at `version`, unpacked under `assets`.
    fn new(assets: &Path, abi: &str, package: &str, version: &str) -> Self {
        let release = format!("{abi}-amd64");
        let dir = assets.join("kernel").join(format!("{abi}_{version}"));
        Self {
            bzimage: dir.join(format!("boot/vmlinuz-{release}")),
            config: dir.join(format!("boot/config-{release}")),
            system_map: dir.join(format!("boot/System.map-{release}")),
            modules_dir: dir.join(format!("lib/modules/{release}")),
            abi: abi.to_owned(),
            release,
            package: package.to_owned(),
            version: version.to_owned(),
            dir,
        }
    }

    /// The image package as a pin.
    fn pin(&self) -> Pin {
        Pin {
            package: self.package.clone(),
            version: self.version.clone(),
        }
    }

    /// Whether the unpack finished and every file is there.
    fn complete(&self) -> bool {
        debian::is_unpacked(&self.pin(), &self.dir)
            && self.bzimage.is_file()
            && self.config.is_file()
            && self.system_map.is_file()
            && self.modules_dir.is_dir()
    }

    /// The kernel's configuration: `CONFIG_X` to `y`, `m`, a value, or `n`
    /// for `# CONFIG_X is not set`.
    pub fn config_options(&self) -> Result<BTreeMap<String, String>> {
        let text = std::fs::read_to_string(&self.config)
            .with_context(|| format!("reading {}", self.config.display()))?;
        Ok(parse_config(&text))
    }

    /// The module file `name` (e.g. `cpuid.ko`) under `lib/modules/<release>/`.
    pub fn module(&self, name: &str) -> Result<PathBuf> {
        find_file(&self.modules_dir, name)?
            .with_context(|| format!("no module {name} under {}", self.modules_dir.display()))
    }

    /// Where [`debian_vmlinux`] puts the extracted vmlinux.
    pub fn vmlinux_path(&self) -> PathBuf {
        self.dir.join("vmlinux")
    }
}

/// Parses a kernel `.config`.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ")
            && let Some(name) = rest.strip_suffix(" is not set")
        {
            options.insert(name.to_owned(), "n".to_owned());
        } else if let Some((name, value)) = line.split_once('=')
            && name.starts_with("CONFIG_")
        {
            options.insert(name.to_owned(), value.to_owned());
        }
    }
    options
}

/// The first file called `name` under `dir` (depth first, sorted).
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_file() && entry.file_name() == name {
            return Ok(Some(path));
        }
        if kind.is_dir()
            && let Some(found) = find_file(&path, name)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The Debian kernel, downloaded and unpacked (cached).
///
/// The package is pinned in `target/assets/kernel.lock` and reused while its
/// files exist. Otherwise the pinned version is fetched again if apt still has
/// it, and failing that the current kernel is resolved from
/// `linux-image-amd64`'s dependency and pinned. The image comes from
/// `linux-image-<abi>-amd64-unsigned` (the plain bzImage; the package without
/// `-unsigned` carries the same kernel with a Secure Boot signature appended),
/// or from the signed package when apt has no unsigned one.
pub fn debian_kernel(root: &Path) -> Result<KernelAssets> {
    let assets = assets_dir(root);
    let lock_path = assets.join("kernel.lock");
    let locked = Lock::read(&lock_path).and_then(|lock| {
        let abi = lock.get("abi")?.first()?.clone();
        let pin = lock.pin("image")?;
        Some(KernelAssets::new(&assets, &abi, &pin.package, &pin.version))
    });
    if let Some(kernel) = locked {
        if kernel.complete() {
            eprintln!(
                "assets: Debian kernel {} ({} {}, pinned in {})",
                kernel.release,
                kernel.package,
                kernel.version,
                lock_path.display()
            );
            return Ok(kernel);
        }
        match fetch_kernel(&assets, &kernel) {
            Ok(()) => return Ok(kernel),
            Err(error) => eprintln!(
                "assets: the pinned {} {} cannot be fetched ({error:#}); resolving the current kernel",
                kernel.package, kernel.version
            ),
        }
    }
    let (abi, pin) = resolve_kernel()?;
    let kernel = KernelAssets::new(&assets, &abi, &pin.package, &pin.version);
    fetch_kernel(&assets, &kernel)?;
    let lock = Lock {
        entries: vec![
            ("abi".to_owned(), vec![abi.clone()]),
            (
                "image".to_owned(),
                vec![pin.package.clone(), pin.version.clone()],
            ),
        ],
    };
    lock.write(
        &lock_path,
        "The Debian kernel used for dom0, pinned by `cargo xtask` (xtask/src/assets).\n\
         Its headers are fetched at the same version. Delete this file to move to the current kernel.",
    )?;
    eprintln!(
        "assets: pinned {} {} in {}",
        pin.package,
        pin.version,
        lock_path.display()
    );
    Ok(kernel)
}

/// Downloads and unpacks the image package of `kernel` and checks its files.
fn fetch_kernel(assets: &Path, kernel: &KernelAssets) -> Result<()> {
    debian::fetch(&assets.join("debs"), &kernel.pin(), &kernel.dir)?;
    for file in [&kernel.bzimage, &kernel.config, &kernel.system_map] {
        ensure!(
            file.is_file(),
            "{} has no {}",
            kernel.package,
            file.display()
        );
    }
    ensure!(
        kernel.modules_dir.is_dir(),
        "{} has no {}",
        kernel.package,
        kernel.modules_dir.display()
    );
    let image = std::fs::read(&kernel.bzimage)?;
    bzimage::SetupHeader::parse(&image).with_context(|| format!("{}", kernel.bzimage.display()))?;
    match bzimage::authenticode_signature(&image) {
        Some(size) => eprintln!(
            "assets: note: {} carries a {size}-byte Secure Boot signature (harmless for booting)",
            kernel.bzimage.display()
        ),
        None => eprintln!("assets: {}: unsigned bzImage", kernel.bzimage.display()),
    }
    Ok(())
}

/// The current kernel ABI and image package, from `linux-image-amd64`.
fn resolve_kernel() -> Result<(String, Pin)> {
    let depends = || debian::capture(Command::new("apt-cache").args(["depends", META_PACKAGE]));
    let mut abi = depends().ok().and_then(|text| abi_from_depends(&text));
    if abi.is_none() && !debian::updated() {
        eprintln!("assets: apt-cache knows no {META_PACKAGE}");
        debian::apt_update()?;
        abi = depends().ok().and_then(|text| abi_from_depends(&text));
    }
    let abi = abi.with_context(|| {
        format!("cannot resolve the kernel ABI from `apt-cache depends {META_PACKAGE}`")
    })?;
    eprintln!("assets: {META_PACKAGE} depends on linux-image-{abi}-amd64");
    for package in [
        format!("linux-image-{abi}-amd64-unsigned"),
        format!("linux-image-{abi}-amd64"),
    ] {
        if let Some(version) = debian::candidate(&package)? {
            eprintln!("assets: using {package} {version}");
            return Ok((abi, Pin { package, version }));
        }
    }
    bail!("apt-cache knows neither linux-image-{abi}-amd64-unsigned nor linux-image-{abi}-amd64")
}

/// The ABI (`6.1.0-56`) in `apt-cache depends linux-image-amd64`'s output.
fn abi_from_depends(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let package = line.trim().strip_prefix("Depends:")?.trim();
        let package = package.trim_start_matches('<').trim_end_matches('>');
        let abi = package
            .strip_prefix("linux-image-")?
            .strip_suffix("-amd64")?;
        let valid = abi.starts_with(|c: char| c.is_ascii_digit())
            && abi
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+');
        valid.then(|| abi.to_owned())
    })
}

/// The headers of a Debian kernel, unpacked beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelHeaders {
    /// `usr/src/linux-headers-<release>`: pass as `make -C <build_dir> M=...`.
    pub build_dir: PathBuf,
    /// `usr/src/linux-headers-<abi>-common`.
    pub common_dir: PathBuf,
    /// `usr/lib/linux-kbuild-<major.minor>`: the host programs of kbuild.
    pub kbuild_dir: PathBuf,
    /// The three packages, at the kernel's version.
    pub packages: Vec<String>,
}

/// Fetches `linux-headers-<abi>-amd64`, `linux-headers-<abi>-common` and
/// `linux-kbuild-<major.minor>` at the version of `kernel` and unpacks them
/// into `kernel.dir`, where their relative symlinks resolve. Not part of
/// [`debian_kernel`]: only the driver build needs them.
pub fn debian_kernel_headers(root: &Path, kernel: &KernelAssets) -> Result<KernelHeaders> {
    let assets = assets_dir(root);
    let series: Vec<&str> = kernel.abi.split('.').take(2).collect();
    ensure!(
        series.len() == 2,
        "cannot tell the kernel series of ABI {}",
        kernel.abi
    );
    let series = series.join(".");
    let packages = [
        format!("linux-headers-{}", kernel.release),
        format!("linux-headers-{}-common", kernel.abi),
        format!("linux-kbuild-{series}"),
    ];
    for package in &packages {
        let pin = Pin {
            package: package.clone(),
            version: kernel.version.clone(),
        };
        debian::fetch(&assets.join("debs"), &pin, &kernel.dir).with_context(|| {
            format!(
                "cannot fetch {package} {} to match the pinned kernel; delete {} to move to the current kernel",
                kernel.version,
                assets.join("kernel.lock").display()
            )
        })?;
    }
    let headers = KernelHeaders {
        build_dir: kernel
            .dir
            .join(format!("usr/src/linux-headers-{}", kernel.release)),
        common_dir: kernel
            .dir
            .join(format!("usr/src/linux-headers-{}-common", kernel.abi)),
        kbuild_dir: kernel.dir.join(format!("usr/lib/linux-kbuild-{series}")),
        packages: packages.to_vec(),
    };
    for dir in [&headers.build_dir, &headers.common_dir, &headers.kbuild_dir] {
        ensure!(
            dir.is_dir(),
            "the header packages have no {}",
            dir.display()
        );
    }
    relocate_headers_makefile(&headers.build_dir, &kernel.dir)?;
    // The build directory reaches the rest through relative symlinks
    // (`scripts`, `tools` into kbuild; `Makefile` includes the common tree).
    for needed in [
        "Makefile",
        ".config",
        "Module.symvers",
        "scripts/basic/fixdep",
    ] {
        let path = headers.build_dir.join(needed);
        ensure!(
            path.exists(),
            "{} is missing (or a dangling symlink)",
            path.display()
        );
    }
    eprintln!("assets: kernel headers in {}", headers.build_dir.display());
    Ok(headers)
}

/// Debian's `linux-headers-<release>/Makefile` is the single line
/// `include /usr/src/linux-headers-<abi>-common/Makefile`: an absolute path
/// into the installed system. Points it into `unpacked` instead (the only
/// absolute reference in the three packages; their symlinks are relative).
fn relocate_headers_makefile(build_dir: &Path, unpacked: &Path) -> Result<()> {
    let makefile = build_dir.join("Makefile");
    let text = std::fs::read_to_string(&makefile)
        .with_context(|| format!("reading {}", makefile.display()))?;
    let mut changed = false;
    let mut relocated = String::new();
    for line in text.lines() {
        match line.strip_prefix("include /usr/src/") {
            Some(rest) => {
                relocated.push_str(&format!("include {}/usr/src/{rest}\n", unpacked.display()));
                changed = true;
            }
            None => {
                relocated.push_str(line);
                relocated.push('\n');
            }
        }
    }
    if changed {
        std::fs::write(&makefile, relocated)?;
        eprintln!(
            "assets: {} now includes the unpacked common headers",
            makefile.display()
        );
    }
    Ok(())
}

/// `tools/bench/oxen-bench.c`, the in-guest micro-benchmarks (CPUID exit
/// round trip, getppid; with `hypercall`, the VERSION ioctl of `/dev/hvctl`),
/// built into `target/assets/oxen-bench` (see [`static_c_tool`]).
pub fn oxen_bench(root: &Path) -> Result<PathBuf> {
    static_c_tool(root, "tools/bench/oxen-bench.c", "oxen-bench")
}

/// `tests/qemu/initramfs/oxen-memprobe.c`, the dom0-isolation probe (reads
/// and writes dom0's reserved memory through /dev/mem), built into
/// `target/assets/oxen-memprobe` (see [`static_c_tool`]).
pub fn oxen_memprobe(root: &Path) -> Result<PathBuf> {
    static_c_tool(
        root,
        "tests/qemu/initramfs/oxen-memprobe.c",
        "oxen-memprobe",
    )
}

/// `tests/qemu/initramfs/oxen-domuprobe.c`, the domu-isolation probe (a
/// domU's reads and writes outside its memory, MSRs, ports, VMCALL; dom0's
/// `where`), built into `target/assets/oxen-domuprobe` (see
/// [`static_c_tool`]).
pub fn oxen_domuprobe(root: &Path) -> Result<PathBuf> {
    static_c_tool(
        root,
        "tests/qemu/initramfs/oxen-domuprobe.c",
        "oxen-domuprobe",
    )
}

/// Headers (relative to the workspace root) the C programs of
/// [`static_c_tool`] may include: a program is rebuilt when one is newer.
const C_TOOL_HEADERS: &[&str] = &["dom0-abi/include/oxen_abi.h"];

/// Builds the C program `source` (relative to `root`) for a guest's
/// initramfs with `gcc -static -O2` into `target/assets/<name>`; rebuilt only
/// when the source or one of [`C_TOOL_HEADERS`] is newer. Installs gcc and
/// libc6-dev ([`crate::deps::GUEST_TOOLS`]) when missing.
fn static_c_tool(root: &Path, source: &str, name: &str) -> Result<PathBuf> {
    let source = root.join(source);
    let out = assets_dir(root).join(name);
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let written = C_TOOL_HEADERS
        .iter()
        .map(|header| modified(&root.join(header)))
        .fold(modified(&source), |newest, header| match (newest, header) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (newest, _) => newest,
        });
    if let (Some(built), Some(written)) = (modified(&out), written)
        && built >= written
    {
        return Ok(out);
    }
    crate::deps::ensure(crate::deps::GUEST_TOOLS)?;
    std::fs::create_dir_all(assets_dir(root))?;
    let status = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&source)
        .current_dir(root)
        .status()
        .context("cannot run gcc")?;
    ensure!(
        status.success(),
        "gcc -static -O2 -o {} {} failed ({status})",
        out.display(),
        source.display()
    );
    eprintln!("assets: built {}", out.display());
    Ok(out)
}

/// Busybox from Debian's `busybox-static` (a static x86-64 binary), unpacked
/// under `target/assets/busybox/<version>/` and pinned in `busybox.lock`.
pub fn busybox(root: &Path) -> Result<PathBuf> {
    let assets = assets_dir(root);
    let lock_path = assets.join("busybox.lock");
    // The epoch's colon is kept out of the path (GRUB and make dislike it).
    let dir_of = |pin: &Pin| assets.join("busybox").join(pin.version.replace(':', "_"));
    if let Some(pin) = Lock::read(&lock_path).and_then(|lock| lock.pin("busybox")) {
        let binary = dir_of(&pin).join("bin/busybox");
        if debian::is_unpacked(&pin, &dir_of(&pin)) && binary.is_file() {
            return Ok(binary);
        }
        if debian::fetch(&assets.join("debs"), &pin, &dir_of(&pin)).is_ok() && binary.is_file() {
            return Ok(binary);
        }
    }
    let pin = debian::resolve("busybox-static")?;
    debian::fetch(&assets.join("debs"), &pin, &dir_of(&pin))?;
    let binary = dir_of(&pin).join("bin/busybox");
    ensure!(
        binary.is_file(),
        "busybox-static {} has no bin/busybox",
        pin.version
    );
    let lock = Lock {
        entries: vec![(
            "busybox".to_owned(),
            vec![pin.package.clone(), pin.version.clone()],
        )],
    };
    lock.write(
        &lock_path,
        "busybox-static for the dom0 initramfs, pinned by `cargo xtask` (xtask/src/assets).",
    )?;
    eprintln!("assets: busybox-static {}", pin.version);
    Ok(binary)
}

/// Extracts the uncompressed ELF vmlinux from `bzimage` into `out`, checks
/// it is ELF64 x86-64 with a PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`) and
/// prints the entry. Cached: nothing is done when `out` is newer than
/// `bzimage` and valid. Needs the `xz` command (Debian package xz-utils).
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<VmlinuxInfo> {
    bzimage::extract(bzimage, out)
}

/// [`debian_kernel`], then its vmlinux extracted to
/// [`KernelAssets::vmlinux_path`].
pub fn debian_vmlinux(root: &Path) -> Result<(KernelAssets, PathBuf, VmlinuxInfo)> {
    let kernel = debian_kernel(root)?;
    let out = kernel.vmlinux_path();
    let info = bzimage::extract(&kernel.bzimage, &out)?;
    Ok((kernel, out, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_from_apt_cache_depends() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(abi_from_depends(text).as_deref(), Some("6.1.0-56"));
        let virtual_dep = "linux-image-amd64\n  Depends: <linux-image-6.1.0-9-amd64>\n";
        assert_eq!(abi_from_depends(virtual_dep).as_deref(), Some("6.1.0-9"));
        assert_eq!(
            abi_from_depends("linux-image-amd64\n  Depends: kmod\n"),
            None
        );
        assert_eq!(abi_from_depends("E: No packages found"), None);
    }

    #[test]
    fn kernel_paths() {
        let kernel = KernelAssets::new(
            Path::new("/a"),
            "6.1.0-56",
            "linux-image-6.1.0-56-amd64-unsigned",
            "6.1.192-2",
        );
        assert_eq!(kernel.release, "6.1.0-56-amd64");
        assert_eq!(
            kernel.bzimage,
            Path::new("/a/kernel/6.1.0-56_6.1.192-2/boot/vmlinuz-6.1.0-56-amd64")
        );
        assert_eq!(
            kernel.modules_dir,
            Path::new("/a/kernel/6.1.0-56_6.1.192-2/lib/modules/6.1.0-56-amd64")
        );
    }

    #[test]
    fn config_parsing() {
        let options = parse_config(
            "# comment\nCONFIG_PVH=y\n# CONFIG_X is not set\nCONFIG_S=\"a=b\"\nCONFIG_M=m\n",
        );
        assert_eq!(options["CONFIG_PVH"], "y");
        assert_eq!(options["CONFIG_X"], "n");
        assert_eq!(options["CONFIG_S"], "\"a=b\"");
        assert_eq!(options["CONFIG_M"], "m");
        assert_eq!(options.len(), 4);
    }

    /// Fetches the real Debian kernel and busybox, extracts vmlinux and
    /// builds both initramfs images with their programs under
    /// `target/assets/` (network, ~75 MB; gcc).
    /// `cargo test -p xtask -- --ignored --nocapture real_assets`
    #[test]
    #[ignore = "downloads the Debian kernel"]
    fn real_assets() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let (kernel, vmlinux, info) = debian_vmlinux(root).unwrap();
        let options = kernel.config_options().unwrap();
        for name in [
            "CONFIG_PVH",
            "CONFIG_BLK_DEV_INITRD",
            "CONFIG_SERIAL_8250_CONSOLE",
            "CONFIG_X86_X2APIC",
        ] {
            assert_eq!(options.get(name).map(String::as_str), Some("y"), "{name}");
        }
        assert!(info.pvh_entry > 0 && vmlinux.is_file());
        // Through the resolver, as scenarios make them (with their programs).
        let mut resolver = Resolver::new(root);
        for (asset, program) in [
            (NamedAsset::InitramfsDom0Boot, "bin/oxen-bench"),
            (NamedAsset::InitramfsIsolation, "bin/oxen-memprobe"),
        ] {
            let image = resolver.resolve(asset).unwrap();
            let members = cpio::parse(&std::fs::read(&image).unwrap()).unwrap();
            assert!(
                members.iter().any(|member| member.name == program),
                "{} has no {program}",
                image.display()
            );
        }
    }
}
