//! `block media` / `unblock media` through the real relay over loopback: blocking one participant
//! (by `from-tag`) stops its media reaching the other side while the other direction, its RTCP and
//! its DTMF events still flow, `query` still counts what it sends, a re-INVITE keeps the block, and unblocking
//! resumes at once; no from-tag, or `all`, blocks the whole call. `RTPRELAY_E2E_RELAY=rtpengine`
//! runs the same against Debian's rtpengine (10.5), which passes it too.

mod common;

use std::time::Duration;

use common::call::*;
use common::*;

const WAIT: Duration = Duration::from_secs(2);
const QUIET: Duration = Duration::from_millis(300);

/// `block media` or `unblock media` for call `c`, with `from` as from-tag and `flags`.
fn block_cmd(ng: &NgClient, c: &Call, command: &str, from: Option<&str>, flags: &[&str]) -> Dict {
    let mut d = dict([
        ("command", command.into()),
        ("call-id", c.id.as_str().into()),
        ("flags", str_list(flags)),
    ]);
    if let Some(tag) = from {
        d.insert(b"from-tag".to_vec(), tag.into());
    }
    ng.request(d).expect("reply")
}

fn ok(reply: Dict, what: &str) {
    assert_eq!(get_str(&reply, "result"), Some("ok"), "{what}: {reply:?}");
}

/// Sends packets `seqs` of stream `ssrc` from `from` to `to`.
fn send(from: &MediaEndpoint, to: std::net::SocketAddr, ssrc: u32, seqs: std::ops::Range<u16>) {
    for n in seqs {
        from.send_to(&RtpPacket::pcmu(ssrc, n).to_bytes(), to)
            .expect("send");
    }
}

/// `n` packets of `ssrc` arrive on `at`.
fn arrives(at: &MediaEndpoint, ssrc: u32, n: usize, what: &str) {
    assert_eq!(recv_stream(at, ssrc, n, WAIT).len(), n, "{what}");
}

/// The `packets` counter `query` reports for the stream the relay receives on `port`, once it
/// reaches `want` (the userspace counters are live; give the relay a moment anyway).
fn wait_packets(ng: &NgClient, c: &Call, port: u16, want: i64) {
    let mut last = 0;
    let reached = wait_until(WAIT, || {
        last = port_stat(&c.query(ng), port, "packets");
        last >= want
    });
    assert!(
        reached,
        "stream on port {port}: {last} packets, want {want}"
    );
}

#[test]
fn block_one_participant_keeps_the_other_direction_and_survives_reinvite() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::from_env(), &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    send(&c.a.rtp, c.a_to, 0xa, 0..3);
    arrives(&c.b.rtp, 0xa, 3, "A->B before");
    send(&c.b.rtp, c.b_to, 0xb, 0..3);
    arrives(&c.a.rtp, 0xb, 3, "B->A before");

    let a = Some(c.a.tag.as_str());
    ok(block_cmd(&ng, &c, "block media", a, &[]), "block");
    send(&c.a.rtp, c.a_to, 0xa, 3..12);
    assert_silent(&c.b.rtp, QUIET, "A's media while A is blocked");
    // A DTMF event (telephone-event, payload type 101 in both SDPs) still passes, as in rtpengine.
    let mut dtmf = RtpPacket::pcmu(0xa, 12);
    dtmf.payload_type = 101;
    dtmf.payload = vec![1, 0x8a, 0, 160];
    c.a.rtp
        .send_to(&dtmf.to_bytes(), c.a_to)
        .expect("send DTMF");
    assert_eq!(
        c.b.rtp.recv_timeout(WAIT).map(|(d, _)| d),
        Some(dtmf.to_bytes()),
        "A's DTMF event while A is blocked"
    );
    assert_silent(&c.b.rtp, QUIET, "only the DTMF event");
    send(&c.b.rtp, c.b_to, 0xb, 3..8);
    arrives(&c.a.rtp, 0xb, 5, "B->A while A is blocked");
    // A's RTCP (on its own port) still passes.
    let rtcp_to = std::net::SocketAddr::new(c.a_to.ip(), c.a_to.port() + 1);
    c.a.rtcp.send_to(&rtcp_rr(0xa), rtcp_to).expect("send RTCP");
    assert_eq!(
        c.b.rtcp.recv_timeout(WAIT).map(|(d, _)| d),
        Some(rtcp_rr(0xa)),
        "A's RTCP while blocked"
    );
    // Blocked packets still count as received on A's stream.
    wait_packets(&ng, &c, c.a_to.port(), 13);

    // A re-INVITE (same SDP, new version) does not lift the block.
    let reoffer = sdp_offer(LO, c.a.port()).replace("o=- 1001 1 ", "o=- 1001 2 ");
    expect_ok(ng.offer(&c.id, &c.a.tag, &reoffer, &[]), "re-offer");
    expect_ok(
        ng.answer(&c.id, &c.a.tag, &c.b.tag, &sdp_answer(LO, c.b.port()), &[]),
        "re-answer",
    );
    send(&c.a.rtp, c.a_to, 0xa, 13..18);
    assert_silent(&c.b.rtp, QUIET, "A's media after the re-INVITE");

    ok(
        block_cmd(&ng, &c, "unblock media", a, &["directional"]),
        "unblock",
    );
    send(&c.a.rtp, c.a_to, 0xa, 18..23);
    arrives(&c.b.rtp, 0xa, 5, "A->B after unblock");
}

#[test]
fn all_or_no_participant_blocks_the_whole_call() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::from_env(), &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    send(&c.a.rtp, c.a_to, 0xa, 0..2);
    arrives(&c.b.rtp, 0xa, 2, "A->B before");
    send(&c.b.rtp, c.b_to, 0xb, 0..2);
    arrives(&c.a.rtp, 0xb, 2, "B->A before");

    let a = Some(c.a.tag.as_str());
    for (from, flags) in [(a, &["all"][..]), (None, &[][..])] {
        ok(block_cmd(&ng, &c, "block media", from, flags), "block");
        send(&c.a.rtp, c.a_to, 0xa, 2..7);
        send(&c.b.rtp, c.b_to, 0xb, 2..7);
        assert_silent(&c.b.rtp, QUIET, &format!("A->B, call blocked ({flags:?})"));
        assert_silent(&c.a.rtp, QUIET, &format!("B->A, call blocked ({flags:?})"));
        ok(block_cmd(&ng, &c, "unblock media", from, flags), "unblock");
        send(&c.a.rtp, c.a_to, 0xa, 7..9);
        arrives(&c.b.rtp, 0xa, 2, "A->B after unblock");
        send(&c.b.rtp, c.b_to, 0xb, 7..9);
        arrives(&c.a.rtp, 0xb, 2, "B->A after unblock");
    }
}

#[test]
fn unknown_call_is_an_error() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::from_env(), &ports, &[]);
    let ng = relay.client();
    for command in ["block media", "unblock media"] {
        let r = ng
            .request(dict([
                ("command", command.into()),
                ("call-id", "no-such-call".into()),
            ]))
            .expect("reply");
        assert_eq!(get_str(&r, "result"), Some("error"), "{r:?}");
        let reason = get_str(&r, "error-reason").unwrap_or_default();
        assert!(reason.eq_ignore_ascii_case("Unknown call-id"), "{r:?}");
    }
}
