//! The pieces on their own: CPU sets, credit arithmetic, cap budgets, the
//! configuration and the parameter types.

use super::super::cap::{self, Budget};
use super::super::credit::{self, Credit};
use super::*;

#[test]
fn cpuset_basics() {
    assert!(CpuSet::all(0).is_empty());
    assert_eq!(CpuSet::all(4).bits(), 0b1111);
    assert_eq!(CpuSet::all(64).bits(), u64::MAX);
    assert_eq!(CpuSet::all(1000).bits(), u64::MAX);
    assert_eq!(CpuSet::single(3).bits(), 0b1000);
    assert!(CpuSet::single(64).is_empty());
    assert!(!CpuSet::all(64).contains(64));
    assert!(!CpuSet::all(64).contains(usize::MAX));
    let s = CpuSet::single(1).with(5).with(63).with(99);
    assert_eq!(s.iter().collect::<Vec<_>>(), [1, 5, 63]);
    assert_eq!(s.len(), 3);
    assert_eq!(s.first(), Some(1));
    assert_eq!(s.without(1).first(), Some(5));
    assert_eq!(
        [2usize, 7].into_iter().collect::<CpuSet>().bits(),
        0b1000_0100
    );
    assert_eq!(s.intersection(CpuSet::all(6)), CpuSet::single(1).with(5));
    assert_eq!(CpuSet::EMPTY.union(CpuSet::single(0)), CpuSet::single(0));
    assert_eq!(CpuSet::EMPTY.first(), None);
}

#[test]
fn weights_and_caps_are_validated() {
    assert_eq!(Weight::new(0), Err(SchedError::BadWeight));
    assert_eq!(Weight::new(65536), Err(SchedError::BadWeight));
    assert_eq!(Weight::new(u32::MAX), Err(SchedError::BadWeight));
    assert_eq!(Weight::new(1).unwrap().get(), 1);
    assert_eq!(Weight::new(65535).unwrap().get(), 65535);
    assert_eq!(Cap::new(0, 1), Ok(Cap::NONE));
    assert_eq!(Cap::new(100, 1).unwrap().percent(), 100);
    assert_eq!(Cap::new(101, 1), Err(SchedError::BadCap));
    assert_eq!(Cap::new(400, 4).unwrap().percent(), 400);
    assert_eq!(Cap::new(u32::MAX, 64), Err(SchedError::BadCap));
}

#[test]
fn config_is_validated() {
    let good = SchedConfig::new(4, TPMS);
    assert_eq!(good.slice, ms(10));
    assert_eq!(good.ratelimit, ms(1));
    assert_eq!(good.cap_period, ms(10));
    assert!(Scheduler::new(good).is_ok());
    let bad = [
        SchedConfig { cpus: 0, ..good },
        SchedConfig { cpus: 65, ..good },
        SchedConfig {
            slice: Ticks(0),
            ..good
        },
        SchedConfig {
            ratelimit: ms(11),
            ..good
        },
        SchedConfig {
            cap_period: Ticks(0),
            ..good
        },
        SchedConfig::new(4, u64::MAX),
    ];
    for c in bad {
        assert_eq!(
            Scheduler::new(c).err(),
            Some(SchedError::BadConfig),
            "{c:?}"
        );
    }
    // A rate limit of 0 is allowed (no limit).
    assert!(
        Scheduler::new(SchedConfig {
            ratelimit: Ticks(0),
            ..good
        })
        .is_ok()
    );
}

#[test]
fn burning_loses_no_tick_to_rounding() {
    // 1000 runs of 1 tick at weight 768 burn exactly what one run of 1000
    // ticks burns: 1000 * 256 / 768, remainder carried.
    let w = Weight::new(768).unwrap();
    let (mut total, mut rem) = (0, 0);
    for _ in 0..1000 {
        let (b, r) = credit::burn(Ticks(1), w, rem);
        total += b;
        rem = r;
    }
    assert_eq!(total, 1000 * 256 / 768);
    assert_eq!(credit::burn(Ticks(1000), w, 0).0, total);
    // Default weight: one credit per tick; double weight: half.
    assert_eq!(credit::burn(Ticks(500), Weight::DEFAULT, 0), (500, 0));
    assert_eq!(
        credit::burn(Ticks(500), Weight::new(512).unwrap(), 0),
        (250, 0)
    );
    // Huge spans saturate.
    assert_eq!(
        credit::burn(Ticks::NEVER, Weight::new(1).unwrap(), 0).0,
        i64::MAX
    );
}

#[test]
fn runtime_and_slice_follow_credit_and_weight() {
    let config = SchedConfig::new(1, TPMS);
    let w = Weight::DEFAULT;
    assert_eq!(credit::runtime_for(Credit(-5), w), Ticks(0));
    assert_eq!(
        credit::runtime_for(Credit(300), Weight::new(512).unwrap()),
        Ticks(600)
    );
    assert_eq!(
        credit::runtime_for(Credit(1), Weight::new(1).unwrap()),
        Ticks(1)
    );
    // Bounded by the rate limit below and the slice above.
    assert_eq!(credit::slice_for(Credit(-5), w, &config), ms(1));
    assert_eq!(credit::slice_for(Credit(3000), w, &config), ms(3));
    assert_eq!(credit::slice_for(Credit(i64::MAX), w, &config), ms(10));
    let no_limit = SchedConfig {
        ratelimit: Ticks(0),
        ..config
    };
    assert_eq!(credit::slice_for(Credit(0), w, &no_limit), Ticks(1));
}

#[test]
fn several_resets_at_once_equal_single_ones() {
    let init = Credit(1000);
    for c in [-3500, -1000, -999, -1, 0, 1, 500, 1000] {
        for rounds in 0..6 {
            let mut one_by_one = Credit(c);
            for _ in 0..rounds {
                one_by_one = credit::after_reset(one_by_one, 1, init);
            }
            assert_eq!(credit::after_reset(Credit(c), rounds, init), one_by_one);
        }
    }
    assert_eq!(credit::reset_rounds(Credit(1), init), 0);
    assert_eq!(credit::reset_rounds(Credit(0), init), 1);
    assert_eq!(credit::reset_rounds(Credit(-999), init), 1);
    assert_eq!(credit::reset_rounds(Credit(-1000), init), 2);
    assert_eq!(
        credit::reset_rounds(Credit(i64::MIN), init),
        9_223_372_036_854_776
    );
    assert_eq!(credit::after_reset(Credit(i64::MIN), u64::MAX, init), init);
}

#[test]
fn budget_refills_per_aligned_period_without_saving_up() {
    let period = ms(10);
    let mut b = Budget::new(Cap::new(25, 1).unwrap(), period);
    b.refill(ms(3), period);
    assert_eq!(b.left(), us(2500));
    assert_eq!(b.reserve(ms(10)), us(2500));
    assert!(b.exhausted());
    b.refill(ms(9), period); // same period: nothing
    assert!(b.exhausted());
    b.refill(ms(10), period);
    assert_eq!(b.left(), us(2500));
    b.refill(ms(50), period); // unused budget is not saved up
    assert_eq!(b.left(), us(2500));
    // Debt is paid back from the next quota.
    b.spend(ms(3));
    b.refill(ms(60), period);
    assert_eq!(b.left(), us(2000));
    // A chunk from an earlier period does not come back.
    let chunk = b.reserve(us(500));
    let from = b.period();
    b.refill(ms(70), period);
    b.give_back(chunk, from);
    assert_eq!(b.left(), us(2500));
    // A clock going backwards changes nothing.
    b.refill(ms(1), period);
    assert_eq!(b.left(), us(2500));
    assert_eq!(cap::period_end(ms(15), period), ms(20));
    assert_eq!(cap::period_end(Ticks::NEVER, period).0, u64::MAX);
}
