//! Byte access to physical RAM through the hypervisor's identity map, for
//! the boot-time builders (copying modules, loading dom0's kernel).

use crate::mm::addr::PhysRange;

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
