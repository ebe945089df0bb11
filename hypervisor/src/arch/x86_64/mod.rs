//! x86_64 hardware access. Every `unsafe` block of the hypervisor lives under
//! this module; the rest of the crate is safe Rust.

pub mod acpi_mem;
pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod lapic;
pub mod paging;
pub mod percpu;
pub mod physmem;
pub mod pic;
pub mod pit;
pub mod port;
pub mod power;
pub mod serial;
pub mod smp;
pub mod vmcs;
pub mod vmx;
pub mod vmx_backend;
