//! The domU builder's pure logic: what a guest domain is told about its
//! platform before its kernel runs.
//!
//! - [`acpi_tables`]: the ACPI tables (RSDP, XSDT, FADT, DSDT, MADT, FACS) a
//!   stock Linux entered through its PVH entry needs to find its vCPUs and
//!   interrupt controllers, and to power off and reboot through I/O ports the
//!   hypervisor traps. The RSDP's address goes into `hvm_start_info`.
//! - [`lazy_ram`]: which pieces of a domU's RAM are zeroed and mapped (RAM
//!   is zeroed on first use, not at creation).
//! - [`memory`]: the domU's guest-physical RAM layout and its e820 map (the
//!   [`E820Entry`](crate::dom0::memory::E820Entry) type is shared with dom0).
//!
//! Nothing here touches memory or hardware: the builders return byte buffers
//! and plans, and the domain-launch code copies them into the guest.
#![deny(unsafe_code)]

use core::fmt;

use crate::mm::addr::{ByteSize, GuestPhysAddr};

pub mod acpi_tables;
pub mod lazy_ram;
pub mod memory;

/// Why a domU's platform description could not be built. Every message says
/// what was wrong and what to change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DomuError {
    /// The platform has no vCPU.
    NoCpus,
    /// More vCPUs than the tables are built for.
    TooManyCpus {
        /// How many were asked for.
        count: usize,
        /// The most supported.
        max: usize,
    },
    /// Two vCPUs share a local APIC ID.
    DuplicateApicId {
        /// The repeated ID.
        apic_id: u32,
    },
    /// A local APIC ID that no processor can have (0xFFFF_FFFF is the x2APIC
    /// broadcast ID and means "invalid" in the MADT, ACPI 6.5 §5.2.12.12).
    InvalidApicId {
        /// The ID.
        apic_id: u32,
    },
    /// The ACPI blob's address is not 16-byte aligned (the RSDP must be,
    /// ACPI 6.5 §5.2.5.1).
    MisalignedAcpiBase {
        /// The address given.
        base: GuestPhysAddr,
    },
    /// The ACPI blob would reach above 4 GiB, where the FADT's 32-bit
    /// `DSDT`/`FIRMWARE_CTRL` fields cannot point.
    AcpiAboveFourGiB {
        /// One past its last byte.
        end: u64,
    },
    /// A power-management or reset I/O port is zero or its register block
    /// runs past port 0xFFFF.
    BadPort {
        /// Which register block.
        what: &'static str,
        /// Its first port.
        port: u16,
    },
    /// Two of the trapped register blocks share a port.
    PortsOverlap {
        /// One block.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// The SCI's global system interrupt is not an input of the I/O APIC.
    SciNotOnIoApic {
        /// The SCI (as an ISA IRQ and GSI).
        sci: u16,
        /// The I/O APIC's first GSI.
        gsi_base: u32,
    },
    /// The SCI would share ISA IRQ 0 or GSI 2 with the timer's override.
    SciOnTimerLine {
        /// The SCI.
        sci: u16,
    },
    /// Less guest memory than a domU can start with.
    MemoryTooSmall {
        /// The size asked for.
        memory: ByteSize,
        /// The least accepted.
        min: ByteSize,
    },
    /// The guest memory size is not a whole number of 4 KiB pages.
    MemoryNotPageAligned {
        /// The size asked for.
        memory: ByteSize,
    },
    /// The ACPI blob does not lie inside the domU's RAM, so there would be
    /// no memory behind it.
    AcpiBlobOutsideRam {
        /// Its first byte.
        start: GuestPhysAddr,
        /// One past its last byte.
        end: GuestPhysAddr,
    },
}

impl fmt::Display for DomuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoCpus => f.write_str("a domU needs at least one vCPU; give it vcpus >= 1"),
            Self::TooManyCpus { count, max } => write!(
                f,
                "{count} vCPUs asked for, but a domU can have at most {max}; lower vcpus"
            ),
            Self::DuplicateApicId { apic_id } => write!(
                f,
                "two vCPUs were given the local APIC ID {apic_id}; every vCPU needs its own"
            ),
            Self::InvalidApicId { apic_id } => write!(
                f,
                "local APIC ID {apic_id:#x} is the broadcast ID and cannot name a vCPU"
            ),
            Self::MisalignedAcpiBase { base } => write!(
                f,
                "the ACPI tables must start on a 16-byte boundary (RSDP), not at {base}"
            ),
            Self::AcpiAboveFourGiB { end } => write!(
                f,
                "the ACPI tables would end at {end:#x}, above 4 GiB; place them lower \
                 (the FADT's 32-bit pointers must reach them)"
            ),
            Self::BadPort { what, port } => write!(
                f,
                "the {what} I/O port {port:#x} is unusable (zero, or its registers run past \
                 port 0xffff); pick another port"
            ),
            Self::PortsOverlap { first, second } => write!(
                f,
                "the {first} and {second} I/O ports overlap; give them separate ports"
            ),
            Self::SciNotOnIoApic { sci, gsi_base } => write!(
                f,
                "the SCI (GSI {sci}) is not an input of the I/O APIC, whose first GSI is \
                 {gsi_base}; choose an SCI in the I/O APIC's range"
            ),
            Self::SciOnTimerLine { sci } => write!(
                f,
                "the SCI cannot be IRQ/GSI {sci}, which the timer (IRQ 0 -> GSI 2) uses; \
                 use IRQ 9 as PCs do"
            ),
            Self::MemoryTooSmall { memory, min } => {
                write!(
                    f,
                    "a domU needs at least {min} of memory, not {memory}; raise memory"
                )
            }
            Self::MemoryNotPageAligned { memory } => write!(
                f,
                "domU memory must be a whole number of 4 KiB pages, not {memory}"
            ),
            Self::AcpiBlobOutsideRam { start, end } => write!(
                f,
                "the ACPI tables at {start}..{end} are not inside the domU's RAM; place them \
                 in guest memory"
            ),
        }
    }
}
