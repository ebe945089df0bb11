//! Access to the hypervisor through the dom0 driver's `/dev/hvctl`.
//!
//! Commands talk to a [`Hypervisor`] obtained from an [`Opener`], so tests can
//! substitute a mock. The real device ([`HvctlDevice`]) issues the driver's
//! ioctls ([`dom0_abi::ioctl`]); each becomes one hypercall.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use dom0_abi::event::EVENT_READ_PEEK;
use dom0_abi::hypercall::MAX_BUFFER_BYTES;
use dom0_abi::ioctl::{
    self, EVENT_STATUS_NOTIFY, HVCTL_DEVICE, Ioctl, IoctlConsole, IoctlCopyIn, IoctlDomainInfo,
    IoctlDomainList, IoctlDomainShutdown, IoctlEventRead, IoctlLogRead, IoctlVcpuAffinity,
    IoctlVcpuList, IoctlVcpuSetEntry, MAX_DOMAIN_LIST_CAPACITY, MAX_VCPU_LIST_CAPACITY,
};
use dom0_abi::log::LOG_READ_CLEAR;
use dom0_abi::{
    AbiVersion, DomainCreateArgs, DomainInfo, HvInfo, HypercallError, SchedParams, ShutdownReason,
    Status, VcpuEntry, VcpuInfo, VersionArgs,
};
use zerocopy::FromZeros;

use crate::commands::monitor::{MonitorRequest, spawn_background};
use crate::terminal::{ConsoleInput, StdinInput};

/// The device node created by the `hvctl` driver.
pub const HVCTL_PATH: &str = HVCTL_DEVICE;

/// Errors reaching or using the hypervisor.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The device node does not exist.
    #[error(
        "{} not found: the hvctl driver is not loaded (run `modprobe hvctl` or `insmod hvctl.ko` in dom0)",
        path.display()
    )]
    DriverNotLoaded {
        /// The path tried.
        path: PathBuf,
    },
    /// Opening the device was refused.
    #[error("permission denied opening {}: xl-rs must run as root", path.display())]
    PermissionDenied {
        /// The path tried.
        path: PathBuf,
    },
    /// Another I/O error opening the device.
    #[error("cannot open {}: {source}", path.display())]
    Io {
        /// The path tried.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The hypervisor speaks the same major ABI, but a minor that lacks an
    /// operation.
    #[error(
        "{what} needs hypercall ABI {needed}, but the hypervisor speaks {theirs}; boot a newer Oxen"
    )]
    AbiTooOld {
        /// What was to be done.
        what: String,
        /// The version that introduced it.
        needed: AbiVersion,
        /// The hypervisor's.
        theirs: AbiVersion,
    },
    /// The hypervisor speaks an incompatible ABI.
    #[error(
        "ABI mismatch: xl-rs speaks hypercall ABI {ours}, the hypervisor speaks {theirs}; use an xl-rs built for ABI {}.x",
        theirs.major
    )]
    AbiMismatch {
        /// This tool's ABI version.
        ours: AbiVersion,
        /// The hypervisor's.
        theirs: AbiVersion,
    },
    /// The hypervisor refused the request.
    #[error("{what}: the hypervisor refused: {error}")]
    Hypercall {
        /// The request.
        what: &'static str,
        /// The status it returned.
        error: HypercallError,
    },
    /// The driver does not know the request: it was built for another ABI.
    #[error(
        "{what}: the hvctl driver does not know this request (ioctl {number:#010x}); the driver and xl-rs {} were built for different ABI versions",
        dom0_abi::ABI_VERSION
    )]
    UnknownRequest {
        /// The request.
        what: &'static str,
        /// Its ioctl number.
        number: u32,
    },
    /// The driver failed the request on its own (bad size, no memory, ...).
    #[error("{what}: the hvctl driver failed the request: {source}")]
    Driver {
        /// The request.
        what: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// The driver answered with something impossible.
    #[error("{what}: the hvctl driver returned an inconsistent result: {detail}")]
    Inconsistent {
        /// The request.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The operation has no driver or hypercall support yet.
    #[error("{what} is not implemented yet: {reason}")]
    NotYetImplemented {
        /// The operation.
        what: String,
        /// What is missing.
        reason: &'static str,
    },
}

impl DeviceError {
    /// The hypercall status this error stands for, if it is a refusal by
    /// the hypervisor.
    #[must_use]
    pub fn status(&self) -> Option<Status> {
        match self {
            Self::Hypercall {
                error: HypercallError::Known(status),
                ..
            } => Some(*status),
            _ => None,
        }
    }
}

/// Text read from the hypervisor's log ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogText {
    /// The bytes (UTF-8 text; may end inside a line).
    pub text: Vec<u8>,
    /// Bytes lost to ring wrap since the last clear.
    pub dropped: u32,
}

/// Hypervisor events as this open device sees them (ABI 1.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// The `dom0_abi::event` bits pending for this open device.
    pub pending: u64,
    /// Events the hypervisor raised since boot.
    pub raised: u64,
    /// Interrupts its notification device sent since boot.
    pub interrupts: u64,
    /// Notification interrupts the driver handled since it loaded.
    pub handled: u64,
    /// The driver has the notification device: [`Hypervisor::wait_events`]
    /// sleeps until an event instead of failing.
    pub notify: bool,
}

/// How [`Hypervisor::wait_events`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventWait {
    /// Events are pending (read them with [`Hypervisor::event_read`]).
    Ready,
    /// None arrived in time.
    TimedOut,
    /// There is no notification interrupt to wait for (no device, an
    /// older driver or hypervisor): the caller polls instead.
    Unsupported,
}

/// What commands need from the hypervisor.
pub trait Hypervisor {
    /// Negotiates the ABI version; returns the hypervisor's (also when the
    /// majors differ: the caller reports the mismatch).
    ///
    /// # Errors
    ///
    /// Any device error.
    fn negotiate(&mut self) -> Result<AbiVersion, DeviceError>;

    /// Hypervisor information.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn hv_info(&mut self) -> Result<HvInfo, DeviceError>;

    /// Every domain, by increasing id.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn domain_list(&mut self) -> Result<Vec<DomainInfo>, DeviceError>;

    /// The hypervisor's log ring, optionally cleared after reading.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn log_read(&mut self, clear: bool) -> Result<LogText, DeviceError>;

    /// One domain, by id.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error (`no such domain` among them).
    fn domain_info(&mut self, domid: u32) -> Result<DomainInfo, DeviceError>;

    /// Creates a paused domain (1.1); returns its id.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error (`Exists`, `NoMemory`,
    /// `InvalidArgument`).
    fn domain_create(&mut self, args: &DomainCreateArgs) -> Result<u32, DeviceError>;

    /// Destroys a domain (1.1).
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn domain_destroy(&mut self, domid: u32) -> Result<(), DeviceError>;

    /// Pauses a domain (1.1).
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn domain_pause(&mut self, domid: u32) -> Result<(), DeviceError>;

    /// Unpauses a domain (1.1); the first unpause starts its boot vCPU.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn domain_unpause(&mut self, domid: u32) -> Result<(), DeviceError>;

    /// Asks a domain to power off or reboot (1.1); returns at once.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn domain_shutdown(&mut self, domid: u32, reason: ShutdownReason) -> Result<(), DeviceError>;

    /// One copy of at most [`MAX_BUFFER_BYTES`] into a domain that has not
    /// run (1.1); returns the bytes copied. [`Self::copy_in`] copies any
    /// amount.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn copy_in_chunk(
        &mut self,
        domid: u32,
        dest_gpa: u64,
        bytes: &[u8],
    ) -> Result<usize, DeviceError>;

    /// Sets the entry state of a vCPU that has not started (1.1).
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn vcpu_set_entry(
        &mut self,
        domid: u32,
        vcpu: u32,
        entry: &VcpuEntry,
    ) -> Result<(), DeviceError>;

    /// Takes up to `buf.len()` bytes of a domain's console output (1.1);
    /// returns how many (0: nothing new).
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn console_read(&mut self, domid: u32, buf: &mut [u8]) -> Result<usize, DeviceError>;

    /// Types `bytes` into a domain's console (1.1); returns how many it took.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn console_write(&mut self, domid: u32, bytes: &[u8]) -> Result<usize, DeviceError>;

    /// A domain's weight and cap (1.3); dom0 included.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn sched_get(&mut self, domid: u32) -> Result<SchedParams, DeviceError>;

    /// Sets a domain's weight and/or cap (1.3); `None` leaves it unchanged.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error (`InvalidArgument` for a weight or cap
    /// out of range).
    fn sched_set(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), DeviceError>;

    /// A domain's vCPUs by index (1.3); dom0 included.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error.
    fn vcpu_list(&mut self, domid: u32) -> Result<Vec<VcpuInfo>, DeviceError>;

    /// Sets a vCPU's hard affinity, bit N = physical CPU N (1.3).
    ///
    /// # Errors
    ///
    /// Any device or hypercall error (`NotPermitted` for dom0's vCPUs,
    /// `InvalidArgument` for no such vCPU or no CPU of the machine).
    fn vcpu_set_affinity(&mut self, domid: u32, vcpu: u32, cpus: u64) -> Result<(), DeviceError>;

    /// The events pending for this open device (1.2), taken unless `peek`.
    ///
    /// # Errors
    ///
    /// Any device or hypercall error; `NotYetImplemented` where there is
    /// no event support.
    fn event_read(&mut self, peek: bool) -> Result<Events, DeviceError> {
        let _ = peek;
        Err(DeviceError::NotYetImplemented {
            what: "reading hypervisor events".to_owned(),
            reason: "this device has no event support",
        })
    }

    /// Sleeps until events are pending for this open device, at most
    /// `timeout` (`None`: no limit).
    ///
    /// # Errors
    ///
    /// A failed `poll(2)`.
    fn wait_events(
        &mut self,
        timeout: Option<std::time::Duration>,
    ) -> Result<EventWait, DeviceError> {
        let _ = timeout;
        Ok(EventWait::Unsupported)
    }

    /// Copies all of `bytes` to `dest_gpa` in the domain, in pieces of at
    /// most [`MAX_BUFFER_BYTES`] (one hypercall each). When a piece fails
    /// with `NoMemory` (the driver found no contiguous bounce buffer that
    /// large) the pieces are halved, down to [`MIN_COPY_CHUNK`].
    ///
    /// # Errors
    ///
    /// The first device or hypercall error; `Inconsistent` when a piece
    /// copied nothing or more than it was given.
    fn copy_in(&mut self, domid: u32, dest_gpa: u64, bytes: &[u8]) -> Result<(), DeviceError> {
        const WHAT: &str = "copying into the domain";
        let mut done = 0usize;
        let mut chunk = MAX_BUFFER_BYTES as usize;
        while done < bytes.len() {
            let len = chunk.min(bytes.len() - done);
            let gpa =
                dest_gpa
                    .checked_add(done as u64)
                    .ok_or_else(|| DeviceError::Inconsistent {
                        what: WHAT,
                        detail: "the destination address overflows".to_owned(),
                    })?;
            match self.copy_in_chunk(domid, gpa, &bytes[done..done + len]) {
                Ok(n) if n == 0 || n > len => {
                    return Err(DeviceError::Inconsistent {
                        what: WHAT,
                        detail: format!("{n} bytes copied of {len}"),
                    });
                }
                Ok(n) => done += n,
                Err(e) if e.status() == Some(Status::NoMemory) && chunk > MIN_COPY_CHUNK => {
                    chunk /= 2;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The smallest piece [`Hypervisor::copy_in`] falls back to.
pub const MIN_COPY_CHUNK: usize = 64 << 10;

/// Facts about the dom0 kernel xl-rs runs on, for `info` (as `xl info`
/// prints them from `uname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// The host name.
    pub host: String,
    /// The kernel release (`uname -r`).
    pub release: String,
    /// The kernel version (`uname -v`).
    pub version: String,
    /// The machine (`uname -m`).
    pub machine: String,
}

impl HostFacts {
    /// Reads them from `/proc/sys/kernel/` (`?` for what cannot be read).
    #[must_use]
    pub fn read() -> Self {
        Self::read_from(Path::new("/proc/sys/kernel"))
    }

    /// Reads `hostname`, `osrelease` and `version` under `dir`.
    #[must_use]
    pub fn read_from(dir: &Path) -> Self {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map(|text| text.trim_end().to_owned())
                .unwrap_or_else(|_| "?".to_owned())
        };
        Self {
            host: read("hostname"),
            release: read("osrelease"),
            version: read("version"),
            machine: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// Opens a [`Hypervisor`].
pub trait Opener {
    /// Opens the device.
    ///
    /// # Errors
    ///
    /// Why the device could not be opened, phrased for the user.
    fn open(&self) -> Result<Box<dyn Hypervisor>, DeviceError>;

    /// Facts about the dom0 the device is opened in.
    fn host_facts(&self) -> HostFacts {
        HostFacts::read()
    }

    /// Where `console` reads what the user types: the process's stdin (in
    /// raw mode while it is a terminal).
    ///
    /// # Errors
    ///
    /// When the terminal cannot be put in raw mode.
    fn console_input(&self) -> io::Result<Box<dyn ConsoleInput>> {
        Ok(Box::new(StdinInput::new()?))
    }

    /// Starts the background monitor of a new domain
    /// ([`crate::commands::monitor`]).
    ///
    /// # Errors
    ///
    /// When the process cannot be started.
    fn spawn_monitor(&self, request: &MonitorRequest) -> io::Result<()> {
        spawn_background(request)
    }
}

/// Opens the real device node.
#[derive(Debug, Clone)]
pub struct HvctlOpener {
    path: PathBuf,
}

impl HvctlOpener {
    /// An opener for `/dev/hvctl`.
    #[must_use]
    pub fn new() -> Self {
        Self::with_path(HVCTL_PATH)
    }

    /// An opener for another path (tests).
    pub fn with_path(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
        }
    }
}

impl Default for HvctlOpener {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps an error opening `path` to what the user should do.
#[must_use]
pub fn open_error(path: &Path, source: io::Error) -> DeviceError {
    let path = path.to_owned();
    match source.kind() {
        io::ErrorKind::NotFound => DeviceError::DriverNotLoaded { path },
        // EACCES (the node is 0600 root) and EPERM (no CAP_SYS_ADMIN).
        io::ErrorKind::PermissionDenied => DeviceError::PermissionDenied { path },
        _ => DeviceError::Io { path, source },
    }
}

impl Opener for HvctlOpener {
    fn open(&self) -> Result<Box<dyn Hypervisor>, DeviceError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| open_error(&self.path, e))?;
        Ok(Box::new(HvctlDevice { file }))
    }
}

/// Maps a failed ioctl's errno to an error: the hypercall status it stands
/// for ([`ioctl::status_from_errno`]), an unknown request (`ENOTTY`), or the
/// driver's own failure.
#[must_use]
pub fn ioctl_error(what: &'static str, request: Ioctl, source: io::Error) -> DeviceError {
    match source.raw_os_error() {
        Some(libc::ENOTTY) => DeviceError::UnknownRequest {
            what,
            number: request.number(),
        },
        Some(errno) => match ioctl::status_from_errno(errno) {
            Some(status) => DeviceError::Hypercall {
                what,
                error: HypercallError::Known(status),
            },
            None => DeviceError::Driver { what, source },
        },
        None => DeviceError::Driver { what, source },
    }
}

/// The open `/dev/hvctl`.
#[derive(Debug)]
pub struct HvctlDevice {
    file: File,
}

/// How many records the first [`Ioctl::DomainList`] asks for.
const FIRST_LIST_CAPACITY: u32 = 64;

impl Hypervisor for HvctlDevice {
    fn sched_get(&mut self, domid: u32) -> Result<SchedParams, DeviceError> {
        self.sched_get_impl(domid)
    }

    fn sched_set(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), DeviceError> {
        self.sched_set_impl(domid, weight, cap)
    }

    fn vcpu_list(&mut self, domid: u32) -> Result<Vec<VcpuInfo>, DeviceError> {
        self.vcpu_list_impl(domid)
    }

    fn vcpu_set_affinity(&mut self, domid: u32, vcpu: u32, cpus: u64) -> Result<(), DeviceError> {
        self.vcpu_set_affinity_impl(domid, vcpu, cpus)
    }

    fn event_read(&mut self, peek: bool) -> Result<Events, DeviceError> {
        const WHAT: &str = "reading hypervisor events";
        let mut req = IoctlEventRead {
            flags: if peek { EVENT_READ_PEEK } else { 0 },
            ..IoctlEventRead::default()
        };
        sys::event_read(&self.file, &mut req)
            .map_err(|e| ioctl_error(WHAT, Ioctl::EventRead, e))?;
        Ok(Events {
            pending: req.pending,
            raised: req.raised,
            interrupts: req.interrupts,
            handled: req.handled,
            notify: req.status & EVENT_STATUS_NOTIFY != 0,
        })
    }

    fn wait_events(
        &mut self,
        timeout: Option<std::time::Duration>,
    ) -> Result<EventWait, DeviceError> {
        let ms = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
        match sys::poll_in(&self.file, ms) {
            Ok(sys::Readiness::Readable) => Ok(EventWait::Ready),
            Ok(sys::Readiness::TimedOut) => Ok(EventWait::TimedOut),
            Ok(sys::Readiness::Error) => Ok(EventWait::Unsupported),
            Err(source) => Err(DeviceError::Driver {
                what: "waiting for hypervisor events",
                source,
            }),
        }
    }

    fn negotiate(&mut self) -> Result<AbiVersion, DeviceError> {
        const WHAT: &str = "negotiating the ABI version";
        let mut args = VersionArgs::request();
        match sys::version(&self.file, &mut args) {
            Ok(()) => Ok(args.hypervisor()),
            // VERSION_MISMATCH: the driver copied the hypervisor's version out.
            Err(e) if e.raw_os_error() == Some(libc::EPROTO) => Ok(args.hypervisor()),
            Err(e) => Err(ioctl_error(WHAT, Ioctl::Version, e)),
        }
    }

    fn hv_info(&mut self) -> Result<HvInfo, DeviceError> {
        const WHAT: &str = "reading hypervisor information";
        let mut info = HvInfo::new_zeroed();
        sys::hv_info(&self.file, &mut info).map_err(|e| ioctl_error(WHAT, Ioctl::HvInfo, e))?;
        Ok(info)
    }

    fn domain_list(&mut self) -> Result<Vec<DomainInfo>, DeviceError> {
        const WHAT: &str = "listing domains";
        let mut all: Vec<DomainInfo> = Vec::new();
        let mut start_domid = 0u32;
        let mut capacity = FIRST_LIST_CAPACITY;
        // Each round reports at least one domain with a larger id than the
        // last, so this ends; the bound only guards against a broken driver.
        for _ in 0..=u16::MAX {
            let mut records = vec![DomainInfo::new_zeroed(); capacity as usize];
            let mut req = IoctlDomainList {
                start_domid,
                ..IoctlDomainList::default()
            };
            sys::domain_list(&self.file, &mut req, &mut records)
                .map_err(|e| ioctl_error(WHAT, Ioctl::DomainList, e))?;
            check_counts(WHAT, req.returned, capacity, req.total)?;
            records.truncate(req.returned as usize);
            if let Some(bad) = records.iter().find(|d| d.domid < start_domid) {
                return Err(DeviceError::Inconsistent {
                    what: WHAT,
                    detail: format!("domain {} listed from id {start_domid}", bad.domid),
                });
            }
            let last = records.last().map(|d| d.domid);
            all.extend(records);
            let remaining = req.total - req.returned;
            match last.and_then(|id| id.checked_add(1)) {
                Some(next) if remaining > 0 => {
                    start_domid = next;
                    capacity = remaining.clamp(1, MAX_DOMAIN_LIST_CAPACITY);
                }
                _ => return Ok(all),
            }
        }
        Err(DeviceError::Inconsistent {
            what: WHAT,
            detail: "the list never ends".to_owned(),
        })
    }

    fn log_read(&mut self, clear: bool) -> Result<LogText, DeviceError> {
        const WHAT: &str = "reading the hypervisor log";
        let size = MAX_BUFFER_BYTES as u32;
        let mut text = vec![0u8; size as usize];
        let mut req = IoctlLogRead {
            flags: if clear { LOG_READ_CLEAR } else { 0 },
            ..IoctlLogRead::default()
        };
        sys::log_read(&self.file, &mut req, &mut text)
            .map_err(|e| ioctl_error(WHAT, Ioctl::LogRead, e))?;
        if req.returned > size {
            return Err(DeviceError::Inconsistent {
                what: WHAT,
                detail: format!("{} bytes returned for {size}", req.returned),
            });
        }
        text.truncate(req.returned as usize);
        Ok(LogText {
            text,
            dropped: req.dropped,
        })
    }

    fn domain_info(&mut self, domid: u32) -> Result<DomainInfo, DeviceError> {
        const WHAT: &str = "reading domain information";
        let mut req = IoctlDomainInfo::request(domid);
        sys::domain_info(&self.file, &mut req)
            .map_err(|e| ioctl_error(WHAT, Ioctl::DomainInfo, e))?;
        Ok(req.info)
    }

    fn domain_create(&mut self, args: &DomainCreateArgs) -> Result<u32, DeviceError> {
        const WHAT: &str = "creating the domain";
        let mut req = *args;
        req.domid = 0;
        sys::domain_create(&self.file, &mut req)
            .map_err(|e| ioctl_error(WHAT, Ioctl::DomainCreate, e))?;
        if req.domid == 0 {
            return Err(DeviceError::Inconsistent {
                what: WHAT,
                detail: "the new domain has id 0".to_owned(),
            });
        }
        Ok(req.domid)
    }

    fn domain_destroy(&mut self, domid: u32) -> Result<(), DeviceError> {
        self.domid_request("destroying the domain", Ioctl::DomainDestroy, domid)
    }

    fn domain_pause(&mut self, domid: u32) -> Result<(), DeviceError> {
        self.domid_request("pausing the domain", Ioctl::DomainPause, domid)
    }

    fn domain_unpause(&mut self, domid: u32) -> Result<(), DeviceError> {
        self.domid_request("unpausing the domain", Ioctl::DomainUnpause, domid)
    }

    fn domain_shutdown(&mut self, domid: u32, reason: ShutdownReason) -> Result<(), DeviceError> {
        const WHAT: &str = "asking the domain to shut down";
        let mut req = IoctlDomainShutdown {
            domid,
            reason: reason as u32,
        };
        sys::domain_shutdown(&self.file, &mut req)
            .map_err(|e| ioctl_error(WHAT, Ioctl::DomainShutdown, e))
    }

    fn copy_in_chunk(
        &mut self,
        domid: u32,
        dest_gpa: u64,
        bytes: &[u8],
    ) -> Result<usize, DeviceError> {
        const WHAT: &str = "copying into the domain";
        let mut req = IoctlCopyIn {
            domid,
            dest_gpa,
            ..IoctlCopyIn::default()
        };
        sys::copy_in(&self.file, &mut req, bytes)
            .map_err(|e| ioctl_error(WHAT, Ioctl::DomainCopyIn, e))?;
        Ok(req.copied as usize)
    }

    fn vcpu_set_entry(
        &mut self,
        domid: u32,
        vcpu: u32,
        entry: &VcpuEntry,
    ) -> Result<(), DeviceError> {
        const WHAT: &str = "setting the boot vCPU's entry state";
        let mut req = IoctlVcpuSetEntry {
            domid,
            vcpu,
            entry: *entry,
        };
        sys::vcpu_set_entry(&self.file, &mut req)
            .map_err(|e| ioctl_error(WHAT, Ioctl::VcpuSetEntry, e))
    }

    fn console_read(&mut self, domid: u32, buf: &mut [u8]) -> Result<usize, DeviceError> {
        const WHAT: &str = "reading the domain's console";
        let mut req = IoctlConsole {
            domid,
            ..IoctlConsole::default()
        };
        sys::console_read(&self.file, &mut req, buf)
            .map_err(|e| ioctl_error(WHAT, Ioctl::ConsoleRead, e))?;
        checked_count(WHAT, req.returned, buf.len())
    }

    fn console_write(&mut self, domid: u32, bytes: &[u8]) -> Result<usize, DeviceError> {
        const WHAT: &str = "writing to the domain's console";
        let mut req = IoctlConsole {
            domid,
            ..IoctlConsole::default()
        };
        sys::console_write(&self.file, &mut req, bytes)
            .map_err(|e| ioctl_error(WHAT, Ioctl::ConsoleWrite, e))?;
        checked_count(WHAT, req.returned, bytes.len())
    }
}

/// How many records the first [`Ioctl::VcpuList`] asks for.
const FIRST_VCPU_CAPACITY: u32 = 64;

/// The ABI 1.3 requests.
impl HvctlDevice {
    fn sched_get_impl(&mut self, domid: u32) -> Result<SchedParams, DeviceError> {
        const WHAT: &str = "reading scheduling parameters";
        let mut req = SchedParams {
            domid,
            ..SchedParams::default()
        };
        sys::sched_get(&self.file, &mut req).map_err(|e| ioctl_error(WHAT, Ioctl::SchedGet, e))?;
        Ok(req)
    }

    fn sched_set_impl(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), DeviceError> {
        const WHAT: &str = "setting scheduling parameters";
        let mut req = SchedParams::set(domid, weight, cap);
        sys::sched_set(&self.file, &mut req).map_err(|e| ioctl_error(WHAT, Ioctl::SchedSet, e))
    }

    fn vcpu_list_impl(&mut self, domid: u32) -> Result<Vec<VcpuInfo>, DeviceError> {
        const WHAT: &str = "listing vCPUs";
        let mut capacity = FIRST_VCPU_CAPACITY;
        // A second round only if the domain has more vCPUs than the first
        // buffer held; a third would mean they keep growing.
        for _ in 0..3 {
            let mut records = vec![VcpuInfo::default(); capacity as usize];
            let mut req = IoctlVcpuList {
                domid,
                ..IoctlVcpuList::default()
            };
            sys::vcpu_list(&self.file, &mut req, &mut records)
                .map_err(|e| ioctl_error(WHAT, Ioctl::VcpuList, e))?;
            check_counts(WHAT, req.returned, capacity, req.total)?;
            if req.returned == req.total {
                records.truncate(req.returned as usize);
                return Ok(records);
            }
            capacity = req.total.min(MAX_VCPU_LIST_CAPACITY);
        }
        Err(DeviceError::Inconsistent {
            what: WHAT,
            detail: "the number of vCPUs keeps changing".to_owned(),
        })
    }

    fn vcpu_set_affinity_impl(
        &mut self,
        domid: u32,
        vcpu: u32,
        cpus: u64,
    ) -> Result<(), DeviceError> {
        const WHAT: &str = "setting the vCPU's affinity";
        let mut req = IoctlVcpuAffinity {
            domid,
            vcpu,
            affinity: cpus,
        };
        sys::vcpu_set_affinity(&self.file, &mut req)
            .map_err(|e| ioctl_error(WHAT, Ioctl::VcpuSetAffinity, e))
    }
}

impl HvctlDevice {
    /// A request that takes only a domain id.
    fn domid_request(
        &mut self,
        what: &'static str,
        request: Ioctl,
        domid: u32,
    ) -> Result<(), DeviceError> {
        sys::domid_request(&self.file, request, domid).map_err(|e| ioctl_error(what, request, e))
    }
}

/// A byte count the driver returned, checked against what was asked.
fn checked_count(what: &'static str, returned: u32, asked: usize) -> Result<usize, DeviceError> {
    let n = returned as usize;
    if n > asked {
        return Err(DeviceError::Inconsistent {
            what,
            detail: format!("{n} bytes for {asked}"),
        });
    }
    Ok(n)
}

mod sys;

/// A list ioctl's counts must agree: no more records than the buffer held
/// or than there are.
fn check_counts(
    what: &'static str,
    returned: u32,
    capacity: u32,
    total: u32,
) -> Result<(), DeviceError> {
    if returned > capacity || returned > total {
        return Err(DeviceError::Inconsistent {
            what,
            detail: format!("{returned} records returned for {capacity} asked, {total} in total"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dom0_abi::Status;

    #[test]
    fn missing_device_says_to_load_the_driver() {
        let err = HvctlOpener::with_path("/nonexistent/hvctl")
            .open()
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "/nonexistent/hvctl not found: the hvctl driver is not loaded \
             (run `modprobe hvctl` or `insmod hvctl.ko` in dom0)"
        );
    }

    #[test]
    fn permission_denied_says_to_run_as_root() {
        for errno in [libc::EACCES, libc::EPERM] {
            let err = open_error(Path::new(HVCTL_PATH), io::Error::from_raw_os_error(errno));
            assert_eq!(
                err.to_string(),
                "permission denied opening /dev/hvctl: xl-rs must run as root"
            );
        }
    }

    #[test]
    fn abi_mismatch_names_both_versions() {
        let err = DeviceError::AbiMismatch {
            ours: AbiVersion::new(1, 0),
            theirs: AbiVersion::new(2, 1),
        };
        assert!(
            err.to_string()
                .contains("ABI 1.0, the hypervisor speaks 2.1")
        );
    }

    /// The errno table of dom0-abi uses the C library's numbers.
    #[test]
    fn status_errnos_are_the_libc_ones() {
        let libc_errno = |status: Status| match status {
            Status::Ok => 0,
            Status::NotPermitted => libc::EPERM,
            Status::InvalidOperation => libc::ENOSYS,
            Status::InvalidArgument => libc::EINVAL,
            Status::BadAddress => libc::EFAULT,
            Status::TooBig => libc::E2BIG,
            Status::BufferTooSmall => libc::ENOBUFS,
            Status::NoSuchDomain => libc::ESRCH,
            Status::NoMemory => libc::ENOMEM,
            Status::VersionMismatch => libc::EPROTO,
            Status::Busy => libc::EBUSY,
            Status::NotImplemented => libc::EOPNOTSUPP,
            Status::BadState => libc::EALREADY,
            Status::Exists => libc::EEXIST,
        };
        for status in Status::ALL {
            assert_eq!(
                ioctl::status_errno(status),
                libc_errno(status),
                "{status:?}"
            );
        }
        assert_eq!(ioctl::UNKNOWN_STATUS_ERRNO, libc::EIO);
    }

    #[test]
    fn ioctl_errnos_become_user_errors() {
        let err = ioctl_error(
            "listing domains",
            Ioctl::DomainList,
            io::Error::from_raw_os_error(libc::ESRCH),
        );
        assert_eq!(
            err.to_string(),
            "listing domains: the hypervisor refused: no such domain (-7)"
        );
        let err = ioctl_error(
            "reading hypervisor information",
            Ioctl::HvInfo,
            io::Error::from_raw_os_error(libc::ENOTTY),
        );
        assert!(
            err.to_string()
                .contains("does not know this request (ioctl 0x8058de01)"),
            "{err}"
        );
        let err = ioctl_error("x", Ioctl::Raw, io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(err, DeviceError::Driver { .. }), "{err}");
    }

    /// An ioctl on something that is not /dev/hvctl fails cleanly (`ENOTTY`).
    #[test]
    fn requests_on_another_file_are_unknown() {
        let file = File::open("/dev/null").unwrap();
        let mut dev = HvctlDevice { file };
        let err = dev.hv_info().unwrap_err();
        assert!(matches!(err, DeviceError::UnknownRequest { .. }), "{err}");
        let err = dev.domain_list().unwrap_err();
        assert!(matches!(err, DeviceError::UnknownRequest { .. }), "{err}");
        let err = dev.log_read(false).unwrap_err();
        assert!(matches!(err, DeviceError::UnknownRequest { .. }), "{err}");
        let err = dev.domain_info(0).unwrap_err();
        assert!(matches!(err, DeviceError::UnknownRequest { .. }), "{err}");
        let err = dev.negotiate().unwrap_err();
        assert!(matches!(err, DeviceError::UnknownRequest { .. }), "{err}");
        let args = DomainCreateArgs::new("g", 256, 1).unwrap();
        let entry = VcpuEntry::default();
        let results = [
            dev.domain_create(&args).map(drop),
            dev.domain_destroy(1),
            dev.domain_pause(1),
            dev.domain_unpause(1),
            dev.domain_shutdown(1, ShutdownReason::Poweroff),
            dev.copy_in(1, 0x1000, &[1, 2, 3]),
            dev.vcpu_set_entry(1, 0, &entry),
            dev.console_read(1, &mut [0; 16]).map(drop),
            dev.console_write(1, b"x").map(drop),
            dev.sched_get(1).map(drop),
            dev.sched_set(1, Some(256), None),
            dev.vcpu_list(1).map(drop),
            dev.vcpu_set_affinity(1, 0, 1),
        ];
        for result in results {
            let err = result.unwrap_err();
            assert!(matches!(err, DeviceError::UnknownRequest { .. }), "{err}");
        }
    }

    #[test]
    fn host_facts_come_from_proc() {
        let dir = std::env::temp_dir().join(format!("xl-rs-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hostname"), "dom0\n").unwrap();
        std::fs::write(dir.join("osrelease"), "6.1.0-56-amd64\n").unwrap();
        let facts = HostFacts::read_from(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(facts.host, "dom0");
        assert_eq!(facts.release, "6.1.0-56-amd64");
        assert_eq!(facts.version, "?");
        assert_eq!(facts.machine, std::env::consts::ARCH);
    }
}
