//! The boot sequence of the hypervisor, on the boot CPU (`bsp_main`) and on
//! every application processor (`ap_main`).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::acpi::{self, MadtCpu};
use crate::arch::x86_64::{
    acpi_mem::IdentityMap, boot, cpu, gdt, idt, lapic, paging, percpu, pic, pit, power, serial,
    smp, vmx,
};
use crate::boot::multiboot2::{self, BootInfo, MemoryKind};
use crate::cmdline::{self, Console, CrashTest, ExitAction, Options};
use crate::logger;
use crate::mm::addr::{ByteSize, HostPhysAddr, PAGE_SIZE, PhysRange};
use crate::mm::frames::{self, FRAMES};
use crate::vmx::caps::VmxCaps;

/// The hypervisor's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Stack size of every CPU.
const STACK_SIZE: ByteSize = ByteSize::kib(64);

/// Settings shared with the APs once the BSP has decided them.
static VMX_REVISION: spin::Once<u32> = spin::Once::new();
static HV_CR3: spin::Once<HostPhysAddr> = spin::Once::new();
/// `crashtest=fault`: set by the boot CPU for the second CPU to fault.
static CRASH_FAULT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// An address no page table of the hypervisor maps (the top of the lower
/// canonical half), for `crashtest=fault`.
const UNMAPPED: u64 = 0x0000_7fff_dead_0000;
/// The local APIC timer rate after divide-by-16, kHz.
static APIC_TIMER_KHZ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn fatal(msg: core::fmt::Arguments<'_>, on_exit: ExitAction) -> ! {
    log::error!("FATAL: {msg}");
    finish(on_exit)
}

/// What the hypervisor does when it has nothing left to run.
pub fn finish(on_exit: ExitAction) -> ! {
    match on_exit {
        ExitAction::PowerOff => power::power_off(),
        ExitAction::Reboot => power::reboot(),
        ExitAction::Halt => {
            log::info!("halting (on_exit=halt)");
            cpu::halt_forever()
        }
    }
}

/// Allocates a stack and returns its top (16-byte aligned, identity-mapped).
fn alloc_stack(size: ByteSize) -> Option<u64> {
    let base = frames::allocate_contiguous(size.frames(), PAGE_SIZE).ok()?;
    Some(base.as_u64() + size.as_u64())
}

fn ist_stacks() -> [u64; 3] {
    let mut tops = [0u64; 3];
    for t in &mut tops {
        *t = alloc_stack(ByteSize::new(gdt::IST_STACK_SIZE as u64)).unwrap_or_else(|| {
            log::error!("FATAL: out of memory for interrupt stacks");
            cpu::halt_forever()
        });
    }
    tops
}

/// The boot CPU's path from the boot loader to running every CPU in VMX root.
pub fn bsp_main(magic: u32, info_bytes: &'static [u8], info_phys: HostPhysAddr) -> ! {
    percpu::install(0, cpu::initial_apic_id());
    logger::init_early();
    log::info!("Oxen hypervisor v{VERSION} starting");

    if magic != multiboot2::BOOTLOADER_MAGIC {
        fatal(
            format_args!("not started by a multiboot2 boot loader (magic {magic:#x})"),
            ExitAction::Halt,
        );
    }
    let info = match BootInfo::parse(info_bytes) {
        Ok(i) => i,
        Err(e) => fatal(
            format_args!("bad multiboot2 boot information: {e}"),
            ExitAction::Halt,
        ),
    };

    // Command line first: it sets the log level and the console.
    let raw_cmdline = info.command_line().unwrap_or("");
    let opts: Options = cmdline::parse(raw_cmdline, &mut |d| log::warn!("cmdline: {d}"));
    log::set_max_level(opts.loglvl);
    logger::set_console(match opts.console {
        Console::Com1 => Some(serial::COM1),
        Console::Com2 => Some(serial::COM2),
        Console::None => None,
    });

    match pit::measure_tsc_khz(50) {
        Some(khz) => {
            logger::set_tsc_khz(khz);
            log::info!(
                "TSC: {}.{:03} MHz (measured against the PIT)",
                khz / 1000,
                khz % 1000
            );
        }
        None => log::warn!("TSC calibration against the PIT failed; timestamps stay at 0"),
    }
    let mut brand = [0u8; 48];
    log::info!("CPU: {}", cpu::brand_string(&mut brand));
    if let Some(name) = info.bootloader_name() {
        log::info!("boot loader: {name}");
    }
    log::info!("command line: '{raw_cmdline}'");

    // Memory map and frame allocator.
    log::info!("memory map (multiboot2):");
    let mut phys_top = 0u64;
    for r in info.memory_map() {
        log::info!(
            "  [{:#014x} - {:#014x}) {:>12} {}",
            r.range.start.as_u64(),
            r.range.end.as_u64(),
            r.range.size(),
            r.kind
        );
        phys_top = phys_top.max(r.range.end.as_u64());
    }
    let image = boot::image_range();
    let info_range = PhysRange::new(
        info_phys,
        HostPhysAddr::new(info_phys.as_u64() + info.total_size() as u64),
    );
    let mut fixed: [PhysRange; 40] =
        [PhysRange::new(HostPhysAddr::new(0), HostPhysAddr::new(0)); 40];
    let mut n = 0;
    fixed[n] = PhysRange::new(HostPhysAddr::new(0), HostPhysAddr::new(0x10_0000)); // real-mode area, BIOS, AP trampoline
    n += 1;
    fixed[n] = image;
    n += 1;
    fixed[n] = info_range;
    n += 1;
    for m in info.modules() {
        if n < fixed.len() {
            log::info!(
                "module [{:#x} - {:#x}) '{}'",
                m.range.start.as_u64(),
                m.range.end.as_u64(),
                m.cmdline
            );
            fixed[n] = m.range;
            n += 1;
        } else {
            fatal(format_args!("too many boot modules"), opts.on_exit);
        }
    }
    {
        let mut fa = FRAMES.lock();
        for r in info.memory_map().filter(|r| r.kind == MemoryKind::Usable) {
            if let Err(e) = fa.add_usable(r.range, &fixed[..n]) {
                log::warn!(
                    "memory [{:#x} - {:#x}) not usable: {e}",
                    r.range.start.as_u64(),
                    r.range.end.as_u64()
                );
            }
        }
    }
    let (free, total) = {
        let fa = FRAMES.lock();
        (fa.free_frames(), fa.total_frames())
    };
    log::info!(
        "hypervisor image [{:#x} - {:#x}); {} frames free of {} ({} free)",
        image.start.as_u64(),
        image.end.as_u64(),
        free.as_u64(),
        total.as_u64(),
        free.bytes()
    );
    if let Err(e) = crate::heap::init() {
        fatal(format_args!("cannot allocate the heap: {e}"), opts.on_exit);
    }

    // Our own page tables.
    match paging::build(phys_top) {
        Ok(pt) => {
            HV_CR3.call_once(|| pt.root());
            paging::activate(pt.root());
            log::info!(
                "page tables: identity map up to {:#x}, image in the higher half",
                phys_top.max(4 << 30)
            );
        }
        Err(e) => fatal(
            format_args!("cannot build the hypervisor page tables: {e:?}"),
            opts.on_exit,
        ),
    }
    gdt::load_for_this_cpu(ist_stacks());
    idt::load();
    pic::remap_and_mask();

    // ACPI: CPUs and power control.
    let mem = IdentityMap {
        limit: phys_top.max(4 << 30),
    };
    let mut cpus: Vec<MadtCpu> = Vec::new();
    match info.rsdp().map(acpi::parse_rsdp) {
        Some(Ok(rsdp)) => {
            log::info!(
                "ACPI: RSDP revision {}, {} {:#x}",
                rsdp.revision,
                if rsdp.xsdt != 0 { "XSDT" } else { "RSDT" },
                if rsdp.xsdt != 0 { rsdp.xsdt } else { rsdp.rsdt }
            );
            match acpi::find_table(&mem, &rsdp, b"APIC")
                .and_then(|a| acpi::parse_madt::<{ percpu::MAX_CPUS }>(&mem, a))
            {
                Ok(madt) => {
                    cpus.extend_from_slice(&madt.cpus[..madt.cpu_count]);
                    log::info!(
                        "ACPI MADT: {} CPUs ({} enabled), {} I/O APICs, local APIC at {:#x}",
                        madt.cpu_count,
                        cpus.iter().filter(|c| c.enabled).count(),
                        madt.ioapic_count,
                        madt.lapic_addr
                    );
                    if madt.cpus_dropped > 0 {
                        log::warn!(
                            "{} CPUs beyond the supported {} are not used",
                            madt.cpus_dropped,
                            percpu::MAX_CPUS
                        );
                    }
                }
                Err(e) => log::warn!("ACPI MADT: {e}; running on the boot CPU only"),
            }
            match acpi::find_table(&mem, &rsdp, b"FACP").and_then(|a| acpi::parse_fadt(&mem, a)) {
                Ok(fadt) => {
                    let s5 = acpi::dsdt_s5(&mem, fadt.dsdt).unwrap_or(None);
                    log::info!(
                        "ACPI FADT: PM1a_CNT {:#x}, S5 sleep type {:?}, reset register {:?}",
                        fadt.pm1a_cnt,
                        s5,
                        fadt.reset
                    );
                    power::set_info(power::PowerInfo { fadt, s5 });
                }
                Err(e) => log::warn!("ACPI FADT: {e}; power-off will not be available"),
            }
            if acpi::find_table(&mem, &rsdp, b"MCFG").is_ok() {
                log::info!("ACPI MCFG: PCI configuration space is memory-mapped (ECAM)");
                crate::arch::x86_64::vmx_backend::notify::note_mcfg();
            }
        }
        Some(Err(e)) => log::warn!("ACPI: {e}; running on the boot CPU only"),
        None => log::warn!("ACPI: the boot loader gave no RSDP; running on the boot CPU only"),
    }

    // Local APIC and its timer.
    let x2 = lapic::init_this_cpu();
    let bsp_apic = lapic::id();
    percpu::install(0, bsp_apic);
    percpu::get(0).online.store(true, Ordering::Release);
    log::info!(
        "local APIC: {} mode, ID {}, version {:#x}",
        if x2 { "x2APIC" } else { "xAPIC" },
        bsp_apic,
        lapic::version() & 0xFF
    );
    check_lapic_timer();

    // VT-x.
    if !cpu::has_vmx() {
        log::error!("VT-x not available: {}", vmx::VmxError::NotSupported);
        finish(opts.on_exit);
    }
    let caps = VmxCaps::new(vmx::read_msrs());
    caps.report(&mut |line| log::info!("{line}"));
    if let Some(missing) = caps.first_missing() {
        log::error!("VT-x not usable: this CPU lacks the required VMX feature '{missing}'");
        finish(opts.on_exit);
    }
    VMX_REVISION.call_once(|| caps.vmcs_revision());
    if let Err(e) = enter_vmx_root() {
        log::error!("VT-x not available: {e}");
        finish(opts.on_exit);
    }

    // Application processors.
    smp::install_trampoline();
    let max = opts.maxcpus.map_or(percpu::MAX_CPUS, |m| {
        (m as usize).clamp(1, percpu::MAX_CPUS)
    });
    let mut index = 1;
    for c in cpus.iter().filter(|c| c.enabled && c.apic_id != bsp_apic) {
        if index >= max {
            log::info!("maxcpus={max}: CPU with APIC ID {} left offline", c.apic_id);
            continue;
        }
        let Some(stack_top) = alloc_stack(STACK_SIZE) else {
            log::error!("out of memory for the stack of APIC ID {}", c.apic_id);
            break;
        };
        let ap = smp::ApStart {
            index,
            apic_id: c.apic_id,
            stack_top,
            entry: ap_entry as *const () as u64,
        };
        if smp::start_ap(&ap, logger::tsc_khz()) {
            index += 1;
        } else {
            log::error!("CPU with APIC ID {} did not start", c.apic_id);
        }
    }
    let started = index;
    // Wait (bounded) for every started AP to finish its VMX set-up.
    let deadline = cpu::rdtsc() + logger::tsc_khz().max(1) * 2000;
    while cpu::rdtsc() < deadline
        && (1..started).any(|i| {
            !percpu::get(i).in_vmx_root.load(Ordering::Acquire)
                && !percpu::get(i).failed.load(Ordering::Acquire)
        })
    {
        cpu::pause();
    }
    let in_root = (0..started)
        .filter(|&i| percpu::get(i).in_vmx_root.load(Ordering::Acquire))
        .count();
    if in_root == started {
        log::info!("all {started} CPUs in VMX root operation");
    } else {
        log::error!("only {in_root} of {started} CPUs entered VMX root operation");
    }
    match opts.crashtest {
        CrashTest::None => {}
        CrashTest::Fault => crash_test_fault(started),
        CrashTest::Panic => panic!("crashtest=panic: a panic on purpose, to show the report"),
    }

    if info.modules().next().is_none() {
        log::info!("no dom0 kernel module given: nothing to run");
        finish(opts.on_exit);
    }
    let pm = power::info();
    let pm = crate::dom0_launch::PmInfo {
        pm1a_cnt: pm.map_or(0, |p| p.fadt.pm1a_cnt),
        s5: pm.and_then(|p| p.s5).map(|(a, _)| a),
        apic_khz: APIC_TIMER_KHZ.load(Ordering::Relaxed) * 16,
    };
    if let Err(e) = crate::dom0_launch::launch(&info, info_range, &opts, caps, in_root, pm) {
        log::error!("FATAL: dom0 not started: {e}");
    }
    finish(opts.on_exit)
}

/// `crashtest=fault`: the second CPU (the boot CPU if it is alone) reads an
/// unmapped address; its page-fault report is printed and it stops, and the
/// boot CPU goes on to the end of the run.
fn crash_test_fault(started: usize) {
    if started < 2 {
        log::warn!("crashtest=fault: only one CPU, so the boot CPU faults");
        cpu::fault_on_purpose(UNMAPPED);
    }
    log::info!("crashtest=fault: cpu1 reads the unmapped address {UNMAPPED:#x}");
    CRASH_FAULT.store(true, Ordering::Release);
    lapic::send_fixed(
        percpu::get(1).apic_id.load(Ordering::Relaxed),
        idt::VECTOR_IPI,
    );
    let deadline = cpu::rdtsc() + logger::tsc_khz().max(1) * 1000;
    while !percpu::get(1).stopped.load(Ordering::Acquire) && cpu::rdtsc() < deadline {
        cpu::pause();
    }
    if percpu::get(1).stopped.load(Ordering::Acquire) {
        log::info!("crashtest=fault: cpu1 stopped after its report; cpu0 goes on");
    } else {
        log::error!("crashtest=fault: cpu1 did not stop within 1 s");
    }
}

/// Checks the local APIC timer: measures its rate against the TSC and takes a
/// few periodic interrupts.
fn check_lapic_timer() {
    let khz = logger::tsc_khz();
    if khz == 0 {
        return;
    }
    let timer_khz = lapic::measure_timer_khz(khz, khz * 10); // over 10 ms
    APIC_TIMER_KHZ.store(timer_khz, Ordering::Relaxed);
    let per_ms = timer_khz.max(1);
    let before = idt::TIMER_TICKS.load(Ordering::Relaxed);
    lapic::start_timer(
        idt::VECTOR_TIMER,
        lapic::TimerMode::Periodic,
        (per_ms * 2).min(u64::from(u32::MAX)) as u32,
    );
    cpu::sti();
    let start = cpu::rdtsc();
    while idt::TIMER_TICKS.load(Ordering::Relaxed) - before < 3 && cpu::rdtsc() - start < khz * 100
    {
        cpu::pause();
    }
    cpu::cli();
    lapic::start_timer(idt::VECTOR_TIMER, lapic::TimerMode::OneShot, 0);
    let ticks = idt::TIMER_TICKS.load(Ordering::Relaxed) - before;
    if ticks >= 3 {
        log::info!(
            "local APIC timer: {timer_khz} kHz (divide by 16), periodic interrupts delivered"
        );
    } else {
        log::warn!(
            "local APIC timer: {timer_khz} kHz, but only {ticks} of 3 interrupts arrived in 100 ms"
        );
    }
}

/// Allocates this CPU's VMXON region and enters VMX root operation.
fn enter_vmx_root() -> Result<(), vmx::VmxError> {
    let revision = *VMX_REVISION.get().ok_or(vmx::VmxError::VmxonFailed)?;
    let region = frames::allocate().map_err(|_| vmx::VmxError::VmxonFailed)?;
    vmx::enable(region.as_u64(), revision)?;
    percpu::current().in_vmx_root.store(true, Ordering::Release);
    log::info!(
        "entered VMX root operation (VMCS revision {revision:#x}, VMXON region {:#x})",
        region.as_u64()
    );
    Ok(())
}

/// First Rust code on an application processor (called by the trampoline on
/// the boot page tables and its own stack).
extern "C" fn ap_entry(index: u64) -> ! {
    let index = index as usize;
    percpu::install(index, cpu::initial_apic_id());
    if let Some(cr3) = HV_CR3.get() {
        paging::activate(*cr3);
    }
    gdt::load_for_this_cpu(ist_stacks());
    idt::load();
    lapic::init_this_cpu();
    percpu::install(index, lapic::id());
    percpu::get(index).online.store(true, Ordering::Release);
    log::info!("CPU online (APIC ID {})", lapic::id());
    if let Err(e) = enter_vmx_root() {
        log::error!("cannot enter VMX root operation: {e}");
        percpu::get(index).failed.store(true, Ordering::Release);
    }
    loop {
        if index == 1 && CRASH_FAULT.load(Ordering::Acquire) {
            cpu::fault_on_purpose(UNMAPPED);
        }
        crate::dom0_launch::ap_run(index);
        cpu::sti();
        cpu::hlt();
        cpu::cli();
    }
}
