//! What a guest sees from CPUID (SDM Vol.2A "CPUID"): the host's answer with
//! VMX hidden, the hypervisor-present bit set, our signature at 0x4000_0000,
//! and the TSC frequency the hypervisor measured in leaves 0x15/0x16 (which
//! Linux reads in `native_calibrate_tsc`) and in our own leaf 0x4000_0010.

/// Our hypervisor signature in leaf 0x4000_0000 (EBX, ECX, EDX).
pub const SIGNATURE: &[u8; 12] = b"OxenOxenOxen";
/// Highest hypervisor leaf.
pub const MAX_HV_LEAF: u32 = 0x4000_0010;

/// The XSAVE state components guests may enable in XCR0: x87, SSE and AVX
/// (SDM Vol.1 §13.1). AVX-512, MPX and PKRU are hidden: the emulators we test
/// on report XSAVE layouts for them that Linux rejects, and no guest needs
/// them to boot. XSETBV exits check against this mask.
pub const GUEST_XCR0_MASK: u64 = 0x7;
/// Size of the standard XSAVE area for `GUEST_XCR0_MASK`: legacy area (512)
/// + header (64) + AVX (256).
const GUEST_XSAVE_MAX: u32 = 832;

/// Facts the guest's CPUID depends on.
#[derive(Debug, Clone, Copy)]
pub struct CpuidContext {
    /// Measured TSC frequency in kHz (0 = unknown: leaves left as the host's).
    pub tsc_khz: u64,
    /// Local APIC bus (timer) frequency in kHz, for leaf 0x4000_0010 EBX.
    pub apic_khz: u64,
    /// The vCPU's APIC ID.
    pub apic_id: u32,
    /// The guest's CR4.OSXSAVE, which CPUID.1:ECX.OSXSAVE mirrors.
    pub guest_osxsave: bool,
    /// A domU's vCPU count: its topology is one package of that many
    /// single-thread cores, APIC IDs 0 to N-1 ([`topology`]). `None`: the
    /// host's topology (dom0, whose vCPUs are the physical CPUs).
    pub vcpus: Option<u32>,
}

/// Bits of an APIC ID that number `n` cores: ceil(log2(n)).
fn core_bits(n: u32) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros()
}

/// The topology leaves for one package of `n` single-thread cores (SDM
/// Vol. 2A CPUID leaves 01H EBX[23:16], 04H EAX[31:26], 0BH and 1FH; Vol. 3A
/// §10.9 "Programming considerations for hardware multi-threading"), so that
/// a guest's view agrees with its MADT whatever the host has: `Some` for
/// the leaves it decides, `None` for the others.
pub fn topology(leaf: u32, subleaf: u32, host: [u32; 4], n: u32, apic_id: u32) -> Option<[u32; 4]> {
    let [a, b, c, d] = host;
    let bits = core_bits(n);
    match leaf {
        1 => {
            // Addressable IDs in the package; HTT says the field is valid.
            let ids = (1u32 << bits).min(255);
            let b = (b & 0xFF00_FFFF) | (ids << 16);
            let d = if n > 1 { d | (1 << 28) } else { d & !(1 << 28) };
            Some([a, b, c, d])
        }
        4 if a & 0x1F != 0 => {
            // Core IDs in the package - 1; caches shared by one core only.
            let cores = (1u32 << bits).min(64) - 1;
            Some([(a & 0x3FFF) | (cores << 26), b, c, d])
        }
        0xB | 0x1F => Some(match subleaf {
            // SMT level: one thread per core.
            0 => [0, 1, 1 << 8, apic_id],
            // Core level: n cores, IDs `bits` wide.
            1 => [bits, n, (2 << 8) | 1, apic_id],
            s => [0, 0, s & 0xFF, apic_id],
        }),
        _ => None,
    }
}

/// Computes the guest's answer for `leaf`/`subleaf` from the host's answer
/// `host` (the caller executes CPUID on the physical CPU first; `host_max`
/// is the host's leaf 0 EAX).
pub fn guest_cpuid(leaf: u32, subleaf: u32, host: [u32; 4], ctx: &CpuidContext) -> [u32; 4] {
    let [mut a, mut b, mut c, mut d] = host;
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
            // MONITOR/MWAIT, for every guest, dom0 included: a guest idling
            // in MWAIT stays in the guest and keeps its CPU, and the
            // scheduler never learns the vCPU is idle; without it Linux
            // idles with HLT, which exits (the vCPU blocks and the CPU goes
            // to other vCPUs or waits). docs/architecture.md, "Idle".
            c &= !(1 << 3);
            // OSXSAVE (bit 27) reflects the guest's own CR4.OSXSAVE, not
            // the host's (SDM Vol. 2A CPUID, Table 3-10).
            c = (c & !(1 << 27)) | (u32::from(ctx.guest_osxsave) << 27);
            c |= 1 << 31; // hypervisor present
            b = (b & 0x00FF_FFFF) | ((ctx.apic_id & 0xFF) << 24);
        }
        7 if subleaf == 0 => {
            // AVX-512 (EBX 16, 17, 21, 26-28, 30, 31; ECX 1, 6, 11, 12, 14;
            // EDX 2, 3, 8, 23), MPX (EBX 14) and PKU/OSPKE (ECX 3, 4): their
            // state components are hidden (see GUEST_XCR0_MASK).
            b &= !((1 << 16)
                | (1 << 17)
                | (1 << 21)
                | (1 << 26)
                | (1 << 27)
                | (1 << 28)
                | (1 << 30)
                | (1 << 31)
                | (1 << 14));
            c &= !((1 << 1) | (1 << 6) | (1 << 11) | (1 << 12) | (1 << 14) | (1 << 3) | (1 << 4));
            d &= !((1 << 2) | (1 << 3) | (1 << 8) | (1 << 23));
        }
        0xD if subleaf == 0 => {
            a &= GUEST_XCR0_MASK as u32;
            c = c.min(GUEST_XSAVE_MAX);
            d = 0;
        }
        0xD if (3..64).contains(&subleaf) && GUEST_XCR0_MASK & (1 << subleaf) == 0 => {
            a = 0;
            b = 0;
            c = 0;
            d = 0;
        }
        0xD if subleaf == 1 => {
            // No XSAVES/XRSTORS and no supervisor state components: the
            // hypervisor does not manage IA32_XSS for guests, so guests use
            // the standard (non-compacted) XSAVE layout (SDM Vol.1 §13.2).
            a &= 1; // XSAVEOPT only
            b = 0;
            c = 0;
            d = 0;
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
    match ctx.vcpus {
        Some(n) => topology(leaf, subleaf, [a, b, c, d], n, ctx.apic_id).unwrap_or([a, b, c, d]),
        None => [a, b, c, d],
    }
}

/// Whether a guest may set XCR0 to `value`, given the bits the CPU supports
/// (`host`, CPUID.(EAX=0xD,ECX=0)): x87 set, nothing outside
/// [`GUEST_XCR0_MASK`] and the host, AVX only with SSE (SDM Vol. 1 §13.3).
pub fn xcr0_valid(value: u64, host: u64) -> bool {
    xcr0_loadable(value, host & GUEST_XCR0_MASK)
}

/// Whether XSETBV may load `value` into XCR0 on a CPU supporting the bits
/// `supported`: x87 set, nothing unsupported, AVX only with SSE (SDM Vol. 2D
/// XSETBV, Vol. 1 §13.3).
pub fn xcr0_loadable(value: u64, supported: u64) -> bool {
    value & 1 != 0 && value & !supported == 0 && !(value & 4 != 0 && value & 2 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: CpuidContext = CpuidContext {
        tsc_khz: 64_000,
        apic_khz: 4_000,
        apic_id: 3,
        guest_osxsave: false,
        vcpus: None,
    };

    #[test]
    fn domu_topology_is_one_package_of_n_cores() {
        let ctx = CpuidContext {
            vcpus: Some(4),
            apic_id: 2,
            ..CTX
        };
        // Host: 2 logical processors, HTT clear.
        let l1 = guest_cpuid(1, 0, [0x806F0, 0x0002_0800, 0, 0], &ctx);
        assert_eq!((l1[1] >> 16) & 0xFF, 4);
        assert_eq!(l1[1] >> 24, 2);
        assert_ne!(l1[3] & (1 << 28), 0);
        let smt = guest_cpuid(0xB, 0, [1, 2, 0x100, 7], &ctx);
        assert_eq!(smt, [0, 1, 0x100, 2]);
        let core = guest_cpuid(0xB, 1, [4, 2, 0x201, 7], &ctx);
        assert_eq!(core, [2, 4, 0x201, 2]);
        assert_eq!(guest_cpuid(0xB, 2, [0; 4], &ctx), [0, 0, 2, 2]);
        // Leaf 4: 4 core IDs in the package, each cache its own core's.
        let l4 = guest_cpuid(4, 0, [0x0400_4121, 0, 0, 0], &ctx);
        assert_eq!(l4[0] >> 26, 3);
        assert_eq!((l4[0] >> 14) & 0xFFF, 0);
        // No cache at this subleaf: left as the host said.
        assert_eq!(guest_cpuid(4, 4, [0; 4], &ctx), [0; 4]);
    }

    #[test]
    fn core_bits_round_up() {
        for (n, bits) in [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (32, 5)] {
            assert_eq!(core_bits(n), bits, "{n}");
        }
        let one = CpuidContext {
            vcpus: Some(1),
            ..CTX
        };
        assert_eq!(
            guest_cpuid(1, 0, [0, 0x0002_0000, 0, 1 << 28], &one)[3] & (1 << 28),
            0
        );
        // dom0 keeps the host's leaf 0xB.
        assert_eq!(
            guest_cpuid(0xB, 1, [4, 2, 0x201, 7], &CTX),
            [4, 2, 0x201, 7]
        );
    }

    #[test]
    fn vmx_hidden_hypervisor_bit_set() {
        let r = guest_cpuid(1, 0, [0x806F0, 0x0008_0800, !(1 << 31), 0], &CTX);
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
    fn xsaves_hidden() {
        assert_eq!(
            guest_cpuid(0xD, 1, [0xF, 0x100, 0x1, 0x2], &CTX),
            [0x1, 0, 0, 0]
        );
        assert_eq!(
            guest_cpuid(0xD, 0, [0xE7, 0x340, 0xA80, 0], &CTX),
            [0x7, 0x340, 832, 0]
        );
        assert_eq!(guest_cpuid(0xD, 5, [64, 832, 0, 0], &CTX), [0, 0, 0, 0]);
        assert_eq!(
            guest_cpuid(0xD, 2, [256, 576, 0, 0], &CTX),
            [256, 576, 0, 0]
        );
        assert_eq!(
            guest_cpuid(7, 0, [0, u32::MAX, u32::MAX, u32::MAX], &CTX)[1] & (1 << 16),
            0
        );
    }

    #[test]
    fn unknown_tsc_leaves_host_values() {
        let ctx = CpuidContext { tsc_khz: 0, ..CTX };
        assert_eq!(guest_cpuid(0x15, 0, [2, 3, 4, 5], &ctx), [2, 3, 4, 5]);
        assert_eq!(guest_cpuid(0, 0, [0xD, 1, 2, 3], &ctx), [0xD, 1, 2, 3]);
    }

    #[test]
    fn osxsave_follows_the_guests_cr4() {
        let host = [0, 0, 1 << 27 | 1 << 26, 0];
        assert_eq!(guest_cpuid(1, 0, host, &CTX)[2] & (1 << 27), 0);
        let on = CpuidContext {
            guest_osxsave: true,
            ..CTX
        };
        assert_ne!(guest_cpuid(1, 0, [0, 0, 1 << 26, 0], &on)[2] & (1 << 27), 0);
        assert_ne!(
            guest_cpuid(1, 0, host, &on)[2] & (1 << 26),
            0,
            "XSAVE itself stays"
        );
    }

    #[test]
    fn monitor_mwait_is_hidden() {
        let r = guest_cpuid(1, 0, [0, 0, 1 << 3, 0], &CTX);
        assert_eq!(r[2] & (1 << 3), 0);
        assert_ne!(r[2] & (1 << 31), 0);
    }

    #[test]
    fn xcr0_rules() {
        let host = 0x2E7; // x87, SSE, AVX, MPX, AVX-512
        assert!(xcr0_valid(0x7, host));
        assert!(xcr0_valid(0x3, host));
        assert!(!xcr0_valid(0x2, host), "x87 must be set");
        assert!(!xcr0_valid(0x5, host), "AVX needs SSE");
        assert!(!xcr0_valid(0xE7, host), "AVX-512 is hidden from guests");
        assert!(!xcr0_valid(0x7, 0x3), "not beyond the host");
    }
}
