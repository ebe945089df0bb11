//! Time and credit: what is charged to whom, shares by weight, and what
//! blocked vCPUs keep.

use super::sim::{Behavior, DomainSetup, Setup, Sim, VcpuSetup};
use super::*;

#[test]
fn a_blocked_vcpu_uses_no_time_and_hoards_no_credit() {
    let mut s = sched(1);
    let one = CpuSet::all(1);
    domain(&mut s, 1, 256, 0, 1, one);
    domain(&mut s, 2, 256, 0, 1, one);
    assert_eq!(s.pick(0, Ticks(0)).unwrap().run, Some(v(1, 0)));
    s.block(v(1, 0), ms(2)).unwrap();
    let before = s.vcpu_info(v(1, 0)).unwrap();
    assert_eq!((before.cpu_time, before.state), (ms(2), VcpuState::Blocked));
    // v(2,0) runs alone for a second, through many credit resets.
    let (mut now, mut last) = (ms(2), ms(2));
    while now < ms(1000) {
        last = now;
        now = s.pick(0, now).unwrap().until;
        let info = s.vcpu_info(v(1, 0)).unwrap();
        assert_eq!(info.cpu_time, ms(2));
        assert!(info.credit.0 <= ms(10).0 as i64, "{info:?}");
    }
    assert_eq!(s.vcpu_info(v(2, 0)).unwrap().cpu_time.0, last.0 - ms(2).0);
}

#[test]
fn time_going_backwards_charges_nothing() {
    let mut s = sched(1);
    domain(&mut s, 1, 256, 0, 1, CpuSet::all(1));
    s.pick(0, ms(10)).unwrap();
    s.pick(0, ms(5)).unwrap();
    s.pick(0, ms(12)).unwrap();
    s.block(v(1, 0), ms(1)).unwrap();
    assert_eq!(s.vcpu_info(v(1, 0)).unwrap().cpu_time, ms(2));
    s.pick(0, Ticks::NEVER).unwrap();
    s.wake(v(1, 0), Ticks::NEVER, true).unwrap();
    let d = s.pick(0, Ticks::NEVER).unwrap();
    assert_eq!(d.run, Some(v(1, 0)));
}

#[test]
fn weights_256_and_512_on_one_cpu_share_it_one_to_two() {
    let setup = Setup {
        cpus: 1,
        domains: vec![
            DomainSetup {
                weight: 256,
                cap: 0,
            },
            DomainSetup {
                weight: 512,
                cap: 0,
            },
        ],
        vcpus: vec![
            VcpuSetup {
                domain: 0,
                affinity: CpuSet::all(1),
                behavior: Behavior::CpuBound,
            },
            VcpuSetup {
                domain: 1,
                affinity: CpuSet::all(1),
                behavior: Behavior::CpuBound,
            },
        ],
        seed: 1,
    };
    let mut sim = Sim::new(&setup);
    sim.run(ms(1000).0, &[]);
    let ratio = sim.given(1) as f64 / sim.given(0) as f64;
    assert!((ratio - 2.0).abs() <= 0.2, "ratio {ratio}");
    assert_eq!(sim.given(0) + sim.given(1), ms(1000).0);
}

#[test]
fn a_weight_change_changes_the_share() {
    let mut s = sched(1);
    let one = CpuSet::all(1);
    domain(&mut s, 1, 256, 0, 1, one);
    domain(&mut s, 2, 256, 0, 1, one);
    let mut now = Ticks(0);
    while now < ms(300) {
        now = s.pick(0, now).unwrap().until;
    }
    s.set_weight(DomainId(2), 768).unwrap();
    let a0 = s.vcpu_info(v(1, 0)).unwrap().cpu_time.0;
    let b0 = s.vcpu_info(v(2, 0)).unwrap().cpu_time.0;
    while now < ms(1500) {
        now = s.pick(0, now).unwrap().until;
    }
    let a = s.vcpu_info(v(1, 0)).unwrap().cpu_time.0 - a0;
    let b = s.vcpu_info(v(2, 0)).unwrap().cpu_time.0 - b0;
    let ratio = b as f64 / a as f64;
    assert!((ratio - 3.0).abs() <= 0.3, "ratio {ratio}");
}

#[test]
fn a_weight_of_one_runs_rarely_but_runs() {
    let mut s = sched(1);
    let one = CpuSet::all(1);
    domain(&mut s, 1, 1, 0, 1, one);
    domain(&mut s, 2, 65535, 0, 1, one);
    let mut now = Ticks(0);
    while now < ms(10_000) {
        now = s.pick(0, now).unwrap().until;
    }
    let low = s.vcpu_info(v(1, 0)).unwrap().cpu_time.0;
    // About 1/65536 of the time, but at least a rate limit at a time.
    assert!(low >= ms(1).0 && low <= ms(3).0, "{low}");
}

#[test]
fn queries_report_parameters_and_placement() {
    let mut s = sched(2);
    domain(&mut s, 3, 512, 150, 2, CpuSet::all(2));
    let info = s.domain_info(DomainId(3)).unwrap();
    assert_eq!(info.weight.get(), 512);
    assert_eq!(info.cap.percent(), 150);
    assert_eq!(info.vcpus, 2);
    assert!(!info.paused);
    s.pick(0, Ticks(0)).unwrap();
    assert_eq!(s.domain_info(DomainId(3)).unwrap().budget_left, Some(ms(5)));
    let vi = s.vcpu_info(v(3, 0)).unwrap();
    assert_eq!(
        (vi.cpu, vi.state, vi.credit),
        (0, VcpuState::Running, Credit(10_000))
    );
    let vi = s.vcpu_info(v(3, 1)).unwrap();
    assert_eq!((vi.cpu, vi.state), (1, VcpuState::Runnable));
    assert_eq!(s.running(0).unwrap(), Some(v(3, 0)));
    assert_eq!(s.config().cpus, 2);
    assert_eq!(
        SchedError::BadCap.to_string(),
        "a cap may not exceed 100 % per CPU of the machine"
    );
}
