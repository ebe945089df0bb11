//! The `xl-rs` command.

use std::process::ExitCode;

use clap::Parser as _;
use xl_rs::XlError;
use xl_rs::cli::Cli;
use xl_rs::device::HvctlOpener;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match run(cli, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Configuration errors already read `FILE:LINE:COL: message`.
            match e.downcast_ref::<XlError>() {
                Some(XlError::Config(config)) => eprintln!("{config}"),
                _ => eprintln!("xl-rs: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> anyhow::Result<()> {
    xl_rs::run(cli, &HvctlOpener::new(), out, err)?;
    Ok(())
}
