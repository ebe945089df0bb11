//! xl.cfg(5) configuration files: lexer, parser, and the typed domain
//! configuration.

pub mod cpulist;
pub mod domain;
pub mod error;
pub mod keys;
pub mod lexer;
pub mod parser;

pub use domain::{DomainConfig, DomainType, ShutdownAction};
pub use error::{ConfigError, Pos, Warning};
pub use parser::{Config, Value};

/// The name given to the `n`th (1-based) command-line override in messages.
#[must_use]
pub fn override_source_name(n: usize) -> String {
    format!("<override {n}>")
}

/// Parses a configuration file and the command-line overrides (each one a
/// configuration line, applied after the file, as `xl create FILE key=value...`
/// does), then builds the domain configuration.
///
/// # Errors
///
/// The first syntax or semantic error, with its source and position.
pub fn load(
    source_name: &str,
    text: &str,
    overrides: &[String],
) -> Result<(DomainConfig, Vec<Warning>), ConfigError> {
    let mut config = Config::new();
    config.parse_source(source_name, text)?;
    for (i, line) in overrides.iter().enumerate() {
        config.parse_source(&override_source_name(i + 1), line)?;
    }
    domain::build(&config, source_name)
}

/// Like [`load`], for raw bytes: a file that is not UTF-8 is an error at the
/// position of its first invalid byte.
///
/// # Errors
///
/// As [`load`], plus invalid UTF-8.
pub fn load_bytes(
    source_name: &str,
    bytes: &[u8],
    overrides: &[String],
) -> Result<(DomainConfig, Vec<Warning>), ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load(source_name, text, overrides),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let line = valid.matches('\n').count() + 1;
            let col = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            Err(ConfigError::at(
                source_name,
                Pos::new(line as u32, col as u32),
                "the file is not valid UTF-8",
            ))
        }
    }
}
