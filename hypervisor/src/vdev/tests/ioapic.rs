//! The I/O APIC: registers (82093AA §3), Linux's set-up sequence
//! (`arch/x86/kernel/apic/io_apic.c`), edge and level delivery, remote IRR
//! and EOI.

use crate::vdev::ioapic::*;

const VECTOR: u8 = 0x31;

fn read_reg(io: &mut IoApic, index: u8) -> u32 {
    io.mmio_write(IOREGSEL, u32::from(index));
    io.mmio_read(IOWIN)
}

fn write_reg(io: &mut IoApic, index: u8, value: u32) -> Option<Interrupt> {
    io.mmio_write(IOREGSEL, u32::from(index));
    io.mmio_write(IOWIN, value)
}

fn low(pin: u8) -> u8 {
    REG_REDTBL + 2 * pin
}

fn high(pin: u8) -> u8 {
    REG_REDTBL + 2 * pin + 1
}

/// `__ioapic_write_entry`: the high dword first, so that an unmasked entry
/// is complete when its low dword lands.
fn write_entry(io: &mut IoApic, pin: u8, entry: u64) -> Option<Interrupt> {
    write_reg(io, high(pin), (entry >> 32) as u32);
    write_reg(io, low(pin), entry as u32)
}

fn read_entry(io: &mut IoApic, pin: u8) -> u64 {
    u64::from(read_reg(io, low(pin))) | (u64::from(read_reg(io, high(pin))) << 32)
}

/// An entry: `vector`, fixed, physical destination `dest`.
fn fixed(vector: u8, dest: u8, level: bool, masked: bool) -> u64 {
    let mut entry = u64::from(vector) | (u64::from(dest) << RTE_DEST_SHIFT);
    if level {
        entry |= RTE_LEVEL | RTE_POLARITY_LOW;
    }
    if masked {
        entry |= RTE_MASKED;
    }
    entry
}

fn irq(vector: u8, dest: u8, level: bool) -> Interrupt {
    Interrupt {
        vector,
        dest,
        logical: false,
        mode: DeliveryMode::Fixed,
        level_triggered: level,
    }
}

#[test]
fn reset_state_and_identification_registers() {
    let mut io = IoApic::new(2);
    assert_eq!(read_reg(&mut io, REG_ID), 2 << 24);
    assert_eq!(read_reg(&mut io, REG_VER), 0x0017_0011);
    assert_eq!(read_reg(&mut io, REG_ARB), 2 << 24);
    for pin in 0..IOAPIC_PINS as u8 {
        assert_eq!(read_entry(&mut io, pin), RTE_MASKED, "pin {pin}");
    }
    // IOREGSEL reads back its eight bits only.
    io.mmio_write(IOREGSEL, 0xFFFF_FF13);
    assert_eq!(io.mmio_read(IOREGSEL), 0x13);
    // The ID keeps four bits.
    assert_eq!(IoApic::new(0xFE).id(), 0x0E);
}

#[test]
fn id_is_writable_version_and_arbitration_are_not() {
    let mut io = IoApic::new(0);
    write_reg(&mut io, REG_ID, 0xFFFF_FFFF);
    assert_eq!(read_reg(&mut io, REG_ID), 0x0F00_0000, "bits 27:24 only");
    assert_eq!(
        read_reg(&mut io, REG_ARB),
        0x0F00_0000,
        "ARB follows the ID"
    );
    assert_eq!(io.id(), 0x0F);
    write_reg(&mut io, REG_VER, 0);
    write_reg(&mut io, REG_ARB, 0);
    assert_eq!(read_reg(&mut io, REG_VER), 0x0017_0011);
    assert_eq!(read_reg(&mut io, REG_ARB), 0x0F00_0000);
}

#[test]
fn unknown_registers_offsets_and_pins() {
    let mut io = IoApic::new(1);
    for index in [0x03u8, 0x0F, 0x40, 0x41, 0x80, 0xFF] {
        assert!(write_reg(&mut io, index, u32::MAX).is_none());
        assert_eq!(read_reg(&mut io, index), 0, "index {index:#x}");
    }
    // Offsets other than IOREGSEL and IOWIN (no EOI register at 0x40).
    for offset in [0x04u64, 0x20, 0x40, 0xFFF, u64::MAX] {
        assert!(io.mmio_write(offset, u32::MAX).is_none());
        assert_eq!(io.mmio_read(offset), 0);
    }
    assert!(io.set_irq(24, true).is_none());
    assert!(io.set_irq(u32::MAX, true).is_none());
    assert!(!io.line(24));
    assert!(io.entry(24).is_none());
    assert!(io.eoi(0).is_empty());
}

#[test]
fn read_only_and_reserved_bits() {
    let mut io = IoApic::new(0);
    // Delivery status (12), remote IRR (14) and bits 31:17 of the low
    // dword, bits 55:32 of the high one: not writable.
    write_entry(&mut io, 3, u64::MAX);
    assert_eq!(read_entry(&mut io, 3), 0xFF00_0000_0001_AFFF);
    write_entry(&mut io, 3, 0);
    assert_eq!(read_entry(&mut io, 3), 0);
}

#[test]
fn linux_io_apic_setup() {
    let mut io = IoApic::new(0);
    // mp_register_ioapic: the number of entries from VER.
    let ver = read_reg(&mut io, REG_VER);
    let entries = ((ver >> 16) & 0xFF) + 1;
    assert_eq!(entries, 24);
    assert!(ver & 0xFF < 0x20, "no EOI register: Linux EOIs by hand");
    // clear_IO_APIC: read each entry, mask it, clear the rest (mask
    // first: low dword, then high).
    for pin in 0..entries as u8 {
        let entry = read_entry(&mut io, pin);
        assert_ne!(entry & RTE_MASKED, 0);
        assert_eq!(entry & RTE_REMOTE_IRR, 0);
        write_reg(&mut io, low(pin), RTE_MASKED as u32);
        write_reg(&mut io, high(pin), 0);
    }
    // Program the legacy IRQs masked: COM1 on pin 4, edge, to APIC 1; a
    // PCI-style level line on pin 16 to logical destination 0x01.
    assert!(write_entry(&mut io, 4, fixed(0x24, 1, false, true)).is_none());
    let pci = fixed(0x41, 0x01, true, true) | RTE_LOGICAL;
    assert!(write_entry(&mut io, 16, pci).is_none());
    // Devices can assert while masked: nothing comes out.
    assert!(io.set_irq(4, true).is_none());
    assert!(io.set_irq(16, true).is_none());
    // request_irq → unmask: only the low dword is written, then a dummy
    // read of IOWIN (io_apic_sync).
    let got = write_reg(&mut io, low(4), 0x24);
    io.mmio_read(IOWIN);
    assert!(
        got.is_none(),
        "edge: the edge came while masked and is lost"
    );
    let got = write_reg(&mut io, low(16), (pci & !RTE_MASKED) as u32);
    assert_eq!(
        got,
        Some(Interrupt {
            vector: 0x41,
            dest: 0x01,
            logical: true,
            mode: DeliveryMode::Fixed,
            level_triggered: true,
        }),
        "level: the asserted line delivers on unmask"
    );
    // The UART's next interrupt is an edge.
    assert!(io.set_irq(4, false).is_none());
    assert_eq!(io.set_irq(4, true), Some(irq(0x24, 1, false)));
    // mask_ioapic_irq: low dword with the mask bit.
    write_reg(&mut io, low(4), 0x24 | RTE_MASKED as u32);
    assert!(io.set_irq(4, false).is_none());
    assert!(io.set_irq(4, true).is_none());
}

#[test]
fn edge_triggered_delivers_on_rising_edges_only() {
    let mut io = IoApic::new(0);
    write_entry(&mut io, 4, fixed(VECTOR, 0, false, false));
    assert_eq!(io.set_irq(4, true), Some(irq(VECTOR, 0, false)));
    assert!(io.set_irq(4, true).is_none(), "held high: no new edge");
    assert!(io.set_irq(4, false).is_none());
    assert_eq!(io.set_irq(4, true), Some(irq(VECTOR, 0, false)));
    // Edge entries never set remote IRR, and EOIs do nothing to them.
    assert!(!io.entry(4).unwrap().remote_irr());
    assert!(io.eoi(VECTOR).is_empty());
    // Rewriting the entry while the line is high is no edge either.
    assert!(write_entry(&mut io, 4, fixed(VECTOR, 0, false, false)).is_none());
}

#[test]
fn level_triggered_waits_for_eoi() {
    let mut io = IoApic::new(0);
    write_entry(&mut io, 10, fixed(VECTOR, 3, true, false));
    assert_eq!(io.set_irq(10, true), Some(irq(VECTOR, 3, true)));
    assert!(io.entry(10).unwrap().remote_irr());
    assert_eq!(read_entry(&mut io, 10) & RTE_REMOTE_IRR, RTE_REMOTE_IRR);
    // Still asserted, remote IRR set: nothing more.
    assert!(io.set_irq(10, true).is_none());
    // An EOI for another vector changes nothing.
    assert!(io.eoi(VECTOR + 1).is_empty());
    assert!(io.entry(10).unwrap().remote_irr());
    // EOI while still asserted: delivered again.
    let again = io.eoi(VECTOR);
    assert_eq!(again.iter().collect::<Vec<_>>(), [irq(VECTOR, 3, true)]);
    assert!(io.entry(10).unwrap().remote_irr());
    // The device deasserts, then the EOI comes: remote IRR clears, nothing
    // is delivered.
    assert!(io.set_irq(10, false).is_none());
    assert!(io.eoi(VECTOR).is_empty());
    assert!(!io.entry(10).unwrap().remote_irr());
    // Next assertion delivers at once.
    assert_eq!(io.set_irq(10, true), Some(irq(VECTOR, 3, true)));
}

#[test]
fn writing_the_entry_does_not_touch_remote_irr_of_a_level_entry() {
    let mut io = IoApic::new(0);
    write_entry(&mut io, 10, fixed(VECTOR, 0, true, false));
    io.set_irq(10, true);
    // Retargeting (high then low, level kept) leaves remote IRR set and
    // delivers nothing.
    assert!(write_entry(&mut io, 10, fixed(VECTOR, 5, true, false)).is_none());
    assert!(io.entry(10).unwrap().remote_irr());
    // Masking and unmasking it neither.
    write_reg(&mut io, low(10), (fixed(VECTOR, 5, true, true)) as u32);
    assert!(write_reg(&mut io, low(10), fixed(VECTOR, 5, true, false) as u32).is_none());
    let redelivered = io.eoi(VECTOR);
    assert_eq!(redelivered.len(), 1);
    assert_eq!(redelivered.iter().next().unwrap().dest, 5);
}

#[test]
fn linux_manual_eoi_by_mask_and_edge() {
    // __eoi_ioapic_pin on a version 0x11 I/O APIC: write the entry masked
    // and edge-triggered, then restore it.
    let mut io = IoApic::new(0);
    let entry = fixed(VECTOR, 0, true, false);
    write_entry(&mut io, 9, entry);
    assert!(io.set_irq(9, true).is_some());
    let saved = read_entry(&mut io, 9);
    let masked_edge = (saved | RTE_MASKED) & !RTE_LEVEL;
    assert!(write_entry(&mut io, 9, masked_edge).is_none());
    assert!(!io.entry(9).unwrap().remote_irr(), "edge clears remote IRR");
    // Restoring the saved entry (remote IRR bit set in it: read-only, so
    // ignored) samples the still-asserted line.
    assert_eq!(write_entry(&mut io, 9, saved), Some(irq(VECTOR, 0, true)));
    assert!(io.entry(9).unwrap().remote_irr());
    // With the line low the restore delivers nothing.
    io.set_irq(9, false);
    write_entry(&mut io, 9, masked_edge);
    assert!(write_entry(&mut io, 9, saved).is_none());
    assert!(!io.entry(9).unwrap().remote_irr());
}

#[test]
fn masked_level_line_delivers_on_unmask_masked_edge_does_not() {
    let mut io = IoApic::new(0);
    write_entry(&mut io, 5, fixed(0x50, 0, true, true));
    write_entry(&mut io, 6, fixed(0x60, 0, false, true));
    assert!(io.set_irq(5, true).is_none());
    assert!(io.set_irq(6, true).is_none());
    assert!(!io.entry(5).unwrap().remote_irr(), "masked: no side effect");
    assert_eq!(
        write_reg(
            &mut io,
            low(5),
            0x50 | (RTE_LEVEL | RTE_POLARITY_LOW) as u32
        ),
        Some(irq(0x50, 0, true))
    );
    assert!(write_reg(&mut io, low(6), 0x60).is_none());
    // A level line that went away while masked delivers nothing.
    write_entry(&mut io, 7, fixed(0x70, 0, true, true));
    io.set_irq(7, true);
    io.set_irq(7, false);
    assert!(write_reg(&mut io, low(7), 0x70 | RTE_LEVEL as u32).is_none());
}

#[test]
fn switching_an_asserted_line_from_edge_to_level_delivers() {
    let mut io = IoApic::new(0);
    write_entry(&mut io, 12, fixed(0x52, 0, false, true));
    io.set_irq(12, true);
    assert_eq!(
        write_entry(&mut io, 12, fixed(0x52, 0, true, false)),
        Some(irq(0x52, 0, true))
    );
}

#[test]
fn polarity_is_stored_but_does_not_invert_the_input() {
    let mut io = IoApic::new(0);
    let high_active = fixed(0x44, 0, true, false) & !RTE_POLARITY_LOW;
    write_entry(&mut io, 20, high_active);
    assert!(!io.entry(20).unwrap().polarity_low());
    assert!(io.set_irq(20, true).is_some());
    io.set_irq(20, false);
    io.eoi(0x44);
    write_entry(&mut io, 20, high_active | RTE_POLARITY_LOW);
    assert!(io.entry(20).unwrap().polarity_low());
    assert!(
        io.set_irq(20, false).is_none(),
        "deasserted stays deasserted"
    );
    assert!(io.set_irq(20, true).is_some());
}

#[test]
fn eoi_redelivers_every_pin_sharing_the_vector() {
    let mut io = IoApic::new(0);
    for pin in [16u8, 17, 18] {
        write_entry(&mut io, pin, fixed(VECTOR, pin, true, false));
        assert!(io.set_irq(u32::from(pin), true).is_some());
    }
    io.set_irq(17, false);
    let again = io.eoi(VECTOR);
    let dests: Vec<u8> = again.iter().map(|i| i.dest).collect();
    assert_eq!(dests, [16, 18]);
    assert!(!io.entry(17).unwrap().remote_irr());
}

#[test]
fn non_fixed_delivery_modes() {
    let mut io = IoApic::new(0);
    // NMI programmed level-triggered is still an edge: no remote IRR.
    let nmi = fixed(0, 0, true, false) | (4 << RTE_DELIVERY_MODE_SHIFT);
    write_entry(&mut io, 1, nmi);
    let got = io.set_irq(1, true).unwrap();
    assert_eq!(got.mode, DeliveryMode::Nmi);
    assert!(!got.level_triggered);
    assert!(!io.entry(1).unwrap().remote_irr());
    assert!(io.set_irq(1, true).is_none());
    // ExtINT, lowest priority, SMI and INIT.
    for (bits, mode) in [
        (7u64, DeliveryMode::ExtInt),
        (1, DeliveryMode::LowestPriority),
        (2, DeliveryMode::Smi),
        (5, DeliveryMode::Init),
    ] {
        write_entry(&mut io, 2, fixed(0x20, 0, false, false) | (bits << 8));
        io.set_irq(2, false);
        assert_eq!(io.set_irq(2, true).map(|i| i.mode), Some(mode));
    }
    // Reserved modes deliver nothing, edge or level.
    for bits in [3u64, 6] {
        for level in [false, true] {
            io.set_irq(3, false);
            write_entry(&mut io, 3, fixed(0x33, 0, level, false) | (bits << 8));
            assert!(io.set_irq(3, true).is_none());
            assert!(!io.entry(3).unwrap().remote_irr());
        }
    }
}
