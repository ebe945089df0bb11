//! Byte access to physical RAM through the hypervisor's identity map, for
//! the boot-time builders (copying modules, loading dom0's kernel).

use crate::mm::addr::{HostPhysAddr, PAGE_SIZE, PhysRange};

/// The RAM range `r` as a mutable byte slice.
///
/// Only for boot-time use on the boot CPU, on RAM that nothing else uses
/// while the slice lives: module copies in fresh frames, dom0's RAM before
/// any vCPU runs. The slice must not outlive that use.
pub fn phys_slice(r: PhysRange) -> &'static mut [u8] {
    // SAFETY: `r` is RAM inside the identity map (all RAM below the mapped
    // limit); per the contract above no other reference to it is live, so
    // the exclusive slice does not alias.
    unsafe { core::slice::from_raw_parts_mut(r.start.as_u64() as *mut u8, r.size().as_u64() as usize) }
}

/// Fills the 4 KiB frame at `frame` with `byte`, after boot too.
///
/// For frames the hypervisor owns and a guest may write at the same time
/// (the scratch page of hidden-memory writes): the bytes are written through
/// a raw pointer, never a reference, so a concurrent guest store can only
/// leave its own value behind.
pub fn fill_frame(frame: HostPhysAddr, byte: u8) {
    // SAFETY: `frame` is a 4 KiB RAM frame inside the identity map that the
    // hypervisor allocated; no Rust reference to it exists.
    unsafe { core::ptr::write_bytes(frame.as_u64() as *mut u8, byte, PAGE_SIZE as usize) }
}

/// Copies `out.len()` bytes from physical address `addr` (RAM inside the
/// identity map) with volatile reads: memory a guest or another CPU may
/// change at any time (canary checks, hypercall arguments).
pub fn read_volatile(addr: HostPhysAddr, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: the caller names RAM inside the identity map; a byte read
        // through a raw pointer cannot fault or alias a reference.
        *b = unsafe { core::ptr::read_volatile((addr.as_u64() as *const u8).add(i)) };
    }
}

/// Copies `data` to physical address `addr` (RAM inside the identity map)
/// with volatile writes.
pub fn write_volatile(addr: HostPhysAddr, data: &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        // SAFETY: as in `read_volatile`.
        unsafe { core::ptr::write_volatile((addr.as_u64() as *mut u8).add(i), b) };
    }
}
