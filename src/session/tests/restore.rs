//! Calls written to the store and restored into a new engine (a restart).

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use super::common::{actions, answer, at, engine, media_port, oa, offer, production, sdp, Drive};
use crate::session::actions::MediaAction;
use crate::session::command::{CallRef, Command};
use crate::session::ports::AcceptAll;
use crate::session::{Engine, RestoreError};
use crate::store::CallRecord;

/// A two-party call, answered, whose caller's media was latched on a NAT'd source.
fn answered_call(e: &mut Engine, b: &mut AcceptAll, id: &str) -> (u16, u16) {
    let to_b = media_port(&offer(
        e,
        b,
        at(0),
        oa(id, "A", None, None, sdp("192.0.2.10", 4000)),
    ));
    let to_a = media_port(&answer(
        e,
        b,
        at(0),
        oa(id, "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    ));
    (to_b, to_a)
}

fn record(e: &Engine, id: &str) -> CallRecord {
    CallRecord::from_call(e.call(id).expect("call"), "node-a", 1)
}

fn opens(actions: &[MediaAction]) -> Vec<(SocketAddr, Option<SocketAddr>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            MediaAction::Open { local, latch, .. } => Some((*local, latch.restored)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_restored_call_holds_its_ports_and_opens_its_flows_latched() {
    let (mut old, mut b) = (engine(), AcceptAll::default());
    let (to_b, to_a) = answered_call(&mut old, &mut b, "c1");
    let nat: SocketAddr = "198.51.100.77:40000".parse().unwrap();
    let flow = old.call("c1").unwrap().legs[0].medias[0].rtp.flow;
    old.on_learned(flow, nat);
    old.call("c1").unwrap().legs[0].medias[0]
        .rtp
        .counters
        .packets
        .store(42, Relaxed);
    let rec = record(&old, "c1");
    let text = rec.encode();

    let (mut new, mut b2) = (engine(), AcceptAll::default());
    let rec = CallRecord::decode(&text).expect("decodes");
    let r = new.restore(at(100), &[rec], &mut b2);
    assert_eq!((r.calls, r.failed.len()), (1, 0));
    // Both pairs bound again, at the same ports.
    let bound: Vec<u16> = b2.bound.iter().map(|a| a.port()).collect();
    assert!(bound.contains(&to_b) && bound.contains(&to_a), "{bound:?}");
    // Four flows open; the caller's RTP (to the pair it sends to) starts latched on its NAT'd
    // source.
    let opened = opens(&actions(&mut new));
    assert_eq!(opened.len(), 4, "{opened:?}");
    assert!(opened.contains(&(
        SocketAddr::new("203.0.113.1".parse().unwrap(), to_a),
        Some(nat)
    )));
    // Counters go on from the stored ones.
    let call = new.call("c1").unwrap();
    assert_eq!(
        call.legs[0].medias[0].rtp.counters.packets.load(Relaxed),
        42
    );
    assert_eq!(call.legs[0].tag.as_deref(), Some("A"));
    assert_eq!(call.legs[1].tag.as_deref(), Some("B"));
    // A new call does not get the restored ports.
    let mut fresh = AcceptAll::default();
    let other = media_port(&offer(
        &mut new,
        &mut fresh,
        at(101),
        oa("c2", "X", None, None, sdp("192.0.2.30", 6000)),
    ));
    assert!(other != to_b && other != to_a);
}

#[test]
fn a_restored_call_answers_a_re_invite_on_the_same_ports() {
    let (mut old, mut b) = (engine(), AcceptAll::default());
    let (to_b, to_a) = answered_call(&mut old, &mut b, "c1");
    let rec = record(&old, "c1");
    let (mut new, mut b2) = (engine(), AcceptAll::default());
    new.restore(at(100), &[rec], &mut b2);
    let again = media_port(&offer(
        &mut new,
        &mut b2,
        at(101),
        oa("c1", "A", Some("B"), None, sdp("192.0.2.10", 4000)),
    ));
    assert_eq!(again, to_b);
    let again = media_port(&answer(
        &mut new,
        &mut b2,
        at(101),
        oa("c1", "A", Some("B"), None, sdp("192.0.2.20", 5000)),
    ));
    assert_eq!(again, to_a);
    // And a delete ends it.
    let del = Command::Delete(crate::session::command::Delete {
        call: CallRef {
            call_id: "c1".into(),
            ..CallRef::default()
        },
        ..Default::default()
    });
    assert_eq!(new.command(at(102), del, &mut b2).result(), "ok");
}

#[test]
fn a_restored_call_without_media_times_out_from_the_restore() {
    let (mut old, mut b) = (engine(), AcceptAll::default());
    answered_call(&mut old, &mut b, "c1");
    let rec = record(&old, "c1");
    let (mut new, mut b2) = (engine(), AcceptAll::default());
    new.restore(at(1000), &[rec], &mut b2);
    new.tick_with(at(1059), &mut b2);
    assert!(
        new.call("c1").is_some(),
        "timeout (60 s) counts from the restore"
    );
    new.tick_with(at(1061), &mut b2);
    assert!(new.call("c1").is_none());
    assert!(b2.bound.is_empty(), "its ports are closed");
}

#[test]
fn forged_records_are_refused_before_anything_is_bound() {
    let (mut old, mut b) = (engine(), AcceptAll::default());
    let (_, to_a) = answered_call(&mut old, &mut b, "c1");
    answered_call(&mut old, &mut b, "c2");
    let good = record(&old, "c1");

    // Another call claiming c1's pair: neither gets it.
    let mut thief = record(&old, "c2");
    thief.legs[0].medias[0].local = good.legs[0].medias[0].local;
    // A port pair on an address this relay does not have.
    let mut foreign = record(&old, "c1");
    foreign.call_id = "c3".into();
    if let Some(l) = foreign.legs[0].medias[0].local.as_mut() {
        l.0 = "192.0.2.250".parse().unwrap();
    }
    // A peer index out of range.
    let mut broken = record(&old, "c1");
    broken.call_id = "c4".into();
    broken.legs[0].peer = Some(9);
    // Too many legs.
    let mut big = record(&old, "c1");
    big.call_id = "c5".into();
    big.legs = (0..40).map(|_| big.legs[0].clone()).collect();

    let (mut new, mut b2) = (engine(), AcceptAll::default());
    let r = new.restore(at(100), &[good, thief, foreign, broken, big], &mut b2);
    assert_eq!(r.calls, 0, "{r:?}");
    let why: Vec<_> = r
        .failed
        .iter()
        .map(|(id, e)| (id.as_str(), e.clone()))
        .collect();
    assert!(why.contains(&(
        "c1",
        RestoreError::Claimed("203.0.113.1".parse().unwrap(), to_a)
    )));
    assert!(why
        .iter()
        .any(|(id, e)| *id == "c3" && matches!(e, RestoreError::NotLocal(_))));
    assert!(why.contains(&("c4", RestoreError::BadLegIndex)));
    assert!(why.contains(&("c5", RestoreError::TooBig)));
    new.sync_ports(&mut b2);
    assert!(b2.bound.is_empty(), "{:?}", b2.bound);
}

#[test]
fn a_call_with_a_pair_that_cannot_be_bound_lets_go_of_the_others() {
    let (mut old, mut b) = (engine(), AcceptAll::default());
    let (to_b, to_a) = answered_call(&mut old, &mut b, "c1");
    let rec = record(&old, "c1");
    // Another program holds `to_a` now.
    let mut b2 = AcceptAll::default();
    b2.bound
        .insert(SocketAddr::new("203.0.113.1".parse().unwrap(), to_a));
    let mut new = engine();
    let r = new.restore(at(100), &[rec], &mut b2);
    assert_eq!(r.calls, 0);
    assert!(matches!(r.failed[0].1, RestoreError::Unbound(_, p) if p == to_a));
    new.sync_ports(&mut b2);
    let held: Vec<u16> = b2.bound.iter().map(|a| a.port()).collect();
    assert_eq!(held, vec![to_a], "to_b ({to_b}) was closed again");
    assert!(actions(&mut new).is_empty());
}

#[test]
fn a_call_the_relay_has_is_left_alone() {
    let (mut e, mut b) = (engine(), AcceptAll::default());
    answered_call(&mut e, &mut b, "c1");
    let rec = record(&e, "c1");
    actions(&mut e);
    let r = e.restore(at(5), &[rec], &mut b);
    assert_eq!((r.calls, r.present), (0, 1));
    assert!(actions(&mut e).is_empty());
}

#[test]
fn a_record_aimed_at_the_relays_own_sockets_is_learnt_instead() {
    let (mut old, mut b) = (engine(), AcceptAll::default());
    let (to_b, to_a) = answered_call(&mut old, &mut b, "c1");
    let mut rec = record(&old, "c1");
    // A forged record: A's media to go to B's relay port (a loop), and "learnt" there too.
    let own: SocketAddr = SocketAddr::new("203.0.113.1".parse().unwrap(), to_b);
    let m = &mut rec.legs[0].medias[0];
    m.remote_rtp = Some(own);
    m.learned_rtp = Some(own);
    let (mut new, mut b2) = (production(), AcceptAll::default());
    assert_eq!(new.restore(at(100), &[rec], &mut b2).calls, 1);
    let a_local = SocketAddr::new("203.0.113.1".parse().unwrap(), to_a);
    let opened: Vec<_> = actions(&mut new)
        .into_iter()
        .filter_map(|a| match a {
            MediaAction::Open { local, latch, .. } if local == a_local => Some(latch),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1);
    assert_eq!((opened[0].expected, opened[0].restored), (None, None));
}
