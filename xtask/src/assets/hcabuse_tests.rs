//! Host tests of `tests/qemu/initramfs/oxen-hcabuse.c`, the hypercall-abuse
//! program: built with the host's gcc and run as a dry run (`-d`: the calls
//! are generated and printed, none is made) on a fake
//! `/sys/firmware/memmap` and `/proc/iomem`. The property that matters most
//! is checked on every generated call: no argument that could be taken for an
//! address points into dom0's RAM (the hypervisor would really write there).

use std::path::{Path, PathBuf};

use super::c_tool_tests::{Scratch, run};

const TOOL: &str = "oxen-hcabuse";

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

/// dom0's e820 map in the dom0-isolation scenario (512 MiB of a 1 GiB
/// machine: the hypervisor's image and the free pool reserved).
const MAP: &[(u64, u64, &str)] = &[
    (0x0, 0x9_efff, "System RAM"),
    (0x9_f000, 0x9_ffff, "Reserved"),
    (0xf_0000, 0xf_ffff, "Reserved"),
    (0x10_0000, 0x1f_ffff, "System RAM"),
    (0x20_0000, 0x26_3fff, "Reserved"),
    (0x26_4000, 0x200c_4fff, "System RAM"),
    (0x200c_5000, 0x3ffe_ffff, "Reserved"),
    (0x3fff_0000, 0x3fff_ffff, "ACPI Tables"),
    (0xfffc_0000, 0xffff_ffff, "Reserved"),
];

/// A System RAM range that only /proc/iomem names (inside a reserved entry
/// of the map): the program must keep out of it too.
const IOMEM: &str = "00000000-00000fff : Reserved\n\
                     00001000-0009efff : System RAM\n\
                     30000000-30ffffff : System RAM\n  \
                     30000000-30ffffff : Kernel code\n\
                     fee00000-fee00fff : Local APIC\n";

/// The ranges `[start, end)` no address argument may touch: every map entry
/// that is not Reserved, and the iomem RAM.
fn forbidden() -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = MAP
        .iter()
        .filter(|(_, _, kind)| *kind != "Reserved")
        .map(|&(start, end, _)| (start, end + 1))
        .collect();
    ranges.push((0x1000, 0x9_f000));
    ranges.push((0x3000_0000, 0x3100_0000));
    ranges
}

/// One generated call of the dry run.
#[derive(Debug)]
struct Call {
    class: String,
    op: u64,
    args: [u64; 5],
    expect: u32,
    /// Bit i: `args[i]` is no address (a size, a domain id, ...).
    scalars: u32,
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

fn calls(stdout: &str) -> Vec<Call> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("call "))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 10, "{line}");
            Call {
                class: words[1].to_owned(),
                op: hex(words[2]),
                args: [
                    hex(words[3]),
                    hex(words[4]),
                    hex(words[5]),
                    hex(words[6]),
                    hex(words[7]),
                ],
                expect: u32::try_from(hex(words[8])).unwrap(),
                scalars: u32::try_from(hex(words[9])).unwrap(),
            }
        })
        .collect()
}

const VERSION: u64 = 0x100;
const HV_INFO: u64 = 0x101;
const DOMAIN_INFO: u64 = 0x201;

/// The operation numbers the C header the program includes defines
/// (`#define OXEN_OP_NAME 0x...ULL`): ABI 1.0's five, and more in later minor
/// versions.
fn header_ops() -> Vec<u64> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let header = std::fs::read_to_string(root.join("dom0-abi/include/oxen_abi.h")).unwrap();
    let ops: Vec<u64> = header
        .lines()
        .filter_map(|line| line.strip_prefix("#define OXEN_OP_"))
        .filter_map(|rest| rest.split_whitespace().nth(1))
        .map(|value| hex(value.trim_end_matches("ULL")))
        .collect();
    assert!(ops.len() >= 5, "{ops:?}");
    ops
}
/// `1 << -status` for the statuses the checks name.
const INVALID_OPERATION: u32 = 1 << 2;
const INVALID_ARGUMENT: u32 = 1 << 3;
const BAD_ADDRESS: u32 = 1 << 4;
const TOO_BIG: u32 = 1 << 5;
const BUFFER_TOO_SMALL: u32 = 1 << 6;
const NO_SUCH_DOMAIN: u32 = 1 << 7;
const NOT_IMPLEMENTED: u32 = 1 << 11;

#[test]
fn hcabuse_addresses_stay_out_of_ram() {
    let dir = Scratch::new(TOOL, "ram");
    let Some(program) = build(&dir) else { return };
    let memmap = memmap(&dir, MAP);
    let iomem = dir.path("iomem");
    std::fs::write(&iomem, IOMEM).unwrap();
    let args = [
        "-d",
        "-n",
        "20000",
        "-s",
        "0x5eed",
        "-m",
        memmap.to_str().unwrap(),
        "-i",
        iomem.to_str().unwrap(),
    ];
    let (status, stdout) = run(&program, &args);
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.contains("OXEN-ABUSE: seed 0x5eed"), "{stdout}");
    assert!(
        stdout.contains("memory map: 9 entries, 3 RAM ranges, RAM ends at 0x100000000"),
        "{stdout}"
    );
    let calls = calls(&stdout);
    assert_eq!(calls.len(), 20000);
    let forbidden = forbidden();
    let mut pools = [0usize; 4]; // reserved, MMIO, top..2^52, 2^52 and up
    for call in &calls {
        // Sizes and domain ids only where the operation takes them.
        match call.op {
            HV_INFO => assert_eq!(call.scalars, 2, "{call:?}"),
            DOMAIN_INFO => assert_eq!(call.scalars, 1, "{call:?}"),
            _ if call.class != "domain-ops" => assert_eq!(call.scalars, 0, "{call:?}"),
            _ => {}
        }
        for (index, &value) in call.args.iter().enumerate() {
            if call.scalars & (1 << index) != 0 {
                continue;
            }
            let end = value.saturating_add(4096);
            assert!(value >= 0x10_0000, "{call:?}: argument {index} below 1 MiB");
            for &(start, stop) in &forbidden {
                assert!(
                    end <= start || value >= stop,
                    "{call:?}: argument {index} = {value:#x} touches [{start:#x}, {stop:#x})"
                );
            }
            match value {
                0x20_0000..0x4000_0000 | 0xfffc_0000..0x1_0000_0000 => pools[0] += 1,
                0xfec0_0000..0xfec0_1000 | 0xfee0_0000..0xfee0_1000 => pools[1] += 1,
                0x1_0000_0000..0x10_0000_0000_0000 => pools[2] += 1,
                0x10_0000_0000_0000.. => pools[3] += 1,
                _ => panic!("{call:?}: {value:#x} from no pool"),
            }
        }
    }
    assert!(pools.iter().all(|&n| n > 1000), "{pools:?}");
    // Near 2^64, wrapping once 8 or 88 bytes are added.
    let all: Vec<u64> = calls.iter().flat_map(|call| call.args).collect();
    assert!(all.contains(&u64::MAX));
    assert!(all.contains(&(u64::MAX - 87)));
}

#[test]
fn hcabuse_classes_and_expected_statuses() {
    let dir = Scratch::new(TOOL, "classes");
    let Some(program) = build(&dir) else { return };
    let memmap = memmap(&dir, MAP);
    let args = [
        "-d",
        "-n",
        "10000",
        "-s",
        "7",
        "-m",
        memmap.to_str().unwrap(),
        "-i",
        "/nonexistent",
    ];
    let (status, stdout) = run(&program, &args);
    assert_eq!(status, 0, "{stdout}");
    let calls = calls(&stdout);
    let known = header_ops();
    // The domain operations of ABI 1.1 have a class when the header has them.
    let domain_ops = known.iter().any(|&op| op >> 8 == 3);
    let mut classes = vec![
        "random-op",
        "op-0",
        "reserved-group",
        "undefined-op",
        "above-0xffff",
        "VERSION",
        "HV_INFO",
        "LOG_READ",
        "DOMAIN_LIST",
        "DOMAIN_INFO",
    ];
    if domain_ops {
        classes.push("domain-ops");
    }
    for class in &classes {
        let n = calls.iter().filter(|call| call.class == *class).count();
        assert!((800..1200).contains(&n), "{class}: {n} calls of 10000");
    }
    let mut huge_sizes = 0;
    let mut bad_domids = 0;
    for call in &calls {
        let group = call.op >> 8;
        match call.class.as_str() {
            "random-op" | "undefined-op" | "above-0xffff" | "op-0" => {
                assert!(!known.contains(&call.op), "{call:?}");
                let reserved = call.op <= 0xffff && (matches!(group, 3..=8) || group == 0x80);
                let want = if reserved {
                    NOT_IMPLEMENTED
                } else {
                    INVALID_OPERATION
                };
                assert_eq!(call.expect, want, "{call:?}");
                match call.class.as_str() {
                    "op-0" => assert_eq!(call.op, 0),
                    "above-0xffff" => assert!(call.op > 0xffff, "{call:?}"),
                    "undefined-op" => assert!(call.op <= 0xffff && !reserved, "{call:?}"),
                    _ => {}
                }
            }
            "reserved-group" => {
                assert!(matches!(group, 3..=8 | 0x80), "{call:?}");
                assert!(!known.contains(&call.op), "{call:?}");
                assert_eq!(call.expect, NOT_IMPLEMENTED);
            }
            "domain-ops" => {
                assert!(
                    known.contains(&call.op) && matches!(group, 3..=8),
                    "{call:?}"
                );
                assert_eq!(
                    call.expect,
                    BAD_ADDRESS | NO_SUCH_DOMAIN | TOO_BIG | INVALID_ARGUMENT,
                    "{call:?}"
                );
                // A domain id where one is taken: never dom0's.
                if call.scalars & 1 != 0 {
                    assert_ne!(call.args[0], 0, "{call:?}");
                }
            }
            "HV_INFO" => {
                assert_eq!(call.op, HV_INFO);
                let size = call.args[1];
                let want = if size > 1 << 20 {
                    huge_sizes += 1;
                    BAD_ADDRESS | TOO_BIG
                } else if size < 88 {
                    BAD_ADDRESS | BUFFER_TOO_SMALL
                } else {
                    BAD_ADDRESS
                };
                assert_eq!(call.expect, want, "{call:?}");
            }
            "DOMAIN_INFO" => {
                assert_eq!(call.op, DOMAIN_INFO);
                let want = if call.args[0] == 0 {
                    BAD_ADDRESS
                } else {
                    bad_domids += 1;
                    BAD_ADDRESS | NO_SUCH_DOMAIN
                };
                assert_eq!(call.expect, want, "{call:?}");
            }
            "VERSION" => {
                assert_eq!(call.op, VERSION);
                assert_eq!(call.expect, BAD_ADDRESS);
            }
            "LOG_READ" | "DOMAIN_LIST" => assert_eq!(call.expect, BAD_ADDRESS, "{call:?}"),
            other => panic!("unknown class {other}"),
        }
    }
    assert!(huge_sizes > 100 && bad_domids > 100);
    let sizes: Vec<u64> = calls
        .iter()
        .filter(|call| call.op == HV_INFO)
        .map(|call| call.args[1])
        .collect();
    assert!(sizes.contains(&(1 << 40)) && sizes.contains(&87));
    let domids: Vec<u64> = calls
        .iter()
        .filter(|call| call.op == DOMAIN_INFO)
        .map(|call| call.args[0])
        .collect();
    assert!(domids.contains(&(1 << 33)) && domids.contains(&0));
}

#[test]
fn hcabuse_seed_repeats_a_run() {
    let dir = Scratch::new(TOOL, "seed");
    let Some(program) = build(&dir) else { return };
    let memmap = memmap(&dir, MAP);
    let memmap = memmap.to_str().unwrap();
    let first = run(&program, &["-d", "-n", "300", "-s", "12345", "-m", memmap]);
    let again = run(&program, &["-d", "-n", "300", "-s", "12345", "-m", memmap]);
    let other = run(&program, &["-d", "-n", "300", "-s", "12346", "-m", memmap]);
    assert_eq!(first, again);
    assert_ne!(first.1, other.1);
    // Without -s the seed is printed, and it repeats the run.
    let (_, unseeded) = run(&program, &["-d", "-n", "50", "-m", memmap]);
    let seed = unseeded
        .lines()
        .find_map(|line| line.strip_prefix("OXEN-ABUSE: seed "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (_, replay) = run(&program, &["-d", "-n", "50", "-s", &seed, "-m", memmap]);
    assert_eq!(calls(&unseeded).len(), 50);
    assert_eq!(
        format!("{:?}", calls(&unseeded)),
        format!("{:?}", calls(&replay))
    );
}

#[test]
fn hcabuse_refuses_without_a_ram_map() {
    let dir = Scratch::new(TOOL, "noram");
    let Some(program) = build(&dir) else { return };
    let memmap = memmap(&dir, &[(0x20_0000, 0x3fff_ffff, "Reserved")]);
    let (status, stdout) = run(&program, &["-d", "-m", memmap.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("OXEN-ABUSE: error: no System RAM entry"),
        "{stdout}"
    );
    assert!(calls(&stdout).is_empty());
    let (status, _) = run(&program, &["-d", "-m", "/nonexistent/memmap"]);
    assert_eq!(status, 1);
    let (status, _) = run(&program, &["-n", "0"]);
    assert_eq!(status, 2);
    let (status, _) = run(&program, &["stray"]);
    assert_eq!(status, 2);
}
