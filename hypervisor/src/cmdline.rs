//! The hypervisor's command line, in Xen's syntax (Xen's
//! `docs/misc/xen-command-line.pandoc`, "Types of parameter"):
//! whitespace-separated `name` or `name=value` options.
//!
//! Like Xen, `-` and `_` are the same in option names (`dom0-mem` is
//! `dom0_mem`), a boolean option alone means "on" and `no-<option>` means
//! "off", and a later occurrence of an option overrides an earlier one.
//!
//! Parsing never fails: every problem is handed to the caller's `report`
//! callback as a [`Diagnostic`] whose `Display` is a complete sentence for the
//! console, and the option concerned keeps (or falls back to) its default.
//! A malformed value always resets its option to the default, so that the
//! message "using the default" is true even when an earlier occurrence of the
//! option had set something else.
//!
//! GRUB 2 passes only the text after the image file name on the `multiboot2`
//! line (`grub-core/loader/multiboot.c`, "Skip filename"), but other loaders
//! put the path first; [`strip_image_path`] removes it when present.

use core::fmt;

use log::LevelFilter;

use crate::mm::addr::ByteSize;

#[cfg(test)]
mod tests;

/// The options the hypervisor understands, after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `loglvl=`: the most verbose log level printed. Default `info`.
    pub loglvl: LevelFilter,
    /// `dom0_mem=`: dom0's memory. `None`: sized automatically.
    pub dom0_mem: Option<Dom0Mem>,
    /// `console=`: where the hypervisor's console goes. Default COM1.
    pub console: Console,
    /// `maxcpus=`: the most physical CPUs brought up. `None`: all.
    pub maxcpus: Option<u32>,
    /// `dom0_max_vcpus=`: dom0's vCPU count. `None`: one per physical CPU.
    pub dom0_max_vcpus: Option<u32>,
    /// `on_exit=` (or `noreboot`): what happens when nothing is left to run.
    /// Default reboot.
    pub on_exit: ExitAction,
    /// `exit_stats=`: print VM-exit statistics when dom0 ends. Default on.
    pub exit_stats: bool,
    /// `canary`: plant isolation canaries in hypervisor memory and the free
    /// pool, and check them when dom0 ends (for isolation tests). Default
    /// off.
    pub canary: bool,
    /// `crashtest=`: once every CPU is in VMX root, deliberately fault or
    /// panic, to show the fault and panic reports (for tests). Default none.
    pub crashtest: CrashTest,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            loglvl: LevelFilter::Info,
            dom0_mem: None,
            console: Console::Com1,
            maxcpus: None,
            dom0_max_vcpus: None,
            on_exit: ExitAction::Reboot,
            exit_stats: true,
            canary: false,
            crashtest: CrashTest::None,
        }
    }
}

/// dom0's memory, from `dom0_mem=<size>[,max:<size>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dom0Mem {
    /// Initial memory. Never zero; never above `max` (Xen: "`max` overrides").
    /// With only `max:<size>` given, it is that size: Xen's default "all
    /// memory minus a reserve" capped by `max`, which the caller clamps
    /// further to what is available.
    pub size: ByteSize,
    /// The most dom0 may balloon up to; `None`: unlimited.
    pub max: Option<ByteSize>,
}

/// The hypervisor console, from `console=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// The first serial port (I/O port 0x3F8).
    Com1,
    /// The second serial port (I/O port 0x2F8).
    Com2,
    /// No console output.
    None,
}

impl fmt::Display for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Com1 => "com1",
            Self::Com2 => "com2",
            Self::None => "none",
        })
    }
}

/// What the hypervisor does when nothing is left to run (no dom0, or dom0
/// gone), from `on_exit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitAction {
    /// Stop every CPU and wait (Xen's `noreboot`).
    Halt,
    /// Switch the machine off (ACPI S5).
    PowerOff,
    /// Reset the machine.
    Reboot,
}

impl fmt::Display for ExitAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Halt => "halt",
            Self::PowerOff => "poweroff",
            Self::Reboot => "reboot",
        })
    }
}

/// A deliberate failure for testing the hypervisor's own fault and panic
/// reports, from `crashtest=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashTest {
    /// Nothing (the default).
    None,
    /// The second CPU reads an unmapped address: its page-fault report, that
    /// CPU stopped, the others going on.
    Fault,
    /// The boot CPU panics: the panic report with its location.
    Panic,
}

/// A problem found on the command line. Its `Display` is a complete sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnostic<'a> {
    /// An option name the hypervisor does not know.
    UnknownOption {
        /// The name as written.
        name: &'a str,
    },
    /// A value that does not parse (or a missing one); the option is set to
    /// its default.
    Malformed {
        /// The option's name as written.
        name: &'a str,
        /// The value as written; empty if there was none.
        value: &'a str,
        /// What the option accepts.
        expected: &'static str,
        /// The default now in force, as text.
        default_used: &'static str,
    },
    /// A value that is valid for Xen but that Oxen does not support; the note
    /// says what happens instead.
    Unsupported {
        /// The option's name as written.
        name: &'a str,
        /// The value (or list item) concerned.
        value: &'a str,
        /// Why, and what is done instead.
        note: &'static str,
    },
}

impl fmt::Display for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnknownOption { name } => write!(f, "unknown option '{name}' ignored"),
            Self::Malformed {
                name,
                value: "",
                expected,
                default_used,
            } => write!(
                f,
                "missing value for {name}= (expected {expected}); using the default \
                 '{default_used}'"
            ),
            Self::Malformed {
                name,
                value,
                expected,
                default_used,
            } => write!(
                f,
                "malformed value '{value}' for {name}= (expected {expected}); using the \
                 default '{default_used}'"
            ),
            Self::Unsupported {
                name,
                value: "",
                note,
            } => {
                write!(f, "option '{name}' is not supported: {note}")
            }
            Self::Unsupported { name, value, note } => {
                write!(f, "value '{value}' for {name}= is not supported: {note}")
            }
        }
    }
}

/// The options this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Loglvl,
    Dom0Mem,
    Console,
    Maxcpus,
    Dom0MaxVcpus,
    OnExit,
    ExitStats,
    NoReboot,
    Canary,
    CrashTest,
}

impl Opt {
    const ALL: [(&'static str, Opt); 10] = [
        ("loglvl", Opt::Loglvl),
        ("dom0_mem", Opt::Dom0Mem),
        ("console", Opt::Console),
        ("maxcpus", Opt::Maxcpus),
        ("dom0_max_vcpus", Opt::Dom0MaxVcpus),
        ("on_exit", Opt::OnExit),
        ("exit_stats", Opt::ExitStats),
        ("noreboot", Opt::NoReboot),
        ("canary", Opt::Canary),
        ("crashtest", Opt::CrashTest),
    ];

    /// The option a name denotes, treating `-` and `_` alike (as Xen's
    /// `cmdline_strcmp` does).
    fn lookup(name: &str) -> Option<Opt> {
        let same = |known: &str| {
            known.len() == name.len()
                && known.bytes().zip(name.bytes()).all(|(k, n)| {
                    let n = if n == b'-' { b'_' } else { n };
                    k == n
                })
        };
        Self::ALL
            .iter()
            .find(|(known, _)| same(known))
            .map(|&(_, opt)| opt)
    }

    /// Whether the option is a Xen `<boolean>` (name alone = on, `no-` = off).
    fn is_boolean(self) -> bool {
        matches!(self, Opt::ExitStats | Opt::NoReboot | Opt::Canary)
    }
}

const LOGLVL_EXPECTED: &str = "one of none, error, warning, info, debug, trace, all";
const NEGATED_EXPECTED: &str = "no value after a no- prefix";
const BOOL_EXPECTED: &str = "a boolean: yes, no, on, off, true, false, enable, disable, 1 or 0";
const DOM0_MEM_EXPECTED: &str =
    "a size above zero such as 512M (no suffix means KiB), optionally with ,max:<size>";
const CONSOLE_EXPECTED: &str = "a comma-separated list of com1, com2, vga, none";
const COUNT_EXPECTED: &str = "a positive integer";
const ON_EXIT_EXPECTED: &str = "one of halt, poweroff, reboot";
const CRASHTEST_EXPECTED: &str = "one of none, fault, panic";

/// Parses a command line. Problems go to `report`, in order; the result holds
/// the defaults for everything not (validly) set.
pub fn parse<'a>(cmdline: &'a str, report: &mut dyn FnMut(Diagnostic<'a>)) -> Options {
    let mut options = Options::default();
    for token in cmdline.split_ascii_whitespace() {
        apply(&mut options, token, report);
    }
    options
}

/// Applies one `name[=value]` token.
fn apply<'a>(options: &mut Options, token: &'a str, report: &mut dyn FnMut(Diagnostic<'a>)) {
    let (name, value) = match token.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (token, None),
    };
    let negated = name
        .strip_prefix("no-")
        .and_then(Opt::lookup)
        .filter(|opt| opt.is_boolean());
    let Some(opt) = negated.or_else(|| Opt::lookup(name)) else {
        let name = if name.is_empty() { token } else { name };
        report(Diagnostic::UnknownOption { name });
        return;
    };
    let value_text = value.unwrap_or("");
    let mut malformed = |expected, default_used| {
        report(Diagnostic::Malformed {
            name,
            value: value_text,
            expected,
            default_used,
        })
    };

    if opt.is_boolean() {
        // Xen: a boolean alone is true, `no-<name>` false; stacking `no-` with
        // a value is undefined, so it is refused.
        let enabled = match (negated.is_some(), value) {
            (false, None) => Some(true),
            (true, None) => Some(false),
            (false, Some(v)) => parse_bool(v),
            (true, Some(_)) => None,
        };
        // With `no-` the trouble is the value's presence, not its spelling.
        let expected = if negated.is_some() {
            NEGATED_EXPECTED
        } else {
            BOOL_EXPECTED
        };
        match (opt, enabled) {
            (Opt::ExitStats, Some(on)) => options.exit_stats = on,
            (Opt::ExitStats, None) => {
                options.exit_stats = Options::default().exit_stats;
                malformed(expected, "yes");
            }
            (Opt::Canary, Some(on)) => options.canary = on,
            (Opt::Canary, None) => {
                options.canary = Options::default().canary;
                malformed(expected, "no");
            }
            (_, Some(true)) => options.on_exit = ExitAction::Halt,
            (_, Some(false)) => options.on_exit = ExitAction::Reboot,
            (_, None) => {
                options.on_exit = Options::default().on_exit;
                malformed(expected, "reboot");
            }
        }
        return;
    }

    match opt {
        Opt::Loglvl => match parse_loglvl(name, value_text, report) {
            Some(level) => options.loglvl = level,
            None => {
                options.loglvl = Options::default().loglvl;
                report(Diagnostic::Malformed {
                    name,
                    value: value_text,
                    expected: LOGLVL_EXPECTED,
                    default_used: "info",
                });
            }
        },
        Opt::Dom0Mem => match parse_dom0_mem(name, value_text, report) {
            Ok(Some(mem)) => options.dom0_mem = Some(mem),
            Ok(None) => {}
            Err(()) => {
                options.dom0_mem = None;
                report(Diagnostic::Malformed {
                    name,
                    value: value_text,
                    expected: DOM0_MEM_EXPECTED,
                    default_used: "automatic",
                });
            }
        },
        Opt::Console => match parse_console(name, value_text, report) {
            Some(console) => options.console = console,
            None => {
                options.console = Options::default().console;
                report(Diagnostic::Malformed {
                    name,
                    value: value_text,
                    expected: CONSOLE_EXPECTED,
                    default_used: "com1",
                });
            }
        },
        Opt::Maxcpus => match parse_count(value_text) {
            Some(n) => options.maxcpus = Some(n),
            None => {
                options.maxcpus = None;
                malformed(COUNT_EXPECTED, "all");
            }
        },
        Opt::Dom0MaxVcpus => {
            if let Some(n) = parse_count(value_text) {
                options.dom0_max_vcpus = Some(n);
            } else if value_text.contains('-') {
                // Xen's `<min>-<max>` form.
                report(Diagnostic::Unsupported {
                    name,
                    value: value_text,
                    note: "a <min>-<max> range is not supported, give a single number; \
                           the setting is left unchanged",
                });
            } else {
                options.dom0_max_vcpus = None;
                malformed(COUNT_EXPECTED, "one per physical CPU");
            }
        }
        Opt::OnExit => {
            const CHOICES: [(&str, ExitAction); 3] = [
                ("halt", ExitAction::Halt),
                ("poweroff", ExitAction::PowerOff),
                ("reboot", ExitAction::Reboot),
            ];
            options.on_exit = choice(value_text, &CHOICES).unwrap_or_else(|| {
                malformed(ON_EXIT_EXPECTED, "reboot");
                Options::default().on_exit
            });
        }
        Opt::CrashTest => {
            const CHOICES: [(&str, CrashTest); 3] = [
                ("none", CrashTest::None),
                ("fault", CrashTest::Fault),
                ("panic", CrashTest::Panic),
            ];
            options.crashtest = choice(value_text, &CHOICES).unwrap_or_else(|| {
                malformed(CRASHTEST_EXPECTED, "none");
                Options::default().crashtest
            });
        }
        Opt::ExitStats | Opt::NoReboot | Opt::Canary => {}
    }
}

/// The value paired with the keyword of `table` that equals `s` ignoring
/// ASCII case.
fn choice<T: Copy>(s: &str, table: &[(&str, T)]) -> Option<T> {
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(s))
        .map(|&(_, value)| value)
}

/// The keyword of `list` that equals `s` ignoring ASCII case.
fn keyword(s: &str, list: &[&'static str]) -> Option<&'static str> {
    list.iter().copied().find(|k| k.eq_ignore_ascii_case(s))
}

/// `s` without `prefix`, compared ignoring ASCII case.
fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A Xen `<boolean>` value (case-insensitive here).
pub fn parse_bool(s: &str) -> Option<bool> {
    const WORDS: [&str; 10] = [
        "yes", "on", "true", "enable", "1", "no", "off", "false", "disable", "0",
    ];
    match keyword(s, &WORDS)? {
        "yes" | "on" | "true" | "enable" | "1" => Some(true),
        _ => Some(false),
    }
}

/// One log level name.
fn level(s: &str) -> Option<LevelFilter> {
    const WORDS: [&str; 8] = [
        "none", "error", "warning", "warn", "info", "debug", "trace", "all",
    ];
    Some(match keyword(s, &WORDS)? {
        "none" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warning" | "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" | "all" => LevelFilter::Trace,
        _ => return None,
    })
}

/// `loglvl=<level>[/<rate-limited level>]` (Xen); the rate-limit part must
/// name a level but is otherwise ignored, with a note.
fn parse_loglvl<'a>(
    name: &'a str,
    value: &'a str,
    report: &mut dyn FnMut(Diagnostic<'a>),
) -> Option<LevelFilter> {
    let (main, limited) = match value.split_once('/') {
        Some((main, limited)) => (main, Some(limited)),
        None => (value, None),
    };
    let parsed = level(main)?;
    if let Some(limited) = limited {
        level(limited)?;
        report(Diagnostic::Unsupported {
            name,
            value,
            note: "there is no rate limiting, the part after '/' is ignored",
        });
    }
    Some(parsed)
}

/// `dom0_mem=` as a list of `<size>`, `max:<size>`, and the Xen forms Oxen
/// does not support (`min:<size>`, negative sizes, percentages), which are
/// reported and skipped. `Ok(None)`: nothing usable but nothing malformed.
fn parse_dom0_mem<'a>(
    name: &'a str,
    value: &'a str,
    report: &mut dyn FnMut(Diagnostic<'a>),
) -> Result<Option<Dom0Mem>, ()> {
    let (mut size, mut max) = (None, None);
    let mut any = false;
    for item in value.split(',').filter(|item| !item.is_empty()) {
        any = true;
        let nonzero = |s: &str| parse_size(s).filter(|size| size.as_u64() > 0).ok_or(());
        if let Some(rest) = strip_prefix_ignore_case(item, "max:") {
            max = Some(nonzero(rest)?);
        } else if let Some(rest) = strip_prefix_ignore_case(item, "min:") {
            nonzero(rest)?;
            report(Diagnostic::Unsupported {
                name,
                value: item,
                note: "a minimum is not supported and is ignored",
            });
        } else if item.starts_with('-') || item.contains('%') {
            report(Diagnostic::Unsupported {
                name,
                value: item,
                note: "sizes relative to host memory (negative or percentages) are not \
                       supported; give an absolute size",
            });
        } else {
            size = Some(nonzero(item)?);
        }
    }
    if !any {
        return Err(());
    }
    Ok(match (size, max) {
        (Some(size), max) => Some(Dom0Mem {
            size: max.map_or(size, |m| size.min(m)),
            max,
        }),
        (None, Some(max)) => Some(Dom0Mem {
            size: max,
            max: Some(max),
        }),
        (None, None) => None,
    })
}

/// `console=` as a comma-separated list (Xen: `vga`, `com1[H|L]`, `com2[H|L]`,
/// `dbgp`, `ehci`, `xhci`, `pv`, `none`). COM1 wins over COM2, which wins
/// over `none`; a list naming no usable console leaves COM1. `None` if an
/// item is not a Xen console name at all.
fn parse_console<'a>(
    name: &'a str,
    value: &'a str,
    report: &mut dyn FnMut(Diagnostic<'a>),
) -> Option<Console> {
    let (mut com1, mut com2, mut none) = (false, false, false);
    let mut unsupported = |item, note| {
        report(Diagnostic::Unsupported {
            name,
            value: item,
            note,
        })
    };
    let mut any = false;
    for item in value.split(',').filter(|item| !item.is_empty()) {
        any = true;
        const HIGH_BIT: &str =
            "the H and L high-bit modes are not supported; the port is used as is";
        let names = [
            "com1", "com2", "none", "vga", "com1h", "com1l", "com2h", "com2l", "dbgp", "ehci",
            "xhci", "pv",
        ];
        match keyword(item, &names)? {
            "com1" => com1 = true,
            "com2" => com2 = true,
            "none" => none = true,
            "vga" => unsupported(
                item,
                "there is no VGA console, only the serial ports com1 and com2",
            ),
            "com1h" | "com1l" => {
                com1 = true;
                unsupported(item, HIGH_BIT);
            }
            "com2h" | "com2l" => {
                com2 = true;
                unsupported(item, HIGH_BIT);
            }
            _ => unsupported(item, "USB debug ports and the PV console are not supported"),
        }
    }
    if !any {
        return None;
    }
    Some(if com1 {
        Console::Com1
    } else if com2 {
        Console::Com2
    } else if none {
        Console::None
    } else {
        Console::Com1
    })
}

/// A positive count that fits in a u32, in Xen's `<integer>` syntax.
fn parse_count(s: &str) -> Option<u32> {
    let (n, rest) = parse_integer_prefix(s)?;
    if !rest.is_empty() || n == 0 {
        return None;
    }
    u32::try_from(n).ok()
}

/// The leading unsigned integer of `s` in Xen's `<integer>` syntax (decimal;
/// hexadecimal after `0x`; octal after a leading `0`, as C's `strtoull` with
/// base 0), and the rest of the text. `None` if there are no digits or the
/// value overflows a u64.
fn parse_integer_prefix(s: &str) -> Option<(u64, &str)> {
    let bytes = s.as_bytes();
    let (radix, start) = match bytes {
        [b'0', b'x' | b'X', ..] => (16, 2),
        [b'0', ..] => (8, 1),
        _ => (10, 0),
    };
    let digits = s[start..]
        .bytes()
        .take_while(|b| char::from(*b).is_digit(radix))
        .count();
    if digits == 0 && radix != 8 {
        return None;
    }
    let mut value: u64 = 0;
    for b in s[start..start + digits].bytes() {
        let digit = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
    }
    Some((value, &s[start + digits..]))
}

/// A size in Xen's `<size>` syntax: an integer (as [`parse_integer_prefix`])
/// with at most one suffix `B`, `K`, `M`, `G` or `T` in either case; without a
/// suffix the unit is KiB, as in Xen ("Without a size suffix, the default will
/// be kilo"). `None` for anything else or if the size overflows a u64.
pub fn parse_size(s: &str) -> Option<ByteSize> {
    let (n, suffix) = parse_integer_prefix(s)?;
    let shift = match suffix {
        "" | "k" | "K" => 10,
        "b" | "B" => 0,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => return None,
    };
    let bytes = n.checked_mul(1u64 << shift)?;
    Some(ByteSize::new(bytes))
}

/// The command line without a leading image path (a first word starting with
/// `/`, or with `(` for GRUB's `(hd0,1)/...` device syntax), which some
/// Multiboot loaders include. No option starts with either character, so
/// calling this on a GRUB 2 command line (which has no path) is harmless.
pub fn strip_image_path(cmdline: &str) -> &str {
    let trimmed = cmdline.trim_start_matches(|c: char| c.is_ascii_whitespace());
    if !trimmed.starts_with(['/', '(']) {
        return cmdline;
    }
    let end = trimmed
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    trimmed[end..].trim_start_matches(|c: char| c.is_ascii_whitespace())
}
