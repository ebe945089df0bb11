//! Positions, errors and warnings of configuration parsing.

use std::fmt;

/// A position in a configuration source: 1-based line and column (columns count
/// characters, a tab is one column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl Pos {
    /// Builds a position.
    #[must_use]
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }
}

/// A configuration error: where it is, and what is wrong.
///
/// Displays as `FILE:LINE:COL: message`, or `FILE: message` when the problem has
/// no single position (e.g. a required key is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The source's name (file name, or `<override N>` for a command-line setting).
    pub source_name: String,
    /// Where the problem is.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error at a position.
    pub fn at(source_name: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.to_owned(),
            pos: Some(pos),
            message: message.into(),
        }
    }

    /// An error about the whole source.
    pub fn whole(source_name: &str, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.to_owned(),
            pos: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(
                f,
                "{}:{}:{}: {}",
                self.source_name, p.line, p.col, self.message
            ),
            None => write!(f, "{}: {}", self.source_name, self.message),
        }
    }
}

/// A warning: the configuration is usable, but something in it is ignored or
/// means something the user may not expect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The source's name.
    pub source_name: String,
    /// Where the warned-about text is.
    pub pos: Option<Pos>,
    /// What it is about.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => {
                write!(
                    f,
                    "{}:{}:{}: warning: {}",
                    self.source_name, p.line, p.col, self.message
                )
            }
            None => write!(f, "{}: warning: {}", self.source_name, self.message),
        }
    }
}
