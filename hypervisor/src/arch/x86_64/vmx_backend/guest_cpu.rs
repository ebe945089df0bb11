//! The VT-x `Vcpu` as the neutral exit handlers see it
//! ([`crate::vcpu::backend`]): each method is the VMREADs and VMWRITEs of
//! the guest-state area (SDM Vol. 3C §25.4), the read shadows and the
//! VM-entry fields it needs, done when called, never ahead of an exit.

use super::{Vcpu, domain::Label, exits::process_actions, hypercalls, setup};
use crate::arch::x86_64::cpu;
use crate::arch::x86_64::vmcs::{read, write};
use crate::logger;
use crate::vcpu::backend::{CR0_PG, CR4_OSXSAVE, EFER_LMA, ExitContext, GuestCpu};
use crate::vcpu::msr_policy::{ReadAction, WriteAction};
use crate::vlapic::ApicFault;
use crate::vmx::exit::{EntryInterruption, Gpr};
use crate::vmx::fields::{Field32 as F32, Field64 as F64, FieldNat as FN};

/// CR0.NW and CR0.CD, which the guest may set but the CPU runs without.
const CR0_NW_CD: u64 = (1 << 29) | (1 << 30);

/// Interruptibility state bits 0 and 1: blocking by STI and by MOV SS (SDM
/// Vol. 3C Table 25-3).
const BLOCKING_STI_MOV_SS: u64 = 3;

/// "dom0 vCPU1", as the log lines name a vCPU.
#[derive(Debug, Clone, Copy)]
pub struct VcpuName {
    label: Label,
    index: usize,
}

impl core::fmt::Display for VcpuName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} vCPU{}", self.label, self.index)
    }
}

impl GuestCpu for Vcpu {
    fn gpr(&self, r: Gpr) -> u64 {
        self.regs.get(r as u8)
    }

    fn set_gpr(&mut self, r: Gpr, value: u64) {
        self.regs.set(r as u8, value);
    }

    fn rip(&self) -> u64 {
        read(FN::GuestRip)
    }

    fn set_rip(&mut self, rip: u64) {
        write(FN::GuestRip, rip);
    }

    fn rflags(&self) -> u64 {
        read(FN::GuestRflags)
    }

    fn instruction_len(&self) -> u64 {
        read(F32::ExitInstructionLength)
    }

    fn clear_interrupt_shadow(&mut self) {
        let intr = read(F32::GuestInterruptibilityState);
        if intr & BLOCKING_STI_MOV_SS != 0 {
            write(F32::GuestInterruptibilityState, intr & !BLOCKING_STI_MOV_SS);
        }
    }

    fn cpl(&self) -> u8 {
        // CPL = SS.DPL (SDM Vol. 3A §5.5; access rights bits 6:5, Vol. 3C
        // §25.4.1).
        ((read(F32::GuestSsAccessRights) >> 5) & 3) as u8
    }

    /// The bits the hypervisor owns (guest/host mask) come from the read
    /// shadow, the others from the guest's CR0 (SDM Vol. 3C §25.6.6).
    fn cr0(&self) -> u64 {
        let mask = read(FN::Cr0GuestHostMask);
        (read(FN::GuestCr0) & !mask) | (read(FN::Cr0ReadShadow) & mask)
    }

    /// PG is never owned (unrestricted guest, see `setup::cr0_fixed1_bits`):
    /// one VMREAD.
    fn paging_enabled(&self) -> bool {
        read(FN::GuestCr0) & CR0_PG != 0
    }

    fn set_cr0(&mut self, value: u64) {
        write(
            FN::GuestCr0,
            (value | setup::cr0_fixed1_bits()) & !CR0_NW_CD,
        );
        write(FN::Cr0ReadShadow, value);
    }

    fn cr3(&self) -> u64 {
        read(FN::GuestCr3)
    }

    fn set_cr3(&mut self, value: u64) {
        write(FN::GuestCr3, value);
    }

    /// As for CR0 (SDM Vol. 3C §25.6.6).
    fn cr4(&self) -> u64 {
        let mask = read(FN::Cr4GuestHostMask);
        (read(FN::GuestCr4) & !mask) | (read(FN::Cr4ReadShadow) & mask)
    }

    /// OSXSAVE is not among the bits VMX fixes (`setup::cr4_fixed1_bits`):
    /// one VMREAD.
    fn osxsave(&self) -> bool {
        read(FN::GuestCr4) & CR4_OSXSAVE != 0
    }

    fn set_cr4(&mut self, value: u64) {
        write(FN::GuestCr4, value | setup::cr4_fixed1_bits());
        write(FN::Cr4ReadShadow, value);
    }

    fn efer(&self) -> u64 {
        read(F64::GuestIa32Efer)
    }

    fn set_efer(&mut self, value: u64) {
        write(F64::GuestIa32Efer, value);
    }

    /// The "IA-32e mode guest" entry control must equal EFER.LMA at the
    /// next entry (SDM Vol. 3C §26.2.4).
    fn switch_long_mode(&mut self, efer: u64) {
        write(F64::GuestIa32Efer, efer);
        let entry = read(F32::EntryControls) as u32;
        let entry = if efer & EFER_LMA != 0 {
            entry | setup::ENTRY_IA32E_GUEST
        } else {
            entry & !setup::ENTRY_IA32E_GUEST
        };
        write(F32::EntryControls, u64::from(entry));
    }

    fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        queue(EntryInterruption::hardware_exception(vector, error));
    }

    fn inject_nmi(&mut self) {
        queue(EntryInterruption::nmi());
    }
}

/// Queues `event` for the next VM entry (SDM Vol. 3C §26.6, Table 25-17).
fn queue(event: EntryInterruption) {
    if let Some(code) = event.error_code() {
        write(F32::EntryExceptionErrorCode, u64::from(code));
    }
    write(F32::EntryInterruptionInfo, u64::from(event.info()));
}

impl ExitContext for Vcpu {
    type Name = VcpuName;

    fn name(&self) -> VcpuName {
        VcpuName {
            label: self.domain.label(),
            index: self.index,
        }
    }

    fn is_dom0(&self) -> bool {
        self.domain.is_dom0()
    }

    fn domu_vcpus(&self) -> Option<u32> {
        (!self.domain.is_dom0()).then(|| self.domain.vcpus() as u32)
    }

    fn apic_id(&self) -> u32 {
        self.vlapic.id()
    }

    fn apic_khz(&self) -> u64 {
        self.domain.apic_khz
    }

    fn tsc(&self) -> u64 {
        cpu::rdtsc()
    }

    fn tsc_khz(&self) -> u64 {
        logger::tsc_khz()
    }

    fn host_cpuid(&self, leaf: u32, sub: u32) -> [u32; 4] {
        cpu::cpuid(leaf, sub)
    }

    fn xcr0_supported(&self) -> u64 {
        cpu::xcr0_supported()
    }

    fn set_xcr0(&mut self, value: u64) -> bool {
        cpu::set_xcr0(value).is_ok()
    }

    /// Register reads start from the virtual-APIC page, which the CPU
    /// updates under APIC virtualization.
    fn apic_msr_read(&mut self, msr: u32, action: ReadAction) -> Option<u64> {
        match action {
            ReadAction::ApicBase => Some(self.vlapic.apic_base()),
            ReadAction::TscDeadline => Some(self.vlapic.tsc_deadline_read()),
            ReadAction::X2Apic => {
                self.sync_vlapic_from_page();
                self.vlapic.msr_read(msr, cpu::rdtsc()).ok()
            }
            _ => None,
        }
    }

    /// Every change to the vLAPIC's registers starts from the virtual-APIC
    /// page and is written back before the next entry.
    fn apic_msr_write(
        &mut self,
        msr: u32,
        action: WriteAction,
        value: u64,
        now: u64,
    ) -> Result<(), ApicFault> {
        match action {
            WriteAction::ApicBase => {
                self.sync_vlapic_from_page();
                let r = self
                    .vlapic
                    .apic_base_write(value)
                    .map(|a| process_actions(self, a));
                self.sync_vlapic_to_page();
                r
            }
            WriteAction::TscDeadline => {
                // A deadline already past fires at once into IRR: like every
                // change to the model's registers, that must start from the
                // page (the CPU may have delivered or completed interrupts
                // there) and be written back before the next entry, or the
                // next import loses it. A future deadline only arms the timer.
                let fires_now = value != 0 && value <= now;
                if fires_now {
                    self.sync_vlapic_from_page();
                }
                let a = self.vlapic.tsc_deadline_write(value, now);
                process_actions(self, a);
                if fires_now {
                    self.sync_vlapic_to_page();
                }
                Ok(())
            }
            WriteAction::X2Apic => {
                self.sync_vlapic_from_page();
                let r = self
                    .vlapic
                    .msr_write(msr, value, now)
                    .map(|a| process_actions(self, a));
                self.sync_vlapic_to_page();
                r
            }
            _ => Err(ApicFault::Gp),
        }
    }

    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> u64 {
        hypercalls::dispatch_for(self, op, args) as u64
    }

    fn block(&mut self) {
        self.blocked = true;
    }
}
