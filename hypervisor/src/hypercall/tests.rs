use super::sim::{SimMemory, SimPlatform};
use super::*;
use proptest::prelude::*;

/// Caller RAM: [0x1000, 0x9000) and [0x10_0000, 0x10_2000).
type FakeMem = SimMemory;
type FakePlatform = SimPlatform;

const DOM0: Caller = Caller { privileged: true };

fn call(op: Op, args: [u64; 5], mem: &mut FakeMem, p: &mut FakePlatform) -> i64 {
    dispatch(op.number(), args, DOM0, mem, p)
}

fn fixture() -> (FakeMem, FakePlatform) {
    (SimMemory::new(&[(0x1000, 0x9000), (0x10_0000, 0x10_2000)]), SimPlatform { log: b"line one\nline two\n".to_vec(), dropped: 7 })
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
    assert_eq!(call(Op::Version, [0x2000, 0, 0, 0, 0], &mut m, &mut p), Status::VersionMismatch.as_raw());
    let back: VersionArgs = read_struct(0x2000, &m).unwrap();
    assert_eq!(back.hypervisor(), ABI_VERSION, "filled in even on a mismatch");
}

#[test]
fn hv_info_checks_size_and_address() {
    let (mut m, mut p) = fixture();
    assert_eq!(call(Op::HvInfo, [0x2000, 88, 0, 0, 0], &mut m, &mut p), 88);
    let info: HvInfo = read_struct(0x2000, &m).unwrap();
    assert_eq!(info.cpu_count, 2);
    assert_eq!(call(Op::HvInfo, [0x2000, 87, 0, 0, 0], &mut m, &mut p), Status::BufferTooSmall.as_raw());
    assert_eq!(call(Op::HvInfo, [0x2000, 1 << 40, 0, 0, 0], &mut m, &mut p), Status::TooBig.as_raw());
    // Runs off the end of the caller's RAM / outside it / wrapping.
    assert_eq!(call(Op::HvInfo, [0x9000 - 80, 88, 0, 0, 0], &mut m, &mut p), Status::BadAddress.as_raw());
    assert_eq!(call(Op::HvInfo, [0xA000, 88, 0, 0, 0], &mut m, &mut p), Status::BadAddress.as_raw());
    assert_eq!(call(Op::HvInfo, [u64::MAX - 10, 88, 0, 0, 0], &mut m, &mut p), Status::BadAddress.as_raw());
}

#[test]
fn log_read_and_clear() {
    let (mut m, mut p) = fixture();
    let args = LogReadArgs { buffer_gpa: 0x10_0000, size: 9, flags: 0, returned: 0, dropped: 0 };
    m.write(0x3000, args.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 9);
    let back: LogReadArgs = read_struct(0x3000, &m).unwrap();
    assert_eq!((back.returned, back.dropped), (9, 7));
    let mut text = [0u8; 9];
    m.read(0x10_0000, &mut text).unwrap();
    assert_eq!(&text, b"line one\n");
    // Clear consumes.
    let args = LogReadArgs { flags: LOG_READ_CLEAR, ..args };
    m.write(0x3000, args.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 9);
    assert_eq!(p.log, b"line two\n");
    // A bad buffer consumes nothing.
    let bad = LogReadArgs { buffer_gpa: 0x9000, size: 16, flags: LOG_READ_CLEAR, ..args };
    m.write(0x3000, bad.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), Status::BadAddress.as_raw());
    assert_eq!(p.log, b"line two\n");
    let flags = LogReadArgs { flags: 0x80, ..args };
    m.write(0x3000, flags.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), Status::InvalidArgument.as_raw());
    let huge = LogReadArgs { size: u32::MAX, flags: 0, ..args };
    m.write(0x3000, huge.as_bytes()).unwrap();
    assert_eq!(call(Op::LogRead, [0x3000, 0, 0, 0, 0], &mut m, &mut p), Status::TooBig.as_raw());
}

#[test]
fn domain_list_and_info() {
    let (mut m, mut p) = fixture();
    let args = DomainListArgs { buffer_gpa: 0x4000, capacity: 1, start_domid: 0, returned: 0, total: 0 };
    m.write(0x3000, args.as_bytes()).unwrap();
    assert_eq!(call(Op::DomainList, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 1);
    let back: DomainListArgs = read_struct(0x3000, &m).unwrap();
    assert_eq!((back.returned, back.total), (1, 2));
    let d: DomainInfo = read_struct(0x4000, &m).unwrap();
    assert_eq!(d.name_str(), Some("Domain-0"));
    let from3 = DomainListArgs { capacity: 8, start_domid: 1, ..args };
    m.write(0x3000, from3.as_bytes()).unwrap();
    assert_eq!(call(Op::DomainList, [0x3000, 0, 0, 0, 0], &mut m, &mut p), 1);
    let d: DomainInfo = read_struct(0x4000, &m).unwrap();
    assert_eq!(d.domid, 3);
    let huge = DomainListArgs { capacity: u32::MAX, ..args };
    m.write(0x3000, huge.as_bytes()).unwrap();
    assert_eq!(call(Op::DomainList, [0x3000, 0, 0, 0, 0], &mut m, &mut p), Status::TooBig.as_raw());

    assert_eq!(call(Op::DomainInfo, [3, 0x5000, 0, 0, 0], &mut m, &mut p), 0);
    let d: DomainInfo = read_struct(0x5000, &m).unwrap();
    assert_eq!(d.memory_pages, 1003);
    assert_eq!(call(Op::DomainInfo, [4, 0x5000, 0, 0, 0], &mut m, &mut p), Status::NoSuchDomain.as_raw());
    assert_eq!(call(Op::DomainInfo, [1 << 40, 0x5000, 0, 0, 0], &mut m, &mut p), Status::NoSuchDomain.as_raw());
    assert_eq!(call(Op::DomainInfo, [0, 0x8FF0, 0, 0, 0], &mut m, &mut p), Status::BadAddress.as_raw());
}

#[test]
fn unknown_reserved_and_unprivileged() {
    let (mut m, mut p) = fixture();
    assert_eq!(dispatch(0, [0; 5], DOM0, &mut m, &mut p), Status::InvalidOperation.as_raw());
    assert_eq!(dispatch(0x0300, [0; 5], DOM0, &mut m, &mut p), Status::NotImplemented.as_raw());
    assert_eq!(dispatch(0x01FF, [0; 5], DOM0, &mut m, &mut p), Status::InvalidOperation.as_raw());
    assert_eq!(dispatch(u64::MAX, [0; 5], DOM0, &mut m, &mut p), Status::InvalidOperation.as_raw());
    let domu = Caller { privileged: false };
    assert_eq!(dispatch(Op::HvInfo.number(), [0x2000, 88, 0, 0, 0], domu, &mut m, &mut p), Status::NotPermitted.as_raw());
}

proptest! {
    /// Random operations and arguments (random or near the edges of the
    /// caller's RAM) never panic, and anything that is not a real operation
    /// with good arguments is an error status.
    #[test]
    fn random_calls_only_return_statuses(
        op in prop_oneof![any::<u64>(), 0u64..0x0300, Just(0x0100u64), Just(0x0101u64), Just(0x0102u64), Just(0x0200u64), Just(0x0201u64)],
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
