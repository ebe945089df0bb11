//! Synthetic kernel images for the tests: small ELF64 executables and
//! bzImages built field by field from the layouts the parsers read.

use alloc::vec;
use alloc::vec::Vec;

/// One `PT_LOAD` to put in a fixture ELF: physical address, file bytes,
/// memory size.
#[derive(Clone, Debug)]
pub(crate) struct Seg {
    pub paddr: u64,
    pub data: Vec<u8>,
    pub mem_size: u64,
}

/// One note: name (without NUL), type, descriptor.
#[derive(Clone, Debug)]
pub(crate) struct FixtureNote {
    pub name: &'static [u8],
    pub note_type: u32,
    pub desc: Vec<u8>,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// The bytes of a `PT_NOTE` segment holding `notes`, 4-byte aligned.
pub(crate) fn note_bytes(notes: &[FixtureNote]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in notes {
        out.extend_from_slice(&(n.name.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&(n.desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&n.note_type.to_le_bytes());
        out.extend_from_slice(n.name);
        out.push(0);
        pad4(&mut out);
        out.extend_from_slice(&n.desc);
        pad4(&mut out);
    }
    out
}

/// The note Linux's `arch/x86/platform/pvh/head.S` emits.
pub(crate) fn pvh_note(entry: u32) -> FixtureNote {
    FixtureNote {
        name: b"Xen",
        note_type: 18,
        desc: entry.to_le_bytes().to_vec(),
    }
}

/// An ELF64 x86-64 executable: header, program headers (loads, then one
/// `PT_NOTE` if there are notes), then the segment bytes.
pub(crate) fn elf(segs: &[Seg], notes: &[FixtureNote]) -> Vec<u8> {
    let note_data = note_bytes(notes);
    let phnum = segs.len() + usize::from(!notes.is_empty());
    let mut out = vec![0u8; 64 + phnum * 56];
    out[0..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little-endian
    out[6] = 1; // EV_CURRENT
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[24..32].copy_from_slice(&0xFFFF_FFFF_8100_0000u64.to_le_bytes());
    out[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    out[52..54].copy_from_slice(&64u16.to_le_bytes());
    out[54..56].copy_from_slice(&56u16.to_le_bytes());
    out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());

    let phdr = |index: usize,
                p_type: u32,
                offset: u64,
                paddr: u64,
                filesz: u64,
                memsz: u64,
                align: u64,
                out: &mut Vec<u8>| {
        let at = 64 + index * 56;
        out[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        out[at + 16..at + 24].copy_from_slice(&(paddr | 0xFFFF_FFFF_8000_0000).to_le_bytes());
        out[at + 24..at + 32].copy_from_slice(&paddr.to_le_bytes());
        out[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
        out[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
        out[at + 48..at + 56].copy_from_slice(&align.to_le_bytes());
    };
    for (i, s) in segs.iter().enumerate() {
        let offset = out.len() as u64;
        phdr(
            i,
            1,
            offset,
            s.paddr,
            s.data.len() as u64,
            s.mem_size,
            0x20_0000,
            &mut out,
        );
        out.extend_from_slice(&s.data);
    }
    if !notes.is_empty() {
        let offset = out.len() as u64;
        phdr(
            segs.len(),
            4,
            offset,
            0,
            note_data.len() as u64,
            note_data.len() as u64,
            4,
            &mut out,
        );
        out.extend_from_slice(&note_data);
    }
    out
}

/// A vmlinux-like ELF: text at 16 MiB holding the PVH entry, data with BSS.
pub(crate) fn vmlinux() -> Vec<u8> {
    elf(
        &[
            Seg {
                paddr: 0x100_0000,
                data: vec![0x90; 0x3000],
                mem_size: 0x3000,
            },
            Seg {
                paddr: 0x100_4000,
                data: vec![0xAB; 0x800],
                mem_size: 0x2_0000,
            },
        ],
        &[
            FixtureNote {
                name: b"GNU",
                note_type: 3,
                desc: vec![1, 2, 3, 4, 5],
            },
            pvh_note(0x100_0100),
        ],
    )
}

/// Fields of a fixture bzImage.
#[derive(Clone, Debug)]
pub(crate) struct BzFields {
    pub setup_sects: u8,
    pub version: u16,
    pub loadflags: u8,
    pub xloadflags: u16,
    pub relocatable: bool,
    pub kernel_alignment: u32,
    pub pref_address: u64,
    pub init_size: u32,
    pub cmdline_size: u32,
    pub initrd_addr_max: u32,
    pub kernel_len: usize,
}

impl Default for BzFields {
    /// What a Debian 6.1 kernel's header holds, give or take.
    fn default() -> Self {
        Self {
            setup_sects: 4,
            version: 0x020F,
            loadflags: 0x01,
            xloadflags: 0x7F,
            relocatable: true,
            kernel_alignment: 0x20_0000,
            pref_address: 0x100_0000,
            init_size: 0x80_0000,
            cmdline_size: 2047,
            initrd_addr_max: 0x7FFF_FFFF,
            kernel_len: 0x4000,
        }
    }
}

/// A bzImage: a setup area of `setup_sects + 1` sectors holding the setup
/// header at 0x1F1 (boot.rst offsets), then the protected-mode kernel.
pub(crate) fn bzimage(f: &BzFields) -> Vec<u8> {
    let sects = if f.setup_sects == 0 {
        4
    } else {
        usize::from(f.setup_sects)
    };
    let setup = (sects + 1) * 512;
    let mut out = vec![0u8; setup + f.kernel_len];
    for (i, b) in out[setup..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    out[0x1F1] = f.setup_sects;
    out[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
    out[0x200] = 0xEB;
    out[0x201] = 0x6A; // header ends at 0x26C
    out[0x202..0x206].copy_from_slice(b"HdrS");
    out[0x206..0x208].copy_from_slice(&f.version.to_le_bytes());
    out[0x211] = f.loadflags;
    out[0x22C..0x230].copy_from_slice(&f.initrd_addr_max.to_le_bytes());
    out[0x230..0x234].copy_from_slice(&f.kernel_alignment.to_le_bytes());
    out[0x234] = u8::from(f.relocatable);
    out[0x235] = 21;
    out[0x236..0x238].copy_from_slice(&f.xloadflags.to_le_bytes());
    out[0x238..0x23C].copy_from_slice(&f.cmdline_size.to_le_bytes());
    out[0x258..0x260].copy_from_slice(&f.pref_address.to_le_bytes());
    out[0x260..0x264].copy_from_slice(&f.init_size.to_le_bytes());
    out[0x264..0x26C].copy_from_slice(b"handover");
    out
}
