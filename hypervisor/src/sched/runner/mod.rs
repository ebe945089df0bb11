//! The CPUs' side of scheduling, without a vendor in it: where every vCPU
//! waits while no CPU runs it ([`homes`]), and the loop each physical CPU
//! runs ([`cpu_loop`]): ask the policy ([`crate::sched::Scheduler`]) what to
//! run, take the vCPU out of its home (from the CPU that holds it, if
//! another), run it, tell the policy when it halts, and wait when there is
//! nothing to run.
//!
//! A backend (VT-x today: `arch/x86_64/vmx_backend/`) supplies the vCPU
//! ([`RunVcpu`]), its domain ([`RunDomain`]), the state VM entries do not
//! switch ([`SwitchedState`]), the machine-wide operations ([`Machine`]:
//! time, kicks) and each CPU's own ([`ThisCpu`]: its flags, its wait). The
//! loop is generic over them (monomorphic: no indirection per slice), so
//! it runs on the host against fakes (`tests.rs`). Like the rest of
//! `sched`, it has no `unsafe`.

pub mod cpu_loop;
pub mod homes;

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use core::fmt::Display;

pub use cpu_loop::Runner;
pub use homes::{HomeState, Homes, Slot, VcpuHome};

/// The longest a vCPU runs without the scheduler looking again, in ms,
/// when the scheduler sets no end (nothing else wants the CPU).
pub const LONGEST_RUN_MS: u64 = 100;

/// Why [`RunVcpu::run_slice`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceEnd {
    /// The guest halted: it waits for an interrupt.
    Blocked,
    /// Its time slice is used up (or the CPU was asked to look again).
    Preempted,
    /// It stopped for good.
    Stopped(StopReason),
}

/// Why a vCPU stopped running for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The guest powered the machine off.
    PowerOff,
    /// The guest asked for a reset.
    Reboot,
    /// The guest crashed (triple fault, invalid state); details were logged.
    Crash,
}

impl StopReason {
    /// The code [`RunDomain::request_stop`] records for it.
    pub fn code(self) -> u8 {
        match self {
            StopReason::PowerOff => 1,
            StopReason::Reboot => 2,
            StopReason::Crash => 3,
        }
    }
}

/// A domain, as the homes and the loop see it.
pub trait RunDomain: Send + Sync + 'static {
    /// How a vCPU that never ran starts (entry state and registers).
    type Start: Send;

    /// Its id; 0 is dom0.
    fn id(&self) -> u32;
    /// Whether it is dom0 (whose vCPU `i` is pinned to CPU `i`).
    fn is_dom0(&self) -> bool {
        self.id() == 0
    }
    /// Its name in log lines.
    fn label(&self) -> impl Display;
    /// Its number of vCPUs.
    fn vcpus(&self) -> usize;
    /// Whether it was asked to stop for good.
    fn stopping(&self) -> bool;
    /// Asks it to stop for good: 1 power-off, 2 reboot, 3 crash.
    fn request_stop(&self, code: u8);
    /// Whether its lifecycle keeps its vCPUs off the CPUs (a paused domU).
    fn held(&self) -> bool;
    /// Whether a stop of its vCPUs is not the guest's own to record: it is
    /// being destroyed, or it has no lifecycle to record it in (dom0).
    fn dying(&self) -> bool;
    /// Records that the guest itself stopped (shutdown or crash); the loop
    /// calls it unless [`RunDomain::dying`].
    fn guest_stopped(&self, why: StopReason);
    /// The start of vCPU `index` if its INIT and start-up IPI came (and
    /// consumes them).
    fn start_after_sipi(&self, index: usize) -> Option<Self::Start>;
}

/// The state a VM entry does not switch, saved and restored when another
/// vCPU takes the CPU.
pub trait SwitchedState: Send + 'static {
    /// What a vCPU starts with.
    fn initial() -> Self;
    /// Copies the CPU's state into `self`.
    fn save(&mut self);
    /// Puts `self` into the CPU.
    fn restore(&self);
}

/// A vCPU, as the loop sees it. A vCPU's hardware state (a VMCS, a VMCB) is
/// *active* on at most one CPU; the loop calls [`RunVcpu::leave_cpu`] there
/// before [`RunVcpu::arrive_here`] anywhere else.
pub trait RunVcpu: Send + Sized + 'static {
    /// Its domain.
    type Domain: RunDomain;
    /// Its switched state.
    type Context: SwitchedState;
    /// Why it cannot be created.
    type Error: Display;

    /// Creates a vCPU that never ran, on this CPU, and makes it current.
    fn create(
        index: usize,
        domain: &Arc<Self::Domain>,
        start: &<Self::Domain as RunDomain>::Start,
    ) -> Result<Self, Self::Error>;
    /// Its index in its domain.
    fn index(&self) -> usize;
    /// Its domain.
    fn domain(&self) -> &Arc<Self::Domain>;
    /// Makes it the current one on this CPU, where it is active already.
    fn make_current(&self) -> Result<(), &'static str>;
    /// Gives up this CPU's copy of its state, so that another CPU can load
    /// it.
    fn leave_cpu(&mut self) -> Result<(), &'static str>;
    /// Loads it on this CPU after it left another one.
    fn arrive_here(&mut self) -> Result<(), &'static str>;
    /// Runs it (current here) for at most `budget` ticks.
    fn run_slice(&mut self, budget: u64) -> SliceEnd;
    /// Whether it has something to do (not halted, or an interrupt, a
    /// timer or a stop came); clears the halt if so.
    fn wants_to_run(&mut self) -> bool;
    /// When its timer fires, if armed (ticks).
    fn wake_deadline(&self) -> Option<u64>;
    /// Frees it, on the CPU where it is active (or on any if none).
    fn release(self);
}

/// What the homes need of the machine.
pub trait Machine: Send + Sync + 'static {
    /// The vCPUs it runs.
    type Vcpu: RunVcpu;

    /// The time now, in ticks (the TSC on x86).
    fn now(&self) -> u64;
    /// Ticks per millisecond.
    fn ticks_per_ms(&self) -> u64;
    /// The CPUs brought online.
    fn online_cpus(&self) -> usize;
    /// The CPU this runs on.
    fn this_cpu(&self) -> usize;
    /// Asks `cpu` to look at the scheduler again: sets its flag and, if it
    /// is another CPU, interrupts it.
    fn kick(&self, cpu: usize);
    /// Interrupts `cpu` (another CPU), out of its guest.
    fn interrupt(&self, cpu: usize);
}

/// What the loop needs of the CPU it runs on.
pub trait ThisCpu {
    /// Clears this CPU's "look again" flag.
    fn clear_resched(&self);
    /// Whether someone asked this CPU to look again.
    fn resched(&self) -> bool;
    /// Waits, interrupts on, for an interrupt; by `deadline` (ticks) at the
    /// latest.
    fn wait_for_interrupt(&self, deadline: Option<u64>);
    /// Whether device interrupts wait here for dom0's vCPU.
    fn device_interrupts_pending(&self) -> bool;
    /// Pauses while waiting for another CPU.
    fn relax(&self) {
        core::hint::spin_loop();
    }
}

/// The domain of a machine's vCPUs.
pub type DomainOf<M> = <<M as Machine>::Vcpu as RunVcpu>::Domain;
/// The start of a machine's never-run vCPUs.
pub type StartOf<M> = <DomainOf<M> as RunDomain>::Start;
