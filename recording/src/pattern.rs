//! `--output-pattern`: file names from rtpengine-recording's format sequences. `%c` call-id, `%r` random tag,
//! `%t` stream type (SSRC in hex for single files, `mix` for the mix), `%l` label, `%Y %m %d %H %M %S`
//! (UTC call start), `%u` microseconds, `%<n>` the next n characters of the call-id, `%{key}` a metadata
//! value, `%%`. Substituted values never add directory levels.

use std::path::PathBuf;

use thiserror::Error;

use crate::time::civil;

/// Pattern errors, reported at startup.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PatternError {
    /// `%c` missing
    #[error("output pattern must contain %c (the call-id)")]
    NoCallId,
    /// `%t` missing
    #[error("output pattern must contain %t (the stream type)")]
    NoType,
    /// unknown `%x`
    #[error("output pattern: unknown format sequence %{0}")]
    Unknown(char),
    /// `%{` without `}`
    #[error("output pattern: %{{ without a closing }}")]
    Unclosed,
    /// `%` at the end
    #[error("output pattern ends with a lone %")]
    Trailing,
    /// starts with `/`
    #[error("output pattern must be relative to the output directory")]
    Absolute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    CallId,
    Random,
    Type,
    Label,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Micros,
    Prefix(usize),
    Meta(String),
}

/// A parsed output pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

/// The values a pattern can refer to.
#[derive(Debug, Clone, Copy)]
pub struct PatternCtx<'a> {
    pub call_id: &'a str,
    pub random: &'a str,
    /// `%t`
    pub kind: &'a str,
    pub label: &'a str,
    /// µs since the epoch (the call's start).
    pub time_us: u64,
    pub metadata: &'a [(String, String)],
}

/// Default pattern, as rtpengine-recording's.
pub const DEFAULT_PATTERN: &str = "%c-%r-%t";

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if s.starts_with('/') {
            return Err(PatternError::Absolute);
        }
        let mut tokens = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some(n) = chars.next() else {
                return Err(PatternError::Trailing);
            };
            let tok = match n {
                '%' => {
                    lit.push('%');
                    continue;
                }
                'c' => Token::CallId,
                'r' => Token::Random,
                't' => Token::Type,
                'l' => Token::Label,
                'Y' => Token::Year,
                'm' => Token::Month,
                'd' => Token::Day,
                'H' => Token::Hour,
                'M' => Token::Minute,
                'S' => Token::Second,
                'u' => Token::Micros,
                '{' => {
                    let mut key = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(k) => key.push(k),
                            None => return Err(PatternError::Unclosed),
                        }
                    }
                    Token::Meta(key)
                }
                d if d.is_ascii_digit() => {
                    let mut num = u32::from(d as u8 - b'0') as usize;
                    while let Some(&d2) = chars.peek() {
                        if !d2.is_ascii_digit() {
                            break;
                        }
                        chars.next();
                        num = num
                            .saturating_mul(10)
                            .saturating_add(usize::from(d2 as u8 - b'0'));
                    }
                    Token::Prefix(num)
                }
                other => return Err(PatternError::Unknown(other)),
            };
            if !lit.is_empty() {
                tokens.push(Token::Lit(std::mem::take(&mut lit)));
            }
            tokens.push(tok);
        }
        if !lit.is_empty() {
            tokens.push(Token::Lit(lit));
        }
        if !tokens.contains(&Token::CallId) {
            return Err(PatternError::NoCallId);
        }
        if !tokens.contains(&Token::Type) {
            return Err(PatternError::NoType);
        }
        Ok(Pattern { tokens })
    }

    /// The relative path (without extension) for `ctx`.
    pub fn expand(&self, ctx: &PatternCtx<'_>) -> PathBuf {
        let t = civil(ctx.time_us);
        let mut out = String::new();
        let mut prefix_at = 0usize;
        for tok in &self.tokens {
            match tok {
                Token::Lit(s) => out.push_str(s),
                Token::CallId => out.push_str(&clean(ctx.call_id)),
                Token::Random => out.push_str(&clean(ctx.random)),
                Token::Type => out.push_str(&clean(ctx.kind)),
                Token::Label => out.push_str(&clean(ctx.label)),
                Token::Year => out.push_str(&format!("{:04}", t.year)),
                Token::Month => out.push_str(&format!("{:02}", t.month)),
                Token::Day => out.push_str(&format!("{:02}", t.day)),
                Token::Hour => out.push_str(&format!("{:02}", t.hour)),
                Token::Minute => out.push_str(&format!("{:02}", t.minute)),
                Token::Second => out.push_str(&format!("{:02}", t.second)),
                Token::Micros => out.push_str(&format!("{:06}", t.micros)),
                Token::Prefix(n) => {
                    let part: String = ctx.call_id.chars().skip(prefix_at).take(*n).collect();
                    prefix_at += n;
                    out.push_str(&clean(&part));
                }
                Token::Meta(key) => {
                    if let Some((_, v)) = ctx.metadata.iter().find(|(k, _)| k == key) {
                        out.push_str(&clean(v));
                    }
                }
            }
        }
        let mut path = PathBuf::new();
        for comp in out.split('/').filter(|c| !c.is_empty() && *c != ".") {
            path.push(if comp == ".." { "_" } else { comp });
        }
        if path.as_os_str().is_empty() {
            path.push("_");
        }
        path
    }
}

/// A value as one safe path component: no separators or control characters, never `.` or `..`.
fn clean(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s == "." || s == ".." {
        "_".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(meta: &'a [(String, String)]) -> PatternCtx<'a> {
        PatternCtx {
            call_id: "abcdefgh",
            random: "0123456789abcdef",
            kind: "mix",
            label: "caller",
            // 2024-02-29T12:34:56.789012Z
            time_us: 1_709_210_096_789_012,
            metadata: meta,
        }
    }

    #[test]
    fn default_pattern() {
        let p = Pattern::parse(DEFAULT_PATTERN).unwrap();
        assert_eq!(
            p.expand(&ctx(&[])),
            PathBuf::from("abcdefgh-0123456789abcdef-mix")
        );
    }

    #[test]
    fn every_sequence() {
        let meta = vec![("foo".to_string(), "bar".to_string())];
        let p = Pattern::parse("%Y/%m/%d/%H%M%S.%u-%2/%3/%c-%t-%l-%{foo}%{none}-100%%").unwrap();
        assert_eq!(
            p.expand(&ctx(&meta)),
            PathBuf::from("2024/02/29/123456.789012-ab/cde/abcdefgh-mix-caller-bar-100%")
        );
    }

    #[test]
    fn values_cannot_escape() {
        let p = Pattern::parse("%c/%t").unwrap();
        let mut c = ctx(&[]);
        c.call_id = "../../etc/passwd";
        assert_eq!(p.expand(&c), PathBuf::from(".._.._etc_passwd/mix"));
        c.call_id = "..";
        assert_eq!(p.expand(&c), PathBuf::from("_/mix"));
        let p = Pattern::parse("../%c%t").unwrap();
        assert_eq!(p.expand(&ctx(&[])), PathBuf::from("_/abcdefghmix"));
    }

    #[test]
    fn errors() {
        assert_eq!(Pattern::parse("%r-%t"), Err(PatternError::NoCallId));
        assert_eq!(Pattern::parse("%c"), Err(PatternError::NoType));
        assert_eq!(Pattern::parse("%c%t%q"), Err(PatternError::Unknown('q')));
        assert_eq!(Pattern::parse("%c%t%{x"), Err(PatternError::Unclosed));
        assert_eq!(Pattern::parse("%c%t%"), Err(PatternError::Trailing));
        assert_eq!(Pattern::parse("/x/%c%t"), Err(PatternError::Absolute));
    }
}
