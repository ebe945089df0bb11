//! Starting the application processors with INIT-SIPI-SIPI (SDM Vol.3A §9.4.4
//! "MP Initialization Example", §12.6.1 ICR).

use core::arch::global_asm;
use core::sync::atomic::Ordering;

use super::{cpu, lapic, percpu};

global_asm!(include_str!("trampoline.S"), options(att_syntax));

/// Physical page the AP start-up code is copied to (below 1 MiB, 4 KiB
/// aligned; the SIPI vector is its page number). Must match `BASE` in
/// trampoline.S.
pub const TRAMPOLINE_BASE: u64 = 0x8000;

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static boot_pml4: u8;
}

/// What an AP needs to start.
#[derive(Debug, Clone, Copy)]
pub struct ApStart {
    /// Its logical CPU index.
    pub index: usize,
    /// Its local APIC ID.
    pub apic_id: u32,
    /// Top of its boot stack (identity-mapped, 16-byte aligned).
    pub stack_top: u64,
    /// The 64-bit entry, `extern "C" fn(index: u64) -> !`.
    pub entry: u64,
}

fn trampoline_bytes() -> &'static [u8] {
    // SAFETY: the two symbols delimit the trampoline blob in .rodata
    // (trampoline.S); it is immutable and lives forever.
    unsafe {
        let start = core::ptr::addr_of!(ap_trampoline_start);
        let end = core::ptr::addr_of!(ap_trampoline_end);
        core::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

/// Copies the trampoline to TRAMPOLINE_BASE. The page must be free RAM that
/// nothing else uses (the caller reserved the first MiB from the allocator
/// and checked it is not the boot information or a module).
pub fn install_trampoline() {
    let blob = trampoline_bytes();
    assert!(blob.len() <= 4096, "AP trampoline larger than a page");
    // SAFETY: the target page is identity-mapped, reserved for this purpose
    // (see above) and does not overlap the source in .rodata.
    unsafe {
        core::ptr::copy_nonoverlapping(blob.as_ptr(), TRAMPOLINE_BASE as *mut u8, blob.len());
    }
}

fn write_param(slot_from_end: usize, value: u64) {
    let len = trampoline_bytes().len();
    let addr = TRAMPOLINE_BASE + (len - slot_from_end * 8) as u64;
    // SAFETY: the parameter block is the last 40 bytes of the installed
    // trampoline page (trampoline.S), 8-byte aligned, owned by the BSP while
    // no AP is starting.
    unsafe { core::ptr::write_volatile(addr as *mut u64, value) };
}

/// Starts one AP and waits (bounded) until it reports online. Returns whether
/// it came up.
pub fn start_ap(ap: &ApStart, tsc_khz: u64) -> bool {
    // Parameter block layout, counted from the end: efer, cpu, entry, stack, cr3.
    // The boot PML4 lies below 4 GiB, as the 32-bit trampoline code needs.
    let boot_cr3 = core::ptr::addr_of!(boot_pml4) as u64;
    let nx = cpu::has_execute_disable();
    let efer_bits = (1u64 << 8) | if nx { 1 << 11 } else { 0 };
    write_param(5, boot_cr3);
    write_param(4, ap.stack_top);
    write_param(3, ap.entry);
    write_param(2, ap.index as u64);
    write_param(1, efer_bits);

    let khz = tsc_khz.max(1);
    let wait_us = |us: u64| {
        let start = cpu::rdtsc();
        while cpu::rdtsc().wrapping_sub(start) < us * khz / 1000 {
            cpu::pause();
        }
    };
    let online = || percpu::get(ap.index).online.load(Ordering::Acquire);
    let vector = (TRAMPOLINE_BASE >> 12) as u8;
    lapic::send_init(ap.apic_id);
    wait_us(10_000);
    lapic::send_sipi(ap.apic_id, vector);
    wait_us(200);
    if !online() {
        lapic::send_sipi(ap.apic_id, vector);
    }
    for _ in 0..1000 {
        if online() {
            return true;
        }
        wait_us(1000);
    }
    online()
}
