//! TSC calibration against the 8254 PIT (channel 2, gated through port 0x61),
//! the one timer every PC-compatible machine and emulator has at a known rate.

use super::cpu::rdtsc;
use super::port::{inb, outb};

/// PIT input clock in Hz (8254 datasheet; fixed by the PC architecture).
pub const PIT_HZ: u64 = 1_193_182;

const PORT_CH2: u16 = 0x42;
const PORT_CMD: u16 = 0x43;
const PORT_GATE: u16 = 0x61;

/// Measures the TSC frequency over `ms` milliseconds of PIT time; `None` if the
/// PIT never signalled (no PIT, or a broken emulation).
pub fn measure_tsc_khz(ms: u64) -> Option<u64> {
    let count = PIT_HZ * ms / 1000;
    if count == 0 || count > 0xFFFF {
        return None;
    }
    // Gate on, speaker off (bit 0 = gate of channel 2, bit 1 = speaker data).
    let gate = inb(PORT_GATE);
    outb(PORT_GATE, (gate & !0x02) | 0x01);
    // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
    outb(PORT_CMD, 0b1011_0000);
    outb(PORT_CH2, count as u8);
    outb(PORT_CH2, (count >> 8) as u8);
    // Restart the count by toggling the gate (mode 0 restarts on load).
    let g = inb(PORT_GATE);
    outb(PORT_GATE, g & !0x01);
    outb(PORT_GATE, g | 0x01);
    let start = rdtsc();
    // OUT2 is readable as bit 5 of port 0x61; it goes high at terminal count.
    let mut spins: u64 = 0;
    while inb(PORT_GATE) & 0x20 == 0 {
        spins += 1;
        if spins > 200_000_000 {
            outb(PORT_GATE, gate);
            return None;
        }
    }
    let end = rdtsc();
    outb(PORT_GATE, gate);
    let ticks = end.wrapping_sub(start);
    if ticks == 0 {
        return None;
    }
    // kHz = ticks / seconds / 1000, seconds = count / PIT_HZ.
    Some((u128::from(ticks) * u128::from(PIT_HZ) / (u128::from(count) * 1000)) as u64)
}
