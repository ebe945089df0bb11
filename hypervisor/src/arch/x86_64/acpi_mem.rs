//! Physical-memory reads for the ACPI parser through the hypervisor's
//! identity map of low memory.

use crate::acpi::PhysRead;

/// Reads physical memory below the identity-mapped limit.
#[derive(Debug, Clone, Copy)]
pub struct IdentityMap {
    /// One past the highest mapped physical address.
    pub limit: u64,
}

impl PhysRead for IdentityMap {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = addr.checked_add(buf.len() as u64) else {
            return false;
        };
        if addr == 0 || end > self.limit {
            return false;
        }
        // SAFETY: [addr, end) lies in the identity map (checked above) and
        // firmware tables are plain memory; we only read.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
}
