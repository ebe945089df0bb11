//! Synchronisation with the virtual-APIC page used by VMX APIC virtualization
//! (SDM Vol. 3C §30.1, "Virtual APIC State"): the register at xAPIC offset X
//! is the 32-bit little-endian value at page offset X; bytes 4-15 of each
//! 16-byte slot are not used.

use super::regs;
use super::state::VLapic;
use super::{Actions, ApicMode};

/// Size of the virtual-APIC page.
pub const PAGE_SIZE: usize = 4096;

fn get(page: &[u8; PAGE_SIZE], offset: u32) -> u32 {
    let at = offset as usize;
    u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]])
}

fn put(page: &mut [u8; PAGE_SIZE], offset: u32, value: u32) {
    let at = offset as usize;
    page[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

impl VLapic {
    /// Writes every register into its slot of `page` (bytes 4-15 of each slot
    /// and the slots above 0x3F0 are left alone). PPR is computed; the current
    /// count and the write-only EOI and SELF IPI read 0 (the CPU never
    /// virtualizes a read of the current count: it exits, SDM Vol. 3C
    /// §30.4.2). Call it after any change made outside the CPU (an accepted
    /// interrupt, an emulated write) before resuming the guest.
    pub fn to_page(&self, page: &mut [u8; PAGE_SIZE]) {
        for slot in 0..0x40 {
            let offset = slot << 4;
            let value = match offset {
                regs::PPR => u32::from(self.ppr()),
                regs::APR => u32::from(self.apr()),
                regs::TIMER_CURRENT | regs::EOI | regs::SELF_IPI => 0,
                o => self.regs.get(o),
            };
            put(page, offset, value);
        }
    }

    /// Reads back what the CPU changes in `page` on its own: the TPR (TPR
    /// shadow, CR8 writes), and IRR and ISR (virtual-interrupt delivery and
    /// EOI virtualization, SDM Vol. 3C §30.2, §30.1.4). Every other register
    /// is changed only through this state machine. Vectors 0-15, which cannot
    /// be pending or in service, are ignored.
    pub fn from_page(&mut self, page: &[u8; PAGE_SIZE]) {
        self.regs.set(regs::TPR, get(page, regs::TPR) & 0xFF);
        for base in [regs::IRR, regs::ISR] {
            let mut words: [u32; 8] = core::array::from_fn(|i| get(page, base + (i as u32) * 16));
            words[0] &= !0xFFFF;
            self.regs.set_bitmap(base, words);
        }
    }

    /// An APIC-write VM exit (SDM Vol. 3C §30.4.3.3, "APIC-Write Emulation"):
    /// the guest wrote the register at `offset` and the CPU has already
    /// stored the value in `page`. Imports the CPU-owned state, applies the
    /// write with all its side effects as an MMIO write (xAPIC mode) or WRMSR
    /// (x2APIC mode; for the ICR the destination is taken from offset 0x310),
    /// and writes the resulting registers back to `page`, so that the
    /// stored value becomes the architectural one (e.g. read-only bits
    /// restored, ESR latched). A write the hardware would have refused is
    /// dropped. Afterwards update RVI/SVI from [`Self::guest_interrupt_status`].
    pub fn apic_write_exit(
        &mut self,
        offset: u32,
        page: &mut [u8; PAGE_SIZE],
        now: u64,
    ) -> Actions {
        let offset = offset & 0xFF0;
        let value = get(page, offset);
        self.from_page(page);
        let actions = match self.mode() {
            ApicMode::XApic => {
                // A write of ICR high (0x310) is virtualized without an exit
                // (SDM §30.4.3.2): the destination the guest wrote is only in
                // the page when the ICR-low write exits.
                if offset == regs::ICR_LO {
                    let _ = self.mmio_write(regs::ICR_HI, get(page, regs::ICR_HI), now);
                }
                self.mmio_write(offset, value, now)
            }
            ApicMode::X2Apic => {
                let value = if offset == regs::ICR_LO {
                    u64::from(get(page, regs::ICR_HI)) << 32 | u64::from(value)
                } else {
                    u64::from(value)
                };
                self.msr_write(regs::msr_of(offset), value, now)
                    .unwrap_or_default()
            }
            ApicMode::Disabled => Actions::none(),
        };
        self.to_page(page);
        actions
    }
}
