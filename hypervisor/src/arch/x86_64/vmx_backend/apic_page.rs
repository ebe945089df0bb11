//! The virtual-APIC page (SDM Vol.3C §30.1 "Virtual APIC State"): the
//! hardware reads and updates it during APIC virtualization, the vLAPIC state
//! machine is the model; these two functions copy between them.

use crate::mm::addr::HostPhysAddr;
use crate::vlapic::VLapic;

fn page(p: HostPhysAddr) -> &'static mut [u8; 4096] {
    // SAFETY: `p` is a virtual-APIC page this vCPU allocated (identity
    // mapped, 4 KiB aligned); only the CPU running the vCPU touches it, and
    // never while the guest runs (we are in VMX root on that CPU).
    unsafe { &mut *(p.as_u64() as *mut [u8; 4096]) }
}

/// Zeroes a fresh page.
pub fn zero(p: HostPhysAddr) {
    page(p).fill(0);
}

/// Writes the model into the page.
pub fn store(p: HostPhysAddr, v: &VLapic) {
    v.to_page(page(p));
}

/// Reads the page back into the model.
pub fn load(p: HostPhysAddr, v: &mut VLapic) {
    v.from_page(page(p));
}

/// Applies an APIC-write exit at `offset` (SDM §30.4.3.3).
pub fn write_exit(
    p: HostPhysAddr,
    v: &mut VLapic,
    offset: u32,
    now: u64,
) -> crate::vlapic::Actions {
    v.apic_write_exit(offset, page(p), now)
}
