//! Oxen, a Type-1 hypervisor for x86_64 with Intel VT-x and EPT.
//!
//! The crate is a library so that its pure logic (parsers, builders, state
//! machines) runs under `cargo test` on the host. The hardware-facing parts
//! (`arch`, the boot sequence, logging, the heap) only exist when building for
//! the bare-metal target (`target_os = "none"`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod boot;
pub mod cmdline;
pub mod dom0;
pub mod domains;
pub mod domu;
pub mod events;
pub mod hypercall;
pub mod logring;
pub mod mm;
pub mod sched;
pub mod vcpu;
pub mod vdev;
pub mod vlapic;
pub mod vmx;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod canaries;
#[cfg(target_os = "none")]
pub mod dom0_launch;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
pub mod logger;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
pub mod start;
