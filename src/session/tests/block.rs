//! `block media` and `unblock media`: which participant's media a selection stops.

use super::common::{actions, answer, at, engine, oa, offer, sdp, text, Drive};
use crate::session::actions::MediaAction;
use crate::session::command::{CallRef, Command, MediaSelect};
use crate::session::ports::AcceptAll;
use crate::session::{Engine, Reply};

/// `block media` (`on`) or `unblock media`.
fn block(e: &mut Engine, b: &mut AcceptAll, on: bool, m: MediaSelect) -> Reply {
    let cmd = if on {
        Command::BlockMedia(m)
    } else {
        Command::UnblockMedia(m)
    };
    e.command(at(9), cmd, b)
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
