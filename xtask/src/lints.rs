//! The `lints` item of `cargo xtask test`: the formatting and the lints that
//! the workspace's `Cargo.toml` asks for, enforced, not wished for:
//! `cargo fmt --check`, clippy with `-D warnings` over every host target of
//! the workspace, and clippy over the bare-metal hypervisor build (its
//! `unsafe` rules only bite there).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::build::BARE_METAL_ARGS;
use crate::workspace_root;

/// The name the lints go by in the results.
pub const LINTS: &str = "lints";

/// The checks, each a cargo command line; all run, so that one failure does
/// not hide another.
fn checks() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut bare_metal = vec!["clippy", "--release"];
    bare_metal.extend_from_slice(BARE_METAL_ARGS);
    bare_metal.extend_from_slice(&["--", "-D", "warnings"]);
    vec![
        ("rustfmt", vec!["fmt", "--all", "--check"]),
        (
            "clippy (host)",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("clippy (bare metal)", bare_metal),
    ]
}

/// Runs every check; `(LINTS, passed)`.
pub fn lints() -> Result<(String, bool)> {
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut failed = Vec::new();
    for (what, args) in checks() {
        println!("{LINTS}: {what}: cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .current_dir(workspace_root())
            .args(&args)
            .status()
            .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
        if !status.success() {
            failed.push(what);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if failed.is_empty() {
        println!("{LINTS}: PASS ({seconds:.1} s)");
    } else {
        println!(
            "{LINTS}: FAIL: {} ({seconds:.1} s; `cargo fmt --all` formats the tree)",
            failed.join(", ")
        );
    }
    Ok((LINTS.to_owned(), failed.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clippy_denies_warnings_and_the_bare_metal_one_uses_the_build_target() {
        let checks = checks();
        assert_eq!(checks.len(), 3);
        for (what, args) in &checks {
            if args[0] == "clippy" {
                assert_eq!(&args[args.len() - 3..], ["--", "-D", "warnings"], "{what}");
            }
        }
        let bare = &checks[2].1;
        assert!(bare.contains(&"x86_64-hypervisor.json"));
        assert!(bare.contains(&"-Zbuild-std=core,alloc"));
    }
}
