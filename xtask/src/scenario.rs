//! Emulator scenarios: `tests/qemu/scenarios/NAME.toml` (format in
//! `tests/qemu/README.md`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::assets::{NamedAsset, Resolver};
use crate::emulator::{Emulator, EmulatorArg, SerialInput};
use crate::iso::{IsoSpec, ModuleRef};
use crate::watch::Pattern;
use crate::workspace_root;

/// Which emulator a scenario wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmulatorChoice {
    /// Bochs, always (VT-x emulated in software).
    Bochs,
    /// QEMU with TCG: no VT-x.
    QemuTcg,
    /// QEMU with KVM where the host has nested VT-x, otherwise Bochs.
    Best,
}

impl EmulatorChoice {
    pub fn resolve(self) -> Emulator {
        match self {
            Self::Bochs => Emulator::Bochs,
            Self::QemuTcg => Emulator::QemuTcg,
            Self::Best => EmulatorArg::Best.resolve(),
        }
    }
}

/// How a passing run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum End {
    /// The emulator must exit by itself (the hypervisor powers off) after
    /// every pass pattern was seen.
    Poweroff,
    /// The emulator is stopped as soon as every pass pattern was seen.
    Pattern,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    description: String,
    emulator: EmulatorChoice,
    #[serde(default = "default_cpus")]
    cpus: u32,
    #[serde(default = "default_memory_mib")]
    memory_mib: u32,
    cmdline: String,
    #[serde(default)]
    modules: Vec<ModuleEntry>,
    timeout_s: u64,
    pass: Vec<String>,
    #[serde(default)]
    fail: Vec<String>,
    end: End,
    /// Typed on the serial console (Bochs only).
    #[serde(default)]
    input: Vec<InputEntry>,
    /// Work in progress: why it does not pass yet. Such a scenario only runs
    /// when named (`cargo xtask test NAME`), never in a full run.
    #[serde(default)]
    wip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputEntry {
    /// A pattern: typed once a line matches it (after the previous input).
    after: String,
    /// The bytes, as a TOML string (`\u0001` is Ctrl-A).
    send: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleEntry {
    /// Relative to the workspace root, or `@NAME` for a generated asset.
    path: String,
    #[serde(default)]
    args: String,
}

fn default_cpus() -> u32 {
    1
}

fn default_memory_mib() -> u32 {
    512
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub emulator: EmulatorChoice,
    pub cpus: u32,
    pub memory_mib: u32,
    /// The hypervisor's command line.
    pub cmdline: String,
    /// Its modules, `@` assets not yet made (see [`Scenario::iso_spec`]).
    pub modules: Vec<ModuleRef>,
    pub timeout: Duration,
    pub pass: Vec<Pattern>,
    pub fail: Vec<Pattern>,
    pub end: End,
    /// Typed on the serial console as its output appears.
    pub inputs: Vec<SerialInput>,
    /// Work in progress (see the file format): only run when named.
    pub wip: Option<String>,
}

impl Scenario {
    /// The generated assets its modules name, in order, each once.
    pub fn assets(&self) -> Vec<NamedAsset> {
        let mut assets = Vec::new();
        for asset in self.modules.iter().filter_map(ModuleRef::asset) {
            if !assets.contains(&asset) {
                assets.push(asset);
            }
        }
        assets
    }

    /// What goes on its ISO, `@` assets made (or taken from the cache)
    /// through `resolver`.
    pub fn iso_spec(&self, resolver: &mut Resolver) -> Result<IsoSpec> {
        IsoSpec::resolve(&self.cmdline, &self.modules, resolver)
    }
}

/// The scenario directory.
pub fn dir() -> PathBuf {
    workspace_root()
        .join("tests")
        .join("qemu")
        .join("scenarios")
}

/// Loads every scenario in `dir`, sorted by name.
pub fn load_all(dir: &Path) -> Result<Vec<Scenario>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut scenarios = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            scenarios.push(load(&path)?);
        }
    }
    scenarios.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(scenarios)
}

/// Loads one scenario file.
pub fn load(path: &Path) -> Result<Scenario> {
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&name, &text).with_context(|| format!("in {}", path.display()))
}

/// Parses and checks a scenario named `name`.
pub fn parse(name: &str, text: &str) -> Result<Scenario> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("scenario name `{name}`: use lowercase letters, digits and `-`");
    }
    let file: ScenarioFile = toml::from_str(text)?;
    if file.pass.is_empty() {
        bail!("`pass` is empty: a scenario must wait for at least one marker");
    }
    if file.cpus == 0 || file.memory_mib < 16 {
        bail!("`cpus` must be at least 1 and `memory_mib` at least 16");
    }
    if file.timeout_s == 0 {
        bail!("`timeout_s` must be more than 0");
    }
    let compile = |texts: &[String]| {
        texts
            .iter()
            .map(|text| Pattern::new(text))
            .collect::<Result<Vec<_>>>()
    };
    let modules = file
        .modules
        .iter()
        .enumerate()
        .map(|(index, module)| {
            ModuleRef::new(&module.path, &module.args)
                .with_context(|| format!("in module {}", index + 1))
        })
        .collect::<Result<_>>()?;
    if !file.input.is_empty() && file.emulator != EmulatorChoice::Bochs {
        bail!("`input` needs emulator = \"bochs\" (its COM1 can be a socket)");
    }
    let inputs = file
        .input
        .iter()
        .map(|i| {
            Ok(SerialInput {
                after: Pattern::new(&i.after)?,
                send: i.send.as_bytes().to_vec(),
            })
        })
        .collect::<Result<Vec<_>>>()
        .context("in `input`")?;
    Ok(Scenario {
        name: name.to_owned(),
        description: file.description,
        emulator: file.emulator,
        cpus: file.cpus,
        memory_mib: file.memory_mib,
        cmdline: file.cmdline,
        modules,
        timeout: Duration::from_secs(file.timeout_s),
        pass: compile(&file.pass).context("in `pass`")?,
        fail: compile(&file.fail).context("in `fail`")?,
        end: file.end,
        inputs,
        wip: file.wip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::ModuleSource;

    const EXAMPLE: &str = r#"
        description = "example"
        emulator = "qemu-tcg"
        cmdline = "on_exit=poweroff"
        timeout_s = 60
        pass = ['Oxen hypervisor v\d+', "powering off"]
        fail = ["PANIC"]
        end = "poweroff"
        [[modules]]
        path = "tests/qemu/cache/vmlinux"
        args = "console=hvc0"
    "#;

    #[test]
    fn parses_a_scenario_with_defaults() {
        let scenario = parse("example", EXAMPLE).unwrap();
        assert_eq!(scenario.emulator, EmulatorChoice::QemuTcg);
        assert_eq!((scenario.cpus, scenario.memory_mib), (1, 512));
        assert_eq!(scenario.timeout, Duration::from_secs(60));
        assert_eq!(scenario.pass.len(), 2);
        assert_eq!(scenario.end, End::Poweroff);
        assert_eq!(scenario.modules[0].args, "console=hvc0");
        assert_eq!(
            scenario.modules[0].source,
            ModuleSource::File(workspace_root().join("tests/qemu/cache/vmlinux"))
        );
        assert!(scenario.assets().is_empty());
    }

    #[test]
    fn modules_may_name_generated_assets() {
        let text = format!(
            "{EXAMPLE}\n[[modules]]\npath = \"@initramfs-dom0-boot\"\n[[modules]]\npath = \"@dom0-vmlinux\"\n"
        )
        .replace("tests/qemu/cache/vmlinux", "@dom0-vmlinux");
        let scenario = parse("example", &text).unwrap();
        assert_eq!(scenario.modules.len(), 3);
        assert_eq!(
            scenario.assets(),
            [NamedAsset::Dom0Vmlinux, NamedAsset::InitramfsDom0Boot]
        );
        let error = parse(
            "x",
            &EXAMPLE.replace("tests/qemu/cache/vmlinux", "@vmlinux"),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("@dom0-vmlinux"), "{error:#}");
    }

    #[test]
    fn refuses_mistakes() {
        assert!(parse("Bad_Name", EXAMPLE).is_err());
        assert!(
            parse("x", &EXAMPLE.replace("timeout_s", "timeout")).is_err(),
            "unknown key"
        );
        assert!(parse("x", &EXAMPLE.replace("qemu-tcg", "kvm")).is_err());
        assert!(
            parse("x", &EXAMPLE.replace(r#"["PANIC"]"#, r#"["(PANIC"]"#)).is_err(),
            "bad regex"
        );
        assert!(parse("x", &EXAMPLE.replace(r#""poweroff""#, r#""reboot""#)).is_err());
    }

    #[test]
    fn the_checked_in_scenarios_load() {
        let scenarios = load_all(&dir()).unwrap();
        let names: Vec<&str> = scenarios
            .iter()
            .map(|scenario| scenario.name.as_str())
            .collect();
        for expected in [
            "bad-cmdline",
            "boot-smp",
            "dom0-boot",
            "dom0-isolation",
            "hypercall-abuse",
            "no-vtx",
            "xl-info",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
    }
}
