//! The domain-lifecycle operations of ABI 1.1 (create, destroy, pause,
//! unpause, shutdown, copy-in, vCPU entry, console): argument decoding and
//! checking; the hypervisor's side is [`Lifecycle`].

use alloc::vec;
use alloc::vec::Vec;

use dom0_abi::hypercall::MAX_BUFFER_BYTES;
use dom0_abi::lifecycle::{DomainCreateArgs, VCPU_MODE_LINUX64, VCPU_MODE_PVH, VcpuEntry};
use dom0_abi::{DOM0_ID, ShutdownReason, Status};
use zerocopy::IntoBytes;

use super::{GuestMemory, read_struct};

/// How a domain's boot vCPU starts (`dom0_abi` vCPU entry modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// The Xen PVH boot ABI: 32-bit protected mode, flat segments, paging
    /// off, EBX = the start-info address.
    Pvh {
        /// Entry point.
        rip: u32,
        /// EBX.
        start_info: u32,
    },
    /// The Linux 64-bit boot protocol: long mode with the caller's page
    /// tables and GDT, RSI = boot_params.
    Linux64 {
        /// Entry point.
        rip: u64,
        /// RSI.
        boot_params: u64,
        /// CR3 (identity tables in guest memory).
        cr3: u64,
        /// GDT base.
        gdt_base: u64,
        /// GDT limit.
        gdt_limit: u16,
    },
}

/// The hypervisor's domain operations, as the dispatcher calls them (ids
/// are never dom0's: the dispatcher refuses those first).
pub trait Lifecycle {
    /// Creates a paused domain with `memory_pages` of zeroed RAM and
    /// `vcpus` vCPUs; returns its id.
    fn create(&mut self, name: &str, memory_pages: u64, vcpus: u32) -> Result<u32, Status>;
    /// Destroys it and frees everything it had.
    fn destroy(&mut self, id: u32) -> Result<(), Status>;
    /// Pauses it.
    fn pause(&mut self, id: u32) -> Result<(), Status>;
    /// Unpauses it (the first time: starts its boot vCPU).
    fn unpause(&mut self, id: u32) -> Result<(), Status>;
    /// Asks the guest to power off or reboot.
    fn shutdown(&mut self, id: u32, reason: ShutdownReason) -> Result<(), Status>;
    /// Copies `len` bytes from the caller's `src_gpa` (checked by the
    /// caller of this method to lie in its RAM) to guest-physical `gpa` of a
    /// domain that never ran, straight from `mem` into the domain's memory.
    fn copy_in(
        &mut self,
        id: u32,
        gpa: u64,
        src_gpa: u64,
        len: usize,
        mem: &dyn GuestMemory,
    ) -> Result<(), Status>;
    /// Sets how its boot vCPU starts.
    fn set_entry(&mut self, id: u32, vcpu: u32, entry: EntryMode) -> Result<(), Status>;
    /// Takes up to `max` bytes of its console output.
    fn console_read(&mut self, id: u32, max: usize) -> Result<Vec<u8>, Status>;
    /// Types `data` on its console; returns how many bytes it took.
    fn console_write(&mut self, id: u32, data: &[u8]) -> Result<usize, Status>;
}

/// A domain id argument: a domU's.
fn domu_id(raw: u64) -> Result<u32, Status> {
    match u32::try_from(raw) {
        Ok(DOM0_ID) => Err(Status::NotPermitted),
        Ok(id) => Ok(id),
        Err(_) => Err(Status::NoSuchDomain),
    }
}

fn bounded(len: u64) -> Result<usize, Status> {
    if len > MAX_BUFFER_BYTES {
        return Err(Status::TooBig);
    }
    usize::try_from(len).map_err(|_| Status::TooBig)
}

/// DOMAIN_CREATE: RDI = GPA of the arguments.
pub fn create(
    gpa: u64,
    mem: &mut impl GuestMemory,
    hv: &mut impl Lifecycle,
) -> Result<u64, Status> {
    let mut a: DomainCreateArgs = read_struct(gpa, mem)?;
    if a.flags != 0 || a.reserved != 0 || a.memory_pages == 0 || a.vcpus == 0 {
        return Err(Status::InvalidArgument);
    }
    let end = a
        .name
        .iter()
        .position(|&b| b == 0)
        .ok_or(Status::InvalidArgument)?;
    let name = core::str::from_utf8(&a.name[..end]).map_err(|_| Status::InvalidArgument)?;
    let id = hv.create(name, a.memory_pages, a.vcpus)?;
    a.domid = id;
    mem.write(gpa, a.as_bytes())?;
    Ok(u64::from(id))
}

/// DOMAIN_DESTROY, PAUSE, UNPAUSE: RDI = domain id.
pub fn simple(op: dom0_abi::Op, id: u64, hv: &mut impl Lifecycle) -> Result<u64, Status> {
    let id = domu_id(id)?;
    match op {
        dom0_abi::Op::DomainDestroy => hv.destroy(id),
        dom0_abi::Op::DomainPause => hv.pause(id),
        _ => hv.unpause(id),
    }
    .map(|()| 0)
}

/// DOMAIN_SHUTDOWN: RDI = domain id, RSI = reason.
pub fn shutdown(id: u64, reason: u64, hv: &mut impl Lifecycle) -> Result<u64, Status> {
    let id = domu_id(id)?;
    let reason = u32::try_from(reason)
        .ok()
        .and_then(|r| ShutdownReason::try_from(r).ok())
        .filter(|r| matches!(r, ShutdownReason::Poweroff | ShutdownReason::Reboot))
        .ok_or(Status::InvalidArgument)?;
    hv.shutdown(id, reason).map(|()| 0)
}

/// DOMAIN_COPY_IN: RDI = domain id, RSI = destination GPA in the domain,
/// RDX = source GPA in the caller, R10 = length.
pub fn copy_in(
    args: [u64; 5],
    mem: &mut impl GuestMemory,
    hv: &mut impl Lifecycle,
) -> Result<u64, Status> {
    let id = domu_id(args[0])?;
    let len = bounded(args[3])?;
    mem.check(args[2], len as u64)?;
    hv.copy_in(id, args[1], args[2], len, &*mem)?;
    Ok(len as u64)
}

/// CONSOLE_READ: RDI = domain id, RSI = buffer GPA, RDX = size.
pub fn console_read(
    args: [u64; 5],
    mem: &mut impl GuestMemory,
    hv: &mut impl Lifecycle,
) -> Result<u64, Status> {
    let id = domu_id(args[0])?;
    let size = bounded(args[2])?;
    mem.check(args[1], size as u64)?;
    let bytes = hv.console_read(id, size)?;
    mem.write(args[1], &bytes)?;
    Ok(bytes.len() as u64)
}

/// CONSOLE_WRITE: RDI = domain id, RSI = bytes GPA, RDX = length.
pub fn console_write(
    args: [u64; 5],
    mem: &mut impl GuestMemory,
    hv: &mut impl Lifecycle,
) -> Result<u64, Status> {
    let id = domu_id(args[0])?;
    let len = bounded(args[2])?;
    let mut data = vec![0u8; len];
    mem.read(args[1], &mut data)?;
    hv.console_write(id, &data).map(|n| n as u64)
}

/// VCPU_SET_ENTRY: RDI = domain id, RSI = vCPU index, RDX = GPA of the
/// entry state.
pub fn set_entry(
    args: [u64; 5],
    mem: &mut impl GuestMemory,
    hv: &mut impl Lifecycle,
) -> Result<u64, Status> {
    let id = domu_id(args[0])?;
    let vcpu = u32::try_from(args[1]).map_err(|_| Status::InvalidArgument)?;
    let e: VcpuEntry = read_struct(args[2], mem)?;
    if e.reserved != 0 || e.reserved2 != 0 {
        return Err(Status::InvalidArgument);
    }
    let mode = match e.mode {
        VCPU_MODE_PVH => EntryMode::Pvh {
            rip: u32::try_from(e.rip).map_err(|_| Status::InvalidArgument)?,
            start_info: u32::try_from(e.rbx).map_err(|_| Status::InvalidArgument)?,
        },
        VCPU_MODE_LINUX64 => EntryMode::Linux64 {
            rip: e.rip,
            boot_params: e.rsi,
            cr3: e.cr3,
            gdt_base: e.gdt_base,
            gdt_limit: u16::try_from(e.gdt_limit).map_err(|_| Status::InvalidArgument)?,
        },
        _ => return Err(Status::InvalidArgument),
    };
    hv.set_entry(id, vcpu, mode).map(|()| 0)
}
