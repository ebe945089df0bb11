//! `cargo xtask bench domu-create`: how long a Linux guest domain takes to
//! create, boot and destroy, under Bochs, in emulated seconds.
//!
//! 1. The `domu-churn` scenario as `cargo xtask test` runs it: in dom0,
//!    `oxen-bench time` (`tools/bench/oxen-bench.c`) times, in TSC ticks,
//!    `xl-rs create -e /etc/oxen/linux.cfg` (Debian's vmlinux through PVH,
//!    256 MiB, one vCPU, the guest initramfs `init-domu-guest.sh`), then
//!    `xl-rs console` until the guest's marker (its first userspace line
//!    with its uptime), then `xl-rs destroy`. dom0's TSC is Bochs' TSC,
//!    which advances at `ips`, so ticks / ips are emulated seconds.
//! 2. The same kernel bare: Debian's bzImage of the same package, the same
//!    guest initramfs and arguments, GRUB on a Bochs machine with one CPU
//!    and 256 MiB (`tsc_early_khz` as in `bench dom0-boot`).
//!
//! Compared: the guest kernel's own clock from its start to userspace
//! (`OXEN-DOMU-LINUX: uptime: S, tsc-mhz: M`, normalized to emulated
//! seconds as in `bench dom0-boot`), as a domU and bare. The time from
//! `xl-rs create`'s start to the marker is the create time plus the console
//! wait (the fork between the two is not counted).

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::assets::{NamedAsset, Resolver};
use crate::bench::{
    RESULTS, begin_marker, capture, emulated_seconds, end_marker, first_line, host_cpu, revision,
    write_section,
};
use crate::bench_exits::{DomainTime, domain_time};
use crate::emulator::BOCHS_IPS;
use crate::iso;
use crate::scenario::{self, EmulatorChoice, End, Scenario};
use crate::test::{Verdict, run_scenario};
use crate::watch::Pattern;
use crate::{build, deps, target_dir, workspace_root};

/// The scenario measured under the hypervisor.
const SCENARIO: &str = "domu-churn";

/// The guest's marker: its kernel's uptime at userspace and the TSC
/// frequency it believes.
const UPTIME: &str =
    r"OXEN-DOMU-LINUX: uptime: ([0-9]+(?:\.[0-9]+)?), tsc-mhz: ([0-9]+(?:\.[0-9]+)?)";

/// The goals for a 256 MiB domU (the issue), in emulated seconds.
const CREATE_GOAL_S: f64 = 1.0;
const DESTROY_GOAL_S: f64 = 0.1;
/// The domU's boot time over the bare kernel's (issue 10).
const RATIO_GOAL: f64 = 1.10;
/// What a production toolstack takes under the same emulator (the issue).
const PRODUCTION_CREATE_S: f64 = 6.0;
const PRODUCTION_DESTROY_S: f64 = 1.2;

/// What the domu-churn run printed.
#[derive(Debug, Clone, PartialEq)]
struct Timings {
    create_ticks: u64,
    marker_ticks: u64,
    destroy_ticks: u64,
    /// The guest kernel's uptime at userspace and its TSC MHz.
    guest: Option<(f64, f64)>,
}

/// `OXEN-BENCH: LABEL-ticks: N exit 0` of `oxen-bench time`.
fn ticks(text: &str, label: &str) -> Option<u64> {
    capture(text, &format!(r"OXEN-BENCH: {label}-ticks: (\d+) exit 0"))?
        .parse()
        .ok()
}

/// The guest's uptime marker: (uptime s, TSC MHz).
fn guest_uptime(text: &str) -> Option<(f64, f64)> {
    let re = regex::Regex::new(UPTIME).ok()?;
    let c = re.captures(text)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

fn timings(text: &str) -> Option<Timings> {
    Some(Timings {
        create_ticks: ticks(text, "create")?,
        marker_ticks: ticks(text, "marker")?,
        destroy_ticks: ticks(text, "destroy")?,
        guest: guest_uptime(text),
    })
}

/// TSC ticks of dom0 (Bochs' TSC) in emulated seconds.
fn seconds(ticks: u64) -> f64 {
    ticks as f64 / BOCHS_IPS as f64
}

/// A guest uptime in emulated seconds.
fn guest_emulated_s((uptime_s, mhz): (f64, f64)) -> f64 {
    emulated_seconds(uptime_s, (mhz * 1000.0).round() as u64)
}

pub fn domu_create() -> Result<bool> {
    let churn = scenario::load(&scenario::dir().join(format!("{SCENARIO}.toml")))?;
    if churn.emulator != EmulatorChoice::Bochs {
        bail!("the {SCENARIO} scenario no longer runs under Bochs: adapt the bench");
    }
    deps::ensure_all(&[deps::ISO, deps::BOCHS, deps::ASSETS])?;
    let hypervisor = build::build(false)?;
    let root = workspace_root();
    let mut resolver = Resolver::new(&root);
    let spec = churn.iso_spec(&mut resolver)?;
    let bzimage = resolver.resolve(NamedAsset::Dom0Bzimage)?;
    let guest_initramfs = crate::assets::domu_guest_initramfs(&root)?;
    let dir = target_dir().join("bench");

    println!(
        "bench domu-create 1/2: the {SCENARIO} scenario (create, boot, destroy timed in dom0)"
    );
    let started = Instant::now();
    let image = iso::make_iso(&hypervisor.path, &spec, "bench-domu-churn")?;
    let passed = run_scenario(&churn, image, &dir)? == Verdict::Pass;
    let under_wall = started.elapsed().as_secs_f64();
    let log = dir.join(format!("{}.log", churn.name));
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let t = timings(&String::from_utf8_lossy(&text)).with_context(|| {
        format!(
            "no `OXEN-BENCH: create/marker/destroy-ticks` lines in {}",
            log.display()
        )
    })?;
    if !passed {
        eprintln!(
            "bench domu-create: warning: the {SCENARIO} scenario failed after the timed cycle \
             (serial log {}); recording the numbers with a note",
            log.display()
        );
    }

    println!("bench domu-create 2/2: the same kernel and guest initramfs bare");
    let bare = bare_scenario()?;
    let started = Instant::now();
    let args = format!(
        "console=ttyS0,115200 loglevel=4 tsc_early_khz={}",
        BOCHS_IPS / 1000
    );
    let image = iso::make_linux_iso(&bzimage, &args, &guest_initramfs, "bench-bare-domu")?;
    let bare_passed = run_scenario(&bare, image, &dir)? == Verdict::Pass;
    let bare_wall = started.elapsed().as_secs_f64();
    let bare_log = dir.join(format!("{}.log", bare.name));
    let bare_text =
        std::fs::read(&bare_log).with_context(|| format!("reading {}", bare_log.display()))?;
    let bare_uptime = guest_uptime(&String::from_utf8_lossy(&bare_text))
        .filter(|_| bare_passed)
        .with_context(|| {
            format!(
                "the bare run printed no guest uptime (log {})",
                bare_log.display()
            )
        })?;

    let (create, marker, destroy) = (
        seconds(t.create_ticks),
        seconds(t.create_ticks + t.marker_ticks),
        seconds(t.destroy_ticks),
    );
    let domu_boot = t.guest.map(guest_emulated_s);
    let bare_boot = guest_emulated_s(bare_uptime);
    println!(
        "\nbench domu-create: create returned after {create:.2} emulated s (goal {CREATE_GOAL_S} s), \
         the guest's marker {marker:.2} s after create started, destroy {destroy:.3} s (goal \
         {DESTROY_GOAL_S} s); the guest kernel reached userspace after {} emulated s as a domU, \
         {bare_boot:.2} s bare (wall {under_wall:.0} s and {bare_wall:.0} s)",
        domu_boot.map_or("?".to_owned(), |s| format!("{s:.2}"))
    );
    let life = domain_time(&String::from_utf8_lossy(&text), "linux");
    let section = section(&t, domu_boot, bare_boot, passed, life.as_ref());
    let path = root.join(RESULTS);
    write_section(&path, &section, "domu-create")?;
    println!("results written to {}", path.display());
    Ok(passed)
}

/// Bochs with one CPU and 256 MiB booting the guest kernel bare; done when
/// its marker is seen (the guest then prints a heartbeat forever).
fn bare_scenario() -> Result<Scenario> {
    let pass = ["OXEN-DOMU-LINUX: userspace up", UPTIME];
    let fail = ["Kernel panic", "BUG:", "Oops"];
    Ok(Scenario {
        name: "bare-domu-linux".to_owned(),
        description: "Debian's bzImage with the guest initramfs booted by GRUB without the hypervisor, 1 CPU, 256 MiB (the domU's share)".to_owned(),
        emulator: EmulatorChoice::Bochs,
        cpus: 1,
        memory_mib: 256,
        cmdline: String::new(),
        modules: Vec::new(),
        timeout: std::time::Duration::from_secs(600),
        pass: pass.iter().map(|p| Pattern::new(p)).collect::<Result<_>>()?,
        fail: fail.iter().map(|p| Pattern::new(p)).collect::<Result<_>>()?,
        end: End::Pattern,
        inputs: Vec::new(),
        wip: None,
    })
}

fn section(
    t: &Timings,
    domu_boot: Option<f64>,
    bare_boot: f64,
    passed: bool,
    life: Option<&DomainTime>,
) -> String {
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let (create, marker, destroy) = (
        seconds(t.create_ticks),
        seconds(t.create_ticks + t.marker_ticks),
        seconds(t.destroy_ticks),
    );
    let verdict = |value: f64, goal: f64| if value <= goal { "met" } else { "**not met**" };
    let mut s = String::new();
    writeln!(s, "{}", begin_marker("domu-create")).unwrap();
    writeln!(s, "## Creating, booting and destroying a Linux domU\n").unwrap();
    writeln!(s, "```sh\ncargo xtask bench domu-create\n```\n").unwrap();
    writeln!(
        s,
        "**Measured:** the first cycle of the `{SCENARIO}` scenario \
         (`tests/qemu/initramfs/domu-churn.sh`): in dom0, `oxen-bench time` \
         (`tools/bench/oxen-bench.c`) reads the TSC before forking each command \
         and after it exits: `xl-rs create -e /etc/oxen/linux.cfg` (Debian's \
         vmlinux through its PVH entry, 256 MiB, one vCPU, the guest initramfs \
         `init-domu-guest.sh`), then `xl-rs console` until the guest's first \
         userspace marker, then `xl-rs destroy`. dom0's TSC is Bochs' TSC, \
         which advances at `ips` = {BOCHS_IPS} per emulated second. The guest \
         kernel's own start-to-userspace time (its `/proc/uptime` at `/init`, \
         normalized by the TSC frequency it believes, as in `bench dom0-boot`) \
         is compared with the same kernel (the bzImage of the same package), \
         the same initramfs and arguments booted bare by GRUB on one CPU with \
         256 MiB.\n"
    )
    .unwrap();
    writeln!(s, "| | emulated s | goal | production toolstack |").unwrap();
    writeln!(s, "|---|---:|---|---:|").unwrap();
    writeln!(
        s,
        "| `xl-rs create` returns | {create:.2} | <= {CREATE_GOAL_S} s: {} | ~{PRODUCTION_CREATE_S} |",
        verdict(create, CREATE_GOAL_S)
    )
    .unwrap();
    writeln!(
        s,
        "| create's start to the guest's marker | {marker:.2} | | |"
    )
    .unwrap();
    writeln!(
        s,
        "| `xl-rs destroy` returns | {destroy:.3} | <= {DESTROY_GOAL_S} s: {} | ~{PRODUCTION_DESTROY_S} |",
        verdict(destroy, DESTROY_GOAL_S)
    )
    .unwrap();
    let ratio_value = domu_boot.map(|d| d / bare_boot);
    let ratio = ratio_value.map_or("?".to_owned(), |r| {
        format!(
            "ratio {r:.2}x, goal <= {RATIO_GOAL:.2}: {}",
            verdict(r, RATIO_GOAL)
        )
    });
    writeln!(
        s,
        "| guest kernel start to userspace, as a domU | {} | | |",
        domu_boot.map_or("?".to_owned(), |d| format!("{d:.2}"))
    )
    .unwrap();
    writeln!(s, "| the same kernel bare | {bare_boot:.2} | {ratio} | |\n").unwrap();
    writeln!(
        s,
        "The domU's vCPU shares a CPU with one of dom0's two vCPUs. dom0 idles in HLT (no \
         guest sees MONITOR/MWAIT, docs/architecture.md, \"Idle\"), so while dom0 waits on \
         the console the domU's vCPU has that CPU to itself; what it still pays is its VM \
         exits (below). The bare side varies between runs (see the caveat under `bench \
         dom0-boot`), so a ratio a little below 1 is noise, not a speed-up.\n"
    )
    .unwrap();
    if let Some(life) = life {
        writeln!(s, "{}\n", where_time_went(life)).unwrap();
    }
    writeln!(
        s,
        "TSC ticks: create {}, console to the marker {}, destroy {}.{}\n",
        t.create_ticks,
        t.marker_ticks,
        t.destroy_ticks,
        if passed {
            ""
        } else {
            " **The scenario failed after the timed cycle** (see its log)."
        }
    )
    .unwrap();
    writeln!(s, "Measured {date} at {} on {}.", revision(), host_cpu()).unwrap();
    writeln!(s, "{}", end_marker("domu-create")).unwrap();
    s
}

/// The first cycle's domU, from the hypervisor's log: its share of the
/// time in guest mode and its most frequent exits per emulated second.
fn where_time_went(life: &DomainTime) -> String {
    let per_s = life.lifetime_s.max(1e-9);
    let exits: Vec<String> = life
        .exits
        .iter()
        .take(6)
        .map(|e| {
            format!(
                "{} {:.0}/s ({} ticks each)",
                e.name,
                e.count as f64 / per_s,
                e.average_ticks
            )
        })
        .collect();
    let total: u64 = life.exits.iter().map(|e| e.count).sum();
    format!(
        "Where the first cycle's domU spent its life (from its creation to its destroy, \
         {:.1} emulated s, as the hypervisor logged it): {:.1} s in guest mode ({:.0} % of \
         one CPU); {:.0} VM exits per emulated second, most frequent: {}.",
        life.lifetime_s,
        life.guest_s,
        100.0 * life.guest_s / per_s,
        total as f64 / per_s,
        exits.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "OXEN-BENCH: create-ticks: 64000000 exit 0\r\n\
        marker| OXEN-DOMU-LINUX: userspace up\r\n\
        marker| OXEN-DOMU-LINUX: uptime: 2.50, tsc-mhz: 64.000\r\n\
        OXEN-BENCH: marker-ticks: 128000000 exit 0\n\
        OXEN-BENCH: destroy-ticks: 3200000 exit 0\n";

    #[test]
    fn reads_the_timed_cycle() {
        let t = timings(LOG).unwrap();
        assert_eq!(
            (t.create_ticks, t.marker_ticks, t.destroy_ticks),
            (64_000_000, 128_000_000, 3_200_000)
        );
        assert_eq!(t.guest, Some((2.5, 64.0)));
        assert!((seconds(t.create_ticks) - 1.0).abs() < 1e-9);
        assert!((guest_emulated_s(t.guest.unwrap()) - 2.5).abs() < 1e-9);
    }

    #[test]
    fn a_failed_command_is_not_a_timing() {
        assert_eq!(
            timings(&LOG.replace(
                "destroy-ticks: 3200000 exit 0",
                "destroy-ticks: 3200000 exit 1"
            )),
            None
        );
    }

    #[test]
    fn the_section_says_whether_goals_are_met() {
        let t = timings(LOG).unwrap();
        let life = DomainTime {
            lifetime_s: 50.0,
            guest_s: 40.0,
            exits: vec![crate::bench_exits::ReasonTotal {
                reason: 1,
                name: "external interrupt".to_owned(),
                count: 5000,
                average_ticks: 120,
            }],
        };
        let s = section(&t, Some(2.5), 2.0, true, Some(&life));
        assert!(s.contains("ratio 1.25x, goal <= 1.10: **not met**"), "{s}");
        assert!(s.contains("40.0 s in guest mode (80 % of one CPU)"), "{s}");
        assert!(
            s.contains("external interrupt 100/s (120 ticks each)"),
            "{s}"
        );
        assert!(
            s.contains("| `xl-rs create` returns | 1.00 | <= 1 s: met"),
            "{s}"
        );
        assert!(
            s.contains("| `xl-rs destroy` returns | 0.050 | <= 0.1 s: met"),
            "{s}"
        );
        assert!(s.contains("ratio 1.25x"), "{s}");
        assert!(s.starts_with(&begin_marker("domu-create")));
    }
}
