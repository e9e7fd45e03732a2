//! Call lifecycle through the real binary: `delete` (at once, or after `--delete-delay`), the media timeout
//! (`--timeout`), the NG retransmission cache, and the limits (`--max-sessions`, a tiny port range).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::bencode::{self, Value};
use common::call::*;
use common::*;

const WAIT: Duration = Duration::from_secs(2);

fn rtp(ssrc: u32, n: u16) -> Vec<u8> {
    RtpPacket::pcmu(ssrc, n).to_bytes()
}

/// A's packet reaches B through the relay.
fn flows(c: &Call, n: u16) {
    c.a.rtp.send_to(&rtp(0xa, n), c.a_to).expect("send");
    assert_eq!(
        c.b.rtp.recv_timeout(WAIT),
        Some((rtp(0xa, n), c.b_to)),
        "call {} forwards media",
        c.id
    );
}

fn listed(ng: &NgClient, id: &str) -> bool {
    ng.list_calls().expect("list").iter().any(|c| c == id)
}

#[test]
fn delete_removes_the_call_and_frees_its_ports() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    flows(&c, 0);
    assert_eq!(ng.list_calls().expect("list"), vec![c.id.clone()]);

    let del = expect_ok(ng.delete(&c.id, "tag-a"), "delete");
    assert_eq!(get_str(&del, "result"), Some("ok"));
    assert!(
        ng.list_calls().expect("list").is_empty(),
        "call listed after delete"
    );
    let q = ng.query(&c.id).expect("query reply");
    assert_eq!(get_str(&q, "error-reason"), Some("Unknown call-id"));

    c.a.rtp.send_to(&rtp(0xa, 1), c.a_to).expect("send");
    assert_silent(
        &c.b.rtp,
        Duration::from_millis(300),
        "a deleted call forwarded media",
    );
    // Its four ports are closed: we can bind them ourselves.
    for p in [c.a_to, c.b_to] {
        for port in [p.port(), p.port() + 1] {
            let at = SocketAddr::new(p.ip(), port);
            assert!(
                wait_until(WAIT, || UdpSocket::bind(at).is_ok()),
                "relay port {at} still bound after delete"
            );
        }
    }
}

#[test]
fn delete_delay_keeps_the_call_listed_for_a_while() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["--delete-delay=2"]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    expect_ok(ng.delete(&c.id, "tag-a"), "delete");
    let deleted = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        listed(&ng, &c.id),
        "gone within 1 s of delete with a 2 s delay"
    );
    assert!(
        wait_until(Duration::from_secs(3), || !listed(&ng, &c.id)),
        "still listed 4 s after delete"
    );
    let gone = deleted.elapsed();
    assert!(
        gone >= Duration::from_millis(1500),
        "gone after {gone:?}, before the delay"
    );
}

#[test]
fn timeout_ends_silent_calls_and_keeps_calls_with_media() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["--timeout=2"]);
    let ng = relay.client();
    let silent = Call::setup_at(&ng, &ports, 0, &[]);
    let live = Call::setup_at(&ng, &ports, 4, &[]);
    let start = Instant::now();
    let mut silent_gone = None;
    let mut n = 0u16;
    // 50 packets/s both ways on `live` for 4 s, watching the list.
    while start.elapsed() < Duration::from_secs(4) {
        live.a.rtp.send_to(&rtp(0xa, n), live.a_to).expect("send A");
        live.b.rtp.send_to(&rtp(0xb, n), live.b_to).expect("send B");
        n += 1;
        if n % 10 == 0 && silent_gone.is_none() && !listed(&ng, &silent.id) {
            silent_gone = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = silent_gone.expect("the call without media outlived --timeout=2 by 2 s");
    assert!(
        gone >= Duration::from_millis(1500),
        "timed out after only {gone:?}"
    );
    assert!(listed(&ng, &live.id), "the call with media timed out");
    // Drain what `live` relayed, then check it still forwards.
    while live.b.rtp.recv_timeout(Duration::from_millis(50)).is_some() {}
    flows(&live, n);
}

/// One NG datagram with a fixed cookie.
fn framed(cookie: &str, d: common::Dict) -> Vec<u8> {
    let mut msg = format!("{cookie} ").into_bytes();
    msg.extend(bencode::encode(&Value::Dict(d)));
    msg
}

#[test]
fn a_retransmitted_offer_gets_the_cached_reply_and_no_new_call() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let offer = |call: &str| {
        dict([
            ("command", "offer".into()),
            ("call-id", call.into()),
            ("from-tag", "tag-a".into()),
            ("sdp", sdp_offer(LO, ports.port(0)).into()),
        ])
    };
    let msg = framed("retrans-1", offer("call-r"));
    let first = ng.raw(&msg).expect("first reply");
    let second = ng.raw(&msg).expect("second reply");
    assert!(
        first.starts_with(b"retrans-1 d"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    assert_eq!(first, second, "a retransmission gets the same bytes");
    assert_eq!(ng.list_calls().expect("list"), vec!["call-r".to_owned()]);
    // Same cookie, different body (a client bug or a replay): still the cached reply, nothing executed.
    let third = ng
        .raw(&framed("retrans-1", offer("call-other")))
        .expect("third reply");
    assert_eq!(first, third);
    assert_eq!(ng.list_calls().expect("list"), vec!["call-r".to_owned()]);
    // One offer's worth of ports: an RTP/RTCP pair for each of the two legs, no more.
    let q = Value::Dict(expect_ok(ng.query("call-r"), "query"));
    let local: Vec<u16> = stream_stats(&q).into_iter().map(|(p, _)| p).collect();
    assert_eq!(local.len(), 4, "relay ports of the call: {local:?}");
}

#[test]
fn max_sessions_refuses_the_second_call() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["--max-sessions=1"]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let r = ng
        .offer("second", "tag-x", &sdp_offer(LO, ports.port(8)), &[])
        .expect("offer reply");
    assert_eq!(get_str(&r, "result"), Some("error"));
    assert_eq!(
        get_str(&r, "error-reason"),
        Some("Parallel session limit reached")
    );
    assert_eq!(ng.list_calls().expect("list"), vec![c.id.clone()]);
    flows(&c, 0);
    // Once the first call is gone there is room again.
    expect_ok(ng.delete(&c.id, "tag-a"), "delete");
    expect_ok(
        ng.offer("third", "tag-y", &sdp_offer(LO, ports.port(8)), &[]),
        "offer after delete",
    );
}

#[test]
fn running_out_of_ports_fails_the_new_call_only() {
    let ports = PortBlock::acquire();
    let (min, _) = ports.media_range();
    let (lo, hi) = (min.to_string(), (min + 3).to_string());
    // Four ports: one RTP/RTCP pair per side of a single call.
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["-m", &lo, "-M", &hi]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    for p in [c.a_to.port(), c.b_to.port()] {
        assert!((min..=min + 3).contains(&p), "port {p} outside {lo}-{hi}");
    }
    let r = ng
        .offer("no-room", "tag-x", &sdp_offer(LO, ports.port(8)), &[])
        .expect("offer reply");
    assert_eq!(get_str(&r, "result"), Some("error"), "{r:?}");
    assert_eq!(get_str(&r, "error-reason"), Some("Ran out of ports"));
    flows(&c, 0);
    c.b.rtp.send_to(&rtp(0xb, 0), c.b_to).expect("send");
    assert_eq!(c.a.rtp.recv_timeout(WAIT), Some((rtp(0xb, 0), c.a_to)));
    let q = c.query(&ng);
    assert_eq!(total(&q, "RTP", "packets"), 2);
}

#[test]
fn a_failed_offer_releases_the_ports_it_took() {
    let ports = PortBlock::acquire();
    let (min, _) = ports.media_range();
    let (lo, hi) = (min.to_string(), (min + 5).to_string());
    // Six ports: one call takes four, the next offer finds two and must give them back when it fails.
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["-m", &lo, "-M", &hi]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let taken = [
        c.a_to.port(),
        c.a_to.port() + 1,
        c.b_to.port(),
        c.b_to.port() + 1,
    ];
    let r = ng
        .offer("no-room", "tag-x", &sdp_offer(LO, ports.port(8)), &[])
        .expect("offer reply");
    assert_eq!(
        get_str(&r, "error-reason"),
        Some("Ran out of ports"),
        "{r:?}"
    );
    assert_eq!(
        ng.list_calls().expect("list"),
        vec![c.id.clone()],
        "the failed offer left its call behind"
    );
    for port in (min..=min + 5).filter(|p| !taken.contains(p)) {
        let at = SocketAddr::from((LO, port));
        assert!(
            wait_until(WAIT, || UdpSocket::bind(at).is_ok()),
            "port {port} still held after the offer that took it failed"
        );
    }
}
