//! The AF_XDP plane's frame path and hand-offs, with no AF_XDP socket: frames are made up and
//! fed in, and a stand-in forwarder forwards everything.

use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::handoff::HANDOFF_MAX;
use super::plane::{Arrival, Pending};
use super::*;
use crate::dataplane::mmsg::{MmsgPlane, Readiness};
use crate::dataplane::{Batch, FlowSocket, Forwarder, Plane, TOKEN_MAX};
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;

/// Two workers' AF_XDP parts with hand-off queues and no sockets, and the port owner table
/// they share.
fn two_with_owners() -> (Vec<XskState>, Arc<PortOwners>) {
    let wakes: Vec<_> = (0..2)
        .map(|_| Arc::new(EventFd::new().expect("eventfd")))
        .collect();
    let owners = Arc::new(PortOwners::default());
    let states = deal(Vec::new(), &wakes, Some(&owners))
        .into_iter()
        .map(|(x, _)| x)
        .collect();
    (states, owners)
}

fn two() -> Vec<XskState> {
    two_with_owners().0
}

/// The plane a worker would run with `xsk`.
fn plane(xsk: XskState) -> AfxdpPlane {
    let wake = Arc::new(EventFd::new().expect("eventfd"));
    AfxdpPlane::new(
        MmsgPlane::new(Readiness::new(&wake).expect("epoll"), 32),
        xsk,
    )
}

/// Forwards every packet out of `via` to `dst`.
struct ForwardAll {
    via: RawFd,
    dst: SocketAddr,
    seen: usize,
}

impl Forwarder for ForwardAll {
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, b: &mut B) {
        for i in idx {
            self.seen += 1;
            b.forward(i, self.via, self.dst, token);
        }
    }

    fn recv_failed(&mut self, _token: u64, _error: &std::io::Error) {}
}

fn register(p: &mut AfxdpPlane, token: u64, s: &UdpSocket, c: &Arc<StreamCounters>) {
    p.register(FlowSocket {
        token,
        fd: s.as_raw_fd(),
        local: s.local_addr().ok(),
        counters: c,
    })
    .expect("register");
}

#[test]
fn a_forwarded_frame_that_cannot_be_sent_counts_as_dropped() {
    let mut states = two();
    let mut sender = states.pop().expect("worker 1");
    let mut p = plane(states.pop().expect("worker 0"));
    let flow = Arc::new(StreamCounters::default());
    // Worker 1 asks worker 0 to send a frame out of a device worker 0 has no socket on.
    let h = sender.handoff.as_mut().expect("hand-off");
    h.hand(0, 7, b"frame", Some(flow.clone()), &sender.counters);
    let mut fwd = ForwardAll {
        via: -1,
        dst: "10.9.0.3:5000".parse().expect("addr"),
        seen: 0,
    };
    p.pass(&mut fwd);
    assert_eq!(flow.dropped.load(Relaxed), 1);
    assert_eq!(fwd.seen, 0, "a frame to transmit is not forwarded again");
    // A copy for a socket that cannot take it (here: none at that index).
    p.xsk.pending.push(Pending {
        socket: 3,
        frame: b"frame".to_vec(),
        counters: flow.clone(),
    });
    p.xsk.finish_pass();
    assert_eq!(flow.dropped.load(Relaxed), 2);
    assert_eq!(p.xsk.counters.tx_dropped.load(Relaxed), 2);
    assert_eq!(p.xsk.counters.transmitted.load(Relaxed), 0);
}

/// The next hop towards a peer never comes from received frames, not even ones the flow
/// accepts (a forger with the peer's address and port passes strict source): its MACs must
/// never become the way to the peer.
#[test]
fn frames_never_teach_a_next_hop() {
    use crate::wire::frame::tests::{frame, A};

    let mut states = two();
    states.truncate(1);
    let mut p = plane(states.pop().expect("worker 0"));
    let peer: SocketAddr = "10.9.0.2:4000".parse().expect("addr");
    let callee: SocketAddr = "10.9.0.3:5000".parse().expect("addr");
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
    );
    let local = a.local_addr().expect("local");
    let (ca, cb) = (Arc::default(), Arc::default());
    register(&mut p, 1, &a, &ca);
    register(&mut p, 2, &b, &cb);
    let mut fwd = ForwardAll {
        via: b.as_raw_fd(),
        dst: callee,
        seen: 0,
    };
    let rtp = [0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff];
    let arrival = Arrival {
        ifindex: 7,
        socket: None,
        handed: false,
        keep: false,
    };
    let mut good = frame(peer, local, &rtp);
    p.xsk.frame(&mut good, arrival, &mut fwd, &mut p.mmsg.io);
    // The exact address and port, another MAC.
    let mut forged = frame(peer, local, &rtp);
    forged[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x66]);
    p.xsk.frame(&mut forged, arrival, &mut fwd, &mut p.mmsg.io);
    assert_eq!(fwd.seen, 2, "both frames reached their flow");
    let taught: Vec<[u8; 6]> = p
        .xsk
        .hops
        .known
        .values()
        .filter_map(|(h, _)| h.map(|h| h.peer_mac))
        .collect();
    assert!(
        !taught.contains(&A) && !taught.contains(&[2, 0, 0, 0, 0, 0x66]),
        "a frame's MAC became a next hop: {taught:?}"
    );
}

#[test]
fn a_transmit_hand_off_to_a_full_queue_counts_as_the_flows_drop() {
    let mut states = two();
    let mut sender = states.pop().expect("worker 1");
    let flow = Arc::new(StreamCounters::default());
    let c = sender.counters.clone();
    let h = sender.handoff.as_mut().expect("hand-off");
    for _ in 0..HANDOFF_MAX {
        h.hand(0, 7, b"f", None, &c);
    }
    h.hand(0, 7, b"f", Some(flow.clone()), &c);
    assert_eq!(c.handoff_dropped.load(Relaxed), 1);
    assert_eq!(flow.dropped.load(Relaxed), 1);
}

#[test]
fn a_refused_open_leaves_its_port_ownerless() {
    let (mut states, owners) = two_with_owners();
    states.truncate(1);
    let mut p = plane(states.pop().expect("worker 0"));
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let local = socket.local_addr().expect("local");
    owners.set(local, 0); // as the control thread does before sending the Open
    let refused = p.register(FlowSocket {
        token: TOKEN_MAX + 1, // reserved: refused
        fd: socket.as_raw_fd(),
        local: Some(local),
        counters: &Arc::default(),
    });
    assert!(refused.is_err());
    assert_eq!(owners.owner(local), None);
}
