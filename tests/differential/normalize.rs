//! Renders an NG reply as comparable text: `result`, `error-reason`, `warning`, then the SDP line by line, with
//! what may legitimately differ between two relays replaced by placeholders, consistently within one exchange:
//! - media ports the relay allocated (numbers in its port range, in `m=`, `a=rtcp:` and `a=candidate`):
//!   `PORT1`, `PORT2`, ... in order of first appearance, and `PORTn+1` for the odd port right above a known one
//!   (RTCP), so rtcp = rtp + 1 is still checked;
//! - `o=` session id and version numbers the relay made up (not within 1000 of a number in an input `o=` line;
//!   values derived from the endpoint's, such as its version plus one, stay literal);
//! - ICE ufrag/pwd and candidate foundations, SDES keys, DTLS fingerprints and `a=tls-id` the relay generated
//!   (values not present in any input SDP of the exchange);
//! - the `a=rtpengine:` loop-protect value.
//!
//! Both relays listen on the same addresses (127.0.0.1 and ::1), so addresses are compared as they are.
//! Line endings stay visible: a CRLF line is shown as is, an LF-only line ends with `<LF>`, a lone CR with `<CR>`,
//! a last line without terminator with `<NOEOL>`; trailing spaces show as `<SP>` and tabs as `<TAB>`.

use std::collections::{HashMap, HashSet};

use crate::common::bencode::{Dict, Value};

/// The address family (`4`, `6`, `?`) of the section each line of `text` belongs to: a media
/// section's own `c=` (wherever it stands in the section), else the session's.
fn section_families(text: &str) -> Vec<char> {
    let fam = |l: &str| -> Option<char> {
        let c = l.trim_end().strip_prefix("c=IN ")?;
        Some(if c.starts_with("IP6") { '6' } else { '4' })
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = vec!['?'; lines.len()];
    let mut session = '?';
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with("m=") {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].starts_with("m="))
                .unwrap_or(lines.len());
            let own = lines[i..end].iter().find_map(|l| fam(l)).unwrap_or(session);
            for slot in &mut out[i..end] {
                *slot = own;
            }
            i = end;
        } else {
            session = fam(lines[i]).unwrap_or(session);
            out[i] = session;
            i += 1;
        }
    }
    out
}

/// The text a reply renders to when the relay did not answer.
pub const NO_REPLY: &str = "(no reply)";

/// One relay's normaliser for one exchange.
pub struct Normalizer {
    range: (u16, u16),
    /// Every token (split on space, colon, `|`, `/`) of the exchange's input SDPs.
    input_tokens: HashSet<String>,
    /// The numbers of the input `o=` lines.
    input_origin: Vec<u64>,
    /// Placeholders by (address family of the section, port): IPv4 and IPv6 pools may hand out
    /// the same number.
    ports: HashMap<(char, u16), String>,
    /// The family of the section the line being normalised belongs to (`4`, `6`, `?`).
    family: char,
    next_port: usize,
    generated: HashMap<(&'static str, String), String>,
    counters: HashMap<&'static str, usize>,
}

impl Normalizer {
    /// `range` is the relay's media port range; `inputs` every SDP body the exchange sends.
    pub fn new(range: (u16, u16), inputs: &[&[u8]]) -> Normalizer {
        let mut input_tokens = HashSet::new();
        let mut input_origin = Vec::new();
        for body in inputs {
            let text = String::from_utf8_lossy(body);
            for line in text.lines() {
                input_tokens.extend(
                    line.split([' ', ':', '|', '/', '\r'])
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                );
                if let Some(o) = line.strip_prefix("o=") {
                    input_origin.extend(o.split(' ').filter_map(|f| f.parse::<u64>().ok()));
                }
            }
        }
        Normalizer {
            range,
            input_tokens,
            input_origin,
            ports: HashMap::new(),
            family: '?',
            next_port: 0,
            generated: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// The reply as comparable text (see the module doc); `None` = no reply.
    pub fn render(&mut self, reply: Option<&Dict>) -> String {
        let Some(reply) = reply else {
            return format!("{NO_REPLY}\n");
        };
        let mut out = String::new();
        for key in ["result", "error-reason", "warning"] {
            match reply.get(key.as_bytes()) {
                None => {}
                Some(v) => match v.as_str() {
                    Some(s) => out.push_str(&format!("{key}: {s}\n")),
                    None => out.push_str(&format!("{key}: {v:?}\n")),
                },
            }
        }
        match reply.get(b"sdp".as_slice()) {
            None => {}
            Some(Value::Bytes(sdp)) => {
                out.push_str("sdp:\n");
                for line in self.sdp_lines(sdp) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
            Some(other) => out.push_str(&format!("sdp: (not a string) {other:?}\n")),
        }
        out
    }

    /// The SDP's lines, normalised and with their terminators made visible.
    pub fn sdp_lines(&mut self, sdp: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(sdp);
        let families = section_families(&text);
        let mut out = Vec::new();
        let mut rest: &str = &text;
        let mut index = 0;
        while !rest.is_empty() {
            let (line, marker, used) = match rest.find(['\r', '\n']) {
                None => (rest, "<NOEOL>", rest.len()),
                Some(i) => {
                    let tail = &rest[i..];
                    if tail.starts_with("\r\n") {
                        (&rest[..i], "", i + 2)
                    } else if tail.starts_with('\n') {
                        (&rest[..i], "<LF>", i + 1)
                    } else {
                        (&rest[..i], "<CR>", i + 1)
                    }
                }
            };
            rest = &rest[used..];
            self.family = families.get(index).copied().unwrap_or('?');
            index += 1;
            out.push(format!("{}{marker}", visible(&self.line(line))));
        }
        out
    }

    /// One line's content, normalised.
    fn line(&mut self, line: &str) -> String {
        if let Some(m) = line.strip_prefix("m=") {
            let mut f: Vec<String> = m.split(' ').map(str::to_owned).collect();
            if let Some(port) = f.get_mut(1) {
                let (p, count) = match port.split_once('/') {
                    Some((p, c)) => (p.to_owned(), format!("/{c}")),
                    None => (port.clone(), String::new()),
                };
                *port = format!("{}{count}", self.port(&p));
            }
            return format!("m={}", f.join(" "));
        }
        if let Some(o) = line.strip_prefix("o=") {
            let mut f: Vec<String> = o.split(' ').map(str::to_owned).collect();
            for i in [1, 2] {
                if let Some(v) = f.get_mut(i) {
                    *v = self.origin_number(v);
                }
            }
            return format!("o={}", f.join(" "));
        }
        if let Some(r) = line.strip_prefix("a=rtcp:") {
            let mut f: Vec<String> = r.split(' ').map(str::to_owned).collect();
            if let Some(p) = f.get_mut(0) {
                *p = self.port(p);
            }
            return format!("a=rtcp:{}", f.join(" "));
        }
        if let Some(c) = line.strip_prefix("a=candidate:") {
            let mut f: Vec<String> = c.split(' ').map(str::to_owned).collect();
            // A candidate's port belongs to its own address's family.
            if let (Some(addr), true) = (f.get(4), self.family != '?') {
                self.family = if addr.contains(':') { '6' } else { '4' };
            }
            if let Some(found) = f.get_mut(0) {
                *found = self.generated("FOUNDATION", found);
            }
            if let Some(p) = f.get_mut(5) {
                *p = self.port(p);
            }
            if let Some(i) = f.iter().position(|x| x == "rport") {
                if let Some(p) = f.get_mut(i + 1) {
                    *p = self.port(p);
                }
            }
            return format!("a=candidate:{}", f.join(" "));
        }
        for (prefix, kind) in [
            ("a=ice-ufrag:", "ICEUFRAG"),
            ("a=ice-pwd:", "ICEPWD"),
            ("a=tls-id:", "TLSID"),
        ] {
            if let Some(v) = line.strip_prefix(prefix) {
                return format!("{prefix}{}", self.generated(kind, v));
            }
        }
        if let Some(f) = line.strip_prefix("a=fingerprint:") {
            return match f.split_once(' ') {
                Some((hash, value)) => {
                    format!(
                        "a=fingerprint:{hash} {}",
                        self.generated("FINGERPRINT", value)
                    )
                }
                None => line.to_owned(),
            };
        }
        if let Some(c) = line.strip_prefix("a=crypto:") {
            let f: Vec<String> = c
                .split(' ')
                .map(|t| match t.strip_prefix("inline:") {
                    Some(key) => {
                        let (k, rest) = match key.split_once('|') {
                            Some((k, r)) => (k, format!("|{r}")),
                            None => (key, String::new()),
                        };
                        format!("inline:{}{rest}", self.generated("CRYPTOKEY", k))
                    }
                    None => t.to_owned(),
                })
                .collect();
            return format!("a=crypto:{}", f.join(" "));
        }
        if line.starts_with("a=rtpengine:") {
            return "a=rtpengine:LOOPPROTECT".to_owned();
        }
        line.to_owned()
    }

    /// A port number: a placeholder when the relay allocated it (it lies in the relay's range).
    fn port(&mut self, p: &str) -> String {
        let Ok(n) = p.parse::<u16>() else {
            return p.to_owned();
        };
        if n < self.range.0 || n > self.range.1 {
            return p.to_owned();
        }
        let fam = self.family;
        if let Some(name) = self.ports.get(&(fam, n)) {
            return name.clone();
        }
        let name = match n
            .checked_sub(1)
            .and_then(|below| self.ports.get(&(fam, below)))
        {
            Some(base) if n % 2 == 1 && !base.ends_with("+1") => format!("{base}+1"),
            _ => {
                self.next_port += 1;
                format!("PORT{}", self.next_port)
            }
        };
        self.ports.insert((fam, n), name.clone());
        name
    }

    /// An `o=` number: literal when it is (close to) one of the endpoint's, else a placeholder.
    fn origin_number(&mut self, v: &str) -> String {
        let Ok(n) = v.parse::<u64>() else {
            return v.to_owned();
        };
        if self.input_origin.iter().any(|&i| i.abs_diff(n) <= 1000) {
            return v.to_owned();
        }
        self.generated_always("ORIGIN", v)
    }

    /// A token the relay may have generated: literal when an input SDP has it, else a placeholder.
    fn generated(&mut self, kind: &'static str, v: &str) -> String {
        if self.input_tokens.contains(v) {
            return v.to_owned();
        }
        self.generated_always(kind, v)
    }

    fn generated_always(&mut self, kind: &'static str, v: &str) -> String {
        let key = (kind, v.to_owned());
        if let Some(name) = self.generated.get(&key) {
            return name.clone();
        }
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        let name = format!("{kind}{n}");
        self.generated.insert(key, name.clone());
        name
    }
}

/// Trailing spaces as `<SP>`, tabs as `<TAB>`.
fn visible(line: &str) -> String {
    let body = line.trim_end_matches(' ');
    let trailing = line.len() - body.len();
    format!("{}{}", body.replace('\t', "<TAB>"), "<SP>".repeat(trailing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::bencode::dict;

    fn reply(sdp: &str) -> Dict {
        dict([("result", "ok".into()), ("sdp", sdp.into())])
    }

    #[test]
    fn the_same_port_number_in_two_families_is_two_ports() {
        let mut n = Normalizer::new((30000, 30099), &[]);
        let v4 = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n".to_vec();
        let v6 = b"v=0\r\nc=IN IP6 ::1\r\nm=audio 30000 RTP/AVP 0\r\n".to_vec();
        assert!(n
            .sdp_lines(&v4)
            .contains(&"m=audio PORT1 RTP/AVP 0".to_owned()));
        assert!(n
            .sdp_lines(&v6)
            .contains(&"m=audio PORT2 RTP/AVP 0".to_owned()));
        assert!(n
            .sdp_lines(&v4)
            .contains(&"m=audio PORT1 RTP/AVP 0".to_owned()));
    }

    #[test]
    fn ports_origin_and_generated_values_become_placeholders() {
        let input = b"v=0\r\no=- 42 7 IN IP4 192.0.2.1\r\na=ice-ufrag:abcd\r\n";
        let mut n = Normalizer::new((30000, 30099), &[input]);
        let out = n.render(Some(&reply(
            "o=- 42 8 IN IP4 127.0.0.1\r\nm=audio 30010 RTP/AVP 0\r\na=rtcp:30011\r\n\
             a=ice-ufrag:abcd\r\na=ice-pwd:zzzz\r\na=candidate:Xy 1 UDP 2130706431 127.0.0.1 30010 typ host\r\n\
             m=video 30012/2 RTP/AVP 96\r\na=rtcp:40001 IN IP4 192.0.2.1\r\no=- 1775000000 1775000001 IN IP4 x\r\n\
             a=rtpengine:0123456789ab\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEYKEY|2^31\r\n\
             a=fingerprint:sha-256 AA:BB\r\n",
        )));
        assert_eq!(
            out,
            "result: ok\nsdp:\no=- 42 8 IN IP4 127.0.0.1\nm=audio PORT1 RTP/AVP 0\na=rtcp:PORT1+1\n\
             a=ice-ufrag:abcd\na=ice-pwd:ICEPWD1\na=candidate:FOUNDATION1 1 UDP 2130706431 127.0.0.1 PORT1 typ host\n\
             m=video PORT2/2 RTP/AVP 96\na=rtcp:40001 IN IP4 192.0.2.1\no=- ORIGIN1 ORIGIN2 IN IP4 x\n\
             a=rtpengine:LOOPPROTECT\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:CRYPTOKEY1|2^31\n\
             a=fingerprint:sha-256 FINGERPRINT1\n"
        );
        // The same port keeps its placeholder in a later step.
        assert_eq!(
            n.sdp_lines(b"m=audio 30010 RTP/AVP 0\r\n"),
            vec!["m=audio PORT1 RTP/AVP 0"]
        );
    }

    #[test]
    fn line_endings_and_whitespace_stay_visible() {
        let mut n = Normalizer::new((1, 2), &[]);
        assert_eq!(
            n.sdp_lines(b"v=0\r\ns=- \nt=0\t0\ra=x"),
            vec!["v=0", "s=-<SP><LF>", "t=0<TAB>0<CR>", "a=x<NOEOL>"]
        );
        assert_eq!(n.render(None), "(no reply)\n");
        let err = dict([
            ("result", "error".into()),
            ("error-reason", "Unknown call-id".into()),
        ]);
        assert_eq!(
            n.render(Some(&err)),
            "result: error\nerror-reason: Unknown call-id\n"
        );
    }
}
