//! The `/dev/hvctl` ioctl interface between dom0 userspace (`xl-rs`) and the
//! `hvctl` driver (`tools/hvctl/hvctl.c`), which turns each request into one
//! hypercall.
//!
//! Userspace cannot issue hypercalls itself (`VMCALL` at CPL 3 raises #UD)
//! and knows no guest-physical addresses. The driver copies each argument in,
//! checks its sizes and reserved fields, bounces user buffers through
//! physically contiguous kernel memory of at most
//! [`crate::hypercall::MAX_BUFFER_BYTES`], names that memory to the
//! hypervisor by guest-physical address (dom0 is identity-mapped), and copies
//! the results back.
//!
//! # Numbers
//!
//! Linux's encoding (`include/uapi/asm-generic/ioctl.h`, which x86 uses):
//! `dir << 30 | size << 16 | type << 8 | nr`, where `dir` is
//! [`IOC_WRITE`] (userspace to kernel) and/or [`IOC_READ`] (kernel to
//! userspace), `size` the argument struct's size (14 bits) and `type` the
//! driver's magic byte, [`IOCTL_MAGIC`]. A struct that changes size therefore
//! changes the number: an old binary gets `ENOTTY`, never a misread struct.
//!
//! # Results
//!
//! The ioctl returns 0 on success. A hypercall that fails makes it fail with
//! the errno of [`status_errno`] (one errno per status, so userspace can tell
//! which status it was with [`status_from_errno`]); the driver's own checks
//! fail with `ENOTTY` (unknown request), `EFAULT` (bad user pointer),
//! `EINVAL` (a reserved field or unknown flag bit set), `E2BIG` (a buffer
//! above the bound) or `ENOMEM` (no kernel memory for the bounce buffer).
//! [`Ioctl::Raw`] returns the status itself in [`IoctlRaw::status`].
//!
//! # One hypercall per request
//!
//! Every request is exactly one hypercall, so the driver never loops and
//! never holds a request for long. Requests that move bytes
//! ([`Ioctl::LogRead`], [`Ioctl::DomainCopyIn`], [`Ioctl::ConsoleRead`],
//! [`Ioctl::ConsoleWrite`]) take at most
//! [`crate::hypercall::MAX_BUFFER_BYTES`]; the caller loops (`xl-rs` copies a
//! kernel into a domain 1 MiB at a time).

mod control;
mod events;
mod sched;

pub use control::{IoctlConsole, IoctlCopyIn, IoctlDomainShutdown, IoctlDomid, IoctlVcpuSetEntry};
pub use events::{EVENT_STATUS_FLAGS, EVENT_STATUS_NOTIFY, IoctlEventRead};
pub use sched::{IoctlVcpuAffinity, IoctlVcpuList, MAX_VCPU_LIST_CAPACITY};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domain::DomainInfo;
use crate::hypercall::MAX_BUFFER_BYTES;
use crate::info::HvInfo;
use crate::layout::{CType, StructLayout, struct_layout};
use crate::lifecycle::DomainCreateArgs;
use crate::sched::SchedParams;
use crate::status::Status;
use crate::version::VersionArgs;

/// The device node the driver creates (a misc device, mode 0600).
pub const HVCTL_DEVICE: &str = "/dev/hvctl";

/// The driver's ioctl type byte. Not listed in Linux's
/// `Documentation/userspace-api/ioctl/ioctl-number.rst` (checked for 6.1).
pub const IOCTL_MAGIC: u8 = 0xde;

/// `_IOC_WRITE`: the argument is copied from userspace.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the argument is copied to userspace.
pub const IOC_READ: u32 = 2;

/// Bits of the size field (`_IOC_SIZEBITS`).
const IOC_SIZE_BITS: u32 = 14;

/// Linux's `_IOC(dir, type, nr, size)`.
///
/// # Panics
///
/// At compile time (all uses are constants) when `size` does not fit the
/// 14-bit size field or `dir` the 2-bit direction field.
#[must_use]
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZE_BITS), "ioctl argument too large");
    assert!(dir < 4, "ioctl direction has two bits");
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// Linux's `_IOWR(type, nr, T)`.
#[must_use]
pub const fn iowr<T>(nr: u8) -> u32 {
    ioc(IOC_READ | IOC_WRITE, IOCTL_MAGIC, nr, size_of::<T>())
}

/// Linux's `_IOR(type, nr, T)`.
#[must_use]
pub const fn ior<T>(nr: u8) -> u32 {
    ioc(IOC_READ, IOCTL_MAGIC, nr, size_of::<T>())
}

/// Linux's `_IOW(type, nr, T)`.
#[must_use]
pub const fn iow<T>(nr: u8) -> u32 {
    ioc(IOC_WRITE, IOCTL_MAGIC, nr, size_of::<T>())
}

/// The requests of `/dev/hvctl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ioctl {
    /// `_IOWR(0xde, 0x00, struct oxen_version_args)`: [`crate::Op::Version`]
    /// with the caller's version. The hypervisor fields are copied out also
    /// when the call fails with `EPROTO` (`VERSION_MISMATCH`).
    Version,
    /// `_IOR(0xde, 0x01, struct oxen_hv_info)`: [`crate::Op::HvInfo`].
    HvInfo,
    /// `_IOWR(0xde, 0x02, struct oxen_ioctl_log_read)`: [`crate::Op::LogRead`]
    /// into a user buffer.
    LogRead,
    /// `_IOWR(0xde, 0x03, struct oxen_ioctl_domain_list)`:
    /// [`crate::Op::DomainList`] into a user array.
    DomainList,
    /// `_IOWR(0xde, 0x04, struct oxen_ioctl_domain_info)`:
    /// [`crate::Op::DomainInfo`].
    DomainInfo,
    /// `_IOWR(0xde, 0x05, struct oxen_ioctl_raw)`: any operation number and
    /// five raw register values, passed through unchecked (guest-physical
    /// addresses included), like Xen's privcmd hypercall ioctl. For tests of
    /// the hypervisor's own argument checks.
    Raw,
    /// `_IOWR(0xde, 0x06, struct oxen_domain_create_args)`:
    /// [`crate::Op::DomainCreate`]; `domid` is filled in (1.1).
    DomainCreate,
    /// `_IOW(0xde, 0x07, struct oxen_ioctl_domid)`:
    /// [`crate::Op::DomainDestroy`] (1.1).
    DomainDestroy,
    /// `_IOW(0xde, 0x08, struct oxen_ioctl_domid)`:
    /// [`crate::Op::DomainPause`] (1.1).
    DomainPause,
    /// `_IOW(0xde, 0x09, struct oxen_ioctl_domid)`:
    /// [`crate::Op::DomainUnpause`] (1.1).
    DomainUnpause,
    /// `_IOW(0xde, 0x0a, struct oxen_ioctl_domain_shutdown)`:
    /// [`crate::Op::DomainShutdown`] (1.1).
    DomainShutdown,
    /// `_IOWR(0xde, 0x0b, struct oxen_ioctl_copy_in)`:
    /// [`crate::Op::DomainCopyIn`] from a user buffer of at most
    /// [`MAX_BUFFER_BYTES`] (1.1).
    DomainCopyIn,
    /// `_IOW(0xde, 0x0c, struct oxen_ioctl_vcpu_set_entry)`:
    /// [`crate::Op::VcpuSetEntry`] (1.1).
    VcpuSetEntry,
    /// `_IOWR(0xde, 0x0d, struct oxen_ioctl_console)`:
    /// [`crate::Op::ConsoleRead`] into a user buffer (1.1).
    ConsoleRead,
    /// `_IOWR(0xde, 0x0e, struct oxen_ioctl_console)`:
    /// [`crate::Op::ConsoleWrite`] from a user buffer (1.1).
    ConsoleWrite,
    /// `_IOWR(0xde, 0x0f, struct oxen_ioctl_event_read)`: the events
    /// pending for this open file of `/dev/hvctl` (taken, unless
    /// `OXEN_EVENT_READ_PEEK`), gathered with [`crate::Op::EventRead`] (1.2).
    EventRead,
    /// `_IOWR(0xde, 0x10, struct oxen_sched_params)`:
    /// [`crate::Op::SchedGet`] of `domid`; `flags` must be 0 (1.3).
    SchedGet,
    /// `_IOW(0xde, 0x11, struct oxen_sched_params)`:
    /// [`crate::Op::SchedSet`]; `flags` only `OXEN_SCHED_SET_*` bits (1.3).
    SchedSet,
    /// `_IOWR(0xde, 0x12, struct oxen_ioctl_vcpu_list)`:
    /// [`crate::Op::VcpuList`] into a user array (1.3).
    VcpuList,
    /// `_IOW(0xde, 0x13, struct oxen_ioctl_vcpu_affinity)`:
    /// [`crate::Op::VcpuSetAffinity`] (1.3).
    VcpuSetAffinity,
}

impl Ioctl {
    /// Every request, by number.
    pub const ALL: [Self; 20] = [
        Self::Version,
        Self::HvInfo,
        Self::LogRead,
        Self::DomainList,
        Self::DomainInfo,
        Self::Raw,
        Self::DomainCreate,
        Self::DomainDestroy,
        Self::DomainPause,
        Self::DomainUnpause,
        Self::DomainShutdown,
        Self::DomainCopyIn,
        Self::VcpuSetEntry,
        Self::ConsoleRead,
        Self::ConsoleWrite,
        Self::EventRead,
        Self::SchedGet,
        Self::SchedSet,
        Self::VcpuList,
        Self::VcpuSetAffinity,
    ];

    /// The `nr` byte.
    #[must_use]
    pub const fn nr(self) -> u8 {
        match self {
            Self::Version => 0x00,
            Self::HvInfo => 0x01,
            Self::LogRead => 0x02,
            Self::DomainList => 0x03,
            Self::DomainInfo => 0x04,
            Self::Raw => 0x05,
            Self::DomainCreate => 0x06,
            Self::DomainDestroy => 0x07,
            Self::DomainPause => 0x08,
            Self::DomainUnpause => 0x09,
            Self::DomainShutdown => 0x0a,
            Self::DomainCopyIn => 0x0b,
            Self::VcpuSetEntry => 0x0c,
            Self::ConsoleRead => 0x0d,
            Self::ConsoleWrite => 0x0e,
            Self::EventRead => 0x0f,
            Self::SchedGet => 0x10,
            Self::SchedSet => 0x11,
            Self::VcpuList => 0x12,
            Self::VcpuSetAffinity => 0x13,
        }
    }

    /// The request number passed to `ioctl(2)`.
    #[must_use]
    pub const fn number(self) -> u32 {
        match self {
            Self::Version => iowr::<VersionArgs>(self.nr()),
            Self::HvInfo => ior::<HvInfo>(self.nr()),
            Self::LogRead => iowr::<IoctlLogRead>(self.nr()),
            Self::DomainList => iowr::<IoctlDomainList>(self.nr()),
            Self::DomainInfo => iowr::<IoctlDomainInfo>(self.nr()),
            Self::Raw => iowr::<IoctlRaw>(self.nr()),
            Self::DomainCreate => iowr::<DomainCreateArgs>(self.nr()),
            Self::DomainDestroy | Self::DomainPause | Self::DomainUnpause => {
                iow::<IoctlDomid>(self.nr())
            }
            Self::DomainShutdown => iow::<IoctlDomainShutdown>(self.nr()),
            Self::DomainCopyIn => iowr::<IoctlCopyIn>(self.nr()),
            Self::VcpuSetEntry => iow::<IoctlVcpuSetEntry>(self.nr()),
            Self::ConsoleRead | Self::ConsoleWrite => iowr::<IoctlConsole>(self.nr()),
            Self::EventRead => iowr::<IoctlEventRead>(self.nr()),
            Self::SchedGet => iowr::<SchedParams>(self.nr()),
            Self::SchedSet => iow::<SchedParams>(self.nr()),
            Self::VcpuList => iowr::<IoctlVcpuList>(self.nr()),
            Self::VcpuSetAffinity => iow::<IoctlVcpuAffinity>(self.nr()),
        }
    }

    /// The C macro name, e.g. `OXEN_IOCTL_HV_INFO`.
    #[must_use]
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Version => "OXEN_IOCTL_VERSION",
            Self::HvInfo => "OXEN_IOCTL_HV_INFO",
            Self::LogRead => "OXEN_IOCTL_LOG_READ",
            Self::DomainList => "OXEN_IOCTL_DOMAIN_LIST",
            Self::DomainInfo => "OXEN_IOCTL_DOMAIN_INFO",
            Self::Raw => "OXEN_IOCTL_RAW",
            Self::DomainCreate => "OXEN_IOCTL_DOMAIN_CREATE",
            Self::DomainDestroy => "OXEN_IOCTL_DOMAIN_DESTROY",
            Self::DomainPause => "OXEN_IOCTL_DOMAIN_PAUSE",
            Self::DomainUnpause => "OXEN_IOCTL_DOMAIN_UNPAUSE",
            Self::DomainShutdown => "OXEN_IOCTL_DOMAIN_SHUTDOWN",
            Self::DomainCopyIn => "OXEN_IOCTL_DOMAIN_COPY_IN",
            Self::VcpuSetEntry => "OXEN_IOCTL_VCPU_SET_ENTRY",
            Self::ConsoleRead => "OXEN_IOCTL_CONSOLE_READ",
            Self::ConsoleWrite => "OXEN_IOCTL_CONSOLE_WRITE",
            Self::EventRead => "OXEN_IOCTL_EVENT_READ",
            Self::SchedGet => "OXEN_IOCTL_SCHED_GET",
            Self::SchedSet => "OXEN_IOCTL_SCHED_SET",
            Self::VcpuList => "OXEN_IOCTL_VCPU_LIST",
            Self::VcpuSetAffinity => "OXEN_IOCTL_VCPU_SET_AFFINITY",
        }
    }

    /// The Linux macro that builds the number: `_IOR` (the driver only
    /// writes the argument), `_IOW` (it only reads it) or `_IOWR`.
    #[must_use]
    pub const fn c_macro(self) -> &'static str {
        match self {
            Self::HvInfo => "_IOR",
            Self::DomainDestroy
            | Self::DomainPause
            | Self::DomainUnpause
            | Self::DomainShutdown
            | Self::VcpuSetEntry
            | Self::SchedSet
            | Self::VcpuSetAffinity => "_IOW",
            _ => "_IOWR",
        }
    }

    /// The C struct tag of the argument.
    #[must_use]
    pub const fn arg_c_name(self) -> &'static str {
        match self {
            Self::Version => VersionArgs::LAYOUT.c_name,
            Self::HvInfo => HvInfo::LAYOUT.c_name,
            Self::LogRead => IoctlLogRead::LAYOUT.c_name,
            Self::DomainList => IoctlDomainList::LAYOUT.c_name,
            Self::DomainInfo => IoctlDomainInfo::LAYOUT.c_name,
            Self::Raw => IoctlRaw::LAYOUT.c_name,
            Self::DomainCreate => DomainCreateArgs::LAYOUT.c_name,
            Self::DomainDestroy | Self::DomainPause | Self::DomainUnpause => {
                IoctlDomid::LAYOUT.c_name
            }
            Self::DomainShutdown => IoctlDomainShutdown::LAYOUT.c_name,
            Self::DomainCopyIn => IoctlCopyIn::LAYOUT.c_name,
            Self::VcpuSetEntry => IoctlVcpuSetEntry::LAYOUT.c_name,
            Self::ConsoleRead | Self::ConsoleWrite => IoctlConsole::LAYOUT.c_name,
            Self::EventRead => IoctlEventRead::LAYOUT.c_name,
            Self::SchedGet | Self::SchedSet => SchedParams::LAYOUT.c_name,
            Self::VcpuList => IoctlVcpuList::LAYOUT.c_name,
            Self::VcpuSetAffinity => IoctlVcpuAffinity::LAYOUT.c_name,
        }
    }

    /// A one-line description.
    #[must_use]
    pub const fn doc(self) -> &'static str {
        match self {
            Self::Version => {
                "OXEN_OP_VERSION; EPROTO on a major mismatch, hypervisor fields filled"
            }
            Self::HvInfo => "OXEN_OP_HV_INFO",
            Self::LogRead => "OXEN_OP_LOG_READ into a user buffer",
            Self::DomainList => "OXEN_OP_DOMAIN_LIST into a user array",
            Self::DomainInfo => "OXEN_OP_DOMAIN_INFO",
            Self::Raw => "any operation, raw arguments; status out",
            Self::DomainCreate => "OXEN_OP_DOMAIN_CREATE; domid out",
            Self::DomainDestroy => "OXEN_OP_DOMAIN_DESTROY",
            Self::DomainPause => "OXEN_OP_DOMAIN_PAUSE",
            Self::DomainUnpause => "OXEN_OP_DOMAIN_UNPAUSE",
            Self::DomainShutdown => "OXEN_OP_DOMAIN_SHUTDOWN",
            Self::DomainCopyIn => "OXEN_OP_DOMAIN_COPY_IN from a user buffer",
            Self::VcpuSetEntry => "OXEN_OP_VCPU_SET_ENTRY",
            Self::ConsoleRead => "OXEN_OP_CONSOLE_READ into a user buffer",
            Self::ConsoleWrite => "OXEN_OP_CONSOLE_WRITE from a user buffer",
            Self::EventRead => "this open file's events, gathered with OXEN_OP_EVENT_READ",
            Self::SchedGet => "OXEN_OP_SCHED_GET of domid",
            Self::SchedSet => "OXEN_OP_SCHED_SET",
            Self::VcpuList => "OXEN_OP_VCPU_LIST into a user array",
            Self::VcpuSetAffinity => "OXEN_OP_VCPU_SET_AFFINITY",
        }
    }

    /// The request with this number, if any.
    #[must_use]
    pub fn from_number(number: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.number() == number)
    }
}

/// Argument of [`Ioctl::LogRead`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlLogRead {
    /// In: user address of the destination buffer.
    pub buffer: u64,
    /// In: its size in bytes, at most [`MAX_BUFFER_BYTES`] (`E2BIG` above).
    pub size: u32,
    /// In: [`crate::log::LOG_READ_FLAGS`] bits (`EINVAL` for others).
    pub flags: u32,
    /// Out: bytes copied to `buffer`.
    pub returned: u32,
    /// Out: bytes lost to ring wrap since the last clear.
    pub dropped: u32,
}

crate::assert_layout!(IoctlLogRead, size = 24, {
    buffer: 0,
    size: 8,
    flags: 12,
    returned: 16,
    dropped: 20,
});

impl IoctlLogRead {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlLogRead,
        "oxen_ioctl_log_read",
        "Argument of OXEN_IOCTL_LOG_READ.",
        [
            buffer: CType::U64 => "in: user address of the destination buffer",
            size: CType::U32 => "in: its size, at most OXEN_MAX_BUFFER_BYTES",
            flags: CType::U32 => "in: OXEN_LOG_READ_* bits",
            returned: CType::U32 => "out: bytes copied",
            dropped: CType::U32 => "out: bytes lost to ring wrap since the last clear",
        ]
    );
}

/// Argument of [`Ioctl::DomainList`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlDomainList {
    /// In: user address of an array of `capacity` [`DomainInfo`] records.
    pub buffer: u64,
    /// In: records the array holds, at most [`MAX_DOMAIN_LIST_CAPACITY`]
    /// (`E2BIG` above).
    pub capacity: u32,
    /// In: the smallest domain id to report.
    pub start_domid: u32,
    /// Out: records written, by increasing id.
    pub returned: u32,
    /// Out: domains with id `>= start_domid`.
    pub total: u32,
}

crate::assert_layout!(IoctlDomainList, size = 24, {
    buffer: 0,
    capacity: 8,
    start_domid: 12,
    returned: 16,
    total: 20,
});

impl IoctlDomainList {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlDomainList,
        "oxen_ioctl_domain_list",
        "Argument of OXEN_IOCTL_DOMAIN_LIST.",
        [
            buffer: CType::U64 => "in: user address of capacity struct oxen_domain_info",
            capacity: CType::U32 => "in: records, at most OXEN_MAX_DOMAIN_LIST_CAPACITY",
            start_domid: CType::U32 => "in: smallest domain id to report",
            returned: CType::U32 => "out: records written",
            total: CType::U32 => "out: domains with id >= start_domid",
        ]
    );
}

/// The most records one [`Ioctl::DomainList`] takes: as many as fit in
/// [`MAX_BUFFER_BYTES`].
pub const MAX_DOMAIN_LIST_CAPACITY: u32 =
    (MAX_BUFFER_BYTES / size_of::<DomainInfo>() as u64) as u32;

/// Argument of [`Ioctl::DomainInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct IoctlDomainInfo {
    /// In: the domain id.
    pub domid: u32,
    /// Must be 0 (`EINVAL` otherwise).
    pub reserved: u32,
    /// Out: the domain.
    pub info: DomainInfo,
}

crate::assert_layout!(IoctlDomainInfo, size = 120, {
    domid: 0,
    reserved: 4,
    info: 8,
});

impl IoctlDomainInfo {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlDomainInfo,
        "oxen_ioctl_domain_info",
        "Argument of OXEN_IOCTL_DOMAIN_INFO.",
        [
            domid: CType::U32 => "in: domain id",
            reserved: CType::U32 => "must be 0",
            info: CType::Struct { c_name: "oxen_domain_info", size: size_of::<DomainInfo>() }
                => "out: the domain",
        ]
    );

    /// A request for `domid`.
    #[must_use]
    pub fn request(domid: u32) -> Self {
        let mut args = <Self as zerocopy::FromZeros>::new_zeroed();
        args.domid = domid;
        args
    }
}

/// Argument of [`Ioctl::Raw`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlRaw {
    /// In: the operation number (RAX).
    pub op: u64,
    /// In: RDI.
    pub arg1: u64,
    /// In: RSI.
    pub arg2: u64,
    /// In: RDX.
    pub arg3: u64,
    /// In: R10.
    pub arg4: u64,
    /// In: R8.
    pub arg5: u64,
    /// Out: RAX after the call (`>= 0` success, `< 0` a [`Status`]).
    pub status: i64,
}

crate::assert_layout!(IoctlRaw, size = 56, {
    op: 0,
    arg1: 8,
    arg2: 16,
    arg3: 24,
    arg4: 32,
    arg5: 40,
    status: 48,
});

impl IoctlRaw {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlRaw,
        "oxen_ioctl_raw",
        "Argument of OXEN_IOCTL_RAW: registers passed through unchecked.",
        [
            op: CType::U64 => "in: operation number (RAX)",
            arg1: CType::U64 => "in: RDI",
            arg2: CType::U64 => "in: RSI",
            arg3: CType::U64 => "in: RDX",
            arg4: CType::U64 => "in: R10",
            arg5: CType::U64 => "in: R8",
            status: CType::I64 => "out: RAX after the call",
        ]
    );
}

/// Linux errno numbers (x86-64, `include/uapi/asm-generic/errno*.h`) that
/// the driver returns for hypercall statuses.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such process.
    pub const ESRCH: i32 = 3;
    /// I/O error.
    pub const EIO: i32 = 5;
    /// Argument list too long.
    pub const E2BIG: i32 = 7;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Function not implemented.
    pub const ENOSYS: i32 = 38;
    /// Protocol error.
    pub const EPROTO: i32 = 71;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// No buffer space available.
    pub const ENOBUFS: i32 = 105;
    /// Operation already in progress.
    pub const EALREADY: i32 = 114;
}

/// The errno the driver fails an ioctl with when the hypercall returns
/// `status` (0 for [`Status::Ok`]); one distinct errno per status.
#[must_use]
pub const fn status_errno(status: Status) -> i32 {
    match status {
        Status::Ok => 0,
        Status::NotPermitted => errno::EPERM,
        Status::InvalidOperation => errno::ENOSYS,
        Status::InvalidArgument => errno::EINVAL,
        Status::BadAddress => errno::EFAULT,
        Status::TooBig => errno::E2BIG,
        Status::BufferTooSmall => errno::ENOBUFS,
        Status::NoSuchDomain => errno::ESRCH,
        Status::NoMemory => errno::ENOMEM,
        Status::VersionMismatch => errno::EPROTO,
        Status::Busy => errno::EBUSY,
        Status::NotImplemented => errno::EOPNOTSUPP,
        Status::BadState => errno::EALREADY,
        Status::Exists => errno::EEXIST,
    }
}

/// The errno for a negative status this ABI version does not define.
pub const UNKNOWN_STATUS_ERRNO: i32 = errno::EIO;

/// The name of the errno constant of [`status_errno`], for the C header.
#[must_use]
pub const fn status_errno_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "0",
        Status::NotPermitted => "EPERM",
        Status::InvalidOperation => "ENOSYS",
        Status::InvalidArgument => "EINVAL",
        Status::BadAddress => "EFAULT",
        Status::TooBig => "E2BIG",
        Status::BufferTooSmall => "ENOBUFS",
        Status::NoSuchDomain => "ESRCH",
        Status::NoMemory => "ENOMEM",
        Status::VersionMismatch => "EPROTO",
        Status::Busy => "EBUSY",
        Status::NotImplemented => "EOPNOTSUPP",
        Status::BadState => "EALREADY",
        Status::Exists => "EEXIST",
    }
}

/// The status a failed typed ioctl's errno stands for, when it stands for
/// one. Some errnos (`EFAULT`, `EINVAL`, `E2BIG`, `ENOMEM`) are also what the
/// driver's own checks return.
#[must_use]
pub fn status_from_errno(errno: i32) -> Option<Status> {
    if errno <= 0 {
        return None;
    }
    Status::ALL.into_iter().find(|s| status_errno(*s) == errno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The numbers, written out: a change here is an ABI change.
    #[test]
    fn numbers_are_linux_ioc_encodings() {
        assert_eq!(IOCTL_MAGIC, 0xde);
        assert_eq!(Ioctl::Version.number(), 0xc008_de00);
        assert_eq!(Ioctl::HvInfo.number(), 0x8058_de01);
        assert_eq!(Ioctl::LogRead.number(), 0xc018_de02);
        assert_eq!(Ioctl::DomainList.number(), 0xc018_de03);
        assert_eq!(Ioctl::DomainInfo.number(), 0xc078_de04);
        assert_eq!(Ioctl::Raw.number(), 0xc038_de05);
        assert_eq!(Ioctl::DomainCreate.number(), 0xc058_de06);
        assert_eq!(Ioctl::DomainDestroy.number(), 0x4008_de07);
        assert_eq!(Ioctl::DomainPause.number(), 0x4008_de08);
        assert_eq!(Ioctl::DomainUnpause.number(), 0x4008_de09);
        assert_eq!(Ioctl::DomainShutdown.number(), 0x4008_de0a);
        assert_eq!(Ioctl::DomainCopyIn.number(), 0xc020_de0b);
        assert_eq!(Ioctl::VcpuSetEntry.number(), 0x4048_de0c);
        assert_eq!(Ioctl::ConsoleRead.number(), 0xc018_de0d);
        assert_eq!(Ioctl::ConsoleWrite.number(), 0xc018_de0e);
        assert_eq!(Ioctl::EventRead.number(), 0xc028_de0f);
        assert_eq!(Ioctl::SchedGet.number(), 0xc010_de10);
        assert_eq!(Ioctl::SchedSet.number(), 0x4010_de11);
        assert_eq!(Ioctl::VcpuList.number(), 0xc018_de12);
        assert_eq!(Ioctl::VcpuSetAffinity.number(), 0x4010_de13);
    }

    #[test]
    fn fields_decode_back() {
        for ioctl in Ioctl::ALL {
            let n = ioctl.number();
            assert_eq!(n & 0xff, u32::from(ioctl.nr()));
            assert_eq!((n >> 8) & 0xff, u32::from(IOCTL_MAGIC));
            let size = ((n >> 16) & 0x3fff) as usize;
            let arg = crate::layout::STRUCTS
                .iter()
                .find(|l| l.c_name == ioctl.arg_c_name())
                .expect("the argument struct is in the header");
            assert_eq!(size, arg.size, "{ioctl:?}");
            let dir = n >> 30;
            let want = match ioctl.c_macro() {
                "_IOR" => IOC_READ,
                "_IOW" => IOC_WRITE,
                _ => IOC_READ | IOC_WRITE,
            };
            assert_eq!(dir, want, "{ioctl:?}");
            assert_eq!(Ioctl::from_number(n), Some(ioctl));
        }
        assert_eq!(Ioctl::from_number(0), None);
    }

    #[test]
    fn numbers_and_names_are_unique() {
        let numbers: BTreeSet<u32> = Ioctl::ALL.iter().map(|i| i.number()).collect();
        let nrs: BTreeSet<u8> = Ioctl::ALL.iter().map(|i| i.nr()).collect();
        let names: BTreeSet<&str> = Ioctl::ALL.iter().map(|i| i.c_name()).collect();
        assert_eq!(numbers.len(), Ioctl::ALL.len());
        assert_eq!(nrs.len(), Ioctl::ALL.len());
        assert_eq!(names.len(), Ioctl::ALL.len());
    }

    #[test]
    fn errnos_are_distinct_and_round_trip() {
        let mut seen = BTreeSet::new();
        for status in Status::ALL {
            let e = status_errno(status);
            if status.is_ok() {
                assert_eq!(e, 0);
                assert_eq!(status_from_errno(e), None);
                continue;
            }
            assert!(e > 0);
            assert!(seen.insert(e), "{status:?} reuses errno {e}");
            assert_eq!(status_from_errno(e), Some(status));
            assert_ne!(e, UNKNOWN_STATUS_ERRNO);
        }
        assert_eq!(status_from_errno(UNKNOWN_STATUS_ERRNO), None);
        assert_eq!(status_from_errno(25), None); // ENOTTY: the driver's own
    }

    #[test]
    fn domain_list_capacity_fills_the_bound() {
        let bytes = u64::from(MAX_DOMAIN_LIST_CAPACITY) * size_of::<DomainInfo>() as u64;
        assert!(bytes <= MAX_BUFFER_BYTES);
        assert!(bytes + size_of::<DomainInfo>() as u64 > MAX_BUFFER_BYTES);
        assert_eq!(MAX_DOMAIN_LIST_CAPACITY, 9362);
        assert_eq!(MAX_VCPU_LIST_CAPACITY, 32768);
    }

    #[test]
    fn domid_request_is_zero_but_the_id() {
        assert_eq!(IoctlDomid::new(5).as_bytes(), [5, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn domain_info_request_is_zero_but_the_id() {
        let r = IoctlDomainInfo::request(7);
        assert_eq!(r.domid, 7);
        assert_eq!(r.reserved, 0);
        assert!(r.info.as_bytes().iter().all(|&b| b == 0));
    }
}
