//! Where every vCPU is, and the scheduler that decides where it runs.
//!
//! Each vCPU has a *home* ([`VcpuHome`]): while no CPU runs it, the vCPU
//! itself (its VMCS, registers and switched state) waits there; a CPU that
//! the scheduler ([`crate::sched`]) tells to run it takes it out and puts it
//! back when the slice ends. A VMCS stays *active* on the last CPU that ran
//! it (SDM Vol. 3C §25.1: it may be cached in that processor), so that
//! running it there again costs one VMPTRLD; another CPU that is told to run
//! it asks that CPU to clear it first ([`request_flush`]) and waits, serving
//! such requests of its own meanwhile (two CPUs waiting for each other both
//! make progress).
//!
//! Everything that can make a vCPU runnable (an interrupt or IPI posted to
//! its mailbox, INIT and start-up IPIs, a timer, a device interrupt for
//! dom0, unpausing) ends in [`wake`], and every scheduler request that
//! returns CPUs to kick goes through [`kick`]: the CPU's `resched` flag and
//! an IPI, which takes it out of its guest or out of its wait.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::Vcpu;
use super::domain::Domain;
use super::guest_context::GuestContext;
use super::setup::EntryState;
use crate::arch::x86_64::{cpu, idt, lapic, percpu};
use crate::sched::{CpuSet, DomainId, SchedConfig, SchedError, Scheduler, Ticks, VcpuRef};

/// How a vCPU that was never run starts: its entry state, RBX and RSI.
pub type Start = (EntryState, u64, u64);

/// A vCPU with the state that VM entries do not switch.
#[derive(Debug)]
pub struct Slot {
    /// The vCPU.
    pub vcpu: Vcpu,
    /// Its switched state while another vCPU is in the CPU.
    pub context: GuestContext,
}

/// What a home holds.
#[derive(Debug)]
pub enum HomeState {
    /// Never run: the boot vCPU with its start once the domain is
    /// unpaused, an application processor with `None` (it starts at its
    /// INIT and start-up IPI).
    NotStarted(Option<Start>),
    /// Created, and no CPU runs it now.
    Parked(Box<Slot>),
    /// A CPU took it out to run it.
    Running,
    /// Its domain stopped and its frames went back.
    Released,
}

/// One vCPU's home.
#[derive(Debug)]
pub struct VcpuHome {
    /// Its domain.
    pub domain: Arc<Domain>,
    /// Its index in the domain.
    pub index: usize,
    /// The vCPU, when no CPU runs it.
    pub state: spin::Mutex<HomeState>,
    /// 1 + the CPU whose hardware holds its VMCS (and maybe its switched
    /// state); 0 when none does.
    active_on: AtomicUsize,
}

impl VcpuHome {
    /// Its scheduler name.
    pub fn vref(&self) -> VcpuRef {
        VcpuRef::new(self.domain.id, self.index as u32)
    }

    /// The CPU that holds its VMCS, if any.
    pub fn active_on(&self) -> Option<usize> {
        self.active_on.load(Ordering::Acquire).checked_sub(1)
    }

    /// Records which CPU holds its VMCS.
    pub fn set_active_on(&self, cpu: Option<usize>) {
        self.active_on
            .store(cpu.map_or(0, |c| c + 1), Ordering::Release);
    }
}

/// Every vCPU's home, by (domain, index).
static HOMES: spin::Mutex<BTreeMap<(u32, u32), Arc<VcpuHome>>> = spin::Mutex::new(BTreeMap::new());

/// The scheduler (set up by the first CPU that runs vCPUs).
static SCHED: spin::Once<spin::Mutex<Scheduler>> = spin::Once::new();

/// vCPUs whose VMCS another CPU wants this one to clear.
static FLUSH: [spin::Mutex<Vec<Arc<VcpuHome>>>; percpu::MAX_CPUS] =
    [const { spin::Mutex::new(Vec::new()) }; percpu::MAX_CPUS];

/// Bumped whenever a domain stops: CPUs then free the vCPUs they hold.
pub static STOP_GENERATION: AtomicU64 = AtomicU64::new(0);

/// CPUs that run vCPUs (bit per CPU).
static JOINED: AtomicU64 = AtomicU64::new(0);

/// The TSC now, as the scheduler counts time.
pub fn now() -> Ticks {
    Ticks(cpu::rdtsc())
}

/// Number of CPUs the machine brought online.
fn online_cpus() -> usize {
    (0..percpu::MAX_CPUS)
        .take_while(|&i| percpu::get(i).online.load(Ordering::Acquire))
        .count()
}

/// Sets the scheduler up (once) and records that this CPU runs vCPUs.
pub fn join() {
    SCHED.call_once(|| {
        let cfg = SchedConfig::new(online_cpus().max(1), crate::logger::tsc_khz().max(1000));
        let s = Scheduler::new(cfg).unwrap_or_else(|e| {
            log::error!("scheduler: {e:?}; running with one CPU's settings");
            Scheduler::new(SchedConfig::new(1, 1_000_000)).expect("a one-CPU configuration")
        });
        spin::Mutex::new(s)
    });
    JOINED.fetch_or(1 << percpu::current_index(), Ordering::AcqRel);
}

/// The CPUs that run vCPUs (the default affinity of a domU's vCPUs).
pub fn joined() -> CpuSet {
    CpuSet::from_bits(JOINED.load(Ordering::Acquire))
}

/// Runs `f` on the scheduler, if it is set up.
pub fn with_sched<R>(f: impl FnOnce(&mut Scheduler) -> R) -> Option<R> {
    SCHED.get().map(|s| f(&mut s.lock()))
}

/// Asks the CPUs of `set` to call `pick` again: sets their flag and sends
/// them an IPI (not to this CPU, which looks at its flag before it enters).
pub fn kick(set: CpuSet) {
    let me = percpu::current_index();
    for c in set.iter() {
        if c >= percpu::MAX_CPUS {
            continue;
        }
        percpu::get(c).resched.store(true, Ordering::Release);
        if c != me {
            lapic::send_fixed(
                percpu::get(c).apic_id.load(Ordering::Relaxed),
                idt::VECTOR_IPI,
            );
        }
    }
}

/// Logs a scheduler refusal that should not happen (unknown vCPU on a
/// path that registered it).
fn note(what: &str, v: VcpuRef, e: SchedError) {
    log::debug!("scheduler: {what} d{}v{}: {e:?}", v.domain.0, v.index);
}

/// The home of `v`.
pub fn home(v: VcpuRef) -> Option<Arc<VcpuHome>> {
    HOMES.lock().get(&(v.domain.0, v.index)).cloned()
}

/// Registers a domain's vCPUs (none of them started, the domain paused)
/// with the scheduler, allowed on `affinity`.
pub fn add_domain(domain: &Arc<Domain>, affinity: CpuSet) -> Result<(), SchedError> {
    let id = DomainId(domain.id);
    with_sched(|s| {
        s.add_domain(id)?;
        s.pause_domain(id)?;
        for i in 0..domain.vcpus() {
            s.add_vcpu(VcpuRef::new(domain.id, i as u32), affinity)?;
        }
        Ok(())
    })
    .unwrap_or(Err(SchedError::UnknownCpu))
    .inspect_err(|_| {
        let _ = with_sched(|s| s.remove_domain(id));
    })?;
    let mut homes = HOMES.lock();
    for i in 0..domain.vcpus() {
        homes.insert(
            (domain.id, i as u32),
            Arc::new(VcpuHome {
                domain: domain.clone(),
                index: i,
                state: spin::Mutex::new(HomeState::NotStarted(None)),
                active_on: AtomicUsize::new(0),
            }),
        );
    }
    Ok(())
}

/// Registers dom0's vCPU of this CPU, created here and about to run, pinned
/// to this CPU.
pub fn add_dom0_vcpu(vcpu: Vcpu, context: GuestContext) -> Arc<VcpuHome> {
    let me = percpu::current_index();
    let v = VcpuRef::new(0, vcpu.index as u32);
    let home = Arc::new(VcpuHome {
        domain: vcpu.domain.clone(),
        index: vcpu.index,
        state: spin::Mutex::new(HomeState::Parked(Box::new(Slot { vcpu, context }))),
        active_on: AtomicUsize::new(me + 1),
    });
    HOMES.lock().insert((0, v.index), home.clone());
    let now = now();
    with_sched(|s| {
        // dom0 is registered by whichever of its vCPUs comes first.
        let _ = s.add_domain(DomainId(0));
        if let Err(e) = s.add_vcpu(v, CpuSet::single(me)) {
            note("add", v, e);
        }
        if let Err(e) = s.wake(v, now, true) {
            note("wake", v, e);
        }
    });
    home
}

/// Makes vCPU `j` of `domain` runnable: something is pending for it (an
/// interrupt, an IPI, a start-up IPI, its timer). A running vCPU's CPU gets
/// an IPI, so that it takes the interrupt at its next entry; dom0's vCPUs
/// wake `urgent` (they serve the devices).
pub fn wake(domain: &Domain, j: usize) {
    wake_ref(VcpuRef::new(domain.id, j as u32), domain.is_dom0());
}

/// [`wake`] by name.
pub fn wake_ref(v: VcpuRef, urgent: bool) {
    let now = now();
    let Some((kicks, running_on)) = with_sched(|s| {
        let kicks = s.wake(v, now, urgent).unwrap_or_else(|e| {
            note("wake", v, e);
            CpuSet::EMPTY
        });
        let running = s
            .vcpu_info(v)
            .ok()
            .filter(|i| i.state == crate::sched::VcpuState::Running)
            .map(|i| i.cpu);
        (kicks, running)
    }) else {
        return;
    };
    kick(kicks);
    if let Some(c) = running_on
        && c != percpu::current_index()
        && c < percpu::MAX_CPUS
    {
        lapic::send_fixed(
            percpu::get(c).apic_id.load(Ordering::Relaxed),
            idt::VECTOR_IPI,
        );
    }
}

/// Gives a domain's boot vCPU its start and lets the domain run.
pub fn start_domain(domain: &Domain, start: Option<Start>) {
    if let Some(h) = home(VcpuRef::new(domain.id, 0)) {
        let mut st = h.state.lock();
        if let HomeState::NotStarted(s) = &mut *st {
            *s = start;
        }
    }
    unpause(domain.id);
    wake(domain, 0);
}

/// Pauses a domain's vCPUs.
pub fn pause(id: u32) {
    if let Some(Ok(k)) = with_sched(|s| s.pause_domain(DomainId(id))) {
        kick(k);
    }
}

/// Lets a paused domain's vCPUs run again.
pub fn unpause(id: u32) {
    let now = now();
    if let Some(Ok(k)) = with_sched(|s| s.unpause_domain(DomainId(id), now)) {
        kick(k);
    }
}

/// A domain stops for good (destroyed, shut down or crashed): its vCPUs
/// leave the scheduler, and every CPU frees those it holds.
pub fn domain_stopping(id: u32) {
    if id == 0 {
        return;
    }
    let k = with_sched(|s| s.remove_domain(DomainId(id)).unwrap_or(CpuSet::EMPTY))
        .unwrap_or(CpuSet::EMPTY);
    STOP_GENERATION.fetch_add(1, Ordering::AcqRel);
    kick(k.union(joined()));
}

/// Asks CPU `cpu` to clear `home`'s VMCS and give up its state.
pub fn request_flush(home: &Arc<VcpuHome>, cpu: usize) {
    if cpu >= percpu::MAX_CPUS {
        return;
    }
    FLUSH[cpu].lock().push(home.clone());
    kick(CpuSet::single(cpu));
}

/// The flush requests for this CPU.
pub fn take_flush_requests() -> Vec<Arc<VcpuHome>> {
    core::mem::take(&mut *FLUSH[percpu::current_index()].lock())
}

/// The homes of stopping domains that no CPU holds: theirs to free by
/// whoever finds them; and the table loses them.
pub fn take_orphans() -> Vec<Arc<VcpuHome>> {
    let mut homes = HOMES.lock();
    let dead: Vec<(u32, u32)> = homes
        .iter()
        .filter(|(_, h)| h.domain.stop.load(Ordering::Acquire) != 0 && !h.domain.is_dom0())
        .filter(|(_, h)| h.active_on().is_none())
        .map(|(&k, _)| k)
        .collect();
    dead.iter().filter_map(|k| homes.remove(k)).collect()
}

/// Removes a home from the table (its vCPU was freed).
pub fn forget(home: &VcpuHome) {
    HOMES.lock().remove(&(home.domain.id, home.index as u32));
}

/// Every vCPU of domain `id` with its scheduler information.
pub fn vcpu_infos(id: u32) -> Option<Vec<(u32, crate::sched::VcpuInfo)>> {
    with_sched(|s| {
        s.vcpus()
            .filter(|v| v.domain.0 == id)
            .filter_map(|v| s.vcpu_info(v).ok().map(|i| (v.index, i)))
            .collect()
    })
}

/// Domain `id`'s weight and cap (percent of one CPU, 0 = none).
pub fn sched_params(id: u32) -> Result<(u32, u32), SchedError> {
    with_sched(|s| {
        s.domain_info(DomainId(id))
            .map(|i| (u32::from(i.weight.get()), i.cap.percent()))
    })
    .unwrap_or(Err(SchedError::UnknownDomain))
}

/// Sets domain `id`'s weight and/or cap; nothing changes if either is
/// refused.
pub fn set_sched_params(id: u32, weight: Option<u32>, cap: Option<u32>) -> Result<(), SchedError> {
    let cpus = with_sched(|s| s.config().cpus).unwrap_or(1);
    if let Some(w) = weight {
        crate::sched::Weight::new(w)?;
    }
    if let Some(c) = cap {
        crate::sched::Cap::new(c, cpus)?;
    }
    let k = with_sched(|s| -> Result<CpuSet, SchedError> {
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
    kick(k);
    Ok(())
}

/// Sets vCPU `vcpu` of domain `id`'s hard affinity to the CPUs of `bits`.
pub fn set_affinity(id: u32, vcpu: u32, bits: u64) -> Result<(), SchedError> {
    let now = now();
    let set = CpuSet::from_bits(bits).intersection(joined());
    if set.is_empty() {
        return Err(SchedError::BadAffinity);
    }
    let k = with_sched(|s| s.set_affinity(VcpuRef::new(id, vcpu), set, now))
        .unwrap_or(Err(SchedError::UnknownVcpu))?;
    kick(k);
    Ok(())
}

/// Whether vCPU `vcpu` of domain `id` was started (it ran, or runs).
pub fn started(id: u32, vcpu: u32) -> bool {
    home(VcpuRef::new(id, vcpu))
        .is_some_and(|h| !matches!(*h.state.lock(), HomeState::NotStarted(_)))
}
