//! Host tests of the emulated devices.
//!
//! Set-up writes whose result a test does not care about simply drop it.
#![allow(unused_must_use)]

mod ioapic;
mod ioapic_prop;
mod uart16550;
mod uart_linux;
mod uart_prop;
