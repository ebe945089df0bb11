//! Register semantics through the MMIO and MSR interfaces.

use super::*;

#[test]
fn xapic_register_write_masks() {
    let mut l = enabled(1);
    l.mmio_write(TPR, 0xFFFF_FF45, 0);
    assert_eq!(l.mmio_read(TPR, 0), 0x45);
    l.mmio_write(LDR, 0xFFFF_FFFF, 0);
    assert_eq!(l.mmio_read(LDR, 0), 0xFF00_0000);
    l.mmio_write(DFR, 0x0000_0000, 0);
    assert_eq!(l.mmio_read(DFR, 0), 0x0FFF_FFFF);
    l.mmio_write(ICR_HI, 0xFFFF_FFFF, 0);
    assert_eq!(l.mmio_read(ICR_HI, 0), 0xFF00_0000);
    l.mmio_write(TIMER_DIVIDE, 0xFFFF_FFFF, 0);
    assert_eq!(l.mmio_read(TIMER_DIVIDE, 0), 0xB);
    // SVR bit 12 is reserved without directed EOI; focus (bit 9) is not kept.
    l.mmio_write(SVR, 0xFFFF_FFFF, 0);
    assert_eq!(l.mmio_read(SVR, 0), 0x1FF);
}

#[test]
fn read_only_registers_ignore_writes() {
    let mut l = enabled(1);
    l.accept_interrupt(0x80, false);
    for off in [VERSION, PPR, APR, IRR + 0x40, ISR, TMR, TIMER_CURRENT] {
        let before = l.mmio_read(off, 0);
        l.mmio_write(off, 0xFFFF_FFFF, 0);
        assert_eq!(l.mmio_read(off, 0), before, "offset {off:#x}");
    }
    assert_eq!(l.mmio_read(ESR, 0), 0);
}

#[test]
fn lvt_entries_keep_only_writable_bits() {
    let mut l = enabled(1);
    l.mmio_write(LVT_LINT0, u32::MAX, 0);
    assert_eq!(l.mmio_read(LVT_LINT0, 0), 0x0001_A7FF);
    l.mmio_write(LVT_ERROR, u32::MAX, 0);
    assert_eq!(l.mmio_read(LVT_ERROR, 0), 0x0001_00FF);
    l.mmio_write(LVT_THERMAL, u32::MAX, 0);
    assert_eq!(l.mmio_read(LVT_THERMAL, 0), 0x0001_07FF);
    l.mmio_write(LVT_TIMER, u32::MAX, 0);
    assert_eq!(l.mmio_read(LVT_TIMER, 0), 0x0007_00FF);
}

#[test]
fn lint_entries_and_pic_routing() {
    let mut l = enabled(0);
    assert!(!l.accepts_pic_interrupts());
    l.mmio_write(LVT_LINT0, 0x700, 0); // ExtINT, unmasked
    l.mmio_write(LVT_LINT1, 0x400, 0); // NMI, unmasked
    assert!(l.accepts_pic_interrupts());
    assert!(l.lint1_delivers_nmi());
    assert_eq!(l.lvt_lint0(), 0x700);
    l.mmio_write(LVT_LINT0, 0x1_0700, 0);
    assert!(!l.accepts_pic_interrupts());
}

#[test]
fn software_disable_masks_lvts_and_keeps_them_masked() {
    let mut l = enabled(1);
    l.mmio_write(LVT_LINT1, 0x400, 0);
    l.mmio_write(LVT_TIMER, 0x30, 0);
    l.mmio_write(SVR, 0xFF, 0);
    assert_eq!(l.mmio_read(LVT_LINT1, 0), 0x1_0400);
    assert_eq!(l.mmio_read(LVT_TIMER, 0), 0x1_0030);
    l.mmio_write(LVT_LINT1, 0x400, 0);
    assert_eq!(l.mmio_read(LVT_LINT1, 0), 0x1_0400);
    l.mmio_write(SVR, 0x1FF, 0);
    l.mmio_write(LVT_LINT1, 0x400, 0);
    assert_eq!(l.mmio_read(LVT_LINT1, 0), 0x400);
}

#[test]
fn esr_write_then_read() {
    let mut l = enabled(1);
    assert_eq!(l.accept_interrupt(3, false), Acceptance::IllegalVector);
    // Not visible until ESR is written.
    assert_eq!(l.mmio_read(ESR, 0), 0);
    l.mmio_write(ESR, 0, 0);
    assert_eq!(l.mmio_read(ESR, 0), ESR_RECEIVE_ILLEGAL_VECTOR);
    // A second write latches "no new errors".
    l.mmio_write(ESR, 0, 0);
    assert_eq!(l.mmio_read(ESR, 0), 0);
    // Unimplemented register.
    l.mmio_write(0x3C0, 1, 0);
    l.mmio_write(ESR, 0, 0);
    assert_eq!(l.mmio_read(ESR, 0), ESR_ILLEGAL_REGISTER);
}

#[test]
fn errors_raise_the_lvt_error_interrupt() {
    let mut l = enabled(1);
    l.mmio_write(LVT_ERROR, 0xFE, 0);
    l.accept_interrupt(1, false);
    assert!(irr_has(&l, 0xFE));
    // An illegal vector in LVT error itself does not loop.
    let mut m = enabled(1);
    m.mmio_write(LVT_ERROR, 0x05, 0);
    m.mmio_write(0x3C0, 1, 0);
    m.mmio_write(ESR, 0, 0);
    assert_eq!(
        m.mmio_read(ESR, 0),
        ESR_ILLEGAL_REGISTER | ESR_RECEIVE_ILLEGAL_VECTOR
    );
    assert_eq!(m.rvi(), 0);
}

#[test]
fn unaligned_and_write_only_mmio_reads_are_zero() {
    let l = enabled(1);
    assert_eq!(l.mmio_read(EOI, 0), 0);
    assert_eq!(l.mmio_read(ID + 4, 0), 0);
    assert_eq!(l.mmio_read(0x800, 0), 0);
    assert_eq!(l.mmio_read(SELF_IPI, 0), 0);
}

#[test]
fn x2apic_msr_reads() {
    let mut l = enabled_x2(0x42);
    assert_eq!(l.msr_read(0x803, 0), Ok(0x0005_0014));
    assert_eq!(l.msr_read(0x80F, 0), Ok(0x1FF));
    l.msr_write(0x830, 0x0000_0007_0000_00F0, 0).unwrap();
    assert_eq!(l.msr_read(0x830, 0), Ok(0x0000_0007_0000_00F0));
    for gp in [0x80B, 0x83F, 0x80E, 0x809, 0x831, 0x80C, 0x801, 0x8FF] {
        assert_eq!(l.msr_read(gp, 0), Err(ApicFault::Gp), "msr {gp:#x}");
    }
}

#[test]
fn x2apic_msr_write_faults() {
    let mut l = enabled_x2(0x42);
    for ro in [0x802, 0x803, 0x80A, 0x80D, 0x810, 0x818, 0x820, 0x839] {
        assert_eq!(l.msr_write(ro, 0, 0), Err(ApicFault::Gp), "msr {ro:#x}");
    }
    assert_eq!(l.msr_write(0x80E, 0, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x80B, 1, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x828, 1, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x83F, 0x100, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x808, 1 << 32, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x830, 1 << 13 | 0x30, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x830, 1 << 20 | 0x30, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x831, 0, 0), Err(ApicFault::Gp));
    // Legal writes.
    assert_eq!(l.msr_write(0x80B, 0, 0), Ok(Actions::none()));
    assert_eq!(l.msr_write(0x828, 0, 0), Ok(Actions::none()));
    assert!(l.msr_write(0x808, 0x20, 0).is_ok());
    assert_eq!(l.tpr(), 0x20);
}

#[test]
fn x2apic_msrs_fault_in_xapic_mode() {
    let mut l = enabled(1);
    assert_eq!(l.msr_read(0x802, 0), Err(ApicFault::Gp));
    assert_eq!(l.msr_write(0x808, 0, 0), Err(ApicFault::Gp));
}

#[test]
fn x2apic_self_ipi() {
    let mut l = enabled_x2(1);
    assert_eq!(l.msr_write(0x83F, 0x61, 0), Ok(Actions::none()));
    assert!(irr_has(&l, 0x61));
    assert_eq!(l.highest_pending(), Some(0x61));
    l.msr_write(0x83F, 0x02, 0).unwrap();
    l.msr_write(0x828, 0, 0).unwrap();
    assert_eq!(l.msr_read(0x828, 0), Ok(u64::from(ESR_SEND_ILLEGAL_VECTOR)));
    // SELF IPI does not exist in xAPIC mode.
    let mut x = enabled(1);
    x.mmio_write(SELF_IPI, 0x61, 0);
    assert!(!irr_has(&x, 0x61));
}
