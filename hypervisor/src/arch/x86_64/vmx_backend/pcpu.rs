//! What a physical CPU does: asks the scheduler ([`crate::sched`]) which
//! vCPU to run and until when, runs it, and tells the scheduler when it
//! halts; when there is nothing to run it waits (interrupts on) for a kick,
//! an interrupt or the next timer of a halted vCPU.
//!
//! dom0's vCPU of this CPU is pinned here; domU vCPUs go wherever the
//! scheduler places them ([`vcpu_homes`]). dom0 keeps its interrupt latency
//! bounded: a device interrupt wakes its vCPU *urgent*, and a domU's stay
//! in the guest ends at the first physical interrupt, so the scheduler sees
//! the wake within the rate limit. Switching vCPUs switches the VMCS and the
//! state VM entries do not ([`GuestContext`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::Ordering;

use super::domu;
use super::guest_context::GuestContext;
use super::setup::EntryState;
use super::vcpu_homes::{self as homes, HomeState, Slot, VcpuHome};
use super::{SliceEnd, StopReason, Vcpu};
use crate::arch::x86_64::{cpu, idt, lapic, percpu};
use crate::logger;
use crate::sched::{Ticks, VcpuRef};
use dom0_abi::ShutdownReason;

/// The longest a vCPU runs without the scheduler looking again, in ms,
/// when the scheduler sets no end (nothing else wants the CPU).
const LONGEST_RUN_MS: u64 = 100;

/// Waits, interrupts enabled, for the next interrupt; with `deadline` (a TSC
/// value) the physical APIC timer makes sure one comes by then.
pub fn wait_for_interrupt(deadline: Option<u64>, apic_khz: u64) {
    if let Some(d) = deadline {
        let now = cpu::rdtsc();
        if d <= now {
            return;
        }
        let khz = logger::tsc_khz().max(1);
        let count = (u128::from(d - now) * u128::from(apic_khz.max(1)) / u128::from(khz))
            .clamp(1, u128::from(u32::MAX)) as u32;
        lapic::start_timer(idt::VECTOR_TIMER, lapic::TimerMode::OneShot, count);
    }
    // sti; hlt as one sequence: the interrupt shadow of STI covers HLT, so an
    // interrupt that arrived after the caller last looked still wakes us.
    // SAFETY: the IDT handles every vector (device vectors are queued for
    // dom0, hypervisor vectors acknowledged); interrupts go off again at once.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// This CPU's view: whose VMCS is current, whose switched state is in the
/// CPU, which VMCSs are active here, and the timers of the vCPUs that
/// halted here.
struct Runner {
    me: usize,
    /// dom0's vCPU of this CPU.
    dom0: Arc<VcpuHome>,
    /// Whose VMCS is current.
    loaded: Option<Arc<VcpuHome>>,
    /// Whose [`GuestContext`] is in the CPU.
    in_cpu: Option<Arc<VcpuHome>>,
    /// vCPUs whose VMCS is active on this CPU.
    active: Vec<Arc<VcpuHome>>,
    /// Halted vCPUs' timer deadlines (TSC), to wake them.
    sleepers: Vec<(u64, VcpuRef)>,
    /// The last [`homes::STOP_GENERATION`] acted on.
    stop_generation: u64,
}

fn same(a: &Option<Arc<VcpuHome>>, b: &Arc<VcpuHome>) -> bool {
    a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b))
}

impl Runner {
    /// Saves the switched state of the vCPU whose state is in the CPU into
    /// its home (it is parked: this CPU does not run it now).
    fn save_context(&mut self) {
        if let Some(prev) = self.in_cpu.take()
            && let HomeState::Parked(slot) = &mut *prev.state.lock()
        {
            slot.context.save();
        }
    }

    /// Clears the VMCS of `home` (parked, active here) so that another CPU
    /// can run it.
    fn flush(&mut self, home: &Arc<VcpuHome>) {
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

    /// Serves other CPUs' requests to clear VMCSs active here.
    fn serve_flushes(&mut self) {
        for h in homes::take_flush_requests() {
            self.flush(&h);
        }
    }

    /// Frees the vCPUs of stopped domains that this CPU holds, and those no
    /// CPU holds; the last reference to a destroyed domain frees its memory.
    fn reap(&mut self) {
        let generation = homes::STOP_GENERATION.load(Ordering::Acquire);
        if generation == self.stop_generation {
            return;
        }
        self.stop_generation = generation;
        let stopping: Vec<Arc<VcpuHome>> = self
            .active
            .iter()
            .filter(|h| !h.domain.is_dom0() && h.domain.stop.load(Ordering::Acquire) != 0)
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
            homes::forget(&h);
        }
        for h in homes::take_orphans() {
            release(&h);
        }
        self.sleepers
            .retain(|(_, v)| v.domain.0 == 0 || homes::home(*v).is_some());
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
            homes::wake_ref(v, v.domain.0 == 0);
        }
    }

    fn next_sleeper(&self) -> Option<u64> {
        self.sleepers.iter().map(|&(d, _)| d).min()
    }

    /// Takes vCPU `home` out to run it here: from another CPU (which clears
    /// it first), or newly created. `None` if it cannot run now.
    fn acquire(&mut self, home: &Arc<VcpuHome>) -> Option<Box<Slot>> {
        while let Some(c) = home.active_on()
            && c != self.me
        {
            homes::request_flush(home, c);
            // Wait, serving requests to this CPU meanwhile.
            loop {
                self.serve_flushes();
                match home.active_on() {
                    Some(c2) if c2 == c => core::hint::spin_loop(),
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
                        home.domain.request_stop(3);
                        homes::domain_stopping(home.domain.id);
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
                let start = start.or_else(|| after_sipi(home));
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
    fn create(&mut self, home: &Arc<VcpuHome>, start: &homes::Start) -> Option<Box<Slot>> {
        let d = &home.domain;
        match Vcpu::new(home.index, d.clone(), &start.0) {
            Ok(mut v) => {
                log::info!("{} vCPU{}: starts on cpu{}", d.label(), home.index, self.me);
                v.regs.rbx = start.1;
                v.regs.rsi = start.2;
                home.set_active_on(Some(self.me));
                self.active.push(home.clone());
                // Vcpu::new made its VMCS current.
                self.loaded = Some(home.clone());
                Some(Box::new(Slot {
                    vcpu: v,
                    context: GuestContext::initial(),
                }))
            }
            Err(e) => {
                log::error!("{} vCPU{}: cannot create it: {e}", d.label(), home.index);
                domu::guest_stopped(d, ShutdownReason::Crash);
                d.request_stop(3);
                homes::domain_stopping(d.id);
                None
            }
        }
    }

    /// Makes `slot` (of `home`, active here) the vCPU the hardware holds.
    fn switch_to(&mut self, home: &Arc<VcpuHome>, slot: &mut Slot) -> Result<(), &'static str> {
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

    /// Runs `home`'s vCPU until `until` (TSC) at the latest. `Some` when
    /// dom0's vCPU here stopped for good.
    fn run_one(&mut self, home: &Arc<VcpuHome>, until: u64) -> Option<StopReason> {
        let d = home.domain.clone();
        let v = home.vref();
        if d.stop.load(Ordering::Acquire) != 0 && !d.is_dom0() {
            return None;
        }
        let Some(mut slot) = self.acquire(home) else {
            if !matches!(*home.state.lock(), HomeState::Released) {
                // A spurious wake of a vCPU that waits for its start.
                block(v, None, self);
            }
            return None;
        };
        if let Err(e) = self.switch_to(home, &mut slot) {
            log::error!("cpu{}: cannot switch to a vCPU: {e}", self.me);
            *home.state.lock() = HomeState::Parked(slot);
            if d.is_dom0() {
                return Some(StopReason::Crash);
            }
            d.request_stop(3);
            homes::domain_stopping(d.id);
            return None;
        }
        let paused = d
            .domu
            .as_ref()
            .is_some_and(|p| !p.lifecycle.lock().is_running());
        if paused || !slot.vcpu.wants_to_run() {
            let deadline = slot.vcpu.wake_deadline();
            *home.state.lock() = HomeState::Parked(slot);
            if !paused {
                block(v, deadline, self);
            }
            return None;
        }
        let now = cpu::rdtsc();
        let longest = logger::tsc_khz().max(1000) * LONGEST_RUN_MS;
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
            let k = homes::with_sched(|s| s.block(v, Ticks(cpu::rdtsc())));
            if let Some(Ok(k)) = k {
                homes::kick(k);
            }
            wake_now = slot.vcpu.wants_to_run();
        }
        *home.state.lock() = HomeState::Parked(slot);
        match result {
            SliceEnd::Preempted => {}
            SliceEnd::Blocked => {
                if wake_now {
                    homes::wake_ref(v, d.is_dom0());
                } else if let Some(dl) = deadline {
                    self.add_sleeper(dl, v);
                }
            }
            SliceEnd::Stopped(reason) if d.is_dom0() => return Some(reason),
            SliceEnd::Stopped(reason) => {
                let why = match reason {
                    StopReason::PowerOff => ShutdownReason::Poweroff,
                    StopReason::Reboot => ShutdownReason::Reboot,
                    StopReason::Crash => ShutdownReason::Crash,
                };
                // A destroy also stops the vCPUs; only a guest's own stop is
                // a shutdown.
                if d.domu
                    .as_ref()
                    .is_some_and(|p| p.lifecycle.lock().state() != dom0_abi::DomainState::Dying)
                {
                    domu::guest_stopped(&d, why);
                }
                d.request_stop(match why {
                    ShutdownReason::Poweroff => 1,
                    ShutdownReason::Reboot => 2,
                    _ => 3,
                });
                homes::domain_stopping(d.id);
            }
        }
        None
    }

    fn add_sleeper(&mut self, deadline: u64, v: VcpuRef) {
        self.sleepers.retain(|&(_, w)| w != v);
        self.sleepers.push((deadline, v));
    }
}

/// Tells the scheduler that `v` (not running) waits; its timer, if any,
/// wakes it.
fn block(v: VcpuRef, deadline: Option<u64>, r: &mut Runner) {
    if let Some(Ok(k)) = homes::with_sched(|s| s.block(v, Ticks(cpu::rdtsc()))) {
        homes::kick(k);
    }
    if let Some(dl) = deadline {
        r.add_sleeper(dl, v);
    }
}

/// The start of an application processor whose INIT and start-up IPI came.
fn after_sipi(home: &VcpuHome) -> Option<homes::Start> {
    let mb = home.domain.mailbox(home.index);
    if !mb.init.load(Ordering::Acquire) {
        return None;
    }
    let sipi = mb.sipi.swap(0, Ordering::AcqRel);
    if sipi == 0 {
        return None;
    }
    mb.init.store(false, Ordering::Release);
    Some((EntryState::after_sipi((sipi - 1) as u8), 0, 0))
}

/// Frees a stopped domain's vCPU held in `home` (on the CPU where its VMCS
/// is active, or on any CPU when none holds it).
fn release(home: &VcpuHome) {
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

/// Runs `first` (dom0's vCPU of this CPU, its VMCS current and its state in
/// the CPU) and whatever domU vCPUs the scheduler gives this CPU, until
/// dom0's vCPU stops for good.
pub fn run(first: Vcpu) -> StopReason {
    homes::join();
    let me = percpu::current_index();
    let apic_khz = first.domain.apic_khz;
    let dom0_ref = VcpuRef::new(0, first.index as u32);
    let dom0 = homes::add_dom0_vcpu(first, GuestContext::initial());
    let mut r = Runner {
        me,
        dom0: dom0.clone(),
        loaded: Some(dom0.clone()),
        in_cpu: Some(dom0.clone()),
        active: alloc::vec![dom0],
        sleepers: Vec::new(),
        stop_generation: homes::STOP_GENERATION.load(Ordering::Acquire),
    };
    loop {
        percpu::current().resched.store(false, Ordering::Release);
        r.serve_flushes();
        r.reap();
        let now = cpu::rdtsc();
        r.wake_sleepers(now);
        if !percpu::current().pending_device_vectors.is_empty()
            || r.dom0.domain.stop.load(Ordering::Acquire) != 0
        {
            homes::wake_ref(dom0_ref, true);
        }
        let decision = homes::with_sched(|s| s.pick(me, Ticks(now)));
        let decision = match decision {
            Some(Ok(d)) => d,
            other => {
                log::error!("cpu{me}: the scheduler cannot decide: {other:?}");
                wait_for_interrupt(r.next_sleeper(), apic_khz);
                continue;
            }
        };
        homes::kick(decision.kick);
        let Some(v) = decision.run else {
            if percpu::current().resched.load(Ordering::Acquire) {
                continue;
            }
            let until = (decision.until != Ticks::NEVER).then_some(decision.until.0);
            let wake_at = match (until, r.next_sleeper()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            wait_for_interrupt(wake_at, apic_khz);
            continue;
        };
        let home = if v == dom0_ref {
            Some(r.dom0.clone())
        } else {
            homes::home(v)
        };
        let Some(home) = home else {
            continue;
        };
        if let Some(stop) = r.run_one(&home, decision.until.0) {
            return stop;
        }
    }
}
