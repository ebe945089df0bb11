//! The argument structs of the ABI 1.1 requests (domain lifecycle, copy-in,
//! vCPU entry, console). [`super::Ioctl::DomainCreate`] takes
//! [`crate::DomainCreateArgs`] itself.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, StructLayout, struct_layout};
use crate::vcpu::VcpuEntry;

/// Argument of [`super::Ioctl::DomainDestroy`], [`super::Ioctl::DomainPause`]
/// and [`super::Ioctl::DomainUnpause`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlDomid {
    /// In: the domain id.
    pub domid: u32,
    /// Must be 0 (`EINVAL` otherwise).
    pub reserved: u32,
}

crate::assert_layout!(IoctlDomid, size = 8, { domid: 0, reserved: 4 });

impl IoctlDomid {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlDomid,
        "oxen_ioctl_domid",
        "Argument of OXEN_IOCTL_DOMAIN_DESTROY, _PAUSE and _UNPAUSE.",
        [
            domid: CType::U32 => "in: domain id",
            reserved: CType::U32 => "must be 0",
        ]
    );

    /// A request for `domid`.
    #[must_use]
    pub const fn new(domid: u32) -> Self {
        Self { domid, reserved: 0 }
    }
}

/// Argument of [`super::Ioctl::DomainShutdown`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlDomainShutdown {
    /// In: the domain id.
    pub domid: u32,
    /// In: `OXEN_SHUTDOWN_POWEROFF` or `OXEN_SHUTDOWN_REBOOT` (`EINVAL`
    /// otherwise).
    pub reason: u32,
}

crate::assert_layout!(IoctlDomainShutdown, size = 8, { domid: 0, reason: 4 });

impl IoctlDomainShutdown {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlDomainShutdown,
        "oxen_ioctl_domain_shutdown",
        "Argument of OXEN_IOCTL_DOMAIN_SHUTDOWN.",
        [
            domid: CType::U32 => "in: domain id",
            reason: CType::U32 => "in: OXEN_SHUTDOWN_POWEROFF or OXEN_SHUTDOWN_REBOOT",
        ]
    );
}

/// Argument of [`super::Ioctl::DomainCopyIn`]: one
/// [`crate::Op::DomainCopyIn`] of at most
/// [`crate::hypercall::MAX_BUFFER_BYTES`]; the caller loops over larger
/// images.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlCopyIn {
    /// In: the domain id.
    pub domid: u32,
    /// Must be 0 (`EINVAL` otherwise).
    pub reserved: u32,
    /// In: the destination, a guest-physical address in the domain.
    pub dest_gpa: u64,
    /// In: user address of the source bytes.
    pub buffer: u64,
    /// In: bytes to copy, at most `OXEN_MAX_BUFFER_BYTES` (`E2BIG` above).
    pub length: u32,
    /// Out: bytes copied.
    pub copied: u32,
}

crate::assert_layout!(IoctlCopyIn, size = 32, {
    domid: 0,
    reserved: 4,
    dest_gpa: 8,
    buffer: 16,
    length: 24,
    copied: 28,
});

impl IoctlCopyIn {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlCopyIn,
        "oxen_ioctl_copy_in",
        "Argument of OXEN_IOCTL_DOMAIN_COPY_IN.",
        [
            domid: CType::U32 => "in: domain id",
            reserved: CType::U32 => "must be 0",
            dest_gpa: CType::U64 => "in: destination GPA in the domain",
            buffer: CType::U64 => "in: user address of the source",
            length: CType::U32 => "in: bytes, at most OXEN_MAX_BUFFER_BYTES",
            copied: CType::U32 => "out: bytes copied",
        ]
    );
}

/// Argument of [`super::Ioctl::VcpuSetEntry`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlVcpuSetEntry {
    /// In: the domain id.
    pub domid: u32,
    /// In: the vCPU (only [`crate::vcpu::BOOT_VCPU`]).
    pub vcpu: u32,
    /// In: its entry state (reserved fields 0, `EINVAL` otherwise).
    pub entry: VcpuEntry,
}

crate::assert_layout!(IoctlVcpuSetEntry, size = 72, {
    domid: 0,
    vcpu: 4,
    entry: 8,
});

impl IoctlVcpuSetEntry {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlVcpuSetEntry,
        "oxen_ioctl_vcpu_set_entry",
        "Argument of OXEN_IOCTL_VCPU_SET_ENTRY.",
        [
            domid: CType::U32 => "in: domain id",
            vcpu: CType::U32 => "in: vCPU index (0)",
            entry: CType::Struct { c_name: "oxen_vcpu_entry", size: size_of::<VcpuEntry>() }
                => "in: the entry state",
        ]
    );
}

/// Argument of [`super::Ioctl::ConsoleRead`] and
/// [`super::Ioctl::ConsoleWrite`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlConsole {
    /// In: the domain id.
    pub domid: u32,
    /// In: size of `buffer` in bytes, at most `OXEN_MAX_BUFFER_BYTES`
    /// (`E2BIG` above).
    pub size: u32,
    /// In: user address of the buffer (read: destination; write: source).
    pub buffer: u64,
    /// Out: bytes read into `buffer`, or bytes of it accepted.
    pub returned: u32,
    /// Must be 0 (`EINVAL` otherwise).
    pub reserved: u32,
}

crate::assert_layout!(IoctlConsole, size = 24, {
    domid: 0,
    size: 4,
    buffer: 8,
    returned: 16,
    reserved: 20,
});

impl IoctlConsole {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlConsole,
        "oxen_ioctl_console",
        "Argument of OXEN_IOCTL_CONSOLE_READ and OXEN_IOCTL_CONSOLE_WRITE.",
        [
            domid: CType::U32 => "in: domain id",
            size: CType::U32 => "in: buffer size, at most OXEN_MAX_BUFFER_BYTES",
            buffer: CType::U64 => "in: user address of the buffer",
            returned: CType::U32 => "out: bytes read, or bytes accepted",
            reserved: CType::U32 => "must be 0",
        ]
    );
}
