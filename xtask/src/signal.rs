//! Ctrl-C handling and emulator process isolation.
//!
//! An emulator is started in its own process group, so the terminal's SIGINT
//! (Ctrl-C) reaches xtask but not the emulator: Debian's Bochs is built with its
//! debugger and would stop at a debugger prompt on SIGINT instead of exiting.
//! xtask notes the signal, and whoever waits on the emulator kills it by its
//! process id. The emulator also gets `PR_SET_PDEATHSIG`, so it dies with
//! xtask if xtask itself is killed outright.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT and SIGTERM handlers.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is an `extern "C"` function that only stores to a
        // static atomic, which is async-signal-safe; replacing the default
        // disposition of SIGINT/SIGTERM affects no other code in this process.
        unsafe {
            libc::signal(signal, handler as libc::sighandler_t);
        }
    }
}

/// True once Ctrl-C (SIGINT) or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Puts the child in its own process group and has it killed if xtask dies.
pub fn isolate(command: &mut Command) {
    command.process_group(0);
    let die_with_parent = || {
        // SAFETY: prctl(2) with PR_SET_PDEATHSIG takes two integers and
        // changes only this (child) process's death signal.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec; it only calls
    // prctl(2), which is async-signal-safe, and neither allocates nor locks.
    unsafe {
        command.pre_exec(die_with_parent);
    }
}
