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
//! This module is the bookkeeping; the backend zeroes and maps.

use alloc::vec::Vec;

/// The largest piece: one 2 MiB EPT leaf.
pub const PIECE_BYTES: u64 = 2 << 20;

/// One piece: guest-physical start, host-physical start, bytes, zeroed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Guest-physical address of its first byte.
    pub gpa: u64,
    /// Host-physical address of its first byte (the piece is contiguous).
    pub hpa: u64,
    /// Its length in bytes (a multiple of 4 KiB).
    pub len: u64,
    populated: bool,
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
                pieces.push(Piece { gpa: at, hpa: hpa + off, len: n, populated: false });
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

    /// Whether piece `i` is zeroed and mapped.
    pub fn is_populated(&self, i: usize) -> bool {
        self.pieces.get(i).is_some_and(|p| p.populated)
    }

    /// Records that piece `i` was zeroed and mapped.
    pub fn mark_populated(&mut self, i: usize) {
        if let Some(p) = self.pieces.get_mut(i) {
            p.populated = true;
        }
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
        p.populated.then(|| (p.hpa + (gpa - p.gpa), p.len - (gpa - p.gpa)))
    }

    /// How many pieces are zeroed, and how many there are.
    pub fn populated_count(&self) -> (usize, usize) {
        (self.pieces.iter().filter(|p| p.populated).count(), self.pieces.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn chunks_are_cut_at_2_mib_boundaries_of_guest_space() {
        // 4 MiB + 12 KiB in one chunk, then a lone frame elsewhere.
        let ram = LazyRam::new(&[(0, 0x4000_0000, 4 * MIB + 0x3000), (4 * MIB + 0x3000, 0x7000_0000, 0x1000)]);
        let pieces: Vec<_> = (0..5).filter_map(|i| ram.piece(i)).map(|p| (p.gpa, p.hpa, p.len)).collect();
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
}
