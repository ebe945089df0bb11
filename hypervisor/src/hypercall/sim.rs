//! A caller's memory and a hypervisor state held in plain vectors, for host
//! tests and the fuzz target of [`super::dispatch`] (`hypervisor/fuzz`).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use dom0_abi::sched::WEIGHT_DEFAULT;
use dom0_abi::{
    ABI_VERSION, DOM0_ID, DomainInfo, DomainState, HvInfo, SchedParams, ShutdownReason, Status,
    VcpuInfo, VcpuState,
};
use zerocopy::FromZeros;

use super::lifecycle::{EntryMode, Lifecycle as Lifecycle2};
use super::{GuestMemory, Platform, RamRanges};
use crate::domains::lifecycle::Lifecycle;
use crate::domains::registry::Registry;

/// RAM ranges `[start, end)`, each backed by its own vector.
#[derive(Debug, Clone)]
pub struct SimMemory {
    ranges: Vec<(u64, u64)>,
    bytes: Vec<Vec<u8>>,
}

impl SimMemory {
    /// Zeroed RAM for `ranges` (each at most a few MiB: it is allocated).
    pub fn new(ranges: &[(u64, u64)]) -> Self {
        let bytes = ranges
            .iter()
            .map(|&(s, e)| vec![0; (e - s) as usize])
            .collect();
        Self {
            ranges: ranges.to_vec(),
            bytes,
        }
    }

    /// Range `i`'s bytes.
    pub fn range_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.bytes[i]
    }

    fn locate(&self, gpa: u64) -> Option<(usize, usize)> {
        self.ranges
            .iter()
            .position(|&(s, e)| s <= gpa && gpa < e)
            .map(|i| (i, (gpa - self.ranges[i].0) as usize))
    }
}

impl GuestMemory for SimMemory {
    fn check(&self, gpa: u64, len: u64) -> Result<(), Status> {
        RamRanges(&self.ranges).check(gpa, len)
    }
    fn read(&self, gpa: u64, out: &mut [u8]) -> Result<(), Status> {
        self.check(gpa, out.len() as u64)?;
        let (i, at) = self.locate(gpa).ok_or(Status::BadAddress)?;
        out.copy_from_slice(&self.bytes[i][at..at + out.len()]);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Status> {
        self.check(gpa, data.len() as u64)?;
        let (i, at) = self.locate(gpa).ok_or(Status::BadAddress)?;
        self.bytes[i][at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// A domU of the simulation.
#[derive(Debug)]
pub struct SimDomain {
    /// Its lifecycle.
    pub lifecycle: Lifecycle,
    /// Its RAM.
    pub ram: Vec<u8>,
    /// Its boot vCPU's entry, once set.
    pub entry: Option<EntryMode>,
    /// Console output not yet read.
    pub console_out: Vec<u8>,
    /// Console input typed.
    pub console_in: Vec<u8>,
    /// vCPUs.
    pub vcpus: u32,
}

/// A hypervisor with two CPUs, dom0, a log, and domUs (the fixed domain 3
/// of `domains()` plus whatever is created).
#[derive(Debug, Default)]
pub struct SimPlatform {
    /// The log ring's contents.
    pub log: Vec<u8>,
    /// What `log_read` reports as dropped.
    pub dropped: u64,
    /// Created domains.
    pub domus: Registry<SimDomain>,
    /// Pages the simulated pool has left.
    pub free_pages: u64,
    /// The events: create, destroy and shutdown raise theirs, as the
    /// hypervisor's do.
    pub events: crate::events::Events,
    /// Scheduling parameters set so far, by domain id (a domain not here
    /// has the defaults: weight 256, no cap, every CPU).
    pub sched: BTreeMap<u32, SimSched>,
}

/// The simulation's CPUs.
const SIM_CPUS: u32 = 2;

/// A domain's scheduling parameters in the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSched {
    /// Its weight.
    pub weight: u32,
    /// Its cap.
    pub cap: u32,
    /// Each vCPU's hard affinity.
    pub affinity: Vec<u64>,
}

impl SimPlatform {
    /// The vCPUs of domain `id`, if it exists.
    fn vcpu_count(&self, id: u32) -> Option<u32> {
        self.domains()
            .into_iter()
            .find(|d| d.domid == id)
            .map(|d| d.vcpus)
    }

    /// Domain `id`'s parameters (the defaults until something is set).
    fn sched_of(&self, id: u32) -> Result<SimSched, Status> {
        let vcpus = self.vcpu_count(id).ok_or(Status::NoSuchDomain)?;
        Ok(self.sched.get(&id).cloned().unwrap_or_else(|| SimSched {
            weight: WEIGHT_DEFAULT,
            cap: 0,
            affinity: vec![(1 << SIM_CPUS) - 1; vcpus as usize],
        }))
    }

    fn domu(&mut self, id: u32) -> Result<&mut SimDomain, Status> {
        self.domus.get_mut(id).ok_or(Status::NoSuchDomain)
    }
}

impl Lifecycle2 for SimPlatform {
    fn create(&mut self, name: &str, memory_pages: u64, vcpus: u32) -> Result<u32, Status> {
        if vcpus > 2 || memory_pages > 4096 {
            return Err(Status::InvalidArgument);
        }
        if memory_pages > self.free_pages {
            return Err(Status::NoMemory);
        }
        let id = self.domus.insert(name, |_| {
            Ok(SimDomain {
                lifecycle: Lifecycle::new(),
                ram: vec![0; (memory_pages * 4096) as usize],
                entry: None,
                console_out: Vec::new(),
                console_in: Vec::new(),
                vcpus,
            })
        })?;
        self.free_pages -= memory_pages;
        self.events.raise(dom0_abi::event::EVENT_DOMAIN_CREATED);
        Ok(id)
    }
    fn destroy(&mut self, id: u32) -> Result<(), Status> {
        let d = self.domus.remove(id).ok_or(Status::NoSuchDomain)?;
        self.sched.remove(&id);
        self.free_pages += d.ram.len() as u64 / 4096;
        self.events.raise(dom0_abi::event::EVENT_DOMAIN_DESTROYED);
        Ok(())
    }
    fn pause(&mut self, id: u32) -> Result<(), Status> {
        self.domu(id)?.lifecycle.pause()
    }
    fn unpause(&mut self, id: u32) -> Result<(), Status> {
        let d = self.domu(id)?;
        if d.entry.is_none() && d.lifecycle.is_loadable() {
            return Err(Status::BadState);
        }
        d.lifecycle.unpause().map(|_| ())
    }
    fn shutdown(&mut self, id: u32, reason: ShutdownReason) -> Result<(), Status> {
        let d = self.domu(id)?;
        if !matches!(
            d.lifecycle.state(),
            DomainState::Running | DomainState::Paused | DomainState::Blocked
        ) {
            return Err(Status::BadState);
        }
        d.lifecycle.shut_down(reason);
        self.events.raise(dom0_abi::event::EVENT_DOMAIN_SHUTDOWN);
        Ok(())
    }
    fn copy_in(
        &mut self,
        id: u32,
        gpa: u64,
        src_gpa: u64,
        len: usize,
        mem: &dyn GuestMemory,
    ) -> Result<(), Status> {
        let d = self.domu(id)?;
        if !d.lifecycle.is_loadable() {
            return Err(Status::BadState);
        }
        let start = usize::try_from(gpa).map_err(|_| Status::BadAddress)?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= d.ram.len())
            .ok_or(Status::BadAddress)?;
        mem.read(src_gpa, &mut d.ram[start..end])
    }
    fn set_entry(&mut self, id: u32, vcpu: u32, entry: EntryMode) -> Result<(), Status> {
        let d = self.domu(id)?;
        if vcpu != 0 {
            return Err(Status::InvalidArgument);
        }
        if !d.lifecycle.is_loadable() {
            return Err(Status::BadState);
        }
        d.entry = Some(entry);
        Ok(())
    }
    fn console_read(&mut self, id: u32, max: usize) -> Result<Vec<u8>, Status> {
        let d = self.domu(id)?;
        let n = max.min(d.console_out.len());
        Ok(d.console_out.drain(..n).collect())
    }
    fn console_write(&mut self, id: u32, data: &[u8]) -> Result<usize, Status> {
        let d = self.domu(id)?;
        let n = data.len().min(16);
        d.console_in.extend_from_slice(&data[..n]);
        Ok(n)
    }
}

fn domain(id: u32, name: &str) -> DomainInfo {
    let mut d = DomainInfo::new_zeroed();
    d.domid = id;
    d.name[..name.len()].copy_from_slice(name.as_bytes());
    d.memory_pages = 1000 + u64::from(id);
    // dom0 has a vCPU per CPU, the fixed guest one.
    d.vcpus = if id == DOM0_ID { SIM_CPUS } else { 1 };
    d.max_vcpus = d.vcpus;
    d
}

impl Platform for SimPlatform {
    fn hv_info(&self) -> HvInfo {
        let mut i = HvInfo::new_zeroed();
        i.cpu_count = SIM_CPUS;
        i.abi_major = ABI_VERSION.major;
        i.abi_minor = ABI_VERSION.minor;
        i
    }
    fn domains(&self) -> Vec<DomainInfo> {
        let mut all = vec![domain(0, "Domain-0"), domain(3, "guest")];
        for (id, name, d) in self.domus.iter() {
            let mut info = domain(id, name);
            info.state = d.lifecycle.state() as u32;
            info.shutdown_reason = d.lifecycle.reason() as u32;
            info.memory_pages = d.ram.len() as u64 / 4096;
            info.vcpus = d.vcpus;
            all.push(info);
        }
        all.sort_by_key(|d| d.domid);
        all
    }
    fn log_read(&mut self, max: usize, clear: bool) -> (Vec<u8>, u64) {
        let n = max.min(self.log.len());
        let out = self.log[..n].to_vec();
        if clear {
            self.log.drain(..n);
        }
        (out, self.dropped)
    }
    fn events_read(&mut self, clear: bool) -> crate::events::EventSnapshot {
        self.events.read(clear)
    }
    fn sched_get(&self, domid: u32) -> Result<SchedParams, Status> {
        let s = self.sched_of(domid)?;
        Ok(SchedParams {
            domid,
            weight: s.weight,
            cap: s.cap,
            flags: 0,
        })
    }
    fn sched_set(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), Status> {
        let mut s = self.sched_of(domid)?;
        if let Some(w) = weight {
            s.weight = w;
        }
        if let Some(c) = cap {
            s.cap = c;
        }
        self.sched.insert(domid, s);
        Ok(())
    }
    /// vCPU `i` of a domain is on CPU `i % 2`: dom0's run, a domU's run
    /// while it runs, else are paused (a domU that never ran: vCPU 0
    /// paused, the others offline); each has had `i` ms.
    fn vcpu_list(&self, domid: u32) -> Result<Vec<VcpuInfo>, Status> {
        let s = self.sched_of(domid)?;
        let (state, never_ran) = self
            .domus
            .get(domid)
            .map_or((DomainState::Running, false), |d| {
                (d.lifecycle.state(), d.lifecycle.is_loadable())
            });
        Ok(s.affinity
            .iter()
            .zip(0u32..)
            .map(|(&affinity, i)| VcpuInfo {
                vcpu: i,
                state: match state {
                    DomainState::Running => VcpuState::Running,
                    _ if never_ran && i > 0 => VcpuState::Offline,
                    DomainState::Blocked => VcpuState::Blocked,
                    _ => VcpuState::Paused,
                } as u32,
                cpu: i % SIM_CPUS,
                reserved: 0,
                cpu_time_ns: u64::from(i) * 1_000_000,
                affinity,
            })
            .collect())
    }
    fn vcpu_set_affinity(&mut self, domid: u32, vcpu: u32, cpus: u64) -> Result<(), Status> {
        let mut s = self.sched_of(domid)?;
        if domid == DOM0_ID {
            return Err(Status::NotPermitted);
        }
        let slot = s
            .affinity
            .get_mut(vcpu as usize)
            .ok_or(Status::InvalidArgument)?;
        *slot = cpus;
        self.sched.insert(domid, s);
        Ok(())
    }
}
