//! Per-CPU GDT and TSS (SDM Vol.3A §3.4.5 segment descriptors, §8.7 64-bit
//! TSS, §7.14.5 interrupt stack table).

use alloc::boxed::Box;
use core::arch::asm;
use core::mem::size_of;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// TSS selector.
pub const TSS_SEL: u16 = 0x18;

/// IST slot used for double faults.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot used for NMIs.
pub const IST_NMI: u8 = 2;
/// IST slot used for machine checks.
pub const IST_MACHINE_CHECK: u8 = 3;

/// Size of each IST stack.
pub const IST_STACK_SIZE: usize = 16 * 1024;

/// The 64-bit task-state segment (SDM Vol.3A Figure 8-11).
#[repr(C, packed(4))]
#[derive(Debug, Default, Clone, Copy)]
pub struct Tss {
    reserved0: u32,
    /// Stack pointers for privilege levels 0..2 (unused: no ring change).
    pub rsp: [u64; 3],
    reserved1: u64,
    /// Interrupt stack table, IST1..IST7.
    pub ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    /// Offset of the I/O permission bitmap (none: past the limit).
    pub iomap_base: u16,
}

const _: () = assert!(size_of::<Tss>() == 104);

/// One CPU's descriptor tables.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct CpuTables {
    gdt: [u64; 5],
    tss: Tss,
}

#[repr(C, packed(2))]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Builds this CPU's GDT and TSS, loads them and reloads the segment registers.
/// `ist_tops` are the tops of the IST1..IST3 stacks.
pub fn load_for_this_cpu(ist_tops: [u64; 3]) -> &'static CpuTables {
    let mut tss = Tss {
        iomap_base: size_of::<Tss>() as u16,
        ..Tss::default()
    };
    tss.ist[0] = ist_tops[0];
    tss.ist[1] = ist_tops[1];
    tss.ist[2] = ist_tops[2];
    let tables: &'static mut CpuTables = Box::leak(Box::new(CpuTables { gdt: [0; 5], tss }));
    let tss_base = &tables.tss as *const Tss as u64;
    let tss_limit = (size_of::<Tss>() - 1) as u64;
    tables.gdt[1] = 0x00AF_9A00_0000_FFFF; // 64-bit code, DPL 0
    tables.gdt[2] = 0x00CF_9200_0000_FFFF; // data, DPL 0
    // 64-bit TSS descriptor (type 9 = available), 16 bytes (SDM Figure 8-4).
    tables.gdt[3] = (tss_limit & 0xFFFF)
        | ((tss_base & 0xFF_FFFF) << 16)
        | (0x89 << 40)
        | (((tss_limit >> 16) & 0xF) << 48)
        | (((tss_base >> 24) & 0xFF) << 56);
    tables.gdt[4] = tss_base >> 32;
    let ptr = DescriptorPointer {
        limit: (size_of::<[u64; 5]>() - 1) as u16,
        base: tables.gdt.as_ptr() as u64,
    };
    // SAFETY: the GDT lives forever (leaked); its code and data descriptors
    // match what the running code already uses, so reloading CS (through a far
    // return) and the data segments keeps execution valid; the TSS descriptor
    // points to a valid TSS.
    unsafe {
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) u64::from(KERNEL_CS),
            ds = in(reg) u64::from(KERNEL_DS),
            tss = in(reg) u64::from(TSS_SEL),
            tmp = lateout(reg) _,
        );
    }
    super::percpu::current()
        .tss_base
        .store(tss_base, core::sync::atomic::Ordering::Relaxed);
    tables
}

/// Base addresses of the loaded GDT and IDT (SGDT/SIDT), for the VMCS host state.
pub fn descriptor_table_bases() -> (u64, u64) {
    let mut gdt = DescriptorPointer { limit: 0, base: 0 };
    let mut idt = DescriptorPointer { limit: 0, base: 0 };
    // SAFETY: SGDT/SIDT store 10 bytes into the given, properly sized buffers.
    unsafe {
        asm!("sgdt [{}]", in(reg) &mut gdt, options(nostack, preserves_flags));
        asm!("sidt [{}]", in(reg) &mut idt, options(nostack, preserves_flags));
    }
    (gdt.base, idt.base)
}
