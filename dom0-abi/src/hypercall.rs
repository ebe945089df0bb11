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
//! uninitialised RAX). The groups are listed in [`OpGroup`]. A number in a reserved
//! group is refused with [`crate::Status::NotImplemented`]; a number outside every
//! group with [`crate::Status::InvalidOperation`].

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
    /// `0x03` (reserved): domain lifecycle: create, destroy, pause, unpause,
    /// shutdown.
    DomainLifecycle = 0x03,
    /// `0x04` (reserved): domain memory: populate, map foreign frames, unmap.
    DomainMemory = 0x04,
    /// `0x05` (reserved): vCPU state: get and set registers, vCPU info.
    Vcpu = 0x05,
    /// `0x06` (reserved): domain consoles.
    Console = 0x06,
    /// `0x80` (reserved): the small set a domU may call.
    Guest = 0x80,
}

impl OpGroup {
    /// Every group, in numeric order.
    pub const ALL: [Self; 7] = [
        Self::System,
        Self::DomainQuery,
        Self::DomainLifecycle,
        Self::DomainMemory,
        Self::Vcpu,
        Self::Console,
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
    /// reserved for later minor versions).
    #[must_use]
    pub const fn is_defined(self) -> bool {
        matches!(self, Self::System | Self::DomainQuery)
    }
}

/// An operation of ABI 1.0.
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
}

impl Op {
    /// Every operation of this ABI version.
    pub const ALL: [Self; 5] = [
        Self::Version,
        Self::HvInfo,
        Self::LogRead,
        Self::DomainList,
        Self::DomainInfo,
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
        }
    }

    /// The group the operation belongs to.
    #[must_use]
    pub const fn group(self) -> OpGroup {
        match self {
            Self::Version | Self::HvInfo | Self::LogRead => OpGroup::System,
            Self::DomainList | Self::DomainInfo => OpGroup::DomainQuery,
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
        assert!(!OpGroup::DomainLifecycle.is_defined());
    }

    #[test]
    fn vmcall_encoding() {
        assert_eq!(VMCALL_BYTES, [0x0f, 0x01, 0xc1]);
    }
}
