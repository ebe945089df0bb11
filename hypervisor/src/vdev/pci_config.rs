//! PCI configuration mechanism #1, the legacy port interface (PCI Local Bus
//! Specification 3.0 §3.2.2.3.2): software writes a dword to
//! `CONFIG_ADDRESS` (port 0xCF8) naming bus, device, function and register,
//! then accesses `CONFIG_DATA` (ports 0xCFC to 0xCFF) for the bytes of that
//! dword register.
//!
//! Only a dword access to 0xCF8 reaches `CONFIG_ADDRESS`; byte and word
//! accesses to 0xCF8 to 0xCFB are ordinary I/O (the reset control register
//! at 0xCF9, for example). Pure decoding, host-tested.

/// `CONFIG_ADDRESS`.
pub const CONFIG_ADDRESS: u16 = 0xCF8;
/// The first port of `CONFIG_DATA`.
pub const CONFIG_DATA: u16 = 0xCFC;
/// The ports of the mechanism: `CONFIG_ADDRESS` to the end of `CONFIG_DATA`.
pub const PORTS: core::ops::Range<u16> = CONFIG_ADDRESS..CONFIG_DATA + 4;

/// A PCI function's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number, 0 to 31.
    pub device: u8,
    /// Function number, 0 to 7.
    pub function: u8,
}

impl Bdf {
    /// Function `function` of `device` on `bus`, if the numbers are in range.
    pub fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        (device < 32 && function < 8).then_some(Self {
            bus,
            device,
            function,
        })
    }
}

impl core::fmt::Display for Bdf {
    /// Linux's notation: `00:1f.0`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// A value of `CONFIG_ADDRESS`: bit 31 enable, bits 30:24 reserved (AMD
/// uses 27:24 for the upper bits of an extended register number), 23:16
/// bus, 15:11 device, 10:8 function, 7:2 register, 1:0 zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigAddress(pub u32);

impl ConfigAddress {
    /// The value that addresses `register` (a dword offset, bits 1:0
    /// ignored) of `bdf`, enabled.
    pub fn new(bdf: Bdf, register: u8) -> Self {
        Self(
            1 << 31
                | u32::from(bdf.bus) << 16
                | u32::from(bdf.device & 31) << 11
                | u32::from(bdf.function & 7) << 8
                | u32::from(register & 0xFC),
        )
    }

    /// Whether the enable bit is set (data accesses then go to
    /// configuration space).
    pub fn enabled(self) -> bool {
        self.0 & (1 << 31) != 0
    }

    /// The function addressed.
    pub fn bdf(self) -> Bdf {
        Bdf {
            bus: (self.0 >> 16) as u8,
            device: ((self.0 >> 11) & 31) as u8,
            function: ((self.0 >> 8) & 7) as u8,
        }
    }

    /// The dword register addressed (bits 7:2; a multiple of 4).
    pub fn register(self) -> u8 {
        self.0 as u8 & 0xFC
    }

    /// Bits 30:24, which a conventional host bridge reserves.
    pub fn reserved(self) -> u8 {
        ((self.0 >> 24) & 0x7F) as u8
    }

    /// The configuration-space access a data-port access at `port` makes
    /// under this address: the function and the byte offset of the first
    /// byte, when the address is enabled, names a function of conventional
    /// configuration space (no reserved bits) and `port` is a data port.
    pub fn data_access(self, port: u16) -> Option<(Bdf, u16)> {
        if !self.enabled()
            || self.reserved() != 0
            || !(CONFIG_DATA..CONFIG_DATA + 4).contains(&port)
        {
            return None;
        }
        Some((
            self.bdf(),
            u16::from(self.register()) + (port - CONFIG_DATA),
        ))
    }
}

/// How many bytes of an access of `size` bytes at `port` fall inside
/// `CONFIG_DATA` (an access that runs past 0xCFF keeps only the bytes
/// before it).
pub fn data_bytes(port: u16, size: u8) -> u8 {
    let end = CONFIG_DATA + 4;
    if !(CONFIG_DATA..end).contains(&port) {
        return 0;
    }
    size.min((end - port) as u8)
}

/// The bits a port access of `size` bytes carries (1 and 2 bytes; any
/// other size is a dword).
pub fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

/// What an IN of `size` bytes at a data port reads when only its first
/// `bytes` bytes fall inside `CONFIG_DATA` ([`data_bytes`]) and those read
/// `inside` (low byte first): the bytes past 0xCFF read as all-ones, as
/// where no device answers.
pub fn clip_data_read(inside: u32, bytes: u8, size: u8) -> u32 {
    let kept = match bytes {
        0 => 0,
        1..=3 => (1u32 << (8 * bytes)) - 1,
        _ => u32::MAX,
    };
    (inside & kept) | (size_mask(size) & !kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode() {
        let a = ConfigAddress(0x8000_F84C);
        assert!(a.enabled());
        assert_eq!(
            a.bdf(),
            Bdf {
                bus: 0,
                device: 31,
                function: 0
            }
        );
        assert_eq!(a.register(), 0x4C);
        assert_eq!(
            ConfigAddress(0x80FF_FFFF).bdf(),
            Bdf {
                bus: 0xFF,
                device: 31,
                function: 7
            }
        );
        assert_eq!(ConfigAddress(0x80FF_FFFF).register(), 0xFC);
        assert!(!ConfigAddress(0x0000_F800).enabled());
        assert_eq!(ConfigAddress(0x8F00_0000).reserved(), 0x0F);
    }

    #[test]
    fn new_round_trips() {
        for (bus, device, function, register) in [
            (0, 0, 0, 0),
            (0, 31, 0, 0x40),
            (255, 31, 7, 0xFC),
            (3, 5, 2, 0x13),
        ] {
            let bdf = Bdf::new(bus, device, function).unwrap();
            let a = ConfigAddress::new(bdf, register);
            assert!(a.enabled());
            assert_eq!(a.bdf(), bdf);
            assert_eq!(a.register(), register & 0xFC);
            assert_eq!(a.reserved(), 0);
        }
        assert_eq!(Bdf::new(0, 32, 0), None);
        assert_eq!(Bdf::new(0, 0, 8), None);
        assert_eq!(
            std::format!(
                "{}",
                Bdf {
                    bus: 0,
                    device: 31,
                    function: 0
                }
            ),
            "00:1f.0"
        );
    }

    #[test]
    fn data_ports_add_their_byte_offset() {
        let a = ConfigAddress::new(
            Bdf {
                bus: 0,
                device: 31,
                function: 0,
            },
            0x40,
        );
        let f = Bdf {
            bus: 0,
            device: 31,
            function: 0,
        };
        assert_eq!(a.data_access(0xCFC), Some((f, 0x40)));
        assert_eq!(a.data_access(0xCFE), Some((f, 0x42)));
        assert_eq!(a.data_access(0xCFF), Some((f, 0x43)));
        assert_eq!(a.data_access(0xCF8), None);
        assert_eq!(a.data_access(0xD00), None);
        assert_eq!(
            ConfigAddress(a.0 & !(1 << 31)).data_access(0xCFC),
            None,
            "disabled"
        );
        assert_eq!(
            ConfigAddress(a.0 | 1 << 24).data_access(0xCFC),
            None,
            "extended register bits"
        );
        // The last register: offsets up to 0xFF.
        assert_eq!(
            ConfigAddress(0x8000_00FC).data_access(0xCFF).map(|x| x.1),
            Some(0xFF)
        );
    }

    #[test]
    fn accesses_past_the_data_window_are_clipped() {
        assert_eq!(data_bytes(0xCFC, 4), 4);
        assert_eq!(data_bytes(0xCFE, 2), 2);
        assert_eq!(data_bytes(0xCFE, 4), 2);
        assert_eq!(data_bytes(0xCFF, 2), 1);
        assert_eq!(data_bytes(0xCF8, 4), 0);
    }

    #[test]
    fn sizes_mask_their_bytes() {
        assert_eq!(size_mask(1), 0xFF);
        assert_eq!(size_mask(2), 0xFFFF);
        assert_eq!(size_mask(4), 0xFFFF_FFFF);
    }

    #[test]
    fn bytes_past_the_data_window_read_all_ones() {
        // Wholly inside: the value, at the access's width.
        assert_eq!(clip_data_read(0x1234_5678, 4, 4), 0x1234_5678);
        assert_eq!(clip_data_read(0x5678, 2, 2), 0x5678);
        assert_eq!(clip_data_read(0x78, 1, 1), 0x78);
        // A word at 0xCFF: one byte inside.
        assert_eq!(clip_data_read(0x78, 1, 2), 0xFF78);
        // A dword at 0xCFE and at 0xCFD: two and three bytes inside.
        assert_eq!(clip_data_read(0x5678, 2, 4), 0xFFFF_5678);
        assert_eq!(clip_data_read(0x34_5678, 3, 4), 0xFF34_5678);
        // Stray bits above the bytes inside do not leak.
        assert_eq!(clip_data_read(0xAAAA_5678, 2, 4), 0xFFFF_5678);
        assert_eq!(clip_data_read(0x1234, 0, 2), 0xFFFF);
    }
}
