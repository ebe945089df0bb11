use super::*;

#[test]
fn exit_reason_numbers_match_appendix_c() {
    let expect = [
        (0, ExitReason::ExceptionOrNmi),
        (1, ExitReason::ExternalInterrupt),
        (2, ExitReason::TripleFault),
        (3, ExitReason::InitSignal),
        (4, ExitReason::StartupIpi),
        (7, ExitReason::InterruptWindow),
        (10, ExitReason::Cpuid),
        (12, ExitReason::Hlt),
        (18, ExitReason::Vmcall),
        (28, ExitReason::ControlRegisterAccess),
        (30, ExitReason::IoInstruction),
        (31, ExitReason::Rdmsr),
        (32, ExitReason::Wrmsr),
        (33, ExitReason::EntryFailureGuestState),
        (41, ExitReason::EntryFailureMachineCheck),
        (44, ExitReason::ApicAccess),
        (45, ExitReason::VirtualizedEoi),
        (48, ExitReason::EptViolation),
        (49, ExitReason::EptMisconfiguration),
        (52, ExitReason::PreemptionTimerExpired),
        (55, ExitReason::Xsetbv),
        (56, ExitReason::ApicWrite),
        (62, ExitReason::PmlFull),
        (70, ExitReason::Enclv),
        (74, ExitReason::BusLock),
        (75, ExitReason::InstructionTimeout),
    ];
    for (n, reason) in expect {
        assert_eq!(reason.number(), n);
        assert_eq!(ExitReason::from_basic(n), Some(reason));
    }
    for unassigned in [35, 38, 42, 71, 82, 83, 86, 0xFFFF] {
        assert_eq!(ExitReason::from_basic(unassigned), None, "{unassigned}");
    }
}

#[test]
fn every_reason_round_trips_and_has_a_name() {
    let mut last = None;
    for &reason in ExitReason::ALL {
        assert_eq!(ExitReason::from_basic(reason.number()), Some(reason));
        assert!(!reason.name().is_empty());
        // Declared in increasing order.
        assert!(last < Some(reason.number()));
        last = Some(reason.number());
    }
    // Every number from 0 to 75 except the unassigned ones is known.
    let known = (0..=75)
        .filter(|&n| ExitReason::from_basic(n).is_some())
        .count();
    assert_eq!(known, 76 - 4);
    assert_eq!(ExitReason::Cpuid.to_string(), "CPUID (10)");
}

#[test]
fn from_raw_takes_bits_15_to_0() {
    assert_eq!(
        ExitReason::from_raw(0x8000_0021),
        Some(ExitReason::EntryFailureGuestState)
    );
    assert_eq!(ExitReason::from_raw(0x0001_000A), Some(ExitReason::Cpuid));
    let field = ExitReasonField(0x8000_0021);
    assert!(field.entry_failure());
    assert_eq!(field.basic(), 33);
    assert_eq!(field.reason(), Some(ExitReason::EntryFailureGuestState));
    assert_eq!(
        field.to_string(),
        "VM-entry failure due to invalid guest state (33), VM-entry failure"
    );
    let mtf = ExitReasonField((1 << 28) | 30);
    assert!(mtf.pending_mtf() && !mtf.entry_failure() && !mtf.enclave_mode());
    assert!(ExitReasonField(1 << 29).from_root_operation());
    assert_eq!(ExitReasonField(99).to_string(), "unknown exit reason 99");
}

#[test]
fn cr_access_qualification() {
    // MOV CR3, R9: CR 3, type 0, GPR 9.
    let q = CrAccessQualification(0x903);
    assert_eq!(q.cr(), 3);
    assert_eq!(q.access_type(), CrAccessType::MovToCr);
    assert_eq!(q.gpr(), Gpr::R9);
    // MOV RAX, CR4: type 1.
    let q = CrAccessQualification(0x14);
    assert_eq!(
        (q.cr(), q.access_type(), q.gpr()),
        (4, CrAccessType::MovFromCr, Gpr::Rax)
    );
    // CLTS.
    assert_eq!(
        CrAccessQualification(0x20).access_type(),
        CrAccessType::Clts
    );
    // LMSW from memory with source 0x0011.
    let q = CrAccessQualification(0x0011_0070);
    assert_eq!(q.access_type(), CrAccessType::Lmsw);
    assert!(q.lmsw_memory_operand());
    assert_eq!(q.lmsw_source(), 0x11);
}

#[test]
fn io_qualification() {
    // OUT DX, AL to 0x3F8.
    let q = IoQualification(0x03F8_0000);
    assert_eq!(
        (q.size(), q.is_in(), q.is_string(), q.port()),
        (1, false, false, 0x3F8)
    );
    // IN EAX, 0x71 (immediate).
    let q = IoQualification(0x0071_0000 | 0x40 | 0x08 | 3);
    assert_eq!(
        (q.size(), q.is_in(), q.immediate_operand()),
        (4, true, true)
    );
    // REP INSW from 0x1F0.
    let q = IoQualification(0x01F0_0000 | 0x20 | 0x10 | 0x08 | 1);
    assert_eq!((q.size(), q.is_string(), q.is_rep()), (2, true, true));
}

#[test]
fn ept_violation_qualification() {
    // Write to a read-only page, linear address valid, translated access.
    let q = EptViolationQualification(0x2 | 0x8 | 0x80 | 0x100);
    assert!(q.write() && !q.read() && !q.fetch());
    assert!(q.readable() && !q.writable() && !q.executable());
    assert!(q.linear_address_valid() && q.translated_access());
    assert_eq!(q.permissions(), 0b001);
    assert!(!q.nmi_unblocking());
    assert!(EptViolationQualification(1 << 12).nmi_unblocking());
    assert!(EptViolationQualification(4).fetch());
}

#[test]
fn apic_qualifications() {
    let q = ApicAccessQualification(0x10B0);
    assert_eq!(
        (q.offset(), q.access_type()),
        (0xB0, ApicAccessType::LinearWrite)
    );
    assert_eq!(
        ApicAccessQualification(0x0300).access_type(),
        ApicAccessType::LinearRead
    );
    assert_eq!(
        ApicAccessQualification(0xA000).access_type(),
        ApicAccessType::PhysicalEventDelivery
    );
    assert_eq!(
        ApicAccessQualification(0xF000).access_type(),
        ApicAccessType::PhysicalInstruction
    );
    assert_eq!(
        ApicAccessQualification(0x5000).access_type(),
        ApicAccessType::Reserved(5)
    );
    assert!(ApicAccessQualification(1 << 16).asynchronous());
    for code in 0..16u8 {
        let q = ApicAccessQualification(u64::from(code) << 12);
        assert_eq!(q.access_type().code(), code);
    }
    assert_eq!(apic_write_offset(0x380), 0x380);
}

#[test]
fn exit_interruption_info() {
    // #GP with error code, valid.
    let info = ExitInterruptionInfo(0x8000_0B0D);
    assert!(info.valid() && info.error_code_valid() && !info.nmi_unblocking());
    assert_eq!(info.vector(), 13);
    assert_eq!(
        info.interruption_type(),
        InterruptionType::HardwareException
    );
    // NMI.
    let nmi = ExitInterruptionInfo(0x8000_0202);
    assert_eq!(nmi.interruption_type(), InterruptionType::Nmi);
    // External interrupt 0x30 (acknowledged on exit).
    let ext = ExitInterruptionInfo(0x8000_0030);
    assert_eq!(
        (ext.interruption_type(), ext.vector()),
        (InterruptionType::ExternalInterrupt, 0x30)
    );
    assert!(!ExitInterruptionInfo(0x30).valid());
    assert!(ExitInterruptionInfo(1 << 12).nmi_unblocking());
    assert_eq!(
        InterruptionType::from_bits(6),
        InterruptionType::SoftwareException
    );
}

#[test]
fn an_interrupted_delivery_is_delivered_again() {
    assert_eq!(
        EntryInterruption::redelivery(0x0000_00EC, || 0),
        None,
        "not valid"
    );
    // A virtual interrupt (external type) cut short by an EPT violation on
    // its stack: the same event, no error code, no length.
    let irq = EntryInterruption::redelivery(0x8000_00EC, || 0x1234).expect("valid");
    assert_eq!(
        (irq.info(), irq.error_code(), irq.needs_instruction_length()),
        (0x8000_00EC, None, false)
    );
    // #PF with its error code; bit 12 (undefined) and reserved bits dropped.
    let pf = EntryInterruption::redelivery(0x8000_1B0E | 1 << 20, || 2).expect("valid");
    assert_eq!((pf.info(), pf.error_code()), (0x8000_0B0E, Some(2)));
    // INT 0x80 (software interrupt) and INT3 (software exception) need the
    // instruction length; an NMI does not.
    assert!(
        EntryInterruption::redelivery(0x8000_0480, || 0)
            .expect("valid")
            .needs_instruction_length()
    );
    assert!(
        EntryInterruption::redelivery(0x8000_0603, || 0)
            .expect("valid")
            .needs_instruction_length()
    );
    assert!(
        !EntryInterruption::redelivery(0x8000_0202, || 0)
            .expect("valid")
            .needs_instruction_length()
    );
}

#[test]
fn entry_interruption_builder() {
    assert_eq!(
        EntryInterruption::external_interrupt(0x30).info(),
        0x8000_0030
    );
    assert_eq!(
        EntryInterruption::external_interrupt(0x30).error_code(),
        None
    );
    assert_eq!(EntryInterruption::nmi().info(), 0x8000_0202);
    // #UD: no error code.
    let ud = EntryInterruption::hardware_exception(6, None);
    assert_eq!((ud.info(), ud.error_code()), (0x8000_0306, None));
    // #GP(0): deliver-error-code bit 11.
    let gp = EntryInterruption::hardware_exception(13, Some(0));
    assert_eq!((gp.info(), gp.error_code()), (0x8000_0B0D, Some(0)));
    // The automatic form gives an error code only where the vector has one.
    assert_eq!(EntryInterruption::exception(14, 2).error_code(), Some(2));
    assert_eq!(EntryInterruption::exception(6, 2).error_code(), None);
    assert_eq!(EntryInterruption::exception(8, 0).info(), 0x8000_0B08);
    let with_code: Vec<u8> = (0..32).filter(|&v| exception_has_error_code(v)).collect();
    assert_eq!(with_code, [8, 10, 11, 12, 13, 14, 17, 21]);
}

#[test]
fn vm_instruction_errors() {
    assert_eq!(
        VmInstructionError(7).message(),
        "VM entry with invalid control field(s)"
    );
    assert_eq!(
        VmInstructionError(8).message(),
        "VM entry with invalid host-state field(s)"
    );
    assert_eq!(
        VmInstructionError(12).message(),
        "VMREAD/VMWRITE from/to unsupported VMCS component"
    );
    assert_eq!(
        VmInstructionError(28).message(),
        "invalid operand to INVEPT/INVVPID"
    );
    for unassigned in [0, 14, 21, 27, 29, 1000] {
        assert_eq!(
            VmInstructionError(unassigned).message(),
            "unknown VM-instruction error"
        );
    }
    assert_eq!(
        VmInstructionError(5).to_string(),
        "VM-instruction error 5: VMRESUME with non-launched VMCS"
    );
}

#[test]
fn gpr_numbering() {
    assert_eq!(Gpr::from_index(0), Gpr::Rax);
    assert_eq!(Gpr::from_index(4), Gpr::Rsp);
    assert_eq!(Gpr::from_index(7), Gpr::Rdi);
    assert_eq!(Gpr::from_index(15), Gpr::R15);
    for (i, gpr) in Gpr::ALL.iter().enumerate() {
        assert_eq!(gpr.index(), i);
    }
}
