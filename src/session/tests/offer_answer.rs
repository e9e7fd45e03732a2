//! `offer` and `answer`: ports in the rewritten SDP, re-offers and branches, errors that
//! leave no call, the SDP version.

use super::common::{answer, at, engine, iface, media_port, oa, offer, sdp, text};
use crate::session::actions::MediaAction;
use crate::session::ports::AcceptAll;
use crate::session::{Engine, EngineConfig, Reply};

#[test]
fn offer_and_answer_rewrite_ports_and_open_flows() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c1", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    let out = text(&r, "sdp");
    assert!(out.contains("c=IN IP4 203.0.113.1\r\n"), "{out}");
    let b_port = media_port(&r);
    assert!((30000..30100).contains(&b_port) && b_port % 2 == 0);
    assert!(out.contains(&format!("a=rtcp:{}\r\n", b_port + 1)), "{out}");
    let opens = std::iter::from_fn(|| e.poll_action())
        .filter(|a| matches!(a, MediaAction::Open { .. }))
        .count();
    assert_eq!(opens, 4, "two legs x RTP+RTCP");

    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c1", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    let a_port = media_port(&r);
    assert_ne!(a_port, b_port);
    let updates: Vec<_> = std::iter::from_fn(|| e.poll_action()).collect();
    assert_eq!(updates.len(), 4);
    // The flow receiving from B (B's local pair) must now expect B's SDP address.
    let expects_b = updates.iter().any(|a| match a {
        MediaAction::Update { latch, .. } => {
            latch.expected == Some("192.0.2.20:5000".parse().unwrap())
        }
        _ => false,
    });
    assert!(expects_b, "{updates:?}");
}

#[test]
fn reoffer_keeps_ports_new_branch_gets_new_ones_and_old_branch_its_old_ones() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let p1 = media_port(&offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, Some("br1"), sdp("192.0.2.10", 4000)),
    ));
    let again = media_port(&offer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "A", None, Some("br1"), sdp("192.0.2.10", 4000)),
    ));
    assert_eq!(p1, again);
    let p2 = media_port(&offer(
        &mut e,
        &mut b,
        at(2),
        oa("c", "A", None, Some("br2"), sdp("192.0.2.10", 4000)),
    ));
    assert_ne!(p1, p2);
    let back = media_port(&offer(
        &mut e,
        &mut b,
        at(3),
        oa("c", "A", None, Some("br1"), sdp("192.0.2.10", 4000)),
    ));
    assert_eq!(p1, back);
    let other_tag = media_port(&offer(
        &mut e,
        &mut b,
        at(4),
        oa("c", "A2", None, Some("br1"), sdp("192.0.2.10", 4000)),
    ));
    assert!(other_tag != p1 && other_tag != p2);
}

#[test]
fn answer_for_unknown_call_is_an_error() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let r = answer(
        &mut e,
        &mut b,
        at(0),
        oa("nope", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    assert_eq!(text(&r, "result"), "error");
    assert_eq!(text(&r, "error-reason"), "Unknown call-id");
}

#[test]
fn bad_sdp_is_an_error_and_leaves_no_call() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, b"garbage".to_vec()),
    );
    assert_eq!(text(&r, "error-reason"), "Failed to parse SDP");
    assert_eq!(e.call_count(), 0);
}

#[test]
fn sdp_version_is_kept_while_sdp_is_unchanged_and_bumped_once_when_it_changes() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mk = |body: Vec<u8>| {
        let mut p = oa("c", "A", None, None, body);
        p.replace.sdp_version = true;
        p
    };
    let v = |r: &Reply| {
        text(r, "sdp")
            .lines()
            .find(|l| l.starts_with("o="))
            .unwrap()
            .split(' ')
            .nth(2)
            .unwrap()
            .to_string()
    };
    let r1 = offer(&mut e, &mut b, at(0), mk(sdp("192.0.2.10", 4000)));
    assert_eq!(v(&r1), "1");
    let bumped_by_caller = String::from_utf8(sdp("192.0.2.10", 4000))
        .unwrap()
        .replace(" 1 IN", " 7 IN");
    let r2 = offer(&mut e, &mut b, at(1), mk(bumped_by_caller.into_bytes()));
    assert_eq!(v(&r2), "1", "same body: same version");
    let r3 = offer(&mut e, &mut b, at(2), mk(sdp("192.0.2.10", 4004)));
    assert_eq!(v(&r3), "2", "changed body: +1");
}

#[test]
fn a_failed_first_offer_leaves_no_call_and_no_ports() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        port_min: 30000,
        port_max: 30005, // two pairs: the second media section of the offer cannot get its own
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let two_media =
        String::from_utf8(sdp("192.0.2.10", 4000)).unwrap() + "m=video 4002 RTP/AVP 96\r\n";
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, two_media.into_bytes()),
    );
    assert_eq!(text(&r, "error-reason"), "Ran out of ports");
    assert_eq!(e.call_count(), 0);
    assert!(b.bound.is_empty(), "{:?}", b.bound);
    assert!(e.poll_action().is_none(), "nothing was opened");
}
