//! Relay-wide limits: the port range and the session limit (per-call bounds are in limits.rs).

use super::common::{at, iface, oa, offer, sdp, text};
use crate::session::ports::AcceptAll;
use crate::session::{Engine, EngineConfig};

#[test]
fn port_exhaustion_is_an_ng_error() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        port_min: 30000,
        port_max: 30003,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c1", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    assert_eq!(text(&r, "result"), "ok");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c2", "A", None, None, sdp("192.0.2.10", 4000)),
    );
    assert_eq!(text(&r, "error-reason"), "Ran out of ports");
}

#[test]
fn session_limit_refuses_new_calls_only() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        max_sessions: 1,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    assert_eq!(
        text(
            &offer(
                &mut e,
                &mut b,
                at(0),
                oa("c1", "A", None, None, sdp("192.0.2.10", 4000))
            ),
            "result"
        ),
        "ok"
    );
    assert_eq!(
        text(
            &offer(
                &mut e,
                &mut b,
                at(0),
                oa("c2", "A", None, None, sdp("192.0.2.10", 4000))
            ),
            "error-reason"
        ),
        "Parallel session limit reached"
    );
    assert_eq!(
        text(
            &offer(
                &mut e,
                &mut b,
                at(1),
                oa("c1", "A", None, None, sdp("192.0.2.10", 4000))
            ),
            "result"
        ),
        "ok"
    );
}

#[test]
fn session_limit_with_load_limit_support_gets_a_load_limit_reply() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        max_sessions: 0,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let mut p = oa("c1", "A", None, None, sdp("192.0.2.10", 4000));
    p.supports_load_limit = true;
    let r = offer(&mut e, &mut b, at(0), p);
    assert_eq!(text(&r, "result"), "load limit");
    assert_eq!(e.call_count(), 0);
}
