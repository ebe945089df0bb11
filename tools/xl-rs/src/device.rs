//! Access to the hypervisor through the dom0 driver's `/dev/hvctl`.
//!
//! Commands talk to a [`Hypervisor`] obtained from an [`Opener`], so tests can
//! substitute a mock. The real device ([`HvctlDevice`]) opens `/dev/hvctl`; the
//! driver's ioctl interface does not exist yet, so every request on an open device
//! reports [`DeviceError::NotYetImplemented`] rather than inventing results.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use dom0_abi::{AbiVersion, DomainInfo, HvInfo, HypercallError};

/// The device node created by the `hvctl` driver.
pub const HVCTL_PATH: &str = "/dev/hvctl";

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
    /// Another I/O error.
    #[error("cannot open {}: {source}", path.display())]
    Io {
        /// The path tried.
        path: PathBuf,
        /// The cause.
        source: io::Error,
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
    #[error("hypercall failed: {0}")]
    Hypercall(#[from] HypercallError),
    /// The operation has no driver or hypercall support yet.
    #[error("{what} is not implemented yet: {reason}")]
    NotYetImplemented {
        /// The operation.
        what: String,
        /// What is missing.
        reason: &'static str,
    },
}

/// What commands need from the hypervisor.
pub trait Hypervisor {
    /// Negotiates the ABI version; returns the hypervisor's.
    ///
    /// # Errors
    ///
    /// [`DeviceError::AbiMismatch`] on a major mismatch, or any device error.
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
    fn log_read(&mut self, clear: bool) -> Result<Vec<u8>, DeviceError>;

    /// A domain-control request that the ABI does not define yet (create, destroy,
    /// pause, ...); `what` names it for the error message.
    ///
    /// # Errors
    ///
    /// For now always [`DeviceError::NotYetImplemented`].
    fn domain_control(&mut self, what: &str) -> Result<(), DeviceError> {
        Err(DeviceError::NotYetImplemented {
            what: what.to_owned(),
            reason: "the hypervisor has no domain-control hypercalls yet (ABI 1.0 defines only queries)",
        })
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
        Ok(Box::new(HvctlDevice { _file: file }))
    }
}

/// The open `/dev/hvctl`.
#[derive(Debug)]
pub struct HvctlDevice {
    _file: File,
}

const NO_IOCTLS: &str = "the hvctl driver's ioctl interface is not defined yet";

fn not_yet(what: &str) -> DeviceError {
    DeviceError::NotYetImplemented {
        what: what.to_owned(),
        reason: NO_IOCTLS,
    }
}

impl Hypervisor for HvctlDevice {
    fn negotiate(&mut self) -> Result<AbiVersion, DeviceError> {
        Err(not_yet("ABI version negotiation"))
    }

    fn hv_info(&mut self) -> Result<HvInfo, DeviceError> {
        Err(not_yet("hypervisor information"))
    }

    fn domain_list(&mut self) -> Result<Vec<DomainInfo>, DeviceError> {
        Err(not_yet("listing domains"))
    }

    fn log_read(&mut self, _clear: bool) -> Result<Vec<u8>, DeviceError> {
        Err(not_yet("reading the hypervisor log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = open_error(
            Path::new(HVCTL_PATH),
            io::ErrorKind::PermissionDenied.into(),
        );
        assert_eq!(
            err.to_string(),
            "permission denied opening /dev/hvctl: xl-rs must run as root"
        );
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
}
