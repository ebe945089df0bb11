//! `cargo xtask soak NAME --runs N`: one scenario, many times, counted. For
//! finding rare hangs without slowing CI down (which runs each scenario
//! once, with no retry): every run has its own serial log
//! (`target/soak/NAME/NAME.K.log`), and a failed run's report, printed as it
//! ends, holds the vCPUs' state when it timed out.

use anyhow::{Result, bail};

use crate::scenario::{self, Scenario};
use crate::target_dir;
use crate::test::{lanes, scenarios};

/// Runs scenario `name` `runs` times, up to `jobs` at a time (default: one
/// per host CPU); prints each run's result and `N passed, N failed`.
pub fn soak(name: &str, runs: usize, jobs: Option<usize>) -> Result<bool> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let all = scenario::load_all(&scenario::dir())?;
    let Some(scenario) = all.iter().find(|scenario| scenario.name == name) else {
        let known: Vec<&str> = all.iter().map(|scenario| scenario.name.as_str()).collect();
        bail!("no scenario `{name}`; there are: {}", known.join(" "));
    };
    let copies = numbered(scenario, runs);
    let selected: Vec<&Scenario> = copies.iter().collect();
    let dir = target_dir().join("soak").join(name);
    std::fs::create_dir_all(&dir)?;
    println!("soak {name}: {runs} run(s), logs in {}", dir.display());
    let results = scenarios(&selected, lanes(jobs), &dir)?;
    let passed = results.iter().filter(|(_, ok)| *ok).count();
    let failed = results.len() - passed;
    let failures: Vec<&str> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name.as_str())
        .collect();
    if !failures.is_empty() {
        println!("failed runs: {}", failures.join(" "));
    }
    println!("soak {name}: {passed} of {} runs passed", results.len());
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0 && results.len() == runs)
}

/// `runs` copies of `scenario` named `NAME.1` ... `NAME.N`, zero-padded so
/// that the logs sort, each run with a log of its own.
fn numbered(scenario: &Scenario, runs: usize) -> Vec<Scenario> {
    let width = runs.to_string().len();
    (1..=runs)
        .map(|k| Scenario {
            name: format!("{}.{k:0width$}", scenario.name),
            ..scenario.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_has_its_own_name() {
        let text = "description = \"d\"\nemulator = \"bochs\"\ncmdline = \"\"\n\
                    timeout_s = 60\npass = ['x']\nend = \"pattern\"\n";
        let scenario = scenario::parse("dom0-isolation", text).expect("a valid scenario");
        let names: Vec<String> = numbered(&scenario, 10)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names.first().map(String::as_str), Some("dom0-isolation.01"));
        assert_eq!(names.last().map(String::as_str), Some("dom0-isolation.10"));
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_eq!(numbered(&scenario, 3)[2].name, "dom0-isolation.3");
    }
}
