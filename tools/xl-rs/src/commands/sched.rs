//! The scheduling commands (ABI 1.3), as xl prints them: `vcpu-list`,
//! `vcpu-pin` and `sched-credit2` (also `sched-credit`).

use std::io::Write;

use dom0_abi::sched::VcpuState;
use dom0_abi::{AbiVersion, DomainInfo, VcpuInfo};

use super::{XlError, connect_for, matches_any, resolve};
use crate::config::cpulist::{format_cpu_set, parse_cpu_list};
use crate::device::{Hypervisor, Opener};

/// The ABI version the scheduling operations need.
pub const SCHED_ABI: AbiVersion = AbiVersion::new(1, 3);

/// Errors of the scheduling commands' own arguments.
#[derive(Debug, thiserror::Error)]
pub enum SchedArgError {
    /// A CPU list that does not parse.
    #[error("invalid CPU list `{text}`: {reason}")]
    CpuList {
        /// The argument.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A vCPU that is neither a number nor `all`.
    #[error("invalid vCPU `{0}`: give a vCPU number or `all`")]
    Vcpu(String),
    /// A vCPU the domain does not have.
    #[error("domain {domain} has no vCPU {vcpu} (it has {count})")]
    NoSuchVcpu {
        /// The domain, as displayed.
        domain: String,
        /// The vCPU asked for.
        vcpu: u32,
        /// How many it has.
        count: usize,
    },
    /// A soft affinity other than `-`.
    #[error(
        "soft affinity `{0}` is not supported: Oxen's scheduler has hard affinity only; give `-` or leave it out"
    )]
    SoftAffinity(String),
}

/// `xl vcpu-list [DOMAIN...]`.
pub fn vcpu_list(
    opener: &dyn Opener,
    wanted: &[String],
    out: &mut dyn Write,
) -> Result<(), XlError> {
    let mut hv = connect_for(opener, SCHED_ABI, "listing vCPUs")?;
    let cpus = hv.hv_info()?.cpu_count;
    let domains = hv.domain_list()?;
    for w in wanted {
        if !domains
            .iter()
            .any(|d| matches_any(d, std::slice::from_ref(w)))
        {
            return Err(XlError::NoSuchDomain(w.clone()));
        }
    }
    writeln!(
        out,
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9} Affinity (Hard / Soft)",
        "Name", "ID", "VCPU", "CPU", "State", "Time(s)"
    )?;
    for d in domains.iter().filter(|d| matches_any(d, wanted)) {
        for v in hv.vcpu_list(d.domid)? {
            writeln!(out, "{}", vcpu_row(d, &v, cpus))?;
        }
    }
    Ok(())
}

/// One line of `vcpu-list`: xl's columns; the CPU is the one the vCPU
/// runs on, or waits on (as xl shows it), `-` for a vCPU the guest has not
/// started.
#[must_use]
pub fn vcpu_row(d: &DomainInfo, v: &VcpuInfo, cpus: u32) -> String {
    let state = v.state();
    let cpu = if state == Ok(VcpuState::Offline) {
        "-".to_owned()
    } else {
        v.cpu.to_string()
    };
    format!(
        "{:<32} {:>5} {:>5} {:>5} {:>5} {:>9.1}  {} / all",
        d.name_str().unwrap_or("?"),
        d.domid,
        v.vcpu,
        cpu,
        vcpu_state_letters(state),
        v.cpu_time_ns as f64 / 1e9,
        format_cpu_set(v.affinity, cpus),
    )
}

/// xl's three state letters: `r--` running, `-b-` blocked, `--p` paused
/// or offline, `---` runnable; `???` for a state this xl-rs does not know.
#[must_use]
pub fn vcpu_state_letters(state: Result<VcpuState, u32>) -> &'static str {
    match state {
        Ok(VcpuState::Running) => "r--",
        Ok(VcpuState::Blocked) => "-b-",
        Ok(VcpuState::Paused | VcpuState::Offline) => "--p",
        Ok(VcpuState::Runnable) => "---",
        Err(_) => "???",
    }
}

/// Which vCPUs `vcpu-pin` pins: a number or `all`.
fn parse_vcpu(text: &str) -> Result<Option<u32>, SchedArgError> {
    if text == "all" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| SchedArgError::Vcpu(text.to_owned()))
}

/// `xl vcpu-pin DOMAIN VCPU CPUS [SOFT]`: the hard affinity of one vCPU or
/// of all; a soft affinity other than `-` is refused.
pub fn vcpu_pin(
    opener: &dyn Opener,
    domain: &str,
    vcpu: &str,
    cpus: &str,
    soft: Option<&str>,
) -> Result<(), XlError> {
    if let Some(soft) = soft.filter(|s| *s != "-") {
        return Err(SchedArgError::SoftAffinity(soft.to_owned()).into());
    }
    let which = parse_vcpu(vcpu)?;
    let set = parse_cpu_list(cpus).map_err(|reason| SchedArgError::CpuList {
        text: cpus.to_owned(),
        reason,
    })?;
    let mut hv = connect_for(opener, SCHED_ABI, "pinning vCPUs")?;
    let d = resolve(&mut *hv, domain)?;
    let count = hv.vcpu_list(d.domid)?.len();
    let vcpus: Vec<u32> = match which {
        Some(v) if (v as usize) < count => vec![v],
        Some(v) => {
            return Err(SchedArgError::NoSuchVcpu {
                domain: super::display_name(&d),
                vcpu: v,
                count,
            }
            .into());
        }
        None => (0..count as u32).collect(),
    };
    for v in vcpus {
        hv.vcpu_set_affinity(d.domid, v, set.0)?;
    }
    Ok(())
}

/// `xl sched-credit2 [-d DOMAIN [-w WEIGHT] [-c CAP]]`.
pub fn sched_credit2(
    opener: &dyn Opener,
    domain: Option<&str>,
    weight: Option<u32>,
    cap: Option<u32>,
    out: &mut dyn Write,
) -> Result<(), XlError> {
    let mut hv = connect_for(opener, SCHED_ABI, "scheduling parameters")?;
    let shown: Vec<DomainInfo> = match domain {
        Some(name) => {
            let d = resolve(&mut *hv, name)?;
            if weight.is_some() || cap.is_some() {
                return Ok(hv.sched_set(d.domid, weight, cap)?);
            }
            vec![d]
        }
        None => hv.domain_list()?,
    };
    print_sched(&mut *hv, &shown, out)
}

fn print_sched(
    hv: &mut dyn Hypervisor,
    domains: &[DomainInfo],
    out: &mut dyn Write,
) -> Result<(), XlError> {
    writeln!(
        out,
        "{:<33} {:>4} {:>6} {:>4}",
        "Name", "ID", "Weight", "Cap"
    )?;
    for d in domains {
        let p = hv.sched_get(d.domid)?;
        writeln!(
            out,
            "{:<33} {:>4} {:>6} {:>4}",
            d.name_str().unwrap_or("?"),
            d.domid,
            p.weight,
            p.cap
        )?;
    }
    Ok(())
}
