//! The boot entry: the multiboot2 header and 32-to-64-bit trampoline
//! (boot.S), and the first Rust function, which turns the raw boot-loader
//! hand-off into safe values for `crate::start`.

use core::arch::global_asm;

use crate::mm::addr::{HostPhysAddr, PhysRange};

global_asm!(include_str!("boot.S"), options(att_syntax));

unsafe extern "C" {
    static __image_start_phys: u8;
    static __image_end_phys: u8;
}

/// Physical range occupied by the hypervisor image (boot section, code, data,
/// bss and the boot page tables and stack).
pub fn image_range() -> PhysRange {
    // Only the addresses of the linker-defined symbols are taken.
    let (start, end) = (
        core::ptr::addr_of!(__image_start_phys) as u64,
        core::ptr::addr_of!(__image_end_phys) as u64,
    );
    PhysRange::new(HostPhysAddr::new(start), HostPhysAddr::new(end))
}

/// Largest boot-information structure we accept (GRUB's is a few KiB).
const MAX_BOOT_INFO: u32 = 1 << 20;

/// Called by boot.S on the boot CPU with the multiboot2 magic and the
/// physical address of the boot information.
#[unsafe(no_mangle)]
extern "C" fn boot_main(magic: u32, info_phys: u64) -> ! {
    let info: &'static [u8] =
        if info_phys != 0 && info_phys.is_multiple_of(8) && info_phys < (1 << 32) {
            // SAFETY: the boot loader placed the structure at `info_phys`, below
            // 4 GiB (identity-mapped by boot.S); its first u32 is the total size
            // (Multiboot2 spec §3.6.1). We bound the size and never write to it;
            // the frame allocator keeps this range reserved, so it stays valid.
            unsafe {
                let total = core::ptr::read_volatile(info_phys as *const u32).min(MAX_BOOT_INFO);
                core::slice::from_raw_parts(info_phys as *const u8, total as usize)
            }
        } else {
            &[]
        };
    crate::start::bsp_main(magic, info, HostPhysAddr::new(info_phys))
}
