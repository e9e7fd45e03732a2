//! The typed SDP model. Lines we do not interpret are kept as text, in input order, so that
//! `parse` followed by `to_string` reproduces a body byte for byte. Every line read from the
//! input keeps its own line ending (as rtpengine copies them); lines we generate end in CRLF.

use std::fmt;
use std::net::IpAddr;

use crate::sdp::family::Family;

/// How a line ended in the input: SDP says CRLF, many endpoints send LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eol {
    #[default]
    Crlf,
    Lf,
}

impl Eol {
    pub fn as_str(self) -> &'static str {
        match self {
            Eol::Crlf => "\r\n",
            Eol::Lf => "\n",
        }
    }
}

/// One SDP body (a single session with its media sections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `v=` value (always `0` in practice).
    pub version: String,
    pub version_eol: Eol,
    /// The `o=` line; rtpengine accepts a session without one, and so do we.
    pub origin: Option<Origin>,
    /// The session-level `c=` line, if any.
    pub connection: Option<Connection>,
    /// Session-level lines after `v=`, in input order. [`SessionLine::Origin`] and
    /// [`SessionLine::Connection`] mark where `origin` and `connection` are written.
    pub lines: Vec<SessionLine>,
    pub media: Vec<Media>,
}

/// A session-level line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLine {
    /// Position of the `o=` line.
    Origin,
    /// Position of the session `c=` line.
    Connection,
    Attribute(Attribute),
    /// Any other line (`s=`, `t=`, `b=`, `i=`, a second `c=`...), kept as text.
    Other(Line),
}

/// A media-level line after `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLine {
    /// Position of the media `c=` line.
    Connection,
    Attribute(Attribute),
    /// Any other line (`b=`, `i=`, `k=`, a second `c=`...), kept as text.
    Other(Line),
}

/// An uninterpreted `<kind>=<value>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: char,
    pub value: String,
    pub eol: Eol,
}

/// `a=name` or `a=name:value`; both parts are kept exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
    pub eol: Eol,
}

impl Attribute {
    /// A generated attribute (CRLF).
    pub fn new(name: &str, value: Option<String>) -> Self {
        Attribute {
            name: name.to_owned(),
            value,
            eol: Eol::Crlf,
        }
    }

    /// Compares the name, ignoring trailing whitespace some endpoints leave on flag attributes.
    pub fn is(&self, name: &str) -> bool {
        self.name.trim_end() == name
    }

    /// The value without surrounding whitespace (`""` for a flag attribute).
    pub fn value_trimmed(&self) -> &str {
        self.value.as_deref().map(str::trim).unwrap_or("")
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    /// Kept as text so that odd values (leading zeros, > u64) survive; see [`Origin::version_num`].
    pub version: String,
    pub net_type: String,
    pub address: ConnAddress,
    /// The spaces around the fields as received, so that an `o=` with doubled spaces goes
    /// back as it came (rtpengine copies it; it would mangle it only when it edits it).
    pub spacing: Spacing,
    pub eol: Eol,
}

/// Whitespace of a line of fields: before the first, between them, and text after the last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spacing {
    pub lead: String,
    /// One entry per gap; a missing entry is one space.
    pub gaps: Vec<String>,
    pub tail: String,
}

impl Spacing {
    /// Writes `fields` with this spacing.
    fn write(&self, f: &mut fmt::Formatter<'_>, fields: &[&dyn fmt::Display]) -> fmt::Result {
        f.write_str(&self.lead)?;
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                f.write_str(self.gaps.get(i - 1).map_or(" ", String::as_str))?;
            }
            field.fmt(f)?;
        }
        f.write_str(&self.tail)
    }
}

impl Origin {
    /// The session version as a number, if it is one.
    pub fn version_num(&self) -> Option<u64> {
        self.version.parse().ok()
    }
}

/// `c=<nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub address: ConnAddress,
    /// Text after the address (` extra`, a trailing space), kept as rtpengine keeps it.
    pub tail: String,
    pub eol: Eol,
}

impl Connection {
    /// A generated `c=IN IP4|IP6 <ip>` line.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".to_owned(),
            address: ConnAddress::from_ip(ip),
            tail: String::new(),
            eol: Eol::Crlf,
        }
    }

    /// Points the line at `ip`, keeping the rest of it as received (as rtpengine edits only
    /// the address of a c= line).
    pub fn readdress(&mut self, ip: IpAddr) {
        self.address.set_ip(ip);
    }
}

/// Address type and address text as written in `o=`/`c=`: the text may be a hostname, or a
/// multicast address with `/ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAddress {
    /// `IP4`, `IP6` or whatever the peer wrote.
    pub addr_type: String,
    pub address: String,
}

impl ConnAddress {
    pub fn from_ip(ip: IpAddr) -> Self {
        ConnAddress {
            addr_type: addr_type_of(ip).to_owned(),
            address: ip.to_string(),
        }
    }

    /// Replaces type and address with an IP literal.
    pub fn set_ip(&mut self, ip: IpAddr) {
        *self = ConnAddress::from_ip(ip);
    }

    /// The family named by the address type (case-insensitive).
    pub fn family(&self) -> Option<Family> {
        if self.addr_type.eq_ignore_ascii_case("IP4") {
            Some(Family::V4)
        } else if self.addr_type.eq_ignore_ascii_case("IP6") {
            Some(Family::V6)
        } else {
            None
        }
    }

    /// The address as an IP literal: `None` for hostnames. A multicast `/ttl[/count]` suffix is
    /// ignored.
    pub fn ip(&self) -> Option<IpAddr> {
        let text = self.address.split('/').next().unwrap_or("");
        text.parse().ok()
    }

    /// `0.0.0.0` or `::`: the old way of putting a stream on hold.
    pub fn is_null(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `IP4` / `IP6` for an address.
pub fn addr_type_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`, `application`...
    pub kind: String,
    pub port: u16,
    /// The `/<count>` of `m=<kind> <port>/<count>`.
    pub port_count: Option<u16>,
    pub proto: String,
    /// Format tokens exactly as split on single spaces (an empty token keeps a trailing space).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// Lines after `m=` in input order; [`MediaLine::Connection`] marks the `c=` position.
    pub lines: Vec<MediaLine>,
    /// The `m=` line's ending.
    pub eol: Eol,
}

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The same direction with receiving turned off (what a null c= address means).
    pub fn without_recv(self) -> Self {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{}{}", self.name, v, self.eol.as_str()),
            None => write!(f, "a={}{}", self.name, self.eol.as_str()),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}{}", self.kind, self.value, self.eol.as_str())
    }
}

impl fmt::Display for ConnAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.addr_type, self.address)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("o=")?;
        let a = &self.address;
        self.spacing.write(
            f,
            &[
                &self.username,
                &self.session_id,
                &self.version,
                &self.net_type,
                &a.addr_type,
                &a.address,
            ],
        )?;
        f.write_str(self.eol.as_str())
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c={} {}{}{}",
            self.net_type,
            self.address,
            self.tail,
            self.eol.as_str()
        )
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        if !self.formats.is_empty() {
            write!(f, " {}", self.formats.join(" "))?;
        }
        f.write_str(self.eol.as_str())?;
        for line in &self.lines {
            match line {
                MediaLine::Connection => {
                    if let Some(c) = &self.connection {
                        c.fmt(f)?;
                    }
                }
                MediaLine::Attribute(a) => a.fmt(f)?,
                MediaLine::Other(l) => l.fmt(f)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v={}{}", self.version, self.version_eol.as_str())?;
        for line in &self.lines {
            match line {
                SessionLine::Origin => {
                    if let Some(o) = &self.origin {
                        o.fmt(f)?;
                    }
                }
                SessionLine::Connection => {
                    if let Some(c) = &self.connection {
                        c.fmt(f)?;
                    }
                }
                SessionLine::Attribute(a) => a.fmt(f)?,
                SessionLine::Other(l) => l.fmt(f)?,
            }
        }
        for m in &self.media {
            m.fmt(f)?;
        }
        Ok(())
    }
}
