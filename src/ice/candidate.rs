//! Candidates and their priorities (RFC 8445 §5.1.2, §6.1.2.3).

use std::net::SocketAddr;

use crate::sdp::ice::{Candidate, CandidateType, Transport};

/// RFC 8445 §5.1.2.1: `2^24 * type preference + 2^8 * local preference + (256 - component)`.
pub fn candidate_priority(type_pref: u32, local_pref: u16, component: u16) -> u32 {
    let component = u32::from(component.clamp(1, 256));
    ((type_pref & 0x7e) << 24) | (u32::from(local_pref) << 8) | (256 - component)
}

/// RFC 8445 §6.1.2.3: `2^32 * min(G, D) + 2 * max(G, D) + (G > D ? 1 : 0)`, G the controlling
/// side's candidate priority, D the controlled side's.
pub fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (u64::from(controlling), u64::from(controlled));
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

/// One of our candidates: a host candidate on one of the relay's sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCandidate {
    /// 1 for RTP, 2 for RTCP without rtcp-mux.
    pub component: u16,
    /// The socket's bound address: where packets for this candidate arrive and leave.
    pub base: SocketAddr,
    /// The address written in the SDP (the interface's advertised address, port of the base).
    pub address: SocketAddr,
    /// Same for every candidate with the same base IP (RFC 8445 §5.1.1.3).
    pub foundation: String,
    /// The local preference that went into `priority`.
    pub local_pref: u16,
    pub priority: u32,
}

impl LocalCandidate {
    /// The priority a peer-reflexive candidate learnt from this base would get: what our checks
    /// carry in PRIORITY (RFC 8445 §7.1.1).
    pub fn prflx_priority(&self) -> u32 {
        candidate_priority(110, self.local_pref, self.component)
    }

    /// The `a=candidate` value.
    pub fn to_sdp(&self) -> Candidate {
        Candidate {
            foundation: self.foundation.clone(),
            component: self.component,
            transport: Transport::Udp,
            priority: self.priority,
            address: self.address.ip().to_string(),
            port: self.address.port(),
            typ: CandidateType::Host,
            raddr: None,
            rport: None,
            tcptype: None,
            generation: None,
            extensions: Vec::new(),
        }
    }
}

/// A peer's candidate: from SDP, trickled, or learnt from a check (peer-reflexive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    pub component: u16,
    pub addr: SocketAddr,
    pub priority: u32,
    pub foundation: String,
    pub typ: CandidateType,
}

/// Why a remote candidate was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CandidateRefused {
    /// Not UDP (ICE-TCP is not supported).
    #[error("candidate transport is not UDP")]
    NotUdp,
    /// An FQDN (e.g. an mDNS `.local` name) rather than an IP address.
    #[error("candidate address is not an IP address")]
    NotIp,
    /// Port 0, an unspecified or multicast address.
    #[error("candidate address is not usable")]
    Unusable,
    /// A component we have no local candidate for.
    #[error("candidate for a component we do not have")]
    NoSuchComponent,
    /// The agent holds its maximum of remote candidates.
    #[error("too many remote candidates")]
    Cap,
    /// Already known.
    #[error("duplicate candidate")]
    Duplicate,
}
