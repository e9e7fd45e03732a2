//! `record call` and the recording commands: taps on the flows and spool entries.

use super::common::{actions, answer, at, engine, oa, offer, sdp, text, Drive};
use crate::session::actions::MediaAction;
use crate::session::command::{CallRef, Command, Delete};
use crate::session::ports::AcceptAll;

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
    e.command(
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
    let r = e.command(at(2), Command::StartRecording(cref.clone()), &mut b);
    assert_eq!(text(&r, "result"), "ok");
    let acts = actions(&mut e);
    assert!(
        matches!(acts.first(), Some(MediaAction::Record { .. })),
        "{acts:?}"
    );
    assert_eq!(taps(&acts, true), 2);
    e.command(at(3), Command::PauseRecording(cref.clone()), &mut b);
    let acts = actions(&mut e);
    assert_eq!((taps(&acts, false), acts.len()), (2, 2), "{acts:?}");
    e.command(at(4), Command::StartRecording(cref.clone()), &mut b);
    actions(&mut e);
    e.command(at(5), Command::StopRecording(cref.clone()), &mut b);
    let acts = actions(&mut e);
    assert_eq!(taps(&acts, false), 2);
    assert!(
        matches!(acts.last(), Some(MediaAction::RecordEnd { .. })),
        "{acts:?}"
    );
    // Stopped: the end of the call has no entry left to finish.
    e.command(
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
    let r = e.command(at(7), Command::StopRecording(cref), &mut b);
    assert_eq!(text(&r, "error-reason"), "Unknown call-id");
}
