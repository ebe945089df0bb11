//! Where a domU's time went, read back from the hypervisor's serial log:
//! when it was created and destroyed (the log's emulated-seconds stamps),
//! how long it ran in guest mode, and its VM exits by reason, which the
//! hypervisor puts in its log ring (not on the serial line) when a domain
//! is destroyed (`vmx_backend/domu.rs`) and dom0's scenario script prints
//! at its end with `xl-rs dmesg` (as `dmesg| ...` lines).

use regex::Regex;

/// One exit reason's total over every CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonTotal {
    pub reason: u32,
    pub name: String,
    pub count: u64,
    /// Average handling ticks.
    pub average_ticks: u64,
}

/// A destroyed domain's life as the hypervisor logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainTime {
    /// From its creation to its destroy, emulated seconds.
    pub lifetime_s: f64,
    /// Time in guest mode, emulated seconds.
    pub guest_s: f64,
    /// Its exits, most frequent first.
    pub exits: Vec<ReasonTotal>,
}

/// A log line's stamp and text after the `cpuN LEVEL` prefix; also a line
/// of the log ring as dom0's scripts show it (`dmesg| [ ...`).
fn stamped(line: &str) -> Option<(f64, &str)> {
    let line = match line.find("| [") {
        Some(at) if !line[..at].contains('[') => &line[at + 2..],
        _ => line,
    };
    let rest = line.trim_start().strip_prefix('[')?;
    let (stamp, rest) = rest.split_once(']')?;
    let text = rest.trim_start().split_once(' ')?.1.trim_start();
    let text = text.split_once(' ')?.1.trim_start();
    Some((stamp.trim().parse().ok()?, text))
}

/// The life of the first domain named `name` that was created and then
/// destroyed in `log`.
pub fn domain_time(log: &str, name: &str) -> Option<DomainTime> {
    let created = Regex::new(&format!(r"^domain (\d+) '{}' created", regex::escape(name))).ok()?;
    let entry = Regex::new(r"^\s*(\d+) (.+?)\s+(\d+)\s+(\d+)\s*$").ok()?;
    let cpu_header = Regex::new(r"^\s*cpu\d+: \d+ exits\s*$").ok()?;
    let mut lines = log
        .lines()
        .filter_map(|line| stamped(line.trim_end_matches('\r')));
    let (born, id) =
        lines.find_map(|(stamp, text)| created.captures(text).map(|c| (stamp, c[1].to_owned())))?;
    let destroyed = format!("domain {id} destroyed");
    let died = lines.find_map(|(stamp, text)| (text == destroyed).then_some(stamp))?;
    let guest_prefix = format!("domain {id}: ");
    let (_, guest) = lines.find(|(_, text)| text.starts_with(&guest_prefix))?;
    let guest_ms: f64 = guest
        .strip_prefix(&guest_prefix)?
        .strip_suffix(" ms in guest mode")?
        .parse()
        .ok()?;
    let title = format!("domain {id}: VM exit statistics");
    lines.find(|(_, text)| text.starts_with(&title))?;
    let mut exits: Vec<ReasonTotal> = Vec::new();
    for (_, text) in lines {
        if cpu_header.is_match(text) {
            continue;
        }
        let Some(c) = entry.captures(text) else {
            break;
        };
        let (reason, count, average): (u32, u64, u64) =
            (c[1].parse().ok()?, c[3].parse().ok()?, c[4].parse().ok()?);
        match exits.iter_mut().find(|total| total.reason == reason) {
            Some(total) => {
                let ticks = total.count * total.average_ticks + count * average;
                total.count += count;
                total.average_ticks = ticks / total.count.max(1);
            }
            None => exits.push(ReasonTotal {
                reason,
                name: c[2].to_owned(),
                count,
                average_ticks: average,
            }),
        }
    }
    exits.sort_by_key(|total| std::cmp::Reverse(total.count));
    Some(DomainTime {
        lifetime_s: died - born,
        guest_s: guest_ms / 1000.0,
        exits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[   10.000000] cpu0 INFO  domain 1 'linux' created: 262144 KiB, 1 vCPU(s), paused\r\n\
dom0 console output\n\
[   70.000000] cpu1 INFO  domain 1 destroyed\n\
[   80.000000] cpu0 INFO  domain 2 'linux' created: 262144 KiB, 1 vCPU(s), paused\n\
dmesg| [   10.000000] cpu0 INFO  domain 1 'linux' created: 262144 KiB, 1 vCPU(s), paused\n\
dmesg| [   70.000000] cpu1 INFO  domain 1 destroyed\n\
dmesg| [   70.000100] cpu1 INFO  domain 1: 48000 ms in guest mode\n\
dmesg| [   70.000200] cpu1 INFO  domain 1: VM exit statistics (count, average handling ticks):\n\
dmesg| [   70.000300] cpu1 INFO    cpu0: 300 exits\n\
dmesg| [   70.000400] cpu1 INFO        1 external interrupt                  200      100\n\
dmesg| [   70.000500] cpu1 INFO       30 I/O instruction                     100      300\n\
dmesg| [   70.000600] cpu1 INFO    cpu1: 100 exits\n\
dmesg| [   70.000700] cpu1 INFO        1 external interrupt                  100      400\n\
dmesg| [   70.000800] cpu1 INFO  domain 2 destroyed\n";

    #[test]
    fn reads_the_first_domains_life_and_exits() {
        let t = domain_time(LOG, "linux").expect("found");
        assert!((t.lifetime_s - 60.0).abs() < 1e-9);
        assert!((t.guest_s - 48.0).abs() < 1e-9);
        assert_eq!(
            t.exits,
            vec![
                ReasonTotal {
                    reason: 1,
                    name: "external interrupt".to_owned(),
                    count: 300,
                    average_ticks: 200
                },
                ReasonTotal {
                    reason: 30,
                    name: "I/O instruction".to_owned(),
                    count: 100,
                    average_ticks: 300
                },
            ]
        );
    }

    #[test]
    fn nothing_without_a_destroy() {
        assert_eq!(domain_time(LOG, "other"), None);
        let cut = LOG.split("[   70.000000]").next().unwrap_or_default();
        assert_eq!(domain_time(cut, "linux"), None);
    }
}
