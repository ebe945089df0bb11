//! The Multiboot2 boot protocol: the boot information structure that the boot
//! loader hands to the hypervisor, and the header that a kernel image carries.
//!
//! References are to *The Multiboot2 Specification*, version 2.0 (GRUB's
//! `doc/multiboot.texi`, multiboot2 branch): §3.1 "OS image format" for the
//! header, §3.6 "Boot information format" for the information structure.
//!
//! Everything here reads a byte slice; nothing dereferences a pointer. The
//! boot path turns the physical address in EBX into a slice (that is where
//! the `unsafe` lives) and calls [`BootInfo::parse`], which checks the whole
//! structure once, so that the accessors afterwards cannot fail or panic.
//! The information comes from outside the hypervisor (the boot loader), so
//! every offset is bounds-checked.

use core::fmt;

use crate::mm::addr::{HostPhysAddr, PhysRange};

#[cfg(test)]
pub(crate) mod builder;
#[cfg(test)]
mod tests;

/// Value in EAX when a Multiboot2 loader enters the OS image (§3.3 "I386
/// machine state").
pub const BOOTLOADER_MAGIC: u32 = 0x36d7_6289;
/// First field of the Multiboot2 header (§3.1.2 "The magic fields of
/// Multiboot2 header").
pub const HEADER_MAGIC: u32 = 0xE852_50D6;
/// The header must lie completely within this many bytes at the start of the
/// image file (§3.1.1).
pub const HEADER_SEARCH_LIMIT: usize = 32768;
/// `architecture` value for 32-bit (protected mode) i386 (§3.1.2).
pub const ARCH_I386: u32 = 0;

/// Both the header and the information structure are made of 8-byte aligned
/// tags (§3.1.3 "General tag structure", §3.6 "Basic tags structure").
const TAG_ALIGN: usize = 8;
/// Size of the fixed part of the information structure: `total_size` and
/// `reserved`, two u32 (§3.6).
const FIXED_PART: usize = 8;
/// Size of a tag header: `type` and `size`, two u32 in the information
/// structure; u16 `type`, u16 `flags` and u32 `size` in the header.
const TAG_HEADER: usize = 8;
/// Fixed fields of the Multiboot2 header: magic, architecture,
/// header_length, checksum (§3.1.2).
const HEADER_FIXED: usize = 16;
/// One memory map entry as version 0 defines it: u64 base_addr, u64 length,
/// u32 type, u32 reserved (§3.6 "Memory map").
const MMAP_ENTRY_MIN: usize = 24;

/// Tag types of the boot information (§3.6).
pub mod tag {
    /// Terminates the tag list; size 8.
    pub const END: u32 = 0;
    /// "Boot command line": a NUL-terminated UTF-8 string.
    pub const CMDLINE: u32 = 1;
    /// "Boot loader name": a NUL-terminated UTF-8 string.
    pub const BOOTLOADER_NAME: u32 = 2;
    /// "Modules": u32 mod_start, u32 mod_end, then a NUL-terminated string.
    pub const MODULE: u32 = 3;
    /// "Basic memory information": u32 mem_lower, u32 mem_upper (KiB).
    pub const BASIC_MEMINFO: u32 = 4;
    /// "Memory map": u32 entry_size, u32 entry_version, then the entries.
    pub const MEMORY_MAP: u32 = 6;
    /// "ACPI old RSDP": a copy of the ACPI 1.0 RSDP.
    pub const ACPI_OLD_RSDP: u32 = 14;
    /// "ACPI new RSDP": a copy of the ACPI 2.0+ RSDP (XSDT capable).
    pub const ACPI_NEW_RSDP: u32 = 15;
}

/// Why a boot information structure or an image header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mb2Error {
    /// Fewer bytes than the 8-byte fixed part of the information structure.
    TooShort,
    /// `total_size` is smaller than the fixed part plus an end tag, or larger
    /// than the bytes available.
    BadTotalSize,
    /// The information structure does not start on an 8-byte boundary (§3.6:
    /// "Its start is 8-bytes aligned").
    Misaligned,
    /// A tag's `size` reaches past the end of the structure (or of the header).
    TagOverrun {
        /// Byte offset of the offending tag.
        offset: usize,
    },
    /// A tag's `size` is smaller than its own 8-byte tag header, or an end
    /// tag's size is not 8.
    BadTagSize {
        /// Byte offset of the offending tag.
        offset: usize,
    },
    /// A known tag is too short for its fixed fields, or a memory map declares
    /// an entry size smaller than 24 bytes.
    BadTag {
        /// Byte offset of the offending tag.
        offset: usize,
        /// Its type.
        tag_type: u32,
    },
    /// The tags run to the end of the structure without an end tag.
    MissingEndTag,
    /// A string (command line, loader name, module string) is not
    /// NUL-terminated inside its tag, or is not valid UTF-8.
    BadString,
    /// No Multiboot2 header magic at an 8-byte aligned offset in the first
    /// 32 KiB of the image.
    HeaderNotFound,
    /// The header's checksum does not make the four fixed fields sum to zero.
    BadChecksum,
    /// The header asks for an architecture other than 0 (i386 protected mode).
    BadArchitecture,
    /// `header_length` is too small for the fixed fields and an end tag, or the
    /// header reaches past the end of the file or past the first 32 KiB.
    BadHeaderLength,
}

impl fmt::Display for Mb2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort => {
                f.write_str("multiboot2 information is shorter than its 8-byte fixed part")
            }
            Self::BadTotalSize => f.write_str(
                "multiboot2 information has an impossible total_size \
                 (smaller than 16 bytes or larger than the memory given)",
            ),
            Self::Misaligned => {
                f.write_str("multiboot2 information does not start on an 8-byte boundary")
            }
            Self::TagOverrun { offset } => {
                write!(
                    f,
                    "multiboot2 tag at offset {offset:#x} runs past the end of its structure"
                )
            }
            Self::BadTagSize { offset } => {
                write!(
                    f,
                    "multiboot2 tag at offset {offset:#x} has an impossible size"
                )
            }
            Self::BadTag { offset, tag_type } => write!(
                f,
                "multiboot2 tag of type {tag_type} at offset {offset:#x} is too short \
                 for its fields"
            ),
            Self::MissingEndTag => f.write_str("multiboot2 tags are not terminated by an end tag"),
            Self::BadString => f.write_str(
                "a multiboot2 string (command line, loader name or module string) is not \
                 NUL-terminated UTF-8",
            ),
            Self::HeaderNotFound => f.write_str(
                "no multiboot2 header (magic 0xe85250d6, 8-byte aligned) in the first 32 KiB \
                 of the image",
            ),
            Self::BadChecksum => f.write_str("the multiboot2 header checksum is wrong"),
            Self::BadArchitecture => f.write_str(
                "the multiboot2 header does not ask for architecture 0 (i386 protected mode)",
            ),
            Self::BadHeaderLength => f.write_str(
                "the multiboot2 header length is too small, or the header reaches past the \
                 end of the file or past its first 32 KiB",
            ),
        }
    }
}

/// Reads a little-endian u32 at `offset`, if the bytes are there.
fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let chunk = bytes.get(offset..end)?;
    Some(u32::from_le_bytes(chunk.try_into().ok()?))
}

/// Reads a little-endian u16 at `offset`, if the bytes are there.
fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    let end = offset.checked_add(2)?;
    let chunk = bytes.get(offset..end)?;
    Some(u16::from_le_bytes(chunk.try_into().ok()?))
}

/// Reads a little-endian u64 at `offset`, if the bytes are there.
fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    let chunk = bytes.get(offset..end)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

/// Rounds a tag size up to the next 8-byte boundary; `None` on overflow.
fn align_tag(size: usize) -> Option<usize> {
    Some(size.checked_add(TAG_ALIGN - 1)? & !(TAG_ALIGN - 1))
}

/// The string before the first NUL, if there is a NUL and the text is UTF-8.
fn c_str(bytes: &[u8]) -> Option<&str> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&bytes[..nul]).ok()
}

/// One tag of the information structure (§3.6 "Basic tags structure").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The tag's `type`.
    pub tag_type: u32,
    /// Byte offset of the tag from the start of the structure.
    pub offset: usize,
    /// The tag's contents after its 8-byte header (`size - 8` bytes, without
    /// the padding).
    pub data: &'a [u8],
}

/// Iterator over the tags of a parsed structure, end tag excluded.
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        // `parse` has checked every tag already; the checks here only make sure
        // that even an unchecked slice can never make this panic.
        let tag_type = read_u32(self.bytes, self.offset)?;
        let size = read_u32(self.bytes, self.offset.checked_add(4)?)? as usize;
        if tag_type == tag::END || size < TAG_HEADER {
            return None;
        }
        let data_start = self.offset + TAG_HEADER;
        let data = self.bytes.get(data_start..self.offset.checked_add(size)?)?;
        let tag = Tag {
            tag_type,
            offset: self.offset,
            data,
        };
        self.offset = self.offset.checked_add(align_tag(size)?)?;
        Some(tag)
    }
}

/// A boot module (§3.6 "Modules"): for Oxen, dom0's kernel and initrd.
#[derive(Debug, Clone, Copy)]
pub struct Module<'a> {
    /// Where the loader put the module: `[mod_start, mod_end)`.
    pub range: PhysRange,
    /// The text after the module's file name on the loader's `module2` line.
    pub cmdline: &'a str,
}

/// The type of a memory map entry (§3.6 "Memory map").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Type 1: available RAM.
    Usable,
    /// Type 2: reserved.
    Reserved,
    /// Type 3: RAM holding ACPI tables, usable once they have been read.
    AcpiReclaimable,
    /// Type 4: ACPI non-volatile storage, to be preserved across hibernation.
    AcpiNvs,
    /// Type 5: defective RAM.
    Defective,
    /// Any other type, which the specification says to treat as reserved.
    Other(u32),
}

impl MemoryKind {
    /// The kind for a raw memory-map `type` value.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Usable,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Defective,
            other => Self::Other(other),
        }
    }

    /// The raw memory-map `type` value (also the e820 type number).
    pub const fn as_raw(self) -> u32 {
        match self {
            Self::Usable => 1,
            Self::Reserved => 2,
            Self::AcpiReclaimable => 3,
            Self::AcpiNvs => 4,
            Self::Defective => 5,
            Self::Other(raw) => raw,
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usable => f.write_str("usable"),
            Self::Reserved => f.write_str("reserved"),
            Self::AcpiReclaimable => f.write_str("ACPI reclaimable"),
            Self::AcpiNvs => f.write_str("ACPI NVS"),
            Self::Defective => f.write_str("defective"),
            Self::Other(raw) => write!(f, "type {raw}"),
        }
    }
}

/// One entry of the memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// `[base_addr, base_addr + length)`; an end past 2^64 is clamped to
    /// `u64::MAX`.
    pub range: PhysRange,
    /// The entry's type.
    pub kind: MemoryKind,
}

/// A checked view of a Multiboot2 boot information structure (§3.6).
#[derive(Debug, Clone, Copy)]
pub struct BootInfo<'a> {
    /// Exactly `total_size` bytes.
    bytes: &'a [u8],
}

impl<'a> BootInfo<'a> {
    /// Checks the structure: `total_size` fits in `bytes`, the start is 8-byte
    /// aligned, every tag lies inside `total_size`, the tag list ends with an
    /// end tag, and the tags this module reads (command line, loader name,
    /// modules, memory map) are well formed. Bytes after the end tag are
    /// ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Mb2Error> {
        let total = read_u32(bytes, 0).ok_or(Mb2Error::TooShort)? as usize;
        if total < FIXED_PART + TAG_HEADER || total > bytes.len() {
            return Err(Mb2Error::BadTotalSize);
        }
        // §3.6: "Its start is 8-bytes aligned"; the tags' alignment is stated
        // as address alignment, so an unaligned start would shift them all.
        if !bytes.as_ptr().addr().is_multiple_of(TAG_ALIGN) {
            return Err(Mb2Error::Misaligned);
        }
        let bytes = &bytes[..total];
        let mut offset = FIXED_PART;
        loop {
            let (Some(tag_type), Some(size)) =
                (read_u32(bytes, offset), read_u32(bytes, offset + 4))
            else {
                return Err(Mb2Error::MissingEndTag);
            };
            let size = size as usize;
            if size < TAG_HEADER || (tag_type == tag::END && size != TAG_HEADER) {
                return Err(Mb2Error::BadTagSize { offset });
            }
            let end = offset
                .checked_add(size)
                .ok_or(Mb2Error::TagOverrun { offset })?;
            if end > total {
                return Err(Mb2Error::TagOverrun { offset });
            }
            if tag_type == tag::END {
                return Ok(Self { bytes });
            }
            check_tag(tag_type, offset, &bytes[offset + TAG_HEADER..end])?;
            offset = align_tag(end).ok_or(Mb2Error::TagOverrun { offset })?;
        }
    }

    /// The `total_size` field: the structure's size in bytes.
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }

    /// The structure's raw bytes (`total_size` of them).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every tag, in order, without the end tag.
    pub fn tags(&self) -> Tags<'a> {
        Tags {
            bytes: self.bytes,
            offset: FIXED_PART,
        }
    }

    /// The first tag of a type.
    fn find(&self, tag_type: u32) -> Option<Tag<'a>> {
        self.tags().find(|t| t.tag_type == tag_type)
    }

    /// The hypervisor's command line (tag 1, §3.6 "Boot command line"): what
    /// follows the image file name on the loader's `multiboot2` line.
    pub fn command_line(&self) -> Option<&'a str> {
        self.find(tag::CMDLINE).and_then(|t| c_str(t.data))
    }

    /// The boot loader's name (tag 2, §3.6 "Boot loader name").
    pub fn bootloader_name(&self) -> Option<&'a str> {
        self.find(tag::BOOTLOADER_NAME).and_then(|t| c_str(t.data))
    }

    /// The boot modules (tag 3, §3.6 "Modules"), in the loader's order.
    pub fn modules(&self) -> impl Iterator<Item = Module<'a>> + 'a {
        self.tags()
            .filter(|t| t.tag_type == tag::MODULE)
            .filter_map(|t| {
                let start = read_u32(t.data, 0)?;
                let end = read_u32(t.data, 4)?;
                let cmdline = c_str(t.data.get(8..)?)?;
                let range = PhysRange::new(
                    HostPhysAddr::new(u64::from(start)),
                    HostPhysAddr::new(u64::from(end)),
                );
                Some(Module { range, cmdline })
            })
    }

    /// The memory map (tag 6, §3.6 "Memory map"), stepping by the tag's
    /// `entry_size` so that entries of a later, longer version still parse.
    /// Empty if the loader gave no memory map.
    pub fn memory_map(&self) -> impl Iterator<Item = MemoryRegion> + 'a {
        self.find(tag::MEMORY_MAP).into_iter().flat_map(|t| {
            let entry_size = read_u32(t.data, 0).map_or(MMAP_ENTRY_MIN, |s| s as usize);
            let entries = t.data.get(8..).unwrap_or(&[]);
            entries
                .chunks_exact(entry_size.max(MMAP_ENTRY_MIN))
                .map(|entry| {
                    let base = read_u64(entry, 0).unwrap_or(0);
                    let length = read_u64(entry, 8).unwrap_or(0);
                    let kind = MemoryKind::from_raw(read_u32(entry, 16).unwrap_or(2));
                    let range = PhysRange::new(
                        HostPhysAddr::new(base),
                        HostPhysAddr::new(base.saturating_add(length)),
                    );
                    MemoryRegion { range, kind }
                })
        })
    }

    /// The copy of the ACPI RSDP that the loader made: tag 15 ("ACPI new
    /// RSDP", an ACPI 2.0+ RSDP) if present, else tag 14 ("ACPI old RSDP").
    /// The bytes are unchecked; the ACPI parser validates them.
    pub fn rsdp(&self) -> Option<&'a [u8]> {
        self.find(tag::ACPI_NEW_RSDP)
            .or_else(|| self.find(tag::ACPI_OLD_RSDP))
            .map(|t| t.data)
    }
}

/// Checks the contents of one tag of a type this module interprets.
fn check_tag(tag_type: u32, offset: usize, data: &[u8]) -> Result<(), Mb2Error> {
    let bad_tag = Mb2Error::BadTag { offset, tag_type };
    match tag_type {
        tag::CMDLINE | tag::BOOTLOADER_NAME => {
            c_str(data).ok_or(Mb2Error::BadString)?;
        }
        tag::MODULE => {
            let string = data.get(8..).filter(|s| !s.is_empty()).ok_or(bad_tag)?;
            c_str(string).ok_or(Mb2Error::BadString)?;
        }
        tag::MEMORY_MAP => {
            // §3.6 "Memory map": entry_size is a multiple of 8 and future
            // versions only append fields, so anything of at least 24 bytes
            // can be read as version 0.
            let entry_size = read_u32(data, 0).ok_or(bad_tag)? as usize;
            if entry_size < MMAP_ENTRY_MIN || data.len() < 8 {
                return Err(bad_tag);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where the Multiboot2 header of an image is and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Byte offset of the header in the image file.
    pub offset: usize,
    /// Its `header_length`, tags included.
    pub length: u32,
    /// Its `architecture` (always [`ARCH_I386`] once accepted).
    pub architecture: u32,
}

/// Finds and checks the Multiboot2 header in a kernel image file, as a boot
/// loader does (§3.1.1 "The layout of Multiboot2 header"): it must be 8-byte
/// aligned and completely inside the first 32768 bytes, start with
/// [`HEADER_MAGIC`], ask for architecture 0 (i386 protected mode), carry a
/// checksum that makes `magic + architecture + header_length + checksum` zero
/// modulo 2^32, and hold well-formed tags ending with an end tag (§3.1.3).
///
/// Like GRUB, a magic value whose fields do not check out is skipped and the
/// search goes on; if no candidate is valid, the error of the first candidate
/// is returned, or [`Mb2Error::HeaderNotFound`] if there was none.
pub fn find_header(image: &[u8]) -> Result<HeaderInfo, Mb2Error> {
    let limit = image.len().min(HEADER_SEARCH_LIMIT);
    let mut first_error = None;
    let mut offset = 0;
    while offset + HEADER_FIXED <= limit {
        if read_u32(image, offset) == Some(HEADER_MAGIC) {
            match check_header(&image[..limit], offset) {
                Ok(info) => return Ok(info),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        offset += TAG_ALIGN;
    }
    Err(first_error.unwrap_or(Mb2Error::HeaderNotFound))
}

/// Checks the candidate header at `offset` of `image` (already cut to the
/// search limit), whose magic matched.
fn check_header(image: &[u8], offset: usize) -> Result<HeaderInfo, Mb2Error> {
    let field = |i: usize| read_u32(image, offset + 4 * i).ok_or(Mb2Error::HeaderNotFound);
    let (magic, architecture, length, checksum) = (field(0)?, field(1)?, field(2)?, field(3)?);
    // §3.1.2: "checksum is a 32-bit unsigned value which, when added to the
    // other magic fields (i.e. magic, architecture and header_length), must
    // have a 32-bit unsigned sum of zero."
    if magic
        .wrapping_add(architecture)
        .wrapping_add(length)
        .wrapping_add(checksum)
        != 0
    {
        return Err(Mb2Error::BadChecksum);
    }
    if architecture != ARCH_I386 {
        return Err(Mb2Error::BadArchitecture);
    }
    let header_end = offset
        .checked_add(length as usize)
        .filter(|&end| (length as usize) >= HEADER_FIXED + TAG_HEADER && end <= image.len())
        .ok_or(Mb2Error::BadHeaderLength)?;
    // §3.1.3 "General tag structure": u16 type, u16 flags, u32 size; tags are
    // padded to 8 bytes and end with a tag of type 0 and size 8.
    let mut tag_offset = offset + HEADER_FIXED;
    loop {
        if tag_offset + TAG_HEADER > header_end {
            return Err(Mb2Error::MissingEndTag);
        }
        let (Some(tag_type), Some(size)) =
            (read_u16(image, tag_offset), read_u32(image, tag_offset + 4))
        else {
            return Err(Mb2Error::MissingEndTag);
        };
        let size = size as usize;
        if size < TAG_HEADER || (tag_type == 0 && size != TAG_HEADER) {
            return Err(Mb2Error::BadTagSize { offset: tag_offset });
        }
        let end = tag_offset
            .checked_add(size)
            .filter(|&end| end <= header_end);
        let end = end.ok_or(Mb2Error::TagOverrun { offset: tag_offset })?;
        if tag_type == 0 {
            return Ok(HeaderInfo {
                offset,
                length,
                architecture,
            });
        }
        tag_offset = align_tag(end).ok_or(Mb2Error::TagOverrun { offset: tag_offset })?;
    }
}
