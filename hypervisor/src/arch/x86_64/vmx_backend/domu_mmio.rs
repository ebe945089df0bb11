//! A domU's MMIO: its I/O APIC page (0xFEC00000) is not mapped in its EPT,
//! so every access is an EPT violation (SDM Vol. 3C §29.3.3.2) that gives
//! the address but neither the data nor the instruction length. The
//! instruction is fetched through the guest's own page tables
//! (`vcpu::guest_walk`), decoded (`vcpu::mmio_decode`) and carried out on
//! the emulated I/O APIC (`vdev::ioapic`), whose interrupt messages go to
//! the domain's virtual local APICs ([`super::domu_irq`]).
//! Any other address outside its RAM is unbacked: the same decoding, then
//! the load reads all-ones and the store is dropped
//! ([`crate::vcpu::gpa_policy`]).

use core::sync::atomic::Ordering;

use super::domu_parts::DomuParts;
use super::{GuestRegs, Vcpu};
use crate::arch::x86_64::cpu;
use crate::arch::x86_64::physmem::read_volatile;
use crate::arch::x86_64::vmcs::read;
use crate::vcpu::gpa_policy::{self, DomuGpa};
use crate::vcpu::guest_walk::{GuestPaging, GuestPhysRead, PagingRegs, fetch};
use crate::vcpu::mmio_decode::{CpuMode, Registers, decode};
use crate::vmx::exit::Gpr;
use crate::vmx::fields::{Field32 as F32, Field64 as F64, FieldNat as FN};

/// A domU's memory as the page walker reads it.
struct DomuMemory<'a>(&'a DomuParts);

impl GuestPhysRead for DomuMemory<'_> {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        let (hpa, room) = self.0.translate(gpa)?;
        if room < 8 {
            return None;
        }
        let mut b = [0u8; 8];
        read_volatile(hpa, &mut b);
        Some(u64::from_le_bytes(b))
    }
}

/// The vCPU's registers for the decoder (RSP lives in the VMCS).
struct Regs<'a>(&'a mut GuestRegs);

impl Registers for Regs<'_> {
    fn get(&self, gpr: Gpr) -> u64 {
        self.0.get(gpr as u8)
    }
    fn set(&mut self, gpr: Gpr, value: u64) {
        self.0.set(gpr as u8, value);
    }
}

/// Emulates the access at `gpa` that just faulted, on whatever the domain
/// has there ([`gpa_policy::classify`]): its I/O APIC, or nothing (reads
/// all-ones, writes dropped). `Err` names why it could not be (the caller
/// stops the domain): an access inside its RAM, or an instruction that is
/// not a plain move.
pub fn emulate(v: &mut Vcpu, gpa: u64) -> Result<(), &'static str> {
    let domain = v.domain.clone();
    let parts = domain.domu.as_ref().ok_or("not a domU")?;
    let target = gpa_policy::classify(gpa, domain.ram());
    if target == DomuGpa::Ram {
        return Err("a fault inside the domain's own RAM");
    }
    let paging = GuestPaging::new(
        PagingRegs {
            cr0: read(FN::GuestCr0),
            cr3: read(FN::GuestCr3),
            cr4: read(FN::GuestCr4),
            efer: read(F64::GuestIa32Efer),
        },
        cpu::physical_address_bits(),
    );
    // In 64-bit mode CS.base is 0; in protected mode the linear RIP adds it.
    let long = read(F64::GuestIa32Efer) & (1 << 10) != 0
        && read(F32::GuestCsAccessRights) & (1 << 13) != 0;
    let rip = read(FN::GuestRip);
    let linear = if long {
        rip
    } else {
        rip.wrapping_add(read(FN::GuestCsBase))
    };
    let fetched = fetch(&paging, &DomuMemory(parts), linear, 15)
        .map_err(|_| "cannot fetch the instruction")?;
    let d = decode(
        fetched.as_slice(),
        if long {
            CpuMode::Long64
        } else {
            CpuMode::Protected32
        },
    )
    .map_err(|_| "instruction is not an MMIO move this hypervisor emulates")?;
    let mut regs = Regs(&mut v.regs);
    let written = d.write_value(&regs);
    let message = match target {
        DomuGpa::IoApic { offset } => match written {
            Some(value) => parts.ioapic.lock().mmio_write(offset, value as u32),
            None => {
                let value = parts.ioapic.lock().mmio_read(offset);
                d.apply_read(u64::from(value), &mut regs);
                None
            }
        },
        _ => {
            if written.is_none() {
                d.apply_read(gpa_policy::unbacked_read(d.size), &mut regs);
            }
            let (counter, what, outcome) = match written {
                Some(_) => (&parts.unbacked_writes, "write", "dropped"),
                None => (&parts.unbacked_reads, "read", "reads all-ones"),
            };
            let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
            if gpa_policy::log_unbacked(count) {
                log::info!(
                    "{} vCPU{}: {what} of {} byte(s) at unbacked guest-physical {gpa:#x} {outcome} ({count} unbacked {what}(s) so far)",
                    domain.label(),
                    v.index,
                    d.size,
                );
            }
            None
        }
    };
    crate::vcpu::exits::skip(v, u64::from(d.len));
    if let Some(m) = message {
        super::domu_irq::deliver(v, m);
    }
    Ok(())
}
