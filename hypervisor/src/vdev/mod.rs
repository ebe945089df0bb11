//! Emulated devices: the platform of guest domains (domUs) and dom0's
//! notification device; pure state machines, host-tested.
//!
//! Each model is the register interface of one chip as the guest's drivers
//! see it. None touches hardware or keeps time: the exit handler decodes the
//! guest's port or MMIO access, calls the model, and carries out what comes
//! back (an interrupt message for the local APICs, a changed IRQ line, bytes
//! for the console). Every register value a guest writes is accepted without
//! a panic; what the chip leaves undefined is resolved in each model's
//! documentation.
//!
//! - [`uart16550`]: a 16550A UART at COM1 (ports 0x3F8-0x3FF, IRQ 4), the
//!   domU console; transmitted bytes collect in a bounded ring for
//!   `xl-rs console`.
//! - [`notify_pci`]: dom0's notification device, a PCI function with an
//!   MSI capability, presented through the legacy configuration ports
//!   ([`pci_config`] decodes them).
//! - [`ioapic`]: an 82093AA-style I/O APIC with 24 pins at 0xFEC00000,
//!   which turns pin levels into interrupt messages for the virtual local
//!   APICs ([`crate::vlapic`]), and takes their EOI broadcasts back for
//!   level-triggered interrupts.
//! - [`pm1_events`]: the ACPI PM1 status and enable registers with the
//!   fixed power button, whose SCI is a level on the I/O APIC's SCI pin.
//!
//! Wiring them: after each UART access (or [`Uart16550::push_input`]), pass
//! [`Uart16550::irq_level`] to [`IoApic::set_irq`] for pin
//! [`uart16550::COM1_IRQ`] (ISA IRQs map 1:1 onto I/O APIC pins unless the
//! guest's MADT overrides them), and hand any [`ioapic::Interrupt`]
//! to the destination vLAPICs. The vLAPIC's [`crate::vlapic::Action::EoiBroadcast`]
//! goes to [`IoApic::eoi`]. This I/O APIC has no EOI register, so the
//! vLAPIC must not advertise directed EOI.
#![deny(unsafe_code)]

pub mod ioapic;
pub mod notify_pci;
pub mod pci_config;
pub mod pm1_events;
pub mod uart16550;

#[cfg(test)]
mod tests;

pub use ioapic::{DeliveryMode, Interrupt, Interrupts, IoApic};
pub use pm1_events::Pm1Events;
pub use uart16550::Uart16550;
