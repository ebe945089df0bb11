//! The hypercall calling convention and the operation numbers.
//!
//! # Convention (x86_64)
//!
//! | register | meaning |
//! |---|---|
//! | RAX (in) | operation number ([`Op`]) |
//! | RDI, RSI, RDX, R10, R8 (in) | arguments 1–5 |
//! | RAX (out) | status: `>= 0` success (a count or 0), `< 0` a [`crate::Status`] error |
//!
//! The instruction is `VMCALL` (Intel SDM Vol. 3C, 25.1.3 "Instructions That Cause
//! VM Exits Unconditionally"). Control operations are accepted from dom0 at CPL 0
//! only. Pointer arguments are guest-physical addresses in the caller's own memory.
//!
//! # Numbering scheme
//!
//! An operation number is `group << 8 | index`, with `group` and `index` in
//! `0..=0xff`; numbers above `0xffff` and the number 0 are never valid (0 catches an
//! uninitialised RAX). The groups are listed in [`OpGroup`]. A number that names
//! no operation is refused with [`crate::Status::NotImplemented`] in an open group
//! (one with numbers reserved for later minor versions, [`OpGroup::is_open`]) and
//! with [`crate::Status::InvalidOperation`] elsewhere ([`unknown_op_status`]).

use crate::version::AbiVersion;

/// The instruction bytes of `VMCALL` (`0F 01 C1`).
pub const VMCALL_BYTES: [u8; 3] = [0x0f, 0x01, 0xc1];

/// The CPUID leaf whose EBX, ECX, EDX spell [`CPUID_SIGNATURE`] under Oxen
/// (the first leaf of the range Intel reserves for hypervisors); EAX holds the
/// largest hypervisor leaf. dom0's driver checks it before any `VMCALL`.
pub const CPUID_LEAF_SIGNATURE: u32 = 0x4000_0000;

/// The signature in EBX, ECX, EDX of [`CPUID_LEAF_SIGNATURE`].
pub const CPUID_SIGNATURE: [u8; 12] = *b"OxenOxenOxen";

/// Names of the argument registers, in order.
pub const ARG_REGISTERS: [&str; 5] = ["rdi", "rsi", "rdx", "r10", "r8"];

/// Largest buffer, in bytes, that any operation of this ABI version reads or
/// writes (bounds the work one hypercall can cause).
pub const MAX_BUFFER_BYTES: u64 = 1 << 20;

/// Operation groups: the high byte of an operation number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpGroup {
    /// `0x01`: version negotiation, hypervisor information, the log ring.
    System = 0x01,
    /// `0x02`: domain queries (list, info).
    DomainQuery = 0x02,
    /// `0x03`: domain lifecycle: create, destroy, pause, unpause, shutdown
    /// (ABI 1.1).
    DomainLifecycle = 0x03,
    /// `0x04`: domain memory: copy into a domain that has not run yet (ABI
    /// 1.1); populate, map foreign frames and unmap are reserved.
    DomainMemory = 0x04,
    /// `0x05`: vCPU state: the boot vCPU's entry state (ABI 1.1); get and set
    /// registers and vCPU info are reserved.
    Vcpu = 0x05,
    /// `0x06`: domain consoles (ABI 1.1).
    Console = 0x06,
    /// `0x07`: hypervisor events for dom0 (ABI 1.2): read and clear the
    /// pending events the notification device interrupts dom0 for.
    Event = 0x07,
    /// `0x08`: scheduling (ABI 1.3): a domain's weight and cap, its vCPUs
    /// and their hard affinity.
    Sched = 0x08,
    /// `0x80` (reserved): the small set a domU may call.
    Guest = 0x80,
}

impl OpGroup {
    /// Every group, in numeric order.
    pub const ALL: [Self; 9] = [
        Self::System,
        Self::DomainQuery,
        Self::DomainLifecycle,
        Self::DomainMemory,
        Self::Vcpu,
        Self::Console,
        Self::Event,
        Self::Sched,
        Self::Guest,
    ];

    /// The group of an operation number, if the number lies in one.
    #[must_use]
    pub fn of(op: u64) -> Option<Self> {
        if op > 0xffff {
            return None;
        }
        let high = (op >> 8) as u8;
        Self::ALL.into_iter().find(|g| *g as u8 == high)
    }

    /// Whether this ABI version defines operations in the group (the others are
    /// wholly reserved for later minor versions).
    #[must_use]
    pub const fn is_defined(self) -> bool {
        !matches!(self, Self::Guest)
    }

    /// Whether the numbers of the group that name no operation of this
    /// version are reserved for later minor versions (refused with
    /// [`crate::Status::NotImplemented`]) rather than invalid (refused with
    /// [`crate::Status::InvalidOperation`]).
    ///
    /// ABI 1.0 closed the groups it defined operations in (`0x01`, `0x02`);
    /// the groups ABI 1.1 to 1.3 opened (`0x03` to `0x08`) keep their other
    /// numbers for the operations the group is planned for, as does the
    /// wholly reserved `0x80`.
    #[must_use]
    pub const fn is_open(self) -> bool {
        !matches!(self, Self::System | Self::DomainQuery)
    }
}

/// The status an operation number that names no operation of this ABI
/// version is refused with: [`crate::Status::NotImplemented`] in an open
/// group ([`OpGroup::is_open`]), [`crate::Status::InvalidOperation`]
/// elsewhere (a closed group, outside every group, 0, above `0xffff`).
#[must_use]
pub fn unknown_op_status(op: u64) -> crate::Status {
    match OpGroup::of(op) {
        Some(g) if g.is_open() => crate::Status::NotImplemented,
        _ => crate::Status::InvalidOperation,
    }
}

/// An operation of ABI 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Op {
    /// Negotiate the ABI version. RDI: GPA of [`crate::VersionArgs`].
    /// Returns 0, or `VersionMismatch` when the majors differ.
    Version = 0x0100,
    /// Hypervisor information. RDI: GPA of a [`crate::HvInfo`] buffer, RSI: its
    /// size in bytes (at least `size_of::<HvInfo>()` of ABI 1.0). Returns the number
    /// of bytes written.
    HvInfo = 0x0101,
    /// Read the hypervisor's log ring. RDI: GPA of [`crate::LogReadArgs`].
    /// Returns the number of bytes copied (also stored in `returned`).
    LogRead = 0x0102,
    /// List domains. RDI: GPA of [`crate::DomainListArgs`]. Returns the number of
    /// [`crate::DomainInfo`] records written.
    DomainList = 0x0200,
    /// One domain. RDI: domain id, RSI: GPA of a [`crate::DomainInfo`] buffer.
    /// Returns 0, or `NoSuchDomain`.
    DomainInfo = 0x0201,
    /// Create a domain (1.1). RDI: GPA of [`crate::DomainCreateArgs`].
    /// Returns the new domain id (`> 0`, also stored in `domid`). The domain
    /// starts paused, its RAM zeroed at guest-physical
    /// `[0, memory_pages * 4096)`, its vCPUs not started. Errors: `Exists`
    /// (name in use), `NoMemory`, `InvalidArgument` (name empty, not
    /// NUL-terminated or not UTF-8; `memory_pages` 0 or too big; `vcpus` 0 or
    /// more than the physical CPUs; `flags` or `reserved` not 0).
    DomainCreate = 0x0300,
    /// Destroy a domain and free everything it had (1.1). RDI: domain id.
    /// Returns 0. Errors: `NoSuchDomain`; `NotPermitted` for dom0.
    DomainDestroy = 0x0301,
    /// Pause a domain (1.1). RDI: domain id. Returns 0. Errors:
    /// `NoSuchDomain`, `NotPermitted` for dom0, `BadState` when it is shut
    /// down or dying.
    DomainPause = 0x0302,
    /// Unpause a domain (1.1); the first unpause starts its boot vCPU. RDI:
    /// domain id. Returns 0. Errors as [`Op::DomainPause`].
    DomainUnpause = 0x0303,
    /// Ask a domain to shut down (1.1): an ACPI power-button press; returns
    /// at once. RDI: domain id, RSI: [`crate::ShutdownReason::Poweroff`] or
    /// [`crate::ShutdownReason::Reboot`]. The domain's state becomes
    /// `Shutdown` with that reason when the guest powers off or reboots
    /// itself (poll [`Op::DomainInfo`]). Errors: `NoSuchDomain`,
    /// `NotPermitted` for dom0, `InvalidArgument` (another reason),
    /// `BadState` (shut down or dying).
    DomainShutdown = 0x0304,
    /// Copy bytes into a domain that has never run (1.1). RDI: domain id,
    /// RSI: destination GPA in the domain, RDX: source GPA in the caller's
    /// memory, R10: length (at most [`MAX_BUFFER_BYTES`]). Returns the bytes
    /// copied. Errors: `NoSuchDomain`, `NotPermitted` for dom0, `BadState`
    /// once the domain has been unpaused, `BadAddress` (a range outside the
    /// domain's RAM or the caller's), `TooBig`.
    DomainCopyIn = 0x0400,
    /// Set the entry state of a vCPU that has not started (1.1). RDI: domain
    /// id, RSI: vCPU index (only 0; the others are started by the guest's
    /// INIT/SIPI), RDX: GPA of [`crate::VcpuEntry`]. Returns 0. Errors:
    /// `NoSuchDomain`, `NotPermitted` for dom0, `InvalidArgument` (vCPU,
    /// mode, reserved fields), `BadState` once the domain has run.
    VcpuSetEntry = 0x0500,
    /// Read a domain's console output (its emulated 16550 UART at 0x3F8)
    /// (1.1). RDI: domain id, RSI: GPA of a buffer, RDX: its size (at most
    /// [`MAX_BUFFER_BYTES`]). Returns the bytes consumed (0 when there is
    /// nothing new). Errors: `NoSuchDomain`, `NotPermitted` for dom0,
    /// `BadAddress`, `TooBig`.
    ConsoleRead = 0x0600,
    /// Type bytes into a domain's console (the UART's receive FIFO) (1.1).
    /// Registers as [`Op::ConsoleRead`]. Returns the bytes accepted (fewer
    /// than given when the FIFO is full).
    ConsoleWrite = 0x0601,
    /// Read, and unless [`crate::event::EVENT_READ_PEEK`] clear, the pending
    /// hypervisor events (1.2). RDI: GPA of [`crate::event::EventReadArgs`].
    /// Returns 0. Errors: `BadAddress`, `InvalidArgument` (unknown flags,
    /// reserved not 0); nothing is cleared on an error.
    EventRead = 0x0700,
    /// A domain's scheduling parameters (1.3). RDI: domain id (0 is dom0),
    /// RSI: GPA of a [`crate::sched::SchedParams`] buffer (written: domid,
    /// weight, cap, flags 0). Returns 0. Errors: `NoSuchDomain`,
    /// `BadAddress`.
    SchedGet = 0x0800,
    /// Set a domain's weight and/or cap (1.3). RDI: GPA of
    /// [`crate::sched::SchedParams`]; its `flags` say which to apply (a
    /// field whose flag is clear is left unchanged). Returns 0. Errors:
    /// `NoSuchDomain`, `InvalidArgument` (weight outside 1..=65535, cap above
    /// 100 times the physical CPUs, unknown flags), `BadAddress`.
    SchedSet = 0x0801,
    /// List a domain's vCPUs (1.3). RDI: GPA of
    /// [`crate::sched::VcpuListArgs`]. Returns the number of
    /// [`crate::sched::VcpuInfo`] records written. Errors: `NoSuchDomain`,
    /// `TooBig` (`capacity` records above [`MAX_BUFFER_BYTES`]),
    /// `BadAddress`.
    VcpuList = 0x0802,
    /// Set a vCPU's hard affinity (1.3). RDI: domain id, RSI: vCPU index,
    /// RDX: bitmap of physical CPUs (bits of CPUs that do not exist are
    /// ignored). Returns 0. Errors: `NoSuchDomain`, `InvalidArgument` (no
    /// such vCPU, no existing CPU in the set), `NotPermitted` where the
    /// hypervisor keeps the vCPU where it is (dom0's vCPUs, which are pinned
    /// one per CPU).
    VcpuSetAffinity = 0x0803,
}

impl Op {
    /// Every operation of this ABI version.
    pub const ALL: [Self; 19] = [
        Self::Version,
        Self::HvInfo,
        Self::LogRead,
        Self::DomainList,
        Self::DomainInfo,
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

    /// The operation number placed in RAX.
    #[must_use]
    pub const fn number(self) -> u64 {
        self as u64
    }

    /// The C macro name, e.g. `OXEN_OP_HV_INFO`.
    #[must_use]
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Version => "OXEN_OP_VERSION",
            Self::HvInfo => "OXEN_OP_HV_INFO",
            Self::LogRead => "OXEN_OP_LOG_READ",
            Self::DomainList => "OXEN_OP_DOMAIN_LIST",
            Self::DomainInfo => "OXEN_OP_DOMAIN_INFO",
            Self::DomainCreate => "OXEN_OP_DOMAIN_CREATE",
            Self::DomainDestroy => "OXEN_OP_DOMAIN_DESTROY",
            Self::DomainPause => "OXEN_OP_DOMAIN_PAUSE",
            Self::DomainUnpause => "OXEN_OP_DOMAIN_UNPAUSE",
            Self::DomainShutdown => "OXEN_OP_DOMAIN_SHUTDOWN",
            Self::DomainCopyIn => "OXEN_OP_DOMAIN_COPY_IN",
            Self::VcpuSetEntry => "OXEN_OP_VCPU_SET_ENTRY",
            Self::ConsoleRead => "OXEN_OP_CONSOLE_READ",
            Self::ConsoleWrite => "OXEN_OP_CONSOLE_WRITE",
            Self::EventRead => "OXEN_OP_EVENT_READ",
            Self::SchedGet => "OXEN_OP_SCHED_GET",
            Self::SchedSet => "OXEN_OP_SCHED_SET",
            Self::VcpuList => "OXEN_OP_VCPU_LIST",
            Self::VcpuSetAffinity => "OXEN_OP_VCPU_SET_AFFINITY",
        }
    }

    /// A one-line description.
    #[must_use]
    pub const fn doc(self) -> &'static str {
        match self {
            Self::Version => "negotiate the ABI version; RDI = GPA of struct oxen_version_args",
            Self::HvInfo => "hypervisor information; RDI = GPA of struct oxen_hv_info, RSI = size",
            Self::LogRead => "read the log ring; RDI = GPA of struct oxen_log_read_args",
            Self::DomainList => "list domains; RDI = GPA of struct oxen_domain_list_args",
            Self::DomainInfo => "one domain; RDI = domid, RSI = GPA of struct oxen_domain_info",
            Self::DomainCreate => {
                "1.1: create a paused domain; RDI = GPA of struct oxen_domain_create_args; returns the domid"
            }
            Self::DomainDestroy => "1.1: destroy a domain; RDI = domid",
            Self::DomainPause => "1.1: pause a domain; RDI = domid",
            Self::DomainUnpause => "1.1: unpause a domain (the first starts vCPU 0); RDI = domid",
            Self::DomainShutdown => {
                "1.1: ask a domain to shut down; RDI = domid, RSI = OXEN_SHUTDOWN_POWEROFF or _REBOOT"
            }
            Self::DomainCopyIn => {
                "1.1: copy into a domain that never ran; RDI = domid, RSI = dest GPA, RDX = source GPA, R10 = length; returns bytes copied"
            }
            Self::VcpuSetEntry => {
                "1.1: vCPU entry state; RDI = domid, RSI = vCPU (0), RDX = GPA of struct oxen_vcpu_entry"
            }
            Self::ConsoleRead => {
                "1.1: read console output; RDI = domid, RSI = buffer GPA, RDX = size; returns bytes consumed"
            }
            Self::ConsoleWrite => {
                "1.1: type into the console; RDI = domid, RSI = buffer GPA, RDX = size; returns bytes accepted"
            }
            Self::EventRead => {
                "1.2: read and clear the pending events; RDI = GPA of struct oxen_event_read_args"
            }
            Self::SchedGet => {
                "1.3: weight and cap; RDI = domid, RSI = GPA of struct oxen_sched_params"
            }
            Self::SchedSet => "1.3: set weight and/or cap; RDI = GPA of struct oxen_sched_params",
            Self::VcpuList => {
                "1.3: list a domain's vCPUs; RDI = GPA of struct oxen_vcpu_list_args; returns records"
            }
            Self::VcpuSetAffinity => {
                "1.3: hard affinity; RDI = domid, RSI = vCPU, RDX = bitmap of physical CPUs"
            }
        }
    }

    /// The group the operation belongs to.
    #[must_use]
    pub const fn group(self) -> OpGroup {
        match self {
            Self::Version | Self::HvInfo | Self::LogRead => OpGroup::System,
            Self::DomainList | Self::DomainInfo => OpGroup::DomainQuery,
            Self::DomainCreate
            | Self::DomainDestroy
            | Self::DomainPause
            | Self::DomainUnpause
            | Self::DomainShutdown => OpGroup::DomainLifecycle,
            Self::DomainCopyIn => OpGroup::DomainMemory,
            Self::VcpuSetEntry => OpGroup::Vcpu,
            Self::ConsoleRead | Self::ConsoleWrite => OpGroup::Console,
            Self::EventRead => OpGroup::Event,
            Self::SchedGet | Self::SchedSet | Self::VcpuList | Self::VcpuSetAffinity => {
                OpGroup::Sched
            }
        }
    }

    /// The ABI version that introduced the operation: a caller checks that
    /// the hypervisor [`AbiVersion::provides`] it before using it.
    #[must_use]
    pub const fn since(self) -> AbiVersion {
        match self.group() {
            OpGroup::System | OpGroup::DomainQuery => AbiVersion::new(1, 0),
            OpGroup::Event => AbiVersion::new(1, 2),
            OpGroup::Sched => AbiVersion::new(1, 3),
            _ => AbiVersion::new(1, 1),
        }
    }
}

/// An operation number that names no operation of this ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownOp(pub u64);

impl TryFrom<u64> for Op {
    type Error = UnknownOp;

    fn try_from(raw: u64) -> Result<Self, UnknownOp> {
        Self::ALL
            .into_iter()
            .find(|op| op.number() == raw)
            .ok_or(UnknownOp(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_numbers_round_trip_and_sit_in_their_group() {
        for op in Op::ALL {
            assert_eq!(Op::try_from(op.number()), Ok(op));
            assert_eq!(OpGroup::of(op.number()), Some(op.group()));
            assert!(op.group().is_defined());
        }
    }

    #[test]
    fn zero_and_out_of_range_numbers_are_invalid() {
        assert_eq!(Op::try_from(0), Err(UnknownOp(0)));
        assert_eq!(OpGroup::of(0), None);
        assert_eq!(OpGroup::of(0x1_0100), None);
        assert_eq!(OpGroup::of(0x0300), Some(OpGroup::DomainLifecycle));
        assert!(OpGroup::DomainLifecycle.is_defined());
        assert!(!OpGroup::Guest.is_defined());
    }

    #[test]
    fn unknown_numbers_are_not_implemented_only_in_open_groups() {
        use crate::Status;
        // Closed groups, no group, 0 and above 0xffff: invalid.
        for op in [
            0,
            0x0103,
            0x01ff,
            0x0202,
            0x0900,
            0x7fff,
            0x1_0300,
            u64::MAX,
        ] {
            assert_eq!(unknown_op_status(op), Status::InvalidOperation, "{op:#x}");
        }
        // The groups 1.1 opened keep their other numbers for later.
        for op in [
            0x0305, 0x03ff, 0x0401, 0x0501, 0x0602, 0x0701, 0x07ff, 0x0804, 0x08ff, 0x8000, 0x80ff,
        ] {
            assert_eq!(unknown_op_status(op), Status::NotImplemented, "{op:#x}");
        }
        for op in Op::ALL {
            assert_eq!(op.group().is_open(), op.since() != AbiVersion::new(1, 0));
        }
    }

    /// The numbers, written out: a change here is an ABI change.
    #[test]
    fn numbers_are_the_contract() {
        let numbers: std::vec::Vec<(u64, &str)> = Op::ALL
            .iter()
            .map(|op| (op.number(), op.c_name()))
            .collect();
        assert_eq!(
            numbers,
            [
                (0x0100, "OXEN_OP_VERSION"),
                (0x0101, "OXEN_OP_HV_INFO"),
                (0x0102, "OXEN_OP_LOG_READ"),
                (0x0200, "OXEN_OP_DOMAIN_LIST"),
                (0x0201, "OXEN_OP_DOMAIN_INFO"),
                (0x0300, "OXEN_OP_DOMAIN_CREATE"),
                (0x0301, "OXEN_OP_DOMAIN_DESTROY"),
                (0x0302, "OXEN_OP_DOMAIN_PAUSE"),
                (0x0303, "OXEN_OP_DOMAIN_UNPAUSE"),
                (0x0304, "OXEN_OP_DOMAIN_SHUTDOWN"),
                (0x0400, "OXEN_OP_DOMAIN_COPY_IN"),
                (0x0500, "OXEN_OP_VCPU_SET_ENTRY"),
                (0x0600, "OXEN_OP_CONSOLE_READ"),
                (0x0601, "OXEN_OP_CONSOLE_WRITE"),
                (0x0700, "OXEN_OP_EVENT_READ"),
                (0x0800, "OXEN_OP_SCHED_GET"),
                (0x0801, "OXEN_OP_SCHED_SET"),
                (0x0802, "OXEN_OP_VCPU_LIST"),
                (0x0803, "OXEN_OP_VCPU_SET_AFFINITY"),
            ]
        );
        assert!(
            Op::ALL
                .iter()
                .all(|op| crate::ABI_VERSION.provides(op.since()))
        );
    }

    #[test]
    fn vmcall_encoding() {
        assert_eq!(VMCALL_BYTES, [0x0f, 0x01, 0xc1]);
    }
}
