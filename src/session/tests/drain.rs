//! Drain: `ping` fails and new calls are refused, while the calls already here go on (answer,
//! re-INVITE, delete) until none is left.

use super::common::{answer, at, engine, oa, offer, sdp, text, Drive};
use crate::session::command::{CallRef, Command, Delete, DrainOp};
use crate::session::ports::AcceptAll;
use crate::session::reply::{DrainStatus, Reply};

fn delete(call: &str) -> Command {
    Command::Delete(Delete {
        call: CallRef {
            call_id: call.into(),
            ..CallRef::default()
        },
        ..Delete::default()
    })
}

#[test]
fn ping_answers_pong_until_a_drain_then_an_error() {
    let mut e = engine();
    let mut b = AcceptAll::default();
    assert_eq!(e.command(at(0), Command::Ping, &mut b), Reply::Pong);
    assert!(!e.is_draining());
    let r = e.command(at(1), Command::Drain(DrainOp::Start), &mut b);
    assert_eq!(
        r,
        Reply::Drain(DrainStatus {
            draining: true,
            calls: 0
        })
    );
    let r = e.command(at(2), Command::Ping, &mut b);
    // Kamailio's rtpengine module disables a node whose ping result is not `pong`.
    assert_eq!(text(&r, "result"), "error");
    assert_eq!(
        text(&r, "error-reason"),
        "Relay is draining, not accepting new calls"
    );
    assert!(e.is_drained(), "no calls: drained at once");
}

#[test]
fn new_calls_are_refused_but_existing_ones_go_on_until_deleted() {
    let mut e = engine();
    let mut b = AcceptAll::default();
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("old", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    assert_eq!(text(&r, "result"), "ok");

    e.start_drain();
    assert!(!e.is_drained(), "a call is still up");

    let r = offer(
        &mut e,
        &mut b,
        at(1),
        oa("new", "A", None, None, sdp("192.0.2.10", 4100)),
    );
    assert_eq!(
        text(&r, "error-reason"),
        "Relay is draining, not accepting new calls"
    );
    assert_eq!(e.live_calls(), 1, "the refused offer left nothing behind");

    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("old", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    assert_eq!(text(&r, "result"), "ok", "answer of an existing call");
    // A re-INVITE of the existing call (same call-id) is an offer too.
    let r = offer(
        &mut e,
        &mut b,
        at(2),
        oa("old", "A", Some("B"), None, sdp("192.0.2.11", 4002)),
    );
    assert_eq!(text(&r, "result"), "ok", "re-INVITE of an existing call");
    let r = e.command(at(2), Command::Drain(DrainOp::Status), &mut b);
    assert_eq!(
        r,
        Reply::Drain(DrainStatus {
            draining: true,
            calls: 1
        })
    );

    let r = e.command(at(3), delete("old"), &mut b);
    assert_eq!(text(&r, "result"), "ok");
    assert!(
        e.is_drained(),
        "a deleted call only waits out its delete-delay: drained"
    );
}

#[test]
fn drain_status_does_not_start_a_drain() {
    let mut e = engine();
    let mut b = AcceptAll::default();
    let r = e.command(at(0), Command::Drain(DrainOp::Status), &mut b);
    assert_eq!(
        r,
        Reply::Drain(DrainStatus {
            draining: false,
            calls: 0
        })
    );
    assert!(!e.is_drained());
    assert_eq!(e.command(at(0), Command::Ping, &mut b), Reply::Pong);
}

#[test]
fn clients_that_support_load_limit_get_a_load_limit_reply_for_a_new_call() {
    // Kamailio sends `supports: [load limit]` and tries the next relay on that answer.
    let mut e = engine();
    let mut b = AcceptAll::default();
    e.start_drain();
    let mut p = oa("new", "A", None, None, sdp("192.0.2.10", 4000));
    p.supports_load_limit = true;
    let r = offer(&mut e, &mut b, at(0), p);
    assert_eq!(text(&r, "result"), "load limit");
    assert_eq!(
        text(&r, "message"),
        "Relay is draining, not accepting new calls"
    );
}
