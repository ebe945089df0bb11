//! The hypervisor's `log` backend: every line goes to the serial console as
//! `[seconds.micros] cpuN LEVEL message`, timestamped from the TSC.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

use crate::arch::x86_64::{cpu, percpu, serial::SerialPort};
use crate::logring::LogRing;

/// TSC frequency in kHz once measured (0 before calibration).
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
/// TSC value at boot, the zero of every timestamp.
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// I/O base of the console UART (0 = no console).
static CONSOLE_PORT: AtomicU16 = AtomicU16::new(crate::arch::x86_64::serial::COM1);
/// Serialises whole lines between CPUs.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

struct Logger;
static LOGGER: Logger = Logger;

/// Initialises COM1 and installs the logger at `Info` level.
pub fn init_early() {
    TSC_AT_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
    SerialPort::new(crate::arch::x86_64::serial::COM1).init();
    // A second call (impossible here) would only fail to replace the logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Switches the console UART (`None` = no console output at all).
pub fn set_console(port: Option<u16>) {
    if let Some(p) = port
        && p != CONSOLE_PORT.load(Ordering::Relaxed)
    {
        SerialPort::new(p).init();
    }
    CONSOLE_PORT.store(port.unwrap_or(0), Ordering::Relaxed);
}

/// Records the measured TSC frequency; timestamps become seconds.
pub fn set_tsc_khz(khz: u64) {
    TSC_KHZ.store(khz, Ordering::Relaxed);
}

/// The measured TSC frequency in kHz (0 before calibration).
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Nanoseconds since boot (0 before calibration).
pub fn uptime_ns() -> u64 {
    let khz = TSC_KHZ.load(Ordering::Relaxed);
    if khz == 0 {
        return 0;
    }
    let ticks = cpu::rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    (u128::from(ticks) * 1_000_000 / u128::from(khz)) as u64
}

/// The log target of records that go to the log ring only (`xl-rs dmesg`),
/// not to the serial console: for reports that would cost too much time on
/// the serial line where they are made (the UART sends a byte per about
/// 87 µs at 115200 baud, and a destroy hypercall must return in 0.1 s).
pub const RING_ONLY: &str = "ring";

/// The last 64 KiB of console output, for `xl-rs dmesg`.
static RING: spin::Mutex<LogRing> = spin::Mutex::new(LogRing::new());

struct Console(u16);

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.0 != 0 {
            SerialPort::new(self.0).write_str(s);
        }
        // Bounded: the panic path must not wait on a ring held by a dead CPU.
        for _ in 0..1_000_000 {
            if let Some(mut ring) = RING.try_lock() {
                ring.push(s.as_bytes());
                break;
            }
            core::hint::spin_loop();
        }
        Ok(())
    }
}

/// Up to `max` of the oldest bytes of the log ring and the count of bytes
/// lost to wrapping; with `clear` the bytes returned are consumed.
pub fn ring_read(max: usize, clear: bool) -> (alloc::vec::Vec<u8>, u64) {
    let mut out = alloc::vec![0u8; max.min(LogRing::CAPACITY)];
    let (n, dropped) = RING.lock().read(&mut out, clear);
    out.truncate(n);
    (out, dropped)
}

/// Runs `f` (an access to the console UART by dom0) between two of the
/// hypervisor's log lines: dom0's console and this log share COM1, and a
/// byte dom0 writes while a line of ours goes out would land inside it,
/// cutting a hypervisor line in two where the test runner cannot join it
/// again (`xtask/src/watch.rs`, `Rejoiner`). Waits for the line lock as
/// long as `log` does, then runs `f` anyway.
pub fn between_lines<R>(f: impl FnOnce() -> R) -> R {
    let mut guard = None;
    for _ in 0..10_000_000 {
        if let Some(g) = LOCK.try_lock() {
            guard = Some(g);
            break;
        }
        core::hint::spin_loop();
    }
    let r = f();
    drop(guard);
    r
}

/// Writes raw text to the console, bypassing the line lock (for the panic and
/// exception paths, which must print even if the lock holder is stuck).
pub fn write_raw(args: fmt::Arguments<'_>) {
    let _ = Console(CONSOLE_PORT.load(Ordering::Relaxed)).write_fmt(args);
}

fn write_prefix(out: &mut Console, level: &str) -> fmt::Result {
    let ns = uptime_ns();
    if TSC_KHZ.load(Ordering::Relaxed) == 0 {
        write!(out, "[    early    ] ")?;
    } else {
        write!(
            out,
            "[{:5}.{:06}] ",
            ns / 1_000_000_000,
            (ns / 1000) % 1_000_000
        )?;
    }
    write!(out, "cpu{} {:<5} ", percpu::current_index(), level)
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let port = if record.target() == RING_ONLY {
            0
        } else {
            CONSOLE_PORT.load(Ordering::Relaxed)
        };
        let mut out = Console(port);
        // Bounded wait (in `between_lines`): a CPU stuck holding the lock
        // must not silence the rest.
        between_lines(|| {
            let _ = write_prefix(&mut out, record.level().as_str());
            let _ = writeln!(out, "{}", record.args());
        });
        // A warning or an error is an event for dom0 (after the line is in
        // the ring, and with no lock of ours held).
        if record.level() <= log::Level::Warn {
            crate::arch::x86_64::vmx_backend::notify::raise(dom0_abi::event::EVENT_LOG);
        }
    }

    fn flush(&self) {}
}
