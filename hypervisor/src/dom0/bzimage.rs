//! Starting a bzImage through the Linux 64-bit boot protocol.
//!
//! References (Linux `Documentation/arch/x86/`): boot.rst "The Real-Mode
//! Kernel Header" (the setup header fields and their protocol versions),
//! "Details of Header Fields", "Loading the Rest of the Kernel" (the
//! protected-mode kernel starts at `(setup_sects + 1) * 512` in the file) and
//! "64-bit Boot Protocol" (entry at load address + 0x200, RSI = boot_params,
//! identity-mapped long mode, `__BOOT_CS`/`__BOOT_DS`); zero-page.rst (the
//! `boot_params` layout); `arch/x86/include/uapi/asm/bootparam.h` (flag bits).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::entry::{BOOT_GDT_SIZE, EntryState, boot_gdt};
use super::memory::{E820_ENTRY_SIZE, E820_MAX_ENTRIES_ZEROPAGE, E820Entry};
use super::page_tables::{IdentityPageSize, build_identity_page_tables, identity_tables_size};
use super::pvh::{free_set, page_round, place_block, place_initrd};
use super::ranges::Prefer;
use super::{Dom0Error, GuestRange, put, read_u8, read_u16, read_u32, read_u64};
use crate::mm::addr::{ByteSize, GuestPhysAddr, PAGE_SIZE, PhysRange};

/// `boot_flag` (boot.rst: "0xAA55 magic number").
pub const BOOT_FLAG_MAGIC: u16 = 0xAA55;
/// `header`: "HdrS" read as a little-endian u32.
pub const HDRS_MAGIC: u32 = u32::from_le_bytes(*b"HdrS");
/// The oldest protocol with the 64-bit entry's `xloadflags` (2.12).
pub const MIN_PROTOCOL: u16 = 0x020C;
/// The protocol that moved `acpi_rsdp_addr` to the zero page's 0x070 (2.14).
pub const RSDP_PROTOCOL: u16 = 0x020E;
/// Offset of the 64-bit entry from the protected-mode kernel's start
/// (boot.rst, "64-bit Boot Protocol").
pub const ENTRY64_OFFSET: u64 = 0x200;
/// Size of `boot_params` (the zero page).
pub const ZERO_PAGE_SIZE: usize = 4096;
/// `type_of_loader` for a loader without an assigned ID (boot.rst,
/// "type_of_loader": 0xFF, "undefined").
pub const LOADER_TYPE_UNDEFINED: u8 = 0xFF;
/// `heap_end_ptr`: the end of the setup heap (0xE000 from the real-mode
/// code's start) minus 0x200, as boot.rst's "Sample Boot Configuration" sets
/// it. The 64-bit entry skips the real-mode code, so it is only for form.
pub const HEAP_END_PTR: u16 = 0xE000 - 0x200;

/// Setup-header fields, at their offsets in the file and in `boot_params`
/// (boot.rst, "The Real-Mode Kernel Header"; offset/size, protocol).
pub mod hdr {
    /// 01F1/1, all: `setup_sects`, 0 meaning 4.
    pub const SETUP_SECTS: usize = 0x1F1;
    /// 01FE/2, all: `boot_flag`, 0xAA55.
    pub const BOOT_FLAG: usize = 0x1FE;
    /// 0200/2, 2.00+: `jump`; its second byte gives the header's end.
    pub const JUMP: usize = 0x200;
    /// 0202/4, 2.00+: `header`, "HdrS".
    pub const HEADER: usize = 0x202;
    /// 0206/2, 2.00+: `version`.
    pub const VERSION: usize = 0x206;
    /// 0210/1, 2.00+: `type_of_loader`.
    pub const TYPE_OF_LOADER: usize = 0x210;
    /// 0211/1, 2.00+: `loadflags`.
    pub const LOADFLAGS: usize = 0x211;
    /// 0218/4, 2.00+: `ramdisk_image`.
    pub const RAMDISK_IMAGE: usize = 0x218;
    /// 021C/4, 2.00+: `ramdisk_size`.
    pub const RAMDISK_SIZE: usize = 0x21C;
    /// 0224/2, 2.01+: `heap_end_ptr`.
    pub const HEAP_END_PTR: usize = 0x224;
    /// 0228/4, 2.02+: `cmd_line_ptr`.
    pub const CMD_LINE_PTR: usize = 0x228;
    /// 022C/4, 2.03+: `initrd_addr_max`.
    pub const INITRD_ADDR_MAX: usize = 0x22C;
    /// 0230/4, 2.05+: `kernel_alignment`.
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    /// 0234/1, 2.05+: `relocatable_kernel`.
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    /// 0236/2, 2.12+: `xloadflags`.
    pub const XLOADFLAGS: usize = 0x236;
    /// 0238/4, 2.06+: `cmdline_size`.
    pub const CMDLINE_SIZE: usize = 0x238;
    /// 0258/8, 2.10+: `pref_address`.
    pub const PREF_ADDRESS: usize = 0x258;
    /// 0260/4, 2.10+: `init_size`.
    pub const INIT_SIZE: usize = 0x260;
    /// The header must reach at least past `init_size`.
    pub const MIN_END: usize = 0x264;
}

/// Other `boot_params` fields (zero-page.rst; offset/size).
pub mod zp {
    /// 070/008: `acpi_rsdp_addr`.
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    /// 0C0/004: `ext_ramdisk_image` (bits 63:32).
    pub const EXT_RAMDISK_IMAGE: usize = 0x0C0;
    /// 0C4/004: `ext_ramdisk_size` (bits 63:32).
    pub const EXT_RAMDISK_SIZE: usize = 0x0C4;
    /// 0C8/004: `ext_cmd_line_ptr` (bits 63:32).
    pub const EXT_CMD_LINE_PTR: usize = 0x0C8;
    /// 1E8/001: `e820_entries`.
    pub const E820_ENTRIES: usize = 0x1E8;
    /// 290/040: `edd_mbr_sig_buffer`, the first field after the setup header.
    pub const AFTER_SETUP_HEADER: usize = 0x290;
    /// 2D0/A00: `e820_table`, 128 entries of 20 bytes.
    pub const E820_TABLE: usize = 0x2D0;
}

const _: () = assert!(zp::E820_TABLE + E820_MAX_ENTRIES_ZEROPAGE * E820_ENTRY_SIZE == 0xCD0);

/// `loadflags` bits (boot.rst, "loadflags").
pub mod loadflags {
    /// The protected-mode code is loaded at 0x100000 (a bzImage).
    pub const LOADED_HIGH: u8 = 1 << 0;
    /// `heap_end_ptr` is valid.
    pub const CAN_USE_HEAP: u8 = 1 << 7;
}

/// `xloadflags` bits (boot.rst, "xloadflags").
pub mod xloadflags {
    /// The kernel has the 64-bit entry at +0x200.
    pub const XLF_KERNEL_64: u16 = 1 << 0;
    /// The kernel, boot_params, command line and ramdisk may be above 4 GiB.
    pub const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
}

/// A checked bzImage. (`Debug` shows the image's length, not its bytes.)
#[derive(Clone, Copy)]
pub struct BzImage<'a> {
    image: &'a [u8],
    /// `version`.
    pub version: u16,
    /// Offset of the protected-mode kernel in the file.
    pub kernel_offset: usize,
    /// `loadflags` as the image has them.
    pub loadflags: u8,
    /// `xloadflags`.
    pub xloadflags: u16,
    /// `kernel_alignment` (a power of two).
    pub kernel_alignment: u64,
    /// `relocatable_kernel` non-zero.
    pub relocatable: bool,
    /// `cmdline_size`: the longest command line, NUL excluded.
    pub cmdline_size: usize,
    /// `initrd_addr_max`: the highest byte the initrd may occupy.
    pub initrd_addr_max: u64,
    /// `pref_address`.
    pub pref_address: u64,
    /// `init_size`: memory the kernel needs from its load address on.
    pub init_size: u64,
    /// One past the setup header: `0x202 + image[0x201]` (boot.rst, "64-bit
    /// Boot Protocol").
    pub header_end: usize,
}

fn bad(reason: &'static str) -> Dom0Error {
    Dom0Error::BadBzImage { reason }
}

impl fmt::Debug for BzImage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BzImage")
            .field("image_len", &self.image.len())
            .field("version", &format_args!("{:#06x}", self.version))
            .field("kernel_offset", &self.kernel_offset)
            .field("xloadflags", &format_args!("{:#x}", self.xloadflags))
            .field("relocatable", &self.relocatable)
            .field("pref_address", &format_args!("{:#x}", self.pref_address))
            .field("init_size", &format_args!("{:#x}", self.init_size))
            .finish_non_exhaustive()
    }
}

impl<'a> BzImage<'a> {
    /// Checks the setup header.
    pub fn parse(image: &'a [u8]) -> Result<Self, Dom0Error> {
        let truncated = || Dom0Error::Truncated {
            what: "setup header",
            file_len: image.len(),
        };
        let header_end =
            usize::from(read_u8(image, hdr::JUMP + 1).ok_or_else(truncated)?) + hdr::HEADER;
        if read_u16(image, hdr::BOOT_FLAG) != Some(BOOT_FLAG_MAGIC)
            || read_u32(image, hdr::HEADER) != Some(HDRS_MAGIC)
        {
            return Err(bad(
                "no setup header (boot_flag 0xAA55 and \"HdrS\" missing)",
            ));
        }
        let version = read_u16(image, hdr::VERSION).ok_or_else(truncated)?;
        if version < MIN_PROTOCOL {
            return Err(Dom0Error::BzImageTooOld { version });
        }
        if !(hdr::MIN_END..=zp::AFTER_SETUP_HEADER).contains(&header_end) {
            return Err(bad(
                "the setup header's length (jump offset at 0x201) is out of range",
            ));
        }
        if image.len() < header_end {
            return Err(truncated());
        }
        let byte = |off| read_u8(image, off).unwrap_or(0);
        let word = |off| read_u32(image, off).unwrap_or(0);
        let setup_sects = match byte(hdr::SETUP_SECTS) {
            0 => 4,
            n => usize::from(n),
        };
        let kernel_offset = (setup_sects + 1) * 512;
        if image.len() <= kernel_offset {
            return Err(Dom0Error::Truncated {
                what: "protected-mode kernel",
                file_len: image.len(),
            });
        }
        let loadflags = byte(hdr::LOADFLAGS);
        if loadflags & loadflags::LOADED_HIGH == 0 {
            return Err(bad("it is a zImage (LOADED_HIGH clear), not a bzImage"));
        }
        let xloadflags = read_u16(image, hdr::XLOADFLAGS).unwrap_or(0);
        if xloadflags & xloadflags::XLF_KERNEL_64 == 0 {
            return Err(bad(
                "it has no 64-bit entry point (XLF_KERNEL_64 clear); use a 64-bit kernel",
            ));
        }
        let kernel_alignment = u64::from(word(hdr::KERNEL_ALIGNMENT));
        if !kernel_alignment.is_power_of_two() {
            return Err(bad("kernel_alignment is not a power of two"));
        }
        let init_size = u64::from(word(hdr::INIT_SIZE));
        if init_size < (image.len() - kernel_offset) as u64 {
            return Err(bad("init_size is smaller than the kernel itself"));
        }
        let pref_address = read_u64(image, hdr::PREF_ADDRESS).unwrap_or(0);
        if pref_address.checked_add(init_size).is_none() {
            return Err(bad("pref_address + init_size overflows"));
        }
        Ok(Self {
            image,
            version,
            kernel_offset,
            loadflags,
            xloadflags,
            kernel_alignment: kernel_alignment.max(PAGE_SIZE),
            relocatable: byte(hdr::RELOCATABLE_KERNEL) != 0,
            cmdline_size: word(hdr::CMDLINE_SIZE) as usize,
            initrd_addr_max: u64::from(word(hdr::INITRD_ADDR_MAX)),
            pref_address,
            init_size,
            header_end,
        })
    }

    /// The protected-mode kernel: the bytes to copy to the load address.
    pub fn protected_mode_kernel(&self) -> &'a [u8] {
        &self.image[self.kernel_offset..]
    }

    /// The range a non-relocatable kernel must occupy (for
    /// [`super::memory::plan_dom0_memory`]'s `required`); `None` if it can move.
    pub fn required_range(&self) -> Option<PhysRange> {
        if self.relocatable {
            return None;
        }
        GuestRange::from_start_size(self.pref_address, page_round(self.init_size))
            .map(|r| r.identity_host())
    }

    /// Where the kernel goes: `[load, load + init_size)` in dom0's RAM, at
    /// `pref_address` if that is free, else (relocatable kernels only) the
    /// lowest `kernel_alignment`-aligned place above `pref_address` and below
    /// 4 GiB. Never below `pref_address`: without KASLR the decompressor
    /// writes the kernel at `max(load address, LOAD_PHYSICAL_ADDR)`
    /// (`arch/x86/boot/compressed/head_64.S`), and `LOAD_PHYSICAL_ADDR` is
    /// what `pref_address` holds, so memory below it would not be used and
    /// memory at it might not be dom0's.
    pub fn choose_load_range(&self, dom0_ram: &[PhysRange]) -> Result<GuestRange, Dom0Error> {
        let size = page_round(self.init_size);
        let free = free_set(dom0_ram, &[]);
        let pref_end = self.pref_address.saturating_add(size);
        if self.pref_address.is_multiple_of(PAGE_SIZE)
            && free.contains_range(self.pref_address, pref_end)
        {
            return GuestRange::from_start_size(self.pref_address, size)
                .ok_or(bad("pref_address overflows"));
        }
        if !self.relocatable {
            return Err(Dom0Error::RequiredRangeUnavailable {
                range: self
                    .required_range()
                    .unwrap_or(PhysRange::new(Default::default(), Default::default())),
            });
        }
        let at = free
            .find_fit(
                size,
                self.kernel_alignment,
                self.pref_address.max(0x10_0000),
                1 << 32,
                Prefer::Low,
            )
            .ok_or(Dom0Error::NoRoom {
                what: "kernel",
                size: ByteSize::new(size),
            })?;
        GuestRange::from_start_size(at, size).ok_or(bad("load address overflows"))
    }
}

/// Where the 64-bit boot's pieces go. The boot block holds, from its start:
/// the zero page (one page), the boot GDT and the command line (from the
/// second page on), then the identity page tables (page aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BzLayout {
    /// `[load address, load address + init_size)`.
    pub kernel: GuestRange,
    /// The whole boot block.
    pub block: GuestRange,
    /// `boot_params` (RSI at entry).
    pub boot_params: GuestPhysAddr,
    /// The boot GDT.
    pub gdt: GuestPhysAddr,
    /// The command line.
    pub cmdline: GuestPhysAddr,
    /// Its length without the NUL.
    pub cmdline_len: usize,
    /// The PML4 (CR3 at entry).
    pub page_tables: GuestPhysAddr,
    /// Page size of the identity map of the first 4 GiB.
    pub page_size: IdentityPageSize,
    /// Where the initrd goes, if there is one.
    pub initrd: Option<GuestRange>,
}

/// What the identity tables map: the first 4 GiB, where everything placed
/// here lies.
pub const IDENTITY_LIMIT: u64 = 1 << 32;

/// What [`place_bzimage`] needs to know.
#[derive(Clone, Copy, Debug)]
pub struct BzPlacementRequest<'a> {
    /// dom0's RAM.
    pub dom0_ram: &'a [PhysRange],
    /// Length of the command line without its NUL.
    pub cmdline_len: usize,
    /// Size of the initrd, if any.
    pub initrd_size: Option<ByteSize>,
    /// Page size of the identity map.
    pub page_size: IdentityPageSize,
}

/// Chooses the kernel's load range, then the boot block (conventional memory
/// if it fits, else low in dom0's RAM below 4 GiB) and the initrd (as high as
/// possible below `initrd_addr_max` and 4 GiB), clear of one another.
pub fn place_bzimage(
    image: &BzImage<'_>,
    req: &BzPlacementRequest<'_>,
) -> Result<BzLayout, Dom0Error> {
    if req.cmdline_len > image.cmdline_size {
        return Err(Dom0Error::CmdlineTooLong {
            len: req.cmdline_len,
            max: image.cmdline_size,
        });
    }
    let kernel = image.choose_load_range(req.dom0_ram)?;
    let tables = identity_tables_size(IDENTITY_LIMIT, req.page_size)? as u64;
    let low = ZERO_PAGE_SIZE as u64 + page_round(64 + req.cmdline_len as u64 + 1);
    let size = low + tables;
    let mut free = free_set(req.dom0_ram, &[kernel]);
    let base = place_block(&free, size, IDENTITY_LIMIT).ok_or(Dom0Error::NoRoom {
        what: "boot_params block",
        size: ByteSize::new(size),
    })?;
    free.remove(base, base + size);
    let initrd_limit = image.initrd_addr_max.saturating_add(1).min(IDENTITY_LIMIT);
    let initrd = match req.initrd_size {
        Some(s) => Some(place_initrd(&free, s, initrd_limit)?),
        None => None,
    };
    let at = |off: u64| GuestPhysAddr::new(base + off);
    Ok(BzLayout {
        kernel,
        block: GuestRange {
            start: at(0),
            end: at(size),
        },
        boot_params: at(0),
        gdt: at(ZERO_PAGE_SIZE as u64),
        cmdline: at(ZERO_PAGE_SIZE as u64 + 64),
        cmdline_len: req.cmdline_len,
        page_tables: at(low),
        page_size: req.page_size,
        initrd,
    })
}

/// The `boot_params` zero page: zeroed, the image's setup header copied to
/// 0x1F1, then the loader's fields: `type_of_loader` 0xFF, `loadflags` with
/// LOADED_HIGH and CAN_USE_HEAP, `heap_end_ptr`, the command line and
/// ramdisk pointers (low 32 bits in the header, high 32 bits in the `ext_`
/// fields), the e820 map and, from protocol 2.14, `acpi_rsdp_addr`.
pub fn build_zero_page(
    image: &BzImage<'_>,
    layout: &BzLayout,
    e820: &[E820Entry],
    rsdp: Option<GuestPhysAddr>,
) -> Result<[u8; ZERO_PAGE_SIZE], Dom0Error> {
    if e820.len() > E820_MAX_ENTRIES_ZEROPAGE {
        return Err(Dom0Error::TooManyE820Entries { count: e820.len() });
    }
    let mut zp = [0u8; ZERO_PAGE_SIZE];
    put(
        &mut zp,
        hdr::SETUP_SECTS,
        &image.image[hdr::SETUP_SECTS..image.header_end],
    );
    zp[hdr::TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    zp[hdr::LOADFLAGS] = image.loadflags | loadflags::LOADED_HIGH | loadflags::CAN_USE_HEAP;
    put(&mut zp, hdr::HEAP_END_PTR, &HEAP_END_PTR.to_le_bytes());
    let split = |v: u64| ((v as u32).to_le_bytes(), ((v >> 32) as u32).to_le_bytes());
    let (lo, hi) = split(layout.cmdline.as_u64());
    put(&mut zp, hdr::CMD_LINE_PTR, &lo);
    put(&mut zp, zp::EXT_CMD_LINE_PTR, &hi);
    let (image_lo, image_hi, size_lo, size_hi) = match layout.initrd {
        Some(r) => {
            let (a, b) = split(r.start.as_u64());
            let (c, d) = split(r.size().as_u64());
            (a, b, c, d)
        }
        None => ([0; 4], [0; 4], [0; 4], [0; 4]),
    };
    put(&mut zp, hdr::RAMDISK_IMAGE, &image_lo);
    put(&mut zp, zp::EXT_RAMDISK_IMAGE, &image_hi);
    put(&mut zp, hdr::RAMDISK_SIZE, &size_lo);
    put(&mut zp, zp::EXT_RAMDISK_SIZE, &size_hi);
    zp[zp::E820_ENTRIES] = e820.len() as u8;
    for (i, e) in e820.iter().enumerate() {
        put(&mut zp, zp::E820_TABLE + i * E820_ENTRY_SIZE, &e.to_bytes());
    }
    if let (Some(rsdp), true) = (rsdp, image.version >= RSDP_PROTOCOL) {
        put(&mut zp, zp::ACPI_RSDP_ADDR, &rsdp.as_u64().to_le_bytes());
    }
    Ok(zp)
}

/// The boot block's bytes, to be copied to `layout.block.start`: the zero
/// page, the GDT, the NUL-terminated command line and the identity tables.
pub fn build_bz_boot_block(
    image: &BzImage<'_>,
    layout: &BzLayout,
    e820: &[E820Entry],
    cmdline: &[u8],
    rsdp: Option<GuestPhysAddr>,
) -> Result<Vec<u8>, Dom0Error> {
    if cmdline.len() != layout.cmdline_len {
        return Err(Dom0Error::BadAddress {
            reason: "the bzImage layout was made for another command line",
        });
    }
    if cmdline.contains(&0) {
        return Err(Dom0Error::BadAddress {
            reason: "the command line contains a NUL byte",
        });
    }
    let base = layout.block.start.as_u64();
    let off = |a: GuestPhysAddr| (a.as_u64() - base) as usize;
    let mut block = vec![0u8; layout.block.size().as_u64() as usize];
    put(&mut block, 0, &build_zero_page(image, layout, e820, rsdp)?);
    put(&mut block, off(layout.gdt), &boot_gdt(true));
    put(&mut block, off(layout.cmdline), cmdline);
    let tables = off(layout.page_tables);
    build_identity_page_tables(
        &mut block[tables..],
        layout.page_tables,
        IDENTITY_LIMIT,
        layout.page_size,
    )?;
    debug_assert!(off(layout.cmdline) + cmdline.len() < tables && BOOT_GDT_SIZE <= 64);
    Ok(block)
}

/// The vCPU state at the 64-bit entry: RIP = load address + 0x200.
pub fn bz_entry_state(layout: &BzLayout) -> EntryState {
    let entry = GuestPhysAddr::new(layout.kernel.start.as_u64() + ENTRY64_OFFSET);
    EntryState::linux64(entry, layout.boot_params, layout.page_tables, layout.gdt)
}

#[cfg(test)]
mod tests;
