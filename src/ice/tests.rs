//! Two agents in memory over a simulated network (latency, loss, a 1:1 NAT for advertised
//! addresses) on a simulated clock; and hostile checks against one agent.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::sdp::ice::Candidate;
use crate::stun::{Class, Message, MessageBuilder, BINDING, ERROR_ROLE_CONFLICT};
use crate::time::Millis;

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}
fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn creds(u: &str, p: &str) -> Credentials {
    Credentials {
        ufrag: u.to_owned(),
        pwd: p.to_owned(),
    }
}

fn agent(mode: IceMode, role: Role, ufrag: &str, tie: u64) -> IceAgent {
    let config = IceConfig {
        mode,
        ..IceConfig::default()
    };
    let pwd = format!("{ufrag}password0123456789abcdef");
    IceAgent::with_parts(config, role, creds(ufrag, &pwd), tie, [tie as u8; 32])
}

/// Tells each agent the other's credentials and candidates, as the SDP would.
fn exchange(a: &mut IceAgent, b: &mut IceAgent) {
    let (ca, cb) = (a.local_credentials().clone(), b.local_credentials().clone());
    a.set_remote_credentials(&cb.ufrag, &cb.pwd);
    b.set_remote_credentials(&ca.ufrag, &ca.pwd);
    let la: Vec<Candidate> = a.local_candidates().iter().map(|c| c.to_sdp()).collect();
    let lb: Vec<Candidate> = b.local_candidates().iter().map(|c| c.to_sdp()).collect();
    for c in &lb {
        a.add_remote_candidate(c).expect("candidate");
    }
    for c in &la {
        b.add_remote_candidate(c).expect("candidate");
    }
    a.end_of_remote_candidates();
    b.end_of_remote_candidates();
}

/// A network between two agents: 20 ms one way, `loss` of datagrams dropped, and candidates'
/// advertised addresses mapped to their bases (a 1:1 NAT, as `!ADVERTISED` describes).
struct Net {
    rng: StdRng,
    loss: f64,
    /// (deliver at, to agent 0 or 1, source as seen, our socket, bytes)
    queue: VecDeque<(Millis, usize, SocketAddr, SocketAddr, Vec<u8>)>,
    dropped: usize,
}

fn public(agent: &IceAgent, base: SocketAddr) -> SocketAddr {
    agent
        .local_candidates()
        .iter()
        .find(|c| c.base == base)
        .map_or(base, |c| c.address)
}

fn route(agents: &[&mut IceAgent; 2], to: SocketAddr) -> Option<(usize, SocketAddr)> {
    for (i, a) in agents.iter().enumerate() {
        if let Some(c) = a.local_candidates().iter().find(|c| c.address == to) {
            return Some((i, c.base));
        }
    }
    None
}

impl Net {
    fn new(seed: u64, loss: f64) -> Self {
        Net {
            rng: StdRng::seed_from_u64(seed),
            loss,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Runs both agents until `end`, collecting their events.
    fn run(&mut self, agents: [&mut IceAgent; 2], end: Millis) -> [Vec<IceEvent>; 2] {
        self.run_from(agents, Millis(0), end)
    }

    fn run_from(
        &mut self,
        agents: [&mut IceAgent; 2],
        start: Millis,
        end: Millis,
    ) -> [Vec<IceEvent>; 2] {
        let mut events: [Vec<IceEvent>; 2] = [Vec::new(), Vec::new()];
        let mut now = start;
        while now <= end {
            // Deliver what is due.
            let mut later = VecDeque::new();
            while let Some(d) = self.queue.pop_front() {
                if d.0 <= now {
                    let _ = agents[d.1].handle_packet(now, d.2, d.3, &d.4);
                } else {
                    later.push_back(d);
                }
            }
            self.queue = later;
            for i in 0..2 {
                if agents[i].poll_timeout().is_some_and(|t| t <= now) {
                    agents[i].handle_timeout(now);
                    // The timer contract: handled now, the next wake-up is later (no busy loop).
                    if let Some(t) = agents[i].poll_timeout() {
                        assert!(
                            t > now,
                            "agent {i} wants a wake-up at {t:?} again at {now:?}"
                        );
                    }
                }
                while let Some(t) = agents[i].poll_transmit() {
                    let src = public(agents[i], t.local);
                    let Some((to, local)) = route(&agents, t.remote) else {
                        continue;
                    };
                    if self.rng.random_bool(self.loss) {
                        self.dropped += 1;
                        continue;
                    }
                    self.queue.push_back((
                        now.plus(Duration::from_millis(20)),
                        to,
                        src,
                        local,
                        t.bytes,
                    ));
                }
                while let Some(e) = agents[i].poll_event() {
                    events[i].push(e);
                }
            }
            now = now.plus(Duration::from_millis(5));
        }
        events
    }
}

fn nominated_events(ev: &[IceEvent]) -> Vec<(u16, SocketAddr, SocketAddr)> {
    ev.iter()
        .filter_map(|e| match e {
            IceEvent::Nominated {
                component,
                local,
                remote,
            } => Some((*component, *local, *remote)),
            _ => None,
        })
        .collect()
}

#[test]
fn full_controlling_and_lite_nominate_the_advertised_pair_under_loss() {
    let mut dropped = 0;
    for seed in 0..8 {
        // The relay: lite, socket bound on 10.0.0.1, advertised as 203.0.113.1.
        let mut relay = agent(IceMode::Lite, Role::Controlling, "rely", 1);
        relay.add_local_host(1, sa("10.0.0.1:30000"), ip("203.0.113.1"));
        assert_eq!(relay.role(), Role::Controlled, "lite is always controlled");
        // A browser: full, controlling, one host candidate.
        let mut peer = agent(IceMode::Full, Role::Controlling, "brws", 2);
        peer.add_local_host(1, sa("198.51.100.9:50000"), ip("198.51.100.9"));
        exchange(&mut relay, &mut peer);

        let mut net = Net::new(seed, 0.3);
        let [ev_relay, ev_peer] = net.run([&mut relay, &mut peer], Millis(20_000));
        dropped += net.dropped;

        let want_relay = (1, sa("10.0.0.1:30000"), sa("198.51.100.9:50000"));
        assert_eq!(nominated_events(&ev_relay), vec![want_relay], "seed {seed}");
        assert!(ev_relay.contains(&IceEvent::Verified {
            component: 1,
            local: want_relay.1,
            remote: want_relay.2
        }));
        assert_eq!(
            nominated_events(&ev_peer),
            vec![(1, sa("198.51.100.9:50000"), sa("203.0.113.1:30000"))],
            "seed {seed}"
        );
        assert_eq!(relay.state(), IceState::Completed);
        assert_eq!(peer.state(), IceState::Completed);
        assert_eq!(relay.nominated(1), Some((want_relay.1, want_relay.2)));
        assert_eq!(relay.stats().dropped_bad_integrity, 0);
        assert!(
            relay.stats().requests_answered >= 2,
            "a check and a nomination"
        );
        // The lite side sends no checks of its own.
        assert_eq!(relay.stats().checks_sent, 0);
    }
    assert!(dropped > 5, "the network lost datagrams");
}

#[test]
fn full_against_full_settles_a_role_conflict_and_nominates() {
    for (seed, roles) in [
        (1, (Role::Controlling, Role::Controlling)),
        (2, (Role::Controlled, Role::Controlled)),
        (3, (Role::Controlling, Role::Controlling)),
    ] {
        let mut a = agent(IceMode::Full, roles.0, "aaaa", 0x10 + seed);
        a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
        let mut b = agent(IceMode::Full, roles.1, "bbbb", 0x20 + seed);
        b.add_local_host(1, sa("192.0.2.2:5000"), ip("192.0.2.2"));
        exchange(&mut a, &mut b);

        let mut net = Net::new(seed, 0.2);
        let [ev_a, ev_b] = net.run([&mut a, &mut b], Millis(20_000));

        assert_ne!(a.role(), b.role(), "seed {seed}: roles settled");
        // b has the larger tie breaker: it ends controlling.
        assert_eq!(b.role(), Role::Controlling, "seed {seed}");
        assert!(a.stats().role_conflicts + b.stats().role_conflicts > 0);
        assert_eq!(
            nominated_events(&ev_a),
            vec![(1, sa("192.0.2.1:4000"), sa("192.0.2.2:5000"))],
            "seed {seed}"
        );
        assert_eq!(
            nominated_events(&ev_b),
            vec![(1, sa("192.0.2.2:5000"), sa("192.0.2.1:4000"))],
            "seed {seed}"
        );
        assert_eq!(a.state(), IceState::Completed);
        assert_eq!(b.state(), IceState::Completed);
        // Both keep the nominated pair alive with Binding indications (RFC 8445 §11).
        let t = a.poll_timeout().expect("a keepalive is due");
        assert!(t <= Millis(20_000 + 15_000), "{t:?}");
        a.handle_timeout(t);
        let k = a.poll_transmit().expect("a keepalive");
        assert_eq!(
            (k.local, k.remote),
            (sa("192.0.2.1:4000"), sa("192.0.2.2:5000"))
        );
        let m = Message::parse(&k.bytes).expect("parses");
        assert_eq!(m.class(), Class::Indication);
        assert_eq!(
            b.handle_packet(t, sa("192.0.2.1:4000"), sa("192.0.2.2:5000"), &k.bytes),
            Ok(())
        );
    }
}

#[test]
fn controlling_checks_in_priority_order_and_skips_a_dead_candidate() {
    let mut a = agent(IceMode::Full, Role::Controlling, "aaaa", 9);
    a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    let mut b = agent(IceMode::Lite, Role::Controlled, "bbbb", 1);
    b.add_local_host(1, sa("192.0.2.2:5000"), ip("192.0.2.2"));
    exchange(&mut a, &mut b);
    // A better candidate nobody answers on.
    let mut dead = b.local_candidates()[0].to_sdp();
    dead.address = "192.0.2.99".to_owned();
    // Another foundation: with the same one it would start Frozen behind the live pair.
    dead.foundation = "9".to_owned();
    dead.priority = u32::MAX >> 1;
    a.add_remote_candidate(&dead).expect("candidate");
    assert_eq!(a.pair_count(), 2);

    a.handle_timeout(Millis(0));
    let first = a.poll_transmit().expect("a first check");
    assert_eq!(
        first.remote,
        sa("192.0.2.99:5000"),
        "highest priority first"
    );
    assert!(a.poll_transmit().is_none(), "paced: one check per Ta");
    a.handle_timeout(Millis(10));
    assert!(a.poll_transmit().is_none(), "paced: one check per Ta");
    a.handle_timeout(Millis(50));
    assert_eq!(
        a.poll_transmit().map(|t| t.remote),
        Some(sa("192.0.2.2:5000"))
    );

    let mut a2 = agent(IceMode::Full, Role::Controlling, "aaaa", 9);
    a2.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    let mut b2 = agent(IceMode::Lite, Role::Controlled, "bbbb", 1);
    b2.add_local_host(1, sa("192.0.2.2:5000"), ip("192.0.2.2"));
    exchange(&mut a2, &mut b2);
    a2.add_remote_candidate(&dead).expect("candidate");
    let mut net = Net::new(7, 0.0);
    let [ev_a, _] = net.run([&mut a2, &mut b2], Millis(20_000));
    assert_eq!(
        nominated_events(&ev_a),
        vec![(1, sa("192.0.2.1:4000"), sa("192.0.2.2:5000"))]
    );
    assert_eq!(
        a2.pair_state(sa("192.0.2.1:4000"), sa("192.0.2.99:5000")),
        Some(PairState::Failed)
    );
    assert!(
        a2.stats().retransmits >= 6,
        "the dead pair was retransmitted"
    );
}

#[test]
fn checks_against_silence_end_failed() {
    let mut a = agent(IceMode::Full, Role::Controlling, "aaaa", 9);
    a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    let mut b = agent(IceMode::Lite, Role::Controlled, "bbbb", 1);
    b.add_local_host(1, sa("192.0.2.2:5000"), ip("192.0.2.2"));
    exchange(&mut a, &mut b);
    let mut net = Net::new(1, 1.0);
    let [ev_a, _] = net.run([&mut a, &mut b], Millis(30_000));
    assert_eq!(a.state(), IceState::Failed);
    assert!(ev_a.contains(&IceEvent::StateChanged(IceState::Failed)));
    assert_eq!(a.stats().checks_sent + a.stats().retransmits, 7);
}

/// A Binding request as a peer with `ufrag`/`pwd` would send to `to` (ufrag of the receiver).
fn request(
    to_ufrag: &str,
    from_ufrag: &str,
    pwd: &str,
    extra: impl FnOnce(&mut MessageBuilder),
) -> Vec<u8> {
    let mut b = MessageBuilder::new(Class::Request, BINDING, &[7; 12]);
    b.username(&format!("{to_ufrag}:{from_ufrag}"))
        .priority(1_845_501_695)
        .ice_controlling(5);
    extra(&mut b);
    b.integrity(pwd.as_bytes());
    b.fingerprint()
}

fn lite_relay() -> IceAgent {
    let mut relay = agent(IceMode::Lite, Role::Controlled, "rely", 1);
    relay.add_local_host(1, sa("10.0.0.1:30000"), ip("203.0.113.1"));
    relay.set_remote_credentials("brws", "brwspassword0123456789abcdef");
    relay
}

const RELAY_PWD: &str = "relypassword0123456789abcdef";

#[test]
fn a_valid_request_is_answered_with_mapped_address_integrity_and_fingerprint() {
    let mut relay = lite_relay();
    let req = request("rely", "brws", RELAY_PWD, |b| {
        b.use_candidate();
    });
    let src = sa("198.51.100.9:50000");
    relay
        .handle_packet(Millis(0), src, sa("10.0.0.1:30000"), &req)
        .expect("accepted");
    let t = relay.poll_transmit().expect("an answer");
    assert_eq!((t.local, t.remote), (sa("10.0.0.1:30000"), src));
    let m = Message::parse(&t.bytes).expect("parses");
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.transaction_id(), &[7; 12]);
    assert_eq!(m.xor_mapped_address(), Some(src));
    assert_eq!(m.check_integrity(RELAY_PWD.as_bytes()), Ok(()));
    assert_eq!(m.check_fingerprint(true), Ok(()));
    assert_eq!(relay.nominated(1), Some((sa("10.0.0.1:30000"), src)));
    // The source became a peer-reflexive candidate with the request's PRIORITY.
    assert_eq!(relay.remote_candidates()[0].priority, 1_845_501_695);
}

fn assert_no_change(relay: &mut IceAgent) {
    assert!(relay.poll_transmit().is_none(), "nothing sent");
    assert!(relay.poll_event().is_none(), "no event");
    assert_eq!(relay.state(), IceState::New);
    assert!(relay.remote_candidates().is_empty());
    assert_eq!(relay.pair_count(), 0);
    assert_eq!(relay.nominated(1), None);
}

#[test]
fn bad_integrity_is_a_counted_drop_without_state_change() {
    let mut relay = lite_relay();
    let req = request("rely", "brws", "wrongpassword0123456789abc", |b| {
        b.use_candidate();
    });
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30000"),
        &req,
    );
    assert_eq!(r, Err(IceDrop::Integrity));
    assert_eq!(relay.stats().dropped_bad_integrity, 1);
    assert_eq!(relay.stats().requests_answered, 0);
    assert_no_change(&mut relay);

    // A good request with a bit flipped after signing: the fingerprint catches it first.
    let mut req = request("rely", "brws", RELAY_PWD, |_| {});
    req[30] ^= 1;
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30000"),
        &req,
    );
    assert_eq!(r, Err(IceDrop::Fingerprint));
    assert_eq!(relay.stats().dropped_bad_fingerprint, 1);
    assert_no_change(&mut relay);

    // Without MESSAGE-INTEGRITY at all.
    let mut b = MessageBuilder::new(Class::Request, BINDING, &[1; 12]);
    b.username("rely:brws").use_candidate();
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30000"),
        &b.fingerprint(),
    );
    assert_eq!(r, Err(IceDrop::Integrity));
    assert_no_change(&mut relay);
}

#[test]
fn an_unknown_ufrag_is_a_counted_drop() {
    let mut relay = lite_relay();
    for (to, from) in [("nope", "brws"), ("rely", "othr"), ("relyx", "brws")] {
        let req = request(to, from, RELAY_PWD, |b| {
            b.use_candidate();
        });
        let r = relay.handle_packet(
            Millis(0),
            sa("198.51.100.9:50000"),
            sa("10.0.0.1:30000"),
            &req,
        );
        assert_eq!(r, Err(IceDrop::UnknownUsername), "{to}:{from}");
        assert_no_change(&mut relay);
    }
    assert_eq!(relay.stats().dropped_unknown_username, 3);
    // On a socket we have no candidate for.
    let req = request("rely", "brws", RELAY_PWD, |_| {});
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30002"),
        &req,
    );
    assert_eq!(r, Err(IceDrop::UnknownLocal));
    assert_no_change(&mut relay);
    // Garbage.
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30000"),
        b"\x00\x01junk",
    );
    assert!(matches!(r, Err(IceDrop::Malformed(_))));
    assert_no_change(&mut relay);
}

#[test]
fn unknown_required_attributes_get_420() {
    let mut relay = lite_relay();
    let req = request("rely", "brws", RELAY_PWD, |b| {
        b.attribute(0x7abc, b"??");
    });
    relay
        .handle_packet(
            Millis(0),
            sa("198.51.100.9:50000"),
            sa("10.0.0.1:30000"),
            &req,
        )
        .expect("handled");
    let t = relay.poll_transmit().expect("an answer");
    let m = Message::parse(&t.bytes).expect("parses");
    assert_eq!((m.class(), m.error_code()), (Class::Error, Some(420)));
    assert!(relay.remote_candidates().is_empty());
}

#[test]
fn role_conflict_is_answered_with_487_by_the_larger_tie_breaker() {
    let mut a = agent(IceMode::Full, Role::Controlling, "aaaa", 100);
    a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    // The peer claims controlling with a smaller tie breaker (5): a keeps its role, answers 487.
    let req = request("aaaa", "bbbb", "aaaapassword0123456789abcdef", |_| {});
    a.handle_packet(Millis(0), sa("192.0.2.2:5000"), sa("192.0.2.1:4000"), &req)
        .expect("handled");
    let t = a.poll_transmit().expect("an answer");
    let m = Message::parse(&t.bytes).expect("parses");
    assert_eq!(m.error_code(), Some(ERROR_ROLE_CONFLICT));
    assert_eq!(a.role(), Role::Controlling);
    assert!(
        a.remote_candidates().is_empty(),
        "no state from a refused check"
    );

    // With a smaller tie breaker, the agent switches to controlled and answers.
    let mut a = agent(IceMode::Full, Role::Controlling, "aaaa", 1);
    a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    a.handle_packet(Millis(0), sa("192.0.2.2:5000"), sa("192.0.2.1:4000"), &req)
        .expect("handled");
    let t = a.poll_transmit().expect("an answer");
    assert_eq!(
        Message::parse(&t.bytes).map(|m| m.class()),
        Ok(Class::Success)
    );
    assert_eq!(a.role(), Role::Controlled);
    assert_eq!(
        a.poll_event(),
        Some(IceEvent::RoleChanged(Role::Controlled))
    );
}

#[test]
fn remote_candidates_and_pairs_are_capped() {
    let config = IceConfig {
        mode: IceMode::Full,
        max_remote_candidates: 4,
        max_pairs: 6,
        ..IceConfig::default()
    };
    let mut a = IceAgent::with_parts(
        config,
        Role::Controlling,
        creds("aaaa", "aaaapassword0123456789abcdef"),
        1,
        [0; 32],
    );
    a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    a.add_local_host(1, sa("192.0.2.3:4000"), ip("192.0.2.3"));
    let mut c: Candidate = "1 1 UDP 2130706431 192.0.2.50 1000 typ host"
        .parse()
        .expect("candidate");
    for port in 1000..1004 {
        c.port = port;
        a.add_remote_candidate(&c).expect("under the cap");
    }
    c.port = 2000;
    assert_eq!(a.add_remote_candidate(&c), Err(CandidateRefused::Cap));
    assert_eq!(a.remote_candidates().len(), 4);
    assert_eq!(a.pair_count(), 6, "4 x 2 pairs capped at 6");
    assert_eq!(a.stats().dropped_cap, 3);

    c.port = 1000;
    assert_eq!(a.add_remote_candidate(&c), Err(CandidateRefused::Duplicate));
    c.address = "host.local".to_owned();
    assert_eq!(a.add_remote_candidate(&c), Err(CandidateRefused::NotIp));
    c.address = "192.0.2.50".to_owned();
    c.component = 2;
    assert_eq!(
        a.add_remote_candidate(&c),
        Err(CandidateRefused::NoSuchComponent)
    );

    // A peer-reflexive source past the cap is answered but not kept.
    let req = request("aaaa", "bbbb", "aaaapassword0123456789abcdef", |b| {
        let _ = b;
    });
    let mut b2 = MessageBuilder::new(Class::Request, BINDING, &[3; 12]);
    b2.username("aaaa:bbbb")
        .priority(1)
        .ice_controlled(0)
        .integrity(b"aaaapassword0123456789abcdef");
    let _ = req;
    a.handle_packet(
        Millis(0),
        sa("192.0.2.77:9"),
        sa("192.0.2.1:4000"),
        &b2.fingerprint(),
    )
    .expect("handled");
    assert!(a.poll_transmit().is_some(), "answered");
    assert_eq!(a.remote_candidates().len(), 4);
}

#[test]
fn local_candidates_render_advertised_addresses_with_rfc_priorities() {
    let mut a = agent(IceMode::Lite, Role::Controlled, "rely", 1);
    a.add_local_host(1, sa("10.0.0.1:30000"), ip("203.0.113.1"));
    a.add_local_host(2, sa("10.0.0.1:30001"), ip("203.0.113.1"));
    a.add_local_host(1, sa("[2001:db8::1]:30000"), ip("2001:db8::1"));
    let attrs: Vec<String> = a
        .media_attributes(true)
        .iter()
        .map(|at| format!("{}:{}", at.name, at.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        attrs,
        vec![
            "ice-ufrag:rely",
            "ice-pwd:relypassword0123456789abcdef",
            // 2^24 * 126 + 2^8 * 65535 + (256 - 1)
            "candidate:1 1 UDP 2130706431 203.0.113.1 30000 typ host",
            "candidate:1 2 UDP 2130706430 203.0.113.1 30001 typ host",
            "candidate:2 1 UDP 2130706175 2001:db8::1 30000 typ host",
            "end-of-candidates:",
        ]
    );
    assert_eq!(a.session_attributes()[0].name, "ice-lite");
    assert_eq!(candidate_priority(126, 65535, 1), 2_130_706_431);
    // RFC 8445 §6.1.2.3 with G > D.
    assert_eq!(pair_priority(10, 5), (5 << 32) + 20 + 1);
    assert_eq!(pair_priority(5, 10), (5 << 32) + 20);
}

#[test]
fn generated_credentials_fit_the_sdp_grammar() {
    let mut rng = StdRng::seed_from_u64(3);
    let a = IceAgent::new(IceConfig::default(), Role::Controlled, &mut rng);
    let c = a.local_credentials();
    assert!(crate::sdp::ice::check_ufrag(&c.ufrag).is_ok());
    assert!(crate::sdp::ice::check_pwd(&c.pwd).is_ok());
    let b = IceAgent::new(IceConfig::default(), Role::Controlled, &mut rng);
    assert_ne!(b.local_credentials(), c);
}

/// A full agent's first check, taken from its transmit queue.
fn first_check(a: &mut IceAgent) -> Transmit {
    a.handle_timeout(Millis(0));
    a.poll_transmit().expect("a check")
}

fn controlling_with_one_pair() -> IceAgent {
    let mut a = agent(IceMode::Full, Role::Controlling, "aaaa", 1);
    a.add_local_host(1, sa("192.0.2.1:4000"), ip("192.0.2.1"));
    a.set_remote_credentials("bbbb", "bbbbpassword0123456789abcdef");
    let c: Candidate = "1 1 UDP 2130706431 192.0.2.2 5000 typ host"
        .parse()
        .expect("candidate");
    a.add_remote_candidate(&c).expect("candidate");
    a
}

#[test]
fn a_487_answer_switches_role_and_checks_again() {
    let mut a = controlling_with_one_pair();
    let t = first_check(&mut a);
    let m = Message::parse(&t.bytes).expect("parses");
    assert_eq!(m.ice_controlling(), Some(1));
    assert_eq!(m.username(), Some(&b"bbbb:aaaa"[..]));
    let mut b = MessageBuilder::new(Class::Error, BINDING, m.transaction_id());
    b.error_code(ERROR_ROLE_CONFLICT, "Role Conflict")
        .integrity(b"bbbbpassword0123456789abcdef");
    a.handle_packet(Millis(30), t.remote, t.local, &b.fingerprint())
        .expect("handled");
    assert_eq!(a.role(), Role::Controlled);
    assert_eq!(a.pair_state(t.local, t.remote), Some(PairState::Waiting));
    a.handle_timeout(Millis(60));
    let again = a.poll_transmit().expect("checked again");
    let m2 = Message::parse(&again.bytes).expect("parses");
    let tie = m2.ice_controlled().expect("now as the controlled side");
    assert_ne!(tie, 1, "a new tie breaker after a 487");
    assert_eq!(m2.ice_controlling(), None);
}

#[test]
fn a_peer_answering_487_to_every_check_fails_the_pair_after_a_few() {
    let mut a = controlling_with_one_pair();
    let mut now = 30;
    let mut answered = 0;
    while answered < 20 {
        a.handle_timeout(Millis(now));
        let Some(t) = a.poll_transmit() else {
            now += 50;
            if now > 60_000 {
                break;
            }
            continue;
        };
        let m = Message::parse(&t.bytes).expect("parses");
        let mut b = MessageBuilder::new(Class::Error, BINDING, m.transaction_id());
        b.error_code(ERROR_ROLE_CONFLICT, "Role Conflict")
            .integrity(b"bbbbpassword0123456789abcdef");
        a.handle_packet(Millis(now), t.remote, t.local, &b.fingerprint())
            .expect("handled");
        answered += 1;
        now += 50;
    }
    assert!(
        answered <= 4,
        "{answered} checks answered 487 before the pair failed"
    );
    let (local, remote) = (a.local_candidates()[0].base, a.remote_candidates()[0].addr);
    assert_eq!(a.pair_state(local, remote), Some(PairState::Failed));
}

#[test]
fn a_response_from_another_address_fails_the_pair() {
    let mut a = controlling_with_one_pair();
    let t = first_check(&mut a);
    let m = Message::parse(&t.bytes).expect("parses");
    let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
    b.xor_mapped_address(t.local)
        .integrity(b"bbbbpassword0123456789abcdef");
    let resp = b.fingerprint();
    a.handle_packet(Millis(30), sa("192.0.2.66:5000"), t.local, &resp)
        .expect("handled");
    assert_eq!(a.pair_state(t.local, t.remote), Some(PairState::Failed));
    assert!(!std::iter::from_fn(|| a.poll_event()).any(|e| matches!(e, IceEvent::Verified { .. })));

    // The same answer from the right address, with a bad integrity: counted, nothing changes.
    let mut a = controlling_with_one_pair();
    let t = first_check(&mut a);
    let m = Message::parse(&t.bytes).expect("parses");
    let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
    b.xor_mapped_address(t.local).integrity(b"not the password");
    let r = a.handle_packet(Millis(30), t.remote, t.local, &b.fingerprint());
    assert_eq!(r, Err(IceDrop::Integrity));
    assert_eq!(a.pair_state(t.local, t.remote), Some(PairState::InProgress));
    // And a good one verifies the pair.
    let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
    b.xor_mapped_address(t.local)
        .integrity(b"bbbbpassword0123456789abcdef");
    a.handle_packet(Millis(40), t.remote, t.local, &b.fingerprint())
        .expect("handled");
    assert_eq!(a.pair_state(t.local, t.remote), Some(PairState::Succeeded));
    assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e
        == IceEvent::Verified {
            component: 1,
            local: t.local,
            remote: t.remote
        }));
    // A response to a transaction we never sent.
    let mut b = MessageBuilder::new(Class::Success, BINDING, &[9; 12]);
    b.integrity(b"bbbbpassword0123456789abcdef");
    let r = a.handle_packet(Millis(50), t.remote, t.local, &b.fingerprint());
    assert_eq!(r, Err(IceDrop::UnknownTransaction));
}

#[test]
fn trickled_candidates_and_late_credentials_still_connect() {
    let mut relay = agent(IceMode::Lite, Role::Controlled, "rely", 1);
    relay.add_local_host(1, sa("10.0.0.1:30000"), ip("203.0.113.1"));
    let mut peer = agent(IceMode::Full, Role::Controlling, "brws", 2);
    peer.add_local_host(1, sa("198.51.100.9:50000"), ip("198.51.100.9"));
    // The relay knows the peer's credentials (from the offer); the peer has nothing yet.
    let cp = peer.local_credentials().clone();
    relay.set_remote_credentials(&cp.ufrag, &cp.pwd);
    let mut net = Net::new(5, 0.0);
    let [_, ev] = net.run_from([&mut relay, &mut peer], Millis(0), Millis(1000));
    assert!(ev.is_empty(), "nothing to check yet");
    assert_eq!(peer.stats().checks_sent, 0);
    // The answer arrives, then the candidate trickles in.
    let cr = relay.local_credentials().clone();
    peer.set_remote_credentials(&cr.ufrag, &cr.pwd);
    let [_, ev] = net.run_from([&mut relay, &mut peer], Millis(1000), Millis(1500));
    assert!(ev.is_empty());
    let c = relay.local_candidates()[0].to_sdp();
    peer.add_remote_candidate(&c).expect("trickled");
    let [ev_relay, ev_peer] = net.run_from([&mut relay, &mut peer], Millis(1500), Millis(10_000));
    assert_eq!(
        nominated_events(&ev_peer),
        vec![(1, sa("198.51.100.9:50000"), sa("203.0.113.1:30000"))]
    );
    assert_eq!(
        nominated_events(&ev_relay),
        vec![(1, sa("10.0.0.1:30000"), sa("198.51.100.9:50000"))]
    );
}

#[test]
fn an_error_answer_to_a_nomination_fails_that_pair_once() {
    let mut a = controlling_with_one_pair();
    let t = first_check(&mut a);
    let m = Message::parse(&t.bytes).expect("parses");
    let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
    b.xor_mapped_address(t.local)
        .integrity(b"bbbbpassword0123456789abcdef");
    a.handle_packet(Millis(30), t.remote, t.local, &b.fingerprint())
        .expect("handled");
    a.handle_timeout(Millis(60));
    let nom = a.poll_transmit().expect("a nomination");
    let m = Message::parse(&nom.bytes).expect("parses");
    assert!(m.use_candidate());
    let mut b = MessageBuilder::new(Class::Error, BINDING, m.transaction_id());
    b.error_code(400, "Bad Request")
        .integrity(b"bbbbpassword0123456789abcdef");
    a.handle_packet(Millis(90), t.remote, t.local, &b.fingerprint())
        .expect("handled");
    assert_eq!(a.pair_state(t.local, t.remote), Some(PairState::Failed));
    for now in [100, 200, 5000] {
        a.handle_timeout(Millis(now));
    }
    assert!(a.poll_transmit().is_none(), "no retry loop");
    assert_eq!(a.poll_timeout(), None, "nothing left to wake up for");
    assert_eq!(a.state(), IceState::Checking, "the peer may still trickle");
    a.end_of_remote_candidates();
    assert_eq!(a.state(), IceState::Failed);
}

#[test]
fn the_peers_sdp_sets_credentials_candidates_and_completeness() {
    let sdp = "v=0\r\no=- 1 1 IN IP4 198.51.100.9\r\ns=-\r\nt=0 0\r\n\
               m=audio 50000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 198.51.100.9\r\n\
               a=ice-ufrag:brws\r\na=ice-pwd:brwspassword0123456789abcdef\r\n\
               a=candidate:1 1 udp 2122260223 198.51.100.9 50000 typ host generation 0\r\n\
               a=candidate:2 1 udp 2122260223 abc.local 50001 typ host\r\n\
               a=candidate:3 1 tcp 1518280447 198.51.100.9 9 typ host tcptype active\r\n";
    let s = crate::sdp::parse(sdp.as_bytes()).expect("sdp");
    let ice = crate::sdp::ice::IceAttributes::from_media(Some(&s), &s.media[0]);
    let mut relay = agent(IceMode::Lite, Role::Controlled, "rely", 1);
    relay.add_local_host(1, sa("10.0.0.1:30000"), ip("203.0.113.1"));
    assert_eq!(
        relay.apply_remote_sdp(&ice),
        Some(2),
        "mDNS and TCP refused"
    );
    assert_eq!(relay.remote_candidates().len(), 1);
    assert_eq!(relay.remote_candidates()[0].addr, sa("198.51.100.9:50000"));
    // The username's second half is now checked.
    let req = request("rely", "othr", RELAY_PWD, |_| {});
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30000"),
        &req,
    );
    assert_eq!(r, Err(IceDrop::UnknownUsername));
    let req = request("rely", "brws", RELAY_PWD, |_| {});
    let r = relay.handle_packet(
        Millis(0),
        sa("198.51.100.9:50000"),
        sa("10.0.0.1:30000"),
        &req,
    );
    assert_eq!(r, Ok(()));

    let mut none = ice.clone();
    none.pwd = None;
    let mut other = agent(IceMode::Lite, Role::Controlled, "rely", 1);
    other.add_local_host(1, sa("10.0.0.1:30000"), ip("203.0.113.1"));
    assert_eq!(other.apply_remote_sdp(&none), None);
    assert!(other.remote_candidates().is_empty());
}
