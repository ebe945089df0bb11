//! The part of a vCPU's state that VM exits and entries do not switch (SDM
//! Vol. 3C §28.3, §28.5 list what they do switch): the SYSCALL MSRs, the
//! kernel GS base, TSC_AUX, CR2, XCR0 and the x87/SSE/AVX registers. While a
//! physical CPU runs one vCPU this state simply stays in the CPU; when it
//! switches to another vCPU, [`GuestContext::save`] and
//! [`GuestContext::restore`] move it. The hypervisor itself uses none of it
//! (no floating point, no SYSCALL).

use alloc::boxed::Box;
use core::arch::asm;

use crate::arch::x86_64::cpu;

/// STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE (SDM Vol. 4 Table 2-2).
const SYSCALL_MSRS: [u32; 5] = [
    0xC000_0081,
    0xC000_0082,
    0xC000_0083,
    0xC000_0084,
    0xC000_0102,
];
/// IA32_TSC_AUX (with RDTSCP).
const TSC_AUX: u32 = 0xC000_0103;

/// An XSAVE area: 64-byte aligned, large enough for x87, SSE and AVX
/// (the components guests get, `vcpu::cpuid::GUEST_XCR0_MASK`).
#[repr(C, align(64))]
struct XsaveArea([u8; 4096]);

/// One vCPU's switched state.
pub struct GuestContext {
    msrs: [u64; SYSCALL_MSRS.len()],
    tsc_aux: u64,
    cr2: u64,
    xcr0: u64,
    xsave: Box<XsaveArea>,
}

impl core::fmt::Debug for GuestContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuestContext")
            .field("xcr0", &self.xcr0)
            .field("cr2", &self.cr2)
            .finish_non_exhaustive()
    }
}

impl GuestContext {
    /// The state of a CPU after reset as far as these registers go: MSRs
    /// zero, XCR0 = x87 only, every extended component in its initial state.
    pub fn initial() -> Self {
        let mut xsave = Box::new(XsaveArea([0; 4096]));
        // MXCSR (legacy-area offset 24) at its reset value, all SIMD
        // exceptions masked (SDM Vol. 1 §10.2.3.1); the XSAVE header's
        // zeros put every component in its initial state.
        xsave.0[24..28].copy_from_slice(&0x1F80u32.to_le_bytes());
        Self {
            msrs: [0; SYSCALL_MSRS.len()],
            tsc_aux: 0,
            cr2: 0,
            xcr0: 1,
            xsave,
        }
    }

    /// Copies the running guest's state out of the CPU.
    pub fn save(&mut self) {
        for (slot, &msr) in self.msrs.iter_mut().zip(SYSCALL_MSRS.iter()) {
            // SAFETY: these MSRs exist on every 64-bit Intel CPU (SDM Vol. 4
            // Table 2-2, architectural); reading has no side effect.
            *slot = unsafe { cpu::rdmsr(msr) };
        }
        if cpu::has_rdtscp() {
            // SAFETY: TSC_AUX exists when CPUID reports RDTSCP.
            self.tsc_aux = unsafe { cpu::rdmsr(TSC_AUX) };
        }
        self.cr2 = cpu::read_cr2();
        let (lo, hi): (u32, u32);
        // SAFETY: XGETBV with ECX = 0 reads XCR0; CR4.OSXSAVE is set by the
        // hypervisor at VMXON time.
        unsafe {
            asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
        };
        self.xcr0 = (u64::from(hi) << 32) | u64::from(lo);
        let area = self.xsave.0.as_mut_ptr();
        // SAFETY: `area` is 64-byte aligned and 4 KiB, larger than the XSAVE
        // area of any XCR0 a guest can set (x87/SSE/AVX: 832 bytes, CPUID
        // leaf 0xD); the mask is XCR0 itself, so only enabled components are
        // written.
        unsafe {
            asm!("xsave64 [{}]", in(reg) area, in("eax") self.xcr0 as u32, in("edx") (self.xcr0 >> 32) as u32, options(nostack));
        }
    }

    /// Loads this vCPU's state into the CPU.
    pub fn restore(&self) {
        for (&value, &msr) in self.msrs.iter().zip(SYSCALL_MSRS.iter()) {
            // SAFETY: the values are zero or what the guest itself wrote on
            // this CPU model (the hardware accepted them then); these MSRs
            // only matter to guest code, the hypervisor never uses SYSCALL
            // or SWAPGS.
            unsafe { cpu::wrmsr(msr, value) };
        }
        if cpu::has_rdtscp() {
            // SAFETY: as above; TSC_AUX exists with RDTSCP.
            unsafe { cpu::wrmsr(TSC_AUX, self.tsc_aux) };
        }
        cpu::write_cr2(self.cr2);
        // XCR0 first: XRSTOR restores the components XCR0 enables. The value
        // was XCR0 before (a guest's, validated when it set it) or the reset
        // value 1.
        if cpu::set_xcr0(self.xcr0).is_err() {
            let _ = cpu::set_xcr0(1);
        }
        let area = self.xsave.0.as_ptr();
        // SAFETY: the area is aligned and large enough (see `save`); it holds
        // either zeros (an XSAVE header of zeros restores the initial state)
        // or what XSAVE wrote with the same XCR0.
        unsafe {
            asm!("xrstor64 [{}]", in(reg) area, in("eax") self.xcr0 as u32, in("edx") (self.xcr0 >> 32) as u32, options(nostack));
        }
    }
}
