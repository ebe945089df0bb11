//! `cargo xtask iso`: a BIOS GRUB rescue ISO that boots the hypervisor.
//!
//! Layout: `/boot/hypervisor.elf`, one `/boot/<file>` per module, and a
//! `grub.cfg` that boots at once (`timeout=0`) with GRUB's terminal on COM1 as
//! well as the screen, so that a serial log shows GRUB's errors too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::assets::{NamedAsset, Resolver};
use crate::{deps, target_dir, workspace_root};

/// The command line used when none is given.
pub const DEFAULT_CMDLINE: &str = "loglvl=info";

/// Where GRUB's BIOS (i386-pc) modules live on Debian (`grub-pc-bin`).
const GRUB_PC_DIR: &str = "/usr/lib/grub/i386-pc";

/// What goes on an ISO besides the hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IsoSpec {
    pub cmdline: String,
    pub modules: Vec<Module>,
}

/// A multiboot2 module: a file and its command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Module {
    pub path: PathBuf,
    pub args: String,
}

impl Module {
    /// The module's file name on the ISO (under `/boot`).
    fn file_name(&self) -> Result<String> {
        let name = self
            .path
            .file_name()
            .with_context(|| format!("module {} has no file name", self.path.display()))?;
        Ok(name.to_string_lossy().into_owned())
    }
}

/// Where a module's file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleSource {
    /// A file (absolute, or taken from the workspace root when written).
    File(PathBuf),
    /// A generated asset, `@NAME` (fetched or built when resolved).
    Asset(NamedAsset),
}

/// A module as written (in a scenario or on the command line), before any
/// `@` asset is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    pub source: ModuleSource,
    pub args: String,
}

impl ModuleRef {
    /// `path` is `@NAME` (a generated asset) or a file, relative to the
    /// workspace root unless absolute.
    pub fn new(path: &str, args: &str) -> Result<Self> {
        if path.is_empty() {
            bail!("a module has an empty path");
        }
        let source = match NamedAsset::parse(path)? {
            Some(asset) => ModuleSource::Asset(asset),
            None => ModuleSource::File(workspace_root().join(path)),
        };
        Ok(Self {
            source,
            args: args.trim().to_owned(),
        })
    }

    /// Parses `PATH` or `PATH:ARGS` (the `--module` option).
    pub fn parse(text: &str) -> Result<Self> {
        let (path, args) = text.split_once(':').unwrap_or((text, ""));
        if path.is_empty() {
            bail!("module `{text}` has no path");
        }
        Self::new(path, args)
    }

    /// The generated asset it names, if any.
    pub fn asset(&self) -> Option<NamedAsset> {
        match self.source {
            ModuleSource::Asset(asset) => Some(asset),
            ModuleSource::File(_) => None,
        }
    }

    /// The module with its file, making the asset first if it names one.
    pub fn resolve(&self, resolver: &mut Resolver) -> Result<Module> {
        let path = match &self.source {
            ModuleSource::File(path) => path.clone(),
            ModuleSource::Asset(asset) => resolver.resolve(*asset)?,
        };
        Ok(Module {
            path,
            args: self.args.clone(),
        })
    }
}

impl IsoSpec {
    /// The spec for `cmdline` and `modules`, each `@` asset made (or taken
    /// from the cache) through `resolver`.
    pub fn resolve(cmdline: &str, modules: &[ModuleRef], resolver: &mut Resolver) -> Result<Self> {
        let modules = modules
            .iter()
            .map(|module| module.resolve(resolver))
            .collect::<Result<_>>()?;
        Ok(Self {
            cmdline: cmdline.to_owned(),
            modules,
        })
    }

    /// Builds a spec from command-line arguments (`PATH[:ARGS]` each),
    /// installing what the `@` assets among them need and making them.
    pub fn from_args(cmdline: &str, modules: &[String]) -> Result<Self> {
        let refs = modules
            .iter()
            .map(|text| ModuleRef::parse(text))
            .collect::<Result<Vec<_>>>()?;
        if refs.iter().any(|module| module.asset().is_some()) {
            deps::ensure(deps::ASSETS)?;
        }
        Self::resolve(cmdline, &refs, &mut Resolver::new(&workspace_root()))
    }
}

/// Builds `target/iso/NAME.iso` from the hypervisor ELF and the spec.
pub fn make_iso(hypervisor: &Path, spec: &IsoSpec, name: &str) -> Result<PathBuf> {
    let mut files = vec![(hypervisor.to_owned(), "hypervisor.elf".to_owned())];
    for module in &spec.modules {
        files.push((module.path.clone(), module.file_name()?));
    }
    build_iso(name, &grub_cfg(spec)?, &files)
}

/// Builds `target/iso/NAME.iso` that boots Linux directly, without the
/// hypervisor (GRUB's `linux` and `initrd`: `kernel` must be a bzImage), for
/// comparisons with dom0 (`cargo xtask bench`).
pub fn make_linux_iso(kernel: &Path, args: &str, initrd: &Path, name: &str) -> Result<PathBuf> {
    let file = |path: &Path| -> Result<(PathBuf, String)> {
        let module = Module {
            path: path.to_owned(),
            args: String::new(),
        };
        Ok((path.to_owned(), module.file_name()?))
    };
    let kernel = file(kernel)?;
    let initrd = file(initrd)?;
    let cfg = linux_grub_cfg(&kernel.1, args, &initrd.1);
    build_iso(name, &cfg, &[kernel, initrd])
}

/// Stages `grub.cfg` and `files` (source, name under `/boot`) in
/// `target/iso/NAME/` and runs grub-mkrescue on it.
fn build_iso(name: &str, cfg: &str, files: &[(PathBuf, String)]) -> Result<PathBuf> {
    let out_dir = target_dir().join("iso");
    let staging = out_dir.join(name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    let boot = staging.join("boot");
    std::fs::create_dir_all(boot.join("grub"))
        .with_context(|| format!("cannot create {}", boot.display()))?;
    std::fs::write(boot.join("grub").join("grub.cfg"), cfg)?;
    for (source, file_name) in files {
        copy(source, &boot.join(file_name))?;
    }

    let iso = out_dir.join(format!("{name}.iso"));
    // BIOS only (`-d`), no locales, fonts or themes: a small ISO made in ~1 s.
    let output = Command::new("grub-mkrescue")
        .arg("-d")
        .arg(GRUB_PC_DIR)
        .args(["--locales=", "--fonts=", "--themes="])
        .arg("-o")
        .arg(&iso)
        .arg(&staging)
        .output()
        .context("cannot run grub-mkrescue (package grub-common)")?;
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        bail!("grub-mkrescue failed ({})", output.status);
    }
    Ok(iso)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// The start of every generated `grub.cfg`: GRUB's terminal on COM1 and
/// the screen, boot at once.
const GRUB_PREAMBLE: &str = "# Generated by `cargo xtask`.\n\
     serial --unit=0 --speed=115200\n\
     terminal_input serial console\n\
     terminal_output serial console\n\
     set timeout=0\n\
     set default=0\n\n";

/// The GRUB configuration for a spec.
pub fn grub_cfg(spec: &IsoSpec) -> Result<String> {
    let mut cfg = format!("{GRUB_PREAMBLE}menuentry \"Oxen hypervisor\" {{\n");
    let line = format!(
        "    multiboot2 /boot/hypervisor.elf {}",
        grub_words(&spec.cmdline)
    );
    writeln!(cfg, "{}", line.trim_end()).unwrap();
    let mut names = Vec::new();
    for module in &spec.modules {
        let name = module.file_name()?;
        if names.contains(&name) {
            bail!("two modules are named {name}: rename one");
        }
        let line = format!(
            "    module2 /boot/{} {}",
            grub_word(&name),
            grub_words(&module.args)
        );
        writeln!(cfg, "{}", line.trim_end()).unwrap();
        names.push(name);
    }
    cfg.push_str("    boot\n}\n");
    Ok(cfg)
}

/// The GRUB configuration that boots Linux bare: `/boot/<kernel> <args>`
/// with `/boot/<initrd>`.
fn linux_grub_cfg(kernel: &str, args: &str, initrd: &str) -> String {
    let linux = format!("    linux /boot/{} {}", grub_word(kernel), grub_words(args));
    format!(
        "{GRUB_PREAMBLE}menuentry \"Linux without the hypervisor\" {{\n{}\n    initrd /boot/{}\n    boot\n}}\n",
        linux.trim_end(),
        grub_word(initrd)
    )
}

/// Quotes each word of a command line for GRUB's shell-like parser.
fn grub_words(line: &str) -> String {
    line.split_whitespace()
        .map(grub_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word as GRUB reads it back unchanged: plain when it holds nothing GRUB
/// interprets (quotes, `$`, `\`, `;`, `#`, braces, ...), else single-quoted.
fn grub_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "=,._-/:+@%".contains(c);
    if word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_boots_the_hypervisor_on_com1() {
        let spec = IsoSpec {
            cmdline: "loglvl=info  on_exit=poweroff".into(),
            modules: vec![],
        };
        let cfg = grub_cfg(&spec).unwrap();
        assert!(cfg.contains("serial --unit=0 --speed=115200\n"));
        assert!(cfg.contains("terminal_output serial console\n"));
        assert!(cfg.contains("set timeout=0\n"));
        assert!(cfg.contains("    multiboot2 /boot/hypervisor.elf loglvl=info on_exit=poweroff\n"));
        assert!(!cfg.contains("module2"));
    }

    #[test]
    fn modules_follow_with_their_arguments() {
        let spec = IsoSpec {
            cmdline: String::new(),
            modules: vec![
                file_module("tests/qemu/cache/vmlinux:console=hvc0 root=/dev/ram0"),
                file_module("tests/qemu/cache/initrd.img"),
            ],
        };
        let cfg = grub_cfg(&spec).unwrap();
        let vmlinux = cfg
            .find("module2 /boot/vmlinux console=hvc0 root=/dev/ram0\n")
            .unwrap();
        let initrd = cfg.find("module2 /boot/initrd.img\n").unwrap();
        assert!(vmlinux < initrd);
    }

    /// A plain-file module parsed like `--module`.
    fn file_module(text: &str) -> Module {
        ModuleRef::parse(text)
            .unwrap()
            .resolve(&mut Resolver::new(&workspace_root()))
            .unwrap()
    }

    #[test]
    fn module_paths_are_taken_from_the_workspace() {
        let module = ModuleRef::parse("a/b.img:x=1:y").unwrap();
        assert_eq!(
            module.source,
            ModuleSource::File(workspace_root().join("a/b.img"))
        );
        assert_eq!(module.args, "x=1:y");
        assert!(ModuleRef::parse(":args").is_err());
        assert_eq!(
            ModuleRef::parse("/abs/vmlinux").unwrap().source,
            ModuleSource::File(PathBuf::from("/abs/vmlinux"))
        );
    }

    #[test]
    fn at_paths_name_generated_assets() {
        let module = ModuleRef::parse("@dom0-vmlinux:console=ttyS0 loglevel=4").unwrap();
        assert_eq!(module.asset(), Some(NamedAsset::Dom0Vmlinux));
        assert_eq!(module.args, "console=ttyS0 loglevel=4");
        assert_eq!(
            ModuleRef::parse("@initramfs-isolation").unwrap().asset(),
            Some(NamedAsset::InitramfsIsolation)
        );
        assert!(ModuleRef::parse("@no-such-asset").is_err());
    }

    #[test]
    fn duplicate_module_names_are_refused() {
        let spec = IsoSpec {
            cmdline: String::new(),
            modules: vec![file_module("a/initrd"), file_module("b/initrd")],
        };
        assert!(grub_cfg(&spec).is_err());
    }

    #[test]
    fn bare_linux_config() {
        let cfg = linux_grub_cfg("vmlinuz-6.1", "console=ttyS0  loglevel=4", "initrd.cpio");
        assert!(cfg.contains("terminal_output serial console\n"));
        assert!(cfg.contains(
            "    linux /boot/vmlinuz-6.1 console=ttyS0 loglevel=4\n    initrd /boot/initrd.cpio\n    boot\n"
        ));
        assert!(!cfg.contains("multiboot2"));
    }

    #[test]
    fn special_characters_are_quoted() {
        assert_eq!(grub_word("dom0_mem=12Q"), "dom0_mem=12Q");
        assert_eq!(grub_word("a$b"), "'a$b'");
        assert_eq!(grub_word("it's"), "'it'\\''s'");
        assert_eq!(grub_words("x;y  z"), "'x;y' z");
    }
}
