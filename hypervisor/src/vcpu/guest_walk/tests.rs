//! Host tests of the guest page walk and the instruction fetch, over a fake
//! guest memory with hand-built tables.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::mm::addr::{HUGE_PAGE_SIZE, LARGE_PAGE_SIZE};

/// Sparse guest memory: the pages added read as zero until written; every
/// other address is unreadable. Reads must be 8-byte aligned.
#[derive(Default)]
struct FakeMem {
    pages: BTreeSet<u64>,
    words: BTreeMap<u64, u64>,
}

impl FakeMem {
    fn add_page(&mut self, gpa: u64) {
        self.pages.insert(gpa & !0xFFF);
    }

    /// Writes an entry (adding its page).
    fn set(&mut self, gpa: u64, value: u64) {
        assert_eq!(gpa & 7, 0);
        self.add_page(gpa);
        self.words.insert(gpa, value);
    }

    /// Writes a 32-bit entry (adding its page).
    fn set32(&mut self, gpa: u64, value: u32) {
        assert_eq!(gpa & 3, 0);
        let old = self.read_u64(gpa & !7).unwrap_or(0);
        let shift = (gpa & 4) * 8;
        let new = (old & !(0xFFFF_FFFF << shift)) | (u64::from(value) << shift);
        self.set(gpa & !7, new);
    }

    /// Writes bytes (adding their pages).
    fn write(&mut self, gpa: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let a = gpa + i as u64;
            self.add_page(a);
            let word = self.words.entry(a & !7).or_insert(0);
            let shift = (a & 7) * 8;
            *word = (*word & !(0xFF << shift)) | (u64::from(b) << shift);
        }
    }
}

impl GuestPhysRead for FakeMem {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        assert_eq!(gpa & 7, 0, "misaligned read at {gpa:#x}");
        if !self.pages.contains(&(gpa & !0xFFF)) {
            return None;
        }
        Some(self.words.get(&gpa).copied().unwrap_or(0))
    }
}

const PML5: u64 = 0x0000;
const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT: u64 = 0x4000;
const TABLE: u64 = P | RW | US;
const CR0_PE: u64 = 1;
const LONG: PagingRegs = PagingRegs {
    cr0: CR0_PE | CR0_PG,
    cr3: PML4,
    cr4: CR4_PAE,
    efer: EFER_LMA | EFER_NXE | (1 << 8),
};

/// The 9-bit index of `linear` at `level` (1 = page table).
fn idx(linear: u64, level: u32) -> u64 {
    (linear >> (12 + 9 * (level - 1))) & 0x1FF
}

/// Linux's kernel text: PML4 511, PDPT 510, PD 9, PT 0x34, offset 0x567.
const KTEXT: u64 = 0xFFFF_FFFF_8123_4567;

/// Tables mapping `linear` down to (not including) the leaf at `leaf_level`.
fn tables_to(mem: &mut FakeMem, linear: u64, leaf_level: u32) {
    mem.set(PML4 + idx(linear, 4) * 8, PDPT | TABLE);
    if leaf_level < 3 {
        mem.set(PDPT + idx(linear, 3) * 8, PD | TABLE);
    }
    if leaf_level < 2 {
        mem.set(PD + idx(linear, 2) * 8, PT | TABLE);
    }
}

fn long() -> GuestPaging {
    GuestPaging::new(LONG, 46)
}

#[test]
fn ktext_indices_are_as_expected() {
    assert_eq!(
        [idx(KTEXT, 4), idx(KTEXT, 3), idx(KTEXT, 2), idx(KTEXT, 1)],
        [511, 510, 9, 0x34]
    );
}

#[test]
fn modes_follow_the_controls() {
    let m = |cr0, cr4, efer| {
        PagingMode::of(&PagingRegs {
            cr0,
            cr3: 0,
            cr4,
            efer,
        })
    };
    assert_eq!(m(CR0_PE, CR4_PAE, 0), PagingMode::None);
    assert_eq!(m(CR0_PG | CR0_PE, 0, 0), PagingMode::Bits32);
    assert_eq!(m(CR0_PG | CR0_PE, CR4_PAE, 0), PagingMode::Pae);
    assert_eq!(m(CR0_PG | CR0_PE, CR4_PAE, EFER_LMA), PagingMode::Level4);
    assert_eq!(
        m(CR0_PG | CR0_PE, CR4_PAE | CR4_LA57, EFER_LMA),
        PagingMode::Level5
    );
    // LA57 means nothing outside IA-32e mode.
    assert_eq!(m(CR0_PG | CR0_PE, CR4_PAE | CR4_LA57, 0), PagingMode::Pae);
    assert!(PagingMode::Level4.is_long() && !PagingMode::Pae.is_long());
}

#[test]
fn without_paging_linear_is_physical_in_32_bits() {
    let paging = GuestPaging::new(
        PagingRegs {
            cr0: CR0_PE,
            ..LONG
        },
        46,
    );
    let mem = FakeMem::default();
    let t = paging.translate(&mem, 0x1_0009_F123).unwrap();
    assert_eq!(t.gpa, 0x9_F123);
    assert!(t.writable && t.user && t.executable);
}

#[test]
fn four_kib_leaf() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 1);
    mem.set(PT + idx(KTEXT, 1) * 8, 0x1234_5000 | P | XD);
    let t = long().translate(&mem, KTEXT).unwrap();
    assert_eq!(
        t,
        Translation {
            gpa: 0x1234_5567,
            page_size: PAGE_SIZE,
            writable: false,
            user: false,
            executable: false,
        }
    );
}

#[test]
fn two_mib_leaf() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 2);
    // PAT (bit 12) is not an address bit.
    mem.set(PD + idx(KTEXT, 2) * 8, 0x4000_0000 | (1 << 12) | PS | TABLE);
    let t = long().translate(&mem, KTEXT).unwrap();
    assert_eq!(t.gpa, 0x4000_0000 + (KTEXT & (LARGE_PAGE_SIZE - 1)));
    assert_eq!(t.page_size, LARGE_PAGE_SIZE);
    assert!(t.writable && t.user && t.executable);
}

#[test]
fn one_gib_leaf() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 3);
    mem.set(PDPT + idx(KTEXT, 3) * 8, 0x1_C000_0000 | PS | P | RW);
    let t = long().translate(&mem, KTEXT).unwrap();
    assert_eq!(t.gpa, 0x1_C000_0000 + (KTEXT & (HUGE_PAGE_SIZE - 1)));
    assert_eq!(t.page_size, HUGE_PAGE_SIZE);
    assert!(t.writable && !t.user);
}

#[test]
fn not_present_at_each_level() {
    for level in 1..=4u8 {
        let mut mem = FakeMem::default();
        tables_to(&mut mem, KTEXT, 1);
        mem.set(PT + idx(KTEXT, 1) * 8, 0x5000 | TABLE);
        let table = [PT, PD, PDPT, PML4][usize::from(level - 1)];
        let at = table + idx(KTEXT, u32::from(level)) * 8;
        // Everything but P may be set: the rest is ignored.
        let old = mem.read_u64(at).unwrap();
        mem.set(at, old & !P);
        assert_eq!(
            long().translate(&mem, KTEXT),
            Err(WalkError::NotPresent { level })
        );
    }
}

#[test]
fn reserved_bits_are_refused() {
    let cases: [(u64, u64, u8); 6] = [
        // PS in a PML4E.
        (PML4 + idx(KTEXT, 4) * 8, PDPT | PS | TABLE, 4),
        // Above MAXPHYADDR (46) in a PDPTE.
        (PDPT + idx(KTEXT, 3) * 8, PD | (1 << 46) | TABLE, 3),
        // Bits 29:13 of a 1 GiB leaf.
        (
            PDPT + idx(KTEXT, 3) * 8,
            0x4000_0000 | (1 << 13) | PS | TABLE,
            3,
        ),
        // Bits 20:13 of a 2 MiB leaf.
        (
            PD + idx(KTEXT, 2) * 8,
            0x20_0000 | (1 << 20) | PS | TABLE,
            2,
        ),
        // Bit 51 in a PTE.
        (PT + idx(KTEXT, 1) * 8, 0x5000 | (1 << 51) | TABLE, 1),
        // MAXPHYADDR itself in a PDE.
        (PD + idx(KTEXT, 2) * 8, PT | (1 << 46) | TABLE, 2),
    ];
    for (at, entry, level) in cases {
        let mut mem = FakeMem::default();
        tables_to(&mut mem, KTEXT, 1);
        mem.set(PT + idx(KTEXT, 1) * 8, 0x5000 | TABLE);
        mem.set(at, entry);
        assert_eq!(
            long().translate(&mem, KTEXT),
            Err(WalkError::Reserved { level, entry }),
            "entry {entry:#x} at {at:#x}"
        );
    }
}

#[test]
fn ignored_high_bits_are_not_reserved() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 1);
    // Bits 62:52 are ignored (or protection keys) in IA-32e entries.
    mem.set(PT + idx(KTEXT, 1) * 8, 0x5000 | (0x7FF << 52) | TABLE);
    assert_eq!(long().translate(&mem, KTEXT).unwrap().gpa, 0x5567);
}

#[test]
fn xd_is_reserved_without_nxe() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 1);
    let pte = 0x5000 | XD | TABLE;
    mem.set(PT + idx(KTEXT, 1) * 8, pte);
    assert!(!long().translate(&mem, KTEXT).unwrap().executable);
    let no_nxe = GuestPaging::new(
        PagingRegs {
            efer: EFER_LMA,
            ..LONG
        },
        46,
    );
    assert_eq!(
        no_nxe.translate(&mem, KTEXT),
        Err(WalkError::Reserved {
            level: 1,
            entry: pte
        })
    );
}

#[test]
fn rights_are_the_and_of_all_levels() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 1);
    mem.set(PML4 + idx(KTEXT, 4) * 8, PDPT | P | US);
    mem.set(PD + idx(KTEXT, 2) * 8, PT | P | RW | XD);
    mem.set(PT + idx(KTEXT, 1) * 8, 0x5000 | TABLE);
    let t = long().translate(&mem, KTEXT).unwrap();
    assert!(!t.writable && !t.user && !t.executable);
}

#[test]
fn unreadable_tables_and_non_canonical_addresses() {
    let mem = FakeMem::default();
    assert_eq!(
        long().translate(&mem, KTEXT),
        Err(WalkError::Unreadable {
            level: 4,
            gpa: PML4 + 511 * 8
        })
    );
    for linear in [
        0x0000_8000_0000_0000,
        0xFFFF_7FFF_FFFF_FFFF,
        0x0100_0000_0000_0000,
    ] {
        assert_eq!(
            long().translate(&mem, linear),
            Err(WalkError::NonCanonical { linear })
        );
    }
}

#[test]
fn cr3_low_bits_and_high_bits_are_not_address() {
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 1);
    mem.set(PT + idx(KTEXT, 1) * 8, 0x5000 | TABLE);
    // A PCID in bits 11:0 and LAM bits 62:61.
    let regs = PagingRegs {
        cr3: PML4 | 0x123 | (3 << 61),
        cr4: CR4_PAE | (1 << 17),
        ..LONG
    };
    assert_eq!(
        GuestPaging::new(regs, 46)
            .translate(&mem, KTEXT)
            .unwrap()
            .gpa,
        0x5567
    );
}

#[test]
fn five_level_walk() {
    let linear: u64 = 0xFF12_3456_789A_BCDE;
    let l5 = (linear >> 48) & 0x1FF;
    let mut mem = FakeMem::default();
    mem.set(PML5 + l5 * 8, PML4 | TABLE);
    tables_to(&mut mem, linear, 1);
    mem.set(PT + idx(linear, 1) * 8, 0x7_7777_7000 | TABLE);
    let regs = PagingRegs {
        cr3: PML5,
        cr4: CR4_PAE | CR4_LA57,
        ..LONG
    };
    let paging = GuestPaging::new(regs, 52);
    assert_eq!(paging.mode(), PagingMode::Level5);
    assert_eq!(paging.translate(&mem, linear).unwrap().gpa, 0x7_7777_7CDE);
    // 4-level canonical is not 5-level canonical, and the other way round.
    let linear5 = 0x0100_0000_0000_0000;
    assert_eq!(
        paging.translate(&mem, linear5),
        Err(WalkError::NonCanonical { linear: linear5 })
    );
    assert_eq!(
        long().translate(&mem, linear),
        Err(WalkError::NonCanonical { linear })
    );
    mem.set(PML5 + l5 * 8, PML4 | PS | TABLE);
    assert!(matches!(
        paging.translate(&mem, linear),
        Err(WalkError::Reserved { level: 5, .. })
    ));
}

fn pae(cr3: u64) -> GuestPaging {
    GuestPaging::new(
        PagingRegs {
            cr0: CR0_PE | CR0_PG,
            cr3,
            cr4: CR4_PAE,
            efer: EFER_NXE,
        },
        36,
    )
}

#[test]
fn pae_walk_4k_and_2m() {
    // PDPTEs at 0x1020 (CR3 is 32-byte aligned); linear 0xC012_3456:
    // PDPTE 3, PDE 0, PTE 0x123.
    let mut mem = FakeMem::default();
    mem.set(0x1020 + 3 * 8, PD | P);
    mem.set(PD, PT | P | RW);
    mem.set(PT + 0x123 * 8, 0xF_0000_0000 | P | RW | XD);
    let t = pae(0x1020).translate(&mem, 0xC012_3456).unwrap();
    assert_eq!(t.gpa, 0xF_0000_0456);
    assert!(t.writable && !t.user && !t.executable);
    // The top 32 bits of a linear address do not exist here.
    assert_eq!(
        pae(0x1020)
            .translate(&mem, 0xFFFF_FFFF_C012_3456)
            .unwrap()
            .gpa,
        0xF_0000_0456
    );

    mem.set(PD + 8, 0x20_0000 | PS | P | US);
    let t = pae(0x1020).translate(&mem, 0xC03F_FFFF).unwrap();
    assert_eq!((t.gpa, t.page_size), (0x3F_FFFF, LARGE_PAGE_SIZE));
    assert!(t.user && !t.writable);
}

#[test]
fn pae_reserved_and_missing_entries() {
    let mut mem = FakeMem::default();
    mem.set(0x1000, PD | P | RW);
    assert_eq!(
        pae(0x1000).translate(&mem, 0x1000),
        Err(WalkError::Reserved {
            level: 3,
            entry: PD | P | RW
        })
    );
    mem.set(0x1000, PD | P);
    mem.set(PD, 0);
    assert_eq!(
        pae(0x1000).translate(&mem, 0x1000),
        Err(WalkError::NotPresent { level: 2 })
    );
    // Bits 62:M are reserved in PAE directories (not ignored as in IA-32e).
    mem.set(PD, PT | (1 << 52) | P);
    assert!(matches!(
        pae(0x1000).translate(&mem, 0x1000),
        Err(WalkError::Reserved { level: 2, .. })
    ));
    assert_eq!(
        pae(0x1000).translate(&mem, 0x4000_0000),
        Err(WalkError::NotPresent { level: 3 })
    );
}

fn bits32(cr4: u64, maxphyaddr: u8) -> GuestPaging {
    GuestPaging::new(
        PagingRegs {
            cr0: CR0_PE | CR0_PG,
            cr3: PD,
            cr4,
            efer: 0,
        },
        maxphyaddr,
    )
}

#[test]
fn thirty_two_bit_paging() {
    // Linear 0x8040_1234: PDE 0x201 (odd: the high half of a u64), PTE 1.
    let mut mem = FakeMem::default();
    mem.set32(PD + 0x201 * 4, (PT as u32) | 0x7);
    mem.set32(PT + 4, 0xABCD_E000 | 0x1);
    let t = bits32(0, 40).translate(&mem, 0x8040_1234).unwrap();
    assert_eq!((t.gpa, t.page_size), (0xABCD_E234, PAGE_SIZE));
    assert!(!t.writable && !t.user && t.executable);
    assert_eq!(
        bits32(0, 40).translate(&mem, 0x8040_0000),
        Err(WalkError::NotPresent { level: 1 })
    );
    assert_eq!(
        bits32(0, 40).translate(&mem, 0x0040_0000),
        Err(WalkError::NotPresent { level: 2 })
    );
}

#[test]
fn thirty_two_bit_large_pages_and_pse36() {
    let mut mem = FakeMem::default();
    // 4 MiB page at 0x12_0080_0000: physical bits 39:32 (0x12) in 20:13.
    let pde = 0x0080_0000 | (0x12 << 13) | 0x83;
    mem.set32(PD + 4, pde);
    let t = bits32(CR4_PSE, 40).translate(&mem, 0x0065_4321).unwrap();
    assert_eq!((t.gpa, t.page_size), (0x12_00A5_4321, PSE_PAGE_SIZE));
    // With MAXPHYADDR 36 only 4 high bits exist; bit 17 (physical 36) is
    // reserved.
    assert_eq!(
        bits32(CR4_PSE, 36).translate(&mem, 0x0065_4321),
        Err(WalkError::Reserved {
            level: 2,
            entry: u64::from(pde)
        })
    );
    // Without CR4.PSE the PS bit is ignored: the PDE points at a table.
    assert_eq!(
        bits32(0, 40).translate(&mem, 0x0065_4321),
        Err(WalkError::Unreadable {
            level: 1,
            gpa: 0x0082_4000 + 0x254 * 4
        })
    );
}

/// Kernel text at `KTEXT`'s page and the next, mapped to physical pages
/// far apart and out of order.
fn two_code_pages() -> (FakeMem, u64, u64) {
    let first = 0x9000;
    let second = 0x6000;
    let mut mem = FakeMem::default();
    tables_to(&mut mem, KTEXT, 1);
    mem.set(PT + idx(KTEXT, 1) * 8, first | P);
    mem.set(PT + (idx(KTEXT, 1) + 1) * 8, second | P);
    (mem, first, second)
}

#[test]
fn fetch_within_a_page() {
    let (mut mem, first, _) = two_code_pages();
    mem.write(first + 0x567, &[0x8B, 0x40, 0x10, 0xC3]);
    let f = fetch(&long(), &mem, KTEXT, 4).unwrap();
    assert_eq!(f.as_slice(), [0x8B, 0x40, 0x10, 0xC3]);
    assert_eq!(f.tail, None);
    // At most 15 bytes.
    assert_eq!(
        fetch(&long(), &mem, KTEXT, 100).unwrap().as_slice().len(),
        MAX_INSN_LEN
    );
    assert!(
        fetch(&long(), &mem, KTEXT, 0)
            .unwrap()
            .as_slice()
            .is_empty()
    );
}

#[test]
fn fetch_spans_a_page_boundary() {
    let (mut mem, first, second) = two_code_pages();
    let code = [0x41, 0x89, 0x04, 0x24, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90];
    // Three bytes at the end of the first page, the rest on the second.
    mem.write(first + 0xFFD, &code[..3]);
    mem.write(second, &code[3..]);
    let start = (KTEXT & !0xFFF) + 0xFFD;
    let f = fetch(&long(), &mem, start, 10).unwrap();
    assert_eq!(f.as_slice(), code);
    assert_eq!(f.tail, None);
}

#[test]
fn fetch_stops_at_an_unmapped_second_page() {
    let (mut mem, first, _) = two_code_pages();
    mem.set(PT + (idx(KTEXT, 1) + 1) * 8, 0);
    mem.write(first + 0xFFE, &[0x8B, 0x07]);
    let start = (KTEXT & !0xFFF) + 0xFFE;
    let f = fetch(&long(), &mem, start, MAX_INSN_LEN).unwrap();
    assert_eq!(f.as_slice(), [0x8B, 0x07]);
    assert_eq!(f.tail, Some(WalkError::NotPresent { level: 1 }));
}

#[test]
fn fetch_fails_when_the_first_byte_cannot_be_read() {
    let (mut mem, ..) = two_code_pages();
    assert_eq!(
        fetch(&long(), &mem, KTEXT - 0x1000, 15),
        Err(WalkError::NotPresent { level: 1 })
    );
    // Mapped, but to a page the backend cannot read (MMIO).
    mem.set(PT + idx(KTEXT, 1) * 8, 0xFEC0_0000 | P);
    assert_eq!(
        fetch(&long(), &mem, KTEXT, 15),
        Err(WalkError::Unreadable {
            level: 0,
            gpa: 0xFEC0_0567
        })
    );
}

#[test]
fn fetch_without_paging_wraps_at_4_gib() {
    let mut mem = FakeMem::default();
    mem.write(0xFFFF_FFFE, &[0x66, 0x89]);
    mem.write(0, &[0x10]);
    let paging = GuestPaging::new(PagingRegs::default(), 36);
    assert_eq!(
        fetch(&paging, &mem, 0xFFFF_FFFE, 3).unwrap().as_slice(),
        [0x66, 0x89, 0x10]
    );
}

#[test]
fn errors_read_well() {
    assert_eq!(
        WalkError::NotPresent { level: 3 }.to_string(),
        "guest page-directory-pointer-table entry not present"
    );
    assert_eq!(
        WalkError::Unreadable {
            level: 0,
            gpa: 0x1000
        }
        .to_string(),
        "guest-physical 0x1000 (page contents) is not readable guest memory"
    );
}

/// Memory where every address holds a value derived from it and a seed.
struct NoiseMem(u64);

impl GuestPhysRead for NoiseMem {
    fn read_u64(&self, gpa: u64) -> Option<u64> {
        let x = (gpa ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Some addresses unreadable, many entries present.
        if x >> 60 == 0 {
            None
        } else {
            Some(x.rotate_left(17) | (x >> 63))
        }
    }
}

proptest! {
    #[test]
    fn any_tables_and_registers_never_panic(
        cr0 in any::<u64>(),
        cr3 in any::<u64>(),
        cr4 in any::<u64>(),
        efer in any::<u64>(),
        maxphyaddr in any::<u8>(),
        seed in any::<u64>(),
        linear in any::<u64>(),
        len in 0usize..40,
    ) {
        let paging = GuestPaging::new(PagingRegs { cr0, cr3, cr4, efer }, maxphyaddr);
        let mem = NoiseMem(seed);
        if let Ok(t) = paging.translate(&mem, linear) {
            prop_assert!(t.page_size.is_power_of_two() && t.page_size >= PAGE_SIZE);
            prop_assert_eq!(t.gpa & (t.page_size - 1), linear & (t.page_size - 1));
        }
        if let Ok(f) = fetch(&paging, &mem, linear, len) {
            prop_assert_eq!(f.as_slice().is_empty(), len == 0);
            prop_assert!(f.as_slice().len() <= len.min(MAX_INSN_LEN));
        }
    }
}
