//! Handshakes between two endpoints in memory, on a simulated clock.

use std::sync::Arc;
use std::time::Instant;

use crate::srtp::{Params, SrtpContext, Suite};
use crate::time::Millis;

use super::*;

fn ctx_with(options: DtlsOptions) -> Arc<DtlsContext> {
    let cert = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("cert");
    DtlsContext::new(cert, options, Instant::now()).expect("context")
}

fn ctx() -> Arc<DtlsContext> {
    ctx_with(DtlsOptions::default())
}

/// Two endpoints that know each other's fingerprints.
fn pair(a: &Arc<DtlsContext>, b: &Arc<DtlsContext>, now: Millis) -> (DtlsEndpoint, DtlsEndpoint) {
    let client = DtlsEndpoint::new(
        a.clone(),
        Role::Active,
        Some(b.certificate().fingerprint().clone()),
        now,
    );
    let server = DtlsEndpoint::new(
        b.clone(),
        Role::Passive,
        Some(a.certificate().fingerprint().clone()),
        now,
    );
    (client, server)
}

/// Move datagrams both ways until neither side has anything to send; `lose(n)` drops the n-th
/// datagram (counted over the whole exchange). Returns how many datagrams were delivered.
fn exchange(
    a: &mut DtlsEndpoint,
    b: &mut DtlsEndpoint,
    now: Millis,
    lose: &mut dyn FnMut(usize) -> bool,
    sent: &mut usize,
) {
    loop {
        let mut moved = false;
        while let Some(d) = a.poll_transmit() {
            moved = true;
            *sent += 1;
            if !lose(*sent) {
                let _ = b.handle_datagram(&d, now);
            }
        }
        while let Some(d) = b.poll_transmit() {
            moved = true;
            *sent += 1;
            if !lose(*sent) {
                let _ = a.handle_datagram(&d, now);
            }
        }
        if !moved {
            return;
        }
    }
}

/// Run to completion on a simulated clock: exchange, then jump to the earlier timer.
fn run(
    a: &mut DtlsEndpoint,
    b: &mut DtlsEndpoint,
    mut now: Millis,
    lose: &mut dyn FnMut(usize) -> bool,
) -> Millis {
    let mut sent = 0;
    for _ in 0..50 {
        exchange(a, b, now, lose, &mut sent);
        let done =
            |e: &DtlsEndpoint| matches!(e.state(), DtlsState::Connected | DtlsState::Failed(_));
        if done(a) && done(b) {
            break;
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        now = next.max(now);
        let _ = a.handle_timeout(now);
        let _ = b.handle_timeout(now);
    }
    now
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend((0..160).map(|i| i as u8));
    p
}

/// `tx` protects, `rx` unprotects: the packet comes back intact.
fn srtp_works(tx: &Params, rx: &Params) {
    let mut txc = SrtpContext::new(tx).expect("tx context");
    let mut rxc = SrtpContext::new(rx).expect("rx context");
    for seq in [1u16, 2, 3] {
        let plain = rtp(seq);
        let mut buf = plain.clone();
        buf.resize(plain.len() + txc.rtp_overhead(), 0);
        let n = txc.protect_rtp(&mut buf, plain.len()).expect("protect");
        buf.truncate(n);
        assert_ne!(buf[12..plain.len()], plain[12..], "payload encrypted");
        let m = rxc
            .unprotect_rtp(&mut buf)
            .expect("unprotect with the peer's key");
        assert_eq!(buf[..m], plain[..]);
    }
}

#[test]
fn handshake_gives_crosswise_keys_that_work_with_srtp() {
    let (ca, cb) = (ctx(), ctx());
    let (mut client, mut server) = pair(&ca, &cb, Millis(1000));
    assert_eq!(server.state(), DtlsState::Handshaking);
    assert!(
        server.poll_transmit().is_none(),
        "passive waits for a ClientHello"
    );
    run(&mut client, &mut server, Millis(1000), &mut |_| false);
    assert_eq!(client.state(), DtlsState::Connected);
    assert_eq!(server.state(), DtlsState::Connected);
    let (ck, sk) = (
        client.srtp_keys().expect("keys"),
        server.srtp_keys().expect("keys"),
    );
    assert_eq!(ck.suite, sk.suite);
    assert!(SUPPORTED_SUITES.contains(&ck.suite));
    assert_eq!(ck.local, sk.remote);
    assert_eq!(ck.remote, sk.local);
    assert_ne!(ck.local, ck.remote);
    srtp_works(&ck.local, &sk.remote);
    srtp_works(&sk.local, &ck.remote);
    // And a key of the wrong direction does not authenticate.
    let mut wrong = SrtpContext::new(&ck.local).expect("ctx");
    let mut right = SrtpContext::new(&sk.local).expect("ctx");
    let plain = rtp(9);
    let mut buf = plain.clone();
    buf.resize(plain.len() + right.rtp_overhead(), 0);
    let n = right.protect_rtp(&mut buf, plain.len()).expect("protect");
    buf.truncate(n);
    assert!(wrong.unprotect_rtp(&mut buf).is_err());
}

#[test]
fn each_allowed_profile_negotiates_its_suite() {
    for suite in SUPPORTED_SUITES {
        let opts = DtlsOptions {
            srtp_suites: vec![suite],
            ..DtlsOptions::default()
        };
        // Only the server restricts: the library offers every profile, and a client that
        // negotiates another one refuses it after the handshake.
        let (ca, cb) = (ctx(), ctx_with(opts));
        let (mut client, mut server) = pair(&ca, &cb, Millis(0));
        run(&mut client, &mut server, Millis(0), &mut |_| false);
        let negotiated = client.srtp_keys().map(|k| k.suite);
        match server.state() {
            DtlsState::Connected => {
                assert_eq!(negotiated, Some(suite));
                let (ck, sk) = (
                    client.srtp_keys().expect("k"),
                    server.srtp_keys().expect("k"),
                );
                srtp_works(&ck.local, &sk.remote);
            }
            DtlsState::Failed(DtlsError::ProfileNotAllowed(_)) => {
                assert_ne!(negotiated, Some(suite));
            }
            other => panic!("{suite:?}: {other:?}"),
        }
    }
}

#[test]
fn fingerprint_mismatch_fails_and_releases_no_keys() {
    let (ca, cb, other) = (ctx(), ctx(), ctx());
    let mut client = DtlsEndpoint::new(
        ca.clone(),
        Role::Active,
        Some(other.certificate().fingerprint().clone()),
        Millis(0),
    );
    let mut server = DtlsEndpoint::new(
        cb.clone(),
        Role::Passive,
        Some(ca.certificate().fingerprint().clone()),
        Millis(0),
    );
    run(&mut client, &mut server, Millis(0), &mut |_| false);
    assert_eq!(
        client.state(),
        DtlsState::Failed(DtlsError::FingerprintMismatch)
    );
    assert!(client.srtp_keys().is_none());
    assert_eq!(
        client.handle_timeout(Millis(5)),
        Err(DtlsError::FingerprintMismatch)
    );
    assert_eq!(client.poll_timeout(), None);
}

#[test]
fn fingerprint_arriving_after_the_handshake_decides_it() {
    let (ca, cb) = (ctx(), ctx());
    let mut client = DtlsEndpoint::new(
        ca.clone(),
        Role::Active,
        Some(cb.certificate().fingerprint().clone()),
        Millis(0),
    );
    // The server does not know the client's fingerprint yet (SDP answer still on its way).
    let mut server = DtlsEndpoint::new(cb.clone(), Role::Passive, None, Millis(0));
    run(&mut client, &mut server, Millis(0), &mut |_| false);
    assert_eq!(client.state(), DtlsState::Connected);
    assert_eq!(server.state(), DtlsState::AwaitingFingerprint);
    assert!(server.srtp_keys().is_none());
    // A wrong one fails it...
    let mut wrong = DtlsEndpoint::new(cb.clone(), Role::Passive, None, Millis(0));
    let (mut c2, _) = pair(&ca, &cb, Millis(0));
    run(&mut c2, &mut wrong, Millis(0), &mut |_| false);
    assert_eq!(
        wrong.set_remote_fingerprint(cb.certificate().fingerprint().clone()),
        Err(DtlsError::FingerprintMismatch)
    );
    // ...the right one (with another hash function) releases the keys.
    let sha1 = ca.certificate().fingerprint_with(HashFunc::Sha1);
    let parsed = Fingerprint::parse(&sha1.to_string()).expect("parse");
    server.set_remote_fingerprint(parsed).expect("matches");
    assert_eq!(server.state(), DtlsState::Connected);
    assert_eq!(
        server.srtp_keys().map(|k| &k.local),
        client.srtp_keys().map(|k| &k.remote)
    );
}

#[test]
fn lost_datagrams_are_recovered_by_retransmission() {
    // Lose every side's first flight once, and later the 5th and 6th datagrams.
    for lost in [vec![1usize], vec![2], vec![1, 2, 5, 6], vec![3, 4]] {
        let (ca, cb) = (ctx(), ctx());
        let (mut client, mut server) = pair(&ca, &cb, Millis(0));
        let end = run(&mut client, &mut server, Millis(0), &mut |n| {
            lost.contains(&n)
        });
        assert_eq!(client.state(), DtlsState::Connected, "lost {lost:?}");
        assert_eq!(server.state(), DtlsState::Connected, "lost {lost:?}");
        // The first timeout is 1 s with the library's jitter (it fired after 796 ms once).
        assert!(
            end >= Millis(500),
            "a retransmission timer fired ({end:?}, lost {lost:?})"
        );
        let (ck, sk) = (
            client.srtp_keys().expect("k"),
            server.srtp_keys().expect("k"),
        );
        assert_eq!(ck.local, sk.remote);
    }
}

#[test]
fn unanswered_handshake_ends_after_bounded_retransmits() {
    let opts = DtlsOptions {
        max_retransmits: 3,
        ..DtlsOptions::default()
    };
    let c = ctx_with(opts);
    let mut client = DtlsEndpoint::new(c, Role::Active, None, Millis(0));
    let mut now = Millis(0);
    let mut sent = 0;
    let mut steps = 0;
    while let Some(t) = client.poll_timeout() {
        while client.poll_transmit().is_some() {
            sent += 1;
        }
        steps += 1;
        assert!(steps < 100, "timer never gave up");
        assert!(t >= now, "timer in the past: {t:?} < {now:?}");
        now = t;
        let _ = client.handle_timeout(now);
    }
    assert_eq!(client.state(), DtlsState::Failed(DtlsError::Timeout));
    // The ClientHello and at most max_retransmits (+1 for the library's counting) copies.
    assert!((2..=5).contains(&sent), "{sent} ClientHellos");
    assert!(now <= Millis(60_000), "gave up at {now:?}");
}

#[test]
fn junk_flood_is_dropped_without_growth() {
    let c = ctx();
    let mut server = DtlsEndpoint::new(c, Role::Passive, None, Millis(0));
    let mut seed = 0x1234_5678u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for i in 0..5000u32 {
        let len = (rnd() % 300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 2 == 0 && d.len() >= 13 {
            // Well-framed: one record with a random body, DTLS 1.2 header.
            d[0] = 20 + (rnd() % 4) as u8;
            d[1] = 0xfe;
            d[2] = 0xfd;
            let body = (d.len() - 13) as u16;
            d[11..13].copy_from_slice(&body.to_be_bytes());
        }
        let _ = server.handle_datagram(&d, Millis(u64::from(i)));
        let mut queued = 0;
        while server.poll_transmit().is_some() {
            queued += 1;
        }
        assert!(queued <= endpoint::MAX_QUEUED_DATAGRAMS);
    }
    let n = server.counters();
    assert_eq!(n.datagrams_in, 5000);
    assert!(n.junk >= 2500, "{n:?}");
}

#[test]
fn options_are_checked() {
    let cert = Certificate::generate(CertCipher::EcdsaP256, 0).expect("cert");
    let small = DtlsOptions {
        mtu: 100,
        ..DtlsOptions::default()
    };
    assert!(DtlsContext::new(cert.clone(), small, Instant::now()).is_err());
    let none = DtlsOptions {
        srtp_suites: vec![Suite::AesCm128HmacSha1_32],
        ..DtlsOptions::default()
    };
    assert!(DtlsContext::new(cert, none, Instant::now()).is_err());
}

#[test]
fn injected_junk_does_not_break_a_handshake() {
    // An off-path sender that knows the addresses can inject datagrams; well-framed plaintext
    // (epoch 0) records with garbage inside are discarded, not the end of the handshake. (An
    // undecryptable epoch-1 record during the handshake is fatal in dimpl: see the endpoint's
    // module doc.)
    let (ca, cb) = (ctx(), ctx());
    let (mut client, mut server) = pair(&ca, &cb, Millis(0));
    let mut seed = 0x9e37_79b9u32;
    let mut junk = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = 13 + (seed % 200) as usize;
        let mut d: Vec<u8> = (0..len).map(|i| (seed >> (i % 24)) as u8).collect();
        d[0] = [20, 21, 22, 23][(seed % 4) as usize];
        d[1] = 0xfe;
        d[2] = 0xfd;
        d[3] = 0;
        d[4] = 0; // epoch 0
        let body = (len - 13) as u16;
        d[11..13].copy_from_slice(&body.to_be_bytes());
        d
    };
    for _ in 0..20 {
        let _ = server.handle_datagram(&junk(), Millis(0));
        let _ = client.handle_datagram(&junk(), Millis(0));
        let mut moved = false;
        while let Some(d) = client.poll_transmit() {
            moved = true;
            let _ = server.handle_datagram(&d, Millis(0));
            let _ = server.handle_datagram(&junk(), Millis(0));
        }
        while let Some(d) = server.poll_transmit() {
            moved = true;
            let _ = client.handle_datagram(&d, Millis(0));
            let _ = client.handle_datagram(&junk(), Millis(0));
        }
        if !moved {
            break;
        }
    }
    run(&mut client, &mut server, Millis(0), &mut |_| false);
    assert_eq!(client.state(), DtlsState::Connected);
    assert_eq!(server.state(), DtlsState::Connected);
}

#[test]
fn a_panic_inside_the_library_fails_the_endpoint_only() {
    // Found by the dtls_endpoint fuzz target: a ClientHello, then records that make dimpl 0.7
    // reach an `assert_eq!` on a duplicate record sequence. Datagrams are 2-byte length-prefixed.
    let input = include_bytes!("../../fuzz/seeds/dtls_endpoint/dimpl_duplicate_record_assert");
    let mut ep = DtlsEndpoint::new(ctx(), Role::Passive, None, Millis(0));
    let mut rest = &input[..];
    let mut now = 0;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let (d, r) = rest[2..].split_at(len.min(rest.len() - 2));
        rest = r;
        now += 7;
        let _ = ep.handle_datagram(d, Millis(now));
        if len % 3 == 0 {
            if let Some(t) = ep.poll_timeout() {
                let _ = ep.handle_timeout(t);
            }
        }
        while ep.poll_transmit().is_some() {}
    }
    assert!(
        matches!(ep.state(), DtlsState::Failed(_)),
        "{:?}",
        ep.state()
    );
    assert_eq!(ep.poll_timeout(), None);
}
