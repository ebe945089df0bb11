//! xl-rs: Oxen's toolstack library. It parses xl.cfg(5) files into a domain
//! configuration, lays out a guest's memory for a direct Linux boot
//! ([`builder`]), and runs `xl`-style commands against the hypervisor through
//! the dom0 driver's `/dev/hvctl` (behind a trait, so tests can use a mock,
//! [`testing`]).

// The two exceptions: `ioctl(2)` on /dev/hvctl (`device::sys`) and the
// mapping of kernel and ramdisk files (`file_bytes`).
#![deny(unsafe_code)]

pub mod builder;
pub mod cli;
pub mod commands;
pub mod config;
pub mod device;
pub mod file_bytes;
pub mod terminal;
pub mod testing;

pub use commands::{XlError, run};
