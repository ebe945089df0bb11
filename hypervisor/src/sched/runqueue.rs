//! One physical CPU's run queue: the vCPUs that call it home, and which of
//! them the CPU is running since when.
//!
//! Every vCPU belongs to exactly one queue at all times, whatever its state
//! (a blocked vCPU stays with the CPU it last ran on, which is where its
//! cache is warm). A running vCPU always belongs to the queue of the CPU
//! running it; it only moves when it is not running.

use alloc::vec::Vec;

use super::types::{Ticks, VcpuRef};

/// A CPU's queue and what it runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunQueue {
    /// The vCPUs whose home this CPU is, in arrival order.
    pub(crate) members: Vec<VcpuRef>,
    /// The vCPU the CPU was last told to run.
    pub(crate) current: Option<VcpuRef>,
    /// When `current` was switched in (for the rate limit).
    pub(crate) run_start: Ticks,
    /// Up to when `current`'s time has been accounted.
    pub(crate) charged_to: Ticks,
}

impl RunQueue {
    /// Makes `v` a member.
    pub(crate) fn add(&mut self, v: VcpuRef) {
        if !self.members.contains(&v) {
            self.members.push(v);
        }
    }

    /// Takes `v` out (and off the CPU if it was current).
    pub(crate) fn remove(&mut self, v: VcpuRef) {
        self.members.retain(|&m| m != v);
        if self.current == Some(v) {
            self.current = None;
        }
    }

    /// Whether the CPU runs nothing.
    pub(crate) fn idle(&self) -> bool {
        self.current.is_none()
    }
}
