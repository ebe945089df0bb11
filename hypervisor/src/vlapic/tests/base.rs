//! IA32_APIC_BASE transitions (SDM §12.4.4, §12.12.5) and resets.

use super::*;

const EN: u64 = 1 << 11;
const EXTD: u64 = 1 << 10;
const BSP: u64 = 1 << 8;
const BASE: u64 = DEFAULT_APIC_BASE;

#[test]
fn power_up_state() {
    let lapic = VLapic::new(config(3));
    assert_eq!(lapic.mode(), ApicMode::XApic);
    assert_eq!(lapic.apic_base(), BASE | EN);
    assert_eq!(VLapic::new(config(0)).apic_base(), BASE | EN | BSP);
    assert!(!lapic.software_enabled());
    assert_eq!(lapic.mmio_read(ID, 0), 3 << 24);
    assert_eq!(lapic.mmio_read(VERSION, 0), 0x0005_0014);
    assert_eq!(lapic.mmio_read(SVR, 0), 0xFF);
    assert_eq!(lapic.mmio_read(DFR, 0), u32::MAX);
    for lvt in LVTS {
        assert_eq!(lapic.mmio_read(lvt, 0), LVT_MASKED, "lvt {lvt:#x}");
    }
    for off in [
        TPR,
        PPR,
        LDR,
        ESR,
        ICR_LO,
        ICR_HI,
        TIMER_INITIAL,
        TIMER_DIVIDE,
    ] {
        assert_eq!(lapic.mmio_read(off, 0), 0, "offset {off:#x}");
    }
    assert_eq!(lapic.next_timer_deadline(), None);
}

#[test]
fn version_advertises_directed_eoi_when_configured() {
    let mut cfg = config(1);
    cfg.directed_eoi = true;
    assert_eq!(VLapic::new(cfg).mmio_read(VERSION, 0), 0x0105_0014);
}

#[test]
fn xapic_to_x2apic_keeps_id_and_derives_ldr() {
    let mut lapic = VLapic::new(config(0x123));
    assert_eq!(lapic.mmio_read(ID, 0), 0x23 << 24);
    let got = lapic.apic_base_write(BASE | EN | EXTD).unwrap();
    assert_eq!(got, actions(&[Action::ModeChanged(ApicMode::X2Apic)]));
    assert_eq!(lapic.mode(), ApicMode::X2Apic);
    assert_eq!(lapic.msr_read(0x802, 0), Ok(0x123));
    // Cluster 0x12, bit 3.
    assert_eq!(lapic.msr_read(0x80D, 0), Ok(0x0012_0008));
    // MMIO is gone: reads are a hole, writes do nothing.
    assert_eq!(lapic.mmio_read(VERSION, 0), u32::MAX);
    assert!(lapic.mmio_write(TPR, 0x50, 0).is_empty());
    assert_eq!(lapic.tpr(), 0);
}

#[test]
fn x2apic_to_xapic_is_illegal() {
    let mut lapic = enabled_x2(1);
    assert_eq!(lapic.apic_base_write(BASE | EN), Err(ApicFault::Gp));
    assert_eq!(lapic.mode(), ApicMode::X2Apic);
}

#[test]
fn disabled_to_x2apic_is_illegal_and_disabled_to_xapic_is_legal() {
    let mut lapic = enabled(1);
    lapic.apic_base_write(BASE).unwrap();
    assert_eq!(lapic.mode(), ApicMode::Disabled);
    assert_eq!(lapic.apic_base_write(BASE | EN | EXTD), Err(ApicFault::Gp));
    assert_eq!(lapic.mode(), ApicMode::Disabled);
    let got = lapic.apic_base_write(BASE | EN).unwrap();
    assert_eq!(got, actions(&[Action::ModeChanged(ApicMode::XApic)]));
    // Then on to x2APIC.
    assert!(lapic.apic_base_write(BASE | EN | EXTD).is_ok());
}

#[test]
fn invalid_state_and_reserved_bits_fault() {
    let mut lapic = VLapic::new(config(1));
    assert_eq!(lapic.apic_base_write(BASE | EXTD), Err(ApicFault::Gp));
    for bit in [0, 7, 9] {
        assert_eq!(
            lapic.apic_base_write(BASE | EN | 1 << bit),
            Err(ApicFault::Gp),
            "bit {bit}"
        );
    }
    let mut cfg = config(1);
    cfg.phys_addr_bits = 36;
    let mut narrow = VLapic::new(cfg);
    assert_eq!(narrow.apic_base_write(1 << 36 | EN), Err(ApicFault::Gp));
    assert!(narrow.apic_base_write((1 << 35) | EN).is_ok());
    cfg.x2apic = false;
    let mut no_x2 = VLapic::new(cfg);
    assert_eq!(no_x2.apic_base_write(BASE | EN | EXTD), Err(ApicFault::Gp));
}

#[test]
fn bsp_flag_is_kept() {
    let mut bsp = VLapic::new(config(0));
    bsp.apic_base_write(BASE | EN).unwrap();
    assert_eq!(bsp.apic_base(), BASE | EN | BSP);
    let mut ap = VLapic::new(config(1));
    ap.apic_base_write(BASE | EN | BSP).unwrap();
    assert_eq!(ap.apic_base(), BASE | EN);
}

#[test]
fn disabling_resets_everything_but_the_id() {
    let mut lapic = enabled(2);
    lapic.mmio_write(ID, 7 << 24, 0);
    lapic.mmio_write(TPR, 0x20, 0);
    lapic.mmio_write(LDR, 0x0100_0000, 0);
    lapic.mmio_write(LVT_LINT0, 0x700, 0);
    lapic.mmio_write(TIMER_INITIAL, 1000, 0);
    lapic.accept_interrupt(0x40, true);
    assert!(lapic.ack(0x40));
    lapic.accept_interrupt(0x50, false);

    let got = lapic.apic_base_write(BASE).unwrap();
    assert_eq!(
        got,
        actions(&[
            Action::TimerChanged,
            Action::ModeChanged(ApicMode::Disabled)
        ])
    );
    assert_eq!(lapic.next_timer_deadline(), None);
    assert_eq!(
        lapic.accept_interrupt(0x60, false),
        Acceptance::HardwareDisabled
    );
    assert!(lapic.accepts_pic_interrupts());

    lapic.apic_base_write(BASE | EN).unwrap();
    assert_eq!(lapic.mmio_read(ID, 0), 7 << 24);
    assert!(!lapic.software_enabled());
    assert_eq!(lapic.mmio_read(SVR, 0), 0xFF);
    assert_eq!(lapic.tpr(), 0);
    assert_eq!(lapic.mmio_read(LDR, 0), 0);
    assert_eq!(lapic.mmio_read(LVT_LINT0, 0), LVT_MASKED);
    assert_eq!(lapic.rvi(), 0);
    assert_eq!(lapic.svi(), 0);
    assert_eq!(lapic.eoi_exit_bitmap(), [0; 4]);
    // Works again as on hardware once software-enabled.
    lapic.mmio_write(SVR, 0x1FF, 0);
    assert_eq!(lapic.accept_interrupt(0x60, false), Acceptance::Accepted);
}

#[test]
fn disabling_from_x2apic_returns_to_initial_xapic_id() {
    let mut lapic = enabled_x2(0x105);
    lapic.apic_base_write(BASE).unwrap();
    lapic.apic_base_write(BASE | EN).unwrap();
    assert_eq!(lapic.mmio_read(ID, 0), 0x05 << 24);
    assert_eq!(lapic.id(), 5);
}

#[test]
fn base_relocation_is_reported() {
    let mut lapic = VLapic::new(config(1));
    let got = lapic.apic_base_write(0xFED0_0000 | EN).unwrap();
    assert_eq!(
        got,
        actions(&[Action::BaseMoved {
            from: BASE,
            to: 0xFED0_0000
        }])
    );
    assert_eq!(lapic.base_address(), 0xFED0_0000);
    // Same value again: nothing to do.
    assert!(lapic.apic_base_write(0xFED0_0000 | EN).unwrap().is_empty());
}

#[test]
fn apic_base_and_tsc_deadline_through_msr_interface() {
    let mut lapic = VLapic::new(config(1));
    assert!(VLapic::handles_msr(MSR_IA32_APIC_BASE));
    assert!(VLapic::handles_msr(MSR_IA32_TSC_DEADLINE));
    assert!(VLapic::handles_msr(0x83F));
    assert!(!VLapic::handles_msr(0x900));
    assert_eq!(lapic.msr_read(MSR_IA32_APIC_BASE, 0), Ok(BASE | EN));
    assert_eq!(
        lapic.msr_write(MSR_IA32_APIC_BASE, BASE | EXTD, 0),
        Err(ApicFault::Gp)
    );
    // Not in TSC-deadline mode: reads 0, writes ignored.
    assert_eq!(
        lapic.msr_write(MSR_IA32_TSC_DEADLINE, 5, 0),
        Ok(Actions::none())
    );
    assert_eq!(lapic.msr_read(MSR_IA32_TSC_DEADLINE, 0), Ok(0));
}

#[test]
fn init_signal_resets_registers_but_keeps_mode_and_id() {
    let mut lapic = enabled_x2(9);
    lapic.msr_write(0x808, 0x30, 0).unwrap();
    lapic.msr_write(0x838, 100, 0).unwrap();
    assert_eq!(lapic.init_signal(), actions(&[Action::TimerChanged]));
    assert_eq!(lapic.mode(), ApicMode::X2Apic);
    assert_eq!(lapic.msr_read(0x802, 0), Ok(9));
    assert_eq!(lapic.msr_read(0x80D, 0), Ok(0x0000_0200));
    assert_eq!(lapic.msr_read(0x808, 0), Ok(0));
    assert_eq!(lapic.msr_read(0x80F, 0), Ok(0xFF));
    assert_eq!(lapic.next_timer_deadline(), None);

    let mut x = enabled(4);
    x.mmio_write(ID, 6 << 24, 0);
    x.init_signal();
    assert_eq!(x.mmio_read(ID, 0), 6 << 24);
    assert_eq!(x.mmio_read(DFR, 0), u32::MAX);
}
