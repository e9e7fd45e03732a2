//! A flow's counters: written by the worker that owns the flow (Relaxed), read by the session
//! layer for `query`, `statistics` and timeouts.

use std::sync::atomic::AtomicU64;

/// Per-flow counters, shared between the owning worker and the session layer.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// RTP packets accepted.
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Malformed packets, and packets from a rejected source (strict source).
    pub errors: AtomicU64,
    /// Accepted but not forwarded: no egress or no target yet, queue full, send failed,
    /// `block media`.
    pub dropped: AtomicU64,
    /// `Millis` of the last accepted packet; 0 = never.
    pub last_packet_ms: AtomicU64,
    pub rtcp_packets: AtomicU64,
    pub rtcp_bytes: AtomicU64,
}
