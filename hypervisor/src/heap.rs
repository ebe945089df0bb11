//! The hypervisor heap: a linked-list allocator over contiguous frames.

use linked_list_allocator::LockedHeap;

use crate::mm::addr::{ByteSize, LARGE_PAGE_SIZE};
use crate::mm::frames;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Size of the heap.
pub const HEAP_SIZE: ByteSize = ByteSize::mib(8);

/// Takes the heap's frames from the allocator and initialises it.
pub fn init() -> Result<(), crate::mm::frame_alloc::AllocError> {
    let start = frames::allocate_contiguous(HEAP_SIZE.frames(), LARGE_PAGE_SIZE)?;
    // SAFETY: the frames are fresh from the allocator, identity-mapped, and
    // given to the heap for the hypervisor's lifetime; `init` runs once, on
    // the boot CPU, before any allocation.
    unsafe {
        HEAP.lock()
            .init(start.as_u64() as *mut u8, HEAP_SIZE.as_u64() as usize)
    };
    Ok(())
}
