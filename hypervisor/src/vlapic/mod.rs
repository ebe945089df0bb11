//! The virtual local APIC of one vCPU: a pure state machine, host-tested.
//!
//! It models the local APIC of SDM Vol. 3A chapter 12 ("Advanced Programmable
//! Interrupt Controller") in both of its interfaces — xAPIC (the MMIO page,
//! reached through the APIC-access page) and x2APIC (MSRs 0x800-0x8FF) — and
//! the IA32_APIC_BASE state machine between them and the disabled state. It
//! never touches hardware: the exit handler feeds it guest accesses and time,
//! and carries out the [`Action`]s it returns (sending IPIs to other vCPUs,
//! forwarding EOIs to the IO-APIC, re-arming a host timer, moving the
//! APIC-access page).
//!
//! # Time
//!
//! Time is the guest's TSC. The APIC timer counts at the APIC bus frequency
//! divided by the divide configuration; the ratio of bus to TSC frequency is
//! fixed at creation ([`VLapicConfig`]). The caller asks
//! [`VLapic::next_timer_deadline`] when to call [`VLapic::on_time`], and
//! passes the current TSC to every access that depends on it.
//!
//! # Hardware APIC virtualization
//!
//! With TPR shadow, APIC-register virtualization and virtual-interrupt
//! delivery (SDM Vol. 3C chapter 30), the CPU itself reads and writes a
//! virtual-APIC page. This module stays the source of truth:
//! [`VLapic::to_page`] exports the registers in the page layout,
//! [`VLapic::from_page`] imports what the CPU changes on its own (TPR, IRR,
//! ISR), [`VLapic::apic_write_exit`] applies the side effects of a trapped
//! write, and [`VLapic::rvi`], [`VLapic::svi`] and
//! [`VLapic::eoi_exit_bitmap`] give the VMCS guest-interrupt status and
//! EOI-exit bitmap.
//!
//! # Choices
//!
//! - Version register 0x0005_0014: an integrated APIC (0x14) with seven LVT
//!   entries (Max LVT Entry = 5: the CMCI entry at 0x2F0 exists but is not advertised). Bit
//!   24 (EOI-broadcast suppression) is set when [`VLapicConfig::directed_eoi`]
//!   is.
//! - Only the base address 0xFEE00000 is promised; a relocation is recorded
//!   and reported ([`Action::BaseMoved`]) for the caller to act on.
//! - A software-disabled APIC accepts no fixed or lowest-priority interrupts:
//!   SDM §12.4.7.2 lists INIT, NMI, SMI and SIPI as the only messages it
//!   still responds to "normally", and the interrupts already in IRR/ISR are
//!   held. (KVM behaves the same way.)
//! - Mixed modes (an xAPIC-format destination reaching an x2APIC-mode APIC or
//!   the reverse) only match broadcasts.
#![deny(unsafe_code)]

mod access;
mod icr;
mod page;
pub mod regs;
mod state;
mod timer;

#[cfg(test)]
mod tests;

pub use icr::{DeliveryMode, Destination, Shorthand, TriggerMode};
pub use state::VLapic;

/// The architectural default APIC base address (SDM §12.4.4).
pub const DEFAULT_APIC_BASE: u64 = 0xFEE0_0000;
/// MSR IA32_APIC_BASE.
pub const MSR_IA32_APIC_BASE: u32 = 0x1B;
/// MSR IA32_TSC_DEADLINE (SDM §12.5.4.1).
pub const MSR_IA32_TSC_DEADLINE: u32 = 0x6E0;

/// Which interface the APIC presents (SDM §12.12.5, Figure 12-27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicMode {
    /// IA32_APIC_BASE.EN = 0: globally disabled; LINT0 acts as the INTR pin.
    Disabled,
    /// EN = 1, EXTD = 0: the MMIO interface.
    XApic,
    /// EN = 1, EXTD = 1: the MSR interface.
    X2Apic,
}

/// A guest access the hardware would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApicFault {
    /// Inject #GP(0): an illegal IA32_APIC_BASE transition or reserved bit,
    /// or an x2APIC MSR access that is reserved, not readable or not writable
    /// (SDM §12.12.1.2), or any x2APIC MSR while not in x2APIC mode.
    Gp,
}

/// Something the caller must do after an access, outside this vCPU's APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The guest wrote the ICR: route this IPI (SDM §12.6.1). Use
    /// [`VLapic::is_ipi_target`] on every vLAPIC of the domain to find the
    /// receivers, then [`VLapic::accept_interrupt`] for fixed and
    /// lowest-priority IPIs, [`VLapic::init_signal`] for INIT, and start the
    /// vCPU at `vector << 12` for Startup.
    SendIpi {
        /// The destination field and its format.
        dest: Destination,
        /// The destination shorthand.
        shorthand: Shorthand,
        /// The delivery mode.
        mode: DeliveryMode,
        /// The vector (for Startup, the start page number).
        vector: u8,
        /// The level bit (assert).
        level: bool,
        /// The trigger mode.
        trigger: TriggerMode,
    },
    /// A level-triggered interrupt was ended and EOI broadcasts are not
    /// suppressed: tell the IO-APIC(s) so they clear Remote IRR for this
    /// vector (SDM §12.8.5).
    EoiBroadcast(u8),
    /// The timer deadline may have changed: re-read
    /// [`VLapic::next_timer_deadline`].
    TimerChanged,
    /// IA32_APIC_BASE changed the mode: update the MSR bitmap, the APIC-access
    /// page mapping and the APIC-virtualization controls.
    ModeChanged(ApicMode),
    /// IA32_APIC_BASE moved the APIC to a new physical address.
    BaseMoved {
        /// The previous base address.
        from: u64,
        /// The new base address.
        to: u64,
    },
}

/// Capacity of [`Actions`]: no single access produces more than three.
const MAX_ACTIONS: usize = 4;

/// The actions produced by one access, in order (a small inline list: no
/// allocation on the exit path).
#[must_use = "dropping an action loses an IPI, an EOI for the IO-APIC or a timer update"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions {
    items: [Option<Action>; MAX_ACTIONS],
    len: usize,
}

impl Actions {
    /// No action.
    pub const fn none() -> Self {
        Self {
            items: [None; MAX_ACTIONS],
            len: 0,
        }
    }

    /// Appends `action` (dropped, never reached, if the list is full).
    pub fn push(&mut self, action: Action) {
        debug_assert!(self.len < MAX_ACTIONS, "vlapic: too many actions");
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(action);
            self.len += 1;
        }
    }

    /// Appends all of `other`.
    pub fn extend(&mut self, other: Actions) {
        for action in other.iter() {
            self.push(action);
        }
    }

    /// Whether there is no action.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of actions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The actions, in order.
    pub fn iter(&self) -> impl Iterator<Item = Action> + '_ {
        self.items[..self.len].iter().flatten().copied()
    }

    /// Whether `action` is among them.
    pub fn contains(&self, action: &Action) -> bool {
        self.iter().any(|a| a == *action)
    }
}

/// What happened to an interrupt offered to [`VLapic::accept_interrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Now pending in IRR.
    Accepted,
    /// Already pending in IRR: the two requests merge (SDM §12.8.4).
    AlreadyPending,
    /// Vectors 0-15 are illegal; ESR bit 6 was set (SDM §12.5.3).
    IllegalVector,
    /// The APIC is software-disabled (SVR bit 8 clear, SDM §12.4.7.2).
    SoftwareDisabled,
    /// The APIC is globally disabled (IA32_APIC_BASE.EN clear).
    HardwareDisabled,
}

/// How to build a [`VLapic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VLapicConfig {
    /// The initial APIC ID (the x2APIC ID; its low 8 bits are the xAPIC ID).
    pub apic_id: u32,
    /// Whether this is the bootstrap processor (IA32_APIC_BASE bit 8).
    pub bsp: bool,
    /// Guest TSC frequency in kHz (0 is taken as 1).
    pub tsc_khz: u64,
    /// APIC timer input (bus or core crystal) frequency in kHz (0 is taken
    /// as 1); CPUID leaf 0x15 should report the same.
    pub bus_khz: u64,
    /// The guest's MAXPHYADDR: IA32_APIC_BASE bits at and above it are
    /// reserved.
    pub phys_addr_bits: u8,
    /// Advertise and honour EOI-broadcast suppression (SVR bit 12). Only set
    /// it if the IO-APIC the guest sees has a directed-EOI register.
    pub directed_eoi: bool,
    /// Whether the guest may enter x2APIC mode (CPUID.1:ECX.x2APIC); if not,
    /// IA32_APIC_BASE.EXTD is reserved.
    pub x2apic: bool,
}

impl VLapicConfig {
    /// A configuration with x2APIC allowed, no directed EOI and a 52-bit
    /// physical address width.
    pub const fn new(apic_id: u32, bsp: bool, tsc_khz: u64, bus_khz: u64) -> Self {
        Self {
            apic_id,
            bsp,
            tsc_khz,
            bus_khz,
            phys_addr_bits: 52,
            directed_eoi: false,
            x2apic: true,
        }
    }
}
