//! Guest register accesses: xAPIC MMIO by offset (SDM §12.4.1, Table 12-1)
//! and x2APIC RDMSR/WRMSR (SDM §12.12.1.2, Table 12-6), plus the two other
//! MSRs the APIC owns (IA32_APIC_BASE, IA32_TSC_DEADLINE).

use super::regs;
use super::state::VLapic;
use super::{Actions, ApicFault, ApicMode, MSR_IA32_APIC_BASE, MSR_IA32_TSC_DEADLINE};

/// The register class of an offset, for both interfaces.
fn is_bitmap(offset: u32) -> bool {
    (regs::ISR..regs::IRR + 0x80).contains(&offset)
}

impl VLapic {
    /// Whether [`Self::msr_read`]/[`Self::msr_write`] handle `msr`: the x2APIC
    /// range 0x800-0x8FF, IA32_APIC_BASE and IA32_TSC_DEADLINE.
    pub fn handles_msr(msr: u32) -> bool {
        (regs::X2APIC_MSR_FIRST..=regs::X2APIC_MSR_LAST).contains(&msr)
            || msr == MSR_IA32_APIC_BASE
            || msr == MSR_IA32_TSC_DEADLINE
    }

    /// A register read common to both modes; `None` for offsets that are not
    /// readable in either.
    fn read_common(&self, offset: u32, now: u64) -> Option<u32> {
        Some(match offset {
            regs::PPR => u32::from(self.ppr()),
            regs::TIMER_CURRENT => self.timer_current_count(now),
            regs::ID | regs::VERSION | regs::TPR | regs::LDR | regs::SVR | regs::ESR => {
                self.regs.get(offset)
            }
            regs::ICR_LO | regs::TIMER_INITIAL | regs::TIMER_DIVIDE => self.regs.get(offset),
            o if is_bitmap(o) && o & 0xF == 0 => self.regs.get(o),
            o if regs::LVTS.contains(&o) => self.regs.get(o),
            _ => return None,
        })
    }

    /// A 32-bit read of the xAPIC page at `offset` (0..0x1000) at TSC `now`.
    /// Unimplemented offsets, write-only registers and bytes 4-15 of a slot
    /// read 0. Outside xAPIC mode the page is not the APIC's and reads all
    /// ones, like a hole (SDM §12.12.2: in x2APIC mode MMIO behaves as with
    /// the APIC globally disabled).
    pub fn mmio_read(&self, offset: u32, now: u64) -> u32 {
        if self.mode() != ApicMode::XApic {
            return u32::MAX;
        }
        match offset {
            regs::APR => u32::from(self.apr()),
            regs::DFR | regs::ICR_HI => self.regs.get(offset),
            o => self.read_common(o, now).unwrap_or(0),
        }
    }

    /// A 32-bit write of the xAPIC page at `offset`. Read-only registers
    /// ignore writes; an unimplemented offset sets ESR "illegal register
    /// address" (SDM §12.5.3). Ignored outside xAPIC mode.
    pub fn mmio_write(&mut self, offset: u32, value: u32, now: u64) -> Actions {
        if self.mode() != ApicMode::XApic {
            return Actions::none();
        }
        match offset {
            // The xAPIC ID is writable on the processors we model.
            regs::ID => self.regs.set(regs::ID, value & 0xFF00_0000),
            regs::LDR => self.regs.set(regs::LDR, value & 0xFF00_0000),
            regs::DFR => self.regs.set(regs::DFR, value | regs::DFR_RESERVED_ONES),
            regs::ICR_HI => self.regs.set(regs::ICR_HI, value & 0xFF00_0000),
            regs::ICR_LO => {
                let low = value & regs::ICR_LO_WRITABLE;
                self.regs.set(regs::ICR_LO, low);
                return self.send_ipi(low, self.regs.get(regs::ICR_HI) >> 24);
            }
            regs::VERSION | regs::APR | regs::PPR | regs::TIMER_CURRENT => {}
            o if is_bitmap(o) && o & 0xF == 0 => {}
            o => return self.write_common(o, value, now),
        }
        Actions::none()
    }

    /// A write common to both modes, value already checked by the caller.
    fn write_common(&mut self, offset: u32, value: u32, now: u64) -> Actions {
        match offset {
            regs::TPR => self.set_tpr(value as u8),
            regs::EOI => return self.eoi(),
            regs::SVR => self.write_svr(value),
            regs::ESR => {
                // SDM §12.5.3: a write latches the errors seen since the last
                // write into the readable ESR and starts collecting anew.
                self.regs.set(regs::ESR, self.esr_pending);
                self.esr_pending = 0;
            }
            regs::TIMER_INITIAL => return self.write_timer_initial(value, now),
            regs::TIMER_DIVIDE => return self.write_timer_divide(value, now),
            o if regs::LVTS.contains(&o) => return self.write_lvt(o, value, now),
            _ => self.signal_error(regs::ESR_ILLEGAL_REGISTER),
        }
        Actions::none()
    }

    /// SVR (SDM §12.9): vector, software enable, and EOI-broadcast
    /// suppression if advertised. Clearing the enable bit masks every LVT
    /// entry (SDM §12.4.7.2).
    fn write_svr(&mut self, value: u32) {
        let mut writable = 0xFF | regs::SVR_ENABLE;
        if self.cfg.directed_eoi {
            writable |= regs::SVR_SUPPRESS_EOI_BROADCAST;
        }
        self.regs.set(regs::SVR, value & writable);
        if value & regs::SVR_ENABLE == 0 {
            for lvt in regs::LVTS {
                self.regs.set(lvt, self.regs.get(lvt) | regs::LVT_MASKED);
            }
        }
    }

    /// An LVT entry (SDM §12.5.1): only the writable bits change; remote IRR
    /// is kept; while software-disabled the mask bit stays set (SDM
    /// §12.4.7.2).
    fn write_lvt(&mut self, offset: u32, value: u32, now: u64) -> Actions {
        let writable = regs::lvt_writable(offset);
        let kept = self.regs.get(offset) & regs::LVT_REMOTE_IRR & !writable;
        let mut new = (value & writable) | kept;
        if !self.software_enabled() {
            new |= regs::LVT_MASKED;
        }
        if offset == regs::LVT_TIMER {
            return self.write_lvt_timer(new, now);
        }
        self.regs.set(offset, new);
        Actions::none()
    }

    /// RDMSR of an APIC MSR at TSC `now`. x2APIC MSRs fault outside x2APIC
    /// mode, and when reserved or write-only (EOI, SELF IPI), and for the
    /// xAPIC-only DFR, APR and ICR high half (SDM §12.12.1.2).
    pub fn msr_read(&self, msr: u32, now: u64) -> Result<u64, ApicFault> {
        match msr {
            MSR_IA32_APIC_BASE => return Ok(self.apic_base()),
            MSR_IA32_TSC_DEADLINE => return Ok(self.tsc_deadline_read()),
            _ => {}
        }
        if self.mode() != ApicMode::X2Apic
            || !(regs::X2APIC_MSR_FIRST..=regs::X2APIC_MSR_LAST).contains(&msr)
        {
            return Err(ApicFault::Gp);
        }
        let offset = regs::offset_of(msr);
        if offset == regs::ICR_LO {
            let high = u64::from(self.regs.get(regs::ICR_HI));
            return Ok(high << 32 | u64::from(self.regs.get(regs::ICR_LO)));
        }
        self.read_common(offset, now)
            .map(u64::from)
            .ok_or(ApicFault::Gp)
    }

    /// WRMSR of an APIC MSR at TSC `now`. In the x2APIC range: faults outside
    /// x2APIC mode, for read-only and reserved registers, for bits 63:32 set
    /// (except in the ICR), for reserved ICR bits, and for non-zero writes to
    /// EOI and ESR or a SELF IPI with bits 31:8 set (SDM §12.12.1.2,
    /// §12.12.9, §12.12.11). Other reserved bits are ignored.
    pub fn msr_write(&mut self, msr: u32, value: u64, now: u64) -> Result<Actions, ApicFault> {
        match msr {
            MSR_IA32_APIC_BASE => return self.apic_base_write(value),
            MSR_IA32_TSC_DEADLINE => return Ok(self.tsc_deadline_write(value, now)),
            _ => {}
        }
        if self.mode() != ApicMode::X2Apic
            || !(regs::X2APIC_MSR_FIRST..=regs::X2APIC_MSR_LAST).contains(&msr)
        {
            return Err(ApicFault::Gp);
        }
        let offset = regs::offset_of(msr);
        if offset == regs::ICR_LO {
            if value & regs::ICR_X2APIC_RESERVED != 0 {
                return Err(ApicFault::Gp);
            }
            let low = value as u32 & regs::ICR_LO_WRITABLE;
            let dest = (value >> 32) as u32;
            self.regs.set(regs::ICR_LO, low);
            self.regs.set(regs::ICR_HI, dest);
            return Ok(self.send_ipi(low, dest));
        }
        let Ok(value) = u32::try_from(value) else {
            return Err(ApicFault::Gp);
        };
        match offset {
            regs::EOI | regs::ESR if value != 0 => Err(ApicFault::Gp),
            regs::SELF_IPI if value > 0xFF => Err(ApicFault::Gp),
            regs::SELF_IPI => {
                self.self_ipi(value as u8);
                Ok(Actions::none())
            }
            regs::TPR | regs::EOI | regs::SVR | regs::ESR => {
                Ok(self.write_common(offset, value, now))
            }
            regs::TIMER_INITIAL | regs::TIMER_DIVIDE => Ok(self.write_common(offset, value, now)),
            o if regs::LVTS.contains(&o) => Ok(self.write_common(o, value, now)),
            _ => Err(ApicFault::Gp),
        }
    }
}
