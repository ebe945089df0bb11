//! An ELF64 executable read as a kernel to load: its loadable segments
//! (where each goes in physical memory) and its notes.
//!
//! References: *System V ABI, ELF-64 Object File Format* (version 1.5):
//! "ELF Header" (§3, Figure 2), "Program header table" (§6, Figure 6),
//! "Note sections" (§7). The image comes from outside the hypervisor (a boot
//! module), so every field is checked before use; a bad image is an error.

use alloc::vec::Vec;
use core::fmt;

use super::{Dom0Error, GuestRange, read_u8, read_u16, read_u32, read_u64};
use crate::mm::addr::GuestPhysAddr;

/// `e_ident[EI_MAG0..=EI_MAG3]` (ELF-64 §3, "ELF Identification").
pub const ELF_MAGIC: [u8; 4] = [0x7F, b'E', b'L', b'F'];

/// Offsets in the ELF64 header (ELF-64 §3, Figure 2).
mod ehdr {
    /// `e_ident[EI_CLASS]`: 2 = ELFCLASS64.
    pub const CLASS: usize = 4;
    /// `e_ident[EI_DATA]`: 1 = ELFDATA2LSB.
    pub const DATA: usize = 5;
    /// `e_ident[EI_VERSION]`: 1 = EV_CURRENT.
    pub const IDENT_VERSION: usize = 6;
    /// `e_type`, u16: 2 = ET_EXEC.
    pub const TYPE: usize = 16;
    /// `e_machine`, u16: 62 = EM_X86_64 (psABI x86-64, "Machine Information").
    pub const MACHINE: usize = 18;
    /// `e_entry`, u64.
    pub const ENTRY: usize = 24;
    /// `e_phoff`, u64.
    pub const PHOFF: usize = 32;
    /// `e_phentsize`, u16.
    pub const PHENTSIZE: usize = 54;
    /// `e_phnum`, u16.
    pub const PHNUM: usize = 56;
    /// Size of the header.
    pub const SIZE: usize = 64;
}

/// Offsets in an ELF64 program header (ELF-64 §6, Figure 6).
mod phdr {
    /// `p_type`, u32.
    pub const TYPE: usize = 0;
    /// `p_offset`, u64.
    pub const OFFSET: usize = 8;
    /// `p_paddr`, u64.
    pub const PADDR: usize = 24;
    /// `p_filesz`, u64.
    pub const FILESZ: usize = 32;
    /// `p_memsz`, u64.
    pub const MEMSZ: usize = 40;
    /// `p_align`, u64.
    pub const ALIGN: usize = 48;
    /// Size of one program header.
    pub const SIZE: usize = 56;
}

/// `PT_LOAD` (ELF-64 §6, Figure 7).
pub const PT_LOAD: u32 = 1;
/// `PT_NOTE` (ELF-64 §6, Figure 7).
pub const PT_NOTE: u32 = 4;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
/// `e_phnum` at or above this means "see section 0" (PN_XNUM); a kernel never
/// has that many, and far fewer than this limit.
const MAX_PHNUM: u16 = 256;

/// One `PT_LOAD` segment: `file_size` bytes from `file_offset` of the image go
/// to `paddr`, followed by `mem_size - file_size` zero bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// `p_offset`.
    pub file_offset: u64,
    /// `p_filesz`.
    pub file_size: u64,
    /// `p_memsz` (at least `file_size`).
    pub mem_size: u64,
    /// `p_paddr`: where it goes in dom0's (identity-mapped) memory.
    pub paddr: GuestPhysAddr,
}

impl LoadSegment {
    /// The memory it occupies, `[paddr, paddr + mem_size)`.
    pub fn range(&self) -> GuestRange {
        // Checked at parse time not to overflow.
        GuestRange {
            start: self.paddr,
            end: GuestPhysAddr::new(self.paddr.as_u64() + self.mem_size),
        }
    }
    /// The bytes to copy, a sub-slice of the image it was parsed from.
    pub fn file_bytes<'a>(&self, image: &'a [u8]) -> &'a [u8] {
        let start = self.file_offset as usize;
        image
            .get(start..start + self.file_size as usize)
            .unwrap_or(&[])
    }
}

/// One note of a `PT_NOTE` segment (ELF-64 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    /// The name without its terminating NUL.
    pub name: &'a [u8],
    /// The type.
    pub note_type: u32,
    /// The descriptor.
    pub desc: &'a [u8],
}

/// A checked ELF64 x86-64 executable. (`Debug` shows the image's length,
/// not its bytes.)
#[derive(Clone)]
pub struct ElfImage<'a> {
    image: &'a [u8],
    entry: u64,
    segments: Vec<LoadSegment>,
    /// `(file offset, file size, alignment)` of each `PT_NOTE`.
    note_segments: Vec<(usize, usize, usize)>,
}

impl fmt::Debug for ElfImage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElfImage")
            .field("image_len", &self.image.len())
            .field("entry", &format_args!("{:#x}", self.entry))
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

fn truncated(what: &'static str, image: &[u8]) -> Dom0Error {
    Dom0Error::Truncated {
        what,
        file_len: image.len(),
    }
}

fn bad(reason: &'static str) -> Dom0Error {
    Dom0Error::BadElf { reason }
}

impl<'a> ElfImage<'a> {
    /// Checks the header and the program headers.
    ///
    /// Accepted: ELFCLASS64, little-endian, version 1, ET_EXEC, EM_X86_64,
    /// program headers of 56 bytes inside the file. Every `PT_LOAD` with a
    /// non-zero `p_memsz` must have `p_filesz <= p_memsz`, its file bytes
    /// inside the file, no address overflow, and no overlap with another.
    pub fn parse(image: &'a [u8]) -> Result<Self, Dom0Error> {
        if image.len() < ehdr::SIZE {
            return Err(truncated("ELF header", image));
        }
        if !image.starts_with(&ELF_MAGIC) {
            return Err(bad("no ELF magic"));
        }
        let byte = |off| read_u8(image, off).unwrap_or(0);
        let half = |off| read_u16(image, off).unwrap_or(0);
        if byte(ehdr::CLASS) != ELFCLASS64 {
            return Err(bad(
                "not a 64-bit ELF file (a 32-bit vmlinux cannot be dom0)",
            ));
        }
        if byte(ehdr::DATA) != ELFDATA2LSB || byte(ehdr::IDENT_VERSION) != EV_CURRENT {
            return Err(bad("not a little-endian ELF file of version 1"));
        }
        if half(ehdr::MACHINE) != EM_X86_64 {
            return Err(bad("not an x86-64 ELF file"));
        }
        if half(ehdr::TYPE) != ET_EXEC {
            return Err(bad("not an executable (ET_EXEC) ELF file"));
        }
        let entry = read_u64(image, ehdr::ENTRY).unwrap_or(0);
        let phoff = read_u64(image, ehdr::PHOFF).unwrap_or(0);
        let phnum = half(ehdr::PHNUM);
        if phnum == 0 {
            return Err(bad("no program headers"));
        }
        if phnum >= MAX_PHNUM {
            return Err(bad("too many program headers"));
        }
        if usize::from(half(ehdr::PHENTSIZE)) != phdr::SIZE {
            return Err(bad("program headers are not 56 bytes (e_phentsize)"));
        }
        let table_len = usize::from(phnum) * phdr::SIZE;
        let table = usize::try_from(phoff)
            .ok()
            .and_then(|start| image.get(start..start.checked_add(table_len)?))
            .ok_or_else(|| truncated("program header table", image))?;

        let mut segments: Vec<LoadSegment> = Vec::new();
        let mut note_segments = Vec::new();
        for ph in table.chunks_exact(phdr::SIZE) {
            let p_type = read_u32(ph, phdr::TYPE).unwrap_or(0);
            let word = |off| read_u64(ph, off).unwrap_or(0);
            let (offset, filesz, memsz) =
                (word(phdr::OFFSET), word(phdr::FILESZ), word(phdr::MEMSZ));
            let in_file = offset
                .checked_add(filesz)
                .is_some_and(|end| end <= image.len() as u64);
            match p_type {
                PT_LOAD if memsz > 0 => {
                    if filesz > memsz {
                        return Err(bad("a PT_LOAD segment has p_filesz larger than p_memsz"));
                    }
                    if !in_file {
                        return Err(truncated("PT_LOAD segment", image));
                    }
                    let paddr = word(phdr::PADDR);
                    if paddr.checked_add(memsz).is_none() {
                        return Err(bad("a PT_LOAD segment wraps around the address space"));
                    }
                    let seg = LoadSegment {
                        file_offset: offset,
                        file_size: filesz,
                        mem_size: memsz,
                        paddr: GuestPhysAddr::new(paddr),
                    };
                    if segments.iter().any(|s| s.range().overlaps(&seg.range())) {
                        return Err(bad("two PT_LOAD segments overlap in physical memory"));
                    }
                    segments.push(seg);
                }
                PT_NOTE => {
                    if !in_file {
                        return Err(truncated("PT_NOTE segment", image));
                    }
                    let align = if word(phdr::ALIGN) == 8 { 8 } else { 4 };
                    note_segments.push((offset as usize, filesz as usize, align));
                }
                _ => {}
            }
        }
        if segments.is_empty() {
            return Err(bad("no loadable (PT_LOAD) segment"));
        }
        segments.sort_by_key(|s| s.paddr);
        Ok(Self {
            image,
            entry,
            segments,
            note_segments,
        })
    }

    /// `e_entry` (a virtual address for a Linux vmlinux).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The loadable segments, by ascending physical address.
    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments
    }

    /// The image the segments' file offsets refer to.
    pub fn image(&self) -> &'a [u8] {
        self.image
    }

    /// The notes of every `PT_NOTE` segment, in file order. A malformed note
    /// ends the walk of its segment (the notes before it are kept).
    pub fn notes(&self) -> impl Iterator<Item = Note<'a>> + '_ {
        let image = self.image;
        self.note_segments
            .iter()
            .flat_map(move |&(offset, size, align)| NoteIter {
                data: image.get(offset..offset + size).unwrap_or(&[]),
                pos: 0,
                align,
            })
    }
}

/// Walks the notes of one segment: u32 `namesz`, u32 `descsz`, u32 `type`,
/// then the name and the descriptor, each padded to the segment's alignment
/// (4 bytes, as Linux and the GNU tools lay them out even in ELF64; 8 when
/// the segment says so).
struct NoteIter<'a> {
    data: &'a [u8],
    pos: usize,
    align: usize,
}

impl<'a> Iterator for NoteIter<'a> {
    type Item = Note<'a>;

    fn next(&mut self) -> Option<Note<'a>> {
        let pad = |n: usize| n.checked_add(self.align - 1).map(|v| v & !(self.align - 1));
        let namesz = read_u32(self.data, self.pos)? as usize;
        let descsz = read_u32(self.data, self.pos + 4)? as usize;
        let note_type = read_u32(self.data, self.pos + 8)?;
        let name_at = self.pos + 12;
        let desc_at = name_at.checked_add(pad(namesz)?)?;
        let next = desc_at.checked_add(pad(descsz)?)?;
        let name = self.data.get(name_at..name_at + namesz)?;
        let desc = self.data.get(desc_at..desc_at.checked_add(descsz)?)?;
        self.pos = next;
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        Some(Note {
            name,
            note_type,
            desc,
        })
    }
}
