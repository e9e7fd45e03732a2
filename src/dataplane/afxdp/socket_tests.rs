//! The AF_XDP plane on a real AF_XDP socket (a veth in a fresh namespace pair): a panic while a
//! socket's frames are forwarded leaves the socket with the worker, which goes on forwarding
//! with it. Needs root and BPF (`skip_unless`).
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plane::XskState;
use super::AfxdpPlane;
use crate::dataplane::mmsg::{MmsgPlane, Readiness};
use crate::dataplane::{Batch, FlowSocket, Forwarder, Plane};
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;
use crate::sys::netns::run_in;
use crate::sys::xdp::tests::{can_load, foreign_pass_program, ip, veth_pair, xdp_attach_raw};
use crate::sys::xdp::{ifindex, XdpProgram};
use crate::sys::xsk::XskSocket;

const RELAY: &str = "192.0.2.1:30000";
const PEER: &str = "192.0.2.2:4000";

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
    let deadline = Instant::now() + Duration::from_secs(2);
    while p.xsk.sockets.first().is_some_and(|s| s.rx_available() == 0) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_panic_while_forwarding_keeps_the_workers_afxdp_socket() {
    if !can_load() {
        return;
    }
    let (relay, peer) = veth_pair("rtprelay-xskp");
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.2/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "link", "set", "veth1", "up"]);
    let (program, xsk, flow) = run_in(&relay.0, || {
        let veth0 = ifindex("veth0").unwrap();
        let program = XdpProgram::load_and_attach(&[veth0]).unwrap();
        let xsk = XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        let table = program.table();
        table.set_port_range(30000, 30099).unwrap();
        table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
        table.set_afxdp(true).unwrap();
        (program, xsk, UdpSocket::bind(RELAY).unwrap())
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
