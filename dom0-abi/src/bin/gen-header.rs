//! Writes `include/oxen_abi.h` from the `dom0-abi` crate.
//!
//! Usage: `cargo run -p dom0-abi --features std --bin gen-header [OUTPUT]`
//! (default output: the committed header in the crate).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dom0_abi::c_header::HEADER_PATH),
        PathBuf::from,
    );
    match std::fs::write(&path, dom0_abi::c_header::generate()) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-header: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
