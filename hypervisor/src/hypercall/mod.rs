//! Hypercall dispatch for the operations of `dom0-abi` (ABI 1.3): decoding
//! the operation, checking every pointer argument against the caller's own
//! memory and every size against its bound, and producing the status for
//! RAX. Pure logic: the backend supplies the caller's memory
//! ([`GuestMemory`]) and the hypervisor's state ([`Platform`]). Nothing here
//! panics on any input; every refusal is a [`Status`].

use alloc::vec;
use alloc::vec::Vec;

use dom0_abi::event::{EVENT_READ_PEEK, EventReadArgs};
use dom0_abi::hypercall::{MAX_BUFFER_BYTES, unknown_op_status};
use dom0_abi::log::LOG_READ_CLEAR;
use dom0_abi::{
    ABI_VERSION, DomainInfo, DomainListArgs, HvInfo, LogReadArgs, Op, Status, VersionArgs,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub mod lifecycle;
pub mod sched;
#[cfg(test)]
mod sched_tests;
pub mod sim;
#[cfg(test)]
mod tests;

/// The memory of the calling domain, by guest-physical address.
pub trait GuestMemory {
    /// Whether `[gpa, gpa + len)` lies wholly in the caller's RAM:
    /// [`Status::BadAddress`] if not (an empty range is checked at `gpa`).
    fn check(&self, gpa: u64, len: u64) -> Result<(), Status>;
    /// Copies `out.len()` bytes from `gpa` (checked first).
    fn read(&self, gpa: u64, out: &mut [u8]) -> Result<(), Status>;
    /// Copies `data` to `gpa` (checked first).
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Status>;
}

/// RAM ranges `[start, end)` of a domain, for [`GuestMemory::check`].
#[derive(Debug, Clone, Copy)]
pub struct RamRanges<'a>(pub &'a [(u64, u64)]);

impl RamRanges<'_> {
    /// Whether `[gpa, gpa + len)` lies within one range.
    pub fn check(&self, gpa: u64, len: u64) -> Result<(), Status> {
        let end = gpa.checked_add(len).ok_or(Status::BadAddress)?;
        let inside = self.0.iter().any(|&(s, e)| s <= gpa && gpa < e && end <= e);
        if inside {
            Ok(())
        } else {
            Err(Status::BadAddress)
        }
    }
}

/// What the operations report about the hypervisor, and the domain
/// operations it carries out.
pub trait Platform: lifecycle::Lifecycle {
    /// Hypervisor information (version, ABI, CPUs, memory, features, time).
    fn hv_info(&self) -> HvInfo;
    /// Every domain, by increasing id.
    fn domains(&self) -> Vec<DomainInfo>;
    /// Up to `max` of the oldest bytes of the log ring and the dropped count;
    /// with `clear` they are consumed.
    fn log_read(&mut self, max: usize, clear: bool) -> (Vec<u8>, u64);
    /// The pending events and their counters; with `clear` the events
    /// returned are no longer pending (ABI 1.2).
    fn events_read(&mut self, clear: bool) -> crate::events::EventSnapshot;

    /// A domain's weight and cap (ABI 1.3); dom0 (id 0) included. The
    /// dispatcher fills in `domid` and clears `flags`.
    ///
    /// # Errors
    ///
    /// [`Status::NoSuchDomain`].
    fn sched_get(&self, domid: u32) -> Result<dom0_abi::SchedParams, Status>;
    /// Sets a domain's weight and/or cap (ABI 1.3); `None` leaves one
    /// unchanged. The dispatcher has checked the weight (1..=65535) and the
    /// cap (at most 100 times `hv_info().cpu_count`).
    ///
    /// # Errors
    ///
    /// [`Status::NoSuchDomain`]; [`Status::InvalidArgument`] for values the
    /// scheduler refuses.
    fn sched_set(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), Status>;
    /// A domain's vCPUs by increasing index (ABI 1.3); dom0 included.
    ///
    /// # Errors
    ///
    /// [`Status::NoSuchDomain`].
    fn vcpu_list(&self, domid: u32) -> Result<Vec<dom0_abi::VcpuInfo>, Status>;
    /// Sets a vCPU's hard affinity (ABI 1.3). `cpus` is not empty and holds
    /// only CPUs below `hv_info().cpu_count` (the dispatcher masks it).
    ///
    /// # Errors
    ///
    /// [`Status::NoSuchDomain`]; [`Status::InvalidArgument`] for a vCPU the
    /// domain does not have; [`Status::NotPermitted`] where the vCPU may not
    /// move (dom0's).
    fn vcpu_set_affinity(&mut self, domid: u32, vcpu: u32, cpus: u64) -> Result<(), Status>;
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The control domain (dom0).
    pub privileged: bool,
}

/// Handles hypercall `op` with `args` (RDI, RSI, RDX, R10, R8) from `caller`
/// and returns the value for RAX: `>= 0` success, `< 0` a [`Status`].
pub fn dispatch(
    op: u64,
    args: [u64; 5],
    caller: Caller,
    mem: &mut impl GuestMemory,
    platform: &mut impl Platform,
) -> i64 {
    match run(op, args, caller, mem, platform) {
        Ok(v) => i64::try_from(v).unwrap_or(i64::MAX),
        Err(s) => s.as_raw(),
    }
}

fn run(
    op: u64,
    args: [u64; 5],
    caller: Caller,
    mem: &mut impl GuestMemory,
    platform: &mut impl Platform,
) -> Result<u64, Status> {
    let op = Op::try_from(op).map_err(|_| unknown_op_status(op))?;
    if !caller.privileged {
        return Err(Status::NotPermitted);
    }
    match op {
        Op::Version => version(args[0], mem),
        Op::HvInfo => hv_info(args[0], args[1], mem, platform),
        Op::LogRead => log_read(args[0], mem, platform),
        Op::DomainList => domain_list(args[0], mem, platform),
        Op::DomainInfo => domain_info(args[0], args[1], mem, platform),
        Op::DomainCreate => lifecycle::create(args[0], mem, platform),
        Op::DomainDestroy | Op::DomainPause | Op::DomainUnpause => {
            lifecycle::simple(op, args[0], platform)
        }
        Op::DomainShutdown => lifecycle::shutdown(args[0], args[1], platform),
        Op::DomainCopyIn => lifecycle::copy_in(args, mem, platform),
        Op::VcpuSetEntry => lifecycle::set_entry(args, mem, platform),
        Op::ConsoleRead => lifecycle::console_read(args, mem, platform),
        Op::ConsoleWrite => lifecycle::console_write(args, mem, platform),
        Op::EventRead => event_read(args[0], mem, platform),
        Op::SchedGet => sched::get(args[0], args[1], mem, platform),
        Op::SchedSet => sched::set(args[0], mem, platform),
        Op::VcpuList => sched::vcpu_list(args[0], mem, platform),
        Op::VcpuSetAffinity => sched::vcpu_set_affinity(args, platform),
    }
}

pub(crate) fn read_struct<T: FromBytes + IntoBytes + KnownLayout + Immutable>(
    gpa: u64,
    mem: &impl GuestMemory,
) -> Result<T, Status> {
    let mut value = T::new_zeroed();
    mem.read(gpa, value.as_mut_bytes())?;
    Ok(value)
}

fn version(gpa: u64, mem: &mut impl GuestMemory) -> Result<u64, Status> {
    let mut a: VersionArgs = read_struct(gpa, mem)?;
    a.hypervisor_major = ABI_VERSION.major;
    a.hypervisor_minor = ABI_VERSION.minor;
    mem.write(gpa, a.as_bytes())?;
    if a.caller_major == ABI_VERSION.major {
        Ok(0)
    } else {
        Err(Status::VersionMismatch)
    }
}

fn hv_info(
    gpa: u64,
    size: u64,
    mem: &mut impl GuestMemory,
    platform: &impl Platform,
) -> Result<u64, Status> {
    let full = core::mem::size_of::<HvInfo>() as u64;
    if size > MAX_BUFFER_BYTES {
        return Err(Status::TooBig);
    }
    if size < full {
        return Err(Status::BufferTooSmall);
    }
    mem.check(gpa, size)?;
    let info = platform.hv_info();
    mem.write(gpa, info.as_bytes())?;
    Ok(full)
}

fn log_read(
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &mut impl Platform,
) -> Result<u64, Status> {
    let mut a: LogReadArgs = read_struct(gpa, mem)?;
    if !a.flags_valid() {
        return Err(Status::InvalidArgument);
    }
    if u64::from(a.size) > MAX_BUFFER_BYTES {
        return Err(Status::TooBig);
    }
    // Checked before anything is consumed from the ring.
    mem.check(a.buffer_gpa, u64::from(a.size))?;
    let (bytes, dropped) = platform.log_read(a.size as usize, a.flags & LOG_READ_CLEAR != 0);
    mem.write(a.buffer_gpa, &bytes)?;
    a.returned = bytes.len() as u32;
    a.dropped = u32::try_from(dropped).unwrap_or(u32::MAX);
    mem.write(gpa, a.as_bytes())?;
    Ok(u64::from(a.returned))
}

fn domain_list(
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &impl Platform,
) -> Result<u64, Status> {
    let mut a: DomainListArgs = read_struct(gpa, mem)?;
    let record = core::mem::size_of::<DomainInfo>() as u64;
    let bytes = u64::from(a.capacity) * record;
    if bytes > MAX_BUFFER_BYTES {
        return Err(Status::TooBig);
    }
    mem.check(a.buffer_gpa, bytes)?;
    let domains: Vec<DomainInfo> = platform
        .domains()
        .into_iter()
        .filter(|d| d.domid >= a.start_domid)
        .collect();
    let n = domains.len().min(a.capacity as usize);
    let mut out = vec![0u8; n * record as usize];
    for (chunk, d) in out.chunks_exact_mut(record as usize).zip(&domains) {
        chunk.copy_from_slice(d.as_bytes());
    }
    mem.write(a.buffer_gpa, &out)?;
    a.returned = n as u32;
    a.total = domains.len() as u32;
    mem.write(gpa, a.as_bytes())?;
    Ok(n as u64)
}

fn domain_info(
    domid: u64,
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &impl Platform,
) -> Result<u64, Status> {
    let size = core::mem::size_of::<DomainInfo>() as u64;
    mem.check(gpa, size)?;
    let domid = u32::try_from(domid).map_err(|_| Status::NoSuchDomain)?;
    let d = platform
        .domains()
        .into_iter()
        .find(|d| d.domid == domid)
        .ok_or(Status::NoSuchDomain)?;
    mem.write(gpa, d.as_bytes())?;
    Ok(0)
}

/// `EVENT_READ` (1.2): checked in full before the mask is cleared, so a bad
/// address or flag loses no event.
fn event_read(
    gpa: u64,
    mem: &mut impl GuestMemory,
    platform: &mut impl Platform,
) -> Result<u64, Status> {
    let mut a: EventReadArgs = read_struct(gpa, mem)?;
    if !a.valid() {
        return Err(Status::InvalidArgument);
    }
    mem.check(gpa, core::mem::size_of::<EventReadArgs>() as u64)?;
    let s = platform.events_read(a.flags & EVENT_READ_PEEK == 0);
    a.pending = s.pending;
    a.raised = s.raised;
    a.interrupts = s.interrupts;
    mem.write(gpa, a.as_bytes())?;
    Ok(0)
}
