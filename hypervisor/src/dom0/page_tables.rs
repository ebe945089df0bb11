//! Identity page tables for a guest's 64-bit entry: 4-level paging mapping
//! `[0, limit)` virtual onto the same physical addresses with 2 MiB or 1 GiB
//! pages, written into a caller-supplied buffer that will sit at a chosen
//! guest-physical address.
//!
//! Reference: Intel SDM Vol. 3A, "4-Level Paging and 5-Level Paging": the
//! PML4E, the PDPTE mapping a 1 GiB page (PS = 1) or referencing a page
//! directory, and the PDE mapping a 2 MiB page (PS = 1). Bit 0 P, bit 1 R/W,
//! bit 7 PS, bits 51:12 the physical address. PWT/PCD/PAT are zero, so the
//! memory type is write-back as far as the guest's tables go (EPT and MTRRs
//! decide the rest).

use super::{Dom0Error, GuestRange, put};
use crate::mm::addr::{GuestPhysAddr, HUGE_PAGE_SIZE, LARGE_PAGE_SIZE, PAGE_SIZE};

/// Present.
const P: u64 = 1 << 0;
/// Writable.
const RW: u64 = 1 << 1;
/// Page size: the entry maps a page instead of referencing a table.
const PS: u64 = 1 << 7;
/// Entries per table.
const ENTRIES: u64 = 512;
/// The most one PDPT covers: 512 GiB.
pub const MAX_IDENTITY_LIMIT: u64 = ENTRIES * HUGE_PAGE_SIZE;

/// The page size of the identity mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityPageSize {
    /// 2 MiB pages: works on every 64-bit CPU.
    Size2MiB,
    /// 1 GiB pages: needs CPUID.80000001H:EDX.Page1GB in the guest.
    Size1GiB,
}

/// The smallest mapping limit that covers every range: the highest end,
/// rounded up to 1 GiB (at least 1 GiB).
pub fn identity_limit_for(ranges: &[GuestRange]) -> u64 {
    let top = ranges
        .iter()
        .map(|r| r.end.as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    top.div_ceil(HUGE_PAGE_SIZE).saturating_mul(HUGE_PAGE_SIZE)
}

/// Bytes the tables for `[0, limit)` take: a PML4, a PDPT and, with 2 MiB
/// pages, one page directory per started GiB.
pub fn identity_tables_size(limit: u64, page: IdentityPageSize) -> Result<usize, Dom0Error> {
    if limit == 0 || limit > MAX_IDENTITY_LIMIT {
        return Err(Dom0Error::BadAddress {
            reason: "identity mapping limit must be 1 byte to 512 GiB",
        });
    }
    let directories = match page {
        IdentityPageSize::Size1GiB => 0,
        IdentityPageSize::Size2MiB => limit.div_ceil(HUGE_PAGE_SIZE),
    };
    Ok(((2 + directories) * PAGE_SIZE) as usize)
}

/// Writes identity tables for `[0, limit)` (rounded up to the page size)
/// into `buf`, which the caller will place at guest-physical `base` (4 KiB
/// aligned). Returns the bytes used; the PML4 is at `base` (the CR3 value).
pub fn build_identity_page_tables(
    buf: &mut [u8],
    base: GuestPhysAddr,
    limit: u64,
    page: IdentityPageSize,
) -> Result<usize, Dom0Error> {
    let size = identity_tables_size(limit, page)?;
    if !base.is_aligned(PAGE_SIZE) {
        return Err(Dom0Error::BadAddress {
            reason: "page tables must be 4 KiB aligned",
        });
    }
    if base
        .as_u64()
        .checked_add(size as u64)
        .is_none_or(|end| end > 1 << 52)
    {
        return Err(Dom0Error::BadAddress {
            reason: "page tables must lie below 2^52",
        });
    }
    if buf.len() < size {
        return Err(Dom0Error::BufferTooSmall {
            needed: size,
            got: buf.len(),
        });
    }
    let buf = &mut buf[..size];
    buf.fill(0);
    let table = |i: u64| base.as_u64() + i * PAGE_SIZE;
    let entry = |buf: &mut [u8], table_index: u64, slot: u64, value: u64| {
        put(
            buf,
            (table_index * PAGE_SIZE + slot * 8) as usize,
            &value.to_le_bytes(),
        );
    };

    // PML4[0] -> the PDPT, covering 512 GiB.
    entry(buf, 0, 0, table(1) | P | RW);
    let gibs = limit.div_ceil(HUGE_PAGE_SIZE);
    match page {
        IdentityPageSize::Size1GiB => {
            for g in 0..gibs {
                entry(buf, 1, g, (g * HUGE_PAGE_SIZE) | P | RW | PS);
            }
        }
        IdentityPageSize::Size2MiB => {
            let pages = limit.div_ceil(LARGE_PAGE_SIZE);
            for g in 0..gibs {
                entry(buf, 1, g, table(2 + g) | P | RW);
            }
            for p in 0..pages {
                entry(
                    buf,
                    2 + p / ENTRIES,
                    p % ENTRIES,
                    (p * LARGE_PAGE_SIZE) | P | RW | PS,
                );
            }
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use proptest::prelude::*;

    use super::*;

    /// Walks the tables in `buf` (placed at `base`) like the MMU would.
    fn translate(buf: &[u8], base: u64, va: u64) -> Option<u64> {
        let read = |table: u64, index: u64| -> Option<u64> {
            let off = usize::try_from(table.checked_sub(base)? + index * 8).ok()?;
            Some(u64::from_le_bytes(buf.get(off..off + 8)?.try_into().ok()?))
        };
        let addr = |e: u64| e & 0x000F_FFFF_FFFF_F000;
        let pml4e = read(base, (va >> 39) & 511)?;
        if pml4e & P == 0 {
            return None;
        }
        let pdpte = read(addr(pml4e), (va >> 30) & 511)?;
        if pdpte & P == 0 {
            return None;
        }
        if pdpte & PS != 0 {
            return Some(addr(pdpte) + (va & (HUGE_PAGE_SIZE - 1)));
        }
        let pde = read(addr(pdpte), (va >> 21) & 511)?;
        if pde & P == 0 || pde & PS == 0 {
            return None;
        }
        Some(addr(pde) + (va & (LARGE_PAGE_SIZE - 1)))
    }

    #[test]
    fn four_gib_with_2mib_pages() {
        let base = 0x9000;
        let size = identity_tables_size(4 << 30, IdentityPageSize::Size2MiB).unwrap();
        assert_eq!(size, 6 * 4096);
        let mut buf = vec![0xAAu8; size];
        assert_eq!(
            build_identity_page_tables(
                &mut buf,
                GuestPhysAddr::new(base),
                4 << 30,
                IdentityPageSize::Size2MiB
            ),
            Ok(size)
        );
        for va in [0u64, 0x1234, 0x100_0200, 0xFFFF_FFFF, 0x7654_3210] {
            assert_eq!(translate(&buf, base, va), Some(va));
        }
        assert_eq!(translate(&buf, base, 4 << 30), None);
    }

    #[test]
    fn one_gib_pages_and_errors() {
        let mut buf = vec![0u8; 8192];
        let used = build_identity_page_tables(
            &mut buf,
            GuestPhysAddr::new(0x2000),
            3 << 30,
            IdentityPageSize::Size1GiB,
        )
        .unwrap();
        assert_eq!(used, 8192);
        assert_eq!(translate(&buf, 0x2000, 0xBFFF_FFFF), Some(0xBFFF_FFFF));
        assert_eq!(translate(&buf, 0x2000, 0xC000_0000), None);
        assert!(
            build_identity_page_tables(
                &mut buf,
                GuestPhysAddr::new(0x2001),
                1 << 30,
                IdentityPageSize::Size1GiB
            )
            .is_err()
        );
        assert_eq!(
            build_identity_page_tables(
                &mut buf,
                GuestPhysAddr::new(0),
                1 << 30,
                IdentityPageSize::Size2MiB
            ),
            Err(Dom0Error::BufferTooSmall {
                needed: 3 * 4096,
                got: 8192
            })
        );
        assert!(identity_tables_size(0, IdentityPageSize::Size2MiB).is_err());
        assert!(identity_tables_size(MAX_IDENTITY_LIMIT + 1, IdentityPageSize::Size2MiB).is_err());
    }

    #[test]
    fn limit_for_ranges() {
        let r = |s, e| GuestRange {
            start: GuestPhysAddr::new(s),
            end: GuestPhysAddr::new(e),
        };
        assert_eq!(identity_limit_for(&[]), 1 << 30);
        assert_eq!(
            identity_limit_for(&[r(0x1000, 0x2000), r(0x4000_0000, 0x4000_0001)]),
            2 << 30
        );
    }

    proptest! {
        #[test]
        fn every_address_below_the_limit_maps_to_itself(gib in 1u64..8, va in 0u64..(8 << 30), two_mib in any::<bool>()) {
            let page = if two_mib { IdentityPageSize::Size2MiB } else { IdentityPageSize::Size1GiB };
            let limit = gib << 30;
            let size = identity_tables_size(limit, page).unwrap();
            let mut buf = vec![0u8; size];
            build_identity_page_tables(&mut buf, GuestPhysAddr::new(0x10_0000), limit, page).unwrap();
            let got = translate(&buf, 0x10_0000, va);
            prop_assert_eq!(got, if va < limit { Some(va) } else { None });
        }
    }
}
