//! A domU's interrupt lines and their delivery, on the VT-x side: the
//! UART (I/O APIC pin 4) and the SCI drive inputs of the domain's emulated
//! I/O APIC (`vdev::ioapic`); the message an input raises goes to the
//! vCPUs the pure [`irq_route::ioapic_targets`] names, into the vLAPIC of
//! the one running here or through the others' mailboxes and a wake
//! ([`super::vcpu_homes`]). Messages from the I/O APIC's MMIO page
//! ([`super::domu_mmio`]) and from its EOIs take the same [`deliver`].

use super::Vcpu;
use super::domain::Domain;
use crate::domains::irq_route::{self, Unrouted};
use crate::vdev::ioapic::Interrupt;

/// The emulated UART's I/O APIC pin (IRQ 4, identity-mapped GSI).
pub const UART_PIN: u32 = 4;

/// Sends an I/O APIC message to the domain's vCPUs
/// ([`irq_route::ioapic_targets`]): the one running here takes it at once,
/// others through their mailbox and a wake.
pub fn deliver(v: &mut Vcpu, m: Interrupt) {
    let targets = match irq_route::ioapic_targets(&*v.domain, &m) {
        Ok(targets) => targets,
        Err(Unrouted::UnsupportedMode(_)) => {
            log::debug!(
                "{}: I/O APIC delivery mode {:?} not emulated, dropped",
                v.domain.label(),
                m.mode
            );
            return;
        }
    };
    // The targets are read lazily from the domain (no list is built); this
    // vCPU, if named, takes the vector after the others are posted.
    let mut here = false;
    for j in targets {
        if j == v.index {
            here = true;
        } else {
            post(&v.domain, j, m.vector);
        }
    }
    if here {
        v.sync_vlapic_from_page();
        v.vlapic.accept_interrupt(m.vector, m.level_triggered);
        v.sync_vlapic_to_page();
    }
}

/// Queues `vector` for vCPU `j` of `domain` and wakes it.
pub fn post(domain: &Domain, j: usize, vector: u8) {
    domain.mailbox(j).vectors.set(vector);
    super::vcpu_homes::wake(domain, j);
}

/// Updates the UART's interrupt line after an access, from any CPU:
/// vCPU `from` of the domain is running here if it is `Some`.
pub fn uart_line(v: Option<&mut Vcpu>, domain: &Domain) {
    let Some(parts) = domain.domu.as_ref() else {
        return;
    };
    let level = parts.uart.lock().irq_level();
    set_line(v, domain, UART_PIN, level);
}

/// Updates the SCI after a PM1 access or a power-button press, from any
/// CPU (as [`uart_line`]).
pub fn sci_line(v: Option<&mut Vcpu>, domain: &Domain) {
    let Some(parts) = domain.domu.as_ref() else {
        return;
    };
    let level = parts.pm1.lock().sci_level();
    set_line(
        v,
        domain,
        u32::from(crate::domu::acpi_tables::DEFAULT_SCI_IRQ),
        level,
    );
}

/// Sets I/O APIC input `pin` of a domU to `level` and delivers what that
/// raises: on vCPU `v` if it is this domain's and running here, else
/// through the first destination vCPU's mailbox.
fn set_line(v: Option<&mut Vcpu>, domain: &Domain, pin: u32, level: bool) {
    let Some(parts) = domain.domu.as_ref() else {
        return;
    };
    let message = parts.ioapic.lock().set_irq(pin, level);
    let Some(m) = message else { return };
    match v {
        Some(v) => deliver(v, m),
        None => {
            // Not on a vCPU of this domain (a console write or a shutdown
            // request from dom0): the first vCPU the message names, whatever
            // its delivery mode; unsupported modes are dropped silently.
            let first = irq_route::ioapic_targets(domain, &m)
                .ok()
                .and_then(|mut targets| targets.next());
            if let Some(j) = first {
                post(domain, j, m.vector);
            }
        }
    }
}
