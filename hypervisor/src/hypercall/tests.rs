use super::*;
use alloc::vec::Vec;
use proptest::prelude::*;
use zerocopy::FromZeros;

/// Caller RAM: [0x1000, 0x9000) and [0x10_0000, 0x10_2000).
struct FakeMem {
    low: Vec<u8>,
    high: Vec<u8>,
}

const RANGES: [(u64, u64); 2] = [(0x1000, 0x9000), (0x10_0000, 0x10_2000)];

impl FakeMem {
    fn new() -> Self {
        Self { low: vec![0; 0x8000], high: vec![0; 0x2000] }
    }
    fn slot(&mut self, gpa: u64) -> (&mut Vec<u8>, usize) {
        if gpa < 0x9000 { (&mut self.low, (gpa - 0x1000) as usize) } else { (&mut self.high, (gpa - 0x10_0000) as usize) }
    }
}

impl GuestMemory for FakeMem {
    fn check(&self, gpa: u64, len: u64) -> Result<(), Status> {
        RamRanges(&RANGES).check(gpa, len)
    }
    fn read(&self, gpa: u64, out: &mut [u8]) -> Result<(), Status> {
        self.check(gpa, out.len() as u64)?;
        let (v, at) = if gpa < 0x9000 { (&self.low, (gpa - 0x1000) as usize) } else { (&self.high, (gpa - 0x10_0000) as usize) };
        out.copy_from_slice(&v[at..at + out.len()]);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Status> {
        self.check(gpa, data.len() as u64)?;
        let (v, at) = self.slot(gpa);
        v[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

struct FakePlatform {
    log: Vec<u8>,
}

fn domain(id: u32, name: &str) -> DomainInfo {
    let mut d = DomainInfo::new_zeroed();
    d.domid = id;
    d.name[..name.len()].copy_from_slice(name.as_bytes());
    d.memory_pages = 1000 + u64::from(id);
    d
}

impl Platform for FakePlatform {
    fn hv_info(&self) -> HvInfo {
        let mut i = HvInfo::new_zeroed();
        i.cpu_count = 2;
        i.abi_major = ABI_VERSION.major;
        i
    }
    fn domains(&self) -> Vec<DomainInfo> {
        vec![domain(0, "Domain-0"), domain(3, "guest")]
    }
    fn log_read(&mut self, max: usize, clear: bool) -> (Vec<u8>, u64) {
        let n = max.min(self.log.len());
        let out = self.log[..n].to_vec();
        if clear {
            self.log.drain(..n);
        }
        (out, 7)
    }
}

const DOM0: Caller = Caller { privileged: true };

fn call(op: Op, args: [u64; 5], mem: &mut FakeMem, p: &mut FakePlatform) -> i64 {
    dispatch(op.number(), args, DOM0, mem, p)
}

fn fixture() -> (FakeMem, FakePlatform) {
    (FakeMem::new(), FakePlatform { log: b"line one\nline two\n".to_vec() })
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
        m.low.copy_from_slice(&junk);
        let status = dispatch(op, args, DOM0, &mut m, &mut p);
        if Op::try_from(op).is_err() {
            prop_assert!(status < 0);
        }
        prop_assert!(status < 0 || Status::from_raw(status).is_some() || status <= MAX_BUFFER_BYTES as i64);
    }
}
