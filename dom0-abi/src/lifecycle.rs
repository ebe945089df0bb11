//! Domain lifecycle (ABI 1.1): [`crate::Op::DomainCreate`] and its argument.
//!
//! Destroy, pause, unpause and shutdown take only registers (the domain id,
//! and for shutdown a [`ShutdownReason`]); see [`crate::Op`].

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domain::{DOMAIN_NAME_LEN, ShutdownReason};
use crate::layout::{CType, StructLayout, struct_layout};
use crate::status::Status;

// The vCPU entry of the same minor version, also reachable from here.
pub use crate::vcpu::{VCPU_MODE_LINUX64, VCPU_MODE_PVH, VcpuEntry, VcpuMode};

/// The longest domain name [`crate::Op::DomainCreate`] accepts, in bytes: the
/// name must be NUL-terminated inside [`DomainCreateArgs::name`].
pub const DOMAIN_NAME_MAX: usize = DOMAIN_NAME_LEN - 1;

/// The reasons [`crate::Op::DomainShutdown`] accepts: what the toolstack
/// asks the guest to do.
pub const SHUTDOWN_REQUESTS: [ShutdownReason; 2] =
    [ShutdownReason::Poweroff, ShutdownReason::Reboot];

impl ShutdownReason {
    /// Whether [`crate::Op::DomainShutdown`] accepts the reason (power-off or
    /// reboot; `None` and `Crash` are what the hypervisor reports, not what
    /// the toolstack asks for).
    #[must_use]
    pub const fn is_request(self) -> bool {
        matches!(self, Self::Poweroff | Self::Reboot)
    }
}

/// Argument of [`crate::Op::DomainCreate`], passed by guest-physical address
/// in RDI.
///
/// The new domain starts paused (state `PAUSED`), with `memory_pages` pages
/// of zeroed RAM at guest-physical `[0, memory_pages * 4096)` and `vcpus`
/// vCPUs that have not started. The hypervisor writes the new id to `domid`
/// and also returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DomainCreateArgs {
    /// In: the name, UTF-8, 1 to [`DOMAIN_NAME_MAX`] bytes, NUL-terminated
    /// (the bytes after the first NUL are ignored). Unique among domains.
    pub name: [u8; DOMAIN_NAME_LEN],
    /// In: RAM in 4 KiB pages (not 0).
    pub memory_pages: u64,
    /// In: vCPUs (1 to the number of physical CPUs).
    pub vcpus: u32,
    /// In: must be 0 (no flag is defined yet).
    pub flags: u32,
    /// Out: the new domain's id (`> 0`). Ignored on input.
    pub domid: u32,
    /// Must be 0.
    pub reserved: u32,
}

crate::assert_layout!(DomainCreateArgs, size = 88, {
    name: 0,
    memory_pages: 64,
    vcpus: 72,
    flags: 76,
    domid: 80,
    reserved: 84,
});

/// Why a name cannot be put into [`DomainCreateArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`DOMAIN_NAME_MAX`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name contains a NUL byte.
    ContainsNul,
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("a domain name must not be empty"),
            Self::TooLong { len } => write!(
                f,
                "a domain name has at most {DOMAIN_NAME_MAX} bytes, this one has {len}"
            ),
            Self::ContainsNul => f.write_str("a domain name must not contain a NUL byte"),
        }
    }
}

impl core::error::Error for NameError {}

impl DomainCreateArgs {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        DomainCreateArgs,
        "oxen_domain_create_args",
        "Argument of OXEN_OP_DOMAIN_CREATE (by guest-physical address in RDI).",
        [
            name: CType::Bytes(DOMAIN_NAME_LEN) => "in: name, UTF-8, NUL-terminated, unique",
            memory_pages: CType::U64 => "in: RAM in 4 KiB pages, not 0",
            vcpus: CType::U32 => "in: vCPUs, 1 to the physical CPUs",
            flags: CType::U32 => "in: must be 0",
            domid: CType::U32 => "out: the new domain id (> 0)",
            reserved: CType::U32 => "must be 0",
        ]
    );

    /// A request for a domain called `name`.
    ///
    /// # Errors
    ///
    /// When `name` is empty, longer than [`DOMAIN_NAME_MAX`] bytes or holds a
    /// NUL byte.
    pub fn new(name: &str, memory_pages: u64, vcpus: u32) -> Result<Self, NameError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > DOMAIN_NAME_MAX {
            return Err(NameError::TooLong { len: bytes.len() });
        }
        if bytes.contains(&0) {
            return Err(NameError::ContainsNul);
        }
        let mut args = <Self as zerocopy::FromZeros>::new_zeroed();
        args.name[..bytes.len()].copy_from_slice(bytes);
        args.memory_pages = memory_pages;
        args.vcpus = vcpus;
        Ok(args)
    }

    /// The name, when it is what the hypervisor accepts: non-empty, followed
    /// by a NUL inside the array, UTF-8.
    #[must_use]
    pub fn name_str(&self) -> Option<&str> {
        let end = self.name.iter().position(|&b| b == 0)?;
        if end == 0 {
            return None;
        }
        core::str::from_utf8(&self.name[..end]).ok()
    }

    /// The checks that need no knowledge of the machine: a valid name,
    /// `memory_pages` and `vcpus` not 0, `flags` and `reserved` 0. (The
    /// upper bounds, the name's uniqueness and the memory are the
    /// hypervisor's to check.)
    ///
    /// # Errors
    ///
    /// [`Status::InvalidArgument`] for the first failed check.
    pub fn validate(&self) -> Result<(), Status> {
        if self.name_str().is_none()
            || self.memory_pages == 0
            || self.vcpus == 0
            || self.flags != 0
            || self.reserved != 0
        {
            return Err(Status::InvalidArgument);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_places_the_name_and_zeroes_the_rest() {
        let args = DomainCreateArgs::new("guest-1", 65_536, 2).unwrap();
        assert_eq!(args.name_str(), Some("guest-1"));
        assert_eq!(&args.name[7..], &[0u8; 57]);
        assert_eq!((args.memory_pages, args.vcpus), (65_536, 2));
        assert_eq!((args.flags, args.domid, args.reserved), (0, 0, 0));
        assert_eq!(args.validate(), Ok(()));
        let longest = "x".repeat(DOMAIN_NAME_MAX);
        assert!(DomainCreateArgs::new(&longest, 1, 1).is_ok());
    }

    #[test]
    fn bad_names_are_refused_before_and_after_encoding() {
        assert_eq!(DomainCreateArgs::new("", 1, 1), Err(NameError::Empty));
        assert_eq!(
            DomainCreateArgs::new(&"x".repeat(64), 1, 1),
            Err(NameError::TooLong { len: 64 })
        );
        assert_eq!(
            DomainCreateArgs::new("a\0b", 1, 1),
            Err(NameError::ContainsNul)
        );
        let mut args = DomainCreateArgs::new("ok", 1, 1).unwrap();
        args.name = [b'a'; DOMAIN_NAME_LEN];
        assert_eq!(args.name_str(), None, "not NUL-terminated");
        assert_eq!(args.validate(), Err(Status::InvalidArgument));
        args.name = [0; DOMAIN_NAME_LEN];
        assert_eq!(args.validate(), Err(Status::InvalidArgument), "empty");
        args.name[..2].copy_from_slice(&[0xff, 0xfe]);
        assert_eq!(args.validate(), Err(Status::InvalidArgument), "not UTF-8");
    }

    #[test]
    fn zero_sizes_and_reserved_bits_are_invalid() {
        let ok = DomainCreateArgs::new("g", 1, 1).unwrap();
        for bad in [
            DomainCreateArgs {
                memory_pages: 0,
                ..ok
            },
            DomainCreateArgs { vcpus: 0, ..ok },
            DomainCreateArgs { flags: 1, ..ok },
            DomainCreateArgs {
                reserved: 1 << 31,
                ..ok
            },
        ] {
            assert_eq!(bad.validate(), Err(Status::InvalidArgument), "{bad:?}");
        }
        // `domid` is output only.
        assert_eq!(DomainCreateArgs { domid: 9, ..ok }.validate(), Ok(()));
    }

    #[test]
    fn only_poweroff_and_reboot_are_requests() {
        for r in ShutdownReason::ALL {
            assert_eq!(r.is_request(), SHUTDOWN_REQUESTS.contains(&r), "{r:?}");
        }
    }
}
