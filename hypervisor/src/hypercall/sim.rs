//! A caller's memory and a hypervisor state held in plain vectors, for host
//! tests and the fuzz target of [`super::dispatch`] (`hypervisor/fuzz`).

use alloc::vec;
use alloc::vec::Vec;

use dom0_abi::{ABI_VERSION, DomainInfo, HvInfo, Status};
use zerocopy::FromZeros;

use super::{GuestMemory, Platform, RamRanges};

/// RAM ranges `[start, end)`, each backed by its own vector.
#[derive(Debug, Clone)]
pub struct SimMemory {
    ranges: Vec<(u64, u64)>,
    bytes: Vec<Vec<u8>>,
}

impl SimMemory {
    /// Zeroed RAM for `ranges` (each at most a few MiB: it is allocated).
    pub fn new(ranges: &[(u64, u64)]) -> Self {
        let bytes = ranges.iter().map(|&(s, e)| vec![0; (e - s) as usize]).collect();
        Self { ranges: ranges.to_vec(), bytes }
    }

    /// Range `i`'s bytes.
    pub fn range_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.bytes[i]
    }

    fn locate(&self, gpa: u64) -> Option<(usize, usize)> {
        self.ranges.iter().position(|&(s, e)| s <= gpa && gpa < e).map(|i| (i, (gpa - self.ranges[i].0) as usize))
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

/// A hypervisor with two CPUs, dom0 and one more domain, and a log.
#[derive(Debug, Clone)]
pub struct SimPlatform {
    /// The log ring's contents.
    pub log: Vec<u8>,
    /// What `log_read` reports as dropped.
    pub dropped: u64,
}

fn domain(id: u32, name: &str) -> DomainInfo {
    let mut d = DomainInfo::new_zeroed();
    d.domid = id;
    d.name[..name.len()].copy_from_slice(name.as_bytes());
    d.memory_pages = 1000 + u64::from(id);
    d
}

impl Platform for SimPlatform {
    fn hv_info(&self) -> HvInfo {
        let mut i = HvInfo::new_zeroed();
        i.cpu_count = 2;
        i.abi_major = ABI_VERSION.major;
        i.abi_minor = ABI_VERSION.minor;
        i
    }
    fn domains(&self) -> Vec<DomainInfo> {
        vec![domain(0, "Domain-0"), domain(3, "guest")]
    }
    fn log_read(&mut self, max: usize, clear: bool) -> (Vec<u8>, u64) {
        let n = max.min(self.log.len());
        let out = self.log[..n].to_vec();
        if clear {
            self.log.drain(..n);
        }
        (out, self.dropped)
    }
}
