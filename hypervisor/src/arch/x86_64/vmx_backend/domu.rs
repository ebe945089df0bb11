//! Guest domains (domUs) on VT-x: building one (zeroed RAM from the free
//! pool, its own EPT, bitmaps that trap every port and MSR that is not
//! switched per vCPU), the operations dom0's toolstack calls through
//! hypercalls, and teardown that gives every frame back.
//!
//! Ownership: the table [`DOMUS`] holds each domain (`Arc<Domain>`), and
//! every vCPU of it holds another reference. Destroying a domain removes it
//! from the table and marks it dying; the CPUs drop its vCPUs at their next
//! scheduling decision, and when the last reference goes, [`DomuParts`]'s
//! `Drop` returns its frames to the pool.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use dom0_abi::{DomainInfo, ShutdownReason, Status};
use zerocopy::FromZeros;

use super::domain::Domain;
use super::setup::{EntryState, Segment, ar};
use crate::arch::x86_64::paging::IdentityTables;
use crate::arch::x86_64::physmem::{fill_frame, write_volatile};
use crate::arch::x86_64::{idt, lapic, percpu};
use crate::domains::lifecycle::Lifecycle;
use crate::domains::registry::Registry;
use crate::hypercall::lifecycle::EntryMode;
use crate::mm::addr::{ByteSize, FrameCount, HostPhysAddr, PAGE_SIZE};
use crate::mm::ept::{Ept, EptMemoryType, EptPerms, Eptp};
use crate::mm::frames::{self, FRAMES};
use crate::mm::page_table::{PageTable, TableMemory};
use crate::vcpu::bitmaps::{IoBitmap, MsrBitmap};
use crate::vdev::ioapic::IoApic;
use crate::vdev::uart16550::Uart16550;
use crate::vmx::caps::VmxCaps;

/// Guest-physical address of the local APIC page.
const APIC_GPA: u64 = 0xFEE0_0000;
/// Frames in a 2 MiB chunk.
const CHUNK_FRAMES: u64 = 512;
/// The largest domU, in pages (64 GiB): bounds one hypercall's work.
const MAX_PAGES: u64 = 16 << 20;

/// Every guest domain, by id.
pub static DOMUS: spin::Mutex<Registry<Arc<Domain>>> = spin::Mutex::new(Registry::new());

/// A request for a CPU to create a vCPU of a domain and run it.
#[derive(Debug)]
pub struct VcpuRequest {
    /// The domain.
    pub domain: Arc<Domain>,
    /// Which vCPU.
    pub index: usize,
    /// How it starts, with RBX and RSI; `None`: it waits for INIT/SIPI
    /// from the domain's boot vCPU.
    pub start: Option<(EntryState, u64, u64)>,
}

/// Requests waiting for each CPU (indexed like `percpu`).
pub static INBOX: [spin::Mutex<Vec<VcpuRequest>>; percpu::MAX_CPUS] =
    [const { spin::Mutex::new(Vec::new()) }; percpu::MAX_CPUS];

/// What only a domU has.
#[derive(Debug)]
pub struct DomuParts {
    /// Its lifecycle.
    pub lifecycle: spin::Mutex<Lifecycle>,
    /// RAM: (guest-physical start, host frames, bytes), in order.
    chunks: Vec<(u64, HostPhysAddr, u64)>,
    /// Every frame it took (RAM, EPT tables, bitmaps, APIC-access page).
    owned: Vec<(HostPhysAddr, FrameCount)>,
    /// Pages of RAM.
    pub memory_pages: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// How its boot vCPU starts (with RBX, RSI), once set.
    pub entry: spin::Mutex<Option<(EntryState, u64, u64)>>,
    /// Its console: a 16550 at 0x3F8.
    pub uart: spin::Mutex<Uart16550>,
    /// Its I/O APIC at 0xFEC00000.
    pub ioapic: spin::Mutex<IoApic>,
    /// PM1a_EN as the guest last wrote it (ACPICA reads back the global
    /// lock enable it sets; no event is ever raised yet).
    pub pm1_enable: core::sync::atomic::AtomicU16,
    /// Reads from unbacked guest-physical addresses so far (they read
    /// all-ones: `vcpu::gpa_policy`).
    pub unbacked_reads: core::sync::atomic::AtomicU64,
    /// Writes to unbacked guest-physical addresses so far (dropped).
    pub unbacked_writes: core::sync::atomic::AtomicU64,
}

impl Drop for DomuParts {
    fn drop(&mut self) {
        for &(start, count) in &self.owned {
            crate::canaries::returned(start, count.as_u64());
        }
        let mut fa = FRAMES.lock();
        for &(start, count) in &self.owned {
            if fa.free(start, count).is_err() {
                log::error!("domU teardown: frames at {start} ({} pages) were not allocated", count.as_u64());
            }
        }
    }
}

impl DomuParts {
    /// The host address of guest-physical `gpa` and how many bytes follow
    /// it in the same chunk.
    pub fn translate(&self, gpa: u64) -> Option<(HostPhysAddr, u64)> {
        self.chunks.iter().find(|(g, _, len)| *g <= gpa && gpa < g + len).map(|&(g, h, len)| {
            (HostPhysAddr::new(h.as_u64() + (gpa - g)), len - (gpa - g))
        })
    }
}

/// Page-table memory for a domU's EPT, each table recorded as the domain's.
struct OwnedTables<'a>(&'a mut Vec<(HostPhysAddr, FrameCount)>);

impl TableMemory for OwnedTables<'_> {
    fn alloc_table(&mut self) -> Option<HostPhysAddr> {
        let t = IdentityTables.alloc_table()?;
        self.0.push((t, FrameCount::new(1)));
        Some(t)
    }
    fn read(&self, table: HostPhysAddr, index: usize) -> u64 {
        IdentityTables.read(table, index)
    }
    fn write(&mut self, table: HostPhysAddr, index: usize, value: u64) {
        IdentityTables.write(table, index, value);
    }
}

/// Frees what was taken so far when building fails.
fn give_back(owned: &[(HostPhysAddr, FrameCount)]) {
    for &(s, c) in owned {
        crate::canaries::returned(s, c.as_u64());
    }
    let mut fa = FRAMES.lock();
    for &(s, c) in owned {
        let _ = fa.free(s, c);
    }
}

fn one_frame(owned: &mut Vec<(HostPhysAddr, FrameCount)>) -> Result<HostPhysAddr, Status> {
    let f = frames::allocate().map_err(|_| Status::NoMemory)?;
    owned.push((f, FrameCount::new(1)));
    fill_frame(f, 0);
    Ok(f)
}

/// Allocates `pages` of zeroed RAM (2 MiB chunks where the pool has them)
/// and maps it at guest-physical 0 in `ept`.
fn build_ram(
    pages: u64,
    ept: &mut PageTable<Ept>,
    owned: &mut Vec<(HostPhysAddr, FrameCount)>,
) -> Result<Vec<(u64, HostPhysAddr, u64)>, Status> {
    let mut chunks: Vec<(u64, HostPhysAddr, u64)> = Vec::new();
    let mut gpa = 0;
    let mut left = pages;
    while left > 0 {
        let big = if left >= CHUNK_FRAMES {
            frames::allocate_contiguous(FrameCount::new(CHUNK_FRAMES), CHUNK_FRAMES * PAGE_SIZE).ok()
        } else {
            None
        };
        let (hpa, n) = match big {
            Some(a) => (a, CHUNK_FRAMES),
            None => (frames::allocate().map_err(|_| Status::NoMemory)?, 1),
        };
        owned.push((hpa, FrameCount::new(n)));
        for i in 0..n {
            fill_frame(HostPhysAddr::new(hpa.as_u64() + i * PAGE_SIZE), 0);
        }
        match chunks.last_mut() {
            Some((g, h, len)) if h.as_u64() + *len == hpa.as_u64() && *g + *len == gpa => *len += n * PAGE_SIZE,
            _ => chunks.push((gpa, hpa, n * PAGE_SIZE)),
        }
        gpa += n * PAGE_SIZE;
        left -= n;
    }
    let flags = EptPerms::ReadWriteExecute.flags(EptMemoryType::WriteBack);
    for &(g, h, len) in &chunks {
        ept.map(&mut OwnedTables(owned), g, h, ByteSize::new(len), flags, false).map_err(|_| Status::NoMemory)?;
    }
    Ok(chunks)
}

/// Builds a paused domain (not yet in the table).
fn build(caps: VmxCaps, apic_khz: u64, id: u32, pages: u64, vcpus: u32) -> Result<Domain, Status> {
    let cpus = (0..percpu::MAX_CPUS).take_while(|&i| percpu::get(i).online.load(Ordering::Acquire)).count();
    if pages == 0 || pages > MAX_PAGES || vcpus == 0 || vcpus as usize > cpus {
        return Err(Status::InvalidArgument);
    }
    // Everything it needs beyond RAM is a few dozen pages (tables, bitmaps,
    // per-vCPU VMCS and APIC pages); refuse early rather than half-build.
    if frames::free_frames().as_u64() < pages + pages / 256 + 64 {
        return Err(Status::NoMemory);
    }
    let mut owned: Vec<(HostPhysAddr, FrameCount)> = Vec::new();
    let result = (|| {
        let mut ept = PageTable::<Ept>::new(&mut OwnedTables(&mut owned)).map_err(|_| Status::NoMemory)?;
        let chunks = build_ram(pages, &mut ept, &mut owned)?;
        let apic_access = one_frame(&mut owned)?;
        ept.map(
            &mut OwnedTables(&mut owned),
            APIC_GPA,
            apic_access,
            ByteSize::new(PAGE_SIZE),
            EptPerms::ReadWrite.flags(EptMemoryType::WriteBack),
            false,
        )
        .map_err(|_| Status::NoMemory)?;
        let msr_page = one_frame(&mut owned)?;
        write_volatile(msr_page, &MsrBitmap::for_domu().0);
        let io_pages = frames::allocate_contiguous(FrameCount::new(2), PAGE_SIZE).map_err(|_| Status::NoMemory)?;
        owned.push((io_pages, FrameCount::new(2)));
        write_volatile(io_pages, &IoBitmap::trap_all().0);
        let apic_ids: Vec<u32> = (0..vcpus).collect();
        let mut d = Domain::new(
            caps,
            Eptp::of(&ept).as_u64(),
            apic_access,
            msr_page,
            io_pages,
            apic_khz,
            crate::domu::acpi_tables::DEFAULT_PM1A_CNT_PORT,
            Some(crate::domu::acpi_tables::S5_SLP_TYP),
            apic_ids,
            cpus,
        );
        // VPIDs: dom0 has 1..=cpus; each domU a block of 64.
        d.vpid_base = 64 + ((id % 1000) * 64) as u16;
        d.id = id;
        d.ram.call_once(|| chunks.iter().map(|&(g, _, len)| (g, g + len)).collect());
        Ok((d, chunks))
    })();
    match result {
        Ok((mut d, chunks)) => {
            d.domu = Some(DomuParts {
                lifecycle: spin::Mutex::new(Lifecycle::new()),
                chunks,
                owned,
                memory_pages: pages,
                vcpus,
                entry: spin::Mutex::new(None),
                uart: spin::Mutex::new(Uart16550::new()),
                ioapic: spin::Mutex::new(IoApic::new(crate::domu::acpi_tables::DEFAULT_IOAPIC.id)),
                pm1_enable: core::sync::atomic::AtomicU16::new(0),
                unbacked_reads: core::sync::atomic::AtomicU64::new(0),
                unbacked_writes: core::sync::atomic::AtomicU64::new(0),
            });
            Ok(d)
        }
        Err(e) => {
            give_back(&owned);
            Err(e)
        }
    }
}

fn find(id: u32) -> Result<Arc<Domain>, Status> {
    DOMUS.lock().get(id).cloned().ok_or(Status::NoSuchDomain)
}

fn parts(d: &Domain) -> Result<&DomuParts, Status> {
    d.domu.as_ref().ok_or(Status::NotPermitted)
}

/// Kicks every CPU out of its guest or its wait, so it looks at its vCPUs.
fn kick_all() {
    let me = percpu::current_index();
    for i in (0..percpu::MAX_CPUS).take_while(|&i| percpu::get(i).online.load(Ordering::Acquire)) {
        if i != me {
            lapic::send_fixed(percpu::get(i).apic_id.load(Ordering::Relaxed), idt::VECTOR_IPI);
        }
    }
}

/// The CPU that runs vCPU `index` of domain `id`: spread over the CPUs,
/// starting after the boot CPU.
fn home_cpu(id: u32, index: usize, cpus: usize) -> usize {
    (id as usize + index) % cpus.max(1)
}

/// The state a vCPU starts in for `mode`.
fn entry_state(mode: EntryMode) -> (EntryState, u64, u64) {
    match mode {
        EntryMode::Pvh { rip, start_info } => (EntryState::protected32(u64::from(rip)), u64::from(start_info), 0),
        EntryMode::Linux64 { rip, boot_params, cr3, gdt_base, gdt_limit } => {
            let s = EntryState {
                cr0: 1 | (1 << 4) | (1 << 31), // PE, ET, PG
                cr3,
                cr4: 1 << 5, // PAE
                efer: (1 << 8) | (1 << 10), // LME, LMA
                rip,
                rsp: 0,
                rflags: 2,
                // __BOOT_CS / __BOOT_DS of the 64-bit boot protocol.
                cs: Segment { selector: 0x10, base: 0, limit: 0xFFFF_FFFF, access: ar::CODE64 },
                data: Segment { selector: 0x18, base: 0, limit: 0xFFFF_FFFF, access: ar::DATA32 },
                gdtr: (gdt_base, u32::from(gdt_limit)),
                idtr: (0, 0),
            };
            (s, 0, boot_params)
        }
    }
}

/// Creates a paused domU; returns its id.
pub fn create(caps: VmxCaps, apic_khz: u64, name: &str, pages: u64, vcpus: u32) -> Result<u32, Status> {
    let mut table = DOMUS.lock();
    let id = table.insert(name, |id| build(caps, apic_khz, id, pages, vcpus).map(Arc::new))?;
    log::info!("domain {id} '{name}' created: {} KiB, {vcpus} vCPU(s), paused", pages * 4);
    Ok(id)
}

/// Destroys a domU: out of the table at once, its frames back when its
/// vCPUs are gone.
pub fn destroy(id: u32) -> Result<(), Status> {
    let d = DOMUS.lock().remove(id).ok_or(Status::NoSuchDomain)?;
    let p = parts(&d)?;
    p.lifecycle.lock().destroy()?;
    d.request_stop(3);
    log::info!("domain {id} destroyed");
    kick_all();
    Ok(())
}

/// Pauses a domU.
pub fn pause(id: u32) -> Result<(), Status> {
    let d = find(id)?;
    parts(&d)?.lifecycle.lock().pause()?;
    kick_all();
    Ok(())
}

/// Unpauses a domU; the first time, its vCPUs are sent to their CPUs.
pub fn unpause(id: u32) -> Result<(), Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    let entry = *p.entry.lock();
    let first = {
        let mut l = p.lifecycle.lock();
        if l.is_loadable() && entry.is_none() {
            return Err(Status::BadState);
        }
        l.unpause()?
    };
    if first {
        let cpus = d.cpus();
        for index in 0..p.vcpus as usize {
            let start = if index == 0 { entry } else { None };
            let cpu = home_cpu(id, index, cpus);
            INBOX[cpu].lock().push(VcpuRequest { domain: d.clone(), index, start });
        }
    }
    kick_all();
    Ok(())
}

/// Copies `data` into a domU that never ran.
pub fn copy_in(id: u32, gpa: u64, data: &[u8]) -> Result<(), Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    if !p.lifecycle.lock().is_loadable() {
        return Err(Status::BadState);
    }
    let end = gpa.checked_add(data.len() as u64).ok_or(Status::BadAddress)?;
    if end > p.memory_pages * PAGE_SIZE {
        return Err(Status::BadAddress);
    }
    let mut done = 0usize;
    while done < data.len() {
        let (hpa, room) = p.translate(gpa + done as u64).ok_or(Status::BadAddress)?;
        let n = (data.len() - done).min(usize::try_from(room).unwrap_or(usize::MAX));
        write_volatile(hpa, &data[done..done + n]);
        done += n;
    }
    Ok(())
}

/// Sets how a domU's boot vCPU starts.
pub fn set_entry(id: u32, vcpu: u32, mode: EntryMode) -> Result<(), Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    if vcpu != 0 {
        return Err(Status::InvalidArgument);
    }
    if !p.lifecycle.lock().is_loadable() {
        return Err(Status::BadState);
    }
    *p.entry.lock() = Some(entry_state(mode));
    Ok(())
}

/// Asks a domU to shut down. Not yet: the guest-visible signal (an ACPI
/// power-button event through the emulated SCI) needs the domU interrupt
/// controller, which is not wired yet.
pub fn shutdown(id: u32, _reason: ShutdownReason) -> Result<(), Status> {
    find(id)?;
    Err(Status::NotImplemented)
}

/// Takes up to `max` bytes of a domU's console output.
pub fn console_read(id: u32, max: usize) -> Result<Vec<u8>, Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    let mut out = alloc::vec![0u8; max.min(64 * 1024)];
    let n = p.uart.lock().take_output(&mut out);
    out.truncate(n);
    Ok(out)
}

/// Types bytes on a domU's console.
pub fn console_write(id: u32, data: &[u8]) -> Result<usize, Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    let n = p.uart.lock().push_input(data);
    super::domu_mmio::uart_line(None, &d);
    Ok(n)
}

/// The ABI's description of every domU.
pub fn infos() -> Vec<DomainInfo> {
    let table = DOMUS.lock();
    let mut all = Vec::new();
    for (id, name, d) in table.iter() {
        let Some(p) = d.domu.as_ref() else { continue };
        let mut i = DomainInfo::new_zeroed();
        i.domid = id;
        let l = *p.lifecycle.lock();
        i.state = l.state() as u32;
        i.shutdown_reason = l.reason() as u32;
        let n = name.len().min(i.name.len() - 1);
        i.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        i.memory_pages = p.memory_pages;
        i.max_memory_pages = p.memory_pages;
        i.vcpus = p.vcpus;
        i.max_vcpus = p.vcpus;
        let khz = crate::logger::tsc_khz().max(1);
        i.cpu_time_ns = (u128::from(d.guest_ticks.load(Ordering::Relaxed)) * 1_000_000 / u128::from(khz)) as u64;
        all.push(i);
    }
    all
}

/// Records that a domU's vCPU stopped for good (`reason`), as the guest's
/// own shutdown.
pub fn guest_stopped(d: &Domain, reason: ShutdownReason) {
    if let Some(p) = d.domu.as_ref() {
        p.lifecycle.lock().shut_down(reason);
        log::info!("domain {} shut down ({reason:?})", d.id);
    }
}
