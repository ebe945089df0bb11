//! Which pending virtual interrupt the CPU may see at a VM entry, under
//! virtual-interrupt delivery (SDM Vol. 3C §30.2).
//!
//! The architecture delivers a recognized virtual interrupt (RVI's class
//! above VPPR's) only at an instruction boundary where RFLAGS.IF = 1, there
//! is no blocking by STI or MOV SS, and interrupt-window exiting is 0
//! (§30.2.2). Bochs 2.7 does not always wait: when a physical interrupt
//! arrives while the guest runs with IF = 0 it can deliver the recognized
//! virtual interrupt instead of taking the external-interrupt exit. Linux
//! then takes an interrupt inside an interrupts-off section; dom0 hung that
//! way, spinning on a runqueue lock (docs/testing.md, "Known problems").
//!
//! So the hypervisor never leaves an interrupt recognizable that the guest
//! cannot take. At every entry [`gate`] decides, from RFLAGS.IF, the
//! interruptibility state and the vLAPIC's IRR/ISR/TPR:
//!
//! - the highest pending vector is deliverable and the guest can take it:
//!   RVI names it (the CPU delivers it at once); if more vectors wait behind
//!   it, its EOI and those of the vectors in service exit, so that the next
//!   one is judged again at the entry after that EOI;
//! - deliverable but the guest cannot take it now (IF = 0, STI or MOV-SS
//!   blocking, or an event being injected at this entry): RVI stays 0 and
//!   interrupt-window exiting is requested; the window exit comes when the
//!   guest can take it (§26.7.5), and the next entry delivers it;
//! - held back by a vector in service: RVI stays 0 and the EOIs of the
//!   in-service vectors exit, so the entry after that EOI judges again (an
//!   EOI virtualized without an exit would re-evaluate RVI on its own,
//!   whatever IF is, §30.1.4);
//! - held back by the TPR alone: RVI names it, as the architecture says;
//!   the CPU re-evaluates when the guest lowers its TPR (§30.1.2). (Linux
//!   never lowers its TPR, 0x10, while it runs.)
//!
//! On real hardware each of these is what the CPU would do anyway; the
//! cost is a window exit or an EOI exit where several interrupts meet.

use crate::vlapic::VLapic;

/// RFLAGS.IF (SDM Vol. 1 §3.4.3).
const RFLAGS_IF: u64 = 1 << 9;
/// Interruptibility-state bits 0 (blocking by STI) and 1 (by MOV SS)
/// (SDM Vol. 3C Table 25-3).
const BLOCKING_STI_MOV_SS: u32 = 0b11;
/// Valid bit of the VM-entry interruption-information field (Table 25-17).
const ENTRY_EVENT_VALID: u32 = 1 << 31;

/// Whether the guest can take an external interrupt at the next VM entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestWindow {
    /// RFLAGS.IF is set.
    pub interrupts_enabled: bool,
    /// Blocking by STI or by MOV SS/POP SS.
    pub shadowed: bool,
    /// An event is injected at this entry (its handler may run with IF = 0).
    pub injecting: bool,
}

impl GuestWindow {
    /// From the guest's RFLAGS, its interruptibility-state field and the
    /// VM-entry interruption-information field.
    pub fn from_guest_state(rflags: u64, interruptibility: u32, entry_interruption: u32) -> Self {
        Self {
            interrupts_enabled: rflags & RFLAGS_IF != 0,
            shadowed: interruptibility & BLOCKING_STI_MOV_SS != 0,
            injecting: entry_interruption & ENTRY_EVENT_VALID != 0,
        }
    }

    /// The guest takes an external interrupt at the next instruction boundary.
    pub fn open(self) -> bool {
        self.interrupts_enabled && !self.shadowed && !self.injecting
    }
}

/// What the next VM entry shows the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The guest-interrupt status' RVI (bits 7:0): 0 when nothing may be
    /// recognized.
    pub rvi: u8,
    /// Its SVI (bits 15:8): the highest in-service vector.
    pub svi: u8,
    /// Request an interrupt-window exit.
    pub window_exiting: bool,
    /// Vectors whose EOI must exit, besides those the caller always makes
    /// exit (level-triggered ones, dom0's device vectors); VMCS layout.
    pub eoi_exits: [u64; 4],
    /// A pending vector is kept out of RVI: RVI is not the highest IRR
    /// vector, so the caller must judge again before the next entry even
    /// when RVI reads 0.
    pub held: bool,
}

impl Gate {
    /// The guest-interrupt status field: SVI in bits 15:8, RVI in 7:0.
    pub fn interrupt_status(&self) -> u16 {
        u16::from(self.svi) << 8 | u16::from(self.rvi)
    }
}

/// Decides what the CPU may see of `lapic`'s pending vectors at the next
/// entry, given whether the guest can take an interrupt there.
pub fn gate(window: GuestWindow, lapic: &VLapic) -> Gate {
    let svi = lapic.svi();
    let none = Gate {
        rvi: 0,
        svi,
        window_exiting: false,
        eoi_exits: [0; 4],
        held: false,
    };
    let highest = lapic.rvi();
    if highest == 0 {
        return none;
    }
    if lapic.highest_pending() == Some(highest) {
        if !window.open() {
            return Gate {
                window_exiting: true,
                held: true,
                ..none
            };
        }
        let eoi_exits = if lapic.pending_count() > 1 {
            let mut bits = lapic.in_service_bitmap();
            bits[usize::from(highest / 64)] |= 1 << (highest % 64);
            bits
        } else {
            [0; 4]
        };
        return Gate {
            rvi: highest,
            eoi_exits,
            ..none
        };
    }
    if svi >> 4 >= highest >> 4 {
        return Gate {
            eoi_exits: lapic.in_service_bitmap(),
            held: true,
            ..none
        };
    }
    Gate {
        rvi: highest,
        ..none
    }
}

#[cfg(test)]
mod tests;
