//! Building dom0 from the multiboot2 modules and starting its vCPUs: the
//! kernel (an ELF `vmlinux` with a PVH note; the bzImage path is next), its
//! command line and initrd; dom0's memory from `dom0_mem=`, an identity EPT
//! that leaves out the hypervisor's memory and the free pool, and an e820 map
//! that marks them reserved. vCPU i runs on physical CPU i.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::acpi;
use crate::arch::x86_64::paging::IdentityTables;
use crate::arch::x86_64::physmem::phys_slice;
use crate::arch::x86_64::vmx_backend::domain::Domain;
use crate::arch::x86_64::vmx_backend::hidden::{self, HiddenMemory};
use crate::arch::x86_64::vmx_backend::setup::{EntryState, Segment};
use crate::arch::x86_64::vmx_backend::{StopReason, Vcpu, pcpu};
use crate::arch::x86_64::{cpu, idt, lapic, percpu, power, vmx};
use crate::boot::multiboot2::{BootInfo, MemoryKind, MemoryRegion};
use crate::cmdline::{ExitAction, Options};
use crate::dom0::bzimage::{
    BzImage, BzPlacementRequest, build_bz_boot_block, bz_entry_state, place_bzimage,
};
use crate::dom0::memory::{Dom0Memory, E820Entry, dom0_e820, plan_dom0_memory};
use crate::dom0::page_tables::IdentityPageSize;
use crate::dom0::pvh::{
    PvhKernel, PvhPlacementRequest, build_pvh_boot_block, place_pvh, pvh_entry_state,
};
use crate::dom0::{GuestRange, KernelFormat, entry};
use crate::logger;
use crate::mm::addr::{ByteSize, FrameCount, HUGE_PAGE_SIZE, HostPhysAddr, PAGE_SIZE, PhysRange};
use crate::mm::ept::{Ept, EptMemoryType, EptPerms, Eptp, map_identity};
use crate::mm::frames::{self, FRAMES};
use crate::mm::identity_plan::{dom0_hidden_ranges, dom0_identity_ranges};
use crate::mm::page_table::PageTable;
use crate::vcpu::bitmaps::{IoBitmap, MsrBitmap};
use crate::vmx::caps::VmxCaps;

/// The running dom0, once built.
pub static DOM0: spin::Once<Arc<Domain>> = spin::Once::new();
/// Set by each AP when it has left VMX operation after dom0 stopped.
static PARKED: [AtomicBool; percpu::MAX_CPUS] =
    [const { AtomicBool::new(false) }; percpu::MAX_CPUS];

/// Physical address of the local APIC page dom0 sees (SDM §12.4.1).
const APIC_GPA: u64 = 0xFEE0_0000;

/// Copies a module into fresh hypervisor frames (out of the way of the
/// kernel's load addresses) and returns the copy.
fn copy_module(m: PhysRange) -> Result<PhysRange, &'static str> {
    let frames = m.size().as_u64().div_ceil(PAGE_SIZE);
    let dst = frames::allocate_contiguous(FrameCount::new(frames.max(1)), PAGE_SIZE)
        .map_err(|_| "out of memory copying a boot module")?;
    let copy = PhysRange::new(dst, HostPhysAddr::new(dst.as_u64() + m.size().as_u64()));
    // SAFETY: `copy` is frames just allocated for it, `m` a boot module
    // (RAM in the identity map, reserved from the allocator); they are
    // distinct, and no vCPU runs yet.
    unsafe { phys_slice(copy).copy_from_slice(phys_slice(m)) };
    Ok(copy)
}

/// Builds dom0 and runs vCPU 0 on this (the boot) CPU. Returns only if dom0
/// could not be built.
pub fn launch(
    info: &BootInfo<'_>,
    boot_info: PhysRange,
    opts: &Options,
    caps: VmxCaps,
    cpus: usize,
    pm: PmInfo,
) -> Result<(), &'static str> {
    let mut modules = info.modules();
    let kernel_mod = modules.next().ok_or("no dom0 kernel module")?;
    let initrd_mod = modules.next();
    // Copied: the boot information's pages go back to the pool below.
    let cmdline = alloc::string::String::from(kernel_mod.cmdline.trim());
    let cmdline = cmdline.as_str();
    log::info!(
        "dom0: kernel module {} ({}), command line '{cmdline}'",
        kernel_mod.range.start,
        kernel_mod.range.size()
    );
    for c in [
        caps.virtual_interrupt_delivery(),
        caps.apic_register_virtualization(),
        caps.tpr_shadow(),
        caps.apic_access_page(),
        caps.preemption_timer(),
    ] {
        if !c {
            return Err(
                "dom0 needs APIC-register virtualization, virtual-interrupt delivery, TPR shadow, the APIC-access page and the preemption timer (not on this CPU)",
            );
        }
    }

    // 1. Move the modules out of the way, and give their old places and
    //    conventional memory back to the pool dom0 is carved from.
    let kernel = copy_module(kernel_mod.range)?;
    let initrd = initrd_mod.map(|m| copy_module(m.range)).transpose()?;
    let host: Vec<MemoryRegion> = info.memory_map().collect();
    {
        let mut fa = FRAMES.lock();
        // Whole pages: a module's last page and the boot information are
        // nobody else's (the loader page-aligns what it places).
        let mut give_back: Vec<PhysRange> = info.modules().map(|m| m.range).collect();
        give_back.push(boot_info);
        for g in &mut give_back {
            *g = PhysRange::new(
                g.start.align_down(PAGE_SIZE),
                g.end.checked_align_up(PAGE_SIZE).unwrap_or(g.end),
            );
        }
        give_back.push(PhysRange::new(
            HostPhysAddr::new(0),
            HostPhysAddr::new(0x9F000),
        ));
        for g in give_back {
            for r in host.iter().filter(|r| r.kind == MemoryKind::Usable) {
                let s = g.start.as_u64().max(r.range.start.as_u64());
                let e = g.end.as_u64().min(r.range.end.as_u64());
                if s < e
                    && let Err(err) = fa.add_usable(
                        PhysRange::new(HostPhysAddr::new(s), HostPhysAddr::new(e)),
                        &[],
                    )
                {
                    log::warn!("dom0: cannot return [{s:#x} - {e:#x}) to the pool: {err}");
                }
            }
        }
    }

    // 2. The kernel and dom0's memory.
    // SAFETY: `kernel` is the module copy made above, in frames only this
    // function uses until it frees them below; no vCPU runs yet.
    let image = unsafe { phys_slice(kernel) };
    let boot = match KernelFormat::detect(image) {
        Ok(KernelFormat::ElfVmlinux) => PvhKernel::parse(image).map(Kernel::Pvh),
        Ok(KernelFormat::BzImage) => BzImage::parse(image).map(Kernel::BzImage),
        Err(e) => Err(e),
    }
    .map_err(|e| {
        log::error!("dom0: {e}");
        "the dom0 kernel module is not a kernel Oxen can start"
    })?;
    let required: Vec<PhysRange> = match &boot {
        Kernel::Pvh(k) => k.required_ranges(),
        Kernel::BzImage(b) => b.required_range().into_iter().collect(),
    };
    // Reserved = host RAM that is not free in the allocator right now.
    let free: Vec<PhysRange> = FRAMES.lock().free_ranges().collect();
    let mut reserved: Vec<PhysRange> = Vec::new();
    for r in host.iter().filter(|r| r.kind == MemoryKind::Usable) {
        let mut cur = r.range.start.as_u64();
        for f in free.iter().filter(|f| f.overlaps(&r.range)) {
            if f.start.as_u64() > cur {
                reserved.push(PhysRange::new(HostPhysAddr::new(cur), f.start));
            }
            cur = cur.max(f.end.as_u64());
        }
        if cur < r.range.end.as_u64() {
            reserved.push(PhysRange::new(HostPhysAddr::new(cur), r.range.end));
        }
    }
    let plan = plan_dom0_memory(&host, &reserved, opts.dom0_mem, &required).map_err(|e| {
        log::error!("dom0 memory: {e}");
        for f in &free {
            log::error!("  free: [{:#x} - {:#x})", f.start.as_u64(), f.end.as_u64());
        }
        "cannot give dom0 its memory"
    })?;
    {
        let mut fa = FRAMES.lock();
        for r in plan.ranges() {
            fa.claim(*r)
                .map_err(|_| "dom0 memory plan overlaps hypervisor memory")?;
        }
    }
    log::info!(
        "dom0: {} of RAM in {} ranges ({} requested), {} left in the free pool",
        plan.granted(),
        plan.ranges().len(),
        plan.requested(),
        frames::free_frames().bytes()
    );
    let e820 = dom0_e820(&host, &plan).map_err(|e| {
        log::error!("dom0 e820: {e}");
        "cannot build dom0's memory map"
    })?;
    let bios = PhysRange::new(HostPhysAddr::new(0xE0000), HostPhysAddr::new(0x10_0000));
    let rsdp =
        // SAFETY: the BIOS area 0xE0000-0xFFFFF is identity mapped and only
        // read here, at boot, before any vCPU runs.
        acpi::find_rsdp_in(unsafe { phys_slice(bios) }, 0xE0000).map(crate::mm::addr::GuestPhysAddr::new);
    let (boot_state, initrd_dst) = match &boot {
        Kernel::Pvh(pvh) => load_pvh(
            pvh,
            image,
            &plan,
            &e820,
            cmdline,
            initrd.map(|r| r.size()),
            rsdp,
        )?,
        Kernel::BzImage(bz) => {
            load_bzimage(bz, &plan, &e820, cmdline, initrd.map(|r| r.size()), rsdp)?
        }
    };
    if let (Some(src), Some(dst)) = (initrd, initrd_dst) {
        // SAFETY: `dst` is dom0's RAM at the place the loader chose (not the
        // kernel's or the boot block's), `src` the initrd module copy; no
        // vCPU runs yet.
        unsafe { phys_slice(dst.identity_host()).copy_from_slice(phys_slice(src)) };
    }
    let mut fa = FRAMES.lock();
    for copy in [Some(kernel), initrd].into_iter().flatten() {
        let _ = fa.free(
            copy.start,
            FrameCount::new(copy.size().as_u64().div_ceil(PAGE_SIZE)),
        );
    }
    drop(fa);
    log::info!(
        "dom0: e820 has {} entries, RSDP {:?}, entry at {:#x}",
        e820.len(),
        rsdp,
        boot_state.rip
    );

    // 4. EPT: dom0's RAM and every non-RAM range, identity; the APIC page is
    //    the APIC-access page.
    let apic_access = frames::allocate().map_err(|_| "out of memory")?;
    // SAFETY: a frame just allocated, used by nothing else yet.
    unsafe {
        phys_slice(PhysRange::new(
            apic_access,
            HostPhysAddr::new(apic_access.as_u64() + PAGE_SIZE),
        ))
    }
    .fill(0);
    let top = host
        .iter()
        .map(|r| r.range.end.as_u64())
        .max()
        .unwrap_or(0)
        .max(1 << 32);
    let limit = top.div_ceil(HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
    let apic_hole = PhysRange::new(
        HostPhysAddr::new(APIC_GPA),
        HostPhysAddr::new(APIC_GPA + PAGE_SIZE),
    );
    let ranges: Vec<_> = dom0_identity_ranges(&host, plan.ranges(), &[apic_hole], limit)
        .into_iter()
        .map(|(r, t)| (r, t, EptPerms::ReadWriteExecute))
        .collect();
    let mut mem = IdentityTables;
    let mut ept = PageTable::<Ept>::new(&mut mem).map_err(|_| "out of memory for EPT")?;
    map_identity(&mut ept, &mut mem, &ranges, caps.ept_1g()).map_err(|e| {
        log::error!("dom0 EPT: {e}");
        "cannot build dom0's EPT"
    })?;
    ept.map(
        &mut mem,
        APIC_GPA,
        apic_access,
        ByteSize::new(PAGE_SIZE),
        EptPerms::ReadWrite.flags(EptMemoryType::WriteBack),
        false,
    )
    .map_err(|_| "cannot map the APIC-access page")?;
    log::info!(
        "dom0: identity EPT with {} ranges up to {limit:#x}",
        ranges.len()
    );
    // Host RAM that is not dom0's shows as all-ones (reserved in its e820).
    let ones = frames::allocate().map_err(|_| "out of memory")?;
    let scratch = frames::allocate().map_err(|_| "out of memory")?;
    let hidden_ranges = dom0_hidden_ranges(&host, plan.ranges(), &[apic_hole], limit);
    let mut hidden_bytes = 0;
    for r in &hidden_ranges {
        ept.map_repeated(
            &mut mem,
            r.start.as_u64(),
            ones,
            r.size(),
            hidden::hidden_flags(),
        )
        .map_err(|e| {
            log::error!(
                "dom0 EPT: hidden range [{:#x} - {:#x}): {e}",
                r.start.as_u64(),
                r.end.as_u64()
            );
            "cannot build dom0's EPT"
        })?;
        hidden_bytes += r.size().as_u64();
    }
    log::info!(
        "dom0: {} of hidden memory in {} ranges reads as all-ones",
        ByteSize::new(hidden_bytes),
        hidden_ranges.len()
    );

    // 5. Bitmaps.
    let mut msr = MsrBitmap::pass_all();
    for m in [0x1B, 0x3A, 0x6E0] {
        msr.trap_read(m);
        msr.trap_write(m);
    }
    msr.trap_range(0x480..=0x491);
    msr.trap_range(0x800..=0x8FF);
    for m in [0xC000_0080, 0x79, 0x250, 0x258, 0x259, 0x2FF] {
        msr.trap_write(m);
    }
    for m in (0x200..=0x21F).chain(0x268..=0x26F) {
        msr.trap_write(m);
    }
    let mut io = IoBitmap::pass_all();
    if pm.pm1a_cnt != 0 {
        io.trap(pm.pm1a_cnt, 2);
    }
    // The PCI configuration ports (0xCF9, the reset control register, among
    // them): the notification device lives in configuration space.
    io.trap(crate::vdev::pci_config::CONFIG_ADDRESS, 8);
    crate::arch::x86_64::vmx_backend::notify::init();
    io.trap(0x64, 1);
    // COM1's data register: dom0's reads are watched for debug keys.
    io.trap(crate::arch::x86_64::serial::COM1, 1);
    let msr_page = frames::allocate().map_err(|_| "out of memory")?;
    // SAFETY: a frame just allocated, used by nothing else yet.
    unsafe {
        phys_slice(PhysRange::new(
            msr_page,
            HostPhysAddr::new(msr_page.as_u64() + PAGE_SIZE),
        ))
    }
    .copy_from_slice(&msr.0);
    let io_pages =
        frames::allocate_contiguous(FrameCount::new(2), PAGE_SIZE).map_err(|_| "out of memory")?;
    // SAFETY: two frames just allocated, used by nothing else yet.
    unsafe {
        phys_slice(PhysRange::new(
            io_pages,
            HostPhysAddr::new(io_pages.as_u64() + 2 * PAGE_SIZE),
        ))
    }
    .copy_from_slice(&io.0);

    // 6. The domain and its vCPUs.
    let nvcpus = opts
        .dom0_max_vcpus
        .map_or(cpus, |n| (n as usize).clamp(1, cpus));
    let apic_ids: Vec<u32> = (0..nvcpus)
        .map(|i| percpu::get(i).apic_id.load(Ordering::Relaxed))
        .collect();
    let domain = Arc::new(Domain::new(
        caps,
        Eptp::of(&ept).as_u64(),
        apic_access,
        msr_page,
        io_pages,
        pm.apic_khz,
        pm.pm1a_cnt,
        pm.s5,
        apic_ids,
        cpus,
    ));
    *domain.hidden.lock() = Some(HiddenMemory::new(ept, ones, scratch));
    domain.ram.call_once(|| {
        plan.ranges()
            .iter()
            .map(|r| (r.start.as_u64(), r.end.as_u64()))
            .collect()
    });
    DOM0.call_once(|| domain.clone());
    if opts.canary {
        crate::canaries::plant();
    }
    crate::arch::x86_64::vmcs::invept_all();
    let how = match boot {
        Kernel::Pvh(_) => "PVH entry",
        Kernel::BzImage(_) => "64-bit boot protocol entry",
    };
    log::info!(
        "dom0: starting {nvcpus} vCPU(s) at {how} {:#x}",
        boot_state.rip
    );
    for i in 1..nvcpus {
        lapic::send_fixed(
            percpu::get(i).apic_id.load(Ordering::Relaxed),
            idt::VECTOR_IPI,
        );
    }
    let state = convert(&boot_state);
    let mut vcpu = Vcpu::new(0, domain.clone(), &state)?;
    vcpu.regs.rbx = boot_state.rbx;
    vcpu.regs.rsi = boot_state.rsi;
    let stop = pcpu::run(vcpu);
    finish_dom0(&domain, stop, opts.on_exit, opts.exit_stats)
}

/// The dom0 kernel, by format.
enum Kernel<'a> {
    /// ELF vmlinux, entered through its PVH note.
    Pvh(PvhKernel<'a>),
    /// bzImage, entered through the Linux 64-bit boot protocol.
    BzImage(BzImage<'a>),
}

type Loaded = (entry::EntryState, Option<GuestRange>);

fn layout_error(what: &'static str) -> impl Fn(crate::dom0::Dom0Error) -> &'static str {
    move |e| {
        log::error!("dom0 {what}: {e}");
        what
    }
}

/// Loads an ELF vmlinux and writes the PVH start info (Xen's pvh.pandoc).
fn load_pvh(
    pvh: &PvhKernel<'_>,
    image: &[u8],
    plan: &Dom0Memory,
    e820: &[E820Entry],
    cmdline: &str,
    initrd: Option<ByteSize>,
    rsdp: Option<crate::mm::addr::GuestPhysAddr>,
) -> Result<Loaded, &'static str> {
    for seg in pvh.elf().segments() {
        // SAFETY: the segment lies in dom0's RAM (checked when the plan
        // was made), apart from the image being read; no vCPU runs yet.
        let dst = unsafe { phys_slice(seg.range().identity_host()) };
        let file = seg.file_bytes(image);
        dst[..file.len()].copy_from_slice(file);
        dst[file.len()..].fill(0);
    }
    let layout = place_pvh(&PvhPlacementRequest {
        dom0_ram: plan.ranges(),
        kernel: &pvh.load_ranges(),
        memmap_entries: e820.len(),
        cmdline_len: cmdline.len(),
        initrd_size: initrd,
    })
    .map_err(layout_error("boot layout"))?;
    let block = build_pvh_boot_block(&layout, e820, cmdline.as_bytes(), rsdp)
        .map_err(layout_error("start info"))?;
    // SAFETY: the boot block's place in dom0's RAM, apart from the kernel;
    // no vCPU runs yet.
    let dst = unsafe { phys_slice(layout.block.identity_host()) };
    dst[..block.len()].copy_from_slice(&block);
    Ok((pvh_entry_state(pvh, &layout), layout.initrd))
}

/// Loads a bzImage's protected-mode kernel and writes boot_params, the boot
/// GDT and identity page tables (Linux boot.rst, "64-bit Boot Protocol").
fn load_bzimage(
    bz: &BzImage<'_>,
    plan: &Dom0Memory,
    e820: &[E820Entry],
    cmdline: &str,
    initrd: Option<ByteSize>,
    rsdp: Option<crate::mm::addr::GuestPhysAddr>,
) -> Result<Loaded, &'static str> {
    let layout = place_bzimage(
        bz,
        &BzPlacementRequest {
            dom0_ram: plan.ranges(),
            cmdline_len: cmdline.len(),
            initrd_size: initrd,
            page_size: IdentityPageSize::Size2MiB,
        },
    )
    .map_err(layout_error("boot layout"))?;
    let kernel = bz.protected_mode_kernel();
    // SAFETY: the kernel's place in dom0's RAM, apart from the module copy
    // it is read from; no vCPU runs yet.
    let dst = unsafe { phys_slice(layout.kernel.identity_host()) };
    dst[..kernel.len()].copy_from_slice(kernel);
    let block = build_bz_boot_block(bz, &layout, e820, cmdline.as_bytes(), rsdp)
        .map_err(layout_error("boot parameters"))?;
    // SAFETY: the boot block's place in dom0's RAM, apart from the kernel;
    // no vCPU runs yet.
    let dst = unsafe { phys_slice(layout.block.identity_host()) };
    dst[..block.len()].copy_from_slice(&block);
    Ok((bz_entry_state(&layout), layout.initrd))
}

/// What the dom0 launcher needs from ACPI and the APIC timer.
#[derive(Debug, Clone, Copy)]
pub struct PmInfo {
    /// PM1a control port.
    pub pm1a_cnt: u16,
    /// SLP_TYPa for S5.
    pub s5: Option<u8>,
    /// The local APIC timer input, kHz (after the divide-by-16: we report
    /// the undivided rate to guests).
    pub apic_khz: u64,
}

fn convert(b: &entry::EntryState) -> EntryState {
    let seg = |s: &entry::SegmentState| Segment {
        selector: s.selector,
        base: s.base,
        limit: s.limit,
        access: s.access_rights,
    };
    EntryState {
        cr0: b.cr0,
        cr3: b.cr3,
        cr4: b.cr4,
        efer: b.efer,
        rip: b.rip,
        rsp: 0,
        rflags: b.rflags,
        cs: seg(&b.cs),
        data: seg(&b.data),
        gdtr: (b.gdtr_base, u32::from(b.gdtr_limit)),
        idtr: (0, 0xFFFF),
    }
}

/// Called on each AP from its idle loop: run vCPU `index` of dom0 once dom0
/// exists, starting it when dom0's BSP sends INIT and a start-up IPI.
pub fn ap_run(index: usize) {
    let Some(domain) = DOM0.get().cloned() else {
        return;
    };
    if index >= domain.vcpus() || PARKED[index].load(Ordering::Acquire) {
        return;
    }
    let mb = domain.mailbox(index);
    // Wait for INIT then SIPI from dom0's BSP (SDM §9.4.4).
    let vector = loop {
        if domain.stop.load(Ordering::Acquire) != 0 {
            park(index);
            return;
        }
        let sipi = mb.sipi.swap(0, Ordering::AcqRel);
        if sipi != 0 && mb.init.load(Ordering::Acquire) {
            break (sipi - 1) as u8;
        }
        // Interrupts on: wait for the next kick (vector 0xF1).
        cpu::sti();
        cpu::hlt();
        cpu::cli();
    };
    mb.init.store(false, Ordering::Release);
    log::info!(
        "dom0 vCPU{index}: start-up IPI, starting at {:#x}",
        u64::from(vector) << 12
    );
    let state = EntryState::after_sipi(vector);
    match Vcpu::new(index, domain.clone(), &state) {
        Ok(v) => {
            let stop = pcpu::run(v);
            if stop != StopReason::PowerOff && stop != StopReason::Reboot {
                log::error!("dom0 vCPU{index} stopped: {stop:?}");
            }
            domain.request_stop(match stop {
                StopReason::PowerOff => 1,
                StopReason::Reboot => 2,
                StopReason::Crash => 3,
            });
            lapic::send_fixed(
                percpu::get(0).apic_id.load(Ordering::Relaxed),
                idt::VECTOR_IPI,
            );
        }
        Err(e) => log::error!("dom0 vCPU{index}: {e}"),
    }
    park(index);
}

fn park(index: usize) {
    if percpu::current().in_vmx_root.load(Ordering::Relaxed) {
        vmx::disable();
        percpu::current()
            .in_vmx_root
            .store(false, Ordering::Relaxed);
    }
    PARKED[index].store(true, Ordering::Release);
}

fn finish_dom0(domain: &Domain, stop: StopReason, on_exit: ExitAction, exit_stats: bool) -> ! {
    let code = match stop {
        StopReason::PowerOff => 1,
        StopReason::Reboot => 2,
        StopReason::Crash => 3,
    };
    domain.request_stop(code);
    let stop = match domain.stop.load(Ordering::Acquire) {
        1 => StopReason::PowerOff,
        2 => StopReason::Reboot,
        _ => StopReason::Crash,
    };
    // Bring the other vCPUs out of the guest and wait (bounded) for them.
    for i in 1..domain.vcpus() {
        lapic::send_fixed(
            percpu::get(i).apic_id.load(Ordering::Relaxed),
            idt::VECTOR_IPI,
        );
    }
    let deadline = cpu::rdtsc() + logger::tsc_khz().max(1) * 1000;
    while (1..domain.vcpus()).any(|i| !PARKED[i].load(Ordering::Acquire)) && cpu::rdtsc() < deadline
    {
        cpu::pause();
    }
    if let Some(h) = domain.hidden.lock().as_ref() {
        log::info!("dom0: {} write(s) to hidden memory dropped", h.dropped());
    }
    crate::canaries::check();
    if exit_stats {
        domain.log_exit_stats("VM exit statistics");
    }
    match stop {
        StopReason::PowerOff => {
            log::info!("dom0 powered off");
            power::power_off()
        }
        StopReason::Reboot => {
            log::info!("dom0 asked for a reboot");
            power::reboot()
        }
        StopReason::Crash => {
            log::error!("dom0 crashed; the hypervisor is still running (on_exit={on_exit})");
            crate::start::finish(on_exit)
        }
    }
}
