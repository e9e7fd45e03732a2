//! Splits a command line into options, the way GLib's option parser (and so rtpengine) does:
//! `--opt value`, `--opt=value`, `-t -1`, `-t-1`, grouped short flags (`-fE`), `--` ends options.
//! A value is taken from the next word even if it starts with `-`, so `-t -1` works.

use super::error::ConfigError;
use super::keyfile::parse_bool;
use super::options::{self, Arg, OptSpec};

/// A value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Flag(bool),
    One(String),
    /// A config-file list (`a;b`); the command line gives one item per occurrence.
    Many(Vec<String>),
}

/// One option occurrence.
#[derive(Debug, Clone)]
pub(crate) struct Given {
    pub spec: &'static OptSpec,
    pub value: Value,
}

/// `--flag=true|false`: GLib rejects any value on a flag; accepting booleans lets generated command
/// lines (the container entrypoint) switch flags off.
fn flag_value(written: &str, v: &str) -> Result<Value, ConfigError> {
    parse_bool(v)
        .map(Value::Flag)
        .ok_or_else(|| ConfigError::UnexpectedValue {
            option: written.to_string(),
            value: v.to_string(),
        })
}

/// Tokenizes `args` (without `argv[0]`).
pub(crate) fn tokenize(args: &[String]) -> Result<Vec<Given>, ConfigError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            if let Some(extra) = args.get(i) {
                return Err(ConfigError::UnexpectedArgument(extra.clone()));
            }
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let spec = options::by_name(name)
                .ok_or_else(|| ConfigError::UnknownOption(format!("--{name}")))?;
            let written = format!("--{name}");
            let value = match (spec.arg, inline) {
                (Arg::Flag, None) => Value::Flag(true),
                (Arg::Flag, Some(v)) => flag_value(&written, v)?,
                (_, Some(v)) => Value::One(v.to_string()),
                (_, None) => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| ConfigError::MissingValue(written.clone()))?;
                    i += 1;
                    Value::One(v.clone())
                }
            };
            out.push(Given { spec, value });
            continue;
        }
        let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) else {
            return Err(ConfigError::UnexpectedArgument(arg.clone()));
        };
        for (pos, c) in shorts.char_indices() {
            let spec =
                options::by_short(c).ok_or_else(|| ConfigError::UnknownOption(format!("-{c}")))?;
            if spec.arg == Arg::Flag {
                out.push(Given {
                    spec,
                    value: Value::Flag(true),
                });
                continue;
            }
            let rest = &shorts[pos + c.len_utf8()..];
            let value = if !rest.is_empty() {
                rest.to_string()
            } else {
                let v = args
                    .get(i)
                    .ok_or_else(|| ConfigError::MissingValue(format!("-{c}")))?;
                i += 1;
                v.clone()
            };
            out.push(Given {
                spec,
                value: Value::One(value),
            });
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(line: &str) -> Result<Vec<(String, Value)>, ConfigError> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        Ok(tokenize(&args)?
            .into_iter()
            .map(|g| (g.spec.name.to_string(), g.value))
            .collect())
    }

    fn one(s: &str) -> Value {
        Value::One(s.into())
    }

    #[test]
    fn long_forms() {
        assert_eq!(
            toks("--table -1 --port-min=2000 --foreground --log-stderr=false").unwrap(),
            vec![
                ("table".into(), one("-1")),
                ("port-min".into(), one("2000")),
                ("foreground".into(), Value::Flag(true)),
                ("log-stderr".into(), Value::Flag(false)),
            ]
        );
    }

    #[test]
    fn short_forms() {
        assert_eq!(
            toks("-t -1 -t-1 -fE -L7 -i 1.2.3.4").unwrap(),
            vec![
                ("table".into(), one("-1")),
                ("table".into(), one("-1")),
                ("foreground".into(), Value::Flag(true)),
                ("log-stderr".into(), Value::Flag(true)),
                ("log-level".into(), one("7")),
                ("interface".into(), one("1.2.3.4")),
            ]
        );
        // A value-taking short option ends a group: the rest is its value.
        assert_eq!(
            toks("-fL6").unwrap(),
            vec![
                ("foreground".into(), Value::Flag(true)),
                ("log-level".into(), one("6")),
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            toks("--bogus").unwrap_err(),
            ConfigError::UnknownOption("--bogus".into())
        );
        assert_eq!(
            toks("-fZ").unwrap_err(),
            ConfigError::UnknownOption("-Z".into())
        );
        assert_eq!(toks("-i").unwrap_err().to_string(), "-i: missing value");
        assert_eq!(
            toks("--port-min").unwrap_err().to_string(),
            "--port-min: missing value"
        );
        assert_eq!(
            toks("--foreground=maybe").unwrap_err().to_string(),
            "--foreground: takes no value, got 'maybe'"
        );
        assert_eq!(
            toks("stray").unwrap_err(),
            ConfigError::UnexpectedArgument("stray".into())
        );
        assert_eq!(
            toks("-f -- x").unwrap_err(),
            ConfigError::UnexpectedArgument("x".into())
        );
        assert!(toks("-f --").is_ok());
    }
}
