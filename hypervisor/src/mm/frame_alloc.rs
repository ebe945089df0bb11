//! The physical frame allocator: hands out 4 KiB host-physical frames, singly
//! or as aligned runs, before any heap exists (it needs no allocation itself).
//!
//! It keeps two fixed-capacity lists of page-aligned ranges, both sorted,
//! disjoint and with adjacent ranges merged:
//!
//! - *managed*: all the memory ever added (usable RAM minus reserved ranges);
//! - *free*: the part of it not handed out.
//!
//! Frames come from the top of the highest free range, so that low memory
//! (needed for AP start-up trampolines below 1 MiB and for devices limited to
//! 32-bit DMA) lasts as long as possible. A free is checked against both lists:
//! memory that was never added, or that is already free (a double free),
//! is refused, so the accounting always balances to the page.

use core::fmt;

use crate::mm::addr::{FrameCount, HostPhysAddr, PAGE_SIZE, PhysRange};

#[cfg(test)]
mod tests;

/// Capacity of each range list. Memory maps have a few dozen entries; every
/// reserved range inside usable memory and every hole left by an allocation
/// in the middle of a range costs one more.
pub const MAX_FREE_RANGES: usize = 256;

/// The highest page-aligned address (the last page of the 64-bit space can
/// never be part of a half-open range).
const TOP: u64 = !(PAGE_SIZE - 1);

/// Why an allocator operation failed. The allocator is unchanged after any
/// error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// No free range can satisfy the request.
    OutOfMemory,
    /// The request needs one more list entry (a new range, or a range split
    /// in two) and the list holds [`MAX_FREE_RANGES`] already.
    TooManyRanges,
    /// An address that must be 4 KiB aligned is not.
    Misaligned,
    /// The frames to free are not all allocated: part of them is free already
    /// (a double free) or was never added to the allocator.
    NotAllocated,
    /// The frames to claim are not all free.
    NotFree,
    /// Usable memory added twice (overlapping memory map entries).
    AlreadyAdded,
    /// A zero count, an alignment that is not a power of two, or a range
    /// that wraps around the address space.
    BadRequest,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutOfMemory => "out of physical memory: no free range is large enough",
            Self::TooManyRanges => {
                "the frame allocator's range list is full (memory too fragmented)"
            }
            Self::Misaligned => "the physical address is not 4 KiB aligned",
            Self::NotAllocated => {
                "the frames are not allocated (double free, or memory never given to the allocator)"
            }
            Self::NotFree => "the requested frames are not all free",
            Self::AlreadyAdded => "the usable memory overlaps memory added before",
            Self::BadRequest => {
                "bad allocation request (zero frames, alignment not a power of two, or a range \
                 wrapping around the address space)"
            }
        })
    }
}

/// A sorted list of disjoint, non-adjacent, non-empty, page-aligned ranges of
/// fixed capacity.
#[derive(Clone)]
struct RangeList {
    ranges: [PhysRange; MAX_FREE_RANGES],
    len: usize,
}

/// A half-open range from raw addresses.
const fn range(start: u64, end: u64) -> PhysRange {
    PhysRange::new(HostPhysAddr::new(start), HostPhysAddr::new(end))
}

impl RangeList {
    const fn new() -> Self {
        Self {
            ranges: [range(0, 0); MAX_FREE_RANGES],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    fn is_full(&self) -> bool {
        self.len == MAX_FREE_RANGES
    }

    /// Index of the first range ending after `addr` (the one that holds
    /// `addr`, or else the first one above it).
    fn search(&self, addr: HostPhysAddr) -> usize {
        self.as_slice().partition_point(|r| r.end <= addr)
    }

    /// Whether some range shares a byte with `r`.
    fn overlaps(&self, r: PhysRange) -> bool {
        self.as_slice()
            .get(self.search(r.start))
            .is_some_and(|found| found.start < r.end)
    }

    /// Index of the range that contains all of `r`.
    fn covering(&self, r: PhysRange) -> Option<usize> {
        let i = self.search(r.start);
        let found = self.as_slice().get(i)?;
        (found.start <= r.start && r.end <= found.end).then_some(i)
    }

    fn insert_at(&mut self, i: usize, r: PhysRange) {
        self.ranges.copy_within(i..self.len, i + 1);
        self.ranges[i] = r;
        self.len += 1;
    }

    fn remove_at(&mut self, i: usize) {
        self.ranges.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }

    /// Whether inserting `r` (overlapping no range) would take a new entry,
    /// rather than extending a neighbour.
    fn needs_entry(&self, r: PhysRange) -> bool {
        let i = self.search(r.start);
        let joins_left = i > 0 && self.ranges[i - 1].end == r.start;
        let joins_right = i < self.len && self.ranges[i].start == r.end;
        !joins_left && !joins_right
    }

    /// Adds `r`, which overlaps no range, merging it with its neighbours.
    fn insert(&mut self, r: PhysRange) -> Result<(), AllocError> {
        let i = self.search(r.start);
        let joins_left = i > 0 && self.ranges[i - 1].end == r.start;
        let joins_right = i < self.len && self.ranges[i].start == r.end;
        match (joins_left, joins_right) {
            (true, true) => {
                self.ranges[i - 1].end = self.ranges[i].end;
                self.remove_at(i);
            }
            (true, false) => self.ranges[i - 1].end = r.end,
            (false, true) => self.ranges[i].start = r.start,
            (false, false) if self.is_full() => return Err(AllocError::TooManyRanges),
            (false, false) => self.insert_at(i, r),
        }
        Ok(())
    }

    /// Whether removing `sub` from range `i` would split it in two.
    fn splits(&self, i: usize, sub: PhysRange) -> bool {
        let whole = self.ranges[i];
        whole.start < sub.start && sub.end < whole.end
    }

    /// Removes `sub`, which lies inside range `i`.
    fn carve(&mut self, i: usize, sub: PhysRange) -> Result<(), AllocError> {
        let whole = self.ranges[i];
        match (whole.start < sub.start, sub.end < whole.end) {
            (false, false) => self.remove_at(i),
            (true, false) => self.ranges[i].end = sub.start,
            (false, true) => self.ranges[i].start = sub.end,
            (true, true) if self.is_full() => return Err(AllocError::TooManyRanges),
            (true, true) => {
                self.ranges[i].end = sub.start;
                self.insert_at(i + 1, range(sub.end.as_u64(), whole.end.as_u64()));
            }
        }
        Ok(())
    }
}

/// Calls `f` with each piece of `[start, end)` (page-aligned) left after
/// taking away every `reserved` range, each rounded outwards to whole pages,
/// in address order.
fn for_each_piece(
    start: u64,
    end: u64,
    reserved: &[PhysRange],
    mut f: impl FnMut(PhysRange) -> Result<(), AllocError>,
) -> Result<(), AllocError> {
    let rounded = |r: &PhysRange| {
        let low = r.start.align_down(PAGE_SIZE).as_u64();
        let high = r
            .end
            .checked_align_up(PAGE_SIZE)
            .map_or(TOP, HostPhysAddr::as_u64);
        (!r.is_empty()).then_some((low, high))
    };
    let mut cursor = start;
    while cursor < end {
        // The lowest reserved range that still overlaps [cursor, end).
        let next = reserved
            .iter()
            .filter_map(rounded)
            .filter(|&(low, high)| low < end && high > cursor)
            .min_by_key(|&(low, _)| low);
        match next {
            None => return f(range(cursor, end)),
            Some((low, high)) => {
                if low > cursor {
                    f(range(cursor, low))?;
                }
                cursor = high;
            }
        }
    }
    Ok(())
}

/// The physical frame allocator. About 8 KiB; meant to live in a static.
#[derive(Clone)]
pub struct FrameAllocator {
    free: RangeList,
    managed: RangeList,
    free_frames: u64,
    total_frames: u64,
}

impl fmt::Debug for FrameAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("free_frames", &self.free_frames)
            .field("total_frames", &self.total_frames)
            .field("free_ranges", &self.free.as_slice())
            .finish()
    }
}

impl Default for FrameAllocator {
    fn default() -> Self {
        Self::empty()
    }
}

impl FrameAllocator {
    /// An allocator with no memory.
    pub const fn empty() -> Self {
        Self {
            free: RangeList::new(),
            managed: RangeList::new(),
            free_frames: 0,
            total_frames: 0,
        }
    }

    /// Adds usable memory: rounds `range`'s start up and end down to 4 KiB,
    /// then takes away every `reserved` range (rounded outwards to whole
    /// pages): the hypervisor image, the modules, the boot information, the
    /// first MiB, ... Adding nothing (all reserved, or less than a page) is
    /// fine. Fails, changing nothing, if the memory overlaps memory added
    /// before, or if the lists have no room for every piece.
    pub fn add_usable(
        &mut self,
        range: PhysRange,
        reserved: &[PhysRange],
    ) -> Result<(), AllocError> {
        let Some(start) = range.start.checked_align_up(PAGE_SIZE) else {
            return Ok(());
        };
        let (start, end) = (start.as_u64(), range.end.align_down(PAGE_SIZE).as_u64());
        // The pieces are separated by reserved pages, so they never merge with
        // each other: each one either extends a range of a list or takes a
        // new entry, whatever the order of insertion.
        let (mut managed_entries, mut free_entries) = (0, 0);
        for_each_piece(start, end, reserved, |piece| {
            if self.managed.overlaps(piece) {
                return Err(AllocError::AlreadyAdded);
            }
            managed_entries += usize::from(self.managed.needs_entry(piece));
            free_entries += usize::from(self.free.needs_entry(piece));
            Ok(())
        })?;
        if self.managed.len + managed_entries > MAX_FREE_RANGES
            || self.free.len + free_entries > MAX_FREE_RANGES
        {
            return Err(AllocError::TooManyRanges);
        }
        for_each_piece(start, end, reserved, |piece| {
            self.managed.insert(piece)?;
            self.free.insert(piece)?;
            let frames = piece.size().frames().as_u64();
            self.free_frames += frames;
            self.total_frames += frames;
            Ok(())
        })
    }

    /// One 4 KiB frame, the highest free one.
    pub fn allocate(&mut self) -> Result<HostPhysAddr, AllocError> {
        let last = self
            .free
            .len
            .checked_sub(1)
            .ok_or(AllocError::OutOfMemory)?;
        let end = self.free.ranges[last].end.as_u64();
        let frame = range(end - PAGE_SIZE, end);
        // Taking the top of a range never splits it.
        self.take(last, frame)?;
        Ok(frame.start)
    }

    /// `count` contiguous frames starting at a multiple of `align` (a power
    /// of two; anything below 4 KiB means 4 KiB), as high as possible: for
    /// 2 MiB chunks of guest memory, say.
    pub fn allocate_contiguous(
        &mut self,
        count: FrameCount,
        align: u64,
    ) -> Result<HostPhysAddr, AllocError> {
        if !align.is_power_of_two() {
            return Err(AllocError::BadRequest);
        }
        let align = align.max(PAGE_SIZE);
        let size = self.request_size(count)?;
        self.allocate_where(|r| {
            let start = r.end.as_u64().checked_sub(size)? & !(align - 1);
            (start >= r.start.as_u64()).then(|| range(start, start + size))
        })
    }

    /// `count` contiguous frames that all lie below `limit`, as high as
    /// possible: for an AP start-up trampoline below 1 MiB, say (if usable
    /// low memory was added).
    pub fn allocate_below(
        &mut self,
        limit: HostPhysAddr,
        count: FrameCount,
    ) -> Result<HostPhysAddr, AllocError> {
        let size = self.request_size(count)?;
        let limit = limit.align_down(PAGE_SIZE);
        self.allocate_where(|r| {
            let top = r.end.min(limit).as_u64();
            let start = top.checked_sub(size).filter(|&s| s >= r.start.as_u64())?;
            Some(range(start, top))
        })
    }

    /// Takes exactly `range` (page-aligned) out of the free memory, for memory
    /// that must be at a given address (dom0's identity-mapped RAM, say).
    pub fn claim(&mut self, range: PhysRange) -> Result<(), AllocError> {
        if !range.start.is_aligned(PAGE_SIZE) || !range.end.is_aligned(PAGE_SIZE) {
            return Err(AllocError::Misaligned);
        }
        if range.is_empty() {
            return Err(AllocError::BadRequest);
        }
        let i = self.free.covering(range).ok_or(AllocError::NotFree)?;
        self.take(i, range)
    }

    /// Returns `count` frames starting at `start`, which must all have been
    /// handed out. Fails, changing nothing, if any of them is free already
    /// (a double free) or was never added ([`AllocError::NotAllocated`]).
    pub fn free(&mut self, start: HostPhysAddr, count: FrameCount) -> Result<(), AllocError> {
        if !start.is_aligned(PAGE_SIZE) {
            return Err(AllocError::Misaligned);
        }
        let size = self.request_size(count)?;
        let end = start
            .as_u64()
            .checked_add(size)
            .ok_or(AllocError::BadRequest)?;
        let freed = range(start.as_u64(), end);
        if self.managed.covering(freed).is_none() || self.free.overlaps(freed) {
            return Err(AllocError::NotAllocated);
        }
        self.free.insert(freed)?;
        self.free_frames += count.as_u64();
        Ok(())
    }

    /// How many frames are free.
    pub fn free_frames(&self) -> FrameCount {
        FrameCount::new(self.free_frames)
    }

    /// How many frames were ever added (free or handed out).
    pub fn total_frames(&self) -> FrameCount {
        FrameCount::new(self.total_frames)
    }

    /// The free ranges, in address order, disjoint and not adjacent.
    pub fn free_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.free.as_slice().iter().copied()
    }

    /// All the memory ever added (usable RAM minus the reserved ranges), in
    /// address order, disjoint and not adjacent.
    pub fn managed_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.managed.as_slice().iter().copied()
    }

    /// The byte size of `count` frames; a zero count is a bad request and a
    /// size past 2^64 can never be satisfied.
    fn request_size(&self, count: FrameCount) -> Result<u64, AllocError> {
        if count.as_u64() == 0 {
            return Err(AllocError::BadRequest);
        }
        count
            .as_u64()
            .checked_mul(PAGE_SIZE)
            .ok_or(AllocError::OutOfMemory)
    }

    /// Removes `sub` from free range `i` and updates the count.
    fn take(&mut self, i: usize, sub: PhysRange) -> Result<(), AllocError> {
        self.free.carve(i, sub)?;
        self.free_frames -= sub.size().frames().as_u64();
        Ok(())
    }

    /// Tries the free ranges from the highest down; `pick` proposes a
    /// sub-range of one. A proposal that would split a range while the list is
    /// full is skipped (lower ranges may still fit without a split).
    fn allocate_where(
        &mut self,
        pick: impl Fn(PhysRange) -> Option<PhysRange>,
    ) -> Result<HostPhysAddr, AllocError> {
        let mut error = AllocError::OutOfMemory;
        for i in (0..self.free.len).rev() {
            let Some(sub) = pick(self.free.ranges[i]) else {
                continue;
            };
            if self.free.splits(i, sub) && self.free.is_full() {
                error = AllocError::TooManyRanges;
                continue;
            }
            self.take(i, sub)?;
            return Ok(sub.start);
        }
        Err(error)
    }
}
