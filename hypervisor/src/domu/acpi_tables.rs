//! The ACPI tables of a domU: the least a stock Linux (Debian 12's 6.1,
//! entered through its PVH entry with `hvm_start_info.rsdp_paddr` pointing at
//! our RSDP) needs to
//!
//! - find its vCPUs and interrupt controllers (MADT), and
//! - power off and reboot through I/O ports the hypervisor traps (FADT
//!   `PM1a_CNT_BLK` and `RESET_REG`, and `\_S5` in the DSDT).
//!
//! [`build_acpi_tables`] lays everything out in one contiguous blob at a
//! guest-physical address the caller chooses (tables point at each other by
//! guest-physical address):
//!
//! ```text
//! +0      RSDP (36 bytes, revision 2)        ACPI 6.5 §5.2.5.3
//! +48     XSDT  -> FADT, MADT                §5.2.8
//!         FADT  -> DSDT, FACS (rev 6.5)      §5.2.9
//!         DSDT  Name(_S5, Package{5,5,0,0})  §5.2.11.1
//!         MADT  LAPICs, I/O APIC, overrides  §5.2.12
//!         FACS  (64-byte aligned)            §5.2.10
//! ```
//!
//! Tables start on 16-byte boundaries (only the RSDP's is required).
//!
//! # What the hypervisor must emulate to match
//!
//! - `PM1a_EVT_BLK` (4 ports: 16-bit status, then 16-bit enable, ACPI 6.5
//!   §4.8.3.1): the fixed power button's PWRBTN_STS (write 1 to clear) and
//!   PWRBTN_EN, raising the SCI while both are set; enable keeps what is
//!   written of the bits that exist (ACPICA writes GBL_EN and reads it back
//!   to decide whether the global lock exists). See
//!   [`crate::vdev::pm1_events`].
//! - `PM1a_CNT_BLK` (2 ports, §4.8.3.2): reads return SCI_EN (bit 0) set, the
//!   platform being in ACPI mode from the start (`SMI_CMD` is 0); a 16-bit
//!   write with [`pm1_cnt::SLP_EN`] and SLP_TYP = [`S5_SLP_TYP`] is the
//!   power-off request ([`DomuPlatform::is_poweroff_write`]). Linux writes
//!   SLP_TYP alone first, then SLP_TYP | SLP_EN (ACPICA
//!   `acpi_hw_legacy_sleep`).
//! - The reset port: a one-byte write of the reset value resets the domain
//!   ([`DomuPlatform::is_reset_write`]; Linux `acpi_reboot` →
//!   `acpi_reset` writes `RESET_VALUE` with an 8-bit `outb`). With the
//!   usual 0xCF9, a 32-bit access at 0xCF8 (PCI configuration address, which
//!   Linux probes with `outl` in `pci_check_type1`) also touches 0xCF9 in the
//!   I/O bitmap and must *not* be taken for a reset.
//! - No 8259 PIC: reads of port 0x21 must not return what was written, so
//!   Linux's `probe_8259A` falls back to its "NULL legacy PIC".
//! - An I/O APIC at [`IoApic::mmio_base`] with at least [`IOAPIC_PINS`]
//!   inputs, ID register = [`IoApic::id`]; the SCI (level-triggered, on
//!   the pin of [`DomuPlatform::sci_irq`]) is raised only by the power
//!   button.
//!
//! There is no PM timer (see the FADT notes below), so Linux calibrates the TSC from
//! CPUID leaf 0x15/0x16 (`native_calibrate_tsc`) or, failing that, a PIT.

use alloc::vec::Vec;

use super::DomuError;
use crate::dom0::GuestRange;
use crate::mm::addr::{ByteSize, GuestPhysAddr};

mod aml;
#[cfg(test)]
mod tests;

/// "OXEN  ": OEM ID of every table and of the RSDP (six bytes, space-padded).
pub const OEM_ID: [u8; 6] = *b"OXEN  ";
/// OEM table ID of every table.
pub const OEM_TABLE_ID: [u8; 8] = *b"OXENDOMU";
/// OEM revision of every table.
const OEM_REVISION: u32 = 1;
/// Creator ID (the tool that built the tables) and its revision.
const CREATOR_ID: [u8; 4] = *b"OXEN";
const CREATOR_REVISION: u32 = 1;

/// Length of the common table header (ACPI 6.5 §5.2.6, Table 5.4).
pub const HEADER_LEN: usize = 36;
/// Length of an ACPI 2.0+ RSDP (§5.2.5.3, Table 5.3).
pub const RSDP_LEN: usize = 36;
/// Length of an ACPI 6.x FADT (§5.2.9, Table 5.9, up to the hypervisor
/// vendor identity).
pub const FADT_LEN: usize = 276;
/// Length of the FACS (§5.2.10, Table 5.14).
pub const FACS_LEN: usize = 64;

/// Table revisions for ACPI 6.5 (the edition cited throughout).
pub mod revision {
    /// RSDP revision 2: ACPI 2.0+ layout with the XSDT pointer.
    pub const RSDP: u8 = 2;
    /// XSDT revision (§5.2.8).
    pub const XSDT: u8 = 1;
    /// FADT major revision 6 (§5.2.9, Table 5.9)...
    pub const FADT: u8 = 6;
    /// ...and minor revision 5 (FADT offset 131): ACPI 6.5.
    pub const FADT_MINOR: u8 = 5;
    /// DSDT revision 2: AML integers are 64 bits wide (§5.2.11.1).
    pub const DSDT: u8 = 2;
    /// MADT revision 6 for ACPI 6.5 (§5.2.12, Table 5.19).
    pub const MADT: u8 = 6;
    /// FACS version 2 (§5.2.10, Table 5.14).
    pub const FACS: u8 = 2;
}

/// The local APICs' physical address: the architectural default (Intel SDM
/// Vol. 3A §12.4.1), where the hypervisor maps each vCPU's virtual APIC.
pub const LOCAL_APIC_ADDRESS: u32 = 0xFEE0_0000;
/// Inputs (redirection entries) of the domU's I/O APIC, as on the 82093AA.
pub const IOAPIC_PINS: u32 = 24;
/// The most vCPUs the tables describe: every vCPU gets an ACPI processor UID
/// equal to its index, and UIDs in Processor Local APIC entries are one byte
/// (§5.2.12.2, Table 5.22).
pub const MAX_CPUS: usize = 255;

/// SLP_TYP value for `\_S5` (soft off): the DSDT's `_S5` package carries it,
/// Linux writes it to PM1a_CNT.SLP_TYP on power-off, and the hypervisor
/// compares against it. Any 3-bit value works since the hypervisor is the
/// only "hardware" reading it; 5 is not 0, so a plain SLP_EN write with
/// SLP_TYP left at its S0 value of 0 is never taken for a power-off.
pub const S5_SLP_TYP: u8 = 5;

/// PM1 control register bits (ACPI 6.5 §4.8.3.2.1, Table 4.13).
pub mod pm1_cnt {
    /// SCI_EN: the platform is in ACPI mode (always set here).
    pub const SCI_EN: u16 = 1 << 0;
    /// SLP_TYPx: the sleep type, bits 12:10.
    pub const SLP_TYP_SHIFT: u32 = 10;
    /// Mask of SLP_TYPx.
    pub const SLP_TYP_MASK: u16 = 0b111 << SLP_TYP_SHIFT;
    /// SLP_EN: write-only, enter the sleep state in SLP_TYPx.
    pub const SLP_EN: u16 = 1 << 13;
}

/// Width in bytes of the PM1 event block (16-bit status + 16-bit enable;
/// FADT `PM1_EVT_LEN`, which must be at least 4, Table 5.9).
pub const PM1_EVT_LEN: u8 = 4;
/// Width in bytes of the PM1 control block (FADT `PM1_CNT_LEN`, at least 2).
pub const PM1_CNT_LEN: u8 = 2;

/// The domU's I/O APIC (MADT type 1, §5.2.12.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// Its I/O APIC ID (the value of its ID register; an 82093AA-style
    /// model holds four bits, so keep it below 16).
    pub id: u8,
    /// Guest-physical address of its registers.
    pub mmio_base: u32,
    /// The GSI of its first input.
    pub gsi_base: u32,
}

/// The conventional I/O APIC: ID 0 at 0xFEC00000, GSIs 0-23 (so ISA IRQs
/// are GSIs of the same number, as on PCs and in QEMU).
pub const DEFAULT_IOAPIC: IoApic = IoApic {
    id: 0,
    mmio_base: 0xFEC0_0000,
    gsi_base: 0,
};
/// PM1a event block at 0x600 (an ICH9-style PMBASE; nothing else a PC guest
/// probes lives there).
pub const DEFAULT_PM1A_EVT_PORT: u16 = 0x600;
/// PM1a control block right after it.
pub const DEFAULT_PM1A_CNT_PORT: u16 = 0x604;
/// The PC reset control register (PIIX/ICH "RST_CNT").
pub const DEFAULT_RESET_PORT: u16 = 0xCF9;
/// RST_CNT value for a hard reset: SYS_RST (bit 1) | RST_CPU (bit 2).
pub const DEFAULT_RESET_VALUE: u8 = 0x06;
/// The SCI on ISA IRQ 9, as on PIIX4/ICH chipsets and QEMU.
pub const DEFAULT_SCI_IRQ: u16 = 9;

/// What a domU's platform looks like to its ACPI tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomuPlatform {
    /// Local APIC IDs of the vCPUs; the first is the boot vCPU (ACPI 6.5
    /// §5.2.12.1: firmware lists the boot processor first).
    pub cpus: Vec<u32>,
    /// The I/O APIC. Not optional: with a non-hardware-reduced FADT Linux
    /// requests the SCI at boot, and without an I/O APIC (and without an
    /// 8259, which a domU does not have) the request fails and Linux gives
    /// up on its ACPI interpreter, power-off included (`acpi_os_install_
    /// interrupt_handler` → AE_NOT_ACQUIRED → `acpi_enable_subsystem`).
    pub ioapic: IoApic,
    /// First port of the PM1a event block ([`PM1_EVT_LEN`] ports).
    pub pm1a_evt_port: u16,
    /// First port of the PM1a control block ([`PM1_CNT_LEN`] ports).
    pub pm1a_cnt_port: u16,
    /// The reset register's port (one byte).
    pub reset_port: u16,
    /// The value that, written to `reset_port`, resets the domain.
    pub reset_value: u8,
    /// The SCI, as an ISA IRQ (< 16: an interrupt source override maps it to
    /// the GSI of the same number) or a GSI.
    pub sci_irq: u16,
    /// Whether the hypervisor emulates a CMOS RTC at ports 0x70/0x71. When it
    /// does not, the FADT says so and Linux registers no `rtc_cmos` device
    /// (it still reads the wall clock from CMOS once at boot).
    pub cmos_rtc: bool,
}

impl DomuPlatform {
    /// A platform with the conventional ports and I/O APIC for these vCPUs.
    pub fn new(cpus: Vec<u32>) -> Self {
        Self {
            cpus,
            ioapic: DEFAULT_IOAPIC,
            pm1a_evt_port: DEFAULT_PM1A_EVT_PORT,
            pm1a_cnt_port: DEFAULT_PM1A_CNT_PORT,
            reset_port: DEFAULT_RESET_PORT,
            reset_value: DEFAULT_RESET_VALUE,
            sci_irq: DEFAULT_SCI_IRQ,
            cmos_rtc: false,
        }
    }

    /// Whether a guest `out` of `size` bytes of `value` to `port` is the
    /// power-off request the tables describe: a 16-bit write to PM1a_CNT with
    /// SLP_EN set and SLP_TYP = [`S5_SLP_TYP`] (ACPICA writes PM1 control
    /// with 16-bit accesses, the register's `X_PM1a_CNT_BLK` width).
    pub fn is_poweroff_write(&self, port: u16, size: u8, value: u32) -> bool {
        if port != self.pm1a_cnt_port || size != 2 {
            return false;
        }
        let v = value as u16;
        let slp_typ = (v & pm1_cnt::SLP_TYP_MASK) >> pm1_cnt::SLP_TYP_SHIFT;
        v & pm1_cnt::SLP_EN != 0 && slp_typ == u16::from(S5_SLP_TYP)
    }

    /// Whether a guest `out` of `size` bytes of `value` to `port` is the
    /// reset request: one byte, exactly the FADT's `RESET_VALUE`, to the
    /// reset port. Wider accesses that merely overlap the port (a 32-bit
    /// `outl` to 0xCF8 covers 0xCF9) are not resets.
    pub fn is_reset_write(&self, port: u16, size: u8, value: u32) -> bool {
        port == self.reset_port && size == 1 && value as u8 == self.reset_value
    }
}

/// The built tables: one blob to copy to guest-physical `base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiBlob {
    /// Where the blob goes.
    pub base: GuestPhysAddr,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The RSDP's address (for `hvm_start_info.rsdp_paddr`); equals `base`.
    pub rsdp: GuestPhysAddr,
    /// The XSDT's address.
    pub xsdt: GuestPhysAddr,
    /// The FADT's address.
    pub fadt: GuestPhysAddr,
    /// The DSDT's address.
    pub dsdt: GuestPhysAddr,
    /// The MADT's address.
    pub madt: GuestPhysAddr,
    /// The FACS's address.
    pub facs: GuestPhysAddr,
}

impl AcpiBlob {
    /// The guest-physical range the blob occupies (to reserve in the e820
    /// map as ACPI, see [`super::memory::domu_e820`]).
    pub fn range(&self) -> GuestRange {
        GuestRange {
            start: self.base,
            end: self.base + ByteSize::new(self.bytes.len() as u64),
        }
    }
}

/// Builds the ACPI tables of `platform` for a blob at guest-physical `base`
/// (16-byte aligned, the whole blob below 4 GiB).
pub fn build_acpi_tables(
    platform: &DomuPlatform,
    base: GuestPhysAddr,
) -> Result<AcpiBlob, DomuError> {
    validate(platform, base)?;

    // Tables without pointers first: their lengths fix the layout.
    let dsdt = build_dsdt();
    let madt = build_madt(platform);

    let base_u = base.as_u64();
    let xsdt_off = align_up(RSDP_LEN as u64, 16);
    let xsdt_len = (HEADER_LEN + 2 * 8) as u64;
    let fadt_off = align_up(xsdt_off + xsdt_len, 16);
    let dsdt_off = align_up(fadt_off + FADT_LEN as u64, 16);
    let madt_off = align_up(dsdt_off + dsdt.len() as u64, 16);
    // The FACS must be 64-byte aligned in guest-physical memory (§5.2.10).
    let facs_off = align_up(base_u + madt_off + madt.len() as u64, 64) - base_u;
    let total = facs_off + FACS_LEN as u64;
    let end = base_u + total;
    if end > 1 << 32 {
        return Err(DomuError::AcpiAboveFourGiB { end });
    }

    let at = |off: u64| GuestPhysAddr::new(base_u + off);
    let (xsdt_gpa, fadt_gpa, dsdt_gpa) = (at(xsdt_off), at(fadt_off), at(dsdt_off));
    let (madt_gpa, facs_gpa) = (at(madt_off), at(facs_off));

    let fadt = build_fadt(platform, dsdt_gpa, facs_gpa);
    let xsdt = build_xsdt(&[fadt_gpa, madt_gpa]);
    let rsdp = build_rsdp(xsdt_gpa);

    let facs = build_facs();
    let mut bytes = alloc::vec![0u8; total as usize];
    for (off, table) in [
        (0, &rsdp[..]),
        (xsdt_off, &xsdt[..]),
        (fadt_off, &fadt[..]),
        (dsdt_off, &dsdt[..]),
        (madt_off, &madt[..]),
        (facs_off, &facs[..]),
    ] {
        let off = off as usize;
        bytes[off..off + table.len()].copy_from_slice(table);
    }

    Ok(AcpiBlob {
        base,
        bytes,
        rsdp: base,
        xsdt: xsdt_gpa,
        fadt: fadt_gpa,
        dsdt: dsdt_gpa,
        madt: madt_gpa,
        facs: facs_gpa,
    })
}

fn validate(p: &DomuPlatform, base: GuestPhysAddr) -> Result<(), DomuError> {
    if p.cpus.is_empty() {
        return Err(DomuError::NoCpus);
    }
    if p.cpus.len() > MAX_CPUS {
        return Err(DomuError::TooManyCpus {
            count: p.cpus.len(),
            max: MAX_CPUS,
        });
    }
    for (i, &id) in p.cpus.iter().enumerate() {
        if id == u32::MAX {
            return Err(DomuError::InvalidApicId { apic_id: id });
        }
        if p.cpus[..i].contains(&id) {
            return Err(DomuError::DuplicateApicId { apic_id: id });
        }
    }
    if !base.is_aligned(16) {
        return Err(DomuError::MisalignedAcpiBase { base });
    }
    if base.as_u64() >= 1 << 32 {
        return Err(DomuError::AcpiAboveFourGiB { end: base.as_u64() });
    }

    let blocks = [
        ("PM1a event", p.pm1a_evt_port, u16::from(PM1_EVT_LEN)),
        ("PM1a control", p.pm1a_cnt_port, u16::from(PM1_CNT_LEN)),
        ("reset", p.reset_port, 1),
    ];
    for &(what, port, len) in &blocks {
        if port == 0 || port.checked_add(len - 1).is_none() {
            return Err(DomuError::BadPort { what, port });
        }
    }
    for (i, &(first, a, alen)) in blocks.iter().enumerate() {
        for &(second, b, blen) in &blocks[i + 1..] {
            let (a_end, b_end) = (
                u32::from(a) + u32::from(alen),
                u32::from(b) + u32::from(blen),
            );
            if u32::from(a) < b_end && u32::from(b) < a_end {
                return Err(DomuError::PortsOverlap { first, second });
            }
        }
    }

    if !gsi_on_ioapic(&p.ioapic, u32::from(p.sci_irq)) {
        return Err(DomuError::SciNotOnIoApic {
            sci: p.sci_irq,
            gsi_base: p.ioapic.gsi_base,
        });
    }
    // IRQ 0 and GSI 2 belong to the timer override (see `build_madt`).
    if p.sci_irq == 0 || p.sci_irq == 2 {
        return Err(DomuError::SciOnTimerLine { sci: p.sci_irq });
    }
    Ok(())
}

fn gsi_on_ioapic(ioapic: &IoApic, gsi: u32) -> bool {
    gsi >= ioapic.gsi_base && gsi - ioapic.gsi_base < IOAPIC_PINS
}

fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

/// The byte that makes `bytes` sum to zero modulo 256 (the checksum rule of
/// every table, §5.2.6).
fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// A system description table under construction: the common header
/// (§5.2.6, Table 5.4), then the body. [`Sdt::finish`] fills in the length
/// (offset 4) and checksum (offset 9).
struct Sdt {
    bytes: Vec<u8>,
}

impl Sdt {
    fn new(signature: &[u8; 4], revision: u8) -> Self {
        let mut bytes = Vec::with_capacity(FADT_LEN);
        bytes.extend_from_slice(signature);
        bytes.extend_from_slice(&[0; 4]); // length, set by finish
        bytes.push(revision);
        bytes.push(0); // checksum, set by finish
        bytes.extend_from_slice(&OEM_ID);
        bytes.extend_from_slice(&OEM_TABLE_ID);
        bytes.extend_from_slice(&OEM_REVISION.to_le_bytes());
        bytes.extend_from_slice(&CREATOR_ID);
        bytes.extend_from_slice(&CREATOR_REVISION.to_le_bytes());
        debug_assert_eq!(bytes.len(), HEADER_LEN);
        Self { bytes }
    }

    fn push(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    /// Writes `b` at table offset `off` (the body must already be that long).
    fn put(&mut self, off: usize, b: &[u8]) {
        self.bytes[off..off + b.len()].copy_from_slice(b);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[4..8].copy_from_slice(&len.to_le_bytes());
        self.bytes[9] = checksum(&self.bytes);
        self.bytes
    }
}

/// The RSDP (§5.2.5.3, Table 5.3): revision 2, XSDT only. `RsdtAddress` is
/// 0: an ACPI 2.0+ OS uses the XSDT when there is one (§5.2.7), and Linux
/// (ACPICA `acpi_tb_parse_root_table`) and our own parser both do.
fn build_rsdp(xsdt: GuestPhysAddr) -> [u8; RSDP_LEN] {
    let mut r = [0u8; RSDP_LEN];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(&OEM_ID);
    r[15] = revision::RSDP;
    // r[16..20]: RsdtAddress = 0.
    r[20..24].copy_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.as_u64().to_le_bytes());
    // Checksum over the ACPI 1.0 part (bytes 0-19), then the extended
    // checksum over all 36 bytes, which includes the first.
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

/// The XSDT (§5.2.8): 64-bit pointers to every table but the DSDT and FACS,
/// which only the FADT points at.
fn build_xsdt(tables: &[GuestPhysAddr]) -> Vec<u8> {
    let mut t = Sdt::new(b"XSDT", revision::XSDT);
    for a in tables {
        t.push(&a.as_u64().to_le_bytes());
    }
    t.finish()
}

/// FADT field offsets (ACPI 6.5 §5.2.9, Table 5.9).
mod fadt {
    pub const FIRMWARE_CTRL: usize = 36;
    pub const DSDT: usize = 40;
    pub const PREFERRED_PM_PROFILE: usize = 45;
    pub const SCI_INT: usize = 46;
    pub const SMI_CMD: usize = 48;
    pub const PM1A_EVT_BLK: usize = 56;
    pub const PM1A_CNT_BLK: usize = 64;
    pub const PM_TMR_BLK: usize = 76;
    pub const PM1_EVT_LEN: usize = 88;
    pub const PM1_CNT_LEN: usize = 89;
    pub const PM_TMR_LEN: usize = 91;
    pub const P_LVL2_LAT: usize = 96;
    pub const P_LVL3_LAT: usize = 98;
    pub const CENTURY: usize = 108;
    pub const IAPC_BOOT_ARCH: usize = 109;
    pub const FLAGS: usize = 112;
    pub const RESET_REG: usize = 116;
    pub const RESET_VALUE: usize = 128;
    pub const MINOR_VERSION: usize = 131;
    pub const X_FIRMWARE_CTRL: usize = 132;
    pub const X_DSDT: usize = 140;
    pub const X_PM1A_EVT_BLK: usize = 148;
    pub const X_PM1A_CNT_BLK: usize = 172;
    pub const X_PM_TMR_BLK: usize = 208;
    pub const HYPERVISOR_VENDOR_ID: usize = 268;
}

/// FADT Fixed Feature Flags (§5.2.9, Table 5.10).
pub mod fadt_flags {
    /// WBINVD works: required of every processor in new systems.
    pub const WBINVD: u32 = 1 << 0;
    /// C1 (HLT) is supported on all processors.
    pub const PROC_C1: u32 = 1 << 2;
    /// The power button, if any, is a control-method device: there is no
    /// fixed-feature power button.
    pub const PWR_BUTTON: u32 = 1 << 4;
    /// Likewise for the sleep button.
    pub const SLP_BUTTON: u32 = 1 << 5;
    /// RTC wake status is not in the fixed registers.
    pub const FIX_RTC: u32 = 1 << 6;
    /// RESET_REG is supported.
    pub const RESET_REG_SUP: u32 = 1 << 10;
    /// No monitor, keyboard or mouse can be detected.
    pub const HEADLESS: u32 = 1 << 12;
    /// All xAPICs must be used in physical destination mode.
    pub const FORCE_APIC_PHYSICAL_DESTINATION_MODE: u32 = 1 << 19;
    /// Hardware-reduced ACPI (never set here).
    pub const HW_REDUCED_ACPI: u32 = 1 << 20;
}

/// IA-PC Boot Architecture Flags (§5.2.9.3, Table 5.11).
pub mod boot_arch {
    /// User-visible devices on the LPC/ISA bus.
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    /// An 8042 keyboard controller.
    pub const I8042: u16 = 1 << 1;
    /// VGA Not Present.
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
    /// MSI Not Supported.
    pub const MSI_NOT_SUPPORTED: u16 = 1 << 3;
    /// CMOS RTC Not Present.
    pub const CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;
}

/// Generic Address Structure (§5.2.3.2, Table 5.1) for an I/O-port register.
fn gas_io(port: u16, bit_width: u8, access_size: u8) -> [u8; 12] {
    /// Address space ID 1: System I/O.
    const SYSTEM_IO: u8 = 1;
    let mut g = [0u8; 12];
    g[0] = SYSTEM_IO;
    g[1] = bit_width;
    g[2] = 0; // bit offset
    g[3] = access_size;
    g[4..12].copy_from_slice(&u64::from(port).to_le_bytes());
    g
}

/// GAS access sizes (Table 5.1): 1 byte, 2 word.
const ACCESS_BYTE: u8 = 1;
const ACCESS_WORD: u8 = 2;

/// The FADT ("FACP", §5.2.9). Every field not written is 0, which means
/// "absent/not supported" for all of them: no PM1b, PM2, PM timer or GPE
/// blocks, no SMI command port, no P/C-state control.
fn build_fadt(p: &DomuPlatform, dsdt: GuestPhysAddr, facs: GuestPhysAddr) -> Vec<u8> {
    let mut t = Sdt::new(b"FACP", revision::FADT);
    t.bytes.resize(FADT_LEN, 0);

    // FACS and DSDT pointers. The blob is below 4 GiB (checked), so the
    // 32-bit fields and their 64-bit X_ versions carry the same address:
    // ACPICA (`acpi_tb_select_address`) warns only when both are set and
    // differ, and prefers X_ anyway.
    let facs32 = facs.as_u64() as u32;
    let dsdt32 = dsdt.as_u64() as u32;
    t.put(fadt::FIRMWARE_CTRL, &facs32.to_le_bytes());
    t.put(fadt::DSDT, &dsdt32.to_le_bytes());
    t.put(fadt::X_FIRMWARE_CTRL, &facs.as_u64().to_le_bytes());
    t.put(fadt::X_DSDT, &dsdt.as_u64().to_le_bytes());

    // Preferred_PM_Profile 0, "Unspecified" (§5.2.9.1): a VM is none of the
    // listed form factors, and Linux only uses it as a hint.
    t.put(fadt::PREFERRED_PM_PROFILE, &[0]);

    // SCI_INT: on a system without an 8259 this is the SCI's GSI (Table
    // 5.9); the MADT's override maps the ISA IRQ of the same number to it.
    t.put(fadt::SCI_INT, &p.sci_irq.to_le_bytes());

    // SMI_CMD 0: "the system does not support a transition to ACPI mode"
    // because it is always in ACPI mode (Table 5.9); ACPICA's
    // `acpi_hw_get_mode` then reports ACPI mode without touching SCI_EN, and
    // ACPI_ENABLE / ACPI_DISABLE stay 0.
    t.put(fadt::SMI_CMD, &0u32.to_le_bytes());

    // PM1a event and control blocks, with their lengths (4 and 2 bytes, the
    // minimum Table 5.9 allows), and the matching X_ GASes: same port,
    // bit width = 8 x length (ACPICA `acpi_tb_convert_fadt` warns on a
    // mismatch), 16-bit accesses (the registers are 16 bits wide, §4.8.3).
    t.put(
        fadt::PM1A_EVT_BLK,
        &u32::from(p.pm1a_evt_port).to_le_bytes(),
    );
    t.put(
        fadt::PM1A_CNT_BLK,
        &u32::from(p.pm1a_cnt_port).to_le_bytes(),
    );
    t.put(fadt::PM1_EVT_LEN, &[PM1_EVT_LEN]);
    t.put(fadt::PM1_CNT_LEN, &[PM1_CNT_LEN]);
    t.put(
        fadt::X_PM1A_EVT_BLK,
        &gas_io(p.pm1a_evt_port, PM1_EVT_LEN * 8, ACCESS_WORD),
    );
    t.put(
        fadt::X_PM1A_CNT_BLK,
        &gas_io(p.pm1a_cnt_port, PM1_CNT_LEN * 8, ACCESS_WORD),
    );

    // No PM timer: PM_TMR_BLK, PM_TMR_LEN and X_PM_TMR_BLK all 0. ACPI 5.0A
    // made the timer optional ("If the PM Timer is supported, this field's
    // value must be 4. If not supported, this field is zero", Table 5.9);
    // ACPICA flags it ACPI_FADT_SEPARATE_LENGTH (warns only if exactly one of
    // address/length is 0), and Linux x86 (`acpi_parse_fadt`) then leaves
    // `pmtmr_ioport` 0, so the acpi_pm clocksource is simply not registered.
    t.put(fadt::PM_TMR_BLK, &0u32.to_le_bytes());
    t.put(fadt::PM_TMR_LEN, &[0]);
    t.put(fadt::X_PM_TMR_BLK, &[0; 12]);

    // No C2/C3: latencies above 100 and 1000 us mean "not supported".
    t.put(fadt::P_LVL2_LAT, &101u16.to_le_bytes());
    t.put(fadt::P_LVL3_LAT, &1001u16.to_le_bytes());

    // CENTURY 0: no century byte in CMOS; Linux then assumes 20xx for
    // two-digit years.
    t.put(fadt::CENTURY, &[0]);

    // IA-PC boot architecture (§5.2.9.3):
    // - LEGACY_DEVICES clear: no user-visible ISA/LPC devices (Linux turns
    //   off PnP BIOS probing).
    // - 8042 clear: there is no PS/2 controller. With FADT revision >= 2
    //   Linux marks the i8042 "firmware absent" (`acpi_parse_fadt`), and
    //   since the DSDT declares no PNP0303/PNP0F13 device the i8042 driver
    //   returns -ENODEV instead of probing ports 0x60/0x64
    //   (`i8042_pnp_init`). (Linux's reboot still falls back to writing
    //   0xFE to port 0x64 if the reset register did not reset it.)
    // - VGA Not Present: no legacy VGA to probe.
    // - CMOS RTC Not Present unless the hypervisor emulates one.
    // - MSI Not Supported clear: MSIs are fine if PCI devices appear later.
    let mut arch = boot_arch::VGA_NOT_PRESENT;
    if !p.cmos_rtc {
        arch |= boot_arch::CMOS_RTC_NOT_PRESENT;
    }
    t.put(fadt::IAPC_BOOT_ARCH, &arch.to_le_bytes());

    t.put(fadt::FLAGS, &FADT_FLAGS.to_le_bytes());

    // RESET_REG: one byte in system I/O space, written with RESET_VALUE
    // (Table 5.9; the register must be 8 bits wide at offset 0). Linux
    // (`acpi_reboot`) uses it first when RESET_REG_SUP is set.
    t.put(fadt::RESET_REG, &gas_io(p.reset_port, 8, ACCESS_BYTE));
    t.put(fadt::RESET_VALUE, &[p.reset_value]);

    t.put(fadt::MINOR_VERSION, &[revision::FADT_MINOR]);

    // Hypervisor Vendor Identity (ACPI 6.0+): the vendor's name, no version.
    t.put(fadt::HYPERVISOR_VENDOR_ID, b"OxenOxen");

    t.finish()
}

/// The FADT flags (Table 5.10), each explained:
/// - WBINVD: required of every new system; set.
/// - PROC_C1: HLT works on every vCPU (the hypervisor exits on it).
/// - PWR_BUTTON clear: there is a fixed-feature power button (PWRBTN_STS
///   and PWRBTN_EN in PM1a, see [`crate::vdev::pm1_events`]). `xl-rs
///   shutdown` presses it; Linux's ACPI button driver enables its event and
///   reports KEY_POWER to userspace, which powers the guest off.
/// - SLP_BUTTON: no sleep button (and no control-method buttons either, the
///   DSDT has none).
/// - FIX_RTC: no RTC wake status in PM1 (Linux's rtc-cmos would otherwise
///   install an RTC fixed-event handler).
/// - RESET_REG_SUP: RESET_REG is valid.
/// - HEADLESS: true of a domU.
/// - FORCE_APIC_PHYSICAL_DESTINATION_MODE: Linux 6.1 then picks the
///   "physical flat" APIC driver (`physflat_acpi_madt_oem_check`) instead of
///   logical flat mode for <= 8 CPUs, so the virtual I/O APIC, MSIs and IPIs
///   only ever carry physical APIC IDs (later kernels use physical mode
///   always). x2APIC mode likewise picks x2apic_phys.
/// - HW_REDUCED_ACPI clear: Linux must use PM1a_CNT (SLP_TYP|SLP_EN) for S5
///   and the FACS is required.
/// - TMR_VAL_EXT, SEALED_CASE, the docking, PCIe-wake, S4 RTC and LPI flags:
///   clear, nothing of the kind exists.
pub const FADT_FLAGS: u32 = fadt_flags::WBINVD
    | fadt_flags::PROC_C1
    | fadt_flags::SLP_BUTTON
    | fadt_flags::FIX_RTC
    | fadt_flags::RESET_REG_SUP
    | fadt_flags::HEADLESS
    | fadt_flags::FORCE_APIC_PHYSICAL_DESTINATION_MODE;

/// The FACS (§5.2.10, Table 5.14): required when the FADT is not hardware
/// reduced. No waking vector (no S3/S4), global lock free, no flags. It has
/// no checksum.
fn build_facs() -> [u8; FACS_LEN] {
    let mut f = [0u8; FACS_LEN];
    f[0..4].copy_from_slice(b"FACS");
    f[4..8].copy_from_slice(&(FACS_LEN as u32).to_le_bytes());
    // 8: hardware signature 0; 12: waking vector 0; 16: global lock 0;
    // 20: flags 0 (no S4BIOS, no 64-bit wake); 24: X waking vector 0.
    f[32] = revision::FACS;
    f
}

/// The DSDT (§5.2.11.1): only `Name(_S5, Package(4){5, 5, 0, 0})` at the
/// root. `\_S5` gives SLP_TYPa and SLP_TYPb for soft-off (§7.4.2; the last
/// two elements are reserved). Linux needs nothing else: processors come
/// from the MADT, there is no PCI root bridge, EC, button or battery to
/// describe, and `\_SB`, `\_GPE`, `\_PR` are predefined by ACPICA. Without
/// `_S5` Linux would not register ACPI power-off (`acpi_sleep_init` →
/// `acpi_sleep_state_supported(ACPI_STATE_S5)`).
fn build_dsdt() -> Vec<u8> {
    let mut t = Sdt::new(b"DSDT", revision::DSDT);
    let mut aml = Vec::new();
    let s5 = u64::from(S5_SLP_TYP);
    aml::name_package(&mut aml, b"_S5_", &[s5, s5, 0, 0]);
    t.push(&aml);
    t.finish()
}

/// MADT flags (§5.2.12, Table 5.20): PCAT_COMPAT would say a dual 8259 is
/// present too. A domU has none, so 0. This also matters to Linux: kernels
/// with "x86/i8259: Skip probing when ACPI/MADT advertises PCAT
/// compatibility" (6.7, backported to 6.1.y stable) trust PCAT_COMPAT = 1
/// and skip `probe_8259A`; with 0 they probe, find no PIC and use the NULL
/// legacy PIC.
const MADT_FLAGS: u32 = 0;

/// MPS INTI flags of an Interrupt Source Override (§5.2.12.5, Table 5.26):
/// polarity in bits 1:0, trigger mode in bits 3:2.
mod inti {
    /// Both fields "conforms to the bus specification" (ISA: edge, high).
    pub const CONFORMS: u16 = 0;
    /// Polarity active low (0b11).
    pub const ACTIVE_LOW: u16 = 0b11;
    /// Trigger mode level (0b11 << 2).
    pub const LEVEL: u16 = 0b11 << 2;
}

/// The MADT ("APIC", §5.2.12).
///
/// - Local APIC address 0xFEE00000, flags 0 (no 8259, see [`MADT_FLAGS`]).
/// - One enabled Processor Local APIC entry (type 0, §5.2.12.2) per vCPU with
///   an APIC ID below 255, a Processor Local x2APIC entry (type 9,
///   §5.2.12.12) for the others, as the specification requires; the ACPI
///   processor UID is the vCPU index, in the order given (boot vCPU first).
/// - The I/O APIC (type 1, §5.2.12.3).
/// - Interrupt Source Overrides (type 2, §5.2.12.5), bus 0 = ISA:
///   - IRQ 0 → GSI 2, flags "conforms" (edge, active high): the PC wiring of
///     the PIT, which every PC OS expects; harmless while no PIT is
///     emulated, and right if one ever is.
///   - The SCI → the GSI of the same number, level-triggered, active low:
///     what ACPI says an SCI is ("a shareable, level, active low interrupt",
///     `SCI_INT` in Table 5.9) and what Linux assumes without an override
///     (`acpi_sci_ioapic_setup`), made explicit. Linux programs the I/O APIC
///     pin that way; the virtual I/O APIC takes a pin's input as "asserted"
///     whatever its polarity bit says, so a raised SCI is delivered.
fn build_madt(p: &DomuPlatform) -> Vec<u8> {
    let mut t = Sdt::new(b"APIC", revision::MADT);
    t.push(&LOCAL_APIC_ADDRESS.to_le_bytes());
    t.push(&MADT_FLAGS.to_le_bytes());

    /// Local APIC flags (Table 5.23): Enabled.
    const ENABLED: u32 = 1;
    for (uid, &apic_id) in p.cpus.iter().enumerate() {
        if apic_id < 0xFF {
            // Type 0, length 8: UID, APIC ID, flags.
            t.push(&[0, 8, uid as u8, apic_id as u8]);
            t.push(&ENABLED.to_le_bytes());
        } else {
            // Type 9, length 16: reserved (2), x2APIC ID, flags, UID.
            t.push(&[9, 16, 0, 0]);
            t.push(&apic_id.to_le_bytes());
            t.push(&ENABLED.to_le_bytes());
            t.push(&(uid as u32).to_le_bytes());
        }
    }

    // Type 1, length 12: ID, reserved, address, GSI base.
    t.push(&[1, 12, p.ioapic.id, 0]);
    t.push(&p.ioapic.mmio_base.to_le_bytes());
    t.push(&p.ioapic.gsi_base.to_le_bytes());

    // Type 2, length 10: bus, source IRQ, GSI, flags.
    let mut iso = |source: u8, gsi: u32, flags: u16| {
        t.push(&[2, 10, 0, source]);
        t.push(&gsi.to_le_bytes());
        t.push(&flags.to_le_bytes());
    };
    if gsi_on_ioapic(&p.ioapic, 2) {
        iso(0, 2, inti::CONFORMS);
    }
    if p.sci_irq < 16 {
        iso(
            p.sci_irq as u8,
            u32::from(p.sci_irq),
            inti::LEVEL | inti::ACTIVE_LOW,
        );
    }

    t.finish()
}
