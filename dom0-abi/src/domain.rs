//! Domain queries: [`crate::Op::DomainList`] and [`crate::Op::DomainInfo`].

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, Flag, StructLayout, struct_layout};

/// Length of [`DomainInfo::name`].
pub const DOMAIN_NAME_LEN: usize = 64;

/// The id of dom0.
pub const DOM0_ID: u32 = 0;

/// The state of a domain (stable numbers; 0 is never a valid state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DomainState {
    /// At least one vCPU is running or runnable.
    Running = 1,
    /// Every vCPU is halted, waiting for an event.
    Blocked = 2,
    /// Paused by the toolstack (a newly built domain starts paused).
    Paused = 3,
    /// The guest shut itself down; see [`DomainInfo::shutdown_reason`].
    Shutdown = 4,
    /// Being destroyed; its memory is being returned to the pool.
    Dying = 5,
}

impl DomainState {
    /// Every state.
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Blocked,
        Self::Paused,
        Self::Shutdown,
        Self::Dying,
    ];

    /// C macro name.
    #[must_use]
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Running => "OXEN_DOMAIN_STATE_RUNNING",
            Self::Blocked => "OXEN_DOMAIN_STATE_BLOCKED",
            Self::Paused => "OXEN_DOMAIN_STATE_PAUSED",
            Self::Shutdown => "OXEN_DOMAIN_STATE_SHUTDOWN",
            Self::Dying => "OXEN_DOMAIN_STATE_DYING",
        }
    }

    /// The letter `xl list` shows in its State column (`r`, `b`, `p`, `s`, `d`).
    #[must_use]
    pub const fn xl_letter(self) -> char {
        match self {
            Self::Running => 'r',
            Self::Blocked => 'b',
            Self::Paused => 'p',
            Self::Shutdown => 's',
            Self::Dying => 'd',
        }
    }
}

impl TryFrom<u32> for DomainState {
    type Error = u32;

    fn try_from(raw: u32) -> Result<Self, u32> {
        Self::ALL.into_iter().find(|s| *s as u32 == raw).ok_or(raw)
    }
}

/// Why a domain shut down (stable numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ShutdownReason {
    /// Not shut down.
    None = 0,
    /// The guest powered off.
    Poweroff = 1,
    /// The guest asked for a reboot.
    Reboot = 2,
    /// The guest crashed (triple fault or a fatal state).
    Crash = 3,
}

impl ShutdownReason {
    /// Every reason.
    pub const ALL: [Self; 4] = [Self::None, Self::Poweroff, Self::Reboot, Self::Crash];

    /// C macro name.
    #[must_use]
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::None => "OXEN_SHUTDOWN_NONE",
            Self::Poweroff => "OXEN_SHUTDOWN_POWEROFF",
            Self::Reboot => "OXEN_SHUTDOWN_REBOOT",
            Self::Crash => "OXEN_SHUTDOWN_CRASH",
        }
    }
}

impl TryFrom<u32> for ShutdownReason {
    type Error = u32;

    fn try_from(raw: u32) -> Result<Self, u32> {
        Self::ALL.into_iter().find(|s| *s as u32 == raw).ok_or(raw)
    }
}

/// The domain is the control domain (dom0).
pub const DOMAIN_FLAG_PRIVILEGED: u32 = 1 << 0;

/// The bits of [`DomainInfo::flags`].
pub const DOMAIN_FLAGS: &[Flag] = &[Flag {
    name: "privileged",
    c_name: "OXEN_DOMAIN_FLAG_PRIVILEGED",
    value: DOMAIN_FLAG_PRIVILEGED as u64,
    doc: "the control domain (dom0)",
}];

/// One domain, as reported by [`crate::Op::DomainInfo`] and
/// [`crate::Op::DomainList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DomainInfo {
    /// Domain id (0 is dom0).
    pub domid: u32,
    /// A [`DomainState`] number.
    pub state: u32,
    /// [`DOMAIN_FLAGS`] bits.
    pub flags: u32,
    /// A [`ShutdownReason`] number, meaningful when `state` is `Shutdown`.
    pub shutdown_reason: u32,
    /// Name, UTF-8, NUL-padded.
    pub name: [u8; DOMAIN_NAME_LEN],
    /// Pages currently allocated to the domain.
    pub memory_pages: u64,
    /// Pages the domain may grow to.
    pub max_memory_pages: u64,
    /// vCPUs online.
    pub vcpus: u32,
    /// vCPUs the domain was created with (online or not).
    pub max_vcpus: u32,
    /// CPU time consumed by all vCPUs, in nanoseconds.
    pub cpu_time_ns: u64,
}

crate::assert_layout!(DomainInfo, size = 112, {
    domid: 0,
    state: 4,
    flags: 8,
    shutdown_reason: 12,
    name: 16,
    memory_pages: 80,
    max_memory_pages: 88,
    vcpus: 96,
    max_vcpus: 100,
    cpu_time_ns: 104,
});

impl DomainInfo {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        DomainInfo,
        "oxen_domain_info",
        "One domain (OXEN_OP_DOMAIN_INFO, OXEN_OP_DOMAIN_LIST).",
        [
            domid: CType::U32 => "domain id, 0 is dom0",
            state: CType::U32 => "OXEN_DOMAIN_STATE_*",
            flags: CType::U32 => "OXEN_DOMAIN_FLAG_* bits",
            shutdown_reason: CType::U32 => "OXEN_SHUTDOWN_*, when state is SHUTDOWN",
            name: CType::Bytes(DOMAIN_NAME_LEN) => "name, UTF-8, NUL-padded",
            memory_pages: CType::U64 => "pages allocated",
            max_memory_pages: CType::U64 => "pages the domain may grow to",
            vcpus: CType::U32 => "vCPUs online",
            max_vcpus: CType::U32 => "vCPUs created",
            cpu_time_ns: CType::U64 => "CPU time of all vCPUs, ns",
        ]
    );

    /// The name up to its first NUL, if it is UTF-8.
    #[must_use]
    pub fn name_str(&self) -> Option<&str> {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..end]).ok()
    }

    /// The decoded state, or the raw number if this crate does not know it.
    ///
    /// # Errors
    ///
    /// Returns the raw number when it names no [`DomainState`].
    pub fn state(&self) -> Result<DomainState, u32> {
        DomainState::try_from(self.state)
    }
}

/// Argument of [`crate::Op::DomainList`].
///
/// Records are written for the domains with id `>= start_domid`, in increasing id
/// order, at most `capacity` of them; `total` tells how many such domains exist, so
/// a caller can retry with a larger buffer or page on from the last id + 1.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct DomainListArgs {
    /// In: GPA of an array of `capacity` [`DomainInfo`] records.
    pub buffer_gpa: u64,
    /// In: number of records the buffer holds.
    pub capacity: u32,
    /// In: the smallest domain id to report.
    pub start_domid: u32,
    /// Out: number of records written.
    pub returned: u32,
    /// Out: number of domains with id `>= start_domid`.
    pub total: u32,
}

crate::assert_layout!(DomainListArgs, size = 24, {
    buffer_gpa: 0,
    capacity: 8,
    start_domid: 12,
    returned: 16,
    total: 20,
});

impl DomainListArgs {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        DomainListArgs,
        "oxen_domain_list_args",
        "Argument of OXEN_OP_DOMAIN_LIST (by guest-physical address in RDI).",
        [
            buffer_gpa: CType::U64 => "in: GPA of capacity struct oxen_domain_info",
            capacity: CType::U32 => "in: records the buffer holds",
            start_domid: CType::U32 => "in: smallest domain id to report",
            returned: CType::U32 => "out: records written",
            total: CType::U32 => "out: domains with id >= start_domid",
        ]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_round_trip() {
        for s in DomainState::ALL {
            assert_eq!(DomainState::try_from(s as u32), Ok(s));
        }
        for r in ShutdownReason::ALL {
            assert_eq!(ShutdownReason::try_from(r as u32), Ok(r));
        }
        assert_eq!(DomainState::try_from(0), Err(0));
        assert_eq!(ShutdownReason::try_from(9), Err(9));
    }

    #[test]
    fn name_str_handles_full_and_short_names() {
        let mut info = <DomainInfo as zerocopy::FromZeros>::new_zeroed();
        info.name[..8].copy_from_slice(b"Domain-0");
        assert_eq!(info.name_str(), Some("Domain-0"));
        info.name = [b'a'; DOMAIN_NAME_LEN];
        assert_eq!(info.name_str().map(str::len), Some(DOMAIN_NAME_LEN));
    }
}
