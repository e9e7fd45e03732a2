//! The justified differences: where rtprelay differs from rtpengine on purpose, each with its reason and the
//! exact changed lines (as the harness prints them: `-` rtpengine, `+` rtprelay), in diff order. A step's
//! difference is justified only when its changed lines are exactly the listed ones in the same order, so a new
//! difference in the same step, or a line that moved, still fails.
//!
//! ```text
//! # comment
//! == malformed-doubled-spaces step 1
//! reason: rtpengine keeps the doubled space in the rewritten c= line and ...
//! -c=IN IP4  127.0.0.1
//! +c=IN IP4 127.0.0.1
//! ```
//!
//! A step that differs because rtprelay lacks a feature (SRTP, DTLS, ICE: tracked as an issue) is a
//! *gap*: `== <exchange> step <n> gap` with its reason and no lines accepts whatever that step's difference
//! is, until the step stops differing (then the entry is stale and must go).

use std::path::Path;

/// One justified difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub exchange: String,
    /// 1-based step number, as printed.
    pub step: usize,
    pub reason: String,
    /// The changed lines, `-...`/`+...`, in diff order.
    pub changes: Vec<String>,
    /// A known gap: any difference in the step is accepted.
    pub gap: bool,
}

impl Known {
    /// Whether a step's changed lines are exactly this entry's, in the same order.
    pub fn matches(&self, changes: &[String]) -> bool {
        self.gap || changes == self.changes.as_slice()
    }
}

/// Reads the list; a missing file is an empty list.
pub fn load(path: &Path) -> Result<Vec<Known>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn parse(text: &str) -> Result<Vec<Known>, String> {
    let mut out: Vec<Known> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_prefix("== ") {
            let mut words = head.split_whitespace();
            let (Some(exchange), Some("step"), Some(step), tail, None) = (
                words.next(),
                words.next(),
                words.next(),
                words.next(),
                words.next(),
            ) else {
                return Err(format!(
                    "line {}: expected `== <exchange> step <n> [gap]`",
                    n + 1
                ));
            };
            let gap = match tail {
                None => false,
                Some("gap") => true,
                Some(other) => return Err(format!("line {}: unknown word {other:?}", n + 1)),
            };
            let step = step
                .parse()
                .map_err(|_| format!("line {}: bad step number {step:?}", n + 1))?;
            out.push(Known {
                exchange: exchange.to_owned(),
                step,
                reason: String::new(),
                changes: Vec::new(),
                gap,
            });
            continue;
        }
        let Some(entry) = out.last_mut() else {
            return Err(format!("line {}: text before the first `==` entry", n + 1));
        };
        if let Some(r) = line.strip_prefix("reason:") {
            if !entry.reason.is_empty() {
                entry.reason.push(' ');
            }
            entry.reason.push_str(r.trim());
        } else if line.starts_with('-') || line.starts_with('+') {
            entry.changes.push(line.to_owned());
        } else {
            return Err(format!("line {}: expected `reason:`, `-` or `+`", n + 1));
        }
    }
    for e in &mut out {
        if e.reason.is_empty() || e.changes.is_empty() != e.gap {
            return Err(format!(
                "{} step {}: needs a reason, and the changed lines unless it is a gap (then none)",
                e.exchange, e.step
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_exactly() {
        let list = parse(
            "# x\n== a-b step 2\nreason: one\nreason: two\n-c=IN IP4  127.0.0.1\n+c=IN IP4 127.0.0.1\n",
        )
        .expect("parses");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].reason, "one two");
        assert!(list[0].matches(&["-c=IN IP4  127.0.0.1".into(), "+c=IN IP4 127.0.0.1".into()]));
        assert!(!list[0].matches(&["-c=IN IP4  127.0.0.1".into()]));
        assert!(
            !list[0].matches(&["+c=IN IP4 127.0.0.1".into(), "-c=IN IP4  127.0.0.1".into()]),
            "a moved line is a different difference"
        );
        let gap = parse("== w step 1 gap\nreason: SRTP is not implemented\n").expect("parses");
        assert!(gap[0].gap && gap[0].matches(&["-a=crypto:1 X".into(), "+a=setup:x".into()]));
        assert!(
            parse("== w step 1 gap\nreason: r\n-a=x\n").is_err(),
            "a gap lists no lines"
        );
        assert!(parse("== w step 1 maybe\nreason: r\n-a=x\n").is_err());
        assert!(parse("== a step x\nreason: r\n-x\n").is_err());
        assert!(parse("== a step 1\n-x\n").is_err(), "reason required");
        assert!(parse("reason: r\n").is_err());
    }
}
