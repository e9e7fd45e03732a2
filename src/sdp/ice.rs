//! A typed view of ICE's SDP attributes (RFC 8839): `a=candidate` (§5.1, with RFC 6544's
//! `tcptype`), `a=ice-ufrag`, `a=ice-pwd`, `a=ice-options`, `a=ice-lite`,
//! `a=end-of-candidates`.
//!
//! ```text
//! candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
//!           [raddr <address>] [rport <port>] *(<extension name> <extension value>)
//! ```
//!
//! As with `a=crypto`, the model keeps the lines as text; this module reads a [`Candidate`] out
//! of one ([`Candidate::from_attribute`], [`IceAttributes::from_media`]) and writes one
//! ([`Candidate::to_attribute`]). Every field is bounded: an SDP is hostile input.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::sdp::model::{Attribute, Media, SessionDescription};

/// RFC 8839 §5.1: a foundation is 1 to 32 ice-chars.
const MAX_FOUNDATION: usize = 32;
/// RFC 8839 §5.4: ufrag 4 to 256 ice-chars, password 22 to 256. A password is taken from 8
/// chars: the 22 bind whoever makes one, and older stacks send 16 or 17 (rtpengine takes them;
/// a short one weakens only its sender's own checks).
const UFRAG_LEN: std::ops::RangeInclusive<usize> = 4..=256;
const PWD_LEN: std::ops::RangeInclusive<usize> = 8..=256;
/// The longest candidate value we read; real ones are under 200 bytes.
pub const MAX_CANDIDATE_LEN: usize = 1024;
/// Extension pairs kept per candidate.
pub const MAX_EXTENSIONS: usize = 16;
/// Candidates read per media section; the rest are counted in
/// [`IceAttributes::ignored_candidates`].
pub const MAX_CANDIDATES: usize = 64;
/// ice-options tags kept.
const MAX_OPTIONS: usize = 16;
/// An FQDN connection address (RFC 8839 allows one, e.g. an mDNS `.local` name).
const MAX_HOST_LEN: usize = 255;

/// Why an ICE attribute value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceSdpError {
    /// Longer than [`MAX_CANDIDATE_LEN`].
    #[error("candidate attribute too long")]
    TooLong,
    /// A mandatory field is missing.
    #[error("candidate attribute without {0}")]
    Missing(&'static str),
    /// A field has a bad value.
    #[error("bad candidate {0}")]
    Bad(&'static str),
    /// More than [`MAX_EXTENSIONS`] extensions, or a name without a value.
    #[error("bad candidate extensions")]
    Extensions,
    /// A ufrag or password outside the RFC's length or alphabet.
    #[error("bad ICE {0}")]
    BadCredential(&'static str),
}

/// RFC 8839 `ice-char`: ALPHA / DIGIT / "+" / "/".
pub fn is_ice_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// RFC 4566 `token` characters (for transports and extension names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
}

/// The candidate type (`typ`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateType {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relayed,
    /// Another token, kept.
    Other(String),
}

impl CandidateType {
    pub fn as_str(&self) -> &str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relayed => "relay",
            CandidateType::Other(s) => s,
        }
    }
    fn from_token(s: &str) -> Self {
        match s {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::ServerReflexive,
            "prflx" => CandidateType::PeerReflexive,
            "relay" => CandidateType::Relayed,
            other => CandidateType::Other(other.to_owned()),
        }
    }
    /// RFC 8445 §5.1.2.2's recommended type preference.
    pub fn preference(&self) -> u32 {
        match self {
            CandidateType::Host => 126,
            CandidateType::PeerReflexive => 110,
            CandidateType::ServerReflexive => 100,
            CandidateType::Relayed | CandidateType::Other(_) => 0,
        }
    }
}

/// The transport field: `UDP`, `TCP` (RFC 6544) or another token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Other(String),
}

impl Transport {
    fn from_token(s: &str) -> Self {
        if s.eq_ignore_ascii_case("udp") {
            Transport::Udp
        } else if s.eq_ignore_ascii_case("tcp") {
            Transport::Tcp
        } else {
            Transport::Other(s.to_owned())
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Other(s) => s,
        }
    }
}

/// RFC 6544 `tcptype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpType {
    Active,
    Passive,
    SimultaneousOpen,
}

impl TcpType {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::SimultaneousOpen => "so",
        }
    }
}

/// One `a=candidate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub foundation: String,
    /// 1 (RTP) to 256.
    pub component: u16,
    pub transport: Transport,
    pub priority: u32,
    /// An IP address or an FQDN (mDNS names from browsers); see [`Candidate::ip`].
    pub address: String,
    pub port: u16,
    pub typ: CandidateType,
    pub raddr: Option<String>,
    pub rport: Option<u16>,
    pub tcptype: Option<TcpType>,
    /// The non-standard but common `generation` extension.
    pub generation: Option<u32>,
    /// Other extensions, name and value, in order.
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// The connection address when it is an IP address (not an FQDN).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Reads `a=candidate`; `None` for another attribute.
    pub fn from_attribute(a: &Attribute) -> Option<Result<Candidate, IceSdpError>> {
        if !a.is("candidate") {
            return None;
        }
        Some(a.value.as_deref().unwrap_or("").parse())
    }

    /// `a=candidate:<value>`.
    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("candidate", Some(self.to_string()))
    }
}

fn parse_port(s: &str, what: &'static str) -> Result<u16, IceSdpError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IceSdpError::Bad(what));
    }
    s.parse().map_err(|_| IceSdpError::Bad(what))
}

fn parse_address(s: &str, what: &'static str) -> Result<String, IceSdpError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_HOST_LEN
        && (s.parse::<IpAddr>().is_ok()
            || s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(IceSdpError::Bad(what))
    }
}

impl FromStr for Candidate {
    type Err = IceSdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_CANDIDATE_LEN {
            return Err(IceSdpError::TooLong);
        }
        // Some endpoints repeat the attribute name in trickled values.
        let s = s.strip_prefix("candidate:").unwrap_or(s);
        let mut it = s.split_ascii_whitespace();
        let foundation = it.next().ok_or(IceSdpError::Missing("foundation"))?;
        if foundation.len() > MAX_FOUNDATION || !is_ice_chars(foundation) {
            return Err(IceSdpError::Bad("foundation"));
        }
        let component = it.next().ok_or(IceSdpError::Missing("component"))?;
        let component = match component.parse::<u16>() {
            Ok(c @ 1..=256) if component.len() <= 3 => c,
            _ => return Err(IceSdpError::Bad("component")),
        };
        let transport = it.next().ok_or(IceSdpError::Missing("transport"))?;
        if !is_token(transport) {
            return Err(IceSdpError::Bad("transport"));
        }
        let priority = it.next().ok_or(IceSdpError::Missing("priority"))?;
        if priority.len() > 10 || !priority.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IceSdpError::Bad("priority"));
        }
        let priority: u32 = priority.parse().map_err(|_| IceSdpError::Bad("priority"))?;
        let address = parse_address(it.next().ok_or(IceSdpError::Missing("address"))?, "address")?;
        let port = parse_port(it.next().ok_or(IceSdpError::Missing("port"))?, "port")?;
        if it.next() != Some("typ") {
            return Err(IceSdpError::Missing("typ"));
        }
        let typ = it.next().ok_or(IceSdpError::Missing("type"))?;
        if !is_token(typ) {
            return Err(IceSdpError::Bad("type"));
        }
        let mut c = Candidate {
            foundation: foundation.to_owned(),
            component,
            transport: Transport::from_token(transport),
            priority,
            address,
            port,
            typ: CandidateType::from_token(typ),
            raddr: None,
            rport: None,
            tcptype: None,
            generation: None,
            extensions: Vec::new(),
        };
        while let Some(name) = it.next() {
            let value = it.next().ok_or(IceSdpError::Extensions)?;
            match name {
                "raddr" if c.raddr.is_none() => c.raddr = Some(parse_address(value, "raddr")?),
                "rport" if c.rport.is_none() => c.rport = Some(parse_port(value, "rport")?),
                "tcptype" if c.tcptype.is_none() => {
                    c.tcptype = Some(match value {
                        "active" => TcpType::Active,
                        "passive" => TcpType::Passive,
                        "so" => TcpType::SimultaneousOpen,
                        _ => return Err(IceSdpError::Bad("tcptype")),
                    })
                }
                "generation" if c.generation.is_none() => {
                    c.generation = Some(value.parse().map_err(|_| IceSdpError::Bad("generation"))?)
                }
                _ => {
                    if !is_token(name)
                        || !value.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
                        || c.extensions.len() >= MAX_EXTENSIONS
                    {
                        return Err(IceSdpError::Extensions);
                    }
                    c.extensions.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Ok(c)
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport.as_str(),
            self.priority,
            self.address,
            self.port,
            self.typ.as_str()
        )?;
        if let Some(a) = &self.raddr {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.rport {
            write!(f, " rport {p}")?;
        }
        if let Some(t) = self.tcptype {
            write!(f, " tcptype {}", t.as_str())?;
        }
        if let Some(g) = self.generation {
            write!(f, " generation {g}")?;
        }
        for (n, v) in &self.extensions {
            write!(f, " {n} {v}")?;
        }
        Ok(())
    }
}

/// Checks a ufrag (4 to 256 ice-chars).
pub fn check_ufrag(s: &str) -> Result<(), IceSdpError> {
    if UFRAG_LEN.contains(&s.len()) && is_ice_chars(s) {
        Ok(())
    } else {
        Err(IceSdpError::BadCredential("ufrag"))
    }
}

/// Checks a password (8 to 256 ice-chars).
pub fn check_pwd(s: &str) -> Result<(), IceSdpError> {
    if PWD_LEN.contains(&s.len()) && is_ice_chars(s) {
        Ok(())
    } else {
        Err(IceSdpError::BadCredential("pwd"))
    }
}

/// The ICE attributes of one media section, with the session-level ones it inherits
/// (`ice-ufrag`, `ice-pwd`, `ice-options` may be at either level; `ice-lite` is session-level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceAttributes {
    /// Valid ufrag, media level first.
    pub ufrag: Option<String>,
    /// Valid password, media level first.
    pub pwd: Option<String>,
    /// `ice-options` tags (`trickle`, `ice2`...).
    pub options: Vec<String>,
    pub lite: bool,
    pub end_of_candidates: bool,
    /// Candidates that parsed, at most [`MAX_CANDIDATES`].
    pub candidates: Vec<Candidate>,
    /// Candidate lines that did not parse, or came after the cap.
    pub ignored_candidates: usize,
    /// A credential was present but invalid.
    pub bad_credentials: bool,
}

impl IceAttributes {
    /// `trickle` is among the options.
    pub fn trickle(&self) -> bool {
        self.options.iter().any(|o| o == "trickle")
    }

    /// Reads the attributes of `media`, inheriting from `session` (when given).
    pub fn from_media(session: Option<&SessionDescription>, media: &Media) -> Self {
        let mut out = IceAttributes::default();
        out.read(media.attributes(), true);
        if let Some(s) = session {
            out.read(s.attributes(), false);
        }
        out
    }

    fn read<'a>(&mut self, attrs: impl Iterator<Item = &'a Attribute>, media_level: bool) {
        for a in attrs {
            let value = a.value.as_deref().map(str::trim).unwrap_or("");
            if a.is("ice-ufrag") && self.ufrag.is_none() {
                match check_ufrag(value) {
                    Ok(()) => self.ufrag = Some(value.to_owned()),
                    Err(_) => self.bad_credentials = true,
                }
            } else if a.is("ice-pwd") && self.pwd.is_none() {
                match check_pwd(value) {
                    Ok(()) => self.pwd = Some(value.to_owned()),
                    Err(_) => self.bad_credentials = true,
                }
            } else if a.is("ice-options") {
                for tag in value.split_ascii_whitespace() {
                    if self.options.len() < MAX_OPTIONS
                        && tag.len() <= 64
                        && is_ice_chars_or_dash(tag)
                        && !self.options.iter().any(|o| o == tag)
                    {
                        self.options.push(tag.to_owned());
                    }
                }
            } else if a.is("ice-lite") {
                self.lite = true;
            } else if media_level && a.is("end-of-candidates") {
                self.end_of_candidates = true;
            } else if media_level {
                match Candidate::from_attribute(a) {
                    Some(Ok(c)) if self.candidates.len() < MAX_CANDIDATES => {
                        self.candidates.push(c)
                    }
                    Some(_) => self.ignored_candidates += 1,
                    None => {}
                }
            } else if a.is("end-of-candidates") {
                self.end_of_candidates = true;
            }
        }
    }
}

/// Option tags in the wild (`ice2`, `trickle`, `renomination`) are ice-chars; some carry `-`.
fn is_ice_chars_or_dash(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::parse;

    const GOOD: &[&str] = &[
        "1 1 UDP 2130706431 192.0.2.10 40000 typ host",
        "842163049 1 udp 1677729535 198.51.100.7 61434 typ srflx raddr 10.0.0.5 rport 61434 generation 0 ufrag Qx9a network-cost 999",
        "3 2 UDP 16777215 203.0.113.4 3478 typ relay raddr 198.51.100.7 rport 50000",
        "4 1 TCP 1518280447 2001:db8::1 9 typ host tcptype active generation 0 network-id 1",
        "5 1 udp 1853824767 8c0c7b3e-8a4d-4c3b-9a9e-7c8f1d2e3f40.local 54321 typ prflx",
        "abc+/ 256 UDP 0 10.1.1.1 0 typ host",
    ];

    #[test]
    fn candidates_parse_and_render_identically() {
        for line in GOOD {
            let c: Candidate = line.parse().expect(line);
            let again: Candidate = c.to_string().parse().expect("rendered parses");
            assert_eq!(again, c);
        }
        let c: Candidate = GOOD[1].parse().expect("srflx");
        assert_eq!(c.typ, CandidateType::ServerReflexive);
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(c.priority, 1_677_729_535);
        assert_eq!(c.ip(), "198.51.100.7".parse().ok());
        assert_eq!(c.raddr.as_deref(), Some("10.0.0.5"));
        assert_eq!(c.rport, Some(61434));
        assert_eq!(c.generation, Some(0));
        assert_eq!(
            c.extensions,
            vec![
                ("ufrag".to_owned(), "Qx9a".to_owned()),
                ("network-cost".to_owned(), "999".to_owned())
            ]
        );
        let c: Candidate = GOOD[3].parse().expect("tcp");
        assert_eq!(c.tcptype, Some(TcpType::Active));
        let c: Candidate = GOOD[4].parse().expect("mdns");
        assert_eq!(c.ip(), None);
        assert_eq!(c.typ, CandidateType::PeerReflexive);
    }

    #[test]
    fn bad_candidates_are_errors() {
        let long = format!("1 1 UDP 1 10.0.0.1 1 typ host x {}", "y".repeat(2000));
        for line in [
            "",
            "1",
            "1 0 UDP 1 10.0.0.1 1 typ host",
            "1 257 UDP 1 10.0.0.1 1 typ host",
            "1 1 UDP 4294967296 10.0.0.1 1 typ host",
            "1 1 UDP -1 10.0.0.1 1 typ host",
            "1 1 UDP 1 10.0.0.1 65536 typ host",
            "1 1 UDP 1 10.0.0.1 1 type host",
            "1 1 UDP 1 10.0.0.1 1 typ",
            "1 1 UDP 1 10.0.0.1 1 typ host raddr",
            "1 1 UDP 1 10.0.0.1 1 typ host tcptype sideways",
            "1 1 UDP 1 bad/host 1 typ host",
            "fóundation 1 UDP 1 10.0.0.1 1 typ host",
            "123456789012345678901234567890123 1 UDP 1 10.0.0.1 1 typ host",
            long.as_str(),
        ] {
            assert!(line.parse::<Candidate>().is_err(), "{line:?}");
        }
        let many: String = (0..=MAX_EXTENSIONS).map(|i| format!(" x{i} y")).collect();
        assert_eq!(
            format!("1 1 UDP 1 10.0.0.1 1 typ host{many}").parse::<Candidate>(),
            Err(IceSdpError::Extensions)
        );
    }

    #[test]
    fn media_attributes_inherit_from_the_session() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
                   a=ice-ufrag:sess\r\na=ice-pwd:asd88fgpdd777uzjYhagZg00\r\na=ice-options:trickle\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:F7gI\r\n\
                   a=candidate:1 1 UDP 2130706431 192.0.2.10 40000 typ host\r\n\
                   a=candidate:garbage\r\na=end-of-candidates\r\n";
        let s = parse(sdp.as_bytes()).expect("sdp");
        let ice = IceAttributes::from_media(Some(&s), &s.media[0]);
        assert_eq!(ice.ufrag.as_deref(), Some("F7gI"));
        assert_eq!(ice.pwd.as_deref(), Some("asd88fgpdd777uzjYhagZg00"));
        assert!(ice.lite && ice.trickle() && ice.end_of_candidates);
        assert_eq!(ice.candidates.len(), 1);
        assert_eq!(ice.ignored_candidates, 1);
        assert!(!ice.bad_credentials);
    }

    #[test]
    fn credentials_are_bounded() {
        assert!(check_ufrag("abc").is_err());
        assert!(check_ufrag("abcd").is_ok());
        assert!(check_ufrag(&"a".repeat(257)).is_err());
        assert!(check_ufrag("ab:c").is_err());
        assert!(check_pwd("short").is_err());
        assert!(
            check_pwd("bd5e8b8d6dd8e1bc6").is_ok(),
            "17 chars, as older stacks send"
        );
        assert!(check_pwd(&"p".repeat(257)).is_err());
        assert!(check_pwd("bd5e8b8d6dd8e1bc6 x").is_err());
    }

    #[test]
    fn candidates_per_media_are_capped() {
        let mut sdp = String::from(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",
        );
        for i in 0..MAX_CANDIDATES + 5 {
            sdp.push_str(&format!(
                "a=candidate:{i} 1 UDP 1 10.0.0.1 {} typ host\r\n",
                1000 + i
            ));
        }
        let s = parse(sdp.as_bytes()).expect("sdp");
        let ice = IceAttributes::from_media(Some(&s), &s.media[0]);
        assert_eq!(ice.candidates.len(), MAX_CANDIDATES);
        assert_eq!(ice.ignored_candidates, 5);
    }
}
