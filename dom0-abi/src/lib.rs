//! The hypercall ABI between the Oxen hypervisor and its control domain (dom0).
//!
//! This crate is the single definition of the contract. The hypervisor decodes
//! hypercalls with it, `xl-rs` encodes them with it, and the dom0 driver
//! (`tools/hvctl`, C) includes `include/oxen_abi.h`, which is generated from the
//! tables in this crate (see [`layout`] and, on the host, `c_header`). The
//! driver's `/dev/hvctl` ioctl interface, which `xl-rs` uses, is in [`ioctl`].
//!
//! # Calling convention
//!
//! A hypercall is a `VMCALL` instruction executed by dom0 at CPL 0 (see
//! [`hypercall`] for the registers). Results larger than a register travel through
//! buffers in the caller's own memory, named by guest-physical address.
//!
//! # Versioning
//!
//! [`ABI_VERSION`] is negotiated by the first call ([`Op::Version`]). A major
//! mismatch is refused; minor versions only add (new operations, new flags, new
//! fields at the end of size-checked structs). See `docs/abi.md`.
//!
//! # Layout rules
//!
//! Every struct is `#[repr(C)]`, has no padding (zerocopy's `IntoBytes` derive
//! rejects it) and carries compile-time size and offset assertions. Byte order is
//! little-endian (x86_64 only).

#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod domain;
pub mod event;
pub mod hypercall;
pub mod info;
pub mod ioctl;
pub mod layout;
pub mod lifecycle;
pub mod log;
pub mod sched;
pub mod status;
pub mod vcpu;
pub mod version;

#[cfg(any(test, feature = "std"))]
pub mod c_header;

pub use domain::{DOM0_ID, DomainInfo, DomainListArgs, DomainState, ShutdownReason};
pub use event::EventReadArgs;
pub use hypercall::Op;
pub use info::HvInfo;
pub use lifecycle::DomainCreateArgs;
pub use log::LogReadArgs;
pub use sched::{SchedParams, VcpuInfo, VcpuListArgs, VcpuState};
pub use status::{HypercallError, Status};
pub use vcpu::{VcpuEntry, VcpuMode};
pub use version::{ABI_VERSION, AbiVersion, VersionArgs};

/// Size in bytes of the pages that memory counts in this ABI are expressed in.
pub const PAGE_SIZE: u64 = 4096;

/// Asserts at compile time a struct's total size and the offset of each field.
///
/// The numbers written here are the contract; `offset_of!` is the reality.
macro_rules! assert_layout {
    ($ty:ty, size = $size:expr, { $($field:ident : $offset:expr),* $(,)? }) => {
        const _: () = assert!(::core::mem::size_of::<$ty>() == $size);
        $(const _: () = assert!(::core::mem::offset_of!($ty, $field) == $offset);)*
    };
}
pub(crate) use assert_layout;
