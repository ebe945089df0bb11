//! The APIC timer against an abstract clock (SDM §12.5.4). With the test
//! configuration one bus tick is 20 TSC ticks; the divide configuration 0xB
//! selects divide-by-1.

use super::*;

const DIV1: u32 = 0xB;
const TICK: u64 = 20;
const ONE_SHOT: u32 = 0;
const PERIODIC: u32 = 1 << 17;
const DEADLINE: u32 = 2 << 17;

fn timer(mode: u32, vector: u8) -> VLapic {
    let mut l = enabled(1);
    l.mmio_write(TIMER_DIVIDE, DIV1, 0);
    l.mmio_write(LVT_TIMER, mode | u32::from(vector), 0);
    l
}

#[test]
fn one_shot_counts_down_and_fires_once() {
    let mut l = timer(ONE_SHOT, 0xEC);
    let got = l.mmio_write(TIMER_INITIAL, 1000, 100);
    assert_eq!(got, actions(&[Action::TimerChanged]));
    assert_eq!(l.next_timer_deadline(), Some(100 + 1000 * TICK));
    assert_eq!(l.mmio_read(TIMER_CURRENT, 100), 1000);
    assert_eq!(l.mmio_read(TIMER_CURRENT, 100 + 250 * TICK), 750);
    assert_eq!(l.mmio_read(TIMER_CURRENT, 100 + 250 * TICK + 19), 750);
    assert_eq!(l.on_time(100 + 1000 * TICK - 1), None);
    assert_eq!(l.mmio_read(TIMER_CURRENT, 100 + 1000 * TICK - 1), 1);
    assert_eq!(l.on_time(100 + 1000 * TICK), Some(0xEC));
    assert!(irr_has(&l, 0xEC));
    assert_eq!(l.next_timer_deadline(), None);
    assert_eq!(l.mmio_read(TIMER_CURRENT, 100 + 1000 * TICK), 0);
    assert_eq!(l.on_time(u64::MAX), None);
}

#[test]
fn periodic_rearms_without_drift() {
    let mut cfg = config(1);
    cfg.tsc_khz = 3_000_000;
    cfg.bus_khz = 7_000; // 428.57… TSC ticks per bus tick: rounding matters.
    let mut l = VLapic::new(cfg);
    l.mmio_write(SVR, 0x1FF, 0);
    l.mmio_write(TIMER_DIVIDE, DIV1, 0);
    l.mmio_write(LVT_TIMER, PERIODIC | 0x30, 0);
    l.mmio_write(TIMER_INITIAL, 7, 0); // exactly 3000 TSC ticks per period
    for k in 1..=1000u64 {
        let deadline = l.next_timer_deadline().unwrap();
        assert_eq!(deadline, k * 3000);
        assert_eq!(l.on_time(deadline), Some(0x30));
        l.ack(0x30);
        l.eoi();
    }
    l.mmio_write(TIMER_INITIAL, 3, 0);
    // 3 counts = 1285.71… ticks: the k-th expiry is ceil(k * 1285.71…).
    for k in 1..=700u64 {
        let deadline = l.next_timer_deadline().unwrap();
        assert_eq!(deadline, (k * 3 * 3_000_000).div_ceil(7_000));
        l.on_time(deadline);
    }
}

#[test]
fn periodic_late_call_coalesces_missed_periods() {
    let mut l = timer(PERIODIC, 0x31);
    l.mmio_write(TIMER_INITIAL, 100, 0); // 2000 TSC ticks
    assert_eq!(l.mmio_read(TIMER_CURRENT, 5 * 2000 + 500), 75);
    assert_eq!(l.on_time(5 * 2000 + 500), Some(0x31));
    assert_eq!(l.next_timer_deadline(), Some(6 * 2000));
    assert_eq!(l.mmio_read(TIMER_CURRENT, 5 * 2000 + 500), 75);
}

#[test]
fn masked_timer_runs_without_interrupts() {
    let mut l = timer(PERIODIC | LVT_MASKED, 0x32);
    l.mmio_write(TIMER_INITIAL, 10, 0);
    assert_eq!(l.on_time(200), None);
    assert!(!irr_has(&l, 0x32));
    assert_eq!(l.next_timer_deadline(), Some(400));
}

#[test]
fn initial_count_zero_stops_and_rewrite_restarts() {
    let mut l = timer(PERIODIC, 0x33);
    l.mmio_write(TIMER_INITIAL, 10, 0);
    l.mmio_write(TIMER_INITIAL, 0, 50);
    assert_eq!(l.next_timer_deadline(), None);
    assert_eq!(l.mmio_read(TIMER_CURRENT, 60), 0);
    l.mmio_write(TIMER_INITIAL, 10, 1000);
    assert_eq!(l.next_timer_deadline(), Some(1200));
}

#[test]
fn divide_configuration_scales_and_rescales() {
    let mut l = enabled(1);
    l.mmio_write(LVT_TIMER, 0x34, 0);
    l.mmio_write(TIMER_DIVIDE, 0b1010, 0); // divide by 128
    l.mmio_write(TIMER_INITIAL, 10, 0);
    assert_eq!(l.next_timer_deadline(), Some(10 * 128 * TICK));
    // Half-way, switch to divide by 1: 5 counts left, now 5 * 20 ticks.
    let half = 5 * 128 * TICK;
    assert_eq!(l.mmio_read(TIMER_CURRENT, half), 5);
    l.mmio_write(TIMER_DIVIDE, DIV1, half);
    assert_eq!(l.mmio_read(TIMER_CURRENT, half), 5);
    assert_eq!(l.next_timer_deadline(), Some(half + 5 * TICK));
}

#[test]
fn one_shot_to_periodic_keeps_counting() {
    let mut l = timer(ONE_SHOT, 0x35);
    l.mmio_write(TIMER_INITIAL, 10, 0);
    l.mmio_write(LVT_TIMER, PERIODIC | 0x35, 100);
    assert_eq!(l.next_timer_deadline(), Some(200));
    assert_eq!(l.on_time(200), Some(0x35));
    assert_eq!(l.next_timer_deadline(), Some(400));
}

#[test]
fn tsc_deadline_mode() {
    let mut l = timer(DEADLINE, 0xEF);
    // Initial-count writes are ignored in TSC-deadline mode.
    assert!(l.mmio_write(TIMER_INITIAL, 10, 0).is_empty());
    assert_eq!(l.mmio_read(TIMER_INITIAL, 0), 0);
    assert_eq!(l.next_timer_deadline(), None);
    let got = l.tsc_deadline_write(5000, 100);
    assert_eq!(got, actions(&[Action::TimerChanged]));
    assert_eq!(l.tsc_deadline_read(), 5000);
    assert_eq!(l.next_timer_deadline(), Some(5000));
    assert_eq!(l.mmio_read(TIMER_CURRENT, 200), 0);
    assert_eq!(l.on_time(4999), None);
    assert_eq!(l.on_time(5000), Some(0xEF));
    assert_eq!(l.tsc_deadline_read(), 0);
    assert_eq!(l.next_timer_deadline(), None);
    // Writing 0 disarms.
    l.tsc_deadline_write(9000, 6000);
    l.tsc_deadline_write(0, 6000);
    assert_eq!(l.next_timer_deadline(), None);
}

#[test]
fn tsc_deadline_in_the_past_fires_at_once() {
    let mut l = timer(DEADLINE, 0xEE);
    l.tsc_deadline_write(10, 1000);
    assert!(irr_has(&l, 0xEE));
    assert_eq!(l.tsc_deadline_read(), 0);
}

#[test]
fn switching_to_or_from_tsc_deadline_disarms() {
    let mut l = timer(ONE_SHOT, 0x36);
    l.mmio_write(TIMER_INITIAL, 100, 0);
    l.mmio_write(LVT_TIMER, DEADLINE | 0x36, 10);
    assert_eq!(l.next_timer_deadline(), None);
    assert_eq!(l.mmio_read(TIMER_INITIAL, 10), 0);
    l.tsc_deadline_write(5000, 20);
    l.mmio_write(LVT_TIMER, ONE_SHOT | 0x36, 30);
    assert_eq!(l.next_timer_deadline(), None);
    assert_eq!(l.tsc_deadline_read(), 0);
    // Back to deadline mode: still disarmed.
    l.mmio_write(LVT_TIMER, DEADLINE | 0x36, 40);
    assert_eq!(l.tsc_deadline_read(), 0);
}

#[test]
fn expiry_before_a_timer_write_is_not_lost() {
    let mut l = timer(ONE_SHOT, 0x37);
    l.mmio_write(TIMER_INITIAL, 10, 0);
    // The guest rewrites the count after the expiry but before on_time ran.
    l.mmio_write(TIMER_INITIAL, 10, 500);
    assert!(irr_has(&l, 0x37));
    assert_eq!(l.next_timer_deadline(), Some(700));
}

#[test]
fn x2apic_timer_msrs() {
    let mut l = enabled_x2(1);
    l.msr_write(0x83E, u64::from(DIV1), 0).unwrap();
    l.msr_write(0x832, u64::from(PERIODIC) | 0x40, 0).unwrap();
    l.msr_write(0x838, 50, 0).unwrap();
    assert_eq!(l.msr_read(0x838, 0), Ok(50));
    assert_eq!(l.msr_read(0x839, 10 * TICK), Ok(40));
    assert_eq!(l.next_timer_deadline(), Some(50 * TICK));
}

#[test]
fn software_disabled_timer_does_not_interrupt() {
    let mut l = timer(ONE_SHOT, 0x38);
    l.mmio_write(TIMER_INITIAL, 10, 0);
    l.mmio_write(SVR, 0xFF, 0);
    assert_eq!(l.on_time(200), None);
    assert_eq!(l.rvi(), 0);
}
