//! Endpoint learning ("latching") and strict-source checks, as a pure policy.
//!
//! One [`Latch`] sits behind each receiving local socket and answers two questions: may a packet
//! from this source be relayed ([`Latch::on_packet`]), and where do packets *to* this peer go
//! ([`Latch::target`])? Time is passed in; nothing here reads a clock.
//!
//! The behaviour follows rtpengine's `--endpoint-learning`:
//! - a learning window (3 s) starts when the stream is signalled (and again when a re-INVITE
//!   changes the SDP endpoint). While it is open every packet is relayed and the target follows
//!   the sources seen (`delayed`: the newest; `heuristic`: the best ranked).
//! - the endpoint becomes *fixed* on the first packet after the window (`delayed`: that
//!   packet's source; `heuristic`: the best source seen, that packet included), at once on the
//!   first packet (`immediate`), at once on a packet from exactly the SDP address (`heuristic`),
//!   or from the start (`off`: the SDP address).
//! - with strict source, once fixed, packets from any other source are dropped (including the
//!   packet that closed a `heuristic` window, when it is not the winner; rtpengine relays that
//!   one packet).
//!
//! `heuristic` (the default) ranks a source against what signalling says about the peer: its SDP
//! address and port, and the address its SIP message came from (`received-from`, which Kamailio
//! sends with every offer and answer). A source at the peer's SDP address or its SIP source
//! address is *expected*; anything else is not. Unlike rtpengine, an unexpected source never
//! becomes the target while the SDP address is one the relay can reach: media goes to the SDP
//! address until an expected source speaks, and after the window only expected sources are
//! accepted. Where the SDP address cannot be right (none, or a private address seen from a
//! relay with a public one: a phone behind NAT), the window closes on the best source seen, as
//! rtpengine learns; an expected source that speaks later still takes over, and such a stream
//! stays out of the kernel until then.
//!
//! With strict source (the default) this is what stops an injector (the CVE-2025-53399 class):
//! one that sends first, from the SDP port on another address or from any other port, neither
//! receives the call's media nor keeps the real peer out, and its packets are dropped (as
//! rtpengine's strict source drops them); where the SDP address cannot be right they are
//! relayed while the window is open. Once an expected source has spoken, packets from lesser
//! sources are dropped even inside the window.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::time::Millis;

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

/// The learning window rtpengine uses.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3);

/// What the session layer knows about one receiving stream's peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchConfig {
    /// The peer's address:port from SDP; `None` when unknown or the null address.
    pub expected: Option<SocketAddr>,
    pub learning: EndpointLearning,
    /// Strict source: once the endpoint is fixed, drop packets from any other source.
    pub strict: bool,
    /// Always send to `expected`; learning still decides which source strict mode accepts.
    pub asymmetric: bool,
    /// How long to learn before fixing the endpoint.
    pub window: Duration,
    /// Where the peer's signalling came from (`received-from`): its address ranks as expected.
    pub signalled_from: Option<IpAddr>,
    /// The SDP address cannot be the peer's real one: a private address seen from a relay that
    /// advertises a public one (a phone behind NAT). Under `heuristic`, an unexpected source may
    /// then become the peer once the window has closed, as rtpengine learns.
    pub sdp_unreachable: bool,
    /// The source this stream had latched on before a restart or a takeover (from the call
    /// store): the stream starts fixed on it, as an expected source, instead of learning
    /// again for a window in which a NAT'd peer's media would go to its unreachable SDP address.
    /// Only an open reads it; signalling that changes the stream later learns as usual.
    pub restored: Option<SocketAddr>,
}

impl Default for LatchConfig {
    fn default() -> Self {
        LatchConfig {
            expected: None,
            learning: EndpointLearning::default(),
            strict: false,
            asymmetric: false,
            window: DEFAULT_WINDOW,
            signalled_from: None,
            sdp_unreachable: false,
            restored: None,
        }
    }
}

/// Whether a received packet may be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop,
}

/// The lowest rank of an expected source (see [`LatchConfig::rank`]).
const EXPECTED: u8 = 2;
/// The rank of a peer ICE named: above the SDP address itself.
const NOMINATED: u8 = 4;

impl LatchConfig {
    /// How well a source matches what signalling says about the peer (higher is better):
    /// 3 its SDP address and port, 2 its SDP address or its SIP source address (expected),
    /// 1 the SDP port on another address, 0 anything else.
    fn rank(&self, src: SocketAddr) -> u8 {
        let ip = src.ip().to_canonical();
        let sdp_ip = self.expected.is_some_and(|e| e.ip().to_canonical() == ip);
        let sdp_port = self.expected.is_some_and(|e| e.port() == src.port());
        let sip_ip = self.signalled_from.is_some_and(|s| s.to_canonical() == ip);
        match (sdp_ip, sdp_port) {
            (true, true) => 3,
            (true, false) => 2,
            _ if sip_ip => 2,
            (false, true) => 1,
            (false, false) => 0,
        }
    }

    /// Whether signalling says anything to rank sources against.
    fn has_expectations(&self) -> bool {
        self.expected.is_some() || self.signalled_from.is_some()
    }

    /// Whether an unexpected source may become the peer (`heuristic`): only without a usable SDP
    /// address, or with `asymmetric` (media then always goes to the SDP address, and the source
    /// the peer really sends from may be any: an SBC sending from another node than it signals).
    fn open(&self) -> bool {
        self.expected.is_none() || self.sdp_unreachable || self.asymmetric
    }
}

/// The learning state of one receiving stream.
#[derive(Debug, Clone)]
pub struct Latch {
    cfg: LatchConfig,
    /// Packets at or after this instant fix the endpoint.
    window_end: Millis,
    /// Who we currently believe the peer is, with its heuristic rank.
    current: Option<(SocketAddr, u8)>,
    /// The endpoint is fixed: no more learning, strict source applies.
    fixed: bool,
    /// The peer before signalling moved it (a re-INVITE): still expected while the new one is
    /// learnt, so media in transit from the old address is not lost.
    previous: Option<SocketAddr>,
}

impl Latch {
    pub fn new(cfg: LatchConfig, now: Millis) -> Latch {
        let mut l = Latch {
            cfg,
            window_end: now,
            current: None,
            fixed: false,
            previous: None,
        };
        l.restart(now);
        l
    }

    fn restart(&mut self, now: Millis) {
        self.window_end = now.plus(self.cfg.window);
        self.current = None;
        self.fixed = false;
        if let (EndpointLearning::Off, Some(exp)) = (self.cfg.learning, self.cfg.expected) {
            self.current = Some((exp, 3));
            self.fixed = true;
        } else if let Some(src) = self.cfg.restored {
            self.current = Some((src, self.cfg.rank(src).max(EXPECTED)));
            self.fixed = true;
        }
    }

    /// New signalling (answer, re-INVITE). Learning restarts when the SDP endpoint or the mode
    /// changed; an endpoint still being learned gets a fresh window, as rtpengine waits 3 s after
    /// the last signal.
    pub fn update(&mut self, cfg: LatchConfig, now: Millis) {
        let changed = cfg.expected != self.cfg.expected
            || cfg.learning != self.cfg.learning
            || cfg.signalled_from != self.cfg.signalled_from
            || cfg.sdp_unreachable != self.cfg.sdp_unreachable;
        let previous = self.current.map(|(a, _)| a).or(self.cfg.expected);
        self.cfg = cfg;
        if changed {
            self.restart(now);
            self.previous = previous;
        } else if !self.fixed {
            self.window_end = now.plus(self.cfg.window);
        }
    }

    /// Account a packet from `src`; may move or fix the learned endpoint.
    pub fn on_packet(&mut self, src: SocketAddr, now: Millis) -> Verdict {
        if self.cfg.learning == EndpointLearning::Heuristic && self.cfg.has_expectations() {
            return self.heuristic(src, now);
        }
        if self.fixed {
            return self.check(src);
        }
        let in_window = now < self.window_end;
        match (self.cfg.learning, self.cfg.expected) {
            // Without an SDP address, `off` has nothing to fall back on: take the first source.
            (EndpointLearning::Immediate, _) | (EndpointLearning::Off, None) => {
                self.fix(src);
                Verdict::Forward
            }
            // `delayed`, or `heuristic` with nothing to rank against.
            _ => {
                self.current = Some((src, 0));
                if !in_window {
                    self.fixed = true;
                }
                Verdict::Forward
            }
        }
    }

    /// `heuristic` learning with an SDP or SIP source address to rank against.
    fn heuristic(&mut self, src: SocketAddr, now: Millis) -> Verdict {
        let mut r = self.cfg.rank(src);
        if r < EXPECTED && self.previous == Some(src) {
            r = EXPECTED;
        }
        let best = self.current.map_or(0, |(_, c)| c);
        if self.fixed {
            // An expected source takes over an endpoint fixed on an unexpected one.
            if r >= EXPECTED && best < EXPECTED {
                self.current = Some((src, r));
                return Verdict::Forward;
            }
            return self.check(src);
        }
        if self.current.is_none() || r > best {
            self.current = Some((src, r));
        }
        let best = self.current.map_or(0, |(_, c)| c);
        let window_over = now >= self.window_end;
        // The window closes on the best source seen, but on an unexpected one only where the
        // SDP address cannot be the peer's real one (see `LatchConfig::sdp_unreachable`).
        if r == 3 || (window_over && (best >= EXPECTED || self.cfg.open())) {
            self.fixed = true;
            return self.check(src);
        }
        if !self.cfg.strict {
            return Verdict::Forward;
        }
        match self.current {
            // Once an expected source has spoken, strict drops the lesser ones.
            Some((b, c)) if c >= EXPECTED && b != src => Verdict::Drop,
            // With a usable SDP address, an unexpected source never becomes the peer: strict
            // drops it (rtpengine too); without one, it is relayed while the window is open.
            _ if r < EXPECTED && (window_over || !self.cfg.open()) => Verdict::Drop,
            _ => Verdict::Forward,
        }
    }

    /// ICE named `addr` the peer (a check from it passed, or it was nominated): the endpoint is
    /// fixed on it at once, above any rank signalling could give, so no other source takes
    /// over.
    pub fn nominate(&mut self, addr: SocketAddr) {
        self.current = Some((addr, NOMINATED));
        self.fixed = true;
        self.previous = None;
    }

    fn fix(&mut self, src: SocketAddr) {
        self.current = Some((src, 0));
        self.fixed = true;
    }

    fn check(&self, src: SocketAddr) -> Verdict {
        match self.current {
            Some((addr, _)) if self.cfg.strict && addr != src => Verdict::Drop,
            _ => Verdict::Forward,
        }
    }

    /// Where packets to this peer go: the learned endpoint, else the SDP one. Under
    /// `heuristic`, an unexpected source is never the target while the SDP address is one the
    /// relay can reach; otherwise (no SDP address, or an unreachable one) it is once the window
    /// has closed without an expected source, or at once when there is no SDP address at all.
    pub fn target(&self) -> Option<SocketAddr> {
        let learned = self.current.map(|(a, _)| a);
        if self.cfg.asymmetric {
            return self.cfg.expected.or(learned);
        }
        if self.cfg.learning != EndpointLearning::Heuristic {
            return learned.or(self.cfg.expected);
        }
        match self.current {
            Some((a, r)) if r >= EXPECTED => Some(a),
            Some((a, _)) if self.cfg.open() && (self.fixed || self.cfg.expected.is_none()) => {
                Some(a)
            }
            _ => self.cfg.expected.or(learned),
        }
    }

    /// The learned endpoint when it differs from the SDP one, for `query` reports. Under
    /// `heuristic` that is where media goes (a source still being weighed is not reported).
    pub fn learned(&self) -> Option<SocketAddr> {
        let learned = if self.cfg.learning == EndpointLearning::Heuristic && !self.cfg.asymmetric {
            self.target()
        } else {
            self.current.map(|(a, _)| a)
        };
        learned.filter(|a| Some(*a) != self.cfg.expected)
    }

    /// The endpoint packets are accepted from (learned or from SDP), `None` before any.
    pub fn source(&self) -> Option<SocketAddr> {
        self.current.map(|(a, _)| a)
    }

    /// Whether learning has ended.
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// Whether the endpoint is fixed for good: not on an unexpected source that an expected
    /// one may still take over (such a stream stays out of the kernel, which could not hand
    /// the expected peer's packets back).
    pub fn is_settled(&self) -> bool {
        self.fixed
            && !(self.cfg.learning == EndpointLearning::Heuristic
                && self.cfg.has_expectations()
                && self.current.is_some_and(|(_, r)| r < EXPECTED))
    }

    pub fn config(&self) -> &LatchConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::EndpointLearning::*;
    use super::Verdict::{Drop as D, Forward as F};
    use super::*;

    // The five sources of rtpengine's learning tests, in our own addresses.
    const SDP: &str = "198.51.100.3:2012";
    const PORT: &str = "198.51.100.3:2032"; // same address, other port (rank 2)
    const ADDR: &str = "198.51.100.6:2012"; // other address, same port (rank 1)
    const ANY: &str = "198.51.100.6:2032"; // all different (rank 0)
    const EVIL: &str = "203.0.113.66:40000"; // an injector (rank 0)

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn cfg(learning: EndpointLearning, strict: bool, expected: Option<&str>) -> LatchConfig {
        LatchConfig {
            expected: expected.map(a),
            learning,
            strict,
            asymmetric: false,
            window: Duration::from_millis(3000),
            signalled_from: None,
            sdp_unreachable: false,
            restored: None,
        }
    }

    /// As [`cfg`], for a peer whose SDP address the relay cannot reach (behind NAT).
    fn cfg_nat(learning: EndpointLearning, strict: bool, expected: Option<&str>) -> LatchConfig {
        LatchConfig {
            sdp_unreachable: true,
            ..cfg(learning, strict, expected)
        }
    }

    /// (ms, source, verdict, target afterwards)
    type Step = (u64, &'static str, Verdict, Option<&'static str>);

    fn run(name: &str, c: LatchConfig, steps: &[Step]) {
        let mut l = Latch::new(c, Millis(0));
        for (i, (ms, src, want, tgt)) in steps.iter().enumerate() {
            let got = l.on_packet(a(src), Millis(*ms));
            assert_eq!(got, *want, "{name}: step {i} verdict");
            assert_eq!(l.target(), tgt.map(a), "{name}: step {i} target");
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, LatchConfig, &[Step])] = &[
            (
                "delayed: follows newest source, fixes on first packet after the window",
                cfg(Delayed, false, Some(SDP)),
                &[
                    (0, SDP, F, Some(SDP)),
                    (100, ANY, F, Some(ANY)),
                    (200, PORT, F, Some(PORT)),
                    (3000, ADDR, F, Some(ADDR)),
                    (3100, SDP, F, Some(ADDR)),
                ],
            ),
            (
                "delayed + strict: forwards all in the window, then only the fixed source",
                cfg(Delayed, true, Some(SDP)),
                &[
                    (0, ANY, F, Some(ANY)),
                    (500, PORT, F, Some(PORT)),
                    (4000, ANY, F, Some(ANY)),
                    (4100, SDP, D, Some(ANY)),
                    (4200, PORT, D, Some(ANY)),
                    (4300, ANY, F, Some(ANY)),
                ],
            ),
            (
                "immediate + strict: first source wins at once",
                cfg(Immediate, true, Some(SDP)),
                &[
                    (0, PORT, F, Some(PORT)),
                    (1, SDP, D, Some(PORT)),
                    (9000, PORT, F, Some(PORT)),
                ],
            ),
            (
                "off: target is always the SDP address",
                cfg(Off, false, Some(SDP)),
                &[(0, ANY, F, Some(SDP)), (5000, PORT, F, Some(SDP))],
            ),
            (
                "off + strict: only the SDP address, from the start",
                cfg(Off, true, Some(SDP)),
                &[
                    (0, ANY, D, Some(SDP)),
                    (1, SDP, F, Some(SDP)),
                    (5000, ADDR, D, Some(SDP)),
                ],
            ),
            (
                "off without SDP address: first source",
                cfg(Off, true, None),
                &[(0, ANY, F, Some(ANY)), (1, SDP, D, Some(ANY))],
            ),
            (
                "heuristic: better ranks displace worse, never the reverse; only expected \
                 sources are targets in the window",
                cfg(Heuristic, false, Some(SDP)),
                &[
                    (0, ANY, F, Some(SDP)),
                    (100, ADDR, F, Some(SDP)),
                    (200, ANY, F, Some(SDP)),
                    (300, PORT, F, Some(PORT)),
                    (400, ADDR, F, Some(PORT)),
                    (3500, ANY, F, Some(PORT)),
                    (3600, ADDR, F, Some(PORT)),
                ],
            ),
            (
                "heuristic: equal rank does not displace; an unexpected source is never the \
                 target while the SDP address is reachable",
                cfg(Heuristic, false, Some(SDP)),
                &[
                    (0, ANY, F, Some(SDP)),
                    (1, EVIL, F, Some(SDP)),
                    (4000, EVIL, F, Some(SDP)),
                    (4100, PORT, F, Some(PORT)),
                    (4200, ANY, F, Some(PORT)),
                ],
            ),
            (
                "heuristic, SDP address unreachable (NAT): after the window the best unexpected \
                 source is used until an expected one speaks",
                cfg_nat(Heuristic, false, Some(SDP)),
                &[
                    (0, ANY, F, Some(SDP)),
                    (1, EVIL, F, Some(SDP)),
                    (4000, EVIL, F, Some(ANY)),
                    (4100, PORT, F, Some(PORT)),
                    (4200, ANY, F, Some(PORT)),
                ],
            ),
            (
                "heuristic + strict: exact SDP match fixes at once",
                cfg(Heuristic, true, Some(SDP)),
                &[
                    (0, SDP, F, Some(SDP)),
                    (100, PORT, D, Some(SDP)),
                    (200, ADDR, D, Some(SDP)),
                    (300, ANY, D, Some(SDP)),
                    (5000, SDP, F, Some(SDP)),
                ],
            ),
            (
                "heuristic + strict: unexpected sources are dropped, so are lesser expected ones once \
                 one spoke; the window closes on the best seen",
                cfg(Heuristic, true, Some(SDP)),
                &[
                    (0, ANY, D, Some(SDP)),
                    (100, PORT, F, Some(PORT)),
                    (200, ADDR, D, Some(PORT)),
                    (3000, ANY, D, Some(PORT)),
                    (3100, PORT, F, Some(PORT)),
                    (3200, SDP, D, Some(PORT)),
                ],
            ),
            (
                "heuristic + strict: after the window only an expected source is accepted",
                cfg(Heuristic, true, Some(SDP)),
                &[
                    (3000, ADDR, D, Some(SDP)),
                    (3001, ANY, D, Some(SDP)),
                    (3002, PORT, F, Some(PORT)),
                    (3003, ADDR, D, Some(PORT)),
                ],
            ),
            (
                "heuristic + strict, SDP address unreachable: no packet in the window, first \
                 after it fixes, an expected source still takes over",
                cfg_nat(Heuristic, true, Some(SDP)),
                &[
                    (3000, ADDR, F, Some(ADDR)),
                    (3001, ANY, D, Some(ADDR)),
                    (3002, PORT, F, Some(PORT)),
                    (3003, ADDR, D, Some(PORT)),
                ],
            ),
            (
                "heuristic without SDP address: learns like delayed, first packet gives a target",
                cfg(Heuristic, true, None),
                &[
                    (0, ANY, F, Some(ANY)),
                    (10, PORT, F, Some(PORT)),
                    (3000, PORT, F, Some(PORT)),
                    (3010, ANY, D, Some(PORT)),
                ],
            ),
            (
                "no packet yet: target is the SDP address",
                cfg(Delayed, false, Some(SDP)),
                &[],
            ),
        ];
        for (name, c, steps) in cases {
            run(name, *c, steps);
        }
    }

    #[test]
    fn injector_first_cannot_hijack_default_policy() {
        // CVE-2025-53399 class: the injector sends to the relay port before the real peer.
        let mut l = Latch::new(cfg(Heuristic, true, Some(SDP)), Millis(0));
        assert_eq!(
            l.on_packet(a(EVIL), Millis(10)),
            D,
            "strict: not relayed either"
        );
        assert_eq!(
            l.target(),
            Some(a(SDP)),
            "an unexpected source gets no media (rtpengine follows it in the window)"
        );
        assert!(!l.is_settled());
        assert_eq!(l.on_packet(a(SDP), Millis(20)), F);
        assert!(l.is_fixed() && l.is_settled());
        assert_eq!(l.target(), Some(a(SDP)));
        for ms in [30, 2000, 10_000] {
            assert_eq!(l.on_packet(a(EVIL), Millis(ms)), D);
            assert_eq!(l.on_packet(a(SDP), Millis(ms + 1)), F);
        }
        assert_eq!(
            l.learned(),
            None,
            "the SDP endpoint is not a change to report"
        );
    }

    #[test]
    fn injector_first_with_natted_peer() {
        // The real peer's port is rewritten by NAT (rank 2): it still outranks the injector.
        let mut l = Latch::new(cfg(Heuristic, true, Some(SDP)), Millis(0));
        assert_eq!(
            l.on_packet(a(ADDR), Millis(0)),
            D,
            "SDP port, other address"
        );
        assert_eq!(l.target(), Some(a(SDP)));
        assert_eq!(l.on_packet(a(PORT), Millis(20)), F);
        assert_eq!(l.on_packet(a(ADDR), Millis(40)), D, "the peer has spoken");
        assert_eq!(
            l.on_packet(a(EVIL), Millis(3000)),
            D,
            "window closed on the NATed peer"
        );
        assert_eq!(l.target(), Some(a(PORT)));
        assert_eq!(l.learned(), Some(a(PORT)));
    }

    #[test]
    fn a_restored_stream_starts_fixed_on_its_source() {
        // After a restart: the NAT'd peer it had latched on is the target from the first
        // moment, and strict source keeps others out; no window to learn in again.
        const NAT: &str = "198.51.100.77:61002";
        let mut c = cfg_nat(Heuristic, true, Some("192.168.1.10:2012"));
        c.restored = Some(a(NAT));
        let mut l = Latch::new(c, Millis(0));
        assert_eq!(l.target(), Some(a(NAT)));
        assert!(l.is_settled());
        assert_eq!(l.on_packet(a(EVIL), Millis(0)), D);
        assert_eq!(l.on_packet(a(NAT), Millis(20)), F);
        assert_eq!(l.target(), Some(a(NAT)));
        // New signalling that changes the endpoint learns as usual.
        let mut moved = cfg_nat(Heuristic, true, Some("192.168.1.10:2014"));
        moved.restored = None;
        l.update(moved, Millis(100));
        assert!(!l.is_fixed());
    }

    #[test]
    fn the_sip_source_address_ranks_as_expected() {
        // A phone behind NAT: its SDP names its private address, its SIP and media come from
        // the NAT's public address. An injector at the SDP port of another address loses.
        const NAT: &str = "198.51.100.77:61002";
        let mut c = cfg(Heuristic, true, Some("192.168.1.10:2012"));
        c.signalled_from = Some("198.51.100.77".parse().expect("ip"));
        let mut l = Latch::new(c, Millis(0));
        assert_eq!(
            l.on_packet(a(ADDR), Millis(0)),
            D,
            "the injector (rank 1) first"
        );
        assert_eq!(l.target(), Some(a("192.168.1.10:2012")));
        assert_eq!(l.on_packet(a(NAT), Millis(30)), F);
        assert_eq!(l.target(), Some(a(NAT)));
        assert_eq!(l.on_packet(a(ADDR), Millis(40)), D);
        assert_eq!(l.on_packet(a(ADDR), Millis(5000)), D);
        assert_eq!(l.on_packet(a(NAT), Millis(5001)), F);
        assert!(l.is_settled());
        // Without a received-from, the same peer is never taken while the SDP address counts
        // as reachable; from a public relay (a private SDP address cannot be reached), after
        // the window.
        let mut blind = Latch::new(cfg(Heuristic, true, Some("192.168.1.10:2012")), Millis(0));
        assert_eq!(blind.on_packet(a(NAT), Millis(30)), D);
        assert_eq!(blind.on_packet(a(NAT), Millis(3030)), D);
        let mut public = Latch::new(
            cfg_nat(Heuristic, true, Some("192.168.1.10:2012")),
            Millis(0),
        );
        assert_eq!(public.on_packet(a(NAT), Millis(30)), F);
        assert_eq!(public.target(), Some(a("192.168.1.10:2012")));
        assert_eq!(public.on_packet(a(NAT), Millis(3030)), F);
        assert_eq!(public.target(), Some(a(NAT)));
    }

    #[test]
    fn an_unexpected_endpoint_is_not_settled() {
        let mut l = Latch::new(cfg_nat(Heuristic, true, Some(SDP)), Millis(0));
        assert_eq!(l.on_packet(a(EVIL), Millis(3000)), F);
        assert!(l.is_fixed() && !l.is_settled());
        assert_eq!(l.on_packet(a(SDP), Millis(3100)), F);
        assert!(l.is_settled());
        // Other modes settle when they fix.
        let mut d = Latch::new(cfg(Delayed, true, Some(SDP)), Millis(0));
        d.on_packet(a(EVIL), Millis(3000));
        assert!(d.is_settled());
    }

    #[test]
    fn asymmetric_heuristic_learns_any_source_and_keeps_sending_to_the_sdp_address() {
        let mut c = cfg(Heuristic, true, Some(SDP));
        c.asymmetric = true;
        let mut l = Latch::new(c, Millis(0));
        assert_eq!(
            l.on_packet(a(ANY), Millis(0)),
            F,
            "an SBC sending from another node"
        );
        assert_eq!(l.target(), Some(a(SDP)));
        assert_eq!(l.on_packet(a(ANY), Millis(3000)), F);
        assert!(l.is_fixed());
        assert_eq!(l.on_packet(a(EVIL), Millis(3001)), D);
        assert_eq!(l.target(), Some(a(SDP)));
    }

    #[test]
    fn asymmetric_sends_to_sdp_but_strict_still_learns() {
        let mut c = cfg(Delayed, true, Some(SDP));
        c.asymmetric = true;
        let mut l = Latch::new(c, Millis(0));
        assert_eq!(l.on_packet(a(ANY), Millis(0)), F);
        assert_eq!(l.target(), Some(a(SDP)));
        assert_eq!(l.on_packet(a(ANY), Millis(3000)), F);
        assert_eq!(l.on_packet(a(SDP), Millis(3001)), D);
        assert_eq!(l.target(), Some(a(SDP)));
    }

    #[test]
    fn a_nominated_peer_is_fixed_and_outranks_the_sdp_address() {
        for learning in [Heuristic, Delayed, Immediate, Off] {
            let mut l = Latch::new(cfg(learning, true, Some(SDP)), Millis(0));
            l.nominate(a(ANY));
            assert!(l.is_fixed() && l.is_settled(), "{learning:?}");
            assert_eq!(l.target(), Some(a(ANY)), "{learning:?}");
            assert_eq!(l.source(), Some(a(ANY)), "{learning:?}");
            assert_eq!(l.on_packet(a(SDP), Millis(10)), D, "{learning:?}");
            assert_eq!(l.on_packet(a(ANY), Millis(20)), F, "{learning:?}");
            assert_eq!(l.target(), Some(a(ANY)), "{learning:?}");
        }
    }

    #[test]
    fn update_restarts_learning_only_on_change() {
        let c = cfg(Heuristic, true, Some(SDP));
        let mut l = Latch::new(c, Millis(0));
        assert_eq!(l.on_packet(a(SDP), Millis(0)), F);
        assert!(l.is_fixed());
        // Same endpoint re-signalled: stays fixed.
        l.update(c, Millis(1000));
        assert!(l.is_fixed());
        assert_eq!(l.on_packet(a(ANY), Millis(1001)), D);
        // Re-INVITE moves the peer: learning restarts against the new address.
        let moved = cfg(Heuristic, true, Some(ANY));
        l.update(moved, Millis(2000));
        assert!(!l.is_fixed());
        assert_eq!(l.target(), Some(a(ANY)));
        assert_eq!(
            l.on_packet(a(SDP), Millis(2001)),
            F,
            "the old peer still passes while the new one is learnt"
        );
        assert_eq!(l.on_packet(a(ANY), Millis(2002)), F);
        assert_eq!(l.on_packet(a(SDP), Millis(2003)), D);
    }

    #[test]
    fn update_before_fix_extends_the_window() {
        let c = cfg(Delayed, true, Some(SDP));
        let mut l = Latch::new(c, Millis(0));
        l.on_packet(a(ANY), Millis(100));
        l.update(c, Millis(2500));
        assert_eq!(l.on_packet(a(PORT), Millis(4000)), F);
        assert!(!l.is_fixed(), "window now ends at 5500");
        assert_eq!(l.on_packet(a(PORT), Millis(5500)), F);
        assert!(l.is_fixed());
        assert_eq!(l.on_packet(a(ANY), Millis(5501)), D);
    }
}
