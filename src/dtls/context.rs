//! What every DTLS endpoint of the relay shares: the certificate, the options, the DTLS
//! library's configuration built from them, and the origin that turns the relay's [`Millis`]
//! into the `Instant`s the library counts in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::srtp::suite::Suite;
use crate::time::Millis;

use super::cert::Certificate;
use super::fingerprint::HashFunc;
use super::keys::SUPPORTED_SUITES;
use super::DtlsError;

/// rtpengine's default `--dtls-mtu`.
pub const DEFAULT_MTU: usize = 1200;
/// Smallest MTU accepted: a ClientHello must still be fragmentable into records.
pub const MIN_MTU: usize = 256;

/// DTLS options (rtpengine's `--dtls-*` flags that this stack can honour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsOptions {
    /// Largest datagram the endpoint sends (`--dtls-mtu`); handshake flights are fragmented to fit.
    pub mtu: usize,
    /// SRTP profiles accepted, as SRTP suites; a handshake that negotiates another fails.
    pub srtp_suites: Vec<Suite>,
    /// First retransmission timeout; doubles on each retransmission (RFC 6347 §4.2.4.1).
    pub initial_rto: Duration,
    /// Retransmissions of one flight before the handshake fails.
    pub max_retransmits: usize,
    /// Hard limit on the whole handshake, whatever the retransmissions.
    pub handshake_timeout: Duration,
    /// `--dtls-passive`: answer (and offer) `a=setup:passive` unless a call asks otherwise, so
    /// the peer starts the handshake.
    pub passive: bool,
    /// `--dtls-signature`: the hash of the fingerprint the relay announces by default
    /// (`a=fingerprint`; a peer that offered another hash is answered in its own).
    pub signature: HashFunc,
}

impl Default for DtlsOptions {
    fn default() -> Self {
        DtlsOptions {
            mtu: DEFAULT_MTU,
            srtp_suites: SUPPORTED_SUITES.to_vec(),
            initial_rto: Duration::from_secs(1),
            max_retransmits: 5,
            handshake_timeout: Duration::from_secs(30),
            passive: false,
            signature: HashFunc::Sha256,
        }
    }
}

/// The shared part of every endpoint; made once at start, cloned as an `Arc`.
#[derive(Debug)]
pub struct DtlsContext {
    pub(super) cert: Certificate,
    pub(super) options: DtlsOptions,
    pub(super) config: Arc<dimpl::Config>,
    /// The `Instant` that stands for `Millis(0)`. Only an origin for arithmetic: the endpoints
    /// never compare it with a clock.
    origin: Instant,
}

impl DtlsContext {
    /// Check the options and build the library configuration. `origin` is the `Instant` of the
    /// relay's `Millis(0)` (any fixed `Instant` works: only differences are used).
    pub fn new(
        cert: Certificate,
        options: DtlsOptions,
        origin: Instant,
    ) -> Result<Arc<DtlsContext>, DtlsError> {
        if options.mtu < MIN_MTU || options.mtu > usize::from(u16::MAX) {
            return Err(DtlsError::Config(format!(
                "MTU {} out of range",
                options.mtu
            )));
        }
        if !options
            .srtp_suites
            .iter()
            .any(|s| SUPPORTED_SUITES.contains(s))
        {
            return Err(DtlsError::Config(
                "no SRTP profile the DTLS stack supports (AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM, AEAD_AES_256_GCM)".into(),
            ));
        }
        let config = dimpl::Config::builder()
            .with_crypto_provider(dimpl::crypto::aws_lc_rs::default_provider())
            .mtu(options.mtu)
            .flight_start_rto(options.initial_rto)
            .flight_retries(options.max_retransmits)
            .handshake_timeout(options.handshake_timeout)
            // WebRTC authenticates both sides by certificate fingerprint.
            .require_client_certificate(true)
            .build()
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        Ok(Arc::new(DtlsContext {
            cert,
            options,
            config: Arc::new(config),
            origin,
        }))
    }

    /// The relay's certificate (its fingerprint goes into `a=fingerprint`).
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    pub fn options(&self) -> &DtlsOptions {
        &self.options
    }

    pub(super) fn instant(&self, t: Millis) -> Instant {
        // Saturate far in the future rather than overflow (a Millis near u64::MAX).
        self.origin
            .checked_add(Duration::from_millis(t.0))
            .unwrap_or(self.origin + Duration::from_secs(1 << 40))
    }

    /// The first whole millisecond at or after `t`, so a timer is never handed back early.
    pub(super) fn millis(&self, t: Instant) -> Millis {
        let d = t.saturating_duration_since(self.origin);
        let ms = d.as_millis() as u64;
        if Duration::from_millis(ms) < d {
            Millis(ms + 1)
        } else {
            Millis(ms)
        }
    }
}
