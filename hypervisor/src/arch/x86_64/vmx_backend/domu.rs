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
use super::domu_parts::DomuParts;
use super::domu_parts::OwnedTables;
use super::setup::{EntryState, Segment, ar};
use super::vcpu_homes;
use crate::arch::x86_64::percpu;
use crate::arch::x86_64::physmem::{fill_frame, phys_slice, write_volatile};
use crate::arch::x86_64::vmcs::invept_all;
use crate::domains::lifecycle::Lifecycle;
use crate::domains::registry::Registry;
use crate::domu::lazy_ram::LazyRam;
use crate::hypercall::GuestMemory;
use crate::hypercall::lifecycle::EntryMode;
use crate::mm::addr::{ByteSize, FrameCount, HostPhysAddr, PAGE_SIZE, PhysRange};
use crate::mm::ept::{Ept, EptMemoryType, EptPerms, Eptp};
use crate::mm::frames::{self, FRAMES};
use crate::mm::page_table::PageTable;
use crate::vcpu::bitmaps::{IoBitmap, MsrBitmap};
use crate::vdev::ioapic::IoApic;
use crate::vdev::pm1_events::Pm1Events;
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

/// The most vCPUs a domU can have.
pub const MAX_VCPUS: u32 = 32;

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

/// Allocates `pages` of RAM (2 MiB chunks where the pool has them) for
/// guest-physical 0 onwards. Not zeroed and not mapped yet: see
/// [`crate::domu::lazy_ram`].
fn build_ram(
    pages: u64,
    owned: &mut Vec<(HostPhysAddr, FrameCount)>,
) -> Result<Vec<(u64, u64, u64)>, Status> {
    let mut chunks: Vec<(u64, u64, u64)> = Vec::new();
    let mut gpa = 0;
    let mut left = pages;
    while left > 0 {
        let big = if left >= CHUNK_FRAMES {
            frames::allocate_contiguous(FrameCount::new(CHUNK_FRAMES), CHUNK_FRAMES * PAGE_SIZE)
                .ok()
        } else {
            None
        };
        let (hpa, n) = match big {
            Some(a) => (a, CHUNK_FRAMES),
            None => (frames::allocate().map_err(|_| Status::NoMemory)?, 1),
        };
        owned.push((hpa, FrameCount::new(n)));
        let hpa = hpa.as_u64();
        match chunks.last_mut() {
            Some((g, h, len)) if *h + *len == hpa && *g + *len == gpa => *len += n * PAGE_SIZE,
            _ => chunks.push((gpa, hpa, n * PAGE_SIZE)),
        }
        gpa += n * PAGE_SIZE;
        left -= n;
    }
    Ok(chunks)
}

/// Builds a paused domain (not yet in the table).
fn build(caps: VmxCaps, apic_khz: u64, id: u32, pages: u64, vcpus: u32) -> Result<Domain, Status> {
    let cpus = (0..percpu::MAX_CPUS)
        .take_while(|&i| percpu::get(i).online.load(Ordering::Acquire))
        .count();
    if pages == 0 || pages > MAX_PAGES || vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(Status::InvalidArgument);
    }
    // Everything it needs beyond RAM is a few dozen pages (tables, bitmaps,
    // per-vCPU VMCS and APIC pages); refuse early rather than half-build.
    if frames::free_frames().as_u64() < pages + pages / 256 + 64 {
        return Err(Status::NoMemory);
    }
    let mut owned: Vec<(HostPhysAddr, FrameCount)> = Vec::new();
    let result = (|| {
        let mut ept =
            PageTable::<Ept>::new(&mut OwnedTables(&mut owned)).map_err(|_| Status::NoMemory)?;
        let chunks = build_ram(pages, &mut owned)?;
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
        let io_pages = frames::allocate_contiguous(FrameCount::new(2), PAGE_SIZE)
            .map_err(|_| Status::NoMemory)?;
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
        d.ram
            .call_once(|| chunks.iter().map(|&(g, _, len)| (g, g + len)).collect());
        Ok((d, chunks, ept))
    })();
    match result {
        Ok((mut d, chunks, ept)) => {
            d.domu = Some(DomuParts {
                lifecycle: spin::Mutex::new(Lifecycle::new()),
                ram: spin::Mutex::new(LazyRam::new(&chunks)),
                ept: spin::Mutex::new(ept),
                owned: spin::Mutex::new(owned),
                memory_pages: pages,
                vcpus,
                entry: spin::Mutex::new(None),
                uart: spin::Mutex::new(Uart16550::new()),
                ioapic: spin::Mutex::new(IoApic::new(crate::domu::acpi_tables::DEFAULT_IOAPIC.id)),
                pm1: spin::Mutex::new(Pm1Events::new()),
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

/// The state a vCPU starts in for `mode`.
fn entry_state(mode: EntryMode) -> (EntryState, u64, u64) {
    match mode {
        EntryMode::Pvh { rip, start_info } => (
            EntryState::protected32(u64::from(rip)),
            u64::from(start_info),
            0,
        ),
        EntryMode::Linux64 {
            rip,
            boot_params,
            cr3,
            gdt_base,
            gdt_limit,
        } => {
            let s = EntryState {
                cr0: 1 | (1 << 4) | (1 << 31), // PE, ET, PG
                cr3,
                cr4: 1 << 5,                // PAE
                efer: (1 << 8) | (1 << 10), // LME, LMA
                rip,
                rsp: 0,
                rflags: 2,
                // __BOOT_CS / __BOOT_DS of the 64-bit boot protocol.
                cs: Segment {
                    selector: 0x10,
                    base: 0,
                    limit: 0xFFFF_FFFF,
                    access: ar::CODE64,
                },
                data: Segment {
                    selector: 0x18,
                    base: 0,
                    limit: 0xFFFF_FFFF,
                    access: ar::DATA32,
                },
                gdtr: (gdt_base, u32::from(gdt_limit)),
                idtr: (0, 0),
            };
            (s, 0, boot_params)
        }
    }
}

/// Creates a paused domU; returns its id.
pub fn create(
    caps: VmxCaps,
    apic_khz: u64,
    name: &str,
    pages: u64,
    vcpus: u32,
) -> Result<u32, Status> {
    let mut table = DOMUS.lock();
    let id = table.insert(name, |id| {
        let d = Arc::new(build(caps, apic_khz, id, pages, vcpus)?);
        // Known to the scheduler, paused, its vCPUs allowed on every CPU
        // that runs vCPUs.
        vcpu_homes::add_domain(&d, vcpu_homes::joined()).map_err(|e| {
            log::error!("domain {id}: the scheduler refused it: {e:?}");
            Status::InvalidArgument
        })?;
        Ok(d)
    })?;
    drop(table);
    log::info!(
        "domain {id} '{name}' created: {} KiB, {vcpus} vCPU(s), paused",
        pages * 4
    );
    super::notify::raise(dom0_abi::event::EVENT_DOMAIN_CREATED);
    Ok(id)
}

/// Destroys a domU: out of the table at once, its frames back when its
/// vCPUs are gone.
pub fn destroy(id: u32) -> Result<(), Status> {
    let d = DOMUS.lock().remove(id).ok_or(Status::NoSuchDomain)?;
    let p = parts(&d)?;
    p.lifecycle.lock().destroy()?;
    d.request_stop(3);
    vcpu_homes::domain_stopping(id);
    log::info!("domain {id} destroyed");
    // Where its time went, for `xl-rs dmesg` and `cargo xtask bench
    // domu-create`: to the log ring only, so that the serial line's speed
    // does not slow the destroy down.
    let guest_ms = d.guest_ticks.load(Ordering::Relaxed) / crate::logger::tsc_khz().max(1);
    let ring = crate::logger::RING_ONLY;
    log::info!(target: ring, "domain {id}: {guest_ms} ms in guest mode");
    d.log_exit_stats_to(&alloc::format!("domain {id}: VM exit statistics"), ring);
    super::notify::raise(dom0_abi::event::EVENT_DOMAIN_DESTROYED);
    Ok(())
}

/// Pauses a domU.
pub fn pause(id: u32) -> Result<(), Status> {
    let d = find(id)?;
    parts(&d)?.lifecycle.lock().pause()?;
    vcpu_homes::pause(id);
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
        if l.is_loadable() {
            // Before any vCPU can run (the lifecycle lock is held).
            p.finish_loading();
        }
        l.unpause()?
    };
    if first {
        vcpu_homes::start_domain(&d, entry);
    } else {
        vcpu_homes::unpause(id);
    }
    Ok(())
}

/// Copies `len` bytes from dom0's `src_gpa` (checked) into a domU that
/// never ran, at its guest-physical `gpa`: straight from dom0's memory into
/// the domU's frames, a chunk at a time.
pub fn copy_in(
    id: u32,
    gpa: u64,
    src_gpa: u64,
    len: usize,
    mem: &dyn GuestMemory,
) -> Result<(), Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    // Held throughout: the domain cannot start running while it is loaded.
    let lifecycle = p.lifecycle.lock();
    if !lifecycle.is_loadable() {
        return Err(Status::BadState);
    }
    let end = gpa.checked_add(len as u64).ok_or(Status::BadAddress)?;
    if end > p.memory_pages * PAGE_SIZE {
        return Err(Status::BadAddress);
    }
    if !p.prepare_copy(gpa, len as u64) {
        return Err(Status::NoMemory);
    }
    let mut done = 0usize;
    while done < len {
        let (hpa, room) = p.translate(gpa + done as u64).ok_or(Status::BadAddress)?;
        let n = (len - done).min(usize::try_from(room).unwrap_or(usize::MAX));
        // SAFETY: the domain's own frames (`translate`); the domain never ran
        // and cannot start (its lifecycle is locked): nothing else reads or
        // writes these frames while `dest` lives.
        let dest = unsafe {
            phys_slice(PhysRange::new(
                hpa,
                HostPhysAddr::new(hpa.as_u64() + n as u64),
            ))
        };
        if let Err(e) = mem.read(src_gpa + done as u64, dest) {
            // The pages count as written (`prepare_copy`): write zeros
            // where the copy did not happen, so nothing stale remains.
            dest.fill(0);
            zero_guest_range(p, gpa + (done + n) as u64, len - done - n);
            return Err(e);
        }
        done += n;
    }
    drop(lifecycle);
    Ok(())
}

/// Zeroes `len` bytes of a loading domU's RAM at `gpa` (mapped pieces only).
fn zero_guest_range(p: &DomuParts, gpa: u64, len: usize) {
    let mut done = 0usize;
    while done < len {
        let Some((hpa, room)) = p.translate(gpa + done as u64) else {
            return;
        };
        let n = (len - done).min(usize::try_from(room).unwrap_or(usize::MAX));
        // SAFETY: as in the copy that calls this: the loading domain's own
        // frames, which nothing else touches while its lifecycle is locked.
        unsafe {
            phys_slice(PhysRange::new(
                hpa,
                HostPhysAddr::new(hpa.as_u64() + n as u64),
            ))
        }
        .fill(0);
        done += n;
    }
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

/// Asks a domU to power off or reboot (`reason`): presses its ACPI power
/// button (PWRBTN_STS, and the SCI if the guest enabled the event). A guest
/// can only answer a power button by powering off; after a reboot request
/// that power-off is reported as a reboot (see
/// [`crate::domains::lifecycle`]). A guest that has not enabled the event yet
/// (no ACPI button driver loaded) sees the press when it does.
pub fn shutdown(id: u32, reason: ShutdownReason) -> Result<(), Status> {
    let d = find(id)?;
    let p = parts(&d)?;
    p.lifecycle.lock().request(reason)?;
    let listening = {
        let mut pm1 = p.pm1.lock();
        pm1.press_power_button();
        pm1.power_button_enabled()
    };
    if listening {
        log::info!("domain {id}: power button pressed ({reason:?} requested)");
    } else {
        log::info!(
            "domain {id}: power button pressed ({reason:?} requested); the guest has not enabled the event yet"
        );
    }
    super::domu_irq::sci_line(None, &d);
    Ok(())
}

/// A domU's EPT violation at `gpa`: if it is RAM not yet used, zeroes and
/// maps its piece; `true` when the access can be retried.
pub fn populate_on_fault(d: &Domain, gpa: u64) -> bool {
    let Some(p) = d.domu.as_ref() else {
        return false;
    };
    let mut ram = p.ram.lock();
    let Some(i) = ram.piece_of(gpa) else {
        return false;
    };
    if ram.is_populated(i) {
        // Another vCPU populated it meanwhile; this CPU's view is stale.
        drop(ram);
        invept_all();
        return true;
    }
    let ok = p.populate(&mut ram, i);
    drop(ram);
    invept_all();
    ok
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
    super::domu_irq::uart_line(None, &d);
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
        i.cpu_time_ns = (u128::from(d.guest_ticks.load(Ordering::Relaxed)) * 1_000_000
            / u128::from(khz)) as u64;
        all.push(i);
    }
    all
}

/// Records that a domU's vCPU stopped for good (`reason`), as the guest's
/// own shutdown.
pub fn guest_stopped(d: &Domain, reason: ShutdownReason) {
    if let Some(p) = d.domu.as_ref() {
        let (changed, recorded) = {
            let mut l = p.lifecycle.lock();
            let before = l.state();
            l.shut_down(reason);
            (l.state() != before, l.reason())
        };
        if changed {
            if recorded == reason {
                log::info!("domain {} shut down ({reason:?})", d.id);
            } else {
                log::info!(
                    "domain {} shut down ({recorded:?}: the guest's {reason:?} answers the toolstack's request)",
                    d.id
                );
            }
            super::notify::raise(dom0_abi::event::EVENT_DOMAIN_SHUTDOWN);
        }
    }
}
