//! The scheduling commands (`vcpu-list`, `vcpu-pin`, `sched-credit2`) and
//! `create`'s `weight`, `cap` and `cpus` against the mock hypervisor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use clap::Parser as _;
use dom0_abi::domain::DomainState;
use dom0_abi::{AbiVersion, Status};
use xl_rs::cli::Cli;
use xl_rs::device::Opener;
use xl_rs::testing::{MockOpener, MockState, fake_pvh_vmlinux};

fn run_with(opener: &dyn Opener, args: &[&str]) -> (Result<(), String>, String, String) {
    let cli = Cli::try_parse_from(std::iter::once("xl-rs").chain(args.iter().copied())).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = xl_rs::run(cli, opener, &mut out, &mut err).map_err(|e| e.to_string());
    (
        result,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// dom0 (2 vCPUs, running) and `web` (id 1, 2 vCPUs, running) on a
/// 4-CPU machine.
fn machine() -> MockOpener {
    let mut state = MockState::new();
    state.hv_info.cpu_count = 4;
    state.add_domain(0, "Domain-0", DomainState::Running, 65_536, 2, 1);
    state.add_domain(1, "web", DomainState::Running, 65_536, 2, 0);
    MockOpener::new(state)
}

#[test]
fn vcpu_list_prints_xl_columns() {
    let opener = machine();
    {
        let mut s = opener.state.borrow_mut();
        let web = s.domains.get_mut(&1).unwrap();
        web.affinity = vec![0b1011, 0b0100];
    }
    let (result, out, _) = run_with(&opener, &["vcpu-list"]);
    result.unwrap();
    assert_eq!(
        out,
        "Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n\
         Domain-0                             0     0     0   r--       6.2  all / all\n\
         Domain-0                             0     1     1   r--       6.2  all / all\n\
         web                                  1     0     0   r--       6.2  0-1,3 / all\n\
         web                                  1     1     1   r--       6.2  2 / all\n"
    );
    // One domain, by name; a paused one shows the CPU it waits on.
    opener
        .state
        .borrow_mut()
        .domains
        .get_mut(&1)
        .unwrap()
        .info
        .state = DomainState::Paused as u32;
    let (result, out, _) = run_with(&opener, &["vcpu-list", "web"]);
    result.unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines().nth(1).unwrap().contains("    0     0   --p"),
        "{out}"
    );
    let err = run_with(&opener, &["vcpu-list", "nope"]).0.unwrap_err();
    assert_eq!(err, "domain `nope` not found");
}

#[test]
fn vcpu_pin_sets_one_or_every_vcpu() {
    let opener = machine();
    let (result, _, _) = run_with(&opener, &["vcpu-pin", "web", "1", "0-1,3"]);
    result.unwrap();
    let (result, _, _) = run_with(&opener, &["vcpu-pin", "1", "all", "all,^2", "-"]);
    result.unwrap();
    let s = opener.state.borrow();
    assert_eq!(
        s.calls,
        [
            "pin 1 1 0xb",
            "pin 1 0 0xfffffffffffffffb",
            "pin 1 1 0xfffffffffffffffb"
        ]
    );
    assert_eq!(s.domains[&1].affinity, [0b1011, 0b1011]);
}

#[test]
fn vcpu_pin_refusals_say_why() {
    let opener = machine();
    let cases: [(&[&str], &str); 6] = [
        (
            &["web", "x", "1"],
            "invalid vCPU `x`: give a vCPU number or `all`",
        ),
        (
            &["web", "2", "1"],
            "domain `web` (1) has no vCPU 2 (it has 2)",
        ),
        (&["web", "0", "1-"], "invalid CPU list `1-`"),
        (
            &["web", "0", "1", "2"],
            "soft affinity `2` is not supported",
        ),
        (
            &["web", "0", "8"],
            "vcpu_set_affinity: the hypervisor refused: invalid argument",
        ),
        (
            &["Domain-0", "0", "1"],
            "the hypervisor refused: operation not permitted",
        ),
    ];
    for (args, wanted) in cases {
        let argv: Vec<&str> = std::iter::once("vcpu-pin")
            .chain(args.iter().copied())
            .collect();
        let err = run_with(&opener, &argv).0.unwrap_err();
        assert!(err.contains(wanted), "{args:?}: {err}");
    }
    assert!(opener.state.borrow().calls.is_empty());
}

#[test]
fn sched_credit2_lists_shows_and_sets() {
    let opener = machine();
    let (result, out, _) = run_with(&opener, &["sched-credit2"]);
    result.unwrap();
    assert_eq!(
        out,
        "Name                                ID Weight  Cap\n\
         Domain-0                             0    256    0\n\
         web                                  1    256    0\n"
    );
    let (result, out, _) = run_with(&opener, &["sched-credit2", "-d", "web", "-w", "512"]);
    result.unwrap();
    assert_eq!(out, "");
    let (result, _, _) = run_with(&opener, &["sched-credit", "-d", "0", "-c", "150"]);
    result.unwrap();
    let (result, out, _) = run_with(&opener, &["sched-credit2", "-d", "web"]);
    result.unwrap();
    assert_eq!(
        out.lines().nth(1).unwrap(),
        format!("{:<33} {:>4} {:>6} {:>4}", "web", 1, 512, 0)
    );
    assert_eq!(
        opener.state.borrow().calls,
        ["sched 1 weight=512 cap=-", "sched 0 weight=- cap=150"]
    );
    let err = run_with(&opener, &["sched-credit2", "-d", "web", "-w", "0"])
        .0
        .unwrap_err();
    assert!(err.contains("invalid argument"), "{err}");
    // -w needs -d.
    assert!(Cli::try_parse_from(["xl-rs", "sched-credit2", "-w", "5"]).is_err());
}

#[test]
fn scheduling_commands_need_abi_1_3() {
    let opener = machine();
    opener.state.borrow_mut().version = AbiVersion::new(1, 2);
    for args in [
        &["vcpu-list"][..],
        &["sched-credit2"],
        &["vcpu-pin", "web", "0", "1"],
    ] {
        let err = run_with(&opener, args).0.unwrap_err();
        assert!(
            err.ends_with(
                "needs hypercall ABI 1.3, but the hypervisor speaks 1.2; boot a newer Oxen"
            ),
            "{args:?}: {err}"
        );
    }
}

/// A scratch directory with a guest configuration.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xl-rs-sched-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn cfg(&self, extra: &str) -> String {
        let kernel = self.0.join("vmlinux");
        std::fs::write(&kernel, fake_pvh_vmlinux(&[0x90; 4096], 0x1000, 0)).unwrap();
        let path = self.0.join("g.cfg");
        std::fs::write(
            &path,
            format!(
                "name = \"g\"\ntype = \"pvh\"\nmemory = 64\nvcpus = 2\n\
                 kernel = \"{}\"\nextra = \"console=ttyS0\"\n{extra}",
                kernel.display()
            ),
        )
        .unwrap();
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn create_applies_weight_cap_and_cpus_before_unpausing() {
    let scratch = Scratch::new();
    let file = scratch.cfg("weight = 512\ncap = 50\ncpus = [\"2\", \"0-1\"]\n");
    let opener = machine();
    let (result, _, err) = run_with(&opener, &["create", "-e", &file]);
    result.unwrap();
    assert!(!err.contains("cpus"), "{err}");
    let s = opener.state.borrow();
    let calls: Vec<&str> = s
        .calls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.starts_with("copy"))
        .collect();
    assert_eq!(
        calls,
        [
            "create g",
            "sched 2 weight=512 cap=50",
            "pin 2 0 0x4",
            "pin 2 1 0x3",
            "entry 2",
            "unpause 2"
        ]
    );
    let d = s.by_name("g").unwrap();
    assert_eq!((d.weight, d.cap), (512, 50));
    assert_eq!(d.affinity, [0b100, 0b11]);
}

#[test]
fn create_with_one_cpu_list_pins_every_vcpu_and_skips_what_is_unset() {
    let scratch = Scratch::new();
    let file = scratch.cfg("cpus = \"all,^0\"\n");
    let opener = machine();
    run_with(&opener, &["create", "-e", "-p", &file]).0.unwrap();
    let s = opener.state.borrow();
    assert!(
        s.calls.iter().all(|c| !c.starts_with("sched")),
        "{:?}",
        s.calls
    );
    assert_eq!(s.by_name("g").unwrap().affinity, [0b1110, 0b1110]);
    drop(s);
    // Without any of the keys: no 1.3 operation, so a 1.2 hypervisor will do.
    let file = scratch.cfg("");
    let opener = machine();
    opener.state.borrow_mut().version = AbiVersion::new(1, 2);
    run_with(&opener, &["create", "-e", &file]).0.unwrap();
    let file = scratch.cfg("weight = 300\n");
    let err = run_with(&opener, &["create", "-e", &file]).0.unwrap_err();
    assert!(
        err.contains("creating a domain with weight, cap or cpus needs hypercall ABI 1.3"),
        "{err}"
    );
}

#[test]
fn create_destroys_the_domain_when_the_settings_fail() {
    let scratch = Scratch::new();
    let file = scratch.cfg("cpus = \"5\"\n");
    let opener = machine();
    let err = run_with(&opener, &["create", "-e", &file]).0.unwrap_err();
    assert_eq!(
        err,
        "setting the scheduling parameters of domain `g` (weight, cap, cpus) failed, so it was \
         destroyed: vcpu_set_affinity: the hypervisor refused: invalid argument (-3)"
    );
    let s = opener.state.borrow();
    assert_eq!(s.calls, ["create g", "destroy 2"]);
    assert!(s.by_name("g").is_none());
    drop(s);
    // A cap the machine cannot give is refused before anything is created.
    let file = scratch.cfg("cap = 401\n");
    let opener = machine();
    let err = run_with(&opener, &["create", "-e", &file]).0.unwrap_err();
    assert_eq!(
        err,
        "cap = 401 is more than the machine's 4 CPUs allow (at most 400); lower cap"
    );
    assert!(opener.state.borrow().calls.is_empty());
    // A failure of SCHED_SET itself.
    let file = scratch.cfg("weight = 9\n");
    let opener = machine();
    opener
        .state
        .borrow_mut()
        .failures
        .insert("sched_set", Status::BadState);
    let err = run_with(&opener, &["create", "-e", &file]).0.unwrap_err();
    assert!(err.contains("so it was destroyed"), "{err}");
    assert_eq!(opener.state.borrow().calls, ["create g", "destroy 2"]);
}
