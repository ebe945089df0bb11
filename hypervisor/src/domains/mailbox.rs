//! How a vCPU receives interrupts from other CPUs: its [`Mailbox`] (fixed
//! vectors, INIT, start-up IPIs) and the APIC addressing it last
//! published, from which a sender running elsewhere decides whether an
//! interrupt names it ([`Addressing::matches`]) without touching the
//! vCPU's local APIC.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::vcpu::vector_set::VectorSet;
use crate::vlapic::{ApicMode, Destination};

/// Interrupts and start-up signals for one vCPU from other CPUs.
#[derive(Debug)]
pub struct Mailbox {
    /// Fixed interrupts to accept.
    pub vectors: VectorSet,
    /// An INIT was sent.
    pub init: AtomicBool,
    /// A start-up IPI: vector + 1 (0 = none).
    pub sipi: AtomicU32,
    /// The vCPU's APIC addressing as last published by its owner, an
    /// [`Addressing`] word.
    pub addressing: AtomicU64,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Mailbox {
    /// An empty mailbox; the addressing is xAPIC's at reset (flat model,
    /// LDR 0).
    pub fn new() -> Self {
        Self {
            vectors: VectorSet::new(),
            init: AtomicBool::new(false),
            sipi: AtomicU32::new(0),
            addressing: AtomicU64::new(Addressing::RESET.0),
        }
    }

    /// Publishes the owner's addressing.
    pub fn publish(&self, a: Addressing) {
        self.addressing.store(a.0, Ordering::Release);
    }

    /// The addressing last published.
    pub fn addressing(&self) -> Addressing {
        Addressing(self.addressing.load(Ordering::Acquire))
    }
}

/// A local APIC's addressing in one word: bits 1:0 the mode (0 disabled,
/// 1 xAPIC, 2 x2APIC), bits 7:4 the xAPIC DFR model, bits 63:32 the
/// logical destination register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing(pub u64);

impl Addressing {
    /// xAPIC mode, flat model field 0, LDR 0 (what a mailbox starts with).
    pub const RESET: Self = Self(1);

    /// The word for `mode`, DFR model `dfr_model` (DFR bits 31:28) and
    /// logical destination register `ldr`.
    pub fn new(mode: ApicMode, dfr_model: u32, ldr: u32) -> Self {
        let m = match mode {
            ApicMode::Disabled => 0,
            ApicMode::XApic => 1,
            ApicMode::X2Apic => 2,
        };
        Self(m | (u64::from(dfr_model & 0xF) << 4) | (u64::from(ldr) << 32))
    }

    /// Whether the local APIC with ID `apic_id` and this addressing is
    /// named by `dest` (SDM Vol. 3A §12.6.2: physical, logical flat and
    /// cluster destination modes; §12.12.10 for x2APIC).
    pub fn matches(self, apic_id: u32, dest: &Destination) -> bool {
        let a = self.0;
        let mode = a & 3;
        let model = ((a >> 4) & 0xF) as u32;
        let ldr = (a >> 32) as u32;
        if mode == 0 {
            return false;
        }
        let broadcast = if dest.x2apic {
            dest.field == u32::MAX
        } else {
            dest.field & 0xFF == 0xFF
        };
        if broadcast {
            return true;
        }
        if dest.x2apic != (mode == 2) {
            return false;
        }
        match (dest.logical, dest.x2apic) {
            (false, true) => dest.field == apic_id,
            (false, false) => dest.field & 0xFF == apic_id & 0xFF,
            (true, true) => dest.field >> 16 == ldr >> 16 && dest.field & ldr & 0xFFFF != 0,
            (true, false) => {
                let d = dest.field & 0xFF;
                let l = ldr >> 24;
                match model {
                    0xF => d & l != 0,
                    0x0 => d >> 4 == l >> 4 && d & l & 0xF != 0,
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Addressing, Mailbox};
    use crate::vlapic::{ApicMode, Destination};

    fn dest(field: u32, logical: bool, x2apic: bool) -> Destination {
        Destination {
            field,
            logical,
            x2apic,
        }
    }

    #[test]
    fn physical_mode_names_one_apic_id() {
        let a = Addressing::new(ApicMode::XApic, 0xF, 0);
        assert!(a.matches(3, &dest(3, false, false)));
        assert!(!a.matches(3, &dest(4, false, false)));
        // xAPIC destinations are 8 bits wide.
        assert!(a.matches(3, &dest(0x103, false, false)));
        let x2 = Addressing::new(ApicMode::X2Apic, 0, 0);
        assert!(x2.matches(0x103, &dest(0x103, false, true)));
        assert!(!x2.matches(3, &dest(0x103, false, true)));
    }

    #[test]
    fn broadcasts_name_everyone_enabled() {
        for mode in [ApicMode::XApic, ApicMode::X2Apic] {
            let a = Addressing::new(mode, 0xF, 0);
            assert!(a.matches(5, &dest(0xFF, false, false)));
            assert!(a.matches(5, &dest(u32::MAX, true, true)));
        }
        let off = Addressing::new(ApicMode::Disabled, 0xF, 0x0100_0000);
        assert!(!off.matches(5, &dest(0xFF, false, false)));
        assert!(!off.matches(5, &dest(5, false, false)));
    }

    #[test]
    fn flat_logical_mode_is_a_bit_mask() {
        // DFR model 0xF (flat): LDR bits 31:24 are 8 single-bit IDs.
        let a = Addressing::new(ApicMode::XApic, 0xF, 0x0400_0000);
        assert!(a.matches(0, &dest(0x04, true, false)));
        assert!(a.matches(0, &dest(0x0C, true, false)));
        assert!(!a.matches(0, &dest(0x03, true, false)));
    }

    #[test]
    fn cluster_logical_mode_matches_cluster_and_member() {
        // DFR model 0 (cluster): LDR bits 31:28 cluster, 27:24 members.
        let a = Addressing::new(ApicMode::XApic, 0, 0x2100_0000);
        assert!(a.matches(0, &dest(0x21, true, false)));
        assert!(a.matches(0, &dest(0x23, true, false)));
        assert!(!a.matches(0, &dest(0x11, true, false)));
        assert!(!a.matches(0, &dest(0x22, true, false)));
        // Another DFR model is reserved: nothing matches.
        let bad = Addressing::new(ApicMode::XApic, 0x7, 0x2100_0000);
        assert!(!bad.matches(0, &dest(0x21, true, false)));
    }

    #[test]
    fn x2apic_logical_mode_is_cluster_and_mask() {
        // x2APIC LDR: cluster in 31:16, one bit of 15:0 (SDM §12.12.10.2).
        let a = Addressing::new(ApicMode::X2Apic, 0, 0x0002_0008);
        assert!(a.matches(0x23, &dest(0x0002_0008, true, true)));
        assert!(a.matches(0x23, &dest(0x0002_00FF, true, true)));
        assert!(!a.matches(0x23, &dest(0x0003_0008, true, true)));
        assert!(!a.matches(0x23, &dest(0x0002_0004, true, true)));
    }

    #[test]
    fn modes_must_agree() {
        // An xAPIC-format destination does not name an x2APIC and the
        // reverse (broadcasts aside).
        let x2 = Addressing::new(ApicMode::X2Apic, 0, 0);
        assert!(!x2.matches(3, &dest(3, false, false)));
        let x = Addressing::new(ApicMode::XApic, 0xF, 0);
        assert!(!x.matches(3, &dest(3, false, true)));
    }

    #[test]
    fn a_mailbox_publishes_its_addressing() {
        let m = Mailbox::new();
        assert_eq!(m.addressing(), Addressing::RESET);
        let a = Addressing::new(ApicMode::X2Apic, 0, 0x0001_0001);
        m.publish(a);
        assert_eq!(m.addressing(), a);
        assert!(m.addressing().matches(16, &dest(0x0001_0001, true, true)));
    }
}
