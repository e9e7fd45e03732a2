//! Read-only questions the session layer asks of a parsed SDP: where a stream's media comes
//! from, whether it is on hold, which direction and RTCP mode it asked for.

use std::net::{IpAddr, SocketAddr};

use crate::sdp::family::Family;
use crate::sdp::model::{
    Attribute, ConnAddress, Connection, Direction, Media, MediaLine, SessionDescription,
    SessionLine,
};

/// Transport protocols that carry RTP (compared case-insensitively).
const RTP_PROTOS: &[&str] = &[
    "RTP/AVP",
    "RTP/SAVP",
    "RTP/AVPF",
    "RTP/SAVPF",
    "UDP/TLS/RTP/SAVP",
    "UDP/TLS/RTP/SAVPF",
    "TCP/RTP/AVP",
    "TCP/TLS/RTP/SAVP",
    "TCP/TLS/RTP/SAVPF",
];

/// Attribute names that belong to ICE (removed by `ICE: remove`).
pub(crate) const ICE_ATTRS: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "candidate",
    "ice-mismatch",
    "remote-candidates",
];

impl Media {
    /// Media-level attributes in input order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(|l| match l {
            MediaLine::Attribute(a) => Some(a),
            _ => None,
        })
    }

    /// The first media-level attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.is(name))
    }

    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The transport carries RTP (plain, secure, with feedback, over DTLS).
    pub fn is_rtp(&self) -> bool {
        RTP_PROTOS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(self.proto.trim()))
    }

    pub fn has_rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// The media-level direction attribute, if one is present (the last one wins).
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .filter_map(|a| Direction::from_name(a.name.trim_end()))
            .last()
    }

    /// Port 0: the stream was rejected or disabled.
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// `a=rtcp:<port> [IN IP4|IP6 <addr>]`, if present and well-formed.
    pub fn rtcp_attr(&self) -> Option<(u16, Option<ConnAddress>)> {
        let attr = self.attribute("rtcp")?;
        let mut it = attr.value_trimmed().split_whitespace();
        let port: u16 = it.next()?.parse().ok()?;
        if port == 0 {
            return None;
        }
        let addr = match (it.next(), it.next(), it.next()) {
            (Some(_net), Some(ty), Some(addr)) => Some(ConnAddress {
                addr_type: ty.to_owned(),
                address: addr.to_owned(),
            }),
            _ => None,
        };
        Some((port, addr))
    }

    /// The packet time the first `a=ptime` announces, if it is a positive number (its leading
    /// digits, as rtpengine reads it with strtol).
    pub fn ptime(&self) -> Option<u32> {
        let v = self.attribute("ptime")?.value_trimmed();
        let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok().filter(|n| *n > 0)
    }

    /// The first `a=mid` value.
    pub fn mid(&self) -> Option<&str> {
        self.attribute("mid").and_then(|a| a.value.as_deref())
    }
}

impl SessionDescription {
    /// Session-level attributes in input order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(|l| match l {
            SessionLine::Attribute(a) => Some(a),
            _ => None,
        })
    }

    /// The first session-level attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.is(name))
    }

    /// The `c=` that applies to media `idx`: its own, else the session's.
    pub fn effective_connection(&self, idx: usize) -> Option<&Connection> {
        let m = self.media.get(idx)?;
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// The RTP address:port media `idx` sends from/expects, from media c= else session c=; None
    /// if the address is not an IP literal.
    pub fn rtp_endpoint(&self, idx: usize) -> Option<SocketAddr> {
        let m = self.media.get(idx)?;
        let ip = self.effective_connection(idx)?.address.ip()?;
        Some(SocketAddr::new(ip, m.port))
    }

    /// RTCP address:port: from `a=rtcp:PORT [IN IP4 addr]`, else RTP port + 1. Whether RTCP is
    /// multiplexed is the caller's decision.
    pub fn rtcp_endpoint(&self, idx: usize) -> Option<SocketAddr> {
        let m = self.media.get(idx)?;
        let rtp = self.rtp_endpoint(idx);
        match m.rtcp_attr() {
            Some((port, Some(addr))) => {
                let ip: IpAddr = addr.ip().or(rtp.map(|r| r.ip()))?;
                Some(SocketAddr::new(ip, port))
            }
            Some((port, None)) => Some(SocketAddr::new(rtp?.ip(), port)),
            None => {
                let rtp = rtp?;
                Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
            }
        }
    }

    /// True when the effective c= address is the null address (0.0.0.0 or ::), i.e. old-style
    /// hold.
    pub fn is_null_address(&self, idx: usize) -> bool {
        self.effective_connection(idx)
            .is_some_and(|c| c.address.is_null())
    }

    /// Family of the effective c= address of media `idx`: the address type, else the literal's.
    pub fn media_family(&self, idx: usize) -> Option<Family> {
        let addr = &self.effective_connection(idx)?.address;
        addr.family().or_else(|| match addr.ip()? {
            IpAddr::V4(_) => Some(Family::V4),
            IpAddr::V6(_) => Some(Family::V6),
        })
    }

    /// Media `idx` uses trickle ICE: a null address then means "candidates follow", not hold.
    /// (ICE credentials present, and `a=ice-options:trickle` or the `0.0.0.0:9` placeholder.)
    pub fn is_trickle_ice(&self, idx: usize) -> bool {
        let Some(m) = self.media.get(idx) else {
            return false;
        };
        let has_ufrag = m.has_attribute("ice-ufrag") || self.attribute("ice-ufrag").is_some();
        if !has_ufrag {
            return false;
        }
        match m.attribute("ice-options") {
            Some(opt) => opt.value_trimmed().contains("trickle"),
            None => self.is_null_address(idx) && m.port == 9,
        }
    }

    /// The direction media `idx` asked for, looking at media then session attributes, with
    /// `recvonly` > `sendonly` > `inactive` > `sendrecv` as rtpengine ranks them.
    pub fn requested_direction(&self, idx: usize) -> Direction {
        let Some(m) = self.media.get(idx) else {
            return Direction::SendRecv;
        };
        let has = |name: &str| m.has_attribute(name) || self.attribute(name).is_some();
        if has("recvonly") {
            Direction::RecvOnly
        } else if has("sendonly") {
            Direction::SendOnly
        } else if has("inactive") {
            Direction::Inactive
        } else {
            Direction::SendRecv
        }
    }
}
