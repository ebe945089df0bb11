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
    /// Every MSR read and write exits.
    pub fn trap_all() -> Self {
        Self([0xFF; 4096])
    }

    /// Reads and writes of `msr` run on the hardware.
    pub fn pass(&mut self, msr: u32) {
        if let Some(bit) = Self::slot(msr) {
            self.0[bit / 8] &= !(1 << (bit % 8));
            let bit = bit + 2048 * 8;
            self.0[bit / 8] &= !(1 << (bit % 8));
        }
    }

    /// A domU's bitmap: everything exits except the MSRs that are part of
    /// the guest state VM entry and exit switch (FS/GS base, SYSENTER, PAT:
    /// SDM Vol. 3C §25.4.1, with the PAT load/save controls) or that the
    /// hypervisor switches itself between vCPUs (the SYSCALL MSRs, the
    /// kernel GS base, TSC_AUX); a write to any other MSR could change the
    /// physical CPU under every other guest.
    pub fn for_domu() -> Self {
        let mut b = Self::trap_all();
        for msr in [
            0x174,
            0x175,
            0x176,
            0x277,
            0xC000_0081,
            0xC000_0082,
            0xC000_0083,
            0xC000_0084,
        ]
        .into_iter()
        .chain(0xC000_0100..=0xC000_0103)
        {
            b.pass(msr);
        }
        b
    }

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
    fn domu_bitmap_passes_only_switched_msrs() {
        let b = MsrBitmap::for_domu();
        for msr in [
            0x174,
            0x277,
            0xC000_0082,
            0xC000_0100,
            0xC000_0102,
            0xC000_0103,
        ] {
            assert!(!b.reads_exit(msr) && !b.writes_exit(msr), "{msr:#x}");
        }
        for msr in [
            0x10,
            0x1B,
            0x3A,
            0x1A0,
            0x6E0,
            0x480,
            0x800,
            0xC000_0080,
            0xC001_0000,
            0x4000_0000,
        ] {
            assert!(b.reads_exit(msr) && b.writes_exit(msr), "{msr:#x}");
        }
    }

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
