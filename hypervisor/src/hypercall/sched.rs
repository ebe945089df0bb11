//! The scheduling operations of ABI 1.3 (a domain's weight and cap, its
//! vCPUs, their hard affinity): argument decoding and checking. The
//! hypervisor's side is the `sched_*` and `vcpu_*` methods of
//! [`Platform`].
//!
//! Unlike the lifecycle operations, these accept dom0 (domain id 0): its
//! weight and cap can be set and its vCPUs listed. Whether dom0's vCPUs may
//! move is the platform's call ([`Status::NotPermitted`] where it keeps
//! them pinned).

use alloc::vec;

use dom0_abi::Status;
use dom0_abi::hypercall::MAX_BUFFER_BYTES;
use dom0_abi::sched::{
    SCHED_SET_ALL, SchedParams, VcpuInfo, VcpuListArgs, cap_valid, weight_valid,
};
use zerocopy::IntoBytes;

use super::{GuestMemory, Platform, read_struct};

/// A domain id argument (dom0 included).
fn domid(raw: u64) -> Result<u32, Status> {
    u32::try_from(raw).map_err(|_| Status::NoSuchDomain)
}

/// The bitmap of the machine's CPUs.
fn online_cpus(platform: &impl Platform) -> u64 {
    match platform.hv_info().cpu_count {
        0 => 0,
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// SCHED_GET: RDI = domain id, RSI = GPA of the result.
pub fn get(
    id: u64,
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &impl Platform,
) -> Result<u64, Status> {
    mem.check(gpa, core::mem::size_of::<SchedParams>() as u64)?;
    let id = domid(id)?;
    let mut p = platform.sched_get(id)?;
    p.domid = id;
    p.flags = 0;
    mem.write(gpa, p.as_bytes())?;
    Ok(0)
}

/// SCHED_SET: RDI = GPA of the parameters; everything is checked before
/// anything changes.
pub fn set(
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &mut impl Platform,
) -> Result<u64, Status> {
    let p: SchedParams = read_struct(gpa, mem)?;
    if p.flags & !SCHED_SET_ALL != 0 {
        return Err(Status::InvalidArgument);
    }
    let weight = p.weight_to_set();
    let cap = p.cap_to_set();
    if weight.is_some_and(|w| !weight_valid(w)) {
        return Err(Status::InvalidArgument);
    }
    if cap.is_some_and(|c| !cap_valid(c, platform.hv_info().cpu_count)) {
        return Err(Status::InvalidArgument);
    }
    platform.sched_set(p.domid, weight, cap).map(|()| 0)
}

/// VCPU_LIST: RDI = GPA of the arguments; returns the records written.
pub fn vcpu_list(
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &impl Platform,
) -> Result<u64, Status> {
    let mut a: VcpuListArgs = read_struct(gpa, mem)?;
    let record = core::mem::size_of::<VcpuInfo>();
    let bytes = u64::from(a.capacity) * record as u64;
    if bytes > MAX_BUFFER_BYTES {
        return Err(Status::TooBig);
    }
    mem.check(a.buffer_gpa, bytes)?;
    let vcpus = platform.vcpu_list(a.domid)?;
    let n = vcpus.len().min(a.capacity as usize);
    let mut out = vec![0u8; n * record];
    for (chunk, v) in out.chunks_exact_mut(record).zip(&vcpus) {
        let mut v = *v;
        v.reserved = 0;
        chunk.copy_from_slice(v.as_bytes());
    }
    mem.write(a.buffer_gpa, &out)?;
    a.returned = n as u32;
    a.total = u32::try_from(vcpus.len()).unwrap_or(u32::MAX);
    mem.write(gpa, a.as_bytes())?;
    Ok(n as u64)
}

/// VCPU_SET_AFFINITY: RDI = domain id, RSI = vCPU, RDX = CPU bitmap. The
/// bits of CPUs the machine does not have are dropped; nothing left is
/// [`Status::InvalidArgument`].
pub fn vcpu_set_affinity(args: [u64; 5], platform: &mut impl Platform) -> Result<u64, Status> {
    let id = domid(args[0])?;
    let vcpu = u32::try_from(args[1]).map_err(|_| Status::InvalidArgument)?;
    let cpus = args[2] & online_cpus(platform);
    if cpus == 0 {
        return Err(Status::InvalidArgument);
    }
    platform.vcpu_set_affinity(id, vcpu, cpus).map(|()| 0)
}
