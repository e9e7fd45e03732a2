//! The differential corpus: one `.exch` file per offer/answer exchange, in a small text format read here (no
//! parser dependency, and the SDP stays readable and diffable in review).
//!
//! ```text
//! # comment (only before the first step)
//! title: Polycom VVX calls a Yealink T46, G.722 first
//! source: where the SDP shape comes from (URL, "RFC 3264 §10.1", vendor guide); repeatable
//! category: polycom
//! note: free text; repeatable
//!
//! --- offer
//! ng: {"from-tag": "pc-1", "flags": ["trust-address"], "replace": ["origin"]}
//! eol: crlf
//! sdp:
//! v=0
//! ...
//! --- answer
//! ng: {"from-tag": "pc-1", "to-tag": "yl-1"}
//! sdp:
//! ...
//! ```
//!
//! A step starts with `--- <command>`. `ng:` is a JSON object of the NG keys besides `command`, `call-id` and
//! `sdp` (strings become byte strings, numbers integers, arrays lists, objects dicts; `null` leaves the key
//! out, e.g. `"call-id": null` to send no call-id). `sdp:` starts the body, which runs to the next `---` line;
//! a step without `sdp:` sends no `sdp` key. Body lines end with CRLF unless `eol: lf`; markers make the rest
//! visible: `<SP>` a space, `<TAB>` a tab, and at the end of a line `<LF>`, `<CRLF>`, `<CR>` or `<NOEOL>` for
//! that line's own terminator (mixed endings, a last line without one).

use std::path::Path;

use crate::common::bencode::{Dict, Value};

/// One exchange: the NG steps played in order to each relay, on one call-id.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The file stem, e.g. `polycom-vvx-g722`; also the call-id (prefixed).
    pub name: String,
    pub title: String,
    pub sources: Vec<String>,
    pub category: String,
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
}

/// One NG request.
#[derive(Debug, Clone)]
pub struct Step {
    pub command: String,
    /// The NG keys from `ng:` (never `command`; `call-id` only when the file sets it).
    pub params: Dict,
    /// Keys the file set to `null`: not sent, not even the harness's defaults.
    pub omit: Vec<String>,
    /// The body exactly as sent, if any.
    pub sdp: Option<Vec<u8>>,
}

impl Exchange {
    /// The from-tag of the first step that has one (for the harness's clean-up `delete`).
    pub fn first_from_tag(&self) -> Option<String> {
        self.steps.iter().find_map(|s| {
            s.params
                .get(b"from-tag".as_slice())
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }
}

/// Reads every `*.exch` file of `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Exchange>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "exch"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let name = p
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("{}: file name is not UTF-8", p.display()))?;
            parse(name, &text).map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// Parses one exchange file.
pub fn parse(name: &str, text: &str) -> Result<Exchange, String> {
    let mut ex = Exchange {
        name: name.to_owned(),
        title: String::new(),
        sources: Vec::new(),
        category: String::new(),
        notes: Vec::new(),
        steps: Vec::new(),
    };
    let mut lines = text.lines().enumerate().peekable();
    // Header.
    while let Some(&(n, line)) = lines.peek() {
        if line.starts_with("--- ") {
            break;
        }
        lines.next();
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected `key: value`", n + 1))?;
        let value = value.trim().to_owned();
        match key {
            "title" => ex.title = value,
            "source" => ex.sources.push(value),
            "category" => ex.category = value,
            "note" => ex.notes.push(value),
            other => return Err(format!("line {}: unknown header key {other:?}", n + 1)),
        }
    }
    // Steps.
    while let Some((n, line)) = lines.next() {
        let command = line
            .strip_prefix("--- ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("line {}: expected `--- <command>`", n + 1))?;
        let mut step = Step {
            command: command.to_owned(),
            params: Dict::new(),
            omit: Vec::new(),
            sdp: None,
        };
        let mut eol: &[u8] = b"\r\n";
        while let Some(&(n, line)) = lines.peek() {
            if line.starts_with("--- ") {
                break;
            }
            lines.next();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                continue;
            }
            if trimmed == "sdp:" {
                let mut body = Vec::new();
                while let Some(&(_, l)) = lines.peek() {
                    if l.starts_with("--- ") {
                        break;
                    }
                    lines.next();
                    body.push(l);
                }
                while body.last().is_some_and(|l| l.trim().is_empty()) {
                    body.pop();
                }
                step.sdp =
                    Some(body_bytes(&body, eol).map_err(|e| format!("line {}: {e}", n + 1))?);
                break;
            }
            let (key, value) = trimmed
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected `ng:`, `eol:` or `sdp:`", n + 1))?;
            match key {
                "ng" => {
                    let json: serde_json::Value = serde_json::from_str(value.trim())
                        .map_err(|e| format!("line {}: ng is not JSON: {e}", n + 1))?;
                    let serde_json::Value::Object(map) = json else {
                        return Err(format!("line {}: ng must be a JSON object", n + 1));
                    };
                    for (k, v) in map {
                        if k == "command" || k == "sdp" {
                            return Err(format!("line {}: {k:?} is set by the harness", n + 1));
                        }
                        match json_to_bencode(&v) {
                            Some(b) => {
                                step.params.insert(k.into_bytes(), b);
                            }
                            None => step.omit.push(k),
                        }
                    }
                }
                "eol" => {
                    eol = match value.trim() {
                        "crlf" => b"\r\n",
                        "lf" => b"\n",
                        other => return Err(format!("line {}: eol {other:?}: crlf or lf", n + 1)),
                    }
                }
                other => return Err(format!("line {}: unknown step key {other:?}", n + 1)),
            }
        }
        ex.steps.push(step);
    }
    if ex.title.is_empty() || ex.sources.is_empty() || ex.category.is_empty() {
        return Err("title, source and category are required".to_owned());
    }
    if ex.steps.is_empty() {
        return Err("no steps".to_owned());
    }
    Ok(ex)
}

/// The body as sent: markers expanded, each line terminated by its marker or `eol`.
fn body_bytes(lines: &[&str], eol: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim_end_matches([' ', '\t']);
        let (content, term): (&str, &[u8]) = if let Some(c) = line.strip_suffix("<NOEOL>") {
            (c, b"")
        } else if let Some(c) = line.strip_suffix("<CRLF>") {
            (c, b"\r\n")
        } else if let Some(c) = line.strip_suffix("<LF>") {
            (c, b"\n")
        } else if let Some(c) = line.strip_suffix("<CR>") {
            (c, b"\r")
        } else {
            (line, eol)
        };
        if content.contains("<NOEOL>") || content.contains("<LF>") || content.contains("<CRLF>") {
            return Err(format!("line-end marker in the middle of {line:?}"));
        }
        out.extend(
            content
                .replace("<SP>", " ")
                .replace("<TAB>", "\t")
                .as_bytes(),
        );
        out.extend(term);
    }
    Ok(out)
}

/// JSON → bencode; `None` for `null` (the key is left out).
fn json_to_bencode(v: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => Value::Int(i64::from(*b)),
        J::Number(n) => Value::Int(n.as_i64().unwrap_or_default()),
        J::String(s) => Value::Bytes(s.as_bytes().to_vec()),
        J::Array(a) => Value::List(a.iter().filter_map(json_to_bencode).collect()),
        J::Object(o) => Value::Dict(
            o.iter()
                .filter_map(|(k, v)| Some((k.as_bytes().to_vec(), json_to_bencode(v)?)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# c\ntitle: t\nsource: RFC 3264 §10.1\ncategory: rfc\n\n\
        --- offer\nng: {\"from-tag\": \"a\", \"flags\": [\"trust-address\"], \"codec\": {\"strip\": [\"PCMA\"]}, \"call-id\": null}\n\
        sdp:\nv=0\ns=<SP>\na=x<LF>\nt=0 0<NOEOL>\n\n--- delete\nng: {\"from-tag\": \"a\"}\n";

    #[test]
    fn parses_steps_markers_and_json() {
        let ex = parse("x", SAMPLE).expect("parses");
        assert_eq!(ex.steps.len(), 2);
        let offer = &ex.steps[0];
        assert_eq!(offer.command, "offer");
        assert_eq!(offer.omit, vec!["call-id".to_owned()]);
        assert_eq!(
            offer.sdp.as_deref(),
            Some(b"v=0\r\ns= \r\na=x\nt=0 0".as_slice())
        );
        assert_eq!(
            offer.params.get(b"codec".as_slice()),
            Some(&Value::Dict(
                [(b"strip".to_vec(), Value::List(vec!["PCMA".into()]))].into()
            ))
        );
        assert!(ex.steps[1].sdp.is_none());
        assert_eq!(ex.first_from_tag().as_deref(), Some("a"));
    }

    #[test]
    fn lf_bodies_and_errors() {
        let lf = SAMPLE.replace("sdp:\n", "eol: lf\nsdp:\n");
        let ex = parse("x", &lf).expect("parses");
        assert_eq!(
            ex.steps[0].sdp.as_deref(),
            Some(b"v=0\ns= \na=x\nt=0 0".as_slice())
        );
        assert!(
            parse("x", "title: t\nsource: s\ncategory: c\n").is_err(),
            "no steps"
        );
        assert!(
            parse("x", "title: t\ncategory: c\n--- ping\n").is_err(),
            "no source"
        );
        assert!(parse(
            "x",
            &SAMPLE.replace(
                "\"from-tag\": \"a\", \"flags\"",
                "\"sdp\": \"a\", \"flags\""
            )
        )
        .is_err());
        assert!(parse("x", &SAMPLE.replace("sdp:\n", "eol: cr\nsdp:\n")).is_err());
        assert!(parse("x", &SAMPLE.replace("ng: {\"from-tag\": \"a\"}", "ng: [1]")).is_err());
    }
}
