//! Hypercall status codes: stable numbers returned in RAX.
//!
//! `0` and positive values are success (operations that return a count return it
//! as a positive value). Negative values are the errors below. The numbers never
//! change; a new minor ABI version may add new ones, so callers must treat an
//! unknown negative value as an error too ([`HypercallError::Unknown`]).

use core::fmt;

/// A status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The caller may not perform this operation (not dom0, or not CPL 0).
    NotPermitted = -1,
    /// The operation number is not an operation of any ABI version.
    InvalidOperation = -2,
    /// An argument is out of range, a reserved field or flag is not zero.
    InvalidArgument = -3,
    /// A guest-physical address is not in the caller's memory, or is misaligned.
    BadAddress = -4,
    /// A size exceeds the operation's bound.
    TooBig = -5,
    /// A buffer is smaller than the operation's minimum.
    BufferTooSmall = -6,
    /// No domain has the given id.
    NoSuchDomain = -7,
    /// The hypervisor is out of memory for this request.
    NoMemory = -8,
    /// The ABI majors of caller and hypervisor differ.
    VersionMismatch = -9,
    /// The resource is in use; retry later.
    Busy = -10,
    /// The operation is reserved by this ABI but not implemented by this hypervisor.
    NotImplemented = -11,
    /// The domain's state does not allow the operation (e.g. unpause a running one).
    BadState = -12,
    /// An object with this identity already exists (e.g. a domain name).
    Exists = -13,
}

impl Status {
    /// Every status code, in numeric order from 0 downward.
    pub const ALL: [Self; 14] = [
        Self::Ok,
        Self::NotPermitted,
        Self::InvalidOperation,
        Self::InvalidArgument,
        Self::BadAddress,
        Self::TooBig,
        Self::BufferTooSmall,
        Self::NoSuchDomain,
        Self::NoMemory,
        Self::VersionMismatch,
        Self::Busy,
        Self::NotImplemented,
        Self::BadState,
        Self::Exists,
    ];

    /// The raw value placed in RAX.
    #[must_use]
    pub const fn as_raw(self) -> i64 {
        self as i64
    }

    /// The status with this raw value, if it is one this crate knows.
    #[must_use]
    pub const fn from_raw(raw: i64) -> Option<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i] as i64 == raw {
                return Some(Self::ALL[i]);
            }
            i += 1;
        }
        None
    }

    /// Whether this is [`Status::Ok`].
    #[must_use]
    pub const fn is_ok(self) -> bool {
        matches!(self, Self::Ok)
    }

    /// The C macro suffix, e.g. `NO_SUCH_DOMAIN` for `OXEN_STATUS_NO_SUCH_DOMAIN`.
    #[must_use]
    pub const fn c_suffix(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::NotPermitted => "NOT_PERMITTED",
            Self::InvalidOperation => "INVALID_OPERATION",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::BadAddress => "BAD_ADDRESS",
            Self::TooBig => "TOO_BIG",
            Self::BufferTooSmall => "BUFFER_TOO_SMALL",
            Self::NoSuchDomain => "NO_SUCH_DOMAIN",
            Self::NoMemory => "NO_MEMORY",
            Self::VersionMismatch => "VERSION_MISMATCH",
            Self::Busy => "BUSY",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::BadState => "BAD_STATE",
            Self::Exists => "EXISTS",
        }
    }

    /// A human-readable message, as shown to users.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Ok => "success",
            Self::NotPermitted => "operation not permitted for this caller",
            Self::InvalidOperation => "unknown hypercall operation",
            Self::InvalidArgument => "invalid argument",
            Self::BadAddress => "bad guest-physical address",
            Self::TooBig => "size exceeds the operation's limit",
            Self::BufferTooSmall => "buffer too small",
            Self::NoSuchDomain => "no such domain",
            Self::NoMemory => "hypervisor out of memory",
            Self::VersionMismatch => "ABI major version mismatch",
            Self::Busy => "resource busy, try again",
            Self::NotImplemented => "operation not implemented by this hypervisor",
            Self::BadState => "operation not allowed in the domain's current state",
            Self::Exists => "already exists",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A failed hypercall, decoded from RAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HypercallError {
    /// A status this crate knows (never [`Status::Ok`]).
    Known(Status),
    /// A negative status this crate does not know (added by a later minor version).
    Unknown(i64),
}

impl HypercallError {
    /// Decodes RAX after a hypercall: `Ok(value)` for `>= 0`, the error otherwise.
    ///
    /// # Errors
    ///
    /// Returns the decoded error when `raw` is negative.
    pub const fn check(raw: i64) -> Result<u64, Self> {
        if raw >= 0 {
            return Ok(raw as u64);
        }
        match Status::from_raw(raw) {
            Some(status) => Err(Self::Known(status)),
            None => Err(Self::Unknown(raw)),
        }
    }
}

impl fmt::Display for HypercallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(status) => write!(f, "{status} ({})", status.as_raw()),
            Self::Unknown(raw) => write!(f, "unknown hypercall error {raw}"),
        }
    }
}

impl core::error::Error for HypercallError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::string::ToString;

    #[test]
    fn every_status_round_trips() {
        for status in Status::ALL {
            assert_eq!(Status::from_raw(status.as_raw()), Some(status));
        }
    }

    #[test]
    fn numbers_are_dense_unique_and_non_positive() {
        let raws: BTreeSet<i64> = Status::ALL.iter().map(|s| s.as_raw()).collect();
        assert_eq!(raws.len(), Status::ALL.len());
        for (i, status) in Status::ALL.iter().enumerate() {
            assert_eq!(status.as_raw(), -(i as i64));
        }
    }

    #[test]
    fn unknown_values_are_not_statuses() {
        assert_eq!(Status::from_raw(1), None);
        assert_eq!(Status::from_raw(-1000), None);
        assert_eq!(Status::from_raw(i64::MIN), None);
    }

    #[test]
    fn messages_are_distinct_and_non_empty() {
        let messages: BTreeSet<&str> = Status::ALL.iter().map(|s| s.message()).collect();
        assert_eq!(messages.len(), Status::ALL.len());
        assert_eq!(Status::NoSuchDomain.to_string(), "no such domain");
    }

    #[test]
    fn check_decodes_rax() {
        assert_eq!(HypercallError::check(0), Ok(0));
        assert_eq!(HypercallError::check(88), Ok(88));
        assert_eq!(
            HypercallError::check(-7),
            Err(HypercallError::Known(Status::NoSuchDomain))
        );
        assert_eq!(
            HypercallError::check(-99),
            Err(HypercallError::Unknown(-99))
        );
        assert_eq!(
            HypercallError::Known(Status::Busy).to_string(),
            "resource busy, try again (-10)"
        );
    }
}
