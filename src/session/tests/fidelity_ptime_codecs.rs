//! Scenarios where rtpengine's answer depends on earlier messages of the call: the SDP text
//! must come out as rtpengine 10.5 writes it (checked against it by probes).
//! Here: `a=ptime` and the codecs after a strip.

use super::common::{answer, at, body, engine, oa, offer, text};
use crate::session::ports::AcceptAll;

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
