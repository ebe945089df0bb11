//! Hypervisor events for dom0 (ABI 1.2): the pending-event mask
//! ([`crate::Op::EventRead`]) and the virtual PCI device through which the
//! hypervisor interrupts dom0 when an event becomes pending.
//!
//! The hypervisor keeps one mask of pending [`EVENTS`] bits. Raising an
//! event that is not pending yet makes the notification device send its MSI
//! (when dom0 has enabled it); raising one that is already pending only
//! counts it. [`crate::Op::EventRead`] returns the mask and clears it, so the
//! next event interrupts again.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, Flag, StructLayout, struct_layout};

/// A domain was created ([`crate::Op::DomainCreate`] succeeded).
pub const EVENT_DOMAIN_CREATED: u64 = 1 << 0;
/// A domain shut down: the guest powered off, rebooted or crashed (its
/// state became `SHUTDOWN`; `shutdown_reason` says why).
pub const EVENT_DOMAIN_SHUTDOWN: u64 = 1 << 1;
/// A domain was destroyed and its memory returned to the pool.
pub const EVENT_DOMAIN_DESTROYED: u64 = 1 << 2;
/// A warning or an error entered the hypervisor's log ring
/// ([`crate::Op::LogRead`]).
pub const EVENT_LOG: u64 = 1 << 3;

/// Every event bit this ABI version defines; the hypervisor never sets
/// another.
pub const EVENTS_ALL: u64 =
    EVENT_DOMAIN_CREATED | EVENT_DOMAIN_SHUTDOWN | EVENT_DOMAIN_DESTROYED | EVENT_LOG;

/// The event bits, with the names `xl-rs wait-event` prints.
pub const EVENTS: &[Flag] = &[
    Flag {
        name: "domain-created",
        c_name: "OXEN_EVENT_DOMAIN_CREATED",
        value: EVENT_DOMAIN_CREATED,
        doc: "a domain was created",
    },
    Flag {
        name: "domain-shutdown",
        c_name: "OXEN_EVENT_DOMAIN_SHUTDOWN",
        value: EVENT_DOMAIN_SHUTDOWN,
        doc: "a domain powered off, rebooted or crashed",
    },
    Flag {
        name: "domain-destroyed",
        c_name: "OXEN_EVENT_DOMAIN_DESTROYED",
        value: EVENT_DOMAIN_DESTROYED,
        doc: "a domain was destroyed",
    },
    Flag {
        name: "log",
        c_name: "OXEN_EVENT_LOG",
        value: EVENT_LOG,
        doc: "a warning or error entered the log ring",
    },
];

/// Return the mask without clearing it.
pub const EVENT_READ_PEEK: u32 = 1 << 0;

/// Every flag [`EventReadArgs::flags`] may carry in this ABI version.
pub const EVENT_READ_FLAGS_ALL: u32 = EVENT_READ_PEEK;

/// The bits of [`EventReadArgs::flags`].
pub const EVENT_READ_FLAGS: &[Flag] = &[Flag {
    name: "peek",
    c_name: "OXEN_EVENT_READ_PEEK",
    value: EVENT_READ_PEEK as u64,
    doc: "read the pending events without clearing them",
}];

/// The notification device's PCI vendor ID.
///
/// **Not a PCI-SIG assignment**: `0x4F58` ("OX") is a placeholder for
/// development and tests, unchecked against the vendors the PCI-SIG has
/// registered. A production release needs a registered vendor ID (or a
/// device ID allotted under one), changed here only (the driver and the
/// hypervisor take it from this crate).
pub const NOTIFY_PCI_VENDOR_ID: u16 = 0x4F58;
/// The notification device's PCI device ID.
pub const NOTIFY_PCI_DEVICE_ID: u16 = 0x0001;
/// Its class code (base class `0x08` "base system peripheral", sub-class
/// `0x80` "other system peripheral"; PCI Code and ID Assignment
/// Specification), as `class << 8 | subclass`.
pub const NOTIFY_PCI_CLASS: u16 = 0x0880;

/// Argument of [`crate::Op::EventRead`] (1.2), by guest-physical address in
/// RDI.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EventReadArgs {
    /// Out: the pending [`EVENTS`] bits (cleared by the read unless
    /// [`EVENT_READ_PEEK`]).
    pub pending: u64,
    /// Out: events raised since boot (each raise counts, pending or not).
    pub raised: u64,
    /// Out: MSIs the notification device has sent to dom0 since boot.
    pub interrupts: u64,
    /// In: [`EVENT_READ_FLAGS`] bits.
    pub flags: u32,
    /// Must be 0.
    pub reserved: u32,
}

crate::assert_layout!(EventReadArgs, size = 32, {
    pending: 0,
    raised: 8,
    interrupts: 16,
    flags: 24,
    reserved: 28,
});

impl EventReadArgs {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        EventReadArgs,
        "oxen_event_read_args",
        "Argument of OXEN_OP_EVENT_READ (1.2, by guest-physical address in RDI).",
        [
            pending: CType::U64 => "out: OXEN_EVENT_* bits pending (cleared unless PEEK)",
            raised: CType::U64 => "out: events raised since boot",
            interrupts: CType::U64 => "out: MSIs the notification device sent since boot",
            flags: CType::U32 => "in: OXEN_EVENT_READ_* bits",
            reserved: CType::U32 => "must be 0",
        ]
    );

    /// Whether `flags` and `reserved` hold only what this version defines.
    #[must_use]
    pub const fn valid(&self) -> bool {
        self.flags & !EVENT_READ_FLAGS_ALL == 0 && self.reserved == 0
    }
}

/// The names of the [`EVENTS`] bits set in `mask`, in bit order; bits this
/// version does not define are left out.
pub fn event_names(mask: u64) -> impl Iterator<Item = &'static str> {
    EVENTS
        .iter()
        .filter(move |flag| mask & flag.value != 0)
        .map(|flag| flag.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_distinct_single_bits_and_all_listed() {
        let mut all = 0;
        for flag in EVENTS {
            assert_eq!(flag.value.count_ones(), 1, "{}", flag.name);
            assert_eq!(all & flag.value, 0, "{}", flag.name);
            all |= flag.value;
        }
        assert_eq!(all, EVENTS_ALL);
    }

    #[test]
    fn names_follow_the_bits() {
        let names: std::vec::Vec<_> =
            event_names(EVENT_DOMAIN_DESTROYED | EVENT_DOMAIN_CREATED | 1 << 40).collect();
        assert_eq!(names, ["domain-created", "domain-destroyed"]);
        assert_eq!(event_names(0).count(), 0);
    }

    #[test]
    fn reserved_and_unknown_flags_are_invalid() {
        let mut args = EventReadArgs {
            flags: EVENT_READ_PEEK,
            ..EventReadArgs::default()
        };
        assert!(args.valid());
        args.flags = 2;
        assert!(!args.valid());
        args.flags = 0;
        args.reserved = 1;
        assert!(!args.valid());
    }
}
