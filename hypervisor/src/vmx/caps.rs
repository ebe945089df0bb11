//! Decoding of the VMX capability MSRs (SDM Vol.3D Appendix A "VMX Capability
//! Reporting Facility") into the features the hypervisor uses, the list of
//! required features, and the boot-time report.

use core::fmt;

/// Raw values of the VMX capability MSRs, as read on one CPU.
/// A field is 0 when the MSR does not exist on this CPU (see `read_order`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmxMsrs {
    /// IA32_VMX_BASIC (0x480), A.1.
    pub basic: u64,
    /// IA32_VMX_PINBASED_CTLS (0x481) or IA32_VMX_TRUE_PINBASED_CTLS (0x48D), A.3.1.
    pub pinbased: u64,
    /// IA32_VMX_PROCBASED_CTLS (0x482) or the TRUE form (0x48E), A.3.2.
    pub procbased: u64,
    /// IA32_VMX_EXIT_CTLS (0x483) or the TRUE form (0x48F), A.4.
    pub exit: u64,
    /// IA32_VMX_ENTRY_CTLS (0x484) or the TRUE form (0x490), A.5.
    pub entry: u64,
    /// IA32_VMX_MISC (0x485), A.6.
    pub misc: u64,
    /// IA32_VMX_PROCBASED_CTLS2 (0x48B), A.3.3; 0 if absent.
    pub procbased2: u64,
    /// IA32_VMX_EPT_VPID_CAP (0x48C), A.10; 0 if absent.
    pub ept_vpid: u64,
}

/// MSR numbers (SDM Vol.4 Table 2-2).
pub mod msr {
    /// IA32_VMX_BASIC.
    pub const BASIC: u32 = 0x480;
    /// IA32_VMX_PINBASED_CTLS.
    pub const PINBASED: u32 = 0x481;
    /// IA32_VMX_PROCBASED_CTLS.
    pub const PROCBASED: u32 = 0x482;
    /// IA32_VMX_EXIT_CTLS.
    pub const EXIT: u32 = 0x483;
    /// IA32_VMX_ENTRY_CTLS.
    pub const ENTRY: u32 = 0x484;
    /// IA32_VMX_MISC.
    pub const MISC: u32 = 0x485;
    /// IA32_VMX_PROCBASED_CTLS2.
    pub const PROCBASED2: u32 = 0x48B;
    /// IA32_VMX_EPT_VPID_CAP.
    pub const EPT_VPID_CAP: u32 = 0x48C;
    /// IA32_VMX_TRUE_PINBASED_CTLS.
    pub const TRUE_PINBASED: u32 = 0x48D;
    /// IA32_VMX_TRUE_PROCBASED_CTLS.
    pub const TRUE_PROCBASED: u32 = 0x48E;
    /// IA32_VMX_TRUE_EXIT_CTLS.
    pub const TRUE_EXIT: u32 = 0x48F;
    /// IA32_VMX_TRUE_ENTRY_CTLS.
    pub const TRUE_ENTRY: u32 = 0x490;
}

/// Whether IA32_VMX_BASIC says the TRUE_* control MSRs exist (bit 55).
pub fn has_true_controls(basic: u64) -> bool {
    basic & (1 << 55) != 0
}

/// Whether PROCBASED_CTLS2 exists: "activate secondary controls" (bit 31) may be 1.
pub fn has_secondary(procbased: u64) -> bool {
    allowed1(procbased, 31)
}

/// Whether EPT_VPID_CAP exists: EPT (bit 1) or VPID (bit 5) may be enabled.
pub fn has_ept_vpid_cap(procbased2: u64) -> bool {
    allowed1(procbased2, 1) || allowed1(procbased2, 5)
}

/// A control bit may be set to 1 (the high half of a control MSR lists the
/// allowed 1-settings, A.3).
fn allowed1(ctl_msr: u64, bit: u32) -> bool {
    (ctl_msr >> 32) & (1 << bit) != 0
}

fn bit(v: u64, b: u32) -> bool {
    v & (1 << b) != 0
}

/// The decoded capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxCaps {
    /// The raw MSRs this was decoded from.
    pub msrs: VmxMsrs,
}

/// A feature the hypervisor cannot run without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Its name, as an operator would search the SDM for it.
    pub name: &'static str,
    /// Whether this CPU has it.
    pub present: bool,
}

impl VmxCaps {
    /// Decodes the MSR values.
    pub fn new(msrs: VmxMsrs) -> Self {
        Self { msrs }
    }
    /// VMCS revision identifier (bits 30:0 of IA32_VMX_BASIC).
    pub fn vmcs_revision(&self) -> u32 {
        (self.msrs.basic & 0x7FFF_FFFF) as u32
    }
    /// VMXON/VMCS region size in bytes (bits 44:32).
    pub fn vmcs_size(&self) -> u32 {
        ((self.msrs.basic >> 32) & 0x1FFF) as u32
    }
    /// VMCS memory type is write-back (bits 53:50 == 6).
    pub fn vmcs_write_back(&self) -> bool {
        (self.msrs.basic >> 50) & 0xF == 6
    }
    /// Secondary processor-based controls are available.
    pub fn secondary(&self) -> bool {
        has_secondary(self.msrs.procbased)
    }
    fn sec(&self, b: u32) -> bool {
        self.secondary() && allowed1(self.msrs.procbased2, b)
    }
    /// EPT (secondary bit 1).
    pub fn ept(&self) -> bool {
        self.sec(1)
    }
    /// VPID (secondary bit 5).
    pub fn vpid(&self) -> bool {
        self.sec(5)
    }
    /// Unrestricted guest (secondary bit 7).
    pub fn unrestricted_guest(&self) -> bool {
        self.sec(7)
    }
    /// Virtualize APIC accesses (secondary bit 0).
    pub fn apic_access_page(&self) -> bool {
        self.sec(0)
    }
    /// Virtualize x2APIC mode (secondary bit 4).
    pub fn virtualize_x2apic(&self) -> bool {
        self.sec(4)
    }
    /// APIC-register virtualization (secondary bit 8).
    pub fn apic_register_virtualization(&self) -> bool {
        self.sec(8)
    }
    /// Virtual-interrupt delivery (secondary bit 9).
    pub fn virtual_interrupt_delivery(&self) -> bool {
        self.sec(9)
    }
    /// TPR shadow (primary bit 21).
    pub fn tpr_shadow(&self) -> bool {
        allowed1(self.msrs.procbased, 21)
    }
    /// Posted-interrupt processing (pin-based bit 7).
    pub fn posted_interrupts(&self) -> bool {
        allowed1(self.msrs.pinbased, 7)
    }
    /// VMX-preemption timer (pin-based bit 6).
    pub fn preemption_timer(&self) -> bool {
        allowed1(self.msrs.pinbased, 6)
    }
    /// The preemption timer counts down every 2^N TSC ticks (misc bits 4:0).
    pub fn preemption_timer_shift(&self) -> u32 {
        (self.msrs.misc & 0x1F) as u32
    }
    /// Virtual NMIs (pin-based bit 5).
    pub fn virtual_nmis(&self) -> bool {
        allowed1(self.msrs.pinbased, 5)
    }
    fn ept_cap(&self, b: u32) -> bool {
        self.ept() && bit(self.msrs.ept_vpid, b)
    }
    /// EPT 2 MiB pages (EPT_VPID_CAP bit 16).
    pub fn ept_2m(&self) -> bool {
        self.ept_cap(16)
    }
    /// EPT 1 GiB pages (bit 17).
    pub fn ept_1g(&self) -> bool {
        self.ept_cap(17)
    }
    /// 4-level EPT page walk (bit 6).
    pub fn ept_4level(&self) -> bool {
        self.ept_cap(6)
    }
    /// Write-back EPT paging-structure memory type (bit 14).
    pub fn ept_write_back(&self) -> bool {
        self.ept_cap(14)
    }
    /// EPT accessed/dirty flags (bit 21).
    pub fn ept_ad(&self) -> bool {
        self.ept_cap(21)
    }
    /// Execute-only EPT translations (bit 0).
    pub fn ept_execute_only(&self) -> bool {
        self.ept_cap(0)
    }
    /// INVEPT with single-context (bit 25) / all-context (bit 26) types.
    pub fn invept(&self) -> (bool, bool) {
        (
            self.ept_cap(20) && self.ept_cap(25),
            self.ept_cap(20) && self.ept_cap(26),
        )
    }
    /// INVVPID (bit 32) with single-context (41) / all-context (42) types.
    pub fn invvpid(&self) -> (bool, bool) {
        let has = self.vpid() && bit(self.msrs.ept_vpid, 32);
        (
            has && bit(self.msrs.ept_vpid, 41),
            has && bit(self.msrs.ept_vpid, 42),
        )
    }

    /// The features the hypervisor requires, each with whether it is present.
    /// EPT with a 4-level walk and write-back tables and unrestricted guest
    /// carry dom0 (real-mode start-up, identity EPT); the bitmaps, exit and
    /// entry controls are what the VM-exit path relies on.
    pub fn requirements(&self) -> [Requirement; 12] {
        let r = |name, present| Requirement { name, present };
        [
            r("VMCS in write-back memory", self.vmcs_write_back()),
            r("secondary processor-based controls", self.secondary()),
            r("EPT", self.ept()),
            r("EPT 4-level page walk", self.ept_4level()),
            r("EPT write-back memory type", self.ept_write_back()),
            r("INVEPT (all-context)", self.invept().1),
            r("unrestricted guest", self.unrestricted_guest()),
            r("MSR bitmaps", allowed1(self.msrs.procbased, 28)),
            r("I/O bitmaps", allowed1(self.msrs.procbased, 25)),
            r(
                "host address-space size (64-bit host) exit control",
                allowed1(self.msrs.exit, 9),
            ),
            r(
                "acknowledge interrupt on exit",
                allowed1(self.msrs.exit, 15),
            ),
            r(
                "load IA32_EFER on entry and exit",
                allowed1(self.msrs.entry, 15) && allowed1(self.msrs.exit, 21),
            ),
        ]
    }

    /// The first required feature that is missing, if any.
    pub fn first_missing(&self) -> Option<&'static str> {
        self.requirements()
            .into_iter()
            .find(|r| !r.present)
            .map(|r| r.name)
    }

    /// Emits the report, one line per call of `line`.
    pub fn report(&self, line: &mut dyn FnMut(fmt::Arguments<'_>)) {
        let m = &self.msrs;
        let yn = |b: bool| if b { "yes" } else { "no" };
        line(format_args!(
            "VMX capabilities (IA32_VMX_BASIC = {:#x}):",
            m.basic
        ));
        line(format_args!(
            "  VMCS revision {:#x}, region {} bytes, {} memory, true controls: {}",
            self.vmcs_revision(),
            self.vmcs_size(),
            if self.vmcs_write_back() {
                "write-back"
            } else {
                "uncached"
            },
            yn(has_true_controls(m.basic)),
        ));
        line(format_args!(
            "  controls: pin {:#x} proc {:#x} proc2 {:#x} exit {:#x} entry {:#x} misc {:#x} ept/vpid {:#x}",
            m.pinbased, m.procbased, m.procbased2, m.exit, m.entry, m.misc, m.ept_vpid
        ));
        let (ept_single, ept_all) = self.invept();
        line(format_args!(
            "  EPT: {} (4-level walk {}, write-back {}, 2M pages {}, 1G pages {}, A/D flags {}, execute-only {}, INVEPT single/all {}/{})",
            yn(self.ept()),
            yn(self.ept_4level()),
            yn(self.ept_write_back()),
            yn(self.ept_2m()),
            yn(self.ept_1g()),
            yn(self.ept_ad()),
            yn(self.ept_execute_only()),
            yn(ept_single),
            yn(ept_all)
        ));
        let (vpid_single, vpid_all) = self.invvpid();
        line(format_args!(
            "  VPID: {} (INVVPID single/all {}/{})",
            yn(self.vpid()),
            yn(vpid_single),
            yn(vpid_all)
        ));
        line(format_args!(
            "  unrestricted guest: {}",
            yn(self.unrestricted_guest())
        ));
        line(format_args!(
            "  APIC virtualization: APIC-access page {}, TPR shadow {}, x2APIC mode {}, APIC-register virtualization: {}, virtual-interrupt delivery: {}, posted interrupts: {}",
            yn(self.apic_access_page()),
            yn(self.tpr_shadow()),
            yn(self.virtualize_x2apic()),
            yn(self.apic_register_virtualization()),
            yn(self.virtual_interrupt_delivery()),
            yn(self.posted_interrupts())
        ));
        line(format_args!(
            "  preemption timer: {} (rate: TSC / {}), virtual NMIs: {}",
            yn(self.preemption_timer()),
            1u64 << self.preemption_timer_shift(),
            yn(self.virtual_nmis())
        ));
        match self.first_missing() {
            None => line(format_args!("  all required VMX features present")),
            Some(name) => line(format_args!("  MISSING required VMX feature: {name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    /// A CPU with everything: allowed-1 bits all set.
    fn full() -> VmxMsrs {
        VmxMsrs {
            basic: (1 << 55) | (6 << 50) | (0x1000 << 32) | 0x4,
            pinbased: 0xFFFF_FFFF_0000_0016,
            procbased: 0xFFFF_FFFF_0401_E172,
            exit: 0xFFFF_FFFF_0003_6DFF,
            entry: 0xFFFF_FFFF_0000_11FF,
            misc: 0x5,
            procbased2: 0xFFFF_FFFF_0000_0000,
            ept_vpid: u64::MAX,
        }
    }

    fn lines(c: &VmxCaps) -> Vec<String> {
        let mut out = Vec::new();
        c.report(&mut |a| out.push(std::format!("{a}")));
        out
    }

    #[test]
    fn full_cpu_has_everything() {
        let c = VmxCaps::new(full());
        assert_eq!(c.first_missing(), None);
        assert_eq!(c.vmcs_revision(), 4);
        assert_eq!(c.vmcs_size(), 4096);
        assert!(c.ept_2m() && c.ept_1g() && c.vpid() && c.posted_interrupts());
        assert_eq!(c.preemption_timer_shift(), 5);
        let l = lines(&c);
        assert!(
            l[0].contains("IA32_VMX_BASIC = 0x98100000000004"),
            "{}",
            l[0]
        );
        assert!(l.iter().any(|s| s.starts_with("  EPT: yes")));
        assert!(l.last().unwrap().contains("all required"));
    }

    #[test]
    fn missing_features_are_named() {
        let mut m = full();
        m.procbased2 &= !(1 << (32 + 7)); // unrestricted guest
        assert_eq!(VmxCaps::new(m).first_missing(), Some("unrestricted guest"));
        let mut m = full();
        m.procbased &= !(1 << (32 + 31)); // no secondary controls at all
        let c = VmxCaps::new(m);
        assert!(!c.ept() && !c.vpid());
        assert_eq!(
            c.first_missing(),
            Some("secondary processor-based controls")
        );
        assert!(lines(&c).last().unwrap().contains("MISSING"));
    }

    #[test]
    fn ept_bits_depend_on_ept_enable() {
        let mut m = full();
        m.procbased2 &= !(1 << (32 + 1)); // no EPT, VPID still there
        let c = VmxCaps::new(m);
        assert!(!c.ept_2m() && !c.ept_4level());
        assert!(c.vpid());
        assert_eq!(c.first_missing(), Some("EPT"));
    }
}
