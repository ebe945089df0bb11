//! The xl.cfg grammar (libxlu's), as a recursive-descent parser.
//!
//! ```text
//! file       = { stmt } [ assignment ]
//! stmt       = assignment end | end
//! end        = NEWLINE | ";"
//! assignment = IDENT ("=" | "+=") value
//! value      = STRING | NUMBER | "[" nl* [ value nl* { "," nl* value nl* } [ "," nl* ] ] "]"
//! ```
//!
//! `+=` concatenates with the most recent setting of the same key (strings to
//! strings, lists to lists), as xl does; with no earlier setting it assigns. A later
//! setting of a key replaces an earlier one.

use super::error::{ConfigError, Pos};
use super::lexer::{Lexer, Tok, Token};

/// Lists nested deeper than this are refused (bounds recursion on hostile input).
pub const MAX_NESTING: usize = 32;

/// A value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string or a number (xl keeps both as text; the key decides the type).
    Atom(Atom),
    /// A list of values.
    List(Vec<Spanned>),
}

/// A scalar value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    /// The text (unescaped, for strings).
    pub text: String,
    /// Whether it was written as a quoted string.
    pub quoted: bool,
}

/// A value and the position where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned {
    /// The value.
    pub value: Value,
    /// Its first character.
    pub pos: Pos,
}

/// One `key = value` (or `key += value`) after `+=` has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// Where the key is.
    pub key_pos: Pos,
    /// The resulting value.
    pub value: Spanned,
    /// Whether the last statement for this key used `+=`.
    pub appended: bool,
    /// The name of the source the statement is in.
    pub source_name: String,
}

/// The settings of one or more sources, in statement order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    settings: Vec<Setting>,
}

impl Config {
    /// An empty configuration.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one source (a file, or one command-line override) and adds its
    /// settings after the existing ones.
    ///
    /// # Errors
    ///
    /// The first syntax error, with its position.
    pub fn parse_source(&mut self, source_name: &str, text: &str) -> Result<(), ConfigError> {
        let mut parser = Parser {
            lexer: Lexer::new(source_name, text),
            source_name,
            peeked: None,
        };
        while let Some((key, key_pos, appended, value)) = parser.statement()? {
            let value = if appended {
                self.append(source_name, &key, value)?
            } else {
                value
            };
            self.settings.retain(|s| s.key != key);
            self.settings.push(Setting {
                key,
                key_pos,
                value,
                appended,
                source_name: source_name.to_owned(),
            });
        }
        Ok(())
    }

    fn append(&self, source_name: &str, key: &str, add: Spanned) -> Result<Spanned, ConfigError> {
        let Some(prev) = self.get(key) else {
            return Ok(add);
        };
        let value = match (&prev.value.value, add.value) {
            (Value::Atom(a), Value::Atom(b)) => Value::Atom(Atom {
                text: format!("{}{}", a.text, b.text),
                quoted: a.quoted || b.quoted,
            }),
            (Value::List(a), Value::List(b)) => Value::List(a.iter().cloned().chain(b).collect()),
            _ => {
                return Err(ConfigError::at(
                    source_name,
                    add.pos,
                    format!(
                        "cannot use `+=` to add a list to a string or a string to a list (`{key}`)"
                    ),
                ));
            }
        };
        Ok(Spanned {
            value,
            pos: add.pos,
        })
    }

    /// The setting of `key`, if any.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.key == key)
    }

    /// Every setting, in the order they were last set.
    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.settings.iter()
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    source_name: &'a str,
    peeked: Option<Token>,
}

type Statement = (String, Pos, bool, Spanned);

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, ConfigError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<Token, ConfigError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.source_name, pos, message)
    }

    /// The next assignment, skipping empty statements; `None` at the end.
    fn statement(&mut self) -> Result<Option<Statement>, ConfigError> {
        loop {
            let token = self.next()?;
            let key = match token.tok {
                Tok::Newline | Tok::Semi => continue,
                Tok::Eof => return Ok(None),
                Tok::Ident(key) => key,
                other => {
                    return Err(self.error(
                        token.pos,
                        format!("expected a key name, found {}", other.describe()),
                    ));
                }
            };
            let op = self.next()?;
            let appended = match op.tok {
                Tok::Assign => false,
                Tok::Append => true,
                other => {
                    return Err(self.error(
                        op.pos,
                        format!(
                            "expected `=` or `+=` after `{key}`, found {}",
                            other.describe()
                        ),
                    ));
                }
            };
            let value = self.value(0)?;
            let end = self.next()?;
            match end.tok {
                Tok::Newline | Tok::Semi | Tok::Eof => {}
                other => {
                    return Err(self.error(
                        end.pos,
                        format!(
                            "expected end of line or `;` after the value of `{key}`, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
            if end.tok == Tok::Eof {
                self.peeked = Some(end);
            }
            return Ok(Some((key, token.pos, appended, value)));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, ConfigError> {
        let token = self.next()?;
        let value = match token.tok {
            Tok::Str(text) => Value::Atom(Atom { text, quoted: true }),
            Tok::Number(text) => Value::Atom(Atom {
                text,
                quoted: false,
            }),
            Tok::LBracket => {
                if depth >= MAX_NESTING {
                    return Err(self.error(
                        token.pos,
                        format!("lists nested deeper than {MAX_NESTING} levels"),
                    ));
                }
                Value::List(self.list(token.pos, depth + 1)?)
            }
            Tok::Ident(word) => {
                return Err(self.error(
                    token.pos,
                    format!("expected a value, found `{word}` (quote strings: \"{word}\")"),
                ));
            }
            other => {
                return Err(self.error(
                    token.pos,
                    format!(
                        "expected a value (a string, a number or a list), found {}",
                        other.describe()
                    ),
                ));
            }
        };
        Ok(Spanned {
            value,
            pos: token.pos,
        })
    }

    fn skip_newlines(&mut self) -> Result<(), ConfigError> {
        while self.peek()?.tok == Tok::Newline {
            self.next()?;
        }
        Ok(())
    }

    /// The items of a list; its `[` at `open` has been consumed.
    fn list(&mut self, open: Pos, depth: usize) -> Result<Vec<Spanned>, ConfigError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines()?;
            let token = self.peek()?;
            match token.tok {
                Tok::RBracket => {
                    self.next()?;
                    return Ok(items);
                }
                Tok::Eof => {
                    let pos = token.pos;
                    return Err(self.error(
                        pos,
                        format!(
                            "end of file inside the list opened at {}:{}",
                            open.line, open.col
                        ),
                    ));
                }
                _ => {}
            }
            items.push(self.value(depth)?);
            self.skip_newlines()?;
            let token = self.next()?;
            match token.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(items),
                Tok::Eof => {
                    return Err(self.error(
                        token.pos,
                        format!(
                            "end of file inside the list opened at {}:{}",
                            open.line, open.col
                        ),
                    ));
                }
                other => {
                    return Err(self.error(
                        token.pos,
                        format!("expected `,` or `]` in list, found {}", other.describe()),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let mut config = Config::new();
        config.parse_source("f", text).map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn atom(config: &Config, key: &str) -> String {
        match &config.get(key).unwrap().value.value {
            Value::Atom(a) => a.text.clone(),
            Value::List(_) => panic!("list"),
        }
    }

    #[test]
    fn statements_end_with_newline_semicolon_or_eof() {
        let c = parse("a = 1; b = 'x'\nc = \"y\"").unwrap();
        assert_eq!(atom(&c, "a"), "1");
        assert_eq!(atom(&c, "b"), "x");
        assert_eq!(atom(&c, "c"), "y");
    }

    #[test]
    fn nested_lists_with_newlines_and_trailing_comma() {
        let c = parse("disk = [\n  'a',\n  [ 1, [] ],\n]\n").unwrap();
        let Value::List(items) = &c.get("disk").unwrap().value.value else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].pos, Pos::new(3, 3));
        assert_eq!(
            parse("x = []").unwrap().get("x").unwrap().value.value,
            Value::List(vec![])
        );
    }

    #[test]
    fn append_concatenates_like_xl() {
        let c = parse("extra = 'a'\nextra += ' b'\nl = [1]\nl += [2]\nn += 'new'").unwrap();
        assert_eq!(atom(&c, "extra"), "a b");
        let Value::List(items) = &c.get("l").unwrap().value.value else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(atom(&c, "n"), "new");
        assert!(c.get("extra").unwrap().appended);
    }

    #[test]
    fn later_setting_wins() {
        let c = parse("memory = 1\nmemory = 2").unwrap();
        assert_eq!(atom(&c, "memory"), "2");
        assert_eq!(c.settings().count(), 1);
    }

    #[test]
    fn syntax_errors_have_positions() {
        assert_eq!(
            parse("x 1").unwrap_err(),
            "f:1:3: expected `=` or `+=` after `x`, found number `1`"
        );
        assert_eq!(
            parse("x = [1 2]").unwrap_err(),
            "f:1:8: expected `,` or `]` in list, found number `2`"
        );
        assert_eq!(
            parse("x = [1,\n").unwrap_err(),
            "f:2:1: end of file inside the list opened at 1:5"
        );
        assert_eq!(
            parse("x = 'a' + 'b'").unwrap_err(),
            "f:1:9: unexpected `+` (xl.cfg has no expressions; `+=` appends to a setting)"
        );
        assert_eq!(
            parse("l = [1]\nl += 'x'").unwrap_err(),
            "f:2:6: cannot use `+=` to add a list to a string or a string to a list (`l`)"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("x = {}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep).unwrap_err().contains("nested deeper"));
    }
}
