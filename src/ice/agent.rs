//! The ICE agent of one media stream. See the module documentation in [`super`].

mod inbound;
mod timers;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::sdp::ice::{Candidate, IceAttributes, Transport};
use crate::sdp::Attribute;
use crate::stun::StunError;
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
