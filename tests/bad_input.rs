//! Malformed input through the real binary: each kind of bad NG message gets rtpengine's error reply (or
//! none, without a cookie), an old-style hold offer works, and a flood of garbage on the control port and on
//! a call's media ports, sent while the call streams both ways, costs the call no packet.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::bencode::{self, Value};
use common::call::*;
use common::*;

/// Sends `msg` raw and decodes the reply after `cookie `.
fn reply_to(ng: &NgClient, cookie: &str, msg: &[u8]) -> common::Dict {
    let raw = ng
        .raw(msg)
        .unwrap_or_else(|| panic!("no reply to {:?}", String::from_utf8_lossy(msg)));
    let body = raw
        .strip_prefix(format!("{cookie} ").as_bytes())
        .unwrap_or_else(|| {
            panic!(
                "reply without our cookie: {}",
                String::from_utf8_lossy(&raw)
            )
        });
    match bencode::decode(body) {
        Ok(Value::Dict(d)) => d,
        other => panic!("reply is not a dict: {other:?}"),
    }
}

fn framed(cookie: &str, d: common::Dict) -> Vec<u8> {
    let mut msg = format!("{cookie} ").into_bytes();
    msg.extend(bencode::encode(&Value::Dict(d)));
    msg
}

fn error_reason(d: &common::Dict) -> Option<&str> {
    assert_eq!(get_str(d, "result"), Some("error"), "{d:?}");
    get_str(d, "error-reason")
}

#[test]
fn malformed_ng_messages_get_rtpengines_errors() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let mut ng = relay.client();
    ng.timeout = Duration::from_millis(500);

    assert_eq!(
        ng.raw(b"no-cookie-here"),
        None,
        "a message without a cookie gets no reply"
    );

    let garbage = reply_to(&ng, "g1", b"g1 d7:command4:pi");
    assert!(
        error_reason(&garbage).is_some_and(|r| !r.is_empty()),
        "garbage bencode: {garbage:?}"
    );
    let not_dict = reply_to(&ng, "g2", b"g2 l4:pinge");
    assert!(error_reason(&not_dict).is_some_and(|r| !r.is_empty()));

    let cases: [(&str, common::Dict, &str); 5] = [
        (
            "u1",
            dict([("command", "frobnicate".into())]),
            "Unrecognized command",
        ),
        (
            "u2",
            dict([
                ("command", "offer".into()),
                ("from-tag", "a".into()),
                ("sdp", sdp_offer(LO, 4000).into()),
            ]),
            "No call-id in message",
        ),
        (
            "u3",
            dict([
                ("command", "offer".into()),
                ("call-id", "c".into()),
                ("from-tag", "a".into()),
            ]),
            "No SDP body in message",
        ),
        (
            "u4",
            dict([
                ("command", "offer".into()),
                ("call-id", "c".into()),
                ("from-tag", "a".into()),
                ("sdp", "this is not\r\nan SDP body\r\n".into()),
            ]),
            "Failed to parse SDP",
        ),
        (
            "u5",
            dict([("call-id", "c".into())]),
            "Dictionary contains no key \"command\"",
        ),
    ];
    for (cookie, d, want) in cases {
        let r = reply_to(&ng, cookie, &framed(cookie, d));
        assert_eq!(error_reason(&r), Some(want), "case {cookie}");
    }
    assert!(
        ng.list_calls().expect("list").is_empty(),
        "a failed offer left a call behind"
    );
    expect_ok(ng.ping(), "ping after the bad messages");
}

#[test]
fn old_style_hold_offer_gives_sendonly() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    // RFC 2543 hold: null connection address, no direction attribute.
    let hold = sdp_offer(Ipv4Addr::UNSPECIFIED, 4000).replace("a=sendrecv\r\n", "");
    let r = expect_ok(ng.offer("hold", "tag-a", &hold, &[]), "hold offer");
    let sdp = get_str(&r, "sdp").expect("sdp");
    assert!(
        sdp.contains("c=IN IP4 0.0.0.0\r\n"),
        "null address kept:\n{sdp}"
    );
    assert!(
        sdp.contains("a=sendonly\r\n"),
        "hold becomes sendonly:\n{sdp}"
    );
    assert!(!sdp.contains("a=sendrecv"), "{sdp}");
}

/// A small deterministic PRNG (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Malformed NG datagram number `i`: random bytes, truncated or hostile bencode, huge or deep values.
fn bad_ng(rng: &mut Rng, i: usize) -> Vec<u8> {
    let offer = framed(
        &format!("f{i}"),
        dict([
            ("command", "offer".into()),
            ("call-id", format!("flood-{i}").into()),
            ("from-tag", "x".into()),
            ("sdp", sdp_offer(LO, 4000).into()),
        ]),
    );
    match i % 8 {
        0 => {
            let n = rng.below(300);
            rng.bytes(n)
        }
        1 => {
            let cut = 1 + rng.below(offer.len() - 1);
            offer[..cut].to_vec()
        }
        2 => format!("f{i} d7:command999999999999:offer").into_bytes(),
        3 => [format!("f{i} ").as_bytes(), &[b'l'; 5000], &[b'e'; 5000]].concat(),
        4 => [format!("f{i} ").as_bytes(), &rng.bytes(60_000)].concat(),
        5 => format!("f{i} d7:commandi99999999999999999999999ee").into_bytes(),
        6 => {
            let big = "x".repeat(50_000);
            framed(&format!("f{i}"), dict([("command", big.as_str().into())]))
        }
        _ => {
            let mut m = offer;
            let at = rng.below(m.len());
            m[at] = rng.next() as u8;
            // Never a valid offer by accident: the offer's SDP must not create calls.
            m.truncate(m.len() - 1);
            m
        }
    }
}

/// Garbage datagram `i` for a media port: empty, runts, non-RTP, or RTP-looking from the wrong source.
fn bad_media(rng: &mut Rng, i: usize) -> Vec<u8> {
    match i % 5 {
        0 => Vec::new(),
        1 => {
            let n = 1 + rng.below(11);
            rng.bytes(n)
        }
        2 => {
            let n = 12 + rng.below(1400);
            rng.bytes(n)
        }
        3 => RtpPacket::pcmu(0x6666, i as u16).to_bytes(),
        _ => rtcp_sr(0x6666, i as u32),
    }
}

/// Media packets each way in the flood test: 4 s at 50 packets/s.
const PACKETS: u16 = 200;

#[test]
fn garbage_flood_costs_a_streaming_call_nothing() {
    const NG_GARBAGE: usize = 5000;
    const MEDIA_GARBAGE: usize = 3000;
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let targets = [c.a_to, c.b_to, rtcp_port(c.a_to), rtcp_port(c.b_to)];
    // RTCP from both sides first, so that the RTCP ports have learned their peers too and drop strangers.
    for (from, to, at) in [(&c.a, c.a_to, &c.b), (&c.b, c.b_to, &c.a)] {
        from.rtcp
            .send_to(&rtcp_rr(1), rtcp_port(to))
            .expect("send RTCP");
        assert!(
            at.rtcp.recv_timeout(Duration::from_secs(2)).is_some(),
            "RTCP relayed"
        );
    }
    let started = Instant::now();

    let (a_got, b_got, pings, media_garbage) = std::thread::scope(|s| {
        let a_rx = s.spawn(|| recv_seqs(&c.a.rtp, 0xb));
        let b_rx = s.spawn(|| recv_seqs(&c.b.rtp, 0xa));
        let a_tx = s.spawn(|| send_stream(&c.a.rtp, c.a_to, 0xa));
        let b_tx = s.spawn(|| send_stream(&c.b.rtp, c.b_to, 0xb));
        // Garbage starts once both sides have latched (their first packets went out from the SDP address).
        std::thread::sleep(Duration::from_millis(200));
        s.spawn(|| {
            let sock = UdpSocket::bind((LO, 0)).expect("bind NG flooder");
            let mut rng = Rng(0x5eed_0001);
            for i in 0..NG_GARBAGE {
                let _ = sock.send_to(&bad_ng(&mut rng, i), ng.addr());
                if i % 8 == 7 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        let media_flood = s.spawn(|| {
            let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 66), 0)).expect("bind flooder");
            let mut rng = Rng(0x5eed_0002);
            let mut sent = 0usize;
            for i in 0..MEDIA_GARBAGE {
                if sock
                    .send_to(&bad_media(&mut rng, i), targets[i % 4])
                    .is_ok()
                {
                    sent += 1;
                }
                if i % 4 == 3 {
                    std::thread::sleep(Duration::from_millis(4));
                }
            }
            sent
        });
        // The control port keeps answering while flooded.
        let mut pings = 0;
        while !a_tx.is_finished() || !b_tx.is_finished() {
            let pong = ng.ping().expect("ping during the flood");
            assert_eq!(get_str(&pong, "result"), Some("pong"));
            pings += 1;
            std::thread::sleep(Duration::from_millis(400));
        }
        (
            a_rx.join().expect("A receiver"),
            b_rx.join().expect("B receiver"),
            pings,
            media_flood.join().expect("media flooder"),
        )
    });
    let all: BTreeSet<u16> = (0..PACKETS).map(|n| 1000 + n).collect();
    let missing = |got: &BTreeSet<u16>| all.difference(got).copied().collect::<Vec<_>>();
    assert!(
        missing(&b_got).is_empty(),
        "A->B lost seqs {:?}",
        missing(&b_got)
    );
    assert!(
        missing(&a_got).is_empty(),
        "B->A lost seqs {:?}",
        missing(&a_got)
    );
    assert!(pings >= 5, "only {pings} pings in {:?}", started.elapsed());
    expect_ok(ng.ping(), "ping after the flood");
    assert!(
        ng.list_calls().expect("list") == vec![c.id.clone()],
        "the flood created or removed calls"
    );

    let q = c.query(&ng);
    let errors: i64 = stream_stats(&q)
        .iter()
        .filter_map(|(_, st)| st.get(b"errors".as_slice()).and_then(Value::as_int))
        .sum();
    let sent = media_garbage as i64;
    eprintln!("{errors} errors counted for {sent} garbage datagrams, {pings} pings answered");
    assert!(
        errors >= sent * 9 / 10 && errors <= sent,
        "{errors} errors counted for {sent} garbage datagrams"
    );
    assert_eq!(
        total(&q, "RTP", "packets"),
        2 * i64::from(PACKETS),
        "media counted"
    );
}

/// Sends `PACKETS` RTP packets of `ssrc` at 50 packets/s.
fn send_stream(ep: &MediaEndpoint, to: SocketAddr, ssrc: u32) {
    for n in 0..PACKETS {
        ep.send_to(&RtpPacket::pcmu(ssrc, n).to_bytes(), to)
            .expect("send media");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sequence numbers of stream `ssrc` that arrive within the stream's time and some slack.
fn recv_seqs(ep: &MediaEndpoint, ssrc: u32) -> BTreeSet<u16> {
    recv_stream(ep, ssrc, usize::from(PACKETS), Duration::from_secs(8))
        .iter()
        .filter_map(|(d, _)| RtpPacket::parse(d))
        .map(|p| p.seq)
        .collect()
}

fn rtcp_port(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port() + 1)
}
