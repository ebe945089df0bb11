//! `cargo xtask demo`: install what is missing, build, boot the hypervisor in
//! the best emulator with 2 CPUs, show its console, and sum up what it showed.

use std::time::Duration;

use anyhow::Result;
use regex::Regex;

use crate::emulator::{Emulator, EmulatorArg, Machine, Outcome};
use crate::iso::{self, IsoSpec, Module};
use crate::run::{boot_on_terminal, describe};
use crate::{build, deps, target_dir};

/// The hypervisor's command line in the demo.
const CMDLINE: &str = "loglvl=info on_exit=poweroff";

pub fn demo(timeout: u64) -> Result<bool> {
    let emulator = EmulatorArg::Best.resolve();
    deps::ensure_all(&[deps::ISO, emulator.packages()])?;
    let hypervisor = build::build(false)?;
    let spec = IsoSpec {
        cmdline: CMDLINE.to_owned(),
        modules: dom0_modules()?,
    };
    let machine = Machine {
        emulator,
        cpus: 2,
        memory_mib: 1024,
        iso: iso::make_iso(&hypervisor.path, &spec, "demo")?,
        dir: target_dir().join("demo"),
        name: "demo".to_owned(),
    };
    let outcome = boot_on_terminal(&machine, Some(Duration::from_secs(timeout)))?;
    let log = std::fs::read(machine.serial_log()).unwrap_or_default();
    let items = summarize(&String::from_utf8_lossy(&log), &outcome);
    let ending = match outcome {
        // Bochs ends an ACPI power-off with status 1 (TESTING-FACTS).
        Outcome::Exited(_) if emulator == Emulator::Bochs => "Bochs exited".to_owned(),
        _ => describe(&outcome),
    };
    println!("\n=== demo summary ({}; {ending})", emulator.name());
    for (shown, text) in &items {
        println!("  [{}] {text}", if *shown { "x" } else { " " });
    }
    println!("  serial log: {}", machine.serial_log().display());
    Ok(items.iter().all(|(shown, _)| *shown))
}

/// The seam for dom0: today the demo boots the hypervisor alone. Later this
/// fetches Debian's kernel (into `tests/qemu/cache/`) and returns it, with its
/// initrd, as multiboot2 modules with dom0's command line.
fn dom0_modules() -> Result<Vec<Module>> {
    Ok(Vec::new())
}

/// What the serial log showed, as (shown?, description) items.
fn summarize(log: &str, outcome: &Outcome) -> Vec<(bool, String)> {
    let find = |pattern: &str| {
        Regex::new(pattern)
            .ok()
            .and_then(|regex| regex.find(log).map(|m| m.as_str().to_owned()))
    };
    let count = |pattern: &str| Regex::new(pattern).map_or(0, |regex| regex.find_iter(log).count());
    let mut items = Vec::new();

    let banner = find(r"Oxen hypervisor v\d+\.\d+\.\d+\S*");
    items.push((
        banner.is_some(),
        format!(
            "banner: {}",
            banner.unwrap_or_else(|| "not shown".to_owned())
        ),
    ));

    let map = log.contains("memory map (multiboot2):");
    let usable = count(r"(?m)^.*\busable\b.*$");
    items.push((
        map && usable > 0,
        format!(
            "memory map: {}",
            if map {
                format!("{usable} usable range(s)")
            } else {
                "not shown".to_owned()
            }
        ),
    ));

    let vmx = find(r"IA32_VMX_BASIC = 0x[0-9a-f]+");
    let features: Vec<String> =
        Regex::new(r"\b([A-Za-z][A-Za-z0-9./-]*(?: [A-Za-z0-9./-]+)*): (yes|no)\b")
            .map(|regex| {
                regex
                    .captures_iter(log)
                    .map(|c| format!("{} {}", c[1].trim(), &c[2]))
                    .collect()
            })
            .unwrap_or_default();
    let vmx_text = match &vmx {
        Some(basic) => format!("VMX capabilities ({basic}): {}", features.join(", ")),
        None => "VMX capabilities: not shown".to_owned(),
    };
    items.push((vmx.is_some(), vmx_text));

    let cpus = count(r"cpu\d+ .*entered VMX root operation");
    let all = find(r"all \d+ CPUs in VMX root operation");
    let cpu_text = all.unwrap_or_else(|| format!("{cpus} CPU(s) reported VMX root operation"));
    items.push((cpus >= 2, format!("CPUs: {cpu_text}")));

    let problems = count(r"PANIC|EXCEPTION|FATAL");
    items.push((
        problems == 0,
        format!("problems: {problems} PANIC/EXCEPTION/FATAL line(s)"),
    ));

    let off = log.contains("powering off") && matches!(outcome, Outcome::Exited(_));
    items.push((
        off,
        format!(
            "end: {}",
            if off {
                "clean power-off"
            } else {
                "no power-off seen"
            }
        ),
    ));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn sums_up_a_good_boot() {
        let log = "[ 0.1] cpu0 INFO  Oxen hypervisor v0.1.0\n\
                   [ 0.1] cpu0 INFO  memory map (multiboot2):\n\
                   [ 0.1] cpu0 INFO    0x0-0x9fc00 usable\n\
                   [ 0.2] cpu0 INFO  VMX capabilities (IA32_VMX_BASIC = 0xda040000000004)\n\
                   [ 0.2] cpu0 INFO    EPT: yes (4K 2M 1G)  VPID: yes\n\
                   [ 0.2] cpu0 INFO    region 4096 bytes, true controls: yes\n\
                   [ 0.3] cpu0 INFO  entered VMX root operation\n\
                   [ 0.3] cpu1 INFO  entered VMX root operation\n\
                   [ 0.3] cpu0 INFO  all 2 CPUs in VMX root operation\n\
                   [ 0.4] cpu0 INFO  powering off\n";
        let items = summarize(log, &Outcome::Exited(ExitStatus::from_raw(256)));
        assert!(items.iter().all(|(shown, _)| *shown), "{items:?}");
        assert!(items[2].1.contains("EPT yes"), "{}", items[2].1);
        assert!(
            items[2]
                .1
                .ends_with(": EPT yes, VPID yes, true controls yes"),
            "{}",
            items[2].1
        );
    }

    #[test]
    fn notices_what_is_missing() {
        let items = summarize("garbage\n", &Outcome::TimedOut);
        assert!(!items[0].0 && !items[1].0 && !items[2].0 && !items[3].0 && !items[5].0);
    }
}
