//! `cargo xtask bench dom0-boot|hypercall|domu-create`: measurements under Bochs, each
//! written to its own section of `docs/benchmarks.md`.
//!
//! # `dom0-boot`
//!
//! How much slower Debian's kernel reaches userspace as dom0 under the
//! hypervisor than on the bare (emulated) machine:
//!
//! 1. The `dom0-bzimage` scenario as `cargo xtask test` runs it (Debian's
//!    bzImage through the Linux 64-bit boot protocol, 2 vCPUs,
//!    `dom0_mem=512M`): the same image the bare run boots, so both kernels
//!    take the same path from decompression to userspace.
//! 2. The same kernel without the hypervisor: GRUB's `linux` with that
//!    bzImage and the same initramfs and kernel arguments (plus
//!    `tsc_early_khz`, see below), on a Bochs machine with the same CPUs and
//!    as much RAM as dom0 gets.
//!
//! The number compared is what `/init` reads from `/proc/uptime` as soon as
//! userspace starts (`OXEN-DOM0: uptime: S`): the guest kernel's own clock
//! from its start to userspace. It leaves out GRUB, the hypervisor's own boot
//! and (bare) the bzImage's decompression. That clock counts TSC ticks at the
//! frequency the kernel believes (`OXEN-DOM0: tsc-khz: N`, from its log),
//! while Bochs advances the TSC at its `ips`: bare, the kernel takes a
//! multi-GHz frequency from Bochs' CPUID; under the hypervisor it is told
//! 64 MHz. So each uptime is normalized to emulated seconds,
//! `uptime × tsc_khz / (ips / 1000)`, and the ratio is of those.
//!
//! The under-hypervisor run also reports `/bin/oxen-bench`
//! (`tools/bench/oxen-bench.c`): the CPUID exit round trip and a getppid
//! system call from dom0 userspace, in TSC ticks.
//!
//! # `hypercall`
//!
//! The round trip of the cheapest control hypercall from dom0 userspace: the
//! `VERSION` ioctl of `/dev/hvctl` (system call, the hvctl driver, VMCALL
//! exit, the hypervisor's dispatch, and back), beside a getppid system call
//! measured the same way, in TSC ticks per call. The `hypercall-abuse`
//! scenario runs `oxen-bench hypercall` in dom0 before its abuse; this
//! command runs that scenario as `cargo xtask test` does and reads its
//! `OXEN-BENCH:` lines.
//!
//! # `domu-create`
//!
//! See [`crate::bench_domu`].

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use regex::Regex;

use crate::assets::{NamedAsset, Resolver};
use crate::emulator::BOCHS_IPS;
use crate::iso;
use crate::scenario::{self, EmulatorChoice, End, Scenario};
use crate::test::{Verdict, run_scenario};
use crate::watch::Pattern;
use crate::{build, deps, target_dir, workspace_root};

/// What `cargo xtask bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    /// dom0 (Debian's kernel) to userspace under the hypervisor vs bare.
    Dom0Boot,
    /// The VERSION ioctl of /dev/hvctl from dom0 userspace, beside getppid.
    Hypercall,
    /// `xl-rs create` and `destroy` of a Linux domU, and its boot beside
    /// the same kernel bare.
    DomuCreate,
}

/// The scenario measured under the hypervisor.
const SCENARIO: &str = "dom0-bzimage";

/// Where the results go, relative to the workspace root.
pub(crate) const RESULTS: &str = "docs/benchmarks.md";

/// The uptime marker of the dom0-boot initramfs.
const UPTIME: &str = r"OXEN-DOM0: uptime: ([0-9]+(?:\.[0-9]+)?)";

pub fn bench(which: Bench) -> Result<bool> {
    match which {
        Bench::Dom0Boot => dom0_boot(),
        Bench::Hypercall => hypercall(),
        Bench::DomuCreate => crate::bench_domu::domu_create(),
    }
}

/// The TSC-frequency marker of the dom0-boot initramfs.
const TSC_KHZ: &str = r"OXEN-DOM0: tsc-khz: (\d+)";

/// The goal for the CPUID exit round trip, in TSC ticks (issue 3).
const CPUID_GOAL_TICKS: u64 = 500;

/// One measured boot.
#[derive(Debug)]
struct Measured {
    /// `/proc/uptime` at userspace, in the kernel's idea of seconds.
    uptime_s: f64,
    /// The TSC frequency the kernel believes, in kHz.
    tsc_khz: u64,
    memtotal_kb: Option<u64>,
    wall_s: f64,
    /// `OXEN-BENCH: cpuid-ticks:` and `getppid-ticks:`, when printed.
    cpuid_ticks: Option<u64>,
    getppid_ticks: Option<u64>,
}

impl Measured {
    /// The uptime in emulated seconds: TSC ticks the kernel counted
    /// (`uptime × tsc_khz × 1000`) over the rate Bochs advances the TSC.
    fn emulated_s(&self) -> f64 {
        emulated_seconds(self.uptime_s, self.tsc_khz)
    }
}

/// `uptime_s × tsc_khz / (ips / 1000)`.
pub(crate) fn emulated_seconds(uptime_s: f64, tsc_khz: u64) -> f64 {
    uptime_s * tsc_khz as f64 / (BOCHS_IPS as f64 / 1000.0)
}

fn dom0_boot() -> Result<bool> {
    let dom0 = scenario::load(&scenario::dir().join(format!("{SCENARIO}.toml")))?;
    if dom0.emulator != EmulatorChoice::Bochs {
        bail!("the {SCENARIO} scenario no longer runs under Bochs: adapt the bench");
    }
    deps::ensure_all(&[deps::ISO, deps::BOCHS, deps::ASSETS])?;
    let hypervisor = build::build(false)?;
    let mut resolver = Resolver::new(&workspace_root());
    let spec = dom0.iso_spec(&mut resolver)?;
    let bzimage = resolver.resolve(NamedAsset::Dom0Bzimage)?;
    let initramfs = resolver.resolve(NamedAsset::InitramfsDom0Boot)?;
    let kernel_args = dom0
        .modules
        .iter()
        .find(|module| module.asset() == Some(NamedAsset::Dom0Bzimage))
        .map(|module| module.args.clone())
        .with_context(|| format!("the {SCENARIO} scenario boots no @dom0-bzimage"))?;
    let dom0_mib = dom0_mem_mib(&dom0.cmdline)
        .with_context(|| format!("no dom0_mem=NM in `{}`", dom0.cmdline))?;
    let dir = target_dir().join("bench");

    println!("bench {SCENARIO} 1/2: dom0 under the hypervisor");
    let started = Instant::now();
    let image = iso::make_iso(&hypervisor.path, &spec, "bench-dom0-boot")?;
    let under = run_scenario(&dom0, image, &dir)? == Verdict::Pass;
    let under = measure(&dir.join(format!("{}.log", dom0.name)), started, under)?;

    println!("bench {SCENARIO} 2/2: the same kernel and initramfs without the hypervisor");
    let bare = bare_scenario(&dom0, dom0_mib)?;
    let started = Instant::now();
    // The bare kernel would believe Bochs' multi-GHz CPUID frequency while the
    // TSC runs at the emulated instruction rate, stretching every wait it
    // times; tell it the real rate, as the hypervisor tells dom0.
    let bare_args = format!("{kernel_args} tsc_early_khz={}", BOCHS_IPS / 1000);
    let image = iso::make_linux_iso(&bzimage, &bare_args, &initramfs, "bench-bare-linux")?;
    let passed = run_scenario(&bare, image, &dir)? == Verdict::Pass;
    let bare_measured = measure(&dir.join(format!("{}.log", bare.name)), started, passed)?;

    let ratio = under.emulated_s() / bare_measured.emulated_s();
    println!(
        "\nbench {SCENARIO}: dom0 reached userspace after {:.2} emulated s under the hypervisor \
         (uptime {:.2} s at {} kHz), bare Linux after {:.2} emulated s (uptime {:.2} s at {} kHz): \
         {ratio:.2}x (wall {:.0} s and {:.0} s)",
        under.emulated_s(),
        under.uptime_s,
        under.tsc_khz,
        bare_measured.emulated_s(),
        bare_measured.uptime_s,
        bare_measured.tsc_khz,
        under.wall_s,
        bare_measured.wall_s
    );
    let ticks = |value: Option<u64>| value.map_or("?".to_owned(), |n| n.to_string());
    println!(
        "bench {SCENARIO}: in dom0 userspace, CPUID exit round trip {} ticks, getppid {} ticks \
         (bare: {} and {})",
        ticks(under.cpuid_ticks),
        ticks(under.getppid_ticks),
        ticks(bare_measured.cpuid_ticks),
        ticks(bare_measured.getppid_ticks)
    );
    let kernel = Path::new(&bzimage)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let section = results_section(&dom0, &bare, &kernel, &kernel_args, &under, &bare_measured);
    let path = workspace_root().join(RESULTS);
    write_section(&path, &section, "dom0-boot")?;
    println!("results written to {}", path.display());
    Ok(true)
}

/// The scenario `bench hypercall` runs: it loads the hvctl driver and runs
/// `oxen-bench hypercall` before its abuse.
const HYPERCALL_SCENARIO: &str = "hypercall-abuse";

/// The goal for the VERSION ioctl's round trip, in TSC ticks (the issue).
const HYPERCALL_GOAL_TICKS: u64 = 1000;

/// What a production hypervisor's equivalent path (a control hypercall
/// through its dom0 driver's ioctl) costs under the same emulator, in TSC
/// ticks (the issue).
const PRODUCTION_HYPERCALL_TICKS: u64 = 2900;

/// The batches of `oxen-bench hypercall` (`HC_BATCHES`, `HC_PER_BATCH`).
const HYPERCALL_BATCHES: (u32, u32) = (64, 32);

/// What `oxen-bench hypercall` printed, TSC ticks per call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HypercallTicks {
    /// `OXEN-BENCH: hypercall-ticks:` (the VERSION ioctl).
    version: u64,
    /// `OXEN-BENCH: raw-hypercall-ticks:` (RAW with operation 0).
    raw: Option<u64>,
    /// `OXEN-BENCH: getppid-ticks:`.
    getppid: u64,
    /// `OXEN-BENCH: enotty-ioctl-ticks:` (an ioctl the driver does not know).
    enotty: Option<u64>,
    /// From the hypervisor's exit statistics at power-off, of the CPU with
    /// the most VMCALL exits: (exits, average handling ticks).
    vmcall_exits: Option<(u64, u64)>,
}

/// The markers of `oxen-bench hypercall` in a serial log.
fn hypercall_ticks(text: &str) -> Option<HypercallTicks> {
    let number = |pattern: &str| capture(text, pattern).and_then(|v| v.parse::<u64>().ok());
    Some(HypercallTicks {
        version: number(r"OXEN-BENCH: hypercall-ticks: (\d+)")?,
        raw: number(r"OXEN-BENCH: raw-hypercall-ticks: (\d+)"),
        getppid: number(r"OXEN-BENCH: getppid-ticks: (\d+)")?,
        enotty: number(r"OXEN-BENCH: enotty-ioctl-ticks: (\d+)"),
        vmcall_exits: vmcall_exits(text),
    })
}

/// The VMCALL line of the hypervisor's exit statistics (`18 VMCALL COUNT
/// AVERAGE`, one per CPU) with the most exits.
fn vmcall_exits(text: &str) -> Option<(u64, u64)> {
    let line = Regex::new(r"\b18 VMCALL +(\d+) +(\d+)").ok()?;
    line.captures_iter(text)
        .filter_map(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)))
        .max_by_key(|&(count, _)| count)
}

fn hypercall() -> Result<bool> {
    let path = scenario::dir().join(format!("{HYPERCALL_SCENARIO}.toml"));
    let scenario = scenario::load(&path)?;
    if scenario.emulator != EmulatorChoice::Bochs {
        bail!("the {HYPERCALL_SCENARIO} scenario no longer runs under Bochs: adapt the bench");
    }
    deps::ensure_all(&[deps::ISO, deps::BOCHS, deps::ASSETS])?;
    let hypervisor = build::build(false)?;
    let root = workspace_root();
    let mut resolver = Resolver::new(&root);
    let spec = scenario.iso_spec(&mut resolver)?;
    let kernel = crate::assets::debian_kernel(&root)
        .map(|kernel| kernel.release)
        .unwrap_or_else(|_| "?".to_owned());
    let dir = target_dir().join("bench");

    println!(
        "bench hypercall: the {HYPERCALL_SCENARIO} scenario, whose dom0 runs `oxen-bench hypercall`"
    );
    let started = Instant::now();
    let image = iso::make_iso(&hypervisor.path, &spec, "bench-hypercall")?;
    let passed = run_scenario(&scenario, image, &dir)? == Verdict::Pass;
    let wall_s = started.elapsed().as_secs_f64();
    let log = dir.join(format!("{}.log", scenario.name));
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let ticks = hypercall_ticks(&String::from_utf8_lossy(&text)).with_context(|| {
        format!(
            "no `OXEN-BENCH: hypercall-ticks: N` and `getppid-ticks: N` in {}{}",
            log.display(),
            if passed { "" } else { " (the scenario failed)" }
        )
    })?;
    // The measurement comes first in the scenario's /init: a failure of the
    // abuse that follows does not void it, but it is said.
    if !passed {
        eprintln!(
            "bench hypercall: warning: the {HYPERCALL_SCENARIO} scenario failed after the \
             measurement (serial log {}); recording the numbers with a note",
            log.display()
        );
    }
    let raw = ticks.raw.map_or("?".to_owned(), |n| n.to_string());
    println!(
        "\nbench hypercall: VERSION ioctl of /dev/hvctl {} ticks per call (goal < {HYPERCALL_GOAL_TICKS}), \
         RAW ioctl with operation 0 {raw}, getppid {} (wall {wall_s:.0} s)",
        ticks.version, ticks.getppid
    );
    let section = hypercall_section(&scenario, &kernel, &ticks, wall_s, passed);
    let path = root.join(RESULTS);
    write_section(&path, &section, "hypercall")?;
    println!("results written to {}", path.display());
    // Written either way, but a failed scenario still fails the command.
    Ok(passed)
}

/// The generated part of `docs/benchmarks.md` for `bench hypercall`.
fn hypercall_section(
    scenario: &Scenario,
    kernel: &str,
    ticks: &HypercallTicks,
    wall_s: f64,
    passed: bool,
) -> String {
    let (batches, per_batch) = HYPERCALL_BATCHES;
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let raw = ticks.raw.map_or("?".to_owned(), |n| n.to_string());
    let mut text = String::new();
    writeln!(text, "{}", begin_marker("hypercall")).unwrap();
    writeln!(
        text,
        "## Control hypercall round trip from dom0 userspace\n"
    )
    .unwrap();
    writeln!(text, "```sh\ncargo xtask bench hypercall\n```\n").unwrap();
    writeln!(
        text,
        "**Measured:** `oxen-bench hypercall` (`tools/bench/oxen-bench.c`, built by \
         xtask with `gcc -static -O2`) in dom0 userspace, run by the \
         `{HYPERCALL_SCENARIO}` scenario's `/init` \
         (`tests/qemu/initramfs/init-hypercall-abuse.sh`) right after it loads \
         the hvctl driver and before its abuse; this command runs that scenario \
         as `cargo xtask test` does and reads the `OXEN-BENCH:` lines. TSC ticks \
         per call: median of {batches} batches of {per_batch} calls, the empty \
         loop's cost subtracted; with `clock: sync=none` a tick is about one \
         emulated instruction, so the numbers repeat across runs and hosts. The \
         `VERSION` ioctl of `/dev/hvctl` is the cheapest control hypercall from \
         dom0 userspace: the ioctl system call, the driver copying the 8-byte \
         argument from user space to its stack and into its CPU's own slab \
         buffer (allocated at load; physically contiguous) and back, \
         and the `VMCALL`: the VM exit, the hypervisor's dispatch (reading and \
         writing those 8 bytes by guest-physical address) and the VM entry. The \
         `RAW` ioctl with operation 0 is refused by the hypervisor at once \
         (`INVALID_OPERATION`) and the driver allocates nothing for it: the \
         system call and a bare `VMCALL` round trip, to split the cost. An ioctl \
         the driver does not know (`ENOTTY`) is Linux's ioctl path alone. getppid \
         is a system call without an exit, measured the same way, for scale. \
         **Not measured:** real hardware speed, other operations (they copy \
         more).\n"
    )
    .unwrap();
    writeln!(
        text,
        "| operation (dom0 userspace) | TSC ticks per call | goal |\n|---|---|---|"
    )
    .unwrap();
    writeln!(
        text,
        "| `VERSION` ioctl of `/dev/hvctl` (`OXEN_IOCTL_VERSION`) | {} | < {} ticks; a production hypervisor's equivalent path takes about {} under the same emulator |",
        ticks.version,
        thousands(HYPERCALL_GOAL_TICKS),
        thousands(PRODUCTION_HYPERCALL_TICKS)
    )
    .unwrap();
    writeln!(
        text,
        "| `RAW` ioctl, operation 0 (refused at once, no allocation) | {raw} | for the split |"
    )
    .unwrap();
    if let Some((exits, average)) = ticks.vmcall_exits {
        writeln!(
            text,
            "| the hypervisor's handling of a VMCALL exit (its exit statistics: average over the {exits} VMCALLs of one CPU in the run, most of them the abuse's refusals; VM exit and entry not included) | {average} | for the split |"
        )
        .unwrap();
    }
    if let Some(enotty) = ticks.enotty {
        writeln!(
            text,
            "| an ioctl `/dev/hvctl` does not know (`ENOTTY`: Linux's ioctl path and the driver's switch, no hypercall) | {enotty} | the floor under any ioctl |"
        )
        .unwrap();
    }
    writeln!(
        text,
        "| getppid system call (no exit) | {} | for scale |\n",
        ticks.getppid
    )
    .unwrap();
    let verdict = if ticks.version < HYPERCALL_GOAL_TICKS {
        "within the goal"
    } else {
        "above the goal"
    };
    writeln!(
        text,
        "**Result: {} ticks per `VERSION` ioctl, {verdict} of {} ({:.2}x the production \
         hypervisor's {}; {:.1}x a getppid system call).**\n",
        ticks.version,
        thousands(HYPERCALL_GOAL_TICKS),
        ticks.version as f64 / PRODUCTION_HYPERCALL_TICKS as f64,
        thousands(PRODUCTION_HYPERCALL_TICKS),
        ticks.version as f64 / ticks.getppid.max(1) as f64
    )
    .unwrap();
    if let Some(enotty) = ticks.enotty.filter(|&e| e < ticks.version) {
        writeln!(
            text,
            "Of the `VERSION` ioctl's {} ticks, {enotty} are Linux's ioctl path before the \
             driver does anything; the driver's copies, the `VMCALL` exit and entry and the \
             hypervisor's dispatch take the other {}. Within the goal of {} that part would \
             have to fit in {} ticks: less than the CPUID exit round trip alone (see \
             `bench dom0-boot`), so with this stock kernel's ioctl path the goal is below what \
             any ioctl plus one VM exit costs here.\n",
            ticks.version,
            ticks.version - enotty,
            thousands(HYPERCALL_GOAL_TICKS),
            HYPERCALL_GOAL_TICKS.saturating_sub(enotty)
        )
        .unwrap();
    }
    if !passed {
        writeln!(
            text,
            "**Note:** the `{HYPERCALL_SCENARIO}` scenario failed in this run, after the \
             measurement (its serial log says why); the numbers above were printed before \
             the abuse started.\n"
        )
        .unwrap();
    }
    writeln!(
        text,
        "The CPUID exit round trip is measured by `cargo xtask bench dom0-boot` \
         (its section, above); this command leaves those numbers as they are.\n"
    )
    .unwrap();
    writeln!(
        text,
        "Run {date} at {}; kernel `{kernel}` (`@dom0-vmlinux`, PVH entry); host CPU {}; \
         Bochs `corei7_skylake_x`, `ips={BOCHS_IPS}`, `clock: sync=none`, {} CPUs, {} MiB; \
         hypervisor command line `{}`; wall time of the run {wall_s:.0} s. Serial log: \
         `target/bench/{}.log`.",
        revision(),
        host_cpu(),
        scenario.cpus,
        scenario.memory_mib,
        scenario.cmdline,
        scenario.name
    )
    .unwrap();
    writeln!(text, "{}", end_marker("hypercall")).unwrap();
    text
}

/// `2900` as `2,900`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The bare-metal counterpart of the dom0 scenario: Bochs with the same CPUs
/// and dom0's RAM, judged on the initramfs's markers and Linux's power-off.
fn bare_scenario(dom0: &Scenario, memory_mib: u32) -> Result<Scenario> {
    let pass = [
        "OXEN-DOM0: userspace up",
        &format!("OXEN-DOM0: cpus online: {}", dom0.cpus),
        UPTIME,
        "reboot: Power down",
    ];
    let fail = ["Kernel panic", "BUG:", "Oops"];
    Ok(Scenario {
        name: "bare-linux".to_owned(),
        description: format!(
            "Debian's bzImage booted by GRUB without the hypervisor, {} CPU(s), {memory_mib} MiB (dom0's share)",
            dom0.cpus
        ),
        emulator: EmulatorChoice::Bochs,
        cpus: dom0.cpus,
        memory_mib,
        cmdline: String::new(),
        modules: Vec::new(),
        timeout: dom0.timeout,
        pass: pass
            .iter()
            .map(|text| Pattern::new(text))
            .collect::<Result<_>>()?,
        fail: fail
            .iter()
            .map(|text| Pattern::new(text))
            .collect::<Result<_>>()?,
        end: End::Poweroff,
        inputs: Vec::new(),
        wip: None,
    })
}

/// `dom0_mem=512M` (or `G`) in a hypervisor command line, in MiB.
fn dom0_mem_mib(cmdline: &str) -> Option<u32> {
    let value = cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix("dom0_mem="))?;
    let (number, unit) = value.split_at(value.len().checked_sub(1)?);
    let number: u32 = number.parse().ok()?;
    match unit {
        "M" | "m" => Some(number),
        "G" | "g" => number.checked_mul(1024),
        _ => None,
    }
}

/// Reads the markers of a finished run from its serial log.
fn measure(log: &Path, started: Instant, passed: bool) -> Result<Measured> {
    let wall_s = started.elapsed().as_secs_f64();
    if !passed {
        bail!(
            "the run failed (serial log {}): nothing to compare",
            log.display()
        );
    }
    let text = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&text);
    let uptime_s = capture(&text, UPTIME)
        .and_then(|value| value.parse::<f64>().ok())
        .with_context(|| format!("no `OXEN-DOM0: uptime:` in {}", log.display()))?;
    let tsc_khz = capture(&text, TSC_KHZ)
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|&khz| khz > 0)
        .with_context(|| {
            format!(
                "no `OXEN-DOM0: tsc-khz: N` in {} (the kernel logged no \"tsc: Detected\"): \
                 cannot turn its uptime into emulated seconds",
                log.display()
            )
        })?;
    let number = |pattern: &str| capture(&text, pattern).and_then(|v| v.parse::<u64>().ok());
    Ok(Measured {
        uptime_s,
        tsc_khz,
        memtotal_kb: number(r"OXEN-DOM0: memtotal-kb: (\d+)"),
        wall_s,
        cpuid_ticks: number(r"OXEN-BENCH: cpuid-ticks: (\d+)"),
        getppid_ticks: number(r"OXEN-BENCH: getppid-ticks: (\d+)"),
    })
}

pub(crate) fn capture(text: &str, pattern: &str) -> Option<String> {
    Regex::new(pattern)
        .ok()?
        .captures(text)
        .map(|c| c[1].to_owned())
}

/// The first line of a command's output, or `?`.
pub(crate) fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The commit measured, `+ uncommitted changes` when the tree is dirty.
pub(crate) fn revision() -> String {
    let commit = first_line("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(workspace_root())
        .output()
        .is_ok_and(|output| !output.stdout.is_empty());
    if dirty {
        format!("{commit} + uncommitted changes")
    } else {
        commit
    }
}

pub(crate) fn host_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The first line of the generated section of `cargo xtask bench NAME`.
pub(crate) fn begin_marker(name: &str) -> String {
    format!("<!-- cargo xtask bench {name}: begin (generated; rerun the command to update) -->")
}

/// Its last line.
pub(crate) fn end_marker(name: &str) -> String {
    format!("<!-- cargo xtask bench {name}: end -->")
}

/// The generated part of `docs/benchmarks.md`.
fn results_section(
    dom0: &Scenario,
    bare: &Scenario,
    kernel: &str,
    kernel_args: &str,
    under: &Measured,
    bare_measured: &Measured,
) -> String {
    let kb = |m: &Measured| m.memtotal_kb.map_or("?".to_owned(), |kb| kb.to_string());
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let ips_mhz = BOCHS_IPS / 1_000_000;
    let mut text = String::new();
    writeln!(text, "{}", begin_marker("dom0-boot")).unwrap();
    writeln!(text, "## dom0 boot: under the hypervisor vs bare\n").unwrap();
    writeln!(text, "```sh\ncargo xtask bench dom0-boot\n```\n").unwrap();
    writeln!(
        text,
        "**Measured:** the guest kernel's own uptime when its `/init` starts \
         (`OXEN-DOM0: uptime: S`, read from `/proc/uptime` first thing in \
         `tests/qemu/initramfs/init-dom0-boot.sh`), i.e. from the kernel's \
         start to userspace. Bochs runs with `ips={BOCHS_IPS}` and `clock: \
         sync=none`: its TSC advances at {ips_mhz} MHz of emulated instructions \
         and the numbers repeat from run to run. The kernel's clock, though, \
         counts TSC ticks at the frequency the kernel *believes* \
         (`OXEN-DOM0: tsc-khz: N`, from its `tsc: Detected ... MHz TSC` or \
         `... MHz processor` log line): bare, it takes a multi-GHz frequency \
         from Bochs' CPUID, so its raw uptime is far too small; under the \
         hypervisor dom0 is told the real {ips_mhz} MHz. Each uptime is \
         therefore normalized to **emulated seconds = uptime × tsc_khz / \
         (ips / 1000)**, and the ratio is of those; the raw uptimes do not \
         compare. The ratio is the cost of running the kernel's boot as a guest \
         (VM exits, EPT, the hypervisor's emulation), as Bochs emulates it. \
         **Not measured:** GRUB, the hypervisor's own boot, the bzImage's \
         decompression (bare), real hardware speed. Wall times are for \
         orientation only and do not compare: they include GRUB loading the \
         kernel (65 MB vmlinux under the hypervisor, 8 MB bzImage bare) and, \
         bare, the bzImage decompressing its xz payload under emulation; they \
         depend on the host's load and on how cheaply Bochs skips the guest's \
         idle time.\n"
    )
    .unwrap();
    writeln!(
        text,
        "| run | boots | machine | MemTotal (kB) | raw uptime at userspace (kernel s) | TSC the kernel believes (kHz) | emulated s to userspace | wall time of the run (s) |"
    )
    .unwrap();
    writeln!(text, "|---|---|---|---|---|---|---|---|").unwrap();
    writeln!(
        text,
        "| under the hypervisor | `multiboot2 hypervisor.elf {}` + `module2 vmlinuz {kernel_args}` (64-bit boot protocol) + `module2` initramfs | Bochs, {} CPUs, {} MiB | {} | {:.2} | {} | {:.2} | {:.0} |",
        dom0.cmdline,
        dom0.cpus,
        dom0.memory_mib,
        kb(under),
        under.uptime_s,
        under.tsc_khz,
        under.emulated_s(),
        under.wall_s
    )
    .unwrap();
    writeln!(
        text,
        "| bare | `linux {kernel} {kernel_args} tsc_early_khz={}` + `initrd` (same initramfs) | Bochs, {} CPUs, {} MiB | {} | {:.2} | {} | {:.2} | {:.0} |",
        BOCHS_IPS / 1000,
        bare.cpus,
        bare.memory_mib,
        kb(bare_measured),
        bare_measured.uptime_s,
        bare_measured.tsc_khz,
        bare_measured.emulated_s(),
        bare_measured.wall_s
    )
    .unwrap();
    writeln!(
        text,
        "\n**Ratio (under the hypervisor / bare), in emulated seconds: {:.2}x.**\n",
        under.emulated_s() / bare_measured.emulated_s()
    )
    .unwrap();
    let stretch = bare_measured.tsc_khz as f64 / (BOCHS_IPS as f64 / 1000.0);
    if !(0.9..=1.1).contains(&stretch) {
        writeln!(
            text,
            "**Caveat:** the bare kernel also times its own waits (delays, timeouts, \
             `sleep`) with the frequency it believes, so each of them lasts {stretch:.0} \
             times longer in emulated time than under the hypervisor; the bare figure \
             includes that, and the ratio is not the hypervisor's overhead alone. A \
             fair bare baseline would tell the bare kernel the real frequency too.\n"
        )
        .unwrap();
    }
    let ticks = |value: Option<u64>| value.map_or("?".to_owned(), |n| n.to_string());
    writeln!(text, "### CPUID exit round trip in dom0 userspace\n").unwrap();
    writeln!(
        text,
        "`/bin/oxen-bench` (`tools/bench/oxen-bench.c`, built by xtask with \
         `gcc -static -O2`) runs in dom0 right after the uptime marker, in the \
         under-the-hypervisor run above. TSC ticks per operation, median of 15 \
         batches of 200, empty-loop cost subtracted; with `clock: sync=none` a \
         tick is about one emulated instruction, so the numbers repeat across \
         runs and hosts. CPUID leaf 0 is a VM exit: the exit, its handling and \
         the return to dom0. getppid is a system call without an exit, for scale.\n"
    )
    .unwrap();
    writeln!(
        text,
        "| operation (dom0 userspace) | TSC ticks | goal |\n|---|---|---|"
    )
    .unwrap();
    writeln!(
        text,
        "| CPUID exit round trip (leaf 0) | {} | < {CPUID_GOAL_TICKS} ticks; a production hypervisor takes about 1,000 under the same emulator (TESTING-FACTS) |",
        ticks(under.cpuid_ticks)
    )
    .unwrap();
    writeln!(
        text,
        "| getppid system call (no exit) | {} | for scale |\n",
        ticks(under.getppid_ticks)
    )
    .unwrap();
    writeln!(
        text,
        "Run {date} at {}; kernel `{kernel}`; host CPU {}; Bochs `corei7_skylake_x`, \
         `ips={BOCHS_IPS}`, `clock: sync=none`. Serial logs: `target/bench/{}.log`, \
         `target/bench/{}.log`.",
        revision(),
        host_cpu(),
        dom0.name,
        bare.name
    )
    .unwrap();
    writeln!(text, "{}", end_marker("dom0-boot")).unwrap();
    text
}

/// Replaces the generated section of `cargo xtask bench NAME` in `path` (or
/// appends it; creates the file with a heading when missing). The other
/// sections are left as they are.
pub(crate) fn write_section(path: &Path, section: &str, name: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nNumbers measured with `cargo xtask bench`. Each section \
         below is generated by the command it shows; rerun it to update.\n\n"
            .to_owned()
    });
    std::fs::write(path, replace_section(&old, section, name))
        .with_context(|| format!("writing {}", path.display()))
}

fn replace_section(old: &str, section: &str, name: &str) -> String {
    let (begin_text, end_text) = (begin_marker(name), end_marker(name));
    match (old.find(&begin_text), old.find(&end_text)) {
        (Some(begin), Some(end)) if begin < end => {
            let end = end + end_text.len();
            let rest = old[end..].strip_prefix('\n').unwrap_or(&old[end..]);
            format!("{}{section}{rest}", &old[..begin])
        }
        _ => {
            let separator = if old.ends_with("\n\n") || old.is_empty() {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{separator}{section}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dom0_mem() {
        assert_eq!(
            dom0_mem_mib("loglvl=info dom0_mem=512M on_exit=poweroff"),
            Some(512)
        );
        assert_eq!(dom0_mem_mib("dom0_mem=2G"), Some(2048));
        assert_eq!(dom0_mem_mib("dom0_mem=12Q"), None);
        assert_eq!(dom0_mem_mib("loglvl=info"), None);
    }

    #[test]
    fn uptime_is_normalized_to_emulated_seconds() {
        // Told the real 64 MHz: unchanged.
        assert!((emulated_seconds(2.5, BOCHS_IPS / 1000) - 2.5).abs() < 1e-9);
        // Believing 3.2 GHz at 64 MHz of ticks: 50 times longer.
        assert!((emulated_seconds(0.1, 3_200_000) - 5.0).abs() < 1e-9);
    }

    /// A generated section of `cargo xtask bench NAME` holding `body`.
    fn section(name: &str, body: &str) -> String {
        format!("{}\n{body}\n{}\n", begin_marker(name), end_marker(name))
    }

    #[test]
    fn the_section_is_replaced_in_place() {
        let first = section("dom0-boot", "old");
        let doc = format!("# Benchmarks\n\nintro\n\n{first}\n## other\n");
        let new = section("dom0-boot", "new");
        let replaced = replace_section(&doc, &new, "dom0-boot");
        assert_eq!(
            replaced,
            format!("# Benchmarks\n\nintro\n\n{new}\n## other\n")
        );
        assert_eq!(
            replace_section("# B\n", &new, "dom0-boot"),
            format!("# B\n\n{new}")
        );
    }

    #[test]
    fn sections_of_other_benches_are_kept() {
        let boot = section("dom0-boot", "boot numbers");
        let doc = format!("# Benchmarks\n\n{boot}");
        // Appended after the dom0-boot section, then replaced in place.
        let first = replace_section(&doc, &section("hypercall", "1"), "hypercall");
        assert_eq!(
            first,
            format!("# Benchmarks\n\n{boot}\n{}", section("hypercall", "1"))
        );
        let second = replace_section(&first, &section("hypercall", "2"), "hypercall");
        assert_eq!(
            second,
            format!("# Benchmarks\n\n{boot}\n{}", section("hypercall", "2"))
        );
        // And the other way round.
        let third = replace_section(&second, &section("dom0-boot", "new boot"), "dom0-boot");
        assert!(third.contains("new boot") && third.contains(&section("hypercall", "2")));
        assert!(!third.contains("boot numbers"));
    }

    #[test]
    fn hypercall_markers_are_read() {
        let log = "OXEN-ABUSE: hvctl loaded\n\
                   OXEN-BENCH: hypercall-ticks: 2412\n\
                   OXEN-BENCH: raw-hypercall-ticks: 1020\n\
                   OXEN-BENCH: getppid-ticks: 365\n\
                   [   29.224865] cpu0 INFO    cpu0: 26142 exits\n\
                   [   29.243351] cpu0 INFO       18 VMCALL                            14103      243\n\
                   [   29.308377] cpu0 INFO    cpu1: 17772 exits\n\
                   [   29.334081] cpu0 INFO       18 VMCALL                                2      217\n";
        assert_eq!(
            hypercall_ticks(log),
            Some(HypercallTicks {
                version: 2412,
                raw: Some(1020),
                getppid: 365,
                enotty: None,
                vmcall_exits: Some((14103, 243)),
            })
        );
        // The raw line alone is not the VERSION number.
        assert_eq!(
            hypercall_ticks("OXEN-BENCH: raw-hypercall-ticks: 9\nOXEN-BENCH: getppid-ticks: 3\n"),
            None
        );
        let no_raw =
            hypercall_ticks("OXEN-BENCH: hypercall-ticks: 5\nOXEN-BENCH: getppid-ticks: 3\n");
        assert_eq!(no_raw.map(|t| (t.version, t.raw)), Some((5, None)));
    }

    #[test]
    fn the_hypercall_section_names_command_and_numbers() {
        let scenario =
            scenario::load(&scenario::dir().join(format!("{HYPERCALL_SCENARIO}.toml"))).unwrap();
        assert_eq!(scenario.emulator, EmulatorChoice::Bochs);
        assert!(
            scenario
                .pass
                .iter()
                .any(|p| p.text.contains("OXEN-BENCH: hypercall-ticks"))
        );
        let ticks = HypercallTicks {
            version: 812,
            raw: Some(640),
            getppid: 365,
            enotty: Some(600),
            vmcall_exits: Some((14103, 243)),
        };
        let text = hypercall_section(&scenario, "6.1.0-56-amd64", &ticks, 120.0, true);
        assert!(text.starts_with(&begin_marker("hypercall")));
        assert!(text.trim_end().ends_with(&end_marker("hypercall")));
        assert!(text.contains("cargo xtask bench hypercall"));
        assert!(text.contains("| 812 |") && text.contains("| 640 |") && text.contains("| 365 |"));
        assert!(text.contains("14103 VMCALLs") && text.contains("| 243 |"));
        assert!(text.contains("within the goal of 1,000"));
        assert!(text.contains("| 600 | the floor under any ioctl |"));
        assert!(text.contains("600 are Linux's ioctl path"));
        assert!(text.contains("2,900"));
        assert!(!text.contains("**Note:**"));
        let failed = hypercall_section(&scenario, "6.1.0-56-amd64", &ticks, 120.0, false);
        assert!(failed.contains("**Note:** the `hypercall-abuse` scenario failed"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn the_bare_run_mirrors_the_scenario() {
        let dom0 = scenario::load(&scenario::dir().join(format!("{SCENARIO}.toml"))).unwrap();
        let bare = bare_scenario(&dom0, dom0_mem_mib(&dom0.cmdline).unwrap()).unwrap();
        assert_eq!(bare.cpus, dom0.cpus);
        assert_eq!(bare.memory_mib, 512);
        assert!(bare.pass.iter().any(|p| p.text == UPTIME));
    }
}
