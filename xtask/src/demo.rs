//! `cargo xtask demo`: install what is missing, build, boot the hypervisor in
//! the best emulator with 2 CPUs and Debian's kernel as dom0, show the serial
//! console, and sum up what it showed: the hypervisor's banner, memory map,
//! VMX features and CPUs, then dom0's own report from its initramfs.
//!
//! The dom0 setup (command line, modules, CPUs, memory) is the one of the
//! `dom0-boot` scenario (`tests/qemu/scenarios/dom0-boot.toml`), so the demo
//! shows what CI checks. `--no-dom0` boots the hypervisor alone.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use regex::Regex;

use crate::assets::Resolver;
use crate::emulator::{Emulator, EmulatorArg, Machine, Outcome};
use crate::iso::{self, IsoSpec};
use crate::run::{boot_on_terminal, describe};
use crate::{build, deps, scenario, target_dir, workspace_root};

/// The hypervisor's command line when it boots alone.
const CMDLINE: &str = "loglvl=info on_exit=poweroff";

/// The scenario whose dom0 the demo boots.
const DOM0_SCENARIO: &str = "dom0-boot";

/// Lines that mean something went wrong, in the hypervisor or in dom0.
const PROBLEMS: &str = r"PANIC|EXCEPTION|FATAL|Kernel panic|BUG:|Oops|dom0 crashed";

pub fn demo(timeout: u64, with_dom0: bool) -> Result<bool> {
    let started = Instant::now();
    let emulator = EmulatorArg::Best.resolve();
    let dom0 = if with_dom0 {
        let path = scenario::dir().join(format!("{DOM0_SCENARIO}.toml"));
        Some(scenario::load(&path).context("the demo boots dom0 as this scenario does")?)
    } else {
        None
    };
    let mut packages = vec![deps::ISO, emulator.packages()];
    if dom0.is_some() {
        packages.push(deps::ASSETS);
    }
    deps::ensure_all(&packages)?;
    let hypervisor = build::build(false)?;

    // dom0's kernel and initramfs (fetched and built on first use, cached).
    let mut dom0_error = None;
    let (spec, cpus, memory_mib) = match &dom0 {
        Some(dom0) => match dom0.iso_spec(&mut Resolver::new(&workspace_root())) {
            Ok(spec) => (spec, dom0.cpus, dom0.memory_mib),
            Err(error) => {
                println!("demo: cannot prepare dom0 ({error:#}); booting the hypervisor alone");
                dom0_error = Some(format!("{error:#}"));
                (hypervisor_only(), 2, 1024)
            }
        },
        None => (hypervisor_only(), 2, 1024),
    };
    let booted_dom0 = !spec.modules.is_empty();
    let machine = Machine {
        emulator,
        cpus,
        memory_mib,
        iso: iso::make_iso(&hypervisor.path, &spec, "demo")?,
        dir: target_dir().join("demo"),
        name: "demo".to_owned(),
        serial_socket: None,
    };
    if booted_dom0 {
        println!(
            "demo: dom0 is Debian's kernel (vmlinux, PVH entry) with the dom0-boot initramfs; \
             hypervisor command line '{}'",
            spec.cmdline
        );
        if emulator == Emulator::Bochs {
            println!(
                "demo: under Bochs GRUB takes a while to load the 65 MB kernel, and dom0 about a minute to reach userspace"
            );
        }
    }
    let outcome = boot_on_terminal(&machine, Some(Duration::from_secs(timeout)))?;
    let log = std::fs::read(machine.serial_log()).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    let mut items = summarize(&log, &outcome, cpus);
    if booted_dom0 {
        items.extend(summarize_dom0(&log, cpus));
    } else if let Some(error) = dom0_error {
        items.push((false, format!("dom0: not booted: {error}")));
    }
    items.push(problems(&log));
    items.push(ending(&log, &outcome));
    let ending = match outcome {
        // Bochs ends an ACPI power-off with status 1 (TESTING-FACTS).
        Outcome::Exited(_) if emulator == Emulator::Bochs => "Bochs exited".to_owned(),
        _ => describe(&outcome),
    };
    println!(
        "\n=== demo summary ({}; {ending}; {:.0} s wall)",
        emulator.name(),
        started.elapsed().as_secs_f64()
    );
    for (shown, text) in &items {
        println!("  [{}] {text}", if *shown { "x" } else { " " });
    }
    println!("  serial log: {}", machine.serial_log().display());
    Ok(items.iter().all(|(shown, _)| *shown))
}

fn hypervisor_only() -> IsoSpec {
    IsoSpec {
        cmdline: CMDLINE.to_owned(),
        modules: Vec::new(),
    }
}

/// The first match of `pattern` in `log`, as its capture groups (0 = all).
fn captures(log: &str, pattern: &str) -> Option<Vec<String>> {
    let regex = Regex::new(pattern).ok()?;
    let found = regex.captures(log)?;
    Some(
        found
            .iter()
            .map(|group| group.map_or(String::new(), |m| m.as_str().to_owned()))
            .collect(),
    )
}

fn count(log: &str, pattern: &str) -> usize {
    Regex::new(pattern).map_or(0, |regex| regex.find_iter(log).count())
}

/// What the hypervisor showed of itself: banner, memory map, VMX, CPUs.
fn summarize(log: &str, _outcome: &Outcome, cpus: u32) -> Vec<(bool, String)> {
    let mut items = Vec::new();

    let banner = captures(log, r"Oxen hypervisor v\d+\.\d+\.\d+\S*").map(|c| c[0].clone());
    items.push((
        banner.is_some(),
        format!(
            "banner: {}",
            banner.unwrap_or_else(|| "not shown".to_owned())
        ),
    ));

    let map = log.contains("memory map (multiboot2):");
    let usable = count(log, r"(?m)^.*\busable\b.*$");
    let usable_kib: u64 = Regex::new(r"(?m)^.*\s(\d+) KiB usable\s*$")
        .map(|regex| {
            regex
                .captures_iter(log)
                .filter_map(|c| c[1].parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    items.push((
        map && usable > 0,
        format!(
            "memory map: {}",
            if map {
                format!("{usable} usable range(s), {} MiB", usable_kib / 1024)
            } else {
                "not shown".to_owned()
            }
        ),
    ));

    let vmx = captures(log, r"IA32_VMX_BASIC = 0x[0-9a-f]+").map(|c| c[0].clone());
    let vmx_text = match &vmx {
        Some(basic) => format!(
            "VMX capabilities ({basic}): {}",
            vmx_features(log).join(", ")
        ),
        None => "VMX capabilities: not shown".to_owned(),
    };
    items.push((vmx.is_some(), vmx_text));

    let in_root = count(log, r"cpu\d+ .*entered VMX root operation");
    let all = captures(log, r"all \d+ CPUs in VMX root operation").map(|c| c[0].clone());
    let cpu_text = all.unwrap_or_else(|| format!("{in_root} CPU(s) reported VMX root operation"));
    items.push((
        in_root >= cpus as usize,
        format!("CPUs: {cpu_text} ({cpus} emulated)"),
    ));
    items
}

/// `NAME: yes|no` features of the VMX report (the lines from `VMX
/// capabilities` up to the first `entered VMX root operation`).
fn vmx_features(log: &str) -> Vec<String> {
    let Some(start) = log.find("VMX capabilities") else {
        return Vec::new();
    };
    let report = &log[start..];
    let report = &report[..report
        .find("entered VMX root operation")
        .unwrap_or(report.len())];
    Regex::new(r"\b([A-Za-z][A-Za-z0-9./-]*(?: [A-Za-z0-9./-]+)*): (yes|no)\b")
        .map(|regex| {
            regex
                .captures_iter(report)
                .map(|c| format!("{} {}", c[1].trim(), &c[2]))
                .collect()
        })
        .unwrap_or_default()
}

/// What dom0 showed: its start, the `OXEN-DOM0:` markers of the dom0-boot
/// initramfs, and its power-off.
fn summarize_dom0(log: &str, cpus: u32) -> Vec<(bool, String)> {
    let mut items = Vec::new();
    let marker = |name: &str| {
        captures(log, &format!(r"OXEN-DOM0: {name}: ([^\r\n]*)")).map(|c| c[1].trim().to_owned())
    };

    let start = captures(
        log,
        r"dom0: starting (\d+) vCPU\(s\) at PVH entry (0x[0-9a-f]+)",
    );
    let ram = captures(log, r"dom0: (\d+ MiB) of RAM").map(|c| c[1].clone());
    items.push(match start {
        Some(c) => (
            c[1] == cpus.to_string(),
            format!(
                "dom0 start: {} vCPU(s) at the kernel's PVH entry {}, {} of RAM",
                c[1],
                c[2],
                ram.unwrap_or_else(|| "? MiB".to_owned())
            ),
        ),
        None => (false, "dom0 start: not shown".to_owned()),
    });

    let up = log.contains("OXEN-DOM0: userspace up");
    let uptime = marker("uptime");
    items.push((
        up,
        if up {
            format!(
                "dom0 userspace: up, {} s after its kernel started (dom0's /proc/uptime)",
                uptime.unwrap_or_else(|| "?".to_owned())
            )
        } else {
            "dom0 userspace: not reached".to_owned()
        },
    ));

    let online = marker("cpus online");
    items.push((
        online.as_deref() == Some(cpus.to_string().as_str()),
        format!(
            "dom0 CPUs online: {}",
            online.unwrap_or_else(|| "not shown".to_owned())
        ),
    ));

    let memtotal = marker("memtotal-kb");
    let kib = memtotal
        .as_deref()
        .and_then(|text| text.parse::<u64>().ok());
    items.push((
        kib.is_some_and(|kib| kib > 0),
        format!(
            "dom0 memory: {}",
            kib.map_or("not shown".to_owned(), |kib| format!(
                "MemTotal {kib} kB ({} MiB)",
                kib / 1024
            ))
        ),
    ));

    let flag = marker("hypervisor flag");
    let cpuid = marker("cpuid-hypervisor");
    items.push((
        flag.as_deref() == Some("yes")
            && cpuid
                .as_deref()
                .is_some_and(|text| text.starts_with("OxenOxenOxen")),
        format!(
            "dom0 sees the hypervisor: CPUID hypervisor flag {}, leaf 0x40000000 {}",
            flag.unwrap_or_else(|| "not shown".to_owned()),
            cpuid.unwrap_or_else(|| "not shown".to_owned())
        ),
    ));

    let s5 = log.contains("dom0 requested ACPI S5");
    let exits: Vec<String> = Regex::new(r"(cpu\d+): (\d+) exits")
        .map(|regex| {
            regex
                .captures_iter(log)
                .map(|c| format!("{} {}", &c[1], &c[2]))
                .collect()
        })
        .unwrap_or_default();
    items.push((
        s5 && log.contains("VM exit statistics"),
        if s5 {
            format!(
                "dom0 power-off: ACPI S5 requested; VM exits: {}",
                if exits.is_empty() {
                    "no statistics".to_owned()
                } else {
                    exits.join(", ")
                }
            )
        } else {
            "dom0 power-off: not requested".to_owned()
        },
    ));
    items
}

fn problems(log: &str) -> (bool, String) {
    let problems = count(log, PROBLEMS);
    (
        problems == 0,
        format!("problems: {problems} line(s) matching {PROBLEMS}"),
    )
}

fn ending(log: &str, outcome: &Outcome) -> (bool, String) {
    let off = log.contains("powering off") && matches!(outcome, Outcome::Exited(_));
    (
        off,
        format!(
            "end: {}",
            if off {
                "clean power-off"
            } else {
                "no power-off seen"
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    const HYPERVISOR: &str = "[ 0.1] cpu0 INFO  Oxen hypervisor v0.1.0 starting\n\
                   [ 0.1] cpu0 INFO  memory map (multiboot2):\n\
                   [ 0.1] cpu0 INFO    [0x000000000000 - 0x00000009f000) 636 KiB usable\n\
                   [ 0.1] cpu0 INFO    [0x000000100000 - 0x00003fff0000) 1047488 KiB usable\n\
                   [ 0.2] cpu0 INFO  VMX capabilities (IA32_VMX_BASIC = 0xda040000000004):\n\
                   [ 0.2] cpu0 INFO    VMCS revision 0x4, region 4096 bytes, write-back memory, true controls: yes\n\
                   [ 0.2] cpu0 INFO    EPT: yes (4-level walk yes, 2M pages yes)\n\
                   [ 0.2] cpu0 INFO    VPID: yes (INVVPID single/all yes/yes)\n\
                   [ 0.3] cpu0 INFO  entered VMX root operation\n\
                   [ 0.3] cpu1 INFO  entered VMX root operation\n\
                   [ 0.3] cpu0 INFO  all 2 CPUs in VMX root operation\n";

    const DOM0: &str = "[ 0.4] cpu0 INFO  dom0: 512 MiB of RAM in 3 ranges (512 MiB requested)\n\
                   [ 0.6] cpu0 INFO  dom0: starting 2 vCPU(s) at PVH entry 0x1000850\n\
                   OXEN-DOM0: userspace up\n\
                   OXEN-DOM0: cpus online: 2\n\
                   OXEN-DOM0: memtotal-kb: 466632\n\
                   OXEN-DOM0: hypervisor flag: yes\n\
                   OXEN-DOM0: uptime: 23.97\n\
                   OXEN-DOM0: cpuid-hypervisor: OxenOxenOxen (max leaf 0x40000010)\n\
                   [ 26.6] cpu0 INFO  dom0 requested ACPI S5 (power off)\n\
                   [ 26.6] cpu0 INFO  VM exit statistics (count, average handling ticks):\n\
                   [ 26.7] cpu0 INFO    cpu0: 13380 exits\n\
                   [ 27.7] cpu0 INFO    cpu1: 13685 exits\n\
                   [ 28.7] cpu0 INFO  powering off (ACPI S5)\n";

    fn everything(log: &str, outcome: &Outcome) -> Vec<(bool, String)> {
        let mut items = summarize(log, outcome, 2);
        items.extend(summarize_dom0(log, 2));
        items.push(problems(log));
        items.push(ending(log, outcome));
        items
    }

    #[test]
    fn sums_up_a_good_boot() {
        let log = format!("{HYPERVISOR}{DOM0}");
        let outcome = Outcome::Exited(ExitStatus::from_raw(256));
        let items = everything(&log, &outcome);
        assert!(items.iter().all(|(shown, _)| *shown), "{items:#?}");
        assert_eq!(items[1].1, "memory map: 2 usable range(s), 1023 MiB");
        assert!(
            items[2]
                .1
                .ends_with(": true controls yes, EPT yes, VPID yes"),
            "{}",
            items[2].1
        );
        assert!(items[5].1.contains("23.97 s"), "{}", items[5].1);
        assert!(items[8].1.contains("OxenOxenOxen"), "{}", items[8].1);
        assert!(
            items[9].1.ends_with("cpu0 13380, cpu1 13685"),
            "{}",
            items[9].1
        );
    }

    #[test]
    fn notices_what_is_missing() {
        let items = everything("garbage\n", &Outcome::TimedOut);
        assert!(
            items.iter().filter(|(shown, _)| !shown).count() >= 10,
            "{items:#?}"
        );
    }

    #[test]
    fn notices_a_dom0_that_sees_one_cpu() {
        let log = format!("{HYPERVISOR}{DOM0}").replace("cpus online: 2", "cpus online: 1");
        let items = summarize_dom0(&log, 2);
        assert!(!items[2].0, "{items:#?}");
        let log = format!("{HYPERVISOR}{DOM0}Kernel panic - not syncing\n");
        assert!(!problems(&log).0);
    }
}
