//! The tables are checked three ways: read back through the hypervisor's
//! own ACPI parser (`crate::acpi`), field by field at the offsets the ACPI
//! 6.5 specification gives (written here as literals, independently of the
//! builder's constants), and for lengths, revisions and checksums.

use super::*;
use crate::acpi::{self, PhysRead};
use std::vec;
use std::vec::Vec;

/// The blob as guest-physical memory for `crate::acpi`.
struct Guest<'a>(&'a AcpiBlob);

impl PhysRead for Guest<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        let base = self.0.base.as_u64();
        let Some(off) = addr.checked_sub(base) else {
            return false;
        };
        let off = off as usize;
        match self.0.bytes.get(off..off + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

const BASE: GuestPhysAddr = GuestPhysAddr::new(0xE_0000);

fn cpus(n: u32) -> Vec<u32> {
    (0..n).collect()
}

fn build(p: &DomuPlatform) -> AcpiBlob {
    build_acpi_tables(p, BASE).expect("valid platform")
}

/// The table at `gpa` (its length from its header).
fn table(blob: &AcpiBlob, gpa: GuestPhysAddr) -> &[u8] {
    let off = (gpa.as_u64() - blob.base.as_u64()) as usize;
    let len = u32_le(&blob.bytes, off + 4) as usize;
    &blob.bytes[off..off + len]
}

fn u16_le(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_le(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_le(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn sums_to_zero(b: &[u8]) -> bool {
    b.iter().fold(0u8, |a, x| a.wrapping_add(*x)) == 0
}

/// MADT subtables as (type, bytes), walked from offset 44.
fn madt_entries(madt: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut off = 44;
    while off < madt.len() {
        let len = madt[off + 1] as usize;
        assert!(
            len >= 2 && off + len <= madt.len(),
            "bad MADT entry at {off}"
        );
        out.push((madt[off], &madt[off..off + len]));
        off += len;
    }
    out
}

/// Parses the blob with `crate::acpi` as the hypervisor parses a host's
/// tables: find the RSDP, walk the XSDT to the MADT and FADT, read `\_S5`.
fn round_trip(p: &DomuPlatform) {
    let blob = build(p);
    let mem = Guest(&blob);

    let rsdp_gpa = acpi::find_rsdp_in(&blob.bytes, BASE.as_u64()).expect("RSDP found");
    assert_eq!(rsdp_gpa, blob.rsdp.as_u64());
    let rsdp = acpi::parse_rsdp(&blob.bytes[..36]).expect("RSDP valid");
    assert_eq!(rsdp.revision, 2);
    assert_eq!(rsdp.xsdt, blob.xsdt.as_u64());

    let madt_gpa = acpi::find_table(&mem, &rsdp, b"APIC").expect("MADT listed");
    assert_eq!(madt_gpa, blob.madt.as_u64());
    let madt = acpi::parse_madt::<256>(&mem, madt_gpa).expect("MADT valid");
    assert_eq!(madt.lapic_addr, 0xFEE0_0000);
    assert_eq!(madt.cpu_count, p.cpus.len());
    assert_eq!(madt.cpus_dropped, 0);
    for (got, &want) in madt.cpus[..madt.cpu_count].iter().zip(&p.cpus) {
        assert_eq!(got.apic_id, want);
        assert!(got.enabled);
    }
    assert_eq!(madt.ioapic_count, 1);

    let fadt_gpa = acpi::find_table(&mem, &rsdp, b"FACP").expect("FADT listed");
    assert_eq!(fadt_gpa, blob.fadt.as_u64());
    let fadt = acpi::parse_fadt(&mem, fadt_gpa).expect("FADT valid");
    assert_eq!(fadt.pm1a_cnt, p.pm1a_cnt_port);
    assert_eq!(fadt.pm1b_cnt, 0);
    assert_eq!(fadt.dsdt, blob.dsdt.as_u64());
    assert_eq!(fadt.reset, Some((p.reset_port, p.reset_value)));

    let s5 = acpi::dsdt_s5(&mem, fadt.dsdt).expect("DSDT valid");
    assert_eq!(s5, Some((S5_SLP_TYP, S5_SLP_TYP)));

    // The DSDT and FACS are reached through the FADT only.
    assert_eq!(
        acpi::find_table(&mem, &rsdp, b"DSDT"),
        Err(acpi::AcpiError::Missing(*b"DSDT"))
    );
}

#[test]
fn round_trip_one_cpu() {
    round_trip(&DomuPlatform::new(vec![0]));
}

#[test]
fn round_trip_eight_cpus() {
    round_trip(&DomuPlatform::new(cpus(8)));
}

#[test]
fn round_trip_sparse_and_x2apic_ids() {
    // IDs of 255 and up need Processor Local x2APIC entries.
    round_trip(&DomuPlatform::new(vec![0, 2, 254, 255, 300, 0x1_0000]));
}

#[test]
fn round_trip_custom_ports() {
    let mut p = DomuPlatform::new(cpus(4));
    p.pm1a_evt_port = 0xB000;
    p.pm1a_cnt_port = 0xB004;
    p.reset_port = 0xB100;
    p.reset_value = 0x5A;
    p.sci_irq = 11;
    round_trip(&p);
}

#[test]
fn every_checksum_holds() {
    let blob = build(&DomuPlatform::new(cpus(8)));
    assert!(
        sums_to_zero(&blob.bytes[..20]),
        "RSDP checksum (first 20 bytes)"
    );
    assert!(sums_to_zero(&blob.bytes[..36]), "RSDP extended checksum");
    for gpa in [blob.xsdt, blob.fadt, blob.dsdt, blob.madt] {
        assert!(
            sums_to_zero(table(&blob, gpa)),
            "checksum of table at {gpa}"
        );
    }
}

#[test]
fn rsdp_fields() {
    let blob = build(&DomuPlatform::new(cpus(2)));
    let r = &blob.bytes[..36];
    assert_eq!(&r[0..8], b"RSD PTR ");
    assert_eq!(&r[9..15], b"OXEN  ");
    assert_eq!(r[15], 2, "revision");
    assert_eq!(u32_le(r, 16), 0, "no RSDT");
    assert_eq!(u32_le(r, 20), 36, "length");
    assert_eq!(u64_le(r, 24), blob.xsdt.as_u64());
    assert_eq!(&r[33..36], &[0, 0, 0], "reserved");
    assert_eq!(blob.rsdp, BASE);
    assert!(blob.rsdp.is_aligned(16));
}

/// Signature, length field, revision and OEM fields of a table.
fn check_header(t: &[u8], sig: &[u8; 4], len: usize, revision: u8) {
    assert_eq!(&t[0..4], sig);
    assert_eq!(
        u32_le(t, 4) as usize,
        len,
        "{} length",
        core::str::from_utf8(sig).unwrap()
    );
    assert_eq!(t.len(), len);
    assert_eq!(
        t[8],
        revision,
        "{} revision",
        core::str::from_utf8(sig).unwrap()
    );
    assert_eq!(&t[10..16], b"OXEN  ");
    assert_eq!(&t[16..24], b"OXENDOMU");
    assert_eq!(&t[28..32], b"OXEN");
}

#[test]
fn xsdt_lists_fadt_and_madt() {
    let blob = build(&DomuPlatform::new(cpus(2)));
    let x = table(&blob, blob.xsdt);
    check_header(x, b"XSDT", 36 + 16, 1);
    assert_eq!(u64_le(x, 36), blob.fadt.as_u64());
    assert_eq!(u64_le(x, 44), blob.madt.as_u64());
}

#[test]
fn fadt_header_and_pointers() {
    let blob = build(&DomuPlatform::new(cpus(2)));
    let f = table(&blob, blob.fadt);
    check_header(f, b"FACP", 276, 6);
    assert_eq!(f[131], 5, "minor version: ACPI 6.5");
    // FIRMWARE_CTRL/X_FIRMWARE_CTRL and DSDT/X_DSDT agree.
    assert_eq!(u64::from(u32_le(f, 36)), blob.facs.as_u64());
    assert_eq!(u64_le(f, 132), blob.facs.as_u64());
    assert_eq!(u64::from(u32_le(f, 40)), blob.dsdt.as_u64());
    assert_eq!(u64_le(f, 140), blob.dsdt.as_u64());
    assert_eq!(&f[268..276], b"OxenOxen");
}

#[test]
fn fadt_power_management_blocks() {
    let p = DomuPlatform::new(cpus(2));
    let blob = build(&p);
    let f = table(&blob, blob.fadt);
    assert_eq!(u16_le(f, 46), 9, "SCI_INT");
    assert_eq!(u32_le(f, 48), 0, "SMI_CMD: always in ACPI mode");
    assert_eq!(u32_le(f, 56), u32::from(p.pm1a_evt_port), "PM1a_EVT_BLK");
    assert_eq!(u32_le(f, 60), 0, "PM1b_EVT_BLK");
    assert_eq!(u32_le(f, 64), u32::from(p.pm1a_cnt_port), "PM1a_CNT_BLK");
    assert_eq!(u32_le(f, 68), 0, "PM1b_CNT_BLK");
    assert_eq!(u32_le(f, 72), 0, "PM2_CNT_BLK");
    assert_eq!(u32_le(f, 76), 0, "PM_TMR_BLK");
    assert_eq!(u32_le(f, 80), 0, "GPE0_BLK");
    assert_eq!(
        (f[88], f[89], f[90], f[91], f[92]),
        (4, 2, 0, 0, 0),
        "block lengths"
    );
    assert_eq!(u16_le(f, 96), 101, "no C2");
    assert_eq!(u16_le(f, 98), 1001, "no C3");

    // X_PM1a_EVT_BLK (148) and X_PM1a_CNT_BLK (172): system I/O, width =
    // 8 x legacy length, same port as the 32-bit fields.
    assert_eq!(&f[148..152], &[1, 32, 0, 2]);
    assert_eq!(u64_le(f, 152), u64::from(p.pm1a_evt_port));
    assert_eq!(&f[172..176], &[1, 16, 0, 2]);
    assert_eq!(u64_le(f, 176), u64::from(p.pm1a_cnt_port));
    // Everything else in the X_ block and the sleep registers is zero.
    assert!(f[160..172].iter().all(|&b| b == 0), "X_PM1b_EVT_BLK");
    assert!(
        f[184..268].iter().all(|&b| b == 0),
        "X_PM1b_CNT..SLEEP_STATUS"
    );
}

#[test]
fn fadt_reset_register() {
    let blob = build(&DomuPlatform::new(cpus(1)));
    let f = table(&blob, blob.fadt);
    assert_eq!(
        &f[116..120],
        &[1, 8, 0, 1],
        "system I/O, 8 bits at bit 0, byte access"
    );
    assert_eq!(u64_le(f, 120), 0xCF9);
    assert_eq!(f[128], 0x06);
    assert_ne!(u32_le(f, 112) & (1 << 10), 0, "RESET_REG_SUP");
}

#[test]
fn fadt_flags() {
    let blob = build(&DomuPlatform::new(cpus(1)));
    let flags = u32_le(table(&blob, blob.fadt), 112);
    assert_eq!(flags, FADT_FLAGS);
    assert_ne!(flags & (1 << 0), 0, "WBINVD");
    assert_ne!(flags & (1 << 2), 0, "PROC_C1");
    assert_eq!(
        flags & (1 << 4),
        0,
        "a fixed power button (xl-rs shutdown presses it)"
    );
    assert_ne!(flags & (1 << 5), 0, "no sleep button");
    assert_ne!(flags & (1 << 19), 0, "physical destination mode");
    assert_eq!(flags & (1 << 20), 0, "not hardware-reduced");
    assert_eq!(flags & (1 << 8), 0, "no PM timer, so no TMR_VAL_EXT");
}

#[test]
fn fadt_boot_architecture() {
    let mut p = DomuPlatform::new(cpus(1));
    let arch = |p: &DomuPlatform| {
        let blob = build(p);
        u16_le(table(&blob, blob.fadt), 109)
    };
    let a = arch(&p);
    assert_eq!(a & (1 << 0), 0, "no legacy devices");
    assert_eq!(a & (1 << 1), 0, "no 8042");
    assert_ne!(a & (1 << 2), 0, "VGA not present");
    assert_eq!(a & (1 << 3), 0, "MSI allowed");
    assert_ne!(a & (1 << 5), 0, "CMOS RTC not present");
    p.cmos_rtc = true;
    assert_eq!(arch(&p) & (1 << 5), 0, "CMOS RTC present");
}

#[test]
fn dsdt_holds_only_s5() {
    let blob = build(&DomuPlatform::new(cpus(1)));
    let d = table(&blob, blob.dsdt);
    check_header(d, b"DSDT", 36 + 14, 2);
    // NameOp "_S5_" PackageOp PkgLength(8) NumElements(4) 5 5 0 0.
    assert_eq!(
        &d[36..],
        &[
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, 5, 0x0A, 5, 0x00, 0x00
        ]
    );
    assert_eq!(acpi::find_s5(&d[36..]), Some((5, 5)));
}

#[test]
fn madt_layout() {
    let p = DomuPlatform::new(cpus(3));
    let blob = build(&p);
    let m = table(&blob, blob.madt);
    check_header(m, b"APIC", 44 + 3 * 8 + 12 + 2 * 10, 6);
    assert_eq!(u32_le(m, 36), 0xFEE0_0000, "local APIC address");
    assert_eq!(u32_le(m, 40), 0, "PCAT_COMPAT clear: no 8259");

    let entries = madt_entries(m);
    assert_eq!(entries.len(), 3 + 1 + 2);
    for (i, (kind, e)) in entries[..3].iter().enumerate() {
        assert_eq!(*kind, 0);
        assert_eq!(
            e,
            &[0, 8, i as u8, i as u8, 1, 0, 0, 0],
            "LAPIC {i}: UID, ID, enabled"
        );
    }
    let (kind, io) = entries[3];
    assert_eq!(kind, 1);
    assert_eq!(io, &[1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0]);
    // IRQ 0 -> GSI 2 (edge, high: "conforms"), IRQ 9 -> GSI 9 level, low.
    assert_eq!(entries[4].1, &[2, 10, 0, 0, 2, 0, 0, 0, 0x00, 0x00]);
    assert_eq!(entries[5].1, &[2, 10, 0, 9, 9, 0, 0, 0, 0x0F, 0x00]);
}

#[test]
fn madt_uses_x2apic_entries_from_255() {
    let blob = build(&DomuPlatform::new(vec![0, 254, 255, 0xABCD]));
    let entries = madt_entries(table(&blob, blob.madt));
    assert_eq!(entries[0].1, &[0, 8, 0, 0, 1, 0, 0, 0]);
    assert_eq!(entries[1].1, &[0, 8, 1, 254, 1, 0, 0, 0]);
    // Type 9: reserved, x2APIC ID, flags, UID.
    assert_eq!(
        entries[2].1,
        &[9, 16, 0, 0, 255, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
    );
    assert_eq!(
        entries[3].1,
        &[9, 16, 0, 0, 0xCD, 0xAB, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0]
    );
}

#[test]
fn madt_sci_above_isa_range_has_no_override() {
    let mut p = DomuPlatform::new(cpus(1));
    p.sci_irq = 20;
    let blob = build(&p);
    let isos: Vec<_> = madt_entries(table(&blob, blob.madt))
        .into_iter()
        .filter(|(k, _)| *k == 2)
        .collect();
    assert_eq!(isos.len(), 1, "only the timer override");
    assert_eq!(u16_le(table(&blob, blob.fadt), 46), 20);
}

#[test]
fn madt_ioapic_above_gsi_2_drops_timer_override() {
    let mut p = DomuPlatform::new(cpus(1));
    p.ioapic = IoApic {
        id: 1,
        mmio_base: 0xFEC0_1000,
        gsi_base: 24,
    };
    p.sci_irq = 30;
    let blob = build(&p);
    let entries = madt_entries(table(&blob, blob.madt));
    assert!(entries.iter().all(|(k, _)| *k != 2), "no ISA overrides");
    assert_eq!(
        entries[1].1,
        &[1, 12, 1, 0, 0x00, 0x10, 0xC0, 0xFE, 24, 0, 0, 0]
    );
}

#[test]
fn facs_fields_and_alignment() {
    // A base that is 16- but not 64-byte aligned: the FACS is still aligned.
    for base in [0xE_0000u64, 0xE_0010, 0x10_0030] {
        let blob = build_acpi_tables(&DomuPlatform::new(cpus(5)), GuestPhysAddr::new(base))
            .expect("valid");
        assert!(blob.facs.is_aligned(64), "FACS at {}", blob.facs);
        let off = (blob.facs.as_u64() - base) as usize;
        let f = &blob.bytes[off..off + 64];
        assert_eq!(&f[0..4], b"FACS");
        assert_eq!(u32_le(f, 4), 64);
        assert_eq!(f[32], 2, "version");
        assert!(
            f[8..32].iter().all(|&b| b == 0),
            "no waking vector, lock free"
        );
        assert_eq!(off + 64, blob.bytes.len(), "FACS ends the blob");
    }
}

#[test]
fn tables_are_16_byte_aligned_and_disjoint() {
    let blob = build(&DomuPlatform::new(cpus(8)));
    let mut spans = vec![(blob.rsdp.as_u64(), 36u64)];
    for gpa in [blob.xsdt, blob.fadt, blob.dsdt, blob.madt] {
        assert!(gpa.is_aligned(16), "{gpa}");
        spans.push((gpa.as_u64(), table(&blob, gpa).len() as u64));
    }
    spans.push((blob.facs.as_u64(), 64));
    for w in spans.windows(2) {
        assert!(
            w[0].0 + w[0].1 <= w[1].0,
            "tables overlap or are out of order"
        );
    }
    let r = blob.range();
    assert_eq!(r.start, BASE);
    assert_eq!(r.end.as_u64(), BASE.as_u64() + blob.bytes.len() as u64);
}

#[test]
fn madt_length_grows_eight_bytes_per_cpu() {
    let len = |n| {
        let blob = build(&DomuPlatform::new(cpus(n)));
        table(&blob, blob.madt).len()
    };
    assert_eq!(len(1), 44 + 8 + 12 + 20);
    assert_eq!(len(8), 44 + 64 + 12 + 20);
    assert_eq!(len(255), 44 + 255 * 8 + 12 + 20);
}

#[test]
fn invalid_platforms_are_refused() {
    let ok = DomuPlatform::new(cpus(2));
    let err =
        |p: &DomuPlatform, base: u64| build_acpi_tables(p, GuestPhysAddr::new(base)).unwrap_err();
    let with = |f: &dyn Fn(&mut DomuPlatform)| {
        let mut p = ok.clone();
        f(&mut p);
        err(&p, BASE.as_u64())
    };

    assert_eq!(with(&|p| p.cpus.clear()), DomuError::NoCpus);
    assert_eq!(
        with(&|p| p.cpus = cpus(256)),
        DomuError::TooManyCpus {
            count: 256,
            max: 255
        }
    );
    assert_eq!(
        with(&|p| p.cpus = vec![0, 1, 0]),
        DomuError::DuplicateApicId { apic_id: 0 }
    );
    assert_eq!(
        with(&|p| p.cpus = vec![0, u32::MAX]),
        DomuError::InvalidApicId { apic_id: u32::MAX }
    );
    assert_eq!(
        err(&ok, 0xE_0008),
        DomuError::MisalignedAcpiBase {
            base: GuestPhysAddr::new(0xE_0008)
        }
    );
    assert!(matches!(
        err(&ok, 0xFFFF_FF00),
        DomuError::AcpiAboveFourGiB { .. }
    ));
    assert!(matches!(err(&ok, !15), DomuError::AcpiAboveFourGiB { .. }));
    assert_eq!(
        with(&|p| p.pm1a_cnt_port = 0),
        DomuError::BadPort {
            what: "PM1a control",
            port: 0
        }
    );
    assert_eq!(
        with(&|p| p.pm1a_evt_port = 0xFFFE),
        DomuError::BadPort {
            what: "PM1a event",
            port: 0xFFFE
        }
    );
    assert_eq!(
        with(&|p| p.pm1a_cnt_port = 0x602),
        DomuError::PortsOverlap {
            first: "PM1a event",
            second: "PM1a control"
        }
    );
    assert_eq!(
        with(&|p| p.reset_port = 0x605),
        DomuError::PortsOverlap {
            first: "PM1a control",
            second: "reset"
        }
    );
    assert_eq!(
        with(&|p| p.ioapic.gsi_base = 24),
        DomuError::SciNotOnIoApic {
            sci: 9,
            gsi_base: 24
        }
    );
    assert_eq!(
        with(&|p| p.sci_irq = 24),
        DomuError::SciNotOnIoApic {
            sci: 24,
            gsi_base: 0
        }
    );
    assert_eq!(
        with(&|p| p.sci_irq = 2),
        DomuError::SciOnTimerLine { sci: 2 }
    );
    assert_eq!(
        with(&|p| p.sci_irq = 0),
        DomuError::SciOnTimerLine { sci: 0 }
    );
}

#[test]
fn the_highest_blob_below_4_gib_is_accepted() {
    let p = DomuPlatform::new(cpus(1));
    let len = build(&p).bytes.len() as u64;
    let base = ((1u64 << 32) - len) & !63;
    let blob = build_acpi_tables(&p, GuestPhysAddr::new(base)).expect("fits");
    assert!(blob.range().end.as_u64() <= 1 << 32);
}

#[test]
fn errors_explain_themselves() {
    let e = DomuError::SciOnTimerLine { sci: 2 };
    assert!(std::format!("{e}").contains("IRQ 9"));
}

#[test]
fn poweroff_write_needs_slp_en_and_s5_type() {
    let p = DomuPlatform::new(cpus(1));
    let s5 = u32::from(S5_SLP_TYP) << 10;
    let en = 1 << 13;
    assert!(p.is_poweroff_write(0x604, 2, s5 | en));
    assert!(
        p.is_poweroff_write(0x604, 2, s5 | en | 1),
        "with SCI_EN kept"
    );
    assert!(
        !p.is_poweroff_write(0x604, 2, s5),
        "SLP_TYP alone is only the first write"
    );
    assert!(!p.is_poweroff_write(0x604, 2, en), "S0 type");
    assert!(
        !p.is_poweroff_write(0x604, 2, (3 << 10) | en),
        "another sleep type"
    );
    assert!(!p.is_poweroff_write(0x600, 2, s5 | en), "PM1 status port");
    assert!(!p.is_poweroff_write(0x604, 1, s5 | en), "byte write");
}

#[test]
fn reset_write_is_one_byte_of_the_reset_value() {
    let p = DomuPlatform::new(cpus(1));
    assert!(p.is_reset_write(0xCF9, 1, 0x06));
    assert!(
        !p.is_reset_write(0xCF9, 1, 0x02),
        "SYS_RST alone does not reset"
    );
    assert!(
        !p.is_reset_write(0xCF8, 4, 0xFFFF_FFFF),
        "PCI config address dword"
    );
    assert!(!p.is_reset_write(0xCF9, 2, 0x06));
}

#[test]
fn aml_integers_use_the_shortest_encoding() {
    let enc = |v| {
        let mut out = Vec::new();
        aml::integer(&mut out, v);
        out
    };
    assert_eq!(enc(0), [0x00]);
    assert_eq!(enc(1), [0x01]);
    assert_eq!(enc(5), [0x0A, 5]);
    assert_eq!(enc(0x1234), [0x0B, 0x34, 0x12]);
    assert_eq!(enc(0x12_3456), [0x0C, 0x56, 0x34, 0x12, 0x00]);
    assert_eq!(enc(1 << 40), [0x0E, 0, 0, 0, 0, 0, 1, 0, 0]);
}

/// Decodes a PkgLength as ACPI 6.5 §20.2.4 describes it: (value, bytes used).
fn decode_pkg_length(b: &[u8]) -> (usize, usize) {
    let extra = (b[0] >> 6) as usize;
    if extra == 0 {
        return ((b[0] & 0x3F) as usize, 1);
    }
    assert_eq!(b[0] & 0x30, 0, "bits 5:4 of a multi-byte lead are reserved");
    let mut v = (b[0] & 0x0F) as usize;
    for i in 0..extra {
        v |= (b[1 + i] as usize) << (4 + 8 * i);
    }
    (v, 1 + extra)
}

#[test]
fn aml_pkg_length_counts_itself() {
    for body in [
        0usize,
        1,
        61,
        62,
        63,
        100,
        4092,
        4093,
        5000,
        1 << 19,
        (1 << 20) - 3,
        1 << 21,
    ] {
        let mut out = Vec::new();
        aml::pkg_length(&mut out, body);
        let (value, used) = decode_pkg_length(&out);
        assert_eq!(used, out.len(), "body {body}");
        assert_eq!(value, body + used, "body {body}");
    }
    let mut out = Vec::new();
    aml::pkg_length(&mut out, 100);
    assert_eq!(out, [0x46, 0x06], "102 = 0x66 in two bytes");
}

proptest::proptest! {
    /// Any valid vCPU set at any 16-byte aligned base round-trips and
    /// checksums.
    #[test]
    fn any_cpu_set_round_trips(
        ids in proptest::collection::btree_set(0u32..0x2_0000, 1..=255),
        slot in 0u64..0x1000,
    ) {
        let p = DomuPlatform::new(ids.into_iter().collect());
        let base = GuestPhysAddr::new(0x10_0000 + slot * 16);
        let blob = build_acpi_tables(&p, base).unwrap();
        let mem = Guest(&blob);
        let rsdp = acpi::parse_rsdp(&blob.bytes[..36]).unwrap();
        let madt = acpi::parse_madt::<256>(&mem, acpi::find_table(&mem, &rsdp, b"APIC").unwrap())
            .unwrap();
        proptest::prop_assert_eq!(madt.cpu_count, p.cpus.len());
        for gpa in [blob.xsdt, blob.fadt, blob.dsdt, blob.madt] {
            proptest::prop_assert!(sums_to_zero(table(&blob, gpa)));
        }
        proptest::prop_assert!(blob.facs.is_aligned(64));
    }
}
