//! The domain builder: lays out a Linux guest's memory for a direct kernel
//! boot, as pure data (what to copy where, and how vCPU 0 enters).
//!
//! The boot structures come from the hypervisor crate's pure builders, the
//! same ones that start dom0: `hypervisor::dom0::{elf, pvh}` (an ELF
//! `vmlinux` entered through its PVH note, `XEN_ELFNOTE_PHYS32_ENTRY`, with
//! an `hvm_start_info` version 1), `hypervisor::dom0::bzimage` (a bzImage
//! entered through the Linux 64-bit boot protocol, with `boot_params`, a
//! boot GDT and identity page tables), and `hypervisor::domu` (the domU's
//! guest-physical RAM, its e820 map, and its ACPI tables).
//!
//! Guest-physical layout (`memory` below 3 GiB; see `docs/xl-rs.md`):
//!
//! ```text
//! 0x0000_0000  page 0, left free
//! 0x0000_1000  boot block: hvm_start_info + GDT + module list + memory map
//!              + command line (PVH), or boot_params + GDT + command line +
//!              identity page tables (bzImage)
//! ...          RAM up to 0xA0000
//! 0x000A_0000  reserved (legacy VGA/BIOS hole), backed by the domain's RAM
//! 0x000E_0000  ACPI tables (RSDP first), e820 type 3
//! 0x0010_0000  RAM
//! 0x0100_0000  the kernel: its PT_LOAD segments at their physical
//!              addresses (PVH), or the protected-mode kernel at its
//!              preferred address (bzImage; 16 MiB for a stock kernel)
//! ...          the initrd, page-aligned, as high as fits below 4 GiB
//! memory end
//! ```
//!
//! Nothing here talks to the hypervisor: [`build`] returns a [`GuestImage`],
//! which the `create` command copies into a new domain.

use std::borrow::Cow;
use std::fmt;

use dom0_abi::vcpu::{VCPU_MODE_LINUX64, VCPU_MODE_PVH};
use dom0_abi::{PAGE_SIZE, VcpuEntry};
use hypervisor::boot::multiboot2::MemoryKind;
use hypervisor::dom0::bzimage::{
    BzImage, BzPlacementRequest, build_bz_boot_block, bz_entry_state, place_bzimage,
};
use hypervisor::dom0::entry::EntryState;
use hypervisor::dom0::memory::E820Entry;
use hypervisor::dom0::page_tables::IdentityPageSize;
use hypervisor::dom0::pvh::{
    PvhKernel, PvhPlacementRequest, build_pvh_boot_block, place_pvh, pvh_entry_state,
};
use hypervisor::dom0::{Dom0Error, GuestRange, KernelFormat};
use hypervisor::domu::DomuError;
use hypervisor::domu::acpi_tables::{DomuPlatform, build_acpi_tables};
use hypervisor::domu::memory::{ACPI_BLOB_DEFAULT_GPA, LOW_RAM_LIMIT, domu_e820};
use hypervisor::mm::addr::{ByteSize, GuestPhysAddr, HostPhysAddr, PhysRange};

#[cfg(test)]
mod tests;

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct BuildRequest<'a> {
    /// The kernel image's path, for messages.
    pub kernel_path: &'a str,
    /// The kernel image: an ELF `vmlinux` with a PVH note, or a bzImage.
    pub kernel: &'a [u8],
    /// The initial ramdisk, if any (passed as module 0 / `ramdisk_image`).
    pub ramdisk: Option<&'a [u8]>,
    /// The kernel command line (no NUL).
    pub cmdline: &'a str,
    /// The domain's RAM in MiB.
    pub memory_mib: u64,
    /// vCPUs (local APIC IDs 0 to `vcpus - 1` in the MADT).
    pub vcpus: u32,
}

/// How vCPU 0 enters the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootProtocol {
    /// Xen's PVH entry (an ELF `vmlinux`).
    Pvh,
    /// The Linux 64-bit boot protocol (a bzImage).
    Linux64,
}

impl fmt::Display for BootProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pvh => "PVH entry (ELF vmlinux)",
            Self::Linux64 => "Linux 64-bit boot protocol (bzImage)",
        })
    }
}

/// Bytes to copy to one guest-physical address.
#[derive(Clone, PartialEq, Eq)]
pub struct Piece<'a> {
    /// What they are (for messages).
    pub what: &'static str,
    /// Where they go.
    pub gpa: u64,
    /// The bytes (the kernel's and the initrd's are borrowed from the files).
    pub bytes: Cow<'a, [u8]>,
}

impl fmt::Debug for Piece<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Piece({} at {:#x}, {} bytes)",
            self.what,
            self.gpa,
            self.bytes.len()
        )
    }
}

/// A laid-out guest: everything the `create` command needs.
#[derive(Debug, Clone)]
pub struct GuestImage<'a> {
    /// RAM in 4 KiB pages (`memory_mib * 256`).
    pub memory_pages: u64,
    /// How vCPU 0 enters the kernel.
    pub protocol: BootProtocol,
    /// The bytes to copy, by ascending address; they never overlap, and
    /// memory they do not cover stays zero.
    pub pieces: Vec<Piece<'a>>,
    /// vCPU 0's entry state.
    pub entry: VcpuEntry,
    /// The memory map the guest is given.
    pub e820: Vec<E820Entry>,
    /// Where the ACPI RSDP is.
    pub rsdp: u64,
}

/// Why a guest could not be laid out. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The kernel image is unusable.
    #[error("kernel {path}: {reason}")]
    Kernel {
        /// Its path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The kernel must be loaded where the domain has no RAM.
    #[error(
        "kernel {path} must be loaded at {start:#x}..{end:#x}, which is not all RAM of a domain with memory = {memory_mib} (MiB); raise memory"
    )]
    KernelOutsideRam {
        /// Its path.
        path: String,
        /// First byte of its image.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// The domain's memory.
        memory_mib: u64,
    },
    /// Something does not fit in the domain's RAM.
    #[error(
        "no room for the {what} ({size}) in a domain with memory = {memory_mib} (MiB); raise memory"
    )]
    NoRoom {
        /// What did not fit.
        what: &'static str,
        /// Its size.
        size: ByteSize,
        /// The domain's memory.
        memory_mib: u64,
    },
    /// The command line is longer than the kernel takes.
    #[error("the kernel command line is {len} bytes, but this kernel takes at most {max}")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The kernel's limit.
        max: usize,
    },
    /// More memory than fits below the MMIO hole under 4 GiB.
    #[error(
        "memory = {memory_mib} (MiB) is more than a domU can have yet ({max_mib} MiB): \
         RAM above 4 GiB is not supported; lower memory"
    )]
    MemoryTooLarge {
        /// What was asked for.
        memory_mib: u64,
        /// The most accepted.
        max_mib: u64,
    },
    /// The command line contains a NUL byte.
    #[error("the kernel command line contains a NUL byte")]
    CmdlineHasNul,
    /// The domain's platform (memory map, ACPI tables) cannot be described.
    #[error("{0}")]
    Platform(DomuError),
    /// A boot structure could not be written (a bug: please report it).
    #[error("internal error laying out the guest: {0}")]
    Internal(String),
}

/// Lays out a guest: the ACPI tables, the memory map, the kernel, the boot
/// block and the initrd, and vCPU 0's entry state.
///
/// # Errors
///
/// A [`BuildError`] naming what is wrong with the kernel, the command line
/// or the memory size.
pub fn build<'a>(req: &BuildRequest<'a>) -> Result<GuestImage<'a>, BuildError> {
    if req.cmdline.as_bytes().contains(&0) {
        return Err(BuildError::CmdlineHasNul);
    }
    // DOMAIN_CREATE backs guest-physical [0, memory) contiguously, while
    // the domU memory map (`domu::memory`) puts RAM beyond 3 GiB above
    // 4 GiB: the two agree only up to 3 GiB.
    if req.memory_mib > MAX_MEMORY_MIB {
        return Err(BuildError::MemoryTooLarge {
            memory_mib: req.memory_mib,
            max_mib: MAX_MEMORY_MIB,
        });
    }
    let memory = ByteSize::mib(req.memory_mib);
    let platform = DomuPlatform::new((0..req.vcpus).collect());
    let acpi = build_acpi_tables(&platform, ACPI_BLOB_DEFAULT_GPA).map_err(BuildError::Platform)?;
    let e820 = domu_e820(memory, acpi.range()).map_err(BuildError::Platform)?;
    let ram = usable_ram(&e820);
    let format = KernelFormat::detect(req.kernel).map_err(|e| kernel_error(req, e))?;
    let mut guest = match format {
        KernelFormat::ElfVmlinux => build_pvh(req, &e820, &ram, acpi.rsdp)?,
        KernelFormat::BzImage => build_bzimage(req, &e820, &ram, acpi.rsdp)?,
    };
    guest.pieces.push(Piece {
        what: "ACPI tables",
        gpa: acpi.base.as_u64(),
        bytes: Cow::Owned(acpi.bytes),
    });
    guest.pieces.retain(|p| !p.bytes.is_empty());
    guest.pieces.sort_by_key(|p| p.gpa);
    if let Some(pair) = guest
        .pieces
        .windows(2)
        .find(|w| w[0].gpa + w[0].bytes.len() as u64 > w[1].gpa)
    {
        return Err(BuildError::Internal(format!(
            "the {} and the {} overlap",
            pair[0].what, pair[1].what
        )));
    }
    Ok(guest)
}

/// The largest domU: all its RAM below the MMIO hole under 4 GiB.
pub const MAX_MEMORY_MIB: u64 = LOW_RAM_LIMIT >> 20;

/// The e820 map's RAM entries, as the placement functions take RAM: a list
/// of `PhysRange`. They were written for dom0, whose guest-physical and
/// host-physical addresses are the same; here the numbers are the domU's
/// guest-physical addresses.
fn usable_ram(e820: &[E820Entry]) -> Vec<PhysRange> {
    e820.iter()
        .filter(|e| e.kind == MemoryKind::Usable)
        .map(|e| {
            PhysRange::new(
                HostPhysAddr::new(e.addr.as_u64()),
                HostPhysAddr::new(e.end()),
            )
        })
        .collect()
}

fn build_pvh<'a>(
    req: &BuildRequest<'a>,
    e820: &[E820Entry],
    ram: &[PhysRange],
    rsdp: GuestPhysAddr,
) -> Result<GuestImage<'a>, BuildError> {
    let kernel = PvhKernel::parse(req.kernel).map_err(|e| kernel_error(req, e))?;
    let image = kernel.image_range();
    let inside = |r: &PhysRange| {
        r.start.as_u64() <= image.start.as_u64() && image.end.as_u64() <= r.end.as_u64()
    };
    if !ram.iter().any(inside) {
        return Err(BuildError::KernelOutsideRam {
            path: req.kernel_path.to_owned(),
            start: image.start.as_u64(),
            end: image.end.as_u64(),
            memory_mib: req.memory_mib,
        });
    }
    let layout = place_pvh(&PvhPlacementRequest {
        dom0_ram: ram,
        kernel: &kernel.load_ranges(),
        memmap_entries: e820.len(),
        cmdline_len: req.cmdline.len(),
        initrd_size: req.ramdisk.map(|r| ByteSize::new(r.len() as u64)),
    })
    .map_err(|e| layout_error(req, e))?;
    let block = build_pvh_boot_block(&layout, e820, req.cmdline.as_bytes(), Some(rsdp))
        .map_err(|e| layout_error(req, e))?;

    let mut pieces: Vec<Piece<'a>> = kernel
        .elf()
        .segments()
        .iter()
        .map(|segment| Piece {
            what: "kernel segment",
            gpa: segment.paddr.as_u64(),
            bytes: Cow::Borrowed(segment.file_bytes(req.kernel)),
        })
        .collect();
    pieces.push(Piece {
        what: "PVH boot block",
        gpa: layout.block.start.as_u64(),
        bytes: Cow::Owned(block),
    });
    push_initrd(&mut pieces, req.ramdisk, layout.initrd);
    let state = pvh_entry_state(&kernel, &layout);
    Ok(GuestImage {
        memory_pages: memory_pages(req.memory_mib),
        protocol: BootProtocol::Pvh,
        pieces,
        entry: vcpu_entry(VCPU_MODE_PVH, &state),
        e820: e820.to_vec(),
        rsdp: rsdp.as_u64(),
    })
}

fn build_bzimage<'a>(
    req: &BuildRequest<'a>,
    e820: &[E820Entry],
    ram: &[PhysRange],
    rsdp: GuestPhysAddr,
) -> Result<GuestImage<'a>, BuildError> {
    let image = BzImage::parse(req.kernel).map_err(|e| kernel_error(req, e))?;
    let layout = place_bzimage(
        &image,
        &BzPlacementRequest {
            dom0_ram: ram,
            cmdline_len: req.cmdline.len(),
            initrd_size: req.ramdisk.map(|r| ByteSize::new(r.len() as u64)),
            // 2 MiB pages work on every 64-bit CPU; 1 GiB pages would need
            // the guest's CPUID to offer them.
            page_size: IdentityPageSize::Size2MiB,
        },
    )
    .map_err(|e| layout_error(req, e))?;
    let block = build_bz_boot_block(&image, &layout, e820, req.cmdline.as_bytes(), Some(rsdp))
        .map_err(|e| layout_error(req, e))?;
    let mut pieces = vec![
        Piece {
            what: "protected-mode kernel",
            gpa: layout.kernel.start.as_u64(),
            bytes: Cow::Borrowed(image.protected_mode_kernel()),
        },
        Piece {
            what: "boot_params block",
            gpa: layout.block.start.as_u64(),
            bytes: Cow::Owned(block),
        },
    ];
    push_initrd(&mut pieces, req.ramdisk, layout.initrd);
    let state = bz_entry_state(&layout);
    Ok(GuestImage {
        memory_pages: memory_pages(req.memory_mib),
        protocol: BootProtocol::Linux64,
        pieces,
        entry: vcpu_entry(VCPU_MODE_LINUX64, &state),
        e820: e820.to_vec(),
        rsdp: rsdp.as_u64(),
    })
}

fn push_initrd<'a>(pieces: &mut Vec<Piece<'a>>, ramdisk: Option<&'a [u8]>, at: Option<GuestRange>) {
    if let (Some(bytes), Some(range)) = (ramdisk, at) {
        pieces.push(Piece {
            what: "initrd",
            gpa: range.start.as_u64(),
            bytes: Cow::Borrowed(bytes),
        });
    }
}

/// Pages in `mib` MiB.
#[must_use]
pub const fn memory_pages(mib: u64) -> u64 {
    mib * ((1 << 20) / PAGE_SIZE)
}

/// The ABI's entry state for what the boot protocol builder computed. The
/// segment registers, CR0/CR4/EFER and TR follow from the mode on the
/// hypervisor's side (`dom0_abi::VcpuMode`), as they do in `EntryState`.
fn vcpu_entry(mode: u32, state: &EntryState) -> VcpuEntry {
    VcpuEntry {
        mode,
        reserved: 0,
        rip: state.rip,
        rsp: 0,
        rbx: state.rbx,
        rsi: state.rsi,
        cr3: state.cr3,
        gdt_base: state.gdtr_base,
        gdt_limit: u32::from(state.gdtr_limit),
        reserved2: 0,
    }
}

/// A problem with the kernel image itself, in a domU's words (the
/// hypervisor's messages speak of dom0 and its boot modules).
fn kernel_error(req: &BuildRequest<'_>, e: Dom0Error) -> BuildError {
    let reason = match e {
        Dom0Error::UnknownKernelFormat => {
            "not a Linux kernel: neither an ELF vmlinux nor a bzImage".to_owned()
        }
        Dom0Error::Truncated { what, file_len } => format!(
            "truncated: the {what} lies past the end of its {file_len} bytes; check that the file is complete"
        ),
        Dom0Error::BadElf { reason } => format!("unusable ELF kernel: {reason}"),
        Dom0Error::NoPvhEntry => {
            "the ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); \
             use a kernel built with CONFIG_PVH=y, or its bzImage"
                .to_owned()
        }
        Dom0Error::BadBzImage { reason } => format!("unusable bzImage: {reason}"),
        Dom0Error::BzImageTooOld { version } => format!(
            "the bzImage uses boot protocol {}.{:02}, but the 64-bit entry needs 2.12 or later (Linux 3.8+)",
            version >> 8,
            version & 0xff
        ),
        other => return layout_error(req, other),
    };
    BuildError::Kernel {
        path: req.kernel_path.to_owned(),
        reason,
    }
}

/// A placement or boot-block problem.
fn layout_error(req: &BuildRequest<'_>, e: Dom0Error) -> BuildError {
    match e {
        Dom0Error::CmdlineTooLong { len, max } => BuildError::CmdlineTooLong { len, max },
        Dom0Error::NoRoom { what, size } => BuildError::NoRoom {
            what,
            size,
            memory_mib: req.memory_mib,
        },
        Dom0Error::RequiredRangeUnavailable { range } => BuildError::KernelOutsideRam {
            path: req.kernel_path.to_owned(),
            start: range.start.as_u64(),
            end: range.end.as_u64(),
            memory_mib: req.memory_mib,
        },
        Dom0Error::UnknownKernelFormat
        | Dom0Error::Truncated { .. }
        | Dom0Error::BadElf { .. }
        | Dom0Error::NoPvhEntry
        | Dom0Error::BadBzImage { .. }
        | Dom0Error::BzImageTooOld { .. } => kernel_error(req, e),
        other => BuildError::Internal(other.to_string()),
    }
}
