//! Memory management: address types, the frame allocator and page tables.

pub mod addr;
pub mod canary;
pub mod ept;
pub mod frame_alloc;
pub mod frames;
pub mod identity_plan;
pub mod page_table;
