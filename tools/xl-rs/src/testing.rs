//! Test doubles for the commands: small fake kernel images the builder
//! accepts, and a mock hypervisor that keeps domains, their memory and their
//! consoles the way the ABI describes. Used by this crate's unit tests and
//! by `tests/cli.rs`; nothing in the tool itself uses them.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use dom0_abi::domain::{DOMAIN_FLAG_PRIVILEGED, DomainState};
use dom0_abi::hypercall::MAX_BUFFER_BYTES;
use dom0_abi::info::{VMX_EPT, VMX_EPT_2M};
use dom0_abi::sched::{WEIGHT_DEFAULT, cap_valid, weight_valid};
use dom0_abi::{
    AbiVersion, DomainCreateArgs, DomainInfo, HvInfo, HypercallError, PAGE_SIZE, SchedParams,
    ShutdownReason, Status, VcpuEntry, VcpuInfo, VcpuState,
};

use crate::commands::monitor::MonitorRequest;
use crate::device::{DeviceError, EventWait, Events, HostFacts, Hypervisor, LogText, Opener};
use crate::terminal::{ConsoleInput, Input};

/// Physical address of the fake vmlinux's one segment (a stock kernel's
/// `LOAD_PHYSICAL_ADDR`).
pub const FAKE_KERNEL_PADDR: u64 = 0x100_0000;

/// An ELF64 x86-64 executable with one `PT_LOAD` segment of `code` (plus
/// `bss` zero bytes) at [`FAKE_KERNEL_PADDR`] and a `PT_NOTE` with Xen's
/// PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`, 18) pointing `entry_offset`
/// bytes into the segment. Layout per the System V ELF-64 specification.
#[must_use]
pub fn fake_pvh_vmlinux(code: &[u8], bss: u64, entry_offset: u32) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let note_off = EHDR + 2 * PHDR;
    let mut note = Vec::new();
    note.extend_from_slice(&4u32.to_le_bytes()); // namesz
    note.extend_from_slice(&4u32.to_le_bytes()); // descsz
    note.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
    note.extend_from_slice(b"Xen\0");
    let entry = FAKE_KERNEL_PADDR as u32 + entry_offset;
    note.extend_from_slice(&entry.to_le_bytes());
    let code_off = 0x1000usize;

    let mut f = vec![0u8; code_off];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // ELFCLASS64
    f[5] = 1; // ELFDATA2LSB
    f[6] = 1; // EV_CURRENT
    put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut f, 20, &1u32.to_le_bytes());
    put(&mut f, 24, &0xffff_ffff_8100_0000u64.to_le_bytes()); // e_entry (virtual)
    put(&mut f, 32, &(EHDR as u64).to_le_bytes()); // e_phoff
    put(&mut f, 52, &(EHDR as u16).to_le_bytes());
    put(&mut f, 54, &(PHDR as u16).to_le_bytes());
    put(&mut f, 56, &2u16.to_le_bytes()); // e_phnum
    // PT_LOAD
    let load = EHDR;
    put(&mut f, load, &1u32.to_le_bytes());
    put(&mut f, load + 4, &5u32.to_le_bytes()); // R X
    put(&mut f, load + 8, &(code_off as u64).to_le_bytes());
    put(
        &mut f,
        load + 16,
        &(0xffff_ffff_8000_0000 | FAKE_KERNEL_PADDR).to_le_bytes(),
    );
    put(&mut f, load + 24, &FAKE_KERNEL_PADDR.to_le_bytes());
    put(&mut f, load + 32, &(code.len() as u64).to_le_bytes());
    put(&mut f, load + 40, &(code.len() as u64 + bss).to_le_bytes());
    put(&mut f, load + 48, &0x20_0000u64.to_le_bytes());
    // PT_NOTE
    let pnote = EHDR + PHDR;
    put(&mut f, pnote, &4u32.to_le_bytes());
    put(&mut f, pnote + 4, &4u32.to_le_bytes());
    put(&mut f, pnote + 8, &(note_off as u64).to_le_bytes());
    put(&mut f, pnote + 32, &(note.len() as u64).to_le_bytes());
    put(&mut f, pnote + 40, &(note.len() as u64).to_le_bytes());
    put(&mut f, pnote + 48, &4u64.to_le_bytes());
    put(&mut f, note_off, &note);
    f.extend_from_slice(code);
    f
}

/// A bzImage of boot protocol 2.15 whose protected-mode kernel is `kernel`
/// (after one setup sector), relocatable, preferring 16 MiB, needing
/// `init_size` bytes there (Linux `Documentation/arch/x86/boot.rst`).
#[must_use]
pub fn fake_bzimage(kernel: &[u8], init_size: u32) -> Vec<u8> {
    let setup_sects = 1u8;
    let mut f = vec![0u8; (usize::from(setup_sects) + 1) * 512];
    f[0x1F1] = setup_sects;
    put(&mut f, 0x1FE, &0xAA55u16.to_le_bytes());
    f[0x200] = 0xEB; // jmp short
    f[0x201] = (0x268 - 0x202) as u8; // the header runs to 0x268
    put(&mut f, 0x202, b"HdrS");
    put(&mut f, 0x206, &0x020Fu16.to_le_bytes());
    f[0x211] = 0x01; // LOADED_HIGH
    put(&mut f, 0x22C, &0x7FFF_FFFFu32.to_le_bytes()); // initrd_addr_max
    put(&mut f, 0x230, &0x20_0000u32.to_le_bytes()); // kernel_alignment
    f[0x234] = 1; // relocatable_kernel
    put(&mut f, 0x236, &0x3u16.to_le_bytes()); // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
    put(&mut f, 0x238, &2047u32.to_le_bytes()); // cmdline_size
    put(&mut f, 0x258, &FAKE_KERNEL_PADDR.to_le_bytes()); // pref_address
    put(&mut f, 0x260, &init_size.to_le_bytes());
    f.extend_from_slice(kernel);
    f
}

fn put(buf: &mut [u8], offset: usize, bytes: &[u8]) {
    buf[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// One domain of the mock.
#[derive(Debug, Clone)]
pub struct MockDomain {
    /// What `DOMAIN_INFO` reports.
    pub info: DomainInfo,
    /// Whether it was ever unpaused (copy-in and entry are refused after).
    pub has_run: bool,
    /// What was copied in, by destination address.
    pub memory: BTreeMap<u64, Vec<u8>>,
    /// The entry state of vCPU 0, once set.
    pub entry: Option<VcpuEntry>,
    /// Console output not read yet, one chunk per `CONSOLE_READ`.
    pub console_out: VecDeque<Vec<u8>>,
    /// Everything typed into the console.
    pub console_in: Vec<u8>,
    /// A shutdown asked for: the guest obeys after this many `DOMAIN_INFO`
    /// calls.
    pub pending_shutdown: Option<(ShutdownReason, u32)>,
    /// Scheduler weight (1.3).
    pub weight: u32,
    /// Scheduler cap (1.3).
    pub cap: u32,
    /// Each vCPU's hard affinity (1.3), within the machine's CPUs.
    pub affinity: Vec<u64>,
}

/// The state of the mock hypervisor, shared by every handle the
/// [`MockOpener`] gives out.
#[derive(Debug)]
pub struct MockState {
    /// The ABI version it answers `VERSION` with.
    pub version: AbiVersion,
    /// What `HV_INFO` reports (`free_pages` follows creation and destruction).
    pub hv_info: HvInfo,
    /// Domains by id.
    pub domains: BTreeMap<u32, MockDomain>,
    /// The id the next domain gets.
    pub next_domid: u32,
    /// Every state-changing call, in order (`create NAME`, `copy ID GPA LEN`,
    /// `entry ID`, `unpause ID`, `pause ID`, `shutdown ID REASON`,
    /// `destroy ID`, `sched ID weight=W cap=C` with `-` for unchanged,
    /// `pin ID VCPU 0xBITS`).
    pub calls: Vec<String>,
    /// The largest piece `COPY_IN` accepts (bytes); larger ones fail with
    /// `NoMemory`, as the driver does when it finds no bounce buffer.
    pub copy_limit: usize,
    /// How many bytes `CONSOLE_WRITE` accepts per call (a UART FIFO).
    pub console_fifo: usize,
    /// How many `DOMAIN_INFO` calls a guest takes to obey a shutdown request.
    pub shutdown_delay: u32,
    /// Operations (method names) that fail with the given status.
    pub failures: BTreeMap<&'static str, Status>,
    /// What `console` reads as typed: bytes at a time since the session
    /// started.
    pub typed: Vec<(Duration, Vec<u8>)>,
    /// Whether the console input ends after `typed` (else it stays open
    /// with nothing more).
    pub input_closes: bool,
    /// The monitors `create` asked for (none is started).
    pub monitors: Vec<MonitorRequest>,
    /// Whether starting a monitor fails (as without `/proc` and `PATH`).
    pub monitor_fails: bool,
    /// Guests that shut themselves down: each domain created takes the
    /// next reason and `DOMAIN_INFO` count, as if the guest had been asked.
    pub auto_shutdowns: VecDeque<(ShutdownReason, u32)>,
    /// Event support (ABI 1.2); `None`: the driver has none.
    pub events: Option<MockEvents>,
}

/// The mock's hypervisor events.
#[derive(Debug, Clone, Default)]
pub struct MockEvents {
    /// The notification device is bound (waits sleep; else they fail).
    pub notify: bool,
    /// Event masks that arrive, one per wait (or per read, without
    /// `notify`).
    pub arrivals: VecDeque<u64>,
    /// Pending for the open device.
    pub pending: u64,
    /// Events raised so far.
    pub raised: u64,
    /// Waits that timed out.
    pub timeouts: u32,
}

impl MockEvents {
    fn arrive(&mut self) -> bool {
        match self.arrivals.pop_front() {
            Some(mask) => {
                self.pending |= mask;
                self.raised += 1;
                true
            }
            None => false,
        }
    }
}

/// A name as `DomainInfo::name`.
#[must_use]
pub fn name_bytes(name: &str) -> [u8; 64] {
    let mut n = [0u8; 64];
    n[..name.len()].copy_from_slice(name.as_bytes());
    n
}

impl MockState {
    /// A two-CPU machine of 1 GiB, 512 MiB free, with dom0 (256 MiB, two
    /// vCPUs, 12.3 s of CPU time) and nothing else.
    #[must_use]
    pub fn new() -> Self {
        let mut version = [0u8; 32];
        version[..10].copy_from_slice(b"oxen 0.1.0");
        let mut state = Self {
            version: dom0_abi::ABI_VERSION,
            hv_info: HvInfo {
                version,
                abi_major: dom0_abi::ABI_VERSION.major,
                abi_minor: dom0_abi::ABI_VERSION.minor,
                cpu_count: 2,
                total_pages: 262_144,
                free_pages: 131_072,
                dom0_pages: 65_536,
                vmx_features: VMX_EPT | VMX_EPT_2M,
                tsc_khz: 2_000_000,
                uptime_ns: 1_500_000_000,
            },
            domains: BTreeMap::new(),
            next_domid: 1,
            calls: Vec::new(),
            copy_limit: MAX_BUFFER_BYTES as usize,
            console_fifo: 16,
            shutdown_delay: 2,
            failures: BTreeMap::new(),
            typed: Vec::new(),
            input_closes: false,
            monitors: Vec::new(),
            monitor_fails: false,
            auto_shutdowns: VecDeque::new(),
            events: None,
        };
        state.add_domain(
            0,
            "Domain-0",
            DomainState::Running,
            65_536,
            2,
            DOMAIN_FLAG_PRIVILEGED,
        );
        state
    }

    /// Adds a domain as if it had been created earlier.
    pub fn add_domain(
        &mut self,
        domid: u32,
        name: &str,
        state: DomainState,
        pages: u64,
        vcpus: u32,
        flags: u32,
    ) {
        let info = DomainInfo {
            domid,
            state: state as u32,
            flags,
            shutdown_reason: 0,
            name: name_bytes(name),
            memory_pages: pages,
            max_memory_pages: pages,
            vcpus,
            max_vcpus: vcpus,
            cpu_time_ns: 12_345_000_000,
        };
        self.domains.insert(
            domid,
            MockDomain {
                info,
                has_run: state != DomainState::Paused,
                memory: BTreeMap::new(),
                entry: None,
                console_out: VecDeque::new(),
                console_in: Vec::new(),
                pending_shutdown: None,
                weight: WEIGHT_DEFAULT,
                cap: 0,
                affinity: vec![self.machine_cpus(); vcpus as usize],
            },
        );
        self.next_domid = self.next_domid.max(domid + 1);
    }

    /// The bitmap of the machine's CPUs.
    #[must_use]
    pub fn machine_cpus(&self) -> u64 {
        u64::MAX >> (64 - self.hv_info.cpu_count.clamp(1, 64))
    }

    /// Any domain, dom0 included (the 1.3 operations take dom0).
    fn any_domain(
        &mut self,
        method: &'static str,
        domid: u32,
    ) -> Result<&mut MockDomain, DeviceError> {
        self.fail(method)?;
        self.domains
            .get_mut(&domid)
            .ok_or_else(|| refused(method, Status::NoSuchDomain))
    }

    /// The domain called `name`.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&MockDomain> {
        self.domains
            .values()
            .find(|d| d.info.name_str() == Some(name))
    }

    fn fail(&self, method: &'static str) -> Result<(), DeviceError> {
        match self.failures.get(method) {
            Some(&status) => Err(refused(method, status)),
            None => Ok(()),
        }
    }

    fn domu(&mut self, method: &'static str, domid: u32) -> Result<&mut MockDomain, DeviceError> {
        self.fail(method)?;
        if domid == 0 {
            return Err(refused(method, Status::NotPermitted));
        }
        self.domains
            .get_mut(&domid)
            .ok_or_else(|| refused(method, Status::NoSuchDomain))
    }
}

impl Default for MockState {
    fn default() -> Self {
        Self::new()
    }
}

fn refused(what: &'static str, status: Status) -> DeviceError {
    DeviceError::Hypercall {
        what,
        error: HypercallError::Known(status),
    }
}

/// Opens handles on one shared [`MockState`].
#[derive(Debug, Clone, Default)]
pub struct MockOpener {
    /// The state; inspect it after a command ran.
    pub state: Rc<RefCell<MockState>>,
}

impl MockOpener {
    /// An opener on `state`.
    #[must_use]
    pub fn new(state: MockState) -> Self {
        Self {
            state: Rc::new(RefCell::new(state)),
        }
    }
}

impl Opener for MockOpener {
    fn open(&self) -> Result<Box<dyn Hypervisor>, DeviceError> {
        Ok(Box::new(MockHandle(Rc::clone(&self.state))))
    }

    fn host_facts(&self) -> HostFacts {
        HostFacts {
            host: "dom0".to_owned(),
            release: "6.1.0-56-amd64".to_owned(),
            version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2".to_owned(),
            machine: "x86_64".to_owned(),
        }
    }

    fn spawn_monitor(&self, request: &MonitorRequest) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        if s.monitor_fails {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        s.monitors.push(request.clone());
        Ok(())
    }

    fn console_input(&self) -> io::Result<Box<dyn ConsoleInput>> {
        let s = self.state.borrow();
        Ok(Box::new(ScriptedInput {
            now: Duration::ZERO,
            events: s.typed.iter().cloned().collect(),
            closes: s.input_closes,
        }))
    }
}

/// Console input from a script, on a clock that moves only when waiting.
#[derive(Debug)]
pub struct ScriptedInput {
    /// The session's time.
    pub now: Duration,
    /// Bytes typed and when.
    pub events: VecDeque<(Duration, Vec<u8>)>,
    /// Whether the input ends after the events.
    pub closes: bool,
}

impl ConsoleInput for ScriptedInput {
    fn poll_input(&mut self, timeout: Duration) -> io::Result<Input> {
        let deadline = self.now + timeout;
        match self.events.front() {
            Some((at, _)) if *at <= deadline => {
                self.now = self.now.max(*at);
                let (_, bytes) = self.events.pop_front().unwrap_or_default();
                Ok(Input::Bytes(bytes))
            }
            _ => {
                self.now = deadline;
                if self.events.is_empty() && self.closes {
                    Ok(Input::Closed)
                } else {
                    Ok(Input::Nothing)
                }
            }
        }
    }

    fn elapsed(&self) -> Duration {
        self.now
    }
}

/// One open "device" of the mock.
#[derive(Debug)]
pub struct MockHandle(Rc<RefCell<MockState>>);

impl Hypervisor for MockHandle {
    fn sched_get(&mut self, domid: u32) -> Result<SchedParams, DeviceError> {
        let mut s = self.0.borrow_mut();
        let d = s.any_domain("sched_get", domid)?;
        Ok(SchedParams {
            domid,
            weight: d.weight,
            cap: d.cap,
            flags: 0,
        })
    }

    fn sched_set(
        &mut self,
        domid: u32,
        weight: Option<u32>,
        cap: Option<u32>,
    ) -> Result<(), DeviceError> {
        const WHAT: &str = "sched_set";
        let mut s = self.0.borrow_mut();
        let cpus = s.hv_info.cpu_count;
        let bad =
            weight.is_some_and(|w| !weight_valid(w)) || cap.is_some_and(|c| !cap_valid(c, cpus));
        let d = s.any_domain(WHAT, domid)?;
        if bad {
            return Err(refused(WHAT, Status::InvalidArgument));
        }
        if let Some(w) = weight {
            d.weight = w;
        }
        if let Some(c) = cap {
            d.cap = c;
        }
        let show = |v: Option<u32>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let call = format!("sched {domid} weight={} cap={}", show(weight), show(cap));
        s.calls.push(call);
        Ok(())
    }

    /// vCPU `i` is on CPU `i % cpus`; a running domain's vCPUs run, a
    /// blocked one's are blocked, a paused one's paused (offline beyond
    /// vCPU 0 if it never ran), a shut down one's offline. The domain's CPU
    /// time is split evenly.
    fn vcpu_list(&mut self, domid: u32) -> Result<Vec<VcpuInfo>, DeviceError> {
        let mut s = self.0.borrow_mut();
        let cpus = s.hv_info.cpu_count.max(1);
        let d = s.any_domain("vcpu_list", domid)?;
        let state = d.info.state().unwrap_or(DomainState::Dying);
        let n = d.affinity.len() as u32;
        Ok((0..n)
            .map(|i| VcpuInfo {
                vcpu: i,
                state: match state {
                    DomainState::Running => VcpuState::Running,
                    DomainState::Blocked => VcpuState::Blocked,
                    DomainState::Paused if i == 0 || d.has_run => VcpuState::Paused,
                    _ => VcpuState::Offline,
                } as u32,
                cpu: i % cpus,
                reserved: 0,
                cpu_time_ns: d.info.cpu_time_ns / u64::from(n),
                affinity: d.affinity[i as usize],
            })
            .collect())
    }

    fn vcpu_set_affinity(&mut self, domid: u32, vcpu: u32, cpus: u64) -> Result<(), DeviceError> {
        const WHAT: &str = "vcpu_set_affinity";
        let mut s = self.0.borrow_mut();
        let set = cpus & s.machine_cpus();
        let d = s.any_domain(WHAT, domid)?;
        if domid == 0 {
            return Err(refused(WHAT, Status::NotPermitted));
        }
        let slot = d.affinity.get_mut(vcpu as usize);
        match slot {
            Some(slot) if set != 0 => *slot = set,
            _ => return Err(refused(WHAT, Status::InvalidArgument)),
        }
        s.calls.push(format!("pin {domid} {vcpu} {cpus:#x}"));
        Ok(())
    }

    fn event_read(&mut self, peek: bool) -> Result<Events, DeviceError> {
        let mut s = self.0.borrow_mut();
        s.fail("event_read")?;
        let Some(e) = s.events.as_mut() else {
            return Err(DeviceError::UnknownRequest {
                what: "reading hypervisor events",
                number: dom0_abi::ioctl::Ioctl::EventRead.number(),
            });
        };
        if !e.notify {
            e.arrive();
        }
        let events = Events {
            pending: e.pending,
            raised: e.raised,
            interrupts: e.raised,
            handled: if e.notify { e.raised } else { 0 },
            notify: e.notify,
        };
        if !peek {
            e.pending = 0;
        }
        Ok(events)
    }

    fn wait_events(&mut self, timeout: Option<Duration>) -> Result<EventWait, DeviceError> {
        let mut s = self.0.borrow_mut();
        match s.events.as_mut() {
            Some(e) if e.notify => {
                if e.pending != 0 || e.arrive() {
                    return Ok(EventWait::Ready);
                }
                e.timeouts += 1;
                drop(s);
                // A short real sleep stands for the wait.
                std::thread::sleep(
                    timeout
                        .unwrap_or(Duration::MAX)
                        .min(Duration::from_millis(5)),
                );
                Ok(EventWait::TimedOut)
            }
            _ => Ok(EventWait::Unsupported),
        }
    }

    fn negotiate(&mut self) -> Result<AbiVersion, DeviceError> {
        Ok(self.0.borrow().version)
    }

    fn hv_info(&mut self) -> Result<HvInfo, DeviceError> {
        let s = self.0.borrow();
        s.fail("hv_info")?;
        Ok(s.hv_info)
    }

    fn domain_list(&mut self) -> Result<Vec<DomainInfo>, DeviceError> {
        let s = self.0.borrow();
        s.fail("domain_list")?;
        Ok(s.domains.values().map(|d| d.info).collect())
    }

    fn domain_info(&mut self, domid: u32) -> Result<DomainInfo, DeviceError> {
        let mut s = self.0.borrow_mut();
        s.fail("domain_info")?;
        let d = s
            .domains
            .get_mut(&domid)
            .ok_or_else(|| refused("domain_info", Status::NoSuchDomain))?;
        if let Some((reason, left)) = d.pending_shutdown {
            if left == 0 {
                d.info.state = DomainState::Shutdown as u32;
                d.info.shutdown_reason = reason as u32;
                d.pending_shutdown = None;
            } else {
                d.pending_shutdown = Some((reason, left - 1));
            }
        }
        Ok(d.info)
    }

    fn log_read(&mut self, clear: bool) -> Result<LogText, DeviceError> {
        Ok(LogText {
            text: format!("(XEN) log, clear={clear}\n").into_bytes(),
            dropped: if clear { 0 } else { 42 },
        })
    }

    fn domain_create(&mut self, args: &DomainCreateArgs) -> Result<u32, DeviceError> {
        const WHAT: &str = "domain_create";
        let mut s = self.0.borrow_mut();
        s.fail(WHAT)?;
        args.validate().map_err(|st| refused(WHAT, st))?;
        let name = args.name_str().unwrap_or_default().to_owned();
        if s.by_name(&name).is_some() {
            return Err(refused(WHAT, Status::Exists));
        }
        // As the hypervisor: at most 32 vCPUs, more than the CPUs allowed.
        if args.vcpus > 32 {
            return Err(refused(WHAT, Status::InvalidArgument));
        }
        if args.memory_pages > s.hv_info.free_pages {
            return Err(refused(WHAT, Status::NoMemory));
        }
        s.hv_info.free_pages -= args.memory_pages;
        let domid = s.next_domid;
        s.add_domain(
            domid,
            &name,
            DomainState::Paused,
            args.memory_pages,
            args.vcpus,
            0,
        );
        let auto = s.auto_shutdowns.pop_front();
        if let Some(d) = s.domains.get_mut(&domid) {
            d.info.cpu_time_ns = 0;
            d.pending_shutdown = auto;
        }
        s.calls.push(format!("create {name}"));
        Ok(domid)
    }

    fn domain_destroy(&mut self, domid: u32) -> Result<(), DeviceError> {
        let mut s = self.0.borrow_mut();
        let pages = s.domu("domain_destroy", domid)?.info.memory_pages;
        s.domains.remove(&domid);
        s.hv_info.free_pages += pages;
        s.calls.push(format!("destroy {domid}"));
        Ok(())
    }

    fn domain_pause(&mut self, domid: u32) -> Result<(), DeviceError> {
        let mut s = self.0.borrow_mut();
        let d = s.domu("domain_pause", domid)?;
        running_or_paused(d, "domain_pause")?;
        d.info.state = DomainState::Paused as u32;
        s.calls.push(format!("pause {domid}"));
        Ok(())
    }

    fn domain_unpause(&mut self, domid: u32) -> Result<(), DeviceError> {
        let mut s = self.0.borrow_mut();
        let d = s.domu("domain_unpause", domid)?;
        running_or_paused(d, "domain_unpause")?;
        d.info.state = DomainState::Running as u32;
        d.has_run = true;
        s.calls.push(format!("unpause {domid}"));
        Ok(())
    }

    fn domain_shutdown(&mut self, domid: u32, reason: ShutdownReason) -> Result<(), DeviceError> {
        let mut s = self.0.borrow_mut();
        let delay = s.shutdown_delay;
        let d = s.domu("domain_shutdown", domid)?;
        if !reason.is_request() {
            return Err(refused("domain_shutdown", Status::InvalidArgument));
        }
        running_or_paused(d, "domain_shutdown")?;
        d.pending_shutdown = Some((reason, delay));
        s.calls.push(format!("shutdown {domid} {reason:?}"));
        Ok(())
    }

    fn copy_in_chunk(
        &mut self,
        domid: u32,
        dest_gpa: u64,
        bytes: &[u8],
    ) -> Result<usize, DeviceError> {
        const WHAT: &str = "copy_in";
        let mut s = self.0.borrow_mut();
        let limit = s.copy_limit;
        let d = s.domu(WHAT, domid)?;
        if bytes.len() as u64 > MAX_BUFFER_BYTES {
            return Err(refused(WHAT, Status::TooBig));
        }
        if bytes.len() > limit {
            return Err(refused(WHAT, Status::NoMemory));
        }
        if d.has_run {
            return Err(refused(WHAT, Status::BadState));
        }
        let end = dest_gpa.checked_add(bytes.len() as u64);
        if end.is_none_or(|end| end > d.info.memory_pages * PAGE_SIZE) {
            return Err(refused(WHAT, Status::BadAddress));
        }
        d.memory.insert(dest_gpa, bytes.to_vec());
        s.calls
            .push(format!("copy {domid} {dest_gpa:#x} {}", bytes.len()));
        Ok(bytes.len())
    }

    fn vcpu_set_entry(
        &mut self,
        domid: u32,
        vcpu: u32,
        entry: &VcpuEntry,
    ) -> Result<(), DeviceError> {
        const WHAT: &str = "vcpu_set_entry";
        let mut s = self.0.borrow_mut();
        let d = s.domu(WHAT, domid)?;
        entry.validate().map_err(|st| refused(WHAT, st))?;
        if vcpu != 0 {
            return Err(refused(WHAT, Status::InvalidArgument));
        }
        if d.has_run {
            return Err(refused(WHAT, Status::BadState));
        }
        d.entry = Some(*entry);
        s.calls.push(format!("entry {domid}"));
        Ok(())
    }

    fn console_read(&mut self, domid: u32, buf: &mut [u8]) -> Result<usize, DeviceError> {
        let mut s = self.0.borrow_mut();
        let d = s.domu("console_read", domid)?;
        let Some(mut chunk) = d.console_out.pop_front() else {
            return Ok(0);
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            chunk.drain(..n);
            d.console_out.push_front(chunk);
        }
        Ok(n)
    }

    fn console_write(&mut self, domid: u32, bytes: &[u8]) -> Result<usize, DeviceError> {
        let mut s = self.0.borrow_mut();
        let fifo = s.console_fifo;
        let d = s.domu("console_write", domid)?;
        let n = bytes.len().min(fifo);
        d.console_in.extend_from_slice(&bytes[..n]);
        Ok(n)
    }
}

fn running_or_paused(d: &MockDomain, what: &'static str) -> Result<(), DeviceError> {
    match d.info.state() {
        Ok(DomainState::Shutdown | DomainState::Dying) => Err(refused(what, Status::BadState)),
        _ => Ok(()),
    }
}
