//! The AF_XDP plane on a real AF_XDP socket (a veth in a fresh namespace pair): a panic while a
//! socket's frames are forwarded leaves the socket with the worker, which goes on forwarding
//! with it. Needs root and BPF (`skip_unless`).
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::plane::XskState;
use super::AfxdpPlane;
use crate::dataplane::mmsg::{MmsgPlane, Readiness};
use crate::dataplane::{Batch, FlowSocket, Forwarder, Plane};
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;
use crate::sys::netns::run_in;
use crate::sys::xdp::tests::can_load;
use crate::sys::xsk::test_topology::{peer_caller, relay_afxdp, topology, wait_for, PEER, RELAY};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Panics on the first frame it is given: a bug that a packet finds.
struct Panics;

impl Forwarder for Panics {
    fn forward_run<B: Batch + ?Sized>(&mut self, _token: u64, _idx: Range<usize>, _b: &mut B) {
        panic!("a bug a packet found");
    }
    fn recv_failed(&mut self, _token: u64, _error: &std::io::Error) {}
}

/// Sends every packet back to `dst` out of `via`.
struct Echo {
    via: RawFd,
    dst: SocketAddr,
    seen: usize,
}

impl Forwarder for Echo {
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, b: &mut B) {
        for i in idx {
            self.seen += 1;
            b.forward(i, self.via, self.dst, token);
        }
    }
    fn recv_failed(&mut self, _token: u64, _error: &std::io::Error) {}
}

/// Waits until socket 0 of the plane holds a frame.
fn wait_for_frame(p: &AfxdpPlane) {
    if let Some(s) = p.xsk.sockets.first() {
        wait_for(s, 1, Duration::from_secs(2));
    }
}

#[test]
fn a_panic_while_forwarding_keeps_the_workers_afxdp_socket() {
    if !can_load() {
        return;
    }
    let (relay, peer) = topology("rtprelay-xskp");
    let (program, xsk) = relay_afxdp(&relay);
    let flow = run_in(&relay.0, || UdpSocket::bind(RELAY).unwrap()).unwrap();
    let (caller, _pass) = peer_caller(&peer);

    let wake = Arc::new(EventFd::new().unwrap());
    let state = XskState::new(0, wake.clone(), vec![xsk], Arc::default(), None);
    let mut p = AfxdpPlane::new(MmsgPlane::new(Readiness::new(&wake).unwrap(), 32), state);
    let counters = Arc::new(StreamCounters::default());
    p.register(FlowSocket {
        token: 1,
        fd: flow.as_raw_fd(),
        local: flow.local_addr().ok(),
        counters: &counters,
    })
    .unwrap();

    caller.send_to(b"boom", RELAY).unwrap();
    wait_for_frame(&p);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.xsk.service(0, &mut Panics, &mut p.mmsg.io)
    }));
    assert!(panicked.is_err(), "the forwarder was given the frame");
    assert_eq!(
        p.xsk.sockets.len(),
        1,
        "the AF_XDP socket survived the panic"
    );

    // The worker goes on with the same socket: the next frame is forwarded back to the caller.
    let mut echo = Echo {
        via: flow.as_raw_fd(),
        dst: sa(PEER),
        seen: 0,
    };
    caller.send_to(b"after", RELAY).unwrap();
    wait_for_frame(&p);
    p.xsk.service(0, &mut echo, &mut p.mmsg.io);
    p.mmsg.io.flush(&mut |_| {});
    assert_eq!(
        echo.seen, 1,
        "the frame after the panic reached the forwarder"
    );
    let mut buf = [0u8; 64];
    let (len, from) = caller.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (&b"after"[..], sa(RELAY)));
    drop(program);
}
