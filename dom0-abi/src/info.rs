//! Hypervisor information ([`crate::Op::HvInfo`]) and VMX feature bits.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, Flag, StructLayout, struct_layout};

/// Length of [`HvInfo::version`].
pub const HV_VERSION_LEN: usize = 32;

/// Result of [`crate::Op::HvInfo`].
///
/// Memory is counted in pages of [`crate::PAGE_SIZE`] bytes. A later minor ABI
/// version may append fields; callers pass their buffer size in RSI and the
/// hypervisor writes `min(RSI, its size)` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct HvInfo {
    /// Hypervisor version string, UTF-8, NUL-padded (e.g. `oxen 0.1.0`).
    pub version: [u8; HV_VERSION_LEN],
    /// ABI major version implemented.
    pub abi_major: u16,
    /// ABI minor version implemented.
    pub abi_minor: u16,
    /// Number of physical CPUs the hypervisor runs on.
    pub cpu_count: u32,
    /// Pages of RAM the hypervisor manages (hypervisor + dom0 + domUs + free).
    pub total_pages: u64,
    /// Pages in the free pool, available for new domains.
    pub free_pages: u64,
    /// Pages given to dom0.
    pub dom0_pages: u64,
    /// VMX features in use: bits of [`VMX_FEATURES`].
    pub vmx_features: u64,
    /// TSC frequency measured at boot, in kHz.
    pub tsc_khz: u64,
    /// Nanoseconds since the hypervisor started.
    pub uptime_ns: u64,
}

crate::assert_layout!(HvInfo, size = 88, {
    version: 0,
    abi_major: 32,
    abi_minor: 34,
    cpu_count: 36,
    total_pages: 40,
    free_pages: 48,
    dom0_pages: 56,
    vmx_features: 64,
    tsc_khz: 72,
    uptime_ns: 80,
});

impl HvInfo {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        HvInfo,
        "oxen_hv_info",
        "Result of OXEN_OP_HV_INFO. Memory counts are in 4 KiB pages.",
        [
            version: CType::Bytes(HV_VERSION_LEN) => "version string, UTF-8, NUL-padded",
            abi_major: CType::U16 => "ABI major implemented",
            abi_minor: CType::U16 => "ABI minor implemented",
            cpu_count: CType::U32 => "physical CPUs",
            total_pages: CType::U64 => "pages managed by the hypervisor",
            free_pages: CType::U64 => "pages in the free pool",
            dom0_pages: CType::U64 => "pages given to dom0",
            vmx_features: CType::U64 => "OXEN_VMX_* bits in use",
            tsc_khz: CType::U64 => "TSC frequency in kHz",
            uptime_ns: CType::U64 => "nanoseconds since boot",
        ]
    );

    /// The version string up to its first NUL, if it is UTF-8.
    #[must_use]
    pub fn version_str(&self) -> Option<&str> {
        let end = self
            .version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.version.len());
        core::str::from_utf8(&self.version[..end]).ok()
    }
}

/// EPT is used for guest memory.
pub const VMX_EPT: u64 = 1 << 0;
/// EPT 2 MiB pages.
pub const VMX_EPT_2M: u64 = 1 << 1;
/// EPT 1 GiB pages.
pub const VMX_EPT_1G: u64 = 1 << 2;
/// Virtual-processor identifiers.
pub const VMX_VPID: u64 = 1 << 3;
/// Unrestricted guest (real mode and unpaged protected mode under VMX).
pub const VMX_UNRESTRICTED_GUEST: u64 = 1 << 4;
/// APIC-register virtualization.
pub const VMX_APIC_REGISTER_VIRT: u64 = 1 << 5;
/// Virtual-interrupt delivery.
pub const VMX_VIRTUAL_INTR_DELIVERY: u64 = 1 << 6;
/// Posted interrupts.
pub const VMX_POSTED_INTERRUPTS: u64 = 1 << 7;
/// VMX-preemption timer.
pub const VMX_PREEMPTION_TIMER: u64 = 1 << 8;
/// TPR shadow.
pub const VMX_TPR_SHADOW: u64 = 1 << 9;

/// The bits of [`HvInfo::vmx_features`] (Intel SDM Vol. 3D, Appendix A, for the
/// capability MSRs they are read from).
pub const VMX_FEATURES: &[Flag] = &[
    Flag {
        name: "ept",
        c_name: "OXEN_VMX_EPT",
        value: VMX_EPT,
        doc: "EPT",
    },
    Flag {
        name: "ept_2m",
        c_name: "OXEN_VMX_EPT_2M",
        value: VMX_EPT_2M,
        doc: "EPT 2 MiB pages",
    },
    Flag {
        name: "ept_1g",
        c_name: "OXEN_VMX_EPT_1G",
        value: VMX_EPT_1G,
        doc: "EPT 1 GiB pages",
    },
    Flag {
        name: "vpid",
        c_name: "OXEN_VMX_VPID",
        value: VMX_VPID,
        doc: "VPID",
    },
    Flag {
        name: "unrestricted_guest",
        c_name: "OXEN_VMX_UNRESTRICTED_GUEST",
        value: VMX_UNRESTRICTED_GUEST,
        doc: "unrestricted guest",
    },
    Flag {
        name: "apic_register_virt",
        c_name: "OXEN_VMX_APIC_REGISTER_VIRT",
        value: VMX_APIC_REGISTER_VIRT,
        doc: "APIC-register virtualization",
    },
    Flag {
        name: "virtual_intr_delivery",
        c_name: "OXEN_VMX_VIRTUAL_INTR_DELIVERY",
        value: VMX_VIRTUAL_INTR_DELIVERY,
        doc: "virtual-interrupt delivery",
    },
    Flag {
        name: "posted_interrupts",
        c_name: "OXEN_VMX_POSTED_INTERRUPTS",
        value: VMX_POSTED_INTERRUPTS,
        doc: "posted interrupts",
    },
    Flag {
        name: "preemption_timer",
        c_name: "OXEN_VMX_PREEMPTION_TIMER",
        value: VMX_PREEMPTION_TIMER,
        doc: "VMX-preemption timer",
    },
    Flag {
        name: "tpr_shadow",
        c_name: "OXEN_VMX_TPR_SHADOW",
        value: VMX_TPR_SHADOW,
        doc: "TPR shadow",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn feature_bits_are_single_distinct_bits() {
        let mut seen = 0u64;
        for flag in VMX_FEATURES {
            assert_eq!(flag.value.count_ones(), 1, "{}", flag.name);
            assert_eq!(seen & flag.value, 0, "{} reuses a bit", flag.name);
            seen |= flag.value;
        }
    }

    #[test]
    fn feature_names_follow_bits() {
        let names: Vec<_> =
            crate::layout::flag_names(VMX_FEATURES, VMX_EPT | VMX_VPID | (1 << 63)).collect();
        assert_eq!(names, ["ept", "vpid"]);
    }

    #[test]
    fn version_string_stops_at_nul() {
        let mut info = <HvInfo as zerocopy::FromZeros>::new_zeroed();
        info.version[..4].copy_from_slice(b"oxen");
        assert_eq!(info.version_str(), Some("oxen"));
        info.version[0] = 0xff;
        assert_eq!(info.version_str(), None);
    }
}
