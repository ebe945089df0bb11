//! A physical CPU under the neutral loop ([`crate::sched::runner`]): the
//! VT-x vCPU as the loop sees it ([`RunVcpu`]: its VMCS made current,
//! cleared and loaded elsewhere), its switched state ([`GuestContext`]),
//! its domain ([`RunDomain`]: lifecycle, INIT/SIPI start) and this CPU's
//! flags and wait (`sti; hlt` with the APIC timer armed).

use alloc::sync::Arc;
use core::arch::asm;
use core::sync::atomic::Ordering;

use super::domain::Domain;
use super::domu;
use super::guest_context::GuestContext;
use super::setup::EntryState;
use super::vcpu_homes::{HOMES, Start};
use super::{SliceEnd, StopReason, Vcpu};
use crate::arch::x86_64::{cpu, idt, lapic, percpu};
use crate::logger;
use crate::sched::runner::{RunDomain, RunVcpu, Runner, SwitchedState, ThisCpu};
use dom0_abi::{DomainState, ShutdownReason};

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

/// The CPU this runs on, with the APIC timer's rate.
#[derive(Debug)]
struct VmxCpu {
    apic_khz: u64,
}

impl ThisCpu for VmxCpu {
    fn clear_resched(&self) {
        percpu::current().resched.store(false, Ordering::Release);
    }

    fn resched(&self) -> bool {
        percpu::current().resched.load(Ordering::Acquire)
    }

    fn wait_for_interrupt(&self, deadline: Option<u64>) {
        wait_for_interrupt(deadline, self.apic_khz);
    }

    fn device_interrupts_pending(&self) -> bool {
        !percpu::current().pending_device_vectors.is_empty()
    }
}

impl RunDomain for Domain {
    type Start = Start;

    fn id(&self) -> u32 {
        self.id
    }

    fn is_dom0(&self) -> bool {
        Domain::is_dom0(self)
    }

    fn label(&self) -> impl core::fmt::Display {
        Domain::label(self)
    }

    fn vcpus(&self) -> usize {
        Domain::vcpus(self)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire) != 0
    }

    fn request_stop(&self, code: u8) {
        Domain::request_stop(self, code);
    }

    fn held(&self) -> bool {
        self.domu
            .as_ref()
            .is_some_and(|p| !p.lifecycle.lock().is_running())
    }

    fn dying(&self) -> bool {
        // dom0 has no lifecycle to record a stop in: as if dying.
        self.domu
            .as_ref()
            .is_none_or(|p| p.lifecycle.lock().state() == DomainState::Dying)
    }

    fn guest_stopped(&self, why: StopReason) {
        let why = match why {
            StopReason::PowerOff => ShutdownReason::Poweroff,
            StopReason::Reboot => ShutdownReason::Reboot,
            StopReason::Crash => ShutdownReason::Crash,
        };
        domu::guest_stopped(self, why);
    }

    /// The start of an application processor whose INIT and start-up IPI
    /// came.
    fn start_after_sipi(&self, index: usize) -> Option<Start> {
        let mb = self.mailbox(index);
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
}

impl SwitchedState for GuestContext {
    fn initial() -> Self {
        GuestContext::initial()
    }

    fn save(&mut self) {
        GuestContext::save(self);
    }

    fn restore(&self) {
        GuestContext::restore(self);
    }
}

impl RunVcpu for Vcpu {
    type Domain = Domain;
    type Context = GuestContext;
    type Error = &'static str;

    fn create(index: usize, domain: &Arc<Domain>, start: &Start) -> Result<Self, &'static str> {
        let mut v = Vcpu::new(index, domain.clone(), &start.0)?;
        v.regs.rbx = start.1;
        v.regs.rsi = start.2;
        Ok(v)
    }

    fn index(&self) -> usize {
        self.index
    }

    fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    fn make_current(&self) -> Result<(), &'static str> {
        Vcpu::make_current(self)
    }

    fn leave_cpu(&mut self) -> Result<(), &'static str> {
        Vcpu::leave_cpu(self)
    }

    fn arrive_here(&mut self) -> Result<(), &'static str> {
        Vcpu::arrive_here(self)
    }

    #[inline]
    fn run_slice(&mut self, budget: u64) -> SliceEnd {
        Vcpu::run_slice(self, budget)
    }

    fn wants_to_run(&mut self) -> bool {
        Vcpu::wants_to_run(self)
    }

    fn wake_deadline(&self) -> Option<u64> {
        Vcpu::wake_deadline(self)
    }

    fn release(self) {
        Vcpu::release(self);
    }
}

/// Runs `first` (dom0's vCPU of this CPU, its VMCS current and its state in
/// the CPU) and whatever domU vCPUs the scheduler gives this CPU, until
/// dom0's vCPU stops for good.
pub fn run(first: Vcpu) -> StopReason {
    let me = percpu::current_index();
    let cpu = VmxCpu {
        apic_khz: first.domain.apic_khz,
    };
    Runner::new(&HOMES, cpu, me, first).run()
}
