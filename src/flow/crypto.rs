//! SRTP on one flow, as the session negotiated it and the worker applies it: the seam between
//! the SDES/DTLS/ICE negotiation (session layer) and the per-packet transform and handshakes
//! (flow table).

use crate::dtls::{Fingerprint, Role};
use crate::ice::Credentials;
use crate::sdp::ice::Candidate;
use crate::srtp::context::Params;

/// What a flow's packets go through for SRTP. Plain RTP both ways (and SRTP passed through
/// untouched, where both sides use the same keys) is the default: no transform.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowCrypto {
    /// What arrives on this flow is SRTP/SRTCP under the peer's key: authenticated (and
    /// decrypted) before anything else looks at it; what fails is dropped and counted.
    pub inbound: Option<Params>,
    /// What leaves by this flow's socket is protected under the key the relay gave this
    /// flow's peer.
    pub outbound: Option<Params>,
    /// DTLS-SRTP with this flow's peer: both keys come from a handshake on the flow's socket
    /// (`inbound` and `outbound` are then `None`). Until it completes, media arriving here is
    /// dropped and nothing is sent to the peer but the handshake.
    pub dtls: Option<FlowDtls>,
    /// ICE with this flow's peer: its connectivity checks are answered (and, with full ICE,
    /// the relay checks the peer's candidates too) and media is taken only from the address
    /// that passed one.
    pub ice: Option<FlowIce>,
}

/// The DTLS side of a flow, as SDP negotiated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDtls {
    /// The relay's role (`a=setup` it answered or was answered with).
    pub role: Role,
    /// The peer's `a=fingerprint`, once its SDP gave one: the handshake's certificate must
    /// match it before any key is used.
    pub fingerprint: Option<Fingerprint>,
}

/// The ICE side of a flow (one component of a media stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowIce {
    /// The relay's ufrag and password for this media stream (in the SDP towards the peer).
    pub local: Credentials,
    /// The peer's, once its SDP gave them.
    pub remote: Option<Credentials>,
    /// 1 for RTP (and muxed RTCP), 2 for RTCP on its own port.
    pub component: u16,
    /// The relay runs full ICE with the peer (sends checks of its own); `None`: ICE-lite, it
    /// only answers the peer's.
    pub full: Option<FullIce>,
}

/// What a full ICE agent needs beyond the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullIce {
    /// The relay nominates (it sent the offer, or the peer is ICE-lite).
    pub controlling: bool,
    /// The agent's tie breaker (RFC 8445 §7.1.1), random and stable for the stream.
    pub tie_breaker: u64,
    /// Secret seed of its transaction ids (the peer must not guess them to forge a response).
    pub seed: [u8; 32],
    /// The peer's candidates for this component that the target policy admitted (UDP, IP
    /// addresses; mDNS names are learnt as peer-reflexive from the peer's checks instead).
    pub candidates: Vec<Candidate>,
    /// The peer said `a=end-of-candidates`.
    pub end_of_candidates: bool,
}

impl FlowCrypto {
    /// No SRTP either way, and no handshake.
    pub fn is_plain(&self) -> bool {
        self.inbound.is_none()
            && self.outbound.is_none()
            && self.dtls.is_none()
            && self.ice.is_none()
    }
}
