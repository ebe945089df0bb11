//! The interrupt descriptor table and the Rust side of interrupt handling
//! (SDM Vol.3A §7.14 "Exception and Interrupt Handling in 64-bit Mode").

use core::arch::{asm, global_asm};
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, Ordering};

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI, KERNEL_CS};
use super::{cpu, lapic, percpu};
use crate::logger::write_raw;

global_asm!(include_str!("exceptions.S"), options(att_syntax));

/// Vector of the local APIC timer.
pub const VECTOR_TIMER: u8 = 0xF0;
/// Vector of hypervisor IPIs.
pub const VECTOR_IPI: u8 = 0xF1;
/// Vector the local APIC uses for spurious interrupts.
pub const VECTOR_SPURIOUS: u8 = 0xFF;

/// Registers saved by the entry stubs, in stack order (see exceptions.S).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(size_of::<Gate>() == 16);

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist,
            type_attr: 0x8E, // present, DPL 0, 64-bit interrupt gate
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

unsafe extern "C" {
    static isr_stub_0: u8;
}

/// Timer interrupts taken, all CPUs together.
pub static TIMER_TICKS: AtomicU64 = AtomicU64::new(0);

fn stub_address(vector: u8) -> u64 {
    // Each stub is 16-byte aligned and laid out in vector order (exceptions.S).
    core::ptr::addr_of!(isr_stub_0) as u64 + u64::from(vector) * 16
}

/// Builds the IDT (once) and loads it on this CPU.
pub fn load() {
    let idt = IDT.call_once(|| {
        let mut gates = [Gate::MISSING; 256];
        for v in 0..32u8 {
            let ist = match v {
                2 => IST_NMI,
                8 => IST_DOUBLE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            gates[usize::from(v)] = Gate::interrupt(stub_address(v), ist);
        }
        for v in 32..=255u8 {
            gates[usize::from(v)] = Gate::interrupt(stub_address(v), 0);
        }
        Idt(gates)
    });
    #[repr(C, packed(2))]
    struct Ptr {
        limit: u16,
        base: u64,
    }
    let ptr = Ptr {
        limit: (size_of::<Idt>() - 1) as u16,
        base: idt as *const Idt as u64,
    };
    // SAFETY: the IDT is a static that lives forever and every present gate
    // points at a stub in exceptions.S.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}

const EXCEPTION_NAMES: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "NMI",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "BOUND range exceeded (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor segment overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack-segment fault (#SS)",
    "general protection (#GP)",
    "page fault (#PF)",
    "reserved 15",
    "x87 FPU error (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD exception (#XM)",
    "virtualization exception (#VE)",
    "control protection (#CP)",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "hypervisor injection (#HV)",
    "VMM communication (#VC)",
    "security exception (#SX)",
    "reserved 31",
];

/// Called by the common stub with the saved state.
#[unsafe(no_mangle)]
extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        0..=31 => exception(frame),
        v if v == u64::from(VECTOR_TIMER) => {
            TIMER_TICKS.fetch_add(1, Ordering::Relaxed);
            lapic::eoi();
        }
        v if v == u64::from(VECTOR_IPI) => lapic::eoi(),
        v if v == u64::from(VECTOR_SPURIOUS) => {} // no EOI (SDM Vol.3A §12.9)
        v => device_interrupt(v as u8),
    }
}

/// Vectors below 0xF0 belong to dom0's devices: the interrupt stays in
/// service at the physical APIC (no EOI here) and is queued for injection
/// into dom0's vCPU on this CPU; dom0's own EOI completes it.
fn device_interrupt(vector: u8) {
    percpu::current().pending_device_vectors.set(vector);
}

fn exception(f: &TrapFrame) -> ! {
    let cpu = percpu::current_index();
    let name = EXCEPTION_NAMES[f.vector as usize];
    write_raw(format_args!(
        "\n*** EXCEPTION on cpu{cpu}: vector {} {name}, error code {:#x}\n\
         RIP {:#018x} CS {:#06x} RFLAGS {:#018x} RSP {:#018x} SS {:#06x}\n\
         CR2 {:#018x} CR3 {:#018x} CR0 {:#018x} CR4 {:#018x}\n\
         RAX {:#018x} RBX {:#018x} RCX {:#018x} RDX {:#018x}\n\
         RSI {:#018x} RDI {:#018x} RBP {:#018x} R8  {:#018x}\n\
         R9  {:#018x} R10 {:#018x} R11 {:#018x} R12 {:#018x}\n\
         R13 {:#018x} R14 {:#018x} R15 {:#018x}\n\
         *** cpu{cpu} stopped.\n",
        f.vector,
        f.error_code,
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        cpu::read_cr2(),
        cpu::read_cr3(),
        cpu::read_cr0(),
        cpu::read_cr4(),
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
    ));
    percpu::current().stopped.store(true, Ordering::Release);
    cpu::halt_forever()
}
