//! What dom0's trapped port I/O means. dom0 owns the platform's ports; the
//! hypervisor traps only those through which dom0 ends or restarts the
//! machine (so every CPU leaves VMX operation and the statistics are
//! printed), COM1's data port (to watch for debug keys) and the PCI
//! configuration ports 0xCF8 to 0xCFF (to present the notification device,
//! [`crate::vdev::notify_pci`]); everything else passes through to the
//! hardware.

use crate::vdev::pci_config::{self, Bdf, CONFIG_ADDRESS, ConfigAddress};

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
    /// A write to the console UART's data port, which the hypervisor's log
    /// shares: do it on the hardware, between two of the hypervisor's log
    /// lines, never inside one.
    ConsoleData,
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
    if (port == PORT_RESET_CONTROL && value & 0x4 != 0)
        || (port == PORT_KBC_COMMAND && value as u8 == KBC_RESET)
    {
        return OutAction::Reset;
    }
    if port == p.console {
        return OutAction::ConsoleData;
    }
    OutAction::Passthrough
}

/// Whether an IN of `size` bytes from `port` reads the console's receive
/// buffer (when the line-control register's DLAB, read separately, is 0):
/// the byte is a typed key.
pub fn is_console_receive(p: &Dom0Ports, port: u16, size: u8) -> bool {
    port == p.console && size == 1
}

/// What an access by dom0 to one of the configuration ports
/// ([`pci_config::PORTS`]) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciPortAccess {
    /// A dword at `CONFIG_ADDRESS`: dom0's address latch, kept by the
    /// hypervisor (the hardware register is shared with the hypervisor's
    /// own accesses).
    Address,
    /// `CONFIG_DATA` while the latch names the notification device: the
    /// first `bytes` bytes of the access are its configuration space at
    /// `offset`; any further bytes (an access running past 0xCFF) read as
    /// all-ones and ignore writes.
    Notify {
        /// Configuration-space offset of the first byte.
        offset: u16,
        /// Bytes inside `CONFIG_DATA`.
        bytes: u8,
    },
    /// `CONFIG_DATA` for anything else (another function, or the latch not
    /// enabled): on the hardware, with dom0's latch in `CONFIG_ADDRESS`
    /// first.
    Hardware,
    /// A byte or word at 0xCF8 to 0xCFB: not configuration space, ordinary
    /// port I/O (the reset control register 0xCF9 among them).
    Plain,
}

/// Classifies dom0's access of `size` bytes at `port` under its address
/// latch `latch`, the notification device being at `notify` (if presented).
/// `None` when `port` is not a configuration port.
pub fn dom0_pci_port(
    latch: u32,
    port: u16,
    size: u8,
    notify: Option<Bdf>,
) -> Option<PciPortAccess> {
    if !pci_config::PORTS.contains(&port) {
        return None;
    }
    if port < pci_config::CONFIG_DATA {
        return Some(if port == CONFIG_ADDRESS && size == 4 {
            PciPortAccess::Address
        } else {
            PciPortAccess::Plain
        });
    }
    Some(match (ConfigAddress(latch).data_access(port), notify) {
        (Some((bdf, offset)), Some(dev)) if bdf == dev => PciPortAccess::Notify {
            offset,
            bytes: pci_config::data_bytes(port, size),
        },
        _ => PciPortAccess::Hardware,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn console_data_writes_are_told_apart() {
        assert_eq!(
            dom0_out(&P, P.console, 1, u64::from(b'x')),
            OutAction::ConsoleData
        );
        assert_eq!(dom0_out(&P, P.console + 5, 1, 0), OutAction::Passthrough);
    }
    use super::*;

    const P: Dom0Ports = Dom0Ports {
        pm1a_cnt: 0xB004,
        s5_type: Some(5),
        console: 0x3F8,
    };

    #[test]
    fn power_off_needs_slp_en_and_the_s5_type() {
        assert_eq!(
            dom0_out(&P, 0xB004, 2, (5 << 10) | SLP_EN),
            OutAction::PowerOff
        );
        assert_eq!(dom0_out(&P, 0xB004, 2, 5 << 10), OutAction::Passthrough);
        assert_eq!(
            dom0_out(&P, 0xB004, 2, (1 << 10) | SLP_EN),
            OutAction::Passthrough,
            "S1 is not ours"
        );
        assert_eq!(
            dom0_out(&P, 0xB004, 1, (5 << 10) | SLP_EN),
            OutAction::Passthrough
        );
        let none = Dom0Ports { pm1a_cnt: 0, ..P };
        assert_eq!(
            dom0_out(&none, 0, 2, (5 << 10) | SLP_EN),
            OutAction::Passthrough
        );
    }

    #[test]
    fn resets() {
        assert_eq!(dom0_out(&P, 0xCF9, 1, 0x06), OutAction::Reset);
        assert_eq!(dom0_out(&P, 0xCF9, 1, 0x02), OutAction::Passthrough);
        assert_eq!(dom0_out(&P, 0x64, 1, 0xFE), OutAction::Reset);
        assert_eq!(dom0_out(&P, 0x64, 1, 0xAD), OutAction::Passthrough);
    }

    #[test]
    fn pci_ports() {
        let dev = Bdf {
            bus: 0,
            device: 31,
            function: 0,
        };
        let at = |reg| ConfigAddress::new(dev, reg).0;
        let other = ConfigAddress::new(
            Bdf {
                bus: 0,
                device: 1,
                function: 0,
            },
            0,
        )
        .0;
        assert_eq!(
            dom0_pci_port(0, 0xCF8, 4, Some(dev)),
            Some(PciPortAccess::Address)
        );
        assert_eq!(
            dom0_pci_port(0, 0xCF8, 1, Some(dev)),
            Some(PciPortAccess::Plain)
        );
        assert_eq!(
            dom0_pci_port(0, 0xCF9, 1, Some(dev)),
            Some(PciPortAccess::Plain)
        );
        assert_eq!(
            dom0_pci_port(0, 0xCFB, 1, Some(dev)),
            Some(PciPortAccess::Plain)
        );
        assert_eq!(
            dom0_pci_port(at(0), 0xCFC, 4, Some(dev)),
            Some(PciPortAccess::Notify {
                offset: 0,
                bytes: 4
            })
        );
        assert_eq!(
            dom0_pci_port(at(0x40), 0xCFE, 2, Some(dev)),
            Some(PciPortAccess::Notify {
                offset: 0x42,
                bytes: 2
            })
        );
        assert_eq!(
            dom0_pci_port(at(0x40), 0xCFF, 4, Some(dev)),
            Some(PciPortAccess::Notify {
                offset: 0x43,
                bytes: 1
            })
        );
        assert_eq!(
            dom0_pci_port(other, 0xCFC, 4, Some(dev)),
            Some(PciPortAccess::Hardware)
        );
        assert_eq!(
            dom0_pci_port(at(0) & !(1 << 31), 0xCFC, 4, Some(dev)),
            Some(PciPortAccess::Hardware),
            "not enabled"
        );
        assert_eq!(
            dom0_pci_port(at(0), 0xCFC, 4, None),
            Some(PciPortAccess::Hardware),
            "no device presented"
        );
        assert_eq!(dom0_pci_port(at(0), 0xCF7, 4, Some(dev)), None);
        assert_eq!(dom0_pci_port(at(0), 0xD00, 4, Some(dev)), None);
    }

    #[test]
    fn console_receive() {
        assert!(is_console_receive(&P, 0x3F8, 1));
        assert!(!is_console_receive(&P, 0x3F8, 2));
        assert!(!is_console_receive(&P, 0x3F9, 1));
    }
}
