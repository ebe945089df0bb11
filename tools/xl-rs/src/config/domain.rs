//! The typed domain configuration built from parsed xl.cfg settings, following
//! xl's rules (`tools/xl/xl_parse.c`) for defaults and key interplay.

use serde::Serialize;

use super::cpulist::{CpuSet, parse_cpu_list};
use super::error::{ConfigError, Pos, Warning};
use super::keys::{KeyKind, classify};
use super::parser::{Config, Setting, Value};

/// Largest `memory`/`maxmem` accepted, in MiB (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// Largest `vcpus` accepted.
pub const MAX_VCPUS: u32 = 32;
/// Largest `maxvcpus` accepted (vCPU hot-plug is not implemented: only
/// `vcpus` are created).
pub const MAX_MAXVCPUS: u32 = 128;
/// Largest `cap` accepted in a file, in percent of one CPU (64 CPUs, the
/// most the ABI's affinity bitmap names); `create` checks it against the
/// machine.
pub const MAX_CAP: u32 = 6400;
/// Default memory when neither `memory` nor `maxmem` is set (libxl's default).
pub const DEFAULT_MEMORY_MIB: u64 = 32;

/// The guest type.
///
/// Both kinds are hardware-virtualized (VT-x + EPT) guests on Oxen's virtual
/// platform (vLAPIC, vIO-APIC, a 16550 UART, CPU and interrupt tables):
/// - `pvh`: the kernel is entered directly at its PVH or 64-bit boot entry, with no
///   firmware (what Xen's PVH means for the guest's start);
/// - `hvm`: the kernel is started as a PC would start it (bzImage real-mode/32-bit
///   entry through the Linux boot protocol).
///
/// There is no paravirtual (`pv`) mode: a `pv` configuration is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainType {
    /// Direct boot of a PVH-capable or 64-bit kernel entry.
    Pvh,
    /// PC-style boot through the Linux boot protocol.
    Hvm,
}

/// What to do when the guest powers off, reboots or crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownAction {
    /// Destroy the domain.
    Destroy,
    /// Destroy it and create it again from the same configuration.
    Restart,
    /// Keep the domain, shut down, for inspection.
    Preserve,
}

/// Every action name xl accepts, and whether Oxen supports it.
pub const XL_ACTIONS: &[(&str, Option<ShutdownAction>)] = &[
    ("destroy", Some(ShutdownAction::Destroy)),
    ("restart", Some(ShutdownAction::Restart)),
    ("rename-restart", None),
    ("preserve", Some(ShutdownAction::Preserve)),
    ("coredump-destroy", None),
    ("coredump-restart", None),
    ("soft-reset", None),
];

/// A validated domain configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainConfig {
    /// Domain name.
    pub name: String,
    /// Guest type.
    #[serde(rename = "type")]
    pub domain_type: DomainType,
    /// Initial memory, MiB.
    pub memory_mib: u64,
    /// Maximum memory, MiB (`>= memory_mib`).
    pub maxmem_mib: u64,
    /// vCPUs online at start.
    pub vcpus: u32,
    /// vCPUs created (`>= vcpus`).
    pub maxvcpus: u32,
    /// Kernel image path, as written.
    pub kernel: String,
    /// Initial ramdisk path, as written.
    pub ramdisk: Option<String>,
    /// Kernel command line (from `cmdline`, or built from `root` and `extra`).
    pub cmdline: Option<String>,
    /// Action on guest power-off.
    pub on_poweroff: ShutdownAction,
    /// Action on guest reboot.
    pub on_reboot: ShutdownAction,
    /// Action on guest crash.
    pub on_crash: ShutdownAction,
    /// Scheduler weight (`weight`, or xl's `cpu_weight`), 1 to 65535;
    /// unset: the hypervisor's default (256).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Scheduler cap in percent of one CPU (`cap`), 0 = none; unset: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<u32>,
    /// Each vCPU's hard affinity (`cpus`), one per vCPU; unset: every CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<CpuSet>>,
}

impl DomainConfig {
    /// Whether the configuration sets scheduling parameters (ABI 1.3).
    #[must_use]
    pub fn has_sched_settings(&self) -> bool {
        self.weight.is_some() || self.cap.is_some() || self.cpus.is_some()
    }
}

/// Builds a [`DomainConfig`] from parsed settings.
///
/// # Errors
///
/// The first setting that is missing, has the wrong type, is out of range or asks
/// for something Oxen does not do.
pub fn build(
    config: &Config,
    main_source: &str,
) -> Result<(DomainConfig, Vec<Warning>), ConfigError> {
    let mut b = Builder {
        config,
        main_source,
        warnings: Vec::new(),
    };
    let domain = b.build()?;
    let mut warnings = b.warnings;
    // The file's warnings first, then each override's, each in text order.
    warnings.sort_by(|a, b| {
        let key = |w: &Warning| (w.source_name != main_source, w.source_name.clone(), w.pos);
        key(a).cmp(&key(b))
    });
    Ok((domain, warnings))
}

struct Builder<'a> {
    config: &'a Config,
    main_source: &'a str,
    warnings: Vec<Warning>,
}

impl Builder<'_> {
    fn warn(&mut self, setting: &Setting, pos: Pos, message: impl Into<String>) {
        self.warnings.push(Warning {
            source_name: setting.source_name.clone(),
            pos: Some(pos),
            message: message.into(),
        });
    }

    fn err(setting: &Setting, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&setting.source_name, pos, message)
    }

    fn build(&mut self) -> Result<DomainConfig, ConfigError> {
        self.warn_other_keys();
        let name = self.name()?;
        let domain_type = self.domain_type()?;
        let (memory_mib, maxmem_mib) = self.memory()?;
        let (vcpus, maxvcpus) = self.vcpus()?;
        let Some(kernel) = self.string("kernel")? else {
            return Err(ConfigError::whole(
                self.main_source,
                "`kernel` is required: Oxen starts guests by direct kernel boot (no firmware or bootloader yet)",
            ));
        };
        let ramdisk = self.string("ramdisk")?;
        let cmdline = self.cmdline()?;
        let weight = self.weight()?;
        let cap = self
            .integer("cap", 0, u64::from(MAX_CAP))?
            .map(|c| c as u32);
        let cpus = self.cpus(vcpus)?;
        Ok(DomainConfig {
            name,
            domain_type,
            memory_mib,
            maxmem_mib,
            vcpus,
            maxvcpus,
            kernel,
            ramdisk,
            cmdline,
            on_poweroff: self.action("on_poweroff", ShutdownAction::Destroy)?,
            on_reboot: self.action("on_reboot", ShutdownAction::Restart)?,
            on_crash: self.action("on_crash", ShutdownAction::Destroy)?,
            weight,
            cap,
            cpus,
        })
    }

    /// `weight`, or xl's name for it, `cpu_weight` (not both).
    fn weight(&mut self) -> Result<Option<u32>, ConfigError> {
        let range = (
            u64::from(dom0_abi::sched::WEIGHT_MIN),
            u64::from(dom0_abi::sched::WEIGHT_MAX),
        );
        let weight = self.integer("weight", range.0, range.1)?;
        let cpu_weight = self.integer("cpu_weight", range.0, range.1)?;
        if let (Some(_), Some(_)) = (weight, cpu_weight) {
            let setting = self.config.get("cpu_weight").expect("read");
            return Err(Self::err(
                setting,
                setting.key_pos,
                "`cpu_weight` and `weight` both set the weight; keep one",
            ));
        }
        Ok(weight.or(cpu_weight).map(|w| w as u32))
    }

    /// `cpus`: one CPU list for every vCPU (`cpus = "0-3,^1"`), or a list
    /// with one per vCPU (`cpus = ["2", "3"]`; vCPUs beyond the list may
    /// run anywhere, as in xl).
    fn cpus(&self, vcpus: u32) -> Result<Option<Vec<CpuSet>>, ConfigError> {
        let Some(setting) = self.config.get("cpus") else {
            return Ok(None);
        };
        let parse = |text: &str, pos: Pos| {
            parse_cpu_list(text).map_err(|e| Self::err(setting, pos, format!("`cpus`: {e}")))
        };
        match &setting.value.value {
            Value::Atom(atom) => {
                let set = parse(&atom.text, setting.value.pos)?;
                Ok(Some(vec![set; vcpus as usize]))
            }
            Value::List(items) => {
                if items.len() > vcpus as usize {
                    return Err(Self::err(
                        setting,
                        items[vcpus as usize].pos,
                        format!(
                            "`cpus` has {} entries but the domain has {vcpus} vCPU{}",
                            items.len(),
                            if vcpus == 1 { "" } else { "s" }
                        ),
                    ));
                }
                let mut sets = Vec::with_capacity(vcpus as usize);
                for item in items {
                    match &item.value {
                        Value::Atom(atom) => sets.push(parse(&atom.text, item.pos)?),
                        Value::List(_) => {
                            return Err(Self::err(
                                setting,
                                item.pos,
                                "`cpus` entries must be CPU lists like \"0-3\", not lists",
                            ));
                        }
                    }
                }
                sets.resize(vcpus as usize, CpuSet::ALL);
                Ok(Some(sets))
            }
        }
    }

    fn warn_other_keys(&mut self) {
        let config = self.config;
        for setting in config.settings() {
            let message = match classify(&setting.key) {
                KeyKind::Supported => continue,
                KeyKind::XlOnly => {
                    format!(
                        "`{}` is an xl.cfg key that xl-rs does not support yet; ignored",
                        setting.key
                    )
                }
                KeyKind::Unknown => {
                    format!("unknown key `{}` (not an xl.cfg key); ignored", setting.key)
                }
            };
            self.warn(setting, setting.key_pos, message);
        }
    }

    /// A single value of `key` as text (xl reads numbers and strings alike).
    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(setting) = self.config.get(key) else {
            return Ok(None);
        };
        match &setting.value.value {
            Value::Atom(atom) => Ok(Some(atom.text.clone())),
            Value::List(_) => Err(Self::err(
                setting,
                setting.value.pos,
                format!("`{key}` must be a single value, not a list"),
            )),
        }
    }

    /// An integer value of `key`, read like xl's `strtol(text, 0)`.
    fn integer(&mut self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(setting) = self.config.get(key) else {
            return Ok(None);
        };
        let pos = setting.value.pos;
        let text = match &setting.value.value {
            Value::Atom(atom) => atom.text.trim(),
            Value::List(_) => {
                return Err(Self::err(
                    setting,
                    pos,
                    format!("`{key}` must be a number, not a list"),
                ));
            }
        };
        if setting.appended {
            return Err(Self::err(
                setting,
                pos,
                format!("cannot use `+=` with a number (`{key}`)"),
            ));
        }
        let value = parse_c_integer(text).ok_or_else(|| {
            Self::err(
                setting,
                pos,
                format!("`{key}` must be a number, found \"{text}\""),
            )
        })?;
        if value < i128::from(min) || value > i128::from(max) {
            return Err(Self::err(
                setting,
                pos,
                format!("`{key}` = {value} is out of range ({min} to {max})"),
            ));
        }
        if text.len() > 1 && text.starts_with('0') && !text.starts_with("0x") && value != 0 {
            self.warn(
                setting,
                pos,
                format!("`{text}` is octal ({value}), as in xl; remove the leading 0 for decimal"),
            );
        }
        Ok(Some(value as u64))
    }

    fn name(&mut self) -> Result<String, ConfigError> {
        let Some(name) = self.string("name")? else {
            return Err(ConfigError::whole(
                self.main_source,
                "`name` is required: the domain must have a name",
            ));
        };
        let setting = self.config.get("name").expect("read above");
        let problem = if name.is_empty() {
            Some("`name` must not be empty".to_owned())
        } else if name.len() > dom0_abi::lifecycle::DOMAIN_NAME_MAX {
            // The hypervisor takes the name NUL-terminated in 64 bytes.
            Some(format!(
                "`name` is longer than {} bytes",
                dom0_abi::lifecycle::DOMAIN_NAME_MAX
            ))
        } else if name.bytes().all(|b| b.is_ascii_digit()) {
            Some("`name` must not be all digits (commands take a domain name or id)".to_owned())
        } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            Some("`name` must not contain spaces or control characters".to_owned())
        } else {
            None
        };
        match problem {
            Some(message) => Err(Self::err(setting, setting.value.pos, message)),
            None => Ok(name),
        }
    }

    fn domain_type(&mut self) -> Result<DomainType, ConfigError> {
        let from_type = self
            .string("type")?
            .map(|t| (t, self.config.get("type").expect("read")));
        let from_builder = self
            .string("builder")?
            .map(|b| (b, self.config.get("builder").expect("read")));
        let typed = match &from_type {
            Some((t, setting)) => Some(match t.as_str() {
                "pvh" => Some(DomainType::Pvh),
                "hvm" => Some(DomainType::Hvm),
                "pv" => None,
                other => {
                    return Err(Self::err(
                        setting,
                        setting.value.pos,
                        format!("unknown domain type \"{other}\" (expected \"pvh\" or \"hvm\")"),
                    ));
                }
            }),
            None => None,
        };
        let built = match &from_builder {
            Some((b, setting)) => {
                self.warn(
                    setting,
                    setting.key_pos,
                    "`builder` is deprecated (since Xen 4.10); use `type`",
                );
                Some(match b.as_str() {
                    "hvm" => Some(DomainType::Hvm),
                    "generic" => None,
                    other => {
                        return Err(Self::err(
                            setting,
                            setting.value.pos,
                            format!(
                                "unknown builder \"{other}\" (expected \"hvm\" or \"generic\")"
                            ),
                        ));
                    }
                })
            }
            None => None,
        };
        if let (Some(t), Some(b), Some((_, setting))) = (typed, built, &from_builder)
            && t != b
        {
            return Err(Self::err(
                setting,
                setting.value.pos,
                "`builder` contradicts `type`",
            ));
        }
        match typed.or(built) {
            Some(Some(t)) => Ok(t),
            Some(None) => {
                let setting = from_type.or(from_builder).expect("one is set").1;
                Err(Self::err(
                    setting,
                    setting.value.pos,
                    "PV guests are not supported: Oxen has no paravirtual mode; use type = \"pvh\" or \"hvm\"",
                ))
            }
            None => {
                self.warnings.push(Warning {
                    source_name: self.main_source.to_owned(),
                    pos: None,
                    message: "`type` is not set: xl would create a PV guest, which Oxen does not support; using \"pvh\"".to_owned(),
                });
                Ok(DomainType::Pvh)
            }
        }
    }

    fn memory(&mut self) -> Result<(u64, u64), ConfigError> {
        let memory = self.integer("memory", 1, MAX_MEMORY_MIB)?;
        let maxmem = self.integer("maxmem", 1, MAX_MEMORY_MIB)?;
        let (memory, maxmem) = match (memory, maxmem) {
            (None, None) => (DEFAULT_MEMORY_MIB, DEFAULT_MEMORY_MIB),
            (Some(m), None) => (m, m),
            (None, Some(x)) => (x, x),
            (Some(m), Some(x)) => (m, x),
        };
        if maxmem < memory {
            let setting = self
                .config
                .get("maxmem")
                .expect("maxmem < memory implies both set");
            return Err(Self::err(
                setting,
                setting.value.pos,
                format!("`maxmem` ({maxmem}) must be greater than or equal to `memory` ({memory})"),
            ));
        }
        Ok((memory, maxmem))
    }

    fn vcpus(&mut self) -> Result<(u32, u32), ConfigError> {
        let vcpus = match self.integer("vcpus", 0, u64::from(MAX_VCPUS))? {
            Some(0) => {
                let setting = self.config.get("vcpus").expect("read");
                self.warn(setting, setting.value.pos, "`vcpus` = 0 means 1, as in xl");
                1
            }
            Some(n) => n as u32,
            None => 1,
        };
        let maxvcpus = self
            .integer("maxvcpus", 1, u64::from(MAX_MAXVCPUS))?
            .map_or(vcpus, |n| n as u32);
        if maxvcpus < vcpus {
            let setting = self
                .config
                .get("maxvcpus")
                .expect("maxvcpus < vcpus implies it is set");
            return Err(Self::err(
                setting,
                setting.value.pos,
                format!(
                    "`maxvcpus` ({maxvcpus}) must be greater than or equal to `vcpus` ({vcpus})"
                ),
            ));
        }
        Ok((vcpus, maxvcpus))
    }

    fn cmdline(&mut self) -> Result<Option<String>, ConfigError> {
        let cmdline = self.string("cmdline")?;
        let root = self.string("root")?;
        let extra = self.string("extra")?;
        if cmdline.is_some() && (root.is_some() || extra.is_some()) {
            let setting = self.config.get("cmdline").expect("read");
            self.warn(
                setting,
                setting.key_pos,
                "ignoring `root` and `extra` in favour of `cmdline`, as xl does",
            );
        }
        Ok(match (cmdline, root, extra) {
            (Some(c), _, _) => Some(c),
            (None, Some(r), Some(e)) => Some(format!("root={r} {e}")),
            (None, Some(r), None) => Some(format!("root={r}")),
            (None, None, extra) => extra,
        })
    }

    fn action(&self, key: &str, default: ShutdownAction) -> Result<ShutdownAction, ConfigError> {
        let Some(text) = self.string(key)? else {
            return Ok(default);
        };
        let setting = self.config.get(key).expect("read");
        match XL_ACTIONS.iter().find(|(name, _)| *name == text) {
            Some((_, Some(action))) => Ok(*action),
            Some((name, None)) => Err(Self::err(
                setting,
                setting.value.pos,
                format!(
                    "`{key}` = \"{name}\" is an xl action that Oxen does not support; use \"destroy\", \"restart\" or \"preserve\""
                ),
            )),
            None => Err(Self::err(
                setting,
                setting.value.pos,
                format!(
                    "unknown `{key}` action \"{text}\" (xl accepts destroy, restart, rename-restart, preserve, coredump-destroy, coredump-restart, soft-reset)"
                ),
            )),
        }
    }
}

/// Parses an integer like C's `strtol(text, &end, 0)` with the whole text
/// consumed: optional sign, `0x` hex, leading-`0` octal, or decimal.
#[must_use]
pub fn parse_c_integer(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = i128::from(u64::from_str_radix(digits, radix).ok()?);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_integers() {
        assert_eq!(parse_c_integer("512"), Some(512));
        assert_eq!(parse_c_integer("0x200"), Some(512));
        assert_eq!(parse_c_integer("010"), Some(8));
        assert_eq!(parse_c_integer("0"), Some(0));
        assert_eq!(parse_c_integer("-3"), Some(-3));
        assert_eq!(parse_c_integer("08"), None);
        assert_eq!(parse_c_integer("12abc"), None);
        assert_eq!(parse_c_integer("0x"), None);
        assert_eq!(parse_c_integer(""), None);
        assert_eq!(parse_c_integer("99999999999999999999999"), None);
    }
}
