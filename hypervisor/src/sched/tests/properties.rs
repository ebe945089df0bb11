//! Properties of the policy over random scenarios, run on the simulator
//! (`sim.rs`, which also checks affinity, exclusivity, idle CPUs and
//! accounting at every step), and random request sequences that must never
//! panic nor break the scheduler's bookkeeping.
//!
//! Simulated time: 1 tick = 1 µs; slices and cap periods of 10 ms, a 1 ms
//! rate limit.

use proptest::prelude::*;

use super::sim::{Behavior, Change, DomainSetup, Setup, Sim, TPMS, VcpuSetup};
use super::*;

const SLICE: u64 = 10 * TPMS;
const RATELIMIT: u64 = TPMS;
const PERIOD: u64 = 10 * TPMS;
/// A reset's allotment of credit: one slice.
const INIT: u64 = SLICE;

fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        2 => Just(Behavior::CpuBound),
        3 => (50u64..20_000, 50u64..30_000).prop_map(|(run, sleep)| Behavior::Bursty { run, sleep }),
    ]
}

/// A non-empty affinity within `cpus` CPUs.
fn affinity(cpus: usize) -> impl Strategy<Value = CpuSet> {
    (1u64..(1 << cpus)).prop_map(CpuSet::from_bits)
}

fn cpu_bound(domain: usize, affinity: CpuSet) -> VcpuSetup {
    VcpuSetup {
        domain,
        affinity,
        behavior: Behavior::CpuBound,
    }
}

/// Weights `w` of 2–4 CPU-bound vCPUs pinned to CPU 0, each its own domain,
/// and `others` CPU-bound vCPUs kept off CPU 0.
fn shares_setup() -> impl Strategy<Value = (Setup, usize)> {
    (1usize..=4).prop_flat_map(|cpus| {
        let others = if cpus > 1 { 0usize..=3 } else { 0usize..=0 };
        (
            prop::collection::vec(64u32..=1024, 2..=4),
            prop::collection::vec((1u64..(1 << (cpus - 1)).max(2), 64u32..=1024), others),
        )
            .prop_map(move |(pinned, others)| {
                let mut domains = Vec::new();
                let mut vcpus = Vec::new();
                for &w in &pinned {
                    vcpus.push(cpu_bound(domains.len(), CpuSet::single(0)));
                    domains.push(DomainSetup { weight: w, cap: 0 });
                }
                for &(bits, w) in &others {
                    vcpus.push(cpu_bound(domains.len(), CpuSet::from_bits(bits << 1)));
                    domains.push(DomainSetup { weight: w, cap: 0 });
                }
                (
                    Setup {
                        cpus,
                        domains,
                        vcpus,
                        seed: 1,
                    },
                    pinned.len(),
                )
            })
    })
}

/// A capped domain 0 with 1–4 vCPUs, and 0–4 vCPUs of uncapped domains
/// when `others`.
fn capped_setup(others: bool) -> impl Strategy<Value = Setup> {
    (1usize..=4).prop_flat_map(move |cpus| {
        let capped_aff = if others {
            affinity(cpus).boxed()
        } else {
            Just(CpuSet::all(cpus)).boxed()
        };
        let n_others = if others { 0usize..=4 } else { 0usize..=0 };
        (
            1u32..=(100 * cpus as u32),
            prop::collection::vec((capped_aff, behavior()), 1..=4),
            prop::collection::vec((affinity(cpus), behavior(), 1u32..=2048), n_others),
            any::<u64>(),
        )
            .prop_map(move |(cap, capped, rest, seed)| {
                let mut domains = vec![DomainSetup { weight: 256, cap }];
                let mut vcpus = Vec::new();
                for (affinity, behavior) in capped {
                    let behavior = if others { behavior } else { Behavior::CpuBound };
                    vcpus.push(VcpuSetup {
                        domain: 0,
                        affinity,
                        behavior,
                    });
                }
                for (affinity, behavior, weight) in rest {
                    vcpus.push(VcpuSetup {
                        domain: domains.len(),
                        affinity,
                        behavior,
                    });
                    domains.push(DomainSetup { weight, cap: 0 });
                }
                Setup {
                    cpus,
                    domains,
                    vcpus,
                    seed,
                }
            })
    })
}

/// 1–4 CPUs, 1–4 domains of any weight, some capped, 1–8 vCPUs doing
/// anything, and toolstack changes at random times.
fn random_setup() -> impl Strategy<Value = (Setup, Vec<(u64, Change)>)> {
    (1usize..=4).prop_flat_map(|cpus| {
        let domain = (
            1u32..=65535,
            prop_oneof![3 => Just(0u32), 1 => 1u32..=(100 * cpus as u32)],
        );
        let change = prop_oneof![
            (0usize..8, affinity(cpus)).prop_map(|(i, a)| Change::Affinity(i, a)),
            (0usize..4).prop_map(Change::Pause),
            (0usize..4).prop_map(Change::Unpause),
        ];
        (
            prop::collection::vec(domain, 1..=4),
            prop::collection::vec((0usize..4, affinity(cpus), behavior()), 1..=8),
            prop::collection::vec((0u64..1_000_000, change), 0..12),
            any::<u64>(),
        )
            .prop_map(move |(domains, vcpus, mut changes, seed)| {
                let n = domains.len();
                let vcpus: Vec<VcpuSetup> = vcpus
                    .into_iter()
                    .map(|(d, affinity, behavior)| VcpuSetup {
                        domain: d % n,
                        affinity,
                        behavior,
                    })
                    .collect();
                let m = vcpus.len();
                for (_, c) in changes.iter_mut() {
                    match c {
                        Change::Affinity(i, _) => *i %= m,
                        Change::Pause(d) | Change::Unpause(d) => *d %= n,
                    }
                }
                changes.sort_by_key(|c| c.0);
                let domains = domains
                    .into_iter()
                    .map(|(weight, cap)| DomainSetup { weight, cap })
                    .collect();
                (
                    Setup {
                        cpus,
                        domains,
                        vcpus,
                        seed,
                    },
                    changes,
                )
            })
    })
}

/// The quota of a cap in ticks per period.
fn quota(cap: u32) -> u64 {
    u64::from(cap) * PERIOD / 100
}

fn check_cap(sim: &Sim, setup: &Setup) {
    for (d, dom) in setup.domains.iter().enumerate() {
        if dom.cap == 0 {
            continue;
        }
        for (&(domain, period), &used) in &sim.usage {
            if domain as usize == d {
                assert!(
                    used <= quota(dom.cap) + 1,
                    "domain {d} used {used} in period {period}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// CPU-bound vCPUs sharing a CPU get CPU time in proportion to their
    /// weights. Each vCPU's credit burnt is its time × 256 / weight; resets
    /// give everyone the same, so the burnt credits differ only by what the
    /// vCPUs hold at the end: between a full allotment (INIT) and the debt
    /// of one rate-limited run (RATELIMIT × 256 / weight).
    #[test]
    fn cpu_time_is_shared_by_weight((setup, pinned) in shares_setup()) {
        let mut sim = Sim::new(&setup);
        let end = 2_000 * TPMS;
        sim.run(end, &[]);
        let norm = |i: usize| sim.given(i) as f64 * 256.0 / f64::from(setup.domains[i].weight);
        let w_min = setup.domains[..pinned].iter().map(|d| d.weight).min().unwrap();
        let bound = (INIT + RATELIMIT * 256 / u64::from(w_min) + 4) as f64;
        for i in 0..pinned {
            for j in 0..pinned {
                prop_assert!((norm(i) - norm(j)).abs() <= bound,
                    "vCPU {i}: {} vCPU {j}: {}", sim.given(i), sim.given(j));
            }
        }
        prop_assert_eq!((0..pinned).map(|i| sim.given(i)).sum::<u64>(), end);
    }

    /// A capped domain never uses more than its quota in a cap period,
    /// whatever else runs.
    #[test]
    fn a_cap_bounds_usage_in_every_period(setup in capped_setup(true)) {
        let mut sim = Sim::new(&setup);
        sim.run(2_000 * TPMS, &[]);
        check_cap(&sim, &setup);
    }

    /// Alone with CPU-bound vCPUs, a capped domain gets its quota (or all
    /// the CPUs it can use) in every period.
    #[test]
    fn a_cap_is_reached_when_nothing_competes(setup in capped_setup(false)) {
        let mut sim = Sim::new(&setup);
        let periods = 200;
        sim.run(periods * PERIOD, &[]);
        check_cap(&sim, &setup);
        let usable = setup.vcpus.len().min(setup.cpus) as u64 * PERIOD;
        let want = quota(setup.domains[0].cap).min(usable);
        for p in 0..periods {
            let used = sim.usage.get(&(0, p)).copied().unwrap_or(0);
            prop_assert!(used + PERIOD / 100 >= want, "period {p}: used {used} of {want}");
        }
    }

    /// Whatever happens, the simulator's checks hold (affinity, one CPU at
    /// a time, no idle CPU beside waiting work, exact accounting), and caps
    /// bound usage.
    #[test]
    fn random_workloads_keep_the_invariants((setup, changes) in random_setup()) {
        let mut sim = Sim::new(&setup);
        sim.run(2_000 * TPMS, &changes);
        check_cap(&sim, &setup);
    }

    /// No CPU-bound vCPU waits long. Bound: a vCPU with credit runs before
    /// its queue's next reset, and a queue's reset comes after each vCPU
    /// has spent at most one allotment plus one rate-limited overrun; with
    /// weights ≥ 128 the overrun's debt (≤ 2 ms of credit) is paid by one
    /// allotment, so at most two rounds of everyone pass.
    #[test]
    fn cpu_bound_vcpus_do_not_starve(
        (cpus, vcpus) in (1usize..=4).prop_flat_map(|cpus| {
            (Just(cpus), prop::collection::vec((affinity(cpus), 128u32..=1024), 1..=8))
        })
    ) {
        let domains = vcpus.iter().map(|&(_, weight)| DomainSetup { weight, cap: 0 }).collect();
        let vs = vcpus.iter().enumerate().map(|(i, &(a, _))| cpu_bound(i, a)).collect();
        let setup = Setup { cpus, domains, vcpus: vs, seed: 1 };
        let mut sim = Sim::new(&setup);
        sim.run(2_000 * TPMS, &[]);
        let round: u64 = vcpus.iter().map(|&(_, w)| INIT * u64::from(w) / 256 + RATELIMIT).sum();
        let bound = 2 * round + SLICE;
        for (v, &wait) in &sim.max_wait {
            prop_assert!(wait <= bound, "{v:?} waited {wait} > {bound}");
        }
    }

    /// With equal weights on one CPU, vCPUs take turns of one slice each.
    #[test]
    fn equal_weights_take_turns(n in 1usize..=8, cpus in 1usize..=4) {
        let domains = (0..n).map(|_| DomainSetup { weight: 256, cap: 0 }).collect();
        let vcpus = (0..n).map(|i| cpu_bound(i, CpuSet::single(0))).collect();
        let mut sim = Sim::new(&Setup { cpus, domains, vcpus, seed: 1 });
        sim.run(2_000 * TPMS, &[]);
        for (v, &wait) in &sim.max_wait {
            prop_assert!(wait <= (n as u64 - 1) * SLICE, "{v:?} waited {wait}");
        }
    }

    /// dom0's vCPUs (one pinned per CPU) run within the rate limit of an
    /// urgent wake, whatever the domUs do.
    #[test]
    fn urgent_wakes_run_within_the_rate_limit(
        (cpus, domus, seed) in (1usize..=4).prop_flat_map(|cpus| {
            (
                Just(cpus),
                prop::collection::vec((affinity(cpus), behavior(), 1u32..=4096), 1..=6),
                any::<u64>(),
            )
        }),
        work in 20u64..3_000,
        gap in 200u64..20_000,
    ) {
        let mut domains = vec![DomainSetup { weight: 256, cap: 0 }];
        let mut vcpus: Vec<VcpuSetup> = (0..cpus)
            .map(|c| VcpuSetup {
                domain: 0,
                affinity: CpuSet::single(c),
                behavior: Behavior::Urgent { work, gap },
            })
            .collect();
        for (affinity, behavior, weight) in domus {
            vcpus.push(VcpuSetup { domain: domains.len(), affinity, behavior });
            domains.push(DomainSetup { weight, cap: 0 });
        }
        let mut sim = Sim::new(&Setup { cpus, domains, vcpus, seed });
        sim.run(2_000 * TPMS, &[]);
        prop_assert!(sim.urgent_wakes > 0);
        prop_assert!(sim.max_urgent_latency <= RATELIMIT, "latency {}", sim.max_urgent_latency);
    }
}
