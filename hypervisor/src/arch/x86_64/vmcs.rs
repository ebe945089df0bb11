//! The VMX instructions that act on a VMCS: VMCLEAR, VMPTRLD, VMREAD, VMWRITE,
//! INVEPT and INVVPID (SDM Vol.3C chapter 31 "VMX Instruction Reference").
//! A `Vmcs` owns one 4 KiB region; only the CPU that loaded it touches it.

use core::arch::asm;

use crate::mm::addr::{HostPhysAddr, PAGE_SIZE};
use crate::mm::frames;
use crate::vmx::fields::{AnyField, Field16, Field32, Field64, FieldNat};

/// A VMX instruction failed (VMfailInvalid, or VMfailValid with the error
/// number from the VM-instruction error field, SDM §31.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxInstrError {
    /// Which instruction.
    pub instr: &'static str,
    /// The VM-instruction error number (0 when the current VMCS is invalid).
    pub error: u32,
}

impl core::fmt::Display for VmxInstrError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} failed (VM-instruction error {})",
            self.instr, self.error
        )
    }
}

const VM_INSTRUCTION_ERROR: u32 = 0x4400;

/// Anything that names a VMCS field.
pub trait VmcsField: Copy {
    /// The field's encoding (SDM Vol.3D Appendix B).
    fn encoding(self) -> u32;
}

macro_rules! impl_field {
    ($($t:ty),*) => {$(
        impl VmcsField for $t {
            fn encoding(self) -> u32 {
                <$t>::encoding(self)
            }
        }
    )*};
}
impl_field!(Field16, Field32, Field64, FieldNat, AnyField);

fn check(instr: &'static str, cf_or_zf: u8) -> Result<(), VmxInstrError> {
    if cf_or_zf == 0 {
        return Ok(());
    }
    Err(VmxInstrError {
        instr,
        error: vmread_raw(VM_INSTRUCTION_ERROR).unwrap_or(0) as u32,
    })
}

/// A VMCS region.
#[derive(Debug)]
pub struct Vmcs {
    phys: HostPhysAddr,
}

impl Vmcs {
    /// Allocates a zeroed region stamped with the revision identifier and
    /// clears it (SDM §25.11.3 "Initializing a VMCS").
    pub fn new(revision: u32) -> Option<Self> {
        let phys = frames::allocate().ok()?;
        // SAFETY: a fresh, identity-mapped frame owned by this VMCS.
        unsafe {
            core::ptr::write_bytes(phys.as_u64() as *mut u8, 0, PAGE_SIZE as usize);
            core::ptr::write_volatile(phys.as_u64() as *mut u32, revision & 0x7FFF_FFFF);
        }
        let v = Self { phys };
        v.clear().ok()?;
        Some(v)
    }

    /// Its physical address.
    pub fn phys(&self) -> HostPhysAddr {
        self.phys
    }

    /// VMCLEAR: flushes it to memory and marks it not current, launch state clear.
    pub fn clear(&self) -> Result<(), VmxInstrError> {
        let fail: u8;
        // SAFETY: the operand is the address of a valid VMCS region we own;
        // the CPU is in VMX root operation (VMCS objects only exist there).
        unsafe {
            asm!("vmclear [{}]", "setbe {}", in(reg) &self.phys.as_u64(), out(reg_byte) fail, options(nostack));
        }
        check("VMCLEAR", fail)
    }

    /// VMPTRLD: makes it the current VMCS of this CPU.
    pub fn load(&self) -> Result<(), VmxInstrError> {
        let fail: u8;
        // SAFETY: as for `clear`.
        unsafe {
            asm!("vmptrld [{}]", "setbe {}", in(reg) &self.phys.as_u64(), out(reg_byte) fail, options(nostack));
        }
        check("VMPTRLD", fail)
    }
}

/// VMREAD of `field` from the current VMCS.
pub fn vmread(field: impl VmcsField) -> Result<u64, VmxInstrError> {
    vmread_raw(field.encoding())
}

/// VMREAD of `field`, which must exist; a failure (a hypervisor bug: the
/// field list is fixed) reads as 0 and is logged.
pub fn read(field: impl VmcsField) -> u64 {
    vmread(field).unwrap_or_else(|e| {
        log::error!("VMREAD {:#x}: {e}", field.encoding());
        0
    })
}

/// VMWRITE of `value` to `field`; a failure is logged (it means a field this
/// CPU lacks, a hypervisor bug caught at the next VM entry).
pub fn write(field: impl VmcsField, value: u64) {
    if let Err(e) = vmwrite_raw(field.encoding(), value) {
        log::error!("VMWRITE {:#x} = {value:#x}: {e}", field.encoding());
    }
}

fn vmread_raw(field: u32) -> Result<u64, VmxInstrError> {
    let value: u64;
    let fail: u8;
    // SAFETY: VMREAD only reads the current VMCS; failure is reported in
    // the flags, never as a fault, in VMX root operation.
    unsafe {
        asm!("vmread {}, {}", "setbe {}", out(reg) value, in(reg) u64::from(field), out(reg_byte) fail, options(nostack));
    }
    if fail != 0 {
        return Err(VmxInstrError {
            instr: "VMREAD",
            error: field,
        });
    }
    Ok(value)
}

fn vmwrite_raw(field: u32, value: u64) -> Result<(), VmxInstrError> {
    let fail: u8;
    // SAFETY: VMWRITE only changes the current VMCS, which this CPU owns; the
    // VMCS contents are checked by the CPU at VM entry, not trusted blindly.
    unsafe {
        asm!("vmwrite {}, {}", "setbe {}", in(reg) u64::from(field), in(reg) value, out(reg_byte) fail, options(nostack));
    }
    check("VMWRITE", fail)
}

#[repr(C)]
struct InvDescriptor {
    a: u64,
    b: u64,
}

/// INVEPT all-context: drops every cached EPT translation (SDM §31.3 INVEPT).
pub fn invept_all() {
    let desc = InvDescriptor { a: 0, b: 0 };
    // SAFETY: type 2 (all-context) ignores the descriptor contents; the
    // caller checked INVEPT support at boot (a required feature).
    unsafe { asm!("invept {}, [{}]", in(reg) 2u64, in(reg) &desc, options(nostack)) };
}

/// INVVPID single-context for `vpid` (type 1).
pub fn invvpid_single(vpid: u16) {
    let desc = InvDescriptor {
        a: u64::from(vpid),
        b: 0,
    };
    // SAFETY: a valid descriptor; only called when INVVPID single-context is
    // supported (checked by the caller).
    unsafe { asm!("invvpid {}, [{}]", in(reg) 1u64, in(reg) &desc, options(nostack)) };
}
