//! A flow: one receiving local socket of a call, as the session layer numbers it and a worker
//! relays it.

/// A flow, numbered by the session layer. `u64::MAX` is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// What a flow's socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// RTP, and RTCP too when muxed on the same port (RFC 5761).
    Rtp,
    Rtcp,
    /// Media that is not RTP (e.g. T.38 over UDPTL): every datagram is relayed as it is.
    Opaque,
}
