//! The scheduling policy: which vCPU each physical CPU runs, and for how
//! long. Pure logic, host-tested; the CPUs carry out its decisions.
//!
//! It follows the ideas of Xen's credit2 scheduler, in a simpler form.
//!
//! # Model
//!
//! Domains have a *weight* (1 to 65535, default 256: the relative share of
//! CPU they get when CPUs are contended), a *cap* (the most CPU time all
//! their vCPUs together may use, in percent of one CPU; 0 = none) and can be
//! *paused*. A vCPU has a *hard affinity* (the CPUs it may run on) and is
//! running, runnable, parked (its domain's cap budget is spent), blocked
//! (halted: it uses no CPU and no credit) or paused.
//!
//! Each CPU has a run queue (`runqueue.rs`); every vCPU belongs to one.
//!
//! # How a CPU uses it
//!
//! The CPU asks [`Scheduler::pick`]`(cpu, now)` what to run and gets a
//! [`Decision`]: the vCPU (or none), the time `until` which it may run, and
//! other CPUs to kick. It calls `pick` again at `until` (a slice ends, a cap
//! budget runs out, the rate limit lets a waiting vCPU in, a cap period
//! ends), when it is kicked, and after [`Scheduler::block`] when its vCPU
//! halts. Accounting is folded in: the time from one call to the next is
//! charged to the vCPU the CPU was told to run, so a caller never reports
//! time itself and cannot report it twice.
//!
//! Requests from elsewhere ([`Scheduler::wake`], pausing, affinity and cap
//! changes, removal) return the CPUs to kick ([`CpuSet`]); a kicked CPU
//! calls `pick`. An unneeded kick costs a `pick`, nothing else.
//!
//! # Credit
//!
//! A running vCPU burns credit at a rate inversely proportional to its
//! domain's weight (`credit.rs`), and a CPU runs the vCPU of its queue with
//! the most credit, for at most a slice and at most until its credit is
//! burnt (but at least the rate limit). When the best candidate of a queue
//! has no credit left, *that queue* is reset: each of its vCPUs, whatever
//! its state, gets `min(credit + init, init)` with `init` one slice's
//! worth: debt is carried over (shares stay exact over time), unused credit
//! of a vCPU that slept is clamped (no hoarding). Resets are per queue, as
//! in credit2 (where queues are per socket); a vCPU that migrates takes its
//! credit along, and it never exceeds `init`.
//!
//! # Caps
//!
//! A capped domain's budget (`cap.rs`) is refilled at the start of every
//! period (periods aligned on multiples of the period length since tick 0).
//! A CPU about to run a capped vCPU reserves a chunk of the budget and comes
//! back when it is used up, so the domain's vCPUs on several CPUs can never
//! together overrun; the unused part of a chunk goes back. While the budget
//! is spent the domain's vCPUs are parked; CPUs holding them look again at
//! the period's end, and the first call that refills a spent budget kicks
//! the CPUs queuing the domain's waiting vCPUs and the idle CPUs they may
//! run on (a busy CPU holding one may not look again before its slice ends).
//!
//! # Latency
//!
//! A running vCPU is not preempted before it has run the rate limit,
//! unless it blocks, its domain is paused, its affinity excludes the CPU or
//! its cap budget runs out. A wake with `urgent` (dom0's vCPU with a device
//! interrupt) makes the vCPU the first choice on its CPU: it runs at once if
//! the running vCPU has had the rate limit, else when it has. A woken vCPU
//! with more credit than the running one also preempts it, under the same
//! limit.
//!
//! # Balancing
//!
//! A vCPU that wakes (or is unpaused, or must leave a CPU its affinity no
//! longer allows) goes to the least-loaded CPU it may use (load: vCPUs on
//! the queue that want a CPU), its last CPU when loads are equal. At each
//! `pick`, a CPU with nothing to run pulls a waiting vCPU from the busiest
//! queue holding one it may run, and a busy CPU pulls one from a queue with
//! at least two more. A `pick` that leaves vCPUs waiting kicks idle CPUs
//! that may run them.
//!
//! # Never a panic
//!
//! Unknown ids, bad CPU numbers, out-of-range weights and caps, empty
//! affinities and clocks that go backwards get a [`SchedError`] or change
//! nothing; no arithmetic can overflow.
#![forbid(unsafe_code)]

mod cap;
mod config;
mod cpuset;
mod credit;
mod entry;
mod pick;
mod runqueue;
mod scheduler;
mod types;

pub mod runner;

#[cfg(test)]
mod tests;

pub use config::SchedConfig;
pub use cpuset::{CpuSet, Iter as CpuSetIter, MAX_CPUS};
pub use credit::Credit;
pub use scheduler::Scheduler;
pub use types::{
    Cap, Decision, DomainId, DomainInfo, SchedError, Ticks, VcpuInfo, VcpuRef, VcpuState, Weight,
};
