//! UART registers one by one (PC16550D §8), interrupt identification and
//! priority (§8.6), the transmit ring and the receiver.

use crate::vdev::uart16550::*;

/// A UART with 8N1, FIFOs off, OUT2 set and the interrupts in `ier`.
fn uart_with(ier: u8) -> Uart16550 {
    let mut u = Uart16550::new();
    u.write(LCR, 0x03);
    u.write(MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
    u.write(IER, ier);
    u
}

#[test]
fn reset_state() {
    let mut u = Uart16550::new();
    assert_eq!(u.read(IER), 0);
    assert_eq!(u.read(IIR_FCR), IIR_NO_INT);
    assert_eq!(u.read(LCR), 0);
    assert_eq!(u.read(MCR), 0);
    assert_eq!(u.read(LSR), LSR_THRE | LSR_TEMT);
    assert_eq!(u.read(MSR), MSR_DCD | MSR_DSR | MSR_CTS);
    assert_eq!(u.read(SCR), 0);
    assert_eq!(u.divisor(), 12);
    assert_eq!(u.baud_rate(), Some(9600));
    assert!(!u.fifos_enabled());
    assert!(!u.irq_level());
    assert_eq!((u.output_len(), u.dropped_output()), (0, 0));
}

#[test]
fn unknown_offsets_float_and_ignore_writes() {
    let mut u = Uart16550::new();
    for offset in [8u8, 9, 0x10, 0xFF] {
        u.write(offset, 0x5A);
        assert_eq!(u.read(offset), 0xFF);
    }
    // LSR and MSR writes change nothing.
    u.write(LSR, 0xFF);
    u.write(MSR, 0xFF);
    assert_eq!(u.read(LSR), LSR_THRE | LSR_TEMT);
    assert_eq!(u.read(MSR), CONNECTED_MODEM_INPUTS);
}

#[test]
fn divisor_latch_behind_dlab() {
    let mut u = uart_with(IER_ERBFI);
    // 38400 baud: divisor 3.
    u.write(LCR, 0x83);
    u.write(0, 3);
    u.write(1, 0);
    assert_eq!((u.read(0), u.read(1)), (3, 0));
    // With DLAB set, offsets 0 and 1 are the latch, not THR and IER.
    assert_eq!(u.output_len(), 0);
    u.write(LCR, 0x03);
    assert_eq!(u.divisor(), 3);
    assert_eq!(u.baud_rate(), Some(38_400));
    assert_eq!(u.read(IER), IER_ERBFI);
    // 50 baud: 0x0900, both halves.
    u.write(LCR, 0x83);
    u.write(0, 0x00);
    u.write(1, 0x09);
    u.write(LCR, 0x03);
    assert_eq!(u.divisor(), 0x0900);
    assert_eq!(u.baud_rate(), Some(50));
    // A zero divisor has no rate.
    u.write(LCR, 0x83);
    u.write(1, 0);
    assert_eq!(u.baud_rate(), None);
    // IIR, LCR and the rest are the same with DLAB set.
    assert_eq!(u.read(IIR_FCR), IIR_NO_INT);
    assert_eq!(u.read(LCR), 0x83);
}

#[test]
fn lcr_mcr_ier_keep_their_defined_bits() {
    let mut u = Uart16550::new();
    u.write(LCR, 0x7F);
    assert_eq!(u.read(LCR), 0x7F);
    u.write(MCR, 0xFF);
    assert_eq!(u.read(MCR), 0x1F, "MCR bits 7:5 are 0");
    u.write(MCR, 0);
    u.write(IER, 0xFF);
    assert_eq!(u.read(IER), 0x0F, "IER bits 7:4 are 0");
}

#[test]
fn transmit_goes_to_the_output_ring() {
    let mut u = uart_with(0);
    for &byte in b"Linux version 6.x" {
        u.write(RBR_THR, byte);
    }
    assert_eq!(u.output_len(), 17);
    let mut out = [0u8; 5];
    assert_eq!(u.take_output(&mut out), 5);
    assert_eq!(&out, b"Linux");
    let mut rest = [0u8; 64];
    let n = u.take_output(&mut rest);
    assert_eq!(&rest[..n], b" version 6.x");
    assert_eq!(u.take_output(&mut rest), 0);
    // Transmission never waits.
    assert_eq!(u.read(LSR), LSR_THRE | LSR_TEMT);
}

#[test]
fn full_output_ring_drops_the_oldest() {
    let mut u = Uart16550::with_output_capacity(4);
    for &byte in b"abcdefg" {
        u.write(RBR_THR, byte);
    }
    assert_eq!(u.output_len(), 4);
    assert_eq!(u.dropped_output(), 3);
    let mut out = [0u8; 8];
    let n = u.take_output(&mut out);
    assert_eq!(&out[..n], b"defg");
    // Draining does not reset the count.
    assert_eq!(u.dropped_output(), 3);
    // A zero-capacity ring drops everything.
    let mut none = Uart16550::with_output_capacity(0);
    none.write(RBR_THR, b'x');
    assert_eq!((none.output_len(), none.dropped_output()), (0, 1));
}

#[test]
fn receive_without_fifos_holds_one_byte() {
    let mut u = uart_with(IER_ERBFI);
    assert_eq!(u.input_room(), 1);
    assert_eq!(u.push_input(b"ab"), 1);
    assert_eq!(u.push_input(b"b"), 0);
    assert!(u.irq_level());
    assert_eq!(u.read(IIR_FCR), IIR_RX_DATA);
    assert_eq!(u.read(LSR) & LSR_DR, LSR_DR);
    assert_eq!(u.read(RBR_THR), b'a');
    assert!(!u.irq_level());
    assert_eq!(u.read(LSR) & LSR_DR, 0);
    // An empty RBR reads its last byte again.
    assert_eq!(u.read(RBR_THR), b'a');
    assert_eq!(u.push_input(b"b"), 1);
    assert_eq!(u.read(RBR_THR), b'b');
}

#[test]
fn receive_with_fifos_honours_the_trigger_level() {
    for (fcr, trigger) in [(0x01u8, 1usize), (0x41, 4), (0x81, 8), (0xC1, 14)] {
        let mut u = uart_with(IER_ERBFI);
        u.write(IIR_FCR, fcr);
        for n in 1..=RX_FIFO_SIZE {
            assert_eq!(u.push_input(&[n as u8]), 1);
            let id = if n < trigger {
                IIR_RX_TIMEOUT
            } else {
                IIR_RX_DATA
            };
            assert_eq!(u.iir(), IIR_FIFOS_ENABLED | id, "fcr {fcr:#x}, {n} bytes");
            assert!(u.irq_level());
        }
        assert_eq!(u.input_room(), 0);
        assert_eq!(u.push_input(b"more"), 0, "flow control, not overrun");
        assert_eq!(u.read(LSR) & LSR_OE, 0);
        for n in 1..=RX_FIFO_SIZE {
            assert_eq!(u.read(RBR_THR), n as u8);
        }
        assert!(!u.irq_level());
        assert_eq!(u.iir(), IIR_FIFOS_ENABLED | IIR_NO_INT);
    }
}

#[test]
fn fcr_enable_change_and_clear_empty_the_receiver() {
    let mut u = uart_with(IER_ERBFI);
    u.write(IIR_FCR, FCR_ENABLE);
    u.push_input(b"abc");
    // Rewriting with the enable bit unchanged keeps the data.
    u.write(IIR_FCR, FCR_ENABLE | 0xC0);
    assert_eq!(u.read(LSR) & LSR_DR, LSR_DR);
    // The clear bit empties it.
    u.write(IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
    assert_eq!(u.read(LSR) & LSR_DR, 0);
    assert!(!u.irq_level());
    // So does turning the FIFOs off, and on again.
    u.push_input(b"abc");
    u.write(IIR_FCR, 0);
    assert_eq!(u.read(LSR) & LSR_DR, 0);
    assert_eq!(u.iir(), IIR_NO_INT);
    u.push_input(b"a");
    u.write(IIR_FCR, FCR_ENABLE);
    assert_eq!(u.read(LSR) & LSR_DR, 0);
    // Clearing the transmit FIFO loses nothing: bytes leave at once.
    u.write(RBR_THR, b'x');
    u.write(IIR_FCR, FCR_ENABLE | FCR_CLEAR_TX);
    assert_eq!(u.output_len(), 1);
}

#[test]
fn thre_interrupt_semantics() {
    let mut u = uart_with(0);
    // Enabling ETBEI with THR empty raises THRE.
    u.write(IER, IER_ETBEI);
    assert!(u.irq_level());
    assert_eq!(u.iir(), IIR_THRE);
    // Reading IIR while THRE is the source clears it.
    assert_eq!(u.read(IIR_FCR), IIR_THRE);
    assert_eq!(u.read(IIR_FCR), IIR_NO_INT);
    assert!(!u.irq_level());
    // Rewriting IER with ETBEI still set does not bring it back...
    u.write(IER, IER_ETBEI | IER_ELSI);
    assert!(!u.irq_level());
    // ...disabling and enabling it again does.
    u.write(IER, 0);
    u.write(IER, IER_ETBEI);
    assert_eq!(u.iir(), IIR_THRE);
    // Writing THR clears it, and the byte leaving at once sets it again.
    u.read(IIR_FCR);
    u.write(RBR_THR, b'x');
    assert_eq!(u.iir(), IIR_THRE);
    // Disabling ETBEI drops it.
    u.write(IER, 0);
    assert_eq!(u.iir(), IIR_NO_INT);
    u.write(RBR_THR, b'y');
    assert_eq!(u.iir(), IIR_NO_INT, "no THRE while ETBEI is clear");
}

#[test]
fn iir_read_does_not_clear_thre_when_another_source_is_reported() {
    let mut u = uart_with(IER_ERBFI | IER_ETBEI);
    u.push_input(b"a");
    assert_eq!(u.read(IIR_FCR), IIR_RX_DATA);
    u.read(RBR_THR);
    assert_eq!(u.read(IIR_FCR), IIR_THRE, "still pending");
    assert_eq!(u.read(IIR_FCR), IIR_NO_INT);
}

#[test]
fn interrupt_priority() {
    let mut u = uart_with(IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);
    u.write(IIR_FCR, FCR_ENABLE | 0x40); // trigger 4
    // An overrun (only loopback can make one) with data behind it.
    u.write(MCR, MCR_LOOP | MCR_OUT2);
    for byte in 0..=RX_FIFO_SIZE as u8 {
        u.write(RBR_THR, byte);
    }
    u.write(MCR, MCR_OUT2);
    // A modem status change, THRE pending, data and a line status error.
    u.set_modem_inputs(MSR_DSR | MSR_CTS);
    assert!(u.irq_level());
    assert_eq!(u.read(IIR_FCR), IIR_FIFOS_ENABLED | IIR_LINE_STATUS);
    assert_eq!(
        u.read(IIR_FCR) & 0x0F,
        IIR_LINE_STATUS,
        "IIR reads do not clear it"
    );
    assert_ne!(u.read(LSR) & LSR_OE, 0);
    assert_eq!(u.read(IIR_FCR) & 0x0F, IIR_RX_DATA);
    for _ in 0..RX_FIFO_SIZE - 3 {
        u.read(RBR_THR);
    }
    assert_eq!(
        u.read(IIR_FCR) & 0x0F,
        IIR_RX_TIMEOUT,
        "three left, trigger 4"
    );
    for _ in 0..3 {
        u.read(RBR_THR);
    }
    assert_eq!(u.read(IIR_FCR) & 0x0F, IIR_THRE);
    assert_eq!(u.read(IIR_FCR) & 0x0F, IIR_MODEM_STATUS);
    assert!(u.irq_level());
    let msr = u.read(MSR);
    // DSR and CTS changed entering and leaving loopback, DCD just now.
    assert_eq!(msr & 0x0F, MSR_DCTS | MSR_DDSR | MSR_DDCD);
    assert_eq!(u.read(IIR_FCR), IIR_FIFOS_ENABLED | IIR_NO_INT);
    assert!(!u.irq_level());
}

#[test]
fn ier_gates_each_source() {
    let mut u = uart_with(0);
    u.push_input(b"a");
    u.set_modem_inputs(0);
    assert!(!u.irq_level());
    assert_eq!(u.iir(), IIR_NO_INT);
    u.write(IER, IER_EDSSI);
    assert_eq!(u.iir(), IIR_MODEM_STATUS);
    u.write(IER, IER_ERBFI | IER_EDSSI);
    assert_eq!(u.iir(), IIR_RX_DATA);
    u.write(IER, IER_EDSSI);
    assert_eq!(u.iir(), IIR_MODEM_STATUS, "data still there, not enabled");
    u.write(IER, 0);
    assert!(!u.irq_level());
}

#[test]
fn out2_gates_the_irq_line_and_loopback_forces_it_off() {
    let mut u = uart_with(IER_ERBFI);
    u.push_input(b"a");
    assert!(u.irq_level());
    u.write(MCR, MCR_DTR | MCR_RTS);
    assert!(!u.irq_level(), "OUT2 clear: the PC's IRQ driver is off");
    assert_eq!(u.iir(), IIR_RX_DATA, "the UART itself still has it");
    u.write(MCR, MCR_OUT2 | MCR_LOOP);
    assert!(!u.irq_level(), "loopback forces the OUT2 pin inactive");
    u.write(MCR, MCR_OUT2);
    assert!(u.irq_level());
}

#[test]
fn loopback_returns_bytes_and_modem_outputs() {
    let mut u = uart_with(0);
    u.write(MCR, MCR_LOOP);
    assert_eq!(u.read(MSR) & 0xF0, 0);
    for (mcr, line) in [
        (MCR_DTR, MSR_DSR),
        (MCR_RTS, MSR_CTS),
        (MCR_OUT1, MSR_RI),
        (MCR_OUT2, MSR_DCD),
    ] {
        u.write(MCR, MCR_LOOP | mcr);
        assert_eq!(u.read(MSR) & 0xF0, line, "MCR {mcr:#x}");
    }
    // Transmitted bytes come back; none reach the console.
    u.write(MCR, MCR_LOOP);
    u.write(RBR_THR, 0x42);
    assert_eq!(u.output_len(), 0);
    assert_eq!(u.read(LSR) & LSR_DR, LSR_DR);
    assert_eq!(u.read(RBR_THR), 0x42);
    // The console's input is disconnected.
    assert_eq!(u.input_room(), 0);
    assert_eq!(u.push_input(b"x"), 0);
    // Without FIFOs a second byte overruns and replaces the first.
    u.write(RBR_THR, 1);
    u.write(RBR_THR, 2);
    assert_eq!(u.read(LSR), LSR_THRE | LSR_TEMT | LSR_DR | LSR_OE);
    assert_eq!(u.read(RBR_THR), 2);
    // Leaving loopback restores the external inputs and the console.
    u.write(MCR, 0);
    assert_eq!(u.read(MSR) & 0xF0, CONNECTED_MODEM_INPUTS);
    u.write(RBR_THR, b'z');
    assert_eq!(u.output_len(), 1);
}

#[test]
fn modem_status_deltas() {
    let mut u = uart_with(IER_EDSSI);
    assert!(!u.irq_level());
    // Ring: no delta on the leading edge, TERI on the trailing edge.
    u.set_modem_inputs(CONNECTED_MODEM_INPUTS | MSR_RI);
    assert!(!u.irq_level());
    assert_eq!(u.read(MSR), CONNECTED_MODEM_INPUTS | MSR_RI);
    u.set_modem_inputs(CONNECTED_MODEM_INPUTS);
    assert!(u.irq_level());
    assert_eq!(u.read(MSR), CONNECTED_MODEM_INPUTS | MSR_TERI);
    assert!(!u.irq_level(), "reading MSR clears the deltas");
    // Carrier lost, CTS dropped.
    u.set_modem_inputs(MSR_DSR | 0x0F);
    assert_eq!(u.read(MSR), MSR_DSR | MSR_DDCD | MSR_DCTS);
    // Setting the same inputs again is no change.
    u.set_modem_inputs(MSR_DSR);
    assert_eq!(u.read(MSR), MSR_DSR);
    // In loopback the external inputs wait until loopback ends.
    u.write(MCR, MCR_LOOP | MCR_DTR);
    u.read(MSR);
    u.set_modem_inputs(CONNECTED_MODEM_INPUTS);
    assert_eq!(u.read(MSR), MSR_DSR);
    u.write(MCR, MCR_OUT2);
    assert_eq!(u.read(MSR), CONNECTED_MODEM_INPUTS | MSR_DDCD | MSR_DCTS);
}
