//! The dom0 builder's pure logic: dom0's memory and e820 map, and the two
//! ways of starting its kernel.
//!
//! - [`pvh`] (with [`elf`]): an uncompressed ELF `vmlinux` entered through its
//!   PVH entry note, with an `hvm_start_info` (Xen's
//!   `xen/include/public/arch-x86/hvm/start_info.h`, `docs/misc/pvh.pandoc`).
//! - [`bzimage`] (with [`page_tables`]): a bzImage entered through the Linux
//!   64-bit boot protocol (Linux `Documentation/arch/x86/boot.rst`) with a
//!   `boot_params` zero page (`Documentation/arch/x86/zero-page.rst`).
//!
//! Nothing here touches memory or hardware: everything reads byte slices
//! (kernel images come from outside the hypervisor, so every offset is
//! bounds-checked and a bad image is an error, never a panic) and produces
//! plans, byte buffers and register states that the VMX code applies.
//!
//! The expected order of use:
//! 1. [`KernelFormat::detect`] on the kernel module, then [`pvh::PvhKernel::parse`]
//!    or [`bzimage::BzImage::parse`].
//! 2. [`memory::plan_dom0_memory`] with the ranges the kernel cannot move from
//!    (a PVH kernel's load segments; a non-relocatable bzImage's load area),
//!    then [`memory::dom0_e820`].
//! 3. The placement helper of the format ([`pvh::place_pvh`] or
//!    [`bzimage::place_bzimage`]), then its boot-block builder.
//! 4. Copy the kernel and initrd, write the boot block, load the entry state
//!    ([`entry::EntryState`]) into the VMCS.
#![deny(unsafe_code)]

use core::fmt;

use crate::mm::addr::{ByteSize, GuestPhysAddr, HostPhysAddr, PhysRange};

pub mod bzimage;
pub mod elf;
pub mod entry;
pub mod memory;
pub mod page_tables;
pub mod pvh;
mod ranges;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

/// A half-open range `[start, end)` of dom0's guest-physical memory. dom0 is
/// identity mapped (guest-physical == host-physical), so it converts to and
/// from a host [`PhysRange`] without translation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GuestRange {
    /// First byte.
    pub start: GuestPhysAddr,
    /// One past the last byte.
    pub end: GuestPhysAddr,
}

impl GuestRange {
    /// `[start, start + size)`; `None` if the end overflows.
    pub const fn from_start_size(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(Self {
                start: GuestPhysAddr::new(start),
                end: GuestPhysAddr::new(end),
            }),
            None => None,
        }
    }
    /// The same range as dom0 sees a host range (identity mapping).
    pub const fn from_identity_host(range: &PhysRange) -> Self {
        Self {
            start: GuestPhysAddr::new(range.start.as_u64()),
            end: GuestPhysAddr::new(range.end.as_u64()),
        }
    }
    /// Its size.
    pub const fn size(&self) -> ByteSize {
        ByteSize::new(self.end.as_u64().saturating_sub(self.start.as_u64()))
    }
    /// The same range in host-physical terms (dom0 is identity mapped).
    pub const fn identity_host(&self) -> PhysRange {
        PhysRange::new(
            HostPhysAddr::new(self.start.as_u64()),
            HostPhysAddr::new(self.end.as_u64()),
        )
    }
    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &GuestRange) -> bool {
        self.start.as_u64() < other.end.as_u64() && other.start.as_u64() < self.end.as_u64()
    }
}

/// The two kernel formats dom0 can be started from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KernelFormat {
    /// An ELF64 `vmlinux` (entered through its PVH note, if it has one).
    ElfVmlinux,
    /// A bzImage (Linux x86 boot protocol).
    BzImage,
}

impl KernelFormat {
    /// Recognizes a kernel image by its magic numbers: the ELF identification
    /// `\x7fELF` at offset 0 (System V gABI, "ELF Identification"), or the
    /// setup header's `boot_flag` 0xAA55 at 0x1FE and `header` "HdrS" at
    /// 0x202 (boot.rst, "The Real-Mode Kernel Header"). Only the format is
    /// detected here; the parsers check everything else.
    pub fn detect(image: &[u8]) -> Result<Self, Dom0Error> {
        if image.starts_with(&elf::ELF_MAGIC) {
            return Ok(Self::ElfVmlinux);
        }
        let boot_flag = read_u16(image, bzimage::hdr::BOOT_FLAG);
        let header = read_u32(image, bzimage::hdr::HEADER);
        if boot_flag == Some(bzimage::BOOT_FLAG_MAGIC) && header == Some(bzimage::HDRS_MAGIC) {
            return Ok(Self::BzImage);
        }
        Err(Dom0Error::UnknownKernelFormat)
    }
}

/// Why dom0 could not be built. Every message says what was wrong and, where
/// there is one, what to do about it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dom0Error {
    /// The kernel module is neither ELF nor bzImage.
    UnknownKernelFormat,
    /// A structure of the kernel image lies (partly) past the end of the file.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// The file's length.
        file_len: usize,
    },
    /// The ELF image is not one dom0 can run.
    BadElf {
        /// What is wrong.
        reason: &'static str,
    },
    /// The ELF image has no `XEN_ELFNOTE_PHYS32_ENTRY` note.
    NoPvhEntry,
    /// The bzImage is not usable.
    BadBzImage {
        /// What is wrong.
        reason: &'static str,
    },
    /// The bzImage speaks a boot protocol older than 2.12.
    BzImageTooOld {
        /// The `version` field (major in the high byte).
        version: u16,
    },
    /// The command line is longer than the kernel accepts.
    CmdlineTooLong {
        /// Its length in bytes.
        len: usize,
        /// The most the kernel accepts.
        max: usize,
    },
    /// There is no RAM left for dom0.
    NoRamForDom0 {
        /// Free RAM (after the hypervisor's ranges) in the host map.
        free: ByteSize,
    },
    /// A range dom0's kernel must occupy is not free RAM.
    RequiredRangeUnavailable {
        /// The range.
        range: PhysRange,
    },
    /// A boot structure does not fit anywhere in dom0's RAM.
    NoRoom {
        /// The structure.
        what: &'static str,
        /// Its size.
        size: ByteSize,
    },
    /// The e820 map would exceed the zero page's 128 entries.
    TooManyE820Entries {
        /// How many it would have.
        count: usize,
    },
    /// A caller-supplied buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// A caller-supplied address is unsuitable.
    BadAddress {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for Dom0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnknownKernelFormat => f.write_str(
                "dom0 kernel module is neither an ELF vmlinux with a PVH note nor a bzImage; \
                 give the first module2 line a Linux kernel (vmlinuz or vmlinux)",
            ),
            Self::Truncated { what, file_len } => write!(
                f,
                "dom0 kernel image is truncated: the {what} lies past the end of its \
                 {file_len} bytes; check that the module file is complete"
            ),
            Self::BadElf { reason } => write!(f, "dom0 ELF kernel is unusable: {reason}"),
            Self::NoPvhEntry => f.write_str(
                "dom0 ELF kernel has no PVH entry note (Xen note 18, PHYS32_ENTRY); \
                 use a kernel built with CONFIG_PVH=y, or boot its bzImage instead",
            ),
            Self::BadBzImage { reason } => write!(f, "dom0 bzImage is unusable: {reason}"),
            Self::BzImageTooOld { version } => write!(
                f,
                "dom0 bzImage uses boot protocol {}.{:02}, but the 64-bit entry needs 2.12 \
                 or later (Linux 3.8+); use a newer kernel",
                version >> 8,
                version & 0xFF
            ),
            Self::CmdlineTooLong { len, max } => write!(
                f,
                "dom0 command line is {len} bytes, but the kernel accepts at most {max}; \
                 shorten the text on the kernel's module2 line"
            ),
            Self::NoRamForDom0 { free } => write!(
                f,
                "no RAM left for dom0: only {free} is free after the hypervisor's own memory; \
                 give the machine more memory"
            ),
            Self::RequiredRangeUnavailable { range } => write!(
                f,
                "dom0's kernel must be loaded at {}..{}, but that memory is not free RAM \
                 (it is firmware-reserved or holds the hypervisor or a boot module)",
                range.start, range.end
            ),
            Self::NoRoom { what, size } => write!(
                f,
                "no room in dom0's memory for the {what} ({size}); raise dom0_mem="
            ),
            Self::TooManyE820Entries { count } => write!(
                f,
                "dom0's memory map would need {count} entries, more than the 128 a Linux \
                 zero page holds; the host memory map is too fragmented"
            ),
            Self::BufferTooSmall { needed, got } => {
                write!(f, "buffer too small: {needed} bytes needed, {got} given")
            }
            Self::BadAddress { reason } => write!(f, "unsuitable address: {reason}"),
        }
    }
}

/// Reads `N` bytes at `offset`, if they are there.
pub(crate) fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    bytes.get(offset..end)?.try_into().ok()
}

/// Reads a byte at `offset`, if it is there.
pub(crate) fn read_u8(bytes: &[u8], offset: usize) -> Option<u8> {
    bytes.get(offset).copied()
}

/// Reads a little-endian u16 at `offset`, if the bytes are there.
pub(crate) fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    read_array(bytes, offset).map(u16::from_le_bytes)
}

/// Reads a little-endian u32 at `offset`, if the bytes are there.
pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    read_array(bytes, offset).map(u32::from_le_bytes)
}

/// Reads a little-endian u64 at `offset`, if the bytes are there.
pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    read_array(bytes, offset).map(u64::from_le_bytes)
}

/// Writes `value`'s little-endian bytes at `offset` of a buffer this module
/// sized itself (the offsets are constants checked by the tests).
pub(crate) fn put(buf: &mut [u8], offset: usize, value: &[u8]) {
    buf[offset..offset + value.len()].copy_from_slice(value);
}
