//! The argument of [`super::Ioctl::EventRead`] (ABI 1.2): hypervisor events
//! as one open file of `/dev/hvctl` sees them.
//!
//! The driver is the only caller of [`crate::Op::EventRead`]: whenever the
//! notification device interrupts, and on every `poll()` and
//! [`super::Ioctl::EventRead`], it takes the hypervisor's pending mask and
//! adds it to the mask of every open file, so that each file (each `xl-rs`
//! process) sees every event raised while it was open, whoever else reads.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, Flag, StructLayout, struct_layout};

/// [`IoctlEventRead::status`]: the driver has bound the notification device
/// and its MSI, so `poll()` on `/dev/hvctl` wakes when events arrive.
/// Without it `poll()` reports `POLLERR` and the caller must read
/// [`super::Ioctl::EventRead`] periodically instead.
pub const EVENT_STATUS_NOTIFY: u32 = 1 << 0;

/// The bits of [`IoctlEventRead::status`].
pub const EVENT_STATUS_FLAGS: &[Flag] = &[Flag {
    name: "notify",
    c_name: "OXEN_EVENT_STATUS_NOTIFY",
    value: EVENT_STATUS_NOTIFY as u64,
    doc: "the notification device is bound: poll() wakes on events",
}];

/// Argument of [`super::Ioctl::EventRead`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlEventRead {
    /// Out: the [`crate::event::EVENTS`] bits pending for this open file
    /// (taken unless `flags` has [`crate::event::EVENT_READ_PEEK`]).
    pub pending: u64,
    /// Out: events the hypervisor raised since boot.
    pub raised: u64,
    /// Out: MSIs the hypervisor's notification device sent since boot.
    pub interrupts: u64,
    /// Out: notification interrupts the driver has handled since it loaded.
    pub handled: u64,
    /// In: [`crate::event::EVENT_READ_FLAGS`] bits (`EINVAL` for others).
    pub flags: u32,
    /// Out: [`EVENT_STATUS_FLAGS`] bits.
    pub status: u32,
}

crate::assert_layout!(IoctlEventRead, size = 40, {
    pending: 0,
    raised: 8,
    interrupts: 16,
    handled: 24,
    flags: 32,
    status: 36,
});

impl IoctlEventRead {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlEventRead,
        "oxen_ioctl_event_read",
        "Argument of OXEN_IOCTL_EVENT_READ (1.2).",
        [
            pending: CType::U64 => "out: OXEN_EVENT_* bits pending for this open file",
            raised: CType::U64 => "out: events the hypervisor raised since boot",
            interrupts: CType::U64 => "out: MSIs the notification device sent",
            handled: CType::U64 => "out: notification interrupts the driver handled",
            flags: CType::U32 => "in: OXEN_EVENT_READ_PEEK, or 0",
            status: CType::U32 => "out: OXEN_EVENT_STATUS_* bits",
        ]
    );
}
