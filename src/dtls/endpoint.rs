//! One DTLS-SRTP association, sans-IO: datagrams and the time go in, datagrams, a timer and
//! finally the SRTP keys come out.
//!
//! The worker feeds every datagram the RFC 7983 demultiplexer classed as DTLS to
//! [`DtlsEndpoint::handle_datagram`], sends what [`DtlsEndpoint::poll_transmit`] gives to the
//! peer, calls [`DtlsEndpoint::handle_timeout`] when [`DtlsEndpoint::poll_timeout`] is due, and
//! once [`DtlsEndpoint::state`] is [`DtlsState::Connected`] takes the keys with
//! [`DtlsEndpoint::srtp_keys`].
//!
//! The peer is authenticated by the fingerprint its SDP announced: the keys are released only
//! when the certificate it sent hashes to that fingerprint. The fingerprint may arrive after the
//! handshake (a browser's DTLS can beat the SDP answer); the endpoint then waits in
//! [`DtlsState::AwaitingFingerprint`] and decides in [`DtlsEndpoint::set_remote_fingerprint`].
//!
//! Bounds: at most [`MAX_QUEUED_DATAGRAMS`] datagrams wait to be sent (the oldest extra ones are
//! dropped and retransmission repairs that); datagrams that are not well-framed DTLS are counted
//! and dropped before the library sees them; the library keeps at most its receive queue of
//! records; a handshake that does not finish fails after `max_retransmits` retransmissions of a
//! flight or `handshake_timeout`, whichever comes first.
//!
//! Known limit (dimpl 0.7): while the handshake runs, a protected (epoch 1) record that does not
//! decrypt ends it (`DtlsError::Handshake("crypto error: decryption failed")`) instead of being
//! discarded as RFC 6347 §4.1.2.7 suggests; after the handshake such records are discarded.
//! Someone who can send from the peer's address can thus break a handshake in progress, so the
//! worker should feed an endpoint only datagrams from the peer address it checked (ICE) or
//! latched, and may start a new passive endpoint when a fresh ClientHello arrives.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::time::Millis;
use crate::wire::dtls as wire;

use super::context::DtlsContext;
use super::fingerprint::Fingerprint;
use super::keys::{self, SrtpKeys};
use super::DtlsError;

/// Most datagrams waiting in [`DtlsEndpoint::poll_transmit`]'s queue (a full handshake flight
/// at a small MTU is under 10).
pub const MAX_QUEUED_DATAGRAMS: usize = 32;

/// Largest output buffer the library may ask for (its records are bounded by the MTU; this is a
/// guard against a request that would not be).
const MAX_OUTPUT_BUF: usize = 1 << 16;

/// Which side of the handshake the relay plays (SDP `a=setup`, RFC 5763 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `a=setup:active`: the relay is the DTLS client and sends the ClientHello.
    Active,
    /// `a=setup:passive`: the relay is the DTLS server and waits for a ClientHello.
    Passive,
}

/// Where the association is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsState {
    /// Handshake under way (or, passive, not started yet).
    Handshaking,
    /// The handshake finished but the peer's SDP fingerprint is not known yet.
    AwaitingFingerprint,
    /// Peer authenticated, SRTP keys available.
    Connected,
    /// Failed for good (the error says why).
    Failed(DtlsError),
}

/// Counters of one endpoint (for `query` and the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtlsCounters {
    /// Datagrams given to `handle_datagram`.
    pub datagrams_in: u64,
    /// Of those, dropped as not well-framed DTLS (or arriving after a failure).
    pub junk: u64,
    /// Datagrams produced for sending.
    pub datagrams_out: u64,
    /// Outgoing datagrams dropped because the send queue was full.
    pub queue_drops: u64,
}

/// A sans-IO DTLS-SRTP endpoint.
pub struct DtlsEndpoint {
    ctx: Arc<DtlsContext>,
    dtls: dimpl::Dtls,
    role: Role,
    remote_fingerprint: Option<Fingerprint>,
    peer_cert: Option<Vec<u8>>,
    /// The negotiated suite and the raw exporter output, until the peer is authenticated.
    material: Option<(crate::srtp::suite::Suite, Vec<u8>)>,
    handshake_done: bool,
    keys: Option<SrtpKeys>,
    failed: Option<DtlsError>,
    out: VecDeque<Vec<u8>>,
    timeout: Option<Millis>,
    buf: Vec<u8>,
    counters: DtlsCounters,
}

impl std::fmt::Debug for DtlsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsEndpoint")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl DtlsEndpoint {
    /// A new endpoint. An active one queues its ClientHello at once; a passive one waits.
    /// `remote_fingerprint` is the peer's `a=fingerprint` when already known.
    pub fn new(
        ctx: Arc<DtlsContext>,
        role: Role,
        remote_fingerprint: Option<Fingerprint>,
        now: Millis,
    ) -> DtlsEndpoint {
        let start = ctx.instant(now);
        let mut dtls = dimpl::Dtls::new_12(ctx.config.clone(), ctx.cert.to_dimpl(), start);
        dtls.set_active(role == Role::Active);
        let buf = vec![0; ctx.options.mtu.max(2048)];
        let mut ep = DtlsEndpoint {
            ctx,
            dtls,
            role,
            remote_fingerprint,
            peer_cert: None,
            material: None,
            handshake_done: false,
            keys: None,
            failed: None,
            out: VecDeque::new(),
            timeout: None,
            buf,
            counters: DtlsCounters::default(),
        };
        if role == Role::Active {
            // The library sends the ClientHello on its first timer tick.
            // A failure is kept in the state; the caller sees it there.
            let _ = ep.call(|d| d.handle_timeout(start));
        } else {
            ep.drain();
        }
        ep
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn counters(&self) -> DtlsCounters {
        self.counters
    }

    pub fn state(&self) -> DtlsState {
        if let Some(e) = &self.failed {
            DtlsState::Failed(e.clone())
        } else if self.keys.is_some() {
            DtlsState::Connected
        } else if self.handshake_done {
            DtlsState::AwaitingFingerprint
        } else {
            DtlsState::Handshaking
        }
    }

    /// The SRTP keys, once the handshake finished and the peer's certificate matched its
    /// fingerprint.
    pub fn srtp_keys(&self) -> Option<&SrtpKeys> {
        self.keys.as_ref()
    }

    /// Feed one UDP payload the demultiplexer classed as DTLS. Junk is counted and dropped
    /// (`Ok`); an error means the association failed for good.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Millis) -> Result<(), DtlsError> {
        self.counters.datagrams_in += 1;
        if let Some(e) = &self.failed {
            self.counters.junk += 1;
            return Err(e.clone());
        }
        if !wire::is_well_framed(datagram) {
            self.counters.junk += 1;
            return Ok(());
        }
        // Bring the library's notion of time forward first, so the flight this datagram may
        // trigger has its retransmission timer counted from now.
        let t = self.ctx.instant(now);
        self.call(|d| d.handle_timeout(t))?;
        self.call(|d| d.handle_packet(datagram))
    }

    /// The next datagram to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] should be called next; `None` once failed.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.failed.is_some() {
            None
        } else {
            self.timeout
        }
    }

    /// Let time pass: retransmits a flight that got no answer, fails a handshake that ran out of
    /// retransmissions.
    pub fn handle_timeout(&mut self, now: Millis) -> Result<(), DtlsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let t = self.ctx.instant(now);
        self.call(|d| d.handle_timeout(t))
    }

    /// The peer's `a=fingerprint`, when it arrives after the endpoint was made (or changes with
    /// a re-offer). Decides a handshake that was waiting for it.
    pub fn set_remote_fingerprint(&mut self, fp: Fingerprint) -> Result<(), DtlsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.remote_fingerprint = Some(fp);
        let r = self.try_finish();
        self.fail_on(r)
    }

    /// Call into the library, then collect its output. A panic inside the library (dimpl 0.7
    /// has reachable asserts on peer input; the fuzz target found one) fails this endpoint
    /// instead of unwinding into the worker; the library object is never used again after it.
    fn call(
        &mut self,
        f: impl FnOnce(&mut dimpl::Dtls) -> Result<(), dimpl::Error>,
    ) -> Result<(), DtlsError> {
        let dtls = &mut self.dtls;
        match panic::catch_unwind(AssertUnwindSafe(|| f(dtls))) {
            Ok(r) => self.after(r),
            Err(_) => Err(self.library_panicked()),
        }
    }

    fn library_panicked(&mut self) -> DtlsError {
        let err = DtlsError::Handshake("DTLS library panicked on peer input".into());
        tracing::warn!(role = ?self.role, "DTLS library panicked on peer input; endpoint failed");
        self.failed = Some(err.clone());
        err
    }

    /// Record a library result, then collect its output.
    fn after(&mut self, r: Result<(), dimpl::Error>) -> Result<(), DtlsError> {
        if let Err(e) = r {
            let err = match e {
                dimpl::Error::Timeout(_) => DtlsError::Timeout,
                other => DtlsError::Handshake(other.to_string()),
            };
            tracing::debug!(role = ?self.role, error = %err, "DTLS handshake failed");
            self.failed = Some(err.clone());
            return Err(err);
        }
        self.drain();
        let r = self.try_finish();
        self.fail_on(r)
    }

    fn fail_on(&mut self, r: Result<(), DtlsError>) -> Result<(), DtlsError> {
        if let Err(e) = &r {
            tracing::debug!(role = ?self.role, error = %e, "DTLS-SRTP failed");
            self.failed = Some(e.clone());
        }
        r
    }

    /// Take everything the library has to say until it asks to wait for a timer.
    fn drain(&mut self) {
        if panic::catch_unwind(AssertUnwindSafe(|| self.drain_unguarded())).is_err() {
            self.library_panicked();
        }
    }

    fn drain_unguarded(&mut self) {
        loop {
            match self.dtls.poll_output(&mut self.buf) {
                dimpl::Output::Packet(p) => {
                    self.counters.datagrams_out += 1;
                    if self.out.len() >= MAX_QUEUED_DATAGRAMS {
                        self.counters.queue_drops += 1;
                        self.out.pop_front();
                    }
                    self.out.push_back(p.to_vec());
                }
                dimpl::Output::Timeout(t) => {
                    self.timeout = Some(self.ctx.millis(t));
                    return;
                }
                dimpl::Output::BufferTooSmall { needed } => {
                    if needed > MAX_OUTPUT_BUF || needed <= self.buf.len() {
                        self.failed = Some(DtlsError::Handshake(format!(
                            "output of {needed} bytes asked for"
                        )));
                        return;
                    }
                    self.buf.resize(needed, 0);
                }
                // The first certificate is the one the handshake verified signatures with.
                dimpl::Output::PeerCert(der) if self.peer_cert.is_none() => {
                    self.peer_cert = Some(der.to_vec());
                }
                dimpl::Output::Connected => self.handshake_done = true,
                dimpl::Output::KeyingMaterial(km, profile) if self.keys.is_none() => {
                    match keys::suite_of(profile) {
                        Some(s) => self.material = Some((s, km.to_vec())),
                        None => {
                            self.failed = Some(DtlsError::NoSrtpProfile);
                            return;
                        }
                    }
                }
                // DTLS-SRTP carries no application data over DTLS; a close_notify leaves the
                // SRTP keys valid (RFC 5764 §4.2 ties them to the handshake, not the session).
                _ => {}
            }
        }
    }

    /// Once the handshake is done and the fingerprint known: authenticate the peer, check the
    /// profile, derive the keys.
    fn try_finish(&mut self) -> Result<(), DtlsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.keys.is_some() || !self.handshake_done {
            return Ok(());
        }
        let Some(fp) = &self.remote_fingerprint else {
            return Ok(());
        };
        let cert = self
            .peer_cert
            .as_ref()
            .ok_or(DtlsError::NoPeerCertificate)?;
        if !fp.matches(cert) {
            return Err(DtlsError::FingerprintMismatch);
        }
        let (suite, material) = self.material.take().ok_or(DtlsError::NoSrtpProfile)?;
        if !self.ctx.options.srtp_suites.contains(&suite) {
            return Err(DtlsError::ProfileNotAllowed(suite.name()));
        }
        self.keys = Some(keys::split(suite, &material, self.role)?);
        tracing::debug!(role = ?self.role, suite = suite.name(), "DTLS-SRTP connected");
        Ok(())
    }
}
