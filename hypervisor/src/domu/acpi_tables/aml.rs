//! AML encoding, just enough for the domU's DSDT (ACPI 6.5 §20.2).

use alloc::vec::Vec;

pub const ZERO_OP: u8 = 0x00;
pub const ONE_OP: u8 = 0x01;
pub const NAME_OP: u8 = 0x08;
pub const BYTE_PREFIX: u8 = 0x0A;
pub const WORD_PREFIX: u8 = 0x0B;
pub const DWORD_PREFIX: u8 = 0x0C;
pub const QWORD_PREFIX: u8 = 0x0E;
pub const PACKAGE_OP: u8 = 0x12;

/// An integer constant in its shortest encoding (§20.2.3: ZeroOp,
/// OneOp, or a Byte/Word/DWord/QWord prefix and little-endian data).
pub fn integer(out: &mut Vec<u8>, v: u64) {
    match v {
        0 => out.push(ZERO_OP),
        1 => out.push(ONE_OP),
        2..=0xFF => out.extend_from_slice(&[BYTE_PREFIX, v as u8]),
        0x100..=0xFFFF => {
            out.push(WORD_PREFIX);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(DWORD_PREFIX);
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        _ => {
            out.push(QWORD_PREFIX);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A PkgLength for `body_len` bytes that follow it (§20.2.4). The
/// encoded value counts the PkgLength bytes too. One byte holds up to 63;
/// otherwise bits 7:6 of the lead byte give the number of bytes that
/// follow, its bits 3:0 are the value's low nibble and each following
/// byte the next 8 bits.
pub fn pkg_length(out: &mut Vec<u8>, body_len: usize) {
    if body_len < 0x3F {
        out.push((body_len + 1) as u8);
        return;
    }
    let (extra, total) = if body_len + 2 <= 0xFFF {
        (1, body_len + 2)
    } else if body_len + 3 <= 0xF_FFFF {
        (2, body_len + 3)
    } else {
        assert!(body_len + 4 <= 0xFFF_FFFF, "AML package too large");
        (3, body_len + 4)
    };
    out.push(((extra as u8) << 6) | (total & 0xF) as u8);
    for i in 0..extra {
        out.push((total >> (4 + 8 * i)) as u8);
    }
}

/// `Name(<name>, Package(){<elements>})` (DefName §20.2.5.1, DefPackage
/// §20.2.5.4: PackageOp PkgLength NumElements PackageElementList).
pub fn name_package(out: &mut Vec<u8>, name: &[u8; 4], elements: &[u64]) {
    let mut body = Vec::new();
    body.push(elements.len() as u8);
    for &e in elements {
        integer(&mut body, e);
    }
    out.push(NAME_OP);
    out.extend_from_slice(name);
    out.push(PACKAGE_OP);
    pkg_length(out, body.len());
    out.extend_from_slice(&body);
}
