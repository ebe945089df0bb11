use std::collections::HashSet;

use super::*;

/// Encodings copied by hand from SDM Vol. 3D Appendix B, one or more per
/// table, as the test's independent source of truth.
#[test]
fn encodings_match_the_sdm() {
    // Table B-1 / B-2 / B-3.
    assert_eq!(Field16::Vpid.encoding(), 0x0000);
    assert_eq!(
        Field16::PostedInterruptNotificationVector.encoding(),
        0x0002
    );
    assert_eq!(Field16::EptpIndex.encoding(), 0x0004);
    assert_eq!(Field16::GuestEsSelector.encoding(), 0x0800);
    assert_eq!(Field16::GuestTrSelector.encoding(), 0x080E);
    assert_eq!(Field16::HostCsSelector.encoding(), 0x0C02);
    assert_eq!(Field16::HostTrSelector.encoding(), 0x0C0C);
    // Table B-4 .. B-7.
    assert_eq!(Field64::IoBitmapA.encoding(), 0x2000);
    assert_eq!(Field64::MsrBitmap.encoding(), 0x2004);
    assert_eq!(Field64::TscOffset.encoding(), 0x2010);
    assert_eq!(Field64::EptPointer.encoding(), 0x201A);
    assert_eq!(Field64::EoiExitBitmap3.encoding(), 0x2022);
    assert_eq!(Field64::GuestPhysicalAddress.encoding(), 0x2400);
    assert_eq!(Field64::GuestVmcsLinkPointer.encoding(), 0x2800);
    assert_eq!(Field64::GuestIa32Efer.encoding(), 0x2806);
    assert_eq!(Field64::HostIa32Pat.encoding(), 0x2C00);
    assert_eq!(Field64::HostIa32Efer.encoding(), 0x2C02);
    assert_eq!(Field64::EptPointer.high(), 0x201B);
    // Table B-8 .. B-11.
    assert_eq!(Field32::PinBasedControls.encoding(), 0x4000);
    assert_eq!(Field32::ProcBasedControls.encoding(), 0x4002);
    assert_eq!(Field32::ExitControls.encoding(), 0x400C);
    assert_eq!(Field32::EntryControls.encoding(), 0x4012);
    assert_eq!(Field32::SecondaryProcBasedControls.encoding(), 0x401E);
    assert_eq!(Field32::PleWindow.encoding(), 0x4022);
    assert_eq!(Field32::VmInstructionError.encoding(), 0x4400);
    assert_eq!(Field32::ExitReason.encoding(), 0x4402);
    assert_eq!(Field32::ExitInstructionInfo.encoding(), 0x440E);
    assert_eq!(Field32::GuestCsAccessRights.encoding(), 0x4816);
    assert_eq!(Field32::GuestInterruptibilityState.encoding(), 0x4824);
    assert_eq!(Field32::GuestPreemptionTimerValue.encoding(), 0x482E);
    assert_eq!(Field32::HostIa32SysenterCs.encoding(), 0x4C00);
    // Table B-12 .. B-15.
    assert_eq!(FieldNat::Cr0GuestHostMask.encoding(), 0x6000);
    assert_eq!(FieldNat::Cr3Target3.encoding(), 0x600E);
    assert_eq!(FieldNat::ExitQualification.encoding(), 0x6400);
    assert_eq!(FieldNat::GuestLinearAddress.encoding(), 0x640A);
    assert_eq!(FieldNat::GuestCr0.encoding(), 0x6800);
    assert_eq!(FieldNat::GuestRip.encoding(), 0x681E);
    assert_eq!(FieldNat::GuestRflags.encoding(), 0x6820);
    assert_eq!(FieldNat::GuestIa32SysenterEip.encoding(), 0x6826);
    assert_eq!(FieldNat::HostCr3.encoding(), 0x6C02);
    assert_eq!(FieldNat::HostRsp.encoding(), 0x6C14);
    assert_eq!(FieldNat::HostRip.encoding(), 0x6C16);
}

#[test]
fn width_bits_match_the_declared_width() {
    for f in AnyField::all() {
        assert_eq!(
            FieldWidth::from_encoding(f.encoding()),
            f.width(),
            "{} ({:#06x})",
            f.name(),
            f.encoding()
        );
    }
}

#[test]
fn encodings_are_full_access_with_reserved_bits_clear() {
    for f in AnyField::all() {
        let e = f.encoding();
        // Bit 0 (access type) is 0 for the full field; bits 12 and 31:15 are 0.
        assert_eq!(e & 1, 0, "{}", f.name());
        assert_eq!(e & !0x6FFF, 0, "{}", f.name());
    }
}

#[test]
fn kinds_follow_the_names() {
    const READ_ONLY_GUEST_NAMED: [&str; 2] = ["GuestPhysicalAddress", "GuestLinearAddress"];
    for f in AnyField::all() {
        let kind = FieldKind::from_encoding(f.encoding());
        let name = f.name();
        if READ_ONLY_GUEST_NAMED.contains(&name) {
            assert_eq!(kind, FieldKind::ReadOnlyData, "{name}");
        } else if name.starts_with("Guest") {
            assert_eq!(kind, FieldKind::GuestState, "{name}");
        } else if name.starts_with("Host") {
            assert_eq!(kind, FieldKind::HostState, "{name}");
        }
    }
    assert_eq!(Field32::ExitReason.kind(), FieldKind::ReadOnlyData);
    assert_eq!(Field32::ExitControls.kind(), FieldKind::Control);
    assert_eq!(FieldNat::ExitQualification.kind(), FieldKind::ReadOnlyData);
    assert_eq!(Field64::EptPointer.kind(), FieldKind::Control);
}

#[test]
fn encodings_and_names_are_unique_and_reversible() {
    let mut encodings = HashSet::new();
    let mut names = HashSet::new();
    for f in AnyField::all() {
        assert!(
            encodings.insert(f.encoding()),
            "duplicate {:#x}",
            f.encoding()
        );
        assert!(names.insert(f.name()), "duplicate {}", f.name());
        assert_eq!(AnyField::from_encoding(f.encoding()), Some(f));
    }
    assert_eq!(AnyField::from_encoding(0x7FFE), None);
    assert_eq!(Field16::from_encoding(0x2000), None);
}
