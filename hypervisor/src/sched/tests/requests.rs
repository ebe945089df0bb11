//! Random sequences of requests, with ids that may not exist, weights,
//! caps and affinities out of range, CPU numbers beyond the machine and
//! clocks that jump anywhere: the scheduler never panics, and after every
//! request its bookkeeping is consistent as seen through the queries.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    AddDomain(u32),
    RemoveDomain(u32),
    AddVcpu(u32, u32, u64),
    RemoveVcpu(u32, u32),
    Wake(u32, u32, bool),
    Block(u32, u32),
    Pause(u32),
    Unpause(u32),
    Affinity(u32, u32, u64),
    Weight(u32, u32),
    Cap(u32, u32),
    Pick(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0u32..4;
    let i = 0u32..3;
    let bits = prop_oneof![any::<u64>(), 0u64..16];
    prop_oneof![
        2 => d.clone().prop_map(Op::AddDomain),
        1 => d.clone().prop_map(Op::RemoveDomain),
        4 => (d.clone(), i.clone(), bits.clone()).prop_map(|(d, i, b)| Op::AddVcpu(d, i, b)),
        1 => (d.clone(), i.clone()).prop_map(|(d, i)| Op::RemoveVcpu(d, i)),
        4 => (d.clone(), i.clone(), any::<bool>()).prop_map(|(d, i, u)| Op::Wake(d, i, u)),
        3 => (d.clone(), i.clone()).prop_map(|(d, i)| Op::Block(d, i)),
        1 => d.clone().prop_map(Op::Pause),
        1 => d.clone().prop_map(Op::Unpause),
        2 => (d.clone(), i, bits).prop_map(|(d, i, b)| Op::Affinity(d, i, b)),
        1 => (d.clone(), prop_oneof![any::<u32>(), 0u32..70_000]).prop_map(|(d, w)| Op::Weight(d, w)),
        1 => (d, prop_oneof![any::<u32>(), 0u32..500]).prop_map(|(d, c)| Op::Cap(d, c)),
        8 => (0usize..6).prop_map(Op::Pick),
    ]
}

/// The time of the next request: usually a little later, sometimes
/// anywhere.
fn clock() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![8 => (0u64..5_000).prop_map(Some), 1 => Just(None)]
}

fn apply(s: &mut Scheduler, op: &Op, now: Ticks) {
    let d = DomainId;
    // Errors are expected; only panics and inconsistencies fail.
    let _ = match *op {
        Op::AddDomain(x) => s.add_domain(d(x)).map(|()| CpuSet::EMPTY),
        Op::RemoveDomain(x) => s.remove_domain(d(x)),
        Op::AddVcpu(x, i, b) => s
            .add_vcpu(v(x, i), CpuSet::from_bits(b))
            .map(|()| CpuSet::EMPTY),
        Op::RemoveVcpu(x, i) => s.remove_vcpu(v(x, i)),
        Op::Wake(x, i, u) => s.wake(v(x, i), now, u),
        Op::Block(x, i) => s.block(v(x, i), now),
        Op::Pause(x) => s.pause_domain(d(x)),
        Op::Unpause(x) => s.unpause_domain(d(x), now),
        Op::Affinity(x, i, b) => s.set_affinity(v(x, i), CpuSet::from_bits(b), now),
        Op::Weight(x, w) => s.set_weight(d(x), w).map(|()| CpuSet::EMPTY),
        Op::Cap(x, c) => s.set_cap(d(x), c),
        Op::Pick(c) => s.pick(c, now).map(|decision| {
            if let Some(r) = decision.run {
                assert!(s.vcpu_info(r).unwrap().affinity.contains(c));
            }
            decision.kick
        }),
    };
}

fn check(s: &Scheduler) {
    let cpus = s.config().cpus;
    let init = s.config().slice.0 as i64;
    for c in 0..cpus {
        if let Some(r) = s.running(c).unwrap() {
            let info = s.vcpu_info(r).unwrap();
            assert_eq!((info.state, info.cpu), (VcpuState::Running, c), "{r:?}");
        }
    }
    for r in s.vcpus() {
        let info = s.vcpu_info(r).unwrap();
        assert!(info.cpu < cpus);
        assert!(!info.affinity.is_empty());
        assert_eq!(info.affinity.intersection(CpuSet::all(cpus)), info.affinity);
        assert!(info.credit.0 <= init);
        if info.state == VcpuState::Running {
            assert_eq!(s.running(info.cpu).unwrap(), Some(r));
        } else {
            // Only a running vCPU may sit outside its affinity (until its
            // CPU looks again).
            assert!(info.affinity.contains(info.cpu), "{r:?} {info:?}");
        }
        assert!(s.domain_info(r.domain).is_ok());
    }
    for d in s.domains() {
        let n = s.vcpus().filter(|r| r.domain == d).count();
        assert_eq!(s.domain_info(d).unwrap().vcpus, n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_requests_keep_the_scheduler_consistent(
        cpus in 1usize..=4,
        ops in prop::collection::vec((op(), clock(), any::<u64>()), 1..150),
    ) {
        let mut s = sched(cpus);
        let mut now = 0u64;
        for (op, step, anywhere) in &ops {
            let t = match step {
                Some(dt) => {
                    now = now.saturating_add(*dt);
                    now
                }
                None => *anywhere,
            };
            apply(&mut s, op, Ticks(t));
            check(&s);
        }
    }
}
