//! Getting the uncompressed ELF `vmlinux` out of a bzImage, and checking that
//! it has a PVH entry point.
//!
//! A bzImage is the real-mode setup (`setup_sects` + 1 sectors of 512 bytes)
//! followed by the protected-mode part, whose "payload" is the compressed
//! `vmlinux.bin` (an ELF stripped of symbols by `objcopy -S`, with the x86-64
//! relocation table appended when the kernel is relocatable) and, after it,
//! the uncompressed length as a 32-bit little-endian number. The boot protocol
//! (`Documentation/arch/x86/boot.rst`, version 2.08 and later) gives where the
//! payload is: `payload_offset` (0x248, from the start of the protected-mode
//! part) and `payload_length` (0x24C).
//!
//! Decompression runs the `xz` command (Debian's xz-utils, priority
//! "standard"): Debian's kernels use XZ with the x86 BCJ filter
//! (`scripts/xz_wrap.sh`), which the pure-Rust `lzma-rs` does not implement,
//! and neither does the `unxz` applet of Debian's busybox ("corrupted data"),
//! so no crate is added and busybox is no fallback. gzip and zstd kernels go
//! through `gzip` and `zstd` the same way.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

/// Offset of the setup header fields (boot.rst, "The real-mode kernel header").
const SETUP_SECTS: usize = 0x1F1;
const BOOT_FLAG: usize = 0x1FE;
const HEADER_MAGIC: usize = 0x202;
const VERSION: usize = 0x206;
const LOADFLAGS: usize = 0x211;
const KERNEL_ALIGNMENT: usize = 0x230;
const RELOCATABLE: usize = 0x234;
const XLOADFLAGS: usize = 0x236;
const CMDLINE_SIZE: usize = 0x238;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24C;
const PREF_ADDRESS: usize = 0x258;
const INIT_SIZE: usize = 0x260;
/// The header must reach at least `init_size` (protocol 2.10).
const HEADER_END: usize = 0x264;

/// The fields of a bzImage's setup header that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupHeader {
    /// Number of 512-byte setup sectors after the boot sector (0 means 4).
    pub setup_sects: u8,
    /// Boot protocol version, e.g. 0x020f.
    pub version: u16,
    /// `loadflags` (bit 0: loaded high).
    pub loadflags: u8,
    /// Required physical alignment of the kernel.
    pub kernel_alignment: u32,
    /// Whether the kernel is relocatable.
    pub relocatable: bool,
    /// `xloadflags` (bit 0: 64-bit entry at 0x200).
    pub xloadflags: u16,
    /// Maximum command line size.
    pub cmdline_size: u32,
    /// Offset of the payload from the start of the protected-mode code.
    pub payload_offset: u32,
    /// Length of the payload.
    pub payload_length: u32,
    /// Preferred load address.
    pub pref_address: u64,
    /// Memory the kernel needs to decompress itself.
    pub init_size: u32,
}

impl SetupHeader {
    /// Parses and checks the setup header of `image`.
    pub fn parse(image: &[u8]) -> Result<Self> {
        ensure!(
            image.len() >= HEADER_END,
            "too short for a bzImage ({} bytes)",
            image.len()
        );
        let u16_at = |at: usize| u16::from_le_bytes([image[at], image[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
        ensure!(
            u16_at(BOOT_FLAG) == 0xAA55,
            "no 0xAA55 boot flag at 0x1FE: not a bzImage"
        );
        ensure!(
            &image[HEADER_MAGIC..HEADER_MAGIC + 4] == b"HdrS",
            "no \"HdrS\" at 0x202: not a bzImage"
        );
        let header = Self {
            setup_sects: image[SETUP_SECTS],
            version: u16_at(VERSION),
            loadflags: image[LOADFLAGS],
            kernel_alignment: u32_at(KERNEL_ALIGNMENT),
            relocatable: image[RELOCATABLE] != 0,
            xloadflags: u16_at(XLOADFLAGS),
            cmdline_size: u32_at(CMDLINE_SIZE),
            payload_offset: u32_at(PAYLOAD_OFFSET),
            payload_length: u32_at(PAYLOAD_LENGTH),
            pref_address: u64_at(PREF_ADDRESS),
            init_size: u32_at(INIT_SIZE),
        };
        ensure!(
            header.version >= 0x0208,
            "boot protocol {:#06x} has no payload fields (2.08 or later needed)",
            header.version
        );
        Ok(header)
    }

    /// Setup sectors, with the historical "0 means 4".
    pub fn setup_sectors(&self) -> usize {
        if self.setup_sects == 0 {
            4
        } else {
            self.setup_sects as usize
        }
    }

    /// File offset of the protected-mode code.
    pub fn protected_mode_offset(&self) -> usize {
        (self.setup_sectors() + 1) * 512
    }

    /// File range of the compressed payload.
    pub fn payload_range(&self) -> std::ops::Range<usize> {
        let start = self.protected_mode_offset() + self.payload_offset as usize;
        start..start + self.payload_length as usize
    }
}

/// The size of the Authenticode signature (PE certificate table) of an
/// EFI-stub bzImage, or `None` when it has none (or no PE header at all).
/// Debian's signed kernel packages carry such a signature; the `-unsigned`
/// ones do not.
pub fn authenticode_signature(image: &[u8]) -> Option<u32> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(image.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?));
    let pe = u32_at(0x3C)? as usize;
    if image.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let optional = pe + 24;
    let (count_at, directories) = match u16_at(optional)? {
        0x20B => (optional + 108, optional + 112), // PE32+
        0x10B => (optional + 92, optional + 96),   // PE32
        _ => return None,
    };
    // Entry 4 of the data directories: the certificate table.
    if u32_at(count_at)? <= 4 {
        return None;
    }
    let size = u32_at(directories + 4 * 8 + 4)?;
    (size != 0).then_some(size)
}

/// The compression of a payload, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `FD 37 7A 58 5A 00`
    Xz,
    /// `1F 8B`
    Gzip,
    /// `28 B5 2F FD`
    Zstd,
    /// Already an ELF (`7F 45 4C 46`).
    None,
}

impl Compression {
    /// Recognizes the payload's format.
    pub fn detect(payload: &[u8]) -> Result<Self> {
        Ok(if payload.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
            Self::Xz
        } else if payload.starts_with(&[0x1F, 0x8B]) {
            Self::Gzip
        } else if payload.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Self::Zstd
        } else if payload.starts_with(b"\x7fELF") {
            Self::None
        } else {
            bail!(
                "unsupported kernel compression (payload starts {:02x?}); XZ, gzip and zstd are supported",
                &payload[..payload.len().min(8)]
            )
        })
    }
}

/// The compressed payload of a bzImage and the uncompressed size recorded
/// after it.
pub fn payload(image: &[u8]) -> Result<(SetupHeader, &[u8], u32)> {
    let header = SetupHeader::parse(image)?;
    let range = header.payload_range();
    ensure!(
        range.end <= image.len() && range.len() >= 8,
        "payload {:#x}..{:#x} lies outside the {}-byte image",
        range.start,
        range.end,
        image.len()
    );
    let payload = &image[range];
    let (data, size) = payload.split_at(payload.len() - 4);
    Ok((header, data, u32::from_le_bytes(size.try_into().unwrap())))
}

/// Decompresses `data` with the external tool for `kind`.
pub fn decompress(kind: Compression, data: &[u8]) -> Result<Vec<u8>> {
    let (program, args, package): (&str, &[&str], &str) = match kind {
        Compression::None => return Ok(data.to_vec()),
        // --single-stream: ignore anything after the first stream.
        Compression::Xz => (
            "xz",
            &["--decompress", "--stdout", "--single-stream"],
            "xz-utils",
        ),
        Compression::Gzip => ("gzip", &["--decompress", "--stdout"], "gzip"),
        Compression::Zstd => ("zstd", &["--decompress", "--stdout"], "zstd"),
    };
    pipe_through(Path::new(program), args, data).with_context(|| {
        format!("cannot decompress the {kind:?} kernel payload with `{program}` (Debian package {package})")
    })
}

/// Runs `program args` with `input` on its stdin and returns its stdout.
fn pipe_through(program: &Path, args: &[&str], input: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start it")?;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut output = Vec::new();
    // Feed stdin from a scoped thread while this one drains stdout.
    let write_result = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let result = stdin.write_all(input);
            drop(stdin);
            result
        });
        let read_result = stdout.read_to_end(&mut output);
        (writer.join(), read_result)
    });
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait()?;
    ensure!(status.success(), "{status}: {}", stderr.trim());
    write_result.1.context("reading its output")?;
    match write_result.0 {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error).context("writing its input"),
        Err(_) => bail!("the input thread panicked"),
    }
    Ok(output)
}

/// What [`inspect_elf`] found in a vmlinux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmlinuxInfo {
    /// `e_entry` (for Linux: the physical address of `startup_64`).
    pub entry: u64,
    /// The PVH entry: the descriptor of the "Xen" note of type 18
    /// (`XEN_ELFNOTE_PHYS32_ENTRY`), a 32-bit physical address.
    pub pvh_entry: u64,
    /// `(p_paddr, p_memsz)` of each PT_LOAD segment.
    pub loads: Vec<(u64, u64)>,
    /// Size of the file in bytes.
    pub file_size: u64,
}

/// ELF constants.
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
/// `XEN_ELFNOTE_PHYS32_ENTRY` (xen/include/public/elfnote.h).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Checks that `elf` is an ELF64 x86-64 image with a PVH entry note and returns
/// what it found.
pub fn inspect_elf(elf: &[u8]) -> Result<VmlinuxInfo> {
    ensure!(
        elf.len() >= 64 && elf.starts_with(b"\x7fELF"),
        "not an ELF file"
    );
    ensure!(elf[4] == ELFCLASS64, "not ELF64 (class {})", elf[4]);
    ensure!(elf[5] == ELFDATA2LSB, "not little-endian");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    ensure!(
        u16_at(18) == EM_X86_64,
        "not x86-64 (e_machine {})",
        u16_at(18)
    );
    let entry = u64_at(24);
    let phoff = u64_at(32) as usize;
    let phentsize = u16_at(54) as usize;
    let phnum = u16_at(56) as usize;
    ensure!(phentsize >= 56, "bad e_phentsize {phentsize}");
    ensure!(
        phoff
            .checked_add(phentsize * phnum)
            .is_some_and(|end| end <= elf.len()),
        "program headers lie outside the file"
    );
    let mut loads = Vec::new();
    let mut pvh_entry = None;
    for index in 0..phnum {
        let ph = phoff + index * phentsize;
        let p_type = u32_at(ph);
        let (offset, paddr, filesz, memsz) = (
            u64_at(ph + 8),
            u64_at(ph + 24),
            u64_at(ph + 32),
            u64_at(ph + 40),
        );
        match p_type {
            PT_LOAD => loads.push((paddr, memsz)),
            PT_NOTE => {
                let start = offset as usize;
                let end = start
                    .checked_add(filesz as usize)
                    .filter(|&end| end <= elf.len());
                let end = end.with_context(|| format!("PT_NOTE {index} lies outside the file"))?;
                for (name, note_type, desc) in notes(&elf[start..end])? {
                    if name == b"Xen" && note_type == XEN_ELFNOTE_PHYS32_ENTRY {
                        let value = match desc.len() {
                            4 => u32::from_le_bytes(desc.try_into().unwrap()) as u64,
                            8 => u64::from_le_bytes(desc.try_into().unwrap()),
                            n => bail!("PHYS32_ENTRY note has a {n}-byte descriptor"),
                        };
                        pvh_entry = Some(value);
                    }
                }
            }
            _ => {}
        }
    }
    let pvh_entry = pvh_entry.context(
        "no \"Xen\" note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY): kernel built without CONFIG_PVH?",
    )?;
    ensure!(
        pvh_entry <= u32::MAX as u64,
        "PVH entry {pvh_entry:#x} is above 4 GiB"
    );
    Ok(VmlinuxInfo {
        entry,
        pvh_entry,
        loads,
        file_size: elf.len() as u64,
    })
}

/// One ELF note: name (without its NUL), type, descriptor.
type Note<'a> = (&'a [u8], u32, &'a [u8]);

/// The notes of a PT_NOTE segment.
fn notes(mut data: &[u8]) -> Result<Vec<Note<'_>>> {
    let mut notes = Vec::new();
    while data.len() >= 12 {
        let namesz = u32::from_le_bytes(data[0..4].try_into().unwrap()) as usize;
        let descsz = u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize;
        let note_type = u32::from_le_bytes(data[8..12].try_into().unwrap());
        let name_end = 12 + namesz;
        let desc_start = name_end.next_multiple_of(4);
        let desc_end = desc_start + descsz;
        ensure!(desc_end <= data.len(), "truncated ELF note");
        let name = &data[12..name_end];
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        notes.push((name, note_type, &data[desc_start..desc_end]));
        data = &data[desc_end.next_multiple_of(4).min(data.len())..];
    }
    Ok(notes)
}

/// Extracts the ELF vmlinux of `bzimage` to `out` (atomically). Skips the
/// work when `out` is newer than `bzimage` and still passes [`inspect_elf`].
pub fn extract(bzimage: &Path, out: &Path) -> Result<VmlinuxInfo> {
    if let Some(info) = cached(bzimage, out) {
        eprintln!("assets: vmlinux up to date: {}", out.display());
        report(out, &info);
        return Ok(info);
    }
    let started = std::time::Instant::now();
    let image = std::fs::read(bzimage).with_context(|| format!("reading {}", bzimage.display()))?;
    let (header, data, size) = payload(&image).with_context(|| format!("{}", bzimage.display()))?;
    let kind = Compression::detect(data)?;
    eprintln!(
        "assets: {}: boot protocol {}.{:02}, {} setup sectors, {:?} payload of {} bytes at {:#x}, {} bytes uncompressed",
        bzimage.display(),
        header.version >> 8,
        header.version & 0xff,
        header.setup_sectors(),
        kind,
        header.payload_length,
        header.payload_range().start,
        size
    );
    let elf = decompress(kind, data)?;
    ensure!(
        elf.len() == size as usize,
        "decompressed {} bytes but the bzImage says {size}",
        elf.len()
    );
    let info = inspect_elf(&elf).context("the decompressed payload")?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = out.with_extension("partial");
    std::fs::write(&temporary, &elf).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, out)?;
    eprintln!(
        "assets: extracted {} in {:.1?}",
        out.display(),
        started.elapsed()
    );
    report(out, &info);
    Ok(info)
}

/// The info of `out` if it is newer than `bzimage` and a valid PVH vmlinux.
fn cached(bzimage: &Path, out: &Path) -> Option<VmlinuxInfo> {
    let source = std::fs::metadata(bzimage).ok()?.modified().ok()?;
    let target = std::fs::metadata(out).ok()?.modified().ok()?;
    if target < source {
        return None;
    }
    inspect_elf(&std::fs::read(out).ok()?).ok()
}

/// Prints the entry points on stderr.
fn report(out: &Path, info: &VmlinuxInfo) {
    eprintln!(
        "assets: {}: ELF64 x86-64, {} bytes, e_entry {:#x}, PVH entry (Xen note 18) {:#x}",
        out.display(),
        info.file_size,
        info.entry,
        info.pvh_entry
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 x86-64 file: one PT_LOAD and one PT_NOTE holding a
    /// "GNU" note and a "Xen" PHYS32_ENTRY note with an 8-byte descriptor.
    pub(crate) fn tiny_elf(pvh_entry: u64) -> Vec<u8> {
        let mut notes = Vec::new();
        let mut note = |name: &[u8], note_type: u32, desc: &[u8]| {
            notes.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&note_type.to_le_bytes());
            notes.extend_from_slice(name);
            notes.push(0);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
            notes.extend_from_slice(desc);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        };
        note(b"GNU", 3, &[0xAB; 20]);
        note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY, &pvh_entry.to_le_bytes());
        let phoff = 64u64;
        let notes_offset = phoff + 2 * 56;
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = ELFCLASS64;
        elf[5] = ELFDATA2LSB;
        elf[6] = 1;
        elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[24..32].copy_from_slice(&0x100_0000u64.to_le_bytes());
        elf[32..40].copy_from_slice(&phoff.to_le_bytes());
        elf[52..54].copy_from_slice(&64u16.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let mut phdr = |p_type: u32, offset: u64, paddr: u64, size: u64| {
            let mut ph = vec![0u8; 56];
            ph[0..4].copy_from_slice(&p_type.to_le_bytes());
            ph[8..16].copy_from_slice(&offset.to_le_bytes());
            ph[16..24].copy_from_slice(&(paddr | 0xffff_ffff_8000_0000).to_le_bytes());
            ph[24..32].copy_from_slice(&paddr.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            ph[40..48].copy_from_slice(&size.to_le_bytes());
            elf.extend_from_slice(&ph);
        };
        phdr(PT_LOAD, 0, 0x100_0000, 0x1000);
        phdr(PT_NOTE, notes_offset, 0, notes.len() as u64);
        elf.extend_from_slice(&notes);
        // Code-like filler so that the BCJ filter has something to chew on.
        for i in 0..4096u32 {
            elf.extend_from_slice(&[0xE8, i as u8, (i >> 8) as u8, 0, 0, 0x90]);
        }
        elf
    }

    /// A fake bzImage around `payload` (compressed, size not yet appended).
    pub(crate) fn fake_bzimage(
        compressed: &[u8],
        uncompressed_len: u32,
        setup_sects: u8,
    ) -> Vec<u8> {
        let sectors = if setup_sects == 0 {
            4
        } else {
            setup_sects as usize
        };
        let pm_offset = (sectors + 1) * 512;
        let payload_offset = 0x3c8usize; // arbitrary, like a real head_64.o
        let mut image = vec![0u8; pm_offset + payload_offset];
        image[SETUP_SECTS] = setup_sects;
        image[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xAA55u16.to_le_bytes());
        image[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        image[VERSION..VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        image[LOADFLAGS] = 1;
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4]
            .copy_from_slice(&(payload_offset as u32).to_le_bytes());
        let length = compressed.len() as u32 + 4;
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&length.to_le_bytes());
        image[INIT_SIZE..INIT_SIZE + 4].copy_from_slice(&0x200_0000u32.to_le_bytes());
        image.extend_from_slice(compressed);
        image.extend_from_slice(&uncompressed_len.to_le_bytes());
        image.extend_from_slice(&[0x55; 100]); // trailing data, as in real images
        image
    }

    #[test]
    fn setup_header_fields() {
        let image = fake_bzimage(b"\x7fELF-not-really", 15, 27);
        let header = SetupHeader::parse(&image).unwrap();
        assert_eq!(header.setup_sects, 27);
        assert_eq!(header.version, 0x020f);
        assert_eq!(header.protected_mode_offset(), 28 * 512);
        assert_eq!(header.payload_offset, 0x3c8);
        assert_eq!(header.payload_length, 15 + 4);
        assert_eq!(header.payload_range().start, 28 * 512 + 0x3c8);
        let (_, data, size) = payload(&image).unwrap();
        assert_eq!(data, b"\x7fELF-not-really");
        assert_eq!(size, 15);
        assert_eq!(Compression::detect(data).unwrap(), Compression::None);
    }

    #[test]
    fn setup_sects_zero_means_four() {
        let image = fake_bzimage(b"12345678", 8, 0);
        let header = SetupHeader::parse(&image).unwrap();
        assert_eq!(header.setup_sectors(), 4);
        assert_eq!(header.protected_mode_offset(), 5 * 512);
    }

    #[test]
    fn rejects_non_bzimages() {
        let mut image = fake_bzimage(b"12345678", 8, 4);
        image[BOOT_FLAG] = 0;
        assert!(SetupHeader::parse(&image).is_err());
        let mut image = fake_bzimage(b"12345678", 8, 4);
        image[VERSION..VERSION + 2].copy_from_slice(&0x0206u16.to_le_bytes());
        assert!(SetupHeader::parse(&image).is_err());
        let mut image = fake_bzimage(b"12345678", 8, 4);
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&0x1000_0000u32.to_le_bytes());
        assert!(payload(&image).is_err());
        assert!(SetupHeader::parse(&[0; 100]).is_err());
    }

    #[test]
    fn finds_the_pvh_note() {
        let info = inspect_elf(&tiny_elf(0x2a1_55c0)).unwrap();
        assert_eq!(info.pvh_entry, 0x2a1_55c0);
        assert_eq!(info.entry, 0x100_0000);
        assert_eq!(info.loads, vec![(0x100_0000, 0x1000)]);
        let mut no_note = tiny_elf(0x1234);
        // Turn the Xen note's type into 17.
        let at = no_note.windows(4).position(|w| w == b"Xen\0").unwrap() - 4;
        no_note[at..at + 4].copy_from_slice(&17u32.to_le_bytes());
        assert!(inspect_elf(&no_note).is_err());
        let mut arm = tiny_elf(0x1234);
        arm[18] = 183;
        assert!(inspect_elf(&arm).is_err());
    }

    /// Compresses with the `xz` command like `scripts/xz_wrap.sh` does for x86
    /// (BCJ x86 filter, LZMA2, CRC32); `None` when xz is not installed.
    pub(crate) fn xz_like_kbuild(data: &[u8]) -> Option<Vec<u8>> {
        let args = [
            "--format=xz",
            "--check=crc32",
            "--x86",
            "--lzma2=dict=1MiB",
            "--stdout",
        ];
        match pipe_through(Path::new("xz"), &args, data) {
            Ok(compressed) => Some(compressed),
            Err(error) => {
                eprintln!("xz unavailable ({error:#}): skipped");
                None
            }
        }
    }

    #[test]
    fn xz_payload_round_trip() {
        let elf = tiny_elf(0x0100_0340);
        let Some(compressed) = xz_like_kbuild(&elf) else {
            return;
        };
        let image = fake_bzimage(&compressed, elf.len() as u32, 30);
        let (_, data, size) = payload(&image).unwrap();
        assert_eq!(Compression::detect(data).unwrap(), Compression::Xz);
        assert_eq!(size as usize, elf.len());
        let decompressed = decompress(Compression::Xz, data).unwrap();
        assert_eq!(decompressed, elf);

        let dir = std::env::temp_dir().join(format!("oxen-assets-xz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bzimage = dir.join("bzImage");
        let vmlinux = dir.join("vmlinux");
        std::fs::write(&bzimage, &image).unwrap();
        let info = extract(&bzimage, &vmlinux).unwrap();
        assert_eq!(info.pvh_entry, 0x0100_0340);
        assert_eq!(std::fs::read(&vmlinux).unwrap(), elf);
        // The second call finds the cached file.
        let again = extract(&bzimage, &vmlinux).unwrap();
        assert_eq!(again, info);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
