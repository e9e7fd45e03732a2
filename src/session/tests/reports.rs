//! `list` and `query`.

use super::common::{at, engine, oa, offer, sdp, Drive};
use crate::session::command::{CallRef, Command};
use crate::session::ports::AcceptAll;
use crate::session::Reply;

#[test]
fn list_and_query_report_calls() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c1", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    offer(
        &mut e,
        &mut b,
        at(1),
        oa("c2", "A", None, None, sdp("192.0.2.10", 4002)),
    );
    let l = e.command(at(2), Command::List { limit: Some(1) }, &mut b);
    assert_eq!(l, Reply::List(vec!["c1".into()]));
    let q = e.command(
        at(2),
        Command::Query(CallRef {
            call_id: "c1".into(),
            ..CallRef::default()
        }),
        &mut b,
    );
    let Reply::Call(q) = q else { panic!("{q:?}") };
    let a = q.tags.iter().find(|t| t.tag == "A").expect("tag A");
    let streams = &a.medias[0].streams;
    assert_eq!(streams.len(), 2);
    let ep = streams[0].endpoint.expect("endpoint");
    assert_eq!(ep.ip().to_string(), "192.0.2.10");
}
