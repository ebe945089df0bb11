use super::*;
use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

/// Fake physical memory: a few blobs at addresses.
#[derive(Default)]
struct Mem(BTreeMap<u64, Vec<u8>>);

impl PhysRead for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        for (&base, blob) in &self.0 {
            if addr >= base && addr + buf.len() as u64 <= base + blob.len() as u64 {
                let off = (addr - base) as usize;
                buf.copy_from_slice(&blob[off..off + buf.len()]);
                return true;
            }
        }
        false
    }
}

fn fix_checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[at] = 0u8.wrapping_sub(sum);
}

fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 36];
    t[0..4].copy_from_slice(sig);
    let len = (36 + body.len()) as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

fn rsdp_v2(xsdt: u64) -> Vec<u8> {
    let mut r = vec![0u8; 36];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[15] = 2;
    r[20..24].copy_from_slice(&36u32.to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    fix_checksum(&mut r[..20], 8);
    fix_checksum(&mut r, 32);
    r
}

fn machine() -> (Mem, Rsdp) {
    let mut mem = Mem::default();
    // MADT: lapic addr, flags, 2 local APICs (one disabled), 1 x2APIC, 1 IO-APIC.
    let mut madt = Vec::new();
    madt.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
    madt.extend_from_slice(&1u32.to_le_bytes());
    madt.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
    madt.extend_from_slice(&[0, 8, 1, 1, 0, 0, 0, 0]);
    madt.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0]);
    let mut x2 = vec![9, 16, 0, 0];
    x2.extend_from_slice(&300u32.to_le_bytes());
    x2.extend_from_slice(&1u32.to_le_bytes());
    x2.extend_from_slice(&0u32.to_le_bytes());
    madt.extend_from_slice(&x2);
    mem.0.insert(0x1000, table(b"APIC", &madt));
    // DSDT with a \_S5 package {5, 5, 0, 0}.
    let aml = [
        0x10, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x0A, 0x04, 0x0A, 5, 0x0A, 5, 0, 0,
    ];
    mem.0.insert(0x3000, table(b"DSDT", &aml));
    // FADT (revision-1 length 116 + reset fields): PM1a at 0xB004, DSDT 0x3000.
    let mut fadt = vec![0u8; 244 - 36];
    fadt[40 - 36..44 - 36].copy_from_slice(&0x3000u32.to_le_bytes());
    fadt[64 - 36..68 - 36].copy_from_slice(&0xB004u32.to_le_bytes());
    fadt[112 - 36..116 - 36].copy_from_slice(&(1u32 << 10).to_le_bytes());
    fadt[116 - 36] = 1; // system I/O
    fadt[120 - 36..128 - 36].copy_from_slice(&0xCF9u64.to_le_bytes());
    fadt[128 - 36] = 6;
    mem.0.insert(0x2000, table(b"FACP", &fadt));
    let mut xsdt = Vec::new();
    xsdt.extend_from_slice(&0x1000u64.to_le_bytes());
    xsdt.extend_from_slice(&0x2000u64.to_le_bytes());
    mem.0.insert(0x4000, table(b"XSDT", &xsdt));
    let rsdp = parse_rsdp(&rsdp_v2(0x4000)).unwrap();
    (mem, rsdp)
}

#[test]
fn reads_madt_fadt_and_s5() {
    let (mem, rsdp) = machine();
    let madt: Madt<4> = parse_madt(&mem, find_table(&mem, &rsdp, b"APIC").unwrap()).unwrap();
    assert_eq!(madt.lapic_addr, 0xFEE0_0000);
    assert_eq!(madt.cpu_count, 3);
    assert_eq!(
        madt.cpus[0],
        MadtCpu {
            apic_id: 0,
            enabled: true
        }
    );
    assert_eq!(
        madt.cpus[1],
        MadtCpu {
            apic_id: 1,
            enabled: false
        }
    );
    assert_eq!(
        madt.cpus[2],
        MadtCpu {
            apic_id: 300,
            enabled: true
        }
    );
    assert_eq!(madt.ioapic_count, 1);
    let fadt = parse_fadt(&mem, find_table(&mem, &rsdp, b"FACP").unwrap()).unwrap();
    assert_eq!(fadt.pm1a_cnt, 0xB004);
    assert_eq!(fadt.dsdt, 0x3000);
    assert_eq!(fadt.reset, Some((0xCF9, 6)));
    assert_eq!(dsdt_s5(&mem, fadt.dsdt).unwrap(), Some((5, 5)));
}

#[test]
fn madt_capacity_is_respected() {
    let (mem, rsdp) = machine();
    let madt: Madt<2> = parse_madt(&mem, find_table(&mem, &rsdp, b"APIC").unwrap()).unwrap();
    assert_eq!(madt.cpu_count, 2);
    assert_eq!(madt.cpus_dropped, 1);
}

#[test]
fn bad_checksums_are_refused() {
    let (mut mem, rsdp) = machine();
    mem.0.get_mut(&0x1000).unwrap()[40] ^= 0xFF;
    assert_eq!(
        parse_madt::<4>(&mem, 0x1000).unwrap_err(),
        AcpiError::BadTable(*b"APIC")
    );
    let mut r = rsdp_v2(0x4000);
    r[9] ^= 1;
    assert_eq!(parse_rsdp(&r), Err(AcpiError::BadRsdp));
    assert_eq!(
        find_table(&mem, &rsdp, b"HPET"),
        Err(AcpiError::Missing(*b"HPET"))
    );
}

#[test]
fn s5_encodings() {
    assert_eq!(
        find_s5(&[
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0, 0
        ]),
        Some((0, 0))
    );
    assert_eq!(
        find_s5(&[
            0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x01, 0x0A, 7
        ]),
        Some((1, 7))
    );
    assert_eq!(find_s5(b"no sleep object here"), None);
    // A reference to _S5_ that is not a definition is ignored.
    assert_eq!(
        find_s5(&[0x70, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x01, 0x01]),
        None
    );
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = find_s5(&bytes);
        let _ = parse_rsdp(&bytes);
        let mut mem = Mem::default();
        mem.0.insert(0x1000, bytes.clone());
        let _ = parse_madt::<8>(&mem, 0x1000);
        let _ = parse_fadt(&mem, 0x1000);
        let _ = dsdt_s5(&mem, 0x1000);
        let rsdp = Rsdp { revision: 2, rsdt: 0x1000, xsdt: 0x1000 };
        let _ = find_table(&mem, &rsdp, b"APIC");
    }
}

#[test]
fn rsdp_found_in_bios_area() {
    let mut area = vec![0u8; 0x200];
    let r = rsdp_v2(0x4000);
    area[0x150..0x150 + r.len()].copy_from_slice(&r);
    assert_eq!(find_rsdp_in(&area, 0xE0000), Some(0xE0150));
    assert_eq!(find_rsdp_in(&area[..0x100], 0xE0000), None);
}
