//! Vendor-neutral vCPU logic: what the guest sees (CPUID, MSRs) and how
//! exits are counted. The VT-x backend (`arch::x86_64::vmx_backend`) turns
//! hardware exits into calls here.

pub mod backend;
pub mod bitmaps;
pub mod cpuid;
pub mod debug_keys;
pub mod exit_event;
pub mod exits;
pub mod gpa_policy;
pub mod guest_walk;
pub mod hidden_write;
pub mod io_policy;
pub mod mmio_decode;
pub mod msr_policy;
pub mod stats;
pub mod vector_set;
pub mod vid_guard;
