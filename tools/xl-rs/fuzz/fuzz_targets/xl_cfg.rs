//! Fuzzes the xl.cfg parser and domain-config builder: any input must give a
//! configuration or an error, never a panic, a hang or unbounded recursion.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split off up to two command-line overrides after NUL bytes.
    let mut parts = data.splitn(3, |&b| b == 0);
    let file = parts.next().unwrap_or_default();
    let overrides: Vec<String> =
        parts.map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let _ = xl_rs::config::load_bytes("fuzz.cfg", file, &overrides);
});
