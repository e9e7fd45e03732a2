//! The handshakes on a flow's socket, sans-IO: an ICE agent (full, or lite) that answers the
//! peer's connectivity checks, runs its own towards the peer's candidates when full, and names
//! the address media is taken from, and a DTLS-SRTP endpoint
//! whose keys replace SDES ones. Only flows whose [`FlowCrypto`] asks for DTLS or ICE carry one
//! (boxed, so plain flows pay a pointer).
//!
//! What they send goes to the table's [`Outbox`] (the worker sends it from the flow's socket);
//! what they learn comes back as [`Progress`] for the flow: a peer to fix the latch on, keys to
//! build the SRTP contexts from.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::dtls::{DtlsContext, DtlsEndpoint, DtlsError, DtlsState, Role, SrtpKeys};
use crate::flow::{FlowCrypto, FlowDtls, FlowIce};
use crate::ice::{IceAgent, IceConfig, IceEvent, IceMode, IceState, Role as IceRole};
use crate::srtp::Suite;
use crate::time::Millis;

/// Most datagrams waiting to be sent for all the handshakes of a table (one DTLS flight is
/// under 10, a STUN answer one): the oldest go first when it is full.
pub const MAX_OUTBOX: usize = 256;

/// Verified remote addresses kept per flow before nomination (a browser checks a few pairs).
const MAX_VERIFIED: usize = 8;

/// A peer's SDP candidates a full agent pairs and checks per flow, the highest priorities
/// first. Browsers list a handful per component; an SDP with more is more likely aimed at a
/// third party: each candidate costs it up to 7 checks from the relay. (The agent keeps room
/// beyond these for addresses it learns from the peer's own checks.)
const MAX_SDP_CANDIDATES: usize = 10;

/// A handshake datagram for the worker to send from flow `flow`'s socket to `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeTransmit {
    pub flow: u64,
    pub dst: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Handshake totals of a table since they were last taken (for the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeStats {
    /// DTLS handshakes that ended with keys (peer fingerprint checked).
    pub dtls_completed: u64,
    /// DTLS handshakes that failed for good.
    pub dtls_failed: u64,
    /// STUN connectivity checks answered.
    pub stun_answered: u64,
    /// STUN messages refused (bad integrity, unknown username, malformed...).
    pub stun_refused: u64,
    /// Datagrams dropped because the outbox was full.
    pub outbox_dropped: u64,
}

/// Where a flow's handshakes are, for `query` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeState {
    /// The ICE agent's state; `None` without ICE.
    pub ice: Option<IceState>,
    /// The address media is taken from: the nominated one, else the first verified.
    pub ice_peer: Option<SocketAddr>,
    /// Whether `ice_peer` was nominated (USE-CANDIDATE).
    pub nominated: bool,
    /// The DTLS state; `None` without DTLS. `Handshaking` too before the endpoint exists
    /// (passive: no ClientHello yet; active: no peer address yet); `Failed(Config)` when the
    /// relay has no DTLS context.
    pub dtls: Option<DtlsState>,
    /// The address the DTLS handshake is with.
    pub dtls_peer: Option<SocketAddr>,
    /// The negotiated SRTP suite, once connected.
    pub suite: Option<Suite>,
}

/// The bounded queue of handshake datagrams.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    queue: VecDeque<HandshakeTransmit>,
}

impl Outbox {
    fn push(&mut self, t: HandshakeTransmit, stats: &mut HandshakeStats) {
        if self.queue.len() >= MAX_OUTBOX {
            self.queue.pop_front();
            stats.outbox_dropped += 1;
        }
        self.queue.push_back(t);
    }

    pub(super) fn pop(&mut self) -> Option<HandshakeTransmit> {
        self.queue.pop_front()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Where a handshake's output goes.
pub(super) struct Sinks<'a> {
    pub outbox: &'a mut Outbox,
    pub stats: &'a mut HandshakeStats,
}

/// What a handshake step means for the flow.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// ICE made this address the flow's peer: fix the latch on it.
    pub peer: Option<SocketAddr>,
    /// DTLS just connected: build the SRTP contexts from these.
    pub keys: Option<SrtpKeys>,
    /// DTLS just failed for good.
    pub failed: bool,
}

/// What handshakes gave during a run that the table acts on after it.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// Outbound keys to install (the run holds the egress flow's context, not this one's).
    pub keys: Vec<(u64, crate::srtp::Params)>,
    /// Flows whose handshake moved, to report.
    pub changed: Vec<u64>,
}

/// What new signalling did to the DTLS keys.
#[derive(Debug, Default)]
pub(super) struct Reconciled {
    /// The keys (if any) are no longer valid: drop the contexts until new ones come.
    pub reset_keys: bool,
    /// What the new signalling completed (a late fingerprint).
    pub progress: Progress,
}

/// The handshakes of one flow.
pub(super) struct Handshake {
    ice: Option<IceSide>,
    dtls: Option<DtlsSide>,
    /// When [`Handshake::poll`] has something to do.
    due: Option<Millis>,
}

struct IceSide {
    agent: IceAgent,
    params: FlowIce,
    /// SDP candidates given to the agent so far (at most [`MAX_SDP_CANDIDATES`]).
    sdp_candidates: usize,
    verified: Vec<SocketAddr>,
    nominated: Option<SocketAddr>,
}

struct DtlsSide {
    params: FlowDtls,
    ctx: Option<Arc<DtlsContext>>,
    endpoint: Option<DtlsEndpoint>,
    /// Where the handshake's datagrams go: the last source heard from, or ICE's peer.
    peer: Option<SocketAddr>,
    /// The keys were handed to the flow.
    delivered: bool,
    /// The failure was counted.
    failed: bool,
}

impl Handshake {
    /// The handshakes `crypto` asks for; `None` for a flow without DTLS or ICE.
    pub(super) fn new(
        id: u64,
        crypto: &FlowCrypto,
        local: Option<SocketAddr>,
        ctx: Option<&Arc<DtlsContext>>,
        now: Millis,
    ) -> Option<Box<Handshake>> {
        if crypto.dtls.is_none() && crypto.ice.is_none() {
            return None;
        }
        let mut h = Box::new(Handshake {
            ice: crypto.ice.as_ref().map(|p| IceSide::new(id, p, local)),
            dtls: crypto.dtls.as_ref().map(|p| DtlsSide::new(id, p, ctx)),
            due: None,
        });
        h.due = h.next_due(now);
        Some(h)
    }

    pub(super) fn has_ice(&self) -> bool {
        self.ice.is_some()
    }

    pub(super) fn has_dtls(&self) -> bool {
        self.dtls.is_some()
    }

    /// Whether media from `src` may be taken: with ICE only from the nominated address (before
    /// nomination, a verified one).
    pub(super) fn allows(&self, src: SocketAddr) -> bool {
        self.ice.as_ref().is_none_or(|i| i.allows(src))
    }

    /// DTLS is asked for and its keys are not (yet) in the flow: media is dropped both ways.
    pub(super) fn awaiting_keys(&self) -> bool {
        self.dtls.as_ref().is_some_and(|d| !d.delivered)
    }

    /// The address ICE made the peer, to fix the latch on again after new signalling.
    pub(super) fn ice_peer(&self) -> Option<SocketAddr> {
        self.ice.as_ref().and_then(IceSide::peer)
    }

    pub(super) fn is_due(&self, now: Millis) -> bool {
        self.due.is_some_and(|d| d <= now)
    }

    /// A STUN message from `src` on our socket `local`.
    pub(super) fn on_stun(
        &mut self,
        id: u64,
        now: Millis,
        src: SocketAddr,
        local: Option<SocketAddr>,
        pkt: &[u8],
        sinks: &mut Sinks<'_>,
    ) -> Progress {
        let mut p = Progress::default();
        if let Some(ice) = self.ice.as_mut() {
            match local {
                Some(local) => ice.on_packet(id, now, src, local, pkt, sinks, &mut p),
                None => sinks.stats.stun_refused += 1,
            }
        }
        self.after(id, now, None, sinks, &mut p);
        p
    }

    /// A DTLS datagram from `src`; `latched`: whether the latch accepted the source (what a
    /// flow without ICE goes by). `Err` when the source was ignored.
    pub(super) fn on_dtls(
        &mut self,
        id: u64,
        now: Millis,
        src: SocketAddr,
        latched: bool,
        pkt: &[u8],
        sinks: &mut Sinks<'_>,
    ) -> Result<Progress, ()> {
        let allowed = match &self.ice {
            Some(ice) => ice.allows(src),
            None => latched,
        };
        if !allowed {
            return Err(());
        }
        let mut p = Progress::default();
        if let Some(d) = self.dtls.as_mut() {
            d.on_datagram(id, now, src, pkt, sinks, &mut p);
        }
        self.after(id, now, None, sinks, &mut p);
        Ok(p)
    }

    /// Timers, and an active handshake whose peer became known. `latch_peer` is where the flow
    /// sends media (a flow without ICE starts its active handshake there).
    pub(super) fn poll(
        &mut self,
        id: u64,
        now: Millis,
        latch_peer: Option<SocketAddr>,
        sinks: &mut Sinks<'_>,
    ) -> Progress {
        let mut p = Progress::default();
        if let Some(ice) = self.ice.as_mut() {
            if ice.agent.poll_timeout().is_some_and(|t| t <= now) {
                ice.agent.handle_timeout(now);
            }
            ice.drain(id, sinks, &mut p);
        }
        if let Some(d) = self.dtls.as_mut() {
            if d.endpoint
                .as_ref()
                .is_some_and(|e| e.poll_timeout().is_some_and(|t| t <= now))
            {
                if let Some(e) = d.endpoint.as_mut() {
                    // A failure is kept in the endpoint's state, read below.
                    let _ = e.handle_timeout(now);
                }
            }
        }
        self.after(id, now, latch_peer, sinks, &mut p);
        p
    }

    /// After any step: point DTLS at the ICE peer, start an active handshake whose peer is
    /// known, send what the endpoint has, take its result.
    fn after(
        &mut self,
        id: u64,
        now: Millis,
        latch_peer: Option<SocketAddr>,
        sinks: &mut Sinks<'_>,
        p: &mut Progress,
    ) {
        let ice_peer = self.ice_peer();
        let has_ice = self.ice.is_some();
        if let Some(d) = self.dtls.as_mut() {
            if let Some(peer) = ice_peer {
                d.peer = Some(peer);
            }
            let start_at = if has_ice { ice_peer } else { latch_peer };
            d.start_active(id, now, start_at);
            d.flush(id, sinks, p);
        }
        self.due = self.next_due(now);
    }

    fn next_due(&self, now: Millis) -> Option<Millis> {
        let mut due: Option<Millis> = None;
        let mut at = |t: Millis| due = Some(due.map_or(t, |d| d.min(t)));
        if let Some(t) = self.ice.as_ref().and_then(|i| i.agent.poll_timeout()) {
            at(t);
        }
        if let Some(d) = &self.dtls {
            match &d.endpoint {
                Some(e) => {
                    if let Some(t) = e.poll_timeout() {
                        at(t);
                    }
                }
                // An active handshake waits for its peer: look again every poll.
                None if d.params.role == Role::Active && d.ctx.is_some() => at(now),
                None => {}
            }
        }
        due
    }

    /// New signalling for the flow. Returns `None` when it asks for no handshake any more.
    pub(super) fn reconcile(
        mut self: Box<Self>,
        id: u64,
        crypto: &FlowCrypto,
        local: Option<SocketAddr>,
        ctx: Option<&Arc<DtlsContext>>,
        now: Millis,
        sinks: &mut Sinks<'_>,
    ) -> (Option<Box<Handshake>>, Reconciled) {
        let mut r = Reconciled::default();
        self.ice = match (self.ice.take(), &crypto.ice) {
            (_, None) => None,
            (Some(mut i), Some(p))
                if i.params.local == p.local
                    && i.params.component == p.component
                    && (i.params.remote.is_none() || i.params.remote == p.remote)
                    && controlling(&i.params) == controlling(p) =>
            {
                if p.remote != i.params.remote {
                    if let Some(c) = &p.remote {
                        i.agent.set_remote_credentials(&c.ufrag, &c.pwd);
                    }
                    i.params.remote = p.remote.clone();
                }
                if p.full != i.params.full {
                    i.add_candidates(p);
                    i.params.full = p.full.clone();
                }
                Some(i)
            }
            // New credentials on either side (an ICE restart), lite and full swapped, or the
            // role changed (a peer that turned ICE-lite): a new agent.
            (_, Some(p)) => Some(IceSide::new(id, p, local)),
        };
        self.dtls = match (self.dtls.take(), &crypto.dtls) {
            (old, None) => {
                r.reset_keys = old.is_some_and(|d| d.delivered);
                None
            }
            (Some(mut d), Some(p))
                if d.params.role == p.role
                    && (d.params.fingerprint.is_none()
                        || d.params.fingerprint == p.fingerprint) =>
            {
                if d.params.fingerprint.is_none() {
                    if let Some(fp) = &p.fingerprint {
                        d.params.fingerprint = Some(fp.clone());
                        if let Some(e) = d.endpoint.as_mut() {
                            // A failure is kept in the endpoint's state, read below.
                            let _ = e.set_remote_fingerprint(fp.clone());
                        }
                    }
                }
                Some(d)
            }
            // A new role or another certificate: a new association.
            (old, Some(p)) => {
                r.reset_keys = old.is_some_and(|d| d.delivered);
                Some(DtlsSide::new(id, p, ctx))
            }
        };
        if self.ice.is_none() && self.dtls.is_none() {
            return (None, r);
        }
        self.after(id, now, None, sinks, &mut r.progress);
        (Some(self), r)
    }

    pub(super) fn state(&self) -> HandshakeState {
        let dtls = self.dtls.as_ref().map(|d| match (&d.endpoint, &d.ctx) {
            (Some(e), _) => e.state(),
            (None, None) => DtlsState::Failed(DtlsError::Config("no DTLS context".into())),
            (None, Some(_)) => DtlsState::Handshaking,
        });
        HandshakeState {
            ice: self.ice.as_ref().map(|i| i.agent.state()),
            ice_peer: self.ice_peer(),
            nominated: self.ice.as_ref().is_some_and(|i| i.nominated.is_some()),
            dtls,
            dtls_peer: self.dtls.as_ref().and_then(|d| d.peer),
            suite: self
                .dtls
                .as_ref()
                .and_then(|d| d.endpoint.as_ref())
                .and_then(|e| e.srtp_keys())
                .map(|k| k.suite),
        }
    }
}

impl IceSide {
    fn new(id: u64, params: &FlowIce, local: Option<SocketAddr>) -> IceSide {
        let (mode, role, tie_breaker) = match &params.full {
            Some(f) if f.controlling => (IceMode::Full, IceRole::Controlling, f.tie_breaker),
            Some(f) => (IceMode::Full, IceRole::Controlled, f.tie_breaker),
            None => (IceMode::Lite, IceRole::Controlled, id),
        };
        let config = IceConfig {
            mode,
            ..IceConfig::default()
        };
        let mut agent = IceAgent::with_parts(
            config,
            role,
            params.local.clone(),
            tie_breaker,
            transaction_seed(id, params),
        );
        match local {
            Some(l) => {
                agent.add_local_host(params.component, l, l.ip());
            }
            None => tracing::warn!(flow = id, "ICE asked on a flow without a local address"),
        }
        if let Some(c) = &params.remote {
            agent.set_remote_credentials(&c.ufrag, &c.pwd);
        }
        let mut side = IceSide {
            agent,
            params: params.clone(),
            sdp_candidates: 0,
            verified: Vec::new(),
            nominated: None,
        };
        side.add_candidates(params);
        side
    }

    /// Gives a full agent the peer's candidates it does not have yet, highest priority first
    /// and at most [`MAX_SDP_CANDIDATES`] in all (the agent refuses duplicates and other
    /// components).
    fn add_candidates(&mut self, params: &FlowIce) {
        let Some(full) = &params.full else {
            return;
        };
        let mut mine: Vec<_> = full
            .candidates
            .iter()
            .filter(|c| c.component == params.component)
            .collect();
        mine.sort_by_key(|c| std::cmp::Reverse(c.priority));
        for c in mine {
            if self.sdp_candidates >= MAX_SDP_CANDIDATES {
                break;
            }
            if self.agent.add_remote_candidate(c).is_ok() {
                self.sdp_candidates += 1;
            }
        }
        if full.end_of_candidates {
            self.agent.end_of_remote_candidates();
        }
    }

    fn allows(&self, src: SocketAddr) -> bool {
        match self.nominated {
            Some(n) => n == src,
            None => self.verified.contains(&src),
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.nominated.or_else(|| self.verified.first().copied())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_packet(
        &mut self,
        id: u64,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        pkt: &[u8],
        sinks: &mut Sinks<'_>,
        p: &mut Progress,
    ) {
        let r = self.agent.handle_packet(now, src, local, pkt);
        let answered = self.drain(id, sinks, p);
        match r {
            Ok(()) if answered > 0 => sinks.stats.stun_answered += answered,
            Ok(()) => {}
            Err(_) => sinks.stats.stun_refused += 1,
        }
    }

    /// Sends what the agent has, takes its events; how many datagrams went out.
    fn drain(&mut self, id: u64, sinks: &mut Sinks<'_>, p: &mut Progress) -> u64 {
        let mut sent = 0;
        while let Some(t) = self.agent.poll_transmit() {
            sent += 1;
            sinks.outbox.push(
                HandshakeTransmit {
                    flow: id,
                    dst: t.remote,
                    bytes: t.bytes,
                },
                sinks.stats,
            );
        }
        while let Some(ev) = self.agent.poll_event() {
            match ev {
                IceEvent::Verified { remote, .. } => {
                    if !self.verified.contains(&remote) && self.verified.len() < MAX_VERIFIED {
                        self.verified.push(remote);
                    }
                    if self.nominated.is_none() && self.verified.first() == Some(&remote) {
                        p.peer = Some(remote);
                    }
                }
                IceEvent::Nominated { remote, .. } => {
                    tracing::debug!(flow = id, %remote, "ICE peer nominated");
                    self.nominated = Some(remote);
                    p.peer = Some(remote);
                }
                IceEvent::StateChanged(_) | IceEvent::RoleChanged(_) => {}
            }
        }
        sent
    }
}

impl DtlsSide {
    fn new(id: u64, params: &FlowDtls, ctx: Option<&Arc<DtlsContext>>) -> DtlsSide {
        if ctx.is_none() {
            tracing::warn!(
                flow = id,
                "DTLS asked but the relay has no DTLS context: media dropped"
            );
        }
        DtlsSide {
            params: params.clone(),
            ctx: ctx.cloned(),
            endpoint: None,
            peer: None,
            delivered: false,
            failed: false,
        }
    }

    /// The relay's ClientHello goes out once the peer's address is known.
    fn start_active(&mut self, id: u64, now: Millis, peer: Option<SocketAddr>) {
        if self.endpoint.is_some() || self.params.role != Role::Active {
            return;
        }
        let (Some(ctx), Some(peer)) = (&self.ctx, peer) else {
            return;
        };
        tracing::debug!(flow = id, %peer, "DTLS handshake started (active)");
        self.peer = Some(peer);
        self.endpoint = Some(DtlsEndpoint::new(
            ctx.clone(),
            Role::Active,
            self.params.fingerprint.clone(),
            now,
        ));
    }

    fn on_datagram(
        &mut self,
        id: u64,
        now: Millis,
        src: SocketAddr,
        pkt: &[u8],
        sinks: &mut Sinks<'_>,
        p: &mut Progress,
    ) {
        let Some(ctx) = &self.ctx else {
            return;
        };
        // Passive: the first ClientHello makes the endpoint; one after a failure starts over
        // (a browser that reloads, or a handshake an attacker broke).
        let restart = self.params.role == Role::Passive
            && is_client_hello(pkt)
            && self
                .endpoint
                .as_ref()
                .is_none_or(|e| matches!(e.state(), DtlsState::Failed(_)));
        if restart {
            self.endpoint = Some(DtlsEndpoint::new(
                ctx.clone(),
                Role::Passive,
                self.params.fingerprint.clone(),
                now,
            ));
            self.failed = false;
        }
        let Some(e) = self.endpoint.as_mut() else {
            return;
        };
        self.peer = Some(src);
        // A failure is kept in the endpoint's state, read in `flush`.
        let _ = e.handle_datagram(pkt, now);
        self.flush(id, sinks, p);
    }

    /// Sends what the endpoint has to the peer, and takes its result.
    fn flush(&mut self, id: u64, sinks: &mut Sinks<'_>, p: &mut Progress) {
        let Some(e) = self.endpoint.as_mut() else {
            return;
        };
        if let Some(dst) = self.peer {
            while let Some(bytes) = e.poll_transmit() {
                sinks.outbox.push(
                    HandshakeTransmit {
                        flow: id,
                        dst,
                        bytes,
                    },
                    sinks.stats,
                );
            }
        }
        match e.state() {
            DtlsState::Connected if !self.delivered => {
                self.delivered = true;
                sinks.stats.dtls_completed += 1;
                p.keys = e.srtp_keys().cloned();
                tracing::debug!(flow = id, "DTLS-SRTP keys in place");
            }
            DtlsState::Failed(error) if !self.failed => {
                self.failed = true;
                p.failed = true;
                sinks.stats.dtls_failed += 1;
                tracing::debug!(flow = id, %error, "DTLS handshake failed");
            }
            _ => {}
        }
    }
}

/// A DTLS record carrying a ClientHello (content type 22, handshake type 1 after the 13-byte
/// record header).
fn is_client_hello(pkt: &[u8]) -> bool {
    pkt.first() == Some(&22) && pkt.get(13) == Some(&1)
}

/// The seed of an agent's transaction ids: they must not be guessable (a forged response to
/// a check would need one), so it is drawn from the stream's secret seed (from the OS RNG;
/// the password is no secret to the peer) and the flow.
fn transaction_seed(id: u64, params: &FlowIce) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"rtprelay ICE transactions");
    if let Some(f) = &params.full {
        h.update(f.seed);
    }
    h.update(params.local.pwd.as_bytes());
    h.update(id.to_le_bytes());
    h.update(params.component.to_le_bytes());
    h.finalize().into()
}

/// The relay's ICE mode and role a flow asks for: `None` lite, else whether it controls.
fn controlling(p: &FlowIce) -> Option<bool> {
    p.full.as_ref().map(|f| f.controlling)
}
