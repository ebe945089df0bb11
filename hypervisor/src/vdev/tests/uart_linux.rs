//! The UART as Linux's 8250 driver drives it
//! (`drivers/tty/serial/8250/8250_port.c`): the port-type probe
//! (`autoconfig`, `autoconfig_16550a`, `size_fifo`), start-up
//! (`serial8250_do_startup`, `serial8250_do_set_termios`) and the
//! interrupt-driven receive and transmit paths. The sequences are restated
//! here from the driver's logic, access by access.

use crate::vdev::uart16550::*;

/// Offset 2 is the EFR on parts that have one (behind LCR = 0xBF).
const EFR: u8 = IIR_FCR;
/// FCR bit 5: 64-byte FIFO enable on a TI16750 (reserved on a 16550A).
const FCR7_64BYTE: u8 = 1 << 5;
/// IER bit 6: UART unit enable on XScale parts (reserved on a 16550A).
const IER_UUE: u8 = 1 << 6;
/// Linux's UART_LCR_CONF_MODE_A (DLAB) and _B (the EFR unlock value).
const CONF_MODE_A: u8 = LCR_DLAB;
const CONF_MODE_B: u8 = 0xBF;

/// What the probe concluded.
#[derive(Debug, PartialEq, Eq)]
enum PortType {
    NotThere(&'static str),
    Uart8250,
    Uart16450,
    Unknown,
    Uart16550,
    Uart16550A,
    /// Any of the parts with an EFR, a NatSemi bank switch, a 64-byte FIFO
    /// or an XScale unit enable: not what we are.
    Other(&'static str),
}

fn dl_read(u: &mut Uart16550) -> u16 {
    u16::from(u.read(0)) | (u16::from(u.read(1)) << 8)
}

fn dl_write(u: &mut Uart16550, divisor: u16) {
    u.write(0, divisor as u8);
    u.write(1, (divisor >> 8) as u8);
}

fn clear_fifos(u: &mut Uart16550) {
    u.write(IIR_FCR, FCR_ENABLE);
    u.write(IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
    u.write(IIR_FCR, 0);
}

/// `autoconfig()`.
fn autoconfig(u: &mut Uart16550) -> PortType {
    // Existence: the low nibble of IER is read/write.
    let saved_ier = u.read(IER);
    u.write(IER, 0);
    let cleared = u.read(IER) & 0x0F;
    u.write(IER, 0x0F);
    let set = u.read(IER) & 0x0F;
    u.write(IER, saved_ier);
    if cleared != 0 || set != 0x0F {
        return PortType::NotThere("IER test");
    }

    let saved_mcr = u.read(MCR);
    let saved_lcr = u.read(LCR);

    // Loopback: RTS and OUT2 come back as CTS and DCD.
    u.write(MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
    let status = u.read(MSR) & 0xF0;
    u.write(MCR, saved_mcr);
    if status != 0x90 {
        return PortType::NotThere("loopback test");
    }

    u.write(LCR, CONF_MODE_B);
    u.write(EFR, 0);
    u.write(LCR, 0);
    u.write(IIR_FCR, FCR_ENABLE);
    let kind = match u.read(IIR_FCR) >> 6 {
        0 => autoconfig_8250(u),
        1 => PortType::Unknown,
        2 => PortType::Uart16550,
        _ => autoconfig_16550a(u),
    };
    u.write(LCR, saved_lcr);

    // Reset the UART.
    u.write(MCR, saved_mcr);
    clear_fifos(u);
    u.read(RBR_THR);
    u.write(IER, 0);
    kind
}

/// `autoconfig_8250()`: a 16450 has a scratch register.
fn autoconfig_8250(u: &mut Uart16550) -> PortType {
    let saved = u.read(SCR);
    u.write(SCR, 0xA5);
    let first = u.read(SCR);
    u.write(SCR, 0x5A);
    let second = u.read(SCR);
    u.write(SCR, saved);
    if first == 0xA5 && second == 0x5A {
        PortType::Uart16450
    } else {
        PortType::Uart8250
    }
}

/// `autoconfig_16550a()` (without the Exar paths, which need a port flag).
fn autoconfig_16550a(u: &mut Uart16550) -> PortType {
    // An EFR visible with DLAB set: ST16C650V1.
    u.write(LCR, CONF_MODE_A);
    if u.read(EFR) == 0 {
        return PortType::Other("EFR with DLAB");
    }
    // An EFR behind 0xBF: ST16C650V2, TI16C752 and friends.
    u.write(LCR, CONF_MODE_B);
    if u.read(EFR) == 0 {
        return PortType::Other("EFR");
    }
    // A National Semiconductor SuperIO: bank 2 mirrors MCR.LOOP in EXCR1.
    u.write(LCR, 0);
    let mcr = u.read(MCR);
    u.write(LCR, 0xE0);
    let excr1 = u.read(2);
    if (excr1 ^ mcr) & MCR_LOOP == 0 {
        u.write(LCR, 0);
        u.write(MCR, mcr ^ MCR_LOOP);
        u.write(LCR, 0xE0);
        let excr1 = u.read(2);
        u.write(LCR, 0);
        u.write(MCR, mcr);
        if (excr1 ^ mcr) & MCR_LOOP != 0 {
            return PortType::Other("NS16550A");
        }
    }
    // A TI16750 sets IIR bit 5 for its 64-byte FIFO only with DLAB set.
    u.write(LCR, 0);
    u.write(IIR_FCR, FCR_ENABLE | FCR7_64BYTE);
    let without_dlab = u.read(IIR_FCR) >> 5;
    u.write(IIR_FCR, FCR_ENABLE);
    u.write(LCR, CONF_MODE_A);
    u.write(IIR_FCR, FCR_ENABLE | FCR7_64BYTE);
    let with_dlab = u.read(IIR_FCR) >> 5;
    u.write(IIR_FCR, FCR_ENABLE);
    u.write(LCR, 0);
    assert_eq!((without_dlab, with_dlab), (6, 6), "IIR bit 5 must stay 0");
    if without_dlab == 6 && with_dlab == 7 {
        return PortType::Other("16750");
    }
    // XScale: IER bit 6 sticks.
    let saved_ier = u.read(IER);
    u.write(IER, saved_ier & !IER_UUE);
    if u.read(IER) & IER_UUE == 0 {
        u.write(IER, saved_ier | IER_UUE);
        if u.read(IER) & IER_UUE != 0 {
            return PortType::Other("XScale");
        }
    }
    u.write(IER, saved_ier);
    // A U6 16550A has a 64-byte FIFO.
    match size_fifo(u) {
        64 => PortType::Other("U6 16550A"),
        _ => PortType::Uart16550A,
    }
}

/// `size_fifo()`: in loopback at the top rate, send 256 bytes and count
/// what the receiver kept.
fn size_fifo(u: &mut Uart16550) -> usize {
    let old_lcr = u.read(LCR);
    u.write(LCR, 0);
    // FCR is write-only: Linux "saves" IIR here and writes it back later.
    let old_fcr = u.read(IIR_FCR);
    let old_mcr = u.read(MCR);
    u.write(IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
    u.write(MCR, MCR_LOOP);
    u.write(LCR, CONF_MODE_A);
    let old_dl = dl_read(u);
    dl_write(u, 1);
    u.write(LCR, 0x03);
    for byte in 0..=255u8 {
        u.write(RBR_THR, byte);
    }
    let mut count = 0;
    while count < 256 && u.read(LSR) & LSR_DR != 0 {
        u.read(RBR_THR);
        count += 1;
    }
    u.write(IIR_FCR, old_fcr);
    u.write(MCR, old_mcr);
    u.write(LCR, CONF_MODE_A);
    dl_write(u, old_dl);
    u.write(LCR, old_lcr);
    count
}

#[test]
fn linux_probe_finds_a_16550a() {
    let mut u = Uart16550::new();
    assert_eq!(autoconfig(&mut u), PortType::Uart16550A);
    // Nothing the probe sent in loopback reached the console.
    assert_eq!(u.output_len(), 0);
    // The probe restored what it found: divisor, LCR, MCR, IER 0.
    assert_eq!(u.divisor(), 12);
    assert_eq!(u.read(LCR), 0);
    assert_eq!(u.read(MCR), 0);
    assert_eq!(u.read(IER), 0);
    assert!(!u.irq_level());
}

#[test]
fn size_fifo_counts_sixteen_and_reports_the_overrun() {
    let mut u = Uart16550::new();
    u.write(IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX);
    u.write(MCR, MCR_LOOP);
    for byte in 0..40u8 {
        u.write(RBR_THR, byte);
    }
    // The 17th byte overran; the first sixteen are kept in order.
    assert_eq!(u.read(LSR), LSR_THRE | LSR_TEMT | LSR_DR | LSR_OE);
    assert_eq!(u.read(LSR) & LSR_OE, 0, "reading LSR clears OE");
    let received: Vec<u8> = (0..16).map(|_| u.read(RBR_THR)).collect();
    assert_eq!(received, (0..16u8).collect::<Vec<_>>());
    assert_eq!(u.read(LSR) & LSR_DR, 0);
    assert_eq!(size_fifo(&mut Uart16550::new()), RX_FIFO_SIZE);
}

#[test]
fn scratch_register_holds_any_value() {
    let mut u = Uart16550::new();
    assert_eq!(autoconfig_8250(&mut u), PortType::Uart16450);
    for value in [0x00, 0xA5, 0x5A, 0xFF] {
        u.write(SCR, value);
        assert_eq!(u.read(SCR), value);
    }
}

/// `serial8250_do_startup()` and the first `serial8250_do_set_termios()`
/// for 115200 8N1 with the 16550A's FIFO settings.
fn linux_startup(u: &mut Uart16550) {
    clear_fifos(u);
    u.read(LSR);
    u.read(RBR_THR);
    u.read(IIR_FCR);
    u.read(MSR);
    assert_ne!(u.read(LSR), 0xFF, "LSR safety check");

    // UART_BUG_THRE: THRE must be re-asserted when ETBEI is enabled again.
    assert_ne!(u.read(LSR) & LSR_THRE, 0);
    u.write(IER, IER_ETBEI);
    let iir1 = u.read(IIR_FCR);
    u.write(IER, 0);
    u.write(IER, IER_ETBEI);
    let iir = u.read(IIR_FCR);
    u.write(IER, 0);
    assert_eq!(iir1 & IIR_NO_INT, 0, "THRE after enabling ETBEI");
    assert_eq!(iir & IIR_NO_INT, 0, "THRE again after re-enabling ETBEI");

    u.write(LCR, 0x03);
    u.write(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);

    // UART_BUG_TXEN: an interrupt must follow enabling ETBEI.
    u.write(IER, IER_ETBEI);
    let lsr = u.read(LSR);
    let iir = u.read(IIR_FCR);
    u.write(IER, 0);
    assert!(!(lsr & LSR_TEMT != 0 && iir & IIR_NO_INT != 0), "TXEN bug");

    u.read(LSR);
    u.read(RBR_THR);
    u.read(IIR_FCR);
    u.read(MSR);

    // set_termios: IER, divisor 1, LCR, then FCR in two steps (enable,
    // then the trigger level 8 that Linux uses for a 16550A).
    u.write(IER, IER_ELSI | IER_ERBFI);
    u.write(LCR, 0x03 | LCR_DLAB);
    dl_write(u, 1);
    u.write(LCR, 0x03);
    u.write(IIR_FCR, FCR_ENABLE);
    u.write(IIR_FCR, FCR_ENABLE | 0x80);
}

/// One pass of `serial8250_default_handle_irq()`; returns whether the port
/// had an interrupt. `tx` is the driver's transmit buffer.
fn linux_irq(u: &mut Uart16550, tx: &mut Vec<u8>, rx: &mut Vec<u8>) -> bool {
    let iir = u.read(IIR_FCR);
    if iir & IIR_NO_INT != 0 {
        return false;
    }
    let mut lsr = u.read(LSR);
    if lsr & LSR_DR != 0 && iir & IIR_RX_DATA != 0 {
        let mut budget = 256;
        while lsr & LSR_DR != 0 && budget > 0 {
            rx.push(u.read(RBR_THR));
            budget -= 1;
            lsr = u.read(LSR);
        }
    }
    u.read(MSR);
    if lsr & LSR_THRE != 0 {
        // serial8250_tx_chars: up to tx_loadsz (16) bytes, then stop
        // transmitting once the buffer is empty.
        let n = tx.len().min(16);
        for byte in tx.drain(..n) {
            u.write(RBR_THR, byte);
        }
        if tx.is_empty() {
            let ier = u.read(IER);
            u.write(IER, ier & !IER_ETBEI);
        }
    }
    true
}

#[test]
fn linux_startup_then_interrupt_driven_receive_and_transmit() {
    let mut u = Uart16550::new();
    assert_eq!(autoconfig(&mut u), PortType::Uart16550A);
    linux_startup(&mut u);
    assert_eq!(u.baud_rate(), Some(115_200));
    assert!(!u.irq_level());
    assert_eq!(u.output_len(), 0, "start-up transmits nothing");

    // Three typed bytes: below the trigger level, so a character timeout.
    assert_eq!(u.push_input(b"ls\n"), 3);
    assert!(u.irq_level());
    assert_eq!(u.iir(), IIR_FIFOS_ENABLED | IIR_RX_TIMEOUT);
    let (mut tx, mut rx) = (Vec::new(), Vec::new());
    assert!(linux_irq(&mut u, &mut tx, &mut rx));
    assert_eq!(rx, b"ls\n");
    assert!(!u.irq_level());

    // start_tx: enabling ETBEI raises THRE; the handler loops (the ISA
    // chain handler runs until no port has work) until the buffer is sent.
    tx.extend_from_slice(b"total 0\r\n-rw-r--r-- 1 root root 0 Jan  1 00:00 oxen\r\n");
    let expected = tx.clone();
    let ier = u.read(IER);
    u.write(IER, ier | IER_ETBEI);
    assert!(u.irq_level());
    let mut passes = 0;
    while u.irq_level() && passes < 100 {
        assert!(linux_irq(&mut u, &mut tx, &mut rx));
        passes += 1;
    }
    assert!(!u.irq_level());
    assert!(tx.is_empty());
    let mut out = [0u8; 128];
    let n = u.take_output(&mut out);
    assert_eq!(&out[..n], expected.as_slice());
    assert_eq!(u.iir(), IIR_FIFOS_ENABLED | IIR_NO_INT);

    // A burst above the trigger level reports "data available".
    assert_eq!(u.push_input(&[b'x'; 20]), RX_FIFO_SIZE);
    assert_eq!(u.iir(), IIR_FIFOS_ENABLED | IIR_RX_DATA);
    assert!(linux_irq(&mut u, &mut tx, &mut rx));
    assert_eq!(rx.len(), 3 + RX_FIFO_SIZE);
    assert!(!u.irq_level());
}

#[test]
fn linux_console_write_restores_a_pending_transmission() {
    // serial8250_console_write: save IER, IER = 0, poll LSR and write,
    // wait for both empty, restore IER.
    let mut u = Uart16550::new();
    linux_startup(&mut u);
    u.write(IER, IER_ELSI | IER_ERBFI | IER_ETBEI);
    assert!(u.irq_level());
    let saved = u.read(IER);
    u.write(IER, 0);
    assert!(!u.irq_level());
    for &byte in b"printk\n" {
        assert_ne!(u.read(LSR) & LSR_THRE, 0);
        u.write(RBR_THR, byte);
    }
    assert_eq!(u.read(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
    u.write(IER, saved);
    assert!(u.irq_level(), "the transmit interrupt comes back");
    let mut out = [0u8; 16];
    let n = u.take_output(&mut out);
    assert_eq!(&out[..n], b"printk\n");
}
