//! The one place that calls `ioctl(2)`: a safe function per request, which
//! sets every user address in the argument itself from a borrowed slice.
#![allow(unsafe_code, reason = "ioctl(2) on /dev/hvctl")]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd as _;

use dom0_abi::ioctl::{
    Ioctl, IoctlConsole, IoctlCopyIn, IoctlDomainInfo, IoctlDomainList, IoctlDomainShutdown,
    IoctlDomid, IoctlEventRead, IoctlLogRead, IoctlVcpuAffinity, IoctlVcpuList, IoctlVcpuSetEntry,
};
use dom0_abi::{DomainCreateArgs, DomainInfo, HvInfo, SchedParams, VcpuInfo, VersionArgs};
use zerocopy::{FromBytes, IntoBytes};

/// A slice length as the `u32` size field of a request; `E2BIG` if it does
/// not fit (the driver would refuse it anyway).
fn len_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))
}

/// [`Ioctl::Version`].
pub fn version(file: &File, args: &mut VersionArgs) -> io::Result<()> {
    // SAFETY: VersionArgs holds no user address.
    unsafe { ioctl(file, Ioctl::Version, args) }
}

/// [`Ioctl::HvInfo`].
pub fn hv_info(file: &File, info: &mut HvInfo) -> io::Result<()> {
    // SAFETY: HvInfo holds no user address.
    unsafe { ioctl(file, Ioctl::HvInfo, info) }
}

/// [`Ioctl::DomainInfo`].
pub fn domain_info(file: &File, req: &mut IoctlDomainInfo) -> io::Result<()> {
    // SAFETY: IoctlDomainInfo holds no user address.
    unsafe { ioctl(file, Ioctl::DomainInfo, req) }
}

/// [`Ioctl::DomainList`] into `records` (its length is the capacity;
/// `req.start_domid` as the caller set it).
pub fn domain_list(
    file: &File,
    req: &mut IoctlDomainList,
    records: &mut [DomainInfo],
) -> io::Result<()> {
    req.buffer = records.as_mut_ptr() as u64;
    req.capacity = len_u32(records.len())?;
    // SAFETY: `buffer` is `records`, exclusively borrowed until this
    // returns, and `capacity` its length: the driver writes at most that
    // many records, and any bytes are a valid DomainInfo.
    unsafe { ioctl(file, Ioctl::DomainList, req) }
}

/// [`Ioctl::LogRead`] into `buf` (`req.flags` as the caller set them).
pub fn log_read(file: &File, req: &mut IoctlLogRead, buf: &mut [u8]) -> io::Result<()> {
    req.buffer = buf.as_mut_ptr() as u64;
    req.size = len_u32(buf.len())?;
    // SAFETY: `buffer` is `buf`, exclusively borrowed until this returns,
    // and `size` its length: the driver writes at most that many bytes.
    unsafe { ioctl(file, Ioctl::LogRead, req) }
}

/// [`Ioctl::DomainCreate`]; `args.domid` is filled in.
pub fn domain_create(file: &File, args: &mut DomainCreateArgs) -> io::Result<()> {
    // SAFETY: DomainCreateArgs holds no user address.
    unsafe { ioctl(file, Ioctl::DomainCreate, args) }
}

/// [`Ioctl::DomainDestroy`], [`Ioctl::DomainPause`] or
/// [`Ioctl::DomainUnpause`] (`request` must be one of them).
pub fn domid_request(file: &File, request: Ioctl, domid: u32) -> io::Result<()> {
    assert!(
        matches!(
            request,
            Ioctl::DomainDestroy | Ioctl::DomainPause | Ioctl::DomainUnpause
        ),
        "{request:?} does not take a domain id"
    );
    let mut req = IoctlDomid::new(domid);
    // SAFETY: IoctlDomid holds no user address.
    unsafe { ioctl(file, request, &mut req) }
}

/// [`Ioctl::DomainShutdown`].
pub fn domain_shutdown(file: &File, req: &mut IoctlDomainShutdown) -> io::Result<()> {
    // SAFETY: IoctlDomainShutdown holds no user address.
    unsafe { ioctl(file, Ioctl::DomainShutdown, req) }
}

/// [`Ioctl::DomainCopyIn`] from `bytes` (`req.domid`, `req.dest_gpa` as
/// the caller set them).
pub fn copy_in(file: &File, req: &mut IoctlCopyIn, bytes: &[u8]) -> io::Result<()> {
    req.buffer = bytes.as_ptr() as u64;
    req.length = len_u32(bytes.len())?;
    // SAFETY: `buffer` is `bytes`, borrowed until this returns, and
    // `length` its length: the driver only reads that many bytes from it.
    unsafe { ioctl(file, Ioctl::DomainCopyIn, req) }
}

/// [`Ioctl::VcpuSetEntry`].
pub fn vcpu_set_entry(file: &File, req: &mut IoctlVcpuSetEntry) -> io::Result<()> {
    // SAFETY: IoctlVcpuSetEntry holds no user address.
    unsafe { ioctl(file, Ioctl::VcpuSetEntry, req) }
}

/// [`Ioctl::ConsoleRead`] into `buf` (`req.domid` as the caller set it).
pub fn console_read(file: &File, req: &mut IoctlConsole, buf: &mut [u8]) -> io::Result<()> {
    req.buffer = buf.as_mut_ptr() as u64;
    req.size = len_u32(buf.len())?;
    // SAFETY: `buffer` is `buf`, exclusively borrowed until this returns,
    // and `size` its length: the driver writes at most that many bytes.
    unsafe { ioctl(file, Ioctl::ConsoleRead, req) }
}

/// [`Ioctl::ConsoleWrite`] from `bytes` (`req.domid` as the caller set it).
pub fn console_write(file: &File, req: &mut IoctlConsole, bytes: &[u8]) -> io::Result<()> {
    req.buffer = bytes.as_ptr() as u64;
    req.size = len_u32(bytes.len())?;
    // SAFETY: `buffer` is `bytes`, borrowed until this returns, and `size`
    // its length: the driver only reads that many bytes from it.
    unsafe { ioctl(file, Ioctl::ConsoleWrite, req) }
}

/// [`Ioctl::EventRead`] (`req.flags` as the caller set them).
pub fn event_read(file: &File, req: &mut IoctlEventRead) -> io::Result<()> {
    // SAFETY: IoctlEventRead holds no user address.
    unsafe { ioctl(file, Ioctl::EventRead, req) }
}

/// [`Ioctl::SchedGet`] (`req.domid` as the caller set it).
pub fn sched_get(file: &File, req: &mut SchedParams) -> io::Result<()> {
    // SAFETY: SchedParams holds no user address.
    unsafe { ioctl(file, Ioctl::SchedGet, req) }
}

/// [`Ioctl::SchedSet`].
pub fn sched_set(file: &File, req: &mut SchedParams) -> io::Result<()> {
    // SAFETY: SchedParams holds no user address.
    unsafe { ioctl(file, Ioctl::SchedSet, req) }
}

/// [`Ioctl::VcpuList`] into `records` (its length is the capacity;
/// `req.domid` as the caller set it).
pub fn vcpu_list(file: &File, req: &mut IoctlVcpuList, records: &mut [VcpuInfo]) -> io::Result<()> {
    req.buffer = records.as_mut_ptr() as u64;
    req.capacity = len_u32(records.len())?;
    // SAFETY: `buffer` is `records`, exclusively borrowed until this
    // returns, and `capacity` its length: the driver writes at most that
    // many records, and any bytes are a valid VcpuInfo.
    unsafe { ioctl(file, Ioctl::VcpuList, req) }
}

/// [`Ioctl::VcpuSetAffinity`].
pub fn vcpu_set_affinity(file: &File, req: &mut IoctlVcpuAffinity) -> io::Result<()> {
    // SAFETY: IoctlVcpuAffinity holds no user address.
    unsafe { ioctl(file, Ioctl::VcpuSetAffinity, req) }
}

/// What `poll(2)` said about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `POLLIN`: events are pending for this open file.
    Readable,
    /// `POLLERR`: the driver has no notification device.
    Error,
    /// Nothing within the timeout.
    TimedOut,
}

/// Waits with `poll(2)` until the device is readable or in error, at most
/// `timeout_ms` (negative: no limit). An interrupted wait counts as a
/// timeout (the caller looks again).
pub fn poll_in(file: &File, timeout_ms: i32) -> io::Result<Readiness> {
    let mut fd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `fd` is one live pollfd, the count passed is 1, and the
    // descriptor stays open (borrowed from `file`) for the call.
    let rc = unsafe { libc::poll(&raw mut fd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(Readiness::TimedOut)
        } else {
            Err(e)
        };
    }
    Ok(if rc == 0 {
        Readiness::TimedOut
    } else if fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        Readiness::Error
    } else {
        Readiness::Readable
    })
}

/// Issues `request` with `arg` as its argument struct, which the driver
/// reads and writes in place.
///
/// # Safety
///
/// Every user address inside `arg` must be valid, until this returns, for
/// the access the request makes through it (reads of a source, writes of a
/// destination) of the size `arg` gives with it.
///
/// # Panics
///
/// When `T` is not the size the request number encodes.
unsafe fn ioctl<T: IntoBytes + FromBytes>(
    file: &File,
    request: Ioctl,
    arg: &mut T,
) -> io::Result<()> {
    let number = request.number();
    assert_eq!(
        ((number >> 16) & 0x3fff) as usize,
        size_of::<T>(),
        "{request:?} takes another struct"
    );
    // SAFETY: `arg` is a live, exclusively borrowed struct of exactly the
    // size the request encodes, so the kernel reads and writes only it;
    // T is FromBytes, so whatever the kernel writes is a valid T; the
    // addresses inside it are valid per this function's contract.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            number as libc::Ioctl,
            std::ptr::from_mut(arg).cast::<libc::c_void>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
