//! Isolation canaries (command-line option `canary`): 64-byte records the
//! hypervisor writes into its own memory and into free-pool frames, so that a
//! test in dom0 can look for them through `/dev/mem` and the hypervisor can
//! check afterwards that nothing overwrote them. Each record names the
//! address it was written at, so a copy found elsewhere is recognisable too.

/// Bytes in one record.
pub const RECORD_LEN: usize = 64;

/// What every record starts with.
pub const MAGIC: &[u8; 12] = b"OXEN-CANARY-";

/// Free-pool frames get a record every this many bytes.
pub const POOL_STRIDE: u64 = 256 * 1024;

/// The record for physical address `addr`: the magic, the address in 16 hex
/// digits, `-`, then bytes that depend on the address and their position.
pub fn record(addr: u64) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[..MAGIC.len()].copy_from_slice(MAGIC);
    let hex = b"0123456789ABCDEF";
    for i in 0..16 {
        r[MAGIC.len() + i] = hex[((addr >> (60 - 4 * i)) & 0xF) as usize];
    }
    r[MAGIC.len() + 16] = b'-';
    let mut x = addr ^ 0x9E37_79B9_7F4A_7C15;
    for b in r.iter_mut().skip(MAGIC.len() + 17) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Printable, never 0xFF: a record cannot pass for all-ones memory.
        *b = b'A' + (x % 26) as u8;
    }
    r
}

/// Whether `bytes` holds the record for `addr`.
pub fn is_intact(bytes: &[u8], addr: u64) -> bool {
    bytes.len() >= RECORD_LEN && bytes[..RECORD_LEN] == record(addr)
}

/// The addresses of `planted` (sorted) that lie in `[start, end)`.
pub fn planted_in(planted: &[u64], start: u64, end: u64) -> &[u64] {
    let from = planted.partition_point(|&a| a < start);
    let to = planted.partition_point(|&a| a < end).max(from);
    &planted[from..to]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_in_a_range() {
        let p = [0x4_0000, 0x8_0000, 0xC_0000, 0x10_0000];
        assert_eq!(planted_in(&p, 0x8_0000, 0x10_0000), &[0x8_0000, 0xC_0000]);
        assert_eq!(planted_in(&p, 0x8_0001, 0xC_0001), &[0xC_0000]);
        assert_eq!(planted_in(&p, 0, 0x4_0000), &[] as &[u64]);
        assert_eq!(planted_in(&p, 0x20_0000, 0x10_0000), &[] as &[u64]);
        assert_eq!(planted_in(&p, 0, u64::MAX), &p);
    }

    #[test]
    fn records_name_their_address_and_differ() {
        let a = record(0x3000_0000);
        assert!(a.starts_with(b"OXEN-CANARY-0000000030000000-"));
        assert!(a.iter().all(|&b| b != 0xFF && b.is_ascii_graphic()));
        assert_ne!(a, record(0x3004_0000));
        assert!(is_intact(&a, 0x3000_0000));
        assert!(!is_intact(&a, 0x3004_0000));
        let mut damaged = a;
        damaged[40] ^= 1;
        assert!(!is_intact(&damaged, 0x3000_0000));
        assert!(!is_intact(&a[..10], 0x3000_0000));
    }
}
