//! The hypervisor's own page tables: an identity map of physical memory
//! (read/write, never executable, the first page left unmapped to catch null
//! pointers) and the image in the higher half with per-section permissions
//! (SDM Vol.3A §4.5 "4-Level Paging").

use crate::mm::addr::{ByteSize, HUGE_PAGE_SIZE, HostPhysAddr, LARGE_PAGE_SIZE, PAGE_SIZE};
use crate::mm::frames;
use crate::mm::page_table::{MapError, MapFlags, PageTable, TableMemory, X86Paging};

use super::cpu;

/// Where the image is linked: virtual = KERNEL_VMA + physical.
pub const KERNEL_VMA: u64 = 0xFFFF_FFFF_8000_0000;

/// Page-table memory taken from the frame allocator and reached through the
/// identity map (valid both under the boot tables and under our own).
#[derive(Debug)]
pub struct IdentityTables;

impl TableMemory for IdentityTables {
    fn alloc_table(&mut self) -> Option<HostPhysAddr> {
        let frame = frames::allocate().ok()?;
        // SAFETY: the frame is fresh from the allocator (no other user) and
        // identity-mapped below the mapped limit; zero it before use.
        unsafe { core::ptr::write_bytes(frame.as_u64() as *mut u8, 0, PAGE_SIZE as usize) };
        Some(frame)
    }
    fn read(&self, table: HostPhysAddr, index: usize) -> u64 {
        // SAFETY: `table` is a page-table frame this builder allocated and
        // `index` < 512 (checked by the builder); identity-mapped.
        unsafe { core::ptr::read_volatile((table.as_u64() as *const u64).add(index)) }
    }
    fn write(&mut self, table: HostPhysAddr, index: usize, value: u64) {
        // SAFETY: as in `read`. One aligned 64-bit store, so a CPU walking a
        // live table (an EPT while a guest runs) sees the old entry or the new
        // one, never a mix; whoever changes a live table flushes the TLBs
        // that may cache the old entry (INVEPT, or a CR3 reload).
        unsafe { core::ptr::write_volatile((table.as_u64() as *mut u64).add(index), value) }
    }
}

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

fn sym(s: *const u8) -> u64 {
    s as u64
}

/// Builds the hypervisor's tables covering physical memory up to `phys_limit`
/// (rounded up to 1 GiB) and returns the root to load into CR3.
pub fn build(phys_limit: u64) -> Result<PageTable<X86Paging>, MapError> {
    let mut mem = IdentityTables;
    let mut pt = PageTable::<X86Paging>::new(&mut mem)?;
    let huge = cpu::has_1gib_pages();
    let limit = phys_limit.max(4 << 30).div_ceil(HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
    let data = MapFlags {
        writable: true,
        executable: false,
        global: true,
        ..MapFlags::default()
    };
    // [4 KiB, 2 MiB) in small pages, so page 0 stays unmapped.
    pt.map(
        &mut mem,
        PAGE_SIZE,
        HostPhysAddr::new(PAGE_SIZE),
        ByteSize::new(LARGE_PAGE_SIZE - PAGE_SIZE),
        data,
        false,
    )?;
    pt.map(
        &mut mem,
        LARGE_PAGE_SIZE,
        HostPhysAddr::new(LARGE_PAGE_SIZE),
        ByteSize::new(limit - LARGE_PAGE_SIZE),
        data,
        huge,
    )?;

    // Only the addresses of linker-defined symbols are taken.
    let (ts, te, rs, re, ds, de) = (
        sym(core::ptr::addr_of!(__text_start)),
        sym(core::ptr::addr_of!(__text_end)),
        sym(core::ptr::addr_of!(__rodata_start)),
        sym(core::ptr::addr_of!(__rodata_end)),
        sym(core::ptr::addr_of!(__data_start)),
        sym(core::ptr::addr_of!(__data_end)),
    );
    let page_up = |v: u64| v.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let sections = [
        (
            ts,
            page_up(te),
            MapFlags {
                executable: true,
                global: true,
                ..MapFlags::default()
            },
        ),
        (
            rs,
            page_up(re),
            MapFlags {
                global: true,
                ..MapFlags::default()
            },
        ),
        (
            ds,
            page_up(de),
            MapFlags {
                writable: true,
                global: true,
                ..MapFlags::default()
            },
        ),
    ];
    for (start, end, flags) in sections {
        if end > start {
            pt.map(
                &mut mem,
                start,
                HostPhysAddr::new(start - KERNEL_VMA),
                ByteSize::new(end - start),
                flags,
                false,
            )?;
        }
    }
    Ok(pt)
}

/// Loads `root` into CR3 (and sets CR4.PGE so global pages stay cached).
pub fn activate(root: HostPhysAddr) {
    // SAFETY: `build` mapped everything the running code uses: the image at
    // its linked addresses, and every stack and data structure through the
    // identity map (all of RAM below the limit).
    unsafe {
        cpu::write_cr3(root.as_u64());
        cpu::write_cr4(cpu::read_cr4() | (1 << 7));
    }
}
