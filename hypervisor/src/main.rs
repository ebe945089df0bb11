//! The hypervisor executable. Everything lives in the library; on the
//! bare-metal target the library provides the entry point (`arch::boot`), so
//! this file only pulls it in. On the host it is an empty program, which keeps
//! `cargo test --workspace` building.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use hypervisor as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the hypervisor runs on bare metal: build it with `cargo xtask build`");
}
