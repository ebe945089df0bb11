//! A domU's ACPI PM1 event block: the status and enable registers of the
//! fixed hardware features (ACPI 6.5 §4.8.3.1, Tables 4.11 and 4.12), with
//! the one fixed event the hypervisor raises: the power button
//! (§4.8.2.2.1.1). `xl-rs shutdown` presses it; the guest's ACPI driver
//! sees PWRBTN_STS through the SCI and tells its userspace, which powers the
//! guest off.
//!
//! The block is [`PM1_EVT_BYTES`] bytes of I/O ports: the 16-bit status
//! register, then the 16-bit enable register (each half of
//! `PM1_EVT_LEN`). Guests may access it a byte or a word at a time. Status
//! bits are "write 1 to clear"; enable bits hold what was written (of the
//! bits this platform has). The SCI is asserted while an enabled status bit
//! is set (§4.8.3.1: "an SCI is generated ... while the status and enable
//! bits are both set"); it is level-triggered.

/// Bytes of the block: status (2), then enable (2).
pub const PM1_EVT_BYTES: u16 = 4;

/// PM1 status and enable bits (Tables 4.11, 4.12; the same positions in
/// both registers).
pub mod bits {
    /// PM timer carry (there is no PM timer here: never set).
    pub const TMR: u16 = 1 << 0;
    /// Global lock release (no global lock owner but the guest: never set).
    pub const GBL: u16 = 1 << 5;
    /// Fixed-feature power button.
    pub const PWRBTN: u16 = 1 << 8;
    /// Fixed-feature sleep button (the FADT says there is none).
    pub const SLPBTN: u16 = 1 << 9;
    /// RTC alarm (no RTC alarm: never set).
    pub const RTC: u16 = 1 << 10;
    /// Wake status (status register only; set when the platform wakes: never
    /// here, the platform has no sleep states but S5).
    pub const WAK: u16 = 1 << 15;
}

/// Enable bits a guest can set: those of events that exist here, and the
/// ones ACPICA writes and reads back to probe for a feature (GBL_EN tells
/// it whether the global lock exists).
const ENABLE_MASK: u16 = bits::TMR | bits::GBL | bits::PWRBTN | bits::SLPBTN | bits::RTC;

/// The PM1a event registers of one domain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pm1Events {
    status: u16,
    enable: u16,
}

impl Pm1Events {
    /// Nothing pending, nothing enabled (the state at power-on).
    pub const fn new() -> Self {
        Self {
            status: 0,
            enable: 0,
        }
    }

    /// Presses the power button: PWRBTN_STS is set (and stays set until the
    /// guest clears it). Returns the SCI level afterwards.
    pub fn press_power_button(&mut self) -> bool {
        self.status |= bits::PWRBTN;
        self.sci_level()
    }

    /// Whether the SCI is asserted: an enabled status bit is set.
    pub fn sci_level(&self) -> bool {
        self.status & self.enable != 0
    }

    /// Whether the guest has enabled the power button event (its ACPI
    /// driver is listening).
    pub fn power_button_enabled(&self) -> bool {
        self.enable & bits::PWRBTN != 0
    }

    /// Reads `size` bytes (1, 2 or 4) at byte `offset` of the block; bytes
    /// past the block read as 0xFF, like an unclaimed port.
    pub fn read(&self, offset: u16, size: u8) -> u32 {
        let mut value = 0u32;
        for i in 0..u16::from(size.min(4)) {
            let byte = self.byte(offset.saturating_add(i));
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// Writes `size` bytes (1, 2 or 4) of `value` at byte `offset`: status
    /// bytes clear the bits written as 1, enable bytes take the value (of
    /// the bits that exist). Returns the SCI level afterwards.
    pub fn write(&mut self, offset: u16, size: u8, value: u32) -> bool {
        for i in 0..u16::from(size.min(4)) {
            let byte = (value >> (8 * i)) as u8;
            self.write_byte(offset.saturating_add(i), byte);
        }
        self.sci_level()
    }

    fn byte(&self, offset: u16) -> u8 {
        match offset {
            0 => self.status as u8,
            1 => (self.status >> 8) as u8,
            2 => self.enable as u8,
            3 => (self.enable >> 8) as u8,
            _ => 0xFF,
        }
    }

    fn write_byte(&mut self, offset: u16, byte: u8) {
        let b = u16::from(byte);
        match offset {
            0 => self.status &= !b,
            1 => self.status &= !(b << 8),
            2 => self.enable = (self.enable & 0xFF00) | (b & ENABLE_MASK),
            3 => self.enable = (self.enable & 0x00FF) | ((b << 8) & ENABLE_MASK),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_raises_the_sci_only_when_enabled() {
        let mut p = Pm1Events::new();
        assert!(!p.press_power_button(), "not enabled: no SCI");
        assert_eq!(
            p.read(0, 2),
            u32::from(bits::PWRBTN),
            "but the status is set"
        );
        assert!(
            p.write(2, 2, u32::from(bits::PWRBTN)),
            "enabling it with the status set raises the SCI"
        );
        assert!(p.power_button_enabled());
        // The guest clears the status: the SCI drops.
        assert!(!p.write(0, 2, u32::from(bits::PWRBTN)));
        assert_eq!(p.read(0, 2), 0);
        assert!(p.press_power_button());
    }

    #[test]
    fn status_is_write_one_to_clear() {
        let mut p = Pm1Events::new();
        p.press_power_button();
        p.write(0, 2, 0);
        assert_eq!(
            p.read(0, 2),
            u32::from(bits::PWRBTN),
            "writing 0 clears nothing"
        );
        p.write(0, 2, 0xFFFF & !u32::from(bits::PWRBTN));
        assert_eq!(
            p.read(0, 2),
            u32::from(bits::PWRBTN),
            "other bits do not clear it"
        );
        // The high byte alone (PWRBTN is bit 0 of byte 1).
        p.write(1, 1, 0x01);
        assert_eq!(p.read(0, 2), 0);
    }

    #[test]
    fn enable_keeps_only_bits_that_exist() {
        let mut p = Pm1Events::new();
        p.write(2, 2, 0xFFFF);
        assert_eq!(p.read(2, 2), u32::from(ENABLE_MASK));
        // GBL_EN reads back (ACPICA's global-lock probe).
        p.write(2, 2, u32::from(bits::GBL));
        assert_eq!(p.read(2, 2), u32::from(bits::GBL));
        // Byte writes to the two halves.
        p.write(3, 1, 0x01);
        assert_eq!(p.read(2, 2), u32::from(bits::GBL | bits::PWRBTN));
        p.write(2, 1, 0);
        assert_eq!(p.read(2, 2), u32::from(bits::PWRBTN));
    }

    #[test]
    fn dword_access_covers_both_registers_and_past_the_end_reads_ones() {
        let mut p = Pm1Events::new();
        p.press_power_button();
        p.write(0, 4, u32::from(bits::PWRBTN) << 16);
        assert_eq!(
            p.read(0, 4),
            (u32::from(bits::PWRBTN) << 16) | u32::from(bits::PWRBTN)
        );
        assert!(p.sci_level());
        assert_eq!(p.read(3, 2), 0xFF01, "byte 4 is past the block");
        assert!(
            !p.write(0, 4, u32::from(bits::PWRBTN)),
            "clears status, and enable becomes 0"
        );
        assert_eq!(p.read(0, 4), 0);
    }
}
