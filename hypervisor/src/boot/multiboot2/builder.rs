//! Test-only builders: boot information blobs as a Multiboot2 loader would
//! write them (§3.6), and image files carrying a Multiboot2 header (§3.1).
//! Other modules' tests may use them too (`pub(crate)`).

use alloc::vec::Vec;

use super::{ARCH_I386, HEADER_MAGIC, tag};

/// A byte buffer whose contents start on an 8-byte boundary, as the boot
/// information does in memory (§3.6). A plain `Vec<u8>` promises no alignment,
/// so the contents are placed at the first aligned offset of a larger buffer.
#[derive(Debug, Clone)]
pub(crate) struct AlignedBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes` into a fresh aligned buffer.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut buf = alloc::vec![0u8; bytes.len() + 8];
        let start = (8 - buf.as_ptr().addr() % 8) % 8;
        buf[start..start + bytes.len()].copy_from_slice(bytes);
        Self {
            buf,
            start,
            len: bytes.len(),
        }
    }

    /// The contents.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The contents, writable (to corrupt them in tests).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// Assembles a boot information structure tag by tag.
#[derive(Debug, Clone, Default)]
pub(crate) struct InfoBuilder {
    tags: Vec<u8>,
}

impl InfoBuilder {
    /// No tags yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends a tag with arbitrary contents, padded to 8 bytes.
    pub(crate) fn raw_tag(mut self, tag_type: u32, data: &[u8]) -> Self {
        let size = u32::try_from(8 + data.len()).expect("tag too large for a test");
        self.tags.extend_from_slice(&tag_type.to_le_bytes());
        self.tags.extend_from_slice(&size.to_le_bytes());
        self.tags.extend_from_slice(data);
        while !self.tags.len().is_multiple_of(8) {
            self.tags.push(0);
        }
        self
    }

    fn string_tag(self, tag_type: u32, s: &str) -> Self {
        let mut data = Vec::from(s.as_bytes());
        data.push(0);
        self.raw_tag(tag_type, &data)
    }

    /// Tag 1, the command line.
    pub(crate) fn cmdline(self, s: &str) -> Self {
        self.string_tag(tag::CMDLINE, s)
    }

    /// Tag 2, the boot loader name.
    pub(crate) fn bootloader_name(self, s: &str) -> Self {
        self.string_tag(tag::BOOTLOADER_NAME, s)
    }

    /// Tag 3, a module at `[start, end)`.
    pub(crate) fn module(self, start: u32, end: u32, cmdline: &str) -> Self {
        let mut data = Vec::new();
        data.extend_from_slice(&start.to_le_bytes());
        data.extend_from_slice(&end.to_le_bytes());
        data.extend_from_slice(cmdline.as_bytes());
        data.push(0);
        self.raw_tag(tag::MODULE, &data)
    }

    /// Tag 6 with version-0 entries `(base, length, type)` of 24 bytes.
    pub(crate) fn memory_map(self, entries: &[(u64, u64, u32)]) -> Self {
        self.memory_map_with_entry_size(24, entries)
    }

    /// Tag 6 with entries padded to `entry_size` bytes (at least 24), as a
    /// later version of the memory map might be.
    pub(crate) fn memory_map_with_entry_size(
        self,
        entry_size: u32,
        entries: &[(u64, u64, u32)],
    ) -> Self {
        let mut data = Vec::new();
        data.extend_from_slice(&entry_size.to_le_bytes());
        data.extend_from_slice(&0u32.to_le_bytes());
        for &(base, length, kind) in entries {
            let entry_start = data.len();
            data.extend_from_slice(&base.to_le_bytes());
            data.extend_from_slice(&length.to_le_bytes());
            data.extend_from_slice(&kind.to_le_bytes());
            data.resize(entry_start + entry_size as usize, 0xAA);
        }
        self.raw_tag(tag::MEMORY_MAP, &data)
    }

    /// Tag 14, a copy of an ACPI 1.0 RSDP.
    pub(crate) fn rsdp_old(self, rsdp: &[u8]) -> Self {
        self.raw_tag(tag::ACPI_OLD_RSDP, rsdp)
    }

    /// Tag 15, a copy of an ACPI 2.0+ RSDP.
    pub(crate) fn rsdp_new(self, rsdp: &[u8]) -> Self {
        self.raw_tag(tag::ACPI_NEW_RSDP, rsdp)
    }

    /// The complete structure: fixed part, the tags, an end tag.
    pub(crate) fn build(self) -> AlignedBytes {
        self.raw_tag(tag::END, &[]).build_without_end()
    }

    /// The structure without an end tag (malformed).
    pub(crate) fn build_without_end(self) -> AlignedBytes {
        let total = u32::try_from(8 + self.tags.len()).expect("structure too large for a test");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&total.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&self.tags);
        AlignedBytes::new(&bytes)
    }
}

/// Assembles a Multiboot2 header (§3.1): fixed fields, then tags of
/// (u16 type, u16 flags, u32 size, contents), padded to 8 bytes.
#[derive(Debug, Clone)]
pub(crate) struct HeaderBuilder {
    architecture: u32,
    tags: Vec<u8>,
    end_tag: bool,
}

impl HeaderBuilder {
    /// An i386 header with no tags yet.
    pub(crate) fn new() -> Self {
        Self {
            architecture: ARCH_I386,
            tags: Vec::new(),
            end_tag: true,
        }
    }

    /// Sets the architecture field (the checksum follows it).
    pub(crate) fn architecture(mut self, architecture: u32) -> Self {
        self.architecture = architecture;
        self
    }

    /// Leaves out the end tag.
    pub(crate) fn without_end_tag(mut self) -> Self {
        self.end_tag = false;
        self
    }

    /// Appends a tag with a given `size` field and contents.
    pub(crate) fn tag_with_size(mut self, tag_type: u16, size: u32, data: &[u8]) -> Self {
        self.tags.extend_from_slice(&tag_type.to_le_bytes());
        self.tags.extend_from_slice(&0u16.to_le_bytes());
        self.tags.extend_from_slice(&size.to_le_bytes());
        self.tags.extend_from_slice(data);
        while !self.tags.len().is_multiple_of(8) {
            self.tags.push(0);
        }
        self
    }

    /// Appends a well-formed tag.
    pub(crate) fn tag(self, tag_type: u16, data: &[u8]) -> Self {
        let size = u32::try_from(8 + data.len()).expect("tag too large for a test");
        self.tag_with_size(tag_type, size, data)
    }

    /// The header's bytes, with a correct `header_length` and checksum.
    pub(crate) fn build(self) -> Vec<u8> {
        let end_tag = self.end_tag;
        let architecture = self.architecture;
        let mut tags = self.tags;
        if end_tag {
            tags.extend_from_slice(&[0, 0, 0, 0, 8, 0, 0, 0]);
        }
        let length = u32::try_from(16 + tags.len()).expect("header too large for a test");
        let checksum = 0u32
            .wrapping_sub(HEADER_MAGIC)
            .wrapping_sub(architecture)
            .wrapping_sub(length);
        let mut bytes = Vec::new();
        for field in [HEADER_MAGIC, architecture, length, checksum] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        bytes.extend_from_slice(&tags);
        bytes
    }
}

/// An image file of `len` bytes with `header` at `offset`.
pub(crate) fn image_with_header(len: usize, offset: usize, header: &[u8]) -> Vec<u8> {
    let mut image = alloc::vec![0x90u8; len.max(offset + header.len())];
    image[offset..offset + header.len()].copy_from_slice(header);
    image
}
