//! Address and size types. Host-physical, guest-physical and host-virtual
//! addresses are distinct types so that one can never be used for another
//! without an explicit, named conversion.

use core::fmt;
use core::ops::{Add, Sub};

/// Size of a 4 KiB page.
pub const PAGE_SIZE: u64 = 4096;
/// Size of a 2 MiB large page.
pub const LARGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;
/// Size of a 1 GiB huge page.
pub const HUGE_PAGE_SIZE: u64 = 1024 * 1024 * 1024;

macro_rules! address_type {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw address.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            /// The raw address.
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            /// Rounds down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
            /// Rounds up to a multiple of `align` (a power of two); `None` on overflow.
            pub const fn checked_align_up(self, align: u64) -> Option<Self> {
                match self.0.checked_add(align - 1) {
                    Some(v) => Some(Self(v & !(align - 1))),
                    None => None,
                }
            }
            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// Adds a size; `None` on overflow.
            pub const fn checked_add(self, size: ByteSize) -> Option<Self> {
                match self.0.checked_add(size.0) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl Add<ByteSize> for $name {
            type Output = Self;
            fn add(self, rhs: ByteSize) -> Self {
                Self(self.0 + rhs.0)
            }
        }

        impl Sub<$name> for $name {
            type Output = ByteSize;
            fn sub(self, rhs: $name) -> ByteSize {
                ByteSize(self.0 - rhs.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:#x}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A host-physical address (what the CPU puts on the memory bus).
    HostPhysAddr,
    "HPA:"
);
address_type!(
    /// A guest-physical address (what a guest believes is physical; EPT translates it).
    GuestPhysAddr,
    "GPA:"
);
address_type!(
    /// A host-virtual address in the hypervisor's own address space.
    HostVirtAddr,
    "HVA:"
);

/// A size in bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct ByteSize(u64);

impl ByteSize {
    /// Zero bytes.
    pub const ZERO: Self = Self(0);
    /// Wraps a byte count.
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }
    /// A size in KiB.
    pub const fn kib(k: u64) -> Self {
        Self(k * 1024)
    }
    /// A size in MiB.
    pub const fn mib(m: u64) -> Self {
        Self(m * 1024 * 1024)
    }
    /// The byte count.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// Number of whole 4 KiB frames.
    pub const fn frames(self) -> FrameCount {
        FrameCount(self.0 / PAGE_SIZE)
    }
}

impl Add for ByteSize {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self(self.0 + rhs.0)
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl fmt::Display for ByteSize {
    /// Human-readable: bytes, KiB, MiB or GiB, whichever is exact and largest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (unit, name) in UNITS {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{} {}", self.0 / unit, name);
            }
        }
        if self.0 >= 1 << 20 {
            return write!(f, "{} KiB", self.0 / 1024);
        }
        write!(f, "{} B", self.0)
    }
}

/// A number of 4 KiB frames.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct FrameCount(u64);

impl FrameCount {
    /// Wraps a frame count.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }
    /// The count.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// The size these frames cover.
    pub const fn bytes(self) -> ByteSize {
        ByteSize(self.0 * PAGE_SIZE)
    }
}

/// A half-open range `[start, end)` of host-physical memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PhysRange {
    /// First byte.
    pub start: HostPhysAddr,
    /// One past the last byte.
    pub end: HostPhysAddr,
}

impl PhysRange {
    /// A range from its two ends; an inverted range becomes empty.
    pub const fn new(start: HostPhysAddr, end: HostPhysAddr) -> Self {
        if end.as_u64() < start.as_u64() {
            Self { start, end: start }
        } else {
            Self { start, end }
        }
    }
    /// Its size.
    pub const fn size(&self) -> ByteSize {
        ByteSize::new(self.end.as_u64() - self.start.as_u64())
    }
    /// Whether it holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end.as_u64() <= self.start.as_u64()
    }
    /// Whether the two ranges share a byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start.as_u64() < other.end.as_u64() && other.start.as_u64() < self.end.as_u64()
    }
    /// Whether `addr` lies inside.
    pub const fn contains(&self, addr: HostPhysAddr) -> bool {
        self.start.as_u64() <= addr.as_u64() && addr.as_u64() < self.end.as_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_and_display() {
        let a = HostPhysAddr::new(0x1234);
        assert_eq!(a.align_down(PAGE_SIZE).as_u64(), 0x1000);
        assert_eq!(a.checked_align_up(PAGE_SIZE).unwrap().as_u64(), 0x2000);
        assert_eq!(
            HostPhysAddr::new(u64::MAX).checked_align_up(PAGE_SIZE),
            None
        );
        assert_eq!(format!("{}", ByteSize::mib(256)), "256 MiB");
        assert_eq!(format!("{}", ByteSize::new(3 * 1024 + 1)), "3073 B");
        assert_eq!(ByteSize::mib(1).frames().as_u64(), 256);
    }

    #[test]
    fn ranges() {
        let r = PhysRange::new(HostPhysAddr::new(0x1000), HostPhysAddr::new(0x3000));
        assert!(r.contains(HostPhysAddr::new(0x2fff)));
        assert!(!r.contains(HostPhysAddr::new(0x3000)));
        assert!(r.overlaps(&PhysRange::new(
            HostPhysAddr::new(0x2000),
            HostPhysAddr::new(0x9000)
        )));
        assert!(!r.overlaps(&PhysRange::new(
            HostPhysAddr::new(0x3000),
            HostPhysAddr::new(0x9000)
        )));
        assert!(PhysRange::new(HostPhysAddr::new(5), HostPhysAddr::new(1)).is_empty());
    }
}
