//! dom0's notification device on the hardware side: the PCI configuration
//! ports dom0 now traps (0xCF8 to 0xCFF), the device's slot, and its MSI.
//!
//! - **Ports.** dom0's `CONFIG_ADDRESS` value is kept here (its "latch");
//!   a data-port access that the latch points at the device is served from
//!   the model ([`crate::vdev::notify_pci`]); every other one is done on the
//!   hardware after writing the latch to `CONFIG_ADDRESS`, under one lock,
//!   so that dom0's vCPUs (and the hypervisor) never interleave an
//!   address and a data access. Which access is which is the pure
//!   [`io_policy::dom0_pci_port`], and what an IN that runs past 0xCFF
//!   reads is [`pci_config::clip_data_read`].
//! - **Slot.** At boot, the first bus-0 device number, from 31 down, whose
//!   function 0 reads vendor ID 0xFFFF on the hardware (an empty slot).
//! - **Limitation.** Only the legacy mechanism is trapped. A dom0 that
//!   reaches configuration space through ECAM (memory-mapped, announced by
//!   an ACPI MCFG table) reads the real, empty slot there and never sees the
//!   device; the hypervisor says so at boot when it finds an MCFG table.
//!   Bochs' i440FX has none, so Linux uses the ports there.
//! - **Events.** [`raise`] makes event bits pending
//!   ([`crate::events::EVENTS`]) and, for a bit that was not pending yet,
//!   has the device signal: its MSI message is decoded as the local APICs
//!   would and the vector is posted to the dom0 vCPU(s) it names, through
//!   their mailboxes and a kick IPI, as for dom0's own IPIs. [`raise`] is
//!   safe from any CPU at any time (the logger calls it): it takes the
//!   device lock only with a bounded wait, never logs above debug level and
//!   never panics.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::x86_64::port::{inb, inl, inw, outb, outl, outw};
use crate::arch::x86_64::{idt, lapic};
use crate::domains::irq_route;
use crate::events::EVENTS;
use crate::vcpu::io_policy::{self, PciPortAccess};
use crate::vdev::notify_pci::{MsiMessage, NotifyPci};
use crate::vdev::pci_config::{self, Bdf, CONFIG_ADDRESS, CONFIG_DATA, ConfigAddress};

/// The configuration ports as dom0 sees them.
struct Ports {
    /// dom0's last dword written to `CONFIG_ADDRESS`.
    latch: u32,
    /// The notification device and its slot, once placed.
    device: Option<(Bdf, NotifyPci)>,
}

/// Held for every access to the hardware's configuration ports and to the
/// model; never while logging.
static PORTS: spin::Mutex<Ports> = spin::Mutex::new(Ports {
    latch: 0,
    device: None,
});

/// An ACPI MCFG table was found at boot (dom0 may use ECAM).
static MCFG_PRESENT: AtomicBool = AtomicBool::new(false);

/// Records that the firmware announces ECAM (an ACPI MCFG table).
pub fn note_mcfg() {
    MCFG_PRESENT.store(true, Ordering::Relaxed);
}

fn port_in(port: u16, size: u8) -> u32 {
    match size {
        1 => u32::from(inb(port)),
        2 => u32::from(inw(port)),
        _ => inl(port),
    }
}

fn port_out(port: u16, size: u8, value: u32) {
    match size {
        1 => outb(port, value as u8),
        2 => outw(port, value as u16),
        _ => outl(port, value),
    }
}

/// Chooses the device's slot and presents it to dom0: called once, before
/// dom0 starts. Logs the slot, or why there is none.
pub fn init() {
    let chosen = {
        let mut p = PORTS.lock();
        let slot = (0..32u8)
            .rev()
            .filter_map(|dev| Bdf::new(0, dev, 0))
            .find(|&bdf| {
                outl(CONFIG_ADDRESS, ConfigAddress::new(bdf, 0).0);
                inl(CONFIG_DATA) & 0xFFFF == 0xFFFF
            });
        outl(CONFIG_ADDRESS, p.latch);
        p.device = slot.map(|bdf| (bdf, NotifyPci::new()));
        slot
    };
    let Some(bdf) = chosen else {
        log::warn!(
            "notify: no free device number on PCI bus 0; dom0 gets no notification device (no event interrupts)"
        );
        return;
    };
    log::info!(
        "notify: PCI device {:04x}:{:04x} (class {:04x}, MSI) at {bdf}, the first free bus-0 slot from 31 down",
        dom0_abi::event::NOTIFY_PCI_VENDOR_ID,
        dom0_abi::event::NOTIFY_PCI_DEVICE_ID,
        dom0_abi::event::NOTIFY_PCI_CLASS
    );
    if MCFG_PRESENT.load(Ordering::Relaxed) {
        log::warn!(
            "notify: the firmware has an ACPI MCFG table: dom0 may reach configuration space through ECAM, which is not trapped, and then never sees the notification device (poll() on /dev/hvctl fails); only the legacy ports 0xCF8/0xCFC are emulated"
        );
    } else {
        log::info!(
            "notify: presented through the legacy configuration ports 0xCF8/0xCFC only (no ACPI MCFG here; ECAM is not trapped)"
        );
    }
}

/// Carries out dom0's access of `size` bytes at `port` (`value`: what an
/// OUT writes) when it is a configuration access: returns `None` when it is
/// not (another port, or a byte or word at 0xCF8 to 0xCFB, which the
/// caller treats as ordinary port I/O), else the value an IN reads (0 for
/// an OUT).
pub fn dom0_config_io(port: u16, size: u8, input: bool, value: u32) -> Option<u32> {
    let mut send = None;
    let result = {
        let mut guard = PORTS.lock();
        let p = &mut *guard;
        let notify = p.device.as_ref().map(|(bdf, _)| *bdf);
        match io_policy::dom0_pci_port(p.latch, port, size, notify)? {
            PciPortAccess::Plain => return None,
            PciPortAccess::Address => {
                if input {
                    // What the host bridge makes of it (reserved bits).
                    outl(CONFIG_ADDRESS, p.latch);
                    inl(CONFIG_ADDRESS)
                } else {
                    p.latch = value;
                    outl(CONFIG_ADDRESS, value);
                    0
                }
            }
            PciPortAccess::Hardware => {
                outl(CONFIG_ADDRESS, p.latch);
                if input {
                    port_in(port, size)
                } else {
                    port_out(port, size, value & pci_config::size_mask(size));
                    0
                }
            }
            PciPortAccess::Notify { offset, bytes } => {
                let dev = p.device.as_mut().map(|(_, d)| d)?;
                if input {
                    pci_config::clip_data_read(dev.read(offset, bytes), bytes, size)
                } else {
                    send = dev.write(offset, bytes, value);
                    0
                }
            }
        }
    };
    if let Some(m) = send {
        deliver(m);
    }
    Some(result)
}

/// Raises hypervisor events `bits` (`dom0_abi::event`); when one of them
/// was not pending, the device signals dom0. Safe from any CPU, any time.
pub fn raise(bits: u64) {
    if !EVENTS.raise(bits) {
        return;
    }
    // Bounded: a CPU that stopped holding the lock (an exception inside the
    // port path) must not hang the others; the event stays pending and
    // dom0's next read sees it.
    let mut message = None;
    for _ in 0..1_000_000 {
        if let Some(mut p) = PORTS.try_lock() {
            message = p.device.as_mut().and_then(|(_, d)| d.signal());
            break;
        }
        core::hint::spin_loop();
    }
    if let Some(m) = message {
        deliver(m);
    }
}

/// Posts the interrupt `m` asks for to dom0's vCPUs: all those the
/// destination names, or the first of them for a redirection hint or
/// lowest-priority delivery ([`irq_route::msi_targets`]; SDM Vol. 3A
/// §12.11.1: the hint lets the platform pick one).
fn deliver(m: MsiMessage) {
    let irq = match m.x86_interrupt() {
        Ok(irq) => irq,
        Err(why) => {
            // Debug level only: a warning would raise a LOG event, which
            // would try to signal again.
            log::debug!("notify: MSI {m:x?} not delivered: {why:?}");
            return;
        }
    };
    let Some(dom0) = crate::dom0_launch::DOM0.get() else {
        return;
    };
    let mut sent = false;
    for j in irq_route::msi_targets(&**dom0, &irq) {
        dom0.mailbox(j).vectors.set(irq.vector);
        // dom0's vCPU j runs on the CPU with its APIC ID; the IPI takes it
        // out of the guest or out of HLT (this CPU included: the IPI is
        // taken at its next VM entry, or when it waits), the wake makes the
        // scheduler run it.
        lapic::send_fixed(dom0.vcpu_apic_id(j), idt::VECTOR_IPI);
        super::vcpu_homes::wake(dom0, j);
        sent = true;
    }
    if sent {
        EVENTS.count_interrupt();
    } else {
        log::debug!("notify: MSI {m:x?}: no dom0 vCPU matches its destination");
    }
}
