//! What dom0's trapped port I/O means. dom0 owns the platform's ports; the
//! hypervisor traps only those through which dom0 ends or restarts the
//! machine (so every CPU leaves VMX operation and the statistics are
//! printed) and COM1's data port (to watch for debug keys); everything else
//! passes through to the hardware.

/// The reset control register of the PCI host bridge (port 0xCF9).
pub const PORT_RESET_CONTROL: u16 = 0xCF9;
/// The keyboard controller's command port.
pub const PORT_KBC_COMMAND: u16 = 0x64;
/// The KBC command that pulses the reset line.
const KBC_RESET: u8 = 0xFE;
/// PM1 control: SLP_EN (ACPI 6.5 §4.8.3.2.1).
const SLP_EN: u64 = 1 << 13;

/// The platform facts the policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dom0Ports {
    /// The ACPI PM1a control port (0 = none).
    pub pm1a_cnt: u16,
    /// The S5 sleep type from the DSDT.
    pub s5_type: Option<u8>,
    /// The console UART's base port.
    pub console: u16,
}

/// What an OUT from dom0 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutAction {
    /// Power the machine off (ACPI S5 requested).
    PowerOff,
    /// Reset the machine.
    Reset,
    /// Do it on the hardware.
    Passthrough,
}

/// An OUT of `value` (`size` bytes) to `port`.
pub fn dom0_out(p: &Dom0Ports, port: u16, size: u8, value: u64) -> OutAction {
    if p.pm1a_cnt != 0 && port == p.pm1a_cnt && size >= 2 && value & SLP_EN != 0 {
        let typ = ((value >> 10) & 7) as u8;
        if Some(typ) == p.s5_type {
            return OutAction::PowerOff;
        }
    }
    // 0xCF9 bit 2 starts the reset (bit 1 chooses hard or soft).
    if (port == PORT_RESET_CONTROL && value & 0x4 != 0) || (port == PORT_KBC_COMMAND && value as u8 == KBC_RESET) {
        return OutAction::Reset;
    }
    OutAction::Passthrough
}

/// Whether an IN of `size` bytes from `port` reads the console's receive
/// buffer (when the line-control register's DLAB, read separately, is 0):
/// the byte is a typed key.
pub fn is_console_receive(p: &Dom0Ports, port: u16, size: u8) -> bool {
    port == p.console && size == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Dom0Ports = Dom0Ports { pm1a_cnt: 0xB004, s5_type: Some(5), console: 0x3F8 };

    #[test]
    fn power_off_needs_slp_en_and_the_s5_type() {
        assert_eq!(dom0_out(&P, 0xB004, 2, (5 << 10) | SLP_EN), OutAction::PowerOff);
        assert_eq!(dom0_out(&P, 0xB004, 2, 5 << 10), OutAction::Passthrough);
        assert_eq!(dom0_out(&P, 0xB004, 2, (1 << 10) | SLP_EN), OutAction::Passthrough, "S1 is not ours");
        assert_eq!(dom0_out(&P, 0xB004, 1, (5 << 10) | SLP_EN), OutAction::Passthrough);
        let none = Dom0Ports { pm1a_cnt: 0, ..P };
        assert_eq!(dom0_out(&none, 0, 2, (5 << 10) | SLP_EN), OutAction::Passthrough);
    }

    #[test]
    fn resets() {
        assert_eq!(dom0_out(&P, 0xCF9, 1, 0x06), OutAction::Reset);
        assert_eq!(dom0_out(&P, 0xCF9, 1, 0x02), OutAction::Passthrough);
        assert_eq!(dom0_out(&P, 0x64, 1, 0xFE), OutAction::Reset);
        assert_eq!(dom0_out(&P, 0x64, 1, 0xAD), OutAction::Passthrough);
    }

    #[test]
    fn console_receive() {
        assert!(is_console_receive(&P, 0x3F8, 1));
        assert!(!is_console_receive(&P, 0x3F8, 2));
        assert!(!is_console_receive(&P, 0x3F9, 1));
    }
}
