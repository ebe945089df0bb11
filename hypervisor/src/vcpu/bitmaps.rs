//! MSR and I/O bitmaps (SDM Vol.3C §25.6.4 "I/O-Bitmap Addresses" and §25.6.9
//! "MSR-Bitmap Address"): a set bit makes the access exit.

/// The 4 KiB MSR bitmap: read-low, read-high, write-low, write-high quarters,
/// low = MSRs 0..0x1FFF, high = 0xC000_0000..0xC000_1FFF.
#[derive(Debug, Clone)]
pub struct MsrBitmap(pub [u8; 4096]);

impl MsrBitmap {
    /// Nothing intercepted.
    pub fn pass_all() -> Self {
        Self([0; 4096])
    }

    fn slot(msr: u32) -> Option<usize> {
        match msr {
            0..=0x1FFF => Some(msr as usize),
            0xC000_0000..=0xC000_1FFF => Some(1024 * 8 + (msr - 0xC000_0000) as usize),
            _ => None,
        }
    }

    /// Makes reads of `msr` exit. MSRs outside both ranges always exit.
    pub fn trap_read(&mut self, msr: u32) {
        if let Some(bit) = Self::slot(msr) {
            self.0[bit / 8] |= 1 << (bit % 8);
        }
    }

    /// Makes writes of `msr` exit.
    pub fn trap_write(&mut self, msr: u32) {
        if let Some(bit) = Self::slot(msr) {
            let bit = bit + 2048 * 8;
            self.0[bit / 8] |= 1 << (bit % 8);
        }
    }

    /// Traps reads and writes of every MSR in `range`.
    pub fn trap_range(&mut self, range: core::ops::RangeInclusive<u32>) {
        for m in range {
            self.trap_read(m);
            self.trap_write(m);
        }
    }

    /// Whether a read of `msr` exits.
    pub fn reads_exit(&self, msr: u32) -> bool {
        Self::slot(msr).is_none_or(|bit| self.0[bit / 8] & (1 << (bit % 8)) != 0)
    }

    /// Whether a write of `msr` exits.
    pub fn writes_exit(&self, msr: u32) -> bool {
        Self::slot(msr).is_none_or(|bit| {
            let bit = bit + 2048 * 8;
            self.0[bit / 8] & (1 << (bit % 8)) != 0
        })
    }
}

/// I/O bitmaps A and B: one bit per port, 8 KiB.
#[derive(Debug, Clone)]
pub struct IoBitmap(pub [u8; 8192]);

impl IoBitmap {
    /// Nothing intercepted.
    pub fn pass_all() -> Self {
        Self([0; 8192])
    }
    /// Every port intercepted.
    pub fn trap_all() -> Self {
        Self([0xFF; 8192])
    }
    /// Makes accesses to `port..port+len` exit.
    pub fn trap(&mut self, port: u16, len: u16) {
        for p in u32::from(port)..(u32::from(port) + u32::from(len)).min(0x1_0000) {
            self.0[(p / 8) as usize] |= 1 << (p % 8);
        }
    }
    /// Lets accesses to `port..port+len` through.
    pub fn pass(&mut self, port: u16, len: u16) {
        for p in u32::from(port)..(u32::from(port) + u32::from(len)).min(0x1_0000) {
            self.0[(p / 8) as usize] &= !(1 << (p % 8));
        }
    }
    /// Whether an access to `port` exits.
    pub fn traps(&self, port: u16) -> bool {
        self.0[usize::from(port / 8)] & (1 << (port % 8)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msr_quarters() {
        let mut b = MsrBitmap::pass_all();
        b.trap_read(0x1B);
        b.trap_write(0xC000_0080);
        assert!(b.reads_exit(0x1B) && !b.writes_exit(0x1B));
        assert!(b.writes_exit(0xC000_0080) && !b.reads_exit(0xC000_0080));
        assert_eq!(b.0[0x1B / 8], 1 << (0x1B % 8));
        assert_eq!(b.0[3072 + 0x80 / 8], 1 << 0);
        assert!(b.reads_exit(0x4000_0000)); // outside both ranges
        b.trap_range(0x800..=0x8FF);
        assert!(b.reads_exit(0x830) && b.writes_exit(0x8FF) && !b.reads_exit(0x900));
    }

    #[test]
    fn io_ports() {
        let mut b = IoBitmap::pass_all();
        b.trap(0x3F8, 8);
        assert!(b.traps(0x3F8) && b.traps(0x3FF) && !b.traps(0x400) && !b.traps(0x3F7));
        b.trap(0xFFFF, 4); // clipped at the last port, no overflow
        assert!(b.traps(0xFFFF));
        b.pass(0x3F8, 1);
        assert!(!b.traps(0x3F8));
    }
}
