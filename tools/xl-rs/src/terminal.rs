//! Console input: the process's stdin (raw mode while it is a terminal),
//! behind [`ConsoleInput`] so tests can script what is typed and when.

use std::io;
use std::os::fd::AsFd as _;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::termios::{OptionalActions, Termios};

/// What the user typed (or piped) for the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// These bytes.
    Bytes(Vec<u8>),
    /// Nothing within the time allowed.
    Nothing,
    /// The input has ended (and will stay ended).
    Closed,
}

/// Where console input comes from, and the session's clock.
pub trait ConsoleInput {
    /// Waits at most `timeout` for input. Once the input is closed this
    /// still waits `timeout` and returns [`Input::Closed`].
    ///
    /// # Errors
    ///
    /// An I/O error reading the input.
    fn poll_input(&mut self, timeout: Duration) -> io::Result<Input>;

    /// Time since the session started.
    fn elapsed(&self) -> Duration;
}

/// The process's stdin as console input: raw mode while it is a terminal.
#[derive(Debug)]
pub struct StdinInput {
    start: Instant,
    closed: bool,
    /// The terminal settings to restore, when stdin is a terminal.
    saved: Option<Termios>,
}

impl StdinInput {
    /// Takes stdin; a terminal is put in raw mode until this is dropped.
    ///
    /// # Errors
    ///
    /// When the terminal's settings cannot be read or changed.
    pub fn new() -> io::Result<Self> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let saved = if rustix::termios::isatty(fd) {
            let saved = rustix::termios::tcgetattr(fd)?;
            let mut raw = saved.clone();
            raw.make_raw();
            rustix::termios::tcsetattr(fd, OptionalActions::Now, &raw)?;
            Some(saved)
        } else {
            None
        };
        Ok(Self {
            start: Instant::now(),
            closed: false,
            saved,
        })
    }

    /// Whether stdin is a terminal (in raw mode now).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for StdinInput {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(io::stdin().as_fd(), OptionalActions::Now, saved);
        }
    }
}

impl ConsoleInput for StdinInput {
    fn poll_input(&mut self, timeout: Duration) -> io::Result<Input> {
        if self.closed {
            std::thread::sleep(timeout);
            return Ok(Input::Closed);
        }
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let timespec = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos().into(),
        };
        match rustix::event::poll(&mut fds, Some(&timespec)) {
            Ok(0) => return Ok(Input::Nothing),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(Input::Nothing),
            Err(e) => return Err(e.into()),
        }
        let mut buf = [0u8; 1024];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => {
                self.closed = true;
                Ok(Input::Closed)
            }
            Ok(n) => Ok(Input::Bytes(buf[..n].to_vec())),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => Ok(Input::Nothing),
            Err(e) => Err(e.into()),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}
