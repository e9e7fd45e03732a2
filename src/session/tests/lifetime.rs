//! How calls end: `delete` with its delay, timeouts of silent and unanswered calls, and the
//! timer scan.

use super::common::{answer, at, engine, oa, offer, sdp, text, Drive};
use crate::session::actions::MediaAction;
use crate::session::command::{CallRef, Command, Delete};
use crate::session::ports::AcceptAll;
use crate::session::Reply;
use crate::time::{Millis, Now};

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
    let r = e.command(at(1), del.clone(), &mut b);
    assert_eq!(text(&r, "result"), "ok");
    assert!(matches!(r, Reply::Call(_)), "first delete reports the call");
    let r2 = e.command(at(2), del.clone(), &mut b);
    assert_eq!(r2, Reply::Ok, "second delete: plain ok");
    e.tick_with(at(30), &mut b);
    assert_eq!(e.call_count(), 1, "still inside delete-delay");
    e.tick_with(at(31), &mut b);
    assert_eq!(e.call_count(), 0);
    assert!(b.bound.is_empty(), "ports released");
    let closes = std::iter::from_fn(|| e.poll_action())
        .filter(|a| matches!(a, MediaAction::Close { .. }))
        .count();
    assert_eq!(closes, 4);
    let r3 = e.command(at(40), del, &mut b);
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
    e.tick_with(ms(59_500), &mut b);
    // 60 s without media passes at 60 000 ms, but the next scan is due at 60 500.
    e.tick_with(ms(60_100), &mut b);
    assert_eq!(e.call_count(), 1, "scanned again within the second");
    e.tick_with(ms(60_500), &mut b);
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
    e.tick_with(at(59), &mut b);
    assert_eq!(e.call_count(), 2);
    e.tick_with(at(60), &mut b);
    assert_eq!(
        e.call_count(),
        1,
        "answered call ended after 60 s without media"
    );
    e.tick_with(at(120), &mut b);
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
    e.tick_with(at(100), &mut b);
    assert_eq!(e.call_count(), 1);
    e.tick_with(at(110), &mut b);
    assert_eq!(e.call_count(), 0);
}
