//! Pairs that follow the far end across re-INVITEs.

use super::common::{answer, at, engine, media_port, oa, offer, sdp, Drive};
use crate::session::command::{CallRef, Command, Delete};
use crate::session::ports::AcceptAll;

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
    e.command(at(3), del, &mut b);
    assert!(b.bound.is_empty(), "{:?}", b.bound);
}
