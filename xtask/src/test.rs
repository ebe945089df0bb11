//! `cargo xtask test`: host tests and lints, then the emulator scenarios,
//! then the summary line `N passed, N failed` (the host tests count as one
//! item, `host-tests`, the lints as another, `lints`; each scenario as one
//! more).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::assets::Resolver;
use crate::emulator::{self, Emulator, Machine, Outcome};
use crate::iso::IsoSpec;
use crate::scenario::{self, End, Scenario};
use crate::watch::{EscapeFilter, Event, Matcher, Rejoiner};
use crate::{build, deps, iso, lints, signal, target_dir, workspace_root};

/// The name the host tests go by in the results.
const HOST_TESTS: &str = "host-tests";

/// How many serial lines a failure report shows.
const TAIL_LINES: usize = 40;

/// Runs what was asked and prints the summary; `Ok(false)` if anything failed.
pub fn test(names: &[String], host_only: bool, jobs: Option<usize>) -> Result<bool> {
    let all = scenario::load_all(&scenario::dir())?;
    for name in names {
        if name != HOST_TESTS && !all.iter().any(|scenario| &scenario.name == name) {
            let known: Vec<&str> = all.iter().map(|scenario| scenario.name.as_str()).collect();
            bail!(
                "no scenario `{name}`; there are: {HOST_TESTS} {}",
                known.join(" ")
            );
        }
    }
    let run_host_tests =
        host_only || names.is_empty() || names.iter().any(|name| name == HOST_TESTS);
    let selected: Vec<&Scenario> = if host_only {
        Vec::new()
    } else {
        all.iter()
            .filter(|scenario| {
                if names.is_empty() {
                    if let Some(why) = &scenario.wip {
                        println!(
                            "scenario {}: not run (work in progress: {why}; run it by name)",
                            scenario.name
                        );
                        return false;
                    }
                    return true;
                }
                names.contains(&scenario.name)
            })
            .collect()
    };

    let mut results = Vec::new();
    if run_host_tests {
        results.push(host_tests()?);
        results.push(lints::lints()?);
    }
    if !selected.is_empty() && !signal::interrupted() {
        let dir = target_dir().join("scenarios");
        results.extend(scenarios(&selected, lanes(jobs), &dir)?);
    }
    let passed = results.iter().filter(|(_, ok)| *ok).count();
    let failed = results.len() - passed;
    if failed > 0 {
        let names: Vec<&str> = results
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name.as_str())
            .collect();
        println!("failed: {}", names.join(" "));
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// `cargo test --workspace` on the host; `--no-fail-fast` so that one failing
/// crate does not hide the results of the others.
fn host_tests() -> Result<(String, bool)> {
    println!("{HOST_TESTS}: cargo test --workspace --no-fail-fast");
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .env("RUSTUP_AUTO_INSTALL", "1")
        .args(["test", "--workspace", "--no-fail-fast"])
        .status()
        .context("cannot run cargo test")?;
    let seconds = started.elapsed().as_secs_f64();
    if status.success() {
        println!("{HOST_TESTS}: PASS ({seconds:.1} s)");
    } else {
        println!("{HOST_TESTS}: FAIL: cargo test failed ({status}) ({seconds:.1} s)");
    }
    Ok((HOST_TESTS.to_owned(), status.success()))
}

/// How many emulators run at once: `--jobs`, or one per host CPU (each Bochs
/// is one host thread, and Bochs runs on emulated time, `clock: sync=none`,
/// so a busy host slows a scenario down but does not change what it sees).
pub fn lanes(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
    .max(1)
}

/// Builds once, makes one ISO per distinct command line and module set, and
/// runs the scenarios, up to `lanes` at a time (the longest first, by their
/// time limits), each once: a run that times out fails (no retry; its report
/// holds the vCPUs' state, see `emulator::supervise`). Logs go to
/// `dir/NAME.log`; results come back in the order of `selected`.
pub fn scenarios(selected: &[&Scenario], lanes: usize, dir: &Path) -> Result<Vec<(String, bool)>> {
    let mut packages = vec![deps::ISO];
    packages.extend(
        selected
            .iter()
            .map(|scenario| scenario.emulator.resolve().packages()),
    );
    let needs_assets = selected
        .iter()
        .any(|scenario| !scenario.assets().is_empty());
    if needs_assets {
        packages.push(deps::ASSETS);
    }
    deps::ensure_all(&packages)?;

    let failed_all = |reason: &str| {
        selected
            .iter()
            .map(|scenario| {
                println!("scenario {}: FAIL: {reason}", scenario.name);
                (scenario.name.clone(), false)
            })
            .collect()
    };
    let hypervisor = match build::build(false) {
        Ok(hypervisor) => hypervisor,
        Err(error) => {
            eprintln!("error: {error:#}");
            return Ok(failed_all("the hypervisor did not build"));
        }
    };

    // The generated assets (`@dom0-vmlinux`, ...) are made before any ISO, each
    // once, and every ISO before any emulator starts; a scenario whose assets
    // or ISO cannot be made fails, the others run.
    let mut resolver = Resolver::new(&workspace_root());
    let mut isos: HashMap<IsoSpec, std::result::Result<PathBuf, String>> = HashMap::new();
    let mut images = Vec::new();
    for scenario in selected {
        let image = scenario
            .iso_spec(&mut resolver)
            .map_err(|error| format!("{error:#}"))
            .and_then(|spec| {
                isos.entry(spec.clone())
                    .or_insert_with(|| {
                        iso::make_iso(&hypervisor.path, &spec, &scenario.name)
                            .map_err(|error| format!("cannot make its ISO: {error:#}"))
                    })
                    .clone()
            });
        images.push(image);
    }

    let order = longest_first(selected);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<bool>>> = selected.iter().map(|_| Mutex::new(None)).collect();
    let lanes = lanes.min(selected.len()).max(1);
    if lanes > 1 {
        println!("scenarios: {} to run, {lanes} at a time", selected.len());
    }
    let worker = || -> Result<()> {
        loop {
            let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(());
            };
            if signal::interrupted() {
                continue;
            }
            let scenario = selected[index];
            let passed = match &images[index] {
                Ok(image) => run_scenario(scenario, image.clone(), dir)? == Verdict::Pass,
                Err(error) => {
                    println!("scenario {}: FAIL: {error}", scenario.name);
                    false
                }
            };
            *results[index]
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(passed);
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..lanes).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Result<Vec<()>>>()
    })?;

    let mut finished = Vec::new();
    let mut not_run = 0;
    for (scenario, result) in selected.iter().zip(results) {
        match result.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(passed) => finished.push((scenario.name.clone(), passed)),
            None => not_run += 1,
        }
    }
    if not_run > 0 {
        println!("interrupted: {not_run} scenario(s) not run");
    }
    Ok(finished)
}

/// Indices of `selected`, the longest time limit first, so that the long
/// scenarios do not end up last in one lane while the other lanes idle.
fn longest_first(selected: &[&Scenario]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..selected.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(selected[index].timeout));
    order
}

/// Why the observer stopped a run that passed.
const ALL_SEEN: &str = "every pass pattern was seen";

/// How a scenario run ended (a timeout is a failure like any other: nothing
/// is retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every pass pattern, no fail pattern, the right ending.
    Pass,
    /// A fail pattern, a wrong ending, a missing marker at exit, or the
    /// time limit.
    Fail,
}

/// Boots one scenario from `iso`, its logs in `dir`, and judges its serial
/// log (`dir/NAME.log`).
pub fn run_scenario(scenario: &Scenario, iso: PathBuf, dir: &Path) -> Result<Verdict> {
    let emulator = scenario.emulator.resolve();
    let machine = Machine {
        emulator,
        cpus: scenario.cpus,
        memory_mib: scenario.memory_mib,
        iso,
        dir: dir.to_owned(),
        name: scenario.name.clone(),
        // Bochs' COM1 is a socket for every scenario, so that a timed-out
        // run can be asked for its vCPUs' state (see emulator::supervise).
        serial_socket: if emulator == Emulator::Bochs {
            Some(emulator::free_port()?)
        } else {
            None
        },
    };
    println!(
        "scenario {}: {} [{}, {} CPU(s), {} MiB, limit {} s]",
        scenario.name,
        scenario.description,
        emulator.name(),
        scenario.cpus,
        scenario.memory_mib,
        scenario.timeout.as_secs()
    );
    let mut rejoiner = Rejoiner::default();
    let mut matcher = Matcher::new(scenario.pass.clone(), scenario.fail.clone());
    let started = Instant::now();
    let outcome = emulator::supervise(
        &machine,
        Some(scenario.timeout),
        &scenario.inputs,
        |chunk| {
            for line in chunk.lines.iter().flat_map(|l| rejoiner.feed(l)) {
                for event in matcher.feed(&line) {
                    match event {
                        Event::Seen { index, .. } => {
                            let seconds = started.elapsed().as_secs_f64();
                            println!(
                                "  {}: {seconds:6.1} s  seen /{}/",
                                scenario.name,
                                matcher.pass_pattern(index)
                            );
                        }
                        Event::Failed { pattern, line } => {
                            return Some(format!("fail pattern /{pattern}/ seen: {line}"));
                        }
                    }
                }
            }
            (scenario.end == End::Pattern && matcher.done()).then(|| ALL_SEEN.to_owned())
        },
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let waiting = matcher.waiting_for().unwrap_or_default();
    let failure = match outcome {
        Outcome::Stopped(reason) if reason == ALL_SEEN => None,
        Outcome::Stopped(reason) => Some(reason),
        Outcome::Exited(_) if matcher.done() => None,
        Outcome::Exited(status) => Some(format!(
            "the emulator exited ({status}) before /{waiting}/ was seen"
        )),
        Outcome::TimedOut if matcher.done() => Some(format!(
            "every marker was seen but the emulator did not power off within {} s",
            scenario.timeout.as_secs()
        )),
        Outcome::TimedOut => Some(format!(
            "timed out after {} s waiting for /{waiting}/",
            scenario.timeout.as_secs()
        )),
        Outcome::Interrupted => Some("interrupted".to_owned()),
    };
    match failure {
        None => {
            println!("scenario {}: PASS ({seconds:.1} s)", scenario.name);
            Ok(Verdict::Pass)
        }
        Some(reason) => {
            // One print for the whole report, so that the lines of a
            // scenario running beside it do not cut into it.
            let mut report = format!(
                "scenario {}: FAIL: {reason} ({seconds:.1} s)\n",
                scenario.name
            );
            report += &tail("serial log", &machine.serial_log(), TAIL_LINES, |_| true);
            report += &tail("emulator log", &machine.emulator_log(), 10, worth_showing);
            if machine.output_log() != machine.emulator_log() {
                report += &tail("emulator output", &machine.output_log(), 5, |line| {
                    !line.trim().is_empty()
                });
            }
            print!("{report}");
            Ok(Verdict::Fail)
        }
    }
}

/// The last `count` lines of a log that `keep` accepts, or a line saying it
/// is missing. Escape sequences (GRUB's screen drawing) are dropped.
fn tail(what: &str, path: &Path, count: usize, keep: fn(&str) -> bool) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = EscapeFilter::default().apply(&bytes);
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text
                .lines()
                .map(|line| line.trim_end_matches('\r'))
                .filter(|line| keep(line))
                .collect();
            let shown = &lines[lines.len().saturating_sub(count)..];
            let mut out = format!(
                "  --- last {} lines of the {what} ({}):\n",
                shown.len(),
                path.display()
            );
            for line in shown {
                out += &format!("  | {line}\n");
            }
            out
        }
        Err(error) => format!("  --- no {what} at {}: {error}\n", path.display()),
    }
}

/// Bochs log lines worth showing: errors and panics (`00012345e[CPU0  ] ...`),
/// not the register dumps of its info level. Other logs are shown whole.
fn worth_showing(line: &str) -> bool {
    let level = line
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .chars()
        .next();
    let bochs_line = line.starts_with(|c: char| c.is_ascii_digit()) && line.contains('[');
    !bochs_line || matches!(level, Some('e' | 'p'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario_with_limit(name: &str, seconds: u64) -> Scenario {
        let text = format!(
            "description = \"d\"\nemulator = \"bochs\"\ncmdline = \"\"\n\
             timeout_s = {seconds}\npass = ['x']\nend = \"pattern\"\n"
        );
        scenario::parse(name, &text).expect("a valid scenario")
    }

    #[test]
    fn the_longest_time_limits_start_first() {
        let short = scenario_with_limit("short", 60);
        let long = scenario_with_limit("long", 900);
        let middle = scenario_with_limit("middle", 480);
        let also_long = scenario_with_limit("also-long", 900);
        let selected = [&short, &long, &middle, &also_long];
        // Equal limits keep their given order (a stable sort).
        assert_eq!(longest_first(&selected), vec![1, 3, 2, 0]);
    }

    #[test]
    fn lanes_default_to_the_host_cpus_and_are_never_zero() {
        assert_eq!(lanes(Some(3)), 3);
        assert_eq!(lanes(Some(0)), 1);
        assert!(lanes(None) >= 1);
    }

    #[test]
    fn bochs_errors_and_panics_are_shown_info_is_not() {
        assert!(worth_showing(
            "00316101880p[ACPI  ] >>PANIC<< ACPI control: soft power off"
        ));
        assert!(worth_showing("00000000000e[CPU0  ] something failed"));
        assert!(!worth_showing(
            "00316101880i[CPU1  ] | EIP=00000048 (00000048)"
        ));
        assert!(worth_showing(
            "qemu-system-x86_64: -cdrom x.iso: Could not open"
        ));
    }
}
