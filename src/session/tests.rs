//! Scenario tests of the session engine on a fake clock, with a binder that accepts every port.

use std::time::Duration;

use crate::config::Interface;
use crate::session::actions::MediaAction;
use crate::session::command::{CallRef, Command, Delete, MediaSelect, OfferAnswer};
use crate::session::ports::AcceptAll;
use crate::session::{Engine, EngineConfig, Reply};
use crate::time::{Millis, Now};

fn iface(name: &str, ip: &str) -> Interface {
    Interface {
        name: name.into(),
        local: ip.parse().unwrap(),
        advertised: None,
    }
}

pub(super) fn engine() -> Engine {
    Engine::new(EngineConfig {
        interfaces: vec![
            iface("default", "203.0.113.1"),
            iface("default", "2001:db8:4321::1"),
            iface("pub", "198.51.100.9"),
        ],
        port_min: 30000,
        port_max: 30099,
        delete_delay: Duration::from_secs(30),
        timeout: Duration::from_secs(60),
        offer_timeout: Duration::from_secs(120),
        ..EngineConfig::default()
    })
}

pub(super) fn at(secs: u64) -> Now {
    Now {
        mono: Millis(secs * 1000),
        unix_us: 1_700_000_000_000_000 + secs * 1_000_000,
    }
}

pub(super) fn sdp(addr: &str, port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1545997027 1 IN IP4 {addr}\r\ns=tester\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
    .into_bytes()
}

pub(super) fn oa(
    call: &str,
    from: &str,
    to: Option<&str>,
    branch: Option<&str>,
    body: Vec<u8>,
) -> OfferAnswer {
    OfferAnswer {
        call: CallRef {
            call_id: call.into(),
            from_tag: Some(from.into()),
            to_tag: to.map(Into::into),
            via_branch: branch.map(Into::into),
        },
        sdp: body,
        ..OfferAnswer::default()
    }
}

/// A text field of a reply, by its rtpengine key: `result`, `sdp`, `error-reason`, `warning`,
/// `message`.
pub(super) fn text(r: &Reply, key: &str) -> String {
    match (key, r) {
        ("result", r) => r.result().to_owned(),
        ("sdp", Reply::Sdp(s))
        | ("error-reason", Reply::Error(s))
        | ("warning", Reply::Warning(s))
        | ("message", Reply::LoadLimit(s)) => s.clone(),
        _ => panic!("no {key} in {r:?}"),
    }
}

/// The port on the first m= line of an SDP reply.
pub(super) fn media_port(reply: &Reply) -> u16 {
    let s = text(reply, "sdp");
    let line = s.lines().find(|l| l.starts_with("m=")).expect("m= line");
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

pub(super) fn offer(e: &mut Engine, b: &mut AcceptAll, now: Now, p: OfferAnswer) -> Reply {
    e.handle(now, Command::Offer(p), b)
}

pub(super) fn answer(e: &mut Engine, b: &mut AcceptAll, now: Now, p: OfferAnswer) -> Reply {
    e.handle(now, Command::Answer(p), b)
}

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
fn delete_honours_delete_delay_and_frees_ports() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    answer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    while e.poll_action().is_some() {}
    let del = Command::Delete(Delete {
        call: CallRef {
            call_id: "c".into(),
            ..CallRef::default()
        },
        ..Delete::default()
    });
    let r = e.handle(at(1), del.clone(), &mut b);
    assert_eq!(text(&r, "result"), "ok");
    assert!(matches!(r, Reply::Call(_)), "first delete reports the call");
    let r2 = e.handle(at(2), del.clone(), &mut b);
    assert_eq!(r2, Reply::Ok, "second delete: plain ok");
    e.tick(at(30), &mut b);
    assert_eq!(e.call_count(), 1, "still inside delete-delay");
    e.tick(at(31), &mut b);
    assert_eq!(e.call_count(), 0);
    assert!(b.bound.is_empty(), "ports released");
    let closes = std::iter::from_fn(|| e.poll_action())
        .filter(|a| matches!(a, MediaAction::Close { .. }))
        .count();
    assert_eq!(closes, 4);
    let r3 = e.handle(at(40), del, &mut b);
    assert_eq!(
        text(&r3, "warning"),
        "Call-ID not found or tags didn't match"
    );
}

/// Ticks come every 100 ms from the daemon; the calls are looked at once a second.
#[test]
fn tick_scans_the_calls_at_most_once_a_second() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    answer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    let ms = |m: u64| Now {
        mono: Millis(m),
        unix_us: 1_700_000_000_000_000 + m * 1000,
    };
    e.tick(ms(59_500), &mut b);
    // 60 s without media passes at 60 000 ms, but the next scan is due at 60 500.
    e.tick(ms(60_100), &mut b);
    assert_eq!(e.call_count(), 1, "scanned again within the second");
    e.tick(ms(60_500), &mut b);
    assert_eq!(e.call_count(), 0, "the next scan ends it");
}

#[test]
fn silent_answered_call_times_out_and_unanswered_one_waits_for_offer_timeout() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("answered", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    answer(
        &mut e,
        &mut b,
        at(0),
        oa("answered", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("ringing", "A", None, None, sdp("192.0.2.10", 4002)),
    );
    e.tick(at(59), &mut b);
    assert_eq!(e.call_count(), 2);
    e.tick(at(60), &mut b);
    assert_eq!(
        e.call_count(),
        1,
        "answered call ended after 60 s without media"
    );
    e.tick(at(120), &mut b);
    assert_eq!(
        e.call_count(),
        0,
        "unanswered call ended by the offer timeout"
    );
}

#[test]
fn media_keeps_a_call_alive() {
    use std::sync::atomic::Ordering::Relaxed;
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    answer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    let counters = std::iter::from_fn(|| e.poll_action())
        .find_map(|a| match a {
            MediaAction::Open { counters, .. } => Some(counters),
            _ => None,
        })
        .unwrap();
    counters.last_packet_ms.store(50_000, Relaxed);
    e.tick(at(100), &mut b);
    assert_eq!(e.call_count(), 1);
    e.tick(at(110), &mut b);
    assert_eq!(e.call_count(), 0);
}

#[test]
fn port_exhaustion_is_an_ng_error() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        port_min: 30000,
        port_max: 30003,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c1", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    assert_eq!(text(&r, "result"), "ok");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c2", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    assert_eq!(text(&r, "error-reason"), "Ran out of ports");
}

#[test]
fn session_limit_refuses_new_calls_only() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        max_sessions: 1,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    assert_eq!(
        text(
            &offer(
                &mut e,
                &mut b,
                at(0),
                oa("c1", "A", None, None, sdp("192.0.2.10", 4000))
            ),
            "result"
        ),
        "ok"
    );
    assert_eq!(
        text(
            &offer(
                &mut e,
                &mut b,
                at(0),
                oa("c2", "A", None, None, sdp("192.0.2.10", 4000))
            ),
            "error-reason"
        ),
        "Parallel session limit reached"
    );
    assert_eq!(
        text(
            &offer(
                &mut e,
                &mut b,
                at(1),
                oa("c1", "A", None, None, sdp("192.0.2.10", 4000))
            ),
            "result"
        ),
        "ok"
    );
}

#[test]
fn address_family_switches_the_receiver_side_to_ipv6() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa("c", "A", None, None, sdp("192.0.2.10", 4000));
    p.address_family = Some(crate::sdp::Family::V6);
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP6 2001:db8:4321::1\r\n"),
        "{r:?}"
    );
}

#[test]
fn direction_picks_interfaces_and_unknown_ones_fall_back() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa("c", "A", None, None, sdp("192.0.2.10", 4000));
    p.direction = Some(("default".into(), "pub".into()));
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP4 198.51.100.9\r\n"),
        "{r:?}"
    );
    // A name the relay does not have: `ok`, on the default interface of the SDP's family.
    let mut p = oa("c2", "A", None, None, sdp("192.0.2.10", 4000));
    p.direction = Some(("default".into(), "nowhere".into()));
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP4 203.0.113.1\r\n"),
        "{r:?}"
    );
    // rtpengine's legacy names: `external` is IPv6 and `internal` IPv4.
    let mut p = oa("c3", "A", None, None, sdp("192.0.2.10", 4000));
    p.direction = Some(("external".into(), "internal".into()));
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP4 203.0.113.1\r\n"),
        "{r:?}"
    );
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c3", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    assert!(
        text(&r, "sdp").contains("c=IN IP6 2001:db8:4321::1\r\n"),
        "{r:?}"
    );
}

#[test]
fn no_direction_uses_the_first_interface_of_the_sdp_family() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("a", "203.0.113.1"), iface("b", "2001:db8:4321::1")],
        port_min: 30000,
        port_max: 30099,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let body = "v=0\r\no=- 1 1 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, body.as_bytes().to_vec()),
    );
    assert!(
        text(&r, "sdp").contains("c=IN IP6 2001:db8:4321::1\r\n"),
        "{r:?}"
    );
}

#[test]
fn list_and_query_report_calls() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c1", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    offer(
        &mut e,
        &mut b,
        at(1),
        oa("c2", "A", None, None, sdp("192.0.2.10", 4002)),
    );
    let l = e.handle(at(2), Command::List { limit: Some(1) }, &mut b);
    assert_eq!(l, Reply::List(vec!["c1".into()]));
    let q = e.handle(
        at(2),
        Command::Query(CallRef {
            call_id: "c1".into(),
            ..CallRef::default()
        }),
        &mut b,
    );
    let Reply::Call(q) = q else { panic!("{q:?}") };
    let a = q.tags.iter().find(|t| t.tag == "A").expect("tag A");
    let streams = &a.medias[0].streams;
    assert_eq!(streams.len(), 2);
    let ep = streams[0].endpoint.expect("endpoint");
    assert_eq!(ep.ip().to_string(), "192.0.2.10");
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
fn session_limit_with_load_limit_support_gets_a_load_limit_reply() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        max_sessions: 0,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let mut p = oa("c1", "A", None, None, sdp("192.0.2.10", 4000));
    p.supports_load_limit = true;
    let r = offer(&mut e, &mut b, at(0), p);
    assert_eq!(text(&r, "result"), "load limit");
    assert_eq!(e.call_count(), 0);
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

#[test]
fn a_moved_far_end_gets_its_own_pair_and_moving_back_restores_the_old_one() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let hold = |addr: &str, port: u16| {
        String::from_utf8(sdp(addr, port))
            .unwrap()
            .replace("a=sendrecv", "a=sendonly")
            .into_bytes()
    };
    let to_b1 = media_port(&offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, sdp("192.0.2.10", 4000)),
    ));
    let to_a1 = media_port(&answer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    ));
    // A moves but only sends (hold): B keeps sending to the same pair.
    let held = media_port(&offer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "A", Some("B"), None, hold("192.0.2.10", 4002)),
    ));
    assert_eq!(held, to_b1);
    // B moves and still receives: A gets a new pair to send to.
    let to_a2 = media_port(&answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5002)),
    ));
    assert_ne!(to_a2, to_a1);
    // Both move back: the original pairs again.
    let back_b = media_port(&offer(
        &mut e,
        &mut b,
        at(2),
        oa("c", "A", Some("B"), None, sdp("192.0.2.10", 4000)),
    ));
    let back_a = media_port(&answer(
        &mut e,
        &mut b,
        at(2),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    ));
    assert_eq!((back_b, back_a), (to_b1, to_a1));
    // Deleting frees every pair, the parked ones too.
    let del = Command::Delete(Delete {
        call: CallRef {
            call_id: "c".into(),
            ..CallRef::default()
        },
        delete_delay: Some(0),
        ..Delete::default()
    });
    e.handle(at(3), del, &mut b);
    assert!(b.bound.is_empty(), "{:?}", b.bound);
}

fn actions(e: &mut Engine) -> Vec<MediaAction> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

#[test]
fn record_call_taps_rtp_flows_and_describes_streams() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut o = oa("rec", "A", None, None, sdp("192.0.2.10", 4000));
    o.flags.record_call = true;
    o.metadata = Some("k:v".into());
    offer(&mut e, &mut b, at(0), o);
    actions(&mut e);
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("rec", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    let acts = actions(&mut e);
    // Only the RTP flows are tapped; RTCP never.
    let recorded: Vec<bool> = acts
        .iter()
        .filter_map(|a| match a {
            MediaAction::Update { kind, record, .. } | MediaAction::Open { kind, record, .. } => {
                Some(*record == (*kind == crate::flow::FlowKind::Rtp))
            }
            _ => None,
        })
        .collect();
    assert_eq!(recorded, vec![true; 4]);
    let Some(MediaAction::Record {
        call_id,
        metadata,
        streams,
    }) = acts
        .iter()
        .find(|a| matches!(a, MediaAction::Record { .. }))
    else {
        panic!("no Record action in {acts:?}");
    };
    assert_eq!((call_id.as_str(), metadata.as_str()), ("rec", "k:v"));
    let tags: Vec<&str> = streams.iter().map(|s| s.info.tag.as_str()).collect();
    assert_eq!(tags, vec!["A", "B"]);
    let codecs: Vec<(u8, &str, u32)> = streams[0]
        .info
        .codecs
        .iter()
        .map(|c| (c.payload_type, c.encoding.as_str(), c.clock_rate))
        .collect();
    assert_eq!(
        codecs,
        vec![
            (0, "PCMU", 8000),
            (8, "PCMA", 8000),
            (101, "telephone-event", 8000)
        ]
    );

    // The end of the call finishes the entry, after the flows are closed.
    e.handle(
        at(2),
        Command::Delete(Delete {
            call: CallRef {
                call_id: "rec".into(),
                ..CallRef::default()
            },
            delete_delay: Some(0),
            fatal: false,
        }),
        &mut b,
    );
    let acts = actions(&mut e);
    assert!(
        matches!(acts.last(), Some(MediaAction::RecordEnd { call_id }) if call_id == "rec"),
        "{acts:?}"
    );
}

#[test]
fn recording_commands_toggle_taps_and_end_the_entry() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    assert!(!actions(&mut e)
        .iter()
        .any(|a| matches!(a, MediaAction::Record { .. })));
    let cref = CallRef {
        call_id: "c".into(),
        ..CallRef::default()
    };
    let taps = |acts: &[MediaAction], want: bool| {
        acts.iter()
            .filter(|a| matches!(a, MediaAction::Tap { record, .. } if *record == want))
            .count()
    };
    let r = e.handle(at(2), Command::StartRecording(cref.clone()), &mut b);
    assert_eq!(text(&r, "result"), "ok");
    let acts = actions(&mut e);
    assert!(
        matches!(acts.first(), Some(MediaAction::Record { .. })),
        "{acts:?}"
    );
    assert_eq!(taps(&acts, true), 2);
    e.handle(at(3), Command::PauseRecording(cref.clone()), &mut b);
    let acts = actions(&mut e);
    assert_eq!((taps(&acts, false), acts.len()), (2, 2), "{acts:?}");
    e.handle(at(4), Command::StartRecording(cref.clone()), &mut b);
    actions(&mut e);
    e.handle(at(5), Command::StopRecording(cref.clone()), &mut b);
    let acts = actions(&mut e);
    assert_eq!(taps(&acts, false), 2);
    assert!(
        matches!(acts.last(), Some(MediaAction::RecordEnd { .. })),
        "{acts:?}"
    );
    // Stopped: the end of the call has no entry left to finish.
    e.handle(
        at(6),
        Command::Delete(Delete {
            call: cref.clone(),
            delete_delay: Some(0),
            fatal: false,
        }),
        &mut b,
    );
    assert!(!actions(&mut e)
        .iter()
        .any(|a| matches!(a, MediaAction::RecordEnd { .. })));
    let r = e.handle(at(7), Command::StopRecording(cref), &mut b);
    assert_eq!(text(&r, "error-reason"), "Unknown call-id");
}

/// `block media` (`on`) or `unblock media`.
fn block(e: &mut Engine, b: &mut AcceptAll, on: bool, m: MediaSelect) -> Reply {
    let cmd = if on {
        Command::BlockMedia(m)
    } else {
        Command::UnblockMedia(m)
    };
    e.handle(at(9), cmd, b)
}

fn select(call: &str, from: Option<&str>, all: bool) -> MediaSelect {
    MediaSelect {
        call: CallRef {
            call_id: call.into(),
            from_tag: from.map(Into::into),
            ..CallRef::default()
        },
        all,
        ..MediaSelect::default()
    }
}

/// The block state each leg's RTP flows were given, by leg index, from `acts`.
fn blocked_legs(e: &Engine, acts: &[MediaAction]) -> Vec<(usize, bool)> {
    let mut v: Vec<(usize, bool)> = acts
        .iter()
        .filter_map(|a| match a {
            MediaAction::Block { flow, block, .. } => Some((e.flows[flow].leg, block.is_some())),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v
}

/// [`blocked_legs`] of the actions queued now.
fn sent_blocks(e: &mut Engine) -> Vec<(usize, bool)> {
    let acts = actions(e);
    blocked_legs(e, &acts)
}

fn two_party(e: &mut Engine, b: &mut AcceptAll) {
    offer(
        e,
        b,
        at(0),
        oa("c", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    answer(
        e,
        b,
        at(1),
        oa("c", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    actions(e);
}

#[test]
fn block_media_from_tag_blocks_one_participant_and_survives_reinvite() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    two_party(&mut e, &mut b);
    let r = block(&mut e, &mut b, true, select("c", Some("A"), false));
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    let acts = actions(&mut e);
    // Only the RTP flows (one per leg) carry a block state; A's (leg 0) is blocked, and its
    // DTMF events (telephone-event, 101 in both SDPs) still pass.
    assert_eq!(blocked_legs(&e, &acts), vec![(0, true), (1, false)]);
    assert!(
        acts.iter()
            .any(|a| matches!(a, MediaAction::Block { block: Some(m), .. } if *m == 1 << 101)),
        "{acts:?}"
    );
    // Unblocking the whole call without `all` leaves the participant's block alone.
    block(&mut e, &mut b, false, select("c", None, false));
    assert_eq!(sent_blocks(&mut e), vec![(0, true), (1, false)]);
    // A re-INVITE that moves both ends: A stays blocked, and the flows opened for A's new
    // pair (it follows B's new endpoint) start blocked.
    let r = offer(
        &mut e,
        &mut b,
        at(2),
        oa("c", "A", Some("B"), None, sdp("192.0.2.11", 4100)),
    );
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    answer(
        &mut e,
        &mut b,
        at(3),
        oa("c", "A", Some("B"), None, sdp("192.0.2.21", 5100)),
    );
    assert!(e.calls["c"].blocks(0) && !e.calls["c"].blocks(1));
    let acts = actions(&mut e);
    let a_opens = acts
        .iter()
        .filter(|a| matches!(a, MediaAction::Open { flow, .. } if e.flows[flow].leg == 0))
        .count();
    assert_eq!(a_opens, 2, "{acts:?}");
    for (i, a) in acts.iter().enumerate() {
        if let MediaAction::Open { flow, kind, .. } = a {
            let leg = e.flows[flow].leg;
            let next = acts.get(i + 1);
            let blocked_next = matches!(next, Some(MediaAction::Block { flow: f, block: Some(_), .. }) if f == flow);
            assert_eq!(
                blocked_next,
                leg == 0 && *kind == crate::flow::FlowKind::Rtp,
                "{acts:?}"
            );
        }
    }
    // `all` on unblock clears the participants too.
    block(&mut e, &mut b, false, select("c", None, true));
    assert_eq!(sent_blocks(&mut e), vec![(0, false), (1, false)]);
}

#[test]
fn block_media_without_a_participant_or_with_all_blocks_the_whole_call() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    two_party(&mut e, &mut b);
    block(&mut e, &mut b, true, select("c", None, false));
    assert_eq!(sent_blocks(&mut e), vec![(0, true), (1, true)]);
    // Unblocking one participant does not lift the call's block.
    block(&mut e, &mut b, false, select("c", Some("B"), false));
    assert_eq!(sent_blocks(&mut e), vec![(0, true), (1, true)]);
    block(&mut e, &mut b, false, select("c", None, false));
    assert_eq!(sent_blocks(&mut e), vec![(0, false), (1, false)]);
    // `all` wins over a from-tag.
    block(&mut e, &mut b, true, select("c", Some("A"), true));
    assert_eq!(sent_blocks(&mut e), vec![(0, true), (1, true)]);
}

/// `address` matches the RTCP address a participant's SDP gave (`a=rtcp:` on another host) too.
#[test]
fn block_media_address_matches_the_rtcp_address() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    two_party(&mut e, &mut b);
    e.calls.get_mut("c").unwrap().legs[1].medias[0].remote_rtcp =
        Some("192.0.2.21:5001".parse().unwrap());
    let mut m = select("c", None, false);
    m.address = Some("192.0.2.21".parse().unwrap());
    block(&mut e, &mut b, true, m);
    assert_eq!(sent_blocks(&mut e), vec![(0, false), (1, true)]);
}

#[test]
fn block_media_selects_by_address_and_label() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    two_party(&mut e, &mut b);
    let mut m = select("c", None, false);
    m.address = Some("192.0.2.20".parse().unwrap());
    block(&mut e, &mut b, true, m);
    assert_eq!(sent_blocks(&mut e), vec![(0, false), (1, true)]);
    e.calls.get_mut("c").unwrap().legs[0].label = Some("caller".into());
    let mut m = select("c", None, false);
    m.label = Some("caller".into());
    // A from-tag loses to a label.
    m.call.from_tag = Some("B".into());
    block(&mut e, &mut b, true, m);
    assert_eq!(sent_blocks(&mut e), vec![(0, true), (1, true)]);

    let err = |e: &mut Engine, b: &mut AcceptAll, m: MediaSelect| {
        let r = block(e, b, true, m);
        assert!(actions(e).is_empty());
        text(&r, "error-reason")
    };
    assert_eq!(
        err(&mut e, &mut b, select("nope", None, false)),
        "Unknown call-id"
    );
    assert_eq!(
        err(&mut e, &mut b, select("c", Some("X"), false)),
        "From-tag given, but no such tag exists"
    );
    let mut m = select("c", None, false);
    m.label = Some("callee".into());
    assert_eq!(
        err(&mut e, &mut b, m),
        "No monologue matching the given label"
    );
    let mut m = select("c", None, false);
    m.address = Some("192.0.2.99".parse().unwrap());
    assert_eq!(err(&mut e, &mut b, m), "Failed to match address to any tag");
}
