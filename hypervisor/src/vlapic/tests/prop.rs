//! Random sequences of guest accesses, interrupts and time never panic and
//! keep the priority invariants.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    MmioWrite(u32, u32),
    MmioRead(u32),
    MsrWrite(u32, u64),
    MsrRead(u32),
    ApicBase(u64),
    Accept(u8, bool),
    /// The CPU takes the highest deliverable interrupt, if any.
    Take,
    Eoi,
    Time(u64),
    TscDeadline(u64),
    Init,
    PageRoundTrip,
}

/// Offsets biased towards implemented registers, values towards small ones.
fn op() -> impl Strategy<Value = Op> {
    let offset = prop_oneof![
        4 => (0u32..0x40).prop_map(|slot| slot << 4),
        1 => 0u32..0x1000,
    ];
    let value = prop_oneof![any::<u32>(), 0u32..0x200, Just(0x1FF)];
    let msr = prop_oneof![0x800u32..0x840, Just(0x1B), Just(0x6E0)];
    let base = prop_oneof![
        Just(DEFAULT_APIC_BASE),
        Just(DEFAULT_APIC_BASE | 1 << 11),
        Just(DEFAULT_APIC_BASE | 3 << 10),
        any::<u64>(),
    ];
    prop_oneof![
        6 => (offset.clone(), value.clone()).prop_map(|(o, v)| Op::MmioWrite(o, v)),
        2 => offset.prop_map(Op::MmioRead),
        4 => (msr.clone(), value.prop_map(u64::from)).prop_map(|(m, v)| Op::MsrWrite(m, v)),
        2 => msr.prop_map(Op::MsrRead),
        1 => base.prop_map(Op::ApicBase),
        6 => (any::<u8>(), any::<bool>()).prop_map(|(v, l)| Op::Accept(v, l)),
        5 => Just(Op::Take),
        4 => Just(Op::Eoi),
        3 => (0u64..100_000).prop_map(Op::Time),
        1 => (0u64..200_000).prop_map(Op::TscDeadline),
        1 => Just(Op::Init),
        1 => Just(Op::PageRoundTrip),
    ]
}

fn check_invariants(l: &VLapic) {
    let isr = l.regs.bitmap(ISR);
    // The in-service vectors form a stack of strictly rising classes: at
    // most one per priority class (so no vector is in service twice).
    for class in 0..16u32 {
        let bits = (isr[(class / 2) as usize] >> ((class % 2) * 16)) & 0xFFFF;
        assert!(
            bits.count_ones() <= 1,
            "two in-service vectors in class {class}"
        );
    }
    let ppr = l.ppr();
    assert!(ppr >> 4 >= l.tpr() >> 4, "PPR below TPR class");
    assert!(ppr >> 4 >= l.svi() >> 4, "PPR below ISRV class");
    if let Some(v) = l.highest_pending() {
        assert!(v >> 4 > ppr >> 4);
        assert_eq!(v, l.rvi());
    }
    assert_eq!(l.isr_vectors_below_16(), 0);
    assert_eq!(l.regs.bitmap(IRR)[0] & 0xFFFF, 0, "illegal vector pending");
    if l.mode() == ApicMode::Disabled {
        assert_eq!(l.next_timer_deadline(), None);
        assert_eq!(l.rvi(), 0);
    }
}

impl VLapic {
    fn isr_vectors_below_16(&self) -> u32 {
        self.regs.bitmap(ISR)[0] & 0xFFFF
    }
}

proptest! {
    // No regression files: they would land outside this module's directory.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_invariants(
        id in prop_oneof![0u32..4, any::<u32>()],
        directed_eoi in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut cfg = config(id);
        cfg.directed_eoi = directed_eoi;
        let mut l = VLapic::new(cfg);
        let mut now = 0u64;
        let mut page = [0u8; 4096];
        for op in ops {
            match op {
                Op::MmioWrite(o, v) => { l.mmio_write(o, v, now); }
                Op::MmioRead(o) => { l.mmio_read(o, now); }
                Op::MsrWrite(m, v) => { let _ = l.msr_write(m, v, now); }
                Op::MsrRead(m) => { let _ = l.msr_read(m, now); }
                Op::ApicBase(v) => { let _ = l.apic_base_write(v); }
                Op::Accept(v, level) => { l.accept_interrupt(v, level); }
                Op::Take => {
                    if let Some(v) = l.highest_pending() {
                        prop_assert!(l.ack(v));
                        prop_assert!(isr_has(&l, v));
                    }
                }
                Op::Eoi => { l.eoi(); }
                Op::Time(dt) => {
                    now += dt;
                    l.on_time(now);
                    if let Some(d) = l.next_timer_deadline() {
                        prop_assert!(d > now || l.mode() == ApicMode::Disabled);
                    }
                }
                Op::TscDeadline(d) => { l.tsc_deadline_write(d, now); }
                Op::Init => { l.init_signal(); }
                Op::PageRoundTrip => {
                    let before = l.clone();
                    l.to_page(&mut page);
                    l.from_page(&page);
                    prop_assert_eq!(&before.regs, &l.regs);
                }
            }
            check_invariants(&l);
        }
        // EOI of every in-service vector empties ISR.
        let in_service = l.regs.bitmap(ISR).iter().map(|w| w.count_ones()).sum::<u32>();
        for _ in 0..in_service {
            l.eoi();
        }
        prop_assert_eq!(l.svi(), 0);
        prop_assert_eq!(l.regs.bitmap(ISR), [0; 8]);
    }

    #[test]
    fn timer_current_count_never_exceeds_initial(
        initial in 1u32..u32::MAX,
        dcr in 0u32..16,
        periodic in any::<bool>(),
        times in proptest::collection::vec(0u64..1 << 40, 1..20),
    ) {
        let mut l = enabled(1);
        l.mmio_write(TIMER_DIVIDE, dcr, 0);
        l.mmio_write(LVT_TIMER, if periodic { 1 << 17 } else { 0 } | 0x40, 0);
        l.mmio_write(TIMER_INITIAL, initial, 0);
        let mut now = 0;
        for dt in times {
            now += dt;
            let count = l.mmio_read(TIMER_CURRENT, now);
            prop_assert!(count <= initial);
            l.on_time(now);
            if let Some(deadline) = l.next_timer_deadline() {
                prop_assert!(deadline > now);
            } else {
                prop_assert!(!periodic, "a periodic timer never stops by itself");
                prop_assert_eq!(l.mmio_read(TIMER_CURRENT, now), 0);
            }
        }
    }
}
