//! The scheduler's requests and queries: domains and vCPUs come and go,
//! wake, block and are paused, get new weights, caps and affinities; and
//! what `xl vcpu-list` and `xl sched-credit2` would want to know.
//!
//! Requests that can change what some CPU should run return the set of CPUs
//! to kick (make call [`Scheduler::pick`] soon); the choosing itself, the
//! accounting and the balancing are in `pick.rs`.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::cap::Budget;
use super::config::SchedConfig;
use super::cpuset::CpuSet;
use super::credit::{self, Credit};
use super::entry::{DomainEntry, VcpuEntry};
use super::runqueue::RunQueue;
use super::types::{
    Cap, DomainId, DomainInfo, SchedError, Ticks, VcpuInfo, VcpuRef, VcpuState, Weight,
};

/// The scheduling policy of the whole machine. See the module documentation
/// of [`crate::sched`].
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub(super) config: SchedConfig,
    /// The credit a reset gives (one slice's worth).
    pub(super) init: Credit,
    pub(super) domains: BTreeMap<DomainId, DomainEntry>,
    pub(super) vcpus: BTreeMap<VcpuRef, VcpuEntry>,
    /// One per CPU.
    pub(super) queues: Vec<RunQueue>,
}

impl Scheduler {
    /// A scheduler with no domain yet.
    pub fn new(config: SchedConfig) -> Result<Self, SchedError> {
        config.validate()?;
        Ok(Self {
            config,
            init: credit::init(&config),
            domains: BTreeMap::new(),
            vcpus: BTreeMap::new(),
            queues: (0..config.cpus).map(|_| RunQueue::default()).collect(),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &SchedConfig {
        &self.config
    }

    /// Adds a domain: default weight, no cap, not paused, no vCPU.
    pub fn add_domain(&mut self, d: DomainId) -> Result<(), SchedError> {
        if self.domains.contains_key(&d) {
            return Err(SchedError::DomainExists);
        }
        let entry = DomainEntry {
            weight: Weight::DEFAULT,
            cap: Cap::NONE,
            paused: false,
            budget: Budget::new(Cap::NONE, self.config.cap_period),
        };
        self.domains.insert(d, entry);
        Ok(())
    }

    /// Removes a domain and its vCPUs; returns the CPUs that were running
    /// them (to kick).
    pub fn remove_domain(&mut self, d: DomainId) -> Result<CpuSet, SchedError> {
        if !self.domains.contains_key(&d) {
            return Err(SchedError::UnknownDomain);
        }
        let mut kick = CpuSet::EMPTY;
        for v in self.vcpus_of(d) {
            kick = kick.union(self.remove_vcpu(v)?);
        }
        self.domains.remove(&d);
        Ok(kick)
    }

    /// Adds a vCPU of an existing domain, allowed on `affinity`. It starts
    /// blocked (as one waiting for its start-up IPI; [`Scheduler::wake`]
    /// starts it), with a full allotment of credit, on the least-loaded CPU
    /// of its affinity.
    pub fn add_vcpu(&mut self, v: VcpuRef, affinity: CpuSet) -> Result<(), SchedError> {
        if !self.domains.contains_key(&v.domain) {
            return Err(SchedError::UnknownDomain);
        }
        if self.vcpus.contains_key(&v) {
            return Err(SchedError::VcpuExists);
        }
        let affinity = self.machine_affinity(affinity)?;
        let home = self.least_loaded(affinity, None, None);
        self.vcpus
            .insert(v, VcpuEntry::new(affinity, home, self.init));
        if let Some(q) = self.queues.get_mut(home) {
            q.add(v);
        }
        Ok(())
    }

    /// Removes a vCPU, even a running one; returns the CPU running it (to
    /// kick: it must stop running it). Its unused cap chunk goes back to its
    /// domain; the time it ran since the last accounting is not counted
    /// anywhere.
    pub fn remove_vcpu(&mut self, v: VcpuRef) -> Result<CpuSet, SchedError> {
        let e = self.vcpus.remove(&v).ok_or(SchedError::UnknownVcpu)?;
        if let Some(d) = self.domains.get_mut(&v.domain) {
            d.budget.give_back(e.reserved, e.reserved_period);
        }
        if let Some(q) = self.queues.get_mut(e.home) {
            q.remove(v);
        }
        if let Some(cpu) = e.running_on
            && let Some(q) = self.queues.get_mut(cpu)
        {
            q.remove(v);
        }
        Ok(e.running_on.map_or(CpuSet::EMPTY, CpuSet::single))
    }

    /// A vCPU becomes ready: it halted and an interrupt, timer or IPI came,
    /// or it is started. A blocked vCPU is placed on the least-loaded CPU of
    /// its affinity (its last CPU when loads are equal).
    ///
    /// `urgent`: dom0's vCPU with a device interrupt to take. It is picked
    /// first on its CPU, preempting the running vCPU as soon as the rate
    /// limit allows, so it runs within the rate limit of the wake (caps
    /// still apply). Also for a vCPU that is ready already.
    ///
    /// Returns the CPU to kick, if the vCPU should run there before that
    /// CPU would look again on its own.
    pub fn wake(&mut self, v: VcpuRef, now: Ticks, urgent: bool) -> Result<CpuSet, SchedError> {
        let refilled = self.refill(now);
        let paused = self.domain(v.domain)?.paused;
        let e = self.vcpus.get_mut(&v).ok_or(SchedError::UnknownVcpu)?;
        if e.running_on.is_some() {
            return Ok(refilled);
        }
        e.urgent |= urgent;
        let was_blocked = core::mem::replace(&mut e.blocked, false);
        let home = e.home;
        if paused {
            return Ok(refilled);
        }
        let cpu = if was_blocked { self.place(v) } else { home };
        Ok(self.kick_for(cpu, v, now).union(refilled))
    }

    /// A vCPU halts (its CPU ran it and it executed HLT). If running, its
    /// time is accounted up to `now` and it leaves its CPU, which is in the
    /// returned set and must call [`Scheduler::pick`]. A blocked vCPU uses
    /// no CPU and burns no credit.
    pub fn block(&mut self, v: VcpuRef, now: Ticks) -> Result<CpuSet, SchedError> {
        let refilled = self.refill(now);
        let e = self.vcpus.get(&v).ok_or(SchedError::UnknownVcpu)?;
        let mut kick = refilled;
        if let Some(cpu) = e.running_on {
            let was_out = self.out_of_budget(v);
            self.charge(cpu, now);
            self.settle(v);
            kick = self.budget_kicks(v, was_out).with(cpu);
            if let Some(q) = self.queues.get_mut(cpu) {
                q.current = None;
            }
        }
        if let Some(e) = self.vcpus.get_mut(&v) {
            e.running_on = None;
            e.blocked = true;
            e.urgent = false;
            if !e.affinity.contains(e.home) {
                // Its affinity changed while it ran: it leaves that CPU now.
                self.place(v);
            }
        }
        Ok(kick)
    }

    /// Pauses a domain: none of its vCPUs is picked until it is unpaused.
    /// Returns the CPUs running its vCPUs (to kick); they account them and
    /// stop at their next [`Scheduler::pick`].
    pub fn pause_domain(&mut self, d: DomainId) -> Result<CpuSet, SchedError> {
        self.domain_mut(d)?.paused = true;
        Ok(self.running_cpus(d))
    }

    /// Unpauses a domain; its ready vCPUs are placed as if they woke.
    pub fn unpause_domain(&mut self, d: DomainId, now: Ticks) -> Result<CpuSet, SchedError> {
        let refilled = self.refill(now);
        self.domain_mut(d)?.paused = false;
        let mut kick = refilled;
        for v in self.vcpus_of(d) {
            let waiting = self
                .vcpus
                .get(&v)
                .is_some_and(|e| !e.blocked && e.running_on.is_none());
            if waiting {
                let cpu = self.place(v);
                kick = kick.union(self.kick_for(cpu, v, now));
            }
        }
        Ok(kick)
    }

    /// Sets a vCPU's hard affinity. Only the machine's CPUs of `set` count;
    /// if none is left the request is refused. A vCPU whose CPU is no
    /// longer allowed moves: at once if it is not running, otherwise at the
    /// next [`Scheduler::pick`] of the CPU running it (returned, to kick).
    pub fn set_affinity(
        &mut self,
        v: VcpuRef,
        set: CpuSet,
        now: Ticks,
    ) -> Result<CpuSet, SchedError> {
        let affinity = self.machine_affinity(set)?;
        let e = self.vcpus.get_mut(&v).ok_or(SchedError::UnknownVcpu)?;
        e.affinity = affinity;
        if let Some(cpu) = e.running_on {
            return Ok(if affinity.contains(cpu) {
                CpuSet::EMPTY
            } else {
                CpuSet::single(cpu)
            });
        }
        let home = e.home;
        if !affinity.contains(home) {
            let cpu = self.place(v);
            return Ok(if self.wants_cpu(v) {
                self.kick_for(cpu, v, now)
            } else {
                CpuSet::EMPTY
            });
        }
        // It may stay, but an idle CPU newly allowed can take it.
        Ok(if self.pickable(v) {
            self.idle_cpus().intersection(affinity).without(home)
        } else {
            CpuSet::EMPTY
        })
    }

    /// Sets a domain's weight (1 to 65535). It applies from the next
    /// accounting of each vCPU on.
    pub fn set_weight(&mut self, d: DomainId, weight: u32) -> Result<(), SchedError> {
        let weight = Weight::new(weight)?;
        self.domain_mut(d)?.weight = weight;
        Ok(())
    }

    /// Sets a domain's cap in percent of one CPU (0: none; at most 100 per
    /// CPU of the machine). The budget starts full at the next look at the
    /// clock. Returns the CPUs holding its vCPUs (to kick), so that running
    /// ones get a chunk of the new budget and parked ones are looked at
    /// again.
    pub fn set_cap(&mut self, d: DomainId, percent: u32) -> Result<CpuSet, SchedError> {
        let cap = Cap::new(percent, self.config.cpus)?;
        let period = self.config.cap_period;
        let dom = self.domain_mut(d)?;
        dom.cap = cap;
        dom.budget = Budget::new(cap, period);
        let mut kick = CpuSet::EMPTY;
        for v in self.vcpus_of(d) {
            if let Some(e) = self.vcpus.get_mut(&v) {
                e.reserved = Ticks::ZERO;
                e.reserved_period = None;
                if !e.blocked {
                    kick.insert(e.running_on.unwrap_or(e.home));
                }
            }
        }
        Ok(kick)
    }

    /// Where a vCPU is and how it fares.
    pub fn vcpu_info(&self, v: VcpuRef) -> Result<VcpuInfo, SchedError> {
        let e = self.vcpus.get(&v).ok_or(SchedError::UnknownVcpu)?;
        let d = self.domain(v.domain)?;
        let state = if e.running_on.is_some() {
            VcpuState::Running
        } else if d.paused {
            VcpuState::Paused
        } else if e.blocked {
            VcpuState::Blocked
        } else if d.out_of_budget() {
            VcpuState::Parked
        } else {
            VcpuState::Runnable
        };
        Ok(VcpuInfo {
            cpu: e.running_on.unwrap_or(e.home),
            state,
            credit: e.credit,
            cpu_time: e.cpu_time,
            affinity: e.affinity,
        })
    }

    /// A domain's parameters.
    pub fn domain_info(&self, d: DomainId) -> Result<DomainInfo, SchedError> {
        let dom = self.domain(d)?;
        Ok(DomainInfo {
            weight: dom.weight,
            cap: dom.cap,
            paused: dom.paused,
            vcpus: self.vcpus_of(d).len(),
            budget_left: dom.cap.is_capped().then(|| dom.budget.left()),
        })
    }

    /// The vCPU `cpu` was last told to run.
    pub fn running(&self, cpu: usize) -> Result<Option<VcpuRef>, SchedError> {
        Ok(self.queues.get(cpu).ok_or(SchedError::UnknownCpu)?.current)
    }

    /// All vCPUs, by domain and index.
    pub fn vcpus(&self) -> impl Iterator<Item = VcpuRef> + '_ {
        self.vcpus.keys().copied()
    }

    /// All domains, by id.
    pub fn domains(&self) -> impl Iterator<Item = DomainId> + '_ {
        self.domains.keys().copied()
    }

    pub(super) fn domain(&self, d: DomainId) -> Result<&DomainEntry, SchedError> {
        self.domains.get(&d).ok_or(SchedError::UnknownDomain)
    }

    fn domain_mut(&mut self, d: DomainId) -> Result<&mut DomainEntry, SchedError> {
        self.domains.get_mut(&d).ok_or(SchedError::UnknownDomain)
    }

    /// The vCPUs of domain `d`.
    pub(super) fn vcpus_of(&self, d: DomainId) -> Vec<VcpuRef> {
        let first = VcpuRef {
            domain: d,
            index: 0,
        };
        let last = VcpuRef {
            domain: d,
            index: u32::MAX,
        };
        self.vcpus.range(first..=last).map(|(&v, _)| v).collect()
    }

    /// The CPUs running a vCPU of `d`.
    fn running_cpus(&self, d: DomainId) -> CpuSet {
        self.vcpus_of(d)
            .iter()
            .filter_map(|v| self.vcpus.get(v).and_then(|e| e.running_on))
            .collect()
    }

    /// The CPUs running nothing.
    pub(super) fn idle_cpus(&self) -> CpuSet {
        (0..self.queues.len())
            .filter(|&c| self.queues.get(c).is_some_and(RunQueue::idle))
            .collect()
    }

    /// `set` within the machine, refused if nothing is left.
    fn machine_affinity(&self, set: CpuSet) -> Result<CpuSet, SchedError> {
        let set = set.intersection(CpuSet::all(self.config.cpus));
        if set.is_empty() {
            return Err(SchedError::BadAffinity);
        }
        Ok(set)
    }
}
