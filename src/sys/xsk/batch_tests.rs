//! Batches of received frames on a veth in a fresh namespace pair: the frames of a batch are
//! viewed together, and each frame's verdict is honoured when the batch is released (the ones
//! marked transmit reach the peer, rewritten in place; the others are recycled, so the UMEM
//! never runs dry). Needs root; without it the test returns.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use super::test_topology::{peer_caller, relay_afxdp, topology, wait_for, PEER, RELAY};
use super::*;
use crate::sys::xdp::tests::can_load;
use crate::wire::frame;

const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_batch_transmits_the_frames_marked_so_and_recycles_the_rest() {
    if !can_load() {
        return;
    }
    let (relay, peer) = topology("rtprelay-xskb");
    let (program, mut xsk) = relay_afxdp(&relay);
    let (caller, _pass) = peer_caller(&peer);
    let mut buf = [0u8; 2048];

    // More rounds than the UMEM has frames: a frame lost by a release would run it dry.
    for round in 0..40u8 {
        for i in 0..4u8 {
            caller.send_to(&[round, i], RELAY).unwrap();
        }
        wait_for(&xsk, 4, Duration::from_secs(2));
        let mut batch = xsk.rx_batch(16);
        assert_eq!(batch.len(), 4, "round {round}");
        assert_eq!(batch.received(), 4);
        {
            // All four at once, each its own bytes.
            let mut all: Vec<&mut [u8]> = batch.frames_mut().collect();
            assert_eq!(all.len(), 4);
            for (i, f) in all.iter_mut().enumerate() {
                let p = frame::parse(f).unwrap();
                assert_eq!(&f[p.payload.clone()], &[round, i as u8]);
                if i % 2 == 0 {
                    assert!(frame::rewrite(
                        f,
                        &p,
                        sa(RELAY),
                        sa(PEER),
                        RELAY_MAC,
                        PEER_MAC
                    ));
                }
            }
        }
        batch.set_verdict(0, Verdict::Transmit);
        batch.set_verdict(2, Verdict::Transmit);
        assert_eq!(batch.verdict(1), Some(Verdict::Recycle));
        assert_eq!(batch.verdict(4), None);
        drop(batch);
        // The two marked, in order; a recycled one sent by mistake shows up in their place
        // (here or in the next round).
        for i in [0, 2] {
            let (len, from) = caller.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..len], from), (&[round, i][..], sa(RELAY)));
        }
    }
    caller
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(caller.recv_from(&mut buf).is_err(), "a recycled frame left");
    // Nothing left behind, and an empty batch is harmless.
    let batch = xsk.rx_batch(16);
    assert!(batch.is_empty());
    drop(batch);
    drop(program);
}
