//! Batches of received frames on a veth in a fresh namespace pair: the frames of a batch are
//! viewed together, and each frame's verdict is honoured when the batch is released (the ones
//! marked transmit reach the peer, rewritten in place; the others are recycled, so the UMEM
//! never runs dry). Needs root; without it the test returns.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use super::*;
use crate::sys::netns::run_in;
use crate::sys::xdp::tests::{can_load, foreign_pass_program, ip, veth_pair, xdp_attach_raw};
use crate::sys::xdp::{ifindex, XdpProgram};
use crate::wire::frame;

const RELAY: &str = "192.0.2.1:30000";
const PEER: &str = "192.0.2.2:4000";
const RELAY_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Wait until `n` frames are in the socket's rx ring (they are not taken off it).
fn wait_for(xsk: &XskSocket, n: u32, wait: Duration) {
    let deadline = Instant::now() + wait;
    while xsk.rx_available() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_batch_transmits_the_frames_marked_so_and_recycles_the_rest() {
    if !can_load() {
        return;
    }
    let (relay, peer) = veth_pair("rtprelay-xskb");
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.2/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "link", "set", "veth1", "up"]);
    for (ns, addr, mac, dev) in [
        (&relay.0, "192.0.2.2", "02:00:00:00:01:02", "veth0"),
        (&peer.0, "192.0.2.1", "02:00:00:00:01:01", "veth1"),
    ] {
        ip(&[
            "-n",
            ns,
            "neigh",
            "add",
            addr,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }
    let (program, mut xsk) = run_in(&relay.0, || {
        let veth0 = ifindex("veth0").unwrap();
        let program = XdpProgram::load_and_attach(&[veth0]).unwrap();
        let xsk = XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        let table = program.table();
        table.set_port_range(30000, 30099).unwrap();
        table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
        table.set_afxdp(true).unwrap();
        (program, xsk)
    })
    .unwrap();
    let (caller, _pass) = run_in(&peer.0, || {
        let pass = foreign_pass_program();
        xdp_attach_raw(ifindex("veth1").unwrap(), pass.as_raw_fd());
        let caller = UdpSocket::bind(PEER).unwrap();
        caller
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (caller, pass)
    })
    .unwrap();
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
