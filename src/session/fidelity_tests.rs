//! Scenarios where rtpengine's answer depends on earlier messages of the call: the SDP text
//! must come out as rtpengine 10.5 writes it (checked against it by probes).

use crate::session::ports::AcceptAll;
use crate::session::tests::{answer, at, engine, oa, offer, text};

/// An SDP from `addr` with one `m=` line per entry of `media` (text after `m=`, plus its
/// attribute lines).
fn body(addr: &str, media: &[&str]) -> Vec<u8> {
    let mut s = format!("v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n");
    for m in media {
        s.push_str("m=");
        s.push_str(m);
    }
    s.into_bytes()
}

/// The `a=ptime` values of the reply's SDP, per media section (`-` for none).
fn ptimes(reply: &crate::session::Reply) -> Vec<String> {
    let sdp = text(reply, "sdp");
    let mut out: Vec<String> = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            out.push("-".into());
        } else if let (Some(v), Some(last)) = (line.strip_prefix("a=ptime:"), out.last_mut()) {
            *last = v.to_owned();
        }
    }
    out
}

#[test]
fn ptime_announced_by_either_side_is_written_to_both_until_announced_again() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let a = body("192.0.2.10", &["audio 4000 RTP/AVP 0 8\r\n"]);
    let b30 = body("192.0.2.20", &["audio 5000 RTP/AVP 0\r\na=ptime:30\r\n"]);
    let r = offer(&mut e, &mut b, at(0), oa("c", "A", None, None, a.clone()));
    assert_eq!(ptimes(&r), ["-"]);
    let r = answer(&mut e, &mut b, at(1), oa("c", "A", Some("B"), None, b30));
    assert_eq!(ptimes(&r), ["30"]);
    // A re-offer without ptime carries the one the answerer announced.
    let r = offer(&mut e, &mut b, at(2), oa("c", "A", Some("B"), None, a));
    assert_eq!(ptimes(&r), ["30"]);
}

#[test]
fn answer_without_ptime_gets_the_offers() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let a = body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\na=ptime:20\r\n"]);
    let bb = body("192.0.2.20", &["audio 5000 RTP/AVP 0\r\n"]);
    let r = offer(&mut e, &mut b, at(0), oa("c", "A", None, None, a));
    assert_eq!(ptimes(&r), ["20"]);
    let r = answer(&mut e, &mut b, at(1), oa("c", "A", Some("B"), None, bb));
    assert_eq!(ptimes(&r), ["20"]);
}

#[test]
fn ptime_is_kept_per_media_section() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let video = "video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    let a = body(
        "192.0.2.10",
        &["audio 4000 RTP/AVP 0\r\na=ptime:20\r\n", video],
    );
    let bb = body(
        "192.0.2.20",
        &[
            "audio 5000 RTP/AVP 0\r\n",
            "video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=ptime:33\r\n",
        ],
    );
    let r = offer(&mut e, &mut b, at(0), oa("c", "A", None, None, a.clone()));
    assert_eq!(ptimes(&r), ["20", "-"]);
    let r = answer(&mut e, &mut b, at(1), oa("c", "A", Some("B"), None, bb));
    assert_eq!(ptimes(&r), ["20", "33"]);
    let r = offer(&mut e, &mut b, at(2), oa("c", "A", Some("B"), None, a));
    assert_eq!(ptimes(&r), ["20", "33"]);
}

/// The m= line and the fmtp lines of a reply's SDP.
fn codecs(reply: &crate::session::Reply) -> Vec<String> {
    text(reply, "sdp")
        .lines()
        .filter(|l| l.starts_with("m=") || l.starts_with("a=fmtp"))
        .map(|l| match l.strip_prefix("m=") {
            // Without the port.
            Some(m) => m
                .split(' ')
                .filter(|t| t.parse::<u16>().map_or(true, |n| n < 1000))
                .collect::<Vec<_>>()
                .join(" "),
            None => l.to_owned(),
        })
        .collect()
}

#[test]
fn answer_after_a_codec_strip_carries_the_offerers_telephone_event() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let a = body(
        "192.0.2.10",
        &["audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"],
    );
    let mut p = oa("c", "A", None, None, a.clone());
    p.codec.strip = vec!["PCMU".into()];
    let r = offer(&mut e, &mut b, at(0), p);
    assert_eq!(codecs(&r), ["audio RTP/AVP 8 101", "a=fmtp:101 0-16"]);
    // The answerer lists telephone-event first, with its own events, and PCMU it was not
    // offered: rtpengine answers with PCMA, then the offerer's telephone-event.
    let bb = body(
        "192.0.2.20",
        &["audio 5000 RTP/AVP 101 0 8\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"],
    );
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "A", Some("B"), None, bb.clone()),
    );
    assert_eq!(codecs(&r), ["audio RTP/AVP 8 101", "a=fmtp:101 0-16"]);

    // Without a codec filter the answerer's definition and order stand.
    let r = offer(&mut e, &mut b, at(2), oa("c2", "A", None, None, a));
    assert_eq!(codecs(&r), ["audio RTP/AVP 8 0 101", "a=fmtp:101 0-16"]);
    let r = answer(&mut e, &mut b, at(3), oa("c2", "A", Some("B"), None, bb));
    assert_eq!(codecs(&r), ["audio RTP/AVP 101 0 8", "a=fmtp:101 0-15"]);
}

#[test]
fn malformed_sdp_gets_rtpengines_error_reasons_and_leaves_no_call() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let o = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n";
    let cases = [
        // No address for a media section (a rejected one too).
        (
            format!("{o}t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
            "Incomplete SDP specification",
        ),
        (
            format!("{o}t=0 0\r\nm=audio 0 RTP/AVP 0\r\n"),
            "Incomplete SDP specification",
        ),
        // An RTP format that is not a payload type.
        (
            format!("{o}c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 200\r\n"),
            "Incomplete SDP specification",
        ),
        (
            format!("{o}c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP abc\r\n"),
            "Incomplete SDP specification",
        ),
        // Nothing to relay.
        (
            format!("{o}c=IN IP4 192.0.2.10\r\nt=0 0\r\n"),
            "Error rewriting SDP",
        ),
        // An address that is not one.
        (
            format!("{o}c=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"),
            "Failed to parse SDP",
        ),
    ];
    for (sdp, reason) in cases {
        let r = offer(
            &mut e,
            &mut b,
            at(0),
            oa("c", "A", None, None, sdp.clone().into_bytes()),
        );
        assert_eq!(text(&r, "result"), "error", "{sdp}");
        assert_eq!(text(&r, "error-reason"), reason, "{sdp}");
        assert_eq!(e.call_count(), 0, "{sdp}");
    }
    // Non-RTP formats are not payload types, and need not be.
    let t38 = format!("{o}c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=image 4000 udptl t38\r\n");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, t38.into_bytes()),
    );
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
}

#[test]
fn sdp_errors_come_before_the_call_lookup_except_an_unwritable_body() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let o = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\n";
    let no_c = format!("{o}t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n");
    let r = answer(
        &mut e,
        &mut b,
        at(0),
        oa("nope", "A", Some("B"), None, no_c.into_bytes()),
    );
    assert_eq!(text(&r, "error-reason"), "Incomplete SDP specification");
    let no_m = format!("{o}c=IN IP4 192.0.2.10\r\nt=0 0\r\n");
    let r = answer(
        &mut e,
        &mut b,
        at(0),
        oa("nope", "A", Some("B"), None, no_m.into_bytes()),
    );
    assert_eq!(text(&r, "error-reason"), "Unknown call-id");
}

#[test]
fn media_echo_chooses_each_flows_egress() {
    use crate::session::actions::MediaAction;
    use crate::session::command::MediaEcho;
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa(
        "c",
        "A",
        None,
        None,
        body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\n"]),
    );
    p.media_echo = Some(MediaEcho::Forward);
    offer(&mut e, &mut b, at(0), p);
    let bb = body("192.0.2.20", &["audio 5000 RTP/AVP 0\r\n"]);
    answer(&mut e, &mut b, at(1), oa("c", "A", Some("B"), None, bb));
    // The last word on each flow: (expected source, flow, egress).
    let mut flows = std::collections::HashMap::new();
    while let Some(a) = e.poll_action() {
        if let MediaAction::Open {
            flow,
            egress,
            latch,
            ..
        }
        | MediaAction::Update {
            flow,
            egress,
            latch,
            ..
        } = a
        {
            flows.insert(flow, (latch.expected, egress));
        }
    }
    let from = |addr: &str| -> Vec<_> {
        let addr: std::net::IpAddr = addr.parse().expect("ip");
        flows
            .iter()
            .filter(|(_, (exp, _))| exp.is_some_and(|x| x.ip() == addr))
            .map(|(flow, (_, egress))| (*flow, *egress))
            .collect()
    };
    // The callee's RTP and RTCP go back out of their own sockets; the caller's go nowhere.
    let callee = from("192.0.2.20");
    assert_eq!(callee.len(), 2, "{flows:?}");
    assert!(
        callee.iter().all(|(flow, egress)| *egress == Some(*flow)),
        "{callee:?}"
    );
    let caller = from("192.0.2.10");
    assert_eq!(caller.len(), 2, "{flows:?}");
    assert!(
        caller.iter().all(|(_, egress)| egress.is_none()),
        "{caller:?}"
    );
}

/// The `a=mid` values of a reply's SDP.
fn mids(reply: &crate::session::Reply) -> Vec<String> {
    text(reply, "sdp")
        .lines()
        .filter_map(|l| l.strip_prefix("a=mid:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn media_ids_are_kept_per_side_as_rtpengine_keeps_them() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let a = |mid: &str| {
        let m = if mid.is_empty() {
            "audio 4000 RTP/AVP 0\r\n".to_owned()
        } else {
            format!("audio 4000 RTP/AVP 0\r\na=mid:{mid}\r\n")
        };
        body("192.0.2.10", &[&m])
    };
    let bb = |mid: &str| {
        let m = if mid.is_empty() {
            "audio 5000 RTP/AVP 0\r\n".to_owned()
        } else {
            format!("audio 5000 RTP/AVP 0\r\na=mid:{mid}\r\n")
        };
        body("192.0.2.20", &[&m])
    };
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, a("audio1  ")),
    );
    assert_eq!(mids(&r), ["audio1  "]);
    // An answer without a=mid: the offerer still gets its own.
    let r = answer(&mut e, &mut b, at(1), oa("c", "A", Some("B"), None, bb("")));
    assert_eq!(mids(&r), ["audio1  "]);
    // The callee keeps the ID it was given first; the caller's changes.
    let r = offer(
        &mut e,
        &mut b,
        at(2),
        oa("c", "A", Some("B"), None, a("changed")),
    );
    assert_eq!(mids(&r), ["audio1  "]);
    let r = answer(
        &mut e,
        &mut b,
        at(3),
        oa("c", "A", Some("B"), None, bb("other")),
    );
    assert_eq!(mids(&r), ["changed"]);
    let r = offer(
        &mut e,
        &mut b,
        at(4),
        oa("c", "B", Some("A"), None, bb("other")),
    );
    assert_eq!(mids(&r), ["changed"]);

    // `generate mid` names a section that has none by its position.
    let mut p = oa("c2", "A", None, None, a(""));
    p.flags.generate_mid = true;
    let r = offer(&mut e, &mut b, at(5), p);
    assert_eq!(mids(&r), ["1"]);
}

#[test]
fn original_sendrecv_keeps_the_direction_of_a_null_address() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let held = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\na=sendrecv\r\n".to_vec();
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("plain", "A", None, None, held.clone()),
    );
    assert!(
        text(&r, "sdp").contains("a=sendonly\r\n"),
        "{}",
        text(&r, "sdp")
    );
    let mut p = oa("orig", "A", None, None, held);
    p.flags.original_sendrecv = true;
    let r = offer(&mut e, &mut b, at(0), p);
    let sdp = text(&r, "sdp");
    assert!(
        sdp.contains("a=sendrecv\r\n") && !sdp.contains("a=sendonly"),
        "{sdp}"
    );
}

#[test]
fn replace_username_and_session_name_keep_the_first_ones() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let sdp = |user: &str, name: &str| {
        format!("v=0\r\no={user} 1 1 IN IP4 192.0.2.10\r\ns={name}\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n").into_bytes()
    };
    let send = |e: &mut crate::session::Engine, b: &mut AcceptAll, user: &str, name: &str| {
        let mut p = oa("c", "A", None, None, sdp(user, name));
        p.replace.username = true;
        p.replace.session_name = true;
        text(&offer(e, b, at(0), p), "sdp")
    };
    let first = send(&mut e, &mut b, "test", "first");
    assert!(
        first.contains("o=test 1 1 ") && first.contains("s=first\r\n"),
        "{first}"
    );
    let again = send(&mut e, &mut b, "test2", "second");
    assert!(
        again.contains("o=test 1 1 ") && again.contains("s=first\r\n"),
        "{again}"
    );
    // Without the flags, the new ones pass.
    let r = offer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "A", None, None, sdp("test3", "third")),
    );
    let plain = text(&r, "sdp");
    assert!(
        plain.contains("o=test3 ") && plain.contains("s=third\r\n"),
        "{plain}"
    );
}

#[test]
fn endpoint_learning_given_for_a_call_is_its_flows_mode() {
    use crate::flow::latch::EndpointLearning;
    use crate::session::actions::MediaAction;
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa(
        "c",
        "A",
        None,
        None,
        body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\n"]),
    );
    p.endpoint_learning = Some(EndpointLearning::Off);
    offer(&mut e, &mut b, at(0), p);
    let modes: Vec<EndpointLearning> = std::iter::from_fn(|| e.poll_action())
        .filter_map(|a| match a {
            MediaAction::Open { latch, .. } => Some(latch.learning),
            _ => None,
        })
        .collect();
    assert!(
        !modes.is_empty() && modes.iter().all(|m| *m == EndpointLearning::Off),
        "{modes:?}"
    );
    // Another call keeps the daemon's mode.
    offer(
        &mut e,
        &mut b,
        at(0),
        oa(
            "d",
            "A",
            None,
            None,
            body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\n"]),
        ),
    );
    assert!(std::iter::from_fn(|| e.poll_action()).all(|a| match a {
        MediaAction::Open { latch, .. } => latch.learning == EndpointLearning::Heuristic,
        _ => true,
    }));
}
