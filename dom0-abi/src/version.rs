//! The ABI version and its negotiation ([`crate::Op::Version`]).

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, StructLayout, struct_layout};

/// A version of this ABI.
///
/// Policy: a minor version only adds (operations, flags, fields at the end of
/// size-checked structs, status codes); anything else bumps the major version.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    IntoBytes,
    FromBytes,
    Immutable,
    KnownLayout,
)]
#[repr(C)]
pub struct AbiVersion {
    /// Incompatible changes bump this.
    pub major: u16,
    /// Compatible additions bump this.
    pub minor: u16,
}

crate::assert_layout!(AbiVersion, size = 4, { major: 0, minor: 2 });

/// The version this crate describes.
///
/// 1.0: version, hypervisor information, log ring, domain list and info.
/// 1.1 adds domain lifecycle (create, destroy, pause, unpause, shutdown),
/// copy-in, the boot vCPU's entry state and the domain console.
/// 1.2 adds hypervisor events (read and clear the pending mask) and the
/// notification PCI device that interrupts dom0 for them.
/// 1.3 adds scheduling: a domain's weight and cap, its vCPUs and their
/// hard affinity.
pub const ABI_VERSION: AbiVersion = AbiVersion { major: 1, minor: 3 };

impl AbiVersion {
    /// Builds a version.
    #[must_use]
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Whether a peer built for `self` can talk to an implementation of `other`:
    /// the majors are equal. Differing minors are compatible; each side must use
    /// only what both minors define (`min(self.minor, other.minor)`).
    #[must_use]
    pub const fn compatible_with(self, other: Self) -> bool {
        self.major == other.major
    }

    /// Whether an implementation of `self` provides everything a caller built
    /// for `required` may use: same major, and a minor at least as large.
    #[must_use]
    pub const fn provides(self, required: Self) -> bool {
        self.major == required.major && self.minor >= required.minor
    }

    /// Packs the version as `major << 16 | minor`.
    #[must_use]
    pub const fn to_u32(self) -> u32 {
        ((self.major as u32) << 16) | self.minor as u32
    }

    /// Unpacks a version packed by [`Self::to_u32`].
    #[must_use]
    pub const fn from_u32(raw: u32) -> Self {
        Self {
            major: (raw >> 16) as u16,
            minor: raw as u16,
        }
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Argument of [`crate::Op::Version`], passed by guest-physical address in RDI.
///
/// The caller fills `caller_major`/`caller_minor`; the hypervisor always fills
/// `hypervisor_major`/`hypervisor_minor`, also when it refuses the call with
/// [`crate::Status::VersionMismatch`], so the caller can name both versions.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VersionArgs {
    /// ABI major version the caller was built for (in).
    pub caller_major: u16,
    /// ABI minor version the caller was built for (in).
    pub caller_minor: u16,
    /// ABI major version the hypervisor implements (out).
    pub hypervisor_major: u16,
    /// ABI minor version the hypervisor implements (out).
    pub hypervisor_minor: u16,
}

crate::assert_layout!(VersionArgs, size = 8, {
    caller_major: 0,
    caller_minor: 2,
    hypervisor_major: 4,
    hypervisor_minor: 6,
});

impl VersionArgs {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        VersionArgs,
        "oxen_version_args",
        "Argument of OXEN_OP_VERSION (by guest-physical address in RDI).",
        [
            caller_major: CType::U16 => "in: ABI major the caller was built for",
            caller_minor: CType::U16 => "in: ABI minor the caller was built for",
            hypervisor_major: CType::U16 => "out: ABI major of the hypervisor",
            hypervisor_minor: CType::U16 => "out: ABI minor of the hypervisor",
        ]
    );

    /// The request a caller built against this crate sends.
    #[must_use]
    pub const fn request() -> Self {
        Self {
            caller_major: ABI_VERSION.major,
            caller_minor: ABI_VERSION.minor,
            hypervisor_major: 0,
            hypervisor_minor: 0,
        }
    }

    /// The caller's version.
    #[must_use]
    pub const fn caller(&self) -> AbiVersion {
        AbiVersion::new(self.caller_major, self.caller_minor)
    }

    /// The hypervisor's version.
    #[must_use]
    pub const fn hypervisor(&self) -> AbiVersion {
        AbiVersion::new(self.hypervisor_major, self.hypervisor_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_is_compatible_whatever_the_minor() {
        let v1_0 = AbiVersion::new(1, 0);
        let v1_3 = AbiVersion::new(1, 3);
        assert!(v1_0.compatible_with(v1_3));
        assert!(v1_3.compatible_with(v1_0));
        assert!(v1_3.provides(v1_0));
        assert!(!v1_0.provides(v1_3));
    }

    #[test]
    fn different_major_is_refused() {
        assert!(!AbiVersion::new(1, 0).compatible_with(AbiVersion::new(2, 0)));
        assert!(!AbiVersion::new(2, 5).provides(AbiVersion::new(1, 0)));
    }

    #[test]
    fn packing_round_trips_and_displays() {
        let v = AbiVersion::new(3, 0xbeef);
        assert_eq!(AbiVersion::from_u32(v.to_u32()), v);
        assert_eq!(std::format!("{ABI_VERSION}"), "1.3");
    }

    #[test]
    fn request_carries_this_crate_version() {
        assert_eq!(VersionArgs::request().caller(), ABI_VERSION);
    }
}
