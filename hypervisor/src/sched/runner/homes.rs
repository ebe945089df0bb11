//! Where every vCPU is, and the scheduler that decides where it runs.
//!
//! Each vCPU has a *home* ([`VcpuHome`]): while no CPU runs it, the vCPU
//! itself (its hardware state, registers and switched state) waits there; a
//! CPU that the scheduler ([`crate::sched`]) tells to run it takes it out
//! and puts it back when the slice ends. A vCPU's hardware state stays
//! *active* on the last CPU that ran it (on VT-x, SDM Vol. 3C §25.1: the
//! VMCS may be cached in that processor), so that running it there again is
//! cheap; another CPU that is told to run it asks that CPU to give it up
//! first ([`Homes::request_flush`]) and waits, serving such requests of its
//! own meanwhile (two CPUs waiting for each other both make progress).
//!
//! Everything that can make a vCPU runnable (an interrupt or IPI posted to
//! its mailbox, INIT and start-up IPIs, a timer, a device interrupt for
//! dom0, unpausing) ends in [`Homes::wake`], and every scheduler request
//! that returns CPUs to kick goes through [`Homes::kick`].
//!
//! Locks: the scheduler, the home table, each home's state and each CPU's
//! flush list are separate, and no two of them are held at once.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{DomainOf, Machine, RunDomain, RunVcpu, StartOf};
use crate::sched::{
    Cap, CpuSet, DomainId, MAX_CPUS, SchedConfig, SchedError, Scheduler, Ticks, VcpuInfo, VcpuRef,
    VcpuState, Weight,
};

/// A vCPU with the state that VM entries do not switch.
pub struct Slot<V: RunVcpu> {
    /// The vCPU.
    pub vcpu: V,
    /// Its switched state while another vCPU is in the CPU.
    pub context: V::Context,
}

/// What a home holds.
pub enum HomeState<M: Machine> {
    /// Never run: the boot vCPU with its start once the domain is
    /// unpaused, an application processor with `None` (it starts at its
    /// INIT and start-up IPI).
    NotStarted(Option<StartOf<M>>),
    /// Created, and no CPU runs it now.
    Parked(Box<Slot<M::Vcpu>>),
    /// A CPU took it out to run it.
    Running,
    /// Its domain stopped and its vCPU was freed.
    Released,
}

/// One vCPU's home.
pub struct VcpuHome<M: Machine> {
    /// Its domain.
    pub domain: Arc<DomainOf<M>>,
    /// Its index in the domain.
    pub index: usize,
    /// The vCPU, when no CPU runs it.
    pub state: spin::Mutex<HomeState<M>>,
    /// 1 + the CPU whose hardware holds its state; 0 when none does.
    active_on: AtomicUsize,
}

impl<M: Machine> VcpuHome<M> {
    fn new(domain: Arc<DomainOf<M>>, index: usize, state: HomeState<M>) -> Self {
        Self {
            domain,
            index,
            state: spin::Mutex::new(state),
            active_on: AtomicUsize::new(0),
        }
    }

    /// Its scheduler name.
    pub fn vref(&self) -> VcpuRef {
        VcpuRef::new(self.domain.id(), self.index as u32)
    }

    /// The CPU whose hardware holds its state, if any.
    pub fn active_on(&self) -> Option<usize> {
        self.active_on.load(Ordering::Acquire).checked_sub(1)
    }

    /// Records which CPU holds its state.
    pub fn set_active_on(&self, cpu: Option<usize>) {
        self.active_on
            .store(cpu.map_or(0, |c| c + 1), Ordering::Release);
    }
}

impl<V: RunVcpu> core::fmt::Debug for Slot<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slot")
            .field("index", &self.vcpu.index())
            .finish_non_exhaustive()
    }
}

impl<M: Machine> core::fmt::Debug for HomeState<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HomeState::NotStarted(_) => "NotStarted",
            HomeState::Parked(_) => "Parked",
            HomeState::Running => "Running",
            HomeState::Released => "Released",
        })
    }
}

impl<M: Machine> core::fmt::Debug for VcpuHome<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VcpuHome")
            .field("domain", &self.domain.id())
            .field("index", &self.index)
            .field("active_on", &self.active_on())
            .finish_non_exhaustive()
    }
}

impl<M: Machine> core::fmt::Debug for Homes<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Homes")
            .field("joined", &self.joined())
            .field("stop_generation", &self.stop_generation())
            .finish_non_exhaustive()
    }
}

type Table<M> = BTreeMap<(u32, u32), Arc<VcpuHome<M>>>;

/// The machine's homes and scheduler: one per machine, in a static of the
/// backend.
pub struct Homes<M: Machine> {
    machine: M,
    /// Every vCPU's home, by (domain, index).
    table: spin::Mutex<Table<M>>,
    /// The scheduler (set up by the first CPU that joins).
    sched: spin::Once<spin::Mutex<Scheduler>>,
    /// Per CPU, the vCPUs other CPUs want it to give up.
    flush: [spin::Mutex<Vec<Arc<VcpuHome<M>>>>; MAX_CPUS],
    /// Bumped whenever a domain stops: CPUs then free the vCPUs they hold.
    stop_generation: AtomicU64,
    /// CPUs that run vCPUs (bit per CPU).
    joined: AtomicU64,
}

/// Logs a scheduler refusal that should not happen (unknown vCPU on a
/// path that registered it).
fn note(what: &str, v: VcpuRef, e: SchedError) {
    log::debug!("scheduler: {what} d{}v{}: {e:?}", v.domain.0, v.index);
}

impl<M: Machine> Homes<M> {
    /// Empty, with no scheduler yet.
    pub const fn new(machine: M) -> Self {
        Self {
            machine,
            table: spin::Mutex::new(BTreeMap::new()),
            sched: spin::Once::new(),
            flush: [const { spin::Mutex::new(Vec::new()) }; MAX_CPUS],
            stop_generation: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }

    /// The machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The time now, as the scheduler counts it.
    pub fn now(&self) -> Ticks {
        Ticks(self.machine.now())
    }

    /// Sets the scheduler up (once) and records that `cpu` runs vCPUs.
    pub fn join(&self, cpu: usize) {
        self.sched.call_once(|| {
            let cfg = SchedConfig::new(
                self.machine.online_cpus().max(1),
                self.machine.ticks_per_ms().max(1000),
            );
            let s = Scheduler::new(cfg).unwrap_or_else(|e| {
                log::error!("scheduler: {e:?}; running with one CPU's settings");
                Scheduler::new(SchedConfig::new(1, 1_000_000)).expect("a one-CPU configuration")
            });
            spin::Mutex::new(s)
        });
        if cpu < MAX_CPUS {
            self.joined.fetch_or(1 << cpu, Ordering::AcqRel);
        }
    }

    /// The CPUs that run vCPUs (the default affinity of a domU's vCPUs).
    pub fn joined(&self) -> CpuSet {
        CpuSet::from_bits(self.joined.load(Ordering::Acquire))
    }

    /// Bumped whenever a domain stops.
    pub fn stop_generation(&self) -> u64 {
        self.stop_generation.load(Ordering::Acquire)
    }

    /// Runs `f` on the scheduler, if it is set up.
    pub fn with_sched<R>(&self, f: impl FnOnce(&mut Scheduler) -> R) -> Option<R> {
        self.sched.get().map(|s| f(&mut s.lock()))
    }

    /// Asks the CPUs of `set` to call `pick` again.
    pub fn kick(&self, set: CpuSet) {
        for c in set.iter() {
            if c < MAX_CPUS {
                self.machine.kick(c);
            }
        }
    }

    /// The home of `v`.
    pub fn home(&self, v: VcpuRef) -> Option<Arc<VcpuHome<M>>> {
        self.table.lock().get(&(v.domain.0, v.index)).cloned()
    }

    /// Registers a domain's vCPUs (none of them started, the domain paused)
    /// with the scheduler, allowed on `affinity`.
    pub fn add_domain(
        &self,
        domain: &Arc<DomainOf<M>>,
        affinity: CpuSet,
    ) -> Result<(), SchedError> {
        let id = DomainId(domain.id());
        self.with_sched(|s| {
            s.add_domain(id)?;
            s.pause_domain(id)?;
            for i in 0..domain.vcpus() {
                s.add_vcpu(VcpuRef::new(id.0, i as u32), affinity)?;
            }
            Ok(())
        })
        .unwrap_or(Err(SchedError::UnknownCpu))
        .inspect_err(|_| {
            let _ = self.with_sched(|s| s.remove_domain(id));
        })?;
        let mut table = self.table.lock();
        for i in 0..domain.vcpus() {
            let home = VcpuHome::new(domain.clone(), i, HomeState::NotStarted(None));
            table.insert((id.0, i as u32), Arc::new(home));
        }
        Ok(())
    }

    /// Registers dom0's vCPU of `cpu`, created there and about to run,
    /// pinned to it.
    pub fn add_dom0_vcpu(&self, vcpu: M::Vcpu, cpu: usize) -> Arc<VcpuHome<M>> {
        use super::SwitchedState;
        let v = VcpuRef::new(0, vcpu.index() as u32);
        let domain = vcpu.domain().clone();
        let index = vcpu.index();
        let slot = Slot {
            vcpu,
            context: <<M::Vcpu as RunVcpu>::Context as SwitchedState>::initial(),
        };
        let home = Arc::new(VcpuHome::new(
            domain,
            index,
            HomeState::Parked(Box::new(slot)),
        ));
        home.set_active_on(Some(cpu));
        self.table.lock().insert((0, v.index), home.clone());
        let now = self.now();
        self.with_sched(|s| {
            // dom0 is registered by whichever of its vCPUs comes first.
            let _ = s.add_domain(DomainId(0));
            if let Err(e) = s.add_vcpu(v, CpuSet::single(cpu)) {
                note("add", v, e);
            }
            if let Err(e) = s.wake(v, now, true) {
                note("wake", v, e);
            }
        });
        home
    }

    /// Makes vCPU `j` of `domain` runnable: something is pending for it (an
    /// interrupt, an IPI, a start-up IPI, its timer). A running vCPU's CPU
    /// is interrupted, so that it takes the interrupt at its next entry;
    /// dom0's vCPUs wake `urgent` (they serve the devices).
    pub fn wake(&self, domain: &DomainOf<M>, j: usize) {
        self.wake_ref(VcpuRef::new(domain.id(), j as u32), domain.is_dom0());
    }

    /// [`Homes::wake`] by name.
    pub fn wake_ref(&self, v: VcpuRef, urgent: bool) {
        let now = self.now();
        let Some((kicks, running_on)) = self.with_sched(|s| {
            let kicks = s.wake(v, now, urgent).unwrap_or_else(|e| {
                note("wake", v, e);
                CpuSet::EMPTY
            });
            let running = s
                .vcpu_info(v)
                .ok()
                .filter(|i| i.state == VcpuState::Running)
                .map(|i| i.cpu);
            (kicks, running)
        }) else {
            return;
        };
        self.kick(kicks);
        if let Some(c) = running_on
            && c != self.machine.this_cpu()
            && c < MAX_CPUS
        {
            self.machine.interrupt(c);
        }
    }

    /// Gives a domain's boot vCPU its start and lets the domain run.
    pub fn start_domain(&self, domain: &DomainOf<M>, start: Option<StartOf<M>>) {
        if let Some(h) = self.home(VcpuRef::new(domain.id(), 0))
            && let HomeState::NotStarted(s) = &mut *h.state.lock()
        {
            *s = start;
        }
        self.unpause(domain.id());
        self.wake(domain, 0);
    }

    /// Pauses a domain's vCPUs.
    pub fn pause(&self, id: u32) {
        if let Some(Ok(k)) = self.with_sched(|s| s.pause_domain(DomainId(id))) {
            self.kick(k);
        }
    }

    /// Lets a paused domain's vCPUs run again.
    pub fn unpause(&self, id: u32) {
        let now = self.now();
        if let Some(Ok(k)) = self.with_sched(|s| s.unpause_domain(DomainId(id), now)) {
            self.kick(k);
        }
    }

    /// A domain stops for good (destroyed, shut down or crashed): its vCPUs
    /// leave the scheduler, and every CPU frees those it holds.
    pub fn domain_stopping(&self, id: u32) {
        if id == 0 {
            return;
        }
        let k = self
            .with_sched(|s| s.remove_domain(DomainId(id)).unwrap_or(CpuSet::EMPTY))
            .unwrap_or(CpuSet::EMPTY);
        self.stop_generation.fetch_add(1, Ordering::AcqRel);
        self.kick(k.union(self.joined()));
    }

    /// Asks CPU `cpu` to give up `home`'s state.
    pub fn request_flush(&self, home: &Arc<VcpuHome<M>>, cpu: usize) {
        if cpu >= MAX_CPUS {
            return;
        }
        self.flush[cpu].lock().push(home.clone());
        self.kick(CpuSet::single(cpu));
    }

    /// The flush requests for `cpu`.
    pub fn take_flush_requests(&self, cpu: usize) -> Vec<Arc<VcpuHome<M>>> {
        self.flush
            .get(cpu)
            .map(|f| core::mem::take(&mut *f.lock()))
            .unwrap_or_default()
    }

    /// The homes of stopping domains that no CPU holds: theirs to free by
    /// whoever finds them; and the table loses them.
    pub fn take_orphans(&self) -> Vec<Arc<VcpuHome<M>>> {
        let mut table = self.table.lock();
        let dead: Vec<(u32, u32)> = table
            .iter()
            .filter(|(_, h)| h.domain.stopping() && !h.domain.is_dom0())
            .filter(|(_, h)| h.active_on().is_none())
            .map(|(&k, _)| k)
            .collect();
        dead.iter().filter_map(|k| table.remove(k)).collect()
    }

    /// Removes a home from the table (its vCPU was freed).
    pub fn forget(&self, home: &VcpuHome<M>) {
        self.table
            .lock()
            .remove(&(home.domain.id(), home.index as u32));
    }

    /// Every vCPU of domain `id` with its scheduler information.
    pub fn vcpu_infos(&self, id: u32) -> Option<Vec<(u32, VcpuInfo)>> {
        self.with_sched(|s| {
            s.vcpus()
                .filter(|v| v.domain.0 == id)
                .filter_map(|v| s.vcpu_info(v).ok().map(|i| (v.index, i)))
                .collect()
        })
    }

    /// Domain `id`'s weight and cap (percent of one CPU, 0 = none).
    pub fn sched_params(&self, id: u32) -> Result<(u32, u32), SchedError> {
        self.with_sched(|s| {
            s.domain_info(DomainId(id))
                .map(|i| (u32::from(i.weight.get()), i.cap.percent()))
        })
        .unwrap_or(Err(SchedError::UnknownDomain))
    }

    /// Sets domain `id`'s weight and/or cap; nothing changes if either is
    /// refused.
    pub fn set_sched_params(
        &self,
        id: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), SchedError> {
        let cpus = self.with_sched(|s| s.config().cpus).unwrap_or(1);
        if let Some(w) = weight {
            Weight::new(w)?;
        }
        if let Some(c) = cap {
            Cap::new(c, cpus)?;
        }
        let k = self
            .with_sched(|s| -> Result<CpuSet, SchedError> {
                s.domain_info(DomainId(id))?;
                if let Some(w) = weight {
                    s.set_weight(DomainId(id), w)?;
                }
                match cap {
                    Some(c) => s.set_cap(DomainId(id), c),
                    None => Ok(CpuSet::EMPTY),
                }
            })
            .unwrap_or(Err(SchedError::UnknownDomain))?;
        self.kick(k);
        Ok(())
    }

    /// Sets vCPU `vcpu` of domain `id`'s hard affinity to the CPUs of
    /// `bits` (those that run vCPUs).
    pub fn set_affinity(&self, id: u32, vcpu: u32, bits: u64) -> Result<(), SchedError> {
        let now = self.now();
        let set = CpuSet::from_bits(bits).intersection(self.joined());
        if set.is_empty() {
            return Err(SchedError::BadAffinity);
        }
        let k = self
            .with_sched(|s| s.set_affinity(VcpuRef::new(id, vcpu), set, now))
            .unwrap_or(Err(SchedError::UnknownVcpu))?;
        self.kick(k);
        Ok(())
    }

    /// Whether vCPU `vcpu` of domain `id` was started (it ran, or runs).
    pub fn started(&self, id: u32, vcpu: u32) -> bool {
        self.home(VcpuRef::new(id, vcpu))
            .is_some_and(|h| !matches!(*h.state.lock(), HomeState::NotStarted(_)))
    }
}
