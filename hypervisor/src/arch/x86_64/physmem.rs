//! Byte access to physical RAM through the hypervisor's identity map, for
//! the boot-time builders (copying modules, loading dom0's kernel).

use crate::mm::addr::{HostPhysAddr, PAGE_SIZE, PhysRange};

/// The RAM range `r` as a mutable byte slice.
///
/// # Safety
///
/// `r` must be RAM inside the hypervisor's identity map that nothing else
/// reads or writes while the slice lives (no other reference to it, no
/// guest running on it, no DMA into it): module copies in fresh frames and
/// dom0's RAM at boot, before any vCPU runs; a domU's RAM while it is loaded
/// (it never ran, and its lifecycle lock keeps it from starting). The slice
/// must not outlive that use, and two slices given out must not overlap.
pub unsafe fn phys_slice(r: PhysRange) -> &'static mut [u8] {
    // SAFETY: per the contract, `r` is identity-mapped RAM with no other
    // reference or writer while the slice lives, so the exclusive slice
    // does not alias.
    unsafe {
        core::slice::from_raw_parts_mut(r.start.as_u64() as *mut u8, r.size().as_u64() as usize)
    }
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
/// identity map): memory a guest or another CPU may change at any time
/// (canary checks, hypercall arguments, images dom0 hands to a domU). The
/// copy is one string move the compiler cannot look into, so it reads each
/// byte once, as the hardware does, and assumes nothing about the values.
pub fn read_volatile(addr: HostPhysAddr, out: &mut [u8]) {
    // SAFETY: the caller names RAM inside the identity map, `out.len()`
    // bytes long; `out` is a distinct, writable buffer of that length.
    unsafe { copy_string(out.as_mut_ptr(), addr.as_u64() as *const u8, out.len()) }
}

/// Copies `data` to physical address `addr` (RAM inside the identity map),
/// as [`read_volatile`] reads.
pub fn write_volatile(addr: HostPhysAddr, data: &[u8]) {
    // SAFETY: as in `read_volatile`, the destination being the RAM.
    unsafe { copy_string(addr.as_u64() as *mut u8, data.as_ptr(), data.len()) }
}

/// `len` bytes from `src` to `dst` with `rep movsq` then `rep movsb` (SDM
/// Vol. 2B "MOVS"; RFLAGS.DF is clear in the hypervisor, as the SysV ABI
/// requires at every call).
///
/// # Safety
///
/// `src` must be readable and `dst` writable for `len` bytes, and the two
/// ranges must not overlap.
unsafe fn copy_string(dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: per the contract, both ranges are valid for `len` bytes; the
    // string moves touch exactly those bytes and nothing else, and the
    // registers they use are declared.
    unsafe {
        core::arch::asm!(
            "rep movsq",
            "mov rcx, {tail}",
            "rep movsb",
            tail = in(reg) len % 8,
            inout("rcx") len / 8 => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
}
