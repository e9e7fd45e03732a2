//! A reader for GLib-style key files, the format of rtpengine's config file.
//!
//! `[group]` headers, `key = value` lines, `#` comments (and `;` comments, which GLib rejects but
//! which INI habits produce). Values keep GLib's escapes (`\s`, `\n`, `\t`, `\r`, `\\`, and `\;` in
//! lists). A group may appear several times (its keys merge); a later key replaces an earlier one.

use super::error::ConfigError;

/// One `key = value` line, value still escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub raw: String,
    pub line: usize,
}

/// A parsed key file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyFile {
    groups: Vec<(String, Vec<Entry>)>,
}

impl KeyFile {
    /// Parses `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<KeyFile, ConfigError> {
        let mut kf = KeyFile::default();
        let mut current: Option<usize> = None;
        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let err = |reason: &str| ConfigError::ConfigFileSyntax {
                path: path.to_string(),
                line: lineno,
                reason: reason.to_string(),
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let (name, after) = rest
                    .split_once(']')
                    .ok_or_else(|| err("group header without ']'"))?;
                if !after.trim().is_empty() {
                    return Err(err("text after a group header"));
                }
                if name.is_empty() || name.contains('[') {
                    return Err(err("invalid group name"));
                }
                current = Some(kf.group_index(name));
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err("line is not a key = value pair, a [group] or a comment"))?;
            let key = key.trim_end();
            if key.is_empty() {
                return Err(err("empty key name"));
            }
            let group = current.ok_or_else(|| err("key before the first [group]"))?;
            if key.contains('[') {
                // A localised value (`key[de] = ...`): never meaningful for options.
                continue;
            }
            let entries = match kf.groups.get_mut(group) {
                Some((_, entries)) => entries,
                None => continue,
            };
            entries.retain(|e| e.key != key);
            entries.push(Entry {
                key: key.to_string(),
                raw: value.trim_start().to_string(),
                line: lineno,
            });
        }
        Ok(kf)
    }

    fn group_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.groups.iter().position(|(n, _)| n == name) {
            return i;
        }
        self.groups.push((name.to_string(), Vec::new()));
        self.groups.len() - 1
    }

    /// The entries of a group, in file order, or `None` if the file has no such group.
    pub fn group(&self, name: &str) -> Option<&[Entry]> {
        self.groups
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_slice())
    }
}

/// Resolves GLib escapes in a single string value and trims trailing spaces (as rtpengine does).
pub(crate) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out.trim_end().to_string()
}

/// Splits a list value at unescaped `;`, unescaping each item; empty items are dropped.
pub(crate) fn split_list(raw: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            ';' => items.push(std::mem::take(&mut cur)),
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
        .iter()
        .map(|s| unescape(s.trim_start()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A key-file boolean: `true`/`false`, `1`/`0` (GLib), also `yes`/`no`/`on`/`off`.
pub(crate) fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn groups_keys_comments() {
        let text =
            "# top comment\n\n[rtpengine]\ntable = 0\n  ; semicolon comment\ninterface=a;b\n\
                    [other]\nx = 1\n[rtpengine]\ntable = -1\n";
        let kf = KeyFile::parse(text, "f").unwrap();
        let g = kf.group("rtpengine").unwrap();
        let keys: Vec<_> = g.iter().map(|e| (e.key.as_str(), e.raw.as_str())).collect();
        assert_eq!(keys, vec![("interface", "a;b"), ("table", "-1")]);
        assert_eq!(g[1].line, 10);
        assert_eq!(kf.group("other").unwrap()[0].raw, "1");
        assert!(kf.group("missing").is_none());
    }

    #[test]
    fn syntax_errors_carry_line_numbers() {
        let e = KeyFile::parse("[a]\nfoo\n", "x.conf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--config-file: x.conf, line 2: line is not a key = value pair, a [group] or a comment"
        );
        let e = KeyFile::parse("k = v\n", "x.conf").unwrap_err();
        assert!(e
            .to_string()
            .contains("line 1: key before the first [group]"));
        let e = KeyFile::parse("[a\n", "x.conf").unwrap_err();
        assert!(e.to_string().contains("without ']'"));
    }

    #[test]
    fn localised_keys_are_skipped() {
        let kf = KeyFile::parse("[a]\nname[de] = x\nname = y\n", "f").unwrap();
        assert_eq!(kf.group("a").unwrap().len(), 1);
    }

    #[test]
    fn escapes_and_lists() {
        assert_eq!(unescape(r"a\sb\\c  "), r"a b\c");
        assert_eq!(split_list("a; b ;c;"), vec!["a", "b", "c"]);
        assert_eq!(split_list(r"x\;y;z"), vec!["x;y", "z"]);
        assert!(split_list("").is_empty());
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("FALSE "), Some(false));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
