//! What a physical CPU runs next ([`Scheduler::pick`]), and the machinery
//! behind it: accounting, credit resets, cap chunks, the rate limit,
//! placement and load balancing.

use core::cmp::Reverse;

use alloc::vec::Vec;

use super::cap;
use super::cpuset::CpuSet;
use super::credit::{self, Credit};
use super::scheduler::Scheduler;
use super::types::{Decision, SchedError, Ticks, VcpuRef};

impl Scheduler {
    /// What `cpu` runs next. Called when its last decision's `until` comes,
    /// when it is kicked, and after [`Scheduler::block`] of its vCPU.
    ///
    /// In order: the vCPU it was running is accounted up to `now` (CPU time,
    /// credit, cap budget) and its unused cap chunk returned; if it may no
    /// longer run here (paused, blocked, out of budget, affinity) it leaves
    /// the CPU, moving to an allowed CPU if needed. An idle CPU then pulls a
    /// ready vCPU from the busiest queue it may serve, a CPU with two fewer
    /// ready vCPUs than the busiest pulls one too. The ready vCPU of the
    /// queue with the most credit is chosen (an urgent one first), after a
    /// credit reset if the best has none left; the running vCPU stays if it
    /// has run less than the rate limit. A capped vCPU gets a chunk of its
    /// domain's budget and the CPU comes back when it is used up.
    pub fn pick(&mut self, cpu: usize, now: Ticks) -> Result<Decision, SchedError> {
        let q = self.queues.get(cpu).ok_or(SchedError::UnknownCpu)?;
        let prev = q.current;
        let run_start = q.run_start;
        let mut kick = self.refill(now);
        let mut keep = None;
        let was_out = prev.is_some_and(|p| self.out_of_budget(p));
        if let Some(p) = prev {
            self.charge(cpu, now);
            self.settle(p);
            if self.eligible(p, cpu) {
                keep = Some(p);
            } else {
                kick = kick.union(self.deschedule(cpu, p, now));
            }
        }
        self.balance(cpu, keep.is_some());

        if let Some(best) = self.best(cpu, false) {
            let rounds = credit::reset_rounds(self.credit(best), self.init);
            if rounds > 0 {
                self.reset(cpu, rounds);
            }
        }
        let mut choice = self.best(cpu, true).or_else(|| self.best(cpu, false));
        let mut until = Ticks::NEVER;
        if keep.is_some() && choice != keep {
            let allowed = run_start.saturating_add(self.config.ratelimit);
            if now < allowed {
                choice = keep;
                until = allowed;
            }
        }
        self.switch(cpu, choice, now);

        if let Some(c) = choice {
            until = until.min(self.start_slice(c, now, until));
        }
        if self.has_capped_ready(cpu) {
            until = until.min(cap::period_end(now, self.config.cap_period));
        }
        kick = kick.union(self.idle_helpers(cpu));
        if let Some(p) = prev {
            // Checked after this CPU took its own chunk: kicking siblings
            // for budget that is gone again would only make them re-pick.
            kick = kick.union(self.budget_kicks(p, was_out));
        }
        Ok(Decision {
            run: choice,
            until,
            kick: kick.without(cpu),
        })
    }

    /// Replenishes the budgets of capped domains for the periods begun.
    /// Returns the CPUs to kick for a domain whose budget was spent and is
    /// back: where its waiting vCPUs are queued (a busy CPU there may not
    /// look again before its slice ends) and the idle CPUs they may run on.
    /// Without this an idle CPU could stay idle while such a vCPU waits
    /// behind another on a busy CPU (found by the property tests).
    pub(super) fn refill(&mut self, now: Ticks) -> CpuSet {
        let period = self.config.cap_period;
        let mut back = Vec::new();
        for (&id, d) in self.domains.iter_mut().filter(|(_, d)| d.cap.is_capped()) {
            let was_out = d.out_of_budget();
            d.budget.refill(now, period);
            if was_out && !d.out_of_budget() {
                back.push(id);
            }
        }
        if back.is_empty() {
            return CpuSet::EMPTY;
        }
        let idle = self.idle_cpus();
        let mut kick = CpuSet::EMPTY;
        for id in back {
            for v in self.vcpus_of(id) {
                if let Some(e) = self.vcpus.get(&v)
                    && !e.blocked
                    && e.running_on.is_none()
                {
                    kick = kick.with(e.home).union(e.affinity.intersection(idle));
                }
            }
        }
        kick
    }

    /// Accounts the vCPU `cpu` runs up to `now`: CPU time, credit burnt at
    /// its domain's weight, and cap budget (from its chunk, beyond it as
    /// debt).
    pub(super) fn charge(&mut self, cpu: usize, now: Ticks) {
        let Some(q) = self.queues.get_mut(cpu) else {
            return;
        };
        let Some(v) = q.current else {
            return;
        };
        let ran = now.saturating_sub(q.charged_to);
        q.charged_to = q.charged_to.max(now);
        let (Some(d), Some(e)) = (self.domains.get_mut(&v.domain), self.vcpus.get_mut(&v)) else {
            return;
        };
        e.cpu_time = e.cpu_time.saturating_add(ran);
        let (burnt, rem) = credit::burn(ran, d.weight, e.burn_rem);
        e.credit = Credit(e.credit.0.saturating_sub(burnt));
        e.burn_rem = rem;
        e.last_ran = e.last_ran.max(now);
        if d.cap.is_capped() {
            let covered = ran.min(e.reserved);
            e.reserved = e.reserved.saturating_sub(covered);
            d.budget.spend(ran.saturating_sub(covered));
        }
    }

    /// Returns the unused part of `v`'s cap chunk to its domain.
    pub(super) fn settle(&mut self, v: VcpuRef) {
        if let (Some(d), Some(e)) = (self.domains.get_mut(&v.domain), self.vcpus.get_mut(&v)) {
            d.budget.give_back(e.reserved, e.reserved_period);
            e.reserved = Ticks::ZERO;
            e.reserved_period = None;
        }
    }

    /// Whether `v`'s domain is capped and out of budget.
    pub(super) fn out_of_budget(&self, v: VcpuRef) -> bool {
        self.domains
            .get(&v.domain)
            .is_some_and(|d| d.out_of_budget())
    }

    /// When `v`'s domain was out of budget (`was_out`) and has some again
    /// (a chunk came back), the CPUs of its waiting vCPUs, to kick.
    pub(super) fn budget_kicks(&self, v: VcpuRef, was_out: bool) -> CpuSet {
        if !was_out || self.out_of_budget(v) {
            return CpuSet::EMPTY;
        }
        self.vcpus_of(v.domain)
            .iter()
            .filter_map(|w| self.vcpus.get(w))
            .filter(|e| !e.blocked && e.running_on.is_none())
            .map(|e| e.home)
            .collect()
    }

    /// Takes `p` off `cpu`; if `cpu` is no longer in its affinity it moves,
    /// and its new CPU is returned (to kick).
    fn deschedule(&mut self, cpu: usize, p: VcpuRef, now: Ticks) -> CpuSet {
        if let Some(q) = self.queues.get_mut(cpu) {
            q.current = None;
        }
        let Some(e) = self.vcpus.get_mut(&p) else {
            return CpuSet::EMPTY;
        };
        e.running_on = None;
        e.last_ran = e.last_ran.max(now);
        if e.affinity.contains(cpu) {
            return CpuSet::EMPTY;
        }
        let to = self.place(p);
        if self.wants_cpu(p) {
            self.kick_for(to, p, now)
        } else {
            CpuSet::EMPTY
        }
    }

    /// Makes `choice` what `cpu` runs from `now` on.
    fn switch(&mut self, cpu: usize, choice: Option<VcpuRef>, now: Ticks) {
        let Some(q) = self.queues.get_mut(cpu) else {
            return;
        };
        let old = q.current;
        q.charged_to = q.charged_to.max(now);
        if old == choice {
            return;
        }
        q.current = choice;
        q.run_start = now;
        if let Some(e) = old.and_then(|o| self.vcpus.get_mut(&o)) {
            e.running_on = None;
        }
        if let Some(e) = choice.and_then(|c| self.vcpus.get_mut(&c)) {
            e.running_on = Some(cpu);
        }
    }

    /// Starts a slice of `c`: clears its urgency, and returns when the CPU
    /// must look again: when its credit is burnt (within the rate limit and
    /// the slice length, see `credit::slice_for`), or, for a capped domain,
    /// when the chunk it reserves now (at most until `until`) is used up.
    fn start_slice(&mut self, c: VcpuRef, now: Ticks, until: Ticks) -> Ticks {
        let config = self.config;
        let (Some(d), Some(e)) = (self.domains.get_mut(&c.domain), self.vcpus.get_mut(&c)) else {
            return now;
        };
        e.urgent = false;
        let mut end = now
            .saturating_add(credit::slice_for(e.credit, d.weight, &config))
            .min(until);
        if d.cap.is_capped() {
            let chunk = d.budget.reserve(end.saturating_sub(now));
            e.reserved = chunk;
            e.reserved_period = d.budget.period();
            end = end.min(now.saturating_add(chunk));
        }
        end
    }

    /// Whether a ready vCPU of a capped domain calls `cpu` home: then the
    /// CPU looks again at the end of the period, when budgets are refilled.
    fn has_capped_ready(&self, cpu: usize) -> bool {
        self.members(cpu).iter().any(|v| {
            let d = self.domains.get(&v.domain);
            let e = self.vcpus.get(v);
            matches!((d, e), (Some(d), Some(e)) if d.cap.is_capped() && !d.paused && !e.blocked)
        })
    }

    /// The idle CPUs that could take a ready vCPU waiting on `cpu`.
    fn idle_helpers(&self, cpu: usize) -> CpuSet {
        let idle = self.idle_cpus();
        self.members(cpu)
            .iter()
            .filter(|&&v| {
                self.pickable(v) && self.vcpus.get(&v).is_some_and(|e| e.running_on.is_none())
            })
            .filter_map(|v| self.vcpus.get(v))
            .fold(CpuSet::EMPTY, |set, e| {
                set.union(e.affinity.intersection(idle))
            })
    }

    /// Pulls a waiting ready vCPU to `cpu`: when it has nothing to run, from
    /// the busiest queue holding one it may run; when it is busy, only from
    /// a queue with at least two more ready vCPUs than it.
    fn balance(&mut self, cpu: usize, busy: bool) {
        let idle = !busy && self.best(cpu, false).is_none();
        let mine = self.load(cpu, None);
        let mut others: Vec<(usize, usize)> = (0..self.queues.len())
            .filter(|&c| c != cpu)
            .map(|c| (self.load(c, None), c))
            .collect();
        others.sort_by_key(|&(load, c)| (Reverse(load), c));
        for (load, from) in others {
            if load == 0 || (!idle && load < mine + 2) {
                break;
            }
            let candidate = self
                .members(from)
                .into_iter()
                .filter(|&v| {
                    self.pickable(v)
                        && self
                            .vcpus
                            .get(&v)
                            .is_some_and(|e| e.running_on.is_none() && e.affinity.contains(cpu))
                })
                .max_by_key(|&v| self.rank(v));
            if let Some(v) = candidate {
                self.move_home(v, cpu);
                return;
            }
        }
    }

    /// The best vCPU `cpu` may run now among its queue (only urgent ones if
    /// `urgent`): the most credit; on a tie the one that ran least recently.
    fn best(&self, cpu: usize, urgent: bool) -> Option<VcpuRef> {
        self.members(cpu)
            .into_iter()
            .filter(|&v| self.eligible(v, cpu))
            .filter(|v| !urgent || self.vcpus.get(v).is_some_and(|e| e.urgent))
            .max_by_key(|&v| self.rank(v))
    }

    /// The order of preference: credit, then least recently run, then the
    /// lowest id (so that ties resolve the same way every time).
    fn rank(&self, v: VcpuRef) -> (Credit, Reverse<Ticks>, Reverse<VcpuRef>) {
        let e = self.vcpus.get(&v);
        (
            e.map_or(Credit(i64::MIN), |e| e.credit),
            Reverse(e.map_or(Ticks::NEVER, |e| e.last_ran)),
            Reverse(v),
        )
    }

    fn credit(&self, v: VcpuRef) -> Credit {
        self.vcpus.get(&v).map_or(Credit(0), |e| e.credit)
    }

    /// Gives every vCPU of `cpu`'s queue `rounds` fresh allotments (see
    /// `credit::after_reset`).
    fn reset(&mut self, cpu: usize, rounds: u64) {
        for v in self.members(cpu) {
            if let Some(e) = self.vcpus.get_mut(&v) {
                e.credit = credit::after_reset(e.credit, rounds, self.init);
            }
        }
    }

    fn members(&self, cpu: usize) -> Vec<VcpuRef> {
        self.queues
            .get(cpu)
            .map_or_else(Vec::new, |q| q.members.clone())
    }

    /// Whether `v` wants a CPU: not blocked, its domain not paused (it may
    /// be out of budget: its CPU must then look again at the period's end).
    pub(super) fn wants_cpu(&self, v: VcpuRef) -> bool {
        match (self.vcpus.get(&v), self.domains.get(&v.domain)) {
            (Some(e), Some(d)) => !e.blocked && !d.paused,
            _ => false,
        }
    }

    /// Whether `v` could be given a CPU now: not blocked, its domain neither
    /// paused nor out of budget.
    pub(super) fn pickable(&self, v: VcpuRef) -> bool {
        match (self.vcpus.get(&v), self.domains.get(&v.domain)) {
            (Some(_), Some(d)) => self.wants_cpu(v) && !d.out_of_budget(),
            _ => false,
        }
    }

    /// Whether `cpu` may run `v` now: pickable, allowed there, and not
    /// running on another CPU.
    fn eligible(&self, v: VcpuRef, cpu: usize) -> bool {
        self.pickable(v)
            && self
                .vcpus
                .get(&v)
                .is_some_and(|e| e.affinity.contains(cpu) && e.running_on.is_none_or(|c| c == cpu))
    }

    /// How many vCPUs of `cpu`'s queue want it: the running one and the
    /// pickable ones, not counting `except`.
    fn load(&self, cpu: usize, except: Option<VcpuRef>) -> usize {
        self.queues.get(cpu).map_or(0, |q| {
            q.members
                .iter()
                .filter(|&&v| Some(v) != except)
                .filter(|&&v| q.current == Some(v) || self.pickable(v))
                .count()
        })
    }

    /// The least-loaded CPU of `affinity`, `last` on a tie (its cache is
    /// warm), else the lowest.
    pub(super) fn least_loaded(
        &self,
        affinity: CpuSet,
        last: Option<usize>,
        except: Option<VcpuRef>,
    ) -> usize {
        affinity
            .iter()
            .min_by_key(|&c| (self.load(c, except), Some(c) != last, c))
            .or(last)
            .unwrap_or(0)
    }

    /// Moves a vCPU that is not running to the least-loaded CPU of its
    /// affinity; returns that CPU.
    pub(super) fn place(&mut self, v: VcpuRef) -> usize {
        let Some(e) = self.vcpus.get(&v) else {
            return 0;
        };
        let (affinity, home) = (e.affinity, e.home);
        let to = self.least_loaded(affinity, Some(home), Some(v));
        self.move_home(v, to);
        to
    }

    fn move_home(&mut self, v: VcpuRef, to: usize) {
        let Some(e) = self.vcpus.get_mut(&v) else {
            return;
        };
        if e.running_on.is_some() || to >= self.queues.len() {
            return;
        }
        let from = core::mem::replace(&mut e.home, to);
        if let Some(q) = self.queues.get_mut(from) {
            q.remove(v);
        }
        if let Some(q) = self.queues.get_mut(to) {
            q.add(v);
        }
    }

    /// Whether `cpu` should look again because `v` became ready there:
    /// the CPU is idle, `v` is urgent, `v` has more credit than the running
    /// vCPU has left, or `v`'s domain is out of budget (the CPU must come
    /// back at the period's end).
    pub(super) fn kick_for(&self, cpu: usize, v: VcpuRef, now: Ticks) -> CpuSet {
        let (Some(q), Some(e), Some(d)) = (
            self.queues.get(cpu),
            self.vcpus.get(&v),
            self.domains.get(&v.domain),
        ) else {
            return CpuSet::EMPTY;
        };
        let Some(cur) = q.current else {
            return CpuSet::single(cpu);
        };
        if cur == v {
            return CpuSet::EMPTY;
        }
        let (Some(ce), Some(cd)) = (self.vcpus.get(&cur), self.domains.get(&cur.domain)) else {
            return CpuSet::single(cpu);
        };
        let (burnt, _) = credit::burn(now.saturating_sub(q.charged_to), cd.weight, ce.burn_rem);
        let left = ce.credit.0.saturating_sub(burnt);
        if e.urgent || d.out_of_budget() || e.credit.0 > left {
            CpuSet::single(cpu)
        } else {
            CpuSet::EMPTY
        }
    }
}
