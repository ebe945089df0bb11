//! Commands against a mock hypervisor, and against a device that does not exist.

use clap::Parser as _;
use dom0_abi::domain::{DOMAIN_FLAG_PRIVILEGED, DomainState};
use dom0_abi::info::{VMX_EPT, VMX_EPT_2M};
use dom0_abi::{AbiVersion, DomainInfo, HvInfo};
use xl_rs::cli::Cli;
use xl_rs::device::{DeviceError, HostFacts, HvctlOpener, Hypervisor, LogText, Opener};

struct Mock {
    version: AbiVersion,
}

fn domain(domid: u32, name: &str, state: DomainState, pages: u64, vcpus: u32) -> DomainInfo {
    let mut n = [0u8; 64];
    n[..name.len()].copy_from_slice(name.as_bytes());
    DomainInfo {
        domid,
        state: state as u32,
        flags: if domid == 0 {
            DOMAIN_FLAG_PRIVILEGED
        } else {
            0
        },
        shutdown_reason: 0,
        name: n,
        memory_pages: pages,
        max_memory_pages: pages,
        vcpus,
        max_vcpus: vcpus,
        cpu_time_ns: 12_345_000_000,
    }
}

impl Hypervisor for Mock {
    fn negotiate(&mut self) -> Result<AbiVersion, DeviceError> {
        Ok(self.version)
    }

    fn hv_info(&mut self) -> Result<HvInfo, DeviceError> {
        let mut version = [0u8; 32];
        version[..10].copy_from_slice(b"oxen 0.1.0");
        Ok(HvInfo {
            version,
            abi_major: 1,
            abi_minor: 0,
            cpu_count: 2,
            total_pages: 262_144,
            free_pages: 131_072,
            dom0_pages: 65_536,
            vmx_features: VMX_EPT | VMX_EPT_2M,
            tsc_khz: 2_000_000,
            uptime_ns: 1_500_000_000,
        })
    }

    fn domain_list(&mut self) -> Result<Vec<DomainInfo>, DeviceError> {
        Ok(vec![
            domain(0, "Domain-0", DomainState::Running, 65_536, 2),
            domain(1, "guest", DomainState::Paused, 65_536, 1),
        ])
    }

    fn log_read(&mut self, clear: bool) -> Result<LogText, DeviceError> {
        Ok(LogText {
            text: format!("(XEN) log, clear={clear}\n").into_bytes(),
            dropped: if clear { 0 } else { 42 },
        })
    }
}

struct MockOpener(AbiVersion);

impl Opener for MockOpener {
    fn open(&self) -> Result<Box<dyn Hypervisor>, DeviceError> {
        Ok(Box::new(Mock { version: self.0 }))
    }

    fn host_facts(&self) -> HostFacts {
        HostFacts {
            host: "dom0".to_owned(),
            release: "6.1.0-56-amd64".to_owned(),
            version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2".to_owned(),
            machine: "x86_64".to_owned(),
        }
    }
}

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

fn run(args: &[&str]) -> (Result<(), String>, String, String) {
    run_with(&MockOpener(AbiVersion::new(1, 0)), args)
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
dom0_memory            : 256
hypervisor_version     : oxen 0.1.0
abi_version            : 1.0
pagesize               : 4096
uptime_s               : 1.5
xl_rs_version          : {}
xl_rs_abi_version      : 1.0
",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(out, want);
    // Every line is `key : value` with xl's 23-column key.
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
        format!("xl-rs {} (dom0-abi 1.0)\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn abi_major_mismatch_is_refused_naming_both_versions() {
    let (result, _, _) = run_with(&MockOpener(AbiVersion::new(2, 3)), &["info"]);
    assert!(
        result
            .unwrap_err()
            .contains("xl-rs speaks hypercall ABI 1.0, the hypervisor speaks 2.3")
    );
}

#[test]
fn domain_control_reports_what_is_missing() {
    for args in [
        &["destroy", "guest"][..],
        &["pause", "1"],
        &["unpause", "1"],
        &["shutdown", "-w", "g"],
        &["reboot", "g"],
        &["console", "g"],
        &["vcpu-list"],
    ] {
        let (result, _, _) = run(args);
        let err = result.unwrap_err();
        assert!(err.contains("is not implemented yet"), "{args:?}: {err}");
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
fn create_without_dry_run_validates_then_reaches_the_device() {
    let (result, _, _) = run_with(
        &HvctlOpener::with_path("/nonexistent/hvctl"),
        &["create", &good("guest.cfg")],
    );
    assert!(
        result
            .unwrap_err()
            .contains("the hvctl driver is not loaded")
    );
    let (result, _, _) = run(&["create", "-p", "-c", &good("guest.cfg")]);
    assert!(
        result
            .unwrap_err()
            .contains("creating domain `debian-guest` paused with its console attached")
    );
}

#[test]
fn missing_device_is_reported_for_every_device_command() {
    let opener = HvctlOpener::with_path("/nonexistent/hvctl");
    for args in [&["list"][..], &["info"], &["dmesg"], &["destroy", "g"]] {
        let err = run_with(&opener, args).0.unwrap_err();
        assert!(
            err.ends_with("(run `modprobe hvctl` or `insmod hvctl.ko` in dom0)"),
            "{err}"
        );
    }
}

#[test]
fn version_names_the_abi() {
    assert_eq!(
        xl_rs::cli::version_string(),
        format!("{} (dom0-abi 1.0)", env!("CARGO_PKG_VERSION"))
    );
}
