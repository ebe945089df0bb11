//! Every ABI struct survives a trip through bytes, and its byte image is what the
//! other side (C, or the hypervisor reading guest memory) expects.

use dom0_abi::domain::DOMAIN_FLAG_PRIVILEGED;
use dom0_abi::info::{VMX_EPT, VMX_VPID};
use dom0_abi::ioctl::{
    IoctlConsole, IoctlCopyIn, IoctlDomainInfo, IoctlDomainList, IoctlDomainShutdown, IoctlDomid,
    IoctlLogRead, IoctlRaw, IoctlVcpuSetEntry,
};
use dom0_abi::log::LOG_READ_CLEAR;
use dom0_abi::{
    AbiVersion, DomainCreateArgs, DomainInfo, DomainListArgs, DomainState, HvInfo, LogReadArgs,
    ShutdownReason, VcpuEntry, VcpuMode, VersionArgs,
};
use proptest::prelude::*;
use zerocopy::{FromBytes, Immutable, IntoBytes};

fn round_trip<T>(value: &T)
where
    T: IntoBytes + FromBytes + Immutable + PartialEq + std::fmt::Debug,
{
    let bytes = value.as_bytes();
    assert_eq!(bytes.len(), size_of::<T>());
    let back = T::read_from_bytes(bytes).expect("size matches");
    assert_eq!(&back, value);
}

fn sample_hv_info() -> HvInfo {
    let mut version = [0u8; 32];
    version[..10].copy_from_slice(b"oxen 0.1.0");
    HvInfo {
        version,
        abi_major: 1,
        abi_minor: 0,
        cpu_count: 4,
        total_pages: 0x0004_0000,
        free_pages: 0x0002_0000,
        dom0_pages: 0x0001_0000,
        vmx_features: VMX_EPT | VMX_VPID,
        tsc_khz: 2_400_000,
        uptime_ns: 123_456_789,
    }
}

fn sample_domain() -> DomainInfo {
    let mut name = [0u8; 64];
    name[..8].copy_from_slice(b"Domain-0");
    DomainInfo {
        domid: 0,
        state: DomainState::Running as u32,
        flags: DOMAIN_FLAG_PRIVILEGED,
        shutdown_reason: 0,
        name,
        memory_pages: 65536,
        max_memory_pages: 65536,
        vcpus: 2,
        max_vcpus: 2,
        cpu_time_ns: 5_000_000_000,
    }
}

#[test]
fn every_struct_round_trips() {
    round_trip(&AbiVersion::new(1, 0));
    round_trip(&VersionArgs::request());
    round_trip(&sample_hv_info());
    round_trip(&sample_domain());
    round_trip(&DomainListArgs {
        buffer_gpa: 0x1000,
        capacity: 16,
        start_domid: 0,
        returned: 2,
        total: 2,
    });
    round_trip(&LogReadArgs {
        buffer_gpa: 0x2000,
        size: 4096,
        flags: LOG_READ_CLEAR,
        returned: 100,
        dropped: 0,
    });
    round_trip(&IoctlLogRead {
        buffer: 0x7fff_0000_1000,
        size: 4096,
        flags: LOG_READ_CLEAR,
        returned: 100,
        dropped: 3,
    });
    round_trip(&IoctlDomainList {
        buffer: 0x7fff_0000_2000,
        capacity: 16,
        start_domid: 1,
        returned: 2,
        total: 2,
    });
    round_trip(&IoctlDomainInfo {
        domid: 0,
        reserved: 0,
        info: sample_domain(),
    });
    round_trip(&IoctlRaw {
        op: 0x0101,
        arg1: 0xdead_0000,
        arg2: 88,
        arg3: 0,
        arg4: 0,
        arg5: u64::MAX,
        status: -4,
    });
}

fn sample_entry() -> VcpuEntry {
    VcpuEntry {
        mode: VcpuMode::Linux64 as u32,
        reserved: 0,
        rip: 0x0100_0200,
        rsp: 0,
        rbx: 0,
        rsi: 0x1000,
        cr3: 0x3000,
        gdt_base: 0x2000,
        gdt_limit: 31,
        reserved2: 0,
    }
}

#[test]
fn every_lifecycle_struct_round_trips() {
    let mut create = DomainCreateArgs::new("web-01", 32_768, 2).unwrap();
    round_trip(&create);
    create.domid = 7;
    round_trip(&create);
    round_trip(&sample_entry());
    round_trip(&IoctlDomid::new(3));
    round_trip(&IoctlDomainShutdown {
        domid: 3,
        reason: ShutdownReason::Reboot as u32,
    });
    round_trip(&IoctlCopyIn {
        domid: 3,
        reserved: 0,
        dest_gpa: 0x0100_0000,
        buffer: 0x7fff_0000_3000,
        length: 1 << 20,
        copied: 1 << 20,
    });
    round_trip(&IoctlVcpuSetEntry {
        domid: 3,
        vcpu: 0,
        entry: sample_entry(),
    });
    round_trip(&IoctlConsole {
        domid: 3,
        size: 4096,
        buffer: 0x7fff_0000_4000,
        returned: 17,
        reserved: 0,
    });
}

#[test]
fn lifecycle_byte_images_are_at_the_documented_offsets() {
    let mut create = DomainCreateArgs::new("web", 0x0102_0304_0506_0708, 0x0a0b_0c0d).unwrap();
    create.domid = 0x1122_3344;
    let b = create.as_bytes();
    assert_eq!(&b[..4], b"web\0");
    assert_eq!(&b[64..72], 0x0102_0304_0506_0708u64.to_le_bytes());
    assert_eq!(&b[72..76], 0x0a0b_0c0du32.to_le_bytes());
    assert_eq!(&b[76..80], [0; 4]);
    assert_eq!(&b[80..84], 0x1122_3344u32.to_le_bytes());
    assert_eq!(&b[84..88], [0; 4]);

    let e = sample_entry();
    let b = e.as_bytes();
    assert_eq!(&b[..4], 2u32.to_le_bytes());
    assert_eq!(&b[8..16], 0x0100_0200u64.to_le_bytes());
    assert_eq!(&b[32..40], 0x1000u64.to_le_bytes());
    assert_eq!(&b[40..48], 0x3000u64.to_le_bytes());
    assert_eq!(&b[48..56], 0x2000u64.to_le_bytes());
    assert_eq!(&b[56..60], 31u32.to_le_bytes());

    let set = IoctlVcpuSetEntry {
        domid: 9,
        vcpu: 0,
        entry: e,
    };
    assert_eq!(&set.as_bytes()[..4], 9u32.to_le_bytes());
    assert_eq!(&set.as_bytes()[8..], e.as_bytes());

    let copy = IoctlCopyIn {
        domid: 1,
        reserved: 0,
        dest_gpa: 0xAABB_CCDD,
        buffer: 0x1122_3344_5566_7788,
        length: 0x10_0000,
        copied: 0x8_0000,
    };
    let b = copy.as_bytes();
    assert_eq!(&b[8..16], 0xAABB_CCDDu64.to_le_bytes());
    assert_eq!(&b[16..24], 0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&b[24..28], 0x10_0000u32.to_le_bytes());
    assert_eq!(&b[28..32], 0x8_0000u32.to_le_bytes());

    let console = IoctlConsole {
        domid: 2,
        size: 512,
        buffer: 0xdead_beef,
        returned: 5,
        reserved: 0,
    };
    let b = console.as_bytes();
    assert_eq!(&b[4..8], 512u32.to_le_bytes());
    assert_eq!(&b[8..16], 0xdead_beefu64.to_le_bytes());
    assert_eq!(&b[16..20], 5u32.to_le_bytes());
    assert_eq!(
        IoctlDomainShutdown {
            domid: 4,
            reason: ShutdownReason::Poweroff as u32
        }
        .as_bytes(),
        [4, 0, 0, 0, 1, 0, 0, 0]
    );
}

#[test]
fn ioctl_byte_images_are_at_the_documented_offsets() {
    let req = IoctlDomainInfo {
        domid: 0x0102_0304,
        reserved: 0,
        info: sample_domain(),
    };
    let bytes = req.as_bytes();
    assert_eq!(&bytes[..4], [4, 3, 2, 1]);
    assert_eq!(&bytes[8..], sample_domain().as_bytes());
    let raw = IoctlRaw {
        status: -9,
        ..IoctlRaw::default()
    };
    assert_eq!(&raw.as_bytes()[48..], (-9i64).to_le_bytes());
    let list = IoctlDomainList {
        buffer: 0x1122_3344_5566_7788,
        capacity: 5,
        ..IoctlDomainList::default()
    };
    assert_eq!(
        &list.as_bytes()[..8],
        0x1122_3344_5566_7788u64.to_le_bytes()
    );
    assert_eq!(&list.as_bytes()[8..12], 5u32.to_le_bytes());
}

#[test]
fn byte_images_are_little_endian_at_the_documented_offsets() {
    let args = VersionArgs {
        caller_major: 1,
        caller_minor: 2,
        hypervisor_major: 0x0304,
        hypervisor_minor: 0x0506,
    };
    assert_eq!(args.as_bytes(), [1, 0, 2, 0, 4, 3, 6, 5]);

    let info = sample_hv_info();
    let bytes = info.as_bytes();
    assert_eq!(&bytes[..10], b"oxen 0.1.0");
    assert_eq!(&bytes[36..40], 4u32.to_le_bytes());
    assert_eq!(&bytes[72..80], 2_400_000u64.to_le_bytes());

    let dom = sample_domain();
    assert_eq!(&dom.as_bytes()[16..24], b"Domain-0");
    assert_eq!(dom.name_str(), Some("Domain-0"));
    assert_eq!(dom.state(), Ok(DomainState::Running));
}

#[test]
fn short_buffers_are_rejected() {
    assert!(HvInfo::read_from_bytes(&[0u8; 87]).is_err());
    assert!(DomainInfo::read_from_prefix(&[0u8; 111]).is_err());
}

proptest! {
    #[test]
    fn any_bytes_decode_and_re_encode_identically(bytes in proptest::collection::vec(any::<u8>(), 112)) {
        let hv = HvInfo::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(hv.as_bytes(), &bytes[..size_of::<HvInfo>()]);
        let dom = DomainInfo::read_from_bytes(&bytes).unwrap();
        prop_assert_eq!(dom.as_bytes(), &bytes[..]);
        let list = DomainListArgs::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(list.as_bytes(), &bytes[..24]);
        let log = LogReadArgs::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(log.as_bytes(), &bytes[..24]);
        let ver = VersionArgs::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(ver.as_bytes(), &bytes[..8]);
        let raw = IoctlRaw::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(raw.as_bytes(), &bytes[..56]);
        let ilog = IoctlLogRead::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(ilog.as_bytes(), &bytes[..24]);
        let ilist = IoctlDomainList::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(ilist.as_bytes(), &bytes[..24]);
        let create = DomainCreateArgs::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(create.as_bytes(), &bytes[..88]);
        let entry = VcpuEntry::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(entry.as_bytes(), &bytes[..64]);
        let set = IoctlVcpuSetEntry::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(set.as_bytes(), &bytes[..72]);
        let copy = IoctlCopyIn::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(copy.as_bytes(), &bytes[..32]);
        let console = IoctlConsole::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(console.as_bytes(), &bytes[..24]);
        let domid = IoctlDomid::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(domid.as_bytes(), &bytes[..8]);
        let shutdown = IoctlDomainShutdown::read_from_prefix(&bytes).unwrap().0;
        prop_assert_eq!(shutdown.as_bytes(), &bytes[..8]);
    }

    /// Whatever a guest or a buggy caller puts in the 1.1 structs, the
    /// checks decide without panicking, and a valid result is what it says.
    #[test]
    fn lifecycle_checks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 88)) {
        let create = DomainCreateArgs::read_from_bytes(&bytes).unwrap();
        if create.validate().is_ok() {
            let name = create.name_str().unwrap();
            prop_assert!(!name.is_empty() && name.len() < 64);
            prop_assert!(create.memory_pages > 0 && create.vcpus > 0);
        }
        let entry = VcpuEntry::read_from_prefix(&bytes).unwrap().0;
        if entry.validate().is_ok() {
            prop_assert!(entry.mode().is_ok() && entry.gdt_limit <= 0xffff);
        }
    }
}

/// The 1.3 scheduling structs: their bytes, as the driver and the
/// hypervisor read them.
#[test]
fn sched_structs_round_trip() {
    use dom0_abi::ioctl::{IoctlVcpuAffinity, IoctlVcpuList};
    use dom0_abi::{SchedParams, VcpuInfo, VcpuListArgs, VcpuState};
    let p = SchedParams::set(7, Some(512), Some(50));
    round_trip(&p);
    assert_eq!(
        p.as_bytes(),
        [7, 0, 0, 0, 0, 2, 0, 0, 50, 0, 0, 0, 3, 0, 0, 0]
    );
    let v = VcpuInfo {
        vcpu: 1,
        state: VcpuState::Blocked as u32,
        cpu: 3,
        reserved: 0,
        cpu_time_ns: 1_500_000_000,
        affinity: 0b1011,
    };
    round_trip(&v);
    assert_eq!(v.state(), Ok(VcpuState::Blocked));
    round_trip(&VcpuListArgs {
        buffer_gpa: 0x1000,
        domid: 2,
        capacity: 4,
        returned: 2,
        total: 2,
    });
    round_trip(&IoctlVcpuList {
        buffer: 0x7fff_0000,
        domid: 2,
        capacity: 4,
        returned: 0,
        total: 0,
    });
    round_trip(&IoctlVcpuAffinity {
        domid: 2,
        vcpu: 1,
        affinity: u64::MAX,
    });
}
