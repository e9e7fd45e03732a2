//! Endpoint learning ("latching") through the real binary. The default policy is `heuristic` learning with
//! strict source: a source that matches the SDP address:port exactly wins at once, and from then on packets
//! from any other source are dropped and counted as errors. A peer behind NAT (another port than its SDP
//! says) is learned, and media goes back to where it really sends from. The `off`, `immediate` and
//! `delayed` modes and the `asymmetric` flag change where media goes; each test shows one difference.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::call::*;
use common::*;

const WAIT: Duration = Duration::from_secs(2);
const QUIET: Duration = Duration::from_millis(150);

/// A socket on another loopback address, as a stranger on the network would send from.
fn stranger() -> MediaEndpoint {
    MediaEndpoint::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 77), 0))).expect("bind stranger")
}

fn rtp(ssrc: u32, n: u16) -> Vec<u8> {
    RtpPacket::pcmu(ssrc, n).to_bytes()
}

/// Sends one packet and expects exactly it on `at`, from `src`.
fn relayed(from: &MediaEndpoint, to: SocketAddr, pkt: &[u8], at: &MediaEndpoint, src: SocketAddr) {
    from.send_to(pkt, to).expect("send");
    let got = at.recv_timeout(WAIT);
    assert_eq!(
        got,
        Some((pkt.to_vec(), src)),
        "packet to {to} should reach {}",
        at.local_addr()
    );
}

#[test]
fn injector_is_dropped_once_the_real_peer_sent_from_its_sdp_address() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let inj = stranger();
    const INJ: u32 = 0x6666_6666;
    const A: u32 = 0xaaaa_aaaa;

    // Before A sent anything, the stranger is dropped: it is neither A's SDP address nor its SIP
    // source (rtpengine's strict source drops it too).
    inj.send_to(&rtp(INJ, 0), c.a_to).expect("send injector");
    assert_silent(&c.b.rtp, QUIET, "the stranger's first packet");

    // A sends from its SDP address, with the injector interleaved: every A packet gets through, no
    // injected one does.
    const N: u16 = 30;
    let mut injected = 1;
    for n in 0..N {
        c.a.rtp.send_to(&rtp(A, n), c.a_to).expect("send A");
        inj.send_to(&rtp(INJ, n + 1), c.a_to)
            .expect("send injector");
        injected += 1;
    }
    let got = c.b.rtp.collect(usize::from(N), WAIT);
    let seqs: Vec<u16> = got
        .iter()
        .filter_map(|(d, _)| RtpPacket::parse(d))
        .inspect(|p| assert_eq!(p.ssrc, A, "an injected packet reached B"))
        .map(|p| p.seq)
        .collect();
    let want: Vec<u16> = (0..N).map(|n| 1000 + n).collect();
    assert_eq!(seqs, want, "A's stream arrives whole and in order");
    assert_silent(&c.b.rtp, QUIET, "injected packets after A latched");

    // B's media goes to A, never to the injector.
    relayed(&c.b.rtp, c.b_to, &rtp(0xb, 0), &c.a.rtp, c.a_to);
    assert_silent(&inj, QUIET, "B's media went to the injector");

    let q = c.query(&ng);
    assert_eq!(port_stat(&q, c.a_to.port(), "errors"), injected, "{q:?}");
    assert_eq!(port_stat(&q, c.a_to.port(), "packets"), i64::from(N));
    assert_eq!(total(&q, "RTP", "errors"), injected);
}

#[test]
fn peer_behind_nat_is_learned_and_gets_media_back_at_its_real_source() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let c = Call::setup(&relay.client(), &ports, &[]);
    // A's SDP says spare port 0; its NAT maps it to spare port 6.
    let nat = MediaEndpoint::bind(SocketAddr::from((LO, ports.port(6)))).expect("bind NAT");
    for n in 0..5 {
        relayed(&nat, c.a_to, &rtp(0xa, n), &c.b.rtp, c.b_to);
    }
    for n in 0..5 {
        relayed(&c.b.rtp, c.b_to, &rtp(0xb, n), &nat, c.a_to);
    }
    assert_silent(&c.a.rtp, QUIET, "media still went to A's SDP port");
}

#[test]
fn learning_off_sends_to_the_sdp_address_whatever_the_source() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &["--endpoint-learning=off", "--no-strict-source"],
    );
    let c = Call::setup(&relay.client(), &ports, &[]);
    let nat = MediaEndpoint::bind(SocketAddr::from((LO, ports.port(6)))).expect("bind NAT");
    relayed(&nat, c.a_to, &rtp(0xa, 0), &c.b.rtp, c.b_to);
    // Unlike the default, B's answer goes to A's SDP port, not to where A sent from.
    relayed(&c.b.rtp, c.b_to, &rtp(0xb, 0), &c.a.rtp, c.a_to);
    assert_silent(
        &nat,
        QUIET,
        "learning is off, yet media followed the source",
    );
}

#[test]
fn learning_off_with_strict_source_drops_other_sources() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["--endpoint-learning=off"]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let nat = MediaEndpoint::bind(SocketAddr::from((LO, ports.port(6)))).expect("bind NAT");
    nat.send_to(&rtp(0xa, 0), c.a_to).expect("send");
    assert_silent(
        &c.b.rtp,
        QUIET * 2,
        "strict source relayed a non-SDP source",
    );
    relayed(&c.a.rtp, c.a_to, &rtp(0xa, 1), &c.b.rtp, c.b_to);
    assert_eq!(port_stat(&c.query(&ng), c.a_to.port(), "errors"), 1);
}

#[test]
fn learning_immediate_locks_onto_the_first_source() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &["--endpoint-learning=immediate"],
    );
    let c = Call::setup(&relay.client(), &ports, &[]);
    let first = stranger();
    relayed(&first, c.a_to, &rtp(0x1, 0), &c.b.rtp, c.b_to);
    // The first source keeps the stream: A's own packets are now the strangers (heuristic would take A).
    c.a.rtp.send_to(&rtp(0xa, 0), c.a_to).expect("send A");
    assert_silent(
        &c.b.rtp,
        QUIET * 2,
        "immediate learning let a second source in",
    );
    relayed(&c.b.rtp, c.b_to, &rtp(0xb, 0), &first, c.a_to);
}

#[test]
fn learning_delayed_follows_the_newest_source_then_locks_after_the_window() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &["--endpoint-learning=delayed"],
    );
    let c = Call::setup(&relay.client(), &ports, &[]);
    let other = stranger();
    relayed(&c.a.rtp, c.a_to, &rtp(0xa, 0), &c.b.rtp, c.b_to);
    // Within the window the newest source wins, even over the exact SDP address (heuristic would not).
    relayed(&other, c.a_to, &rtp(0x2, 0), &c.b.rtp, c.b_to);
    relayed(&c.b.rtp, c.b_to, &rtp(0xb, 0), &other, c.a_to);
    // After the 3 s window, the first packet fixes the endpoint; strict source drops the rest.
    std::thread::sleep(Duration::from_millis(3300));
    relayed(&c.a.rtp, c.a_to, &rtp(0xa, 1), &c.b.rtp, c.b_to);
    other.send_to(&rtp(0x2, 1), c.a_to).expect("send");
    assert_silent(
        &c.b.rtp,
        QUIET * 2,
        "a source other than the fixed one got through",
    );
    relayed(&c.b.rtp, c.b_to, &rtp(0xb, 1), &c.a.rtp, c.a_to);
}

#[test]
fn asymmetric_keeps_sending_to_the_sdp_address() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let c = Call::setup(&relay.client(), &ports, &["asymmetric"]);
    let nat = MediaEndpoint::bind(SocketAddr::from((LO, ports.port(6)))).expect("bind NAT");
    relayed(&nat, c.a_to, &rtp(0xa, 0), &c.b.rtp, c.b_to);
    relayed(&nat, c.a_to, &rtp(0xa, 1), &c.b.rtp, c.b_to);
    // Same as the NAT test, but the media goes to the SDP port and not back to the source.
    relayed(&c.b.rtp, c.b_to, &rtp(0xb, 0), &c.a.rtp, c.a_to);
    assert_silent(&nat, QUIET, "asymmetric media followed the source");
}

#[test]
fn a_stranger_on_a_latched_rtcp_port_is_dropped_and_counted_in_the_rtcp_totals() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let (a_rtcp, b_rtcp) = (
        SocketAddr::new(c.a_to.ip(), c.a_to.port() + 1),
        SocketAddr::new(c.b_to.ip(), c.b_to.port() + 1),
    );
    relayed(&c.a.rtcp, a_rtcp, &rtcp_rr(0xa), &c.b.rtcp, b_rtcp);
    let inj = stranger();
    inj.send_to(&rtcp_rr(0x66), a_rtcp).expect("send");
    assert_silent(
        &c.b.rtcp,
        QUIET * 2,
        "stranger's RTCP relayed after A latched",
    );
    let q = c.query(&ng);
    assert_eq!(port_stat(&q, a_rtcp.port(), "errors"), 1, "{q:?}");
    // rtpengine adds every RTCP stream's stats, errors included, to totals.RTCP.
    assert_eq!(
        total(&q, "RTCP", "errors"),
        1,
        "totals.RTCP.errors misses the RTCP port's errors"
    );
    assert_eq!(total(&q, "RTCP", "packets"), 1);
}
