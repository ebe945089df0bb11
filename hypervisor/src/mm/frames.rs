//! The global frame allocator instance, shared by all CPUs.

use super::addr::{FrameCount, HostPhysAddr};
use super::frame_alloc::{AllocError, FrameAllocator};

/// Every free frame of the machine that the hypervisor has not handed out.
pub static FRAMES: spin::Mutex<FrameAllocator> = spin::Mutex::new(FrameAllocator::empty());

/// One 4 KiB frame.
pub fn allocate() -> Result<HostPhysAddr, AllocError> {
    FRAMES.lock().allocate()
}

/// `count` contiguous frames aligned to `align` bytes.
pub fn allocate_contiguous(count: FrameCount, align: u64) -> Result<HostPhysAddr, AllocError> {
    FRAMES.lock().allocate_contiguous(count, align)
}

/// Free frames left.
pub fn free_frames() -> FrameCount {
    FRAMES.lock().free_frames()
}
