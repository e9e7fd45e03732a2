//! Where each flow sends (`media echo`) and how it learns its source (`endpoint learning`).

use super::common::{answer, at, body, engine, oa, offer};
use crate::session::ports::AcceptAll;

#[test]
fn media_echo_chooses_each_flows_egress() {
    use crate::session::actions::MediaAction;
    use crate::session::command::MediaEcho;
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa(
        "c",
        "A",
        None,
        None,
        body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\n"]),
    );
    p.media_echo = Some(MediaEcho::Forward);
    offer(&mut e, &mut b, at(0), p);
    let bb = body("192.0.2.20", &["audio 5000 RTP/AVP 0\r\n"]);
    answer(&mut e, &mut b, at(1), oa("c", "A", Some("B"), None, bb));
    // The last word on each flow: (expected source, flow, egress).
    let mut flows = std::collections::HashMap::new();
    while let Some(a) = e.poll_action() {
        if let MediaAction::Open {
            flow,
            egress,
            latch,
            ..
        }
        | MediaAction::Update {
            flow,
            egress,
            latch,
            ..
        } = a
        {
            flows.insert(flow, (latch.expected, egress));
        }
    }
    let from = |addr: &str| -> Vec<_> {
        let addr: std::net::IpAddr = addr.parse().expect("ip");
        flows
            .iter()
            .filter(|(_, (exp, _))| exp.is_some_and(|x| x.ip() == addr))
            .map(|(flow, (_, egress))| (*flow, *egress))
            .collect()
    };
    // The callee's RTP and RTCP go back out of their own sockets; the caller's go nowhere.
    let callee = from("192.0.2.20");
    assert_eq!(callee.len(), 2, "{flows:?}");
    assert!(
        callee.iter().all(|(flow, egress)| *egress == Some(*flow)),
        "{callee:?}"
    );
    let caller = from("192.0.2.10");
    assert_eq!(caller.len(), 2, "{flows:?}");
    assert!(
        caller.iter().all(|(_, egress)| egress.is_none()),
        "{caller:?}"
    );
}

#[test]
fn endpoint_learning_given_for_a_call_is_its_flows_mode() {
    use crate::flow::latch::EndpointLearning;
    use crate::session::actions::MediaAction;
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa(
        "c",
        "A",
        None,
        None,
        body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\n"]),
    );
    p.endpoint_learning = Some(EndpointLearning::Off);
    offer(&mut e, &mut b, at(0), p);
    let modes: Vec<EndpointLearning> = std::iter::from_fn(|| e.poll_action())
        .filter_map(|a| match a {
            MediaAction::Open { latch, .. } => Some(latch.learning),
            _ => None,
        })
        .collect();
    assert!(
        !modes.is_empty() && modes.iter().all(|m| *m == EndpointLearning::Off),
        "{modes:?}"
    );
    // Another call keeps the daemon's mode.
    offer(
        &mut e,
        &mut b,
        at(0),
        oa(
            "d",
            "A",
            None,
            None,
            body("192.0.2.10", &["audio 4000 RTP/AVP 0\r\n"]),
        ),
    );
    assert!(std::iter::from_fn(|| e.poll_action()).all(|a| match a {
        MediaAction::Open { latch, .. } => latch.learning == EndpointLearning::Heuristic,
        _ => true,
    }));
}
