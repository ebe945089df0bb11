//! An I/O APIC with 24 pins, modelled on the Intel 82093AA ("82093AA I/O
//! Advanced Programmable Interrupt Controller (IOAPIC)" datasheet, order
//! number 290566; the section numbers below are that datasheet's).
//!
//! # Registers
//!
//! Two memory-mapped registers at the base (0xFEC00000 by default, §3.1):
//! IOREGSEL at offset 0x00 selects an indirect register (bits 7:0; bits
//! 31:8 reserved, read 0), IOWIN at offset 0x10 reads and writes it. Other
//! offsets read 0 and ignore writes; version 0x11 has no EOI register at
//! 0x40 (that came with version 0x20), so Linux falls back to the mask-and-
//! edge sequence below to end a level-triggered interrupt by hand.
//!
//! | index | register | §3.2 |
//! |---|---|---|
//! | 0x00 | IOAPICID: ID in bits 27:24, read/write | 3.2.1 |
//! | 0x01 | IOAPICVER: version 0x11, maximum redirection entry 23 in bits 23:16, read-only | 3.2.2 |
//! | 0x02 | IOAPICARB: arbitration ID in bits 27:24, read-only, loaded from the ID | 3.2.3 |
//! | 0x10 + 2n, 0x11 + 2n | IOREDTBLn low and high dwords, n = 0..23 | 3.2.4 |
//!
//! Any other index reads 0 and ignores writes.
//!
//! # Redirection entries (§3.2.4)
//!
//! Bits 7:0 vector, 10:8 delivery mode, 11 destination mode (1 = logical),
//! 12 delivery status (read-only), 13 polarity (1 = low active), 14 remote
//! IRR (read-only), 15 trigger mode (1 = level), 16 mask, 55:17 reserved
//! (read 0, writes ignored), 63:56 destination. After reset every entry is
//! masked; the datasheet leaves the other bits undefined and we make them 0.
//!
//! # Choices
//!
//! - A pin's input is the device's *assertion*, not a voltage: devices call
//!   [`IoApic::set_irq`] with `true` while they request an interrupt. The
//!   polarity bit is kept for the guest to read back but does not invert
//!   the input, as in KVM, QEMU and Xen: the platform tables the guest gets
//!   must describe each line with the polarity the device model uses, so a
//!   guest following them always sees "asserted = active".
//! - Delivery is instantaneous and always accepted, so the delivery status
//!   bit reads 0 (idle): an interrupt is never held "send pending".
//! - SMI, NMI, INIT and ExtINT are edge-triggered whatever the trigger mode
//!   bit says: §3.2.4 requires edge trigger mode for each of them, and the
//!   SDM says the same of these messages (Vol. 3A §12.11.2, "Message Data
//!   Register Format": NMI and INIT are edge-triggered "regardless of the
//!   Trigger Mode Setting"). Such entries never set remote IRR. Reserved
//!   delivery modes (011b, 110b) deliver nothing.
//! - Writing an entry as edge-triggered clears its remote IRR. The 82093AA
//!   calls remote IRR "undefined" for edge entries; real chipsets clear it,
//!   and Linux depends on that to end a level interrupt on an I/O APIC
//!   without an EOI register (`__eoi_ioapic_pin`: mask, set edge, restore).
//! - The ID is the four bits the 82093AA has (27:24); [`IoApic::new`] keeps
//!   the low four bits of its argument.
//! - The destination keeps all eight bits 63:56 (the 82093AA defines 59:56
//!   in physical mode, later I/O APICs and xAPIC systems use all eight).
//! - A level-triggered line is sampled whenever it or its entry changes and
//!   at EOI: an unmasked, asserted line whose remote IRR is clear delivers
//!   at once and sets remote IRR, so after every call no such line is left
//!   undelivered. Masked edges are lost ("not delivered or held pending").

/// The default physical base address of the first I/O APIC.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// The size of the MMIO window the model decodes.
pub const IOAPIC_MMIO_SIZE: u64 = 0x1000;
/// The number of input pins (redirection entries).
pub const IOAPIC_PINS: usize = 24;
/// The version register's version field: an 82093AA without EOI register.
pub const IOAPIC_VERSION: u8 = 0x11;

/// MMIO offset of IOREGSEL (§3.1).
pub const IOREGSEL: u64 = 0x00;
/// MMIO offset of IOWIN (§3.1).
pub const IOWIN: u64 = 0x10;

/// Register index of IOAPICID (§3.2.1).
pub const REG_ID: u8 = 0x00;
/// Register index of IOAPICVER (§3.2.2).
pub const REG_VER: u8 = 0x01;
/// Register index of IOAPICARB (§3.2.3).
pub const REG_ARB: u8 = 0x02;
/// Register index of the low dword of redirection entry 0 (§3.2.4); entry
/// `n` is at `REG_REDTBL + 2n` (low) and `REG_REDTBL + 2n + 1` (high).
pub const REG_REDTBL: u8 = 0x10;

/// Redirection entry: the vector (bits 7:0).
pub const RTE_VECTOR: u64 = 0xFF;
/// Redirection entry: delivery mode (bits 10:8).
pub const RTE_DELIVERY_MODE_SHIFT: u32 = 8;
/// Redirection entry: logical destination mode (bit 11).
pub const RTE_LOGICAL: u64 = 1 << 11;
/// Redirection entry: delivery status (bit 12, read-only).
pub const RTE_DELIVERY_STATUS: u64 = 1 << 12;
/// Redirection entry: low-active polarity (bit 13).
pub const RTE_POLARITY_LOW: u64 = 1 << 13;
/// Redirection entry: remote IRR (bit 14, read-only).
pub const RTE_REMOTE_IRR: u64 = 1 << 14;
/// Redirection entry: level-triggered (bit 15).
pub const RTE_LEVEL: u64 = 1 << 15;
/// Redirection entry: masked (bit 16).
pub const RTE_MASKED: u64 = 1 << 16;
/// Redirection entry: destination (bits 63:56).
pub const RTE_DEST_SHIFT: u32 = 56;

/// The bits of the low dword software writes: vector, delivery mode,
/// destination mode, polarity, trigger mode, mask.
const RTE_LOW_WRITABLE: u64 = 0x0001_AFFF;
/// The bits of the high dword software writes: the destination.
const RTE_HIGH_WRITABLE: u64 = 0xFF00_0000;
/// ID and ARB registers: the 4-bit ID field (bits 27:24).
const ID_SHIFT: u32 = 24;
const ID_MASK: u8 = 0x0F;

/// How the interrupt reaches the processor (§3.2.4, bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// 000b: the vector, to every destination processor.
    Fixed,
    /// 001b: the vector, to the destination processor with the lowest
    /// priority.
    LowestPriority,
    /// 010b: a system management interrupt (the vector is ignored).
    Smi,
    /// 100b: a non-maskable interrupt (the vector is ignored).
    Nmi,
    /// 101b: an INIT (the vector is ignored).
    Init,
    /// 111b: as from an 8259A-compatible controller, which supplies the
    /// vector in the INTA cycle.
    ExtInt,
}

impl DeliveryMode {
    /// The mode encoded in bits 2:0 of `bits`, or `None` for the reserved
    /// encodings 011b and 110b.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits & 7 {
            0 => Some(Self::Fixed),
            1 => Some(Self::LowestPriority),
            2 => Some(Self::Smi),
            4 => Some(Self::Nmi),
            5 => Some(Self::Init),
            7 => Some(Self::ExtInt),
            _ => None,
        }
    }

    /// Whether the mode honours a level trigger (only fixed and lowest
    /// priority do; the others are always edge).
    pub const fn can_be_level(self) -> bool {
        matches!(self, Self::Fixed | Self::LowestPriority)
    }
}

/// An interrupt message the I/O APIC sends to the local APICs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupt {
    /// The vector (meaningless for SMI, NMI, INIT and ExtINT).
    pub vector: u8,
    /// The destination: an APIC ID, or with `logical` a logical
    /// destination (a set of processors, matched against each LDR/DFR).
    pub dest: u8,
    /// Logical rather than physical destination mode.
    pub logical: bool,
    /// The delivery mode.
    pub mode: DeliveryMode,
    /// Level-triggered: the receiving local APIC sets TMR, and its EOI must
    /// come back through [`IoApic::eoi`].
    pub level_triggered: bool,
}

/// A redirection table entry (§3.2.4): a view of the 64-bit register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectionEntry(pub u64);

impl RedirectionEntry {
    /// The vector.
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }

    /// The delivery mode, or `None` if reserved.
    pub const fn mode(self) -> Option<DeliveryMode> {
        DeliveryMode::from_bits((self.0 >> RTE_DELIVERY_MODE_SHIFT) as u8)
    }

    /// Logical destination mode.
    pub const fn logical(self) -> bool {
        self.0 & RTE_LOGICAL != 0
    }

    /// Low-active polarity.
    pub const fn polarity_low(self) -> bool {
        self.0 & RTE_POLARITY_LOW != 0
    }

    /// Remote IRR: a level-triggered interrupt was delivered and its EOI
    /// has not come back yet.
    pub const fn remote_irr(self) -> bool {
        self.0 & RTE_REMOTE_IRR != 0
    }

    /// The trigger mode bit says level.
    pub const fn level_bit(self) -> bool {
        self.0 & RTE_LEVEL != 0
    }

    /// The entry behaves as level-triggered: the trigger mode bit is set
    /// and the delivery mode is fixed or lowest priority.
    pub const fn level_triggered(self) -> bool {
        match self.mode() {
            Some(mode) => self.level_bit() && mode.can_be_level(),
            None => false,
        }
    }

    /// Masked.
    pub const fn masked(self) -> bool {
        self.0 & RTE_MASKED != 0
    }

    /// The destination field.
    pub const fn dest(self) -> u8 {
        (self.0 >> RTE_DEST_SHIFT) as u8
    }

    /// The message this entry sends, or `None` for a reserved delivery
    /// mode. Ignores the mask.
    pub const fn interrupt(self) -> Option<Interrupt> {
        match self.mode() {
            Some(mode) => Some(Interrupt {
                vector: self.vector(),
                dest: self.dest(),
                logical: self.logical(),
                mode,
                level_triggered: self.level_triggered(),
            }),
            None => None,
        }
    }
}

/// The interrupts one EOI re-delivers, in pin order (an inline list: no
/// allocation on the exit path). At most one per pin.
#[must_use = "dropping an interrupt loses it: the guest never sees it"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interrupts {
    items: [Option<Interrupt>; IOAPIC_PINS],
    len: usize,
}

impl Interrupts {
    /// No interrupt.
    pub const fn none() -> Self {
        Self {
            items: [None; IOAPIC_PINS],
            len: 0,
        }
    }

    /// Appends `irq` (never more than one per pin, so there is room).
    fn push(&mut self, irq: Interrupt) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(irq);
            self.len += 1;
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The interrupts, in pin order.
    pub fn iter(&self) -> impl Iterator<Item = Interrupt> + '_ {
        self.items.iter().take(self.len).flatten().copied()
    }
}

/// An 82093AA-style I/O APIC. See the module documentation.
#[derive(Debug, Clone)]
pub struct IoApic {
    /// IOAPICID bits 27:24 (IOAPICARB mirrors it: §3.2.3, loaded on every
    /// ID write).
    id: u8,
    /// IOREGSEL bits 7:0.
    ioregsel: u8,
    redirection: [u64; IOAPIC_PINS],
    /// Bit `n`: pin `n` is asserted.
    lines: u32,
}

impl IoApic {
    /// An I/O APIC after reset with ID `id & 0xF`: every entry masked, every
    /// line deasserted.
    pub fn new(id: u8) -> Self {
        Self {
            id: id & ID_MASK,
            ioregsel: 0,
            redirection: [RTE_MASKED; IOAPIC_PINS],
            lines: 0,
        }
    }

    /// The I/O APIC ID.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Redirection entry `pin`, or `None` past the last pin.
    pub fn entry(&self, pin: u32) -> Option<RedirectionEntry> {
        self.redirection
            .get(pin_index(pin)?)
            .map(|&raw| RedirectionEntry(raw))
    }

    /// Whether pin `pin` is asserted (false past the last pin).
    pub fn line(&self, pin: u32) -> bool {
        pin_index(pin).is_some_and(|_| self.lines & (1 << pin) != 0)
    }

    // --- Guest accesses -----------------------------------------------------

    /// A guest read of the 32-bit register at `offset` from the base.
    pub fn mmio_read(&self, offset: u64) -> u32 {
        match offset {
            IOREGSEL => u32::from(self.ioregsel),
            IOWIN => self.read_register(self.ioregsel),
            _ => 0,
        }
    }

    /// A guest write of `value` to the 32-bit register at `offset` from the
    /// base. Returns the interrupt a redirection-entry write delivers: an
    /// entry left unmasked and level-triggered, whose line is asserted and
    /// remote IRR clear.
    #[must_use = "dropping an interrupt loses it: the guest never sees it"]
    pub fn mmio_write(&mut self, offset: u64, value: u32) -> Option<Interrupt> {
        match offset {
            IOREGSEL => {
                self.ioregsel = value as u8;
                None
            }
            IOWIN => self.write_register(self.ioregsel, value),
            _ => None,
        }
    }

    // --- Devices and local APICs --------------------------------------------

    /// Sets the input of pin `pin` (`true`: asserted). An edge-triggered
    /// entry delivers on the rising edge if unmasked; a level-triggered one
    /// delivers while the line is asserted, unmasked and remote IRR clear,
    /// then sets remote IRR. Pins past the last are ignored.
    #[must_use = "dropping an interrupt loses it: the guest never sees it"]
    pub fn set_irq(&mut self, pin: u32, asserted: bool) -> Option<Interrupt> {
        let index = pin_index(pin)?;
        let bit = 1u32 << index;
        let was = self.lines & bit != 0;
        if asserted {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
        let entry = RedirectionEntry(*self.redirection.get(index)?);
        if entry.level_triggered() {
            self.sample_level(index)
        } else if asserted && !was && !entry.masked() {
            entry.interrupt()
        } else {
            None
        }
    }

    /// An EOI for `vector` from a local APIC (its broadcast for a
    /// level-triggered interrupt, §3.2.4 "Remote IRR"): clears remote IRR of
    /// every level-triggered entry with that vector, and re-delivers those
    /// whose line is still asserted and that are unmasked.
    pub fn eoi(&mut self, vector: u8) -> Interrupts {
        let mut out = Interrupts::none();
        for index in 0..IOAPIC_PINS {
            let Some(raw) = self.redirection.get_mut(index) else {
                continue;
            };
            let entry = RedirectionEntry(*raw);
            if entry.level_bit() && entry.vector() == vector && entry.remote_irr() {
                *raw &= !RTE_REMOTE_IRR;
                if let Some(irq) = self.sample_level(index) {
                    out.push(irq);
                }
            }
        }
        out
    }

    // --- Registers ----------------------------------------------------------

    fn read_register(&self, index: u8) -> u32 {
        match index {
            REG_ID | REG_ARB => u32::from(self.id) << ID_SHIFT,
            REG_VER => ((IOAPIC_PINS as u32 - 1) << 16) | u32::from(IOAPIC_VERSION),
            _ => match redirection_index(index) {
                Some((pin, high)) => {
                    let raw = self.redirection.get(pin).copied().unwrap_or(0);
                    if high { (raw >> 32) as u32 } else { raw as u32 }
                }
                None => 0,
            },
        }
    }

    fn write_register(&mut self, index: u8, value: u32) -> Option<Interrupt> {
        if index == REG_ID {
            self.id = (value >> ID_SHIFT) as u8 & ID_MASK;
            return None;
        }
        // VER and ARB are read-only; other indices are not registers.
        let (pin, high) = redirection_index(index)?;
        let raw = self.redirection.get_mut(pin)?;
        let value = u64::from(value);
        *raw = if high {
            (*raw & 0xFFFF_FFFF) | ((value & RTE_HIGH_WRITABLE) << 32)
        } else {
            let read_only = *raw & (RTE_DELIVERY_STATUS | RTE_REMOTE_IRR);
            let mut low = (value & RTE_LOW_WRITABLE) | read_only;
            if low & RTE_LEVEL == 0 {
                low &= !RTE_REMOTE_IRR;
            }
            (*raw & !0xFFFF_FFFF) | low
        };
        if RedirectionEntry(*raw).level_triggered() {
            self.sample_level(pin)
        } else {
            None
        }
    }

    /// Delivers pin `index`'s level-triggered interrupt if its line is
    /// asserted, the entry unmasked and remote IRR clear, and sets remote
    /// IRR.
    fn sample_level(&mut self, index: usize) -> Option<Interrupt> {
        let asserted = self.lines & (1 << index) != 0;
        let raw = self.redirection.get_mut(index)?;
        let entry = RedirectionEntry(*raw);
        if !asserted || entry.masked() || entry.remote_irr() || !entry.level_triggered() {
            return None;
        }
        let irq = entry.interrupt()?;
        *raw |= RTE_REMOTE_IRR;
        Some(irq)
    }
}

/// The index of pin `pin` in the table, if there is such a pin.
fn pin_index(pin: u32) -> Option<usize> {
    let index = usize::try_from(pin).ok()?;
    (index < IOAPIC_PINS).then_some(index)
}

/// The entry and half (high dword?) register `index` selects, if it is in
/// the redirection table.
fn redirection_index(index: u8) -> Option<(usize, bool)> {
    let offset = usize::from(index.checked_sub(REG_REDTBL)?);
    let pin = offset / 2;
    (pin < IOAPIC_PINS).then_some((pin, offset % 2 == 1))
}
