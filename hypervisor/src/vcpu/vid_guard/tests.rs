//! Host tests of the entry gate: the cases of the module documentation, the
//! interleaving that hung dom0, and properties over arbitrary APIC states
//! checked against the delivery rule of SDM Vol. 3C §30.2.2.

use proptest::prelude::*;

use super::*;
use crate::vlapic::regs::{IRR, ISR, SVR, TPR};
use crate::vlapic::{VLapic, VLapicConfig};

const OPEN: GuestWindow = GuestWindow {
    interrupts_enabled: true,
    shadowed: false,
    injecting: false,
};
const IF_CLEAR: GuestWindow = GuestWindow {
    interrupts_enabled: false,
    ..OPEN
};

/// An enabled xAPIC whose IRR, ISR and TPR are as given (through the
/// virtual-APIC page, as the CPU would leave them).
fn lapic(irr: &[u8], isr: &[u8], tpr: u8) -> VLapic {
    let mut l = VLapic::new(VLapicConfig::new(0, true, 2_000_000, 100_000));
    let _ = l.mmio_write(SVR, 0x1FF, 0);
    let mut page = [0u8; 4096];
    let mut set = |base: u32, v: u8| {
        let at = (base + u32::from(v / 32) * 16) as usize;
        let word = u32::from_le_bytes(page[at..at + 4].try_into().unwrap()) | 1 << (v % 32);
        page[at..at + 4].copy_from_slice(&word.to_le_bytes());
    };
    irr.iter().for_each(|&v| set(IRR, v));
    isr.iter().for_each(|&v| set(ISR, v));
    page[TPR as usize] = tpr;
    l.from_page(&page);
    l
}

fn bit(v: u8) -> [u64; 4] {
    let mut bits = [0; 4];
    bits[usize::from(v / 64)] |= 1 << (v % 64);
    bits
}

fn or(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    core::array::from_fn(|i| a[i] | b[i])
}

#[test]
fn the_window_is_read_from_guest_state() {
    assert!(GuestWindow::from_guest_state(0x202, 0, 0).open());
    assert!(!GuestWindow::from_guest_state(0x002, 0, 0).open());
    assert!(
        !GuestWindow::from_guest_state(0x202, 1, 0).open(),
        "STI blocking"
    );
    assert!(
        !GuestWindow::from_guest_state(0x202, 2, 0).open(),
        "MOV SS blocking"
    );
    assert!(
        GuestWindow::from_guest_state(0x202, 4, 0).open(),
        "SMI blocking is not interrupt blocking"
    );
    assert!(
        GuestWindow::from_guest_state(0x202, 8, 0).open(),
        "NMI blocking is not interrupt blocking"
    );
    assert!(
        !GuestWindow::from_guest_state(0x202, 0, 0x8000_030E).open(),
        "a #PF injected at this entry"
    );
    assert!(
        GuestWindow::from_guest_state(0x202, 0, 0x0000_030E).open(),
        "valid bit clear: nothing injected"
    );
}

#[test]
fn nothing_pending_shows_nothing() {
    let g = gate(IF_CLEAR, &lapic(&[], &[0x31], 0));
    assert_eq!(
        g,
        Gate {
            rvi: 0,
            svi: 0x31,
            window_exiting: false,
            eoi_exits: [0; 4],
            held: false
        }
    );
    assert_eq!(g.interrupt_status(), 0x3100);
}

#[test]
fn a_lone_deliverable_vector_goes_to_rvi_when_the_guest_can_take_it() {
    let g = gate(OPEN, &lapic(&[0xEC], &[], 0x10));
    assert_eq!(
        g,
        Gate {
            rvi: 0xEC,
            svi: 0,
            window_exiting: false,
            eoi_exits: [0; 4],
            held: false
        }
    );
}

#[test]
fn a_deliverable_vector_waits_for_the_window_when_the_guest_cannot_take_it() {
    for window in [
        IF_CLEAR,
        GuestWindow {
            shadowed: true,
            ..OPEN
        },
        GuestWindow {
            injecting: true,
            ..OPEN
        },
    ] {
        let g = gate(window, &lapic(&[0xEC], &[], 0x10));
        assert_eq!(g.rvi, 0, "{window:?}");
        assert!(g.window_exiting && g.held, "{window:?}");
    }
}

#[test]
fn vectors_behind_the_delivered_one_make_the_eois_exit() {
    let g = gate(OPEN, &lapic(&[0xFB, 0xEC, 0x41], &[0x31], 0));
    assert_eq!(g.rvi, 0xFB);
    assert_eq!(g.eoi_exits, or(bit(0xFB), bit(0x31)));
    assert!(!g.window_exiting && !g.held);
}

#[test]
fn a_vector_behind_one_in_service_is_held_until_that_eoi_exits() {
    let g = gate(OPEN, &lapic(&[0xEC], &[0xFB], 0x10));
    assert_eq!(g.rvi, 0);
    assert_eq!(g.svi, 0xFB);
    assert_eq!(g.eoi_exits, bit(0xFB));
    assert!(g.held && !g.window_exiting);
    // Same class as the one in service: also held.
    let g = gate(OPEN, &lapic(&[0xE1], &[0xEC], 0));
    assert_eq!((g.rvi, g.eoi_exits, g.held), (0, bit(0xEC), true));
}

#[test]
fn a_vector_held_by_the_tpr_alone_stays_in_rvi() {
    let g = gate(IF_CLEAR, &lapic(&[0x45], &[0x31], 0x50));
    assert_eq!(
        g,
        Gate {
            rvi: 0x45,
            svi: 0x31,
            window_exiting: false,
            eoi_exits: [0; 4],
            held: false
        }
    );
}

/// The interleaving behind the dom0 hang: the call-function IPI (0xFB) in
/// service, Linux EOIs it early in its handler with IF = 0, and the timer
/// (0xEC) becomes pending meanwhile. It must reach the guest only once the
/// handler has re-enabled interrupts.
#[test]
fn the_timer_is_not_delivered_inside_the_ipi_handler() {
    // Timer pending behind the IPI in service: held, the IPI's EOI exits.
    let g = gate(IF_CLEAR, &lapic(&[0xEC], &[0xFB], 0x10));
    assert_eq!((g.rvi, g.eoi_exits), (0, bit(0xFB)));
    // The EOI exited; IF still 0: the timer waits for the window.
    let g = gate(IF_CLEAR, &lapic(&[0xEC], &[], 0x10));
    assert_eq!((g.rvi, g.window_exiting), (0, true));
    // The window exit: IF = 1 now, the timer goes in.
    let g = gate(OPEN, &lapic(&[0xEC], &[], 0x10));
    assert_eq!((g.rvi, g.window_exiting), (0xEC, false));
}

/// Up to three distinct vectors from 16..=255.
fn vectors() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(16u8..=255, 0..4)
}

fn window() -> impl Strategy<Value = GuestWindow> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(interrupts_enabled, shadowed, injecting)| GuestWindow {
            interrupts_enabled,
            shadowed,
            injecting,
        },
    )
}

proptest! {
    /// The rule of §30.2.2, with interrupt-window exiting left out (Bochs'
    /// behaviour): whatever the CPU could recognize from RVI, the guest can
    /// take; and a deliverable vector is never stranded: it is in RVI, or a
    /// window exit is coming, or an EOI exit will bring the hypervisor back.
    #[test]
    fn never_recognizable_while_the_guest_cannot_take_it(
        irr in vectors(), isr in vectors(), tpr in any::<u8>(), w in window()
    ) {
        let l = lapic(&irr, &isr, tpr);
        let g = gate(w, &l);
        let ppr_class = l.ppr() >> 4;
        let recognizable = g.rvi != 0 && g.rvi >> 4 > ppr_class;
        if recognizable {
            prop_assert!(w.open(), "RVI {:#x} recognizable with {w:?}", g.rvi);
            prop_assert!(!g.window_exiting);
        }
        prop_assert_eq!(g.svi, l.svi());
        prop_assert!(g.rvi == 0 || g.rvi == l.rvi(), "RVI is the highest IRR vector or 0");
        prop_assert_eq!(g.held, g.rvi != l.rvi());
        if let Some(v) = l.highest_pending() {
            prop_assert!(recognizable || g.window_exiting, "deliverable {v:#x} stranded");
        }
        if g.held && !g.window_exiting {
            // Held behind the vector in service: its EOI must exit.
            prop_assert!(g.eoi_exits[usize::from(l.svi() / 64)] & 1 << (l.svi() % 64) != 0);
        }
        if recognizable && l.pending_count() > 1 {
            // After the CPU delivers it, the next one waits behind it.
            prop_assert!(g.eoi_exits[usize::from(g.rvi / 64)] & 1 << (g.rvi % 64) != 0);
        }
        // EOI exits only for vectors in service or about to be.
        let allowed = or(l.in_service_bitmap(), if g.rvi != 0 { bit(g.rvi) } else { [0; 4] });
        for (exits, allowed) in g.eoi_exits.iter().zip(allowed) {
            prop_assert_eq!(exits & !allowed, 0);
        }
    }
}
