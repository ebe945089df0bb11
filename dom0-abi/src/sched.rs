//! Scheduling (ABI 1.3): a domain's credit2 weight and cap
//! ([`crate::Op::SchedGet`], [`crate::Op::SchedSet`]), its vCPUs
//! ([`crate::Op::VcpuList`]) and their hard affinity
//! ([`crate::Op::VcpuSetAffinity`]).
//!
//! The hypervisor's scheduler gives each domain a *weight* (its relative
//! share of contended CPUs, [`WEIGHT_MIN`] to [`WEIGHT_MAX`], default
//! [`WEIGHT_DEFAULT`]) and a *cap* (the most CPU time all its vCPUs together
//! may use, in percent of one CPU; 0 is no cap; at most 100 times the
//! number of physical CPUs). Each vCPU has a hard affinity: the physical
//! CPUs it may run on, a bitmap of CPUs 0 to 63.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, Flag, StructLayout, struct_layout};

/// The smallest weight.
pub const WEIGHT_MIN: u32 = 1;
/// The largest weight.
pub const WEIGHT_MAX: u32 = 65535;
/// The weight of a domain nobody configured (as Xen's toolstack).
pub const WEIGHT_DEFAULT: u32 = 256;
/// The cap that means "no cap".
pub const CAP_NONE: u32 = 0;

/// [`SchedParams::flags`] in [`crate::Op::SchedSet`]: set the weight.
pub const SCHED_SET_WEIGHT: u32 = 1 << 0;
/// [`SchedParams::flags`] in [`crate::Op::SchedSet`]: set the cap.
pub const SCHED_SET_CAP: u32 = 1 << 1;
/// Every flag [`SchedParams::flags`] may carry in this ABI version.
pub const SCHED_SET_ALL: u32 = SCHED_SET_WEIGHT | SCHED_SET_CAP;

/// The bits of [`SchedParams::flags`].
pub const SCHED_SET_FLAGS: &[Flag] = &[
    Flag {
        name: "weight",
        c_name: "OXEN_SCHED_SET_WEIGHT",
        value: SCHED_SET_WEIGHT as u64,
        doc: "OXEN_OP_SCHED_SET: apply weight (else left unchanged)",
    },
    Flag {
        name: "cap",
        c_name: "OXEN_SCHED_SET_CAP",
        value: SCHED_SET_CAP as u64,
        doc: "OXEN_OP_SCHED_SET: apply cap (else left unchanged)",
    },
];

/// A domain's scheduling parameters: the result of [`crate::Op::SchedGet`]
/// and the argument of [`crate::Op::SchedSet`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SchedParams {
    /// The domain id (0 is dom0).
    pub domid: u32,
    /// Its weight, [`WEIGHT_MIN`] to [`WEIGHT_MAX`].
    pub weight: u32,
    /// Its cap in percent of one CPU, [`CAP_NONE`] for none, at most 100
    /// times the physical CPUs.
    pub cap: u32,
    /// `SchedSet`: [`SCHED_SET_FLAGS`] bits saying which of `weight` and
    /// `cap` to apply (a field whose bit is clear is ignored and left
    /// unchanged; other bits must be 0). `SchedGet`: written as 0.
    pub flags: u32,
}

crate::assert_layout!(SchedParams, size = 16, {
    domid: 0,
    weight: 4,
    cap: 8,
    flags: 12,
});

impl SchedParams {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        SchedParams,
        "oxen_sched_params",
        "Result of OXEN_OP_SCHED_GET, argument of OXEN_OP_SCHED_SET (1.3).",
        [
            domid: CType::U32 => "domain id, 0 is dom0",
            weight: CType::U32 => "1 to 65535 (default 256)",
            cap: CType::U32 => "percent of one CPU, 0 = none, at most 100 * CPUs",
            flags: CType::U32 => "SET: OXEN_SCHED_SET_* (which to apply); GET: 0",
        ]
    );

    /// A [`crate::Op::SchedSet`] request: `None` leaves a value unchanged.
    #[must_use]
    pub const fn set(domid: u32, weight: Option<u32>, cap: Option<u32>) -> Self {
        let mut p = Self {
            domid,
            weight: 0,
            cap: 0,
            flags: 0,
        };
        if let Some(w) = weight {
            p.weight = w;
            p.flags |= SCHED_SET_WEIGHT;
        }
        if let Some(c) = cap {
            p.cap = c;
            p.flags |= SCHED_SET_CAP;
        }
        p
    }

    /// The weight a `SchedSet` applies, if its flag is set.
    #[must_use]
    pub const fn weight_to_set(&self) -> Option<u32> {
        if self.flags & SCHED_SET_WEIGHT != 0 {
            Some(self.weight)
        } else {
            None
        }
    }

    /// The cap a `SchedSet` applies, if its flag is set.
    #[must_use]
    pub const fn cap_to_set(&self) -> Option<u32> {
        if self.flags & SCHED_SET_CAP != 0 {
            Some(self.cap)
        } else {
            None
        }
    }
}

/// Whether `weight` is one a domain may have.
#[must_use]
pub const fn weight_valid(weight: u32) -> bool {
    weight >= WEIGHT_MIN && weight <= WEIGHT_MAX
}

/// Whether `cap` (percent of one CPU) is one a domain may have on a machine
/// of `cpus` physical CPUs.
#[must_use]
pub const fn cap_valid(cap: u32, cpus: u32) -> bool {
    cap as u64 <= 100 * cpus as u64
}

/// Where a vCPU stands (stable numbers; 0 is never valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum VcpuState {
    /// On a physical CPU now.
    Running = 1,
    /// Ready to run, waiting for a CPU (or for its domain's cap budget to
    /// be refilled).
    Runnable = 2,
    /// Halted, waiting for an interrupt.
    Blocked = 3,
    /// Its domain is paused.
    Paused = 4,
    /// Not started (a secondary vCPU the guest has not brought up) or taken
    /// down by the guest.
    Offline = 5,
}

impl VcpuState {
    /// Every state.
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Runnable,
        Self::Blocked,
        Self::Paused,
        Self::Offline,
    ];

    /// C macro name.
    #[must_use]
    pub const fn c_name(self) -> &'static str {
        match self {
            Self::Running => "OXEN_VCPU_STATE_RUNNING",
            Self::Runnable => "OXEN_VCPU_STATE_RUNNABLE",
            Self::Blocked => "OXEN_VCPU_STATE_BLOCKED",
            Self::Paused => "OXEN_VCPU_STATE_PAUSED",
            Self::Offline => "OXEN_VCPU_STATE_OFFLINE",
        }
    }
}

impl TryFrom<u32> for VcpuState {
    type Error = u32;

    fn try_from(raw: u32) -> Result<Self, u32> {
        Self::ALL.into_iter().find(|s| *s as u32 == raw).ok_or(raw)
    }
}

/// One vCPU, as [`crate::Op::VcpuList`] reports it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuInfo {
    /// The vCPU's index in its domain.
    pub vcpu: u32,
    /// A [`VcpuState`] number.
    pub state: u32,
    /// The physical CPU it runs on, or last ran (or waits) on.
    pub cpu: u32,
    /// Must be 0.
    pub reserved: u32,
    /// CPU time it has used, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Its hard affinity: bit N set = it may run on physical CPU N.
    pub affinity: u64,
}

crate::assert_layout!(VcpuInfo, size = 32, {
    vcpu: 0,
    state: 4,
    cpu: 8,
    reserved: 12,
    cpu_time_ns: 16,
    affinity: 24,
});

impl VcpuInfo {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        VcpuInfo,
        "oxen_vcpu_info",
        "One vCPU (OXEN_OP_VCPU_LIST, 1.3).",
        [
            vcpu: CType::U32 => "vCPU index in its domain",
            state: CType::U32 => "OXEN_VCPU_STATE_*",
            cpu: CType::U32 => "physical CPU it runs on, or last ran on",
            reserved: CType::U32 => "0",
            cpu_time_ns: CType::U64 => "CPU time used, ns",
            affinity: CType::U64 => "hard affinity: bit N = physical CPU N",
        ]
    );

    /// The decoded state, or the raw number if this crate does not know it.
    ///
    /// # Errors
    ///
    /// Returns the raw number when it names no [`VcpuState`].
    pub fn state(&self) -> Result<VcpuState, u32> {
        VcpuState::try_from(self.state)
    }
}

/// Argument of [`crate::Op::VcpuList`].
///
/// Records are written for the domain's vCPUs by increasing index, at most
/// `capacity` of them; `total` says how many it has, so a caller can retry
/// with a larger buffer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VcpuListArgs {
    /// In: GPA of an array of `capacity` [`VcpuInfo`] records.
    pub buffer_gpa: u64,
    /// In: the domain id (0 is dom0).
    pub domid: u32,
    /// In: number of records the buffer holds.
    pub capacity: u32,
    /// Out: number of records written.
    pub returned: u32,
    /// Out: number of vCPUs the domain has.
    pub total: u32,
}

crate::assert_layout!(VcpuListArgs, size = 24, {
    buffer_gpa: 0,
    domid: 8,
    capacity: 12,
    returned: 16,
    total: 20,
});

impl VcpuListArgs {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        VcpuListArgs,
        "oxen_vcpu_list_args",
        "Argument of OXEN_OP_VCPU_LIST (by guest-physical address in RDI, 1.3).",
        [
            buffer_gpa: CType::U64 => "in: GPA of capacity struct oxen_vcpu_info",
            domid: CType::U32 => "in: domain id, 0 is dom0",
            capacity: CType::U32 => "in: records the buffer holds",
            returned: CType::U32 => "out: records written",
            total: CType::U32 => "out: vCPUs of the domain",
        ]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_zero_is_invalid() {
        for s in VcpuState::ALL {
            assert_eq!(VcpuState::try_from(s as u32), Ok(s));
        }
        assert_eq!(VcpuState::try_from(0), Err(0));
        assert_eq!(VcpuState::try_from(6), Err(6));
    }

    /// The numbers, written out: a change here is an ABI change.
    #[test]
    fn state_numbers_are_the_contract() {
        let numbers: std::vec::Vec<u32> = VcpuState::ALL.iter().map(|s| *s as u32).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
        assert_eq!((SCHED_SET_WEIGHT, SCHED_SET_CAP), (1, 2));
    }

    #[test]
    fn set_requests_flag_what_they_change() {
        let p = SchedParams::set(4, Some(512), None);
        assert_eq!(p.flags, SCHED_SET_WEIGHT);
        assert_eq!((p.weight_to_set(), p.cap_to_set()), (Some(512), None));
        let p = SchedParams::set(4, None, Some(0));
        assert_eq!(p.flags, SCHED_SET_CAP);
        assert_eq!((p.weight_to_set(), p.cap_to_set()), (None, Some(0)));
        assert_eq!(SchedParams::set(4, None, None).flags, 0);
    }

    #[test]
    fn weight_and_cap_bounds() {
        assert!(!weight_valid(0));
        assert!(weight_valid(1) && weight_valid(256) && weight_valid(65535));
        assert!(!weight_valid(65536));
        assert!(cap_valid(0, 1) && cap_valid(200, 2));
        assert!(!cap_valid(201, 2));
        assert!(cap_valid(u32::MAX, u32::MAX));
    }
}
