//! Hypercalls from a guest (VMCALL; the calling convention is carried out by
//! [`crate::vcpu::exits::hypercall`]): the caller's memory and the
//! hypervisor's state for [`crate::hypercall::dispatch`].

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use dom0_abi::domain::DOMAIN_FLAG_PRIVILEGED;
use dom0_abi::info::{
    VMX_APIC_REGISTER_VIRT, VMX_EPT, VMX_EPT_1G, VMX_EPT_2M, VMX_PREEMPTION_TIMER, VMX_TPR_SHADOW,
    VMX_UNRESTRICTED_GUEST, VMX_VIRTUAL_INTR_DELIVERY, VMX_VPID,
};
use dom0_abi::{ABI_VERSION, DomainInfo, DomainState, HvInfo, ShutdownReason, Status};
use zerocopy::FromZeros;

use super::domain::Domain;
use super::{Vcpu, domu, vcpu_homes};
use crate::arch::x86_64::physmem::{read_volatile, write_volatile};
use crate::hypercall::lifecycle::{EntryMode, Lifecycle};
use crate::hypercall::{Caller, GuestMemory, Platform, RamRanges, dispatch};
use crate::logger;
use crate::mm::addr::{HostPhysAddr, PAGE_SIZE};
use crate::mm::frames::FRAMES;
use crate::sched::{SchedError, VcpuState as SchedState};

/// dom0's RAM, identity-mapped: guest-physical = host-physical.
struct IdentityRam<'a>(RamRanges<'a>);

impl GuestMemory for IdentityRam<'_> {
    fn check(&self, gpa: u64, len: u64) -> Result<(), Status> {
        self.0.check(gpa, len)
    }
    fn read(&self, gpa: u64, out: &mut [u8]) -> Result<(), Status> {
        self.check(gpa, out.len() as u64)?;
        read_volatile(HostPhysAddr::new(gpa), out);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Status> {
        self.check(gpa, data.len() as u64)?;
        write_volatile(HostPhysAddr::new(gpa), data);
        Ok(())
    }
}

/// The hypervisor's state as the operations report it.
struct State<'a> {
    domain: &'a Domain,
}

impl State<'_> {
    fn vmx_features(&self) -> u64 {
        let c = &self.domain.vmx;
        [
            (c.ept(), VMX_EPT),
            (c.ept_2m(), VMX_EPT_2M),
            (c.ept_1g(), VMX_EPT_1G),
            (c.vpid(), VMX_VPID),
            (c.unrestricted_guest(), VMX_UNRESTRICTED_GUEST),
            (c.apic_register_virtualization(), VMX_APIC_REGISTER_VIRT),
            (c.virtual_interrupt_delivery(), VMX_VIRTUAL_INTR_DELIVERY),
            (c.preemption_timer(), VMX_PREEMPTION_TIMER),
            (c.tpr_shadow(), VMX_TPR_SHADOW),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit)
    }

    fn dom0_pages(&self) -> u64 {
        self.domain
            .ram()
            .iter()
            .map(|(s, e)| (e - s) / PAGE_SIZE)
            .sum()
    }
}

impl Platform for State<'_> {
    fn hv_info(&self) -> HvInfo {
        let mut info = HvInfo::new_zeroed();
        let version = alloc::format!("oxen {}", crate::start::VERSION);
        let n = version.len().min(info.version.len());
        info.version[..n].copy_from_slice(&version.as_bytes()[..n]);
        info.abi_major = ABI_VERSION.major;
        info.abi_minor = ABI_VERSION.minor;
        info.cpu_count = self.domain.cpus() as u32;
        let fa = FRAMES.lock();
        info.total_pages = fa.total_frames().as_u64();
        info.free_pages = fa.free_frames().as_u64();
        drop(fa);
        info.dom0_pages = self.dom0_pages();
        info.vmx_features = self.vmx_features();
        info.tsc_khz = logger::tsc_khz();
        info.uptime_ns = logger::uptime_ns();
        info
    }

    fn domains(&self) -> Vec<DomainInfo> {
        let mut d = DomainInfo::new_zeroed();
        d.domid = 0;
        d.state = DomainState::Running as u32;
        d.flags = DOMAIN_FLAG_PRIVILEGED;
        let name = b"Domain-0";
        d.name[..name.len()].copy_from_slice(name);
        d.memory_pages = self.dom0_pages();
        d.max_memory_pages = d.memory_pages;
        d.vcpus = self.domain.vcpus() as u32;
        d.max_vcpus = d.vcpus;
        let khz = logger::tsc_khz().max(1);
        let ticks = self.domain.guest_ticks.load(Ordering::Relaxed);
        d.cpu_time_ns = (u128::from(ticks) * 1_000_000 / u128::from(khz)) as u64;
        let mut all = alloc::vec![d];
        all.extend(domu::infos());
        all
    }

    fn log_read(&mut self, max: usize, clear: bool) -> (Vec<u8>, u64) {
        logger::ring_read(max, clear)
    }

    fn events_read(&mut self, clear: bool) -> crate::events::EventSnapshot {
        crate::events::EVENTS.read(clear)
    }

    fn sched_get(&self, domid: u32) -> Result<dom0_abi::SchedParams, Status> {
        let (weight, cap) = vcpu_homes::sched_params(domid).map_err(sched_status)?;
        Ok(dom0_abi::SchedParams {
            domid,
            weight,
            cap,
            flags: 0,
        })
    }

    fn sched_set(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), Status> {
        vcpu_homes::set_sched_params(domid, weight, cap).map_err(sched_status)
    }

    fn vcpu_list(&self, domid: u32) -> Result<Vec<dom0_abi::VcpuInfo>, Status> {
        let infos = vcpu_homes::vcpu_infos(domid).ok_or(Status::NoSuchDomain)?;
        if infos.is_empty() {
            return Err(Status::NoSuchDomain);
        }
        let khz = u128::from(logger::tsc_khz().max(1));
        Ok(infos
            .into_iter()
            .map(|(vcpu, i)| {
                let started = vcpu_homes::started(domid, vcpu);
                let state = match i.state {
                    _ if !started => dom0_abi::VcpuState::Offline,
                    SchedState::Running => dom0_abi::VcpuState::Running,
                    SchedState::Runnable | SchedState::Parked => dom0_abi::VcpuState::Runnable,
                    SchedState::Blocked => dom0_abi::VcpuState::Blocked,
                    SchedState::Paused => dom0_abi::VcpuState::Paused,
                };
                dom0_abi::VcpuInfo {
                    vcpu,
                    state: state as u32,
                    cpu: i.cpu as u32,
                    reserved: 0,
                    cpu_time_ns: (u128::from(i.cpu_time.0) * 1_000_000 / khz) as u64,
                    affinity: i.affinity.bits(),
                }
            })
            .collect())
    }

    fn vcpu_set_affinity(&mut self, domid: u32, vcpu: u32, cpus: u64) -> Result<(), Status> {
        if domid == 0 {
            // dom0's vCPU i is the one CPU i runs (docs/architecture.md).
            return Err(Status::NotPermitted);
        }
        vcpu_homes::set_affinity(domid, vcpu, cpus).map_err(sched_status)
    }
}

impl Lifecycle for State<'_> {
    fn create(&mut self, name: &str, memory_pages: u64, vcpus: u32) -> Result<u32, Status> {
        domu::create(
            self.domain.vmx,
            self.domain.apic_khz,
            name,
            memory_pages,
            vcpus,
        )
    }
    fn destroy(&mut self, id: u32) -> Result<(), Status> {
        domu::destroy(id)
    }
    fn pause(&mut self, id: u32) -> Result<(), Status> {
        domu::pause(id)
    }
    fn unpause(&mut self, id: u32) -> Result<(), Status> {
        domu::unpause(id)
    }
    fn shutdown(&mut self, id: u32, reason: ShutdownReason) -> Result<(), Status> {
        domu::shutdown(id, reason)
    }
    fn copy_in(
        &mut self,
        id: u32,
        gpa: u64,
        src_gpa: u64,
        len: usize,
        mem: &dyn GuestMemory,
    ) -> Result<(), Status> {
        domu::copy_in(id, gpa, src_gpa, len, mem)
    }
    fn set_entry(&mut self, id: u32, vcpu: u32, entry: EntryMode) -> Result<(), Status> {
        domu::set_entry(id, vcpu, entry)
    }
    fn console_read(&mut self, id: u32, max: usize) -> Result<Vec<u8>, Status> {
        domu::console_read(id, max)
    }
    fn console_write(&mut self, id: u32, data: &[u8]) -> Result<usize, Status> {
        domu::console_write(id, data)
    }
}

/// Runs hypercall `op` with `args` for `v`, a ring-0 caller (the neutral
/// VMCALL handler, [`crate::vcpu::exits::hypercall`], checked the CPL and
/// reads the arguments), and returns its status.
pub fn dispatch_for(v: &Vcpu, op: u64, args: [u64; 5]) -> i64 {
    // Only dom0 passes pointers (and is identity-mapped); a domU caller is
    // refused before any memory is touched, and has no memory here anyway.
    let ram = if v.domain.is_dom0() {
        v.domain.ram()
    } else {
        &[]
    };
    let mut mem = IdentityRam(RamRanges(ram));
    let mut state = State { domain: &v.domain };
    let caller = Caller {
        privileged: v.domain.is_dom0(),
    };
    dispatch(op, args, caller, &mut mem, &mut state)
}

/// The status for a scheduler refusal.
fn sched_status(e: SchedError) -> Status {
    match e {
        SchedError::UnknownDomain => Status::NoSuchDomain,
        SchedError::UnknownVcpu
        | SchedError::BadWeight
        | SchedError::BadCap
        | SchedError::BadAffinity
        | SchedError::UnknownCpu => Status::InvalidArgument,
        SchedError::DomainExists | SchedError::VcpuExists | SchedError::BadConfig => {
            Status::BadState
        }
    }
}
