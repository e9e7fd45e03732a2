//! SDP text → [`SessionDescription`]. Lenient about line endings (each line keeps its own) and
//! unknown lines (kept in order); the body ends at the first empty line, as in rtpengine;
//! strict about the lines we rely on (`v=`, `o=`, `c=`, `m=`).

use crate::sdp::error::SdpError;
use crate::sdp::model::{
    Attribute, ConnAddress, Connection, Eol, Line, Media, MediaLine, Origin, SessionDescription,
    SessionLine,
};

/// Bodies larger than this are refused (a SIP SDP is a few KiB; WebRTC offers reach ~20 KiB).
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// Parses one SDP body. Accepts LF or CRLF (each line keeps its own); never panics on any input.
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

    let mut origin: Option<Origin> = None;
    let mut connection: Option<Connection> = None;
    let mut session_lines = Vec::new();
    let mut media: Vec<Media> = Vec::new();

    for (no, raw, eol) in lines {
        let (kind, value) = split_line(raw).ok_or(SdpError::BadLine { line: no })?;
        if kind == 'v' {
            return Err(SdpError::MultipleSessions { line: no });
        }
        if kind == 'm' {
            if origin.is_none() {
                return Err(SdpError::MissingOrigin);
            }
            media.push(parse_media(value, no, eol)?);
            continue;
        }
        if let Some(m) = media.last_mut() {
            m.lines.push(match kind {
                'c' if m.connection.is_none() => {
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
        session_lines.push(match kind {
            'o' if origin.is_none() => {
                origin = Some(parse_origin(value, no, eol)?);
                SessionLine::Origin
            }
            'c' if connection.is_none() => {
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
        origin: origin.ok_or(SdpError::MissingOrigin)?,
        connection,
        lines: session_lines,
        media,
    })
}

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
/// the ending of the line before it (CRLF for a body of one line).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str, Eol)> {
    let body = text.get(..body_len(text.as_bytes())).unwrap_or("");
    let mut previous = Eol::Crlf;
    body.split_inclusive('\n').enumerate().map(move |(i, l)| {
        let (l, eol) = match l.strip_suffix('\n') {
            Some(l) => match l.strip_suffix('\r') {
                Some(l) => (l, Eol::Crlf),
                None => (l, Eol::Lf),
            },
            None => (l, previous),
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

fn parse_origin(value: &str, line: usize, eol: Eol) -> Result<Origin, SdpError> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [username, session_id, version, net_type, addr_type, address] = f[..] else {
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
        eol,
    })
}

fn parse_connection(value: &str, line: usize, eol: Eol) -> Result<Connection, SdpError> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [net_type, addr_type, address] = f[..] else {
        return Err(SdpError::BadConnection { line });
    };
    Ok(Connection {
        net_type: net_type.to_owned(),
        address: ConnAddress {
            addr_type: addr_type.to_owned(),
            address: address.to_owned(),
        },
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

/// `m=<kind> <port>[/<count>] <proto> <fmt>...`. The format list keeps empty tokens so that a
/// trailing space survives a round trip.
fn parse_media(value: &str, line: usize, eol: Eol) -> Result<Media, SdpError> {
    let bad = SdpError::BadMedia { line };
    let (kind, rest) = token(value).ok_or(bad.clone())?;
    let (port_text, rest) = token(rest).ok_or(bad.clone())?;
    let (proto, rest) = token(rest).ok_or(bad)?;
    let (port, count) = match port_text.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_text, None),
    };
    let port: u16 = port.parse().map_err(|_| SdpError::BadPort { line })?;
    let port_count = match count {
        Some(c) => Some(c.parse::<u16>().map_err(|_| SdpError::BadPort { line })?),
        None => None,
    };
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
        assert_eq!(sd.origin.session_id, "1");
        assert_eq!(sd.origin.version_num(), Some(2));
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
            ("v=0\r\ns=-\r\n", SdpError::MissingOrigin),
            ("v=0\r\nm=audio 1 RTP/AVP 0\r\n", SdpError::MissingOrigin),
            (
                "v=0\r\no=- 1 IN IP4 192.0.2.1\r\n",
                SdpError::BadOrigin { line: 2 },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4\r\n",
                SdpError::BadConnection { line: 3 },
            ),
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
    fn second_connection_line_kept_as_text() {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 1000 RTP/AVP 0\r\nc=IN IP4 192.0.2.2\r\nc=IN IP4 192.0.2.3\r\n";
        let sd = parse(body.as_bytes()).expect("parses");
        assert_eq!(sd.media[0].lines.len(), 2);
        assert!(matches!(sd.media[0].lines[1], MediaLine::Other(_)));
        assert_eq!(sd.to_string(), body);
    }
}
