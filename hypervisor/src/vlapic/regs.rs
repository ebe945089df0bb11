//! The register file of the virtual local APIC, keyed by xAPIC MMIO offset.
//!
//! Offsets follow SDM Vol. 3A §12.4.1, Table 12-1 ("Local APIC Register Address
//! Map"). Every register occupies the first 32 bits of a 16-byte slot, which is
//! also the layout of the virtual-APIC page (SDM Vol. 3C §30.1, "Virtual APIC
//! State"), so the file is simply one `u32` per slot: slot `i` holds the
//! register at offset `i * 16`. In x2APIC mode the register at offset `X` is
//! MSR `0x800 + X / 16` (SDM §12.12.1.2, Table 12-6).

/// Local APIC ID.
pub const ID: u32 = 0x020;
/// Local APIC version (read-only).
pub const VERSION: u32 = 0x030;
/// Task priority.
pub const TPR: u32 = 0x080;
/// Arbitration priority (xAPIC only, read-only, computed).
pub const APR: u32 = 0x090;
/// Processor priority (read-only, computed).
pub const PPR: u32 = 0x0A0;
/// End of interrupt (write-only).
pub const EOI: u32 = 0x0B0;
/// Logical destination.
pub const LDR: u32 = 0x0D0;
/// Destination format (xAPIC only).
pub const DFR: u32 = 0x0E0;
/// Spurious-interrupt vector.
pub const SVR: u32 = 0x0F0;
/// In-service register, eight 32-bit words from here.
pub const ISR: u32 = 0x100;
/// Trigger-mode register, eight 32-bit words from here.
pub const TMR: u32 = 0x180;
/// Interrupt-request register, eight 32-bit words from here.
pub const IRR: u32 = 0x200;
/// Error status.
pub const ESR: u32 = 0x280;
/// LVT corrected machine-check interrupt.
pub const LVT_CMCI: u32 = 0x2F0;
/// Interrupt command, low half (the write that sends the IPI).
pub const ICR_LO: u32 = 0x300;
/// Interrupt command, high half (xAPIC destination in bits 31:24).
pub const ICR_HI: u32 = 0x310;
/// LVT timer.
pub const LVT_TIMER: u32 = 0x320;
/// LVT thermal sensor.
pub const LVT_THERMAL: u32 = 0x330;
/// LVT performance-monitoring counters.
pub const LVT_PERF: u32 = 0x340;
/// LVT LINT0.
pub const LVT_LINT0: u32 = 0x350;
/// LVT LINT1.
pub const LVT_LINT1: u32 = 0x360;
/// LVT error.
pub const LVT_ERROR: u32 = 0x370;
/// Timer initial count.
pub const TIMER_INITIAL: u32 = 0x380;
/// Timer current count (read-only, computed from the clock).
pub const TIMER_CURRENT: u32 = 0x390;
/// Timer divide configuration.
pub const TIMER_DIVIDE: u32 = 0x3E0;
/// SELF IPI (x2APIC only, write-only; SDM §12.12.11).
pub const SELF_IPI: u32 = 0x3F0;

/// All seven local vector table entries (SDM §12.5.1).
pub const LVTS: [u32; 7] = [
    LVT_CMCI,
    LVT_TIMER,
    LVT_THERMAL,
    LVT_PERF,
    LVT_LINT0,
    LVT_LINT1,
    LVT_ERROR,
];

/// First MSR of the x2APIC range (SDM §12.12.1.2).
pub const X2APIC_MSR_FIRST: u32 = 0x800;
/// Last MSR of the x2APIC range.
pub const X2APIC_MSR_LAST: u32 = 0x8FF;

/// The x2APIC MSR of the register at xAPIC offset `offset`.
pub const fn msr_of(offset: u32) -> u32 {
    X2APIC_MSR_FIRST + (offset >> 4)
}

/// The xAPIC offset of x2APIC MSR `msr` (which must be in the x2APIC range).
pub const fn offset_of(msr: u32) -> u32 {
    (msr - X2APIC_MSR_FIRST) << 4
}

// --- Register fields -------------------------------------------------------

/// The version we implement: 0x14 is an integrated (not 82489DX) APIC, as on
/// every processor since the Pentium 4 (SDM §12.4.8, Figure 12-7).
pub const APIC_VERSION: u32 = 0x14;
/// Max LVT Entry field: the number of LVT entries minus one. The register
/// file keeps seven entries, but we advertise six (no CMCI, field = 5, SDM
/// §12.4.8, §12.5.1): with hardware APIC-register virtualization a read of
/// 0x2F0 is not virtualized and would need instruction emulation, and a
/// guest that sees Max LVT < 6 never touches the CMCI entry.
pub const MAX_LVT_ENTRY: u32 = 5;
/// Version bit 24: EOI-broadcast suppression is supported (SDM §12.8.5).
pub const VERSION_DIRECTED_EOI: u32 = 1 << 24;

/// SVR: APIC software enable (SDM §12.9, Figure 12-23).
pub const SVR_ENABLE: u32 = 1 << 8;
/// SVR: suppress EOI broadcasts (only writable if advertised in VERSION).
pub const SVR_SUPPRESS_EOI_BROADCAST: u32 = 1 << 12;
/// SVR after power-up or reset (SDM §12.4.7.1).
pub const SVR_RESET: u32 = 0xFF;

/// LVT mask bit (SDM §12.5.1, Figure 12-8).
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT LINT0/LINT1 remote IRR flag (read-only).
pub const LVT_REMOTE_IRR: u32 = 1 << 14;
/// LVT LINT0/LINT1 trigger mode: level.
pub const LVT_LEVEL: u32 = 1 << 15;
/// LVT timer mode field (bits 18:17).
pub const LVT_TIMER_MODE_SHIFT: u32 = 17;

/// The bits software may write in each LVT entry (SDM §12.5.1, Figure 12-8);
/// delivery status (bit 12) always reads 0 and remote IRR (bit 14) is
/// read-only.
pub const fn lvt_writable(offset: u32) -> u32 {
    match offset {
        // Vector, mask, timer mode (bits 18:17).
        LVT_TIMER => 0x0006_00FF | LVT_MASKED,
        // Vector, delivery mode, mask.
        LVT_CMCI | LVT_THERMAL | LVT_PERF => 0x0000_07FF | LVT_MASKED,
        // Vector, delivery mode, polarity, trigger mode, mask.
        LVT_LINT0 | LVT_LINT1 => 0x0000_27FF | LVT_LEVEL | LVT_MASKED,
        // Vector, mask.
        _ => 0x0000_00FF | LVT_MASKED,
    }
}

/// ESR: the APIC detected an illegal vector in a message it sent.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR: the APIC received an illegal vector (0-15).
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR: access to an unimplemented register (SDM §12.5.3, Figure 12-9).
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// DFR bits 27:0 always read as ones; only the model (31:28) is writable.
pub const DFR_RESERVED_ONES: u32 = 0x0FFF_FFFF;

/// The ICR bits software may write in xAPIC mode: vector, delivery mode,
/// destination mode, level, trigger mode and shorthand (SDM §12.6.1,
/// Figure 12-12). Delivery status (bit 12) is read-only and reads 0 here
/// because our IPIs are delivered at once.
pub const ICR_LO_WRITABLE: u32 = 0x000C_CFFF;
/// The ICR bits that are reserved in x2APIC mode and make WRMSR fault
/// (SDM §12.12.9, Figure 12-28): 13, 17:16 and 31:20. Bit 12 (delivery
/// status in xAPIC mode) is ignored.
pub const ICR_X2APIC_RESERVED: u64 = (1 << 13) | (0b11 << 16) | 0xFFF0_0000;

/// One bit per vector in the 256-bit ISR, TMR and IRR (SDM §12.8.4): vector
/// `v` is bit `v % 32` of the word at offset `base + (v / 32) * 16`.
const fn word_index(base: u32, vector: u8) -> usize {
    (base >> 4) as usize + (vector as usize >> 5)
}

/// The 64 register slots of one local APIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegFile {
    words: [u32; 64],
}

impl RegFile {
    /// All registers zero.
    pub const fn zeroed() -> Self {
        Self { words: [0; 64] }
    }

    /// The stored register at `offset` (a 16-byte aligned offset below
    /// 0x400; other offsets read 0).
    pub fn get(&self, offset: u32) -> u32 {
        self.words.get((offset >> 4) as usize).copied().unwrap_or(0)
    }

    /// Stores `value` in the register at `offset` (ignored beyond 0x3F0).
    pub fn set(&mut self, offset: u32, value: u32) {
        if let Some(word) = self.words.get_mut((offset >> 4) as usize) {
            *word = value;
        }
    }

    /// Whether `vector` is set in the bitmap at `base` (ISR, TMR or IRR).
    pub fn test(&self, base: u32, vector: u8) -> bool {
        self.words[word_index(base, vector)] & (1 << (vector & 31)) != 0
    }

    /// Sets or clears `vector` in the bitmap at `base`.
    pub fn put(&mut self, base: u32, vector: u8, on: bool) {
        let word = &mut self.words[word_index(base, vector)];
        if on {
            *word |= 1 << (vector & 31);
        } else {
            *word &= !(1 << (vector & 31));
        }
    }

    /// The highest vector set in the bitmap at `base`.
    pub fn highest(&self, base: u32) -> Option<u8> {
        (0..8u8).rev().find_map(|i| {
            let word = self.words[word_index(base, i * 32)];
            (word != 0).then(|| i * 32 + (31 - word.leading_zeros() as u8))
        })
    }

    /// The eight words of the bitmap at `base`.
    pub fn bitmap(&self, base: u32) -> [u32; 8] {
        let first = word_index(base, 0);
        let mut out = [0; 8];
        out.copy_from_slice(&self.words[first..first + 8]);
        out
    }

    /// Replaces the bitmap at `base`.
    pub fn set_bitmap(&mut self, base: u32, words: [u32; 8]) {
        let first = word_index(base, 0);
        self.words[first..first + 8].copy_from_slice(&words);
    }
}
