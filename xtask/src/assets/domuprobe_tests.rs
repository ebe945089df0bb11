//! Host tests of `tests/qemu/initramfs/oxen-domuprobe.c`, the domU's probe
//! of the domu-isolation scenario: built with the host's gcc and run on
//! sparse files standing in for /dev/mem and /dev/cpu/0/msr, with a fake
//! `/sys/firmware/memmap`. (A file keeps what is written to it, so here
//! writes must be reported as sticking and MSR writes as accepted; the
//! refusals themselves are only seen under the hypervisor.)

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::c_tool_tests::{Scratch, run};

const MIB: u64 = 1 << 20;

const TOOL: &str = "oxen-domuprobe";

fn build(dir: &Scratch) -> Option<PathBuf> {
    super::c_tool_tests::build(dir, TOOL)
}

/// A fake memmap: one "System RAM" entry `[0, ram_end)` and a reserved one.
fn memmap(dir: &Scratch, ram_end: u64) -> PathBuf {
    let memmap = dir.path("memmap");
    for (index, (start, end, kind)) in [
        (0, ram_end - 1, "System RAM"),
        (0xFFFC_0000u64, 0xFFFF_FFFF, "Reserved"),
    ]
    .iter()
    .enumerate()
    {
        let entry = memmap.join(index.to_string());
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("start"), format!("{start:#x}\n")).unwrap();
        std::fs::write(entry.join("end"), format!("{end:#x}\n")).unwrap();
        std::fs::write(entry.join("type"), format!("{kind}\n")).unwrap();
    }
    memmap
}

/// A sparse 4 GiB file: zeros, with `fill` written at each `(offset, bytes)`.
fn physical(dir: &Scratch, name: &str, fill: &[(u64, Vec<u8>)]) -> PathBuf {
    let path = dir.path(name);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.set_len(4 << 30).unwrap();
    for (offset, bytes) in fill {
        f.seek(SeekFrom::Start(*offset)).unwrap();
        f.write_all(bytes).unwrap();
    }
    path
}

/// Every place the probe reads in `[from, 4 GiB)`, as all-ones.
fn ones_where_read(from: u64) -> Vec<(u64, Vec<u8>)> {
    let mut fill = Vec::new();
    let mut a = from;
    while a < 4 << 30 {
        fill.push((a, vec![0xff; 64]));
        fill.push((a + 4096 - 8, vec![0xff; 8]));
        a += MIB;
    }
    fill
}

#[test]
fn domuprobe_mem_on_files() {
    let dir = Scratch::new(TOOL, "mem");
    let Some(probe) = build(&dir) else { return };
    // The domain's RAM ends at 3840 MiB: 256 MiB above it to 4 GiB, less
    // the reserved entry's MiB and the two APIC pages, and the top MiB.
    let map = memmap(&dir, 0xF000_0000);
    let map = map.to_str().unwrap();
    let ones = physical(&dir, "ones", &ones_where_read(0xF000_0000));
    let ones = ones.to_str().unwrap();
    let (status, out) = run(
        &probe,
        &["mem", "-f", ones, "-m", map, "-b", "32", "-s", "SECRET-42"],
    );
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("memmap: 2 entries, own memory ends at 0xf0000000, physical address bits 32"),
        "{out}"
    );
    assert!(
        out.contains("read: 254 addresses outside the domain's memory (0 above 4 GiB, up to 0xfff00000), 18288 bytes, 0 not all-ones (0 zero), marker absent, canary absent"),
        "{out}"
    );
    assert!(out.contains("OXEN-DOMU-PROBE: mem PASS"), "{out}");

    // Zeros pass (an empty bus may read either way); data, dom0's marker
    // and the hypervisor's canary do not.
    let mut fill = ones_where_read(0xF000_0000);
    fill.push((0xF010_0010, b"xxSECRET-42xx".to_vec()));
    fill.push((0xF020_0008, b"OXEN-CANARY-0000".to_vec()));
    fill.push((0xF030_0000, vec![0; 64]));
    let seen = physical(&dir, "seen", &fill);
    let (status, out) = run(
        &probe,
        &[
            "mem",
            "-f",
            seen.to_str().unwrap(),
            "-m",
            map,
            "-b",
            "32",
            "-s",
            "SECRET-42",
        ],
    );
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("not all-ones (8 zero), marker SEEN, canary SEEN"),
        "{out}"
    );
    assert!(out.contains("data at 0xf0100010: 0x"), "{out}");
    assert!(out.contains("FAIL: dom0's MARKER SEEN"), "{out}");
    assert!(out.contains("FAIL: the hypervisor's CANARY SEEN"), "{out}");

    // The target page: read whole; writes to a file stick and are reported.
    let (status, out) = run(
        &probe,
        &[
            "mem",
            "-f",
            ones,
            "-m",
            map,
            "-b",
            "32",
            "-t",
            "0xf0500000",
            "-s",
            "SECRET-42",
            "-w",
        ],
    );
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("target 0xf0500000: 4096 bytes read, 503 not all-ones, marker absent"),
        "{out}"
    );
    assert!(
        out.contains(
            "write: WRITE STUCK at 0xf4000000 (0xffffffffffffffff before, 0x5a5aa5a5c3c33c3c after)"
        ),
        "{out}"
    );
    assert!(
        out.contains("FAIL: WRITE STUCK outside the domain's memory"),
        "{out}"
    );

    // A target inside the domain's own memory is left alone.
    let (_, out) = run(
        &probe,
        &["mem", "-f", ones, "-m", map, "-b", "32", "-t", "0x1000000"],
    );
    assert!(
        out.contains("target 0x1000000: inside the domain's own memory, not probed"),
        "{out}"
    );
}

#[test]
fn domuprobe_msr_and_usage() {
    let dir = Scratch::new(TOOL, "msr");
    let Some(probe) = build(&dir) else { return };
    // A file takes every "MSR" write: the refusals the policy demands are
    // missing, and each is named. (EFER, at 0xc0000080, lies past the end
    // of the file: its read fails, so it is not tried.)
    let msr = dir.path("msr");
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&msr)
        .unwrap()
        .set_len(0x1234_5680)
        .unwrap();
    let (status, out) = run(&probe, &["msr", "-f", msr.to_str().unwrap()]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("msr 0x3a IA32_FEATURE_CONTROL: read 0x0; write 0x5 accepted; reads back 0x5 (took effect)"), "{out}");
    assert!(
        out.contains(
            "msr 0x174 IA32_SYSENTER_CS (own value): read 0x0; write 0x0 accepted; reads back 0x0"
        ),
        "{out}"
    );
    assert!(
        out.contains("FAIL: MSR 0x3a: write accepted, expected a refusal"),
        "{out}"
    );
    assert!(
        out.contains("FAIL: MSR 0x12345678: write accepted, expected a refusal"),
        "{out}"
    );
    assert!(
        out.contains("msr FAIL: 0 writes refused, 13 accepted"),
        "{out}"
    );
    let (status, _) = run(&probe, &["nothing"]);
    assert_eq!(status, 2);
}
