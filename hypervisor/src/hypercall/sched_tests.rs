//! Host tests of the ABI 1.3 scheduling operations against the simulation.

use super::sim::{SimMemory, SimPlatform};
use super::*;
use dom0_abi::sched::{SCHED_SET_CAP, SCHED_SET_WEIGHT};
use dom0_abi::{SchedParams, VcpuInfo, VcpuListArgs, VcpuState};
use proptest::prelude::*;
use zerocopy::FromZeros;

const DOM0: Caller = Caller { privileged: true };

fn call(op: Op, args: [u64; 5], mem: &mut SimMemory, p: &mut SimPlatform) -> i64 {
    dispatch(op.number(), args, DOM0, mem, p)
}

/// Caller RAM [0x1000, 0x9000); dom0 (2 vCPUs), domain 3 (1 vCPU) and a
/// created domain 1 with 2 vCPUs.
fn fixture() -> (SimMemory, SimPlatform) {
    let mut m = SimMemory::new(&[(0x1000, 0x9000)]);
    let mut p = SimPlatform {
        free_pages: 1000,
        ..SimPlatform::default()
    };
    let args = dom0_abi::lifecycle::DomainCreateArgs::new("web", 16, 2).unwrap();
    m.write(0x2000, args.as_bytes()).unwrap();
    assert_eq!(
        call(Op::DomainCreate, [0x2000, 0, 0, 0, 0], &mut m, &mut p),
        1
    );
    (m, p)
}

fn get(id: u64, m: &mut SimMemory, p: &mut SimPlatform) -> Result<SchedParams, i64> {
    m.write(0x3000, &[0xAA; 16]).unwrap();
    match call(Op::SchedGet, [id, 0x3000, 0, 0, 0], m, p) {
        0 => Ok(read_struct(0x3000, m).unwrap()),
        e => Err(e),
    }
}

fn set(params: SchedParams, m: &mut SimMemory, p: &mut SimPlatform) -> i64 {
    m.write(0x3100, params.as_bytes()).unwrap();
    call(Op::SchedSet, [0x3100, 0, 0, 0, 0], m, p)
}

fn list(domid: u32, capacity: u32, m: &mut SimMemory, p: &mut SimPlatform) -> (i64, VcpuListArgs) {
    let a = VcpuListArgs {
        buffer_gpa: 0x4000,
        domid,
        capacity,
        returned: 99,
        total: 99,
    };
    m.write(0x3200, a.as_bytes()).unwrap();
    let rc = call(Op::VcpuList, [0x3200, 0, 0, 0, 0], m, p);
    (rc, read_struct(0x3200, m).unwrap())
}

fn record(i: u64, m: &SimMemory) -> VcpuInfo {
    read_struct(0x4000 + i * 32, m).unwrap()
}

#[test]
fn sched_get_reports_defaults_for_every_domain_dom0_included() {
    let (mut m, mut p) = fixture();
    for id in [0, 1, 3] {
        let s = get(id, &mut m, &mut p).unwrap();
        assert_eq!((s.domid, s.weight, s.cap, s.flags), (id as u32, 256, 0, 0));
    }
    assert_eq!(get(2, &mut m, &mut p), Err(Status::NoSuchDomain.as_raw()));
    assert_eq!(
        get(1 << 32, &mut m, &mut p),
        Err(Status::NoSuchDomain.as_raw())
    );
    // The result buffer is checked before anything else.
    assert_eq!(
        call(Op::SchedGet, [1, 0x9000 - 8, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
}

#[test]
fn sched_set_changes_only_what_its_flags_name() {
    let (mut m, mut p) = fixture();
    assert_eq!(set(SchedParams::set(1, Some(512), None), &mut m, &mut p), 0);
    let s = get(1, &mut m, &mut p).unwrap();
    assert_eq!((s.weight, s.cap), (512, 0));
    // A cap with a weight that is ignored (its flag is clear).
    let mut req = SchedParams::set(1, None, Some(150));
    req.weight = 7;
    assert_eq!(set(req, &mut m, &mut p), 0);
    let s = get(1, &mut m, &mut p).unwrap();
    assert_eq!((s.weight, s.cap), (512, 150));
    // dom0 too; nothing to change is fine.
    assert_eq!(
        set(SchedParams::set(0, Some(1024), Some(0)), &mut m, &mut p),
        0
    );
    assert_eq!(get(0, &mut m, &mut p).unwrap().weight, 1024);
    assert_eq!(set(SchedParams::set(1, None, None), &mut m, &mut p), 0);
}

#[test]
fn sched_set_refuses_bad_values_and_changes_nothing() {
    let (mut m, mut p) = fixture();
    let bad = [
        SchedParams::set(1, Some(0), None),
        SchedParams::set(1, Some(65536), Some(10)),
        SchedParams::set(1, Some(300), Some(201)), // 2 CPUs: at most 200
        SchedParams {
            flags: SCHED_SET_WEIGHT | SCHED_SET_CAP | 4,
            ..SchedParams::set(1, Some(300), Some(10))
        },
    ];
    for req in bad {
        assert_eq!(
            set(req, &mut m, &mut p),
            Status::InvalidArgument.as_raw(),
            "{req:?}"
        );
    }
    let s = get(1, &mut m, &mut p).unwrap();
    assert_eq!((s.weight, s.cap), (256, 0));
    assert_eq!(
        set(SchedParams::set(1, Some(65535), Some(200)), &mut m, &mut p),
        0
    );
    assert_eq!(
        set(SchedParams::set(2, Some(300), None), &mut m, &mut p),
        Status::NoSuchDomain.as_raw()
    );
    assert_eq!(
        call(Op::SchedSet, [0xA000, 0, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
}

#[test]
fn vcpu_list_fills_the_buffer_and_counts() {
    let (mut m, mut p) = fixture();
    let (rc, a) = list(0, 8, &mut m, &mut p);
    assert_eq!((rc, a.returned, a.total), (2, 2, 2));
    let v1 = record(1, &m);
    assert_eq!((v1.vcpu, v1.cpu, v1.affinity), (1, 1, 0b11));
    assert_eq!(v1.state(), Ok(VcpuState::Running));
    assert_eq!(v1.cpu_time_ns, 1_000_000);
    // A domain that never ran: vCPU 0 paused, vCPU 1 offline.
    let (rc, _) = list(1, 8, &mut m, &mut p);
    assert_eq!(rc, 2);
    assert_eq!(record(0, &m).state(), Ok(VcpuState::Paused));
    assert_eq!(record(1, &m).state(), Ok(VcpuState::Offline));
    // A short buffer: the first records, and the total.
    m.write(0x4000 + 32, &[0xEE; 32]).unwrap();
    let (rc, a) = list(1, 1, &mut m, &mut p);
    assert_eq!((rc, a.returned, a.total), (1, 1, 2));
    let mut untouched = [0u8; 32];
    m.read(0x4000 + 32, &mut untouched).unwrap();
    assert_eq!(untouched, [0xEE; 32]);
    let (rc, a) = list(1, 0, &mut m, &mut p);
    assert_eq!((rc, a.returned, a.total), (0, 0, 2));
}

#[test]
fn vcpu_list_bounds_the_buffer() {
    let (mut m, mut p) = fixture();
    assert_eq!(list(2, 1, &mut m, &mut p).0, Status::NoSuchDomain.as_raw());
    // 32768 records fill 1 MiB exactly (outside the caller's RAM here);
    // one more is too big.
    assert_eq!(
        list(1, 32768, &mut m, &mut p).0,
        Status::BadAddress.as_raw()
    );
    assert_eq!(list(1, 32769, &mut m, &mut p).0, Status::TooBig.as_raw());
    assert_eq!(list(1, u32::MAX, &mut m, &mut p).0, Status::TooBig.as_raw());
    // Runs off the end of the caller's RAM.
    let a = VcpuListArgs {
        buffer_gpa: 0x9000 - 32,
        domid: 1,
        capacity: 2,
        ..VcpuListArgs::new_zeroed()
    };
    m.write(0x3200, a.as_bytes()).unwrap();
    assert_eq!(
        call(Op::VcpuList, [0x3200, 0, 0, 0, 0], &mut m, &mut p),
        Status::BadAddress.as_raw()
    );
}

#[test]
fn vcpu_set_affinity_masks_with_the_machine_and_checks_the_vcpu() {
    let (mut m, mut p) = fixture();
    let pin = |id: u64, vcpu: u64, cpus: u64, m: &mut SimMemory, p: &mut SimPlatform| {
        call(Op::VcpuSetAffinity, [id, vcpu, cpus, 0, 0], m, p)
    };
    assert_eq!(pin(1, 1, 0b10, &mut m, &mut p), 0);
    // Bits beyond the 2 CPUs are dropped.
    assert_eq!(pin(1, 0, u64::MAX, &mut m, &mut p), 0);
    list(1, 2, &mut m, &mut p);
    assert_eq!(record(0, &m).affinity, 0b11);
    assert_eq!(record(1, &m).affinity, 0b10);
    for (id, vcpu, cpus, want) in [
        (1, 0, 0b100, Status::InvalidArgument), // no CPU of the machine
        (1, 0, 0, Status::InvalidArgument),
        (1, 2, 0b1, Status::InvalidArgument), // no such vCPU
        (1, 1 << 32, 0b1, Status::InvalidArgument),
        (2, 0, 0b1, Status::NoSuchDomain),
        (1 << 32, 0, 0b1, Status::NoSuchDomain),
        (0, 0, 0b1, Status::NotPermitted), // dom0's vCPUs stay pinned
    ] {
        assert_eq!(
            pin(id, vcpu, cpus, &mut m, &mut p),
            want.as_raw(),
            "{id} {vcpu} {cpus:#x}"
        );
    }
    // Destroying the domain forgets its parameters.
    assert_eq!(call(Op::DomainDestroy, [1, 0, 0, 0, 0], &mut m, &mut p), 0);
    assert!(p.sched.is_empty());
}

proptest! {
    /// Random arguments to the four operations never panic and return a
    /// status or a count within the buffer bound.
    #[test]
    fn random_sched_calls_only_return_statuses(
        op in prop_oneof![Just(Op::SchedGet), Just(Op::SchedSet), Just(Op::VcpuList), Just(Op::VcpuSetAffinity)],
        args in proptest::array::uniform5(prop_oneof![any::<u64>(), 0u64..4, 0x0u64..0x9100, Just(u64::MAX)]),
        junk in proptest::collection::vec(any::<u8>(), 0x8000),
    ) {
        let (mut m, mut p) = fixture();
        m.range_mut(0).copy_from_slice(&junk);
        let status = call(op, args, &mut m, &mut p);
        prop_assert!(Status::from_raw(status).is_some() || (0..=32768).contains(&status));
    }
}
