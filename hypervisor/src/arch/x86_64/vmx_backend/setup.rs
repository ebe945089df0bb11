//! Initial VMCS contents for a vCPU (SDM Vol.3C chapter 25 "Virtual Machine
//! Control Structures", §26.3 checks on guest state, §28.5 host state).

use core::sync::atomic::Ordering;

use crate::arch::x86_64::cpu::{self, IA32_EFER, IA32_GS_BASE, rdmsr};
use crate::arch::x86_64::gdt::{KERNEL_CS, KERNEL_DS, TSS_SEL};
use crate::arch::x86_64::vmcs::write;
use crate::arch::x86_64::{gdt, percpu};
use crate::vmx::caps::VmxMsrs;
use crate::vmx::controls::{EntryControls, ExitControls, PinBased, ProcBased, ProcBased2};
use crate::vmx::fields::{Field16 as F16, Field32 as F32, Field64 as F64, FieldNat as FN};

/// IA32_PAT (MSR 0x277).
const IA32_PAT: u32 = 0x277;
/// The power-on value of IA32_PAT (SDM Vol.3A §13.12.4 Table 13-12).
pub const PAT_POWER_ON: u64 = 0x0007_0406_0007_0406;

// The control bits used here, named after `vmx::controls` (SDM Tables 25-5,
// 25-6, 25-7, 25-13, 25-15), as plain `u32`s for the VMCS writes.
pub const PIN_EXTERNAL_INTERRUPT_EXITING: u32 = PinBased::EXTERNAL_INTERRUPT_EXITING.bits();
pub const PIN_NMI_EXITING: u32 = PinBased::NMI_EXITING.bits();
pub const PIN_VIRTUAL_NMIS: u32 = PinBased::VIRTUAL_NMIS.bits();
pub const PIN_PREEMPTION_TIMER: u32 = PinBased::PREEMPTION_TIMER.bits();
pub const PROC_INTERRUPT_WINDOW_EXITING: u32 = ProcBased::INTERRUPT_WINDOW_EXITING.bits();
pub const PROC_HLT_EXITING: u32 = ProcBased::HLT_EXITING.bits();
pub const PROC_USE_TPR_SHADOW: u32 = ProcBased::USE_TPR_SHADOW.bits();
pub const PROC_USE_IO_BITMAPS: u32 = ProcBased::USE_IO_BITMAPS.bits();
pub const PROC_USE_MSR_BITMAPS: u32 = ProcBased::USE_MSR_BITMAPS.bits();
pub const PROC_SECONDARY: u32 = ProcBased::ACTIVATE_SECONDARY_CONTROLS.bits();
pub const PROC2_VIRTUALIZE_APIC_ACCESSES: u32 = ProcBased2::VIRTUALIZE_APIC_ACCESSES.bits();
pub const PROC2_EPT: u32 = ProcBased2::ENABLE_EPT.bits();
pub const PROC2_RDTSCP: u32 = ProcBased2::ENABLE_RDTSCP.bits();
pub const PROC2_VIRTUALIZE_X2APIC: u32 = ProcBased2::VIRTUALIZE_X2APIC_MODE.bits();
pub const PROC2_VPID: u32 = ProcBased2::ENABLE_VPID.bits();
pub const PROC2_UNRESTRICTED_GUEST: u32 = ProcBased2::UNRESTRICTED_GUEST.bits();
pub const PROC2_APIC_REGISTER_VIRTUALIZATION: u32 = ProcBased2::APIC_REGISTER_VIRTUALIZATION.bits();
pub const PROC2_VIRTUAL_INTERRUPT_DELIVERY: u32 = ProcBased2::VIRTUAL_INTERRUPT_DELIVERY.bits();
pub const PROC2_INVPCID: u32 = ProcBased2::ENABLE_INVPCID.bits();
pub const EXIT_HOST_64BIT: u32 = ExitControls::HOST_ADDRESS_SPACE_SIZE.bits();
pub const EXIT_ACK_INTERRUPT: u32 = ExitControls::ACK_INTERRUPT_ON_EXIT.bits();
pub const EXIT_SAVE_PAT: u32 = ExitControls::SAVE_IA32_PAT.bits();
pub const EXIT_LOAD_PAT: u32 = ExitControls::LOAD_IA32_PAT.bits();
pub const EXIT_SAVE_EFER: u32 = ExitControls::SAVE_IA32_EFER.bits();
pub const EXIT_LOAD_EFER: u32 = ExitControls::LOAD_IA32_EFER.bits();
pub const ENTRY_IA32E_GUEST: u32 = EntryControls::IA32E_MODE_GUEST.bits();
pub const ENTRY_LOAD_PAT: u32 = EntryControls::LOAD_IA32_PAT.bits();
pub const ENTRY_LOAD_EFER: u32 = EntryControls::LOAD_IA32_EFER.bits();

/// Applies a control MSR's allowed settings (SDM Vol.3D A.3: bits 31:0 must
/// be 1, bits 63:32 may be 1). Returns the value and the desired bits the CPU
/// cannot set.
pub fn adjust(desired: u32, cap: u64) -> (u32, u32) {
    let must = cap as u32;
    let may = (cap >> 32) as u32;
    let value = (desired | must) & may;
    (value, desired & !may)
}

/// Guest segment access rights (SDM Table 25-2).
pub mod ar {
    /// 32-bit flat code: present, S, execute/read accessed, D, G.
    pub const CODE32: u32 = 0xC09B;
    /// 64-bit code: present, S, execute/read accessed, L, G.
    pub const CODE64: u32 = 0xA09B;
    /// Flat data: present, S, read/write accessed, D/B, G.
    pub const DATA32: u32 = 0xC093;
    /// Real-mode code (16-bit, byte granular).
    pub const CODE16: u32 = 0x009B;
    /// Real-mode data.
    pub const DATA16: u32 = 0x0093;
    /// Busy 32/64-bit TSS, present.
    pub const TSS_BUSY: u32 = 0x008B;
    /// LDTR unusable (bit 16).
    pub const UNUSABLE: u32 = 0x1_0000;
}

/// Physical addresses of the pages a vCPU's VMCS points at.
#[derive(Debug, Clone, Copy)]
pub struct VcpuPages {
    /// I/O bitmap A and B (two consecutive frames).
    pub io_bitmap: u64,
    /// MSR bitmap.
    pub msr_bitmap: u64,
    /// Virtual-APIC page.
    pub virtual_apic: u64,
    /// APIC-access page (shared by all vCPUs of a domain).
    pub apic_access: u64,
    /// EPT pointer.
    pub eptp: u64,
}

/// The controls actually programmed, for the exit handlers to consult.
#[derive(Debug, Clone, Copy, Default)]
pub struct Controls {
    pub pin: u32,
    pub proc: u32,
    pub proc2: u32,
    pub exit: u32,
    pub entry: u32,
}

/// Fills the control and host-state areas of the current VMCS.
pub fn controls_and_host(
    msrs: &VmxMsrs,
    pages: &VcpuPages,
    vpid: u16,
    host_rip: u64,
) -> Result<Controls, &'static str> {
    let (pin, miss_pin) = adjust(
        PIN_EXTERNAL_INTERRUPT_EXITING | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPTION_TIMER,
        msrs.pinbased,
    );
    let (proc, miss_proc) = adjust(
        PROC_HLT_EXITING
            | PROC_USE_TPR_SHADOW
            | PROC_USE_IO_BITMAPS
            | PROC_USE_MSR_BITMAPS
            | PROC_SECONDARY,
        msrs.procbased,
    );
    let (proc2, _) = adjust(
        PROC2_VIRTUALIZE_APIC_ACCESSES
            | PROC2_EPT
            | PROC2_RDTSCP
            | PROC2_VPID
            | PROC2_UNRESTRICTED_GUEST
            | PROC2_APIC_REGISTER_VIRTUALIZATION
            | PROC2_VIRTUAL_INTERRUPT_DELIVERY
            | PROC2_INVPCID,
        msrs.procbased2,
    );
    let (exit, miss_exit) = adjust(
        EXIT_HOST_64BIT
            | EXIT_ACK_INTERRUPT
            | EXIT_SAVE_PAT
            | EXIT_LOAD_PAT
            | EXIT_SAVE_EFER
            | EXIT_LOAD_EFER,
        msrs.exit,
    );
    let (entry, miss_entry) = adjust(ENTRY_LOAD_PAT | ENTRY_LOAD_EFER, msrs.entry);
    if miss_proc & (PROC_USE_IO_BITMAPS | PROC_USE_MSR_BITMAPS | PROC_SECONDARY | PROC_HLT_EXITING)
        != 0
    {
        return Err("required primary processor-based controls missing");
    }
    if proc2 & (PROC2_EPT | PROC2_UNRESTRICTED_GUEST) != PROC2_EPT | PROC2_UNRESTRICTED_GUEST {
        return Err("EPT or unrestricted guest missing");
    }
    if miss_pin & PIN_EXTERNAL_INTERRUPT_EXITING != 0
        || miss_exit & (EXIT_HOST_64BIT | EXIT_ACK_INTERRUPT) != 0
    {
        return Err("required pin-based or exit controls missing");
    }
    if miss_entry & ENTRY_LOAD_EFER != 0 || miss_exit & (EXIT_LOAD_EFER | EXIT_SAVE_EFER) != 0 {
        return Err("EFER load/save controls missing");
    }
    // Virtual-interrupt delivery needs external-interrupt exiting (set) and
    // TPR shadow; APIC-register virtualization needs the APIC-access page.
    let mut proc2 = proc2;
    if proc & PROC_USE_TPR_SHADOW == 0 {
        proc2 &= !(PROC2_VIRTUAL_INTERRUPT_DELIVERY
            | PROC2_APIC_REGISTER_VIRTUALIZATION
            | PROC2_VIRTUALIZE_X2APIC);
    }
    // Virtual interrupts are held back while the guest cannot take them, and
    // an interrupt-window exit says when it can (vcpu::vid_guard).
    if proc2 & PROC2_VIRTUAL_INTERRUPT_DELIVERY != 0
        && (msrs.procbased >> 32) as u32 & PROC_INTERRUPT_WINDOW_EXITING == 0
    {
        return Err("interrupt-window exiting missing");
    }
    let c = Controls {
        pin,
        proc,
        proc2,
        exit,
        entry,
    };
    write(F32::PinBasedControls, u64::from(pin));
    write(F32::ProcBasedControls, u64::from(proc));
    write(F32::SecondaryProcBasedControls, u64::from(proc2));
    write(F32::ExitControls, u64::from(exit));
    write(F32::EntryControls, u64::from(entry));
    write(F32::ExceptionBitmap, 0);
    write(F32::PageFaultErrorCodeMask, 0);
    write(F32::PageFaultErrorCodeMatch, 0);
    write(F32::Cr3TargetCount, 0);
    write(F32::ExitMsrStoreCount, 0);
    write(F32::ExitMsrLoadCount, 0);
    write(F32::EntryMsrLoadCount, 0);
    write(F32::EntryInterruptionInfo, 0);
    write(F64::IoBitmapA, pages.io_bitmap);
    write(F64::IoBitmapB, pages.io_bitmap + 4096);
    write(F64::MsrBitmap, pages.msr_bitmap);
    write(F64::TscOffset, 0);
    write(F64::EptPointer, pages.eptp);
    if proc2 & PROC2_VPID != 0 {
        write(F16::Vpid, u64::from(vpid));
    }
    if proc & PROC_USE_TPR_SHADOW != 0 {
        write(F64::VirtualApicAddr, pages.virtual_apic);
        write(F32::TprThreshold, 0);
    }
    if proc2 & PROC2_VIRTUALIZE_APIC_ACCESSES != 0 {
        write(F64::ApicAccessAddr, pages.apic_access);
    }
    if proc2 & PROC2_VIRTUAL_INTERRUPT_DELIVERY != 0 {
        for f in [
            F64::EoiExitBitmap0,
            F64::EoiExitBitmap1,
            F64::EoiExitBitmap2,
            F64::EoiExitBitmap3,
        ] {
            write(f, 0);
        }
        write(F16::GuestInterruptStatus, 0);
    }
    write(F64::GuestVmcsLinkPointer, u64::MAX);

    // Host state: what the CPU loads at every VM exit (SDM §28.5).
    write(FN::HostCr0, cpu::read_cr0());
    write(FN::HostCr3, cpu::read_cr3());
    write(FN::HostCr4, cpu::read_cr4());
    write(F16::HostCsSelector, u64::from(KERNEL_CS));
    for f in [
        F16::HostSsSelector,
        F16::HostDsSelector,
        F16::HostEsSelector,
    ] {
        write(f, u64::from(KERNEL_DS));
    }
    write(F16::HostFsSelector, 0);
    write(F16::HostGsSelector, 0);
    write(F16::HostTrSelector, u64::from(TSS_SEL));
    write(FN::HostFsBase, 0);
    // SAFETY: IA32_EFER and IA32_PAT exist on every x86_64 CPU with VMX.
    let (efer, pat) = unsafe { (rdmsr(IA32_EFER), rdmsr(IA32_PAT)) };
    host_cpu_state();
    write(F32::HostIa32SysenterCs, 0);
    write(FN::HostIa32SysenterEsp, 0);
    write(FN::HostIa32SysenterEip, 0);
    write(F64::HostIa32Efer, efer);
    write(F64::HostIa32Pat, pat);
    write(FN::HostRip, host_rip);
    Ok(c)
}

/// The host state that differs between physical CPUs (SDM §28.5: GS base,
/// TR base, GDTR and IDTR bases), written into the current VMCS for the
/// running CPU: when a VMCS is created, and when a vCPU moves here from
/// another CPU.
pub fn host_cpu_state() {
    // SAFETY: IA32_GS_BASE exists on every x86_64 CPU with VMX.
    let gs_base = unsafe { rdmsr(IA32_GS_BASE) };
    write(FN::HostGsBase, gs_base);
    write(
        FN::HostTrBase,
        percpu::current().tss_base.load(Ordering::Relaxed),
    );
    let (gdt_base, idt_base) = gdt::descriptor_table_bases();
    write(FN::HostGdtrBase, gdt_base);
    write(FN::HostIdtrBase, idt_base);
}

/// CR0 bits VMX requires to stay 1 in non-root operation, less PE and PG
/// which unrestricted guest lets the guest clear (SDM Vol.3D A.7).
pub fn cr0_fixed1_bits() -> u64 {
    // SAFETY: the VMX fixed-bit MSRs exist when VMX does.
    let f0 = unsafe { rdmsr(crate::arch::x86_64::cpu::IA32_VMX_CR0_FIXED0) };
    f0 & !((1 << 0) | (1 << 31))
}

/// CR4 bits VMX requires to stay 1 (VMXE), SDM Vol.3D A.8.
pub fn cr4_fixed1_bits() -> u64 {
    // SAFETY: as above.
    unsafe { rdmsr(crate::arch::x86_64::cpu::IA32_VMX_CR4_FIXED0) }
}

/// A guest segment register.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    pub limit: u32,
    pub access: u32,
}

/// The architectural state a vCPU starts in (PVH 32-bit entry, real mode
/// for a SIPI, or 64-bit for the Linux 64-bit boot protocol).
#[derive(Debug, Clone, Copy)]
pub struct EntryState {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cs: Segment,
    pub data: Segment,
    pub gdtr: (u64, u32),
    pub idtr: (u64, u32),
}

impl EntryState {
    /// 32-bit protected mode, paging off, flat segments (PVH entry, Xen's
    /// docs/misc/pvh.pandoc): the caller puts the start_info address in RBX.
    pub fn protected32(rip: u64) -> Self {
        Self {
            cr0: 1 | (1 << 4), // PE, ET
            cr3: 0,
            cr4: 0,
            efer: 0,
            rip,
            rsp: 0,
            rflags: 2,
            cs: Segment {
                selector: 0x10,
                base: 0,
                limit: 0xFFFF_FFFF,
                access: ar::CODE32,
            },
            data: Segment {
                selector: 0x18,
                base: 0,
                limit: 0xFFFF_FFFF,
                access: ar::DATA32,
            },
            gdtr: (0, 0xFFFF),
            idtr: (0, 0xFFFF),
        }
    }

    /// Real mode at `vector << 12` as after INIT and a start-up IPI (SDM
    /// §9.4.4, Table 10-1 "IA-32 and Intel 64 Processor States Following
    /// Power-up, Reset, or INIT").
    pub fn after_sipi(vector: u8) -> Self {
        let base = u64::from(vector) << 12;
        Self {
            cr0: 1 << 4 | 1 << 29 | 1 << 30, // ET, NW, CD
            cr3: 0,
            cr4: 0,
            efer: 0,
            rip: 0,
            rsp: 0,
            rflags: 2,
            cs: Segment {
                selector: (base >> 4) as u16,
                base,
                limit: 0xFFFF,
                access: ar::CODE16,
            },
            data: Segment {
                selector: 0,
                base: 0,
                limit: 0xFFFF,
                access: ar::DATA16,
            },
            gdtr: (0, 0xFFFF),
            idtr: (0, 0xFFFF),
        }
    }
}

/// Writes the guest-state area for `s`. CR0/CR4 bits the guest must not see
/// or change (NE, VMXE) are owned by the hypervisor through the guest/host
/// masks and read shadows.
pub fn guest_state(s: &EntryState) {
    let cr0_fixed = cr0_fixed1_bits();
    let cr4_fixed = cr4_fixed1_bits();
    // Real mode with CD/NW set must keep NW and CD consistent; VMX requires
    // only the fixed bits (NE) on top of what the guest asked for.
    write(FN::GuestCr0, (s.cr0 | cr0_fixed) & !((1 << 29) | (1 << 30)));
    write(FN::Cr0GuestHostMask, cr0_fixed | (1 << 29) | (1 << 30));
    write(FN::Cr0ReadShadow, s.cr0);
    write(FN::GuestCr4, s.cr4 | cr4_fixed);
    write(FN::Cr4GuestHostMask, cr4_fixed);
    write(FN::Cr4ReadShadow, s.cr4);
    write(FN::GuestCr3, s.cr3);
    write(FN::GuestDr7, 0x400);
    write(FN::GuestRsp, s.rsp);
    write(FN::GuestRip, s.rip);
    write(FN::GuestRflags, s.rflags);
    write(F64::GuestIa32Efer, s.efer);
    write(F64::GuestIa32Pat, PAT_POWER_ON);
    write(F64::GuestIa32Debugctl, 0);
    write(F16::GuestCsSelector, u64::from(s.cs.selector));
    write(FN::GuestCsBase, s.cs.base);
    write(F32::GuestCsLimit, u64::from(s.cs.limit));
    write(F32::GuestCsAccessRights, u64::from(s.cs.access));
    let data = [
        (
            F16::GuestDsSelector,
            FN::GuestDsBase,
            F32::GuestDsLimit,
            F32::GuestDsAccessRights,
        ),
        (
            F16::GuestEsSelector,
            FN::GuestEsBase,
            F32::GuestEsLimit,
            F32::GuestEsAccessRights,
        ),
        (
            F16::GuestSsSelector,
            FN::GuestSsBase,
            F32::GuestSsLimit,
            F32::GuestSsAccessRights,
        ),
        (
            F16::GuestFsSelector,
            FN::GuestFsBase,
            F32::GuestFsLimit,
            F32::GuestFsAccessRights,
        ),
        (
            F16::GuestGsSelector,
            FN::GuestGsBase,
            F32::GuestGsLimit,
            F32::GuestGsAccessRights,
        ),
    ];
    for (sel, base, limit, access) in data {
        write(sel, u64::from(s.data.selector));
        write(base, s.data.base);
        write(limit, u64::from(s.data.limit));
        write(access, u64::from(s.data.access));
    }
    write(F16::GuestTrSelector, 0);
    write(FN::GuestTrBase, 0);
    write(F32::GuestTrLimit, 0xFFFF);
    write(F32::GuestTrAccessRights, u64::from(ar::TSS_BUSY));
    write(F16::GuestLdtrSelector, 0);
    write(FN::GuestLdtrBase, 0);
    write(F32::GuestLdtrLimit, 0xFFFF);
    write(F32::GuestLdtrAccessRights, u64::from(ar::UNUSABLE));
    write(FN::GuestGdtrBase, s.gdtr.0);
    write(F32::GuestGdtrLimit, u64::from(s.gdtr.1));
    write(FN::GuestIdtrBase, s.idtr.0);
    write(F32::GuestIdtrLimit, u64::from(s.idtr.1));
    write(F32::GuestInterruptibilityState, 0);
    write(F32::GuestActivityState, 0);
    write(FN::GuestPendingDebugExceptions, 0);
    write(F32::GuestIa32SysenterCs, 0);
    write(FN::GuestIa32SysenterEsp, 0);
    write(FN::GuestIa32SysenterEip, 0);
    let entry = crate::arch::x86_64::vmcs::read(F32::EntryControls) as u32;
    let long = s.efer & (1 << 10) != 0;
    let entry = if long {
        entry | ENTRY_IA32E_GUEST
    } else {
        entry & !ENTRY_IA32E_GUEST
    };
    write(F32::EntryControls, u64::from(entry));
}
