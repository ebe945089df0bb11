//! The hypervisor's log ring: the last [`LogRing::CAPACITY`] bytes of its
//! console output, for `xl-rs dmesg` (hypercall `LOG_READ`). Oldest bytes
//! are overwritten first and counted as dropped until the next clear.

/// A byte ring of fixed capacity.
#[derive(Debug)]
pub struct LogRing {
    buf: [u8; Self::CAPACITY],
    /// Index of the oldest byte.
    start: usize,
    len: usize,
    dropped: u64,
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new()
    }
}

impl LogRing {
    /// Bytes kept.
    pub const CAPACITY: usize = 64 * 1024;

    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; Self::CAPACITY],
            start: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Appends `bytes`, overwriting the oldest when full.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let end = (self.start + self.len) % Self::CAPACITY;
            self.buf[end] = b;
            if self.len == Self::CAPACITY {
                self.start = (self.start + 1) % Self::CAPACITY;
                self.dropped += 1;
            } else {
                self.len += 1;
            }
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes overwritten since the last clear.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Copies the oldest `out.len()` bytes (or all) into `out`; with
    /// `clear`, those bytes are consumed and, once the ring is empty, the
    /// dropped count restarts. Returns the bytes copied and the dropped
    /// count before the read.
    pub fn read(&mut self, out: &mut [u8], clear: bool) -> (usize, u64) {
        let n = out.len().min(self.len);
        for (i, o) in out.iter_mut().take(n).enumerate() {
            *o = self.buf[(self.start + i) % Self::CAPACITY];
        }
        let dropped = self.dropped;
        if clear {
            self.start = (self.start + n) % Self::CAPACITY;
            self.len -= n;
            if self.len == 0 {
                self.dropped = 0;
            }
        }
        (n, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_counts_what_wraps() {
        let mut r = LogRing::new();
        r.push(b"hello\n");
        let mut out = [0u8; 16];
        assert_eq!(r.read(&mut out, false), (6, 0));
        assert_eq!(&out[..6], b"hello\n");
        let big = alloc::vec![b'x'; LogRing::CAPACITY];
        r.push(&big);
        r.push(b"END");
        assert_eq!(r.len(), LogRing::CAPACITY);
        assert_eq!(r.dropped(), 9);
        let mut all = alloc::vec![0u8; LogRing::CAPACITY + 10];
        let (n, dropped) = r.read(&mut all, false);
        assert_eq!((n, dropped), (LogRing::CAPACITY, 9));
        assert!(all[..n].ends_with(b"xxEND"));
        assert_eq!(all[0], b'x');
    }

    #[test]
    fn clear_consumes_what_was_read() {
        let mut r = LogRing::new();
        r.push(b"abcdef");
        let mut out = [0u8; 4];
        assert_eq!(r.read(&mut out, true), (4, 0));
        assert_eq!(&out, b"abcd");
        assert_eq!(r.len(), 2);
        assert_eq!(r.read(&mut out, true), (2, 0));
        assert_eq!(&out[..2], b"ef");
        assert!(r.is_empty());
        assert_eq!(r.read(&mut out, true), (0, 0));
    }
}
