//! What a physical CPU does with its vCPUs: dom0's vCPU for this CPU first,
//! and the domU vCPUs placed here, each run for a slice at a time; when
//! every vCPU it holds is halted, paused or waiting, the CPU waits
//! (interrupts on) until one has something to do.
//!
//! dom0 keeps priority for its interrupts: when its vCPU wakes from HLT or
//! has a device interrupt or IPI pending it is chosen at once, and a domU
//! slice ends at the first physical interrupt (which may be dom0's).
//! Otherwise the ready vCPUs, dom0's included, take turns. Switching vCPUs switches the VMCS and
//! the state VM entries do not ([`GuestContext`]).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::Ordering;

use super::domu::{self, INBOX, VcpuRequest};
use super::guest_context::GuestContext;
use super::setup::EntryState;
use super::{SliceEnd, StopReason, Vcpu};
use crate::arch::x86_64::{cpu, idt, lapic, percpu};
use crate::logger;
use dom0_abi::ShutdownReason;

/// After how many seconds of halting a dom0 vCPU's state is logged.
const STALL_REPORT_S: u64 = 20;

/// A time slice: 10 ms of TSC ticks.
pub fn slice_ticks() -> u64 {
    logger::tsc_khz().max(1000) * 10
}

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

/// A vCPU held by this CPU.
struct Slot {
    vcpu: Box<Vcpu>,
    context: GuestContext,
}

/// A domU vCPU that waits for its boot vCPU's INIT and start-up IPI.
struct Waiting {
    domain: alloc::sync::Arc<super::domain::Domain>,
    index: usize,
}

/// This CPU's vCPUs and which of them the hardware currently holds.
struct Runner {
    slots: Vec<Slot>,
    waiting: Vec<Waiting>,
    /// Whose VMCS is current.
    loaded: Option<usize>,
    /// Whose [`GuestContext`] is in the CPU.
    in_cpu: Option<usize>,
    /// Round-robin position among the domU slots.
    cursor: usize,
}

impl Runner {
    /// Creates the vCPUs other CPUs asked for, and starts waiting ones whose
    /// start-up IPI came.
    fn take_requests(&mut self) {
        let me = percpu::current_index();
        let requests: Vec<VcpuRequest> = core::mem::take(&mut *INBOX[me].lock());
        for r in requests {
            if r.domain.stop.load(Ordering::Acquire) != 0 {
                continue; // destroyed before it got here
            }
            match r.start {
                Some(start) => self.start(r.domain, r.index, &start),
                None => self.waiting.push(Waiting {
                    domain: r.domain,
                    index: r.index,
                }),
            }
        }
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            let mb = w.domain.mailbox(w.index);
            let sipi = if mb.init.load(Ordering::Acquire) {
                mb.sipi.swap(0, Ordering::AcqRel)
            } else {
                0
            };
            if sipi != 0 {
                mb.init.store(false, Ordering::Release);
                let w = self.waiting.swap_remove(i);
                let start = (EntryState::after_sipi((sipi - 1) as u8), 0, 0);
                self.start(w.domain, w.index, &start);
            } else if w.domain.stop.load(Ordering::Acquire) != 0 {
                self.waiting.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn start(
        &mut self,
        domain: alloc::sync::Arc<super::domain::Domain>,
        index: usize,
        start: &(EntryState, u64, u64),
    ) {
        let id = domain.id;
        match Vcpu::new(index, domain.clone(), &start.0) {
            Ok(mut v) => {
                log::info!(
                    "domain {id} vCPU{index}: runs on cpu{}",
                    percpu::current_index()
                );
                v.regs.rbx = start.1;
                v.regs.rsi = start.2;
                self.slots.push(Slot {
                    vcpu: Box::new(v),
                    context: GuestContext::initial(),
                });
                // Vcpu::new made its VMCS current.
                self.loaded = Some(self.slots.len() - 1);
            }
            Err(e) => {
                log::error!("domain {id} vCPU{index}: cannot create it: {e}");
                domu::guest_stopped(&domain, ShutdownReason::Crash);
            }
        }
    }

    /// Drops the domU vCPUs whose domain is stopping (destroyed, or shut
    /// down); the last reference to a destroyed domain frees its memory.
    fn reap(&mut self) {
        let mut i = 1;
        while i < self.slots.len() {
            if self.slots[i].vcpu.domain.stop.load(Ordering::Acquire) != 0 {
                let slot = self.slots.remove(i);
                slot.vcpu.release();
                for mark in [&mut self.loaded, &mut self.in_cpu] {
                    *mark = match *mark {
                        Some(m) if m == i => None,
                        Some(m) if m > i => Some(m - 1),
                        other => other,
                    };
                }
            } else {
                i += 1;
            }
        }
    }

    /// Whether domU slot `i` may run now.
    fn domu_ready(&mut self, i: usize) -> bool {
        let running = self.slots[i]
            .vcpu
            .domain
            .domu
            .as_ref()
            .is_some_and(|p| p.lifecycle.lock().is_running());
        running && self.slots[i].vcpu.wants_to_run()
    }

    /// The next vCPU to run. dom0's vCPU first when it has an interrupt to
    /// take (it woke from HLT, or a device or IPI is pending for it);
    /// otherwise every ready vCPU, dom0's included, in turn.
    fn choose(&mut self) -> Option<usize> {
        let dom0 = &mut self.slots[0].vcpu;
        let was_blocked = dom0.blocked;
        let pending = !percpu::current().pending_device_vectors.is_empty()
            || !dom0.domain.mailbox(dom0.index).vectors.is_empty();
        let dom0_ready = dom0.wants_to_run();
        if dom0_ready && (was_blocked || pending) {
            self.cursor = 0;
            return Some(0);
        }
        let n = self.slots.len();
        for step in 1..=n {
            let i = (self.cursor + step) % n;
            let ready = if i == 0 {
                dom0_ready
            } else {
                self.domu_ready(i)
            };
            if ready {
                self.cursor = i;
                return Some(i);
            }
        }
        None
    }

    /// The earliest timer deadline of the vCPUs that wait.
    fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| s.vcpu.wake_deadline())
            .min()
    }

    /// Makes slot `i` the one the hardware holds.
    fn switch_to(&mut self, i: usize) -> Result<(), &'static str> {
        if self.loaded != Some(i) {
            self.slots[i].vcpu.make_current()?;
            self.loaded = Some(i);
        }
        if self.in_cpu != Some(i) {
            if let Some(prev) = self.in_cpu {
                self.slots[prev].context.save();
            }
            self.slots[i].context.restore();
            self.in_cpu = Some(i);
        }
        Ok(())
    }
}

/// Runs `first` (dom0's vCPU of this CPU, its VMCS current) and whatever
/// domU vCPUs are placed here, until dom0's vCPU stops for good.
pub fn run(first: Vcpu) -> StopReason {
    let mut r = Runner {
        slots: alloc::vec![Slot {
            vcpu: Box::new(first),
            context: GuestContext::initial()
        }],
        waiting: Vec::new(),
        loaded: Some(0),
        // dom0's state is in the CPU already.
        in_cpu: Some(0),
        cursor: 0,
    };
    // When dom0's vCPU here last ran (or 0: it runs), and whether a long
    // wait was reported: a dom0 vCPU that stays halted for many seconds is
    // worth a look (a lost wake-up shows up as exactly that).
    let mut halted_since = 0u64;
    let mut reported = false;
    loop {
        r.take_requests();
        r.reap();
        let Some(i) = r.choose() else {
            let now = cpu::rdtsc();
            if halted_since == 0 {
                halted_since = now;
            } else if !reported
                && now.wrapping_sub(halted_since) > STALL_REPORT_S * logger::tsc_khz().max(1) * 1000
            {
                reported = true;
                log::info!(
                    "cpu{}: dom0's vCPU here has been halted for {STALL_REPORT_S} s",
                    percpu::current_index()
                );
                if r.loaded == Some(0) {
                    super::exits::log_vcpu_state(&mut r.slots[0].vcpu);
                }
            }
            let apic_khz = r.slots[0].vcpu.domain.apic_khz;
            wait_for_interrupt(r.next_deadline(), apic_khz);
            continue;
        };
        if i == 0 {
            halted_since = 0;
            reported = false;
        }
        if let Err(e) = r.switch_to(i) {
            log::error!(
                "cpu{}: cannot switch to a vCPU: {e}",
                percpu::current_index()
            );
            if i == 0 {
                return StopReason::Crash;
            }
            r.slots[i].vcpu.domain.request_stop(3);
            continue;
        }
        let others = r.slots.len() > 1;
        let slice = if others {
            slice_ticks()
        } else {
            slice_ticks() * 10
        };
        match r.slots[i].vcpu.run_slice(slice) {
            SliceEnd::Blocked | SliceEnd::Preempted => {}
            SliceEnd::Stopped(reason) if i == 0 => return reason,
            SliceEnd::Stopped(reason) => {
                let d = r.slots[i].vcpu.domain.clone();
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
            }
        }
    }
}
