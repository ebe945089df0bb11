//! What a domU's access to a guest-physical address that its EPT does not
//! map means (an EPT violation, SDM Vol. 3C §29.3.3.2).
//!
//! A domU's EPT maps its RAM and the local APIC's page, nothing else. The
//! I/O APIC's page is emulated (`vmx_backend::domu_mmio`). Every other
//! address is *unbacked*: no RAM and no device of the domain's platform
//! lives there. As on a Xen HVM guest, whose device model answers
//! unassigned addresses, or on a PC's bus where nobody claims the cycle, a
//! load from it reads all-ones and a store to it is dropped; the domain
//! goes on. Nothing of the host is behind such an address: its EPT has no
//! entry for it, so the access never reaches memory at all.
//!
//! An access inside the domain's own RAM should never fault (the RAM is
//! mapped read-write-execute); if one does, it is a real fault and the
//! caller stops the domain.
#![deny(unsafe_code)]

pub use crate::vdev::ioapic::IOAPIC_BASE;

/// Bytes in a page.
const PAGE: u64 = 0x1000;

/// What a faulting domU access is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomuGpa {
    /// The emulated I/O APIC, at this offset in its page.
    IoApic {
        /// Offset from [`IOAPIC_BASE`].
        offset: u64,
    },
    /// Nothing: reads all-ones, writes dropped.
    Unbacked,
    /// Inside the domain's RAM (`[start, end)` ranges): a real fault.
    Ram,
}

/// Classifies the guest-physical address `gpa` of an EPT violation of a
/// domU whose RAM is `ram`.
pub fn classify(gpa: u64, ram: &[(u64, u64)]) -> DomuGpa {
    if (IOAPIC_BASE..IOAPIC_BASE + PAGE).contains(&gpa) {
        return DomuGpa::IoApic {
            offset: gpa - IOAPIC_BASE,
        };
    }
    if ram.iter().any(|&(start, end)| start <= gpa && gpa < end) {
        return DomuGpa::Ram;
    }
    DomuGpa::Unbacked
}

/// How the faulting access was made (from the EPT violation's exit
/// qualification, SDM Vol. 3C Table 28-7, and the IDT-vectoring
/// information, §28.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    /// An instruction fetch.
    pub fetch: bool,
    /// The CPU walking the guest's page tables.
    pub paging_structure: bool,
    /// The delivery of an interrupt or exception (IDT, stack).
    pub during_delivery: bool,
}

/// Why an access outside the domain's RAM cannot be emulated, if it
/// cannot: only the data access of the instruction at RIP is decoded and
/// carried out; code, page tables, an IDT or a stack outside its RAM are
/// the guest's own fatal error (the caller stops the domain, as Xen does
/// when its emulator gives up).
pub fn not_emulable(a: Access) -> Option<&'static str> {
    if a.fetch {
        Some("an instruction fetch from outside its RAM")
    } else if a.paging_structure {
        Some("its page tables lie outside its RAM")
    } else if a.during_delivery {
        Some("an interrupt or exception delivery touched memory outside its RAM")
    } else {
        None
    }
}

/// What a load of `bytes` (1, 2, 4 or 8) from an unbacked address reads:
/// all-ones of that width.
pub const fn unbacked_read(bytes: u8) -> u64 {
    if bytes >= 8 {
        u64::MAX
    } else {
        (1u64 << (bytes as u32 * 8)) - 1
    }
}

/// Whether the `count`th unbacked read, or write, of a domain (each counted
/// from 1) is logged: the first four, then at each power of two, so a guest that
/// scans its address space cannot flood the log while the count still shows.
pub const fn log_unbacked(count: u64) -> bool {
    count <= 4 || count.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: &[(u64, u64)] = &[(0, 0x9F000), (0x10_0000, 0x1000_0000)];

    #[test]
    fn classes() {
        assert_eq!(classify(0xFEC0_0010, RAM), DomuGpa::IoApic { offset: 0x10 });
        assert_eq!(
            classify(0xFEC0_0FFF, RAM),
            DomuGpa::IoApic { offset: 0xFFF }
        );
        assert_eq!(classify(0xFEC0_1000, RAM), DomuGpa::Unbacked);
        assert_eq!(classify(0xFEBF_FFFF, RAM), DomuGpa::Unbacked);
        assert_eq!(classify(0x1000, RAM), DomuGpa::Ram);
        assert_eq!(classify(0x0FFF_FFFF, RAM), DomuGpa::Ram);
        assert_eq!(
            classify(0x9F000, RAM),
            DomuGpa::Unbacked,
            "the hole below 1 MiB"
        );
        assert_eq!(
            classify(0x1000_0000, RAM),
            DomuGpa::Unbacked,
            "just past the RAM"
        );
        assert_eq!(
            classify(0x3000_0000, RAM),
            DomuGpa::Unbacked,
            "dom0's memory in host terms"
        );
        assert_eq!(classify(u64::MAX, RAM), DomuGpa::Unbacked);
        assert_eq!(classify(0, &[]), DomuGpa::Unbacked);
    }

    #[test]
    fn only_data_accesses_are_emulated() {
        assert_eq!(not_emulable(Access::default()), None);
        let fetch = Access {
            fetch: true,
            ..Access::default()
        };
        assert!(not_emulable(fetch).is_some_and(|w| w.contains("fetch")));
        let walk = Access {
            paging_structure: true,
            ..Access::default()
        };
        assert!(not_emulable(walk).is_some_and(|w| w.contains("page tables")));
        let delivery = Access {
            during_delivery: true,
            ..Access::default()
        };
        assert!(not_emulable(delivery).is_some_and(|w| w.contains("delivery")));
    }

    #[test]
    fn reads_are_all_ones_of_their_width() {
        assert_eq!(unbacked_read(1), 0xFF);
        assert_eq!(unbacked_read(2), 0xFFFF);
        assert_eq!(unbacked_read(4), 0xFFFF_FFFF);
        assert_eq!(unbacked_read(8), u64::MAX);
        assert_eq!(unbacked_read(16), u64::MAX);
    }

    #[test]
    fn logging_is_bounded() {
        let logged = (1..=1_000_000u64).filter(|&n| log_unbacked(n)).count();
        assert_eq!(logged, 4 + 17, "1..4, then 8, 16, ..., 2^19");
        assert!(log_unbacked(1) && log_unbacked(4) && log_unbacked(8) && !log_unbacked(5));
    }
}
