//! ICE between rtprelay and Debian's rtpengine, both real, on loopback: caller A (plain RTP) →
//! rtprelay → rtpengine → callee B (plain RTP), with ICE on the hop between the relays only. Each
//! relay takes media on that hop only from an address that passed a check, so audio flows both
//! ways only when the two ICE agents agree:
//! - both full (no `ICE-lite` key): rtprelay sent the offer, so it controls and nominates;
//! - rtpengine ICE-lite towards rtprelay (`ICE-lite: backward` in rtpengine's offer): rtprelay
//!   must check rtpengine's candidate and nominate, the only agent that can;
//! - rtprelay ICE-lite towards rtpengine (`ICE-lite: forward` in rtprelay's offer): rtpengine
//!   checks, rtprelay answers. rtpengine 10.5 (the answerer here) then uses the checked pair
//!   without ever nominating it ("ICE not completed yet, but can use pair" in its log), so
//!   rtprelay's lite agent stays `checking` while media flows on the verified pair.

mod common;

use std::time::{Duration, Instant};

use common::bencode::{dict, get_str, Dict, Value};
use common::call::{Party, LO};
use common::media::RtpPacket;
use common::*;

#[derive(Clone, Copy, Debug)]
enum Lite {
    Nobody,
    Rtpengine,
    Rtprelay,
}

#[test]
fn ice_both_full_rtprelay_controls() {
    ice_call(Lite::Nobody);
}

#[test]
fn ice_rtpengine_lite_rtprelay_checks_and_nominates() {
    ice_call(Lite::Rtpengine);
}

#[test]
fn ice_rtprelay_lite_rtpengine_checks() {
    ice_call(Lite::Rtprelay);
}

fn request(ng: &NgClient, pairs: Vec<(&str, Value)>, what: &str) -> Dict {
    let mut d = dict([]);
    for (k, v) in pairs {
        d.insert(k.as_bytes().to_vec(), v);
    }
    expect_ok(ng.request(d), what)
}

fn sdp_of(d: &Dict, what: &str) -> String {
    get_str(d, "sdp")
        .unwrap_or_else(|| panic!("{what}: no sdp in {d:?}"))
        .to_owned()
}

fn ice_call(lite: Lite) {
    if !require_or_skip("rtpengine") {
        return;
    }
    let (ours_ports, ref_ports) = (PortBlock::acquire(), PortBlock::acquire());
    let ours = Relay::start(RelayKind::Rtprelay, &ours_ports, &[]);
    let reference = Relay::start(RelayKind::Rtpengine, &ref_ports, &[]);
    let (ng_ours, ng_ref) = (ours.client(), reference.client());
    let a = Party::bind(&ours_ports, 0, "caller");
    let b = Party::bind(&ours_ports, 2, "callee");
    let call = format!("ice-{lite:?}-{}", std::process::id());

    // A → rtprelay: ICE towards the next hop (rtpengine), none towards A.
    let mut offer1 = vec![
        ("command", "offer".into()),
        ("call-id", call.as_str().into()),
        ("from-tag", "caller".into()),
        ("sdp", sdp_offer(LO, a.port()).into()),
        ("ICE", "force".into()),
    ];
    if matches!(lite, Lite::Rtprelay) {
        offer1.push(("ICE-lite", "forward".into()));
    }
    let to_ref = sdp_of(
        &request(&ng_ours, offer1, "rtprelay offer"),
        "rtprelay offer",
    );
    assert!(to_ref.contains("a=ice-ufrag:"), "{to_ref}");
    assert_eq!(
        to_ref.contains("a=ice-lite"),
        matches!(lite, Lite::Rtprelay),
        "{to_ref}"
    );

    // rtprelay's offer → rtpengine → B: no ICE towards B.
    let mut offer2 = vec![
        ("command", "offer".into()),
        ("call-id", call.as_str().into()),
        ("from-tag", "hop".into()),
        ("sdp", to_ref.as_str().into()),
        ("ICE", "remove".into()),
    ];
    if matches!(lite, Lite::Rtpengine) {
        offer2.push(("ICE-lite", "backward".into()));
    }
    let to_b = sdp_of(
        &request(&ng_ref, offer2, "rtpengine offer"),
        "rtpengine offer",
    );
    let b_to = sdp_media_endpoint(&to_b).expect("rtpengine's port for B");

    // B answers plain; rtpengine answers rtprelay with its ICE (the offer had ICE).
    let answer2 = vec![
        ("command", "answer".into()),
        ("call-id", call.as_str().into()),
        ("from-tag", "hop".into()),
        ("to-tag", "callee".into()),
        ("sdp", sdp_answer(LO, b.port()).into()),
    ];
    let from_ref = sdp_of(
        &request(&ng_ref, answer2, "rtpengine answer"),
        "rtpengine answer",
    );
    assert!(from_ref.contains("a=candidate:"), "{from_ref}");
    assert_eq!(
        from_ref.contains("a=ice-lite"),
        matches!(lite, Lite::Rtpengine),
        "{from_ref}"
    );

    // rtpengine's answer → rtprelay → A, without ICE.
    let answer1 = vec![
        ("command", "answer".into()),
        ("call-id", call.as_str().into()),
        ("from-tag", "caller".into()),
        ("to-tag", "hop".into()),
        ("sdp", from_ref.as_str().into()),
        ("ICE", "remove".into()),
    ];
    let to_a = sdp_of(
        &request(&ng_ours, answer1, "rtprelay answer"),
        "rtprelay answer",
    );
    assert!(!to_a.contains("a=ice-"), "{to_a}");
    let a_to = sdp_media_endpoint(&to_a).expect("rtprelay's port for A");

    // Audio both ways, 20 ms apart, until 25 packets arrived each way (or 15 s).
    let (mut at_b, mut at_a, mut n) = (0usize, 0usize, 0u16);
    let deadline = Instant::now() + Duration::from_secs(15);
    while (at_b < 25 || at_a < 25) && Instant::now() < deadline {
        n = n.wrapping_add(1);
        a.rtp
            .send_to(&RtpPacket::pcmu(0xa, n).to_bytes(), a_to)
            .expect("send A");
        b.rtp
            .send_to(&RtpPacket::pcmu(0xb, n).to_bytes(), b_to)
            .expect("send B");
        std::thread::sleep(Duration::from_millis(20));
        at_b += drain(&b, 0xa);
        at_a += drain(&a, 0xb);
    }
    // Nomination may come a little after the first checks passed (media already flows on a
    // verified pair): wait for it.
    let query = || {
        let q = Value::Dict(expect_ok(ng_ours.query(&call), "query"));
        let (mut states, mut flags) = (Vec::new(), Vec::new());
        texts(&q, "ICE state", &mut states);
        texts(&q, "flags", &mut flags);
        (states, flags)
    };
    let completes = !matches!(lite, Lite::Rtprelay);
    let mut seen = query();
    let until = Instant::now() + Duration::from_secs(10);
    while completes && !seen.0.iter().all(|s| s == "completed") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        seen = query();
    }
    let (states, flags) = seen;
    assert!(
        at_b >= 25 && at_a >= 25,
        "{lite:?}: A→B {at_b}, B→A {at_a} after {n} sent each way; rtprelay ICE {states:?}\n\
         rtprelay log:\n{}\nrtpengine log:\n{}",
        ours.log_tail(30),
        reference.log_tail(30)
    );
    assert!(
        !states.is_empty()
            && states
                .iter()
                .all(|s| s == "completed" || (!completes && s == "checking")),
        "{lite:?}: rtprelay's ICE states {states:?}\nrtprelay log:\n{}",
        ours.log_tail(30)
    );
    let controlling = flags.iter().any(|f| f == "ICE controlling");
    assert_eq!(
        controlling,
        !matches!(lite, Lite::Rtprelay),
        "{lite:?}: flags {flags:?}"
    );
    eprintln!("{lite:?}: A→B {at_b}, B→A {at_a}, {n} sent each way, ICE {states:?}");
}

/// How many RTP packets of `ssrc` are waiting on the party's RTP socket.
fn drain(p: &Party, ssrc: u32) -> usize {
    let mut got = 0;
    while let Some((data, _)) = p.rtp.recv_timeout(Duration::from_millis(1)) {
        if RtpPacket::parse(&data).is_some_and(|r| r.ssrc == ssrc) {
            got += 1;
        }
    }
    got
}

/// Every text under `key` anywhere in a reply (lists of texts included).
fn texts(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Dict(d) => {
            for (k, v) in d {
                if k.as_slice() == key.as_bytes() {
                    match v {
                        Value::List(l) => {
                            out.extend(l.iter().filter_map(|x| x.as_str()).map(str::to_owned))
                        }
                        other => out.extend(other.as_str().map(str::to_owned)),
                    }
                } else {
                    texts(v, key, out);
                }
            }
        }
        Value::List(l) => l.iter().for_each(|v| texts(v, key, out)),
        _ => {}
    }
}
