//! State shared by all vCPUs of a domain: its EPT, bitmaps, APIC-access page,
//! the mailboxes through which vCPUs on other CPUs receive interrupts
//! ([`crate::domains::mailbox`]), and the exit statistics.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::vlapic::{ApicMode, Destination};

use crate::domains::irq_route::VcpuAddressing;
use crate::domains::mailbox::Addressing;
use crate::domains::mailbox::Mailbox;
use crate::mm::addr::HostPhysAddr;
use crate::vcpu::debug_keys::KeySequence;
use crate::vcpu::stats::ExitStats;
use crate::vcpu::vector_set::VectorSet;
use crate::vmx::caps::VmxCaps;
use crate::vmx::exit::ExitReason;

/// A domain's name in log lines.
#[derive(Debug, Clone, Copy)]
pub struct Label(u32);

impl core::fmt::Display for Label {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == 0 {
            f.write_str("dom0")
        } else {
            write!(f, "domain {}", self.0)
        }
    }
}

/// A domain as the VT-x backend sees it.
#[derive(Debug)]
pub struct Domain {
    /// The CPU's VMX capabilities.
    pub vmx: VmxCaps,
    /// EPT pointer (SDM §25.6.11).
    pub eptp: u64,
    /// The APIC-access page (SDM §30.4).
    pub apic_access: HostPhysAddr,
    /// The MSR bitmap.
    pub msr_bitmap: HostPhysAddr,
    /// I/O bitmaps A and B (consecutive frames).
    pub io_bitmap: HostPhysAddr,
    /// First VPID.
    pub vpid_base: u16,
    /// Local APIC timer input frequency the guest is told about, kHz.
    pub apic_khz: u64,
    /// ACPI PM1a control port (trapped: power-off goes through us).
    pub pm1a_cnt: u16,
    /// S5 sleep type from the DSDT.
    pub s5_type: Option<u8>,
    apic_ids: Vec<u32>,
    mailboxes: Vec<Mailbox>,
    stats: Vec<ExitStats>,
    device_vectors: VectorSet,
    /// Set once any vCPU stopped the domain; 1 = power off, 2 = reboot, 3 = crash.
    pub stop: AtomicU8,
    /// Memory the domain must not see, once its EPT maps it to all-ones.
    pub hidden: spin::Mutex<Option<super::hidden::HiddenMemory>>,
    /// Bumped whenever a live EPT entry changes: each vCPU flushes its EPT
    /// translations before entering when it has not seen the latest value.
    pub ept_generation: AtomicU64,
    /// The domain's RAM, `[start, end)` guest-physical, set once when built:
    /// where its hypercall pointers may point.
    pub ram: spin::Once<Vec<(u64, u64)>>,
    /// TSC ticks its vCPUs spent in the guest, all together.
    pub guest_ticks: AtomicU64,
    /// Debug keys typed on the console it shares with the hypervisor.
    pub keys: spin::Mutex<KeySequence>,
    /// vCPUs asked to print their state at their next exit (bit i: vCPU i).
    pub dump_requested: AtomicU64,
    /// Its id (0: dom0).
    pub id: u32,
    /// What only a domU has (its memory, lifecycle, devices).
    pub domu: Option<super::domu_parts::DomuParts>,
}

impl Domain {
    /// Creates the domain description; `apic_ids[i]` is vCPU i's APIC ID.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vmx: VmxCaps,
        eptp: u64,
        apic_access: HostPhysAddr,
        msr_bitmap: HostPhysAddr,
        io_bitmap: HostPhysAddr,
        apic_khz: u64,
        pm1a_cnt: u16,
        s5_type: Option<u8>,
        apic_ids: Vec<u32>,
        cpus: usize,
    ) -> Domain {
        let n = apic_ids.len();
        Domain {
            vmx,
            eptp,
            apic_access,
            msr_bitmap,
            io_bitmap,
            vpid_base: 1,
            apic_khz,
            pm1a_cnt,
            s5_type,
            apic_ids,
            mailboxes: (0..n).map(|_| Mailbox::new()).collect(),
            stats: (0..cpus).map(|_| ExitStats::new()).collect(),
            device_vectors: VectorSet::new(),
            stop: AtomicU8::new(0),
            hidden: spin::Mutex::new(None),
            ept_generation: AtomicU64::new(0),
            ram: spin::Once::new(),
            guest_ticks: AtomicU64::new(0),
            keys: spin::Mutex::new(KeySequence::new()),
            dump_requested: AtomicU64::new(0),
            id: 0,
            domu: None,
        }
    }

    /// How log lines name it: `dom0` or `domain N`.
    pub fn label(&self) -> Label {
        Label(self.id)
    }

    /// Whether this is dom0 (which owns the platform's devices).
    pub fn is_dom0(&self) -> bool {
        self.domu.is_none()
    }

    /// The domain's RAM ranges (empty until set).
    pub fn ram(&self) -> &[(u64, u64)] {
        self.ram.get().map_or(&[], |r| r.as_slice())
    }

    /// Number of physical CPUs the statistics cover.
    pub fn cpus(&self) -> usize {
        self.stats.len()
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.apic_ids.len()
    }

    /// The APIC ID of vCPU `i`.
    pub fn vcpu_apic_id(&self, i: usize) -> u32 {
        self.apic_ids[i]
    }

    /// The vCPU with APIC ID `id`.
    pub fn vcpu_by_apic_id(&self, id: u32) -> Option<usize> {
        self.apic_ids.iter().position(|&a| a == id)
    }

    /// vCPU `i`'s mailbox.
    pub fn mailbox(&self, i: usize) -> &Mailbox {
        &self.mailboxes[i]
    }

    /// Exit statistics of physical CPU `cpu`.
    pub fn stats(&self, cpu: usize) -> &ExitStats {
        &self.stats[cpu.min(self.stats.len() - 1)]
    }

    /// Every CPU's statistics.
    pub fn all_stats(&self) -> impl Iterator<Item = (usize, &ExitStats)> {
        self.stats.iter().enumerate()
    }

    /// Records that `v` came from a physical device (its EOI must reach the
    /// physical APIC).
    pub fn mark_device_vector(&self, v: u8) {
        self.device_vectors.set(v);
    }

    /// Whether `v` came from a physical device.
    pub fn is_device_vector(&self, v: u8) -> bool {
        self.device_vectors.contains(v)
    }

    /// The EOI-exit bitmap for device vectors.
    pub fn device_vectors_eoi_exit(&self) -> [u64; 4] {
        self.device_vectors.words()
    }

    /// Logs the VM-exit counts per CPU and reason under `title`.
    pub fn log_exit_stats(&self, title: &str) {
        self.log_exit_stats_to(title, module_path!());
    }

    /// [`Self::log_exit_stats`] with log target `target` (such as
    /// [`crate::logger::RING_ONLY`]).
    pub fn log_exit_stats_to(&self, title: &str, target: &str) {
        log::info!(target: target, "{title} (count, average handling ticks):");
        for (cpu, stats) in self.all_stats() {
            let total = stats.total();
            if total == 0 {
                continue;
            }
            log::info!(target: target, "  cpu{cpu}: {total} exits");
            for (reason, count, ticks) in stats.entries() {
                let name = ExitReason::from_basic(reason as u16).map_or("unknown", |r| r.name());
                log::info!(
                    target: target,
                    "    {:>3} {:<28} {:>10} {:>8}",
                    reason,
                    name,
                    count,
                    ticks / count.max(1)
                );
            }
        }
    }

    /// Publishes vCPU `i`'s addressing (see [`Addressing`]).
    pub fn publish_addressing(&self, i: usize, mode: ApicMode, dfr_model: u32, ldr: u32) {
        self.mailboxes[i].publish(Addressing::new(mode, dfr_model, ldr));
    }

    /// Whether vCPU `i` is named by `dest`, from its published addressing
    /// ([`Addressing::matches`]).
    pub fn matches(&self, i: usize, dest: &Destination) -> bool {
        VcpuAddressing::names(self, i, dest)
    }

    /// Asks every vCPU to stop with `code`.
    pub fn request_stop(&self, code: u8) {
        let _ = self
            .stop
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// What interrupt routing ([`crate::domains::irq_route`]) reads: the APIC
/// IDs and the addressing published in the mailboxes.
impl VcpuAddressing for Domain {
    fn vcpus(&self) -> usize {
        self.apic_ids.len()
    }
    fn apic_id(&self, i: usize) -> u32 {
        self.apic_ids[i]
    }
    fn addressing(&self, i: usize) -> Addressing {
        self.mailboxes[i].addressing()
    }
}
