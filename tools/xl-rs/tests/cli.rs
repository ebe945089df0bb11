//! Commands against the mock hypervisor of `xl_rs::testing`, and against a
//! device that does not exist.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clap::Parser as _;
use dom0_abi::domain::DomainState;
use dom0_abi::{AbiVersion, ShutdownReason, Status, VcpuMode};
use xl_rs::cli::Cli;
use xl_rs::device::HvctlOpener;
use xl_rs::device::Opener;
use xl_rs::testing::{FAKE_KERNEL_PADDR, MockOpener, MockState, fake_bzimage, fake_pvh_vmlinux};

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

/// dom0 and a paused `guest` (id 1), 256 MiB each.
fn with_guest() -> MockOpener {
    let mut state = MockState::new();
    state.add_domain(1, "guest", DomainState::Paused, 65_536, 1, 0);
    MockOpener::new(state)
}

fn run(args: &[&str]) -> (Result<(), String>, String, String) {
    run_with(&with_guest(), args)
}

/// A directory of its own under the system's temporary directory.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xl-rs-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// A config for a PVH guest `name` with a fake vmlinux of `code_len`
    /// bytes and a small initrd; `extra` lines are appended.
    fn guest_cfg(&self, name: &str, code_len: usize, extra: &str) -> String {
        let kernel = self.file(
            "vmlinux",
            &fake_pvh_vmlinux(&vec![0x90; code_len], 0x1000, 0),
        );
        let ramdisk = self.file("initrd", &[0x5A; 10_000]);
        self.file(
            &format!("{name}.cfg"),
            format!(
                "name = \"{name}\"\ntype = \"pvh\"\nmemory = 128\nvcpus = 2\n\
                 kernel = \"{kernel}\"\nramdisk = \"{ramdisk}\"\n\
                 extra = \"console=ttyS0\"\n{extra}"
            )
            .as_bytes(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn list_prints_xl_columns() {
    let (result, out, _) = run(&["list"]);
    result.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("{:<40}    ID   Mem VCPUs     State   Time(s)", "Name")
    );
    assert_eq!(
        lines[1],
        format!("{:<40}     0   256     2     r-----      12.3", "Domain-0")
    );
    assert_eq!(
        lines[2],
        format!("{:<40}     1   256     1     --p---      12.3", "guest")
    );
}

#[test]
fn list_json_and_filters() {
    let (result, out, _) = run(&["list", "--json", "guest"]);
    result.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["domid"], 1);
    assert_eq!(v[0]["memory_kib"], 262_144);
    let (result, _, _) = run(&["list", "nosuch"]);
    assert_eq!(result.unwrap_err(), "domain `nosuch` not found");
}

#[test]
fn info_prints_xl_style_key_value_lines() {
    let (result, out, _) = run(&["info"]);
    result.unwrap();
    let want = format!(
        "\
host                   : dom0
release                : 6.1.0-56-amd64
version                : #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2
machine                : x86_64
nr_cpus                : 2
tsc_khz                : 2000000
vmx_features           : ept ept_2m
total_memory           : 1024
free_memory            : 512
free_pages             : 131072
dom0_memory            : 256
hypervisor_version     : oxen 0.1.0
abi_version            : 1.3
pagesize               : 4096
uptime_s               : 1.5
xl_rs_version          : {}
xl_rs_abi_version      : 1.3
",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(out, want);
    for line in out.lines() {
        assert_eq!(line.find(" : "), Some(22), "{line}");
    }
}

#[test]
fn dmesg_passes_the_clear_flag_and_notes_lost_text() {
    let (result, out, err) = run(&["dmesg"]);
    result.unwrap();
    assert_eq!(out, "(XEN) log, clear=false\n");
    assert_eq!(
        err,
        "xl-rs: 42 bytes of older log text were lost to ring wrap\n"
    );
    let (result, out, err) = run(&["dmesg", "-c"]);
    result.unwrap();
    assert_eq!(out, "(XEN) log, clear=true\n");
    assert_eq!(err, "");
}

#[test]
fn list_long_is_json_like_json() {
    let (result, long, _) = run(&["list", "-l"]);
    result.unwrap();
    let (result, json, _) = run(&["list", "--json"]);
    result.unwrap();
    assert_eq!(long, json);
    let v: serde_json::Value = serde_json::from_str(&long).unwrap();
    assert_eq!(v[0]["name"], "Domain-0");
    assert_eq!(v[0]["state"], "r-----");
    assert_eq!(v[1]["state"], "--p---");
}

#[test]
fn version_flag_names_tool_and_abi() {
    let err = Cli::try_parse_from(["xl-rs", "--version"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    assert_eq!(
        err.render().to_string(),
        format!("xl-rs {} (dom0-abi 1.3)\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn abi_major_mismatch_is_refused_naming_both_versions() {
    let mut state = MockState::new();
    state.version = AbiVersion::new(2, 3);
    let (result, _, _) = run_with(&MockOpener::new(state), &["info"]);
    assert!(
        result
            .unwrap_err()
            .contains("xl-rs speaks hypercall ABI 1.3, the hypervisor speaks 2.3")
    );
}

#[test]
fn lifecycle_needs_abi_1_1_but_queries_work_on_1_0() {
    let mut state = MockState::new();
    state.version = AbiVersion::new(1, 0);
    state.add_domain(1, "guest", DomainState::Running, 256, 1, 0);
    let opener = MockOpener::new(state);
    run_with(&opener, &["list"]).0.unwrap();
    for args in [
        &["destroy", "guest"][..],
        &["pause", "1"],
        &["console", "guest"],
    ] {
        let err = run_with(&opener, args).0.unwrap_err();
        assert!(
            err.ends_with(
                "needs hypercall ABI 1.1, but the hypervisor speaks 1.0; boot a newer Oxen"
            ),
            "{args:?}: {err}"
        );
    }
}

fn good(name: &str) -> String {
    format!("{}/tests/configs/good/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn create_dry_run_prints_json_and_warnings() {
    let file = good("syntax_tour.cfg");
    let (result, out, err) = run(&["create", "-n", &file, "memory=1024", "maxmem=1024"]);
    result.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["memory_mib"], 1024);
    assert_eq!(v["type"], "pvh");
    assert_eq!(err.lines().count(), 4, "{err}");
    let (result, _, _) = run(&["create", "--dryrun", &file]);
    result.unwrap();
}

#[test]
fn create_builds_and_starts_a_pvh_guest() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("web", 0x2000, "");
    let opener = MockOpener::new(MockState::new());
    let (result, out, err) = run_with(&opener, &["create", &cfg]);
    result.unwrap();
    assert_eq!(out, "");
    assert_eq!(
        err,
        "Domain `web` created with id 1 (128 MiB, 2 vCPUs, PVH entry (ELF vmlinux))\n"
    );
    let state = opener.state.borrow();
    let d = state.by_name("web").unwrap();
    assert_eq!(d.info.state(), Ok(DomainState::Running));
    assert_eq!((d.info.memory_pages, d.info.vcpus), (128 * 256, 2));
    assert_eq!(state.hv_info.free_pages, 131_072 - 128 * 256);
    // The kernel at its physical address, the boot block, the initrd and
    // the ACPI tables; then the entry; then the unpause.
    assert_eq!(d.memory[&FAKE_KERNEL_PADDR], vec![0x90; 0x2000]);
    assert!(d.memory.values().any(|bytes| bytes == &vec![0x5A; 10_000]));
    assert!(d.memory[&0xE_0000].starts_with(b"RSD PTR "));
    let entry = d.entry.unwrap();
    assert_eq!(entry.mode(), Ok(VcpuMode::Pvh));
    assert_eq!(entry.rip, FAKE_KERNEL_PADDR);
    assert!(d.memory[&entry.rbx].starts_with(&0x336E_C578u32.to_le_bytes()));
    let calls: Vec<&str> = state.calls.iter().map(String::as_str).collect();
    assert_eq!(calls.first(), Some(&"create web"));
    assert_eq!(&calls[calls.len() - 2..], ["entry 1", "unpause 1"]);
    assert_eq!(calls.len(), 1 + 4 + 2, "{calls:?}");
}

#[test]
fn create_paused_then_unpause_pause_and_destroy() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("db", 0x1000, "");
    let opener = MockOpener::new(MockState::new());
    let (result, _, err) = run_with(&opener, &["create", "-p", &cfg, "memory=64"]);
    result.unwrap();
    assert!(err.ends_with(", paused\n"), "{err}");
    let state_of = |o: &MockOpener| {
        o.state
            .borrow()
            .by_name("db")
            .map(|d| d.info.state().unwrap())
    };
    assert_eq!(state_of(&opener), Some(DomainState::Paused));

    let (_, out, _) = run_with(&opener, &["list", "db"]);
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .contains("    64     2     --p---"),
        "{out}"
    );
    run_with(&opener, &["unpause", "db"]).0.unwrap();
    assert_eq!(state_of(&opener), Some(DomainState::Running));
    run_with(&opener, &["pause", "1"]).0.unwrap();
    assert_eq!(state_of(&opener), Some(DomainState::Paused));
    run_with(&opener, &["destroy", "db"]).0.unwrap();
    assert_eq!(state_of(&opener), None);
    assert_eq!(opener.state.borrow().hv_info.free_pages, 131_072);
    let (_, out, _) = run_with(&opener, &["list"]);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn create_a_bzimage_guest_uses_the_64_bit_protocol() {
    let dir = Scratch::new();
    let kernel = dir.file("vmlinuz", &fake_bzimage(&[0xCC; 0x3000], 0x40_0000));
    let cfg = dir.file(
        "bz.cfg",
        format!("name='bz'\ntype='pvh'\nmemory=64\nkernel='{kernel}'\ncmdline='console=ttyS0'\n")
            .as_bytes(),
    );
    let opener = MockOpener::new(MockState::new());
    let (result, _, err) = run_with(&opener, &["create", &cfg]);
    result.unwrap();
    assert!(
        err.contains("Linux 64-bit boot protocol (bzImage)"),
        "{err}"
    );
    let state = opener.state.borrow();
    let entry = state.by_name("bz").unwrap().entry.unwrap();
    assert_eq!(entry.mode(), Ok(VcpuMode::Linux64));
    assert_eq!(entry.rip, FAKE_KERNEL_PADDR + 0x200);
}

#[test]
fn large_kernels_are_copied_a_megabyte_at_a_time() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("big", (2 << 20) + 5, "");
    let mut state = MockState::new();
    // A driver that finds no 1 MiB bounce buffer: pieces are halved.
    state.copy_limit = 256 << 10;
    let opener = MockOpener::new(state);
    run_with(&opener, &["create", &cfg]).0.unwrap();
    let state = opener.state.borrow();
    let kernel_copies: Vec<&String> = state
        .calls
        .iter()
        .filter(|c| {
            let gpa = c.split(' ').nth(2).unwrap_or("0x0");
            let gpa = u64::from_str_radix(gpa.trim_start_matches("0x"), 16).unwrap_or(0);
            (FAKE_KERNEL_PADDR..FAKE_KERNEL_PADDR + (3 << 20)).contains(&gpa)
        })
        .collect();
    assert_eq!(kernel_copies.len(), 9, "{kernel_copies:?}");
    assert_eq!(kernel_copies[0], "copy 1 0x1000000 262144");
    assert_eq!(kernel_copies[8], "copy 1 0x1200000 5");
}

#[test]
fn create_errors_name_their_cause() {
    let dir = Scratch::new();
    let opener = MockOpener::new(MockState::new());

    // A missing kernel names its path.
    let cfg = dir.file(
        "k.cfg",
        b"name='k'\ntype='pvh'\nkernel='/nonexistent/vmlinux'\n",
    );
    let err = run_with(&opener, &["create", &cfg]).0.unwrap_err();
    assert_eq!(
        err,
        "cannot read the kernel /nonexistent/vmlinux: No such file or directory (os error 2)"
    );
    // A configuration error names file:line:column.
    let cfg = dir.file("c.cfg", b"name = 'c'\ntype = 'pvh'\nmemory = \"lots\"\n");
    let err = run_with(&opener, &["create", &cfg]).0.unwrap_err();
    assert_eq!(
        err,
        format!("{cfg}:3:10: `memory` must be a number, found \"lots\"")
    );
    // More memory than is free (512 MiB).
    let cfg = dir.guest_cfg("m", 0x1000, "");
    let err = run_with(&opener, &["create", &cfg, "memory=1024"])
        .0
        .unwrap_err();
    assert_eq!(
        err,
        "memory = 1024 (MiB) is more than the hypervisor has free (512 MiB); \
         lower memory or destroy other domains"
    );
    // Too little memory for the kernel at 16 MiB.
    let err = run_with(&opener, &["create", &cfg, "memory=8"])
        .0
        .unwrap_err();
    assert!(err.contains("memory = 8 (MiB); raise memory"), "{err}");
    // A kernel that is not one.
    let junk = dir.file("junk", b"not a kernel at all");
    let err = run_with(&opener, &["create", &cfg, &format!("kernel='{junk}'")])
        .0
        .unwrap_err();
    assert_eq!(
        err,
        format!("kernel {junk}: not a Linux kernel: neither an ELF vmlinux nor a bzImage")
    );
    // Nothing was created by any of these.
    assert!(opener.state.borrow().calls.is_empty());
    // More vCPUs (4) than CPUs (2) is allowed: the scheduler shares them.
    run_with(&opener, &["create", &cfg, "vcpus=4", "name=\"four\""])
        .0
        .unwrap();
    // The same name twice.
    run_with(&opener, &["create", &cfg]).0.unwrap();
    let err = run_with(&opener, &["create", &cfg]).0.unwrap_err();
    assert_eq!(
        err,
        "a domain called `m` already exists; destroy it or choose another name"
    );
}

#[test]
fn a_failure_after_creation_destroys_the_domain() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("half", 0x1000, "");
    let mut state = MockState::new();
    state.failures.insert("vcpu_set_entry", Status::BadState);
    let opener = MockOpener::new(state);
    let err = run_with(&opener, &["create", &cfg]).0.unwrap_err();
    assert_eq!(
        err,
        "building domain `half` failed, so it was destroyed: vcpu_set_entry: the hypervisor \
         refused: operation not allowed in the domain's current state (-12)"
    );
    let state = opener.state.borrow();
    assert!(state.by_name("half").is_none());
    assert_eq!(state.calls.last().unwrap(), "destroy 1");
    assert_eq!(state.hv_info.free_pages, 131_072);
}

#[test]
fn create_warns_about_hvm_and_a_missing_console() {
    let dir = Scratch::new();
    let kernel = dir.file("vmlinux", &fake_pvh_vmlinux(&[0x90; 16], 0, 0));
    let cfg = dir.file(
        "h.cfg",
        format!("name='h'\ntype='hvm'\nmemory=64\nkernel='{kernel}'\n").as_bytes(),
    );
    let (result, _, err) = run_with(&MockOpener::new(MockState::new()), &["create", &cfg]);
    result.unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{cfg}: warning: type = \"hvm\"")),
        "{err}"
    );
    assert!(lines[1].contains("has no console="), "{err}");
}

#[test]
fn dom0_and_unknown_domains_are_refused() {
    for (args, want) in [
        (
            &["destroy", "0"][..],
            "cannot destroy Domain-0: it is the control domain",
        ),
        (
            &["pause", "Domain-0"],
            "cannot pause Domain-0: it is the control domain",
        ),
        (
            &["shutdown", "0"],
            "cannot shut down Domain-0: it is the control domain",
        ),
        (
            &["reboot", "0"],
            "cannot reboot Domain-0: it is the control domain",
        ),
        (
            &["console", "0"],
            "cannot attach to the console of Domain-0: it is the control domain",
        ),
        (&["destroy", "nosuch"], "domain `nosuch` not found"),
        (&["unpause", "7"], "domain `7` not found"),
    ] {
        assert_eq!(run(args).0.unwrap_err(), want, "{args:?}");
    }
}

#[test]
fn shutdown_and_reboot_ask_the_guest_and_wait_with_w() {
    let mut state = MockState::new();
    state.add_domain(3, "g", DomainState::Running, 256, 1, 0);
    let opener = MockOpener::new(state);
    let (result, _, err) = run_with(&opener, &["shutdown", "-w", "g"]);
    result.unwrap();
    assert_eq!(
        err,
        "Waiting for domain `g` (3) to shut down\nDomain `g` (3) has shut down (poweroff)\n"
    );
    // Shut down: the hypervisor refuses another request.
    let err = run_with(&opener, &["reboot", "g"]).0.unwrap_err();
    assert!(err.contains("current state"), "{err}");

    let mut state = MockState::new();
    state.add_domain(4, "r", DomainState::Running, 256, 1, 0);
    let opener = MockOpener::new(state);
    let (result, _, err) = run_with(&opener, &["reboot", "r"]);
    result.unwrap();
    assert_eq!(err, "");
    assert_eq!(opener.state.borrow().calls, ["shutdown 4 Reboot"]);
    let (result, _, err) = run_with(&opener, &["reboot", "--wait", "4"]);
    result.unwrap();
    assert!(err.ends_with("has shut down (reboot)\n"), "{err}");
    let d = opener.state.borrow().domains[&4].info;
    assert_eq!(d.shutdown_reason, ShutdownReason::Reboot as u32);
}

/// A running domain `tty` (id 5) with console output already queued.
fn console_guest(chunks: &[&[u8]]) -> MockState {
    let mut state = MockState::new();
    state.add_domain(5, "tty", DomainState::Running, 256, 1, 0);
    let d = state.domains.get_mut(&5).unwrap();
    d.console_out = chunks.iter().map(|c| c.to_vec()).collect();
    state
}

#[test]
fn console_until_stops_at_the_pattern() {
    let state = console_guest(&[
        b"Linux version 6.1\r\n",
        b"Run /init as init",
        b" process\r\n~ # ",
    ]);
    let opener = MockOpener::new(state);
    let (result, out, _) = run_with(&opener, &["console", "tty", "--until", r"init\s+process"]);
    result.unwrap();
    // The output up to and including the chunk that completed the match.
    assert_eq!(
        out,
        "Linux version 6.1\r\nRun /init as init process\r\n~ # "
    );
}

#[test]
fn console_timeout_without_a_match_is_an_error() {
    let opener = MockOpener::new(console_guest(&[b"booting\r\n"]));
    let (result, out, _) = run_with(
        &opener,
        &["console", "5", "--until", "login:", "--timeout", "1.5"],
    );
    assert_eq!(
        result.unwrap_err(),
        "no console output matched /login:/ within 1.5 s"
    );
    assert_eq!(out, "booting\r\n");
    // Without --until a timeout just ends the session.
    let (result, _, _) = run_with(&opener, &["console", "5", "--timeout", "0.1"]);
    result.unwrap();
}

#[test]
fn console_forwards_input_and_detaches_on_ctrl_bracket() {
    let mut state = console_guest(&[b"login: "]);
    state.console_fifo = 4; // the UART takes 4 bytes at a time
    state.typed = vec![
        (Duration::from_millis(30), b"root\n".to_vec()),
        (Duration::from_millis(500), b"ls\n\x1dignored".to_vec()),
    ];
    let opener = MockOpener::new(state);
    let (result, out, _) = run_with(&opener, &["console", "tty"]);
    result.unwrap();
    assert_eq!(out, "login: ");
    assert_eq!(opener.state.borrow().domains[&5].console_in, b"root\nls\n");
}

#[test]
fn console_ends_when_the_domain_shuts_down_or_goes() {
    let opener = MockOpener::new(console_guest(&[b"bye\r\n"]));
    {
        let mut s = opener.state.borrow_mut();
        let d = s.domains.get_mut(&5).unwrap();
        d.pending_shutdown = Some((ShutdownReason::Poweroff, 3));
    }
    let (result, out, _) = run_with(&opener, &["console", "tty"]);
    result.unwrap();
    assert_eq!(out, "bye\r\n");
    // With --until, a domain that ends first is an error.
    let (result, _, _) = run_with(&opener, &["console", "tty", "--until", "never"]);
    assert_eq!(
        result.unwrap_err(),
        "domain `tty` shut down before its console output matched /never/"
    );
}

#[test]
fn create_c_attaches_the_console() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("c", 0x1000, "");
    let mut state = MockState::new();
    state.typed = vec![(Duration::from_millis(100), vec![0x1d])];
    let opener = MockOpener::new(state);
    let (result, _, err) = run_with(&opener, &["create", "-c", &cfg]);
    result.unwrap();
    assert!(err.starts_with("Domain `c` created with id 1"), "{err}");
}

#[test]
fn create_leaves_a_monitor_unless_e() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("mon", 0x1000, "");
    let opener = MockOpener::new(MockState::new());
    run_with(&opener, &["create", &cfg, "vcpus=1"]).0.unwrap();
    let requests = opener.state.borrow().monitors.clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].domid, 1);
    let args: Vec<String> = requests[0]
        .args()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args, ["_monitor", "--domid", "1", &cfg, "vcpus=1"]);
    // The monitor's command line parses.
    Cli::try_parse_from(std::iter::once("xl-rs".to_owned()).chain(args)).unwrap();

    run_with(&opener, &["create", "-e", &cfg, "name='m2'"])
        .0
        .unwrap();
    assert!(opener.state.borrow().by_name("m2").is_some());
    assert_eq!(opener.state.borrow().monitors.len(), 1);

    // A monitor that cannot start does not undo the domain.
    opener.state.borrow_mut().monitor_fails = true;
    let (result, _, err) = run_with(&opener, &["create", &cfg, "name='m3'"]);
    result.unwrap();
    assert!(
        err.ends_with(
            "xl-rs: warning: cannot start the monitor of domain `m3`: entity not found; \
             on_poweroff, on_reboot and on_crash will not be applied\n"
        ),
        "{err}"
    );
    assert!(opener.state.borrow().by_name("m3").is_some());
    assert_eq!(opener.state.borrow().monitors.len(), 1);
}

#[test]
fn the_monitor_restarts_on_reboot_and_destroys_on_poweroff() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg(
        "svc",
        0x1000,
        "on_reboot = 'restart'\non_poweroff = 'destroy'\n",
    );
    let mut state = MockState::new();
    state.auto_shutdowns = [(ShutdownReason::Reboot, 0), (ShutdownReason::Poweroff, 0)].into();
    let opener = MockOpener::new(state);
    let (result, _, err) = run_with(&opener, &["create", "-F", &cfg]);
    result.unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        &lines[1..],
        [
            "domain `svc` (1) shut down (reboot): on_reboot = \"restart\"",
            "domain `svc` restarted as id 2",
            "domain `svc` (2) shut down (poweroff): on_poweroff = \"destroy\"",
        ]
    );
    let state = opener.state.borrow();
    assert!(state.domains.keys().eq([&0]), "only dom0 is left");
    assert!(state.monitors.is_empty(), "-F monitors in the foreground");
    let calls: Vec<&str> = state
        .calls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.starts_with("copy"))
        .collect();
    assert_eq!(
        calls,
        [
            "create svc",
            "entry 1",
            "unpause 1",
            "destroy 1",
            "create svc",
            "entry 2",
            "unpause 2",
            "destroy 2"
        ]
    );
}

#[test]
fn the_monitor_process_preserves_or_notices_destruction() {
    let dir = Scratch::new();
    let cfg = dir.guest_cfg("keep", 0x1000, "on_crash = 'preserve'\n");
    let mut state = MockState::new();
    state.add_domain(6, "keep", DomainState::Running, 256, 1, 0);
    state.domains.get_mut(&6).unwrap().pending_shutdown = Some((ShutdownReason::Crash, 0));
    let opener = MockOpener::new(state);
    let (result, _, err) = run_with(&opener, &["_monitor", "--domid", "6", &cfg]);
    result.unwrap();
    assert_eq!(
        err,
        "domain `keep` (6) shut down (crash): on_crash = \"preserve\"\n"
    );
    assert!(opener.state.borrow().domains.contains_key(&6));
    // A monitor for an id that is now another domain refuses.
    let other = dir.guest_cfg("other", 0x1000, "");
    let err = run_with(&opener, &["_monitor", "--domid", "6", &other])
        .0
        .unwrap_err();
    assert_eq!(err, "domain `other (6)` not found");
    opener.state.borrow_mut().domains.remove(&6);
    let err = run_with(&opener, &["_monitor", "--domid", "6", &cfg])
        .0
        .unwrap_err();
    assert!(err.contains("no such domain"), "{err}");
}

#[test]
fn missing_device_is_reported_for_every_device_command() {
    let opener = HvctlOpener::with_path("/nonexistent/hvctl");
    for args in [
        &["list"][..],
        &["info"],
        &["dmesg"],
        &["destroy", "g"],
        &["pause", "g"],
        &["console", "g"],
        &["create", &good("guest.cfg")],
    ] {
        let err = run_with(&opener, args).0.unwrap_err();
        assert!(
            err.ends_with("(run `modprobe hvctl` or `insmod hvctl.ko` in dom0)")
                || err.starts_with("cannot read the kernel"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn version_names_the_abi() {
    assert_eq!(
        xl_rs::cli::version_string(),
        format!("{} (dom0-abi 1.3)", env!("CARGO_PKG_VERSION"))
    );
}

fn with_events(notify: bool, arrivals: &[u64]) -> MockOpener {
    let mut state = MockState::new();
    state.events = Some(xl_rs::testing::MockEvents {
        notify,
        arrivals: arrivals.iter().copied().collect(),
        ..Default::default()
    });
    MockOpener::new(state)
}

#[test]
fn wait_event_prints_what_woke_it() {
    use dom0_abi::event::{EVENT_DOMAIN_CREATED, EVENT_LOG};
    let opener = with_events(true, &[0, EVENT_DOMAIN_CREATED | EVENT_LOG]);
    let (result, out, err) = run_with(&opener, &["wait-event", "--timeout", "5"]);
    result.unwrap();
    assert!(out.contains("events     : domain-created log\n"), "{out}");
    assert!(out.contains("pending    : 0x9\n"), "{out}");
    assert!(out.contains("notify     : yes\n"), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn wait_event_times_out_when_nothing_happens() {
    let opener = with_events(true, &[]);
    let (result, out, _) = run_with(&opener, &["wait-event", "--timeout", "0.05"]);
    assert_eq!(result.unwrap_err(), "no hypervisor event within 0.05 s");
    assert!(out.is_empty());
    assert!(
        opener.state.borrow().events.as_ref().unwrap().timeouts > 0,
        "it waited"
    );
}

#[test]
fn wait_event_without_the_device_reads_periodically_and_says_so() {
    use dom0_abi::event::EVENT_DOMAIN_DESTROYED;
    let opener = with_events(false, &[0, EVENT_DOMAIN_DESTROYED]);
    let (result, out, err) = run_with(&opener, &["wait-event", "--timeout", "5"]);
    result.unwrap();
    assert!(out.contains("events     : domain-destroyed\n"), "{out}");
    assert!(out.contains("notify     : no\n"), "{out}");
    assert!(err.contains("has no notification device"), "{err}");
}

#[test]
fn wait_event_needs_abi_1_2() {
    let mut state = MockState::new();
    state.version = AbiVersion::new(1, 1);
    let (result, _, _) = run_with(&MockOpener::new(state), &["wait-event"]);
    assert!(
        result
            .unwrap_err()
            .ends_with("needs hypercall ABI 1.2, but the hypervisor speaks 1.1; boot a newer Oxen")
    );
}

#[test]
fn monitor_sleeps_on_events_and_falls_back_without_them() {
    use xl_rs::commands::monitor::watch;
    use xl_rs::config::DomainConfig;
    // With events: the guest shuts down after a few looks; each look
    // follows a wait on the device, and no wait is a timed sleep.
    let mut state = MockState::new();
    state.add_domain(1, "g", DomainState::Running, 256, 1, 0);
    state.domains.get_mut(&1).unwrap().pending_shutdown = Some((ShutdownReason::Poweroff, 2));
    state.events = Some(xl_rs::testing::MockEvents {
        notify: true,
        arrivals: [0, 2, 2].into_iter().collect(),
        ..Default::default()
    });
    let opener = MockOpener::new(state);
    let mut hv = opener.open().unwrap();
    let domain: DomainConfig = xl_rs::config::load("g.cfg", "name = \"g\"\nkernel = \"/k\"\n", &[])
        .unwrap()
        .0;
    let mut log = Vec::new();
    let outcome = watch(
        &mut *hv,
        1,
        &domain,
        "g.cfg",
        &mut log,
        Duration::from_secs(3600),
    )
    .unwrap();
    assert_eq!(
        outcome,
        xl_rs::commands::monitor::Outcome::Destroyed(ShutdownReason::Poweroff)
    );
    assert!(
        String::from_utf8(log)
            .unwrap()
            .contains("shut down (poweroff)")
    );
}

#[test]
fn shutdown_wait_sleeps_on_events() {
    let mut state = MockState::new();
    state.add_domain(1, "guest", DomainState::Running, 256, 1, 0);
    state.events = Some(xl_rs::testing::MockEvents {
        notify: true,
        arrivals: [2, 2, 2].into_iter().collect(),
        ..Default::default()
    });
    let opener = MockOpener::new(state);
    let (result, _, err) = run_with(&opener, &["shutdown", "-w", "guest"]);
    result.unwrap();
    assert!(err.contains("has shut down (poweroff)"), "{err}");
    let s = opener.state.borrow();
    let events = s.events.as_ref().unwrap();
    assert!(events.arrivals.len() < 3, "it waited on the device");
}
