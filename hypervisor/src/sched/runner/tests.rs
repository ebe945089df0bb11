//! The loop and the homes against a fake machine: two CPUs simulated on
//! one thread by stepping each CPU's [`Runner`] in turn, fake vCPUs that
//! follow a script and write what the loop did with them into a log.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::vec::Vec;

use super::*;
use crate::sched::{VcpuRef, VcpuState};

/// What the loop did, with the CPU it did it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Create(VcpuRef, usize),
    Leave(VcpuRef, usize),
    Arrive(VcpuRef, usize),
    Run(VcpuRef, usize),
    Release(VcpuRef, usize),
    Wait(usize, Option<u64>),
    /// A switched state was saved from, or restored into, this CPU.
    Save(usize),
    Restore(usize),
}

/// One fake vCPU's behaviour.
#[derive(Default)]
struct Behaviour {
    /// What its next slices end with; an empty script halts.
    script: VecDeque<SliceEnd>,
    halted: bool,
    /// An interrupt waits for it.
    pending: bool,
    /// Its timer.
    deadline: Option<u64>,
}

type Hook = Box<dyn FnMut()>;

#[derive(Default)]
struct World {
    now: u64,
    /// The CPU being stepped.
    cpu: usize,
    log: Vec<Ev>,
    resched: [bool; 2],
    ipis: Vec<usize>,
    vcpus: BTreeMap<VcpuRef, Behaviour>,
    /// Runs when a CPU waits for another (in place of the other CPU
    /// running meanwhile).
    relax: Option<Hook>,
    /// Runs once, right after this halted vCPU was found with nothing to
    /// do.
    after_check: Option<(VcpuRef, Hook)>,
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::default());
}

fn world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    WORLD.with(|w| f(&mut w.borrow_mut()))
}

fn log() -> Vec<Ev> {
    world(|w| w.log.clone())
}

fn behaviour<R>(v: VcpuRef, f: impl FnOnce(&mut Behaviour) -> R) -> R {
    world(|w| f(w.vcpus.entry(v).or_default()))
}

#[derive(Debug)]
struct FakeDomain {
    id: u32,
    vcpus: usize,
    stop: AtomicU8,
    held: AtomicBool,
    guest_stops: std::sync::Mutex<Vec<StopReason>>,
}

impl FakeDomain {
    fn new(id: u32, vcpus: usize) -> Arc<Self> {
        Arc::new(Self {
            id,
            vcpus,
            stop: AtomicU8::new(0),
            held: AtomicBool::new(false),
            guest_stops: std::sync::Mutex::new(Vec::new()),
        })
    }
}

impl RunDomain for FakeDomain {
    type Start = ();
    fn id(&self) -> u32 {
        self.id
    }
    fn label(&self) -> impl Display {
        self.id
    }
    fn vcpus(&self) -> usize {
        self.vcpus
    }
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire) != 0
    }
    fn request_stop(&self, code: u8) {
        let _ = self
            .stop
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }
    fn held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }
    fn dying(&self) -> bool {
        false
    }
    fn guest_stopped(&self, why: StopReason) {
        self.guest_stops.lock().unwrap().push(why);
    }
    fn start_after_sipi(&self, _: usize) -> Option<()> {
        None
    }
}

struct FakeContext;

impl SwitchedState for FakeContext {
    fn initial() -> Self {
        FakeContext
    }
    fn save(&mut self) {
        world(|w| {
            let cpu = w.cpu;
            w.log.push(Ev::Save(cpu));
        });
    }
    fn restore(&self) {
        world(|w| {
            let cpu = w.cpu;
            w.log.push(Ev::Restore(cpu));
        });
    }
}

#[derive(Debug)]
struct FakeVcpu {
    domain: Arc<FakeDomain>,
    index: usize,
}

impl FakeVcpu {
    fn me(&self) -> VcpuRef {
        VcpuRef::new(self.domain.id, self.index as u32)
    }
    fn record(&self, ev: fn(VcpuRef, usize) -> Ev) {
        let v = self.me();
        world(|w| {
            let cpu = w.cpu;
            w.log.push(ev(v, cpu));
        });
    }
}

impl RunVcpu for FakeVcpu {
    type Domain = FakeDomain;
    type Context = FakeContext;
    type Error = &'static str;

    fn create(index: usize, domain: &Arc<FakeDomain>, _: &()) -> Result<Self, &'static str> {
        let v = FakeVcpu {
            domain: domain.clone(),
            index,
        };
        v.record(Ev::Create);
        Ok(v)
    }
    fn index(&self) -> usize {
        self.index
    }
    fn domain(&self) -> &Arc<FakeDomain> {
        &self.domain
    }
    fn make_current(&self) -> Result<(), &'static str> {
        Ok(())
    }
    fn leave_cpu(&mut self) -> Result<(), &'static str> {
        self.record(Ev::Leave);
        Ok(())
    }
    fn arrive_here(&mut self) -> Result<(), &'static str> {
        self.record(Ev::Arrive);
        Ok(())
    }
    fn run_slice(&mut self, budget: u64) -> SliceEnd {
        self.record(Ev::Run);
        let end = behaviour(self.me(), |b| {
            let end = b.script.pop_front().unwrap_or(SliceEnd::Blocked);
            b.halted = end == SliceEnd::Blocked;
            end
        });
        world(|w| w.now += budget.min(500));
        end
    }
    fn wants_to_run(&mut self) -> bool {
        let now = world(|w| w.now);
        let stopping = self.domain.stopping();
        let wants = behaviour(self.me(), |b| {
            let timer = b.deadline.is_some_and(|d| d <= now);
            let wants = !b.halted || b.pending || timer || stopping;
            if timer {
                // A one-shot timer: it fired.
                b.deadline = None;
            }
            if wants {
                b.halted = false;
                b.pending = false;
            }
            wants
        });
        let me = self.me();
        let hook = world(|w| w.after_check.take_if(|(v, _)| *v == me && !wants));
        if let Some((_, mut hook)) = hook {
            hook();
        }
        wants
    }
    fn wake_deadline(&self) -> Option<u64> {
        behaviour(self.me(), |b| b.deadline)
    }
    fn release(self) {
        self.record(Ev::Release);
    }
}

#[derive(Debug)]
struct FakeMachine;

impl Machine for FakeMachine {
    type Vcpu = FakeVcpu;
    fn now(&self) -> u64 {
        world(|w| w.now)
    }
    fn ticks_per_ms(&self) -> u64 {
        1000
    }
    fn online_cpus(&self) -> usize {
        2
    }
    fn this_cpu(&self) -> usize {
        world(|w| w.cpu)
    }
    fn kick(&self, cpu: usize) {
        world(|w| {
            w.resched[cpu] = true;
            if cpu != w.cpu {
                w.ipis.push(cpu);
            }
        });
    }
    fn interrupt(&self, cpu: usize) {
        world(|w| w.ipis.push(cpu));
    }
}

#[derive(Debug)]
struct FakeCpu(usize);

impl ThisCpu for FakeCpu {
    fn clear_resched(&self) {
        world(|w| w.resched[self.0] = false);
    }
    fn resched(&self) -> bool {
        world(|w| w.resched[self.0])
    }
    fn wait_for_interrupt(&self, deadline: Option<u64>) {
        world(|w| {
            w.log.push(Ev::Wait(self.0, deadline));
            // Time passes until the deadline (or a while).
            w.now = deadline.map_or(w.now + 1000, |d| d.max(w.now));
        });
    }
    fn device_interrupts_pending(&self) -> bool {
        false
    }
    fn relax(&self) {
        let hook = world(|w| w.relax.take());
        let mut hook = hook.expect("a CPU waits for another, and nothing lets that one run");
        hook();
        world(|w| w.relax = Some(hook));
    }
}

type Cpu = Runner<'static, FakeMachine, FakeCpu>;
type Shared = std::rc::Rc<RefCell<Cpu>>;

/// A machine with two CPUs, each with its dom0 vCPU (halted once run).
fn machine() -> (&'static Homes<FakeMachine>, Arc<FakeDomain>, [Shared; 2]) {
    let homes: &'static Homes<FakeMachine> = Box::leak(Box::new(Homes::new(FakeMachine)));
    let dom0 = FakeDomain::new(0, 2);
    let cpus = [0, 1].map(|c| {
        world(|w| w.cpu = c);
        let first = FakeVcpu {
            domain: dom0.clone(),
            index: c,
        };
        std::rc::Rc::new(RefCell::new(Runner::new(homes, FakeCpu(c), c, first)))
    });
    // While CPU 1 waits for CPU 0, CPU 0 serves its requests.
    let cpu0 = cpus[0].clone();
    world(|w| {
        w.relax = Some(Box::new(move || {
            let was = world(|w| std::mem::replace(&mut w.cpu, 0));
            cpu0.borrow_mut().serve_flushes();
            world(|w| w.cpu = was);
        }));
    });
    (homes, dom0, cpus)
}

fn step(cpus: &[Shared; 2], c: usize) -> Option<StopReason> {
    world(|w| w.cpu = c);
    cpus[c].borrow_mut().step()
}

/// A domU with `n` vCPUs, registered and started, allowed on `cpus`.
fn domu(homes: &Homes<FakeMachine>, id: u32, n: usize, cpus: u64) -> Arc<FakeDomain> {
    let d = FakeDomain::new(id, n);
    homes
        .add_domain(&d, crate::sched::CpuSet::from_bits(cpus))
        .unwrap();
    for i in 0..n {
        homes.set_affinity(id, i as u32, cpus).unwrap();
    }
    homes.start_domain(&d, Some(()));
    d
}

fn state(homes: &Homes<FakeMachine>, v: VcpuRef) -> VcpuState {
    homes.with_sched(|s| s.vcpu_info(v).unwrap().state).unwrap()
}

fn runs(v: VcpuRef) -> Vec<usize> {
    log()
        .iter()
        .filter_map(|e| match *e {
            Ev::Run(w, c) if w == v => Some(c),
            _ => None,
        })
        .collect()
}

fn position(ev: Ev) -> usize {
    log()
        .iter()
        .position(|&e| e == ev)
        .unwrap_or_else(|| panic!("{ev:?} not in {:?}", log()))
}

fn e_domain(e: &Ev) -> u32 {
    match *e {
        Ev::Create(v, _)
        | Ev::Leave(v, _)
        | Ev::Arrive(v, _)
        | Ev::Run(v, _)
        | Ev::Release(v, _) => v.domain.0,
        Ev::Wait(..) | Ev::Save(_) | Ev::Restore(_) => u32::MAX,
    }
}

#[test]
fn a_vcpu_picked_elsewhere_leaves_its_old_cpu_before_it_arrives() {
    let (homes, _, cpus) = machine();
    let v = VcpuRef::new(1, 0);
    behaviour(v, |b| b.script = [SliceEnd::Preempted; 20].into());
    domu(homes, 1, 1, 0b01);
    for _ in 0..4 {
        step(&cpus, 0);
    }
    assert!(position(Ev::Create(v, 0)) < position(Ev::Run(v, 0)));
    assert!(runs(v).iter().all(|&c| c == 0) && !runs(v).is_empty());
    let home = homes.home(v).unwrap();
    assert_eq!(home.active_on(), Some(0));

    homes.set_affinity(1, 0, 0b10).unwrap();
    // CPU 0 lets it go in the scheduler, but still holds its state.
    step(&cpus, 0);
    assert_eq!(home.active_on(), Some(0));
    for _ in 0..3 {
        step(&cpus, 1);
    }
    let leave = position(Ev::Leave(v, 0));
    let arrive = position(Ev::Arrive(v, 1));
    let run = log()
        .iter()
        .rposition(|&e| e == Ev::Run(v, 1))
        .expect("it ran on CPU 1");
    assert!(leave < arrive && arrive < run, "{:?}", log());
    // Its switched state was still in CPU 0: saved there before it left,
    // and put into CPU 1 before it ran there.
    assert_eq!(log()[leave - 1], Ev::Save(0), "{:?}", log());
    assert!(log()[arrive..run].contains(&Ev::Restore(1)), "{:?}", log());
    assert_eq!(home.active_on(), Some(1));
    assert_eq!(
        log()
            .iter()
            .filter(|e| matches!(e, Ev::Leave(..) | Ev::Arrive(..)))
            .count(),
        2,
        "one move: {:?}",
        log()
    );
}

#[test]
fn a_halting_vcpu_is_blocked_before_its_interrupts_are_looked_at_again() {
    let (homes, _, cpus) = machine();
    let v = VcpuRef::new(1, 0);
    behaviour(v, |b| b.script = [SliceEnd::Blocked].into());
    domu(homes, 1, 1, 0b01);
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    // An interrupt comes right after the last look at its pending ones.
    world(|w| {
        w.after_check = Some((
            v,
            Box::new(move || {
                seen2.borrow_mut().push(state(homes, v));
                behaviour(v, |b| b.pending = true);
                homes.wake(&*FakeDomain::new(1, 1), 0);
            }),
        ))
    });
    for _ in 0..3 {
        if runs(v).is_empty() {
            step(&cpus, 0);
        }
    }
    assert_eq!(runs(v), [0], "it ran once and halted");
    assert_eq!(*seen.borrow(), [VcpuState::Blocked]);
    assert_ne!(state(homes, v), VcpuState::Blocked, "the wake was kept");
    for _ in 0..3 {
        step(&cpus, 0);
    }
    assert_eq!(runs(v), [0, 0], "it ran again for its interrupt");
}

#[test]
fn a_halted_vcpu_wakes_at_its_timer() {
    let (homes, _, cpus) = machine();
    let v = VcpuRef::new(1, 0);
    let deadline = 50_000;
    behaviour(v, |b| {
        b.script = [SliceEnd::Blocked, SliceEnd::Blocked].into();
        b.deadline = Some(deadline);
    });
    domu(homes, 1, 1, 0b01);
    for _ in 0..3 {
        step(&cpus, 0);
    }
    assert_eq!(runs(v), [0]);
    assert_eq!(state(homes, v), VcpuState::Blocked);
    // Idle, CPU 0 waits no longer than the timer.
    let waits: Vec<Option<u64>> = log()
        .iter()
        .filter_map(|e| match *e {
            Ev::Wait(0, d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(
        waits.last().unwrap().is_some_and(|d| d <= deadline),
        "{waits:?}"
    );
    while world(|w| w.now) < deadline {
        step(&cpus, 0);
    }
    for _ in 0..2 {
        step(&cpus, 0);
    }
    assert_eq!(runs(v), [0, 0], "the timer woke it: {:?}", log());
}

#[test]
fn a_stopped_domains_vcpus_are_released_once_where_they_are_held() {
    let (homes, _, cpus) = machine();
    let [a, b, never] = [0, 1, 2].map(|i| VcpuRef::new(1, i));
    for v in [a, b] {
        behaviour(v, |b| b.script = [SliceEnd::Preempted; 20].into());
    }
    let d = FakeDomain::new(1, 3);
    homes
        .add_domain(&d, crate::sched::CpuSet::from_bits(0b11))
        .unwrap();
    homes.set_affinity(1, 0, 0b01).unwrap();
    homes.set_affinity(1, 1, 0b10).unwrap();
    homes.start_domain(&d, Some(()));
    behaviour(b, |x| x.pending = true);
    homes.wake(&d, 1);
    // vCPU 1 is an application processor: give it a start as INIT/SIPI would.
    if let HomeState::NotStarted(s) = &mut *homes.home(b).unwrap().state.lock() {
        *s = Some(());
    }
    for _ in 0..3 {
        step(&cpus, 0);
        step(&cpus, 1);
    }
    assert!(runs(a).contains(&0) && runs(b).contains(&1), "{:?}", log());

    d.request_stop(3);
    homes.domain_stopping(1);
    for _ in 0..3 {
        step(&cpus, 0);
        step(&cpus, 1);
    }
    let released: Vec<Ev> = log()
        .into_iter()
        .filter(|e| matches!(e, Ev::Release(..)))
        .collect();
    assert_eq!(released, [Ev::Release(a, 0), Ev::Release(b, 1)]);
    for v in [a, b, never] {
        assert!(homes.home(v).is_none(), "{v:?} forgotten");
    }
    let ran = log().len();
    for _ in 0..2 {
        step(&cpus, 0);
        step(&cpus, 1);
    }
    assert!(
        !log()[ran..]
            .iter()
            .any(|e| matches!(e, Ev::Release(..) | Ev::Run(..) if e_domain(e) == 1)),
        "nothing more of domain 1: {:?}",
        &log()[ran..]
    );
}

#[test]
fn dom0s_vcpus_stay_on_their_cpus() {
    let (homes, dom0, cpus) = machine();
    for i in 0..2 {
        behaviour(VcpuRef::new(0, i), |b| {
            b.script = [SliceEnd::Preempted; 10].into();
        });
    }
    for i in 0..2 {
        behaviour(VcpuRef::new(1, i), |b| {
            b.script = [SliceEnd::Preempted; 10].into()
        });
    }
    let d = domu(homes, 1, 2, 0b11);
    behaviour(VcpuRef::new(1, 1), |b| b.pending = true);
    homes.wake(&d, 1);
    for i in 0..24 {
        step(&cpus, i % 2);
        if i % 5 == 0 {
            // Wakes from the other CPU.
            world(|w| w.cpu = 1 - i % 2);
            homes.wake(&dom0, i % 2);
        }
    }
    for i in 0..2 {
        let r = runs(VcpuRef::new(0, i));
        assert!(
            r.len() > 1 && r.iter().all(|&c| c == i as usize),
            "dom0 v{i}: {r:?}"
        );
    }
    assert!(
        !log()
            .iter()
            .any(|e| matches!(e, Ev::Leave(v, _) | Ev::Arrive(v, _) if v.domain.0 == 0)),
        "{:?}",
        log()
    );
}

#[test]
fn dom0_stopping_ends_its_cpus_loop() {
    let (_, dom0, cpus) = machine();
    behaviour(VcpuRef::new(0, 1), |b| {
        b.script = [SliceEnd::Stopped(StopReason::PowerOff)].into();
    });
    assert_eq!(step(&cpus, 1), Some(StopReason::PowerOff));
    assert!(dom0.guest_stops.lock().unwrap().is_empty());
}

#[test]
fn a_stopped_domains_vcpu_that_no_cpu_holds_is_released_by_any_cpu_once() {
    let (homes, _, cpus) = machine();
    let v = VcpuRef::new(1, 0);
    behaviour(v, |b| b.script = [SliceEnd::Preempted; 20].into());
    let d = domu(homes, 1, 1, 0b01);
    for _ in 0..3 {
        step(&cpus, 0);
    }
    let home = homes.home(v).unwrap();
    assert_eq!(home.active_on(), Some(0));
    // Another CPU asked CPU 0 to give it up.
    homes.request_flush(&home, 0);
    homes.pause(1);
    step(&cpus, 0);
    assert!(log().contains(&Ev::Leave(v, 0)));
    assert_eq!(home.active_on(), None);

    d.request_stop(3);
    homes.domain_stopping(1);
    for _ in 0..2 {
        step(&cpus, 1);
        step(&cpus, 0);
    }
    let released: Vec<Ev> = log()
        .into_iter()
        .filter(|e| matches!(e, Ev::Release(..)))
        .collect();
    assert_eq!(released, [Ev::Release(v, 1)], "{:?}", log());
    assert!(homes.home(v).is_none());
    assert!(matches!(*home.state.lock(), HomeState::Released));
}
