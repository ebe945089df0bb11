//! What only a domU's `Domain` has on VT-x: its lazily zeroed RAM, its EPT
//! and every frame it owns (given back on drop), its boot entry, and its
//! emulated devices (UART, I/O APIC, PM1 events). A leaf of the backend:
//! `domain.rs` holds one, `domu.rs` builds and operates on it,
//! `domu_mmio.rs` emulates its I/O APIC page and `domu_irq.rs` drives its
//! interrupt lines.

use alloc::vec::Vec;

use super::setup::EntryState;
use crate::arch::x86_64::paging::IdentityTables;
use crate::arch::x86_64::physmem::fill_frame;
use crate::domains::lifecycle::Lifecycle;
use crate::domu::lazy_ram::LazyRam;
use crate::mm::addr::{ByteSize, FrameCount, HostPhysAddr, PAGE_SIZE};
use crate::mm::ept::{Ept, EptMemoryType, EptPerms};
use crate::mm::frames::FRAMES;
use crate::mm::page_table::{PageTable, TableMemory};
use crate::vdev::ioapic::IoApic;
use crate::vdev::pm1_events::Pm1Events;
use crate::vdev::uart16550::Uart16550;

/// What only a domU has.
#[derive(Debug)]
pub struct DomuParts {
    /// Its lifecycle.
    pub lifecycle: spin::Mutex<Lifecycle>,
    /// RAM: (guest-physical start, host frames, bytes), in order.
    /// Its RAM, zeroed and mapped piece by piece on first use (see
    /// [`crate::domu::lazy_ram`]).
    pub(super) ram: spin::Mutex<LazyRam>,
    /// Its EPT (RAM pieces are added to it as they are zeroed).
    pub(super) ept: spin::Mutex<PageTable<Ept>>,
    /// Every frame it took (RAM, EPT tables, bitmaps, APIC-access page).
    pub(super) owned: spin::Mutex<Vec<(HostPhysAddr, FrameCount)>>,
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
    /// Its ACPI PM1a event registers (the power button).
    pub pm1: spin::Mutex<Pm1Events>,
    /// Reads from unbacked guest-physical addresses so far (they read
    /// all-ones: `vcpu::gpa_policy`).
    pub unbacked_reads: core::sync::atomic::AtomicU64,
    /// Writes to unbacked guest-physical addresses so far (dropped).
    pub unbacked_writes: core::sync::atomic::AtomicU64,
}

impl Drop for DomuParts {
    fn drop(&mut self) {
        for &(start, count) in self.owned.get_mut().iter() {
            crate::canaries::returned(start, count.as_u64());
        }
        let mut fa = FRAMES.lock();
        for &(start, count) in self.owned.get_mut().iter() {
            if fa.free(start, count).is_err() {
                log::error!(
                    "domU teardown: frames at {start} ({} pages) were not allocated",
                    count.as_u64()
                );
            }
        }
    }
}

impl DomuParts {
    /// The host address of guest-physical `gpa` and how many bytes follow
    /// it in the same chunk.
    pub fn translate(&self, gpa: u64) -> Option<(HostPhysAddr, u64)> {
        self.ram
            .lock()
            .translate(gpa)
            .map(|(h, room)| (HostPhysAddr::new(h), room))
    }

    /// Zeroes and maps piece `i` of the RAM if it is not yet (the caller
    /// holds `ram`). `false`: the EPT could not grow (out of memory).
    pub(super) fn populate(&self, ram: &mut LazyRam, i: usize) -> bool {
        if ram.is_populated(i) {
            return true;
        }
        let Some(piece) = ram.piece(i) else {
            return false;
        };
        for off in (0..piece.len).step_by(PAGE_SIZE as usize) {
            fill_frame(HostPhysAddr::new(piece.hpa + off), 0);
        }
        if !self.map_piece(piece.gpa, piece.hpa, piece.len) {
            return false;
        }
        ram.mark_populated(i);
        true
    }

    /// Prepares every piece `[gpa, gpa + len)` touches for a copy of the
    /// toolstack (see [`crate::domu::lazy_ram`]): maps untouched pieces and
    /// zeroes the pages the copy writes only in part. `false` if the range
    /// is not wholly RAM or the EPT could not grow.
    pub fn prepare_copy(&self, gpa: u64, len: u64) -> bool {
        let mut ram = self.ram.lock();
        let pieces = ram.pieces_in(gpa, len);
        if pieces.is_empty() && len > 0 {
            return false;
        }
        for i in pieces {
            let Some(piece) = ram.piece(i) else {
                return false;
            };
            let prep = ram.begin_copy(i, gpa, len);
            for &page in &prep.zero_pages {
                fill_frame(HostPhysAddr::new(page), 0);
            }
            if prep.map && !self.map_piece(piece.gpa, piece.hpa, piece.len) {
                return false;
            }
        }
        true
    }

    /// Zeroes what the toolstack's copies left unwritten, before the domain
    /// first runs.
    pub fn finish_loading(&self) {
        let runs = self.ram.lock().finish_loading();
        for (hpa, len) in runs {
            for off in (0..len).step_by(PAGE_SIZE as usize) {
                fill_frame(HostPhysAddr::new(hpa + off), 0);
            }
        }
    }

    /// Maps `len` bytes of RAM at `gpa` in the domain's EPT.
    fn map_piece(&self, gpa: u64, hpa: u64, len: u64) -> bool {
        let flags = EptPerms::ReadWriteExecute.flags(EptMemoryType::WriteBack);
        let mut owned = self.owned.lock();
        self.ept
            .lock()
            .map(
                &mut OwnedTables(&mut owned),
                gpa,
                HostPhysAddr::new(hpa),
                ByteSize::new(len),
                flags,
                false,
            )
            .is_ok()
    }
}

/// Page-table memory for a domU's EPT, each table recorded as the domain's.
pub(super) struct OwnedTables<'a>(pub(super) &'a mut Vec<(HostPhysAddr, FrameCount)>);

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
