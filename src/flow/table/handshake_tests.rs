//! ICE-lite and DTLS-SRTP through the flow table: a browser played by a client
//! [`DtlsEndpoint`] and STUN checks built by hand, on made-up addresses and a made-up clock.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::dtls::{CertCipher, Certificate, DtlsEndpoint, DtlsOptions, DtlsState, Role};
use crate::flow::latch::EndpointLearning;
use crate::flow::{FlowDtls, FlowIce};
use crate::ice::{Credentials, IceState};
use crate::srtp::{Params, SrtpContext};
use crate::stun::{Class, Message, MessageBuilder, BINDING};

const LOCAL_A: &str = "192.0.2.1:30000";
const LOCAL_B: &str = "192.0.2.1:30002";
/// The browser's SDP address; it really sends from `NAT_A`, the address its checks come from.
const PEER_A: &str = "198.51.100.3:2000";
const NAT_A: &str = "198.51.100.77:61000";
const PEER_B: &str = "203.0.113.9:4000";
const EVIL: &str = "198.51.100.66:2000";

const RELAY_UFRAG: &str = "relayufr";
const RELAY_PWD: &str = "relaypasswordrelaypasswd";
const PEER_UFRAG: &str = "peerufrg";
const PEER_PWD: &str = "peerpasswordpeerpassword";

fn a(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn dtls_ctx() -> Arc<DtlsContext> {
    let cert = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("cert");
    DtlsContext::new(cert, DtlsOptions::default(), Instant::now()).expect("context")
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..160u16).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn ice(remote: bool) -> FlowIce {
    FlowIce {
        local: Credentials {
            ufrag: RELAY_UFRAG.into(),
            pwd: RELAY_PWD.into(),
        },
        remote: remote.then(|| Credentials {
            ufrag: PEER_UFRAG.into(),
            pwd: PEER_PWD.into(),
        }),
        component: 1,
        full: None,
    }
}

/// The browser's side: its DTLS context (certificate) and the relay's.
struct Browser {
    ctx: Arc<DtlsContext>,
    relay: Arc<DtlsContext>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            ctx: dtls_ctx(),
            relay: dtls_ctx(),
        }
    }

    /// What the session would give the browser's flow: DTLS (relay `role`) with the browser's
    /// fingerprint (when `fp`), ICE (when `with_ice`).
    fn crypto(&self, role: Role, fp: bool, with_ice: bool) -> FlowCrypto {
        FlowCrypto {
            dtls: Some(FlowDtls {
                role,
                fingerprint: fp.then(|| self.ctx.certificate().fingerprint().clone()),
            }),
            ice: with_ice.then(|| ice(true)),
            ..FlowCrypto::default()
        }
    }

    fn endpoint(&self, role: Role) -> DtlsEndpoint {
        DtlsEndpoint::new(
            self.ctx.clone(),
            role,
            Some(self.relay.certificate().fingerprint().clone()),
            Millis(0),
        )
    }
}

/// Flow 1 the browser's (crypto as given, SDP address PEER_A), flow 2 a plain peer at PEER_B.
fn call(b: &Browser, crypto: FlowCrypto) -> FlowTable<u64> {
    let mut t = FlowTable::default();
    t.set_dtls(Some(b.relay.clone()));
    for (id, egress, peer, local, crypto, learning) in [
        (1, 2, PEER_A, LOCAL_A, crypto, EndpointLearning::Heuristic),
        (
            2,
            1,
            PEER_B,
            LOCAL_B,
            FlowCrypto::default(),
            EndpointLearning::Off,
        ),
    ] {
        let spec = FlowSpec {
            kind: FlowKind::Rtp,
            egress: Some(FlowId(egress)),
            rtcp_egress: None,
            latch: LatchConfig {
                expected: Some(a(peer)),
                learning,
                strict: true,
                window: Duration::from_millis(200),
                ..LatchConfig::default()
            },
            counters: Arc::default(),
            record: None,
            local: Some(a(local)),
            crypto,
        };
        t.open(FlowId(id), spec, id, Millis(0));
    }
    t
}

/// A connectivity check from the browser, with `pwd` as its integrity key.
fn check(tid: u8, use_candidate: bool, pwd: &str) -> Vec<u8> {
    check_as(PEER_UFRAG, tid, use_candidate, pwd)
}

/// A check naming the sender `ufrag`.
fn check_as(ufrag: &str, tid: u8, use_candidate: bool, pwd: &str) -> Vec<u8> {
    let mut m = MessageBuilder::new(Class::Request, BINDING, &[tid; 12]);
    m.username(&format!("{RELAY_UFRAG}:{ufrag}"))
        .priority(0x6e00_1eff)
        .ice_controlling(0x1122_3344);
    if use_candidate {
        m.use_candidate();
    }
    m.integrity(pwd.as_bytes());
    m.fingerprint()
}

/// Packets in one run of flow `token` at `now`: each decision and the bytes it sends.
fn batch(
    t: &mut FlowTable<u64>,
    token: u64,
    pkts: &[(Vec<u8>, &str)],
    now: Millis,
) -> Vec<(Decision<u64>, Option<Vec<u8>>)> {
    let policy = TargetPolicy::permissive();
    let mut run = t.run(token, now, &policy, |io| *io).expect("flow");
    assert!(run.transforms(), "a handshake flow's run transforms");
    let out = pkts
        .iter()
        .map(|(pkt, src)| {
            let mut slot = pkt.clone();
            slot.resize(pkt.len() + 64, 0);
            let d = run.packet_mut(&mut slot, pkt.len(), a(src));
            let sent = match d {
                Decision::Forward { len, .. } => Some(slot[..len].to_vec()),
                Decision::Drop(_) => None,
            };
            (d, sent)
        })
        .collect();
    run.finish();
    out
}

fn one(t: &mut FlowTable<u64>, token: u64, pkt: &[u8], src: &str) -> Decision<u64> {
    batch(t, token, &[(pkt.to_vec(), src)], Millis(10))[0].0
}

fn drain(t: &mut FlowTable<u64>) -> Vec<HandshakeTransmit> {
    std::iter::from_fn(|| t.pop_transmit()).collect()
}

fn counters(t: &FlowTable<u64>, id: u64) -> (u64, u64, u64, u64) {
    let c = t.get(id).expect("flow").counters();
    (
        c.packets.load(Relaxed),
        c.errors.load(Relaxed),
        c.dropped.load(Relaxed),
        c.srtp_auth_failures.load(Relaxed),
    )
}

/// The browser's nominating check from NAT_A, answered; what else the relay sent then (an
/// active relay's ClientHello).
fn nominate(t: &mut FlowTable<u64>) -> Vec<HandshakeTransmit> {
    assert_eq!(
        one(t, 1, &check(1, true, RELAY_PWD), NAT_A),
        Decision::Drop(DropReason::Handshake)
    );
    let mut sent = drain(t);
    assert!(!sent.is_empty(), "an answer");
    let answer = sent.remove(0);
    assert_eq!(
        Message::parse(&answer.bytes).map(|m| m.class()),
        Ok(Class::Success)
    );
    sent
}

/// Moves datagrams between the browser and flow 1 (from `src`) until neither has more; each
/// batch of the browser's datagrams is framed by clear RTP, which must never pass.
fn handshake(t: &mut FlowTable<u64>, client: &mut DtlsEndpoint, src: &str) {
    for round in 0..20u16 {
        let mut pkts = vec![(rtp(round), src)];
        let mut any = false;
        while let Some(d) = client.poll_transmit() {
            pkts.push((d, src));
            any = true;
        }
        pkts.push((rtp(round + 100), src));
        let ds = batch(t, 1, &pkts, Millis(10));
        for (i, (d, _)) in ds.iter().enumerate() {
            if i == 0 || i == ds.len() - 1 {
                assert!(
                    matches!(d, Decision::Drop(_)),
                    "clear media in a handshake batch passed: {d:?}"
                );
            } else {
                assert_eq!(*d, Decision::Drop(DropReason::Handshake));
            }
        }
        let back = drain(t);
        for tx in &back {
            assert_eq!((tx.flow, tx.dst), (1, a(src)), "DTLS goes to its peer");
            let _ = client.handle_datagram(&tx.bytes, Millis(10));
        }
        if !any && back.is_empty() {
            return;
        }
    }
}

fn ctx(p: &Params) -> SrtpContext {
    SrtpContext::new(p).expect("context")
}

fn protect(c: &mut SrtpContext, pkt: &[u8]) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + 64, 0);
    let n = c.protect_rtp(&mut buf, pkt.len()).expect("protect");
    buf.truncate(n);
    buf
}

#[test]
fn a_check_is_answered_and_its_address_becomes_the_peer() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, true, true));
    let st = t.handshake_state(1).expect("handshake");
    assert_eq!((st.ice, st.ice_peer), (Some(IceState::New), None));
    assert_eq!(t.handshake_state(2), None, "a plain flow has none");
    // Both flows stay in userspace (never offloaded): one has handshakes, the other forwards
    // to it through a context that waits for keys.
    assert!(t.transforms(1) && t.transforms(2));

    // A check with the wrong password is refused, not answered.
    let d = one(
        &mut t,
        1,
        &check(9, true, "wrongwrongwrongwrongwrong"),
        NAT_A,
    );
    assert_eq!(d, Decision::Drop(DropReason::Handshake));
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.handshake_state(1).expect("hs").ice_peer, None);

    let d = one(&mut t, 1, &check(1, true, RELAY_PWD), NAT_A);
    assert_eq!(d, Decision::Drop(DropReason::Handshake));
    let sent = drain(&mut t);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].flow, sent[0].dst), (1, a(NAT_A)));
    let m = Message::parse(&sent[0].bytes).expect("answer");
    assert_eq!(m.class(), Class::Success);
    assert_eq!(m.transaction_id(), &[1; 12]);
    assert_eq!(m.xor_mapped_address(), Some(a(NAT_A)));
    m.check_integrity(RELAY_PWD.as_bytes()).expect("integrity");

    let st = t.handshake_state(1).expect("hs");
    assert_eq!((st.ice_peer, st.nominated), (Some(a(NAT_A)), true));
    // The nominated address is the peer: flow 2's media goes there, not to the SDP address.
    let f = t.get(1).expect("flow");
    assert_eq!(f.latch().target(), Some(a(NAT_A)));
    assert_eq!(counters(&t, 1).1, 0, "handshake datagrams are not errors");
    let stats = t.take_handshake_stats();
    assert_eq!((stats.stun_answered, stats.stun_refused), (1, 1));
    let changes = t.take_handshake_changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0].0, changes[0].1.nominated), (1, true));
    assert!(t.take_handshake_changes().is_empty(), "reported once");
}

#[test]
fn dtls_keys_decrypt_and_protect_media_both_ways() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, true, true));
    nominate(&mut t);
    let mut client = b.endpoint(Role::Active);
    handshake(&mut t, &mut client, NAT_A);
    assert_eq!(client.state(), DtlsState::Connected);
    let st = t.handshake_state(1).expect("hs");
    assert_eq!(st.dtls, Some(DtlsState::Connected));
    assert_eq!(st.dtls_peer, Some(a(NAT_A)));
    let keys = client.srtp_keys().expect("keys").clone();
    assert_eq!(st.suite, Some(keys.suite));
    assert_eq!(t.take_handshake_stats().dtls_completed, 1);
    let changes = t.take_handshake_changes();
    assert!(
        changes
            .iter()
            .any(|(id, s)| *id == 1 && s.dtls == Some(DtlsState::Connected)),
        "{changes:?}"
    );
    let auth_failures = counters(&t, 1).3;

    // The browser's SRTP is decrypted and goes to B in clear.
    let mut browser_out = ctx(&keys.local);
    let clear = rtp(7);
    let ds = batch(
        &mut t,
        1,
        &[(protect(&mut browser_out, &clear), NAT_A)],
        Millis(20),
    );
    assert_eq!(
        ds[0].0,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: clear.len()
        }
    );
    assert_eq!(ds[0].1.as_deref(), Some(&clear[..]));

    // B's plain RTP is protected toward the browser, at its nominated address.
    let ds = batch(&mut t, 2, &[(rtp(8), PEER_B)], Millis(20));
    let Decision::Forward { via, dst, .. } = ds[0].0 else {
        panic!("not forwarded: {:?}", ds[0].0);
    };
    assert_eq!((via, dst), (1, a(NAT_A)));
    let mut wire = ds[0].1.clone().expect("sent");
    assert_ne!(wire, rtp(8), "never in clear");
    let mut browser_in = ctx(&keys.remote);
    let n = browser_in
        .unprotect_rtp(&mut wire)
        .expect("browser reads it");
    assert_eq!(&wire[..n], &rtp(8)[..]);
    assert_eq!(
        counters(&t, 1).3,
        auth_failures,
        "no SRTP failure on the way"
    );
}

#[test]
fn media_before_keys_is_dropped_both_ways_and_not_as_auth_failure() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, true, true));
    nominate(&mut t);
    assert_eq!(
        one(&mut t, 1, &rtp(1), NAT_A),
        Decision::Drop(DropReason::AwaitingKeys)
    );
    assert_eq!(
        one(&mut t, 2, &rtp(1), PEER_B),
        Decision::Drop(DropReason::AwaitingKeys),
        "nothing goes to the browser in clear"
    );
    let (packets, _, dropped, auth) = counters(&t, 1);
    assert_eq!((packets, dropped, auth), (0, 1, 0));
    assert_eq!(counters(&t, 2).2, 1);
    // The handshake batches in `handshake` frame each flight with clear RTP: none passes,
    // before or after the keys.
    let mut client = b.endpoint(Role::Active);
    handshake(&mut t, &mut client, NAT_A);
    assert_eq!(client.state(), DtlsState::Connected);
    // Clear RTP after the keys: it does not authenticate.
    assert_eq!(
        one(&mut t, 1, &rtp(50), NAT_A),
        Decision::Drop(DropReason::Unauthenticated)
    );
}

#[test]
fn only_the_verified_address_is_heard() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, true, true));
    let mut client = b.endpoint(Role::Active);
    let hello = client.poll_transmit().expect("ClientHello");
    // Before any check: neither DTLS nor media is taken, from anyone.
    assert_eq!(
        one(&mut t, 1, &hello, NAT_A),
        Decision::Drop(DropReason::Unverified)
    );
    assert_eq!(
        one(&mut t, 1, &rtp(1), PEER_A),
        Decision::Drop(DropReason::Unverified)
    );
    assert!(drain(&mut t).is_empty());
    nominate(&mut t);
    // Another address: its DTLS does not reach the endpoint, its media is dropped.
    let mut evil = b.endpoint(Role::Active);
    let evil_hello = evil.poll_transmit().expect("hello");
    assert_eq!(
        one(&mut t, 1, &evil_hello, EVIL),
        Decision::Drop(DropReason::Unverified)
    );
    assert!(drain(&mut t).is_empty(), "no flight for a stranger");
    assert_eq!(
        one(&mut t, 1, &rtp(2), EVIL),
        Decision::Drop(DropReason::Unverified)
    );
    assert_eq!(
        t.handshake_state(1).expect("hs").dtls,
        Some(DtlsState::Handshaking),
        "no endpoint was made"
    );
    // The real browser still gets through.
    assert_eq!(
        one(&mut t, 1, &hello, NAT_A),
        Decision::Drop(DropReason::Handshake)
    );
    assert!(!drain(&mut t).is_empty(), "the ServerHello flight");
}

#[test]
fn a_late_fingerprint_releases_the_keys() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, false, true));
    nominate(&mut t);
    let mut client = b.endpoint(Role::Active);
    handshake(&mut t, &mut client, NAT_A);
    let st = t.handshake_state(1).expect("hs");
    assert_eq!(st.dtls, Some(DtlsState::AwaitingFingerprint));
    assert_eq!(
        one(&mut t, 1, &rtp(1), NAT_A),
        Decision::Drop(DropReason::AwaitingKeys)
    );

    let latch = *t.get(1).expect("flow").latch().config();
    let change = new_signalling(latch, b.crypto(Role::Passive, true, true));
    assert!(t.update(FlowId(1), change, Millis(30)));
    assert_eq!(
        t.handshake_state(1).expect("hs").dtls,
        Some(DtlsState::Connected)
    );
    let keys = client.srtp_keys().expect("keys").clone();
    let mut browser_out = ctx(&keys.local);
    let d = one(&mut t, 1, &protect(&mut browser_out, &rtp(2)), NAT_A);
    assert!(matches!(d, Decision::Forward { .. }), "{d:?}");
    // The same parameters again keep the keys.
    let change = new_signalling(latch, b.crypto(Role::Passive, true, true));
    assert!(t.update(FlowId(1), change, Millis(40)));
    let d = one(&mut t, 1, &protect(&mut browser_out, &rtp(3)), NAT_A);
    assert!(matches!(d, Decision::Forward { .. }), "{d:?}");
    assert_eq!(t.get(1).expect("flow").latch().target(), Some(a(NAT_A)));

    // Another role: a new association, the old keys gone.
    let change = new_signalling(latch, b.crypto(Role::Active, true, true));
    assert!(t.update(FlowId(1), change, Millis(50)));
    let d = one(&mut t, 1, &protect(&mut browser_out, &rtp(4)), NAT_A);
    assert_eq!(d, Decision::Drop(DropReason::AwaitingKeys));
    assert_eq!(
        one(&mut t, 2, &rtp(4), PEER_B),
        Decision::Drop(DropReason::AwaitingKeys)
    );
}

#[test]
fn an_active_relay_sends_its_hello_to_the_nominated_peer_and_retransmits() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Active, true, true));
    t.poll_handshakes(Millis(5));
    assert!(drain(&mut t).is_empty(), "no peer yet: nothing sent");
    let hello = nominate(&mut t);
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0].dst, a(NAT_A));
    // No answer: the flight goes again after its timeout (1 s, with the library's jitter).
    let mut again = None;
    for ms in (20..5000).step_by(50) {
        t.poll_handshakes(Millis(ms));
        let sent = drain(&mut t);
        if !sent.is_empty() {
            assert_eq!(sent[0].dst, a(NAT_A));
            again = Some(ms);
            break;
        }
    }
    let again = again.expect("retransmitted");
    assert!((500..3000).contains(&again), "retransmitted at {again} ms");

    // A browser that answers completes it.
    let mut server = b.endpoint(Role::Passive);
    let _ = server.handle_datagram(&hello[0].bytes, Millis(again));
    for _ in 0..10 {
        let pkts: Vec<_> = std::iter::from_fn(|| server.poll_transmit())
            .map(|d| (d, NAT_A))
            .collect();
        batch(&mut t, 1, &pkts, Millis(again + 100));
        for tx in drain(&mut t) {
            let _ = server.handle_datagram(&tx.bytes, Millis(again + 100));
        }
    }
    assert_eq!(server.state(), DtlsState::Connected);
    assert_eq!(
        t.handshake_state(1).expect("hs").dtls,
        Some(DtlsState::Connected)
    );
}

#[test]
fn dtls_without_ice_takes_the_latched_peer_and_no_context_drops_media() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, true, false));
    let mut client = b.endpoint(Role::Active);
    // The SDP address is the latch's target: DTLS from it is taken.
    handshake(&mut t, &mut client, PEER_A);
    assert_eq!(client.state(), DtlsState::Connected);
    assert_eq!(
        one(&mut t, 1, &rtp(1), PEER_A),
        Decision::Drop(DropReason::Unauthenticated)
    );
    // Another source's DTLS: the latch (fixed on the SDP address, strict) refuses it.
    let mut evil = b.endpoint(Role::Active);
    let evil_hello = evil.poll_transmit().expect("hello");
    assert_eq!(
        one(&mut t, 1, &evil_hello, EVIL),
        Decision::Drop(DropReason::Unverified)
    );
    assert!(drain(&mut t).is_empty());

    // A table without a DTLS context: the flow drops media both ways, answers nothing.
    let mut t = {
        let mut t: FlowTable<u64> = FlowTable::default();
        let spec = FlowSpec {
            kind: FlowKind::Rtp,
            egress: Some(FlowId(2)),
            rtcp_egress: None,
            latch: LatchConfig {
                expected: Some(a(PEER_A)),
                ..LatchConfig::default()
            },
            counters: Arc::default(),
            record: None,
            local: Some(a(LOCAL_A)),
            crypto: b.crypto(Role::Passive, true, false),
        };
        t.open(FlowId(1), spec, 1, Millis(0));
        let spec = FlowSpec {
            kind: FlowKind::Rtp,
            egress: Some(FlowId(1)),
            rtcp_egress: None,
            latch: LatchConfig {
                expected: Some(a(PEER_B)),
                learning: EndpointLearning::Off,
                ..LatchConfig::default()
            },
            counters: Arc::default(),
            record: None,
            local: Some(a(LOCAL_B)),
            crypto: FlowCrypto::default(),
        };
        t.open(FlowId(2), spec, 2, Millis(0));
        t
    };
    let mut client = b.endpoint(Role::Active);
    let hello = client.poll_transmit().expect("hello");
    assert_eq!(
        one(&mut t, 1, &hello, PEER_A),
        Decision::Drop(DropReason::Handshake)
    );
    assert!(drain(&mut t).is_empty());
    assert!(matches!(
        t.handshake_state(1).expect("hs").dtls,
        Some(DtlsState::Failed(_))
    ));
    assert_eq!(
        one(&mut t, 1, &rtp(1), PEER_A),
        Decision::Drop(DropReason::AwaitingKeys)
    );
    assert_eq!(
        one(&mut t, 2, &rtp(1), PEER_B),
        Decision::Drop(DropReason::AwaitingKeys)
    );
}

#[test]
fn a_plain_flow_keeps_stun_and_dtls_as_malformed() {
    let b = Browser::new();
    let mut t = call(&b, FlowCrypto::default());
    let policy = TargetPolicy::permissive();
    assert!(!t.transforms(1) && !t.transforms(2));
    let mut run = t.run(1, Millis(10), &policy, |io| *io).expect("flow");
    assert!(!run.transforms());
    let d = run.packet(&check(1, true, RELAY_PWD), a(NAT_A));
    assert_eq!(d, Decision::Drop(DropReason::Malformed));
    run.finish();
    assert!(drain(&mut t).is_empty());
}

#[test]
fn hostile_datagrams_never_panic_or_pass() {
    let b = Browser::new();
    let mut rng = StdRng::seed_from_u64(7);
    let mut t = call(&b, b.crypto(Role::Passive, true, true));
    let stun = check(3, true, RELAY_PWD);
    let mut client = b.endpoint(Role::Active);
    let hello = client.poll_transmit().expect("hello");
    for round in 0..2000u32 {
        if round == 1000 {
            nominate(&mut t);
        }
        let base = match rng.random_range(0..3) {
            0 => stun.clone(),
            1 => hello.clone(),
            _ => rtp(round as u16),
        };
        let mut pkt = base;
        // Truncate, flip bytes, or make it up.
        match rng.random_range(0..3) {
            0 => pkt.truncate(rng.random_range(0..=pkt.len())),
            1 => {
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(0..pkt.len());
                    pkt[i] ^= rng.random::<u8>() | 1;
                }
            }
            _ => {
                let n = rng.random_range(0..200);
                pkt = (0..n).map(|_| rng.random()).collect();
                if let Some(f) = pkt.first_mut() {
                    *f = [0u8, 1, 22, 23, 128][rng.random_range(0..5)];
                }
            }
        }
        let src = [NAT_A, EVIL, PEER_A][rng.random_range(0..3)];
        let d = one(&mut t, 1, &pkt, src);
        assert!(
            !matches!(d, Decision::Forward { .. }),
            "round {round}: junk passed"
        );
        t.poll_handshakes(Millis(10 + u64::from(round)));
        drain(&mut t);
    }
}

#[test]
fn the_peers_ice_credentials_arrive_with_an_update() {
    let b = Browser::new();
    let mut crypto = b.crypto(Role::Passive, true, true);
    if let Some(i) = crypto.ice.as_mut() {
        i.remote = None;
    }
    let mut t = call(&b, crypto);
    // Before the peer's SDP, any sender ufrag passes (RFC 8445 7.3: only ours is known).
    one(&mut t, 1, &check_as("otherufr", 1, false, RELAY_PWD), NAT_A);
    assert_eq!(drain(&mut t).len(), 1);
    let latch = *t.get(1).expect("flow").latch().config();
    let change = new_signalling(latch, b.crypto(Role::Passive, true, true));
    assert!(t.update(FlowId(1), change, Millis(20)));
    one(&mut t, 1, &check_as("otherufr", 2, false, RELAY_PWD), NAT_A);
    assert!(
        drain(&mut t).is_empty(),
        "another ufrag than the SDP's is refused"
    );
    one(&mut t, 1, &check(3, true, RELAY_PWD), NAT_A);
    assert_eq!(drain(&mut t).len(), 1);
    // The agent (and what it verified) stayed across the update.
    assert_eq!(t.handshake_state(1).expect("hs").ice_peer, Some(a(NAT_A)));
    // Without ICE and DTLS any more, the flow is plain again.
    let change = new_signalling(latch, FlowCrypto::default());
    assert!(t.update(FlowId(1), change, Millis(30)));
    assert_eq!(t.handshake_state(1), None);
    assert!(!t.transforms(1) && !t.transforms(2));
}

/// What new signalling tells flow 1 (the browser's, egress to flow 2): its latch and crypto.
fn new_signalling(latch: LatchConfig, crypto: FlowCrypto) -> FlowChange {
    FlowChange {
        kind: FlowKind::Rtp,
        egress: Some(FlowId(2)),
        rtcp_egress: None,
        latch,
        record: None,
        crypto,
    }
}

/// ICE only (no DTLS), the relay a full controlling agent with host candidates at `peers`
/// from the peer's SDP.
fn full_controlling(peers: &[SocketAddr]) -> FlowCrypto {
    let mut params = ice(true);
    params.full = Some(crate::flow::FullIce {
        controlling: true,
        tie_breaker: 7,
        seed: [3; 32],
        candidates: peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!("{i} 1 udp 2130706431 {} {} typ host", p.ip(), p.port())
                    .parse()
                    .expect("candidate")
            })
            .collect(),
        end_of_candidates: true,
    });
    FlowCrypto {
        ice: Some(params),
        ..FlowCrypto::default()
    }
}

/// Full ICE towards an ICE-lite gateway at PEER_A: the relay's controlling agent checks the
/// candidate from the SDP, nominates it, and takes media from it only then; a forged success
/// response (the transaction sniffed, the password not known) verifies nothing.
#[test]
fn a_full_controlling_relay_checks_a_lite_peer_and_nominates_it() {
    use crate::ice::{IceAgent, IceConfig, Role as IceRole};

    let b = Browser::new();
    let mut t = call(&b, full_controlling(&[a(PEER_A)]));
    let peer_creds = Credentials {
        ufrag: PEER_UFRAG.into(),
        pwd: PEER_PWD.into(),
    };
    let mut peer = IceAgent::with_parts(
        IceConfig::default(),
        IceRole::Controlled,
        peer_creds,
        1,
        [9; 32],
    );
    peer.add_local_host(1, a(PEER_A), a(PEER_A).ip());
    peer.set_remote_credentials(RELAY_UFRAG, RELAY_PWD);

    assert!(
        matches!(one(&mut t, 1, &rtp(1), PEER_A), Decision::Drop(_)),
        "media before any check is refused"
    );
    let mut forged = false;
    let mut now = 10;
    while now < 5000 && !t.handshake_state(1).expect("hs").nominated {
        now += 20;
        t.poll_handshakes(Millis(now));
        for tx in drain(&mut t) {
            assert_eq!(tx.dst, a(PEER_A), "checks go to the SDP candidate");
            let req = Message::parse(&tx.bytes).expect("a STUN check");
            if !forged {
                // An attacker who saw the check answers first, keyed with a guess.
                forged = true;
                let mut m = MessageBuilder::new(Class::Success, BINDING, req.transaction_id());
                m.xor_mapped_address(a(LOCAL_A))
                    .integrity(b"not the peer's password!");
                batch(&mut t, 1, &[(m.fingerprint(), PEER_A)], Millis(now));
                let hs = t.handshake_state(1).expect("hs");
                assert_eq!(hs.ice_peer, None, "a forged response verifies nothing");
            }
            let _ = peer.handle_packet(Millis(now), a(LOCAL_A), a(PEER_A), &tx.bytes);
            while let Some(r) = peer.poll_transmit() {
                assert_eq!(r.remote, a(LOCAL_A));
                batch(&mut t, 1, &[(r.bytes, PEER_A)], Millis(now));
            }
        }
    }
    let hs = t.handshake_state(1).expect("hs");
    assert!(hs.nominated, "the relay nominated within {now} ms");
    assert_eq!(hs.ice_peer, Some(a(PEER_A)));
    assert_eq!(peer.nominated(1), Some((a(PEER_A), a(LOCAL_A))));
    assert!(matches!(
        one(&mut t, 1, &rtp(2), PEER_A),
        Decision::Forward { .. }
    ));
    assert!(matches!(one(&mut t, 1, &rtp(3), EVIL), Decision::Drop(_)));
}

/// An SDP listing many candidates (aimed at a third party, say) gets a bounded number of
/// checks from the relay: at most 10 addresses, each at most 7 times, then nothing.
#[test]
fn a_full_agent_checks_few_candidates_a_bounded_number_of_times() {
    let many: Vec<SocketAddr> = (1..=40u8)
        .map(|i| SocketAddr::from(([198, 51, 100, i], 2000)))
        .collect();
    let b = Browser::new();
    let mut t = call(&b, full_controlling(&many));
    let mut sent = Vec::new();
    for ms in (0..120_000).step_by(20) {
        t.poll_handshakes(Millis(ms));
        sent.extend(drain(&mut t).into_iter().map(|tx| tx.dst));
    }
    let mut distinct = sent.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() <= 10, "{} addresses checked", distinct.len());
    assert!(
        !sent.is_empty() && sent.len() <= 70,
        "{} checks sent",
        sent.len()
    );
}

/// The peer restarts ICE (new ufrag and password in a re-INVITE, say after a network change):
/// the relay starts over with a new agent, so the new path's checks can verify and be
/// nominated, and the old address is no longer the one media is taken from.
#[test]
fn a_peer_ice_restart_starts_a_new_agent() {
    let b = Browser::new();
    let mut t = call(&b, b.crypto(Role::Passive, true, true));
    nominate(&mut t);
    assert_eq!(t.handshake_state(1).expect("hs").ice_peer, Some(a(NAT_A)));
    let latch = *t.get(1).expect("flow").latch().config();
    let mut crypto = b.crypto(Role::Passive, true, true);
    if let Some(i) = crypto.ice.as_mut() {
        i.remote = Some(Credentials {
            ufrag: "newufrag".into(),
            pwd: "newpasswordnewpassword00".into(),
        });
    }
    let change = new_signalling(latch, crypto);
    assert!(t.update(FlowId(1), change, Millis(20)));
    assert_eq!(t.handshake_state(1).expect("hs").ice_peer, None);
    // The new path: a check naming the new ufrag, from a new address, is verified.
    one(&mut t, 1, &check_as("newufrag", 5, true, RELAY_PWD), EVIL);
    assert_eq!(drain(&mut t).len(), 1);
    assert_eq!(t.handshake_state(1).expect("hs").ice_peer, Some(a(EVIL)));
}
