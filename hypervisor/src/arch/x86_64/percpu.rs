//! Per-CPU data, found through the GS base (IA32_GS_BASE) of each CPU.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::cpu::{IA32_GS_BASE, wrmsr};
pub use crate::vcpu::vector_set::VectorSet;

/// The most CPUs the hypervisor drives.
pub const MAX_CPUS: usize = 64;

/// State of one physical CPU.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpu {
    /// Logical index (0 = the boot CPU). Offset 0: read by `current_index`.
    index: AtomicU32,
    /// Local APIC ID.
    pub apic_id: AtomicU32,
    /// Set once the CPU runs Rust code on its own stacks.
    pub online: AtomicBool,
    /// Set once the CPU executed VMXON successfully.
    pub in_vmx_root: AtomicBool,
    /// Set when the CPU gave up during bring-up (the reason is in the log).
    pub failed: AtomicBool,
    /// Set when the CPU stopped after a fault or panic report.
    pub stopped: AtomicBool,
    /// Address of this CPU's TSS (for the VMCS host state).
    pub tss_base: AtomicU64,
    /// Physical device interrupts taken on this CPU, not yet given to dom0.
    pub pending_device_vectors: VectorSet,
    /// Set by whoever wants this CPU to ask the scheduler again (a wake,
    /// a pause, an affinity change, a vCPU to give up): the CPU leaves
    /// the guest at its next exit and calls `pick`.
    pub resched: AtomicBool,
}

impl PerCpu {
    const fn new(index: u32) -> Self {
        Self {
            index: AtomicU32::new(index),
            apic_id: AtomicU32::new(u32::MAX),
            online: AtomicBool::new(false),
            in_vmx_root: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            tss_base: AtomicU64::new(0),
            pending_device_vectors: VectorSet::new(),
            resched: AtomicBool::new(false),
        }
    }
}

static PER_CPU: [PerCpu; MAX_CPUS] = {
    let mut arr = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        arr[i] = PerCpu::new(i as u32);
        i += 1;
    }
    arr
};

/// Points this CPU's GS base at its per-CPU block. Called first thing on
/// every CPU, before any logging.
pub fn install(index: usize, apic_id: u32) {
    let pc = &PER_CPU[index];
    pc.apic_id.store(apic_id, Ordering::Relaxed);
    // SAFETY: IA32_GS_BASE exists on every x86_64 CPU; the hypervisor does not
    // otherwise use GS, and the block is a static that lives forever.
    unsafe { wrmsr(IA32_GS_BASE, pc as *const PerCpu as u64) };
}

/// The index of the CPU running this code.
pub fn current_index() -> usize {
    let index: u32;
    // SAFETY: `install` ran on this CPU before any caller (boot order), so GS
    // points to a live PerCpu whose first field is the index.
    unsafe {
        asm!("mov {:e}, gs:[0]", out(reg) index, options(nostack, readonly, preserves_flags))
    };
    index as usize
}

/// The per-CPU block of CPU `index`.
pub fn get(index: usize) -> &'static PerCpu {
    &PER_CPU[index]
}

/// The per-CPU block of the running CPU.
pub fn current() -> &'static PerCpu {
    &PER_CPU[current_index()]
}
