//! A domU's RAM, zeroed when first used rather than at creation.
//!
//! Creating a domain takes its frames from the free pool at once (its memory
//! is accounted to the page from the start), but zeroing hundreds of
//! megabytes would make `xl-rs create` as slow as the RAM is large. So the
//! RAM is cut into pieces of at most [`PIECE_BYTES`], aligned to it in
//! guest-physical space, and a piece enters the domain's EPT only once it
//! has been zeroed: on the guest's first access to it (an EPT violation), or
//! when the toolstack copies something into it. Until then the guest cannot
//! reach its frames, and the hypervisor itself refuses to read them for the
//! guest ([`LazyRam::translate`] knows only zeroed pieces), so whatever an
//! earlier owner left there is never seen. A guest that touches little of
//! its RAM (Linux does not touch free memory) never pays for the rest.
//!
//! The toolstack's copies are not zeroed first where they overwrite whole
//! pages: a piece a copy touches is mapped at once but stays *loading*,
//! with a record of the pages written; a page a copy covers only in part is
//! zeroed before it is written; and when the domain first runs
//! ([`LazyRam::finish_loading`]) the pages of loading pieces that no copy
//! wrote are zeroed. A domain runs only after that, so it never sees a byte
//! nobody initialised.
//!
//! This module is the bookkeeping; the backend zeroes and maps.

use alloc::vec::Vec;

/// The largest piece: one 2 MiB EPT leaf.
pub const PIECE_BYTES: u64 = 2 << 20;

/// Pages of 4 KiB in a piece, at most.
const PIECE_PAGES: usize = (PIECE_BYTES / 4096) as usize;

/// Where a piece is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not zeroed, not mapped.
    Untouched,
    /// Mapped; the domain has not run; the pages set here were written
    /// whole or zeroed, the others are still to be zeroed.
    Loading([u64; PIECE_PAGES / 64]),
    /// Zeroed (or written) throughout and mapped.
    Populated,
}

/// What the backend does before a copy into a piece.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyPrep {
    /// The piece was untouched: map it in the EPT.
    pub map: bool,
    /// Host-physical addresses of the 4 KiB pages to zero first (the copy
    /// writes them only in part).
    pub zero_pages: Vec<u64>,
}

/// One piece: guest-physical start, host-physical start, bytes, state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Guest-physical address of its first byte.
    pub gpa: u64,
    /// Host-physical address of its first byte (the piece is contiguous).
    pub hpa: u64,
    /// Its length in bytes (a multiple of 4 KiB).
    pub len: u64,
    state: State,
}

/// The pieces of a domU's RAM, by ascending guest-physical address.
#[derive(Debug, Default)]
pub struct LazyRam {
    pieces: Vec<Piece>,
}

impl LazyRam {
    /// Cuts `chunks` (guest-physical start, host-physical start, bytes;
    /// ascending, contiguous in both spaces each) into pieces that never
    /// cross a [`PIECE_BYTES`] boundary of guest-physical space.
    pub fn new(chunks: &[(u64, u64, u64)]) -> Self {
        let mut pieces = Vec::new();
        for &(gpa, hpa, len) in chunks {
            let mut off = 0;
            while off < len {
                let at = gpa + off;
                let to_boundary = PIECE_BYTES - at % PIECE_BYTES;
                let n = to_boundary.min(len - off);
                pieces.push(Piece {
                    gpa: at,
                    hpa: hpa + off,
                    len: n,
                    state: State::Untouched,
                });
                off += n;
            }
        }
        Self { pieces }
    }

    /// The index of the piece holding `gpa`, if it is RAM.
    pub fn piece_of(&self, gpa: u64) -> Option<usize> {
        let i = self.pieces.partition_point(|p| p.gpa + p.len <= gpa);
        self.pieces.get(i).filter(|p| p.gpa <= gpa).map(|_| i)
    }

    /// Piece `i`.
    pub fn piece(&self, i: usize) -> Option<Piece> {
        self.pieces.get(i).copied()
    }

    /// Whether piece `i` is mapped (zeroed, or loading).
    pub fn is_populated(&self, i: usize) -> bool {
        self.pieces
            .get(i)
            .is_some_and(|p| p.state != State::Untouched)
    }

    /// Records that piece `i` was zeroed and mapped.
    pub fn mark_populated(&mut self, i: usize) {
        if let Some(p) = self.pieces.get_mut(i) {
            p.state = State::Populated;
        }
    }

    /// A copy of `len` bytes to `gpa` is about to write piece `i`: what to
    /// do first (see the module documentation). Records the pages the copy
    /// writes.
    pub fn begin_copy(&mut self, i: usize, gpa: u64, len: u64) -> CopyPrep {
        let mut prep = CopyPrep::default();
        let Some(p) = self.pieces.get_mut(i) else {
            return prep;
        };
        let mut mask = match p.state {
            State::Populated => return prep,
            State::Untouched => {
                prep.map = true;
                [0; PIECE_PAGES / 64]
            }
            State::Loading(mask) => mask,
        };
        let start = gpa.max(p.gpa);
        let end = gpa.saturating_add(len).min(p.gpa + p.len);
        let mut page = (start - p.gpa) & !0xFFF;
        while p.gpa + page < end {
            let (lo, hi) = (p.gpa + page, p.gpa + page + 4096);
            let n = (page / 4096) as usize;
            if mask[n / 64] & (1 << (n % 64)) == 0 {
                if !(start <= lo && end >= hi) {
                    prep.zero_pages.push(p.hpa + page);
                }
                mask[n / 64] |= 1 << (n % 64);
            }
            page += 4096;
        }
        p.state = State::Loading(mask);
        prep
    }

    /// The domain is about to run: every loading piece becomes populated.
    /// Returns the runs (host-physical start, bytes) no copy wrote, which
    /// the backend zeroes before the domain runs.
    pub fn finish_loading(&mut self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for p in &mut self.pieces {
            let State::Loading(mask) = p.state else {
                continue;
            };
            for n in 0..(p.len / 4096) as usize {
                if mask[n / 64] & (1 << (n % 64)) != 0 {
                    continue;
                }
                let hpa = p.hpa + n as u64 * 4096;
                match runs.last_mut() {
                    Some((s, l)) if *s + *l == hpa => *l += 4096,
                    _ => runs.push((hpa, 4096)),
                }
            }
            p.state = State::Populated;
        }
        runs
    }

    /// The indices of the pieces `[gpa, gpa + len)` touches (empty when the
    /// range is not wholly RAM).
    pub fn pieces_in(&self, gpa: u64, len: u64) -> core::ops::Range<usize> {
        if len == 0 {
            return 0..0;
        }
        let Some(end) = gpa.checked_add(len - 1) else {
            return 0..0;
        };
        match (self.piece_of(gpa), self.piece_of(end)) {
            (Some(first), Some(last)) => first..last + 1,
            _ => 0..0,
        }
    }

    /// The host-physical address of `gpa` and the bytes that follow it in
    /// the same piece, if `gpa` is in a zeroed piece.
    pub fn translate(&self, gpa: u64) -> Option<(u64, u64)> {
        let p = self.piece(self.piece_of(gpa)?)?;
        (p.state != State::Untouched).then(|| (p.hpa + (gpa - p.gpa), p.len - (gpa - p.gpa)))
    }

    /// How many pieces are zeroed, and how many there are.
    pub fn populated_count(&self) -> (usize, usize) {
        (
            self.pieces
                .iter()
                .filter(|p| p.state != State::Untouched)
                .count(),
            self.pieces.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn chunks_are_cut_at_2_mib_boundaries_of_guest_space() {
        // 4 MiB + 12 KiB in one chunk, then a lone frame elsewhere.
        let ram = LazyRam::new(&[
            (0, 0x4000_0000, 4 * MIB + 0x3000),
            (4 * MIB + 0x3000, 0x7000_0000, 0x1000),
        ]);
        let pieces: Vec<_> = (0..5)
            .filter_map(|i| ram.piece(i))
            .map(|p| (p.gpa, p.hpa, p.len))
            .collect();
        assert_eq!(
            pieces,
            [
                (0, 0x4000_0000, 2 * MIB),
                (2 * MIB, 0x4020_0000, 2 * MIB),
                (4 * MIB, 0x4040_0000, 0x3000),
                (4 * MIB + 0x3000, 0x7000_0000, 0x1000),
            ]
        );
        let ram = LazyRam::new(&[(MIB, 0x10_0000, 2 * MIB)]);
        assert_eq!(ram.piece(0).map(|p| p.len), Some(MIB), "up to the boundary");
        assert_eq!(ram.piece(1).map(|p| (p.gpa, p.len)), Some((2 * MIB, MIB)));
    }

    #[test]
    fn only_populated_pieces_translate() {
        let mut ram = LazyRam::new(&[(0, 0x4000_0000, 4 * MIB)]);
        assert_eq!(ram.piece_of(3 * MIB), Some(1));
        assert_eq!(ram.piece_of(4 * MIB), None, "past the RAM");
        assert_eq!(ram.translate(3 * MIB), None, "not zeroed yet");
        ram.mark_populated(1);
        assert_eq!(ram.translate(3 * MIB + 5), Some((0x4030_0005, MIB - 5)));
        assert_eq!(ram.translate(MIB), None);
        assert!(ram.is_populated(1) && !ram.is_populated(0));
        assert_eq!(ram.populated_count(), (1, 2));
    }

    #[test]
    fn ranges_name_every_piece_they_touch() {
        let ram = LazyRam::new(&[(0, 0x4000_0000, 6 * MIB)]);
        assert_eq!(ram.pieces_in(MIB, 2 * MIB), 0..2);
        assert_eq!(ram.pieces_in(2 * MIB, 1), 1..2);
        assert_eq!(ram.pieces_in(0, 6 * MIB), 0..3);
        assert_eq!(ram.pieces_in(5 * MIB, 2 * MIB), 0..0, "runs past the RAM");
        assert_eq!(ram.pieces_in(0, 0), 0..0);
        assert_eq!(ram.pieces_in(u64::MAX, 2), 0..0);
    }

    #[test]
    fn copies_zero_only_what_they_write_in_part_and_the_rest_is_zeroed_before_running() {
        let mut ram = LazyRam::new(&[(0, 0x4000_0000, 4 * MIB)]);
        // Whole pages 1 and 2 of piece 0, then half of page 3.
        let prep = ram.begin_copy(0, 0x1000, 0x2800);
        assert_eq!(
            prep,
            CopyPrep {
                map: true,
                zero_pages: vec![0x4000_3000]
            }
        );
        assert!(ram.is_populated(0), "mapped while loading");
        assert_eq!(ram.translate(0x1000), Some((0x4000_1000, 2 * MIB - 0x1000)));
        // The rest of page 3 and all of page 4: page 3 is already initialised.
        let prep = ram.begin_copy(0, 0x3800, 0x1800);
        assert_eq!(
            prep,
            CopyPrep {
                map: false,
                zero_pages: vec![]
            }
        );
        // A copy across the piece boundary is asked about per piece.
        assert_eq!(
            ram.begin_copy(1, 2 * MIB - 0x10, 0x20).zero_pages,
            vec![0x4020_0000]
        );
        let runs = ram.finish_loading();
        // Piece 0: page 0, then pages 5..512; piece 1: pages 1..512.
        assert_eq!(
            runs,
            vec![
                (0x4000_0000, 0x1000),
                (0x4000_5000, 2 * MIB - 0x5000),
                (0x4020_1000, 2 * MIB - 0x1000)
            ]
        );
        assert_eq!(
            ram.begin_copy(0, 0, 0x1000),
            CopyPrep::default(),
            "populated: nothing to do"
        );
        assert_eq!(ram.finish_loading(), vec![]);
    }
}
