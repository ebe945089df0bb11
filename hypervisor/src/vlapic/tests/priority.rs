//! Acceptance, priorities, acknowledge and EOI (SDM §12.8).

use super::*;

#[test]
fn accept_sets_irr_and_tmr() {
    let mut l = enabled(1);
    assert_eq!(l.accept_interrupt(0x41, true), Acceptance::Accepted);
    assert_eq!(l.accept_interrupt(0x41, true), Acceptance::AlreadyPending);
    assert_eq!(l.accept_interrupt(0x42, false), Acceptance::Accepted);
    assert_eq!(l.mmio_read(IRR + 0x20, 0), 0b110);
    assert_eq!(l.mmio_read(TMR + 0x20, 0), 0b010);
    assert_eq!(l.eoi_exit_bitmap(), [0, 1 << 1, 0, 0]);
    assert_eq!(l.rvi(), 0x42);
}

#[test]
fn illegal_vectors_are_refused() {
    let mut l = enabled(1);
    for v in 0..16 {
        assert_eq!(l.accept_interrupt(v, false), Acceptance::IllegalVector);
    }
    assert_eq!(l.rvi(), 0);
}

#[test]
fn software_disabled_refuses_fixed_interrupts_but_keeps_pending_ones() {
    let mut l = enabled(1);
    l.accept_interrupt(0x50, false);
    l.mmio_write(SVR, 0xFF, 0);
    assert_eq!(
        l.accept_interrupt(0x60, false),
        Acceptance::SoftwareDisabled
    );
    // SDM §12.4.7.2: pending interrupts are held.
    assert!(irr_has(&l, 0x50));
    assert_eq!(l.highest_pending(), Some(0x50));
}

#[test]
fn ppr_follows_tpr_and_isrv() {
    let mut l = enabled(1);
    l.set_tpr(0x35);
    assert_eq!(l.ppr(), 0x35);
    l.accept_interrupt(0x51, false);
    assert!(l.ack(0x51));
    assert_eq!(l.ppr(), 0x50);
    assert_eq!(l.mmio_read(PPR, 0), 0x50);
    l.set_tpr(0x5F);
    assert_eq!(l.ppr(), 0x5F);
    l.set_tpr(0x60);
    assert_eq!(l.ppr(), 0x60);
}

#[test]
fn highest_pending_respects_priority_classes() {
    let mut l = enabled(1);
    l.set_tpr(0x40);
    l.accept_interrupt(0x4F, false);
    assert_eq!(l.highest_pending(), None, "same class as TPR is held");
    assert_eq!(l.tpr_threshold(), 4);
    l.accept_interrupt(0x50, false);
    assert_eq!(l.highest_pending(), Some(0x50));
    assert_eq!(l.tpr_threshold(), 0);
    assert!(l.ack(0x50));
    assert_eq!(l.highest_pending(), None);
    l.accept_interrupt(0x5A, false);
    assert_eq!(
        l.highest_pending(),
        None,
        "same class as in-service is held"
    );
    l.accept_interrupt(0x61, false);
    assert_eq!(l.highest_pending(), Some(0x61));
}

#[test]
fn ack_only_takes_the_deliverable_vector() {
    let mut l = enabled(1);
    l.accept_interrupt(0x30, false);
    l.accept_interrupt(0x80, false);
    assert!(!l.ack(0x30));
    assert!(!l.ack(0x90));
    assert!(l.ack(0x80));
    assert!(isr_has(&l, 0x80) && !irr_has(&l, 0x80));
    assert_eq!(l.svi(), 0x80);
    assert_eq!(l.guest_interrupt_status(), 0x8030);
    assert!(!l.ack(0x30), "held by the in-service 0x80");
}

#[test]
fn eoi_retires_nested_interrupts_in_order() {
    let mut l = enabled(1);
    l.accept_interrupt(0x40, false);
    assert!(l.ack(0x40));
    l.accept_interrupt(0x70, false);
    assert!(l.ack(0x70));
    l.accept_interrupt(0x40, false); // re-raised while in service
    assert_eq!(l.mmio_write(EOI, 0, 0), Actions::none());
    assert_eq!(l.svi(), 0x40);
    assert_eq!(l.highest_pending(), None);
    l.mmio_write(EOI, 0, 0);
    assert_eq!(l.svi(), 0);
    assert_eq!(l.highest_pending(), Some(0x40));
    // EOI with nothing in service is harmless.
    assert!(l.eoi().is_empty());
    assert_eq!(l.highest_pending(), Some(0x40));
}

#[test]
fn level_triggered_eoi_is_broadcast() {
    let mut l = enabled(1);
    l.accept_interrupt(0x61, true);
    assert!(l.ack(0x61));
    assert_eq!(
        l.mmio_write(EOI, 0, 0),
        actions(&[Action::EoiBroadcast(0x61)])
    );
    l.accept_interrupt(0x62, false);
    assert!(l.ack(0x62));
    assert_eq!(l.mmio_write(EOI, 0, 0), Actions::none());
}

#[test]
fn eoi_broadcast_suppression() {
    let mut cfg = config(1);
    cfg.directed_eoi = true;
    let mut l = VLapic::new(cfg);
    l.mmio_write(SVR, 0x11FF, 0);
    assert_eq!(l.mmio_read(SVR, 0), 0x11FF);
    l.accept_interrupt(0x61, true);
    assert!(l.ack(0x61));
    assert_eq!(l.eoi(), Actions::none());
    assert_eq!(l.svi(), 0);
    // Without directed-EOI support the bit cannot be set.
    let mut plain = enabled(1);
    plain.mmio_write(SVR, 0x11FF, 0);
    plain.accept_interrupt(0x61, true);
    assert!(plain.ack(0x61));
    assert_eq!(plain.eoi(), actions(&[Action::EoiBroadcast(0x61)]));
}

#[test]
fn virtual_eoi_reports_level_triggered() {
    let mut l = enabled(1);
    l.accept_interrupt(0x91, true);
    assert!(l.ack(0x91));
    assert_eq!(l.virtual_eoi(0x91), actions(&[Action::EoiBroadcast(0x91)]));
    assert_eq!(l.svi(), 0);
}

#[test]
fn x2apic_eoi_and_tpr() {
    let mut l = enabled_x2(1);
    l.accept_interrupt(0xA0, true);
    assert!(l.ack(0xA0));
    assert_eq!(l.msr_read(0x80A, 0), Ok(0xA0));
    assert_eq!(l.msr_read(0x810 + 5, 0), Ok(1));
    assert_eq!(
        l.msr_write(0x80B, 0, 0),
        Ok(actions(&[Action::EoiBroadcast(0xA0)]))
    );
    assert_eq!(l.msr_read(0x80A, 0), Ok(0));
}

#[test]
fn arbitration_priority() {
    let mut l = enabled(1);
    l.set_tpr(0x20);
    assert_eq!(l.arbitration_priority(), 0x20);
    l.accept_interrupt(0x55, false);
    assert_eq!(l.arbitration_priority(), 0x50);
    assert_eq!(l.mmio_read(APR, 0), 0x50);
}
