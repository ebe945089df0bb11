//! What a physical CPU does: asks the scheduler ([`crate::sched`]) which
//! vCPU to run and until when, runs it, and tells the scheduler when it
//! halts; when there is nothing to run it waits (interrupts on) for a kick,
//! an interrupt or the next timer of a halted vCPU.
//!
//! dom0's vCPU of this CPU is pinned here; domU vCPUs go wherever the
//! scheduler places them ([`super::homes`]). dom0 keeps its interrupt
//! latency bounded: a device interrupt wakes its vCPU *urgent*, and a domU's
//! stay in the guest ends at the first physical interrupt, so the scheduler
//! sees the wake within the rate limit. Switching vCPUs switches their
//! hardware state and the state VM entries do not ([`SwitchedState`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::homes::{HomeState, Homes, Slot, VcpuHome};
use super::{
    LONGEST_RUN_MS, Machine, RunDomain, RunVcpu, SliceEnd, StartOf, StopReason, SwitchedState,
    ThisCpu,
};
use crate::sched::{Ticks, VcpuRef};

/// The code of a stop for a vCPU the hardware refused.
const CRASH: u8 = 3;

/// This CPU's view: whose hardware state is current, whose switched state
/// is in the CPU, which vCPUs are active here, and the timers of the vCPUs
/// that halted here.
pub struct Runner<'h, M: Machine, C: ThisCpu> {
    homes: &'h Homes<M>,
    cpu: C,
    me: usize,
    /// dom0's vCPU of this CPU.
    dom0: Arc<VcpuHome<M>>,
    dom0_ref: VcpuRef,
    /// Whose hardware state is current.
    loaded: Option<Arc<VcpuHome<M>>>,
    /// Whose switched state is in the CPU.
    in_cpu: Option<Arc<VcpuHome<M>>>,
    /// vCPUs active on this CPU.
    active: Vec<Arc<VcpuHome<M>>>,
    /// Halted vCPUs' timer deadlines (ticks), to wake them.
    sleepers: Vec<(u64, VcpuRef)>,
    /// The last stop generation acted on.
    stop_generation: u64,
}

impl<M: Machine, C: ThisCpu> core::fmt::Debug for Runner<'_, M, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runner")
            .field("cpu", &self.me)
            .field("active", &self.active)
            .field("sleepers", &self.sleepers)
            .finish_non_exhaustive()
    }
}

fn same<M: Machine>(a: &Option<Arc<VcpuHome<M>>>, b: &Arc<VcpuHome<M>>) -> bool {
    a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b))
}

impl<'h, M: Machine, C: ThisCpu> Runner<'h, M, C> {
    /// Joins CPU `me` to the scheduler with `first`, dom0's vCPU of this
    /// CPU (current here, its switched state in the CPU).
    pub fn new(homes: &'h Homes<M>, cpu: C, me: usize, first: M::Vcpu) -> Self {
        homes.join(me);
        let dom0_ref = VcpuRef::new(0, first.index() as u32);
        let dom0 = homes.add_dom0_vcpu(first, me);
        Self {
            homes,
            cpu,
            me,
            dom0: dom0.clone(),
            dom0_ref,
            loaded: Some(dom0.clone()),
            in_cpu: Some(dom0.clone()),
            active: alloc::vec![dom0],
            sleepers: Vec::new(),
            stop_generation: homes.stop_generation(),
        }
    }

    /// Runs until dom0's vCPU here stops for good.
    pub fn run(&mut self) -> StopReason {
        loop {
            if let Some(stop) = self.step() {
                return stop;
            }
        }
    }

    /// One turn of the loop: serve requests, reap, wake, pick, and run the
    /// vCPU picked or wait. `Some` when dom0's vCPU here stopped for good.
    pub fn step(&mut self) -> Option<StopReason> {
        let homes = self.homes;
        self.cpu.clear_resched();
        self.serve_flushes();
        self.reap();
        let now = homes.machine().now();
        self.wake_sleepers(now);
        if self.cpu.device_interrupts_pending() || self.dom0.domain.stopping() {
            homes.wake_ref(self.dom0_ref, true);
        }
        let me = self.me;
        let decision = match homes.with_sched(|s| s.pick(me, Ticks(now))) {
            Some(Ok(d)) => d,
            other => {
                log::error!("cpu{me}: the scheduler cannot decide: {other:?}");
                self.cpu.wait_for_interrupt(self.next_sleeper());
                return None;
            }
        };
        homes.kick(decision.kick);
        let Some(v) = decision.run else {
            if self.cpu.resched() {
                return None;
            }
            let until = (decision.until != Ticks::NEVER).then_some(decision.until.0);
            let wake_at = match (until, self.next_sleeper()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.cpu.wait_for_interrupt(wake_at);
            return None;
        };
        let home = if v == self.dom0_ref {
            Some(self.dom0.clone())
        } else {
            homes.home(v)
        };
        self.run_one(&home?, decision.until.0)
    }

    /// Saves the switched state of the vCPU whose state is in the CPU into
    /// its home (it is parked: this CPU does not run it now).
    fn save_context(&mut self) {
        if let Some(prev) = self.in_cpu.take()
            && let HomeState::Parked(slot) = &mut *prev.state.lock()
        {
            slot.context.save();
        }
    }

    /// Gives up `home`'s state (parked, active here) so that another CPU
    /// can run it.
    fn flush(&mut self, home: &Arc<VcpuHome<M>>) {
        if home.active_on() != Some(self.me) {
            return;
        }
        if same(&self.in_cpu, home) {
            self.save_context();
        }
        if let HomeState::Parked(slot) = &mut *home.state.lock()
            && let Err(e) = slot.vcpu.leave_cpu()
        {
            log::error!("cpu{}: {e}", self.me);
        }
        if same(&self.loaded, home) {
            self.loaded = None;
        }
        self.active.retain(|h| !Arc::ptr_eq(h, home));
        home.set_active_on(None);
    }

    /// Serves other CPUs' requests to give up vCPUs active here.
    pub fn serve_flushes(&mut self) {
        for h in self.homes.take_flush_requests(self.me) {
            self.flush(&h);
        }
    }

    /// Frees the vCPUs of stopped domains that this CPU holds, and those no
    /// CPU holds; the last reference to a destroyed domain frees its memory.
    fn reap(&mut self) {
        let homes = self.homes;
        let generation = homes.stop_generation();
        if generation == self.stop_generation {
            return;
        }
        self.stop_generation = generation;
        let stopping: Vec<Arc<VcpuHome<M>>> = self
            .active
            .iter()
            .filter(|h| !h.domain.is_dom0() && h.domain.stopping())
            .cloned()
            .collect();
        for h in stopping {
            if same(&self.in_cpu, &h) {
                self.in_cpu = None;
            }
            if same(&self.loaded, &h) {
                self.loaded = None;
            }
            self.active.retain(|a| !Arc::ptr_eq(a, &h));
            release(&h);
            homes.forget(&h);
        }
        for h in homes.take_orphans() {
            release(&h);
        }
        self.sleepers
            .retain(|(_, v)| v.domain.0 == 0 || homes.home(*v).is_some());
    }

    /// Wakes halted vCPUs whose timer is due.
    fn wake_sleepers(&mut self, now: u64) {
        let mut due = Vec::new();
        self.sleepers.retain(|&(d, v)| {
            if d <= now {
                due.push(v);
                false
            } else {
                true
            }
        });
        for v in due {
            self.homes.wake_ref(v, v.domain.0 == 0);
        }
    }

    fn next_sleeper(&self) -> Option<u64> {
        self.sleepers.iter().map(|&(d, _)| d).min()
    }

    /// Stops `home`'s domain, which cannot run (the hardware refused).
    fn crash(&self, home: &VcpuHome<M>) {
        home.domain.request_stop(CRASH);
        self.homes.domain_stopping(home.domain.id());
    }

    /// Takes vCPU `home` out to run it here: from another CPU (which gives
    /// it up first), or newly created. `None` if it cannot run now.
    fn acquire(&mut self, home: &Arc<VcpuHome<M>>) -> Option<Box<Slot<M::Vcpu>>> {
        while let Some(c) = home.active_on()
            && c != self.me
        {
            self.homes.request_flush(home, c);
            // Wait, serving requests to this CPU meanwhile.
            loop {
                self.serve_flushes();
                match home.active_on() {
                    Some(c2) if c2 == c => self.cpu.relax(),
                    _ => break,
                }
            }
        }
        let mut state = home.state.lock();
        let taken = core::mem::replace(&mut *state, HomeState::Running);
        match taken {
            HomeState::Parked(mut slot) => {
                drop(state);
                if home.active_on().is_none() {
                    self.save_context();
                    if let Err(e) = slot.vcpu.arrive_here() {
                        log::error!("cpu{}: {e}", self.me);
                        *home.state.lock() = HomeState::Parked(slot);
                        self.crash(home);
                        return None;
                    }
                    log::debug!(
                        "{} vCPU{}: now on cpu{}",
                        home.domain.label(),
                        home.index,
                        self.me
                    );
                    home.set_active_on(Some(self.me));
                    self.active.push(home.clone());
                    self.loaded = Some(home.clone());
                }
                Some(slot)
            }
            HomeState::NotStarted(start) => {
                let start = start.or_else(|| home.domain.start_after_sipi(home.index));
                let Some(start) = start else {
                    *state = HomeState::NotStarted(None);
                    return None;
                };
                drop(state);
                self.save_context();
                let slot = self.create(home, &start);
                if slot.is_none() {
                    *home.state.lock() = HomeState::Released;
                }
                slot
            }
            other => {
                *state = other;
                None
            }
        }
    }

    /// Creates a vCPU that never ran, here.
    fn create(
        &mut self,
        home: &Arc<VcpuHome<M>>,
        start: &StartOf<M>,
    ) -> Option<Box<Slot<M::Vcpu>>> {
        let d = &home.domain;
        match M::Vcpu::create(home.index, d, start) {
            Ok(vcpu) => {
                log::info!("{} vCPU{}: starts on cpu{}", d.label(), home.index, self.me);
                home.set_active_on(Some(self.me));
                self.active.push(home.clone());
                // `create` made it current.
                self.loaded = Some(home.clone());
                Some(Box::new(Slot {
                    vcpu,
                    context: SwitchedState::initial(),
                }))
            }
            Err(e) => {
                log::error!("{} vCPU{}: cannot create it: {e}", d.label(), home.index);
                d.guest_stopped(StopReason::Crash);
                self.crash(home);
                None
            }
        }
    }

    /// Makes `slot` (of `home`, active here) the vCPU the hardware holds.
    fn switch_to(
        &mut self,
        home: &Arc<VcpuHome<M>>,
        slot: &mut Slot<M::Vcpu>,
    ) -> Result<(), &'static str> {
        if !same(&self.loaded, home) {
            slot.vcpu.make_current()?;
            self.loaded = Some(home.clone());
        }
        if !same(&self.in_cpu, home) {
            self.save_context();
            slot.context.restore();
            self.in_cpu = Some(home.clone());
        }
        Ok(())
    }

    /// Runs `home`'s vCPU until `until` (ticks) at the latest. `Some` when
    /// dom0's vCPU here stopped for good.
    fn run_one(&mut self, home: &Arc<VcpuHome<M>>, until: u64) -> Option<StopReason> {
        let homes = self.homes;
        let d = home.domain.clone();
        let v = home.vref();
        if d.stopping() && !d.is_dom0() {
            return None;
        }
        let Some(mut slot) = self.acquire(home) else {
            if !matches!(*home.state.lock(), HomeState::Released) {
                // A spurious wake of a vCPU that waits for its start.
                self.block(v, None);
            }
            return None;
        };
        if let Err(e) = self.switch_to(home, &mut slot) {
            log::error!("cpu{}: cannot switch to a vCPU: {e}", self.me);
            *home.state.lock() = HomeState::Parked(slot);
            if d.is_dom0() {
                return Some(StopReason::Crash);
            }
            self.crash(home);
            return None;
        }
        let held = d.held();
        if held || !slot.vcpu.wants_to_run() {
            let deadline = slot.vcpu.wake_deadline();
            *home.state.lock() = HomeState::Parked(slot);
            if !held {
                self.block(v, deadline);
            }
            return None;
        }
        let now = homes.machine().now();
        let longest = homes.machine().ticks_per_ms().max(1000) * LONGEST_RUN_MS;
        let mut end = until.min(now.saturating_add(longest));
        if let Some(s) = self.next_sleeper() {
            end = end.min(s);
        }
        let result = slot.vcpu.run_slice(end.saturating_sub(now).max(1));
        let deadline = slot.vcpu.wake_deadline();
        let mut wake_now = false;
        if result == SliceEnd::Blocked {
            // Told to the scheduler while the vCPU is still out: an
            // interrupt posted before this is seen by `wants_to_run`, one
            // posted after it wakes the blocked vCPU.
            let now = homes.now();
            if let Some(Ok(k)) = homes.with_sched(|s| s.block(v, now)) {
                homes.kick(k);
            }
            wake_now = slot.vcpu.wants_to_run();
        }
        *home.state.lock() = HomeState::Parked(slot);
        match result {
            SliceEnd::Preempted => {}
            SliceEnd::Blocked => {
                if wake_now {
                    homes.wake_ref(v, d.is_dom0());
                } else if let Some(dl) = deadline {
                    self.add_sleeper(dl, v);
                }
            }
            SliceEnd::Stopped(reason) if d.is_dom0() => return Some(reason),
            SliceEnd::Stopped(reason) => {
                // A destroy also stops the vCPUs; only a guest's own stop is
                // a shutdown.
                if !d.dying() {
                    d.guest_stopped(reason);
                }
                d.request_stop(reason.code());
                homes.domain_stopping(d.id());
            }
        }
        None
    }

    /// Tells the scheduler that `v` (not running) waits; its timer, if any,
    /// wakes it.
    fn block(&mut self, v: VcpuRef, deadline: Option<u64>) {
        let now = self.homes.now();
        if let Some(Ok(k)) = self.homes.with_sched(|s| s.block(v, now)) {
            self.homes.kick(k);
        }
        if let Some(dl) = deadline {
            self.add_sleeper(dl, v);
        }
    }

    fn add_sleeper(&mut self, deadline: u64, v: VcpuRef) {
        self.sleepers.retain(|&(_, w)| w != v);
        self.sleepers.push((deadline, v));
    }
}

/// Frees a stopped domain's vCPU held in `home` (on the CPU where it is
/// active, or on any CPU when none holds it).
fn release<M: Machine>(home: &VcpuHome<M>) {
    let mut state = home.state.lock();
    match core::mem::replace(&mut *state, HomeState::Released) {
        HomeState::Parked(slot) => {
            slot.vcpu.release();
            home.set_active_on(None);
        }
        HomeState::Running => *state = HomeState::Running, // its CPU frees it
        _ => {}
    }
}
