//! VM-exit handling for the VT-x backend (exit reasons: SDM Vol.3D Appendix C;
//! qualifications: SDM Vol.3C §28.2.1).

use core::arch::asm;
use core::sync::atomic::Ordering;

use super::{StopReason, Vcpu};
use crate::arch::x86_64::port::{inb, inl, inw, outb, outl, outw};
use crate::arch::x86_64::vmcs::{read, write};
use crate::arch::x86_64::{cpu, idt, lapic, percpu, serial};
use crate::vcpu::debug_keys::{DebugKey, HELP};
use crate::logger;
use crate::vcpu::cpuid::{CpuidContext, guest_cpuid};
use crate::vlapic::{Action, ApicFault, DeliveryMode, Shorthand};
use crate::vmx::exit::ExitReason as R;
use crate::vmx::fields::{Field32 as F32, Field64 as F64, FieldNat as FN};


const CR0_PG: u64 = 1 << 31;
const CR0_TS: u64 = 1 << 3;
const CR4_VMXE: u64 = 1 << 13;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// Handles the exit that just happened; `Err` stops the vCPU.
/// `raw` is the VMCS exit-reason field.
pub fn handle(v: &mut Vcpu, raw: u32) -> Result<(), StopReason> {
    if raw & (1 << 31) != 0 {
        log::error!(
            "dom0 vCPU{}: VM entry failed, exit reason {} (33 = invalid guest state, 34 = MSR loading, 41 = machine check), qualification {:#x}",
            v.index,
            raw & 0xFFFF,
            read(FN::ExitQualification)
        );
        dump_guest_state(v);
        return Err(StopReason::Crash);
    }
    let r = raw & 0xFFFF;
    let result = match R::from_basic(r as u16) {
        Some(R::ExceptionOrNmi) => exception_or_nmi(v),
        Some(R::ExternalInterrupt) => {
            external_interrupt(read(F32::ExitInterruptionInfo) as u32);
            Ok(())
        }
        Some(R::TripleFault) => {
            log::error!("dom0 vCPU{}: triple fault", v.index);
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
        Some(R::InitSignal | R::StartupIpi) => Ok(()), // physical signals: not expected while running
        Some(R::InterruptWindow | R::TprBelowThreshold | R::PreemptionTimerExpired) => Ok(()),
        Some(R::Cpuid) => {
            cpuid(v);
            advance(v);
            Ok(())
        }
        Some(R::Hlt) => {
            advance(v);
            block(v);
            Ok(())
        }
        Some(R::Invd | R::Wbinvd | R::Pause | R::Mwait | R::Monitor) => {
            advance(v);
            Ok(())
        }
        Some(R::Vmcall) => {
            if super::hypercalls::vmcall(v) {
                advance(v);
            } else {
                inject_exception(6, None);
            }
            Ok(())
        }
        Some(
            R::Getsec
            | R::Vmclear
            | R::Vmlaunch
            | R::Vmptrld
            | R::Vmptrst
            | R::Vmread
            | R::Vmresume
            | R::Vmwrite
            | R::Vmxoff
            | R::Vmxon
            | R::Invept
            | R::Invvpid,
        ) => {
            // No nested VMX: #UD as on a CPU without it.
            inject_exception(6, None);
            Ok(())
        }
        Some(R::ControlRegisterAccess) => cr_access(v),
        Some(R::IoInstruction) => io(v),
        Some(R::Rdmsr) => rdmsr(v),
        Some(R::Wrmsr) => wrmsr(v),
        Some(R::Xsetbv) => {
            xsetbv(v);
            Ok(())
        }
        Some(R::VirtualizedEoi) => {
            let vector = (read(FN::ExitQualification) & 0xFF) as u8;
            v.sync_vlapic_from_page();
            let actions = v.vlapic.virtual_eoi(vector);
            if v.domain.is_device_vector(vector) {
                lapic::eoi();
            }
            process_actions(v, actions);
            v.sync_vlapic_to_page();
            Ok(())
        }
        Some(R::ApicWrite) => {
            let offset = (read(FN::ExitQualification) & 0xFFF) as u32;
            let now = cpu::rdtsc();
            let actions = super::apic_page::write_exit(v.vapic_page, &mut v.vlapic, offset, now);
            process_actions(v, actions);
            v.sync_vlapic_to_page();
            if offset == 0xD0 || offset == 0xE0 {
                // dom0 routes device interrupts with this addressing.
                lapic::set_logical_destination(v.vlapic.mmio_read(0xD0, now), v.vlapic.mmio_read(0xE0, now));
            }
            Ok(())
        }
        Some(R::ApicAccess) => {
            let q = read(FN::ExitQualification);
            log::error!(
                "dom0 vCPU{}: APIC access at offset {:#x} (type {}) needs instruction emulation, which is not implemented",
                v.index,
                q & 0xFFF,
                (q >> 12) & 0xF
            );
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
        Some(R::EptViolation | R::EptMisconfiguration) => ept_fault(v, r == R::EptViolation as u32),
        other => {
            let name = other.map_or("unknown", |x| x.name());
            log::error!("dom0 vCPU{}: unhandled VM exit reason {r} ({name})", v.index);
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
    };
    if result.is_ok() {
        match v.domain.stop.load(Ordering::Acquire) {
            0 => {}
            1 => return Err(StopReason::PowerOff),
            2 => return Err(StopReason::Reboot),
            _ => return Err(StopReason::Crash),
        }
    }
    result
}

/// An EPT violation or misconfiguration: a write to hidden memory is let
/// through into the scratch page; anything else stops dom0.
fn ept_fault(v: &mut Vcpu, violation: bool) -> Result<(), StopReason> {
    use super::hidden::{Outcome, write_fault};
    let gpa = read(F64::GuestPhysicalAddress);
    let q = read(FN::ExitQualification);
    // Bit 1: the access was a write (SDM Vol. 3C Table 28-7).
    let outcome = if violation && q & 2 != 0 { write_fault(v, gpa) } else { Outcome::NotHidden };
    match outcome {
        Outcome::Handled => return Ok(()),
        Outcome::TooManyPages => log::error!("dom0 vCPU{}: one instruction wrote too many hidden pages", v.index),
        Outcome::NotHidden => {}
    }
    log::error!(
        "dom0 vCPU{}: EPT {} at guest-physical {gpa:#x} (qualification {q:#x}, RIP {:#x})",
        v.index,
        if violation { "violation" } else { "misconfiguration" },
        read(FN::GuestRip)
    );
    dump_guest_state(v);
    Err(StopReason::Crash)
}

/// Moves RIP past the exiting instruction and drops STI/MOV-SS blocking.
fn advance(_v: &mut Vcpu) {
    let len = read(F32::ExitInstructionLength);
    write(FN::GuestRip, read(FN::GuestRip).wrapping_add(len));
    let intr = read(F32::GuestInterruptibilityState);
    if intr & 3 != 0 {
        write(F32::GuestInterruptibilityState, intr & !3);
    }
}

/// Queues a hardware exception for the next entry (SDM Table 25-17).
pub(super) fn inject_exception(vector: u8, error: Option<u32>) {
    let mut info = u64::from(vector) | (3 << 8) | (1 << 31);
    if let Some(e) = error {
        info |= 1 << 11;
        write(F32::EntryExceptionErrorCode, u64::from(e));
    }
    write(F32::EntryInterruptionInfo, info);
}

fn exception_or_nmi(v: &mut Vcpu) -> Result<(), StopReason> {
    let info = read(F32::ExitInterruptionInfo) as u32;
    if (info >> 8) & 7 == 2 {
        // A physical NMI while the guest ran: dom0 owns the platform, give it
        // the NMI (SDM Table 25-17 type 2).
        write(F32::EntryInterruptionInfo, u64::from(2 | (2 << 8) | (1u32 << 31)));
        return Ok(());
    }
    if info & 0xFF == 1 {
        // #DB is intercepted only while a hidden-memory write is stepped.
        if !super::hidden::debug_trap(v) {
            inject_exception(1, None);
        }
        return Ok(());
    }
    log::error!("dom0 vCPU{}: unexpected exception exit, info {info:#x}", v.index);
    dump_guest_state(v);
    Err(StopReason::Crash)
}

/// A physical interrupt arrived while a guest ran (acknowledged on exit,
/// SDM §25.7.1): hypervisor vectors are handled here, device vectors are
/// queued for dom0 without EOI.
fn external_interrupt(info: u32) {
    if info & (1 << 31) == 0 {
        return;
    }
    let vector = (info & 0xFF) as u8;
    match vector {
        idt::VECTOR_TIMER => {
            idt::TIMER_TICKS.fetch_add(1, Ordering::Relaxed);
            lapic::eoi();
        }
        idt::VECTOR_IPI => lapic::eoi(),
        idt::VECTOR_SPURIOUS => {}
        v if v >= 0xF0 => lapic::eoi(),
        v => percpu::current().pending_device_vectors.set(v),
    }
}

fn cpuid(v: &mut Vcpu) {
    let leaf = v.regs.rax as u32;
    let sub = v.regs.rcx as u32;
    let host = cpu::cpuid(leaf, sub);
    let ctx = CpuidContext { tsc_khz: logger::tsc_khz(), apic_khz: v.domain.apic_khz, apic_id: v.vlapic.id() };
    let mut r = guest_cpuid(leaf, sub, host, &ctx);
    if leaf == 1 {
        r[2] |= 1 << 24; // TSC-deadline timer: the vLAPIC implements it
    }
    v.regs.rax = u64::from(r[0]);
    v.regs.rbx = u64::from(r[1]);
    v.regs.rcx = u64::from(r[2]);
    v.regs.rdx = u64::from(r[3]);
}

/// HLT: wait on this physical CPU until the vCPU has something to do.
fn block(v: &mut Vcpu) {
    loop {
        v.sync_vlapic_from_page();
        let pc = percpu::current();
        let now = cpu::rdtsc();
        let timer_due = v.vlapic.next_timer_deadline().is_some_and(|d| d <= now);
        if v.vlapic.highest_pending().is_some()
            || !pc.pending_device_vectors.is_empty()
            || !v.domain.mailbox(v.index).vectors.is_empty()
            || timer_due
            || v.domain.stop.load(Ordering::Acquire) != 0
        {
            return;
        }
        // Wake at the vLAPIC deadline through the physical timer.
        if let Some(d) = v.vlapic.next_timer_deadline() {
            let khz = logger::tsc_khz().max(1);
            let ticks = d - now;
            let apic_khz = v.domain.apic_khz.max(1);
            let count = (u128::from(ticks) * u128::from(apic_khz) / u128::from(khz)).clamp(1, u128::from(u32::MAX)) as u32;
            lapic::start_timer(idt::VECTOR_TIMER, lapic::TimerMode::OneShot, count);
        }
        // sti; hlt as one sequence: the interrupt shadow of STI covers HLT.
        // SAFETY: the IDT handles every vector; device vectors are queued.
        unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    }
}

fn cr_access(v: &mut Vcpu) -> Result<(), StopReason> {
    let q = read(FN::ExitQualification);
    let cr = (q & 0xF) as u8;
    let kind = (q >> 4) & 3;
    let gpr = ((q >> 8) & 0xF) as u8;
    match (kind, cr) {
        (0, 0) => set_cr0(v, v.regs.get(gpr)),
        (0, 4) => {
            let val = v.regs.get(gpr);
            if val & CR4_VMXE != 0 {
                inject_exception(13, Some(0));
                return Ok(());
            }
            write(FN::GuestCr4, val | super::setup::cr4_fixed1_bits());
            write(FN::Cr4ReadShadow, val);
        }
        (0, 3) => write(FN::GuestCr3, v.regs.get(gpr)),
        (1, 3) => {
            let val = read(FN::GuestCr3);
            v.regs.set(gpr, val);
        }
        (2, _) => {
            // CLTS
            write(FN::GuestCr0, read(FN::GuestCr0) & !CR0_TS);
            write(FN::Cr0ReadShadow, read(FN::Cr0ReadShadow) & !CR0_TS);
        }
        (3, _) => {
            // LMSW: bits 3:0 of the source (PE cannot be cleared).
            let src = (q >> 16) & 0xF;
            let shadow = read(FN::Cr0ReadShadow);
            let new = (shadow & !0xE) | (src & 0xF) | (shadow & 1);
            set_cr0(v, new);
        }
        _ => {
            log::error!("dom0 vCPU{}: unexpected CR access {q:#x}", v.index);
            return Err(StopReason::Crash);
        }
    }
    advance(v);
    Ok(())
}

/// A guest write to CR0: the guest sees `val`, the CPU runs with the VMX
/// fixed bits added; turning paging on or off with EFER.LME set switches
/// IA-32e mode (SDM Vol.3A §10.8.5), which we mirror in EFER.LMA and the
/// "IA-32e mode guest" entry control.
fn set_cr0(_v: &mut Vcpu, val: u64) {
    let fixed = super::setup::cr0_fixed1_bits();
    write(FN::GuestCr0, (val | fixed) & !((1 << 29) | (1 << 30)));
    write(FN::Cr0ReadShadow, val);
    let efer = read(F64::GuestIa32Efer);
    let entry = read(F32::EntryControls) as u32;
    if val & CR0_PG != 0 && efer & EFER_LME != 0 {
        write(F64::GuestIa32Efer, efer | EFER_LMA);
        write(F32::EntryControls, u64::from(entry | super::setup::ENTRY_IA32E_GUEST));
    } else if val & CR0_PG == 0 && efer & EFER_LMA != 0 {
        write(F64::GuestIa32Efer, efer & !EFER_LMA);
        write(F32::EntryControls, u64::from(entry & !super::setup::ENTRY_IA32E_GUEST));
    }
}

fn io(v: &mut Vcpu) -> Result<(), StopReason> {
    let q = read(FN::ExitQualification);
    let size = (q & 7) + 1;
    let input = q & (1 << 3) != 0;
    let string = q & (1 << 4) != 0;
    let port = (q >> 16) as u16;
    if string {
        log::warn!("dom0 vCPU{}: string I/O on trapped port {port:#x} ignored", v.index);
        advance(v);
        return Ok(());
    }
    if input {
        let val = match size {
            1 => u64::from(inb(port)),
            2 => u64::from(inw(port)),
            _ => u64::from(inl(port)),
        };
        let mask = if size == 4 { 0xFFFF_FFFF } else { (1u64 << (size * 8)) - 1 };
        v.regs.rax = (v.regs.rax & !mask) | (val & mask);
        if port == serial::COM1 && size == 1 && inb(serial::COM1 + 3) & 0x80 == 0 {
            // The receive buffer (LCR.DLAB = 0): dom0 read a typed byte.
            debug_key(v, val as u8);
        }
        advance(v);
        return Ok(());
    }
    let val = v.regs.rax;
    // dom0 powering off or resetting the machine goes through us, so every
    // CPU leaves VMX operation and the statistics are printed.
    if port == v.domain.pm1a_cnt && size >= 2 && val & (1 << 13) != 0 {
        let typ = ((val >> 10) & 7) as u8;
        if Some(typ) == v.domain.s5_type {
            log::info!("dom0 requested ACPI S5 (power off)");
            v.domain.request_stop(1);
            return Err(StopReason::PowerOff);
        }
    }
    if (port == 0xCF9 && val & 0x4 != 0) || (port == 0x64 && val & 0xFF == 0xFE) {
        log::info!("dom0 requested a reset");
        v.domain.request_stop(2);
        return Err(StopReason::Reboot);
    }
    match size {
        1 => outb(port, val as u8),
        2 => outw(port, val as u16),
        _ => outl(port, val as u32),
    }
    advance(v);
    Ok(())
}

/// Acts on a debug key (see [`crate::vcpu::debug_keys`]).
fn debug_key(v: &Vcpu, byte: u8) {
    let key = v.domain.keys.lock().feed(byte);
    match key {
        None => {}
        Some(DebugKey::ExitStats) => v.domain.log_exit_stats("debug key 'e': VM exit statistics so far"),
        Some(DebugKey::Help) => {
            log::info!("debug keys (after three Ctrl-A):");
            for (k, what) in HELP {
                log::info!("  {k}: {what}");
            }
        }
        Some(DebugKey::Unknown(k)) => log::info!("debug key {k:#04x} unknown ('h' lists the keys)"),
    }
}

const MSR_APIC_BASE: u32 = 0x1B;
const MSR_FEATURE_CONTROL: u32 = 0x3A;
const MSR_TSC_DEADLINE: u32 = 0x6E0;
const MSR_EFER: u32 = 0xC000_0080;

fn rdmsr(v: &mut Vcpu) -> Result<(), StopReason> {
    let msr = v.regs.rcx as u32;
    let value = match msr {
        MSR_APIC_BASE => Some(v.vlapic.apic_base()),
        MSR_FEATURE_CONTROL => Some(1), // locked, VMX off: no nested virtualization
        MSR_TSC_DEADLINE => Some(v.vlapic.tsc_deadline_read()),
        0x800..=0x8FF => {
            v.sync_vlapic_from_page();
            v.vlapic.msr_read(msr, cpu::rdtsc()).ok()
        }
        0x480..=0x491 => None,
        _ => {
            // SAFETY-relevant: only MSRs the bitmap traps reach here; reading
            // one we do not know would risk a #GP in the hypervisor.
            log::warn!("dom0 vCPU{}: RDMSR {msr:#x} refused (#GP)", v.index);
            None
        }
    };
    match value {
        Some(val) => {
            v.regs.rax = val & 0xFFFF_FFFF;
            v.regs.rdx = val >> 32;
            advance(v);
        }
        None => inject_exception(13, Some(0)),
    }
    Ok(())
}

fn wrmsr(v: &mut Vcpu) -> Result<(), StopReason> {
    let msr = v.regs.rcx as u32;
    let value = (v.regs.rdx << 32) | (v.regs.rax & 0xFFFF_FFFF);
    let now = cpu::rdtsc();
    let result: Result<(), ApicFault> = match msr {
        MSR_APIC_BASE => {
            v.sync_vlapic_from_page();
            let r = v.vlapic.apic_base_write(value).map(|a| process_actions(v, a));
            v.sync_vlapic_to_page();
            r
        }
        MSR_TSC_DEADLINE => {
            // A deadline already past fires at once into IRR: like every
            // change to the model's registers, that must start from the page
            // (the CPU may have delivered or completed interrupts there) and
            // be written back before the next entry, or the next import
            // loses it. A future deadline only arms the timer.
            let fires_now = value != 0 && value <= now;
            if fires_now {
                v.sync_vlapic_from_page();
            }
            let a = v.vlapic.tsc_deadline_write(value, now);
            process_actions(v, a);
            if fires_now {
                v.sync_vlapic_to_page();
            }
            Ok(())
        }
        0x800..=0x8FF => {
            v.sync_vlapic_from_page();
            let r = v.vlapic.msr_write(msr, value, now).map(|a| process_actions(v, a));
            v.sync_vlapic_to_page();
            r
        }
        MSR_EFER => {
            if value & !(1 | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15)) != 0 {
                Err(ApicFault::Gp)
            } else {
                let lma = read(F64::GuestIa32Efer) & EFER_LMA;
                write(F64::GuestIa32Efer, (value & !EFER_LMA) | lma);
                Ok(())
            }
        }
        // MTRRs and microcode updates: the hypervisor owns the physical
        // memory types and the CPU; ignored, as Xen does for its guests.
        0x79 | 0x200..=0x21F | 0x250 | 0x258 | 0x259 | 0x268..=0x26F | 0x2FF => Ok(()),
        _ => Err(ApicFault::Gp),
    };
    match result {
        Ok(()) => advance(v),
        Err(_) => {
            log::debug!("dom0 vCPU{}: WRMSR {msr:#x} = {value:#x} refused (#GP)", v.index);
            inject_exception(13, Some(0));
        }
    }
    Ok(())
}

fn xsetbv(v: &mut Vcpu) {
    let index = v.regs.rcx as u32;
    let value = (v.regs.rdx << 32) | (v.regs.rax & 0xFFFF_FFFF);
    // Only XCR0, with x87 set and AVX only with SSE (SDM Vol.1 §13.3).
    let leaf = cpu::cpuid(0xD, 0);
    let host = u64::from(leaf[0]) | (u64::from(leaf[3]) << 32);
    let supported = host & crate::vcpu::cpuid::GUEST_XCR0_MASK;
    let valid = index == 0 && value & 1 != 0 && value & !supported == 0 && !(value & 4 != 0 && value & 2 == 0);
    if !valid || cpu::read_cr4() & (1 << 18) == 0 {
        inject_exception(13, Some(0));
        return;
    }
    // SAFETY: validated above against what CPUID says XCR0 supports; the
    // hypervisor itself uses no extended state, so changing XCR0 only
    // affects the guest.
    unsafe { asm!("xsetbv", in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nomem, nostack)) };
    advance(v);
}

/// Carries out what the vLAPIC asked for (IPIs, timer changes).
pub fn process_actions(v: &mut Vcpu, actions: crate::vlapic::Actions) {
    for a in actions.iter() {
        if let Action::SendIpi { dest, shorthand, mode, vector, .. } = a {
            for j in 0..v.domain.vcpus() {
                let is_self = j == v.index;
                let target = match shorthand {
                    Shorthand::SelfOnly => is_self,
                    Shorthand::AllIncludingSelf => true,
                    Shorthand::AllExcludingSelf => !is_self,
                    Shorthand::None => {
                        if is_self {
                            v.vlapic.is_ipi_target(&dest, shorthand, true)
                        } else {
                            v.domain.matches(j, &dest)
                        }
                    }
                };
                if !target {
                    continue;
                }
                deliver(v, j, mode, vector);
            }
        }
    }
}

fn deliver(v: &mut Vcpu, j: usize, mode: DeliveryMode, vector: u8) {
    let mb = v.domain.mailbox(j);
    match mode {
        DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
            if j == v.index {
                v.vlapic.accept_interrupt(vector, false);
                return;
            }
            mb.vectors.set(vector);
        }
        DeliveryMode::Init => mb.init.store(true, Ordering::Release),
        DeliveryMode::Startup(page) => mb.sipi.store(u32::from(page) + 1, Ordering::Release),
        _ => {
            log::debug!("dom0 vCPU{}: IPI delivery mode {mode:?} not supported, dropped", v.index);
            return;
        }
    }
    // Kick the target's physical CPU out of the guest or out of HLT.
    if j != v.index {
        lapic::send_fixed(v.domain.vcpu_apic_id(j), idt::VECTOR_IPI);
    }
}

/// Logs the guest state after a fatal exit.
pub fn dump_guest_state(v: &Vcpu) {
    let r = &v.regs;
    log::error!(
        "  RIP {:#x} RSP {:#x} RFLAGS {:#x} CS {:#x} CR0 {:#x} (shadow {:#x}) CR3 {:#x} CR4 {:#x} EFER {:#x}",
        read(FN::GuestRip),
        read(FN::GuestRsp),
        read(FN::GuestRflags),
        read(crate::vmx::fields::Field16::GuestCsSelector),
        read(FN::GuestCr0),
        read(FN::Cr0ReadShadow),
        read(FN::GuestCr3),
        read(FN::GuestCr4),
        read(F64::GuestIa32Efer)
    );
    log::error!(
        "  RAX {:#x} RBX {:#x} RCX {:#x} RDX {:#x} RSI {:#x} RDI {:#x} RBP {:#x}",
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp
    );
    log::error!(
        "  R8 {:#x} R9 {:#x} R10 {:#x} R11 {:#x} R12 {:#x} R13 {:#x} R14 {:#x} R15 {:#x}",
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15
    );
}
