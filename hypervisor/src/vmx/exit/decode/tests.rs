use core::cell::Cell;

use super::*;
use crate::vmx::exit::{ExitReason, Gpr};

/// How often a decode asked for each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Reads {
    qualification: u32,
    guest_physical: u32,
    interruption_info: u32,
    idt_vectoring_info: u32,
}

const NONE: Reads = Reads {
    qualification: 0,
    guest_physical: 0,
    interruption_info: 0,
    idt_vectoring_info: 0,
};
const QUAL: Reads = Reads {
    qualification: 1,
    ..NONE
};
const INFO: Reads = Reads {
    interruption_info: 1,
    ..NONE
};

/// A [`RawExit`] that counts the reads, standing in for the VMREADs.
struct Counted {
    raw: RawExit,
    reads: Cell<Reads>,
}

impl Counted {
    fn count(&self, f: impl FnOnce(&mut Reads)) {
        let mut reads = self.reads.get();
        f(&mut reads);
        self.reads.set(reads);
    }
}

impl ExitFields for Counted {
    fn qualification(&self) -> u64 {
        self.count(|r| r.qualification += 1);
        self.raw.qualification
    }

    fn guest_physical(&self) -> u64 {
        self.count(|r| r.guest_physical += 1);
        self.raw.guest_physical
    }

    fn interruption_info(&self) -> u32 {
        self.count(|r| r.interruption_info += 1);
        self.raw.interruption_info
    }

    fn idt_vectoring_info(&self) -> u32 {
        self.count(|r| r.idt_vectoring_info += 1);
        self.raw.idt_vectoring_info
    }
}

/// Decodes the exit-reason field `reason` with `raw`, also saying which
/// fields were read.
fn run(reason: u32, raw: RawExit) -> (ExitEvent, Reads) {
    let fields = Counted {
        raw,
        reads: Cell::new(NONE),
    };
    let event = decode(reason, &fields);
    (event, fields.reads.get())
}

fn basic(reason: ExitReason) -> u32 {
    u32::from(reason.number())
}

fn with_qualification(qualification: u64) -> RawExit {
    RawExit {
        qualification,
        ..RawExit::default()
    }
}

fn with_info(interruption_info: u32) -> RawExit {
    RawExit {
        interruption_info,
        ..RawExit::default()
    }
}

#[test]
fn decode_exits_that_need_no_field() {
    let cases = [
        (ExitReason::TripleFault, ExitEvent::TripleFault),
        (ExitReason::InitSignal, ExitEvent::InitOrSipi),
        (ExitReason::StartupIpi, ExitEvent::InitOrSipi),
        (ExitReason::InterruptWindow, ExitEvent::InterruptWindow),
        (ExitReason::TprBelowThreshold, ExitEvent::InterruptWindow),
        (ExitReason::PreemptionTimerExpired, ExitEvent::TimerExpired),
        (ExitReason::Cpuid, ExitEvent::Cpuid),
        (ExitReason::Hlt, ExitEvent::Hlt),
        (ExitReason::Vmcall, ExitEvent::Hypercall),
        (ExitReason::Rdmsr, ExitEvent::Rdmsr),
        (ExitReason::Wrmsr, ExitEvent::Wrmsr),
        (ExitReason::Xsetbv, ExitEvent::Xsetbv),
    ];
    for (reason, event) in cases {
        assert_eq!(
            run(basic(reason), RawExit::default()),
            (event, NONE),
            "{reason}"
        );
    }
}

#[test]
fn decode_skip_and_unsupported_groups() {
    use ExitReason as R;
    for reason in [R::Invd, R::Wbinvd, R::Pause, R::Mwait, R::Monitor] {
        assert_eq!(
            run(basic(reason), RawExit::default()),
            (ExitEvent::Skip, NONE),
            "{reason}"
        );
    }
    let unsupported = [
        R::Getsec,
        R::Vmclear,
        R::Vmlaunch,
        R::Vmptrld,
        R::Vmptrst,
        R::Vmread,
        R::Vmresume,
        R::Vmwrite,
        R::Vmxoff,
        R::Vmxon,
        R::Invept,
        R::Invvpid,
        R::Vmfunc,
    ];
    for reason in unsupported {
        assert_eq!(
            run(basic(reason), RawExit::default()),
            (ExitEvent::Unsupported, NONE),
            "{reason}"
        );
    }
}

#[test]
fn decode_entry_failures_by_bit_31() {
    // Invalid guest state, MSR loading (qualification: the failing entry,
    // 1-based) and machine check (§27.8).
    for (field, qualification, reason) in [
        (0x8000_0021, 0, 33),
        (0x8000_0022, 3, 34),
        (0x8000_0029, 0, 41),
    ] {
        assert_eq!(
            run(field, with_qualification(qualification)),
            (
                ExitEvent::EntryFailed {
                    reason,
                    qualification
                },
                QUAL
            )
        );
    }
    // Bit 31 wins whatever the basic reason.
    assert_eq!(
        run(0x8000_000A, with_qualification(7)),
        (
            ExitEvent::EntryFailed {
                reason: 10,
                qualification: 7
            },
            QUAL
        )
    );
    // Without bit 31, the entry-failure numbers are not handled here.
    assert_eq!(
        run(33, RawExit::default()),
        (ExitEvent::Unhandled { reason: 33 }, NONE)
    );
}

#[test]
fn decode_unknown_and_unhandled_reasons() {
    // Numbers Table C-1 does not assign.
    for reason in [35, 38, 42, 71, 82, 0xFFFF] {
        assert_eq!(
            run(reason, RawExit::default()),
            (
                ExitEvent::Unhandled {
                    reason: reason as u16
                },
                NONE
            )
        );
    }
    // Reasons this hypervisor does not enable.
    for reason in [
        ExitReason::NmiWindow,
        ExitReason::TaskSwitch,
        ExitReason::Rdtsc,
        ExitReason::MovDr,
        ExitReason::Rdrand,
        ExitReason::PmlFull,
    ] {
        assert_eq!(
            run(basic(reason), RawExit::default()),
            (
                ExitEvent::Unhandled {
                    reason: reason.number()
                },
                NONE
            ),
            "{reason}"
        );
    }
    // Bits 27-29 (enclave mode, pending MTF, from root) do not change the
    // reason.
    assert_eq!(
        run((1 << 28) | (1 << 27) | 10, RawExit::default()),
        (ExitEvent::Cpuid, NONE)
    );
}

#[test]
fn decode_exceptions_nmi_and_debug_trap() {
    let cases = [
        // #PF with an error code.
        (0x8000_0B0E, ExitEvent::Exception { vector: 14 }),
        // #UD.
        (0x8000_0306, ExitEvent::Exception { vector: 6 }),
        // INT3 (software exception).
        (0x8000_0603, ExitEvent::Exception { vector: 3 }),
        // NMI (type 2, vector 2).
        (0x8000_0202, ExitEvent::Nmi),
        // #DB as a hardware exception (the single-step trap) and as INT1
        // (privileged software exception).
        (0x8000_0301, ExitEvent::DebugTrap),
        (0x8000_0501, ExitEvent::DebugTrap),
    ];
    for (info, event) in cases {
        assert_eq!(
            run(basic(ExitReason::ExceptionOrNmi), with_info(info)),
            (event, INFO),
            "{info:#x}"
        );
    }
}

#[test]
fn decode_external_interrupts_with_and_without_a_vector() {
    let reason = basic(ExitReason::ExternalInterrupt);
    assert_eq!(
        run(reason, with_info(0x8000_0031)),
        (ExitEvent::ExternalInterrupt { vector: Some(0x31) }, INFO)
    );
    // Not acknowledged on exit: bit 31 clear, the vector bits mean nothing.
    for info in [0, 0x31] {
        assert_eq!(
            run(reason, with_info(info)),
            (ExitEvent::ExternalInterrupt { vector: None }, INFO)
        );
    }
}

#[test]
fn decode_cr_access_kinds() {
    let reason = basic(ExitReason::ControlRegisterAccess);
    let cases = [
        // MOV CR3, R9.
        (
            0x903,
            CrAccess::Write {
                cr: 3,
                gpr: Gpr::R9,
            },
        ),
        // MOV CR8, R8.
        (
            0x808,
            CrAccess::Write {
                cr: 8,
                gpr: Gpr::R8,
            },
        ),
        // MOV RDX, CR4.
        (
            0x214,
            CrAccess::Read {
                cr: 4,
                gpr: Gpr::Rdx,
            },
        ),
        // CLTS.
        (0x20, CrAccess::Clts),
        // LMSW from a register and from memory (bit 6).
        (0x0031_0030, CrAccess::Lmsw { source: 0x31 }),
        (0xFFFF_0070, CrAccess::Lmsw { source: 0xFFFF }),
    ];
    for (qualification, access) in cases {
        assert_eq!(
            run(reason, with_qualification(qualification)),
            (ExitEvent::Cr(access), QUAL),
            "{qualification:#x}"
        );
    }
}

#[test]
fn decode_io_qualification() {
    let reason = basic(ExitReason::IoInstruction);
    let io = |port, size, input, string| {
        ExitEvent::Io(IoAccess {
            port,
            size,
            input,
            string,
        })
    };
    let cases = [
        // OUT DX, AL to 0x3F8.
        (0x03F8_0000, io(0x3F8, 1, false, false)),
        // OUT DX, AX and OUT DX, EAX to 0xCFC.
        (0x0CFC_0001, io(0xCFC, 2, false, false)),
        (0x0CFC_0003, io(0xCFC, 4, false, false)),
        // IN EAX, 0x71 (immediate port).
        (0x0071_004B, io(0x71, 4, true, false)),
        // REP INSW from 0x1F0.
        (0x01F0_0039, io(0x1F0, 2, true, true)),
        // OUTSB to 0x3F8.
        (0x03F8_0010, io(0x3F8, 1, false, true)),
    ];
    for (qualification, event) in cases {
        assert_eq!(
            run(reason, with_qualification(qualification)),
            (event, QUAL),
            "{qualification:#x}"
        );
    }
}

#[test]
fn decode_apic_access_write_and_virtualized_eoi() {
    let access = basic(ExitReason::ApicAccess);
    let cases = [
        // Linear write of the EOI register, linear read of the ID.
        (0x10B0, 0xB0, 1),
        (0x0020, 0x20, 0),
        // Linear access during event delivery; guest-physical access
        // (the offset bits are not defined then, passed on as they are).
        (0x3080, 0x80, 3),
        (0xF000, 0, 15),
    ];
    for (qualification, offset, kind) in cases {
        assert_eq!(
            run(access, with_qualification(qualification)),
            (ExitEvent::ApicAccess { offset, kind }, QUAL),
            "{qualification:#x}"
        );
    }
    let write = basic(ExitReason::ApicWrite);
    assert_eq!(
        run(write, with_qualification(0x300)),
        (ExitEvent::ApicWrite { offset: 0x300 }, QUAL)
    );
    assert_eq!(
        run(write, with_qualification(0xFFFF_F380)),
        (ExitEvent::ApicWrite { offset: 0x380 }, QUAL)
    );
    let eoi = basic(ExitReason::VirtualizedEoi);
    assert_eq!(
        run(eoi, with_qualification(0xEF)),
        (ExitEvent::VirtualizedEoi { vector: 0xEF }, QUAL)
    );
    assert_eq!(
        run(eoi, with_qualification(0x1EF)),
        (ExitEvent::VirtualizedEoi { vector: 0xEF }, QUAL)
    );
}

#[test]
fn decode_ept_violations() {
    let reason = basic(ExitReason::EptViolation);
    let reads = Reads {
        qualification: 1,
        guest_physical: 1,
        idt_vectoring_info: 1,
        ..NONE
    };
    let fault = |qualification, idt_vectoring_info| {
        run(
            reason,
            RawExit {
                qualification,
                guest_physical: 0xFED0_0040,
                idt_vectoring_info,
                ..RawExit::default()
            },
        )
    };
    let event = |write, fetch, paging_structure, during_delivery| {
        (
            ExitEvent::NestedPageFault {
                gpa: 0xFED0_0040,
                write,
                fetch,
                paging_structure,
                during_delivery,
            },
            reads,
        )
    };
    // A write to a read-only page at a translated linear address.
    assert_eq!(
        fault(0x2 | 0x8 | 0x80 | 0x100, 0),
        event(true, false, false, false)
    );
    // An instruction fetch with no linear address (bit 7 clear).
    assert_eq!(fault(0x4, 0), event(false, true, false, false));
    // The CPU's read of a guest paging structure: bit 7 set, bit 8 clear.
    assert_eq!(fault(0x1 | 0x80, 0), event(false, false, true, false));
    // A write while delivering an interrupt (IDT-vectoring information
    // valid, §28.2.4), e.g. pushing on the guest's stack.
    assert_eq!(
        fault(0x2 | 0x80 | 0x100, 0x8000_00EC),
        event(true, false, false, true)
    );
    // The same vector bits without the valid bit: not during delivery.
    assert_eq!(
        fault(0x2 | 0x80 | 0x100, 0x0000_00EC),
        event(true, false, false, false)
    );
}

#[test]
fn decode_ept_misconfiguration() {
    let raw = RawExit {
        guest_physical: 0x1_0000_0000,
        ..RawExit::default()
    };
    assert_eq!(
        run(basic(ExitReason::EptMisconfiguration), raw),
        (
            ExitEvent::NestedPageMisconfig { gpa: 0x1_0000_0000 },
            Reads {
                guest_physical: 1,
                ..NONE
            }
        )
    );
}

#[test]
fn every_reason_reads_each_field_at_most_once() {
    let raw = RawExit {
        qualification: u64::MAX,
        guest_physical: u64::MAX,
        interruption_info: u32::MAX,
        idt_vectoring_info: u32::MAX,
    };
    for &reason in ExitReason::ALL {
        for field in [basic(reason), basic(reason) | (1 << 31)] {
            let (_, reads) = run(field, raw);
            assert!(
                reads.qualification <= 1
                    && reads.guest_physical <= 1
                    && reads.interruption_info <= 1
                    && reads.idt_vectoring_info <= 1,
                "{field:#x}: {reads:?}"
            );
        }
    }
    // A plain `RawExit` decodes the same as the counting stand-in.
    assert_eq!(
        decode(basic(ExitReason::ApicWrite), &with_qualification(0x80)),
        ExitEvent::ApicWrite { offset: 0x80 }
    );
}

/// The position of `event`'s variant; exhaustive, so a new variant does not
/// compile until it is listed here (and then needs a case below).
fn variant(event: &ExitEvent) -> usize {
    match event {
        ExitEvent::Cpuid => 0,
        ExitEvent::Rdmsr => 1,
        ExitEvent::Wrmsr => 2,
        ExitEvent::Io(_) => 3,
        ExitEvent::Cr(_) => 4,
        ExitEvent::Xsetbv => 5,
        ExitEvent::Hlt => 6,
        ExitEvent::Skip => 7,
        ExitEvent::Hypercall => 8,
        ExitEvent::Unsupported => 9,
        ExitEvent::ExternalInterrupt { .. } => 10,
        ExitEvent::Nmi => 11,
        ExitEvent::DebugTrap => 12,
        ExitEvent::Exception { .. } => 13,
        ExitEvent::NestedPageFault { .. } => 14,
        ExitEvent::NestedPageMisconfig { .. } => 15,
        ExitEvent::ApicWrite { .. } => 16,
        ExitEvent::VirtualizedEoi { .. } => 17,
        ExitEvent::ApicAccess { .. } => 18,
        ExitEvent::TripleFault => 19,
        ExitEvent::TimerExpired => 20,
        ExitEvent::InterruptWindow => 21,
        ExitEvent::InitOrSipi => 22,
        ExitEvent::EntryFailed { .. } => 23,
        ExitEvent::Unhandled { .. } => 24,
    }
}

#[test]
fn the_decoder_produces_every_event() {
    use ExitReason as R;
    let samples = [
        (basic(R::Cpuid), RawExit::default()),
        (basic(R::Rdmsr), RawExit::default()),
        (basic(R::Wrmsr), RawExit::default()),
        (basic(R::IoInstruction), RawExit::default()),
        (basic(R::ControlRegisterAccess), RawExit::default()),
        (basic(R::Xsetbv), RawExit::default()),
        (basic(R::Hlt), RawExit::default()),
        (basic(R::Pause), RawExit::default()),
        (basic(R::Vmcall), RawExit::default()),
        (basic(R::Vmxon), RawExit::default()),
        (basic(R::ExternalInterrupt), RawExit::default()),
        (basic(R::ExceptionOrNmi), with_info(0x8000_0202)),
        (basic(R::ExceptionOrNmi), with_info(0x8000_0301)),
        (basic(R::ExceptionOrNmi), with_info(0x8000_030D)),
        (basic(R::EptViolation), RawExit::default()),
        (basic(R::EptMisconfiguration), RawExit::default()),
        (basic(R::ApicWrite), RawExit::default()),
        (basic(R::VirtualizedEoi), RawExit::default()),
        (basic(R::ApicAccess), RawExit::default()),
        (basic(R::TripleFault), RawExit::default()),
        (basic(R::PreemptionTimerExpired), RawExit::default()),
        (basic(R::InterruptWindow), RawExit::default()),
        (basic(R::InitSignal), RawExit::default()),
        (0x8000_0021, RawExit::default()),
        (35, RawExit::default()),
    ];
    let mut seen = [false; 25];
    for (reason, raw) in samples {
        seen[variant(&decode(reason, &raw))] = true;
    }
    assert_eq!(seen, [true; 25]);
}
