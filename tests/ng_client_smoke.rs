//! Proves the shared test helpers (tests/common) against Debian's rtpengine, the reference relay: NG `ping`,
//! `offer`, `answer`, RTP both ways through the relay (byte-identical, from the relay's advertised ports),
//! `query` counters, `list`, `delete`, and a malformed datagram getting no reply. Also checks the standalone
//! bencode codec, the RTP builder and the SDP readers on fixed inputs. Under `RTPRELAY_E2E=1` a missing
//! `rtpengine` is a failure; otherwise the relay test skips.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::bencode::{self, Value};
use common::*;

#[test]
fn bencode_round_trip_and_errors() {
    let d = dict([
        ("command", "offer".into()),
        ("flags", str_list(&["trust-address", "SIP-source-address"])),
        ("n", Value::Int(-42)),
        (
            "nested",
            Value::Dict(dict([("z", "1".into()), ("a", Value::List(vec![]))])),
        ),
    ]);
    let enc = bencode::encode(&Value::Dict(d.clone()));
    assert_eq!(
        enc,
        b"d7:command5:offer5:flagsl13:trust-address18:SIP-source-addresse1:ni-42e6:nestedd1:ale1:z1:1ee".to_vec()
    );
    assert_eq!(bencode::decode(&enc), Ok(Value::Dict(d)));
    // Unsorted keys are accepted (clients are lenient).
    let unsorted = bencode::decode(b"d1:bi1e1:ai2ee").expect("unsorted dict");
    assert_eq!(unsorted.path(&["a"]).and_then(Value::as_int), Some(2));
    for bad in [
        &b"d1:a"[..],
        b"i01e",
        b"i-0e",
        b"ie",
        b"5:abc",
        b"di1ei2ee",
        b"le extra",
        b"x",
        b"",
    ] {
        assert!(
            bencode::decode(bad).is_err(),
            "{:?} should not decode",
            String::from_utf8_lossy(bad)
        );
    }
    let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
    assert!(bencode::decode(&deep).is_err(), "nesting is bounded");
}

#[test]
fn rtp_and_sdp_helpers() {
    let p = RtpPacket::pcmu(0xdead_beef, 3);
    let bytes = p.to_bytes();
    assert_eq!(bytes.len(), 172);
    assert_eq!(
        &bytes[..12],
        &[0x80, 0x00, 0x03, 0xeb, 0, 0, 0x21, 0x20, 0xde, 0xad, 0xbe, 0xef]
    );
    assert_eq!(RtpPacket::parse(&bytes), Some(p));
    assert_eq!(RtpPacket::parse(&bytes[..11]), None);

    let offer = sdp_offer(Ipv4Addr::new(127, 0, 0, 9), 4000);
    assert!(offer.ends_with("a=sendrecv\r\n"));
    assert_eq!(
        sdp_media_endpoint(&offer),
        Some("127.0.0.9:4000".parse().expect("addr"))
    );
    let media_level =
        "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.2\r\n\
                       m=audio 6000 RTP/AVP 0\r\nc=IN IP4 10.0.0.3\r\nm=audio 7000 RTP/AVP 0\r\n";
    assert_eq!(
        sdp_media_endpoint(media_level),
        Some("10.0.0.3:6000".parse().expect("addr"))
    );
}

#[test]
fn helpers_drive_rtpengine() {
    if !require_or_skip("rtpengine") {
        return;
    }
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtpengine, &ports, &[]);
    let ng = relay.client();
    let pong = expect_ok(ng.ping(), "ping");
    assert_eq!(get_str(&pong, "result"), Some("pong"));

    let lo = Ipv4Addr::LOCALHOST;
    let a = MediaEndpoint::bind(SocketAddr::from((lo, ports.port(0)))).expect("bind A");
    let b = MediaEndpoint::bind(SocketAddr::from((lo, ports.port(2)))).expect("bind B");
    let (min, max) = ports.media_range();
    let in_range = |addr: SocketAddr| addr.ip() == lo && (min..=max).contains(&addr.port());

    let call = format!("smoke-{}", ng::random_cookie());
    let offer = expect_ok(
        ng.offer(&call, "tag-a", &sdp_offer(lo, ports.port(0)), &[]),
        "offer",
    );
    let to_b_side = sdp_media_endpoint(get_str(&offer, "sdp").expect("offer reply has sdp"))
        .expect("offer SDP endpoint");
    assert!(
        in_range(to_b_side),
        "offer port {to_b_side} outside relay range {min}-{max}"
    );

    let answer = expect_ok(
        ng.answer(&call, "tag-a", "tag-b", &sdp_answer(lo, ports.port(2)), &[]),
        "answer",
    );
    let to_a_side = sdp_media_endpoint(get_str(&answer, "sdp").expect("answer reply has sdp"))
        .expect("answer SDP endpoint");
    assert!(
        in_range(to_a_side),
        "answer port {to_a_side} outside relay range"
    );
    assert_ne!(to_a_side, to_b_side);

    // A -> relay -> B, then B -> relay -> A; byte-identical, sent from the port each side sends to.
    for (from, to, relay_port, ssrc) in [
        (&a, &b, to_a_side, 0x1111_1111),
        (&b, &a, to_b_side, 0x2222_2222),
    ] {
        let sent = from
            .send_rtp(relay_port, ssrc, 10, Duration::from_millis(2))
            .expect("send RTP");
        let got = to.collect(sent.len(), Duration::from_secs(2));
        assert_eq!(
            got.len(),
            sent.len(),
            "packets relayed towards {}",
            to.local_addr()
        );
        let other_side = if relay_port == to_a_side {
            to_b_side
        } else {
            to_a_side
        };
        for ((data, src), orig) in got.iter().zip(&sent) {
            assert_eq!(data, orig, "payload changed");
            assert_eq!(
                *src, other_side,
                "relay sends from the port it advertised to that side"
            );
        }
    }

    let query = expect_ok(ng.query(&call), "query");
    let rtp_packets = Value::Dict(query)
        .path(&["totals", "RTP", "packets"])
        .and_then(Value::as_int);
    assert_eq!(rtp_packets, Some(20), "query totals count both directions");

    assert_eq!(ng.list_calls().expect("list"), vec![call.clone()]);
    expect_ok(ng.delete(&call, "tag-a"), "delete");
    assert_eq!(
        ng.list_calls().expect("list"),
        Vec::<String>::new(),
        "no call left after delete"
    );

    let unknown = ng.query("no-such-call").expect("query reply");
    assert_eq!(get_str(&unknown, "result"), Some("error"));
    assert_eq!(
        ng.raw(b"no-cookie-here"),
        None,
        "a datagram without a cookie gets no reply"
    );
}
