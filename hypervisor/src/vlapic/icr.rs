//! Inter-processor interrupts: decoding the ICR into an [`Action::SendIpi`]
//! (SDM §12.6.1, §12.12.9) and deciding which APICs a destination names
//! (SDM §12.6.2, §12.12.10).

use super::regs;
use super::state::VLapic;
use super::{Acceptance, Action, Actions, ApicMode};

/// ICR delivery mode (bits 10:8, SDM §12.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// 000b: the vector, to every destination.
    Fixed,
    /// 001b: the vector, to the destination with the lowest priority.
    LowestPriority,
    /// 010b: an SMI.
    Smi,
    /// 100b: an NMI.
    Nmi,
    /// 101b with level 1: INIT.
    Init,
    /// 101b with level 0 and trigger level: INIT level de-assert (xAPIC only;
    /// processors since the Pentium 4 ignore it).
    InitDeassert,
    /// 110b: start-up IPI; the vCPU starts at real-mode address `page << 12`.
    Startup(u8),
}

/// ICR destination shorthand (bits 19:18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shorthand {
    /// 00b: the destination field decides.
    None,
    /// 01b: the sender only.
    SelfOnly,
    /// 10b: every APIC including the sender.
    AllIncludingSelf,
    /// 11b: every APIC except the sender.
    AllExcludingSelf,
}

/// ICR trigger mode (bit 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerMode {
    /// Edge-triggered.
    Edge,
    /// Level-triggered.
    Level,
}

/// The destination of an IPI as the sender wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// The destination field: 8 bits (xAPIC, ICR bits 63:56) or 32 bits
    /// (x2APIC, ICR bits 63:32).
    pub field: u32,
    /// Logical destination mode (ICR bit 11) rather than physical.
    pub logical: bool,
    /// The field is in x2APIC format (the sender is in x2APIC mode).
    pub x2apic: bool,
}

impl VLapic {
    /// Sends the IPI described by ICR `low` with destination `dest_field`.
    /// Fixed and lowest-priority IPIs with a vector below 16 are not sent and
    /// set ESR "send illegal vector" (SDM §12.5.3). Reserved delivery modes
    /// (011b, 111b) and, in x2APIC mode, INIT level de-assert (which x2APIC
    /// does not support, SDM §12.12.9) send nothing.
    pub(super) fn send_ipi(&mut self, low: u32, dest_field: u32) -> Actions {
        let x2apic = self.mode() == ApicMode::X2Apic;
        let vector = low as u8;
        let level = low & (1 << 14) != 0;
        let trigger = if low & (1 << 15) != 0 {
            TriggerMode::Level
        } else {
            TriggerMode::Edge
        };
        let mode = match (low >> 8) & 7 {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            4 => DeliveryMode::Nmi,
            5 if !level && trigger == TriggerMode::Level => {
                if x2apic {
                    return Actions::none();
                }
                DeliveryMode::InitDeassert
            }
            5 => DeliveryMode::Init,
            6 => DeliveryMode::Startup(vector),
            _ => return Actions::none(),
        };
        if matches!(mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority) && vector < 16 {
            self.signal_error(regs::ESR_SEND_ILLEGAL_VECTOR);
            return Actions::none();
        }
        let shorthand = match (low >> 18) & 3 {
            0 => Shorthand::None,
            1 => Shorthand::SelfOnly,
            2 => Shorthand::AllIncludingSelf,
            _ => Shorthand::AllExcludingSelf,
        };
        let dest = Destination {
            field: dest_field,
            logical: low & (1 << 11) != 0,
            x2apic,
        };
        let mut actions = Actions::none();
        actions.push(Action::SendIpi {
            dest,
            shorthand,
            mode,
            vector,
            level,
            trigger,
        });
        actions
    }

    /// A write of the x2APIC SELF IPI register (SDM §12.12.11): a fixed,
    /// edge-triggered IPI to this APIC only.
    pub(super) fn self_ipi(&mut self, vector: u8) {
        if vector < 16 {
            self.signal_error(regs::ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        let _: Acceptance = self.accept_interrupt(vector, false);
    }

    /// Whether this APIC is named by destination `dest_field` in physical or
    /// `logical` mode, with the field in x2APIC or xAPIC format:
    ///
    /// - physical (SDM §12.6.2.1, §12.12.10.1): the field equals the APIC ID,
    ///   or is the broadcast 0xFF (xAPIC) / 0xFFFFFFFF (x2APIC);
    /// - logical xAPIC (SDM §12.6.2.2): flat model (DFR 1111b) when the 8-bit
    ///   field and LDR bits 31:24 share a bit; cluster model (DFR 0000b) when
    ///   the high nibbles are equal and the low nibbles share a bit; 0xFF is
    ///   a broadcast;
    /// - logical x2APIC (SDM §12.12.10.2): cluster in bits 31:16 equal to the
    ///   LDR's and the 16-bit masks share a bit; 0xFFFFFFFF is a broadcast.
    ///
    /// A globally disabled APIC matches nothing; an APIC in the other mode
    /// than the field's format only matches the broadcast.
    pub fn matches_destination(&self, dest_field: u32, logical: bool, x2apic: bool) -> bool {
        let mode = self.mode();
        if mode == ApicMode::Disabled {
            return false;
        }
        let broadcast = if x2apic {
            dest_field == u32::MAX
        } else {
            dest_field & 0xFF == 0xFF
        };
        if broadcast {
            return true;
        }
        if x2apic != (mode == ApicMode::X2Apic) {
            return false;
        }
        match (logical, x2apic) {
            (false, true) => dest_field == self.cfg.apic_id,
            (false, false) => dest_field & 0xFF == self.id(),
            (true, true) => {
                let ldr = self.x2apic_ldr();
                dest_field >> 16 == ldr >> 16 && dest_field & ldr & 0xFFFF != 0
            }
            (true, false) => {
                let dest = dest_field & 0xFF;
                let ldr = self.regs.get(regs::LDR) >> 24;
                match self.regs.get(regs::DFR) >> 28 {
                    0xF => dest & ldr != 0,
                    0x0 => dest >> 4 == ldr >> 4 && dest & ldr & 0xF != 0,
                    // Reserved models match nothing.
                    _ => false,
                }
            }
        }
    }

    /// Whether an IPI with `dest` and `shorthand` reaches this APIC;
    /// `is_sender` says whether this APIC sent it (SDM §12.6.1 shorthands).
    pub fn is_ipi_target(&self, dest: &Destination, shorthand: Shorthand, is_sender: bool) -> bool {
        if self.mode() == ApicMode::Disabled {
            return false;
        }
        match shorthand {
            Shorthand::None => self.matches_destination(dest.field, dest.logical, dest.x2apic),
            Shorthand::SelfOnly => is_sender,
            Shorthand::AllIncludingSelf => true,
            Shorthand::AllExcludingSelf => !is_sender,
        }
    }

    /// The arbitration priority, to pick the receiver of a lowest-priority
    /// IPI among the matching APICs (the lowest wins; SDM §12.6.2.4).
    pub fn arbitration_priority(&self) -> u8 {
        self.apr()
    }
}
