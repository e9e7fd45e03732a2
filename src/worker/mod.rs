//! Contract stub (replaced by the data-plane change).
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    Rtp,
    Rtcp,
}

#[derive(Debug, Default)]
pub struct StreamCounters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
    pub last_packet_ms: AtomicU64,
    pub rtcp_packets: AtomicU64,
    pub rtcp_bytes: AtomicU64,
}
