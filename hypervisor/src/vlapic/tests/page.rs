//! Virtual-APIC page synchronisation (SDM Vol. 3C §30.1, §30.4.3.3).

use super::*;

fn word(page: &[u8; 4096], offset: u32) -> u32 {
    let at = offset as usize;
    u32::from_le_bytes(page[at..at + 4].try_into().unwrap())
}

fn set_word(page: &mut [u8; 4096], offset: u32, value: u32) {
    let at = offset as usize;
    page[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn to_page_layout() {
    let mut l = enabled(7);
    l.set_tpr(0x20);
    l.accept_interrupt(0x45, true);
    l.accept_interrupt(0x81, false);
    assert!(l.ack(0x81));
    let mut page = [0xAA; 4096];
    l.to_page(&mut page);
    assert_eq!(word(&page, ID), 7 << 24);
    assert_eq!(word(&page, VERSION), 0x0005_0014);
    assert_eq!(word(&page, TPR), 0x20);
    assert_eq!(word(&page, PPR), 0x80);
    assert_eq!(word(&page, SVR), 0x1FF);
    assert_eq!(word(&page, IRR + 0x20), 1 << 5);
    assert_eq!(word(&page, TMR + 0x20), 1 << 5);
    assert_eq!(word(&page, ISR + 0x40), 1 << 1);
    assert_eq!(word(&page, LVT_TIMER), LVT_MASKED);
    assert_eq!(word(&page, TIMER_CURRENT), 0);
    // The rest of each slot is untouched.
    assert_eq!(page[ID as usize + 4], 0xAA);
    assert_eq!(page[0x400], 0xAA);
}

#[test]
fn x2apic_page_holds_32_bit_id_and_ldr() {
    let l = enabled_x2(0x1_0011);
    let mut page = [0; 4096];
    l.to_page(&mut page);
    assert_eq!(word(&page, ID), 0x1_0011);
    assert_eq!(word(&page, LDR), 0x1001_0002);
}

#[test]
fn from_page_imports_cpu_owned_state_only() {
    let mut l = enabled(1);
    let mut page = [0; 4096];
    l.accept_interrupt(0x50, false);
    l.to_page(&mut page);
    // The CPU delivered 0x50 (vIRR → vISR), the guest wrote CR8, and some
    // junk sits in registers the CPU never writes.
    set_word(&mut page, IRR + 0x20, 0);
    set_word(&mut page, ISR + 0x20, 1 << 16);
    set_word(&mut page, TPR, 0x30);
    set_word(&mut page, IRR, 0xFFFF);
    set_word(&mut page, SVR, 0);
    l.from_page(&page);
    assert_eq!(l.svi(), 0x50);
    assert_eq!(l.rvi(), 0);
    assert_eq!(l.tpr(), 0x30);
    assert!(l.software_enabled());
    assert_eq!(l.eoi(), Actions::none());
    assert_eq!(l.svi(), 0);
}

#[test]
fn apic_write_exit_applies_side_effects() {
    let mut l = enabled(0);
    let mut page = [0; 4096];
    l.to_page(&mut page);
    // ICR: the guest wrote high then low; both trapped after the write.
    set_word(&mut page, ICR_HI, 0x0200_0000);
    assert!(l.apic_write_exit(ICR_HI, &mut page, 0).is_empty());
    set_word(&mut page, ICR_LO, 0x0000_1062);
    let got = l.apic_write_exit(ICR_LO, &mut page, 0);
    assert!(matches!(
        got.iter().next(),
        Some(Action::SendIpi {
            dest: Destination { field: 2, .. },
            vector: 0x62,
            ..
        })
    ));
    assert_eq!(word(&page, ICR_LO), 0x62, "delivery status cleared");
    // LVT timer and initial count arm the timer.
    set_word(&mut page, LVT_TIMER, 0x20_0EC);
    l.apic_write_exit(LVT_TIMER, &mut page, 0);
    assert_eq!(word(&page, LVT_TIMER), 0x20_0EC & 0x0007_00FF);
    set_word(&mut page, TIMER_DIVIDE, 0xB);
    l.apic_write_exit(TIMER_DIVIDE, &mut page, 0);
    set_word(&mut page, TIMER_INITIAL, 10);
    assert_eq!(
        l.apic_write_exit(TIMER_INITIAL, &mut page, 0),
        actions(&[Action::TimerChanged])
    );
    assert_eq!(l.next_timer_deadline(), Some(200));
    // ESR: the written value is replaced by the latched errors.
    set_word(&mut page, ESR, 0x1234);
    l.apic_write_exit(ESR, &mut page, 0);
    assert_eq!(word(&page, ESR), 0);
    // SVR software-disable masks every LVT in the page too.
    set_word(&mut page, SVR, 0xFF);
    l.apic_write_exit(SVR, &mut page, 0);
    assert_eq!(word(&page, LVT_TIMER) & LVT_MASKED, LVT_MASKED);
}

#[test]
fn apic_write_exit_eoi_after_virtual_delivery() {
    let mut l = enabled(0);
    let mut page = [0; 4096];
    l.accept_interrupt(0x70, true);
    l.to_page(&mut page);
    // The CPU delivered it through virtual-interrupt delivery.
    set_word(&mut page, IRR + 0x30, 0);
    set_word(&mut page, ISR + 0x30, 1 << 16);
    let got = l.apic_write_exit(EOI, &mut page, 0);
    assert_eq!(got, actions(&[Action::EoiBroadcast(0x70)]));
    assert_eq!(word(&page, ISR + 0x30), 0);
    assert_eq!(l.guest_interrupt_status(), 0);
}

#[test]
fn apic_write_exit_x2apic_icr() {
    let mut l = enabled_x2(0);
    let mut page = [0; 4096];
    l.to_page(&mut page);
    set_word(&mut page, ICR_HI, 0x0000_0007);
    set_word(&mut page, ICR_LO, 0x0000_0099);
    let got = l.apic_write_exit(ICR_LO, &mut page, 0);
    assert!(matches!(
        got.iter().next(),
        Some(Action::SendIpi {
            dest: Destination {
                field: 7,
                x2apic: true,
                ..
            },
            ..
        })
    ));
    // A write x2APIC would refuse is dropped and the page restored.
    set_word(&mut page, ID, 0x55);
    assert!(l.apic_write_exit(ID, &mut page, 0).is_empty());
    assert_eq!(word(&page, ID), 0);
}

#[test]
fn icr_high_is_taken_from_the_page_on_an_icr_low_write_exit() {
    use crate::vlapic::{Action, VLapic, VLapicConfig};
    let mut l = VLapic::new(VLapicConfig::new(0, true, 1000, 1000));
    let _ = l.mmio_write(0xF0, 0x1FF, 0); // software enable
    let mut page = [0u8; 4096];
    l.to_page(&mut page);
    page[0x310..0x314].copy_from_slice(&(1u32 << 24).to_le_bytes());
    page[0x300..0x304].copy_from_slice(&0x0000_4500u32.to_le_bytes()); // INIT
    let actions = l.apic_write_exit(0x300, &mut page, 0);
    let dest = actions.iter().find_map(|a| match a {
        Action::SendIpi { dest, .. } => Some(dest.field),
        _ => None,
    });
    assert_eq!(dest, Some(1));
}
