//! Endpoint learning and source checks (stub: the policy comes with the data-plane change).

/// `--endpoint-learning`: how a stream learns where its peer really sends from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointLearning {
    /// Learn during a window (3 s), then lock to the last source seen.
    Delayed,
    /// Lock to the first source seen.
    Immediate,
    /// Never learn: always use the SDP address.
    Off,
    /// Rank sources against the SDP address during the window, keep the best (rtprelay's default).
    #[default]
    Heuristic,
}

use std::net::SocketAddr;
use std::time::Duration;

/// Contract stub (replaced by the data-plane change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatchConfig {
    pub expected: Option<SocketAddr>,
    pub learning: EndpointLearning,
    pub strict: bool,
    pub asymmetric: bool,
    pub window: Duration,
}
