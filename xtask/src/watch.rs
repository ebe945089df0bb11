//! Reading a serial log while the emulator writes it, and judging it.
//!
//! [`Follower`] returns what was appended since the last poll, split into
//! complete lines. [`Matcher`] checks lines against a scenario's patterns:
//! every pass pattern must be seen, in order (a pattern is searched after the
//! place where the previous one matched, possibly later on the same line), and
//! any fail pattern on any line fails the run at once.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use regex::Regex;

/// Follows a growing file.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    partial: Vec<u8>,
}

/// What a poll found.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Every new byte, for echoing to a terminal.
    pub raw: Vec<u8>,
    /// The lines completed by these bytes, without `\r\n`.
    pub lines: Vec<String>,
}

impl Follower {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            partial: Vec::new(),
        }
    }

    /// Reads what was appended. With `last`, an unfinished last line counts
    /// as a line (the writer has exited).
    pub fn poll(&mut self, last: bool) -> Result<Chunk> {
        let mut chunk = Chunk::default();
        if self.file.is_none() {
            // The emulator may not have created the file yet.
            self.file = File::open(&self.path).ok();
        }
        if let Some(file) = &mut self.file {
            file.read_to_end(&mut chunk.raw)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
        }
        self.partial.extend_from_slice(&chunk.raw);
        while let Some(end) = self.partial.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            chunk.lines.push(clean_line(&line));
        }
        if last && !self.partial.is_empty() {
            chunk
                .lines
                .push(clean_line(&std::mem::take(&mut self.partial)));
        }
        Ok(chunk)
    }
}

/// A line as text: escape sequences dropped, `\r\n` trimmed.
fn clean_line(bytes: &[u8]) -> String {
    let text = EscapeFilter::default().apply(bytes);
    String::from_utf8_lossy(&text)
        .trim_end_matches(['\n', '\r'])
        .to_owned()
}

/// Drops ANSI escape sequences (GRUB's menu drawing on the serial terminal
/// would otherwise clear and repaint the user's terminal), across chunks.
#[derive(Debug, Default)]
pub struct EscapeFilter {
    state: EscapeState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    #[default]
    Text,
    Escape,
    Csi,
}

impl EscapeFilter {
    pub fn apply(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for &byte in bytes {
            self.state = match (self.state, byte) {
                (EscapeState::Text, 0x1b) => EscapeState::Escape,
                (EscapeState::Text, _) => {
                    out.push(byte);
                    EscapeState::Text
                }
                (EscapeState::Escape, b'[') => EscapeState::Csi,
                // A two-byte sequence (ESC 7, ESC c, ...) ends here.
                (EscapeState::Escape, _) => EscapeState::Text,
                // CSI parameters and intermediates run until a final byte.
                (EscapeState::Csi, 0x20..=0x3f) => EscapeState::Csi,
                (EscapeState::Csi, _) => EscapeState::Text,
            };
        }
        out
    }
}

/// A compiled pattern and its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    regex: Regex,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Self> {
        let regex = Regex::new(text).with_context(|| format!("bad pattern `{text}`"))?;
        Ok(Self {
            text: text.to_owned(),
            regex,
        })
    }

    /// Whether `line` contains a match.
    pub fn is_match(&self, line: &str) -> bool {
        self.regex.is_match(line)
    }
}

/// What a line did to the run.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The next pass pattern (number `index`) matched this line.
    Seen { index: usize, line: String },
    /// A fail pattern matched this line.
    Failed { pattern: String, line: String },
}

/// Undoes the interleaving of the hypervisor's log with dom0's console on
/// the shared serial line: a hypervisor line (`[   12.345678] cpuN ...`)
/// that starts in the middle of one of dom0's lines is given back as a line
/// of its own, and dom0's text before it is joined to the next line (where
/// dom0's line goes on), so that markers split this way still match. A line
/// whose text before the hypervisor prefix ends in `| ` is one of the init
/// scripts' labelled output lines (`run`: `LABEL| ...`, such as `xl-rs
/// dmesg` showing the hypervisor's log) and is left whole.
#[derive(Debug)]
pub struct Rejoiner {
    carry: String,
    hypervisor_line: Regex,
}

impl Default for Rejoiner {
    fn default() -> Self {
        Self {
            carry: String::new(),
            hypervisor_line: Regex::new(r"\[ *[0-9]+\.[0-9]{6}\] cpu[0-9]+ ")
                .expect("a valid regex"),
        }
    }
}

impl Rejoiner {
    /// The logical lines in `line`, in order.
    pub fn feed(&mut self, line: &str) -> Vec<String> {
        let line = std::mem::take(&mut self.carry) + line;
        match self.hypervisor_line.find(&line) {
            Some(m) if m.start() > 0 && !line[..m.start()].ends_with("| ") => {
                let (head, hypervisor) = line.split_at(m.start());
                self.carry = head.to_owned();
                vec![hypervisor.to_owned()]
            }
            _ => vec![line],
        }
    }
}

/// Judges a log line by line.
#[derive(Debug)]
pub struct Matcher {
    pass: Vec<Pattern>,
    fail: Vec<Pattern>,
    next: usize,
}

impl Matcher {
    pub fn new(pass: Vec<Pattern>, fail: Vec<Pattern>) -> Self {
        Self {
            pass,
            fail,
            next: 0,
        }
    }

    /// Checks one line; returns what happened, a failure last.
    pub fn feed(&mut self, line: &str) -> Vec<Event> {
        let mut events = Vec::new();
        let mut from = 0;
        while let Some(pattern) = self.pass.get(self.next) {
            let Some(found) = pattern.regex.find_at(line, from) else {
                break;
            };
            events.push(Event::Seen {
                index: self.next,
                line: line.to_owned(),
            });
            self.next += 1;
            from = found.end();
        }
        if let Some(pattern) = self
            .fail
            .iter()
            .find(|pattern| pattern.regex.is_match(line))
        {
            events.push(Event::Failed {
                pattern: pattern.text.clone(),
                line: line.to_owned(),
            });
        }
        events
    }

    /// True once every pass pattern was seen.
    pub fn done(&self) -> bool {
        self.next == self.pass.len()
    }

    /// The pass pattern awaited next.
    pub fn waiting_for(&self) -> Option<&str> {
        self.pass
            .get(self.next)
            .map(|pattern| pattern.text.as_str())
    }

    /// The pass pattern number `index`.
    pub fn pass_pattern(&self, index: usize) -> &str {
        &self.pass[index].text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(texts: &[&str]) -> Vec<Pattern> {
        texts
            .iter()
            .map(|text| Pattern::new(text).unwrap())
            .collect()
    }

    #[test]
    fn split_console_lines_are_joined_again() {
        let mut r = Rejoiner::default();
        let mut out = Vec::new();
        for line in [
            "OXEN-DOMU-TEST: guest powered itself off: y[   34.943833] cpu0 INFO  domain 1 destroyed",
            "es (state ---s--)",
            "[   35.0] not a hypervisor line",
            "plain",
            "a[ 1.000000] cpu1 INFO  x",
            "[ 1.000001] cpu0 INFO  y",
            "b",
            "dmesg| [    0.328678] cpu0 INFO  all 2 CPUs in VMX root operation",
        ] {
            out.extend(r.feed(line));
        }
        assert_eq!(
            out,
            [
                "[   34.943833] cpu0 INFO  domain 1 destroyed",
                "OXEN-DOMU-TEST: guest powered itself off: yes (state ---s--)",
                "[   35.0] not a hypervisor line",
                "plain",
                "[ 1.000000] cpu1 INFO  x",
                "[ 1.000001] cpu0 INFO  y",
                "ab",
                "dmesg| [    0.328678] cpu0 INFO  all 2 CPUs in VMX root operation",
            ]
        );
    }

    #[test]
    fn pass_patterns_must_come_in_order() {
        let mut matcher = Matcher::new(patterns(&["first", "second"]), vec![]);
        assert!(matcher.feed("second").is_empty());
        assert_eq!(matcher.waiting_for(), Some("first"));
        assert_eq!(matcher.feed("first").len(), 1);
        assert!(!matcher.done());
        assert_eq!(
            matcher.feed("then second"),
            vec![Event::Seen {
                index: 1,
                line: "then second".into()
            }]
        );
        assert!(matcher.done());
        assert_eq!(matcher.waiting_for(), None);
    }

    #[test]
    fn several_patterns_can_match_one_line_left_to_right() {
        let mut matcher = Matcher::new(patterns(&["a", "b", "a"]), vec![]);
        assert_eq!(matcher.feed("a b").len(), 2);
        assert_eq!(matcher.waiting_for(), Some("a"));
        assert_eq!(matcher.feed("b a").len(), 1);
        assert!(matcher.done());
    }

    #[test]
    fn a_fail_pattern_anywhere_fails() {
        let mut matcher = Matcher::new(patterns(&["ok"]), patterns(&["PANIC", "EXCEPTION"]));
        let events = matcher.feed("[ 1.0] cpu1 ERROR PANIC at x.rs:3");
        assert_eq!(
            events,
            vec![Event::Failed {
                pattern: "PANIC".into(),
                line: "[ 1.0] cpu1 ERROR PANIC at x.rs:3".into()
            }]
        );
    }

    #[test]
    fn regexes_are_real_regexes() {
        let mut matcher = Matcher::new(patterns(&[r"Oxen hypervisor v\d+\.\d+\.\d+"]), vec![]);
        assert!(matcher.feed("Oxen hypervisor vX").is_empty());
        assert_eq!(
            matcher
                .feed("[    0.000001] cpu0 INFO  Oxen hypervisor v0.1.0 starting")
                .len(),
            1
        );
        assert!(Pattern::new("(unclosed").is_err());
    }

    #[test]
    fn escape_sequences_are_dropped_even_when_split() {
        let mut filter = EscapeFilter::default();
        assert_eq!(filter.apply(b"a\x1b[2J\x1b[0;3"), b"a");
        assert_eq!(filter.apply(b"0mb\x1b7c\n"), b"bc\n");
        assert_eq!(
            clean_line(b"\x1b[H\x1b[J  Booting `Oxen'\r\n"),
            "  Booting `Oxen'"
        );
    }

    #[test]
    fn follower_returns_whole_lines_and_the_tail_at_the_end() {
        let dir = std::env::temp_dir().join(format!("xtask-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("serial.log");
        let mut follower = Follower::new(path.clone());
        assert!(
            follower.poll(false).unwrap().lines.is_empty(),
            "no file yet"
        );
        std::fs::write(&path, b"one\r\ntw").unwrap();
        let chunk = follower.poll(false).unwrap();
        assert_eq!(chunk.lines, vec!["one"]);
        assert_eq!(chunk.raw, b"one\r\ntw");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, b"o\nthree").unwrap();
        assert_eq!(follower.poll(false).unwrap().lines, vec!["two"]);
        assert_eq!(follower.poll(true).unwrap().lines, vec!["three"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
