//! SRTP on one flow, as the session negotiated it and the worker applies it: the seam between
//! the SDES/DTLS negotiation (session layer) and the per-packet transform (flow table).

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
}

impl FlowCrypto {
    /// No SRTP either way.
    pub fn is_plain(&self) -> bool {
        self.inbound.is_none() && self.outbound.is_none()
    }
}
