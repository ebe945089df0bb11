//! Boot-protocol handling (multiboot2).

pub mod multiboot2;
