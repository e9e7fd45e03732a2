//! What the HTTP listener accepts before it runs anything: the `Host` a request names and the
//! content type of an NG body. Sans-IO.
//!
//! - Content type: `/ng` and `/ng-plain` take `application/x-rtpengine-ng` or `application/json`
//!   (parameters such as `; charset=utf-8` allowed), as rtpengine does; anything else is 415. A
//!   web page can send a cross-site POST without asking first only as `text/plain`, a form type
//!   or `multipart/form-data`, so this is what keeps a browser on another site from driving NG
//!   (CSRF). We send no CORS headers, so the preflight a browser needs for our types fails.
//! - `Host`: IP literals (`192.0.2.1`, `[2001:db8::1]`, with or without a port), `localhost`, and
//!   the names the operator lists (the daemon adds the machine's hostname). A page on an
//!   attacker's domain that rebinds its name to the relay's address (DNS rebinding) still sends
//!   its own name as `Host`, and is refused. Browsers always send `Host`; an HTTP/1.0 request
//!   without one comes from a tool, and is let through.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The content type rtpengine documents for `/ng`.
pub const CT_NG: &str = "application/x-rtpengine-ng";
/// JSON NG bodies.
pub const CT_JSON: &str = "application/json";

/// How an NG request body is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NgContentType {
    Ng,
    Json,
}

/// The NG content type of a `Content-Type` header value, or `None` (no header, or another type).
pub fn ng_content_type(value: Option<&[u8]>) -> Option<NgContentType> {
    let value = std::str::from_utf8(value?).ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case(CT_NG) {
        Some(NgContentType::Ng)
    } else if media.eq_ignore_ascii_case(CT_JSON) {
        Some(NgContentType::Json)
    } else {
        None
    }
}

/// The host names (besides IP literals and `localhost`) a request may name.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    names: Vec<String>,
}

impl Default for HostPolicy {
    /// IP literals and `localhost` only.
    fn default() -> HostPolicy {
        HostPolicy::new([])
    }
}

impl HostPolicy {
    /// Accepts IP literals, `localhost` and `names` (compared without case, trailing dot
    /// ignored).
    pub fn new(names: impl IntoIterator<Item = String>) -> HostPolicy {
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| normalise(&n))
            .filter(|n| !n.is_empty())
            .collect();
        names.push("localhost".into());
        names.sort();
        names.dedup();
        HostPolicy { names }
    }

    /// True if a request with this `Host` header value may be served.
    pub fn allows(&self, host: &[u8]) -> bool {
        let Ok(host) = std::str::from_utf8(host) else {
            return false;
        };
        let host = host.trim();
        if let Some(rest) = host.strip_prefix('[') {
            let Some((ip, after)) = rest.split_once(']') else {
                return false;
            };
            return ip.parse::<Ipv6Addr>().is_ok() && port_ok(after);
        }
        let (name, after) = match host.find(':') {
            Some(i) => host.split_at(i),
            None => (host, ""),
        };
        if name.is_empty() || !port_ok(after) {
            return false;
        }
        name.parse::<Ipv4Addr>().is_ok() || self.names.contains(&normalise(name))
    }
}

/// Empty, or `:` and a port number.
fn port_ok(s: &str) -> bool {
    match s.strip_prefix(':') {
        None => s.is_empty(),
        Some(p) => !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok(),
    }
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ng_content_types() {
        let ct = |s: &str| ng_content_type(Some(s.as_bytes()));
        assert_eq!(ct("application/x-rtpengine-ng"), Some(NgContentType::Ng));
        assert_eq!(ct("Application/X-RTPengine-NG"), Some(NgContentType::Ng));
        assert_eq!(ct("application/json"), Some(NgContentType::Json));
        assert_eq!(
            ct("application/json; charset=utf-8"),
            Some(NgContentType::Json)
        );
        // What a browser may send cross-site without a preflight.
        assert_eq!(ct("text/plain"), None);
        assert_eq!(ct("application/x-www-form-urlencoded"), None);
        assert_eq!(ct("multipart/form-data; boundary=x"), None);
        assert_eq!(ct("application/jsonx"), None);
        assert_eq!(ct(""), None);
        assert_eq!(ng_content_type(None), None);
        assert_eq!(ng_content_type(Some(&[0xff, 0xfe])), None);
    }

    #[test]
    fn hosts() {
        let p = HostPolicy::new(["Relay1.example.net.".to_string()]);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:2225",
            "192.0.2.7:80",
            "[::1]",
            "[::1]:2225",
            "[2001:db8::5]:8080",
            "localhost",
            "LOCALHOST:2225",
            "relay1.example.net",
            "relay1.example.net.:2225",
        ] {
            assert!(p.allows(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "evil.example.com",
            "evil.example.com:2225",
            "localhost.evil.example.com",
            "127.0.0.1.evil.example.com",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:22:22",
            "::1",
            "[::1",
            "[::1]x",
            "[not-an-ip]:80",
            ":2225",
        ] {
            assert!(!p.allows(bad.as_bytes()), "{bad}");
        }
        assert!(!p.allows(&[0xff]));
        let d = HostPolicy::default();
        assert!(d.allows(b"localhost:2225") && d.allows(b"10.0.0.1"));
        assert!(!d.allows(b"relay1.example.net"));
    }
}
