//! Operator commands: the session list, `terminate`, and settings changed at run time.

use super::common::{at, engine, oa, offer, sdp, Drive};
use crate::session::actions::MediaAction;
use crate::session::command::{Command, Setting, Terminate};
use crate::session::ports::AcceptAll;
use crate::session::Reply;

#[test]
fn sessions_list_every_call_oldest_first() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    assert_eq!(
        e.command(at(0), Command::Sessions, &mut b),
        Reply::Sessions(vec![])
    );
    offer(
        &mut e,
        &mut b,
        at(1),
        oa("one", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    offer(
        &mut e,
        &mut b,
        at(2),
        oa("two", "A", None, None, sdp("192.0.2.10", 4002)),
    );
    let Reply::Sessions(list) = e.command(at(3), Command::Sessions, &mut b) else {
        panic!("sessions reply");
    };
    let ids: Vec<_> = list.iter().map(|s| s.call_id.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);
    assert!(list.iter().all(|s| !s.deleted));
}

#[test]
fn terminate_ends_calls_at_once_and_closes_their_flows() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("one", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("two", "A", None, None, sdp("192.0.2.10", 4002)),
    );
    while e.poll_action().is_some() {}
    let r = e.command(
        at(1),
        Command::Terminate(Terminate::Call("nope".into())),
        &mut b,
    );
    assert!(r.is_error(), "{r:?}");
    let r = e.command(
        at(1),
        Command::Terminate(Terminate::Call("one".into())),
        &mut b,
    );
    assert_eq!(r, Reply::Terminated(1));
    assert_eq!(e.call_count(), 1, "no delete-delay");
    assert!(std::iter::from_fn(|| e.poll_action()).any(|a| matches!(a, MediaAction::Close { .. })));
    let r = e.command(at(1), Command::Terminate(Terminate::All), &mut b);
    assert_eq!(r, Reply::Terminated(1));
    assert_eq!(e.call_count(), 0);
    assert_eq!(e.snapshot(at(1)).totals.calls_terminated, 2);
}

#[test]
fn settings_change_at_run_time() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let get = |e: &mut crate::session::Engine, b: &mut AcceptAll, s| {
        e.command(at(0), Command::GetSetting(s), b)
    };
    assert_eq!(
        get(&mut e, &mut b, Setting::MaxSessions),
        Reply::Setting(-1)
    );
    assert_eq!(
        e.command(at(0), Command::SetSetting(Setting::MaxSessions, 1), &mut b),
        Reply::Ok
    );
    assert_eq!(get(&mut e, &mut b, Setting::MaxSessions), Reply::Setting(1));
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("one", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("two", "A", None, None, sdp("192.0.2.10", 4002)),
    );
    assert!(r.is_error(), "the new limit applies: {r:?}");
    e.command(at(0), Command::SetSetting(Setting::Timeout, 90), &mut b);
    assert_eq!(get(&mut e, &mut b, Setting::Timeout), Reply::Setting(90));
    assert_eq!(
        get(&mut e, &mut b, Setting::FinalTimeout),
        Reply::Setting(0)
    );
    e.command(at(0), Command::SetSetting(Setting::FinalTimeout, 7), &mut b);
    assert_eq!(
        get(&mut e, &mut b, Setting::FinalTimeout),
        Reply::Setting(7)
    );
}
