use alloc::string::{String, ToString};
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

/// Parses and collects the diagnostics as text.
fn run(cmdline: &str) -> (Options, Vec<String>) {
    let mut messages = Vec::new();
    let options = parse(cmdline, &mut |d| messages.push(d.to_string()));
    (options, messages)
}

/// Parses and collects the diagnostics themselves.
fn run_raw(cmdline: &str) -> (Options, Vec<Diagnostic<'_>>) {
    let mut diagnostics = Vec::new();
    let options = parse(cmdline, &mut |d| diagnostics.push(d));
    (options, diagnostics)
}

fn parse_clean(cmdline: &str) -> Options {
    let (options, messages) = run(cmdline);
    assert!(messages.is_empty(), "{cmdline:?}: {messages:?}");
    options
}

#[test]
fn empty_line_gives_defaults() {
    let options = parse_clean("");
    assert_eq!(options, Options::default());
    assert_eq!(options.loglvl, LevelFilter::Info);
    assert_eq!(options.console, Console::Com1);
    assert_eq!(options.on_exit, ExitAction::Reboot);
    assert!(options.exit_stats);
    assert_eq!(parse_clean(" \t\n "), Options::default());
}

#[test]
fn everything_at_once() {
    let options = parse_clean(
        "loglvl=debug dom0_mem=512M,max:1G console=com2 maxcpus=4 dom0_max_vcpus=2 \
         on_exit=poweroff exit_stats=no crashtest=fault",
    );
    assert_eq!(
        options,
        Options {
            loglvl: LevelFilter::Debug,
            dom0_mem: Some(Dom0Mem {
                size: ByteSize::mib(512),
                max: Some(ByteSize::mib(1024))
            }),
            console: Console::Com2,
            maxcpus: Some(4),
            dom0_max_vcpus: Some(2),
            on_exit: ExitAction::PowerOff,
            exit_stats: false,
            canary: false,
            crashtest: CrashTest::Fault,
        }
    );
}

#[test]
fn crashtest_values() {
    assert_eq!(parse_clean("crashtest=panic").crashtest, CrashTest::Panic);
    assert_eq!(parse_clean("crashtest=FAULT").crashtest, CrashTest::Fault);
    assert_eq!(
        parse_clean("crashtest=fault crashtest=none").crashtest,
        CrashTest::None
    );
    let (options, messages) = run("crashtest=panic crashtest=boom");
    assert_eq!(options.crashtest, CrashTest::None);
    assert_eq!(
        messages,
        [
            "malformed value 'boom' for crashtest= (expected one of none, fault, panic); using the \
          default 'none'"
        ]
    );
}

#[test]
fn loglvl_values() {
    let cases = [
        ("none", LevelFilter::Off),
        ("error", LevelFilter::Error),
        ("warning", LevelFilter::Warn),
        ("warn", LevelFilter::Warn),
        ("info", LevelFilter::Info),
        ("debug", LevelFilter::Debug),
        ("trace", LevelFilter::Trace),
        ("all", LevelFilter::Trace),
        ("DEBUG", LevelFilter::Debug),
    ];
    for (value, level) in cases {
        assert_eq!(
            parse_clean(&format!("loglvl={value}")).loglvl,
            level,
            "{value}"
        );
    }
}

#[test]
fn loglvl_rate_limit_part_is_noted() {
    let (options, messages) = run("loglvl=all/warning");
    assert_eq!(options.loglvl, LevelFilter::Trace);
    assert_eq!(
        messages,
        [
            "value 'all/warning' for loglvl= is not supported: there is no rate limiting, the part \
          after '/' is ignored"
        ]
    );
    let (options, messages) = run("loglvl=all/bogus");
    assert_eq!(options.loglvl, LevelFilter::Info);
    assert_eq!(messages.len(), 1);
}

#[test]
fn malformed_loglvl_message() {
    let (options, messages) = run("loglvl=xyz");
    assert_eq!(options.loglvl, LevelFilter::Info);
    assert_eq!(
        messages,
        [
            "malformed value 'xyz' for loglvl= (expected one of none, error, warning, info, debug, \
          trace, all); using the default 'info'"
        ]
    );
}

#[test]
fn malformed_value_resets_an_earlier_setting() {
    let (options, messages) = run("loglvl=debug loglvl=loud");
    assert_eq!(options.loglvl, LevelFilter::Info);
    assert_eq!(messages.len(), 1);
}

#[test]
fn later_occurrence_wins() {
    assert_eq!(
        parse_clean("loglvl=debug loglvl=error").loglvl,
        LevelFilter::Error
    );
    assert_eq!(
        parse_clean("console=com2 console=com1").console,
        Console::Com1
    );
}

#[test]
fn missing_values_are_malformed() {
    for name in [
        "loglvl",
        "dom0_mem",
        "console",
        "maxcpus",
        "dom0_max_vcpus",
        "on_exit",
        "crashtest",
    ] {
        for token in [name.to_string(), format!("{name}=")] {
            let (options, diagnostics) = run_raw(&token);
            assert_eq!(options, Options::default(), "{token}");
            assert_eq!(diagnostics.len(), 1, "{token}");
            assert!(
                matches!(diagnostics[0], Diagnostic::Malformed { value: "", .. }),
                "{token}: {:?}",
                diagnostics[0]
            );
            assert!(
                diagnostics[0].to_string().starts_with("missing value for "),
                "{token}"
            );
        }
    }
    assert_eq!(
        run("on_exit").1,
        [
            "missing value for on_exit= (expected one of halt, poweroff, reboot); using the default \
          'reboot'"
        ]
    );
}

#[test]
fn dom0_mem_forms() {
    let mem = |s: &str| parse_clean(&format!("dom0_mem={s}")).dom0_mem.unwrap();
    assert_eq!(
        mem("512M"),
        Dom0Mem {
            size: ByteSize::mib(512),
            max: None
        }
    );
    assert_eq!(
        mem("1g"),
        Dom0Mem {
            size: ByteSize::mib(1024),
            max: None
        }
    );
    // No suffix means KiB, as in Xen.
    assert_eq!(
        mem("524288"),
        Dom0Mem {
            size: ByteSize::mib(512),
            max: None
        }
    );
    assert_eq!(
        mem("max:1G,512M"),
        Dom0Mem {
            size: ByteSize::mib(512),
            max: Some(ByteSize::mib(1024))
        }
    );
    // Only a maximum: as much as allowed.
    assert_eq!(
        mem("max:2G"),
        Dom0Mem {
            size: ByteSize::mib(2048),
            max: Some(ByteSize::mib(2048))
        }
    );
    // The maximum overrides a larger size.
    assert_eq!(
        mem("4G,max:1G"),
        Dom0Mem {
            size: ByteSize::mib(1024),
            max: Some(ByteSize::mib(1024))
        }
    );
    // The dash spelling of the name.
    assert_eq!(
        parse_clean("dom0-mem=64M").dom0_mem.unwrap().size,
        ByteSize::mib(64)
    );
}

#[test]
fn dom0_mem_unsupported_forms_are_noted_and_skipped() {
    let (options, diagnostics) = run_raw("dom0_mem=min:128M,512M");
    assert_eq!(options.dom0_mem.unwrap().size, ByteSize::mib(512));
    assert!(matches!(
        diagnostics[..],
        [Diagnostic::Unsupported {
            value: "min:128M",
            ..
        }]
    ));

    let (options, diagnostics) = run_raw("dom0_mem=-1G");
    assert_eq!(options.dom0_mem, None);
    assert!(matches!(
        diagnostics[..],
        [Diagnostic::Unsupported { value: "-1G", .. }]
    ));

    let (options, diagnostics) = run_raw("dom0_mem=1G+25%,max:8G");
    assert_eq!(options.dom0_mem.unwrap().size, ByteSize::mib(8192));
    assert_eq!(diagnostics.len(), 1);
}

#[test]
fn dom0_mem_malformed() {
    for value in [
        "512Q",
        "0",
        "max:",
        "max:0",
        "M",
        "512M,max:x",
        ",",
        "min:zz",
        "99999999999999999999",
    ] {
        let token = format!("dom0_mem={value}");
        let (options, diagnostics) = run_raw(&token);
        assert_eq!(options.dom0_mem, None, "{value}");
        assert_eq!(diagnostics.len(), 1, "{value}: {diagnostics:?}");
        assert!(
            matches!(
                diagnostics[0],
                Diagnostic::Malformed {
                    name: "dom0_mem",
                    ..
                }
            ),
            "{value}"
        );
    }
    // A malformed dom0_mem drops an earlier valid one.
    let (options, _) = run("dom0_mem=1G dom0_mem=1Q");
    assert_eq!(options.dom0_mem, None);
}

#[test]
fn console_lists() {
    assert_eq!(parse_clean("console=com1").console, Console::Com1);
    assert_eq!(parse_clean("console=com2").console, Console::Com2);
    assert_eq!(parse_clean("console=none").console, Console::None);
    assert_eq!(parse_clean("console=COM2").console, Console::Com2);
    assert_eq!(parse_clean("console=com2,com1").console, Console::Com1);
    assert_eq!(parse_clean("console=none,com2").console, Console::Com2);

    let (options, messages) = run("console=com1,vga");
    assert_eq!(options.console, Console::Com1);
    assert_eq!(
        messages,
        [
            "value 'vga' for console= is not supported: there is no VGA console, only the serial \
          ports com1 and com2"
        ]
    );
    let (options, messages) = run("console=vga");
    assert_eq!(options.console, Console::Com1);
    assert_eq!(messages.len(), 1);
    let (options, messages) = run("console=vga,com2H");
    assert_eq!(options.console, Console::Com2);
    assert_eq!(messages.len(), 2);
    let (options, messages) = run("console=dbgp,xhci");
    assert_eq!(options.console, Console::Com1);
    assert_eq!(messages.len(), 2);
}

#[test]
fn console_malformed() {
    let (options, diagnostics) = run_raw("console=com2 console=com3");
    assert_eq!(options.console, Console::Com1);
    assert_eq!(
        diagnostics,
        [Diagnostic::Malformed {
            name: "console",
            value: "com3",
            expected: CONSOLE_EXPECTED,
            default_used: "com1",
        }]
    );
}

#[test]
fn counts() {
    assert_eq!(parse_clean("maxcpus=16").maxcpus, Some(16));
    assert_eq!(parse_clean("maxcpus=0x10").maxcpus, Some(16));
    // Xen's <integer>: a leading 0 means octal.
    assert_eq!(parse_clean("maxcpus=010").maxcpus, Some(8));
    assert_eq!(parse_clean("dom0_max_vcpus=3").dom0_max_vcpus, Some(3));
    for bad in ["0", "-1", "4294967296", "four", "08", "1.5", "0x"] {
        let token = format!("maxcpus={bad}");
        let (options, diagnostics) = run_raw(&token);
        assert_eq!(options.maxcpus, None, "{bad}");
        assert!(
            matches!(diagnostics[..], [Diagnostic::Malformed { .. }]),
            "{bad}"
        );
    }
    let (options, diagnostics) = run_raw("dom0_max_vcpus=4 dom0_max_vcpus=2-8");
    assert_eq!(options.dom0_max_vcpus, Some(4));
    assert!(matches!(
        diagnostics[..],
        [Diagnostic::Unsupported { value: "2-8", .. }]
    ));
    assert_eq!(
        run("maxcpus=many").1,
        [
            "malformed value 'many' for maxcpus= (expected a positive integer); using the default \
          'all'"
        ]
    );
}

#[test]
fn on_exit_and_noreboot() {
    assert_eq!(parse_clean("on_exit=halt").on_exit, ExitAction::Halt);
    assert_eq!(
        parse_clean("on_exit=poweroff").on_exit,
        ExitAction::PowerOff
    );
    assert_eq!(
        parse_clean("on_exit=halt on_exit=reboot").on_exit,
        ExitAction::Reboot
    );
    assert_eq!(parse_clean("noreboot").on_exit, ExitAction::Halt);
    assert_eq!(parse_clean("noreboot=true").on_exit, ExitAction::Halt);
    assert_eq!(
        parse_clean("noreboot noreboot=0").on_exit,
        ExitAction::Reboot
    );
    assert_eq!(
        parse_clean("noreboot no-noreboot").on_exit,
        ExitAction::Reboot
    );
    let (options, diagnostics) = run_raw("on_exit=explode");
    assert_eq!(options.on_exit, ExitAction::Reboot);
    assert!(matches!(
        diagnostics[..],
        [Diagnostic::Malformed {
            name: "on_exit",
            ..
        }]
    ));
    let (options, diagnostics) = run_raw("noreboot=maybe");
    assert_eq!(options.on_exit, ExitAction::Reboot);
    assert!(matches!(
        diagnostics[..],
        [Diagnostic::Malformed {
            name: "noreboot",
            ..
        }]
    ));
}

#[test]
fn exit_stats_booleans() {
    for (text, expected) in [
        ("exit_stats", true),
        ("exit_stats=0", false),
        ("exit_stats=1", true),
        ("exit_stats=no", false),
        ("exit_stats=yes", true),
        ("exit_stats=off", false),
        ("exit_stats=on", true),
        ("exit_stats=false", false),
        ("exit_stats=true", true),
        ("exit_stats=disable", false),
        ("exit_stats=enable", true),
        ("no-exit_stats", false),
        ("no-exit-stats", false),
        ("exit-stats=OFF", false),
    ] {
        assert_eq!(parse_clean(text).exit_stats, expected, "{text}");
    }
    let (options, messages) = run("exit_stats=0 exit_stats=2");
    assert!(options.exit_stats);
    assert_eq!(
        messages,
        [
            "malformed value '2' for exit_stats= (expected a boolean: yes, no, on, off, true, false, \
          enable, disable, 1 or 0); using the default 'yes'"
        ]
    );
    // `no-` with a value is undefined in Xen; refused here.
    let (_, diagnostics) = run_raw("no-exit_stats=1");
    assert!(matches!(
        diagnostics[..],
        [Diagnostic::Malformed {
            name: "no-exit_stats",
            ..
        }]
    ));
    assert_eq!(
        diagnostics[0].to_string(),
        "malformed value '1' for no-exit_stats= (expected no value after a no- prefix); using \
         the default 'yes'"
    );
}

#[test]
fn unknown_options() {
    let (options, diagnostics) = run_raw("foo quiet=1 loglvl=error =x no-loglvl");
    assert_eq!(options.loglvl, LevelFilter::Error);
    assert_eq!(
        diagnostics,
        [
            Diagnostic::UnknownOption { name: "foo" },
            Diagnostic::UnknownOption { name: "quiet" },
            Diagnostic::UnknownOption { name: "=x" },
            Diagnostic::UnknownOption { name: "no-loglvl" },
        ]
    );
    assert_eq!(run("foo").1, ["unknown option 'foo' ignored"]);
}

#[test]
fn a_leading_image_path_is_not_an_option() {
    // GRUB 2 leaves the path out; other loaders put it first.
    assert_eq!(strip_image_path("/boot/oxen.elf loglvl=all"), "loglvl=all");
    assert_eq!(
        strip_image_path("  (hd0,gpt2)/boot/oxen.elf  console=com2 "),
        "console=com2 "
    );
    assert_eq!(strip_image_path("/boot/oxen.elf"), "");
    assert_eq!(strip_image_path("loglvl=all /x"), "loglvl=all /x");
    assert_eq!(strip_image_path(""), "");
    // Without stripping, the path is reported as an unknown option.
    assert_eq!(
        run("/boot/oxen.elf").1,
        ["unknown option '/boot/oxen.elf' ignored"]
    );
}

#[test]
fn sizes() {
    let cases = [
        ("0", Some(0)),
        ("1", Some(1024)),
        ("1b", Some(1)),
        ("4096B", Some(4096)),
        ("4k", Some(4096)),
        ("4K", Some(4096)),
        ("3m", Some(3 << 20)),
        ("2G", Some(2 << 30)),
        ("1t", Some(1 << 40)),
        ("0x10M", Some(16 << 20)),
        ("010M", Some(8 << 20)),
        ("16777215T", Some(16_777_215 << 40)),
        ("16777216T", None),
        ("18446744073709551615B", Some(u64::MAX)),
        ("18446744073709551616B", None),
        ("18014398509481984", None),
        ("", None),
        ("M", None),
        ("1MB", None),
        ("1 M", None),
        ("-1M", None),
        ("1.5G", None),
        ("0x", None),
        ("1P", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_size(text).map(ByteSize::as_u64), expected, "{text:?}");
    }
}

#[test]
fn non_ascii_values_are_malformed_not_a_panic() {
    for line in [
        "dom0_mem=aéé",
        "dom0_mem=mäx:1G",
        "console=cöm1",
        "loglvl=ïnfo",
        "maxcpus=４",
    ] {
        let (options, diagnostics) = run_raw(line);
        assert_eq!(options, Options::default(), "{line}");
        assert!(
            matches!(diagnostics[..], [Diagnostic::Malformed { .. }]),
            "{line}"
        );
    }
}

#[test]
fn diagnostics_display() {
    let unsupported = Diagnostic::Unsupported {
        name: "x",
        value: "",
        note: "because",
    };
    assert_eq!(
        unsupported.to_string(),
        "option 'x' is not supported: because"
    );
}

proptest! {
    #[test]
    fn never_panics_on_any_text(s in "\\PC*") {
        let (_, messages) = run(&s);
        for m in messages {
            prop_assert!(!m.is_empty());
        }
        let _ = strip_image_path(&s);
        let _ = parse_size(&s);
    }

    #[test]
    fn never_panics_on_option_like_text(
        tokens in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "loglvl", "dom0_mem", "dom0-mem", "console", "maxcpus", "dom0_max_vcpus",
                    "on_exit", "exit_stats", "no-exit_stats", "noreboot", "no-noreboot", "x",
                ]),
                prop::option::of("[0-9a-zA-Z:,%/+-]{0,12}"),
            ),
            0..8,
        )
    ) {
        let line: Vec<String> = tokens
            .iter()
            .map(|(n, v)| match v { Some(v) => format!("{n}={v}"), None => n.to_string() })
            .collect();
        let line = line.join(" ");
        let (options, _) = run(&line);
        if let Some(mem) = options.dom0_mem {
            prop_assert!(mem.size.as_u64() > 0);
            prop_assert!(mem.max.is_none_or(|m| mem.size <= m));
        }
        prop_assert!(options.maxcpus != Some(0));
    }

    #[test]
    fn never_panics_on_any_value_of_a_known_option(
        name in prop::sample::select(Opt::ALL.map(|(name, _)| name).to_vec()),
        value in "\\PC{0,24}",
    ) {
        let line = format!("{name}={value} no-{name}={value} {name}");
        let _ = run(&line);
    }

    #[test]
    fn sizes_round_trip(n in 0u64..(1 << 20), suffix in prop::sample::select(vec!["", "b", "K", "m", "G", "t"])) {
        let shift = match suffix { "" | "K" => 10, "b" => 0, "m" => 20, "G" => 30, _ => 40 };
        let parsed = parse_size(&format!("{n}{suffix}"));
        prop_assert_eq!(parsed.map(ByteSize::as_u64), n.checked_mul(1 << shift));
    }
}

#[test]
fn canary_boolean() {
    assert!(!parse_clean("").canary);
    assert!(parse_clean("canary").canary);
    assert!(!parse_clean("canary no-canary").canary);
    let (options, messages) = run("canary=maybe");
    assert!(!options.canary);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("canary"), "{messages:?}");
}
