//! VMCS field encodings (Intel SDM Vol. 3D Appendix B "Field Encoding in
//! VMCS", Tables B-1 to B-15). The encoding format is Vol. 3C §25.11.2
//! "VMREAD, VMWRITE, and Encodings of VMCS Fields", table "Structure of VMCS
//! Component Encoding". Table and section numbers follow the SDM editions in
//! which chapter 25 is "Virtual Machine Control Structures" (older editions
//! number the VMX chapters one lower).
//!
//! A field encoding is a 32-bit value:
//!
//! | bits  | meaning                                                     |
//! |-------|-------------------------------------------------------------|
//! | 0     | access type: 0 = full, 1 = high 32 bits of a 64-bit field  |
//! | 9:1   | index                                                       |
//! | 11:10 | type: 0 control, 1 VM-exit information (read-only), 2 guest state, 3 host state |
//! | 14:13 | width: 0 16-bit, 1 64-bit, 2 32-bit, 3 natural width        |
//!
//! The fields are split into one enum per width ([`Field16`], [`Field64`],
//! [`Field32`], [`FieldNat`]) so that the VMREAD/VMWRITE wrappers can take a
//! value of the right size: writing a `u16` to a 64-bit field does not
//! compile. Within an enum the variants are grouped by kind and named by it
//! (`Guest…`, `Host…`, read-only data `Exit…`/`Vm…`/`IdtVectoring…`/
//! `GuestPhysicalAddress`/`GuestLinearAddress`, everything else is a
//! control field); [`FieldKind`] decodes the kind from the encoding.

#[cfg(test)]
mod tests;

/// Width of a VMCS field, encoding bits 14:13 (SDM Vol. 3C Table 25-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldWidth {
    /// 16-bit field (width 0).
    Bits16,
    /// 64-bit field (width 1); its high half has encoding | 1.
    Bits64,
    /// 32-bit field (width 2).
    Bits32,
    /// Natural-width field (width 3): 64 bits on a processor with Intel 64.
    Natural,
}

impl FieldWidth {
    /// The width encoded in bits 14:13 of `encoding`.
    pub const fn from_encoding(encoding: u32) -> Self {
        match (encoding >> 13) & 3 {
            0 => Self::Bits16,
            1 => Self::Bits64,
            2 => Self::Bits32,
            _ => Self::Natural,
        }
    }
}

/// Kind of a VMCS field, encoding bits 11:10 (SDM Vol. 3C Table 25-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// VM-execution, VM-exit and VM-entry control fields (type 0).
    Control,
    /// VM-exit information fields, read-only (type 1).
    ReadOnlyData,
    /// Guest-state area (type 2).
    GuestState,
    /// Host-state area (type 3).
    HostState,
}

impl FieldKind {
    /// The kind encoded in bits 11:10 of `encoding`.
    pub const fn from_encoding(encoding: u32) -> Self {
        match (encoding >> 10) & 3 {
            0 => Self::Control,
            1 => Self::ReadOnlyData,
            2 => Self::GuestState,
            _ => Self::HostState,
        }
    }
}

/// Declares one enum of fields of a single width, with its list of all
/// variants, their names, and the encoding helpers.
macro_rules! vmcs_fields {
    (
        $(#[$meta:meta])*
        $name:ident, $width:expr;
        $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// The width every field of this type has.
            pub const WIDTH: FieldWidth = $width;
            /// Every field of this type, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The encoding VMREAD/VMWRITE take.
            pub const fn encoding(self) -> u32 {
                self as u32
            }

            /// The field's kind, from its encoding.
            pub const fn kind(self) -> FieldKind {
                FieldKind::from_encoding(self as u32)
            }

            /// The field's name as declared here (for VMCS dumps).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($variant), )*
                }
            }

            /// The field with this encoding, if it is declared here.
            pub fn from_encoding(encoding: u32) -> Option<Self> {
                Self::ALL.iter().copied().find(|f| f.encoding() == encoding)
            }
        }
    };
}

vmcs_fields! {
    /// 16-bit fields (SDM Vol. 3D §B.1, Tables B-1 to B-3).
    Field16, FieldWidth::Bits16;
    // --- 16-bit control fields (Table B-1) ---
    /// Virtual-processor identifier (VPID).
    Vpid = 0x0000,
    /// Posted-interrupt notification vector.
    PostedInterruptNotificationVector = 0x0002,
    /// EPTP index (for EPT-violation #VE and EPTP switching).
    EptpIndex = 0x0004,
    // --- 16-bit guest-state fields (Table B-2) ---
    /// Guest ES selector.
    GuestEsSelector = 0x0800,
    /// Guest CS selector.
    GuestCsSelector = 0x0802,
    /// Guest SS selector.
    GuestSsSelector = 0x0804,
    /// Guest DS selector.
    GuestDsSelector = 0x0806,
    /// Guest FS selector.
    GuestFsSelector = 0x0808,
    /// Guest GS selector.
    GuestGsSelector = 0x080A,
    /// Guest LDTR selector.
    GuestLdtrSelector = 0x080C,
    /// Guest TR selector.
    GuestTrSelector = 0x080E,
    /// Guest interrupt status (RVI in bits 7:0, SVI in 15:8), for
    /// virtual-interrupt delivery.
    GuestInterruptStatus = 0x0810,
    /// PML index.
    GuestPmlIndex = 0x0812,
    // --- 16-bit host-state fields (Table B-3) ---
    /// Host ES selector.
    HostEsSelector = 0x0C00,
    /// Host CS selector.
    HostCsSelector = 0x0C02,
    /// Host SS selector.
    HostSsSelector = 0x0C04,
    /// Host DS selector.
    HostDsSelector = 0x0C06,
    /// Host FS selector.
    HostFsSelector = 0x0C08,
    /// Host GS selector.
    HostGsSelector = 0x0C0A,
    /// Host TR selector.
    HostTrSelector = 0x0C0C,
}

vmcs_fields! {
    /// 64-bit fields (SDM Vol. 3D §B.2, Tables B-4 to B-7). The encodings
    /// are of the "full" access; [`Field64::high`] gives the high half.
    Field64, FieldWidth::Bits64;
    // --- 64-bit control fields (Table B-4) ---
    /// Address of I/O bitmap A (ports 0000h-7FFFh).
    IoBitmapA = 0x2000,
    /// Address of I/O bitmap B (ports 8000h-FFFFh).
    IoBitmapB = 0x2002,
    /// Address of the MSR bitmaps.
    MsrBitmap = 0x2004,
    /// VM-exit MSR-store address.
    ExitMsrStoreAddr = 0x2006,
    /// VM-exit MSR-load address.
    ExitMsrLoadAddr = 0x2008,
    /// VM-entry MSR-load address.
    EntryMsrLoadAddr = 0x200A,
    /// Executive-VMCS pointer.
    ExecutiveVmcsPointer = 0x200C,
    /// PML address.
    PmlAddress = 0x200E,
    /// TSC offset.
    TscOffset = 0x2010,
    /// Virtual-APIC address.
    VirtualApicAddr = 0x2012,
    /// APIC-access address.
    ApicAccessAddr = 0x2014,
    /// Posted-interrupt descriptor address.
    PostedInterruptDescAddr = 0x2016,
    /// VM-function controls.
    VmFunctionControls = 0x2018,
    /// EPT pointer (EPTP, §25.6.11).
    EptPointer = 0x201A,
    /// EOI-exit bitmap 0 (vectors 0-63).
    EoiExitBitmap0 = 0x201C,
    /// EOI-exit bitmap 1 (vectors 64-127).
    EoiExitBitmap1 = 0x201E,
    /// EOI-exit bitmap 2 (vectors 128-191).
    EoiExitBitmap2 = 0x2020,
    /// EOI-exit bitmap 3 (vectors 192-255).
    EoiExitBitmap3 = 0x2022,
    /// EPTP-list address.
    EptpListAddr = 0x2024,
    /// VMREAD-bitmap address.
    VmreadBitmapAddr = 0x2026,
    /// VMWRITE-bitmap address.
    VmwriteBitmapAddr = 0x2028,
    /// Virtualization-exception information address.
    VeInfoAddr = 0x202A,
    /// XSS-exiting bitmap.
    XssExitingBitmap = 0x202C,
    /// TSC multiplier.
    TscMultiplier = 0x2032,
    /// Tertiary processor-based VM-execution controls.
    TertiaryProcBasedControls = 0x2034,
    // --- 64-bit read-only data field (Table B-5) ---
    /// Guest-physical address of an EPT violation or misconfiguration.
    GuestPhysicalAddress = 0x2400,
    // --- 64-bit guest-state fields (Table B-6) ---
    /// VMCS link pointer (all ones when VMCS shadowing is unused).
    GuestVmcsLinkPointer = 0x2800,
    /// Guest IA32_DEBUGCTL.
    GuestIa32Debugctl = 0x2802,
    /// Guest IA32_PAT.
    GuestIa32Pat = 0x2804,
    /// Guest IA32_EFER.
    GuestIa32Efer = 0x2806,
    /// Guest IA32_PERF_GLOBAL_CTRL.
    GuestIa32PerfGlobalCtrl = 0x2808,
    /// Guest PDPTE0 (PAE paging with EPT).
    GuestPdpte0 = 0x280A,
    /// Guest PDPTE1.
    GuestPdpte1 = 0x280C,
    /// Guest PDPTE2.
    GuestPdpte2 = 0x280E,
    /// Guest PDPTE3.
    GuestPdpte3 = 0x2810,
    /// Guest IA32_BNDCFGS.
    GuestIa32Bndcfgs = 0x2812,
    // --- 64-bit host-state fields (Table B-7) ---
    /// Host IA32_PAT.
    HostIa32Pat = 0x2C00,
    /// Host IA32_EFER.
    HostIa32Efer = 0x2C02,
    /// Host IA32_PERF_GLOBAL_CTRL.
    HostIa32PerfGlobalCtrl = 0x2C04,
}

impl Field64 {
    /// The encoding of the field's high 32 bits (access type 1), for
    /// VMREAD/VMWRITE outside 64-bit mode.
    pub const fn high(self) -> u32 {
        self as u32 | 1
    }
}

vmcs_fields! {
    /// 32-bit fields (SDM Vol. 3D §B.3, Tables B-8 to B-11).
    Field32, FieldWidth::Bits32;
    // --- 32-bit control fields (Table B-8) ---
    /// Pin-based VM-execution controls (§25.6.1).
    PinBasedControls = 0x4000,
    /// Primary processor-based VM-execution controls (§25.6.2).
    ProcBasedControls = 0x4002,
    /// Exception bitmap.
    ExceptionBitmap = 0x4004,
    /// Page-fault error-code mask.
    PageFaultErrorCodeMask = 0x4006,
    /// Page-fault error-code match.
    PageFaultErrorCodeMatch = 0x4008,
    /// CR3-target count.
    Cr3TargetCount = 0x400A,
    /// Primary VM-exit controls (§25.7.1).
    ExitControls = 0x400C,
    /// VM-exit MSR-store count.
    ExitMsrStoreCount = 0x400E,
    /// VM-exit MSR-load count.
    ExitMsrLoadCount = 0x4010,
    /// VM-entry controls (§25.8.1).
    EntryControls = 0x4012,
    /// VM-entry MSR-load count.
    EntryMsrLoadCount = 0x4014,
    /// VM-entry interruption-information field (§25.8.3, Table 25-17).
    EntryInterruptionInfo = 0x4016,
    /// VM-entry exception error code.
    EntryExceptionErrorCode = 0x4018,
    /// VM-entry instruction length.
    EntryInstructionLength = 0x401A,
    /// TPR threshold.
    TprThreshold = 0x401C,
    /// Secondary processor-based VM-execution controls.
    SecondaryProcBasedControls = 0x401E,
    /// PLE_Gap (PAUSE-loop exiting).
    PleGap = 0x4020,
    /// PLE_Window (PAUSE-loop exiting).
    PleWindow = 0x4022,
    // --- 32-bit read-only data fields (Table B-9) ---
    /// VM-instruction error (§31.4).
    VmInstructionError = 0x4400,
    /// Exit reason (§25.9.1).
    ExitReason = 0x4402,
    /// VM-exit interruption information (Table 25-19).
    ExitInterruptionInfo = 0x4404,
    /// VM-exit interruption error code.
    ExitInterruptionErrorCode = 0x4406,
    /// IDT-vectoring information (§25.9.3).
    IdtVectoringInfo = 0x4408,
    /// IDT-vectoring error code.
    IdtVectoringErrorCode = 0x440A,
    /// VM-exit instruction length.
    ExitInstructionLength = 0x440C,
    /// VM-exit instruction information.
    ExitInstructionInfo = 0x440E,
    // --- 32-bit guest-state fields (Table B-10) ---
    /// Guest ES limit.
    GuestEsLimit = 0x4800,
    /// Guest CS limit.
    GuestCsLimit = 0x4802,
    /// Guest SS limit.
    GuestSsLimit = 0x4804,
    /// Guest DS limit.
    GuestDsLimit = 0x4806,
    /// Guest FS limit.
    GuestFsLimit = 0x4808,
    /// Guest GS limit.
    GuestGsLimit = 0x480A,
    /// Guest LDTR limit.
    GuestLdtrLimit = 0x480C,
    /// Guest TR limit.
    GuestTrLimit = 0x480E,
    /// Guest GDTR limit.
    GuestGdtrLimit = 0x4810,
    /// Guest IDTR limit.
    GuestIdtrLimit = 0x4812,
    /// Guest ES access rights (Table 25-2).
    GuestEsAccessRights = 0x4814,
    /// Guest CS access rights.
    GuestCsAccessRights = 0x4816,
    /// Guest SS access rights.
    GuestSsAccessRights = 0x4818,
    /// Guest DS access rights.
    GuestDsAccessRights = 0x481A,
    /// Guest FS access rights.
    GuestFsAccessRights = 0x481C,
    /// Guest GS access rights.
    GuestGsAccessRights = 0x481E,
    /// Guest LDTR access rights.
    GuestLdtrAccessRights = 0x4820,
    /// Guest TR access rights.
    GuestTrAccessRights = 0x4822,
    /// Guest interruptibility state (Table 25-3).
    GuestInterruptibilityState = 0x4824,
    /// Guest activity state (§25.4.2: 0 active, 1 HLT, 2 shutdown, 3 wait-for-SIPI).
    GuestActivityState = 0x4826,
    /// Guest SMBASE.
    GuestSmbase = 0x4828,
    /// Guest IA32_SYSENTER_CS.
    GuestIa32SysenterCs = 0x482A,
    /// VMX-preemption timer value.
    GuestPreemptionTimerValue = 0x482E,
    // --- 32-bit host-state field (Table B-11) ---
    /// Host IA32_SYSENTER_CS.
    HostIa32SysenterCs = 0x4C00,
}

vmcs_fields! {
    /// Natural-width fields (SDM Vol. 3D §B.4, Tables B-12 to B-15).
    FieldNat, FieldWidth::Natural;
    // --- natural-width control fields (Table B-12) ---
    /// CR0 guest/host mask.
    Cr0GuestHostMask = 0x6000,
    /// CR4 guest/host mask.
    Cr4GuestHostMask = 0x6002,
    /// CR0 read shadow.
    Cr0ReadShadow = 0x6004,
    /// CR4 read shadow.
    Cr4ReadShadow = 0x6006,
    /// CR3-target value 0.
    Cr3Target0 = 0x6008,
    /// CR3-target value 1.
    Cr3Target1 = 0x600A,
    /// CR3-target value 2.
    Cr3Target2 = 0x600C,
    /// CR3-target value 3.
    Cr3Target3 = 0x600E,
    // --- natural-width read-only data fields (Table B-13) ---
    /// Exit qualification (§28.2.1).
    ExitQualification = 0x6400,
    /// I/O RCX (SMIs during I/O instructions).
    ExitIoRcx = 0x6402,
    /// I/O RSI.
    ExitIoRsi = 0x6404,
    /// I/O RDI.
    ExitIoRdi = 0x6406,
    /// I/O RIP.
    ExitIoRip = 0x6408,
    /// Guest-linear address.
    GuestLinearAddress = 0x640A,
    // --- natural-width guest-state fields (Table B-14) ---
    /// Guest CR0.
    GuestCr0 = 0x6800,
    /// Guest CR3.
    GuestCr3 = 0x6802,
    /// Guest CR4.
    GuestCr4 = 0x6804,
    /// Guest ES base.
    GuestEsBase = 0x6806,
    /// Guest CS base.
    GuestCsBase = 0x6808,
    /// Guest SS base.
    GuestSsBase = 0x680A,
    /// Guest DS base.
    GuestDsBase = 0x680C,
    /// Guest FS base.
    GuestFsBase = 0x680E,
    /// Guest GS base.
    GuestGsBase = 0x6810,
    /// Guest LDTR base.
    GuestLdtrBase = 0x6812,
    /// Guest TR base.
    GuestTrBase = 0x6814,
    /// Guest GDTR base.
    GuestGdtrBase = 0x6816,
    /// Guest IDTR base.
    GuestIdtrBase = 0x6818,
    /// Guest DR7.
    GuestDr7 = 0x681A,
    /// Guest RSP.
    GuestRsp = 0x681C,
    /// Guest RIP.
    GuestRip = 0x681E,
    /// Guest RFLAGS.
    GuestRflags = 0x6820,
    /// Guest pending debug exceptions.
    GuestPendingDebugExceptions = 0x6822,
    /// Guest IA32_SYSENTER_ESP.
    GuestIa32SysenterEsp = 0x6824,
    /// Guest IA32_SYSENTER_EIP.
    GuestIa32SysenterEip = 0x6826,
    // --- natural-width host-state fields (Table B-15) ---
    /// Host CR0.
    HostCr0 = 0x6C00,
    /// Host CR3.
    HostCr3 = 0x6C02,
    /// Host CR4.
    HostCr4 = 0x6C04,
    /// Host FS base.
    HostFsBase = 0x6C06,
    /// Host GS base.
    HostGsBase = 0x6C08,
    /// Host TR base.
    HostTrBase = 0x6C0A,
    /// Host GDTR base.
    HostGdtrBase = 0x6C0C,
    /// Host IDTR base.
    HostIdtrBase = 0x6C0E,
    /// Host IA32_SYSENTER_ESP.
    HostIa32SysenterEsp = 0x6C10,
    /// Host IA32_SYSENTER_EIP.
    HostIa32SysenterEip = 0x6C12,
    /// Host RSP.
    HostRsp = 0x6C14,
    /// Host RIP.
    HostRip = 0x6C16,
}

/// A field of any width, for code that walks the whole VMCS (dumps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnyField {
    /// A 16-bit field.
    F16(Field16),
    /// A 64-bit field.
    F64(Field64),
    /// A 32-bit field.
    F32(Field32),
    /// A natural-width field.
    Nat(FieldNat),
}

impl AnyField {
    /// The encoding.
    pub const fn encoding(self) -> u32 {
        match self {
            Self::F16(f) => f.encoding(),
            Self::F64(f) => f.encoding(),
            Self::F32(f) => f.encoding(),
            Self::Nat(f) => f.encoding(),
        }
    }

    /// The declared width (that of the enum holding the field).
    pub const fn width(self) -> FieldWidth {
        match self {
            Self::F16(_) => Field16::WIDTH,
            Self::F64(_) => Field64::WIDTH,
            Self::F32(_) => Field32::WIDTH,
            Self::Nat(_) => FieldNat::WIDTH,
        }
    }

    /// The name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F16(f) => f.name(),
            Self::F64(f) => f.name(),
            Self::F32(f) => f.name(),
            Self::Nat(f) => f.name(),
        }
    }

    /// The field with this encoding, of whichever width the encoding says.
    pub fn from_encoding(encoding: u32) -> Option<Self> {
        match FieldWidth::from_encoding(encoding) {
            FieldWidth::Bits16 => Field16::from_encoding(encoding).map(Self::F16),
            FieldWidth::Bits64 => Field64::from_encoding(encoding).map(Self::F64),
            FieldWidth::Bits32 => Field32::from_encoding(encoding).map(Self::F32),
            FieldWidth::Natural => FieldNat::from_encoding(encoding).map(Self::Nat),
        }
    }

    /// Every declared field, 16-bit first, then 64-bit, 32-bit, natural.
    pub fn all() -> impl Iterator<Item = Self> {
        let f16 = Field16::ALL.iter().copied().map(Self::F16);
        let f64 = Field64::ALL.iter().copied().map(Self::F64);
        let f32 = Field32::ALL.iter().copied().map(Self::F32);
        let nat = FieldNat::ALL.iter().copied().map(Self::Nat);
        f16.chain(f64).chain(f32).chain(nat)
    }
}
