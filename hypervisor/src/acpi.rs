//! A small ACPI table reader: RSDP, RSDT/XSDT, MADT (CPUs, I/O APICs), FADT
//! (power-management and reset registers) and the `\_S5` sleep type from the
//! DSDT. ACPI 6.5 sections are cited per item. Pure logic: tables are read
//! through [`PhysRead`], so the parser runs on the host against synthetic
//! tables, and every length and checksum is checked before use.

use alloc::vec::Vec;
use core::fmt;

/// Reads physical memory (the hypervisor's direct map, or a test fake).
pub trait PhysRead {
    /// Fills `buf` from physical address `addr`; false if not readable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool;
}

/// What went wrong reading the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// RSDP signature, length or checksum wrong.
    BadRsdp,
    /// A table's header, length or checksum is wrong.
    BadTable([u8; 4]),
    /// A table could not be read.
    Unreadable(u64),
    /// The table is not present.
    Missing([u8; 4]),
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::BadRsdp => write!(f, "invalid ACPI RSDP"),
            AcpiError::BadTable(s) => write!(f, "invalid ACPI table {}", sig(s)),
            AcpiError::Unreadable(a) => write!(f, "ACPI table at {a:#x} is not readable"),
            AcpiError::Missing(s) => write!(f, "ACPI table {} not found", sig(s)),
        }
    }
}

fn sig(s: &[u8; 4]) -> &str {
    core::str::from_utf8(s).unwrap_or("????")
}

const HEADER_LEN: usize = 36;
/// Largest table we read in one piece (the DSDT, which can be larger, is only
/// scanned in chunks, see `dsdt_s5`).
const MAX_TABLE: usize = 1024 * 1024;

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Where the root table list lives (ACPI 6.5 §5.2.5.3, RSDP structure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    /// ACPI revision (0 = 1.0 with RSDT only).
    pub revision: u8,
    /// RSDT physical address.
    pub rsdt: u64,
    /// XSDT physical address (0 when revision < 2).
    pub xsdt: u64,
}

/// Parses and checks the RSDP bytes (as copied by the boot loader).
pub fn parse_rsdp(b: &[u8]) -> Result<Rsdp, AcpiError> {
    if b.len() < 20 || &b[0..8] != b"RSD PTR " || !checksum_ok(&b[0..20]) {
        return Err(AcpiError::BadRsdp);
    }
    let revision = b[15];
    let rsdt = u64::from(u32_at(b, 16));
    let mut xsdt = 0;
    if revision >= 2 && b.len() >= 36 {
        let len = u32_at(b, 20) as usize;
        if len < 36 || len > b.len() || !checksum_ok(&b[..len]) {
            return Err(AcpiError::BadRsdp);
        }
        xsdt = u64_at(b, 24);
    }
    Ok(Rsdp {
        revision,
        rsdt,
        xsdt,
    })
}

/// A whole table copied into memory (heap: tables can be tens of KiB).
struct Table {
    buf: Vec<u8>,
}

impl Table {
    fn new() -> Self {
        Self { buf: Vec::new() }
    }
    fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn read_table(
    mem: &dyn PhysRead,
    addr: u64,
    want: Option<&[u8; 4]>,
    out: &mut Table,
) -> Result<(), AcpiError> {
    let mut hdr = [0u8; HEADER_LEN];
    if !mem.read(addr, &mut hdr) {
        return Err(AcpiError::Unreadable(addr));
    }
    let mut s = [0u8; 4];
    s.copy_from_slice(&hdr[0..4]);
    if let Some(w) = want
        && &s != w
    {
        return Err(AcpiError::BadTable(*w));
    }
    let len = u32_at(&hdr, 4) as usize;
    if !(HEADER_LEN..=MAX_TABLE).contains(&len) {
        return Err(AcpiError::BadTable(s));
    }
    out.buf.resize(len, 0);
    if !mem.read(addr, &mut out.buf) {
        return Err(AcpiError::Unreadable(addr));
    }
    if !checksum_ok(out.bytes()) {
        return Err(AcpiError::BadTable(s));
    }
    Ok(())
}

/// Finds the physical address of the table with `signature` through the XSDT
/// (or RSDT) (ACPI 6.5 §5.2.7, §5.2.8).
pub fn find_table(mem: &dyn PhysRead, rsdp: &Rsdp, signature: &[u8; 4]) -> Result<u64, AcpiError> {
    let (root, entry, root_sig) = if rsdp.xsdt != 0 {
        (rsdp.xsdt, 8, b"XSDT")
    } else {
        (rsdp.rsdt, 4, b"RSDT")
    };
    let mut hdr = [0u8; HEADER_LEN];
    if !mem.read(root, &mut hdr) || &hdr[0..4] != root_sig {
        return Err(AcpiError::BadTable(*root_sig));
    }
    let len = u32_at(&hdr, 4) as usize;
    if !(HEADER_LEN..=MAX_TABLE).contains(&len) {
        return Err(AcpiError::BadTable(*root_sig));
    }
    let count = (len - HEADER_LEN) / entry;
    for i in 0..count {
        let mut e = [0u8; 8];
        if !mem.read(root + (HEADER_LEN + i * entry) as u64, &mut e[..entry]) {
            return Err(AcpiError::Unreadable(root));
        }
        let addr = u64::from_le_bytes(e);
        let mut s = [0u8; 4];
        if mem.read(addr, &mut s) && &s == signature {
            return Ok(addr);
        }
    }
    Err(AcpiError::Missing(*signature))
}

/// One processor from the MADT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadtCpu {
    /// Its local APIC ID.
    pub apic_id: u32,
    /// Enabled now (bit 0 of the flags).
    pub enabled: bool,
}

/// What the MADT says (ACPI 6.5 §5.2.12).
#[derive(Debug, Clone)]
pub struct Madt<const N: usize> {
    /// Local APIC physical address.
    pub lapic_addr: u64,
    /// Processors (local APIC and x2APIC entries), up to N.
    pub cpus: [MadtCpu; N],
    /// Number of valid entries in `cpus`.
    pub cpu_count: usize,
    /// Processors that did not fit.
    pub cpus_dropped: usize,
    /// I/O APICs found.
    pub ioapic_count: usize,
}

/// Reads the MADT.
pub fn parse_madt<const N: usize>(mem: &dyn PhysRead, addr: u64) -> Result<Madt<N>, AcpiError> {
    let mut t = Table::new();
    read_table(mem, addr, Some(b"APIC"), &mut t)?;
    let b = t.bytes();
    if b.len() < 44 {
        return Err(AcpiError::BadTable(*b"APIC"));
    }
    let mut m = Madt {
        lapic_addr: u64::from(u32_at(b, 36)),
        cpus: [MadtCpu {
            apic_id: 0,
            enabled: false,
        }; N],
        cpu_count: 0,
        cpus_dropped: 0,
        ioapic_count: 0,
    };
    let mut off = 44;
    while off + 2 <= b.len() {
        let kind = b[off];
        let len = usize::from(b[off + 1]);
        if len < 2 || off + len > b.len() {
            return Err(AcpiError::BadTable(*b"APIC"));
        }
        let e = &b[off..off + len];
        let cpu = match (kind, len) {
            // Processor Local APIC (§5.2.12.2): id at 3, flags at 4.
            (0, 8..) => Some(MadtCpu {
                apic_id: u32::from(e[3]),
                enabled: u32_at(e, 4) & 1 != 0,
            }),
            // I/O APIC (§5.2.12.3).
            (1, 12..) => {
                m.ioapic_count += 1;
                None
            }
            // Local APIC Address Override (§5.2.12.8).
            (5, 12..) => {
                m.lapic_addr = u64_at(e, 4);
                None
            }
            // Processor Local x2APIC (§5.2.12.12): id at 4, flags at 8.
            (9, 16..) => Some(MadtCpu {
                apic_id: u32_at(e, 4),
                enabled: u32_at(e, 8) & 1 != 0,
            }),
            _ => None,
        };
        if let Some(c) = cpu {
            if m.cpus[..m.cpu_count].iter().any(|x| x.apic_id == c.apic_id) {
                // Firmware lists some CPUs in both forms; keep the first.
            } else if m.cpu_count < N {
                m.cpus[m.cpu_count] = c;
                m.cpu_count += 1;
            } else {
                m.cpus_dropped += 1;
            }
        }
        off += len;
    }
    Ok(m)
}

/// Power-management facts from the FADT (ACPI 6.5 §5.2.9, Table 5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fadt {
    /// PM1a control block I/O port.
    pub pm1a_cnt: u16,
    /// PM1b control block I/O port (0 = none).
    pub pm1b_cnt: u16,
    /// DSDT physical address.
    pub dsdt: u64,
    /// Reset register: I/O port and value, when the FADT offers one.
    pub reset: Option<(u16, u8)>,
}

/// Reads the FADT ("FACP").
pub fn parse_fadt(mem: &dyn PhysRead, addr: u64) -> Result<Fadt, AcpiError> {
    let mut t = Table::new();
    read_table(mem, addr, Some(b"FACP"), &mut t)?;
    let b = t.bytes();
    if b.len() < 116 {
        return Err(AcpiError::BadTable(*b"FACP"));
    }
    let mut f = Fadt {
        pm1a_cnt: u32_at(b, 64) as u16,
        pm1b_cnt: u32_at(b, 68) as u16,
        dsdt: u64::from(u32_at(b, 40)),
        reset: None,
    };
    // X_DSDT at 140 overrides DSDT when present (ACPI 2.0+ FADT length 244+).
    if b.len() >= 148 {
        let x = u64_at(b, 140);
        if x != 0 {
            f.dsdt = x;
        }
    }
    // RESET_REG (GAS at 116) and RESET_VALUE (128); flag RESET_REG_SUP = bit 10.
    if b.len() >= 129 && u32_at(b, 112) & (1 << 10) != 0 && b[116] == 1 {
        f.reset = Some((u64_at(b, 120) as u16, b[128]));
    }
    Ok(f)
}

/// SLP_TYPa and SLP_TYPb of `\_S5` found in an AML byte stream: a NameOp
/// (0x08) `_S5_` followed by a Package (0x12) whose first two elements are
/// integers (ACPI 6.5 §20.2.5.4 "Data Objects Encoding"). A scan, not an AML
/// interpreter: it handles the encodings firmware uses for this object.
pub fn find_s5(aml: &[u8]) -> Option<(u8, u8)> {
    let mut i = 0;
    while i + 4 <= aml.len() {
        if &aml[i..i + 4] == b"_S5_" {
            let name_op = (i >= 1 && aml[i - 1] == 0x08)
                || (i >= 2 && aml[i - 2] == 0x08 && aml[i - 1] == b'\\');
            if name_op && let Some(v) = parse_s5_package(&aml[i + 4..]) {
                return Some(v);
            }
        }
        i += 1;
    }
    None
}

fn parse_s5_package(b: &[u8]) -> Option<(u8, u8)> {
    if *b.first()? != 0x12 {
        return None;
    }
    // PkgLength: bits 7:6 of the lead byte count the bytes that follow.
    let lead = *b.get(1)?;
    let mut p = 2 + usize::from(lead >> 6);
    let _num_elements = *b.get(p)?;
    p += 1;
    let mut vals = [0u8; 2];
    for v in &mut vals {
        let (val, used) = match *b.get(p)? {
            0x00 => (0, 1),              // ZeroOp
            0x01 => (1, 1),              // OneOp
            0x0A => (*b.get(p + 1)?, 2), // BytePrefix
            0x0B => (*b.get(p + 1)?, 3), // WordPrefix (SLP_TYP fits in 3 bits)
            0x0C => (*b.get(p + 1)?, 5), // DWordPrefix
            _ => return None,
        };
        *v = val;
        p += used;
    }
    Some((vals[0], vals[1]))
}

/// Finds `\_S5` in the DSDT at `addr`, reading it in chunks (the DSDT may be
/// large); overlapping the chunks so no match straddles a boundary unseen.
pub fn dsdt_s5(mem: &dyn PhysRead, addr: u64) -> Result<Option<(u8, u8)>, AcpiError> {
    let mut hdr = [0u8; HEADER_LEN];
    if !mem.read(addr, &mut hdr) || &hdr[0..4] != b"DSDT" {
        return Err(AcpiError::BadTable(*b"DSDT"));
    }
    let len = u32_at(&hdr, 4) as usize;
    if !(HEADER_LEN..=16 * 1024 * 1024).contains(&len) {
        return Err(AcpiError::BadTable(*b"DSDT"));
    }
    const CHUNK: usize = 4096;
    const OVERLAP: usize = 32;
    let mut buf = [0u8; CHUNK];
    let mut off = HEADER_LEN;
    while off < len {
        let n = CHUNK.min(len - off);
        if !mem.read(addr + off as u64, &mut buf[..n]) {
            return Err(AcpiError::Unreadable(addr + off as u64));
        }
        if let Some(v) = find_s5(&buf[..n]) {
            return Ok(Some(v));
        }
        if off + n >= len {
            break;
        }
        off += n - OVERLAP;
    }
    Ok(None)
}

/// Finds a valid RSDP in a BIOS area image `bytes` that starts at physical
/// `base`, on 16-byte boundaries (ACPI 6.5 §5.2.5.1 "Finding the RSDP on
/// IA-PC Systems"); returns its physical address.
pub fn find_rsdp_in(bytes: &[u8], base: u64) -> Option<u64> {
    (0..bytes.len().saturating_sub(20))
        .step_by(16)
        .find(|&off| parse_rsdp(&bytes[off..(off + 36).min(bytes.len())]).is_ok())
        .map(|off| base + off as u64)
}

#[cfg(test)]
mod tests;
