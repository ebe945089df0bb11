//! Random guest accesses and console traffic never panic, and the IRQ line
//! is always "an enabled interrupt condition is pending and the OUT2 pin is
//! active".

use proptest::prelude::*;

use crate::vdev::uart16550::*;

#[derive(Debug, Clone)]
enum Op {
    Read(u8),
    Write(u8, u8),
    Push(Vec<u8>),
    Take(usize),
    Modem(u8),
}

/// Offsets mostly the UART's own, values biased towards the interesting
/// ones (DLAB, loopback, FIFO enable and clear, all interrupts).
fn op() -> impl Strategy<Value = Op> {
    let offset = prop_oneof![8 => 0u8..8, 1 => any::<u8>()];
    let value = prop_oneof![
        4 => any::<u8>(),
        1 => Just(LCR_DLAB | 0x03),
        1 => Just(0x03),
        1 => Just(MCR_LOOP | MCR_OUT2),
        1 => Just(MCR_OUT2 | MCR_DTR | MCR_RTS),
        1 => Just(0xC7),
        1 => Just(0x0F),
        1 => Just(0),
    ];
    prop_oneof![
        6 => (offset.clone(), value).prop_map(|(o, v)| Op::Write(o, v)),
        5 => offset.prop_map(Op::Read),
        2 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Op::Push),
        1 => (0usize..80).prop_map(Op::Take),
        1 => any::<u8>().prop_map(Op::Modem),
    ]
}

/// The invariants, from the model's state.
fn check(u: &Uart16550) {
    let pending = (u.ier & IER_ELSI != 0 && u.overrun)
        || (u.ier & IER_ERBFI != 0 && !u.rx.is_empty())
        || (u.ier & IER_ETBEI != 0 && u.thre_pending)
        || (u.ier & IER_EDSSI != 0 && u.msr_deltas != 0);
    let out2_pin = u.mcr & MCR_OUT2 != 0 && u.mcr & MCR_LOOP == 0;
    assert_eq!(u.irq_level(), pending && out2_pin, "{u:?}");
    let iir = u.iir();
    assert_eq!(iir & IIR_NO_INT == 0, pending);
    assert_eq!(iir & 0x30, 0, "IIR bits 5:4");
    let fifo_bits = if u.fifos_enabled() { 0xC0 } else { 0 };
    assert_eq!(iir & 0xC0, fifo_bits);
    assert!(u.rx.len() <= if u.fifos_enabled() { RX_FIFO_SIZE } else { 1 });
    assert_eq!(u.ier & 0xF0, 0);
    assert_eq!(u.mcr & 0xE0, 0);
    assert_eq!(u.msr_deltas & 0xF0, 0);
    assert!(!u.thre_pending || u.ier & IER_ETBEI != 0);
}

const RING: usize = 64;

proptest! {
    // No regression files: they would land outside this module's directory.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_accesses_keep_the_irq_line_honest(
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let mut u = Uart16550::with_output_capacity(RING);
        // Bytes the guest sent to the console, and where they went.
        let (mut sent, mut taken) = (0u64, 0u64);
        let mut buf = [0u8; 80];
        for op in ops {
            match op {
                Op::Read(offset) => {
                    u.read(offset);
                }
                Op::Write(offset, value) => {
                    let to_console = offset == RBR_THR
                        && u.read(LCR) & LCR_DLAB == 0
                        && u.read(MCR) & MCR_LOOP == 0;
                    u.write(offset, value);
                    sent += u64::from(to_console);
                }
                Op::Push(bytes) => {
                    let room = u.input_room();
                    let took = u.push_input(&bytes);
                    prop_assert_eq!(took, room.min(bytes.len()));
                }
                Op::Take(n) => {
                    let limit = n.min(buf.len());
                    let got = u.take_output(&mut buf[..limit]);
                    prop_assert!(got <= limit);
                    taken += got as u64;
                }
                Op::Modem(lines) => u.set_modem_inputs(lines),
            }
            check(&u);
            prop_assert!(u.output_len() <= RING);
            prop_assert_eq!(sent, taken + u.output_len() as u64 + u.dropped_output());
        }
    }
}
