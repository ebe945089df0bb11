//! Which of a domain's vCPUs an interrupt message names: an I/O APIC
//! message (a domU's device lines, [`crate::vdev::ioapic`]) or an MSI (dom0's
//! notification device, [`crate::vdev::notify_pci`]), matched against the
//! APIC addressing each vCPU last published in its mailbox
//! ([`crate::domains::mailbox::Addressing`]).
//!
//! Pure: the backend takes the locks, asks [`ioapic_targets`] or
//! [`msi_targets`] and carries the interrupt to each vCPU index the
//! [`Targets`] iterator yields (into the local vLAPIC, or a mailbox and a
//! wake). The iterator reads the published addressing as it goes and
//! allocates nothing, so an I/O APIC EOI or a UART interrupt costs no heap.
//!
//! - **Fixed**: every vCPU the destination names (SDM Vol. 3A §12.6.2.1
//!   physical, §12.6.2.2 logical flat and cluster, 0xFF broadcast).
//! - **Lowest priority** (and an MSI's redirection hint, §12.11.1): the
//!   first vCPU it names. The platform may pick any of them; the first
//!   keeps the choice deterministic.
//! - **Other I/O APIC delivery modes** (SMI, NMI, INIT, ExtINT): none, with
//!   the mode as the reason ([`Unrouted`]). A vCPU whose APIC is disabled is
//!   never named.
#![deny(unsafe_code)]

use crate::domains::mailbox::Addressing;
use crate::vdev::ioapic::{DeliveryMode, Interrupt};
use crate::vdev::notify_pci::X86Interrupt;
use crate::vlapic::Destination;

/// A domain's vCPUs as interrupt routing sees them: how many there are and,
/// for each, its APIC ID and the addressing it last published.
pub trait VcpuAddressing {
    /// Number of vCPUs (indexes `0..vcpus()`).
    fn vcpus(&self) -> usize;
    /// The APIC ID of vCPU `i`.
    fn apic_id(&self, i: usize) -> u32;
    /// The addressing vCPU `i` last published.
    fn addressing(&self, i: usize) -> Addressing;

    /// Whether vCPU `i` is named by `dest` ([`Addressing::matches`]).
    fn names(&self, i: usize, dest: &Destination) -> bool {
        self.addressing(i).matches(self.apic_id(i), dest)
    }
}

/// Why an interrupt message goes to no vCPU at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// An I/O APIC delivery mode that is not emulated (SMI, NMI, INIT,
    /// ExtINT): the message is dropped.
    UnsupportedMode(DeliveryMode),
}

/// The vCPU indexes an interrupt goes to, in increasing order: all those
/// its destination names, or only the first of them.
#[derive(Debug, Clone)]
pub struct Targets<'a, D: ?Sized> {
    domain: &'a D,
    dest: Destination,
    next: usize,
    first_only: bool,
}

impl<'a, D: VcpuAddressing + ?Sized> Targets<'a, D> {
    fn new(domain: &'a D, dest: Destination, first_only: bool) -> Self {
        Self {
            domain,
            dest,
            next: 0,
            first_only,
        }
    }

    /// The destination, as the local APICs read it (xAPIC format).
    pub fn destination(&self) -> Destination {
        self.dest
    }
}

impl<D: VcpuAddressing + ?Sized> Iterator for Targets<'_, D> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let n = self.domain.vcpus();
        while self.next < n {
            let i = self.next;
            self.next += 1;
            if self.domain.names(i, &self.dest) {
                if self.first_only {
                    self.next = n;
                }
                return Some(i);
            }
        }
        None
    }
}

/// The vCPUs of `domain` that I/O APIC message `m` goes to (8-bit xAPIC
/// destination, SDM Vol. 3A §12.6.2; I/O APIC delivery modes, 82093AA
/// §3.2.4).
pub fn ioapic_targets<'a, D: VcpuAddressing + ?Sized>(
    domain: &'a D,
    m: &Interrupt,
) -> Result<Targets<'a, D>, Unrouted> {
    let first_only = match m.mode {
        DeliveryMode::Fixed => false,
        DeliveryMode::LowestPriority => true,
        other => return Err(Unrouted::UnsupportedMode(other)),
    };
    let dest = Destination {
        field: u32::from(m.dest),
        logical: m.logical,
        x2apic: false,
    };
    Ok(Targets::new(domain, dest, first_only))
}

/// The vCPUs of `domain` that the decoded MSI `irq` goes to
/// ([`crate::vdev::notify_pci::MsiMessage::x86_interrupt`]; SDM Vol. 3A
/// §12.11.1): all those the destination ID names, or the first of them
/// when the redirection hint is set or the delivery mode is lowest
/// priority.
pub fn msi_targets<'a, D: VcpuAddressing + ?Sized>(
    domain: &'a D,
    irq: &X86Interrupt,
) -> Targets<'a, D> {
    let dest = Destination {
        field: u32::from(irq.destination),
        logical: irq.logical,
        x2apic: false,
    };
    Targets::new(domain, dest, irq.redirection_hint || irq.lowest_priority)
}

#[cfg(test)]
mod tests;
