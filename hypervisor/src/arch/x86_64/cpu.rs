//! CPU instructions: MSRs, control registers, CPUID, TSC, halting.

use core::arch::asm;

use raw_cpuid::{CpuId, ExtendedProcessorFeatureIdentifiers, FeatureInfo};

/// IA32_FEATURE_CONTROL (SDM Vol.4 Table 2-2, MSR 0x3A).
pub const IA32_FEATURE_CONTROL: u32 = 0x3A;
/// IA32_APIC_BASE (MSR 0x1B).
pub const IA32_APIC_BASE: u32 = 0x1B;
/// IA32_EFER (MSR 0xC000_0080).
pub const IA32_EFER: u32 = 0xC000_0080;
/// IA32_GS_BASE (MSR 0xC000_0101).
pub const IA32_GS_BASE: u32 = 0xC000_0101;
/// IA32_VMX_BASIC, the first VMX capability MSR (SDM Vol.3D Appendix A.1).
pub const IA32_VMX_BASIC: u32 = 0x480;
/// IA32_VMX_CR0_FIXED0 (SDM Vol.3D A.7).
pub const IA32_VMX_CR0_FIXED0: u32 = 0x486;
/// IA32_VMX_CR0_FIXED1.
pub const IA32_VMX_CR0_FIXED1: u32 = 0x487;
/// IA32_VMX_CR4_FIXED0 (SDM Vol.3D A.8).
pub const IA32_VMX_CR4_FIXED0: u32 = 0x488;
/// IA32_VMX_CR4_FIXED1.
pub const IA32_VMX_CR4_FIXED1: u32 = 0x489;

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU (reading an unimplemented MSR raises #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists; rdmsr has no memory effect.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it; MSR writes can change
/// paging, interrupt and execution behaviour of the whole CPU.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    }
}

/// CPUID leaf/subleaf.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// XCR0 cannot take the value asked for (XSETBV would fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xcr0Refused;

/// Sets XCR0 to `value` if CPUID says the CPU supports every bit of it and
/// CR4.OSXSAVE is set; otherwise changes nothing.
pub fn set_xcr0(value: u64) -> Result<(), Xcr0Refused> {
    let supported = xcr0_supported();
    if !crate::vcpu::cpuid::xcr0_loadable(value, supported) || read_cr4() & (1 << 18) == 0 {
        return Err(Xcr0Refused);
    }
    // SAFETY: the checks above are the conditions under which XSETBV of
    // XCR0 does not fault (SDM Vol. 2D XSETBV); the hypervisor itself uses
    // no extended state, so XCR0 only matters to the guest it runs.
    unsafe {
        asm!("xsetbv", in("ecx") 0u32, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nomem, nostack));
    }
    Ok(())
}

/// The time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter (CR4.TSD is clear at CPL 0).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads CR0.
pub fn read_cr0() -> u64 {
    let v;
    // SAFETY: reading CR0 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Writes CR0.
///
/// # Safety
/// The value must keep paging and protection consistent with the current code.
pub unsafe fn write_cr0(v: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { asm!("mov cr0, {}", in(reg) v, options(nostack, preserves_flags)) }
}

/// Reads CR3.
pub fn read_cr3() -> u64 {
    let v;
    // SAFETY: reading CR3 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Loads CR3.
///
/// # Safety
/// `v` must point to page tables that map all code, data and stacks in use.
pub unsafe fn write_cr3(v: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { asm!("mov cr3, {}", in(reg) v, options(nostack, preserves_flags)) }
}

/// Reads CR4.
pub fn read_cr4() -> u64 {
    let v;
    // SAFETY: reading CR4 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Writes CR4.
///
/// # Safety
/// The value must be valid for this CPU and consistent with the running code.
pub unsafe fn write_cr4(v: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) }
}

/// Reads CR2 (the last page-fault linear address).
pub fn read_cr2() -> u64 {
    let v;
    // SAFETY: reading CR2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Writes CR2 (a guest's last page-fault address, restored on a vCPU
/// switch).
pub fn write_cr2(v: u64) {
    // SAFETY: CR2 is only read by page-fault handlers; the hypervisor's own
    // faults are fatal reports, so no code depends on its value here.
    unsafe { asm!("mov cr2, {}", in(reg) v, options(nomem, nostack, preserves_flags)) }
}

/// Halts until the next interrupt.
pub fn hlt() {
    // SAFETY: hlt only waits for an interrupt.
    unsafe { asm!("hlt", options(nomem, nostack, preserves_flags)) }
}

/// Disables maskable interrupts.
pub fn cli() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { asm!("cli", options(nomem, nostack)) }
}

/// Enables maskable interrupts.
pub fn sti() {
    // SAFETY: the IDT is loaded before anyone calls this; handlers are sound.
    unsafe { asm!("sti", options(nomem, nostack)) }
}

/// Spin-loop hint.
pub fn pause() {
    core::hint::spin_loop();
}

/// Stops this CPU for good: interrupts off, halt forever.
pub fn halt_forever() -> ! {
    loop {
        cli();
        hlt();
    }
}

/// Reads a byte at `addr`, which the caller knows is not mapped, to take a
/// page fault on purpose (`crashtest=fault`). The fault handler reports it
/// and stops this CPU, so this never returns.
pub fn fault_on_purpose(addr: u64) -> ! {
    // SAFETY: a load from a non-present page raises #PF before anything is
    // read (SDM Vol. 3A §4.7); the handler reports and halts this CPU, so
    // nothing after the load runs and no memory is changed.
    unsafe {
        core::arch::asm!("mov {0}, byte ptr [{1}]", out(reg_byte) _, in(reg) addr, options(nostack, readonly));
    }
    halt_forever()
}

// The hypervisor's own feature checks decode CPUID through `raw-cpuid`; the
// guest's CPUID (`crate::vcpu::cpuid`) is the host's raw registers with
// bits masked and leaves added, so it keeps working on `[u32; 4]`.

/// A leaf-1 feature test (false when the leaf is missing).
fn leaf1(test: fn(&FeatureInfo) -> bool) -> bool {
    CpuId::new().get_feature_info().is_some_and(|f| test(&f))
}

/// A leaf-0x8000_0001 feature test (false when the leaf is missing).
fn extended(test: fn(&ExtendedProcessorFeatureIdentifiers) -> bool) -> bool {
    CpuId::new()
        .get_extended_processor_and_feature_identifiers()
        .is_some_and(|e| test(&e))
}

/// Whether CPUID reports VMX (leaf 1, ECX bit 5).
pub fn has_vmx() -> bool {
    leaf1(FeatureInfo::has_vmx)
}

/// Whether CPUID reports x2APIC (leaf 1, ECX bit 21).
pub fn has_x2apic() -> bool {
    leaf1(FeatureInfo::has_x2apic)
}

/// Whether CPUID reports XSAVE/XRSTOR and XCR0 (leaf 1, ECX bit 26).
pub fn has_xsave() -> bool {
    leaf1(FeatureInfo::has_xsave)
}

/// The initial APIC ID from CPUID leaf 1 (EBX bits 31:24).
pub fn initial_apic_id() -> u32 {
    CpuId::new()
        .get_feature_info()
        .map_or(0, |f| u32::from(f.initial_local_apic_id()))
}

/// Whether 1 GiB pages exist (leaf 0x8000_0001, EDX bit 26).
pub fn has_1gib_pages() -> bool {
    extended(ExtendedProcessorFeatureIdentifiers::has_1gib_pages)
}

/// Whether the execute-disable bit exists (leaf 0x8000_0001, EDX bit 20).
pub fn has_execute_disable() -> bool {
    extended(ExtendedProcessorFeatureIdentifiers::has_execute_disable)
}

/// Whether RDTSCP exists (leaf 0x8000_0001, EDX bit 27).
/// Asked at every vCPU switch: read once (the CPUs of a machine agree).
pub fn has_rdtscp() -> bool {
    static RDTSCP: spin::Once<bool> = spin::Once::new();
    *RDTSCP.call_once(|| extended(ExtendedProcessorFeatureIdentifiers::has_rdtscp))
}

/// The physical address width, MAXPHYADDR (leaf 0x8000_0008, EAX bits 7:0;
/// 36 when the leaf is missing, SDM Vol. 3A §4.1.4). Asked at every emulated
/// domU memory access: read once.
pub fn physical_address_bits() -> u8 {
    static BITS: spin::Once<u8> = spin::Once::new();
    *BITS.call_once(|| {
        CpuId::new()
            .get_processor_capacity_feature_info()
            .map_or(36, |c| c.physical_address_bits())
    })
}

/// The XCR0 bits the CPU supports (leaf 0xD sub-leaf 0, EDX:EAX).
pub fn xcr0_supported() -> u64 {
    let leaf = cpuid(0xD, 0);
    u64::from(leaf[0]) | (u64::from(leaf[3]) << 32)
}

/// The CPU's brand string (CPUID 0x8000_0002..4), or an empty string.
pub fn brand_string(buf: &mut [u8; 48]) -> &str {
    let Some(brand) = CpuId::new().get_processor_brand_string() else {
        return "";
    };
    let text = brand.as_str().trim();
    let n = text.len().min(buf.len());
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}
