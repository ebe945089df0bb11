//! One test per rule of the policy: refusals, caps, the rate limit, urgent
//! wakes, pausing, affinity and migration, removal, balancing.

use super::*;

const ALL2: CpuSet = CpuSet::all(2);

#[test]
fn unknown_ids_are_errors() {
    let mut s = sched(2);
    let d = DomainId(7);
    assert_eq!(
        s.wake(v(7, 0), Ticks(0), false),
        Err(SchedError::UnknownDomain)
    );
    s.add_domain(d).unwrap();
    assert_eq!(s.add_domain(d), Err(SchedError::DomainExists));
    assert_eq!(s.add_vcpu(v(8, 0), ALL2), Err(SchedError::UnknownDomain));
    s.add_vcpu(v(7, 0), ALL2).unwrap();
    assert_eq!(s.add_vcpu(v(7, 0), ALL2), Err(SchedError::VcpuExists));
    let missing = v(7, 1);
    assert_eq!(
        s.wake(missing, Ticks(0), true),
        Err(SchedError::UnknownVcpu)
    );
    assert_eq!(s.block(missing, Ticks(0)), Err(SchedError::UnknownVcpu));
    assert_eq!(s.remove_vcpu(missing), Err(SchedError::UnknownVcpu));
    assert_eq!(
        s.set_affinity(missing, ALL2, Ticks(0)),
        Err(SchedError::UnknownVcpu)
    );
    assert_eq!(s.vcpu_info(missing), Err(SchedError::UnknownVcpu));
    let nod = DomainId(8);
    assert_eq!(s.set_weight(nod, 256), Err(SchedError::UnknownDomain));
    assert_eq!(s.set_cap(nod, 10), Err(SchedError::UnknownDomain));
    assert_eq!(s.pause_domain(nod), Err(SchedError::UnknownDomain));
    assert_eq!(
        s.unpause_domain(nod, Ticks(0)),
        Err(SchedError::UnknownDomain)
    );
    assert_eq!(s.remove_domain(nod), Err(SchedError::UnknownDomain));
    assert_eq!(s.domain_info(nod), Err(SchedError::UnknownDomain));
    assert_eq!(s.pick(2, Ticks(0)), Err(SchedError::UnknownCpu));
    assert_eq!(s.pick(usize::MAX, Ticks(0)), Err(SchedError::UnknownCpu));
    assert_eq!(s.running(2), Err(SchedError::UnknownCpu));
}

#[test]
fn bad_weights_and_caps_are_refused_and_change_nothing() {
    let mut s = sched(2);
    domain(&mut s, 1, 300, 50, 1, ALL2);
    let d = DomainId(1);
    assert_eq!(s.set_weight(d, 0), Err(SchedError::BadWeight));
    assert_eq!(s.set_weight(d, 65536), Err(SchedError::BadWeight));
    assert_eq!(s.set_cap(d, 201), Err(SchedError::BadCap));
    let info = s.domain_info(d).unwrap();
    assert_eq!(info.weight.get(), 300);
    assert_eq!(info.cap.percent(), 50);
    s.set_weight(d, 65535).unwrap();
    s.set_cap(d, 200).unwrap();
    assert_eq!(s.domain_info(d).unwrap().weight.get(), 65535);
}

#[test]
fn affinity_without_a_cpu_of_the_machine_is_refused() {
    let mut s = sched(2);
    s.add_domain(DomainId(1)).unwrap();
    assert_eq!(
        s.add_vcpu(v(1, 0), CpuSet::EMPTY),
        Err(SchedError::BadAffinity)
    );
    assert_eq!(
        s.add_vcpu(v(1, 0), CpuSet::single(5)),
        Err(SchedError::BadAffinity)
    );
    s.add_vcpu(v(1, 0), CpuSet::single(1)).unwrap();
    let refused = s.set_affinity(v(1, 0), CpuSet::from_bits(0b1100), Ticks(0));
    assert_eq!(refused, Err(SchedError::BadAffinity));
    assert_eq!(s.vcpu_info(v(1, 0)).unwrap().affinity, CpuSet::single(1));
    // CPUs beyond the machine are dropped from an accepted set.
    s.set_affinity(v(1, 0), CpuSet::from_bits(0b110), Ticks(0))
        .unwrap();
    assert_eq!(s.vcpu_info(v(1, 0)).unwrap().affinity, CpuSet::single(1));
}

#[test]
fn a_capped_domain_is_parked_when_its_budget_is_spent_and_refilled_each_period() {
    let mut s = sched(1);
    domain(&mut s, 1, 256, 25, 1, CpuSet::all(1));
    // The slice is cut when the budget (2.5 ms of 10) runs out.
    let d = s.pick(0, Ticks(0)).unwrap();
    assert_eq!((d.run, d.until), (Some(v(1, 0)), us(2500)));
    let d = s.pick(0, us(2500)).unwrap();
    assert_eq!((d.run, d.until), (None, ms(10)));
    assert_eq!(s.vcpu_info(v(1, 0)).unwrap().state, VcpuState::Parked);
    assert_eq!(
        s.domain_info(DomainId(1)).unwrap().budget_left,
        Some(Ticks(0))
    );
    // Replenished at the period's end.
    let d = s.pick(0, ms(10)).unwrap();
    assert_eq!((d.run, d.until), (Some(v(1, 0)), us(12500)));
    assert_eq!(s.vcpu_info(v(1, 0)).unwrap().cpu_time, us(2500));
}

#[test]
fn a_parked_domain_leaves_its_cpu_to_others_until_the_period_ends() {
    let mut s = sched(1);
    domain(&mut s, 1, 256, 25, 1, CpuSet::all(1));
    domain(&mut s, 2, 256, 0, 1, CpuSet::all(1));
    assert_eq!(s.pick(0, Ticks(0)).unwrap().run, Some(v(1, 0)));
    let d = s.pick(0, us(2500)).unwrap();
    assert_eq!((d.run, d.until), (Some(v(2, 0)), ms(10)));
}

#[test]
fn vcpus_of_a_capped_domain_share_one_budget_across_cpus() {
    let mut s = sched(2);
    domain(&mut s, 1, 256, 50, 2, ALL2);
    let d0 = s.pick(0, Ticks(0)).unwrap();
    let d1 = s.pick(1, Ticks(0)).unwrap();
    // The first takes the whole 5 ms; the other waits.
    assert_eq!(d0.until, ms(5));
    assert_eq!(d1.run, None);
    let first = d0.run.unwrap();
    // The first halts after 2 ms: 3 ms go back, and the other's CPU is kicked.
    let kick = s.block(first, ms(2)).unwrap();
    assert!(kick.contains(0) && kick.contains(1), "{kick:?}");
    let d1 = s.pick(1, ms(2)).unwrap();
    assert!(d1.run.is_some() && d1.run != Some(first));
    assert_eq!(d1.until, ms(5));
}

#[test]
fn the_rate_limit_holds_off_a_better_vcpu() {
    let mut s = sched(1);
    domain(&mut s, 1, 256, 0, 1, CpuSet::all(1));
    s.add_domain(DomainId(2)).unwrap();
    s.add_vcpu(v(2, 0), CpuSet::all(1)).unwrap();
    assert_eq!(s.pick(0, Ticks(0)).unwrap().run, Some(v(1, 0)));
    // v(2,0) wakes with more credit: the CPU is kicked, but v(1,0) keeps it
    // until it has run 1 ms.
    assert_eq!(s.wake(v(2, 0), us(300), false).unwrap(), CpuSet::single(0));
    let d = s.pick(0, us(300)).unwrap();
    assert_eq!((d.run, d.until), (Some(v(1, 0)), ms(1)));
    assert_eq!(s.pick(0, ms(1)).unwrap().run, Some(v(2, 0)));
}

#[test]
fn an_urgent_wake_runs_within_the_rate_limit() {
    let mut s = sched(1);
    let one = CpuSet::all(1);
    domain(&mut s, 0, 256, 0, 1, one); // dom0
    domain(&mut s, 1, 256, 0, 1, one);
    assert_eq!(s.pick(0, Ticks(0)).unwrap().run, Some(v(0, 0)));
    s.block(v(0, 0), ms(4)).unwrap();
    assert_eq!(s.pick(0, ms(4)).unwrap().run, Some(v(1, 0)));
    // With less credit, an ordinary wake does not preempt ...
    assert_eq!(s.wake(v(0, 0), us(4500), false).unwrap(), CpuSet::EMPTY);
    assert_eq!(s.pick(0, us(4500)).unwrap().run, Some(v(1, 0)));
    // ... a device interrupt does, once the rate limit allows.
    assert_eq!(s.wake(v(0, 0), us(4600), true).unwrap(), CpuSet::single(0));
    let d = s.pick(0, us(4600)).unwrap();
    assert_eq!((d.run, d.until), (Some(v(1, 0)), ms(5)));
    assert_eq!(s.pick(0, ms(5)).unwrap().run, Some(v(0, 0)));
}

#[test]
fn an_urgent_wake_preempts_at_once_when_the_rate_limit_is_spent() {
    let mut s = sched(1);
    let one = CpuSet::all(1);
    domain(&mut s, 1, 256, 0, 1, one);
    s.add_domain(DomainId(0)).unwrap();
    s.add_vcpu(v(0, 0), one).unwrap();
    s.set_weight(DomainId(0), 1).unwrap();
    assert_eq!(s.pick(0, Ticks(0)).unwrap().run, Some(v(1, 0)));
    s.wake(v(0, 0), ms(3), true).unwrap();
    let d = s.pick(0, ms(3)).unwrap();
    assert_eq!(d.run, Some(v(0, 0)));
    // The boost is used up: back to credit order after its slice.
    assert_eq!(s.pick(0, d.until).unwrap().run, Some(v(1, 0)));
}

#[test]
fn pause_stops_the_domain_at_once_and_unpause_restarts_it() {
    let mut s = sched(2);
    domain(&mut s, 1, 256, 0, 2, ALL2);
    assert!(s.pick(0, Ticks(0)).unwrap().run.is_some());
    assert!(s.pick(1, Ticks(0)).unwrap().run.is_some());
    // Paused 0.2 ms into the slice: the rate limit does not hold it.
    assert_eq!(s.pause_domain(DomainId(1)).unwrap(), ALL2);
    for c in 0..2 {
        assert_eq!(
            s.pick(c, us(200)).unwrap(),
            Decision {
                run: None,
                until: Ticks::NEVER,
                kick: CpuSet::EMPTY
            }
        );
    }
    for i in 0..2 {
        let info = s.vcpu_info(v(1, i)).unwrap();
        assert_eq!((info.state, info.cpu_time), (VcpuState::Paused, us(200)));
    }
    assert!(s.domain_info(DomainId(1)).unwrap().paused);
    // A wake while paused leaves it paused.
    assert_eq!(s.wake(v(1, 0), ms(1), false).unwrap(), CpuSet::EMPTY);
    assert_eq!(s.unpause_domain(DomainId(1), ms(5)).unwrap(), ALL2);
    assert!(s.pick(0, ms(5)).unwrap().run.is_some());
    assert!(s.pick(1, ms(5)).unwrap().run.is_some());
}

#[test]
fn a_running_vcpu_whose_cpu_is_no_longer_allowed_moves() {
    let mut s = sched(2);
    domain(&mut s, 1, 256, 0, 1, ALL2);
    let d = s.pick(0, Ticks(0)).unwrap();
    assert_eq!(d.run, Some(v(1, 0)));
    let kick = s.set_affinity(v(1, 0), CpuSet::single(1), us(100)).unwrap();
    assert_eq!(kick, CpuSet::single(0));
    let d = s.pick(0, us(100)).unwrap();
    assert_eq!((d.run, d.kick), (None, CpuSet::single(1)));
    let info = s.vcpu_info(v(1, 0)).unwrap();
    assert_eq!((info.cpu, info.state), (1, VcpuState::Runnable));
    assert_eq!(s.pick(1, us(100)).unwrap().run, Some(v(1, 0)));
}

#[test]
fn a_waiting_vcpu_moves_at_once_and_an_idle_cpu_takes_what_it_may() {
    let mut s = sched(2);
    domain(&mut s, 1, 256, 0, 2, CpuSet::single(0));
    let first = s.pick(0, Ticks(0)).unwrap().run.unwrap();
    let other = v(1, 1 - first.index);
    // The idle CPU 1 is kicked when the waiting vCPU may run there.
    let d = s.pick(1, Ticks(0)).unwrap();
    assert_eq!(d.run, None);
    let kick = s.set_affinity(other, ALL2, us(10)).unwrap();
    assert_eq!(kick, CpuSet::single(1));
    assert_eq!(s.pick(1, us(10)).unwrap().run, Some(other));
    // Widening the running vCPU's affinity leaves it where it runs.
    s.set_affinity(first, ALL2, us(20)).unwrap();
    assert_eq!(s.vcpu_info(first).unwrap().cpu, 0);
}

#[test]
fn an_idle_cpu_pulls_from_the_busiest_queue() {
    let mut s = sched(2);
    domain(&mut s, 1, 256, 0, 3, ALL2);
    // Three vCPUs on two CPUs: one CPU has two, the other one.
    let d0 = s.pick(0, Ticks(0)).unwrap();
    let d1 = s.pick(1, Ticks(0)).unwrap();
    let (lone_cpu, lone) = [(0, d0.run), (1, d1.run)]
        .into_iter()
        .find(|&(c, r)| {
            let q = s
                .vcpus()
                .filter(|&x| s.vcpu_info(x).unwrap().cpu == c)
                .count();
            r.is_some() && q == 1
        })
        .unwrap();
    // The lone vCPU halts: its CPU takes the waiting one from the other.
    let kick = s.block(lone.unwrap(), ms(2)).unwrap();
    assert!(kick.contains(lone_cpu));
    let d = s.pick(lone_cpu, ms(2)).unwrap();
    assert!(d.run.is_some() && d.run != lone);
    assert_eq!(s.vcpu_info(d.run.unwrap()).unwrap().cpu, lone_cpu);
}

#[test]
fn a_busy_cpu_pulls_from_a_queue_two_longer() {
    let mut s = sched(2);
    domain(&mut s, 1, 256, 0, 3, CpuSet::single(0));
    domain(&mut s, 2, 256, 0, 1, CpuSet::single(1));
    assert!(s.pick(0, Ticks(0)).unwrap().run.is_some());
    assert_eq!(s.pick(1, Ticks(0)).unwrap().run, Some(v(2, 0)));
    for i in 0..3 {
        // CPU 1 is busy: nobody is kicked for it.
        assert_eq!(
            s.set_affinity(v(1, i), ALL2, us(10)).unwrap(),
            CpuSet::EMPTY
        );
    }
    // At its next look CPU 1 (1 vCPU) pulls one from CPU 0 (3).
    s.pick(1, ms(10)).unwrap();
    let on1 = s
        .vcpus()
        .filter(|&x| s.vcpu_info(x).unwrap().cpu == 1)
        .count();
    assert_eq!(on1, 2);
}

#[test]
fn a_wake_goes_to_the_least_loaded_cpu_and_its_last_one_on_a_tie() {
    let mut s = sched(3);
    domain(&mut s, 1, 256, 0, 1, CpuSet::all(3));
    s.add_domain(DomainId(2)).unwrap();
    s.add_vcpu(v(2, 0), CpuSet::all(3)).unwrap();
    let d = s.pick(0, Ticks(0)).unwrap();
    assert_eq!(d.run, Some(v(1, 0)));
    // CPUs 1 and 2 are idle: the lowest, or its last one.
    s.set_affinity(v(2, 0), CpuSet::single(2), Ticks(0))
        .unwrap();
    s.set_affinity(v(2, 0), CpuSet::all(3), Ticks(0)).unwrap();
    assert_eq!(s.vcpu_info(v(2, 0)).unwrap().cpu, 2);
    assert_eq!(s.wake(v(2, 0), ms(1), false).unwrap(), CpuSet::single(2));
    assert_eq!(s.vcpu_info(v(2, 0)).unwrap().cpu, 2);
    assert_eq!(s.pick(2, ms(1)).unwrap().run, Some(v(2, 0)));
    // It halts; CPU 2 gets busy with another: the next wake goes to CPU 1.
    s.block(v(2, 0), ms(2)).unwrap();
    domain(&mut s, 3, 256, 0, 1, CpuSet::single(2));
    s.pick(2, ms(2)).unwrap();
    assert_eq!(s.wake(v(2, 0), ms(3), false).unwrap(), CpuSet::single(1));
    assert_eq!(s.vcpu_info(v(2, 0)).unwrap().cpu, 1);
}

#[test]
fn removing_a_running_vcpu_or_domain_frees_its_cpu() {
    let mut s = sched(1);
    domain(&mut s, 1, 256, 0, 1, CpuSet::all(1));
    domain(&mut s, 2, 256, 0, 2, CpuSet::all(1));
    assert_eq!(s.pick(0, Ticks(0)).unwrap().run, Some(v(1, 0)));
    assert_eq!(s.remove_vcpu(v(1, 0)).unwrap(), CpuSet::single(0));
    assert_eq!(s.running(0).unwrap(), None);
    assert_eq!(s.vcpu_info(v(1, 0)), Err(SchedError::UnknownVcpu));
    assert_eq!(s.domain_info(DomainId(1)).unwrap().vcpus, 0);
    let d = s.pick(0, us(100)).unwrap();
    assert_eq!(d.run.map(|r| r.domain), Some(DomainId(2)));
    assert_eq!(s.remove_domain(DomainId(2)).unwrap(), CpuSet::single(0));
    assert_eq!(s.vcpus().count(), 0);
    assert_eq!(s.domains().collect::<Vec<_>>(), [DomainId(1)]);
    assert_eq!(s.pick(0, us(200)).unwrap().run, None);
}
