//! The config files under `tests/configs/`: every bad file fails with the
//! `FILE:LINE:COL: message` in its sibling `.expected`; every good file yields the
//! domain configuration in its sibling `.json`.

use std::fs;
use std::path::{Path, PathBuf};

use xl_rs::config::{self, Pos};

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    files
}

fn base_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_bad_config_reports_the_expected_position_and_message() {
    let bad = files("bad");
    assert!(
        bad.len() >= 12,
        "expected a dozen or more bad configs, found {}",
        bad.len()
    );
    let mut failures = Vec::new();
    for path in &bad {
        let expected = fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", path.display()));
        let result = config::load_bytes(&base_name(path), &fs::read(path).unwrap(), &[]);
        match result {
            Ok(_) => failures.push(format!("{}: parsed, but should fail", path.display())),
            Err(e) if e.to_string() != expected.trim_end() => failures.push(format!(
                "{}:\n  expected: {}\n  actual:   {e}",
                path.display(),
                expected.trim_end()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_good_config_yields_its_json() {
    for path in files("good") {
        let (domain, _) = config::load_bytes(&base_name(&path), &fs::read(&path).unwrap(), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path.with_extension("json")).unwrap())
                .unwrap();
        assert_eq!(
            serde_json::to_value(&domain).unwrap(),
            expected,
            "{}",
            path.display()
        );
    }
}

#[test]
fn syntax_tour_warns_about_every_ignored_key_in_text_order() {
    let path = files("good")
        .into_iter()
        .find(|p| base_name(p) == "syntax_tour.cfg")
        .unwrap();
    let (_, warnings) = config::load_bytes("t.cfg", &fs::read(path).unwrap(), &[]).unwrap();
    let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "t.cfg:5:10: warning: `01000` is octal (512), as in xl; remove the leading 0 for decimal",
            "t.cfg:7:1: warning: ignoring `root` and `extra` in favour of `cmdline`, as xl does",
            "t.cfg:12:1: warning: `disk` is an xl.cfg key that xl-rs does not support yet; ignored",
            "t.cfg:13:1: warning: `vif` is an xl.cfg key that xl-rs does not support yet; ignored",
            "t.cfg:14:1: warning: unknown key `frobnicate` (not an xl.cfg key); ignored",
        ]
    );
}

const BASE: &str = "name = 'g'\ntype = 'pvh'\nkernel = '/k'\nmemory = 256\nextra = 'a'\n";

#[test]
fn overrides_apply_after_the_file_like_config_lines() {
    let overrides = [
        "memory=1024".to_owned(),
        "extra += ' b'".to_owned(),
        "vcpus=2".to_owned(),
    ];
    let (domain, warnings) = config::load("g.cfg", BASE, &overrides).unwrap();
    assert_eq!(domain.memory_mib, 1024);
    assert_eq!(domain.cmdline.as_deref(), Some("a b"));
    assert_eq!(domain.vcpus, 2);
    assert!(warnings.is_empty());
}

#[test]
fn override_errors_name_the_override() {
    let err = config::load("g.cfg", BASE, &["memory=".to_owned()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "<override 1>:1:8: expected a value (a string, a number or a list), found end of file"
    );
    let err = config::load("g.cfg", BASE, &["vcpus=1".into(), "maxmem=128".into()]).unwrap_err();
    assert_eq!(err.pos, Some(Pos::new(1, 8)));
    assert_eq!(err.source_name, "<override 2>");
}

#[test]
fn unknown_override_keys_are_warned_about() {
    let (_, warnings) = config::load("g.cfg", BASE, &["vif=[]".into()]).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .to_string()
            .starts_with("<override 1>:1:1: warning: `vif`")
    );
}

#[test]
fn quoted_numbers_and_defaults_follow_xl() {
    let (d, _) = config::load(
        "g.cfg",
        "name='g'\ntype='pvh'\nkernel='k'\nmemory='0x100'\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        (d.memory_mib, d.maxmem_mib, d.vcpus, d.maxvcpus),
        (256, 256, 1, 1)
    );
    let (d, w) = config::load("g.cfg", "name='g'\ntype='pvh'\nkernel='k'\nvcpus=0\n", &[]).unwrap();
    assert_eq!(d.vcpus, 1);
    assert_eq!(w.len(), 1);
}

#[test]
fn names_are_checked() {
    let check = |name: &str| {
        let text = format!("name = \"{name}\"\ntype='pvh'\nkernel='k'\n");
        config::load("g.cfg", &text, &[])
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(check("web-01").is_ok());
    assert_eq!(
        check("").unwrap_err(),
        "g.cfg:1:8: `name` must not be empty"
    );
    assert!(check("42").unwrap_err().contains("all digits"));
    assert!(check("a b").unwrap_err().contains("spaces"));
    assert!(check(&"x".repeat(63)).is_ok());
    assert!(
        check(&"x".repeat(64))
            .unwrap_err()
            .contains("longer than 63")
    );
}

#[test]
fn non_utf8_files_are_refused_at_the_bad_byte() {
    let err = config::load_bytes("b.cfg", b"name = 'g'\nkernel = '\xff'\n", &[]).unwrap_err();
    assert_eq!(err.to_string(), "b.cfg:2:11: the file is not valid UTF-8");
}

#[test]
fn crlf_files_are_accepted() {
    let (d, _) = config::load(
        "w.cfg",
        "name = 'g'\r\ntype = 'hvm'\r\nkernel = 'k'\r\n",
        &[],
    )
    .unwrap();
    assert_eq!(d.name, "g");
}
