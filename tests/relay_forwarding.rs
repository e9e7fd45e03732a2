//! Media forwarding through the real rtprelay binary over loopback: RTP both ways byte-identical (sequence
//! numbers, timestamps, SSRC and payload untouched, duplicates and gaps kept), each packet leaving from the
//! relay port the receiving side was given; RTCP on port+1, or on the RTP ports with rtcp-mux; `query`
//! counters; a re-offer moving one side's media port; media forwarded to the SDP address before that side
//! sent anything.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::call::*;
use common::*;

const WAIT: Duration = Duration::from_secs(2);

/// The packets of a stream with a duplicate (seq 3 twice) and a gap (seq 6 and 7 never sent).
fn stream_with_dup_and_gap(ssrc: u32) -> Vec<Vec<u8>> {
    [0u16, 1, 2, 3, 3, 4, 5, 8, 9, 10]
        .iter()
        .map(|&n| RtpPacket::pcmu(ssrc, n).to_bytes())
        .collect()
}

/// `relay_and_expect` with this file's wait.
fn send_and_expect(
    from: &MediaEndpoint,
    to: SocketAddr,
    pkts: &[Vec<u8>],
    at: &MediaEndpoint,
    src: SocketAddr,
    what: &str,
) {
    relay_and_expect(from, to, pkts, at, src, WAIT, what);
}

#[test]
fn rtp_both_ways_byte_identical_from_the_advertised_ports() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let (min, max) = ports.media_range();
    for p in [c.a_to, c.b_to] {
        assert!((min..=max).contains(&p.port()), "{p} outside {min}-{max}");
        assert_eq!(p.port() % 2, 0, "RTP port {p} is even");
    }
    assert_ne!(c.a_to, c.b_to);

    let a_stream = stream_with_dup_and_gap(0x0a0a_0a0a);
    send_and_expect(&c.a.rtp, c.a_to, &a_stream, &c.b.rtp, c.b_to, "A->B");
    let b_stream = stream_with_dup_and_gap(0x0b0b_0b0b);
    send_and_expect(&c.b.rtp, c.b_to, &b_stream, &c.a.rtp, c.a_to, "B->A");
    // A packet whose payload type and marker differ (DTMF event) passes unchanged too.
    let mut dtmf = RtpPacket::pcmu(0x0a0a_0a0a, 11);
    dtmf.payload_type = 101;
    dtmf.marker = true;
    dtmf.payload = vec![1, 0x8a, 0, 160];
    send_and_expect(
        &c.a.rtp,
        c.a_to,
        &[dtmf.to_bytes()],
        &c.b.rtp,
        c.b_to,
        "DTMF",
    );
}

#[test]
fn media_reaches_the_sdp_address_before_that_side_sent() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let c = Call::setup(&relay.client(), &ports, &[]);
    // B speaks first: A has sent nothing, so only its SDP says where it is.
    let b_first = stream_with_dup_and_gap(0xb1);
    send_and_expect(&c.b.rtp, c.b_to, &b_first, &c.a.rtp, c.a_to, "B->A first");
    // Its RTCP goes to the SDP's RTP port + 1 likewise.
    let rr = rtcp_rr(0xb1);
    c.b.rtcp.send_to(&rr, rtcp_of(c.b_to)).expect("send RTCP");
    let got =
        c.a.rtcp
            .recv_timeout(WAIT)
            .expect("RTCP B->A before A sent");
    assert_eq!(got, (rr, rtcp_of(c.a_to)));
}

/// The RTCP port that goes with an RTP address (port + 1).
fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port() + 1)
}

#[test]
fn rtcp_both_ways_on_port_plus_one() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let c = Call::setup(&relay.client(), &ports, &[]);
    assert!(
        c.offer_sdp
            .contains(&format!("a=rtcp:{}", c.b_to.port() + 1)),
        "offer SDP names RTCP port+1:\n{}",
        c.offer_sdp
    );
    let (a_rtcp, b_rtcp) = (rtcp_of(c.a_to), rtcp_of(c.b_to));
    let a_reports: Vec<Vec<u8>> = (1..=3).map(|n| rtcp_sr(0xa, n)).collect();
    send_and_expect(
        &c.a.rtcp,
        a_rtcp,
        &a_reports,
        &c.b.rtcp,
        b_rtcp,
        "RTCP A->B",
    );
    let b_reports: Vec<Vec<u8>> = (1..=3).map(|n| rtcp_sr(0xb, n)).collect();
    send_and_expect(
        &c.b.rtcp,
        b_rtcp,
        &b_reports,
        &c.a.rtcp,
        a_rtcp,
        "RTCP B->A",
    );
    // RTP still goes to the RTP sockets only.
    let rtp = RtpPacket::pcmu(0xa, 0).to_bytes();
    send_and_expect(&c.a.rtp, c.a_to, &[rtp], &c.b.rtp, c.b_to, "RTP after RTCP");
    assert_silent(&c.b.rtcp, Duration::from_millis(100), "RTP leaked to RTCP");
}

#[test]
fn rtcp_mux_call_carries_rtcp_on_the_rtp_ports() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup_sdp(
        &ng,
        &ports,
        &[],
        |a, p| with_rtcp_mux(sdp_offer(a, p)),
        |a, p| with_rtcp_mux(sdp_answer(a, p)),
    );
    assert!(
        c.offer_sdp.contains("a=rtcp-mux"),
        "rtcp-mux offered:\n{}",
        c.offer_sdp
    );
    // Once the answer accepts it, the relay's a=rtcp names the RTP port itself.
    assert!(
        c.answer_sdp.contains("a=rtcp-mux"),
        "rtcp-mux kept:\n{}",
        c.answer_sdp
    );
    let a_rtcp_line = format!("a=rtcp:{}\r\n", c.a_to.port());
    assert!(
        c.answer_sdp.contains(&a_rtcp_line),
        "a=rtcp names the RTP port:\n{}",
        c.answer_sdp
    );
    // RTP and RTCP interleaved on one 5-tuple, both ways.
    let a_mix = vec![
        RtpPacket::pcmu(0xa, 0).to_bytes(),
        rtcp_sr(0xa, 1),
        RtpPacket::pcmu(0xa, 1).to_bytes(),
        rtcp_rr(0xa),
    ];
    send_and_expect(&c.a.rtp, c.a_to, &a_mix, &c.b.rtp, c.b_to, "mux A->B");
    let b_mix = vec![
        rtcp_sr(0xb, 1),
        RtpPacket::pcmu(0xb, 0).to_bytes(),
        rtcp_rr(0xb),
    ];
    send_and_expect(&c.b.rtp, c.b_to, &b_mix, &c.a.rtp, c.a_to, "mux B->A");
    assert_silent(
        &c.a.rtcp,
        Duration::from_millis(100),
        "nothing on the RTCP socket",
    );
    assert_silent(
        &c.b.rtcp,
        Duration::from_millis(50),
        "nothing on the RTCP socket",
    );
    // Muxed RTCP is counted as RTCP, not RTP.
    let q = c.query(&ng);
    assert_eq!(total(&q, "RTP", "packets"), 3, "{q:?}");
    assert_eq!(total(&q, "RTCP", "packets"), 4);
}

#[test]
fn query_counts_what_was_sent() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let q0 = c.query(&ng);
    assert_eq!(total(&q0, "RTP", "packets"), 0, "nothing yet: {q0:?}");

    let (a_n, b_n, rtcp_n) = (12usize, 7usize, 3usize);
    let a_pkts: Vec<Vec<u8>> = (0..a_n as u16)
        .map(|n| RtpPacket::pcmu(0xa, n).to_bytes())
        .collect();
    let b_pkts: Vec<Vec<u8>> = (0..b_n as u16)
        .map(|n| RtpPacket::pcmu(0xb, n).to_bytes())
        .collect();
    let rtcp: Vec<Vec<u8>> = (1..=rtcp_n as u32).map(|n| rtcp_sr(0xa, n)).collect();
    send_and_expect(&c.a.rtp, c.a_to, &a_pkts, &c.b.rtp, c.b_to, "A->B");
    send_and_expect(&c.b.rtp, c.b_to, &b_pkts, &c.a.rtp, c.a_to, "B->A");
    send_and_expect(
        &c.a.rtcp,
        rtcp_of(c.a_to),
        &rtcp,
        &c.b.rtcp,
        rtcp_of(c.b_to),
        "RTCP",
    );

    let q = c.query(&ng);
    let rtp_len = a_pkts[0].len() as i64;
    assert_eq!(total(&q, "RTP", "packets"), (a_n + b_n) as i64, "{q:?}");
    assert_eq!(total(&q, "RTP", "bytes"), (a_n + b_n) as i64 * rtp_len);
    assert_eq!(total(&q, "RTP", "errors"), 0);
    assert_eq!(total(&q, "RTCP", "packets"), rtcp_n as i64);
    assert_eq!(total(&q, "RTCP", "bytes"), (rtcp_n * rtcp[0].len()) as i64);
    // Per stream: counted on the relay port that received them.
    assert_eq!(port_stat(&q, c.a_to.port(), "packets"), a_n as i64);
    assert_eq!(port_stat(&q, c.a_to.port(), "bytes"), a_n as i64 * rtp_len);
    assert_eq!(port_stat(&q, c.b_to.port(), "packets"), b_n as i64);
    assert_eq!(port_stat(&q, c.a_to.port() + 1, "packets"), rtcp_n as i64);
    assert_eq!(port_stat(&q, c.b_to.port() + 1, "packets"), 0);
}

#[test]
fn reoffer_to_a_new_port_redirects_media() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let first = vec![RtpPacket::pcmu(0xa, 0).to_bytes()];
    send_and_expect(&c.a.rtp, c.a_to, &first, &c.b.rtp, c.b_to, "A->B before");
    let back = vec![RtpPacket::pcmu(0xb, 0).to_bytes()];
    send_and_expect(&c.b.rtp, c.b_to, &back, &c.a.rtp, c.a_to, "B->A before");

    // re-INVITE: A moves its media to spare port 4 and B answers again.
    let a2 = Party::bind(&ports, 4, "tag-a");
    let reoffer = expect_ok(
        ng.offer(&c.id, "tag-a", &sdp_offer(LO, a2.port()), &[]),
        "re-offer",
    );
    let b_to2 = sdp_media_endpoint(get_str(&reoffer, "sdp").expect("sdp")).expect("endpoint");
    // As rtpengine does: A moved, so B sends to a new relay port (the one for A's new
    // endpoint); a re-offer that does not move keeps its port (see reoffer_keeps_ports).
    assert_ne!(b_to2, c.b_to, "A moved: B gets a new relay port");
    let reanswer = expect_ok(
        ng.answer(&c.id, "tag-a", "tag-b", &sdp_answer(LO, c.b.port()), &[]),
        "re-answer",
    );
    let a_to2 = sdp_media_endpoint(get_str(&reanswer, "sdp").expect("sdp")).expect("endpoint");
    assert_eq!(a_to2, c.a_to, "the answer keeps its relay port");

    let after: Vec<Vec<u8>> = (1..6).map(|n| RtpPacket::pcmu(0xb, n).to_bytes()).collect();
    send_and_expect(&c.b.rtp, b_to2, &after, &a2.rtp, c.a_to, "B->A' after");
    assert_silent(
        &c.a.rtp,
        Duration::from_millis(100),
        "old A port still gets media",
    );
    let a2_pkts: Vec<Vec<u8>> = (1..4).map(|n| RtpPacket::pcmu(0xa, n).to_bytes()).collect();
    send_and_expect(&a2.rtp, c.a_to, &a2_pkts, &c.b.rtp, b_to2, "A'->B after");
}

#[test]
fn reoffer_keeps_ports() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let reoffer = expect_ok(
        ng.offer(&c.id, "tag-a", &sdp_offer(LO, c.a.port()), &[]),
        "re-offer",
    );
    let b_to2 = sdp_media_endpoint(get_str(&reoffer, "sdp").expect("sdp")).expect("endpoint");
    assert_eq!(b_to2, c.b_to, "same SDP endpoint: same relay port");
    let reanswer = expect_ok(
        ng.answer(&c.id, "tag-a", "tag-b", &sdp_answer(LO, c.b.port()), &[]),
        "re-answer",
    );
    let a_to2 = sdp_media_endpoint(get_str(&reanswer, "sdp").expect("sdp")).expect("endpoint");
    assert_eq!(a_to2, c.a_to);
    let pkts: Vec<Vec<u8>> = (0..3).map(|n| RtpPacket::pcmu(0xa, n).to_bytes()).collect();
    send_and_expect(
        &c.a.rtp,
        c.a_to,
        &pkts,
        &c.b.rtp,
        c.b_to,
        "A->B after re-INVITE",
    );
}

/// The relay answers `answer` only once the media path it describes is live: a packet sent the moment the
/// reply arrives is forwarded. Repeated over several calls, since a lost race shows only sometimes.
#[test]
fn media_sent_the_moment_the_answer_returns_is_forwarded() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let mut lost = Vec::new();
    for i in 0..20u16 {
        let c = Call::setup(&ng, &ports, &[]);
        c.a.rtp
            .send_to(&RtpPacket::pcmu(0xa, i).to_bytes(), c.a_to)
            .expect("send A");
        c.b.rtp
            .send_to(&RtpPacket::pcmu(0xb, i).to_bytes(), c.b_to)
            .expect("send B");
        if c.b.rtp.recv_timeout(Duration::from_secs(1)).is_none() {
            lost.push(format!("call {i}: A->B"));
        }
        if c.a.rtp.recv_timeout(Duration::from_secs(1)).is_none() {
            lost.push(format!("call {i}: B->A"));
        }
        expect_ok(ng.delete(&c.id, "tag-a"), "delete");
    }
    assert!(lost.is_empty(), "first packets dropped: {lost:?}");
}

#[test]
fn callee_reinvite_with_swapped_tags_moves_the_callees_media() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    // B sends the re-INVITE: its tag is now the from-tag, and it moves its media to spare port 6.
    let b2 = Party::bind(&ports, 6, "tag-b");
    let reoffer = expect_ok(
        ng.request(dict([
            ("command", "offer".into()),
            ("call-id", c.id.as_str().into()),
            ("from-tag", "tag-b".into()),
            ("to-tag", "tag-a".into()),
            ("sdp", sdp_offer(LO, b2.port()).into()),
        ])),
        "callee's re-offer",
    );
    let a_to2 = sdp_media_endpoint(get_str(&reoffer, "sdp").expect("sdp")).expect("endpoint");
    assert_ne!(
        a_to2, c.a_to,
        "B moved: A gets a new relay port, as rtpengine does"
    );
    let reanswer = expect_ok(
        ng.answer(&c.id, "tag-b", "tag-a", &sdp_answer(LO, c.a.port()), &[]),
        "caller's answer",
    );
    let b_to2 = sdp_media_endpoint(get_str(&reanswer, "sdp").expect("sdp")).expect("endpoint");
    assert_eq!(b_to2, c.b_to, "B keeps sending to the same relay port");
    assert_eq!(ng.list_calls().expect("list"), vec![c.id.clone()]);

    let to_b: Vec<Vec<u8>> = (0..3).map(|n| RtpPacket::pcmu(0xa, n).to_bytes()).collect();
    send_and_expect(&c.a.rtp, a_to2, &to_b, &b2.rtp, c.b_to, "A->B'");
    assert_silent(
        &c.b.rtp,
        Duration::from_millis(100),
        "old B port still gets media",
    );
    let to_a: Vec<Vec<u8>> = (0..3).map(|n| RtpPacket::pcmu(0xb, n).to_bytes()).collect();
    send_and_expect(&b2.rtp, c.b_to, &to_a, &c.a.rtp, a_to2, "B'->A");
}
