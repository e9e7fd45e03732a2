//! Scenarios where rtpengine's answer depends on earlier messages of the call: the SDP text
//! must come out as rtpengine 10.5 writes it (checked against it by probes).
//! Here: the `error-reason` of a bad SDP, and which check comes first.

use super::common::{answer, at, engine, oa, offer, text};
use crate::session::ports::AcceptAll;

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
