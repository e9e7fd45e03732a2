//! The ICE agent of one media stream. See the module documentation in [`super`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::sdp::ice::{Candidate, CandidateType, IceAttributes, Transport};
use crate::sdp::Attribute;
use crate::stun::{
    Class, Message, MessageBuilder, StunError, TransactionId, BINDING, ERROR_ROLE_CONFLICT,
    ERROR_UNKNOWN_ATTRIBUTE,
};
use crate::time::Millis;

use super::candidate::{
    candidate_priority, pair_priority, CandidateRefused, LocalCandidate, RemoteCandidate,
};
use super::checklist::{Pair, PairState, Transaction};
use super::credentials::Credentials;
use super::stats::IceStats;

/// Lite answers checks only; full runs its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceMode {
    Lite,
    Full,
}

/// Who nominates (RFC 8445 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Controlling,
    Controlled,
}

/// The agent's overall state, as `query` would show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// No check seen or sent yet.
    New,
    Checking,
    /// At least one component has a nominated pair.
    Connected,
    /// Every component has a nominated pair.
    Completed,
    /// Every pair failed and the peer has no more candidates to offer.
    Failed,
}

/// Tunables; [`IceConfig::default`] has RFC 8445's values.
#[derive(Debug, Clone)]
pub struct IceConfig {
    pub mode: IceMode,
    /// Pacing between new checks (RFC 8445 §14.2: 50 ms).
    pub ta: Duration,
    /// First retransmission timeout (RFC 8445 §14.3: at least 500 ms).
    pub initial_rto: Duration,
    /// The retransmission timeout doubles up to this.
    pub max_rto: Duration,
    /// Transmissions of one check before its pair fails (RFC 8489's Rc = 7).
    pub max_transmits: u32,
    /// Remote candidates kept (from SDP, trickle and peer-reflexive learning together).
    pub max_remote_candidates: usize,
    /// Pairs kept (RFC 8445 §6.1.2.5 suggests 100).
    pub max_pairs: usize,
    /// Controlling: nominate the best valid pair after this long even if better pairs are
    /// still being checked.
    pub nomination_delay: Duration,
    /// Full mode: a Binding indication on each nominated pair this often (RFC 8445 §11).
    pub keepalive: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            mode: IceMode::Lite,
            ta: Duration::from_millis(50),
            initial_rto: Duration::from_millis(500),
            max_rto: Duration::from_millis(1600),
            max_transmits: 7,
            max_remote_candidates: 32,
            max_pairs: 100,
            nomination_delay: Duration::from_millis(1000),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// A datagram to send from our socket `local` (a candidate's base) to `remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the agent reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    StateChanged(IceState),
    /// A role conflict switched our role.
    RoleChanged(Role),
    /// `remote` passed an authenticated check on our socket `local`: lite, a valid request from
    /// it; full, a valid response from it to our check. Media from it may be trusted.
    Verified {
        component: u16,
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// The pair media must use for `component` (emitted again if the peer nominates another).
    Nominated {
        component: u16,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// Why a datagram handed to [`IceAgent::handle_packet`] changed nothing. Each is counted in
/// [`IceStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IceDrop {
    #[error("malformed STUN: {0}")]
    Malformed(StunError),
    #[error("STUN fingerprint absent or wrong")]
    Fingerprint,
    #[error("STUN message integrity absent or wrong")]
    Integrity,
    #[error("STUN username is not ours")]
    UnknownUsername,
    #[error("no candidate on the receiving socket")]
    UnknownLocal,
    #[error("response to no check of ours")]
    UnknownTransaction,
    #[error("not a Binding request or response")]
    Other,
}

/// The ICE agent of one media stream.
#[derive(Debug)]
pub struct IceAgent {
    config: IceConfig,
    role: Role,
    tie_breaker: u64,
    local_creds: Credentials,
    remote_creds: Option<Credentials>,
    local: Vec<LocalCandidate>,
    remote: Vec<RemoteCandidate>,
    remote_complete: bool,
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    /// When the last new check went out (pacing).
    last_check: Option<Millis>,
    /// Per component: when its first pair succeeded (controlling nomination timer).
    first_valid: Vec<(u16, Millis)>,
    /// Per component: the nominated pair.
    nominated: Vec<(u16, usize)>,
    next_keepalive: Option<Millis>,
    state: IceState,
    rng: StdRng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
    stats: IceStats,
}

impl IceAgent {
    /// A new agent with credentials, tie breaker and transaction ids drawn from `rng`.
    pub fn new(config: IceConfig, role: Role, rng: &mut impl RngCore) -> Self {
        let creds = Credentials::random(rng);
        let tie_breaker = rng.next_u64();
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::with_parts(config, role, creds, tie_breaker, seed)
    }

    /// A new agent with everything given (tests, or restoring a stored call).
    pub fn with_parts(
        config: IceConfig,
        role: Role,
        local_creds: Credentials,
        tie_breaker: u64,
        seed: [u8; 32],
    ) -> Self {
        // A lite agent is always controlled (RFC 8445 §6.1.1).
        let role = match config.mode {
            IceMode::Lite => Role::Controlled,
            IceMode::Full => role,
        };
        IceAgent {
            config,
            role,
            tie_breaker,
            local_creds,
            remote_creds: None,
            local: Vec::new(),
            remote: Vec::new(),
            remote_complete: false,
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            last_check: None,
            first_valid: Vec::new(),
            nominated: Vec::new(),
            next_keepalive: None,
            state: IceState::New,
            rng: StdRng::from_seed(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: IceStats::default(),
        }
    }

    pub fn mode(&self) -> IceMode {
        self.config.mode
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn state(&self) -> IceState {
        self.state
    }
    pub fn stats(&self) -> &IceStats {
        &self.stats
    }
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_creds
    }
    pub fn local_candidates(&self) -> &[LocalCandidate] {
        &self.local
    }
    pub fn remote_candidates(&self) -> &[RemoteCandidate] {
        &self.remote
    }
    /// The state of the pair between our socket `local` and `remote`, if there is one.
    pub fn pair_state(&self, local: SocketAddr, remote: SocketAddr) -> Option<PairState> {
        self.pairs
            .iter()
            .find(|p| {
                self.local.get(p.local).map(|l| l.base) == Some(local)
                    && self.remote.get(p.remote).map(|r| r.addr) == Some(remote)
            })
            .map(|p| p.state)
    }
    /// Number of candidate pairs.
    pub fn pair_count(&self) -> usize {
        self.pairs.len()
    }
    /// The nominated (local socket, remote address) for `component`.
    pub fn nominated(&self, component: u16) -> Option<(SocketAddr, SocketAddr)> {
        let (_, i) = self.nominated.iter().find(|(c, _)| *c == component)?;
        self.pair_addrs(*i)
    }

    fn pair_addrs(&self, i: usize) -> Option<(SocketAddr, SocketAddr)> {
        let p = self.pairs.get(i)?;
        Some((
            self.local.get(p.local)?.base,
            self.remote.get(p.remote)?.addr,
        ))
    }

    // ---- our candidates and SDP ----

    /// Adds a host candidate on our socket `base`, advertised in SDP as `advertised` (the
    /// interface's `!ADVERTISED` address, or the base's own). Candidates with the same base IP
    /// share a foundation; each new base IP gets a lower local preference.
    pub fn add_local_host(
        &mut self,
        component: u16,
        base: SocketAddr,
        advertised: IpAddr,
    ) -> &LocalCandidate {
        let mut ips: Vec<IpAddr> = Vec::new();
        for c in &self.local {
            if !ips.contains(&c.base.ip()) {
                ips.push(c.base.ip());
            }
        }
        let index = ips
            .iter()
            .position(|ip| *ip == base.ip())
            .unwrap_or(ips.len());
        let local_pref = 65535u16.saturating_sub(u16::try_from(index).unwrap_or(u16::MAX));
        let foundation = (index + 1).to_string();
        let c = LocalCandidate {
            component,
            base,
            address: SocketAddr::new(advertised, base.port()),
            foundation,
            local_pref,
            priority: candidate_priority(126, local_pref, component),
        };
        self.local.push(c);
        let li = self.local.len() - 1;
        for ri in 0..self.remote.len() {
            self.add_pair(li, ri);
        }
        &self.local[li]
    }

    /// The media-level lines: `a=ice-ufrag`, `a=ice-pwd`, one `a=candidate` per local candidate,
    /// and `a=end-of-candidates` when `end_of_candidates`.
    pub fn media_attributes(&self, end_of_candidates: bool) -> Vec<Attribute> {
        let mut out = vec![
            Attribute::new("ice-ufrag", Some(self.local_creds.ufrag.clone())),
            Attribute::new("ice-pwd", Some(self.local_creds.pwd.clone())),
        ];
        out.extend(self.local.iter().map(|c| c.to_sdp().to_attribute()));
        if end_of_candidates {
            out.push(Attribute::new("end-of-candidates", None));
        }
        out
    }

    /// The session-level line: `a=ice-lite` in lite mode.
    pub fn session_attributes(&self) -> Vec<Attribute> {
        match self.config.mode {
            IceMode::Lite => vec![Attribute::new("ice-lite", None)],
            IceMode::Full => Vec::new(),
        }
    }

    // ---- the peer ----

    /// The peer's ufrag and password (from its SDP). A change is an ICE restart, which this
    /// agent does not do: the owner makes a new agent.
    pub fn set_remote_credentials(&mut self, ufrag: &str, pwd: &str) {
        self.remote_creds = Some(Credentials {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        });
    }

    /// Takes what the peer's SDP says for this stream: credentials, candidates, and whether more
    /// may trickle (without `a=ice-options:trickle`, or after `a=end-of-candidates`, none will).
    /// Returns how many candidates were refused (each logged with its reason); `None`, and
    /// nothing changed, without a ufrag and password.
    pub fn apply_remote_sdp(&mut self, ice: &IceAttributes) -> Option<usize> {
        let (Some(ufrag), Some(pwd)) = (&ice.ufrag, &ice.pwd) else {
            return None;
        };
        self.set_remote_credentials(ufrag, pwd);
        let mut refused = 0;
        for c in &ice.candidates {
            match self.add_remote_candidate(c) {
                Ok(()) | Err(CandidateRefused::Duplicate) => {}
                Err(e) => {
                    refused += 1;
                    tracing::debug!(candidate = %c, reason = %e, "remote ICE candidate refused");
                }
            }
        }
        if !ice.trickle() || ice.end_of_candidates {
            self.end_of_remote_candidates();
        }
        Some(refused)
    }

    /// The peer will send no more candidates (its SDP without trickle, or `a=end-of-candidates`).
    pub fn end_of_remote_candidates(&mut self) {
        self.remote_complete = true;
        self.update_state();
    }

    /// Adds a remote candidate from SDP or trickle, and pairs it with ours.
    pub fn add_remote_candidate(&mut self, c: &Candidate) -> Result<(), CandidateRefused> {
        if c.transport != Transport::Udp {
            return Err(CandidateRefused::NotUdp);
        }
        let ip = c.ip().ok_or(CandidateRefused::NotIp)?;
        let addr = SocketAddr::new(ip, c.port);
        self.insert_remote(RemoteCandidate {
            component: c.component,
            addr,
            priority: c.priority,
            foundation: c.foundation.clone(),
            typ: c.typ.clone(),
        })
        .map(|_| ())
    }

    fn insert_remote(&mut self, r: RemoteCandidate) -> Result<usize, CandidateRefused> {
        if r.addr.port() == 0 || r.addr.ip().is_unspecified() || r.addr.ip().is_multicast() {
            return Err(CandidateRefused::Unusable);
        }
        if !self.local.iter().any(|l| l.component == r.component) {
            return Err(CandidateRefused::NoSuchComponent);
        }
        if self
            .remote
            .iter()
            .any(|x| x.addr == r.addr && x.component == r.component)
        {
            return Err(CandidateRefused::Duplicate);
        }
        if self.remote.len() >= self.config.max_remote_candidates {
            self.stats.dropped_cap += 1;
            return Err(CandidateRefused::Cap);
        }
        self.remote.push(r);
        let ri = self.remote.len() - 1;
        for li in 0..self.local.len() {
            self.add_pair(li, ri);
        }
        self.update_state();
        Ok(ri)
    }

    fn priority_of(&self, l: &LocalCandidate, r: &RemoteCandidate) -> u64 {
        match self.role {
            Role::Controlling => pair_priority(l.priority, r.priority),
            Role::Controlled => pair_priority(r.priority, l.priority),
        }
    }

    fn add_pair(&mut self, li: usize, ri: usize) -> Option<usize> {
        let (l, r) = (self.local.get(li)?, self.remote.get(ri)?);
        if l.component != r.component || l.base.is_ipv4() != r.addr.is_ipv4() {
            return None;
        }
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.local == li && p.remote == ri)
        {
            return Some(i);
        }
        if self.pairs.len() >= self.config.max_pairs {
            self.stats.dropped_cap += 1;
            return None;
        }
        // The first pair of a foundation starts Waiting, the others Frozen (RFC 8445 §6.1.2.6).
        let same_foundation = self.pairs.iter().any(|p| {
            self.local.get(p.local).map(|x| &x.foundation) == Some(&l.foundation)
                && self.remote.get(p.remote).map(|x| &x.foundation) == Some(&r.foundation)
        });
        let state = match (self.config.mode, same_foundation) {
            (IceMode::Lite, _) => PairState::Waiting,
            (IceMode::Full, false) => PairState::Waiting,
            (IceMode::Full, true) => PairState::Frozen,
        };
        let prio = self.priority_of(l, r);
        self.pairs.push(Pair::new(li, ri, l.component, prio, state));
        Some(self.pairs.len() - 1)
    }

    fn set_role(&mut self, role: Role) {
        if self.role == role {
            return;
        }
        self.role = role;
        self.stats.role_conflicts += 1;
        for i in 0..self.pairs.len() {
            let prio = match self.pairs.get(i).and_then(|p| {
                Some(self.priority_of(self.local.get(p.local)?, self.remote.get(p.remote)?))
            }) {
                Some(p) => p,
                None => continue,
            };
            if let Some(p) = self.pairs.get_mut(i) {
                p.priority = prio;
            }
        }
        self.events.push_back(IceEvent::RoleChanged(role));
    }

    // ---- output ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// When [`IceAgent::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let mut t: Option<Millis> = None;
        let mut at = |m: Millis| t = Some(t.map_or(m, |x| x.min(m)));
        for p in &self.pairs {
            if let Some(tx) = &p.tx {
                at(tx.next_at);
            }
        }
        if self.config.mode == IceMode::Full && self.remote_creds.is_some() {
            if self.has_check_to_send() {
                at(self
                    .last_check
                    .map_or(Millis(0), |l| l.plus(self.config.ta)));
            }
            if self.role == Role::Controlling {
                for (c, first) in &self.first_valid {
                    let candidate = self
                        .pairs
                        .iter()
                        .any(|p| p.component == *c && p.state == PairState::Succeeded);
                    if candidate && self.nomination_open(*c) {
                        at(first.plus(self.config.nomination_delay));
                    }
                }
            }
            if let Some(k) = self.next_keepalive {
                at(k);
            }
        }
        t
    }

    // ---- input: time ----

    /// Retransmits, paces new checks, nominates and keeps alive.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.retransmit(now);
        if self.config.mode == IceMode::Full && self.remote_creds.is_some() {
            if self.role == Role::Controlling {
                self.maybe_nominate(now);
            }
            let paced = self
                .last_check
                .is_none_or(|l| now >= l.plus(self.config.ta));
            if paced {
                if let Some(i) = self.next_check() {
                    self.start_check(i, now);
                    self.last_check = Some(now);
                }
            }
            self.keepalive(now);
        }
        self.update_state();
    }

    fn retransmit(&mut self, now: Millis) {
        for i in 0..self.pairs.len() {
            let Some(p) = self.pairs.get_mut(i) else {
                continue;
            };
            let Some(tx) = p.tx.as_mut() else { continue };
            if now < tx.next_at {
                continue;
            }
            if tx.transmits >= self.config.max_transmits {
                // The transaction timed out: the pair fails (RFC 8445 §7.2.5.2.4 via §14).
                p.tx = None;
                p.state = PairState::Failed;
                tracing::debug!(pair = i, "ICE check timed out");
                continue;
            }
            tx.transmits += 1;
            tx.rto = (tx.rto * 2).min(self.config.max_rto);
            tx.next_at = now.plus(tx.rto);
            let bytes = tx.bytes.clone();
            self.stats.retransmits += 1;
            if let Some((local, remote)) = self.pair_addrs(i) {
                self.transmits.push_back(Transmit {
                    local,
                    remote,
                    bytes,
                });
            }
        }
    }

    fn component_done(&self, component: u16) -> bool {
        self.nominated.iter().any(|(c, _)| *c == component)
            || self
                .pairs
                .iter()
                .any(|p| p.component == component && p.tx.as_ref().is_some_and(|t| t.use_candidate))
    }

    fn has_check_to_send(&self) -> bool {
        !self.triggered.is_empty()
            || self.pairs.iter().any(|p| {
                matches!(p.state, PairState::Waiting | PairState::Frozen)
                    && p.tx.is_none()
                    && !self.component_done(p.component)
            })
    }

    /// The triggered queue first, then the highest-priority Waiting pair, then the
    /// highest-priority Frozen one (RFC 8445 §6.1.4.2), skipping components already nominated.
    fn next_check(&mut self) -> Option<usize> {
        while let Some(i) = self.triggered.pop_front() {
            if let Some(p) = self.pairs.get_mut(i) {
                p.triggered = false;
                if p.tx.is_none() && p.state != PairState::Failed {
                    return Some(i);
                }
            }
        }
        let best = |state: PairState| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.state == state && p.tx.is_none() && !self.component_done(p.component)
                })
                .max_by_key(|(i, p)| (p.priority, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
        };
        best(PairState::Waiting).or_else(|| best(PairState::Frozen))
    }

    fn nomination_open(&self, component: u16) -> bool {
        !self.component_done(component)
    }

    /// Regular nomination (RFC 8445 §8.1.1): once the best valid pair of a component has no
    /// better pair left to check, or after `nomination_delay`, check it again with
    /// USE-CANDIDATE.
    fn maybe_nominate(&mut self, now: Millis) {
        let comps: Vec<(u16, Millis)> = self.first_valid.clone();
        for (c, first) in comps {
            if !self.nomination_open(c) {
                continue;
            }
            let Some((best, prio)) = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.component == c && p.state == PairState::Succeeded)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority))
            else {
                continue;
            };
            let better_pending = self
                .pairs
                .iter()
                .any(|p| p.component == c && p.pending() && p.priority > prio);
            if better_pending && now < first.plus(self.config.nomination_delay) {
                continue;
            }
            tracing::debug!(pair = best, component = c, "ICE nominating");
            self.send_check(best, now, true);
        }
    }

    fn keepalive(&mut self, now: Millis) {
        if self.nominated.is_empty() {
            return;
        }
        match self.next_keepalive {
            None => self.next_keepalive = Some(now.plus(self.config.keepalive)),
            Some(k) if now >= k => {
                self.next_keepalive = Some(now.plus(self.config.keepalive));
                let pairs: Vec<usize> = self.nominated.iter().map(|(_, i)| *i).collect();
                for i in pairs {
                    let tid = self.new_tid();
                    let bytes = MessageBuilder::new(Class::Indication, BINDING, &tid).fingerprint();
                    if let Some((local, remote)) = self.pair_addrs(i) {
                        self.transmits.push_back(Transmit {
                            local,
                            remote,
                            bytes,
                        });
                    }
                }
            }
            Some(_) => {}
        }
    }

    fn new_tid(&mut self) -> TransactionId {
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        tid
    }

    fn start_check(&mut self, i: usize, now: Millis) {
        self.send_check(i, now, false);
    }

    /// Sends a Binding request on pair `i` (RFC 8445 §7.2.2): USERNAME `their:our`, PRIORITY,
    /// our role's attribute with the tie breaker, USE-CANDIDATE when nominating.
    fn send_check(&mut self, i: usize, now: Millis, nominate: bool) {
        let Some(remote_creds) = self.remote_creds.clone() else {
            return;
        };
        let Some((local, remote, prflx)) = self.pairs.get(i).and_then(|p| {
            let l = self.local.get(p.local)?;
            Some((l.base, self.remote.get(p.remote)?.addr, l.prflx_priority()))
        }) else {
            return;
        };
        let tid = self.new_tid();
        let mut b = MessageBuilder::new(Class::Request, BINDING, &tid);
        b.username(&format!(
            "{}:{}",
            remote_creds.ufrag, self.local_creds.ufrag
        ))
        .priority(prflx);
        match self.role {
            Role::Controlling => b.ice_controlling(self.tie_breaker),
            Role::Controlled => b.ice_controlled(self.tie_breaker),
        };
        let use_candidate = nominate && self.role == Role::Controlling;
        if use_candidate {
            b.use_candidate();
        }
        b.integrity(remote_creds.pwd.as_bytes());
        let bytes = b.fingerprint();
        let rto = self.config.initial_rto;
        let role = self.role;
        let Some(p) = self.pairs.get_mut(i) else {
            return;
        };
        if !use_candidate {
            p.state = PairState::InProgress;
        }
        p.tx = Some(Transaction {
            id: tid,
            bytes: bytes.clone(),
            next_at: now.plus(rto),
            rto,
            transmits: 1,
            use_candidate,
            role,
        });
        self.stats.checks_sent += 1;
        self.transmits.push_back(Transmit {
            local,
            remote,
            bytes,
        });
    }

    // ---- input: packets ----

    /// A STUN datagram from `src` arrived on our socket `local`. Checks run in RFC 8445 §7.3's
    /// order (fingerprint, then integrity with the short-term password, then username); a
    /// failure is counted and changes nothing.
    pub fn handle_packet(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IceDrop> {
        let r = self.handle_inner(now, src, local, bytes);
        if let Err(e) = r {
            let s = &mut self.stats;
            match e {
                IceDrop::Malformed(_) => s.dropped_malformed += 1,
                IceDrop::Fingerprint => s.dropped_bad_fingerprint += 1,
                IceDrop::Integrity => s.dropped_bad_integrity += 1,
                IceDrop::UnknownUsername => s.dropped_unknown_username += 1,
                IceDrop::UnknownLocal => s.dropped_unknown_local += 1,
                IceDrop::UnknownTransaction => s.dropped_unknown_transaction += 1,
                IceDrop::Other => s.dropped_other += 1,
            }
            tracing::trace!(%src, %local, reason = %e, "STUN dropped");
        }
        self.update_state();
        r
    }

    fn handle_inner(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), IceDrop> {
        let m = Message::parse(bytes).map_err(IceDrop::Malformed)?;
        if m.method() != BINDING {
            return Err(IceDrop::Other);
        }
        match m.class() {
            Class::Request => self.on_request(now, src, local, &m),
            Class::Success | Class::Error => self.on_response(now, src, local, &m),
            // A keepalive: nothing to do (and nothing to check: it carries no integrity).
            Class::Indication => m.check_fingerprint(true).map_err(|_| IceDrop::Fingerprint),
        }
    }

    fn on_request(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
    ) -> Result<(), IceDrop> {
        m.check_fingerprint(true)
            .map_err(|_| IceDrop::Fingerprint)?;
        m.check_integrity(self.local_creds.pwd.as_bytes())
            .map_err(|_| IceDrop::Integrity)?;
        self.check_username(m.username())?;
        let li = self
            .local
            .iter()
            .position(|l| l.base == local)
            .ok_or(IceDrop::UnknownLocal)?;

        if !m.unknown_required().is_empty() {
            let unknown = m.unknown_required().to_vec();
            self.send_error(
                src,
                local,
                m,
                ERROR_UNKNOWN_ATTRIBUTE,
                "Unknown Attribute",
                &unknown,
            );
            return Ok(());
        }
        if self.config.mode == IceMode::Full && !self.resolve_role_conflict(src, local, m) {
            return Ok(());
        }
        self.send_success(src, local, m);

        let Some(component) = self.local.get(li).map(|l| l.component) else {
            return Err(IceDrop::UnknownLocal);
        };
        let ri = match self
            .remote
            .iter()
            .position(|r| r.addr == src && r.component == component)
        {
            Some(ri) => ri,
            None => {
                // A peer-reflexive candidate (RFC 8445 §7.3.1.3).
                let n = self.remote.len();
                let priority = m
                    .priority()
                    .unwrap_or_else(|| candidate_priority(110, 65535, component));
                match self.insert_remote(RemoteCandidate {
                    component,
                    addr: src,
                    priority,
                    foundation: format!("prflx{n}"),
                    typ: CandidateType::PeerReflexive,
                }) {
                    Ok(ri) => ri,
                    // Answered, but no pair can be kept for it.
                    Err(_) => return Ok(()),
                }
            }
        };
        let Some(pi) = self.add_pair(li, ri) else {
            return Ok(());
        };
        let use_candidate = m.use_candidate() && self.role == Role::Controlled;
        match self.config.mode {
            IceMode::Lite => {
                if let Some(p) = self.pairs.get_mut(pi) {
                    p.state = PairState::Succeeded;
                }
                self.mark_verified(pi);
                if use_candidate {
                    self.nominate(pi, now);
                }
            }
            IceMode::Full => {
                let Some(p) = self.pairs.get_mut(pi) else {
                    return Ok(());
                };
                if use_candidate {
                    p.remote_nominated = true;
                }
                match p.state {
                    PairState::Succeeded => {
                        if use_candidate {
                            self.nominate(pi, now);
                        }
                    }
                    // A check of ours is out on it; its answer settles the pair.
                    PairState::InProgress => {}
                    PairState::Frozen | PairState::Waiting | PairState::Failed => {
                        // A triggered check (RFC 8445 §7.3.1.4).
                        p.state = PairState::Waiting;
                        if !p.triggered {
                            p.triggered = true;
                            self.triggered.push_back(pi);
                        }
                        if self.remote_creds.is_some() {
                            // Send it now if the pacing allows, not at the next tick.
                            let paced = self
                                .last_check
                                .is_none_or(|l| now >= l.plus(self.config.ta));
                            if paced {
                                if let Some(i) = self.next_check() {
                                    self.start_check(i, now);
                                    self.last_check = Some(now);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// USERNAME must be `our-ufrag:their-ufrag` (the second part checked once we know it).
    fn check_username(&self, username: Option<&[u8]>) -> Result<(), IceDrop> {
        let u = username.ok_or(IceDrop::UnknownUsername)?;
        let u = std::str::from_utf8(u).map_err(|_| IceDrop::UnknownUsername)?;
        let (ours, theirs) = u.split_once(':').ok_or(IceDrop::UnknownUsername)?;
        if ours != self.local_creds.ufrag {
            return Err(IceDrop::UnknownUsername);
        }
        match &self.remote_creds {
            Some(r) if r.ufrag != theirs => Err(IceDrop::UnknownUsername),
            _ => Ok(()),
        }
    }

    /// RFC 8445 §7.3.1.1. Returns false when the request was answered with 487.
    fn resolve_role_conflict(
        &mut self,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
    ) -> bool {
        match (self.role, m.ice_controlling(), m.ice_controlled()) {
            (Role::Controlling, Some(theirs), _) => {
                if self.tie_breaker >= theirs {
                    self.stats.role_conflicts += 1;
                    self.send_error(src, local, m, ERROR_ROLE_CONFLICT, "Role Conflict", &[]);
                    return false;
                }
                self.set_role(Role::Controlled);
            }
            (Role::Controlled, _, Some(theirs)) => {
                if self.tie_breaker >= theirs {
                    self.set_role(Role::Controlling);
                } else {
                    self.stats.role_conflicts += 1;
                    self.send_error(src, local, m, ERROR_ROLE_CONFLICT, "Role Conflict", &[]);
                    return false;
                }
            }
            _ => {}
        }
        true
    }

    fn send_success(&mut self, src: SocketAddr, local: SocketAddr, m: &Message<'_>) {
        let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
        b.xor_mapped_address(src)
            .integrity(self.local_creds.pwd.as_bytes());
        self.stats.requests_answered += 1;
        self.transmits.push_back(Transmit {
            local,
            remote: src,
            bytes: b.fingerprint(),
        });
    }

    fn send_error(
        &mut self,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
        code: u16,
        reason: &str,
        unknown: &[u16],
    ) {
        let mut b = MessageBuilder::new(Class::Error, BINDING, m.transaction_id());
        b.error_code(code, reason);
        if !unknown.is_empty() {
            b.unknown_attributes(unknown);
        }
        b.integrity(self.local_creds.pwd.as_bytes());
        self.stats.errors_sent += 1;
        self.transmits.push_back(Transmit {
            local,
            remote: src,
            bytes: b.fingerprint(),
        });
    }

    fn on_response(
        &mut self,
        now: Millis,
        src: SocketAddr,
        local: SocketAddr,
        m: &Message<'_>,
    ) -> Result<(), IceDrop> {
        let pi = self
            .pairs
            .iter()
            .position(|p| p.tx.as_ref().is_some_and(|t| &t.id == m.transaction_id()))
            .ok_or(IceDrop::UnknownTransaction)?;
        m.check_fingerprint(true)
            .map_err(|_| IceDrop::Fingerprint)?;
        let pwd = self
            .remote_creds
            .as_ref()
            .map(|c| c.pwd.clone())
            .ok_or(IceDrop::Integrity)?;
        m.check_integrity(pwd.as_bytes())
            .map_err(|_| IceDrop::Integrity)?;
        let Some((base, remote)) = self.pair_addrs(pi) else {
            return Err(IceDrop::UnknownTransaction);
        };
        let Some(p) = self.pairs.get_mut(pi) else {
            return Err(IceDrop::UnknownTransaction);
        };
        let Some(tx) = p.tx.take() else {
            return Err(IceDrop::UnknownTransaction);
        };
        // Non-symmetric addresses fail the pair (RFC 8445 §7.2.5.2.1).
        if src != remote || local != base {
            p.state = PairState::Failed;
            return Ok(());
        }
        if m.class() == Class::Error {
            if m.error_code() == Some(ERROR_ROLE_CONFLICT) {
                // RFC 8445 §7.2.5.1: switch role (unless already switched) and check again.
                p.state = PairState::Waiting;
                if !p.triggered {
                    p.triggered = true;
                    self.triggered.push_back(pi);
                }
                if tx.role == self.role {
                    let other = match self.role {
                        Role::Controlling => Role::Controlled,
                        Role::Controlled => Role::Controlling,
                    };
                    self.set_role(other);
                    // RFC 8445 §16.1: after a 487 the tie breaker MUST change.
                    self.tie_breaker = self.rng.next_u64();
                }
            } else {
                // Any other error fails the pair, a nomination check's too (else the
                // nomination would be retried at once, forever).
                p.state = PairState::Failed;
            }
            return Ok(());
        }
        // Success: the valid pair is the pair checked (our candidates are host candidates;
        // the mapped address is only informative).
        p.state = PairState::Succeeded;
        let component = p.component;
        let nominate = tx.use_candidate || p.remote_nominated && self.role == Role::Controlled;
        if !self.first_valid.iter().any(|(c, _)| *c == component) {
            self.first_valid.push((component, now));
        }
        // Unfreeze the pairs of the same foundation (RFC 8445 §7.2.5.3.3).
        let foundation = self.pair_foundation(pi);
        let same: Vec<usize> = (0..self.pairs.len())
            .filter(|i| self.pair_foundation(*i) == foundation)
            .collect();
        for i in same {
            if let Some(q) = self.pairs.get_mut(i) {
                if q.state == PairState::Frozen {
                    q.state = PairState::Waiting;
                }
            }
        }
        self.mark_verified(pi);
        if nominate {
            self.nominate(pi, now);
        }
        Ok(())
    }

    fn pair_foundation(&self, i: usize) -> Option<(&str, &str)> {
        let p = self.pairs.get(i)?;
        Some((
            self.local.get(p.local)?.foundation.as_str(),
            self.remote.get(p.remote)?.foundation.as_str(),
        ))
    }

    fn mark_verified(&mut self, pi: usize) {
        let Some(p) = self.pairs.get_mut(pi) else {
            return;
        };
        if p.verified {
            return;
        }
        p.verified = true;
        let component = p.component;
        if let Some((local, remote)) = self.pair_addrs(pi) {
            self.events.push_back(IceEvent::Verified {
                component,
                local,
                remote,
            });
        }
    }

    fn nominate(&mut self, pi: usize, now: Millis) {
        if self.config.mode == IceMode::Full && self.next_keepalive.is_none() {
            self.next_keepalive = Some(now.plus(self.config.keepalive));
        }
        let Some(p) = self.pairs.get_mut(pi) else {
            return;
        };
        p.nominated = true;
        let component = p.component;
        match self.nominated.iter_mut().find(|(c, _)| *c == component) {
            Some((_, i)) if *i == pi => return,
            Some((_, i)) => *i = pi,
            None => self.nominated.push((component, pi)),
        }
        if let Some((local, remote)) = self.pair_addrs(pi) {
            tracing::debug!(component, %local, %remote, "ICE pair nominated");
            self.events.push_back(IceEvent::Nominated {
                component,
                local,
                remote,
            });
        }
    }

    fn update_state(&mut self) {
        let mut components: Vec<u16> = self.local.iter().map(|l| l.component).collect();
        components.sort_unstable();
        components.dedup();
        let done = components
            .iter()
            .filter(|c| self.nominated.iter().any(|(n, _)| n == *c))
            .count();
        let state = if !components.is_empty() && done == components.len() {
            IceState::Completed
        } else if done > 0 {
            IceState::Connected
        } else if self.config.mode == IceMode::Full
            && self.remote_complete
            && !self.pairs.is_empty()
            && self.triggered.is_empty()
            && self.pairs.iter().all(|p| p.state == PairState::Failed)
        {
            IceState::Failed
        } else if !self.pairs.is_empty() {
            IceState::Checking
        } else {
            IceState::New
        };
        if state != self.state {
            self.state = state;
            self.events.push_back(IceEvent::StateChanged(state));
        }
    }
}
