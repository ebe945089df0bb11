//! A polled 16550 UART driver for the hypervisor console (COM1 by default).
//! Register map: PC16550D datasheet, "Register Summary".

use super::port::{inb, outb};

const DATA: u16 = 0;
const INT_ENABLE: u16 = 1;
const FIFO_CTRL: u16 = 2;
const LINE_CTRL: u16 = 3;
const MODEM_CTRL: u16 = 4;
const LINE_STATUS: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// A 16550-compatible serial port at an I/O base.
#[derive(Debug, Clone, Copy)]
pub struct SerialPort {
    base: u16,
}

/// COM1's legacy I/O base.
pub const COM1: u16 = 0x3F8;
/// COM2's legacy I/O base.
pub const COM2: u16 = 0x2F8;

impl SerialPort {
    /// A port at `base`, not yet initialised.
    pub const fn new(base: u16) -> Self {
        Self { base }
    }

    /// 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on, no interrupts.
    pub fn init(&self) {
        outb(self.base + INT_ENABLE, 0x00);
        outb(self.base + LINE_CTRL, 0x80); // DLAB on
        outb(self.base + DATA, 0x01); // divisor low: 115200 / 1
        outb(self.base + INT_ENABLE, 0x00); // divisor high
        outb(self.base + LINE_CTRL, 0x03); // 8N1, DLAB off
        outb(self.base + FIFO_CTRL, 0xC7); // enable + clear FIFOs, 14-byte threshold
        outb(self.base + MODEM_CTRL, 0x03); // DTR, RTS
    }

    /// Sends one byte, waiting (bounded) for room in the transmitter.
    pub fn write_byte(&self, byte: u8) {
        for _ in 0..100_000 {
            if inb(self.base + LINE_STATUS) & LSR_THR_EMPTY != 0 {
                break;
            }
        }
        outb(self.base + DATA, byte);
    }

    /// Sends a string, turning `\n` into `\r\n`.
    pub fn write_str(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }

    /// A byte received, if one is waiting.
    pub fn try_read(&self) -> Option<u8> {
        if inb(self.base + LINE_STATUS) & 1 != 0 {
            Some(inb(self.base + DATA))
        } else {
            None
        }
    }
}
