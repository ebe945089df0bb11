//! The physical local APIC, in x2APIC mode when the CPU has it, otherwise
//! xAPIC through its MMIO page (SDM Vol.3A chapter 12 "Advanced Programmable
//! Interrupt Controller").

use core::sync::atomic::{AtomicBool, Ordering};

use super::cpu::{self, IA32_APIC_BASE, rdmsr, wrmsr};
use super::idt::VECTOR_SPURIOUS;

static X2APIC: AtomicBool = AtomicBool::new(false);

/// xAPIC MMIO base (identity-mapped).
const XAPIC_BASE: u64 = 0xFEE0_0000;

// Register offsets in the xAPIC page; the x2APIC MSR is 0x800 + offset / 16
// (SDM Vol.3A Table 12-6).
const REG_ID: u32 = 0x20;
const REG_VERSION: u32 = 0x30;
const REG_EOI: u32 = 0xB0;
const REG_SVR: u32 = 0xF0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3E0;

const ICR_DELIVERY_PENDING: u32 = 1 << 12;

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: x2APIC mode is enabled, so the 0x800 MSR range exists and
        // `reg` is one of the architectural registers above.
        unsafe { rdmsr(0x800 + reg / 16) as u32 }
    } else {
        // SAFETY: the xAPIC page is identity-mapped (uncached by the MTRRs
        // firmware sets for it) and `reg` is an aligned register offset.
        unsafe { core::ptr::read_volatile((XAPIC_BASE + u64::from(reg)) as *const u32) }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`; writes to these registers only affect the APIC.
        unsafe { wrmsr(0x800 + reg / 16, u64::from(value)) }
    } else {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((XAPIC_BASE + u64::from(reg)) as *mut u32, value) }
    }
}

/// Enables this CPU's local APIC with the spurious vector set, in xAPIC
/// mode: dom0 drives the physical IO-APIC and MSIs with its own (xAPIC flat
/// logical) addressing, which only the xAPIC interprets the same way, so the
/// hypervisor mirrors dom0's logical destination into this APIC (see
/// `set_logical_destination`). x2APIC mode is used only when the firmware
/// already enabled it (it cannot be left without a reset). Returns whether
/// x2APIC mode is in use.
pub fn init_this_cpu() -> bool {
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (all x86_64).
    let x2 = cpu::has_x2apic() && unsafe { rdmsr(IA32_APIC_BASE) } & (1 << 10) != 0;
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (all x86_64).
    let base = unsafe { rdmsr(IA32_APIC_BASE) };
    let mut new = base | (1 << 11); // global enable
    if x2 {
        new |= 1 << 10; // EXTD (SDM §12.12.1: xAPIC -> x2APIC is a legal transition)
    }
    // SAFETY: enabling the APIC (and x2APIC mode when CPUID reports it) is a
    // valid transition of IA32_APIC_BASE; the base address is unchanged.
    unsafe { wrmsr(IA32_APIC_BASE, new) };
    X2APIC.store(x2, Ordering::Relaxed);
    write(REG_SVR, 0x100 | u32::from(VECTOR_SPURIOUS)); // software enable
    x2
}

/// Whether x2APIC mode is in use.
pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// This CPU's APIC ID.
pub fn id() -> u32 {
    let raw = read(REG_ID);
    if is_x2apic() { raw } else { raw >> 24 }
}

/// The APIC version register (version in bits 7:0, max LVT in 23:16).
pub fn version() -> u32 {
    read(REG_VERSION)
}

/// Sets the logical destination (LDR) and destination format (DFR) of this
/// CPU's APIC to what dom0's vCPU on this CPU chose (SDM §12.6.2.2), so that
/// interrupts dom0 routes in logical mode arrive here. xAPIC mode only.
pub fn set_logical_destination(ldr: u32, dfr: u32) {
    if !is_x2apic() {
        write(0xE0, dfr | 0x0FFF_FFFF);
        write(0xD0, ldr & 0xFF00_0000);
    }
}

/// Signals end of interrupt.
pub fn eoi() {
    write(REG_EOI, 0);
}

fn send_ipi(dest: u32, low: u32) {
    if is_x2apic() {
        // SAFETY: x2APIC is on; the ICR MSR (0x830) takes the destination in
        // bits 63:32 (SDM §12.12.9).
        unsafe { wrmsr(0x830, (u64::from(dest) << 32) | u64::from(low)) }
    } else {
        write(REG_ICR_HIGH, dest << 24);
        write(REG_ICR_LOW, low);
        for _ in 0..1_000_000 {
            if read(REG_ICR_LOW) & ICR_DELIVERY_PENDING == 0 {
                break;
            }
            cpu::pause();
        }
    }
}

/// Sends INIT (assert, level) to `dest` (SDM §9.4.4.1).
pub fn send_init(dest: u32) {
    send_ipi(dest, 0x0000_4500);
}

/// Sends a start-up IPI with the page number `vector` (= start address >> 12).
pub fn send_sipi(dest: u32, vector: u8) {
    send_ipi(dest, 0x0000_4600 | u32::from(vector));
}

/// Sends a fixed interrupt with `vector` to `dest` (physical destination mode).
pub fn send_fixed(dest: u32, vector: u8) {
    send_ipi(dest, 0x0000_4000 | u32::from(vector));
}

/// Timer modes of the LVT timer entry (SDM §12.5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerMode {
    /// Count down once.
    OneShot,
    /// Reload and count again.
    Periodic,
}

/// Starts the APIC timer with divide-by-16 and `initial` count, or masks it
/// when `initial` is 0.
pub fn start_timer(vector: u8, mode: TimerMode, initial: u32) {
    write(REG_TIMER_DIVIDE, 0b0011); // divide by 16
    let mode_bits = match mode {
        TimerMode::OneShot => 0,
        TimerMode::Periodic => 1 << 17,
    };
    let masked = if initial == 0 { 1 << 16 } else { 0 };
    write(REG_LVT_TIMER, u32::from(vector) | mode_bits | masked);
    write(REG_TIMER_INIT, initial);
}

/// The timer's current count.
pub fn timer_current() -> u32 {
    read(REG_TIMER_CURRENT)
}

/// Measures the APIC timer's rate (after divide-by-16) in kHz over
/// `tsc_ticks` of TSC time, given the TSC rate.
pub fn measure_timer_khz(tsc_khz: u64, tsc_ticks: u64) -> u64 {
    start_timer(0xF0, TimerMode::OneShot, u32::MAX);
    write(REG_LVT_TIMER, (1 << 16) | 0xF0); // masked while measuring
    write(REG_TIMER_INIT, u32::MAX);
    let start = cpu::rdtsc();
    while cpu::rdtsc().wrapping_sub(start) < tsc_ticks {
        cpu::pause();
    }
    let elapsed = u32::MAX - timer_current();
    write(REG_TIMER_INIT, 0);
    if tsc_ticks == 0 {
        return 0;
    }
    (u128::from(elapsed) * u128::from(tsc_khz) / u128::from(tsc_ticks)) as u64
}
