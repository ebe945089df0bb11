//! VM-exit handling for the VT-x backend, written against the vendor-neutral
//! [`ExitEvent`]s that [`crate::vmx::exit::decode()`] makes of each exit
//! (reading the VMCS through [`CurrentVmcs`]). The handlers with no VT-x
//! in them (CPUID, XSETBV, CR access, RDMSR/WRMSR, HLT, NMI, VMCALL) are
//! [`crate::vcpu::exits`], over the `Vcpu`'s [`GuestCpu`] and
//! [`crate::vcpu::backend::ExitContext`] implementations
//! (`guest_cpu.rs`); what is left here is port I/O, nested-page faults,
//! physical interrupts, the APIC-virtualization exits, entry failures and
//! the state dumps.

use core::sync::atomic::Ordering;

use super::{StopReason, Vcpu};
use crate::arch::x86_64::port::{inb, inl, inw, outb, outl, outw};
use crate::arch::x86_64::vmcs::read;
use crate::arch::x86_64::{cpu, idt, lapic, percpu, serial};
use crate::logger;
use crate::vcpu::backend::{GuestCpu, vector};
use crate::vcpu::debug_keys::{DebugKey, HELP};
use crate::vcpu::exit_event::{ExitEvent, IoAccess};
use crate::vcpu::exits::{self, Fatal, advance, inject_gp};
use crate::vcpu::gpa_policy::{self, Access};
use crate::vcpu::io_policy::{self, Dom0Ports, OutAction};
use crate::vlapic::{Action, DeliveryMode, Shorthand};
use crate::vmx::exit::ExitFields;
use crate::vmx::fields::{Field32 as F32, Field64 as F64, FieldNat as FN};

/// The VM-exit information fields of the current VMCS (SDM Vol. 3C §25.9),
/// each read with a VMREAD only when the decoder asks for it: a VMREAD is
/// not free (under an emulator or a nested hypervisor it can be an exit of
/// its own).
struct CurrentVmcs;

impl ExitFields for CurrentVmcs {
    fn qualification(&self) -> u64 {
        read(FN::ExitQualification)
    }

    fn guest_physical(&self) -> u64 {
        read(F64::GuestPhysicalAddress)
    }

    fn interruption_info(&self) -> u32 {
        read(F32::ExitInterruptionInfo) as u32
    }

    fn idt_vectoring_info(&self) -> u32 {
        read(F32::IdtVectoringInfo) as u32
    }
}

/// Handles the exit that just happened (`raw`: the exit-reason field);
/// `Err` stops the vCPU.
pub fn handle(v: &mut Vcpu, raw: u32) -> Result<(), StopReason> {
    let event = crate::vmx::exit::decode(raw, &CurrentVmcs);
    if v.stepping
        && !matches!(
            event,
            ExitEvent::DebugTrap | ExitEvent::NestedPageFault { .. }
        )
    {
        super::hidden::check_abandoned(v);
    }
    let result = match event {
        ExitEvent::EntryFailed {
            reason,
            qualification,
        } => {
            log::error!(
                "{} vCPU{}: VM entry failed, exit reason {reason} (33 = invalid guest state, 34 = MSR loading, 41 = machine check), qualification {qualification:#x}",
                v.domain.label(),
                v.index
            );
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
        ExitEvent::Nmi => {
            exits::nmi(v);
            Ok(())
        }
        ExitEvent::DebugTrap => {
            // #DB is intercepted only while a hidden-memory write is stepped.
            if !super::hidden::debug_trap(v) {
                v.inject_exception(vector::DEBUG, None);
            }
            Ok(())
        }
        ExitEvent::Exception { vector } => {
            log::error!(
                "{} vCPU{}: unexpected exception {vector} exit",
                v.domain.label(),
                v.index
            );
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
        ExitEvent::ExternalInterrupt { vector } => {
            if let Some(vector) = vector {
                external_interrupt(vector);
            }
            Ok(())
        }
        ExitEvent::TripleFault => {
            log::error!("{} vCPU{}: triple fault", v.domain.label(), v.index);
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
        // Physical INIT/SIPI are not expected while a guest runs; the
        // window and timer exits only give the scheduler a look in.
        ExitEvent::InitOrSipi | ExitEvent::InterruptWindow | ExitEvent::TimerExpired => Ok(()),
        ExitEvent::Cpuid => {
            exits::cpuid::cpuid(v);
            Ok(())
        }
        ExitEvent::Hlt => {
            exits::hlt(v);
            Ok(())
        }
        ExitEvent::Skip => {
            advance(v);
            Ok(())
        }
        ExitEvent::Hypercall => {
            exits::hypercall(v);
            Ok(())
        }
        ExitEvent::Unsupported => {
            exits::inject_ud(v);
            Ok(())
        }
        ExitEvent::Cr(access) => exits::cr::cr_access(v, access).map_err(|Fatal| StopReason::Crash),
        ExitEvent::Io(access) => io(v, access),
        ExitEvent::Rdmsr => {
            exits::msr::rdmsr(v);
            Ok(())
        }
        ExitEvent::Wrmsr => {
            exits::msr::wrmsr(v);
            Ok(())
        }
        ExitEvent::Xsetbv => {
            exits::cpuid::xsetbv(v);
            Ok(())
        }
        ExitEvent::VirtualizedEoi { vector } => {
            v.sync_vlapic_from_page();
            let actions = v.vlapic.virtual_eoi(vector);
            if v.domain.is_device_vector(vector) {
                lapic::eoi();
            }
            process_actions(v, actions);
            v.sync_vlapic_to_page();
            Ok(())
        }
        ExitEvent::ApicWrite { offset } => {
            let now = cpu::rdtsc();
            let actions = super::apic_page::write_exit(v.vapic_page, &mut v.vlapic, offset, now);
            process_actions(v, actions);
            v.sync_vlapic_to_page();
            if v.domain.is_dom0() && (offset == 0xD0 || offset == 0xE0) {
                // dom0 routes device interrupts with this addressing.
                lapic::set_logical_destination(
                    v.vlapic.mmio_read(0xD0, now),
                    v.vlapic.mmio_read(0xE0, now),
                );
            }
            Ok(())
        }
        ExitEvent::ApicAccess { offset, kind } => {
            log::error!(
                "{} vCPU{}: APIC access at offset {offset:#x} (type {kind}) needs instruction emulation, which is not implemented",
                v.domain.label(),
                v.index
            );
            dump_guest_state(v);
            Err(StopReason::Crash)
        }
        ExitEvent::NestedPageFault {
            gpa,
            write,
            fetch,
            paging_structure,
            during_delivery,
        } => {
            let access = Access {
                fetch,
                paging_structure,
                during_delivery,
            };
            ept_fault(v, gpa, write, Some(access))
        }
        ExitEvent::NestedPageMisconfig { gpa } => ept_fault(v, gpa, false, None),
        ExitEvent::Unhandled { reason } => {
            let name =
                crate::vmx::exit::ExitReason::from_basic(reason).map_or("unknown", |x| x.name());
            log::error!(
                "{} vCPU{}: unhandled VM exit reason {reason} ({name})",
                v.domain.label(),
                v.index
            );
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

/// An EPT violation (`access` says how it was made) or misconfiguration
/// (`None`): a domU's data access is emulated (its I/O APIC, or unbacked
/// memory); a dom0 write to hidden memory is let through into the scratch
/// page; anything else stops the domain.
fn ept_fault(
    v: &mut Vcpu,
    gpa: u64,
    write: bool,
    access: Option<Access>,
) -> Result<(), StopReason> {
    use super::hidden::{Outcome, write_fault};
    let violation = access.is_some();
    if violation && !v.domain.is_dom0() && super::domu::populate_on_fault(&v.domain, gpa) {
        // The first touch of a piece of its RAM (see `domu::lazy_ram`).
        return Ok(());
    }
    let violation = access.is_some();
    if let Some(access) = access
        && !v.domain.is_dom0()
    {
        // The I/O APIC, or nothing at all (reads all-ones, writes dropped).
        let result = match gpa_policy::not_emulable(access) {
            Some(why) => Err(why),
            None => super::domu_mmio::emulate(v, gpa),
        };
        return result.map_err(|why| {
            log::error!(
                "{} vCPU{}: access to guest-physical {gpa:#x} (RIP {:#x}) not emulated: {why}; the domain is stopped",
                v.domain.label(),
                v.index,
                read(FN::GuestRip)
            );
            dump_guest_state(v);
            StopReason::Crash
        });
    }
    let outcome = if violation && write {
        write_fault(v, gpa)
    } else {
        Outcome::NotHidden
    };
    match outcome {
        Outcome::Handled => return Ok(()),
        Outcome::TooManyPages => log::error!(
            "{} vCPU{}: one instruction wrote too many hidden pages",
            v.domain.label(),
            v.index
        ),
        Outcome::NotHidden => {}
    }
    log::error!(
        "{} vCPU{}: EPT {} at guest-physical {gpa:#x} ({}, RIP {:#x})",
        v.domain.label(),
        v.index,
        if violation {
            "violation"
        } else {
            "misconfiguration"
        },
        if write { "write" } else { "read or fetch" },
        read(FN::GuestRip)
    );
    dump_guest_state(v);
    Err(StopReason::Crash)
}

/// A physical interrupt arrived while a guest ran (acknowledged on exit,
/// SDM §25.7.1): hypervisor vectors are handled here, device vectors are
/// queued for dom0 without EOI.
fn external_interrupt(vector: u8) {
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

fn dom0_ports(v: &Vcpu) -> Dom0Ports {
    Dom0Ports {
        pm1a_cnt: v.domain.pm1a_cnt,
        s5_type: v.domain.s5_type,
        console: serial::COM1,
    }
}

/// Port I/O on a trapped port: dom0's ports pass through to the hardware,
/// except for power-off and reset (which end dom0), the console's receive
/// buffer (watched for debug keys) and the PCI configuration ports (where
/// the notification device lives, `notify.rs`).
fn io(v: &mut Vcpu, a: IoAccess) -> Result<(), StopReason> {
    if !v.domain.is_dom0() {
        return domu_io(v, a);
    }
    if a.string {
        log::warn!(
            "{} vCPU{}: string I/O on trapped port {:#x} ignored",
            v.domain.label(),
            v.index,
            a.port
        );
        advance(v);
        return Ok(());
    }
    if let Some(val) = super::notify::dom0_config_io(a.port, a.size, a.input, v.regs.rax as u32) {
        if a.input {
            let mask = if a.size == 4 {
                0xFFFF_FFFF
            } else {
                (1u64 << (a.size * 8)) - 1
            };
            v.regs.rax = (v.regs.rax & !mask) | (u64::from(val) & mask);
        }
        advance(v);
        return Ok(());
    }
    let ports = dom0_ports(v);
    if a.input {
        let val = match a.size {
            1 => u64::from(inb(a.port)),
            2 => u64::from(inw(a.port)),
            _ => u64::from(inl(a.port)),
        };
        let mask = if a.size == 4 {
            0xFFFF_FFFF
        } else {
            (1u64 << (a.size * 8)) - 1
        };
        v.regs.rax = (v.regs.rax & !mask) | (val & mask);
        // The receive buffer only when LCR.DLAB = 0 (else: the divisor).
        if io_policy::is_console_receive(&ports, a.port, a.size) && inb(a.port + 3) & 0x80 == 0 {
            debug_key(v, val as u8);
        }
        advance(v);
        return Ok(());
    }
    let val = v.regs.rax;
    match io_policy::dom0_out(&ports, a.port, a.size, val) {
        OutAction::PowerOff => {
            log::info!("dom0 requested ACPI S5 (power off)");
            v.domain.request_stop(1);
            Err(StopReason::PowerOff)
        }
        OutAction::Reset => {
            log::info!("dom0 requested a reset");
            v.domain.request_stop(2);
            Err(StopReason::Reboot)
        }
        OutAction::Passthrough => {
            port_out(a.port, a.size, val);
            advance(v);
            Ok(())
        }
        OutAction::ConsoleData => {
            logger::between_lines(|| port_out(a.port, a.size, val));
            advance(v);
            Ok(())
        }
    }
}

/// An OUT of `size` bytes of `val` to `port` on the hardware.
fn port_out(port: u16, size: u8, val: u64) {
    match size {
        1 => outb(port, val as u8),
        2 => outw(port, val as u16),
        _ => outl(port, val as u32),
    }
}

/// Acts on a debug key (see [`crate::vcpu::debug_keys`]).
fn debug_key(v: &Vcpu, byte: u8) {
    let key = v.domain.keys.lock().feed(byte);
    match key {
        None => {}
        Some(DebugKey::ExitStats) => v
            .domain
            .log_exit_stats("debug key 'e': VM exit statistics so far"),
        Some(DebugKey::VcpuState) => {
            log::info!("debug key 'r': each vCPU prints its state at its next exit");
            v.domain.dump_requested.store(u64::MAX, Ordering::Release);
        }
        Some(DebugKey::Help) => {
            log::info!("debug keys (after three Ctrl-A):");
            for (k, what) in HELP {
                log::info!("  {k}: {what}");
            }
        }
        Some(DebugKey::Unknown(k)) => log::info!("debug key {k:#04x} unknown ('h' lists the keys)"),
    }
}

/// Port I/O from a domU: every port traps. COM1 is the domain's emulated
/// 16550 (its console); the ACPI PM1a block and the reset ports end the
/// domain as its own power-off or reboot; any other port reads as all-ones
/// and ignores writes, as an empty ISA bus does.
fn domu_io(v: &mut Vcpu, a: IoAccess) -> Result<(), StopReason> {
    use crate::domu::acpi_tables::{DEFAULT_PM1A_CNT_PORT, DEFAULT_PM1A_EVT_PORT, pm1_cnt};
    use crate::vdev::pm1_events::PM1_EVT_BYTES;
    let mask = if a.size >= 4 {
        0xFFFF_FFFF
    } else {
        (1u64 << (a.size * 8)) - 1
    };
    let uart = serial::COM1..serial::COM1 + 8;
    if a.string {
        // INS/OUTS on an emulated port: not emulated; the guest gets #GP.
        inject_gp(v);
        return Ok(());
    }
    if a.input {
        let val = if uart.contains(&a.port) && a.size == 1 {
            let offset = (a.port - serial::COM1) as u8;
            let byte = v
                .domain
                .domu
                .as_ref()
                .map_or(0xFF, |p| u64::from(p.uart.lock().read(offset)));
            let d = v.domain.clone();
            super::domu_irq::uart_line(Some(v), &d);
            byte
        } else if a.port == DEFAULT_PM1A_CNT_PORT {
            // SCI_EN: the platform is in ACPI mode from the start.
            u64::from(pm1_cnt::SCI_EN)
        } else if (DEFAULT_PM1A_EVT_PORT..DEFAULT_PM1A_EVT_PORT + PM1_EVT_BYTES).contains(&a.port) {
            // PM1a_STS, PM1a_EN.
            v.domain.domu.as_ref().map_or(mask, |p| {
                u64::from(p.pm1.lock().read(a.port - DEFAULT_PM1A_EVT_PORT, a.size))
            })
        } else {
            mask
        };
        v.regs.rax = (v.regs.rax & !mask) | (val & mask);
        advance(v);
        return Ok(());
    }
    let val = v.regs.rax & mask;
    if uart.contains(&a.port) && a.size == 1 {
        if let Some(p) = v.domain.domu.as_ref() {
            p.uart
                .lock()
                .write((a.port - serial::COM1) as u8, val as u8);
        }
        let d = v.domain.clone();
        super::domu_irq::uart_line(Some(v), &d);
        advance(v);
        return Ok(());
    }
    if (DEFAULT_PM1A_EVT_PORT..DEFAULT_PM1A_EVT_PORT + PM1_EVT_BYTES).contains(&a.port) {
        if let Some(p) = v.domain.domu.as_ref() {
            p.pm1
                .lock()
                .write(a.port - DEFAULT_PM1A_EVT_PORT, a.size, val as u32);
        }
        let d = v.domain.clone();
        super::domu_irq::sci_line(Some(v), &d);
        advance(v);
        return Ok(());
    }
    let ports = Dom0Ports {
        pm1a_cnt: DEFAULT_PM1A_CNT_PORT,
        s5_type: v.domain.s5_type,
        console: serial::COM1,
    };
    match io_policy::dom0_out(&ports, a.port, a.size, val) {
        OutAction::PowerOff => Err(StopReason::PowerOff),
        OutAction::Reset => Err(StopReason::Reboot),
        // A domU's other ports lead nowhere (its UART was emulated above).
        OutAction::Passthrough | OutAction::ConsoleData => {
            advance(v);
            Ok(())
        }
    }
}

/// Carries out what the vLAPIC asked for (IPIs, timer changes).
pub fn process_actions(v: &mut Vcpu, actions: crate::vlapic::Actions) {
    for a in actions.iter() {
        if let Action::EoiBroadcast(vector) = a {
            // A domU's level-triggered interrupt completes at its I/O APIC.
            let again = v.domain.domu.as_ref().map(|p| p.ioapic.lock().eoi(vector));
            for m in again.iter().flat_map(|list| list.iter()) {
                super::domu_irq::deliver(v, m);
            }
            continue;
        }
        if let Action::SendIpi {
            dest,
            shorthand,
            mode,
            vector,
            ..
        } = a
        {
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
            log::debug!(
                "{} vCPU{}: IPI delivery mode {mode:?} not supported, dropped",
                v.domain.label(),
                v.index
            );
            return;
        }
    }
    // Wake the target (the scheduler kicks its CPU). dom0's vCPU j, before
    // it started, waits on the CPU with its APIC ID outside the scheduler:
    // that CPU gets an IPI too.
    if j != v.index {
        if v.domain.is_dom0() {
            lapic::send_fixed(v.domain.vcpu_apic_id(j), idt::VECTOR_IPI);
        }
        super::vcpu_homes::wake(&v.domain, j);
    }
}

/// Logs what a vCPU is doing (debug key 'r'): where it runs, whether it
/// can take interrupts, and its virtual APIC's view of them.
pub fn log_vcpu_state(v: &mut Vcpu) {
    v.sync_vlapic_from_page();
    let now = cpu::rdtsc();
    let l = &v.vlapic;
    log::info!(
        "{} vCPU{} on cpu{}: RIP {:#x} RFLAGS {:#x} (IF {}) interruptibility {:#x} blocked {} | vLAPIC TPR {:#x} PPR {:#x} highest IRR {:?} ISR {:#x} deliverable {:?} | LVT timer {:#x} TMICT {:#x} TMCCT {:#x} next deadline {:?} (now {now:#x}) | mailbox empty {}",
        v.domain.label(),
        v.index,
        percpu::current_index(),
        read(FN::GuestRip),
        read(FN::GuestRflags),
        (read(FN::GuestRflags) >> 9) & 1,
        read(F32::GuestInterruptibilityState),
        v.blocked,
        l.mmio_read(0x80, now),
        l.ppr(),
        (0..8u32)
            .rev()
            .map(|i| l.mmio_read(0x200 + i * 16, now))
            .position(|w| w != 0),
        l.svi(),
        l.highest_pending(),
        l.mmio_read(0x320, now),
        l.mmio_read(0x380, now),
        l.mmio_read(0x390, now),
        l.next_timer_deadline(),
        v.domain.mailbox(v.index).vectors.is_empty(),
    );
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
        r.rax,
        r.rbx,
        r.rcx,
        r.rdx,
        r.rsi,
        r.rdi,
        r.rbp
    );
    log::error!(
        "  R8 {:#x} R9 {:#x} R10 {:#x} R11 {:#x} R12 {:#x} R13 {:#x} R14 {:#x} R15 {:#x}",
        r.r8,
        r.r9,
        r.r10,
        r.r11,
        r.r12,
        r.r13,
        r.r14,
        r.r15
    );
}
