use super::*;

/// A capability MSR: `must` in bits 31:0, `may` in bits 63:32.
fn cap(must: u32, may: u32) -> u64 {
    (u64::from(may) << 32) | u64::from(must)
}

#[test]
fn control_bits_match_the_sdm_tables() {
    // Table 25-5.
    assert_eq!(PinBased::EXTERNAL_INTERRUPT_EXITING.bits(), 0x01);
    assert_eq!(PinBased::NMI_EXITING.bits(), 0x08);
    assert_eq!(PinBased::PREEMPTION_TIMER.bits(), 0x40);
    // Table 25-6.
    assert_eq!(ProcBased::HLT_EXITING.bits(), 0x80);
    assert_eq!(ProcBased::USE_TPR_SHADOW.bits(), 0x0020_0000);
    assert_eq!(ProcBased::USE_IO_BITMAPS.bits(), 0x0200_0000);
    assert_eq!(ProcBased::USE_MSR_BITMAPS.bits(), 0x1000_0000);
    assert_eq!(ProcBased::ACTIVATE_SECONDARY_CONTROLS.bits(), 0x8000_0000);
    // Table 25-7.
    assert_eq!(ProcBased2::ENABLE_EPT.bits(), 0x02);
    assert_eq!(ProcBased2::ENABLE_VPID.bits(), 0x20);
    assert_eq!(ProcBased2::UNRESTRICTED_GUEST.bits(), 0x80);
    assert_eq!(ProcBased2::VIRTUAL_INTERRUPT_DELIVERY.bits(), 0x200);
    assert_eq!(ProcBased2::ENABLE_XSAVES_XRSTORS.bits(), 0x0010_0000);
    // Table 25-13.
    assert_eq!(ExitControls::HOST_ADDRESS_SPACE_SIZE.bits(), 0x200);
    assert_eq!(ExitControls::ACK_INTERRUPT_ON_EXIT.bits(), 0x8000);
    assert_eq!(ExitControls::LOAD_IA32_EFER.bits(), 0x0020_0000);
    // Table 25-15.
    assert_eq!(EntryControls::IA32E_MODE_GUEST.bits(), 0x200);
    assert_eq!(EntryControls::LOAD_IA32_PAT.bits(), 0x4000);
    assert_eq!(EntryControls::LOAD_IA32_EFER.bits(), 0x8000);
}

#[test]
fn default1_bits_are_reserved_except_the_known_controls() {
    assert_eq!(PinBased::all().bits() & default1::PIN_BASED, 0);
    assert_eq!(
        ProcBased::all().bits() & default1::PROC_BASED,
        (ProcBased::CR3_LOAD_EXITING | ProcBased::CR3_STORE_EXITING).bits()
    );
    assert_eq!(
        ExitControls::all().bits() & default1::EXIT,
        ExitControls::SAVE_DEBUG_CONTROLS.bits()
    );
    assert_eq!(
        EntryControls::all().bits() & default1::ENTRY,
        EntryControls::LOAD_DEBUG_CONTROLS.bits()
    );
}

#[test]
fn adjust_adds_required_bits() {
    let msr = cap(default1::PIN_BASED, 0xFF);
    let wanted = PinBased::EXTERNAL_INTERRUPT_EXITING | PinBased::NMI_EXITING;
    assert_eq!(
        adjust(wanted.bits(), msr),
        Ok(wanted.bits() | default1::PIN_BASED)
    );
    assert_eq!(adjust(0, msr), Ok(default1::PIN_BASED));
}

#[test]
fn adjust_reports_every_unsupported_bit() {
    // Preemption timer (bit 6) and posted interrupts (bit 7) not allowed.
    let msr = cap(0x16, 0x3F);
    let wanted = PinBased::all().bits();
    assert_eq!(adjust(wanted, msr), Err(Unsupported { missing_bits: 0xC0 }));
    let err = adjust(wanted, msr).unwrap_err();
    assert!(err.to_string().contains("0x000000c0"), "{err}");
}

#[test]
fn adjust_with_optional_drops_only_optional_bits() {
    let msr = cap(0x16, 0x3F);
    let wanted = PinBased::EXTERNAL_INTERRUPT_EXITING.bits();
    let optional = (PinBased::PREEMPTION_TIMER | PinBased::VIRTUAL_NMIS).bits();
    assert_eq!(
        adjust_with_optional(wanted, optional, msr),
        Ok(0x16 | 0x01 | 0x20)
    );
    assert!(adjust_with_optional(0x80, optional, msr).is_err());
}

#[test]
fn msr_halves() {
    let msr = 0x1234_5678_9ABC_DEF0;
    assert_eq!(must_be_one(msr), 0x9ABC_DEF0);
    assert_eq!(may_be_one(msr), 0x1234_5678);
}

#[test]
fn ready_made_access_rights() {
    // Values as VM entry expects them (SDM Vol. 3C §27.3.1.2) and as
    // hypervisors commonly write them.
    assert_eq!(AccessRights::REAL_MODE_CODE.raw(), 0x009B);
    assert_eq!(AccessRights::REAL_MODE_DATA.raw(), 0x0093);
    assert_eq!(AccessRights::FLAT32_CODE.raw(), 0xC09B);
    assert_eq!(AccessRights::FLAT32_DATA.raw(), 0xC093);
    assert_eq!(AccessRights::CODE64.raw(), 0xA09B);
    assert_eq!(AccessRights::TR_BUSY_TSS.raw(), 0x008B);
    assert_eq!(AccessRights::TR_BUSY_TSS16.raw(), 0x0083);
    assert_eq!(AccessRights::UNUSABLE.raw(), 0x1_0000);
    for ar in [
        AccessRights::REAL_MODE_CODE,
        AccessRights::FLAT32_DATA,
        AccessRights::CODE64,
        AccessRights::TR_BUSY_TSS,
        AccessRights::UNUSABLE,
    ] {
        assert_eq!(ar.raw() & !AccessRights::VALID_MASK, 0);
    }
}

#[test]
fn access_rights_parts() {
    let ar = AccessRights::new(
        segment_type::CODE_XR_ACCESSED,
        true,
        3,
        true,
        true,
        true,
        false,
        true,
    );
    assert_eq!(ar.raw(), 0xB09B | (3 << 5));
    assert_eq!(ar.segment_type(), 0xB);
    assert!(ar.is_code_or_data());
    assert_eq!(ar.dpl(), 3);
    assert!(ar.is_present() && ar.is_long_mode() && ar.is_page_granular());
    assert!(!ar.is_default_big() && !ar.is_unusable());
    assert!(ar.unusable().is_unusable());
    assert_eq!(AccessRights::from_raw(0xC093), AccessRights::FLAT32_DATA);
    let ldt = AccessRights::new(
        segment_type::LDT,
        false,
        0,
        true,
        false,
        false,
        false,
        false,
    );
    assert_eq!(ldt.raw(), 0x82);
}

#[test]
fn access_rights_from_gdt_descriptors() {
    // The classic flat descriptors: 64-bit code 0x00AF9B000000FFFF,
    // 32-bit code 0x00CF9B000000FFFF, data 0x00CF93000000FFFF.
    assert_eq!(
        AccessRights::from_descriptor(0x00AF_9B00_0000_FFFF),
        AccessRights::CODE64
    );
    assert_eq!(
        AccessRights::from_descriptor(0x00CF_9B00_0000_FFFF),
        AccessRights::FLAT32_CODE
    );
    assert_eq!(
        AccessRights::from_descriptor(0x00CF_9300_0000_FFFF),
        AccessRights::FLAT32_DATA
    );
    // Not present: unusable.
    assert!(AccessRights::from_descriptor(0x00CF_1300_0000_FFFF).is_unusable());
    assert!(AccessRights::from_descriptor(0).is_unusable());
}
