//! Scenarios where rtpengine's answer depends on earlier messages of the call: the SDP text
//! must come out as rtpengine 10.5 writes it (checked against it by probes).
//! Here: `a=mid`, the direction of a null address, the o= user name and s= line.

use super::common::{answer, at, body, engine, oa, offer, text};
use crate::session::ports::AcceptAll;

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
