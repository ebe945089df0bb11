//! The notification device: a PCI function the hypervisor presents to dom0
//! so that dom0's `hvctl` driver can bind to it like any PCI driver and take
//! the hypervisor's event interrupts as an MSI.
//!
//! This is its configuration space, and nothing else: a type-0 header (PCI
//! Local Bus Specification 3.0 §6.1, §6.2) without BARs, expansion ROM or
//! INTx pin, whose capabilities list (§6.7) holds one MSI capability (§6.8.1)
//! with a 64-bit message address, one message and per-vector masking.
//!
//! - Read-only registers ignore writes; the writable ones are the command
//!   register's bus-master, parity-response, SERR# and interrupt-disable
//!   bits (the device has no I/O or memory space, so those enables are
//!   hard-wired to 0), the interrupt line, and the MSI enable, multiple
//!   message enable, address, data and mask bit.
//! - Any access of 1 to 4 bytes at any offset works the way byte enables do
//!   on the bus: each byte lane of the dword(s) it covers is read or written
//!   on its own, so a word write to the upper half of the command/status
//!   dword changes nothing in the command register. Bytes past offset 0xFF
//!   read as 0xFF and ignore writes.
//! - The device signals (a memory write of the message) only when MSI is
//!   enabled and bus mastering is on (§6.2.2: a function may not initiate
//!   transactions otherwise). While its vector is masked it sets its pending
//!   bit instead, and sends the message when it is unmasked (§6.8.1.7,
//!   §6.8.1.8).

use dom0_abi::event::{NOTIFY_PCI_CLASS, NOTIFY_PCI_DEVICE_ID, NOTIFY_PCI_VENDOR_ID};

/// Bytes of a conventional PCI configuration space.
pub const CONFIG_SPACE_BYTES: u16 = 256;

/// Where the MSI capability starts (the capabilities pointer's value).
pub const MSI_CAP_OFFSET: u8 = 0x40;
/// The MSI capability ID (PCI 3.0 Appendix H).
pub const CAP_ID_MSI: u8 = 0x05;
/// The device's revision ID.
pub const REVISION_ID: u8 = 0x01;

/// Command register bits (PCI 3.0 §6.2.2).
pub mod command {
    /// Bus Master Enable.
    pub const BUS_MASTER: u16 = 1 << 2;
    /// Parity Error Response.
    pub const PARITY_ERROR_RESPONSE: u16 = 1 << 6;
    /// SERR# Enable.
    pub const SERR: u16 = 1 << 8;
    /// Interrupt Disable (INTx only; MSI is not affected).
    pub const INTX_DISABLE: u16 = 1 << 10;
    /// The bits this device implements.
    pub const WRITABLE: u16 = BUS_MASTER | PARITY_ERROR_RESPONSE | SERR | INTX_DISABLE;
}

/// Status register: Capabilities List (PCI 3.0 §6.2.3).
const STATUS_CAP_LIST: u16 = 1 << 4;

/// MSI message control bits (PCI 3.0 §6.8.1.3).
pub mod msi_control {
    /// MSI Enable.
    pub const ENABLE: u16 = 1 << 0;
    /// Multiple Message Enable (bits 6:4): writable; only one message is
    /// ever sent, since Multiple Message Capable is 0.
    pub const MULTIPLE_MESSAGE_ENABLE: u16 = 0b111 << 4;
    /// 64-bit address capable.
    pub const ADDRESS_64: u16 = 1 << 7;
    /// Per-vector masking capable.
    pub const PER_VECTOR_MASKING: u16 = 1 << 8;
}

// Dword registers of the MSI capability (64-bit, per-vector masking
// layout, PCI 3.0 Figure 6-9), as offsets from the start of the space.
const MSI_HEADER: u8 = MSI_CAP_OFFSET;
const MSI_ADDRESS_LOW: u8 = MSI_CAP_OFFSET + 0x04;
const MSI_ADDRESS_HIGH: u8 = MSI_CAP_OFFSET + 0x08;
const MSI_DATA: u8 = MSI_CAP_OFFSET + 0x0C;
const MSI_MASK: u8 = MSI_CAP_OFFSET + 0x10;
const MSI_PENDING: u8 = MSI_CAP_OFFSET + 0x14;

/// The message a function with MSI enabled writes to signal: `data` to
/// `address` (PCI 3.0 §6.8.1.4 to §6.8.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiMessage {
    /// Message address (bits 1:0 are 0).
    pub address: u64,
    /// Message data (16 bits).
    pub data: u16,
}

/// What an x86 message asks for: Intel SDM Vol. 3A §12.11.1 "Message
/// Address Register Format" and §12.11.2 "Message Data Register Format".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct X86Interrupt {
    /// Destination ID (address bits 19:12): an APIC ID, or a logical
    /// destination when `logical`.
    pub destination: u8,
    /// Destination mode (address bit 2): logical.
    pub logical: bool,
    /// Redirection hint (address bit 3): deliver to one of the destinations
    /// (lowest priority) rather than to all of them.
    pub redirection_hint: bool,
    /// Delivery mode (data bits 10:8): 0 fixed, 1 lowest priority.
    pub lowest_priority: bool,
    /// The vector (data bits 7:0).
    pub vector: u8,
}

/// Why an MSI message cannot be delivered as an x86 interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiDecodeError {
    /// The address is outside `0xFEE00000..=0xFEEFFFFF`: on the platform the
    /// write would go to memory, not to a local APIC.
    NotInterruptAddress,
    /// A delivery mode other than fixed or lowest priority (SMI, NMI, INIT,
    /// ExtINT), which the device has no business sending.
    UnsupportedDeliveryMode(u8),
    /// Vectors 0 to 15 are illegal (SDM Vol. 3A §12.5.2).
    IllegalVector(u8),
}

impl MsiMessage {
    /// Decodes the message as the local APICs would.
    pub fn x86_interrupt(&self) -> Result<X86Interrupt, MsiDecodeError> {
        if self.address >> 20 != 0xFEE {
            return Err(MsiDecodeError::NotInterruptAddress);
        }
        let mode = ((self.data >> 8) & 0b111) as u8;
        if mode > 1 {
            return Err(MsiDecodeError::UnsupportedDeliveryMode(mode));
        }
        let vector = self.data as u8;
        if vector < 16 {
            return Err(MsiDecodeError::IllegalVector(vector));
        }
        Ok(X86Interrupt {
            destination: (self.address >> 12) as u8,
            logical: self.address & (1 << 2) != 0,
            redirection_hint: self.address & (1 << 3) != 0,
            lowest_priority: mode == 1,
            vector,
        })
    }
}

/// The configuration space of the notification device.
#[derive(Debug, Clone)]
pub struct NotifyPci {
    /// The space as 64 dwords, read-only values included.
    regs: [u32; 64],
}

impl Default for NotifyPci {
    fn default() -> Self {
        Self::new()
    }
}

/// The bits of the dword at `reg` (a multiple of 4) that software can write.
fn writable(reg: u8) -> u32 {
    match reg {
        // Command (status has no bit software can change: it reports no
        // error, so its write-1-to-clear bits stay 0).
        0x04 => u32::from(command::WRITABLE),
        // Interrupt line: a scratch byte for software (§6.2.4).
        0x3C => 0xFF,
        MSI_HEADER => u32::from(msi_control::ENABLE | msi_control::MULTIPLE_MESSAGE_ENABLE) << 16,
        MSI_ADDRESS_LOW => 0xFFFF_FFFC,
        MSI_ADDRESS_HIGH => 0xFFFF_FFFF,
        MSI_DATA => 0xFFFF,
        // One vector: only its mask bit exists.
        MSI_MASK => 1,
        _ => 0,
    }
}

impl NotifyPci {
    /// The device as it comes out of reset: MSI disabled, command register 0.
    pub fn new() -> Self {
        let mut regs = [0u32; 64];
        regs[0] = u32::from(NOTIFY_PCI_VENDOR_ID) | u32::from(NOTIFY_PCI_DEVICE_ID) << 16;
        regs[1] = u32::from(STATUS_CAP_LIST) << 16;
        // Revision, programming interface 0, sub-class and base class.
        regs[2] = u32::from(REVISION_ID) | u32::from(NOTIFY_PCI_CLASS) << 16;
        // Cache line size, latency timer, header type 0 (single function),
        // BIST: all 0. BARs, CardBus CIS, expansion ROM: 0 (none).
        regs[0x2C / 4] = u32::from(NOTIFY_PCI_VENDOR_ID) | u32::from(NOTIFY_PCI_DEVICE_ID) << 16;
        regs[0x34 / 4] = u32::from(MSI_CAP_OFFSET);
        // Interrupt line 0xFF (unknown), interrupt pin 0 (no INTx).
        regs[0x3C / 4] = 0xFF;
        let control = msi_control::ADDRESS_64 | msi_control::PER_VECTOR_MASKING;
        regs[usize::from(MSI_HEADER / 4)] = u32::from(CAP_ID_MSI) | u32::from(control) << 16;
        Self { regs }
    }

    fn dword(&self, reg: u8) -> u32 {
        self.regs[usize::from(reg / 4)]
    }

    fn byte(&self, offset: u16) -> u8 {
        if offset >= CONFIG_SPACE_BYTES {
            return 0xFF;
        }
        (self.dword(offset as u8 & !3) >> (8 * (offset & 3))) as u8
    }

    /// Reads `size` bytes (1 to 4; others are taken as 4) at `offset`,
    /// little-endian.
    pub fn read(&self, offset: u16, size: u8) -> u32 {
        let size = if (1..=4).contains(&size) { size } else { 4 };
        (0..u16::from(size)).fold(0, |acc, i| {
            acc | u32::from(self.byte(offset.saturating_add(i))) << (8 * i)
        })
    }

    /// Writes the low `size` bytes (1 to 4; others are taken as 4) of
    /// `value` at `offset`. Returns the message to send when the write lets
    /// a held one go (unmasking with the pending bit set).
    pub fn write(&mut self, offset: u16, size: u8, value: u32) -> Option<MsiMessage> {
        let size = if (1..=4).contains(&size) { size } else { 4 };
        for i in 0..u16::from(size) {
            let Some(at) = offset.checked_add(i).filter(|&a| a < CONFIG_SPACE_BYTES) else {
                break;
            };
            let byte = (value >> (8 * i)) as u8;
            let reg = at as u8 & !3;
            let shift = 8 * (at & 3);
            let lane = (0xFFu32 << shift) & writable(reg);
            let slot = &mut self.regs[usize::from(reg / 4)];
            *slot = (*slot & !lane) | ((u32::from(byte) << shift) & lane);
        }
        self.release_pending()
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.dword(0x04) as u16
    }

    fn msi_control(&self) -> u16 {
        (self.dword(MSI_HEADER) >> 16) as u16
    }

    /// Whether MSI is enabled.
    pub fn msi_enabled(&self) -> bool {
        self.msi_control() & msi_control::ENABLE != 0
    }

    /// Whether the device may signal at all: MSI enabled and bus master.
    fn can_signal(&self) -> bool {
        self.msi_enabled() && self.command() & command::BUS_MASTER != 0
    }

    /// Whether the vector is masked.
    pub fn masked(&self) -> bool {
        self.dword(MSI_MASK) & 1 != 0
    }

    /// Whether a message is held back by the mask.
    pub fn pending(&self) -> bool {
        self.dword(MSI_PENDING) & 1 != 0
    }

    /// The programmed message.
    pub fn message(&self) -> MsiMessage {
        MsiMessage {
            address: u64::from(self.dword(MSI_ADDRESS_HIGH)) << 32
                | u64::from(self.dword(MSI_ADDRESS_LOW)),
            data: self.dword(MSI_DATA) as u16,
        }
    }

    /// The device has something to signal: returns the message to send now,
    /// or `None` when MSI is off or bus mastering is off (nothing is sent
    /// or kept) or the vector is masked (the pending bit is set and the
    /// message goes out at the unmask).
    pub fn signal(&mut self) -> Option<MsiMessage> {
        if !self.can_signal() {
            return None;
        }
        if self.masked() {
            self.regs[usize::from(MSI_PENDING / 4)] |= 1;
            return None;
        }
        Some(self.message())
    }

    fn release_pending(&mut self) -> Option<MsiMessage> {
        if self.pending() && self.can_signal() && !self.masked() {
            self.regs[usize::from(MSI_PENDING / 4)] &= !1;
            return Some(self.message());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> NotifyPci {
        let mut d = NotifyPci::new();
        d.write(0x44, 4, 0xFEE0_1000);
        d.write(0x48, 4, 0);
        d.write(0x4C, 2, 0x0041);
        d.write(0x04, 2, u32::from(command::BUS_MASTER));
        d.write(0x42, 2, u32::from(msi_control::ENABLE));
        d
    }

    #[test]
    fn header_identifies_the_device() {
        let d = NotifyPci::new();
        assert_eq!(d.read(0, 2), u32::from(NOTIFY_PCI_VENDOR_ID));
        assert_eq!(d.read(2, 2), u32::from(NOTIFY_PCI_DEVICE_ID));
        assert_eq!(d.read(0, 4), 0x0001_4F58);
        assert_eq!(d.read(0x06, 2), 0x0010, "capabilities list, no error");
        assert_eq!(
            d.read(0x08, 4),
            0x0880_0001,
            "class 08/80, prog-if 0, revision 1"
        );
        assert_eq!(d.read(0x0E, 1), 0, "header type 0, single function");
        assert_eq!(d.read(0x34, 1), 0x40);
        assert_eq!(d.read(0x3D, 1), 0, "no INTx pin");
        assert_eq!(d.read(0x2C, 4), 0x0001_4F58, "subsystem IDs");
        // The capability: ID 5, last in the list, 64-bit, per-vector masking.
        assert_eq!(d.read(0x40, 1), 0x05);
        assert_eq!(d.read(0x41, 1), 0x00);
        assert_eq!(d.read(0x42, 2), 0x0180);
        assert_eq!(d.read(0x58, 4), 0, "nothing after the capability");
    }

    #[test]
    fn bars_and_rom_read_zero_after_sizing() {
        let mut d = NotifyPci::new();
        for bar in (0x10..=0x24).step_by(4).chain([0x30]) {
            d.write(bar, 4, 0xFFFF_FFFF);
            assert_eq!(d.read(bar, 4), 0, "{bar:#x}: not implemented");
        }
    }

    #[test]
    fn read_only_fields_stay_read_only() {
        let mut d = NotifyPci::new();
        let before = d.clone();
        for offset in [
            0x00u16, 0x02, 0x06, 0x08, 0x0C, 0x2C, 0x34, 0x3D, 0x40, 0x41, 0x54,
        ] {
            d.write(offset, 2, 0xFFFF);
        }
        for offset in (0..256).step_by(4) {
            let skip = [0x04, 0x3C, 0x40];
            if !skip.contains(&offset) {
                assert_eq!(d.read(offset, 4), before.read(offset, 4), "{offset:#x}");
            }
        }
        assert_eq!(d.read(0x06, 2), 0x0010);
        assert_eq!(d.read(0x40, 2), 0x0005);
        d.write(0x04, 2, 0xFFFF);
        d.write(0x42, 2, 0xFFFF);
        // Only the implemented command bits stick.
        assert_eq!(d.read(0x04, 2), u32::from(command::WRITABLE));
        // Message control: enable and MME; capable bits unchanged.
        assert_eq!(d.read(0x42, 2), 0x0180 | 0x0071);
    }

    #[test]
    fn byte_lanes_are_independent_and_unaligned_accesses_work() {
        let mut d = NotifyPci::new();
        d.write(0x45, 2, 0xBEEF);
        assert_eq!(d.read(0x44, 4), 0x00BE_EF00);
        d.write(0x47, 4, 0x1122_3344);
        assert_eq!(d.read(0x44, 4), 0x44BE_EF00);
        assert_eq!(d.read(0x48, 4), 0x0011_2233);
        assert_eq!(d.read(0x46, 4), 0x2233_44BE, "a dword across two registers");
        // The address's two low bits are hard-wired to 0.
        d.write(0x44, 1, 0xFF);
        assert_eq!(d.read(0x44, 1), 0xFC);
        // Data: 16 bits, the reserved upper half stays 0.
        d.write(0x4C, 4, 0xFFFF_FFFF);
        assert_eq!(d.read(0x4C, 4), 0xFFFF);
        // Upper half of the command/status dword: the command is untouched.
        d.write(0x06, 2, 0xFFFF);
        assert_eq!(d.read(0x04, 2), 0);
        d.write(0x05, 1, 0xFF);
        assert_eq!(d.read(0x04, 2), u32::from(command::WRITABLE & 0xFF00));
    }

    #[test]
    fn accesses_past_the_end_read_ones_and_odd_sizes_act_as_dwords() {
        let mut d = NotifyPci::new();
        assert_eq!(d.read(0xFE, 4), 0xFFFF_0000);
        assert_eq!(d.read(0x1000, 4), 0xFFFF_FFFF);
        assert_eq!(d.read(u16::MAX, 4), 0xFFFF_FFFF);
        assert_eq!(d.write(u16::MAX, 4, 0), None);
        assert_eq!(d.read(0, 3), 0x0001_4F58, "size 3 is read as 4");
        assert_eq!(d.read(0, 0), 0x0001_4F58);
    }

    #[test]
    fn signals_only_when_enabled_and_bus_master() {
        let mut d = NotifyPci::new();
        assert_eq!(d.signal(), None);
        let mut e = enabled();
        assert_eq!(
            e.signal(),
            Some(MsiMessage {
                address: 0xFEE0_1000,
                data: 0x41
            })
        );
        e.write(0x04, 2, 0);
        assert_eq!(e.signal(), None, "bus mastering off");
        assert!(!e.pending());
        d.write(0x04, 2, u32::from(command::BUS_MASTER));
        assert_eq!(d.signal(), None, "MSI off");
    }

    #[test]
    fn masked_signal_is_held_and_sent_at_unmask() {
        let mut d = enabled();
        d.write(0x50, 4, 1);
        assert_eq!(d.signal(), None);
        assert!(d.pending());
        assert_eq!(d.read(0x54, 4), 1);
        d.write(0x54, 4, 0);
        assert!(d.pending(), "the pending bits are read-only");
        assert_eq!(d.signal(), None, "held once, not twice");
        let sent = d.write(0x50, 4, 0);
        assert_eq!(
            sent,
            Some(MsiMessage {
                address: 0xFEE0_1000,
                data: 0x41
            })
        );
        assert!(!d.pending());
        assert_eq!(d.write(0x50, 4, 0), None);
    }

    #[test]
    fn x86_decoding() {
        let m = MsiMessage {
            address: 0xFEE0_300C,
            data: 0x0141,
        };
        assert_eq!(
            m.x86_interrupt(),
            Ok(X86Interrupt {
                destination: 3,
                logical: true,
                redirection_hint: true,
                lowest_priority: true,
                vector: 0x41
            })
        );
        let phys = MsiMessage {
            address: 0xFEE0_1000,
            data: 0x0022,
        };
        assert_eq!(
            phys.x86_interrupt(),
            Ok(X86Interrupt {
                destination: 1,
                logical: false,
                redirection_hint: false,
                lowest_priority: false,
                vector: 0x22
            })
        );
        assert_eq!(
            MsiMessage {
                address: 0x1000,
                data: 0x41
            }
            .x86_interrupt(),
            Err(MsiDecodeError::NotInterruptAddress)
        );
        assert_eq!(
            MsiMessage {
                address: 0x1_FEE0_0000,
                data: 0x41
            }
            .x86_interrupt(),
            Err(MsiDecodeError::NotInterruptAddress)
        );
        assert_eq!(
            MsiMessage {
                address: 0xFEE0_0000,
                data: 0x0441
            }
            .x86_interrupt(),
            Err(MsiDecodeError::UnsupportedDeliveryMode(4))
        );
        assert_eq!(
            MsiMessage {
                address: 0xFEE0_0000,
                data: 0x000F
            }
            .x86_interrupt(),
            Err(MsiDecodeError::IllegalVector(15))
        );
    }

    proptest::proptest! {
        /// Whatever dom0 writes, the identity and the structure hold, and
        /// nothing panics.
        #[test]
        fn garbage_writes_keep_the_structure(ops in proptest::collection::vec((0u16..300, 0u8..6, proptest::prelude::any::<u32>()), 0..200)) {
            let mut d = NotifyPci::new();
            for (offset, size, value) in ops {
                let _ = d.write(offset, size, value);
                let _ = d.read(offset, size);
                let _ = d.signal();
            }
            proptest::prop_assert_eq!(d.read(0, 4), 0x0001_4F58);
            proptest::prop_assert_eq!(d.read(0x08, 4), 0x0880_0001);
            proptest::prop_assert_eq!(d.read(0x34, 1), 0x40);
            proptest::prop_assert_eq!(d.read(0x40, 2), 0x0005);
            proptest::prop_assert_eq!(d.read(0x42, 2) & 0x0180, 0x0180);
            proptest::prop_assert_eq!(d.read(0x10, 4), 0);
        }
    }
}
