//! A 16550A UART as a PC's COM1 presents it: the console of a domU.
//!
//! The register model is the National Semiconductor PC16550D ("PC16550D
//! Universal Asynchronous Receiver/Transmitter with FIFOs", now TI SNLS378;
//! the section numbers below are that datasheet's). It is what Linux's 8250
//! driver classifies as `16550A` (`drivers/tty/serial/8250/8250_port.c`,
//! `autoconfig()` and `autoconfig_16550a()`): the low nibble of IER reads
//! back and its high nibble stays 0, loopback (MCR bit 4) reflects MCR in
//! MSR, IIR bits 7:6 read 11b once FCR bit 0 enables the FIFOs, IIR bit 5
//! never sets (no 64-byte FIFO), there is no EFR behind LCR = 0xBF, and the
//! receive FIFO holds exactly 16 bytes.
//!
//! # Registers (§8, "Registers"), by offset from the base (0x3F8 for COM1)
//!
//! | offset | read | write | with LCR.DLAB = 1 |
//! |---|---|---|---|
//! | 0 | RBR receive buffer | THR transmit holding | DLL divisor low |
//! | 1 | IER interrupt enable | IER | DLM divisor high |
//! | 2 | IIR interrupt identification | FCR FIFO control | (unchanged) |
//! | 3 | LCR line control | LCR | |
//! | 4 | MCR modem control | MCR | |
//! | 5 | LSR line status | ignored (factory test only, §8.4) | |
//! | 6 | MSR modem status | ignored | |
//! | 7 | SCR scratch | SCR | |
//!
//! Offsets above 7 are not the UART's: they read 0xFF (a floating ISA bus)
//! and writes are dropped.
//!
//! # No clock
//!
//! The model has no time, so every delay of the real part has elapsed:
//!
//! - A byte written to THR leaves at once, into the output ring (or, in
//!   loopback, into the receiver). THR and the transmit shift register are
//!   therefore always empty: LSR.THRE = LSR.TEMT = 1. Writing THR clears a
//!   pending THRE interrupt (§8.6) and, THR being empty again, sets it again
//!   when IER.ETBEI is set — on hardware one character time later.
//! - The character timeout (§8.6, §8.11: data in the receive FIFO, fewer
//!   bytes than the trigger level, and four character times without FIFO
//!   activity) counts as expired as soon as input stops, that is whenever
//!   the guest looks: IIR reports 0xC (timeout) for a FIFO below the trigger
//!   level and 0x4 (data available) at or above it. Either way the
//!   interrupt is pending while IER.ERBFI is set and data is there, which is
//!   all Linux's handler asks (it drains the FIFO while LSR.DR is set).
//!
//! # The interrupt line
//!
//! [`Uart16550::irq_level`] is the PC's IRQ 4 line: the UART's INTRPT output
//! gated by the OUT2 pin, which on a PC enables the IRQ driver (Linux sets
//! MCR.OUT2 for that reason, "Most PC uarts need OUT2 raised to enable
//! interrupts"). In loopback the modem-control output pins are forced
//! inactive (§8.8), so the line stays low whatever MCR.OUT2 says.
//!
//! # Not modelled
//!
//! Parity, framing and break errors (there is no wire; LSR bits 2-4 and 7
//! stay 0, LCR's framing bits and set-break are stored only), the transmit
//! FIFO's depth (nothing waits in it), and the DMA mode select (FCR bit 3 is
//! stored only).

use alloc::collections::VecDeque;

/// The I/O port base of COM1.
pub const COM1_BASE: u16 = 0x3F8;
/// The ISA IRQ of COM1.
pub const COM1_IRQ: u32 = 4;
/// The number of I/O ports the UART decodes.
pub const PORT_COUNT: u16 = 8;
/// Default capacity of the output ring: the console bytes kept for
/// `xl-rs console` until it drains them.
pub const OUTPUT_CAPACITY: usize = 16 * 1024;
/// Depth of the receive FIFO (§1, "Features": 16-byte FIFOs).
pub const RX_FIFO_SIZE: usize = 16;

// --- Register offsets (§8, Table II) ----------------------------------------

/// RBR (read) / THR (write) / DLL (DLAB = 1).
pub const RBR_THR: u8 = 0;
/// IER / DLM (DLAB = 1).
pub const IER: u8 = 1;
/// IIR (read) / FCR (write).
pub const IIR_FCR: u8 = 2;
/// LCR.
pub const LCR: u8 = 3;
/// MCR.
pub const MCR: u8 = 4;
/// LSR.
pub const LSR: u8 = 5;
/// MSR.
pub const MSR: u8 = 6;
/// SCR.
pub const SCR: u8 = 7;

// --- Register fields --------------------------------------------------------

/// IER bit 0: received data available (and, with FIFOs, timeout) interrupt
/// (§8.7).
pub const IER_ERBFI: u8 = 1 << 0;
/// IER bit 1: transmitter holding register empty interrupt.
pub const IER_ETBEI: u8 = 1 << 1;
/// IER bit 2: receiver line status interrupt.
pub const IER_ELSI: u8 = 1 << 2;
/// IER bit 3: modem status interrupt.
pub const IER_EDSSI: u8 = 1 << 3;
/// The IER bits that exist; bits 7:4 are always 0 (§8.7).
const IER_MASK: u8 = 0x0F;

/// IIR bit 0: no interrupt pending (§8.6).
pub const IIR_NO_INT: u8 = 0x01;
/// IIR identification: receiver line status (priority 1, highest).
pub const IIR_LINE_STATUS: u8 = 0x06;
/// IIR identification: received data available (priority 2).
pub const IIR_RX_DATA: u8 = 0x04;
/// IIR identification: character timeout (priority 2, FIFO mode only).
pub const IIR_RX_TIMEOUT: u8 = 0x0C;
/// IIR identification: transmitter holding register empty (priority 3).
pub const IIR_THRE: u8 = 0x02;
/// IIR identification: modem status (priority 4, lowest).
pub const IIR_MODEM_STATUS: u8 = 0x00;
/// IIR bits 7:6: both set while FCR bit 0 enables the FIFOs.
pub const IIR_FIFOS_ENABLED: u8 = 0xC0;

/// FCR bit 0: enable both FIFOs (§8.5). The other bits are only programmed
/// by a write that also sets this one.
pub const FCR_ENABLE: u8 = 1 << 0;
/// FCR bit 1: clear the receive FIFO (self-clearing).
pub const FCR_CLEAR_RX: u8 = 1 << 1;
/// FCR bit 2: clear the transmit FIFO (self-clearing).
pub const FCR_CLEAR_TX: u8 = 1 << 2;
/// FCR bit 3: DMA mode select (RXRDY/TXRDY pins; stored only).
pub const FCR_DMA_MODE: u8 = 1 << 3;
/// FCR bits 7:6: receive FIFO trigger level (1, 4, 8 or 14 bytes).
pub const FCR_TRIGGER_MASK: u8 = 0xC0;

/// LCR bit 7: divisor latch access (§8.1).
pub const LCR_DLAB: u8 = 1 << 7;

/// MCR bit 0: DTR (§8.8).
pub const MCR_DTR: u8 = 1 << 0;
/// MCR bit 1: RTS.
pub const MCR_RTS: u8 = 1 << 1;
/// MCR bit 2: OUT1.
pub const MCR_OUT1: u8 = 1 << 2;
/// MCR bit 3: OUT2, which on a PC enables the IRQ line.
pub const MCR_OUT2: u8 = 1 << 3;
/// MCR bit 4: local loopback.
pub const MCR_LOOP: u8 = 1 << 4;
/// The MCR bits that exist; bits 7:5 are always 0 (§8.8).
const MCR_MASK: u8 = 0x1F;

/// LSR bit 0: data ready (§8.4).
pub const LSR_DR: u8 = 1 << 0;
/// LSR bit 1: overrun error.
pub const LSR_OE: u8 = 1 << 1;
/// LSR bit 5: transmitter holding register (or FIFO) empty.
pub const LSR_THRE: u8 = 1 << 5;
/// LSR bit 6: transmitter empty (THR and shift register).
pub const LSR_TEMT: u8 = 1 << 6;

/// MSR bit 0: delta CTS (§8.9).
pub const MSR_DCTS: u8 = 1 << 0;
/// MSR bit 1: delta DSR.
pub const MSR_DDSR: u8 = 1 << 1;
/// MSR bit 2: trailing edge of RI (RI went from active to inactive).
pub const MSR_TERI: u8 = 1 << 2;
/// MSR bit 3: delta DCD.
pub const MSR_DDCD: u8 = 1 << 3;
/// MSR bit 4: CTS.
pub const MSR_CTS: u8 = 1 << 4;
/// MSR bit 5: DSR.
pub const MSR_DSR: u8 = 1 << 5;
/// MSR bit 6: RI.
pub const MSR_RI: u8 = 1 << 6;
/// MSR bit 7: DCD.
pub const MSR_DCD: u8 = 1 << 7;
/// The four line bits.
const MSR_LINES: u8 = 0xF0;

/// The modem inputs of a connected console: carrier, data set ready and
/// clear to send, no ring. A getty opening the port without CLOCAL does not
/// wait for a carrier.
pub const CONNECTED_MODEM_INPUTS: u8 = MSR_DCD | MSR_DSR | MSR_CTS;

/// The divisor after construction: the datasheet leaves it undefined after
/// power-up (§8.3); 12 is 9600 baud, the rate a PC BIOS leaves on COM1.
const RESET_DIVISOR: u16 = 12;
/// The baud-rate generator's input: a 1.8432 MHz crystal divided by 16
/// (§8.3, Table III).
const BAUD_BASE: u32 = 1_843_200 / 16;

/// A 16550A UART (PC16550D). See the module documentation.
#[derive(Debug, Clone)]
pub struct Uart16550 {
    /// IER bits 3:0.
    pub(super) ier: u8,
    pub(super) lcr: u8,
    /// MCR bits 4:0.
    pub(super) mcr: u8,
    pub(super) scr: u8,
    /// DLM:DLL.
    pub(super) divisor: u16,
    /// FCR as last programmed: bits 0, 3 and 7:6 (the clear bits are
    /// self-clearing, bits 5:4 are reserved).
    pub(super) fcr: u8,
    /// The receive FIFO; in 16450 mode (FIFOs off) only RBR, one byte.
    pub(super) rx: RxFifo,
    /// What RBR reads when nothing has been received since the last read.
    pub(super) last_rx: u8,
    /// LSR.OE: a received byte was lost; cleared by reading LSR.
    pub(super) overrun: bool,
    /// The THRE interrupt is pending (§8.6: set when THR becomes empty or
    /// ETBEI is enabled with THR empty; cleared by reading IIR while it is
    /// the reported source, or by writing THR).
    pub(super) thre_pending: bool,
    /// The external modem inputs (MSR bits 7:4 layout), used outside
    /// loopback.
    pub(super) modem_inputs: u8,
    /// MSR bits 3:0; cleared by reading MSR.
    pub(super) msr_deltas: u8,
    pub(super) output: OutputRing,
}

impl Default for Uart16550 {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart16550 {
    /// A UART after a master reset (the datasheet's "UART Reset
    /// Configuration" table): no
    /// interrupts enabled, FIFOs off, LCR and MCR zero, LSR = 0x60, with a
    /// connected console on the modem inputs and a
    /// [`OUTPUT_CAPACITY`]-byte output ring.
    pub fn new() -> Self {
        Self::with_output_capacity(OUTPUT_CAPACITY)
    }

    /// As [`Uart16550::new`], keeping at most `capacity` bytes of output.
    pub fn with_output_capacity(capacity: usize) -> Self {
        Self {
            ier: 0,
            lcr: 0,
            mcr: 0,
            scr: 0,
            divisor: RESET_DIVISOR,
            fcr: 0,
            rx: RxFifo::new(),
            last_rx: 0,
            overrun: false,
            thre_pending: false,
            modem_inputs: CONNECTED_MODEM_INPUTS,
            msr_deltas: 0,
            output: OutputRing::new(capacity),
        }
    }

    // --- Guest accesses -----------------------------------------------------

    /// A guest read of the port at `offset` from the base. Reading RBR, IIR,
    /// LSR and MSR has the side effects the datasheet gives them.
    pub fn read(&mut self, offset: u8) -> u8 {
        match offset {
            RBR_THR if self.dlab() => self.divisor as u8,
            RBR_THR => self.read_rbr(),
            IER if self.dlab() => (self.divisor >> 8) as u8,
            IER => self.ier,
            IIR_FCR => self.read_iir(),
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => self.read_lsr(),
            MSR => self.read_msr(),
            SCR => self.scr,
            _ => 0xFF,
        }
    }

    /// A guest write of `value` to the port at `offset` from the base.
    pub fn write(&mut self, offset: u8, value: u8) {
        match offset {
            RBR_THR if self.dlab() => self.divisor = (self.divisor & 0xFF00) | u16::from(value),
            RBR_THR => self.write_thr(value),
            IER if self.dlab() => {
                self.divisor = (self.divisor & 0x00FF) | (u16::from(value) << 8);
            }
            IER => self.write_ier(value),
            IIR_FCR => self.write_fcr(value),
            LCR => self.lcr = value,
            MCR => self.write_mcr(value),
            SCR => self.scr = value,
            // LSR and MSR writes (factory test on the real part) and
            // offsets that are not ours.
            _ => {}
        }
    }

    /// The IRQ line (IRQ 4 for COM1): an enabled interrupt is pending and
    /// the OUT2 pin is active, which it is not in loopback.
    pub fn irq_level(&self) -> bool {
        self.pending_interrupt().is_some() && self.mcr & (MCR_OUT2 | MCR_LOOP) == MCR_OUT2
    }

    /// IIR as a read would return it, without the read's side effect (a
    /// pending THRE interrupt stays pending).
    pub fn iir(&self) -> u8 {
        let fifo_bits = if self.fifos_enabled() {
            IIR_FIFOS_ENABLED
        } else {
            0
        };
        fifo_bits | self.pending_interrupt().unwrap_or(IIR_NO_INT)
    }

    // --- The console side ---------------------------------------------------

    /// Offers bytes typed on the console to the receiver; returns how many
    /// it took (the caller keeps the rest for later: this is flow control,
    /// never an overrun). In 16450 mode the receiver holds one byte, with
    /// FIFOs [`RX_FIFO_SIZE`]; in loopback its serial input is disconnected
    /// (§8.8) and it takes none.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let room = self.input_room();
        for &byte in bytes.iter().take(room) {
            self.rx.push(byte);
        }
        room.min(bytes.len())
    }

    /// How many bytes [`Uart16550::push_input`] would take now.
    pub fn input_room(&self) -> usize {
        if self.mcr & MCR_LOOP != 0 {
            0
        } else {
            self.rx_capacity().saturating_sub(self.rx.len())
        }
    }

    /// Moves the oldest transmitted bytes into `out`; returns how many.
    pub fn take_output(&mut self, out: &mut [u8]) -> usize {
        self.output.take(out)
    }

    /// Transmitted bytes waiting in the output ring.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Transmitted bytes dropped, since creation, because the output ring
    /// was full (the oldest go first).
    pub fn dropped_output(&self) -> u64 {
        self.output.dropped()
    }

    /// Sets the external modem inputs, in MSR bits 7:4 layout (DCD, RI, DSR,
    /// CTS; the low nibble is ignored). Changes set MSR's delta bits, which
    /// raise a modem-status interrupt if IER.EDSSI is set. In loopback the
    /// inputs are disconnected and only take effect when loopback ends.
    pub fn set_modem_inputs(&mut self, lines: u8) {
        let before = self.modem_lines();
        self.modem_inputs = lines & MSR_LINES;
        self.note_modem_change(before);
    }

    /// The divisor latch (DLM:DLL, §8.3).
    pub fn divisor(&self) -> u16 {
        self.divisor
    }

    /// The programmed baud rate with the PC's 1.8432 MHz clock, or `None`
    /// while the divisor is 0.
    pub fn baud_rate(&self) -> Option<u32> {
        BAUD_BASE.checked_div(u32::from(self.divisor))
    }

    /// Whether FCR bit 0 enables the FIFOs.
    pub fn fifos_enabled(&self) -> bool {
        self.fcr & FCR_ENABLE != 0
    }

    // --- Register behaviour -------------------------------------------------

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    /// The receiver's capacity: RBR alone in 16450 mode.
    fn rx_capacity(&self) -> usize {
        if self.fifos_enabled() {
            RX_FIFO_SIZE
        } else {
            1
        }
    }

    /// The receive FIFO trigger level (§8.5, FCR bits 7:6).
    fn rx_trigger(&self) -> usize {
        match self.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// The highest-priority enabled interrupt condition, as an IIR
    /// identification code (§8.6, "Interrupt Control Functions").
    fn pending_interrupt(&self) -> Option<u8> {
        if self.ier & IER_ELSI != 0 && self.overrun {
            Some(IIR_LINE_STATUS)
        } else if self.ier & IER_ERBFI != 0 && !self.rx.is_empty() {
            if self.fifos_enabled() && self.rx.len() < self.rx_trigger() {
                Some(IIR_RX_TIMEOUT)
            } else {
                Some(IIR_RX_DATA)
            }
        } else if self.ier & IER_ETBEI != 0 && self.thre_pending {
            Some(IIR_THRE)
        } else if self.ier & IER_EDSSI != 0 && self.msr_deltas != 0 {
            Some(IIR_MODEM_STATUS)
        } else {
            None
        }
    }

    /// RBR: the oldest received byte. Reading an empty RBR returns the last
    /// byte again.
    fn read_rbr(&mut self) -> u8 {
        if let Some(byte) = self.rx.pop() {
            self.last_rx = byte;
        }
        self.last_rx
    }

    /// IIR: reading it while THRE is the reported source clears that
    /// interrupt (§8.6).
    fn read_iir(&mut self) -> u8 {
        let iir = self.iir();
        if self.pending_interrupt() == Some(IIR_THRE) {
            self.thre_pending = false;
        }
        iir
    }

    /// LSR: reading clears the error bits (§8.4); here only OE can be set.
    fn read_lsr(&mut self) -> u8 {
        let mut lsr = LSR_THRE | LSR_TEMT;
        if !self.rx.is_empty() {
            lsr |= LSR_DR;
        }
        if self.overrun {
            lsr |= LSR_OE;
        }
        self.overrun = false;
        lsr
    }

    /// MSR: reading clears the delta bits (§8.9).
    fn read_msr(&mut self) -> u8 {
        let msr = self.modem_lines() | self.msr_deltas;
        self.msr_deltas = 0;
        msr
    }

    /// THR: the byte leaves at once (see "No clock"); the THRE interrupt
    /// this write clears is set again because THR is empty again.
    fn write_thr(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP != 0 {
            self.loopback_receive(byte);
        } else {
            self.output.push(byte);
        }
        self.thre_pending = self.ier & IER_ETBEI != 0;
    }

    /// IER (§8.7). Enabling ETBEI while THR is empty (always, here) makes
    /// the THRE interrupt pending even if an IIR read had cleared it: Linux
    /// checks this at start-up (`serial8250_do_startup`, the UART_BUG_THRE
    /// test) and relies on it to restart transmission. Disabling ETBEI drops
    /// it. Only a change of ETBEI counts, as on the PC16550D and in QEMU, so
    /// rewriting IER with ETBEI still set does not re-raise a THRE interrupt
    /// the guest has already taken.
    fn write_ier(&mut self, value: u8) {
        let value = value & IER_MASK;
        let rising = value & !self.ier & IER_ETBEI != 0;
        if rising {
            self.thre_pending = true;
        } else if value & IER_ETBEI == 0 {
            self.thre_pending = false;
        }
        self.ier = value;
    }

    /// FCR (§8.5). A change of bit 0 empties both FIFOs; the other bits are
    /// only programmed by a write that sets bit 0.
    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifos_enabled() {
            self.rx.clear();
        }
        if enable {
            if value & FCR_CLEAR_RX != 0 {
                self.rx.clear();
            }
            // FCR_CLEAR_TX: the transmit FIFO is always empty.
            self.fcr = value & (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIGGER_MASK);
        } else {
            self.fcr &= !FCR_ENABLE;
        }
    }

    /// MCR (§8.8). In loopback the modem outputs drive the modem inputs, so
    /// a write may change MSR's lines and set its delta bits.
    fn write_mcr(&mut self, value: u8) {
        let before = self.modem_lines();
        self.mcr = value & MCR_MASK;
        self.note_modem_change(before);
    }

    /// MSR bits 7:4: the external inputs, or in loopback DTR → DSR,
    /// RTS → CTS, OUT1 → RI, OUT2 → DCD (§8.8).
    fn modem_lines(&self) -> u8 {
        if self.mcr & MCR_LOOP == 0 {
            return self.modem_inputs;
        }
        let mut lines = 0;
        if self.mcr & MCR_DTR != 0 {
            lines |= MSR_DSR;
        }
        if self.mcr & MCR_RTS != 0 {
            lines |= MSR_CTS;
        }
        if self.mcr & MCR_OUT1 != 0 {
            lines |= MSR_RI;
        }
        if self.mcr & MCR_OUT2 != 0 {
            lines |= MSR_DCD;
        }
        lines
    }

    /// Sets MSR's delta bits for what changed since `before` (§8.9): any
    /// change of CTS, DSR or DCD, and RI going inactive (trailing edge).
    fn note_modem_change(&mut self, before: u8) {
        let after = self.modem_lines();
        let changed = before ^ after;
        if changed & MSR_CTS != 0 {
            self.msr_deltas |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_deltas |= MSR_DDSR;
        }
        if changed & MSR_DCD != 0 {
            self.msr_deltas |= MSR_DDCD;
        }
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.msr_deltas |= MSR_TERI;
        }
    }

    /// A byte arriving from the transmitter in loopback. When the receiver
    /// is full the byte is an overrun (§8.4, LSR bit 1): with FIFOs it is
    /// lost and the FIFO kept; in 16450 mode it replaces RBR.
    fn loopback_receive(&mut self, byte: u8) {
        if self.rx.len() < self.rx_capacity() {
            self.rx.push(byte);
            return;
        }
        self.overrun = true;
        if !self.fifos_enabled() {
            self.rx.clear();
            self.rx.push(byte);
        }
    }
}

/// The receive FIFO: a ring of [`RX_FIFO_SIZE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RxFifo {
    buf: [u8; RX_FIFO_SIZE],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
}

impl RxFifo {
    const fn new() -> Self {
        Self {
            buf: [0; RX_FIFO_SIZE],
            head: 0,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `byte`; a full FIFO drops it (callers check for room first).
    fn push(&mut self, byte: u8) {
        if self.len >= RX_FIFO_SIZE {
            return;
        }
        if let Some(slot) = self.buf.get_mut((self.head + self.len) % RX_FIFO_SIZE) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.buf.get(self.head).copied();
        self.head = (self.head + 1) % RX_FIFO_SIZE;
        self.len -= 1;
        byte
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// The transmitted bytes, oldest first, bounded: when full, the oldest byte
/// is dropped and counted.
#[derive(Debug, Clone)]
pub(super) struct OutputRing {
    bytes: VecDeque<u8>,
    capacity: usize,
    dropped: u64,
}

impl OutputRing {
    fn new(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(capacity),
            capacity,
            dropped: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if self.capacity == 0 {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        if self.bytes.len() >= self.capacity {
            self.bytes.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.bytes.push_back(byte);
    }

    fn take(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.bytes.len());
        for (slot, byte) in out.iter_mut().zip(self.bytes.drain(..n)) {
            *slot = byte;
        }
        n
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
