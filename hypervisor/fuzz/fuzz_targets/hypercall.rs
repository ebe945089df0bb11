//! Fuzzes hypercall dispatch: the first 48 bytes are RAX and the five
//! argument registers, the rest the caller's RAM. Any input must give a
//! status, never a panic; an unknown operation must give an error.

#![no_main]

use hypervisor::hypercall::sim::{SimMemory, SimPlatform};
use hypervisor::hypercall::{Caller, dispatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut regs = [0u64; 6];
    for (i, r) in regs.iter_mut().enumerate() {
        let mut word = [0u8; 8];
        if let Some(chunk) = data.get(i * 8..i * 8 + 8) {
            word.copy_from_slice(chunk);
        }
        *r = u64::from_le_bytes(word);
    }
    // Point most arguments near the RAM so that decoding gets past the
    // address checks often.
    for r in &mut regs[1..] {
        if *r & 1 == 0 {
            *r = 0x1000 + (*r >> 1) % 0x1_1000;
        }
    }
    let mut mem = SimMemory::new(&[(0x1000, 0x9000), (0x10_0000, 0x10_2000)]);
    let ram = data.get(48..).unwrap_or_default();
    let n = ram.len().min(0x8000);
    mem.range_mut(0)[..n].copy_from_slice(&ram[..n]);
    let mut platform = SimPlatform { log: b"log line\n".repeat(100), free_pages: 64, ..SimPlatform::default() };
    let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
    let status = dispatch(regs[0], args, Caller { privileged: true }, &mut mem, &mut platform);
    if dom0_abi::Op::try_from(regs[0]).is_err() {
        assert!(status < 0);
    }
});
