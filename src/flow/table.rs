//! One worker's flow table, sans-IO: what a packet that arrived on a flow's socket becomes
//! (forwarded out of the egress flow's socket to its peer, or dropped and counted), with the
//! latch, the source policy, `block media` and the recording tap on the way. No sockets and no
//! clock: the worker passes the time in and a plane does the I/O, so every decision is testable
//! with made-up packets and a made-up clock.
//!
//! The wall clock that stamps recorded packets is passed in too ([`FlowTable::with_wall_clock`]).
//!
//! Each flow carries an opaque `S` for the I/O side that owns it (the worker's socket and
//! kernel rule; nothing in tests). [`FlowTable::run`] looks the egress flow up once per batch
//! and hands back a [`Run`] that decides each packet of the batch.
//!
//! SRTP ([`FlowCrypto`]): what arrives on a flow with an inbound key is authenticated and
//! decrypted in the plane's slot before anything else looks at it (so a packet that fails
//! never moves the latch, is never counted as media, recorded or forwarded); what leaves by a
//! flow with an outbound key is encrypted in the slot, growing into the slot's room. Those runs
//! go through [`Run::packet_mut`]; plain runs ([`Run::transforms`] false) stay on the
//! read-only [`Run::packet`], zero-copy as before.
//!
//! DTLS-SRTP and ICE ([`FlowCrypto::dtls`], [`FlowCrypto::ice`]): such a flow carries its
//! handshakes (`handshake`). What arrives is told apart by its first byte (RFC 7983): STUN goes
//! to the ICE agent, DTLS to the endpoint, both consumed ([`DropReason::Handshake`]);
//! what they answer waits in the table's outbox ([`FlowTable::pop_transmit`]) for the worker to
//! send from the flow's socket. With ICE, media is taken only from the address that passed a
//! check (the nominated one once there is one), and that address fixes the latch. With DTLS,
//! media is dropped both ways until the handshake gave keys: such flows' runs always
//! [transform](Run::transforms), and the outbound context is a pending one that refuses.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::SystemTime;

use self::handshake::{Deferred, Handshake, Outbox, Progress, Sinks};
pub use self::handshake::{HandshakeState, HandshakeStats, HandshakeTransmit, MAX_OUTBOX};
use self::srtp::{Cipher, InboundFailure};
use super::latch::{Latch, LatchConfig, Verdict};
use super::tap::RecordTap;
use super::{FlowCrypto, FlowId, FlowKind, StreamCounters};
use crate::dtls::DtlsContext;
use crate::guard::TargetPolicy;
use crate::srtp::SrtpContext;
use crate::time::Millis;
use crate::wire::demux::{self, Demux};
use crate::wire::{is_rtcp, rtcp, rtp};

/// What a flow is opened with (the session layer's side; the I/O side comes separately).
#[derive(Debug)]
pub struct FlowSpec {
    pub kind: FlowKind,
    /// What arrives here leaves by this flow's socket, to its peer.
    pub egress: Option<FlowId>,
    /// RTCP multiplexed on this (RTP) flow leaves by this flow instead of `egress`: the other
    /// side takes RTCP on its own port (`rtcp-mux: demux`).
    pub rtcp_egress: Option<FlowId>,
    pub latch: LatchConfig,
    pub counters: Arc<StreamCounters>,
    pub record: Option<RecordTap>,
    /// The flow socket's own address: the source the policy checks are made for, and the key of
    /// the flow's kernel rule.
    pub local: Option<SocketAddr>,
    /// SRTP to remove from what arrives and to add to what leaves.
    pub crypto: FlowCrypto,
}

/// New signalling for an open flow (answer, re-INVITE): what [`FlowSpec`] says, less what
/// stays with the flow (its counters and socket).
#[derive(Debug)]
pub struct FlowChange {
    /// A re-INVITE may turn audio into T.38 (or back) on the same ports.
    pub kind: FlowKind,
    pub egress: Option<FlowId>,
    pub rtcp_egress: Option<FlowId>,
    pub latch: LatchConfig,
    pub record: Option<RecordTap>,
    /// Unchanged keys keep the flow's SRTP state.
    pub crypto: FlowCrypto,
}

/// One receiving socket of a call, as its worker relays it.
pub struct Flow<S> {
    kind: FlowKind,
    egress: Option<FlowId>,
    rtcp_egress: Option<FlowId>,
    latch: Latch,
    counters: Arc<StreamCounters>,
    /// The learned endpoint last reported to control.
    reported: Option<SocketAddr>,
    /// Where copies of accepted RTP go when the flow is recorded.
    record: Option<RecordTap>,
    local: Option<SocketAddr>,
    /// `block media`: media that passes the checks is dropped, not forwarded, except RTCP and
    /// the RTP payload types in the mask (DTMF events).
    blocked: Option<u128>,
    /// SRTP as negotiated.
    crypto: FlowCrypto,
    /// The context what arrives is unprotected with (the outbound one is in the table, as the
    /// flows forwarding here need it while their own flow is borrowed).
    srtp_in: Option<Cipher>,
    /// ICE and DTLS on the flow's socket, when asked for.
    handshake: Option<Box<Handshake>>,
    /// The I/O side: opaque to the table.
    pub io: S,
}

impl<S> Flow<S> {
    pub fn kind(&self) -> FlowKind {
        self.kind
    }
    pub fn egress(&self) -> Option<FlowId> {
        self.egress
    }
    /// Where multiplexed RTCP goes when not by `egress` (see [`FlowSpec::rtcp_egress`]).
    pub fn rtcp_egress(&self) -> Option<FlowId> {
        self.rtcp_egress
    }
    pub fn latch(&self) -> &Latch {
        &self.latch
    }
    pub fn counters(&self) -> &Arc<StreamCounters> {
        &self.counters
    }
    pub fn recorded(&self) -> bool {
        self.record.is_some()
    }
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }
    pub fn blocked(&self) -> Option<u128> {
        self.blocked
    }
    pub fn crypto(&self) -> &FlowCrypto {
        &self.crypto
    }
    /// The I/O side to change, with the counters to account what it did.
    pub fn io_and_counters(&mut self) -> (&mut S, &StreamCounters) {
        (&mut self.io, &self.counters)
    }
}

/// Why a packet was not forwarded. Every drop is counted on its flow before it is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not something the flow relays (a truncated RTP header, junk on an RTCP port).
    Malformed,
    /// A new source the relay never sends to (its own port, its host, a denied network).
    RefusedSource,
    /// The latch refused the source (strict source, or another peer while one is fixed).
    Latch,
    /// Accepted, then dropped by `block media`.
    Blocked,
    /// Accepted, but the egress flow or its peer is not known yet.
    NoEgress,
    /// SRTP/SRTCP that did not authenticate under the peer's key (counted in the flow's
    /// errors and SRTP auth failures).
    Unauthenticated,
    /// SRTP/SRTCP replayed or older than the replay window (errors and SRTP replays).
    Replay,
    /// Refused by SRTP for other reasons: too many SSRCs on a context, no room in the slot for
    /// the tag, the key's packet index space exhausted, or a transforming flow's packet given
    /// without a writable slot.
    Srtp,
    /// A STUN or DTLS datagram taken by the flow's handshake (not an error: not counted).
    Handshake,
    /// ICE: media from an address that passed no connectivity check, or not the nominated one
    /// (counted in the flow's errors).
    Unverified,
    /// DTLS-SRTP without keys yet (the handshake runs, failed, or the relay has no DTLS
    /// context): media is dropped, not passed in clear (counted as dropped).
    AwaitingKeys,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<E> {
    /// Send the first `len` bytes of the packet's slot (the packet as it arrived, or as SRTP
    /// transformed it in place) out of the egress flow's socket (`via`, as the caller's lookup
    /// gave it) to `dst`. If the plane cannot queue it, report [`Run::not_sent`].
    Forward {
        via: E,
        dst: SocketAddr,
        len: usize,
    },
    Drop(DropReason),
}

/// What a batch changed beyond the flow's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunOutcome {
    /// Packets accepted (counted in the flow's packets or RTCP packets).
    pub accepted: u64,
    /// Packets dropped for their source by the policy (the worker's refused-sources count).
    pub refused: u64,
    /// SRTP/SRTCP packets that did not authenticate, and replays (the workers' totals).
    pub srtp_auth_failures: u64,
    pub srtp_replays: u64,
    /// The latch moved or fixed its endpoint: the flow's kernel rule (and its partner's) may
    /// have to change.
    pub offload: bool,
    /// An endpoint learned at another address than the SDP one, to report to control once.
    pub learned: Option<SocketAddr>,
}

/// The flows of one worker, by id.
pub struct FlowTable<S> {
    flows: HashMap<u64, Flow<S>>,
    /// The outbound SRTP context of each flow that has one: what leaves by the flow's socket is
    /// protected with it, in the run of the flow that forwards there.
    srtp_out: HashMap<u64, Cipher>,
    /// Stamps the copies of recorded packets (called for those only).
    wall: fn() -> SystemTime,
    /// What every DTLS endpoint of the table is made from (the relay's certificate).
    dtls: Option<Arc<DtlsContext>>,
    /// The flows that carry a handshake: the only ones [`FlowTable::poll_handshakes`] looks at.
    live: Vec<u64>,
    /// Handshake datagrams for the worker to send.
    outbox: Outbox,
    hs_stats: HandshakeStats,
    /// Outbound keys a handshake gave during a run (its own outbound context cannot be
    /// reached while the run holds the egress one), installed before the next run or poll.
    /// Until then the pending context refuses: nothing goes out in clear.
    deferred: Deferred,
}

impl<S> Default for FlowTable<S> {
    /// A table whose recordings are stamped with the system's wall clock.
    fn default() -> Self {
        FlowTable::with_wall_clock(SystemTime::now)
    }
}

impl<S> FlowTable<S> {
    /// A table whose recordings are stamped by `wall`.
    pub fn with_wall_clock(wall: fn() -> SystemTime) -> Self {
        FlowTable {
            flows: HashMap::new(),
            srtp_out: HashMap::new(),
            wall,
            dtls: None,
            live: Vec::new(),
            outbox: Outbox::default(),
            hs_stats: HandshakeStats::default(),
            deferred: Deferred::default(),
        }
    }

    /// The DTLS context the table's flows make their endpoints from. Flows asking for DTLS
    /// without one drop their media.
    pub fn set_dtls(&mut self, ctx: Option<Arc<DtlsContext>>) {
        self.dtls = ctx;
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn get(&self, id: u64) -> Option<&Flow<S>> {
        self.flows.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Flow<S>> {
        self.flows.get_mut(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &Flow<S>)> {
        self.flows.iter().map(|(id, f)| (*id, f))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Flow<S>)> {
        self.flows.iter_mut().map(|(id, f)| (*id, f))
    }

    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.flows.keys().copied()
    }

    /// Start relaying flow `id`; the caller closes a flow with the same id first.
    pub fn open(&mut self, id: FlowId, spec: FlowSpec, io: S, now: Millis) {
        let handshake = Handshake::new(id.0, &spec.crypto, spec.local, self.dtls.as_ref(), now);
        self.forget_handshake(id.0);
        if handshake.is_some() {
            self.live.push(id.0);
        }
        if spec.crypto.dtls.is_some() {
            self.srtp_out.insert(id.0, Cipher::pending());
        } else {
            self.set_outbound(id.0, spec.crypto.outbound.as_ref());
        }
        let inbound = spec
            .crypto
            .inbound
            .as_ref()
            .filter(|_| spec.crypto.dtls.is_none());
        let flow = Flow {
            kind: spec.kind,
            egress: spec.egress,
            rtcp_egress: spec.rtcp_egress,
            latch: Latch::new(spec.latch, now),
            counters: spec.counters,
            reported: None,
            record: spec.record,
            local: spec.local,
            blocked: None,
            srtp_in: inbound.map(|p| Cipher::build(p, id.0, "inbound")),
            handshake,
            crypto: spec.crypto,
            io,
        };
        self.flows.insert(id.0, flow);
    }

    /// New signalling for flow `id`. False when there is no such flow.
    pub fn update(&mut self, id: FlowId, change: FlowChange, now: Millis) -> bool {
        let Some(f) = self.flows.get_mut(&id.0) else {
            return false;
        };
        f.kind = change.kind;
        f.egress = change.egress;
        f.rtcp_egress = change.rtcp_egress;
        f.latch.update(change.latch, now);
        f.record = change.record;
        let had_dtls = f.crypto.dtls.is_some();
        let has_dtls = change.crypto.dtls.is_some();
        // Same parameters keep the handshakes (and their keys); see `Handshake::reconcile`.
        let mut progress = None;
        let mut reset_keys = false;
        let handshake = match f.handshake.take() {
            Some(h) => {
                let mut sinks = Sinks {
                    outbox: &mut self.outbox,
                    stats: &mut self.hs_stats,
                };
                let (h, r) = h.reconcile(
                    id.0,
                    &change.crypto,
                    f.local,
                    self.dtls.as_ref(),
                    now,
                    &mut sinks,
                );
                reset_keys = r.reset_keys;
                progress = Some(r.progress);
                h
            }
            None => Handshake::new(id.0, &change.crypto, f.local, self.dtls.as_ref(), now),
        };
        f.handshake = handshake;
        // The latch learns again after new signalling; ICE's peer stays the peer.
        if let Some(peer) = f.handshake.as_ref().and_then(|h| h.ice_peer()) {
            f.latch.nominate(peer);
        }
        let live = f.handshake.is_some();
        if has_dtls {
            if reset_keys || !had_dtls {
                f.srtp_in = None;
            }
        } else if had_dtls || f.crypto.inbound != change.crypto.inbound {
            // Equal keys keep their contexts: the rollover counters and replay windows go on.
            f.srtp_in = change
                .crypto
                .inbound
                .as_ref()
                .map(|p| Cipher::build(p, id.0, "inbound"));
        }
        let outbound_changed = f.crypto.outbound != change.crypto.outbound;
        f.crypto = change.crypto;
        if let Some(p) = progress {
            apply_progress(f, id.0, p, &mut self.deferred);
        }
        if has_dtls {
            if reset_keys || !had_dtls {
                self.deferred.keys.retain(|(i, _)| *i != id.0);
                self.srtp_out.insert(id.0, Cipher::pending());
            }
        } else if had_dtls || outbound_changed {
            let params = f.crypto.outbound.clone();
            self.deferred.keys.retain(|(i, _)| *i != id.0);
            self.set_outbound(id.0, params.as_ref());
        }
        self.live.retain(|i| *i != id.0);
        if live {
            self.live.push(id.0);
        }
        self.settle();
        true
    }

    /// Installs the outbound keys handshakes gave since the last call.
    fn settle(&mut self) {
        if self.deferred.keys.is_empty() {
            return;
        }
        for (id, params) in std::mem::take(&mut self.deferred.keys) {
            if self.flows.contains_key(&id) {
                self.srtp_out
                    .insert(id, Cipher::build(&params, id, "outbound"));
            }
        }
    }

    /// Drives the handshakes' timers (retransmissions, timeouts) and starts active DTLS
    /// handshakes whose peer became known. Only flows with a handshake are looked at.
    pub fn poll_handshakes(&mut self, now: Millis) {
        for &id in &self.live {
            let Some(f) = self.flows.get_mut(&id) else {
                continue;
            };
            let latch_peer = f.latch.target();
            let Some(h) = f.handshake.as_deref_mut() else {
                continue;
            };
            if !h.is_due(now) {
                continue;
            }
            let mut sinks = Sinks {
                outbox: &mut self.outbox,
                stats: &mut self.hs_stats,
            };
            let p = h.poll(id, now, latch_peer, &mut sinks);
            apply_progress(f, id, p, &mut self.deferred);
        }
        self.settle();
    }

    /// The next handshake datagram to send from its flow's socket.
    pub fn pop_transmit(&mut self) -> Option<HandshakeTransmit> {
        self.outbox.pop()
    }

    /// How many handshake datagrams wait.
    pub fn pending_transmits(&self) -> usize {
        self.outbox.len()
    }

    /// The handshake totals since the last call.
    pub fn take_handshake_stats(&mut self) -> HandshakeStats {
        std::mem::take(&mut self.hs_stats)
    }

    /// The flows whose handshake moved since the last call (ICE named a peer, DTLS connected or
    /// failed), with where they are now: for the worker to report.
    pub fn take_handshake_changes(&mut self) -> Vec<(u64, HandshakeState)> {
        if self.deferred.changed.is_empty() {
            return Vec::new();
        }
        let mut ids = std::mem::take(&mut self.deferred.changed);
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| Some((id, self.handshake_state(id)?)))
            .collect()
    }

    /// Where flow `id`'s handshakes are; `None` without a handshake (or such a flow).
    pub fn handshake_state(&self, id: u64) -> Option<HandshakeState> {
        self.flows.get(&id)?.handshake.as_ref().map(|h| h.state())
    }

    fn forget_handshake(&mut self, id: u64) {
        self.live.retain(|i| *i != id);
        self.deferred.changed.retain(|i| *i != id);
        self.deferred.keys.retain(|(i, _)| *i != id);
    }

    /// (Re)builds or drops flow `id`'s outbound context.
    fn set_outbound(&mut self, id: u64, params: Option<&crate::srtp::Params>) {
        match params {
            Some(p) => {
                self.srtp_out.insert(id, Cipher::build(p, id, "outbound"));
            }
            None => {
                self.srtp_out.remove(&id);
            }
        }
    }

    /// Whether flow `id`'s packets go through SRTP: it unprotects what arrives, or its egress
    /// protects what leaves. Such a flow stays in userspace (the kernel path cannot do AES).
    pub fn transforms(&self, id: u64) -> bool {
        self.flows.get(&id).is_some_and(|f| {
            f.srtp_in.is_some()
                || f.handshake.is_some()
                || f.egress.is_some_and(|e| self.srtp_out.contains_key(&e.0))
        })
    }

    /// Flow `id`'s SRTP contexts (inbound, outbound), as built: for `query` and tests.
    pub fn srtp_contexts(&self, id: u64) -> (Option<&SrtpContext>, Option<&SrtpContext>) {
        let inbound = self
            .flows
            .get(&id)
            .and_then(|f| f.srtp_in.as_ref())
            .and_then(Cipher::context);
        let outbound = self.srtp_out.get(&id).and_then(Cipher::context);
        (inbound, outbound)
    }

    /// Start or stop recording flow `id`. False when there is no such flow.
    pub fn tap(&mut self, id: FlowId, record: Option<RecordTap>) -> bool {
        match self.flows.get_mut(&id.0) {
            Some(f) => {
                f.record = record;
                true
            }
            None => false,
        }
    }

    /// Start or stop `block media` on flow `id`: `Some(changed)`, or None when there is no such
    /// flow.
    pub fn block(&mut self, id: FlowId, block: Option<u128>) -> Option<bool> {
        let f = self.flows.get_mut(&id.0)?;
        let changed = f.blocked != block;
        f.blocked = block;
        Some(changed)
    }

    /// Stop relaying flow `id`; its I/O side comes back for the caller to close.
    pub fn close(&mut self, id: FlowId) -> Option<Flow<S>> {
        self.srtp_out.remove(&id.0);
        self.forget_handshake(id.0);
        self.flows.remove(&id.0)
    }

    /// Start deciding a batch of packets that arrived on flow `token` at `now`. `out` names the
    /// egress flow's socket as the plane wants it (looked up once for the batch). None when
    /// the flow is gone.
    pub fn run<'a, E: Copy>(
        &'a mut self,
        token: u64,
        now: Millis,
        policy: &'a TargetPolicy,
        out: impl Fn(&S) -> E,
    ) -> Option<Run<'a, S, E>> {
        self.settle();
        // The egress side cannot change while this batch is processed: look it up once.
        let (egress_id, rtcp_egress_id) =
            self.flows.get(&token).map(|f| (f.egress, f.rtcp_egress))?;
        let egress_flow = egress_id.and_then(|e| self.flows.get(&e.0));
        let egress = egress_flow.map(|e| (out(&e.io), e.latch.target()));
        let rtcp_egress = rtcp_egress_id
            .and_then(|e| self.flows.get(&e.0))
            .map(|e| (out(&e.io), e.latch.target()));
        let egress_awaiting = egress_flow
            .and_then(|e| e.handshake.as_ref())
            .is_some_and(|h| h.awaiting_keys());
        let protect = match egress_id {
            Some(e) if egress.is_some() => self.srtp_out.get_mut(&e.0),
            _ => None,
        };
        let flow = self.flows.get_mut(&token)?;
        let before = (flow.latch.is_fixed(), flow.latch.source());
        Some(Run {
            token,
            via: flow.local.map_or(IpAddr::from([0u8; 4]), |l| l.ip()),
            transforms: flow.srtp_in.is_some() || flow.handshake.is_some() || protect.is_some(),
            flow,
            egress,
            rtcp_egress,
            protect,
            egress_awaiting,
            outbox: &mut self.outbox,
            hs_stats: &mut self.hs_stats,
            deferred: &mut self.deferred,
            policy,
            now,
            wall: self.wall,
            before,
            outcome: RunOutcome::default(),
        })
    }
}

/// The decisions for one batch of packets of one flow (see [`FlowTable::run`]).
pub struct Run<'a, S, E> {
    token: u64,
    flow: &'a mut Flow<S>,
    egress: Option<(E, Option<SocketAddr>)>,
    /// Where multiplexed RTCP goes instead (the other side's RTCP socket and its peer). It is
    /// protected with the egress flow's context: the same keys, and the only SRTCP that context
    /// sends.
    rtcp_egress: Option<(E, Option<SocketAddr>)>,
    /// The egress flow's outbound SRTP context.
    protect: Option<&'a mut Cipher>,
    /// The egress flow waits for its DTLS keys (its context refuses).
    egress_awaiting: bool,
    outbox: &'a mut Outbox,
    hs_stats: &'a mut HandshakeStats,
    deferred: &'a mut Deferred,
    /// Packets need a writable slot: the flow unprotects, or the egress protects.
    transforms: bool,
    via: IpAddr,
    policy: &'a TargetPolicy,
    now: Millis,
    wall: fn() -> SystemTime,
    before: (bool, Option<SocketAddr>),
    outcome: RunOutcome,
}

impl<S, E: Copy> Run<'_, S, E> {
    /// Whether this run's packets go through SRTP: then each must be given writable, with room
    /// to grow, through [`Run::packet_mut`]. One branch per batch for plain flows.
    pub fn transforms(&self) -> bool {
        self.transforms
    }

    /// Classify `pkt` from `src`, check its source (latching), count it, tap it, and say where
    /// it goes. For runs that do not [transform](Run::transforms): a packet of a run that does
    /// is dropped (it could be neither authenticated nor protected here).
    pub fn packet(&mut self, pkt: &[u8], src: SocketAddr) -> Decision<E> {
        if let Some(d) = self.handshake_packet(pkt, src) {
            return d;
        }
        if self.transforms {
            self.flow.counters.errors.fetch_add(1, Relaxed);
            return Decision::Drop(DropReason::Srtp);
        }
        match self.accept(pkt, src) {
            Ok(rtcp) => self.target(pkt.len(), rtcp),
            Err(reason) => Decision::Drop(reason),
        }
    }

    /// [`Run::packet`] for the packet `buf[..len]` in a slot the plane lets the table rewrite:
    /// with an inbound key it is authenticated and decrypted in place first (what fails is
    /// dropped and counted before the latch sees it), with an outbound key on the egress it is
    /// protected in place, growing into `buf` (a packet without the room is dropped). The
    /// forward says how many bytes of `buf` to send.
    pub fn packet_mut(&mut self, buf: &mut [u8], len: usize, src: SocketAddr) -> Decision<E> {
        if !self.transforms {
            return match buf.get(..len) {
                Some(pkt) => self.packet(pkt, src),
                None => self.malformed(),
            };
        }
        if let Some(d) = buf
            .get(..len)
            .and_then(|pkt| self.handshake_packet(pkt, src))
        {
            return d;
        }
        let mut len = len;
        let kind = self.flow.kind;
        let mut received = None;
        if let Some(cipher) = self.flow.srtp_in.as_ref() {
            // SRTP keeps the RTP header and the first RTCP header in clear: rtcp-mux is told
            // apart on them, as for plain packets.
            let rtcp = match kind {
                FlowKind::Rtcp => true,
                FlowKind::Rtp => buf.get(..len).is_some_and(is_rtcp),
                FlowKind::Opaque => false,
            };
            match cipher.unprotect(rtcp, buf, len) {
                Ok((n, r)) => (len, received) = (n, Some(r)),
                Err(e) => return self.refuse(InboundFailure::from(e)),
            }
        }
        let Some(pkt) = buf.get(..len) else {
            return self.malformed();
        };
        let accepted = self.accept(pkt, src);
        // The index is taken only for a packet whose source passed too (and, blocked, it was
        // still received): a genuine packet replayed from elsewhere first must not make the
        // genuine copy a replay.
        if let (Some(r), Ok(_) | Err(DropReason::Blocked)) = (received, &accepted) {
            if let Some(cipher) = self.flow.srtp_in.as_mut() {
                cipher.commit(r);
            }
        }
        let rtcp = match accepted {
            Ok(rtcp) => rtcp,
            Err(reason) => return Decision::Drop(reason),
        };
        let Decision::Forward { via, dst, .. } = self.target(len, rtcp) else {
            return Decision::Drop(DropReason::NoEgress);
        };
        if let Some(cipher) = self.protect.as_deref_mut() {
            match cipher.protect(rtcp, buf, len) {
                Ok(n) => len = n,
                Err(error) => {
                    self.flow.counters.dropped.fetch_add(1, Relaxed);
                    if self.egress_awaiting {
                        return Decision::Drop(DropReason::AwaitingKeys);
                    }
                    tracing::trace!(flow = self.token, %error, "SRTP protect failed");
                    return Decision::Drop(DropReason::Srtp);
                }
            }
        }
        Decision::Forward { via, dst, len }
    }

    /// A flow with handshakes: STUN and DTLS are theirs; media must come from the ICE peer and
    /// wait for DTLS keys. `None`: go on as for any packet.
    fn handshake_packet(&mut self, pkt: &[u8], src: SocketAddr) -> Option<Decision<E>> {
        let flow = &mut *self.flow;
        let h = flow.handshake.as_deref_mut()?;
        let class = demux::classify(pkt);
        let ours = match class {
            Demux::Stun => h.has_ice(),
            Demux::Dtls => h.has_dtls(),
            _ => false,
        };
        if !ours {
            let c = &flow.counters;
            if !h.allows(src) {
                c.errors.fetch_add(1, Relaxed);
                return Some(Decision::Drop(DropReason::Unverified));
            }
            if h.awaiting_keys() {
                c.dropped.fetch_add(1, Relaxed);
                return Some(Decision::Drop(DropReason::AwaitingKeys));
            }
            return None;
        }
        // The relay answers: never a source it would not send to.
        if flow.latch.source() != Some(src) && self.policy.check(src, self.via).is_err() {
            flow.counters.errors.fetch_add(1, Relaxed);
            self.outcome.refused += 1;
            return Some(Decision::Drop(DropReason::RefusedSource));
        }
        let mut sinks = Sinks {
            outbox: self.outbox,
            stats: self.hs_stats,
        };
        let progress = if class == Demux::Stun {
            h.on_stun(self.token, self.now, src, flow.local, pkt, &mut sinks)
        } else {
            // Without ICE the latch decides, as for media: the handshake is with the peer it
            // learns (a NAT'd one too), and a source it refuses is not heard.
            let latched = !h.has_ice() && flow.latch.on_packet(src, self.now) == Verdict::Forward;
            match h.on_dtls(self.token, self.now, src, latched, pkt, &mut sinks) {
                Ok(p) => p,
                Err(()) => {
                    flow.counters.errors.fetch_add(1, Relaxed);
                    return Some(Decision::Drop(DropReason::Unverified));
                }
            }
        };
        apply_progress(flow, self.token, progress, self.deferred);
        Some(Decision::Drop(DropReason::Handshake))
    }

    fn malformed(&mut self) -> Decision<E> {
        self.flow.counters.errors.fetch_add(1, Relaxed);
        Decision::Drop(DropReason::Malformed)
    }

    /// A packet that failed to unprotect: counted, and dropped before anything else sees it.
    fn refuse(&mut self, failure: InboundFailure) -> Decision<E> {
        let c = &self.flow.counters;
        c.errors.fetch_add(1, Relaxed);
        Decision::Drop(match failure {
            InboundFailure::Unauthenticated => {
                c.srtp_auth_failures.fetch_add(1, Relaxed);
                self.outcome.srtp_auth_failures += 1;
                DropReason::Unauthenticated
            }
            InboundFailure::Replay => {
                c.srtp_replays.fetch_add(1, Relaxed);
                self.outcome.srtp_replays += 1;
                DropReason::Replay
            }
            InboundFailure::Malformed => DropReason::Malformed,
            InboundFailure::Refused => DropReason::Srtp,
        })
    }

    /// The checks and accounting of a (clear) packet: `Ok(is RTCP)` when it is accepted and
    /// not blocked; every refusal is counted before it is returned.
    fn accept(&mut self, pkt: &[u8], src: SocketAddr) -> Result<bool, DropReason> {
        let flow = &mut *self.flow;
        let c = &flow.counters;
        let Some(rtcp) = classify(flow.kind, pkt) else {
            c.errors.fetch_add(1, Relaxed);
            return Err(DropReason::Malformed);
        };
        // A source other than the one the stream accepts now could become its peer: the
        // relay's own ports (a loop) and the addresses it never sends to are refused.
        if flow.latch.source() != Some(src) && self.policy.check(src, self.via).is_err() {
            c.errors.fetch_add(1, Relaxed);
            self.outcome.refused += 1;
            return Err(DropReason::RefusedSource);
        }
        if flow.latch.on_packet(src, self.now) == Verdict::Drop {
            c.errors.fetch_add(1, Relaxed);
            return Err(DropReason::Latch);
        }
        let len = pkt.len() as u64;
        if rtcp {
            c.rtcp_packets.fetch_add(1, Relaxed);
            c.rtcp_bytes.fetch_add(len, Relaxed);
            // The peer's reception report, for loss, jitter and MOS (RTCP only: about one
            // packet in a hundred; the RTP path does nothing more).
            if let Some(block) = rtcp::Packet::new_checked(pkt)
                .ok()
                .and_then(|p| p.first_report_block())
            {
                c.record_report(&block);
            }
        } else {
            c.packets.fetch_add(1, Relaxed);
            c.bytes.fetch_add(len, Relaxed);
        }
        c.last_packet_ms.store(self.now.0.max(1), Relaxed);
        self.outcome.accepted += 1;
        // Recorded flows only (one branch for the others): a copy into a bounded queue, of
        // the clear packet.
        if let Some(tap) = &flow.record {
            if !rtcp {
                tap.offer_at(self.token, src, pkt, (self.wall)());
            }
        }
        if blocks(flow.blocked, flow.kind, rtcp, pkt) {
            c.dropped.fetch_add(1, Relaxed);
            return Err(DropReason::Blocked);
        }
        Ok(rtcp)
    }

    /// Where an accepted packet of `len` bytes goes.
    fn target(&mut self, len: usize, rtcp: bool) -> Decision<E> {
        let out = match self.rtcp_egress {
            Some(r) if rtcp => Some(r),
            _ => self.egress,
        };
        match out {
            Some((via, Some(dst))) => Decision::Forward { via, dst, len },
            _ => {
                self.flow.counters.dropped.fetch_add(1, Relaxed);
                Decision::Drop(DropReason::NoEgress)
            }
        }
    }

    /// A packet the plane could not hand over (larger than a slot, from a non-IP address).
    pub fn unusable(&mut self) {
        self.flow.counters.errors.fetch_add(1, Relaxed);
    }

    /// A packet decided [`Decision::Forward`] could not be queued for sending.
    pub fn not_sent(&mut self) {
        self.flow.counters.dropped.fetch_add(1, Relaxed);
    }

    /// The end of the batch: what it changed beyond the counters.
    pub fn finish(self) -> RunOutcome {
        let flow = self.flow;
        let mut outcome = self.outcome;
        outcome.offload = self.before != (flow.latch.is_fixed(), flow.latch.source());
        let learned = flow.latch.learned();
        if learned != flow.reported {
            flow.reported = learned;
            outcome.learned = learned;
        }
        outcome
    }
}

/// What a handshake step gave the flow: ICE's peer fixes the latch; DTLS keys build the inbound
/// context now and the outbound one at the table's next `settle`.
fn apply_progress<S>(flow: &mut Flow<S>, id: u64, p: Progress, deferred: &mut Deferred) {
    if p.peer.is_some() || p.keys.is_some() || p.failed {
        deferred.changed.push(id);
    }
    if let Some(peer) = p.peer {
        flow.latch.nominate(peer);
    }
    if let Some(keys) = p.keys {
        flow.srtp_in = Some(Cipher::build(&keys.remote, id, "inbound"));
        deferred.keys.retain(|(i, _)| *i != id);
        deferred.keys.push((id, keys.local));
    }
}

/// Whether `block media` (with the payload types in `block` still passing) drops this
/// accepted packet: RTCP never; RTP unless its type passes; opaque media always.
fn blocks(block: Option<u128>, kind: FlowKind, rtcp: bool, pkt: &[u8]) -> bool {
    let Some(pass) = block else { return false };
    if rtcp {
        return false;
    }
    match (kind, pkt.get(1)) {
        (FlowKind::Rtp, Some(b)) => pass & (1u128 << (b & 0x7f)) == 0,
        _ => true,
    }
}

/// Is `pkt` something a flow of `kind` relays? `Some(true)` for RTCP, `Some(false)` for RTP.
fn classify(kind: FlowKind, pkt: &[u8]) -> Option<bool> {
    match kind {
        FlowKind::Rtp if is_rtcp(pkt) => rtcp::Packet::new_checked(pkt).ok().map(|_| true),
        FlowKind::Rtp => rtp::Packet::new_checked_header(pkt).ok().map(|_| false),
        FlowKind::Rtcp => rtcp::Packet::new_checked(pkt).ok().map(|_| true),
        FlowKind::Opaque => Some(false),
    }
}

mod handshake;
#[cfg(test)]
mod handshake_tests;
mod srtp;
#[cfg(test)]
mod srtp_tests;
#[cfg(test)]
mod tests;
