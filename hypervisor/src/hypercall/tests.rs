use super::sim::{SimMemory, SimPlatform};
use super::*;
use proptest::prelude::*;
use zerocopy::FromZeros;

/// Caller RAM: [0x1000, 0x9000) and [0x10_0000, 0x10_2000).
type FakeMem = SimMemory;
type FakePlatform = SimPlatform;

const DOM0: Caller = Caller { privileged: true };

fn call(op: Op, args: [u64; 5], mem: &mut FakeMem, p: &mut FakePlatform) -> i64 {
    dispatch(op.number(), args, DOM0, mem, p)
}

fn fixture() -> (FakeMem, FakePlatform) {
    (
        SimMemory::new(&[(0x1000, 0x9000), (0x10_0000, 0x10_2000)]),
        SimPlatform {
            log: b"line one\nline two\n".to_vec(),
            dropped: 7,
            free_pages: 1000,
            ..SimPlatform::default()
        },
    )
}

#[test]
fn version_negotiation() {
    let (mut m, mut p) = fixture();
    let mut a = VersionArgs::request();
    m.write(0x2000, a.as_bytes()).unwrap();
    assert_eq!(call(Op::Version, [0x2000, 0, 0, 0, 0], &mut m, &mut p), 0);
    a = read_struct(0x2000, &m).unwrap();
    assert_eq!(a.hypervisor(), ABI_VERSION);
    a.caller_major = ABI_VERSION.major + 1;
    m.write(0x2000, a.as_bytes()).unwrap();
    assert_eq!(
        call(Op::Version, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::VersionMismatch.as_raw()
    );
    let back: VersionArgs = read_struct(0x2000, &m).unwrap();
    assert_eq!(
        back.hypervisor(),
        ABI_VERSION,
        "filled in even on a mismatch"
    );
}

#[test]
fn hv_info_checks_size_and_address() {
    let (mut m, mut p) = fixture();
    assert_eq!(call(Op::HvInfo, [0x2000, 88, 0, 0, 0], &mut m, &mut p), 88);
    let info: HvInfo = read_struct(0x2000, &m).unwrap();
    assert_eq!(info.cpu_count, 2);
    assert_eq!(
        call(Op::HvInfo, [0x2000, 87, 0, 0, 0], &mut m, &mut p),
        Status::BufferTooSmall.as_raw()
    );
    assert_eq!(
        call(Op::HvInfo, [0x2000, 1 << 40, 0, 0, 0], &mut m, &mut p),
        Status::TooBig.as_raw()
    );
    // Runs off the end of the caller's RAM / outside it / wrapping.
    assert_eq!(
        call(Op::HvInfo, [0x9000 - 80, 88, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
    assert_eq!(
        call(Op::HvInfo, [0xA000, 88, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
    assert_eq!(
        call(Op::HvInfo, [u64::MAX - 10, 88, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
}

#[test]
fn log_read_and_clear() {
    let (mut m, mut p) = fixture();
    let args = LogReadArgs {
        buffer_gpa: 0x10_0000,
        size: 9,
        flags: 0,
        returned: 0,
        dropped: 0,
    };
    m.write(0x3000, args.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 9);
    let back: LogReadArgs = read_struct(0x3000, &m).unwrap();
    assert_eq!((back.returned, back.dropped), (9, 7));
    let mut text = [0u8; 9];
    m.read(0x10_0000, &mut text).unwrap();
    assert_eq!(&text, b"line one\n");
    // Clear consumes.
    let args = LogReadArgs {
        flags: LOG_READ_CLEAR,
        ..args
    };
    m.write(0x3000, args.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 9);
    assert_eq!(p.log, b"line two\n");
    // A bad buffer consumes nothing.
    let bad = LogReadArgs {
        buffer_gpa: 0x9000,
        size: 16,
        flags: LOG_READ_CLEAR,
        ..args
    };
    m.write(0x3000, bad.as_bytes()).unwrap();
    assert_eq!(
        call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
    assert_eq!(p.log, b"line two\n");
    let flags = LogReadArgs {
        flags: 0x80,
        ..args
    };
    m.write(0x3000, flags.as_bytes()).unwrap();
    assert_eq!(
        call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    let huge = LogReadArgs {
        size: u32::MAX,
        flags: 0,
        ..args
    };
    m.write(0x3000, huge.as_bytes()).unwrap();
    assert_eq!(
        call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p),
        Status::TooBig.as_raw()
    );
}

#[test]
fn domain_list_and_info() {
    let (mut m, mut p) = fixture();
    let args = DomainListArgs {
        buffer_gpa: 0x4000,
        capacity: 1,
        start_domid: 0,
        returned: 0,
        total: 0,
    };
    m.write(0x3000, args.as_bytes()).unwrap();
    assert_eq!(
        call(Op::DomainList, [0x3000, 0, 0, 0, 0], &mut m, &mut p),
        1
    );
    let back: DomainListArgs = read_struct(0x3000, &m).unwrap();
    assert_eq!((back.returned, back.total), (1, 2));
    let d: DomainInfo = read_struct(0x4000, &m).unwrap();
    assert_eq!(d.name_str(), Some("Domain-0"));
    let from3 = DomainListArgs {
        capacity: 8,
        start_domid: 1,
        ..args
    };
    m.write(0x3000, from3.as_bytes()).unwrap();
    assert_eq!(
        call(Op::DomainList, [0x3000, 0, 0, 0, 0], &mut m, &mut p),
        1
    );
    let d: DomainInfo = read_struct(0x4000, &m).unwrap();
    assert_eq!(d.domid, 3);
    let huge = DomainListArgs {
        capacity: u32::MAX,
        ..args
    };
    m.write(0x3000, huge.as_bytes()).unwrap();
    assert_eq!(
        call(Op::DomainList, [0x3000, 0, 0, 0, 0], &mut m, &mut p),
        Status::TooBig.as_raw()
    );

    assert_eq!(
        call(Op::DomainInfo, [3, 0x5000, 0, 0, 0], &mut m, &mut p),
        0
    );
    let d: DomainInfo = read_struct(0x5000, &m).unwrap();
    assert_eq!(d.memory_pages, 1003);
    assert_eq!(
        call(Op::DomainInfo, [4, 0x5000, 0, 0, 0], &mut m, &mut p),
        Status::NoSuchDomain.as_raw()
    );
    assert_eq!(
        call(Op::DomainInfo, [1 << 40, 0x5000, 0, 0, 0], &mut m, &mut p),
        Status::NoSuchDomain.as_raw()
    );
    assert_eq!(
        call(Op::DomainInfo, [0, 0x8FF0, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
}

#[test]
fn unknown_reserved_and_unprivileged() {
    let (mut m, mut p) = fixture();
    assert_eq!(
        dispatch(0, [0; 5], DOM0, &mut m, &mut p),
        Status::InvalidOperation.as_raw()
    );
    assert_eq!(
        dispatch(0x8000, [0; 5], DOM0, &mut m, &mut p),
        Status::NotImplemented.as_raw()
    );
    // Unused numbers in the lifecycle groups: as the ABI says.
    for op in [0x0305u64, 0x0470, 0x05d5, 0x06fb] {
        assert_eq!(
            dispatch(op, [0; 5], DOM0, &mut m, &mut p),
            dom0_abi::hypercall::unknown_op_status(op).as_raw(),
            "{op:#x}"
        );
        assert_eq!(
            dispatch(op, [0; 5], DOM0, &mut m, &mut p),
            Status::NotImplemented.as_raw(),
            "{op:#x}"
        );
    }
    assert_eq!(
        dispatch(0x01FF, [0; 5], DOM0, &mut m, &mut p),
        Status::InvalidOperation.as_raw()
    );
    assert_eq!(
        dispatch(u64::MAX, [0; 5], DOM0, &mut m, &mut p),
        Status::InvalidOperation.as_raw()
    );
    let domu = Caller { privileged: false };
    assert_eq!(
        dispatch(
            Op::HvInfo.number(),
            [0x2000, 88, 0, 0, 0],
            domu,
            &mut m,
            &mut p
        ),
        Status::NotPermitted.as_raw()
    );
}

proptest! {
    /// Random operations and arguments (random or near the edges of the
    /// caller's RAM) never panic, and anything that is not a real operation
    /// with good arguments is an error status.
    #[test]
    fn random_calls_only_return_statuses(
        op in prop_oneof![any::<u64>(), 0u64..0x0300, 0x0800u64..0x0805, Just(0x0100u64), Just(0x0101u64), Just(0x0102u64), Just(0x0200u64), Just(0x0201u64)],
        args in proptest::array::uniform5(prop_oneof![any::<u64>(), 0x0u64..0x11_0000, Just(0x8FFFu64), Just(u64::MAX)]),
        junk in proptest::collection::vec(any::<u8>(), 0x8000),
    ) {
        let (mut m, mut p) = fixture();
        m.range_mut(0).copy_from_slice(&junk);
        let status = dispatch(op, args, DOM0, &mut m, &mut p);
        if Op::try_from(op).is_err() {
            prop_assert!(status < 0);
        }
        prop_assert!(status < 0 || Status::from_raw(status).is_some() || status <= MAX_BUFFER_BYTES as i64);
    }
}

fn create_args(name: &str, pages: u64, vcpus: u32) -> dom0_abi::lifecycle::DomainCreateArgs {
    dom0_abi::lifecycle::DomainCreateArgs::new(name, pages, vcpus).unwrap()
}

#[test]
fn a_domain_is_created_loaded_run_and_destroyed() {
    let (mut m, mut p) = fixture();
    m.write(0x2000, create_args("web", 16, 1).as_bytes())
        .unwrap();
    let id = call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p);
    assert_eq!(id, 1);
    let back: dom0_abi::lifecycle::DomainCreateArgs = read_struct(0x2000, &m).unwrap();
    assert_eq!(back.domid, 1);
    assert_eq!(p.free_pages, 1000 - 16);
    // Same name again: refused.
    assert_eq!(
        call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::Exists.as_raw()
    );
    // Unpause before an entry is set: nothing to run.
    assert_eq!(
        call(Op::DomainUnpause, [1, 0, 0, 0, 0], &mut m, &mut p),
        Status::BadState.as_raw()
    );
    // Copy in 16 bytes from caller GPA 0x3000 to domain GPA 0x1000.
    m.write(0x3000, b"kernel bytes!!!!").unwrap();
    assert_eq!(
        call(Op::DomainCopyIn, [1, 0x1000, 0x3000, 16, 0], &mut m, &mut p),
        16
    );
    assert_eq!(
        &p.domus.get(1).unwrap().ram[0x1000..0x1010],
        b"kernel bytes!!!!"
    );
    // Beyond the domain's RAM, or too big.
    assert_eq!(
        call(
            Op::DomainCopyIn,
            [1, 16 * 4096 - 8, 0x3000, 16, 0],
            &mut m,
            &mut p
        ),
        Status::BadAddress.as_raw()
    );
    assert_eq!(
        call(Op::DomainCopyIn, [1, 0, 0x3000, 1 << 30, 0], &mut m, &mut p),
        Status::TooBig.as_raw()
    );
    // Entry: PVH mode.
    let mut e = dom0_abi::lifecycle::VcpuEntry::new_zeroed();
    e.mode = dom0_abi::lifecycle::VCPU_MODE_PVH;
    e.rip = 0x100_0000;
    e.rbx = 0x6000;
    m.write(0x4000, e.as_bytes()).unwrap();
    assert_eq!(
        call(Op::VcpuSetEntry, [1, 1, 0x4000, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    assert_eq!(
        call(Op::VcpuSetEntry, [1, 0, 0x4000, 0, 0], &mut m, &mut p),
        0
    );
    assert_eq!(call(Op::DomainUnpause, [1, 0, 0, 0, 0], &mut m, &mut p), 0);
    // Loading is over once it ran.
    assert_eq!(
        call(Op::DomainCopyIn, [1, 0x1000, 0x3000, 16, 0], &mut m, &mut p),
        Status::BadState.as_raw()
    );
    p.domus
        .get_mut(1)
        .unwrap()
        .console_out
        .extend_from_slice(b"hello\n");
    assert_eq!(
        call(Op::ConsoleRead, [1, 0x5000, 64, 0, 0], &mut m, &mut p),
        6
    );
    assert_eq!(
        call(Op::ConsoleRead, [1, 0x5000, 64, 0, 0], &mut m, &mut p),
        0
    );
    assert_eq!(call(Op::DomainPause, [1, 0, 0, 0, 0], &mut m, &mut p), 0);
    // dom0 is not the toolstack's to destroy; unknown ids are refused.
    assert_eq!(
        call(Op::DomainDestroy, [0, 0, 0, 0, 0], &mut m, &mut p),
        Status::NotPermitted.as_raw()
    );
    assert_eq!(
        call(Op::DomainDestroy, [9, 0, 0, 0, 0], &mut m, &mut p),
        Status::NoSuchDomain.as_raw()
    );
    assert_eq!(call(Op::DomainDestroy, [1, 0, 0, 0, 0], &mut m, &mut p), 0);
    assert_eq!(p.free_pages, 1000);
}

#[test]
fn bad_create_arguments_are_refused() {
    let (mut m, mut p) = fixture();
    let mut a = create_args("x", 16, 1);
    a.flags = 1;
    m.write(0x2000, a.as_bytes()).unwrap();
    assert_eq!(
        call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    let mut a = create_args("x", 16, 1);
    a.name = [b'a'; 64]; // no NUL
    m.write(0x2000, a.as_bytes()).unwrap();
    assert_eq!(
        call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    m.write(0x2000, create_args("big", 999_999, 1).as_bytes())
        .unwrap();
    assert_eq!(
        call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    m.write(0x2000, create_args("42", 16, 1).as_bytes())
        .unwrap();
    assert_eq!(
        call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    assert_eq!(
        call(Op::DomainShutdown, [1, 7, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
}

#[test]
fn event_read_returns_clears_and_refuses_without_losing_events() {
    use dom0_abi::event::{
        EVENT_DOMAIN_CREATED, EVENT_DOMAIN_DESTROYED, EVENT_READ_PEEK, EventReadArgs,
    };
    let (mut m, mut p) = fixture();
    let read = |m: &mut FakeMem, p: &mut FakePlatform, flags: u32| {
        m.write(
            0x2000,
            EventReadArgs {
                flags,
                ..EventReadArgs::default()
            }
            .as_bytes(),
        )
        .unwrap();
        let status = call(Op::EventRead, [0x2000, 0, 0, 0, 0], m, p);
        (status, read_struct::<EventReadArgs>(0x2000, m).unwrap())
    };
    assert_eq!(read(&mut m, &mut p, 0).1.pending, 0);
    p.events
        .raise(EVENT_DOMAIN_CREATED | EVENT_DOMAIN_DESTROYED);
    // Refusals first: nothing is cleared by them.
    assert_eq!(
        call(Op::EventRead, [0x9000 - 8, 0, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
    assert_eq!(
        call(Op::EventRead, [u64::MAX - 4, 0, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
    assert_eq!(read(&mut m, &mut p, 2).0, Status::InvalidArgument.as_raw());
    m.write(
        0x2000,
        EventReadArgs {
            reserved: 1,
            ..EventReadArgs::default()
        }
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        call(Op::EventRead, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        Status::InvalidArgument.as_raw()
    );
    let (status, peek) = read(&mut m, &mut p, EVENT_READ_PEEK);
    assert_eq!(
        (status, peek.pending, peek.raised),
        (0, EVENT_DOMAIN_CREATED | EVENT_DOMAIN_DESTROYED, 1)
    );
    assert_eq!(
        read(&mut m, &mut p, 0).1.pending,
        EVENT_DOMAIN_CREATED | EVENT_DOMAIN_DESTROYED
    );
    assert_eq!(read(&mut m, &mut p, 0).1.pending, 0, "cleared by the read");
    // The lifecycle raises its events.
    let mut c = dom0_abi::DomainCreateArgs::new("ev", 4, 1).unwrap();
    m.write(0x3000, c.as_bytes()).unwrap();
    let id = call(Op::DomainCreate, [0x3000, 0, 0, 0, 0], &mut m, &mut p);
    assert!(id > 0);
    c = read_struct(0x3000, &m).unwrap();
    assert_eq!(read(&mut m, &mut p, 0).1.pending, EVENT_DOMAIN_CREATED);
    assert_eq!(
        call(
            Op::DomainDestroy,
            [u64::from(c.domid), 0, 0, 0, 0],
            &mut m,
            &mut p
        ),
        0
    );
    assert_eq!(read(&mut m, &mut p, 0).1.pending, EVENT_DOMAIN_DESTROYED);
}

/// A domU (what a guest's kernel reaches with VMCALL at CPL 0) is refused
/// every operation with NOT_PERMITTED, with arguments that would do
/// something for dom0, and nothing is read or written: its memory, the log
/// ring and the domains stay as they were.
#[test]
fn a_domu_is_refused_every_operation_before_anything_is_touched() {
    let (mut m, mut p) = fixture();
    let a = VersionArgs::request();
    m.write(0x2000, a.as_bytes()).unwrap();
    let args = LogReadArgs {
        buffer_gpa: 0x10_0000,
        size: 9,
        flags: LOG_READ_CLEAR,
        returned: 0,
        dropped: 0,
    };
    m.write(0x3000, args.as_bytes()).unwrap();
    let snapshot = |m: &FakeMem| {
        let mut low = vec![0u8; 0x8000];
        let mut high = vec![0u8; 0x2000];
        m.read(0x1000, &mut low).unwrap();
        m.read(0x10_0000, &mut high).unwrap();
        (low, high)
    };
    let before = snapshot(&m);
    let domu = Caller { privileged: false };
    for op in Op::ALL {
        for args in [
            [0x2000, 88, 0, 0, 0],
            [0x3000, 0, 0, 0, 0],
            [1, 0x2000, 0x10, 0, 0],
            [0; 5],
        ] {
            assert_eq!(
                dispatch(op.number(), args, domu, &mut m, &mut p),
                Status::NotPermitted.as_raw(),
                "{op:?} {args:?}"
            );
        }
    }
    assert!(snapshot(&m) == before, "the caller's memory changed");
    assert_eq!(p.log, b"line one\nline two\n");
    assert_eq!(p.domus.iter().count(), 0);
    // The same calls from dom0 do something (the refusal is the caller's).
    assert_eq!(call(Op::Version, [0x2000, 0, 0, 0, 0], &mut m, &mut p), 0);
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 9);
}
