//! What the session layer needs from the daemon's configuration.

use std::time::Duration;

use crate::config::Interface;
use crate::flow::latch::EndpointLearning;
use crate::guard::{SharedPolicy, TargetPolicy};

/// Settings of the session layer, built from the daemon's `Config`.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Media interfaces; the first one's name is the default interface.
    pub interfaces: Vec<Interface>,
    pub port_min: u16,
    pub port_max: u16,
    pub endpoint_learning: EndpointLearning,
    /// Strict source unless a call asks otherwise (rtprelay's secure default).
    pub strict_source: bool,
    /// How long a stream learns its peer's real address.
    pub learning_window: Duration,
    /// No media for this long ends an answered call.
    pub timeout: Duration,
    /// Like `timeout`, for calls on hold (a side that is sendonly/recvonly/inactive).
    pub silent_timeout: Duration,
    /// Absolute limit of a call's life, if set.
    pub final_timeout: Option<Duration>,
    /// A call with an offer but no answer ends after this long.
    pub offer_timeout: Duration,
    /// How long a deleted call stays (reporting and forwarding) before it is destroyed.
    pub delete_delay: Duration,
    /// Concurrent calls allowed; negative is unlimited.
    pub max_sessions: i64,
    /// The data plane's name, reported by `statistics`.
    pub plane: &'static str,
    /// This relay's instance id (12 hex digits): `loop-protect` marks SDP with it.
    pub instance_id: String,
    /// Where media may be sent (SDP endpoints are checked against it), shared with the workers.
    pub policy: SharedPolicy,
    /// Seeds the random choice of ports (the daemon takes it from the OS).
    pub port_seed: [u8; 32],
    /// The relay's DTLS certificate and settings (made at start): its fingerprint goes into the
    /// SDP towards DTLS-SRTP peers. `None`: no DTLS-SRTP is offered or answered.
    pub dtls: Option<std::sync::Arc<crate::dtls::DtlsContext>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interfaces: Vec::new(),
            port_min: 30000,
            port_max: 40000,
            endpoint_learning: EndpointLearning::Heuristic,
            strict_source: true,
            learning_window: Duration::from_secs(3),
            timeout: Duration::from_secs(60),
            silent_timeout: Duration::from_secs(3600),
            final_timeout: None,
            offer_timeout: Duration::from_secs(3600),
            delete_delay: Duration::from_secs(30),
            max_sessions: -1,
            plane: "mmsg",
            instance_id: "000000000000".into(),
            policy: crate::guard::share(TargetPolicy::permissive()),
            port_seed: [0; 32],
            dtls: None,
        }
    }
}
