//! Which local interface and address family each side of a call gets.

use super::common::{answer, at, engine, iface, oa, offer, sdp, text};
use crate::session::ports::AcceptAll;
use crate::session::{Engine, EngineConfig};

#[test]
fn address_family_switches_the_receiver_side_to_ipv6() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa("c", "A", None, None, sdp("192.0.2.10", 4000));
    p.address_family = Some(crate::sdp::Family::V6);
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP6 2001:db8:4321::1\r\n"),
        "{r:?}"
    );
}

#[test]
fn direction_picks_interfaces_and_unknown_ones_fall_back() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    let mut p = oa("c", "A", None, None, sdp("192.0.2.10", 4000));
    p.direction = Some(("default".into(), "pub".into()));
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP4 198.51.100.9\r\n"),
        "{r:?}"
    );
    // A name the relay does not have: `ok`, on the default interface of the SDP's family.
    let mut p = oa("c2", "A", None, None, sdp("192.0.2.10", 4000));
    p.direction = Some(("default".into(), "nowhere".into()));
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP4 203.0.113.1\r\n"),
        "{r:?}"
    );
    // rtpengine's legacy names: `external` is IPv6 and `internal` IPv4.
    let mut p = oa("c3", "A", None, None, sdp("192.0.2.10", 4000));
    p.direction = Some(("external".into(), "internal".into()));
    let r = offer(&mut e, &mut b, at(0), p);
    assert!(
        text(&r, "sdp").contains("c=IN IP4 203.0.113.1\r\n"),
        "{r:?}"
    );
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c3", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    );
    assert!(
        text(&r, "sdp").contains("c=IN IP6 2001:db8:4321::1\r\n"),
        "{r:?}"
    );
}

#[test]
fn no_direction_uses_the_first_interface_of_the_sdp_family() {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("a", "203.0.113.1"), iface("b", "2001:db8:4321::1")],
        port_min: 30000,
        port_max: 30099,
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    let body = "v=0\r\no=- 1 1 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "A", None, None, body.as_bytes().to_vec()),
    );
    assert!(
        text(&r, "sdp").contains("c=IN IP6 2001:db8:4321::1\r\n"),
        "{r:?}"
    );
}
