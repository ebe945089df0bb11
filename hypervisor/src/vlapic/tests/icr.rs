//! IPIs: ICR decoding (SDM §12.6.1, §12.12.9) and destinations (§12.6.2,
//! §12.12.10).

use super::*;

fn sent(got: Actions) -> Action {
    assert_eq!(got.len(), 1, "{got:?}");
    got.iter().next().unwrap()
}

#[test]
fn xapic_fixed_ipi() {
    let mut l = enabled(0);
    l.mmio_write(ICR_HI, 0x0300_0000, 0);
    let got = sent(l.mmio_write(ICR_LO, 0x0000_4841, 0));
    assert_eq!(
        got,
        Action::SendIpi {
            dest: Destination {
                field: 3,
                logical: true,
                x2apic: false
            },
            shorthand: Shorthand::None,
            mode: DeliveryMode::Fixed,
            vector: 0x41,
            level: true,
            trigger: TriggerMode::Edge,
        }
    );
    // Delivery status always reads 0 (idle).
    l.mmio_write(ICR_LO, 0x0000_1041, 0);
    assert_eq!(l.mmio_read(ICR_LO, 0) & (1 << 12), 0);
}

#[test]
fn init_sipi_sequence() {
    let mut l = enabled(0);
    l.mmio_write(ICR_HI, 0x0100_0000, 0);
    let init = sent(l.mmio_write(ICR_LO, 0x0000_C500, 0));
    assert!(matches!(
        init,
        Action::SendIpi {
            mode: DeliveryMode::Init,
            level: true,
            ..
        }
    ));
    let deassert = sent(l.mmio_write(ICR_LO, 0x0000_8500, 0));
    assert!(matches!(
        deassert,
        Action::SendIpi {
            mode: DeliveryMode::InitDeassert,
            ..
        }
    ));
    let sipi = sent(l.mmio_write(ICR_LO, 0x0000_069A, 0));
    assert!(matches!(
        sipi,
        Action::SendIpi {
            mode: DeliveryMode::Startup(0x9A),
            vector: 0x9A,
            ..
        }
    ));
}

#[test]
fn other_delivery_modes_and_shorthands() {
    let mut l = enabled(0);
    let nmi = sent(l.mmio_write(ICR_LO, 0x000C_0400, 0));
    assert!(matches!(
        nmi,
        Action::SendIpi {
            mode: DeliveryMode::Nmi,
            shorthand: Shorthand::AllExcludingSelf,
            ..
        }
    ));
    let smi = sent(l.mmio_write(ICR_LO, 0x0008_0200, 0));
    assert!(matches!(
        smi,
        Action::SendIpi {
            mode: DeliveryMode::Smi,
            shorthand: Shorthand::AllIncludingSelf,
            ..
        }
    ));
    let lowest = sent(l.mmio_write(ICR_LO, 0x0004_8130, 0));
    assert!(matches!(
        lowest,
        Action::SendIpi {
            mode: DeliveryMode::LowestPriority,
            shorthand: Shorthand::SelfOnly,
            trigger: TriggerMode::Level,
            ..
        }
    ));
    // Reserved delivery modes send nothing.
    assert!(l.mmio_write(ICR_LO, 0x0000_0330, 0).is_empty());
    assert!(l.mmio_write(ICR_LO, 0x0000_0730, 0).is_empty());
}

#[test]
fn illegal_vector_is_not_sent() {
    let mut l = enabled(0);
    assert!(l.mmio_write(ICR_LO, 0x0000_0005, 0).is_empty());
    l.mmio_write(ESR, 0, 0);
    assert_eq!(l.mmio_read(ESR, 0), ESR_SEND_ILLEGAL_VECTOR);
    // NMI ignores the vector.
    assert_eq!(l.mmio_write(ICR_LO, 0x0000_0400, 0).len(), 1);
}

#[test]
fn x2apic_icr_is_one_msr() {
    let mut l = enabled_x2(0);
    let got = sent(l.msr_write(0x830, 0x0001_0002_0000_0851, 0).unwrap());
    assert_eq!(
        got,
        Action::SendIpi {
            dest: Destination {
                field: 0x0001_0002,
                logical: true,
                x2apic: true
            },
            shorthand: Shorthand::None,
            mode: DeliveryMode::Fixed,
            vector: 0x51,
            level: false,
            trigger: TriggerMode::Edge,
        }
    );
    // INIT level de-assert does not exist in x2APIC mode.
    assert!(l.msr_write(0x830, 0x8500, 0).unwrap().is_empty());
}

#[test]
fn physical_destinations() {
    let x = enabled(5);
    assert!(x.matches_destination(5, false, false));
    assert!(!x.matches_destination(6, false, false));
    assert!(x.matches_destination(0xFF, false, false));
    // Only the low 8 bits of an xAPIC destination count.
    assert!(x.matches_destination(0x105, false, false));
    // x2APIC-format destinations reach an xAPIC-mode APIC only as broadcast.
    assert!(!x.matches_destination(5, false, true));
    assert!(x.matches_destination(u32::MAX, false, true));

    let x2 = enabled_x2(0x1234);
    assert!(x2.matches_destination(0x1234, false, true));
    assert!(!x2.matches_destination(0x34, false, true));
    assert!(x2.matches_destination(u32::MAX, false, true));
    assert!(!x2.matches_destination(0xFF, false, true));
    assert!(x2.matches_destination(0xFF, false, false));
}

#[test]
fn logical_flat_destinations() {
    let mut l = enabled(1);
    l.mmio_write(LDR, 0x0400_0000, 0);
    assert!(l.matches_destination(0x04, true, false));
    assert!(l.matches_destination(0x0C, true, false));
    assert!(!l.matches_destination(0x03, true, false));
    assert!(l.matches_destination(0xFF, true, false));
    // An LDR of 0 matches only the broadcast.
    let fresh = enabled(2);
    assert!(!fresh.matches_destination(0x7F, true, false));
}

#[test]
fn logical_cluster_destinations() {
    let mut l = enabled(1);
    l.mmio_write(DFR, 0x0FFF_FFFF, 0);
    l.mmio_write(LDR, 0x3200_0000, 0); // cluster 3, bit 1
    assert!(l.matches_destination(0x32, true, false));
    assert!(l.matches_destination(0x3A, true, false));
    assert!(!l.matches_destination(0x31, true, false));
    assert!(!l.matches_destination(0x22, true, false));
    assert!(l.matches_destination(0xFF, true, false));
    // A reserved model matches nothing.
    l.mmio_write(DFR, 0x5FFF_FFFF, 0);
    assert!(!l.matches_destination(0x32, true, false));
}

#[test]
fn logical_x2apic_destinations() {
    let l = enabled_x2(0x23); // cluster 2, bit 3
    assert!(l.matches_destination(0x0002_0008, true, true));
    assert!(l.matches_destination(0x0002_FFFF, true, true));
    assert!(!l.matches_destination(0x0002_0004, true, true));
    assert!(!l.matches_destination(0x0003_0008, true, true));
    assert!(l.matches_destination(u32::MAX, true, true));
}

#[test]
fn shorthands_and_disabled_targets() {
    let l = enabled(1);
    let dest = Destination {
        field: 2,
        logical: false,
        x2apic: false,
    };
    assert!(!l.is_ipi_target(&dest, Shorthand::None, false));
    assert!(l.is_ipi_target(&dest, Shorthand::SelfOnly, true));
    assert!(!l.is_ipi_target(&dest, Shorthand::SelfOnly, false));
    assert!(l.is_ipi_target(&dest, Shorthand::AllIncludingSelf, true));
    assert!(l.is_ipi_target(&dest, Shorthand::AllExcludingSelf, false));
    assert!(!l.is_ipi_target(&dest, Shorthand::AllExcludingSelf, true));
    let mut off = enabled(2);
    off.apic_base_write(DEFAULT_APIC_BASE).unwrap();
    assert!(!off.matches_destination(2, false, false));
    assert!(!off.is_ipi_target(&dest, Shorthand::AllIncludingSelf, false));
}

#[test]
fn ipi_between_two_vlapics() {
    let mut a = enabled(0);
    let mut b = enabled(1);
    a.mmio_write(ICR_HI, 0x0100_0000, 0);
    let Some(Action::SendIpi {
        dest,
        shorthand,
        mode,
        vector,
        trigger,
        ..
    }) = a.mmio_write(ICR_LO, 0x0000_00F0 - 0x10, 0).iter().next()
    else {
        panic!("no IPI");
    };
    assert_eq!(mode, DeliveryMode::Fixed);
    for (target, is_sender) in [(&mut a, true), (&mut b, false)] {
        if target.is_ipi_target(&dest, shorthand, is_sender) {
            target.accept_interrupt(vector, trigger == TriggerMode::Level);
        }
    }
    assert_eq!(a.highest_pending(), None);
    assert_eq!(b.highest_pending(), Some(0xE0));
}

#[test]
fn software_disabled_apic_is_still_an_init_sipi_target() {
    // A freshly reset AP: SVR bit 8 clear, but INIT and SIPI must reach it
    // (SDM §12.4.7.2); only fixed interrupts are refused.
    let mut ap = VLapic::new(config(1));
    let dest = Destination {
        field: 1,
        logical: false,
        x2apic: false,
    };
    assert!(ap.is_ipi_target(&dest, Shorthand::None, false));
    assert!(ap.is_ipi_target(&dest, Shorthand::AllExcludingSelf, false));
    assert_eq!(
        ap.accept_interrupt(0x40, false),
        Acceptance::SoftwareDisabled
    );
}
