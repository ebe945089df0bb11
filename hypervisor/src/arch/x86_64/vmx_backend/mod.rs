//! The VT-x backend: one `Vcpu` per guest CPU, its VMCS, the VM entry/exit
//! loop, and the translation of VM exits into the generic handling in
//! `crate::vcpu`. Only this module (and `vmcs.rs`) touches VMX state.

mod apic_page;
pub mod domain;
pub mod domu;
mod domu_irq;
mod domu_mmio;
mod domu_parts;
mod exits;
mod guest_context;
mod guest_cpu;
pub mod hidden;
mod hypercalls;
pub mod notify;
pub mod pcpu;
pub mod setup;
pub mod vcpu_homes;

use crate::arch::x86_64::vmcs::{self, Vmcs};
use crate::arch::x86_64::{cpu, percpu};
use crate::logger;
use crate::mm::addr::HostPhysAddr;
use crate::mm::frames;
use crate::vcpu::vid_guard::{self, GuestWindow};
use crate::vlapic::{VLapic, VLapicConfig};
use crate::vmx::exit::EntryInterruption;
use crate::vmx::fields::{Field16 as F16, Field32 as F32, Field64 as F64, FieldNat as FN};
use alloc::sync::Arc;
use core::arch::global_asm;

use domain::Domain;
use setup::{Controls, EntryState, VcpuPages};

global_asm!(include_str!("../vmrun.S"), options(att_syntax));

unsafe extern "C" {
    fn vmx_run(regs: *mut GuestRegs, launched: u64) -> u64;
    fn vmx_exit();
}

/// The guest's general-purpose registers that VMX does not save (RSP and RIP
/// live in the VMCS). Layout shared with vmrun.S.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GuestRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

const _: () = assert!(core::mem::offset_of!(GuestRegs, rdi) == 40);
const _: () = assert!(core::mem::offset_of!(GuestRegs, r15) == 112);

impl GuestRegs {
    /// The register numbered as in exit qualifications (SDM Table 28-3: 0 = RAX
    /// ... 15 = R15; 4 = RSP lives in the VMCS).
    pub fn get(&self, n: u8) -> u64 {
        match n & 15 {
            0 => self.rax,
            1 => self.rcx,
            2 => self.rdx,
            3 => self.rbx,
            4 => vmcs::read(FN::GuestRsp),
            5 => self.rbp,
            6 => self.rsi,
            7 => self.rdi,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            _ => self.r15,
        }
    }

    /// Sets register `n` (numbering as in `get`).
    pub fn set(&mut self, n: u8, v: u64) {
        match n & 15 {
            0 => self.rax = v,
            1 => self.rcx = v,
            2 => self.rdx = v,
            3 => self.rbx = v,
            4 => vmcs::write(FN::GuestRsp, v),
            5 => self.rbp = v,
            6 => self.rsi = v,
            7 => self.rdi = v,
            8 => self.r8 = v,
            9 => self.r9 = v,
            10 => self.r10 = v,
            11 => self.r11 = v,
            12 => self.r12 = v,
            13 => self.r13 = v,
            14 => self.r14 = v,
            _ => self.r15 = v,
        }
    }
}

/// One virtual CPU, bound to the physical CPU that runs it.
#[derive(Debug)]
pub struct Vcpu {
    /// Index within its domain.
    pub index: usize,
    /// Its domain.
    pub domain: Arc<Domain>,
    /// Owned for its lifetime: the CPU keeps using the region while the
    /// vCPU exists (it is current on this CPU).
    _vmcs: Vmcs,
    /// Saved general registers.
    pub regs: GuestRegs,
    launched: bool,
    /// Its local APIC.
    pub vlapic: VLapic,
    vapic_page: HostPhysAddr,
    controls: Controls,
    /// The domain's EPT generation this CPU's translations reflect.
    ept_generation: u64,
    /// Halted (HLT) until an interrupt is pending for it.
    pub blocked: bool,
    /// Single-stepping a write to hidden memory (see [`hidden`]).
    pub stepping: bool,
    /// The EOI-exit bitmap the vLAPIC and the domain ask for (level-triggered
    /// vectors, dom0's device vectors), and what the VMCS holds now (that,
    /// plus the exits [`vid_guard::gate`] asked for).
    eoi_exit_base: [u64; 4],
    eoi_exit_written: [u64; 4],
    /// A pending vector is kept out of RVI (see [`vid_guard::Gate::held`]).
    vid_held: bool,
}

pub use crate::sched::runner::{SliceEnd, StopReason};

impl Vcpu {
    /// Creates the vCPU's VMCS on the running CPU and loads it.
    pub fn new(
        index: usize,
        domain: Arc<Domain>,
        start: &EntryState,
    ) -> Result<Self, &'static str> {
        let revision = domain.vmx.vmcs_revision();
        let vmcs = Vmcs::new(revision).ok_or("out of memory for a VMCS")?;
        vmcs.load().map_err(|_| "VMPTRLD failed")?;
        let vapic_page =
            frames::allocate().map_err(|_| "out of memory for the virtual-APIC page")?;
        apic_page::zero(vapic_page);
        let pages = VcpuPages {
            io_bitmap: domain.io_bitmap.as_u64(),
            msr_bitmap: domain.msr_bitmap.as_u64(),
            virtual_apic: vapic_page.as_u64(),
            apic_access: domain.apic_access.as_u64(),
            eptp: domain.eptp,
        };
        let vpid = (domain.vpid_base + index as u16).max(1);
        let controls =
            setup::controls_and_host(&domain.vmx.msrs, &pages, vpid, vmx_exit as *const () as u64)?;
        setup::guest_state(start);
        let apic_id = domain.vcpu_apic_id(index);
        let mut cfg = VLapicConfig::new(apic_id, index == 0, logger::tsc_khz(), domain.apic_khz);
        cfg.x2apic = cpu::has_x2apic();
        let vlapic = VLapic::new(cfg);
        let ept_generation = domain
            .ept_generation
            .load(core::sync::atomic::Ordering::Acquire);
        let mut v = Self {
            index,
            domain,
            _vmcs: vmcs,
            regs: GuestRegs::default(),
            launched: false,
            vlapic,
            vapic_page,
            controls,
            ept_generation,
            blocked: false,
            stepping: false,
            eoi_exit_base: [0; 4],
            eoi_exit_written: [0; 4],
            vid_held: false,
        };
        v.sync_vlapic_to_page();
        Ok(v)
    }

    fn has_vid(&self) -> bool {
        self.controls.proc2 & setup::PROC2_VIRTUAL_INTERRUPT_DELIVERY != 0
    }

    /// Copies the vLAPIC state into the virtual-APIC page and the VMCS
    /// interrupt-status and EOI-exit fields.
    fn sync_vlapic_to_page(&mut self) {
        apic_page::store(self.vapic_page, &self.vlapic);
        let now = cpu::rdtsc();
        let (dfr, ldr) = match self.vlapic.mode() {
            crate::vlapic::ApicMode::X2Apic => (0, self.vlapic.x2apic_ldr()),
            _ => (
                self.vlapic.mmio_read(0xE0, now) >> 28,
                self.vlapic.mmio_read(0xD0, now),
            ),
        };
        self.domain
            .publish_addressing(self.index, self.vlapic.mode(), dfr, ldr);
        if self.has_vid() {
            vmcs::write(
                F16::GuestInterruptStatus,
                u64::from(self.vlapic.guest_interrupt_status()),
            );
            let eoi = self.vlapic.eoi_exit_bitmap();
            // Physical device vectors need the guest's EOI to reach the real APIC.
            let dev = self.domain.device_vectors_eoi_exit();
            self.eoi_exit_base = core::array::from_fn(|i| eoi[i] | dev[i]);
            self.write_eoi_exits(self.eoi_exit_base);
            self.vid_held = false;
        } else {
            vmcs::write(F32::TprThreshold, u64::from(self.vlapic.tpr_threshold()));
        }
    }

    fn write_eoi_exits(&mut self, bits: [u64; 4]) {
        for (i, f) in [
            F64::EoiExitBitmap0,
            F64::EoiExitBitmap1,
            F64::EoiExitBitmap2,
            F64::EoiExitBitmap3,
        ]
        .into_iter()
        .enumerate()
        {
            vmcs::write(f, bits[i]);
        }
        self.eoi_exit_written = bits;
    }

    /// Sets or clears interrupt-window exiting (SDM Vol. 3C §26.7.5).
    fn set_window_exiting(&mut self, on: bool) {
        let proc = if on {
            self.controls.proc | setup::PROC_INTERRUPT_WINDOW_EXITING
        } else {
            self.controls.proc & !setup::PROC_INTERRUPT_WINDOW_EXITING
        };
        if proc != self.controls.proc {
            self.controls.proc = proc;
            vmcs::write(F32::ProcBasedControls, u64::from(proc));
        }
    }

    /// The last step before every VM entry under virtual-interrupt delivery:
    /// shows the CPU only a virtual interrupt the guest can take now, and
    /// arranges the window or EOI exits that bring the rest
    /// ([`vid_guard`]). RVI is the highest vector of the virtual IRR unless
    /// the last gate held one back, so RVI = 0 with nothing held means
    /// nothing is pending, the common case, decided with one VMREAD.
    fn gate_virtual_interrupts(&mut self) {
        let status = vmcs::read(F16::GuestInterruptStatus) as u16;
        let window_on = self.controls.proc & setup::PROC_INTERRUPT_WINDOW_EXITING != 0;
        if status & 0xFF == 0
            && !self.vid_held
            && !window_on
            && self.eoi_exit_written == self.eoi_exit_base
        {
            return;
        }
        self.sync_vlapic_from_page();
        let window = GuestWindow::from_guest_state(
            vmcs::read(FN::GuestRflags),
            vmcs::read(F32::GuestInterruptibilityState) as u32,
            vmcs::read(F32::EntryInterruptionInfo) as u32,
        );
        let gate = vid_guard::gate(window, &self.vlapic);
        if gate.interrupt_status() != status {
            vmcs::write(
                F16::GuestInterruptStatus,
                u64::from(gate.interrupt_status()),
            );
        }
        let eoi: [u64; 4] = core::array::from_fn(|i| self.eoi_exit_base[i] | gate.eoi_exits[i]);
        if eoi != self.eoi_exit_written {
            self.write_eoi_exits(eoi);
        }
        self.set_window_exiting(gate.window_exiting);
        self.vid_held = gate.held;
    }

    /// Reads back what the hardware changed in the virtual-APIC page (TPR,
    /// IRR/ISR after virtual-interrupt delivery and virtual EOIs).
    fn sync_vlapic_from_page(&mut self) {
        apic_page::load(self.vapic_page, &mut self.vlapic);
    }

    /// Frees the vCPU's VMCS and virtual-APIC page (on its own CPU, where
    /// the VMCS was last current).
    pub fn release(self) {
        let _ = self._vmcs.clear();
        for frame in [self._vmcs.phys(), self.vapic_page] {
            crate::canaries::returned(frame, 1);
        }
        let mut fa = crate::mm::frames::FRAMES.lock();
        for frame in [self._vmcs.phys(), self.vapic_page] {
            if fa.free(frame, crate::mm::addr::FrameCount::new(1)).is_err() {
                log::error!("vCPU teardown: frame {frame} was not allocated");
            }
        }
    }

    /// Makes this vCPU's VMCS the current one on this CPU, where it is
    /// active already (it last ran here and was not cleared since).
    pub fn make_current(&self) -> Result<(), &'static str> {
        self._vmcs.load().map_err(|_| "VMPTRLD failed")
    }

    /// Takes the VMCS off this CPU (VMCLEAR, SDM Vol. 3C §25.11.1): its
    /// data goes to memory, so that another CPU can load it. The next entry
    /// is a VMLAUNCH.
    pub fn leave_cpu(&mut self) -> Result<(), &'static str> {
        self.launched = false;
        self._vmcs.clear().map_err(|_| "VMCLEAR failed")
    }

    /// Loads a VMCS that last ran on another CPU (and was cleared there) on
    /// this one: the host state that differs between CPUs is rewritten, and
    /// guest translations this CPU may still cache from an earlier stay are
    /// dropped (SDM Vol. 3C §25.11.1, §29.4.3.4).
    pub fn arrive_here(&mut self) -> Result<(), &'static str> {
        self._vmcs.load().map_err(|_| "VMPTRLD failed")?;
        self.launched = false;
        setup::host_cpu_state();
        vmcs::invept_all();
        self.ept_generation = self
            .domain
            .ept_generation
            .load(core::sync::atomic::Ordering::Acquire);
        Ok(())
    }

    /// Whether a blocked vCPU has something to do now: an interrupt pending
    /// in its vLAPIC, in its mailbox or (dom0) from a device on this CPU, a
    /// timer deadline passed, or its domain stopping. Reads the virtual-APIC
    /// page only, so the VMCS need not be current.
    pub fn wants_to_run(&mut self) -> bool {
        if !self.blocked {
            return true;
        }
        self.sync_vlapic_from_page();
        let now = cpu::rdtsc();
        let timer_due = self.vlapic.next_timer_deadline().is_some_and(|d| d <= now);
        let wake = self.vlapic.highest_pending().is_some()
            || (self.domain.is_dom0() && !percpu::current().pending_device_vectors.is_empty())
            || !self.domain.mailbox(self.index).vectors.is_empty()
            || timer_due
            || self.domain.stop.load(core::sync::atomic::Ordering::Acquire) != 0;
        if wake {
            self.blocked = false;
        }
        wake
    }

    /// The TSC value at which a blocked vCPU's timer fires, if armed.
    pub fn wake_deadline(&self) -> Option<u64> {
        self.vlapic.next_timer_deadline()
    }

    /// Runs the vCPU (its VMCS current) for at most `slice` TSC ticks: until
    /// it halts, the slice is over, or it stops for good.
    pub fn run_slice(&mut self, slice: u64) -> SliceEnd {
        let started = cpu::rdtsc();
        loop {
            let spent = cpu::rdtsc().wrapping_sub(started);
            if spent >= slice {
                return SliceEnd::Preempted;
            }
            self.before_entry(slice - spent);
            let entry_tsc = cpu::rdtsc();
            // SAFETY: the VMCS is current on this CPU and fully initialised;
            // `regs` is a valid GuestRegs; vmx_run preserves the host's
            // callee-saved registers and returns here after the exit.
            let failed = unsafe { vmx_run(&mut self.regs, u64::from(self.launched)) };
            let exit_tsc = cpu::rdtsc();
            self.domain.guest_ticks.fetch_add(
                exit_tsc.wrapping_sub(entry_tsc),
                core::sync::atomic::Ordering::Relaxed,
            );
            if failed != 0 {
                let err = vmcs::read(F32::VmInstructionError);
                log::error!(
                    "{} vCPU{}: VM entry failed (VM-instruction error {err})",
                    self.domain.label(),
                    self.index
                );
                exits::dump_guest_state(self);
                return SliceEnd::Stopped(StopReason::Crash);
            }
            self.launched = true;
            redeliver_interrupted_event();
            let raw = vmcs::read(F32::ExitReason) as u32;
            if let Err(stop) = exits::handle(self, raw) {
                return SliceEnd::Stopped(stop);
            }
            self.domain
                .stats(percpu::current_index())
                .record(raw & 0xFFFF, cpu::rdtsc().wrapping_sub(exit_tsc));
            if self.blocked {
                return SliceEnd::Blocked;
            }
            // A domU gives the CPU back at any physical interrupt: it may be
            // dom0's, which has priority. Any vCPU gives it back when the
            // scheduler wants another look.
            let pc = percpu::current();
            if (raw & 0xFFFF == 1 && !self.domain.is_dom0())
                || pc.resched.load(core::sync::atomic::Ordering::Acquire)
            {
                return SliceEnd::Preempted;
            }
        }
    }

    /// Work done before every VM entry: collect interrupts from the physical
    /// APIC and other vCPUs, fire the timer, program the preemption timer to
    /// end the entry by the vLAPIC deadline or `budget` ticks at the latest.
    fn before_entry(&mut self, budget: u64) {
        let bit = 1u64 << (self.index % 64);
        if self
            .domain
            .dump_requested
            .load(core::sync::atomic::Ordering::Acquire)
            & bit
            != 0
        {
            self.domain
                .dump_requested
                .fetch_and(!bit, core::sync::atomic::Ordering::AcqRel);
            exits::log_vcpu_state(self);
        }
        let generation = self
            .domain
            .ept_generation
            .load(core::sync::atomic::Ordering::Acquire);
        if generation != self.ept_generation {
            vmcs::invept_all();
            self.ept_generation = generation;
        }
        let mut changed = false;
        // This CPU's device interrupts are dom0's alone: a domU vCPU that
        // runs while one waits (the scheduler's rate limit) leaves it for
        // dom0's vCPU, which was woken for it.
        let pc = percpu::current();
        while self.domain.is_dom0()
            && let Some(v) = pc.pending_device_vectors.take_highest()
        {
            self.sync_vlapic_from_page();
            let first = !self.domain.is_device_vector(v);
            self.domain.mark_device_vector(v);
            let r = self.vlapic.accept_interrupt(v, false);
            if first
                || !matches!(
                    r,
                    crate::vlapic::Acceptance::Accepted | crate::vlapic::Acceptance::AlreadyPending
                )
            {
                log::debug!(
                    "{} vCPU{}: device vector {v:#x}: {r:?}",
                    self.domain.label(),
                    self.index
                );
            }
            if !matches!(
                r,
                crate::vlapic::Acceptance::Accepted | crate::vlapic::Acceptance::AlreadyPending
            ) {
                // Not taken: complete it at the physical APIC now.
                crate::arch::x86_64::lapic::eoi();
            }
            changed = true;
        }
        while let Some(v) = self.domain.mailbox(self.index).vectors.take_highest() {
            if !changed {
                self.sync_vlapic_from_page();
            }
            self.vlapic.accept_interrupt(v, false);
            changed = true;
        }
        let now = cpu::rdtsc();
        if let Some(deadline) = self.vlapic.next_timer_deadline()
            && deadline <= now
        {
            if !changed {
                self.sync_vlapic_from_page();
            }
            self.vlapic.on_time(now);
            changed = true;
        }
        if changed {
            // Virtual-interrupt delivery (required for dom0) evaluates RVI and
            // delivers when the guest can take the interrupt; the gate at the
            // end decides what RVI may show.
            self.sync_vlapic_to_page();
        }
        // VMX-preemption timer: exit at the next vLAPIC timer deadline, or
        // when the slice ends, so the scheduler gets a look in.
        let shift = self.domain.vmx.preemption_timer_shift();
        let until = match self.vlapic.next_timer_deadline() {
            Some(d) => d.saturating_sub(now).min(budget),
            None => budget,
        };
        vmcs::write(
            F32::GuestPreemptionTimerValue,
            (until >> shift).min(u64::from(u32::MAX)),
        );
        if self.has_vid() {
            self.gate_virtual_interrupts();
        }
    }
}

/// An exit that interrupted the delivery of an event (a virtual interrupt
/// whose stack page was not yet in a domU's EPT, say) would lose it: the
/// event is queued for the next entry, as the SDM asks (Vol. 3C §28.2.4).
/// An exit handler that injects something itself overrides it.
fn redeliver_interrupted_event() {
    // One VMREAD per exit; the error code only for an event that has one.
    let Some(event) =
        EntryInterruption::redelivery(vmcs::read(F32::IdtVectoringInfo) as u32, || {
            vmcs::read(F32::IdtVectoringErrorCode) as u32
        })
    else {
        return;
    };
    vmcs::write(F32::EntryInterruptionInfo, u64::from(event.info()));
    if let Some(code) = event.error_code() {
        vmcs::write(F32::EntryExceptionErrorCode, u64::from(code));
    }
    if event.needs_instruction_length() {
        vmcs::write(
            F32::EntryInstructionLength,
            vmcs::read(F32::ExitInstructionLength),
        );
    }
}
