//! The APIC's core state: IA32_APIC_BASE, reset, priorities and the
//! accept/acknowledge/EOI cycle of fixed interrupts.

use super::regs::{self, RegFile};
use super::timer::TimerState;
use super::{Acceptance, Action, Actions, ApicFault, ApicMode, VLapicConfig};

/// IA32_APIC_BASE bit 8: this is the bootstrap processor (SDM §12.4.4).
const BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 10: x2APIC mode (SDM §12.12.1).
const BASE_EXTD: u64 = 1 << 10;
/// IA32_APIC_BASE bit 11: APIC global enable.
const BASE_EN: u64 = 1 << 11;

/// The virtual local APIC of one vCPU.
#[derive(Debug, Clone)]
pub struct VLapic {
    pub(super) cfg: VLapicConfig,
    /// IA32_APIC_BASE as the guest reads it.
    pub(super) base: u64,
    /// The registers, keyed by xAPIC offset. PPR, APR and the current count
    /// are computed when read; ID and LDR hold the format of the current mode.
    pub(super) regs: RegFile,
    /// Errors detected since the last ESR write (SDM §12.5.3: the visible ESR
    /// is only updated by a write).
    pub(super) esr_pending: u32,
    pub(super) timer: TimerState,
}

impl VLapic {
    /// A local APIC as after power-up (SDM §12.4.7.1): enabled in xAPIC mode
    /// at 0xFEE00000, software-disabled, all LVT entries masked.
    pub fn new(mut cfg: VLapicConfig) -> Self {
        cfg.tsc_khz = cfg.tsc_khz.max(1);
        cfg.bus_khz = cfg.bus_khz.max(1);
        cfg.phys_addr_bits = cfg.phys_addr_bits.clamp(32, 52);
        let mut lapic = Self {
            base: super::DEFAULT_APIC_BASE | BASE_EN | if cfg.bsp { BASE_BSP } else { 0 },
            cfg,
            regs: RegFile::zeroed(),
            esr_pending: 0,
            timer: TimerState::default(),
        };
        lapic.reset_registers(lapic.initial_xapic_id_reg());
        lapic
    }

    /// The configuration this APIC was built with.
    pub fn config(&self) -> &VLapicConfig {
        &self.cfg
    }

    /// The current mode, from IA32_APIC_BASE.
    pub fn mode(&self) -> ApicMode {
        match (self.base & BASE_EN != 0, self.base & BASE_EXTD != 0) {
            (true, true) => ApicMode::X2Apic,
            (true, false) => ApicMode::XApic,
            _ => ApicMode::Disabled,
        }
    }

    /// Whether the APIC is globally enabled and SVR bit 8 is set.
    pub fn software_enabled(&self) -> bool {
        self.mode() != ApicMode::Disabled && self.regs.get(regs::SVR) & regs::SVR_ENABLE != 0
    }

    /// The APIC ID in the current mode's format: the 32-bit x2APIC ID in
    /// x2APIC mode, the 8-bit xAPIC ID otherwise.
    pub fn id(&self) -> u32 {
        match self.mode() {
            ApicMode::X2Apic => self.cfg.apic_id,
            _ => self.regs.get(regs::ID) >> 24,
        }
    }

    /// The x2APIC logical ID, derived from the x2APIC ID (SDM §12.12.10.2):
    /// cluster `id >> 4` in bits 31:16, bit `id & 15` set in bits 15:0.
    pub fn x2apic_ldr(&self) -> u32 {
        ((self.cfg.apic_id >> 4) << 16) | (1 << (self.cfg.apic_id & 0xF))
    }

    fn initial_xapic_id_reg(&self) -> u32 {
        (self.cfg.apic_id & 0xFF) << 24
    }

    /// The version register: see the module documentation.
    pub(super) fn version(&self) -> u32 {
        let directed = if self.cfg.directed_eoi {
            regs::VERSION_DIRECTED_EOI
        } else {
            0
        };
        regs::APIC_VERSION | (regs::MAX_LVT_ENTRY << 16) | directed
    }

    /// Puts every register in its power-up state (SDM §12.4.7.1) except the
    /// ID register, which gets `id_reg`: IRR, ISR, TMR, ICR, LDR, TPR, the
    /// timer counts and divide configuration zero, DFR all ones, LVT entries
    /// masked, SVR 0xFF, the timer stopped.
    fn reset_registers(&mut self, id_reg: u32) {
        self.regs = RegFile::zeroed();
        self.regs.set(regs::ID, id_reg);
        self.regs.set(regs::VERSION, self.version());
        self.regs.set(regs::DFR, !0);
        self.regs.set(regs::SVR, regs::SVR_RESET);
        for lvt in regs::LVTS {
            self.regs.set(lvt, regs::LVT_MASKED);
        }
        if self.mode() == ApicMode::X2Apic {
            self.regs.set(regs::LDR, self.x2apic_ldr());
        }
        self.esr_pending = 0;
        self.timer = TimerState::default();
    }

    /// An INIT (IPI or signal) reaching this APIC: every register is
    /// re-initialized except the ID (and, in x2APIC mode, the derived LDR);
    /// IA32_APIC_BASE and the mode are kept (SDM §12.4.7.3, §12.12.5.1). The
    /// caller puts the vCPU in wait-for-SIPI.
    pub fn init_signal(&mut self) -> Actions {
        if self.mode() == ApicMode::Disabled {
            return Actions::none();
        }
        self.reset_registers(self.regs.get(regs::ID));
        let mut actions = Actions::none();
        actions.push(Action::TimerChanged);
        actions
    }

    // --- IA32_APIC_BASE (SDM §12.4.4, §12.12.5) ------------------------------

    /// IA32_APIC_BASE as the guest reads it.
    pub fn apic_base(&self) -> u64 {
        self.base
    }

    /// The APIC's physical base address.
    pub fn base_address(&self) -> u64 {
        self.base & self.address_mask()
    }

    fn address_mask(&self) -> u64 {
        ((1u64 << self.cfg.phys_addr_bits) - 1) & !0xFFF
    }

    /// WRMSR IA32_APIC_BASE, with the state transitions of SDM §12.12.5.1
    /// (Figure 12-27):
    ///
    /// - reserved bits (7:0, 9, above MAXPHYADDR; EXTD without x2APIC
    ///   support) and the invalid state EN=0/EXTD=1 fault;
    /// - disabled → xAPIC, xAPIC → x2APIC, xAPIC or x2APIC → disabled are
    ///   legal; x2APIC → xAPIC and disabled → x2APIC fault;
    /// - going to disabled resets the APIC to its power-up state except the ID
    ///   (SDM §12.4.3); entering x2APIC keeps the ID as the x2APIC ID and
    ///   derives the LDR from it;
    /// - the BSP flag is not the guest's to change: it is kept.
    pub fn apic_base_write(&mut self, value: u64) -> Result<Actions, ApicFault> {
        let extd = if self.cfg.x2apic { BASE_EXTD } else { 0 };
        let allowed = self.address_mask() | BASE_BSP | BASE_EN | extd;
        if value & !allowed != 0 {
            return Err(ApicFault::Gp);
        }
        let new_mode = match (value & BASE_EN != 0, value & BASE_EXTD != 0) {
            (true, true) => ApicMode::X2Apic,
            (true, false) => ApicMode::XApic,
            (false, false) => ApicMode::Disabled,
            (false, true) => return Err(ApicFault::Gp),
        };
        let old_mode = self.mode();
        match (old_mode, new_mode) {
            (ApicMode::X2Apic, ApicMode::XApic) | (ApicMode::Disabled, ApicMode::X2Apic) => {
                return Err(ApicFault::Gp);
            }
            _ => {}
        }

        let mut actions = Actions::none();
        let from = self.base_address();
        self.base = (value & !BASE_BSP) | (self.base & BASE_BSP);
        let to = self.base_address();
        if old_mode != new_mode {
            match new_mode {
                ApicMode::Disabled => {
                    // The xAPIC ID survives (it may have been rewritten); an
                    // x2APIC ID falls back to the initial xAPIC ID.
                    let id_reg = match old_mode {
                        ApicMode::XApic => self.regs.get(regs::ID),
                        _ => self.initial_xapic_id_reg(),
                    };
                    self.reset_registers(id_reg);
                    actions.push(Action::TimerChanged);
                }
                ApicMode::X2Apic => {
                    self.regs.set(regs::ID, self.cfg.apic_id);
                    self.regs.set(regs::LDR, self.x2apic_ldr());
                    // An 8-bit xAPIC destination means nothing as a 32-bit one.
                    self.regs.set(regs::ICR_HI, 0);
                }
                ApicMode::XApic => {}
            }
            actions.push(Action::ModeChanged(new_mode));
        }
        if from != to {
            actions.push(Action::BaseMoved { from, to });
        }
        Ok(actions)
    }

    // --- Priorities (SDM §12.8.3.1) -------------------------------------------

    /// The task priority register (CR8 is its bits 7:4, SDM §12.8.6).
    pub fn tpr(&self) -> u8 {
        self.regs.get(regs::TPR) as u8
    }

    /// Sets the TPR (a MOV to CR8 sets `cr8 << 4`).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.regs.set(regs::TPR, u32::from(tpr));
    }

    /// The processor priority: the TPR if its class is at least the class of
    /// the highest in-service vector, else that class (SDM §12.8.3.1).
    pub fn ppr(&self) -> u8 {
        let tpr = self.tpr();
        let isrv = self.svi();
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xF0
        }
    }

    /// The arbitration priority (SDM §12.6.2.4; xAPIC only): the TPR if its
    /// class is at least the classes of the highest pending and in-service
    /// vectors, else the highest of those classes.
    pub(super) fn apr(&self) -> u8 {
        let tpr = self.tpr();
        let top = self.rvi().max(self.svi());
        if tpr >> 4 >= top >> 4 {
            tpr
        } else {
            top & 0xF0
        }
    }

    /// The highest vector in IRR, 0 if none: the VMCS RVI (SDM Vol. 3C §30.1.2).
    pub fn rvi(&self) -> u8 {
        self.regs.highest(regs::IRR).unwrap_or(0)
    }

    /// The highest vector in ISR, 0 if none: the VMCS SVI.
    pub fn svi(&self) -> u8 {
        self.regs.highest(regs::ISR).unwrap_or(0)
    }

    /// The VMCS guest-interrupt status: SVI in bits 15:8, RVI in bits 7:0.
    pub fn guest_interrupt_status(&self) -> u16 {
        u16::from(self.svi()) << 8 | u16::from(self.rvi())
    }

    /// The EOI-exit bitmap for virtual-interrupt delivery: the level-triggered
    /// vectors (TMR), whose EOI the IO-APIC must hear about. Bit `v % 64` of
    /// word `v / 64` is vector `v`, as in the VMCS fields.
    pub fn eoi_exit_bitmap(&self) -> [u64; 4] {
        as_vmcs_words(self.regs.bitmap(regs::TMR))
    }

    /// The in-service vectors (ISR) in the layout of the VMCS EOI-exit
    /// bitmap: bit `v % 64` of word `v / 64` is vector `v`.
    pub fn in_service_bitmap(&self) -> [u64; 4] {
        as_vmcs_words(self.regs.bitmap(regs::ISR))
    }

    /// How many vectors are pending (set in IRR).
    pub fn pending_count(&self) -> u32 {
        self.regs
            .bitmap(regs::IRR)
            .iter()
            .map(|w| w.count_ones())
            .sum()
    }

    /// For TPR shadow without virtual-interrupt delivery: the TPR threshold
    /// (SDM Vol. 3C §30.1.2) — the class of the highest pending vector if the
    /// TPR holds it back, else 0 — so that lowering the TPR below it exits.
    pub fn tpr_threshold(&self) -> u8 {
        match self.regs.highest(regs::IRR) {
            Some(v) if self.highest_pending().is_none() && v >> 4 > self.svi() >> 4 => v >> 4,
            _ => 0,
        }
    }

    // --- Accept, acknowledge, EOI (SDM §12.8.4, §12.8.5) ----------------------

    /// A fixed or lowest-priority interrupt reaches this APIC (an IPI, an
    /// IO-APIC or MSI message, a physical interrupt that belongs to the guest,
    /// or a local LVT source). It becomes pending in IRR; TMR records its
    /// trigger mode (SDM §12.8.4).
    pub fn accept_interrupt(&mut self, vector: u8, level_triggered: bool) -> Acceptance {
        if self.mode() == ApicMode::Disabled {
            return Acceptance::HardwareDisabled;
        }
        if !self.software_enabled() {
            return Acceptance::SoftwareDisabled;
        }
        if vector < 16 {
            self.signal_error(regs::ESR_RECEIVE_ILLEGAL_VECTOR);
            return Acceptance::IllegalVector;
        }
        self.regs.put(regs::TMR, vector, level_triggered);
        if self.regs.test(regs::IRR, vector) {
            return Acceptance::AlreadyPending;
        }
        self.regs.put(regs::IRR, vector, true);
        Acceptance::Accepted
    }

    /// The highest pending vector the processor may take now: its class is
    /// above the PPR class (SDM §12.8.3.1). `None` also when nothing is
    /// pending. (Whether the vCPU can take it — RFLAGS.IF, interrupt shadow —
    /// is the caller's business.)
    pub fn highest_pending(&self) -> Option<u8> {
        let v = self.regs.highest(regs::IRR)?;
        (v >> 4 > self.ppr() >> 4).then_some(v)
    }

    /// The processor takes `vector` (an interrupt was injected): it moves from
    /// IRR to ISR. Refused (false, nothing changes) unless `vector` is
    /// [`Self::highest_pending`], so ISR stays a stack of strictly rising
    /// priority classes.
    pub fn ack(&mut self, vector: u8) -> bool {
        if self.highest_pending() != Some(vector) {
            return false;
        }
        self.regs.put(regs::IRR, vector, false);
        self.regs.put(regs::ISR, vector, true);
        true
    }

    /// An EOI: the highest in-service vector is done (SDM §12.8.5). If it was
    /// level-triggered, the IO-APIC is told unless SVR bit 12 suppresses the
    /// broadcast (the guest then EOIs the IO-APIC itself).
    pub fn eoi(&mut self) -> Actions {
        match self.regs.highest(regs::ISR) {
            Some(vector) => self.end_of_interrupt(vector),
            None => Actions::none(),
        }
    }

    /// An EOI-induced VM exit (SDM Vol. 3C §30.1.4): the CPU already removed
    /// `vector` from the virtual ISR; do the same and report the broadcast.
    pub fn virtual_eoi(&mut self, vector: u8) -> Actions {
        self.end_of_interrupt(vector)
    }

    fn end_of_interrupt(&mut self, vector: u8) -> Actions {
        let mut actions = Actions::none();
        self.regs.put(regs::ISR, vector, false);
        let suppressed = self.cfg.directed_eoi
            && self.regs.get(regs::SVR) & regs::SVR_SUPPRESS_EOI_BROADCAST != 0;
        if self.regs.test(regs::TMR, vector) && !suppressed {
            actions.push(Action::EoiBroadcast(vector));
        }
        actions
    }

    /// Records an error (SDM §12.5.3) and raises the LVT error interrupt if
    /// it is unmasked. An illegal vector in the LVT error entry itself only
    /// adds "received illegal vector", without recursing.
    pub(super) fn signal_error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        let lvt = self.regs.get(regs::LVT_ERROR);
        if !self.software_enabled() || lvt & regs::LVT_MASKED != 0 {
            return;
        }
        let vector = lvt as u8;
        if vector < 16 {
            self.esr_pending |= regs::ESR_RECEIVE_ILLEGAL_VECTOR;
        } else {
            self.regs.put(regs::TMR, vector, false);
            self.regs.put(regs::IRR, vector, true);
        }
    }

    /// The LVT LINT0 entry (bits as in SDM §12.5.1, Figure 12-8).
    pub fn lvt_lint0(&self) -> u32 {
        self.regs.get(regs::LVT_LINT0)
    }

    /// The LVT LINT1 entry.
    pub fn lvt_lint1(&self) -> u32 {
        self.regs.get(regs::LVT_LINT1)
    }

    /// Whether an 8259 PIC's INTR output reaches the processor: the APIC is
    /// globally disabled (LINT0 is then the INTR pin, SDM §12.4.3), or LINT0
    /// is unmasked in ExtINT mode (delivery mode 111b). The caller then
    /// injects the PIC's vector directly, without IRR.
    pub fn accepts_pic_interrupts(&self) -> bool {
        let lint0 = self.lvt_lint0();
        self.mode() == ApicMode::Disabled
            || (self.software_enabled() && lint0 & regs::LVT_MASKED == 0 && (lint0 >> 8) & 7 == 7)
    }

    /// Whether LINT1 is unmasked in NMI mode (delivery mode 100b), the usual
    /// route of the legacy NMI.
    pub fn lint1_delivers_nmi(&self) -> bool {
        let lint1 = self.lvt_lint1();
        self.software_enabled() && lint1 & regs::LVT_MASKED == 0 && (lint1 >> 8) & 7 == 4
    }
}

/// Eight 32-bit APIC bitmap words as the four 64-bit words of a VMCS bitmap
/// (SDM Vol. 3C §25.6.8: EOI-exit bitmap 0 holds vectors 0-63).
fn as_vmcs_words(words: [u32; 8]) -> [u64; 4] {
    core::array::from_fn(|i| u64::from(words[2 * i]) | u64::from(words[2 * i + 1]) << 32)
}
