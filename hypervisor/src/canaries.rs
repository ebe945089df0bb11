//! Planting and checking the isolation canaries of [`crate::mm::canary`]
//! (command-line option `canary`): one record in the hypervisor image, one in
//! a heap page, and one every [`POOL_STRIDE`] bytes of the free pool. Checked
//! when dom0 ends: a record that changed means dom0 reached memory it must
//! not (a free-pool frame the hypervisor has allocated since is skipped; a
//! domU's frames get their records again when they return to the pool,
//! [`returned`]).

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::arch::x86_64::paging::KERNEL_VMA;
use crate::arch::x86_64::physmem::{read_volatile, write_volatile};
use crate::mm::addr::{HostPhysAddr, PAGE_SIZE};
use crate::mm::canary::{POOL_STRIDE, RECORD_LEN, is_intact, planted_in, record};
use crate::mm::frames::FRAMES;

/// A record in the hypervisor image (`.data`).
static IMAGE_RECORD: spin::Mutex<[u8; RECORD_LEN]> = spin::Mutex::new([0; RECORD_LEN]);

static PLANTED: spin::Once<Canaries> = spin::Once::new();

/// What was planted where.
struct Canaries {
    image: u64,
    heap: (Box<[u8; PAGE_SIZE as usize]>, u64),
    pool: Vec<u64>,
}

fn physical(virt: u64) -> u64 {
    if virt >= KERNEL_VMA {
        virt - KERNEL_VMA
    } else {
        virt
    }
}

/// Plants the records (once) and logs how many.
pub fn plant() {
    let c = PLANTED.call_once(|| {
        let mut image = IMAGE_RECORD.lock();
        let image_pa = physical(image.as_ptr() as u64);
        *image = record(image_pa);
        let mut page = Box::new([0u8; PAGE_SIZE as usize]);
        let heap_pa = physical(page.as_ptr() as u64);
        page[..RECORD_LEN].copy_from_slice(&record(heap_pa));
        let mut pool = Vec::new();
        let fa = FRAMES.lock();
        for r in fa.free_ranges() {
            let mut a = r.start.as_u64().div_ceil(POOL_STRIDE) * POOL_STRIDE;
            while a + PAGE_SIZE <= r.end.as_u64() {
                write_volatile(HostPhysAddr::new(a), &record(a));
                pool.push(a);
                a += POOL_STRIDE;
            }
        }
        pool.sort_unstable();
        Canaries {
            image: image_pa,
            heap: (page, heap_pa),
            pool,
        }
    });
    log::info!(
        "isolation canary: planted in {} pages (image at {:#x}, heap at {:#x}, {} free-pool frames)",
        c.pool.len() + 2,
        c.image,
        c.heap.1,
        c.pool.len()
    );
}

/// Frames `[start, start + pages)` go back to the free pool (a destroyed
/// domU's): the records planted there before they were allocated are
/// written again (the domain had them zeroed and used them), so that they
/// are free-pool canaries again for [`check`]. Call it before freeing them.
pub fn returned(start: HostPhysAddr, pages: u64) {
    let Some(c) = PLANTED.get() else {
        return;
    };
    let end = start
        .as_u64()
        .saturating_add(pages.saturating_mul(PAGE_SIZE));
    for &a in planted_in(&c.pool, start.as_u64(), end) {
        write_volatile(HostPhysAddr::new(a), &record(a));
    }
}

/// Checks the records, if planted, and logs the verdict.
pub fn check() {
    let Some(c) = PLANTED.get() else {
        return;
    };
    let mut damaged: Vec<u64> = Vec::new();
    if !is_intact(&IMAGE_RECORD.lock()[..], c.image) {
        damaged.push(c.image);
    }
    if !is_intact(&c.heap.0[..], c.heap.1) {
        damaged.push(c.heap.1);
    }
    let free: Vec<_> = FRAMES.lock().free_ranges().collect();
    let mut checked = 2;
    for &a in &c.pool {
        if !free.iter().any(|r| r.contains(HostPhysAddr::new(a))) {
            continue; // allocated since: no longer a canary
        }
        checked += 1;
        let mut bytes = [0u8; RECORD_LEN];
        read_volatile(HostPhysAddr::new(a), &mut bytes);
        if !is_intact(&bytes, a) {
            damaged.push(a);
        }
    }
    if damaged.is_empty() {
        log::info!("isolation canary: all {checked} pages intact");
    } else {
        log::error!(
            "isolation canary DAMAGED in {} of {checked} pages, first at {:#x}",
            damaged.len(),
            damaged[0]
        );
    }
}
