//! Host tests of the virtual local APIC.
//!
//! Set-up writes whose [`Actions`] a test does not care about simply drop them.
#![allow(unused_must_use)]

mod base;
mod icr;
mod page;
mod priority;
mod prop;
mod registers;
mod timer;

use super::regs::*;
use super::*;

/// TSC at 2 GHz, bus at 100 MHz: one bus tick is 20 TSC ticks.
pub const TSC_KHZ: u64 = 2_000_000;
pub const BUS_KHZ: u64 = 100_000;

pub fn config(id: u32) -> VLapicConfig {
    VLapicConfig::new(id, id == 0, TSC_KHZ, BUS_KHZ)
}

/// An xAPIC-mode APIC with ID `id`, software-enabled (SVR = 0x1FF).
pub fn enabled(id: u32) -> VLapic {
    let mut lapic = VLapic::new(config(id));
    lapic.mmio_write(SVR, 0x1FF, 0);
    lapic
}

/// An x2APIC-mode APIC with ID `id`, software-enabled.
pub fn enabled_x2(id: u32) -> VLapic {
    let mut lapic = VLapic::new(config(id));
    let base = lapic.apic_base();
    lapic.apic_base_write(base | 1 << 10).unwrap();
    lapic.msr_write(msr_of(SVR), 0x1FF, 0).unwrap();
    lapic
}

pub fn actions(list: &[Action]) -> Actions {
    let mut out = Actions::none();
    for a in list {
        out.push(*a);
    }
    out
}

pub fn irr_has(lapic: &VLapic, vector: u8) -> bool {
    lapic.regs.test(IRR, vector)
}

pub fn isr_has(lapic: &VLapic, vector: u8) -> bool {
    lapic.regs.test(ISR, vector)
}
