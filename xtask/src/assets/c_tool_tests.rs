//! What the host tests of the C test programs (`tests/qemu/initramfs/*.c`)
//! share: a scratch directory, building a program with the host's gcc, and
//! running it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory, removed on drop.
pub(super) struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory for test `name` of program `tool`.
    pub(super) fn new(tool: &str, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{tool}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A path inside it.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds `tests/qemu/initramfs/TOOL.c` into `dir` (dynamically linked: the
/// host may lack the static glibc); `None` when there is no gcc here.
pub(super) fn build(dir: &Scratch, tool: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let source = root.join(format!("tests/qemu/initramfs/{tool}.c"));
    let out = dir.path(tool);
    let status = match Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
    {
        Ok(status) => status,
        Err(error) => {
            eprintln!("note: no gcc here ({error}); {tool} not tested");
            return None;
        }
    };
    assert!(status.success(), "gcc failed on {}", source.display());
    Some(out)
}

/// Runs `program`; returns its exit status and stdout (also shown on
/// stderr, for failing tests).
pub(super) fn run(program: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(program).args(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    eprintln!("$ {} {}\n{stdout}", program.display(), args.join(" "));
    (output.status.code().unwrap_or(-1), stdout)
}
