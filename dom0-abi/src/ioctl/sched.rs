//! The argument structs of the ABI 1.3 scheduling requests.
//! [`super::Ioctl::SchedGet`] and [`super::Ioctl::SchedSet`] take
//! [`crate::SchedParams`] itself.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::hypercall::MAX_BUFFER_BYTES;
use crate::layout::{CType, StructLayout, struct_layout};
use crate::sched::VcpuInfo;

/// Argument of [`super::Ioctl::VcpuList`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlVcpuList {
    /// In: user address of an array of `capacity` [`VcpuInfo`] records.
    pub buffer: u64,
    /// In: the domain id (0 is dom0).
    pub domid: u32,
    /// In: records the array holds, at most [`MAX_VCPU_LIST_CAPACITY`]
    /// (`E2BIG` above).
    pub capacity: u32,
    /// Out: records written, by increasing vCPU index.
    pub returned: u32,
    /// Out: vCPUs the domain has.
    pub total: u32,
}

crate::assert_layout!(IoctlVcpuList, size = 24, {
    buffer: 0,
    domid: 8,
    capacity: 12,
    returned: 16,
    total: 20,
});

impl IoctlVcpuList {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlVcpuList,
        "oxen_ioctl_vcpu_list",
        "Argument of OXEN_IOCTL_VCPU_LIST (1.3).",
        [
            buffer: CType::U64 => "in: user address of capacity struct oxen_vcpu_info",
            domid: CType::U32 => "in: domain id, 0 is dom0",
            capacity: CType::U32 => "in: records, at most OXEN_MAX_VCPU_LIST_CAPACITY",
            returned: CType::U32 => "out: records written",
            total: CType::U32 => "out: vCPUs of the domain",
        ]
    );
}

/// The most records one [`super::Ioctl::VcpuList`] takes: as many as fit in
/// [`MAX_BUFFER_BYTES`].
pub const MAX_VCPU_LIST_CAPACITY: u32 = (MAX_BUFFER_BYTES / size_of::<VcpuInfo>() as u64) as u32;

/// Argument of [`super::Ioctl::VcpuSetAffinity`].
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct IoctlVcpuAffinity {
    /// In: the domain id.
    pub domid: u32,
    /// In: the vCPU index.
    pub vcpu: u32,
    /// In: the hard affinity, bit N = physical CPU N.
    pub affinity: u64,
}

crate::assert_layout!(IoctlVcpuAffinity, size = 16, {
    domid: 0,
    vcpu: 4,
    affinity: 8,
});

impl IoctlVcpuAffinity {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        IoctlVcpuAffinity,
        "oxen_ioctl_vcpu_affinity",
        "Argument of OXEN_IOCTL_VCPU_SET_AFFINITY (1.3).",
        [
            domid: CType::U32 => "in: domain id",
            vcpu: CType::U32 => "in: vCPU index",
            affinity: CType::U64 => "in: bit N = physical CPU N",
        ]
    );
}
