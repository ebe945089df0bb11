use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const MIB: u64 = 1 << 20;

fn r(start: u64, end: u64) -> PhysRange {
    range(start, end)
}

fn frames(n: u64) -> FrameCount {
    FrameCount::new(n)
}

fn ranges(a: &FrameAllocator) -> Vec<(u64, u64)> {
    a.free_ranges()
        .map(|r| (r.start.as_u64(), r.end.as_u64()))
        .collect()
}

#[test]
fn empty_allocator() {
    let mut a = FrameAllocator::empty();
    assert_eq!(a.allocate(), Err(AllocError::OutOfMemory));
    assert_eq!(a.free_frames(), frames(0));
    assert_eq!(a.total_frames(), frames(0));
    assert_eq!(a.free_ranges().count(), 0);
    assert_eq!(
        a.free(HostPhysAddr::new(0x1000), frames(1)),
        Err(AllocError::NotAllocated)
    );
    assert!(format!("{a:?}").contains("free_frames: 0"));
}

#[test]
fn add_usable_rounds_inwards_and_subtracts_reserved() {
    let mut a = FrameAllocator::empty();
    // The image at 1 MiB..1 MiB+0x5123 and the boot info at 0x20_0800..0x20_0900.
    let reserved = [r(0, MIB), r(MIB, MIB + 0x5123), r(0x20_0800, 0x20_0900)];
    a.add_usable(r(0x800, 4 * MIB + 0x10), &reserved).unwrap();
    assert_eq!(
        ranges(&a),
        [(MIB + 0x6000, 0x20_0000), (0x20_1000, 4 * MIB)]
    );
    assert_eq!(a.total_frames(), a.free_frames());
    assert_eq!(
        a.free_frames().as_u64(),
        (0x20_0000 - MIB - 0x6000 + 4 * MIB - 0x20_1000) / 4096
    );
    assert_eq!(a.managed_ranges().count(), 2);
}

#[test]
fn add_usable_of_nothing() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0x1001, 0x1fff), &[]).unwrap();
    a.add_usable(r(0x5000, 0x5000), &[]).unwrap();
    a.add_usable(r(0x10_0000, 0x20_0000), &[r(0, 0x30_0000)])
        .unwrap();
    a.add_usable(r(u64::MAX - 10, u64::MAX), &[]).unwrap();
    assert_eq!(a.total_frames(), frames(0));
    // Reserved ranges that are empty or outside change nothing.
    a.add_usable(r(0x1000, 0x3000), &[r(0x2000, 0x2000), r(0x9000, 0xa000)])
        .unwrap();
    assert_eq!(ranges(&a), [(0x1000, 0x3000)]);
}

#[test]
fn adjacent_additions_merge_and_overlaps_are_refused() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0x1000, 0x3000), &[]).unwrap();
    a.add_usable(r(0x3000, 0x5000), &[]).unwrap();
    assert_eq!(ranges(&a), [(0x1000, 0x5000)]);
    assert_eq!(
        a.add_usable(r(0x4000, 0x9000), &[]),
        Err(AllocError::AlreadyAdded)
    );
    assert_eq!(ranges(&a), [(0x1000, 0x5000)]);
    // An overlap that is reserved anyway is fine.
    a.add_usable(r(0x4000, 0x9000), &[r(0x4000, 0x5000)])
        .unwrap();
    assert_eq!(ranges(&a), [(0x1000, 0x9000)]);
}

#[test]
fn allocates_from_the_top() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0x1000, 0x4000), &[]).unwrap();
    a.add_usable(r(0x10_0000, 0x10_2000), &[]).unwrap();
    let got: Vec<_> = (0..5).map(|_| a.allocate().unwrap().as_u64()).collect();
    assert_eq!(got, [0x10_1000, 0x10_0000, 0x3000, 0x2000, 0x1000]);
    assert_eq!(a.allocate(), Err(AllocError::OutOfMemory));
    assert_eq!(a.free_frames(), frames(0));
    assert_eq!(a.total_frames(), frames(5));
}

#[test]
fn contiguous_and_aligned() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0x1000, 0x80_3000), &[]).unwrap();
    let two_mib = a.allocate_contiguous(frames(512), 2 * MIB).unwrap();
    assert_eq!(two_mib.as_u64(), 0x60_0000);
    assert_eq!(ranges(&a), [(0x1000, 0x60_0000), (0x80_0000, 0x80_3000)]);
    let run = a.allocate_contiguous(frames(3), PAGE_SIZE).unwrap();
    assert_eq!(run.as_u64(), 0x80_0000);
    // A small alignment means 4 KiB.
    assert_eq!(
        a.allocate_contiguous(frames(1), 1).unwrap().as_u64(),
        0x5f_f000
    );
    assert_eq!(
        a.allocate_contiguous(frames(1), 3),
        Err(AllocError::BadRequest)
    );
    assert_eq!(
        a.allocate_contiguous(frames(0), PAGE_SIZE),
        Err(AllocError::BadRequest)
    );
    assert_eq!(
        a.allocate_contiguous(frames(1), 1 << 40),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(
        a.allocate_contiguous(frames(u64::MAX), PAGE_SIZE),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(
        a.allocate_contiguous(frames(0x600), PAGE_SIZE),
        Err(AllocError::OutOfMemory)
    );
}

#[test]
fn below_a_limit() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0x1000, 0x9f000), &[]).unwrap();
    a.add_usable(r(MIB, 64 * MIB), &[]).unwrap();
    let trampoline = a.allocate_below(HostPhysAddr::new(MIB), frames(1)).unwrap();
    assert_eq!(trampoline.as_u64(), 0x9e000);
    let low = a
        .allocate_below(HostPhysAddr::new(0x8000 + 0x123), frames(2))
        .unwrap();
    assert_eq!(low.as_u64(), 0x6000);
    assert_eq!(ranges(&a)[..2], [(0x1000, 0x6000), (0x8000, 0x9e000)]);
    assert_eq!(
        a.allocate_below(HostPhysAddr::new(0x1000), frames(1)),
        Err(AllocError::OutOfMemory)
    );
    assert_eq!(
        a.allocate_below(HostPhysAddr::new(MIB), frames(0)),
        Err(AllocError::BadRequest)
    );
    // The ordinary allocator still prefers the top.
    assert_eq!(a.allocate().unwrap().as_u64(), 64 * MIB - PAGE_SIZE);
}

#[test]
fn claim_exact_ranges() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0, 16 * MIB), &[]).unwrap();
    a.claim(r(2 * MIB, 4 * MIB)).unwrap();
    assert_eq!(a.claim(r(3 * MIB, 5 * MIB)), Err(AllocError::NotFree));
    assert_eq!(a.claim(r(15 * MIB, 17 * MIB)), Err(AllocError::NotFree));
    assert_eq!(a.claim(r(0x800, 0x2000)), Err(AllocError::Misaligned));
    assert_eq!(a.claim(r(0x2000, 0x2000)), Err(AllocError::BadRequest));
    assert_eq!(ranges(&a), [(0, 2 * MIB), (4 * MIB, 16 * MIB)]);
    a.free(HostPhysAddr::new(2 * MIB), frames(512)).unwrap();
    assert_eq!(ranges(&a), [(0, 16 * MIB)]);
}

#[test]
fn free_merges_and_detects_misuse() {
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0x1000, 0x5000), &[r(0x3000, 0x4000)])
        .unwrap();
    let f1 = a.allocate().unwrap(); // 0x4000
    let f2 = a.allocate().unwrap(); // 0x2000
    assert_eq!((f1.as_u64(), f2.as_u64()), (0x4000, 0x2000));
    assert_eq!(
        a.free(HostPhysAddr::new(0x2800), frames(1)),
        Err(AllocError::Misaligned)
    );
    assert_eq!(a.free(f1, frames(0)), Err(AllocError::BadRequest));
    assert_eq!(
        a.free(HostPhysAddr::new(TOP), frames(2)),
        Err(AllocError::BadRequest)
    );
    // The reserved page and memory never added cannot be freed.
    assert_eq!(
        a.free(HostPhysAddr::new(0x3000), frames(1)),
        Err(AllocError::NotAllocated)
    );
    assert_eq!(
        a.free(HostPhysAddr::new(0x9000), frames(1)),
        Err(AllocError::NotAllocated)
    );
    // A run spanning the reserved hole is not allocated either.
    assert_eq!(a.free(f2, frames(3)), Err(AllocError::NotAllocated));
    a.free(f1, frames(1)).unwrap();
    assert_eq!(
        a.free(f1, frames(1)),
        Err(AllocError::NotAllocated),
        "double free"
    );
    a.free(f2, frames(1)).unwrap();
    assert_eq!(ranges(&a), [(0x1000, 0x3000), (0x4000, 0x5000)]);
    assert_eq!(a.free_frames(), a.total_frames());
}

#[test]
fn range_list_capacity() {
    let mut a = FrameAllocator::empty();
    // MAX_FREE_RANGES separate frames (every other page).
    for i in 0..MAX_FREE_RANGES as u64 {
        a.add_usable(r(0x2000 * i, 0x2000 * i + 0x1000), &[])
            .unwrap();
    }
    let before = ranges(&a);
    assert_eq!(
        a.add_usable(r(0x1000_0000, 0x1000_1000), &[]),
        Err(AllocError::TooManyRanges)
    );
    // Filling a gap merges: no new entry needed.
    a.add_usable(r(0x1000, 0x2000), &[]).unwrap();
    assert_eq!(a.free_ranges().count(), MAX_FREE_RANGES - 1);
    assert_eq!(ranges(&a).len(), before.len() - 1);

    // With a full list, splitting a range is refused, and the allocator is
    // unchanged.
    let mut a = FrameAllocator::empty();
    for i in 0..MAX_FREE_RANGES as u64 {
        a.add_usable(r(0x10_0000 * i, 0x10_0000 * i + 0x4000), &[])
            .unwrap();
    }
    let snapshot = ranges(&a);
    assert_eq!(a.claim(r(0x1000, 0x2000)), Err(AllocError::TooManyRanges));
    assert_eq!(
        a.allocate_below(HostPhysAddr::new(0x3000), frames(1)),
        Err(AllocError::TooManyRanges)
    );
    assert_eq!(ranges(&a), snapshot);
    // A run that takes a range's top needs no split.
    assert_eq!(
        a.allocate_contiguous(frames(2), 0x2000).unwrap().as_u64(),
        0xff0_2000
    );
    // Freeing a lone frame in the middle of an allocated run needs an entry
    // too: refused while the list is full.
    let mut a = FrameAllocator::empty();
    a.add_usable(r(0, 0x1000 * 4 * MAX_FREE_RANGES as u64), &[])
        .unwrap();
    for i in 0..MAX_FREE_RANGES as u64 - 1 {
        a.claim(r(0x4000 * i + 0x1000, 0x4000 * i + 0x4000))
            .unwrap();
    }
    assert_eq!(a.free_ranges().count(), MAX_FREE_RANGES);
    let snapshot = ranges(&a);
    assert_eq!(
        a.free(HostPhysAddr::new(0x2000), frames(1)),
        Err(AllocError::TooManyRanges)
    );
    assert_eq!(ranges(&a), snapshot);
    a.free(HostPhysAddr::new(0x1000), frames(1)).unwrap();
    a.free(HostPhysAddr::new(0x2000), frames(1)).unwrap();
    assert_eq!(a.free_ranges().count(), MAX_FREE_RANGES);
}

#[test]
fn errors_display() {
    for e in [
        AllocError::OutOfMemory,
        AllocError::TooManyRanges,
        AllocError::Misaligned,
        AllocError::NotAllocated,
        AllocError::NotFree,
        AllocError::AlreadyAdded,
        AllocError::BadRequest,
    ] {
        assert!(e.to_string().len() > 20);
    }
}

// ---- model-based property test ----

#[derive(Debug, Clone)]
enum Op {
    One,
    Contiguous { count: u64, align_shift: u32 },
    Below { limit: u64, count: u64 },
    Claim { start: u64, count: u64 },
    Free { pick: prop::sample::Index },
    DoubleFree { pick: prop::sample::Index },
    FreeForeign { frame: u64 },
}

/// All the model lives in 32 MiB starting at `BASE` (above 4 GiB, so that
/// high addresses are exercised) plus the first 2 MiB.
const BASE: u64 = 0x1_0000_0000;
const SPAN: u64 = 32 * MIB;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::One),
        3 => (1u64..64, 12u32..22).prop_map(|(count, align_shift)| Op::Contiguous { count, align_shift }),
        2 => (0u64..BASE + SPAN, 1u64..8).prop_map(|(limit, count)| Op::Below { limit, count }),
        1 => (0u64..SPAN / PAGE_SIZE, 1u64..16).prop_map(|(start, count)| Op::Claim { start: BASE + start * PAGE_SIZE, count }),
        4 => any::<prop::sample::Index>().prop_map(|pick| Op::Free { pick }),
        1 => any::<prop::sample::Index>().prop_map(|pick| Op::DoubleFree { pick }),
        1 => (0u64..SPAN / PAGE_SIZE).prop_map(|f| Op::FreeForeign { frame: BASE + f * PAGE_SIZE }),
    ]
}

fn arbitrary_range(limit: u64) -> impl Strategy<Value = PhysRange> {
    (0..limit, 0..limit / 4).prop_map(|(start, len)| r(start, start.saturating_add(len)))
}

/// The frames of a range, as page numbers.
fn pages(range: PhysRange) -> impl Iterator<Item = u64> {
    (range.start.as_u64() / PAGE_SIZE)..(range.end.as_u64() / PAGE_SIZE)
}

fn free_set(a: &FrameAllocator) -> BTreeSet<u64> {
    a.free_ranges().flat_map(pages).collect()
}

fn check_list_shape(a: &FrameAllocator) {
    let list: Vec<_> = a.free_ranges().collect();
    for range in &list {
        assert!(!range.is_empty());
        assert!(range.start.is_aligned(PAGE_SIZE) && range.end.is_aligned(PAGE_SIZE));
    }
    for pair in list.windows(2) {
        assert!(
            pair[0].end < pair[1].start,
            "sorted, disjoint, not adjacent: {pair:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn allocations_and_frees_keep_the_books(
        usable in proptest::collection::vec(arbitrary_range(SPAN), 1..6),
        low_usable in any::<bool>(),
        reserved in proptest::collection::vec(arbitrary_range(SPAN), 0..6),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let shift = |range: &PhysRange| r(range.start.as_u64() + BASE, range.end.as_u64() + BASE);
        let reserved: Vec<PhysRange> = reserved.iter().map(shift).collect();
        let mut a = FrameAllocator::empty();
        // The model: which pages are usable (added and not reserved).
        let mut usable_pages = BTreeSet::new();
        let reserved_pages: BTreeSet<u64> = reserved
            .iter()
            .flat_map(|range| {
                let start = range.start.align_down(PAGE_SIZE).as_u64() / PAGE_SIZE;
                let end = range.end.checked_align_up(PAGE_SIZE).unwrap().as_u64() / PAGE_SIZE;
                start..end
            })
            .collect();
        let mut additions: Vec<PhysRange> = usable.iter().map(shift).collect();
        if low_usable {
            additions.push(r(0x1000, 2 * MIB));
        }
        for range in additions {
            let start = range.start.checked_align_up(PAGE_SIZE).unwrap().as_u64() / PAGE_SIZE;
            let end = range.end.as_u64() / PAGE_SIZE;
            let new: BTreeSet<u64> = (start..end).filter(|p| !reserved_pages.contains(p)).collect();
            match a.add_usable(range, &reserved) {
                Ok(()) => {
                    prop_assert!(new.is_disjoint(&usable_pages));
                    usable_pages.extend(new);
                }
                Err(AllocError::AlreadyAdded) => prop_assert!(!new.is_disjoint(&usable_pages)),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
        prop_assert_eq!(free_set(&a), usable_pages.clone());
        prop_assert_eq!(a.total_frames().as_u64(), usable_pages.len() as u64);
        let initial: Vec<PhysRange> = a.free_ranges().collect();

        // Blocks handed out: (start page, count); and the pages they cover.
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        let mut allocated = BTreeSet::new();
        let mut freed: Vec<(u64, u64)> = Vec::new();
        for op in ops {
            let mut record = |start: HostPhysAddr, count: u64, allocated: &mut BTreeSet<u64>| {
                prop_assert!(start.is_aligned(PAGE_SIZE));
                let first = start.as_u64() / PAGE_SIZE;
                for p in first..first + count {
                    prop_assert!(usable_pages.contains(&p), "handed out unusable page {p:#x}");
                    prop_assert!(allocated.insert(p), "handed out page {p:#x} twice");
                }
                blocks.push((first, count));
                Ok(())
            };
            match op {
                Op::One => {
                    if let Ok(frame) = a.allocate() {
                        // The highest free frame.
                        let highest = usable_pages.iter().rev().find(|&&p| !allocated.contains(&p)).copied();
                        prop_assert_eq!(Some(frame.as_u64() / PAGE_SIZE), highest);
                        record(frame, 1, &mut allocated)?;
                    } else {
                        prop_assert_eq!(allocated.len(), usable_pages.len());
                    }
                }
                Op::Contiguous { count, align_shift } => {
                    let align = 1u64 << align_shift;
                    if let Ok(start) = a.allocate_contiguous(frames(count), align) {
                        prop_assert!(start.is_aligned(align));
                        record(start, count, &mut allocated)?;
                    }
                }
                Op::Below { limit, count } => {
                    if let Ok(start) = a.allocate_below(HostPhysAddr::new(limit), frames(count)) {
                        prop_assert!(start.as_u64() + count * PAGE_SIZE <= limit);
                        record(start, count, &mut allocated)?;
                    }
                }
                Op::Claim { start, count } => {
                    let first = start / PAGE_SIZE;
                    let all_free = (first..first + count)
                        .all(|p| usable_pages.contains(&p) && !allocated.contains(&p));
                    let result = a.claim(r(start, start + count * PAGE_SIZE));
                    prop_assert_eq!(result.is_ok(), all_free);
                    if result.is_ok() {
                        record(HostPhysAddr::new(start), count, &mut allocated)?;
                    }
                }
                Op::Free { pick } => {
                    if !blocks.is_empty() {
                        let (first, count) = blocks.swap_remove(pick.index(blocks.len()));
                        a.free(HostPhysAddr::new(first * PAGE_SIZE), frames(count)).unwrap();
                        for p in first..first + count {
                            allocated.remove(&p);
                        }
                        freed.push((first, count));
                    }
                }
                Op::DoubleFree { pick } => {
                    if !freed.is_empty() {
                        let (first, count) = freed[pick.index(freed.len())];
                        // Only a true double free if nothing re-allocated a page since.
                        if (first..first + count).all(|p| !allocated.contains(&p)) {
                            let result = a.free(HostPhysAddr::new(first * PAGE_SIZE), frames(count));
                            prop_assert_eq!(result, Err(AllocError::NotAllocated));
                        }
                    }
                }
                Op::FreeForeign { frame } => {
                    let p = frame / PAGE_SIZE;
                    if !usable_pages.contains(&p) || !allocated.contains(&p) {
                        let result = a.free(HostPhysAddr::new(frame), frames(1));
                        prop_assert_eq!(result, Err(AllocError::NotAllocated));
                    }
                }
            }
            // The books balance at every step.
            prop_assert_eq!(
                a.free_frames().as_u64() + allocated.len() as u64,
                a.total_frames().as_u64()
            );
            let expected: BTreeSet<u64> = usable_pages.difference(&allocated).copied().collect();
            prop_assert_eq!(free_set(&a), expected);
            check_list_shape(&a);
        }

        // Freeing everything restores the initial free list exactly.
        for (first, count) in blocks {
            a.free(HostPhysAddr::new(first * PAGE_SIZE), frames(count)).unwrap();
        }
        prop_assert_eq!(a.free_ranges().collect::<Vec<_>>(), initial);
        prop_assert_eq!(a.free_frames(), a.total_frames());
    }
}
