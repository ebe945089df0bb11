//! Machine power-off and reset: ACPI S5 through PM1a/PM1b_CNT (ACPI 6.5
//! §4.8.3.2.1 "PM1 Control Registers", §16.1.7 "Soft Off"), and resets through
//! the FADT reset register, port 0xCF9 and the keyboard controller.

use super::port::{inb, outb, outw};
use super::{cpu, percpu, vmx};
use crate::acpi::Fadt;

/// What the firmware told us about power control.
#[derive(Debug, Clone, Copy, Default)]
pub struct PowerInfo {
    /// The FADT's register blocks.
    pub fadt: Fadt,
    /// SLP_TYPa/SLP_TYPb for S5, from the DSDT.
    pub s5: Option<(u8, u8)>,
}

static POWER: spin::Once<PowerInfo> = spin::Once::new();

/// Records the power-control facts (once, at boot).
pub fn set_info(info: PowerInfo) {
    POWER.call_once(|| info);
}

/// The power-control facts, once recorded.
pub fn info() -> Option<PowerInfo> {
    POWER.get().copied()
}

fn leave_vmx_here() {
    if percpu::current()
        .in_vmx_root
        .load(core::sync::atomic::Ordering::Relaxed)
    {
        vmx::disable();
        percpu::current()
            .in_vmx_root
            .store(false, core::sync::atomic::Ordering::Relaxed);
    }
}

/// Powers the machine off; halts if the firmware gave no way to.
pub fn power_off() -> ! {
    log::info!("powering off (ACPI S5)");
    leave_vmx_here();
    if let Some(info) = POWER.get()
        && let Some((a, b)) = info.s5
        && info.fadt.pm1a_cnt != 0
    {
        const SLP_EN: u16 = 1 << 13;
        outw(info.fadt.pm1a_cnt, (u16::from(a) << 10) | SLP_EN);
        if info.fadt.pm1b_cnt != 0 {
            outw(info.fadt.pm1b_cnt, (u16::from(b) << 10) | SLP_EN);
        }
    }
    // Give the chipset a moment, then report that it did not work.
    spin_ms(100);
    log::error!("ACPI power-off did not take effect; halting this CPU");
    cpu::halt_forever()
}

/// Resets the machine.
pub fn reboot() -> ! {
    log::info!("rebooting");
    leave_vmx_here();
    // Empty the keyboard controller's output buffer first: firmware that
    // finds stale bytes there after a warm reset can fail its keyboard
    // self-test (Bochs' BIOS stops with "Keyboard error:21").
    for _ in 0..64 {
        if inb(0x64) & 0x01 == 0 {
            break;
        }
        let _ = inb(0x60);
    }
    if let Some((port, value)) = POWER.get().and_then(|i| i.fadt.reset) {
        outb(port, value);
        spin_ms(50);
    }
    // PCI reset control register: full reset (bits 1 and 2).
    outb(0xCF9, 0x02);
    outb(0xCF9, 0x06);
    spin_ms(50);
    // Keyboard controller pulse of the reset line.
    for _ in 0..100_000 {
        if inb(0x64) & 0x02 == 0 {
            break;
        }
    }
    outb(0x64, 0xFE);
    spin_ms(50);
    log::error!("reset did not take effect; halting");
    cpu::halt_forever()
}

fn spin_ms(ms: u64) {
    let khz = match crate::logger::tsc_khz() {
        0 => 3_000_000, // not calibrated yet: assume a fast CPU (waits longer, never shorter)
        k => k,
    };
    let start = cpu::rdtsc();
    while cpu::rdtsc().wrapping_sub(start) < ms * khz {
        cpu::pause();
    }
}
