//! Routing against a table of published addressing, as a domain would
//! hold it in its mailboxes.

use alloc::vec::Vec;

use super::{Unrouted, VcpuAddressing, ioapic_targets, msi_targets};
use crate::domains::mailbox::Addressing;
use crate::vdev::ioapic::{DeliveryMode, Interrupt};
use crate::vdev::notify_pci::{MsiMessage, X86Interrupt};
use crate::vlapic::ApicMode;

/// vCPU `i` has APIC ID `.0` and addressing `.1`.
struct Table(Vec<(u32, Addressing)>);

impl VcpuAddressing for Table {
    fn vcpus(&self) -> usize {
        self.0.len()
    }
    fn apic_id(&self, i: usize) -> u32 {
        self.0[i].0
    }
    fn addressing(&self, i: usize) -> Addressing {
        self.0[i].1
    }
}

/// Four xAPIC vCPUs with APIC IDs 0 to 3 in flat logical mode, logical ID
/// `1 << i` (what Linux programs).
fn flat4() -> Table {
    Table(
        (0..4u32)
            .map(|i| (i, Addressing::new(ApicMode::XApic, 0xF, 1 << (24 + i))))
            .collect(),
    )
}

fn io(mode: DeliveryMode, dest: u8, logical: bool) -> Interrupt {
    Interrupt {
        vector: 0x31,
        dest,
        logical,
        mode,
        level_triggered: false,
    }
}

fn route(t: &Table, m: Interrupt) -> Result<Vec<usize>, Unrouted> {
    ioapic_targets(t, &m).map(Iterator::collect)
}

fn msi(t: &Table, destination: u8, logical: bool, hint: bool, lowest: bool) -> Vec<usize> {
    let irq = X86Interrupt {
        destination,
        logical,
        redirection_hint: hint,
        lowest_priority: lowest,
        vector: 0x40,
    };
    msi_targets(t, &irq).collect()
}

#[test]
fn fixed_physical_names_the_apic_id() {
    let t = flat4();
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 2, false)), Ok(vec![2]));
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 9, false)), Ok(vec![]));
}

#[test]
fn fixed_logical_flat_goes_to_every_bit_set() {
    let t = flat4();
    assert_eq!(
        route(&t, io(DeliveryMode::Fixed, 0b1010, true)),
        Ok(vec![1, 3])
    );
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 0xF0, true)), Ok(vec![]));
}

#[test]
fn fixed_logical_cluster_matches_cluster_and_members() {
    // Cluster model: vCPUs 0, 1 in cluster 1 (members 1, 2), vCPU 2 in
    // cluster 2 (member 1).
    let t = Table(vec![
        (0, Addressing::new(ApicMode::XApic, 0, 0x1100_0000)),
        (1, Addressing::new(ApicMode::XApic, 0, 0x1200_0000)),
        (2, Addressing::new(ApicMode::XApic, 0, 0x2100_0000)),
    ]);
    assert_eq!(
        route(&t, io(DeliveryMode::Fixed, 0x13, true)),
        Ok(vec![0, 1])
    );
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 0x21, true)), Ok(vec![2]));
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 0x24, true)), Ok(vec![]));
}

#[test]
fn broadcast_reaches_every_enabled_vcpu() {
    let t = flat4();
    for logical in [false, true] {
        assert_eq!(
            route(&t, io(DeliveryMode::Fixed, 0xFF, logical)),
            Ok(vec![0, 1, 2, 3])
        );
    }
    assert_eq!(msi(&t, 0xFF, false, false, false), vec![0, 1, 2, 3]);
}

#[test]
fn lowest_priority_takes_the_first_match_only() {
    let t = flat4();
    assert_eq!(
        route(&t, io(DeliveryMode::LowestPriority, 0b1100, true)),
        Ok(vec![2])
    );
    assert_eq!(
        route(&t, io(DeliveryMode::LowestPriority, 0xFF, false)),
        Ok(vec![0])
    );
    assert_eq!(
        route(&t, io(DeliveryMode::LowestPriority, 0x80, true)),
        Ok(vec![])
    );
}

#[test]
fn unsupported_delivery_modes_go_nowhere_and_say_why() {
    let t = flat4();
    for mode in [
        DeliveryMode::Smi,
        DeliveryMode::Nmi,
        DeliveryMode::Init,
        DeliveryMode::ExtInt,
    ] {
        assert_eq!(
            route(&t, io(mode, 0xFF, false)),
            Err(Unrouted::UnsupportedMode(mode))
        );
    }
}

#[test]
fn a_vcpu_with_its_apic_disabled_is_never_named() {
    let mut t = flat4();
    t.0[1].1 = Addressing::new(ApicMode::Disabled, 0xF, 1 << 25);
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 1, false)), Ok(vec![]));
    assert_eq!(
        route(&t, io(DeliveryMode::Fixed, 0xFF, false)),
        Ok(vec![0, 2, 3])
    );
    assert_eq!(
        route(&t, io(DeliveryMode::LowestPriority, 0b0011, true)),
        Ok(vec![0])
    );
    t.0[0].1 = Addressing::new(ApicMode::Disabled, 0xF, 1 << 24);
    // Lowest priority skips disabled APICs to the first enabled match.
    assert_eq!(
        route(&t, io(DeliveryMode::LowestPriority, 0b0111, true)),
        Ok(vec![2])
    );
    assert_eq!(msi(&t, 0b0011, true, false, false), Vec::<usize>::new());
}

#[test]
fn x2apic_vcpus_are_named_by_broadcast_only() {
    // I/O APIC messages are 8-bit xAPIC destinations: an x2APIC vCPU
    // takes only the 0xFF broadcast.
    let t = Table(vec![
        (0, Addressing::new(ApicMode::X2Apic, 0, 0x0000_0001)),
        (1, Addressing::new(ApicMode::XApic, 0xF, 0x0200_0000)),
    ]);
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 0, false)), Ok(vec![]));
    assert_eq!(route(&t, io(DeliveryMode::Fixed, 1, false)), Ok(vec![1]));
    assert_eq!(
        route(&t, io(DeliveryMode::Fixed, 0xFF, false)),
        Ok(vec![0, 1])
    );
}

#[test]
fn msi_physical_and_logical_go_to_all_matches() {
    let t = flat4();
    assert_eq!(msi(&t, 3, false, false, false), vec![3]);
    assert_eq!(msi(&t, 0b0110, true, false, false), vec![1, 2]);
    assert_eq!(msi(&t, 7, false, false, false), Vec::<usize>::new());
}

#[test]
fn msi_redirection_hint_or_lowest_priority_picks_one() {
    let t = flat4();
    assert_eq!(msi(&t, 0b0110, true, true, false), vec![1]);
    assert_eq!(msi(&t, 0b0110, true, false, true), vec![1]);
    assert_eq!(msi(&t, 0xFF, false, true, true), vec![0]);
}

#[test]
fn msi_messages_route_as_dom0s_driver_programs_them() {
    // The address and data Linux writes for a physical, fixed MSI to APIC
    // ID 2 and one with the redirection hint in logical mode (SDM Vol. 3A
    // §12.11.1, §12.11.2), decoded then routed.
    let t = flat4();
    let phys = MsiMessage {
        address: 0xFEE0_2000,
        data: 0x0041,
    };
    let irq = phys.x86_interrupt().unwrap();
    assert_eq!(msi_targets(&t, &irq).collect::<Vec<_>>(), vec![2]);
    let hinted = MsiMessage {
        address: 0xFEE0_F00C,
        data: 0x0141,
    };
    let irq = hinted.x86_interrupt().unwrap();
    assert_eq!(msi_targets(&t, &irq).collect::<Vec<_>>(), vec![0]);
}

#[test]
fn targets_keep_their_destination() {
    let t = flat4();
    let targets = ioapic_targets(&t, &io(DeliveryMode::Fixed, 0x0C, true)).unwrap();
    let d = targets.destination();
    assert_eq!((d.field, d.logical, d.x2apic), (0x0C, true, false));
}

proptest::proptest! {
    /// For any table and message: fixed delivery yields, in order, exactly
    /// the vCPUs the destination names; lowest priority and the MSI
    /// redirection hint yield the first of them, or nothing.
    #[test]
    fn modes_agree_with_destination_matching(
        vcpus in proptest::collection::vec(
            (0u32..16, 0u8..3, proptest::prelude::any::<bool>(), proptest::prelude::any::<u8>()),
            0..8,
        ),
        dest in proptest::prelude::any::<u8>(),
        logical in proptest::prelude::any::<bool>(),
    ) {
        let t = Table(
            vcpus
                .iter()
                .map(|&(id, mode, flat, logical_id)| {
                    let mode = [ApicMode::Disabled, ApicMode::XApic, ApicMode::X2Apic][usize::from(mode)];
                    let model = if flat { 0xF } else { 0 };
                    (id, Addressing::new(mode, model, u32::from(logical_id) << 24))
                })
                .collect(),
        );
        let fixed = route(&t, io(DeliveryMode::Fixed, dest, logical)).unwrap();
        let dest_of = super::ioapic_targets(&t, &io(DeliveryMode::Fixed, dest, logical))
            .unwrap()
            .destination();
        let named: Vec<usize> = (0..t.vcpus()).filter(|&i| t.names(i, &dest_of)).collect();
        proptest::prop_assert_eq!(&fixed, &named);
        let first: Vec<usize> = named.iter().copied().take(1).collect();
        proptest::prop_assert_eq!(
            route(&t, io(DeliveryMode::LowestPriority, dest, logical)).unwrap(),
            first.clone()
        );
        proptest::prop_assert_eq!(msi(&t, dest, logical, false, false), named.clone());
        proptest::prop_assert_eq!(msi(&t, dest, logical, true, false), first.clone());
        proptest::prop_assert_eq!(msi(&t, dest, logical, false, true), first);
    }
}
