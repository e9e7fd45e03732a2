//! SDP text → [`SessionDescription`]. Lenient about line endings (each line keeps its own) and
//! unknown lines (kept in order); the body ends at the first empty line, as in rtpengine;
//! strict about the lines we rely on (`v=`, `o=`, `c=`, `m=`).

use crate::sdp::error::SdpError;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::sdp::model::{
    Attribute, ConnAddress, Connection, Eol, Line, Media, MediaLine, Origin, SessionDescription,
    SessionLine, Spacing,
};

/// Bodies larger than this are refused (a SIP SDP is a few KiB; WebRTC offers reach ~20 KiB).
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// Parses one SDP body. Accepts LF or CRLF (each line keeps its own); never panics on any input.
/// Refuses what rtpengine refuses ("Failed to parse SDP"): a first line other than `v=0`, a
/// line type SDP does not have, `o=` or `s=` inside a media section, a second `o=` or a second
/// `c=` at one level, a `c=` that is not `IN IP4|IP6 <address>` with single spaces and an
/// address of its family, and a bad `m=` port.
pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
    if input.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge {
            len: input.len(),
            max: MAX_SDP_LEN,
        });
    }
    let text = String::from_utf8_lossy(input);
    let mut lines = lines(&text);

    let (_, first, version_eol) = lines.next().ok_or(SdpError::Empty)?;
    let version = first
        .strip_prefix("v=")
        .ok_or(SdpError::MissingVersion)?
        .to_owned();
    if version != "0" {
        return Err(SdpError::BadVersion);
    }

    let mut origin: Option<Origin> = None;
    let mut connection: Option<Connection> = None;
    let mut session_lines = Vec::new();
    let mut media: Vec<Media> = Vec::new();

    for (no, raw, eol) in lines {
        let (kind, value) = split_line(raw).ok_or(SdpError::BadLine { line: no })?;
        if !LINE_TYPES.contains(kind) {
            return Err(SdpError::UnknownLineType { line: no });
        }
        if kind == 'v' {
            return Err(SdpError::MultipleSessions { line: no });
        }
        if kind == 'm' {
            media.push(parse_media(value, no, eol)?);
            continue;
        }
        if let Some(m) = media.last_mut() {
            m.lines.push(match kind {
                'o' | 's' => return Err(SdpError::MisplacedLine { line: no }),
                'c' if m.connection.is_some() => return Err(SdpError::DuplicateLine { line: no }),
                'c' => {
                    m.connection = Some(parse_connection(value, no, eol)?);
                    MediaLine::Connection
                }
                'a' => MediaLine::Attribute(parse_attribute(value, eol)),
                _ => MediaLine::Other(Line {
                    kind,
                    value: value.to_owned(),
                    eol,
                }),
            });
            continue;
        }
        if (kind == 'o' && origin.is_some()) || (kind == 'c' && connection.is_some()) {
            return Err(SdpError::DuplicateLine { line: no });
        }
        session_lines.push(match kind {
            'o' => {
                origin = Some(parse_origin(value, no, eol)?);
                SessionLine::Origin
            }
            'c' => {
                connection = Some(parse_connection(value, no, eol)?);
                SessionLine::Connection
            }
            'a' => SessionLine::Attribute(parse_attribute(value, eol)),
            _ => SessionLine::Other(Line {
                kind,
                value: value.to_owned(),
                eol,
            }),
        });
    }

    Ok(SessionDescription {
        version,
        version_eol,
        origin,
        connection,
        lines: session_lines,
        media,
    })
}

/// The line types rtpengine reads (RFC 4566's, less the obsolete ones it does not know).
const LINE_TYPES: &str = "vosiuepcbtrzkam";

/// Where the SDP of a message body ends, as rtpengine reads it: at the first empty line
/// (what follows is not SDP), else at the end. A last line of a single character without a
/// line ending (a stray byte after the body) does not count either.
pub fn body_len(input: &[u8]) -> usize {
    let mut at = 0;
    for line in input.split_inclusive(|&b| b == b'\n') {
        if matches!(line.first(), Some(b'\n' | b'\r')) {
            return at;
        }
        if line.len() == 1 && at + 1 == input.len() {
            return at;
        }
        at += line.len();
    }
    at
}

/// The lines of the body, numbered from 1, with their endings. A last line without one gets
/// the ending of the line before it (CRLF for a body of one line); one ending in a lone CR, CRLF.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str, Eol)> {
    let body = text.get(..body_len(text.as_bytes())).unwrap_or("");
    let mut previous = Eol::Crlf;
    body.split_inclusive('\n').enumerate().map(move |(i, l)| {
        let (l, eol) = match l.strip_suffix('\n') {
            Some(l) => match l.strip_suffix('\r') {
                Some(l) => (l, Eol::Crlf),
                None => (l, Eol::Lf),
            },
            // A last line that ends in a lone CR: the CR is its ending, not part of the value
            // (else the value written back with a CRLF would not read the same again).
            None => match l.strip_suffix('\r') {
                Some(l) => (l, Eol::Crlf),
                None => (l, previous),
            },
        };
        previous = eol;
        (i + 1, l, eol)
    })
}

/// `<letter>=<value>`.
fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let kind = chars.next()?;
    if !kind.is_ascii_alphabetic() || chars.next()? != '=' {
        return None;
    }
    Some((kind, &line[2..]))
}

fn parse_attribute(value: &str, eol: Eol) -> Attribute {
    let (name, value) = match value.split_once(':') {
        Some((name, v)) => (name, Some(v.to_owned())),
        None => (value, None),
    };
    Attribute {
        name: name.to_owned(),
        value,
        eol,
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`: six fields; the
/// address is not checked (rtpengine does not either), text after it is kept.
fn parse_origin(value: &str, line: usize, eol: Eol) -> Result<Origin, SdpError> {
    let spaces = |s: &str| s.len() - s.trim_start_matches(' ').len();
    let lead = spaces(value);
    let mut rest = value.get(lead..).unwrap_or("");
    let mut fields = Vec::with_capacity(6);
    let mut gaps = Vec::with_capacity(5);
    while fields.len() < 6 {
        if !fields.is_empty() {
            let gap = spaces(rest);
            gaps.push(rest.get(..gap).unwrap_or(" ").to_owned());
            rest = rest.get(gap..).unwrap_or("");
        }
        let end = rest.find(' ').unwrap_or(rest.len());
        if end == 0 {
            return Err(SdpError::BadOrigin { line });
        }
        fields.push(rest.get(..end).unwrap_or(""));
        rest = rest.get(end..).unwrap_or("");
    }
    let [username, session_id, version, net_type, addr_type, address] = fields[..] else {
        return Err(SdpError::BadOrigin { line });
    };
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        version: version.to_owned(),
        net_type: net_type.to_owned(),
        address: ConnAddress {
            addr_type: addr_type.to_owned(),
            address: address.to_owned(),
        },
        spacing: Spacing {
            lead: value.get(..lead).unwrap_or("").to_owned(),
            gaps,
            tail: rest.to_owned(),
        },
        eol,
    })
}

/// `c=IN IP4|IP6 <address>`, read as rtpengine reads it: fields separated by single spaces,
/// `IN` (or `in`), `IP4` or `IP6`, and a literal address of that family (no hostname, no
/// multicast `/ttl`). Text after the address is kept.
fn parse_connection(value: &str, line: usize, eol: Eol) -> Result<Connection, SdpError> {
    let bad = SdpError::BadConnection { line };
    let (net_type, rest) = value.split_once(' ').ok_or(bad.clone())?;
    let (addr_type, rest) = rest.split_once(' ').ok_or(bad.clone())?;
    let (address, tail) = rest.split_at(rest.find(' ').unwrap_or(rest.len()));
    if !matches!(net_type, "IN" | "in") {
        return Err(bad);
    }
    let ok = match addr_type {
        "IP4" => address.parse::<Ipv4Addr>().is_ok(),
        "IP6" => address.parse::<Ipv6Addr>().is_ok(),
        _ => false,
    };
    if !ok {
        return Err(bad);
    }
    Ok(Connection {
        net_type: net_type.to_owned(),
        address: ConnAddress {
            addr_type: addr_type.to_owned(),
            address: address.to_owned(),
        },
        tail: tail.to_owned(),
        eol,
    })
}

/// Takes the next space-separated token, skipping leading spaces.
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    Some(match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    })
}

/// The port field of `m=` as rtpengine reads it: leading digits up to 65535, then `/<count>`
/// with a count of 1 to 10 (its leading digits), or anything else, which is ignored.
fn parse_port(text: &str) -> Option<(u16, Option<u16>)> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let n = digits(text);
    let port: u16 = text.get(..n)?.parse().ok()?;
    let count = match text.get(n..)?.strip_prefix('/') {
        Some(c) => {
            let count: u16 = c.get(..digits(c))?.parse().unwrap_or(0);
            if !(1..=10).contains(&count) {
                return None;
            }
            Some(count)
        }
        None => None,
    };
    Some((port, count))
}

/// `m=<kind> <port>[/<count>] <proto> <fmt>...`. The format list keeps empty tokens so that a
/// trailing space survives a round trip.
fn parse_media(value: &str, line: usize, eol: Eol) -> Result<Media, SdpError> {
    let bad = SdpError::BadMedia { line };
    let (kind, rest) = token(value).ok_or(bad.clone())?;
    let (port_text, rest) = token(rest).ok_or(bad.clone())?;
    let (proto, rest) = token(rest).ok_or(bad)?;
    let (port, port_count) = parse_port(port_text).ok_or(SdpError::BadPort { line })?;
    let formats = match rest.strip_prefix(' ') {
        Some(list) => list.split(' ').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    Ok(Media {
        kind: kind.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        connection: None,
        lines: Vec::new(),
        eol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "v=0\no=- 1 2 IN IP4 192.0.2.10\ns=-\nt=0 0\nm=audio 5004 RTP/AVP 0\n";

    #[test]
    fn minimal_lf_body() {
        let sd = parse(MINIMAL.as_bytes()).expect("parses");
        let origin = sd.origin.as_ref().expect("o=");
        assert_eq!(origin.session_id, "1");
        assert_eq!(origin.version_num(), Some(2));
        assert_eq!(sd.media.len(), 1);
        assert_eq!(sd.media[0].port, 5004);
        assert_eq!(sd.media[0].formats, vec!["0"]);
        // Each line keeps its own ending.
        assert_eq!(sd.to_string(), MINIMAL);
        let mixed = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\ns=-\r\nt=0 0\nm=audio 5004 RTP/AVP 0\r\n";
        assert_eq!(parse(mixed.as_bytes()).expect("parses").to_string(), mixed);
        // A last line without an ending gets the one of the line before.
        let open = MINIMAL.trim_end();
        assert_eq!(parse(open.as_bytes()).expect("parses").to_string(), MINIMAL);
    }

    #[test]
    fn an_empty_line_ends_the_body() {
        let body = format!("{MINIMAL}\r\n\r\n  \n");
        let sd = parse(body.as_bytes()).expect("parses");
        assert_eq!(sd.to_string(), MINIMAL);
        let body = format!("{MINIMAL}\na=after-the-end\n");
        assert_eq!(parse(body.as_bytes()).expect("parses").to_string(), MINIMAL);
        // A stray last byte is not a line either.
        let body = format!("{MINIMAL}x");
        assert_eq!(parse(body.as_bytes()).expect("parses").to_string(), MINIMAL);
        assert_eq!(body_len(b"\r\nv=0\r\n"), 0);
    }

    #[test]
    fn trailing_space_in_format_list_round_trips() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=application 0 * \r\n";
        let sd = parse(body.as_bytes()).expect("parses");
        assert_eq!(sd.media[0].proto, "*");
        assert_eq!(sd.to_string(), body);
    }

    #[test]
    fn port_count() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=video 49170/2 RTP/AVP 31\r\n";
        let sd = parse(body.as_bytes()).expect("parses");
        assert_eq!(sd.media[0].port, 49170);
        assert_eq!(sd.media[0].port_count, Some(2));
        assert_eq!(sd.to_string(), body);
    }

    #[test]
    fn rejects_garbage() {
        let cases: &[(&str, SdpError)] = &[
            ("", SdpError::Empty),
            ("hello\r\n", SdpError::MissingVersion),
            (
                "o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n",
                SdpError::MissingVersion,
            ),
            ("v=1\r\ns=-\r\n", SdpError::BadVersion),
            ("v=0 \r\ns=-\r\n", SdpError::BadVersion),
            (
                "v=0\r\no=- 1 IN IP4 192.0.2.1\r\n",
                SdpError::BadOrigin { line: 2 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=- 2 2 IN IP4 192.0.2.1\r\n",
                SdpError::DuplicateLine { line: 3 },
            ),
            (
                "v=0\r\nc=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.9\r\n",
                SdpError::DuplicateLine { line: 3 },
            ),
            (
                "v=0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.2\r\nc=IN IP4 192.0.2.3\r\n",
                SdpError::DuplicateLine { line: 4 },
            ),
            (
                "v=0\r\nm=audio 1 RTP/AVP 0\r\ns=x\r\n",
                SdpError::MisplacedLine { line: 3 },
            ),
            (
                "v=0\r\nm=audio 1 RTP/AVP 0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
                SdpError::MisplacedLine { line: 3 },
            ),
            ("v=0\r\nx=foo\r\n", SdpError::UnknownLineType { line: 2 }),
            ("v=0\r\n   \r\n", SdpError::BadLine { line: 2 }),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 1000\r\n",
                SdpError::BadMedia { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio x RTP/AVP 0\r\n",
                SdpError::BadPort { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 70000 RTP/AVP 0\r\n",
                SdpError::BadPort { line: 3 },
            ),
            (
                "v=0\r\nm=audio -4 RTP/AVP 0\r\n",
                SdpError::BadPort { line: 2 },
            ),
            (
                "v=0\r\nm=audio 4000/11 RTP/AVP 0\r\n",
                SdpError::BadPort { line: 2 },
            ),
            (
                "v=0\r\nm=audio 4000/x RTP/AVP 0\r\n",
                SdpError::BadPort { line: 2 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\njunk\r\n",
                SdpError::BadLine { line: 3 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n",
                SdpError::MultipleSessions { line: 3 },
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse(body.as_bytes()).as_ref(), Err(want), "body {body:?}");
        }
    }

    #[test]
    fn size_limit() {
        let mut body = MINIMAL.as_bytes().to_vec();
        body.resize(MAX_SDP_LEN + 1, b'\n');
        assert!(matches!(parse(&body), Err(SdpError::TooLarge { .. })));
    }

    #[test]
    fn connection_lines_as_rtpengine_reads_them() {
        let bad = [
            "c=IN IP4",
            "c=IN IP4 999.1.1.1",
            "c=IN IP4 pbx.example.com",
            "c=IN IP5 192.0.2.1",
            "c=XX IP4 192.0.2.1",
            "c=IN IP4 2001:db8::1",
            "c=IN IP6 192.0.2.1",
            "c=IN IP4 224.2.1.1/127",
            "c=IN ip4 192.0.2.1",
            "c=IN  IP4 192.0.2.1",
            "c=IN IP4  192.0.2.1",
            "c=IN\tIP4 192.0.2.1",
        ];
        for c in bad {
            let body = format!("v=0\r\n{c}\r\nm=audio 1 RTP/AVP 0\r\n");
            assert_eq!(
                parse(body.as_bytes()),
                Err(SdpError::BadConnection { line: 2 }),
                "{c}"
            );
        }
        // Text after the address and a lowercase network type are kept.
        for c in [
            "c=in IP4 192.0.2.1",
            "c=IN IP4 192.0.2.1 extra",
            "c=IN IP4 192.0.2.1 ",
            "c=IN IP6 ::ffff:192.0.2.1",
        ] {
            let body = format!("v=0\r\n{c}\r\nm=audio 1 RTP/AVP 0\r\n");
            let sd = parse(body.as_bytes()).expect(c);
            assert_eq!(sd.to_string(), body);
        }
    }

    #[test]
    fn origin_is_optional_and_keeps_its_spacing() {
        let body = "v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nm=audio 1 RTP/AVP 0\r\n";
        let sd = parse(body.as_bytes()).expect("no o= is accepted");
        assert!(sd.origin.is_none());
        assert_eq!(sd.to_string(), body);
        for o in [
            "o=-  1 1 IN IP4 192.0.2.1",
            "o=- 1 1 IN IP4 192.0.2.1 extra",
            "o=- 1 1 IN IP4 bogus",
        ] {
            let body = format!("v=0\r\n{o}\r\nm=audio 1 RTP/AVP 0\r\n");
            let mut sd = parse(body.as_bytes()).expect(o);
            assert_eq!(sd.to_string(), body);
            if let Some(origin) = sd.origin.as_mut() {
                origin.version = "7".into();
            }
            assert!(sd.to_string().contains(" 7 IN IP4 "), "{o}");
        }
    }

    #[test]
    fn media_ports_as_rtpengine_reads_them() {
        let port = |m: &str| {
            let body = format!("v=0\r\nm={m}\r\n");
            parse(body.as_bytes()).map(|sd| (sd.media[0].port, sd.media[0].port_count))
        };
        assert_eq!(port("audio 4000abc RTP/AVP 0"), Ok((4000, None)));
        assert_eq!(port("audio 4000/2x RTP/AVP 0"), Ok((4000, Some(2))));
        assert_eq!(port("audio 65535/10 RTP/AVP 0"), Ok((65535, Some(10))));
        assert_eq!(
            port("audio 4000/0 RTP/AVP 0"),
            Err(SdpError::BadPort { line: 2 })
        );
    }
}
