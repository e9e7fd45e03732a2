//! rtpengine's `media echo` through the real relay over loopback: the side that echoes gets its own media
//! (RTP and RTCP) back from the relay port it sends to, the other side's media goes nowhere; the mode
//! outlives a re-offer that does not name one. Runs against Debian's rtpengine too
//! (`RTPRELAY_E2E_RELAY=rtpengine`), which gives echoed RTP a new SSRC: packets are compared by sequence
//! number, timestamp and payload.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::call::*;
use common::*;

const WAIT: Duration = Duration::from_secs(2);
/// How long a dropped stream must stay silent.
const QUIET: Duration = Duration::from_millis(300);

/// A call whose offer (from A) carries `media-echo: <mode>`; B answers plainly.
struct EchoCall {
    a: Party,
    b: Party,
    /// Where A sends (from the answer) and where B sends (from the offer).
    a_to: SocketAddr,
    b_to: SocketAddr,
    id: String,
}

fn offer(ng: &NgClient, id: &str, a: &Party, echo: Option<&str>) -> SocketAddr {
    let mut req = dict([
        ("command", "offer".into()),
        ("call-id", id.into()),
        ("from-tag", a.tag.as_str().into()),
        ("sdp", sdp_offer(LO, a.port()).as_str().into()),
    ]);
    if let Some(mode) = echo {
        req.insert(b"media-echo".to_vec(), mode.into());
    }
    let r = expect_ok(ng.request(req), "offer");
    sdp_media_endpoint(get_str(&r, "sdp").expect("offer sdp")).expect("offer endpoint")
}

fn echo_call(ng: &NgClient, ports: &PortBlock, mode: &str) -> EchoCall {
    let a = Party::bind(ports, 0, "tag-a");
    let b = Party::bind(ports, 2, "tag-b");
    let id = format!("echo-{mode}");
    let b_to = offer(ng, &id, &a, Some(mode));
    let r = expect_ok(
        ng.answer(&id, &a.tag, &b.tag, &sdp_answer(LO, b.port()), &[]),
        "answer",
    );
    let a_to =
        sdp_media_endpoint(get_str(&r, "sdp").expect("answer sdp")).expect("answer endpoint");
    EchoCall {
        a,
        b,
        a_to,
        b_to,
        id,
    }
}

/// Sends five PCMU packets of `ssrc` from `from` to `to` and checks that they come back to `at` from `src`
/// (same sequence numbers, timestamps and payload; the SSRC may differ). rtprelay must return every one;
/// rtpengine sometimes loses one while it sets the echo up, so against it one is enough.
fn expect_back(
    from: &MediaEndpoint,
    to: SocketAddr,
    ssrc: u32,
    at: &MediaEndpoint,
    src: SocketAddr,
) {
    let sent = from.send_rtp(to, ssrc, 5, Duration::ZERO).expect("send");
    let got = at.collect(sent.len(), WAIT);
    let all = RelayKind::from_env() == RelayKind::Rtprelay;
    if all {
        assert_eq!(got.len(), sent.len(), "echoed packets from {to}");
    } else {
        assert!(!got.is_empty(), "no echoed packet from {to}");
    }
    let key = |b: &[u8]| RtpPacket::parse(b).map(|p| (p.seq, p.timestamp, p.payload));
    let sent: Vec<_> = sent.iter().map(|b| key(b)).collect();
    for (data, came_from) in &got {
        let k = key(data);
        assert!(k.is_some(), "echo is RTP");
        assert!(
            sent.contains(&k),
            "echoed packet {k:?} is one that was sent"
        );
        assert_eq!(*came_from, src, "echo leaves from the port it was sent to");
    }
}

/// Sends five packets from `from` to `to` and checks that neither side hears anything.
fn expect_dropped(from: &MediaEndpoint, to: SocketAddr, ssrc: u32, c: &EchoCall, what: &str) {
    from.send_rtp(to, ssrc, 5, Duration::ZERO).expect("send");
    assert_silent(&c.a.rtp, QUIET, &format!("{what}: A"));
    assert_silent(&c.b.rtp, QUIET, &format!("{what}: B"));
}

fn relay(ports: &PortBlock) -> Relay {
    Relay::start(RelayKind::from_env(), ports, &[])
}

#[test]
fn forward_echoes_the_callees_media_and_drops_the_callers() {
    let ports = PortBlock::acquire();
    let relay = relay(&ports);
    let c = echo_call(&relay.client(), &ports, "fw");
    expect_back(&c.b.rtp, c.b_to, 0xb0b0_0001, &c.b.rtp, c.b_to);
    // RTCP too, on the port after.
    let rtcp_to = SocketAddr::new(c.b_to.ip(), c.b_to.port() + 1);
    c.b.rtcp
        .send_to(&rtcp_sr(0xb0b0_0001, 1), rtcp_to)
        .expect("send RTCP");
    let (_, from) = c.b.rtcp.recv_timeout(WAIT).expect("RTCP echoed");
    assert_eq!(from, rtcp_to);
    expect_dropped(&c.a.rtp, c.a_to, 0xa0a0_0001, &c, "caller's media");
}

#[test]
fn backwards_echoes_the_callers_media_and_drops_the_callees() {
    let ports = PortBlock::acquire();
    let relay = relay(&ports);
    let c = echo_call(&relay.client(), &ports, "backwards");
    expect_back(&c.a.rtp, c.a_to, 0xa0a0_0002, &c.a.rtp, c.a_to);
    expect_dropped(&c.b.rtp, c.b_to, 0xb0b0_0002, &c, "callee's media");
}

#[test]
fn both_echo_and_blackhole_drops_everything() {
    let ports = PortBlock::acquire();
    let relay = relay(&ports);
    let ng = relay.client();
    let c = echo_call(&ng, &ports, "both");
    expect_back(&c.a.rtp, c.a_to, 0xa0a0_0003, &c.a.rtp, c.a_to);
    expect_back(&c.b.rtp, c.b_to, 0xb0b0_0003, &c.b.rtp, c.b_to);

    // A re-offer switches the mode; one without `media-echo` keeps it.
    offer(&ng, &c.id, &c.a, Some("blackhole"));
    expect_dropped(&c.a.rtp, c.a_to, 0xa0a0_0004, &c, "caller's media");
    expect_dropped(&c.b.rtp, c.b_to, 0xb0b0_0004, &c, "callee's media");
    offer(&ng, &c.id, &c.a, None);
    expect_dropped(
        &c.a.rtp,
        c.a_to,
        0xa0a0_0005,
        &c,
        "caller's media after a re-offer",
    );
}
