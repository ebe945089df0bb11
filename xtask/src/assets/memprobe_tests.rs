//! Host tests of `tests/qemu/initramfs/oxen-memprobe.c`, the dom0-isolation
//! probe: built with the host's gcc and run on ordinary files standing in for
//! /dev/mem, with a fake `/sys/firmware/memmap`. (Writes to a file always
//! stick, so the "writes dropped" path is only exercised under the
//! hypervisor; here the probe must see them stick and undo them.)

use std::path::PathBuf;

use super::c_tool_tests::{Scratch, run};

const MIB: usize = 1 << 20;

const TOOL: &str = "oxen-memprobe";

fn build(dir: &Scratch) -> Option<PathBuf> {
    super::c_tool_tests::build(dir, TOOL)
}

/// A fake memmap directory: entries `(start, end inclusive, type)`.
fn memmap(dir: &Scratch, entries: &[(u64, u64, &str)]) -> PathBuf {
    let memmap = dir.path("memmap");
    for (index, (start, end, kind)) in entries.iter().enumerate() {
        let entry = memmap.join(index.to_string());
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("start"), format!("{start:#x}\n")).unwrap();
        std::fs::write(entry.join("end"), format!("{end:#x}\n")).unwrap();
        std::fs::write(entry.join("type"), format!("{kind}\n")).unwrap();
    }
    memmap
}

const CANARY: &[u8] = b"OXEN-CANARY-";

#[test]
fn memprobe_on_files() {
    let dir = Scratch::new(TOOL, "files");
    let Some(probe) = build(&dir) else { return };
    let ones = vec![0xffu8; 20 * MIB];
    let ones_path = dir.path("ones");
    std::fs::write(&ones_path, &ones).unwrap();
    let ones_file = ones_path.to_str().unwrap();
    let no_map = dir.path("no-memmap");
    let no_map = no_map.to_str().unwrap();

    // All 0xff, reading only: PASS.
    let (status, out) = run(
        &probe,
        &["-f", ones_file, "-m", no_map, "-n", "-r", "0-0x1400000"],
    );
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains(
            "OXEN-ISOLATION: read 0x0-0x1400000: 20971520 bytes, 0 not 0xff, canary absent"
        ),
        "{out}"
    );
    assert!(
        out.contains("OXEN-ISOLATION: PASS: 1 ranges, 20971520 bytes read, all 0xff"),
        "{out}"
    );

    // Canaries: inside a page, across a page boundary, across the 16 MiB
    // boundary between two mappings.
    let mut canaries = ones.clone();
    for at in [0x12_3440, 0x20_0ffa, 0x100_0000 - 5] {
        canaries[at..at + CANARY.len()].copy_from_slice(CANARY);
    }
    let canaries_path = dir.path("canaries");
    std::fs::write(&canaries_path, &canaries).unwrap();
    let canaries_file = canaries_path.to_str().unwrap();
    let (status, out) = run(
        &probe,
        &["-f", canaries_file, "-m", no_map, "-n", "-r", "0-0x1400000"],
    );
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("read 0x0-0x1400000: 20971520 bytes, 36 not 0xff, CANARY SEEN (3 hits)"),
        "{out}"
    );
    assert!(
        out.contains("OXEN-ISOLATION: FAIL: canary seen 3 times; 36 bytes not 0xff"),
        "{out}"
    );
    let (status, out) = run(
        &probe,
        &[
            "-f",
            canaries_file,
            "-m",
            no_map,
            "-n",
            "-r",
            "0x400000-0x800000",
        ],
    );
    assert_eq!(status, 0, "{out}");

    // Writes to a file stick: each is reported and undone.
    let (status, out) = run(
        &probe,
        &["-f", ones_file, "-m", no_map, "-r", "0x100000-0x200000"],
    );
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("WRITE STUCK at 0x100800 (8-byte store"),
        "{out}"
    );
    assert!(
        out.contains("WRITE STUCK at 0x100000 (4 KiB memcpy"),
        "{out}"
    );
    assert!(
        out.contains("WRITE STUCK at 0x1000c0 (64-byte pwrite"),
        "{out}"
    );
    assert!(
        out.contains("WRITE STUCK at 0x1ff000 (4 KiB memcpy"),
        "{out}"
    );
    assert!(
        out.contains("OXEN-ISOLATION: FAIL: 15 write(s) stuck"),
        "{out}"
    );
    assert!(
        std::fs::read(&ones_path).unwrap() == ones,
        "the stuck writes were not undone"
    );

    // Errors: a range beyond the file, a missing file, a bad range.
    let (status, out) = run(
        &probe,
        &[
            "-f",
            ones_file,
            "-m",
            no_map,
            "-n",
            "-r",
            "0x1000000-0x1500000",
        ],
    );
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("OXEN-ISOLATION: error: 0x1000000-0x1500000:"),
        "{out}"
    );
    let missing = dir.path("missing");
    let (status, out) = run(
        &probe,
        &[
            "-f",
            missing.to_str().unwrap(),
            "-m",
            no_map,
            "-r",
            "0-0x1000",
        ],
    );
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("cannot open") && out.contains("No such file"),
        "{out}"
    );
    assert!(out.contains("OXEN-ISOLATION: FAIL: 2 error(s)"), "{out}");
    let (status, _) = run(&probe, &["-r", "0x10-0x20"]);
    assert_eq!(status, 2, "an unaligned range is a usage error");
}

#[test]
fn memprobe_discovers_reserved_ranges() {
    let dir = Scratch::new(TOOL, "memmap");
    let Some(probe) = build(&dir) else { return };
    let ones = dir.path("ones");
    std::fs::write(&ones, vec![0xffu8; 16 * MIB]).unwrap();
    let ones = ones.to_str().unwrap();

    // As the hypervisor's dom0 e820 looks: the legacy hole merged with
    // hidden memory above 1 MiB, dom0's RAM, the free pool, ACPI at the top
    // of RAM, firmware near 4 GiB.
    let map = memmap(
        &dir,
        &[
            (0, 0x9_efff, "System RAM"),
            (0x9_f000, 0x1f_ffff, "Reserved"),
            (0x20_0000, 0x7f_ffff, "System RAM"),
            (0x80_0000, 0xef_ffff, "Reserved"),
            // Not page aligned: shrunk to 0xf0_1000-0xf0_3000.
            (0xf0_0800, 0xf0_37ff, "Reserved"),
            (0xff_0000, 0xff_ffff, "ACPI Tables"),
            (0xfffc_0000, 0xffff_ffff, "Reserved"),
        ],
    );
    let map = map.to_str().unwrap();
    let (status, out) = run(&probe, &["-f", ones, "-m", map, "-n"]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("memmap: 7 entries, RAM ends at 0x800000, probing reserved ranges in [0x100000, 0x1000000)"),
        "{out}"
    );
    assert!(
        out.contains("skip 0xfffc0000-0x100000000: reserved above the end of RAM and ACPI"),
        "{out}"
    );
    for range in [
        "0x100000-0x200000",
        "0x800000-0xf00000",
        "0xf01000-0xf03000",
    ] {
        assert!(out.contains(&format!("range {range}:")), "{range}: {out}");
        assert!(out.contains(&format!("read {range}:")), "{range}: {out}");
    }
    assert!(
        out.contains("PASS: 3 ranges, 8396800 bytes read, all 0xff"),
        "{out}"
    );

    // The pwrite test runs only below the end of RAM: the free pool's pages
    // are left to the stores and memcpy.
    let (status, out) = run(&probe, &["-f", ones, "-m", map]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("WRITE STUCK at 0x1000c0 (64-byte pwrite"),
        "{out}"
    );
    assert!(
        out.contains("WRITE STUCK at 0x800000 (4 KiB memcpy"),
        "{out}"
    );
    assert!(!out.contains("WRITE STUCK at 0x8000c0"), "{out}");

    // No reserved range at all is a failure.
    let empty = Scratch::new(TOOL, "empty");
    let map = memmap(&empty, &[(0, 0x9_efff, "System RAM")]);
    let (status, out) = run(&probe, &["-f", ones, "-m", map.to_str().unwrap(), "-n"]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("OXEN-ISOLATION: FAIL: no reserved ranges to probe"),
        "{out}"
    );
}
