//! The legacy 8259A interrupt controllers. Firmware leaves them delivering the
//! PIT's IRQ 0 on vector 8 -- the double-fault vector -- so before enabling
//! interrupts we move them to vectors 0x20..0x2F and mask every line (the
//! hypervisor uses the local APIC; dom0 will own the legacy lines later).
//! Programming sequence: 8259A datasheet, "Initialization Command Words".

use super::port::{inb, outb};

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xA0;
const SLAVE_DATA: u16 = 0xA1;

/// First vector of the master PIC after remapping.
pub const MASTER_BASE: u8 = 0x20;
/// First vector of the slave PIC after remapping.
pub const SLAVE_BASE: u8 = 0x28;

/// Remaps both PICs and masks all their lines.
pub fn remap_and_mask() {
    outb(MASTER_CMD, 0x11); // ICW1: edge, cascade, ICW4 follows
    outb(SLAVE_CMD, 0x11);
    outb(MASTER_DATA, MASTER_BASE); // ICW2: vector base
    outb(SLAVE_DATA, SLAVE_BASE);
    outb(MASTER_DATA, 0x04); // ICW3: slave on IRQ 2
    outb(SLAVE_DATA, 0x02); // ICW3: cascade identity
    outb(MASTER_DATA, 0x01); // ICW4: 8086 mode
    outb(SLAVE_DATA, 0x01);
    outb(MASTER_DATA, 0xFF); // OCW1: mask everything
    outb(SLAVE_DATA, 0xFF);
    let _ = inb(MASTER_DATA);
}
