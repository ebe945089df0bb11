//! `cargo xtask bench dom0-boot`: how much slower Debian's kernel reaches
//! userspace as dom0 under the hypervisor than on the bare (emulated)
//! machine, both under Bochs, and the results written to
//! `docs/benchmarks.md`.
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
use crate::test::run_scenario;
use crate::watch::Pattern;
use crate::{build, deps, target_dir, workspace_root};

/// What `cargo xtask bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    /// dom0 (Debian's kernel) to userspace under the hypervisor vs bare.
    Dom0Boot,
}

/// The scenario measured under the hypervisor.
const SCENARIO: &str = "dom0-bzimage";

/// Where the results go, relative to the workspace root.
const RESULTS: &str = "docs/benchmarks.md";

/// The uptime marker of the dom0-boot initramfs.
const UPTIME: &str = r"OXEN-DOM0: uptime: ([0-9]+(?:\.[0-9]+)?)";

pub fn bench(which: Bench) -> Result<bool> {
    match which {
        Bench::Dom0Boot => dom0_boot(),
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
fn emulated_seconds(uptime_s: f64, tsc_khz: u64) -> f64 {
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
    let under = run_scenario(&dom0, image, &dir)?;
    let under = measure(&dir.join(format!("{}.log", dom0.name)), started, under)?;

    println!("bench {SCENARIO} 2/2: the same kernel and initramfs without the hypervisor");
    let bare = bare_scenario(&dom0, dom0_mib)?;
    let started = Instant::now();
    // The bare kernel would believe Bochs' multi-GHz CPUID frequency while the
    // TSC runs at the emulated instruction rate, stretching every wait it
    // times; tell it the real rate, as the hypervisor tells dom0.
    let bare_args = format!("{kernel_args} tsc_early_khz={}", BOCHS_IPS / 1000);
    let image = iso::make_linux_iso(&bzimage, &bare_args, &initramfs, "bench-bare-linux")?;
    let passed = run_scenario(&bare, image, &dir)?;
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
    write_section(&path, &section)?;
    println!("results written to {}", path.display());
    Ok(true)
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

fn capture(text: &str, pattern: &str) -> Option<String> {
    Regex::new(pattern)
        .ok()?
        .captures(text)
        .map(|c| c[1].to_owned())
}

/// The first line of a command's output, or `?`.
fn first_line(program: &str, args: &[&str]) -> String {
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
fn revision() -> String {
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

fn host_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

const BEGIN: &str =
    "<!-- cargo xtask bench dom0-boot: begin (generated; rerun the command to update) -->";
const END: &str = "<!-- cargo xtask bench dom0-boot: end -->";

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
    writeln!(text, "{BEGIN}").unwrap();
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
    writeln!(text, "{END}").unwrap();
    text
}

/// Replaces the generated section of `path` (or appends it; creates the
/// file with a heading when missing).
fn write_section(path: &Path, section: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmarks\n\nNumbers measured with `cargo xtask bench`. Each section \
         below is generated by the command it shows; rerun it to update.\n\n"
            .to_owned()
    });
    std::fs::write(path, replace_section(&old, section))
        .with_context(|| format!("writing {}", path.display()))
}

fn replace_section(old: &str, section: &str) -> String {
    match (old.find(BEGIN), old.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            let end = end + END.len();
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

    #[test]
    fn the_section_is_replaced_in_place() {
        let first = format!("{BEGIN}\nold\n{END}\n");
        let doc = format!("# Benchmarks\n\nintro\n\n{first}\n## other\n");
        let new = format!("{BEGIN}\nnew\n{END}\n");
        let replaced = replace_section(&doc, &new);
        assert_eq!(
            replaced,
            format!("# Benchmarks\n\nintro\n\n{new}\n## other\n")
        );
        assert_eq!(replace_section("# B\n", &new), format!("# B\n\n{new}"));
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
