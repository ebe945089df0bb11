//! A small simulator: N physical CPUs obeying the scheduler's decisions over
//! simulated time, vCPUs that compute, halt and wake, and checks made at
//! every instant something happens.
//!
//! Time is event-driven but never advances more than [`STEP`] at once. The
//! CPUs behave ideally: each calls `pick` exactly at its decision's `until`,
//! at once when kicked, and right after its vCPU blocks; so the properties
//! measured are the policy's own, not the effect of late timers.
//!
//! Checked on the way (a failure panics with a description):
//! - a vCPU only runs on a CPU of its affinity, and on one CPU at a time;
//! - no CPU idles while a runnable vCPU it may run waits;
//! - at the end, the CPU time the scheduler accounted to each vCPU equals
//!   the time the CPUs gave it.
//!
//! Measured for the properties: CPU time per vCPU, CPU time per domain and
//! cap period, the longest wait of a runnable vCPU, the longest delay from
//! an urgent wake to running.

use std::collections::BTreeMap;
use std::vec::Vec;

use super::super::*;

/// Ticks per millisecond in simulations: 1 tick = 1 µs.
pub const TPMS: u64 = 1000;
/// The longest the simulator advances at once: 0.5 ms.
pub const STEP: u64 = 500;

/// What a vCPU does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Always wants to run.
    CpuBound,
    /// Runs `run` ticks of CPU time, halts for `sleep` ticks, and so on
    /// (lengths varied by ±50 % from the seed).
    Bursty { run: u64, sleep: u64 },
    /// dom0-like: halted, woken urgently every `gap` ticks (±50 %) for a
    /// device interrupt, which takes `work` ticks of CPU time.
    Urgent { work: u64, gap: u64 },
}

/// A vCPU of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct VcpuSetup {
    /// Index into [`Setup::domains`].
    pub domain: usize,
    pub affinity: CpuSet,
    pub behavior: Behavior,
}

/// A domain of a scenario.
#[derive(Debug, Clone, Copy)]
pub struct DomainSetup {
    pub weight: u32,
    pub cap: u32,
}

/// A scenario.
#[derive(Debug, Clone)]
pub struct Setup {
    pub cpus: usize,
    pub domains: Vec<DomainSetup>,
    pub vcpus: Vec<VcpuSetup>,
    pub seed: u64,
}

/// A change made from outside at a given time (a toolstack request).
#[derive(Debug, Clone, Copy)]
pub enum Change {
    Affinity(usize, CpuSet),
    Pause(usize),
    Unpause(usize),
}

#[derive(Debug, Default)]
struct SimCpu {
    run: Option<VcpuRef>,
    until: Ticks,
    kicked: bool,
}

#[derive(Debug)]
struct SimVcpu {
    behavior: Behavior,
    /// CPU time given by the simulated CPUs.
    given: u64,
    /// CPU time left in the current burst (halts when it reaches 0).
    burst_left: u64,
    /// Halted until then (it wakes itself).
    asleep_until: Option<u64>,
    urgent_since: Option<u64>,
    waiting_since: Option<u64>,
}

/// The simulation and what it measured.
#[derive(Debug)]
pub struct Sim {
    pub sched: Scheduler,
    pub refs: Vec<VcpuRef>,
    pub now: u64,
    cpus: Vec<SimCpu>,
    vcpus: BTreeMap<VcpuRef, SimVcpu>,
    rng: u64,
    /// CPU time per (domain index, cap period index).
    pub usage: BTreeMap<(u32, u64), u64>,
    /// The longest wait of each vCPU while runnable.
    pub max_wait: BTreeMap<VcpuRef, u64>,
    /// The longest delay from an urgent wake to running.
    pub max_urgent_latency: u64,
    pub urgent_wakes: u64,
}

impl Sim {
    /// Builds the scenario and starts every vCPU that is not urgent-driven.
    pub fn new(setup: &Setup) -> Sim {
        let mut sched = Scheduler::new(SchedConfig::new(setup.cpus, TPMS)).unwrap();
        for (i, d) in setup.domains.iter().enumerate() {
            let id = DomainId(i as u32);
            sched.add_domain(id).unwrap();
            sched.set_weight(id, d.weight).unwrap();
            sched.set_cap(id, d.cap).unwrap();
        }
        let mut sim = Sim {
            sched,
            refs: Vec::new(),
            now: 0,
            cpus: (0..setup.cpus).map(|_| SimCpu::default()).collect(),
            vcpus: BTreeMap::new(),
            rng: setup.seed | 1,
            usage: BTreeMap::new(),
            max_wait: BTreeMap::new(),
            max_urgent_latency: 0,
            urgent_wakes: 0,
        };
        let mut next_index = BTreeMap::<usize, u32>::new();
        for s in &setup.vcpus {
            let index = next_index.entry(s.domain).or_insert(0);
            let v = VcpuRef::new(s.domain as u32, *index);
            *index += 1;
            sim.sched.add_vcpu(v, s.affinity).unwrap();
            sim.refs.push(v);
            let asleep_until = match s.behavior {
                Behavior::Urgent { gap, .. } => Some(sim.vary(gap)),
                _ => Some(0),
            };
            let sv = SimVcpu {
                behavior: s.behavior,
                given: 0,
                burst_left: u64::MAX,
                asleep_until,
                urgent_since: None,
                waiting_since: None,
            };
            sim.vcpus.insert(v, sv);
            sim.max_wait.insert(v, 0);
        }
        sim
    }

    /// `x` ± 50 %, at least 1.
    fn vary(&mut self, x: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (x / 2 + self.rng % (x + 1)).max(1)
    }

    fn kick(&mut self, set: CpuSet) {
        for c in set {
            self.cpus[c].kicked = true;
        }
    }

    /// Runs until `end` (absolute ticks), applying `changes` (sorted by time).
    pub fn run(&mut self, end: u64, changes: &[(u64, Change)]) {
        let mut pending = changes.iter().peekable();
        loop {
            while let Some(&&(at, change)) = pending.peek() {
                if at > self.now {
                    break;
                }
                pending.next();
                self.apply(change);
            }
            self.wake_sleepers();
            self.settle();
            self.check_instant();
            if self.now >= end {
                break;
            }
            self.advance(end, pending.peek().map(|c| c.0));
        }
        self.finish();
    }

    fn apply(&mut self, change: Change) {
        let now = Ticks(self.now);
        let kick = match change {
            Change::Affinity(i, set) => self.sched.set_affinity(self.refs[i], set, now),
            Change::Pause(d) => self.sched.pause_domain(DomainId(d as u32)),
            Change::Unpause(d) => self.sched.unpause_domain(DomainId(d as u32), now),
        };
        if let Ok(kick) = kick {
            self.kick(kick);
        }
    }

    fn wake_sleepers(&mut self) {
        let due: Vec<VcpuRef> = self
            .vcpus
            .iter()
            .filter(|(_, s)| s.asleep_until.is_some_and(|t| t <= self.now))
            .map(|(&v, _)| v)
            .collect();
        for v in due {
            let behavior = self.vcpus[&v].behavior;
            let (burst, urgent) = match behavior {
                Behavior::CpuBound => (u64::MAX, false),
                Behavior::Bursty { run, .. } => (self.vary(run), false),
                Behavior::Urgent { work, .. } => (self.vary(work), true),
            };
            let s = self.vcpus.get_mut(&v).unwrap();
            s.asleep_until = None;
            s.burst_left = burst;
            if urgent {
                s.urgent_since = Some(self.now);
                self.urgent_wakes += 1;
            }
            let kick = self.sched.wake(v, Ticks(self.now), urgent).unwrap();
            self.kick(kick);
        }
    }

    /// Lets every CPU that must look again (its `until` came, it was
    /// kicked, its vCPU's burst ended) call `pick`, until none must.
    fn settle(&mut self) {
        for round in 0.. {
            assert!(round < 1000, "picks do not settle at {}", self.now);
            for c in 0..self.cpus.len() {
                if let Some(v) = self.cpus[c].run
                    && self.vcpus[&v].burst_left == 0
                {
                    let kick = self.sched.block(v, Ticks(self.now)).unwrap();
                    self.kick(kick.with(c));
                    let sleep = match self.vcpus[&v].behavior {
                        Behavior::Bursty { sleep, .. } => self.vary(sleep),
                        Behavior::Urgent { gap, .. } => self.vary(gap),
                        Behavior::CpuBound => 0,
                    };
                    self.vcpus.get_mut(&v).unwrap().asleep_until = Some(self.now + sleep);
                    self.cpus[c].run = None;
                }
            }
            let due: Vec<usize> = (0..self.cpus.len())
                .filter(|&c| self.cpus[c].kicked || self.cpus[c].until.0 <= self.now)
                .collect();
            if due.is_empty() {
                return;
            }
            for c in due {
                self.cpus[c].kicked = false;
                let d = self.sched.pick(c, Ticks(self.now)).unwrap();
                assert!(
                    d.until.0 > self.now,
                    "cpu{c}: until {:?} at {}",
                    d.until,
                    self.now
                );
                if let Some(v) = d.run {
                    let aff = self.sched.vcpu_info(v).unwrap().affinity;
                    assert!(aff.contains(c), "{v:?} picked on cpu{c} outside {aff:?}");
                    for (o, other) in self.cpus.iter().enumerate() {
                        assert!(o == c || other.run != Some(v), "{v:?} on cpu{o} and cpu{c}");
                    }
                }
                self.cpus[c].run = d.run;
                self.cpus[c].until = d.until;
                self.kick(d.kick);
            }
        }
    }

    /// Checks made when all CPUs have settled, and the waits measured.
    fn check_instant(&mut self) {
        let mut waiting = CpuSet::EMPTY;
        for (&v, s) in self.vcpus.iter_mut() {
            let info = self.sched.vcpu_info(v).unwrap();
            let running = self.cpus.iter().any(|c| c.run == Some(v));
            assert_eq!(running, info.state == VcpuState::Running, "{v:?} {info:?}");
            if info.state == VcpuState::Runnable {
                waiting = waiting.union(info.affinity);
                let since = *s.waiting_since.get_or_insert(self.now);
                let wait = self.max_wait.get_mut(&v).unwrap();
                *wait = (*wait).max(self.now - since);
            } else {
                s.waiting_since = None;
            }
            if running && let Some(t) = s.urgent_since.take() {
                self.max_urgent_latency = self.max_urgent_latency.max(self.now - t);
            }
        }
        for (c, cpu) in self.cpus.iter().enumerate() {
            assert!(
                cpu.run.is_some() || !waiting.contains(c),
                "cpu{c} idles at {} while a vCPU it may run waits",
                self.now
            );
        }
    }

    /// Moves time to the next event (at most [`STEP`] on), giving it to the
    /// running vCPUs.
    fn advance(&mut self, end: u64, change: Option<u64>) {
        let period = TPMS * 10;
        let mut next = (self.now + STEP)
            .min(end)
            .min((self.now / period + 1) * period);
        next = next.min(change.unwrap_or(u64::MAX));
        for c in &self.cpus {
            next = next.min(c.until.0);
            if let Some(v) = c.run {
                next = next.min(self.now.saturating_add(self.vcpus[&v].burst_left));
            }
        }
        for s in self.vcpus.values() {
            next = next.min(s.asleep_until.unwrap_or(u64::MAX));
        }
        let dt = next - self.now;
        for (c, cpu) in self.cpus.iter().enumerate() {
            let Some(v) = cpu.run else { continue };
            let aff = self.sched.vcpu_info(v).unwrap().affinity;
            assert!(
                dt == 0 || aff.contains(c),
                "{v:?} ran on cpu{c} outside {aff:?}"
            );
            let s = self.vcpus.get_mut(&v).unwrap();
            s.given += dt;
            s.burst_left = s.burst_left.saturating_sub(dt);
            *self
                .usage
                .entry((v.domain.0, self.now / period))
                .or_insert(0) += dt;
        }
        self.now = next;
    }

    /// Every CPU accounts its vCPU; the accounts must match what was given.
    fn finish(&mut self) {
        for c in 0..self.cpus.len() {
            self.sched.pick(c, Ticks(self.now)).unwrap();
        }
        let mut total = 0;
        for (&v, s) in &self.vcpus {
            let info = self.sched.vcpu_info(v).unwrap();
            assert_eq!(info.cpu_time.0, s.given, "{v:?}: accounted vs given");
            total += s.given;
        }
        assert!(total <= self.now * self.cpus.len() as u64);
    }

    /// CPU time given to vCPU number `i` of the setup.
    pub fn given(&self, i: usize) -> u64 {
        self.vcpus[&self.refs[i]].given
    }
}
