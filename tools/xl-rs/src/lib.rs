//! xl-rs: Oxen's toolstack library. It parses xl.cfg(5) files into a domain
//! configuration, and runs `xl`-style commands against the hypervisor through the
//! dom0 driver's `/dev/hvctl` (behind a trait, so tests can use a mock).

// The one exception, `ioctl(2)` on /dev/hvctl, is in `device::sys`.
#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod device;

pub use commands::{XlError, run};
