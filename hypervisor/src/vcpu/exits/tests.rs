//! The neutral exit handlers driven by a fake vCPU: plain registers, a log
//! of what was injected, and a count of hardware accesses where it matters.

use super::cpuid::{cpuid, xsetbv};
use super::cr::{cr_access, efer_after_cr0_write};
use super::msr::{rdmsr, wrmsr};
use super::{Fatal, hlt, hypercall, nmi};
use crate::vcpu::backend::{
    CR0_PG, CR4_OSXSAVE, EFER_LMA, EFER_LME, ExitContext, GuestCpu, vector,
};
use crate::vcpu::exit_event::CrAccess;
use crate::vcpu::msr_policy::{MSR_APIC_BASE, MSR_EFER, MSR_TSC, ReadAction, WriteAction};
use crate::vlapic::ApicFault;
use crate::vmx::exit::Gpr;

/// Something the fake was asked to deliver at the next entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Injected {
    Exception(u8, Option<u32>),
    Nmi,
}

#[derive(Debug)]
struct FakeCpu {
    gprs: [u64; 16],
    rip: u64,
    rflags: u64,
    len: u64,
    shadow: bool,
    cpl: u8,
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
    long_mode: bool,
    injected: Vec<Injected>,
    dom0: bool,
    vcpus: u32,
    apic_id: u32,
    xcr0_supported: u64,
    xcr0: u64,
    blocked: bool,
    apic_base: u64,
    hypercalls: Vec<(u64, [u64; 5])>,
}

/// CPUID.1 of the host the fake runs on: APIC ID 7 in EBX, HTT, OSXSAVE
/// clear and VMX set in ECX.
const HOST_LEAF1: [u32; 4] = [0x000A_0655, 0x0710_0800, 0x7FFA_3223, 0x1FEB_FBFF];

impl FakeCpu {
    fn new() -> Self {
        Self {
            gprs: [0; 16],
            rip: 0x1000,
            rflags: 0x2,
            len: 2,
            shadow: false,
            cpl: 0,
            cr0: 0x8000_0031,
            cr3: 0x5000,
            cr4: 0x20,
            efer: 0xD01,
            long_mode: true,
            injected: Vec::new(),
            dom0: false,
            vcpus: 4,
            apic_id: 2,
            xcr0_supported: 0x2E7,
            xcr0: 1,
            blocked: false,
            apic_base: 0xFEE0_0900,
            hypercalls: Vec::new(),
        }
    }

    fn set(&mut self, r: Gpr, v: u64) -> &mut Self {
        self.gprs[r as usize] = v;
        self
    }

    fn get(&self, r: Gpr) -> u64 {
        self.gprs[r as usize]
    }

    /// RIP moved past an instruction of `self.len` bytes.
    fn advanced(&self) -> bool {
        self.rip == 0x1000 + self.len
    }
}

impl GuestCpu for FakeCpu {
    fn gpr(&self, r: Gpr) -> u64 {
        self.gprs[r as usize]
    }
    fn set_gpr(&mut self, r: Gpr, value: u64) {
        self.gprs[r as usize] = value;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, rip: u64) {
        self.rip = rip;
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
    fn instruction_len(&self) -> u64 {
        self.len
    }
    fn clear_interrupt_shadow(&mut self) {
        self.shadow = false;
    }
    fn cpl(&self) -> u8 {
        self.cpl
    }
    fn cr0(&self) -> u64 {
        self.cr0
    }
    fn set_cr0(&mut self, value: u64) {
        self.cr0 = value;
    }
    fn cr3(&self) -> u64 {
        self.cr3
    }
    fn set_cr3(&mut self, value: u64) {
        self.cr3 = value;
    }
    fn cr4(&self) -> u64 {
        self.cr4
    }
    fn set_cr4(&mut self, value: u64) {
        self.cr4 = value;
    }
    fn efer(&self) -> u64 {
        self.efer
    }
    fn set_efer(&mut self, value: u64) {
        assert_eq!(value & EFER_LMA, self.efer & EFER_LMA, "WRMSR changed LMA");
        self.efer = value;
    }
    fn switch_long_mode(&mut self, efer: u64) {
        assert_ne!(efer & EFER_LMA, self.efer & EFER_LMA, "no mode change");
        self.efer = efer;
        self.long_mode = efer & EFER_LMA != 0;
    }
    fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        self.injected.push(Injected::Exception(vector, error));
    }
    fn inject_nmi(&mut self) {
        self.injected.push(Injected::Nmi);
    }
}

impl ExitContext for FakeCpu {
    type Name = &'static str;
    fn name(&self) -> &'static str {
        "fake vCPU0"
    }
    fn is_dom0(&self) -> bool {
        self.dom0
    }
    fn domu_vcpus(&self) -> Option<u32> {
        (!self.dom0).then_some(self.vcpus)
    }
    fn apic_id(&self) -> u32 {
        self.apic_id
    }
    fn apic_khz(&self) -> u64 {
        100_000
    }
    fn tsc(&self) -> u64 {
        0x1234_5678_9ABC
    }
    fn tsc_khz(&self) -> u64 {
        2_000_000
    }
    fn host_cpuid(&self, leaf: u32, _sub: u32) -> [u32; 4] {
        match leaf {
            1 => HOST_LEAF1,
            0xB => [1, 2, 0x100, 7],
            _ => [0; 4],
        }
    }
    fn xcr0_supported(&self) -> u64 {
        self.xcr0_supported
    }
    fn set_xcr0(&mut self, value: u64) -> bool {
        self.xcr0 = value;
        true
    }
    fn apic_msr_read(&mut self, msr: u32, action: ReadAction) -> Option<u64> {
        assert_eq!((msr, action), (MSR_APIC_BASE, ReadAction::ApicBase));
        Some(self.apic_base)
    }
    fn apic_msr_write(
        &mut self,
        msr: u32,
        action: WriteAction,
        value: u64,
        _now: u64,
    ) -> Result<(), ApicFault> {
        assert_eq!((msr, action), (MSR_APIC_BASE, WriteAction::ApicBase));
        // The fake's APIC refuses a base it cannot move to.
        if value & 0xFFF_FFFF_F000 != 0xFEE0_0000 {
            return Err(ApicFault::Gp);
        }
        self.apic_base = value;
        Ok(())
    }
    fn hypercall(&mut self, op: u64, args: [u64; 5]) -> u64 {
        self.hypercalls.push((op, args));
        0
    }
    fn block(&mut self) {
        self.blocked = true;
    }
}

const GP0: Injected = Injected::Exception(vector::GENERAL_PROTECTION, Some(0));
const UD: Injected = Injected::Exception(vector::INVALID_OPCODE, None);

fn run_cpuid(cpu: &mut FakeCpu, leaf: u32, sub: u32) -> [u32; 4] {
    cpu.set(Gpr::Rax, u64::from(leaf))
        .set(Gpr::Rcx, u64::from(sub))
        .set(Gpr::Rbx, u64::MAX)
        .set(Gpr::Rdx, u64::MAX);
    cpu.rip = 0x1000;
    cpuid(cpu);
    assert!(cpu.advanced());
    [Gpr::Rax, Gpr::Rbx, Gpr::Rcx, Gpr::Rdx].map(|r| {
        let v = cpu.get(r);
        assert_eq!(v >> 32, 0, "CPUID clears the upper halves");
        v as u32
    })
}

#[test]
fn cpuid_osxsave_follows_the_guest_cr4() {
    let mut cpu = FakeCpu::new();
    cpu.cr4 = 0x20;
    let off = run_cpuid(&mut cpu, 1, 0);
    assert_eq!(off[2] & (1 << 27), 0);
    cpu.cr4 |= CR4_OSXSAVE;
    let on = run_cpuid(&mut cpu, 1, 0);
    assert_ne!(on[2] & (1 << 27), 0);
    // VMX hidden, TSC deadline and the hypervisor bit shown, the vCPU's
    // APIC ID in EBX 31:24.
    assert_eq!(on[2] & (1 << 5), 0);
    assert_ne!(on[2] & (1 << 24), 0);
    assert_ne!(on[2] & (1 << 31), 0);
    assert_eq!(on[1] >> 24, 2);
    assert!(cpu.injected.is_empty());
}

#[test]
fn cpuid_shows_a_domus_topology_and_dom0_the_hosts() {
    let mut cpu = FakeCpu::new();
    // Four single-thread cores: core IDs two bits wide, four logical CPUs.
    assert_eq!(run_cpuid(&mut cpu, 0xB, 1), [2, 4, 0x201, 2]);
    assert_eq!(run_cpuid(&mut cpu, 0xB, 0), [0, 1, 0x100, 2]);
    cpu.dom0 = true;
    assert_eq!(run_cpuid(&mut cpu, 0xB, 0), [1, 2, 0x100, 7]);
}

#[test]
fn instruction_skipping_drops_the_interrupt_shadow() {
    let mut cpu = FakeCpu::new();
    cpu.len = 3;
    cpu.shadow = true;
    hlt(&mut cpu);
    assert!(cpu.advanced() && !cpu.shadow && cpu.blocked);
    // Near the top of the address space RIP wraps.
    let mut cpu = FakeCpu::new();
    cpu.rip = u64::MAX;
    super::skip(&mut cpu, 2);
    assert_eq!(cpu.rip, 1);
}

#[test]
fn cr0_write_switches_long_mode() {
    let mut cpu = FakeCpu::new();
    // Paging off in long mode: LMA cleared, IA-32e mode left.
    cpu.set(Gpr::Rbx, 0x11);
    let write = CrAccess::Write {
        cr: 0,
        gpr: Gpr::Rbx,
    };
    assert_eq!(cr_access(&mut cpu, write), Ok(()));
    assert_eq!(
        (cpu.cr0, cpu.efer & EFER_LMA, cpu.long_mode),
        (0x11, 0, false)
    );
    assert!(cpu.advanced());
    // And on again, with LME still set.
    cpu.rip = 0x1000;
    cpu.set(Gpr::Rbx, 0x8000_0011);
    assert_eq!(cr_access(&mut cpu, write), Ok(()));
    assert_eq!(cpu.efer & EFER_LMA, EFER_LMA);
    assert!(cpu.long_mode);
    // Without LME, paging stays 32-bit.
    assert_eq!(efer_after_cr0_write(CR0_PG | 1, 0), None);
    assert_eq!(efer_after_cr0_write(CR0_PG | 1, EFER_LME | EFER_LMA), None);
    assert_eq!(efer_after_cr0_write(1, EFER_LME), None);
}

#[test]
fn clts_and_lmsw_keep_pe() {
    let mut cpu = FakeCpu::new();
    cpu.cr0 = 0x8000_003B; // PG, NE, ET, TS, MP, PE
    assert_eq!(cr_access(&mut cpu, CrAccess::Clts), Ok(()));
    assert_eq!(cpu.cr0, 0x8000_0033);
    // LMSW 0 cannot clear PE; it sets TS from bit 3.
    cpu.rip = 0x1000;
    assert_eq!(cr_access(&mut cpu, CrAccess::Lmsw { source: 0x8 }), Ok(()));
    assert_eq!(cpu.cr0, 0x8000_0039);
    assert!(cpu.advanced() && cpu.long_mode);
}

#[test]
fn cr4_write_refuses_vmxe() {
    let mut cpu = FakeCpu::new();
    let write = CrAccess::Write {
        cr: 4,
        gpr: Gpr::R9,
    };
    cpu.set(Gpr::R9, 0x20 | (1 << 13));
    assert_eq!(cr_access(&mut cpu, write), Ok(()));
    assert_eq!((cpu.cr4, cpu.rip), (0x20, 0x1000));
    assert_eq!(cpu.injected, [GP0]);
    cpu.set(Gpr::R9, 0x20 | CR4_OSXSAVE);
    assert_eq!(cr_access(&mut cpu, write), Ok(()));
    assert_eq!(cpu.cr4, 0x20 | CR4_OSXSAVE);
    assert!(cpu.advanced());
}

#[test]
fn cr3_moves_both_ways_and_other_crs_are_fatal() {
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rsp, 0x9000);
    let to = CrAccess::Write {
        cr: 3,
        gpr: Gpr::Rsp,
    };
    assert_eq!(cr_access(&mut cpu, to), Ok(()));
    assert_eq!(cpu.cr3, 0x9000);
    let from = CrAccess::Read {
        cr: 3,
        gpr: Gpr::R15,
    };
    assert_eq!(cr_access(&mut cpu, from), Ok(()));
    assert_eq!(cpu.get(Gpr::R15), 0x9000);
    let cr8 = CrAccess::Read {
        cr: 8,
        gpr: Gpr::Rax,
    };
    cpu.rip = 0x1000;
    assert_eq!(cr_access(&mut cpu, cr8), Err(Fatal));
    assert_eq!(cpu.rip, 0x1000);
}

#[test]
fn rdmsr_splits_the_value_or_raises_gp() {
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rcx, u64::from(MSR_EFER))
        .set(Gpr::Rax, u64::MAX);
    rdmsr(&mut cpu);
    assert_eq!((cpu.get(Gpr::Rax), cpu.get(Gpr::Rdx)), (0xD01, 0));
    assert!(cpu.advanced());
    cpu.rip = 0x1000;
    cpu.set(Gpr::Rcx, u64::from(MSR_TSC));
    rdmsr(&mut cpu);
    assert_eq!(
        (cpu.get(Gpr::Rax), cpu.get(Gpr::Rdx)),
        (0x5678_9ABC, 0x1234)
    );
    cpu.rip = 0x1000;
    cpu.set(Gpr::Rcx, u64::from(MSR_APIC_BASE));
    rdmsr(&mut cpu);
    assert_eq!(cpu.get(Gpr::Rax), 0xFEE0_0900);
    // An MSR the policy does not know: #GP(0), RIP and registers unchanged.
    for dom0 in [false, true] {
        let mut cpu = FakeCpu::new();
        cpu.dom0 = dom0;
        cpu.set(Gpr::Rcx, 0x4B56_4D00).set(Gpr::Rax, 7);
        rdmsr(&mut cpu);
        assert_eq!(cpu.injected, [GP0]);
        assert_eq!((cpu.rip, cpu.get(Gpr::Rax)), (0x1000, 7));
    }
}

#[test]
fn wrmsr_takes_edx_eax_or_raises_gp() {
    let mut cpu = FakeCpu::new();
    // The upper half of RAX is ignored.
    cpu.set(Gpr::Rcx, u64::from(MSR_APIC_BASE))
        .set(Gpr::Rdx, 0)
        .set(Gpr::Rax, 0xDEAD_0000_FEE0_0800);
    wrmsr(&mut cpu);
    assert_eq!(cpu.apic_base, 0xFEE0_0800);
    assert!(cpu.advanced() && cpu.injected.is_empty());
    // The APIC refuses: #GP, no advance.
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rcx, u64::from(MSR_APIC_BASE))
        .set(Gpr::Rdx, 1)
        .set(Gpr::Rax, 0xFEE0_0800);
    wrmsr(&mut cpu);
    assert_eq!(
        (cpu.injected.as_slice(), cpu.rip),
        ([GP0].as_slice(), 0x1000)
    );
    // EFER: LME cannot change while paging is on; NXE can.
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rcx, u64::from(MSR_EFER)).set(Gpr::Rax, 0xC01);
    wrmsr(&mut cpu);
    assert_eq!(
        (cpu.efer, cpu.injected.as_slice()),
        (0xD01, [GP0].as_slice())
    );
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rcx, u64::from(MSR_EFER)).set(Gpr::Rax, 0x101);
    wrmsr(&mut cpu);
    // NXE cleared; LMA is kept from the current value.
    assert_eq!(cpu.efer, 0x501);
    assert!(cpu.advanced());
    // An unknown MSR.
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rcx, 0xC001_0000);
    wrmsr(&mut cpu);
    assert_eq!(cpu.injected, [GP0]);
    // An ignored one (a microcode update trigger) completes.
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rcx, 0x79);
    wrmsr(&mut cpu);
    assert!(cpu.advanced() && cpu.injected.is_empty());
}

#[test]
fn xsetbv_checks_index_and_value() {
    let cases = [
        // (ECX, EDX:EAX, accepted)
        (0, 0x7, true),   // x87, SSE, AVX
        (0, 0x3, true),   // x87, SSE
        (0, 0x1, true),   // x87 only
        (0, 0x6, false),  // no x87
        (0, 0x5, false),  // AVX without SSE
        (0, 0xE7, false), // AVX-512 state: not shown to guests
        (1, 0x1, false),  // XCR1 does not exist
    ];
    for (index, value, ok) in cases {
        let mut cpu = FakeCpu::new();
        cpu.set(Gpr::Rcx, index)
            .set(Gpr::Rdx, value >> 32)
            .set(Gpr::Rax, value & 0xFFFF_FFFF);
        xsetbv(&mut cpu);
        assert_eq!(cpu.advanced(), ok, "XSETBV {index} {value:#x}");
        if ok {
            assert_eq!(cpu.xcr0, value);
        } else {
            assert_eq!((cpu.xcr0, cpu.injected.as_slice()), (1, [GP0].as_slice()));
        }
    }
    // A host without AVX refuses AVX.
    let mut cpu = FakeCpu::new();
    cpu.xcr0_supported = 0x3;
    cpu.set(Gpr::Rax, 0x7);
    xsetbv(&mut cpu);
    assert_eq!(cpu.injected, [GP0]);
}

#[test]
fn hypercalls_need_ring_0() {
    let mut cpu = FakeCpu::new();
    cpu.set(Gpr::Rax, 5)
        .set(Gpr::Rdi, 1)
        .set(Gpr::Rsi, 2)
        .set(Gpr::Rdx, 3)
        .set(Gpr::R10, 4)
        .set(Gpr::R8, 5);
    hypercall(&mut cpu);
    assert_eq!(cpu.hypercalls, [(5, [1, 2, 3, 4, 5])]);
    assert_eq!(cpu.get(Gpr::Rax), 0);
    assert!(cpu.advanced());
    let mut cpu = FakeCpu::new();
    cpu.cpl = 3;
    hypercall(&mut cpu);
    assert!(cpu.hypercalls.is_empty());
    assert_eq!(
        (cpu.injected.as_slice(), cpu.rip),
        ([UD].as_slice(), 0x1000)
    );
}

#[test]
fn physical_nmis_go_to_dom0_only() {
    let mut cpu = FakeCpu::new();
    nmi(&mut cpu);
    assert!(cpu.injected.is_empty());
    cpu.dom0 = true;
    nmi(&mut cpu);
    assert_eq!(cpu.injected, [Injected::Nmi]);
}
