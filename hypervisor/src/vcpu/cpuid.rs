//! What a guest sees from CPUID (SDM Vol.2A "CPUID"): the host's answer with
//! VMX hidden, the hypervisor-present bit set, our signature at 0x4000_0000,
//! and the TSC frequency the hypervisor measured in leaves 0x15/0x16 (which
//! Linux reads in `native_calibrate_tsc`) and in our own leaf 0x4000_0010.

/// Our hypervisor signature in leaf 0x4000_0000 (EBX, ECX, EDX).
pub const SIGNATURE: &[u8; 12] = b"OxenOxenOxen";
/// Highest hypervisor leaf.
pub const MAX_HV_LEAF: u32 = 0x4000_0010;

/// Facts the guest's CPUID depends on.
#[derive(Debug, Clone, Copy)]
pub struct CpuidContext {
    /// Measured TSC frequency in kHz (0 = unknown: leaves left as the host's).
    pub tsc_khz: u64,
    /// Local APIC bus (timer) frequency in kHz, for leaf 0x4000_0010 EBX.
    pub apic_khz: u64,
    /// The vCPU's APIC ID.
    pub apic_id: u32,
}

/// Computes the guest's answer for `leaf`/`subleaf` from the host's answer
/// `host` (the caller executes CPUID on the physical CPU first; `host_max`
/// is the host's leaf 0 EAX).
pub fn guest_cpuid(leaf: u32, subleaf: u32, host: [u32; 4], ctx: &CpuidContext) -> [u32; 4] {
    let [mut a, mut b, mut c, mut d] = host;
    let _ = subleaf;
    match leaf {
        0 => {
            // Expose at least leaf 0x16 so the TSC frequency leaves are seen.
            if ctx.tsc_khz != 0 {
                a = a.max(0x16);
            }
        }
        1 => {
            c &= !(1 << 5); // VMX: not nested
            c &= !(1 << 6); // SMX
            c |= 1 << 31; // hypervisor present
            b = (b & 0x00FF_FFFF) | ((ctx.apic_id & 0xFF) << 24);
        }
        0x15 if ctx.tsc_khz != 0 => {
            // TSC = crystal (ECX Hz) * EBX / EAX; we report the TSC itself as
            // the "crystal" with a ratio of 1.
            a = 1;
            b = 1;
            c = (ctx.tsc_khz * 1000).min(u64::from(u32::MAX)) as u32;
            d = 0;
        }
        0x16 if ctx.tsc_khz != 0 => {
            let mhz = (ctx.tsc_khz / 1000).min(0xFFFF) as u32;
            a = mhz; // base frequency
            b = mhz; // maximum frequency
            c = (ctx.apic_khz / 1000).min(0xFFFF) as u32; // bus frequency
            d = 0;
        }
        0x4000_0000 => {
            a = MAX_HV_LEAF;
            b = u32::from_le_bytes([SIGNATURE[0], SIGNATURE[1], SIGNATURE[2], SIGNATURE[3]]);
            c = u32::from_le_bytes([SIGNATURE[4], SIGNATURE[5], SIGNATURE[6], SIGNATURE[7]]);
            d = u32::from_le_bytes([SIGNATURE[8], SIGNATURE[9], SIGNATURE[10], SIGNATURE[11]]);
        }
        0x4000_0010 => {
            // The de-facto "timing information" leaf (VMware's layout, also
            // read by Linux on some hypervisors): TSC and bus kHz.
            a = ctx.tsc_khz.min(u64::from(u32::MAX)) as u32;
            b = ctx.apic_khz.min(u64::from(u32::MAX)) as u32;
            c = 0;
            d = 0;
        }
        0x4000_0001..=0x4000_000F => {
            a = 0;
            b = 0;
            c = 0;
            d = 0;
        }
        _ => {}
    }
    [a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: CpuidContext = CpuidContext { tsc_khz: 64_000, apic_khz: 4_000, apic_id: 3 };

    #[test]
    fn vmx_hidden_hypervisor_bit_set() {
        let r = guest_cpuid(1, 0, [0x806F0, 0x0008_0800, 0xFFFF_FFFF & !(1 << 31), 0], &CTX);
        assert_eq!(r[2] & (1 << 5), 0);
        assert_ne!(r[2] & (1 << 31), 0);
        assert_eq!(r[1] >> 24, 3);
    }

    #[test]
    fn signature_and_tsc_leaves() {
        let r = guest_cpuid(0x4000_0000, 0, [0; 4], &CTX);
        let mut sig = [0u8; 12];
        sig[..4].copy_from_slice(&r[1].to_le_bytes());
        sig[4..8].copy_from_slice(&r[2].to_le_bytes());
        sig[8..].copy_from_slice(&r[3].to_le_bytes());
        assert_eq!(&sig, SIGNATURE);
        assert_eq!(guest_cpuid(0x15, 0, [0; 4], &CTX), [1, 1, 64_000_000, 0]);
        assert_eq!(guest_cpuid(0x16, 0, [0; 4], &CTX)[0], 64);
        assert_eq!(guest_cpuid(0x4000_0010, 0, [0; 4], &CTX)[0], 64_000);
        assert!(guest_cpuid(0, 0, [0xD, 0, 0, 0], &CTX)[0] >= 0x16);
    }

    #[test]
    fn unknown_tsc_leaves_host_values() {
        let ctx = CpuidContext { tsc_khz: 0, ..CTX };
        assert_eq!(guest_cpuid(0x15, 0, [2, 3, 4, 5], &ctx), [2, 3, 4, 5]);
        assert_eq!(guest_cpuid(0, 0, [0xD, 1, 2, 3], &ctx), [0xD, 1, 2, 3]);
    }
}
