//! The xl.cfg lexer.
//!
//! Tokens follow libxlu's lexer (Xen `tools/libs/util`):
//! - identifiers: `[a-z][._0-9a-z]*` (lower case only);
//! - numbers: `[0-9][0-9a-fx]*`, kept as text and converted when a key is read
//!   (like `strtol(..., 0)`: `0x` hexadecimal, a leading `0` octal, else decimal);
//! - strings in `'...'` or `"..."` on one line, with the escapes `\"` `\'` `\\`
//!   `\a` `\b` `\f` `\n` `\r` `\t` `\v`, `\xHH` (two hex digits) and `\o`, `\oo`,
//!   `\ooo` (octal, at most 255);
//! - `,` `[` `]` `=` `+=` `;`, newlines, spaces and tabs, and `#` comments to the
//!   end of the line.
//!
//! Deviations, both lenient: a `\r` before a newline is ignored (xl rejects CRLF
//! files), and a comment may end the file without a final newline.

use super::error::{ConfigError, Pos};

/// A token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A key name.
    Ident(String),
    /// An unquoted number, as written.
    Number(String),
    /// A quoted string, unescaped.
    Str(String),
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `=`
    Assign,
    /// `+=`
    Append,
    /// `;`
    Semi,
    /// End of a line (or of a comment).
    Newline,
    /// End of the source.
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("`{s}`"),
            Self::Number(s) => format!("number `{s}`"),
            Self::Str(_) => "a string".to_owned(),
            Self::LBracket => "`[`".to_owned(),
            Self::RBracket => "`]`".to_owned(),
            Self::Comma => "`,`".to_owned(),
            Self::Assign => "`=`".to_owned(),
            Self::Append => "`+=`".to_owned(),
            Self::Semi => "`;`".to_owned(),
            Self::Newline => "end of line".to_owned(),
            Self::Eof => "end of file".to_owned(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its first character.
    pub pos: Pos,
}

/// Splits a source into tokens.
pub struct Lexer<'a> {
    source_name: &'a str,
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    col: u32,
}

impl std::fmt::Debug for Lexer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lexer")
            .field("line", &self.line)
            .field("col", &self.col)
            .finish()
    }
}

impl<'a> Lexer<'a> {
    /// A lexer over `text`, naming `source_name` in errors.
    #[must_use]
    pub fn new(source_name: &'a str, text: &'a str) -> Self {
        Self {
            source_name,
            chars: text.chars().peekable(),
            line: 1,
            col: 1,
        }
    }

    fn pos(&self) -> Pos {
        Pos::new(self.line, self.col)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.source_name, pos, message)
    }

    /// The next token.
    ///
    /// # Errors
    ///
    /// A lexical error: an unexpected character, a bad escape, an unterminated
    /// string.
    pub fn next_token(&mut self) -> Result<Token, ConfigError> {
        loop {
            let pos = self.pos();
            let Some(&c) = self.chars.peek() else {
                return Ok(Token { tok: Tok::Eof, pos });
            };
            let tok = match c {
                ' ' | '\t' => {
                    self.bump();
                    continue;
                }
                '\r' => {
                    self.bump();
                    if self.chars.peek() == Some(&'\n') {
                        continue;
                    }
                    return Err(self.error(pos, "carriage return not followed by a newline"));
                }
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.bump();
                    }
                    continue;
                }
                '\n' => {
                    self.bump();
                    Tok::Newline
                }
                'a'..='z' => {
                    Tok::Ident(self.take_while(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.')))
                }
                '0'..='9' => {
                    let text = self.take_while(|c| matches!(c, '0'..='9' | 'a'..='f' | 'x'));
                    if let Some(&next) = self.chars.peek()
                        && next.is_ascii_alphanumeric()
                    {
                        let hint = if next.is_ascii_hexdigit() || next == 'X' {
                            " (xl.cfg numbers use lower-case hex digits and `0x`)"
                        } else {
                            ""
                        };
                        return Err(self.error(
                            self.pos(),
                            format!("invalid character `{next}` in number{hint}"),
                        ));
                    }
                    Tok::Number(text)
                }
                '"' | '\'' => Tok::Str(self.string()?),
                '[' => self.single(Tok::LBracket),
                ']' => self.single(Tok::RBracket),
                ',' => self.single(Tok::Comma),
                '=' => self.single(Tok::Assign),
                ';' => self.single(Tok::Semi),
                '+' => {
                    self.bump();
                    if self.chars.peek() == Some(&'=') {
                        self.bump();
                        Tok::Append
                    } else {
                        return Err(self.error(
                            pos,
                            "unexpected `+` (xl.cfg has no expressions; `+=` appends to a setting)",
                        ));
                    }
                }
                other => return Err(self.unexpected(pos, other)),
            };
            return Ok(Token { tok, pos });
        }
    }

    fn unexpected(&self, pos: Pos, c: char) -> ConfigError {
        let hint = match c {
            'A'..='Z' => " (keys are lower case)",
            '-' | '.' | '(' | ')' | ':' => {
                " (xl.cfg is not Python: arbitrary Python is not supported)"
            }
            '{' | '}' => " (xl.cfg has no dictionaries; use a list of strings)",
            _ => "",
        };
        let shown = if c.is_control() {
            format!("{:?}", c)
        } else {
            format!("`{c}`")
        };
        self.error(pos, format!("unexpected character {shown}{hint}"))
    }

    fn single(&mut self, tok: Tok) -> Tok {
        self.bump();
        tok
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(&c) = self.chars.peek() {
            if !keep(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    /// A quoted string; the opening quote is next.
    fn string(&mut self) -> Result<String, ConfigError> {
        let open = self.pos();
        let quote = self.bump().unwrap_or('"');
        let mut bytes = Vec::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None | Some('\n') => {
                    return Err(
                        self.error(open, "unterminated string (strings end on the same line)")
                    );
                }
                Some(c) if c == quote => break,
                Some('\\') => self.escape(pos, &mut bytes)?,
                Some(c) => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        String::from_utf8(bytes)
            .map_err(|_| self.error(open, "string escapes produce invalid UTF-8"))
    }

    /// One escape; the backslash (at `pos`) has been consumed.
    fn escape(&mut self, pos: Pos, out: &mut Vec<u8>) -> Result<(), ConfigError> {
        let byte = match self.bump() {
            Some(c @ ('"' | '\'' | '\\')) => c as u8,
            Some('a') => 0x07,
            Some('b') => 0x08,
            Some('f') => 0x0c,
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('t') => b'\t',
            Some('v') => 0x0b,
            Some('x') => {
                let mut value = 0u32;
                for _ in 0..2 {
                    match self.chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d;
                            self.bump();
                        }
                        None => {
                            return Err(self.error(pos, "`\\x` must be followed by two hex digits"));
                        }
                    }
                }
                value as u8
            }
            Some(first @ '0'..='7') => {
                let mut value = first.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.bump();
                        }
                        None => break,
                    }
                }
                u8::try_from(value)
                    .map_err(|_| self.error(pos, "octal escape is larger than \\377"))?
            }
            None | Some('\n') => {
                return Err(self.error(pos, "unterminated string (strings end on the same line)"));
            }
            Some(other) => {
                return Err(self.error(pos, format!("invalid escape `\\{other}` in quoted string")));
            }
        };
        out.push(byte);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let mut lexer = Lexer::new("t", text);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn statements_and_comments() {
        assert_eq!(
            toks("memory = 0x200 # MiB\nname='a';"),
            [
                Tok::Ident("memory".into()),
                Tok::Assign,
                Tok::Number("0x200".into()),
                Tok::Newline,
                Tok::Ident("name".into()),
                Tok::Assign,
                Tok::Str("a".into()),
                Tok::Semi,
            ]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            toks(r#""a\tb\\\"\x41\101\7""#),
            [Tok::Str("a\tb\\\"AA\u{7}".into())]
        );
        assert_eq!(toks(r"'it\'s'"), [Tok::Str("it's".into())]);
    }

    #[test]
    fn positions_are_one_based() {
        let mut lexer = Lexer::new("t", "\n  \tkey");
        assert_eq!(lexer.next_token().unwrap().pos, Pos::new(1, 1));
        assert_eq!(lexer.next_token().unwrap().pos, Pos::new(2, 4));
    }

    #[test]
    fn errors() {
        let err = |text| Lexer::new("f", text).next_token().unwrap_err().to_string();
        assert_eq!(
            err("\"abc"),
            "f:1:1: unterminated string (strings end on the same line)"
        );
        assert_eq!(
            err("'a\\q'"),
            "f:1:3: invalid escape `\\q` in quoted string"
        );
        assert_eq!(
            err("'\\xg'"),
            "f:1:2: `\\x` must be followed by two hex digits"
        );
        assert_eq!(err("'\\777'"), "f:1:2: octal escape is larger than \\377");
        assert!(err("Memory").contains("keys are lower case"));
        assert!(err("0xFF").contains("invalid character `F` in number"));
    }
}
